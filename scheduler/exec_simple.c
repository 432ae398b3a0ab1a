/* cortado: the simple executor (Caffe2's SimpleNet, spec §6.2).
 *
 * Ops run in net order on the calling thread, each with a serial context
 * (ith 0, nth 1) and its own status slot. The first failure stops the
 * run: later ops are not started, and the caller gets
 * `node <i> "<name>" (<Type>): <message>`. There is no per-net state and
 * nothing is allocated per run.
 */
#include "engine/net_impl.h"
#include "engine/op_internal.h"
#include "scheduler/executor.h"

static int simple_run(ct_net_t *net, void *state, ct_status_t *st)
{
    ct_op_ctx_t ctx;
    int i, rc;

    (void)state;
    for (i = 0; i < net->n_ops; i++) {
        ct__net_op_ctx(net, i, &ctx);
        rc = ct__op_run(&ctx);
        if (rc != CT_OK)
            return ct__net_fail_node(net, i, ctx.status, st);
    }
    return CT_OK;
}

const struct ct__executor ct__exec_simple = {
    "simple",
    NULL,
    NULL,
    simple_run,
};
