/* MaxPool and AveragePool (Caffe2's PoolOp with MaxPoolFunctor and
 * AveragePoolFunctor).
 *
 * Math: each output o covers the window [o * stride - pad_head, + kernel)
 * of every spatial dim, clamped to the input:
 *   MaxPool      Y = max of X over the window;
 *   AveragePool  Y = sum of X over the window / count, where count is
 *                the kernel volume with count_include_pad = 1, else the
 *                number of window elements inside the input.
 * Channels pool independently. Inputs: X [N, C, in...] (NCHW) or
 * [N, in..., C] (NHWC), 1 to 3 spatial dims. Output: Y [N, C, out...] or
 * [N, out..., C]. FLOAT only (others CT_ENOTSUP). No in-place.
 * Attrs (ops/conv_pool.h): kernel(s), stride(s), pad(s), order,
 * legacy_pad (3 = Caffe's ceil output size, e.g. SqueezeNet:
 * out = ceil((in + 2 * pad - kernel) / stride) + 1, minus one when the
 * last window would start in the tail padding), global_pooling (the
 * window is the whole input; kernel, if given, may be 0; pads 0, strides
 * 1), count_include_pad (AveragePool, int, 0). Dilation must be 1 and
 * every pad smaller than the kernel, as Caffe2.
 * A window with no input element (possible only with legacy padding and
 * stride > kernel) gives -inf (MaxPool) or 0 (AveragePool). MaxPool
 * skips NaN inputs (a window of NaNs only gives -inf); Caffe2 left NaN
 * handling to Eigen's maxCoeff, which does not specify it.
 * Errors: CT_EARG (arguments), CT_ESHAPE (rank; an output extent <= 0),
 * CT_EOVERFLOW.
 *
 * Gradients: MaxPoolGradient, AveragePoolGradient (ops/pooling_grad.c),
 * made as Caffe2's GetPoolGradient does.
 *
 * Kernels over items: NCHW planes (N * C), NHWC output rows (N * D * H,
 * each vectorised over C). NCHW 2-D MaxPool (ResNet's 3x3 stride 2 stem
 * pool) runs separably: column maxima of each output row's window, then
 * row maxima.
 */
#include <math.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/conv_pool.h"

struct pool_state {
    struct ct__conv_args a;
    bool count_include_pad;
};

struct pool_job {
    const struct ct__conv_geom *g;
    const float *x;
    float *y;
    bool max;
    bool count_pad;
    bool separable; /* NCHW 2-D MaxPool with rows that fit max_plane_2d */
};

static int pool_init(ct_op_t *op, ct_status_t *st)
{
    struct pool_state *s = op->state;
    int32_t cip;
    int rc;

    if ((rc = ct__conv_args_parse(op, CT_CONV_KIND_POOL, &s->a, st)) != CT_OK)
        return rc;
    if ((rc = ct__arg_int32(op, "count_include_pad", 0, &cip, st)) != CT_OK)
        return rc;
    s->count_include_pad = cip != 0;
    return CT_OK;
}

/* Window of output (od, oh, ow) along the three dims. */
struct win {
    int64_t lo[3], hi[3];
};

static void window(const struct ct__conv_geom *g, int64_t od, int64_t oh,
                   int64_t ow, struct win *w)
{
    const int64_t o[3] = {od, oh, ow};
    int i;

    for (i = 0; i < 3; i++)
        ct__pool_window(o[i], g->s[i], g->pad[i], g->k[i], g->in[i], &w->lo[i],
                        &w->hi[i]);
}

static int64_t win_count(const struct win *w)
{
    int64_t n = 1;
    int i;

    for (i = 0; i < 3; i++)
        n *= w->hi[i] > w->lo[i] ? w->hi[i] - w->lo[i] : 0;
    return n;
}

/* NCHW: item = one (n, c) plane. */
static void pool_plane(const struct pool_job *j, int64_t it)
{
    const struct ct__conv_geom *g = j->g;
    const float *x = j->x + it * g->in_size;
    float *y = j->y + it * g->out_size;
    int64_t od, oh, ow, id, ih, iw;
    struct win w;

    for (od = 0; od < g->out[0]; od++) {
        for (oh = 0; oh < g->out[1]; oh++) {
            for (ow = 0; ow < g->out[2]; ow++, y++) {
                float acc = j->max ? -INFINITY : 0.0f;
                int64_t cnt;

                window(g, od, oh, ow, &w);
                for (id = w.lo[0]; id < w.hi[0]; id++) {
                    for (ih = w.lo[1]; ih < w.hi[1]; ih++) {
                        const float *xr = x + (id * g->in[1] + ih) * g->in[2];
                        if (j->max) {
                            for (iw = w.lo[2]; iw < w.hi[2]; iw++)
                                acc = xr[iw] > acc ? xr[iw] : acc;
                        } else {
                            for (iw = w.lo[2]; iw < w.hi[2]; iw++)
                                acc += xr[iw];
                        }
                    }
                }
                if (!j->max) {
                    cnt = j->count_pad ? g->k_size : win_count(&w);
                    acc = cnt > 0 ? acc * (1.0f / (float)cnt) : 0.0f;
                }
                *y = acc;
            }
        }
    }
}

/* omp simd on loops whose iterations are independent; without OpenMP
 * they are plain C. */
#if defined(_OPENMP)
#define POOL_SIMD _Pragma("omp simd")
#else
#define POOL_SIMD
#endif

/* Widest input row the separable MaxPool path keeps on the stack. */
#define MAX_ROW_STACK 2048

/* NCHW 2-D MaxPool, item = one (n, c) plane, separably: per output row,
 * the column maxima over the row window (contiguous, vectorised), then
 * each output the maximum of its column window. Same values as
 * pool_plane: both skip NaN (x > acc is false) and start from -inf. */
static void max_plane_2d(const struct pool_job *j, int64_t it)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t W = g->in[2];
    const float *x = j->x + it * g->in_size;
    float *y = j->y + it * g->out_size;
    float vm[MAX_ROW_STACK];
    int64_t oh, ow, ih, iw, h0, h1, w0, w1;

    for (oh = 0; oh < g->out[1]; oh++, y += g->out[2]) {
        ct__pool_window(oh, g->s[1], g->pad[1], g->k[1], g->in[1], &h0, &h1);
        for (iw = 0; iw < W; iw++)
            vm[iw] = -INFINITY;
        for (ih = h0; ih < h1; ih++) {
            const float *xr = x + ih * W;
            POOL_SIMD for (iw = 0; iw < W; iw++)
            {
                vm[iw] = xr[iw] > vm[iw] ? xr[iw] : vm[iw];
            }
        }
        for (ow = 0; ow < g->out[2]; ow++) {
            float acc = -INFINITY;
            ct__pool_window(ow, g->s[2], g->pad[2], g->k[2], W, &w0, &w1);
            for (iw = w0; iw < w1; iw++)
                acc = vm[iw] > acc ? vm[iw] : acc;
            y[ow] = acc;
        }
    }
}

/* NHWC: item = one output row (n, od, oh), all channels at once. */
static void pool_row_nhwc(const struct pool_job *j, int64_t it)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t C = g->c, rows = g->out[0] * g->out[1];
    const int64_t n = it / rows, od = it % rows / g->out[1];
    const int64_t oh = it % g->out[1];
    const float *x = j->x + n * g->in_size * C;
    float *y = j->y + (n * g->out_size + (od * g->out[1] + oh) * g->out[2]) * C;
    int64_t ow, id, ih, iw, c;
    struct win w;

    for (ow = 0; ow < g->out[2]; ow++, y += C) {
        const float init = j->max ? -INFINITY : 0.0f;
        for (c = 0; c < C; c++)
            y[c] = init;
        window(g, od, oh, ow, &w);
        for (id = w.lo[0]; id < w.hi[0]; id++) {
            for (ih = w.lo[1]; ih < w.hi[1]; ih++) {
                for (iw = w.lo[2]; iw < w.hi[2]; iw++) {
                    const float *xp =
                        x + ((id * g->in[1] + ih) * g->in[2] + iw) * C;
                    if (j->max) {
                        for (c = 0; c < C; c++)
                            y[c] = xp[c] > y[c] ? xp[c] : y[c];
                    } else {
                        for (c = 0; c < C; c++)
                            y[c] += xp[c];
                    }
                }
            }
        }
        if (!j->max) {
            const int64_t cnt = j->count_pad ? g->k_size : win_count(&w);
            const float sc = cnt > 0 ? 1.0f / (float)cnt : 0.0f;
            for (c = 0; c < C; c++)
                y[c] *= sc;
        }
    }
}

static void pool_range(void *arg, int64_t i0, int64_t i1, int ith)
{
    const struct pool_job *j = arg;
    int64_t it;

    (void)ith;
    for (it = i0; it < i1; it++) {
        if (j->g->nhwc)
            pool_row_nhwc(j, it);
        else if (j->separable)
            max_plane_2d(j, it);
        else
            pool_plane(j, it);
    }
}

static int pool_run_common(ct_op_ctx_t *ctx, bool max)
{
    const struct pool_state *s = ctx->op->state;
    const ct_tensor_t *x;
    struct ct__conv_geom g;
    struct pool_job j;
    int64_t y_dims[CT_CONV_MAX_SP + 2];
    ct_tensor_t *y;
    ct_status_t lst;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s for X (FLOAT only)",
                          ct_dtype_name(x->dtype));
    ct_status_clear(&lst);
    rc = ct__pool_plan(&s->a, x->ndim, x->dims, &g, y_dims, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    rc = ct_op_output(ctx, 0, CT_DTYPE_F32, x->ndim, y_dims, &y);
    if (rc != CT_OK || g.n == 0)
        return rc;
    j.g = &g;
    j.x = CT_CDATA(x, float);
    j.y = CT_DATA(y, float);
    j.max = max;
    j.count_pad = s->count_include_pad;
    /* 2-d geometry keeps a unit leading dim (see ct__conv_plan). */
    j.separable = max && !g.nhwc && g.out[0] == 1 && g.k[0] == 1 &&
                  g.pad[0] == 0 && g.in[0] == 1 && g.in[2] <= MAX_ROW_STACK;
    ct__conv_for(ctx, g.nhwc ? g.n * g.out[0] * g.out[1] : g.n * g.c, 0,
                 pool_range, &j);
    return CT_OK;
}

static int max_pool_run(ct_op_ctx_t *ctx)
{
    return pool_run_common(ctx, true);
}

static int avg_pool_run(ct_op_ctx_t *ctx)
{
    return pool_run_common(ctx, false);
}

static int pool_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    const struct pool_state *s = op->state;
    struct ct__conv_geom g;

    out[0].dtype = in[0].dtype;
    if (in[0].ndim < 0)
        return CT_OK;
    out[0].ndim = in[0].ndim;
    return ct__pool_plan(&s->a, in[0].ndim, in[0].dims, &g, out[0].dims, st);
}

/* One compare or add per window element: N * C * out_size * k. */
static double pool_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct pool_state *s = op->state;
    struct ct__conv_geom g;
    int64_t y_dims[CT_MAX_DIMS];

    if (in[0].ndim < 0 ||
        ct__pool_plan(&s->a, in[0].ndim, in[0].dims, &g, y_dims, NULL) != CT_OK)
        return 0;
    return (double)g.n * (double)g.c * (double)g.out_size * (double)g.k_size;
}

/* Caffe2's GetPoolGradient: <Type>Gradient(X, Y, dY) -> dX. */
static int pool_grad_make_common(struct ct__grad_ctx *g, const char *type,
                                 ct_status_t *st)
{
    const char *in[3], *out[1];

    in[0] = ct__grad_fwd_in(g, 0);
    in[1] = ct__grad_fwd_out(g, 0);
    in[2] = ct__grad_out(g, 0);
    out[0] = ct__grad_in(g, 0);
    return ct__grad_emit(g, type, in, 3, out, 1, 0, NULL, st);
}

static int max_pool_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return pool_grad_make_common(g, "MaxPoolGradient", st);
}

static int avg_pool_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return pool_grad_make_common(g, "AveragePoolGradient", st);
}

static const struct ct_arg_spec pool_args[] = {
    CT_CONV_ARG_SPECS,
    {"count_include_pad", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_max_pool = {
    .name = "MaxPool",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = pool_args,
    .state_size = sizeof(struct pool_state),
    .init_cb = pool_init,
    .infer_cb = pool_infer,
    .run_cb = max_pool_run,
    .grad_cb = max_pool_grad_make,
    .cost_cb = pool_cost,
    .doc = "max over pooling windows, NCHW or NHWC",
};

const struct ct_op_schema ct__op_average_pool = {
    .name = "AveragePool",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = pool_args,
    .state_size = sizeof(struct pool_state),
    .init_cb = pool_init,
    .infer_cb = pool_infer,
    .run_cb = avg_pool_run,
    .grad_cb = avg_pool_grad_make,
    .cost_cb = pool_cost,
    .doc = "mean over pooling windows (count_include_pad), NCHW or NHWC",
};
