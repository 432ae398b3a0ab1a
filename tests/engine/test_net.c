/* Tests for engine/net.c (with scheduler/exec_simple.c and exec_dag.c):
 * executor mapping of every Caffe2 net type, net validation (spec §6.1),
 * op creation errors as ct_net_new reports them, worker-count sources,
 * runs under both executors, failure messages, CT_EBUSY, queries and
 * ct_net_describe. Uses real ops (ConstantFill, Relu, Add, Sum, FC). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/net.h"
#include "engine/net_impl.h"
#include "test_util.h"

/* ---- fixtures ---- */

struct fx {
    struct tu_env env;
    Caffe2__NetDef *def;
    ct_net_t *net;
    ct_status_t st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    tu_env_init(&f->env);
    ct_status_clear(&f->st);
    *state = f;
    return 0;
}

/* Frees the net before the workspace whose blobs it binds. */
static int teardown(void **state)
{
    struct fx *f = *state;
    size_t i;

    ct_net_free(f->net);
    if (f->def != NULL) {
        for (i = 0; i < f->def->n_op; i++) {
            Caffe2__OperatorDef *op = f->def->op[i];
            if (op->device_option != NULL) {
                free(op->device_option->node_name);
                free(op->device_option);
                op->device_option = NULL;
            }
            if (op->engine != NULL) {
                free(op->engine);
                op->engine = NULL;
            }
        }
        if (f->def->device_option != NULL) {
            free(f->def->device_option);
            f->def->device_option = NULL;
        }
        tu_net_free(f->def);
    }
    tu_env_destroy(&f->env);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static Caffe2__OperatorDef *add_op(Caffe2__NetDef *def, const char *type,
                                   const char *name, const char *in,
                                   const char *out)
{
    Caffe2__OperatorDef *op = tu_op(type, in, out);
    if (name != NULL)
        tu_op_set_name(op, name);
    tu_net_add_op(def, op);
    return op;
}

/* ConstantFill of a [2, 2] FLOAT tensor. */
static Caffe2__OperatorDef *add_fill(Caffe2__NetDef *def, const char *name,
                                     const char *out, float value)
{
    static const int64_t shape[] = {2, 2};
    Caffe2__OperatorDef *op = add_op(def, "ConstantFill", name, "", out);
    tu_arg_ints(op, "shape", 2, shape);
    tu_arg_f(op, "value", value);
    return op;
}

static void set_type(Caffe2__NetDef *def, const char *type)
{
    def->type = strdup(type);
    assert_non_null(def->type);
}

static Caffe2__DeviceOption *op_devopt(Caffe2__OperatorDef *op)
{
    if (op->device_option == NULL) {
        op->device_option = calloc(1, sizeof(*op->device_option));
        assert_non_null(op->device_option);
        caffe2__device_option__init(op->device_option);
    }
    return op->device_option;
}

static int compile(struct fx *f, const struct ct_net_config *cfg)
{
    ct_status_clear(&f->st);
    return ct_net_new(f->env.ws, f->def, cfg, &f->net, &f->st);
}

static void compile_ok(struct fx *f, const struct ct_net_config *cfg)
{
    if (compile(f, cfg) != CT_OK)
        fail_msg("ct_net_new: %s", f->st.msg);
}

static void run_ok(struct fx *f)
{
    ct_status_clear(&f->st);
    if (ct_net_run(f->net, &f->st) != CT_OK)
        fail_msg("ct_net_run: %s", f->st.msg);
}

static void assert_all(ct_workspace_t *ws, const char *blob, float want)
{
    ct_tensor_t *t = tu_fetch(ws, blob);
    const float *v = ct_tensor_data(t);
    int64_t i;

    assert_int_equal(ct_tensor_numel(t), 4);
    for (i = 0; i < 4; i++)
        assert_true(v[i] == want);
}

static struct ct_net_config cfg_default(void)
{
    struct ct_net_config c;
    memset(&c, 0, sizeof(c));
    c.executor = CT_NET_EXECUTOR_FROM_DEF;
    return c;
}

/* ---- tests: executor mapping ---- */

static void test_executor_from_net_type_maps_every_type(void **state)
{
    static const struct {
        const char *type;
        enum ct_executor want;
    } cases[] = {
        {"", CT_EXECUTOR_SIMPLE},
        {"simple", CT_EXECUTOR_SIMPLE},
        {"simple_refcount", CT_EXECUTOR_SIMPLE},
        {"async_simple", CT_EXECUTOR_SIMPLE},
        {"rnn", CT_EXECUTOR_SIMPLE},
        {"dag", CT_EXECUTOR_DAG},
        {"prof_dag", CT_EXECUTOR_DAG},
        {"async_dag", CT_EXECUTOR_DAG},
        {"async_polling", CT_EXECUTOR_DAG},
        {"async_scheduling", CT_EXECUTOR_DAG},
        {"parallel", CT_EXECUTOR_DAG},
    };
    enum ct_executor e;
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        e = CT_EXECUTOR_COUNT;
        assert_int_equal(ct_executor_from_net_type(cases[k].type, &e, NULL),
                         CT_OK);
        assert_int_equal(e, cases[k].want);
    }
    assert_int_equal(ct_executor_from_net_type(NULL, &e, NULL), CT_OK);
    assert_int_equal(e, CT_EXECUTOR_SIMPLE);
    assert_string_equal(ct_executor_name(CT_EXECUTOR_SIMPLE), "simple");
    assert_string_equal(ct_executor_name(CT_EXECUTOR_DAG), "dag");
    assert_string_equal(ct_executor_name(CT_EXECUTOR_COUNT), "unknown");
}

static void test_executor_from_net_type_unknown_returns_einval(void **state)
{
    ct_status_t st;
    enum ct_executor e;
    int rc;

    (void)state;
    rc = ct_executor_from_net_type("DAG", &e, &st); /* case-sensitive */
    tu_assert_status(&st, rc, CT_EINVAL, "unknown net type \"DAG\"");
}

/* ---- tests: compile-time errors ---- */

static void test_net_new_unknown_type_returns_einval(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "", "");
    set_type(f->def, "fancy_new_executor");
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "unknown net type \"fancy_new_executor\"");
    assert_null(f->net);
}

static void test_net_new_bad_config_returns_einval(void **state)
{
    struct fx *f = *state;
    struct ct_net_config c = cfg_default();
    int rc;

    f->def = tu_net("n", "", "");
    c.executor = 7;
    rc = compile(f, &c);
    tu_assert_status(&f->st, rc, CT_EINVAL, "executor override 7");
    c = cfg_default();
    c.num_workers = -2;
    rc = compile(f, &c);
    tu_assert_status(&f->st, rc, CT_EINVAL, "num_workers -2 outside [0, 4096]");
}

static void test_net_new_unknown_source_returns_egraph(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "X", "");
    tu_feed_f32(f->env.ws, "X", 0, NULL, (const float[]){1});
    add_op(f->def, "Relu", "a", "X", "Y");
    add_op(f->def, "Relu", "b", "Z", "W");
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EGRAPH,
                     "op 1 Relu: Source for input Z is unknown for net n");
    assert_int_equal(f->st.node, 1);
    /* Validation runs before any op: no output blob was created. */
    assert_false(ct_workspace_has_blob(f->env.ws, "Y"));
}

static void test_net_new_unproduced_output_returns_egraph(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "", "Y,Q");
    add_fill(f->def, "a", "Y", 1);
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EGRAPH,
                     "Some of the blobs are declared as output but never "
                     "produced by the net n, the first one is Q");
}

static void test_net_new_node_name_returns_egraph(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "", "");
    op_devopt(add_fill(f->def, "a", "Y", 1))->node_name = strdup("gpu_host");
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EGRAPH,
                     "op 0 ConstantFill: node_name must be empty for all "
                     "operators at execution time");
}

static void test_net_new_extra_inputs_count_as_declared(void **state)
{
    struct fx *f = *state;
    struct ct_net_config c = cfg_default();
    const char *extra[] = {"E"};

    f->def = tu_net("n", "X", "");
    tu_feed_f32(f->env.ws, "X", 0, NULL, (const float[]){1});
    tu_feed_f32(f->env.ws, "E", 0, NULL, (const float[]){1});
    add_op(f->def, "Add", "a", "X,E", "Y");
    c.extra_inputs = extra;
    c.n_extra_inputs = 1;
    compile_ok(f, &c);
}

static void test_net_new_unknown_op_type_returns_enotfound(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "", "");
    add_fill(f->def, "a", "X", 1);
    add_op(f->def, "NoSuchOp", "bad", "X", "Y");
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_ENOTFOUND,
                     "op 1 \"bad\" (NoSuchOp): unknown operator type "
                     "\"NoSuchOp\"");
    assert_int_equal(f->st.node, 1);
    assert_string_equal(f->st.op, "NoSuchOp");
    /* Caffe2 keeps output blobs of ops created before the failure. */
    assert_true(ct_workspace_has_blob(f->env.ws, "X"));
}

static void test_net_new_wrong_arity_returns_eschema(void **state)
{
    static const struct {
        const char *type, *in, *out, *want;
    } cases[] = {
        {"Relu", "A,B", "Y", "Relu takes 1 input, got 2"},
        {"Relu", "A", "", "Relu takes 1 output, got 0"},
        {"FC", "A,B", "Y", "FC takes 3 inputs, got 2"},
        {"Sum", "", "Y", "Sum takes at least 1 input, got 0"},
        {"ConstantFill", "A,B", "Y", "ConstantFill takes 0 to 1 inputs, got 2"},
    };
    struct fx *f = *state;
    char want[200];
    size_t k;
    int rc;

    tu_feed_f32(f->env.ws, "A", 0, NULL, (const float[]){1});
    tu_feed_f32(f->env.ws, "B", 0, NULL, (const float[]){1});
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        tu_net_free(f->def);
        f->def = tu_net("n", "", "");
        add_op(f->def, cases[k].type, "op", cases[k].in, cases[k].out);
        rc = compile(f, NULL);
        snprintf(want, sizeof(want),
                 "op 0 \"op\" (%s): Operator def did not pass schema "
                 "checking: %s",
                 cases[k].type, cases[k].want);
        tu_assert_status(&f->st, rc, CT_ESCHEMA, want);
    }
}

static void test_net_new_inplace_rejected_returns_eschema(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "", "");
    add_fill(f->def, "a", "A", 1);
    add_fill(f->def, "b", "B", 2);
    add_op(f->def, "Sum", "s", "A,B", "B");
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_ESCHEMA,
                     "op 2 \"s\" (Sum): Operator def did not pass schema "
                     "checking: Sum does not allow input 1 and output 0 to "
                     "be the same blob \"B\"");
}

static void test_net_new_inplace_allowed_runs(void **state)
{
    struct fx *f = *state;

    f->def = tu_net("n", "", "A");
    add_fill(f->def, "a", "A", -3);
    add_op(f->def, "Relu", "r", "A", "A");
    compile_ok(f, NULL);
    run_ok(f);
    assert_all(f->env.ws, "A", 0);
}

static void test_net_new_missing_input_blob_returns_enotfound(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "", "");
    add_op(f->def, "Relu", "r", "X", "Y");
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_ENOTFOUND,
                     "op 0 \"r\" (Relu): op Relu: Encountered a non-existing "
                     "input blob: X");
    assert_false(ct_workspace_has_blob(f->env.ws, "Y"));
}

static void test_net_new_bad_argument_returns_earg(void **state)
{
    struct fx *f = *state;
    Caffe2__OperatorDef *op;
    int rc;

    f->def = tu_net("n", "", "");
    op = add_op(f->def, "FC", "fc", "X,W,b", "Y");
    tu_arg_f(op, "axis", 1.0f);
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "op 0 \"fc\" (FC): Argument axis does not have the "
                     "right field: expected i, has f");
}

static void test_net_new_conflicting_duplicate_args_return_earg(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "", "");
    tu_arg_f(add_fill(f->def, "a", "X", 1), "value", 2);
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "op 0 \"a\" (ConstantFill): argument value given twice "
                     "with different values");
}

/* ---- tests: worker count ---- */

static void test_net_new_num_workers_sources(void **state)
{
    struct fx *f = *state;
    struct ct_net_config c = cfg_default();
    Caffe2__OperatorDef *holder;

    f->def = tu_net("n", "", "");
    add_fill(f->def, "a", "X", 1);
    /* Borrow an OperatorDef's argument array as the net's arguments. */
    holder = tu_op("T", "", "");
    tu_arg_i(holder, "num_workers", 7);
    f->def->arg = holder->arg;
    f->def->n_arg = holder->n_arg;

    /* The argument alone (Caffe2 would ignore it; DESIGN §4 reads it). */
    compile_ok(f, NULL);
    assert_int_equal(ct_net_num_workers(f->net), 7);
    ct_net_free(f->net);

    /* The NetDef field wins over the argument. */
    f->def->has_num_workers = 1;
    f->def->num_workers = 3;
    compile_ok(f, NULL);
    assert_int_equal(ct_net_num_workers(f->net), 3);
    ct_net_free(f->net);

    /* The config wins over both. */
    c.num_workers = 5;
    compile_ok(f, &c);
    assert_int_equal(ct_net_num_workers(f->net), 5);

    f->def->arg = NULL;
    f->def->n_arg = 0;
    tu_op_free(holder);
}

static void test_net_new_num_workers_defaults_to_engine(void **state)
{
    struct fx *f = *state;
    struct ct_engine_config ec;
    ct_engine_t *eng;
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;

    ct_engine_config_init(&ec);
    ec.n_threads = 6;
    assert_int_equal(ct_engine_new(&ec, &eng, &st), CT_OK);
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    f->def = tu_net("n", "", "");
    add_fill(f->def, "a", "X", 1);
    assert_int_equal(ct_net_new(ws, f->def, NULL, &net, &st), CT_OK);
    assert_int_equal(ct_net_num_workers(net), 6);
    ct_net_free(net);
    ct_workspace_free(ws);
    ct_engine_free(eng);
}

static void test_net_new_num_workers_out_of_range_returns_einval(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_net("n", "", "");
    f->def->has_num_workers = 1;
    f->def->num_workers = -1;
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "net n: num_workers -1 outside [0, 4096]");
    f->def->num_workers = 4097;
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "net n: num_workers 4097 outside [0, 4096]");
}

static void test_net_new_num_workers_argument_errors(void **state)
{
    struct fx *f = *state;
    Caffe2__OperatorDef *holder;
    int rc;

    /* Borrow an OperatorDef's argument array as the net's. */
    f->def = tu_net("n", "", "");
    holder = tu_op("T", "", "");
    tu_arg_f(holder, "num_workers", 2.0f);
    f->def->arg = holder->arg;
    f->def->n_arg = holder->n_arg;
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "net n: Argument num_workers does not have the right "
                     "field: expected i, has f");
    holder->arg[0]->has_f = 0;
    holder->arg[0]->has_i = 1;
    holder->arg[0]->i = 100000;
    rc = compile(f, NULL);
    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "net n: argument num_workers 100000 outside [0, 4096]");
    f->def->arg = NULL;
    f->def->n_arg = 0;
    tu_op_free(holder);
}

/* ---- tests: executor choice ---- */

static void test_net_new_type_selects_executor(void **state)
{
    struct fx *f = *state;
    struct ct_net_config c = cfg_default();

    f->def = tu_net("n", "", "");
    add_fill(f->def, "a", "X", 1);
    compile_ok(f, NULL); /* NoTypeNet: a valid simple net */
    assert_int_equal(ct_net_executor(f->net), CT_EXECUTOR_SIMPLE);
    ct_net_free(f->net);
    set_type(f->def, "async_scheduling");
    compile_ok(f, NULL);
    assert_int_equal(ct_net_executor(f->net), CT_EXECUTOR_DAG);
    ct_net_free(f->net);
    c.executor = CT_EXECUTOR_SIMPLE; /* override */
    compile_ok(f, &c);
    assert_int_equal(ct_net_executor(f->net), CT_EXECUTOR_SIMPLE);
}

/* ---- tests: running ---- */

static void build_fork_join(struct fx *f, const char *type)
{
    f->def = tu_net("fj", "", "D");
    if (type != NULL)
        set_type(f->def, type);
    add_fill(f->def, "a", "A", -1);
    add_fill(f->def, "b", "B", 3);
    add_op(f->def, "Add", "add", "A,B", "C");
    add_op(f->def, "Relu", "relu", "C", "D");
}

static void test_net_run_simple_computes(void **state)
{
    struct fx *f = *state;

    build_fork_join(f, "simple");
    compile_ok(f, NULL);
    run_ok(f);
    assert_all(f->env.ws, "D", 2);
    run_ok(f); /* re-runs reuse the outputs */
    assert_all(f->env.ws, "D", 2);
}

static void test_net_run_dag_computes(void **state)
{
    struct fx *f = *state;
    const int *ops;

    build_fork_join(f, "dag");
    compile_ok(f, NULL);
    assert_int_equal(ct_net_n_chains(f->net), 3);
    assert_int_equal(ct_net_chain_ops(f->net, 2, &ops), 2);
    assert_int_equal(ops[0], 2);
    assert_int_equal(ops[1], 3);
    run_ok(f);
    assert_all(f->env.ws, "D", 2);
}

static void test_net_run_empty_net_succeeds(void **state)
{
    struct fx *f = *state;

    f->def = tu_net("empty", "", "");
    set_type(f->def, "async_scheduling");
    compile_ok(f, NULL);
    assert_int_equal(ct_net_n_ops(f->net), 0);
    assert_int_equal(ct_net_n_chains(f->net), 0);
    run_ok(f);
}

static void check_failure_message(struct fx *f, const char *type)
{
    ct_blob_t *e;
    int rc;

    f->def = tu_net("fail", "", "");
    set_type(f->def, type);
    assert_int_equal(ct_workspace_create_blob(f->env.ws, "E", &e, &f->st),
                     CT_OK);
    add_fill(f->def, "a", "X", 1);
    add_op(f->def, "Relu", "b", "E", "Y");
    add_op(f->def, "Relu", "c", "Y", "Z");
    compile_ok(f, NULL);
    ct_status_clear(&f->st);
    rc = ct_net_run(f->net, &f->st);
    tu_assert_status(&f->st, rc, CT_ETYPE, NULL);
    assert_string_equal(f->st.msg,
                        "node 1 \"b\" (Relu): input 0 \"E\" is empty");
    assert_int_equal(f->st.node, 1);
    assert_string_equal(f->st.op, "Relu");
    /* The op after the failing one never ran. */
    assert_true(ct_blob_is_empty(ct_workspace_get_blob(f->env.ws, "Z")));
}

static void test_net_run_simple_failure_names_node(void **state)
{
    check_failure_message(*state, "simple");
}

static void test_net_run_dag_failure_names_node(void **state)
{
    check_failure_message(*state, "dag");
}

static void test_net_run_while_running_returns_ebusy(void **state)
{
    struct fx *f = *state;
    int rc;

    build_fork_join(f, NULL);
    compile_ok(f, NULL);
    /* White-box: pretend another thread is inside ct_net_run. */
    atomic_store(&f->net->running, true);
    rc = ct_net_run(f->net, &f->st);
    tu_assert_status(&f->st, rc, CT_EBUSY, "net fj is already running");
    atomic_store(&f->net->running, false);
    run_ok(f);
}

struct race {
    ct_net_t *net;
    atomic_int n_ok, n_busy, n_other;
};

/* pthreads rather than C11 threads: TSan does not intercept thrd_create. */
static void *race_thread(void *arg)
{
    struct race *r = arg;
    ct_status_t st;
    int k, rc;

    for (k = 0; k < 300; k++) {
        rc = ct_net_run(r->net, &st);
        if (rc == CT_OK)
            atomic_fetch_add(&r->n_ok, 1);
        else if (rc == CT_EBUSY)
            atomic_fetch_add(&r->n_busy, 1);
        else
            atomic_fetch_add(&r->n_other, 1);
    }
    return NULL;
}

static void test_net_run_concurrent_runs_never_overlap(void **state)
{
    struct fx *f = *state;
    struct race r;
    pthread_t t[2];
    int k;

    build_fork_join(f, "dag");
    compile_ok(f, NULL);
    memset(&r, 0, sizeof(r));
    r.net = f->net;
    for (k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&t[k], NULL, race_thread, &r), 0);
    for (k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    assert_int_equal(atomic_load(&r.n_other), 0);
    assert_int_equal(atomic_load(&r.n_ok) + atomic_load(&r.n_busy), 600);
    assert_true(atomic_load(&r.n_ok) >= 1);
    assert_all(f->env.ws, "D", 2);
}

/* ---- tests: queries ---- */

static void test_net_queries_report_graph(void **state)
{
    struct fx *f = *state;
    const int *v;

    build_fork_join(f, "dag");
    compile_ok(f, NULL);
    assert_string_equal(ct_net_name(f->net), "fj");
    assert_int_equal(ct_net_n_ops(f->net), 4);
    assert_string_equal(ct_net_op_type(f->net, 2), "Add");
    assert_string_equal(ct_net_op_name(f->net, 3), "relu");
    assert_int_equal(ct_net_op_parents(f->net, 2, &v), 2);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 1);
    assert_int_equal(ct_net_op_children(f->net, 0, &v), 1);
    assert_int_equal(v[0], 2);
    assert_int_equal(ct_net_chain_parents(f->net, 2, &v), 2);
    assert_int_equal(ct_net_chain_children(f->net, 0, &v), 1);
    assert_int_equal(v[0], 2);
    assert_ptr_not_equal(ct_net_def(f->net), f->def);
    assert_int_equal(ct_net_def(f->net)->n_op, 4);
}

static void test_net_new_copies_def(void **state)
{
    struct fx *f = *state;

    build_fork_join(f, NULL);
    compile_ok(f, NULL);
    tu_net_free(f->def); /* the net keeps its own copy */
    f->def = NULL;
    run_ok(f);
    assert_all(f->env.ws, "D", 2);
    assert_string_equal(ct_net_op_name(f->net, 0), "a");
}

static void test_net_new_merges_net_device_option(void **state)
{
    struct fx *f = *state;
    Caffe2__OperatorDef *own;

    f->def = tu_net("n", "", "");
    f->def->device_option = calloc(1, sizeof(*f->def->device_option));
    assert_non_null(f->def->device_option);
    caffe2__device_option__init(f->def->device_option);
    f->def->device_option->has_numa_node_id = 1;
    f->def->device_option->numa_node_id = 1;
    f->def->device_option->has_random_seed = 1;
    f->def->device_option->random_seed = 77;
    add_fill(f->def, "a", "X", 1);
    own = add_op(f->def, "Relu", "b", "X", "Y");
    op_devopt(own)->has_numa_node_id = 1;
    op_devopt(own)->numa_node_id = 0;
    own->engine = strdup("CUDNN"); /* ignored with a notice */
    compile_ok(f, NULL);
    assert_int_equal(f->net->ops[0]->numa_node, 1);
    assert_int_equal(f->net->ops[1]->numa_node, 0);
    assert_true(f->net->ops[0]->has_seed);
    assert_int_equal(f->net->ops[0]->seed, 77);
    /* Different NUMA nodes never share a chain. */
    assert_int_equal(ct_net_n_chains(f->net), 2);
}

static void test_net_describe_lists_types_and_chains(void **state)
{
    struct fx *f = *state;
    char *text = NULL;

    build_fork_join(f, "dag");
    add_op(f->def, "Relu", "relu2", "D", "E");
    compile_ok(f, NULL);
    assert_int_equal(ct_net_describe(f->net, &text, &f->st), CT_OK);
    assert_non_null(strstr(text, "net \"fj\": 5 ops, executor dag"));
    assert_non_null(strstr(text, "ops by type:\n  Add: 1\n  ConstantFill: 2\n"
                                 "  Relu: 2\n"));
    assert_non_null(strstr(text, "external inputs (0):\n"));
    assert_non_null(strstr(text, "external outputs (1): D\n"));
    assert_non_null(strstr(text, "chains: 3\n"));
    assert_non_null(
        strstr(text, "  chain 2: ops [2, 3, 4], after chains [0, 1]\n"));
    ct_free(text);
}

/* ---- tests: allocation failures ---- */

static void test_net_new_alloc_failure_returns_enomem(void **state)
{
    struct fx *f = *state;
    long live, k;
    int rc;

    build_fork_join(f, "dag");
    /* Compile once so every output blob exists: a failed compile then
     * allocates nothing that outlives it. */
    compile_ok(f, NULL);
    ct_net_free(f->net);
    f->net = NULL;
    live = tu_alloc_live();
    for (k = 1;; k++) {
        tu_fail_alloc_after(k);
        rc = compile(f, NULL);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&f->st, rc, CT_ENOMEM, NULL);
        assert_null(f->net);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_true(k > 5);
    run_ok(f);
    assert_all(f->env.ws, "D", 2);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_executor_from_net_type_maps_every_type),
        T(test_executor_from_net_type_unknown_returns_einval),
        T(test_net_new_unknown_type_returns_einval),
        T(test_net_new_bad_config_returns_einval),
        T(test_net_new_unknown_source_returns_egraph),
        T(test_net_new_unproduced_output_returns_egraph),
        T(test_net_new_node_name_returns_egraph),
        T(test_net_new_extra_inputs_count_as_declared),
        T(test_net_new_unknown_op_type_returns_enotfound),
        T(test_net_new_wrong_arity_returns_eschema),
        T(test_net_new_inplace_rejected_returns_eschema),
        T(test_net_new_inplace_allowed_runs),
        T(test_net_new_missing_input_blob_returns_enotfound),
        T(test_net_new_bad_argument_returns_earg),
        T(test_net_new_conflicting_duplicate_args_return_earg),
        T(test_net_new_num_workers_sources),
        T(test_net_new_num_workers_defaults_to_engine),
        T(test_net_new_num_workers_out_of_range_returns_einval),
        T(test_net_new_num_workers_argument_errors),
        T(test_net_new_type_selects_executor),
        T(test_net_run_simple_computes),
        T(test_net_run_dag_computes),
        T(test_net_run_empty_net_succeeds),
        T(test_net_run_simple_failure_names_node),
        T(test_net_run_dag_failure_names_node),
        T(test_net_run_while_running_returns_ebusy),
        T(test_net_run_concurrent_runs_never_overlap),
        T(test_net_queries_report_graph),
        T(test_net_new_copies_def),
        T(test_net_new_merges_net_device_option),
        T(test_net_describe_lists_types_and_chains),
        T(test_net_new_alloc_failure_returns_enomem),
    };
#undef T
    return cmocka_run_group_tests_name("engine.net", tests, NULL, NULL);
}
