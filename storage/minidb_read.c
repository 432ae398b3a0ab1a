/* cortado: the minidb reader: the one-time scan of a file's framing,
 * header and manifest, and the cursors (see the design note in
 * storage/minidb.c). Everything here reads with pread, so cursors share
 * the fd, and nothing is allocated beyond one record's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/alloc.h"
#include "storage/minidb_impl.h"

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int corrupt(ct_status_t *st, const ct_db_t *db, const char *fmt,
                   unsigned long long off, const char *detail)
{
    char what[200];

    snprintf(what, sizeof(what), fmt, off);
    return ct_status_setf(st, CT_ECORRUPT, "%s: %s%s", db->path, what,
                          detail != NULL ? detail : "");
}

bool ct__minidb_reserved_key(const void *key, size_t klen)
{
    return (klen == strlen(CT_MINIDB_HEADER_KEY) &&
            memcmp(key, CT_MINIDB_HEADER_KEY, klen) == 0) ||
           (klen == strlen(CT_MINIDB_MANIFEST_KEY) &&
            memcmp(key, CT_MINIDB_MANIFEST_KEY, klen) == 0);
}

int ct__minidb_open_read(ct_db_t *db, struct ct__mdb *m, ct_status_t *st)
{
    struct stat sb;
    char ebuf[128];

    if (ct__is_temp_name(db->path))
        return ct_status_setf(st, CT_EPATH,
                              "%s is a temporary file of an unfinished save; "
                              "refusing to read it",
                              db->path);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    m->fd = ct__io_open(db->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
    if (m->fd < 0)
        return ct_status_setf(st, errno == ENOENT ? CT_ENOTFOUND : CT_EIO,
                              "Cannot open file: %s: %s", db->path,
                              ct__errno_text(errno, ebuf, sizeof(ebuf)));
    if (fstat(m->fd, &sb) != 0)
        return ct_status_setf(st, CT_EIO, "cannot stat %s: %s", db->path,
                              ct__errno_text(errno, ebuf, sizeof(ebuf)));
    if (S_ISDIR(sb.st_mode))
        return ct_status_setf(st, CT_EPATH,
                              "%s is a directory, not a minidb file", db->path);
    if (!S_ISREG(sb.st_mode))
        return ct_status_setf(st, CT_EPATH,
                              "%s is not a regular file (a FIFO, socket or "
                              "device)",
                              db->path);
    db->size = (uint64_t)sb.st_size;
    return CT_OK;
}

/* ---- reader: the scan ---- */

static int read_hdr(const ct_db_t *db, const struct ct__mdb *m, uint64_t off,
                    uint32_t *klen, uint32_t *vlen, ct_status_t *st)
{
    unsigned char h[8];
    int32_t k, v;
    int rc;

    if (db->size - off < 8)
        return corrupt(st, db, "truncated record header at offset %llu", off,
                       " (fewer than 8 bytes left)");
    rc = ct__read_exact(m->fd, h, 8, off, db->path, st);
    if (rc != CT_OK)
        return rc;
    k = (int32_t)get_u32(h);
    v = (int32_t)get_u32(h + 4);
    if (k <= 0 || v <= 0) {
        char d[96];
        snprintf(d, sizeof(d), ": %s length %d is not positive",
                 k <= 0 ? "key" : "value", k <= 0 ? k : v);
        return corrupt(st, db, "record at offset %llu", off, d);
    }
    if (8 + (uint64_t)k + (uint64_t)v > db->size - off) {
        char d[160];
        snprintf(d, sizeof(d),
                 " (key length %d, value length %d) runs past the end of "
                 "the file (%llu bytes)",
                 k, v, (unsigned long long)db->size);
        return corrupt(st, db, "record at offset %llu", off, d);
    }
    *klen = (uint32_t)k;
    *vlen = (uint32_t)v;
    return CT_OK;
}

/* Reads len bytes at off into b (grown as needed; len <= file size). */
static int read_into(const ct_db_t *db, const struct ct__mdb *m,
                     struct ct__buf *b, uint64_t off, size_t len,
                     ct_status_t *st)
{
    b->len = 0;
    if (ct__buf_reserve_exact(b, len + 1) != CT_OK)
        return ct_status_setf(st, CT_ENOMEM,
                              "%s: out of memory reading %zu "
                              "bytes",
                              db->path, len);
    b->len = len;
    b->p[len] = '\0';
    return ct__read_exact(m->fd, b->p, len, off, db->path, st);
}

static bool key_is(const struct ct__buf *k, const char *s)
{
    return k->len == strlen(s) && memcmp(k->p, s, k->len) == 0;
}

static int check_header(const ct_db_t *db, const struct ct__mdb *m,
                        uint32_t vlen, ct_status_t *st)
{
    struct ct__buf b;
    size_t hlen;
    const unsigned char *h = ct__minidb_header_value(&hlen);
    int rc, version;

    if (vlen > 4096)
        return corrupt(st, db, "damaged header record at offset %llu", 0, NULL);
    ct__buf_init(&b);
    rc = read_into(db, m, &b, 8 + strlen(CT_MINIDB_HEADER_KEY), vlen, st);
    if (rc == CT_OK && (b.len != hlen || memcmp(b.p, h, hlen) != 0)) {
        version = ct__minidb_header_version(b.p, b.len);
        if (version > 1)
            rc = ct_status_setf(st, CT_ENOTSUP,
                                "%s: written by a newer cortado (minidb "
                                "header v%d; this build reads v1)",
                                db->path, version);
        else
            rc = corrupt(st, db, "damaged header record at offset %llu", 0,
                         NULL);
    }
    ct__buf_destroy(&b);
    return rc;
}

struct span {
    uint64_t off;
    uint32_t klen, vlen;
};

/* A foreign file whose first or last record is a damaged cortado
 * header or manifest (its key flipped) is ours after all. */
static int check_foreign(const ct_db_t *db, const struct ct__mdb *m,
                         const struct span *s, ct_status_t *st)
{
    struct ct__buf b;
    bool ours = false;
    int rc = CT_OK;

    if (s->vlen > ((uint32_t)64 << 20))
        return CT_OK;
    ct__buf_init(&b);
    rc = read_into(db, m, &b, s->off + 8 + s->klen, s->vlen, st);
    if (rc == CT_OK)
        ours = ct__minidb_value_is_ours(b.p, b.len);
    ct__buf_destroy(&b);
    if (rc == CT_OK && ours)
        rc = corrupt(st, db,
                     "damaged header or manifest record at offset %llu "
                     "(its key does not match)",
                     s->off, NULL);
    return rc;
}

static int scan(ct_db_t *db, struct ct__mdb *m, ct_status_t *st)
{
    struct span first = {0, 0, 0}, last = {0, 0, 0};
    struct ct__buf k;
    uint64_t off = 0, n = 0;
    bool hdr = false, man = false;
    int rc = CT_OK;

    if (db->size == 0)
        return ct_status_setf(st, CT_ECORRUPT,
                              "%s: empty file, not a minidb (no records)",
                              db->path);
    while (off < db->size) {
        uint32_t klen, vlen;
        rc = read_hdr(db, m, off, &klen, &vlen, st);
        if (rc != CT_OK)
            return rc;
        last.off = off;
        last.klen = klen;
        last.vlen = vlen;
        if (n == 0)
            first = last;
        off += 8 + (uint64_t)klen + vlen;
        n++;
    }
    ct__buf_init(&k);
    rc = read_into(db, m, &k, 8, first.klen, st);
    hdr = rc == CT_OK && key_is(&k, CT_MINIDB_HEADER_KEY);
    if (rc == CT_OK && n > 1)
        rc = read_into(db, m, &k, last.off + 8, last.klen, st);
    man = rc == CT_OK && n > 1 && key_is(&k, CT_MINIDB_MANIFEST_KEY);
    ct__buf_destroy(&k);
    if (rc != CT_OK)
        return rc;
    if (hdr && (rc = check_header(db, m, first.vlen, st)) != CT_OK)
        return rc;
    if (hdr && !man)
        return ct_status_setf(st, CT_ECORRUPT,
                              "%s: no manifest record at the end: truncated "
                              "or incomplete file (%llu bytes, %llu records)",
                              db->path, (unsigned long long)db->size,
                              (unsigned long long)n);
    if (man && !hdr)
        return corrupt(st, db,
                       "manifest present but the header record at offset "
                       "%llu is missing or damaged",
                       0, NULL);
    if (!hdr) {
        rc = check_foreign(db, m, &first, st);
        if (rc == CT_OK && n > 1)
            rc = check_foreign(db, m, &last, st);
        if (rc != CT_OK)
            return rc;
        m->first_data = 0;
        m->end_data = db->size;
        m->n_data = n;
    } else {
        struct ct__buf v;
        char where[64];
        m->first_data = 8 + (uint64_t)first.klen + first.vlen;
        m->end_data = last.off;
        m->n_data = n - 2;
        ct__buf_init(&v);
        rc = read_into(db, m, &v, last.off + 8 + last.klen, last.vlen, st);
        snprintf(where, sizeof(where), "manifest record at offset %llu",
                 (unsigned long long)last.off);
        if (rc == CT_OK) {
            ct_status_t mst;
            rc = ct__manifest_parse(v.p, v.len, where, &m->man, &mst);
            if (rc != CT_OK)
                ct_status_setf(st, rc, "%s: %s", db->path, mst.msg);
        }
        ct__buf_destroy(&v);
        if (rc != CT_OK)
            return rc;
        m->has_manifest = true;
        if (m->man.n != m->n_data)
            return ct_status_setf(st, CT_ECORRUPT,
                                  "%s: the manifest lists %zu records, the "
                                  "file holds %llu",
                                  db->path, m->man.n,
                                  (unsigned long long)m->n_data);
    }
    m->scanned = true;
    return CT_OK;
}

/* ---- cursors ---- */

static int load_record(ct_db_cursor_t *c, ct_status_t *st)
{
    struct ct__mcur *mc = c->impl;
    ct_db_t *db = c->db;
    struct ct__mdb *m = db->impl;
    uint32_t klen, vlen;
    int rc;

    mc->val_loaded = false;
    c->valid = false;
    if (mc->pos >= m->end_data)
        return CT_OK;
    rc = read_hdr(db, m, mc->pos, &klen, &vlen, st);
    if (rc == CT_OK)
        rc = read_into(db, m, &mc->key, mc->pos + 8, klen, st);
    if (rc != CT_OK)
        return rc;
    if (ct__minidb_reserved_key(mc->key.p, klen))
        return corrupt(st, db, "reserved key at offset %llu", mc->pos,
                       " in the middle of the file");
    if (m->has_manifest) {
        const struct ct__manifest_entry *e = &m->man.e[mc->idx];
        if (e->offset != mc->pos || e->klen != klen || e->vlen != vlen ||
            memcmp(e->key, mc->key.p, klen) != 0) {
            char d[160];
            snprintf(d, sizeof(d),
                     " (key \"%.40s\", %u + %u bytes) does not match manifest "
                     "entry %zu",
                     (const char *)mc->key.p, klen, vlen, mc->idx);
            return corrupt(st, db, "record at offset %llu", mc->pos, d);
        }
    }
    mc->vlen = vlen;
    mc->next = mc->pos + 8 + (uint64_t)klen + vlen;
    c->key = (const char *)mc->key.p;
    c->klen = klen;
    c->offset = (int64_t)mc->pos;
    c->valid = true;
    return CT_OK;
}

int ct__minidb_cursor_seek_to_first(ct_db_cursor_t *c, ct_status_t *st)
{
    struct ct__mcur *mc = c->impl;
    struct ct__mdb *m = c->db->impl;

    mc->pos = m->first_data;
    mc->idx = 0;
    return load_record(c, st);
}

int ct__minidb_cursor_new(ct_db_cursor_t *c, ct_status_t *st)
{
    struct ct__mdb *m = c->db->impl;
    struct ct__mcur *mc;
    int rc;

    if (!m->scanned && (rc = scan(c->db, m, st)) != CT_OK)
        return rc;
    mc = ct__calloc(1, sizeof(*mc));
    if (mc == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory reading %s",
                              c->db->path);
    c->impl = mc;
    rc = ct__minidb_cursor_seek_to_first(c, st);
    if (rc != CT_OK) {
        ct__buf_destroy(&mc->key);
        ct__buf_destroy(&mc->val);
        ct__free(mc);
        c->impl = NULL;
    }
    return rc;
}

void ct__minidb_cursor_free(ct_db_cursor_t *c)
{
    struct ct__mcur *mc = c->impl;

    ct__buf_destroy(&mc->key);
    ct__buf_destroy(&mc->val);
    ct__free(mc);
}

int ct__minidb_cursor_seek(ct_db_cursor_t *c, const void *key, size_t klen,
                           ct_status_t *st)
{
    (void)key;
    (void)klen;
    return ct_status_setf(st, CT_ENOTSUP, "%s: MiniDB does not support seeking",
                          c->db->path);
}

int ct__minidb_cursor_next(ct_db_cursor_t *c, ct_status_t *st)
{
    struct ct__mcur *mc = c->impl;
    int rc;

    mc->pos = mc->next;
    mc->idx++;
    rc = load_record(c, st);
    if (rc != CT_OK)
        c->valid = false;
    return rc;
}

int ct__minidb_cursor_value(ct_db_cursor_t *c, const void **val, size_t *len,
                            ct_status_t *st)
{
    struct ct__mcur *mc = c->impl;
    struct ct__mdb *m = c->db->impl;
    int rc;

    if (!mc->val_loaded) {
        rc = read_into(c->db, m, &mc->val, mc->next - mc->vlen, mc->vlen, st);
        if (rc != CT_OK)
            return rc;
        if (m->has_manifest) {
            uint32_t want = m->man.e[mc->idx].crc;
            uint32_t got = ct_crc32c(0, mc->val.p, mc->val.len);
            if (want != got)
                return ct_status_setf(st, CT_ECORRUPT,
                                      "%s: key %s at offset %llu: CRC32C "
                                      "mismatch (manifest 0x%08x, data "
                                      "0x%08x)",
                                      c->db->path, c->key,
                                      (unsigned long long)mc->pos, want, got);
        }
        mc->val_loaded = true;
    }
    *val = mc->val.p;
    *len = mc->val.len;
    return CT_OK;
}

void ct__minidb_info(const ct_db_t *db, bool *has_manifest, uint64_t *n_data)
{
    const struct ct__mdb *m = db->impl;

    CT_ASSERT(db->be == &ct__db_minidb && m->scanned,
              "ct__minidb_info before a cursor");
    *has_manifest = m->has_manifest;
    *n_data = m->n_data;
}
