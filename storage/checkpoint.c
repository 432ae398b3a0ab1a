/* cortado: the asynchronous checkpoint writer (issue 5, DESIGN §7,
 * reliability checklist §1.3).
 *
 * Design note.
 * - One writer per engine, created on first use (a CAS on eng->ckpt) and
 *   one service thread (scheduler/service.h), started by the first save.
 *   Jobs run in FIFO order, so two saves never write one file at once
 *   (checklist A12) and completion order is submission order.
 * - A job holds a snapshot of its items, staged by the calling thread:
 *   COPY copies every tensor into staging tensors that the stream keeps
 *   after the save ("spares") and reuses next time, so steady-state
 *   staging is one memcpy of the state with no allocation or page fault;
 *   SHARE takes a reference on the storage instead (ct_tensor_share), and
 *   ct_tensor_resize copies on write if the net writes the tensor while
 *   the save holds it. String tensors and std::string blobs are always
 *   copied (ct_tensor_set_string writes in place). Staging tensors are
 *   charged to the engine's memory budget: a state that does not fit
 *   fails the call with CT_ENOMEM before any file is touched (A15).
 * - Streams: saves are grouped by their pattern. A stream counts its saves
 *   in flight (slot reserved, staging, queued or being written); a call
 *   waits while it has max_in_flight (back-pressure, timed into
 *   cortado/checkpoint/stall_ns). A failed save leaves its error on the
 *   stream (the first one, plus a count of later ones) until the next call
 *   on the stream or ct_engine_flush_checkpoints reports and clears it;
 *   the call that reports it queues nothing.
 * - Retention: the writer records each file it published on a stream
 *   (path, device, inode), and after a save published with CT_OK deletes
 *   the oldest recorded files beyond keep_last, so nothing is deleted
 *   before the new file is in place, and only files this engine wrote and
 *   that were not replaced since (same inode) are ever deleted. After
 *   CT_EDURABILITY nothing is deleted: the new file might not survive a
 *   crash, the older ones must.
 * - Shared snapshots are released on a caller thread (the next call or
 *   flush), not on the writer: ct_tensor_resize decides "sole owner, write
 *   in place" with a relaxed load of the refcount, which would not order
 *   the writer's reads before the net's next in-place write. A caller
 *   thread is ordered with the net's ops by the scheduler.
 * - Shutdown (ct_engine_free) waits: the writer drains its queue before
 *   the thread exits, so every save accepted is written; errors not yet
 *   reported are dropped (they were counted in the stats).
 * Locking: one mutex (w->mu) guards the queue, the streams and the
 *   counters; it is never held across staging, a save, a file deletion or
 *   the test hook. Stats are updated outside it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cortado/stats.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "scheduler/service.h"
#include "scheduler/sync.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "storage/storage_impl.h"

/* Below the stat registry (a slow-path ct_stat_add may lock it) and
 * above the engine-wide registries. */
#define CKPT_RANK ((enum ct_lock_rank)(CT_LOCK_RANK_ENGINE + 5))

enum ckpt_stat {
    S_SAVES,            /* saves published (CT_OK or CT_EDURABILITY) */
    S_FAILURES,         /* saves that published nothing */
    S_DURABILITY,       /* published, directory fsync failed */
    S_BYTES,            /* bytes of the files published */
    S_STALLS,           /* calls that waited for a slot */
    S_STALL_NS,         /* time calls waited for a slot */
    S_STAGE_NS,         /* time calls spent staging */
    S_WRITE_NS,         /* time the writer spent saving */
    S_REMOVED,          /* files deleted by retention */
    S_RETENTION_FAILED, /* deletions that failed (retried later) */
    S_IN_FLIGHT,        /* gauge: saves queued or being written */
    S_COUNT
};

static const struct {
    const char *name;
    int kind;
} stat_defs[S_COUNT] = {
    {"cortado/checkpoint/saves", CT_STAT_COUNTER},
    {"cortado/checkpoint/failures", CT_STAT_COUNTER},
    {"cortado/checkpoint/durability_unknown", CT_STAT_COUNTER},
    {"cortado/checkpoint/bytes", CT_STAT_COUNTER},
    {"cortado/checkpoint/stalls", CT_STAT_COUNTER},
    {"cortado/checkpoint/stall_ns", CT_STAT_COUNTER},
    {"cortado/checkpoint/stage_ns", CT_STAT_COUNTER},
    {"cortado/checkpoint/write_ns", CT_STAT_COUNTER},
    {"cortado/checkpoint/retention_removed", CT_STAT_COUNTER},
    {"cortado/checkpoint/retention_failures", CT_STAT_COUNTER},
    {"cortado/checkpoint/in_flight", CT_STAT_GAUGE},
};

/* Staging tensors of one save, one per item (NULL for strings). */
struct stage_set {
    ct_tensor_t **t;
    size_t n;
    bool shared; /* holds references on live storage: never reused */
    struct stage_set *next;
};

/* A file the stream published. */
struct published {
    char *path;
    dev_t dev;
    ino_t ino;
};

struct ckpt_stream {
    char *key;       /* immutable */
    int n_in_flight; /* guarded by w->mu */
    /* The first unreported error, guarded by w->mu: err.code is CT_OK when
     * there is none. err_seq orders errors of different streams. */
    ct_status_t err;
    uint64_t err_seq;
    int n_err_more;
    struct published *pub; /* guarded by w->mu: oldest first */
    size_t n_pub, cap_pub;
    struct stage_set *spares; /* guarded by w->mu */
    int n_spares;
    struct ckpt_stream *next; /* guarded by w->mu */
};

struct ckpt_job {
    struct ckpt_stream *stream; /* the stream outlives the job */
    char *path, *db_type, *db_options;
    size_t db_options_len, n;
    int64_t iter;
    int keep_last, max_in_flight;
    struct ct_save_item *items; /* n; point into the arrays below */
    char **names, **strs;
    struct ct_serialize_options *opts;
    struct stage_set *set;
    struct ckpt_job *next; /* queue link, guarded by w->mu */
};

struct ct__ckpt_writer {
    ct_engine_t *eng;
    ct_stat_registry_t *reg;
    ct_stat_t stat[S_COUNT]; /* immutable after creation */
    struct ct__mutex mu;
    struct ct__cond cv_work;      /* the writer waits for jobs */
    struct ct__cond cv_done;      /* callers wait for slots and flushes */
    struct ct__thread thread;     /* valid once started */
    bool started, stopping;       /* guarded by mu */
    struct ckpt_job *head, *tail; /* guarded by mu: the FIFO */
    uint64_t n_queued, n_done;    /* guarded by mu: jobs ever queued, done */
    uint64_t err_seq;             /* guarded by mu */
    struct ckpt_stream *streams;  /* guarded by mu */
    struct stage_set *release;    /* guarded by mu: shared sets to drop */
    void (*hook_cb)(void *ctx, const char *path); /* guarded by mu */
    void *hook_ctx;                               /* guarded by mu */
};

/* ---- small helpers ---- */

static void stat_add(struct ct__ckpt_writer *w, enum ckpt_stat s, int64_t v)
{
    ct_stat_add(w->reg, w->stat[s], v);
}

static void set_free(struct stage_set *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++)
        ct_tensor_free(s->t[i]);
    ct__free(s->t);
    ct__free(s);
}

static void set_list_free(struct stage_set *s)
{
    while (s != NULL) {
        struct stage_set *next = s->next;
        set_free(s);
        s = next;
    }
}

static struct stage_set *set_new(size_t n, bool shared)
{
    struct stage_set *s = ct__calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->t = ct__calloc(n > 0 ? n : 1, sizeof(*s->t));
    if (s->t == NULL) {
        ct__free(s);
        return NULL;
    }
    s->n = n;
    s->shared = shared;
    return s;
}

static void job_free(struct ckpt_job *j)
{
    size_t i;

    if (j == NULL)
        return;
    for (i = 0; j->names != NULL && i < j->n; i++)
        ct__free(j->names[i]);
    for (i = 0; j->strs != NULL && i < j->n; i++)
        ct__free(j->strs[i]);
    ct__free(j->names);
    ct__free(j->strs);
    ct__free(j->opts);
    ct__free(j->items);
    ct__free(j->path);
    ct__free(j->db_type);
    ct__free(j->db_options);
    set_free(j->set);
    ct__free(j);
}

/* ---- the writer object ---- */

static void writer_destroy(struct ct__ckpt_writer *w)
{
    struct ckpt_stream *s, *next;
    size_t i;

    for (s = w->streams; s != NULL; s = next) {
        next = s->next;
        for (i = 0; i < s->n_pub; i++)
            ct__free(s->pub[i].path);
        ct__free(s->pub);
        set_list_free(s->spares);
        ct__free(s->key);
        ct__free(s);
    }
    set_list_free(w->release);
    ct__cond_destroy(&w->cv_done);
    ct__cond_destroy(&w->cv_work);
    ct__mutex_destroy(&w->mu);
    ct__free(w);
}

static int writer_new(ct_engine_t *eng, struct ct__ckpt_writer **out,
                      ct_status_t *st)
{
    struct ct__ckpt_writer *w = ct__calloc(1, sizeof(*w));
    int i, rc;

    *out = NULL;
    if (w == NULL)
        goto fail_alloc;
    w->eng = eng;
    w->reg = ct_engine_stats(eng);
    for (i = 0; i < S_COUNT; i++) {
        rc = ct_stat_registry_add(w->reg, stat_defs[i].name, stat_defs[i].kind,
                                  &w->stat[i], st);
        if (rc != CT_OK)
            goto fail_stats;
    }
    if (ct__mutex_init(&w->mu, "checkpoint writer", CKPT_RANK) != CT_OK)
        goto fail_stats;
    if (ct__cond_init(&w->cv_work) != CT_OK)
        goto fail_cv_work;
    if (ct__cond_init(&w->cv_done) != CT_OK)
        goto fail_cv_done;
    *out = w;
    return CT_OK;

fail_cv_done:
    ct__cond_destroy(&w->cv_work);
fail_cv_work:
    ct__mutex_destroy(&w->mu);
fail_stats:
    ct__free(w);
fail_alloc:
    return ct_status_setf(st, CT_ENOMEM, "checkpoint writer: out of memory");
}

/* The engine's writer, created when missing. */
static int writer_get(ct_engine_t *eng, struct ct__ckpt_writer **out,
                      ct_status_t *st)
{
    struct ct__ckpt_writer *w, *expected = NULL;
    int rc;

    /* acquire: pairs with the release half of the CAS below, so a writer
     * seen here is fully initialised. */
    w = atomic_load_explicit(&eng->ckpt, memory_order_acquire);
    if (w != NULL) {
        *out = w;
        return CT_OK;
    }
    rc = writer_new(eng, &w, st);
    if (rc != CT_OK)
        return rc;
    if (!atomic_compare_exchange_strong_explicit(&eng->ckpt, &expected, w,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        /* Another thread won; ours never ran. */
        writer_destroy(w);
        w = expected;
    }
    *out = w;
    return CT_OK;
}

/* The stream named key, created when missing. w->mu held. NULL: ENOMEM. */
static struct ckpt_stream *stream_get(struct ct__ckpt_writer *w,
                                      const char *key)
{
    struct ckpt_stream *s;

    for (s = w->streams; s != NULL; s = s->next)
        if (strcmp(s->key, key) == 0)
            return s;
    s = ct__calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->key = ct__strdup(key);
    if (s->key == NULL) {
        ct__free(s);
        return NULL;
    }
    ct_status_clear(&s->err);
    s->next = w->streams;
    w->streams = s;
    return s;
}

/* Leaves a failed save's status on the stream. w->mu held. */
static void stream_fail(struct ct__ckpt_writer *w, struct ckpt_stream *s,
                        const ct_status_t *st)
{
    if (s->err.code != CT_OK) {
        s->n_err_more++;
        return;
    }
    s->err = *st;
    s->err_seq = ++w->err_seq;
    s->n_err_more = 0;
}

/* Moves the stream's pending error into st and clears it. w->mu held. */
static int stream_take_error(struct ckpt_stream *s, ct_status_t *st)
{
    int code = s->err.code;

    if (code == CT_OK)
        return CT_OK;
    if (st != NULL) {
        *st = s->err;
        if (s->n_err_more > 0)
            ct_status_setf(st, code, "%s (and %d more failed checkpoint%s)",
                           s->err.msg, s->n_err_more,
                           s->n_err_more > 1 ? "s" : "");
    }
    ct_status_clear(&s->err);
    s->n_err_more = 0;
    return code;
}

/* ---- retention ---- */

/* Records path as published on s (moving it to the newest position when
 * it was there already) and, with delete_old, takes the entries beyond
 * keep_last out into *victims (caller frees). w->mu held. */
static void retention_plan(struct ckpt_stream *s, const char *path,
                           const struct stat *sb, int keep_last,
                           bool delete_old, struct published **victims,
                           size_t *n_victims)
{
    struct published p = {NULL, 0, 0};
    size_t i, k;

    *victims = NULL;
    *n_victims = 0;
    for (i = 0; i < s->n_pub; i++)
        if (strcmp(s->pub[i].path, path) == 0)
            break;
    if (i < s->n_pub) {
        p = s->pub[i];
        memmove(&s->pub[i], &s->pub[i + 1],
                (s->n_pub - i - 1) * sizeof(s->pub[0]));
        s->n_pub--;
    } else {
        p.path = ct__strdup(path);
        if (p.path == NULL)
            return; /* not recorded: never deleted, which is safe */
    }
    p.dev = sb->st_dev;
    p.ino = sb->st_ino;
    if (s->n_pub == s->cap_pub) {
        size_t cap = s->cap_pub ? s->cap_pub * 2 : 8;
        struct published *np = ct__realloc(s->pub, cap * sizeof(*np));
        if (np == NULL) {
            ct__free(p.path);
            return;
        }
        s->pub = np;
        s->cap_pub = cap;
    }
    s->pub[s->n_pub++] = p;
    if (!delete_old || keep_last <= 0 || s->n_pub <= (size_t)keep_last)
        return;
    k = s->n_pub - (size_t)keep_last;
    *victims = ct__malloc(k * sizeof(**victims));
    if (*victims == NULL)
        return; /* kept for the next round */
    memcpy(*victims, s->pub, k * sizeof(**victims));
    memmove(s->pub, s->pub + k, (s->n_pub - k) * sizeof(s->pub[0]));
    s->n_pub -= k;
    *n_victims = k;
}

/* Deletes the victims that are still the files we wrote; the ones that
 * fail go back to the oldest end of the stream's list. */
static void retention_apply(struct ct__ckpt_writer *w, struct ckpt_stream *s,
                            struct published *v, size_t n)
{
    size_t i, n_failed = 0;
    int64_t removed = 0;

    for (i = 0; i < n; i++) {
        struct stat sb;
        /* Someone replaced or removed it since: not ours to delete. */
        if (lstat(v[i].path, &sb) != 0 || !S_ISREG(sb.st_mode) ||
            sb.st_dev != v[i].dev || sb.st_ino != v[i].ino) {
            ct__free(v[i].path);
            continue;
        }
        if (ct__io_unlink(v[i].path) == 0 || errno == ENOENT) {
            removed++;
            ct__free(v[i].path);
            continue;
        }
        v[n_failed++] = v[i];
    }
    if (removed > 0)
        stat_add(w, S_REMOVED, removed);
    if (n_failed > 0) {
        stat_add(w, S_RETENTION_FAILED, (int64_t)n_failed);
        ct__mutex_lock(&w->mu);
        if (s->n_pub + n_failed <= s->cap_pub) {
            memmove(s->pub + n_failed, s->pub, s->n_pub * sizeof(s->pub[0]));
            memcpy(s->pub, v, n_failed * sizeof(s->pub[0]));
            s->n_pub += n_failed;
            n_failed = 0;
        }
        ct__mutex_unlock(&w->mu);
        for (i = 0; i < n_failed; i++)
            ct__free(v[i].path);
    }
    ct__free(v);
}

static void retain(struct ct__ckpt_writer *w, struct ckpt_stream *s,
                   const char *path, int keep_last, bool delete_old)
{
    struct published *victims;
    size_t n_victims;
    struct stat sb;

    if (lstat(path, &sb) != 0)
        return;
    ct__mutex_lock(&w->mu);
    retention_plan(s, path, &sb, keep_last, delete_old, &victims, &n_victims);
    ct__mutex_unlock(&w->mu);
    if (n_victims > 0)
        retention_apply(w, s, victims, n_victims);
    else
        ct__free(victims);
}

/* ---- the writer thread ---- */

static void job_run(struct ct__ckpt_writer *w, struct ckpt_job *j,
                    ct_status_t *st)
{
    struct ct_save_result res = {0, 0};
    uint64_t t0 = ct__now_ns();
    int rc;

    ct_status_clear(st);
    rc = ct_db_save_items(j->db_type, j->path, j->db_options, j->db_options_len,
                          j->items, j->n, &res, st);
    stat_add(w, S_WRITE_NS, (int64_t)(ct__now_ns() - t0));
    if (rc == CT_OK || rc == CT_EDURABILITY) {
        stat_add(w, S_SAVES, 1);
        stat_add(w, S_BYTES, (int64_t)res.n_bytes);
        if (rc == CT_EDURABILITY)
            stat_add(w, S_DURABILITY, 1);
        if (j->keep_last > 0)
            retain(w, j->stream, j->path, j->keep_last, rc == CT_OK);
    } else {
        stat_add(w, S_FAILURES, 1);
    }
    if (rc != CT_OK) {
        st->code = rc;
        ct_status_prefix(
            st, "async checkpoint of iteration %lld: ", (long long)j->iter);
    }
}

/* Books a finished save of stream s whose staging set is `set`. w->mu
 * held. Everything the save allocated is released (or kept for reuse)
 * before n_done moves, so a flush that returns sees none of it. */
static void job_finish(struct ct__ckpt_writer *w, struct ckpt_stream *s,
                       struct stage_set *set, int max_in_flight,
                       const ct_status_t *st)
{
    if (st->code != CT_OK)
        stream_fail(w, s, st);
    if (set->shared) {
        set->next = w->release;
        w->release = set;
    } else if (s->n_spares < max_in_flight) {
        set->next = s->spares;
        s->spares = set;
        s->n_spares++;
    } else {
        set_free(set); /* rare: max_in_flight went down */
    }
    s->n_in_flight--;
    w->n_done++;
    ct__cond_broadcast(&w->cv_done);
}

static void writer_main(void *arg)
{
    struct ct__ckpt_writer *w = arg;
    void (*hook)(void *, const char *);
    struct ckpt_stream *s;
    struct stage_set *set;
    struct ckpt_job *j;
    void *hook_ctx;
    ct_status_t st;
    int max_in_flight;

    ct__mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            ct__cond_wait(&w->cv_work, &w->mu);
        j = w->head;
        if (j == NULL)
            break; /* stopping, and the queue is drained */
        w->head = j->next;
        if (w->head == NULL)
            w->tail = NULL;
        hook = w->hook_cb;
        hook_ctx = w->hook_ctx;
        ct__mutex_unlock(&w->mu);

        if (hook != NULL)
            hook(hook_ctx, j->path);
        job_run(w, j, &st);
        stat_add(w, S_IN_FLIGHT, -1);
        s = j->stream;
        set = j->set;
        max_in_flight = j->max_in_flight;
        j->set = NULL;
        job_free(j);

        ct__mutex_lock(&w->mu);
        job_finish(w, s, set, max_in_flight, &st);
    }
    ct__mutex_unlock(&w->mu);
}

/* ---- staging (calling thread) ---- */

static int stage_tensor(ct_engine_t *eng, struct ckpt_job *j, size_t i,
                        const ct_tensor_t *src, ct_status_t *st)
{
    ct_dtype_t dt = ct_tensor_dtype(src);
    ct_tensor_t *t = j->set->t[i];
    size_t nbytes = ct_tensor_nbytes(src);
    int rc;

    if (t == NULL) {
        rc = ct_tensor_new(eng, &t, st);
        if (rc != CT_OK)
            return rc;
        j->set->t[i] = t;
    }
    if (j->set->shared && dt != CT_DTYPE_STRING) {
        ct_tensor_share(t, src);
        return CT_OK;
    }
    if (dt == CT_DTYPE_STRING || dt == CT_DTYPE_UNDEFINED ||
        ct_tensor_cdata(src) == NULL)
        return ct_tensor_copy(t, src, st);
    /* A reused staging tensor of the same dtype and size keeps its
     * storage (it is the only holder): no allocation, no page fault. */
    rc = ct_tensor_resize(t, dt, ct_tensor_ndim(src), ct_tensor_dims(src), st);
    if (rc != CT_OK)
        return rc;
    memcpy(ct_tensor_data(t), ct_tensor_cdata(src), nbytes);
    return CT_OK;
}

/* Fills j from the request and stages every item into j->set. */
static int job_stage(ct_engine_t *eng, struct ckpt_job *j,
                     const struct ct__ckpt_request *r, ct_status_t *st)
{
    size_t i, n = r->n;
    int rc;

    j->n = n;
    j->iter = r->iter;
    j->keep_last = r->keep_last;
    j->max_in_flight = r->max_in_flight;
    j->items = ct__calloc(n, sizeof(*j->items));
    j->names = ct__calloc(n, sizeof(*j->names));
    j->strs = ct__calloc(n, sizeof(*j->strs));
    j->opts = ct__calloc(n, sizeof(*j->opts));
    j->path = ct__strdup(r->path);
    j->db_type = ct__strdup(r->db_type);
    if (r->db_options != NULL) {
        j->db_options = ct__malloc(r->db_options_len + 1);
        if (j->db_options != NULL) {
            memcpy(j->db_options, r->db_options, r->db_options_len);
            j->db_options[r->db_options_len] = '\0';
            j->db_options_len = r->db_options_len;
        }
    }
    if (j->items == NULL || j->names == NULL || j->strs == NULL ||
        j->opts == NULL || j->path == NULL || j->db_type == NULL ||
        (r->db_options != NULL && j->db_options == NULL))
        return ct_status_setf(st, CT_ENOMEM, "checkpoint %s: out of memory",
                              r->path);
    for (i = 0; i < n; i++) {
        const struct ct_save_item *src = &r->items[i];
        struct ct_save_item *it = &j->items[i];
        j->names[i] = ct__strdup(src->name);
        if (j->names[i] == NULL)
            return ct_status_setf(st, CT_ENOMEM, "checkpoint %s: out of memory",
                                  r->path);
        it->name = j->names[i];
        if (src->opts != NULL) {
            j->opts[i] = *src->opts;
            it->opts = &j->opts[i];
        }
        if (src->tensor == NULL) {
            /* A std::string blob: copy its bytes. */
            j->strs[i] = ct__malloc(src->str_len > 0 ? src->str_len : 1);
            if (j->strs[i] == NULL)
                return ct_status_setf(st, CT_ENOMEM,
                                      "checkpoint %s: out of memory for "
                                      "string \"%s\" (%zu bytes)",
                                      r->path, src->name, src->str_len);
            if (src->str_len > 0)
                memcpy(j->strs[i], src->str, src->str_len);
            it->str = j->strs[i];
            it->str_len = src->str_len;
            continue;
        }
        rc = stage_tensor(eng, j, i, src->tensor, st);
        if (rc != CT_OK) {
            ct_status_prefix(st, "checkpoint %s: staging \"%s\": ", r->path,
                             src->name);
            return rc;
        }
        it->tensor = j->set->t[i];
    }
    return CT_OK;
}

/* ---- the internal API ---- */

int ct__ckpt_submit(ct_engine_t *eng, const struct ct__ckpt_request *r,
                    ct_status_t *st)
{
    struct ct__ckpt_writer *w;
    struct ckpt_stream *s;
    struct stage_set *release, *set = NULL, *drop = NULL;
    struct ckpt_job *j;
    uint64_t t0, t_wait = 0;
    bool shared = r->snapshot == CT_CHECKPOINT_SNAPSHOT_SHARE;
    int rc;

    CT_ASSERT(r->max_in_flight >= 1 && r->keep_last >= 0 && r->n > 0,
              "checkpoint request: max_in_flight %d, keep_last %d, %zu items",
              r->max_in_flight, r->keep_last, r->n);
    rc = writer_get(eng, &w, st);
    if (rc != CT_OK)
        return rc;
    j = ct__calloc(1, sizeof(*j));
    if (j == NULL)
        return ct_status_setf(st, CT_ENOMEM, "checkpoint %s: out of memory",
                              r->path);

    ct__mutex_lock(&w->mu);
    release = w->release;
    w->release = NULL;
    s = stream_get(w, r->stream);
    if (s == NULL) {
        rc = ct_status_setf(st, CT_ENOMEM, "checkpoint %s: out of memory",
                            r->path);
        goto unlock;
    }
    t0 = ct__now_ns();
    while (s->n_in_flight >= r->max_in_flight) {
        ct__cond_wait(&w->cv_done, &w->mu);
        t_wait = ct__now_ns() - t0;
    }
    rc = stream_take_error(s, st);
    if (rc != CT_OK)
        goto unlock;
    if (!w->started) {
        rc = ct__service_thread_start(&w->thread, "ct-ckpt", writer_main, w);
        if (rc != CT_OK) {
            rc = ct_status_setf(st, rc,
                                "checkpoint %s: cannot start the writer "
                                "thread",
                                r->path);
            goto unlock;
        }
        w->started = true;
    }
    s->n_in_flight++;
    if (!shared && s->spares != NULL) {
        set = s->spares;
        s->spares = set->next;
        s->n_spares--;
        set->next = NULL;
    }
unlock:
    ct__mutex_unlock(&w->mu);
    set_list_free(release);
    if (t_wait > 0) {
        stat_add(w, S_STALLS, 1);
        stat_add(w, S_STALL_NS, (int64_t)t_wait);
    }
    if (rc != CT_OK) {
        ct__free(j);
        return rc;
    }

    /* Stage without the lock: this is the copy the caller waits for. */
    t0 = ct__now_ns();
    if (set != NULL && set->n != r->n) {
        drop = set;
        set = NULL;
    }
    j->stream = s;
    j->set = set != NULL ? set : set_new(r->n, shared);
    if (j->set == NULL)
        rc = ct_status_setf(st, CT_ENOMEM, "checkpoint %s: out of memory",
                            r->path);
    else
        rc = job_stage(eng, j, r, st);
    set_free(drop);
    stat_add(w, S_STAGE_NS, (int64_t)(ct__now_ns() - t0));
    if (rc == CT_OK)
        stat_add(w, S_IN_FLIGHT, 1); /* before the writer can take it off */

    ct__mutex_lock(&w->mu);
    if (rc != CT_OK) {
        s->n_in_flight--;
        ct__cond_broadcast(&w->cv_done);
    } else {
        if (w->tail != NULL)
            w->tail->next = j;
        else
            w->head = j;
        w->tail = j;
        w->n_queued++;
        ct__cond_signal(&w->cv_work);
    }
    ct__mutex_unlock(&w->mu);
    if (rc != CT_OK) {
        job_free(j);
        return rc;
    }
    return CT_OK;
}

int ct__ckpt_retain(ct_engine_t *eng, const char *stream, const char *path,
                    int keep_last, ct_status_t *st)
{
    struct ct__ckpt_writer *w;
    struct ckpt_stream *s;
    int rc = writer_get(eng, &w, st);

    if (rc != CT_OK)
        return rc;
    ct__mutex_lock(&w->mu);
    s = stream_get(w, stream);
    ct__mutex_unlock(&w->mu);
    if (s == NULL)
        return ct_status_setf(st, CT_ENOMEM, "checkpoint %s: out of memory",
                              path);
    retain(w, s, path, keep_last, true);
    return CT_OK;
}

int ct__ckpt_set_hook(ct_engine_t *eng, void (*cb)(void *ctx, const char *path),
                      void *ctx, ct_status_t *st)
{
    struct ct__ckpt_writer *w;
    int rc = writer_get(eng, &w, st);

    if (rc != CT_OK)
        return rc;
    ct__mutex_lock(&w->mu);
    w->hook_cb = cb;
    w->hook_ctx = ctx;
    ct__mutex_unlock(&w->mu);
    return CT_OK;
}

void ct__ckpt_writer_free(ct_engine_t *eng)
{
    /* acquire: see writer_get. No other call may run now (engine.h). */
    struct ct__ckpt_writer *w =
        atomic_load_explicit(&eng->ckpt, memory_order_acquire);
    bool started;

    if (w == NULL)
        return;
    ct__mutex_lock(&w->mu);
    w->stopping = true;
    started = w->started;
    ct__cond_broadcast(&w->cv_work);
    ct__mutex_unlock(&w->mu);
    if (started)
        ct__service_thread_join(&w->thread);
    writer_destroy(w);
    atomic_store_explicit(&eng->ckpt, NULL, memory_order_relaxed);
}

/* ---- the public API ---- */

int ct_engine_flush_checkpoints(ct_engine_t *eng, ct_status_t *st)
{
    struct ct__ckpt_writer *w =
        atomic_load_explicit(&eng->ckpt, memory_order_acquire);
    struct ckpt_stream *s, *first = NULL;
    struct stage_set *sets = NULL;
    uint64_t target;
    int n_more = 0, rc = CT_OK;

    if (w == NULL)
        return CT_OK;
    ct__mutex_lock(&w->mu);
    /* Jobs finish in queue order: waiting for the count is waiting for
     * every job queued before this point. */
    target = w->n_queued;
    while (w->n_done < target)
        ct__cond_wait(&w->cv_done, &w->mu);
    for (s = w->streams; s != NULL; s = s->next) {
        if (s->err.code != CT_OK) {
            if (first == NULL || s->err_seq < first->err_seq)
                first = s;
            n_more += 1 + s->n_err_more;
        }
        while (s->spares != NULL) {
            struct stage_set *x = s->spares;
            s->spares = x->next;
            x->next = sets;
            sets = x;
        }
        s->n_spares = 0;
    }
    if (first != NULL) {
        n_more -= 1 + first->n_err_more;
        rc = stream_take_error(first, st);
        for (s = w->streams; s != NULL; s = s->next) {
            ct_status_clear(&s->err);
            s->n_err_more = 0;
        }
    }
    while (w->release != NULL) {
        struct stage_set *x = w->release;
        w->release = x->next;
        x->next = sets;
        sets = x;
    }
    ct__mutex_unlock(&w->mu);
    set_list_free(sets);
    if (rc != CT_OK && n_more > 0 && st != NULL) {
        char msg[CT_STATUS_MSG_MAX];
        memcpy(msg, st->msg, sizeof(msg));
        ct_status_setf(st, rc, "%s (and %d failed checkpoint%s of other paths)",
                       msg, n_more, n_more > 1 ? "s" : "");
    }
    return rc;
}
