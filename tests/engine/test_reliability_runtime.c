/* Reliability checklist gaps of the run time (docs/reliability.md): E2
 * several ops failing at once in a dag net (one error, reported once, the
 * net reusable), E4 dag nets running while async checkpoints are written,
 * F4 an average stat read while written (count and sum agree in every
 * snapshot), F5 negative deltas, G3 an address-space limit (ulimit -v)
 * gives CT_ENOMEM, C8 a net of 10^5 ops, G4 1000 runs / 100 compiles back at
 * the memory and allocation baseline, G5 no file descriptor lost over save/load
 * cycles, G6 no thread left after an engine is freed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cortado/net.h"
#include "cortado/stats.h"
#include "cortado/storage.h"
#include "fs_util.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CT_SANITIZED 1
#endif
#endif
#ifndef CT_SANITIZED
#define CT_SANITIZED 0
#endif

/* ---- helpers ---- */

static ct_engine_t *engine_with(int n_threads, uint64_t budget)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;

    ct_engine_config_init(&cfg);
    cfg.n_threads = n_threads;
    cfg.mem_budget_bytes = budget;
    if (ct_engine_new(&cfg, &eng, &st) != CT_OK)
        fail_msg("engine: %s", st.msg);
    return eng;
}

static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* A dag net of n independent integer Divs q_i = n / d_i; d holds zeros,
 * so every one of them fails when run. */
static Caffe2__NetDef *all_divs(int n)
{
    Caffe2__NetDef *def = tu_net("divs", "n,d", "");
    char out[16];
    int c;

    def->type = strdup("dag");
    for (c = 0; c < n; c++) {
        Caffe2__OperatorDef *op;
        snprintf(out, sizeof(out), "q%d", c);
        op = tu_op("Div", "n,d", out);
        tu_op_set_name(op, "divide");
        tu_net_add_op(def, op);
    }
    return def;
}

/* ---- E2 ---- */

static void test_dag_many_concurrent_failures_report_one_error(void **state)
{
    const int64_t dims[1] = {1024};
    int32_t *num = malloc(1024 * sizeof(int32_t)), *den = calloc(1024, 4);
    ct_engine_t *eng = engine_with(4, 0);
    Caffe2__NetDef *def = all_divs(16);
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    long live;
    int i, round;

    (void)state;
    for (i = 0; i < 1024; i++)
        num[i] = i + 1;
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed(ws, "n", CT_DTYPE_I32, 1, dims, num);
    tu_feed(ws, "d", CT_DTYPE_I32, 1, dims, den);
    assert_int_equal(ct_net_new(ws, def, NULL, &net, &st), CT_OK);
    /* The first run makes the per-run state (kept for reuse). */
    assert_int_equal(ct_net_run(net, &st), CT_EINVAL);
    live = tu_alloc_live();
    for (round = 0; round < 100; round++) {
        int rc;
        memset(&st, 0, sizeof(st));
        rc = ct_net_run(net, &st);
        tu_assert_status(&st, rc, CT_EINVAL,
                         "\"divide\" (Div): integer division by zero");
        /* Exactly one message, from one of the failing nodes. */
        assert_true(st.node >= 0 && st.node < 16);
        assert_string_equal(st.op, "Div");
        assert_null(strstr(strstr(st.msg, "zero") + 4, "division"));
    }
    /* Workers make their per-thread stat shards the first time they run
     * a task, so a few blocks may appear; a leak per failed run would
     * show as >= 100 (LSan checks the rest in the ASan build). */
    assert_true(tu_alloc_live() - live < 64);
    /* The engine's pool is reusable afterwards. */
    for (i = 0; i < 1024; i++)
        den[i] = 1;
    tu_feed(ws, "d", CT_DTYPE_I32, 1, dims, den);
    assert_int_equal(ct_net_run(net, &st), CT_OK);
    assert_int_equal(((const int32_t *)ct_tensor_cdata(tu_fetch(ws, "q7")))[9],
                     10);
    ct_net_free(net);
    ct_workspace_free(ws);
    tu_net_free(def);
    ct_engine_free(eng);
    free(num);
    free(den);
}

/* ---- E4 ---- */

struct runner {
    ct_engine_t *eng;
    int seed;
    int ok;
};

/* y_k = x * 2^k through a chain of Scale ops, and a parallel fan of
 * Adds, run 200 times; checks the result every time. */
static void *runner_main(void *p)
{
    struct runner *r = p;
    const int64_t dims[1] = {64};
    float x[64];
    Caffe2__NetDef *def = tu_net("chain", "x", "");
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    char in[16], out[16];
    int k, it, i;

    def->type = strdup("dag");
    for (i = 0; i < 64; i++)
        x[i] = (float)(i + r->seed);
    for (k = 1; k <= 8; k++) {
        Caffe2__OperatorDef *op;
        snprintf(in, sizeof(in), k == 1 ? "x" : "y%d", k - 1);
        snprintf(out, sizeof(out), "y%d", k);
        op = tu_op("Scale", in, out);
        tu_arg_f(op, "scale", 2.0f);
        tu_net_add_op(def, op);
        snprintf(out, sizeof(out), "z%d", k);
        tu_net_add_op(def, tu_op("Add", "x,x", out));
    }
    r->ok = 0;
    if (ct_workspace_new(r->eng, NULL, &ws, &st) != CT_OK)
        return NULL;
    tu_feed_f32(ws, "x", 1, dims, x);
    if (ct_net_new(ws, def, NULL, &net, &st) != CT_OK)
        fprintf(stderr, "runner %d: compile: %s\n", r->seed, st.msg);
    else {
        r->ok = 1;
        for (it = 0; it < 200 && r->ok; it++) {
            const float *y, *z;
            if (ct_net_run(net, &st) != CT_OK) {
                fprintf(stderr, "runner %d: run %d: %s\n", r->seed, it, st.msg);
                r->ok = 0;
                break;
            }
            y = ct_tensor_cdata(tu_fetch(ws, "y8"));
            z = ct_tensor_cdata(tu_fetch(ws, "z8"));
            for (i = 0; i < 64; i++)
                if (y[i] != x[i] * 256.0f || z[i] != 2 * x[i])
                    r->ok = 0;
        }
        ct_net_free(net);
    }
    ct_workspace_free(ws);
    tu_net_free(def);
    return NULL;
}

static void test_dag_nets_run_while_async_checkpoints_write(void **state)
{
    ct_engine_t *eng = engine_with(2, 0);
    struct ct_workspace_config wcfg = {NULL, NULL};
    struct ct_checkpoint_options o;
    char dir[64], pattern[96];
    const int64_t dims[1] = {4096};
    const char *names[1] = {"w"};
    struct runner r[3];
    pthread_t th[3];
    ct_workspace_t *ws;
    ct_status_t st;
    int i;
    int64_t it;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/ct_rel_rt_XXXXXX");
    assert_non_null(mkdtemp(dir));
    wcfg.root_folder = dir;
    assert_int_equal(ct_workspace_new(eng, &wcfg, &ws, &st), CT_OK);
    tu_feed_f32(ws, "w", 1, dims, NULL);
    for (i = 0; i < 3; i++) {
        r[i].eng = eng;
        r[i].seed = i;
        assert_int_equal(pthread_create(&th[i], NULL, runner_main, &r[i]), 0);
    }
    ct_checkpoint_options_init(&o);
    o.keep_last = 2;
    /* The pattern is relative to the working directory: make it absolute. */
    snprintf(pattern, sizeof(pattern), "%s/c_%%d.minidb", dir);
    for (it = 1; it <= 20; it++) {
        float *w = ct_tensor_data(tu_fetch(ws, "w"));
        for (i = 0; i < 4096; i++)
            w[i] = (float)it;
        if (ct_engine_checkpoint_async(eng, ws, names, 1, pattern, it, &o,
                                       &st) != CT_OK)
            fail_msg("checkpoint %lld: %s", (long long)it, st.msg);
    }
    for (i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_true(r[i].ok);
    }
    if (ct_engine_flush_checkpoints(eng, &st) != CT_OK)
        fail_msg("flush: %s", st.msg);
    assert_int_equal(count_dir(dir), 2);
    {
        char p[128];
        uint64_t n;
        snprintf(p, sizeof(p), "%s/c_20.minidb", dir);
        if (ct_db_verify("minidb", p, &n, &st) != CT_OK)
            fail_msg("%s", st.msg);
    }
    ct_workspace_free(ws);
    ct_engine_free(eng);
    tu_rm_dir(dir);
}

/* ---- F4, F5 ---- */

struct avg_writer {
    struct ct_stat_avg *avg;
    atomic_int *stop;
    long n;
};

static void *avg_writer_main(void *p)
{
    struct avg_writer *w = p;

    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        ct_stat_avg_add(w->avg, 1);
        w->n++;
    }
    return NULL;
}

/* Every sample adds 1 to sum and 1 to count, so a consistent snapshot
 * has sum == count (the Prometheus "hot/cold" property). */
static void test_stat_avg_snapshot_count_equals_sum_under_writers(void **s)
{
    ct_stat_registry_t *reg;
    struct ct_stat_avg avg;
    struct avg_writer w[2];
    pthread_t th[2];
    atomic_int stop;
    long total = 0, torn = 0, snaps;
    int64_t sum = 0, count = 0;
    ct_status_t st;
    int i;

    (void)s;
    assert_int_equal(ct_stat_registry_new(&reg, &st), CT_OK);
    assert_int_equal(ct_stat_avg_init(&avg, reg, "g", "t", &st), CT_OK);
    atomic_init(&stop, 0);
    for (i = 0; i < 2; i++) {
        w[i].avg = &avg;
        w[i].stop = &stop;
        w[i].n = 0;
        assert_int_equal(pthread_create(&th[i], NULL, avg_writer_main, &w[i]),
                         0);
    }
    for (snaps = 0; snaps < 2000; snaps++) {
        struct ct_stat_list l;
        assert_int_equal(ct_stat_registry_export(reg, false, &l, &st), CT_OK);
        assert_int_equal(ct_stat_list_get(&l, "g/t/sum", &sum), CT_OK);
        assert_int_equal(ct_stat_list_get(&l, "g/t/count", &count), CT_OK);
        if (sum != count)
            torn++;
        ct_stat_list_destroy(&l);
    }
    atomic_store(&stop, 1);
    for (i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        total += w[i].n;
    }
    {
        struct ct_stat_list l;
        assert_int_equal(ct_stat_registry_export(reg, false, &l, &st), CT_OK);
        assert_int_equal(ct_stat_list_get(&l, "g/t/sum", &sum), CT_OK);
        assert_int_equal(ct_stat_list_get(&l, "g/t/count", &count), CT_OK);
        ct_stat_list_destroy(&l);
    }
    assert_int_equal(sum, total);
    assert_int_equal(count, total);
    ct_stat_registry_free(reg);
    if (torn != 0)
        fail_msg("%ld of %ld snapshots had sum != count", torn, snaps);
}

static void test_stat_add_negative_deltas_keep_exact_sum(void **state)
{
    ct_stat_registry_t *reg;
    ct_stat_t h;
    ct_status_t st;
    int i;

    (void)state;
    assert_int_equal(ct_stat_registry_new(&reg, &st), CT_OK);
    assert_int_equal(ct_stat_registry_add(reg, "c", CT_STAT_COUNTER, &h, &st),
                     CT_OK);
    ct_stat_add(reg, h, 5);
    ct_stat_add(reg, h, -7);
    assert_int_equal(ct_stat_get(reg, h), -2);
    ct_stat_add(reg, h, INT64_MIN);
    ct_stat_add(reg, h, INT64_MIN); /* wraps modulo 2^64: back to -2 */
    assert_int_equal(ct_stat_get(reg, h), -2);
    for (i = 0; i < 1000; i++)
        ct_stat_add(reg, h, 1);
    assert_int_equal(ct_stat_get(reg, h), 998);
    ct_stat_registry_free(reg);
}

/* ---- G3 ---- */

static void test_address_space_limit_gives_enomem(void **state)
{
    pid_t pid;
    int status;

    (void)state;
    if (CT_SANITIZED)
        skip(); /* the sanitizers reserve terabytes of address space */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* ~1 GiB more than now; a 2 GiB tensor inside the budget. */
        struct rlimit rl;
        ct_engine_t *eng;
        ct_workspace_t *ws;
        Caffe2__OperatorDef *op;
        ct_status_t st;
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        int rc;
        if (f == NULL || fscanf(f, "%lu", &pages) != 1)
            _exit(2);
        fclose(f);
        if (ct_engine_new(NULL, &eng, &st) != CT_OK ||
            ct_workspace_new(eng, NULL, &ws, &st) != CT_OK)
            _exit(3);
        rl.rlim_cur = rl.rlim_max =
            (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (1ul << 30);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(4);
        op = tu_op("ConstantFill", "", "Y");
        tu_arg_ints(op, "shape", 1, (const int64_t[]){1ll << 29});
        tu_arg_f(op, "value", 1.0f);
        rc = tu_run_op(ws, op, &st);
        if (rc != CT_ENOMEM || strstr(st.msg, "ConstantFill") == NULL) {
            fprintf(stderr, "got %s \"%s\"\n", ct_err_name(rc), st.msg);
            _exit(1);
        }
        /* The engine stays usable. */
        tu_op_free(op);
        op = tu_op("ConstantFill", "", "Y");
        tu_arg_ints(op, "shape", 1, (const int64_t[]){16});
        rc = tu_run_op(ws, op, &st);
        tu_op_free(op);
        ct_workspace_free(ws);
        ct_engine_free(eng);
        _exit(rc == CT_OK ? 0 : 5);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- G4 ---- */

static void test_net_1000_runs_and_100_compiles_stay_at_baseline(void **state)
{
    const int64_t dx[2] = {8, 16}, dw[2] = {32, 16}, db[1] = {32};
    ct_engine_t *eng = engine_with(2, 0);
    Caffe2__NetDef *def = tu_net("mlp", "X,W,b", "P");
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    uint64_t mem;
    long live;
    int i;

    (void)state;
    def->type = strdup("dag");
    tu_net_add_op(def, tu_op("FC", "X,W,b", "H"));
    tu_net_add_op(def, tu_op("Relu", "H", "R"));
    tu_net_add_op(def, tu_op("Softmax", "R", "P"));
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed_f32(ws, "X", 2, dx, NULL);
    tu_feed_f32(ws, "W", 2, dw, NULL);
    tu_feed_f32(ws, "b", 1, db, NULL);
    assert_int_equal(ct_net_new(ws, def, NULL, &net, &st), CT_OK);
    assert_int_equal(ct_net_run(net, &st), CT_OK); /* outputs sized */
    mem = ct_engine_mem_in_use(eng);
    live = tu_alloc_live();
    for (i = 0; i < 1000; i++)
        if (ct_net_run(net, &st) != CT_OK)
            fail_msg("run %d: %s", i, st.msg);
    assert_int_equal(ct_engine_mem_in_use(eng), mem);
    assert_int_equal(tu_alloc_live(), live);
    ct_net_free(net);
    live = tu_alloc_live();
    for (i = 0; i < 100; i++) {
        assert_int_equal(ct_net_new(ws, def, NULL, &net, &st), CT_OK);
        assert_int_equal(ct_net_run(net, &st), CT_OK);
        ct_net_free(net);
    }
    assert_int_equal(tu_alloc_live(), live);
    assert_int_equal(ct_engine_mem_in_use(eng), mem);
    ct_workspace_free(ws);
    tu_net_free(def);
    ct_engine_free(eng);
}

/* ---- C8: a very large net ---- */

static void test_net_of_100k_ops_compiles_and_runs(void **s)
{
    const int n_ops = 100000;
    ct_engine_t *eng = engine_with(2, 0);
    Caffe2__NetDef *def = tu_net("big", "b0", "");
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    char in[16], out[16];
    int i;

    (void)s;
    /* One array for every op (tu_net_add_op grows it one by one, which is
     * quadratic under ASan); tu_net_free frees it with free(). */
    def->op = malloc((size_t)n_ops * sizeof(*def->op));
    assert_non_null(def->op);
    for (i = 1; i <= n_ops; i++) {
        snprintf(in, sizeof(in), "b%d", (i - 1) % 64);
        snprintf(out, sizeof(out), "b%d", i % 64);
        def->op[def->n_op++] = tu_op("Relu", in, out);
    }
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed_f32(ws, "b0", 1, (const int64_t[]){2}, (const float[]){1, -1});
    if (ct_net_new(ws, def, NULL, &net, &st) != CT_OK)
        fail_msg("compile: %s", st.msg);
    assert_int_equal(ct_net_n_ops(net), n_ops);
    if (ct_net_run(net, &st) != CT_OK)
        fail_msg("run: %s", st.msg);
    assert_true(((const float *)ct_tensor_cdata(tu_fetch(ws, "b32")))[0] ==
                1.0f);
    ct_net_free(net);
    ct_workspace_free(ws);
    /* No time bound here (no timed assertions): a quadratic compile would
     * show as a ctest timeout; perf/bench_net measures the cost per op. */
    tu_net_free(def);
    ct_engine_free(eng);
}

/* ---- G5, G6 ---- */

static void test_save_load_cycles_keep_fd_count(void **state)
{
    ct_engine_t *eng = engine_with(1, 0);
    struct ct_workspace_config wcfg = {NULL, NULL};
    Caffe2__OperatorDef *save, *load;
    ct_workspace_t *ws;
    ct_status_t st;
    char dir[64];
    int fds, i;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/ct_rel_fd_XXXXXX");
    assert_non_null(mkdtemp(dir));
    wcfg.root_folder = dir;
    assert_int_equal(ct_workspace_new(eng, &wcfg, &ws, &st), CT_OK);
    tu_feed_f32(ws, "a", 1, (const int64_t[]){3}, (const float[]){1, 2, 3});
    save = tu_op("Save", "a", "");
    tu_arg_s(save, "db", "x.minidb");
    tu_arg_s(save, "db_type", "minidb");
    load = tu_op("Load", "", "a");
    tu_arg_s(load, "db", "x.minidb");
    tu_arg_s(load, "db_type", "minidb");
    assert_int_equal(tu_run_op(ws, save, &st), CT_OK);
    assert_int_equal(tu_run_op(ws, load, &st), CT_OK);
    fds = count_dir("/proc/self/fd");
    for (i = 0; i < 300; i++) {
        if (tu_run_op(ws, save, &st) != CT_OK ||
            tu_run_op(ws, load, &st) != CT_OK)
            fail_msg("cycle %d: %s", i, st.msg);
        /* a failing load, too */
        if (i % 10 == 0) {
            Caffe2__OperatorDef *bad = tu_op("Load", "", "a");
            tu_arg_s(bad, "db", "missing.minidb");
            tu_arg_s(bad, "db_type", "minidb");
            assert_int_equal(tu_run_op(ws, bad, &st), CT_ENOTFOUND);
            tu_op_free(bad);
        }
    }
    assert_int_equal(count_dir("/proc/self/fd"), fds);
    tu_op_free(save);
    tu_op_free(load);
    ct_workspace_free(ws);
    ct_engine_free(eng);
    tu_rm_dir(dir);
}

static void test_engine_free_leaves_no_thread(void **state)
{
    int before, i;

    (void)state;
    /* Lazily started helpers (OpenMP, OpenBLAS) exist after the first
     * engine; count from there. */
    {
        ct_engine_t *eng = engine_with(4, 0);
        ct_engine_free(eng);
    }
    before = count_dir("/proc/self/task");
    for (i = 0; i < 5; i++) {
        ct_engine_t *eng = engine_with(4, 0);
        ct_workspace_t *ws;
        ct_net_t *net;
        ct_status_t st;
        Caffe2__NetDef *def = tu_net("n", "x", "");
        struct ct_checkpoint_options o;
        char dir[64], path[96];
        struct ct_workspace_config wcfg = {NULL, NULL};
        const char *names[1] = {"x"};

        snprintf(dir, sizeof(dir), "/tmp/ct_rel_th_XXXXXX");
        assert_non_null(mkdtemp(dir));
        wcfg.root_folder = dir;
        def->type = strdup("dag");
        tu_net_add_op(def, tu_op("Relu", "x", "y"));
        tu_net_add_op(def, tu_op("Relu", "x", "z"));
        assert_int_equal(ct_workspace_new(eng, &wcfg, &ws, &st), CT_OK);
        tu_feed_f32(ws, "x", 1, (const int64_t[]){2}, (const float[]){1, -1});
        assert_int_equal(ct_net_new(ws, def, NULL, &net, &st), CT_OK);
        assert_int_equal(ct_net_run(net, &st), CT_OK);
        /* the async writer thread too */
        ct_checkpoint_options_init(&o);
        snprintf(path, sizeof(path), "%s/t.minidb", dir);
        assert_int_equal(
            ct_engine_checkpoint_async(eng, ws, names, 1, path, 1, &o, &st),
            CT_OK);
        assert_int_equal(ct_engine_flush_checkpoints(eng, &st), CT_OK);
        ct_net_free(net);
        ct_workspace_free(ws);
        tu_net_free(def);
        ct_engine_free(eng);
        tu_rm_dir(dir);
    }
    assert_int_equal(count_dir("/proc/self/task"), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dag_many_concurrent_failures_report_one_error),
        cmocka_unit_test(test_dag_nets_run_while_async_checkpoints_write),
        cmocka_unit_test(test_stat_avg_snapshot_count_equals_sum_under_writers),
        cmocka_unit_test(test_stat_add_negative_deltas_keep_exact_sum),
        cmocka_unit_test(test_address_space_limit_gives_enomem),
        cmocka_unit_test(test_net_1000_runs_and_100_compiles_stay_at_baseline),
        cmocka_unit_test(test_net_of_100k_ops_compiles_and_runs),
        cmocka_unit_test(test_save_load_cycles_keep_fd_count),
        cmocka_unit_test(test_engine_free_leaves_no_thread),
    };

    tu_fail_alloc_off(); /* installs the counting hooks before any call */
    return cmocka_run_group_tests_name("engine.reliability_runtime", tests,
                                       NULL, NULL);
}
