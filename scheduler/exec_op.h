/* cortado internal: running one op of a net, shared by the executors.
 *
 * ct__exec_op runs op i between the observers' op hooks (the contract in
 * observers/observer_impl.h) and, when the net is profiled, times the
 * kernel alone into net->profile->op_ns[i] and *kernel_ns, and the
 * kernel's ct_parallel_for help and wait times into the profile slot
 * ctx->ith (the caller's slot, reserved before the run). The caller
 * filled ctx (ct__net_op_ctx plus its own ith/nth/sched). Returns the
 * op's code, or the first observer error; node_status[i] explains it.
 */
#ifndef CT_SCHEDULER_EXEC_OP_H
#define CT_SCHEDULER_EXEC_OP_H

#include "engine/net_impl.h"
#include "engine/op_internal.h"
#include "observers/observer_impl.h"
#include "scheduler/parallel_for.h"
#include "scheduler/profile.h"

static inline int ct__exec_op(ct_net_t *net, int i, ct_op_ctx_t *ctx,
                              uint64_t *kernel_ns)
{
    struct ct__profile *prof = net->profile;
    int rc = ct__obs_op_start(net, i, ctx->ith);

    if (rc == CT_OK) {
        if (CT_UNLIKELY(prof != NULL)) {
            struct ct__pf_times pf = {0, 0};
            struct ct__profile_slot *sl = &prof->slots[ctx->ith];
            uint64_t t0;

            ctx->pf_times = &pf;
            t0 = ct__profile_now();
            rc = ct__op_run(ctx);
            t0 = ct__profile_now() - t0;
            ctx->pf_times = NULL;
            prof->op_ns[i] += t0;
            *kernel_ns += t0;
            sl->intra_ns += pf.helper_ns;
            sl->intra_wait_ns += pf.wait_ns;
        } else {
            rc = ct__op_run(ctx);
        }
    }
    return ct__obs_op_end(net, i, ctx->ith, rc);
}

#endif /* CT_SCHEDULER_EXEC_OP_H */
