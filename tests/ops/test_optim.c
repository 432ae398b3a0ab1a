/* Tests for ops/optim.c: WeightedSum (pairs, in place, errors), Iter
 * (in place, the old single-output form, copy on write, every error),
 * LearningRate (each policy against its formula, argument errors) and
 * MomentumSGDUpdate (plain and nesterov against the formula, in place,
 * errors), plus the gradient builder's view of them. */
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
#include "cortado/proto.h"
#include "test_util.h"

/* ---- fixtures ---- */

static int setup(void **state)
{
    struct tu_env *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return -1;
    tu_env_init(e);
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

static int run(ct_workspace_t *ws, Caffe2__OperatorDef *op, ct_status_t *st)
{
    int rc = tu_run_op(ws, op, st);

    tu_op_free(op);
    return rc;
}

static const float *fdata(ct_workspace_t *ws, const char *name)
{
    return ct_tensor_cdata(tu_fetch(ws, name));
}

static void feed_scalar(ct_workspace_t *ws, const char *name, float v)
{
    const int64_t one = 1;

    tu_feed_f32(ws, name, 1, &one, &v);
}

static void feed_iter(ct_workspace_t *ws, const char *name, int64_t v)
{
    const int64_t one = 1;

    tu_feed(ws, name, CT_DTYPE_I64, 1, &one, &v);
}

/* ---- WeightedSum ---- */

static void test_weighted_sum_pairs_match_formula(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {2, 3};
    const float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {-1, 0, 1, 2, 3, 4},
                c[6] = {0.5f, 0.5f, 0.5f, 1, 1, 1};
    const float *y;
    ct_status_t st;
    int i;

    tu_feed_f32(e->ws, "A", 2, d, a);
    tu_feed_f32(e->ws, "B", 2, d, b);
    tu_feed_f32(e->ws, "C", 2, d, c);
    feed_scalar(e->ws, "wa", 2);
    feed_scalar(e->ws, "wb", -0.5f);
    feed_scalar(e->ws, "wc", 4);
    assert_int_equal(
        run(e->ws, tu_op("WeightedSum", "A,wa,B,wb,C,wc", "Y"), &st), CT_OK);
    y = fdata(e->ws, "Y");
    for (i = 0; i < 6; i++)
        assert_true(y[i] == 2 * a[i] - 0.5f * b[i] + 4 * c[i]);
    assert_int_equal(run(e->ws, tu_op("WeightedSum", "A,wa", "Y"), &st), CT_OK);
    y = fdata(e->ws, "Y");
    for (i = 0; i < 6; i++)
        assert_true(y[i] == 2 * a[i]);
}

static void test_weighted_sum_sgd_update_in_place(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[1] = {4};
    const float p[4] = {1, 2, 3, 4}, g[4] = {0.5f, -1, 2, 0};
    const float *y;
    ct_status_t st;
    int i;

    tu_feed_f32(e->ws, "param", 1, d, p);
    tu_feed_f32(e->ws, "grad", 1, d, g);
    feed_scalar(e->ws, "ONE", 1);
    feed_scalar(e->ws, "LR", -0.1f);
    assert_int_equal(
        run(e->ws, tu_op("WeightedSum", "param,ONE,grad,LR", "param"), &st),
        CT_OK);
    y = fdata(e->ws, "param");
    for (i = 0; i < 4; i++)
        assert_true(y[i] == p[i] + -0.1f * g[i]);
}

static void test_weighted_sum_bad_inputs_return_errors(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[1] = {4}, d2[1] = {2}, d3[1] = {3};
    ct_status_t st;

    tu_feed_f32(e->ws, "A", 1, d, NULL);
    tu_feed_f32(e->ws, "B", 1, d3, NULL);
    tu_feed_f32(e->ws, "w2", 1, d2, NULL);
    feed_scalar(e->ws, "w", 1);
    tu_assert_status(&st, run(e->ws, tu_op("WeightedSum", "A,w,B", "Y"), &st),
                     CT_ESCHEMA, "got 3 inputs, an odd count");
    tu_assert_status(&st, run(e->ws, tu_op("WeightedSum", "A,w,B,w", "Y"), &st),
                     CT_ESHAPE, "input 2 \"B\" [3] must have X0's shape [4]");
    tu_assert_status(&st, run(e->ws, tu_op("WeightedSum", "A,w2", "Y"), &st),
                     CT_ESHAPE, "weight 0 \"w2\" has 2 elements; one");
    tu_feed(e->ws, "I", CT_DTYPE_I32, 1, d, NULL);
    tu_assert_status(&st, run(e->ws, tu_op("WeightedSum", "I,w", "Y"), &st),
                     CT_ENOTSUP, "unsupported dtype INT32");
}

/* ---- Iter ---- */

static void test_iter_in_place_counts_up(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Iter", "it", "it");
    ct_status_t st;
    int k;

    feed_iter(e->ws, "it", 0);
    for (k = 1; k <= 3; k++) {
        assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
        assert_int_equal(
            ((const int64_t *)ct_tensor_cdata(tu_fetch(e->ws, "it")))[0], k);
    }
    tu_op_free(op);
}

static void test_iter_without_input_starts_at_zero(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Iter", "", "fresh");
    const ct_tensor_t *t;
    ct_status_t st;

    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    t = tu_fetch(e->ws, "fresh");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_I64);
    assert_int_equal(ct_tensor_numel(t), 1);
    assert_int_equal(((const int64_t *)ct_tensor_cdata(t))[0], 1);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_int_equal(
        ((const int64_t *)ct_tensor_cdata(tu_fetch(e->ws, "fresh")))[0], 2);
    tu_op_free(op);
}

static void test_iter_copies_on_write_when_storage_is_shared(void **state)
{
    struct tu_env *e = *state;
    ct_tensor_t *snap;
    ct_status_t st;

    feed_iter(e->ws, "it", 41);
    assert_int_equal(ct_tensor_new(e->eng, &snap, &st), CT_OK);
    ct_tensor_share(snap, tu_fetch(e->ws, "it")); /* like a checkpoint */
    assert_int_equal(run(e->ws, tu_op("Iter", "it", "it"), &st), CT_OK);
    assert_int_equal(
        ((const int64_t *)ct_tensor_cdata(tu_fetch(e->ws, "it")))[0], 42);
    assert_int_equal(((const int64_t *)ct_tensor_cdata(snap))[0], 41);
    ct_tensor_free(snap);
}

static void test_iter_bad_counters_return_errors(void **state)
{
    struct tu_env *e = *state;
    const int64_t two[1] = {2};
    ct_status_t st;

    feed_iter(e->ws, "it", 0);
    tu_assert_status(&st, run(e->ws, tu_op("Iter", "it", "other"), &st),
                     CT_ESCHEMA,
                     "Iter must run in place: input 0 \"it\" and output 0 "
                     "\"other\" differ");
    feed_iter(e->ws, "it", -1);
    tu_assert_status(&st, run(e->ws, tu_op("Iter", "it", "it"), &st), CT_EINVAL,
                     "previous iteration number -1 is negative");
    feed_iter(e->ws, "it", INT64_MAX);
    tu_assert_status(&st, run(e->ws, tu_op("Iter", "it", "it"), &st),
                     CT_EOVERFLOW, "INT64_MAX");
    tu_feed(e->ws, "it", CT_DTYPE_I32, 1, two, NULL);
    tu_assert_status(&st, run(e->ws, tu_op("Iter", "it", "it"), &st), CT_ETYPE,
                     "\"it\" is INT32; INT64 expected");
    tu_feed(e->ws, "it", CT_DTYPE_I64, 1, two, NULL);
    tu_assert_status(&st, run(e->ws, tu_op("Iter", "it", "it"), &st), CT_ESHAPE,
                     "has 2 elements; one expected");
}

/* ---- LearningRate ---- */

static float lr_at(struct tu_env *e, Caffe2__OperatorDef *op, int64_t iter)
{
    const ct_tensor_t *t;
    ct_status_t st;

    feed_iter(e->ws, "it", iter);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("LearningRate: %s", st.msg);
    t = tu_fetch(e->ws, "lr");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_F32);
    assert_int_equal(ct_tensor_numel(t), 1);
    return ((const float *)ct_tensor_cdata(t))[0];
}

static void test_learning_rate_policies_match_formulas(void **state)
{
    struct tu_env *e = *state;
    static const int64_t iters[] = {0, 1, 2, 3, 7, 10, 100, 12345};
    Caffe2__OperatorDef *fixed, *step, *expo, *inv;
    size_t k;

    fixed = tu_op("LearningRate", "it", "lr");
    tu_arg_f(fixed, "base_lr", -0.1f);
    tu_arg_s(fixed, "policy", "fixed");
    step = tu_op("LearningRate", "it", "lr");
    tu_arg_f(step, "base_lr", 0.5f);
    tu_arg_s(step, "policy", "step");
    tu_arg_i(step, "stepsize", 3);
    tu_arg_f(step, "gamma", 0.5f);
    expo = tu_op("LearningRate", "it", "lr");
    tu_arg_f(expo, "base_lr", 0.01f);
    tu_arg_s(expo, "policy", "exp");
    tu_arg_f(expo, "gamma", 0.999f);
    inv = tu_op("LearningRate", "it", "lr");
    tu_arg_f(inv, "base_lr", 0.01f);
    tu_arg_s(inv, "policy", "inv");
    tu_arg_f(inv, "gamma", 1e-4f);
    tu_arg_f(inv, "power", 0.75f);
    for (k = 0; k < sizeof(iters) / sizeof(iters[0]); k++) {
        const int64_t it = iters[k];
        assert_true(lr_at(e, fixed, it) == -0.1f);
        assert_true(lr_at(e, step, it) ==
                    (float)(0.5f * pow(0.5f, (double)(it / 3))));
        assert_true(lr_at(e, expo, it) ==
                    (float)(0.01f * pow(0.999f, (double)it)));
        assert_true(lr_at(e, inv, it) ==
                    (float)(0.01f * pow(1.0 + 1e-4f * (double)it, -0.75f)));
    }
    tu_op_free(fixed);
    tu_op_free(step);
    tu_op_free(expo);
    tu_op_free(inv);
}

static void expect_lr_error(struct tu_env *e, const char *policy,
                            const char *arg, double v, bool as_float, int code,
                            const char *needle)
{
    Caffe2__OperatorDef *op = tu_op("LearningRate", "it", "lr");
    ct_status_t st;

    tu_arg_f(op, "base_lr", 0.1f);
    if (policy != NULL)
        tu_arg_s(op, "policy", policy);
    if (arg != NULL && as_float)
        tu_arg_f(op, arg, (float)v);
    else if (arg != NULL)
        tu_arg_i(op, arg, (int64_t)v);
    feed_iter(e->ws, "it", 0);
    tu_assert_status(&st, run(e->ws, op, &st), code, needle);
}

static void test_learning_rate_bad_arguments_return_earg(void **state)
{
    struct tu_env *e = *state;

    expect_lr_error(e, "poly", NULL, 0, false, CT_EARG,
                    "policy \"poly\" is not supported (fixed, step, exp, "
                    "inv)");
    expect_lr_error(e, NULL, NULL, 0, false, CT_EARG,
                    "Required argument policy is not provided");
    expect_lr_error(e, "step", "gamma", 0.5, true, CT_EARG,
                    "policy \"step\": argument stepsize=0 must be > 0");
    expect_lr_error(e, "step", "stepsize", -3, false, CT_EARG,
                    "stepsize=-3 must be > 0");
    expect_lr_error(e, "exp", "gamma", -1, true, CT_EARG,
                    "policy \"exp\": argument gamma=-1 must be finite and > 0");
    expect_lr_error(e, "inv", "gamma", 0.1, true, CT_EARG,
                    "argument power=0 must be finite and > 0");
}

static void test_learning_rate_negative_iter_returns_einval(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("LearningRate", "it", "lr");
    ct_status_t st;

    tu_arg_f(op, "base_lr", 0.1f);
    tu_arg_s(op, "policy", "fixed");
    feed_iter(e->ws, "it", -5);
    tu_assert_status(&st, run(e->ws, op, &st), CT_EINVAL,
                     "iteration -5 is negative");
}

/* ---- MomentumSGDUpdate ---- */

static void check_msgd(struct tu_env *e, bool nesterov)
{
    const int64_t d[2] = {2, 2};
    const float g[4] = {0.5f, -1, 2, 0.25f}, m[4] = {0.1f, 0.2f, -0.3f, 0};
    const float p[4] = {1, 2, 3, 4};
    const float lr = 0.05f, mu = 0.9f;
    Caffe2__OperatorDef *op;
    const float *ng, *nm, *np;
    ct_status_t st;
    int i;

    tu_feed_f32(e->ws, "g", 2, d, g);
    tu_feed_f32(e->ws, "m", 2, d, m);
    tu_feed_f32(e->ws, "p", 2, d, p);
    feed_scalar(e->ws, "lr", lr);
    op = tu_op("MomentumSGDUpdate", "g,m,lr,p", "g,m,p");
    tu_arg_f(op, "momentum", mu);
    tu_arg_i(op, "nesterov", nesterov);
    assert_int_equal(run(e->ws, op, &st), CT_OK);
    ng = fdata(e->ws, "g");
    nm = fdata(e->ws, "m");
    np = fdata(e->ws, "p");
    for (i = 0; i < 4; i++) {
        float a, b;
        if (!nesterov) {
            a = lr * g[i] + mu * m[i];
            b = a;
        } else {
            a = mu * m[i] + lr * g[i];
            b = (1 + mu) * a - mu * m[i];
        }
        assert_true(nm[i] == a);
        assert_true(ng[i] == b);
        assert_true(np[i] == p[i] - b);
    }
}

static void test_momentum_sgd_update_matches_formula(void **state)
{
    check_msgd(*state, false);
    check_msgd(*state, true);
}

static void test_momentum_sgd_update_bad_inputs_return_errors(void **state)
{
    struct tu_env *e = *state;
    const int64_t d4[1] = {4}, d3[1] = {3}, d2[1] = {2};
    Caffe2__OperatorDef *op;
    ct_status_t st;

    tu_feed_f32(e->ws, "g", 1, d4, NULL);
    tu_feed_f32(e->ws, "m", 1, d3, NULL);
    tu_feed_f32(e->ws, "p", 1, d4, NULL);
    feed_scalar(e->ws, "lr", 0.1f);
    tu_assert_status(
        &st, run(e->ws, tu_op("MomentumSGDUpdate", "g,m,lr,p", "g,m,p"), &st),
        CT_ESHAPE, "one element count: 4, 3, 4");
    tu_feed_f32(e->ws, "m", 1, d4, NULL);
    tu_feed_f32(e->ws, "lr", 1, d2, NULL);
    tu_assert_status(
        &st, run(e->ws, tu_op("MomentumSGDUpdate", "g,m,lr,p", "g,m,p"), &st),
        CT_ESHAPE, "lr \"lr\" has 2 elements; one expected");
    op = tu_op("MomentumSGDUpdate", "g,m,lr,p", "g,m,p");
    tu_arg_i(op, "nesterov", 3);
    tu_assert_status(&st, run(e->ws, op, &st), CT_EARG,
                     "nesterov=3 must be 0 or 1");
    tu_assert_status(
        &st, run(e->ws, tu_op("MomentumSGDUpdate", "g,m,lr,p", "m,g,p"), &st),
        CT_ESCHEMA, "in-place");
}

/* ---- the gradient builder and training ops ---- */

static void test_training_ops_stop_or_refuse_gradients(void **state)
{
    Caffe2__NetDef *tu = tu_net("n", "it,X", "L");
    const char *loss[1] = {"L"};
    ProtobufCMessage *m;
    Caffe2__NetDef *def;
    ct_status_t st;
    Caffe2__OperatorDef *op;

    (void)state;
    /* Iter and LearningRate stop the gradient: lr gets none, X does. */
    tu_net_add_op(tu, tu_op("Iter", "it", "it"));
    op = tu_op("LearningRate", "it", "lr");
    tu_arg_f(op, "base_lr", 0.1f);
    tu_arg_s(op, "policy", "fixed");
    tu_net_add_op(tu, op);
    tu_net_add_op(tu, tu_op("Mul", "X,lr", "Y"));
    tu_net_add_op(tu, tu_op("AveragedLoss", "Y", "L"));
    assert_int_equal(ct_proto_copy(&tu->base, &m, &st), CT_OK);
    tu_net_free(tu);
    def = (Caffe2__NetDef *)m;
    assert_int_equal(ct_netdef_add_gradient_ops(def, loss, 1, &st), CT_OK);
    assert_int_equal(def->n_op, 4 + 3); /* seed, AveragedLoss, Mul grads */
    ct_netdef_free(def);
    /* WeightedSum refuses. */
    tu = tu_net("n", "X,w", "L");
    tu_net_add_op(tu, tu_op("WeightedSum", "X,w", "Y"));
    tu_net_add_op(tu, tu_op("AveragedLoss", "Y", "L"));
    assert_int_equal(ct_proto_copy(&tu->base, &m, &st), CT_OK);
    tu_net_free(tu);
    def = (Caffe2__NetDef *)m;
    tu_assert_status(&st, ct_netdef_add_gradient_ops(def, loss, 1, &st),
                     CT_ENOTSUP, "WeightedSum has no gradient");
    ct_netdef_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_sum_pairs_match_formula),
        cmocka_unit_test(test_weighted_sum_sgd_update_in_place),
        cmocka_unit_test(test_weighted_sum_bad_inputs_return_errors),
        cmocka_unit_test(test_iter_in_place_counts_up),
        cmocka_unit_test(test_iter_without_input_starts_at_zero),
        cmocka_unit_test(test_iter_copies_on_write_when_storage_is_shared),
        cmocka_unit_test(test_iter_bad_counters_return_errors),
        cmocka_unit_test(test_learning_rate_policies_match_formulas),
        cmocka_unit_test(test_learning_rate_bad_arguments_return_earg),
        cmocka_unit_test(test_learning_rate_negative_iter_returns_einval),
        cmocka_unit_test(test_momentum_sgd_update_matches_formula),
        cmocka_unit_test(test_momentum_sgd_update_bad_inputs_return_errors),
        cmocka_unit_test(test_training_ops_stop_or_refuse_gradients),
    };

    return cmocka_run_group_tests_name("ops.optim", tests, setup, teardown);
}
