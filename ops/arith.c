/* N-ary Sum and Scale.
 *
 * Sum: Y = X0 + X1 + ... + X(n-1), 1 <= n. Every input has the same shape
 *   and dtype as X0 (CT_ESHAPE / CT_ETYPE otherwise); no broadcasting.
 *   The additions happen in input order, ((X0 + X1) + X2) + ..., as in
 *   Caffe2's SumOp, so the result is deterministic and bit-identical to a
 *   sequential accumulation (the Sum that merges gradients relies on it).
 *   One input copies X0. Integers wrap modulo 2^bits.
 *   Dtypes: FLOAT, DOUBLE, INT32, INT64. In-place: input 0 -> output 0.
 * Scale: Y = scale * X. Attr scale (float, 1.0). Dtype FLOAT (Caffe2's CPU
 *   kernel is float only). In-place: input 0 -> output 0.
 *
 * Kernels take element ranges [e0, e1) so that ct_parallel_for can split
 * them. Sum walks its range in blocks so that the partial sum of a block
 * stays in cache while every input is added to it.
 *
 * Gradients (makers only, no new ops): Sum's input i gets dX_i = dY
 * through a Copy per input (Caffe2 hands dY itself to every input; a copy
 * keeps every gradient named "<input>_grad"; for an in-place Sum the copy
 * onto input 0's gradient is in place and costs nothing). Scale's is
 * dX = Scale(dY) with the same `scale`.
 */
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

#if defined(_OPENMP)
#define EW_SIMD _Pragma("omp simd")
#else
#define EW_SIMD
#endif

/* Elements per Sum block: 8-16 KiB of partial sums. */
#define SUM_BLOCK 2048

/* ---- Sum ---- */

/* y = a + b and y += x over n elements. y may be a (in-place). */
typedef void (*sum2_fn)(int64_t n, const void *a, const void *b, void *y);
typedef void (*acc_fn)(int64_t n, const void *x, void *y);

#define SUM_LOOPS(SFX, T, U)                                                   \
    static void sum2_##SFX(int64_t n, const void *pa, const void *pb,          \
                           void *py)                                           \
    {                                                                          \
        const T *a = pa, *b = pb;                                              \
        T *y = py;                                                             \
        int64_t i;                                                             \
        EW_SIMD for (i = 0; i < n; i++) y[i] = (T)((U)a[i] + (U)b[i]);         \
    }                                                                          \
    static void acc_##SFX(int64_t n, const void *px, void *py)                 \
    {                                                                          \
        const T *x = px;                                                       \
        T *y = py;                                                             \
        int64_t i;                                                             \
        EW_SIMD for (i = 0; i < n; i++) y[i] = (T)((U)y[i] + (U)x[i]);         \
    }

/* For floating types the "unsigned" cast is the type itself. */
SUM_LOOPS(f32, float, float)
SUM_LOOPS(f64, double, double)
SUM_LOOPS(i32, int32_t, uint32_t)
SUM_LOOPS(i64, int64_t, uint64_t)

struct sum_job {
    const ct_op_t *op; /* inputs 1.. are read through its bound blobs */
    const char *x0;    /* input 0, read before the output was made */
    sum2_fn sum2;
    acc_fn acc;
    char *y;
    size_t esz;
};

static const char *input_data(const ct_op_t *op, int i)
{
    return ct_tensor_cdata(ct_blob_get_tensor(op->in[i]));
}

/* Output elements [e0, e1); needs at least two inputs. */
static void sum_range(const struct sum_job *j, int64_t e0, int64_t e1)
{
    const size_t esz = j->esz;
    int64_t b0, n;
    int k;

    for (b0 = e0; b0 < e1; b0 += n) {
        size_t off = (size_t)b0 * esz;
        n = e1 - b0 < SUM_BLOCK ? e1 - b0 : SUM_BLOCK;
        j->sum2(n, j->x0 + off, input_data(j->op, 1) + off, j->y + off);
        for (k = 2; k < j->op->n_in; k++)
            j->acc(n, input_data(j->op, k) + off, j->y + off);
    }
}

/* ct_parallel_for body for Sum. */
static void sum_range_cb(void *arg, int64_t e0, int64_t e1, int ith)
{
    (void)ith;
    sum_range(arg, e0, e1);
}

static int sum_run(ct_op_ctx_t *ctx)
{
    const ct_op_t *op = ctx->op;
    const ct_tensor_t *x0, *x;
    ct_tensor_t *y;
    struct sum_job j;
    char s1[128], s2[128];
    int rc, k;

    if ((rc = ct_op_input(ctx, 0, &x0)) != CT_OK)
        return rc;
    switch (x0->dtype) {
    case CT_DTYPE_F32:
        j.sum2 = sum2_f32, j.acc = acc_f32;
        break;
    case CT_DTYPE_F64:
        j.sum2 = sum2_f64, j.acc = acc_f64;
        break;
    case CT_DTYPE_I32:
        j.sum2 = sum2_i32, j.acc = acc_i32;
        break;
    case CT_DTYPE_I64:
        j.sum2 = sum2_i64, j.acc = acc_i64;
        break;
    default:
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s (FLOAT, DOUBLE, INT32, INT64)",
                          ct_dtype_name(x0->dtype));
    }
    /* Check every input before the output is touched. */
    for (k = 1; k < op->n_in; k++) {
        if ((rc = ct_op_input(ctx, k, &x)) != CT_OK)
            return rc;
        if (x->dtype != x0->dtype)
            return ct_op_fail(ctx, CT_ETYPE,
                              "input %d is %s but input 0 is %s; all inputs "
                              "must have the same dtype",
                              k, ct_dtype_name(x->dtype),
                              ct_dtype_name(x0->dtype));
        if (x->ndim != x0->ndim ||
            (x->ndim > 0 &&
             memcmp(x->dims, x0->dims, (size_t)x->ndim * sizeof(int64_t))))
            return ct_op_fail(ctx, CT_ESHAPE,
                              "input %d dims %s should match input 0 dims %s "
                              "(Sum does not broadcast)",
                              k, ct_tensor_shape_str(x, s1, sizeof(s1)),
                              ct_tensor_shape_str(x0, s2, sizeof(s2)));
    }
    /* Input 0 before the output: when the in-place output's storage is
     * shared (a snapshot holds it), ct_op_output swaps in new storage and
     * the old one, alive through the other reference, keeps X0 intact.
     * Inputs 1.. never alias the output. */
    j.x0 = ct_tensor_cdata(x0);
    rc = ct_op_output(ctx, 0, x0->dtype, x0->ndim, x0->dims, &y);
    if (rc != CT_OK)
        return rc;
    if (y->numel == 0)
        return CT_OK;
    j.op = op;
    j.y = ct_tensor_data(y);
    j.esz = ct_dtype_size(x0->dtype);
    if (op->n_in == 1) {
        if (j.x0 != j.y)
            memcpy(j.y, j.x0, (size_t)y->numel * j.esz);
        return CT_OK;
    }
    /* Memory bound: chunks of 32K elements repay the fork-join. */
    return ct_parallel_for(ctx, y->numel, 32768, sum_range_cb, &j);
}

static int sum_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    char s1[128], s2[128];
    int k;

    for (k = 1; k < op->n_in; k++) {
        if (in[0].dtype != CT_DTYPE_UNDEFINED &&
            in[k].dtype != CT_DTYPE_UNDEFINED && in[k].dtype != in[0].dtype)
            return ct_status_setf(st, CT_ETYPE,
                                  "input %d is %s but input 0 is %s; all "
                                  "inputs must have the same dtype",
                                  k, ct_dtype_name(in[k].dtype),
                                  ct_dtype_name(in[0].dtype));
        if (in[0].ndim >= 0 && in[k].ndim >= 0 &&
            (in[k].ndim != in[0].ndim ||
             (in[0].ndim > 0 && memcmp(in[k].dims, in[0].dims,
                                       (size_t)in[0].ndim * sizeof(int64_t)))))
            return ct_status_setf(
                st, CT_ESHAPE,
                "input %d dims %s should match input 0 dims %s (Sum does not "
                "broadcast)",
                k, ct_dims_str(in[k].ndim, in[k].dims, s1, sizeof(s1)),
                ct_dims_str(in[0].ndim, in[0].dims, s2, sizeof(s2)));
    }
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

/* n - 1 additions per element. */
static double sum_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return numel_of(&in[0]) * (op->n_in > 1 ? op->n_in - 1 : 1);
}

/* dX_i = Copy(dY) for every input. */
static int sum_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *dy = ct__grad_out(g, 0), *dx;
    size_t i;
    int rc;

    for (i = 0; i < g->def->n_input; i++) {
        dx = ct__grad_in(g, (int)i);
        rc = ct__grad_emit(g, "Copy", &dy, 1, &dx, 1, CT__GRAD_NO_ARGS, NULL,
                           st);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}

const struct ct_op_schema ct__op_sum = {
    .name = "Sum",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 1,
    .max_outputs = 1,
    .inplace_cb = ct__inplace_0_0,
    .infer_cb = sum_infer,
    .run_cb = sum_run,
    .grad_cb = sum_grad_make,
    .cost_cb = sum_cost,
    .doc = "Y = X0 + X1 + ... (same shapes, summed in input order)",
};

/* ---- Scale ---- */

struct scale_state {
    float scale;
};

static void scale_f32(float s, const float *x, float *y, int64_t e0, int64_t e1)
{
    int64_t i;

    EW_SIMD for (i = e0; i < e1; i++) y[i] = x[i] * s;
}

struct scale_job {
    float scale;
    const float *x;
    float *y;
};

/* ct_parallel_for body for Scale. */
static void scale_range_cb(void *arg, int64_t e0, int64_t e1, int ith)
{
    const struct scale_job *job = arg;

    (void)ith;
    scale_f32(job->scale, job->x, job->y, e0, e1);
}

static int scale_run(ct_op_ctx_t *ctx)
{
    const struct scale_state *s = ctx->op->state;
    const ct_tensor_t *x;
    const float *xs;
    ct_tensor_t *y;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP, "unsupported dtype %s (FLOAT)",
                          ct_dtype_name(x->dtype));
    xs = CT_CDATA(x, float); /* before the output: see sum_run */
    rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &y);
    if (rc != CT_OK)
        return rc;
    {
        struct scale_job job = {s->scale, xs, CT_DATA(y, float)};
        return ct_parallel_for(ctx, y->numel, 32768, scale_range_cb, &job);
    }
}

static int scale_init(ct_op_t *op, ct_status_t *st)
{
    struct scale_state *s = op->state;

    return ct__arg_float(op, "scale", 1.0f, &s->scale, st);
}

static int scale_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                       ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

static double scale_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return numel_of(&in[0]);
}

static const struct ct_arg_spec scale_args[] = {
    {"scale", CT_ARG_FLOAT, false},
    {NULL, CT_ARG_ANY, false},
};

/* dX = Scale(dY), `scale` copied from the forward op. */
static int scale_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *dy = ct__grad_out(g, 0), *dx = ct__grad_in(g, 0);

    return ct__grad_emit(g, "Scale", &dy, 1, &dx, 1, 0, NULL, st);
}

const struct ct_op_schema ct__op_scale = {
    .name = "Scale",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .inplace_cb = ct__inplace_0_0,
    .args = scale_args,
    .state_size = sizeof(struct scale_state),
    .init_cb = scale_init,
    .infer_cb = scale_infer,
    .run_cb = scale_run,
    .grad_cb = scale_grad_make,
    .cost_cb = scale_cost,
    .doc = "Y = scale * X",
};
