/* ConvGradient: the gradients of Conv (Caffe2's ConvGradientOp).
 *
 * Math, for Y = Conv(X, W) + b with output gradient dY:
 *   dW[m, c, t] = sum over n, o of dY[n, m, o] * X[n, c, o * s - p + t * d]
 *   db[m]       = sum over n, o of dY[n, m, o]
 *   dX          = the adjoint of the convolution applied to dY.
 * Inputs: X, W, dY (the Conv's input, filter and output gradient; dY must
 * have the shape Conv would give). Outputs, as Caffe2's gradient maker
 * emits them: dW, db[, dX] by default; dW[, dX] with no_bias = 1. dX is
 * computed only when its output is present. Shapes: dW like W, db [M], dX
 * like X. FLOAT only. No in-place.
 * Attrs: those of Conv (ops/conv_pool.h; the forward op's arguments are
 * copied to its gradient) plus no_bias (int, 0).
 * Differences from Caffe2: exactly 3 inputs (Caffe2's schema allows 2 but
 * its kernel always reads dY); output counts that Caffe2 would index out
 * of range (no_bias = 0 with only dW; no_bias = 1 with 3 outputs) are
 * CT_EARG at creation; dY's shape is checked (CT_ESHAPE) instead of
 * trusted.
 *
 * Kernel (ops/conv_gemm.c): dW by im2col + GEMM over items = groups (each
 * sums over the batch), dX by GEMM + col2im over (image, group) items, db
 * by a direct sum.
 */
#include <string.h>

#include "ops/conv_gemm.h"

struct conv_grad_state {
    struct ct__conv_args a;
    bool no_bias;
    bool want_dx;
    struct ct__conv_scratch scratch;
};

static int conv_grad_init(ct_op_t *op, ct_status_t *st)
{
    struct conv_grad_state *s = op->state;
    int32_t no_bias;
    int rc;

    if ((rc = ct__conv_args_parse(op, CT_CONV_KIND_CONV, &s->a, st)) != CT_OK ||
        (rc = ct__arg_int32(op, "no_bias", 0, &no_bias, st)) != CT_OK)
        return rc;
    s->no_bias = no_bias != 0;
    if (!s->no_bias && op->n_out < 2)
        return ct_status_setf(st, CT_EARG,
                              "no_bias = 0: outputs are dW, db and optionally "
                              "dX, got %d output",
                              op->n_out);
    if (s->no_bias && op->n_out > 2)
        return ct_status_setf(st, CT_EARG,
                              "no_bias = %d: outputs are dW and optionally "
                              "dX, got %d outputs",
                              (int)no_bias, op->n_out);
    s->want_dx = op->n_out == (s->no_bias ? 2 : 3);
    return CT_OK;
}

static void conv_grad_fini(ct_op_t *op)
{
    struct conv_grad_state *s = op->state;

    ct__conv_scratch_free(op->eng, &s->scratch);
}

/* Geometry for X, W and dY; dY must be Conv(X, W)'s shape. */
static int conv_grad_plan(const struct conv_grad_state *s, int x_ndim,
                          const int64_t *x_dims, int w_ndim,
                          const int64_t *w_dims, int dy_ndim,
                          const int64_t *dy_dims, struct ct__conv_geom *g,
                          ct_status_t *st)
{
    int64_t y_dims[CT_CONV_MAX_SP + 2];
    char sx[128], sw[128], sy[128], sdy[128];
    int rc;

    rc = ct__conv_plan(&s->a, x_ndim, x_dims, w_ndim, w_dims, -1, NULL, g,
                       y_dims, st);
    if (rc != CT_OK)
        return rc;
    if (dy_ndim == x_ndim &&
        memcmp(dy_dims, y_dims, (size_t)x_ndim * sizeof(int64_t)) == 0)
        return CT_OK;
    return ct_status_setf(st, CT_ESHAPE,
                          "dY %s must be %s, the shape of Conv(X %s, W %s)",
                          ct_dims_str(dy_ndim, dy_dims, sdy, sizeof(sdy)),
                          ct_dims_str(x_ndim, y_dims, sy, sizeof(sy)),
                          ct_dims_str(x_ndim, x_dims, sx, sizeof(sx)),
                          ct_dims_str(w_ndim, w_dims, sw, sizeof(sw)));
}

/* Zero-fills an output (NULL or empty allowed). */
static void zero(ct_tensor_t *t)
{
    if (t != NULL && ct_tensor_numel(t) > 0)
        memset(ct_tensor_data(t), 0, ct_tensor_nbytes(t));
}

static int conv_grad_run(ct_op_ctx_t *ctx)
{
    struct conv_grad_state *s = ctx->op->state;
    const ct_tensor_t *x, *w, *dy;
    ct_tensor_t *dw, *db = NULL, *dx = NULL;
    struct ct__conv_geom g;
    struct ct__conv_job j;
    ct_status_t lst;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &w)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &dy)) != CT_OK)
        return rc;
    {
        const ct_tensor_t *t[3] = {x, w, dy};
        static const char *const names[3] = {"X", "W", "dY"};
        if ((rc = ct__conv_check_dtypes(ctx, 3, t, names)) != CT_OK)
            return rc;
    }
    ct_status_clear(&lst);
    rc = conv_grad_plan(s, x->ndim, x->dims, w->ndim, w->dims, dy->ndim,
                        dy->dims, &g, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    if ((rc = ct_op_output(ctx, 0, CT_DTYPE_F32, w->ndim, w->dims, &dw)) !=
            CT_OK ||
        (!s->no_bias &&
         (rc = ct_op_output(ctx, 1, CT_DTYPE_F32, 1, &g.m, &db)) != CT_OK) ||
        (s->want_dx && (rc = ct_op_output(ctx, s->no_bias ? 1 : 2, CT_DTYPE_F32,
                                          x->ndim, x->dims, &dx)) != CT_OK))
        return rc;
    ct__conv_job_init(&j, &g);
    if (g.n == 0 || g.m == 0) {
        /* Nothing flows back: zero gradients (dX is empty or zero). */
        zero(dw);
        zero(db);
        zero(dx);
        return CT_OK;
    }
    if (j.col_lane > 0) {
        const int lanes = ct__conv_n_lanes(ctx);
        rc = ct__conv_scratch_reserve(
            ctx, &s->scratch, (size_t)(lanes * j.col_lane) * sizeof(float),
            "ConvGradient im2col scratch");
        if (rc != CT_OK)
            return rc;
        j.col = s->scratch.buf;
    }
    j.x = CT_CDATA(x, float);
    j.w = CT_CDATA(w, float);
    j.dy = CT_CDATA(dy, float);
    j.dw = CT_DATA(dw, float);
    ct__conv_for(ctx, ct__conv_bwd_filter_items(&j), 1,
                 ct__conv_bwd_filter_range, &j);
    if (db != NULL)
        ct__conv_bwd_bias(&g, j.dy, CT_DATA(db, float));
    if (dx != NULL) {
        j.dx = CT_DATA(dx, float);
        ct__conv_for(ctx, ct__conv_bwd_data_items(&j), 1,
                     ct__conv_bwd_data_range, &j);
    }
    return CT_OK;
}

static int conv_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                           ct_shape_t *out, ct_status_t *st)
{
    const struct conv_grad_state *s = op->state;
    struct ct__conv_geom g;
    int i, rc;

    for (i = 0; i < op->n_out; i++)
        out[i].dtype = in[0].dtype;
    for (i = 0; i < 3; i++)
        if (in[i].ndim < 0)
            return CT_OK;
    rc = conv_grad_plan(s, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims,
                        in[2].ndim, in[2].dims, &g, st);
    if (rc != CT_OK)
        return rc;
    out[0].ndim = in[1].ndim;
    memcpy(out[0].dims, in[1].dims, (size_t)in[1].ndim * sizeof(int64_t));
    if (!s->no_bias) {
        out[1].ndim = 1;
        out[1].dims[0] = g.m;
    }
    if (s->want_dx) {
        ct_shape_t *dx = &out[op->n_out - 1];
        dx->ndim = in[0].ndim;
        memcpy(dx->dims, in[0].dims, (size_t)in[0].ndim * sizeof(int64_t));
    }
    return CT_OK;
}

/* Caffe2's CostInferenceForConvGradient with the group counted: one
 * forward-sized GEMM for dW, one more for dX, N * M * out for db. */
static double conv_grad_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct conv_grad_state *s = op->state;
    struct ct__conv_geom g;
    double gemm;

    if (in[0].ndim < 0 || in[1].ndim < 0 || in[2].ndim < 0 ||
        conv_grad_plan(s, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims,
                       in[2].ndim, in[2].dims, &g, NULL) != CT_OK)
        return 0;
    gemm = 2.0 * (double)g.n * (double)g.m * (double)g.out_size *
           (double)(g.c / g.group) * (double)g.k_size;
    return gemm * (s->want_dx ? 2.0 : 1.0) +
           (s->no_bias ? 0.0 : (double)g.n * (double)g.m * (double)g.out_size);
}

static const struct ct_arg_spec conv_grad_args[] = {
    CT_CONV_ARG_SPECS,
    {"no_bias", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_conv_gradient = {
    .name = "ConvGradient",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 3,
    .args = conv_grad_args,
    .state_size = sizeof(struct conv_grad_state),
    .init_cb = conv_grad_init,
    .fini_cb = conv_grad_fini,
    .infer_cb = conv_grad_infer,
    .run_cb = conv_grad_run,
    .cost_cb = conv_grad_cost,
    .doc = "dW, db, dX of Conv from X, W, dY",
};
