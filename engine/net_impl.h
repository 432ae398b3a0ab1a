/* cortado internal: the compiled net, as executors see it.
 *
 * A net is immutable after ct_net_new except for three run-time parts:
 * the `running` flag (one run at a time), the per-node status slots (slot
 * i is written only by whoever runs op i, during a run) and whatever the
 * executor keeps in exec_state. Executors read the ops, the graph and the
 * chains without locks.
 */
#ifndef CT_ENGINE_NET_IMPL_H
#define CT_ENGINE_NET_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "cortado/net.h"
#include "engine/graph.h"
#include "ops/op_impl.h"
#include "proto/caffe2.pb-c.h"

struct ct__executor;
struct ct__obs_set;
struct ct__profile;

struct ct_net_s {
    ct_engine_t *eng;
    ct_workspace_t *ws;
    Caffe2__NetDef *def; /* owned deep copy; ops borrow their defs */
    const char *name;    /* def->name, or "" */
    enum ct_executor executor;
    const struct ct__executor *exec;
    void *exec_state; /* made by exec->prepare_cb, owned by the executor */
    int num_workers;  /* resolved, >= 1 */
    int n_ops;
    ct_op_t **ops; /* n_ops, owned */
    struct ct__graph graph;
    /* n_ops slots. Slot i is written only by the thread running op i,
     * and read by the executor after that op returned (the executor's
     * own completion ordering publishes it). */
    ct_status_t *node_status;
    /* atomic: acquire on the CAS that starts a run, release on the store
     * that ends it, so a run sees every blob write of the run before.
     * Attaching or removing an observer claims it the same way. */
    atomic_bool running;
    /* Unique on the engine, 1, 2, ... in creation order (observers' %i). */
    uint64_t id;
    /* Attached observers (observers/observer_impl.h), NULL when none: the
     * executors' hooks test it inline. Changed only while `running` is
     * claimed, so it is stable during a run. */
    struct ct__obs_set *obs;
    /* Run profiling (scheduler/profile.h), NULL when off. Changed only
     * while `running` is claimed. */
    struct ct__profile *profile;
    /* Handles of the engine registry's cortado/net and cortado/sched
     * counters (scheduler/profile.c). */
    uint32_t stat_runs, stat_failures, stat_tasks, stat_ready_ns,
        stat_kernel_ns, stat_overhead_ns;
};

/* Frees net->profile (scheduler/profile.c); ct_net_free calls it. */
void ct__net_profile_free(ct_net_t *net);

/* Fills ctx to run node i on the calling thread: ith 0, nth 1, the op's
 * NUMA node, node i's status slot, no scheduler handle. */
void ct__net_op_ctx(ct_net_t *net, int i, ct_op_ctx_t *ctx);

/* Turns the failure of node i (its status slot node_st) into the run's
 * status: `node <i> "<name>" (<Type>): <message>`, st->node = i, st->op =
 * the type, the code of node_st (CT_EINTERNAL if it holds none). st may
 * be NULL. Returns the code. Never allocates. */
int ct__net_fail_node(const ct_net_t *net, int i, const ct_status_t *node_st,
                      ct_status_t *st);

#endif /* CT_ENGINE_NET_IMPL_H */
