/* SoftmaxWithLoss and its gradient (Caffe2's softmax_with_loss_op); the
 * helpers it shares with the other losses are in ops/loss.h.
 *
 * Dtypes: FLOAT and DOUBLE for the values, labels INT32 or INT64; sums
 * accumulate in double. No op runs in place. 1e-20 guards every log.
 *
 * SoftmaxWithLoss: X (logits), T (labels), optional W (per-row weights,
 *   N entries of X's dtype) -> P (softmax of X, X's shape), L (0-d).
 *   X is viewed as [N, D] at `axis` (int, 1). Without label_prob, T holds
 *   N class indices in [0, D); with label_prob = 1, T holds N x D
 *   probabilities (X's dtype, each row >= 0 and summing to 1 within
 *   1e-5). L = scale * sum_i w_i * l_i / sum_i w_i, where
 *   l_i = -log(max(P_i,T_i, 1e-20)) (or -sum_j T_ij log(max(P_ij, 1e-20))),
 *   w_i = 1 without W; L = 0 when the weights sum to 0.
 *   Attrs: scale (float, 1), label_prob (int, 0), axis (int, 1), order
 *   ("NCHW", ignored like Caffe2 without spatial), spatial (int, 0; 1 is
 *   CT_ENOTSUP).
 *   SoftmaxWithLossGradient {X, T, [W], P, dL} -> {dX}:
 *   dX_ij = (P_ij - [j == T_i]) * w_i * scale * dL / sum_i w_i (with
 * Label errors (a class outside [0, D), a probability row not summing to
 * 1) are CT_EINVAL naming the row and value; shape errors CT_ESHAPE.
 * The scalar dL of SoftmaxWithLossGradient may be FLOAT or DOUBLE whatever
 * X's dtype (the gradient builder seeds every loss with a FLOAT
 * ConstantFill, as Caffe2 does). The gradient maker emits Caffe2's input
 * list; there is no gradient through the P output (CT_ENOTSUP when one
 * flows into it).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "ops/loss.h"

/* ---- SoftmaxWithLoss ---- */

struct swl_state {
    float scale;
    bool label_prob;
    int32_t axis;
};

static int swl_init(ct_op_t *op, ct_status_t *st)
{
    struct swl_state *s = op->state;
    int64_t label_prob, spatial;
    const char *order;
    size_t len;
    int rc;

    if ((rc = ct__arg_float(op, "scale", 1.0f, &s->scale, st)) != CT_OK ||
        (rc = ct__arg_int(op, "label_prob", 0, &label_prob, st)) != CT_OK ||
        (rc = ct__arg_int32(op, "axis", 1, &s->axis, st)) != CT_OK ||
        (rc = ct__arg_int(op, "spatial", 0, &spatial, st)) != CT_OK ||
        (rc = ct__arg_string(op, "order", "NCHW", &order, &len, st)) != CT_OK)
        return rc;
    if (label_prob != 0 && label_prob != 1)
        return ct_status_setf(st, CT_EARG, "label_prob=%lld must be 0 or 1",
                              (long long)label_prob);
    if (spatial != 0)
        return ct_status_setf(st, CT_ENOTSUP,
                              "spatial=%lld is not supported (per-pixel "
                              "softmax over NCHW)",
                              (long long)spatial);
    if (!isfinite(s->scale))
        return ct_status_setf(st, CT_EARG, "scale=%g must be finite",
                              (double)s->scale);
    s->label_prob = label_prob == 1;
    return CT_OK;
}

/* Rows and classes of X at the op's axis. */
static int swl_dims(ct_op_ctx_t *ctx, const ct_tensor_t *x, int64_t *n,
                    int64_t *d)
{
    const struct swl_state *s = ctx->op->state;
    char buf[128];
    int axis = s->axis, i;

    if (axis < -x->ndim || axis >= x->ndim)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "axis %d is out of range for X %s (%d-D)", axis,
                          ct_tensor_shape_str(x, buf, sizeof(buf)), x->ndim);
    if (axis < 0)
        axis += x->ndim;
    *n = *d = 1;
    for (i = 0; i < x->ndim; i++) {
        if (i < axis)
            *n *= x->dims[i];
        else
            *d *= x->dims[i];
    }
    return CT_OK;
}

/* Checks T (and W) against X; on success the label values are valid. */
static int swl_check(ct_op_ctx_t *ctx, const ct_tensor_t *x,
                     const ct_tensor_t *t, const ct_tensor_t *w, int ti,
                     int64_t n, int64_t d)
{
    const struct swl_state *s = ctx->op->state;
    const bool f64 = x->dtype == CT_DTYPE_F64;
    int64_t i, j;
    int rc;

    if (w != NULL &&
        ((rc = ct__loss_want_dtype(ctx, 2, w, x->dtype)) != CT_OK ||
         (rc = ct__loss_want_rows(ctx, "weight input", w, n)) != CT_OK))
        return rc;
    if (!s->label_prob)
        return ct__loss_want_labels(ctx, ti, t, n, d);
    if ((rc = ct__loss_want_dtype(ctx, ti, t, x->dtype)) != CT_OK)
        return rc;
    if (t->numel != n * d)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "label_prob: T has %lld entries; N * D = %lld * "
                          "%lld expected",
                          (long long)t->numel, (long long)n, (long long)d);
    for (i = 0; i < n; i++) {
        double total = 0;
        for (j = 0; j < d; j++) {
            const double v = ct__loss_get(ct_tensor_cdata(t), f64, i * d + j);
            if (!(v >= 0))
                return ct_op_fail(ctx, CT_EINVAL,
                                  "label_prob: T[%lld, %lld] = %g must be "
                                  ">= 0",
                                  (long long)i, (long long)j, v);
            total += v;
        }
        if (!(fabs(total - 1.0) < 1e-5))
            return ct_op_fail(ctx, CT_EINVAL,
                              "label_prob: row %lld of T sums to %.9g, not "
                              "1 (tolerance 1e-5)",
                              (long long)i, total);
    }
    return CT_OK;
}

static int swl_run(ct_op_ctx_t *ctx)
{
    const struct swl_state *s = ctx->op->state;
    const ct_tensor_t *x, *t, *w = NULL;
    const void *xv, *tv, *wv = NULL;
    ct_tensor_t *p, *l;
    double loss = 0, wsum = 0;
    void *pv;
    int64_t n, d, i, j;
    bool f64;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &t)) != CT_OK ||
        (ctx->op->n_in > 2 && (rc = ct_op_input(ctx, 2, &w)) != CT_OK) ||
        (rc = ct__loss_want_real(ctx, 0, x)) != CT_OK ||
        (rc = swl_dims(ctx, x, &n, &d)) != CT_OK ||
        (rc = swl_check(ctx, x, t, w, 1, n, d)) != CT_OK)
        return rc;
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    tv = ct_tensor_cdata(t);
    if (w != NULL)
        wv = ct_tensor_cdata(w);
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &p)) != CT_OK ||
        (rc = ct_op_output(ctx, 1, x->dtype, 0, NULL, &l)) != CT_OK)
        return rc;
    pv = ct_tensor_data(p);
    for (i = 0; i < n && d > 0; i++) {
        const double wi = wv != NULL ? ct__loss_get(wv, f64, i) : 1.0;
        double mx = ct__loss_get(xv, f64, i * d), sum = 0, li = 0;
        for (j = 1; j < d; j++) {
            const double v = ct__loss_get(xv, f64, i * d + j);
            mx = v > mx ? v : mx;
        }
        for (j = 0; j < d; j++)
            sum += exp(ct__loss_get(xv, f64, i * d + j) - mx);
        for (j = 0; j < d; j++)
            ct__loss_set(pv, f64, i * d + j,
                         exp(ct__loss_get(xv, f64, i * d + j) - mx) / sum);
        /* The loss reads P as stored, like Caffe2. */
        if (!s->label_prob) {
            const double pj =
                ct__loss_get(pv, f64, i * d + ct__loss_label(t, i));
            li = -log(ct__loss_clamp(pj));
        } else {
            for (j = 0; j < d; j++) {
                const double pj = ct__loss_get(pv, f64, i * d + j);
                li -=
                    log(ct__loss_clamp(pj)) * ct__loss_get(tv, f64, i * d + j);
            }
        }
        loss += li * wi;
        wsum += wi;
    }
    if (wv == NULL)
        wsum = (double)n;
    ct__loss_set(ct_tensor_data(l), f64, 0,
                 wsum != 0 && d > 0 ? loss * s->scale / wsum : 0.0);
    return CT_OK;
}

static int swl_grad_run(ct_op_ctx_t *ctx)
{
    const struct swl_state *s = ctx->op->state;
    const ct_tensor_t *x, *t, *w = NULL, *p, *dl;
    const void *tv, *wv = NULL, *pv;
    char s1[128], s2[128];
    ct_tensor_t *dx;
    double wsum = 0, coef;
    void *dxv;
    int64_t n, d, i, j;
    const int pi = ctx->op->n_in - 2, li = ctx->op->n_in - 1;
    bool f64;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &t)) != CT_OK ||
        (ctx->op->n_in > 4 && (rc = ct_op_input(ctx, 2, &w)) != CT_OK) ||
        (rc = ct_op_input(ctx, pi, &p)) != CT_OK ||
        (rc = ct_op_input(ctx, li, &dl)) != CT_OK ||
        (rc = ct__loss_want_real(ctx, 0, x)) != CT_OK ||
        (rc = ct__loss_want_dtype(ctx, pi, p, x->dtype)) != CT_OK ||
        (rc = ct__loss_want_real(ctx, li, dl)) != CT_OK ||
        (rc = swl_dims(ctx, x, &n, &d)) != CT_OK ||
        (rc = swl_check(ctx, x, t, w, 1, n, d)) != CT_OK)
        return rc;
    if (!ct__loss_same_shape(p, x))
        return ct_op_fail(ctx, CT_ESHAPE, "P %s must have the shape of X %s",
                          ct_tensor_shape_str(p, s1, sizeof(s1)),
                          ct_tensor_shape_str(x, s2, sizeof(s2)));
    if ((rc = ct__loss_want_scalar(ctx, li, dl)) != CT_OK)
        return rc;
    f64 = x->dtype == CT_DTYPE_F64;
    tv = ct_tensor_cdata(t);
    pv = ct_tensor_cdata(p);
    if (w != NULL)
        wv = ct_tensor_cdata(w);
    for (i = 0; i < n; i++)
        wsum += wv != NULL ? ct__loss_get(wv, f64, i) : 1.0;
    coef = wsum != 0 ? s->scale * ct__loss_scalar(dl) / wsum : 0.0;
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &dx)) != CT_OK)
        return rc;
    dxv = ct_tensor_data(dx);
    for (i = 0; i < n; i++) {
        const double wi = (wv != NULL ? ct__loss_get(wv, f64, i) : 1.0) * coef;
        const int64_t label = s->label_prob ? -1 : ct__loss_label(t, i);
        for (j = 0; j < d; j++) {
            double v = ct__loss_get(pv, f64, i * d + j);
            if (s->label_prob)
                v -= ct__loss_get(tv, f64, i * d + j);
            else if (j == label)
                v -= 1.0;
            ct__loss_set(dxv, f64, i * d + j, v * wi);
        }
    }
    return CT_OK;
}

static int swl_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    out[0] = in[0];
    out[1].dtype = in[0].dtype;
    out[1].ndim = 0;
    return CT_OK;
}

/* {X, T, [W], P, dL} -> {dX} (Caffe2's GetSoftmaxWithLossGradient). X
 * gives the shape only; no gradient goes through P. */
static int swl_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *in[5], *out[1], *dl;
    int n = 0, rc;

    if (ct__grad_out(g, 0) != NULL)
        return ct_status_setf(st, CT_ENOTSUP,
                              "a gradient flows into its softmax output 0 "
                              "\"%s\"; SoftmaxWithLoss has a gradient only "
                              "through its loss output (as in Caffe2)",
                              g->def->output[0]);
    if ((rc = ct__grad_need_out(g, 1, &dl, st)) != CT_OK)
        return rc;
    in[n++] = g->def->input[0];
    in[n++] = ct__grad_fwd_in(g, 1);
    if (g->def->n_input > 2)
        in[n++] = ct__grad_fwd_in(g, 2);
    in[n++] = ct__grad_fwd_out(g, 0);
    in[n++] = dl;
    out[0] = ct__grad_in(g, 0);
    return ct__grad_emit(g, "SoftmaxWithLossGradient", in, n, out, 1, 0, NULL,
                         st);
}

static const struct ct_arg_spec swl_args[] = {
    {"scale", CT_ARG_FLOAT, false},  {"label_prob", CT_ARG_INT, false},
    {"axis", CT_ARG_INT, false},     {"spatial", CT_ARG_INT, false},
    {"order", CT_ARG_STRING, false}, {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_softmax_with_loss = {
    .name = "SoftmaxWithLoss",
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 2,
    .max_outputs = 2,
    .args = swl_args,
    .state_size = sizeof(struct swl_state),
    .init_cb = swl_init,
    .infer_cb = swl_infer,
    .run_cb = swl_run,
    .grad_cb = swl_grad_make,
    .doc = "P = softmax(X), L = weighted mean cross-entropy of P and T",
};

const struct ct_op_schema ct__op_softmax_with_loss_gradient = {
    .name = "SoftmaxWithLossGradient",
    .min_inputs = 4,
    .max_inputs = 5,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = swl_args,
    .state_size = sizeof(struct swl_state),
    .init_cb = swl_init,
    .infer_cb = ct__loss_grad_infer,
    .run_cb = swl_grad_run,
    .doc = "{X, T, [W], P, dL} -> {dX} of SoftmaxWithLoss",
};
