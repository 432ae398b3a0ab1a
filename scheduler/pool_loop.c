/* cortado: the pool's participant loop (API in pool.h, data structures and
 * memory orders in pool_impl.h).
 *
 * A participant looks for work in its own deque, its node's injection
 * queue, the last victim it stole from, the other workers of its node,
 * the caller slots and then the other nodes (find_task). With nothing to
 * do it spins a while and then parks on its node's EventCount (spin,
 * park). Everything here runs on the thread that holds the slot.
 */
#include <sched.h>

#include "scheduler/pool_impl.h"

/* PAUSE instructions per spin round, between two looks for work. */
#define PAUSES_PER_ROUND 8

/* ---- small helpers ---- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void stat_add(_Atomic uint64_t *c, uint64_t n)
{
    /* relaxed load + store: single writer (the slot's holder), statistics
     * only; avoids a locked RMW on the task path. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint32_t next_rand(struct ct__worker *w)
{
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->rng = x;
    return x;
}

static inline bool is_stopping(const struct ct__pool *pool)
{
    /* acquire: pairs with the seq_cst store in ct__pool_free; loops poll
     * it, the park path re-reads it after its fence. */
    return atomic_load_explicit((_Atomic int *)&pool->stopping,
                                memory_order_acquire) != 0;
}

/* ---- injection queues ---- */

static struct ct__task *inject_pop(struct ct__worker *w, int node)
{
    struct ct__pool_node *nd = &w->pool->nodes[node];
    struct ct__task *t;
    int64_t left = 0;

    /* relaxed: a hint; an empty-looking queue is re-checked after a fence
     * before anyone sleeps. */
    if (atomic_load_explicit(&nd->n_queued, memory_order_relaxed) == 0)
        return NULL;
    ct__mutex_lock(&nd->mu);
    t = nd->head;
    if (t != NULL) {
        nd->head = t->next;
        if (nd->head == NULL)
            nd->tail = NULL;
        left = atomic_load_explicit(&nd->n_queued, memory_order_relaxed) - 1;
        /* relaxed: written under mu. */
        atomic_store_explicit(&nd->n_queued, left, memory_order_relaxed);
    }
    ct__mutex_unlock(&nd->mu);
    if (t != NULL) {
        w->more = left > 0;
        stat_add(&w->stats.n_injected, 1);
    }
    return t;
}

/* ---- notification ---- */

/* A fenced scan of every queue: is there any task somebody could take?
 * The caller has issued a seq_cst fence (prepare_wait) before. */
static bool work_visible(const struct ct__pool *pool)
{
    int i;

    for (i = 0; i < pool->n_nodes; i++)
        /* relaxed: ordered by the caller's fence. */
        if (atomic_load_explicit(&pool->nodes[i].n_queued,
                                 memory_order_relaxed) > 0)
            return true;
    for (i = 0; i < pool->n_slots; i++)
        if (ct__deque_size_hint(&pool->slots[i].dq) > 0)
            return true;
    return false;
}

/* ---- finding work ---- */

static struct ct__task *steal_from(struct ct__worker *w, int victim)
{
    struct ct__worker *v = &w->pool->slots[victim];
    struct ct__task *t;

    if (ct__deque_size_hint(&v->dq) == 0)
        return NULL; /* skip the fence of a steal on an empty deque */
    t = ct__deque_steal(&v->dq);
    if (t != NULL) {
        w->last_victim = victim;
        w->more = ct__deque_size_hint(&v->dq) > 0;
        stat_add(&w->stats.n_steals, 1);
    }
    return t;
}

static struct ct__task *steal_in_node(struct ct__worker *w, int node)
{
    const struct ct__pool_node *nd = &w->pool->nodes[node];
    struct ct__task *t;
    int i, start;

    if (nd->n_members == 0)
        return NULL;
    start = (int)(next_rand(w) % (uint32_t)nd->n_members);
    for (i = 0; i < nd->n_members; i++) {
        int v = nd->members[(start + i) % nd->n_members];
        if (v != w->ith && (t = steal_from(w, v)) != NULL)
            return t;
    }
    return NULL;
}

static struct ct__task *steal_any(struct ct__worker *w)
{
    struct ct__pool *pool = w->pool;
    struct ct__task *t;
    int i, k;

    if (w->last_victim >= 0) {
        if ((t = steal_from(w, w->last_victim)) != NULL)
            return t;
        w->last_victim = -1;
    }
    if ((t = steal_in_node(w, w->node)) != NULL)
        return t;
    /* relaxed: a hint; the park path scans caller slots regardless. */
    if (atomic_load_explicit(&pool->n_claimed, memory_order_relaxed) > 0)
        for (i = pool->n_workers; i < pool->n_slots; i++)
            if (i != w->ith && (t = steal_from(w, i)) != NULL)
                return t;
    for (k = 1; k < pool->n_nodes; k++) {
        int node = (w->node + k) % pool->n_nodes;
        if ((t = inject_pop(w, node)) != NULL ||
            (t = steal_in_node(w, node)) != NULL)
            return t;
    }
    return NULL;
}

static struct ct__task *find_task(struct ct__worker *w)
{
    struct ct__task *t = ct__deque_pop(&w->dq);

    if (t != NULL) {
        w->more = false;
        return t;
    }
    if ((t = inject_pop(w, w->node)) != NULL)
        return t;
    return steal_any(w);
}

static void run_chain(struct ct__worker *w, struct ct__task *t)
{
    uint64_t n = 0;

    if (CT_DEBUG)
        ct__witness_assert_unlocked("running a pool task");
    do {
        t = t->run_cb(t, w);
        n++;
    } while (t != NULL);
    stat_add(&w->stats.n_tasks, n);
}

/* ---- idling ---- */

static bool spinner_enter(struct ct__pool_node *nd, int max)
{
    /* relaxed load, then a seq_cst CAS: the CAS is the announcement a
     * notifier reads after its fence. */
    int s = atomic_load_explicit(&nd->n_spinning, memory_order_relaxed);

    while (s < max)
        if (atomic_compare_exchange_weak_explicit(&nd->n_spinning, &s, s + 1,
                                                  memory_order_seq_cst,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* Spins looking for work. Idle workers (done_cb NULL) count as spinners,
 * capped per node; waiters spin regardless (their thread has nothing else
 * to do and their job may finish any moment) and are not counted, since
 * they may leave at any time. Returns a task or NULL. */
static struct ct__task *spin(struct ct__worker *w, ct__pool_done_cb done_cb,
                             void *arg)
{
    struct ct__pool *pool = w->pool;
    struct ct__pool_node *nd = &pool->nodes[w->node];
    struct ct__task *t = NULL;
    int i, k, n = pool->cfg.spin_rounds + pool->cfg.yield_rounds;

    if (done_cb == NULL && !spinner_enter(nd, pool->cfg.max_spinners))
        return NULL;
    for (i = 0; i < n; i++) {
        if (i < pool->cfg.spin_rounds)
            for (k = 0; k < PAUSES_PER_ROUND; k++)
                cpu_relax();
        else
            sched_yield();
        if (done_cb != NULL ? done_cb(arg) : is_stopping(pool))
            break;
        if ((t = find_task(w)) != NULL)
            break;
    }
    if (done_cb == NULL) {
        /* seq_cst: must be visible before the fenced re-check of a later
         * park (file note). */
        atomic_fetch_sub_explicit(&nd->n_spinning, 1, memory_order_seq_cst);
        if (t != NULL && w->more)
            ct__pool_notify_work(pool, w->node); /* a replacement spinner */
    }
    return t;
}

/* Parks w on its node's EventCount unless, after announcing itself, it
 * sees work, the stop flag (workers) or its done condition (waiters). */
static void park(struct ct__worker *w, ct__pool_done_cb done_cb, void *arg)
{
    struct ct__pool *pool = w->pool;
    struct ct__pool_node *nd = &pool->nodes[w->node];
    uint32_t key;
    bool stay;

    if (done_cb != NULL)
        /* seq_cst: read by ct__pool_wake_waiters after its fence. */
        atomic_fetch_add_explicit(&pool->n_waiters_parked, 1,
                                  memory_order_seq_cst);
    key = ct__event_prepare_wait(&nd->ev);
    stay = done_cb != NULL ? done_cb(arg) : is_stopping(pool);
    if (stay || work_visible(pool)) {
        ct__event_cancel_wait(&nd->ev);
    } else {
        uint64_t t0 = ct__now_ns();
        stat_add(&w->stats.n_parks, 1); /* counted when it falls asleep */
        ct__event_commit_wait(&nd->ev, key);
        stat_add(&w->stats.ns_parked, ct__now_ns() - t0);
    }
    if (done_cb != NULL)
        /* relaxed: a stale count only costs a spurious notify_all. */
        atomic_fetch_sub_explicit(&pool->n_waiters_parked, 1,
                                  memory_order_relaxed);
}

/* The loop of every participant. Workers (done_cb NULL) return when the
 * pool stops and no work is visible anywhere; waiters when done_cb(arg). */
void ct__worker_participate(struct ct__worker *w, ct__pool_done_cb done_cb,
                            void *arg)
{
    struct ct__pool *pool = w->pool;
    struct ct__task *t;
    bool woken = false;

    for (;;) {
        if (done_cb != NULL && done_cb(arg))
            break;
        if ((t = find_task(w)) != NULL) {
            /* Just woken and more work behind what we took: wake the next
             * sleeper, so a burst announced by one notify fans out. */
            if (woken && w->more)
                ct__pool_notify_work(pool, w->node);
            woken = false;
            run_chain(w, t);
            continue;
        }
        if (done_cb == NULL && is_stopping(pool)) {
            /* Draining: leave once no queue holds anything; until then
             * keep taking (what is visible is stealable, so this ends). */
            atomic_thread_fence(memory_order_seq_cst);
            if (!work_visible(pool))
                break;
            cpu_relax();
            continue;
        }
        if ((t = spin(w, done_cb, arg)) != NULL) {
            woken = false;
            run_chain(w, t);
            continue;
        }
        if (done_cb != NULL && done_cb(arg))
            break;
        park(w, done_cb, arg);
        woken = true;
    }
    if (woken && done_cb != NULL) {
        /* We may have absorbed a notify meant for work: pass it on. */
        atomic_thread_fence(memory_order_seq_cst);
        if (work_visible(pool))
            ct__pool_notify_work(pool, w->node);
    }
}

void ct__worker_drain(struct ct__worker *w)
{
    struct ct__task *t;

    while ((t = find_task(w)) != NULL)
        run_chain(w, t);
}
