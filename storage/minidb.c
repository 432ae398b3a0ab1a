/* cortado: the minidb backend, byte-compatible with Caffe2 (spec §4.2).
 *
 * Design note. A minidb file is a bare sequence of records
 *   key_len:int32le | value_len:int32le | key | value
 * with no header of its own. Files we write add a "!!CT_HEADER" record
 * first and a "!!CT_MANIFEST" record last (storage/manifest.c); Caffe2
 * reads them as two std::string blobs, and cursors here never return
 * them.
 *
 * Writing (NEW, WRITE). Records go to a temporary file through
 * ct__afile (storage/fileio.h): nothing at the target path changes until
 * ct_db_close, which appends the manifest, fsyncs, renames and fsyncs
 * the directory; ct_db_free instead removes the temporary file. So NEW
 * never truncates the previous file in place (Caffe2's fopen "wb" did,
 * destroying the last checkpoint if the save then failed). WRITE copies
 * the old records, each CRC-checked, into the new file before the new
 * ones: appending in place could leave a torn record at the end. Small
 * records are gathered in a 1 MiB buffer; a value over 64 KiB is written
 * straight from the caller's pieces (tensor memory) with writev.
 * Zero-length keys and values are refused: Caffe2 wrote them but its
 * reader rejects them.
 *
 * Reading (READ). Opening only opens the file (so DBExists is true for
 * any readable regular file, as Caffe2's). The first cursor walks every
 * record header once with pread: each length must be positive and the
 * record must fit in the file, and the file must end exactly after a
 * record (Caffe2 took a trailing 1-3 bytes as a clean end; a torn header
 * is corruption here). Every error names the byte offset, and nothing is
 * allocated beyond the file size. Then the header and manifest are
 * checked (both or neither; see manifest.c), and each record a cursor
 * visits is compared with its manifest entry (offset, lengths, key). The
 * value is read only when asked for and then checked against its CRC32C.
 * The fd is read with pread only, so any number of cursors may share it.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "engine/alloc.h"
#include "storage/minidb_impl.h"

#define WBUF_FLUSH ((size_t)1 << 20)    /* write the buffer out past this */
#define DIRECT_VALUE ((size_t)64 << 10) /* values above go out directly */
#define MAX_LEN INT32_MAX

/* ---- writer ---- */

static int sticky(struct ct__mdb *m, int rc, ct_status_t *st)
{
    if (rc != CT_OK && m->err == CT_OK) {
        m->err = rc;
        if (st != NULL)
            m->err_st = *st;
        else
            ct_status_setf(&m->err_st, rc, "%s", ct_strerror(rc));
    }
    return rc;
}

static int failed(struct ct__mdb *m, ct_status_t *st)
{
    if (st != NULL)
        *st = m->err_st;
    return m->err;
}

static int flush(struct ct__mdb *m, ct_status_t *st)
{
    int rc;

    if (m->wbuf.len == 0)
        return CT_OK;
    rc = ct__afile_write(&m->af, m->wbuf.p, m->wbuf.len, st);
    m->wbuf.len = 0;
    return sticky(m, rc, st);
}

static int write_record(struct ct__mdb *m, const void *key, size_t klen,
                        const struct ct_db_iov *iov, size_t n, uint64_t vlen,
                        ct_status_t *st)
{
    unsigned char hdr[8];
    size_t i;
    int rc;

    hdr[0] = (unsigned char)klen;
    hdr[1] = (unsigned char)(klen >> 8);
    hdr[2] = (unsigned char)(klen >> 16);
    hdr[3] = (unsigned char)(klen >> 24);
    hdr[4] = (unsigned char)vlen;
    hdr[5] = (unsigned char)(vlen >> 8);
    hdr[6] = (unsigned char)(vlen >> 16);
    hdr[7] = (unsigned char)(vlen >> 24);
    if (vlen <= DIRECT_VALUE) {
        if (m->wbuf.len + 8 + klen + vlen > WBUF_FLUSH) {
            rc = flush(m, st);
            if (rc != CT_OK)
                return rc;
        }
        if (ct__buf_reserve(&m->wbuf, 8 + klen + (size_t)vlen) != CT_OK)
            return sticky(m,
                          ct_status_setf(st, CT_ENOMEM,
                                         "out of memory writing %s",
                                         m->af.path),
                          st);
        ct__buf_put(&m->wbuf, hdr, 8);
        ct__buf_put(&m->wbuf, key, klen);
        for (i = 0; i < n; i++)
            ct__buf_put(&m->wbuf, iov[i].base, iov[i].len);
    } else {
        struct iovec v[64];
        size_t at = 0;
        int k;
        rc = flush(m, st);
        if (rc == CT_OK)
            rc = ct__buf_reserve(&m->wbuf, 8 + klen);
        if (rc != CT_OK)
            return sticky(m, rc, st);
        ct__buf_put(&m->wbuf, hdr, 8);
        ct__buf_put(&m->wbuf, key, klen);
        v[0].iov_base = m->wbuf.p;
        v[0].iov_len = m->wbuf.len;
        k = 1;
        while (at < n) {
            while (at < n && k < 64) {
                v[k].iov_base = (void *)iov[at].base;
                v[k].iov_len = iov[at].len;
                k++;
                at++;
            }
            rc = ct__afile_writev(&m->af, v, k, st);
            if (rc != CT_OK)
                break;
            k = 0;
        }
        if (rc == CT_OK && k > 0)
            rc = ct__afile_writev(&m->af, v, k, st);
        m->wbuf.len = 0;
        if (rc != CT_OK)
            return sticky(m, rc, st);
    }
    m->off += 8 + klen + vlen;
    return CT_OK;
}

static int mdb_put(struct ct__mdb *m, const ct_db_t *db, const void *key,
                   size_t klen, const struct ct_db_iov *iov, size_t n,
                   uint64_t vlen, ct_status_t *st)
{
    uint32_t crc = 0;
    size_t i;

    if (m->err != CT_OK)
        return failed(m, st);
    if (klen == 0 || vlen == 0)
        return ct_status_setf(st, CT_EINVAL,
                              "%s: minidb cannot store an empty %s (Caffe2 "
                              "could not read it back)",
                              db->path, klen == 0 ? "key" : "value");
    if (klen > MAX_LEN || vlen > MAX_LEN)
        return ct_status_setf(st, CT_EINVAL,
                              "%s: record of %zu + %llu bytes exceeds "
                              "minidb's int32 lengths",
                              db->path, klen, (unsigned long long)vlen);
    if (ct__minidb_reserved_key(key, klen))
        return ct_status_setf(st, CT_EINVAL, "%s: key %.*s is reserved",
                              db->path, (int)klen, (const char *)key);
    for (i = 0; i < n; i++)
        crc = ct_crc32c(crc, iov[i].base, iov[i].len);
    if (ct__manifest_add(&m->entries, m->off, key, (uint32_t)klen, vlen, crc) !=
        CT_OK)
        return sticky(
            m,
            ct_status_setf(st, CT_ENOMEM, "out of memory writing %s", db->path),
            st);
    m->n_entries++;
    return write_record(m, key, klen, iov, n, vlen, st);
}

static int copy_old_records(ct_db_t *db, struct ct__mdb *m, ct_status_t *st)
{
    ct_db_t *old;
    ct_db_cursor_t *c = NULL;
    int rc = ct_db_open("minidb", db->path, CT_DB_READ, &old, st);

    if (rc == CT_ENOTFOUND)
        return CT_OK; /* WRITE on a missing file creates it, as "ab" does */
    if (rc != CT_OK)
        return rc;
    rc = ct_db_cursor_new(old, &c, st);
    while (rc == CT_OK && ct_db_cursor_valid(c)) {
        struct ct_db_iov v;
        size_t klen;
        const char *key = ct_db_cursor_key(c, &klen);
        rc = ct_db_cursor_value(c, &v.base, &v.len, st);
        if (rc == CT_OK)
            rc = mdb_put(m, db, key, klen, &v, 1, v.len, st);
        if (rc == CT_OK)
            rc = ct_db_cursor_next(c, st);
    }
    ct_db_cursor_free(c);
    ct_db_free(old);
    return rc;
}

static int open_write(ct_db_t *db, struct ct__mdb *m, ct_status_t *st)
{
    struct ct_db_iov v;
    int rc = ct__afile_open(&m->af, db->path, st);

    if (rc != CT_OK)
        return rc;
    m->writing = true;
    v.base = ct__minidb_header_value(&v.len);
    rc = write_record(m, CT_MINIDB_HEADER_KEY, strlen(CT_MINIDB_HEADER_KEY), &v,
                      1, v.len, st);
    if (rc == CT_OK && db->mode == CT_DB_WRITE)
        rc = copy_old_records(db, m, st);
    return rc;
}

/* ---- open / close ---- */

static void mdb_release(struct ct__mdb *m)
{
    if (m->fd >= 0)
        close(m->fd);
    if (m->writing)
        ct__afile_abort(&m->af);
    ct__manifest_destroy(&m->man);
    ct__buf_destroy(&m->wbuf);
    ct__buf_destroy(&m->entries);
    ct__free(m);
}

static int minidb_open(ct_db_t *db, ct_status_t *st)
{
    struct ct__mdb *m = ct__calloc(1, sizeof(*m));
    int rc;

    if (m == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory opening %s",
                              db->path);
    m->fd = -1;
    rc = db->mode == CT_DB_READ ? ct__minidb_open_read(db, m, st)
                                : open_write(db, m, st);
    if (rc != CT_OK) {
        mdb_release(m);
        return rc;
    }
    db->impl = m;
    return CT_OK;
}

static int minidb_close(ct_db_t *db, bool publish, ct_status_t *st)
{
    struct ct__mdb *m = db->impl;
    struct ct__buf man;
    struct ct_db_iov v;
    int rc = CT_OK;

    if (!publish || !m->writing) {
        mdb_release(m);
        return CT_OK;
    }
    if (m->err != CT_OK) {
        rc = failed(m, st);
        mdb_release(m);
        return rc;
    }
    ct__buf_init(&man);
    rc = ct__manifest_value(&m->entries, m->n_entries, &man, st);
    if (rc == CT_OK) {
        v.base = man.p;
        v.len = man.len;
        rc = write_record(m, CT_MINIDB_MANIFEST_KEY,
                          strlen(CT_MINIDB_MANIFEST_KEY), &v, 1, v.len, st);
    }
    ct__buf_destroy(&man);
    if (rc == CT_OK)
        rc = flush(m, st);
    if (rc == CT_OK) {
        db->size = m->af.size;
        m->writing = false;
        rc = ct__afile_commit(&m->af, st); /* releases m->af either way */
    }
    mdb_release(m);
    return rc;
}

/* ---- transactions ---- */

static int minidb_txn_new(ct_db_txn_t *t, ct_status_t *st)
{
    (void)st;
    t->impl = t->db->impl;
    return CT_OK;
}

static int minidb_txn_putv(ct_db_txn_t *t, const void *key, size_t klen,
                           const struct ct_db_iov *iov, size_t n, uint64_t vlen,
                           ct_status_t *st)
{
    return mdb_put(t->impl, t->db, key, klen, iov, n, vlen, st);
}

static int minidb_txn_commit(ct_db_txn_t *t, ct_status_t *st)
{
    struct ct__mdb *m = t->impl;

    if (m->err != CT_OK)
        return failed(m, st);
    return flush(m, st);
}

static void minidb_txn_free(ct_db_txn_t *t)
{
    (void)t;
}

const struct ct__db_backend ct__db_minidb = {
    .name = "minidb",
    .alias = "MiniDB",
    .open_cb = minidb_open,
    .close_cb = minidb_close,
    .cursor_new_cb = ct__minidb_cursor_new,
    .cursor_free_cb = ct__minidb_cursor_free,
    .cursor_seek_to_first_cb = ct__minidb_cursor_seek_to_first,
    .cursor_seek_cb = ct__minidb_cursor_seek,
    .cursor_next_cb = ct__minidb_cursor_next,
    .cursor_value_cb = ct__minidb_cursor_value,
    .txn_new_cb = minidb_txn_new,
    .txn_putv_cb = minidb_txn_putv,
    .txn_commit_cb = minidb_txn_commit,
    .txn_free_cb = minidb_txn_free,
};
