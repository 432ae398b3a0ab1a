/* Reliability checklist gaps of size and scheduling (docs/reliability.md):
 * C8 a NetDef with 10^6 arguments on one op and one with a 10 MB blob
 * name, through the binary unpack, the text parser and ct_net_new (a
 * clear error or success, nothing crashes, no leak: the allocation hooks
 * count live blocks, ASan checks the rest), and E1 a dag net of 10^4
 * NoOps with random edges and random busy_ns latency on a 2-thread
 * engine, run several times, where an observer hands out sequence tickets
 * at op start and end and every RAW edge must see end(producer) <
 * start(consumer). No timed assertions: a hang shows as a ctest timeout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/net.h"
#include "cortado/observer.h"
#include "cortado/proto.h"
#include "proto/caffe2.pb-c.h"
#include "test_util.h"

#define NETDEF (&caffe2__net_def__descriptor)

static int compile_and_run(ct_engine_t *eng, const Caffe2__NetDef *def,
                           ct_status_t *st);

/* An engine that has already compiled and run one small net, so the
 * blocks it makes once (lazily, on first use) are not counted as leaks
 * by the tu_alloc_live() comparisons. */
static ct_engine_t *engine_with(int n_threads)
{
    Caffe2__NetDef *warm;
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;

    ct_engine_config_init(&cfg);
    cfg.n_threads = n_threads;
    if (ct_engine_new(&cfg, &eng, &st) != CT_OK)
        fail_msg("engine: %s", st.msg);
    warm = tu_net("warm", "x", "y");
    tu_net_add_op(warm, tu_op("NoOp", "x", "y"));
    warm->type = strdup("dag");
    if (compile_and_run(eng, warm, &st) != CT_OK)
        fail_msg("warm-up: %s", st.msg);
    tu_net_free(warm);
    return eng;
}

/* ---- C8: 10^6 arguments, 10 MB names ---- */

/* One NoOp "x>y" carrying n arguments. distinct: names a0..a(n-1), else
 * n copies of busy_ns = 0 (identical duplicates are legal Caffe2). The
 * argument array is built in one go (tu_op's helpers grow it one by
 * one). */
static Caffe2__NetDef *noop_with_args(size_t n, bool distinct)
{
    Caffe2__NetDef *def = tu_net("args", "x", "y");
    Caffe2__OperatorDef *op = tu_op("NoOp", "x", "y");
    char name[32];
    size_t i;

    op->arg = malloc(n * sizeof(*op->arg));
    assert_non_null(op->arg);
    for (i = 0; i < n; i++) {
        Caffe2__Argument *a = malloc(sizeof(*a));
        assert_non_null(a);
        caffe2__argument__init(a);
        if (distinct)
            snprintf(name, sizeof(name), "a%zu", i);
        else
            snprintf(name, sizeof(name), "busy_ns");
        a->name = strdup(name);
        assert_non_null(a->name);
        a->has_i = true;
        a->i = 0;
        op->arg[op->n_arg++] = a;
    }
    tu_net_add_op(def, op);
    return def;
}

/* def -> binary -> ct_proto_unpack, and def -> text -> ct_pbtxt_parse;
 * both must give back a NetDef equal in size to def (same binary
 * length). Returns the unpacked copy (ct_proto_free). */
static Caffe2__NetDef *round_trip(const Caffe2__NetDef *def)
{
    ProtobufCMessage *bin = NULL, *txt = NULL;
    void *buf, *buf2;
    char *text;
    size_t len, len2, tlen;
    ct_status_t st;

    assert_int_equal(ct_proto_pack(&def->base, &buf, &len, &st), CT_OK);
    if (ct_proto_unpack(NETDEF, buf, len, &bin, &st) != CT_OK)
        fail_msg("unpack: %s", st.msg);
    assert_int_equal(ct_pbtxt_format(&def->base, &text, &tlen, &st), CT_OK);
    if (ct_pbtxt_parse(NETDEF, text, tlen, &txt, &st) != CT_OK)
        fail_msg("pbtxt: %s", st.msg);
    assert_int_equal(ct_proto_pack(txt, &buf2, &len2, &st), CT_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(buf2, buf, len);
    ct_free(buf2);
    ct_free(text);
    ct_free(buf);
    ct_proto_free(txt);
    return (Caffe2__NetDef *)bin;
}

/* Compiles and runs def on a fresh workspace with x fed; returns the
 * compile status code (st filled). Leaves nothing allocated. */
static int compile_and_run(ct_engine_t *eng, const Caffe2__NetDef *def,
                           ct_status_t *st)
{
    ct_workspace_t *ws;
    ct_net_t *net;
    int rc;

    assert_int_equal(ct_workspace_new(eng, NULL, &ws, st), CT_OK);
    tu_feed_f32(ws, def->external_input[0], 1, (const int64_t[]){1},
                (const float[]){1});
    rc = ct_net_new(ws, def, NULL, &net, st);
    if (rc == CT_OK) {
        if (ct_net_run(net, st) != CT_OK)
            fail_msg("run: %s", st->msg);
        ct_net_free(net);
    }
    ct_workspace_free(ws);
    return rc;
}

static void test_net_op_with_1e6_identical_args_compiles_and_runs(void **s)
{
    ct_engine_t *eng = engine_with(2);
    long live = tu_alloc_live();
    Caffe2__NetDef *def = noop_with_args(1000000, false), *bin;
    ct_status_t st;

    (void)s;
    bin = round_trip(def);
    assert_int_equal(bin->op[0]->n_arg, 1000000);
    if (compile_and_run(eng, bin, &st) != CT_OK)
        fail_msg("compile: %s", st.msg);
    ct_proto_free(&bin->base);
    tu_net_free(def);
    assert_int_equal(tu_alloc_live(), live);
    ct_engine_free(eng);
}

static void test_net_op_with_1e6_distinct_args_compiles_and_runs(void **s)
{
    ct_engine_t *eng;
    Caffe2__NetDef *def, *bin;
    ct_status_t st;
    long live;

    (void)s;
    /* Duplicate names are found through a hash map beyond 16 arguments
     * (engine/args.c); the pairwise check was quadratic here. */
    eng = engine_with(2);
    live = tu_alloc_live();
    def = noop_with_args(1000000, true);
    bin = round_trip(def);
    if (compile_and_run(eng, bin, &st) != CT_OK)
        fail_msg("compile: %s", st.msg);
    ct_proto_free(&bin->base);
    tu_net_free(def);
    assert_int_equal(tu_alloc_live(), live);
    ct_engine_free(eng);
}

static char *long_name(size_t n, char c)
{
    char *p = malloc(n + 1);

    assert_non_null(p);
    memset(p, c, n);
    p[n] = '\0';
    return p;
}

#define TEN_MB ((size_t)10 << 20)

static void test_net_with_10mb_blob_name_compiles_and_runs(void **s)
{
    ct_engine_t *eng = engine_with(2);
    long live = tu_alloc_live();
    char *big = long_name(TEN_MB, 'b');
    Caffe2__NetDef *def = tu_net("bigname", "x", ""), *bin;
    Caffe2__OperatorDef *op;
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;

    (void)s;
    /* x -> NoOp -> <10 MB name> -> NoOp -> y */
    op = tu_op("NoOp", "x", "y");
    free(op->output[0]);
    op->output[0] = strdup(big);
    tu_net_add_op(def, op);
    op = tu_op("NoOp", "x", "y");
    free(op->input[0]);
    op->input[0] = strdup(big);
    tu_net_add_op(def, op);
    bin = round_trip(def);
    assert_int_equal(strlen(bin->op[0]->output[0]), TEN_MB);
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed_f32(ws, "x", 1, (const int64_t[]){1}, (const float[]){1});
    if (ct_net_new(ws, bin, NULL, &net, &st) != CT_OK)
        fail_msg("compile: %s", st.msg);
    assert_int_equal(ct_net_run(net, &st), CT_OK);
    assert_true(ct_workspace_has_blob(ws, big));
    ct_net_free(net);
    ct_workspace_free(ws);
    ct_proto_free(&bin->base);
    tu_net_free(def);
    free(big);
    assert_int_equal(tu_alloc_live(), live);
    ct_engine_free(eng);
}

static void test_net_with_10mb_names_in_errors_fails_cleanly(void **s)
{
    ct_engine_t *eng = engine_with(2);
    long live = tu_alloc_live();
    char *big = long_name(TEN_MB, 'q');
    Caffe2__NetDef *def, *bin;
    Caffe2__OperatorDef *op;
    ct_status_t st;

    (void)s;
    /* A 10 MB op type: not registered. */
    def = tu_net("badtype", "x", "");
    op = tu_op("NoOp", "x", "y");
    free(op->type);
    op->type = strdup(big);
    tu_net_add_op(def, op);
    bin = round_trip(def);
    assert_int_equal(compile_and_run(eng, bin, &st), CT_ENOTFOUND);
    assert_non_null(strstr(st.msg, "qqqq"));
    assert_true(strlen(st.msg) < sizeof(st.msg));
    ct_proto_free(&bin->base);
    tu_net_free(def);

    /* A 10 MB input name that nothing produces. */
    def = tu_net("badinput", "x", "");
    op = tu_op("NoOp", "x", "y");
    free(op->input[0]);
    op->input[0] = strdup(big);
    tu_net_add_op(def, op);
    bin = round_trip(def);
    assert_int_not_equal(compile_and_run(eng, bin, &st), CT_OK);
    assert_non_null(strstr(st.msg, "qqqq"));
    ct_proto_free(&bin->base);
    tu_net_free(def);

    /* A 10 MB argument name: unknown arguments are ignored (Caffe2). */
    def = tu_net("bigarg", "x", "");
    op = tu_op("NoOp", "x", "y");
    tu_arg_i(op, big, 1);
    tu_net_add_op(def, op);
    bin = round_trip(def);
    assert_int_equal(compile_and_run(eng, bin, &st), CT_OK);
    ct_proto_free(&bin->base);
    tu_net_free(def);

    free(big);
    assert_int_equal(tu_alloc_live(), live);
    ct_engine_free(eng);
}

/* ---- E1: a 10^4-op random dag, every edge respected ---- */

#define DAG_OPS 10000
#define DAG_MAX_FANIN 4

struct tickets {
    atomic_uint_fast64_t next;
    atomic_uint_fast64_t start[DAG_OPS];
    atomic_uint_fast64_t end[DAG_OPS];
    atomic_int runs[DAG_OPS];
};

static int ticket_start(void *ctx, const struct ct_observer_event *ev,
                        ct_status_t *st)
{
    struct tickets *t = ctx;
    (void)st;
    atomic_store(&t->start[ev->op->idx], atomic_fetch_add(&t->next, 1));
    atomic_fetch_add(&t->runs[ev->op->idx], 1);
    return CT_OK;
}

static int ticket_end(void *ctx, const struct ct_observer_event *ev,
                      ct_status_t *st)
{
    struct tickets *t = ctx;
    (void)st;
    atomic_store(&t->end[ev->op->idx], atomic_fetch_add(&t->next, 1));
    return CT_OK;
}

static void ticket_free(void *ctx)
{
    (void)ctx; /* owned by the test */
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Op i writes b<i> and reads up to DAG_MAX_FANIN random earlier b<j>
 * (j drawn near i half of the time, anywhere before it otherwise, so
 * there are long chains and wide fans); busy_ns in [0, 100 us]. in[i][k]
 * holds the producers, -1 for none. */
static Caffe2__NetDef *random_dag(uint64_t seed, int in[][DAG_MAX_FANIN])
{
    Caffe2__NetDef *def = tu_net("rdag", "", "");
    char ins[DAG_MAX_FANIN * 16], out[24];
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    int i, k;

    def->type = strdup("dag");
    def->op = malloc((size_t)DAG_OPS * sizeof(*def->op));
    assert_non_null(def->op);
    for (i = 0; i < DAG_OPS; i++) {
        Caffe2__OperatorDef *op;
        int fanin = i == 0 ? 0 : (int)(rng_next(&x) % (DAG_MAX_FANIN + 1));
        size_t off = 0;

        ins[0] = '\0';
        for (k = 0; k < DAG_MAX_FANIN; k++) {
            int p = -1;
            if (k < fanin) {
                uint64_t r = rng_next(&x);
                int span = (r & 1) && i > 8 ? 8 : i;
                p = i - 1 - (int)((r >> 1) % (uint64_t)span);
                off += (size_t)snprintf(ins + off, sizeof(ins) - off, "%sb%d",
                                        off ? "," : "", p);
            }
            in[i][k] = p;
        }
        snprintf(out, sizeof(out), "b%d", i);
        op = tu_op("NoOp", ins, out);
        tu_arg_i(op, "busy_ns", (int64_t)(rng_next(&x) % 100001));
        def->op[def->n_op++] = op;
    }
    return def;
}

static void test_dag_random_1e4_ops_respects_every_edge(void **s)
{
    static int in[DAG_OPS][DAG_MAX_FANIN];
    static struct tickets t;
    const uint64_t seeds[] = {1, 2, 3};
    ct_engine_t *eng = engine_with(2);
    size_t si;

    (void)s;
    for (si = 0; si < sizeof(seeds) / sizeof(seeds[0]); si++) {
        Caffe2__NetDef *def = random_dag(seeds[si], in);
        struct ct_observer_cbs cbs;
        ct_observer_t *obs;
        ct_workspace_t *ws;
        ct_net_t *net;
        ct_status_t st;
        int run, i, k, edges = 0;

        assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
        if (ct_net_new(ws, def, NULL, &net, &st) != CT_OK)
            fail_msg("compile: %s", st.msg);
        assert_int_equal(ct_net_n_ops(net), DAG_OPS);
        memset(&cbs, 0, sizeof(cbs));
        cbs.name = "tickets";
        cbs.op_start_cb = ticket_start;
        cbs.op_end_cb = ticket_end;
        cbs.free_cb = ticket_free;
        assert_int_equal(ct_observer_new(&cbs, &t, &obs, &st), CT_OK);
        assert_int_equal(ct_net_add_observer(net, obs, &st), CT_OK);
        for (run = 0; run < 2; run++) {
            memset(&t, 0, sizeof(t));
            if (ct_net_run(net, &st) != CT_OK)
                fail_msg("seed %d run %d: %s", (int)seeds[si], run, st.msg);
            for (i = 0; i < DAG_OPS; i++) {
                if (atomic_load(&t.runs[i]) != 1)
                    fail_msg("seed %d run %d: op %d ran %d times",
                             (int)seeds[si], run, i, atomic_load(&t.runs[i]));
                for (k = 0; k < DAG_MAX_FANIN && in[i][k] >= 0; k++) {
                    int p = in[i][k];
                    if (!(atomic_load(&t.end[p]) < atomic_load(&t.start[i])))
                        fail_msg("seed %d run %d: op %d started (ticket "
                                 "%llu) before its producer %d ended (%llu)",
                                 (int)seeds[si], run, i,
                                 (unsigned long long)atomic_load(&t.start[i]),
                                 p, (unsigned long long)atomic_load(&t.end[p]));
                    edges++;
                }
            }
            assert_true(edges > DAG_OPS); /* about 2 per op */
            assert_int_equal(atomic_load(&t.next), 2 * DAG_OPS);
        }
        ct_net_free(net); /* frees the attached observer */
        ct_workspace_free(ws);
        tu_net_free(def);
    }
    ct_engine_free(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_op_with_1e6_identical_args_compiles_and_runs),
        cmocka_unit_test(test_net_op_with_1e6_distinct_args_compiles_and_runs),
        cmocka_unit_test(test_net_with_10mb_blob_name_compiles_and_runs),
        cmocka_unit_test(test_net_with_10mb_names_in_errors_fails_cleanly),
        cmocka_unit_test(test_dag_random_1e4_ops_respects_every_edge),
    };

    tu_fail_alloc_off(); /* installs the counting hooks before any call */
    return cmocka_run_group_tests_name("engine.reliability_scale", tests, NULL,
                                       NULL);
}
