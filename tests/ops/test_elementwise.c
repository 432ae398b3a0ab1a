/* Tests for ops/elementwise.c: Add, Sub, Mul, Div with numpy and legacy
 * broadcasting, compared with a naive reference over one case table;
 * dtype and shape errors, integer division errors, in-place rules, shape
 * inference and cost (white-box through ops/op_impl.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

/* ---- fixtures ---- */

/* setup/teardown: tu_env_setup / tu_env_teardown (op_test.h). */

/* ---- the case table ---- */

enum kind { K_ADD, K_SUB, K_MUL, K_DIV };
static const char *const kind_name[] = {"Add", "Sub", "Mul", "Div"};

#define NO_AXIS (-100) /* leave the axis argument out */

struct bin_case {
    const char *what;
    int na;
    int64_t a[5];
    int nb;
    int64_t b[5];
    int legacy;           /* broadcast = 1 */
    int axis;             /* NO_AXIS: absent */
    const char *axis_str; /* NULL: absent */
    int nc;
    int64_t c[5]; /* expected output dims */
};

static const struct bin_case cases[] = {
    {"same shape", 3, {2, 3, 4}, 3, {2, 3, 4}, 0, NO_AXIS, NULL, 3, {2, 3, 4}},
    {"0-d scalar B", 3, {2, 3, 4}, 0, {0}, 0, NO_AXIS, NULL, 3, {2, 3, 4}},
    {"0-d scalar A", 0, {0}, 2, {3, 5}, 0, NO_AXIS, NULL, 2, {3, 5}},
    {"both 0-d", 0, {0}, 0, {0}, 0, NO_AXIS, NULL, 0, {0}},
    {"[1] scalar", 3, {2, 3, 4}, 1, {1}, 0, NO_AXIS, NULL, 3, {2, 3, 4}},
    {"row vector", 3, {2, 3, 4}, 1, {4}, 0, NO_AXIS, NULL, 3, {2, 3, 4}},
    {"[2,1,4]+[3,1]", 3, {2, 1, 4}, 2, {3, 1}, 0, NO_AXIS, NULL, 3, {2, 3, 4}},
    {"[3,1]+[2,1,4]", 2, {3, 1}, 3, {2, 1, 4}, 0, NO_AXIS, NULL, 3, {2, 3, 4}},
    {"column", 2, {5, 6}, 2, {5, 1}, 0, NO_AXIS, NULL, 2, {5, 6}},
    {"outer", 2, {1, 6}, 2, {5, 1}, 0, NO_AXIS, NULL, 2, {5, 6}},
    {"scalar A vector B", 1, {1}, 1, {7}, 0, NO_AXIS, NULL, 1, {7}},
    {"middle",
     4,
     {2, 3, 4, 5},
     3,
     {3, 1, 5},
     0,
     NO_AXIS,
     NULL,
     4,
     {2, 3, 4, 5}},
    {"interleaved",
     4,
     {4, 1, 5, 1},
     4,
     {1, 3, 1, 6},
     0,
     NO_AXIS,
     NULL,
     4,
     {4, 3, 5, 6}},
    {"long rows", 2, {37, 129}, 1, {129}, 0, NO_AXIS, NULL, 2, {37, 129}},
    {"long flat", 1, {1000}, 1, {1000}, 0, NO_AXIS, NULL, 1, {1000}},
    {"empty dim", 3, {2, 0, 3}, 1, {3}, 0, NO_AXIS, NULL, 3, {2, 0, 3}},
    {"empty vs 1", 1, {0}, 1, {1}, 0, NO_AXIS, NULL, 1, {0}},
    {"legacy axis 1", 4, {2, 3, 4, 5}, 2, {3, 4}, 1, 1, NULL, 4, {2, 3, 4, 5}},
    {"legacy axis 0", 4, {2, 3, 4, 5}, 1, {2}, 1, 0, NULL, 4, {2, 3, 4, 5}},
    {"legacy axis -1",
     4,
     {2, 3, 4, 5},
     2,
     {4, 5},
     1,
     -1,
     NULL,
     4,
     {2, 3, 4, 5}},
    {"legacy default axis",
     4,
     {2, 3, 4, 5},
     1,
     {5},
     1,
     NO_AXIS,
     NULL,
     4,
     {2, 3, 4, 5}},
    {"legacy scalar",
     4,
     {2, 3, 4, 5},
     2,
     {1, 1},
     1,
     NO_AXIS,
     NULL,
     4,
     {2, 3, 4, 5}},
    {"legacy trailing 1",
     4,
     {2, 3, 4, 5},
     2,
     {3, 1},
     1,
     1,
     NULL,
     4,
     {2, 3, 4, 5}},
    {"legacy leading 1",
     4,
     {2, 3, 4, 5},
     3,
     {1, 4, 1},
     1,
     1,
     NULL,
     4,
     {2, 3, 4, 5}},
    {"legacy axis_str C",
     4,
     {2, 3, 4, 5},
     2,
     {3, 4},
     1,
     NO_AXIS,
     "C",
     4,
     {2, 3, 4, 5}},
    {"legacy same shape", 2, {3, 4}, 2, {3, 4}, 1, NO_AXIS, NULL, 2, {3, 4}},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static const ct_dtype_t dtypes[] = {CT_DTYPE_F32, CT_DTYPE_F64, CT_DTYPE_I32,
                                    CT_DTYPE_I64};

/* ---- helpers ---- */

static int64_t numel(int nd, const int64_t *d)
{
    int64_t n = 1;
    int i;
    for (i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

/* Random data of dtype dt; integers in [-20, 20], nonzero for divisors. */
static void *make_data(ct_dtype_t dt, int64_t n, uint64_t seed, bool nonzero)
{
    float *f = malloc((size_t)(n ? n : 1) * sizeof(float));
    void *out = malloc((size_t)(n ? n : 1) * 8);
    int64_t i;

    assert_non_null(f);
    assert_non_null(out);
    tu_fill_uniform(f, (size_t)n, -20.0f, 20.0f, seed);
    for (i = 0; i < n; i++) {
        float v = f[i];
        if (nonzero && fabsf(v) < 1.0f)
            v = 1.5f; /* also nonzero once truncated to an integer */
        switch (dt) {
        case CT_DTYPE_F32:
            ((float *)out)[i] = v;
            break;
        case CT_DTYPE_F64:
            ((double *)out)[i] = (double)v * 1.000001;
            break;
        case CT_DTYPE_I32:
            ((int32_t *)out)[i] = (int32_t)v;
            break;
        default:
            ((int64_t *)out)[i] = (int64_t)v * 1000003;
            break;
        }
    }
    free(f);
    return out;
}

#define REF(T)                                                                 \
    do {                                                                       \
        const T x = ((const T *)a)[ia], y = ((const T *)b)[ib];                \
        T r = 0;                                                               \
        switch (k) {                                                           \
        case K_ADD:                                                            \
            r = x + y;                                                         \
            break;                                                             \
        case K_SUB:                                                            \
            r = x - y;                                                         \
            break;                                                             \
        case K_MUL:                                                            \
            r = x * y;                                                         \
            break;                                                             \
        case K_DIV:                                                            \
            r = x / y;                                                         \
            break;                                                             \
        }                                                                      \
        ((T *)c)[ic] = r;                                                      \
    } while (0)

static void ref_apply(enum kind k, ct_dtype_t dt, const void *a, int64_t ia,
                      const void *b, int64_t ib, void *c, int64_t ic)
{
    switch (dt) {
    case CT_DTYPE_F32:
        REF(float);
        break;
    case CT_DTYPE_F64:
        REF(double);
        break;
    case CT_DTYPE_I32:
        REF(int32_t);
        break;
    default:
        REF(int64_t);
        break;
    }
}

/* Naive reference: for each output index, find A's and B's elements by
 * the broadcasting rule written out directly. */
static void ref_run(enum kind k, ct_dtype_t dt, const struct bin_case *t,
                    const void *a, const void *b, void *c)
{
    int64_t n = numel(t->nc, t->c), e;
    int64_t idx[5];

    for (e = 0; e < n; e++) {
        int64_t rem = e, ia = 0, ib = 0, sa = 1, sb = 1;
        int d;
        for (d = t->nc - 1; d >= 0; d--) {
            idx[d] = rem % t->c[d];
            rem /= t->c[d];
        }
        /* A: numpy right alignment (legacy: A has C's shape). */
        for (d = t->na - 1; d >= 0; d--) {
            int64_t i = idx[t->nc - t->na + d];
            ia += (t->a[d] == 1 ? 0 : i) * sa;
            sa *= t->a[d];
        }
        if (t->legacy && numel(t->nb, t->b) == 1) {
            ib = 0;
        } else if (t->legacy) {
            int axis = t->axis_str != NULL                     ? 1
                       : (t->axis == NO_AXIS || t->axis == -1) ? t->na - t->nb
                                                               : t->axis;
            for (d = t->nb - 1; d >= 0; d--) {
                ib += (t->b[d] == 1 ? 0 : idx[axis + d]) * sb;
                sb *= t->b[d];
            }
        } else {
            for (d = t->nb - 1; d >= 0; d--) {
                int64_t i = idx[t->nc - t->nb + d];
                ib += (t->b[d] == 1 ? 0 : i) * sb;
                sb *= t->b[d];
            }
        }
        ref_apply(k, dt, a, ia, b, ib, c, e);
    }
}

static Caffe2__OperatorDef *make_op(enum kind k, const struct bin_case *t,
                                    const char *outs)
{
    Caffe2__OperatorDef *op = tu_op(kind_name[k], "A,B", outs);

    if (t->legacy)
        tu_arg_i(op, "broadcast", 1);
    if (t->axis != NO_AXIS)
        tu_arg_i(op, "axis", t->axis);
    if (t->axis_str != NULL)
        tu_arg_s(op, "axis_str", t->axis_str);
    return op;
}

static void assert_dims(const ct_tensor_t *t, int nd, const int64_t *d)
{
    int i;

    assert_int_equal(ct_tensor_ndim(t), nd);
    for (i = 0; i < nd; i++)
        assert_int_equal(ct_tensor_dims(t)[i], d[i]);
}

static void assert_equal_data(ct_dtype_t dt, const void *got, const void *want,
                              int64_t n, const char *what)
{
    int64_t i;

    if (dt == CT_DTYPE_F32) {
        tu_assert_close_f32(got, want, (size_t)n, 1e-6f, 0);
        return;
    }
    for (i = 0; i < n; i++) {
        bool same;
        if (dt == CT_DTYPE_F64)
            same = ((const double *)got)[i] == ((const double *)want)[i];
        else if (dt == CT_DTYPE_I32)
            same = ((const int32_t *)got)[i] == ((const int32_t *)want)[i];
        else
            same = ((const int64_t *)got)[i] == ((const int64_t *)want)[i];
        if (!same)
            fail_msg("%s: element %lld differs", what, (long long)i);
    }
}

/* Runs every case of the table for op kind k and every dtype. */
static void run_table(struct tu_env *e, enum kind k)
{
    size_t ci, di;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct bin_case *t = &cases[ci];
        for (di = 0; di < sizeof(dtypes) / sizeof(dtypes[0]); di++) {
            ct_dtype_t dt = dtypes[di];
            int64_t na = numel(t->na, t->a), nb = numel(t->nb, t->b);
            int64_t nc = numel(t->nc, t->c);
            void *a = make_data(dt, na, 11 + ci, false);
            void *b = make_data(dt, nb, 97 + ci, k == K_DIV);
            void *want = calloc((size_t)(nc ? nc : 1), 8);
            Caffe2__OperatorDef *op = make_op(k, t, "C");
            ct_status_t st;
            ct_tensor_t *c;
            char what[160];
            int rc;

            snprintf(what, sizeof(what), "%s %s %s", kind_name[k], t->what,
                     ct_dtype_name(dt));
            tu_feed(e->ws, "A", dt, t->na, t->a, a);
            tu_feed(e->ws, "B", dt, t->nb, t->b, b);
            rc = tu_run_op(e->ws, op, &st);
            if (rc != CT_OK)
                fail_msg("%s: %s", what, st.msg);
            c = tu_fetch(e->ws, "C");
            assert_int_equal(ct_tensor_dtype(c), dt);
            assert_dims(c, t->nc, t->c);
            ref_run(k, dt, t, a, b, want);
            assert_equal_data(dt, ct_tensor_cdata(c), want, nc, what);
            tu_op_free(op);
            free(a);
            free(b);
            free(want);
        }
    }
}

/* Runs a binary op on float inputs of the given shapes; returns rc. */
static int run_f32(struct tu_env *e, Caffe2__OperatorDef *op, int na,
                   const int64_t *a, int nb, const int64_t *b, ct_status_t *st)
{
    tu_feed(e->ws, "A", CT_DTYPE_F32, na, a, NULL);
    tu_feed(e->ws, "B", CT_DTYPE_F32, nb, b, NULL);
    return tu_run_op(e->ws, op, st);
}

/* Float Adds of A and B (zeros) whose run fails with code and msg; the
 * error tests below name their case. */
struct add_error {
    const char *what;
    int64_t broadcast; /* -1: no argument */
    bool broadcast_as_float;
    int axis; /* NO_AXIS: no argument */
    int na;
    int64_t a[4];
    int nb;
    int64_t b[4];
    int code;
    const char *msg;
};

/* clang-format off */
static const struct add_error add_errors[] = {
    /* what, broadcast, as float, axis, A, B, code, message */
    {"incompatible", -1, false, NO_AXIS, 2, {2, 3}, 1, {4}, CT_ESHAPE,
     "cannot broadcast A [2, 3] with B [4]: dim 1 of A is 3, "
     "dim 0 of B is 4"},
    {"empty vs 2", -1, false, NO_AXIS, 1, {0}, 1, {2}, CT_ESHAPE,
     "cannot broadcast A [0] with B [2]"},
    {"legacy B bigger", 1, false, NO_AXIS, 1, {3}, 2, {2, 3}, CT_ESHAPE,
     "B [2, 3] has more dims than A [3]"},
    {"legacy axis range", 1, false, 2, 3, {2, 3, 4}, 2, {3, 4}, CT_ESHAPE,
     "axis 2 outside [0, 1]"},
    {"legacy dim", 1, false, 1, 3, {2, 3, 4}, 1, {4}, CT_ESHAPE,
     "A [2, 3, 4] dim 1 is 3 but B [4] dim 0 is 4"},
    {"broadcast 2", 2, false, NO_AXIS, 1, {3}, 1, {3}, CT_EARG,
     "Value 2 of argument broadcast"},
    {"broadcast float", 1, true, NO_AXIS, 1, {3}, 1, {3}, CT_EARG,
     "does not have the right field"},
};
/* clang-format on */

static void assert_add_fails(struct tu_env *e, const char *what)
{
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "C");
    const struct add_error *c = NULL;
    ct_status_t st;
    size_t i;

    for (i = 0; i < sizeof(add_errors) / sizeof(add_errors[0]); i++)
        if (strcmp(add_errors[i].what, what) == 0)
            c = &add_errors[i];
    assert_non_null(c);
    if (c->broadcast_as_float)
        tu_arg_f(op, "broadcast", (float)c->broadcast);
    else if (c->broadcast >= 0)
        tu_arg_i(op, "broadcast", c->broadcast);
    if (c->axis != NO_AXIS)
        tu_arg_i(op, "axis", c->axis);
    tu_assert_status(&st, run_f32(e, op, c->na, c->a, c->nb, c->b, &st),
                     c->code, c->msg);
    tu_op_free(op);
}

/* Creates op (white-box) for shape inference and cost. */
static ct_op_t *create_op(struct tu_env *e, Caffe2__OperatorDef *def)
{
    ct_status_t st;
    ct_op_t *op;

    tu_feed(e->ws, "A", CT_DTYPE_F32, 0, NULL, NULL);
    tu_feed(e->ws, "B", CT_DTYPE_F32, 0, NULL, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create: %s", st.msg);
    return op;
}

/* ---- tests: case table ---- */

static void test_add_case_table_matches_reference(void **state)
{
    run_table(*state, K_ADD);
}

static void test_sub_case_table_matches_reference(void **state)
{
    run_table(*state, K_SUB);
}

static void test_mul_case_table_matches_reference(void **state)
{
    run_table(*state, K_MUL);
}

static void test_div_case_table_matches_reference(void **state)
{
    run_table(*state, K_DIV);
}

/* ---- tests: dtypes ---- */

static void test_add_dtype_mismatch_returns_etype(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "C");
    const int64_t d[1] = {3};

    tu_feed(e->ws, "A", CT_DTYPE_F32, 1, d, NULL);
    tu_feed(e->ws, "B", CT_DTYPE_I32, 1, d, NULL);
    tu_assert_op_fails(e->ws, op, CT_ETYPE, "A is FLOAT but B is INT32");
}

static void test_mul_unsupported_dtype_returns_enotsup(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Mul", "A,B", "C");
    const int64_t d[1] = {3};

    tu_feed(e->ws, "A", CT_DTYPE_U8, 1, d, NULL);
    tu_feed(e->ws, "B", CT_DTYPE_U8, 1, d, NULL);
    tu_assert_op_fails(e->ws, op, CT_ENOTSUP, "unsupported dtype UINT8");
}

static void test_add_int32_overflow_wraps(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "C");
    const int64_t d[1] = {2};
    const int32_t a[2] = {INT32_MAX, INT32_MIN}, b[2] = {1, -1};
    const int32_t *c;
    ct_status_t st;

    tu_feed(e->ws, "A", CT_DTYPE_I32, 1, d, a);
    tu_feed(e->ws, "B", CT_DTYPE_I32, 1, d, b);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    c = ct_tensor_cdata(tu_fetch(e->ws, "C"));
    assert_int_equal(c[0], INT32_MIN);
    assert_int_equal(c[1], INT32_MAX);
    tu_op_free(op);
}

/* ---- tests: integer division ---- */

static void test_div_int_truncates_toward_zero(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Div", "A,B", "C");
    const int64_t d[1] = {4};
    const int64_t a[4] = {7, -7, 7, -7}, b[4] = {2, 2, -2, -2};
    const int64_t *c;
    ct_status_t st;

    tu_feed(e->ws, "A", CT_DTYPE_I64, 1, d, a);
    tu_feed(e->ws, "B", CT_DTYPE_I64, 1, d, b);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    c = ct_tensor_cdata(tu_fetch(e->ws, "C"));
    assert_int_equal(c[0], 3);
    assert_int_equal(c[1], -3);
    assert_int_equal(c[2], -3);
    assert_int_equal(c[3], 3);
    tu_op_free(op);
}

static void test_div_int32_by_zero_returns_einval(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Div", "A,B", "C");
    const int64_t d[1] = {3};
    const int32_t a[3] = {1, 2, 3}, b[3] = {1, 0, 1};

    tu_feed(e->ws, "A", CT_DTYPE_I32, 1, d, a);
    tu_feed(e->ws, "B", CT_DTYPE_I32, 1, d, b);
    tu_assert_op_fails(e->ws, op, CT_EINVAL,
                       "integer division by zero (INT32)");
}

static void test_div_int64_scalar_zero_returns_einval(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Div", "A,B", "C");
    const int64_t d[1] = {3};
    const int64_t a[3] = {1, 2, 3}, b[1] = {0};

    tu_feed(e->ws, "A", CT_DTYPE_I64, 1, d, a);
    tu_feed(e->ws, "B", CT_DTYPE_I64, 0, NULL, b);
    tu_assert_op_fails(e->ws, op, CT_EINVAL,
                       "integer division by zero (INT64)");
}

static void test_div_int_min_by_minus_one_returns_einval(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Div", "A,B", "C");
    const int64_t d[1] = {2};
    const int32_t a32[2] = {5, INT32_MIN}, b32[2] = {-1, -1};
    const int64_t a64[2] = {INT64_MIN, 4}, b64[1] = {-1};
    ct_status_t st;

    tu_feed(e->ws, "A", CT_DTYPE_I32, 1, d, a32);
    tu_feed(e->ws, "B", CT_DTYPE_I32, 1, d, b32);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EINVAL,
                     "integer overflow: INT32 minimum divided by -1");
    tu_feed(e->ws, "A", CT_DTYPE_I64, 1, d, a64);
    tu_feed(e->ws, "B", CT_DTYPE_I64, 1, (const int64_t[]){1}, b64);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EINVAL,
                     "INT64 minimum divided by -1");
    tu_op_free(op);
}

static void test_div_float_by_zero_gives_inf(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Div", "A,B", "C");
    const int64_t d[1] = {2};
    const float a[2] = {1, -1}, b[2] = {0, 0};
    const float *c;
    ct_status_t st;

    tu_feed(e->ws, "A", CT_DTYPE_F32, 1, d, a);
    tu_feed(e->ws, "B", CT_DTYPE_F32, 1, d, b);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    c = ct_tensor_cdata(tu_fetch(e->ws, "C"));
    assert_true(isinf(c[0]) && c[0] > 0);
    assert_true(isinf(c[1]) && c[1] < 0);
    tu_op_free(op);
}

/* ---- tests: shape errors ---- */

static void test_add_incompatible_shapes_returns_eshape(void **state)
{
    assert_add_fails(*state, "incompatible");
}

static void test_add_empty_against_nonone_returns_eshape(void **state)
{
    assert_add_fails(*state, "empty vs 2");
}

static void test_add_legacy_b_bigger_returns_eshape(void **state)
{
    assert_add_fails(*state, "legacy B bigger");
}

static void test_add_legacy_axis_out_of_range_returns_eshape(void **state)
{
    assert_add_fails(*state, "legacy axis range");
}

static void test_add_legacy_dim_mismatch_returns_eshape(void **state)
{
    assert_add_fails(*state, "legacy dim");
}

/* ---- tests: arguments ---- */

static void test_add_axis_and_axis_str_returns_earg(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "C");
    const int64_t a[2] = {2, 3}, b[1] = {3};
    ct_status_t st;

    tu_arg_i(op, "broadcast", 1);
    tu_arg_i(op, "axis", 1);
    tu_arg_s(op, "axis_str", "C");
    tu_assert_status(&st, run_f32(e, op, 2, a, 1, b, &st), CT_EARG,
                     "Args axis and axis_str cannot be used simultaneously");
    tu_op_free(op);
}

static void test_add_bad_axis_str_returns_earg(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "C");
    Caffe2__OperatorDef *op2 = tu_op("Add", "A,B", "C");
    const int64_t a[2] = {2, 3}, b[1] = {3};
    ct_status_t st;

    tu_arg_i(op, "broadcast", 1);
    tu_arg_s(op, "axis_str", "CH");
    tu_assert_status(&st, run_f32(e, op, 2, a, 1, b, &st), CT_EARG,
                     "Unsupported axis string CH");
    tu_arg_i(op2, "broadcast", 1);
    tu_arg_s(op2, "axis_str", "Z");
    tu_assert_status(&st, run_f32(e, op2, 2, a, 1, b, &st), CT_EARG,
                     "Unrecognizable axis string Z from order string NCHW");
    tu_op_free(op);
    tu_op_free(op2);
}

static void test_add_axis_str_uses_order(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "C");
    const int64_t a[3] = {2, 3, 4}, b[1] = {4};
    const float av[24] = {0}, bv[4] = {1, 2, 3, 4};
    const float *c;
    ct_status_t st;

    /* With order NHC, "C" is dim 2. */
    tu_arg_i(op, "broadcast", 1);
    tu_arg_s(op, "axis_str", "C");
    tu_arg_s(op, "order", "NHC");
    tu_feed(e->ws, "A", CT_DTYPE_F32, 3, a, av);
    tu_feed(e->ws, "B", CT_DTYPE_F32, 1, b, bv);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    c = ct_tensor_cdata(tu_fetch(e->ws, "C"));
    assert_true(c[0] == 1 && c[3] == 4 && c[23] == 4);
    tu_op_free(op);
}

static void test_add_broadcast_two_returns_earg(void **state)
{
    assert_add_fails(*state, "broadcast 2");
}

static void test_add_broadcast_as_float_returns_earg(void **state)
{
    assert_add_fails(*state, "broadcast float");
}

/* ---- tests: in-place ---- */

static void test_add_inplace_first_input_overwrites_a(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "A");
    const int64_t a[2] = {2, 3}, b[1] = {3};
    const float av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 20, 30};
    const float want[6] = {11, 22, 33, 14, 25, 36};
    ct_tensor_t *t;
    ct_status_t st;

    t = tu_feed(e->ws, "A", CT_DTYPE_F32, 2, a, av);
    tu_feed(e->ws, "B", CT_DTYPE_F32, 1, b, bv);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_ptr_equal(tu_fetch(e->ws, "A"), t);
    tu_assert_close_f32(ct_tensor_cdata(t), want, 6, 0, 0);
    tu_op_free(op);
}

static void test_sub_inplace_second_input_overwrites_b(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Sub", "A,B", "B");
    const int64_t a[1] = {3}, b[2] = {2, 3};
    const float av[3] = {10, 20, 30}, bv[6] = {1, 2, 3, 4, 5, 6};
    const float want[6] = {9, 18, 27, 6, 15, 24};
    ct_status_t st;

    tu_feed(e->ws, "A", CT_DTYPE_F32, 1, a, av);
    tu_feed(e->ws, "B", CT_DTYPE_F32, 2, b, bv);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "B")), want, 6, 0, 0);
    tu_op_free(op);
}

static void test_mul_inplace_both_inputs_same_blob(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Mul", "A,A", "A");
    const int64_t a[1] = {3};
    const float av[3] = {1, -2, 3}, want[3] = {1, 4, 9};
    ct_status_t st;

    tu_feed(e->ws, "A", CT_DTYPE_F32, 1, a, av);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "A")), want, 3, 0, 0);
    tu_op_free(op);
}

static void test_add_inplace_on_shared_storage_keeps_snapshot(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "A");
    const int64_t a[1] = {3};
    const float av[3] = {1, 2, 3}, bv[3] = {10, 20, 30};
    const float want[3] = {11, 22, 33};
    ct_tensor_t *snap;
    ct_status_t st;

    /* A second reference to A's storage, as a checkpoint snapshot holds. */
    assert_int_equal(ct_tensor_new(e->eng, &snap, &st), CT_OK);
    ct_tensor_share(snap, tu_feed(e->ws, "A", CT_DTYPE_F32, 1, a, av));
    tu_feed(e->ws, "B", CT_DTYPE_F32, 1, a, bv);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "A")), want, 3, 0, 0);
    tu_assert_close_f32(ct_tensor_cdata(snap), av, 3, 0, 0);
    ct_tensor_free(snap);
    tu_op_free(op);
}

static void test_add_inplace_shape_change_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "A");
    const int64_t a[1] = {3}, b[2] = {2, 3};
    const float av[3] = {1, 2, 3};
    ct_tensor_t *t;
    ct_status_t st;

    t = tu_feed(e->ws, "A", CT_DTYPE_F32, 1, a, av);
    tu_feed(e->ws, "B", CT_DTYPE_F32, 2, b, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "in-place output would change input 0 from [3] to "
                     "[2, 3]");
    /* A is untouched. */
    assert_dims(t, 1, a);
    tu_assert_close_f32(ct_tensor_cdata(t), av, 3, 0, 0);
    tu_op_free(op);
}

static void test_add_legacy_inplace_second_returns_eschema(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Add", "A,B", "B");
    const int64_t a[2] = {2, 3}, b[1] = {3};
    ct_status_t st;

    tu_arg_i(op, "broadcast", 1);
    tu_assert_status(&st, run_f32(e, op, 2, a, 1, b, &st), CT_ESCHEMA,
                     "In-place is allowed only with the first tensor when "
                     "legacy-broadcasting");
    tu_op_free(op);
}

/* ---- tests: shape inference and cost ---- */

static void test_add_infer_broadcasts_shapes(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("Add", "A,B", "C");
    ct_op_t *op = create_op(e, def);
    const int64_t a[3] = {2, 1, 4}, b[2] = {3, 1}, c[3] = {2, 3, 4};
    ct_shape_t in[2], out[1];
    ct_status_t st;

    in[0] = tu_shape(CT_DTYPE_I64, 3, a);
    in[1] = tu_shape(CT_DTYPE_I64, 2, b);
    out[0] = tu_shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_I64);
    assert_int_equal(out[0].ndim, 3);
    assert_memory_equal(out[0].dims, c, sizeof(c));
    assert_true(op->schema->cost_cb(op, in) == 24.0);
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_add_infer_unknown_input_leaves_unknown(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("Add", "A,B", "C");
    ct_op_t *op = create_op(e, def);
    const int64_t a[1] = {4};
    ct_shape_t in[2], out[1];
    ct_status_t st;

    in[0] = tu_shape(CT_DTYPE_F32, 1, a);
    in[1] = tu_shape(CT_DTYPE_UNDEFINED, -1, NULL);
    out[0] = tu_shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, -1);
    assert_int_equal(out[0].dtype, CT_DTYPE_F32);
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_add_infer_incompatible_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("Add", "A,B", "C");
    ct_op_t *op = create_op(e, def);
    const int64_t a[2] = {2, 3}, b[1] = {4};
    ct_shape_t in[2], out[1];
    ct_status_t st;
    int rc;

    in[0] = tu_shape(CT_DTYPE_F32, 2, a);
    in[1] = tu_shape(CT_DTYPE_F32, 1, b);
    out[0] = tu_shape(CT_DTYPE_UNDEFINED, -1, NULL);
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "cannot broadcast A [2, 3] with B");
    in[1] = tu_shape(CT_DTYPE_I32, 2, a);
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ETYPE, "A is FLOAT but B is INT32");
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_add_infer_legacy_keeps_a_shape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("Add", "A,B", "C");
    ct_op_t *op;
    const int64_t a[4] = {2, 3, 4, 5}, b[1] = {3};
    ct_shape_t in[2], out[1];
    ct_status_t st;

    tu_arg_i(def, "broadcast", 1);
    tu_arg_i(def, "axis", 1);
    op = create_op(e, def);
    in[0] = tu_shape(CT_DTYPE_F32, 4, a);
    in[1] = tu_shape(CT_DTYPE_F32, 1, b);
    out[0] = tu_shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, 4);
    assert_memory_equal(out[0].dims, a, sizeof(a));
    assert_true(op->schema->cost_cb(op, in) == 120.0);
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_add_case_table_matches_reference),
        T(test_sub_case_table_matches_reference),
        T(test_mul_case_table_matches_reference),
        T(test_div_case_table_matches_reference),
        T(test_add_dtype_mismatch_returns_etype),
        T(test_mul_unsupported_dtype_returns_enotsup),
        T(test_add_int32_overflow_wraps),
        T(test_div_int_truncates_toward_zero),
        T(test_div_int32_by_zero_returns_einval),
        T(test_div_int64_scalar_zero_returns_einval),
        T(test_div_int_min_by_minus_one_returns_einval),
        T(test_div_float_by_zero_gives_inf),
        T(test_add_incompatible_shapes_returns_eshape),
        T(test_add_empty_against_nonone_returns_eshape),
        T(test_add_legacy_b_bigger_returns_eshape),
        T(test_add_legacy_axis_out_of_range_returns_eshape),
        T(test_add_legacy_dim_mismatch_returns_eshape),
        T(test_add_axis_and_axis_str_returns_earg),
        T(test_add_bad_axis_str_returns_earg),
        T(test_add_axis_str_uses_order),
        T(test_add_broadcast_two_returns_earg),
        T(test_add_broadcast_as_float_returns_earg),
        T(test_add_inplace_first_input_overwrites_a),
        T(test_sub_inplace_second_input_overwrites_b),
        T(test_mul_inplace_both_inputs_same_blob),
        T(test_add_inplace_on_shared_storage_keeps_snapshot),
        T(test_add_inplace_shape_change_returns_eshape),
        T(test_add_legacy_inplace_second_returns_eschema),
        T(test_add_infer_broadcasts_shapes),
        T(test_add_infer_unknown_input_leaves_unknown),
        T(test_add_infer_incompatible_returns_eshape),
        T(test_add_infer_legacy_keeps_a_shape),
#undef T
    };
    return cmocka_run_group_tests_name("ops.elementwise", tests, NULL, NULL);
}
