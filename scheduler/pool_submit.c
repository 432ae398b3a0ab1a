/* cortado: the pool's slots, waiting and submission (API in pool.h, data
 * structures and memory orders in pool_impl.h).
 *
 * A thread takes part through a slot: workers own theirs for life, other
 * threads claim a caller slot for the duration of an attach/wait. The
 * thread-local current slot lives here, so every function that reads it
 * (attach, detach, the pushes' ownership checks) sits in this file.
 */
#include <sched.h>

#include "scheduler/pool_impl.h"
#include "scheduler/topology.h"

/* The slot the calling thread executes on, or NULL. Thread-local because
 * ct__parallel_for and ct__pool_wait must find it without an argument;
 * owned by the thread itself. */
static _Thread_local struct ct__worker *tls_current;

/* ---- injection queues ---- */

static void inject_push_list(struct ct__pool *pool, int node,
                             struct ct__task *head, struct ct__task *tail,
                             int64_t n)
{
    struct ct__pool_node *nd = &pool->nodes[node];

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

/* ---- notification ---- */

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

/* ---- workers ---- */

void ct__pool_worker_main(void *arg)
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
    ct__worker_participate(w, NULL, NULL);
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
        ct__pool_notify_work(pool, w->node);
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
                ct__worker_participate(w, done_cb, arg);
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
    ct__worker_participate(w, done_cb, arg);
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
    ct__pool_notify_work(pool, node);
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
        ct__pool_notify_work(w->pool, w->node);
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
        ct__pool_notify_work(w->pool, w->node);
}
