/* cortado: listing a DB for `cortado inspect FILE.minidb`.
 *
 * ct_db_detect_type tells a minidb from a NetDef by content: the first
 * record's lengths must be positive and fit the file, and its value must
 * parse as a BlobProto with a type, or as TensorProtos (dataset files
 * such as the Iris minidb). A binary NetDef read as a minidb gets a key
 * length from its first four bytes that never fits; text never does.
 *
 * ct_db_describe reads every record through a cursor, so framing, the
 * cortado header and manifest and every CRC32C are checked on the way;
 * records are grouped by blob name (the key cut at "#%") in first-seen
 * order, one row per blob.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/proto.h"
#include "engine/alloc.h"
#include "engine/strmap.h"
#include "storage/fileio.h"
#include "storage/storage_impl.h"

#define DETECT_MAX_VALUE ((uint32_t)16 << 20)

static bool value_is_blob(const void *val, size_t len)
{
    ProtobufCMessage *m;
    bool ok = false;

    if (ct_proto_unpack(&caffe2__blob_proto__descriptor, val, len, &m, NULL) ==
        CT_OK) {
        const Caffe2__BlobProto *b = (const Caffe2__BlobProto *)m;
        ok = b->type != NULL && b->type[0] != '\0' &&
             (b->tensor != NULL || b->has_content || b->qtensor != NULL);
        ct_proto_free(m);
    }
    if (!ok && ct_proto_unpack(&caffe2__tensor_protos__descriptor, val, len, &m,
                               NULL) == CT_OK) {
        const Caffe2__TensorProtos *t = (const Caffe2__TensorProtos *)m;
        ok = t->n_protos > 0 && t->protos[0]->has_data_type;
        ct_proto_free(m);
    }
    return ok;
}

const char *ct_db_detect_type(const char *path)
{
    unsigned char h[8];
    struct stat sb;
    uint32_t klen, vlen;
    void *val;
    bool ok = false;
    int fd;

    if (path == NULL || stat(path, &sb) != 0)
        return NULL;
    if (S_ISDIR(sb.st_mode)) {
        char *p = ct__malloc(strlen(path) + 16);
        if (p == NULL)
            return NULL;
        sprintf(p, "%s/data.mdb", path);
        ok = stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
        ct__free(p);
#ifdef CT_HAVE_LMDB
        return ok ? "lmdb" : NULL;
#else
        return NULL;
#endif
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size < 10)
        return NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (ct__read_exact(fd, h, 8, 0, path, NULL) == CT_OK) {
        klen = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
               (uint32_t)h[3] << 24;
        vlen = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 |
               (uint32_t)h[7] << 24;
        if (klen > 0 && vlen > 0 && klen <= INT32_MAX &&
            vlen <= DETECT_MAX_VALUE &&
            8 + (uint64_t)klen + vlen <= (uint64_t)sb.st_size &&
            (val = ct__malloc(vlen)) != NULL) {
            if (ct__read_exact(fd, val, vlen, 8 + (uint64_t)klen, path, NULL) ==
                CT_OK)
                ok = value_is_blob(val, vlen);
            ct__free(val);
        }
    }
    close(fd);
    return ok ? "minidb" : NULL;
}

/* ---- describe ---- */

struct row {
    char *name;
    char type[24];
    char dtype[32];
    char shape[96];
    uint64_t chunks, bytes;
};

struct listing {
    struct row *rows;
    size_t n, cap;
    struct ct__strmap index; /* name -> row index + 1 */
};

static struct row *row_for(struct listing *l, const char *key, size_t klen)
{
    size_t n = ct__key_name_len(key, klen);
    char *name = ct__strndup(key, n);
    void *v;
    struct row *r;

    if (name == NULL)
        return NULL;
    if (ct__strmap_find(&l->index, name, &v)) {
        ct__free(name);
        return &l->rows[(uintptr_t)v - 1];
    }
    if (ct__grow((void **)&l->rows, &l->cap, l->n + 1, sizeof(*l->rows)) !=
            CT_OK ||
        ct__strmap_insert(&l->index, name, (void *)(uintptr_t)(l->n + 1)) !=
            CT_OK) {
        ct__free(name);
        return NULL;
    }
    r = &l->rows[l->n++];
    memset(r, 0, sizeof(*r));
    r->name = name;
    strcpy(r->type, "?");
    strcpy(r->dtype, "-");
    strcpy(r->shape, "-");
    return r;
}

static void describe_value(struct row *r, const void *val, size_t len)
{
    ProtobufCMessage *m;

    if (ct_proto_unpack(&caffe2__blob_proto__descriptor, val, len, &m, NULL) ==
        CT_OK) {
        const Caffe2__BlobProto *b = (const Caffe2__BlobProto *)m;
        if (b->type != NULL && b->type[0] != '\0') {
            snprintf(r->type, sizeof(r->type), "%s", b->type);
            if (b->tensor != NULL) {
                const Caffe2__TensorProto *t = b->tensor;
                int nd = t->n_dims <= CT_MAX_DIMS ? (int)t->n_dims : 0;
                snprintf(r->dtype, sizeof(r->dtype), "%s",
                         t->has_data_type
                             ? ct_dtype_name((ct_dtype_t)t->data_type)
                             : "(none)");
                ct_dims_str(nd, t->dims, r->shape, sizeof(r->shape));
            } else if (b->has_content) {
                snprintf(r->shape, sizeof(r->shape), "%zu bytes",
                         b->content.len);
            }
            ct_proto_free(m);
            return;
        }
        ct_proto_free(m);
    }
    if (ct_proto_unpack(&caffe2__tensor_protos__descriptor, val, len, &m,
                        NULL) == CT_OK) {
        const Caffe2__TensorProtos *ts = (const Caffe2__TensorProtos *)m;
        size_t i, off = 0, doff = 0;
        snprintf(r->type, sizeof(r->type), "TensorProtos");
        r->shape[0] = r->dtype[0] = '\0';
        for (i = 0; i < ts->n_protos && i < 4; i++) {
            const Caffe2__TensorProto *t = ts->protos[i];
            char dims[48];
            int nd = t->n_dims <= CT_MAX_DIMS ? (int)t->n_dims : 0;
            ct_dims_str(nd, t->dims, dims, sizeof(dims));
            off += (size_t)snprintf(r->shape + off, sizeof(r->shape) - off,
                                    "%s%s", i ? " " : "", dims);
            doff += (size_t)snprintf(r->dtype + doff, sizeof(r->dtype) - doff,
                                     "%s%s", i ? "," : "",
                                     ct_dtype_name((ct_dtype_t)t->data_type));
            if (off >= sizeof(r->shape) || doff >= sizeof(r->dtype))
                break;
        }
        ct_proto_free(m);
        return;
    }
    snprintf(r->type, sizeof(r->type), "(not a BlobProto)");
}

int ct_db_describe(const char *type, const char *path, FILE *out,
                   ct_status_t *st)
{
    struct listing l;
    ct_db_t *db = NULL;
    ct_db_cursor_t *c = NULL;
    uint64_t n_rec = 0, n_data = 0, n_bad = 0;
    bool manifest = false;
    ct_status_t vst;
    size_t i;
    int rc, first_bad = CT_OK;

    CT_ASSERT(type != NULL && path != NULL && out != NULL,
              "ct_db_describe: NULL argument");
    memset(&l, 0, sizeof(l));
    ct__strmap_init(&l.index);
    rc = ct_db_open(type, path, CT_DB_READ, &db, st);
    if (rc != CT_OK)
        return rc;
    fprintf(out, "%-17s %s (%s, %llu bytes)\n", "file", path,
            ct_db_type_name(db), (unsigned long long)ct_db_size(db));
    rc = ct_db_cursor_new(db, &c, st);
    if (rc != CT_OK) {
        fprintf(out, "%-17s FAILED: %s\n", "integrity", st ? st->msg : "");
        ct_db_free(db);
        return rc;
    }
    if (strcmp(ct_db_type_name(db), "minidb") == 0)
        ct__minidb_info(db, &manifest, &n_data);
    while (ct_db_cursor_valid(c)) {
        size_t klen, vlen;
        const char *key = ct_db_cursor_key(c, &klen);
        const void *val;
        struct row *r = row_for(&l, key, klen);
        if (r == NULL) {
            rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
            break;
        }
        r->chunks++;
        n_rec++;
        if (ct_db_cursor_value(c, &val, &vlen, &vst) != CT_OK) {
            fprintf(out, "  ! %s\n", vst.msg);
            if (first_bad == CT_OK) {
                first_bad = vst.code;
                if (st != NULL)
                    *st = vst;
            }
            n_bad++;
        } else {
            r->bytes += vlen;
            if (r->chunks == 1)
                describe_value(r, val, vlen);
        }
        rc = ct_db_cursor_next(c, &vst);
        if (rc != CT_OK) {
            fprintf(out, "  ! %s\n", vst.msg);
            if (st != NULL)
                *st = vst;
            break;
        }
    }
    fprintf(out, "%-17s %llu records, %zu blobs\n", "records",
            (unsigned long long)n_rec, l.n);
    if (strcmp(ct_db_type_name(db), "minidb") != 0)
        fprintf(out, "%-17s %s\n", "integrity",
                "lmdb (transactional; no cortado manifest)");
    else if (!manifest)
        fprintf(out, "%-17s %s\n", "integrity",
                "no cortado manifest (written by Caffe2 or another writer): "
                "record framing checked, no CRCs to verify");
    else if (n_bad == 0 && rc == CT_OK)
        fprintf(out,
                "%-17s cortado manifest: %llu records, every CRC32C "
                "matches\n",
                "integrity", (unsigned long long)n_data);
    else
        fprintf(out, "%-17s cortado manifest: %llu of %llu records FAILED\n",
                "integrity", (unsigned long long)n_bad,
                (unsigned long long)n_data);
    fprintf(out, "  %-28s %-12s %-8s %-20s %6s %10s\n", "blob", "type", "dtype",
            "shape", "chunks", "bytes");
    for (i = 0; i < l.n; i++) {
        const struct row *r = &l.rows[i];
        fprintf(out, "  %-28s %-12s %-8s %-20s %6llu %10llu\n", r->name,
                r->type, r->dtype, r->shape, (unsigned long long)r->chunks,
                (unsigned long long)r->bytes);
    }
    for (i = 0; i < l.n; i++)
        ct__free(l.rows[i].name);
    ct__free(l.rows);
    ct__strmap_destroy(&l.index, NULL);
    ct_db_cursor_free(c);
    ct_db_free(db);
    if (rc == CT_OK && first_bad != CT_OK)
        rc = first_bad;
    return rc;
}
