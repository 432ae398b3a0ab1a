/* Local response normalization across channels: LRN.
 *
 * Math, for every element x of channel c (AlexNet's LRN, Caffe's
 * ACROSS_CHANNELS mode):
 *   scale = bias + (alpha / size) * sum of x'^2 over the channels
 *           c - pre_pad .. c - pre_pad + size - 1 (those that exist),
 *   y = x * scale^(-beta),  pre_pad = (size - 1) / 2.
 * The window sums run along the channels in double (Caffe2's kernels
 * keep the running sum in float, which drifts a little with C).
 * Input X, 4-d: [N, C, H, W] (order "NCHW") or [N, H, W, C] ("NHWC").
 * Outputs: Y of X's shape and, optionally, the scale tensor of X's shape
 * (Caffe2's second output, kept for LRNGradient).
 * Attrs: size (int, required in effect: odd and >= 1), alpha (float, 0),
 * beta (float, 0), bias (float, 1), order ("NCHW" | "NHWC"). Caffe2 only
 * DCHECKs size > 0, odd, alpha > 0 and beta > 0; cortado rejects a size
 * that is not odd and positive (CT_EARG) and accepts any finite alpha and
 * beta (alpha = 0 or beta = 0 give y = x * bias^-beta and y = x).
 * FLOAT only (Caffe2's CPU kernel); others CT_ENOTSUP. No in-place (Y is
 * written while X is still read).
 *
 * The kernel computes pixel rows [r0, r1) of the [N * H * W] pixels, so
 * ct_parallel_for can split them.
 */
#include <math.h>
#include <string.h>

#include "ops/op_impl.h"

struct lrn_state {
    int32_t size, pre_pad;
    float alpha, beta, bias;
    bool nhwc;
};

struct lrn_job {
    const float *x;
    float *y, *scale; /* scale may be NULL */
    int64_t c, hw;    /* channels, pixels per image */
    bool nhwc;
    const struct lrn_state *s;
};

/* scale^-beta; beta = 0.75 (AlexNet, GoogLeNet) takes two square roots
 * instead of pow. */
static inline double lrn_pow(double sc, float beta)
{
    if (beta == 0.75f) {
        const double r = 1.0 / sqrt(sc);
        return r * sqrt(r);
    }
    return pow(sc, -(double)beta);
}

/* Pixels per block of the NCHW kernel: the window sums of one block live
 * on the stack (2 KiB). */
#define LRN_BLOCK 256

/* NCHW: pixels [p0, p1) of the N * HW pixels, in blocks that do not cross
 * an image. Channel c's window sum is the previous one plus the channel
 * entering the window and minus the one leaving it (in double). */
static void lrn_nchw(const struct lrn_job *j, int64_t p0, int64_t p1)
{
    const struct lrn_state *s = j->s;
    const double k = (double)s->alpha / s->size;
    double acc[LRN_BLOCK];
    int64_t p = p0, c, i, m;

    while (p < p1) {
        const int64_t n = p / j->hw, pix = p % j->hw;
        const int64_t img = n * j->c * j->hw;
        m = p1 - p;
        m = m < LRN_BLOCK ? m : LRN_BLOCK;
        m = m < j->hw - pix ? m : j->hw - pix;
        for (i = 0; i < m; i++)
            acc[i] = 0;
        /* Channels 0 .. size - pre_pad - 2 enter before channel 0. */
        for (c = 0; c < s->size - s->pre_pad - 1 && c < j->c; c++) {
            const float *xs = j->x + img + c * j->hw + pix;
            for (i = 0; i < m; i++)
                acc[i] += (double)xs[i] * xs[i];
        }
        for (c = 0; c < j->c; c++) {
            const int64_t in = c + s->size - s->pre_pad - 1;
            const int64_t out = c - s->pre_pad - 1;
            const int64_t at = img + c * j->hw + pix;
            if (in < j->c) {
                const float *xs = j->x + img + in * j->hw + pix;
                for (i = 0; i < m; i++)
                    acc[i] += (double)xs[i] * xs[i];
            }
            if (out >= 0) {
                const float *xs = j->x + img + out * j->hw + pix;
                for (i = 0; i < m; i++)
                    acc[i] -= (double)xs[i] * xs[i];
            }
            for (i = 0; i < m; i++) {
                /* The subtraction may leave a tiny negative residue. */
                const double sc = s->bias + k * (acc[i] > 0 ? acc[i] : 0);
                if (j->scale != NULL)
                    j->scale[at + i] = (float)sc;
                j->y[at + i] = (float)(j->x[at + i] * lrn_pow(sc, s->beta));
            }
        }
        p += m;
    }
}

/* NHWC: pixels [p0, p1), channels contiguous. */
static void lrn_nhwc(const struct lrn_job *j, int64_t p0, int64_t p1)
{
    const struct lrn_state *s = j->s;
    const double k = (double)s->alpha / s->size;
    int64_t p, c;

    for (p = p0; p < p1; p++) {
        const float *xs = j->x + p * j->c;
        double acc = 0;
        for (c = 0; c < s->size - s->pre_pad - 1 && c < j->c; c++)
            acc += (double)xs[c] * xs[c];
        for (c = 0; c < j->c; c++) {
            const int64_t in = c + s->size - s->pre_pad - 1;
            const int64_t out = c - s->pre_pad - 1;
            double sc;
            if (in < j->c)
                acc += (double)xs[in] * xs[in];
            if (out >= 0)
                acc -= (double)xs[out] * xs[out];
            sc = s->bias + k * (acc > 0 ? acc : 0);
            if (j->scale != NULL)
                j->scale[p * j->c + c] = (float)sc;
            j->y[p * j->c + c] = (float)(xs[c] * lrn_pow(sc, s->beta));
        }
    }
}

static int lrn_check(const struct lrn_state *s, int nd, const int64_t *d,
                     ct_status_t *st)
{
    char buf[128];

    if (nd != 4)
        return ct_status_setf(st, CT_ESHAPE, "X %s must be 4-d (%s), got %d-d",
                              ct_dims_str(nd, d, buf, sizeof(buf)),
                              s->nhwc ? "NHWC" : "NCHW", nd);
    return CT_OK;
}

static int lrn_run(ct_op_ctx_t *ctx)
{
    const struct lrn_state *s = ctx->op->state;
    const ct_tensor_t *x;
    ct_tensor_t *y, *scale = NULL;
    ct_status_t lst;
    struct lrn_job j;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP, "unsupported dtype %s for X (FLOAT)",
                          ct_dtype_name(x->dtype));
    ct_status_clear(&lst);
    if ((rc = lrn_check(s, x->ndim, x->dims, &lst)) != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    if ((rc = ct_op_output(ctx, 0, CT_DTYPE_F32, 4, x->dims, &y)) != CT_OK)
        return rc;
    if (ctx->op->n_out > 1 &&
        (rc = ct_op_output(ctx, 1, CT_DTYPE_F32, 4, x->dims, &scale)) != CT_OK)
        return rc;
    if (x->numel == 0)
        return CT_OK;
    j.x = CT_CDATA(x, float);
    j.y = CT_DATA(y, float);
    j.scale = scale != NULL ? CT_DATA(scale, float) : NULL;
    j.nhwc = s->nhwc;
    j.c = s->nhwc ? x->dims[3] : x->dims[1];
    j.hw = s->nhwc ? x->dims[1] * x->dims[2] : x->dims[2] * x->dims[3];
    j.s = s;
    /* One range for now; ct_parallel_for will split the pixels. */
    if (s->nhwc)
        lrn_nhwc(&j, 0, x->dims[0] * j.hw);
    else
        lrn_nchw(&j, 0, x->dims[0] * j.hw);
    return CT_OK;
}

static int lrn_init(ct_op_t *op, ct_status_t *st)
{
    struct lrn_state *s = op->state;
    const char *order;
    size_t order_len;
    int rc;

    if ((rc = ct__arg_int32(op, "size", 0, &s->size, st)) != CT_OK ||
        (rc = ct__arg_float(op, "alpha", 0, &s->alpha, st)) != CT_OK ||
        (rc = ct__arg_float(op, "beta", 0, &s->beta, st)) != CT_OK ||
        (rc = ct__arg_float(op, "bias", 1, &s->bias, st)) != CT_OK ||
        (rc = ct__arg_string(op, "order", "NCHW", &order, &order_len, st)) !=
            CT_OK)
        return rc;
    if (order_len == 4 && memcmp(order, "NHWC", 4) == 0)
        s->nhwc = true;
    else if (!(order_len == 4 && memcmp(order, "NCHW", 4) == 0))
        return ct_status_setf(st, CT_EARG,
                              "order should be either \"NCHW\" or \"NHWC\", "
                              "got \"%.*s\"",
                              (int)order_len, order);
    if (s->size < 1 || s->size % 2 != 1)
        return ct_status_setf(
            st, CT_EARG, "size must be odd and >= 1, got %d%s", (int)s->size,
            ct__arg_has(op, "size") ? "" : " (missing)");
    if (!isfinite(s->alpha) || !isfinite(s->beta) || !isfinite(s->bias))
        return ct_status_setf(
            st, CT_EARG, "alpha %g, beta %g and bias %g must be finite",
            (double)s->alpha, (double)s->beta, (double)s->bias);
    s->pre_pad = (s->size - 1) / 2;
    return CT_OK;
}

static int lrn_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    const struct lrn_state *s = op->state;
    int i;

    for (i = 0; i < op->n_out; i++)
        out[i] = in[0];
    if (in[0].ndim < 0)
        return CT_OK;
    return lrn_check(s, in[0].ndim, in[0].dims, st);
}

/* Per element: `size` multiply-adds for the window and a pow (~10). */
static double lrn_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct lrn_state *s = op->state;
    double v = 1;
    int i;

    if (in[0].ndim < 0)
        return 0;
    for (i = 0; i < in[0].ndim; i++)
        v *= (double)in[0].dims[i];
    return v * (2.0 * s->size + 12);
}

static const struct ct_arg_spec lrn_args[] = {
    {"size", CT_ARG_INT, false},     {"alpha", CT_ARG_FLOAT, false},
    {"beta", CT_ARG_FLOAT, false},   {"bias", CT_ARG_FLOAT, false},
    {"order", CT_ARG_STRING, false}, {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_lrn = {
    .name = "LRN",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 2,
    .args = lrn_args,
    .state_size = sizeof(struct lrn_state),
    .init_cb = lrn_init,
    .infer_cb = lrn_infer,
    .run_cb = lrn_run,
    .cost_cb = lrn_cost,
    .doc = "y = x * (bias + alpha/size * sum of x^2 over size channels)^-beta",
};
