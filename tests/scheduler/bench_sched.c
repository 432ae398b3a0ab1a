/* Micro-benchmarks of the scheduler (not a ctest test).
 *
 *   bench_sched [--smoke] [--reps R] [--threads T]
 *
 * One line per case: name, threads, median ns per op over R repetitions,
 * items/s. Cases: deque push/pop, EventCount notify with no waiter, pool
 * chains (continuation vs. deque), fan-out, binary tree, small hot/cold
 * jobs (a 100-task fan-out re-run by the caller), and parallel_for with
 * the library's chunk counter against recursive halving. --threads limits
 * the pool sizes tried (1 and 2 by default). Single-threaded cases (and
 * pools of one thread, where only the caller runs tasks) are timed with
 * the thread's CPU clock, so they stay meaningful on a loaded machine;
 * multi-threaded cases use wall time.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/alloc.h"
#include "scheduler/deque.h"
#include "scheduler/event.h"
#include "scheduler/parallel_for.h"
#include "scheduler/pool.h"
#include "scheduler/sync.h"

static int g_reps = 7;
static int64_t g_scale = 1; /* divides problem sizes in --smoke */
static volatile int64_t g_sink;

/* ---- timing ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, int threads, double *ns, int reps)
{
    qsort(ns, (size_t)reps, sizeof(double), cmp_double);
    printf("%-34s threads=%d  median %9.2f ns/op  %12.0f items/s\n", name,
           threads, ns[reps / 2], 1e9 / ns[reps / 2]);
    fflush(stdout);
}

/* Single-threaded cases use the thread's CPU clock: robust to being
 * descheduled on a loaded machine. */
static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pool cases: with one thread only the caller executes, so its CPU time
 * is the cost; with more, wall time. */
static bool g_cpu_clock;

static uint64_t pool_now_ns(void)
{
    return g_cpu_clock ? cpu_now_ns() : ct__now_ns();
}

/* ---- deque ---- */

static void bench_deque(void)
{
    struct ct__deque *dq = ct__aligned_alloc(sizeof(*dq));
    struct ct__task tasks[256];
    double ns[32];
    int64_t n = 10000000 / g_scale, i;
    int r, k;

    if (dq == NULL || ct__deque_init(dq, 256) != CT_OK)
        abort();
    for (r = 0; r < g_reps; r++) {
        uint64_t t0 = cpu_now_ns();
        for (i = 0; i < n; i++) {
            ct__deque_push(dq, &tasks[0]);
            g_sink += ct__deque_pop(dq) != NULL;
        }
        ns[r] = (double)(cpu_now_ns() - t0) / (double)n;
    }
    report("deque push+pop (1 item)", 1, ns, g_reps);
    for (r = 0; r < g_reps; r++) {
        uint64_t t0 = cpu_now_ns();
        for (i = 0; i < n / 256; i++) {
            for (k = 0; k < 256; k++)
                ct__deque_push(dq, &tasks[k]);
            for (k = 0; k < 256; k++)
                g_sink += ct__deque_pop(dq) != NULL;
        }
        ns[r] = (double)(cpu_now_ns() - t0) / (double)(n / 256 * 256);
    }
    report("deque push+pop (batches of 256)", 1, ns, g_reps);
    for (r = 0; r < g_reps; r++) {
        uint64_t t0 = cpu_now_ns();
        for (i = 0; i < n; i++) {
            ct__deque_push(dq, &tasks[0]);
            g_sink += ct__deque_steal(dq) != NULL;
        }
        ns[r] = (double)(cpu_now_ns() - t0) / (double)n;
    }
    report("deque push+steal (same thread)", 1, ns, g_reps);
    ct__deque_destroy(dq);
    ct__aligned_free(dq, sizeof(*dq));
}

static void bench_event(void)
{
    struct ct__event ev;
    double ns[32];
    int64_t n = 10000000 / g_scale, i;
    int r;

    ct__event_init(&ev);
    for (r = 0; r < g_reps; r++) {
        uint64_t t0 = cpu_now_ns();
        for (i = 0; i < n; i++)
            g_sink += ct__event_notify_one(&ev);
        ns[r] = (double)(cpu_now_ns() - t0) / (double)n;
    }
    report("event notify_one, no waiter", 1, ns, g_reps);
    ct__event_destroy(&ev);
}

/* ---- pool shapes ---- */

static struct ct__pool *make_pool(int n_threads)
{
    struct ct__pool_config cfg;
    struct ct__pool *pool = NULL;

    ct__pool_config_init(&cfg);
    cfg.n_threads = n_threads;
    if (ct__pool_new(&cfg, &pool, NULL) != CT_OK)
        abort();
    return pool;
}

/* A chain of n tasks; `via_deque` pushes each successor instead of
 * returning it as the continuation (the ablation of §2g). */
struct chain {
    struct ct__task task;
    int64_t left;
    bool via_deque;
    struct ct__latch done;
};

static struct ct__task *chain_run(struct ct__task *t, struct ct__worker *w)
{
    struct chain *c = (struct chain *)t;

    if (--c->left == 0) {
        ct__latch_count_down(ct__worker_pool(w), &c->done, 1);
        return NULL;
    }
    if (c->via_deque) {
        ct__worker_push(w, t);
        return NULL;
    }
    return t;
}

static double run_chain(struct ct__pool *pool, int64_t n, bool via_deque)
{
    struct chain c;
    uint64_t t0;

    c.task.run_cb = chain_run;
    c.left = n;
    c.via_deque = via_deque;
    ct__latch_init(&c.done, 1);
    t0 = pool_now_ns();
    ct__pool_submit(pool, -1, &c.task);
    ct__pool_wait_latch(pool, &c.done);
    return (double)(pool_now_ns() - t0) / (double)n;
}

/* Fan-out: the caller pushes n tasks (batches of 256) onto its own deque,
 * each counts down a latch; the caller helps until done. */
struct leaf {
    struct ct__task task;
    struct ct__latch *done;
};

static struct ct__task *leaf_run(struct ct__task *t, struct ct__worker *w)
{
    struct leaf *l = (struct leaf *)t;
    ct__latch_count_down(ct__worker_pool(w), l->done, 1);
    return NULL;
}

static double run_fanout(struct ct__pool *pool, struct leaf *leaves, int64_t n)
{
    struct ct__task *batch[256];
    struct ct__latch done;
    struct ct__worker *w;
    uint64_t t0;
    int64_t i;
    int k = 0;

    ct__latch_init(&done, n);
    t0 = pool_now_ns();
    w = ct__pool_attach(pool);
    for (i = 0; i < n; i++) {
        leaves[i].task.run_cb = leaf_run;
        leaves[i].done = &done;
        batch[k++] = &leaves[i].task;
        if (k == 256 || i == n - 1) {
            ct__worker_push_n(w, batch, (size_t)k);
            k = 0;
        }
    }
    ct__pool_wait_latch(pool, &done);
    ct__pool_detach(w);
    return (double)(pool_now_ns() - t0) / (double)n;
}

/* Binary tree of spawns: each internal task pushes its right half and
 * continues with its left half. */
struct tree {
    struct ct__task task;
    struct tree_ctx *ctx;
    int64_t begin, end;
};

struct tree_ctx {
    struct tree *tasks;
    _Atomic int64_t next;
    struct ct__latch done;
};

static struct tree *tree_new(struct tree_ctx *ctx, int64_t b, int64_t e);

static struct ct__task *tree_run(struct ct__task *t, struct ct__worker *w)
{
    struct tree *tr = (struct tree *)t;
    int64_t mid;

    if (tr->end - tr->begin == 1) {
        ct__latch_count_down(ct__worker_pool(w), &tr->ctx->done, 1);
        return NULL;
    }
    mid = tr->begin + (tr->end - tr->begin) / 2;
    ct__worker_push(w, &tree_new(tr->ctx, mid, tr->end)->task);
    return &tree_new(tr->ctx, tr->begin, mid)->task;
}

static struct tree *tree_new(struct tree_ctx *ctx, int64_t b, int64_t e)
{
    /* relaxed: a bump allocator; the task hand-off publishes the fields. */
    struct tree *t = &ctx->tasks[atomic_fetch_add_explicit(
        &ctx->next, 1, memory_order_relaxed)];
    t->task.run_cb = tree_run;
    t->ctx = ctx;
    t->begin = b;
    t->end = e;
    return t;
}

static double run_tree(struct ct__pool *pool, struct tree *storage, int64_t n)
{
    struct tree_ctx ctx;
    uint64_t t0;

    ctx.tasks = storage;
    atomic_init(&ctx.next, 0);
    ct__latch_init(&ctx.done, n);
    t0 = pool_now_ns();
    ct__pool_submit(pool, -1, &tree_new(&ctx, 0, n)->task);
    ct__pool_wait_latch(pool, &ctx.done);
    return (double)(pool_now_ns() - t0) / (double)(2 * n - 1);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

static void bench_pool(int n_threads)
{
    int64_t n = 1000000 / g_scale;
    int64_t n_leaves = (int64_t)1 << (g_scale > 1 ? 14 : 20);
    struct leaf *leaves = calloc((size_t)n, sizeof(*leaves));
    struct tree *trees = calloc((size_t)(2 * n_leaves), sizeof(*trees));
    struct ct__pool *pool = make_pool(n_threads);
    double ns[32];
    int r, i;

    if (leaves == NULL || trees == NULL)
        abort();
    for (r = 0; r < g_reps; r++)
        ns[r] = run_chain(pool, n, false);
    report("chain 1e6, continuation", n_threads, ns, g_reps);
    for (r = 0; r < g_reps; r++)
        ns[r] = run_chain(pool, n, true);
    report("chain 1e6, via own deque", n_threads, ns, g_reps);
    for (r = 0; r < g_reps; r++)
        ns[r] = run_fanout(pool, leaves, n);
    report("fan-out 1e6 (caller pushes)", n_threads, ns, g_reps);
    for (r = 0; r < g_reps; r++)
        ns[r] = run_tree(pool, trees, n_leaves);
    report("binary tree 2^20 leaves", n_threads, ns, g_reps);

    /* Small jobs: 100 tasks per run, hot (back-to-back) and cold (2 ms
     * gap, long enough for idle workers to park). ns per run. */
    for (r = 0; r < g_reps; r++) {
        int runs = (int)(2001 / g_scale);
        uint64_t t0 = pool_now_ns();
        for (i = 0; i < runs; i++)
            (void)run_fanout(pool, leaves, 100);
        ns[r] = (double)(pool_now_ns() - t0) / runs;
    }
    report("job of 100 tasks, hot (ns/run)", n_threads, ns, g_reps);
    for (r = 0; r < g_reps; r++) {
        int runs = (int)(101 / g_scale) + 1;
        double sum = 0, per[128];
        for (i = 0; i < runs && i < 128; i++) {
            sleep_us(2000);
            per[i] = run_fanout(pool, leaves, 100) * 100;
            sum += per[i];
        }
        qsort(per, (size_t)(runs < 128 ? runs : 128), sizeof(double),
              cmp_double);
        ns[r] = per[(runs < 128 ? runs : 128) / 2];
        (void)sum;
    }
    report("job of 100 tasks, cold (ns/run)", n_threads, ns, g_reps);

    /* Idle: wall time from the end of a job until every worker parked. */
    for (r = 0; r < g_reps && n_threads > 1; r++) {
        struct ct__pool_stats st;
        uint64_t parks0 = 0, t0;
        int k;

        for (k = 0; k < n_threads - 1; k++) {
            ct__pool_get_stats(pool, k, &st);
            parks0 += st.n_parks;
        }
        (void)run_fanout(pool, leaves, 10000);
        t0 = ct__now_ns();
        for (;;) {
            uint64_t parks = 0;
            for (k = 0; k < n_threads - 1; k++) {
                ct__pool_get_stats(pool, k, &st);
                parks += st.n_parks;
            }
            if (parks >= parks0 + (uint64_t)(n_threads - 1))
                break;
            sleep_us(20);
        }
        ns[r] = (double)(ct__now_ns() - t0);
    }
    if (n_threads > 1)
        report("idle: last task -> all parked (ns)", n_threads, ns, g_reps);
    ct__pool_free(pool);
    free(leaves);
    free(trees);
}

/* ---- parallel_for: chunk counter (library) vs recursive halving ---- */

static void body(void *arg, int64_t begin, int64_t end, int ith)
{
    const float *x = arg;
    float s = 0;
    int64_t i;

    (void)ith;
    for (i = begin; i < end; i++)
        s += x[i];
    g_sink += (int64_t)s;
}

struct rh_task {
    struct ct__task task;
    struct rh_job *job;
    int64_t begin, end;
};

struct rh_job {
    const float *x;
    int64_t grain;
    struct rh_task *tasks;
    _Atomic int64_t next;
    struct ct__latch pending; /* tasks spawned and not finished */
};

static struct ct__task *rh_run(struct ct__task *t, struct ct__worker *w)
{
    struct rh_task *rt = (struct rh_task *)t;
    struct rh_job *job = rt->job;
    int64_t b = rt->begin, e = rt->end;

    while (e - b > job->grain) {
        int64_t mid = b + (e - b) / 2;
        struct rh_task *right = &job->tasks[atomic_fetch_add_explicit(
            &job->next, 1, memory_order_relaxed)];
        right->task.run_cb = rh_run;
        right->job = job;
        right->begin = mid;
        right->end = e;
        /* relaxed: this task still holds a count, so zero cannot be
         * reached before the increment; the push publishes it. */
        atomic_fetch_add_explicit(&job->pending.count, 1, memory_order_relaxed);
        ct__worker_push(w, &right->task);
        e = mid;
    }
    body((void *)job->x, b, e, 0);
    ct__latch_count_down(ct__worker_pool(w), &job->pending, 1);
    return NULL;
}

static void recursive_halving(struct ct__pool *pool, const float *x, int64_t n,
                              int64_t grain, struct rh_task *storage)
{
    struct rh_job job;
    struct ct__worker *w = ct__pool_attach(pool);

    job.x = x;
    job.grain = grain;
    job.tasks = storage;
    atomic_init(&job.next, 1);
    ct__latch_init(&job.pending, 1);
    storage[0].task.run_cb = rh_run;
    storage[0].job = &job;
    storage[0].begin = 0;
    storage[0].end = n;
    ct__worker_push(w, &storage[0].task);
    ct__pool_wait_latch(pool, &job.pending);
    ct__pool_detach(w);
}

static void bench_parallel_for(int n_threads)
{
    static const int64_t grains[] = {100000, 10000, 1000, 100};
    int64_t n = 1000000 / g_scale, i;
    float *x = malloc((size_t)n * sizeof(float));
    struct rh_task *storage = calloc((size_t)(2 * n + 2), sizeof(*storage));
    struct ct__pool *pool = make_pool(n_threads);
    double ns[32];
    char name[64];
    size_t gi;
    int r, k;

    if (x == NULL || storage == NULL)
        abort();
    for (i = 0; i < n; i++)
        x[i] = (float)(i & 7);
    for (gi = 0; gi < sizeof(grains) / sizeof(grains[0]); gi++) {
        int64_t grain = grains[gi] < n ? grains[gi] : n;
        int calls = 20;
        for (r = 0; r < g_reps; r++) {
            uint64_t t0 = pool_now_ns();
            for (k = 0; k < calls; k++)
                ct__parallel_for(pool, n, grain, body, x);
            ns[r] = (double)(pool_now_ns() - t0) / calls / 1000.0;
        }
        snprintf(name, sizeof(name), "pfor 1e6 g=%lld chunk (us/call)",
                 (long long)grain);
        report(name, n_threads, ns, g_reps);
        for (r = 0; r < g_reps; r++) {
            uint64_t t0 = pool_now_ns();
            for (k = 0; k < calls; k++)
                recursive_halving(pool, x, n, grain, storage);
            ns[r] = (double)(pool_now_ns() - t0) / calls / 1000.0;
        }
        snprintf(name, sizeof(name), "pfor 1e6 g=%lld halving (us/call)",
                 (long long)grain);
        report(name, n_threads, ns, g_reps);
    }
    /* Overhead of a tiny call: 64 iterations, grain 8. */
    for (r = 0; r < g_reps; r++) {
        int calls = (int)(20000 / g_scale);
        uint64_t t0 = pool_now_ns();
        for (k = 0; k < calls; k++)
            ct__parallel_for(pool, 64, 8, body, x);
        ns[r] = (double)(pool_now_ns() - t0) / calls;
    }
    report("pfor n=64 g=8 chunk (ns/call)", n_threads, ns, g_reps);
    for (r = 0; r < g_reps; r++) {
        int calls = (int)(20000 / g_scale);
        uint64_t t0 = pool_now_ns();
        for (k = 0; k < calls; k++)
            recursive_halving(pool, x, 64, 8, storage);
        ns[r] = (double)(pool_now_ns() - t0) / calls;
    }
    report("pfor n=64 g=8 halving (ns/call)", n_threads, ns, g_reps);
    ct__pool_free(pool);
    free(x);
    free(storage);
}

int main(int argc, char **argv)
{
    int max_threads = 2, t, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            g_scale = 100;
            g_reps = 3;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            g_reps = atoi(argv[++i]);
            if (g_reps < 1 || g_reps > 32)
                g_reps = 7;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            max_threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--smoke] [--reps R] [--threads T]\n",
                    argv[0]);
            return 2;
        }
    }
    bench_deque();
    bench_event();
    for (t = 1; t <= max_threads; t++) {
        g_cpu_clock = t == 1;
        bench_pool(t);
    }
    for (t = 1; t <= max_threads; t++) {
        g_cpu_clock = t == 1;
        bench_parallel_for(t);
    }
    return 0;
}
