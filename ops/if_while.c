/* If and While (Caffe2's if_op / while_op, spec §3.5).
 *
 * If: input 0 is the condition, then anything; outputs anything (in-place
 * allowed). Arguments `then_net` (required) and `else_net`. While:
 * `loop_net` (required) and `cond_net`. The subnets are compiled at op
 * creation in the op's own workspace and owned by the op (Caffe2 builds
 * them with the free CreateNet, not in the workspace net map).
 *
 * The condition must be a tensor with one element. Caffe2 reads it as
 * bool and requires a BOOL tensor; cortado also accepts any numeric dtype
 * (non-zero is true), a documented difference that lets a condition be
 * computed with arithmetic ops. While re-reads the condition blob before
 * each iteration, so cond_net may update it in place or replace it.
 * Neither op uses a WorkspaceStack; wrap a branch in a Do for a scope.
 */
#include <string.h>

#include "cortado/net.h"
#include "ops/op_impl.h"

struct ctl_state {
    ct_net_t *first;  /* then_net / loop_net */
    ct_net_t *second; /* else_net / cond_net, or NULL */
};

static const struct ct_arg_spec if_args[] = {
    {"then_net", CT_ARG_NET, false},
    {"else_net", CT_ARG_NET, false},
    {NULL, CT_ARG_ANY, false},
};

static const struct ct_arg_spec while_args[] = {
    {"loop_net", CT_ARG_NET, false},
    {"cond_net", CT_ARG_NET, false},
    {NULL, CT_ARG_ANY, false},
};

static void ctl_fini(ct_op_t *op)
{
    struct ctl_state *s = op->state;

    ct_net_free(s->second);
    ct_net_free(s->first);
    s->first = s->second = NULL;
}

static int compile(ct_op_t *op, const char *arg, const char *opname,
                   bool required, ct_net_t **out, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, arg);
    int rc;

    *out = NULL;
    if (a == NULL || a->n == NULL) {
        if (required)
            return ct_status_setf(st, CT_EARG,
                                  "%s must be specified in %s "
                                  "operator",
                                  arg, opname);
        return CT_OK;
    }
    rc = ct_net_new(op->ws, a->n, NULL, out, st);
    if (rc != CT_OK)
        ct_status_prefix(st, "%s: ", arg);
    return rc;
}

static int ctl_init(ct_op_t *op, const char *first, const char *second,
                    const char *opname, ct_status_t *st)
{
    struct ctl_state *s = op->state;
    int rc = compile(op, first, opname, true, &s->first, st);

    if (rc == CT_OK)
        rc = compile(op, second, opname, false, &s->second, st);
    if (rc != CT_OK)
        ctl_fini(op);
    return rc;
}

static int if_init(ct_op_t *op, ct_status_t *st)
{
    return ctl_init(op, "then_net", "else_net", "If", st);
}

static int while_init(ct_op_t *op, ct_status_t *st)
{
    return ctl_init(op, "loop_net", "cond_net", "While", st);
}

static int read_cond(ct_op_ctx_t *ctx, const char *opname, bool *out)
{
    const ct_tensor_t *c = ct_blob_get_tensor(ctx->op->in[0]);
    const void *p;

    if (c == NULL)
        return ct_op_fail(ctx, CT_ETYPE,
                          "Invalid condition in %s operator: tensor "
                          "expected (blob %s)",
                          opname, ct_op_input_name(ctx->op, 0));
    if (ct_tensor_numel(c) != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "Invalid condition in %s operator: single value "
                          "expected, got %lld",
                          opname, (long long)ct_tensor_numel(c));
    p = ct_tensor_cdata(c);
    switch (ct_tensor_dtype(c)) {
    case CT_DTYPE_BOOL:
        *out = *(const bool *)p;
        break;
    case CT_DTYPE_F32:
        *out = *(const float *)p != 0.0f;
        break;
    case CT_DTYPE_F64:
        *out = *(const double *)p != 0.0;
        break;
    case CT_DTYPE_I32:
        *out = *(const int32_t *)p != 0;
        break;
    case CT_DTYPE_I64:
        *out = *(const int64_t *)p != 0;
        break;
    case CT_DTYPE_I16:
        *out = *(const int16_t *)p != 0;
        break;
    case CT_DTYPE_U16:
        *out = *(const uint16_t *)p != 0;
        break;
    case CT_DTYPE_BYTE:
    case CT_DTYPE_U8:
        *out = *(const uint8_t *)p != 0;
        break;
    case CT_DTYPE_I8:
        *out = *(const int8_t *)p != 0;
        break;
    default:
        return ct_op_fail(ctx, CT_ETYPE,
                          "Invalid condition in %s operator: %s tensor", opname,
                          ct_dtype_name(ct_tensor_dtype(c)));
    }
    return CT_OK;
}

static int run_sub(ct_op_ctx_t *ctx, ct_net_t *net)
{
    ct_status_t sub = {0};
    int rc = ct_net_run(net, &sub);

    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "subnet %s: %s", ct_net_name(net), sub.msg);
    return CT_OK;
}

static int if_run(ct_op_ctx_t *ctx)
{
    const struct ctl_state *s = ctx->op->state;
    bool cond;
    int rc = read_cond(ctx, "If", &cond);

    if (rc != CT_OK)
        return rc;
    if (cond)
        return run_sub(ctx, s->first);
    return s->second != NULL ? run_sub(ctx, s->second) : CT_OK;
}

static int while_run(ct_op_ctx_t *ctx)
{
    const struct ctl_state *s = ctx->op->state;
    bool cond;
    int rc;

    for (;;) {
        if (s->second != NULL) {
            rc = run_sub(ctx, s->second);
            if (rc != CT_OK)
                return rc;
        }
        rc = read_cond(ctx, "While", &cond);
        if (rc != CT_OK || !cond)
            return rc;
        rc = run_sub(ctx, s->first);
        if (rc != CT_OK)
            return rc;
    }
}

static double ctl_cost(const ct_op_t *op, const ct_shape_t *in)
{
    (void)op;
    (void)in;
    return 1000.0;
}

const struct ct_op_schema ct__op_if = {
    .name = "If",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 0,
    .max_outputs = CT_INF,
    .inplace_cb = ct__inplace_any,
    .args = if_args,
    .state_size = sizeof(struct ctl_state),
    .init_cb = if_init,
    .fini_cb = ctl_fini,
    .run_cb = if_run,
    .cost_cb = ctl_cost,
    .flags = CT_OP_F_HAS_SUBNET,
    .doc = "runs then_net or else_net on a one-element condition",
};

const struct ct_op_schema ct__op_while = {
    .name = "While",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 0,
    .max_outputs = CT_INF,
    .inplace_cb = ct__inplace_any,
    .args = while_args,
    .state_size = sizeof(struct ctl_state),
    .init_cb = while_init,
    .fini_cb = ctl_fini,
    .run_cb = while_run,
    .cost_cb = ctl_cost,
    .flags = CT_OP_F_HAS_SUBNET,
    .doc = "runs loop_net while the condition holds (cond_net first)",
};
