/* Losses and their gradients (Caffe2's squared_l2_distance_op,
 * reduction_ops (AveragedLoss) and cross_entropy_op (LabelCrossEntropy));
 * SoftmaxWithLoss is in ops/softmax_with_loss.c, and the helpers both
 * files share (element access, dtype, label and shape checks) are in
 * ops/loss.h and defined here.
 *
 * Dtypes: FLOAT and DOUBLE for the values (Caffe2's CPU kernels are float
 * only; DOUBLE is an extension that allows exact gradient checks); labels
 * INT32 or INT64. Sums accumulate in double. No op runs in place.
 * CT__LOSS_LOG_THRESHOLD = 1e-20 guards every log, as Caffe2's
 * kLOG_THRESHOLD.
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
 * Label errors (a class outside [0, D)) are CT_EINVAL naming the row and
 * value; shape errors CT_ESHAPE. The scalar dL of AveragedLossGradient may
 * be FLOAT or DOUBLE whatever X's dtype: the gradient builder seeds every
 * loss with a FLOAT ConstantFill (as Caffe2 does), so a DOUBLE loss still
 * gets its gradient. Gradient makers emit Caffe2's input lists.
 */
#include <math.h>
#include <string.h>

#include "ops/loss.h"

/* ---- shared checks (declared in ops/loss.h) ---- */

bool ct__loss_same_shape(const ct_tensor_t *a, const ct_tensor_t *b)
{
    return a->ndim == b->ndim &&
           (a->ndim == 0 ||
            memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof(int64_t)) == 0);
}

int ct__loss_want_real(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t)
{
    if (t->dtype == CT_DTYPE_F32 || t->dtype == CT_DTYPE_F64)
        return CT_OK;
    return ct_op_fail(ctx, CT_ENOTSUP,
                      "input %d \"%s\" is %s; FLOAT or DOUBLE expected", i,
                      ct_op_input_name(ctx->op, i), ct_dtype_name(t->dtype));
}

int ct__loss_want_dtype(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t,
                        ct_dtype_t dt)
{
    if (t->dtype == dt)
        return CT_OK;
    return ct_op_fail(ctx, CT_ETYPE, "input %d \"%s\" is %s; %s expected", i,
                      ct_op_input_name(ctx->op, i), ct_dtype_name(t->dtype),
                      ct_dtype_name(dt));
}

int ct__loss_want_labels(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t,
                         int64_t n, int64_t d)
{
    char s[128];
    int64_t row;

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
    for (row = 0; row < n; row++) {
        const int64_t label = ct__loss_label(t, row);
        if (label < 0 || label >= d)
            return ct_op_fail(ctx, CT_EINVAL,
                              "label %lld of row %lld is out of range [0, "
                              "%lld)",
                              (long long)label, (long long)row, (long long)d);
    }
    return CT_OK;
}

int ct__loss_want_scalar(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t)
{
    if (t->numel == 1)
        return CT_OK;
    return ct_op_fail(ctx, CT_ESHAPE,
                      "dLoss \"%s\" has %lld elements; a scalar expected",
                      ct_op_input_name(ctx->op, i), (long long)t->numel);
}

int ct__loss_want_rows(ct_op_ctx_t *ctx, const char *what, const ct_tensor_t *t,
                       int64_t n)
{
    if (t->numel == n)
        return CT_OK;
    return ct_op_fail(ctx, CT_ESHAPE,
                      "%s has %lld entries; one per row (%lld) expected", what,
                      (long long)t->numel, (long long)n);
}

int ct__loss_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                        ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

/* ---- helpers of this file ---- */

/* Inputs 0 .. n-1 into t[]: X (input 0) real, every other one of X's
 * dtype. */
static int inputs_like_x(ct_op_ctx_t *ctx, int n, const ct_tensor_t **t)
{
    int i, rc;

    for (i = 0; i < n; i++)
        if ((rc = ct_op_input(ctx, i, &t[i])) != CT_OK)
            return rc;
    if ((rc = ct__loss_want_real(ctx, 0, t[0])) != CT_OK)
        return rc;
    for (i = 1; i < n; i++)
        if ((rc = ct__loss_want_dtype(ctx, i, t[i], t[0]->dtype)) != CT_OK)
            return rc;
    return CT_OK;
}

/* infer_cb of a per-row loss: [N] of X's dtype, where N is dims[0] when X
 * has more than min_ndim dims and 1 otherwise. */
static void rows_infer(const ct_shape_t *in, ct_shape_t *out, int min_ndim)
{
    out[0].dtype = in[0].dtype;
    if (in[0].ndim >= 0) {
        out[0].ndim = 1;
        out[0].dims[0] = in[0].ndim > min_ndim ? in[0].dims[0] : 1;
    }
}

/* {X, Y|label, dOut} -> {dX[, dY]}: the maker of a two-input loss whose
 * gradient op reads both forward inputs and the output's gradient. */
static int emit_two_input_grad(struct ct__grad_ctx *g, const char *type,
                               int n_out, ct_status_t *st)
{
    const char *in[3], *out[2];
    int i;

    in[0] = ct__grad_fwd_in(g, 0);
    in[1] = ct__grad_fwd_in(g, 1);
    in[2] = ct__grad_out(g, 0);
    for (i = 0; i < n_out; i++)
        out[i] = ct__grad_in(g, i);
    return ct__grad_emit(g, type, in, 3, out, n_out, 0, NULL, st);
}

/* ---- SquaredL2Distance ---- */

/* dims[0] or 1 for a 0-d tensor: the rows of a per-row loss. */
static int64_t rows_of(const ct_tensor_t *t)
{
    return t->ndim > 0 ? t->dims[0] : 1;
}

static int sql2_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *in[2];
    const void *xv, *yv;
    ct_tensor_t *d;
    char s1[128], s2[128];
    int64_t n, cols, i, j;
    bool f64;
    int rc;

    if ((rc = inputs_like_x(ctx, 2, in)) != CT_OK)
        return rc;
    if (!ct__loss_same_shape(in[0], in[1]))
        return ct_op_fail(ctx, CT_ESHAPE, "X %s and Y %s must have one shape",
                          ct_tensor_shape_str(in[0], s1, sizeof(s1)),
                          ct_tensor_shape_str(in[1], s2, sizeof(s2)));
    n = rows_of(in[0]);
    cols = n > 0 ? in[0]->numel / n : 0;
    f64 = in[0]->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(in[0]);
    yv = ct_tensor_cdata(in[1]);
    if ((rc = ct_op_output(ctx, 0, in[0]->dtype, 1, &n, &d)) != CT_OK)
        return rc;
    for (i = 0; i < n; i++) {
        double acc = 0;
        for (j = 0; j < cols; j++) {
            double diff = ct__loss_get(xv, f64, i * cols + j) -
                          ct__loss_get(yv, f64, i * cols + j);
            acc += diff * diff;
        }
        ct__loss_set(ct_tensor_data(d), f64, i, 0.5 * acc);
    }
    return CT_OK;
}

static int sql2_grad_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *in[3], *x;
    const void *xv, *yv, *ddv;
    ct_tensor_t *dx, *dy = NULL;
    char s1[128], s2[128];
    int64_t n, cols, i, j;
    bool f64;
    int rc;

    if ((rc = inputs_like_x(ctx, 3, in)) != CT_OK)
        return rc;
    x = in[0];
    n = rows_of(x);
    if (!ct__loss_same_shape(x, in[1]) || in[2]->numel != n)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "X %s and Y %s must have one shape, and dDistance "
                          "%lld entries (one per row)",
                          ct_tensor_shape_str(x, s1, sizeof(s1)),
                          ct_tensor_shape_str(in[1], s2, sizeof(s2)),
                          (long long)n);
    cols = n > 0 ? x->numel / n : 0;
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    yv = ct_tensor_cdata(in[1]);
    ddv = ct_tensor_cdata(in[2]);
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &dx)) != CT_OK ||
        (ctx->op->n_out > 1 &&
         (rc = ct_op_output(ctx, 1, x->dtype, x->ndim, x->dims, &dy)) != CT_OK))
        return rc;
    for (i = 0; i < n; i++) {
        const double g = ct__loss_get(ddv, f64, i);
        for (j = 0; j < cols; j++) {
            const int64_t e = i * cols + j;
            const double v =
                (ct__loss_get(xv, f64, e) - ct__loss_get(yv, f64, e)) * g;
            ct__loss_set(ct_tensor_data(dx), f64, e, v);
            if (dy != NULL)
                ct__loss_set(ct_tensor_data(dy), f64, e, -v);
        }
    }
    return CT_OK;
}

static int sql2_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    rows_infer(in, out, 0);
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
    return emit_two_input_grad(g, "SquaredL2DistanceGradient", 2, st);
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
        (rc = ct__loss_want_real(ctx, 0, x)) != CT_OK)
        return rc;
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    for (i = 0; i < x->numel; i++)
        acc += ct__loss_get(xv, f64, i);
    if ((rc = ct_op_output(ctx, 0, x->dtype, 0, NULL, &l)) != CT_OK)
        return rc;
    ct__loss_set(ct_tensor_data(l), f64, 0,
                 x->numel > 0 ? acc / (double)x->numel : 0);
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
        (rc = ct__loss_want_real(ctx, 0, x)) != CT_OK ||
        (rc = ct__loss_want_real(ctx, 1, dl)) != CT_OK ||
        (rc = ct__loss_want_scalar(ctx, 1, dl)) != CT_OK)
        return rc;
    f64 = x->dtype == CT_DTYPE_F64;
    g = ct__loss_scalar(dl);
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &dx)) != CT_OK)
        return rc;
    for (i = 0; i < x->numel; i++)
        ct__loss_set(ct_tensor_data(dx), f64, i, g / (double)x->numel);
    return CT_OK;
}

static int avg_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    out[0].dtype = in[0].dtype;
    out[0].ndim = 0;
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
    .infer_cb = ct__loss_grad_infer,
    .run_cb = avg_grad_run,
    .doc = "dX = dL / numel(X)",
};

/* ---- LabelCrossEntropy ---- */

/* X (1-D: one row; 2-D: [N, D]) and its labels, checked; *n rows of *d
 * classes. */
static int lce_inputs(ct_op_ctx_t *ctx, const ct_tensor_t **x,
                      const ct_tensor_t **label, int64_t *n, int64_t *d)
{
    int rc;

    if ((rc = ct_op_input(ctx, 0, x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, label)) != CT_OK ||
        (rc = ct__loss_want_real(ctx, 0, *x)) != CT_OK)
        return rc;
    if ((*x)->ndim > 2)
        return ct_op_fail(ctx, CT_ESHAPE, "X must be 1-D or 2-D, got %d-D",
                          (*x)->ndim);
    if ((*x)->ndim > 1) {
        *n = (*x)->dims[0];
        *d = *n > 0 ? (*x)->numel / *n : 0;
    } else {
        *n = 1;
        *d = (*x)->numel;
    }
    return ct__loss_want_labels(ctx, 1, *label, *n, *d);
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
        double p = ct__loss_get(xv, f64, i * d + ct__loss_label(label, i));
        ct__loss_set(ct_tensor_data(y), f64, i, -log(ct__loss_clamp(p)));
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
        (rc = ct__loss_want_dtype(ctx, 2, dy, x->dtype)) != CT_OK ||
        (rc = ct__loss_want_rows(ctx, "dY", dy, n)) != CT_OK)
        return rc;
    f64 = x->dtype == CT_DTYPE_F64;
    xv = ct_tensor_cdata(x);
    dyv = ct_tensor_cdata(dy);
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &dx)) != CT_OK)
        return rc;
    if (dx->numel > 0)
        memset(ct_tensor_data(dx), 0, ct_tensor_nbytes(dx));
    for (i = 0; i < n; i++) {
        const int64_t e = i * d + ct__loss_label(label, i);
        const double p = ct__loss_get(xv, f64, e);
        ct__loss_set(ct_tensor_data(dx), f64, e,
                     -ct__loss_get(dyv, f64, i) / ct__loss_clamp(p));
    }
    return CT_OK;
}

static int lce_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    rows_infer(in, out, 1);
    return CT_OK;
}

/* {X, label, dY} -> {dX} */
static int lce_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return emit_two_input_grad(g, "LabelCrossEntropyGradient", 1, st);
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
    .infer_cb = ct__loss_grad_infer,
    .run_cb = lce_grad_run,
    .doc = "{X, label, dY} -> {dX} of LabelCrossEntropy",
};
