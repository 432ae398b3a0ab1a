/* Pointwise activations: Relu, Sigmoid, Tanh.
 *
 * Relu:    y = max(x, 0); NaN stays NaN, -0 stays -0 (x < 0 ? 0 : x).
 * Sigmoid: y = 1 / (1 + exp(-x)), evaluated as 1 / (1 + exp(-x)) for
 *          x >= 0 and exp(x) / (1 + exp(x)) for x < 0, so exp never
 *          overflows and tiny results keep their precision for large |x|.
 * Tanh:    y = tanh(x) (libm).
 * Input X, output Y of X's shape and dtype. No attributes.
 * Dtypes: FLOAT, DOUBLE (Caffe2's CPU kernels are float only; double is
 * an extension). Others are CT_ENOTSUP. In-place: input 0 -> output 0.
 *
 * Kernels take element ranges [e0, e1) so that ct_parallel_for can split
 * them; each reads x[i] before it writes y[i], so y may be x.
 */
#include <math.h>

#include "ops/op_impl.h"

#if defined(_OPENMP)
#define EW_SIMD _Pragma("omp simd")
#else
#define EW_SIMD
#endif

enum act_kind { ACT_RELU, ACT_SIGMOID, ACT_TANH };

static void relu_f32(const float *x, float *y, int64_t e0, int64_t e1)
{
    int64_t i;

    EW_SIMD for (i = e0; i < e1; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static void relu_f64(const double *x, double *y, int64_t e0, int64_t e1)
{
    int64_t i;

    EW_SIMD for (i = e0; i < e1; i++) y[i] = x[i] < 0.0 ? 0.0 : x[i];
}

static void sigmoid_f32(const float *x, float *y, int64_t e0, int64_t e1)
{
    int64_t i;

    for (i = e0; i < e1; i++) {
        const float v = x[i];
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            const float z = expf(v); /* NaN lands here and stays NaN */
            y[i] = z / (1.0f + z);
        }
    }
}

static void sigmoid_f64(const double *x, double *y, int64_t e0, int64_t e1)
{
    int64_t i;

    for (i = e0; i < e1; i++) {
        const double v = x[i];
        if (v >= 0.0) {
            y[i] = 1.0 / (1.0 + exp(-v));
        } else {
            const double z = exp(v);
            y[i] = z / (1.0 + z);
        }
    }
}

static void tanh_f32(const float *x, float *y, int64_t e0, int64_t e1)
{
    int64_t i;

    for (i = e0; i < e1; i++)
        y[i] = tanhf(x[i]);
}

static void tanh_f64(const double *x, double *y, int64_t e0, int64_t e1)
{
    int64_t i;

    for (i = e0; i < e1; i++)
        y[i] = tanh(x[i]);
}

static int act_run(ct_op_ctx_t *ctx, enum act_kind kind)
{
    const ct_tensor_t *x;
    const void *xv;
    ct_tensor_t *y;
    int64_t n;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32 && x->dtype != CT_DTYPE_F64)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s (FLOAT, DOUBLE)",
                          ct_dtype_name(x->dtype));
    /* Input data before the output: when the in-place output's storage is
     * shared (a snapshot holds it), ct_op_output swaps in new storage and
     * the old one, alive through the other reference, keeps X intact. */
    xv = ct_tensor_cdata(x);
    rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &y);
    if (rc != CT_OK)
        return rc;
    n = y->numel;
    /* One range for now; ct_parallel_for will split [0, n). */
    if (x->dtype == CT_DTYPE_F32) {
        const float *xs = xv;
        float *ys = CT_DATA(y, float);
        switch (kind) {
        case ACT_RELU:
            relu_f32(xs, ys, 0, n);
            break;
        case ACT_SIGMOID:
            sigmoid_f32(xs, ys, 0, n);
            break;
        case ACT_TANH:
            tanh_f32(xs, ys, 0, n);
            break;
        }
    } else {
        const double *xs = xv;
        double *ys = CT_DATA(y, double);
        switch (kind) {
        case ACT_RELU:
            relu_f64(xs, ys, 0, n);
            break;
        case ACT_SIGMOID:
            sigmoid_f64(xs, ys, 0, n);
            break;
        case ACT_TANH:
            tanh_f64(xs, ys, 0, n);
            break;
        }
    }
    return CT_OK;
}

static int relu_run(ct_op_ctx_t *ctx)
{
    return act_run(ctx, ACT_RELU);
}
static int sigmoid_run(ct_op_ctx_t *ctx)
{
    return act_run(ctx, ACT_SIGMOID);
}
static int tanh_run(ct_op_ctx_t *ctx)
{
    return act_run(ctx, ACT_TANH);
}

static int act_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

static double numel_of(const ct_shape_t *s)
{
    double n = 1;
    int i;

    if (s->ndim < 0)
        return 0;
    for (i = 0; i < s->ndim; i++)
        n *= (double)s->dims[i];
    return n;
}

static double relu_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return numel_of(&in[0]);
}

/* exp (counted as ~10 flops), an add and a divide per element. */
static double sigmoid_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return 12 * numel_of(&in[0]);
}

static double tanh_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return 12 * numel_of(&in[0]);
}

#define ACT_SCHEMA(VAR, NAME, RUN, COST, DOC)                                  \
    const struct ct_op_schema VAR = {                                          \
        .name = NAME,                                                          \
        .min_inputs = 1,                                                       \
        .max_inputs = 1,                                                       \
        .min_outputs = 1,                                                      \
        .max_outputs = 1,                                                      \
        .inplace_cb = ct__inplace_0_0,                                         \
        .infer_cb = act_infer,                                                 \
        .run_cb = RUN,                                                         \
        .cost_cb = COST,                                                       \
        .doc = DOC,                                                            \
    };

ACT_SCHEMA(ct__op_relu, "Relu", relu_run, relu_cost, "Y = max(X, 0)")
ACT_SCHEMA(ct__op_sigmoid, "Sigmoid", sigmoid_run, sigmoid_cost,
           "Y = 1 / (1 + exp(-X)), stable for large |X|")
ACT_SCHEMA(ct__op_tanh, "Tanh", tanh_run, tanh_cost, "Y = tanh(X)")
