/* cortado: output sizes, shape checks and run helpers shared by the
 * convolution and pooling ops (see ops/conv_pool.h; the arguments are
 * parsed by ops/conv_args.c).
 *
 * Design note. Arguments are parsed once per op into struct
 * ct__conv_args; every shape-dependent check (filter shape, output
 * extents) happens per run and in shape inference through the *_plan
 * functions, which only read the arguments, so one op serves any input
 * shape. Output sizes follow Caffe2's ComputeSizeAndPad, computed in
 * exact int64 arithmetic (Caffe2 divides in float, which is the same for
 * any realistic extent). Error paths format into the caller's status and
 * never allocate.
 */
#include <stdio.h>
#include <string.h>

#include "ops/conv_pool.h"

/* ---- output sizes ---- */

static const char *dims_s(int nd, const int64_t *d, char *buf, size_t size)
{
    return ct_dims_str(nd, d, buf, size);
}

/* Caffe2's ComputeSizeAndPad for spatial dim j (of n_sp) with input
 * extent in. Gives the head pad and the output extent. */
static int size_and_pad(const struct ct__conv_args *a, int j, int n_sp,
                        int64_t in, int64_t *pad_head, int64_t *out,
                        ct_status_t *st)
{
    const int64_t k = a->kernel[j], s = a->stride[j], d = a->dilation[j];
    const int64_t dk = d * (k - 1) + 1;
    int64_t ph = a->pads[j], pt = a->pads[n_sp + j], span, num, o;

    switch (a->legacy_pad) {
    case CT_LEGACY_PAD_VALID:
        ph = pt = 0;
        /* fall through */
    case CT_LEGACY_PAD_NOTSET:
        if (__builtin_add_overflow(in, ph + pt, &span))
            return ct_status_setf(st, CT_EOVERFLOW,
                                  "spatial dim %d: input extent %lld plus "
                                  "pads overflows int64",
                                  j, (long long)in);
        if (span < dk)
            return ct_status_setf(
                st, CT_ESHAPE,
                "spatial dim %d: input extent %lld with pads %lld + %lld is "
                "smaller than the kernel extent %lld (kernel %lld, dilation "
                "%lld): output extent would be <= 0",
                j, (long long)in, (long long)ph, (long long)pt, (long long)dk,
                (long long)k, (long long)d);
        o = (span - dk) / s + 1;
        break;
    case CT_LEGACY_PAD_SAME: {
        /* Caffe2 pads the tail more (CAFFE2_PAD_HEAD_MORE is false); a
         * kernel smaller than the stride may give negative pads, which
         * only shift the windows. */
        int64_t target = in / s + (in % s != 0), need;
        need = (target - 1) * s + k - in;
        ph = need / 2;
        o = target;
        break;
    }
    default: /* CT_LEGACY_PAD_CAFFE: Caffe's ceil, from the head pad only */
        if (in > INT64_MAX - 2 * ph)
            return ct_status_setf(st, CT_EOVERFLOW,
                                  "spatial dim %d: input extent %lld plus "
                                  "pads overflows int64",
                                  j, (long long)in);
        num = in + 2 * ph - k;
        if (num < 0)
            return ct_status_setf(
                st, CT_ESHAPE,
                "spatial dim %d: input extent %lld with pads %lld + %lld is "
                "smaller than the kernel %lld: output extent would be <= 0",
                j, (long long)in, (long long)ph, (long long)ph, (long long)k);
        o = num / s + (num % s != 0) + 1;
        /* The last window must start inside the image (or its head pad). */
        if (ph > 0 && (o - 1) * s >= in + ph)
            o--;
        /* Caffe2's tail pad, ph + s * (o - (num / s + 1)), is implied by o
         * and never read by the kernels. */
        break;
    }
    *pad_head = ph;
    *out = o;
    return CT_OK;
}

/* ConvTranspose: (in - 1) * stride + kernel + adj - pads. */
static int size_transpose(const struct ct__conv_args *a, int j, int n_sp,
                          int64_t in, int64_t *pad_head, int64_t *out,
                          ct_status_t *st)
{
    int64_t ph = a->pads[j], pt = a->pads[n_sp + j], o;

    if (a->legacy_pad != CT_LEGACY_PAD_NOTSET)
        ph = pt = 0; /* VALID and SAME alike, as Caffe2 */
    if (__builtin_mul_overflow(in - 1, (int64_t)a->stride[j], &o) ||
        __builtin_add_overflow(o, (int64_t)a->kernel[j] + a->adj[j], &o))
        return ct_status_setf(st, CT_EOVERFLOW,
                              "spatial dim %d: output extent of input %lld "
                              "overflows int64",
                              j, (long long)in);
    o -= ph + pt;
    if (o <= 0)
        return ct_status_setf(
            st, CT_ESHAPE,
            "spatial dim %d: output extent (%lld - 1) * stride %d + kernel "
            "%d + adj %d - pads %lld - %lld = %lld is <= 0",
            j, (long long)in, (int)a->stride[j], (int)a->kernel[j],
            (int)a->adj[j], (long long)ph, (long long)pt, (long long)o);
    *pad_head = ph;
    *out = o;
    return CT_OK;
}

/* Splits X's dims into batch, channels and spatial extents; checks the
 * rank (n_sp + 2) and that channels and extents are non-empty (Caffe2
 * asks for size_from_dim(1) > 0). */
static int split_x(const char *what, bool nhwc, int n_sp, int ndim,
                   const int64_t *dims, int64_t *n, int64_t *c,
                   const int64_t **sp, ct_status_t *st)
{
    char sx[128];
    int i;

    if (ndim != n_sp + 2)
        return ct_status_setf(st, CT_ESHAPE,
                              "%s %s is %d-d, but the kernel has %d spatial "
                              "dims (want %d-d)",
                              what, dims_s(ndim, dims, sx, sizeof(sx)), ndim,
                              n_sp, n_sp + 2);
    for (i = 1; i < ndim; i++)
        if (dims[i] <= 0)
            return ct_status_setf(st, CT_ESHAPE,
                                  "%s %s: channels and spatial extents must "
                                  "be > 0",
                                  what, dims_s(ndim, dims, sx, sizeof(sx)));
    *n = dims[0];
    *c = nhwc ? dims[ndim - 1] : dims[1];
    *sp = nhwc ? dims + 1 : dims + 2;
    return CT_OK;
}

/* Fills the spatial part of g from per-dim extents in[0..n_sp) and
 * out[0..n_sp) and the arguments (or the global kernel). */
static int geom_fill(const struct ct__conv_args *a, int n_sp, const int64_t *in,
                     const int64_t *out, const int64_t *pad,
                     struct ct__conv_geom *g, ct_status_t *st)
{
    const int off = CT_CONV_MAX_SP - n_sp;
    bool ovf = false;
    int i;

    g->n_sp = n_sp;
    g->nhwc = a->nhwc;
    g->in_size = g->out_size = g->k_size = 1;
    for (i = 0; i < CT_CONV_MAX_SP; i++) {
        const int j = i - off;
        if (j < 0) {
            g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
            g->pad[i] = 0;
        } else {
            g->in[i] = in[j];
            g->out[i] = out[j];
            g->k[i] = a->global_pooling ? in[j] : a->kernel[j];
            g->s[i] = a->stride[j];
            g->d[i] = a->dilation[j];
            g->pad[i] = pad[j];
        }
        ovf |= __builtin_mul_overflow(g->in_size, g->in[i], &g->in_size);
        ovf |= __builtin_mul_overflow(g->out_size, g->out[i], &g->out_size);
        ovf |= __builtin_mul_overflow(g->k_size, g->k[i], &g->k_size);
    }
    if (ovf)
        return ct_status_setf(st, CT_EOVERFLOW,
                              "the input, output or kernel volume of %d "
                              "spatial dims overflows int64",
                              n_sp);
    return CT_OK;
}

/* Assembles [N, C, sp...] or [N, sp..., C]. */
static void make_dims(bool nhwc, int n_sp, int64_t n, int64_t c,
                      const int64_t *sp, int64_t *dims)
{
    dims[0] = n;
    memcpy(dims + (nhwc ? 1 : 2), sp, (size_t)n_sp * sizeof(int64_t));
    dims[nhwc ? n_sp + 1 : 1] = c;
}

/* The output's element count must fit int64. */
static int geom_check_sizes(int ndim, const int64_t *y_dims, ct_status_t *st)
{
    int64_t ny;
    char sy[128];

    if (ct_dims_numel(ndim, y_dims, &ny, NULL) == CT_OK)
        return CT_OK;
    return ct_status_setf(st, CT_EOVERFLOW, "output %s overflows int64",
                          dims_s(ndim, y_dims, sy, sizeof(sy)));
}

int ct__conv_geom_fwd(const struct ct__conv_args *a, int ndim,
                      const int64_t *dims, struct ct__conv_geom *g,
                      ct_status_t *st)
{
    int64_t out[CT_CONV_MAX_SP], pad[CT_CONV_MAX_SP];
    const int64_t *sp;
    char sx[128];
    int n_sp = a->n_sp, j, rc;

    if (a->global_pooling) {
        n_sp = ndim - 2;
        if (n_sp < 1 || n_sp > CT_CONV_MAX_SP)
            return ct_status_setf(st, CT_ESHAPE,
                                  "X %s: global pooling needs 1 to 3 spatial "
                                  "dims (3-d to 5-d input)",
                                  dims_s(ndim, dims, sx, sizeof(sx)));
    }
    memset(g, 0, sizeof(*g));
    rc = split_x("X", a->nhwc, n_sp, ndim, dims, &g->n, &g->c, &sp, st);
    if (rc != CT_OK)
        return rc;
    for (j = 0; j < n_sp; j++) {
        if (a->global_pooling) {
            out[j] = 1;
            pad[j] = 0;
            continue;
        }
        rc = size_and_pad(a, j, n_sp, sp[j], &pad[j], &out[j], st);
        if (rc != CT_OK)
            return rc;
    }
    if ((rc = geom_fill(a, n_sp, sp, out, pad, g, st)) != CT_OK)
        return rc;
    g->group = a->group > 0 ? a->group : 1;
    return CT_OK;
}

/* BLAS takes int dims: the GEMM sizes of a geometry must fit. */
static int blas_fit(const struct ct__conv_geom *g, ct_status_t *st)
{
    static const char *const names[4] = {"output channels",
                                         "kernel size x channels",
                                         "output extent", "input extent"};
    int64_t kd, v[4];
    int i;

    /* c * k_size, the column height summed over the groups (NHWC's lda). */
    if (__builtin_mul_overflow(g->c, g->k_size, &kd))
        kd = INT64_MAX;
    v[0] = g->m;
    v[1] = kd;
    v[2] = g->out_size;
    v[3] = g->in_size;

    for (i = 0; i < 4; i++)
        if (v[i] > INT32_MAX)
            return ct_status_setf(st, CT_ENOTSUP,
                                  "%s %lld exceeds the BLAS int range",
                                  names[i], (long long)v[i]);
    return CT_OK;
}

/* The filter must be [m, c/group, k...] (NCHW) or [m, k..., c/group]. */
static int check_filter(const struct ct__conv_args *a, int n_sp, int w_ndim,
                        const int64_t *w_dims, int64_t m, int64_t cg,
                        const char *why, ct_status_t *st)
{
    int64_t want[CT_CONV_MAX_SP + 2];
    char sw[128], swant[128];
    int i;

    want[0] = m;
    for (i = 0; i < n_sp; i++)
        want[a->nhwc ? 1 + i : 2 + i] = a->kernel[i];
    want[a->nhwc ? n_sp + 1 : 1] = cg;
    if (w_ndim == n_sp + 2 &&
        memcmp(w_dims, want, (size_t)w_ndim * sizeof(int64_t)) == 0)
        return CT_OK;
    return ct_status_setf(st, CT_ESHAPE,
                          "W %s does not match: expected %s (%s)",
                          dims_s(w_ndim, w_dims, sw, sizeof(sw)),
                          dims_s(n_sp + 2, want, swant, sizeof(swant)), why);
}

static int check_bias(int b_ndim, const int64_t *b_dims, int64_t n,
                      const char *what, ct_status_t *st)
{
    char sb[128];

    if (b_ndim < 0 || (b_ndim == 1 && b_dims[0] == n))
        return CT_OK;
    return ct_status_setf(st, CT_ESHAPE, "b %s must be 1-d of %s=%lld elements",
                          dims_s(b_ndim, b_dims, sb, sizeof(sb)), what,
                          (long long)n);
}

int ct__conv_plan(const struct ct__conv_args *a, int x_ndim,
                  const int64_t *x_dims, int w_ndim, const int64_t *w_dims,
                  int b_ndim, const int64_t *b_dims, struct ct__conv_geom *g,
                  int64_t *y_dims, ct_status_t *st)
{
    char sx[128], sw[128], why[96];
    int64_t n, c, m;
    const int64_t *sp;
    int rc;

    rc = split_x("X", a->nhwc, a->n_sp, x_ndim, x_dims, &n, &c, &sp, st);
    if (rc != CT_OK)
        return rc;
    if (w_ndim != x_ndim)
        return ct_status_setf(st, CT_ESHAPE, "W %s must be %d-d like X %s",
                              dims_s(w_ndim, w_dims, sw, sizeof(sw)), x_ndim,
                              dims_s(x_ndim, x_dims, sx, sizeof(sx)));
    m = w_dims[0];
    if (c % a->group != 0)
        return ct_status_setf(st, CT_ESHAPE,
                              "X %s has C=%lld channels, not divisible by "
                              "group %d",
                              dims_s(x_ndim, x_dims, sx, sizeof(sx)),
                              (long long)c, (int)a->group);
    if (m % a->group != 0)
        return ct_status_setf(st, CT_ESHAPE,
                              "W %s has M=%lld output channels, not divisible "
                              "by group %d",
                              dims_s(w_ndim, w_dims, sw, sizeof(sw)),
                              (long long)m, (int)a->group);
    snprintf(why, sizeof(why), "M=%lld, C/group=%lld/%d, kernel", (long long)m,
             (long long)c, (int)a->group);
    rc = check_filter(a, a->n_sp, w_ndim, w_dims, m, c / a->group, why, st);
    if (rc != CT_OK)
        return rc;
    if ((rc = check_bias(b_ndim, b_dims, m, "M", st)) != CT_OK)
        return rc;
    if ((rc = ct__conv_geom_fwd(a, x_ndim, x_dims, g, st)) != CT_OK)
        return rc;
    g->m = m;
    make_dims(a->nhwc, a->n_sp, n, m, g->out + CT_CONV_MAX_SP - a->n_sp,
              y_dims);
    if ((rc = geom_check_sizes(x_ndim, y_dims, st)) != CT_OK)
        return rc;
    return blas_fit(g, st);
}

int ct__conv_infer(const ct_op_t *op, const struct ct__conv_args *a,
                   ct__conv_plan_fn plan, const ct_shape_t *in, ct_shape_t *out,
                   ct_status_t *st)
{
    struct ct__conv_geom g;
    int i;

    for (i = 1; i < op->n_in; i++) {
        if (in[0].dtype != CT_DTYPE_UNDEFINED &&
            in[i].dtype != CT_DTYPE_UNDEFINED && in[i].dtype != in[0].dtype)
            return ct_status_setf(
                st, CT_ETYPE, "X is %s but %s is %s; all must be FLOAT",
                ct_dtype_name(in[0].dtype), i == 1 ? "W" : "b",
                ct_dtype_name(in[i].dtype));
    }
    out[0].dtype = in[0].dtype;
    for (i = 0; i < op->n_in; i++)
        if (in[i].ndim < 0)
            return CT_OK;
    out[0].ndim = in[0].ndim;
    return plan(a, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims,
                op->n_in > 2 ? in[2].ndim : -1,
                op->n_in > 2 ? in[2].dims : NULL, &g, out[0].dims, st);
}

int ct__conv_transpose_plan(const struct ct__conv_args *a, int x_ndim,
                            const int64_t *x_dims, int w_ndim,
                            const int64_t *w_dims, int b_ndim,
                            const int64_t *b_dims, struct ct__conv_geom *g,
                            int64_t *y_dims, ct_status_t *st)
{
    char sx[128], sw[128], why[96];
    int64_t n, m, c, cg, ysp[CT_CONV_MAX_SP], pad[CT_CONV_MAX_SP];
    const int64_t *sp;
    int j, rc;

    rc = split_x("X", a->nhwc, a->n_sp, x_ndim, x_dims, &n, &m, &sp, st);
    if (rc != CT_OK)
        return rc;
    if (w_ndim != x_ndim)
        return ct_status_setf(st, CT_ESHAPE, "W %s must be %d-d like X %s",
                              dims_s(w_ndim, w_dims, sw, sizeof(sw)), x_ndim,
                              dims_s(x_ndim, x_dims, sx, sizeof(sx)));
    if (m % a->group != 0)
        return ct_status_setf(st, CT_ESHAPE,
                              "X %s has M=%lld input channels, not divisible "
                              "by group %d",
                              dims_s(x_ndim, x_dims, sx, sizeof(sx)),
                              (long long)m, (int)a->group);
    cg = a->nhwc ? w_dims[w_ndim - 1] : w_dims[1];
    snprintf(why, sizeof(why), "M=%lld input channels, C/group=%lld, kernel",
             (long long)m, (long long)cg);
    rc = check_filter(a, a->n_sp, w_ndim, w_dims, m, cg, why, st);
    if (rc != CT_OK)
        return rc;
    if (__builtin_mul_overflow(cg, (int64_t)a->group, &c))
        return ct_status_setf(st, CT_EOVERFLOW,
                              "output channels %lld * group %d overflow",
                              (long long)cg, (int)a->group);
    if (c <= 0)
        return ct_status_setf(st, CT_ESHAPE, "W %s gives C=0 output channels",
                              dims_s(w_ndim, w_dims, sw, sizeof(sw)));
    if ((rc = check_bias(b_ndim, b_dims, c, "C", st)) != CT_OK)
        return rc;
    for (j = 0; j < a->n_sp; j++) {
        rc = size_transpose(a, j, a->n_sp, sp[j], &pad[j], &ysp[j], st);
        if (rc != CT_OK)
            return rc;
    }
    /* The convolution from Y (in) to X (out). */
    memset(g, 0, sizeof(*g));
    if ((rc = geom_fill(a, a->n_sp, ysp, sp, pad, g, st)) != CT_OK)
        return rc;
    g->n = n;
    g->c = c;
    g->m = m;
    g->group = a->group;
    make_dims(a->nhwc, a->n_sp, n, c, ysp, y_dims);
    if ((rc = geom_check_sizes(x_ndim, y_dims, st)) != CT_OK)
        return rc;
    return blas_fit(g, st);
}

int ct__pool_plan(const struct ct__conv_args *a, int x_ndim,
                  const int64_t *x_dims, struct ct__conv_geom *g,
                  int64_t *y_dims, ct_status_t *st)
{
    int rc = ct__conv_geom_fwd(a, x_ndim, x_dims, g, st);

    if (rc != CT_OK)
        return rc;
    g->m = g->c;
    g->group = 1;
    make_dims(a->nhwc, g->n_sp, g->n, g->c, g->out + CT_CONV_MAX_SP - g->n_sp,
              y_dims);
    return geom_check_sizes(x_ndim, y_dims, st);
}

int ct__conv_check_dims(const char *what, int ndim, const int64_t *dims,
                        int want_ndim, const int64_t *want, ct_status_t *st)
{
    char s1[128], s2[128];

    if (ndim == want_ndim &&
        (ndim == 0 || memcmp(dims, want, (size_t)ndim * sizeof(*dims)) == 0))
        return CT_OK;
    return ct_status_setf(st, CT_ESHAPE, "%s %s must be %s", what,
                          dims_s(ndim, dims, s1, sizeof(s1)),
                          dims_s(want_ndim, want, s2, sizeof(s2)));
}

int ct__conv_check_dtypes(ct_op_ctx_t *ctx, int n, const ct_tensor_t *const *t,
                          const char *const *names)
{
    char buf[160];
    size_t off = 0;
    int i;

    if (t[0]->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s for %s (FLOAT only)",
                          ct_dtype_name(t[0]->dtype), names[0]);
    for (i = 1; i < n; i++)
        if (t[i] != NULL && t[i]->dtype != t[0]->dtype)
            break;
    if (i == n)
        return CT_OK;
    buf[0] = '\0';
    for (i = 1; i < n && off < sizeof(buf); i++) {
        int w;
        if (t[i] == NULL)
            continue;
        w = snprintf(buf + off, sizeof(buf) - off, "%s%s is %s",
                     off ? " and " : "", names[i], ct_dtype_name(t[i]->dtype));
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return ct_op_fail(ctx, CT_ETYPE, "%s is FLOAT but %s; all must be FLOAT",
                      names[0], buf);
}

/* ---- execution helpers ---- */

int ct__conv_n_lanes(const ct_op_ctx_t *ctx)
{
    /* ct_parallel_for gives every concurrently running range a distinct
     * lane in [0, n_threads) (the pool's threads, or the OpenMP team). */
    const struct ct_engine_config *cfg = &ctx->eng->cfg;
    return cfg->intra_op == CT_INTRA_OP_SERIAL || cfg->n_threads < 1
               ? 1
               : cfg->n_threads;
}

void ct__conv_for(ct_op_ctx_t *ctx, int64_t n, int64_t grain,
                  ct__conv_range_fn fn, void *arg)
{
    /* Every fn passed here writes disjoint outputs per item and indexes
     * its scratch by lane (ith < ct__conv_n_lanes), so it is safe to
     * split. ct_parallel_for fails only when the engine's pool cannot be
     * created, before running anything: the items then run here, on lane
     * 0, with the same result. */
    if (n <= 0)
        return;
    if (ct_parallel_for(ctx, n, grain, fn, arg) != CT_OK)
        fn(arg, 0, n, 0);
}

int ct__conv_scratch_reserve(ct_op_ctx_t *ctx, struct ct__conv_scratch *s,
                             size_t bytes, const char *what)
{
    void *p;
    int rc;

    if (bytes <= s->bytes)
        return CT_OK;
    ct__conv_scratch_free(ctx->eng, s);
    rc = ct__engine_alloc(ctx->eng, bytes, what, &p, ctx->status);
    if (rc != CT_OK)
        return rc;
    s->buf = p;
    s->bytes = bytes;
    return CT_OK;
}

void ct__conv_scratch_free(ct_engine_t *eng, struct ct__conv_scratch *s)
{
    if (s->buf != NULL)
        ct__engine_free(eng, s->buf, s->bytes);
    s->buf = NULL;
    s->bytes = 0;
}

/* Target bytes of one im2col tile: a few hundred KiB keeps the column
 * tile, the filter panel and the output tile close to L2 while the GEMM
 * still sees hundreds of columns. */
#define CT_CONV_TILE_BYTES (512 * 1024)
#define CT_CONV_TILE_MIN 64

int64_t ct__conv_tile(int64_t k_rows, int64_t out_size)
{
    int64_t t =
        CT_CONV_TILE_BYTES / (int64_t)sizeof(float) / (k_rows > 0 ? k_rows : 1);

    if (t < CT_CONV_TILE_MIN)
        t = CT_CONV_TILE_MIN;
    if (t >= out_size)
        return out_size > 0 ? out_size : 1;
    return t;
}
