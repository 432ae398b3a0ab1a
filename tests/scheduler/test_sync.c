/* Tests of scheduler/sync.c: the pthread wrappers and the lock-rank
 * witness (debug builds only; skipped otherwise). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "scheduler/sync.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cortado/error.h"

/* ---- helpers ---- */

struct trylock_arg {
    struct ct__mutex *mu;
    bool got;
};

static void trylock_main(void *arg)
{
    struct trylock_arg *a = arg;
    a->got = ct__mutex_trylock(a->mu);
    if (a->got)
        ct__mutex_unlock(a->mu);
}

static void counter_main(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

/* Runs fn in a child process; returns true when the child aborted. */
static bool child_aborts(void (*fn)(void))
{
    int status = 0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr); /* keep the test log clean */
        fn();
        _exit(0);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void lock_in_wrong_order(void)
{
    struct ct__mutex outer, inner;

    ct__mutex_init(&outer, "outer", CT_LOCK_RANK_TEST_OUTER);
    ct__mutex_init(&inner, "inner", CT_LOCK_RANK_TEST_INNER);
    ct__mutex_lock(&inner);
    ct__mutex_lock(&outer); /* rank decreases: the witness aborts */
}

static void lock_in_right_order(void)
{
    struct ct__mutex outer, inner;

    ct__mutex_init(&outer, "outer", CT_LOCK_RANK_TEST_OUTER);
    ct__mutex_init(&inner, "inner", CT_LOCK_RANK_TEST_INNER);
    ct__mutex_lock(&outer);
    ct__mutex_lock(&inner);
    ct__mutex_unlock(&outer); /* out-of-order unlock is allowed */
    ct__mutex_unlock(&inner);
    ct__witness_assert_unlocked("test end");
    ct__mutex_destroy(&inner);
    ct__mutex_destroy(&outer);
}

static void run_task_with_lock_held(void)
{
    struct ct__mutex mu;

    ct__mutex_init(&mu, "held", CT_LOCK_RANK_LEAF);
    ct__mutex_lock(&mu);
    ct__witness_assert_unlocked("running a task");
}

/* ---- tests ---- */

static void test_mutex_trylock_held_elsewhere_returns_false(void **state)
{
    struct ct__mutex mu;
    struct ct__thread thr;
    struct trylock_arg a = {&mu, true};

    (void)state;
    assert_int_equal(ct__mutex_init(&mu, "t", CT_LOCK_RANK_LEAF), CT_OK);
    ct__mutex_lock(&mu);
    ct__mutex_assert_held(&mu);
    assert_int_equal(ct__thread_create(&thr, "try", trylock_main, &a), CT_OK);
    ct__thread_join(&thr);
    assert_false(a.got);
    ct__mutex_unlock(&mu);
    assert_true(ct__mutex_trylock(&mu));
    ct__mutex_unlock(&mu);
    ct__mutex_destroy(&mu);
}

static void test_cond_timedwait_without_signal_times_out(void **state)
{
    struct ct__mutex mu;
    struct ct__cond cv;
    uint64_t t0;

    (void)state;
    assert_int_equal(ct__mutex_init(&mu, "t", CT_LOCK_RANK_LEAF), CT_OK);
    assert_int_equal(ct__cond_init(&cv), CT_OK);
    ct__mutex_lock(&mu);
    t0 = ct__now_ns();
    while (ct__cond_timedwait(&cv, &mu, 5000000)) /* absorb spurious */
        if (ct__now_ns() - t0 > 1000000000u)
            fail_msg("timedwait never timed out");
    assert_true(ct__now_ns() - t0 >= 4000000u);
    ct__mutex_unlock(&mu);
    ct__cond_destroy(&cv);
    ct__mutex_destroy(&mu);
}

static void test_thread_create_runs_fn_and_join_waits(void **state)
{
    struct ct__thread thr[4];
    _Atomic int n = 0;
    int i;

    (void)state;
    for (i = 0; i < 4; i++)
        assert_int_equal(ct__thread_create(&thr[i], "a-very-long-thread-name",
                                           counter_main, &n),
                         CT_OK);
    for (i = 0; i < 4; i++)
        ct__thread_join(&thr[i]);
    assert_int_equal(atomic_load(&n), 4);
}

static void test_witness_increasing_ranks_pass(void **state)
{
    (void)state;
    assert_false(child_aborts(lock_in_right_order));
}

static void test_witness_decreasing_ranks_abort_in_debug(void **state)
{
    (void)state;
    if (!ct__witness_enabled())
        skip();
    assert_true(child_aborts(lock_in_wrong_order));
}

static void test_witness_task_under_lock_aborts_in_debug(void **state)
{
    (void)state;
    if (!ct__witness_enabled())
        skip();
    assert_true(child_aborts(run_task_with_lock_held));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutex_trylock_held_elsewhere_returns_false),
        cmocka_unit_test(test_cond_timedwait_without_signal_times_out),
        cmocka_unit_test(test_thread_create_runs_fn_and_join_waits),
        cmocka_unit_test(test_witness_increasing_ranks_pass),
        cmocka_unit_test(test_witness_decreasing_ranks_abort_in_debug),
        cmocka_unit_test(test_witness_task_under_lock_aborts_in_debug),
    };
    return cmocka_run_group_tests_name("scheduler.sync", tests, NULL, NULL);
}
