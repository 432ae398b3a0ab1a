/* Tests for engine/grad_accum.c: K micro-batch Do scopes summed in a
 * fixed order give, bit for bit, the gradients and the updated parameters
 * of the same K micro-batches computed one after the other in one
 * workspace; and the K scopes run at the same time on 2 threads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cortado/grad_accum.h"
#include "cortado/gradient.h"
#include "cortado/net.h"
#include "cortado/proto.h"
#include "test_util.h"

enum { K = 4, C = 10 };

/* Micro-batch rows, input width and hidden width of the MLP. */
struct sizes {
    int b, d, h;
};

/* Small enough that no op splits its work; and a size at which FC cuts
 * its output into tiles run through ct_parallel_for. */
static const struct sizes small = {8, 16, 32};
static const struct sizes large = {64, 256, 256};

static const char *fwd_txt =
    "name: \"mlp\"\n"
    "op { input: \"data\" input: \"W1\" input: \"b1\" output: \"h\" "
    "type: \"FC\" }\n"
    "op { input: \"h\" output: \"h\" type: \"Relu\" }\n"
    "op { input: \"h\" input: \"W2\" input: \"b2\" output: \"logits\" "
    "type: \"FC\" }\n"
    "op { input: \"logits\" input: \"label\" output: \"prob\" "
    "output: \"loss\" type: \"SoftmaxWithLoss\" }\n";

static const char *params[4] = {"W1", "b1", "W2", "b2"};

static ct_netdef_t *parse(const char *txt)
{
    ct_netdef_t *def = NULL;
    ct_status_t st = {0};

    if (ct_netdef_parse(txt, strlen(txt), CT_PROTO_TEXT, &def, &st) != CT_OK)
        fail_msg("parse: %s", st.msg);
    return def;
}

static void make_env(struct tu_env *e, int n_threads, int intra_op)
{
    struct ct_engine_config cfg;
    ct_status_t st = {0};

    ct_engine_config_init(&cfg);
    cfg.n_threads = n_threads;
    cfg.intra_op = intra_op;
    assert_int_equal(ct_engine_new(&cfg, &e->eng, &st), CT_OK);
    assert_int_equal(ct_workspace_new(e->eng, NULL, &e->ws, &st), CT_OK);
}

static void feed_params(ct_workspace_t *ws, const struct sizes *z)
{
    const int64_t dw1[2] = {z->h, z->d}, db1[1] = {z->h}, dw2[2] = {C, z->h},
                  db2[1] = {C};
    float *w1 = test_malloc((size_t)(z->h * z->d) * sizeof(float));
    float *b1 = test_malloc((size_t)z->h * sizeof(float));
    float *w2 = test_malloc((size_t)(C * z->h) * sizeof(float));
    float b2[C];

    tu_fill_uniform(w1, (size_t)(z->h * z->d), -0.3f, 0.3f, 1);
    tu_fill_uniform(b1, (size_t)z->h, -0.1f, 0.1f, 2);
    tu_fill_uniform(w2, (size_t)(C * z->h), -0.3f, 0.3f, 3);
    tu_fill_uniform(b2, C, -0.1f, 0.1f, 4);
    tu_feed_f32(ws, "W1", 2, dw1, w1);
    tu_feed_f32(ws, "b1", 1, db1, b1);
    tu_feed_f32(ws, "W2", 2, dw2, w2);
    tu_feed_f32(ws, "b2", 1, db2, b2);
    test_free(w1);
    test_free(b1);
    test_free(w2);
}

static void feed_batch(ct_workspace_t *ws, const struct sizes *z, int k,
                       const char *data, const char *label)
{
    float *x = test_malloc((size_t)(z->b * z->d) * sizeof(float));
    int32_t *y = test_malloc((size_t)z->b * sizeof(int32_t));
    const int64_t dx[2] = {z->b, z->d}, dy[1] = {z->b};
    int i;

    tu_fill_uniform(x, (size_t)(z->b * z->d), -1, 1, 100 + (uint64_t)k);
    for (i = 0; i < z->b; i++)
        y[i] = (i * 7 + k * 3) % C;
    tu_feed_f32(ws, data, 2, dx, x);
    tu_feed(ws, label, CT_DTYPE_I32, 1, dy, y);
    test_free(x);
    test_free(y);
}

static void assert_same_bits(ct_workspace_t *a, ct_workspace_t *b,
                             const char *name)
{
    const ct_tensor_t *x = tu_fetch(a, name), *y = tu_fetch(b, name);

    assert_int_equal(ct_tensor_nbytes(x), ct_tensor_nbytes(y));
    if (memcmp(ct_tensor_cdata(x), ct_tensor_cdata(y), ct_tensor_nbytes(x)))
        fail_msg("%s differs between accumulated and sequential", name);
}

/* K micro-batches accumulated on the dag executor with 2 threads (intra-op
 * mode `intra_op`) against the same micro-batches run one after the other
 * in one workspace of a one-thread engine, over 3 steps. */
static void check_equals_sequential(const struct sizes *z, int intra_op)
{
    struct tu_env acc, seq;
    ct_status_t st = {0};
    struct ct_grad_accum_config cfg = {0};
    const char *inputs[2] = {"data", "label"};
    ct_netdef_t *fwd = parse(fwd_txt), *step = NULL, *fb = NULL, *upd;
    ct_net_t *step_net = NULL, *fb_net = NULL, *upd_net = NULL;
    char name[32], txt[4096];
    size_t off, i;
    int k, it;

    cfg.k = K;
    cfg.params = params;
    cfg.n_params = 4;
    cfg.inputs = inputs;
    cfg.n_inputs = 2;
    cfg.loss = "loss";
    cfg.lr = -0.1f;
    if (ct_netdef_build_grad_accum(fwd, &cfg, &step, &st) != CT_OK)
        fail_msg("%s", st.msg);

    /* Accumulated, on the dag executor with 2 threads. */
    make_env(&acc, 2, intra_op);
    feed_params(acc.ws, z);
    for (k = 0; k < K; k++) {
        char d[16], l[16];
        snprintf(d, sizeof(d), "data_%d", k);
        snprintf(l, sizeof(l), "label_%d", k);
        feed_batch(acc.ws, z, k, d, l);
    }
    if (ct_net_new(acc.ws, step, NULL, &step_net, &st) != CT_OK)
        fail_msg("%s", st.msg);

    /* Sequential: one forward+backward net, K runs, copies, then the
     * same Sum order and update. */
    make_env(&seq, 1, CT_INTRA_OP_POOL);
    feed_params(seq.ws, z);
    feed_batch(seq.ws, z, 0, "data", "label");
    assert_int_equal(ct_proto_copy(&fwd->base, (ProtobufCMessage **)&fb, &st),
                     CT_OK);
    {
        const char *loss = "loss";
        assert_int_equal(ct_netdef_add_gradient_ops(fb, &loss, 1, &st), CT_OK);
    }
    assert_int_equal(ct_net_new(seq.ws, fb, NULL, &fb_net, &st), CT_OK);
    off = (size_t)snprintf(txt, sizeof(txt), "name: \"upd\"\n");
    for (i = 0; i < 4; i++) {
        off += (size_t)snprintf(txt + off, sizeof(txt) - off, "op {");
        for (k = 0; k < K; k++)
            off += (size_t)snprintf(txt + off, sizeof(txt) - off,
                                    " input: \"%s_grad_%d\"", params[i], k);
        off += (size_t)snprintf(txt + off, sizeof(txt) - off,
                                " output: \"%s_grad\" type: \"Sum\" }\n",
                                params[i]);
    }
    off += (size_t)snprintf(
        txt + off, sizeof(txt) - off,
        "op { output: \"one\" type: \"ConstantFill\" arg { name: \"shape\" "
        "ints: 1 } arg { name: \"value\" f: 1 } }\n"
        "op { output: \"lr\" type: \"ConstantFill\" arg { name: \"shape\" "
        "ints: 1 } arg { name: \"value\" f: -0.1 } }\n");
    for (i = 0; i < 4; i++)
        off += (size_t)snprintf(
            txt + off, sizeof(txt) - off,
            "op { input: \"%s\" input: \"one\" input: \"%s_grad\" "
            "input: \"lr\" output: \"%s\" type: \"WeightedSum\" }\n",
            params[i], params[i], params[i]);
    upd = parse(txt);
    for (k = 0; k < K; k++)
        for (i = 0; i < 4; i++) {
            snprintf(name, sizeof(name), "%s_grad_%d", params[i], k);
            tu_feed_f32(seq.ws, name, 1, (const int64_t[]){1},
                        (const float[]){0});
        }
    assert_int_equal(ct_net_new(seq.ws, upd, NULL, &upd_net, &st), CT_OK);

    for (it = 0; it < 3; it++) {
        if (ct_net_run(step_net, &st) != CT_OK)
            fail_msg("%s", st.msg);
        for (k = 0; k < K; k++) {
            feed_batch(seq.ws, z, k, "data", "label");
            assert_int_equal(ct_net_run(fb_net, &st), CT_OK);
            for (i = 0; i < 4; i++) {
                char g[32];
                ct_blob_t *dst;
                ct_tensor_t *t;
                snprintf(g, sizeof(g), "%s_grad", params[i]);
                snprintf(name, sizeof(name), "%s_grad_%d", params[i], k);
                dst = ct_workspace_get_blob(seq.ws, name);
                assert_int_equal(
                    ct_blob_get_mutable_tensor(dst, seq.eng, &t, &st), CT_OK);
                assert_int_equal(ct_tensor_copy(t, tu_fetch(seq.ws, g), &st),
                                 CT_OK);
            }
        }
        assert_int_equal(ct_net_run(upd_net, &st), CT_OK);
        for (i = 0; i < 4; i++) {
            char g[32];
            snprintf(g, sizeof(g), "%s_grad", params[i]);
            assert_same_bits(acc.ws, seq.ws, g);
            assert_same_bits(acc.ws, seq.ws, params[i]);
        }
    }
    ct_net_free(upd_net);
    ct_net_free(fb_net);
    ct_net_free(step_net);
    ct_netdef_free(upd);
    ct_netdef_free(fb);
    ct_netdef_free(step);
    ct_netdef_free(fwd);
    tu_env_destroy(&seq);
    tu_env_destroy(&acc);
}

static void test_grad_accum_equals_sequential(void **state)
{
    (void)state;
    check_equals_sequential(&small, CT_INTRA_OP_POOL);
}

/* With intra-op parallelism off, the scopes are the only parallelism and
 * the result still equals the one-thread sequential run at sizes where
 * FC would split its rows (which changes OpenBLAS's rounding). */
static void
test_grad_accum_serial_intra_op_large_equals_sequential(void **state)
{
    (void)state;
    check_equals_sequential(&large, CT_INTRA_OP_SERIAL);
}

/* With intra-op parallelism on as well, FC's tiles depend on the shape
 * only, so the result is still bit-identical to the one-thread run. */
static void test_grad_accum_pool_intra_op_large_equals_sequential(void **state)
{
    (void)state;
    check_equals_sequential(&large, CT_INTRA_OP_POOL);
}

static void test_grad_accum_bad_config_returns_einval(void **state)
{
    static const char *const inputs[2] = {"data", "label"};
    struct ct_grad_accum_config cfg = {0};
    ct_netdef_t *fwd = parse(fwd_txt), *anon, *step = NULL;
    ct_status_t st = {0};

    (void)state;
    cfg.k = 0;
    cfg.params = params;
    cfg.n_params = 4;
    cfg.inputs = inputs;
    cfg.n_inputs = 2;
    cfg.loss = "loss";
    assert_int_equal(ct_netdef_build_grad_accum(fwd, &cfg, &step, &st),
                     CT_EINVAL);
    assert_non_null(strstr(st.msg, "need k >= 1 (got 0)"));
    assert_null(step);
    cfg.k = 2;
    cfg.n_params = 0;
    assert_int_equal(ct_netdef_build_grad_accum(fwd, &cfg, &step, &st),
                     CT_EINVAL);
    cfg.n_params = 4;
    cfg.loss = NULL;
    assert_int_equal(ct_netdef_build_grad_accum(fwd, &cfg, &step, &st),
                     CT_EINVAL);
    cfg.loss = "loss";
    anon = parse(fwd_txt + strlen("name: \"mlp\"\n"));
    assert_int_equal(ct_netdef_build_grad_accum(anon, &cfg, &step, &st),
                     CT_EINVAL);
    assert_non_null(strstr(st.msg, "a named net"));
    assert_null(step);
    /* A loss no op writes: the gradient builder's error. */
    cfg.loss = "nope";
    assert_int_equal(ct_netdef_build_grad_accum(fwd, &cfg, &step, &st),
                     CT_ENOTFOUND);
    assert_non_null(strstr(st.msg, "nope"));
    assert_null(step);
    ct_netdef_free(anon);
    ct_netdef_free(fwd);
}

/* The K scopes overlap: a 30 ms busy NoOp in the forward net (no
 * gradient, no effect on the values); an observer on every subnet sees
 * two of them running at the same moment (no timing assertion). */
static void test_grad_accum_scopes_overlap(void **state)
{
    struct tu_env e;
    ct_status_t st = {0};
    struct ct_grad_accum_config cfg = {0};
    const char *inputs[2] = {"data", "label"};
    char txt[2048];
    ct_netdef_t *fwd, *step = NULL;
    ct_net_t *net = NULL;
    struct tu_overlap *watch;
    int k, r;

    (void)state;
    snprintf(txt, sizeof(txt),
             "%sop { type: \"NoOp\" arg { name: \"busy_ns\" i: 30000000 } }\n",
             fwd_txt);
    fwd = parse(txt);
    cfg.k = K;
    cfg.params = params;
    cfg.n_params = 4;
    cfg.inputs = inputs;
    cfg.n_inputs = 2;
    cfg.loss = "loss";
    assert_int_equal(ct_netdef_build_grad_accum(fwd, &cfg, &step, &st), CT_OK);
    make_env(&e, 2, CT_INTRA_OP_POOL);
    watch = tu_overlap_watch(e.eng, "NoOp");
    feed_params(e.ws, &small);
    for (k = 0; k < K; k++) {
        char d[16], l[16];
        snprintf(d, sizeof(d), "data_%d", k);
        snprintf(l, sizeof(l), "label_%d", k);
        feed_batch(e.ws, &small, k, d, l);
    }
    if (ct_net_new(e.ws, step, NULL, &net, &st) != CT_OK)
        fail_msg("%s", st.msg);
    for (r = 0; r < 10 && tu_overlap_max(watch) < 2; r++)
        assert_int_equal(ct_net_run(net, &st), CT_OK);
    if (tu_overlap_max(watch) < 2)
        fail_msg("K=4 scopes on 2 threads never ran concurrently in %d runs",
                 r);
    ct_net_free(net);
    ct_netdef_free(step);
    ct_netdef_free(fwd);
    tu_env_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_accum_equals_sequential),
        cmocka_unit_test(
            test_grad_accum_serial_intra_op_large_equals_sequential),
        cmocka_unit_test(test_grad_accum_pool_intra_op_large_equals_sequential),
        cmocka_unit_test(test_grad_accum_bad_config_returns_einval),
        cmocka_unit_test(test_grad_accum_scopes_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
