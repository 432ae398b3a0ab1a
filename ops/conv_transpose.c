/* ConvTranspose: the transposed ("fractionally strided") convolution
 * (Caffe2's ConvTransposeOp).
 *
 * Math: every input pixel scatters its filter into the output,
 *   Y[n, c, i * stride - pad_head + t] += X[n, m, i] * W[m, c', t]
 * for the C/group output channels c of m's group (c' = c mod C/group),
 * plus b[c]. It is the adjoint of Conv with the same W and arguments.
 * Inputs: X [N, M, in...] (NCHW) or [N, in..., M] (NHWC); W [M, C/group,
 * k...] (NCHW) or [M, k..., C/group] (NHWC); optional b [C]. Output Y
 * [N, C, out...] or [N, out..., C] with, per spatial dim,
 *   out = (in - 1) * stride + kernel + adj - pad_head - pad_tail
 * (legacy_pad VALID and SAME both use no padding, as Caffe2). FLOAT only.
 * No in-place.
 * Attrs: kernel(s), stride(s), pad(s), adj(s) / adj_h + adj_w (0 <= adj
 * <= stride, as Caffe2), group, order, legacy_pad (3 is refused, as in
 * Caffe2). Dilation is not supported: Caffe2 ignores dilation arguments
 * here, cortado refuses a dilation other than 1 rather than compute
 * something else. 1 to 3 spatial dims (Caffe2: 2 only).
 * Errors: CT_EARG (arguments), CT_ESHAPE naming the expected and actual
 * shapes, CT_EOVERFLOW, CT_ENOMEM for the column scratch.
 * No gradient maker: ConvTransposeGradient is not implemented, so a
 * gradient flowing into ConvTranspose is CT_ENOTSUP from the builder.
 *
 * Kernel: Conv's backward-data pass (ops/conv_gemm.c), GEMM W^T X into
 * columns then col2im, over (image, group) items.
 */
#include <string.h>

#include "ops/conv_gemm.h"

struct conv_t_state {
    struct ct__conv_args a;
    struct ct__conv_scratch scratch;
};

static int conv_t_init(ct_op_t *op, ct_status_t *st)
{
    struct conv_t_state *s = op->state;

    return ct__conv_args_parse(op, CT_CONV_KIND_TRANSPOSE, &s->a, st);
}

static void conv_t_fini(ct_op_t *op)
{
    struct conv_t_state *s = op->state;

    ct__conv_scratch_free(op->eng, &s->scratch);
}

static int conv_t_run(ct_op_ctx_t *ctx)
{
    struct conv_t_state *s = ctx->op->state;
    const ct_tensor_t *x, *w, *b = NULL;
    struct ct__conv_geom g;
    struct ct__conv_job j;
    int64_t y_dims[CT_CONV_MAX_SP + 2];
    ct_tensor_t *y;
    ct_status_t lst;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &w)) != CT_OK ||
        (ctx->op->n_in > 2 && (rc = ct_op_input(ctx, 2, &b)) != CT_OK))
        return rc;
    {
        const ct_tensor_t *t[3] = {x, w, b};
        static const char *const names[3] = {"X", "W", "b"};
        if ((rc = ct__conv_check_dtypes(ctx, 3, t, names)) != CT_OK)
            return rc;
    }
    ct_status_clear(&lst);
    rc = ct__conv_transpose_plan(&s->a, x->ndim, x->dims, w->ndim, w->dims,
                                 b != NULL ? b->ndim : -1,
                                 b != NULL ? b->dims : NULL, &g, y_dims, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    rc = ct_op_output(ctx, 0, CT_DTYPE_F32, x->ndim, y_dims, &y);
    if (rc != CT_OK)
        return rc;
    if (g.n == 0)
        return CT_OK;
    ct__conv_job_init(&j, &g);
    if (j.col_lane > 0) {
        const int lanes = ct__conv_n_lanes(ctx);
        rc = ct__conv_scratch_reserve(
            ctx, &s->scratch, (size_t)(lanes * j.col_lane) * sizeof(float),
            "ConvTranspose col2im scratch");
        if (rc != CT_OK)
            return rc;
        j.col = s->scratch.buf;
    }
    /* The convolution from Y to X, run backwards: X plays dY. */
    j.dy = CT_CDATA(x, float);
    j.w = CT_CDATA(w, float);
    j.b = b != NULL ? CT_CDATA(b, float) : NULL;
    j.dx = CT_DATA(y, float);
    ct__conv_for(ctx, ct__conv_bwd_data_items(&j), 1, ct__conv_bwd_data_range,
                 &j);
    return CT_OK;
}

static int conv_t_infer(const ct_op_t *op, const ct_shape_t *in,
                        ct_shape_t *out, ct_status_t *st)
{
    const struct conv_t_state *s = op->state;

    return ct__conv_infer(op, &s->a, ct__conv_transpose_plan, in, out, st);
}

/* 2 * N * M * in_size * (C/group) * k: the GEMM of the backward pass. */
static double conv_t_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct conv_t_state *s = op->state;
    struct ct__conv_geom g;
    int64_t y_dims[CT_MAX_DIMS];

    if (in[0].ndim < 0 || in[1].ndim < 0 ||
        ct__conv_transpose_plan(&s->a, in[0].ndim, in[0].dims, in[1].ndim,
                                in[1].dims, -1, NULL, &g, y_dims,
                                NULL) != CT_OK)
        return 0;
    return 2.0 * (double)g.n * (double)g.m * (double)g.out_size *
           (double)(g.c / g.group) * (double)g.k_size;
}

static const struct ct_arg_spec conv_t_args[] = {
    CT_CONV_ARG_SPECS,
    {"adj", CT_ARG_INT, false},
    {"adj_h", CT_ARG_INT, false},
    {"adj_w", CT_ARG_INT, false},
    {"adjs", CT_ARG_INTS, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_conv_transpose = {
    .name = "ConvTranspose",
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = conv_t_args,
    .state_size = sizeof(struct conv_t_state),
    .init_cb = conv_t_init,
    .fini_cb = conv_t_fini,
    .infer_cb = conv_t_infer,
    .run_cb = conv_t_run,
    .cost_cb = conv_t_cost,
    .doc = "transposed convolution (adjoint of Conv), NCHW or NHWC",
};
