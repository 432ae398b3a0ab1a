/* Tests for ops/softmax.c: Softmax compared with a naive double-precision
 * reference over one case table (axis, negative axis, empty dims); rows
 * sum to 1, large-magnitude inputs stay finite, in-place, errors, shape
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

/* ---- the case table ---- */

#define NO_AXIS (-100)

struct sm_case {
    const char *what;
    int nd;
    int64_t d[4];
    int axis;     /* NO_AXIS: absent (1) */
    int64_t n, k; /* rows and row length at the axis */
    float lo, hi;
};

static const struct sm_case cases[] = {
    {"2-d", 2, {2, 5}, NO_AXIS, 2, 5, -3, 3},
    {"3-d axis 1", 3, {3, 4, 5}, NO_AXIS, 3, 20, -3, 3},
    {"3-d axis 2", 3, {3, 4, 5}, 2, 12, 5, -3, 3},
    {"3-d axis -1", 3, {3, 4, 5}, -1, 12, 5, -3, 3},
    {"axis 0", 2, {3, 4}, 0, 1, 12, -3, 3},
    {"1-d axis 0", 1, {7}, 0, 1, 7, -3, 3},
    {"single column", 2, {6, 1}, NO_AXIS, 6, 1, -3, 3},
    {"long rows", 2, {4, 1000}, NO_AXIS, 4, 1000, -10, 10},
    {"large magnitude", 2, {3, 50}, NO_AXIS, 3, 50, -1e4f, 1e4f},
    {"empty rows", 2, {0, 5}, NO_AXIS, 0, 5, -3, 3},
    {"empty row length", 2, {3, 0}, NO_AXIS, 3, 0, -3, 3},
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

static void ref_softmax(const float *x, float *y, int64_t n, int64_t k)
{
    int64_t r, i;

    for (r = 0; r < n; r++) {
        double mx = -INFINITY, sum = 0;
        for (i = 0; i < k; i++)
            mx = fmax(mx, x[r * k + i]);
        for (i = 0; i < k; i++)
            sum += exp(x[r * k + i] - mx);
        for (i = 0; i < k; i++)
            y[r * k + i] = (float)(exp(x[r * k + i] - mx) / sum);
    }
}

static Caffe2__OperatorDef *sm_op(int axis, const char *out)
{
    Caffe2__OperatorDef *op = tu_op("Softmax", "X", out);

    if (axis != NO_AXIS)
        tu_arg_i(op, "axis", axis);
    return op;
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

/* ---- tests ---- */

static void test_softmax_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct sm_case *c = &cases[ci];
        int64_t n = numel(c->nd, c->d), i;
        float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
        float *want = malloc((size_t)(n ? n : 1) * sizeof(float));
        Caffe2__OperatorDef *op = sm_op(c->axis, "Y");
        const ct_tensor_t *y;
        ct_status_t st;

        tu_fill_uniform(x, (size_t)n, c->lo, c->hi, 17 + ci);
        ref_softmax(x, want, c->n, c->k);
        tu_feed(e->ws, "X", CT_DTYPE_F32, c->nd, c->d, x);
        if (tu_run_op(e->ws, op, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        y = tu_fetch(e->ws, "Y");
        assert_int_equal(ct_tensor_dtype(y), CT_DTYPE_F32);
        assert_int_equal(ct_tensor_ndim(y), c->nd);
        for (i = 0; i < c->nd; i++)
            assert_int_equal(ct_tensor_dims(y)[i], c->d[i]);
        tu_assert_close_f32(ct_tensor_cdata(y), want, (size_t)n, 1e-5f, 1e-7f);
        tu_op_free(op);
        free(x);
        free(want);
    }
}

static void test_softmax_rows_sum_to_one(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sm_op(NO_AXIS, "Y");
    const int64_t d[3] = {8, 3, 33};
    float x[8 * 3 * 33];
    const float *y;
    ct_status_t st;
    int r, i;

    tu_fill_uniform(x, sizeof(x) / sizeof(x[0]), -20, 20, 5);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 3, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    for (r = 0; r < 8; r++) {
        double sum = 0;
        for (i = 0; i < 99; i++) {
            assert_true(y[r * 99 + i] >= 0 && y[r * 99 + i] <= 1);
            sum += y[r * 99 + i];
        }
        assert_true(fabs(sum - 1) < 1e-5);
    }
    tu_op_free(op);
}

static void test_softmax_large_inputs_are_finite(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sm_op(NO_AXIS, "Y");
    const int64_t d[2] = {3, 3};
    const float x[9] = {1e4f,  1e4f - 1, -1e4f, /* huge positive */
                        -1e4f, -1e4f,    -1e4f, /* all huge negative */
                        3e38f, -3e38f,   0};    /* near FLT_MAX */
    const float e1 = (float)(1 / (1 + exp(-1.0)));
    const float *y;
    ct_status_t st;
    int i;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    for (i = 0; i < 9; i++)
        assert_true(isfinite(y[i]));
    assert_true(fabsf(y[0] - e1) < 1e-6f && fabsf(y[1] - (1 - e1)) < 1e-6f);
    assert_true(y[2] == 0);
    for (i = 3; i < 6; i++)
        assert_true(fabsf(y[i] - 1.0f / 3) < 1e-6f);
    assert_true(y[6] == 1 && y[7] == 0 && y[8] == 0);
    tu_op_free(op);
}

static void test_softmax_inplace_overwrites_input(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sm_op(NO_AXIS, "X");
    const int64_t d[2] = {2, 4};
    float x[8], want[8];
    ct_tensor_t *t;
    ct_status_t st;

    tu_fill_uniform(x, 8, -2, 2, 9);
    ref_softmax(x, want, 2, 4);
    t = tu_feed(e->ws, "X", CT_DTYPE_F32, 2, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_ptr_equal(tu_fetch(e->ws, "X"), t);
    tu_assert_close_f32(ct_tensor_cdata(t), want, 8, 1e-6f, 1e-7f);
    tu_op_free(op);
}

static void test_softmax_inplace_on_shared_storage_keeps_snapshot(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sm_op(NO_AXIS, "X");
    const int64_t d[2] = {2, 4};
    float x[8], want[8];
    ct_tensor_t *snap;
    ct_status_t st;

    tu_fill_uniform(x, 8, -2, 2, 10);
    ref_softmax(x, want, 2, 4);
    /* A second reference to X's storage, as a snapshot holds. */
    assert_int_equal(ct_tensor_new(e->eng, &snap, &st), CT_OK);
    ct_tensor_share(snap, tu_feed(e->ws, "X", CT_DTYPE_F32, 2, d, x));
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "X")), want, 8, 1e-6f,
                        1e-7f);
    tu_assert_close_f32(ct_tensor_cdata(snap), x, 8, 0, 0);
    ct_tensor_free(snap);
    tu_op_free(op);
}

static void test_softmax_axis_out_of_range_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sm_op(2, "Y");
    Caffe2__OperatorDef *op2 = sm_op(-3, "Y");
    const int64_t d[2] = {2, 4};
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "axis 2 is out of range for X [2, 4] (2-d)");
    tu_assert_status(&st, tu_run_op(e->ws, op2, &st), CT_ESHAPE,
                     "axis -3 is out of range for X [2, 4] (2-d)");
    tu_op_free(op);
    tu_op_free(op2);
}

static void test_softmax_1d_default_axis_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sm_op(NO_AXIS, "Y");
    const int64_t d[1] = {4};
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 1, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "axis 1 is out of range for X [4] (1-d)");
    tu_op_free(op);
}

static void test_softmax_double_returns_enotsup(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = sm_op(NO_AXIS, "Y");
    const int64_t d[2] = {2, 4};
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_F64, 2, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                     "unsupported dtype DOUBLE (FLOAT)");
    tu_op_free(op);
}

static void test_softmax_axis_as_string_returns_earg(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Softmax", "X", "Y");
    const int64_t d[2] = {2, 4};
    ct_status_t st;

    tu_arg_s(op, "axis", "1");
    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EARG,
                     "does not have the right field");
    tu_op_free(op);
}

static void test_softmax_infer_checks_axis_and_counts_cost(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = sm_op(-1, "Y");
    const int64_t d[3] = {2, 3, 4};
    ct_shape_t in[1], out[1];
    ct_status_t st;
    ct_op_t *op;
    int rc;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create: %s", st.msg);
    in[0] = shape(CT_DTYPE_F32, 3, d);
    out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, 3);
    assert_memory_equal(out[0].dims, d, sizeof(d));
    assert_true(op->schema->cost_cb(op, in) >= 24.0);
    in[0] = shape(CT_DTYPE_F32, 0, NULL);
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "axis -1 is out of range for X []");
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_softmax_case_table_matches_reference),
        T(test_softmax_rows_sum_to_one),
        T(test_softmax_large_inputs_are_finite),
        T(test_softmax_inplace_overwrites_input),
        T(test_softmax_inplace_on_shared_storage_keeps_snapshot),
        T(test_softmax_axis_out_of_range_returns_eshape),
        T(test_softmax_1d_default_axis_returns_eshape),
        T(test_softmax_double_returns_enotsup),
        T(test_softmax_axis_as_string_returns_earg),
        T(test_softmax_infer_checks_axis_and_counts_cost),
#undef T
    };
    return cmocka_run_group_tests_name("ops.softmax", tests, NULL, NULL);
}
