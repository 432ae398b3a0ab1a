/* cortado: the DB interface (Caffe2's db::DB) and its registry.
 *
 * Design note. The registry is a static table of backends, each reachable
 * under its canonical name and Caffe2's second spelling ("minidb" and
 * "MiniDB"); lmdb is present when the build found liblmdb. Unlike
 * Caffe2's CreateDB, which returns null for an unknown type (so DBExists
 * said "true"), opening an unregistered type is an error that lists the
 * registered ones. Every call here only checks the mode and forwards to
 * the backend; cursors and transactions are counted so that closing a DB
 * under a live one is a contract violation caught at once.
 */
#include <string.h>

#include "engine/alloc.h"
#include "storage/fileio.h"
#include "storage/storage_impl.h"

static const struct ct__db_backend *const backends[] = {
    &ct__db_minidb,
#ifdef CT_HAVE_LMDB
    &ct__db_lmdb,
#endif
};

#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

static const struct ct__db_backend *find_backend(const char *type)
{
    size_t i;

    for (i = 0; i < N_BACKENDS; i++)
        if (strcmp(type, backends[i]->name) == 0 ||
            strcmp(type, backends[i]->alias) == 0)
            return backends[i];
    return NULL;
}

bool ct_db_type_registered(const char *type)
{
    return type != NULL && find_backend(type) != NULL;
}

const char *ct_db_type_list(void)
{
#ifdef CT_HAVE_LMDB
    return "minidb, MiniDB, lmdb, LMDB";
#else
    return "minidb, MiniDB";
#endif
}

static void db_release(ct_db_t *db)
{
    ct__free(db->path);
    ct__free(db->type);
    ct__free(db);
}

int ct_db_open(const char *type, const char *path, enum ct_db_mode mode,
               ct_db_t **out, ct_status_t *st)
{
    const struct ct__db_backend *be;
    ct_db_t *db;
    int rc;

    CT_ASSERT(type != NULL && path != NULL && out != NULL,
              "ct_db_open: NULL argument");
    CT_ASSERT(mode >= CT_DB_READ && mode < CT_DB_MODE_COUNT, "bad mode %d",
              (int)mode);
    be = find_backend(type);
    if (be == NULL)
        return ct_status_setf(st, CT_ENOTFOUND,
                              "Cannot find db implementation of type %s "
                              "(while trying to open %s); registered types: "
                              "%s",
                              type, path, ct_db_type_list());
    if (path[0] == '\0')
        return ct_status_setf(st, CT_EPATH, "empty %s path", be->name);
    db = ct__calloc(1, sizeof(*db));
    if (db == NULL)
        goto oom;
    db->be = be;
    db->mode = mode;
    db->path = ct__strdup(path);
    db->type = ct__strdup(type);
    if (db->path == NULL || db->type == NULL) {
        db_release(db);
        goto oom;
    }
    rc = be->open_cb(db, st);
    if (rc != CT_OK) {
        db_release(db);
        return rc;
    }
    *out = db;
    return CT_OK;

oom:
    return ct_status_setf(st, CT_ENOMEM, "out of memory opening %s", path);
}

int ct__db_close_sized(ct_db_t *db, uint64_t *size, ct_status_t *st)
{
    int rc;

    if (db == NULL)
        return CT_OK;
    CT_ASSERT(db->n_cursors == 0 && db->n_txns == 0,
              "closing db %s with %d cursors and %d transactions open",
              db->path, db->n_cursors, db->n_txns);
    rc = db->be->close_cb(db, true, st);
    if (size != NULL)
        *size = db->size;
    db_release(db);
    return rc;
}

int ct_db_close(ct_db_t *db, ct_status_t *st)
{
    return ct__db_close_sized(db, NULL, st);
}

void ct_db_free(ct_db_t *db)
{
    if (db == NULL)
        return;
    CT_ASSERT(db->n_cursors == 0 && db->n_txns == 0,
              "freeing db %s with %d cursors and %d transactions open",
              db->path, db->n_cursors, db->n_txns);
    db->be->close_cb(db, false, NULL);
    db_release(db);
}

int ct_db_set_options(ct_db_t *db, const char *opts, size_t len,
                      ct_status_t *st)
{
    (void)db;
    (void)opts;
    (void)len;
    (void)st;
    return CT_OK;
}

const char *ct_db_path(const ct_db_t *db)
{
    return db->path;
}

const char *ct_db_type_name(const ct_db_t *db)
{
    return db->be->name;
}

uint64_t ct_db_size(const ct_db_t *db)
{
    return db->size;
}

/* ---- cursors ---- */

int ct_db_cursor_new(ct_db_t *db, ct_db_cursor_t **out, ct_status_t *st)
{
    ct_db_cursor_t *c;
    int rc;

    CT_ASSERT(db != NULL && out != NULL, "ct_db_cursor_new: NULL argument");
    if (db->mode != CT_DB_READ)
        return ct_status_setf(st, CT_ESTATE,
                              "%s: cursors need a db opened in READ mode",
                              db->path);
    c = ct__calloc(1, sizeof(*c));
    if (c == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory reading %s",
                              db->path);
    c->db = db;
    c->offset = -1;
    rc = db->be->cursor_new_cb(c, st);
    if (rc != CT_OK) {
        ct__free(c);
        return rc;
    }
    db->n_cursors++;
    *out = c;
    return CT_OK;
}

void ct_db_cursor_free(ct_db_cursor_t *c)
{
    if (c == NULL)
        return;
    c->db->be->cursor_free_cb(c);
    c->db->n_cursors--;
    ct__free(c);
}

int ct_db_cursor_seek_to_first(ct_db_cursor_t *c, ct_status_t *st)
{
    return c->db->be->cursor_seek_to_first_cb(c, st);
}

int ct_db_cursor_seek(ct_db_cursor_t *c, const void *key, size_t klen,
                      ct_status_t *st)
{
    return c->db->be->cursor_seek_cb(c, key, klen, st);
}

int ct_db_cursor_next(ct_db_cursor_t *c, ct_status_t *st)
{
    if (!c->valid)
        return ct_status_setf(st, CT_ESTATE, "%s: cursor past the end",
                              c->db->path);
    return c->db->be->cursor_next_cb(c, st);
}

bool ct_db_cursor_valid(const ct_db_cursor_t *c)
{
    return c->valid;
}

const char *ct_db_cursor_key(const ct_db_cursor_t *c, size_t *len)
{
    CT_ASSERT(c->valid, "key of an invalid cursor");
    if (len != NULL)
        *len = c->klen;
    return c->key;
}

int ct_db_cursor_value(ct_db_cursor_t *c, const void **val, size_t *len,
                       ct_status_t *st)
{
    CT_ASSERT(c->valid, "value of an invalid cursor");
    return c->db->be->cursor_value_cb(c, val, len, st);
}

int64_t ct_db_cursor_offset(const ct_db_cursor_t *c)
{
    return c->offset;
}

/* ---- transactions ---- */

int ct_db_txn_new(ct_db_t *db, ct_db_txn_t **out, ct_status_t *st)
{
    ct_db_txn_t *t;
    int rc;

    CT_ASSERT(db != NULL && out != NULL, "ct_db_txn_new: NULL argument");
    if (db->mode == CT_DB_READ)
        return ct_status_setf(st, CT_ESTATE,
                              "%s: transactions need a db opened in WRITE "
                              "or NEW mode",
                              db->path);
    t = ct__calloc(1, sizeof(*t));
    if (t == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory writing %s",
                              db->path);
    t->db = db;
    rc = db->be->txn_new_cb(t, st);
    if (rc != CT_OK) {
        ct__free(t);
        return rc;
    }
    db->n_txns++;
    *out = t;
    return CT_OK;
}

int ct_db_txn_putv(ct_db_txn_t *t, const void *key, size_t klen,
                   const struct ct_db_iov *iov, size_t n, ct_status_t *st)
{
    uint64_t vlen = 0;
    size_t i;

    CT_ASSERT(t != NULL && (key != NULL || klen == 0) &&
                  (iov != NULL || n == 0),
              "ct_db_txn_putv: NULL argument");
    for (i = 0; i < n; i++)
        vlen += iov[i].len;
    return t->db->be->txn_putv_cb(t, key, klen, iov, n, vlen, st);
}

int ct_db_txn_put(ct_db_txn_t *t, const void *key, size_t klen, const void *val,
                  size_t vlen, ct_status_t *st)
{
    struct ct_db_iov v;

    v.base = val;
    v.len = vlen;
    return ct_db_txn_putv(t, key, klen, &v, 1, st);
}

int ct_db_txn_commit(ct_db_txn_t *t, ct_status_t *st)
{
    return t->db->be->txn_commit_cb(t, st);
}

void ct_db_txn_free(ct_db_txn_t *t)
{
    if (t == NULL)
        return;
    t->db->be->txn_free_cb(t);
    t->db->n_txns--;
    ct__free(t);
}

/* ---- whole-DB helpers ---- */

int ct_db_write_records(const char *type, const char *path,
                        const struct ct_db_record *recs, size_t n,
                        ct_status_t *st)
{
    ct_db_t *db;
    ct_db_txn_t *t = NULL;
    size_t i;
    int rc;

    CT_ASSERT(recs != NULL || n == 0, "ct_db_write_records: NULL records");
    rc = ct_db_open(type, path, CT_DB_NEW, &db, st);
    if (rc != CT_OK)
        return rc;
    rc = ct_db_txn_new(db, &t, st);
    for (i = 0; i < n && rc == CT_OK; i++)
        rc = ct_db_txn_put(t, recs[i].key, recs[i].klen, recs[i].val,
                           recs[i].vlen, st);
    if (rc == CT_OK)
        rc = ct_db_txn_commit(t, st);
    ct_db_txn_free(t);
    if (rc != CT_OK) {
        ct_db_free(db);
        return rc;
    }
    return ct_db_close(db, st);
}

int ct_db_verify(const char *type, const char *path, uint64_t *n_records,
                 ct_status_t *st)
{
    ct_db_t *db;
    ct_db_cursor_t *c = NULL;
    uint64_t n = 0;
    int rc;

    rc = ct_db_open(type, path, CT_DB_READ, &db, st);
    if (rc != CT_OK)
        return rc;
    rc = ct_db_cursor_new(db, &c, st);
    while (rc == CT_OK && ct_db_cursor_valid(c)) {
        const void *val;
        size_t len;
        rc = ct_db_cursor_value(c, &val, &len, st);
        if (rc == CT_OK) {
            n++;
            rc = ct_db_cursor_next(c, st);
        }
    }
    ct_db_cursor_free(c);
    ct_db_free(db);
    if (rc == CT_OK && n_records != NULL)
        *n_records = n;
    return rc;
}

int ct_db_sweep_temp_files(const char *path, int *n_removed, ct_status_t *st)
{
    CT_ASSERT(path != NULL, "ct_db_sweep_temp_files: NULL path");
    return ct__sweep_temp_files(path, n_removed, st);
}
