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

#include "ops/elementwise.h"
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

/* Output dims (rank through *nd) and the iteration plan. The numpy rule
 * is Add's (ops/elementwise.h); the legacy rule is checked here, as it
 * places B anywhere it fits at `axis`, and then iterates A as
 * [pre, n, post] against B as [n]. */
static int cmp_plan(ct_op_ctx_t *ctx, const ct_tensor_t *a,
                    const ct_tensor_t *b, int *nd, int64_t *dims,
                    struct ct__bcast *plan)
{
    const struct cmp_state *s = ctx->op->state;
    int na = ct_tensor_ndim(a), nb = ct_tensor_ndim(b), i;
    const int64_t *da = ct_tensor_dims(a), *db = ct_tensor_dims(b);
    int64_t pre = 1, n = 1, post = 1, one = 1;
    int lo = 0, hi = nb, start, rc;
    char ba[96], bb[96];
    ct_status_t lst;

    if (!s->legacy) {
        ct_status_clear(&lst);
        rc = ct__bcast_numpy_dims(na, da, nb, db, nd, dims, &lst);
        if (rc != CT_OK)
            return ct_op_fail(ctx, rc, "%s", lst.msg);
        ct__bcast_plan_build(na, da, nb, db, plan);
        return CT_OK;
    }
    *nd = na;
    memcpy(dims, da, (size_t)na * sizeof(*dims));
    if (ct_tensor_numel(b) == 1) {
        pre = ct_tensor_numel(a);
        ct__bcast_plan_build(1, &pre, 1, &one, plan);
        return CT_OK;
    }
    ct_dims_str(na, da, ba, sizeof(ba));
    ct_dims_str(nb, db, bb, sizeof(bb));
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
                              ba, start + i - lo, (long long)da[start + i - lo],
                              bb, i, (long long)db[i]);
    for (i = 0; i < start; i++)
        pre *= da[i];
    for (i = lo; i < hi; i++)
        n *= db[i];
    for (i = start + hi - lo; i < na; i++)
        post *= da[i];
    {
        const int64_t av[3] = {pre, n, post}, bv[2] = {n, 1};
        ct__bcast_plan_build(3, av, 2, bv, plan);
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
            for (k = p.ndim - 1; k >= 0; k--) {                                \
                oa += p.sa[k];                                                 \
                ob += p.sb[k];                                                 \
                if (++idx[k] < p.dims[k])                                      \
                    break;                                                     \
                oa -= p.sa[k] * p.dims[k];                                     \
                ob -= p.sb[k] * p.dims[k];                                     \
                idx[k] = 0;                                                    \
            }                                                                  \
        }                                                                      \
    } while (0)

static int cmp_run(ct_op_ctx_t *ctx, enum cmp_kind kind)
{
    const ct_tensor_t *a, *b;
    ct_tensor_t *out;
    struct ct__bcast p;
    int64_t dims[CT_MAX_DIMS], idx[CT_MAX_DIMS] = {0}, n, e, oa = 0, ob = 0;
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
    if ((rc = cmp_plan(ctx, a, b, &nd, dims, &p)) != CT_OK)
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

static double cmp_cost(const ct_op_t *op, const ct_shape_t *in)
{
    int64_t n = 1;
    int i;

    (void)op;
    for (i = 0; in[0].ndim > 0 && i < in[0].ndim; i++)
        n *= in[0].dims[i] > 0 ? in[0].dims[i] : 1;
    return (double)n;
}

/* One op per kind: its run_cb and its schema ct__op_<LOWER>. */
#define CMP_SCHEMA(LOWER, NAME, KIND, DOC)                                     \
    static int LOWER##_run(ct_op_ctx_t *ctx)                                   \
    {                                                                          \
        return cmp_run(ctx, KIND);                                             \
    }                                                                          \
    const struct ct_op_schema ct__op_##LOWER = {                               \
        .name = NAME,                                                          \
        .min_inputs = 2,                                                       \
        .max_inputs = 2,                                                       \
        .min_outputs = 1,                                                      \
        .max_outputs = 1,                                                      \
        .args = cmp_args,                                                      \
        .state_size = sizeof(struct cmp_state),                                \
        .init_cb = cmp_init,                                                   \
        .run_cb = LOWER##_run,                                                 \
        .cost_cb = cmp_cost,                                                   \
        .doc = DOC,                                                            \
    }

CMP_SCHEMA(eq, "EQ", CMP_EQ, "bool C = (A == B) with broadcasting");
CMP_SCHEMA(ne, "NE", CMP_NE, "bool C = (A != B) with broadcasting");
CMP_SCHEMA(lt, "LT", CMP_LT, "bool C = (A < B) with broadcasting");
CMP_SCHEMA(le, "LE", CMP_LE, "bool C = (A <= B) with broadcasting");
CMP_SCHEMA(gt, "GT", CMP_GT, "bool C = (A > B) with broadcasting");
CMP_SCHEMA(ge, "GE", CMP_GE, "bool C = (A >= B) with broadcasting");
