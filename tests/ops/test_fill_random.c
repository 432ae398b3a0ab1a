/* Tests for ops/fill_random.c: UniformFill, UniformIntFill, GaussianFill,
 * XavierFill and MSRAFill statistics over 10^5 samples (moments, bounds,
 * fan_in / fan_out scaling), seeding (same seed, different seeds,
 * unseeded ops), per-run streams in a net, the 3-input min/max form, 0-d
 * and empty shapes, the memory budget and every argument error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_impl.h"
#include "test_util.h"

/* ---- fixtures ---- */

#include "fill_fixture.h"

/* Runs op, asserts success, frees op and returns blob `out`. */
static ct_tensor_t *run_ok(struct tu_env *e, Caffe2__OperatorDef *op,
                           const char *out)
{
    ct_status_t st;
    int rc = tu_run_op(e->ws, op, &st);

    if (rc != CT_OK)
        fail_msg("%s failed: %s", op->type, st.msg);
    tu_op_free(op);
    return tu_fetch(e->ws, out);
}

/* Runs op with DeviceOption.random_seed = seed. */
static int run_seeded(struct tu_env *e, Caffe2__OperatorDef *op, uint32_t seed,
                      ct_status_t *st)
{
    Caffe2__DeviceOption dev = CAFFE2__DEVICE_OPTION__INIT;
    int rc;

    dev.has_random_seed = 1;
    dev.random_seed = seed;
    op->device_option = &dev;
    rc = tu_run_op(e->ws, op, st);
    op->device_option = NULL;
    return rc;
}

/* A random fill of shape dims into a malloc'd float copy. */
static float *seeded_floats(struct tu_env *e, Caffe2__OperatorDef *op,
                            uint32_t seed, int64_t n)
{
    ct_status_t st;
    float *v = malloc((size_t)n * sizeof(float));
    ct_tensor_t *t;

    assert_non_null(v);
    if (run_seeded(e, op, seed, &st) != CT_OK)
        fail_msg("%s: %s", op->type, st.msg);
    t = tu_fetch(e->ws, op->output[0]);
    assert_int_equal(ct_tensor_numel(t), n);
    memcpy(v, ct_tensor_cdata(t), (size_t)n * sizeof(float));
    return v;
}

static void moments(const float *v, int64_t n, double *mean, double *std)
{
    double s = 0, ss = 0;
    int64_t k;

    for (k = 0; k < n; k++)
        s += v[k];
    *mean = s / (double)n;
    for (k = 0; k < n; k++)
        ss += (v[k] - *mean) * (v[k] - *mean);
    *std = sqrt(ss / (double)(n - 1));
}

static const int64_t dims_23[] = {2, 3};

/* ---- random fillers ---- */

static void test_uniform_fill_1e5_samples_match_moments_and_bounds(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {100, 1000};
    const int64_t n = 100000;
    Caffe2__OperatorDef *op = tu_op("UniformFill", "", "Y");
    double mean, std;
    float *v;
    int64_t k;

    tu_arg_ints(op, "shape", 2, d);
    tu_arg_f(op, "min", -2.0f);
    tu_arg_f(op, "max", 3.0f);
    v = seeded_floats(e, op, 1234, n);
    tu_op_free(op);
    for (k = 0; k < n; k++)
        assert_true(v[k] >= -2.0f && v[k] < 3.0f);
    moments(v, n, &mean, &std);
    /* Exact: mean 0.5, std 5/sqrt(12) = 1.4434. The standard error of
     * the mean is 0.0046. */
    assert_true(fabs(mean - 0.5) < 0.025);
    assert_true(fabs(std - 5.0 / sqrt(12.0)) < 0.02);
    free(v);
}

static void test_uniform_int_fill_1e5_samples_cover_closed_range(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {100000};
    Caffe2__OperatorDef *op = tu_op("UniformIntFill", "", "Y");
    ct_status_t st;
    const int32_t *v;
    int64_t k, count[8] = {0};
    ct_tensor_t *t;

    tu_arg_ints(op, "shape", 1, d);
    tu_arg_i(op, "min", -3);
    tu_arg_i(op, "max", 4);
    assert_int_equal(run_seeded(e, op, 99, &st), CT_OK);
    tu_op_free(op);
    t = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_I32);
    v = CT_CDATA(t, int32_t);
    for (k = 0; k < d[0]; k++) {
        assert_true(v[k] >= -3 && v[k] <= 4);
        count[v[k] + 3]++;
    }
    /* 12500 expected per value, standard deviation about 105. */
    for (k = 0; k < 8; k++)
        assert_true(llabs(count[k] - 12500) < 600);
}

static void test_gaussian_fill_1e5_samples_match_moments(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {100000};
    Caffe2__OperatorDef *op = tu_op("GaussianFill", "", "Y");
    double mean, std;
    int64_t k, within = 0;
    float *v;

    tu_arg_ints(op, "shape", 1, d);
    tu_arg_f(op, "mean", 1.5f);
    tu_arg_f(op, "std", 2.0f);
    v = seeded_floats(e, op, 7, d[0]);
    tu_op_free(op);
    moments(v, d[0], &mean, &std);
    for (k = 0; k < d[0]; k++)
        within += fabs(v[k] - 1.5) < 2.0;
    /* Standard error of the mean 0.0063; of the std about 0.0045. */
    assert_true(fabs(mean - 1.5) < 0.03);
    assert_true(fabs(std - 2.0) < 0.03);
    assert_true(fabs((double)within / 1e5 - 0.6827) < 0.01);
    free(v);
}

static void test_gaussian_fill_zero_std_gives_mean(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("GaussianFill", "", "Y");
    ct_tensor_t *t;
    int64_t k;

    tu_arg_ints(op, "shape", 2, dims_23);
    tu_arg_f(op, "mean", 3.0f);
    tu_arg_f(op, "std", 0.0f);
    t = run_ok(e, op, "Y");
    for (k = 0; k < 6; k++)
        assert_true(elem(t, k) == 3.0);
}

static void test_xavier_fill_uses_fan_in_of_dim0(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {100, 1000};
    const int64_t n = 100000;
    const double scale = sqrt(3.0 / 1000.0);
    Caffe2__OperatorDef *op = tu_op("XavierFill", "", "Y");
    double mean, std;
    float *v;
    int64_t k;

    tu_arg_ints(op, "shape", 2, d);
    v = seeded_floats(e, op, 5, n);
    tu_op_free(op);
    for (k = 0; k < n; k++)
        assert_true(v[k] >= -(float)scale && v[k] < (float)scale);
    moments(v, n, &mean, &std);
    assert_true(fabs(mean) < 0.01 * scale * 5);
    assert_true(fabs(std - scale / sqrt(3.0)) < 0.02 * scale);
    free(v);
}

static void test_msra_fill_uses_fan_out_of_dim1(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {64, 50, 4, 8}; /* fan_out = 64*4*8 = 2048 */
    const int64_t n = 64 * 50 * 4 * 8;
    const double want_std = sqrt(2.0 / 2048.0);
    Caffe2__OperatorDef *op = tu_op("MSRAFill", "", "Y");
    double mean, std;
    float *v;

    tu_arg_ints(op, "shape", 4, d);
    v = seeded_floats(e, op, 5, n);
    tu_op_free(op);
    moments(v, n, &mean, &std);
    assert_true(fabs(mean) < 0.03 * want_std);
    assert_true(fabs(std - want_std) < 0.02 * want_std);
    free(v);
}

static Caffe2__OperatorDef *gaussian_op(const char *out)
{
    Caffe2__OperatorDef *op = tu_op("GaussianFill", "", out);
    tu_arg_ints(op, "shape", 2, dims_23);
    return op;
}

static void test_random_fill_same_seed_gives_same_values(void **state)
{
    struct tu_env *e = *state;
    const char *const types[] = {"UniformFill", "GaussianFill", "XavierFill",
                                 "MSRAFill"};
    size_t i;

    for (i = 0; i < 4; i++) {
        Caffe2__OperatorDef *op = tu_op(types[i], "", "Y");
        float *a, *b;

        tu_arg_ints(op, "shape", 2, dims_23);
        a = seeded_floats(e, op, 42, 6);
        b = seeded_floats(e, op, 42, 6);
        assert_memory_equal(a, b, sizeof(float) * 6);
        tu_op_free(op);
        free(a);
        free(b);
    }
}

static void test_random_fill_different_seeds_differ(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = gaussian_op("Y");
    float *a = seeded_floats(e, op, 1, 6), *b = seeded_floats(e, op, 2, 6);

    assert_memory_not_equal(a, b, sizeof(float) * 6);
    tu_op_free(op);
    free(a);
    free(b);
}

static void test_random_fill_unseeded_ops_differ_by_output(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *a = gaussian_op("A"), *b = gaussian_op("B");
    ct_status_t st;

    assert_int_equal(tu_run_op(e->ws, a, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, b, &st), CT_OK);
    assert_memory_not_equal(ct_tensor_cdata(tu_fetch(e->ws, "A")),
                            ct_tensor_cdata(tu_fetch(e->ws, "B")),
                            sizeof(float) * 6);
    tu_op_free(a);
    tu_op_free(b);
}

/* A net with a seeded GaussianFill, then Copy and Reshape of its output:
 * compiles (shape inference included) and runs; each run of the same net
 * draws fresh values, and a re-created net replays the first run. */
static void test_random_fill_net_runs_draw_fresh_streams(void **state)
{
    struct tu_env *e = *state;
    Caffe2__DeviceOption dev = CAFFE2__DEVICE_OPTION__INIT;
    const int64_t flat[] = {-1};
    Caffe2__NetDef *net = tu_net("n", "", "Z");
    Caffe2__OperatorDef *op;
    float run1[6], run2[6], again[6];
    ct_net_t *n;
    ct_status_t st;
    ct_tensor_t *z;
    int k;

    dev.has_random_seed = 1;
    dev.random_seed = 11;
    net->device_option = &dev;
    tu_net_add_op(net, gaussian_op("W"));
    tu_net_add_op(net, tu_op("Copy", "W", "C"));
    op = tu_op("Reshape", "C", "Z,old");
    tu_arg_ints(op, "shape", 1, flat);
    tu_net_add_op(net, op);

    assert_int_equal(ct_workspace_create_net(e->ws, net, false, &n, &st),
                     CT_OK);
    assert_int_equal(ct_workspace_run_net(e->ws, "n", &st), CT_OK);
    z = tu_fetch(e->ws, "Z");
    assert_int_equal(ct_tensor_ndim(z), 1);
    assert_int_equal(ct_tensor_dim(z, 0), 6);
    memcpy(run1, ct_tensor_cdata(z), sizeof(run1));
    for (k = 0; k < 6; k++)
        assert_true(run1[k] == CT_CDATA(tu_fetch(e->ws, "W"), float)[k]);
    assert_int_equal(ct_workspace_run_net(e->ws, "n", &st), CT_OK);
    memcpy(run2, ct_tensor_cdata(tu_fetch(e->ws, "Z")), sizeof(run2));
    assert_memory_not_equal(run1, run2, sizeof(run1));

    assert_int_equal(ct_workspace_create_net(e->ws, net, true, &n, &st), CT_OK);
    assert_int_equal(ct_workspace_run_net(e->ws, "n", &st), CT_OK);
    memcpy(again, ct_tensor_cdata(tu_fetch(e->ws, "Z")), sizeof(again));
    assert_memory_equal(run1, again, sizeof(run1));
    assert_int_equal(ct_workspace_delete_net(e->ws, "n", &st), CT_OK);
    net->device_option = NULL;
    tu_net_free(net);
}

static void
test_uniform_fill_bound_inputs_used_and_min_gt_max_empty(void **state)
{
    struct tu_env *e = *state;
    const float lo = 10, hi = 11, big = 20;
    const int64_t want_empty[] = {0, 3};
    Caffe2__OperatorDef *op;
    ct_tensor_t *t;
    int64_t k;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, dims_23, NULL);
    tu_feed(e->ws, "lo", CT_DTYPE_F32, 0, NULL, &lo);
    tu_feed(e->ws, "hi", CT_DTYPE_F32, 0, NULL, &hi);
    tu_feed(e->ws, "big", CT_DTYPE_F32, 0, NULL, &big);
    t = run_ok(e, tu_op("UniformFill", "X,lo,hi", "Y"), "Y");
    assert_shape(t, 2, dims_23);
    for (k = 0; k < 6; k++)
        assert_true(elem(t, k) >= 10.0 && elem(t, k) < 11.0);
    t = run_ok(e, tu_op("UniformFill", "X,lo,lo", "Y"), "Y");
    for (k = 0; k < 6; k++)
        assert_true(elem(t, k) == 10.0);
    op = tu_op("UniformFill", "X,big,lo", "Y");
    t = run_ok(e, op, "Y");
    assert_shape(t, 2, want_empty);
}

static void test_random_fill_empty_and_0d_shapes_work(void **state)
{
    struct tu_env *e = *state;
    const char *const types[] = {"UniformFill", "UniformIntFill",
                                 "GaussianFill", "XavierFill", "MSRAFill"};
    const int64_t empty[] = {0, 4, 2};
    size_t i;

    for (i = 0; i < 5; i++) {
        Caffe2__OperatorDef *op = tu_op(types[i], "", "Y");
        ct_tensor_t *t;

        tu_arg_ints(op, "shape", 3, empty);
        t = run_ok(e, op, "Y");
        assert_shape(t, 3, empty);
        if (i < 3) { /* the fan fillers need a rank */
            t = run_ok(e, tu_op(types[i], "", "Y"), "Y");
            assert_int_equal(ct_tensor_ndim(t), 0);
            assert_int_equal(ct_tensor_numel(t), 1);
        }
    }
}

/* ---- the error table ---- */

struct err_case {
    const char *what;
    Caffe2__OperatorDef *(*make)(struct tu_env *e);
    int code;
    const char *needle;
};

static Caffe2__OperatorDef *e_uniform_min_eq_max(struct tu_env *e)
{
    Caffe2__OperatorDef *op = tu_op("UniformFill", "", "Y");
    tu_arg_f(op, "min", 1.0f);
    tu_arg_f(op, "max", 1.0f);
    return op;
}

static Caffe2__OperatorDef *e_uniform_int_min_gt_max(struct tu_env *e)
{
    Caffe2__OperatorDef *op = tu_op("UniformIntFill", "", "Y");
    tu_arg_i(op, "min", 5);
    tu_arg_i(op, "max", 2);
    return op;
}

static Caffe2__OperatorDef *e_uniform_int_min_arg(struct tu_env *e)
{
    Caffe2__OperatorDef *op = tu_op("UniformFill", "", "Y");
    tu_arg_i(op, "min", 0);
    return op;
}

static Caffe2__OperatorDef *e_gaussian_negative_std(struct tu_env *e)
{
    Caffe2__OperatorDef *op = tu_op("GaussianFill", "", "Y");
    tu_arg_f(op, "std", -1.0f);
    return op;
}

static Caffe2__OperatorDef *e_xavier_0d(struct tu_env *e)
{
    return tu_op("XavierFill", "", "Y");
}

static Caffe2__OperatorDef *e_msra_1d(struct tu_env *e)
{
    const int64_t d[] = {5};
    Caffe2__OperatorDef *op = tu_op("MSRAFill", "", "Y");
    tu_arg_ints(op, "shape", 1, d);
    return op;
}

static Caffe2__OperatorDef *e_msra_1d_input(struct tu_env *e)
{
    const int64_t d[] = {5};
    tu_feed(e->ws, "X", CT_DTYPE_F32, 1, d, NULL);
    return tu_op("MSRAFill", "X", "Y");
}

static Caffe2__OperatorDef *e_uniform_two_inputs(struct tu_env *e)
{
    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    return tu_op("UniformFill", "X,X", "Y");
}

static Caffe2__OperatorDef *uniform3(struct tu_env *e, ct_dtype_t dt_lo,
                                     int64_t n_hi)
{
    const float lo = 0, hi[2] = {1, 2};
    const int32_t ilo = 0;
    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, dims_23, NULL);
    tu_feed(e->ws, "lo", dt_lo, 0, NULL,
            dt_lo == CT_DTYPE_F32 ? (const void *)&lo : (const void *)&ilo);
    tu_feed(e->ws, "hi", CT_DTYPE_F32, 1, &n_hi, hi);
    return tu_op("UniformFill", "X,lo,hi", "Y");
}

static Caffe2__OperatorDef *e_uniform_min_arg_and_input(struct tu_env *e)
{
    Caffe2__OperatorDef *op = uniform3(e, CT_DTYPE_F32, 1);
    tu_arg_f(op, "min", 0.0f);
    return op;
}

static Caffe2__OperatorDef *e_uniform_int_min_input(struct tu_env *e)
{
    return uniform3(e, CT_DTYPE_I32, 1);
}

static Caffe2__OperatorDef *e_uniform_max_not_scalar(struct tu_env *e)
{
    return uniform3(e, CT_DTYPE_F32, 2);
}

static const struct err_case err_cases[] = {
    {"uniform min == max", e_uniform_min_eq_max, CT_EARG,
     "Max value should be bigger than min value: min=1, max=1"},
    {"uniform int min > max", e_uniform_int_min_gt_max, CT_EARG,
     "Max value should be bigger than min value: min=5, max=2"},
    {"uniform int-typed min", e_uniform_int_min_arg, CT_EARG,
     "Argument min does not have the right field"},
    {"gaussian std < 0", e_gaussian_negative_std, CT_EARG,
     "std=-1 must be >= 0"},
    {"xavier 0-d", e_xavier_0d, CT_EARG, "XavierFill needs rank >= 1"},
    {"msra 1-D", e_msra_1d, CT_EARG, "MSRAFill needs rank >= 2"},
    {"msra 1-D input", e_msra_1d_input, CT_ESHAPE,
     "MSRAFill needs an output of rank >= 2 (fan from shape[1]), got shape "
     "[5]"},
    {"uniform 2 inputs", e_uniform_two_inputs, CT_ESCHEMA,
     "takes 0, 1 or 3 inputs"},
    {"uniform min arg and input", e_uniform_min_arg_and_input, CT_EARG,
     "Cannot set both min arg and min input blob"},
    {"uniform INT32 min input", e_uniform_int_min_input, CT_ETYPE,
     "min input 1 \"lo\" must be FLOAT, got INT32"},
    {"uniform max not scalar", e_uniform_max_not_scalar, CT_ESHAPE,
     "max blob must be scalar: input 2 \"hi\" has 2 elements"},
};

static void
test_random_fill_error_table_returns_codes_and_messages(void **state)
{
    struct tu_env *e = *state;
    size_t c;

    for (c = 0; c < sizeof(err_cases) / sizeof(err_cases[0]); c++) {
        Caffe2__OperatorDef *op = err_cases[c].make(e);
        ct_status_t st;
        int rc = tu_run_op(e->ws, op, &st);

        if (rc != err_cases[c].code ||
            (err_cases[c].needle != NULL &&
             strstr(st.msg, err_cases[c].needle) == NULL))
            fail_msg("case \"%s\": want %s \"%s\", got %s \"%s\"",
                     err_cases[c].what, ct_err_name(err_cases[c].code),
                     err_cases[c].needle ? err_cases[c].needle : "",
                     ct_err_name(rc), st.msg);
        tu_op_free(op);
    }
}

static void test_gaussian_fill_huge_shape_fails_without_crash(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {(int64_t)1 << 40, (int64_t)1 << 20};
    Caffe2__OperatorDef *op = tu_op("GaussianFill", "", "Y");
    ct_status_t st;
    int rc;

    tu_arg_ints(op, "shape", 2, d);
    rc = tu_run_op(e->ws, op, &st);
    tu_op_free(op);
    if (rc != CT_ENOMEM && rc != CT_EOVERFLOW)
        fail_msg("want CT_ENOMEM or CT_EOVERFLOW, got %s: %s", ct_err_name(rc),
                 st.msg);
    assert_non_null(strstr(st.msg, "[1099511627776, 1048576]"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_env, teardown_env)
    const struct CMUnitTest tests[] = {
        T(test_uniform_fill_1e5_samples_match_moments_and_bounds),
        T(test_uniform_int_fill_1e5_samples_cover_closed_range),
        T(test_gaussian_fill_1e5_samples_match_moments),
        T(test_gaussian_fill_zero_std_gives_mean),
        T(test_xavier_fill_uses_fan_in_of_dim0),
        T(test_msra_fill_uses_fan_out_of_dim1),
        T(test_random_fill_same_seed_gives_same_values),
        T(test_random_fill_different_seeds_differ),
        T(test_random_fill_unseeded_ops_differ_by_output),
        T(test_random_fill_net_runs_draw_fresh_streams),
        T(test_uniform_fill_bound_inputs_used_and_min_gt_max_empty),
        T(test_random_fill_empty_and_0d_shapes_work),
        T(test_random_fill_error_table_returns_codes_and_messages),
        T(test_gaussian_fill_huge_shape_fails_without_crash),
    };
#undef T
    return cmocka_run_group_tests_name("ops.fill_random", tests, NULL, NULL);
}
