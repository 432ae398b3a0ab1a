/* Softmax.
 *
 * Math: X is coerced to a matrix [N, D] at `axis` (N = product of the dims
 * before it, D = product from it on), and each row becomes
 *   y_j = exp(x_j - max_i x_i) / sum_i exp(x_i - max_i x_i).
 * Subtracting the row maximum keeps every exponent <= 0, so inputs of any
 * magnitude give finite results (a row holding +inf or NaN gives NaN).
 * The row sum accumulates in double.
 * Input X, output Y of X's shape. Attr axis (int, 1; negative counts from
 * the end; must name a dim of X, CT_ESHAPE otherwise, as Caffe2's
 * canonical_axis_index). Dtype FLOAT (Caffe2's CPU kernel is float only);
 * others are CT_ENOTSUP. In-place: input 0 -> output 0 (each row is read
 * before it is written).
 *
 * The kernel computes rows [r0, r1), so ct_parallel_for can split N.
 *
 * SoftmaxGradient (Caffe2's): inputs Y (the forward output) and dY of the
 * same shape, output dX, per row dX_j = Y_j * (dY_j - sum_i dY_i * Y_i)
 * (the dot product in double). Same `axis`. FLOAT only. In-place: dY ->
 * dX. The maker emits {Y, dY} -> {dX}.
 */
#include <math.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

struct softmax_state {
    int32_t axis;
};

/* Rows [r0, r1) of D elements each; y may be x. */
static void softmax_f32(const float *x, float *y, int64_t d, int64_t r0,
                        int64_t r1)
{
    int64_t r, i;

    for (r = r0; r < r1; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        float mx = xr[0];
        double sum = 0, inv;

        for (i = 1; i < d; i++)
            mx = xr[i] > mx ? xr[i] : mx;
        for (i = 0; i < d; i++) {
            yr[i] = expf(xr[i] - mx);
            sum += yr[i];
        }
        /* The scaling in double rounds once, to float. */
        inv = 1.0 / sum;
        for (i = 0; i < d; i++)
            yr[i] = (float)(yr[i] * inv);
    }
}

/* Canonical axis and the [N, D] view of a shape. */
static int softmax_dims(int32_t axis, int nd, const int64_t *dims, int64_t *n,
                        int64_t *d, ct_status_t *st)
{
    char s[128];
    int i;

    if (axis < -nd || axis >= nd)
        return ct_status_setf(
            st, CT_ESHAPE, "axis %d is out of range for X %s (%d-d)", (int)axis,
            ct_dims_str(nd, dims, s, sizeof(s)), nd);
    if (axis < 0)
        axis += nd;
    *n = *d = 1;
    for (i = 0; i < nd; i++) {
        if (i < axis)
            *n *= dims[i];
        else
            *d *= dims[i];
    }
    return CT_OK;
}

static int softmax_run(ct_op_ctx_t *ctx)
{
    const struct softmax_state *s = ctx->op->state;
    const ct_tensor_t *x;
    const float *xs;
    ct_tensor_t *y;
    ct_status_t lst;
    int64_t n, d;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP, "unsupported dtype %s (FLOAT)",
                          ct_dtype_name(x->dtype));
    ct_status_clear(&lst);
    /* No overflow: N * D is the element count of a real tensor. */
    rc = softmax_dims(s->axis, x->ndim, x->dims, &n, &d, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    /* Input data before the output: when the in-place output's storage is
     * shared (a snapshot holds it), ct_op_output swaps in new storage and
     * the old one, alive through the other reference, keeps X intact. */
    xs = CT_CDATA(x, float);
    rc = ct_op_output(ctx, 0, CT_DTYPE_F32, x->ndim, x->dims, &y);
    if (rc != CT_OK)
        return rc;
    if (n == 0 || d == 0)
        return CT_OK;
    /* One range for now; ct_parallel_for will split the rows [0, N). */
    softmax_f32(xs, CT_DATA(y, float), d, 0, n);
    return CT_OK;
}

static int softmax_init(ct_op_t *op, ct_status_t *st)
{
    struct softmax_state *s = op->state;

    return ct__arg_int32(op, "axis", 1, &s->axis, st);
}

static int softmax_infer(const ct_op_t *op, const ct_shape_t *in,
                         ct_shape_t *out, ct_status_t *st)
{
    const struct softmax_state *s = op->state;
    int64_t n, d;

    out[0] = in[0];
    if (in[0].ndim < 0)
        return CT_OK;
    return softmax_dims(s->axis, in[0].ndim, in[0].dims, &n, &d, st);
}

/* Per element: compare, subtract, exp (~10), add, multiply. */
static double softmax_cost(const ct_op_t *op, const ct_shape_t *in)
{
    double v = 1;
    int i;

    if (in[0].ndim < 0)
        return 0;
    for (i = 0; i < in[0].ndim; i++)
        v *= (double)in[0].dims[i];
    return 14 * v;
}

/* ---- gradient ---- */

/* Rows [r0, r1); dx may be dy. */
static void softmax_grad_f32(const float *y, const float *dy, float *dx,
                             int64_t d, int64_t r0, int64_t r1)
{
    int64_t r, i;

    for (r = r0; r < r1; r++) {
        const float *yr = y + r * d, *gr = dy + r * d;
        float *xr = dx + r * d;
        double dot = 0;
        float dotf;

        for (i = 0; i < d; i++)
            dot += (double)gr[i] * yr[i];
        dotf = (float)dot;
        for (i = 0; i < d; i++)
            xr[i] = yr[i] * (gr[i] - dotf);
    }
}

static int softmax_grad_run(ct_op_ctx_t *ctx)
{
    const struct softmax_state *s = ctx->op->state;
    const ct_tensor_t *y, *dy;
    const float *ys, *dys;
    ct_tensor_t *dx;
    ct_status_t lst;
    char s1[128], s2[128];
    int64_t n, d;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &y)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &dy)) != CT_OK)
        return rc;
    if (y->dtype != CT_DTYPE_F32 || dy->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtypes Y %s, dY %s (FLOAT)",
                          ct_dtype_name(y->dtype), ct_dtype_name(dy->dtype));
    if (dy->ndim != y->ndim ||
        (y->ndim > 0 &&
         memcmp(dy->dims, y->dims, (size_t)y->ndim * sizeof(int64_t)) != 0))
        return ct_op_fail(ctx, CT_ESHAPE, "dY %s must have the shape of Y %s",
                          ct_tensor_shape_str(dy, s1, sizeof(s1)),
                          ct_tensor_shape_str(y, s2, sizeof(s2)));
    ct_status_clear(&lst);
    rc = softmax_dims(s->axis, y->ndim, y->dims, &n, &d, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    ys = CT_CDATA(y, float);
    dys = CT_CDATA(dy, float); /* before the output: see softmax_run */
    rc = ct_op_output(ctx, 0, CT_DTYPE_F32, y->ndim, y->dims, &dx);
    if (rc != CT_OK)
        return rc;
    if (n == 0 || d == 0)
        return CT_OK;
    /* One range for now; ct_parallel_for will split the rows [0, N). */
    softmax_grad_f32(ys, dys, CT_DATA(dx, float), d, 0, n);
    return CT_OK;
}

static bool softmax_grad_inplace(int in, int out)
{
    return in == 1 && out == 0;
}

/* {Y, dY} -> {dX}. */
static int softmax_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *in[2], *out[1];

    in[0] = ct__grad_fwd_out(g, 0);
    in[1] = ct__grad_out(g, 0);
    out[0] = ct__grad_in(g, 0);
    return ct__grad_emit(g, "SoftmaxGradient", in, 2, out, 1, 0, NULL, st);
}

static const struct ct_arg_spec softmax_args[] = {
    {"axis", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_softmax = {
    .name = "Softmax",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .inplace_cb = ct__inplace_0_0,
    .args = softmax_args,
    .state_size = sizeof(struct softmax_state),
    .init_cb = softmax_init,
    .infer_cb = softmax_infer,
    .run_cb = softmax_run,
    .grad_cb = softmax_grad_make,
    .cost_cb = softmax_cost,
    .doc = "Y = exp(X - max) / sum exp(X - max) along axis",
};

const struct ct_op_schema ct__op_softmax_gradient = {
    .name = "SoftmaxGradient",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .inplace_cb = softmax_grad_inplace,
    .args = softmax_args,
    .state_size = sizeof(struct softmax_state),
    .init_cb = softmax_init,
    .infer_cb = softmax_infer,
    .run_cb = softmax_grad_run,
    .doc = "dX = Y * (dY - sum(dY * Y)) along axis",
};
