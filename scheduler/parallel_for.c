/* cortado: ct__parallel_for on the work-stealing pool.
 *
 * Strategy: a shared atomic chunk counter. The caller pushes k helper
 * tasks (k = min(threads, chunks) - 1) onto its own deque with one notify,
 * then claims chunks itself; each helper that gets stolen claims chunks
 * until none are left. Helpers nobody stole are popped back by the caller
 * while it waits and find the counter exhausted, which costs a few ns
 * each. A helper keeps one lane index (ith) for its whole life, so ith is
 * unique among concurrent calls.
 *
 * Why not recursive halving (one task per split)? Measured with
 * tests/scheduler/bench_sched.c (micro_sched) on the 2-vCPU dev VM: for
 * large ranges (1e6 floats, grains 100..100000) both are equal within the
 * noise; for small calls the counter is cheaper (n = 64, grain 8: 147 vs
 * 215 ns with two threads; 51 vs 163 ns with one, where the counter
 * version is the inline serial path), since halving pays a
 * push, a pop or steal and a latch RMW per leaf against one relaxed
 * fetch_add per chunk. It also gives fn a stable, unique lane index.
 *
 * Orders: chunk claims are relaxed fetch_adds (only atomicity matters);
 * fn's inputs reach helpers through the deque's release/acquire hand-off
 * and fn's outputs reach the caller through the latch (acq_rel count-down,
 * acquire check).
 *
 * Everything lives on the caller's stack (up to LOCAL_HELPERS helpers, then
 * one allocation); a helper's last access to it is its latch count-down.
 */
#include <stdalign.h>
#include <stdatomic.h>

#include "engine/alloc.h"
#include "scheduler/parallel_for.h"
#include "scheduler/pool.h"
#include "scheduler/profile.h"

#define LOCAL_HELPERS 32

struct pf_job {
    void (*fn)(void *arg, int64_t begin, int64_t end, int ith);
    void *arg;
    int64_t n;
    int64_t grain;
    int64_t n_chunks;
    /* Next chunk to claim. atomic, relaxed: claims need atomicity only. */
    alignas(CT_CACHE_LINE) _Atomic int64_t next_chunk;
    /* Helper tasks that have not finished (run or found nothing left). */
    alignas(CT_CACHE_LINE) struct ct__latch helpers_left;
    /* Profiling only (times != NULL): time helpers spent in pf_work.
     * atomic, relaxed: read by the caller after the latch (acq_rel). */
    struct ct__pf_times *times;
    _Atomic uint64_t helper_ns;
};

struct pf_helper {
    struct ct__task task; /* first member: the task pointer is the helper */
    struct pf_job *job;
    int ith;
};

static void pf_work(struct pf_job *job, int ith)
{
    for (;;) {
        /* relaxed: see the file note. */
        int64_t c = atomic_fetch_add_explicit(&job->next_chunk, 1,
                                              memory_order_relaxed);
        int64_t begin, end;

        if (c >= job->n_chunks)
            return;
        begin = c * job->grain;
        end = c == job->n_chunks - 1 ? job->n : begin + job->grain;
        job->fn(job->arg, begin, end, ith);
    }
}

static struct ct__task *pf_helper_run(struct ct__task *t, struct ct__worker *w)
{
    struct pf_helper *h = (struct pf_helper *)t;
    struct pf_job *job = h->job;

    if (CT_UNLIKELY(job->times != NULL)) {
        uint64_t t0 = ct__profile_now();
        pf_work(job, h->ith);
        atomic_fetch_add_explicit(&job->helper_ns, ct__profile_now() - t0,
                                  memory_order_relaxed);
    } else {
        pf_work(job, h->ith);
    }
    /* Last access to job (and h): the caller may return right after. */
    ct__latch_count_down(ct__worker_pool(w), &job->helpers_left, 1);
    return NULL;
}

int ct__parallel_for(struct ct__pool *pool, int64_t n, int64_t grain,
                     void (*fn)(void *arg, int64_t begin, int64_t end, int ith),
                     void *arg)
{
    return ct__parallel_for_timed(pool, n, grain, fn, arg, NULL);
}

int ct__parallel_for_timed(struct ct__pool *pool, int64_t n, int64_t grain,
                           void (*fn)(void *arg, int64_t begin, int64_t end,
                                      int ith),
                           void *arg, struct ct__pf_times *times)
{
    struct pf_helper local[LOCAL_HELPERS];
    struct ct__task *tasks[LOCAL_HELPERS];
    struct pf_helper *helpers = local;
    struct ct__worker *w;
    struct pf_job job;
    int64_t n_chunks, k, i;
    int n_threads;

    if (n < 0 || fn == NULL)
        return CT_EINVAL;
    if (n == 0)
        return CT_OK;
    n_threads = ct__pool_n_threads(pool);
    if (grain <= 0) {
        grain = n / ((int64_t)n_threads * 4);
        if (grain < 1)
            grain = 1;
    }
    n_chunks = n / grain + (n % grain != 0);
    if (n_chunks <= 1 || n_threads <= 1) {
        fn(arg, 0, n, 0);
        return CT_OK;
    }
    w = ct__pool_attach(pool);
    if (w == NULL) {
        fn(arg, 0, n, 0);
        return CT_OK;
    }
    k = (n_chunks < n_threads ? n_chunks : n_threads) - 1;
    if (k > LOCAL_HELPERS) {
        helpers = ct__malloc((size_t)k * sizeof(*helpers));
        if (helpers == NULL) { /* fewer helpers, same result */
            helpers = local;
            k = LOCAL_HELPERS;
        }
    }
    job.fn = fn;
    job.arg = arg;
    job.n = n;
    job.grain = grain;
    job.n_chunks = n_chunks;
    atomic_init(&job.next_chunk, 0);
    job.times = times;
    atomic_init(&job.helper_ns, 0);
    ct__latch_init(&job.helpers_left, k);
    for (i = 0; i < k; i++) {
        helpers[i].task.run_cb = pf_helper_run;
        helpers[i].task.next = NULL;
        helpers[i].job = &job;
        helpers[i].ith = (int)(i + 1);
    }
    /* Push the helpers in batches through a pointer array, with one notify
     * per batch (one batch unless k > LOCAL_HELPERS). */
    for (i = 0; i < k; i += LOCAL_HELPERS) {
        int64_t j, m = k - i < LOCAL_HELPERS ? k - i : LOCAL_HELPERS;
        for (j = 0; j < m; j++)
            tasks[j] = &helpers[i + j].task;
        ct__worker_push_n(w, tasks, (size_t)m);
    }
    pf_work(&job, 0);
    if (CT_UNLIKELY(times != NULL)) {
        uint64_t t0 = ct__profile_now();
        ct__pool_wait_latch(pool, &job.helpers_left);
        times->wait_ns += ct__profile_now() - t0;
        times->helper_ns +=
            atomic_load_explicit(&job.helper_ns, memory_order_relaxed);
    } else {
        ct__pool_wait_latch(pool, &job.helpers_left);
    }
    ct__pool_detach(w);
    if (helpers != local)
        ct__free(helpers);
    return CT_OK;
}
