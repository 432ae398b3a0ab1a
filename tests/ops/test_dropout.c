/* Tests for ops/dropout.c: is_test passthrough (copy and in place, mask
 * untouched), the training mask (Y = X * mask / (1 - ratio), keep rate
 * close to 1 - ratio), determinism for a seed, fresh masks on every run,
 * ratio 0, errors with their messages, shape inference. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/gradient.h"
#include "cortado/net.h"
#include "cortado/proto.h"
#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

#define N 10000

static Caffe2__OperatorDef *drop_op(int is_test, float ratio, const char *outs,
                                    int64_t seed)
{
    Caffe2__OperatorDef *op = tu_op("Dropout", "X", outs);

    if (is_test >= 0)
        tu_arg_i(op, "is_test", is_test);
    if (ratio >= 0)
        tu_arg_f(op, "ratio", ratio);
    if (seed >= 0) {
        op->device_option = calloc(1, sizeof(*op->device_option));
        assert_non_null(op->device_option);
        caffe2__device_option__init(op->device_option);
        op->device_option->has_random_seed = true;
        op->device_option->random_seed = (uint32_t)seed;
    }
    return op;
}

/* tu_op_free does not know about device_option. */
static void drop_free(Caffe2__OperatorDef *op)
{
    free(op->device_option);
    op->device_option = NULL;
    tu_op_free(op);
}

static void test_dropout_is_test_copies_input(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = drop_op(1, 0.3f, "Y,mask", -1);
    const int64_t d[2] = {3, 4};
    float x[12];
    ct_status_t st;

    tu_fill_uniform(x, 12, -1, 1, 3);
    tu_feed_f32(e->ws, "X", 2, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "Y")), x, sizeof(x));
    /* The mask is not written in test mode (Caffe2 leaves it). */
    assert_null(ct_blob_get_tensor(ct_workspace_get_blob(e->ws, "mask")));
    tu_op_free(op);
}

static void test_dropout_is_test_in_place_and_double(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = drop_op(1, -1, "X", -1);
    Caffe2__OperatorDef *op2 = drop_op(1, -1, "Y", -1);
    const int64_t d[1] = {3};
    const double xd[3] = {1.5, -2, 3};
    float x[3] = {1, 2, 3};
    ct_tensor_t *t;
    ct_status_t st;

    t = tu_feed_f32(e->ws, "X", 1, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_ptr_equal(tu_fetch(e->ws, "X"), t);
    assert_memory_equal(ct_tensor_cdata(t), x, sizeof(x));
    tu_feed(e->ws, "X", CT_DTYPE_F64, 1, d, xd);
    assert_int_equal(tu_run_op(e->ws, op2, &st), CT_OK);
    assert_int_equal(ct_tensor_dtype(tu_fetch(e->ws, "Y")), CT_DTYPE_F64);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "Y")), xd, sizeof(xd));
    tu_op_free(op);
    tu_op_free(op2);
}

static void test_dropout_training_scales_kept_values(void **state)
{
    struct tu_env *e = *state;
    const float ratios[3] = {0.5f, 0.2f, 0.9f};
    const int64_t d[1] = {N};
    static float x[N];
    int r, i;

    tu_fill_uniform(x, N, 0.5f, 2, 7);
    for (r = 0; r < 3; r++) {
        Caffe2__OperatorDef *op = drop_op(0, ratios[r], "Y,mask", 123);
        const float *y;
        const bool *mask;
        ct_status_t st;
        int kept = 0;
        double p;

        tu_feed_f32(e->ws, "X", 1, d, x);
        assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
        y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
        mask = ct_tensor_cdata(tu_fetch(e->ws, "mask"));
        assert_int_equal(ct_tensor_dtype(tu_fetch(e->ws, "mask")),
                         CT_DTYPE_BOOL);
        for (i = 0; i < N; i++) {
            const float want = mask[i] ? x[i] / (1 - ratios[r]) : 0;
            assert_true(fabsf(y[i] - want) <= 1e-6f * fabsf(want));
            kept += mask[i];
        }
        /* Binomial(N, 1 - ratio): within 5 standard deviations. */
        p = 1 - ratios[r];
        assert_true(fabs(kept - N * p) < 5 * sqrt(N * p * (1 - p)));
        drop_free(op);
    }
}

static void test_dropout_same_seed_same_mask_new_run_new_mask(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[1] = {N};
    static float x[N];
    static bool m1[N], m2[N];
    Caffe2__OperatorDef *a = drop_op(0, 0.5f, "Y,mask", 99);
    Caffe2__OperatorDef *b = drop_op(0, 0.5f, "Y,mask", 99);
    Caffe2__OperatorDef *c = drop_op(0, 0.5f, "Y,mask", 100);
    ct_workspace_t *ws = e->ws;
    ct_netdef_t *net;
    ct_net_t *compiled;
    ct_status_t st;

    tu_fill_uniform(x, N, 1, 2, 8);
    tu_feed_f32(ws, "X", 1, d, x);
    /* Two op instances with the same seed draw the same mask. */
    assert_int_equal(tu_run_op(ws, a, &st), CT_OK);
    memcpy(m1, ct_tensor_cdata(tu_fetch(ws, "mask")), N);
    assert_int_equal(tu_run_op(ws, b, &st), CT_OK);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(ws, "mask")), m1, N);
    /* Another seed draws another. */
    assert_int_equal(tu_run_op(ws, c, &st), CT_OK);
    assert_memory_not_equal(ct_tensor_cdata(tu_fetch(ws, "mask")), m1, N);
    /* One instance run twice (in a net) draws a fresh mask each run. */
    net = tu_net("drop", "X", "Y");
    tu_net_add_op(net, drop_op(0, 0.5f, "Y,mask", 99));
    assert_int_equal(ct_net_new(ws, net, NULL, &compiled, &st), CT_OK);
    assert_int_equal(ct_net_run(compiled, &st), CT_OK);
    memcpy(m2, ct_tensor_cdata(tu_fetch(ws, "mask")), N);
    assert_memory_equal(m2, m1, N); /* run 0 = the fresh instance's mask */
    assert_int_equal(ct_net_run(compiled, &st), CT_OK);
    assert_memory_not_equal(ct_tensor_cdata(tu_fetch(ws, "mask")), m1, N);
    ct_net_free(compiled);
    free(net->op[0]->device_option);
    net->op[0]->device_option = NULL;
    tu_net_free(net);
    drop_free(a);
    drop_free(b);
    drop_free(c);
}

static void test_dropout_ratio_zero_keeps_everything(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = drop_op(0, 0, "X,mask", -1);
    const int64_t d[1] = {1000};
    float x[1000];
    const bool *mask;
    int i;
    ct_status_t st;

    tu_fill_uniform(x, 1000, -1, 1, 9);
    tu_feed_f32(e->ws, "X", 1, d, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    mask = ct_tensor_cdata(tu_fetch(e->ws, "mask"));
    for (i = 0; i < 1000; i++)
        assert_true(mask[i]);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "X")), x, sizeof(x));
    tu_op_free(op);
}

static void test_dropout_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *r1 = drop_op(1, 1.0f, "Y", -1);
    Caffe2__OperatorDef *r2 = drop_op(1, -0.5f, "Y", -1);
    Caffe2__OperatorDef *no_mask = drop_op(0, 0.5f, "Y", -1);
    Caffe2__OperatorDef *default_mode = drop_op(-1, -1, "Y", -1);
    Caffe2__OperatorDef *mask_in = drop_op(0, 0.5f, "Y,X", -1);
    Caffe2__OperatorDef *train = drop_op(0, 0.5f, "Y,mask", -1);
    Caffe2__OperatorDef *test_i = drop_op(1, -1, "Y", -1);
    const int64_t d[1] = {4};
    ct_status_t st;

    tu_arg_f(r2, "ratio", -0.5f); /* drop_op skips negative ratios */
    tu_feed_f32(e->ws, "X", 1, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, r1, &st), CT_EARG,
                     "ratio must be in [0, 1), got 1");
    tu_assert_status(&st, tu_run_op(e->ws, r2, &st), CT_EARG,
                     "ratio must be in [0, 1), got -0.5");
    tu_assert_status(&st, tu_run_op(e->ws, no_mask, &st), CT_ESCHEMA,
                     "needs the mask as output 1; set is_test=1");
    tu_assert_status(&st, tu_run_op(e->ws, default_mode, &st), CT_ESCHEMA,
                     "training mode (is_test=0)");
    tu_assert_status(&st, tu_run_op(e->ws, mask_in, &st), CT_ESCHEMA,
                     "does not allow input 0 and output 1");
    tu_feed(e->ws, "X", CT_DTYPE_F64, 1, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, train, &st), CT_ENOTSUP,
                     "unsupported dtype DOUBLE for X (FLOAT)");
    tu_feed(e->ws, "X", CT_DTYPE_I32, 1, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, test_i, &st), CT_ENOTSUP,
                     "unsupported dtype INT32 for X (FLOAT or DOUBLE)");
    tu_op_free(r1);
    tu_op_free(r2);
    tu_op_free(no_mask);
    tu_op_free(default_mode);
    tu_op_free(mask_in);
    tu_op_free(train);
    tu_op_free(test_i);
}

static void test_dropout_infer_gives_bool_mask(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = drop_op(0, 0.5f, "Y,mask", -1);
    const int64_t d[3] = {2, 3, 4};
    ct_shape_t in[1], out[2];
    ct_status_t st;
    ct_op_t *op;

    tu_feed_f32(e->ws, "X", 3, d, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create: %s", st.msg);
    memset(in, 0, sizeof(in));
    memset(out, 0, sizeof(out));
    in[0].dtype = CT_DTYPE_F32;
    in[0].ndim = 3;
    memcpy(in[0].dims, d, sizeof(d));
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[1].dtype, CT_DTYPE_BOOL);
    assert_int_equal(out[1].ndim, 3);
    assert_int_equal(out[0].dtype, CT_DTYPE_F32);
    assert_true(op->schema->cost_cb(op, in) == 96);
    assert_true(op->schema->flags & CT_OP_F_RANDOM);
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_dropout_grad_masks_and_scales(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = drop_op(0, 0.25f, "dX", -1);
    Caffe2__OperatorDef *t = drop_op(1, 0.25f, "dX", -1);
    const int64_t d[1] = {4};
    const float dy[4] = {1, 2, 3, 4};
    const bool mask[4] = {true, false, false, true};
    const float *dx;
    ct_status_t st;

    free(op->input[0]);
    op->input = realloc(op->input, 2 * sizeof(char *));
    op->input[0] = strdup("dY");
    op->input[1] = strdup("mask");
    op->n_input = 2;
    free(op->type);
    op->type = strdup("DropoutGrad");
    free(t->input[0]);
    t->input[0] = strdup("dY");
    free(t->type);
    t->type = strdup("DropoutGrad");
    tu_feed_f32(e->ws, "dY", 1, d, dy);
    tu_feed(e->ws, "mask", CT_DTYPE_BOOL, 1, d, mask);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    dx = ct_tensor_cdata(tu_fetch(e->ws, "dX"));
    assert_true(fabsf(dx[0] - 1 / 0.75f) < 1e-6f && dx[1] == 0 && dx[2] == 0 &&
                fabsf(dx[3] - 4 / 0.75f) < 1e-6f);
    assert_int_equal(tu_run_op(e->ws, t, &st), CT_OK);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "dX")), dy, sizeof(dy));
    tu_feed(e->ws, "mask", CT_DTYPE_F32, 1, d, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "mask FLOAT [4] must be BOOL with the 4 elements of dY");
    op->n_input = 1;
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESCHEMA,
                     "needs the mask as input 1");
    op->n_input = 2;
    tu_op_free(op);
    tu_op_free(t);
}

static void test_dropout_gradient_maker(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("g", "X", "");
    const int64_t d[1] = {1000};
    const char *loss = "Y";
    const Caffe2__OperatorDef *g;
    const float *dx;
    const bool *mask;
    ct_netdef_t *def;
    ct_net_t *compiled;
    ct_status_t st;
    int i;

    tu_net_add_op(net, drop_op(0, 0.5f, "Y,mask", -1));
    assert_int_equal(ct_proto_copy(&net->base, (ProtobufCMessage **)&def, &st),
                     CT_OK);
    tu_net_free(net);
    if (ct_netdef_add_gradient_ops(def, &loss, 1, &st) != CT_OK)
        fail_msg("%s", st.msg);
    g = def->op[def->n_op - 1];
    assert_string_equal(g->type, "DropoutGrad");
    assert_int_equal(g->n_input, 2);
    assert_string_equal(g->input[1], "mask");
    tu_feed_f32(e->ws, "X", 1, d, NULL);
    assert_int_equal(ct_net_new(e->ws, def, NULL, &compiled, &st), CT_OK);
    assert_int_equal(ct_net_run(compiled, &st), CT_OK);
    dx = ct_tensor_cdata(tu_fetch(e->ws, "X_grad"));
    mask = ct_tensor_cdata(tu_fetch(e->ws, "mask"));
    for (i = 0; i < 1000; i++)
        assert_true(dx[i] == (mask[i] ? 2.0f : 0.0f));
    ct_net_free(compiled);
    ct_netdef_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_dropout_is_test_copies_input),
        T(test_dropout_is_test_in_place_and_double),
        T(test_dropout_training_scales_kept_values),
        T(test_dropout_same_seed_same_mask_new_run_new_mask),
        T(test_dropout_ratio_zero_keeps_everything),
        T(test_dropout_errors),
        T(test_dropout_infer_gives_bool_mask),
        T(test_dropout_grad_masks_and_scales),
        T(test_dropout_gradient_maker),
#undef T
    };
    return cmocka_run_group_tests_name("ops.dropout", tests, NULL, NULL);
}
