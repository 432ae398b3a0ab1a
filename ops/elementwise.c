/* Binary arithmetic with broadcasting: Add, Sub, Mul, Div.
 *
 * Math: C = A + B, A - B, A * B, A / B, elementwise after broadcasting.
 * Integer Div truncates toward zero (C and C++ `/`). Integer Add, Sub and
 * Mul wrap modulo 2^bits (two's complement), as Caffe2 does in practice;
 * integer Div by zero and INT_MIN / -1 fail with CT_EINVAL instead of
 * raising SIGFPE (the output is then unspecified; in-place, so is A).
 *
 * Inputs: A, B (same dtype, else CT_ETYPE). Output: C, dtype of A.
 * Dtypes: FLOAT, DOUBLE, INT32, INT64 (Caffe2's NumericTypes); others are
 * CT_ENOTSUP.
 * Attrs (Caffe2's BinaryElementwiseWithArgsOp):
 *   broadcast (int, 0): 0 = numpy broadcasting. The shapes are aligned at
 *     the right; each pair of dims must be equal or one of them 1; a 0
 *     against a 1 gives 0.
 *   broadcast = 1: Caffe2's legacy rule. C has A's shape. A B with one
 *     element is a scalar. Otherwise B, without its leading and trailing
 *     1-dims, must equal a contiguous run of A's dims that starts at
 *     `axis` (B's own leading 1s shift the start).
 *   axis (int, -1): legacy start dim; -1 matches B against A's suffix.
 *   axis_str (string), order (string, "NCHW"): legacy axis given as a
 *     letter of order ("C" -> 1). Not together with axis.
 * In-place: input 0 -> output 0 when C has A's shape, input 1 -> output 0
 * when C has B's shape (never with broadcast = 1).
 *
 * Design: the output dims and a collapsed iteration plan are computed
 * once per run. Dims of size 1 are dropped and neighbouring dims that are
 * contiguous for both A and B merge, so same-shape and scalar cases are a
 * single flat loop and a row-vector is one loop per row. The range kernel
 * takes output elements [e0, e1): it decomposes e0 into an index once and
 * then walks rows with an odometer, so inner loops do no division. Each
 * call of an inner kernel covers a run of rows along the second-innermost
 * dim (so short rows cost no call each), and its row loop is one of
 * vector-vector, vector-scalar, scalar-vector.
 *
 * Gradients (Caffe2's AddGradient, SubGradient, MulGradient): inputs dC,
 * A, B; outputs dA (A's shape) and dB (B's shape), same attrs as the
 * forward op (the maker copies them, so legacy broadcasting is honoured):
 *   Add: dA = R_A(dC),      dB = R_B(dC)
 *   Sub: dA = R_A(dC),      dB = -R_B(dC)
 *   Mul: dA = R_A(dC * B),  dB = R_B(dC * A)
 * where R_X sums over the dims along which X was broadcast. dC must have
 * the forward output's shape (CT_ESHAPE). Add and Sub read only the
 * shapes of A and B, so the forward op may have run in place. Dtypes
 * FLOAT and DOUBLE (integers have no gradient: CT_ENOTSUP). In-place: dC
 * -> dA or dC -> dB, for an output of the forward output's shape; that
 * output is computed last, elementwise, after the other one has read dC.
 * The plan of the forward op drives the reduction: one pass over dC with
 * an odometer, adding each element into the target at its broadcast
 * offset (0-stride dims accumulate).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/elementwise.h"
#include "ops/op_impl.h"

/* omp simd: every iteration reads a[i], b[i] and writes c[i] only, so it
 * is valid even when c is exactly a or b (in-place). Without OpenMP the
 * loops are plain C. */
#if defined(_OPENMP)
#define EW_SIMD _Pragma("omp simd")
#else
#define EW_SIMD
#endif

enum bin_kind { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_COUNT };

enum { DT_F32, DT_F64, DT_I32, DT_I64, DT_N };

/* Flags an inner loop returns (integer Div only). */
enum { BIN_F_DIV0 = 1, BIN_F_OVERFLOW = 2 };

/* Inner loop over n1 rows of n0 elements. C is dense; A and B rows start
 * sa and sb elements apart, and within a row A or B may be a scalar (the
 * variant). Returns BIN_F_* flags. */
typedef int (*bin_fn)(int64_t n1, int64_t n0, const void *a, int64_t sa,
                      const void *b, int64_t sb, void *c);

struct bin_state {
    bool legacy; /* broadcast = 1 */
    int axis;    /* legacy start dim; -1 = suffix */
};

struct bin_job {
    struct ct__bcast plan;
    const bin_fn *fn; /* [0] vv, [1] vs, [2] sv */
    const char *a, *b;
    char *c;
    size_t esz;
    /* BIN_F_* flags of every chunk, or-ed. atomic, relaxed: read after
     * ct_parallel_for returned, which orders every chunk before it. */
    _Atomic int flags;
};

/* ---- inner loops ---- */

#define BIN_LOOP(NAME, T, XI, YI, EXPR)                                        \
    static int NAME(int64_t n1, int64_t n0, const void *pa, int64_t sa,        \
                    const void *pb, int64_t sb, void *pc)                      \
    {                                                                          \
        const T *a = pa, *b = pb;                                              \
        T *c = pc;                                                             \
        int64_t i, j;                                                          \
        for (j = 0; j < n1; j++, a += sa, b += sb, c += n0) {                  \
            EW_SIMD for (i = 0; i < n0; i++)                                   \
            {                                                                  \
                const T x = a[XI], y = b[YI];                                  \
                c[i] = (EXPR);                                                 \
            }                                                                  \
        }                                                                      \
        return 0;                                                              \
    }
#define BIN_LOOPS(NAME, T, EXPR)                                               \
    BIN_LOOP(NAME##_vv, T, i, i, EXPR)                                         \
    BIN_LOOP(NAME##_vs, T, i, 0, EXPR)                                         \
    BIN_LOOP(NAME##_sv, T, 0, i, EXPR)

/* Integers go through the unsigned type: wrapping, never UB. */
#define WRAP(T, U, OP) ((T)((U)x OP(U) y))

BIN_LOOPS(add_f32, float, x + y)
BIN_LOOPS(sub_f32, float, x - y)
BIN_LOOPS(mul_f32, float, x *y)
BIN_LOOPS(div_f32, float, x / y)
BIN_LOOPS(add_f64, double, x + y)
BIN_LOOPS(sub_f64, double, x - y)
BIN_LOOPS(mul_f64, double, x *y)
BIN_LOOPS(div_f64, double, x / y)
BIN_LOOPS(add_i32, int32_t, WRAP(int32_t, uint32_t, +))
BIN_LOOPS(sub_i32, int32_t, WRAP(int32_t, uint32_t, -))
BIN_LOOPS(mul_i32, int32_t, WRAP(int32_t, uint32_t, *))
BIN_LOOPS(add_i64, int64_t, WRAP(int64_t, uint64_t, +))
BIN_LOOPS(sub_i64, int64_t, WRAP(int64_t, uint64_t, -))
BIN_LOOPS(mul_i64, int64_t, WRAP(int64_t, uint64_t, *))

/* Integer division checks each divisor; the branch is noise next to the
 * divide itself. A bad element yields 0 and a flag. */
#define DIV_INT_LOOP(NAME, T, MIN, XI, YI)                                     \
    static int NAME(int64_t n1, int64_t n0, const void *pa, int64_t sa,        \
                    const void *pb, int64_t sb, void *pc)                      \
    {                                                                          \
        const T *a = pa, *b = pb;                                              \
        T *c = pc;                                                             \
        int flags = 0;                                                         \
        int64_t i, j;                                                          \
        for (j = 0; j < n1; j++, a += sa, b += sb, c += n0) {                  \
            for (i = 0; i < n0; i++) {                                         \
                const T x = a[XI], y = b[YI];                                  \
                if (CT_UNLIKELY(y == 0)) {                                     \
                    flags |= BIN_F_DIV0;                                       \
                    c[i] = 0;                                                  \
                } else if (CT_UNLIKELY(y == -1 && x == (MIN))) {               \
                    flags |= BIN_F_OVERFLOW;                                   \
                    c[i] = 0;                                                  \
                } else {                                                       \
                    c[i] = x / y;                                              \
                }                                                              \
            }                                                                  \
        }                                                                      \
        return flags;                                                          \
    }
#define DIV_INT_LOOPS(SFX, T, MIN)                                             \
    DIV_INT_LOOP(div_##SFX##_vv, T, MIN, i, i)                                 \
    DIV_INT_LOOP(div_##SFX##_vs, T, MIN, i, 0)                                 \
    DIV_INT_LOOP(div_##SFX##_sv, T, MIN, 0, i)

DIV_INT_LOOPS(i32, int32_t, INT32_MIN)
DIV_INT_LOOPS(i64, int64_t, INT64_MIN)

#define FNS(NAME)                                                              \
    {                                                                          \
        NAME##_vv, NAME##_vs, NAME##_sv                                        \
    }
static const bin_fn bin_fns[BIN_COUNT][DT_N][3] = {
    [BIN_ADD] = {FNS(add_f32), FNS(add_f64), FNS(add_i32), FNS(add_i64)},
    [BIN_SUB] = {FNS(sub_f32), FNS(sub_f64), FNS(sub_i32), FNS(sub_i64)},
    [BIN_MUL] = {FNS(mul_f32), FNS(mul_f64), FNS(mul_i32), FNS(mul_i64)},
    [BIN_DIV] = {FNS(div_f32), FNS(div_f64), FNS(div_i32), FNS(div_i64)},
};

static int dtype_index(ct_dtype_t dt)
{
    switch (dt) {
    case CT_DTYPE_F32:
        return DT_F32;
    case CT_DTYPE_F64:
        return DT_F64;
    case CT_DTYPE_I32:
        return DT_I32;
    case CT_DTYPE_I64:
        return DT_I64;
    default:
        return -1;
    }
}

/* ---- shapes ---- */

static bool dims_equal(int na, const int64_t *a, int nb, const int64_t *b)
{
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof(*a)) == 0);
}

/* Caffe2's ComputeLegacyBroadcastSizes: A viewed as [pre, n, post], B as
 * [n]. B with one element is handled by the caller. */
static int legacy_sizes(int axis, int na, const int64_t *a, int nb,
                        const int64_t *b, int64_t *pre, int64_t *n,
                        int64_t *post, ct_status_t *st)
{
    char sa[128], sb[128];
    int start = 0, end = nb - 1, i;

    if (na < nb)
        return ct_status_setf(
            st, CT_ESHAPE,
            "legacy broadcast: B %s has more dims than A %s (B must have a "
            "smaller or equal number of dimensions)",
            ct_dims_str(nb, b, sb, sizeof(sb)),
            ct_dims_str(na, a, sa, sizeof(sa)));
    if (axis == -1)
        axis = na - nb;
    if (axis < 0 || axis > na - nb)
        return ct_status_setf(
            st, CT_ESHAPE,
            "legacy broadcast: axis %d outside [0, %d] for A %s and B %s", axis,
            na - nb, ct_dims_str(na, a, sa, sizeof(sa)),
            ct_dims_str(nb, b, sb, sizeof(sb)));
    while (start < nb && b[start] == 1)
        start++;
    while (end >= start && b[end] == 1)
        end--;
    *pre = *n = *post = 1;
    for (i = 0; i < axis + start; i++)
        *pre *= a[i];
    for (i = start; i <= end; i++) {
        if (a[i + axis] != b[i])
            return ct_status_setf(
                st, CT_ESHAPE,
                "legacy broadcast: dimension mismatch, A %s dim %d is %lld "
                "but B %s dim %d is %lld (axis %d)",
                ct_dims_str(na, a, sa, sizeof(sa)), i + axis,
                (long long)a[i + axis], ct_dims_str(nb, b, sb, sizeof(sb)), i,
                (long long)b[i], axis);
        *n *= b[i];
    }
    for (i = axis + end + 1; i < na; i++)
        *post *= a[i];
    return CT_OK;
}

/* Caffe2's ComputeBinaryBroadcastForwardDims. */
int ct__bcast_numpy_dims(int na, const int64_t *a, int nb, const int64_t *b,
                         int *nc, int64_t *c, ct_status_t *st)
{
    char sa[128], sb[128];
    int n = na > nb ? na : nb, k;

    for (k = 0; k < n; k++) {
        int ia = na - n + k, ib = nb - n + k;
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return ct_status_setf(
                st, CT_ESHAPE,
                "cannot broadcast A %s with B %s: dim %d of A is %lld, dim %d "
                "of B is %lld",
                ct_dims_str(na, a, sa, sizeof(sa)),
                ct_dims_str(nb, b, sb, sizeof(sb)), ia, (long long)da, ib,
                (long long)db);
        c[k] = (da == 0 || db == 0) ? 0 : (da > db ? da : db);
    }
    *nc = n;
    return CT_OK;
}

/* Builds the collapsed plan for A and B aligned at the right (numpy
 * rule); the shapes are known to be compatible. */
void ct__bcast_plan_build(int na, const int64_t *a, int nb, const int64_t *b,
                          struct ct__bcast *p)
{
    int64_t dims[CT_MAX_DIMS], sa[CT_MAX_DIMS], sb[CT_MAX_DIMS];
    int64_t stride_a = 1, stride_b = 1;
    int n = na > nb ? na : nb, i, k = 0;

    /* Walk from the innermost dim outwards, merging into the previous
     * (inner) collapsed dim when both strides continue it. */
    for (i = n - 1; i >= 0; i--) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        int64_t dc = da > db ? da : db;
        int64_t xa = da == 1 ? 0 : stride_a, xb = db == 1 ? 0 : stride_b;
        stride_a *= da;
        stride_b *= db;
        if (dc == 1)
            continue;
        if (k > 0 && xa == sa[k - 1] * dims[k - 1] &&
            xb == sb[k - 1] * dims[k - 1]) {
            dims[k - 1] *= dc;
            continue;
        }
        dims[k] = dc;
        sa[k] = xa;
        sb[k] = xb;
        k++;
    }
    if (k == 0) { /* one element */
        dims[0] = 1;
        sa[0] = sb[0] = 1;
        k = 1;
    }
    p->ndim = k;
    for (i = 0; i < k; i++) {
        p->dims[i] = dims[k - 1 - i];
        p->sa[i] = sa[k - 1 - i];
        p->sb[i] = sb[k - 1 - i];
    }
}

/* Output dims of A op B and, when plan is not NULL, the iteration plan. */
static int bin_shape(const struct bin_state *s, int na, const int64_t *a,
                     int nb, const int64_t *b, int *nc, int64_t *c,
                     struct ct__bcast *plan, ct_status_t *st)
{
    int64_t nb_el = 1, pre = 1, n = 1, post = 1;
    int i, rc;

    if (!s->legacy) {
        rc = ct__bcast_numpy_dims(na, a, nb, b, nc, c, st);
        if (rc == CT_OK && plan != NULL)
            ct__bcast_plan_build(na, a, nb, b, plan);
        return rc;
    }
    for (i = 0; i < nb; i++)
        nb_el *= b[i]; /* no overflow: a real or inferred shape */
    *nc = na;
    if (na > 0)
        memcpy(c, a, (size_t)na * sizeof(*a));
    if (nb_el == 1) {
        /* A flat against a scalar. */
        int64_t one = 1, na_el = 1;
        for (i = 0; i < na; i++)
            na_el *= a[i];
        if (plan != NULL)
            ct__bcast_plan_build(1, &na_el, 1, &one, plan);
        return CT_OK;
    }
    rc = legacy_sizes(s->axis, na, a, nb, b, &pre, &n, &post, st);
    if (rc == CT_OK && plan != NULL) {
        const int64_t av[3] = {pre, n, post}, bv[2] = {n, 1};
        ct__bcast_plan_build(3, av, 2, bv, plan);
    }
    return rc;
}

/* ---- kernel ---- */

/* Computes output elements [e0, e1). Returns BIN_F_* flags. A partial
 * row at either end is one call; in between, each call covers the full
 * rows left in the current run of the second-innermost dim, so short rows
 * ([N, 2] + [N, 1]) cost no call per row. */
static int bin_range(const struct bin_job *j, int64_t e0, int64_t e1)
{
    const struct ct__bcast *p = &j->plan;
    const int nd = p->ndim;
    const int64_t inner = p->dims[nd - 1];
    const int64_t ia = p->sa[nd - 1], ib = p->sb[nd - 1];
    const int64_t sa1 = nd > 1 ? p->sa[nd - 2] : 0;
    const int64_t sb1 = nd > 1 ? p->sb[nd - 2] : 0;
    const bin_fn fn = j->fn[ia && ib ? 0 : (ia ? 1 : 2)];
    const size_t esz = j->esz;
    int64_t idx[CT_MAX_DIMS];
    int64_t row = e0 / inner, col = e0 - row * inner;
    int64_t ra = 0, rb = 0, e = e0;
    int d, flags = 0;

    for (d = nd - 2; d >= 0; d--) {
        idx[d] = row % p->dims[d];
        row /= p->dims[d];
        ra += idx[d] * p->sa[d];
        rb += idx[d] * p->sb[d];
    }
    while (e < e1) {
        int64_t n0 = inner - col, n1 = 1;
        if (n0 > e1 - e) {
            n0 = e1 - e; /* partial last row */
        } else if (col == 0 && nd > 1) {
            int64_t left = p->dims[nd - 2] - idx[nd - 2];
            int64_t fit = (e1 - e) / inner;
            n1 = left < fit ? left : fit;
        }
        flags |= fn(n1, n0, j->a + (size_t)(ra + col * ia) * esz, sa1,
                    j->b + (size_t)(rb + col * ib) * esz, sb1,
                    j->c + (size_t)e * esz);
        e += n1 * n0;
        col = 0;
        if (e >= e1 || nd == 1)
            break;
        /* Advance n1 rows along dim nd-2 (never past its end), then
         * carry into the outer dims. */
        idx[nd - 2] += n1;
        ra += n1 * sa1;
        rb += n1 * sb1;
        if (idx[nd - 2] < p->dims[nd - 2])
            continue;
        ra -= sa1 * p->dims[nd - 2];
        rb -= sb1 * p->dims[nd - 2];
        idx[nd - 2] = 0;
        for (d = nd - 3; d >= 0; d--) {
            ra += p->sa[d];
            rb += p->sb[d];
            if (++idx[d] < p->dims[d])
                break;
            ra -= p->sa[d] * p->dims[d];
            rb -= p->sb[d] * p->dims[d];
            idx[d] = 0;
        }
    }
    return flags;
}

/* ct_parallel_for body: elements [e0, e1) of C. */
static void bin_range_cb(void *arg, int64_t e0, int64_t e1, int ith)
{
    struct bin_job *j = arg;
    int flags = bin_range(j, e0, e1);

    (void)ith;
    if (flags != 0)
        atomic_fetch_or_explicit(&j->flags, flags, memory_order_relaxed);
}

static int bin_run(ct_op_ctx_t *ctx, enum bin_kind kind)
{
    const ct_op_t *op = ctx->op;
    const struct bin_state *s = op->state;
    const ct_tensor_t *a, *b;
    ct_tensor_t *c;
    struct bin_job j;
    ct_status_t lst;
    int64_t cdims[CT_MAX_DIMS];
    char s1[128], s2[128];
    int rc, nc, di, flags;

    if ((rc = ct_op_input(ctx, 0, &a)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &b)) != CT_OK)
        return rc;
    if (a->dtype != b->dtype)
        return ct_op_fail(ctx, CT_ETYPE,
                          "A is %s but B is %s; both inputs must have the "
                          "same dtype",
                          ct_dtype_name(a->dtype), ct_dtype_name(b->dtype));
    di = dtype_index(a->dtype);
    if (di < 0)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s (FLOAT, DOUBLE, INT32, INT64)",
                          ct_dtype_name(a->dtype));
    ct_status_clear(&lst);
    rc = bin_shape(s, a->ndim, a->dims, b->ndim, b->dims, &nc, cdims, &j.plan,
                   &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    /* In-place: the output may only take the shape it already has. */
    if ((op->out[0] == op->in[0] && !dims_equal(nc, cdims, a->ndim, a->dims)) ||
        (op->out[0] == op->in[1] && !dims_equal(nc, cdims, b->ndim, b->dims)))
        return ct_op_fail(ctx, CT_ESHAPE,
                          "in-place output would change input %d from %s to "
                          "%s",
                          op->out[0] == op->in[0] ? 0 : 1,
                          op->out[0] == op->in[0]
                              ? ct_dims_str(a->ndim, a->dims, s1, sizeof(s1))
                              : ct_dims_str(b->ndim, b->dims, s1, sizeof(s1)),
                          ct_dims_str(nc, cdims, s2, sizeof(s2)));
    /* Input data before the output: when an in-place output's storage is
     * shared (a snapshot holds it), ct_op_output swaps in new storage for
     * it, and the old one, still alive through the other reference, keeps
     * the input intact. Without sharing the pointers do not change. */
    j.a = ct_tensor_cdata(a);
    j.b = ct_tensor_cdata(b);
    rc = ct_op_output(ctx, 0, a->dtype, nc, cdims, &c);
    if (rc != CT_OK)
        return rc;
    if (c->numel == 0)
        return CT_OK;
    j.fn = bin_fns[kind][di];
    j.c = ct_tensor_data(c);
    j.esz = ct_dtype_size(a->dtype);
    /* Memory bound: chunks of 32K elements repay the fork-join. */
    atomic_init(&j.flags, 0);
    rc = ct_parallel_for(ctx, c->numel, 32768, bin_range_cb, &j);
    if (rc != CT_OK)
        return rc;
    flags = atomic_load_explicit(&j.flags, memory_order_relaxed);
    if (flags & BIN_F_DIV0)
        return ct_op_fail(ctx, CT_EINVAL, "integer division by zero (%s)",
                          ct_dtype_name(a->dtype));
    if (flags & BIN_F_OVERFLOW)
        return ct_op_fail(ctx, CT_EINVAL,
                          "integer overflow: %s minimum divided by -1",
                          ct_dtype_name(a->dtype));
    return CT_OK;
}

static int add_run(ct_op_ctx_t *ctx)
{
    return bin_run(ctx, BIN_ADD);
}
static int sub_run(ct_op_ctx_t *ctx)
{
    return bin_run(ctx, BIN_SUB);
}
static int mul_run(ct_op_ctx_t *ctx)
{
    return bin_run(ctx, BIN_MUL);
}
static int div_run(ct_op_ctx_t *ctx)
{
    return bin_run(ctx, BIN_DIV);
}

/* ---- schema callbacks ---- */

static int bin_init(ct_op_t *op, ct_status_t *st)
{
    struct bin_state *s = op->state;
    const char *axis_str, *order;
    size_t axis_len, order_len, k;
    int64_t bcast;
    int32_t axis;
    int rc;

    if ((rc = ct__arg_int(op, "broadcast", 0, &bcast, st)) != CT_OK ||
        (rc = ct__arg_int32(op, "axis", -1, &axis, st)) != CT_OK ||
        (rc = ct__arg_string(op, "axis_str", "", &axis_str, &axis_len, st)) !=
            CT_OK ||
        (rc = ct__arg_string(op, "order", "NCHW", &order, &order_len, st)) !=
            CT_OK)
        return rc;
    if (bcast != 0 && bcast != 1)
        return ct_status_setf(st, CT_EARG,
                              "Value %lld of argument broadcast cannot be "
                              "represented correctly in a bool",
                              (long long)bcast);
    s->legacy = bcast == 1;
    s->axis = axis;
    if (!s->legacy)
        return CT_OK; /* Caffe2 ignores axis / axis_str without broadcast. */
    if (axis != -1 && axis_len > 0)
        return ct_status_setf(st, CT_EARG,
                              "Args axis and axis_str cannot be used "
                              "simultaneously.");
    if (axis == -1 && axis_len > 0) {
        if (axis_len != 1)
            return ct_status_setf(st, CT_EARG,
                                  "Unsupported axis string %.*s (one letter "
                                  "of order)",
                                  (int)axis_len, axis_str);
        for (k = 0; k < order_len && order[k] != axis_str[0]; k++)
            ;
        if (k == order_len)
            return ct_status_setf(st, CT_EARG,
                                  "Unrecognizable axis string %c from order "
                                  "string %.*s",
                                  axis_str[0], (int)order_len, order);
        s->axis = (int)k;
    }
    if (op->n_out > 0 && op->n_in > 1 && op->out[0] == op->in[1])
        return ct_status_setf(st, CT_ESCHEMA,
                              "In-place is allowed only with the first "
                              "tensor when legacy-broadcasting");
    return CT_OK;
}

static int bin_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    const struct bin_state *s = op->state;

    if (in[0].dtype != CT_DTYPE_UNDEFINED &&
        in[1].dtype != CT_DTYPE_UNDEFINED && in[0].dtype != in[1].dtype)
        return ct_status_setf(st, CT_ETYPE,
                              "A is %s but B is %s; both inputs must have "
                              "the same dtype",
                              ct_dtype_name(in[0].dtype),
                              ct_dtype_name(in[1].dtype));
    out[0].dtype = in[0].dtype;
    if (in[0].ndim < 0 || in[1].ndim < 0)
        return CT_OK;
    return bin_shape(s, in[0].ndim, in[0].dims, in[1].ndim, in[1].dims,
                     &out[0].ndim, out[0].dims, NULL, st);
}

/* One flop per output element. */
static double bin_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const ct_shape_t *big = &in[0];
    double n = 1;
    int i;

    if (in[0].ndim < 0 || in[1].ndim < 0)
        return 0;
    if (((const struct bin_state *)op->state)->legacy) {
        for (i = 0; i < in[0].ndim; i++)
            n *= (double)in[0].dims[i]; /* C has A's shape */
        return n;
    }
    if (in[1].ndim > in[0].ndim)
        big = &in[1];
    for (i = 0; i < big->ndim; i++) {
        int ia = in[0].ndim - big->ndim + i, ib = in[1].ndim - big->ndim + i;
        double da = ia >= 0 ? (double)in[0].dims[ia] : 1;
        double db = ib >= 0 ? (double)in[1].dims[ib] : 1;
        n *= (da == 0 || db == 0) ? 0 : (da > db ? da : db);
    }
    return n;
}

static bool bin_inplace(int in, int out)
{
    return out == 0 && in <= 1;
}

static const struct ct_arg_spec bin_args[] = {
    {"broadcast", CT_ARG_INT, false},   {"axis", CT_ARG_INT, false},
    {"axis_str", CT_ARG_STRING, false}, {"order", CT_ARG_STRING, false},
    {NULL, CT_ARG_ANY, false},
};

/* ---- gradients ---- */

enum grad_mode { GRAD_COPY, GRAD_NEG, GRAD_MUL };

/* dt[offset_t(e)] (+)= f(dc[e], other[offset_o(e)]) over every element e of
 * C, walking the plan's dims with an odometer; st_t / st_o are the
 * target's and the other operand's strides (sa or sb of the plan).
 * `dense` targets (same shape as C) are written, others accumulated
 * (zeroed by the caller). dt may be dc only when dense. */
#define GRAD_REDUCE(SFX, T)                                                    \
    static void grad_reduce_##SFX(const struct ct__bcast *p, const T *dc,      \
                                  const T *other, const int64_t *st_t,         \
                                  const int64_t *st_o, enum grad_mode mode,    \
                                  bool dense, T *dt)                           \
    {                                                                          \
        const int nd = p->ndim;                                                \
        const int64_t inner = p->dims[nd - 1];                                 \
        const int64_t it = st_t[nd - 1], io = st_o[nd - 1];                    \
        int64_t idx[CT_MAX_DIMS] = {0};                                        \
        int64_t rt = 0, ro = 0, e = 0, j;                                      \
        int d;                                                                 \
        for (;;) {                                                             \
            const T *c = dc + e;                                               \
            T *t = dt + rt;                                                    \
            const T *o = other != NULL ? other + ro : NULL;                    \
            if (dense) {                                                       \
                if (mode == GRAD_COPY) {                                       \
                    if (t != c)                                                \
                        for (j = 0; j < inner; j++)                            \
                            t[j] = c[j];                                       \
                } else if (mode == GRAD_NEG) {                                 \
                    for (j = 0; j < inner; j++)                                \
                        t[j] = -c[j];                                          \
                } else {                                                       \
                    for (j = 0; j < inner; j++)                                \
                        t[j] = c[j] * o[j * io];                               \
                }                                                              \
            } else if (mode == GRAD_MUL) {                                     \
                for (j = 0; j < inner; j++)                                    \
                    t[j * it] += c[j] * o[j * io];                             \
            } else {                                                           \
                const T sg = mode == GRAD_NEG ? (T)-1 : (T)1;                  \
                for (j = 0; j < inner; j++)                                    \
                    t[j * it] += sg * c[j];                                    \
            }                                                                  \
            e += inner;                                                        \
            for (d = nd - 2; d >= 0; d--) {                                    \
                rt += st_t[d];                                                 \
                ro += st_o[d];                                                 \
                if (++idx[d] < p->dims[d])                                     \
                    break;                                                     \
                rt -= st_t[d] * p->dims[d];                                    \
                ro -= st_o[d] * p->dims[d];                                    \
                idx[d] = 0;                                                    \
            }                                                                  \
            if (d < 0)                                                         \
                return;                                                        \
        }                                                                      \
    }

GRAD_REDUCE(f32, float)
GRAD_REDUCE(f64, double)

static bool same_dims(const ct_tensor_t *t, int nd, const int64_t *dims)
{
    return dims_equal(t->ndim, t->dims, nd, dims);
}

static int bin_grad_run(ct_op_ctx_t *ctx, enum bin_kind kind)
{
    const ct_op_t *op = ctx->op;
    const struct bin_state *s = op->state;
    const ct_tensor_t *dc, *a, *b;
    ct_tensor_t *out[2];
    const void *dcv, *av, *bv;
    struct ct__bcast plan;
    ct_status_t lst;
    int64_t cdims[CT_MAX_DIMS];
    char s1[128], s2[128];
    int rc, nc, k, order[2] = {0, 1};

    if ((rc = ct_op_input(ctx, 0, &dc)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &a)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &b)) != CT_OK)
        return rc;
    if (a->dtype != CT_DTYPE_F32 && a->dtype != CT_DTYPE_F64)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s (FLOAT, DOUBLE; integer ops "
                          "have no gradient)",
                          ct_dtype_name(a->dtype));
    if (b->dtype != a->dtype || dc->dtype != a->dtype)
        return ct_op_fail(ctx, CT_ETYPE,
                          "dC is %s, A is %s and B is %s; all must have the "
                          "same dtype",
                          ct_dtype_name(dc->dtype), ct_dtype_name(a->dtype),
                          ct_dtype_name(b->dtype));
    ct_status_clear(&lst);
    rc = bin_shape(s, a->ndim, a->dims, b->ndim, b->dims, &nc, cdims, &plan,
                   &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    if (!same_dims(dc, nc, cdims))
        return ct_op_fail(ctx, CT_ESHAPE,
                          "dC %s must have the shape of the forward output "
                          "%s",
                          ct_tensor_shape_str(dc, s1, sizeof(s1)),
                          ct_dims_str(nc, cdims, s2, sizeof(s2)));
    if (op->n_out == 2 && op->out[0] == op->out[1])
        return ct_op_fail(ctx, CT_ESCHEMA, "dA and dB are the same blob \"%s\"",
                          ct_op_output_name(op, 0));
    for (k = 0; k < op->n_out; k++) {
        const ct_tensor_t *x = k == 0 ? a : b;
        if (op->out[k] == op->in[0] && !same_dims(x, nc, cdims))
            return ct_op_fail(ctx, CT_ESHAPE,
                              "in-place output %d would change dC from %s to "
                              "%s",
                              k, ct_tensor_shape_str(dc, s1, sizeof(s1)),
                              ct_tensor_shape_str(x, s2, sizeof(s2)));
        if (op->out[k] == op->in[0])
            order[0] = 1 - k, order[1] = k; /* the alias goes last */
    }
    dcv = ct_tensor_cdata(dc);
    av = ct_tensor_cdata(a);
    bv = ct_tensor_cdata(b);
    if ((rc = ct_op_output(ctx, 0, a->dtype, a->ndim, a->dims, &out[0])) !=
            CT_OK ||
        (op->n_out > 1 && (rc = ct_op_output(ctx, 1, b->dtype, b->ndim, b->dims,
                                             &out[1])) != CT_OK))
        return rc;
    for (k = 0; k < 2; k++) {
        const int t = order[k];
        const bool dense = out[t]->numel == dc->numel;
        enum grad_mode mode = GRAD_COPY;
        const void *other = NULL;

        if (t >= op->n_out)
            continue;
        if (kind == BIN_MUL) {
            mode = GRAD_MUL;
            other = t == 0 ? bv : av;
        } else if (kind == BIN_SUB && t == 1) {
            mode = GRAD_NEG;
        }
        if (!dense && out[t]->numel > 0)
            memset(ct_tensor_data(out[t]), 0, ct_tensor_nbytes(out[t]));
        if (dc->numel == 0)
            continue;
        if (a->dtype == CT_DTYPE_F32)
            grad_reduce_f32(&plan, dcv, other, t == 0 ? plan.sa : plan.sb,
                            t == 0 ? plan.sb : plan.sa, mode, dense,
                            CT_DATA(out[t], float));
        else
            grad_reduce_f64(&plan, dcv, other, t == 0 ? plan.sa : plan.sb,
                            t == 0 ? plan.sb : plan.sa, mode, dense,
                            CT_DATA(out[t], double));
    }
    return CT_OK;
}

static int add_grad_run(ct_op_ctx_t *ctx)
{
    return bin_grad_run(ctx, BIN_ADD);
}
static int sub_grad_run(ct_op_ctx_t *ctx)
{
    return bin_grad_run(ctx, BIN_SUB);
}
static int mul_grad_run(ct_op_ctx_t *ctx)
{
    return bin_grad_run(ctx, BIN_MUL);
}

static int bin_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                          ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[1];
    if (op->n_out > 1)
        out[1] = in[2];
    return CT_OK;
}

static double bin_grad_cost(const ct_op_t *op, const ct_shape_t *in)
{
    double n = 1;
    int i;

    if (in[0].ndim < 0)
        return 0;
    for (i = 0; i < in[0].ndim; i++)
        n *= (double)in[0].dims[i];
    return 2 * n;
}

static bool bin_grad_inplace(int in, int out)
{
    return in == 0;
}

/* {dC, A, B} -> {dA, dB}. Add and Sub need only the shapes of A and B,
 * which an in-place forward op keeps, so they are not recorded as values
 * the gradient reads. */
static int bin_grad_make(struct ct__grad_ctx *g, const char *type, bool values,
                         ct_status_t *st)
{
    const char *in[3], *out[2];

    in[0] = ct__grad_out(g, 0);
    in[1] = values ? ct__grad_fwd_in(g, 0) : g->def->input[0];
    in[2] = values ? ct__grad_fwd_in(g, 1) : g->def->input[1];
    out[0] = ct__grad_in(g, 0);
    out[1] = ct__grad_in(g, 1);
    return ct__grad_emit(g, type, in, 3, out, 2, 0, NULL, st);
}

static int add_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return bin_grad_make(g, "AddGradient", false, st);
}
static int sub_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return bin_grad_make(g, "SubGradient", false, st);
}
static int mul_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return bin_grad_make(g, "MulGradient", true, st);
}

#define BIN_SCHEMA(VAR, NAME, RUN, GRAD, DOC)                                  \
    const struct ct_op_schema VAR = {                                          \
        .name = NAME,                                                          \
        .min_inputs = 2,                                                       \
        .max_inputs = 2,                                                       \
        .min_outputs = 1,                                                      \
        .max_outputs = 1,                                                      \
        .inplace_cb = bin_inplace,                                             \
        .args = bin_args,                                                      \
        .state_size = sizeof(struct bin_state),                                \
        .init_cb = bin_init,                                                   \
        .infer_cb = bin_infer,                                                 \
        .run_cb = RUN,                                                         \
        .cost_cb = bin_cost,                                                   \
        .grad_cb = GRAD,                                                       \
        .doc = DOC,                                                            \
    };

BIN_SCHEMA(ct__op_add, "Add", add_run, add_grad_make,
           "C = A + B with broadcasting")
BIN_SCHEMA(ct__op_sub, "Sub", sub_run, sub_grad_make,
           "C = A - B with broadcasting")
BIN_SCHEMA(ct__op_mul, "Mul", mul_run, mul_grad_make,
           "C = A * B with broadcasting")
BIN_SCHEMA(ct__op_div, "Div", div_run, NULL, "C = A / B with broadcasting")

#define BIN_GRAD_SCHEMA(VAR, NAME, RUN, DOC)                                   \
    const struct ct_op_schema VAR = {                                          \
        .name = NAME,                                                          \
        .min_inputs = 3,                                                       \
        .max_inputs = 3,                                                       \
        .min_outputs = 1,                                                      \
        .max_outputs = 2,                                                      \
        .inplace_cb = bin_grad_inplace,                                        \
        .args = bin_args,                                                      \
        .state_size = sizeof(struct bin_state),                                \
        .init_cb = bin_init,                                                   \
        .infer_cb = bin_grad_infer,                                            \
        .run_cb = RUN,                                                         \
        .cost_cb = bin_grad_cost,                                              \
        .doc = DOC,                                                            \
    };

BIN_GRAD_SCHEMA(ct__op_add_gradient, "AddGradient", add_grad_run,
                "{dC, A, B} -> {dA, dB} of Add (sums over broadcast dims)")
BIN_GRAD_SCHEMA(ct__op_sub_gradient, "SubGradient", sub_grad_run,
                "{dC, A, B} -> {dA, dB} of Sub (sums over broadcast dims)")
BIN_GRAD_SCHEMA(ct__op_mul_gradient, "MulGradient", mul_grad_run,
                "{dC, A, B} -> {dA, dB} of Mul (sums over broadcast dims)")
