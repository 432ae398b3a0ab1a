/* Tests for observers/observer.c, creator.c and spec.c: hook order and
 * arguments, Caffe2's observer_test counts, attach / detach rules,
 * engine-wide creators (callbacks and specs, per-net file names), failing
 * observers, every spec error, unwritable and colliding files, allocation
 * failures, and nets created concurrently under an engine creator. */
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

#include "cortado/observer.h"
#include "engine/net_impl.h"
#include "obs_test_util.h"

/* ---- a recording observer ---- */

enum hook {
    H_NONE,
    H_ATTACH,
    H_NET_START,
    H_OP_START,
    H_OP_END,
    H_NET_END,
    H_FLUSH
};

struct rec {
    char log[64][128];
    int n;
    long counter; /* Caffe2's observer_test arithmetic */
    enum hook fail_at;
    int fail_op;      /* op index for op hooks, -1 any */
    bool fail_silent; /* fail without a message */
    uint64_t last_t;
    bool t_monotonic;
    int n_freed;
};

static void logf_(struct rec *r, const char *fmt, ...) CT_PRINTF(2, 3);

static void logf_(struct rec *r, const char *fmt, ...)
{
    va_list ap;

    if (r->n >= 64)
        return;
    va_start(ap, fmt);
    vsnprintf(r->log[r->n++], sizeof(r->log[0]), fmt, ap);
    va_end(ap);
}

static int maybe_fail(struct rec *r, enum hook h, int op, ct_status_t *st)
{
    if (r->fail_at != h || (r->fail_op >= 0 && op != r->fail_op))
        return CT_OK;
    if (r->fail_silent)
        return CT_EIO;
    return ct_status_setf(st, CT_EINVAL, "boom at op %d", op);
}

static void check_time(struct rec *r, const struct ct_observer_event *ev)
{
    if (ev->t_ns == 0 || ev->t_ns < r->last_t)
        r->t_monotonic = false;
    r->last_t = ev->t_ns;
}

static int rec_attach(void *ctx, const struct ct_observer_net *net,
                      ct_status_t *st)
{
    struct rec *r = ctx;

    logf_(r, "attach %s ops=%d id>0=%d", net->name, net->n_ops, net->id > 0);
    return maybe_fail(r, H_ATTACH, -1, st);
}

static int rec_net_start(void *ctx, const struct ct_observer_event *ev,
                         ct_status_t *st)
{
    struct rec *r = ctx;

    check_time(r, ev);
    logf_(r, "net_start run=%llu op=%s ith=%d", (unsigned long long)ev->run,
          ev->op == NULL ? "null" : "set", ev->ith);
    r->counter += 1000;
    return maybe_fail(r, H_NET_START, -1, st);
}

static int rec_op_start(void *ctx, const struct ct_observer_event *ev,
                        ct_status_t *st)
{
    struct rec *r = ctx;
    const struct ct_observer_op *op = ev->op;

    check_time(r, ev);
    logf_(r, "op_start %d %s %s in=%d out=%d:%s ith=%d run=%llu", op->idx,
          op->name, op->type, op->n_inputs, op->n_outputs,
          op->n_outputs > 0 ? op->output_names[0] : "-", ev->ith,
          (unsigned long long)ev->run);
    r->counter += 100;
    return maybe_fail(r, H_OP_START, op->idx, st);
}

static int rec_op_end(void *ctx, const struct ct_observer_event *ev,
                      ct_status_t *st)
{
    struct rec *r = ctx;
    const struct ct_observer_op *op = ev->op;
    const ct_tensor_t *t =
        op->n_outputs > 0 ? ct_blob_get_tensor(op->outputs[0]) : NULL;

    check_time(r, ev);
    logf_(r, "op_end %d rc=%d out0=%s v=%g", op->idx, ev->rc,
          t == NULL ? "none" : ct_dtype_name(ct_tensor_dtype(t)),
          t != NULL && ct_tensor_numel(t) > 0
              ? (double)((const float *)ct_tensor_cdata(t))[0]
              : -1.0);
    r->counter += 1;
    return maybe_fail(r, H_OP_END, op->idx, st);
}

static int rec_net_end(void *ctx, const struct ct_observer_event *ev,
                       ct_status_t *st)
{
    struct rec *r = ctx;

    check_time(r, ev);
    logf_(r, "net_end rc=%d", ev->rc);
    r->counter += 10;
    return maybe_fail(r, H_NET_END, -1, st);
}

static int rec_flush(void *ctx, ct_status_t *st)
{
    struct rec *r = ctx;

    logf_(r, "flush");
    return maybe_fail(r, H_FLUSH, -1, st);
}

static void rec_free(void *ctx)
{
    ((struct rec *)ctx)->n_freed++;
}

static const struct ct_observer_cbs rec_cbs = {
    .name = "rec",
    .flags = CT_OBSERVER_F_TIME,
    .attach_cb = rec_attach,
    .net_start_cb = rec_net_start,
    .op_start_cb = rec_op_start,
    .op_end_cb = rec_op_end,
    .net_end_cb = rec_net_end,
    .flush_cb = rec_flush,
    .free_cb = rec_free,
};

static ct_observer_t *new_rec(struct rec *r, const char *name)
{
    struct ct_observer_cbs cbs = rec_cbs;
    ct_observer_t *obs = NULL;

    memset(r, 0, sizeof(*r));
    r->fail_op = -1;
    r->t_monotonic = true;
    cbs.name = name;
    assert_int_equal(ct_observer_new(&cbs, r, &obs, NULL), CT_OK);
    return obs;
}

static void assert_log_prefix(const struct rec *r, const char *const *want,
                              int n)
{
    int k;

    assert_true(r->n >= n);
    for (k = 0; k < n; k++)
        if (strcmp(r->log[k], want[k]) != 0)
            fail_msg("log[%d] is \"%s\", want \"%s\"", k, r->log[k], want[k]);
}

/* ---- hooks ---- */

static void test_observer_hooks_fire_in_order_with_arguments(void **state)
{
    static const char *const want[] = {
        "attach chain ops=3 id>0=1",
        "net_start run=1 op=null ith=0",
        "op_start 0 a ConstantFill in=0 out=1:X ith=0 run=1",
        "op_end 0 rc=0 out0=FLOAT v=1",
        "op_start 1 b Relu in=1 out=1:Y ith=0 run=1",
        "op_end 1 rc=0 out0=FLOAT v=1",
        "op_start 2 c Relu in=1 out=1:Z ith=0 run=1",
        "op_end 2 rc=0 out0=FLOAT v=1",
        "net_end rc=0",
        "net_start run=2 op=null ith=0",
    };
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    ct_observer_t *obs;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    obs = new_rec(&r, "rec");
    assert_int_equal(ct_net_add_observer(f->net, obs, &f->st), CT_OK);
    ofx_run_ok(f);
    ofx_run_ok(f);
    assert_log_prefix(&r, want, 10);
    assert_int_equal(r.n, 1 + 2 * 8);
    assert_true(r.t_monotonic); /* CT_OBSERVER_F_TIME: stamps, in order */
    assert_string_equal(ct_observer_name(obs), "rec");
    assert_null(ct_observer_file(obs));
}

static int plain_op_start(void *ctx, const struct ct_observer_event *ev,
                          ct_status_t *st)
{
    (void)st;
    if (ev->t_ns != 0)
        *(int *)ctx += 1;
    return CT_OK;
}

static void test_observer_without_time_flag_gets_zero_stamps(void **state)
{
    struct ofx *f = *state;
    struct ct_observer_cbs cbs = {.name = "plain",
                                  .op_start_cb = plain_op_start};
    ct_observer_t *obs;
    static int stamped; /* outlives the frame with the observer */

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    stamped = 0;
    assert_int_equal(ct_observer_new(&cbs, &stamped, &obs, NULL), CT_OK);
    assert_int_equal(ct_net_add_observer(f->net, obs, NULL), CT_OK);
    ofx_run_ok(f);
    assert_int_equal(stamped, 0);
}

/* Caffe2's observer_test: net start +1000, op start +100, op end +1, net
 * end +10 on a 2-op net gives 1212 per run. */
static long caffe2_delta(struct ofx *f, enum ct_executor ex, bool detach_before,
                         bool detach_after)
{
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    ct_observer_t *obs;

    f->def = tu_net("obs_test", "", "");
    ofx_fill(f->def, "in", "hidden", 1);
    ofx_op(f->def, "Relu", "out", "hidden", "out");
    ofx_compile_ok(f, ex);
    obs = new_rec(&r, "rec");
    assert_int_equal(ct_net_add_observer(f->net, obs, NULL), CT_OK);
    if (detach_before)
        assert_int_equal(ct_net_remove_observer(f->net, obs, NULL), CT_OK);
    ofx_run_ok(f);
    if (detach_after)
        assert_int_equal(ct_net_remove_observer(f->net, obs, NULL), CT_OK);
    if (detach_before || detach_after) {
        assert_int_equal(ct_net_n_observers(f->net), 0);
        ct_observer_free(obs);
        assert_int_equal(r.n_freed, 1);
    }
    return r.counter;
}

static void test_observer_caffe2_notify_counts_1212(void **state)
{
    assert_int_equal(caffe2_delta(*state, CT_EXECUTOR_SIMPLE, false, false),
                     1212);
}

static void test_observer_caffe2_unique_map_detach_after_run(void **state)
{
    assert_int_equal(caffe2_delta(*state, CT_EXECUTOR_SIMPLE, false, true),
                     1212);
}

static void test_observer_caffe2_notify_after_detach_is_zero(void **state)
{
    assert_int_equal(caffe2_delta(*state, CT_EXECUTOR_SIMPLE, true, false), 0);
}

static void test_observer_caffe2_dag_net_counts_1212(void **state)
{
    assert_int_equal(caffe2_delta(*state, CT_EXECUTOR_DAG, false, false), 1212);
}

/* ---- attach / detach ---- */

static void test_net_add_observer_rules(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r1, r2;
    ct_observer_t *a = new_rec(&r1, "first"), *b;
    ct_net_t *other;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_net_n_observers(f->net), 0);
    assert_int_equal(ct_net_add_observer(f->net, a, &f->st), CT_OK);
    /* The same observer again: nothing happens (Caffe2 returns it). */
    assert_int_equal(ct_net_add_observer(f->net, a, &f->st), CT_OK);
    assert_int_equal(ct_net_n_observers(f->net), 1);
    b = new_rec(&r2, "second");
    assert_int_equal(ct_net_add_observer(f->net, b, &f->st), CT_OK);
    assert_int_equal(ct_net_n_observers(f->net), 2);
    assert_ptr_equal(ct_net_get_observer(f->net, 0), a);
    assert_ptr_equal(ct_net_get_observer(f->net, 1), b);

    /* a second net may not take an observer the first one owns */
    assert_int_equal(ct_net_new(f->env.ws, f->def, NULL, &other, &f->st),
                     CT_OK);
    rc = ct_net_add_observer(other, a, &f->st);
    tu_assert_status(&f->st, rc, CT_EBUSY,
                     "observer first is already attached to net chain");
    rc = ct_net_remove_observer(other, a, &f->st);
    tu_assert_status(&f->st, rc, CT_ENOTFOUND,
                     "observer first is not attached to net chain");

    /* removal keeps the order of the others; removed ones are not
     * re-attachable */
    assert_int_equal(ct_net_remove_observer(f->net, a, &f->st), CT_OK);
    assert_int_equal(ct_net_n_observers(f->net), 1);
    assert_ptr_equal(ct_net_get_observer(f->net, 0), b);
    rc = ct_net_add_observer(other, a, &f->st);
    tu_assert_status(&f->st, rc, CT_ESTATE,
                     "observer first was attached to a net before");
    ct_observer_free(a);
    ct_net_free(other);
    /* b is freed with f->net */
}

static void test_net_add_observer_while_running_returns_ebusy(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    ct_observer_t *a = new_rec(&r, "rec"), *b;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_net_add_observer(f->net, a, NULL), CT_OK);
    b = ofx_spec(f, "runcount");
    /* White-box: pretend another thread is inside ct_net_run. */
    atomic_store(&f->net->running, true);
    rc = ct_net_add_observer(f->net, b, &f->st);
    tu_assert_status(&f->st, rc, CT_EBUSY,
                     "net chain is running; attach observers between runs");
    rc = ct_net_remove_observer(f->net, a, &f->st);
    tu_assert_status(&f->st, rc, CT_EBUSY,
                     "net chain is running; remove observers between runs");
    atomic_store(&f->net->running, false);
    assert_int_equal(ct_net_n_observers(f->net), 1);
    ct_observer_free(b);
}

static void test_net_add_observer_other_engine_returns_einval(void **state)
{
    struct ofx *f = *state;
    ct_engine_t *eng2;
    ct_observer_t *obs;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_engine_new(NULL, &eng2, NULL), CT_OK);
    assert_int_equal(ct_observer_create_from_spec(eng2, "runcount", &obs, NULL),
                     CT_OK);
    rc = ct_net_add_observer(f->net, obs, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL, "made for another engine");
    ct_observer_free(obs);
    ct_engine_free(eng2);
}

static void test_net_add_observer_attach_cb_error_leaves_it_free(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    ct_observer_t *obs = new_rec(&r, "rec");
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    r.fail_at = H_ATTACH;
    rc = ct_net_add_observer(f->net, obs, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "net chain: observer rec: boom at op -1");
    assert_int_equal(ct_net_n_observers(f->net), 0);
    r.fail_at = H_NONE;
    assert_int_equal(ct_net_add_observer(f->net, obs, &f->st), CT_OK);
}

static void test_observer_flush_and_describe(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    ct_observer_t *obs = new_rec(&r, "rec");
    char *text;
    int rc;

    rc = ct_observer_flush(obs, &f->st);
    tu_assert_status(&f->st, rc, CT_ESTATE,
                     "observer rec was never attached to a net");
    assert_int_equal(ct_observer_describe(obs, &text, NULL), CT_OK);
    assert_string_equal(text, "rec: not attached yet\n");
    ct_free(text);
    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_net_add_observer(f->net, obs, NULL), CT_OK);
    ofx_run_ok(f);
    r.fail_at = H_FLUSH;
    rc = ct_observer_flush(obs, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL, "observer rec: boom at op -1");
    r.fail_silent = true;
    rc = ct_observer_flush(obs, &f->st);
    tu_assert_status(&f->st, rc, CT_EIO,
                     "observer rec: flush failed: I/O error");
    r.fail_at = H_NONE;
    assert_int_equal(ct_observer_flush(obs, NULL), CT_OK);
    /* Flushed after the last run: ct_net_free does not flush again. */
    r.n = 0;
    ct_net_free(f->net);
    f->net = NULL;
    assert_int_equal(r.n, 0);
    assert_int_equal(r.n_freed, 1);
}

static void test_net_free_flushes_observers_that_ran(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    ct_observer_t *obs = new_rec(&r, "rec");

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_net_add_observer(f->net, obs, NULL), CT_OK);
    ofx_run_ok(f);
    ct_net_free(f->net);
    f->net = NULL;
    assert_string_equal(r.log[r.n - 1], "flush");
    assert_int_equal(r.n_freed, 1);
}

/* ---- failing observers ---- */

static int run_with_failure(struct ofx *f, struct rec *r, enum hook h, int op,
                            bool silent)
{
    ct_observer_t *obs;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    obs = new_rec(r, "failer");
    r->fail_at = h;
    r->fail_op = op;
    r->fail_silent = silent;
    assert_int_equal(ct_net_add_observer(f->net, obs, NULL), CT_OK);
    ct_status_clear(&f->st);
    return ct_net_run(f->net, &f->st);
}

static void test_observer_op_end_error_fails_run_naming_it(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    int rc = run_with_failure(f, &r, H_OP_END, 1, false);

    tu_assert_status(&f->st, rc, CT_EINVAL, NULL);
    assert_string_equal(f->st.msg, "node 1 \"b\" (Relu): observer \"failer\" "
                                   "(op end): boom at op 1");
    assert_int_equal(f->st.node, 1);
    /* op 2 was skipped; net end still ran with the error */
    assert_string_equal(r.log[r.n - 1], "net_end rc=-1");
    assert_true(ct_blob_is_empty(ct_workspace_get_blob(f->env.ws, "Z")));
}

static void test_observer_op_start_error_skips_kernel(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    int rc = run_with_failure(f, &r, H_OP_START, 1, true);

    tu_assert_status(&f->st, rc, CT_EIO,
                     "node 1 \"b\" (Relu): observer \"failer\" (op start): "
                     "I/O error");
    /* The kernel did not run, but op end did, with the error. */
    assert_true(ct_blob_is_empty(ct_workspace_get_blob(f->env.ws, "Y")));
    assert_string_equal(r.log[r.n - 2], "op_end 1 rc=-13 out0=none v=-1");
}

static void test_observer_net_start_error_skips_run(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r0, r;
    ct_observer_t *first;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    first = new_rec(&r0, "first");
    assert_int_equal(ct_net_add_observer(f->net, first, NULL), CT_OK);
    assert_int_equal(ct_net_add_observer(f->net, new_rec(&r, "failer"), NULL),
                     CT_OK);
    r.fail_at = H_NET_START;
    rc = ct_net_run(f->net, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "net chain: observer \"failer\" (net start): boom");
    assert_true(ct_blob_is_empty(ct_workspace_get_blob(f->env.ws, "X")));
    /* The observer that started sees the run end; the failer does not. */
    assert_string_equal(r0.log[r0.n - 1], "net_end rc=-1");
    assert_string_equal(r.log[r.n - 1], "net_start run=1 op=null ith=0");
    r.fail_at = H_NONE;
    ofx_run_ok(f);
}

static void test_observer_net_end_error_fails_run(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    int rc = run_with_failure(f, &r, H_NET_END, -1, false);

    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "net chain: observer \"failer\" (net end): boom at op -1");
    assert_false(ct_blob_is_empty(ct_workspace_get_blob(f->env.ws, "Z")));
}

static void test_observer_error_after_op_failure_keeps_op_error(void **state)
{
    struct ofx *f = *state;
    /* static: the observer may outlive this frame (teardown frees the
     * net and flushes it) */
    static struct rec r;
    ct_observer_t *obs;
    ct_blob_t *e;
    int rc;

    /* Op 1 reads an empty blob and fails; the observer fails too. */
    f->def = tu_net("fail", "", "");
    assert_int_equal(ct_workspace_create_blob(f->env.ws, "E", &e, NULL), CT_OK);
    ofx_fill(f->def, "a", "X", 1);
    ofx_op(f->def, "Relu", "b", "E", "Y");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    obs = new_rec(&r, "failer");
    r.fail_at = H_OP_END;
    assert_int_equal(ct_net_add_observer(f->net, obs, NULL), CT_OK);
    rc = ct_net_run(f->net, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL, NULL);
    assert_string_equal(f->st.msg,
                        "node 0 \"a\" (ConstantFill): observer \"failer\" (op "
                        "end): boom at op 0");
    r.fail_at = H_NONE;
    rc = ct_net_run(f->net, &f->st);
    tu_assert_status(&f->st, rc, CT_ETYPE, NULL);
    assert_string_equal(f->st.msg, "node 1 \"b\" (Relu): input 0 \"E\" is "
                                   "empty");
    r.fail_at = H_OP_END;
    r.fail_op = 1;
    rc = ct_net_run(f->net, &f->st);
    /* the kernel's error came first and wins */
    tu_assert_status(&f->st, rc, CT_ETYPE, NULL);
    assert_string_equal(f->st.msg, "node 1 \"b\" (Relu): input 0 \"E\" is "
                                   "empty");
    assert_string_equal(r.log[r.n - 2], "op_end 1 rc=-7 out0=none v=-1");
}

/* ---- engine creators ---- */

struct creator_ctx {
    atomic_int calls;
    int mode; /* 0 make, 1 skip, 2 fail */
    struct rec recs[8];
    int n_freed;
};

static int creator_cb(void *ctx, ct_net_t *net, ct_observer_t **out,
                      ct_status_t *st)
{
    struct creator_ctx *c = ctx;
    int k = atomic_fetch_add(&c->calls, 1);

    (void)net;
    if (c->mode == 1)
        return CT_OK;
    if (c->mode == 2)
        return ct_status_setf(st, CT_EINVAL, "creator says no");
    *out = new_rec(&c->recs[k % 8], "made");
    return CT_OK;
}

static void creator_free(void *ctx)
{
    ((struct creator_ctx *)ctx)->n_freed++;
}

static void test_engine_creator_applies_to_every_new_net(void **state)
{
    struct ofx *f = *state;
    static struct creator_ctx c; /* outlives the frame, see above */
    ct_net_t *n2;

    memset(&c, 0, sizeof(c));
    ofx_chain3(f, "chain");
    /* A net made before registration gets nothing. */
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_engine_add_observer_creator(f->env.eng, creator_cb, &c,
                                                    creator_free, NULL),
                     CT_OK);
    assert_int_equal(ct_net_n_observers(f->net), 0);
    assert_int_equal(ct_net_new(f->env.ws, f->def, NULL, &n2, NULL), CT_OK);
    assert_int_equal(ct_net_n_observers(n2), 1);
    assert_string_equal(ct_observer_name(ct_net_get_observer(n2, 0)), "made");
    assert_int_equal(ct_net_run(n2, NULL), CT_OK);
    assert_int_equal(c.recs[0].counter, 1000 + 3 * 101 + 10);
    ct_net_free(n2);
    /* Nets run once through the workspace are created nets too. */
    assert_int_equal(ct_workspace_run_net_once(f->env.ws, f->def, NULL), CT_OK);
    assert_int_equal(atomic_load(&c.calls), 2);
    assert_int_equal(c.recs[1].counter, 1313);
    /* Cleared: later nets are left alone. */
    ct_engine_clear_observer_creators(f->env.eng);
    assert_int_equal(ct_net_new(f->env.ws, f->def, NULL, &n2, NULL), CT_OK);
    assert_int_equal(ct_net_n_observers(n2), 0);
    ct_net_free(n2);
    assert_int_equal(c.n_freed, 0);
    ct_net_free(f->net);
    f->net = NULL;
    tu_env_destroy(&f->env); /* the engine frees the creator's ctx */
    assert_int_equal(c.n_freed, 1);
    tu_env_init(&f->env);
}

static void test_engine_creator_null_and_error(void **state)
{
    struct ofx *f = *state;
    static struct creator_ctx skip, bad;
    int rc;

    memset(&skip, 0, sizeof(skip));
    memset(&bad, 0, sizeof(bad));
    skip.mode = 1;
    bad.mode = 2;
    ofx_chain3(f, "chain");
    assert_int_equal(ct_engine_add_observer_creator(f->env.eng, creator_cb,
                                                    &skip, NULL, NULL),
                     CT_OK);
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_net_n_observers(f->net), 0);
    ct_net_free(f->net);
    f->net = NULL;
    assert_int_equal(ct_engine_add_observer_creator(f->env.eng, creator_cb,
                                                    &bad, NULL, NULL),
                     CT_OK);
    rc = ofx_compile(f, CT_EXECUTOR_SIMPLE);
    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "net chain: observer creator 1: creator says no");
    assert_null(f->net);
}

static void test_engine_creators_run_in_registration_order(void **state)
{
    struct ofx *f = *state;
    static struct creator_ctx c; /* outlives the frame, see above */

    memset(&c, 0, sizeof(c));
    assert_int_equal(ct_engine_add_observer_spec(f->env.eng, "runcount", NULL),
                     CT_OK);
    assert_int_equal(
        ct_engine_add_observer_creator(f->env.eng, creator_cb, &c, NULL, NULL),
        CT_OK);
    assert_int_equal(ct_engine_add_observer_spec(f->env.eng, "time", NULL),
                     CT_OK);
    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_net_n_observers(f->net), 3);
    assert_string_equal(ct_observer_name(ct_net_get_observer(f->net, 0)),
                        "runcount");
    assert_string_equal(ct_observer_name(ct_net_get_observer(f->net, 1)),
                        "made");
    assert_string_equal(ct_observer_name(ct_net_get_observer(f->net, 2)),
                        "time");
}

static void test_engine_spec_gives_each_net_its_file(void **state)
{
    struct ofx *f = *state;
    char spec[300];
    ct_net_t *a2, *b;
    Caffe2__NetDef *def_b;
    char want[300];

    snprintf(spec, sizeof(spec), "runcount=%s", ofx_path(f, "rc.json"));
    assert_int_equal(ct_engine_add_observer_spec(f->env.eng, spec, NULL),
                     CT_OK);
    ofx_chain3(f, "a");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_string_equal(ct_observer_file(ct_net_get_observer(f->net, 0)),
                        ofx_path(f, "rc.a.json"));
    /* A second live net named "a" gets the net id as well. */
    assert_int_equal(ct_net_new(f->env.ws, f->def, NULL, &a2, NULL), CT_OK);
    snprintf(want, sizeof(want), "%s/rc.a.%llu.json", f->dir,
             (unsigned long long)a2->id);
    assert_string_equal(ct_observer_file(ct_net_get_observer(a2, 0)), want);
    def_b = tu_net("b/with space", "", "");
    ofx_fill(def_b, "a", "X", 1);
    assert_int_equal(ct_net_new(f->env.ws, def_b, NULL, &b, NULL), CT_OK);
    assert_string_equal(ct_observer_file(ct_net_get_observer(b, 0)),
                        ofx_path(f, "rc.b_with_space.json"));
    ofx_run_ok(f);
    assert_int_equal(ct_net_run(b, NULL), CT_OK);
    ct_net_free(a2);
    ct_net_free(b);
    tu_net_free(def_b);
    ct_net_free(f->net);
    f->net = NULL;
    ofx_assert_file(ofx_path(f, "rc.a.json"),
                    "{\"net\": \"a\", \"runs\": 1, \"op_runs\": 3, \"ops\": "
                    "[1, 1, 1]}\n");
    ofx_assert_file(ofx_path(f, "rc.b_with_space.json"),
                    "{\"net\": \"b/with space\", \"runs\": 1, \"op_runs\": 1, "
                    "\"ops\": [1]}\n");
    assert_true(ofx_exists(want));
}

static void test_spec_file_placeholders(void **state)
{
    struct ofx *f = *state;
    char spec[300], want[300];
    ct_observer_t *obs;

    ofx_chain3(f, "my net");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "runcount=%s/%%n-%%i-100%%%%.json", f->dir);
    obs = ofx_attach(f, spec);
    snprintf(want, sizeof(want), "%s/my_net-%llu-100%%.json", f->dir,
             (unsigned long long)f->net->id);
    assert_string_equal(ct_observer_file(obs), want);
}

/* ---- files ---- */

static void test_attach_unwritable_file_returns_eio(void **state)
{
    struct ofx *f = *state;
    ct_observer_t *obs;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    obs = ofx_spec(f, "minmax=/nonexistent-ct-dir/x.minmax");
    rc = ct_net_add_observer(f->net, obs, &f->st);
    tu_assert_status(&f->st, rc, CT_EIO,
                     "net chain: observer minmax: cannot write "
                     "\"/nonexistent-ct-dir/x.minmax\": No such file or "
                     "directory");
    assert_int_equal(ct_net_n_observers(f->net), 0);
    assert_null(ct_observer_file(obs));
    ct_observer_free(obs);
}

static void test_attach_same_file_twice_returns_eexist(void **state)
{
    struct ofx *f = *state;
    char spec[300];
    ct_observer_t *obs;
    ct_net_t *n2;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    assert_int_equal(ct_net_new(f->env.ws, f->def, NULL, &n2, NULL), CT_OK);
    snprintf(spec, sizeof(spec), "minmax=%s", ofx_path(f, "x.minmax"));
    ofx_attach(f, spec);
    obs = ofx_spec(f, spec);
    rc = ct_net_add_observer(n2, obs, &f->st);
    tu_assert_status(&f->st, rc, CT_EEXIST,
                     "is already written by observer minmax of net chain; put "
                     "%n (net name) or %i (net id) in the file name");
    /* Once the first is gone, the file is free again. */
    ct_net_free(f->net);
    f->net = NULL;
    assert_int_equal(ct_net_add_observer(n2, obs, &f->st), CT_OK);
    ct_net_free(n2);
}

static void test_net_end_write_error_fails_run(void **state)
{
    struct ofx *f = *state;
    char spec[400], sub[300];
    int rc;

    snprintf(sub, sizeof(sub), "%s/sub", f->dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "minmax=%s/x.minmax,dump_freq=1", sub);
    ofx_attach(f, spec);
    unlink(ofx_path(f, "sub/x.minmax"));
    assert_int_equal(rmdir(sub), 0);
    rc = ct_net_run(f->net, &f->st);
    tu_assert_status(&f->st, rc, CT_EIO,
                     "net chain: observer \"minmax\" (net end): cannot write");
    assert_non_null(strstr(f->st.msg, "sub/x_1.minmax\": No such file"));
    /* ct_net_free would warn on stderr that the totals cannot be written;
     * flushing first reports it here instead. */
    rc = ct_observer_flush(ct_net_get_observer(f->net, 0), &f->st);
    tu_assert_status(&f->st, rc, CT_EIO, "observer minmax: cannot write");
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(ct_observer_flush(ct_net_get_observer(f->net, 0), NULL),
                     CT_OK);
}

/* ---- spec errors ---- */

static void test_spec_errors_name_the_bad_part(void **state)
{
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"", "no observer name"},
        {",x=1", "no observer name"},
        {"foo=x", "unknown observer \"foo\" (known: minmax, histogram"},
        {"minmax", "minmax needs a file (minmax=FILE)"},
        {"minmax=", "empty FILE after '='"},
        {"minmax=a,bogus=1",
         "unknown option \"bogus\" for minmax (options: file, dump_freq, "
         "delimiter)"},
        {"time,bogus=1", "unknown option \"bogus\" for time (options: file)"},
        {"minmax=a,dump_freq=0", "dump_freq: want -1 (only at the end) or N"},
        {"minmax=a,dump_freq=x",
         "dump_freq: want an integer in [-1, 1000000000], got \"x\""},
        {"minmax=a,dump_freq=-2", "got \"-2\""},
        {"minmax=a,dump_freq=2,dump_freq=3", "option dump_freq is given twice"},
        {"minmax=a,file=b", "option file is given twice"},
        {"minmax=a,dump_freq", "option \"dump_freq\" is not key=value"},
        {"minmax=a,=3", "an option has no name before '='"},
        {"minmax=a,delimiter=", "option delimiter has an empty value"},
        {"minmax=a,delimiter=,x", "option delimiter has an empty value"},
        {"minmax=a,delimiter=0123456789abcdef", "delimiter: at most 15 bytes"},
        {"minmax=a%zb", "file \"a%zb\": unknown placeholder %z"},
        {"minmax=a%", "unknown placeholder %"},
        {"trace", "trace needs a file (trace=FILE)"},
        {"trace=t.json,max_events=0", "max_events: want an integer in [1, "},
        {"histogram=h,nbins=0", "nbins: want an integer in [1, 1048576]"},
        {"histogram=h,nbins=9999999", "nbins"},
    };
    struct ofx *f = *state;
    ct_observer_t *obs;
    char want[300];
    size_t k;
    int rc;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        obs = (ct_observer_t *)1;
        rc = ct_observer_create_from_spec(f->env.eng, cases[k].spec, &obs,
                                          &f->st);
        if (rc != CT_EINVAL || strstr(f->st.msg, cases[k].msg) == NULL)
            fail_msg("spec \"%s\": rc %d, message \"%s\", want \"%s\"",
                     cases[k].spec, rc, f->st.msg, cases[k].msg);
        snprintf(want, sizeof(want), "observer spec \"%s\": ", cases[k].spec);
        assert_int_equal(strncmp(f->st.msg, want, strlen(want)), 0);
        assert_null(obs);
        rc = ct_engine_add_observer_spec(f->env.eng, cases[k].spec, &f->st);
        assert_int_equal(rc, CT_EINVAL);
    }
}

static void test_spec_accepts_every_form(void **state)
{
    static const char *const ok[] = {
        "minmax=a.minmax",
        "minmax,file=a.minmax",
        "minmax=a,dump_freq=-1,delimiter=tab",
        "minmax=a,delimiter=,",
        "minmax=a,delimiter=,,dump_freq=3",
        "minmax=a,delimiter=comma",
        "OutputMinMaxObserver=a",
        "histogram=h,nbins=16,dump_freq=2,delimiter=;,op_filter=FC",
        "HistogramObserver=h",
        "time",
        "TimeObserver=t.json",
        "runcount",
        "RunCountObserver",
        "trace=t.json,max_events=10",
    };
    struct ofx *f = *state;
    size_t k;

    for (k = 0; k < sizeof(ok) / sizeof(ok[0]); k++)
        ct_observer_free(ofx_spec(f, ok[k]));
}

/* ---- allocation failures ---- */

static void test_observer_alloc_failures_return_enomem(void **state)
{
    struct ofx *f = *state;
    char spec[300];
    long live, k;
    ct_observer_t *obs;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "minmax=%s,dump_freq=2",
             ofx_path(f, "x.minmax"));
    live = tu_alloc_live();
    for (k = 1;; k++) {
        obs = NULL;
        tu_fail_alloc_after(k);
        rc = ct_observer_create_from_spec(f->env.eng, spec, &obs, &f->st);
        if (rc == CT_OK)
            rc = ct_net_add_observer(f->net, obs, &f->st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&f->st, rc, CT_ENOMEM, "out of memory");
        assert_int_equal(ct_net_n_observers(f->net), 0);
        ct_observer_free(obs);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_true(k > 4);
    ofx_run_ok(f);
}

static void test_engine_creator_alloc_failure_in_net_new(void **state)
{
    struct ofx *f = *state;
    long live, k;
    int rc;

    ofx_chain3(f, "chain");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE); /* creates every blob */
    ct_net_free(f->net);
    f->net = NULL;
    assert_int_equal(ct_engine_add_observer_spec(f->env.eng, "time", NULL),
                     CT_OK);
    live = tu_alloc_live();
    for (k = 1;; k++) {
        tu_fail_alloc_after(k);
        rc = ofx_compile(f, CT_EXECUTOR_SIMPLE);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&f->st, rc, CT_ENOMEM, NULL);
        assert_null(f->net);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_int_equal(ct_net_n_observers(f->net), 1);
    ofx_run_ok(f);
}

/* ---- concurrency ---- */

struct maker {
    ct_engine_t *eng;
    const Caffe2__NetDef *def;
    int min_observers; /* 1 while the second creator may be registering */
    atomic_int n_bad;
};

static void *maker_thread(void *arg)
{
    struct maker *m = arg;
    ct_workspace_t *ws;
    int k;

    if (ct_workspace_new(m->eng, NULL, &ws, NULL) != CT_OK) {
        atomic_fetch_add(&m->n_bad, 1);
        return NULL;
    }
    for (k = 0; k < 40; k++) {
        ct_net_t *net;
        uint64_t runs = 0, ops = 0;
        int n;
        if (ct_net_new(ws, m->def, NULL, &net, NULL) != CT_OK) {
            atomic_fetch_add(&m->n_bad, 1);
            continue;
        }
        n = ct_net_n_observers(net);
        if (n < m->min_observers || n > 2 || ct_net_run(net, NULL) != CT_OK ||
            ct_runcount_observer_get(ct_net_get_observer(net, 0), &runs, &ops,
                                     NULL) != CT_OK ||
            runs != 1 || ops != 3)
            atomic_fetch_add(&m->n_bad, 1);
        ct_net_free(net);
    }
    ct_workspace_free(ws);
    return NULL;
}

static void test_engine_creators_with_concurrent_net_creation(void **state)
{
    struct ofx *f = *state;
    struct maker m;
    pthread_t th[4];
    char spec[300];
    int k;

    ofx_chain3(f, "chain");
    snprintf(spec, sizeof(spec), "runcount=%s", ofx_path(f, "rc.json"));
    assert_int_equal(ct_engine_add_observer_spec(f->env.eng, spec, NULL),
                     CT_OK);
    m.eng = f->env.eng;
    m.def = f->def;
    m.min_observers = 1;
    atomic_init(&m.n_bad, 0);
    for (k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&th[k], NULL, maker_thread, &m), 0);
    /* Registering while nets are being made is safe; nets made after it
     * returns get both observers. */
    assert_int_equal(ct_engine_add_observer_spec(f->env.eng, "time", NULL),
                     CT_OK);
    for (k = 0; k < 4; k++)
        pthread_join(th[k], NULL);
    assert_int_equal(atomic_load(&m.n_bad), 0);
    m.min_observers = 2;
    maker_thread(&m);
    assert_int_equal(atomic_load(&m.n_bad), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, ofx_setup, ofx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_observer_hooks_fire_in_order_with_arguments),
        T(test_observer_without_time_flag_gets_zero_stamps),
        T(test_observer_caffe2_notify_counts_1212),
        T(test_observer_caffe2_unique_map_detach_after_run),
        T(test_observer_caffe2_notify_after_detach_is_zero),
        T(test_observer_caffe2_dag_net_counts_1212),
        T(test_net_add_observer_rules),
        T(test_net_add_observer_while_running_returns_ebusy),
        T(test_net_add_observer_other_engine_returns_einval),
        T(test_net_add_observer_attach_cb_error_leaves_it_free),
        T(test_observer_flush_and_describe),
        T(test_net_free_flushes_observers_that_ran),
        T(test_observer_op_end_error_fails_run_naming_it),
        T(test_observer_op_start_error_skips_kernel),
        T(test_observer_net_start_error_skips_run),
        T(test_observer_net_end_error_fails_run),
        T(test_observer_error_after_op_failure_keeps_op_error),
        T(test_engine_creator_applies_to_every_new_net),
        T(test_engine_creator_null_and_error),
        T(test_engine_creators_run_in_registration_order),
        T(test_engine_spec_gives_each_net_its_file),
        T(test_spec_file_placeholders),
        T(test_attach_unwritable_file_returns_eio),
        T(test_attach_same_file_twice_returns_eexist),
        T(test_net_end_write_error_fails_run),
        T(test_spec_errors_name_the_bad_part),
        T(test_spec_accepts_every_form),
        T(test_observer_alloc_failures_return_enomem),
        T(test_engine_creator_alloc_failure_in_net_new),
        T(test_engine_creators_with_concurrent_net_creation),
    };
#undef T
    return cmocka_run_group_tests_name("observers.observer", tests, NULL, NULL);
}
