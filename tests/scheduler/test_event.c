/* Tests of scheduler/event.c: the EventCount's two-phase wait, its notify
 * fast path, and a ping-pong stress in which a lost wake-up would hang. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "scheduler/event.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "scheduler/sync.h"

/* ---- helpers ---- */

struct sleeper {
    struct ct__event *ev;
    _Atomic int *flag; /* the condition: non-zero means "go" */
    _Atomic int *n_awake;
};

/* Waits for *flag with the two-phase protocol. */
static void wait_flag(struct ct__event *ev, _Atomic int *flag)
{
    for (;;) {
        uint32_t key;
        if (atomic_load_explicit(flag, memory_order_acquire))
            return;
        key = ct__event_prepare_wait(ev);
        if (atomic_load_explicit(flag, memory_order_acquire)) {
            ct__event_cancel_wait(ev);
            return;
        }
        ct__event_commit_wait(ev, key);
    }
}

static void sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    wait_flag(s->ev, s->flag);
    atomic_fetch_add(s->n_awake, 1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until ev has n waiters (they announced themselves). */
static void wait_waiters(struct ct__event *ev, uint32_t n)
{
    while (atomic_load(&ev->n_waiters) < n)
        sleep_ms(1);
}

/* ---- tests ---- */

static void test_event_notify_without_waiters_returns_false(void **state)
{
    struct ct__event ev;

    (void)state;
    ct__event_init(&ev);
    assert_false(ct__event_notify_one(&ev));
    assert_false(ct__event_notify_all(&ev));
    assert_int_equal(atomic_load(&ev.epoch), 0); /* fast path: no bump */
    ct__event_destroy(&ev);
}

static void test_event_commit_after_notify_returns_at_once(void **state)
{
    struct ct__event ev;
    uint32_t key;

    (void)state;
    ct__event_init(&ev);
    key = ct__event_prepare_wait(&ev);
    assert_true(ct__event_notify_one(&ev));
    ct__event_commit_wait(&ev, key); /* would hang if the wake were lost */
    assert_int_equal(atomic_load(&ev.n_waiters), 0);
    ct__event_destroy(&ev);
}

static void test_event_cancel_wait_withdraws_the_waiter(void **state)
{
    struct ct__event ev;

    (void)state;
    ct__event_init(&ev);
    (void)ct__event_prepare_wait(&ev);
    assert_int_equal(atomic_load(&ev.n_waiters), 1);
    ct__event_cancel_wait(&ev);
    assert_int_equal(atomic_load(&ev.n_waiters), 0);
    assert_false(ct__event_notify_one(&ev));
    ct__event_destroy(&ev);
}

static void test_event_notify_one_wakes_a_sleeper(void **state)
{
    struct ct__event ev;
    struct ct__thread thr;
    _Atomic int flag = 0, n_awake = 0;
    struct sleeper s = {&ev, &flag, &n_awake};

    (void)state;
    ct__event_init(&ev);
    assert_int_equal(ct__thread_create(&thr, "sleeper", sleeper_main, &s),
                     CT_OK);
    wait_waiters(&ev, 1);
    sleep_ms(5); /* let it reach the futex */
    atomic_store_explicit(&flag, 1, memory_order_release);
    assert_true(ct__event_notify_one(&ev));
    ct__thread_join(&thr);
    assert_int_equal(atomic_load(&n_awake), 1);
    ct__event_destroy(&ev);
}

static void test_event_notify_all_wakes_every_sleeper(void **state)
{
    enum { N = 4 };
    struct ct__event ev;
    struct ct__thread thr[N];
    _Atomic int flag = 0, n_awake = 0;
    struct sleeper s = {&ev, &flag, &n_awake};
    int i;

    (void)state;
    ct__event_init(&ev);
    for (i = 0; i < N; i++)
        assert_int_equal(
            ct__thread_create(&thr[i], "sleeper", sleeper_main, &s), CT_OK);
    wait_waiters(&ev, N);
    sleep_ms(5);
    atomic_store_explicit(&flag, 1, memory_order_release);
    assert_true(ct__event_notify_all(&ev));
    for (i = 0; i < N; i++)
        ct__thread_join(&thr[i]);
    assert_int_equal(atomic_load(&n_awake), N);
    ct__event_destroy(&ev);
}

/* Two threads pass a token back and forth; each waits for its turn with
 * the two-phase protocol, so a single lost wake-up hangs the test. */
#define PINGPONG_ROUNDS 20000

struct pingpong {
    struct ct__event ev[2];
    _Atomic int turn;
};

static void pingpong_player(struct pingpong *pp, int me)
{
    int i;

    for (i = 0; i < PINGPONG_ROUNDS; i++) {
        for (;;) {
            uint32_t key;
            if (atomic_load_explicit(&pp->turn, memory_order_acquire) == me)
                break;
            key = ct__event_prepare_wait(&pp->ev[me]);
            if (atomic_load_explicit(&pp->turn, memory_order_acquire) == me) {
                ct__event_cancel_wait(&pp->ev[me]);
                break;
            }
            ct__event_commit_wait(&pp->ev[me], key);
        }
        atomic_store_explicit(&pp->turn, 1 - me, memory_order_release);
        ct__event_notify_one(&pp->ev[1 - me]);
    }
}

static void pingpong_main(void *arg)
{
    pingpong_player(arg, 1);
}

static void test_event_pingpong_loses_no_wakeup(void **state)
{
    struct pingpong pp;
    struct ct__thread thr;

    (void)state;
    memset(&pp, 0, sizeof(pp));
    ct__event_init(&pp.ev[0]);
    ct__event_init(&pp.ev[1]);
    atomic_init(&pp.turn, 0);
    assert_int_equal(ct__thread_create(&thr, "pong", pingpong_main, &pp),
                     CT_OK);
    pingpong_player(&pp, 0);
    ct__thread_join(&thr);
    assert_int_equal(atomic_load(&pp.turn), 0);
    ct__event_destroy(&pp.ev[0]);
    ct__event_destroy(&pp.ev[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_notify_without_waiters_returns_false),
        cmocka_unit_test(test_event_commit_after_notify_returns_at_once),
        cmocka_unit_test(test_event_cancel_wait_withdraws_the_waiter),
        cmocka_unit_test(test_event_notify_one_wakes_a_sleeper),
        cmocka_unit_test(test_event_notify_all_wakes_every_sleeper),
        cmocka_unit_test(test_event_pingpong_loses_no_wakeup),
    };
    return cmocka_run_group_tests_name("scheduler.event", tests, NULL, NULL);
}
