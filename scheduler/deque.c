/* cortado: Chase-Lev deque, cold paths (init, growth, destroy) and steal.
 * The design note and the memory-order argument are in deque.h. */
#include <stdint.h>

#include "engine/alloc.h"
#include "scheduler/deque.h"

static struct ct__deque_ring *ring_new(int64_t capacity)
{
    struct ct__deque_ring *r;
    int64_t i;

    if (capacity > (INT64_MAX / 2) / (int64_t)sizeof(r->slot[0]))
        return NULL;
    r = ct__malloc(sizeof(*r) + (size_t)capacity * sizeof(r->slot[0]));
    if (r == NULL)
        return NULL;
    r->mask = capacity - 1;
    r->retired = NULL;
    for (i = 0; i < capacity; i++)
        atomic_init(&r->slot[i], NULL);
    return r;
}

int ct__deque_init(struct ct__deque *dq, int64_t capacity)
{
    struct ct__deque_ring *r;
    int64_t cap = 2;

    while (cap < capacity && cap < ((int64_t)1 << 40))
        cap <<= 1;
    r = ring_new(cap);
    if (r == NULL)
        return CT_ENOMEM;
    atomic_init(&dq->top, 0);
    atomic_init(&dq->bottom, 0);
    atomic_init(&dq->ring, r);
    return CT_OK;
}

void ct__deque_destroy(struct ct__deque *dq)
{
    /* relaxed: destroy must not race with any other call. */
    struct ct__deque_ring *r =
        atomic_load_explicit(&dq->ring, memory_order_relaxed);

    while (r != NULL) {
        struct ct__deque_ring *next = r->retired;
        ct__free(r);
        r = next;
    }
    atomic_store_explicit(&dq->ring, NULL, memory_order_relaxed);
}

int ct__deque_grow(struct ct__deque *dq, int64_t bottom, int64_t top)
{
    /* relaxed: only the owner (us) writes ring. */
    struct ct__deque_ring *old =
        atomic_load_explicit(&dq->ring, memory_order_relaxed);
    struct ct__deque_ring *r;
    int64_t i;

    r = ring_new((old->mask + 1) * 2);
    if (r == NULL)
        return CT_ENOMEM;
    /* Copy the live range [top, bottom). Thieves may be advancing top
     * meanwhile; copying entries they take is harmless because their CAS
     * decides ownership, not the ring they read from. relaxed: the copies
     * are published by the release store of ring below. */
    for (i = top; i < bottom; i++)
        atomic_store_explicit(&r->slot[i & r->mask],
                              atomic_load_explicit(&old->slot[i & old->mask],
                                                   memory_order_relaxed),
                              memory_order_relaxed);
    /* The old ring stays alive (a thief may hold a pointer to it) until the
     * deque is destroyed. */
    r->retired = old;
    /* release: a thief that loads the new ring (acquire) sees its slots. */
    atomic_store_explicit(&dq->ring, r, memory_order_release);
    return CT_OK;
}

struct ct__task *ct__deque_steal(struct ct__deque *dq)
{
    struct ct__deque_ring *r;
    struct ct__task *t;
    /* acquire: pairs with other thieves' / the owner's CAS on top. */
    int64_t tp = atomic_load_explicit(&dq->top, memory_order_acquire);
    int64_t b;

    /* seq_cst fence: orders our read of top before our read of bottom, the
     * mirror of the fence in pop (store bottom, then read top). */
    atomic_thread_fence(memory_order_seq_cst);
    /* acquire: pairs with the owner's release stores of bottom, so the slot
     * and the task's contents are visible. */
    b = atomic_load_explicit(&dq->bottom, memory_order_acquire);
    if (tp >= b)
        return NULL;
    /* acquire (the paper's consume): the slots of a new ring are visible. */
    r = atomic_load_explicit(&dq->ring, memory_order_acquire);
    /* relaxed: only kept if the CAS below proves nobody took it first. */
    t = atomic_load_explicit(&r->slot[tp & r->mask], memory_order_relaxed);
    /* seq_cst on success (total order with the owner's pop CAS and fence);
     * relaxed on failure, where we return without using t. */
    if (!atomic_compare_exchange_strong_explicit(
            &dq->top, &tp, tp + 1, memory_order_seq_cst, memory_order_relaxed))
        return NULL;
    return t;
}
