/* cortado: the simple executor (Caffe2's SimpleNet, spec §6.2).
 *
 * Ops run in net order on the calling thread, each with a serial context
 * (ith 0, nth 1) and its own status slot, between the observers' op start
 * and op end hooks (observers/observer_impl.h). The first failure (of a
 * kernel or an observer) stops the run: later ops are not started, and
 * the caller gets `node <i> "<name>" (<Type>): <message>`. There is no
 * per-net state and nothing is allocated per run.
 */
#include "engine/net_impl.h"
#include "engine/op_internal.h"
#include "observers/observer_impl.h"
#include "scheduler/executor.h"
#include "scheduler/profile.h"

/* The same loop with every op timed into net->profile (slot 0): one
 * task per op, ready as soon as the previous one finished. */
static int simple_run_profiled(ct_net_t *net, ct_status_t *st)
{
    struct ct__profile *prof = net->profile;
    struct ct__profile_slot *sl = &prof->slots[0];
    ct_op_ctx_t ctx;
    int i, rc;

    prof->threads = 1;
    for (i = 0; i < net->n_ops; i++) {
        uint64_t t0 = ct__profile_now(), k0, k1;
        ct__net_op_ctx(net, i, &ctx);
        rc = ct__obs_op_start(net, i, ctx.ith);
        k0 = ct__profile_now();
        if (rc == CT_OK)
            rc = ct__op_run(&ctx);
        k1 = ct__profile_now();
        rc = ct__obs_op_end(net, i, ctx.ith, rc);
        prof->op_ns[i] += k1 - k0;
        sl->n_tasks++;
        sl->kernel_ns += k1 - k0;
        sl->task_ns += ct__profile_now() - t0;
        if (rc != CT_OK)
            return ct__net_fail_node(net, i, ctx.status, st);
    }
    return CT_OK;
}

static int simple_run(ct_net_t *net, void *state, ct_status_t *st)
{
    ct_op_ctx_t ctx;
    int i, rc;

    (void)state;
    if (CT_UNLIKELY(net->profile != NULL))
        return simple_run_profiled(net, st);
    for (i = 0; i < net->n_ops; i++) {
        ct__net_op_ctx(net, i, &ctx);
        rc = ct__obs_op_start(net, i, ctx.ith);
        if (rc == CT_OK)
            rc = ct__op_run(&ctx);
        rc = ct__obs_op_end(net, i, ctx.ith, rc);
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
