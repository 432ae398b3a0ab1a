/* Tests for engine/workspace.c, part 2: forwarded names (Caffe2's
 * forwarded_blobs_, spec §3.1): the forwarding constructor,
 * AddBlobMapping (including the BlobMapping behaviour pinned by
 * caffe2/core/workspace_test.cc), lazy resolution through chains of
 * parents, removed parent blobs and CopyForwardedTensors. Part 1 is
 * test_workspace.c; both share tests/engine/workspace_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/workspace.h"
#include "engine/engine_impl.h"
#include "test_util.h"

/* ---- fixtures: tests/engine/workspace_fixture.h ---- */
#include "workspace_fixture.h"

/* ---- tests: BlobMapping ---- */

static void test_workspace_new_forwarded_sees_only_inner_name(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_blob_t *a = create(parent, "a");
    ct_workspace_t *child;

    create(parent, "other");
    child = new_forwarded1(parent, "inner_a", "a");
    assert_true(ct_workspace_has_blob(child, "inner_a"));
    assert_ptr_equal(ct_workspace_get_blob(child, "inner_a"), a);
    assert_false(ct_workspace_has_blob(child, "a"));
    assert_false(ct_workspace_has_blob(child, "other"));
    assert_false(ct_workspace_has_blob(parent, "inner_a"));
    ct_workspace_free(child);
}

static void
test_workspace_new_forwarded_missing_target_returns_enotfound(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    const char *inner[2] = {"i1", "i2"};
    const char *outer[2] = {"a", "missing"};
    ct_workspace_t *child = (ct_workspace_t *)state;
    ct_status_t st;
    long live;
    int rc;

    create(parent, "a");
    live = tu_alloc_live();
    rc = ct_workspace_new_forwarded(parent, inner, outer, 2, &child, &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Invalid parent workspace blob: missing");
    assert_null(child);
    assert_int_equal(n_workspaces(engine_of(state)), 1);
    assert_int_equal(tu_alloc_live(), live);
}

static void
test_workspace_new_forwarded_alloc_failure_returns_enomem(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    const char *inner[2] = {"i1", "i2"};
    const char *outer[2] = {"a", "b"};
    ct_workspace_t *child;
    ct_status_t st;
    long k, live;
    int rc;

    create(parent, "a");
    create(parent, "b");
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_new_forwarded(parent, inner, outer, 2, &child, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        assert_int_equal(rc, CT_ENOMEM);
        assert_int_equal(st.code, CT_ENOMEM);
        assert_null(child);
        assert_int_equal(tu_alloc_live(), live);
        assert_int_equal(n_workspaces(engine_of(state)), 1);
    }
    assert_true(ct_workspace_has_blob(child, "i2"));
    ct_workspace_free(child);
}

static void test_workspace_add_blob_mapping_adds_inner_only(void **state)
{
    ct_workspace_t *p1 = root_ws(state);
    ct_workspace_t *p2, *child;
    ct_blob_t *b;
    const char *inner = "inner_b", *outer = "b";

    create(p1, "a");
    assert_int_equal(ct_workspace_new(engine_of(state), NULL, &p2, NULL),
                     CT_OK);
    b = create(p2, "b");
    child = new_forwarded1(p1, "inner_a", "a");
    assert_int_equal(ct_workspace_add_blob_mapping(child, p2, &inner, &outer, 1,
                                                   false, NULL),
                     CT_OK);
    assert_ptr_equal(ct_workspace_get_blob(child, "inner_b"), b);
    assert_false(ct_workspace_has_blob(child, "b"));
    assert_true(ct_workspace_has_blob(child, "inner_a"));
    ct_workspace_free(child);
    ct_workspace_free(p2);
}

static void
test_workspace_add_blob_mapping_missing_target_returns_enotfound(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child = new_child(parent);
    const char *inner[2] = {"ok", "bad"};
    const char *outer[2] = {"a", "nope"};
    ct_status_t st;
    int rc;

    create(parent, "a");
    rc = ct_workspace_add_blob_mapping(child, parent, inner, outer, 2, false,
                                       &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Invalid parent workspace blob nope");
    /* Atomic: the valid first entry was not recorded either. */
    assert_false(ct_workspace_has_blob(child, "ok"));
    ct_workspace_free(child);
}

static void
test_workspace_add_blob_mapping_null_parent_returns_einval(void **state)
{
    ct_workspace_t *ws = root_ws(state);
    const char *inner = "x", *outer = "y";
    ct_status_t st;
    int rc;

    rc = ct_workspace_add_blob_mapping(ws, NULL, &inner, &outer, 1, false, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "Parent workspace must be specified");
}

static void
test_workspace_add_blob_mapping_same_binding_is_idempotent(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_blob_t *a = create(parent, "a");
    ct_workspace_t *child = new_forwarded1(parent, "ia", "a");
    const char *inner = "ia", *outer = "a";
    char buf[64];

    assert_int_equal(ct_workspace_add_blob_mapping(child, parent, &inner,
                                                   &outer, 1, false, NULL),
                     CT_OK);
    assert_ptr_equal(ct_workspace_get_blob(child, "ia"), a);
    assert_string_equal(all_names(child, buf, sizeof(buf)), "ia");
    ct_workspace_free(child);
}

static void
test_workspace_add_blob_mapping_other_target_returns_eexist(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_blob_t *a = create(parent, "a");
    ct_workspace_t *child = new_forwarded1(parent, "ia", "a");
    const char *inner = "ia", *outer = "b";
    ct_status_t st;
    int rc;

    create(parent, "b");
    rc = ct_workspace_add_blob_mapping(child, parent, &inner, &outer, 1, false,
                                       &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Redefinition of blob ia");
    /* skip_defined does not cover a conflicting forward. */
    rc = ct_workspace_add_blob_mapping(child, parent, &inner, &outer, 1, true,
                                       &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Redefinition of blob ia");
    assert_ptr_equal(ct_workspace_get_blob(child, "ia"), a);
    ct_workspace_free(child);
}

static void
test_workspace_add_blob_mapping_other_parent_returns_eexist(void **state)
{
    ct_workspace_t *p1 = root_ws(state);
    ct_workspace_t *p2 = new_child(p1);
    ct_workspace_t *child;
    const char *inner = "ia", *outer = "a";
    ct_status_t st;
    int rc;

    create(p1, "a");
    child = new_forwarded1(p1, "ia", "a");
    /* p2 sees "a" through sharing, but it is another workspace. */
    rc =
        ct_workspace_add_blob_mapping(child, p2, &inner, &outer, 1, false, &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Redefinition of blob ia");
    ct_workspace_free(child);
    ct_workspace_free(p2);
}

static void
test_workspace_add_blob_mapping_visible_inner_returns_eexist(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child = new_child(parent);
    ct_workspace_t *other;
    const char *inner = "x", *outer = "a";
    ct_blob_t *x;
    ct_status_t st;
    int rc;

    assert_int_equal(ct_workspace_new(engine_of(state), NULL, &other, NULL),
                     CT_OK);
    create(other, "a");
    x = create(child, "x");
    rc = ct_workspace_add_blob_mapping(child, other, &inner, &outer, 1, false,
                                       &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Redefinition of blob x");
    assert_ptr_equal(ct_workspace_get_blob(child, "x"), x);
    /* Visible through the shared parent counts too. */
    create(parent, "y");
    inner = "y";
    rc = ct_workspace_add_blob_mapping(child, other, &inner, &outer, 1, false,
                                       &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Redefinition of blob y");
    ct_workspace_free(child);
    ct_workspace_free(other);
}

static void
test_workspace_add_blob_mapping_skip_defined_skips_visible(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child;
    ct_blob_t *pa = create(parent, "a");
    ct_blob_t *pb = create(parent, "b");
    ct_blob_t *local = NULL;
    const char *inner[2] = {"x", "y"};
    const char *outer[2] = {"a", "b"};

    assert_int_equal(ct_workspace_new(engine_of(state), NULL, &child, NULL),
                     CT_OK);
    assert_int_equal(ct_workspace_create_local_blob(child, "x", &local, NULL),
                     CT_OK);
    assert_int_equal(ct_workspace_add_blob_mapping(child, parent, inner, outer,
                                                   2, true, NULL),
                     CT_OK);
    assert_ptr_equal(ct_workspace_get_blob(child, "x"), local);
    assert_ptr_equal(ct_workspace_get_blob(child, "y"), pb);
    (void)pa;
    ct_workspace_free(child);
}

static void
test_workspace_add_blob_mapping_duplicate_inner_in_batch(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child;
    const char *inner[3] = {"x", "x", "z"};
    const char *same[3] = {"a", "a", "a"};
    const char *diff[3] = {"a", "b", "a"};
    ct_status_t st;
    char buf[64];
    int rc;

    create(parent, "a");
    create(parent, "b");
    assert_int_equal(ct_workspace_new(engine_of(state), NULL, &child, NULL),
                     CT_OK);
    rc = ct_workspace_add_blob_mapping(child, parent, inner, diff, 3, false,
                                       &st);
    tu_assert_status(&st, rc, CT_EEXIST, "Redefinition of blob x");
    assert_string_equal(all_names(child, buf, sizeof(buf)), "");
    assert_int_equal(ct_workspace_add_blob_mapping(child, parent, inner, same,
                                                   3, false, &st),
                     CT_OK);
    assert_string_equal(all_names(child, buf, sizeof(buf)), "x,z");
    ct_workspace_free(child);
}

static void
test_workspace_add_blob_mapping_alloc_failure_leaves_unchanged(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    const char *inner[12], *outer[12];
    char in_names[12][16], out_names[12][16];
    ct_workspace_t *child;
    ct_status_t st;
    char buf[256];
    long k, live;
    int i, rc;

    create(parent, "k");
    child = new_forwarded1(parent, "keep", "k");
    /* Twelve more forwards make the map grow twice. */
    for (i = 0; i < 12; i++) {
        snprintf(in_names[i], sizeof(in_names[i]), "i%02d", i);
        snprintf(out_names[i], sizeof(out_names[i]), "o%02d", i);
        create(parent, out_names[i]);
        inner[i] = in_names[i];
        outer[i] = out_names[i];
    }
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_add_blob_mapping(child, parent, inner, outer, 12,
                                           false, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM,
                         "out of memory adding 12 blob forwards");
        assert_string_equal(all_names(child, buf, sizeof(buf)), "keep");
        assert_true(tu_alloc_live() - live <= 1); /* a grown table */
    }
    assert_true(k > 12);
    assert_string_equal(all_names(child, buf, sizeof(buf)),
                        "i00,i01,i02,i03,i04,i05,i06,i07,i08,i09,i10,i11,"
                        "keep");
    ct_workspace_free(child);
}

static void test_workspace_forwarding_chain_three_levels(void **state)
{
    ct_workspace_t *g = root_ws(state);
    ct_blob_t *x = create(g, "x");
    ct_workspace_t *p = new_forwarded1(g, "px", "x");
    ct_workspace_t *c = new_forwarded1(p, "cx", "px");

    assert_ptr_equal(ct_workspace_get_blob(c, "cx"), x);
    assert_false(ct_workspace_has_blob(c, "px"));
    assert_false(ct_workspace_has_blob(c, "x"));
    assert_ptr_equal(create(c, "cx"), x);
    ct_workspace_free(c);
    ct_workspace_free(p);
}

static void
test_workspace_forward_removed_parent_blob_returns_enotfound(void **state)
{
    ct_workspace_t *g = root_ws(state);
    ct_workspace_t *p, *c;
    ct_blob_t *b = (ct_blob_t *)state, *x2;
    ct_status_t st;
    char buf[64];
    int rc;

    create(g, "x");
    p = new_forwarded1(g, "px", "x");
    c = new_forwarded1(p, "cx", "px");
    assert_int_equal(ct_workspace_remove_blob(g, "x", NULL), CT_OK);
    assert_false(ct_workspace_has_blob(c, "cx"));
    assert_null(ct_workspace_get_blob(c, "cx"));
    assert_false(ct_workspace_has_blob(p, "px"));
    rc = ct_workspace_create_blob(c, "cx", &b, &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Blob cx is forwarded to blob px of the parent "
                     "workspace, which no longer has it");
    assert_null(b);
    assert_string_equal(local_names(c, buf, sizeof(buf)), "");
    assert_string_equal(all_names(c, buf, sizeof(buf)), "");
    /* Resolution is lazy: a new "x" in the grandparent is seen at once. */
    x2 = create(g, "x");
    assert_ptr_equal(ct_workspace_get_blob(c, "cx"), x2);
    assert_string_equal(all_names(c, buf, sizeof(buf)), "cx");
    ct_workspace_free(c);
    ct_workspace_free(p);
}

static void test_workspace_forward_follows_parent_rename(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child;
    ct_blob_t *a = create(parent, "a");

    child = new_forwarded1(parent, "ia", "a");
    assert_int_equal(ct_workspace_rename_blob(parent, "a", "a2", NULL), CT_OK);
    assert_false(ct_workspace_has_blob(child, "ia"));
    assert_int_equal(ct_workspace_rename_blob(parent, "a2", "a", NULL), CT_OK);
    assert_ptr_equal(ct_workspace_get_blob(child, "ia"), a);
    ct_workspace_free(child);
}

static void
test_workspace_dead_forward_does_not_fall_back_to_shared(void **state)
{
    ct_workspace_t *shared = root_ws(state);
    ct_workspace_t *fparent = new_child(shared);
    ct_workspace_t *child = new_child(shared);
    const char *inner = "n", *outer = "m";

    create(fparent, "m");
    assert_int_equal(ct_workspace_add_blob_mapping(child, fparent, &inner,
                                                   &outer, 1, false, NULL),
                     CT_OK);
    create(shared, "n");
    assert_ptr_equal(ct_workspace_get_blob(child, "n"),
                     ct_workspace_get_blob(fparent, "m"));
    assert_int_equal(ct_workspace_remove_blob(fparent, "m", NULL), CT_OK);
    /* The forward wins over `shared` even when its target is gone. */
    assert_false(ct_workspace_has_blob(child, "n"));
    ct_workspace_free(child);
    ct_workspace_free(fparent);
}

static void test_workspace_create_local_blob_over_dead_forward(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child;
    ct_blob_t *b = NULL;

    create(parent, "a");
    child = new_forwarded1(parent, "ia", "a");
    assert_int_equal(ct_workspace_remove_blob(parent, "a", NULL), CT_OK);
    assert_int_equal(ct_workspace_create_local_blob(child, "ia", &b, NULL),
                     CT_OK);
    assert_ptr_equal(ct_workspace_get_blob(child, "ia"), b);
    assert_false(ct_workspace_has_blob(parent, "ia"));
    ct_workspace_free(child);
}

/* ---- tests: CopyForwardedTensors ---- */

static void test_workspace_copy_forwarded_tensors_makes_local_copy(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_tensor_t *pt = feed_seq(parent, "a", 3, 1.0f);
    ct_workspace_t *child = new_forwarded1(parent, "ia", "a");
    const char *names[3] = {"ia", "not_forwarded", "ia"};
    ct_tensor_t *ct;
    char buf[64];

    assert_int_equal(ct_workspace_copy_forwarded_tensors(child, names, 3, NULL),
                     CT_OK);
    assert_string_equal(local_names(child, buf, sizeof(buf)), "ia");
    assert_string_equal(all_names(child, buf, sizeof(buf)), "ia");
    ct = tu_fetch(child, "ia");
    assert_ptr_not_equal(ct, pt);
    assert_ptr_not_equal(ct_tensor_data(ct), ct_tensor_data(pt));
    assert_memory_equal(ct_tensor_data(ct), ct_tensor_data(pt), 12);
    assert_int_equal(ct_tensor_storage_refs(pt), 1);
    /* The copy is independent of the parent from now on. */
    ((float *)ct_tensor_data(pt))[0] = 100.0f;
    assert_true(((float *)ct_tensor_data(ct))[0] == 1.0f);
    assert_false(ct_workspace_has_blob(child, "not_forwarded"));
    ct_workspace_free(child);
}

static void
test_workspace_copy_forwarded_tensors_non_tensor_returns_etype(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_blob_t *pa;
    ct_workspace_t *child;
    const char *names[2] = {"ib", "ia"};
    ct_status_t st;
    char buf[64];
    int rc;

    feed_seq(parent, "b", 2, 0.0f);
    pa = create(parent, "a"); /* empty: no tensor */
    child = new_forwarded1(parent, "ia", "a");
    {
        const char *inner = "ib", *outer = "b";
        assert_int_equal(ct_workspace_add_blob_mapping(child, parent, &inner,
                                                       &outer, 1, false, NULL),
                         CT_OK);
    }
    rc = ct_workspace_copy_forwarded_tensors(child, names, 2, &st);
    tu_assert_status(&st, rc, CT_ETYPE,
                     "Expected blob with tensor value: parent blob a holds "
                     "nothing");
    /* Atomic: "ib" was not copied either. */
    assert_string_equal(local_names(child, buf, sizeof(buf)), "");
    assert_ptr_equal(ct_workspace_get_blob(child, "ia"), pa);
    ct_workspace_free(child);
}

static void
test_workspace_copy_forwarded_tensors_dead_returns_enotfound(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child;
    const char *name = "ia";
    ct_status_t st;
    int rc;

    feed_seq(parent, "a", 2, 0.0f);
    child = new_forwarded1(parent, "ia", "a");
    assert_int_equal(ct_workspace_remove_blob(parent, "a", NULL), CT_OK);
    rc = ct_workspace_copy_forwarded_tensors(child, &name, 1, &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND,
                     "Blob ia is forwarded to blob a of the parent "
                     "workspace, which no longer has it");
    ct_workspace_free(child);
}

static void
test_workspace_copy_forwarded_tensors_replaces_local_shadow(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    ct_workspace_t *child;
    ct_blob_t *local = NULL;
    const char *name = "ia";

    feed_seq(parent, "a", 2, 3.0f);
    child = new_forwarded1(parent, "ia", "a");
    assert_int_equal(ct_workspace_create_local_blob(child, "ia", &local, NULL),
                     CT_OK);
    assert_int_equal(ct_workspace_copy_forwarded_tensors(child, &name, 1, NULL),
                     CT_OK);
    assert_ptr_equal(ct_workspace_get_blob(child, "ia"), local);
    assert_true(((float *)ct_tensor_data(tu_fetch(child, "ia")))[1] == 4.0f);
    ct_workspace_free(child);
}

static void
test_workspace_copy_forwarded_tensors_alloc_failure_unchanged(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    const char *inner[2] = {"ia", "ib"};
    const char *outer[2] = {"a", "b"};
    ct_workspace_t *child;
    ct_status_t st;
    char buf[64];
    long k, live;
    uint64_t mem;
    int rc;

    feed_seq(parent, "a", 3, 1.0f);
    feed_seq(parent, "b", 5, 1.0f);
    assert_int_equal(
        ct_workspace_new_forwarded(parent, inner, outer, 2, &child, NULL),
        CT_OK);
    mem = ct_engine_mem_in_use(engine_of(state));
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_workspace_copy_forwarded_tensors(child, inner, 2, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        assert_int_equal(rc, CT_ENOMEM);
        assert_int_equal(st.code, CT_ENOMEM);
        assert_string_equal(local_names(child, buf, sizeof(buf)), "");
        assert_ptr_equal(ct_workspace_get_blob(child, "ib"),
                         ct_workspace_get_blob(parent, "b"));
        assert_true(ct_engine_mem_in_use(engine_of(state)) == mem);
        assert_true(tu_alloc_live() - live <= 1);
    }
    assert_string_equal(local_names(child, buf, sizeof(buf)), "ia,ib");
    assert_true(ct_engine_mem_in_use(engine_of(state)) == mem + 32);
    ct_workspace_free(child);
}

/* ---- tests: listing ---- */

static void test_workspace_list_blobs_live_forwards_only(void **state)
{
    ct_workspace_t *parent = root_ws(state);
    const char *inner[2] = {"i1", "i2"};
    const char *outer[2] = {"a", "b"};
    ct_workspace_t *child;
    char buf[128];

    create(parent, "a");
    create(parent, "b");
    assert_int_equal(
        ct_workspace_new_forwarded(parent, inner, outer, 2, &child, NULL),
        CT_OK);
    create(child, "own");
    assert_string_equal(all_names(child, buf, sizeof(buf)), "i1,i2,own");
    assert_string_equal(local_names(child, buf, sizeof(buf)), "own");
    assert_int_equal(ct_workspace_remove_blob(parent, "b", NULL), CT_OK);
    assert_string_equal(all_names(child, buf, sizeof(buf)), "i1,own");
    ct_workspace_free(child);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_env, teardown_env)
    const struct CMUnitTest tests[] = {
        T(test_workspace_new_forwarded_sees_only_inner_name),
        T(test_workspace_new_forwarded_missing_target_returns_enotfound),
        T(test_workspace_new_forwarded_alloc_failure_returns_enomem),
        T(test_workspace_add_blob_mapping_adds_inner_only),
        T(test_workspace_add_blob_mapping_missing_target_returns_enotfound),
        T(test_workspace_add_blob_mapping_null_parent_returns_einval),
        T(test_workspace_add_blob_mapping_same_binding_is_idempotent),
        T(test_workspace_add_blob_mapping_other_target_returns_eexist),
        T(test_workspace_add_blob_mapping_other_parent_returns_eexist),
        T(test_workspace_add_blob_mapping_visible_inner_returns_eexist),
        T(test_workspace_add_blob_mapping_skip_defined_skips_visible),
        T(test_workspace_add_blob_mapping_duplicate_inner_in_batch),
        T(test_workspace_add_blob_mapping_alloc_failure_leaves_unchanged),
        T(test_workspace_forwarding_chain_three_levels),
        T(test_workspace_forward_removed_parent_blob_returns_enotfound),
        T(test_workspace_forward_follows_parent_rename),
        T(test_workspace_dead_forward_does_not_fall_back_to_shared),
        T(test_workspace_create_local_blob_over_dead_forward),
        T(test_workspace_copy_forwarded_tensors_makes_local_copy),
        T(test_workspace_copy_forwarded_tensors_non_tensor_returns_etype),
        T(test_workspace_copy_forwarded_tensors_dead_returns_enotfound),
        T(test_workspace_copy_forwarded_tensors_replaces_local_shadow),
        T(test_workspace_copy_forwarded_tensors_alloc_failure_unchanged),
        T(test_workspace_list_blobs_live_forwards_only),
    };
#undef T

    (void)tu_alloc_live(); /* count every block from the start */
    return cmocka_run_group_tests_name("engine.workspace_forward", tests, NULL,
                                       NULL);
}
