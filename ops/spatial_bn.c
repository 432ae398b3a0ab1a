/* Spatial batch normalization: SpatialBN and SpatialBNGradient.
 *
 * Math, per channel c over the N * HxW values x of that channel (HxW = the
 * product of the spatial dims):
 *   y = scale[c] * (x - mu[c]) * rstd[c] + bias[c],
 *   rstd[c] = 1 / sqrt(var[c] + epsilon),
 * computed as the fused affine y = alpha[c] * x + beta[c] with
 * alpha = scale * rstd and beta = bias - alpha * mu.
 * - is_test != 0 (inference): mu and var are the estimates, inputs 3 and 4.
 * - is_test = 0 (training): mu and var are the batch moments (population
 *   variance); outputs saved_mean = mu and saved_inv_var = rstd (Caffe2's
 *   SAVED_INV_STD; the name is Caffe2's), and updates the running stats
 *   in place: running_mean = (1 - momentum) * mu + momentum * running_mean,
 *   running_var = (1 - momentum) * var * n / (n - 1) + momentum *
 *   running_var, n = num_batches * N * HxW. With num_batches > 1, inputs 5
 *   and 6 hold the per-channel sums of x and x^2 over all batches, and
 *   mu = sum / n, var = sumsq / n - mu^2.
 *
 * SpatialBN inputs: X, scale [C], bias [C], mean [C], var [C] (+ the two
 * batch sums when num_batches > 1). Outputs: Y (is_test) or Y,
 * running_mean, running_var, saved_mean, saved_inv_var (training), where
 * running_mean / running_var must be the blobs of inputs 3 / 4 (Caffe2's
 * EnforceInplace). A running stat that does not hold C elements is reset
 * to zeros first (Caffe2's deprecated uninitialised-stats path).
 * SpatialBNGradient inputs: X, scale, dY, saved_mean, saved_inv_var (+
 * dscale_sum, dbias_sum when num_batches > 1); outputs dX, dscale, dbias:
 *   dbias = sum dY, dscale = sum dY * (x - mu) * rstd,
 *   dX = alpha * dY + bx * x + g with alpha = scale * rstd,
 *   bx = -alpha * rstd * dscale / n, g = alpha * (mu * rstd * dscale -
 *   dbias) / n (the batch-statistics gradient). With num_batches > 1,
 *   dscale and dbias are the given sums divided by num_batches. With
 *   is_test != 0, inputs 3 and 4 are the estimated mean and variance and
 *   the statistics are constants: dX = scale * rstd * dY.
 * Attrs: is_test (int, 0), epsilon (float, 1e-5, > 0), momentum (float,
 * 0.9, in [0, 1]), order ("NCHW" | "NHWC"), num_batches (int, 1, >= 1).
 * X has rank >= 2 (N, C first for NCHW; C last for NHWC), C > 0. FLOAT
 * only (Caffe2's CPU kernels); others CT_ENOTSUP. Sums accumulate in
 * double.
 * In-place: X -> Y, mean -> running_mean, var -> running_var, and the two
 * batch sums -> running_mean / running_var; for the gradient, the two
 * sums -> dscale / dbias.
 * Differences from Caffe2: training with one value per channel (n = 1)
 * is CT_ESHAPE (Caffe2 scales the variance by n / (n - 1) = inf); the
 * is_test gradient uses var as the variance (Caffe2 reads input 4 as
 * rstd although its gradient maker passes the variance).
 *
 * Gradient maker (Caffe2's GetSpatialBNGradient): is_test: {X, scale,
 * dY, mean, var}; training: {X, scale, dY, saved_mean, saved_inv_var},
 * plus {dscale, dbias} (the aggregate sums) when num_batches > 1; outputs
 * {dX, dscale, dbias}.
 *
 * The affine pass (both modes) runs through ct_parallel_for over (image,
 * channel) planes (NCHW) or pixels (NHWC); the moment and gradient
 * kernels take channel ranges [c0, c1).
 */
#include <math.h>
#include <string.h>

#include "engine/fuse.h"
#include "engine/gradient.h"
#include "engine/op_internal.h"
#include "ops/op_impl.h"

struct sbn_state {
    bool is_test, nhwc;
    float epsilon, momentum;
    int32_t num_batches;
    /* Conv + SpatialBN fusion (engine/fuse.h): `fused` is set once at net
     * compile time; `applied` is written by the fused Conv's run (through
     * ct__sbn_fused_coeffs) and read by this op's run, which the net's
     * dependency edge Conv -> BN orders after it (the executor's
     * completion ordering publishes it). */
    bool fused, applied;
    /* Per-channel scratch (moments in double, then the float
     * coefficients), grown on the first run that needs more and reused:
     * written only by run_cb, and a net runs one op instance at a time. */
    void *scratch;
    size_t scratch_cap;
};

/* The [N, C, HxW] view of X. */
struct sbn_dims {
    int64_t n, c, hxw;
};

/* ---- shared ---- */

static int sbn_parse(ct_op_t *op, bool grad, ct_status_t *st)
{
    struct sbn_state *s = op->state;
    const char *order;
    size_t order_len;
    int64_t is_test;
    int rc;

    if ((rc = ct__arg_int(op, "is_test", 0, &is_test, st)) != CT_OK ||
        (rc = ct__arg_float(op, "epsilon", 1e-5f, &s->epsilon, st)) != CT_OK ||
        (rc = ct__arg_float(op, "momentum", 0.9f, &s->momentum, st)) != CT_OK ||
        (rc = ct__arg_int32(op, "num_batches", 1, &s->num_batches, st)) !=
            CT_OK ||
        (rc = ct__arg_string(op, "order", "NCHW", &order, &order_len, st)) !=
            CT_OK)
        return rc;
    s->is_test = is_test != 0;
    if (order_len == 4 && memcmp(order, "NHWC", 4) == 0)
        s->nhwc = true;
    else if (!(order_len == 4 && memcmp(order, "NCHW", 4) == 0))
        return ct_status_setf(st, CT_EARG,
                              "order should be either \"NCHW\" or \"NHWC\", "
                              "got \"%.*s\"",
                              (int)order_len, order);
    if (!(s->epsilon > 0) || isinf(s->epsilon))
        return ct_status_setf(st, CT_EARG,
                              "epsilon must be a finite value > 0, got %g",
                              (double)s->epsilon);
    if (!(s->momentum >= 0 && s->momentum <= 1))
        return ct_status_setf(st, CT_EARG, "momentum must be in [0, 1], got %g",
                              (double)s->momentum);
    if (s->num_batches < 1)
        return ct_status_setf(st, CT_EARG, "num_batches must be >= 1, got %d",
                              (int)s->num_batches);
    if (s->num_batches > 1 && op->n_in != 7)
        return ct_status_setf(st, CT_ESCHEMA,
                              "num_batches %d needs 7 inputs (the two batch "
                              "sums last), got %d",
                              (int)s->num_batches, op->n_in);
    if (grad)
        return CT_OK;
    if (s->is_test && op->n_out != 1)
        return ct_status_setf(st, CT_ESCHEMA,
                              "SpatialBN with is_test=1 takes 1 output (Y), "
                              "got %d",
                              op->n_out);
    if (!s->is_test && op->n_out != 5)
        return ct_status_setf(st, CT_ESCHEMA,
                              "SpatialBN in training mode (is_test=0) takes "
                              "5 outputs (Y, running_mean, running_var, "
                              "saved_mean, saved_inv_var), got %d",
                              op->n_out);
    if (!s->is_test && (strcmp(op->def->input[3], op->def->output[1]) != 0 ||
                        strcmp(op->def->input[4], op->def->output[2]) != 0))
        return ct_status_setf(st, CT_ESCHEMA,
                              "Input 3 and Output 1 should be alias, and "
                              "Input 4 and Output 2 (running mean \"%s\" -> "
                              "\"%s\", running var \"%s\" -> \"%s\")",
                              op->def->input[3], op->def->output[1],
                              op->def->input[4], op->def->output[2]);
    return CT_OK;
}

/* Scratch for c channels: 2c doubles followed by 3c floats. */
static int sbn_scratch(ct_op_ctx_t *ctx, int64_t c, double **d, float **f)
{
    struct sbn_state *s = ctx->op->state;
    const size_t need = (size_t)c * (2 * sizeof(double) + 3 * sizeof(float));
    void *p;
    int rc;

    if (need > s->scratch_cap) {
        /* Through the engine, so the budget sees it (CT_ENOMEM names the
         * request). */
        rc = ct__engine_alloc(ctx->eng, need, "SpatialBN per-channel scratch",
                              &p, ctx->status);
        if (rc != CT_OK)
            return rc;
        ct__engine_free(ctx->eng, s->scratch, s->scratch_cap);
        s->scratch = p;
        s->scratch_cap = need;
    }
    *d = s->scratch;
    *f = (float *)(*d + 2 * c);
    return CT_OK;
}

static void sbn_fini(ct_op_t *op)
{
    struct sbn_state *s = op->state;

    if (s->scratch != NULL)
        ct__engine_free(op->eng, s->scratch, s->scratch_cap);
    s->scratch = NULL;
    s->scratch_cap = 0;
}

/* Checks X's rank and gives the [N, C, HxW] view; dims are those of a
 * real tensor or a fully known shape. */
static int sbn_view(const struct sbn_state *s, int nd, const int64_t *d,
                    struct sbn_dims *v, ct_status_t *st)
{
    char buf[128];
    int i;

    if (nd < 2)
        return ct_status_setf(st, CT_ESHAPE,
                              "X %s must have at least 2 dims (N, C, ...)",
                              ct_dims_str(nd, d, buf, sizeof(buf)));
    v->n = d[0];
    v->c = s->nhwc ? d[nd - 1] : d[1];
    v->hxw = 1;
    for (i = s->nhwc ? 1 : 2; i < (s->nhwc ? nd - 1 : nd); i++)
        v->hxw *= d[i];
    if (v->c == 0)
        return ct_status_setf(st, CT_ESHAPE,
                              "X %s has 0 channels (C is dim %d, order %s)",
                              ct_dims_str(nd, d, buf, sizeof(buf)),
                              s->nhwc ? nd - 1 : 1, s->nhwc ? "NHWC" : "NCHW");
    return CT_OK;
}

static const char *const sbn_in_names[] = {
    "X", "scale", "bias", "mean", "var", "batch_mean_sum", "batch_var_sum",
};
static const char *const sbn_grad_in_names[] = {
    "X", "scale", "dY", "saved_mean", "saved_rstd", "dscale_sum", "dbias_sum",
};

/* Element (i, c, j) of the [N, C, HxW] view: NCHW keeps channels apart,
 * NHWC interleaves them. */
static inline int64_t sbn_at(bool nhwc, const struct sbn_dims *v, int64_t i,
                             int64_t c, int64_t j)
{
    return nhwc ? (i * v->hxw + j) * v->c + c : (i * v->c + c) * v->hxw + j;
}

/* ct_parallel_for job of the affine pass. NCHW items are the N * C
 * (image, channel) planes, NHWC items the N * HxW pixels; every item
 * writes its own elements of y only. */
struct sbn_affine_job {
    bool nhwc;
    const struct sbn_dims *v;
    const float *x, *alpha, *beta;
    float *y;
};

/* omp simd on the affine loops: iterations are independent (y may be x,
 * element for element); without OpenMP they are plain C, which GCC -O2
 * leaves scalar. */
#if defined(_OPENMP)
#define SBN_SIMD _Pragma("omp simd")
#else
#define SBN_SIMD
#endif

/* Elements per parallel chunk of the affine pass: ~64 KiB read, enough
 * to hide the fork cost and small enough to balance two threads. */
#define SBN_GRAIN_ELEMS 16384

/* The affine kernels, shared with the fused Conv epilogue (ops/conv_gemm.c)
 * so that both give the same bits: one compiled copy each, never inlined
 * into a caller where the compiler could contract or reorder differently. */
__attribute__((noinline)) void ct__sbn_affine_plane(const float *x, float *y,
                                                    int64_t n, float a, float b)
{
    int64_t k;

    SBN_SIMD for (k = 0; k < n; k++)
    {
        y[k] = a * x[k] + b;
    }
}

__attribute__((noinline)) void ct__sbn_affine_pixel(const float *x, float *y,
                                                    int64_t c, const float *al,
                                                    const float *be)
{
    int64_t k;

    SBN_SIMD for (k = 0; k < c; k++)
    {
        y[k] = al[k] * x[k] + be[k];
    }
}

void ct__sbn_coeffs(const float *scale, const float *bias, const float *mean,
                    const float *var, float eps, int64_t c, float *ab)
{
    int64_t k;

    for (k = 0; k < c; k++) {
        const double rstd = 1.0 / sqrt((double)var[k] + eps);
        const double a = scale[k] * rstd;
        ab[k] = (float)a;
        ab[c + k] = (float)(bias[k] - a * mean[k]);
    }
}

static void sbn_affine_range(void *arg, int64_t i0, int64_t i1, int ith)
{
    const struct sbn_affine_job *j = arg;
    const struct sbn_dims *v = j->v;
    int64_t it;

    (void)ith;
    if (!j->nhwc) {
        for (it = i0; it < i1; it++) {
            const int64_t c = it % v->c;
            ct__sbn_affine_plane(j->x + it * v->hxw, j->y + it * v->hxw, v->hxw,
                                 j->alpha[c], j->beta[c]);
        }
        return;
    }
    for (it = i0; it < i1; it++)
        ct__sbn_affine_pixel(j->x + it * v->c, j->y + it * v->c, v->c, j->alpha,
                             j->beta);
}

/* y = alpha[c] * x + beta[c] over every element, split over the engine's
 * threads. y may be x. */
static int sbn_affine_par(ct_op_ctx_t *ctx, bool nhwc, const struct sbn_dims *v,
                          const float *x, const float *alpha, const float *beta,
                          float *y)
{
    struct sbn_affine_job j = {nhwc, v, x, alpha, beta, y};
    const int64_t n_items = nhwc ? v->n * v->hxw : v->n * v->c;
    const int64_t per_item = nhwc ? v->c : v->hxw;
    int64_t grain =
        per_item >= SBN_GRAIN_ELEMS ? 1 : SBN_GRAIN_ELEMS / per_item;

    if (ct_parallel_for(ctx, n_items, grain, sbn_affine_range, &j) != CT_OK)
        sbn_affine_range(&j, 0, n_items, 0); /* no pool: same result */
    return CT_OK;
}

/* Batch mean and population variance of channels [c0, c1), two passes
 * in double. */
static void sbn_moments(bool nhwc, const struct sbn_dims *v, const float *x,
                        double *mean, double *var, int64_t c0, int64_t c1)
{
    const double inv = 1.0 / (double)(v->n * v->hxw);
    int64_t i, j, c;

    for (c = c0; c < c1; c++) {
        double sum = 0, sq = 0;
        for (i = 0; i < v->n; i++)
            for (j = 0; j < v->hxw; j++)
                sum += x[sbn_at(nhwc, v, i, c, j)];
        mean[c] = sum * inv;
        for (i = 0; i < v->n; i++)
            for (j = 0; j < v->hxw; j++) {
                const double d = x[sbn_at(nhwc, v, i, c, j)] - mean[c];
                sq += d * d;
            }
        var[c] = sq * inv;
    }
}

/* Input i as a FLOAT tensor of exactly c elements. */
static int sbn_vec(ct_op_ctx_t *ctx, int i, const char *const *names, int64_t c,
                   const ct_tensor_t **out)
{
    char buf[128];
    int rc;

    if ((rc = ct_op_input(ctx, i, out)) != CT_OK)
        return rc;
    if ((*out)->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ETYPE, "%s \"%s\" is %s, want FLOAT",
                          names[i], ct_op_input_name(ctx->op, i),
                          ct_dtype_name((*out)->dtype));
    if ((*out)->numel != c)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "%s \"%s\" %s has %lld elements, want C=%lld",
                          names[i], ct_op_input_name(ctx->op, i),
                          ct_tensor_shape_str(*out, buf, sizeof(buf)),
                          (long long)(*out)->numel, (long long)c);
    return CT_OK;
}

/* X as FLOAT with its [N, C, HxW] view. */
static int sbn_input_x(ct_op_ctx_t *ctx, const ct_tensor_t **x,
                       struct sbn_dims *v)
{
    const struct sbn_state *s = ctx->op->state;
    ct_status_t lst;
    int rc;

    if (s->fused) {
        /* The fused Conv wrote Y instead of X (engine/fuse.h): X's
         * checks read Y, which has X's dtype and shape. */
        *x = ct_blob_get_tensor(ctx->op->out[0]);
        if (*x == NULL)
            return ct_op_fail(ctx, CT_ETYPE, "input 0 \"%s\" is empty",
                              ctx->op->def->input[0]);
    } else if ((rc = ct_op_input(ctx, 0, x)) != CT_OK) {
        return rc;
    }
    if ((*x)->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP, "unsupported dtype %s for X (FLOAT)",
                          ct_dtype_name((*x)->dtype));
    ct_status_clear(&lst);
    rc = sbn_view(s, (*x)->ndim, (*x)->dims, v, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    return CT_OK;
}

/* ---- SpatialBN ---- */

/* Output i as [C] FLOAT; when it aliases an input whose data lives
 * elsewhere after the resize (shared storage swapped out), the old values
 * are copied over so the running stats survive. prev may be NULL. */
static int sbn_stat_output(ct_op_ctx_t *ctx, int i, int64_t c,
                           const float *prev, float **out)
{
    ct_tensor_t *t;
    int rc;

    rc = ct_op_output(ctx, i, CT_DTYPE_F32, 1, &c, &t);
    if (rc != CT_OK)
        return rc;
    *out = CT_DATA(t, float);
    if (prev != NULL && *out != prev)
        memcpy(*out, prev, (size_t)c * sizeof(float));
    return CT_OK;
}

/* A running stat input that holds c FLOAT elements, else NULL (reset to
 * zeros, as Caffe2 does for uninitialised stats). */
static const float *sbn_running_in(ct_op_ctx_t *ctx, int i, int64_t c)
{
    const ct_tensor_t *t = ct_blob_get_tensor(ctx->op->in[i]);

    if (t == NULL || t->dtype != CT_DTYPE_F32 || t->numel != c)
        return NULL;
    return CT_CDATA(t, float);
}

static int sbn_train_stats(ct_op_ctx_t *ctx, const struct sbn_dims *v,
                           const float *xs, double *mu, double *var)
{
    const struct sbn_state *s = ctx->op->state;
    const ct_tensor_t *msum, *vsum;
    int64_t c;
    int rc;

    if (s->num_batches == 1) {
        sbn_moments(s->nhwc, v, xs, mu, var, 0, v->c);
        return CT_OK;
    }
    if ((rc = sbn_vec(ctx, 5, sbn_in_names, v->c, &msum)) != CT_OK ||
        (rc = sbn_vec(ctx, 6, sbn_in_names, v->c, &vsum)) != CT_OK)
        return rc;
    for (c = 0; c < v->c; c++) {
        const double k =
            1.0 / ((double)s->num_batches * (double)(v->n * v->hxw));
        mu[c] = CT_CDATA(msum, float)[c] * k;
        var[c] = CT_CDATA(vsum, float)[c] * k - mu[c] * mu[c];
    }
    return CT_OK;
}

static int sbn_run_train(ct_op_ctx_t *ctx, const struct sbn_dims *v,
                         const float *xs, const float *scale, const float *bias,
                         double *mu, float *alpha, float *beta)
{
    const struct sbn_state *s = ctx->op->state;
    const double reduce =
        (double)s->num_batches * (double)v->n * (double)v->hxw;
    const float *rm_in = sbn_running_in(ctx, 3, v->c);
    const float *rv_in = sbn_running_in(ctx, 4, v->c);
    float *rm, *rv, *smean, *srstd;
    double *var = mu + v->c;
    int64_t c;
    int rc;

    if ((rc = sbn_stat_output(ctx, 1, v->c, rm_in, &rm)) != CT_OK ||
        (rc = sbn_stat_output(ctx, 2, v->c, rv_in, &rv)) != CT_OK ||
        (rc = sbn_stat_output(ctx, 3, v->c, NULL, &smean)) != CT_OK ||
        (rc = sbn_stat_output(ctx, 4, v->c, NULL, &srstd)) != CT_OK)
        return rc;
    if (rm_in == NULL)
        memset(rm, 0, (size_t)v->c * sizeof(float));
    if (rv_in == NULL)
        memset(rv, 0, (size_t)v->c * sizeof(float));
    if (v->n == 0) {
        memset(smean, 0, (size_t)v->c * sizeof(float));
        memset(srstd, 0, (size_t)v->c * sizeof(float));
        return CT_OK;
    }
    if (reduce <= 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "training needs more than one value per channel "
                          "(num_batches * N * HxW = %.0f)",
                          reduce);
    rc = sbn_train_stats(ctx, v, xs, mu, var);
    if (rc == CT_OK) {
        const double a = 1.0 - (double)s->momentum, b = s->momentum;
        const double unbias = reduce / (reduce - 1);
        for (c = 0; c < v->c; c++) {
            const double rstd = 1.0 / sqrt(var[c] + (double)s->epsilon);
            rm[c] = (float)(a * mu[c] + b * rm[c]);
            rv[c] = (float)(a * unbias * var[c] + b * rv[c]);
            smean[c] = (float)mu[c];
            srstd[c] = (float)rstd;
            alpha[c] = (float)(scale[c] * rstd);
            beta[c] = (float)(bias[c] - scale[c] * rstd * mu[c]);
        }
    }
    return rc;
}

static int sbn_run(ct_op_ctx_t *ctx)
{
    const struct sbn_state *s = ctx->op->state;
    const ct_tensor_t *x, *scale, *bias, *mean, *var;
    const float *xs;
    double *dscratch;
    float *ab;
    ct_tensor_t *y;
    struct sbn_dims v;
    int rc;

    if ((rc = sbn_input_x(ctx, &x, &v)) != CT_OK ||
        (rc = sbn_vec(ctx, 1, sbn_in_names, v.c, &scale)) != CT_OK ||
        (rc = sbn_vec(ctx, 2, sbn_in_names, v.c, &bias)) != CT_OK)
        return rc;
    if (s->is_test &&
        ((rc = sbn_vec(ctx, 3, sbn_in_names, v.c, &mean)) != CT_OK ||
         (rc = sbn_vec(ctx, 4, sbn_in_names, v.c, &var)) != CT_OK))
        return rc;
    if (s->fused) {
        /* Fused (engine/fuse.h): the Conv wrote Y, with the affine
         * applied unless the params it saw were unusable; then apply it
         * here, in place on Y. */
        struct sbn_state *ms = ctx->op->state;
        const bool applied = ms->applied;
        ms->applied = false;
        if (applied || v.n * v.hxw == 0)
            return CT_OK;
        if ((rc = sbn_scratch(ctx, v.c, &dscratch, &ab)) != CT_OK ||
            (rc = ct_op_output_tensor(ctx, 0, &y)) != CT_OK)
            return rc;
        ct__sbn_coeffs(CT_CDATA(scale, float), CT_CDATA(bias, float),
                       CT_CDATA(mean, float), CT_CDATA(var, float), s->epsilon,
                       v.c, ab);
        return sbn_affine_par(ctx, s->nhwc, &v, CT_DATA(y, float), ab, ab + v.c,
                              CT_DATA(y, float));
    }
    /* X's data before Y's: in place with shared storage, Y gets fresh
     * storage and X keeps the old one (see ops/softmax.c). */
    xs = CT_CDATA(x, float);
    if ((rc = sbn_scratch(ctx, v.c, &dscratch, &ab)) != CT_OK)
        return rc;
    if (s->is_test) {
        ct__sbn_coeffs(CT_CDATA(scale, float), CT_CDATA(bias, float),
                       CT_CDATA(mean, float), CT_CDATA(var, float), s->epsilon,
                       v.c, ab);
    } else {
        rc = sbn_run_train(ctx, &v, xs, CT_CDATA(scale, float),
                           CT_CDATA(bias, float), dscratch, ab, ab + v.c);
    }
    if (rc == CT_OK)
        rc = ct_op_output(ctx, 0, CT_DTYPE_F32, x->ndim, x->dims, &y);
    if (rc == CT_OK && v.n * v.hxw > 0)
        rc = sbn_affine_par(ctx, s->nhwc, &v, xs, ab, ab + v.c,
                            CT_DATA(y, float));
    return rc;
}

static int sbn_init(ct_op_t *op, ct_status_t *st)
{
    return sbn_parse(op, false, st);
}

/* ---- Conv + SpatialBN fusion hooks (engine/fuse.h) ---- */

bool ct__sbn_fusable(const ct_op_t *op, bool *nhwc)
{
    const struct sbn_state *s = op->state;

    if (strcmp(op->schema->name, "SpatialBN") != 0 || !s->is_test ||
        op->n_out != 1)
        return false;
    *nhwc = s->nhwc;
    return true;
}

void ct__sbn_set_fused(ct_op_t *bn)
{
    struct sbn_state *s = bn->state;

    s->fused = true;
    s->applied = false;
}

/* Input i of bn as FLOAT data of c elements, else NULL. */
static const float *sbn_fused_vec(const ct_op_t *bn, int i, int64_t c)
{
    const ct_tensor_t *t = ct_blob_get_tensor(bn->in[i]);

    if (t == NULL || t->dtype != CT_DTYPE_F32 || t->numel != c)
        return NULL;
    return CT_CDATA(t, float);
}

bool ct__sbn_fused_coeffs(ct_op_t *bn, int64_t c, float *ab)
{
    struct sbn_state *s = bn->state;
    const float *scale = sbn_fused_vec(bn, 1, c);
    const float *bias = sbn_fused_vec(bn, 2, c);
    const float *mean = sbn_fused_vec(bn, 3, c);
    const float *var = sbn_fused_vec(bn, 4, c);

    s->applied = scale != NULL && bias != NULL && mean != NULL && var != NULL;
    if (s->applied)
        ct__sbn_coeffs(scale, bias, mean, var, s->epsilon, c, ab);
    return s->applied;
}

/* Checks that the [C] inputs in[lo..hi) have C elements when known. */
static int sbn_check_vecs(const ct_shape_t *in, int lo, int hi, int n_in,
                          int64_t c, const char *const *names, ct_status_t *st)
{
    char buf[128];
    int i, k;

    for (i = lo; i < hi && i < n_in; i++) {
        int64_t n = 1;
        if (in[i].ndim < 0)
            continue;
        for (k = 0; k < in[i].ndim; k++)
            n *= in[i].dims[k];
        if (n != c)
            return ct_status_setf(
                st, CT_ESHAPE, "%s %s has %lld elements, want C=%lld", names[i],
                ct_dims_str(in[i].ndim, in[i].dims, buf, sizeof(buf)),
                (long long)n, (long long)c);
    }
    return CT_OK;
}

static int sbn_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    const struct sbn_state *s = op->state;
    struct sbn_dims v;
    int i, rc;

    out[0] = in[0];
    for (i = 1; i < op->n_out; i++)
        out[i].dtype = CT_DTYPE_F32;
    if (in[0].ndim < 0)
        return CT_OK;
    if ((rc = sbn_view(s, in[0].ndim, in[0].dims, &v, st)) != CT_OK ||
        (rc = sbn_check_vecs(in, 1, s->is_test ? 5 : 3, op->n_in, v.c,
                             sbn_in_names, st)) != CT_OK)
        return rc;
    for (i = 1; i < op->n_out; i++) {
        out[i].ndim = 1;
        out[i].dims[0] = v.c;
    }
    return CT_OK;
}

static double shape_numel(const ct_shape_t *s)
{
    double n = 1;
    int i;

    if (s->ndim < 0)
        return 0;
    for (i = 0; i < s->ndim; i++)
        n *= (double)s->dims[i];
    return n;
}

/* Inference: one multiply-add per element; training adds the two moment
 * passes (3 flops per element). */
static double sbn_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct sbn_state *s = op->state;

    return shape_numel(&in[0]) * (s->is_test ? 2 : 5);
}

static bool sbn_inplace(int in, int out)
{
    return (in == 0 && out == 0) || (in == 3 && out == 1) ||
           (in == 4 && out == 2) || (in == 5 && out == 3) ||
           (in == 6 && out == 4);
}

/* ---- SpatialBNGradient ---- */

/* Per-channel sums of dY and dY * x for channels [c0, c1). */
static void sbn_grad_sums(bool nhwc, const struct sbn_dims *v, const float *x,
                          const float *dy, double *sum_dy, double *sum_dyx,
                          int64_t c0, int64_t c1)
{
    int64_t i, j, c;

    for (c = c0; c < c1; c++) {
        double a = 0, b = 0;
        for (i = 0; i < v->n; i++)
            for (j = 0; j < v->hxw; j++) {
                const int64_t k = sbn_at(nhwc, v, i, c, j);
                a += dy[k];
                b += (double)dy[k] * x[k];
            }
        sum_dy[c] = a;
        sum_dyx[c] = b;
    }
}

/* dX = a[c] * dY + b[c] * X + g[c] for channels [c0, c1). */
static void sbn_grad_dx(bool nhwc, const struct sbn_dims *v, const float *x,
                        const float *dy, const float *a, const float *b,
                        const float *g, float *dx, int64_t c0, int64_t c1)
{
    int64_t i, j, c;

    for (i = 0; i < v->n; i++)
        for (c = c0; c < c1; c++)
            for (j = 0; j < v->hxw; j++) {
                const int64_t k = sbn_at(nhwc, v, i, c, j);
                dx[k] = a[c] * dy[k] + b[c] * x[k] + g[c];
            }
}

/* dscale and dbias of every channel into ds and db (double): the sums
 * over the batch, or the given aggregate sums / num_batches. Reads every
 * input, so it runs before any output is resized (the sums may be the
 * dscale / dbias blobs, in place). */
static int sbn_grad_sums_or_given(ct_op_ctx_t *ctx, const struct sbn_dims *v,
                                  const float *xs, const float *dys,
                                  const float *mean, const float *stat,
                                  double *ds, double *db)
{
    const struct sbn_state *s = ctx->op->state;
    const ct_tensor_t *ssum, *bsum;
    int64_t c;
    int rc;

    if (s->num_batches > 1 && !s->is_test) {
        if ((rc = sbn_vec(ctx, 5, sbn_grad_in_names, v->c, &ssum)) != CT_OK ||
            (rc = sbn_vec(ctx, 6, sbn_grad_in_names, v->c, &bsum)) != CT_OK)
            return rc;
        for (c = 0; c < v->c; c++) {
            ds[c] = CT_CDATA(ssum, float)[c] / (float)s->num_batches;
            db[c] = CT_CDATA(bsum, float)[c] / (float)s->num_batches;
        }
        return CT_OK;
    }
    if (v->n == 0) {
        memset(ds, 0, (size_t)v->c * sizeof(double));
        memset(db, 0, (size_t)v->c * sizeof(double));
        return CT_OK;
    }
    sbn_grad_sums(s->nhwc, v, xs, dys, db, ds, 0, v->c);
    for (c = 0; c < v->c; c++) {
        const double rstd = s->is_test
                                ? 1.0 / sqrt((double)stat[c] + s->epsilon)
                                : (double)stat[c];
        ds[c] = (ds[c] - mean[c] * db[c]) * rstd;
    }
    return CT_OK;
}

/* The dX coefficients a, b, g of every channel from ds and db. */
static void sbn_grad_coeffs(const struct sbn_state *s, const struct sbn_dims *v,
                            const float *scale, const float *mean,
                            const float *stat, const double *ds,
                            const double *db, float *coef)
{
    const double inv_n = 1.0 / ((double)v->n * (double)v->hxw);
    float *a = coef, *b = coef + v->c, *g = coef + 2 * v->c;
    int64_t c;

    for (c = 0; c < v->c; c++) {
        const double rstd = s->is_test
                                ? 1.0 / sqrt((double)stat[c] + s->epsilon)
                                : (double)stat[c];
        const double alpha = scale[c] * rstd;
        a[c] = (float)alpha;
        if (s->is_test) {
            b[c] = 0;
            g[c] = 0;
        } else {
            b[c] = (float)(-alpha * rstd * ds[c] * inv_n);
            g[c] = (float)(alpha * (mean[c] * rstd * ds[c] - db[c]) * inv_n);
        }
    }
}

static int sbn_grad_run(ct_op_ctx_t *ctx)
{
    const struct sbn_state *s = ctx->op->state;
    const ct_tensor_t *x, *scale, *dy, *mean, *stat;
    const float *xs, *dys;
    ct_tensor_t *dx, *dscale, *dbias;
    double *ds, *db;
    float *coef;
    struct sbn_dims v;
    char b1[128], b2[128];
    int64_t c;
    int rc;

    if ((rc = sbn_input_x(ctx, &x, &v)) != CT_OK ||
        (rc = sbn_vec(ctx, 1, sbn_grad_in_names, v.c, &scale)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &dy)) != CT_OK ||
        (rc = sbn_vec(ctx, 3, sbn_grad_in_names, v.c, &mean)) != CT_OK ||
        (rc = sbn_vec(ctx, 4, sbn_grad_in_names, v.c, &stat)) != CT_OK)
        return rc;
    if (dy->dtype != CT_DTYPE_F32 || dy->ndim != x->ndim ||
        memcmp(dy->dims, x->dims, (size_t)x->ndim * sizeof(int64_t)) != 0)
        return ct_op_fail(ctx, CT_ESHAPE, "dY %s %s must match X %s FLOAT",
                          ct_dtype_name(dy->dtype),
                          ct_tensor_shape_str(dy, b1, sizeof(b1)),
                          ct_tensor_shape_str(x, b2, sizeof(b2)));
    xs = CT_CDATA(x, float);
    dys = CT_CDATA(dy, float);
    if ((rc = sbn_scratch(ctx, v.c, &ds, &coef)) != CT_OK)
        return rc;
    db = ds + v.c;
    rc = sbn_grad_sums_or_given(ctx, &v, xs, dys, CT_CDATA(mean, float),
                                CT_CDATA(stat, float), ds, db);
    if (rc != CT_OK)
        return rc;
    sbn_grad_coeffs(s, &v, CT_CDATA(scale, float), CT_CDATA(mean, float),
                    CT_CDATA(stat, float), ds, db, coef);
    if ((rc = ct_op_output(ctx, 1, CT_DTYPE_F32, 1, &v.c, &dscale)) != CT_OK ||
        (rc = ct_op_output(ctx, 2, CT_DTYPE_F32, 1, &v.c, &dbias)) != CT_OK ||
        (rc = ct_op_output(ctx, 0, CT_DTYPE_F32, x->ndim, x->dims, &dx)) !=
            CT_OK)
        return rc;
    for (c = 0; c < v.c; c++) {
        CT_DATA(dscale, float)[c] = (float)ds[c];
        CT_DATA(dbias, float)[c] = (float)db[c];
    }
    /* One range for now; ct_parallel_for will split the channels. */
    if (v.n * v.hxw > 0)
        sbn_grad_dx(s->nhwc, &v, xs, dys, coef, coef + v.c, coef + 2 * v.c,
                    CT_DATA(dx, float), 0, v.c);
    return CT_OK;
}

static int sbn_grad_init(ct_op_t *op, ct_status_t *st)
{
    return sbn_parse(op, true, st);
}

static int sbn_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                          ct_shape_t *out, ct_status_t *st)
{
    const struct sbn_state *s = op->state;
    struct sbn_dims v;
    int rc;

    out[0] = in[0];
    out[1].dtype = out[2].dtype = CT_DTYPE_F32;
    if (in[0].ndim < 0)
        return CT_OK;
    if ((rc = sbn_view(s, in[0].ndim, in[0].dims, &v, st)) != CT_OK ||
        (rc = sbn_check_vecs(in, 1, 2, op->n_in, v.c, sbn_grad_in_names, st)) !=
            CT_OK ||
        (rc = sbn_check_vecs(in, 3, 5, op->n_in, v.c, sbn_grad_in_names, st)) !=
            CT_OK)
        return rc;
    out[1].ndim = out[2].ndim = 1;
    out[1].dims[0] = out[2].dims[0] = v.c;
    return CT_OK;
}

/* Two sums and one fused update per element. */
static double sbn_grad_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return shape_numel(&in[0]) * 7;
}

static bool sbn_grad_inplace(int in, int out)
{
    return (in == 5 && out == 1) || (in == 6 && out == 2);
}

static int sbn_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const Caffe2__OperatorDef *d = g->def;
    const char *in[7], *out[3];
    int64_t is_test = 0, num_batches = 1;
    int n_in = 5, rc;

    if ((rc = ct__argv_int(d->arg, d->n_arg, "is_test", 0, &is_test, st)) !=
            CT_OK ||
        (rc = ct__argv_int(d->arg, d->n_arg, "num_batches", 1, &num_batches,
                           st)) != CT_OK)
        return rc;
    in[0] = ct__grad_fwd_in(g, 0);
    in[1] = ct__grad_fwd_in(g, 1);
    in[2] = ct__grad_out(g, 0);
    if (in[2] == NULL)
        return ct_status_setf(st, CT_ENOTSUP,
                              "SpatialBN needs the gradient of output 0 (Y)");
    out[0] = ct__grad_in(g, 0);
    out[1] = ct__grad_in(g, 1);
    out[2] = ct__grad_in(g, 2);
    if (is_test) {
        in[3] = ct__grad_fwd_in(g, 3);
        in[4] = ct__grad_fwd_in(g, 4);
    } else {
        in[3] = ct__grad_fwd_out(g, 3);
        in[4] = ct__grad_fwd_out(g, 4);
        if (num_batches > 1) {
            in[5] = out[1];
            in[6] = out[2];
            n_in = 7;
        }
    }
    return ct__grad_emit(g, "SpatialBNGradient", in, n_in, out, 3, 0, NULL, st);
}

static const struct ct_arg_spec sbn_args[] = {
    {"is_test", CT_ARG_INT, false},     {"epsilon", CT_ARG_FLOAT, false},
    {"momentum", CT_ARG_FLOAT, false},  {"order", CT_ARG_STRING, false},
    {"num_batches", CT_ARG_INT, false}, {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_spatial_bn = {
    .name = "SpatialBN",
    .min_inputs = 5,
    .max_inputs = 7,
    .min_outputs = 1,
    .max_outputs = 5,
    .inplace_cb = sbn_inplace,
    .args = sbn_args,
    .state_size = sizeof(struct sbn_state),
    .init_cb = sbn_init,
    .fini_cb = sbn_fini,
    .infer_cb = sbn_infer,
    .run_cb = sbn_run,
    .grad_cb = sbn_grad_make,
    .cost_cb = sbn_cost,
    .doc = "y = scale * (x - mean) / sqrt(var + epsilon) + bias per channel",
};

const struct ct_op_schema ct__op_spatial_bn_gradient = {
    .name = "SpatialBNGradient",
    .min_inputs = 5,
    .max_inputs = 7,
    .min_outputs = 3,
    .max_outputs = 3,
    .inplace_cb = sbn_grad_inplace,
    .args = sbn_args,
    .state_size = sizeof(struct sbn_state),
    .init_cb = sbn_grad_init,
    .fini_cb = sbn_fini,
    .infer_cb = sbn_grad_infer,
    .run_cb = sbn_grad_run,
    .cost_cb = sbn_grad_cost,
    .doc = "dX, dscale, dbias of SpatialBN",
};
