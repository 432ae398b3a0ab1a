/* cortado internal: the pool's data structures, shared by its three files
 * (pool.c: lifecycle and queries; pool_loop.c: finding work, idling and
 * the participant loop; pool_submit.c: slots, waiting and submission).
 * Only the pool's own files include it.
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
#ifndef CT_SCHEDULER_POOL_IMPL_H
#define CT_SCHEDULER_POOL_IMPL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "scheduler/deque.h"
#include "scheduler/event.h"
#include "scheduler/pool.h"
#include "scheduler/sync.h"

struct ct__layout;

struct ct__slot_stats {
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

    alignas(CT_CACHE_LINE) struct ct__slot_stats stats;
};

struct ct__pool_node {
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
    struct ct__worker *slots;    /* n_slots, cache-line aligned */
    struct ct__pool_node *nodes; /* n_nodes, cache-line aligned */
    struct ct__layout *layout;   /* owned; NULL without a topology */
    bool nodes_ready;            /* nodes' mutexes initialised (unwinding) */
    int n_started;               /* workers started (unwinding) */

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

/* ---- shared between the pool's files ---- */

/* The body of every participant (pool_loop.c). Workers (done_cb NULL)
 * return when the pool stops and no work is visible anywhere; waiters
 * when done_cb(arg). */
void ct__worker_participate(struct ct__worker *w, ct__pool_done_cb done_cb,
                            void *arg);
/* Runs tasks on w until no queue it can see holds any (pool_loop.c). Used
 * by the stopping thread once the workers are joined. */
void ct__worker_drain(struct ct__worker *w);
/* Thread entry of worker slot `arg` (pool_submit.c, which owns the
 * thread-local current slot). */
void ct__pool_worker_main(void *arg);

/* Makes sure somebody will look at work just published on `node`: one
 * fence, then nothing if an idle worker of the node spins, else wake one
 * sleeper of the node, else (everyone there is busy) one spinner-or-
 * sleeper elsewhere, since other nodes steal from us when idle. */
static inline void ct__pool_notify_work(struct ct__pool *pool, int node)
{
    int k;

    atomic_thread_fence(memory_order_seq_cst);
    for (k = 0; k < pool->n_nodes; k++) {
        struct ct__pool_node *nd = &pool->nodes[(node + k) % pool->n_nodes];
        /* relaxed: ordered by the fence above (file note). */
        if (atomic_load_explicit(&nd->n_spinning, memory_order_relaxed) > 0)
            return;
        if (ct__event_notify_one_fenced(&nd->ev))
            return;
    }
}

#endif /* CT_SCHEDULER_POOL_IMPL_H */
