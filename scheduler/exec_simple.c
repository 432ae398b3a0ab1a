/* cortado: the simple executor (Caffe2's SimpleNet, spec §6.2).
 *
 * Ops run in net order on the calling thread, each with a serial context
 * (ith 0, nth 1) and its own status slot, between the observers' op start
 * and op end hooks (observers/observer_impl.h). The first failure (of a
 * kernel or an observer) stops the run: later ops are not started, and
 * the caller gets `node <i> "<name>" (<Type>): <message>`. There is no
 * per-net state and nothing is allocated per run.
 */
#include "scheduler/exec_op.h"
#include "scheduler/executor.h"

static int simple_run(ct_net_t *net, void *state, ct_status_t *st)
{
    struct ct__profile *prof = net->profile;
    ct_op_ctx_t ctx;
    uint64_t t0 = 0, kernel_ns = 0;
    int i, rc;

    (void)state;
    if (CT_UNLIKELY(prof != NULL))
        prof->threads = ct__profile_threads(net, 1);
    for (i = 0; i < net->n_ops; i++) {
        if (CT_UNLIKELY(prof != NULL))
            t0 = ct__profile_now();
        ct__net_op_ctx(net, i, &ctx);
        rc = ct__exec_op(net, i, &ctx, &kernel_ns);
        if (CT_UNLIKELY(prof != NULL)) {
            /* One task per op (slot 0), ready when the previous ended. */
            struct ct__profile_slot *sl = &prof->slots[0];
            sl->n_tasks++;
            sl->kernel_ns += kernel_ns;
            sl->task_ns += ct__profile_now() - t0;
            kernel_ns = 0;
        }
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
