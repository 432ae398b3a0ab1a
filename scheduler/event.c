/* cortado: EventCount slow paths (futex wait / wake). See event.h for the
 * protocol and why it cannot lose a wake-up. Linux only: the futex word is
 * the 32-bit epoch, waited on with FUTEX_WAIT_PRIVATE (the pool never
 * shares an EventCount across processes). */
#define _GNU_SOURCE /* syscall() for futex; must precede every include */

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "scheduler/event.h"

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    /* EAGAIN (value changed), EINTR and spurious returns are all fine: the
     * caller re-reads the epoch. */
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL,
                  NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr, int n)
{
    long rc = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL,
                      NULL, 0);
    CT_ASSERT(rc >= 0, "futex wake failed: errno %d", errno);
}

void ct__event_init(struct ct__event *ev)
{
    atomic_init(&ev->epoch, 0);
    atomic_init(&ev->n_waiters, 0);
}

void ct__event_destroy(struct ct__event *ev)
{
    /* relaxed: destroy must not race with any use (caller's contract). */
    CT_ASSERT(atomic_load_explicit(&ev->n_waiters, memory_order_relaxed) == 0,
              "event destroyed with %u waiters",
              atomic_load_explicit(&ev->n_waiters, memory_order_relaxed));
}

uint32_t ct__event_prepare_wait(struct ct__event *ev)
{
    atomic_fetch_add_explicit(&ev->n_waiters, 1, memory_order_seq_cst);
    /* The fence pairs with the notifier's fence: either its load of
     * n_waiters sees our increment, or our re-check (after this call) sees
     * what it published. */
    atomic_thread_fence(memory_order_seq_cst);
    /* acquire: if the key already includes a notifier's bump, the state it
     * published before bumping is visible to our re-check. */
    return atomic_load_explicit(&ev->epoch, memory_order_acquire);
}

void ct__event_cancel_wait(struct ct__event *ev)
{
    /* relaxed: a notifier that still counts us merely wakes nobody. */
    atomic_fetch_sub_explicit(&ev->n_waiters, 1, memory_order_relaxed);
}

void ct__event_commit_wait(struct ct__event *ev, uint32_t key)
{
    /* acquire: pairs with the notifier's bump, so whatever it published
     * before notifying is visible once we return. */
    while (atomic_load_explicit(&ev->epoch, memory_order_acquire) == key)
        futex_wait(&ev->epoch, key);
    /* relaxed: see cancel_wait. */
    atomic_fetch_sub_explicit(&ev->n_waiters, 1, memory_order_relaxed);
}

void ct__event_wake(struct ct__event *ev, int n)
{
    /* seq_cst RMW (release part): a waiter reading the new epoch sees
     * everything published before the notify. */
    atomic_fetch_add_explicit(&ev->epoch, 1, memory_order_seq_cst);
    futex_wake(&ev->epoch, n < 0 ? INT_MAX : n);
}
