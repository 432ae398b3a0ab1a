/* Tests for ops/conv.c and ops/conv_transpose.c (with ops/conv_args.c,
 * ops/conv_pool.c, ops/conv_gemm.c, ops/im2col.c): Conv and ConvTranspose
 * compared with naive double-precision references (tests/ops/conv_ref.h)
 * over a case table and seeded random cases (1-3 spatial dims, NCHW and NHWC,
 * groups, depthwise, dilation, strides, asymmetric pads, 1x1, several im2col
 * tiles); legacy padding; every argument and shape error with its
 * message; shape inference, cost and overflow; scratch reuse and the
 * memory budget; and the real Caffe2 MNIST LeNet on the first MNIST test
 * images (skipped when ../shared/data or gzip is absent).
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

#include "cortado/cortado.h"
#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

#include "conv_ref.h"

/* ---- the case table ---- */

/* clang-format off */
#define P0 {0, 0, 0, 0, 0, 0}
#define ONE3 {1, 1, 1}

static const struct cr_case cases[] = {
    /* what, n_sp, nhwc, n, c, m, group, in, k, s, d, pads, adj, bias,
     * form */
    {"3x3 pad 1", 2, false, 2, 3, 4, 1, {7, 6}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"stride 2, asymmetric pads", 2, false, 1, 2, 3, 1, {8, 9}, {3, 2}, {2, 2},
     {1, 1}, {1, 0, 2, 1}, {0}, true, CR_HW},
    {"legacy scalar args", 2, false, 2, 3, 2, 1, {9, 9}, {3, 3}, {2, 2},
     {1, 1}, {1, 1, 1, 1}, {0}, false, CR_SCALAR},
    {"dilated", 2, false, 1, 2, 3, 1, {9, 10}, {3, 3}, {1, 2}, {2, 3},
     {2, 1, 0, 3}, {0}, true, CR_LISTS},
    {"grouped", 2, false, 2, 4, 6, 2, {6, 5}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"depthwise", 2, false, 2, 4, 4, 4, {7, 7}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"depthwise x2, stride 2, dilation 2", 2, false, 1, 3, 6, 3, {9, 8},
     {3, 3}, {2, 2}, {2, 2}, {2, 2, 1, 0}, {0}, true, CR_LISTS},
    {"depthwise no bias", 2, false, 1, 5, 5, 5, {4, 6}, {2, 3}, {1, 2}, {1, 1},
     {0, 1, 1, 0}, {0}, false, CR_LISTS},
    {"1x1 (direct GEMM)", 2, false, 2, 8, 5, 1, {5, 4}, {1, 1}, {1, 1}, {1, 1},
     {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"1x1 stride 2", 2, false, 1, 4, 3, 1, {7, 6}, {1, 1}, {2, 2}, {1, 1},
     {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"1x1 grouped", 2, false, 1, 6, 9, 3, {3, 4}, {1, 1}, {1, 1}, {1, 1},
     {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"kernel larger than input with pads", 2, false, 1, 2, 2, 1, {2, 3},
     {4, 4}, {1, 1}, {1, 1}, {1, 1, 2, 1}, {0}, true, CR_LISTS},
    {"NHWC 3x3", 2, true, 2, 3, 4, 1, {6, 7}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"NHWC stride 2 dilated", 2, true, 1, 2, 3, 1, {9, 8}, {3, 2}, {2, 1},
     {2, 2}, {1, 0, 2, 1}, {0}, true, CR_HW},
    {"NHWC grouped", 2, true, 2, 6, 4, 2, {5, 5}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"NHWC depthwise", 2, true, 1, 4, 4, 4, {6, 6}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"NHWC 1x1", 2, true, 2, 5, 7, 1, {3, 4}, {1, 1}, {1, 1}, {1, 1},
     {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"NHWC 1x1 grouped", 2, true, 1, 4, 6, 2, {3, 3}, {1, 1}, {1, 1}, {1, 1},
     {0, 0, 0, 0}, {0}, false, CR_LISTS},
    {"1-d", 1, false, 2, 3, 4, 1, {11}, {3}, {2}, {1}, {1, 2}, {0}, true,
     CR_LISTS},
    {"1-d NHWC grouped dilated", 1, true, 1, 4, 2, 2, {12}, {3}, {1}, {3},
     {2, 0}, {0}, true, CR_LISTS},
    {"3-d", 3, false, 1, 2, 3, 1, {4, 5, 6}, {3, 2, 3}, {1, 2, 1}, {1, 1, 2},
     {1, 0, 1, 1, 1, 0}, {0}, true, CR_LISTS},
    {"3-d NHWC grouped", 3, true, 2, 4, 4, 2, {3, 4, 5}, {2, 3, 3}, {1, 1, 2},
     {1, 1, 1}, {0, 1, 1, 1, 1, 0}, {0}, true, CR_LISTS},
    {"3-d depthwise", 3, false, 1, 3, 3, 3, {4, 4, 4}, {3, 3, 3}, {1, 1, 1},
     {1, 1, 1}, {1, 1, 1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"several im2col tiles (K = 1600)", 2, false, 1, 64, 3, 1, {20, 20},
     {5, 5}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"NHWC several tiles", 2, true, 1, 64, 3, 1, {20, 20}, {5, 5}, {1, 1},
     {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"large plane, 2 tiles", 2, false, 1, 1, 2, 1, {130, 130}, {3, 3}, {1, 1},
     {1, 1}, {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"empty batch", 2, false, 0, 3, 4, 1, {5, 5}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
};
/* clang-format on */

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* ---- helpers ---- */

static Caffe2__OperatorDef *conv_def(const struct cr_case *c, bool transpose)
{
    Caffe2__OperatorDef *op = tu_op(transpose ? "ConvTranspose" : "Conv",
                                    c->bias ? "X,W,b" : "X,W", "Y");
    int64_t v[3];
    int i;

    cr_add_args(op, c, !transpose, true);
    if (transpose) {
        for (i = 0; i < c->n_sp; i++)
            v[i] = c->adj[i];
        tu_arg_ints(op, "adjs", (size_t)c->n_sp, v);
    }
    return op;
}

/* Runs Conv on case c with random data and checks Y's dims and values
 * against the reference. */
static void check_conv_case(struct tu_env *e, const struct cr_case *c,
                            uint64_t seed)
{
    int64_t xd[5], wd[5], yd[5], out[3];
    int nd = cr_dims(c, c->c, c->in, xd), i;
    int64_t nx, nw, ny;
    float *x, *w, *b;
    double *want;
    Caffe2__OperatorDef *op = conv_def(c, false);
    const ct_tensor_t *y;
    ct_status_t st;

    cr_wdims(c, c->m, c->c / c->group, wd);
    for (i = 0; i < c->n_sp; i++)
        out[i] = cr_conv_out(c, i);
    cr_dims(c, c->m, out, yd);
    nx = cr_numel(nd, xd);
    nw = cr_numel(nd, wd);
    ny = cr_numel(nd, yd);
    x = cr_rand_floats(nx, seed);
    w = cr_rand_floats(nw, seed + 1);
    b = cr_rand_floats(c->m, seed + 2);
    want = calloc((size_t)(ny > 0 ? ny : 1), sizeof(double));
    assert_non_null(want);
    cr_conv_ref(c, x, w, c->bias ? b : NULL, want);
    tu_feed_f32(e->ws, "X", nd, xd, x);
    tu_feed_f32(e->ws, "W", nd, wd, w);
    tu_feed_f32(e->ws, "b", 1, &c->m, b);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("%s: %s", c->what, st.msg);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_ndim(y), nd);
    for (i = 0; i < nd; i++)
        if (ct_tensor_dims(y)[i] != yd[i])
            fail_msg("%s: Y dim %d is %lld, want %lld", c->what, i,
                     (long long)ct_tensor_dims(y)[i], (long long)yd[i]);
    cr_assert_close(c->what, ct_tensor_cdata(y), want, ny, 1e-4, 1e-4);
    tu_op_free(op);
    free(x);
    free(w);
    free(b);
    free(want);
}

/* A random valid case: 1-3 spatial dims, either layout, groups,
 * strides, dilations, pads. */
static void random_case(uint64_t *rng, struct cr_case *c)
{
    int i;

    memset(c, 0, sizeof(*c));
    c->what = "random";
    c->n_sp = cr_rand(rng, 1, 3);
    c->nhwc = cr_rand(rng, 0, 1);
    c->n = cr_rand(rng, 1, 2);
    c->group = cr_rand(rng, 1, 3);
    c->c = c->group * cr_rand(rng, 1, 3);
    c->m = c->group * cr_rand(rng, 1, 3);
    c->bias = cr_rand(rng, 0, 1);
    c->form = c->n_sp == 2 && cr_rand(rng, 0, 1) ? CR_HW : CR_LISTS;
    for (i = 0; i < c->n_sp; i++) {
        int dk;
        c->k[i] = cr_rand(rng, 1, 3);
        c->s[i] = cr_rand(rng, 1, 3);
        c->d[i] = cr_rand(rng, 1, 2);
        c->pads[i] = cr_rand(rng, 0, 2);
        c->pads[c->n_sp + i] = cr_rand(rng, 0, 2);
        dk = c->d[i] * (c->k[i] - 1) + 1;
        c->in[i] = cr_rand(rng, 1, c->n_sp == 3 ? 5 : 9);
        if (c->in[i] + c->pads[i] + c->pads[c->n_sp + i] < dk)
            c->in[i] = dk;
    }
}

/* ---- tests: values ---- */

static void test_conv_case_table_matches_reference(void **state)
{
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++)
        check_conv_case(*state, &cases[ci], 100 + 7 * ci);
}

static void test_conv_random_cases_match_reference(void **state)
{
    uint64_t rng = 12345;
    struct cr_case c;
    int i;

    for (i = 0; i < 150; i++) {
        random_case(&rng, &c);
        check_conv_case(*state, &c, 1000 + (uint64_t)i);
    }
}

/* The forward items fit the engine's lanes (ct__conv_job_fit): whole
 * images per direct 1x1 GEMM when the batch and groups give every lane
 * work, else pixel tiles (16-column aligned, at least 128, short last
 * tile) or, for small images with many output channels, output-channel
 * parts (8-row aligned, at least 64 or 128 rows, short last part; im2col
 * and direct). These cases cover each split on 1-, 2- and 3-thread
 * engines. */
static void test_conv_1x1_lane_tiling_matches_reference(void **state)
{
    /* clang-format off */
    static const struct cr_case c1[] = {
        {"1x1 batch 1, pixels split", 2, false, 1, 16, 24, 1, {37, 29},
         {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
        {"1x1 batch 1, 7 pixels (fewer than a tile step)", 2, false, 1, 8, 5,
         1, {1, 7}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, false,
         CR_LISTS},
        {"1x1 batch 7, whole images", 2, false, 7, 12, 10, 1, {9, 11},
         {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
        {"1x1 batch 2 grouped, split", 2, false, 2, 8, 6, 2, {13, 17},
         {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
        {"NHWC 1x1 batch 1, split", 2, true, 1, 9, 14, 1, {23, 19}, {1, 1},
         {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
        {"NHWC 1x1 batch 5 grouped", 2, true, 5, 6, 9, 3, {7, 6}, {1, 1},
         {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, false, CR_LISTS},
        {"1-d 1x1 batch 1", 1, false, 1, 4, 3, 1, {300}, {1}, {1}, {1},
         {0, 0}, {0}, true, CR_LISTS},
        {"3-d 1x1 batch 1", 3, false, 1, 3, 4, 1, {5, 6, 7}, {1, 1, 1},
         {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, {0}, true, CR_LISTS},
        {"1x1 small image, channel parts", 2, false, 1, 6, 200, 1, {3, 3},
         {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
        {"3x3 small image, channel parts", 2, false, 1, 5, 300, 1, {4, 4},
         {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, {0}, true, CR_LISTS},
        {"3x3 stride 2 grouped, channel parts", 2, false, 1, 4, 540, 2,
         {5, 4}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, {0}, false,
         CR_LISTS},
        {"1x1 grouped small image, channel parts", 2, false, 1, 4, 300, 2,
         {2, 3}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, false,
         CR_LISTS},
        {"1x1 batch 6, 1600 pixels (capped tiles)", 2, false, 6, 3, 4, 1,
         {40, 40}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true,
         CR_LISTS},
        {"1x1 batch 1, 2500 pixels, channel parts", 2, false, 1, 2, 3000, 1,
         {50, 50}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, false,
         CR_LISTS},
        {"1x1 batch 1, 300 pixels (128-wide tiles)", 2, false, 1, 3, 5, 1,
         {15, 20}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true,
         CR_LISTS},
    };
    /* clang-format on */
    const int threads[3] = {1, 2, 3};
    size_t ci, ti;

    (void)state;
    for (ti = 0; ti < 3; ti++) {
        struct ct_engine_config cfg;
        struct tu_env env;
        ct_status_t st;

        ct_engine_config_init(&cfg);
        cfg.n_threads = threads[ti];
        assert_int_equal(ct_engine_new(&cfg, &env.eng, &st), CT_OK);
        assert_int_equal(ct_workspace_new(env.eng, NULL, &env.ws, &st), CT_OK);
        for (ci = 0; ci < sizeof(c1) / sizeof(c1[0]); ci++)
            check_conv_case(&env, &c1[ci], 500 + 11 * ci + ti);
        ct_workspace_free(env.ws);
        ct_engine_free(env.eng);
    }
}

/* legacy_pad SAME equals explicit pads (need / 2 at the head, the rest at
 * the tail); VALID equals no padding. */
static void
test_conv_legacy_pad_same_and_valid_match_explicit_pads(void **state)
{
    struct tu_env *e = *state;
    const int64_t xd[4] = {1, 2, 7, 8}, wd[4] = {3, 2, 4, 3};
    float *x = cr_rand_floats(112, 5), *w = cr_rand_floats(72, 6);
    Caffe2__OperatorDef *same = tu_op("Conv", "X,W", "Y1");
    Caffe2__OperatorDef *expl = tu_op("Conv", "X,W", "Y2");
    Caffe2__OperatorDef *valid = tu_op("Conv", "X,W", "Y3");
    Caffe2__OperatorDef *none = tu_op("Conv", "X,W", "Y4");
    const int64_t k[2] = {4, 3}, s[2] = {2, 3};
    /* H: target 4, need 3*2+4-7 = 3 -> 1, 2; W: target 3, need 6+3-8 = 1
     * -> 0, 1. */
    const int64_t pads[4] = {1, 0, 2, 1};
    const ct_tensor_t *y1, *y2, *y3, *y4;
    ct_status_t st;

    tu_arg_ints(same, "kernels", 2, k);
    tu_arg_ints(same, "strides", 2, s);
    tu_arg_i(same, "legacy_pad", 2);
    tu_arg_ints(expl, "kernels", 2, k);
    tu_arg_ints(expl, "strides", 2, s);
    tu_arg_ints(expl, "pads", 4, pads);
    tu_arg_ints(valid, "kernels", 2, k);
    tu_arg_ints(valid, "strides", 2, s);
    tu_arg_i(valid, "legacy_pad", 1);
    tu_arg_ints(none, "kernels", 2, k);
    tu_arg_ints(none, "strides", 2, s);
    tu_feed_f32(e->ws, "X", 4, xd, x);
    tu_feed_f32(e->ws, "W", 4, wd, w);
    assert_int_equal(tu_run_op(e->ws, same, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, expl, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, valid, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, none, &st), CT_OK);
    y1 = tu_fetch(e->ws, "Y1");
    y2 = tu_fetch(e->ws, "Y2");
    y3 = tu_fetch(e->ws, "Y3");
    y4 = tu_fetch(e->ws, "Y4");
    assert_int_equal(ct_tensor_dims(y1)[2], 4);
    assert_int_equal(ct_tensor_dims(y1)[3], 3);
    assert_int_equal(ct_tensor_numel(y1), ct_tensor_numel(y2));
    assert_memory_equal(ct_tensor_cdata(y1), ct_tensor_cdata(y2),
                        ct_tensor_nbytes(y1));
    assert_int_equal(ct_tensor_dims(y3)[2], 2);
    assert_int_equal(ct_tensor_dims(y3)[3], 2);
    assert_memory_equal(ct_tensor_cdata(y3), ct_tensor_cdata(y4),
                        ct_tensor_nbytes(y3));
    tu_op_free(same);
    tu_op_free(expl);
    tu_op_free(valid);
    tu_op_free(none);
    free(x);
    free(w);
}

/* Caffe's ceil mode (legacy_pad 3) also applies to Conv: 6 with kernel 3,
 * stride 2 gives ceil(3 / 2) + 1 = 3 outputs, the last window reading
 * one zero column past the input. */
static void test_conv_legacy_pad_caffe_uses_ceil(void **state)
{
    struct tu_env *e = *state;
    const int64_t xd[4] = {1, 1, 1, 6}, wd[4] = {1, 1, 1, 3};
    const float x[6] = {1, 2, 3, 4, 5, 6}, w[3] = {1, 10, 100};
    const int64_t k[2] = {1, 3}, s[2] = {1, 2};
    Caffe2__OperatorDef *op = tu_op("Conv", "X,W", "Y");
    const ct_tensor_t *y;
    const float *yv;
    ct_status_t st;

    tu_arg_ints(op, "kernels", 2, k);
    tu_arg_ints(op, "strides", 2, s);
    tu_arg_i(op, "legacy_pad", 3);
    tu_feed_f32(e->ws, "X", 4, xd, x);
    tu_feed_f32(e->ws, "W", 4, wd, w);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_dims(y)[3], 3);
    yv = ct_tensor_cdata(y);
    assert_true(yv[0] == 321.0f && yv[1] == 543.0f && yv[2] == 65.0f);
    tu_op_free(op);
}

/* Running the same op twice reuses its im2col scratch: the engine's
 * bytes in use do not grow on the second run, and drop once the op is
 * destroyed. */
static void test_conv_scratch_is_sized_once_and_released(void **state)
{
    struct tu_env *e = *state;
    const struct cr_case *c = &cases[0];
    int64_t xd[4], wd[4];
    float *x, *w, *b;
    Caffe2__OperatorDef *def = conv_def(c, false);
    uint64_t after1, after2, after_free;
    ct_status_t st;
    ct_op_t *op;

    cr_dims(c, c->c, c->in, xd);
    cr_wdims(c, c->m, c->c, wd);
    x = cr_rand_floats(cr_numel(4, xd), 1);
    w = cr_rand_floats(cr_numel(4, wd), 2);
    b = cr_rand_floats(c->m, 3);
    tu_feed_f32(e->ws, "X", 4, xd, x);
    tu_feed_f32(e->ws, "W", 4, wd, w);
    tu_feed_f32(e->ws, "b", 1, &c->m, b);
    assert_int_equal(ct__op_create(e->ws, def, 0, &op, &st), CT_OK);
    assert_int_equal(ct__op_run_serial(op, &st), CT_OK);
    after1 = ct_engine_mem_in_use(e->eng);
    assert_int_equal(ct__op_run_serial(op, &st), CT_OK);
    after2 = ct_engine_mem_in_use(e->eng);
    assert_true(after1 == after2);
    ct__op_destroy(op);
    after_free = ct_engine_mem_in_use(e->eng);
    /* The columns: K = 27 rows of 42 output pixels, per lane. */
    assert_true(after1 > after_free);
    assert_true((after1 - after_free) % (27 * 42 * sizeof(float)) == 0);
    tu_op_free(def);
    free(x);
    free(w);
    free(b);
}

/* The im2col scratch is charged to the memory budget: a budget that
 * holds the tensors but not the columns fails cleanly with CT_ENOMEM. */
static void test_conv_scratch_over_budget_returns_enomem(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_workspace_t *ws;
    const int64_t xd[4] = {1, 16, 32, 32}, wd[4] = {4, 16, 3, 3};
    Caffe2__OperatorDef *op = tu_op("Conv", "X,W", "Y");
    ct_status_t st;

    (void)state;
    ct_engine_config_init(&cfg);
    /* X 64 KiB, W 2.3 KiB, Y 14.4 KiB; the columns need 144 rows x 900
     * pixels = 506 KiB. */
    cfg.mem_budget_bytes = 200 * 1024;
    assert_int_equal(ct_engine_new(&cfg, &eng, &st), CT_OK);
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_arg_i(op, "kernel", 3);
    tu_feed(ws, "X", CT_DTYPE_F32, 4, xd, NULL);
    tu_feed(ws, "W", CT_DTYPE_F32, 4, wd, NULL);
    tu_assert_status(&st, tu_run_op(ws, op, &st), CT_ENOMEM,
                     "Conv im2col scratch: ");
    assert_non_null(strstr(st.msg, "bytes exceed the memory budget"));
    tu_op_free(op);
    ct_workspace_free(ws);
    ct_engine_free(eng);
}

/* Every allocation of a Conv run (op creation, output, im2col scratch)
 * may fail: the run returns CT_ENOMEM and nothing leaks. */
static void test_conv_alloc_failures_return_enomem_no_leak(void **state)
{
    const int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {3, 2, 3, 3};
    long k, base;
    bool done = false;

    (void)state;
    base = tu_alloc_live();
    for (k = 1; !done && k < 1000; k++) {
        struct tu_env e;
        Caffe2__OperatorDef *op = tu_op("Conv", "X,W", "Y");
        ct_status_t st;
        int rc;

        tu_arg_i(op, "kernel", 3);
        tu_arg_i(op, "pad", 1);
        tu_env_init(&e);
        tu_feed(e.ws, "X", CT_DTYPE_F32, 4, xd, NULL);
        tu_feed(e.ws, "W", CT_DTYPE_F32, 4, wd, NULL);
        tu_fail_alloc_after(k);
        rc = tu_run_op(e.ws, op, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            assert_int_equal(ct_tensor_numel(tu_fetch(e.ws, "Y")), 75);
            done = true;
        } else {
            tu_assert_status(&st, rc, CT_ENOMEM, NULL);
        }
        tu_op_free(op);
        tu_env_destroy(&e);
        assert_int_equal(tu_alloc_live(), base);
    }
    assert_true(done);
}

/* ---- ConvTranspose ---- */

static void check_convt_case(struct tu_env *e, const struct cr_case *c,
                             uint64_t seed)
{
    int64_t xd[5], wd[5], yd[5], out[3];
    int nd = cr_dims(c, c->c, c->in, xd), i;
    int64_t nx, nw, ny;
    float *x, *w, *b;
    double *want;
    Caffe2__OperatorDef *op = conv_def(c, true);
    const ct_tensor_t *y;
    ct_status_t st;

    /* Here c->c is X's channel count M and c->m Y's channel count C. */
    cr_wdims(c, c->c, c->m / c->group, wd);
    for (i = 0; i < c->n_sp; i++)
        out[i] = cr_convt_out(c, i);
    cr_dims(c, c->m, out, yd);
    nx = cr_numel(nd, xd);
    nw = cr_numel(nd, wd);
    ny = cr_numel(nd, yd);
    x = cr_rand_floats(nx, seed);
    w = cr_rand_floats(nw, seed + 1);
    b = cr_rand_floats(c->m, seed + 2);
    want = calloc((size_t)(ny > 0 ? ny : 1), sizeof(double));
    assert_non_null(want);
    cr_convt_ref(c, x, w, c->bias ? b : NULL, want);
    tu_feed_f32(e->ws, "X", nd, xd, x);
    tu_feed_f32(e->ws, "W", nd, wd, w);
    tu_feed_f32(e->ws, "b", 1, &c->m, b);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("%s: %s", c->what, st.msg);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_ndim(y), nd);
    for (i = 0; i < nd; i++)
        if (ct_tensor_dims(y)[i] != yd[i])
            fail_msg("%s: Y dim %d is %lld, want %lld", c->what, i,
                     (long long)ct_tensor_dims(y)[i], (long long)yd[i]);
    cr_assert_close(c->what, ct_tensor_cdata(y), want, ny, 1e-4, 1e-4);
    tu_op_free(op);
    free(x);
    free(w);
    free(b);
    free(want);
}

/* clang-format off */
static const struct cr_case t_cases[] = {
    {"transpose 3x3 stride 2", 2, false, 2, 3, 4, 1, {4, 5}, {3, 3}, {2, 2},
     ONE3, {1, 1, 1, 1}, {1, 0}, true, CR_LISTS},
    {"transpose asymmetric, HW", 2, false, 1, 2, 3, 1, {3, 4}, {4, 3}, {2, 3},
     ONE3, {0, 1, 2, 0}, {0, 0}, false, CR_HW},
    {"transpose grouped", 2, false, 1, 4, 6, 2, {3, 3}, {2, 2}, {2, 2}, ONE3,
     P0, {0, 0}, true, CR_LISTS},
    {"transpose 1x1", 2, false, 2, 5, 3, 1, {3, 4}, {1, 1}, {1, 1}, ONE3, P0,
     {0, 0}, true, CR_LISTS},
    {"transpose NHWC", 2, true, 2, 3, 4, 1, {4, 3}, {3, 2}, {2, 1}, ONE3,
     {1, 0, 0, 1}, {1, 0}, true, CR_LISTS},
    {"transpose NHWC grouped", 2, true, 1, 6, 4, 2, {3, 3}, {3, 3}, {2, 2},
     ONE3, {1, 1, 1, 1}, {1, 1}, true, CR_LISTS},
    {"transpose NHWC 1x1 grouped", 2, true, 1, 4, 6, 2, {2, 3}, {1, 1}, {1, 1},
     ONE3, P0, {0, 0}, false, CR_LISTS},
    {"transpose 1-d", 1, false, 1, 2, 3, 1, {5}, {3}, {3}, ONE3, {1, 0}, {2},
     true, CR_LISTS},
    {"transpose 3-d NHWC", 3, true, 1, 2, 2, 1, {2, 3, 2}, {2, 2, 3},
     {2, 1, 2}, ONE3, {0, 1, 0, 0, 0, 1}, {1, 0, 0}, true, CR_LISTS},
    {"transpose depthwise", 2, false, 1, 3, 3, 3, {4, 4}, {3, 3}, {2, 2}, ONE3,
     {1, 1, 1, 1}, {1, 1}, true, CR_LISTS},
    {"transpose empty batch", 2, false, 0, 3, 2, 1, {4, 4}, {3, 3}, {1, 1},
     ONE3, P0, {0, 0}, true, CR_LISTS},
};
/* clang-format on */

static void test_conv_transpose_cases_match_scatter_reference(void **state)
{
    size_t ci;

    for (ci = 0; ci < sizeof(t_cases) / sizeof(t_cases[0]); ci++)
        check_convt_case(*state, &t_cases[ci], 300 + 11 * ci);
}

static void test_conv_transpose_random_cases_match_reference(void **state)
{
    uint64_t rng = 777;
    struct cr_case c;
    int i, j;

    for (i = 0; i < 60; i++) {
        random_case(&rng, &c);
        c.what = "random transpose";
        for (j = 0; j < c.n_sp; j++) {
            c.d[j] = 1;
            c.adj[j] = cr_rand(&rng, 0, c.s[j]);
            c.in[j] = cr_rand(&rng, 1, 4);
            /* Keep the output non-empty. */
            while (cr_convt_out(&c, j) <= 0)
                c.in[j]++;
        }
        check_convt_case(*state, &c, 5000 + (uint64_t)i);
    }
}

/* VALID and SAME mean no padding for ConvTranspose, as in Caffe2. */
static void test_conv_transpose_legacy_same_uses_no_padding(void **state)
{
    struct tu_env *e = *state;
    const int64_t xd[4] = {1, 1, 2, 2}, wd[4] = {1, 1, 3, 3};
    Caffe2__OperatorDef *op = tu_op("ConvTranspose", "X,W", "Y");
    const ct_tensor_t *y;
    ct_status_t st;

    tu_arg_i(op, "kernel", 3);
    tu_arg_i(op, "stride", 2);
    tu_arg_i(op, "legacy_pad", 2);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, xd, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 4, wd, NULL);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_dims(y)[2], 5);
    assert_int_equal(ct_tensor_dims(y)[3], 5);
    tu_op_free(op);
}

/* ---- tests: argument errors (at creation) ---- */

/* Creates the op (with X, W fed) and expects code and message. */
static void expect_create_error(struct tu_env *e, Caffe2__OperatorDef *def,
                                int code, const char *needle)
{
    const int64_t xd[4] = {1, 4, 6, 6}, wd[4] = {2, 4, 3, 3};
    ct_status_t st;
    ct_op_t *op = NULL;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, xd, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 4, wd, NULL);
    tu_feed(e->ws, "b", CT_DTYPE_F32, 1, wd, NULL);
    ct_status_clear(&st);
    tu_assert_status(&st, ct__op_create(e->ws, def, 0, &op, &st), code, needle);
    assert_null(op);
    tu_op_free(def);
}

static void test_conv_kernel_missing_returns_earg(void **state)
{
    expect_create_error(*state, tu_op("Conv", "X,W", "Y"), CT_EARG,
                        "kernel not given: set kernel, kernel_h and "
                        "kernel_w, or kernels");
}

static void test_conv_kernel_zero_returns_earg(void **state)
{
    const int64_t k[2] = {3, 0};
    Caffe2__OperatorDef *a = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *b = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *c = tu_op("ConvTranspose", "X,W", "Y");

    tu_arg_ints(a, "kernels", 2, k);
    expect_create_error(*state, a, CT_EARG, "kernels[1] = 0 must be > 0");
    tu_arg_i(b, "kernel", -2);
    expect_create_error(*state, b, CT_EARG, "kernel = -2 must be > 0");
    tu_arg_i(c, "kernel_h", 0);
    tu_arg_i(c, "kernel_w", 2);
    expect_create_error(*state, c, CT_EARG, "kernel_h = 0 must be > 0");
}

static void test_conv_stride_and_dilation_nonpositive_return_earg(void **state)
{
    Caffe2__OperatorDef *a = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *b = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *c = tu_op("Conv", "X,W", "Y");

    tu_arg_i(a, "kernel", 3);
    tu_arg_i(a, "stride_h", 1);
    tu_arg_i(a, "stride_w", 0);
    expect_create_error(*state, a, CT_EARG, "stride_w = 0 must be > 0");
    tu_arg_i(b, "kernel", 3);
    tu_arg_i(b, "dilation", -1);
    expect_create_error(*state, b, CT_EARG, "dilation = -1 must be > 0");
    tu_arg_i(c, "kernel", 3);
    tu_arg_i(c, "stride", 0);
    expect_create_error(*state, c, CT_EARG, "stride = 0 must be > 0");
}

static void test_conv_negative_pad_returns_earg(void **state)
{
    const int64_t p[4] = {0, 1, -1, 0};
    Caffe2__OperatorDef *a = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *b = tu_op("Conv", "X,W", "Y");

    tu_arg_i(a, "kernel", 3);
    tu_arg_ints(a, "pads", 4, p);
    expect_create_error(*state, a, CT_EARG, "pads[2] = -1 must be >= 0");
    tu_arg_i(b, "kernel", 3);
    tu_arg_i(b, "pad_t", 0);
    tu_arg_i(b, "pad_l", 0);
    tu_arg_i(b, "pad_b", 0);
    tu_arg_i(b, "pad_r", -3);
    expect_create_error(*state, b, CT_EARG, "pad_r = -3 must be >= 0");
}

static void test_conv_group_order_legacy_values_return_earg(void **state)
{
    Caffe2__OperatorDef *a = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *b = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *c = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *d = tu_op("Conv", "X,W", "Y");

    tu_arg_i(a, "kernel", 3);
    tu_arg_i(a, "group", 0);
    expect_create_error(*state, a, CT_EARG, "group = 0 must be > 0");
    tu_arg_i(b, "kernel", 3);
    tu_arg_s(b, "order", "NCWH");
    expect_create_error(*state, b, CT_EARG,
                        "order \"NCWH\" is not NCHW or NHWC");
    tu_arg_i(c, "kernel", 3);
    tu_arg_i(c, "legacy_pad", 7);
    expect_create_error(*state, c, CT_EARG,
                        "legacy_pad = 7 is not one of 0 (NOTSET), 1 (VALID), "
                        "2 (SAME), 3 (CAFFE_LEGACY_POOLING)");
    tu_arg_i(d, "kernel", 3);
    tu_arg_i(d, "global_pooling", 1);
    expect_create_error(*state, d, CT_EARG,
                        "global_pooling = 1: only pooling ops pool globally");
}

static void test_conv_legacy_pad_conflicts_return_earg(void **state)
{
    const int64_t p[4] = {0, 0, 0, 0};
    Caffe2__OperatorDef *a = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *b = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *c = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *d = tu_op("ConvTranspose", "X,W", "Y");

    tu_arg_i(a, "kernel", 3);
    tu_arg_i(a, "legacy_pad", 1);
    tu_arg_i(a, "pad", 1);
    expect_create_error(*state, a, CT_EARG,
                        "legacy_pad = 1 (VALID) computes the padding, so pad "
                        "must not be given");
    tu_arg_i(b, "kernel", 3);
    tu_arg_i(b, "legacy_pad", 2);
    tu_arg_ints(b, "pads", 4, p);
    expect_create_error(*state, b, CT_EARG,
                        "legacy_pad = 2 (SAME) computes the padding, so "
                        "pads[0] must not be given");
    tu_arg_i(c, "kernel", 3);
    tu_arg_i(c, "legacy_pad", 2);
    tu_arg_i(c, "dilation", 2);
    expect_create_error(*state, c, CT_EARG,
                        "dilation = 2: legacy_pad = 2 (SAME) does not "
                        "support dilation");
    tu_arg_i(d, "kernel", 3);
    tu_arg_i(d, "legacy_pad", 3);
    expect_create_error(*state, d, CT_EARG,
                        "legacy_pad = 3 (CAFFE_LEGACY_POOLING) is not "
                        "supported by ConvTranspose");
}

static void test_conv_argument_forms_conflict_returns_earg(void **state)
{
    const int64_t k[2] = {3, 3}, s[3] = {1, 1, 1}, p[2] = {1, 1};
    Caffe2__OperatorDef *a = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *b = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *c = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *d = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *f = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *g = tu_op("Conv", "X,W", "Y");

    tu_arg_i(a, "kernel", 3);
    tu_arg_ints(a, "kernels", 2, k);
    expect_create_error(*state, a, CT_EARG,
                        "kernel and kernels both given; use one of them");
    tu_arg_i(b, "kernel_h", 3);
    expect_create_error(*state, b, CT_EARG,
                        "kernel_h, kernel_w must be given together: kernel_w "
                        "is missing");
    tu_arg_ints(c, "kernels", 2, k);
    tu_arg_i(c, "stride_h", 1);
    tu_arg_i(c, "stride_w", 1);
    tu_arg_ints(c, "strides", 2, k);
    expect_create_error(*state, c, CT_EARG,
                        "stride_h and strides both given; use one form");
    tu_arg_ints(d, "kernels", 2, k);
    tu_arg_ints(d, "strides", 3, s);
    expect_create_error(*state, d, CT_EARG,
                        "strides has 3 values but needs 2 (one per kernel "
                        "dim)");
    tu_arg_ints(f, "kernels", 2, k);
    tu_arg_ints(f, "pads", 2, p);
    expect_create_error(*state, f, CT_EARG,
                        "pads has 2 values but needs 4 (begin and end per "
                        "kernel dim)");
    tu_arg_i(g, "kernel", 3);
    tu_arg_i(g, "pad_t", 1);
    tu_arg_i(g, "pad_b", 1);
    expect_create_error(*state, g, CT_EARG,
                        "pad_t, pad_l, pad_b, pad_r must be given together: "
                        "pad_l is missing");
}

static void test_conv_argument_range_and_rank_errors(void **state)
{
    const int64_t big[2] = {5000000000LL, 3}, k4[4] = {1, 1, 1, 1};
    Caffe2__OperatorDef *a = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *b = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *c = tu_op("Conv", "X,W", "Y");
    Caffe2__OperatorDef *d = tu_op("Conv", "X,W", "Y");

    tu_arg_ints(a, "kernels", 2, big);
    expect_create_error(*state, a, CT_EARG,
                        "kernels[0] = 5000000000 is out of range for int32");
    tu_arg_ints(b, "kernels", 4, k4);
    expect_create_error(*state, b, CT_ENOTSUP,
                        "kernels has 4 values: at most 3 spatial dims are "
                        "supported");
    tu_arg_f(c, "kernel", 3.0f);
    expect_create_error(*state, c, CT_EARG,
                        "Argument kernel does not have the right field: "
                        "expected i, has f");
    tu_arg_i(d, "kernel", 5000000000LL);
    expect_create_error(*state, d, CT_EARG,
                        "Argument kernel value 5000000000 is out of range");
}

static void test_conv_transpose_adj_and_dilation_return_earg(void **state)
{
    Caffe2__OperatorDef *a = tu_op("ConvTranspose", "X,W", "Y");
    Caffe2__OperatorDef *b = tu_op("ConvTranspose", "X,W", "Y");
    Caffe2__OperatorDef *c = tu_op("ConvTranspose", "X,W", "Y");

    tu_arg_i(a, "kernel", 3);
    tu_arg_i(a, "stride", 2);
    tu_arg_i(a, "adj_h", 3);
    tu_arg_i(a, "adj_w", 0);
    expect_create_error(*state, a, CT_EARG,
                        "adj_h = 3 must be in [0, stride = 2]");
    tu_arg_i(b, "kernel", 3);
    tu_arg_i(b, "adj", -1);
    expect_create_error(*state, b, CT_EARG, "adj = -1 must be >= 0");
    tu_arg_i(c, "kernel", 3);
    tu_arg_i(c, "dilation", 2);
    expect_create_error(*state, c, CT_EARG,
                        "dilation = 2: ConvTranspose does not support "
                        "dilation");
}

static void test_conv_inplace_returns_eschema(void **state)
{
    Caffe2__OperatorDef *a = tu_op("Conv", "X,W", "X");

    tu_arg_i(a, "kernel", 3);
    expect_create_error(*state, a, CT_ESCHEMA, NULL);
}

/* ---- tests: shape errors (at run time) ---- */

static void expect_run_error(struct tu_env *e, const char *type, int nx,
                             const int64_t *xd, int nw, const int64_t *wd,
                             int nb, const int64_t *bd, const char *args,
                             int code, const char *needle)
{
    Caffe2__OperatorDef *op = tu_op(type, nb > 0 ? "X,W,b" : "X,W", "Y");
    ct_status_t st;

    /* args: "kernel" value for a 2-d op, or "k1" for a 1-d kernels list. */
    if (strcmp(args, "k1") == 0) {
        const int64_t k = 3;
        tu_arg_ints(op, "kernels", 1, &k);
    } else {
        tu_arg_i(op, "kernel", atoi(args));
    }
    tu_feed(e->ws, "X", CT_DTYPE_F32, nx, xd, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, nw, wd, NULL);
    if (nb > 0)
        tu_feed(e->ws, "b", CT_DTYPE_F32, nb, bd, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), code, needle);
    tu_op_free(op);
}

static void test_conv_channel_and_filter_mismatch_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    const int64_t x[4] = {1, 3, 5, 5}, w[4] = {4, 3, 5, 5};
    const int64_t w2[4] = {4, 2, 3, 3}, x4[4] = {1, 4, 5, 5};

    expect_run_error(e, "Conv", 4, x, 4, w, 0, NULL, "3", CT_ESHAPE,
                     "W [4, 3, 5, 5] does not match: expected [4, 3, 3, 3] "
                     "(M=4, C/group=3/1, kernel)");
    expect_run_error(e, "Conv", 4, x, 4, w2, 0, NULL, "3", CT_ESHAPE,
                     "W [4, 2, 3, 3] does not match: expected [4, 3, 3, 3]");
    {
        Caffe2__OperatorDef *op = tu_op("Conv", "X,W", "Y");
        const int64_t w3[4] = {3, 2, 3, 3};
        ct_status_t st;

        tu_arg_i(op, "kernel", 3);
        tu_arg_i(op, "group", 2);
        tu_feed(e->ws, "X", CT_DTYPE_F32, 4, x, NULL);
        tu_feed(e->ws, "W", CT_DTYPE_F32, 4, w3, NULL);
        tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                         "X [1, 3, 5, 5] has C=3 channels, not divisible by "
                         "group 2");
        tu_feed(e->ws, "X", CT_DTYPE_F32, 4, x4, NULL);
        tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                         "W [3, 2, 3, 3] has M=3 output channels, not "
                         "divisible by group 2");
        tu_op_free(op);
    }
}

static void test_conv_rank_bias_extent_errors_return_eshape(void **state)
{
    struct tu_env *e = *state;
    const int64_t x[4] = {1, 3, 5, 5}, w[4] = {4, 3, 3, 3}, w3[3] = {4, 3, 3};
    const int64_t x3[3] = {1, 3, 5}, b[1] = {5}, b2[2] = {4, 1};
    const int64_t xs[4] = {1, 3, 2, 5}, x0[4] = {1, 0, 5, 5};
    const int64_t x1[3] = {2, 3, 2}, w1[3] = {2, 3, 3};

    expect_run_error(e, "Conv", 3, x3, 4, w, 0, NULL, "3", CT_ESHAPE,
                     "X [1, 3, 5] is 3-d, but the kernel has 2 spatial dims "
                     "(want 4-d)");
    expect_run_error(e, "Conv", 4, x, 3, w3, 0, NULL, "3", CT_ESHAPE,
                     "W [4, 3, 3] must be 4-d like X [1, 3, 5, 5]");
    expect_run_error(e, "Conv", 4, x, 4, w, 1, b, "3", CT_ESHAPE,
                     "b [5] must be 1-d of M=4 elements");
    expect_run_error(e, "Conv", 4, x, 4, w, 2, b2, "3", CT_ESHAPE,
                     "b [4, 1] must be 1-d of M=4 elements");
    expect_run_error(e, "Conv", 4, xs, 4, w, 0, NULL, "3", CT_ESHAPE,
                     "spatial dim 0: input extent 2 with pads 0 + 0 is "
                     "smaller than the kernel extent 3 (kernel 3, dilation "
                     "1): output extent would be <= 0");
    expect_run_error(e, "Conv", 4, x0, 4, w, 0, NULL, "3", CT_ESHAPE,
                     "X [1, 0, 5, 5]: channels and spatial extents must be "
                     "> 0");
    expect_run_error(e, "Conv", 3, x1, 3, w1, 0, NULL, "k1", CT_ESHAPE,
                     "spatial dim 0: input extent 2");
}

static void test_conv_transpose_shape_errors_return_eshape(void **state)
{
    struct tu_env *e = *state;
    const int64_t x[4] = {1, 3, 4, 4}, w[4] = {2, 5, 3, 3};
    const int64_t wk[4] = {3, 5, 2, 3}, b[1] = {4};

    expect_run_error(e, "ConvTranspose", 4, x, 4, w, 0, NULL, "3", CT_ESHAPE,
                     "W [2, 5, 3, 3] does not match: expected [3, 5, 3, 3] "
                     "(M=3 input channels, C/group=5, kernel)");
    expect_run_error(e, "ConvTranspose", 4, x, 4, wk, 0, NULL, "3", CT_ESHAPE,
                     "expected [3, 5, 3, 3]");
    {
        const int64_t wok[4] = {3, 5, 3, 3};
        expect_run_error(e, "ConvTranspose", 4, x, 4, wok, 1, b, "3", CT_ESHAPE,
                         "b [4] must be 1-d of C=5 elements");
    }
    {
        Caffe2__OperatorDef *op = tu_op("ConvTranspose", "X,W", "Y");
        const int64_t x1[4] = {1, 3, 1, 1}, w1[4] = {3, 5, 2, 2};
        ct_status_t st;

        tu_arg_i(op, "kernel", 2);
        tu_arg_i(op, "pad", 1);
        tu_feed(e->ws, "X", CT_DTYPE_F32, 4, x1, NULL);
        tu_feed(e->ws, "W", CT_DTYPE_F32, 4, w1, NULL);
        tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                         "spatial dim 0: output extent (1 - 1) * stride 1 + "
                         "kernel 2 + adj 0 - pads 1 - 1 = 0 is <= 0");
        tu_op_free(op);
    }
}

static void test_conv_dtype_errors(void **state)
{
    struct tu_env *e = *state;
    const int64_t x[4] = {1, 1, 3, 3}, w[4] = {1, 1, 3, 3}, b[1] = {1};
    Caffe2__OperatorDef *op = tu_op("Conv", "X,W,b", "Y");
    ct_status_t st;

    tu_arg_i(op, "kernel", 3);
    tu_feed(e->ws, "X", CT_DTYPE_F64, 4, x, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 4, w, NULL);
    tu_feed(e->ws, "b", CT_DTYPE_F32, 1, b, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                     "unsupported dtype DOUBLE for X (FLOAT only)");
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, x, NULL);
    tu_feed(e->ws, "b", CT_DTYPE_I32, 1, b, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ETYPE,
                     "X is FLOAT but W is FLOAT and b is INT32; all must be "
                     "FLOAT");
    tu_feed(e->ws, "W", CT_DTYPE_F64, 4, w, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ETYPE,
                     "X is FLOAT but W is DOUBLE and b is INT32; all must be "
                     "FLOAT");
    tu_op_free(op);
}

/* ---- tests: shape inference, cost, overflow ---- */

static ct_shape_t shape(ct_dtype_t dt, int nd, const int64_t *d)
{
    ct_shape_t s;

    memset(&s, 0, sizeof(s));
    s.dtype = dt;
    s.ndim = nd;
    if (nd > 0)
        memcpy(s.dims, d, (size_t)nd * sizeof(int64_t));
    return s;
}

static ct_op_t *create_op(struct tu_env *e, Caffe2__OperatorDef *def)
{
    ct_status_t st;
    ct_op_t *op;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 0, NULL, NULL);
    tu_feed(e->ws, "b", CT_DTYPE_F32, 0, NULL, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create: %s", st.msg);
    return op;
}

static void test_conv_infer_gives_output_shape_and_cost(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("Conv", "X,W,b", "Y");
    ct_op_t *op;
    /* ResNet-50's first layer: 7x7 stride 2 pad 3, 3 -> 64 at 224. */
    const int64_t x[4] = {2, 3, 224, 224}, w[4] = {64, 3, 7, 7}, b[1] = {64};
    const int64_t y[4] = {2, 64, 112, 112};
    ct_shape_t in[3], out[1];
    ct_status_t st;

    tu_arg_i(def, "kernel", 7);
    tu_arg_i(def, "stride", 2);
    tu_arg_i(def, "pad", 3);
    op = create_op(e, def);
    in[0] = shape(CT_DTYPE_F32, 4, x);
    in[1] = shape(CT_DTYPE_F32, 4, w);
    in[2] = shape(CT_DTYPE_F32, 1, b);
    out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_F32);
    assert_int_equal(out[0].ndim, 4);
    assert_memory_equal(out[0].dims, y, sizeof(y));
    /* 2 * N * M * out * C * k = 2 * 2 * 64 * 12544 * 3 * 49. */
    assert_true(op->schema->cost_cb(op, in) == 2.0 * 2 * 64 * 12544 * 147);
    /* Unknown W: Y unknown. */
    in[1] = shape(CT_DTYPE_F32, -1, NULL);
    out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, -1);
    assert_true(op->schema->cost_cb(op, in) == 0.0);
    /* A dtype mismatch. */
    in[1] = shape(CT_DTYPE_F64, 4, w);
    ct_status_clear(&st);
    tu_assert_status(&st, op->schema->infer_cb(op, in, out, &st), CT_ETYPE,
                     "X is FLOAT but W is DOUBLE");
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_conv_transpose_infer_gives_output_shape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("ConvTranspose", "X,W", "Y");
    ct_op_t *op;
    const int64_t x[4] = {1, 8, 5, 5}, w[4] = {8, 3, 4, 4};
    const int64_t y[4] = {1, 3, 11, 11};
    ct_shape_t in[2], out[1];
    ct_status_t st;

    tu_arg_i(def, "kernel", 4);
    tu_arg_i(def, "stride", 2);
    tu_arg_i(def, "pad", 1);
    tu_arg_i(def, "adj", 1);
    op = create_op(e, def);
    in[0] = shape(CT_DTYPE_F32, 4, x);
    in[1] = shape(CT_DTYPE_F32, 4, w);
    out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_memory_equal(out[0].dims, y, sizeof(y));
    /* 2 * N * M * in * (C/group) * k = 2 * 8 * 25 * 3 * 16. */
    assert_true(op->schema->cost_cb(op, in) == 2.0 * 8 * 25 * 3 * 16);
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_conv_infer_overflow_and_blas_range(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tu_op("Conv", "X,W", "Y");
    ct_op_t *op;
    const int64_t big = (int64_t)1 << 40;
    const int64_t x[4] = {big, 1, big, 1}, w[4] = {big, 1, 1, 1};
    const int64_t x2[4] = {1, 1, (int64_t)1 << 32, 1}, w2[4] = {1, 1, 1, 1};
    const int64_t x3[4] = {1, 1, INT64_MAX, 1};
    ct_shape_t in[2], out[1];
    ct_status_t st;

    tu_arg_i(def, "kernel", 1);
    tu_arg_i(def, "pad", 1);
    op = create_op(e, def);
    in[0] = shape(CT_DTYPE_F32, 4, x);
    in[1] = shape(CT_DTYPE_F32, 4, w);
    out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    ct_status_clear(&st);
    tu_assert_status(&st, op->schema->infer_cb(op, in, out, &st), CT_EOVERFLOW,
                     "overflows int64");
    in[0] = shape(CT_DTYPE_F32, 4, x2);
    in[1] = shape(CT_DTYPE_F32, 4, w2);
    ct_status_clear(&st);
    tu_assert_status(&st, op->schema->infer_cb(op, in, out, &st), CT_ENOTSUP,
                     "exceeds the BLAS int range");
    in[0] = shape(CT_DTYPE_F32, 4, x3);
    ct_status_clear(&st);
    tu_assert_status(&st, op->schema->infer_cb(op, in, out, &st), CT_EOVERFLOW,
                     "spatial dim 0: input extent 9223372036854775807 plus "
                     "pads overflows int64");
    ct__op_destroy(op);
    tu_op_free(def);
    /* A 3-d input volume of 2^66 elements. */
    {
        const int64_t k3[3] = {1, 1, 1}, ext = (int64_t)1 << 22;
        const int64_t x5[5] = {1, 1, ext, ext, ext};
        const int64_t w5[5] = {1, 1, 1, 1, 1};
        def = tu_op("Conv", "X,W", "Y");
        tu_arg_ints(def, "kernels", 3, k3);
        op = create_op(*state, def);
        in[0] = shape(CT_DTYPE_F32, 5, x5);
        in[1] = shape(CT_DTYPE_F32, 5, w5);
        ct_status_clear(&st);
        tu_assert_status(&st, op->schema->infer_cb(op, in, out, &st),
                         CT_EOVERFLOW,
                         "the input, output or kernel volume of 3 spatial "
                         "dims overflows int64");
        ct__op_destroy(op);
        tu_op_free(def);
    }
}

/* ---- the real MNIST LeNet ---- */

/* Reads n images (u8, 28x28) or labels from an idx .gz through gzip -dc.
 * Returns false (with a message) when gzip or the file is unavailable. */
static bool read_idx_gz(const char *path, size_t skip, size_t n,
                        unsigned char *out)
{
    char cmd[1024];
    unsigned char hdr[16];
    FILE *f;
    bool ok;

    snprintf(cmd, sizeof(cmd), "gzip -dc '%s' 2>/dev/null", path);
    f = popen(cmd, "r");
    if (f == NULL)
        return false;
    ok = fread(hdr, 1, skip, f) == skip && fread(out, 1, n, f) == n;
    pclose(f);
    return ok;
}

static void test_conv_lenet_mnist_predicts_labels(void **state)
{
    struct tu_env *e = *state;
    const char *p_init, *p_pred, *p_img, *p_lab;
    char s_init[512], s_pred[512], s_img[512], s_lab[512];
    enum { N = 10 };
    unsigned char img[N * 784], lab[N];
    float x[N * 784];
    const int64_t xd[4] = {N, 1, 28, 28};
    ct_netdef_t *init = NULL, *pred = NULL;
    ct_net_t *net = NULL;
    const ct_tensor_t *prob;
    const float *pv;
    ct_status_t st;
    int i, j, correct = 0;

    if (!tu_have_data()) {
        skip();
        return;
    }
    snprintf(s_init, sizeof(s_init), "%s",
             tu_data_path("caffe2/mnist_lenet_agnostic12/init_net.pb"));
    snprintf(s_pred, sizeof(s_pred), "%s",
             tu_data_path("caffe2/mnist_lenet_agnostic12/predict_net.pb"));
    snprintf(s_img, sizeof(s_img), "%s",
             tu_data_path("mnist/t10k-images-idx3-ubyte.gz"));
    snprintf(s_lab, sizeof(s_lab), "%s",
             tu_data_path("mnist/t10k-labels-idx1-ubyte.gz"));
    p_init = s_init;
    p_pred = s_pred;
    p_img = s_img;
    p_lab = s_lab;
    if (!read_idx_gz(p_img, 16, sizeof(img), img) ||
        !read_idx_gz(p_lab, 8, sizeof(lab), lab)) {
        print_message("skipped: cannot read MNIST through gzip -dc\n");
        skip();
        return;
    }
    /* The tutorial's input: pixels * 1/256, NCHW [N, 1, 28, 28]. */
    for (i = 0; i < N * 784; i++)
        x[i] = (float)img[i] * 0.00390625f;
    if (ct_netdef_read_file(p_init, &init, &st) != CT_OK ||
        ct_netdef_read_file(p_pred, &pred, &st) != CT_OK ||
        ct_workspace_run_net_once(e->ws, init, &st) != CT_OK)
        fail_msg("loading LeNet: %s", st.msg);
    tu_feed_f32(e->ws, "data", 4, xd, x);
    if (ct_net_new(e->ws, pred, NULL, &net, &st) != CT_OK ||
        ct_net_run(net, &st) != CT_OK)
        fail_msg("running LeNet: %s", st.msg);
    prob = tu_fetch(e->ws, "softmax");
    assert_int_equal(ct_tensor_ndim(prob), 2);
    assert_int_equal(ct_tensor_dims(prob)[0], N);
    assert_int_equal(ct_tensor_dims(prob)[1], 10);
    pv = ct_tensor_cdata(prob);
    for (i = 0; i < N; i++) {
        int best = 0;
        for (j = 1; j < 10; j++)
            if (pv[i * 10 + j] > pv[i * 10 + best])
                best = j;
        correct += best == lab[i];
    }
    print_message("LeNet: %d of the first %d MNIST test images correct\n",
                  correct, N);
    assert_true(correct >= 9);
    ct_net_free(net);
    ct_netdef_free(pred);
    ct_netdef_free(init);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_conv_case_table_matches_reference),
        T(test_conv_random_cases_match_reference),
        T(test_conv_1x1_lane_tiling_matches_reference),
        T(test_conv_legacy_pad_same_and_valid_match_explicit_pads),
        T(test_conv_legacy_pad_caffe_uses_ceil),
        T(test_conv_scratch_is_sized_once_and_released),
        T(test_conv_scratch_over_budget_returns_enomem),
        T(test_conv_alloc_failures_return_enomem_no_leak),
        T(test_conv_transpose_cases_match_scatter_reference),
        T(test_conv_transpose_random_cases_match_reference),
        T(test_conv_transpose_legacy_same_uses_no_padding),
        T(test_conv_kernel_missing_returns_earg),
        T(test_conv_kernel_zero_returns_earg),
        T(test_conv_stride_and_dilation_nonpositive_return_earg),
        T(test_conv_negative_pad_returns_earg),
        T(test_conv_group_order_legacy_values_return_earg),
        T(test_conv_legacy_pad_conflicts_return_earg),
        T(test_conv_argument_forms_conflict_returns_earg),
        T(test_conv_argument_range_and_rank_errors),
        T(test_conv_transpose_adj_and_dilation_return_earg),
        T(test_conv_inplace_returns_eschema),
        T(test_conv_channel_and_filter_mismatch_returns_eshape),
        T(test_conv_rank_bias_extent_errors_return_eshape),
        T(test_conv_transpose_shape_errors_return_eshape),
        T(test_conv_dtype_errors),
        T(test_conv_infer_gives_output_shape_and_cost),
        T(test_conv_transpose_infer_gives_output_shape),
        T(test_conv_infer_overflow_and_blas_range),
        T(test_conv_lenet_mnist_predicts_labels),
#undef T
    };
    return cmocka_run_group_tests_name("ops.conv", tests, NULL, NULL);
}
