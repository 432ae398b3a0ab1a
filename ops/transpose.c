/* Transpose: permute the dims of a tensor.
 *
 * Math: Y.dims[i] = X.dims[axes[i]] and Y[j_0, ..., j_{n-1}] = X[i...]
 * with i_{axes[k]} = j_k. Input X, output Y.
 * Attr axes (ints): a permutation of 0 .. ndim - 1; absent or empty
 * reverses the dims (a matrix transpose for 2-d X). A list that is not a
 * permutation is CT_EARG when the op is created ("Axes should be a
 * permutation of 0 to ndim."); one whose length differs from X's rank is
 * CT_ESHAPE at run time.
 * Dtypes: every fixed-size dtype (elements are moved as 1, 2, 4 or 8
 * bytes); strings are CT_ENOTSUP. Caffe2's CPU kernel takes FLOAT,
 * DOUBLE, INT32 and INT64 only. Caffe2 also freezes the reversed axes at
 * the rank of the first run; cortado derives them on every run.
 * No in-place.
 * Gradient maker (Caffe2's GetTransposeGradient): Transpose(dY) -> dX
 * with the inverse permutation (the reversal when axes is absent).
 *
 * Kernel: dims of extent 1 are dropped and adjacent source dims that stay
 * adjacent in Y are merged, so a tensor is moved as the smallest-rank
 * transpose (a pure copy when the permutation becomes the identity). The
 * innermost Y dim is walked with the source stride; the outer ones with
 * an index counter. Output rows [r0, r1) of the merged view make the unit
 * of work for ct_parallel_for.
 */
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

struct transpose_state {
    int n_axes; /* 0: reverse */
    int axes[CT_MAX_DIMS];
};

/* The merged view: Y has nd dims yd, and Y's dim k walks the source with
 * element stride xs[k]. */
struct tr_view {
    int nd;
    int64_t yd[CT_MAX_DIMS], xs[CT_MAX_DIMS];
};

static void tr_simplify(int nd, const int64_t *xd, const int *perm,
                        struct tr_view *v)
{
    int64_t stride[CT_MAX_DIMS], s = 1;
    int k;

    for (k = nd - 1; k >= 0; k--) {
        stride[k] = s;
        s *= xd[k];
    }
    v->nd = 0;
    for (k = 0; k < nd; k++) {
        const int a = perm[k];
        if (xd[a] == 1)
            continue;
        /* Merge with the previous Y dim when it is the source dim just
         * outside this one. */
        if (v->nd > 0 && v->xs[v->nd - 1] == stride[a] * xd[a]) {
            v->yd[v->nd - 1] *= xd[a];
            v->xs[v->nd - 1] = stride[a];
            continue;
        }
        v->yd[v->nd] = xd[a];
        v->xs[v->nd] = stride[a];
        v->nd++;
    }
}

#define TR_KERNEL(name, type)                                                  \
    static void name(const struct tr_view *v, const type *x, type *y,          \
                     int64_t r0, int64_t r1)                                   \
    {                                                                          \
        const int nd = v->nd;                                                  \
        const int64_t inner = v->yd[nd - 1], is = v->xs[nd - 1];               \
        int64_t idx[CT_MAX_DIMS], r, rem, base, j;                             \
        int k;                                                                 \
                                                                               \
        for (r = r0; r < r1; r++) {                                            \
            rem = r;                                                           \
            base = 0;                                                          \
            for (k = nd - 2; k >= 0; k--) {                                    \
                idx[k] = rem % v->yd[k];                                       \
                rem /= v->yd[k];                                               \
                base += idx[k] * v->xs[k];                                     \
            }                                                                  \
            for (j = 0; j < inner; j++)                                        \
                y[r * inner + j] = x[base + j * is];                           \
        }                                                                      \
    }

TR_KERNEL(tr_rows_u8, uint8_t)
TR_KERNEL(tr_rows_u16, uint16_t)
TR_KERNEL(tr_rows_u32, uint32_t)
TR_KERNEL(tr_rows_u64, uint64_t)

/* Y dims and the permutation for X's rank. */
static int tr_perm(const struct transpose_state *s, int nd, const int64_t *xd,
                   int *perm, int64_t *yd, ct_status_t *st)
{
    char buf[128];
    int k;

    if (s->n_axes != 0 && s->n_axes != nd)
        return ct_status_setf(
            st, CT_ESHAPE, "axes has %d entries but X %s has %d dims",
            s->n_axes, ct_dims_str(nd, xd, buf, sizeof(buf)), nd);
    for (k = 0; k < nd; k++) {
        perm[k] = s->n_axes != 0 ? s->axes[k] : nd - 1 - k;
        yd[k] = xd[perm[k]];
    }
    return CT_OK;
}

static int transpose_run(ct_op_ctx_t *ctx)
{
    const struct transpose_state *s = ctx->op->state;
    const ct_tensor_t *x;
    ct_tensor_t *y;
    struct tr_view v;
    int64_t yd[CT_MAX_DIMS], rows;
    int perm[CT_MAX_DIMS], k, rc;
    ct_status_t lst;
    size_t es;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    es = ct_dtype_size(x->dtype);
    if (x->dtype == CT_DTYPE_STRING ||
        (es != 1 && es != 2 && es != 4 && es != 8))
        return ct_op_fail(ctx, CT_ENOTSUP, "unsupported dtype %s for X",
                          ct_dtype_name(x->dtype));
    ct_status_clear(&lst);
    if ((rc = tr_perm(s, x->ndim, x->dims, perm, yd, &lst)) != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    if ((rc = ct_op_output(ctx, 0, x->dtype, x->ndim, yd, &y)) != CT_OK)
        return rc;
    if (x->numel == 0)
        return CT_OK;
    tr_simplify(x->ndim, x->dims, perm, &v);
    if (v.nd == 0 || (v.nd == 1 && v.xs[0] == 1)) {
        memcpy(ct_tensor_data(y), ct_tensor_cdata(x), ct_tensor_nbytes(x));
        return CT_OK;
    }
    rows = 1;
    for (k = 0; k < v.nd - 1; k++)
        rows *= v.yd[k];
    /* One range for now; ct_parallel_for will split the rows. */
    switch (es) {
    case 1:
        tr_rows_u8(&v, ct_tensor_cdata(x), ct_tensor_data(y), 0, rows);
        break;
    case 2:
        tr_rows_u16(&v, ct_tensor_cdata(x), ct_tensor_data(y), 0, rows);
        break;
    case 4:
        tr_rows_u32(&v, ct_tensor_cdata(x), ct_tensor_data(y), 0, rows);
        break;
    default:
        tr_rows_u64(&v, ct_tensor_cdata(x), ct_tensor_data(y), 0, rows);
        break;
    }
    return CT_OK;
}

static int transpose_init(ct_op_t *op, ct_status_t *st)
{
    struct transpose_state *s = op->state;
    bool seen[CT_MAX_DIMS] = {false};
    const int64_t *axes;
    size_t n, k;
    int rc;

    if ((rc = ct__arg_ints(op, "axes", &axes, &n, st)) != CT_OK)
        return rc;
    if (n > CT_MAX_DIMS)
        return ct_status_setf(st, CT_EARG,
                              "axes has %zu entries; at most %d dims are "
                              "supported",
                              n, CT_MAX_DIMS);
    for (k = 0; k < n; k++) {
        if (axes[k] < 0 || axes[k] >= (int64_t)n || seen[axes[k]])
            return ct_status_setf(st, CT_EARG,
                                  "Axes should be a permutation of 0 to ndim. "
                                  "(axes[%zu] = %lld with %zu axes)",
                                  k, (long long)axes[k], n);
        seen[axes[k]] = true;
        s->axes[k] = (int)axes[k];
    }
    s->n_axes = (int)n;
    return CT_OK;
}

static int transpose_infer(const ct_op_t *op, const ct_shape_t *in,
                           ct_shape_t *out, ct_status_t *st)
{
    int perm[CT_MAX_DIMS];

    out[0].dtype = in[0].dtype;
    if (in[0].ndim < 0)
        return CT_OK;
    out[0].ndim = in[0].ndim;
    return tr_perm(op->state, in[0].ndim, in[0].dims, perm, out[0].dims, st);
}

static int transpose_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    Caffe2__OperatorDef *op;
    const char *in[1], *out[1];
    size_t a, k;
    int rc;

    if ((rc = ct__grad_need_out(g, 0, &in[0], st)) != CT_OK)
        return rc;
    out[0] = ct__grad_in(g, 0);
    if ((rc = ct__grad_emit(g, "Transpose", in, 1, out, 1, 0, &op, st)) !=
        CT_OK)
        return rc;
    /* The copied axes become their inverse permutation, in place (the
     * forward op may not have been created yet: check them here). */
    for (a = 0; a < op->n_arg; a++) {
        Caffe2__Argument *arg = op->arg[a];
        int64_t inv[CT_MAX_DIMS];
        bool seen[CT_MAX_DIMS] = {false};
        if (strcmp(arg->name, "axes") != 0)
            continue;
        for (k = 0; k < arg->n_ints; k++) {
            const int64_t v = arg->ints[k];
            if (arg->n_ints > CT_MAX_DIMS || v < 0 ||
                v >= (int64_t)arg->n_ints || seen[v])
                return ct_status_setf(st, CT_EARG,
                                      "Axes should be a permutation of 0 to "
                                      "ndim. (axes[%zu] = %lld with %zu "
                                      "axes)",
                                      k, (long long)v, arg->n_ints);
            seen[v] = true;
            inv[v] = (int64_t)k;
        }
        if (arg->n_ints > 0)
            memcpy(arg->ints, inv, arg->n_ints * sizeof(int64_t));
    }
    return CT_OK;
}

static const struct ct_arg_spec transpose_args[] = {
    {"axes", CT_ARG_INTS, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_transpose = {
    .name = "Transpose",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = transpose_args,
    .state_size = sizeof(struct transpose_state),
    .init_cb = transpose_init,
    .infer_cb = transpose_infer,
    .run_cb = transpose_run,
    .grad_cb = transpose_grad_make,
    .doc = "Y = X with its dims permuted by axes (default: reversed)",
};
