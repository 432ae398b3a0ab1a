/* Tests for ops/data.c: ExampleBatch's batches (sequential, wrap-around,
 * stride / offset for concurrent micro-batches, UINT8 scaling, labels),
 * its shuffle (a permutation per epoch, deterministic, differing across
 * epochs and seeds), its errors, and that no gradient flows into it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define N_EX 10 /* examples of 2 x 3 pixels */

static int setup(void **state)
{
    struct tu_env *e = calloc(1, sizeof(*e));
    const int64_t dx[3] = {N_EX, 2, 3}, dl[1] = {N_EX};
    uint8_t px[N_EX * 6];
    int64_t lab[N_EX];
    int i;

    if (e == NULL)
        return -1;
    tu_env_init(e);
    for (i = 0; i < N_EX * 6; i++)
        px[i] = (uint8_t)(i / 6 * 10 + i % 6); /* example k: 10k .. 10k+5 */
    for (i = 0; i < N_EX; i++)
        lab[i] = 100 + i;
    tu_feed(e->ws, "images", CT_DTYPE_U8, 3, dx, px);
    tu_feed(e->ws, "labels", CT_DTYPE_I64, 1, dl, lab);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct tu_env *e = *state;

    tu_env_destroy(e);
    free(e);
    return 0;
}

static void feed_iter(ct_workspace_t *ws, int64_t v)
{
    const int64_t one = 1;

    tu_feed(ws, "it", CT_DTYPE_I64, 1, &one, &v);
}

static Caffe2__OperatorDef *batch_op(int64_t batch_size)
{
    Caffe2__OperatorDef *op =
        tu_op("ExampleBatch", "images,labels,it", "data,label");

    tu_arg_i(op, "batch_size", batch_size);
    return op;
}

/* Runs op at iteration it and returns the example index of each row
 * (from its first pixel) after checking pixels and labels agree. */
static void run_batch(struct tu_env *e, Caffe2__OperatorDef *op, int64_t it,
                      float scale, int64_t *idx, int64_t bs)
{
    const ct_tensor_t *d, *l;
    ct_status_t st;
    int64_t k, j;

    feed_iter(e->ws, it);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("ExampleBatch: %s", st.msg);
    d = tu_fetch(e->ws, "data");
    l = tu_fetch(e->ws, "label");
    assert_int_equal(ct_tensor_dtype(d), CT_DTYPE_F32);
    assert_int_equal(ct_tensor_ndim(d), 3);
    assert_int_equal(ct_tensor_dim(d, 0), bs);
    assert_int_equal(ct_tensor_dim(d, 2), 3);
    assert_int_equal(ct_tensor_dtype(l), CT_DTYPE_I32);
    for (k = 0; k < bs; k++) {
        const float *row = (const float *)ct_tensor_cdata(d) + k * 6;
        idx[k] = ((const int32_t *)ct_tensor_cdata(l))[k] - 100;
        assert_true(idx[k] >= 0 && idx[k] < N_EX);
        for (j = 0; j < 6; j++)
            assert_true(row[j] == (float)((idx[k] * 10 + j) * (double)scale));
    }
}

static void test_example_batch_sequential_batches_wrap_around(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = batch_op(4);
    int64_t idx[4], it, k;

    for (it = 0; it < 6; it++) {
        run_batch(e, op, it, 1, idx, 4);
        for (k = 0; k < 4; k++)
            assert_int_equal(idx[k], (it * 4 + k) % N_EX);
    }
    tu_op_free(op);
}

static void test_example_batch_stride_offset_and_scale(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = batch_op(3);
    int64_t idx[3], k;

    tu_arg_i(op, "stride", 2);
    tu_arg_i(op, "offset", 1);
    tu_arg_f(op, "scale", 1.0f / 255);
    run_batch(e, op, 2, 1.0f / 255, idx, 3); /* batch 5: positions 15.. */
    for (k = 0; k < 3; k++)
        assert_int_equal(idx[k], (15 + k) % N_EX);
    tu_op_free(op);
}

static void test_example_batch_batch_larger_than_data_set(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = batch_op(23);
    int64_t idx[23], k;

    run_batch(e, op, 1, 1, idx, 23);
    for (k = 0; k < 23; k++)
        assert_int_equal(idx[k], (23 + k) % N_EX);
    tu_op_free(op);
}

static void test_example_batch_shuffle_is_a_permutation_per_epoch(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = batch_op(5), *op2 = batch_op(5);
    int64_t idx[5], first[2][N_EX], again[N_EX], other[N_EX];
    int64_t ep, b, k;
    int seen[N_EX];

    tu_arg_i(op, "shuffle", 1);
    tu_arg_i(op, "seed", 7);
    tu_arg_i(op2, "shuffle", 1);
    tu_arg_i(op2, "seed", 8);
    for (ep = 0; ep < 2; ep++) {
        memset(seen, 0, sizeof(seen));
        for (b = 0; b < 2; b++) {
            run_batch(e, op, ep * 2 + b, 1, idx, 5);
            for (k = 0; k < 5; k++) {
                seen[idx[k]]++;
                first[ep][b * 5 + k] = idx[k];
            }
        }
        for (k = 0; k < N_EX; k++)
            assert_int_equal(seen[k], 1);
    }
    assert_memory_not_equal(first[0], first[1], sizeof(first[0]));
    for (b = 0; b < 2; b++) {
        run_batch(e, op, b, 1, idx, 5);
        memcpy(again + b * 5, idx, sizeof(idx));
        run_batch(e, op2, b, 1, idx, 5);
        memcpy(other + b * 5, idx, sizeof(idx));
    }
    assert_memory_equal(again, first[0], sizeof(again));
    assert_memory_not_equal(other, first[0], sizeof(other));
    tu_op_free(op);
    tu_op_free(op2);
}

static void test_example_batch_bad_inputs_return_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op;
    const int64_t d3[1] = {3}, d0[3] = {0, 2, 3};
    ct_status_t st;

    op = batch_op(0);
    feed_iter(e->ws, 0);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EARG,
                     "batch_size=0 must be >= 1");
    tu_op_free(op);
    op = tu_op("ExampleBatch", "images,labels,it", "data,label");
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EARG,
                     "Required argument batch_size is not provided");
    tu_op_free(op);
    op = batch_op(2);
    feed_iter(e->ws, -1);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EINVAL,
                     "iteration -1 * stride 1 + offset 0 is negative");
    tu_feed(e->ws, "lab3", CT_DTYPE_I32, 1, d3, NULL);
    tu_feed(e->ws, "none", CT_DTYPE_U8, 3, d0, NULL);
    tu_op_free(op);
    op = tu_op("ExampleBatch", "images,lab3,it", "data,label");
    tu_arg_i(op, "batch_size", 2);
    feed_iter(e->ws, 0);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "labels \"lab3\" have 3 entries for 10 examples");
    tu_op_free(op);
    op = tu_op("ExampleBatch", "none,lab3,it", "data,label");
    tu_arg_i(op, "batch_size", 2);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "N >= 1 examples");
    tu_op_free(op);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_example_batch_sequential_batches_wrap_around, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_example_batch_stride_offset_and_scale, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_example_batch_batch_larger_than_data_set, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_example_batch_shuffle_is_a_permutation_per_epoch, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_example_batch_bad_inputs_return_errors, setup, teardown),
    };

    return cmocka_run_group_tests_name("ops.data", tests, NULL, NULL);
}
