/* Reliability checklist §D gaps (docs/reliability.md): D7 zero-size dims
 * through many ops (a valid empty output, data never dereferenced: ASan
 * checks that), D8 axis = rank, -rank-1, INT32_MIN, INT64_MIN and
 * INT64_MAX for every op with an axis, D11 NaN / Inf / 1e30 floats used
 * as scales or integer values, D13 zero and negative division-like
 * parameters (group, dilation, stride, kernel, LRN size). Each bad input
 * must give a clean error code whose message names the argument. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"

/* Runs op (then frees it); the run must fail with one of the codes a or b
 * and a message containing needle. */
static void expect_fail(struct tu_env *e, Caffe2__OperatorDef *op, int a, int b,
                        const char *needle, const char *what)
{
    ct_status_t st;
    int rc = tu_run_op(e->ws, op, &st);

    if ((rc != a && rc != b) || strstr(st.msg, needle) == NULL)
        fail_msg("%s: want %s or %s naming \"%s\", got %s \"%s\"", what,
                 ct_err_name(a), ct_err_name(b), needle, ct_err_name(rc),
                 rc != CT_OK ? st.msg : "(success)");
    tu_op_free(op);
}

/* Runs op (then frees it); must succeed with an output `out` of numel 0. */
static void expect_empty(struct tu_env *e, Caffe2__OperatorDef *op,
                         const char *out, const char *what)
{
    ct_status_t st;
    int rc = tu_run_op(e->ws, op, &st);

    if (rc != CT_OK)
        fail_msg("%s on an empty input: %s \"%s\"", what, ct_err_name(rc),
                 st.msg);
    tu_op_free(op);
    if (ct_tensor_numel(tu_fetch(e->ws, out)) != 0)
        fail_msg("%s: output %s has %lld elements, want 0", what, out,
                 (long long)ct_tensor_numel(tu_fetch(e->ws, out)));
}

/* ---- D7: empty tensors ---- */

static void test_ops_zero_size_inputs_give_empty_outputs(void **state)
{
    static const char *const unary[] = {"Relu",    "Sigmoid",     "Tanh",
                                        "Softmax", "Copy",        "Flatten",
                                        "Scale",   "StopGradient"};
    struct tu_env *e = *state;
    const int64_t d05[2] = {0, 5}, d50[2] = {5, 0}, w[2] = {4, 5}, b[1] = {4};
    const int64_t x4[4] = {0, 1, 5, 5}, k4[4] = {2, 1, 3, 3}, b2[1] = {2};
    const int64_t c1[1] = {1};
    Caffe2__OperatorDef *op;
    size_t i;

    tu_feed_f32(e->ws, "E", 2, d05, NULL);
    tu_feed_f32(e->ws, "E2", 2, d50, NULL);
    for (i = 0; i < sizeof(unary) / sizeof(unary[0]); i++) {
        expect_empty(e, tu_op(unary[i], "E", "Y"), "Y", unary[i]);
        expect_empty(e, tu_op(unary[i], "E2", "Y"), "Y", unary[i]);
    }
    expect_empty(e, tu_op("Transpose", "E", "Y"), "Y", "Transpose");
    expect_empty(e, tu_op("Add", "E,E", "Y"), "Y", "Add");
    expect_empty(e, tu_op("Mul", "E2,E2", "Y"), "Y", "Mul");
    expect_empty(e, tu_op("Sum", "E,E,E", "Y"), "Y", "Sum");
    op = tu_op("Concat", "E,E", "Y,S");
    tu_arg_i(op, "axis", 0);
    expect_empty(e, op, "Y", "Concat");
    op = tu_op("Split", "E", "Y,Z");
    tu_arg_i(op, "axis", 0);
    expect_empty(e, op, "Z", "Split");
    op = tu_op("Reshape", "E", "Y,S");
    tu_arg_ints(op, "shape", 2, (const int64_t[]){5, 0});
    expect_empty(e, op, "Y", "Reshape");
    op = tu_op("Dropout", "E", "Y");
    tu_arg_i(op, "is_test", 1);
    expect_empty(e, op, "Y", "Dropout");
    /* FC with M = 0 */
    tu_feed_f32(e->ws, "W", 2, w, NULL);
    tu_feed_f32(e->ws, "b", 1, b, NULL);
    expect_empty(e, tu_op("FC", "E,W,b", "Y"), "Y", "FC");
    /* Conv / pooling / LRN / SpatialBN with N = 0 */
    tu_feed_f32(e->ws, "X4", 4, x4, NULL);
    tu_feed_f32(e->ws, "K", 4, k4, NULL);
    tu_feed_f32(e->ws, "kb", 1, b2, NULL);
    op = tu_op("Conv", "X4,K,kb", "Y");
    tu_arg_i(op, "kernel", 3);
    expect_empty(e, op, "Y", "Conv");
    op = tu_op("MaxPool", "X4", "Y");
    tu_arg_i(op, "kernel", 2);
    expect_empty(e, op, "Y", "MaxPool");
    op = tu_op("AveragePool", "X4", "Y");
    tu_arg_i(op, "kernel", 2);
    expect_empty(e, op, "Y", "AveragePool");
    op = tu_op("LRN", "X4", "Y");
    tu_arg_i(op, "size", 3);
    expect_empty(e, op, "Y", "LRN");
    tu_feed_f32(e->ws, "s", 1, c1, (const float[]){1});
    tu_feed_f32(e->ws, "o", 1, c1, (const float[]){0});
    tu_feed_f32(e->ws, "m", 1, c1, (const float[]){0});
    tu_feed_f32(e->ws, "v", 1, c1, (const float[]){1});
    op = tu_op("SpatialBN", "X4,s,o,m,v", "Y");
    tu_arg_i(op, "is_test", 1);
    expect_empty(e, op, "Y", "SpatialBN");
}

/* ---- D8: axis extremes ---- */

static Caffe2__OperatorDef *with_axis(const char *type, const char *in,
                                      const char *out, int64_t axis)
{
    Caffe2__OperatorDef *op = tu_op(type, in, out);

    tu_arg_i(op, "axis", axis);
    return op;
}

static void test_ops_axis_out_of_range_returns_error_naming_axis(void **s)
{
    static const struct {
        const char *type, *in, *out;
    } ops[] = {
        {"Concat", "X,X", "Y,S"}, {"Split", "X", "Y,Z"}, {"Softmax", "X", "Y"},
        {"FC", "X,W,b", "Y"},     {"Flatten", "X", "Y"},
    };
    /* X is [2, 4]: rank 2. INT32_MIN and beyond must not wrap. */
    static const int64_t axes[] = {2,
                                   -3,
                                   INT32_MIN,
                                   INT32_MAX,
                                   INT64_MIN,
                                   INT64_MAX,
                                   (int64_t)INT32_MAX + 2};
    struct tu_env *e = *s;
    const int64_t dx[2] = {2, 4}, dw[2] = {3, 4}, db[1] = {3};
    char what[96];
    size_t o, a;

    tu_feed_f32(e->ws, "X", 2, dx, NULL);
    tu_feed_f32(e->ws, "W", 2, dw, NULL);
    tu_feed_f32(e->ws, "b", 1, db, NULL);
    for (o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        for (a = 0; a < sizeof(axes) / sizeof(axes[0]); a++) {
            /* Flatten accepts axis == rank (Caffe2: 0 <= axis <= rank). */
            if (strcmp(ops[o].type, "Flatten") == 0 && axes[a] == 2)
                continue;
            snprintf(what, sizeof(what), "%s axis %lld", ops[o].type,
                     (long long)axes[a]);
            expect_fail(e,
                        with_axis(ops[o].type, ops[o].in, ops[o].out, axes[a]),
                        CT_EARG, CT_ESHAPE, "axis", what);
        }
    }
}

static void test_transpose_bad_axes_return_error(void **state)
{
    struct tu_env *e = *state;
    const int64_t dx[3] = {2, 3, 4};
    Caffe2__OperatorDef *op;

    tu_feed_f32(e->ws, "X", 3, dx, NULL);
    op = tu_op("Transpose", "X", "Y");
    tu_arg_ints(op, "axes", 3, (const int64_t[]){0, 1, INT32_MIN});
    expect_fail(e, op, CT_EARG, CT_ESHAPE, "axes", "Transpose INT32_MIN");
    op = tu_op("Transpose", "X", "Y");
    tu_arg_ints(op, "axes", 3, (const int64_t[]){0, 1, INT64_MAX});
    expect_fail(e, op, CT_EARG, CT_ESHAPE, "axes", "Transpose INT64_MAX");
    op = tu_op("Transpose", "X", "Y");
    tu_arg_ints(op, "axes", 3, (const int64_t[]){0, 1, 3});
    expect_fail(e, op, CT_EARG, CT_ESHAPE, "axes", "Transpose rank");
    op = tu_op("Transpose", "X", "Y");
    tu_arg_ints(op, "axes", 3, (const int64_t[]){0, 0, 1});
    expect_fail(e, op, CT_EARG, CT_ESHAPE, "axes", "Transpose duplicate");
}

/* ---- D11: NaN / Inf / huge floats ---- */

static void test_ops_non_finite_float_args_return_earg(void **state)
{
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    struct tu_env *e = *state;
    const int64_t dx[4] = {1, 3, 2, 2};
    Caffe2__OperatorDef *op;
    char what[64];
    size_t i;

    tu_feed_f32(e->ws, "X", 4, dx, NULL);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(what, sizeof(what), "Dropout ratio %g", (double)bad[i]);
        op = tu_op("Dropout", "X", "Y,M");
        tu_arg_f(op, "ratio", bad[i]);
        expect_fail(e, op, CT_EARG, CT_EARG, "ratio", what);
        snprintf(what, sizeof(what), "LRN alpha %g", (double)bad[i]);
        op = tu_op("LRN", "X", "Y");
        tu_arg_i(op, "size", 3);
        tu_arg_f(op, "alpha", bad[i]);
        expect_fail(e, op, CT_EARG, CT_EARG, "alpha", what);
    }
}

static void test_uniform_fill_non_finite_bound_args_return_earg(void **state)
{
    static const float bad[][2] = {{NAN, 1},       {INFINITY, 1},
                                   {-INFINITY, 1}, {0, INFINITY},
                                   {0, NAN},       {-INFINITY, INFINITY}};
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op;
    char what[64];
    size_t i;

    /* Both the argument and the input forms refuse infinite bounds. */
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(what, sizeof(what), "UniformFill min %g max %g",
                 (double)bad[i][0], (double)bad[i][1]);
        op = tu_op("UniformFill", "", "Y");
        tu_arg_ints(op, "shape", 1, (const int64_t[]){4});
        tu_arg_f(op, "min", bad[i][0]);
        tu_arg_f(op, "max", bad[i][1]);
        expect_fail(e, op, CT_EARG, CT_EARG, "m", what);
    }
}

static void test_constant_fill_float_value_for_int_dtype_returns_earg(void **s)
{
    static const float bad[] = {1e30f, NAN, INFINITY};
    struct tu_env *e = *s;
    Caffe2__OperatorDef *op;
    char what[64];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(what, sizeof(what), "ConstantFill INT32 value %g",
                 (double)bad[i]);
        op = tu_op("ConstantFill", "", "Y");
        tu_arg_ints(op, "shape", 1, (const int64_t[]){2});
        tu_arg_i(op, "dtype", 2); /* TensorProto INT32 */
        tu_arg_f(op, "value", bad[i]);
        expect_fail(e, op, CT_EARG, CT_EARG, "value", what);
    }
}

/* ---- D13: division-like parameters ---- */

static void test_ops_zero_or_negative_divisors_return_earg(void **state)
{
    static const struct {
        const char *type, *arg;
        int64_t v;
    } cases[] = {
        {"Conv", "group", 0},         {"Conv", "group", -1},
        {"Conv", "dilation", 0},      {"Conv", "dilation", -2},
        {"Conv", "stride", -1},       {"Conv", "group", INT32_MIN},
        {"MaxPool", "stride", 0},     {"MaxPool", "stride", -1},
        {"AveragePool", "stride", 0}, {"MaxPool", "kernel", -3},
        {"MaxPool", "dilation", 0},   {"LRN", "size", 0},
        {"LRN", "size", -1},
    };
    struct tu_env *e = *state;
    const int64_t dx[4] = {1, 2, 5, 5}, dw[4] = {2, 2, 3, 3}, db[1] = {2};
    Caffe2__OperatorDef *op;
    char what[64];
    size_t i;

    tu_feed_f32(e->ws, "X", 4, dx, NULL);
    tu_feed_f32(e->ws, "W", 4, dw, NULL);
    tu_feed_f32(e->ws, "b", 1, db, NULL);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool conv = strcmp(cases[i].type, "Conv") == 0;
        bool lrn = strcmp(cases[i].type, "LRN") == 0;
        snprintf(what, sizeof(what), "%s %s = %lld", cases[i].type,
                 cases[i].arg, (long long)cases[i].v);
        op = tu_op(cases[i].type, conv ? "X,W,b" : "X", "Y");
        if (!lrn && strcmp(cases[i].arg, "kernel") != 0)
            tu_arg_i(op, "kernel", 3);
        tu_arg_i(op, cases[i].arg, cases[i].v);
        expect_fail(e, op, CT_EARG, CT_EARG, cases[i].arg, what);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_ops_zero_size_inputs_give_empty_outputs),
        T(test_ops_axis_out_of_range_returns_error_naming_axis),
        T(test_transpose_bad_axes_return_error),
        T(test_ops_non_finite_float_args_return_earg),
        T(test_uniform_fill_non_finite_bound_args_return_earg),
        T(test_constant_fill_float_value_for_int_dtype_returns_earg),
        T(test_ops_zero_or_negative_divisors_return_earg),
    };
#undef T
    return cmocka_run_group_tests_name("ops.reliability_args", tests, NULL,
                                       NULL);
}
