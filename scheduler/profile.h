/* cortado internal: per-net run profiling (scheduling overhead).
 *
 * When a net's profiling is on, its executor records, per run: tasks run,
 * the sum of ready->start latencies (from the moment a task was made
 * ready to the moment a participant started it), the time spent inside
 * kernels and the time spent in tasks outside kernels, per participant
 * slot; and the time of every op. ct_net_get_profile (engine/net.c side:
 * scheduler/profile.c) sums the slots and computes the critical path from
 * the mean op times over the dependency graph.
 *
 * Threading: slot s is written only by the thread holding pool slot s
 * during a run, op_ns[i] only by the thread running op i; one net runs
 * at most once at a time, and the run's end (the executor's latch)
 * orders every write before the caller reads or the next run writes.
 * Profiling costs four clock reads per task plus two per op, which is
 * why it is off by default.
 */
#ifndef CT_SCHEDULER_PROFILE_H
#define CT_SCHEDULER_PROFILE_H

#include <stdint.h>
#include <time.h>

#include "cortado/common.h"
#include "cortado/net.h"

struct ct__profile_slot {
    uint64_t n_tasks;
    uint64_t ready_ns;  /* sum of ready->start latencies */
    uint64_t task_ns;   /* time inside tasks (kernels included) */
    uint64_t kernel_ns; /* time inside kernels */
    /* ct_parallel_for inside kernels run from this slot: time other
     * threads helped, time this slot waited for them (parallel_for.h). */
    uint64_t intra_ns;
    uint64_t intra_wait_ns;
} __attribute__((aligned(CT_CACHE_LINE)));

struct ct__profile {
    int n_ops;
    int n_slots;                    /* grows with the pool's slots */
    struct ct__profile_slot *slots; /* n_slots, 64-byte aligned */
    size_t slots_bytes;
    uint64_t *op_ns; /* n_ops: time per op, summed */
    uint64_t runs;
    uint64_t wall_ns;
    int threads; /* participants of the last run */
};

static inline uint64_t ct__profile_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sums over slots, for the per-run deltas that go to the stat registry. */
struct ct__profile_totals {
    uint64_t n_tasks, ready_ns, task_ns, kernel_ns;
};
void ct__profile_totals(const struct ct__profile *p,
                        struct ct__profile_totals *out);

/* The engine registry's counters for nets (ct_net_new registers them):
 *   cortado/net/runs, cortado/net/failures   every run
 *   cortado/sched/tasks                       tasks run (chains, or ops
 *                                             under the simple executor)
 *   cortado/sched/ready_latency_ns, kernel_ns, overhead_ns
 *                                             only from profiled runs
 * Updates are per-thread-shard adds: no lock on the run path. */
int ct__net_stats_init(ct_net_t *net, ct_status_t *st);
/* Registers those counters once per engine (ct_engine_new). */
int ct__engine_stats_init(ct_engine_t *eng, ct_status_t *st);
void ct__net_stats_run(ct_net_t *net, int rc);
void ct__net_stats_profiled(ct_net_t *net,
                            const struct ct__profile_totals *before);

/* Threads that can run net's kernels in one run with `participants`
 * executor participants: the engine's pool size when ops may split their
 * work over it (intra_op not SERIAL), else participants. */
int ct__profile_threads(const ct_net_t *net, int participants);

/* Makes sure p has at least n_slots slots (zeroed). CT_ENOMEM. Called
 * by the caller before a run, never concurrently with one. */
int ct__profile_reserve(struct ct__profile *p, int n_slots);

#endif /* CT_SCHEDULER_PROFILE_H */
