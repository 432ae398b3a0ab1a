/* cortado: the engine's scheduling services (see sched.h).
 *
 * Design note. The pool is created lazily because most engines that only
 * run simple nets on small tensors never need threads, and creating them
 * costs ~35 us each plus their stacks. The creation path takes the
 * engine's scheduler mutex (rank ENGINE) and publishes the pool pointer
 * with a release store; readers load it with acquire, so a thread that
 * sees the pointer also sees the fully built pool. Once published the
 * pointer never changes until ct_engine_free, which runs when no other
 * call on the engine is in flight (engine.h contract).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "scheduler/lock_rank.h"
#include "ops/op_impl.h"
#include "scheduler/parallel_for.h"
#include "scheduler/pool.h"
#include "scheduler/sched.h"
#include "scheduler/sync.h"
#include "scheduler/topology.h"

struct ct__sched_state {
    struct ct__mutex mu;             /* guards creation of topo and pool */
    struct ct__topology *topo;       /* guarded by mu; then immutable */
    _Atomic(struct ct__pool *) pool; /* release store under mu */
};

#ifdef CT_HAVE_OPENBLAS
/* OpenBLAS's own threads would compete with the pool: every BLAS call
 * runs on the thread that makes it (process-wide setting, idempotent). */
void openblas_set_num_threads(int n);
#endif

int ct__engine_sched_init(ct_engine_t *eng)
{
    struct ct__sched_state *s = ct__calloc(1, sizeof(*s));

#ifdef CT_HAVE_OPENBLAS
    openblas_set_num_threads(1);
#endif
    if (s == NULL)
        return CT_ENOMEM;
    if (ct__mutex_init(&s->mu, "engine.sched", CT_LOCK_RANK_ENGINE) != CT_OK) {
        ct__free(s);
        return CT_ENOMEM;
    }
    atomic_init(&s->pool, NULL);
    eng->sched = s;
    return CT_OK;
}

void ct__engine_sched_free(ct_engine_t *eng)
{
    struct ct__sched_state *s = eng->sched;

    if (s == NULL)
        return;
    ct__pool_free(atomic_load_explicit(&s->pool, memory_order_relaxed));
    ct__topology_free(s->topo);
    ct__mutex_destroy(&s->mu);
    ct__free(s);
    eng->sched = NULL;
}

static int topology_locked(ct_engine_t *eng, ct_status_t *st)
{
    struct ct__sched_state *s = eng->sched;
    int rc;

    if (s->topo != NULL)
        return CT_OK;
    /* NULL (no config string, no CT_TOPOLOGY) is the real machine. */
    rc = ct__topology_new(eng->topology, 0, &s->topo, st);
    if (rc != CT_OK)
        ct_status_prefix(st, "engine topology: ");
    return rc;
}

int ct__engine_topology(ct_engine_t *eng, const struct ct__topology **out,
                        ct_status_t *st)
{
    struct ct__sched_state *s = eng->sched;
    int rc;

    ct__mutex_lock(&s->mu);
    rc = topology_locked(eng, st);
    ct__mutex_unlock(&s->mu);
    *out = rc == CT_OK ? s->topo : NULL;
    return rc;
}

static void pool_notice(void *ctx, const char *msg)
{
    ct__engine_notice_once(ctx, CT_NOTICE_BIND_SKIPPED, "%s", msg);
}

struct ct__pool *ct__engine_pool_peek(const ct_engine_t *eng)
{
    /* acquire: pairs with the release store in ct__engine_pool, so the
     * pool's fields are visible to whoever sees the pointer. */
    return atomic_load_explicit(&eng->sched->pool, memory_order_acquire);
}

int ct__engine_pool(ct_engine_t *eng, struct ct__pool **out, ct_status_t *st)
{
    struct ct__sched_state *s = eng->sched;
    struct ct__pool_config cfg;
    struct ct__pool *pool = ct__engine_pool_peek(eng);
    int rc;

    if (CT_LIKELY(pool != NULL)) {
        *out = pool;
        return CT_OK;
    }
    ct__mutex_lock(&s->mu);
    pool = atomic_load_explicit(&s->pool, memory_order_relaxed);
    if (pool != NULL) {
        ct__mutex_unlock(&s->mu);
        *out = pool;
        return CT_OK;
    }
    rc = topology_locked(eng, st);
    if (rc == CT_OK) {
        ct__pool_config_init(&cfg);
        cfg.n_threads = eng->cfg.n_threads;
        cfg.topo = s->topo;
        cfg.layout_flags = eng->cfg.intra_op == CT_INTRA_OP_OPENMP
                               ? CT__LAYOUT_NODE_CPUSET
                               : 0;
        cfg.name = "ct";
        cfg.notice_cb = pool_notice;
        cfg.notice_ctx = eng;
        rc = ct__pool_new(&cfg, &pool, st);
        if (rc == CT_OK)
            atomic_store_explicit(&s->pool, pool, memory_order_release);
        else
            ct_status_prefix(st, "engine pool: ");
    }
    ct__mutex_unlock(&s->mu);
    *out = rc == CT_OK ? pool : NULL;
    return rc;
}

/* ---- ct_parallel_for ---- */

#ifdef CT_HAVE_OPENMP
#include <omp.h>

static void parallel_for_openmp(int64_t n, int64_t grain, int nth,
                                ct_range_fn fn, void *arg)
{
    int64_t n_chunks = (n + grain - 1) / grain;
    int64_t c;

    if (n_chunks > (int64_t)nth * 4)
        n_chunks = (int64_t)nth * 4;
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
    for (c = 0; c < n_chunks; c++) {
        int64_t b = n * c / n_chunks, e = n * (c + 1) / n_chunks;
        fn(arg, b, e, omp_get_thread_num());
    }
}
#endif

int ct_parallel_for(ct_op_ctx_t *ctx, int64_t n, int64_t grain, ct_range_fn fn,
                    void *arg)
{
    ct_engine_t *eng = ctx->eng;
    struct ct__pool *pool = ctx->sched;
    int rc;

    if (n <= 0)
        return CT_OK;
    if (grain < 1)
        grain = 1;
    if (n <= grain || eng->cfg.n_threads <= 1 ||
        eng->cfg.intra_op == CT_INTRA_OP_SERIAL) {
        fn(arg, 0, n, 0);
        return CT_OK;
    }
#ifdef CT_HAVE_OPENMP
    if (eng->cfg.intra_op == CT_INTRA_OP_OPENMP && pool == NULL) {
        parallel_for_openmp(n, grain, eng->cfg.n_threads, fn, arg);
        return CT_OK;
    }
#endif
    if (pool == NULL) {
        rc = ct__engine_pool(eng, &pool, ctx->status);
        if (rc != CT_OK)
            return rc;
    }
    return ct__parallel_for_timed(pool, n, grain, fn, arg, ctx->pf_times);
}

/* ---- engine gauges ---- */

#ifdef CT_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#include "cortado/stats.h"

static int set_gauge(ct_stat_registry_t *reg, const char *name, int64_t v,
                     ct_status_t *st)
{
    ct_stat_t h;
    int rc = ct_stat_registry_add(reg, name, CT_STAT_GAUGE, &h, st);

    if (rc == CT_OK)
        ct_stat_set(reg, h, v);
    return rc;
}

int ct_engine_update_stats(ct_engine_t *eng, ct_status_t *st)
{
    ct_stat_registry_t *reg = ct_engine_stats(eng);
    struct ct__pool *pool = ct__engine_pool_peek(eng);
    int rc;

    rc = set_gauge(reg, "cortado/mem/tensor_bytes",
                   (int64_t)ct_engine_mem_in_use(eng), st);
    if (rc == CT_OK)
        rc = set_gauge(reg, "cortado/mem/tensor_peak_bytes",
                       (int64_t)ct_engine_mem_peak(eng), st);
#ifdef CT_HAVE_JEMALLOC
    if (rc == CT_OK) {
        /* jemalloc's statistics are refreshed by advancing its epoch. */
        uint64_t epoch = 1;
        size_t allocated = 0, sz = sizeof(epoch);
        mallctl("epoch", &epoch, &sz, &epoch, sz);
        sz = sizeof(allocated);
        if (mallctl("stats.allocated", &allocated, &sz, NULL, 0) == 0)
            rc = set_gauge(reg, "cortado/mem/allocated_bytes",
                           (int64_t)allocated, st);
    }
#endif
    if (rc == CT_OK && pool != NULL) {
        struct ct__pool_stats ps;
        ct__pool_get_stats(pool, -1, &ps);
        rc = set_gauge(reg, "cortado/pool/tasks", (int64_t)ps.n_tasks, st);
        if (rc == CT_OK)
            rc =
                set_gauge(reg, "cortado/pool/steals", (int64_t)ps.n_steals, st);
        if (rc == CT_OK)
            rc = set_gauge(reg, "cortado/pool/injected", (int64_t)ps.n_injected,
                           st);
        if (rc == CT_OK)
            rc = set_gauge(reg, "cortado/pool/parks", (int64_t)ps.n_parks, st);
        if (rc == CT_OK)
            rc = set_gauge(reg, "cortado/pool/parked_ns", (int64_t)ps.ns_parked,
                           st);
    }
    return rc;
}
