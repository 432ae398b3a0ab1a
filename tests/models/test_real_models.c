/* Integration test: real Caffe2 models through the library API.
 *   - squeezenet_trafficlight_miyuan2018 (init_net.pb + predict_net.pb:
 *     legacy_pad pooling, Concat, Dropout is_test, global AveragePool) on
 *     a random [2, 3, 227, 227] input: probabilities finite, summing to 1
 *     per image;
 *   - the zoo's ResNet-50 text NetDef with ct_workspace_fill_params: the
 *     parameter shapes the rules give (default widths, and a pinned
 *     projection filter that fixes the residual widths through the Sum),
 *     a run with a finite softmax;
 *   - the zoo's DenseNet-121 (Concat-heavy, Mul / Add broadcast params):
 *     filled and run.
 * Skips cleanly when ../shared/data is absent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/fill.h"
#include "cortado/net.h"
#include "cortado/proto.h"
#include "op_test.h"
#include "test_util.h"

static ct_netdef_t *read_net(const char *rel)
{
    ct_netdef_t *def = NULL;
    ct_status_t st;

    if (ct_netdef_read_file(tu_data_path(rel), &def, &st) != CT_OK)
        fail_msg("%s: %s", rel, st.msg);
    return def;
}

static struct ct_fill_shape fshape(const char *name, int nd, const int64_t *d)
{
    struct ct_fill_shape s;

    memset(&s, 0, sizeof(s));
    s.name = name;
    s.ndim = nd;
    memcpy(s.dims, d, (size_t)nd * sizeof(int64_t));
    return s;
}

/* Compiles def with `input` as an extra declared input and runs it once. */
static void compile_and_run(struct tu_env *e, const ct_netdef_t *def,
                            const char *input)
{
    struct ct_net_config cfg;
    ct_net_t *net;
    ct_status_t st;

    memset(&cfg, 0, sizeof(cfg));
    cfg.extra_inputs = &input;
    cfg.n_extra_inputs = 1;
    if (ct_net_new(e->ws, def, &cfg, &net, &st) != CT_OK)
        fail_msg("compile: %s", st.msg);
    if (ct_net_run(net, &st) != CT_OK)
        fail_msg("run: %s", st.msg);
    ct_net_free(net);
}

/* Every row of the [rows, cols] probabilities is finite and sums to 1. */
static void assert_probabilities(const ct_tensor_t *t, int64_t rows)
{
    const float *p = ct_tensor_cdata(t);
    const int64_t cols = ct_tensor_numel(t) / rows;
    int64_t r, k;

    assert_int_equal(ct_tensor_numel(t), rows * cols);
    for (r = 0; r < rows; r++) {
        double sum = 0;
        for (k = 0; k < cols; k++) {
            assert_true(isfinite(p[r * cols + k]) && p[r * cols + k] >= 0);
            sum += p[r * cols + k];
        }
        assert_true(fabs(sum - 1) < 1e-4);
    }
}

static int64_t dim(struct tu_env *e, const char *name, int i)
{
    return ct_tensor_dim(tu_fetch(e->ws, name), i);
}

static void test_squeezenet_gives_probabilities(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[4] = {2, 3, 227, 227};
    struct ct_fill_shape sh = fshape("data", 4, d);
    struct ct_fill_config cfg;
    ct_netdef_t *init, *pred;
    const ct_tensor_t *prob;
    ct_status_t st;

    if (!tu_have_data())
        skip();
    init = read_net("caffe2/squeezenet_trafficlight_miyuan2018/init_net.pb");
    pred = read_net("caffe2/squeezenet_trafficlight_miyuan2018/predict_net.pb");
    if (ct_workspace_run_net_once(e->ws, init, &st) != CT_OK)
        fail_msg("init: %s", st.msg);
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = CT_FILL_NONE; /* the weights come from the init net */
    cfg.seed = 5;
    cfg.shapes = &sh;
    cfg.n_shapes = 1;
    if (ct_workspace_fill_params(e->ws, pred, &cfg, NULL, &st) != CT_OK)
        fail_msg("fill: %s", st.msg);
    compile_and_run(e, pred, "data");
    prob = tu_fetch(e->ws, "prob");
    assert_int_equal(ct_tensor_ndim(prob), 4);
    assert_int_equal(ct_tensor_dim(prob, 0), 2);
    assert_int_equal(ct_tensor_dim(prob, 1), 3);
    assert_probabilities(prob, 2);
    ct_netdef_free(init);
    ct_netdef_free(pred);
}

static void test_resnet50_fill_shapes_and_run(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[4] = {1, 3, 224, 224};
    struct ct_fill_shape sh = fshape("gpu_0/data", 4, d);
    struct ct_fill_config cfg;
    struct ct_fill_report rep;
    ct_netdef_t *pred;
    ct_status_t st;

    if (!tu_have_data())
        skip();
    pred = read_net("caffe2/zoo_pbtxt/resnet50_predict_net.pbtxt");
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = CT_FILL_RANDOM;
    cfg.shapes = &sh;
    cfg.n_shapes = 1;
    if (ct_workspace_fill_params(e->ws, pred, &cfg, &rep, &st) != CT_OK)
        fail_msg("fill: %s", st.msg);
    /* 53 Conv + 1 FC widths; the 4 projection shortcuts and their
     * residual branches are unified by the Sums, but all take 64. */
    assert_int_equal(rep.n_widths, 54);
    assert_int_equal(rep.n_params, 267);
    assert_int_equal(dim(e, "gpu_0/conv1_w", 0), 64);
    assert_int_equal(dim(e, "gpu_0/conv1_w", 1), 3);
    assert_int_equal(dim(e, "gpu_0/conv1_w", 3), 7);
    assert_int_equal(dim(e, "gpu_0/res_conv1_bn_s", 0), 64);
    assert_int_equal(dim(e, "gpu_0/pred_w", 1), 64);
    compile_and_run(e, pred, "gpu_0/data");
    assert_probabilities(tu_fetch(e->ws, "gpu_0/softmax"), 1);
    ct_netdef_free(pred);
}

static void test_resnet50_pinned_projection_fixes_residual_widths(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[4] = {1, 3, 224, 224}, w[4] = {256, 64, 1, 1};
    struct ct_fill_shape sh[2] = {fshape("gpu_0/data", 4, d),
                                  fshape("gpu_0/res2_0_branch1_w", 4, w)};
    struct ct_fill_config cfg;
    struct ct_fill_report rep;
    ct_netdef_t *pred;
    ct_status_t st;

    if (!tu_have_data())
        skip();
    pred = read_net("caffe2/zoo_pbtxt/resnet50_predict_net.pbtxt");
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = CT_FILL_ZEROS;
    cfg.shapes = sh;
    cfg.n_shapes = 2;
    if (ct_workspace_fill_params(e->ws, pred, &cfg, &rep, &st) != CT_OK)
        fail_msg("fill: %s", st.msg);
    /* res2_0's Sum makes branch2c 256 wide, res2_1 and res2_2's Sums
     * carry it to their branch2c, and res3_0's filters read 256. */
    assert_int_equal(dim(e, "gpu_0/res2_0_branch2c_w", 0), 256);
    assert_int_equal(dim(e, "gpu_0/res2_1_branch2c_w", 0), 256);
    assert_int_equal(dim(e, "gpu_0/res2_2_branch2c_w", 0), 256);
    assert_int_equal(dim(e, "gpu_0/res2_1_branch2a_w", 1), 256);
    assert_int_equal(dim(e, "gpu_0/res3_0_branch1_w", 1), 256);
    assert_int_equal(dim(e, "gpu_0/res2_1_branch2a_w", 0), 64);
    /* The pinned filter has no free width, and its C = 64 fixes conv1's;
     * the three branch2c widths are fixed by the Sums; the other 49 take
     * the default. */
    assert_int_equal(rep.n_widths, 53);
    assert_int_equal(rep.n_widths_default, 49);
    compile_and_run(e, pred, "gpu_0/data");
    assert_probabilities(tu_fetch(e->ws, "gpu_0/softmax"), 1);
    ct_netdef_free(pred);
}

static void test_densenet121_fill_and_run(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[4] = {1, 3, 224, 224};
    struct ct_fill_shape sh = fshape("data", 4, d);
    struct ct_fill_config cfg;
    struct ct_fill_report rep;
    const ct_tensor_t *out;
    ct_netdef_t *pred;
    ct_status_t st;
    int64_t i;

    if (!tu_have_data())
        skip();
    pred = read_net("caffe2/zoo_pbtxt/densenet121_predict_net.pbtxt");
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = CT_FILL_RANDOM;
    cfg.default_width = 32;
    cfg.shapes = &sh;
    cfg.n_shapes = 1;
    if (ct_workspace_fill_params(e->ws, pred, &cfg, &rep, &st) != CT_OK)
        fail_msg("fill: %s", st.msg);
    assert_int_equal(rep.n_widths, 121);
    assert_int_equal(rep.n_widths_default, 121);
    compile_and_run(e, pred, "data");
    out = tu_fetch(e->ws, "fc6");
    assert_int_equal(ct_tensor_dim(out, 1), 32);
    for (i = 0; i < ct_tensor_numel(out); i++)
        assert_true(isfinite(((const float *)ct_tensor_cdata(out))[i]));
    ct_netdef_free(pred);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_squeezenet_gives_probabilities),
        T(test_resnet50_fill_shapes_and_run),
        T(test_resnet50_pinned_projection_fixes_residual_widths),
        T(test_densenet121_fill_and_run),
#undef T
    };
    return cmocka_run_group_tests_name("models.real", tests, NULL, NULL);
}
