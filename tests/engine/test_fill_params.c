/* Tests for engine/fill.c (cortado/fill.h): ct_workspace_fill_params
 * creates the parameters of a net with no weights (value ranges by kind,
 * zeros mode, repeatable for a seed, different seeds differ), creates the
 * shaped data inputs (uniform [0, 1)), pins parameter shapes, leaves fed
 * blobs alone; the filled net compiles and runs; configuration errors
 * with their messages; an error leaves the workspace unchanged; every
 * allocation failure is a clean CT_ENOMEM without leaks. */
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
#include "op_test.h"
#include "test_util.h"

/* data [2, 3, 6, 6] -> Conv k3 -> SpatialBN -> Relu -> FC -> Softmax. */
static Caffe2__NetDef *small_net(void)
{
    Caffe2__NetDef *net = tu_net("small", "data,cw,cb,s,b,m,v,fw,fb", "prob");
    Caffe2__OperatorDef *c = tu_op("Conv", "data,cw,cb", "c");
    Caffe2__OperatorDef *bn = tu_op("SpatialBN", "c,s,b,m,v", "bn");

    tu_arg_i(c, "kernel", 3);
    tu_arg_i(bn, "is_test", 1);
    tu_net_add_op(net, c);
    tu_net_add_op(net, bn);
    tu_net_add_op(net, tu_op("Relu", "bn", "bn"));
    tu_net_add_op(net, tu_op("FC", "bn,fw,fb", "fc"));
    tu_net_add_op(net, tu_op("Softmax", "fc", "prob"));
    return net;
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

static const float *data_of(struct tu_env *e, const char *name, int64_t *n)
{
    const ct_tensor_t *t = tu_fetch(e->ws, name);

    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_F32);
    *n = ct_tensor_numel(t);
    return ct_tensor_cdata(t);
}

static void assert_range(struct tu_env *e, const char *name, float lo, float hi)
{
    int64_t n, i;
    const float *x = data_of(e, name, &n);

    assert_true(n > 0);
    for (i = 0; i < n; i++)
        if (!(x[i] >= lo && x[i] < hi))
            fail_msg("%s[%lld] = %g outside [%g, %g)", name, (long long)i,
                     (double)x[i], (double)lo, (double)hi);
}

static const int64_t data_dims[4] = {2, 3, 6, 6};

static int fill(struct tu_env *e, Caffe2__NetDef *net, int mode, uint64_t seed,
                struct ct_fill_report *rep, ct_status_t *st)
{
    struct ct_fill_config cfg;
    struct ct_fill_shape sh = fshape("data", 4, data_dims);

    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = mode;
    cfg.seed = seed;
    cfg.shapes = &sh;
    cfg.n_shapes = 1;
    ct_status_clear(st);
    return ct_workspace_fill_params(e->ws, net, &cfg, rep, st);
}

static void test_fill_random_values_by_kind_and_net_runs(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = small_net();
    struct ct_fill_report rep;
    const float *p;
    ct_net_t *compiled;
    ct_status_t st;
    int64_t n, i;
    double sum0 = 0;
    const float s = (float)sqrt(6.0 / 27);

    if (fill(e, net, CT_FILL_RANDOM, 7, &rep, &st) != CT_OK)
        fail_msg("%s", st.msg);
    assert_int_equal(rep.n_inputs, 1);
    assert_int_equal(rep.n_params, 8);
    assert_int_equal(rep.n_widths, 2);
    assert_int_equal(rep.n_widths_default, 2);
    assert_int_equal(rep.n_param_elements,
                     64 * 27 + 64 + 4 * 64 + 64 * 64 * 16 + 64);
    assert_true(rep.flops > 0);
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "cw"), 0), 64);
    assert_range(e, "data", 0, 1);
    assert_range(e, "cw", -s, s);
    assert_range(e, "cb", -0.1f, 0.1f);
    assert_range(e, "s", 0.5f, 1.5f);
    assert_range(e, "v", 0.5f, 1.5f);
    assert_range(e, "m", -0.1f, 0.1f);
    assert_range(e, "fw", -(float)sqrt(6.0 / 1024), (float)sqrt(6.0 / 1024));
    assert_int_equal(ct_net_new(e->ws, net, NULL, &compiled, &st), CT_OK);
    assert_int_equal(ct_net_run(compiled, &st), CT_OK);
    p = data_of(e, "prob", &n);
    assert_int_equal(n, 2 * 64);
    for (i = 0; i < 64; i++) {
        assert_true(isfinite(p[i]));
        sum0 += p[i];
    }
    assert_true(fabs(sum0 - 1) < 1e-5);
    ct_net_free(compiled);
    tu_net_free(net);
}

static void test_fill_is_repeatable_for_a_seed(void **state)
{
    struct tu_env *e = *state;
    struct tu_env other;
    Caffe2__NetDef *net = small_net();
    struct ct_fill_report rep;
    ct_status_t st;
    const char *names[3] = {"data", "cw", "fw"};
    int i;

    tu_env_init(&other);
    assert_int_equal(fill(e, net, CT_FILL_RANDOM, 42, &rep, &st), CT_OK);
    assert_int_equal(fill(&other, net, CT_FILL_RANDOM, 42, &rep, &st), CT_OK);
    for (i = 0; i < 3; i++)
        assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, names[i])),
                            ct_tensor_cdata(tu_fetch(other.ws, names[i])),
                            ct_tensor_nbytes(tu_fetch(e->ws, names[i])));
    tu_env_destroy(&other);
    tu_env_init(&other);
    assert_int_equal(fill(&other, net, CT_FILL_RANDOM, 43, &rep, &st), CT_OK);
    assert_memory_not_equal(ct_tensor_cdata(tu_fetch(e->ws, "cw")),
                            ct_tensor_cdata(tu_fetch(other.ws, "cw")),
                            ct_tensor_nbytes(tu_fetch(e->ws, "cw")));
    tu_env_destroy(&other);
    tu_net_free(net);
}

static void test_fill_zeros_keeps_scales_and_variances_at_one(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = small_net();
    struct ct_fill_report rep;
    ct_status_t st;

    assert_int_equal(fill(e, net, CT_FILL_ZEROS, 0, &rep, &st), CT_OK);
    assert_range(e, "cw", 0, 1e-30f);
    assert_range(e, "fb", 0, 1e-30f);
    assert_range(e, "m", 0, 1e-30f);
    assert_range(e, "s", 1, 1.0001f);
    assert_range(e, "v", 1, 1.0001f);
    assert_range(e, "data", 0, 1); /* inputs stay random */
    tu_net_free(net);
}

static void test_fill_keeps_fed_blobs_and_pins_shapes(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = small_net();
    struct ct_fill_config cfg;
    struct ct_fill_shape sh[2];
    struct ct_fill_report rep;
    const int64_t cw[4] = {5, 3, 3, 3}, fb = 64;
    const float sentinel[64] = {42};
    unsigned char is_param[2] = {7, 7};
    ct_status_t st;

    tu_feed_f32(e->ws, "fb", 1, &fb, sentinel);
    sh[0] = fshape("data", 4, data_dims);
    sh[1] = fshape("cw", 4, cw);
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = CT_FILL_RANDOM;
    cfg.shapes = sh;
    cfg.n_shapes = 2;
    cfg.shape_is_param = is_param;
    assert_int_equal(ct_workspace_fill_params(e->ws, net, &cfg, &rep, &st),
                     CT_OK);
    assert_int_equal(rep.n_inputs, 1);
    assert_int_equal(rep.n_params, 7); /* cw pinned + 6 inferred */
    /* Which given shapes became parameters, and their elements counted. */
    assert_int_equal(is_param[0], 0);
    assert_int_equal(is_param[1], 1);
    assert_true(rep.n_param_elements >= 5 * 3 * 3 * 3);
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "cb"), 0), 5);
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "s"), 0), 5);
    /* A pinned parameter is filled like one, not like an input. */
    assert_range(e, "cw", -(float)sqrt(6.0 / 27), (float)sqrt(6.0 / 27));
    /* fb was fed (N = 64), so fw is [64, 5 * 16] and fb is untouched. */
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "fw"), 1), 80);
    assert_true(((const float *)ct_tensor_cdata(tu_fetch(e->ws, "fb")))[0] ==
                42);
    tu_net_free(net);
}

static void test_fill_none_creates_only_the_inputs(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = small_net();
    struct ct_fill_report rep;
    ct_status_t st;

    assert_int_equal(fill(e, net, CT_FILL_NONE, 1, &rep, &st), CT_OK);
    assert_int_equal(rep.n_inputs, 1);
    assert_int_equal(rep.n_params, 0);
    assert_range(e, "data", 0, 1);
    assert_false(ct_workspace_has_blob(e->ws, "cw"));
    assert_string_equal(ct_fill_mode_name(CT_FILL_NONE), "none");
    assert_string_equal(ct_fill_mode_name(CT_FILL_ZEROS), "zeros");
    assert_string_equal(ct_fill_mode_name(CT_FILL_RANDOM), "random");
    assert_string_equal(ct_fill_mode_name(9), "unknown");
    tu_net_free(net);
}

static void test_fill_config_errors_leave_workspace_unchanged(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = small_net();
    struct ct_fill_config cfg;
    struct ct_fill_shape sh[2];
    const int64_t neg[2] = {2, -1}, d1[1] = {3};
    ct_status_t st;
    const char **names;
    size_t n_before, n_after;
    int modes[2] = {CT_FILL_NONE, CT_FILL_RANDOM}, m;

    assert_int_equal(ct_workspace_list_blobs(e->ws, &names, &n_before, &st),
                     CT_OK);
    ct_free((void *)names);
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = 7;
    tu_assert_status(&st, ct_workspace_fill_params(e->ws, net, &cfg, NULL, &st),
                     CT_EINVAL, "unknown fill mode 7");
    cfg.mode = CT_FILL_RANDOM;
    cfg.default_width = -2;
    tu_assert_status(&st, ct_workspace_fill_params(e->ws, net, &cfg, NULL, &st),
                     CT_EINVAL, "default width -2 is negative");
    cfg.default_width = 0;
    sh[0] = fshape("data", 2, neg);
    cfg.shapes = sh;
    cfg.n_shapes = 1;
    tu_assert_status(&st, ct_workspace_fill_params(e->ws, net, &cfg, NULL, &st),
                     CT_EINVAL, "shape of \"data\": dim 1 is -1");
    sh[0] = fshape("data", 4, data_dims);
    sh[1] = fshape("data", 1, d1);
    cfg.n_shapes = 2;
    tu_assert_status(&st, ct_workspace_fill_params(e->ws, net, &cfg, NULL, &st),
                     CT_EINVAL, "shape of \"data\" given twice");
    for (m = 0; m < 2; m++) {
        cfg.mode = modes[m];
        sh[1] = fshape("nope", 1, d1);
        tu_assert_status(&st,
                         ct_workspace_fill_params(e->ws, net, &cfg, NULL, &st),
                         CT_ENOTFOUND, "a shape is given for \"nope\"");
    }
    /* No shape for data: nothing is created. */
    cfg.n_shapes = 0;
    tu_assert_status(&st, ct_workspace_fill_params(e->ws, net, &cfg, NULL, &st),
                     CT_ENOTFOUND,
                     "op 0 \"\" (Conv): input 0 \"data\" has no known shape");
    assert_int_equal(ct_workspace_list_blobs(e->ws, &names, &n_after, &st),
                     CT_OK);
    ct_free((void *)names);
    assert_int_equal(n_after, n_before);
    /* A shape for a blob that already holds a tensor replaces it. */
    tu_feed_f32(e->ws, "data", 1, d1, NULL);
    for (m = 0; m < 2; m++) {
        cfg.mode = modes[m];
        cfg.n_shapes = 1;
        assert_int_equal(ct_workspace_fill_params(e->ws, net, &cfg, NULL, &st),
                         CT_OK);
        assert_int_equal(ct_tensor_ndim(tu_fetch(e->ws, "data")), 4);
        assert_range(e, "data", 0, 1);
    }
    tu_net_free(net);
}

static void test_fill_allocation_failures_return_enomem(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = small_net();
    struct ct_fill_report rep;
    ct_workspace_t *ws;
    struct tu_env tmp;
    ct_status_t st;
    long k, live;
    int rc;

    tmp.eng = e->eng;
    for (k = 1;; k++) {
        live = tu_alloc_live();
        assert_int_equal(ct_workspace_new(e->eng, NULL, &ws, &st), CT_OK);
        tmp.ws = ws;
        tu_fail_alloc_after(k);
        rc = fill(&tmp, net, CT_FILL_RANDOM, 3, &rep, &st);
        tu_fail_alloc_off();
        ct_workspace_free(ws);
        /* Whatever was created lived in ws; nothing else is left. */
        assert_int_equal(tu_alloc_live(), live);
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM, NULL);
    }
    assert_true(k > 10);
    tu_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_fill_random_values_by_kind_and_net_runs),
        T(test_fill_is_repeatable_for_a_seed),
        T(test_fill_zeros_keeps_scales_and_variances_at_one),
        T(test_fill_keeps_fed_blobs_and_pins_shapes),
        T(test_fill_none_creates_only_the_inputs),
        T(test_fill_config_errors_leave_workspace_unchanged),
        T(test_fill_allocation_failures_return_enomem),
#undef T
    };
    return cmocka_run_group_tests_name("engine.fill_params", tests, NULL, NULL);
}
