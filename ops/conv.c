/* Conv: N-d convolution (Caffe2's ConvOp).
 *
 * Math: Y[n, m, o] = b[m] + sum over c in m's group and kernel taps t of
 *   W[m, c, t] * X[n, c, o * stride - pad_head + t * dilation],
 * with taps outside X reading zero. Channels split into `group` groups;
 * output channel m sees the C/group input channels of its group.
 * Inputs: X [N, C, in...] (NCHW) or [N, in..., C] (NHWC); W [M, C/group,
 * k...] (NCHW) or [M, k..., C/group] (NHWC); optional b [M]. Output: Y
 * [N, M, out...] or [N, out..., M]. 1 to 3 spatial dims (the kernel
 * arguments fix how many). FLOAT only (X of another dtype is CT_ENOTSUP;
 * W or b differing from X is CT_ETYPE). No in-place.
 * Attrs (ops/conv_pool.h): kernel(s), stride(s), pad(s), dilation(s),
 * group, order, legacy_pad; Caffe2's engine hints (exhaustive_search,
 * shared_buffer, ws_nbytes_limit, float16_compute, ...) are ignored.
 * Output extent per dim (legacy_pad NOTSET):
 *   (in + pad_head + pad_tail - (dilation * (k - 1) + 1)) / stride + 1.
 * Errors: CT_EARG for the arguments (at creation); CT_ESHAPE naming the
 * expected and actual shapes of X, W and b or the spatial dim whose
 * output extent would be <= 0; CT_EOVERFLOW; CT_ENOMEM for the im2col
 * scratch (sized once, charged to the engine budget). N = 0 gives an
 * empty Y.
 *
 * Gradient: ConvGradient (ops/conv_grad.c), made as Caffe2's
 * GetConvGradient does.
 *
 * Kernel: im2col + cblas_sgemm tiles, a plain GEMM for 1x1 kernels, a
 * direct loop for NCHW depthwise (ops/conv_gemm.c), over items fitted to
 * the engine's lanes (ct__conv_job_fit) and split by ct__conv_for.
 *
 * Fusion (engine/fuse.h): a Conv that engine/fuse.c paired with the
 * inference SpatialBN reading its output writes that BN's output blob and
 * applies the BN's affine, computed from the BN's inputs at every run, in
 * the epilogue of each output tile (ct__conv_job.bn_a / bn_b).
 */
#include <string.h>

#include "engine/fuse.h"
#include "engine/gradient.h"
#include "ops/conv_gemm.h"

struct conv_state {
    struct ct__conv_args a;
    struct ct__conv_scratch scratch; /* im2col columns, per lane */
    /* Fused SpatialBN (engine/fuse.h), or NULL; set at net compile time. */
    ct_op_t *bn;
    struct ct__conv_scratch bn_ab; /* its a[m] then b[m], per run */
};

static int conv_init(ct_op_t *op, ct_status_t *st)
{
    struct conv_state *s = op->state;

    return ct__conv_args_parse(op, CT_CONV_KIND_CONV, &s->a, st);
}

static void conv_fini(ct_op_t *op)
{
    struct conv_state *s = op->state;

    ct__conv_scratch_free(op->eng, &s->scratch);
    ct__conv_scratch_free(op->eng, &s->bn_ab);
}

bool ct__conv_fusable(const ct_op_t *op, bool *nhwc)
{
    const struct conv_state *s = op->state;

    if (strcmp(op->schema->name, "Conv") != 0 || op->n_out != 1 ||
        s->bn != NULL)
        return false;
    *nhwc = s->a.nhwc;
    return true;
}

void ct__conv_fuse_bn(ct_op_t *conv, ct_op_t *bn)
{
    struct conv_state *s = conv->state;

    s->bn = bn;
    conv->out[0] = bn->out[0];
    ct__sbn_set_fused(bn);
}

static int conv_run(ct_op_ctx_t *ctx)
{
    struct conv_state *s = ctx->op->state;
    const ct_tensor_t *x, *w, *b = NULL;
    struct ct__conv_geom g;
    struct ct__conv_job j;
    int64_t y_dims[CT_CONV_MAX_SP + 2];
    ct_tensor_t *y;
    ct_status_t lst;
    int rc, lanes;

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
    rc = ct__conv_plan(&s->a, x->ndim, x->dims, w->ndim, w->dims,
                       b != NULL ? b->ndim : -1, b != NULL ? b->dims : NULL, &g,
                       y_dims, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    rc = ct_op_output(ctx, 0, CT_DTYPE_F32, x->ndim, y_dims, &y);
    if (rc != CT_OK)
        return rc;
    ct__conv_job_init(&j, &g);
    if (s->bn != NULL) {
        /* The BN's coefficients from its inputs of this run; unusable
         * ones leave the plain convolution for the BN to finish. */
        rc = ct__conv_scratch_reserve(
            ctx, &s->bn_ab, (size_t)(2 * (g.m > 0 ? g.m : 1)) * sizeof(float),
            "Conv fused SpatialBN coefficients");
        if (rc != CT_OK)
            return rc;
        if (ct__sbn_fused_coeffs(s->bn, g.m, s->bn_ab.buf)) {
            j.bn_a = s->bn_ab.buf;
            j.bn_b = s->bn_ab.buf + g.m;
        }
    }
    if (g.n == 0 || g.m == 0)
        return CT_OK;
    lanes = ct__conv_n_lanes(ctx);
    ct__conv_job_fit(&j, lanes);
    if (j.col_lane > 0 && !j.depthwise) {
        rc = ct__conv_scratch_reserve(
            ctx, &s->scratch, (size_t)(lanes * j.col_lane) * sizeof(float),
            "Conv im2col scratch");
        if (rc != CT_OK)
            return rc;
        j.col = s->scratch.buf;
    }
    j.x = CT_CDATA(x, float);
    j.w = CT_CDATA(w, float);
    j.b = b != NULL ? CT_CDATA(b, float) : NULL;
    j.y = CT_DATA(y, float);
    ct__conv_for(ctx, ct__conv_fwd_items(&j), 1, ct__conv_fwd_range, &j);
    return CT_OK;
}

static int conv_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    const struct conv_state *s = op->state;

    return ct__conv_infer(op, &s->a, ct__conv_plan, in, out, st);
}

/* Caffe2's CostInferenceForConv: 2 * N * M * out_size * (C/group) * k. */
static double conv_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct conv_state *s = op->state;
    struct ct__conv_geom g;
    int64_t y_dims[CT_MAX_DIMS];

    if (in[0].ndim < 0 || in[1].ndim < 0 ||
        ct__conv_plan(&s->a, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims, -1,
                      NULL, &g, y_dims, NULL) != CT_OK)
        return 0;
    return 2.0 * (double)g.n * (double)g.m * (double)g.out_size *
           (double)(g.c / g.group) * (double)g.k_size;
}

/* Caffe2's GetConvGradient: ConvGradient(X, W, dY) -> (dW, db, dX) with a
 * bias, (dW, dX) and no_bias = 1 without; no_gradient_to_input = 1 drops
 * dX (X then gets no gradient). */
static int conv_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *in[3], *out[3];
    Caffe2__OperatorDef *op;
    bool to_input = true;
    int n_out = 0, rc;
    size_t i;

    for (i = 0; i < g->def->n_arg; i++) {
        const Caffe2__Argument *a = g->def->arg[i];
        if (a->name != NULL && strcmp(a->name, "no_gradient_to_input") == 0 &&
            a->has_i && a->i != 0)
            to_input = false;
    }
    in[0] = ct__grad_fwd_in(g, 0);
    in[1] = ct__grad_fwd_in(g, 1);
    in[2] = ct__grad_out(g, 0);
    out[n_out++] = ct__grad_in(g, 1);
    if (g->def->n_input > 2)
        out[n_out++] = ct__grad_in(g, 2);
    if (to_input)
        out[n_out++] = ct__grad_in(g, 0);
    rc = ct__grad_emit(g, "ConvGradient", in, 3, out, n_out, 0, &op, st);
    if (rc != CT_OK || g->def->n_input > 2)
        return rc;
    return ct__grad_op_set_int(op, "no_bias", 1, st);
}

static const struct ct_arg_spec conv_args[] = {
    CT_CONV_ARG_SPECS,
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_conv = {
    .name = "Conv",
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = conv_args,
    .state_size = sizeof(struct conv_state),
    .init_cb = conv_init,
    .fini_cb = conv_fini,
    .infer_cb = conv_infer,
    .run_cb = conv_run,
    .grad_cb = conv_grad_make,
    .cost_cb = conv_cost,
    .doc = "N-d convolution, grouped and dilated, NCHW or NHWC",
};
