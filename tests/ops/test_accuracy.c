/* Tests for ops/accuracy.c: Accuracy against a naive reference (sorting
 * by score with a stable order) for top_k 1 to D, ties resolved by class
 * index, N = 0, errors with their messages and shape inference. */
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

/* Rank of the label in a stable descending sort of row r. */
static int ref_rank(const float *x, int d, int label)
{
    int j, rank = 0;

    for (j = 0; j < d; j++)
        if (x[j] > x[label] || (x[j] == x[label] && j < label))
            rank++;
    return rank;
}

static float run_acc(struct tu_env *e, int top_k, int64_t n, int64_t d,
                     const float *x, const int32_t *label)
{
    Caffe2__OperatorDef *op = tu_op("Accuracy", "X,label", "acc");
    const int64_t xd[2] = {n, d};
    const ct_tensor_t *acc;
    ct_status_t st;
    float v;

    if (top_k > 0)
        tu_arg_i(op, "top_k", top_k);
    tu_feed_f32(e->ws, "X", 2, xd, x);
    tu_feed(e->ws, "label", CT_DTYPE_I32, 1, &n, label);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("%s", st.msg);
    acc = tu_fetch(e->ws, "acc");
    assert_int_equal(ct_tensor_ndim(acc), 0);
    assert_int_equal(ct_tensor_dtype(acc), CT_DTYPE_F32);
    v = *(const float *)ct_tensor_cdata(acc);
    tu_op_free(op);
    return v;
}

static void test_accuracy_matches_reference_for_every_top_k(void **state)
{
    struct tu_env *e = *state;
    enum { N = 200, D = 7 };
    static float x[N * D];
    static int32_t label[N];
    int k, r;

    tu_fill_uniform(x, N * D, -2, 2, 3);
    for (r = 0; r < N; r++) {
        label[r] = (int32_t)((r * 5 + 1) % D);
        /* Ties: rows divisible by 4 score every class the same. */
        if (r % 4 == 0) {
            int j;
            for (j = 0; j < D; j++)
                x[r * D + j] = 0.5f;
        }
    }
    for (k = 1; k <= D; k++) {
        int correct = 0;
        float got;
        for (r = 0; r < N; r++)
            correct += ref_rank(x + r * D, D, label[r]) < k;
        got = run_acc(e, k, N, D, x, label);
        assert_true(fabsf(got - (float)correct / N) < 1e-6f);
    }
    assert_true(run_acc(e, 0, N, D, x, label) == run_acc(e, 1, N, D, x, label));
}

static void test_accuracy_ties_rank_by_class_index(void **state)
{
    struct tu_env *e = *state;
    const float x[3] = {1, 1, 1};
    const int32_t l0 = 0, l2 = 2;

    /* All equal: class 0 ranks first, class 2 last. */
    assert_true(run_acc(e, 1, 1, 3, x, &l0) == 1);
    assert_true(run_acc(e, 1, 1, 3, x, &l2) == 0);
    assert_true(run_acc(e, 2, 1, 3, x, &l2) == 0);
    assert_true(run_acc(e, 3, 1, 3, x, &l2) == 1);
}

static void test_accuracy_empty_batch_is_nan(void **state)
{
    struct tu_env *e = *state;

    assert_true(isnan(run_acc(e, 1, 0, 5, NULL, NULL)));
}

static void test_accuracy_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Accuracy", "X,label", "acc");
    Caffe2__OperatorDef *bad_k = tu_op("Accuracy", "X,label", "acc");
    const int64_t xd[2] = {2, 3}, x3[3] = {2, 3, 1}, two = 2, three = 3;
    const float x[6] = {0, 1, 2, 3, 4, 5};
    const int32_t bad[2] = {1, 3}, neg[2] = {-1, 0};
    ct_status_t st;

    tu_arg_i(bad_k, "top_k", 0);
    tu_feed_f32(e->ws, "X", 2, xd, x);
    tu_feed(e->ws, "label", CT_DTYPE_I32, 1, &two, bad);
    tu_assert_status(&st, tu_run_op(e->ws, bad_k, &st), CT_EARG,
                     "top_k must be >= 1, got 0");
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EINVAL,
                     "label 3 of row 1 is outside [0, 3)");
    tu_feed(e->ws, "label", CT_DTYPE_I32, 1, &two, neg);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EINVAL,
                     "label -1 of row 0 is outside [0, 3)");
    tu_feed(e->ws, "label", CT_DTYPE_I32, 1, &three, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "want X [N, D] and label [N], got X [2, 3] and label "
                     "[3]");
    tu_feed(e->ws, "label", CT_DTYPE_I64, 1, &two, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ETYPE,
                     "label \"label\" is INT64, want INT32");
    tu_feed(e->ws, "label", CT_DTYPE_I32, 1, &two, neg);
    tu_feed_f32(e->ws, "X", 3, x3, x);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "got X [2, 3, 1] and label [2]");
    tu_feed(e->ws, "X", CT_DTYPE_F64, 2, xd, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                     "unsupported dtype DOUBLE for X (FLOAT)");
    tu_op_free(op);
    tu_op_free(bad_k);
}

static void test_accuracy_infer(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("Accuracy", "X,label", "acc");
    const int64_t xd[2] = {4, 10}, ld[1] = {4}, bd[1] = {5};
    ct_shape_t in[2], out[1];
    ct_status_t st;
    ct_op_t *op;
    int rc;

    tu_feed_f32(e->ws, "X", 2, xd, NULL);
    tu_feed(e->ws, "label", CT_DTYPE_I32, 1, ld, NULL);
    assert_int_equal(ct__op_create(e->ws, def, 0, &op, &st), CT_OK);
    memset(in, 0, sizeof(in));
    memset(out, 0, sizeof(out));
    in[0].dtype = CT_DTYPE_F32;
    in[0].ndim = 2;
    memcpy(in[0].dims, xd, sizeof(xd));
    in[1].dtype = CT_DTYPE_I32;
    in[1].ndim = 1;
    memcpy(in[1].dims, ld, sizeof(ld));
    out[0].ndim = -1;
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, 0);
    assert_int_equal(out[0].dtype, CT_DTYPE_F32);
    assert_true(op->schema->cost_cb(op, in) == 40);
    memcpy(in[1].dims, bd, sizeof(bd));
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "label [5]");
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_accuracy_matches_reference_for_every_top_k),
        T(test_accuracy_ties_rank_by_class_index),
        T(test_accuracy_empty_batch_is_nan),
        T(test_accuracy_errors),
        T(test_accuracy_infer),
#undef T
    };
    return cmocka_run_group_tests_name("ops.accuracy", tests, NULL, NULL);
}
