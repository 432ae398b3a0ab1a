/* cortado internal: Chase-Lev work-stealing deque of task pointers.
 *
 * One owner thread pushes and pops at the bottom (LIFO, good locality);
 * any number of thieves steal at the top (FIFO, oldest and usually
 * biggest work first). The algorithm and its C11 memory orders follow
 * Lê, Pop, Cohen, Zappa Nardelli, "Correct and Efficient Work-Stealing for
 * Weak Memory Models" (PPoPP'13), figure 1:
 *
 *   push:  store slot (relaxed); store bottom (release)
 *   pop:   store bottom-1; fence(seq_cst); load top; CAS top only when
 *          taking the last element
 *   steal: load top (acquire); fence(seq_cst); load bottom (acquire);
 *          read slot; CAS top (seq_cst)
 *
 * Two deliberate deviations, both free on x86 and correct on ARM: the
 * paper's `fence(release); store bottom (relaxed)` in push is folded into a
 * release store of bottom (only the slot and the task's contents need to
 * be ordered before it), and pop's stores of bottom are release instead of
 * relaxed, so every value of bottom a thief can read heads a release
 * sequence that covers the tasks below it whatever release-sequence rule
 * (C11 or C++20) applies. ThreadSanitizer, which does not model standalone
 * fences, then sees the task hand-off too.
 *
 * top, bottom and the buffer pointer live on separate cache lines: thieves
 * hammer top, the owner writes bottom on every push/pop, and the buffer
 * pointer is read by both but written only on growth. The ring grows by
 * doubling when full; old rings are kept until the deque is destroyed (as
 * the paper does), because a thief that loaded the old pointer may still
 * read from it. Memory stays bounded by twice the largest ring.
 *
 * Thread-safety: init/destroy/push/pop by the owner only; steal and
 * ct__deque_size_hint from any thread. The owner may change over time (a
 * pool's caller slot) if the hand-over is a release/acquire pair.
 */
#ifndef CT_SCHEDULER_DEQUE_H
#define CT_SCHEDULER_DEQUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cortado/common.h"
#include "cortado/error.h"

struct ct__task;

/* A ring of 2^k slots. Slots are atomics (relaxed) because a thief may read
 * a slot that the owner is overwriting; its CAS on top then fails. */
struct ct__deque_ring {
    int64_t mask;                      /* capacity - 1; immutable */
    struct ct__deque_ring *retired;    /* older rings; owner only */
    _Atomic(struct ct__task *) slot[]; /* capacity entries */
};

struct ct__deque {
    /* Next index to steal. CAS by thieves, and by the owner when it takes
     * the last element. */
    alignas(CT_CACHE_LINE) _Atomic int64_t top;
    /* One past the newest element. Written by the owner only. */
    alignas(CT_CACHE_LINE) _Atomic int64_t bottom;
    /* Current ring. Written by the owner only (on growth). */
    alignas(CT_CACHE_LINE) _Atomic(struct ct__deque_ring *) ring;
};

/* Initialises an empty deque whose ring holds `capacity` tasks (rounded up
 * to a power of two, at least 2). Returns CT_OK or CT_ENOMEM. */
int ct__deque_init(struct ct__deque *dq, int64_t capacity);
/* Frees the ring and every retired ring. Any tasks still inside are not
 * touched (the deque does not own them). */
void ct__deque_destroy(struct ct__deque *dq);

/* Slow path of push: doubles the ring. CT_OK or CT_ENOMEM (unchanged). */
int ct__deque_grow(struct ct__deque *dq, int64_t bottom, int64_t top);

/* Steals the oldest task. Returns NULL when the deque is empty or when this
 * thief lost a race for the element (another thief or the owner took it);
 * the caller moves on, since somebody made progress. Any thread. */
struct ct__task *ct__deque_steal(struct ct__deque *dq);

/* Owner: pushes t at the bottom. Returns CT_OK, or CT_ENOMEM when the ring
 * was full and could not grow (the deque is unchanged). */
static inline int ct__deque_push(struct ct__deque *dq, struct ct__task *t)
{
    /* relaxed: the owner is the only writer of bottom. */
    int64_t b = atomic_load_explicit(&dq->bottom, memory_order_relaxed);
    /* acquire: pairs with the thieves' CAS on top, so a thief's read of a
     * slot happens before we overwrite that slot after wrapping around. */
    int64_t tp = atomic_load_explicit(&dq->top, memory_order_acquire);
    /* relaxed: only the owner writes ring. */
    struct ct__deque_ring *r =
        atomic_load_explicit(&dq->ring, memory_order_relaxed);

    if (CT_UNLIKELY(b - tp > r->mask)) {
        if (ct__deque_grow(dq, b, tp) != CT_OK)
            return CT_ENOMEM;
        r = atomic_load_explicit(&dq->ring, memory_order_relaxed);
    }
    /* relaxed: published by the release store of bottom below. */
    atomic_store_explicit(&r->slot[b & r->mask], t, memory_order_relaxed);
    /* release: a thief that reads b+1 (acquire) sees the slot and the
     * task's contents (the paper's release fence, folded in). */
    atomic_store_explicit(&dq->bottom, b + 1, memory_order_release);
    return CT_OK;
}

/* Owner: pops the newest task, or NULL when empty. */
static inline struct ct__task *ct__deque_pop(struct ct__deque *dq)
{
    /* relaxed: the owner is the only writer of bottom. */
    int64_t b = atomic_load_explicit(&dq->bottom, memory_order_relaxed);
    struct ct__deque_ring *r;
    struct ct__task *t;
    int64_t tp;

    /* Empty fast path without the fence: only thieves move top, and only
     * upwards, so top >= bottom stays true until the owner pushes. relaxed:
     * a stale (smaller) top just sends us down the full path. */
    if (atomic_load_explicit(&dq->top, memory_order_relaxed) >= b)
        return NULL;
    b -= 1;
    /* relaxed: only the owner writes ring. */
    r = atomic_load_explicit(&dq->ring, memory_order_relaxed);
    /* release: see the file note (the paper has relaxed here). */
    atomic_store_explicit(&dq->bottom, b, memory_order_release);
    /* seq_cst fence: the store of bottom must be visible before we read
     * top, or a thief and the owner could both take the last element. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: ordered by the fence above. */
    tp = atomic_load_explicit(&dq->top, memory_order_relaxed);
    if (tp > b) {
        /* Thieves emptied it meanwhile; restore bottom. release: as above. */
        atomic_store_explicit(&dq->bottom, b + 1, memory_order_release);
        return NULL;
    }
    /* relaxed: we wrote this slot ourselves. */
    t = atomic_load_explicit(&r->slot[b & r->mask], memory_order_relaxed);
    if (tp == b) {
        /* Last element: race the thieves for it through top. seq_cst on
         * success as in the paper; relaxed on failure (we return NULL). */
        if (!atomic_compare_exchange_strong_explicit(&dq->top, &tp, tp + 1,
                                                     memory_order_seq_cst,
                                                     memory_order_relaxed))
            t = NULL;
        /* release: as above. */
        atomic_store_explicit(&dq->bottom, b + 1, memory_order_release);
    }
    return t;
}

/* Number of tasks, as seen at some recent instant; may be stale or (during
 * an owner's pop) one too low. A hint for victim selection and idleness
 * checks; any thread. */
static inline int64_t ct__deque_size_hint(const struct ct__deque *dq)
{
    /* relaxed: a hint. Callers that need a decision to be sound issue a
     * seq_cst fence first (see the pool's park path). */
    int64_t b = atomic_load_explicit(&dq->bottom, memory_order_relaxed);
    int64_t tp = atomic_load_explicit(&dq->top, memory_order_relaxed);
    return b > tp ? b - tp : 0;
}

#endif /* CT_SCHEDULER_DEQUE_H */
