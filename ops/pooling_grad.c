/* MaxPoolGradient and AveragePoolGradient (Caffe2's PoolGradientOp).
 *
 * Math, for each output position o with window w(o) (as the forward op):
 *   MaxPoolGradient      dX[i] += dY[o] for every i in w(o) with
 *                        X[i] == Y[o] (ties all receive the gradient, as
 *                        Caffe2's mask);
 *   AveragePoolGradient  dX[i] += dY[o] / count(o) for every i in w(o),
 *                        count as the forward (count_include_pad).
 * Inputs: X, Y, dY (the forward op's input, output and output gradient);
 * AveragePoolGradient never reads Y (Caffe2 neither). Output dX, X's
 * shape. FLOAT only. No in-place.
 * Attrs: those of the forward op (ops/conv_pool.h, count_include_pad).
 * Differences from Caffe2: dY (and Y for MaxPoolGradient) must have the
 * shape the forward op gives for X, CT_ESHAPE otherwise (Caffe2 trusted
 * them).
 *
 * Kernels over items whose writes are disjoint: NCHW planes (N * C),
 * NHWC images (N; windows of neighbouring pixels overlap within an
 * image).
 */
#include <string.h>

#include "ops/conv_pool.h"

struct pool_grad_state {
    struct ct__conv_args a;
    bool count_include_pad;
};

struct pool_grad_job {
    const struct ct__conv_geom *g;
    const float *x, *y, *dy;
    float *dx;
    bool max;
    bool count_pad;
};

static int pool_grad_init(ct_op_t *op, ct_status_t *st)
{
    struct pool_grad_state *s = op->state;
    int32_t cip;
    int rc;

    if ((rc = ct__conv_args_parse(op, CT_CONV_KIND_POOL, &s->a, st)) != CT_OK)
        return rc;
    if ((rc = ct__arg_int32(op, "count_include_pad", 0, &cip, st)) != CT_OK)
        return rc;
    s->count_include_pad = cip != 0;
    return CT_OK;
}

/* The window of output (od, oh, ow) and its element count. */
static int64_t window(const struct ct__conv_geom *g, int64_t od, int64_t oh,
                      int64_t ow, int64_t *lo, int64_t *hi)
{
    const int64_t o[3] = {od, oh, ow};
    int64_t n = 1;
    int i;

    for (i = 0; i < 3; i++) {
        ct__pool_window(o[i], g->s[i], g->pad[i], g->k[i], g->in[i], &lo[i],
                        &hi[i]);
        n *= hi[i] > lo[i] ? hi[i] - lo[i] : 0;
    }
    return n;
}

/* NCHW: item = (n, c) plane. x, y are read only by MaxPoolGradient. */
static void grad_plane(const struct pool_grad_job *j, int64_t it)
{
    const struct ct__conv_geom *g = j->g;
    const float *x = j->max ? j->x + it * g->in_size : NULL;
    const float *y = j->max ? j->y + it * g->out_size : NULL;
    const float *dy = j->dy + it * g->out_size;
    float *dx = j->dx + it * g->in_size;
    int64_t od, oh, ow, id, ih, iw, lo[3], hi[3], o = 0;

    memset(dx, 0, (size_t)g->in_size * sizeof(float));
    for (od = 0; od < g->out[0]; od++) {
        for (oh = 0; oh < g->out[1]; oh++) {
            for (ow = 0; ow < g->out[2]; ow++, o++) {
                const int64_t cnt = window(g, od, oh, ow, lo, hi);
                float v = dy[o];

                if (!j->max) {
                    const int64_t div = j->count_pad ? g->k_size : cnt;
                    v = div > 0 ? v * (1.0f / (float)div) : 0.0f;
                }
                for (id = lo[0]; id < hi[0]; id++) {
                    for (ih = lo[1]; ih < hi[1]; ih++) {
                        const int64_t r = (id * g->in[1] + ih) * g->in[2];
                        if (j->max) {
                            for (iw = lo[2]; iw < hi[2]; iw++)
                                if (x[r + iw] == y[o])
                                    dx[r + iw] += v;
                        } else {
                            for (iw = lo[2]; iw < hi[2]; iw++)
                                dx[r + iw] += v;
                        }
                    }
                }
            }
        }
    }
}

/* NHWC: item = image n, every channel at once. */
static void grad_image_nhwc(const struct pool_grad_job *j, int64_t n)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t C = g->c;
    const float *x = j->max ? j->x + n * g->in_size * C : NULL;
    const float *y = j->max ? j->y + n * g->out_size * C : NULL;
    const float *dy = j->dy + n * g->out_size * C;
    float *dx = j->dx + n * g->in_size * C;
    int64_t od, oh, ow, id, ih, iw, c, lo[3], hi[3], o = 0;

    memset(dx, 0, (size_t)(g->in_size * C) * sizeof(float));
    for (od = 0; od < g->out[0]; od++) {
        for (oh = 0; oh < g->out[1]; oh++) {
            for (ow = 0; ow < g->out[2]; ow++, o += C) {
                const int64_t cnt = window(g, od, oh, ow, lo, hi);
                const int64_t div = j->count_pad ? g->k_size : cnt;
                const float sc = div > 0 ? 1.0f / (float)div : 0.0f;

                for (id = lo[0]; id < hi[0]; id++) {
                    for (ih = lo[1]; ih < hi[1]; ih++) {
                        for (iw = lo[2]; iw < hi[2]; iw++) {
                            const int64_t r =
                                ((id * g->in[1] + ih) * g->in[2] + iw) * C;
                            if (j->max) {
                                for (c = 0; c < C; c++)
                                    if (x[r + c] == y[o + c])
                                        dx[r + c] += dy[o + c];
                            } else {
                                for (c = 0; c < C; c++)
                                    dx[r + c] += dy[o + c] * sc;
                            }
                        }
                    }
                }
            }
        }
    }
}

static void grad_range(void *arg, int64_t i0, int64_t i1, int ith)
{
    const struct pool_grad_job *j = arg;
    int64_t it;

    (void)ith;
    for (it = i0; it < i1; it++) {
        if (j->g->nhwc)
            grad_image_nhwc(j, it);
        else
            grad_plane(j, it);
    }
}

/* Geometry for X; dY (and Y when given) must have the forward's shape. */
static int pool_grad_plan(const struct pool_grad_state *s, int x_ndim,
                          const int64_t *x_dims, int y_ndim,
                          const int64_t *y_dims, int dy_ndim,
                          const int64_t *dy_dims, struct ct__conv_geom *g,
                          ct_status_t *st)
{
    int64_t want[CT_CONV_MAX_SP + 2];
    int rc = ct__pool_plan(&s->a, x_ndim, x_dims, g, want, st);

    if (rc != CT_OK)
        return rc;
    if ((rc = ct__conv_check_dims("dY", dy_ndim, dy_dims, x_ndim, want, st)) !=
        CT_OK)
        return rc;
    if (y_ndim >= 0)
        return ct__conv_check_dims("Y", y_ndim, y_dims, x_ndim, want, st);
    return CT_OK;
}

static int pool_grad_run_common(ct_op_ctx_t *ctx, bool max)
{
    const struct pool_grad_state *s = ctx->op->state;
    const ct_tensor_t *x, *y = NULL, *dy;
    struct ct__conv_geom g;
    struct pool_grad_job j;
    ct_tensor_t *dx;
    ct_status_t lst;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (max && (rc = ct_op_input(ctx, 1, &y)) != CT_OK) ||
        (rc = ct_op_input(ctx, 2, &dy)) != CT_OK)
        return rc;
    {
        const ct_tensor_t *t[3] = {x, y, dy};
        static const char *const names[3] = {"X", "Y", "dY"};
        if ((rc = ct__conv_check_dtypes(ctx, 3, t, names)) != CT_OK)
            return rc;
    }
    ct_status_clear(&lst);
    rc = pool_grad_plan(s, x->ndim, x->dims, y != NULL ? y->ndim : -1,
                        y != NULL ? y->dims : NULL, dy->ndim, dy->dims, &g,
                        &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    rc = ct_op_output(ctx, 0, CT_DTYPE_F32, x->ndim, x->dims, &dx);
    if (rc != CT_OK || g.n == 0)
        return rc;
    j.g = &g;
    j.x = CT_CDATA(x, float);
    j.y = y != NULL ? CT_CDATA(y, float) : NULL;
    j.dy = CT_CDATA(dy, float);
    j.dx = CT_DATA(dx, float);
    j.max = max;
    j.count_pad = s->count_include_pad;
    ct__conv_for(ctx, g.nhwc ? g.n : g.n * g.c, 0, grad_range, &j);
    return CT_OK;
}

static int max_pool_grad_run(ct_op_ctx_t *ctx)
{
    return pool_grad_run_common(ctx, true);
}

static int avg_pool_grad_run(ct_op_ctx_t *ctx)
{
    return pool_grad_run_common(ctx, false);
}

static int pool_grad_infer_common(const ct_op_t *op, const ct_shape_t *in,
                                  ct_shape_t *out, ct_status_t *st, bool max)
{
    const struct pool_grad_state *s = op->state;
    struct ct__conv_geom g;
    int rc;

    out[0].dtype = in[0].dtype;
    if (in[0].ndim < 0 || in[2].ndim < 0 || (max && in[1].ndim < 0))
        return CT_OK;
    rc = pool_grad_plan(s, in[0].ndim, in[0].dims, max ? in[1].ndim : -1,
                        in[1].dims, in[2].ndim, in[2].dims, &g, st);
    if (rc != CT_OK)
        return rc;
    out[0].ndim = in[0].ndim;
    memcpy(out[0].dims, in[0].dims, (size_t)in[0].ndim * sizeof(int64_t));
    return CT_OK;
}

static int max_pool_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                               ct_shape_t *out, ct_status_t *st)
{
    return pool_grad_infer_common(op, in, out, st, true);
}

static int avg_pool_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                               ct_shape_t *out, ct_status_t *st)
{
    return pool_grad_infer_common(op, in, out, st, false);
}

/* One compare-and-add (max) or add per window element. */
static double pool_grad_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct pool_grad_state *s = op->state;
    struct ct__conv_geom g;
    int64_t y_dims[CT_MAX_DIMS];

    if (in[0].ndim < 0 ||
        ct__pool_plan(&s->a, in[0].ndim, in[0].dims, &g, y_dims, NULL) != CT_OK)
        return 0;
    return (double)g.n * (double)g.c * (double)g.out_size * (double)g.k_size;
}

static const struct ct_arg_spec pool_grad_args[] = {
    CT_CONV_ARG_SPECS,
    {"count_include_pad", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_max_pool_gradient = {
    .name = "MaxPoolGradient",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = pool_grad_args,
    .state_size = sizeof(struct pool_grad_state),
    .init_cb = pool_grad_init,
    .infer_cb = max_pool_grad_infer,
    .run_cb = max_pool_grad_run,
    .cost_cb = pool_grad_cost,
    .doc = "dX of MaxPool from X, Y, dY",
};

const struct ct_op_schema ct__op_average_pool_gradient = {
    .name = "AveragePoolGradient",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = pool_grad_args,
    .state_size = sizeof(struct pool_grad_state),
    .init_cb = pool_grad_init,
    .infer_cb = avg_pool_grad_infer,
    .run_cb = avg_pool_grad_run,
    .cost_cb = pool_grad_cost,
    .doc = "dX of AveragePool from X, (Y unused), dY",
};
