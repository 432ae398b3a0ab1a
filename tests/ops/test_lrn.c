/* Tests for ops/lrn.c: LRN against a naive double-precision reference
 * over one case table (NCHW and NHWC, window sizes 1 to 7, C smaller than
 * the window, beta 0.75 and others), the optional scale output, errors
 * with their messages, shape inference and cost. */
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

struct lrn_case {
    const char *what;
    int64_t d[4];
    bool nhwc;
    int size;
    float alpha, beta, bias;
};

static const struct lrn_case cases[] = {
    {"AlexNet NCHW", {2, 7, 3, 4}, false, 5, 1e-4f, 0.75f, 1},
    {"AlexNet NHWC", {2, 3, 4, 7}, true, 5, 1e-4f, 0.75f, 1},
    {"strong alpha", {1, 6, 2, 2}, false, 3, 2.0f, 0.75f, 1},
    {"beta 0.5, bias 2", {2, 5, 3, 3}, false, 5, 0.5f, 0.5f, 2},
    {"window wider than C", {1, 3, 2, 5}, false, 7, 1.0f, 0.9f, 1.5f},
    {"window wider than C NHWC", {1, 2, 5, 3}, true, 7, 1.0f, 0.9f, 1.5f},
    {"size 1", {1, 4, 3, 3}, true, 1, 0.3f, 1.2f, 1},
    {"large image (block edges)", {1, 3, 20, 30}, false, 3, 0.5f, 0.75f, 1},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static void ref_lrn(const struct lrn_case *c, const float *x, float *y,
                    float *scale)
{
    const int64_t n = c->d[0];
    const int64_t ch = c->nhwc ? c->d[3] : c->d[1];
    const int64_t hw = c->nhwc ? c->d[1] * c->d[2] : c->d[2] * c->d[3];
    const int pre = (c->size - 1) / 2;
    int64_t i, k, p, q;

    for (i = 0; i < n; i++)
        for (k = 0; k < ch; k++)
            for (p = 0; p < hw; p++) {
#define AT(cc) (c->nhwc ? (i * hw + p) * ch + (cc) : (i * ch + (cc)) * hw + p)
                double sum = 0, sc;
                for (q = k - pre; q < k - pre + c->size; q++)
                    if (q >= 0 && q < ch)
                        sum += (double)x[AT(q)] * x[AT(q)];
                sc = c->bias + (double)c->alpha / c->size * sum;
                scale[AT(k)] = (float)sc;
                y[AT(k)] = (float)(x[AT(k)] * pow(sc, -(double)c->beta));
#undef AT
            }
}

static Caffe2__OperatorDef *lrn_op(const struct lrn_case *c, const char *outs)
{
    Caffe2__OperatorDef *op = tu_op("LRN", "X", outs);

    tu_arg_i(op, "size", c->size);
    tu_arg_f(op, "alpha", c->alpha);
    tu_arg_f(op, "beta", c->beta);
    tu_arg_f(op, "bias", c->bias);
    tu_arg_s(op, "order", c->nhwc ? "NHWC" : "NCHW");
    return op;
}

static void test_lrn_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct lrn_case *c = &cases[ci];
        const size_t n = (size_t)(c->d[0] * c->d[1] * c->d[2] * c->d[3]);
        float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
        float *sc = malloc(n * sizeof(float));
        Caffe2__OperatorDef *op = lrn_op(c, "Y,scale");
        ct_status_t st;

        tu_fill_uniform(x, n, -3, 3, 10 + ci);
        ref_lrn(c, x, y, sc);
        tu_feed_f32(e->ws, "X", 4, c->d, x);
        if (tu_run_op(e->ws, op, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "Y")), y, n, 2e-6f,
                            1e-7f);
        tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "scale")), sc, n,
                            2e-6f, 1e-7f);
        assert_memory_equal(ct_tensor_dims(tu_fetch(e->ws, "scale")), c->d,
                            sizeof(c->d));
        tu_op_free(op);
        free(x);
        free(y);
        free(sc);
    }
}

static void test_lrn_one_output_and_defaults(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("LRN", "X", "Y");
    const int64_t d[4] = {1, 2, 1, 1};
    const float x[2] = {3, -4};
    const float *y;
    ct_status_t st;

    /* alpha and beta default to 0: Y = X * bias^0 = X. */
    tu_arg_i(op, "size", 3);
    tu_feed_f32(e->ws, "X", 4, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    assert_true(y[0] == 3 && y[1] == -4);
    tu_op_free(op);
}

static void test_lrn_empty_input(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = lrn_op(&cases[0], "Y");
    const int64_t d[4] = {0, 7, 3, 4};
    ct_status_t st;

    tu_feed_f32(e->ws, "X", 4, d, NULL);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "Y")), 0);
    tu_op_free(op);
}

static void test_lrn_bad_arguments_return_earg(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *no_size = tu_op("LRN", "X", "Y");
    Caffe2__OperatorDef *even = tu_op("LRN", "X", "Y");
    Caffe2__OperatorDef *order = tu_op("LRN", "X", "Y");
    Caffe2__OperatorDef *inf = tu_op("LRN", "X", "Y");
    Caffe2__OperatorDef *field = tu_op("LRN", "X", "Y");
    const int64_t d[4] = {1, 2, 1, 1};
    ct_status_t st;

    tu_arg_i(even, "size", 4);
    tu_arg_i(order, "size", 3);
    tu_arg_s(order, "order", "CHWN");
    tu_arg_i(inf, "size", 3);
    tu_arg_f(inf, "beta", INFINITY);
    tu_arg_i(field, "size", 3);
    tu_arg_i(field, "alpha", 1);
    tu_feed_f32(e->ws, "X", 4, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, no_size, &st), CT_EARG,
                     "size must be odd and >= 1, got 0 (missing)");
    tu_assert_status(&st, tu_run_op(e->ws, even, &st), CT_EARG,
                     "size must be odd and >= 1, got 4");
    tu_assert_status(&st, tu_run_op(e->ws, order, &st), CT_EARG,
                     "order should be either \"NCHW\" or \"NHWC\", got "
                     "\"CHWN\"");
    tu_assert_status(&st, tu_run_op(e->ws, inf, &st), CT_EARG,
                     "must be finite");
    tu_assert_status(&st, tu_run_op(e->ws, field, &st), CT_EARG,
                     "does not have the right field");
    tu_op_free(no_size);
    tu_op_free(even);
    tu_op_free(order);
    tu_op_free(inf);
    tu_op_free(field);
}

static void test_lrn_bad_inputs_return_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = lrn_op(&cases[0], "Y");
    Caffe2__OperatorDef *inplace = lrn_op(&cases[0], "X");
    const int64_t d3[3] = {1, 2, 3}, d4[4] = {1, 2, 3, 3};
    ct_status_t st;

    tu_feed_f32(e->ws, "X", 3, d3, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "X [1, 2, 3] must be 4-d (NCHW), got 3-d");
    tu_feed(e->ws, "X", CT_DTYPE_F64, 4, d4, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                     "unsupported dtype DOUBLE for X (FLOAT)");
    tu_assert_status(&st, tu_run_op(e->ws, inplace, &st), CT_ESCHEMA,
                     "in-place");
    tu_op_free(op);
    tu_op_free(inplace);
}

static void test_lrn_infer_gives_shapes_and_cost(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = lrn_op(&cases[0], "Y,scale");
    const int64_t d[4] = {2, 3, 4, 5}, d3[3] = {2, 3, 4};
    ct_shape_t in[1], out[2];
    ct_status_t st;
    ct_op_t *op;
    int rc;

    tu_feed_f32(e->ws, "X", 4, d, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create: %s", st.msg);
    memset(in, 0, sizeof(in));
    memset(out, 0, sizeof(out));
    in[0].dtype = CT_DTYPE_F32;
    in[0].ndim = 4;
    memcpy(in[0].dims, d, sizeof(d));
    out[0].ndim = out[1].ndim = -1;
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[1].ndim, 4);
    assert_memory_equal(out[1].dims, d, sizeof(d));
    assert_true(op->schema->cost_cb(op, in) == 120.0 * 22);
    in[0].ndim = 3;
    memcpy(in[0].dims, d3, sizeof(d3));
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "must be 4-d");
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_lrn_case_table_matches_reference),
        T(test_lrn_one_output_and_defaults),
        T(test_lrn_empty_input),
        T(test_lrn_bad_arguments_return_earg),
        T(test_lrn_bad_inputs_return_errors),
        T(test_lrn_infer_gives_shapes_and_cost),
#undef T
    };
    return cmocka_run_group_tests_name("ops.lrn", tests, NULL, NULL);
}
