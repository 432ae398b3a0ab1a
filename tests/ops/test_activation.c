/* Tests for ops/activation.c: Relu, Sigmoid, Tanh compared with naive
 * double-precision references over one case table; extreme inputs,
 * in-place, dtype errors, shape inference and cost (white-box through
 * ops/op_impl.h). */
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

/* ---- the case table ---- */

static const char *const ops[] = {"Relu", "Sigmoid", "Tanh"};

struct act_case {
    const char *what;
    int nd;
    int64_t d[4];
    float lo, hi; /* input range */
};

static const struct act_case cases[] = {
    {"2-d", 2, {2, 3}, -5, 5},       {"0-d", 0, {0}, -5, 5},
    {"empty", 3, {3, 0, 2}, -5, 5},  {"long", 1, {1000}, -10, 10},
    {"4-d", 4, {2, 3, 4, 5}, -1, 1}, {"large magnitude", 1, {256}, -500, 500},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* ---- helpers ---- */

static int64_t numel(int nd, const int64_t *d)
{
    int64_t n = 1;
    int i;
    for (i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

static double ref(int op, double x)
{
    switch (op) {
    case 0:
        return x > 0 ? x : 0;
    case 1:
        return 1.0 / (1.0 + exp(-x));
    default:
        return tanh(x);
    }
}

static ct_shape_t shape(ct_dtype_t dt, int nd, const int64_t *d)
{
    ct_shape_t s;

    memset(&s, 0, sizeof(s));
    s.dtype = dt;
    s.ndim = nd;
    if (nd > 0)
        memcpy(s.dims, d, (size_t)nd * sizeof(int64_t));
    return s;
}

/* Runs op on the given floats; returns the output data. */
static const float *run_f32(struct tu_env *e, const char *type, int n,
                            const float *x)
{
    Caffe2__OperatorDef *op = tu_op(type, "X", "Y");
    const int64_t d[1] = {n};
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 1, d, x);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("%s: %s", type, st.msg);
    tu_op_free(op);
    return ct_tensor_cdata(tu_fetch(e->ws, "Y"));
}

/* ---- tests ---- */

static void test_activation_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci, oi, di;

    for (ci = 0; ci < N_CASES; ci++)
        for (oi = 0; oi < 3; oi++)
            for (di = 0; di < 2; di++) {
                const struct act_case *c = &cases[ci];
                ct_dtype_t dt = di ? CT_DTYPE_F64 : CT_DTYPE_F32;
                int64_t n = numel(c->nd, c->d), i;
                float *xf = malloc((size_t)(n ? n : 1) * sizeof(float));
                double *xd = malloc((size_t)(n ? n : 1) * sizeof(double));
                Caffe2__OperatorDef *op = tu_op(ops[oi], "X", "Y");
                const ct_tensor_t *y;
                ct_status_t st;

                tu_fill_uniform(xf, (size_t)n, c->lo, c->hi, 3 + ci);
                for (i = 0; i < n; i++)
                    xd[i] = (double)xf[i] * 1.0000001;
                if (dt == CT_DTYPE_F32)
                    tu_feed(e->ws, "X", dt, c->nd, c->d, xf);
                else
                    tu_feed(e->ws, "X", dt, c->nd, c->d, xd);
                if (tu_run_op(e->ws, op, &st) != CT_OK)
                    fail_msg("%s %s: %s", ops[oi], c->what, st.msg);
                y = tu_fetch(e->ws, "Y");
                assert_int_equal(ct_tensor_dtype(y), dt);
                assert_int_equal(ct_tensor_ndim(y), c->nd);
                assert_int_equal(ct_tensor_numel(y), n);
                for (i = 0; i < n; i++) {
                    double x = dt == CT_DTYPE_F32 ? (double)xf[i] : xd[i];
                    double got =
                        dt == CT_DTYPE_F32
                            ? (double)((const float *)ct_tensor_cdata(y))[i]
                            : ((const double *)ct_tensor_cdata(y))[i];
                    double want = ref((int)oi, x);
                    double tol = dt == CT_DTYPE_F32 ? 2e-7 : 1e-15;
                    if (!(fabs(got - want) <= tol * (1 + fabs(want))))
                        fail_msg("%s %s %s element %lld: x %.9g got %.17g "
                                 "want %.17g",
                                 ops[oi], c->what, ct_dtype_name(dt),
                                 (long long)i, x, got, want);
                }
                tu_op_free(op);
                free(xf);
                free(xd);
            }
}

static void test_sigmoid_large_inputs_are_finite(void **state)
{
    const float x[6] = {-1e4f, -1000, -100, 100, 1000, 1e4f};
    const float *y = run_f32(*state, "Sigmoid", 6, x);
    int i;

    for (i = 0; i < 6; i++)
        assert_true(isfinite(y[i]) && y[i] >= 0 && y[i] <= 1);
    assert_true(y[0] == 0 && y[5] == 1 && y[3] == 1);
    /* exp(-100) = 3.7e-44 survives as a float subnormal. */
    assert_true(y[2] > 0 && fabs(y[2] - 3.720076e-44) < 1e-45);
}

static void test_sigmoid_double_tiny_result_keeps_precision(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Sigmoid", "X", "Y");
    const int64_t d[1] = {2};
    const double x[2] = {-700, -40};
    const double *y;
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_F64, 1, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    assert_true(fabs(y[0] / exp(-700.0) - 1) < 1e-12);
    assert_true(fabs(y[1] / (exp(-40.0) / (1 + exp(-40.0))) - 1) < 1e-15);
    tu_op_free(op);
}

static void test_tanh_large_inputs_saturate(void **state)
{
    const float x[4] = {-1e4f, -50, 50, 1e4f};
    const float *y = run_f32(*state, "Tanh", 4, x);

    assert_true(y[0] == -1 && y[1] == -1 && y[2] == 1 && y[3] == 1);
}

static void test_relu_nan_propagates_and_negative_zero_kept(void **state)
{
    const float x[3] = {NAN, -0.0f, -3};
    const float *y = run_f32(*state, "Relu", 3, x);

    assert_true(isnan(y[0]));
    assert_true(y[1] == 0 && signbit(y[1]));
    assert_true(y[2] == 0 && !signbit(y[2]));
}

static void test_activation_inplace_overwrites_input(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[1] = {4};
    const float x[4] = {-2, -0.5f, 0.5f, 2};
    int oi, i;

    for (oi = 0; oi < 3; oi++) {
        Caffe2__OperatorDef *op = tu_op(ops[oi], "X", "X");
        ct_tensor_t *t = tu_feed(e->ws, "X", CT_DTYPE_F32, 1, d, x);
        const float *y;
        ct_status_t st;

        assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
        assert_ptr_equal(tu_fetch(e->ws, "X"), t);
        y = ct_tensor_cdata(t);
        for (i = 0; i < 4; i++)
            assert_true(fabs(y[i] - ref(oi, x[i])) < 1e-6);
        tu_op_free(op);
    }
}

static void
test_activation_inplace_on_shared_storage_keeps_snapshot(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[1] = {4};
    const double x[4] = {-2, -0.5, 0.5, 2};
    int oi, i;

    for (oi = 0; oi < 3; oi++) {
        Caffe2__OperatorDef *op = tu_op(ops[oi], "X", "X");
        ct_tensor_t *snap;
        const double *y;
        ct_status_t st;

        /* A second reference to X's storage, as a snapshot holds. */
        assert_int_equal(ct_tensor_new(e->eng, &snap, &st), CT_OK);
        ct_tensor_share(snap, tu_feed(e->ws, "X", CT_DTYPE_F64, 1, d, x));
        assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
        y = ct_tensor_cdata(tu_fetch(e->ws, "X"));
        for (i = 0; i < 4; i++)
            assert_true(fabs(y[i] - ref(oi, x[i])) < 1e-15);
        assert_memory_equal(ct_tensor_cdata(snap), x, sizeof(x));
        ct_tensor_free(snap);
        tu_op_free(op);
    }
}

static void test_activation_int_returns_enotsup(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[1] = {2};
    int oi;

    for (oi = 0; oi < 3; oi++) {
        Caffe2__OperatorDef *op = tu_op(ops[oi], "X", "Y");
        ct_status_t st;

        tu_feed(e->ws, "X", CT_DTYPE_I32, 1, d, NULL);
        tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                         "unsupported dtype INT32 (FLOAT, DOUBLE)");
        tu_op_free(op);
    }
}

static void test_activation_infer_keeps_shape_and_counts_cost(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {3, 7};
    int oi;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    for (oi = 0; oi < 3; oi++) {
        Caffe2__OperatorDef *def = tu_op(ops[oi], "X", "Y");
        ct_shape_t in[1], out[1];
        ct_status_t st;
        ct_op_t *op;

        if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
            fail_msg("create: %s", st.msg);
        in[0] = shape(CT_DTYPE_F64, 2, d);
        out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
        assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
        assert_int_equal(out[0].dtype, CT_DTYPE_F64);
        assert_int_equal(out[0].ndim, 2);
        assert_memory_equal(out[0].dims, d, sizeof(d));
        assert_true(op->schema->cost_cb(op, in) >= 21.0);
        ct__op_destroy(op);
        tu_op_free(def);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_activation_case_table_matches_reference),
        T(test_sigmoid_large_inputs_are_finite),
        T(test_sigmoid_double_tiny_result_keeps_precision),
        T(test_tanh_large_inputs_saturate),
        T(test_relu_nan_propagates_and_negative_zero_kept),
        T(test_activation_inplace_overwrites_input),
        T(test_activation_inplace_on_shared_storage_keeps_snapshot),
        T(test_activation_int_returns_enotsup),
        T(test_activation_infer_keeps_shape_and_counts_cost),
#undef T
    };
    return cmocka_run_group_tests_name("ops.activation", tests, NULL, NULL);
}
