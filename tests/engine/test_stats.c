/* Tests for engine/stats.c, engine/stats_flavors.c and
 * engine/stats_export.c on one thread: counters, handles, set, wrap,
 * update (adds), exports with and without reset, Caffe2's stats_test.cc
 * expectations (spec §8.3) through the C flavours, the fixed StdDev
 * offset, timers, the JSON and Prometheus texts byte for byte, files, the
 * fall-back path when a shard cannot be allocated and allocation-failure
 * loops. Threads are in test_stats_concurrency.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/stats.h"
#include "test_util.h"

/* ---- fixtures ---- */

static int setup_reg(void **state)
{
    ct_stat_registry_t *reg;

    if (ct_stat_registry_new(&reg, NULL) != CT_OK)
        return -1;
    *state = reg;
    return 0;
}

static int teardown_reg(void **state)
{
    ct_stat_registry_free(*state);
    return 0;
}

/* ---- helpers ---- */

static ct_stat_t add_counter(ct_stat_registry_t *reg, const char *name,
                             int kind)
{
    ct_status_t st;
    ct_stat_t h;

    if (ct_stat_registry_add(reg, name, kind, &h, &st) != CT_OK)
        fail_msg("add %s: %s", name, st.msg);
    return h;
}

/* Merged value of `name`; fails the test when absent. */
static int64_t value_of(ct_stat_registry_t *reg, const char *name)
{
    ct_status_t st;
    ct_stat_t h;

    if (ct_stat_registry_find(reg, name, &h, &st) != CT_OK)
        fail_msg("%s", st.msg);
    return ct_stat_get(reg, h);
}

/* Value of `key` in a fresh export (reset or not). */
static int64_t export_value(ct_stat_registry_t *reg, bool reset,
                            const char *key)
{
    struct ct_stat_list l;
    ct_status_t st;
    int64_t v = INT64_MIN;

    assert_int_equal(ct_stat_registry_export(reg, reset, &l, &st), CT_OK);
    if (ct_stat_list_get(&l, key, &v) != CT_OK)
        fail_msg("key %s not exported", key);
    ct_stat_list_destroy(&l);
    return v;
}

/* Replaces the digits after "ts_ns": with "TS" in place. */
static void mask_ts(char *s)
{
    char *p = strstr(s, "\"ts_ns\": ");
    char *e;

    if (p == NULL)
        fail_msg("no ts_ns in %s", s);
    p += strlen("\"ts_ns\": ");
    for (e = p; *e >= '0' && *e <= '9'; e++)
        ;
    assert_true(e - p >= 2);
    p[0] = 'T';
    p[1] = 'S';
    memmove(p + 2, e, strlen(e) + 1);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

/* ---- counters ---- */

static void test_stat_registry_add_same_name_returns_same_handle(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_stat_t a = add_counter(reg, "x/y", CT_STAT_COUNTER);
    ct_stat_t b = add_counter(reg, "z", CT_STAT_COUNTER);

    assert_int_equal(add_counter(reg, "x/y", CT_STAT_GAUGE), a);
    assert_int_not_equal(a, b);
    assert_int_equal(ct_stat_registry_size(reg), 2);
    assert_string_equal(ct_stat_registry_name(reg, a), "x/y");
    assert_string_equal(ct_stat_registry_name(reg, b), "z");
}

static void test_stat_add_one_thread_sums_exactly(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_stat_t a = add_counter(reg, "a", CT_STAT_COUNTER);
    ct_stat_t b;
    int i;

    for (i = 0; i < 1000; i++)
        ct_stat_add(reg, a, 3);
    /* A counter registered after this thread's shard exists grows it. */
    for (i = 0; i < 100; i++)
        add_counter(reg, "filler", CT_STAT_COUNTER);
    b = add_counter(reg, "b", CT_STAT_COUNTER);
    for (i = 0; i < 64; i++) {
        char name[32];
        snprintf(name, sizeof(name), "g%d", i);
        add_counter(reg, name, CT_STAT_COUNTER);
    }
    ct_stat_add(reg, b, 7);
    ct_stat_add(reg, a, 1);
    assert_int_equal(ct_stat_get(reg, a), 3001);
    assert_int_equal(ct_stat_get(reg, b), 7);
}

static void test_stat_registry_find_missing_returns_enotfound(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_status_t st;
    ct_stat_t h;
    int rc = ct_stat_registry_find(reg, "nope", &h, &st);

    tu_assert_status(&st, rc, CT_ENOTFOUND, "no stat named \"nope\"");
}

static void test_stat_registry_add_n_nul_byte_returns_einval(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_status_t st;
    ct_stat_t h;
    int rc = ct_stat_registry_add_n(reg, "ab\0c", 4, CT_STAT_COUNTER, &h, &st);

    tu_assert_status(&st, rc, CT_EINVAL,
                     "stat name contains a NUL byte at offset 2");
    assert_int_equal(ct_stat_registry_size(reg), 0);
}

static void test_stat_registry_add_n_counted_names(void **state)
{
    ct_stat_registry_t *reg = *state;
    char long_name[600];
    ct_status_t st;
    ct_stat_t a, b, c;

    memset(long_name, 'k', sizeof(long_name));
    assert_int_equal(
        ct_stat_registry_add_n(reg, "abcdef", 3, CT_STAT_COUNTER, &a, &st),
        CT_OK);
    assert_int_equal(
        ct_stat_registry_add_n(reg, NULL, 0, CT_STAT_COUNTER, &b, &st), CT_OK);
    assert_int_equal(ct_stat_registry_add_n(reg, long_name, sizeof(long_name),
                                            CT_STAT_COUNTER, &c, &st),
                     CT_OK);
    assert_string_equal(ct_stat_registry_name(reg, a), "abc");
    assert_string_equal(ct_stat_registry_name(reg, b), "");
    assert_int_equal(strlen(ct_stat_registry_name(reg, c)), sizeof(long_name));
    assert_int_equal(add_counter(reg, "abc", CT_STAT_COUNTER), a);
}

static void test_stat_set_returns_old_value(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_stat_t h = add_counter(reg, "g", CT_STAT_GAUGE);

    ct_stat_add(reg, h, 5);
    assert_int_equal(ct_stat_set(reg, h, 95), 5);
    assert_int_equal(ct_stat_get(reg, h), 95);
    ct_stat_add(reg, h, 1); /* deltas apply on top of a set */
    assert_int_equal(ct_stat_set(reg, h, 80), 96);
    assert_int_equal(export_value(reg, true, "g"), 80);
    assert_int_equal(ct_stat_get(reg, h), 0);
}

static void test_stat_add_wraps_modulo_2_64(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_stat_t h = add_counter(reg, "w", CT_STAT_COUNTER);

    ct_stat_add(reg, h, INT64_MAX);
    ct_stat_add(reg, h, 1);
    assert_int_equal(ct_stat_get(reg, h), INT64_MIN);
    ct_stat_add(reg, h, INT64_MAX);
    assert_int_equal(ct_stat_get(reg, h), -1);
    ct_stat_add(reg, h, 1);
    assert_int_equal(ct_stat_get(reg, h), 0);
    ct_stat_set(reg, h, INT64_MIN);
    ct_stat_add(reg, h, -1);
    assert_int_equal(ct_stat_get(reg, h), INT64_MAX);
}

/* ---- exports ---- */

static void test_stat_registry_export_new_counters_are_zero(void **state)
{
    ct_stat_registry_t *reg = *state;
    struct ct_stat_list l;
    ct_status_t st;

    add_counter(reg, "c", CT_STAT_COUNTER);
    add_counter(reg, "a", CT_STAT_GAUGE);
    add_counter(reg, "b", CT_STAT_COUNTER);
    assert_int_equal(ct_stat_registry_export(reg, false, &l, &st), CT_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].key, "c"); /* registration order */
    assert_string_equal(l.items[1].key, "a");
    assert_string_equal(l.items[2].key, "b");
    assert_int_equal(l.items[0].value, 0);
    assert_int_equal(l.items[1].value, 0);
    assert_int_equal(l.items[1].kind, CT_STAT_GAUGE);
    assert_int_equal(l.items[2].ts_ns, l.ts_ns);
    /* Unix epoch ns: after 2020-01-01. */
    assert_true(l.ts_ns > INT64_C(1577836800) * 1000000000);
    ct_stat_list_destroy(&l);
    assert_null(l.items);
    ct_stat_list_destroy(NULL);
}

static void test_stat_registry_export_reset_restarts_from_zero(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_stat_t h = add_counter(reg, "r", CT_STAT_COUNTER);

    ct_stat_add(reg, h, 10);
    assert_int_equal(export_value(reg, false, "r"), 10);
    assert_int_equal(export_value(reg, true, "r"), 10);
    assert_int_equal(export_value(reg, true, "r"), 0);
    ct_stat_add(reg, h, 4);
    assert_int_equal(export_value(reg, true, "r"), 4);
    assert_int_equal(ct_stat_get(reg, h), 0);
}

static void test_stat_list_get_sums_repeated_keys(void **state)
{
    struct ct_stat_value items[3] = {
        {"k", 2, 0, 0}, {"j", 5, 0, 0}, {"k", 3, 0, 0}};
    struct ct_stat_list l = {items, 3, 0, NULL};
    int64_t v;

    (void)state;
    assert_int_equal(ct_stat_list_get(&l, "k", &v), CT_OK);
    assert_int_equal(v, 5);
    assert_int_equal(ct_stat_list_get(&l, "zz", &v), CT_ENOTFOUND);
}

/* stats_test.cc "Simple": events +1 -1 and +2, then a second registry
 * updated twice with that export, published with reset, then again. */
static void test_stat_registry_update_adds_like_caffe2(void **state)
{
    ct_stat_registry_t *reg = *state, *reg2;
    struct ct_stat_list l;
    ct_status_t st;
    ct_stat_t a = add_counter(reg, "i1/s3", CT_STAT_COUNTER);
    ct_stat_t b = add_counter(reg, "i2/s3", CT_STAT_COUNTER);

    ct_stat_add(reg, a, 1);
    ct_stat_add(reg, a, -1);
    ct_stat_add(reg, b, 2);
    assert_int_equal(ct_stat_registry_export(reg, false, &l, &st), CT_OK);
    assert_int_equal(l.items[0].value, 0);
    assert_int_equal(l.items[1].value, 2);
    assert_int_equal(ct_stat_registry_new(&reg2, &st), CT_OK);
    assert_int_equal(ct_stat_registry_update_list(reg2, &l, &st), CT_OK);
    assert_int_equal(ct_stat_registry_update_list(reg2, &l, &st), CT_OK);
    ct_stat_list_destroy(&l);
    assert_int_equal(export_value(reg2, true, "i2/s3"), 4);
    assert_int_equal(export_value(reg2, true, "i2/s3"), 0);
    assert_int_equal(export_value(reg2, true, "i1/s3"), 0);
    ct_stat_registry_free(reg2);
}

static void test_stat_registry_update_nul_key_adds_nothing(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_str_t keys[2] = {{1, "a"}, {3, "b\0c"}};
    const int64_t values[2] = {5, 6};
    ct_status_t st;
    int rc = ct_stat_registry_update(reg, keys, values, 2, &st);

    tu_assert_status(&st, rc, CT_EINVAL,
                     "key 1: stat name contains a NUL byte at offset 1");
    assert_int_equal(ct_stat_registry_size(reg), 0);
    keys[1].len = 1;
    assert_int_equal(ct_stat_registry_update(reg, keys, values, 2, &st), CT_OK);
    assert_int_equal(value_of(reg, "a"), 5);
    assert_int_equal(value_of(reg, "b"), 6);
}

/* ---- flavours (stats_test.cc) ---- */

/* StatsTestClass: num_runs += v, num_successes += 1 per run, 10 runs. */
static void test_stat_exported_caffe2_stats_test_class(void **state)
{
    ct_stat_registry_t *reg = *state;
    struct ct_stat_exported runs[2], succ[2], fail[2];
    const char *group[2] = {"first", "second"};
    const int v[2] = {10, 5};
    ct_status_t st;
    int g, i;

    for (g = 0; g < 2; g++) {
        assert_int_equal(
            ct_stat_exported_init(&runs[g], reg, group[g], "num_runs", &st),
            CT_OK);
        assert_int_equal(ct_stat_exported_init(&succ[g], reg, group[g],
                                               "num_successes", &st),
                         CT_OK);
        assert_int_equal(
            ct_stat_exported_init(&fail[g], reg, group[g], "num_failures", &st),
            CT_OK);
    }
    for (i = 0; i < 10; i++) {
        for (g = 0; g < 2; g++) {
            ct_stat_exported_add(&runs[g], v[g]);
            ct_stat_exported_add(&succ[g], 1);
        }
    }
    assert_int_equal(export_value(reg, false, "first/num_runs"), 100);
    assert_int_equal(export_value(reg, false, "first/num_successes"), 10);
    assert_int_equal(export_value(reg, false, "first/num_failures"), 0);
    assert_int_equal(export_value(reg, false, "second/num_runs"), 50);
    assert_int_equal(export_value(reg, false, "second/num_successes"), 10);
    assert_int_equal(export_value(reg, false, "second/num_failures"), 0);
    assert_int_equal(ct_stat_registry_size(reg), 6);
}

/* "Duration": a timed scope gives stats/time_ns/count = 1, sum > 0. */
static void test_timer_records_duration_caffe2_duration(void **state)
{
    ct_stat_registry_t *reg = *state;
    struct ct_stat_avg dur;
    ct_timer_t *t;
    ct_status_t st;
    int64_t ns;
    volatile double x = 0;
    int i;

    assert_int_equal(ct_stat_avg_init(&dur, reg, "stats", "time_ns", &st),
                     CT_OK);
    assert_int_equal(export_value(reg, false, "stats/time_ns/count"), 0);
    assert_int_equal(ct_timer_new(&t, &st), CT_OK);
    assert_false(ct_timer_running(t));
    assert_int_equal(ct_timer_begin(t, &dur, &st), CT_OK);
    for (i = 0; i < 10000; i++)
        x += sqrt((double)i);
    assert_int_equal(ct_timer_end(t, &ns, &st), CT_OK);
    assert_true(ns > 0 && x > 0);
    assert_int_equal(export_value(reg, false, "stats/time_ns/count"), 1);
    assert_int_equal(export_value(reg, false, "stats/time_ns/sum"), ns);
    ct_timer_free(t);
}

/* "Static": the last value set wins; set returns the old one. */
static void test_stat_static_holds_last_value(void **state)
{
    ct_stat_registry_t *reg = *state;
    struct ct_stat_static a, b;
    ct_status_t st;

    assert_int_equal(ct_stat_static_init(&a, reg, "s", "cpu", &st), CT_OK);
    assert_int_equal(ct_stat_static_init(&b, reg, "t", "cpu", &st), CT_OK);
    assert_int_equal(ct_stat_static_set(&a, 95), 0);
    assert_int_equal(ct_stat_static_set(&a, 80), 95);
    assert_int_equal(ct_stat_static_set(&b, 50), 0);
    assert_int_equal(ct_stat_static_set(&b, 90), 50);
    assert_int_equal(export_value(reg, false, "s/cpu"), 80);
    assert_int_equal(export_value(reg, false, "t/cpu"), 90);
}

static void test_stat_avg_counts_and_sums(void **state)
{
    ct_stat_registry_t *reg = *state;
    struct ct_stat_avg a;
    ct_status_t st;

    assert_int_equal(ct_stat_avg_init(&a, reg, "g", "lat", &st), CT_OK);
    ct_stat_avg_add(&a, 7);
    ct_stat_avg_add(&a, -2);
    assert_int_equal(export_value(reg, false, "g/lat/sum"), 5);
    assert_int_equal(export_value(reg, false, "g/lat/count"), 2);
}

/* The offset is pinned to the first sample, so the documented formula
 * gives the true sample variance for any number of samples (Caffe2's
 * re-based offset gives a wrong one after two samples). */
static void test_stat_stddev_fixed_offset_gives_true_variance(void **state)
{
    ct_stat_registry_t *reg = *state;
    const int64_t v[] = {1000, 1010, 990, 1040, 970, 1005, 1001};
    const size_t n = sizeof(v) / sizeof(v[0]);
    double mean = 0, var = 0, m2 = 0, got_mean, got_var;
    struct ct_stat_list l;
    ct_stat_stddev_t *s;
    ct_status_t st;
    int64_t off;
    size_t i;

    assert_int_equal(ct_stat_stddev_new(reg, "g", "n", &s, &st), CT_OK);
    for (i = 0; i < n; i++) {
        ct_stat_stddev_add(s, v[i]);
        mean += (double)v[i];
    }
    mean /= (double)n;
    for (i = 0; i < n; i++)
        m2 += ((double)v[i] - mean) * ((double)v[i] - mean);
    var = m2 / (double)(n - 1);
    assert_int_equal(ct_stat_registry_export(reg, false, &l, &st), CT_OK);
    assert_int_equal(ct_stat_list_stddev(&l, "g/n", &got_mean, &got_var),
                     CT_OK);
    assert_true(fabs(got_mean - mean) < 1e-9);
    assert_true(fabs(got_var - var) < 1e-9 * var);
    /* Offsets are relative to the first sample: sumoffset = sum - n*v0. */
    assert_int_equal(ct_stat_list_get(&l, "g/n/sumoffset", &off), CT_OK);
    assert_int_equal(off,
                     1000 + 1010 + 990 + 1040 + 970 + 1005 + 1001 - 7 * 1000);
    ct_stat_list_destroy(&l);
    assert_int_equal(ct_stat_list_stddev(&l, "g/n", &got_mean, &got_var),
                     CT_ENOTFOUND);
    ct_stat_stddev_free(s);
}

static void test_stat_stddev_extreme_values_wrap_without_ub(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_stat_stddev_t *s;
    ct_status_t st;

    assert_int_equal(ct_stat_stddev_new(reg, "x", "y", &s, &st), CT_OK);
    ct_stat_stddev_add(s, INT64_MIN);
    ct_stat_stddev_add(s, INT64_MAX); /* d = 2^64 - 1 wraps, d*d wraps */
    ct_stat_stddev_add(s, 0);
    assert_int_equal(export_value(reg, false, "x/y/count"), 3);
    assert_int_equal(export_value(reg, false, "x/y/sum"), -1);
    ct_stat_stddev_free(s);
    ct_stat_stddev_free(NULL);
}

static void test_stat_detailed_adds_to_detail_and_total(void **state)
{
    ct_stat_registry_t *reg = *state;
    const char *const names[] = {"a", "b"};
    ct_stat_detailed_t *d;
    ct_status_t st;

    assert_int_equal(ct_stat_detailed_new(reg, "G", "N", &d, &st), CT_OK);
    ct_stat_detailed_add(d, 1, 0); /* no details yet: total only */
    assert_int_equal(ct_stat_detailed_set_details(d, names, 2, &st), CT_OK);
    ct_stat_detailed_add(d, 5, 0);
    ct_stat_detailed_add(d, 7, 1);
    ct_stat_detailed_add(d, 3, 9);
    assert_int_equal(export_value(reg, false, "G/N"), 16);
    assert_int_equal(export_value(reg, false, "G/N/a"), 5);
    assert_int_equal(export_value(reg, false, "G/N/b"), 7);
    ct_stat_detailed_free(d);
    ct_stat_detailed_free(NULL);
}

/* ---- timers ---- */

static void test_timer_begin_running_returns_estate(void **state)
{
    ct_timer_t *t;
    ct_status_t st;
    int rc;

    (void)state;
    assert_int_equal(ct_timer_new(&t, &st), CT_OK);
    assert_int_equal(ct_timer_begin(t, NULL, &st), CT_OK);
    rc = ct_timer_begin(t, NULL, &st);
    tu_assert_status(&st, rc, CT_ESTATE,
                     "Called TimerBegin on an already running timer.");
    assert_true(ct_timer_running(t));
    assert_int_equal(ct_timer_end(t, NULL, &st), CT_OK);
    ct_timer_free(t);
}

static void test_timer_end_stopped_returns_estate(void **state)
{
    ct_timer_t *t;
    ct_status_t st;
    int64_t ns;
    int rc;

    (void)state;
    assert_int_equal(ct_timer_new(&t, &st), CT_OK);
    rc = ct_timer_end(t, &ns, &st);
    tu_assert_status(&st, rc, CT_ESTATE, "Called TimerEnd on a stopped timer.");
    rc = ct_timer_get_ns(t, &ns, &st);
    tu_assert_status(&st, rc, CT_ESTATE, "Called TimerGet on a stopped timer.");
    ct_timer_free(t);
    ct_timer_free(NULL);
}

static void test_timer_get_keeps_running(void **state)
{
    ct_stat_registry_t *reg = *state;
    struct ct_stat_avg a;
    ct_timer_t *t;
    ct_status_t st;
    int64_t g1, g2, e;

    assert_int_equal(ct_stat_avg_init(&a, reg, "t", "time_ns", &st), CT_OK);
    assert_int_equal(ct_timer_new(&t, &st), CT_OK);
    assert_int_equal(ct_timer_begin(t, &a, &st), CT_OK);
    assert_int_equal(ct_timer_get_ns(t, &g1, &st), CT_OK);
    assert_int_equal(ct_timer_get_ns(t, &g2, &st), CT_OK);
    assert_true(g1 >= 0 && g2 >= g1);
    assert_int_equal(ct_timer_end(t, &e, &st), CT_OK);
    assert_true(e >= g2);
    /* Restart: a second interval adds to the same stat. */
    assert_int_equal(ct_timer_begin(t, &a, &st), CT_OK);
    assert_int_equal(ct_timer_end(t, NULL, &st), CT_OK);
    assert_int_equal(export_value(reg, false, "t/time_ns/count"), 2);
    ct_timer_free(t);
}

/* ---- JSON and Prometheus ---- */

static void test_stat_registry_export_json_exact_text(void **state)
{
    ct_stat_registry_t *reg = *state;
    const char *want = "{\n"
                       "  \"ts_ns\": TS,\n"
                       "  \"stats\": {\n"
                       "    \"a\": 1,\n"
                       "    \"b\": -2,\n"
                       "    \"bad\\ufffd\": 5,\n"
                       "    \"caf\xc3\xa9\": 4,\n"
                       "    \"q\\\"\\\\\\n\\u0001\": 3\n"
                       "  }\n"
                       "}\n";
    ct_status_t st;
    size_t len;
    char *text;

    ct_stat_add(reg, add_counter(reg, "b", CT_STAT_COUNTER), -2);
    ct_stat_add(reg, add_counter(reg, "a", CT_STAT_COUNTER), 1);
    ct_stat_add(reg, add_counter(reg, "q\"\\\n\x01", CT_STAT_COUNTER), 3);
    ct_stat_add(reg, add_counter(reg, "caf\xc3\xa9", CT_STAT_COUNTER), 4);
    ct_stat_add(reg, add_counter(reg, "bad\xff", CT_STAT_COUNTER), 5);
    assert_int_equal(ct_stat_registry_export_json(reg, false, &text, &len, &st),
                     CT_OK);
    assert_int_equal(strlen(text), len);
    mask_ts(text);
    assert_string_equal(text, want);
    ct_free(text);
    assert_int_equal(value_of(reg, "a"), 1); /* no reset */
}

static void test_stat_registry_export_json_empty_and_reset(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_status_t st;
    char *text;

    assert_int_equal(ct_stat_registry_export_json(reg, true, &text, NULL, &st),
                     CT_OK);
    mask_ts(text);
    assert_string_equal(text, "{\n  \"ts_ns\": TS,\n  \"stats\": {}\n}\n");
    ct_free(text);
    ct_stat_add(reg, add_counter(reg, "n", CT_STAT_COUNTER), 9);
    assert_int_equal(ct_stat_registry_export_json(reg, true, &text, NULL, &st),
                     CT_OK);
    assert_non_null(strstr(text, "\"n\": 9"));
    ct_free(text);
    assert_int_equal(value_of(reg, "n"), 0);
}

static void test_stat_registry_export_texts_format_int64_extremes(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_status_t st;
    char *text;

    ct_stat_set(reg, add_counter(reg, "min", CT_STAT_GAUGE), INT64_MIN);
    ct_stat_set(reg, add_counter(reg, "max", CT_STAT_GAUGE), INT64_MAX);
    ct_stat_add(reg, add_counter(reg, "zero", CT_STAT_COUNTER), 0);
    assert_int_equal(ct_stat_registry_export_json(reg, false, &text, NULL, &st),
                     CT_OK);
    assert_non_null(strstr(text, "\"min\": -9223372036854775808,\n"));
    assert_non_null(strstr(text, "\"max\": 9223372036854775807,\n"));
    assert_non_null(strstr(text, "\"zero\": 0\n"));
    ct_free(text);
    assert_int_equal(ct_stat_registry_export_prom(reg, false, &text, NULL, &st),
                     CT_OK);
    assert_string_equal(text, "# TYPE max gauge\nmax 9223372036854775807\n"
                              "# TYPE min gauge\nmin -9223372036854775808\n"
                              "# TYPE zero counter\nzero 0\n");
    ct_free(text);
}

static void test_stat_registry_export_prom_exact_text(void **state)
{
    ct_stat_registry_t *reg = *state;
    const char *want = "# TYPE _ counter\n"
                       "_{key=\"\"} 5\n"
                       "# TYPE _9lives gauge\n"
                       "_9lives{key=\"9lives\"} 7\n"
                       "# TYPE a_b counter\n"
                       "a_b{key=\"a/b\"} 2\n"
                       "a_b 1\n"
                       "# TYPE cortado_runs counter\n"
                       "cortado_runs{key=\"cortado/runs\"} 3\n"
                       "# TYPE ok:name counter\n"
                       "ok:name 4\n"
                       "# TYPE we_ird__ counter\n"
                       "we_ird__{key=\"we\\\"ird\\\\\\n\"} 6\n";
    ct_status_t st;
    char *text;
    size_t len;

    ct_stat_add(reg, add_counter(reg, "cortado/runs", CT_STAT_COUNTER), 3);
    ct_stat_add(reg, add_counter(reg, "a_b", CT_STAT_COUNTER), 1);
    ct_stat_add(reg, add_counter(reg, "a/b", CT_STAT_COUNTER), 2);
    ct_stat_set(reg, add_counter(reg, "9lives", CT_STAT_GAUGE), 7);
    ct_stat_add(reg, add_counter(reg, "ok:name", CT_STAT_COUNTER), 4);
    ct_stat_add(reg, add_counter(reg, "", CT_STAT_COUNTER), 5);
    ct_stat_add(reg, add_counter(reg, "we\"ird\\\n", CT_STAT_COUNTER), 6);
    assert_int_equal(ct_stat_registry_export_prom(reg, false, &text, &len, &st),
                     CT_OK);
    assert_int_equal(strlen(text), len);
    assert_string_equal(text, want);
    ct_free(text);
}

static void test_stat_registry_export_prom_empty_is_empty_text(void **state)
{
    ct_stat_registry_t *reg = *state;
    ct_status_t st;
    char *text;
    size_t len = 99;

    assert_int_equal(ct_stat_registry_export_prom(reg, false, &text, &len, &st),
                     CT_OK);
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    ct_free(text);
}

/* ---- files ---- */

static void test_stat_registry_write_files_match_exports(void **state)
{
    ct_stat_registry_t *reg = *state;
    char dir[] = "/tmp/ct_stats_XXXXXX", path[256];
    ct_status_t st;
    char *text, *file;

    assert_non_null(mkdtemp(dir));
    ct_stat_add(reg, add_counter(reg, "x/y", CT_STAT_COUNTER), 12);
    snprintf(path, sizeof(path), "%s/s.json", dir);
    assert_int_equal(ct_stat_registry_write_json_file(reg, path, false, &st),
                     CT_OK);
    /* Replacing an existing file works the same way. */
    assert_int_equal(ct_stat_registry_write_json_file(reg, path, false, &st),
                     CT_OK);
    file = read_file(path);
    assert_int_equal(ct_stat_registry_export_json(reg, false, &text, NULL, &st),
                     CT_OK);
    mask_ts(file);
    mask_ts(text);
    assert_string_equal(file, text);
    free(file);
    ct_free(text);
    unlink(path);
    snprintf(path, sizeof(path), "%s/s.prom", dir);
    assert_int_equal(ct_stat_registry_write_prom_file(reg, path, true, &st),
                     CT_OK);
    file = read_file(path);
    assert_string_equal(file, "# TYPE x_y counter\nx_y{key=\"x/y\"} 12\n");
    free(file);
    unlink(path);
    assert_int_equal(value_of(reg, "x/y"), 0); /* reset */
    assert_int_equal(rmdir(dir), 0);           /* no temporary left */
    assert_int_equal(
        ct_stat_registry_write_json_file(reg, "/dev/null", false, &st), CT_OK);
}

static void test_stat_registry_write_file_bad_dir_returns_eio(void **state)
{
    ct_stat_registry_t *reg = *state;
    const char *path = "/nonexistent-ct-dir/stats.json";
    ct_status_t st;
    int rc;

    ct_stat_add(reg, add_counter(reg, "kept", CT_STAT_COUNTER), 3);
    rc = ct_stat_registry_write_json_file(reg, path, true, &st);
    tu_assert_status(&st, rc, CT_EIO, path);
    assert_non_null(strstr(st.msg, "cannot create a temporary file"));
    /* The reset export could not be written: its values are put back. */
    assert_int_equal(value_of(reg, "kept"), 3);
    rc = ct_stat_registry_write_prom_file(reg, "/tmp", false, &st);
    tu_assert_status(&st, rc, CT_EIO, "/tmp: is a directory");
}

/* ---- shards, cache, fall-backs ---- */

static void test_stat_add_many_registries_alternating(void **state)
{
    ct_stat_registry_t *regs[20];
    ct_stat_t h[20];
    ct_status_t st;
    int r, i;

    (void)state;
    for (r = 0; r < 20; r++) {
        assert_int_equal(ct_stat_registry_new(&regs[r], &st), CT_OK);
        h[r] = add_counter(regs[r], "c", CT_STAT_COUNTER);
    }
    for (i = 0; i < 1000; i++)
        for (r = 0; r < 20; r++)
            ct_stat_add(regs[r], h[r], r + 1);
    for (r = 0; r < 20; r++) {
        assert_int_equal(ct_stat_get(regs[r], h[r]), 1000 * (r + 1));
        ct_stat_registry_free(regs[r]);
    }
}

/* A registry freed and another allocated (often at the same address) must
 * never reuse the first one's cached shard. */
static void test_stat_registry_free_then_new_starts_clean(void **state)
{
    ct_stat_registry_t *a, *b;
    ct_status_t st;
    ct_stat_t h;
    int i;

    (void)state;
    for (i = 0; i < 10; i++) {
        assert_int_equal(ct_stat_registry_new(&a, &st), CT_OK);
        h = add_counter(a, "c", CT_STAT_COUNTER);
        ct_stat_add(a, h, 100);
        ct_stat_registry_free(a);
        assert_int_equal(ct_stat_registry_new(&b, &st), CT_OK);
        h = add_counter(b, "c", CT_STAT_COUNTER);
        ct_stat_add(b, h, 1);
        assert_int_equal(ct_stat_get(b, h), 1);
        ct_stat_registry_free(b);
    }
    ct_stat_registry_free(NULL);
}

static void test_stat_add_without_memory_uses_registry_total(void **state)
{
    ct_stat_registry_t *reg;
    ct_status_t st;
    ct_stat_t h, g;
    char name[16];
    long live = tu_alloc_live();
    int i;

    (void)state;
    assert_int_equal(ct_stat_registry_new(&reg, &st), CT_OK);
    h = add_counter(reg, "c", CT_STAT_COUNTER);
    /* No shard can be created: the delta goes to the registry. */
    tu_fail_alloc_after(1);
    ct_stat_add(reg, h, 5);
    tu_fail_alloc_off();
    assert_int_equal(ct_stat_get(reg, h), 5);
    ct_stat_add(reg, h, 2); /* now with a shard */
    assert_int_equal(ct_stat_get(reg, h), 7);
    /* The shard cannot grow to a new counter: same fall-back. */
    for (i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        g = add_counter(reg, name, CT_STAT_COUNTER);
    }
    tu_fail_alloc_after(1);
    ct_stat_add(reg, g, 11);
    ct_stat_add(reg, h, 1); /* still in the old shard */
    tu_fail_alloc_off();
    ct_stat_add(reg, g, 1);
    assert_int_equal(ct_stat_get(reg, g), 12);
    assert_int_equal(ct_stat_get(reg, h), 8);
    assert_int_equal(export_value(reg, true, "n39"), 12);
    assert_int_equal(ct_stat_get(reg, g), 0);
    ct_stat_registry_free(reg);
    assert_int_equal(tu_alloc_live(), live);
}

static void test_engine_stats_is_a_live_registry(void **state)
{
    ct_engine_t *eng;
    ct_stat_registry_t *reg;
    ct_status_t st;
    ct_stat_t h;

    (void)state;
    assert_int_equal(ct_engine_new(NULL, &eng, &st), CT_OK);
    reg = ct_engine_stats(eng);
    assert_non_null(reg);
    h = add_counter(reg, CT_STAT_ENGINE_PREFIX "test", CT_STAT_COUNTER);
    ct_stat_add(reg, h, 2);
    assert_int_equal(value_of(reg, "cortado/test"), 2);
    ct_engine_free(eng);
}

static void test_blob_holding_registry_and_timer_frees_them(void **state)
{
    struct tu_env e;
    ct_stat_registry_t *reg;
    ct_timer_t *t;
    ct_blob_t *b;
    ct_status_t st;
    long live = tu_alloc_live();

    (void)state;
    tu_env_init(&e);
    assert_int_equal(ct_workspace_create_blob(e.ws, "r", &b, &st), CT_OK);
    assert_int_equal(ct_stat_registry_new(&reg, &st), CT_OK);
    ct_stat_add(reg, add_counter(reg, "k", CT_STAT_COUNTER), 1);
    ct_blob_reset(b, &ct_blob_type_stat_registry, reg);
    assert_ptr_equal(ct_blob_get(b, &ct_blob_type_stat_registry), reg);
    assert_string_equal(ct_blob_type(b)->name, "StatRegistry");
    assert_int_equal(ct_workspace_create_blob(e.ws, "t", &b, &st), CT_OK);
    assert_int_equal(ct_timer_new(&t, &st), CT_OK);
    ct_blob_reset(b, &ct_blob_type_timer, t);
    assert_string_equal(ct_blob_type(b)->name, "Timer");
    tu_env_destroy(&e);
    assert_int_equal(tu_alloc_live(), live);
}

/* ---- allocation failures ---- */

static void test_stat_registry_new_alloc_failures_return_enomem(void **state)
{
    bool done = false;
    long k;

    (void)state;
    for (k = 1; !done; k++) {
        long live = tu_alloc_live();
        ct_stat_registry_t *reg = (void *)1;
        ct_status_t st;
        int rc;

        tu_fail_alloc_after(k);
        rc = ct_stat_registry_new(&reg, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            done = true;
            ct_stat_registry_free(reg);
        } else {
            tu_assert_status(&st, rc, CT_ENOMEM, "stat registry");
            assert_null(reg);
        }
        assert_int_equal(tu_alloc_live(), live);
    }
}

static void test_stat_registry_add_alloc_failures_leave_registry(void **state)
{
    ct_stat_registry_t *reg = *state;
    char name[32];
    bool done = false;
    long k;
    int i;

    /* Enough counters that the table and the array both grow. */
    for (i = 0; i < 15; i++) {
        snprintf(name, sizeof(name), "pre%d", i);
        add_counter(reg, name, CT_STAT_COUNTER);
    }
    for (k = 1; !done; k++) {
        ct_status_t st;
        ct_stat_t h;
        int rc;

        tu_fail_alloc_after(k);
        rc = ct_stat_registry_add(reg, "the/new/one", CT_STAT_COUNTER, &h, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            done = true;
            assert_int_equal(ct_stat_registry_size(reg), 16);
        } else {
            tu_assert_status(&st, rc, CT_ENOMEM, "the/new/one");
            assert_int_equal(ct_stat_registry_size(reg), 15);
            assert_int_equal(
                ct_stat_registry_find(reg, "the/new/one", &h, NULL),
                CT_ENOTFOUND);
        }
    }
}

/* Every reset export path: a failure leaves every value in place. */
static void test_stat_registry_exports_alloc_failures_keep_values(void **state)
{
    static const char *const what[3] = {"list", "json", "prom"};
    ct_stat_registry_t *reg = *state;
    ct_stat_t a = add_counter(reg, "a/x", CT_STAT_COUNTER);
    ct_stat_t b = add_counter(reg, "b", CT_STAT_GAUGE);
    int f;

    ct_stat_add(reg, a, 41);
    ct_stat_set(reg, b, -3);
    for (f = 0; f < 3; f++) {
        bool done = false;
        long k;
        for (k = 1; !done; k++) {
            struct ct_stat_list l;
            long live = tu_alloc_live();
            ct_status_t st;
            char *text = NULL;
            int rc;

            tu_fail_alloc_after(k);
            if (f == 0)
                rc = ct_stat_registry_export(reg, true, &l, &st);
            else if (f == 1)
                rc = ct_stat_registry_export_json(reg, true, &text, NULL, &st);
            else
                rc = ct_stat_registry_export_prom(reg, true, &text, NULL, &st);
            tu_fail_alloc_off();
            if (rc == CT_OK) {
                done = true;
                if (f == 0)
                    ct_stat_list_destroy(&l);
                ct_free(text);
                assert_int_equal(ct_stat_get(reg, a), 0);
                ct_stat_add(reg, a, 41);
                ct_stat_set(reg, b, -3);
            } else {
                if (f == 0)
                    assert_null(l.items);
                assert_null(text);
                tu_assert_status(&st, rc, CT_ENOMEM, NULL);
                if (ct_stat_get(reg, a) != 41 || ct_stat_get(reg, b) != -3)
                    fail_msg("%s export failure %ld lost values", what[f], k);
            }
            assert_int_equal(tu_alloc_live(), live);
        }
    }
}

static void test_stat_flavours_alloc_failures_return_enomem(void **state)
{
    const char *const names[] = {"d1", "d2", "d3"};
    bool done = false;
    long k;

    (void)state;
    for (k = 1; !done; k++) {
        long live = tu_alloc_live();
        ct_stat_registry_t *reg = NULL;
        ct_stat_stddev_t *sd = NULL;
        ct_stat_detailed_t *dt = NULL;
        ct_timer_t *t = NULL;
        struct ct_stat_avg avg;
        ct_status_t st;
        int rc;

        tu_fail_alloc_after(k);
        rc = ct_stat_registry_new(&reg, &st);
        if (rc == CT_OK)
            rc = ct_stat_avg_init(&avg, reg, "a", "b", &st);
        if (rc == CT_OK)
            rc = ct_stat_stddev_new(reg, "s", "t", &sd, &st);
        if (rc == CT_OK)
            rc = ct_stat_detailed_new(reg, "d", "e", &dt, &st);
        if (rc == CT_OK)
            rc = ct_stat_detailed_set_details(dt, names, 3, &st);
        if (rc == CT_OK)
            rc = ct_timer_new(&t, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            done = true;
        else
            tu_assert_status(&st, rc, CT_ENOMEM, NULL);
        ct_timer_free(t);
        ct_stat_detailed_free(dt);
        ct_stat_stddev_free(sd);
        ct_stat_registry_free(reg);
        assert_int_equal(tu_alloc_live(), live);
    }
}

static void test_stat_registry_update_alloc_failures_add_nothing(void **state)
{
    ct_stat_registry_t *reg = *state;
    const ct_str_t keys[3] = {{1, "p"}, {1, "q"}, {1, "p"}};
    const int64_t values[3] = {1, 2, 3};
    bool done = false;
    long k;

    for (k = 1; !done; k++) {
        ct_status_t st;
        int rc;

        tu_fail_alloc_after(k);
        rc = ct_stat_registry_update(reg, keys, values, 3, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            done = true;
            assert_int_equal(value_of(reg, "p"), 4);
            assert_int_equal(value_of(reg, "q"), 2);
        } else {
            struct ct_stat_list l;
            size_t i;
            tu_assert_status(&st, rc, CT_ENOMEM, NULL);
            assert_int_equal(ct_stat_registry_export(reg, false, &l, &st),
                             CT_OK);
            for (i = 0; i < l.n; i++)
                assert_int_equal(l.items[i].value, 0);
            ct_stat_list_destroy(&l);
        }
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_reg, teardown_reg)
    const struct CMUnitTest tests[] = {
        T(test_stat_registry_add_same_name_returns_same_handle),
        T(test_stat_add_one_thread_sums_exactly),
        T(test_stat_registry_find_missing_returns_enotfound),
        T(test_stat_registry_add_n_nul_byte_returns_einval),
        T(test_stat_registry_add_n_counted_names),
        T(test_stat_set_returns_old_value),
        T(test_stat_add_wraps_modulo_2_64),
        T(test_stat_registry_export_new_counters_are_zero),
        T(test_stat_registry_export_reset_restarts_from_zero),
        T(test_stat_list_get_sums_repeated_keys),
        T(test_stat_registry_update_adds_like_caffe2),
        T(test_stat_registry_update_nul_key_adds_nothing),
        T(test_stat_exported_caffe2_stats_test_class),
        T(test_timer_records_duration_caffe2_duration),
        T(test_stat_static_holds_last_value),
        T(test_stat_avg_counts_and_sums),
        T(test_stat_stddev_fixed_offset_gives_true_variance),
        T(test_stat_stddev_extreme_values_wrap_without_ub),
        T(test_stat_detailed_adds_to_detail_and_total),
        T(test_timer_begin_running_returns_estate),
        T(test_timer_end_stopped_returns_estate),
        T(test_timer_get_keeps_running),
        T(test_stat_registry_export_json_exact_text),
        T(test_stat_registry_export_json_empty_and_reset),
        T(test_stat_registry_export_texts_format_int64_extremes),
        T(test_stat_registry_export_prom_exact_text),
        T(test_stat_registry_export_prom_empty_is_empty_text),
        T(test_stat_registry_write_files_match_exports),
        T(test_stat_registry_write_file_bad_dir_returns_eio),
        cmocka_unit_test(test_stat_add_many_registries_alternating),
        cmocka_unit_test(test_stat_registry_free_then_new_starts_clean),
        cmocka_unit_test(test_stat_add_without_memory_uses_registry_total),
        cmocka_unit_test(test_engine_stats_is_a_live_registry),
        cmocka_unit_test(test_blob_holding_registry_and_timer_frees_them),
        cmocka_unit_test(test_stat_registry_new_alloc_failures_return_enomem),
        T(test_stat_registry_add_alloc_failures_leave_registry),
        T(test_stat_registry_exports_alloc_failures_keep_values),
        cmocka_unit_test(test_stat_flavours_alloc_failures_return_enomem),
        T(test_stat_registry_update_alloc_failures_add_nothing),
    };
#undef T

    (void)tu_alloc_live(); /* install the counting hooks first */
    return cmocka_run_group_tests_name("engine.stats", tests, NULL, NULL);
}
