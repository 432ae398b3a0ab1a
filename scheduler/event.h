/* cortado internal: EventCount, a futex-based two-phase wait.
 *
 * Lets a thread sleep until "something may have changed" without a lock
 * on the notifier's side, and without lost wake-ups:
 *
 *     for (;;) {
 *         if (try_get_work()) break;                   // fast path
 *         uint32_t key = ct__event_prepare_wait(ev);   // 1: announce
 *         if (try_get_work()) { ct__event_cancel_wait(ev); break; } // 2
 *         ct__event_commit_wait(ev, key);              // 3: sleep
 *     }
 *
 *     publish_work(); ct__event_notify_one(ev);       // producer
 *
 * The producer's notify is `fence(seq_cst); if (n_waiters) wake`, so it
 * costs one fence and one load when nobody waits (~2 ns here). Why it
 * cannot lose a wake-up: prepare_wait increments n_waiters and then issues
 * a seq_cst fence before the re-check (step 2); the producer publishes,
 * then issues a seq_cst fence before loading n_waiters. By the C11 fence
 * rules (7.17.4) either the re-check sees the work, or the producer sees
 * the waiter and bumps `epoch`; the sleeper's futex wait then returns at
 * once because epoch no longer equals its key. The key is read with
 * acquire after the fence, so a key that already includes a bump also
 * carries the work published before that bump into the re-check.
 *
 * notify_one bumps the epoch (releasing every thread still between prepare
 * and commit) and wakes one sleeper: it may wake more than one thread,
 * never fewer than needed. Waiters re-check their condition anyway.
 * The epoch wraps after 2^32 notifies; a waiter would need to miss exactly
 * 2^32 of them between prepare and commit to sleep through one.
 */
#ifndef CT_SCHEDULER_EVENT_H
#define CT_SCHEDULER_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cortado/common.h"

struct ct__event {
    /* The futex word. Bumped (seq_cst RMW) by every notify that sees a
     * waiter; sleepers wait while it still equals their key. */
    _Atomic uint32_t epoch;
    /* Threads between prepare_wait and the end of commit/cancel_wait. */
    _Atomic uint32_t n_waiters;
};

void ct__event_init(struct ct__event *ev);
/* Asserts that nobody waits. */
void ct__event_destroy(struct ct__event *ev);

/* Phase 1: announces the caller as a waiter and returns the key to pass to
 * commit_wait. The caller must re-check its condition after this call and
 * then call exactly one of cancel_wait / commit_wait. */
uint32_t ct__event_prepare_wait(struct ct__event *ev);
/* Withdraws a prepare_wait whose re-check found the condition true. */
void ct__event_cancel_wait(struct ct__event *ev);
/* Sleeps until a notify issued after the matching prepare_wait (returns at
 * once if one already happened). Signals and spurious futex returns are
 * absorbed. */
void ct__event_commit_wait(struct ct__event *ev, uint32_t key);

/* Slow path of the notifies: bumps the epoch and wakes up to n sleepers. */
void ct__event_wake(struct ct__event *ev, int n);

/* Notifies with the caller's own seq_cst fence already issued after it
 * published its change (lets the pool check several words after a single
 * fence). Returns whether there was a waiter to notify. */
static inline bool ct__event_notify_one_fenced(struct ct__event *ev)
{
    /* relaxed: ordered by the caller's seq_cst fence (see the file note). */
    if (atomic_load_explicit(&ev->n_waiters, memory_order_relaxed) == 0)
        return false;
    ct__event_wake(ev, 1);
    return true;
}

static inline bool ct__event_notify_all_fenced(struct ct__event *ev)
{
    /* relaxed: ordered by the caller's seq_cst fence (see the file note). */
    if (atomic_load_explicit(&ev->n_waiters, memory_order_relaxed) == 0)
        return false;
    ct__event_wake(ev, -1);
    return true;
}

/* Wakes one waiter, if any; call after publishing the change. Costs a
 * fence and a load when nobody waits. Returns whether anyone waited. */
static inline bool ct__event_notify_one(struct ct__event *ev)
{
    atomic_thread_fence(memory_order_seq_cst);
    return ct__event_notify_one_fenced(ev);
}

/* Wakes every waiter. Same cost as notify_one when nobody waits. */
static inline bool ct__event_notify_all(struct ct__event *ev)
{
    atomic_thread_fence(memory_order_seq_cst);
    return ct__event_notify_all_fenced(ev);
}

#endif /* CT_SCHEDULER_EVENT_H */
