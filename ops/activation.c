/* Pointwise activations: Relu, Sigmoid, Tanh, and their gradients.
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
 *
 * Gradients (Caffe2's ReluGradient, SigmoidGradient, TanhGradient): inputs
 * Y (the forward output) and dY, output dX, all of Y's shape and dtype
 * (FLOAT or DOUBLE; dY must match Y, CT_ESHAPE / CT_ETYPE otherwise).
 *   ReluGradient:    dX = Y > 0 ? dY : 0
 *   SigmoidGradient: dX = dY * Y * (1 - Y)
 *   TanhGradient:    dX = dY * (1 - Y * Y)
 * They read only Y, so the forward op may run in place. In-place: dY ->
 * dX (input 1 -> output 0). The makers emit them with {Y, dY} -> {dX}.
 */
#include <math.h>
#include <string.h>

#include "engine/gradient.h"
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

/* Elements per parallel chunk (see act_run). */
#define ACT_GRAIN 32768

struct act_job {
    enum act_kind kind;
    ct_dtype_t dtype;
    const void *x;
    void *y;
};

/* ct_parallel_for body: elements [e0, e1). */
static void act_range(void *arg, int64_t e0, int64_t e1, int ith)
{
    const struct act_job *j = arg;

    (void)ith;
    if (j->dtype == CT_DTYPE_F32) {
        const float *xs = j->x;
        float *ys = j->y;
        switch (j->kind) {
        case ACT_RELU:
            relu_f32(xs, ys, e0, e1);
            break;
        case ACT_SIGMOID:
            sigmoid_f32(xs, ys, e0, e1);
            break;
        case ACT_TANH:
            tanh_f32(xs, ys, e0, e1);
            break;
        }
    } else {
        const double *xs = j->x;
        double *ys = j->y;
        switch (j->kind) {
        case ACT_RELU:
            relu_f64(xs, ys, e0, e1);
            break;
        case ACT_SIGMOID:
            sigmoid_f64(xs, ys, e0, e1);
            break;
        case ACT_TANH:
            tanh_f64(xs, ys, e0, e1);
            break;
        }
    }
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
    {
        struct act_job job = {kind, x->dtype, xv, ct_tensor_data(y)};
        /* Elementwise and memory bound: split only when a chunk is big
         * enough to repay the fork-join (~32K elements ~ 10 us). */
        rc = ct_parallel_for(ctx, n, ACT_GRAIN, act_range, &job);
        if (rc != CT_OK)
            return rc;
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

/* ---- gradients ---- */

#define ACT_GRAD_LOOP(NAME, T, EXPR)                                           \
    static void NAME(const T *y, const T *dy, T *dx, int64_t e0, int64_t e1)   \
    {                                                                          \
        int64_t i;                                                             \
        EW_SIMD for (i = e0; i < e1; i++)                                      \
        {                                                                      \
            const T v = y[i], g = dy[i];                                       \
            dx[i] = (EXPR);                                                    \
        }                                                                      \
    }

ACT_GRAD_LOOP(relu_grad_f32, float, v > 0.0f ? g : 0.0f)
ACT_GRAD_LOOP(relu_grad_f64, double, v > 0.0 ? g : 0.0)
ACT_GRAD_LOOP(sigmoid_grad_f32, float, g *v *(1.0f - v))
ACT_GRAD_LOOP(sigmoid_grad_f64, double, g *v *(1.0 - v))
ACT_GRAD_LOOP(tanh_grad_f32, float, g *(1.0f - v * v))
ACT_GRAD_LOOP(tanh_grad_f64, double, g *(1.0 - v * v))

static int act_grad_run(ct_op_ctx_t *ctx, enum act_kind kind)
{
    const ct_tensor_t *y, *dy;
    const void *yv, *dyv;
    ct_tensor_t *dx;
    char s1[128], s2[128];
    int64_t n;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &y)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &dy)) != CT_OK)
        return rc;
    if (y->dtype != CT_DTYPE_F32 && y->dtype != CT_DTYPE_F64)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s (FLOAT, DOUBLE)",
                          ct_dtype_name(y->dtype));
    if (dy->dtype != y->dtype)
        return ct_op_fail(ctx, CT_ETYPE, "Y is %s but dY is %s",
                          ct_dtype_name(y->dtype), ct_dtype_name(dy->dtype));
    if (dy->ndim != y->ndim ||
        (y->ndim > 0 &&
         memcmp(dy->dims, y->dims, (size_t)y->ndim * sizeof(int64_t)) != 0))
        return ct_op_fail(ctx, CT_ESHAPE, "dY %s must have the shape of Y %s",
                          ct_tensor_shape_str(dy, s1, sizeof(s1)),
                          ct_tensor_shape_str(y, s2, sizeof(s2)));
    /* Inputs before the output: see act_run. */
    yv = ct_tensor_cdata(y);
    dyv = ct_tensor_cdata(dy);
    rc = ct_op_output(ctx, 0, y->dtype, y->ndim, y->dims, &dx);
    if (rc != CT_OK)
        return rc;
    n = dx->numel;
    /* One range for now; ct_parallel_for will split [0, n). */
    if (y->dtype == CT_DTYPE_F32) {
        static void (*const fn[])(const float *, const float *, float *,
                                  int64_t, int64_t) = {
            [ACT_RELU] = relu_grad_f32,
            [ACT_SIGMOID] = sigmoid_grad_f32,
            [ACT_TANH] = tanh_grad_f32,
        };
        fn[kind](yv, dyv, CT_DATA(dx, float), 0, n);
    } else {
        static void (*const fn[])(const double *, const double *, double *,
                                  int64_t, int64_t) = {
            [ACT_RELU] = relu_grad_f64,
            [ACT_SIGMOID] = sigmoid_grad_f64,
            [ACT_TANH] = tanh_grad_f64,
        };
        fn[kind](yv, dyv, CT_DATA(dx, double), 0, n);
    }
    return CT_OK;
}

static int relu_grad_run(ct_op_ctx_t *ctx)
{
    return act_grad_run(ctx, ACT_RELU);
}
static int sigmoid_grad_run(ct_op_ctx_t *ctx)
{
    return act_grad_run(ctx, ACT_SIGMOID);
}
static int tanh_grad_run(ct_op_ctx_t *ctx)
{
    return act_grad_run(ctx, ACT_TANH);
}

static int act_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                          ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

static double act_grad_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return 3 * numel_of(&in[0]);
}

static bool act_grad_inplace(int in, int out)
{
    return in == 1 && out == 0;
}

/* {Y, dY} -> {dX}. */
static int act_grad_make(struct ct__grad_ctx *g, const char *type,
                         ct_status_t *st)
{
    const char *in[2], *out[1];

    in[0] = ct__grad_fwd_out(g, 0);
    in[1] = ct__grad_out(g, 0);
    out[0] = ct__grad_in(g, 0);
    return ct__grad_emit(g, type, in, 2, out, 1, 0, NULL, st);
}

static int relu_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return act_grad_make(g, "ReluGradient", st);
}
static int sigmoid_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return act_grad_make(g, "SigmoidGradient", st);
}
static int tanh_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return act_grad_make(g, "TanhGradient", st);
}

#define ACT_SCHEMA(VAR, NAME, RUN, COST, GRAD, DOC)                            \
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
        .grad_cb = GRAD,                                                       \
        .doc = DOC,                                                            \
    };

ACT_SCHEMA(ct__op_relu, "Relu", relu_run, relu_cost, relu_grad_make,
           "Y = max(X, 0)")
ACT_SCHEMA(ct__op_sigmoid, "Sigmoid", sigmoid_run, sigmoid_cost,
           sigmoid_grad_make, "Y = 1 / (1 + exp(-X)), stable for large |X|")
ACT_SCHEMA(ct__op_tanh, "Tanh", tanh_run, tanh_cost, tanh_grad_make,
           "Y = tanh(X)")

#define ACT_GRAD_SCHEMA(VAR, NAME, RUN, DOC)                                   \
    const struct ct_op_schema VAR = {                                          \
        .name = NAME,                                                          \
        .min_inputs = 2,                                                       \
        .max_inputs = 2,                                                       \
        .min_outputs = 1,                                                      \
        .max_outputs = 1,                                                      \
        .inplace_cb = act_grad_inplace,                                        \
        .infer_cb = act_grad_infer,                                            \
        .run_cb = RUN,                                                         \
        .cost_cb = act_grad_cost,                                              \
        .doc = DOC,                                                            \
    };

ACT_GRAD_SCHEMA(ct__op_relu_gradient, "ReluGradient", relu_grad_run,
                "dX = Y > 0 ? dY : 0")
ACT_GRAD_SCHEMA(ct__op_sigmoid_gradient, "SigmoidGradient", sigmoid_grad_run,
                "dX = dY * Y * (1 - Y)")
ACT_GRAD_SCHEMA(ct__op_tanh_gradient, "TanhGradient", tanh_grad_run,
                "dX = dY * (1 - Y^2)")
