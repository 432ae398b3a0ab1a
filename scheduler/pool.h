/* cortado internal: the work-stealing thread pool.
 *
 * Participants. A pool of n_threads runs n_threads - 1 worker threads; the
 * n-th participant is whoever waits: a thread calling ct__pool_wait (or
 * ct__parallel_for) executes tasks until its own job is done, so running a
 * net never costs a sleep/wake round trip between caller and workers.
 * Every participant owns a slot (struct ct__worker) with a Chase-Lev
 * deque: slots [0, n_workers) belong to the workers, slots [n_workers,
 * n_slots) are caller slots claimed for the duration of an attach/wait
 * (cfg.n_callers of them). A worker that waits inside a task (a nested
 * job: a subnet, a parallel_for) keeps executing tasks on its own slot, so
 * nested waits never block a thread and never deadlock, even with a single
 * participant.
 *
 * Tasks are intrusive: embed struct ct__task in your own struct. run_cb
 * may return a continuation (typically the one ready successor it would
 * otherwise push), which the same participant runs next without touching
 * its deque and without a notify: chains cost a call per task.
 *
 * Where tasks go. ct__worker_push puts a task on the running participant's
 * own deque (LIFO for it, FIFO for thieves). ct__pool_submit puts it on a
 * NUMA node's injection queue (mutex + intrusive FIFO list: no allocation,
 * never fails; off the hot path). A participant looks for work in this
 * order: its own deque, its node's injection queue, the last victim it
 * stole from (sticky), the other workers of its node from a random start,
 * the caller slots, then the other nodes (their injection queue, then
 * their workers).
 *
 * Idling. An idle worker first spins (cfg.spin_rounds rounds of "look for
 * work, PAUSE", then cfg.yield_rounds of "look, sched_yield") and then
 * parks on its node's EventCount; at most cfg.max_spinners idle workers
 * per node spin at once, the others park at once. Publishing work costs a
 * fence and two loads when somebody spins or nobody sleeps; otherwise it
 * wakes one sleeper (of its node, else of another node). A push onto a
 * deque that already holds tasks skips even that (the notify is only a
 * parallelism hint there). A spinner or sleeper that finds work and sees
 * more left behind wakes one more participant, so a burst fans out. An idle
 * pool uses no CPU once its spin budget (~0.1-0.3 ms) has run out.
 *
 * Waiting. ct__pool_wait(pool, done_cb, arg) runs tasks until done_cb(arg)
 * is true, spinning and then parking like a worker. Whoever makes the
 * condition true must then call ct__pool_wake_waiters(pool) (a fence and a
 * load when nobody parked); ct__latch_count_down does that for you.
 *
 * Shutdown (ct__pool_free) drains: no task is ever dropped. Every task
 * queued or pushed before or during the shutdown, including the tasks that
 * those tasks push, runs exactly once (on the workers, or on the freeing
 * thread when the pool has no workers) before the workers are joined. A
 * task that keeps resubmitting itself therefore keeps ct__pool_free from
 * returning. Executors that want to abandon work make their tasks check an
 * abort flag and return at once (STYLE §3).
 *
 * Thread-safety: every function may be called from any thread, except that
 * ct__worker_* functions must be called by the thread that holds w (inside
 * run_cb, or between attach and detach), and ct__pool_free must not race
 * with any other call on the pool (no thread may be inside wait/submit).
 */
#ifndef CT_SCHEDULER_POOL_H
#define CT_SCHEDULER_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/common.h"
#include "cortado/error.h"

struct ct__pool;
struct ct__worker;
struct ct__topology;
struct ct__task;

/* Runs `task` on participant w. May push tasks to w (ct__worker_push),
 * submit, wait (nested), or return a continuation to run next on w (or
 * NULL). The pool does not touch `task` after run_cb returns, so run_cb may
 * free or reuse it. */
typedef struct ct__task *(*ct__task_run_cb)(struct ct__task *task,
                                            struct ct__worker *w);

struct ct__task {
    ct__task_run_cb run_cb;
    struct ct__task *next; /* owned by the pool while the task is queued */
};

struct ct__pool_config {
    /* Participants: the pool starts n_threads - 1 workers and counts one
     * waiting caller as the n-th. >= 1; 1 means "callers only". */
    int n_threads;
    /* Caller slots: threads that can take part in ct__pool_wait at once
     * (besides workers). A caller finding none free waits passively. */
    int n_callers;
    /* Borrowed; must outlive the pool. NULL: one node, no pinning. */
    const struct ct__topology *topo;
    /* enum ct__layout_flag: CT__LAYOUT_NODE_CPUSET when ops use OpenMP. */
    unsigned layout_flags;
    /* Pin workers (when topo allows it). */
    bool bind;
    /* Idle spinning before parking (see the file note). */
    int spin_rounds;
    int yield_rounds;
    int max_spinners; /* per node; 0 = never spin */
    /* Initial ring size of every deque (grows by doubling). */
    int64_t deque_capacity;
    /* Prefix of the worker threads' names ("ct" gives "ct-w0", ...). */
    const char *name;
    /* Called (on the creating thread, during ct__pool_new) at most once
     * per pool, when binding is skipped for some workers. NULL: silent. */
    void (*notice_cb)(void *ctx, const char *msg);
    void *notice_ctx;
};

/* Per-participant counters (summed over slots when ith is -1). */
struct ct__pool_stats {
    uint64_t n_tasks;    /* tasks run, continuations included */
    uint64_t n_steals;   /* tasks stolen from another slot's deque */
    uint64_t n_injected; /* tasks taken from an injection queue */
    uint64_t n_parks;    /* times it went to sleep (counted on entry) */
    uint64_t ns_parked;  /* time spent asleep */
};

/* Counts down to zero; ct__pool_wait_latch waits for zero. Lives wherever
 * the job lives (often the waiter's stack). */
struct ct__latch {
    _Atomic int64_t count;
};

typedef bool (*ct__pool_done_cb)(void *arg);

/* ---- lifecycle ---- */

/* Defaults: n_threads = online CPUs, n_callers 8, bind, spin 64 rounds of
 * PAUSE then 256 sched_yield, 1 spinner per node, deques of 256. */
void ct__pool_config_init(struct ct__pool_config *cfg);
/* Creates a pool and starts its workers. On success *out is owned by the
 * caller (ct__pool_free). Errors: CT_EINVAL (a config field out of range,
 * named in st), CT_ENOMEM (memory or threads); nothing leaks then. */
int ct__pool_new(const struct ct__pool_config *cfg, struct ct__pool **out,
                 ct_status_t *st);
/* Drains (see the file note), joins every worker and frees. NULL allowed.
 * Must not be called by a participant of this pool. */
void ct__pool_free(struct ct__pool *pool);

/* ---- queries ---- */

int ct__pool_n_threads(const struct ct__pool *pool); /* cfg.n_threads */
int ct__pool_n_workers(const struct ct__pool *pool); /* n_threads - 1 */
int ct__pool_n_slots(const struct ct__pool *pool);   /* workers + callers */
int ct__pool_n_nodes(const struct ct__pool *pool);
/* Workers that were really pinned (binding skipped or failed otherwise).
 * Each worker binds itself when it starts, so this may lag briefly after
 * ct__pool_new. */
int ct__pool_n_pinned(const struct ct__pool *pool);
/* The calling thread's slot in `pool` (a worker, or an attached caller),
 * or NULL when it has none. */
struct ct__worker *ct__pool_current(const struct ct__pool *pool);
/* Counters of slot ith, or summed over all slots when ith is -1. Values
 * are a racy snapshot while the pool runs. */
void ct__pool_get_stats(const struct ct__pool *pool, int ith,
                        struct ct__pool_stats *out);

/* ---- submission and waiting ---- */

/* Appends t to node's injection queue (node -1: the pool's home node, the
 * node of worker 0) and wakes a participant if none is awake to see it.
 * Any thread; never fails. */
void ct__pool_submit(struct ct__pool *pool, int node, struct ct__task *t);
/* Same for n tasks, one lock and one notify. */
void ct__pool_submit_n(struct ct__pool *pool, int node,
                       struct ct__task *const *tasks, size_t n);

/* Gives the calling thread a slot: its current slot when it already has one
 * in this pool (nested; counted), else a free caller slot. NULL when every
 * caller slot is taken. Pair with ct__pool_detach. Use it to push the
 * first tasks of a job onto the caller's own deque before waiting. */
struct ct__worker *ct__pool_attach(struct ct__pool *pool);
/* Undoes one attach. On the last one, tasks left on a caller slot's deque
 * move to its node's injection queue and the slot is released. NULL
 * allowed. */
void ct__pool_detach(struct ct__worker *w);

/* Executes tasks until done_cb(arg) returns true (checked between tasks
 * and before sleeping; it must be cheap and thread-safe, and read the
 * job's state with acquire ordering). From a worker or attached thread it
 * runs on that slot (nested); otherwise it attaches for the duration, or
 * waits passively when no caller slot is free. */
void ct__pool_wait(struct ct__pool *pool, ct__pool_done_cb done_cb, void *arg);
/* Wakes parked waiters so they re-check their condition. Call it after
 * making a done condition true. A fence and a load when none is parked. */
void ct__pool_wake_waiters(struct ct__pool *pool);

/* ---- the calling participant (call only from the thread holding w) ---- */

/* Pushes t onto w's deque and wakes a participant if nobody is awake to
 * steal it. Falls back to the node's injection queue if the deque cannot
 * grow. Never fails. */
void ct__worker_push(struct ct__worker *w, struct ct__task *t);
/* Pushes n tasks with a single notify. */
void ct__worker_push_n(struct ct__worker *w, struct ct__task *const *tasks,
                       size_t n);
/* Slot index in [0, ct__pool_n_slots): workers first, then caller slots. */
int ct__worker_ith(const struct ct__worker *w);
/* NUMA node of the slot (caller slots: the home node). */
int ct__worker_node(const struct ct__worker *w);
struct ct__pool *ct__worker_pool(const struct ct__worker *w);

/* ---- latch ---- */

static inline void ct__latch_init(struct ct__latch *l, int64_t count)
{
    atomic_init(&l->count, count);
}

/* True once the count reached zero. acquire: everything the counters did
 * before counting down is visible to the caller afterwards. */
static inline bool ct__latch_is_done(const struct ct__latch *l)
{
    return atomic_load_explicit((_Atomic int64_t *)&l->count,
                                memory_order_acquire) == 0;
}

/* Subtracts n; the call that reaches zero wakes the pool's parked waiters
 * and returns true. After it, the latch may already be gone (the waiter
 * returns): the function touches only `pool` then. */
bool ct__latch_count_down(struct ct__pool *pool, struct ct__latch *l,
                          int64_t n);
/* ct__pool_wait until the latch reaches zero. */
void ct__pool_wait_latch(struct ct__pool *pool, struct ct__latch *l);

#endif /* CT_SCHEDULER_POOL_H */
