/* Tests for engine/shape_infer.c and engine/param_rules.c: blob shapes
 * through a net, parameter shapes from each rule (Conv NCHW / NHWC /
 * grouped, ConvTranspose, FC with axis_w, SpatialBN, legacy-broadcast
 * Mul / Add, Sum), the free widths (default, group rounding, fixed by a
 * given filter forwards and backwards, unified by Sum with another width
 * or a known dim), the walk count, and every error with its message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/shape_infer.h"
#include "op_test.h"
#include "test_util.h"

/* ---- helpers ---- */

static Caffe2__OperatorDef *conv(const char *in, const char *out, int k,
                                 int group)
{
    Caffe2__OperatorDef *op = tu_op("Conv", in, out);

    tu_arg_i(op, "kernel", k);
    if (group > 1)
        tu_arg_i(op, "group", group);
    return op;
}

static struct ct__shape_hint hint(const char *name, int nd, const int64_t *d)
{
    struct ct__shape_hint h;

    memset(&h, 0, sizeof(h));
    h.name = name;
    h.shape.dtype = CT_DTYPE_F32;
    h.shape.ndim = nd;
    memcpy(h.shape.dims, d, (size_t)nd * sizeof(int64_t));
    return h;
}

static int infer(struct tu_env *e, Caffe2__NetDef *net,
                 const struct ct__shape_hint *h, size_t n_h, int64_t width,
                 struct ct__shape_infer_result *res, ct_status_t *st)
{
    struct ct__shape_infer_cfg cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.eng = e->eng;
    cfg.def = net;
    cfg.ws = e->ws;
    cfg.hints = h;
    cfg.n_hints = n_h;
    cfg.default_width = width;
    cfg.infer_params = true;
    ct_status_clear(st);
    return ct__shape_infer(&cfg, res, st);
}

static const struct ct__shape_blob *blob(const struct ct__shape_infer_result *r,
                                         const char *name)
{
    size_t i;

    for (i = 0; i < r->n_blobs; i++)
        if (strcmp(r->blobs[i].name, name) == 0)
            return &r->blobs[i];
    fail_msg("no blob %s in the result", name);
    return NULL;
}

/* Asserts blob `name` has shape d[0..nd). */
static void assert_shape(const struct ct__shape_infer_result *r,
                         const char *name, int nd, const int64_t *d)
{
    const struct ct__shape_blob *b = blob(r, name);
    char got[128], want[128];

    if (b->shape.ndim != nd ||
        memcmp(b->shape.dims, d, (size_t)nd * sizeof(int64_t)) != 0)
        fail_msg("%s: got %s, want %s", name,
                 ct_dims_str(b->shape.ndim, b->shape.dims, got, sizeof(got)),
                 ct_dims_str(nd, d, want, sizeof(want)));
}

#define SHAPE(r, name, ...)                                                    \
    do {                                                                       \
        const int64_t d_[] = {__VA_ARGS__};                                    \
        assert_shape(r, name, (int)(sizeof(d_) / sizeof(d_[0])), d_);          \
    } while (0)

/* ---- tests ---- */

static void test_shape_infer_conv_fc_chain_takes_default_width(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,w1,b1,w2,b2", "y");
    const int64_t dd[4] = {2, 3, 8, 8};
    struct ct__shape_hint h = hint("data", 4, dd);
    struct ct__shape_infer_result r;
    ct_status_t st;

    tu_net_add_op(net, conv("data,w1,b1", "c1", 3, 1));
    tu_net_add_op(net, tu_op("Relu", "c1", "c1"));
    tu_net_add_op(net, tu_op("FC", "c1,w2,b2", "y"));
    if (infer(e, net, &h, 1, 0, &r, &st) != CT_OK)
        fail_msg("%s", st.msg);
    SHAPE(&r, "w1", 64, 3, 3, 3);
    SHAPE(&r, "b1", 64);
    SHAPE(&r, "c1", 2, 64, 6, 6);
    SHAPE(&r, "w2", 64, 64 * 36);
    SHAPE(&r, "y", 2, 64);
    assert_int_equal(r.n_params, 4);
    assert_int_equal(r.n_widths, 2);
    assert_int_equal(r.n_widths_default, 2);
    assert_true(blob(&r, "w1")->param &&
                blob(&r, "w1")->kind == CT__PARAM_WEIGHT);
    assert_int_equal(blob(&r, "b2")->kind, CT__PARAM_BIAS);
    assert_true(blob(&r, "data")->known && blob(&r, "data")->hinted);
    assert_int_equal(blob(&r, "data")->kind, CT__PARAM_NONE);
    assert_int_equal(r.n_param_elements, 64 * 27 + 64 + 64 * 2304 + 64);
    assert_true(r.flops > 2.0 * 2 * 64 * 36 * 27);
    ct__shape_infer_result_destroy(&r);
    tu_net_free(net);
}

static void test_shape_infer_group_and_width_option(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,w1,w2", "c2");
    const int64_t dd[4] = {1, 12, 5, 5};
    struct ct__shape_hint h = hint("data", 4, dd);
    struct ct__shape_infer_result r;
    ct_status_t st;

    tu_net_add_op(net, conv("data,w1", "c1", 1, 4));
    tu_net_add_op(net, conv("c1,w2", "c2", 3, 3));
    /* Width 10 rounds up to a multiple of each group. */
    if (infer(e, net, &h, 1, 10, &r, &st) != CT_OK)
        fail_msg("%s", st.msg);
    SHAPE(&r, "w1", 12, 3, 1, 1);
    SHAPE(&r, "w2", 12, 4, 3, 3);
    SHAPE(&r, "c2", 1, 12, 3, 3);
    ct__shape_infer_result_destroy(&r);
    tu_net_free(net);
}

static void test_shape_infer_nhwc_and_transpose(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,w1,b1,wt,bt", "ct");
    Caffe2__OperatorDef *c1 = conv("data,w1,b1", "c1", 3, 1);
    Caffe2__OperatorDef *ct = tu_op("ConvTranspose", "c1,wt,bt", "ct");
    const int64_t dd[4] = {1, 9, 9, 4};
    struct ct__shape_hint h = hint("data", 4, dd);
    struct ct__shape_infer_result r;
    ct_status_t st;

    tu_arg_s(c1, "order", "NHWC");
    tu_arg_i(ct, "kernel", 2);
    tu_arg_i(ct, "stride", 2);
    tu_arg_s(ct, "order", "NHWC");
    tu_net_add_op(net, c1);
    tu_net_add_op(net, ct);
    if (infer(e, net, &h, 1, 8, &r, &st) != CT_OK)
        fail_msg("%s", st.msg);
    SHAPE(&r, "w1", 8, 3, 3, 4);
    SHAPE(&r, "c1", 1, 7, 7, 8);
    SHAPE(&r, "wt", 8, 2, 2, 8);
    SHAPE(&r, "bt", 8);
    SHAPE(&r, "ct", 1, 14, 14, 8);
    ct__shape_infer_result_destroy(&r);
    tu_net_free(net);
}

static void test_shape_infer_given_filter_fixes_widths_both_ways(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,w1,w2,w3", "c3");
    const int64_t dd[4] = {1, 3, 9, 9}, w2[4] = {16, 32, 3, 3};
    struct ct__shape_hint h[2] = {hint("data", 4, dd), hint("w2", 4, w2)};
    struct ct__shape_infer_result r;
    ct_status_t st;

    tu_net_add_op(net, conv("data,w1", "c1", 3, 1));
    tu_net_add_op(net, conv("c1,w2", "c2", 3, 1));
    tu_net_add_op(net, conv("c2,w3", "c3", 1, 1));
    if (infer(e, net, h, 2, 0, &r, &st) != CT_OK)
        fail_msg("%s", st.msg);
    /* w2's C = 32 fixes conv1's M; its M = 16 is conv3's C. */
    SHAPE(&r, "w1", 32, 3, 3, 3);
    SHAPE(&r, "w3", 64, 16, 1, 1);
    assert_true(blob(&r, "w2")->hinted);
    assert_false(blob(&r, "w2")->param);
    assert_int_equal(blob(&r, "w2")->kind, CT__PARAM_WEIGHT);
    assert_int_equal(r.n_widths, 2);
    assert_int_equal(r.n_widths_default, 1);
    assert_true(r.n_walks >= 3);
    ct__shape_infer_result_destroy(&r);
    tu_net_free(net);
}

static void test_shape_infer_sum_unifies_residual_widths(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,wa,wb,wc,wd,we,wp", "out");
    const int64_t dd[4] = {1, 3, 8, 8}, wp[4] = {256, 64, 1, 1};
    struct ct__shape_hint h[2] = {hint("data", 4, dd), hint("wp", 4, wp)};
    struct ct__shape_infer_result r;
    ct_status_t st;

    /* stem, then a block whose two branches meet in a Sum, then a second
     * block adding to the first block's output. */
    tu_net_add_op(net, conv("data,wa", "stem", 3, 1));
    tu_net_add_op(net, conv("stem,wb", "b1", 1, 1));
    tu_net_add_op(net, conv("stem,wp", "proj", 1, 1));
    tu_net_add_op(net, tu_op("Sum", "b1,proj", "s1"));
    tu_net_add_op(net, conv("s1,wc", "b2a", 1, 1));
    tu_net_add_op(net, conv("b2a,wd", "b2", 3, 1));
    tu_net_add_op(net, tu_op("Sum", "b2,s1", "s2"));
    tu_net_add_op(net, conv("s2,we", "out", 1, 1));
    tu_arg_i(net->op[5], "pad", 1);
    if (infer(e, net, h, 2, 0, &r, &st) != CT_OK)
        fail_msg("%s", st.msg);
    SHAPE(&r, "wb", 256, 64, 1, 1); /* Sum with the given projection */
    SHAPE(&r, "wd", 256, 64, 3, 3); /* Sum with s1 (256) */
    SHAPE(&r, "wc", 64, 256, 1, 1); /* free: the default */
    SHAPE(&r, "we", 64, 256, 1, 1);
    SHAPE(&r, "s2", 1, 256, 6, 6);
    ct__shape_infer_result_destroy(&r);
    tu_net_free(net);
}

static void test_shape_infer_sum_of_two_free_widths_merges(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,wa,wb", "t");
    Caffe2__NetDef *bad = tu_net("n", "data,odd,wa", "t");
    const int64_t dd[4] = {1, 6, 4, 4}, od[4] = {1, 5, 4, 4};
    struct ct__shape_hint h = hint("data", 4, dd);
    struct ct__shape_hint hb[2] = {hint("data", 4, dd), hint("odd", 4, od)};
    struct ct__shape_infer_result r;
    ct_status_t st;

    tu_net_add_op(net, conv("data,wa", "a", 1, 2)); /* group 2 */
    tu_net_add_op(net, conv("data,wb", "b", 1, 1));
    tu_net_add_op(net, tu_op("Sum", "a,b", "s"));
    tu_net_add_op(net, tu_op("Sum", "s,data", "t"));
    if (infer(e, net, &h, 1, 0, &r, &st) != CT_OK)
        fail_msg("%s", st.msg);
    /* a and b merge, then the Sum with data fixes both at 6. */
    SHAPE(&r, "wa", 6, 3, 1, 1);
    SHAPE(&r, "wb", 6, 6, 1, 1);
    assert_int_equal(r.n_widths, 2);
    assert_int_equal(r.n_widths_default, 0);
    ct__shape_infer_result_destroy(&r);
    /* A width of group 2 cannot become 5: the Sum reports the shapes. */
    tu_net_add_op(bad, conv("data,wa", "a", 1, 2));
    tu_net_add_op(bad, tu_op("Sum", "a,odd", "t"));
    tu_assert_status(&st, infer(e, bad, hb, 2, 0, &r, &st), CT_ESHAPE,
                     "op 1 \"\" (Sum): ");
    tu_net_free(net);
    tu_net_free(bad);
}

static void test_shape_infer_bn_and_broadcast_params(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,s,b,m,v,sc_w,sc_b,fw,fb", "y");
    Caffe2__OperatorDef *bn = tu_op("SpatialBN", "data,s,b,m,v", "bn");
    Caffe2__OperatorDef *mul = tu_op("Mul", "bn,sc_w", "t");
    Caffe2__OperatorDef *add = tu_op("Add", "t,sc_b", "u");
    Caffe2__OperatorDef *fc = tu_op("FC", "u,fw,fb", "y");
    const int64_t dd[4] = {2, 6, 1, 1};
    struct ct__shape_hint h = hint("data", 4, dd);
    struct ct__shape_infer_result r;
    ct_status_t st;

    tu_arg_i(bn, "is_test", 1);
    tu_arg_i(mul, "broadcast", 1);
    tu_arg_i(mul, "axis", 1);
    tu_arg_i(add, "broadcast", 1);
    tu_arg_s(add, "axis_str", "C");
    tu_arg_i(fc, "axis_w", 3);
    tu_net_add_op(net, bn);
    tu_net_add_op(net, mul);
    tu_net_add_op(net, add);
    tu_net_add_op(net, fc);
    if (infer(e, net, &h, 1, 100, &r, &st) != CT_OK)
        fail_msg("%s", st.msg);
    SHAPE(&r, "s", 6);
    SHAPE(&r, "v", 6);
    assert_int_equal(blob(&r, "s")->kind, CT__PARAM_SCALE);
    assert_int_equal(blob(&r, "m")->kind, CT__PARAM_BIAS);
    assert_int_equal(blob(&r, "v")->kind, CT__PARAM_VARIANCE);
    SHAPE(&r, "sc_w", 6);
    assert_int_equal(blob(&r, "sc_w")->kind, CT__PARAM_SCALE);
    SHAPE(&r, "sc_b", 6);
    assert_int_equal(blob(&r, "sc_b")->kind, CT__PARAM_BIAS);
    SHAPE(&r, "fw", 100, 1, 1, 6); /* axis_w 3: [N, 1, 1, K] */
    SHAPE(&r, "y", 2, 100);
    ct__shape_infer_result_destroy(&r);
    tu_net_free(net);
}

static void test_shape_infer_known_workspace_tensors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,w,b", "y");
    const int64_t dd[2] = {3, 10}, wd[2] = {7, 10};
    struct ct__shape_infer_result r;
    ct_status_t st;

    tu_net_add_op(net, tu_op("FC", "data,w,b", "y"));
    tu_feed_f32(e->ws, "data", 2, dd, NULL);
    tu_feed_f32(e->ws, "w", 2, wd, NULL);
    if (infer(e, net, NULL, 0, 0, &r, &st) != CT_OK)
        fail_msg("%s", st.msg);
    SHAPE(&r, "b", 7); /* from the given W */
    assert_int_equal(r.n_params, 1);
    assert_int_equal(r.n_widths, 0);
    assert_true(blob(&r, "w")->known && !blob(&r, "w")->hinted);
    ct__shape_infer_result_destroy(&r);
    tu_net_free(net);
}

static void test_shape_infer_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "data,w1", "c1");
    Caffe2__NetDef *nok = tu_net("k", "data,w1", "c1");
    Caffe2__NetDef *relu = tu_net("r", "x", "y");
    const int64_t dd[4] = {1, 3, 8, 8}, bad[4] = {8, 5, 3, 3};
    struct ct__shape_hint h = hint("data", 4, dd);
    struct ct__shape_hint typo = hint("dta", 4, dd);
    struct ct__shape_hint hw[2] = {hint("data", 4, dd), hint("w1", 4, bad)};
    struct ct__shape_infer_result r;
    struct ct__shape_infer_cfg cfg;
    ct_status_t st;

    tu_net_add_op(net, conv("data,w1", "c1", 3, 1));
    tu_net_add_op(nok, tu_op("Conv", "data,w1", "c1"));
    tu_net_add_op(relu, tu_op("Relu", "x", "y"));
    tu_assert_status(&st, infer(e, net, NULL, 0, 0, &r, &st), CT_ENOTFOUND,
                     "op 0 \"\" (Conv): input 0 \"data\" has no known shape: "
                     "feed it or give its shape");
    assert_int_equal(st.node, 0);
    tu_assert_status(&st, infer(e, net, &typo, 1, 0, &r, &st), CT_ENOTFOUND,
                     "a shape is given for \"dta\", which net \"n\" never "
                     "uses");
    /* Conv itself rejects a missing kernel when it is created. */
    tu_assert_status(&st, infer(e, nok, &h, 1, 0, &r, &st), CT_EARG,
                     "op 0 \"\" (Conv): kernel");
    tu_assert_status(&st, infer(e, relu, NULL, 0, 0, &r, &st), CT_ENOTFOUND,
                     "op 0 \"\" (Relu): input 0 \"x\" has no known shape");
    /* A given filter that does not fit: the op's own check reports it. */
    tu_assert_status(&st, infer(e, net, hw, 2, 0, &r, &st), CT_ESHAPE,
                     "op 0 \"\" (Conv): ");
    tu_feed_f32(e->ws, "data", 4, dd, NULL);
    memset(&cfg, 0, sizeof(cfg));
    cfg.eng = e->eng;
    cfg.def = net;
    cfg.ws = e->ws;
    tu_assert_status(&st, ct__shape_infer(&cfg, &r, &st), CT_ENOTFOUND,
                     "input 1 \"w1\" has no known shape: feed it or give its "
                     "shape (parameters are not inferred)");
    ct__shape_infer_result_destroy(&r);
    tu_net_free(net);
    tu_net_free(nok);
    tu_net_free(relu);
}

static void test_shape_infer_unknown_op_fails_at_creation(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "x", "y");
    const int64_t d[1] = {3};
    struct ct__shape_hint h = hint("x", 1, d);
    struct ct__shape_infer_result r;
    ct_status_t st;

    tu_net_add_op(net, tu_op("NoSuchOp", "x", "y"));
    tu_assert_status(&st, infer(e, net, &h, 1, 0, &r, &st), CT_ENOTFOUND,
                     "op 0 \"\" (NoSuchOp): unknown operator type");
    tu_net_free(net);
}

static void test_param_rule_find(void **state)
{
    (void)state;
    assert_non_null(ct__param_rule_find("Conv"));
    assert_non_null(ct__param_rule_find("SpatialBN"));
    assert_non_null(ct__param_rule_find("FC"));
    assert_null(ct__param_rule_find("Relu"));
    assert_null(ct__param_rule_find(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_shape_infer_conv_fc_chain_takes_default_width),
        T(test_shape_infer_group_and_width_option),
        T(test_shape_infer_nhwc_and_transpose),
        T(test_shape_infer_given_filter_fixes_widths_both_ways),
        T(test_shape_infer_sum_unifies_residual_widths),
        T(test_shape_infer_sum_of_two_free_widths_merges),
        T(test_shape_infer_bn_and_broadcast_params),
        T(test_shape_infer_known_workspace_tensors),
        T(test_shape_infer_errors),
        T(test_shape_infer_unknown_op_fails_at_creation),
        T(test_param_rule_find),
#undef T
    };
    return cmocka_run_group_tests_name("engine.shape_infer", tests, NULL, NULL);
}
