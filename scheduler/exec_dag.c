/* cortado: the dag executor (Caffe2's async_scheduling / dag nets).
 *
 * Design note. A compiled net's chains (engine/graph.c: linear runs of
 * ops fused at compile time, spec §6.4) are the tasks; the chain graph
 * (unpruned op edges) gives their dependencies. Per net, prepare_cb builds
 * one cache-line aligned record per chain holding its intrusive pool task,
 * its parent count and its join counter; nothing is allocated per run.
 *
 * A run:
 *   1. The caller attaches to the engine's pool (scheduler/pool.h), pushes
 *      the root chains onto its own deque and waits on a latch counting
 *      the sink chains, executing tasks itself meanwhile (the caller
 *      participates: no sleep/wake round trip per run). A net with a
 *      single chain, or with num_workers 1, runs inline on the caller.
 *   2. A chain task runs its ops in order, each between the observers'
 *      op hooks, with ctx.ith = the participant's slot and ctx.sched = the
 *      pool (ops use it for ct_parallel_for).
 *   3. When a chain finishes it releases its children: a child with one
 *      parent is ready at once (no atomic); otherwise the child's join
 *      counter is decremented (acq_rel) and the decrement that reaches
 *      zero makes it ready and re-arms the counter to its parent count
 *      for the next run (so there is no O(V) reset per run). Of the ready
 *      children the last one is returned as the continuation, which the
 *      same participant runs next without touching its deque (locality,
 *      and a chain of chains costs a call per task); the others are
 *      pushed with one notify. A child whose ops are placed on another
 *      NUMA node (DeviceOption.numa_node_id) goes to that node's
 *      injection queue instead.
 *   4. A sink chain counts the latch down; the caller returns when it
 *      reaches zero.
 *
 * Errors: the first failing op wins a CAS on failed_node and sets abort;
 * chains that start later skip their ops but still release their
 * children, so the latch always completes; ops already running finish.
 * The caller gets `node <i> "<name>" (<Type>): <message>` from that op's
 * status slot.
 *
 * Memory ordering. Everything an op wrote is visible to its successors:
 * a continuation runs on the same thread; a pushed or stolen task is
 * published by the deque's release/acquire; a join counter's acq_rel
 * decrements order every parent's writes before the last decrement. The
 * re-arming store of a join counter is relaxed: no other thread touches
 * that counter again in this run, and it happens-before the run's end
 * (the releasing thread goes on to release descendants, every path ends
 * at a sink's latch count-down, release, which the caller acquires), and
 * so before the next run's first decrement.
 *
 * Several nets may run at once on one engine: their tasks share the pool
 * but nothing else. A net runs at most once at a time (ct_net_run's
 * running flag), so the per-net run state needs no more protection.
 */
#include <stdatomic.h>
#include <string.h>

#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/net_impl.h"
#include "engine/op_internal.h"
#include "scheduler/exec_op.h"
#include "scheduler/executor.h"
#include "scheduler/pool.h"
#include "scheduler/profile.h"
#include "scheduler/sched.h"

struct dag_state;

/* One per chain, alone on its cache line(s): workers on different cores
 * decrement different chains' counters without false sharing. */
struct dag_chain {
    struct ct__task task; /* first member: the task is the chain */
    struct dag_state *ds;
    int chain;
    int n_parents; /* chain parents (unpruned), immutable */
    int numa_node; /* placement of the chain's first op, -1 none */
    /* When profiling: when the chain was made ready in this run. Written
     * by whoever makes it ready, before publishing it. */
    uint64_t ready_ns;
    /* Join counter: parents not yet finished in this run. atomic: acq_rel
     * decrements (see the design note); re-armed by the last one. */
    _Atomic int pending;
} __attribute__((aligned(CT_CACHE_LINE)));

struct dag_state {
    ct_net_t *net;
    struct dag_chain *chains; /* n_chains, 64-byte aligned block */
    size_t chains_bytes;
    struct ct__task **roots; /* n_roots */
    int n_roots;
    int n_sinks;
    /* Per run. Written by the caller before the roots are published and
     * read by tasks after (the publication orders them). */
    struct ct__pool *pool;
    int nth;
    /* Sink chains still to finish; the caller waits for zero. */
    struct ct__latch sinks_left;
    /* First failing op, -1 when none. atomic: the CAS that wins is the
     * only writer; the caller reads it after the latch's acquire. */
    _Atomic int failed_node;
    /* Set by the first failure; relaxed: only a hint to skip work early,
     * correctness does not depend on seeing it promptly. */
    _Atomic bool abort;
};

/* Runs the ops of chain c on participant w (slot ith, NUMA node). With
 * profiling on, `kernel_ns` receives the time spent in kernels. */
static void run_chain_ops(struct dag_state *ds, int c, int ith, int node,
                          uint64_t *kernel_ns)
{
    ct_net_t *net = ds->net;
    const struct ct__graph *g = &net->graph;
    ct_op_ctx_t ctx;
    int k, i, rc, expected;

    for (k = g->chain_off[c]; k < g->chain_off[c + 1]; k++) {
        if (atomic_load_explicit(&ds->abort, memory_order_relaxed))
            return;
        i = g->chain_ops[k];
        ct__net_op_ctx(net, i, &ctx);
        ctx.ith = ith;
        ctx.nth = ds->nth;
        ctx.numa_node = node;
        ctx.sched = ds->pool;
        rc = ct__exec_op(net, i, &ctx, kernel_ns);
        if (rc != CT_OK) {
            expected = -1;
            /* acq_rel is not needed: the caller reads failed_node and the
             * node's status slot after the latch (acquire), which every
             * write of this thread happens-before. */
            atomic_compare_exchange_strong_explicit(&ds->failed_node, &expected,
                                                    i, memory_order_relaxed,
                                                    memory_order_relaxed);
            atomic_store_explicit(&ds->abort, true, memory_order_relaxed);
            return;
        }
    }
}

/* Lifetime rule: once the last ready child is published, the run may
 * complete on other threads and the caller may free the net, so after
 * that point this function touches only its locals and the pool (which
 * outlives every net). It therefore holds one ready child back (`hold`)
 * until the end: while a ready child is unpublished the run cannot end,
 * because every chain has a path to a sink. */
static struct ct__task *chain_task_run(struct ct__task *t, struct ct__worker *w)
{
    struct dag_chain *ch = (struct dag_chain *)t;
    struct dag_state *ds = ch->ds;
    struct ct__pool *pool = ds->pool;
    const struct ct__graph *g = &ds->net->graph;
    struct ct__task *batch[16];
    struct ct__task *hold = NULL;
    int n_batch = 0, hold_node = -1, k;
    int node = ct__worker_node(w), n_nodes = ct__pool_n_nodes(pool);
    int first = g->chain_child_off[ch->chain];
    int last = g->chain_child_off[ch->chain + 1];
    int ith = ct__worker_ith(w);
    struct ct__profile *prof = ds->net->profile;
    uint64_t t_start = 0, t_end = 0, kernel_ns = 0;

    if (CT_UNLIKELY(prof != NULL))
        t_start = ct__profile_now();
    run_chain_ops(ds, ch->chain, ith, node, &kernel_ns);
    if (CT_UNLIKELY(prof != NULL)) {
        /* Slot ith is this thread's for the run (see profile.h); the
         * task's own time is counted up to here, before its children
         * are published (after that the net may be gone). */
        struct ct__profile_slot *sl = &prof->slots[ith];
        t_end = ct__profile_now();
        sl->n_tasks++;
        sl->ready_ns += t_start - ch->ready_ns;
        sl->task_ns += t_end - t_start;
        sl->kernel_ns += kernel_ns;
    }

    if (first == last) {
        /* A sink: counting down is the last thing this task does. */
        ct__latch_count_down(pool, &ds->sinks_left, 1);
        return NULL;
    }
    for (k = first; k < last; k++) {
        struct dag_chain *d = &ds->chains[g->chain_children[k]];
        int d_node = d->numa_node;
        if (d->n_parents > 1) {
            if (atomic_fetch_sub_explicit(&d->pending, 1,
                                          memory_order_acq_rel) != 1)
                continue;
            /* Last parent: re-arm for the next run (see the note). */
            atomic_store_explicit(&d->pending, d->n_parents,
                                  memory_order_relaxed);
        }
        if (CT_UNLIKELY(prof != NULL))
            d->ready_ns = t_end; /* only the thread making d ready */
        if (d_node >= n_nodes || d_node == node)
            d_node = -1; /* runs here: no placement to honour */
        if (hold == NULL) {
            hold = &d->task;
            hold_node = d_node;
        } else if (d_node >= 0) {
            ct__pool_submit(pool, d_node, &d->task);
        } else {
            batch[n_batch++] = &d->task;
            if (n_batch == (int)(sizeof(batch) / sizeof(batch[0]))) {
                ct__worker_push_n(w, batch, (size_t)n_batch);
                n_batch = 0;
            }
        }
    }
    /* From here on: locals and the pool only. */
    if (n_batch > 0)
        ct__worker_push_n(w, batch, (size_t)n_batch);
    if (hold != NULL && hold_node >= 0) {
        ct__pool_submit(pool, hold_node, hold);
        return NULL;
    }
    /* The continuation runs next on this participant (locality). */
    return hold;
}

static int dag_prepare(ct_net_t *net, void **state, ct_status_t *st)
{
    const struct ct__graph *g = &net->graph;
    struct dag_state *ds;
    size_t bytes;
    int c, r = 0;

    *state = NULL;
    ds = ct__calloc(1, sizeof(*ds));
    if (ds == NULL)
        goto fail_state;
    ds->net = net;
    bytes = (size_t)g->n_chains * sizeof(struct dag_chain);
    if (g->n_chains > 0) {
        ds->chains = ct__aligned_alloc(bytes);
        if (ds->chains == NULL)
            goto fail_chains;
        memset(ds->chains, 0, bytes);
        ds->chains_bytes = bytes;
    }
    for (c = 0; c < g->n_chains; c++) {
        struct dag_chain *ch = &ds->chains[c];
        ch->task.run_cb = chain_task_run;
        ch->ds = ds;
        ch->chain = c;
        ch->n_parents = g->chain_parent_off[c + 1] - g->chain_parent_off[c];
        ch->numa_node = net->ops[g->chain_ops[g->chain_off[c]]]->numa_node;
        atomic_init(&ch->pending, ch->n_parents);
        ds->n_roots += ch->n_parents == 0;
        ds->n_sinks += g->chain_child_off[c + 1] == g->chain_child_off[c];
    }
    if (ds->n_roots > 0) {
        ds->roots = ct__calloc((size_t)ds->n_roots, sizeof(*ds->roots));
        if (ds->roots == NULL)
            goto fail_roots;
    }
    for (c = 0; c < g->n_chains; c++)
        if (ds->chains[c].n_parents == 0)
            ds->roots[r++] = &ds->chains[c].task;
    atomic_init(&ds->failed_node, -1);
    atomic_init(&ds->abort, false);
    *state = ds;
    return CT_OK;

fail_roots:
    ct__aligned_free(ds->chains, ds->chains_bytes);
fail_chains:
    ct__free(ds);
fail_state:
    return ct_status_setf(
        st, CT_ENOMEM, "net %s: out of memory for the dag executor", net->name);
}

static void dag_release(ct_net_t *net, void *state)
{
    struct dag_state *ds = state;

    (void)net;
    if (ds == NULL)
        return;
    ct__free(ds->roots);
    ct__aligned_free(ds->chains, ds->chains_bytes);
    ct__free(ds);
}

/* Chains in topological order on the calling thread: for one-chain nets
 * and num_workers 1, where handing work to other threads costs more than
 * it can save (scheduler-anchors: a wake costs ~18 us here). */
static int dag_run_inline(ct_net_t *net, ct_status_t *st)
{
    const struct ct__graph *g = &net->graph;
    struct ct__profile *prof = net->profile;
    ct_op_ctx_t ctx;
    int t, k, i, rc;
    uint64_t t0 = 0, kernel_ns = 0;

    if (CT_UNLIKELY(prof != NULL)) {
        prof->threads = ct__profile_threads(net, 1);
        t0 = ct__profile_now();
    }
    for (t = 0; t < g->n_chains; t++) {
        int c = g->chain_topo[t];
        for (k = g->chain_off[c]; k < g->chain_off[c + 1]; k++) {
            i = g->chain_ops[k];
            ct__net_op_ctx(net, i, &ctx);
            rc = ct__exec_op(net, i, &ctx, &kernel_ns);
            if (rc != CT_OK)
                return ct__net_fail_node(net, i, ctx.status, st);
        }
    }
    if (CT_UNLIKELY(prof != NULL)) {
        /* One task: the whole net, ready at once. */
        prof->slots[0].n_tasks++;
        prof->slots[0].task_ns += ct__profile_now() - t0;
        prof->slots[0].kernel_ns += kernel_ns;
    }
    return CT_OK;
}

static int dag_run(ct_net_t *net, void *state, ct_status_t *st)
{
    struct dag_state *ds = state;
    struct ct__pool *pool;
    struct ct__worker *w;
    int rc, failed, k;

    if (net->graph.n_chains == 0)
        return CT_OK;
    if (net->graph.n_chains == 1 || net->num_workers <= 1)
        return dag_run_inline(net, st);
    rc = ct__engine_pool(net->eng, &pool, st);
    if (rc != CT_OK)
        return rc;
    if (ct__pool_n_threads(pool) <= 1)
        return dag_run_inline(net, st);

    ds->pool = pool;
    ds->nth = ct__pool_n_slots(pool);
    if (CT_UNLIKELY(net->profile != NULL)) {
        rc = ct__profile_reserve(net->profile, ds->nth);
        if (rc != CT_OK)
            return ct_status_setf(st, rc, "net %s: out of memory for profiling",
                                  net->name);
        net->profile->threads = ct__pool_n_threads(pool);
        for (k = 0; k < ds->n_roots; k++)
            ((struct dag_chain *)ds->roots[k])->ready_ns = ct__profile_now();
    }
    ct__latch_init(&ds->sinks_left, ds->n_sinks);
    atomic_store_explicit(&ds->failed_node, -1, memory_order_relaxed);
    atomic_store_explicit(&ds->abort, false, memory_order_relaxed);

    /* The pushes below publish the run state above (release) to whoever
     * takes a root task. */
    w = ct__pool_attach(pool);
    if (w != NULL) {
        ct__worker_push_n(w, ds->roots, (size_t)ds->n_roots);
        ct__pool_wait_latch(pool, &ds->sinks_left);
        ct__pool_detach(w);
    } else {
        /* Every caller slot is busy (many threads running nets at once):
         * hand the roots to the pool and wait passively. */
        ct__pool_submit_n(pool, -1, ds->roots, (size_t)ds->n_roots);
        ct__pool_wait_latch(pool, &ds->sinks_left);
    }

    failed = atomic_load_explicit(&ds->failed_node, memory_order_relaxed);
    if (failed >= 0)
        return ct__net_fail_node(net, failed, &net->node_status[failed], st);
    return CT_OK;
}

const struct ct__executor ct__exec_dag = {
    "dag",
    dag_prepare,
    dag_release,
    dag_run,
};
