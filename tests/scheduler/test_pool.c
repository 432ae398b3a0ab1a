/* Tests of scheduler/pool.c: exactly-once execution under races,
 * continuations, nested waits, caller participation, NUMA nodes (fake and
 * really pinned), drain-on-shutdown, thread leaks and idle CPU use. */
#define _GNU_SOURCE /* sched_getcpu; before any include */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "scheduler/pool.h"

#include <dirent.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cortado/engine.h"
#include "scheduler/sync.h"
#include "scheduler/topology.h"

#define N_TASKS 100000

/* ---- helpers ---- */

static struct ct__pool *make_pool(int n_threads)
{
    struct ct__pool_config cfg;
    struct ct__pool *pool = NULL;

    ct__pool_config_init(&cfg);
    cfg.n_threads = n_threads;
    assert_int_equal(ct__pool_new(&cfg, &pool, NULL), CT_OK);
    return pool;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls a latch without taking part in the pool (the caller sleeps). */
static void poll_latch(struct ct__latch *l, int timeout_ms)
{
    int waited = 0;
    while (!ct__latch_is_done(l)) {
        if (waited++ > timeout_ms)
            fail_msg("job not done after %d ms", timeout_ms);
        sleep_ms(1);
    }
}

/* Stats are a racy snapshot: a worker adds its chain's count after the
 * last run_cb returns, which may be after the waiter saw the job done. */
static void get_settled_stats(struct ct__pool *pool, uint64_t n_tasks,
                              struct ct__pool_stats *s)
{
    int waited = 0;
    ct__pool_get_stats(pool, -1, s);
    while (s->n_tasks < n_tasks && waited++ < 1000) {
        sleep_ms(1);
        ct__pool_get_stats(pool, -1, s);
    }
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* utime + stime of /proc/self/stat, in clock ticks. */
static long proc_stat_ticks(void)
{
    char buf[1024], *p;
    unsigned long utime = 0, stime = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n;
    int field;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* comm may contain spaces */
    assert_non_null(p);
    for (field = 2; field < 14 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    assert_non_null(p);
    assert_int_equal(sscanf(p, " %lu %lu", &utime, &stime), 2);
    return (long)(utime + stime);
}

/* A flat job: tasks that count their own runs. */
struct flat_job {
    struct ct__pool *pool;
    _Atomic int *runs;
    struct ct__latch left;
};

struct flat_task {
    struct ct__task task;
    struct flat_job *job;
    int idx;
};

static struct ct__task *flat_run(struct ct__task *t, struct ct__worker *w)
{
    struct flat_task *ft = (struct flat_task *)t;
    struct flat_job *job = ft->job;

    /* relaxed: the latch publishes the counts to the checker. */
    atomic_fetch_add_explicit(&job->runs[ft->idx], 1, memory_order_relaxed);
    ct__latch_count_down(ct__worker_pool(w), &job->left, 1);
    return NULL;
}

static struct flat_task *flat_tasks_new(struct flat_job *job,
                                        struct ct__pool *pool, int n)
{
    struct flat_task *ts = calloc((size_t)n, sizeof(*ts));
    int i;

    assert_non_null(ts);
    job->pool = pool;
    job->runs = calloc((size_t)n, sizeof(*job->runs));
    assert_non_null(job->runs);
    ct__latch_init(&job->left, n);
    for (i = 0; i < n; i++) {
        ts[i].task.run_cb = flat_run;
        ts[i].job = job;
        ts[i].idx = i;
        atomic_init(&job->runs[i], 0);
    }
    return ts;
}

static void submit_all(struct ct__pool *pool, int node, struct flat_task *ts,
                       int n)
{
    struct ct__task *batch[1000];
    int i, k = 0;

    for (i = 0; i < n; i++) {
        batch[k++] = &ts[i].task;
        if (k == 1000 || i == n - 1) {
            ct__pool_submit_n(pool, node, batch, (size_t)k);
            k = 0;
        }
    }
}

static void assert_all_ran_once(_Atomic int *runs, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (atomic_load(&runs[i]) != 1)
            fail_msg("task %d ran %d times", i, atomic_load(&runs[i]));
}

/* A tree job: each task splits its range, pushes the right half and
 * continues with the left half as its continuation. */
struct tree_job {
    struct tree_task *tasks;
    _Atomic int64_t next_task; /* bump allocator into tasks */
    int64_t cap;
    _Atomic int *runs;
    struct ct__latch left;
};

struct tree_task {
    struct ct__task task;
    struct tree_job *job;
    int64_t begin, end;
};

static struct tree_task *tree_task_new(struct tree_job *job, int64_t b,
                                       int64_t e);

static struct ct__task *tree_run(struct ct__task *t, struct ct__worker *w)
{
    struct tree_task *tt = (struct tree_task *)t;
    struct tree_job *job = tt->job;
    int64_t mid;

    if (tt->end - tt->begin == 1) {
        atomic_fetch_add_explicit(&job->runs[tt->begin], 1,
                                  memory_order_relaxed);
        ct__latch_count_down(ct__worker_pool(w), &job->left, 1);
        return NULL;
    }
    mid = tt->begin + (tt->end - tt->begin) / 2;
    ct__worker_push(w, &tree_task_new(job, mid, tt->end)->task);
    return &tree_task_new(job, tt->begin, mid)->task;
}

static struct tree_task *tree_task_new(struct tree_job *job, int64_t b,
                                       int64_t e)
{
    int64_t i = atomic_fetch_add(&job->next_task, 1);
    struct tree_task *tt;

    CT_ASSERT(i < job->cap, "tree job ran out of tasks");
    tt = &job->tasks[i];
    tt->task.run_cb = tree_run;
    tt->job = job;
    tt->begin = b;
    tt->end = e;
    return tt;
}

static void run_tree(struct ct__pool *pool, int n)
{
    struct tree_job job;
    int i;

    job.cap = 2 * (int64_t)n;
    job.tasks = calloc((size_t)job.cap, sizeof(*job.tasks));
    job.runs = calloc((size_t)n, sizeof(*job.runs));
    assert_non_null(job.tasks);
    assert_non_null(job.runs);
    for (i = 0; i < n; i++)
        atomic_init(&job.runs[i], 0);
    atomic_init(&job.next_task, 0);
    ct__latch_init(&job.left, n);
    ct__pool_submit(pool, -1, &tree_task_new(&job, 0, n)->task);
    ct__pool_wait_latch(pool, &job.left);
    assert_all_ran_once(job.runs, n);
    assert_int_equal(atomic_load(&job.next_task), 2 * (int64_t)n - 1);
    free(job.tasks);
    free(job.runs);
}

static void run_flat(int n_threads)
{
    struct ct__pool *pool = make_pool(n_threads);
    struct flat_job job;
    struct flat_task *ts = flat_tasks_new(&job, pool, N_TASKS);
    struct ct__pool_stats s;

    submit_all(pool, -1, ts, N_TASKS);
    ct__pool_wait_latch(pool, &job.left);
    assert_all_ran_once(job.runs, N_TASKS);
    get_settled_stats(pool, N_TASKS, &s);
    assert_int_equal(s.n_tasks, N_TASKS);
    assert_int_equal(s.n_injected, N_TASKS);
    ct__pool_free(pool);
    free(ts);
    free(job.runs);
}

/* ---- exactly once ---- */

static void test_pool_submit_1_thread_runs_every_task_once(void **state)
{
    (void)state;
    run_flat(1);
}

static void test_pool_submit_2_threads_runs_every_task_once(void **state)
{
    (void)state;
    run_flat(2);
}

static void test_pool_submit_8_threads_runs_every_task_once(void **state)
{
    (void)state;
    run_flat(8);
}

static void test_pool_push_tree_runs_every_leaf_once(void **state)
{
    static const int threads[] = {1, 2, 8};
    int i, rep;

    (void)state;
    for (i = 0; i < 3; i++) {
        struct ct__pool *pool = make_pool(threads[i]);
        for (rep = 0; rep < 3; rep++)
            run_tree(pool, N_TASKS);
        ct__pool_free(pool);
    }
}

/* ---- continuations ---- */

struct chain {
    struct ct__task task;
    int remaining;
    struct ct__worker *first;
    bool moved;
    struct ct__latch done;
};

static struct ct__task *chain_run(struct ct__task *t, struct ct__worker *w)
{
    struct chain *c = (struct chain *)t;

    if (c->first == NULL)
        c->first = w;
    c->moved |= c->first != w;
    if (--c->remaining > 0)
        return t; /* the continuation: run me again, right here */
    ct__latch_count_down(ct__worker_pool(w), &c->done, 1);
    return NULL;
}

static void
test_pool_continuation_runs_on_same_worker_without_deque(void **state)
{
    struct ct__pool *pool = make_pool(2);
    struct ct__pool_stats before, after;
    struct chain c;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.task.run_cb = chain_run;
    c.remaining = 10000;
    ct__latch_init(&c.done, 1);
    ct__pool_get_stats(pool, -1, &before);
    ct__pool_submit(pool, -1, &c.task);
    ct__pool_wait_latch(pool, &c.done);
    get_settled_stats(pool, before.n_tasks + 10000, &after);
    assert_false(c.moved);
    assert_int_equal(after.n_tasks - before.n_tasks, 10000);
    /* Taken once from the injection queue, never stolen: the chain never
     * went through a deque. */
    assert_int_equal(after.n_injected - before.n_injected, 1);
    assert_int_equal(after.n_steals - before.n_steals, 0);
    ct__pool_free(pool);
}

/* ---- nested waits ---- */

struct nest {
    struct ct__task task;
    int depth;
    int fanout;
    _Atomic int *n_leaves;
    struct ct__latch *parent_done;
};

static struct ct__task *nest_run(struct ct__task *t, struct ct__worker *w)
{
    struct nest *n = (struct nest *)t;
    struct ct__pool *pool = ct__worker_pool(w);

    if (n->depth > 0) {
        struct nest kids[4];
        struct ct__task *ptrs[4];
        struct ct__latch done;
        int i;

        CT_ASSERT(n->fanout <= 4, "fanout");
        ct__latch_init(&done, n->fanout);
        for (i = 0; i < n->fanout; i++) {
            kids[i].task.run_cb = nest_run;
            kids[i].depth = n->depth - 1;
            kids[i].fanout = n->fanout;
            kids[i].n_leaves = n->n_leaves;
            kids[i].parent_done = &done;
            ptrs[i] = &kids[i].task;
        }
        /* Half through the own deque, half through the injection queue. */
        ct__worker_push_n(w, ptrs, (size_t)(n->fanout / 2));
        ct__pool_submit_n(pool, -1, ptrs + n->fanout / 2,
                          (size_t)(n->fanout - n->fanout / 2));
        ct__pool_wait_latch(pool, &done); /* nested: helps, never blocks */
    } else {
        atomic_fetch_add(n->n_leaves, 1);
    }
    ct__latch_count_down(pool, n->parent_done, 1);
    return NULL;
}

static void run_nest(struct ct__pool *pool, int depth, int fanout,
                     bool caller_helps)
{
    _Atomic int n_leaves = 0;
    struct ct__latch done;
    struct nest root;
    int expect = 1, i;

    for (i = 0; i < depth; i++)
        expect *= fanout;
    ct__latch_init(&done, 1);
    root.task.run_cb = nest_run;
    root.depth = depth;
    root.fanout = fanout;
    root.n_leaves = &n_leaves;
    root.parent_done = &done;
    ct__pool_submit(pool, -1, &root.task);
    if (caller_helps)
        ct__pool_wait_latch(pool, &done);
    else
        poll_latch(&done, 20000);
    assert_int_equal(atomic_load(&n_leaves), expect);
}

static void test_pool_wait_nested_with_only_the_caller_completes(void **state)
{
    struct ct__pool *pool = make_pool(1);

    (void)state;
    run_nest(pool, 6, 4, true);
    ct__pool_free(pool);
}

static void test_pool_wait_nested_on_single_worker_completes(void **state)
{
    struct ct__pool *pool = make_pool(2); /* one worker, caller stays out */

    (void)state;
    run_nest(pool, 6, 4, false);
    ct__pool_free(pool);
}

static void test_pool_wait_nested_deep_with_many_threads_completes(void **state)
{
    struct ct__pool *pool = make_pool(8);

    (void)state;
    run_nest(pool, 8, 2, true);
    run_nest(pool, 40, 1, false);
    ct__pool_free(pool);
}

/* ---- callers ---- */

struct caller_arg {
    struct ct__pool *pool;
    int n;
    bool ok;
};

static void caller_main(void *arg)
{
    struct caller_arg *a = arg;
    struct flat_job job;
    struct flat_task *ts = flat_tasks_new(&job, a->pool, a->n);
    int i;

    submit_all(a->pool, -1, ts, a->n);
    ct__pool_wait_latch(a->pool, &job.left);
    a->ok = true;
    for (i = 0; i < a->n; i++)
        a->ok &= atomic_load(&job.runs[i]) == 1;
    free(ts);
    free(job.runs);
}

static void test_pool_wait_more_callers_than_slots_all_complete(void **state)
{
    struct ct__pool_config cfg;
    struct ct__pool *pool = NULL;
    struct ct__thread thr[4];
    struct caller_arg args[4];
    int i;

    (void)state;
    ct__pool_config_init(&cfg);
    cfg.n_threads = 2;
    cfg.n_callers = 1; /* three of the four callers wait passively */
    assert_int_equal(ct__pool_new(&cfg, &pool, NULL), CT_OK);
    for (i = 0; i < 4; i++) {
        args[i].pool = pool;
        args[i].n = 20000;
        args[i].ok = false;
        assert_int_equal(
            ct__thread_create(&thr[i], "caller", caller_main, &args[i]), CT_OK);
    }
    for (i = 0; i < 4; i++) {
        ct__thread_join(&thr[i]);
        assert_true(args[i].ok);
    }
    ct__pool_free(pool);
}

static void test_pool_detach_moves_leftover_tasks_to_injection(void **state)
{
    struct ct__pool *pool = make_pool(1); /* no workers at all */
    struct flat_job job;
    struct flat_task *ts = flat_tasks_new(&job, pool, 100);
    struct ct__worker *w;
    int i;

    (void)state;
    w = ct__pool_attach(pool);
    assert_non_null(w);
    assert_ptr_equal(ct__pool_current(pool), w);
    assert_int_equal(ct__worker_ith(w), 0); /* first caller slot */
    for (i = 0; i < 100; i++)
        ct__worker_push(w, &ts[i].task);
    ct__pool_detach(w);
    assert_null(ct__pool_current(pool));
    ct__pool_wait_latch(pool, &job.left); /* finds them in the queue */
    assert_all_ran_once(job.runs, 100);
    ct__pool_free(pool);
    free(ts);
    free(job.runs);
}

struct slow_task {
    struct ct__task task;
    struct ct__latch done;
};

static struct ct__task *slow_run(struct ct__task *t, struct ct__worker *w)
{
    struct slow_task *s = (struct slow_task *)t;
    sleep_ms(50);
    ct__latch_count_down(ct__worker_pool(w), &s->done, 1);
    return NULL;
}

static void test_pool_wait_parked_caller_wakes_on_completion(void **state)
{
    struct ct__pool_config cfg;
    struct ct__pool *pool = NULL;
    struct ct__pool_stats s;
    struct slow_task t;
    struct ct__worker *w;

    (void)state;
    ct__pool_config_init(&cfg);
    cfg.n_threads = 2;
    cfg.spin_rounds = 0; /* park at once: the wake-up is what we test */
    cfg.yield_rounds = 0;
    assert_int_equal(ct__pool_new(&cfg, &pool, NULL), CT_OK);
    t.task.run_cb = slow_run;
    ct__latch_init(&t.done, 1);
    w = ct__pool_attach(pool);
    ct__worker_push(w, &t.task);
    sleep_ms(5); /* the worker steals it; the caller then has nothing */
    ct__pool_wait_latch(pool, &t.done);
    ct__pool_get_stats(pool, ct__worker_ith(w), &s);
    ct__pool_detach(w);
    assert_true(ct__latch_is_done(&t.done));
    if (s.n_tasks == 0) /* the caller did not run it itself */
        assert_true(s.n_parks >= 1);
    ct__pool_free(pool);
}

/* All participants must run at once: each task blocks until every one of
 * them has started (or a deadline passes). One notify announces the
 * burst, so the sleepers must wake each other. */
struct meet {
    struct ct__task task;
    _Atomic int *arrived;
    int n;
    bool met;
    struct ct__latch *done;
};

static struct ct__task *meet_run(struct ct__task *t, struct ct__worker *w)
{
    struct meet *m = (struct meet *)t;
    int waited = 0;

    atomic_fetch_add(m->arrived, 1);
    while (atomic_load(m->arrived) < m->n && waited++ < 10000)
        sleep_ms(1);
    m->met = atomic_load(m->arrived) >= m->n;
    ct__latch_count_down(ct__worker_pool(w), m->done, 1);
    return NULL;
}

static void test_pool_burst_wakes_every_sleeping_worker(void **state)
{
    enum { N = 4 };
    struct ct__pool *pool = make_pool(N); /* 3 workers + the caller */
    struct meet m[N];
    struct ct__task *ptrs[N];
    struct ct__latch done;
    struct ct__worker *w;
    _Atomic int arrived = 0;
    int i;

    (void)state;
    sleep_ms(50); /* every worker has spun out and parked */
    ct__latch_init(&done, N);
    for (i = 0; i < N; i++) {
        m[i].task.run_cb = meet_run;
        m[i].arrived = &arrived;
        m[i].n = N;
        m[i].met = false;
        m[i].done = &done;
        ptrs[i] = &m[i].task;
    }
    w = ct__pool_attach(pool);
    ct__worker_push_n(w, ptrs, N); /* one notify for the whole burst */
    ct__pool_wait_latch(pool, &done);
    ct__pool_detach(w);
    for (i = 0; i < N; i++)
        assert_true(m[i].met);
    ct__pool_free(pool);
}

/* ---- NUMA nodes ---- */

struct blocker {
    struct ct__task task;
    _Atomic int started_on_node; /* -1 until it runs on node 1 */
    struct flat_task *kids;
    struct flat_job *kid_job;
    int n_kids;
    struct ct__pool *pool;
};

static struct ct__task *blocker_run(struct ct__task *t, struct ct__worker *w)
{
    struct blocker *b = (struct blocker *)t;
    int i;

    if (ct__worker_node(w) != 1) { /* wrong node: go back to node 1 */
        ct__pool_submit(b->pool, 1, t);
        return NULL;
    }
    atomic_store(&b->started_on_node, 1);
    for (i = 0; i < b->n_kids / 2; i++) /* these can only be stolen */
        ct__worker_push(w, &b->kids[i].task);
    while (!ct__latch_is_done(&b->kid_job->left)) /* hold node 1's worker */
        sleep_ms(1);
    return NULL;
}

static void notice_counter(void *ctx, const char *msg)
{
    (void)msg;
    atomic_fetch_add((_Atomic int *)ctx, 1);
}

static void
test_pool_two_nodes_other_node_takes_queued_and_stolen_work(void **state)
{
    struct ct__topology *topo = NULL;
    struct ct__pool_config cfg;
    struct ct__pool *pool = NULL;
    struct ct__pool_stats s0;
    struct flat_job job;
    struct flat_task *ts;
    struct blocker b;
    _Atomic int n_notices = 0;
    int n = 2000;

    (void)state;
    assert_int_equal(
        ct__topology_new("pack:2 numa:1 core:1 pu:1", 0, &topo, NULL), CT_OK);
    ct__pool_config_init(&cfg);
    cfg.n_threads = 3; /* caller + worker 0 on node 0, worker 1 on node 1 */
    cfg.topo = topo;
    cfg.notice_cb = notice_counter;
    cfg.notice_ctx = &n_notices;
    assert_int_equal(ct__pool_new(&cfg, &pool, NULL), CT_OK);
    assert_int_equal(ct__pool_n_nodes(pool), 2);
    assert_int_equal(atomic_load(&n_notices), 1); /* not this system */
    assert_int_equal(ct__pool_n_pinned(pool), 0);

    ts = flat_tasks_new(&job, pool, n);
    memset(&b, 0, sizeof(b));
    b.task.run_cb = blocker_run;
    atomic_init(&b.started_on_node, -1);
    b.kids = ts;
    b.kid_job = &job;
    b.n_kids = n;
    b.pool = pool;
    ct__pool_submit(pool, 1, &b.task);
    while (atomic_load(&b.started_on_node) != 1)
        sleep_ms(1);
    /* Node 1's only worker is busy: node 0's worker must take the second
     * half from node 1's injection queue and the first half by stealing
     * from node 1's worker. The caller stays out of it. */
    submit_all(pool, 1, ts + n / 2, n - n / 2);
    poll_latch(&job.left, 20000);
    assert_all_ran_once(job.runs, n);
    ct__pool_get_stats(pool, 0, &s0);
    assert_true(s0.n_steals >= (uint64_t)n / 2);
    assert_true(s0.n_injected >= (uint64_t)(n - n / 2));
    ct__pool_free(pool);
    ct__topology_free(topo);
    free(ts);
    free(job.runs);
}

struct cpu_probe {
    struct ct__task task;
    _Atomic int *cpu_of_slot; /* last CPU seen per slot */
    struct ct__latch *left;
};

static struct ct__task *cpu_probe_run(struct ct__task *t, struct ct__worker *w)
{
    struct cpu_probe *p = (struct cpu_probe *)t;
    int cpu = sched_getcpu();
    int seen = atomic_load(&p->cpu_of_slot[ct__worker_ith(w)]);

    /* -2: ran on more than one CPU */
    if (seen == -1)
        atomic_store(&p->cpu_of_slot[ct__worker_ith(w)], cpu);
    else if (seen != cpu)
        atomic_store(&p->cpu_of_slot[ct__worker_ith(w)], -2);
    ct__latch_count_down(ct__worker_pool(w), p->left, 1);
    return NULL;
}

static void test_pool_thissystem_two_nodes_pins_workers_for_real(void **state)
{
    struct ct__topology *topo = NULL;
    struct ct__pool_config cfg;
    struct ct__pool *pool = NULL;
    struct cpu_probe probes[2000];
    struct ct__latch left;
    _Atomic int cpu_of_slot[16];
    int i, waited = 0;

    (void)state;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        skip();
    assert_int_equal(ct__topology_new("pack:2 numa:1 core:1 pu:1",
                                      CT__TOPOLOGY_THISSYSTEM, &topo, NULL),
                     CT_OK);
    if (!topo->can_bind || !hwloc_bitmap_isset(topo->real_cpuset, 1)) {
        ct__topology_free(topo);
        skip();
    }
    ct__pool_config_init(&cfg);
    cfg.n_threads = 3; /* worker 0 on cpu 0 (node 0), worker 1 on cpu 1 */
    assert_int_equal(cfg.n_callers + 2 <= 16, 1);
    cfg.topo = topo;
    assert_int_equal(ct__pool_new(&cfg, &pool, NULL), CT_OK);
    while (ct__pool_n_pinned(pool) < 2 && waited++ < 1000)
        sleep_ms(1);
    assert_int_equal(ct__pool_n_pinned(pool), 2);
    for (i = 0; i < 16; i++)
        atomic_init(&cpu_of_slot[i], -1);
    ct__latch_init(&left, 2000);
    for (i = 0; i < 2000; i++) {
        probes[i].task.run_cb = cpu_probe_run;
        probes[i].cpu_of_slot = cpu_of_slot;
        probes[i].left = &left;
        ct__pool_submit(pool, i % 2, &probes[i].task);
    }
    poll_latch(&left, 20000);
    /* A worker that ran anything ran it on its own CPU, and only there. */
    if (atomic_load(&cpu_of_slot[0]) != -1)
        assert_int_equal(atomic_load(&cpu_of_slot[0]), 0);
    if (atomic_load(&cpu_of_slot[1]) != -1)
        assert_int_equal(atomic_load(&cpu_of_slot[1]), 1);
    assert_true(atomic_load(&cpu_of_slot[0]) != -1 ||
                atomic_load(&cpu_of_slot[1]) != -1);
    ct__pool_free(pool);
    ct__topology_free(topo);
}

/* ---- shutdown ---- */

struct spawner {
    struct ct__task task; /* first: the task pointer is the spawner */
    volatile int sink;    /* busy work lands here (per task: no race) */
    struct flat_job *job;
    struct flat_task *kids; /* two children pushed during shutdown */
    _Atomic int *runs;
    int idx;
};

static struct ct__task *spawner_run(struct ct__task *t, struct ct__worker *w)
{
    struct spawner *s = (struct spawner *)t;
    int i;

    for (i = 0; i < 2000; i++) /* a little work, so the queue stays full */
        s->sink = s->sink + i;
    atomic_fetch_add(&s->runs[s->idx], 1);
    ct__worker_push(w, &s->kids[0].task);
    ct__worker_push(w, &s->kids[1].task);
    return NULL;
}

static void run_free_with_queued_work(int n_threads)
{
    enum { N = 5000 };
    struct ct__pool *pool = make_pool(n_threads);
    struct spawner *sp = calloc(N, sizeof(*sp));
    _Atomic int *runs = calloc(N, sizeof(*runs));
    struct flat_job job;
    struct flat_task *kids = flat_tasks_new(&job, pool, 2 * N);
    int i;

    assert_non_null(sp);
    assert_non_null(runs);
    for (i = 0; i < N; i++) {
        atomic_init(&runs[i], 0);
        sp[i].task.run_cb = spawner_run;
        sp[i].runs = runs;
        sp[i].idx = i;
        sp[i].kids = &kids[2 * i];
        ct__pool_submit(pool, -1, &sp[i].task);
    }
    ct__pool_free(pool); /* drains: every spawner and every child runs */
    assert_all_ran_once(runs, N);
    assert_all_ran_once(job.runs, 2 * N);
    free(sp);
    free(runs);
    free(kids);
    free(job.runs);
}

static void test_pool_free_with_queued_work_runs_every_task(void **state)
{
    (void)state;
    run_free_with_queued_work(4);
}

static void test_pool_free_without_workers_runs_queued_tasks(void **state)
{
    (void)state;
    run_free_with_queued_work(1);
}

static void test_pool_free_returns_thread_count_to_baseline(void **state)
{
    int base = count_threads(), waited = 0;
    struct ct__pool *pool;

    (void)state;
    pool = make_pool(8);
    assert_int_equal(count_threads(), base + 7);
    run_tree(pool, 1000);
    ct__pool_free(pool);
    /* A joined thread may linger in /proc for a moment. */
    while (count_threads() != base && waited++ < 1000)
        sleep_ms(1);
    assert_int_equal(count_threads(), base);
}

static void test_pool_idle_uses_no_cpu(void **state)
{
    struct ct__pool *pool = make_pool(8);
    uint64_t cpu0, cpu1;
    long ticks0, ticks1;

    int attempt;

    (void)state;
    run_tree(pool, 10000); /* wake every worker */
    sleep_ms(20);
    /* On a loaded machine a worker still in its spin phase may be
     * descheduled and finish spinning late, so one window can see some
     * CPU; a pool that never parks uses CPU in every window. Up to five
     * windows, one quiet window passes. */
    for (attempt = 0;; attempt++) {
        cpu0 = process_cpu_ns();
        ticks0 = proc_stat_ticks();
        sleep_ms(100);
        cpu1 = process_cpu_ns();
        ticks1 = proc_stat_ticks();
        if (cpu1 - cpu0 < 3000000u && ticks1 - ticks0 <= 1)
            break;
        if (attempt == 4)
            fail_msg("idle pool used %.3f ms of CPU (%ld ticks) in each of "
                     "5 windows of 100 ms (last shown)",
                     (double)(cpu1 - cpu0) / 1e6, ticks1 - ticks0);
    }
    ct__pool_free(pool);
}

/* ---- configuration and allocation failures ---- */

static void test_pool_new_zero_threads_returns_einval(void **state)
{
    struct ct__pool_config cfg;
    struct ct__pool *pool = (void *)1;
    ct_status_t st;

    (void)state;
    ct_status_clear(&st);
    ct__pool_config_init(&cfg);
    cfg.n_threads = 0;
    assert_int_equal(ct__pool_new(&cfg, &pool, &st), CT_EINVAL);
    assert_null(pool);
    assert_non_null(strstr(st.msg, "pool: n_threads 0 out of range"));
    cfg.n_threads = 2;
    cfg.deque_capacity = 1;
    assert_int_equal(ct__pool_new(&cfg, &pool, &st), CT_EINVAL);
    assert_non_null(strstr(st.msg, "deque_capacity 1 out of range"));
}

static int alloc_budget;

static void *budget_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (alloc_budget-- <= 0)
        return NULL;
    return malloc(size);
}

static void *budget_aligned(size_t align, size_t size, void *ctx)
{
    void *p = NULL;
    (void)ctx;
    if (alloc_budget-- <= 0)
        return NULL;
    if (posix_memalign(&p, align, size ? size : 1) != 0)
        return NULL;
    return p;
}

static void budget_aligned_free(void *p, size_t size, void *ctx)
{
    (void)size;
    (void)ctx;
    free(p);
}

static void
test_pool_new_alloc_failure_returns_enomem_and_leaks_nothing(void **state)
{
    struct ct__topology *topo = NULL;
    struct ct__pool_config cfg;
    struct ct_allocator a = {0};
    int k, rc = CT_ENOMEM;

    (void)state;
    assert_int_equal(
        ct__topology_new("pack:2 numa:1 core:2 pu:1", 0, &topo, NULL), CT_OK);
    ct__pool_config_init(&cfg);
    cfg.n_threads = 3;
    cfg.topo = topo;
    a.malloc_cb = budget_malloc;
    a.aligned_cb = budget_aligned;
    a.aligned_free_cb = budget_aligned_free;
    for (k = 0; rc != CT_OK; k++) {
        struct ct__pool *pool = (void *)1;
        ct_status_t st;

        ct_status_clear(&st);
        alloc_budget = k;
        ct_set_allocator(&a);
        rc = ct__pool_new(&cfg, &pool, &st);
        if (rc == CT_OK) {
            alloc_budget = 1 << 30; /* the pool may grow deques now */
            ct__pool_free(pool);
        }
        ct_set_allocator(NULL);
        if (rc != CT_OK) {
            assert_int_equal(rc, CT_ENOMEM);
            assert_null(pool);
            assert_non_null(strstr(st.msg, "out of memory"));
        }
        assert_true(k < 1000);
    }
    assert_true(k > 3);
    ct__topology_free(topo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_submit_1_thread_runs_every_task_once),
        cmocka_unit_test(test_pool_submit_2_threads_runs_every_task_once),
        cmocka_unit_test(test_pool_submit_8_threads_runs_every_task_once),
        cmocka_unit_test(test_pool_push_tree_runs_every_leaf_once),
        cmocka_unit_test(
            test_pool_continuation_runs_on_same_worker_without_deque),
        cmocka_unit_test(test_pool_wait_nested_with_only_the_caller_completes),
        cmocka_unit_test(test_pool_wait_nested_on_single_worker_completes),
        cmocka_unit_test(
            test_pool_wait_nested_deep_with_many_threads_completes),
        cmocka_unit_test(test_pool_wait_more_callers_than_slots_all_complete),
        cmocka_unit_test(test_pool_detach_moves_leftover_tasks_to_injection),
        cmocka_unit_test(test_pool_wait_parked_caller_wakes_on_completion),
        cmocka_unit_test(test_pool_burst_wakes_every_sleeping_worker),
        cmocka_unit_test(
            test_pool_two_nodes_other_node_takes_queued_and_stolen_work),
        cmocka_unit_test(test_pool_thissystem_two_nodes_pins_workers_for_real),
        cmocka_unit_test(test_pool_free_with_queued_work_runs_every_task),
        cmocka_unit_test(test_pool_free_without_workers_runs_queued_tasks),
        cmocka_unit_test(test_pool_free_returns_thread_count_to_baseline),
        cmocka_unit_test(test_pool_idle_uses_no_cpu),
        cmocka_unit_test(test_pool_new_zero_threads_returns_einval),
        cmocka_unit_test(
            test_pool_new_alloc_failure_returns_enomem_and_leaks_nothing),
    };
    return cmocka_run_group_tests_name("scheduler.pool", tests, NULL, NULL);
}
