/* Tests of scheduler/parallel_for.c: exact coverage of [0, n) for many
 * (n, grain) pairs and pool sizes, nesting, calls from inside tasks, lane
 * uniqueness, and the serial cases. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "scheduler/parallel_for.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler/pool.h"

/* ---- helpers ---- */

struct cover {
    _Atomic int *hits; /* per index: times covered */
    int64_t n;
    int64_t grain;
    int n_lanes;            /* ct__pool_n_threads */
    _Atomic int *lane_busy; /* per lane: 1 while a call runs on it */
    _Atomic int n_calls;
    _Atomic int bad; /* a broken invariant, reported by the test */
};

static void cover_fn(void *arg, int64_t begin, int64_t end, int ith)
{
    struct cover *c = arg;
    int64_t i;

    atomic_fetch_add(&c->n_calls, 1);
    if (ith < 0 || ith >= c->n_lanes || begin < 0 || end > c->n ||
        begin >= end) {
        atomic_store(&c->bad, 1);
        return;
    }
    /* Two concurrent calls must never share a lane. */
    if (atomic_exchange(&c->lane_busy[ith], 1) != 0)
        atomic_store(&c->bad, 2);
    for (i = begin; i < end; i++)
        atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
    atomic_store(&c->lane_busy[ith], 0);
}

static void cover_init(struct cover *c, struct ct__pool *pool, int64_t n,
                       int64_t grain)
{
    int64_t i;

    memset(c, 0, sizeof(*c));
    c->n = n;
    c->grain = grain;
    c->n_lanes = ct__pool_n_threads(pool);
    c->hits = calloc((size_t)(n > 0 ? n : 1), sizeof(*c->hits));
    c->lane_busy = calloc((size_t)c->n_lanes, sizeof(*c->lane_busy));
    assert_non_null(c->hits);
    assert_non_null(c->lane_busy);
    for (i = 0; i < n; i++)
        atomic_init(&c->hits[i], 0);
}

static void cover_check(struct cover *c)
{
    int64_t i;

    assert_int_equal(atomic_load(&c->bad), 0);
    for (i = 0; i < c->n; i++)
        if (atomic_load(&c->hits[i]) != 1)
            fail_msg("n=%lld grain=%lld: index %lld covered %d times",
                     (long long)c->n, (long long)c->grain, (long long)i,
                     atomic_load(&c->hits[i]));
    free(c->hits);
    free(c->lane_busy);
}

static struct ct__pool *make_pool(int n_threads)
{
    struct ct__pool_config cfg;
    struct ct__pool *pool = NULL;

    ct__pool_config_init(&cfg);
    cfg.n_threads = n_threads;
    assert_int_equal(ct__pool_new(&cfg, &pool, NULL), CT_OK);
    return pool;
}

/* ---- tests ---- */

static void test_parallel_for_many_n_and_grains_cover_range_once(void **state)
{
    static const int threads[] = {1, 2, 4, 40};
    static const int64_t ns[] = {1, 2, 3, 7, 64, 1000, 4097, 100000};
    static const int64_t grains[] = {-1, 0, 1, 3, 64, 1000, 100000, 200000};
    size_t t, i, j;

    (void)state;
    for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        struct ct__pool *pool = make_pool(threads[t]);
        for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
            for (j = 0; j < sizeof(grains) / sizeof(grains[0]); j++) {
                struct cover c;
                /* grain 1 over 100000 would be slow under TSan only */
                if (ns[i] > 5000 && grains[j] > 0 && grains[j] < 64)
                    continue;
                cover_init(&c, pool, ns[i], grains[j]);
                assert_int_equal(
                    ct__parallel_for(pool, ns[i], grains[j], cover_fn, &c),
                    CT_OK);
                if (grains[j] > 0)
                    assert_int_equal(
                        atomic_load(&c.n_calls),
                        threads[t] == 1
                            ? 1
                            : (int)((ns[i] + grains[j] - 1) / grains[j]));
                cover_check(&c);
            }
        }
        ct__pool_free(pool);
    }
}

static void test_parallel_for_zero_n_calls_nothing(void **state)
{
    struct ct__pool *pool = make_pool(2);
    struct cover c;

    (void)state;
    cover_init(&c, pool, 0, 1);
    assert_int_equal(ct__parallel_for(pool, 0, 1, cover_fn, &c), CT_OK);
    assert_int_equal(atomic_load(&c.n_calls), 0);
    cover_check(&c);
    ct__pool_free(pool);
}

static void test_parallel_for_negative_n_returns_einval(void **state)
{
    struct ct__pool *pool = make_pool(2);
    struct cover c;

    (void)state;
    cover_init(&c, pool, 0, 1);
    assert_int_equal(ct__parallel_for(pool, -5, 1, cover_fn, &c), CT_EINVAL);
    assert_int_equal(ct__parallel_for(pool, 5, 1, NULL, &c), CT_EINVAL);
    assert_int_equal(atomic_load(&c.n_calls), 0);
    cover_check(&c);
    ct__pool_free(pool);
}

static void test_parallel_for_one_thread_pool_calls_fn_once_inline(void **state)
{
    struct ct__pool *pool = make_pool(1);
    struct cover c;

    (void)state;
    cover_init(&c, pool, 1000, 10);
    assert_int_equal(ct__parallel_for(pool, 1000, 10, cover_fn, &c), CT_OK);
    assert_int_equal(atomic_load(&c.n_calls), 1);
    cover_check(&c);
    ct__pool_free(pool);
}

/* Timed: the caller's chunk holds until a helper has run the other one,
 * which spins for at least 200 us of CLOCK_MONOTONIC, so the helper time
 * reported is at least that, whatever the machine's load. */
struct handoff {
    _Atomic int helper_done;
};

static void handoff_fn(void *arg, int64_t begin, int64_t end, int ith)
{
    struct handoff *h = arg;
    struct timespec t0, t;

    (void)begin;
    (void)end;
    if (ith == 0) {
        while (!atomic_load(&h->helper_done))
            ;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) <
           200000L);
    atomic_store(&h->helper_done, 1);
}

static void test_parallel_for_timed_reports_helper_time(void **state)
{
    struct ct__pool *pool = make_pool(2);
    struct ct__pf_times times = {0, 0};
    struct handoff h;

    (void)state;
    atomic_init(&h.helper_done, 0);
    assert_int_equal(ct__parallel_for_timed(pool, 2, 1, handoff_fn, &h, &times),
                     CT_OK);
    assert_int_equal(atomic_load(&h.helper_done), 1);
    assert_true(times.helper_ns >= 200000u);
    /* NULL times: the same call, nothing measured. */
    atomic_store(&h.helper_done, 0);
    assert_int_equal(ct__parallel_for_timed(pool, 2, 1, handoff_fn, &h, NULL),
                     CT_OK);
    ct__pool_free(pool);
}

/* Nested: each outer row runs an inner parallel_for over its columns. */
#define ROWS 64
#define COLS 300

struct nested {
    struct ct__pool *pool;
    _Atomic int *hits; /* ROWS * COLS */
    _Atomic int bad;
};

struct row_arg {
    struct nested *nest;
    int64_t row;
};

static void inner_fn(void *arg, int64_t begin, int64_t end, int ith)
{
    struct row_arg *r = arg;
    int64_t j;

    (void)ith;
    for (j = begin; j < end; j++)
        atomic_fetch_add(&r->nest->hits[r->row * COLS + j], 1);
}

static void outer_fn(void *arg, int64_t begin, int64_t end, int ith)
{
    struct nested *nest = arg;
    int64_t i;

    (void)ith;
    for (i = begin; i < end; i++) {
        struct row_arg r = {nest, i};
        if (ct__parallel_for(nest->pool, COLS, 7, inner_fn, &r) != CT_OK)
            atomic_store(&nest->bad, 1);
    }
}

static void run_nested(struct ct__pool *pool)
{
    struct nested nest;
    int i;

    nest.pool = pool;
    nest.hits = calloc(ROWS * COLS, sizeof(*nest.hits));
    assert_non_null(nest.hits);
    atomic_init(&nest.bad, 0);
    for (i = 0; i < ROWS * COLS; i++)
        atomic_init(&nest.hits[i], 0);
    assert_int_equal(ct__parallel_for(pool, ROWS, 1, outer_fn, &nest), CT_OK);
    assert_int_equal(atomic_load(&nest.bad), 0);
    for (i = 0; i < ROWS * COLS; i++)
        if (atomic_load(&nest.hits[i]) != 1)
            fail_msg("cell %d covered %d times", i, atomic_load(&nest.hits[i]));
    free(nest.hits);
}

static void test_parallel_for_nested_covers_every_cell_once(void **state)
{
    static const int threads[] = {1, 2, 8};
    size_t t;

    (void)state;
    for (t = 0; t < 3; t++) {
        struct ct__pool *pool = make_pool(threads[t]);
        run_nested(pool);
        ct__pool_free(pool);
    }
}

/* From inside pool tasks (the way ops call it: on a worker). */
struct pf_task {
    struct ct__task task;
    struct ct__latch *left;
    struct cover cover;
    int rc;
};

static struct ct__task *pf_task_run(struct ct__task *t, struct ct__worker *w)
{
    struct pf_task *p = (struct pf_task *)t;

    p->rc = ct__parallel_for(ct__worker_pool(w), p->cover.n, 16, cover_fn,
                             &p->cover);
    ct__latch_count_down(ct__worker_pool(w), p->left, 1);
    return NULL;
}

static void test_parallel_for_from_tasks_covers_ranges_once(void **state)
{
    enum { N_JOBS = 16 };
    struct ct__pool *pool = make_pool(4);
    struct pf_task jobs[N_JOBS];
    struct ct__latch left;
    int i;

    (void)state;
    ct__latch_init(&left, N_JOBS);
    for (i = 0; i < N_JOBS; i++) {
        jobs[i].task.run_cb = pf_task_run;
        jobs[i].left = &left;
        jobs[i].rc = -100;
        cover_init(&jobs[i].cover, pool, 1000 + 37 * i, 16);
        ct__pool_submit(pool, -1, &jobs[i].task);
    }
    ct__pool_wait_latch(pool, &left);
    for (i = 0; i < N_JOBS; i++) {
        assert_int_equal(jobs[i].rc, CT_OK);
        cover_check(&jobs[i].cover);
    }
    ct__pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_for_many_n_and_grains_cover_range_once),
        cmocka_unit_test(test_parallel_for_zero_n_calls_nothing),
        cmocka_unit_test(test_parallel_for_negative_n_returns_einval),
        cmocka_unit_test(
            test_parallel_for_one_thread_pool_calls_fn_once_inline),
        cmocka_unit_test(test_parallel_for_nested_covers_every_cell_once),
        cmocka_unit_test(test_parallel_for_timed_reports_helper_time),
        cmocka_unit_test(test_parallel_for_from_tasks_covers_ranges_once),
    };
    return cmocka_run_group_tests_name("scheduler.parallel_for", tests, NULL,
                                       NULL);
}
