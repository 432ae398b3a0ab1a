/* cortado: the work-stealing pool (API and overview in pool.h).
 *
 * Data layout. Slots (struct ct__worker) are cache-line aligned and hold,
 * each on its own lines: the deque's top, bottom and ring pointer; the
 * owner-only state (victim, rng, attach depth); the counters. Each node
 * has one line for its injection queue (mutex, list, count) and one line
 * for its idle state (EventCount and spinner count), which is what a
 * notifier reads after its fence.
 *
 * Memory orders, in one place:
 *  - Task hand-off through a deque: release store of bottom / acquire load
 *    (deque.h). Through an injection queue: the node's mutex.
 *  - Sleep/wake (no lost wake-up): a publisher (push, submit, latch
 *    reaching zero, stop) stores its change, issues a seq_cst fence, then
 *    reads spinner and waiter counts; a participant about to sleep
 *    announces itself (seq_cst RMW + seq_cst fence in prepare_wait, or the
 *    n_waiters_parked / n_spinning RMWs before it) and then re-checks every
 *    queue, the stop flag and its done condition. By the C11 fence rules
 *    one of the two sees the other. Re-check loads are relaxed: the fences
 *    order them.
 *  - Skipping the wake when a spinner exists is safe for the same reason:
 *    a spinner decrements n_spinning (seq_cst) before it parks, and parks
 *    only after a fenced re-check.
 *  - Counters are written by the slot's thread only (load + store,
 *    relaxed: statistics) and summed by readers.
 *
 * Caller slots change hands: claimed with an acquire CAS on `claimed` and
 * released with a release store, so the next holder sees the owner-only
 * state (deque bottom, counters) the previous one left.
 *
 * A woken participant that leaves without taking work (its wait is done,
 * or the wake was meant for a job) passes the wake on if work is visible,
 * so a notify_one can never be absorbed by a thread that then leaves.
 */
#include <sched.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/alloc.h"
#include "scheduler/deque.h"
#include "scheduler/event.h"
#include "scheduler/pool.h"
#include "scheduler/sync.h"
#include "scheduler/topology.h"

/* PAUSE instructions per spin round, between two looks for work. */
#define PAUSES_PER_ROUND 8

struct slot_stats {
    /* Written by the slot's thread only; atomic, relaxed: statistics. */
    _Atomic uint64_t n_tasks;
    _Atomic uint64_t n_steals;
    _Atomic uint64_t n_injected;
    _Atomic uint64_t n_parks;
    _Atomic uint64_t ns_parked;
};

struct ct__worker {
    struct ct__deque dq; /* top, bottom, ring: one line each */

    /* Immutable after ct__pool_new. */
    alignas(CT_CACHE_LINE) struct ct__pool *pool;
    int ith;
    int node;
    bool is_caller;
    int layout_idx; /* index into pool->layout->threads, -1 for callers */
    /* Owned by the thread holding the slot. */
    int last_victim; /* sticky victim slot, -1 when none */
    uint32_t rng;    /* xorshift32 state for victim selection */
    int depth;       /* attach nesting */
    bool more;       /* the last take left work behind at its source */
    struct ct__worker *prev_current; /* the thread's slot before attach */
    /* Caller slots: 1 while a thread holds the slot. acquire CAS to claim,
     * release store to give back (see the file note). */
    _Atomic int claimed;
    struct ct__thread thread; /* workers only; written before start */

    alignas(CT_CACHE_LINE) struct slot_stats stats;
};

struct pool_node {
    /* Injection queue. */
    alignas(CT_CACHE_LINE) struct ct__mutex mu;
    struct ct__task *head; /* guarded by mu */
    struct ct__task *tail; /* guarded by mu */
    /* Tasks in the list. Written under mu; read without it as a hint, and
     * after a seq_cst fence on the park path. atomic, relaxed: the mutex
     * orders the list itself, the fences order the park decision. */
    _Atomic int64_t n_queued;

    /* Idle state, read together by every notifier after its fence. */
    alignas(CT_CACHE_LINE) struct ct__event ev;
    _Atomic int n_spinning; /* idle workers of this node spinning */

    /* Immutable: the worker slots homed on this node. */
    alignas(CT_CACHE_LINE) int n_members;
    int *members;
};

struct ct__pool {
    struct ct__pool_config cfg; /* resolved; immutable */
    int n_workers;
    int n_callers;
    int n_slots;
    int n_nodes;
    int home_node; /* node of worker 0: where node -1 submissions go */
    struct ct__worker *slots;  /* n_slots, cache-line aligned */
    struct pool_node *nodes;   /* n_nodes, cache-line aligned */
    struct ct__layout *layout; /* owned; NULL without a topology */
    bool nodes_ready;          /* nodes' mutexes initialised (unwinding) */
    int n_started;             /* workers started (unwinding) */

    /* Set once by ct__pool_free; seq_cst store, read relaxed after fences
     * or with acquire in loops. */
    alignas(CT_CACHE_LINE) _Atomic int stopping;
    /* Caller slots held. atomic, relaxed: a hint for thieves (the park
     * path scans every slot regardless). */
    _Atomic int n_claimed;
    /* Waiters (ct__pool_wait) parked or about to park. seq_cst increment
     * before their fenced re-check; ct__pool_wake_waiters reads it after
     * its fence. */
    _Atomic int n_waiters_parked;
    /* Slotless waiters park here (no caller slot was free). */
    struct ct__event ev_passive;
    _Atomic int n_pinned; /* atomic, relaxed: statistics */
};

/* The slot the calling thread executes on, or NULL. Thread-local because
 * ct__parallel_for and ct__pool_wait must find it without an argument;
 * owned by the thread itself. */
static _Thread_local struct ct__worker *tls_current;

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

static void inject_push_list(struct ct__pool *pool, int node,
                             struct ct__task *head, struct ct__task *tail,
                             int64_t n)
{
    struct pool_node *nd = &pool->nodes[node];

    tail->next = NULL;
    ct__mutex_lock(&nd->mu);
    if (nd->tail != NULL)
        nd->tail->next = head;
    else
        nd->head = head;
    nd->tail = tail;
    /* relaxed: see the field comment (written under mu). */
    atomic_store_explicit(
        &nd->n_queued,
        atomic_load_explicit(&nd->n_queued, memory_order_relaxed) + n,
        memory_order_relaxed);
    ct__mutex_unlock(&nd->mu);
}

static struct ct__task *inject_pop(struct ct__worker *w, int node)
{
    struct pool_node *nd = &w->pool->nodes[node];
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

/* Makes sure somebody will look at work just published on `node`: one
 * fence, then nothing if an idle worker of the node spins, else wake one
 * sleeper of the node, else (everyone there is busy) one spinner-or-
 * sleeper elsewhere, since other nodes steal from us when idle. */
static void notify_work(struct ct__pool *pool, int node)
{
    int k;

    atomic_thread_fence(memory_order_seq_cst);
    for (k = 0; k < pool->n_nodes; k++) {
        struct pool_node *nd = &pool->nodes[(node + k) % pool->n_nodes];
        /* relaxed: ordered by the fence above (file note). */
        if (atomic_load_explicit(&nd->n_spinning, memory_order_relaxed) > 0)
            return;
        if (ct__event_notify_one_fenced(&nd->ev))
            return;
    }
}

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

void ct__pool_wake_waiters(struct ct__pool *pool)
{
    int i;

    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: ordered by the fence above against the waiter's seq_cst
     * increment and fenced re-check of its condition. */
    if (atomic_load_explicit(&pool->n_waiters_parked, memory_order_relaxed) ==
        0)
        return;
    for (i = 0; i < pool->n_nodes; i++)
        ct__event_notify_all_fenced(&pool->nodes[i].ev);
    ct__event_notify_all_fenced(&pool->ev_passive);
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
    const struct pool_node *nd = &w->pool->nodes[node];
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

static bool spinner_enter(struct pool_node *nd, int max)
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
    struct pool_node *nd = &pool->nodes[w->node];
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
            notify_work(pool, w->node); /* a replacement spinner */
    }
    return t;
}

/* Parks w on its node's EventCount unless, after announcing itself, it
 * sees work, the stop flag (workers) or its done condition (waiters). */
static void park(struct ct__worker *w, ct__pool_done_cb done_cb, void *arg)
{
    struct ct__pool *pool = w->pool;
    struct pool_node *nd = &pool->nodes[w->node];
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
static void participate(struct ct__worker *w, ct__pool_done_cb done_cb,
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
                notify_work(pool, w->node);
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
            notify_work(pool, w->node);
    }
}

/* ---- workers ---- */

static void worker_main(void *arg)
{
    struct ct__worker *w = arg;
    struct ct__pool *pool = w->pool;

    tls_current = w;
    w->depth = 1;
    if (pool->layout != NULL && pool->cfg.bind && w->layout_idx >= 0) {
        const struct ct__layout_thread *lt =
            &pool->layout->threads[w->layout_idx];
        if (lt->bindable &&
            ct__topology_bind_thread(pool->cfg.topo, lt->cpuset) == CT_OK)
            /* relaxed: statistics. */
            atomic_fetch_add_explicit(&pool->n_pinned, 1, memory_order_relaxed);
    }
    participate(w, NULL, NULL);
    tls_current = NULL;
}

/* ---- attach / detach ---- */

struct ct__worker *ct__pool_current(const struct ct__pool *pool)
{
    struct ct__worker *w = tls_current;
    return w != NULL && w->pool == pool ? w : NULL;
}

struct ct__worker *ct__pool_attach(struct ct__pool *pool)
{
    struct ct__worker *w = ct__pool_current(pool);
    int i;

    if (w != NULL) {
        w->depth++;
        return w;
    }
    for (i = pool->n_workers; i < pool->n_slots; i++) {
        int expected = 0;
        w = &pool->slots[i];
        /* relaxed pre-check avoids CAS traffic on held slots; acquire on
         * the CAS: see the file note. */
        if (atomic_load_explicit(&w->claimed, memory_order_relaxed) != 0 ||
            !atomic_compare_exchange_strong_explicit(&w->claimed, &expected, 1,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        w->depth = 1;
        w->last_victim = -1;
        w->prev_current = tls_current;
        tls_current = w;
        /* relaxed: a hint for thieves. */
        atomic_fetch_add_explicit(&pool->n_claimed, 1, memory_order_relaxed);
        return w;
    }
    return NULL;
}

void ct__pool_detach(struct ct__worker *w)
{
    struct ct__pool *pool;
    struct ct__task *t, *head = NULL, *tail = NULL;
    int64_t n = 0;

    if (w == NULL)
        return;
    pool = w->pool;
    CT_ASSERT(tls_current == w,
              "ct__pool_detach from a thread that does not "
              "hold slot %d",
              w->ith);
    CT_ASSERT(w->depth > 0, "unbalanced ct__pool_detach");
    if (--w->depth > 0)
        return;
    CT_ASSERT(w->is_caller, "a worker detached from its own slot");
    /* Leftovers (pushed by tasks we ran for other jobs) go to the node's
     * injection queue, oldest first, so nothing strands on a free slot. */
    while ((t = ct__deque_pop(&w->dq)) != NULL) {
        t->next = head;
        head = t;
        if (tail == NULL)
            tail = t;
        n++;
    }
    if (n > 0)
        inject_push_list(pool, w->node, head, tail, n);
    tls_current = w->prev_current;
    w->prev_current = NULL;
    /* relaxed: a hint for thieves. */
    atomic_fetch_sub_explicit(&pool->n_claimed, 1, memory_order_relaxed);
    /* release: the next holder sees our owner-only state. */
    atomic_store_explicit(&w->claimed, 0, memory_order_release);
    if (n > 0)
        notify_work(pool, w->node);
    /* A slotless waiter may be waiting for this slot. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&pool->n_waiters_parked, memory_order_relaxed) > 0)
        ct__event_notify_all_fenced(&pool->ev_passive);
}

/* ---- waiting ---- */

/* Waits without a slot: every caller slot is taken. Polls for a free slot
 * (to help) and the condition, and parks on ev_passive, which detach and
 * ct__pool_wake_waiters notify. */
static void wait_passive(struct ct__pool *pool, ct__pool_done_cb done_cb,
                         void *arg)
{
    struct ct__worker *w;
    int i;

    for (;;) {
        uint32_t key;
        bool stay;

        for (i = 0; i <= pool->cfg.yield_rounds; i++) {
            if (done_cb(arg))
                return;
            if ((w = ct__pool_attach(pool)) != NULL) {
                participate(w, done_cb, arg);
                ct__pool_detach(w);
                return;
            }
            sched_yield();
        }
        /* seq_cst: read by the notifiers after their fence. */
        atomic_fetch_add_explicit(&pool->n_waiters_parked, 1,
                                  memory_order_seq_cst);
        key = ct__event_prepare_wait(&pool->ev_passive);
        /* relaxed: ordered by prepare_wait's fence. */
        stay = done_cb(arg) ||
               atomic_load_explicit(&pool->n_claimed, memory_order_relaxed) <
                   pool->n_callers;
        if (stay)
            ct__event_cancel_wait(&pool->ev_passive);
        else
            ct__event_commit_wait(&pool->ev_passive, key);
        atomic_fetch_sub_explicit(&pool->n_waiters_parked, 1,
                                  memory_order_relaxed);
    }
}

void ct__pool_wait(struct ct__pool *pool, ct__pool_done_cb done_cb, void *arg)
{
    struct ct__worker *w;

    if (done_cb(arg))
        return;
    w = ct__pool_attach(pool);
    if (w == NULL) {
        wait_passive(pool, done_cb, arg);
        return;
    }
    participate(w, done_cb, arg);
    ct__pool_detach(w);
}

bool ct__latch_count_down(struct ct__pool *pool, struct ct__latch *l, int64_t n)
{
    /* acq_rel: release publishes this participant's results to the waiter
     * (whose acquire load reads the final value of the RMW chain);
     * acquire lets the one reaching zero see the others' results too. */
    int64_t left =
        atomic_fetch_sub_explicit(&l->count, n, memory_order_acq_rel) - n;

    CT_ASSERT(left >= 0, "latch counted below zero (%lld)", (long long)left);
    if (left != 0)
        return false;
    ct__pool_wake_waiters(pool);
    return true;
}

static bool latch_done_cb(void *arg)
{
    return ct__latch_is_done(arg);
}

void ct__pool_wait_latch(struct ct__pool *pool, struct ct__latch *l)
{
    ct__pool_wait(pool, latch_done_cb, l);
}

/* ---- submission ---- */

static int resolve_node(const struct ct__pool *pool, int node)
{
    if (node < 0)
        return pool->home_node;
    CT_ASSERT(node < pool->n_nodes, "node %d out of range [0, %d)", node,
              pool->n_nodes);
    return node;
}

void ct__pool_submit(struct ct__pool *pool, int node, struct ct__task *t)
{
    ct__pool_submit_n(pool, node, &t, 1);
}

void ct__pool_submit_n(struct ct__pool *pool, int node,
                       struct ct__task *const *tasks, size_t n)
{
    size_t i;

    if (n == 0)
        return;
    node = resolve_node(pool, node);
    for (i = 0; i + 1 < n; i++)
        tasks[i]->next = tasks[i + 1];
    inject_push_list(pool, node, tasks[0], tasks[n - 1], (int64_t)n);
    notify_work(pool, node);
}

static void push_one(struct ct__worker *w, struct ct__task *t)
{
    if (CT_UNLIKELY(ct__deque_push(&w->dq, t) != CT_OK))
        inject_push_list(w->pool, w->node, t, t, 1); /* ring cannot grow */
}

/* Pushes onto w's own deque only need a notify when the deque was empty:
 * the notify is a parallelism hint, not a progress guarantee (w itself, or
 * the drain at detach, always gets to its own tasks), and whoever was told
 * about the tasks already there is awake and fans out further wakes when
 * it sees more work behind what it took (see spin). This saves the fence
 * of a notify on every push of a burst. */
void ct__worker_push(struct ct__worker *w, struct ct__task *t)
{
    bool was_empty;

    if (CT_DEBUG)
        CT_ASSERT(tls_current == w,
                  "ct__worker_push on slot %d from a "
                  "thread that does not hold it",
                  w->ith);
    was_empty = ct__deque_size_hint(&w->dq) == 0;
    push_one(w, t);
    if (was_empty)
        notify_work(w->pool, w->node);
}

void ct__worker_push_n(struct ct__worker *w, struct ct__task *const *tasks,
                       size_t n)
{
    bool was_empty;
    size_t i;

    if (CT_DEBUG)
        CT_ASSERT(tls_current == w,
                  "ct__worker_push_n on slot %d from a "
                  "thread that does not hold it",
                  w->ith);
    if (n == 0)
        return;
    was_empty = ct__deque_size_hint(&w->dq) == 0;
    for (i = 0; i < n; i++)
        push_one(w, tasks[i]);
    if (was_empty)
        notify_work(w->pool, w->node);
}

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
        struct slot_stats *s = &pool->slots[i].stats;
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
    struct ct__task *t;
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
    while ((t = find_task(w)) != NULL)
        run_chain(w, t);
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
            struct pool_node *nd = &pool->nodes[i];
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
        struct pool_node *nd = &pool->nodes[i];
        nd->members = ct__calloc((size_t)(pool->n_workers + 1), sizeof(int));
        if (nd->members == NULL)
            return CT_ENOMEM;
    }
    for (i = 0; i < pool->n_nodes; i++) {
        struct pool_node *nd = &pool->nodes[i];
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
            struct pool_node *nd = &pool->nodes[w->node];
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
        rc = ct__thread_create(&pool->slots[i].thread, name, worker_main,
                               &pool->slots[i]);
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
