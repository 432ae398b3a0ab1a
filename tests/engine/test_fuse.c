/* Tests for engine/fuse.c (Conv + inference SpatialBN fusion): the fused
 * net's outputs are bit for bit those of the same net compiled with
 * no_fuse, over grouped, strided, 1x1, 3x3 and depthwise convolutions in
 * NCHW and NHWC, with in-place BN, a BN output read elsewhere, under both
 * executors; pairs that must not fuse (Conv output read by another op or
 * an external output) are left alone; BN shape errors read exactly as
 * unfused; new BN params between runs are used; CT_NO_FUSE turns it off.
 * A fused pair is seen from outside as the Conv's own output blob staying
 * empty. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/net.h"
#include "test_util.h"

struct conv_case {
    const char *what;
    int64_t n, c, h, w, m;
    int k, stride, pad, group;
    bool nhwc, bias;
};

static const struct conv_case cases[] = {
    {"3x3 pad 1", 2, 3, 8, 8, 4, 3, 1, 1, 1, false, true},
    {"3x3 stride 2 groups 2", 1, 4, 7, 9, 6, 3, 2, 1, 2, false, false},
    {"1x1 direct", 2, 8, 5, 5, 8, 1, 1, 0, 1, false, true},
    {"1x1 stride 2", 3, 16, 6, 6, 32, 1, 2, 0, 1, false, false},
    {"depthwise 3x3", 1, 6, 9, 9, 6, 3, 1, 1, 6, false, true},
    {"many channels 1x1", 1, 64, 4, 4, 256, 1, 1, 0, 1, false, true},
    {"many channels 3x3", 1, 32, 6, 6, 192, 3, 1, 1, 1, false, false},
    {"large image", 1, 3, 40, 40, 16, 3, 1, 1, 1, false, true},
    {"NHWC 3x3", 2, 3, 8, 8, 4, 3, 1, 1, 1, true, true},
    {"NHWC 1x1", 2, 8, 5, 5, 12, 1, 1, 0, 1, true, false},
    {"NHWC groups 2 stride 2", 1, 4, 7, 9, 6, 3, 2, 1, 2, true, true},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* Net shapes around the pair. */
enum shape {
    PLAIN,      /* Conv -> c, BN c -> y; out y */
    IN_PLACE,   /* Conv -> c, BN c -> c, Relu c -> r; out r */
    Y_SHARED,   /* PLAIN + Relu y -> r; out y, r */
    C_READ,     /* PLAIN + Relu c -> r; out y, r (no fusion) */
    C_EXTERNAL, /* PLAIN; out c, y (no fusion) */
};

static Caffe2__NetDef *make_net(const struct conv_case *cc, enum shape sh)
{
    static const char *const outs[] = {"y", "r", "y,r", "y,r", "c,y"};
    Caffe2__NetDef *net = tu_net(
        "fuse", cc->bias ? "X,W,b,s,bb,mu,v" : "X,W,s,bb,mu,v", outs[sh]);
    Caffe2__OperatorDef *conv = tu_op("Conv", cc->bias ? "X,W,b" : "X,W", "c");
    Caffe2__OperatorDef *bn =
        tu_op("SpatialBN", "c,s,bb,mu,v", sh == IN_PLACE ? "c" : "y");

    tu_op_set_name(conv, "conv");
    tu_arg_i(conv, "kernel", cc->k);
    tu_arg_i(conv, "stride", cc->stride);
    tu_arg_i(conv, "pad", cc->pad);
    tu_arg_i(conv, "group", cc->group);
    tu_arg_s(conv, "order", cc->nhwc ? "NHWC" : "NCHW");
    tu_op_set_name(bn, "bn");
    tu_arg_i(bn, "is_test", 1);
    tu_arg_f(bn, "epsilon", 1e-5f);
    tu_arg_s(bn, "order", cc->nhwc ? "NHWC" : "NCHW");
    tu_net_add_op(net, conv);
    tu_net_add_op(net, bn);
    if (sh == IN_PLACE)
        tu_net_add_op(net, tu_op("Relu", "c", "r"));
    else if (sh == Y_SHARED)
        tu_net_add_op(net, tu_op("Relu", "y", "r"));
    else if (sh == C_READ)
        tu_net_add_op(net, tu_op("Relu", "c", "r"));
    return net;
}

/* Feeds the BN params for m channels (size_m elements each) from seed. */
static void feed_bn(ct_workspace_t *ws, int64_t m, int64_t size_m,
                    uint64_t seed)
{
    float *p = malloc((size_t)size_m * sizeof(float));

    assert_non_null(p);
    (void)m;
    tu_fill_uniform(p, (size_t)size_m, 0.5f, 1.5f, seed);
    tu_feed_f32(ws, "s", 1, &size_m, p);
    tu_fill_uniform(p, (size_t)size_m, -1.0f, 1.0f, seed + 1);
    tu_feed_f32(ws, "bb", 1, &size_m, p);
    tu_fill_uniform(p, (size_t)size_m, -0.5f, 0.5f, seed + 2);
    tu_feed_f32(ws, "mu", 1, &size_m, p);
    tu_fill_uniform(p, (size_t)size_m, 0.1f, 2.0f, seed + 3);
    tu_feed_f32(ws, "v", 1, &size_m, p);
    free(p);
}

static void feed_conv(ct_workspace_t *ws, const struct conv_case *cc)
{
    const int64_t cg = cc->c / cc->group;
    int64_t xd[4], wd[4];
    size_t nx, nw;
    float *buf;

    if (cc->nhwc) {
        int64_t x[4] = {cc->n, cc->h, cc->w, cc->c};
        int64_t w[4] = {cc->m, cc->k, cc->k, cg};
        memcpy(xd, x, sizeof(x));
        memcpy(wd, w, sizeof(w));
    } else {
        int64_t x[4] = {cc->n, cc->c, cc->h, cc->w};
        int64_t w[4] = {cc->m, cg, cc->k, cc->k};
        memcpy(xd, x, sizeof(x));
        memcpy(wd, w, sizeof(w));
    }
    nx = (size_t)(cc->n * cc->c * cc->h * cc->w);
    nw = (size_t)(cc->m * cg * cc->k * cc->k);
    buf = malloc((nx > nw ? nx : nw) * sizeof(float));
    assert_non_null(buf);
    tu_fill_uniform(buf, nx, -1.0f, 1.0f, 11);
    tu_feed_f32(ws, "X", 4, xd, buf);
    tu_fill_uniform(buf, nw, -0.5f, 0.5f, 12);
    tu_feed_f32(ws, "W", 4, wd, buf);
    if (cc->bias) {
        tu_fill_uniform(buf, (size_t)cc->m, -0.2f, 0.2f, 13);
        tu_feed_f32(ws, "b", 1, &cc->m, buf);
    }
    free(buf);
}

/* One compiled net in its own engine and workspace. */
struct rig {
    struct tu_env env;
    ct_net_t *net;
};

static void rig_init(struct rig *r, const struct conv_case *cc, enum shape sh,
                     bool no_fuse, int executor)
{
    struct ct_net_config cfg;
    Caffe2__NetDef *def = make_net(cc, sh);
    ct_status_t st;

    memset(&cfg, 0, sizeof(cfg));
    cfg.no_fuse = no_fuse;
    cfg.executor = executor;
    tu_env_init(&r->env);
    feed_conv(r->env.ws, cc);
    feed_bn(r->env.ws, cc->m, cc->m, 100);
    assert_int_equal(ct_net_new(r->env.ws, def, &cfg, &r->net, &st), CT_OK);
    tu_net_free(def);
}

static void rig_destroy(struct rig *r)
{
    ct_net_free(r->net);
    tu_env_destroy(&r->env);
}

static void rig_run_ok(struct rig *r)
{
    ct_status_t st;

    ct_status_clear(&st);
    if (ct_net_run(r->net, &st) != CT_OK)
        fail_msg("run failed: %s", st.msg);
}

/* Whether blob `name` holds no tensor (a fused Conv's own output). */
static bool blob_empty(struct rig *r, const char *name)
{
    ct_blob_t *b = ct_workspace_get_blob(r->env.ws, name);

    return b == NULL || ct_blob_get_tensor(b) == NULL;
}

static void assert_same_blob(struct rig *a, struct rig *b, const char *name,
                             const char *what)
{
    ct_tensor_t *ta = tu_fetch(a->env.ws, name),
                *tb = tu_fetch(b->env.ws, name);
    int64_t n = ct_tensor_numel(ta);

    assert_int_equal(ct_tensor_ndim(ta), ct_tensor_ndim(tb));
    assert_int_equal(n, ct_tensor_numel(tb));
    assert_true(n > 0);
    if (memcmp(ct_tensor_data(ta), ct_tensor_data(tb),
               (size_t)n * sizeof(float)) != 0)
        fail_msg("%s: blob %s differs fused vs unfused", what, name);
}

/* ---- bit identity ---- */

static void check_case(const struct conv_case *cc, enum shape sh, int executor,
                       bool want_fused)
{
    static const char *const outs[][2] = {
        {"y", NULL}, {"r", "c"}, {"y", "r"}, {"y", "r"}, {"c", "y"}};
    struct rig f, u;

    rig_init(&f, cc, sh, false, executor);
    rig_init(&u, cc, sh, true, executor);
    rig_run_ok(&f);
    rig_run_ok(&u);
    assert_same_blob(&f, &u, outs[sh][0], cc->what);
    if (outs[sh][1] != NULL)
        assert_same_blob(&f, &u, outs[sh][1], cc->what);
    if (sh != IN_PLACE && blob_empty(&f, "c") != want_fused)
        fail_msg("%s: shape %d: fused %d, want %d", cc->what, (int)sh,
                 (int)blob_empty(&f, "c"), (int)want_fused);
    assert_false(blob_empty(&u, "c"));
    rig_destroy(&f);
    rig_destroy(&u);
}

static void test_bit_identical(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N_CASES; i++) {
        check_case(&cases[i], PLAIN, CT_NET_EXECUTOR_FROM_DEF, true);
        check_case(&cases[i], PLAIN, CT_EXECUTOR_DAG, true);
    }
}

static void test_in_place(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N_CASES; i++)
        check_case(&cases[i], IN_PLACE, CT_NET_EXECUTOR_FROM_DEF, true);
}

static void test_bn_output_shared(void **state)
{
    (void)state;
    check_case(&cases[0], Y_SHARED, CT_NET_EXECUTOR_FROM_DEF, true);
    check_case(&cases[8], Y_SHARED, CT_EXECUTOR_DAG, true);
}

static void test_no_fusion(void **state)
{
    (void)state;
    check_case(&cases[0], C_READ, CT_NET_EXECUTOR_FROM_DEF, false);
    check_case(&cases[1], C_EXTERNAL, CT_NET_EXECUTOR_FROM_DEF, false);
    check_case(&cases[8], C_READ, CT_EXECUTOR_DAG, false);
}

static void test_env_off(void **state)
{
    struct rig f;

    (void)state;
    assert_int_equal(setenv("CT_NO_FUSE", "1", 1), 0);
    rig_init(&f, &cases[0], PLAIN, false, CT_NET_EXECUTOR_FROM_DEF);
    assert_int_equal(unsetenv("CT_NO_FUSE"), 0);
    rig_run_ok(&f);
    assert_false(blob_empty(&f, "c"));
    rig_destroy(&f);
}

/* A Conv output the caller asks to keep (ct_net_config.keep_blobs) is
 * written: that pair does not fuse. */
static void test_keep_blobs(void **state)
{
    static const char *const keep[] = {"c"};
    const struct conv_case *cc = &cases[0];
    Caffe2__NetDef *def = make_net(cc, PLAIN);
    struct ct_net_config cfg;
    struct rig f, u;
    ct_status_t st;

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.keep_blobs = keep;
    cfg.n_keep_blobs = 1;
    tu_env_init(&f.env);
    feed_conv(f.env.ws, cc);
    feed_bn(f.env.ws, cc->m, cc->m, 100);
    assert_int_equal(ct_net_new(f.env.ws, def, &cfg, &f.net, &st), CT_OK);
    tu_net_free(def);
    rig_init(&u, cc, PLAIN, true, CT_NET_EXECUTOR_FROM_DEF);
    rig_run_ok(&f);
    rig_run_ok(&u);
    assert_false(blob_empty(&f, "c"));
    assert_same_blob(&f, &u, "c", "kept conv output");
    assert_same_blob(&f, &u, "y", "kept conv output");
    rig_destroy(&f);
    rig_destroy(&u);
}

/* ---- errors and changing params ---- */

static void test_bn_errors_named(void **state)
{
    const struct conv_case *cc = &cases[2];
    struct rig f, u;
    ct_status_t sf, su;
    int rf, ru;

    (void)state;
    rig_init(&f, cc, PLAIN, false, CT_NET_EXECUTOR_FROM_DEF);
    rig_init(&u, cc, PLAIN, true, CT_NET_EXECUTOR_FROM_DEF);
    /* Params of the wrong size: the same error, naming the BN. */
    feed_bn(f.env.ws, cc->m, cc->m + 1, 7);
    feed_bn(u.env.ws, cc->m, cc->m + 1, 7);
    rf = ct_net_run(f.net, &sf);
    ru = ct_net_run(u.net, &su);
    assert_int_equal(ru, CT_ESHAPE);
    assert_int_equal(rf, ru);
    assert_string_equal(sf.msg, su.msg);
    assert_int_equal(sf.node, 1);
    assert_non_null(strstr(sf.msg, "\"bn\" (SpatialBN)"));
    assert_non_null(strstr(sf.msg, "scale"));
    /* Fixed params: the next run is fused and bit identical again. */
    feed_bn(f.env.ws, cc->m, cc->m, 8);
    feed_bn(u.env.ws, cc->m, cc->m, 8);
    rig_run_ok(&f);
    rig_run_ok(&u);
    assert_same_blob(&f, &u, "y", "after an error");
    assert_true(blob_empty(&f, "c"));
    rig_destroy(&f);
    rig_destroy(&u);
}

static void test_params_change(void **state)
{
    const struct conv_case *cc = &cases[0];
    struct rig f, u;
    float *first;
    ct_tensor_t *t;
    size_t n;

    (void)state;
    rig_init(&f, cc, PLAIN, false, CT_NET_EXECUTOR_FROM_DEF);
    rig_init(&u, cc, PLAIN, true, CT_NET_EXECUTOR_FROM_DEF);
    rig_run_ok(&f);
    t = tu_fetch(f.env.ws, "y");
    n = (size_t)ct_tensor_numel(t);
    first = malloc(n * sizeof(float));
    assert_non_null(first);
    memcpy(first, ct_tensor_data(t), n * sizeof(float));
    feed_bn(f.env.ws, cc->m, cc->m, 200);
    feed_bn(u.env.ws, cc->m, cc->m, 200);
    rig_run_ok(&f);
    rig_run_ok(&u);
    assert_same_blob(&f, &u, "y", "new params");
    t = tu_fetch(f.env.ws, "y");
    assert_true(memcmp(first, ct_tensor_data(t), n * sizeof(float)) != 0);
    free(first);
    rig_destroy(&f);
    rig_destroy(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_identical),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_bn_output_shared),
        cmocka_unit_test(test_keep_blobs),
        cmocka_unit_test(test_no_fusion),
        cmocka_unit_test(test_env_off),
        cmocka_unit_test(test_bn_errors_named),
        cmocka_unit_test(test_params_change),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
