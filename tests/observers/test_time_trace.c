/* Tests for observers/time.c, runcount.c and trace.c: counts and
 * percentiles of the time observer, its table and JSON, Caffe2's run-count
 * text, the trace's Chrome trace-event JSON (checked by a strict JSON
 * parser below) with its events, tracks and input shapes, and the
 * max_events cap with its dropped counter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/observer.h"
#include "obs_test_util.h"

/* ---- a strict JSON checker (RFC 8259 grammar, no extensions) ---- */

struct json {
    const char *p;
    int depth;
    long n_values;
};

static bool json_value(struct json *j);

static void json_ws(struct json *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

static bool json_string(struct json *j)
{
    if (*j->p != '"')
        return false;
    for (j->p++; *j->p != '"'; j->p++) {
        if ((unsigned char)*j->p < 0x20)
            return false;
        if (*j->p == '\\') {
            j->p++;
            if (*j->p == 'u') {
                int k;
                for (k = 1; k <= 4; k++)
                    if (!isxdigit((unsigned char)j->p[k]))
                        return false;
                j->p += 4;
            } else if (strchr("\"\\/bfnrt", *j->p) == NULL || *j->p == 0) {
                return false;
            }
        }
    }
    j->p++;
    return true;
}

static bool json_number(struct json *j)
{
    const char *s = j->p;

    if (*j->p == '-')
        j->p++;
    if (*j->p == '0')
        j->p++;
    else if (isdigit((unsigned char)*j->p))
        while (isdigit((unsigned char)*j->p))
            j->p++;
    else
        return false;
    if (*j->p == '.') {
        j->p++;
        if (!isdigit((unsigned char)*j->p))
            return false;
        while (isdigit((unsigned char)*j->p))
            j->p++;
    }
    if (*j->p == 'e' || *j->p == 'E') {
        j->p++;
        if (*j->p == '+' || *j->p == '-')
            j->p++;
        if (!isdigit((unsigned char)*j->p))
            return false;
        while (isdigit((unsigned char)*j->p))
            j->p++;
    }
    return j->p > s;
}

static bool json_seq(struct json *j, char close, bool object)
{
    j->p++;
    json_ws(j);
    if (*j->p == close) {
        j->p++;
        return true;
    }
    for (;;) {
        if (object) {
            if (!json_string(j))
                return false;
            json_ws(j);
            if (*j->p++ != ':')
                return false;
        }
        if (!json_value(j))
            return false;
        json_ws(j);
        if (*j->p == close) {
            j->p++;
            return true;
        }
        if (*j->p++ != ',')
            return false;
        json_ws(j);
    }
}

static bool json_value(struct json *j)
{
    bool ok;

    json_ws(j);
    j->n_values++;
    if (++j->depth > 64)
        return false;
    if (*j->p == '{')
        ok = json_seq(j, '}', true);
    else if (*j->p == '[')
        ok = json_seq(j, ']', false);
    else if (*j->p == '"')
        ok = json_string(j);
    else if (strncmp(j->p, "true", 4) == 0 || strncmp(j->p, "null", 4) == 0)
        ok = (j->p += 4, true);
    else if (strncmp(j->p, "false", 5) == 0)
        ok = (j->p += 5, true);
    else
        ok = json_number(j);
    j->depth--;
    return ok;
}

/* Asserts the file is one valid JSON value; returns its text. */
static char *assert_json_file(const char *path)
{
    char *text = ofx_read(path);
    struct json j = {NULL, 0, 0};

    if (text == NULL)
        fail_msg("cannot read %s", path);
    j.p = text;
    if (!json_value(&j) || (json_ws(&j), *j.p != '\0'))
        fail_msg("%s: invalid JSON at byte %ld: %.40s", path,
                 (long)(j.p - text), j.p);
    return text;
}

static void test_json_checker_rejects_bad_json(void **state)
{
    static const char *const bad[] = {
        "{", "[1,]", "{\"a\" 1}", "01", "\"\\x\"", "[1 2]", "tru", "{\"a\":}"};
    static const char *const good[] = {"{}", "[1, -2.5e3, \"\\u00e9\"]",
                                       "{\"a\": [true, false, null]}"};
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct json j = {bad[k], 0, 0};
        bool ok = json_value(&j) && (json_ws(&j), *j.p == '\0');
        if (ok)
            fail_msg("accepted %s", bad[k]);
    }
    for (k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        struct json j = {good[k], 0, 0};
        assert_true(json_value(&j) && (json_ws(&j), *j.p == '\0'));
    }
}

/* ---- time ---- */

static void test_time_counts_and_percentiles(void **state)
{
    struct ofx *f = *state;
    struct ct_time_stats s;
    ct_observer_t *obs;
    char spec[300], *text;
    int i, rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "time=%s", ofx_path(f, "time.json"));
    obs = ofx_attach(f, spec);
    for (i = 0; i < 7; i++)
        ofx_run_ok(f);
    for (i = -1; i < 3; i++) {
        assert_int_equal(ct_time_observer_get(obs, i, &s, NULL), CT_OK);
        assert_int_equal(s.count, 7);
        assert_true(s.min_ns > 0);
        assert_true(s.min_ns <= s.p50_ns && s.p50_ns <= s.p99_ns);
        assert_true(s.p99_ns <= s.max_ns);
        assert_true(s.min_ns <= s.mean_ns && s.mean_ns <= s.max_ns);
        assert_true(s.total_ns >= 7 * s.min_ns * 0.999);
    }
    /* The net's wall time covers its ops. */
    {
        struct ct_time_stats w, o;
        double ops = 0;
        assert_int_equal(ct_time_observer_get(obs, -1, &w, NULL), CT_OK);
        for (i = 0; i < 3; i++) {
            assert_int_equal(ct_time_observer_get(obs, i, &o, NULL), CT_OK);
            ops += o.total_ns;
        }
        assert_true(w.total_ns >= ops);
    }
    rc = ct_time_observer_get(obs, 3, &s, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL, "op 3 of a 3-op net");
    assert_int_equal(ct_observer_describe(obs, &text, NULL), CT_OK);
    assert_non_null(strstr(text, "time: net chain, 7 runs, wall mean"));
    assert_non_null(strstr(text, "share"));
    assert_non_null(strstr(text, "ConstantFill"));
    ct_free(text);
    assert_int_equal(ct_observer_flush(obs, NULL), CT_OK);
    text = assert_json_file(ofx_path(f, "time.json"));
    assert_non_null(strstr(text, "\"runs\": 7"));
    assert_non_null(strstr(text, "{\"idx\": 2, \"type\": \"Relu\", \"name\": "
                                 "\"c\", \"count\": 7"));
    free(text);
}

static void test_time_without_file_writes_nothing(void **state)
{
    struct ofx *f = *state;
    ct_observer_t *obs;
    struct ct_time_stats s;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    obs = ofx_attach(f, "time");
    ofx_run_ok(f);
    assert_null(ct_observer_file(obs));
    assert_int_equal(ct_observer_flush(obs, NULL), CT_OK);
    rc = ct_runcount_observer_get(obs, &s.count, &s.count, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL, "is not a runcount observer");
}

/* ---- runcount ---- */

static void test_runcount_counts_like_caffe2(void **state)
{
    struct ofx *f = *state;
    ct_observer_t *obs;
    uint64_t runs, ops;
    char spec[300], *text;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "runcount=%s", ofx_path(f, "rc.json"));
    obs = ofx_attach(f, spec);
    ofx_run_ok(f);
    ofx_run_ok(f);
    assert_int_equal(ct_runcount_observer_get(obs, &runs, &ops, NULL), CT_OK);
    assert_int_equal(runs, 2);
    assert_int_equal(ops, 6);
    assert_int_equal(ct_observer_describe(obs, &text, NULL), CT_OK);
    assert_non_null(strstr(text, "This operator runs 6 times."));
    ct_free(text);
    ct_net_free(f->net);
    f->net = NULL;
    free(assert_json_file(ofx_path(f, "rc.json")));
    ofx_assert_file(ofx_path(f, "rc.json"),
                    "{\"net\": \"chain\", \"runs\": 2, \"op_runs\": 6, "
                    "\"ops\": [2, 2, 2]}\n");
}

/* ---- trace ---- */

static void test_trace_writes_chrome_trace_json(void **state)
{
    static const int64_t d[] = {3, 2};
    static const float x[] = {1, -2, 3, -4, 5, -6};
    struct ofx *f = *state;
    ct_observer_t *obs;
    uint64_t events, dropped;
    char spec[300], *text, *p;
    int n_x = 0;

    tu_feed_f32(f->env.ws, "in", 2, d, x);
    f->def = tu_net("tnet", "in", "");
    ofx_op(f->def, "Relu", "r1", "in", "a");
    ofx_op(f->def, "Add", NULL, "a,in", "b");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "trace=%s", ofx_path(f, "t.json"));
    obs = ofx_attach(f, spec);
    ofx_run_ok(f);
    ofx_run_ok(f);
    ofx_run_ok(f);
    assert_int_equal(ct_trace_observer_get(obs, &events, &dropped, NULL),
                     CT_OK);
    assert_int_equal(events, 3 * 3); /* 2 ops + the net, per run */
    assert_int_equal(dropped, 0);
    ct_net_free(f->net); /* writes the file */
    f->net = NULL;
    text = assert_json_file(ofx_path(f, "t.json"));
    for (p = text; (p = strstr(p, "\"ph\": \"X\"")) != NULL; p++)
        n_x++;
    assert_int_equal(n_x, 9);
    assert_non_null(strstr(text, "\"traceEvents\": ["));
    assert_non_null(strstr(text, "\"dropped\": 0"));
    assert_non_null(strstr(text, "{\"name\": \"r1\", \"cat\": \"op\", \"ph\": "
                                 "\"X\", \"ts\": "));
    assert_non_null(strstr(text, "\"args\": {\"type\": \"Relu\", \"op\": 0, "
                                 "\"run\": 3, \"inputs\": [\"in\"], "
                                 "\"input_shapes\": [[3, 2]]}}"));
    /* An unnamed op is named after its type. */
    assert_non_null(strstr(text, "{\"name\": \"Add\", \"cat\": \"op\""));
    assert_non_null(strstr(text, "\"inputs\": [\"a\", \"in\"], "
                                 "\"input_shapes\": [[3, 2], [3, 2]]}}"));
    assert_non_null(strstr(text, "\"name\": \"tnet\", \"cat\": \"net\""));
    assert_non_null(strstr(text, "\"args\": {\"name\": \"worker 0\"}"));
    free(text);
}

static void test_trace_shapes_follow_the_inputs(void **state)
{
    struct ofx *f = *state;
    int64_t n;
    float x[8] = {0};
    char spec[300], *text;

    n = 4;
    tu_feed_f32(f->env.ws, "in", 1, &n, x);
    f->def = tu_net("shapes", "in", "");
    ofx_op(f->def, "Relu", "r", "in", "out");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "trace=%s", ofx_path(f, "s.json"));
    ofx_attach(f, spec);
    ofx_run_ok(f);
    n = 8;
    tu_feed_f32(f->env.ws, "in", 1, &n, x);
    ofx_run_ok(f);
    ct_net_free(f->net);
    f->net = NULL;
    text = assert_json_file(ofx_path(f, "s.json"));
    assert_non_null(strstr(text, "\"run\": 1, \"inputs\": [\"in\"], "
                                 "\"input_shapes\": [[4]]"));
    assert_non_null(strstr(text, "\"run\": 2, \"inputs\": [\"in\"], "
                                 "\"input_shapes\": [[8]]"));
    free(text);
}

static void test_trace_cap_counts_dropped_events(void **state)
{
    struct ofx *f = *state;
    ct_observer_t *obs;
    uint64_t events, dropped;
    char spec[300], *text;
    int k;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    /* 3 ops + the net track: 8 / 4 = 2 events per track */
    snprintf(spec, sizeof(spec), "trace=%s,max_events=8",
             ofx_path(f, "cap.json"));
    obs = ofx_attach(f, spec);
    for (k = 0; k < 5; k++)
        ofx_run_ok(f);
    assert_int_equal(ct_trace_observer_get(obs, &events, &dropped, NULL),
                     CT_OK);
    assert_int_equal(events, 8);
    assert_int_equal(dropped, 4 * 3);
    assert_int_equal(ct_observer_describe(obs, &text, NULL), CT_OK);
    assert_non_null(strstr(text, "trace: net chain: 8 events (12 dropped, cap "
                                 "8)"));
    ct_free(text);
    assert_int_equal(ct_observer_flush(obs, NULL), CT_OK);
    text = assert_json_file(ofx_path(f, "cap.json"));
    assert_non_null(strstr(text, "\"events\": 8, \"dropped\": 12"));
    free(text);
}

static void test_trace_escapes_names(void **state)
{
    struct ofx *f = *state;
    char spec[300], *text;

    f->def = tu_net("q\"uote\\d\tnet", "", "");
    ofx_fill(f->def, "odd \"name\"", "X", 1);
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "trace=%s", ofx_path(f, "e.json"));
    ofx_attach(f, spec);
    ofx_run_ok(f);
    ct_net_free(f->net);
    f->net = NULL;
    text = assert_json_file(ofx_path(f, "e.json"));
    assert_non_null(strstr(text, "\"odd \\\"name\\\"\""));
    assert_non_null(strstr(text, "\"q\\\"uote\\\\d\\u0009net\""));
    free(text);
}

/* ---- on the parallel dag executor ---- */

static void test_time_trace_runcount_on_dag_net(void **state)
{
    struct ofx *f = *state;
    struct ct_net_config cfg;
    ct_observer_t *tm, *rc_obs, *tr;
    uint64_t runs, ops, events, dropped;
    struct ct_time_stats s;
    char spec[300], name[16], out[16], *text;
    int k;

    /* Eight independent branches: chains the pool can run in parallel. */
    f->def = tu_net("wide", "", "");
    ofx_fill(f->def, "src", "X", -1);
    for (k = 0; k < 8; k++) {
        snprintf(name, sizeof(name), "r%d", k);
        snprintf(out, sizeof(out), "Y%d", k);
        ofx_op(f->def, "Relu", name, "X", out);
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.executor = CT_EXECUTOR_DAG;
    cfg.num_workers = 4;
    assert_int_equal(ct_net_new(f->env.ws, f->def, &cfg, &f->net, &f->st),
                     CT_OK);
    tm = ofx_attach(f, "time");
    rc_obs = ofx_attach(f, "runcount");
    snprintf(spec, sizeof(spec), "trace=%s", ofx_path(f, "dag.json"));
    tr = ofx_attach(f, spec);
    for (k = 0; k < 50; k++)
        ofx_run_ok(f);
    assert_int_equal(ct_runcount_observer_get(rc_obs, &runs, &ops, NULL),
                     CT_OK);
    assert_int_equal(runs, 50);
    assert_int_equal(ops, 50 * 9);
    for (k = -1; k < 9; k++) {
        assert_int_equal(ct_time_observer_get(tm, k, &s, NULL), CT_OK);
        assert_int_equal(s.count, 50);
    }
    assert_int_equal(ct_trace_observer_get(tr, &events, &dropped, NULL), CT_OK);
    assert_int_equal(events, 50 * 10);
    assert_int_equal(ct_observer_flush(tr, NULL), CT_OK);
    text = assert_json_file(ofx_path(f, "dag.json"));
    assert_non_null(strstr(text, "\"input_shapes\": [[2, 2]]"));
    free(text);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, ofx_setup, ofx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_checker_rejects_bad_json),
        T(test_time_counts_and_percentiles),
        T(test_time_without_file_writes_nothing),
        T(test_runcount_counts_like_caffe2),
        T(test_trace_writes_chrome_trace_json),
        T(test_trace_shapes_follow_the_inputs),
        T(test_trace_cap_counts_dropped_events),
        T(test_trace_escapes_names),
        T(test_time_trace_runcount_on_dag_net),
    };
#undef T
    return cmocka_run_group_tests_name("observers.time_trace", tests, NULL,
                                       NULL);
}
