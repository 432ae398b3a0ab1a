/* Tests for the gradients of Do / If / While (ops/do_op.c, ops/if_while.c,
 * engine/gradient.c's subnet builds) and the comparison ops
 * (ops/compare.c).
 *
 * Caffe2's gradient_check_test.py testWhile is rebuilt as the NetDef that
 * NetBuilder(_use_control_ops=True) makes of it (a While whose body Do
 * holds an If/Else of Dos, CreateScope before each control op), with Mul
 * in place of Pow (cortado has no Pow): x = 2 squared twice is 16 with
 * x_grad 4 x^3 = 32, y = 3 squared once is 9 with y_grad 6, z = 2 cubed
 * once is 8 with z_grad 12. testIf trains two linear models selected by
 * a random switch through If/Else of Dos and checks the learnt weights.
 * Numeric finite-difference checks cover the If and While gradients
 * (both branches; carried and accumulated loop gradients), and the
 * error paths cover unsupported While bodies, a condition overwritten
 * before the gradient could read it, and reuse_workspace.
 */
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

static ct_netdef_t *parse(const char *txt)
{
    ct_netdef_t *def = NULL;
    ct_status_t st = {0};

    if (ct_netdef_parse(txt, strlen(txt), CT_PROTO_TEXT, &def, &st) != CT_OK)
        fail_msg("parse: %s", st.msg);
    return def;
}

/* Parses txt, adds the gradient of `loss`, compiles it in ws. */
static ct_net_t *grad_net(ct_workspace_t *ws, const char *txt, const char *loss)
{
    ct_netdef_t *def = parse(txt);
    ct_net_t *net = NULL;
    ct_status_t st = {0};

    if (ct_netdef_add_gradient_ops(def, &loss, 1, &st) != CT_OK)
        fail_msg("gradient: %s", st.msg);
    if (ct_net_new(ws, def, NULL, &net, &st) != CT_OK)
        fail_msg("compile: %s", st.msg);
    ct_netdef_free(def);
    return net;
}

static void run(ct_net_t *net)
{
    ct_status_t st = {0};

    if (ct_net_run(net, &st) != CT_OK)
        fail_msg("run: %s", st.msg);
}

static float f32(ct_workspace_t *ws, const char *name)
{
    return *(const float *)ct_tensor_cdata(tu_fetch(ws, name));
}

static void feed_scalar(ct_workspace_t *ws, const char *name, float v)
{
    const int64_t d[1] = {1};

    tu_feed_f32(ws, name, 1, d, &v);
}

static void feed_i32(ct_workspace_t *ws, const char *name, int32_t v)
{
    const int64_t d[1] = {1};

    tu_feed(ws, name, CT_DTYPE_I32, 1, d, &v);
}

/* Adds the gradient of `loss` to txt and returns the status code. */
static int grad_rc(const char *txt, const char *loss, ct_status_t *st)
{
    ct_netdef_t *def = parse(txt);
    int rc = ct_netdef_add_gradient_ops(def, &loss, 1, st);

    ct_netdef_free(def);
    return rc;
}

/* ---- testWhile ---- */

/* The body Do and its If/Else as NetBuilder emits them. */
#define WHILE_BODY(BODY_COPY)                                                  \
    "  arg { name: \"loop_net\" n { name: \"do_loop_body_net\"\n"              \
    "    op { type: \"Do\" input: \"x\" input: \"y\" input: \"z\"\n"           \
    "         input: \"i\" input: \"two\" input: \"loop_scope\"\n"             \
    "         output: \"x\" output: \"y\" output: \"z\"\n"                     \
    "         output: \"loop_scope\"\n"                                        \
    "      arg { name: \"net\" n { name: \"loop_body\"\n"                      \
    "        op { type: \"Mul\" input: \"x\" input: \"x\" output: \"x\" }\n"   \
    "        op { type: \"LT\" input: \"i\" input: \"two\"\n"                  \
    "             output: \"lt\" }\n"                                          \
    "        op { type: \"CreateScope\" output: \"then_scope\" }\n"            \
    "        op { type: \"CreateScope\" output: \"else_scope\" }\n"            \
    "        op { type: \"If\" input: \"lt\" input: \"y\" input: \"z\"\n"      \
    "             input: \"then_scope\" input: \"else_scope\"\n"               \
    "             output: \"y\" output: \"z\" output: \"then_scope\"\n"        \
    "             output: \"else_scope\"\n"                                    \
    "          arg { name: \"then_net\" n { name: \"do_then_net\"\n"           \
    "            op { type: \"Do\" input: \"y\" input: \"then_scope\"\n"       \
    "                 output: \"y\" output: \"then_scope\"\n"                  \
    "              arg { name: \"net\" n { name: \"then\"\n"                   \
    "                op { type: \"Mul\" input: \"y\" input: \"y\"\n"           \
    "                     output: \"y\" } } }\n"                               \
    "              arg { name: \"inner_blobs\" strings: \"y\" }\n"             \
    "              arg { name: \"outer_blobs_idx\" ints: 0 } } } }\n"          \
    "          arg { name: \"else_net\" n { name: \"do_else_net\"\n"           \
    "            op { type: \"Do\" input: \"z\" input: \"else_scope\"\n"       \
    "                 output: \"z\" output: \"else_scope\"\n"                  \
    "              arg { name: \"net\" n { name: \"else\"\n"                   \
    "                op { type: \"Mul\" input: \"z\" input: \"z\"\n"           \
    "                     output: \"z2\" }\n"                                  \
    "                op { type: \"Mul\" input: \"z2\" input: \"z\"\n"          \
    "                     output: \"z\" } } }\n"                               \
    "              arg { name: \"inner_blobs\" strings: \"z\" }\n"             \
    "              arg { name: \"outer_blobs_idx\" ints: 0 } } } } } } }\n"    \
    "      arg { name: \"inner_blobs\" strings: \"x\" strings: \"y\"\n"        \
    "            strings: \"z\" strings: \"i\" strings: \"two\" }\n"           \
    "      arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 ints: 2 ints: 3\n"  \
    "            ints: 4 }\n" BODY_COPY "} } }\n"

#define WHILE_COND                                                             \
    "  arg { name: \"cond_net\" n { name: \"do_loop_condition_net\"\n"         \
    "    op { type: \"Do\" input: \"i\" input: \"one\" input: \"two\"\n"       \
    "         input: \"cond_scope\" output: \"i\" output: \"cond\"\n"          \
    "         output: \"cond_scope\"\n"                                        \
    "      arg { name: \"net\" n { name: \"cond\"\n"                           \
    "        op { type: \"Add\" input: \"i\" input: \"one\" output: \"i\" }\n" \
    "        op { type: \"LE\" input: \"i\" input: \"two\"\n"                  \
    "             output: \"cond\" } } }\n"                                    \
    "      arg { name: \"inner_blobs\" strings: \"i\" strings: \"one\"\n"      \
    "            strings: \"two\" strings: \"cond\" }\n"                       \
    "      arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 ints: 2\n"          \
    "            ints: 4 } } } }\n"

#define WHILE_NET(BODY_COPY)                                                   \
    "name: \"while_test\"\n"                                                   \
    "op { type: \"ConstantFill\" output: \"cond\"\n"                           \
    "     arg { name: \"shape\" ints: 1 } arg { name: \"dtype\" i: 5 }\n"      \
    "     arg { name: \"value\" i: 0 } }\n"                                    \
    "op { type: \"CreateScope\" output: \"loop_scope\" }\n"                    \
    "op { type: \"CreateScope\" output: \"cond_scope\" }\n"                    \
    "op { type: \"While\" input: \"cond\" input: \"x\" input: \"y\"\n"         \
    "     input: \"z\" input: \"i\" input: \"two\" input: \"loop_scope\"\n"    \
    "     input: \"one\" input: \"cond_scope\"\n"                              \
    "     output: \"x\" output: \"y\" output: \"z\" output: \"loop_scope\"\n"  \
    "     output: \"i\" output: \"cond\" output: \"cond_scope\"\n" WHILE_BODY( \
        BODY_COPY) WHILE_COND "}\n"                                            \
                              "op { type: \"Add\" input: \"x\" input: \"y\" "  \
                              "output: \"x_plus_y\" }\n"                       \
                              "op { type: \"Add\" input: \"x_plus_y\" input: " \
                              "\"z\" output: \"s\" }\n"

static const char *k_while =
    WHILE_NET("      arg { name: \"copy_external_blobs\" i: 1 }\n");

static void feed_while(ct_workspace_t *ws)
{
    feed_i32(ws, "i", 0);
    feed_i32(ws, "one", 1);
    feed_i32(ws, "two", 2);
    feed_scalar(ws, "x", 2.0f);
    feed_scalar(ws, "y", 3.0f);
    feed_scalar(ws, "z", 2.0f);
}

static void test_while_grad_caffe2_values(void **state)
{
    struct tu_env e;
    ct_net_t *net;
    int k;

    (void)state;
    tu_env_init(&e);
    feed_while(e.ws);
    net = grad_net(e.ws, k_while, "s");
    /* Twice: the second run reuses the stacked workspaces. */
    for (k = 0; k < 2; k++) {
        feed_while(e.ws);
        run(net);
        assert_float_equal(f32(e.ws, "x"), 16.0f, 1e-5f);
        assert_float_equal(f32(e.ws, "x_grad"), 32.0f, 1e-4f);
        assert_float_equal(f32(e.ws, "y"), 9.0f, 1e-5f);
        assert_float_equal(f32(e.ws, "y_grad"), 6.0f, 1e-5f);
        assert_float_equal(f32(e.ws, "z"), 8.0f, 1e-5f);
        assert_float_equal(f32(e.ws, "z_grad"), 12.0f, 1e-5f);
    }
    ct_net_free(net);
    tu_env_destroy(&e);
}

/* ---- testIf ---- */

static const char *k_if_init =
    "name: \"if_init\"\n"
    "op { type: \"UniformFill\" output: \"W_a\" arg { name: \"shape\" ints: 1 "
    "ints: 2 } arg { name: \"min\" f: -1 } arg { name: \"max\" f: 1 } }\n"
    "op { type: \"ConstantFill\" output: \"B_a\" arg { name: \"shape\" ints: "
    "1 } arg { name: \"value\" f: 0 } }\n"
    "op { type: \"UniformFill\" output: \"W_b\" arg { name: \"shape\" ints: 1 "
    "ints: 2 } arg { name: \"min\" f: -1 } arg { name: \"max\" f: 1 } }\n"
    "op { type: \"ConstantFill\" output: \"B_b\" arg { name: \"shape\" ints: "
    "1 } arg { name: \"value\" f: 0 } }\n"
    "op { type: \"GivenTensorFill\" output: \"W_gt_a\" arg { name: \"shape\" "
    "ints: 1 ints: 2 } arg { name: \"values\" floats: 2 floats: 1.5 } }\n"
    "op { type: \"GivenTensorFill\" output: \"B_gt_a\" arg { name: \"shape\" "
    "ints: 1 } arg { name: \"values\" floats: 0.5 } }\n"
    "op { type: \"GivenTensorFill\" output: \"W_gt_b\" arg { name: \"shape\" "
    "ints: 1 ints: 2 } arg { name: \"values\" floats: 7 floats: 3.5 } }\n"
    "op { type: \"GivenTensorFill\" output: \"B_gt_b\" arg { name: \"shape\" "
    "ints: 1 } arg { name: \"values\" floats: 1.5 } }\n"
    "op { type: \"ConstantFill\" output: \"ITER\" arg { name: \"shape\" ints: "
    "1 } arg { name: \"value\" i: 0 } arg { name: \"dtype\" i: 10 } }\n"
    "op { type: \"ConstantFill\" output: \"ONE\" arg { name: \"shape\" ints: "
    "1 } arg { name: \"value\" f: 1 } }\n";

/* One branch: Y_gt = FC(X, W_gt, B_gt); Y_noise = Y_gt + noise;
 * Y_pred = FC(X, W, B). */
#define IF_BRANCH(NET, SCOPE, WGT, BGT, W, B)                                  \
    "  arg { name: \"" NET "\" n { name: \"do_" NET "\"\n"                     \
    "    op { type: \"Do\" input: \"X\" input: \"" WGT "\" input: \"" BGT      \
    "\" input: \"noise\" input: \"" W "\" input: \"" B "\" input: \"" SCOPE    \
    "\"\n"                                                                     \
    "         output: \"Y_noise\" output: \"Y_pred\" output: \"" SCOPE "\"\n"  \
    "      arg { name: \"net\" n { name: \"" NET "_body\"\n"                   \
    "        op { type: \"FC\" input: \"X\" input: \"" WGT "\" input: \"" BGT  \
    "\" output: \"Y_gt\" }\n"                                                  \
    "        op { type: \"Add\" input: \"Y_gt\" input: \"noise\"\n"            \
    "             output: \"Y_noise\" }\n"                                     \
    "        op { type: \"FC\" input: \"X\" input: \"" W "\" input: \"" B      \
    "\" output: \"Y_pred\" } } }\n"                                            \
    "      arg { name: \"inner_blobs\" strings: \"X\" strings: \"" WGT         \
    "\" strings: \"" BGT "\" strings: \"noise\" strings: \"" W                 \
    "\" strings: \"" B "\" strings: \"Y_noise\" strings: \"Y_pred\" }\n"       \
    "      arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 ints: 2 ints: 3\n"  \
    "            ints: 4 ints: 5 ints: 6 ints: 7 } } } }\n"

static const char *k_if_train =
    "name: \"if_train\"\n"
    "op { type: \"ConstantFill\" output: \"Y_pred\" arg { name: \"shape\" "
    "ints: 1 } arg { name: \"value\" f: 0 } }\n"
    "op { type: \"ConstantFill\" output: \"Y_noise\" arg { name: \"shape\" "
    "ints: 1 } arg { name: \"value\" f: 0 } }\n"
    "op { type: \"ConstantFill\" output: \"zero\" arg { name: \"shape\" ints: "
    "1 } arg { name: \"value\" f: 0 } }\n"
    "op { type: \"LT\" input: \"switch\" input: \"zero\" output: \"cond\" }\n"
    "op { type: \"CreateScope\" output: \"then_scope\" }\n"
    "op { type: \"CreateScope\" output: \"else_scope\" }\n"
    "op { type: \"If\" input: \"cond\" input: \"X\" input: \"W_gt_a\" "
    "input: \"B_gt_a\" input: \"noise\" input: \"W_a\" input: \"B_a\" "
    "input: \"W_gt_b\" input: \"B_gt_b\" input: \"W_b\" input: \"B_b\" "
    "input: \"then_scope\" input: \"else_scope\"\n"
    "     output: \"Y_noise\" output: \"Y_pred\" output: \"then_scope\" "
    "output: \"else_scope\"\n" IF_BRANCH("then_net", "then_scope", "W_gt_a",
                                         "B_gt_a", "W_a", "B_a")
        IF_BRANCH("else_net", "else_scope", "W_gt_b", "B_gt_b", "W_b",
                  "B_b") "}\n"
                         "op { type: \"SquaredL2Distance\" input: \"Y_noise\" "
                         "input: \"Y_pred\" "
                         "output: \"dist\" }\n"
                         "op { type: \"AveragedLoss\" input: \"dist\" output: "
                         "\"loss\" }\n";

/* The random batch, in its own net: cortado's fill ops have no gradient
 * maker (Caffe2 registers NO_GRADIENT for them), so they stay out of the
 * net the gradient is built for. */
static const char *k_if_data =
    "name: \"if_data\"\n"
    "op { type: \"UniformFill\" output: \"switch\" arg { name: \"shape\" "
    "ints: 1 } arg { name: \"min\" f: -1 } arg { name: \"max\" f: 1 } }\n"
    "op { type: \"GaussianFill\" output: \"X\" arg { name: \"shape\" ints: "
    "4096 ints: 2 } arg { name: \"mean\" f: 0 } arg { name: \"std\" f: 1 } }\n"
    "op { type: \"GaussianFill\" output: \"noise\" arg { name: \"shape\" "
    "ints: 4096 ints: 1 } arg { name: \"mean\" f: 0 } arg { name: \"std\" f: "
    "1 } }\n";

static const char *k_if_update =
    "name: \"if_update\"\n"
    "op { type: \"Iter\" input: \"ITER\" output: \"ITER\" }\n"
    "op { type: \"LearningRate\" input: \"ITER\" output: \"LR\" "
    "arg { name: \"base_lr\" f: -0.1 } arg { name: \"policy\" s: \"step\" } "
    "arg { name: \"stepsize\" i: 20 } arg { name: \"gamma\" f: 0.9 } }\n"
    "op { type: \"WeightedSum\" input: \"W_a\" input: \"ONE\" input: "
    "\"W_a_grad\" input: \"LR\" output: \"W_a\" }\n"
    "op { type: \"WeightedSum\" input: \"B_a\" input: \"ONE\" input: "
    "\"B_a_grad\" input: \"LR\" output: \"B_a\" }\n"
    "op { type: \"WeightedSum\" input: \"W_b\" input: \"ONE\" input: "
    "\"W_b_grad\" input: \"LR\" output: \"W_b\" }\n"
    "op { type: \"WeightedSum\" input: \"B_b\" input: \"ONE\" input: "
    "\"B_b_grad\" input: \"LR\" output: \"B_b\" }\n";

static void assert_trained(ct_workspace_t *ws, const char *name,
                           const float *want, int n)
{
    const float *v = ct_tensor_cdata(tu_fetch(ws, name));
    int k;

    for (k = 0; k < n; k++)
        if (fabsf(v[k] - want[k]) >= 0.01f)
            fail_msg("%s[%d] = %g, want %g within 0.01", name, k, v[k],
                     want[k]);
}

static void test_if_grad_trains_both_branches(void **state)
{
    static const float wa[2] = {2.0f, 1.5f}, ba[1] = {0.5f};
    static const float wb[2] = {7.0f, 3.5f}, bb[1] = {1.5f};
    struct tu_env e;
    ct_status_t st = {0};
    ct_netdef_t *train = parse(k_if_train), *upd = parse(k_if_update);
    ct_netdef_t *init = parse(k_if_init), *data = parse(k_if_data);
    const char *loss = "loss";
    ct_net_t *net = NULL, *step = NULL, *batch = NULL;
    int k;

    (void)state;
    tu_env_init(&e);
    assert_int_equal(ct_workspace_run_net_once(e.ws, init, &st), CT_OK);
    assert_int_equal(ct_net_new(e.ws, data, NULL, &batch, &st), CT_OK);
    run(batch);
    if (ct_netdef_add_gradient_ops(train, &loss, 1, &st) != CT_OK ||
        ct_net_new(e.ws, train, NULL, &net, &st) != CT_OK)
        fail_msg("%s", st.msg);
    /* The SGD step Caffe2's test appends after the gradient ops. */
    assert_int_equal(ct_net_new(e.ws, upd, NULL, &step, &st), CT_OK);
    for (k = 0; k < 1000; k++) {
        run(batch);
        run(net);
        run(step);
    }
    assert_trained(e.ws, "W_a", wa, 2);
    assert_trained(e.ws, "B_a", ba, 1);
    assert_trained(e.ws, "W_b", wb, 2);
    assert_trained(e.ws, "B_b", bb, 1);
    ct_net_free(step);
    ct_net_free(net);
    ct_net_free(batch);
    ct_netdef_free(data);
    ct_netdef_free(train);
    ct_netdef_free(upd);
    ct_netdef_free(init);
    tu_env_destroy(&e);
}

/* ---- finite differences ---- */

/* If on c: then (Do) out = tanh(a * w); else (Do) out = a + w, with a
 * local t in the then branch; loss = mean of 0.5 (out - target)^2. */
static const char *k_if_fd =
    "name: \"if_fd\"\n"
    "op { type: \"CreateScope\" output: \"ts\" }\n"
    "op { type: \"CreateScope\" output: \"es\" }\n"
    "op { type: \"If\" input: \"c\" input: \"a\" input: \"w\" input: \"ts\" "
    "input: \"es\" output: \"out\" output: \"ts\" output: \"es\"\n"
    "  arg { name: \"then_net\" n { name: \"tn\"\n"
    "    op { type: \"Do\" input: \"a\" input: \"w\" input: \"ts\" output: "
    "\"out\" output: \"ts\"\n"
    "      arg { name: \"net\" n { name: \"tb\"\n"
    "        op { type: \"Mul\" input: \"a\" input: \"w\" output: \"t\" }\n"
    "        op { type: \"Tanh\" input: \"t\" output: \"out\" } } }\n"
    "      arg { name: \"inner_blobs\" strings: \"a\" strings: \"w\" "
    "strings: \"out\" }\n"
    "      arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 ints: 2 } } } }\n"
    "  arg { name: \"else_net\" n { name: \"en\"\n"
    "    op { type: \"Do\" input: \"a\" input: \"w\" input: \"es\" output: "
    "\"out\" output: \"es\"\n"
    "      arg { name: \"net\" n { name: \"eb\"\n"
    "        op { type: \"Add\" input: \"a\" input: \"w\" output: \"out\" } } "
    "}\n"
    "      arg { name: \"inner_blobs\" strings: \"a\" strings: \"w\" "
    "strings: \"out\" }\n"
    "      arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 ints: 2 } } } } "
    "}\n"
    "op { type: \"SquaredL2Distance\" input: \"out\" input: \"target\" "
    "output: \"d\" }\n"
    "op { type: \"AveragedLoss\" input: \"d\" output: \"loss\" }\n";

#define FD_N 3

static void feed_vec(ct_workspace_t *ws, const char *name, const float *v)
{
    const int64_t d[1] = {FD_N};

    tu_feed_f32(ws, name, 1, d, v);
}

/* Central differences of `loss` for each element of each blob in
 * names[], compared with the analytic gradients "<name>_grad". The
 * inputs are re-fed before every run by feed(). */
static void check_fd(ct_workspace_t *ws, ct_net_t *net,
                     void (*feed)(ct_workspace_t *, const float *,
                                  const float *),
                     const float *a, const float *w)
{
    float ga[FD_N], gw[FD_N], p[FD_N];
    const float eps = 1e-2f;
    int k, which;

    feed(ws, a, w);
    run(net);
    memcpy(ga, ct_tensor_cdata(tu_fetch(ws, "a_grad")), sizeof(ga));
    memcpy(gw, ct_tensor_cdata(tu_fetch(ws, "w_grad")), sizeof(gw));
    for (which = 0; which < 2; which++) {
        const float *base = which == 0 ? a : w, *g = which == 0 ? ga : gw;
        for (k = 0; k < FD_N; k++) {
            float lp, lm, num;
            memcpy(p, base, sizeof(p));
            p[k] += eps;
            feed(ws, which == 0 ? p : a, which == 0 ? w : p);
            run(net);
            lp = f32(ws, "loss");
            p[k] -= 2 * eps;
            feed(ws, which == 0 ? p : a, which == 0 ? w : p);
            run(net);
            lm = f32(ws, "loss");
            num = (lp - lm) / (2 * eps);
            if (fabsf(num - g[k]) > 1e-2f + 2e-2f * fabsf(num))
                fail_msg("%s_grad[%d] = %g, numeric %g", which ? "w" : "a", k,
                         g[k], num);
        }
    }
}

static const float k_target[FD_N] = {0.3f, -0.2f, 0.5f};
static bool g_cond;

static void feed_if(ct_workspace_t *ws, const float *a, const float *w)
{
    const int64_t d[1] = {1};
    bool c = g_cond;

    tu_feed(ws, "c", CT_DTYPE_BOOL, 1, d, &c);
    feed_vec(ws, "a", a);
    feed_vec(ws, "w", w);
    feed_vec(ws, "target", k_target);
}

static void test_if_grad_matches_finite_differences(void **state)
{
    static const float a[FD_N] = {0.5f, -1.0f, 0.8f};
    static const float w[FD_N] = {1.2f, 0.4f, -0.7f};
    struct tu_env e;
    ct_net_t *net;
    int b;

    (void)state;
    tu_env_init(&e);
    for (b = 0; b < 2; b++) {
        g_cond = b == 0;
        feed_if(e.ws, a, w);
        net = grad_net(e.ws, k_if_fd, "loss");
        check_fd(e.ws, net, feed_if, a, w);
        ct_net_free(net);
    }
    tu_env_destroy(&e);
}

/* While i < 3: h = tanh(h * w) (h carried, w accumulated over the
 * iterations); loss = mean of 0.5 (h - target)^2. a is h's start. */
static const char *k_while_fd =
    "name: \"while_fd\"\n"
    "op { type: \"Copy\" input: \"a\" output: \"h\" }\n"
    "op { type: \"ConstantFill\" output: \"cond\" arg { name: \"shape\" "
    "ints: 1 } arg { name: \"dtype\" i: 5 } arg { name: \"value\" i: 0 } }\n"
    "op { type: \"CreateScope\" output: \"ls\" }\n"
    "op { type: \"CreateScope\" output: \"cs\" }\n"
    "op { type: \"While\" input: \"cond\" input: \"h\" input: \"w\" "
    "input: \"ls\" input: \"i\" input: \"one\" input: \"n\" input: \"cs\" "
    "output: \"h\" output: \"ls\" output: \"i\" output: \"cond\" "
    "output: \"cs\"\n"
    "  arg { name: \"loop_net\" n { name: \"ln\"\n"
    "    op { type: \"Do\" input: \"h\" input: \"w\" input: \"ls\" output: "
    "\"h\" output: \"ls\"\n"
    "      arg { name: \"net\" n { name: \"body\"\n"
    "        op { type: \"Mul\" input: \"h\" input: \"w\" output: \"t\" }\n"
    "        op { type: \"Tanh\" input: \"t\" output: \"h\" } } }\n"
    "      arg { name: \"inner_blobs\" strings: \"h\" strings: \"w\" }\n"
    "      arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 }\n"
    "      arg { name: \"copy_external_blobs\" i: 1 } } } }\n"
    "  arg { name: \"cond_net\" n { name: \"cn\"\n"
    "    op { type: \"Do\" input: \"i\" input: \"one\" input: \"n\" input: "
    "\"cs\" output: \"i\" output: \"cond\" output: \"cs\"\n"
    "      arg { name: \"net\" n { name: \"cb\"\n"
    "        op { type: \"Add\" input: \"i\" input: \"one\" output: \"i\" }\n"
    "        op { type: \"LE\" input: \"i\" input: \"n\" output: \"cond\" } } "
    "}\n"
    "      arg { name: \"inner_blobs\" strings: \"i\" strings: \"one\" "
    "strings: \"n\" strings: \"cond\" }\n"
    "      arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 ints: 2 ints: 4 } "
    "} } } }\n"
    "op { type: \"SquaredL2Distance\" input: \"h\" input: \"target\" "
    "output: \"d\" }\n"
    "op { type: \"AveragedLoss\" input: \"d\" output: \"loss\" }\n";

static void feed_while_fd(ct_workspace_t *ws, const float *a, const float *w)
{
    feed_i32(ws, "i", 0);
    feed_i32(ws, "one", 1);
    feed_i32(ws, "n", 3);
    feed_vec(ws, "a", a);
    feed_vec(ws, "w", w);
    feed_vec(ws, "target", k_target);
}

static void test_while_grad_matches_finite_differences(void **state)
{
    static const float a[FD_N] = {0.5f, -1.0f, 0.8f};
    static const float w[FD_N] = {1.2f, 0.4f, -0.7f};
    struct tu_env e;
    ct_net_t *net;

    (void)state;
    tu_env_init(&e);
    feed_while_fd(e.ws, a, w);
    net = grad_net(e.ws, k_while_fd, "loss");
    check_fd(e.ws, net, feed_while_fd, a, w);
    ct_net_free(net);
    tu_env_destroy(&e);
}

/* ---- error paths ---- */

static void test_while_grad_body_not_single_do_returns_einval(void **state)
{
    ct_status_t st = {0};
    const char *txt =
        "name: \"bad\"\n"
        "op { type: \"While\" input: \"c\" input: \"x\" output: \"x\"\n"
        "  arg { name: \"loop_net\" n { name: \"ln\"\n"
        "    op { type: \"Mul\" input: \"x\" input: \"x\" output: \"x2\" }\n"
        "    op { type: \"Copy\" input: \"x2\" output: \"x\" } } } }\n"
        "op { type: \"Copy\" input: \"x\" output: \"s\" }\n";

    (void)state;
    tu_assert_status(&st, grad_rc(txt, "s", &st), CT_EINVAL,
                     "requires a loop_net of a single Do op (got 2 ops");
    assert_non_null(strstr(st.msg, "(While)"));
}

static void test_while_grad_body_without_copy_returns_einval(void **state)
{
    ct_status_t st = {0};

    (void)state;
    tu_assert_status(&st, grad_rc(WHILE_NET(""), "s", &st), CT_EINVAL,
                     "with copy_external_blobs");
}

static void test_if_grad_condition_overwritten_returns_enotsup(void **state)
{
    ct_status_t st = {0};
    const char *txt =
        "name: \"bad\"\n"
        "op { type: \"If\" input: \"c\" input: \"x\" output: \"y\"\n"
        "  arg { name: \"then_net\" n { name: \"t\"\n"
        "    op { type: \"Copy\" input: \"x\" output: \"y\" } } } }\n"
        "op { type: \"ConstantFill\" output: \"c\" arg { name: \"shape\" "
        "ints: 1 } arg { name: \"value\" f: 0 } }\n"
        "op { type: \"Copy\" input: \"y\" output: \"s\" }\n";

    (void)state;
    tu_assert_status(&st, grad_rc(txt, "s", &st), CT_ENOTSUP,
                     "reads \"c\" as this op saw it");
}

static void test_do_grad_reuse_workspace_returns_einval(void **state)
{
    ct_status_t st = {0};
    const char *txt =
        "name: \"bad\"\n"
        "op { type: \"CreateScope\" output: \"W\" }\n"
        "op { type: \"Do\" input: \"x\" input: \"W\" output: \"y\" output: "
        "\"W\"\n"
        "  arg { name: \"net\" n { name: \"b\"\n"
        "    op { type: \"Copy\" input: \"x\" output: \"y\" } } }\n"
        "  arg { name: \"inner_blobs\" strings: \"x\" strings: \"y\" }\n"
        "  arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 }\n"
        "  arg { name: \"reuse_workspace\" i: 1 } }\n"
        "op { type: \"Copy\" input: \"y\" output: \"s\" }\n";

    (void)state;
    tu_assert_status(&st, grad_rc(txt, "s", &st), CT_EINVAL,
                     "reuse_workspace is not supported");
}

static void test_if_grad_missing_else_passes_gradient_through(void **state)
{
    /* No else_net: when c is false y keeps x's value... here y is x
     * written in place, so its gradient passes to x unchanged. */
    const char *txt =
        "name: \"pass\"\n"
        "op { type: \"If\" input: \"c\" input: \"x\" output: \"x\"\n"
        "  arg { name: \"then_net\" n { name: \"t\"\n"
        "    op { type: \"Scale\" input: \"x\" output: \"x\" "
        "arg { name: \"scale\" f: 3 } } } } }\n"
        "op { type: \"Scale\" input: \"x\" output: \"s\" "
        "arg { name: \"scale\" f: 2 } }\n";
    struct tu_env e;
    ct_net_t *net;
    const int64_t d[1] = {1};
    bool c;

    (void)state;
    tu_env_init(&e);
    c = false;
    tu_feed(e.ws, "c", CT_DTYPE_BOOL, 1, d, &c);
    feed_scalar(e.ws, "x", 1.0f);
    net = grad_net(e.ws, txt, "s");
    run(net);
    assert_float_equal(f32(e.ws, "x_grad"), 2.0f, 1e-6f);
    c = true;
    tu_feed(e.ws, "c", CT_DTYPE_BOOL, 1, d, &c);
    feed_scalar(e.ws, "x", 1.0f);
    run(net);
    assert_float_equal(f32(e.ws, "x_grad"), 6.0f, 1e-6f);
    ct_net_free(net);
    tu_env_destroy(&e);
}

/* ---- comparison ops ---- */

static const bool *cmp(ct_workspace_t *ws, const char *type, int bcast,
                       int axis, ct_status_t *st, int *rc)
{
    Caffe2__OperatorDef *op = tu_op(type, "A,B", "C");

    if (bcast)
        tu_arg_i(op, "broadcast", 1);
    if (axis >= 0)
        tu_arg_i(op, "axis", axis);
    *rc = tu_run_op(ws, op, st);
    tu_op_free(op);
    if (*rc != CT_OK)
        return NULL;
    assert_int_equal(ct_tensor_dtype(tu_fetch(ws, "C")), CT_DTYPE_BOOL);
    return ct_tensor_cdata(tu_fetch(ws, "C"));
}

static void test_compare_ops_same_shape_values(void **state)
{
    static const char *types[6] = {"EQ", "NE", "LT", "LE", "GT", "GE"};
    static const bool want[6][3] = {{0, 1, 0}, {1, 0, 1}, {1, 0, 0},
                                    {1, 1, 0}, {0, 0, 1}, {0, 1, 1}};
    const float a[3] = {1, 2, 3}, b[3] = {2, 2, 1};
    const int64_t d[1] = {3};
    struct tu_env e;
    ct_status_t st = {0};
    int t, k, rc;

    (void)state;
    tu_env_init(&e);
    tu_feed_f32(e.ws, "A", 1, d, a);
    tu_feed_f32(e.ws, "B", 1, d, b);
    for (t = 0; t < 6; t++) {
        const bool *c = cmp(e.ws, types[t], 0, -1, &st, &rc);
        assert_int_equal(rc, CT_OK);
        for (k = 0; k < 3; k++)
            assert_int_equal(c[k], want[t][k]);
    }
    tu_env_destroy(&e);
}

static void test_compare_numpy_and_legacy_broadcast(void **state)
{
    const int32_t a[6] = {1, 5, 3, 4, 2, 6}, b[3] = {2, 4, 3}, s[1] = {3};
    const int32_t col[2] = {2, 4};
    const int64_t da[2] = {2, 3}, db[1] = {3}, ds[1] = {1}, dc[1] = {2};
    const int64_t dcol[2] = {2, 1};
    struct tu_env e;
    ct_status_t st = {0};
    const bool *c;
    int rc;

    (void)state;
    tu_env_init(&e);
    tu_feed(e.ws, "A", CT_DTYPE_I32, 2, da, a);
    tu_feed(e.ws, "B", CT_DTYPE_I32, 1, db, b); /* row vector */
    c = cmp(e.ws, "LT", 0, -1, &st, &rc);
    assert_int_equal(rc, CT_OK);
    assert_true(c[0] && !c[1] && !c[2] && !c[3] && c[4] && !c[5]);
    tu_feed(e.ws, "B", CT_DTYPE_I32, 2, dcol, col); /* column [2, 1] */
    c = cmp(e.ws, "GE", 0, -1, &st, &rc);
    assert_int_equal(rc, CT_OK);
    assert_true(!c[0] && c[1] && c[2] && c[3] && !c[4] && c[5]);
    tu_feed(e.ws, "B", CT_DTYPE_I32, 1, ds, s); /* scalar, legacy */
    c = cmp(e.ws, "GT", 1, -1, &st, &rc);
    assert_int_equal(rc, CT_OK);
    assert_true(!c[0] && c[1] && !c[2] && c[3] && !c[4] && c[5]);
    tu_feed(e.ws, "B", CT_DTYPE_I32, 1, dc, col); /* legacy, axis 0 */
    c = cmp(e.ws, "LE", 1, 0, &st, &rc);
    assert_int_equal(rc, CT_OK);
    assert_true(c[0] && !c[1] && !c[2] && c[3] && c[4] && !c[5]);
    tu_env_destroy(&e);
}

static void test_compare_shape_mismatch_returns_eshape(void **state)
{
    const float a[6] = {0}, b[4] = {0};
    const int64_t da[2] = {2, 3}, db[1] = {4}, dl[1] = {2};
    struct tu_env e;
    ct_status_t st = {0};
    int rc;

    (void)state;
    tu_env_init(&e);
    tu_feed_f32(e.ws, "A", 2, da, a);
    tu_feed_f32(e.ws, "B", 1, db, b);
    (void)cmp(e.ws, "EQ", 0, -1, &st, &rc);
    tu_assert_status(&st, rc, CT_ESHAPE, "cannot broadcast A [2, 3] with B");
    tu_feed_f32(e.ws, "B", 1, dl, b);
    (void)cmp(e.ws, "EQ", 1, -1, &st, &rc);
    tu_assert_status(&st, rc, CT_ESHAPE, "legacy broadcast");
    tu_env_destroy(&e);
}

static void test_compare_dtype_mismatch_returns_etype(void **state)
{
    const float a[1] = {1};
    const int32_t b[1] = {1};
    const int64_t d[1] = {1};
    struct tu_env e;
    ct_status_t st = {0};
    int rc;

    (void)state;
    tu_env_init(&e);
    tu_feed_f32(e.ws, "A", 1, d, a);
    tu_feed(e.ws, "B", CT_DTYPE_I32, 1, d, b);
    (void)cmp(e.ws, "LT", 0, -1, &st, &rc);
    tu_assert_status(&st, rc, CT_ETYPE,
                     "A \"A\" is FLOAT but B \"B\" is INT32");
    tu_feed(e.ws, "A", CT_DTYPE_I16, 1, d, NULL);
    tu_feed(e.ws, "B", CT_DTYPE_I16, 1, d, NULL);
    (void)cmp(e.ws, "LT", 0, -1, &st, &rc);
    tu_assert_status(&st, rc, CT_ENOTSUP, "unsupported dtype");
    tu_env_destroy(&e);
}

static void test_compare_bad_broadcast_arg_returns_earg(void **state)
{
    struct tu_env e;
    ct_status_t st = {0};
    Caffe2__OperatorDef *op = tu_op("GE", "A,B", "C");
    const float a[1] = {1};
    const int64_t d[1] = {1};

    (void)state;
    tu_env_init(&e);
    tu_feed_f32(e.ws, "A", 1, d, a);
    tu_feed_f32(e.ws, "B", 1, d, a);
    tu_arg_i(op, "broadcast", 2);
    tu_assert_status(&st, tu_run_op(e.ws, op, &st), CT_EARG,
                     "Value 2 of argument broadcast");
    tu_op_free(op);
    tu_env_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_while_grad_caffe2_values),
        cmocka_unit_test(test_if_grad_trains_both_branches),
        cmocka_unit_test(test_if_grad_matches_finite_differences),
        cmocka_unit_test(test_while_grad_matches_finite_differences),
        cmocka_unit_test(test_while_grad_body_not_single_do_returns_einval),
        cmocka_unit_test(test_while_grad_body_without_copy_returns_einval),
        cmocka_unit_test(test_if_grad_condition_overwritten_returns_enotsup),
        cmocka_unit_test(test_do_grad_reuse_workspace_returns_einval),
        cmocka_unit_test(test_if_grad_missing_else_passes_gradient_through),
        cmocka_unit_test(test_compare_ops_same_shape_values),
        cmocka_unit_test(test_compare_numpy_and_legacy_broadcast),
        cmocka_unit_test(test_compare_shape_mismatch_returns_eshape),
        cmocka_unit_test(test_compare_dtype_mismatch_returns_etype),
        cmocka_unit_test(test_compare_bad_broadcast_arg_returns_earg),
    };
    return cmocka_run_group_tests_name("ops.control_grad", tests, NULL, NULL);
}
