/* Tests for ops/stats_ops.c and ops/stats_put_ops.c through the
 * operators: Caffe2's stats_ops_test.py and stats_put_ops_test.py with
 * their expected values (spec §8.1, §8.2), counters registered at op
 * creation exporting as 0 (§8.3, §9.7), export outputs and reset, the
 * timer kept in its blob (it outlives the op that started it), every put
 * dtype and the fixed defects (magnitude_expand 0, NaN, half-precision
 * products, the StdDev offset), and every error with its message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cortado/net.h"
#include "cortado/stats.h"
#include "op_test.h"
#include "test_util.h"

/* ---- fixtures ---- */

/* setup/teardown: tu_env_setup / tu_env_teardown (op_test.h). */

/* ---- helpers ---- */

static void run_ok(struct tu_env *e, Caffe2__OperatorDef *op)
{
    ct_status_t st;

    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("%s: %s", op->type, st.msg);
    tu_op_free(op);
}

/* Runs op, expects code and a message containing needle, frees op. */
static void run_fails(struct tu_env *e, Caffe2__OperatorDef *op, int code,
                      const char *needle)
{
    ct_status_t st;
    int rc = tu_run_op(e->ws, op, &st);

    tu_assert_status(&st, rc, code, needle);
    tu_op_free(op);
}

static void feed_keys(struct tu_env *e, const char *blob, int n,
                      const char *const *keys)
{
    const int64_t d = n;
    tu_feed(e->ws, blob, CT_DTYPE_STRING, 1, &d, keys);
}

static void feed_i64(struct tu_env *e, const char *blob, int n,
                     const int64_t *v)
{
    const int64_t d = n;
    tu_feed(e->ws, blob, CT_DTYPE_I64, 1, &d, v);
}

static void feed_f64(struct tu_env *e, const char *blob, int n, const double *v)
{
    const int64_t d = n;
    tu_feed(e->ws, blob, CT_DTYPE_F64, 1, &d, v);
}

/* StatRegistryExport of the global registry (or `handle`) into k, v, t,
 * with reset as given (-1: leave the argument out). */
static void export_op(struct tu_env *e, const char *handle, int reset)
{
    Caffe2__OperatorDef *op =
        tu_op("StatRegistryExport", handle != NULL ? handle : "", "k,v,t");
    if (reset >= 0)
        tu_arg_i(op, "reset", reset);
    run_ok(e, op);
}

/* Index of key in the exported keys tensor, or -1. */
static int64_t find_key(struct tu_env *e, const char *key)
{
    const ct_tensor_t *k = tu_fetch(e->ws, "k");
    const ct_str_t *s = ct_tensor_cdata(k);
    int64_t i;

    for (i = 0; i < ct_tensor_numel(k); i++)
        if (s[i].len == strlen(key) && memcmp(s[i].data, key, s[i].len) == 0)
            return i;
    return -1;
}

/* Value of key in the last export (the test fails when absent). */
static int64_t exported(struct tu_env *e, const char *key)
{
    int64_t i = find_key(e, key);

    if (i < 0)
        fail_msg("key %s not exported", key);
    return ((const int64_t *)ct_tensor_cdata(tu_fetch(e->ws, "v")))[i];
}

/* Global-registry value of key (without resetting it). */
static int64_t global_value(struct tu_env *e, const char *key)
{
    ct_stat_registry_t *reg = ct_engine_stats(e->eng);
    ct_stat_t h;

    if (ct_stat_registry_find(reg, key, &h, NULL) != CT_OK)
        fail_msg("no stat %s", key);
    return ct_stat_get(reg, h);
}

static Caffe2__OperatorDef *put_op(const char *type, const char *input,
                                   const char *stat_name, int64_t magnitude)
{
    Caffe2__OperatorDef *op = tu_op(type, input, "");
    if (stat_name != NULL)
        tu_arg_s(op, "stat_name", stat_name);
    if (magnitude != 0)
        tu_arg_i(op, "magnitude_expand", magnitude);
    return op;
}

/* Feeds n values v into blob "value", runs the put op (with bound = 1 when
 * bound), then exports the global registry. */
static void put_and_export(struct tu_env *e, Caffe2__OperatorDef *op, int n,
                           const double *v, bool bound)
{
    feed_f64(e, "value", n, v);
    if (bound)
        tu_arg_i(op, "bound", 1);
    run_ok(e, op);
    export_op(e, NULL, -1);
}

/* The exported "<stat>/stat_value/sum" and ".../count" of an average-like
 * stat. */
static void assert_sum_count(struct tu_env *e, const char *stat, int64_t sum,
                             int64_t count)
{
    char key[128];

    snprintf(key, sizeof(key), "%s/stat_value/sum", stat);
    assert_int_equal(exported(e, key), sum);
    snprintf(key, sizeof(key), "%s/stat_value/count", stat);
    assert_int_equal(exported(e, key), count);
}

/* ---- spec §8.1: stats_ops_test.py test_stats_ops ---- */

static void test_stat_registry_ops_caffe2_test_stats_ops(void **state)
{
    struct tu_env *e = *state;
    const char *const keys[2] = {
        "test_stats_ops/TestCounterOps/test_stats_ops/key1",
        "test_stats_ops/TestCounterOps/test_stats_ops/key2"};
    const int64_t values[2] = {34, 45};
    int64_t existing, n3, i;

    export_op(e, NULL, -1);
    existing = ct_tensor_numel(tu_fetch(e->ws, "k"));
    feed_keys(e, "keys", 2, keys);
    feed_i64(e, "values", 2, values);
    run_ok(e, tu_op("StatRegistryUpdate", "keys,values", ""));
    run_ok(e, tu_op("StatRegistryUpdate", "keys,values", ""));
    run_ok(e, tu_op("StatRegistryExport", "", "k2,v2,t2"));
    run_ok(e, tu_op("StatRegistryCreate", "", "reg"));
    run_ok(e, tu_op("StatRegistryUpdate", "k2,v2,reg", ""));
    run_ok(e, tu_op("StatRegistryExport", "reg", "k,v,t"));
    n3 = ct_tensor_numel(tu_fetch(e->ws, "k"));
    assert_int_equal(n3 - existing, 2);
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "v")), n3);
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "t")), n3);
    /* Caffe2 does not assert the values; Update adds, so 2x each. */
    assert_int_equal(exported(e, keys[0]), 68);
    assert_int_equal(exported(e, keys[1]), 90);
    /* The global export reset the global registry. */
    for (i = 0; i < 2; i++)
        assert_int_equal(global_value(e, keys[i]), 0);
}

/* ---- spec §8.2: stats_put_ops_test.py ---- */

static void test_average_put_caffe2_default_value(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op =
        put_op("AveragePut", "value", "stat", INT64_C(1000000000000));

    tu_arg_f(op, "default_value", 16.0f);
    put_and_export(e, op, 0, NULL, true);
    assert_sum_count(e, "stat", INT64_C(16000000000000), 1);
}

static void test_average_put_caffe2_clamp(void **state)
{
    struct tu_env *e = *state;
    const double v = 10;
    Caffe2__OperatorDef *op =
        put_op("AveragePut", "value", "stat", INT64_C(1000000000000000000));

    put_and_export(e, op, 1, &v, true);
    assert_sum_count(e, "stat", INT64_MAX, 1);
}

static void test_average_put_caffe2_clamp_with_out_of_bounds(void **state)
{
    struct tu_env *e = *state;
    const double v = 1e20;
    Caffe2__OperatorDef *op =
        put_op("AveragePut", "value", "stat", INT64_C(1000000000000));

    put_and_export(e, op, 1, &v, true);
    assert_sum_count(e, "stat", INT64_MAX, 1);
}

static void test_average_put_caffe2_avg_put_ops(void **state)
{
    struct tu_env *e = *state;
    const double v = 15.1111;

    put_and_export(e, put_op("AveragePut", "value", "a1", 10000), 1, &v, false);
    assert_sum_count(e, "a1", 151111, 1);
}

static void test_increment_put_caffe2_increment_put_ops(void **state)
{
    struct tu_env *e = *state;
    const double v = 15.1111;

    put_and_export(e, put_op("IncrementPut", "value", "i1", 10000), 1, &v,
                   false);
    assert_int_equal(exported(e, "i1/stat_value"), 151111);
}

static void test_stddev_put_caffe2_stddev_put_ops(void **state)
{
    struct tu_env *e = *state;
    const double v = 15.1111;

    put_and_export(e, put_op("StdDevPut", "value", "s1", 10000), 1, &v, false);
    assert_sum_count(e, "s1", 151111, 1);
    assert_true(find_key(e, "s1/stat_value/sumoffset") >= 0);
    assert_true(find_key(e, "s1/stat_value/sumsqoffset") >= 0);
}

/* ---- registration at creation, exports ---- */

static void test_stats_ops_counters_exported_at_creation_with_0(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("n", "x", "");
    Caffe2__OperatorDef *op;
    const double v = 1;
    ct_net_t *n;
    ct_status_t st;
    static const char *const want[] = {
        "p/stat_value/sum",       "p/stat_value/count",
        "q/stat_value",           "r/stat_value/sum",
        "r/stat_value/count",     "r/stat_value/sumsqoffset",
        "r/stat_value/sumoffset", "timer/time_ns/sum",
        "timer/time_ns/count",    "tb/time_ns/sum",
    };
    size_t i;

    feed_f64(e, "x", 1, &v);
    tu_net_add_op(net, put_op("AveragePut", "x", "p", 0));
    tu_net_add_op(net, put_op("IncrementPut", "x", "q", 0));
    tu_net_add_op(net, put_op("StdDevPut", "x", "r", 0));
    op = tu_op("TimerBegin", "", "t");
    tu_arg_s(op, "counter_name", "timer");
    tu_net_add_op(net, op);
    tu_net_add_op(net, tu_op("TimerBegin", "", "tb"));
    /* Compiled, never run. */
    assert_int_equal(ct_net_new(e->ws, net, NULL, &n, &st), CT_OK);
    export_op(e, NULL, 0);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(exported(e, want[i]), 0);
    ct_net_free(n);
    tu_net_free(net);
}

static void test_stat_registry_export_outputs_and_reset(void **state)
{
    struct tu_env *e = *state;
    const char *const keys[3] = {"b", "a", "b"};
    const int64_t values[3] = {1, 2, 3};
    const ct_tensor_t *k, *v, *t;
    struct timespec now;
    int64_t now_ns, i;

    clock_gettime(CLOCK_REALTIME, &now);
    now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    feed_keys(e, "keys", 3, keys);
    feed_i64(e, "values", 3, values);
    run_ok(e, tu_op("StatRegistryCreate", "", "reg"));
    run_ok(e, tu_op("StatRegistryUpdate", "keys,values,reg", ""));
    export_op(e, "reg", 0);
    k = tu_fetch(e->ws, "k");
    v = tu_fetch(e->ws, "v");
    t = tu_fetch(e->ws, "t");
    assert_int_equal(ct_tensor_dtype(k), CT_DTYPE_STRING);
    assert_int_equal(ct_tensor_dtype(v), CT_DTYPE_I64);
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_I64);
    assert_int_equal(ct_tensor_ndim(k), 1);
    assert_int_equal(ct_tensor_dim(k, 0), 2);
    assert_int_equal(ct_tensor_dim(v, 0), 2);
    assert_int_equal(ct_tensor_dim(t, 0), 2);
    assert_int_equal(exported(e, "b"), 4); /* repeated keys add */
    assert_int_equal(exported(e, "a"), 2);
    for (i = 0; i < 2; i++) {
        int64_t ts = ((const int64_t *)ct_tensor_cdata(t))[i];
        assert_true(ts >= now_ns - 1000000000 && ts <= now_ns + 60000000000);
    }
    export_op(e, "reg", -1); /* reset defaults to true */
    assert_int_equal(exported(e, "b"), 4);
    export_op(e, "reg", 1);
    assert_int_equal(exported(e, "b"), 0);
    assert_int_equal(exported(e, "a"), 0);
}

static void test_stat_registry_create_replaces_registry(void **state)
{
    struct tu_env *e = *state;
    const char *const keys[1] = {"z"};
    const int64_t values[1] = {7};

    feed_keys(e, "keys", 1, keys);
    feed_i64(e, "values", 1, values);
    run_ok(e, tu_op("StatRegistryCreate", "", "reg"));
    run_ok(e, tu_op("StatRegistryUpdate", "keys,values,reg", ""));
    run_ok(e, tu_op("StatRegistryCreate", "", "reg"));
    export_op(e, "reg", 1);
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "k")), 0);
    /* A tensor blob can be overwritten with a registry (GetMutable). */
    run_ok(e, tu_op("StatRegistryCreate", "", "values"));
    assert_non_null(ct_blob_get(ct_workspace_get_blob(e->ws, "values"),
                                &ct_blob_type_stat_registry));
}

/* ---- StatRegistryUpdate / Export errors ---- */

static void test_stat_registry_update_errors(void **state)
{
    struct tu_env *e = *state;
    const char *const keys[2] = {"a", "b"};
    const int64_t values[3] = {1, 2, 3};
    const float f[2] = {1, 2};
    const int32_t i32[2] = {1, 2};
    const int64_t two = 2;

    feed_keys(e, "keys", 2, keys);
    feed_i64(e, "values3", 3, values);
    feed_i64(e, "values", 2, values);
    tu_feed(e->ws, "fkeys", CT_DTYPE_F32, 1, &two, f);
    tu_feed(e->ws, "ivalues", CT_DTYPE_I32, 1, &two, i32);
    run_fails(e, tu_op("StatRegistryUpdate", "keys,values3", ""), CT_ESHAPE,
              "keys.numel() == values.numel() (2 vs. 3)");
    run_fails(e, tu_op("StatRegistryUpdate", "fkeys,values", ""), CT_ETYPE,
              "input 0 \"fkeys\": Tensor type mismatch, caller expects "
              "elements to be std::string, while tensor contains FLOAT");
    run_fails(e, tu_op("StatRegistryUpdate", "keys,ivalues", ""), CT_ETYPE,
              "caller expects elements to be int64_t, while tensor contains "
              "INT32");
    run_fails(e, tu_op("StatRegistryUpdate", "keys,values,values", ""),
              CT_ETYPE, "input 2 \"values\" holds Tensor, not a StatRegistry");
    run_ok(e, tu_op("TimerBegin", "", "tmr"));
    run_fails(e, tu_op("StatRegistryUpdate", "keys,values,tmr", ""), CT_ETYPE,
              "input 2 \"tmr\" holds Timer, not a StatRegistry");
    run_fails(e, tu_op("StatRegistryUpdate", "keys", ""), CT_ESCHEMA,
              "StatRegistryUpdate takes 2 to 3 inputs, got 1");
    run_fails(e, tu_op("StatRegistryUpdate", "keys,values", "out"), CT_ESCHEMA,
              "takes 0 outputs");
    run_fails(e, tu_op("StatRegistryUpdate", "keys,missing", ""), CT_ENOTFOUND,
              "Encountered a non-existing input blob: missing");
}

static void test_stat_registry_update_nul_key_returns_einval(void **state)
{
    struct tu_env *e = *state;
    const int64_t two = 2, values[2] = {1, 2};
    ct_tensor_t *k = tu_feed(e->ws, "keys", CT_DTYPE_STRING, 1, &two, NULL);
    ct_status_t st;

    assert_int_equal(ct_tensor_set_string(k, 0, "ok", 2, &st), CT_OK);
    assert_int_equal(ct_tensor_set_string(k, 1, "x\0y", 3, &st), CT_OK);
    feed_i64(e, "values", 2, values);
    run_fails(e, tu_op("StatRegistryUpdate", "keys,values", ""), CT_EINVAL,
              "key 1: stat name contains a NUL byte at offset 1");
    /* Nothing was added, not even the valid first key. */
    export_op(e, NULL, 1);
    assert_int_equal(find_key(e, "ok"), -1);
}

static void test_stat_registry_export_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op;
    const int64_t one = 1;

    tu_feed(e->ws, "notreg", CT_DTYPE_I64, 1, &one, &one);
    run_fails(e, tu_op("StatRegistryExport", "notreg", "k,v,t"), CT_ETYPE,
              "input 0 \"notreg\" holds Tensor, not a StatRegistry");
    run_fails(e, tu_op("StatRegistryExport", "", "k,v"), CT_ESCHEMA,
              "StatRegistryExport takes 3 outputs, got 2");
    op = tu_op("StatRegistryExport", "", "k,v,t");
    tu_arg_f(op, "reset", 1.0f);
    run_fails(e, op, CT_EARG, "Argument reset does not have the right field");
    run_fails(e, tu_op("StatRegistryCreate", "notreg", "r"), CT_ESCHEMA,
              "StatRegistryCreate takes 0 inputs, got 1");
    /* No in-place use: an input naming an output is rejected. */
    run_ok(e, tu_op("StatRegistryCreate", "", "reg"));
    run_fails(e, tu_op("StatRegistryExport", "reg", "reg,v,t"), CT_ESCHEMA,
              "in-place");
}

/* A reset export whose outputs cannot be allocated puts the values back. */
static void test_stat_registry_export_alloc_failures_keep_values(void **state)
{
    const char *const keys[2] = {"kk", "jj"};
    const int64_t values[2] = {5, 6};
    bool done = false;
    long k;

    (void)state;
    for (k = 1; !done; k++) {
        struct tu_env e;
        Caffe2__OperatorDef *op = tu_op("StatRegistryExport", "reg", "k,v,t");
        ct_status_t st;
        int rc;

        tu_env_init(&e);
        feed_keys(&e, "keys", 2, keys);
        feed_i64(&e, "values", 2, values);
        run_ok(&e, tu_op("StatRegistryCreate", "", "reg"));
        run_ok(&e, tu_op("StatRegistryUpdate", "keys,values,reg", ""));
        /* Faults from op creation through the outputs to the strings. */
        tu_fail_alloc_after(k);
        rc = tu_run_op(e.ws, op, &st);
        tu_fail_alloc_off();
        tu_op_free(op);
        if (rc == CT_OK) {
            done = true;
            assert_int_equal(exported(&e, "kk"), 5);
        } else {
            tu_assert_status(&st, rc, CT_ENOMEM, NULL);
            export_op(&e, "reg", 0);
            if (find_key(&e, "kk") >= 0) {
                assert_int_equal(exported(&e, "kk"), 5);
                assert_int_equal(exported(&e, "jj"), 6);
            }
        }
        tu_env_destroy(&e);
    }
}

/* ---- timers ---- */

static void test_timer_ops_get_get_and_end_record_the_interval(void **state)
{
    struct tu_env *e = *state;
    const ct_tensor_t *g, *ge;
    Caffe2__OperatorDef *op = tu_op("TimerBegin", "", "t");
    int64_t ns;

    tu_arg_s(op, "counter_name", "my/timer");
    run_ok(e, op);
    run_ok(e, tu_op("TimerGet", "t", "g"));
    g = tu_fetch(e->ws, "g");
    assert_int_equal(ct_tensor_dtype(g), CT_DTYPE_I64);
    assert_int_equal(ct_tensor_ndim(g), 0); /* 0-d */
    assert_true(*(const int64_t *)ct_tensor_cdata(g) >= 0);
    run_ok(e, tu_op("TimerGetAndEnd", "t", "ge"));
    ge = tu_fetch(e->ws, "ge");
    assert_int_equal(ct_tensor_dtype(ge), CT_DTYPE_I64);
    assert_int_equal(ct_tensor_ndim(ge), 1); /* shape [1] */
    assert_int_equal(ct_tensor_dim(ge, 0), 1);
    ns = *(const int64_t *)ct_tensor_cdata(ge);
    assert_true(ns >= *(const int64_t *)ct_tensor_cdata(tu_fetch(e->ws, "g")));
    assert_int_equal(global_value(e, "my/timer/time_ns/count"), 1);
    /* TimerGetAndEnd re-reads the clock when it ends. */
    assert_true(global_value(e, "my/timer/time_ns/sum") >= ns);
    /* Default counter name: the output blob's name. */
    run_ok(e, tu_op("TimerBegin", "", "t"));
    run_ok(e, tu_op("TimerEnd", "t", ""));
    assert_int_equal(global_value(e, "t/time_ns/count"), 1);
    assert_int_equal(global_value(e, "my/timer/time_ns/count"), 1);
}

/* Caffe2's TimerBegin hands out a pointer into the op, which dangles once
 * RunOperatorOnce destroys it. Here the timer lives in the blob. */
static void test_timer_outlives_the_op_that_started_it(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op;
    int i;

    for (i = 0; i < 3; i++) {
        op = tu_op("TimerBegin", "", "t");
        tu_arg_s(op, "counter_name", "once");
        run_ok(e, op); /* the op is destroyed here */
        run_ok(e, tu_op("TimerGet", "t", "g"));
        run_ok(e, tu_op("TimerEnd", "t", ""));
    }
    assert_int_equal(global_value(e, "once/time_ns/count"), 3);
}

static void test_timer_ops_in_a_net(void **state)
{
    struct tu_env *e = *state;
    Caffe2__NetDef *net = tu_net("timed", "", "");
    ct_net_t *n;
    ct_status_t st;
    int i;

    tu_net_add_op(net, tu_op("TimerBegin", "", "nt"));
    tu_net_add_op(net, tu_op("TimerGet", "nt", "mid"));
    tu_net_add_op(net, tu_op("TimerEnd", "nt", ""));
    assert_int_equal(ct_net_new(e->ws, net, NULL, &n, &st), CT_OK);
    for (i = 0; i < 5; i++)
        assert_int_equal(ct_net_run(n, &st), CT_OK);
    assert_int_equal(global_value(e, "nt/time_ns/count"), 5);
    ct_net_free(n);
    tu_net_free(net);
}

static void test_timer_ops_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op;
    ct_blob_t *b;
    const int64_t one = 1;

    run_ok(e, tu_op("TimerBegin", "", "t"));
    run_fails(e, tu_op("TimerBegin", "", "t"), CT_ESTATE,
              "Called TimerBegin on an already running timer.");
    run_ok(e, tu_op("TimerEnd", "t", ""));
    run_fails(e, tu_op("TimerEnd", "t", ""), CT_ESTATE,
              "Called TimerEnd on a stopped timer.");
    run_fails(e, tu_op("TimerGet", "t", "g"), CT_ESTATE,
              "Called TimerGet on a stopped timer.");
    run_fails(e, tu_op("TimerGetAndEnd", "t", "g"), CT_ESTATE,
              "Called TimerGet on a stopped timer.");
    tu_feed(e->ws, "x", CT_DTYPE_I64, 1, &one, &one);
    run_fails(e, tu_op("TimerEnd", "x", ""), CT_ETYPE,
              "input 0 \"x\" holds Tensor, not a Timer");
    assert_int_equal(ct_workspace_create_blob(e->ws, "empty", &b, NULL), CT_OK);
    run_fails(e, tu_op("TimerGet", "empty", "g"), CT_ETYPE,
              "input 0 \"empty\" is empty, not a Timer");
    run_fails(e, tu_op("TimerGetAndEnd", "t", "t"), CT_ESCHEMA, "in-place");
    op = tu_op("TimerBegin", "", "t2");
    tu_arg_i(op, "counter_name", 3);
    run_fails(e, op, CT_EARG,
              "Argument counter_name does not have the right field");
    run_fails(e, tu_op("TimerBegin", "x", "t3"), CT_ESCHEMA,
              "TimerBegin takes 0 inputs, got 1");
}

/* ---- put ops: names, dtypes, bounds, defects fixed ---- */

static void test_put_ops_stat_name_then_name_then_input(void **state)
{
    struct tu_env *e = *state;
    const double v = 2;
    Caffe2__OperatorDef *op;

    feed_f64(e, "val", 1, &v);
    op = tu_op("IncrementPut", "val", "");
    tu_arg_s(op, "name", "documented");
    run_ok(e, op);
    op = tu_op("IncrementPut", "val", "");
    tu_arg_s(op, "name", "ignored");
    tu_arg_s(op, "stat_name", "read");
    run_ok(e, op);
    run_ok(e, tu_op("IncrementPut", "val", ""));
    assert_int_equal(global_value(e, "documented/stat_value"), 2);
    assert_int_equal(global_value(e, "read/stat_value"), 2);
    assert_int_equal(global_value(e, "val/stat_value"), 2);
    export_op(e, NULL, 1);
    assert_int_equal(find_key(e, "ignored/stat_value"), -1);
}

/* Every dtype Caffe2 dispatches: 3 x magnitude 2 = 6 each. */
static void test_put_ops_every_supported_dtype(void **state)
{
    struct tu_env *e = *state;
    static const ct_dtype_t dts[] = {CT_DTYPE_I32, CT_DTYPE_F32, CT_DTYPE_U8,
                                     CT_DTYPE_I8,  CT_DTYPE_U16, CT_DTYPE_I16,
                                     CT_DTYPE_I64, CT_DTYPE_F16, CT_DTYPE_F64};
    const int64_t two = 2;
    size_t i;

    for (i = 0; i < sizeof(dts) / sizeof(dts[0]); i++) {
        union {
            int32_t i32;
            float f32;
            uint8_t u8;
            int8_t i8;
            uint16_t u16;
            int16_t i16;
            int64_t i64;
            double f64;
        } v[2];
        char name[32];
        memset(v, 0, sizeof(v));
        switch (dts[i]) {
        case CT_DTYPE_I32:
            v[0].i32 = 3;
            break;
        case CT_DTYPE_F32:
            v[0].f32 = 3.0f;
            break;
        case CT_DTYPE_U8:
            v[0].u8 = 3;
            break;
        case CT_DTYPE_I8:
            v[0].i8 = 3;
            break;
        case CT_DTYPE_U16:
            v[0].u16 = 3;
            break;
        case CT_DTYPE_F16:
            v[0].u16 = ct_f32_to_f16(3.0f);
            break;
        case CT_DTYPE_I16:
            v[0].i16 = 3;
            break;
        case CT_DTYPE_I64:
            v[0].i64 = 3;
            break;
        default:
            v[0].f64 = 3.0;
            break;
        }
        /* Element 1 is ignored. */
        switch (ct_dtype_size(dts[i])) {
        case 1:
            ((uint8_t *)v)[1] = 100;
            break;
        case 2:
            ((uint16_t *)v)[1] = 100;
            break;
        case 4:
            ((uint32_t *)v)[1] = 100;
            break;
        default:
            ((uint64_t *)v)[1] = 100;
            break;
        }
        tu_feed(e->ws, "x", dts[i], 1, &two, v);
        snprintf(name, sizeof(name), "dt%d", (int)dts[i]);
        run_ok(e, put_op("IncrementPut", "x", name, 2));
        snprintf(name, sizeof(name), "dt%d/stat_value", (int)dts[i]);
        assert_int_equal(global_value(e, name), 6);
    }
}

static void test_put_ops_unsupported_dtype_returns_enotsup(void **state)
{
    struct tu_env *e = *state;
    const int64_t one = 1;
    const uint8_t b = 1;
    const char *const s[1] = {"x"};

    tu_feed(e->ws, "b", CT_DTYPE_BOOL, 1, &one, &b);
    tu_feed(e->ws, "s", CT_DTYPE_STRING, 1, &one, s);
    run_fails(e, put_op("AveragePut", "b", "x", 0), CT_ENOTSUP,
              "Unsupported type of tensor: BOOL");
    run_fails(e, put_op("StdDevPut", "s", "x", 0), CT_ENOTSUP,
              "Unsupported type of tensor: STRING");
}

static void test_put_ops_magnitude_expand_zero_or_negative_is_earg(void **state)
{
    struct tu_env *e = *state;
    const double v = 1;
    Caffe2__OperatorDef *op;

    feed_f64(e, "x", 1, &v);
    op = tu_op("AveragePut", "x", "");
    tu_arg_i(op, "magnitude_expand", 0);
    run_fails(e, op, CT_EARG,
              "Argument magnitude_expand must be positive, got 0");
    run_fails(e, put_op("IncrementPut", "x", "n", -5), CT_EARG,
              "Argument magnitude_expand must be positive, got -5");
}

static void test_put_ops_nan_is_an_error_unless_bound(void **state)
{
    struct tu_env *e = *state;
    const double v = NAN;
    const float f = NAN;
    const int64_t one = 1;
    Caffe2__OperatorDef *op;

    feed_f64(e, "x", 1, &v);
    tu_feed(e->ws, "xf", CT_DTYPE_F32, 1, &one, &f);
    run_fails(e, put_op("AveragePut", "x", "nan", 1000), CT_EINVAL,
              "Input value cannot be NaN!");
    run_fails(e, put_op("AveragePut", "xf", "nan", 0), CT_EINVAL,
              "Input value cannot be NaN!");
    assert_int_equal(global_value(e, "nan/stat_value/count"), 0);
    op = put_op("AveragePut", "x", "nan", 1000);
    tu_arg_i(op, "bound", 1);
    run_ok(e, op);
    assert_int_equal(global_value(e, "nan/stat_value/count"), 1);
    assert_int_equal(global_value(e, "nan/stat_value/sum"), 0);
}

static void test_put_ops_too_large_without_bound(void **state)
{
    struct tu_env *e = *state;
    const double ok = 8.9, bad = 9.0, inf = INFINITY;
    const int64_t one = 1, big = INT64_C(5000000000000000000);
    Caffe2__OperatorDef *op;

    /* B = INT64_MAX / 1e18 = 9: |trunc(x)| must stay below 9. */
    feed_f64(e, "ok", 1, &ok);
    feed_f64(e, "bad", 1, &bad);
    feed_f64(e, "inf", 1, &inf);
    tu_feed(e->ws, "big", CT_DTYPE_I64, 1, &one, &big);
    run_ok(e, put_op("IncrementPut", "ok", "m", INT64_C(1000000000000000000)));
    assert_int_equal(global_value(e, "m/stat_value"), (int64_t)(8.9 * 1e18));
    run_fails(e,
              put_op("IncrementPut", "bad", "m", INT64_C(1000000000000000000)),
              CT_EINVAL,
              "Input value is too large for the given magnitude expansion!");
    run_fails(e, put_op("IncrementPut", "inf", "m", 0), CT_EINVAL, "too large");
    run_fails(e, put_op("IncrementPut", "big", "m", 2), CT_EINVAL, "too large");
    op = put_op("IncrementPut", "big", "clamped", 2);
    tu_arg_i(op, "bound", 1);
    run_ok(e, op);
    assert_int_equal(global_value(e, "clamped/stat_value"), INT64_MAX);
}

static void test_put_ops_integer_bounds_clamp_both_ways(void **state)
{
    struct tu_env *e = *state;
    const int64_t one = 1, lo = -INT64_C(5000000000000000000);
    const int32_t small = -7;
    Caffe2__OperatorDef *op;

    tu_feed(e->ws, "lo", CT_DTYPE_I64, 1, &one, &lo);
    tu_feed(e->ws, "small", CT_DTYPE_I32, 1, &one, &small);
    op = put_op("IncrementPut", "lo", "neg", 2);
    tu_arg_i(op, "bound", 1);
    run_ok(e, op);
    assert_int_equal(global_value(e, "neg/stat_value"), INT64_MIN);
    op = put_op("IncrementPut", "small", "s", 1000);
    tu_arg_i(op, "bound", 1);
    run_ok(e, op);
    assert_int_equal(global_value(e, "s/stat_value"), -7000);
}

/* Caffe2 multiplies a FLOAT value in float: 0.7f * 10 rounds to 7 in
 * float (6.99999988 in double would truncate to 6). */
static void test_put_ops_float_product_in_float(void **state)
{
    struct tu_env *e = *state;
    const float v = 0.7f;
    const int64_t one = 1;

    tu_feed(e->ws, "x", CT_DTYPE_F32, 1, &one, &v);
    run_ok(e, put_op("IncrementPut", "x", "f", 10));
    assert_int_equal(global_value(e, "f/stat_value"), 7);
}

/* FLOAT16 products are half precision: a factor above 65504 is inf. */
static void test_put_ops_half_product_overflows_to_inf(void **state)
{
    struct tu_env *e = *state;
    const int64_t one = 1;
    const uint16_t two = ct_f32_to_f16(2.0f), zero = ct_f32_to_f16(0.0f);
    const uint16_t third = ct_f32_to_f16(0.333333f);
    Caffe2__OperatorDef *op;

    tu_feed(e->ws, "two", CT_DTYPE_F16, 1, &one, &two);
    tu_feed(e->ws, "zero", CT_DTYPE_F16, 1, &one, &zero);
    tu_feed(e->ws, "third", CT_DTYPE_F16, 1, &one, &third);
    run_fails(e, put_op("IncrementPut", "two", "h", 100000), CT_EINVAL,
              "too large");
    op = put_op("IncrementPut", "two", "h", 100000);
    tu_arg_i(op, "bound", 1);
    run_ok(e, op);
    assert_int_equal(global_value(e, "h/stat_value"), INT64_MAX);
    /* 0 x inf is NaN: 0 when bound (Caffe2: UB). */
    op = put_op("IncrementPut", "zero", "hz", 100000);
    tu_arg_i(op, "bound", 1);
    run_ok(e, op);
    assert_int_equal(global_value(e, "hz/stat_value"), 0);
    assert_int_equal(global_value(e, "hz/stat_value"), 0);
    run_fails(e, put_op("IncrementPut", "zero", "hz", 100000), CT_EINVAL,
              "Input value cannot be NaN!");
    /* 0.33325 x 3000 = 999.75 rounds to 1000 in half precision. */
    run_ok(e, put_op("IncrementPut", "third", "h3", 3000));
    assert_int_equal(global_value(e, "h3/stat_value"), 1000);
}

static void test_put_ops_empty_tensor_needs_default(void **state)
{
    struct tu_env *e = *state;
    const int64_t zero = 0;
    Caffe2__OperatorDef *op;

    feed_f64(e, "empty", 0, NULL);
    tu_feed(e->ws, "empty8", CT_DTYPE_I8, 1, &zero, NULL);
    run_fails(e, put_op("AveragePut", "empty", "e", 0), CT_EINVAL,
              "Default value must be provided when receiving empty tensors "
              "for e");
    op = put_op("IncrementPut", "empty8", "e8", 3);
    tu_arg_f(op, "default_value", 5.0f);
    run_ok(e, op);
    assert_int_equal(global_value(e, "e8/stat_value"), 15);
    op = put_op("IncrementPut", "empty8", "e8", 3);
    tu_arg_f(op, "default_value", 300.0f);
    run_fails(e, op, CT_EINVAL,
              "default_value 300 does not fit the INT8 input of stat e8");
    op = put_op("AveragePut", "empty", "e", 0);
    tu_arg_i(op, "default_value", 16);
    run_fails(e, op, CT_EARG,
              "Argument default_value does not have the right field");
}

static void test_put_ops_argument_field_errors(void **state)
{
    struct tu_env *e = *state;
    const double v = 1;
    Caffe2__OperatorDef *op;

    feed_f64(e, "x", 1, &v);
    op = tu_op("AveragePut", "x", "");
    tu_arg_f(op, "magnitude_expand", 2.0f);
    run_fails(e, op, CT_EARG,
              "Argument magnitude_expand does not have the right field");
    op = tu_op("AveragePut", "x", "");
    tu_arg_i(op, "stat_name", 2);
    run_fails(e, op, CT_EARG,
              "Argument stat_name does not have the right field");
    run_fails(e, tu_op("AveragePut", "x", "y"), CT_ESCHEMA,
              "AveragePut takes 0 outputs, got 1");
    run_fails(e, tu_op("IncrementPut", "", ""), CT_ESCHEMA,
              "IncrementPut takes 1 input, got 0");
}

/* The offset is pinned to the first sample: the exported sums give the
 * true sample variance (Caffe2's re-based offset does not). */
static void test_stddev_put_fixed_offset_true_variance(void **state)
{
    struct tu_env *e = *state;
    const double samples[5] = {10, 20, 30, 40, 50};
    struct ct_stat_list l;
    ct_status_t st;
    double mean, var;
    int i;

    for (i = 0; i < 5; i++) {
        feed_f64(e, "x", 1, &samples[i]);
        run_ok(e, put_op("StdDevPut", "x", "sd", 0));
    }
    assert_int_equal(
        ct_stat_registry_export(ct_engine_stats(e->eng), false, &l, &st),
        CT_OK);
    assert_int_equal(ct_stat_list_stddev(&l, "sd/stat_value", &mean, &var),
                     CT_OK);
    assert_true(mean == 30.0);
    assert_true(var == 250.0);
    ct_stat_list_destroy(&l);
    assert_int_equal(global_value(e, "sd/stat_value/sumoffset"), 100);
    assert_int_equal(global_value(e, "sd/stat_value/sumsqoffset"), 3000);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_stat_registry_ops_caffe2_test_stats_ops),
        T(test_average_put_caffe2_default_value),
        T(test_average_put_caffe2_clamp),
        T(test_average_put_caffe2_clamp_with_out_of_bounds),
        T(test_average_put_caffe2_avg_put_ops),
        T(test_increment_put_caffe2_increment_put_ops),
        T(test_stddev_put_caffe2_stddev_put_ops),
        T(test_stats_ops_counters_exported_at_creation_with_0),
        T(test_stat_registry_export_outputs_and_reset),
        T(test_stat_registry_create_replaces_registry),
        T(test_stat_registry_update_errors),
        T(test_stat_registry_update_nul_key_returns_einval),
        T(test_stat_registry_export_errors),
        cmocka_unit_test(test_stat_registry_export_alloc_failures_keep_values),
        T(test_timer_ops_get_get_and_end_record_the_interval),
        T(test_timer_outlives_the_op_that_started_it),
        T(test_timer_ops_in_a_net),
        T(test_timer_ops_errors),
        T(test_put_ops_stat_name_then_name_then_input),
        T(test_put_ops_every_supported_dtype),
        T(test_put_ops_unsupported_dtype_returns_enotsup),
        T(test_put_ops_magnitude_expand_zero_or_negative_is_earg),
        T(test_put_ops_nan_is_an_error_unless_bound),
        T(test_put_ops_too_large_without_bound),
        T(test_put_ops_integer_bounds_clamp_both_ways),
        T(test_put_ops_float_product_in_float),
        T(test_put_ops_half_product_overflows_to_inf),
        T(test_put_ops_empty_tensor_needs_default),
        T(test_put_ops_argument_field_errors),
        T(test_stddev_put_fixed_offset_true_variance),
    };
#undef T

    (void)tu_alloc_live(); /* install the counting hooks first */
    return cmocka_run_group_tests_name("ops.stats", tests, NULL, NULL);
}
