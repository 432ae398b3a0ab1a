/* cortado: the lmdb backend (Caffe2's caffe2/db/lmdb.cc), on liblmdb.
 *
 * Design note. As in Caffe2 the DB is a directory holding data.mdb and
 * lock.mdb, the map size is 1 TiB (address space only), NEW creates the
 * directory and fails when it exists (CT_EEXIST), READ opens the
 * environment read-only with MDB_NOTLS so cursors are not tied to a
 * thread. Values come straight from the memory map (no copy); a put
 * reserves space (MDB_RESERVE) and copies the pieces in. lmdb is
 * transactional itself: a committed transaction is durable, one never
 * committed leaves no trace, so lmdb needs no manifest of ours.
 *
 * lmdb forbids opening one environment twice in a process (its locks
 * are per process) and using it after fork(). Environments are therefore
 * shared through a process-wide table keyed by the directory's real path
 * and refcounted; an entry made by another process (we are a fork child)
 * is never reused, and a write open of an environment that is open
 * read-only is CT_EBUSY. The table's mutex is a leaf: nothing else is
 * locked while it is held, and lmdb calls under it only open or close
 * environments.
 * Every lmdb error is mapped to a status naming the path and the call
 * (mdb_strerror text); nothing aborts.
 */
#ifdef CT_HAVE_LMDB

/* realpath() is an XSI interface. */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/alloc.h"
#include "storage/fileio.h"
#include "storage/storage_impl.h"

#define MAP_SIZE ((size_t)1 << 40)

struct env_ref {
    struct env_ref *next;
    char *real; /* realpath of the directory */
    MDB_env *env;
    MDB_dbi dbi;
    bool read_only;
    pid_t pid;
    int refs;
};

/* guarded by env_mu (a leaf lock, statically initialised so the table
 * needs no set-up call) */
static pthread_mutex_t env_mu = PTHREAD_MUTEX_INITIALIZER;
static struct env_ref *envs;

struct ldb {
    struct env_ref *ref;
    ct_db_t *db;
};

struct lcur {
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    struct ct__buf key; /* NUL-terminated copy of the key */
};

struct ltxn {
    MDB_txn *txn; /* NULL between a failed begin and the next call */
};

static int lmdb_fail(ct_status_t *st, const char *path, const char *call,
                     int err)
{
    int code = CT_EIO;

    if (err == MDB_CORRUPTED || err == MDB_INVALID || err == MDB_PAGE_NOTFOUND)
        code = CT_ECORRUPT;
    else if (err == MDB_VERSION_MISMATCH)
        code = CT_ENOTSUP;
    else if (err == ENOENT)
        code = CT_ENOTFOUND;
    else if (err == ENOMEM)
        code = CT_ENOMEM;
    else if (err == MDB_BAD_VALSIZE)
        code = CT_EINVAL;
    return ct_status_setf(st, code, "%s: %s failed: %s", path, call,
                          mdb_strerror(err));
}

static void env_unref(struct env_ref *r)
{
    struct env_ref **p;

    pthread_mutex_lock(&env_mu);
    if (--r->refs > 0) {
        pthread_mutex_unlock(&env_mu);
        return;
    }
    for (p = &envs; *p != NULL; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    pthread_mutex_unlock(&env_mu);
    /* After a fork the child must not touch the parent's environment. */
    if (r->pid == getpid())
        mdb_env_close(r->env);
    ct__free(r->real);
    ct__free(r);
}

static int env_open_new(const char *path, const char *real, bool read_only,
                        struct env_ref **out, ct_status_t *st)
{
    struct env_ref *r = ct__calloc(1, sizeof(*r));
    MDB_txn *txn;
    int err;

    if (r == NULL || (r->real = ct__strdup(real)) == NULL) {
        ct__free(r);
        return ct_status_setf(st, CT_ENOMEM, "out of memory opening %s", path);
    }
    r->read_only = read_only;
    r->pid = getpid();
    r->refs = 1;
    err = mdb_env_create(&r->env);
    if (err == 0)
        err = mdb_env_set_mapsize(r->env, MAP_SIZE);
    if (err == 0)
        err = mdb_env_open(r->env, path, read_only ? MDB_RDONLY | MDB_NOTLS : 0,
                           0664);
    if (err != 0) {
        int rc = lmdb_fail(st, path, "mdb_env_open", err);
        if (r->env != NULL)
            mdb_env_close(r->env);
        ct__free(r->real);
        ct__free(r);
        return rc;
    }
    err = mdb_txn_begin(r->env, NULL, read_only ? MDB_RDONLY : 0, &txn);
    if (err == 0) {
        err = mdb_dbi_open(txn, NULL, 0, &r->dbi);
        if (err == 0)
            err = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (err != 0) {
        int rc = lmdb_fail(st, path, "mdb_dbi_open", err);
        mdb_env_close(r->env);
        ct__free(r->real);
        ct__free(r);
        return rc;
    }
    *out = r;
    return CT_OK;
}

static int env_get(const char *path, bool read_only, struct env_ref **out,
                   ct_status_t *st)
{
    char *real = realpath(path, NULL);
    struct env_ref *r;
    int rc = CT_OK;

    if (real == NULL) {
        char ebuf[128];
        return ct_status_setf(st, errno == ENOENT ? CT_ENOTFOUND : CT_EIO,
                              "Cannot open lmdb %s: %s", path,
                              ct__errno_text(errno, ebuf, sizeof(ebuf)));
    }
    pthread_mutex_lock(&env_mu);
    for (r = envs; r != NULL; r = r->next)
        if (r->pid == getpid() && strcmp(r->real, real) == 0)
            break;
    if (r != NULL) {
        if (r->read_only && !read_only)
            rc = ct_status_setf(st, CT_EBUSY,
                                "lmdb %s is already open read-only in this "
                                "process",
                                path);
        else
            r->refs++;
    } else {
        rc = env_open_new(path, real, read_only, &r, st);
        if (rc == CT_OK) {
            r->next = envs;
            envs = r;
        }
    }
    pthread_mutex_unlock(&env_mu);
    free(real); /* realpath allocates with malloc */
    if (rc == CT_OK)
        *out = r;
    return rc;
}

static uint64_t data_size(const char *path)
{
    char *p = ct__malloc(strlen(path) + 16);
    struct stat sb;
    uint64_t n = 0;

    if (p == NULL)
        return 0;
    sprintf(p, "%s/data.mdb", path);
    if (stat(p, &sb) == 0)
        n = (uint64_t)sb.st_size;
    ct__free(p);
    return n;
}

static int lmdb_open(ct_db_t *db, ct_status_t *st)
{
    struct ldb *l;
    int rc;

    if (db->mode == CT_DB_NEW && mkdir(db->path, 0744) != 0) {
        char ebuf[128];
        return ct_status_setf(st, errno == EEXIST ? CT_EEXIST : CT_EIO,
                              "mkdir %s failed: %s", db->path,
                              ct__errno_text(errno, ebuf, sizeof(ebuf)));
    }
    l = ct__calloc(1, sizeof(*l));
    if (l == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory opening %s",
                              db->path);
    rc = env_get(db->path, db->mode == CT_DB_READ, &l->ref, st);
    if (rc != CT_OK) {
        ct__free(l);
        return rc;
    }
    l->db = db;
    db->impl = l;
    db->size = data_size(db->path);
    return CT_OK;
}

static int lmdb_close(ct_db_t *db, bool publish, ct_status_t *st)
{
    struct ldb *l = db->impl;

    (void)publish;
    (void)st;
    env_unref(l->ref);
    db->size = data_size(db->path);
    ct__free(l);
    return CT_OK;
}

/* ---- cursors ---- */

static int cur_set(ct_db_cursor_t *c, MDB_cursor_op op, ct_status_t *st)
{
    struct lcur *lc = c->impl;
    int err = mdb_cursor_get(lc->cur, &lc->k, &lc->v, op);

    c->valid = false;
    if (err == MDB_NOTFOUND)
        return CT_OK;
    if (err != 0)
        return lmdb_fail(st, c->db->path, "mdb_cursor_get", err);
    lc->key.len = 0;
    if (ct__buf_reserve(&lc->key, lc->k.mv_size + 1) != CT_OK)
        return ct_status_setf(st, CT_ENOMEM, "out of memory reading %s",
                              c->db->path);
    ct__buf_put(&lc->key, lc->k.mv_data, lc->k.mv_size);
    lc->key.p[lc->key.len] = '\0';
    c->key = (const char *)lc->key.p;
    c->klen = lc->key.len;
    c->valid = true;
    return CT_OK;
}

static void lmdb_cursor_free(ct_db_cursor_t *c)
{
    struct lcur *lc = c->impl;

    if (lc == NULL)
        return;
    if (lc->cur != NULL)
        mdb_cursor_close(lc->cur);
    if (lc->txn != NULL)
        mdb_txn_abort(lc->txn);
    ct__buf_destroy(&lc->key);
    ct__free(lc);
    c->impl = NULL;
}

static int lmdb_cursor_new(ct_db_cursor_t *c, ct_status_t *st)
{
    struct ldb *l = c->db->impl;
    struct lcur *lc = ct__calloc(1, sizeof(*lc));
    int err, rc;

    if (lc == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory reading %s",
                              c->db->path);
    c->impl = lc;
    err = mdb_txn_begin(l->ref->env, NULL, MDB_RDONLY, &lc->txn);
    if (err == 0)
        err = mdb_cursor_open(lc->txn, l->ref->dbi, &lc->cur);
    if (err != 0) {
        rc = lmdb_fail(st, c->db->path, "mdb_cursor_open", err);
        lmdb_cursor_free(c);
        return rc;
    }
    rc = cur_set(c, MDB_FIRST, st);
    if (rc != CT_OK)
        lmdb_cursor_free(c);
    return rc;
}

static int lmdb_cursor_seek_to_first(ct_db_cursor_t *c, ct_status_t *st)
{
    return cur_set(c, MDB_FIRST, st);
}

static int lmdb_cursor_seek(ct_db_cursor_t *c, const void *key, size_t klen,
                            ct_status_t *st)
{
    struct lcur *lc = c->impl;

    lc->k.mv_data = (void *)key;
    lc->k.mv_size = klen;
    return cur_set(c, MDB_SET_RANGE, st);
}

static int lmdb_cursor_next(ct_db_cursor_t *c, ct_status_t *st)
{
    return cur_set(c, MDB_NEXT, st);
}

static int lmdb_cursor_value(ct_db_cursor_t *c, const void **val, size_t *len,
                             ct_status_t *st)
{
    struct lcur *lc = c->impl;

    (void)st;
    *val = lc->v.mv_data;
    *len = lc->v.mv_size;
    return CT_OK;
}

/* ---- transactions ---- */

static int begin(ct_db_txn_t *t, ct_status_t *st)
{
    struct ldb *l = t->db->impl;
    struct ltxn *lt = t->impl;
    int err = mdb_txn_begin(l->ref->env, NULL, 0, &lt->txn);

    if (err != 0) {
        lt->txn = NULL;
        return lmdb_fail(st, t->db->path, "mdb_txn_begin", err);
    }
    return CT_OK;
}

static int lmdb_txn_new(ct_db_txn_t *t, ct_status_t *st)
{
    struct ltxn *lt = ct__calloc(1, sizeof(*lt));
    int rc;

    if (lt == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory writing %s",
                              t->db->path);
    t->impl = lt;
    rc = begin(t, st);
    if (rc != CT_OK) {
        ct__free(lt);
        t->impl = NULL;
    }
    return rc;
}

static int lmdb_txn_putv(ct_db_txn_t *t, const void *key, size_t klen,
                         const struct ct_db_iov *iov, size_t n, uint64_t vlen,
                         ct_status_t *st)
{
    struct ldb *l = t->db->impl;
    struct ltxn *lt = t->impl;
    MDB_val k, v;
    size_t i;
    int err, rc;

    if (lt->txn == NULL && (rc = begin(t, st)) != CT_OK)
        return rc;
    k.mv_data = (void *)key;
    k.mv_size = klen;
    v.mv_data = NULL;
    v.mv_size = (size_t)vlen;
    err = mdb_put(lt->txn, l->ref->dbi, &k, &v, MDB_RESERVE);
    if (err != 0)
        return lmdb_fail(st, t->db->path, "mdb_put", err);
    for (i = 0; i < n; i++) {
        if (iov[i].len > 0)
            memcpy(v.mv_data, iov[i].base, iov[i].len);
        v.mv_data = (char *)v.mv_data + iov[i].len;
    }
    return CT_OK;
}

static int lmdb_txn_commit(ct_db_txn_t *t, ct_status_t *st)
{
    struct ltxn *lt = t->impl;
    int err;

    if (lt->txn == NULL)
        return begin(t, st);
    err = mdb_txn_commit(lt->txn);
    lt->txn = NULL;
    if (err != 0)
        return lmdb_fail(st, t->db->path, "mdb_txn_commit", err);
    return begin(t, st);
}

static void lmdb_txn_free(ct_db_txn_t *t)
{
    struct ltxn *lt = t->impl;

    if (lt->txn != NULL)
        mdb_txn_abort(lt->txn);
    ct__free(lt);
}

const struct ct__db_backend ct__db_lmdb = {
    .name = "lmdb",
    .alias = "LMDB",
    .open_cb = lmdb_open,
    .close_cb = lmdb_close,
    .cursor_new_cb = lmdb_cursor_new,
    .cursor_free_cb = lmdb_cursor_free,
    .cursor_seek_to_first_cb = lmdb_cursor_seek_to_first,
    .cursor_seek_cb = lmdb_cursor_seek,
    .cursor_next_cb = lmdb_cursor_next,
    .cursor_value_cb = lmdb_cursor_value,
    .txn_new_cb = lmdb_txn_new,
    .txn_putv_cb = lmdb_txn_putv,
    .txn_commit_cb = lmdb_txn_commit,
    .txn_free_cb = lmdb_txn_free,
};

#else
/* Built without liblmdb: nothing here (ISO C wants a declaration). */
typedef int ct__lmdb_unavailable;
#endif /* CT_HAVE_LMDB */
