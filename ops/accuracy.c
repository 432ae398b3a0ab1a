/* Accuracy: the fraction of rows whose label is among the top_k scores.
 *
 * Math: X [N, D] scores, label [N] class indices. Row i counts as correct
 * when fewer than top_k entries rank above its label's entry, where j
 * ranks above the label l when x[i, j] > x[i, l], or when they are equal
 * and j < l (a stable sort by score, as Caffe2 ranks). Y = correct / N, a
 * 0-d FLOAT (NaN when N = 0, as Caffe2's 0 / 0).
 * Inputs: X FLOAT [N, D], label INT32 [N]. Output: Y FLOAT, 0-d.
 * Attr: top_k (int, 1, >= 1; Caffe2 does not check, and top_k <= 0 counts
 * nothing). A label outside [0, D) is CT_EINVAL naming the row (Caffe2
 * reads out of bounds). No in-place.
 */
#include <math.h>

#include "ops/op_impl.h"

struct accuracy_state {
    int32_t top_k;
};

/* Correct rows among [r0, r1); *bad receives the first row whose label is
 * out of range (or -1). */
static int64_t accuracy_rows(const float *x, const int32_t *label, int64_t d,
                             int32_t top_k, int64_t r0, int64_t r1,
                             int64_t *bad)
{
    int64_t correct = 0, r, j;

    *bad = -1;
    for (r = r0; r < r1; r++) {
        const int32_t l = label[r];
        const float *xr = x + r * d;
        float lv;
        int64_t above = 0;
        if (l < 0 || l >= d) {
            *bad = r;
            return correct;
        }
        lv = xr[l];
        for (j = 0; j < d && above < top_k; j++)
            if (xr[j] > lv || (xr[j] == lv && j < l))
                above++;
        if (above < top_k)
            correct++;
    }
    return correct;
}

static int accuracy_check(int xn, const int64_t *xd, int ln, const int64_t *ld,
                          ct_status_t *st)
{
    char b1[128], b2[128];

    if (xn != 2 || ln != 1 || ld[0] != xd[0])
        return ct_status_setf(st, CT_ESHAPE,
                              "want X [N, D] and label [N], got X %s and "
                              "label %s",
                              ct_dims_str(xn, xd, b1, sizeof(b1)),
                              ct_dims_str(ln, ld, b2, sizeof(b2)));
    return CT_OK;
}

static int accuracy_run(ct_op_ctx_t *ctx)
{
    const struct accuracy_state *s = ctx->op->state;
    const ct_tensor_t *x, *label;
    ct_tensor_t *y;
    ct_status_t lst;
    const int64_t no_dims[1] = {0};
    int64_t correct = 0, bad = -1;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &label)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP, "unsupported dtype %s for X (FLOAT)",
                          ct_dtype_name(x->dtype));
    if (label->dtype != CT_DTYPE_I32)
        return ct_op_fail(ctx, CT_ETYPE, "label \"%s\" is %s, want INT32",
                          ct_op_input_name(ctx->op, 1),
                          ct_dtype_name(label->dtype));
    ct_status_clear(&lst);
    rc = accuracy_check(x->ndim, x->dims, label->ndim, label->dims, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    if (x->dims[0] > 0)
        correct = accuracy_rows(CT_CDATA(x, float), CT_CDATA(label, int32_t),
                                x->dims[1], s->top_k, 0, x->dims[0], &bad);
    if (bad >= 0)
        return ct_op_fail(ctx, CT_EINVAL,
                          "label %d of row %lld is outside [0, %lld) (X has "
                          "%lld classes)",
                          (int)CT_CDATA(label, int32_t)[bad], (long long)bad,
                          (long long)x->dims[1], (long long)x->dims[1]);
    if ((rc = ct_op_output(ctx, 0, CT_DTYPE_F32, 0, no_dims, &y)) != CT_OK)
        return rc;
    CT_DATA(y, float)
    [0] = x->dims[0] > 0 ? (float)((double)correct / (double)x->dims[0]) : NAN;
    return CT_OK;
}

static int accuracy_init(ct_op_t *op, ct_status_t *st)
{
    struct accuracy_state *s = op->state;
    int rc;

    if ((rc = ct__arg_int32(op, "top_k", 1, &s->top_k, st)) != CT_OK)
        return rc;
    if (s->top_k < 1)
        return ct_status_setf(st, CT_EARG, "top_k must be >= 1, got %d",
                              (int)s->top_k);
    return CT_OK;
}

static int accuracy_infer(const ct_op_t *op, const ct_shape_t *in,
                          ct_shape_t *out, ct_status_t *st)
{
    out[0].dtype = CT_DTYPE_F32;
    out[0].ndim = 0;
    if (in[0].ndim < 0 || in[1].ndim < 0)
        return CT_OK;
    return accuracy_check(in[0].ndim, in[0].dims, in[1].ndim, in[1].dims, st);
}

/* One comparison per score. */
static double accuracy_cost(const ct_op_t *op, const ct_shape_t *in)
{
    if (in[0].ndim != 2)
        return 0;
    return (double)in[0].dims[0] * (double)in[0].dims[1];
}

static const struct ct_arg_spec accuracy_args[] = {
    {"top_k", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_accuracy = {
    .name = "Accuracy",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = accuracy_args,
    .state_size = sizeof(struct accuracy_state),
    .init_cb = accuracy_init,
    .infer_cb = accuracy_infer,
    .run_cb = accuracy_run,
    .cost_cb = accuracy_cost,
    .doc = "fraction of rows whose label is in the top_k scores",
};
