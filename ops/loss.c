/* Losses and their gradients (Caffe2's squared_l2_distance_op,
 * reduction_ops (AveragedLoss), cross_entropy_op (LabelCrossEntropy) and
 * softmax_with_loss_op).
 *
 * Dtypes: FLOAT and DOUBLE for the values (Caffe2's CPU kernels are float
 * only; DOUBLE is an extension that allows exact gradient checks); labels
 * INT32 or INT64. Sums accumulate in double. No op runs in place.
 * LOG_THRESHOLD = 1e-20 guards every log, as Caffe2's kLOG_THRESHOLD.
 *
 * SquaredL2Distance: X, Y of the same shape -> D [N], N = dim 0 (1 for a
 *   0-d input): D_i = 0.5 * sum_j (X_ij - Y_ij)^2.
 *   SquaredL2DistanceGradient {X, Y, dD} -> {dX, dY}:
 *   dX_ij = (X_ij - Y_ij) * dD_i, dY = -dX.
 * AveragedLoss: X (any shape) -> L, a 0-d scalar: the mean of X (0 for an
 *   empty X, where Caffe2 divides by zero).
 *   AveragedLossGradient {X, dL} -> {dX}: dX = dL / numel(X) everywhere.
 * LabelCrossEntropy: X [N, D] (a 1-D X is one row) of probabilities,
 *   label of N entries -> Y [N], Y_i = -log(max(X_i,label_i, 1e-20)).
 *   LabelCrossEntropyGradient {X, label, dY} -> {dX}: 0 except
 *   dX_i,label_i = -dY_i / max(X_i,label_i, 1e-20).
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
 *   label_prob, P_ij - T_ij); dX = 0 when the weights sum to 0.
 * Label errors (a class outside [0, D), a probability row not summing to
 * 1) are CT_EINVAL naming the row and value; shape errors CT_ESHAPE.
 * The scalar dL of AveragedLossGradient and SoftmaxWithLossGradient may
 * be FLOAT or DOUBLE whatever X's dtype: the gradient builder seeds every
 * loss with a FLOAT ConstantFill (as Caffe2 does), so a DOUBLE loss still
 * gets its gradient.
 * Gradient makers emit Caffe2's input lists; SoftmaxWithLoss has no
 * gradient through its P output (CT_ENOTSUP when one flows into it).
 */
#include <math.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

#define LOG_THRESHOLD 1e-20

/* ---- helpers ---- */

static bool is_real(ct_dtype_t dt)
{
    return dt == CT_DTYPE_F32 || dt == CT_DTYPE_F64;
}

static double get_r(const void *p, bool f64, int64_t i)
{
    return f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static void set_r(void *p, bool f64, int64_t i, double v)
{
    if (f64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

static bool same_shape(const ct_tensor_t *a, const ct_tensor_t *b)
{
    return a->ndim == b->ndim &&
           (a->ndim == 0 ||
            memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof(int64_t)) == 0);
}

static int want_real(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t)
{
    if (is_real(t->dtype))
        return CT_OK;
    return ct_op_fail(ctx, CT_ENOTSUP,
                      "input %d \"%s\" is %s; FLOAT or DOUBLE expected", i,
                      ct_op_input_name(ctx->op, i), ct_dtype_name(t->dtype));
}

static int want_dtype(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t,
                      ct_dtype_t dt)
{
    if (t->dtype == dt)
        return CT_OK;
    return ct_op_fail(ctx, CT_ETYPE, "input %d \"%s\" is %s; %s expected", i,
                      ct_op_input_name(ctx->op, i), ct_dtype_name(t->dtype),
                      ct_dtype_name(dt));
}

/* Label i of an INT32 or INT64 tensor. */
static int64_t get_label(const ct_tensor_t *t, int64_t i)
{
    return t->dtype == CT_DTYPE_I64 ? CT_CDATA(t, int64_t)[i]
                                    : CT_CDATA(t, int32_t)[i];
}

static int want_labels(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t, int64_t n)
{
    char s[128];

    if (t->dtype != CT_DTYPE_I32 && t->dtype != CT_DTYPE_I64)
        return ct_op_fail(ctx, CT_ETYPE,
                          "label input %d \"%s\" is %s; INT32 or INT64 "
                          "expected",
                          i, ct_op_input_name(ctx->op, i),
                          ct_dtype_name(t->dtype));
    if (t->numel != n)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "label input %d \"%s\" %s has %lld entries; one "
                          "per row (%lld) expected",
                          i, ct_op_input_name(ctx->op, i),
                          ct_tensor_shape_str(t, s, sizeof(s)),
                          (long long)t->numel, (long long)n);
    return CT_OK;
}

static int check_label(ct_op_ctx_t *ctx, int64_t row, int64_t label, int64_t d)
{
    if (label >= 0 && label < d)
        return CT_OK;
    return ct_op_fail(ctx, CT_EINVAL,
                      "label %lld of row %lld is out of range [0, %lld)",
                      (long long)label, (long long)row, (long long)d);
}

/* dims[0] or 1 for a 0-d tensor: the rows of a per-row loss. */
static int64_t rows_of(const ct_tensor_t *t)
{
    return t->ndim > 0 ? t->dims[0] : 1;
}

/* ---- SquaredL2Distance ---- */

static int sql2_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *x, *y;
    const void *xv, *yv;
    ct_tensor_t *d;
    char s1[128], s2[128];
    int64_t n, cols, i, j;
    bool f64;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &y)) != CT_OK ||
        (rc = want_real(ctx, 0, x)) != CT_OK ||
        (rc = want_dtype(ctx, 1, y, x->dtype)) != CT_OK)
        return rc;
    if (!same_shape(x, y))
        return ct_op_fail(ctx, CT_ESHAPE, "X %s and Y %s must have one shape",
                          ct_tensor_shape_str(x, s1, sizeof(s1)),
                          ct_tensor_shape_str(y, s2, sizeof(s2)));
    n = rows_of(x);
    cols = n > 0 ? x->numel / n : 0;
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    yv = ct_tensor_cdata(y);
    if ((rc = ct_op_output(ctx, 0, x->dtype, 1, &n, &d)) != CT_OK)
        return rc;
    for (i = 0; i < n; i++) {
        double acc = 0;
        for (j = 0; j < cols; j++) {
            double diff =
                get_r(xv, f64, i * cols + j) - get_r(yv, f64, i * cols + j);
            acc += diff * diff;
        }
        set_r(ct_tensor_data(d), f64, i, 0.5 * acc);
    }
    return CT_OK;
}

static int sql2_grad_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *x, *y, *dd;
    const void *xv, *yv, *ddv;
    ct_tensor_t *dx, *dy = NULL;
    char s1[128], s2[128];
    int64_t n, cols, i, j;
    bool f64;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &y)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &dd)) != CT_OK ||
        (rc = want_real(ctx, 0, x)) != CT_OK ||
        (rc = want_dtype(ctx, 1, y, x->dtype)) != CT_OK ||
        (rc = want_dtype(ctx, 2, dd, x->dtype)) != CT_OK)
        return rc;
    n = rows_of(x);
    if (!same_shape(x, y) || dd->numel != n)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "X %s and Y %s must have one shape, and dDistance "
                          "%lld entries (one per row)",
                          ct_tensor_shape_str(x, s1, sizeof(s1)),
                          ct_tensor_shape_str(y, s2, sizeof(s2)), (long long)n);
    cols = n > 0 ? x->numel / n : 0;
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    yv = ct_tensor_cdata(y);
    ddv = ct_tensor_cdata(dd);
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &dx)) != CT_OK ||
        (ctx->op->n_out > 1 &&
         (rc = ct_op_output(ctx, 1, x->dtype, x->ndim, x->dims, &dy)) != CT_OK))
        return rc;
    for (i = 0; i < n; i++) {
        const double g = get_r(ddv, f64, i);
        for (j = 0; j < cols; j++) {
            const int64_t e = i * cols + j;
            const double v = (get_r(xv, f64, e) - get_r(yv, f64, e)) * g;
            set_r(ct_tensor_data(dx), f64, e, v);
            if (dy != NULL)
                set_r(ct_tensor_data(dy), f64, e, -v);
        }
    }
    return CT_OK;
}

static int sql2_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    out[0].dtype = in[0].dtype;
    if (in[0].ndim >= 0) {
        out[0].ndim = 1;
        out[0].dims[0] = in[0].ndim > 0 ? in[0].dims[0] : 1;
    }
    return CT_OK;
}

static int sql2_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                           ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[0];
    if (op->n_out > 1)
        out[1] = in[0];
    return CT_OK;
}

/* {X, Y, dD} -> {dX, dY} */
static int sql2_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *in[3], *out[2];

    in[0] = ct__grad_fwd_in(g, 0);
    in[1] = ct__grad_fwd_in(g, 1);
    in[2] = ct__grad_out(g, 0);
    out[0] = ct__grad_in(g, 0);
    out[1] = ct__grad_in(g, 1);
    return ct__grad_emit(g, "SquaredL2DistanceGradient", in, 3, out, 2, 0, NULL,
                         st);
}

const struct ct_op_schema ct__op_squared_l2_distance = {
    .name = "SquaredL2Distance",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer_cb = sql2_infer,
    .run_cb = sql2_run,
    .grad_cb = sql2_grad_make,
    .doc = "D_i = 0.5 * ||X_i - Y_i||^2 per row",
};

const struct ct_op_schema ct__op_squared_l2_distance_gradient = {
    .name = "SquaredL2DistanceGradient",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 2,
    .infer_cb = sql2_grad_infer,
    .run_cb = sql2_grad_run,
    .doc = "{X, Y, dD} -> {dX, dY} of SquaredL2Distance",
};

/* ---- AveragedLoss ---- */

static int avg_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *x;
    const void *xv;
    ct_tensor_t *l;
    double acc = 0;
    int64_t i;
    bool f64;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = want_real(ctx, 0, x)) != CT_OK)
        return rc;
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    for (i = 0; i < x->numel; i++)
        acc += get_r(xv, f64, i);
    if ((rc = ct_op_output(ctx, 0, x->dtype, 0, NULL, &l)) != CT_OK)
        return rc;
    set_r(ct_tensor_data(l), f64, 0, x->numel > 0 ? acc / (double)x->numel : 0);
    return CT_OK;
}

static int avg_grad_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *x, *dl;
    ct_tensor_t *dx;
    int64_t i;
    double g;
    bool f64;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &dl)) != CT_OK ||
        (rc = want_real(ctx, 0, x)) != CT_OK ||
        (rc = want_real(ctx, 1, dl)) != CT_OK)
        return rc;
    if (dl->numel != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "dLoss \"%s\" has %lld elements; a scalar expected",
                          ct_op_input_name(ctx->op, 1), (long long)dl->numel);
    f64 = x->dtype == CT_DTYPE_F64;
    g = get_r(ct_tensor_cdata(dl), dl->dtype == CT_DTYPE_F64, 0);
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &dx)) != CT_OK)
        return rc;
    for (i = 0; i < x->numel; i++)
        set_r(ct_tensor_data(dx), f64, i, g / (double)x->numel);
    return CT_OK;
}

static int avg_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    out[0].dtype = in[0].dtype;
    out[0].ndim = 0;
    return CT_OK;
}

static int avg_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                          ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

/* {X, dL} -> {dX}; X gives the shape only. */
static int avg_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *in[2], *out[1];

    in[0] = g->def->input[0];
    in[1] = ct__grad_out(g, 0);
    out[0] = ct__grad_in(g, 0);
    return ct__grad_emit(g, "AveragedLossGradient", in, 2, out, 1, 0, NULL, st);
}

const struct ct_op_schema ct__op_averaged_loss = {
    .name = "AveragedLoss",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer_cb = avg_infer,
    .run_cb = avg_run,
    .grad_cb = avg_grad_make,
    .doc = "L = mean(X), a scalar",
};

const struct ct_op_schema ct__op_averaged_loss_gradient = {
    .name = "AveragedLossGradient",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer_cb = avg_grad_infer,
    .run_cb = avg_grad_run,
    .doc = "dX = dL / numel(X)",
};

/* ---- LabelCrossEntropy ---- */

/* Rows and classes of a LabelCrossEntropy X. */
static void lce_dims(const ct_tensor_t *x, int64_t *n, int64_t *d)
{
    if (x->ndim > 1) {
        *n = x->dims[0];
        *d = *n > 0 ? x->numel / *n : 0;
    } else {
        *n = 1;
        *d = x->numel;
    }
}

static int lce_inputs(ct_op_ctx_t *ctx, const ct_tensor_t **x,
                      const ct_tensor_t **label, int64_t *n, int64_t *d)
{
    int64_t i;
    int rc;

    if ((rc = ct_op_input(ctx, 0, x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, label)) != CT_OK ||
        (rc = want_real(ctx, 0, *x)) != CT_OK)
        return rc;
    if ((*x)->ndim > 2)
        return ct_op_fail(ctx, CT_ESHAPE, "X must be 1-D or 2-D, got %d-D",
                          (*x)->ndim);
    lce_dims(*x, n, d);
    if ((rc = want_labels(ctx, 1, *label, *n)) != CT_OK)
        return rc;
    for (i = 0; i < *n; i++)
        if ((rc = check_label(ctx, i, get_label(*label, i), *d)) != CT_OK)
            return rc;
    return CT_OK;
}

static int lce_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *x, *label;
    const void *xv;
    ct_tensor_t *y;
    int64_t n, d, i;
    bool f64;
    int rc;

    if ((rc = lce_inputs(ctx, &x, &label, &n, &d)) != CT_OK)
        return rc;
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    if ((rc = ct_op_output(ctx, 0, x->dtype, 1, &n, &y)) != CT_OK)
        return rc;
    for (i = 0; i < n; i++) {
        double p = get_r(xv, f64, i * d + get_label(label, i));
        set_r(ct_tensor_data(y), f64, i,
              -log(p > LOG_THRESHOLD ? p : LOG_THRESHOLD));
    }
    return CT_OK;
}

static int lce_grad_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *x, *label, *dy;
    const void *xv, *dyv;
    ct_tensor_t *dx;
    int64_t n, d, i;
    bool f64;
    int rc;

    if ((rc = lce_inputs(ctx, &x, &label, &n, &d)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &dy)) != CT_OK ||
        (rc = want_dtype(ctx, 2, dy, x->dtype)) != CT_OK)
        return rc;
    if (dy->numel != n)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "dY has %lld entries; one per row (%lld) expected",
                          (long long)dy->numel, (long long)n);
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    dyv = ct_tensor_cdata(dy);
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &dx)) != CT_OK)
        return rc;
    if (dx->numel > 0)
        memset(ct_tensor_data(dx), 0, ct_tensor_nbytes(dx));
    for (i = 0; i < n; i++) {
        const int64_t e = i * d + get_label(label, i);
        double p = get_r(xv, f64, e);
        set_r(ct_tensor_data(dx), f64, e,
              -get_r(dyv, f64, i) / (p > LOG_THRESHOLD ? p : LOG_THRESHOLD));
    }
    return CT_OK;
}

static int lce_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    out[0].dtype = in[0].dtype;
    if (in[0].ndim >= 0) {
        out[0].ndim = 1;
        out[0].dims[0] = in[0].ndim > 1 ? in[0].dims[0] : 1;
    }
    return CT_OK;
}

static int lce_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                          ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

/* {X, label, dY} -> {dX} */
static int lce_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *in[3], *out[1];

    in[0] = ct__grad_fwd_in(g, 0);
    in[1] = ct__grad_fwd_in(g, 1);
    in[2] = ct__grad_out(g, 0);
    out[0] = ct__grad_in(g, 0);
    return ct__grad_emit(g, "LabelCrossEntropyGradient", in, 3, out, 1, 0, NULL,
                         st);
}

const struct ct_op_schema ct__op_label_cross_entropy = {
    .name = "LabelCrossEntropy",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer_cb = lce_infer,
    .run_cb = lce_run,
    .grad_cb = lce_grad_make,
    .doc = "Y_i = -log(X_i,label_i)",
};

const struct ct_op_schema ct__op_label_cross_entropy_gradient = {
    .name = "LabelCrossEntropyGradient",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer_cb = lce_grad_infer,
    .run_cb = lce_grad_run,
    .doc = "{X, label, dY} -> {dX} of LabelCrossEntropy",
};

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

    if (w != NULL) {
        if ((rc = want_dtype(ctx, 2, w, x->dtype)) != CT_OK)
            return rc;
        if (w->numel != n)
            return ct_op_fail(ctx, CT_ESHAPE,
                              "weight input has %lld entries; one per row "
                              "(%lld) expected",
                              (long long)w->numel, (long long)n);
    }
    if (!s->label_prob) {
        if ((rc = want_labels(ctx, ti, t, n)) != CT_OK)
            return rc;
        for (i = 0; i < n; i++)
            if ((rc = check_label(ctx, i, get_label(t, i), d)) != CT_OK)
                return rc;
        return CT_OK;
    }
    if ((rc = want_dtype(ctx, ti, t, x->dtype)) != CT_OK)
        return rc;
    if (t->numel != n * d)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "label_prob: T has %lld entries; N * D = %lld * "
                          "%lld expected",
                          (long long)t->numel, (long long)n, (long long)d);
    for (i = 0; i < n; i++) {
        double total = 0;
        for (j = 0; j < d; j++) {
            const double v = get_r(ct_tensor_cdata(t), f64, i * d + j);
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
        (rc = want_real(ctx, 0, x)) != CT_OK ||
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
        const double wi = wv != NULL ? get_r(wv, f64, i) : 1.0;
        double mx = get_r(xv, f64, i * d), sum = 0, li = 0;
        for (j = 1; j < d; j++) {
            const double v = get_r(xv, f64, i * d + j);
            mx = v > mx ? v : mx;
        }
        for (j = 0; j < d; j++)
            sum += exp(get_r(xv, f64, i * d + j) - mx);
        for (j = 0; j < d; j++)
            set_r(pv, f64, i * d + j,
                  exp(get_r(xv, f64, i * d + j) - mx) / sum);
        /* The loss reads P as stored, like Caffe2. */
        if (!s->label_prob) {
            const double pj = get_r(pv, f64, i * d + get_label(t, i));
            li = -log(pj > LOG_THRESHOLD ? pj : LOG_THRESHOLD);
        } else {
            for (j = 0; j < d; j++) {
                const double pj = get_r(pv, f64, i * d + j);
                li -= log(pj > LOG_THRESHOLD ? pj : LOG_THRESHOLD) *
                      get_r(tv, f64, i * d + j);
            }
        }
        loss += li * wi;
        wsum += wi;
    }
    if (wv == NULL)
        wsum = (double)n;
    set_r(ct_tensor_data(l), f64, 0,
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
        (rc = want_real(ctx, 0, x)) != CT_OK ||
        (rc = want_dtype(ctx, pi, p, x->dtype)) != CT_OK ||
        (rc = want_real(ctx, li, dl)) != CT_OK ||
        (rc = swl_dims(ctx, x, &n, &d)) != CT_OK ||
        (rc = swl_check(ctx, x, t, w, 1, n, d)) != CT_OK)
        return rc;
    if (!same_shape(p, x))
        return ct_op_fail(ctx, CT_ESHAPE, "P %s must have the shape of X %s",
                          ct_tensor_shape_str(p, s1, sizeof(s1)),
                          ct_tensor_shape_str(x, s2, sizeof(s2)));
    if (dl->numel != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "dLoss \"%s\" has %lld elements; a scalar expected",
                          ct_op_input_name(ctx->op, li), (long long)dl->numel);
    f64 = x->dtype == CT_DTYPE_F64;
    tv = ct_tensor_cdata(t);
    pv = ct_tensor_cdata(p);
    if (w != NULL)
        wv = ct_tensor_cdata(w);
    for (i = 0; i < n; i++)
        wsum += wv != NULL ? get_r(wv, f64, i) : 1.0;
    coef = wsum != 0
               ? s->scale *
                     get_r(ct_tensor_cdata(dl), dl->dtype == CT_DTYPE_F64, 0) /
                     wsum
               : 0.0;
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &dx)) != CT_OK)
        return rc;
    dxv = ct_tensor_data(dx);
    for (i = 0; i < n; i++) {
        const double wi = (wv != NULL ? get_r(wv, f64, i) : 1.0) * coef;
        const int64_t label = s->label_prob ? -1 : get_label(t, i);
        for (j = 0; j < d; j++) {
            double v = get_r(pv, f64, i * d + j);
            if (s->label_prob)
                v -= get_r(tv, f64, i * d + j);
            else if (j == label)
                v -= 1.0;
            set_r(dxv, f64, i * d + j, v * wi);
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

static int swl_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                          ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[0];
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
    .infer_cb = swl_grad_infer,
    .run_cb = swl_grad_run,
    .doc = "{X, T, [W], P, dL} -> {dX} of SoftmaxWithLoss",
};
