/* cortado: the work-stealing pool's lifecycle and queries (API and
 * overview in pool.h; data structures and memory orders in pool_impl.h).
 *
 * The pool lives in three files: this one creates, sizes, stops and frees
 * it and answers queries; pool_loop.c holds the participant loop (finding
 * work, spinning, parking); pool_submit.c holds slots (attach, detach),
 * waiting and submission.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/alloc.h"
#include "scheduler/pool_impl.h"
#include "scheduler/topology.h"

int ct__worker_ith(const struct ct__worker *w)
{
    return w->ith;
}

int ct__worker_node(const struct ct__worker *w)
{
    return w->node;
}

struct ct__pool *ct__worker_pool(const struct ct__worker *w)
{
    return w->pool;
}

/* ---- queries ---- */

int ct__pool_n_threads(const struct ct__pool *pool)
{
    return pool->cfg.n_threads;
}

int ct__pool_n_workers(const struct ct__pool *pool)
{
    return pool->n_workers;
}

int ct__pool_n_slots(const struct ct__pool *pool)
{
    return pool->n_slots;
}

int ct__pool_n_nodes(const struct ct__pool *pool)
{
    return pool->n_nodes;
}

int ct__pool_n_pinned(const struct ct__pool *pool)
{
    /* relaxed: statistics. */
    return atomic_load_explicit((_Atomic int *)&pool->n_pinned,
                                memory_order_relaxed);
}

void ct__pool_get_stats(const struct ct__pool *pool, int ith,
                        struct ct__pool_stats *out)
{
    int i, lo = ith < 0 ? 0 : ith, hi = ith < 0 ? pool->n_slots : ith + 1;

    CT_ASSERT(ith < pool->n_slots, "slot %d out of range [0, %d)", ith,
              pool->n_slots);
    memset(out, 0, sizeof(*out));
    for (i = lo; i < hi; i++) {
        struct ct__slot_stats *s = &pool->slots[i].stats;
        /* relaxed: statistics, a racy snapshot by contract. */
        out->n_tasks += atomic_load_explicit(&s->n_tasks, memory_order_relaxed);
        out->n_steals +=
            atomic_load_explicit(&s->n_steals, memory_order_relaxed);
        out->n_injected +=
            atomic_load_explicit(&s->n_injected, memory_order_relaxed);
        out->n_parks += atomic_load_explicit(&s->n_parks, memory_order_relaxed);
        out->ns_parked +=
            atomic_load_explicit(&s->ns_parked, memory_order_relaxed);
    }
}

/* ---- lifecycle ---- */

void ct__pool_config_init(struct ct__pool_config *cfg)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    memset(cfg, 0, sizeof(*cfg));
    cfg->n_threads = n > 0 ? (int)n : 1;
    cfg->n_callers = 8;
    cfg->topo = NULL;
    cfg->layout_flags = 0;
    cfg->bind = true;
    cfg->spin_rounds = 64;
    cfg->yield_rounds = 256;
    cfg->max_spinners = 1;
    cfg->deque_capacity = 256;
    cfg->name = "ct";
}

static int check_config(const struct ct__pool_config *c, ct_status_t *st)
{
    if (c->n_threads < 1 || c->n_threads > 4096)
        return ct_status_setf(st, CT_EINVAL,
                              "pool: n_threads %d out of range [1, 4096]",
                              c->n_threads);
    if (c->n_callers < 1 || c->n_callers > 1024)
        return ct_status_setf(st, CT_EINVAL,
                              "pool: n_callers %d out of range [1, 1024]",
                              c->n_callers);
    if (c->spin_rounds < 0 || c->yield_rounds < 0 || c->max_spinners < 0)
        return ct_status_setf(st, CT_EINVAL,
                              "pool: negative spin setting (spin_rounds %d, "
                              "yield_rounds %d, max_spinners %d)",
                              c->spin_rounds, c->yield_rounds, c->max_spinners);
    if (c->deque_capacity < 2 || c->deque_capacity > ((int64_t)1 << 30))
        return ct_status_setf(st, CT_EINVAL,
                              "pool: deque_capacity %lld out of range "
                              "[2, 2^30]",
                              (long long)c->deque_capacity);
    return CT_OK;
}

/* Stops and joins the started workers; then runs whatever is left on the
 * calling thread. Used by ct__pool_free and by ct__pool_new's unwinding. */
static void pool_stop(struct ct__pool *pool)
{
    struct ct__worker *w;
    int i;

    /* seq_cst: read after the parkers' fences (see is_stopping). */
    atomic_store_explicit(&pool->stopping, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    for (i = 0; i < pool->n_nodes; i++)
        ct__event_notify_all_fenced(&pool->nodes[i].ev);
    ct__event_notify_all_fenced(&pool->ev_passive);
    for (i = 0; i < pool->n_started; i++)
        ct__thread_join(&pool->slots[i].thread);
    pool->n_started = 0;
    /* Workers leave only when no work is visible, but with no workers (or
     * when tasks were queued by tasks of a caller) the freeing thread
     * finishes the job itself. */
    w = ct__pool_attach(pool);
    CT_ASSERT(w != NULL, "pool: no free caller slot while stopping");
    ct__worker_drain(w);
    ct__pool_detach(w);
}

static void pool_destroy(struct ct__pool *pool)
{
    int i;

    if (pool->slots != NULL) {
        for (i = 0; i < pool->n_slots; i++)
            /* ring NULL: the deque never got initialised (unwinding). */
            if (atomic_load_explicit(&pool->slots[i].dq.ring,
                                     memory_order_relaxed) != NULL)
                ct__deque_destroy(&pool->slots[i].dq);
        ct__aligned_free(pool->slots,
                         (size_t)pool->n_slots * sizeof(*pool->slots));
    }
    if (pool->nodes != NULL) {
        for (i = 0; i < pool->n_nodes; i++) {
            struct ct__pool_node *nd = &pool->nodes[i];
            if (pool->nodes_ready) {
                CT_ASSERT(nd->head == NULL, "pool freed with queued tasks");
                ct__mutex_destroy(&nd->mu);
                ct__event_destroy(&nd->ev);
            }
            ct__free(nd->members);
        }
        ct__aligned_free(pool->nodes,
                         (size_t)pool->n_nodes * sizeof(*pool->nodes));
    }
    ct__event_destroy(&pool->ev_passive);
    ct__layout_free(pool->layout);
    ct__aligned_free(pool, sizeof(*pool));
}

static int init_nodes(struct ct__pool *pool)
{
    int i;

    pool->nodes =
        ct__aligned_alloc((size_t)pool->n_nodes * sizeof(*pool->nodes));
    if (pool->nodes == NULL)
        return CT_ENOMEM;
    memset(pool->nodes, 0, (size_t)pool->n_nodes * sizeof(*pool->nodes));
    for (i = 0; i < pool->n_nodes; i++) {
        struct ct__pool_node *nd = &pool->nodes[i];
        nd->members = ct__calloc((size_t)(pool->n_workers + 1), sizeof(int));
        if (nd->members == NULL)
            return CT_ENOMEM;
    }
    for (i = 0; i < pool->n_nodes; i++) {
        struct ct__pool_node *nd = &pool->nodes[i];
        if (ct__mutex_init(&nd->mu, "pool.inject", CT_LOCK_RANK_POOL_INJECT) !=
            CT_OK) {
            while (--i >= 0)
                ct__mutex_destroy(&pool->nodes[i].mu);
            return CT_ENOMEM;
        }
        ct__event_init(&nd->ev);
        atomic_init(&nd->n_queued, 0);
        atomic_init(&nd->n_spinning, 0);
    }
    pool->nodes_ready = true;
    return CT_OK;
}

static int init_slots(struct ct__pool *pool)
{
    int i;

    pool->slots =
        ct__aligned_alloc((size_t)pool->n_slots * sizeof(*pool->slots));
    if (pool->slots == NULL)
        return CT_ENOMEM;
    memset(pool->slots, 0, (size_t)pool->n_slots * sizeof(*pool->slots));
    for (i = 0; i < pool->n_slots; i++) {
        struct ct__worker *w = &pool->slots[i];
        atomic_init(&w->dq.ring, NULL);
        w->pool = pool;
        w->ith = i;
        w->is_caller = i >= pool->n_workers;
        /* Layout thread 0 is the caller's place; worker i takes i + 1. */
        w->layout_idx = w->is_caller || pool->layout == NULL ? -1 : i + 1;
        w->node =
            w->layout_idx >= 0 ? pool->layout->threads[w->layout_idx].node : 0;
        w->last_victim = -1;
        w->rng = 0x9e3779b9u * (uint32_t)(i + 1) | 1u;
        atomic_init(&w->claimed, 0);
        atomic_init(&w->stats.n_tasks, 0);
        atomic_init(&w->stats.n_steals, 0);
        atomic_init(&w->stats.n_injected, 0);
        atomic_init(&w->stats.n_parks, 0);
        atomic_init(&w->stats.ns_parked, 0);
        if (ct__deque_init(&w->dq, pool->cfg.deque_capacity) != CT_OK) {
            atomic_init(&w->dq.ring, NULL);
            return CT_ENOMEM;
        }
        if (!w->is_caller) {
            struct ct__pool_node *nd = &pool->nodes[w->node];
            nd->members[nd->n_members++] = i;
        }
    }
    if (pool->layout != NULL) /* caller slots live on the home node */
        for (i = pool->n_workers; i < pool->n_slots; i++)
            pool->slots[i].node = pool->n_workers > 0 ? pool->slots[0].node : 0;
    return CT_OK;
}

static void binding_notice(struct ct__pool *pool)
{
    const struct ct__topology *topo = pool->cfg.topo;
    char msg[192];
    int i, n_skipped = 0;

    if (topo == NULL || !pool->cfg.bind || pool->cfg.notice_cb == NULL ||
        pool->n_workers == 0)
        return;
    for (i = 0; i < pool->n_workers; i++)
        n_skipped += !pool->layout->threads[i + 1].bindable;
    if (n_skipped == 0)
        return;
    if (!topo->is_thissystem)
        snprintf(msg, sizeof(msg),
                 "pool: topology%s%s%s does not describe this machine; "
                 "%d workers run unpinned",
                 topo->synthetic ? " \"" : "",
                 topo->synthetic ? topo->synthetic : "",
                 topo->synthetic ? "\"" : "", n_skipped);
    else if (!topo->can_bind)
        snprintf(msg, sizeof(msg),
                 "pool: thread binding unsupported here; %d workers run "
                 "unpinned",
                 n_skipped);
    else
        snprintf(msg, sizeof(msg),
                 "pool: %d of %d workers run unpinned: their CPUs do not "
                 "exist on this machine",
                 n_skipped, pool->n_workers);
    pool->cfg.notice_cb(pool->cfg.notice_ctx, msg);
}

int ct__pool_new(const struct ct__pool_config *cfg, struct ct__pool **out,
                 ct_status_t *st)
{
    struct ct__pool *pool;
    char name[32]; /* truncated to 15 characters by ct__thread_create */
    int rc, i;

    *out = NULL;
    rc = check_config(cfg, st);
    if (rc != CT_OK)
        return rc;
    pool = ct__aligned_alloc(sizeof(*pool));
    if (pool == NULL)
        return ct_status_setf(st, CT_ENOMEM, "pool: out of memory");
    memset(pool, 0, sizeof(*pool));
    pool->cfg = *cfg;
    if (pool->cfg.name == NULL)
        pool->cfg.name = "ct";
    pool->n_workers = cfg->n_threads - 1;
    pool->n_callers = cfg->n_callers;
    pool->n_slots = pool->n_workers + pool->n_callers;
    pool->n_nodes = 1;
    atomic_init(&pool->stopping, 0);
    atomic_init(&pool->n_claimed, 0);
    atomic_init(&pool->n_waiters_parked, 0);
    atomic_init(&pool->n_pinned, 0);
    ct__event_init(&pool->ev_passive);

    if (cfg->topo != NULL) {
        rc = ct__topology_layout(cfg->topo, cfg->n_threads, cfg->layout_flags,
                                 &pool->layout, st);
        if (rc != CT_OK)
            goto fail_destroy;
        pool->n_nodes = cfg->topo->n_nodes;
    }
    rc = init_nodes(pool);
    if (rc == CT_OK)
        rc = init_slots(pool);
    if (rc != CT_OK) {
        ct_status_setf(st, rc, "pool: out of memory");
        goto fail_destroy;
    }
    pool->home_node = pool->n_workers > 0 ? pool->slots[0].node : 0;
    binding_notice(pool);

    for (i = 0; i < pool->n_workers; i++) {
        snprintf(name, sizeof(name), "%.8s-w%d", pool->cfg.name, i);
        rc = ct__thread_create(&pool->slots[i].thread, name,
                               ct__pool_worker_main, &pool->slots[i]);
        if (rc != CT_OK) {
            ct_status_setf(st, rc, "pool: could not start worker %d of %d", i,
                           pool->n_workers);
            goto fail_threads;
        }
        pool->n_started++;
    }
    *out = pool;
    return CT_OK;

fail_threads:
    pool_stop(pool);
fail_destroy:
    pool_destroy(pool);
    return rc;
}

void ct__pool_free(struct ct__pool *pool)
{
    if (pool == NULL)
        return;
    CT_ASSERT(ct__pool_current(pool) == NULL,
              "ct__pool_free called by a participant of the pool");
    /* relaxed: the caller guarantees no concurrent use (file note). */
    CT_ASSERT(atomic_load_explicit(&pool->n_claimed, memory_order_relaxed) == 0,
              "ct__pool_free while a thread is attached to the pool");
    pool_stop(pool);
    pool_destroy(pool);
}
