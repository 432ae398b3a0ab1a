/* Tests for ops/arith.c: Sum (n-ary, same shapes, input order) and Scale,
 * compared with naive reference loops over one case table; errors,
 * in-place rules, shape inference and cost (white-box through
 * ops/op_impl.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

/* ---- fixtures ---- */

/* setup/teardown: tu_env_setup / tu_env_teardown (op_test.h). */

/* ---- the case table ---- */

struct shape_case {
    const char *what;
    int nd;
    int64_t d[4];
};

static const struct shape_case shapes[] = {
    {"2-d", 2, {2, 3}},  {"0-d", 0, {0}},       {"empty", 2, {0, 4}},
    {"flat", 1, {1000}}, {"blocks", 1, {5000}}, {"3-d", 3, {3, 1, 7}},
};
#define N_SHAPES (sizeof(shapes) / sizeof(shapes[0]))

static const int n_inputs[] = {1, 2, 3, 7};

static const ct_dtype_t dtypes[] = {CT_DTYPE_F32, CT_DTYPE_F64, CT_DTYPE_I32,
                                    CT_DTYPE_I64};

static const char *const names[] = {"X0", "X1", "X2", "X3", "X4", "X5", "X6"};

/* ---- helpers ---- */

static int64_t numel(int nd, const int64_t *d)
{
    int64_t n = 1;
    int i;
    for (i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

static void *make_data(ct_dtype_t dt, int64_t n, uint64_t seed)
{
    float *f = malloc((size_t)(n ? n : 1) * sizeof(float));
    void *out = malloc((size_t)(n ? n : 1) * 8);
    int64_t i;

    assert_non_null(f);
    assert_non_null(out);
    tu_fill_uniform(f, (size_t)n, -100.0f, 100.0f, seed);
    for (i = 0; i < n; i++) {
        if (dt == CT_DTYPE_F32)
            ((float *)out)[i] = f[i];
        else if (dt == CT_DTYPE_F64)
            ((double *)out)[i] = (double)f[i] / 3.0;
        else if (dt == CT_DTYPE_I32)
            ((int32_t *)out)[i] = (int32_t)f[i];
        else
            ((int64_t *)out)[i] = (int64_t)f[i] * 100000007;
    }
    free(f);
    return out;
}

/* want += x (want = x for the first input), in input order. */
static void ref_acc(ct_dtype_t dt, void *want, const void *x, int64_t n,
                    bool first)
{
    size_t esz = ct_dtype_size(dt);
    int64_t i;

    if (first) {
        memcpy(want, x, (size_t)n * esz);
        return;
    }
    for (i = 0; i < n; i++) {
        if (dt == CT_DTYPE_F32)
            ((float *)want)[i] += ((const float *)x)[i];
        else if (dt == CT_DTYPE_F64)
            ((double *)want)[i] += ((const double *)x)[i];
        else if (dt == CT_DTYPE_I32)
            ((int32_t *)want)[i] += ((const int32_t *)x)[i];
        else
            ((int64_t *)want)[i] += ((const int64_t *)x)[i];
    }
}

static Caffe2__OperatorDef *sum_op(int n, const char *out)
{
    char ins[64] = "";
    int i;

    for (i = 0; i < n; i++) {
        strcat(ins, i ? "," : "");
        strcat(ins, names[i]);
    }
    return tu_op("Sum", ins, out);
}

static ct_op_t *create_op(struct tu_env *e, Caffe2__OperatorDef *def, int n)
{
    ct_status_t st;
    ct_op_t *op;
    int i;

    for (i = 0; i < n; i++)
        tu_feed(e->ws, names[i], CT_DTYPE_F32, 0, NULL, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create: %s", st.msg);
    return op;
}

/* ---- tests: Sum ---- */

static void test_sum_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t si, ni, di;

    for (si = 0; si < N_SHAPES; si++)
        for (ni = 0; ni < sizeof(n_inputs) / sizeof(n_inputs[0]); ni++)
            for (di = 0; di < sizeof(dtypes) / sizeof(dtypes[0]); di++) {
                const struct shape_case *c = &shapes[si];
                ct_dtype_t dt = dtypes[di];
                int n_in = n_inputs[ni], k;
                int64_t n = numel(c->nd, c->d);
                void *want = calloc((size_t)(n ? n : 1), 8);
                Caffe2__OperatorDef *op = sum_op(n_in, "Y");
                const ct_tensor_t *y;
                ct_status_t st;

                for (k = 0; k < n_in; k++) {
                    void *x = make_data(dt, n, 31 * si + 7 * (uint64_t)k);
                    tu_feed(e->ws, names[k], dt, c->nd, c->d, x);
                    ref_acc(dt, want, x, n, k == 0);
                    free(x);
                }
                if (tu_run_op(e->ws, op, &st) != CT_OK)
                    fail_msg("%s %d inputs %s: %s", c->what, n_in,
                             ct_dtype_name(dt), st.msg);
                y = tu_fetch(e->ws, "Y");
                assert_int_equal(ct_tensor_dtype(y), dt);
                assert_int_equal(ct_tensor_ndim(y), c->nd);
                assert_int_equal(ct_tensor_numel(y), n);
                /* Same order of additions: bit-identical. */
                if (n > 0)
                    assert_memory_equal(ct_tensor_cdata(y), want,
                                        (size_t)n * ct_dtype_size(dt));
                tu_op_free(op);
                free(want);
            }
}

static void test_sum_adds_in_input_order(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sum_op(3, "Y");
    const int64_t d[1] = {1};
    const float x0 = 1e8f, x1 = -1e8f, x2 = 1.0f;
    ct_status_t st;

    /* ((1e8 + -1e8) + 1) = 1, while 1e8 + (-1e8 + 1) = 0 in float. */
    tu_feed(e->ws, "X0", CT_DTYPE_F32, 1, d, &x0);
    tu_feed(e->ws, "X1", CT_DTYPE_F32, 1, d, &x1);
    tu_feed(e->ws, "X2", CT_DTYPE_F32, 1, d, &x2);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_true(*(const float *)ct_tensor_cdata(tu_fetch(e->ws, "Y")) == 1.0f);
    tu_op_free(op);
}

static void test_sum_inplace_first_input_accumulates(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sum_op(3, "X0");
    const int64_t d[1] = {3};
    const float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, c[3] = {100, 0, 0};
    const float want[3] = {111, 22, 33};
    ct_tensor_t *t;
    ct_status_t st;

    t = tu_feed(e->ws, "X0", CT_DTYPE_F32, 1, d, a);
    tu_feed(e->ws, "X1", CT_DTYPE_F32, 1, d, b);
    tu_feed(e->ws, "X2", CT_DTYPE_F32, 1, d, c);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_ptr_equal(tu_fetch(e->ws, "X0"), t);
    tu_assert_close_f32(ct_tensor_cdata(t), want, 3, 0, 0);
    tu_op_free(op);
}

static void test_sum_single_input_inplace_keeps_data(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sum_op(1, "X0");
    const int64_t d[1] = {3};
    const int32_t a[3] = {4, 5, 6};
    ct_status_t st;

    tu_feed(e->ws, "X0", CT_DTYPE_I32, 1, d, a);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "X0")), a, sizeof(a));
    tu_op_free(op);
}

static void test_sum_inplace_on_shared_storage_keeps_snapshot(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sum_op(2, "X0");
    const int64_t d[1] = {3};
    const int64_t a[3] = {1, 2, 3}, b[3] = {10, 20, 30};
    const int64_t want[3] = {11, 22, 33};
    ct_tensor_t *snap;
    ct_status_t st;

    /* A second reference to X0's storage, as a checkpoint snapshot holds. */
    assert_int_equal(ct_tensor_new(e->eng, &snap, &st), CT_OK);
    ct_tensor_share(snap, tu_feed(e->ws, "X0", CT_DTYPE_I64, 1, d, a));
    tu_feed(e->ws, "X1", CT_DTYPE_I64, 1, d, b);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "X0")), want,
                        sizeof(want));
    assert_memory_equal(ct_tensor_cdata(snap), a, sizeof(a));
    ct_tensor_free(snap);
    tu_op_free(op);
}

static void test_sum_inplace_second_input_returns_eschema(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sum_op(2, "X1");
    const int64_t d[1] = {3};

    tu_feed(e->ws, "X0", CT_DTYPE_F32, 1, d, NULL);
    tu_feed(e->ws, "X1", CT_DTYPE_F32, 1, d, NULL);
    tu_assert_op_fails(e->ws, op, CT_ESCHEMA, NULL);
}

static void test_sum_shape_mismatch_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sum_op(3, "Y");
    const int64_t d[1] = {2}, d3[1] = {3};

    tu_feed(e->ws, "X0", CT_DTYPE_F32, 1, d, NULL);
    tu_feed(e->ws, "X1", CT_DTYPE_F32, 1, d, NULL);
    tu_feed(e->ws, "X2", CT_DTYPE_F32, 1, d3, NULL);
    tu_assert_op_fails(e->ws, op, CT_ESHAPE,
                       "input 2 dims [3] should match input 0 dims [2]");
}

static void test_sum_dtype_mismatch_returns_etype(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sum_op(2, "Y");
    const int64_t d[1] = {2};

    tu_feed(e->ws, "X0", CT_DTYPE_F32, 1, d, NULL);
    tu_feed(e->ws, "X1", CT_DTYPE_F64, 1, d, NULL);
    tu_assert_op_fails(e->ws, op, CT_ETYPE,
                       "input 1 is DOUBLE but input 0 is FLOAT");
}

static void test_sum_unsupported_dtype_returns_enotsup(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sum_op(2, "Y");
    const int64_t d[1] = {2};

    tu_feed(e->ws, "X0", CT_DTYPE_BOOL, 1, d, NULL);
    tu_feed(e->ws, "X1", CT_DTYPE_BOOL, 1, d, NULL);
    tu_assert_op_fails(e->ws, op, CT_ENOTSUP, "unsupported dtype BOOL");
}

static void test_sum_infer_checks_shapes_and_counts_cost(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = sum_op(3, "Y");
    ct_op_t *op = create_op(e, def, 3);
    const int64_t d[2] = {4, 5}, d2[2] = {4, 6};
    ct_shape_t in[3], out[1];
    ct_status_t st;
    int rc;

    in[0] = in[1] = in[2] = tu_shape(CT_DTYPE_F64, 2, d);
    out[0] = tu_shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_F64);
    assert_int_equal(out[0].ndim, 2);
    assert_memory_equal(out[0].dims, d, sizeof(d));
    assert_true(op->schema->cost_cb(op, in) == 40.0);
    in[2] = tu_shape(CT_DTYPE_F64, 2, d2);
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ESHAPE,
                     "input 2 dims [4, 6] should match input 0 dims [4, 5]");
    ct__op_destroy(op);
    tu_op_free(def);
}

/* ---- tests: Scale ---- */

static void test_scale_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    static const float scales[] = {1.0f, 0.5f, -3.25f, 0.0f};
    size_t si, k;

    for (si = 0; si < N_SHAPES; si++)
        for (k = 0; k < sizeof(scales) / sizeof(scales[0]); k++) {
            const struct shape_case *c = &shapes[si];
            int64_t n = numel(c->nd, c->d), i;
            float *x = make_data(CT_DTYPE_F32, n, 5 + si);
            float *want = malloc((size_t)(n ? n : 1) * sizeof(float));
            Caffe2__OperatorDef *op = tu_op("Scale", "X0", "Y");
            ct_status_t st;

            if (k > 0) /* k == 0: the default, 1.0 */
                tu_arg_f(op, "scale", scales[k]);
            for (i = 0; i < n; i++)
                want[i] = x[i] * scales[k];
            tu_feed(e->ws, "X0", CT_DTYPE_F32, c->nd, c->d, x);
            if (tu_run_op(e->ws, op, &st) != CT_OK)
                fail_msg("%s: %s", c->what, st.msg);
            assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "Y")), n);
            tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "Y")), want,
                                (size_t)n, 0, 0);
            tu_op_free(op);
            free(x);
            free(want);
        }
}

static void test_scale_inplace_overwrites_input(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Scale", "X0", "X0");
    const int64_t d[1] = {3};
    const float x[3] = {1, -2, 4}, want[3] = {2, -4, 8};
    ct_status_t st;

    tu_arg_f(op, "scale", 2.0f);
    tu_feed(e->ws, "X0", CT_DTYPE_F32, 1, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "X0")), want, 3, 0, 0);
    tu_op_free(op);
}

static void test_scale_inplace_on_shared_storage_keeps_snapshot(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Scale", "X0", "X0");
    const int64_t d[1] = {3};
    const float x[3] = {1, -2, 4}, want[3] = {3, -6, 12};
    ct_tensor_t *snap;
    ct_status_t st;

    tu_arg_f(op, "scale", 3.0f);
    assert_int_equal(ct_tensor_new(e->eng, &snap, &st), CT_OK);
    ct_tensor_share(snap, tu_feed(e->ws, "X0", CT_DTYPE_F32, 1, d, x));
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "X0")), want, 3, 0, 0);
    tu_assert_close_f32(ct_tensor_cdata(snap), x, 3, 0, 0);
    ct_tensor_free(snap);
    tu_op_free(op);
}

static void test_scale_int_argument_returns_earg(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Scale", "X0", "Y");
    const int64_t d[1] = {3};

    tu_arg_i(op, "scale", 2);
    tu_feed(e->ws, "X0", CT_DTYPE_F32, 1, d, NULL);
    tu_assert_op_fails(e->ws, op, CT_EARG, "does not have the right field");
}

static void test_scale_double_returns_enotsup(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Scale", "X0", "Y");
    const int64_t d[1] = {3};

    tu_feed(e->ws, "X0", CT_DTYPE_F64, 1, d, NULL);
    tu_assert_op_fails(e->ws, op, CT_ENOTSUP, "unsupported dtype DOUBLE");
}

static void test_scale_infer_keeps_shape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("Scale", "X0", "Y");
    ct_op_t *op = create_op(e, def, 1);
    const int64_t d[3] = {2, 3, 4};
    ct_shape_t in[1], out[1];
    ct_status_t st;

    in[0] = tu_shape(CT_DTYPE_F32, 3, d);
    out[0] = tu_shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, 3);
    assert_memory_equal(out[0].dims, d, sizeof(d));
    assert_true(op->schema->cost_cb(op, in) == 24.0);
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_sum_case_table_matches_reference),
        T(test_sum_adds_in_input_order),
        T(test_sum_inplace_first_input_accumulates),
        T(test_sum_single_input_inplace_keeps_data),
        T(test_sum_inplace_on_shared_storage_keeps_snapshot),
        T(test_sum_inplace_second_input_returns_eschema),
        T(test_sum_shape_mismatch_returns_eshape),
        T(test_sum_dtype_mismatch_returns_etype),
        T(test_sum_unsupported_dtype_returns_enotsup),
        T(test_sum_infer_checks_shapes_and_counts_cost),
        T(test_scale_case_table_matches_reference),
        T(test_scale_inplace_overwrites_input),
        T(test_scale_inplace_on_shared_storage_keeps_snapshot),
        T(test_scale_int_argument_returns_earg),
        T(test_scale_double_returns_enotsup),
        T(test_scale_infer_keeps_shape),
#undef T
    };
    return cmocka_run_group_tests_name("ops.arith", tests, NULL, NULL);
}
