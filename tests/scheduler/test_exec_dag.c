/* Tests of the parallel dag executor (scheduler/exec_dag.c): random DAG
 * nets of real ops give results identical to the simple executor, every
 * edge is respected, the first error wins and names its op, the engine
 * stays reusable after a failure, several nets run at once on one engine,
 * and NUMA placement on a synthetic two-node topology works. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/cortado.h"
#include "engine/net_impl.h"
#include "test_util.h"

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random layered DAG of n_ops ops. Op i writes blob "b<i>" = Sum of 1-3
 * earlier blobs (or the input "x") then scaled by a per-op factor through
 * a second op, so chains form too. Summation order is fixed by the op's
 * input order, so any valid execution order gives bit-identical results.
 */
static Caffe2__NetDef *random_net(const char *type, int n_ops, uint64_t seed)
{
    Caffe2__NetDef *net = tu_net("random", "x", "");
    uint64_t s = seed * 2654435761u + 1;
    char ins[64], out[16];
    int i;

    net->type = strdup(type);
    for (i = 0; i < n_ops; i++) {
        int k, n_in = 1 + (int)(rng_next(&s) % 3);
        size_t off = 0;
        Caffe2__OperatorDef *op;
        ins[0] = '\0';
        for (k = 0; k < n_in; k++) {
            int src = i == 0 ? -1 : (int)(rng_next(&s) % (uint64_t)(i + 1)) - 1;
            if (src < 0)
                off += (size_t)snprintf(ins + off, sizeof(ins) - off, "%sx",
                                        k ? "," : "");
            else
                off += (size_t)snprintf(ins + off, sizeof(ins) - off, "%sb%d",
                                        k ? "," : "", src);
        }
        snprintf(out, sizeof(out), "b%d", i);
        if (rng_next(&s) % 2) {
            op = tu_op("Sum", ins, out);
        } else {
            /* Scale of the first input: a single-parent op (chains). */
            char *comma = strchr(ins, ',');
            if (comma)
                *comma = '\0';
            op = tu_op("Scale", ins, out);
            tu_arg_f(op, "scale", 0.5f + (float)(rng_next(&s) % 4) * 0.25f);
        }
        tu_net_add_op(net, op);
    }
    return net;
}

struct run_result {
    int n;
    float *vals; /* n blobs x 4 floats */
};

static void run_random(ct_engine_t *eng, const char *type, int n_ops,
                       uint64_t seed, int iters, struct run_result *r)
{
    static const float x[4] = {1.0f, -2.0f, 0.25f, 3.0f};
    const int64_t dims[1] = {4};
    Caffe2__NetDef *def = random_net(type, n_ops, seed);
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    char name[16];
    int i, it;

    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed_f32(ws, "x", 1, dims, x);
    if (ct_net_new(ws, def, NULL, &net, &st) != CT_OK)
        fail_msg("compile: %s", st.msg);
    for (it = 0; it < iters; it++)
        if (ct_net_run(net, &st) != CT_OK)
            fail_msg("run %d: %s", it, st.msg);
    r->n = n_ops;
    r->vals = malloc((size_t)n_ops * 4 * sizeof(float));
    for (i = 0; i < n_ops; i++) {
        snprintf(name, sizeof(name), "b%d", i);
        memcpy(r->vals + 4 * i, ct_tensor_cdata(tu_fetch(ws, name)),
               4 * sizeof(float));
    }
    ct_net_free(net);
    ct_workspace_free(ws);
    tu_net_free(def);
}

static ct_engine_t *engine_with(int n_threads, const char *topology)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;

    ct_engine_config_init(&cfg);
    cfg.n_threads = n_threads;
    cfg.topology = topology;
    if (ct_engine_new(&cfg, &eng, &st) != CT_OK)
        fail_msg("engine: %s", st.msg);
    return eng;
}

/* ---- tests ---- */

static void test_dag_random_nets_match_simple_executor(void **state)
{
    static const int threads[] = {1, 2, 8};
    size_t t;
    uint64_t seed;

    (void)state;
    for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        ct_engine_t *eng = engine_with(threads[t], NULL);
        for (seed = 1; seed <= 50; seed++) {
            struct run_result a, b;
            int n_ops = 5 + (int)(seed * 37 % 200);
            run_random(eng, "simple", n_ops, seed, 1, &a);
            run_random(eng, "dag", n_ops, seed, 3, &b);
            assert_int_equal(a.n, b.n);
            if (memcmp(a.vals, b.vals, (size_t)a.n * 4 * sizeof(float)))
                fail_msg("seed %llu, %d threads: dag differs from simple",
                         (unsigned long long)seed, threads[t]);
            free(a.vals);
            free(b.vals);
        }
        ct_engine_free(eng);
    }
}

/* Fan-out then fan-in: 32 independent chains of 3 Scale ops each, summed
 * by one op. Many runs reuse the re-armed join counters. */
static void test_dag_wide_net_reruns_with_rearmed_counters(void **state)
{
    static const float x[4] = {1, 2, 3, 4};
    const int64_t dims[1] = {4};
    ct_engine_t *eng = engine_with(2, NULL);
    Caffe2__NetDef *def = tu_net("wide", "x", "y");
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    char ins[32 * 8], a[16], b[16];
    size_t off = 0;
    int c, k, it;
    const float *y;

    (void)state;
    def->type = strdup("async_scheduling");
    for (c = 0; c < 32; c++) {
        snprintf(a, sizeof(a), "x");
        for (k = 0; k < 3; k++) {
            Caffe2__OperatorDef *op;
            snprintf(b, sizeof(b), "c%d_%d", c, k);
            op = tu_op("Scale", a, b);
            tu_arg_f(op, "scale", 2.0f);
            tu_net_add_op(def, op);
            snprintf(a, sizeof(a), "%s", b);
        }
        off += (size_t)snprintf(ins + off, sizeof(ins) - off, "%s%s",
                                c ? "," : "", a);
    }
    tu_net_add_op(def, tu_op("Sum", ins, "y"));
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed_f32(ws, "x", 1, dims, x);
    assert_int_equal(ct_net_new(ws, def, NULL, &net, &st), CT_OK);
    assert_true(ct_net_n_chains(net) >= 33);
    for (it = 0; it < 200; it++)
        if (ct_net_run(net, &st) != CT_OK)
            fail_msg("run %d: %s", it, st.msg);
    y = ct_tensor_cdata(tu_fetch(ws, "y"));
    for (k = 0; k < 4; k++)
        assert_true(y[k] == x[k] * 8.0f * 32.0f);
    ct_net_free(net);
    ct_workspace_free(ws);
    tu_net_free(def);
    ct_engine_free(eng);
}

/* Integer Div by zero fails at run time; the error names that op, later
 * runs (with a fixed divisor) succeed on the same engine. */
static void test_dag_failure_names_node_and_engine_stays_usable(void **state)
{
    const int64_t dims[1] = {2};
    const int32_t one[2] = {1, 1}, zero[2] = {1, 0}, num[2] = {6, 8};
    ct_engine_t *eng = engine_with(2, NULL);
    Caffe2__NetDef *def = tu_net("fails", "n,d", "");
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    int c, rc, round;
    char out[16];

    (void)state;
    def->type = strdup("dag");
    for (c = 0; c < 8; c++) {
        Caffe2__OperatorDef *op;
        snprintf(out, sizeof(out), "q%d", c);
        op = tu_op("Div", c == 5 ? "n,d" : "n,n", out);
        tu_op_set_name(op, c == 5 ? "divide" : "ok");
        tu_net_add_op(def, op);
    }
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed(ws, "n", CT_DTYPE_I32, 1, dims, num);
    tu_feed(ws, "d", CT_DTYPE_I32, 1, dims, zero);
    assert_int_equal(ct_net_new(ws, def, NULL, &net, &st), CT_OK);
    for (round = 0; round < 20; round++) {
        rc = ct_net_run(net, &st);
        tu_assert_status(&st, rc, CT_EINVAL,
                         "node 5 \"divide\" (Div): integer division by zero");
        assert_int_equal(st.node, 5);
    }
    tu_feed(ws, "d", CT_DTYPE_I32, 1, dims, one);
    assert_int_equal(ct_net_run(net, &st), CT_OK);
    ct_net_free(net);
    ct_workspace_free(ws);
    tu_net_free(def);
    ct_engine_free(eng);
}

struct concurrent_arg {
    ct_engine_t *eng;
    uint64_t seed;
    int ok;
};

static void *concurrent_main(void *p)
{
    struct concurrent_arg *a = p;
    struct run_result r1, r2;

    run_random(a->eng, "simple", 120, a->seed, 1, &r1);
    run_random(a->eng, "dag", 120, a->seed, 20, &r2);
    a->ok = memcmp(r1.vals, r2.vals, (size_t)r1.n * 4 * sizeof(float)) == 0;
    free(r1.vals);
    free(r2.vals);
    return NULL;
}

static void test_dag_several_nets_run_at_once_on_one_engine(void **state)
{
    ct_engine_t *eng = engine_with(2, NULL);
    struct concurrent_arg args[4];
    pthread_t th[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        args[i].eng = eng;
        args[i].seed = 100 + (uint64_t)i;
        args[i].ok = 0;
        assert_int_equal(
            pthread_create(&th[i], NULL, concurrent_main, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(args[i].ok);
    }
    ct_engine_free(eng);
}

/* Two synthetic NUMA nodes; ops placed on node 1 by numa_node_id run and
 * the results are right (placement is honoured or safely ignored). */
static void test_dag_numa_placement_on_synthetic_topology(void **state)
{
    static const float x[4] = {1, 2, 3, 4};
    const int64_t dims[1] = {4};
    ct_engine_t *eng = engine_with(4, "pack:2 numa:1 core:2 pu:1");
    Caffe2__NetDef *def = tu_net("placed", "x", "");
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    char out[16];
    int c, it;

    (void)state;
    def->type = strdup("dag");
    for (c = 0; c < 16; c++) {
        Caffe2__OperatorDef *op;
        snprintf(out, sizeof(out), "y%d", c);
        op = tu_op("Scale", "x", out);
        tu_arg_f(op, "scale", (float)c);
        op->device_option = calloc(1, sizeof(*op->device_option));
        caffe2__device_option__init(op->device_option);
        op->device_option->has_numa_node_id = 1;
        op->device_option->numa_node_id = c % 2;
        tu_net_add_op(def, op);
    }
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed_f32(ws, "x", 1, dims, x);
    if (ct_net_new(ws, def, NULL, &net, &st) != CT_OK)
        fail_msg("compile: %s", st.msg);
    for (it = 0; it < 50; it++)
        assert_int_equal(ct_net_run(net, &st), CT_OK);
    for (c = 0; c < 16; c++) {
        const float *y;
        snprintf(out, sizeof(out), "y%d", c);
        y = ct_tensor_cdata(tu_fetch(ws, out));
        assert_true(y[3] == 4.0f * (float)c);
    }
    ct_net_free(net);
    ct_workspace_free(ws);
    for (c = 0; c < 16; c++) {
        free(def->op[c]->device_option);
        def->op[c]->device_option = NULL;
    }
    tu_net_free(def);
    ct_engine_free(eng);
}

/* Profiling: counters accumulate over runs, critical path and
 * efficiency are consistent, both executors fill them, and asking while
 * profiling is off is CT_ESTATE. */
static void test_dag_profile_counts_tasks_and_critical_path(void **state)
{
    static const char *const types[] = {"dag", "simple"};
    size_t t;

    (void)state;
    for (t = 0; t < 2; t++) {
        ct_engine_t *eng = engine_with(2, NULL);
        Caffe2__NetDef *def = random_net(types[t], 60, 7);
        static const float x[4] = {1, 2, 3, 4};
        const int64_t dims[1] = {4};
        struct ct_net_profile prof;
        ct_workspace_t *ws;
        ct_net_t *net;
        ct_status_t st;
        uint64_t op_ns, sum = 0;
        int i, rc, expect_tasks;

        assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
        tu_feed_f32(ws, "x", 1, dims, x);
        assert_int_equal(ct_net_new(ws, def, NULL, &net, &st), CT_OK);
        rc = ct_net_get_profile(net, &prof, &st);
        tu_assert_status(&st, rc, CT_ESTATE, "profiling is off");
        assert_int_equal(ct_net_set_profiling(net, true, &st), CT_OK);
        for (i = 0; i < 10; i++)
            assert_int_equal(ct_net_run(net, &st), CT_OK);
        assert_int_equal(ct_net_get_profile(net, &prof, &st), CT_OK);
        assert_int_equal(prof.runs, 10);
        expect_tasks = t == 0 ? ct_net_n_chains(net) : ct_net_n_ops(net);
        assert_int_equal(prof.n_tasks, 10 * (uint64_t)expect_tasks);
        assert_true(prof.wall_ns > 0 && prof.kernel_ns > 0);
        for (i = 0; i < ct_net_n_ops(net); i++) {
            assert_int_equal(ct_net_op_time_ns(net, i, &op_ns), CT_OK);
            sum += op_ns;
        }
        assert_true(sum == prof.kernel_ns);
        assert_true(prof.critical_path_ns > 0 &&
                    prof.critical_path_ns <= prof.kernel_ns);
        assert_true(prof.parallel_efficiency > 0.0 &&
                    prof.parallel_efficiency <= 1.0);
        assert_int_equal(ct_net_set_profiling(net, false, &st), CT_OK);
        assert_int_equal(ct_net_op_time_ns(net, 0, &op_ns), CT_EINVAL);
        ct_net_free(net);
        ct_workspace_free(ws);
        tu_net_free(def);
        ct_engine_free(eng);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dag_random_nets_match_simple_executor),
        cmocka_unit_test(test_dag_wide_net_reruns_with_rearmed_counters),
        cmocka_unit_test(test_dag_failure_names_node_and_engine_stays_usable),
        cmocka_unit_test(test_dag_several_nets_run_at_once_on_one_engine),
        cmocka_unit_test(test_dag_numa_placement_on_synthetic_topology),
        cmocka_unit_test(test_dag_profile_counts_tasks_and_critical_path),
    };
    return cmocka_run_group_tests_name("scheduler.exec_dag", tests, NULL, NULL);
}
