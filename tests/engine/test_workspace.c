/* Tests for engine/workspace.c, part 1: Caffe2's Workspace semantics
 * (spec §3.1) for local and shared blobs, including the BlobAccess and
 * Sharing behaviours pinned by caffe2/core/workspace_test.cc, renames,
 * listings, the net map, run_operator_once and allocation failures.
 * Forwarded names are in test_workspace_forward.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cortado/workspace.h"
#include "cortado/net.h"
#include "engine/engine_impl.h"
#include "test_util.h"

/* ---- fixtures: tests/engine/workspace_fixture.h ---- */
#include "workspace_fixture.h"

/* Runs fn(arg) in a child process and asserts that it aborts. */
static void expect_abort(void (*fn)(void *), void *arg)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(2);
        fn(arg);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void free_engine(void *eng)
{
    ct_engine_free(eng);
}

/* A ConstantFill op writing a [2] float tensor of `value` to `out`. */
static Caffe2__OperatorDef *fill_op(const char *name, const char *out,
                                    float value)
{
    Caffe2__OperatorDef *op = tu_op("ConstantFill", "", out);
    int64_t shape[1] = {2};

    tu_op_set_name(op, name);
    tu_arg_ints(op, "shape", 1, shape);
    tu_arg_f(op, "value", value);
    return op;
}

/* ---- tests: lifecycle ---- */

static void test_workspace_new_defaults(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    char buf[64];

    assert_ptr_equal(ct_workspace_engine(ws), engine_of(state));
    assert_string_equal(ct_workspace_root_folder(ws), ".");
    assert_string_equal(local_names(ws, buf, sizeof(buf)), "");
    assert_string_equal(all_names(ws, buf, sizeof(buf)), "");
    assert_int_equal(n_workspaces(engine_of(state)), 1);
}

static void test_workspace_new_copies_root_folder(void **state)
{
    char root[32] = "/data/models";
    struct ct_workspace_config cfg = {root, NULL};
    ct_workspace_t *ws;

    assert_int_equal(ct_workspace_new(engine_of(state), &cfg, &ws, NULL),
                     CT_OK);
    strcpy(root, "changed");
    assert_string_equal(ct_workspace_root_folder(ws), "/data/models");
    ct_workspace_free(ws);
}

static void test_workspace_new_counts_workspaces(void **state)
{
    ct_engine_t *eng = engine_of(state);
    ct_workspace_t *a, *b;

    assert_int_equal(n_workspaces(eng), 1);
    create(root_ws(state), "x");
    a = new_child(root_ws(state));
    b = new_forwarded1(root_ws(state), "ix", "x");
    assert_int_equal(n_workspaces(eng), 3);
    ct_workspace_free(a);
    assert_int_equal(n_workspaces(eng), 2);
    ct_workspace_free(b);
    assert_int_equal(n_workspaces(eng), 1);
}

static void test_workspace_free_null_is_noop(void **state)
{
    (void)state;
    ct_workspace_free(NULL);
}

static void test_workspace_new_alloc_failure_returns_enomem(void **state)
{
    ct_engine_t *eng = engine_of(state);
    struct ct_workspace_config cfg = {"/tmp", NULL};
    ct_workspace_t *ws;
    ct_status_t st;
    long k, live;
    int rc;

    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_new(eng, &cfg, &ws, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM, "workspace: out of memory");
        assert_null(ws);
        assert_int_equal(tu_alloc_live(), live);
        assert_int_equal(n_workspaces(eng), 1);
    }
    assert_int_equal(n_workspaces(eng), 2);
    ct_workspace_free(ws);
    assert_int_equal(n_workspaces(eng), 1);
}

static void test_engine_free_with_live_workspace_aborts(void **state)
{
    ct_engine_t *eng;
    ct_workspace_t *ws;

    (void)state;
    assert_int_equal(ct_engine_new(NULL, &eng, NULL), CT_OK);
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, NULL), CT_OK);
    expect_abort(free_engine, eng);
    ct_workspace_free(ws);
    ct_engine_free(eng);
}

static void test_workspace_free_releases_blobs_and_storage(void **state)
{
    ct_engine_t *eng = engine_of(state);
    ct_workspace_t *ws = new_child(root_ws(state));

    feed_seq(ws, "a", 4, 1.0f);
    feed_seq(ws, "b", 8, 1.0f);
    assert_true(ct_engine_mem_in_use(eng) == 48);
    ct_workspace_free(ws);
    assert_true(ct_engine_mem_in_use(eng) == 0);
}

/* ---- tests: BlobAccess ---- */

static void test_workspace_has_blob_empty_workspace_returns_false(void **state)
{
    ct_workspace_t *ws = root_ws(state);

    assert_false(ct_workspace_has_blob(ws, "x"));
    assert_null(ct_workspace_get_blob(ws, "x"));
}

static void test_workspace_create_blob_new_name_creates_empty(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    ct_blob_t *b = create(ws, "x");

    assert_non_null(b);
    assert_true(ct_blob_is_empty(b));
    assert_string_equal(ct_blob_name(b), "x");
    assert_true(ct_workspace_has_blob(ws, "x"));
    assert_ptr_equal(ct_workspace_get_blob(ws, "x"), b);
}

static void test_workspace_create_blob_existing_keeps_content(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    ct_tensor_t *t = feed_seq(ws, "x", 3, 5.0f);
    ct_blob_t *b = ct_workspace_get_blob(ws, "x");

    assert_ptr_equal(create(ws, "x"), b);
    assert_ptr_equal(ct_blob_get_tensor(b), t);
    assert_true(((float *)ct_tensor_data(t))[2] == 7.0f);
}

static void
test_workspace_create_local_blob_existing_keeps_content(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    ct_tensor_t *t = feed_seq(ws, "x", 3, 5.0f);
    ct_blob_t *b = NULL;

    assert_int_equal(ct_workspace_create_local_blob(ws, "x", &b, NULL), CT_OK);
    assert_ptr_equal(ct_blob_get_tensor(b), t);
}

static void
test_workspace_remove_blob_then_missing_returns_enotfound(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    ct_status_t st;
    int rc;

    create(ws, "x");
    assert_int_equal(ct_workspace_remove_blob(ws, "x", &st), CT_OK);
    assert_false(ct_workspace_has_blob(ws, "x"));
    rc = ct_workspace_remove_blob(ws, "x", &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Blob x is not in the local blob list");
}

static void test_workspace_remove_blob_frees_tensor_storage(void **state)
{
    ct_workspace_t *ws = root_ws(state);

    feed_seq(ws, "x", 4, 0.0f);
    assert_true(ct_engine_mem_in_use(engine_of(state)) == 16);
    assert_int_equal(ct_workspace_remove_blob(ws, "x", NULL), CT_OK);
    assert_true(ct_engine_mem_in_use(engine_of(state)) == 0);
}

static void
test_workspace_create_blob_alloc_failure_leaves_unchanged(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    ct_blob_t *b;
    ct_status_t st;
    char buf[64];
    long k, live;
    int rc;

    create(ws, "a");
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_create_blob(ws, "b", &b, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM,
                         "out of memory creating blob \"b\"");
        assert_null(b);
        assert_false(ct_workspace_has_blob(ws, "b"));
        assert_string_equal(local_names(ws, buf, sizeof(buf)), "a");
        /* A grown hash table may be kept; nothing else. */
        assert_true(tu_alloc_live() - live <= 1);
    }
    assert_true(k >= 3); /* blob, its name, the map's key copy */
    assert_ptr_equal(ct_workspace_get_blob(ws, "b"), b);
}

static void
test_workspace_create_local_blob_alloc_failure_leaves_unchanged(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *ws = new_child(parent);
    ct_blob_t *pb = create(parent, "a"), *b;
    ct_status_t st;
    long k, live;
    int rc;

    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_create_local_blob(ws, "a", &b, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM, "creating blob \"a\"");
        assert_ptr_equal(ct_workspace_get_blob(ws, "a"), pb);
        assert_true(tu_alloc_live() - live <= 1);
    }
    assert_ptr_not_equal(b, pb);
    assert_ptr_equal(ct_workspace_get_blob(ws, "a"), b);
    ct_workspace_free(ws);
}

/* ---- tests: Sharing ---- */

static void test_workspace_shared_child_sees_parent_not_reverse(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child = new_child(parent);
    ct_blob_t *a = create(parent, "a");
    ct_blob_t *b;

    b = NULL;
    assert_int_equal(ct_workspace_create_local_blob(child, "b", &b, NULL),
                     CT_OK);
    assert_true(ct_workspace_has_blob(child, "a"));
    assert_ptr_equal(ct_workspace_get_blob(child, "a"), a);
    assert_true(ct_workspace_has_blob(child, "b"));
    assert_false(ct_workspace_has_blob(parent, "b"));
    ct_workspace_free(child);
}

static void
test_workspace_create_blob_parent_only_name_returns_parent_blob(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child = new_child(parent);
    ct_blob_t *a = create(parent, "a");
    char buf[64];

    assert_ptr_equal(create(child, "a"), a);
    assert_string_equal(local_names(child, buf, sizeof(buf)), "");
    ct_workspace_free(child);
}

static void test_workspace_create_local_blob_shadows_parent(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child = new_child(parent);
    ct_blob_t *a = create(parent, "a");
    ct_blob_t *local = NULL;

    assert_int_equal(ct_workspace_create_local_blob(child, "a", &local, NULL),
                     CT_OK);
    assert_ptr_not_equal(local, a);
    assert_ptr_equal(ct_workspace_get_blob(child, "a"), local);
    assert_ptr_equal(ct_workspace_get_blob(parent, "a"), a);
    /* Removing the shadow makes the parent's blob visible again. */
    assert_int_equal(ct_workspace_remove_blob(child, "a", NULL), CT_OK);
    assert_ptr_equal(ct_workspace_get_blob(child, "a"), a);
    ct_workspace_free(child);
}

static void
test_workspace_remove_blob_parent_only_returns_enotfound(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child = new_child(parent);
    ct_status_t st;
    int rc;

    create(parent, "a");
    rc = ct_workspace_remove_blob(child, "a", &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Blob a is not in the local blob list");
    assert_true(ct_workspace_has_blob(parent, "a"));
    ct_workspace_free(child);
}

static void test_workspace_shared_chain_reads_through_three_levels(void **state)
{
    ct_workspace_t *g = root_ws(state);
    ct_workspace_t *p = new_child(g);
    ct_workspace_t *c = new_child(p);
    ct_blob_t *x = create(g, "x");
    ct_blob_t *y = create(p, "y");

    assert_ptr_equal(ct_workspace_get_blob(c, "x"), x);
    assert_ptr_equal(ct_workspace_get_blob(c, "y"), y);
    assert_false(ct_workspace_has_blob(g, "y"));
    assert_ptr_equal(create(c, "x"), x);
    ct_workspace_free(c);
    ct_workspace_free(p);
}

/* ---- tests: rename ---- */

static void test_workspace_rename_blob_moves_blob(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    ct_tensor_t *t = feed_seq(ws, "old", 2, 0.0f);
    ct_blob_t *b = ct_workspace_get_blob(ws, "old");

    assert_int_equal(ct_workspace_rename_blob(ws, "old", "new", NULL), CT_OK);
    assert_false(ct_workspace_has_blob(ws, "old"));
    assert_ptr_equal(ct_workspace_get_blob(ws, "new"), b);
    assert_string_equal(ct_blob_name(b), "new");
    assert_ptr_equal(ct_blob_get_tensor(b), t);
}

static void test_workspace_rename_blob_missing_returns_enotfound(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child = new_child(parent);
    ct_status_t st;
    int rc;

    rc = ct_workspace_rename_blob(parent, "ghost", "x", &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Blob ghost is not in the local blob list");
    /* A parent's blob is not local to the child. */
    create(parent, "p");
    rc = ct_workspace_rename_blob(child, "p", "q", &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Blob p is not in the local blob list");
    assert_true(ct_workspace_has_blob(parent, "p"));
    ct_workspace_free(child);
}

static void test_workspace_rename_blob_taken_name_returns_eexist(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child = new_child(parent);
    const char *inner = "fw", *outer = "p";
    ct_status_t st;
    char buf[64];
    int rc;

    create(parent, "p");
    create(child, "a");
    create(child, "b");
    assert_int_equal(ct_workspace_add_blob_mapping(child, parent, &inner,
                                                   &outer, 1, false, NULL),
                     CT_OK);
    rc = ct_workspace_rename_blob(child, "a", "b", &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Blob b is already in the workspace");
    rc = ct_workspace_rename_blob(child, "a", "p", &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Blob p is already in the workspace");
    rc = ct_workspace_rename_blob(child, "a", "fw", &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Blob fw is already in the workspace");
    rc = ct_workspace_rename_blob(child, "a", "a", &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Blob a is already in the workspace");
    assert_string_equal(local_names(child, buf, sizeof(buf)), "a,b");
    ct_workspace_free(child);
}

static void
test_workspace_rename_blob_alloc_failure_leaves_unchanged(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    ct_blob_t *b = create(ws, "old");
    ct_status_t st;
    char buf[64];
    long k, live;
    int rc;

    create(ws, "other");
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_rename_blob(ws, "old", "new", &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM,
                         "out of memory renaming blob old to new");
        assert_ptr_equal(ct_workspace_get_blob(ws, "old"), b);
        assert_string_equal(ct_blob_name(b), "old");
        assert_string_equal(local_names(ws, buf, sizeof(buf)), "old,other");
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_int_equal(k, 3); /* the blob's name, the map's key */
    assert_string_equal(ct_blob_name(b), "new");
    assert_string_equal(local_names(ws, buf, sizeof(buf)), "new,other");
}

/* ---- tests: listing ---- */

static void test_workspace_list_local_blobs_sorted(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    const char **names;
    ct_status_t st;
    char buf[128];
    size_t n;

    create(ws, "zeta");
    create(ws, "alpha");
    create(ws, "mid");
    create(ws, "Beta");
    assert_string_equal(local_names(ws, buf, sizeof(buf)),
                        "Beta,alpha,mid,zeta");
    assert_int_equal(ct_workspace_remove_blob(ws, "mid", NULL), CT_OK);
    assert_int_equal(ct_workspace_list_local_blobs(ws, &names, &n, &st), CT_OK);
    assert_int_equal(n, 3);
    /* The strings are the workspace's own: borrowed, stable until the
     * maps change. */
    assert_string_equal(names[2], "zeta");
    ct_free((void *)names);
}

static void test_workspace_list_empty_returns_zero(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    const char **names = (const char **)state;
    size_t n = 7;

    assert_int_equal(ct_workspace_list_local_blobs(ws, &names, &n, NULL),
                     CT_OK);
    assert_int_equal(n, 0);
    ct_free((void *)names);
    assert_int_equal(ct_workspace_list_blobs(ws, &names, &n, NULL), CT_OK);
    assert_int_equal(n, 0);
    ct_free((void *)names);
}

static void
test_workspace_list_blobs_includes_parents_with_duplicates(void **state)
{
    ct_workspace_t *g = root_ws(state);
    ct_workspace_t *p = new_child(g);
    ct_workspace_t *c = new_child(p);
    ct_blob_t *b = NULL;
    char buf[128];

    create(g, "g1");
    create(g, "shadowed");
    create(p, "p1");
    create(c, "c1");
    assert_int_equal(ct_workspace_create_local_blob(c, "shadowed", &b, NULL),
                     CT_OK);
    assert_string_equal(local_names(c, buf, sizeof(buf)), "c1,shadowed");
    assert_string_equal(all_names(c, buf, sizeof(buf)),
                        "c1,g1,p1,shadowed,shadowed");
    assert_string_equal(all_names(g, buf, sizeof(buf)), "g1,shadowed");
    ct_workspace_free(c);
    ct_workspace_free(p);
}

static void test_workspace_list_blobs_alloc_failure_returns_enomem(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    const char **names;
    ct_status_t st;
    char name[16];
    long k, live;
    size_t n;
    int i, rc;

    for (i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "b%02d", i);
        create(ws, name);
    }
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_list_blobs(ws, &names, &n, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM,
                         "out of memory listing blob names");
        assert_null(names);
        assert_int_equal(n, 0);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_int_equal(n, 20);
    assert_string_equal(names[19], "b19");
    ct_free((void *)names);
}

/* ---- tests: nets ---- */

static void test_workspace_create_net_registers_net(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("empty", "", "");
    ct_net_t *net = NULL;
    ct_status_t st;

    assert_int_equal(ct_workspace_create_net(ws, def, false, &net, &st), CT_OK);
    assert_non_null(net);
    assert_ptr_equal(ct_workspace_get_net(ws, "empty"), net);
    assert_string_equal(ct_net_name(net), "empty");
    assert_null(ct_workspace_get_net(ws, "other"));
    tu_net_free(def);
}

static void test_workspace_create_net_without_name_returns_einval(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("", "", "");
    ct_net_t *net = (ct_net_t *)state;
    ct_status_t st;
    int rc;

    rc = ct_workspace_create_net(ws, def, false, &net, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "Net definition should have a name.");
    assert_null(net);
    free(def->name);
    def->name = NULL; /* proto2: name absent */
    rc = ct_workspace_create_net(ws, def, true, &net, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "Net definition should have a name.");
    tu_net_free(def);
}

static void test_workspace_create_net_existing_returns_eexist(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("n", "", "");
    ct_net_t *first, *second = (ct_net_t *)state;
    ct_status_t st;
    int rc;

    assert_int_equal(ct_workspace_create_net(ws, def, false, &first, NULL),
                     CT_OK);
    rc = ct_workspace_create_net(ws, def, false, &second, &st);
    tu_assert_status(&st, rc, CT_EEXIST,
                     "I respectfully refuse to overwrite an existing net of "
                     "the same name \"n\", unless you pass overwrite=true");
    assert_null(second);
    assert_ptr_equal(ct_workspace_get_net(ws, "n"), first);
    tu_net_free(def);
}

static void test_workspace_create_net_overwrite_replaces_net(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *a = tu_net("n", "", "");
    Caffe2__NetDef *b = tu_net("n", "", "");
    ct_net_t *net;
    long live;

    b->type = strdup("dag");
    assert_non_null(b->type);
    assert_int_equal(ct_workspace_create_net(ws, a, false, &net, NULL), CT_OK);
    assert_int_equal(ct_net_executor(net), CT_EXECUTOR_SIMPLE);
    live = tu_alloc_live();
    assert_int_equal(ct_workspace_create_net(ws, b, true, &net, NULL), CT_OK);
    assert_ptr_equal(ct_workspace_get_net(ws, "n"), net);
    assert_int_equal(ct_net_executor(net), CT_EXECUTOR_DAG);
    /* The old net was freed, not leaked: a "dag" net of zero ops may
     * differ in size, so only compare the block count loosely. */
    assert_int_equal(ct_workspace_delete_net(ws, "n", NULL), CT_OK);
    assert_true(tu_alloc_live() <= live);
    tu_net_free(a);
    tu_net_free(b);
}

static void test_workspace_create_net_bad_def_leaves_map_unchanged(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("bad", "", "");
    ct_net_t *net = (ct_net_t *)state;
    ct_status_t st;
    int rc;

    def->type = strdup("no_such_executor");
    assert_non_null(def->type);
    rc = ct_workspace_create_net(ws, def, false, &net, &st);
    assert_int_not_equal(rc, CT_OK);
    assert_int_equal(st.code, rc);
    assert_null(net);
    assert_null(ct_workspace_get_net(ws, "bad"));
    tu_net_free(def);
}

static void
test_workspace_create_net_alloc_failure_leaves_unchanged(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("n", "", "");
    ct_net_t *net;
    ct_status_t st;
    long k, live;
    int rc;

    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_create_net(ws, def, false, &net, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        assert_int_equal(rc, CT_ENOMEM);
        assert_int_equal(st.code, CT_ENOMEM);
        assert_null(net);
        assert_null(ct_workspace_get_net(ws, "n"));
        assert_true(tu_alloc_live() - live <= 1); /* a grown table */
    }
    assert_ptr_equal(ct_workspace_get_net(ws, "n"), net);
    tu_net_free(def);
}

static void
test_workspace_delete_net_removes_and_missing_returns_enotfound(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("n", "", "");
    ct_status_t st;
    int rc;

    assert_int_equal(ct_workspace_create_net(ws, def, false, NULL, NULL),
                     CT_OK);
    assert_int_equal(ct_workspace_delete_net(ws, "n", &st), CT_OK);
    assert_null(ct_workspace_get_net(ws, "n"));
    rc = ct_workspace_delete_net(ws, "n", &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND, "Network n does not exist");
    tu_net_free(def);
}

static void test_workspace_run_net_missing_returns_enotfound(void **state)
{
    ct_status_t st;
    int rc;

    rc = ct_workspace_run_net(root_ws(state), "nope", &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND, "Network nope does not exist");
}

static void test_workspace_run_net_runs_registered_net(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("init", "", "Y");
    ct_tensor_t *y;
    ct_status_t st;

    tu_net_add_op(def, fill_op("fill", "Y", 2.5f));
    assert_int_equal(ct_workspace_create_net(ws, def, false, NULL, &st), CT_OK);
    /* Caffe2 creates output blobs when the net is built. */
    assert_true(ct_workspace_has_blob(ws, "Y"));
    assert_int_equal(ct_workspace_run_net(ws, "init", &st), CT_OK);
    y = tu_fetch(ws, "Y");
    assert_int_equal(ct_tensor_numel(y), 2);
    assert_true(((float *)ct_tensor_data(y))[1] == 2.5f);
    tu_net_free(def);
}

static void test_workspace_run_net_once_leaves_no_net(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("once", "", "");
    ct_status_t st;

    tu_net_add_op(def, fill_op("fill", "Z", -1.0f));
    assert_int_equal(ct_workspace_run_net_once(ws, def, &st), CT_OK);
    assert_null(ct_workspace_get_net(ws, "once"));
    assert_true(((float *)ct_tensor_data(tu_fetch(ws, "Z")))[0] == -1.0f);
    tu_net_free(def);
}

static void test_workspace_run_net_once_bad_net_returns_error(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__NetDef *def = tu_net("once", "", "");
    ct_status_t st;
    int rc;

    tu_net_add_op(def, tu_op("NoSuchOp", "", "Z"));
    rc = ct_workspace_run_net_once(ws, def, &st);
    assert_int_equal(rc, CT_ENOTFOUND);
    assert_non_null(strstr(st.msg, "NoSuchOp"));
    assert_null(ct_workspace_get_net(ws, "once"));
    tu_net_free(def);
}

static void test_workspace_free_frees_registered_nets(void **state)
{
    ct_workspace_t *ws = new_child(root_ws(state));
    Caffe2__NetDef *def = tu_net("n", "", "");
    long live = tu_alloc_live();

    assert_int_equal(ct_workspace_create_net(ws, def, false, NULL, NULL),
                     CT_OK);
    ct_workspace_free(ws);
    assert_true(tu_alloc_live() < live);
    tu_net_free(def);
}

/* ---- tests: run_operator_once ---- */

static void test_workspace_run_operator_once_runs_op(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__OperatorDef *op = fill_op("f", "out", 4.0f);
    ct_status_t st;

    assert_int_equal(ct_workspace_run_operator_once(ws, op, &st), CT_OK);
    assert_true(((float *)ct_tensor_data(tu_fetch(ws, "out")))[1] == 4.0f);
    tu_op_free(op);
}

static void
test_workspace_run_operator_once_unknown_type_is_prefixed(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__OperatorDef *op = tu_op("NoSuchOp", "", "out");
    ct_status_t st;
    int rc;

    tu_op_set_name(op, "mystery");
    rc = ct_workspace_run_operator_once(ws, op, &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND, "op \"mystery\" (NoSuchOp): ");
    assert_non_null(strstr(st.msg, "NoSuchOp\""));
    assert_string_equal(st.op, "NoSuchOp");
    assert_int_equal(strncmp(st.msg, "op \"mystery\"", 12), 0);
    tu_op_free(op);
}

static void
test_workspace_run_operator_once_missing_input_is_prefixed(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__OperatorDef *op = tu_op("Relu", "X", "Y");
    ct_status_t st;
    int rc;

    rc = ct_workspace_run_operator_once(ws, op, &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Encountered a non-existing input blob: X");
    assert_int_equal(strncmp(st.msg, "op \"\" (Relu): ", 14), 0);
    tu_op_free(op);
}

static void
test_workspace_run_operator_once_run_failure_is_prefixed(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    Caffe2__OperatorDef *op = tu_op("Relu", "X", "Y");
    ct_status_t st;
    int rc;

    tu_op_set_name(op, "r");
    create(ws, "X"); /* exists, but holds no tensor */
    rc = ct_workspace_run_operator_once(ws, op, &st);
    assert_int_not_equal(rc, CT_OK);
    assert_int_equal(st.code, rc);
    assert_int_equal(strncmp(st.msg, "op \"r\" (Relu): ", 15), 0);
    tu_op_free(op);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_env, teardown_env)
    const struct CMUnitTest tests[] = {
        T(test_workspace_new_defaults),
        T(test_workspace_new_copies_root_folder),
        T(test_workspace_new_counts_workspaces),
        T(test_workspace_free_null_is_noop),
        T(test_workspace_new_alloc_failure_returns_enomem),
        cmocka_unit_test(test_engine_free_with_live_workspace_aborts),
        T(test_workspace_free_releases_blobs_and_storage),
        T(test_workspace_has_blob_empty_workspace_returns_false),
        T(test_workspace_create_blob_new_name_creates_empty),
        T(test_workspace_create_blob_existing_keeps_content),
        T(test_workspace_create_local_blob_existing_keeps_content),
        T(test_workspace_remove_blob_then_missing_returns_enotfound),
        T(test_workspace_remove_blob_frees_tensor_storage),
        T(test_workspace_create_blob_alloc_failure_leaves_unchanged),
        T(test_workspace_create_local_blob_alloc_failure_leaves_unchanged),
        T(test_workspace_shared_child_sees_parent_not_reverse),
        T(test_workspace_create_blob_parent_only_name_returns_parent_blob),
        T(test_workspace_create_local_blob_shadows_parent),
        T(test_workspace_remove_blob_parent_only_returns_enotfound),
        T(test_workspace_shared_chain_reads_through_three_levels),
        T(test_workspace_rename_blob_moves_blob),
        T(test_workspace_rename_blob_missing_returns_enotfound),
        T(test_workspace_rename_blob_taken_name_returns_eexist),
        T(test_workspace_rename_blob_alloc_failure_leaves_unchanged),
        T(test_workspace_list_local_blobs_sorted),
        T(test_workspace_list_empty_returns_zero),
        T(test_workspace_list_blobs_includes_parents_with_duplicates),
        T(test_workspace_list_blobs_alloc_failure_returns_enomem),
        T(test_workspace_create_net_registers_net),
        T(test_workspace_create_net_without_name_returns_einval),
        T(test_workspace_create_net_existing_returns_eexist),
        T(test_workspace_create_net_overwrite_replaces_net),
        T(test_workspace_create_net_bad_def_leaves_map_unchanged),
        T(test_workspace_create_net_alloc_failure_leaves_unchanged),
        T(test_workspace_delete_net_removes_and_missing_returns_enotfound),
        T(test_workspace_run_net_missing_returns_enotfound),
        T(test_workspace_run_net_runs_registered_net),
        T(test_workspace_run_net_once_leaves_no_net),
        T(test_workspace_run_net_once_bad_net_returns_error),
        T(test_workspace_free_frees_registered_nets),
        T(test_workspace_run_operator_once_runs_op),
        T(test_workspace_run_operator_once_unknown_type_is_prefixed),
        T(test_workspace_run_operator_once_missing_input_is_prefixed),
        T(test_workspace_run_operator_once_run_failure_is_prefixed),
    };
#undef T

    (void)tu_alloc_live(); /* count every block from the start */
    return cmocka_run_group_tests_name("engine.workspace", tests, NULL, NULL);
}
