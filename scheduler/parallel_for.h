/* cortado internal: fork-join loops on the pool (intra-op parallelism).
 *
 * ct__parallel_for splits [0, n) into chunks of `grain` iterations and runs
 * fn on them with the calling thread helping: it claims chunks itself and
 * then waits on the pool, running other tasks, so it works from a worker
 * (an op inside a net: nested, never blocks a worker) and from any other
 * thread. The lead exposes it publicly as ct_parallel_for.
 *
 * Thread-safety: any thread; fn runs concurrently on several threads.
 */
#ifndef CT_SCHEDULER_PARALLEL_FOR_H
#define CT_SCHEDULER_PARALLEL_FOR_H

#include <stdint.h>

#include "cortado/error.h"

struct ct__pool;

/* Calls fn(arg, begin, end, ith) on disjoint ranges that together cover
 * [0, n) exactly once, and returns when every call has returned.
 *
 * - grain: iterations per chunk (every range but the last has exactly
 *   grain iterations, except in the serial case); <= 0 picks
 *   n / (4 * threads), at least 1.
 * - ith: index of the executing "lane", in [0, ct__pool_n_threads(pool));
 *   two calls running at the same time never share an ith, so ith can
 *   index per-thread scratch. The calling thread is lane 0.
 * - Serial case: when n fits in one chunk, when the pool has one thread,
 *   or when the caller cannot get a slot (every caller slot taken), fn is
 *   called once, inline, as fn(arg, 0, n, 0).
 * - n == 0 calls nothing.
 *
 * fn must not fail (it has no way to report an error; record errors in
 * arg and check them afterwards). Returns CT_OK, or CT_EINVAL when n < 0
 * or fn is NULL (fn is then never called). */
int ct__parallel_for(struct ct__pool *pool, int64_t n, int64_t grain,
                     void (*fn)(void *arg, int64_t begin, int64_t end, int ith),
                     void *arg);

/* Where the time of one call went, for run profiling (scheduler/profile.h):
 * helper_ns is the time other threads spent running chunks of it (useful
 * work beyond the caller's), wait_ns the time the caller spent waiting
 * for them after its own chunks (not work of this op; other tasks it ran
 * meanwhile are timed by their own profiling). */
struct ct__pf_times {
    uint64_t helper_ns;
    uint64_t wait_ns;
};

/* ct__parallel_for that also adds to *times (when times != NULL): two
 * clock reads per helper task and two for the caller's wait. */
int ct__parallel_for_timed(struct ct__pool *pool, int64_t n, int64_t grain,
                           void (*fn)(void *arg, int64_t begin, int64_t end,
                                      int ith),
                           void *arg, struct ct__pf_times *times);

#endif /* CT_SCHEDULER_PARALLEL_FOR_H */
