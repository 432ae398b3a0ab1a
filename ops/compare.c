/* Comparisons: EQ, NE, LT, LE, GT, GE (Caffe2's elementwise logical ops).
 *
 * Math: C[i] = A[i] op B[i] after broadcasting; C is a BOOL tensor.
 * Inputs: A, B of the same dtype (else CT_ETYPE naming both). Dtypes:
 * BOOL, INT32, INT64, FLOAT, DOUBLE; others are CT_ENOTSUP. Floats compare
 * as C does (a NaN is unequal to everything and never ordered).
 * Attrs (Caffe2's BinaryElementwiseWithArgsOp, as in Add):
 *   broadcast (int, 0): 0 = numpy broadcasting (shapes aligned at the
 *     right, each pair of dims equal or one of them 1). 1 = Caffe2's legacy
 *     rule: C has A's shape; B, without its leading and trailing 1-dims,
 *     must equal the run of A's dims that starts at `axis` (-1: A's
 *     suffix); a one-element B is a scalar.
 *   axis (int, -1), axis_str (string) with order (string, "NCHW"): the
 *     legacy start dim, the latter as a letter of order.
 * Shape mismatches are CT_ESHAPE naming both shapes. No in-place (the
 * output dtype differs from the inputs'). No gradient: Caffe2 declares
 * SHOULD_NOT_DO_GRADIENT, so a gradient flowing into C is an error of the
 * gradient builder; a condition consumed by If or While takes none.
 *
 * Design: the op is used for loop and branch conditions, which are tiny,
 * so one generic kernel walks the output with an odometer over at most
 * CT_MAX_DIMS dims, A and B addressed through strides that are 0 along
 * broadcast dims; no per-element division.
 */
#include <string.h>

#include "ops/op_impl.h"

enum cmp_kind { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

struct cmp_state {
    bool legacy;
    int64_t axis; /* -1: suffix; resolved from axis_str when given */
};

static const struct ct_arg_spec cmp_args[] = {
    {"broadcast", CT_ARG_INT, false},   {"axis", CT_ARG_INT, false},
    {"axis_str", CT_ARG_STRING, false}, {"order", CT_ARG_STRING, false},
    {NULL, CT_ARG_ANY, false},
};

static int cmp_init(ct_op_t *op, ct_status_t *st)
{
    struct cmp_state *s = op->state;
    const char *axis_str = NULL, *order = NULL, *hit;
    size_t len = 0, olen = 0;
    int64_t bcast = 0;
    int rc;

    s->axis = -1;
    if ((rc = ct__arg_int(op, "broadcast", 0, &bcast, st)) != CT_OK ||
        (rc = ct__arg_int(op, "axis", -1, &s->axis, st)) != CT_OK ||
        (rc = ct__arg_string(op, "axis_str", NULL, &axis_str, &len, st)) !=
            CT_OK ||
        (rc = ct__arg_string(op, "order", "NCHW", &order, &olen, st)) != CT_OK)
        return rc;
    if (bcast != 0 && bcast != 1)
        return ct_status_setf(st, CT_EARG,
                              "Value %lld of argument broadcast cannot be "
                              "interpreted as bool (want 0 or 1)",
                              (long long)bcast);
    s->legacy = bcast == 1;
    if (axis_str == NULL)
        return CT_OK;
    if (ct__arg_has(op, "axis"))
        return ct_status_setf(st, CT_EARG,
                              "Args axis and axis_str cannot be used "
                              "simultaneously.");
    if (len != 1)
        return ct_status_setf(st, CT_EARG,
                              "Unsupported axis string \"%.*s\" (want one "
                              "letter of order)",
                              (int)len, axis_str);
    hit = memchr(order, axis_str[0], olen);
    if (hit == NULL)
        return ct_status_setf(st, CT_EARG,
                              "axis_str \"%c\" is not a dim of order "
                              "\"%.*s\"",
                              axis_str[0], (int)olen, order);
    s->axis = hit - order;
    return CT_OK;
}

/* Output dims and the element strides of A and B over them (0 along
 * broadcast dims). Returns the output rank through *nd. */
static int cmp_plan(ct_op_ctx_t *ctx, const ct_tensor_t *a,
                    const ct_tensor_t *b, int *nd, int64_t *dims, int64_t *sa,
                    int64_t *sb)
{
    const struct cmp_state *s = ctx->op->state;
    int na = ct_tensor_ndim(a), nb = ct_tensor_ndim(b), i;
    const int64_t *da = ct_tensor_dims(a), *db = ct_tensor_dims(b);
    int64_t acc;
    char ba[96], bb[96];

    ct_dims_str(na, da, ba, sizeof(ba));
    ct_dims_str(nb, db, bb, sizeof(bb));
    if (s->legacy) {
        int lo = 0, hi = nb, start;
        *nd = na;
        memcpy(dims, da, (size_t)na * sizeof(*dims));
        for (i = 0; i < na; i++)
            sb[i] = 0;
        if (ct_tensor_numel(b) != 1) {
            while (lo < hi && db[lo] == 1)
                lo++;
            while (hi > lo && db[hi - 1] == 1)
                hi--;
            start = s->axis < 0 ? na - nb + lo : (int)s->axis + lo;
            if (nb > na || start < 0 || start + (hi - lo) > na)
                return ct_op_fail(ctx, CT_ESHAPE,
                                  "legacy broadcast: B %s does not fit A %s "
                                  "at axis %lld",
                                  bb, ba, (long long)s->axis);
            for (i = lo; i < hi; i++)
                if (db[i] != da[start + i - lo])
                    return ct_op_fail(ctx, CT_ESHAPE,
                                      "legacy broadcast: dimension mismatch, "
                                      "A %s dim %d is %lld but B %s dim %d is "
                                      "%lld",
                                      ba, start + i - lo,
                                      (long long)da[start + i - lo], bb, i,
                                      (long long)db[i]);
            acc = 1;
            for (i = hi - 1; i >= lo; i--) {
                sb[start + i - lo] = acc;
                acc *= db[i];
            }
        }
        acc = 1;
        for (i = na - 1; i >= 0; i--) {
            sa[i] = acc;
            acc *= da[i];
        }
        return CT_OK;
    }
    *nd = na > nb ? na : nb;
    {
        int64_t acc_a = 1, acc_b = 1;
        for (i = *nd - 1; i >= 0; i--) {
            int ia = i - (*nd - na), ib = i - (*nd - nb);
            int64_t xa = ia >= 0 ? da[ia] : 1, xb = ib >= 0 ? db[ib] : 1;
            if (xa != xb && xa != 1 && xb != 1)
                return ct_op_fail(ctx, CT_ESHAPE,
                                  "cannot broadcast A %s with B %s: dim %d of "
                                  "A is %lld, dim %d of B is %lld",
                                  ba, bb, ia, (long long)xa, ib, (long long)xb);
            dims[i] = xa == 1 ? xb : xa;
            sa[i] = xa == 1 ? 0 : acc_a;
            sb[i] = xb == 1 ? 0 : acc_b;
            acc_a *= xa;
            acc_b *= xb;
        }
    }
    return CT_OK;
}

#define CMP_LOOP(T)                                                            \
    do {                                                                       \
        const T *pa = a0, *pb = b0;                                            \
        for (e = 0; e < n; e++) {                                              \
            T x = pa[oa], y = pb[ob];                                          \
            bool r;                                                            \
            switch (kind) {                                                    \
            case CMP_EQ:                                                       \
                r = x == y;                                                    \
                break;                                                         \
            case CMP_NE:                                                       \
                r = x != y;                                                    \
                break;                                                         \
            case CMP_LT:                                                       \
                r = x < y;                                                     \
                break;                                                         \
            case CMP_LE:                                                       \
                r = x <= y;                                                    \
                break;                                                         \
            case CMP_GT:                                                       \
                r = x > y;                                                     \
                break;                                                         \
            default:                                                           \
                r = x >= y;                                                    \
                break;                                                         \
            }                                                                  \
            c[e] = r;                                                          \
            for (k = nd - 1; k >= 0; k--) {                                    \
                oa += sa[k];                                                   \
                ob += sb[k];                                                   \
                if (++idx[k] < dims[k])                                        \
                    break;                                                     \
                oa -= sa[k] * dims[k];                                         \
                ob -= sb[k] * dims[k];                                         \
                idx[k] = 0;                                                    \
            }                                                                  \
        }                                                                      \
    } while (0)

static int cmp_run(ct_op_ctx_t *ctx, enum cmp_kind kind)
{
    const ct_tensor_t *a, *b;
    ct_tensor_t *out;
    int64_t dims[CT_MAX_DIMS], sa[CT_MAX_DIMS], sb[CT_MAX_DIMS];
    int64_t idx[CT_MAX_DIMS] = {0}, n, e, oa = 0, ob = 0;
    const void *a0, *b0;
    ct_dtype_t dt;
    bool *c;
    int nd = 0, k, rc;

    if ((rc = ct_op_input(ctx, 0, &a)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &b)) != CT_OK)
        return rc;
    dt = ct_tensor_dtype(a);
    if (dt != ct_tensor_dtype(b))
        return ct_op_fail(ctx, CT_ETYPE,
                          "A \"%s\" is %s but B \"%s\" is %s; comparisons "
                          "need one dtype",
                          ct_op_input_name(ctx->op, 0), ct_dtype_name(dt),
                          ct_op_input_name(ctx->op, 1),
                          ct_dtype_name(ct_tensor_dtype(b)));
    if (dt != CT_DTYPE_BOOL && dt != CT_DTYPE_I32 && dt != CT_DTYPE_I64 &&
        dt != CT_DTYPE_F32 && dt != CT_DTYPE_F64)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s for comparison (want bool, "
                          "int32, int64, float or double)",
                          ct_dtype_name(dt));
    if ((rc = cmp_plan(ctx, a, b, &nd, dims, sa, sb)) != CT_OK)
        return rc;
    if ((rc = ct_op_output(ctx, 0, CT_DTYPE_BOOL, nd, dims, &out)) != CT_OK)
        return rc;
    n = ct_tensor_numel(out);
    c = ct_tensor_data(out);
    a0 = ct_tensor_cdata(a);
    b0 = ct_tensor_cdata(b);
    switch (dt) {
    case CT_DTYPE_BOOL:
        CMP_LOOP(bool);
        break;
    case CT_DTYPE_I32:
        CMP_LOOP(int32_t);
        break;
    case CT_DTYPE_I64:
        CMP_LOOP(int64_t);
        break;
    case CT_DTYPE_F32:
        CMP_LOOP(float);
        break;
    default:
        CMP_LOOP(double);
        break;
    }
    return CT_OK;
}

static int eq_run(ct_op_ctx_t *ctx)
{
    return cmp_run(ctx, CMP_EQ);
}
static int ne_run(ct_op_ctx_t *ctx)
{
    return cmp_run(ctx, CMP_NE);
}
static int lt_run(ct_op_ctx_t *ctx)
{
    return cmp_run(ctx, CMP_LT);
}
static int le_run(ct_op_ctx_t *ctx)
{
    return cmp_run(ctx, CMP_LE);
}
static int gt_run(ct_op_ctx_t *ctx)
{
    return cmp_run(ctx, CMP_GT);
}
static int ge_run(ct_op_ctx_t *ctx)
{
    return cmp_run(ctx, CMP_GE);
}

static double cmp_cost(const ct_op_t *op, const ct_shape_t *in)
{
    int64_t n = 1;
    int i;

    (void)op;
    for (i = 0; in[0].ndim > 0 && i < in[0].ndim; i++)
        n *= in[0].dims[i] > 0 ? in[0].dims[i] : 1;
    return (double)n;
}

#define CMP_SCHEMA(VAR, NAME, RUN, DOC)                                        \
    const struct ct_op_schema VAR = {                                          \
        .name = NAME,                                                          \
        .min_inputs = 2,                                                       \
        .max_inputs = 2,                                                       \
        .min_outputs = 1,                                                      \
        .max_outputs = 1,                                                      \
        .args = cmp_args,                                                      \
        .state_size = sizeof(struct cmp_state),                                \
        .init_cb = cmp_init,                                                   \
        .run_cb = RUN,                                                         \
        .cost_cb = cmp_cost,                                                   \
        .doc = DOC,                                                            \
    }

CMP_SCHEMA(ct__op_eq, "EQ", eq_run, "bool C = (A == B) with broadcasting");
CMP_SCHEMA(ct__op_ne, "NE", ne_run, "bool C = (A != B) with broadcasting");
CMP_SCHEMA(ct__op_lt, "LT", lt_run, "bool C = (A < B) with broadcasting");
CMP_SCHEMA(ct__op_le, "LE", le_run, "bool C = (A <= B) with broadcasting");
CMP_SCHEMA(ct__op_gt, "GT", gt_run, "bool C = (A > B) with broadcasting");
CMP_SCHEMA(ct__op_ge, "GE", ge_run, "bool C = (A >= B) with broadcasting");
