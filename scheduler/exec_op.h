/* cortado internal: running one op of a net, shared by the executors.
 *
 * ct__exec_op runs op i between the observers' op hooks (the contract in
 * observers/observer_impl.h) and, when the net is profiled, times the
 * kernel alone into net->profile->op_ns[i] and *kernel_ns. The caller
 * filled ctx (ct__net_op_ctx plus its own ith/nth/sched). Returns the
 * op's code, or the first observer error; node_status[i] explains it.
 */
#ifndef CT_SCHEDULER_EXEC_OP_H
#define CT_SCHEDULER_EXEC_OP_H

#include "engine/net_impl.h"
#include "engine/op_internal.h"
#include "observers/observer_impl.h"
#include "scheduler/profile.h"

static inline int ct__exec_op(ct_net_t *net, int i, ct_op_ctx_t *ctx,
                              uint64_t *kernel_ns)
{
    struct ct__profile *prof = net->profile;
    int rc = ct__obs_op_start(net, i, ctx->ith);

    if (rc == CT_OK) {
        if (CT_UNLIKELY(prof != NULL)) {
            uint64_t t0 = ct__profile_now();
            rc = ct__op_run(ctx);
            t0 = ct__profile_now() - t0;
            prof->op_ns[i] += t0;
            *kernel_ns += t0;
        } else {
            rc = ct__op_run(ctx);
        }
    }
    return ct__obs_op_end(net, i, ctx->ith, rc);
}

#endif /* CT_SCHEDULER_EXEC_OP_H */
