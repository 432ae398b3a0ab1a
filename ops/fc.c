/* Fully connected layers: FC and FCTransposed.
 *
 * Math: X is viewed as a matrix [M, K], M = product of X's dims before
 * `axis`, K = product from `axis` on. FC's W is [N, K] viewed the same way
 * at `axis_w` (N = dims before axis_w, K = dims from it; not transposed in
 * memory), so Y = X * W^T + b. FCTransposed's W is [K, N] (K before
 * axis_w, N from it), so Y = X * W + b. Y has X's dims before `axis`
 * followed by N.
 * Inputs: X, W, b (b 1-d of N elements). Output: Y. All FLOAT (X of
 * another dtype is CT_ENOTSUP, W or b differing from X is CT_ETYPE).
 * Attrs: axis (int, 1), axis_w (int, 1), both may be negative (from the
 * end); float16_compute (int, 0) is accepted and ignored (CPU math is
 * fp32). No in-place.
 * Errors: every shape mismatch is CT_ESHAPE naming the dims of X, W, b
 * with M, N, K; an output whose element count overflows int64 is
 * CT_EOVERFLOW; N or K beyond the BLAS int range is CT_ENOTSUP. M = 0 (or
 * N = 0) gives an empty output, K = 0 gives Y = b on every row.
 *
 * GEMM: OpenBLAS's single-threaded cblas_sgemm, row-major. Rows of Y are
 * first set to b, then accumulated with beta = 1, so the bias costs no
 * second GEMM. Y is cut into tiles that depend on the shape only (see
 * fc_tiling), run through ct_parallel_for with W shared read-only, so the
 * result is bit-identical at every thread count.
 *
 * Gradients: FCGradient and FCTransposedGradient (Caffe2's names), inputs
 * X, W, dY; outputs dW (W's dims), db ([N]) and, optionally, dX (X's
 * dims). With X as [M, K] and dY as [M, N] (dY must hold M * N elements,
 * as Caffe2 checks):
 *   FC:           dW = dY^T X,  db = column sums of dY,  dX = dY W
 *   FCTransposed: dW = X^T dY,  db as above,             dX = dY W^T
 * Same attrs as the forward op (the maker copies them). M, N and K must
 * fit the BLAS int (CT_ENOTSUP). M = 0 gives dW = 0 and db = 0.
 * The maker emits {X, W, dY} -> {dW, db, dX} (Caffe2's GetFCGradient).
 */
#include <cblas.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

struct fc_state {
    int32_t axis, axis_w;
};

struct fc_job {
    const float *x, *w, *b;
    float *y;
    int64_t m, n, k;
    int64_t bm, bn, n_cb; /* tile rows, tile columns, column blocks */
    bool transposed;      /* W is [K, N] */
};

/* Product of dims [lo, hi) with an overflow check. */
static int dims_prod(const int64_t *d, int lo, int hi, int64_t *out)
{
    int64_t p = 1;
    int i;

    for (i = lo; i < hi; i++) {
        if (d[i] != 0 && p > INT64_MAX / d[i])
            return CT_EOVERFLOW;
        p *= d[i];
    }
    *out = p;
    return CT_OK;
}

/* Validates the shapes; gives M, N, K and the canonical axis of X. */
static int fc_dims(const struct fc_state *s, bool transposed, int xn,
                   const int64_t *xd, int wn, const int64_t *wd, int bn,
                   const int64_t *bd, int64_t *m, int64_t *n, int64_t *k,
                   int *axis, ct_status_t *st)
{
    /* Dims strings are formatted only on error paths. */
    char sx[128], sw[128], sb[128];
#define SX ct_dims_str(xn, xd, sx, sizeof(sx))
#define SW ct_dims_str(wn, wd, sw, sizeof(sw))
#define SB ct_dims_str(bn, bd, sb, sizeof(sb))
    int64_t kw, pre_w, post_w;
    int ax = s->axis, aw = s->axis_w;

    if (ax < -xn || ax >= xn)
        return ct_status_setf(st, CT_ESHAPE,
                              "axis %d is out of range for X %s (%d-d)", ax, SX,
                              xn);
    if (aw < -wn || aw >= wn)
        return ct_status_setf(st, CT_ESHAPE,
                              "axis_w %d is out of range for W %s (%d-d)", aw,
                              SW, wn);
    ax = ax < 0 ? ax + xn : ax;
    aw = aw < 0 ? aw + wn : aw;
    if (dims_prod(xd, 0, ax, m) != CT_OK || dims_prod(xd, ax, xn, k) != CT_OK ||
        (*k != 0 && *m > INT64_MAX / *k))
        return ct_status_setf(st, CT_EOVERFLOW,
                              "X %s: M, K or M*K at axis %d overflows int64",
                              SX, ax);
    if (dims_prod(wd, 0, aw, &pre_w) != CT_OK ||
        dims_prod(wd, aw, wn, &post_w) != CT_OK)
        return ct_status_setf(st, CT_EOVERFLOW,
                              "W %s: N or K at axis_w %d overflows int64", SW,
                              aw);
    *n = transposed ? post_w : pre_w;
    kw = transposed ? pre_w : post_w;
    if (kw != *k)
        return ct_status_setf(
            st, CT_ESHAPE,
            "input dims X %s give M=%lld, K=%lld at axis %d, but W %s has "
            "K=%lld (N=%lld) at axis_w %d",
            SX, (long long)*m, (long long)*k, ax, SW, (long long)kw,
            (long long)*n, aw);
    if (bn >= 0 && (bn != 1 || bd[0] != *n)) /* bn < 0: no b to check */
        return ct_status_setf(st, CT_ESHAPE,
                              "b %s must be 1-d of N=%lld elements (W %s, "
                              "X %s)",
                              SB, (long long)*n, SW, SX);
    if (*n != 0 && *m > INT64_MAX / *n)
        return ct_status_setf(st, CT_EOVERFLOW,
                              "output [M=%lld, N=%lld] overflows int64 (X %s, "
                              "W %s)",
                              (long long)*m, (long long)*n, SX, SW);
    *axis = ax;
    return CT_OK;
#undef SX
#undef SW
#undef SB
}

/* The tiling of Y depends on M, N and K only, never on the number of
 * threads: every tile is one GEMM call, and BLAS results for a row depend
 * on the shape of the call that computed it, so a thread-dependent split
 * would make results differ between thread counts (and tiny row chunks
 * repeat the packing of W, which made a 64 x 784 x 512 FC 3-14x slower).
 * Row blocks of FC_TILE_M; when M alone gives fewer than 8 tiles, columns
 * are cut too, in blocks of at least FC_TILE_N_MIN (multiple of 16). */
#define FC_TILE_M 256
#define FC_TILE_N_MIN 128
#define FC_SPLIT_MIN_FLOP (1 << 21)

static void fc_tiling(struct fc_job *j)
{
    int64_t n_rb;

    j->bm = j->m < FC_TILE_M ? j->m : FC_TILE_M;
    j->bn = j->n;
    n_rb = (j->m + j->bm - 1) / j->bm;
    if (n_rb < 8 &&
        2.0 * (double)j->m * (double)j->n * (double)j->k >= FC_SPLIT_MIN_FLOP) {
        int64_t bn = (j->n + 7) / 8;
        bn = (bn + 15) / 16 * 16;
        j->bn = bn < FC_TILE_N_MIN ? FC_TILE_N_MIN : bn;
        if (j->bn > j->n)
            j->bn = j->n;
    }
    j->n_cb = (j->n + j->bn - 1) / j->bn;
}

/* Tile t of Y: Y[r0:r1, c0:c1] = b[c0:c1] + X[r0:r1, :] W[c0:c1, :]^T. */
static void fc_tile(const struct fc_job *j, int64_t t)
{
    const int64_t n = j->n, k = j->k;
    int64_t r0 = t / j->n_cb * j->bm, c0 = t % j->n_cb * j->bn;
    int64_t r1 = r0 + j->bm < j->m ? r0 + j->bm : j->m;
    int64_t c1 = c0 + j->bn < n ? c0 + j->bn : n;
    int64_t r;

    for (r = r0; r < r1; r++)
        memcpy(j->y + r * n + c0, j->b + c0, (size_t)(c1 - c0) * sizeof(float));
    if (k == 0)
        return; /* X * W is all zeros */
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, j->transposed ? CblasNoTrans : CblasTrans,
        (blasint)(r1 - r0), (blasint)(c1 - c0), (blasint)k, 1.0f, j->x + r0 * k,
        (blasint)k, j->transposed ? j->w + c0 : j->w + c0 * k,
        (blasint)(j->transposed ? n : k), 1.0f, j->y + r0 * n + c0, (blasint)n);
}

/* ct_parallel_for body: tiles [t0, t1) of Y. */
static void fc_tiles_cb(void *arg, int64_t t0, int64_t t1, int ith)
{
    int64_t t;

    (void)ith;
    for (t = t0; t < t1; t++)
        fc_tile(arg, t);
}

static int fc_run_common(ct_op_ctx_t *ctx, bool transposed)
{
    const struct fc_state *s = ctx->op->state;
    const ct_tensor_t *x, *w, *b;
    ct_tensor_t *y;
    ct_status_t lst;
    struct fc_job j;
    int64_t ydims[CT_MAX_DIMS], m, n, k;
    int rc, ax;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &w)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &b)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP, "unsupported dtype %s for X (FLOAT)",
                          ct_dtype_name(x->dtype));
    if (w->dtype != x->dtype || b->dtype != x->dtype)
        return ct_op_fail(ctx, CT_ETYPE,
                          "X is %s but W is %s and b is %s; all must be FLOAT",
                          ct_dtype_name(x->dtype), ct_dtype_name(w->dtype),
                          ct_dtype_name(b->dtype));
    ct_status_clear(&lst);
    rc = fc_dims(s, transposed, x->ndim, x->dims, w->ndim, w->dims, b->ndim,
                 b->dims, &m, &n, &k, &ax, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    if (n > INT32_MAX || k > INT32_MAX)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "N=%lld or K=%lld exceeds the BLAS int range",
                          (long long)n, (long long)k);
    memcpy(ydims, x->dims, (size_t)ax * sizeof(int64_t));
    ydims[ax] = n;
    rc = ct_op_output(ctx, 0, CT_DTYPE_F32, ax + 1, ydims, &y);
    if (rc != CT_OK)
        return rc;
    if (m == 0 || n == 0)
        return CT_OK;
    j.x = CT_CDATA(x, float); /* NULL when K = 0, then never read */
    j.w = CT_CDATA(w, float);
    j.b = CT_CDATA(b, float);
    j.y = CT_DATA(y, float);
    j.m = m;
    j.n = n;
    j.k = k;
    j.transposed = transposed;
    fc_tiling(&j);
    return ct_parallel_for(ctx, (m + j.bm - 1) / j.bm * j.n_cb, 1, fc_tiles_cb,
                           &j);
}

static int fc_run(ct_op_ctx_t *ctx)
{
    return fc_run_common(ctx, false);
}
static int fc_t_run(ct_op_ctx_t *ctx)
{
    return fc_run_common(ctx, true);
}

static int fc_init(ct_op_t *op, ct_status_t *st)
{
    struct fc_state *s = op->state;
    int64_t f16;
    int rc;

    if ((rc = ct__arg_int32(op, "axis", 1, &s->axis, st)) != CT_OK ||
        (rc = ct__arg_int32(op, "axis_w", 1, &s->axis_w, st)) != CT_OK)
        return rc;
    /* float16_compute only selects the math type on GPUs. */
    return ct__arg_int(op, "float16_compute", 0, &f16, st);
}

static int fc_infer_common(const ct_op_t *op, const ct_shape_t *in,
                           ct_shape_t *out, ct_status_t *st, bool transposed)
{
    const struct fc_state *s = op->state;
    int64_t m, n, k;
    int i, rc, ax;

    for (i = 1; i < 3; i++) {
        if (in[0].dtype != CT_DTYPE_UNDEFINED &&
            in[i].dtype != CT_DTYPE_UNDEFINED && in[i].dtype != in[0].dtype)
            return ct_status_setf(
                st, CT_ETYPE, "X is %s but %s is %s; all must be FLOAT",
                ct_dtype_name(in[0].dtype), i == 1 ? "W" : "b",
                ct_dtype_name(in[i].dtype));
    }
    out[0].dtype = in[0].dtype;
    if (in[0].ndim < 0 || in[1].ndim < 0 || in[2].ndim < 0)
        return CT_OK;
    rc = fc_dims(s, transposed, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims,
                 in[2].ndim, in[2].dims, &m, &n, &k, &ax, st);
    if (rc != CT_OK)
        return rc;
    memcpy(out[0].dims, in[0].dims, (size_t)ax * sizeof(int64_t));
    out[0].dims[ax] = n;
    out[0].ndim = ax + 1;
    return CT_OK;
}

static int fc_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                    ct_status_t *st)
{
    return fc_infer_common(op, in, out, st, false);
}

static int fc_t_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    return fc_infer_common(op, in, out, st, true);
}

/* Caffe2's CostInferenceForFC: M * N * (2K + 1) flops. */
static double fc_cost_common(const ct_op_t *op, const ct_shape_t *in,
                             bool transposed)
{
    const struct fc_state *s = op->state;
    int64_t m, n, k;
    int ax;

    if (in[0].ndim < 0 || in[1].ndim < 0 || in[2].ndim < 0 ||
        fc_dims(s, transposed, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims,
                in[2].ndim, in[2].dims, &m, &n, &k, &ax, NULL) != CT_OK)
        return 0;
    return (double)m * (double)n * (2.0 * (double)k + 1.0);
}

static double fc_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return fc_cost_common(op, in, false);
}

static double fc_t_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return fc_cost_common(op, in, true);
}

/* ---- gradients ---- */

static int fc_grad_run_common(ct_op_ctx_t *ctx, bool transposed)
{
    const struct fc_state *s = ctx->op->state;
    const ct_tensor_t *x, *w, *dy;
    ct_tensor_t *dw, *db, *dx = NULL;
    ct_status_t lst;
    const float *xs, *ws, *dys;
    float *dws, *dbs;
    char s1[128], s2[128];
    int64_t m, n, k, i, j;
    int rc, ax;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &w)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &dy)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP, "unsupported dtype %s for X (FLOAT)",
                          ct_dtype_name(x->dtype));
    if (w->dtype != x->dtype || dy->dtype != x->dtype)
        return ct_op_fail(ctx, CT_ETYPE,
                          "X is %s but W is %s and dY is %s; all must be "
                          "FLOAT",
                          ct_dtype_name(x->dtype), ct_dtype_name(w->dtype),
                          ct_dtype_name(dy->dtype));
    ct_status_clear(&lst);
    rc = fc_dims(s, transposed, x->ndim, x->dims, w->ndim, w->dims, -1, NULL,
                 &m, &n, &k, &ax, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    if (dy->numel != m * n)
        return ct_op_fail(
            ctx, CT_ESHAPE,
            "dY %s has %lld elements, but X %s and W give M=%lld "
            "and N=%lld (M*N elements)",
            ct_tensor_shape_str(dy, s1, sizeof(s1)), (long long)dy->numel,
            ct_tensor_shape_str(x, s2, sizeof(s2)), (long long)m, (long long)n);
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "M=%lld, N=%lld or K=%lld exceeds the BLAS int range",
                          (long long)m, (long long)n, (long long)k);
    xs = CT_CDATA(x, float);
    ws = CT_CDATA(w, float);
    dys = CT_CDATA(dy, float);
    if ((rc = ct_op_output(ctx, 0, CT_DTYPE_F32, w->ndim, w->dims, &dw)) !=
            CT_OK ||
        (rc = ct_op_output(ctx, 1, CT_DTYPE_F32, 1, &n, &db)) != CT_OK ||
        (ctx->op->n_out > 2 && (rc = ct_op_output(ctx, 2, CT_DTYPE_F32, x->ndim,
                                                  x->dims, &dx)) != CT_OK))
        return rc;
    dws = CT_DATA(dw, float);
    dbs = CT_DATA(db, float);
    if (n > 0 && k > 0) {
        if (m == 0)
            memset(dws, 0, (size_t)(n * k) * sizeof(float));
        else if (!transposed) /* dW [N, K] = dY^T [N, M] X [M, K] */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)n,
                        (blasint)k, (blasint)m, 1.0f, dys, (blasint)n, xs,
                        (blasint)k, 0.0f, dws, (blasint)k);
        else /* dW [K, N] = X^T [K, M] dY [M, N] */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)k,
                        (blasint)n, (blasint)m, 1.0f, xs, (blasint)k, dys,
                        (blasint)n, 0.0f, dws, (blasint)n);
    }
    /* db: column sums of dY, accumulated in double. */
    for (j = 0; j < n; j++) {
        double acc = 0;
        for (i = 0; i < m; i++)
            acc += dys[i * n + j];
        dbs[j] = (float)acc;
    }
    if (dx == NULL || m == 0 || k == 0)
        return CT_OK;
    if (n == 0)
        memset(CT_DATA(dx, float), 0, (size_t)(m * k) * sizeof(float));
    else /* dX [M, K] = dY [M, N] W [N, K] (W^T for FCTransposed) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans,
                    transposed ? CblasTrans : CblasNoTrans, (blasint)m,
                    (blasint)k, (blasint)n, 1.0f, dys, (blasint)n, ws,
                    (blasint)(transposed ? n : k), 0.0f, CT_DATA(dx, float),
                    (blasint)k);
    return CT_OK;
}

static int fc_grad_run(ct_op_ctx_t *ctx)
{
    return fc_grad_run_common(ctx, false);
}

static int fc_t_grad_run(ct_op_ctx_t *ctx)
{
    return fc_grad_run_common(ctx, true);
}

static int fc_grad_infer_common(const ct_op_t *op, const ct_shape_t *in,
                                ct_shape_t *out, ct_status_t *st,
                                bool transposed)
{
    const struct fc_state *s = op->state;
    int64_t m, n, k;
    int ax, rc;

    out[0] = in[1];
    out[1].dtype = in[1].dtype;
    if (op->n_out > 2)
        out[2] = in[0];
    if (in[0].ndim < 0 || in[1].ndim < 0)
        return CT_OK;
    rc = fc_dims(s, transposed, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims,
                 -1, NULL, &m, &n, &k, &ax, st);
    if (rc != CT_OK)
        return rc;
    out[1].ndim = 1;
    out[1].dims[0] = n;
    return CT_OK;
}

static int fc_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                         ct_shape_t *out, ct_status_t *st)
{
    return fc_grad_infer_common(op, in, out, st, false);
}

static int fc_t_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                           ct_shape_t *out, ct_status_t *st)
{
    return fc_grad_infer_common(op, in, out, st, true);
}

/* Two GEMMs of M * N * K multiply-adds each. */
static double fc_grad_cost_common(const ct_op_t *op, const ct_shape_t *in,
                                  bool transposed)
{
    const struct fc_state *s = op->state;
    int64_t m, n, k;
    int ax;

    if (in[0].ndim < 0 || in[1].ndim < 0 ||
        fc_dims(s, transposed, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims,
                -1, NULL, &m, &n, &k, &ax, NULL) != CT_OK)
        return 0;
    return 4.0 * (double)m * (double)n * (double)k;
}

static double fc_grad_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return fc_grad_cost_common(op, in, false);
}

static double fc_t_grad_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return fc_grad_cost_common(op, in, true);
}

/* {X, W, dY} -> {dW, db, dX}. */
static int fc_grad_make_common(struct ct__grad_ctx *g, const char *type,
                               ct_status_t *st)
{
    const char *in[3], *out[3];

    in[0] = ct__grad_fwd_in(g, 0);
    in[1] = ct__grad_fwd_in(g, 1);
    in[2] = ct__grad_out(g, 0);
    out[0] = ct__grad_in(g, 1);
    out[1] = ct__grad_in(g, 2);
    out[2] = ct__grad_in(g, 0);
    return ct__grad_emit(g, type, in, 3, out, 3, 0, NULL, st);
}

static int fc_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return fc_grad_make_common(g, "FCGradient", st);
}

static int fc_t_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return fc_grad_make_common(g, "FCTransposedGradient", st);
}

static const struct ct_arg_spec fc_args[] = {
    {"axis", CT_ARG_INT, false},
    {"axis_w", CT_ARG_INT, false},
    {"float16_compute", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_fc = {
    .name = "FC",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = fc_args,
    .state_size = sizeof(struct fc_state),
    .init_cb = fc_init,
    .infer_cb = fc_infer,
    .run_cb = fc_run,
    .grad_cb = fc_grad_make,
    .cost_cb = fc_cost,
    .doc = "Y = X * W^T + b, W [N, K]",
};

const struct ct_op_schema ct__op_fc_transposed = {
    .name = "FCTransposed",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = fc_args,
    .state_size = sizeof(struct fc_state),
    .init_cb = fc_init,
    .infer_cb = fc_t_infer,
    .run_cb = fc_t_run,
    .grad_cb = fc_t_grad_make,
    .cost_cb = fc_t_cost,
    .doc = "Y = X * W + b, W [K, N]",
};

const struct ct_op_schema ct__op_fc_gradient = {
    .name = "FCGradient",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 2,
    .max_outputs = 3,
    .args = fc_args,
    .state_size = sizeof(struct fc_state),
    .init_cb = fc_init,
    .infer_cb = fc_grad_infer,
    .run_cb = fc_grad_run,
    .cost_cb = fc_grad_cost,
    .doc = "{X, W, dY} -> {dW, db, dX} of FC",
};

const struct ct_op_schema ct__op_fc_transposed_gradient = {
    .name = "FCTransposedGradient",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 2,
    .max_outputs = 3,
    .args = fc_args,
    .state_size = sizeof(struct fc_state),
    .init_cb = fc_init,
    .infer_cb = fc_t_grad_infer,
    .run_cb = fc_t_grad_run,
    .cost_cb = fc_t_grad_cost,
    .doc = "{X, W, dY} -> {dW, db, dX} of FCTransposed",
};
