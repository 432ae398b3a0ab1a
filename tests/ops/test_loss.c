/* Tests for ops/loss.c: SquaredL2Distance, AveragedLoss, LabelCrossEntropy
 * and SoftmaxWithLoss (plain labels, weights, label_prob, scale, axis)
 * against double-precision references, their errors with messages, and
 * the gradient of each through the gradient builder checked against
 * central differences in double. */
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

/* ---- helpers ---- */

static double at(const ct_tensor_t *t, int64_t i)
{
    return ct_tensor_dtype(t) == CT_DTYPE_F64
               ? ((const double *)ct_tensor_cdata(t))[i]
               : (double)((const float *)ct_tensor_cdata(t))[i];
}

static void feed_d(ct_workspace_t *ws, const char *name, int nd,
                   const int64_t *dims, const double *v)
{
    tu_feed(ws, name, CT_DTYPE_F64, nd, dims, v);
}

static int run(ct_workspace_t *ws, Caffe2__OperatorDef *op, ct_status_t *st)
{
    int rc = tu_run_op(ws, op, st);

    tu_op_free(op);
    return rc;
}

static void assert_near(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol * (1 + fabs(want))))
        fail_msg("got %.12g, want %.12g", got, want);
}

/* Builds net (taking ownership), adds the gradient of `loss`, and checks
 * d loss / d x for every element of each DOUBLE blob in xs. */
static void grad_check(struct tu_env *e, Caffe2__NetDef *tu, const char *loss,
                       const char *const *xs, int n_xs)
{
    const char *losses[1];
    ProtobufCMessage *m;
    Caffe2__NetDef *def;
    ct_net_t *net;
    ct_status_t st;
    int k;

    losses[0] = loss;
    assert_int_equal(ct_proto_copy(&tu->base, &m, &st), CT_OK);
    tu_net_free(tu);
    def = (Caffe2__NetDef *)m;
    if (ct_netdef_add_gradient_ops(def, losses, 1, &st) != CT_OK)
        fail_msg("gradient: %s", st.msg);
    if (ct_net_new(e->ws, def, NULL, &net, &st) != CT_OK)
        fail_msg("ct_net_new: %s", st.msg);
    for (k = 0; k < n_xs; k++) {
        char gname[128];
        ct_tensor_t *x = tu_fetch(e->ws, xs[k]);
        const int64_t n = ct_tensor_numel(x);
        double *ana = calloc((size_t)n + 1, sizeof(double));
        int64_t i;

        snprintf(gname, sizeof(gname), "%s_grad", xs[k]);
        assert_int_equal(ct_net_run(net, &st), CT_OK);
        for (i = 0; i < n; i++)
            ana[i] = at(tu_fetch(e->ws, gname), i);
        for (i = 0; i < n; i++) {
            double *xi = (double *)ct_tensor_data(x) + i, v = *xi, lp, lm, num;
            *xi = v + 1e-6;
            assert_int_equal(ct_net_run(net, &st), CT_OK);
            lp = at(tu_fetch(e->ws, loss), 0);
            *xi = v - 1e-6;
            assert_int_equal(ct_net_run(net, &st), CT_OK);
            lm = at(tu_fetch(e->ws, loss), 0);
            *xi = v;
            num = (lp - lm) / 2e-6;
            if (fabs(num - ana[i]) > 1e-7 + 1e-6 * fabs(num))
                fail_msg("d%s/d%s[%lld]: numeric %.12g, analytic %.12g", loss,
                         xs[k], (long long)i, num, ana[i]);
        }
        free(ana);
    }
    ct_net_free(net);
    ct_netdef_free(def);
}

static const double X6[6] = {0.3, -1.2, 2.0, 0.5, 0.25, -0.75};
static const double Y6[6] = {1.0, 0.5, -0.5, 0.0, 0.75, 1.5};

/* ---- SquaredL2Distance ---- */

static void test_squared_l2_distance_rows_match_reference(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[3] = {2, 3, 1};
    const ct_tensor_t *out;
    ct_status_t st;
    int i, j;

    feed_d(e->ws, "X", 3, d, X6);
    feed_d(e->ws, "Y", 3, d, Y6);
    assert_int_equal(run(e->ws, tu_op("SquaredL2Distance", "X,Y", "D"), &st),
                     CT_OK);
    out = tu_fetch(e->ws, "D");
    assert_int_equal(ct_tensor_ndim(out), 1);
    assert_int_equal(ct_tensor_dim(out, 0), 2);
    for (i = 0; i < 2; i++) {
        double want = 0;
        for (j = 0; j < 3; j++)
            want += 0.5 * (X6[i * 3 + j] - Y6[i * 3 + j]) *
                    (X6[i * 3 + j] - Y6[i * 3 + j]);
        assert_near(at(out, i), want, 1e-15);
    }
}

static void test_squared_l2_distance_float_and_1d(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[1] = {3};
    const float x[3] = {1, 2, 3}, y[3] = {0, 4, 3};
    const ct_tensor_t *out;
    ct_status_t st;

    tu_feed_f32(e->ws, "X", 1, d, x);
    tu_feed_f32(e->ws, "Y", 1, d, y);
    assert_int_equal(run(e->ws, tu_op("SquaredL2Distance", "X,Y", "D"), &st),
                     CT_OK);
    out = tu_fetch(e->ws, "D");
    assert_int_equal(ct_tensor_dtype(out), CT_DTYPE_F32);
    assert_near(at(out, 0), 0.5, 0);
    assert_near(at(out, 1), 2.0, 0);
    assert_near(at(out, 2), 0.0, 0);
}

static void test_squared_l2_distance_mismatch_returns_errors(void **state)
{
    struct tu_env *e = *state;
    const int64_t d23[2] = {2, 3}, d32[2] = {3, 2};
    ct_status_t st;

    feed_d(e->ws, "X", 2, d23, X6);
    feed_d(e->ws, "Y", 2, d32, Y6);
    tu_assert_status(&st,
                     run(e->ws, tu_op("SquaredL2Distance", "X,Y", "D"), &st),
                     CT_ESHAPE, "X [2, 3] and Y [3, 2] must have one shape");
    tu_feed(e->ws, "Y", CT_DTYPE_F32, 2, d23, NULL);
    tu_assert_status(&st,
                     run(e->ws, tu_op("SquaredL2Distance", "X,Y", "D"), &st),
                     CT_ETYPE, "input 1 \"Y\" is FLOAT; DOUBLE expected");
    tu_feed(e->ws, "Z", CT_DTYPE_I32, 2, d23, NULL);
    tu_assert_status(&st,
                     run(e->ws, tu_op("SquaredL2Distance", "Z,Z", "D"), &st),
                     CT_ENOTSUP, "input 0 \"Z\" is INT32; FLOAT or DOUBLE");
}

static void test_squared_l2_distance_gradient_matches_numeric(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *tu = tu_net("n", "X,Y", "L");
    const int64_t d[2] = {2, 3};
    const char *xs[2] = {"X", "Y"};

    feed_d(e->ws, "X", 2, d, X6);
    feed_d(e->ws, "Y", 2, d, Y6);
    tu_net_add_op(tu, tu_op("SquaredL2Distance", "X,Y", "D"));
    tu_net_add_op(tu, tu_op("AveragedLoss", "D", "L"));
    grad_check(e, tu, "L", xs, 2);
}

/* ---- AveragedLoss ---- */

static void test_averaged_loss_is_a_scalar_mean(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {2, 3}, d0[1] = {0};
    const ct_tensor_t *out;
    ct_status_t st;

    feed_d(e->ws, "X", 2, d, X6);
    assert_int_equal(run(e->ws, tu_op("AveragedLoss", "X", "L"), &st), CT_OK);
    out = tu_fetch(e->ws, "L");
    assert_int_equal(ct_tensor_ndim(out), 0);
    assert_near(at(out, 0), (0.3 - 1.2 + 2.0 + 0.5 + 0.25 - 0.75) / 6, 1e-15);
    tu_feed(e->ws, "E", CT_DTYPE_F32, 1, d0, NULL);
    assert_int_equal(run(e->ws, tu_op("AveragedLoss", "E", "L"), &st), CT_OK);
    assert_near(at(tu_fetch(e->ws, "L"), 0), 0, 0);
}

static void test_averaged_loss_gradient_matches_numeric(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *tu = tu_net("n", "X", "L");
    const int64_t d[2] = {2, 3};
    const char *xs[1] = {"X"};

    feed_d(e->ws, "X", 2, d, X6);
    tu_net_add_op(tu, tu_op("Tanh", "X", "T"));
    tu_net_add_op(tu, tu_op("AveragedLoss", "T", "L"));
    grad_check(e, tu, "L", xs, 1);
}

/* ---- LabelCrossEntropy ---- */

static void test_label_cross_entropy_matches_reference(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {3, 2}, dl[2] = {3, 1};
    const double p[6] = {0.2, 0.8, 0.5, 0.5, 0.0, 1.0};
    const int64_t lab[3] = {1, 0, 0};
    const ct_tensor_t *out;
    ct_status_t st;

    feed_d(e->ws, "P", 2, d, p);
    tu_feed(e->ws, "lab", CT_DTYPE_I64, 2, dl, lab); /* [N, 1] works too */
    assert_int_equal(run(e->ws, tu_op("LabelCrossEntropy", "P,lab", "Y"), &st),
                     CT_OK);
    out = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_dim(out, 0), 3);
    assert_near(at(out, 0), -log(0.8), 1e-15);
    assert_near(at(out, 1), -log(0.5), 1e-15);
    assert_near(at(out, 2), -log(1e-20), 1e-15); /* clipped */
}

static void test_label_cross_entropy_bad_label_returns_einval(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {3, 2}, dl[1] = {3}, d2[1] = {2};
    const double p[6] = {0.2, 0.8, 0.5, 0.5, 0.0, 1.0};
    const int32_t lab[3] = {1, 2, 0};
    ct_status_t st;

    feed_d(e->ws, "P", 2, d, p);
    tu_feed(e->ws, "lab", CT_DTYPE_I32, 1, dl, lab);
    tu_assert_status(&st,
                     run(e->ws, tu_op("LabelCrossEntropy", "P,lab", "Y"), &st),
                     CT_EINVAL, "label 2 of row 1 is out of range [0, 2)");
    tu_feed(e->ws, "lab", CT_DTYPE_I32, 1, d2, lab);
    tu_assert_status(&st,
                     run(e->ws, tu_op("LabelCrossEntropy", "P,lab", "Y"), &st),
                     CT_ESHAPE, "has 2 entries; one per row (3) expected");
    tu_feed(e->ws, "lab", CT_DTYPE_F32, 1, dl, NULL);
    tu_assert_status(&st,
                     run(e->ws, tu_op("LabelCrossEntropy", "P,lab", "Y"), &st),
                     CT_ETYPE, "is FLOAT; INT32 or INT64 expected");
}

static void test_label_cross_entropy_gradient_matches_numeric(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *tu = tu_net("n", "X,lab", "L");
    const int64_t d[2] = {2, 3}, dl[1] = {2};
    const int32_t lab[2] = {2, 0};
    const char *xs[1] = {"X"};

    feed_d(e->ws, "X", 2, d, X6);
    tu_feed(e->ws, "lab", CT_DTYPE_I32, 1, dl, lab);
    tu_net_add_op(tu, tu_op("Sigmoid", "X", "P"));
    tu_net_add_op(tu, tu_op("LabelCrossEntropy", "P,lab", "CE"));
    tu_net_add_op(tu, tu_op("AveragedLoss", "CE", "L"));
    grad_check(e, tu, "L", xs, 1);
}

/* ---- SoftmaxWithLoss ---- */

/* Reference loss and softmax in double. */
static double swl_ref(const double *x, int n, int d, const int *lab,
                      const double *prob, const double *w, double scale,
                      double *p)
{
    double loss = 0, wsum = 0;
    int i, j;

    for (i = 0; i < n; i++) {
        double mx = x[i * d], s = 0, li = 0, wi = w ? w[i] : 1;
        for (j = 1; j < d; j++)
            mx = fmax(mx, x[i * d + j]);
        for (j = 0; j < d; j++)
            s += exp(x[i * d + j] - mx);
        for (j = 0; j < d; j++)
            p[i * d + j] = exp(x[i * d + j] - mx) / s;
        if (prob == NULL)
            li = -log(fmax(p[i * d + lab[i]], 1e-20));
        else
            for (j = 0; j < d; j++)
                li -= log(fmax(p[i * d + j], 1e-20)) * prob[i * d + j];
        loss += li * wi;
        wsum += wi;
    }
    return wsum != 0 ? loss * scale / wsum : 0;
}

static void test_softmax_with_loss_plain_matches_reference(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {2, 3}, dl[1] = {2};
    const int32_t lab[2] = {2, 1};
    const int labi[2] = {2, 1};
    double p[6], want;
    Caffe2__OperatorDef *op;
    ct_status_t st;
    int i;

    feed_d(e->ws, "X", 2, d, X6);
    tu_feed(e->ws, "T", CT_DTYPE_I32, 1, dl, lab);
    op = tu_op("SoftmaxWithLoss", "X,T", "P,L");
    tu_arg_f(op, "scale", 2.0f);
    assert_int_equal(run(e->ws, op, &st), CT_OK);
    want = swl_ref(X6, 2, 3, labi, NULL, NULL, 2.0, p);
    assert_int_equal(ct_tensor_ndim(tu_fetch(e->ws, "L")), 0);
    assert_near(at(tu_fetch(e->ws, "L"), 0), want, 1e-14);
    for (i = 0; i < 6; i++)
        assert_near(at(tu_fetch(e->ws, "P"), i), p[i], 1e-15);
}

static void test_softmax_with_loss_weights_and_large_logits(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {3, 2}, dn[1] = {3};
    const float x[6] = {1000, -1000, 0, 0, -500, 500};
    const float w[3] = {1, 0.5f, 2};
    const int32_t lab[3] = {0, 1, 0};
    ct_status_t st;
    double loss;

    tu_feed_f32(e->ws, "X", 2, d, x);
    tu_feed(e->ws, "T", CT_DTYPE_I32, 1, dn, lab);
    tu_feed_f32(e->ws, "W", 1, dn, w);
    assert_int_equal(run(e->ws, tu_op("SoftmaxWithLoss", "X,T,W", "P,L"), &st),
                     CT_OK);
    /* Row 0 is certain (loss 0), row 1 is log 2, row 2 hits the clip. */
    loss = (0 * 1 + log(2.0) * 0.5 + -log(1e-20) * 2) / 3.5;
    assert_near(at(tu_fetch(e->ws, "L"), 0), loss, 1e-6);
    assert_near(at(tu_fetch(e->ws, "P"), 0), 1, 0);
    assert_near(at(tu_fetch(e->ws, "P"), 1), 0, 0);
}

static void test_softmax_with_loss_zero_weights_give_zero(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {2, 3}, dn[1] = {2};
    const double w[2] = {0, 0};
    const int32_t lab[2] = {0, 1};
    ct_status_t st;

    feed_d(e->ws, "X", 2, d, X6);
    tu_feed(e->ws, "T", CT_DTYPE_I32, 1, dn, lab);
    feed_d(e->ws, "W", 1, dn, w);
    assert_int_equal(run(e->ws, tu_op("SoftmaxWithLoss", "X,T,W", "P,L"), &st),
                     CT_OK);
    assert_near(at(tu_fetch(e->ws, "L"), 0), 0, 0);
}

static void test_softmax_with_loss_label_prob_and_axis(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[3] = {1, 2, 3};
    const double prob[6] = {0.2, 0.3, 0.5, 1.0, 0.0, 0.0};
    Caffe2__OperatorDef *op;
    ct_status_t st;
    double p[6], want;

    feed_d(e->ws, "X", 3, d, X6);
    feed_d(e->ws, "T", 3, d, prob);
    op = tu_op("SoftmaxWithLoss", "X,T", "P,L");
    tu_arg_i(op, "label_prob", 1);
    tu_arg_i(op, "axis", 2); /* rows: the first two dims, N = 2 */
    assert_int_equal(run(e->ws, op, &st), CT_OK);
    want = swl_ref(X6, 2, 3, NULL, prob, NULL, 1.0, p);
    assert_near(at(tu_fetch(e->ws, "L"), 0), want, 1e-14);
}

static void test_softmax_with_loss_bad_labels_return_errors(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {2, 3}, dn[1] = {2};
    const int32_t lab[2] = {0, 3};
    const double prob[6] = {0.2, 0.3, 0.5, 0.9, 0.0, 0.0};
    Caffe2__OperatorDef *op;
    ct_status_t st;

    feed_d(e->ws, "X", 2, d, X6);
    tu_feed(e->ws, "T", CT_DTYPE_I32, 1, dn, lab);
    tu_assert_status(&st,
                     run(e->ws, tu_op("SoftmaxWithLoss", "X,T", "P,L"), &st),
                     CT_EINVAL, "label 3 of row 1 is out of range [0, 3)");
    feed_d(e->ws, "T", 2, d, prob);
    op = tu_op("SoftmaxWithLoss", "X,T", "P,L");
    tu_arg_i(op, "label_prob", 1);
    tu_assert_status(&st, run(e->ws, op, &st), CT_EINVAL,
                     "label_prob: row 1 of T sums to 0.9");
    op = tu_op("SoftmaxWithLoss", "X,T", "P,L");
    tu_arg_i(op, "spatial", 1);
    tu_assert_status(&st, run(e->ws, op, &st), CT_ENOTSUP,
                     "spatial=1 is not supported");
    op = tu_op("SoftmaxWithLoss", "X,T", "P,L");
    tu_arg_i(op, "label_prob", 2);
    tu_assert_status(&st, run(e->ws, op, &st), CT_EARG,
                     "label_prob=2 must be 0 or 1");
}

static void test_softmax_with_loss_gradient_matches_numeric(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[2] = {2, 3}, dn[1] = {2};
    const int32_t lab[2] = {2, 0};
    const double w[2] = {0.25, 1.5};
    const double prob[6] = {0.2, 0.3, 0.5, 0.6, 0.4, 0.0};
    const char *xs[1] = {"X"};
    Caffe2__NetDef *tu;
    Caffe2__OperatorDef *op;

    feed_d(e->ws, "X", 2, d, X6);
    tu_feed(e->ws, "T", CT_DTYPE_I32, 1, dn, lab);
    feed_d(e->ws, "W", 1, dn, w);
    feed_d(e->ws, "Tp", 2, d, prob);
    /* Plain labels, scale 3. */
    tu = tu_net("a", "X,T", "L");
    op = tu_op("SoftmaxWithLoss", "X,T", "P,L");
    tu_arg_f(op, "scale", 3.0f);
    tu_net_add_op(tu, op);
    grad_check(e, tu, "L", xs, 1);
    /* Weighted. */
    tu = tu_net("b", "X,T,W", "L");
    tu_net_add_op(tu, tu_op("SoftmaxWithLoss", "X,T,W", "P,L"));
    grad_check(e, tu, "L", xs, 1);
    /* Probabilities. */
    tu = tu_net("c", "X,Tp", "L");
    op = tu_op("SoftmaxWithLoss", "X,Tp", "P,L");
    tu_arg_i(op, "label_prob", 1);
    tu_net_add_op(tu, op);
    grad_check(e, tu, "L", xs, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squared_l2_distance_rows_match_reference),
        cmocka_unit_test(test_squared_l2_distance_float_and_1d),
        cmocka_unit_test(test_squared_l2_distance_mismatch_returns_errors),
        cmocka_unit_test(test_squared_l2_distance_gradient_matches_numeric),
        cmocka_unit_test(test_averaged_loss_is_a_scalar_mean),
        cmocka_unit_test(test_averaged_loss_gradient_matches_numeric),
        cmocka_unit_test(test_label_cross_entropy_matches_reference),
        cmocka_unit_test(test_label_cross_entropy_bad_label_returns_einval),
        cmocka_unit_test(test_label_cross_entropy_gradient_matches_numeric),
        cmocka_unit_test(test_softmax_with_loss_plain_matches_reference),
        cmocka_unit_test(test_softmax_with_loss_weights_and_large_logits),
        cmocka_unit_test(test_softmax_with_loss_zero_weights_give_zero),
        cmocka_unit_test(test_softmax_with_loss_label_prob_and_axis),
        cmocka_unit_test(test_softmax_with_loss_bad_labels_return_errors),
        cmocka_unit_test(test_softmax_with_loss_gradient_matches_numeric),
    };

    return cmocka_run_group_tests_name("ops.loss", tests, setup, teardown);
}
