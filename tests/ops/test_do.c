/* Tests for ops/do_op.c and engine/scope.c: Caffe2's do_op_test.py
 * (outer_Z == [4, 6]; reuse_workspace gives [3]), every constructor check
 * of spec §3.4, the gradient Do popping the forward workspace, the
 * WorkspaceStack binding-mismatch and corrupted-stack errors, nested Do
 * inside Do under the dag executor on 1 and 2 threads (no deadlock), and
 * Do ops with different scope blobs running concurrently. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cortado/net.h"
#include "cortado/proto.h"
#include "cortado/scope.h"
#include "engine/scope_impl.h"
#include "test_util.h"

struct env {
    ct_engine_t *eng;
    ct_workspace_t *ws;
};

static void env_init(struct env *e, int n_threads)
{
    struct ct_engine_config cfg;
    ct_status_t st = {0};

    ct_engine_config_init(&cfg);
    cfg.n_threads = n_threads;
    assert_int_equal(ct_engine_new(&cfg, &e->eng, &st), CT_OK);
    assert_int_equal(ct_workspace_new(e->eng, NULL, &e->ws, &st), CT_OK);
}

static void env_destroy(struct env *e)
{
    ct_workspace_free(e->ws);
    ct_engine_free(e->eng);
}

static ct_netdef_t *parse(const char *txt)
{
    ct_netdef_t *def = NULL;
    ct_status_t st = {0};
    int rc = ct_netdef_parse(txt, strlen(txt), CT_PROTO_TEXT, &def, &st);

    if (rc != CT_OK)
        fail_msg("parse: %s", st.msg);
    return def;
}

/* Compiles and runs txt in ws once; returns the code, st filled. */
static int run_txt(ct_workspace_t *ws, const char *txt, int runs,
                   ct_status_t *st)
{
    ct_netdef_t *def = parse(txt);
    ct_net_t *net = NULL;
    int rc = ct_net_new(ws, def, NULL, &net, st), i;

    for (i = 0; rc == CT_OK && i < runs; i++)
        rc = ct_net_run(net, st);
    if (rc != CT_OK)
        fprintf(stderr, "run_txt: %s\n", st->msg);
    ct_net_free(net);
    ct_netdef_free(def);
    return rc;
}

static const float *fetch_f32(ct_workspace_t *ws, const char *name)
{
    return ct_tensor_cdata(tu_fetch(ws, name));
}

/* ---- do_op_test.py ---- */

static const char *k_operator =
    "name: \"outer\"\n"
    "op { output: \"W\" type: \"CreateScope\" }\n"
    "op { input: \"outer_X\" input: \"outer_Y\" input: \"W\"\n"
    "     output: \"outer_Z\" output: \"W\" type: \"Do\"\n"
    "  arg { name: \"net\" n { name: \"sub\"\n"
    "    op { input: \"X\" input: \"Y\" output: \"Z\" type: \"Add\" } } }\n"
    "  arg { name: \"inner_blobs\" strings: \"X\" strings: \"Y\" "
    "strings: \"Z\" }\n"
    "  arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 ints: 2 } }\n";

static void test_do_operator_outer_z(void **state)
{
    struct env e;
    ct_status_t st = {0};
    const float x[2] = {1, 2}, y[2] = {3, 4};
    const int64_t d[1] = {2};
    const float *z;

    (void)state;
    env_init(&e, 1);
    tu_feed_f32(e.ws, "outer_X", 1, d, x);
    tu_feed_f32(e.ws, "outer_Y", 1, d, y);
    assert_int_equal(run_txt(e.ws, k_operator, 3, &st), CT_OK);
    z = fetch_f32(e.ws, "outer_Z");
    assert_true(z[0] == 4.0f && z[1] == 6.0f);
    /* The inner names stay in the child. */
    assert_false(ct_workspace_has_blob(e.ws, "Z"));
    assert_false(ct_workspace_has_blob(e.ws, "X"));
    env_destroy(&e);
}

static const char *k_reuse =
    "name: \"outer\"\n"
    "op { output: \"W\" type: \"CreateScope\" }\n"
    "op { input: \"W\" output: \"W\" type: \"Do\"\n"
    "  arg { name: \"net\" n { name: \"fill\"\n"
    "    op { output: \"X\" type: \"ConstantFill\"\n"
    "         arg { name: \"shape\" ints: 1 } arg { name: \"value\" f: 1 } }\n"
    "    op { output: \"Y\" type: \"ConstantFill\"\n"
    "         arg { name: \"shape\" ints: 1 } arg { name: \"value\" f: 2 } }"
    " } } }\n"
    "op { input: \"W\" output: \"outer_Z\" output: \"W\" type: \"Do\"\n"
    "  arg { name: \"net\" n { name: \"add\"\n"
    "    op { input: \"X\" input: \"Y\" output: \"Z\" type: \"Add\" } } }\n"
    "  arg { name: \"inner_blobs\" strings: \"Z\" }\n"
    "  arg { name: \"outer_blobs_idx\" ints: 0 }\n"
    "  arg { name: \"reuse_workspace\" i: 1 } }\n";

static void test_do_reuse_workspace(void **state)
{
    struct env e;
    ct_status_t st = {0};
    const ct_workspace_stack_t *stack;

    (void)state;
    env_init(&e, 1);
    assert_int_equal(run_txt(e.ws, k_reuse, 2, &st), CT_OK);
    assert_true(fetch_f32(e.ws, "outer_Z")[0] == 3.0f);
    stack = ct_blob_get(ct_workspace_get_blob(e.ws, "W"),
                        &ct_blob_type_workspace_stack);
    assert_non_null(stack);
    /* CreateScope cleared it on the second run: one workspace, reused. */
    assert_int_equal(ct_workspace_stack_depth(stack), 1);
    assert_int_equal(ct_workspace_stack_n_workspaces(stack), 1);
    env_destroy(&e);
}

/* ---- constructor checks (spec §3.4, in order) ---- */

static void expect_bad(const char *op_txt, int code, const char *needle)
{
    struct env e;
    ct_status_t st = {0};
    char txt[2048];
    const float x[1] = {1};
    const int64_t d[1] = {1};

    env_init(&e, 1);
    tu_feed_f32(e.ws, "a", 1, d, x);
    tu_feed_f32(e.ws, "b", 1, d, x);
    tu_feed_f32(e.ws, "W", 1, d, x);
    snprintf(txt, sizeof(txt), "name: \"bad\"\nop { %s type: \"Do\" }\n",
             op_txt);
    tu_assert_status(&st, run_txt(e.ws, txt, 1, &st), code, needle);
    env_destroy(&e);
}

#define SUBNET "arg { name: \"net\" n { name: \"s\" } } "

static void test_do_constructor_checks(void **state)
{
    (void)state;
    expect_bad("input: \"a\" input: \"W\" output: \"W\"", CT_EARG,
               "net must be specified in Do operator");
    expect_bad("input: \"W\" output: \"W\" " SUBNET
               "arg { name: \"reuse_workspace\" i: 1 } "
               "is_gradient_op: true",
               CT_EARG, "Gradient Do op requires use of stacked workspaces");
    expect_bad("input: \"W\" output: \"W\" " SUBNET
               "arg { name: \"reuse_workspace\" i: 1 } "
               "arg { name: \"copy_external_blobs\" i: 1 }",
               CT_EARG, "copy external blobs");
    expect_bad("input: \"a\" input: \"W\" output: \"W\" " SUBNET
               "arg { name: \"inner_blobs\" strings: \"x\" }",
               CT_EARG, "different inner/outer blobs lengths");
    expect_bad("output: \"W\" " SUBNET, CT_ESCHEMA, "");
    expect_bad("input: \"a\" input: \"a\" input: \"W\" output: \"W\" " SUBNET,
               CT_ESCHEMA, "");
    expect_bad("input: \"a\" input: \"W\" output: \"V\" " SUBNET, CT_ESCHEMA,
               "Expected same input/output workspace blob");
    expect_bad("input: \"W\" output: \"c\" output: \"c\" output: \"W\" " SUBNET,
               CT_ESCHEMA, "");
    expect_bad("input: \"a\" input: \"W\" output: \"W\" " SUBNET
               "arg { name: \"inner_blobs\" strings: \"x\" strings: \"x\" } "
               "arg { name: \"outer_blobs_idx\" ints: 0 ints: 0 }",
               CT_EARG, "redefinition of inner blob x");
    expect_bad("input: \"a\" input: \"W\" output: \"W\" " SUBNET
               "arg { name: \"inner_blobs\" strings: \"x\" } "
               "arg { name: \"outer_blobs_idx\" ints: 1 }",
               CT_EARG,
               "outer blob index (1, inner name: x) is out of "
               "bounds [0, 0]");
    expect_bad("input: \"a\" input: \"W\" output: \"W\" " SUBNET
               "arg { name: \"inner_blobs\" strings: \"x\" strings: \"y\" } "
               "arg { name: \"outer_blobs_idx\" ints: 0 ints: 0 }",
               CT_EARG, "Reusage of outer name: a");
    expect_bad("input: \"a\" input: \"b\" input: \"W\" output: \"W\" " SUBNET
               "arg { name: \"inner_blobs\" strings: \"x\" } "
               "arg { name: \"outer_blobs_idx\" ints: 0 }",
               CT_EARG, "Not all outer names are used in blob bindings");
}

/* In place: an input also an output counts as one outer name. */
static void test_do_inplace_outer_counts_once(void **state)
{
    struct env e;
    ct_status_t st = {0};
    const float x[1] = {5};
    const int64_t d[1] = {1};
    const char *txt =
        "name: \"o\"\n"
        "op { output: \"W\" type: \"CreateScope\" }\n"
        "op { input: \"a\" input: \"W\" output: \"a\" output: \"W\" "
        "type: \"Do\"\n"
        "  arg { name: \"net\" n { name: \"s\"\n"
        "    op { input: \"x\" input: \"x\" output: \"x\" type: \"Add\" } } }\n"
        "  arg { name: \"inner_blobs\" strings: \"x\" }\n"
        "  arg { name: \"outer_blobs_idx\" ints: 0 } }\n";

    (void)state;
    env_init(&e, 1);
    tu_feed_f32(e.ws, "a", 1, d, x);
    assert_int_equal(run_txt(e.ws, txt, 2, &st), CT_OK);
    assert_true(fetch_f32(e.ws, "a")[0] == 20.0f);
    env_destroy(&e);
}

/* ---- gradient Do ---- */

static const char *k_grad =
    "name: \"fb\"\n"
    "op { output: \"W\" type: \"CreateScope\" }\n"
    /* forward: h = x * x stays local in the child */
    "op { input: \"a\" input: \"W\" output: \"y\" output: \"W\" type: \"Do\"\n"
    "  arg { name: \"net\" n { name: \"fwd\"\n"
    "    op { input: \"x\" input: \"x\" output: \"h\" type: \"Mul\" }\n"
    "    op { input: \"h\" input: \"x\" output: \"out\" type: \"Add\" } } }\n"
    "  arg { name: \"inner_blobs\" strings: \"x\" strings: \"out\" }\n"
    "  arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 } }\n"
    /* backward: reads the saved local h from the popped workspace */
    "op { input: \"a\" input: \"W\" output: \"g\" output: \"W\" type: \"Do\"\n"
    "  is_gradient_op: true\n"
    "  arg { name: \"net\" n { name: \"fwd_grad\"\n"
    "    op { input: \"h\" input: \"x\" output: \"gx\" type: \"Add\" } } }\n"
    "  arg { name: \"inner_blobs\" strings: \"x\" strings: \"gx\" }\n"
    "  arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 } }\n";

static void test_do_gradient_pops_forward_workspace(void **state)
{
    struct env e;
    ct_status_t st = {0};
    const float x[1] = {3};
    const int64_t d[1] = {1};
    const ct_workspace_stack_t *stack;
    ct_netdef_t *def;
    ct_net_t *net = NULL;

    (void)state;
    env_init(&e, 1);
    tu_feed_f32(e.ws, "a", 1, d, x);
    assert_int_equal(run_txt(e.ws, k_grad, 2, &st), CT_OK);
    assert_true(fetch_f32(e.ws, "y")[0] == 12.0f);
    assert_true(fetch_f32(e.ws, "g")[0] == 12.0f);
    stack = ct_blob_get(ct_workspace_get_blob(e.ws, "W"),
                        &ct_blob_type_workspace_stack);
    assert_true(ct_workspace_stack_empty(stack));

    /* A gradient Do on an empty stack fails cleanly. */
    def =
        parse("name: \"g\"\n"
              "op { input: \"a\" input: \"W\" output: \"g\" output: \"W\" "
              "type: \"Do\" is_gradient_op: true\n"
              "  arg { name: \"net\" n { name: \"x\" } }\n"
              "  arg { name: \"inner_blobs\" strings: \"x\" strings: \"g\" }\n"
              "  arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 } }\n");
    assert_int_equal(ct_net_new(e.ws, def, NULL, &net, &st), CT_OK);
    tu_assert_status(&st, ct_net_run(net, &st), CT_ESTATE,
                     "Failed to initialize Do op workspace");
    ct_net_free(net);
    ct_netdef_free(def);
    env_destroy(&e);
}

/* ---- WorkspaceStack ---- */

static void test_stack_binding_mismatch_and_corruption(void **state)
{
    struct env e;
    ct_status_t st = {0};
    ct_workspace_stack_t *s;
    ct_workspace_t *c1, *c2, *c3;
    const char *in1[1] = {"x"}, *out1[1] = {"a"};
    const char *in2[1] = {"x"}, *out2[1] = {"b"};
    const char *in3[1] = {"y"}, *out3[1] = {"a"};
    const float v[1] = {1};
    const int64_t d[1] = {1};
    bool rebound;
    long top;

    (void)state;
    env_init(&e, 1);
    tu_feed_f32(e.ws, "a", 1, d, v);
    tu_feed_f32(e.ws, "b", 1, d, v);
    assert_int_equal(ct_workspace_stack_new(&s, &st), CT_OK);
    ct_workspace_stack_set_debug(s, true);
    assert_int_equal(ct_workspace_stack_push_forward(s, e.ws, in1, out1, 1, &c1,
                                                     &rebound, &st),
                     CT_OK);
    assert_true(ct_workspace_has_blob(c1, "x"));
    tu_assert_status(&st,
                     ct_workspace_stack_push_forward(s, e.ws, in2, out2, 1, &c2,
                                                     &rebound, &st),
                     CT_EINVAL, "Blob bindings mismatch");
    tu_assert_status(&st,
                     ct_workspace_stack_push_forward(s, e.ws, in3, out3, 1, &c2,
                                                     &rebound, &st),
                     CT_EINVAL, "Blob bindings mismatch");
    tu_assert_status(&st,
                     ct_workspace_stack_push_forward(s, e.ws, in1, out1, 0, &c2,
                                                     &rebound, &st),
                     CT_EINVAL, "Blob bindings mismatch");
    /* Reuse with a conflicting binding: Redefinition. */
    ct_workspace_stack_set_debug(s, false);
    assert_int_equal(
        ct_workspace_stack_reuse_last_forward(s, e.ws, in1, out1, 1, &c2, &st),
        CT_OK);
    assert_ptr_equal(c1, c2);
    tu_assert_status(
        &st,
        ct_workspace_stack_reuse_last_forward(s, e.ws, in2, out2, 1, &c2, &st),
        CT_EEXIST, "Redefinition");
    /* pop / push reuse the same workspace; clear keeps it. */
    assert_int_equal(
        ct_workspace_stack_pop_gradient(s, e.ws, NULL, NULL, 0, &c2, &st),
        CT_OK);
    assert_ptr_equal(c1, c2);
    assert_true(ct_workspace_stack_empty(s));
    assert_int_equal(
        ct_workspace_stack_pop_gradient(s, e.ws, NULL, NULL, 0, &c2, &st),
        CT_OK);
    assert_null(c2);
    assert_int_equal(ct_workspace_stack_push_forward(s, e.ws, in1, out1, 1, &c3,
                                                     &rebound, &st),
                     CT_OK);
    assert_ptr_equal(c1, c3);
    assert_false(rebound);
    /* copy_external leaves a local x: the next push re-binds it. */
    assert_int_equal(ct_workspace_copy_forwarded_tensors(c3, in1, 1, &st),
                     CT_OK);
    ct_workspace_stack_clear(s);
    assert_int_equal(ct_workspace_stack_push_forward(s, e.ws, in1, out1, 1, &c3,
                                                     &rebound, &st),
                     CT_OK);
    assert_true(rebound);
    assert_ptr_equal(ct_workspace_get_blob(c3, "x"),
                     ct_workspace_get_blob(e.ws, "a"));
    /* Corrupted: top beyond the workspaces. */
    top = s->top;
    s->top = (long)s->n_ws + 2;
    tu_assert_status(&st,
                     ct_workspace_stack_push_forward(s, e.ws, in1, out1, 1, &c3,
                                                     &rebound, &st),
                     CT_ESTATE, "Corrupted workspaces stack");
    tu_assert_status(
        &st, ct_workspace_stack_pop_gradient(s, e.ws, NULL, NULL, 0, &c3, &st),
        CT_ESTATE, "Corrupted workspaces stack");
    s->top = top;
    ct_workspace_stack_free(s);
    env_destroy(&e);
}

static void test_has_scope_and_create_scope(void **state)
{
    struct env e;
    ct_status_t st = {0};
    const float v[1] = {1};
    const int64_t d[1] = {1};
    const char *txt =
        "name: \"h\"\n"
        "op { output: \"W\" type: \"CreateScope\" }\n"
        "op { input: \"W\" output: \"before\" type: \"HasScope\" }\n"
        "op { input: \"W\" output: \"W\" type: \"Do\"\n"
        "  arg { name: \"net\" n { name: \"e\" } } }\n"
        "op { input: \"W\" output: \"after\" type: \"HasScope\" }\n";

    (void)state;
    env_init(&e, 1);
    assert_int_equal(run_txt(e.ws, txt, 2, &st), CT_OK);
    assert_false(*(const bool *)ct_tensor_cdata(tu_fetch(e.ws, "before")));
    assert_true(*(const bool *)ct_tensor_cdata(tu_fetch(e.ws, "after")));
    assert_int_equal(ct_tensor_numel(tu_fetch(e.ws, "after")), 1);
    tu_feed_f32(e.ws, "t", 1, d, v);
    tu_assert_status(&st,
                     run_txt(e.ws,
                             "name: \"b\" op { input: \"t\" output: \"o\" "
                             "type: \"HasScope\" }",
                             1, &st),
                     CT_ETYPE, "not a WorkspaceStack");
    env_destroy(&e);
}

/* ---- nesting and concurrency under the dag executor ---- */

/* A Do with scope `scope` running a dag subnet of two parallel Dos, each
 * running a dag subnet of two parallel busy NoOps and one Add writing
 * outer blob `out`. */
static void nested_op(char *buf, size_t len, const char *scope, const char *out)
{
    char inner[2][1024];
    int k;

    for (k = 0; k < 2; k++)
        snprintf(inner[k], sizeof(inner[k]),
                 "op { input: \"x\" input: \"S%d\" output: \"y%d\" "
                 "output: \"S%d\" type: \"Do\"\n"
                 "  arg { name: \"net\" n { name: \"leaf\" type: \"dag\" "
                 "num_workers: 2\n"
                 "    op { type: \"NoOp\" arg { name: \"busy_ns\" i: 2000000 "
                 "} }\n"
                 "    op { type: \"NoOp\" arg { name: \"busy_ns\" i: 2000000 "
                 "} }\n"
                 "    op { input: \"x\" input: \"x\" output: \"y\" "
                 "type: \"Add\" } } }\n"
                 "  arg { name: \"inner_blobs\" strings: \"x\" "
                 "strings: \"y\" }\n"
                 "  arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 } }\n",
                 k, k, k);
    snprintf(buf, len,
             "op { input: \"a\" input: \"%s\" output: \"%s\" output: \"%s\" "
             "type: \"Do\"\n"
             "  arg { name: \"net\" n { name: \"mid\" type: \"dag\" "
             "num_workers: 2\n"
             "    op { output: \"S0\" type: \"CreateScope\" }\n"
             "    op { output: \"S1\" type: \"CreateScope\" }\n%s%s"
             "    op { input: \"y0\" input: \"y1\" output: \"z\" "
             "type: \"Add\" } } }\n"
             "  arg { name: \"inner_blobs\" strings: \"x\" strings: \"z\" }\n"
             "  arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 } }\n",
             scope, out, scope, inner[0], inner[1]);
}

static void run_nested(int n_threads)
{
    struct env e;
    ct_status_t st = {0};
    char a[4096], b[4096], txt[9000];
    const float v[2] = {1, 2};
    const int64_t d[1] = {2};
    const float *z;

    env_init(&e, n_threads);
    tu_feed_f32(e.ws, "a", 1, d, v);
    nested_op(a, sizeof(a), "W1", "z1");
    nested_op(b, sizeof(b), "W2", "z2");
    snprintf(txt, sizeof(txt),
             "name: \"top\" type: \"dag\" num_workers: 2\n"
             "op { output: \"W1\" type: \"CreateScope\" }\n"
             "op { output: \"W2\" type: \"CreateScope\" }\n%s%s"
             "op { input: \"z1\" input: \"z2\" output: \"z\" type: \"Add\" }\n",
             a, b);
    assert_int_equal(run_txt(e.ws, txt, 5, &st), CT_OK);
    z = fetch_f32(e.ws, "z");
    assert_true(z[0] == 8.0f && z[1] == 16.0f);
    env_destroy(&e);
}

static void test_do_nested_dag_1_thread(void **state)
{
    (void)state;
    run_nested(1);
}

static void test_do_nested_dag_2_threads(void **state)
{
    (void)state;
    run_nested(2);
}

/* Four Do ops with their own scope blobs, each a 40 ms busy subnet, on a
 * 2-thread dag: the busy ops of two scopes run at the same time (an
 * observer on every subnet counts concurrent NoOps; no timing assertion).
 */
static void test_do_concurrent_scopes(void **state)
{
    struct env e;
    ct_status_t st = {0};
    char txt[8192];
    size_t off;
    struct tu_overlap *watch;
    int k, r;
    ct_netdef_t *def;
    ct_net_t *net = NULL;
    const float v[1] = {1};
    const int64_t d[1] = {1};

    (void)state;
    env_init(&e, 2);
    watch = tu_overlap_watch(e.eng, "NoOp");
    tu_feed_f32(e.ws, "a", 1, d, v);
    off = (size_t)snprintf(txt, sizeof(txt),
                           "name: \"par\" type: \"dag\" num_workers: 2\n");
    for (k = 0; k < 4; k++)
        off += (size_t)snprintf(txt + off, sizeof(txt) - off,
                                "op { output: \"S%d\" type: \"CreateScope\" "
                                "}\n",
                                k);
    for (k = 0; k < 4; k++)
        off += (size_t)snprintf(
            txt + off, sizeof(txt) - off,
            "op { input: \"a\" input: \"S%d\" output: \"o%d\" output: "
            "\"S%d\" type: \"Do\"\n"
            "  arg { name: \"net\" n { name: \"busy\"\n"
            "    op { type: \"NoOp\" arg { name: \"busy_ns\" i: 40000000 } }\n"
            "    op { input: \"x\" input: \"x\" output: \"y\" type: \"Add\" } "
            "} }\n"
            "  arg { name: \"inner_blobs\" strings: \"x\" strings: \"y\" }\n"
            "  arg { name: \"outer_blobs_idx\" ints: 0 ints: 1 } }\n",
            k, k, k);
    def = parse(txt);
    if (ct_net_new(e.ws, def, NULL, &net, &st) != CT_OK)
        fail_msg("%s", st.msg);
    /* Up to 10 runs: one in which two scopes overlap is enough (a run on
     * a machine too busy to schedule the worker may not overlap). */
    for (r = 0; r < 10 && tu_overlap_max(watch) < 2; r++)
        assert_int_equal(ct_net_run(net, &st), CT_OK);
    for (k = 0; k < 4; k++) {
        char name[8];
        snprintf(name, sizeof(name), "o%d", k);
        assert_true(fetch_f32(e.ws, name)[0] == 2.0f);
    }
    if (tu_overlap_max(watch) < 2)
        fail_msg("4 scopes on 2 threads never ran concurrently in %d runs", r);
    ct_net_free(net);
    ct_netdef_free(def);
    env_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_do_operator_outer_z),
        cmocka_unit_test(test_do_reuse_workspace),
        cmocka_unit_test(test_do_constructor_checks),
        cmocka_unit_test(test_do_inplace_outer_counts_once),
        cmocka_unit_test(test_do_gradient_pops_forward_workspace),
        cmocka_unit_test(test_stack_binding_mismatch_and_corruption),
        cmocka_unit_test(test_has_scope_and_create_scope),
        cmocka_unit_test(test_do_nested_dag_1_thread),
        cmocka_unit_test(test_do_nested_dag_2_threads),
        cmocka_unit_test(test_do_concurrent_scopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
