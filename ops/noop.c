/* NoOp: does nothing (a cortado operator; Caffe2 expresses pure ordering
 * with control_input instead).
 *
 * Any number of inputs and outputs, every dtype. One optional argument,
 * `busy_ns` (int, default 0): when positive the op spins for that many
 * nanoseconds of wall time (a busy loop reading CLOCK_MONOTONIC), which
 * gives the scheduler benchmark tasks of a known size; it must be in
 * [0, 10^10]. Inputs and
 * outputs are only names: the op reads and writes no data, so its inputs
 * may be empty blobs, and its outputs are left as they are (created empty
 * by the net, as every output is). Its use is to build dependency
 * structure without work: ordering points, scheduler tests and the
 * scheduling-overhead benchmark (perf/bench_sched.c), where the measured
 * time is then the executor's alone. In-place pairs are all allowed, since
 * nothing is written. No gradient.
 */
#include <time.h>

#include "ops/op_impl.h"

struct noop_state {
    int64_t busy_ns;
};

static const struct ct_arg_spec noop_args[] = {
    {"busy_ns", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

static int noop_init(ct_op_t *op, ct_status_t *st)
{
    struct noop_state *s = op->state;
    int rc = ct__arg_int(op, "busy_ns", 0, &s->busy_ns, st);

    if (rc != CT_OK)
        return rc;
    if (s->busy_ns < 0 || s->busy_ns > 10000000000LL)
        return ct_status_setf(st, CT_EARG,
                              "busy_ns %lld outside [0, 10000000000]",
                              (long long)s->busy_ns);
    return CT_OK;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int noop_run(ct_op_ctx_t *ctx)
{
    const struct noop_state *s = ctx->op->state;

    if (s->busy_ns > 0) {
        int64_t end = now_ns() + s->busy_ns;
        while (now_ns() < end)
            ;
    }
    return CT_OK;
}

static double noop_cost(const ct_op_t *op, const ct_shape_t *in)
{
    (void)op;
    (void)in;
    return 0.0;
}

const struct ct_op_schema ct__op_noop = {
    .name = "NoOp",
    .min_inputs = 0,
    .max_inputs = CT_INF,
    .min_outputs = 0,
    .max_outputs = CT_INF,
    .inplace_cb = ct__inplace_any,
    .args = noop_args,
    .state_size = sizeof(struct noop_state),
    .init_cb = noop_init,
    .run_cb = noop_run,
    .cost_cb = noop_cost,
    .doc = "does nothing; for ordering and scheduler measurements",
};
