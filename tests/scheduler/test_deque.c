/* Tests of scheduler/deque.c: single-thread semantics, growth, allocation
 * failure, and a race of one owner (push/pop) against several thieves in
 * which every item must be taken exactly once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "scheduler/deque.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/engine.h"
#include "engine/alloc.h"
#include "scheduler/pool.h" /* struct ct__task */
#include "scheduler/sync.h"

/* ---- fixtures ---- */

struct dq_fixture {
    struct ct__deque *dq;
    struct ct__task *items;
    int n_items;
};

static int dq_setup_small(void **state)
{
    struct dq_fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->dq = ct__aligned_alloc(sizeof(*f->dq));
    f->n_items = 1024;
    f->items = calloc((size_t)f->n_items, sizeof(*f->items));
    if (f->dq == NULL || f->items == NULL || ct__deque_init(f->dq, 4) != CT_OK)
        return -1;
    *state = f;
    return 0;
}

static int dq_teardown(void **state)
{
    struct dq_fixture *f = *state;

    ct__deque_destroy(f->dq);
    ct__aligned_free(f->dq, sizeof(*f->dq));
    free(f->items);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static int idx_of(const struct dq_fixture *f, const struct ct__task *t)
{
    return t == NULL ? -1 : (int)(t - f->items);
}

/* Allocator that fails every allocation after `budget` successes. */
static int fail_budget;

static void *failing_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (fail_budget-- <= 0)
        return NULL;
    return malloc(size);
}

/* ---- single-thread tests ---- */

static void test_deque_pop_after_pushes_returns_lifo_order(void **state)
{
    struct dq_fixture *f = *state;
    int i;

    for (i = 0; i < 3; i++)
        assert_int_equal(ct__deque_push(f->dq, &f->items[i]), CT_OK);
    assert_int_equal(idx_of(f, ct__deque_pop(f->dq)), 2);
    assert_int_equal(idx_of(f, ct__deque_pop(f->dq)), 1);
    assert_int_equal(idx_of(f, ct__deque_pop(f->dq)), 0);
    assert_null(ct__deque_pop(f->dq));
}

static void test_deque_steal_after_pushes_returns_fifo_order(void **state)
{
    struct dq_fixture *f = *state;
    int i;

    for (i = 0; i < 3; i++)
        assert_int_equal(ct__deque_push(f->dq, &f->items[i]), CT_OK);
    assert_int_equal(idx_of(f, ct__deque_steal(f->dq)), 0);
    assert_int_equal(idx_of(f, ct__deque_steal(f->dq)), 1);
    assert_int_equal(idx_of(f, ct__deque_steal(f->dq)), 2);
    assert_null(ct__deque_steal(f->dq));
}

static void test_deque_pop_and_steal_on_empty_return_null(void **state)
{
    struct dq_fixture *f = *state;

    assert_null(ct__deque_pop(f->dq));
    assert_null(ct__deque_steal(f->dq));
    assert_int_equal(ct__deque_size_hint(f->dq), 0);
    /* Still usable after failed takes. */
    assert_int_equal(ct__deque_push(f->dq, &f->items[7]), CT_OK);
    assert_int_equal(idx_of(f, ct__deque_pop(f->dq)), 7);
}

static void test_deque_mixed_ends_take_each_item_once(void **state)
{
    struct dq_fixture *f = *state;
    int i;

    for (i = 0; i < 4; i++)
        assert_int_equal(ct__deque_push(f->dq, &f->items[i]), CT_OK);
    assert_int_equal(idx_of(f, ct__deque_steal(f->dq)), 0);
    assert_int_equal(idx_of(f, ct__deque_pop(f->dq)), 3);
    assert_int_equal(idx_of(f, ct__deque_steal(f->dq)), 1);
    assert_int_equal(idx_of(f, ct__deque_pop(f->dq)), 2);
    assert_null(ct__deque_pop(f->dq));
    assert_null(ct__deque_steal(f->dq));
}

static void test_deque_push_beyond_capacity_grows_and_keeps_order(void **state)
{
    struct dq_fixture *f = *state;
    int i;

    /* Wrap the ring first so that growth copies a split range. */
    for (i = 0; i < 3; i++)
        assert_int_equal(ct__deque_push(f->dq, &f->items[i]), CT_OK);
    for (i = 0; i < 3; i++)
        assert_int_equal(idx_of(f, ct__deque_steal(f->dq)), i);
    for (i = 0; i < 1000; i++)
        assert_int_equal(ct__deque_push(f->dq, &f->items[i]), CT_OK);
    assert_int_equal(ct__deque_size_hint(f->dq), 1000);
    for (i = 0; i < 500; i++)
        assert_int_equal(idx_of(f, ct__deque_steal(f->dq)), i);
    for (i = 999; i >= 500; i--)
        assert_int_equal(idx_of(f, ct__deque_pop(f->dq)), i);
    assert_null(ct__deque_pop(f->dq));
}

static void test_deque_push_when_growth_fails_returns_enomem(void **state)
{
    struct dq_fixture *f = *state;
    struct ct_allocator a = {0};
    int i, rc = CT_OK;

    for (i = 0; i < 4; i++)
        assert_int_equal(ct__deque_push(f->dq, &f->items[i]), CT_OK);
    a.malloc_cb = failing_malloc;
    fail_budget = 0;
    ct_set_allocator(&a);
    rc = ct__deque_push(f->dq, &f->items[4]);
    ct_set_allocator(NULL);
    assert_int_equal(rc, CT_ENOMEM);
    /* Unchanged: the four items are still there, in order. */
    assert_int_equal(ct__deque_size_hint(f->dq), 4);
    for (i = 3; i >= 0; i--)
        assert_int_equal(idx_of(f, ct__deque_pop(f->dq)), i);
    assert_int_equal(ct__deque_push(f->dq, &f->items[4]), CT_OK);
}

static void test_deque_init_when_alloc_fails_returns_enomem(void **state)
{
    struct ct__deque *dq = ct__aligned_alloc(sizeof(*dq));
    struct ct_allocator a = {0};
    int rc;

    (void)state;
    assert_non_null(dq);
    a.malloc_cb = failing_malloc;
    fail_budget = 0;
    ct_set_allocator(&a);
    rc = ct__deque_init(dq, 16);
    ct_set_allocator(NULL);
    assert_int_equal(rc, CT_ENOMEM);
    ct__aligned_free(dq, sizeof(*dq));
}

/* ---- one owner against several thieves ---- */

#define RACE_THIEVES 3
#define RACE_ROUNDS 20
#define RACE_ITEMS 30000

struct race {
    struct ct__deque *dq;
    struct ct__task *items;
    _Atomic int *taken;     /* per item: times taken */
    _Atomic int owner_done; /* owner finished pushing */
    _Atomic int64_t n_stolen;
};

static void thief_main(void *arg)
{
    struct race *r = arg;
    int64_t n = 0;

    for (;;) {
        struct ct__task *t = ct__deque_steal(r->dq);
        if (t != NULL) {
            atomic_fetch_add(&r->taken[t - r->items], 1);
            n++;
            continue;
        }
        if (atomic_load(&r->owner_done) && ct__deque_size_hint(r->dq) == 0)
            break;
    }
    atomic_fetch_add(&r->n_stolen, n);
}

static void test_deque_owner_and_thieves_take_every_item_once(void **state)
{
    struct ct__thread thieves[RACE_THIEVES];
    struct race r;
    int round, i;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.items = calloc(RACE_ITEMS, sizeof(*r.items));
    r.taken = calloc(RACE_ITEMS, sizeof(*r.taken));
    r.dq = ct__aligned_alloc(sizeof(*r.dq));
    assert_non_null(r.items);
    assert_non_null(r.taken);
    assert_non_null(r.dq);
    for (round = 0; round < RACE_ROUNDS; round++) {
        unsigned seed = 12345u + (unsigned)round;
        int64_t popped = 0;

        /* A tiny ring, so growth races with steals. */
        assert_int_equal(ct__deque_init(r.dq, 2), CT_OK);
        for (i = 0; i < RACE_ITEMS; i++)
            atomic_init(&r.taken[i], 0);
        atomic_store(&r.owner_done, 0);
        atomic_store(&r.n_stolen, 0);
        for (i = 0; i < RACE_THIEVES; i++)
            assert_int_equal(
                ct__thread_create(&thieves[i], "thief", thief_main, &r), CT_OK);
        for (i = 0; i < RACE_ITEMS; i++) {
            assert_int_equal(ct__deque_push(r.dq, &r.items[i]), CT_OK);
            seed = seed * 1103515245u + 12345u;
            /* Pop about every other push; sometimes drain a few. */
            if ((seed >> 16) % 2 == 0) {
                int k, m = (int)((seed >> 20) % 3) + 1;
                for (k = 0; k < m; k++) {
                    struct ct__task *t = ct__deque_pop(r.dq);
                    if (t == NULL)
                        break;
                    atomic_fetch_add(&r.taken[t - r.items], 1);
                    popped++;
                }
            }
        }
        for (;;) { /* the owner drains what is left, racing the thieves */
            struct ct__task *t = ct__deque_pop(r.dq);
            if (t == NULL)
                break;
            atomic_fetch_add(&r.taken[t - r.items], 1);
            popped++;
        }
        atomic_store(&r.owner_done, 1);
        for (i = 0; i < RACE_THIEVES; i++)
            ct__thread_join(&thieves[i]);
        for (i = 0; i < RACE_ITEMS; i++)
            if (atomic_load(&r.taken[i]) != 1)
                fail_msg("round %d: item %d taken %d times", round, i,
                         atomic_load(&r.taken[i]));
        assert_int_equal(popped + atomic_load(&r.n_stolen), RACE_ITEMS);
        ct__deque_destroy(r.dq);
    }
    ct__aligned_free(r.dq, sizeof(*r.dq));
    free(r.items);
    free(r.taken);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_deque_pop_after_pushes_returns_lifo_order, dq_setup_small,
            dq_teardown),
        cmocka_unit_test_setup_teardown(
            test_deque_steal_after_pushes_returns_fifo_order, dq_setup_small,
            dq_teardown),
        cmocka_unit_test_setup_teardown(
            test_deque_pop_and_steal_on_empty_return_null, dq_setup_small,
            dq_teardown),
        cmocka_unit_test_setup_teardown(
            test_deque_mixed_ends_take_each_item_once, dq_setup_small,
            dq_teardown),
        cmocka_unit_test_setup_teardown(
            test_deque_push_beyond_capacity_grows_and_keeps_order,
            dq_setup_small, dq_teardown),
        cmocka_unit_test_setup_teardown(
            test_deque_push_when_growth_fails_returns_enomem, dq_setup_small,
            dq_teardown),
        cmocka_unit_test(test_deque_init_when_alloc_fails_returns_enomem),
        cmocka_unit_test(test_deque_owner_and_thieves_take_every_item_once),
    };
    return cmocka_run_group_tests_name("scheduler.deque", tests, NULL, NULL);
}
