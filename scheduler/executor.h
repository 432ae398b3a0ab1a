/* cortado internal: the executor interface nets dispatch to.
 *
 * One struct per enum ct_executor value. ct_net_new calls prepare_cb once
 * after the net is compiled (ops created, graph and chains built) and
 * ct_net_free calls release_cb; run_cb runs the net once. The net
 * guarantees that run_cb is never called concurrently for one net (its
 * `running` flag), that release_cb never races a run, and that every op
 * is bound. run_cb returns 0 or the first failing node's code, with st
 * filled through ct__net_fail_node (engine/net_impl.h); ops not started
 * when a failure is seen are skipped.
 * Executors today: simple (exec_simple.c, ops in order on the calling
 * thread) and dag (exec_dag.c, chains in a topological order; serial on
 * the calling thread until the pool executor replaces it).
 */
#ifndef CT_SCHEDULER_EXECUTOR_H
#define CT_SCHEDULER_EXECUTOR_H

#include "cortado/error.h"
#include "cortado/net.h"

struct ct__executor {
    const char *name;
    /* Builds per-net executor state into *state (may stay NULL). Errors:
     * CT_ENOMEM and whatever the executor checks. May be NULL. */
    int (*prepare_cb)(ct_net_t *net, void **state, ct_status_t *st);
    /* Frees what prepare_cb made. May be NULL. */
    void (*release_cb)(ct_net_t *net, void *state);
    /* One run of net; see above. */
    int (*run_cb)(ct_net_t *net, void *state, ct_status_t *st);
};

extern const struct ct__executor ct__exec_simple;
extern const struct ct__executor ct__exec_dag;

#endif /* CT_SCHEDULER_EXECUTOR_H */
