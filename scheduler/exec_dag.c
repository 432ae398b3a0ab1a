/* cortado: the dag executor, serial stand-in.
 *
 * Design note. STAND-IN: this file runs the chains of a net one after the
 * other on the calling thread, in the topological order of the chain
 * graph that engine/graph.c computed (graph.chain_topo), and each chain's
 * ops in order. It exists so that every Caffe2 net type that maps to
 * CT_EXECUTOR_DAG ("dag", "async_scheduling", ...) runs correctly before
 * the scheduler lands; the next scheduler issue replaces it with the
 * parallel executor (chains as tasks on the engine's work-stealing pool,
 * join counters per chain, first-error-wins, caller participates), keeping
 * this file's interface (scheduler/executor.h) and its error behaviour:
 * the first failing op stops the run, chains not yet started are skipped,
 * and the caller gets `node <i> "<name>" (<Type>): <message>`.
 * A topological order of chains is a valid order of ops: every op edge
 * either stays inside a chain (ascending op order) or is a chain edge.
 * With the engine's verbose flag set, the first run of such a net prints
 * a one-time notice that it ran serially.
 */
#include "engine/engine_impl.h"
#include "engine/net_impl.h"
#include "engine/op_internal.h"
#include "scheduler/executor.h"

static int dag_serial_run(ct_net_t *net, void *state, ct_status_t *st)
{
    const struct ct__graph *g = &net->graph;
    ct_op_ctx_t ctx;
    int t, k, rc;

    (void)state;
    if (net->eng->cfg.verbose && g->n_chains > 1)
        ct__engine_notice_once(net->eng, CT_NOTICE_DAG_SERIAL,
                               "net %s: the dag executor runs chains "
                               "serially on the calling thread until the "
                               "pool executor lands (reported once)",
                               net->name);
    for (t = 0; t < g->n_chains; t++) {
        int c = g->chain_topo[t];
        for (k = g->chain_off[c]; k < g->chain_off[c + 1]; k++) {
            int i = g->chain_ops[k];
            ct__net_op_ctx(net, i, &ctx);
            rc = ct__op_run(&ctx);
            if (rc != CT_OK)
                return ct__net_fail_node(net, i, ctx.status, st);
        }
    }
    return CT_OK;
}

const struct ct__executor ct__exec_dag = {
    "dag",
    NULL,
    NULL,
    dag_serial_run,
};
