/* Allocation failures on the save and load paths (STYLE §9, checklist
 * "Memory"): for k = 1, 2, ... the k-th library allocation and every
 * later one fail, until the operation succeeds. Every failure must be
 * CT_ENOMEM, leave the previous checkpoint byte-identical (save) or the
 * workspace without new blobs (load), and leak nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "storage_test.h"
#include "test_util.h"

struct env {
    ct_engine_t *eng;
    ct_workspace_t *ws;
    char *dir, *path;
    unsigned char *prev;
    size_t prev_len;
};

static Caffe2__OperatorDef *op_def(const char *type, const char *in,
                                   const char *path)
{
    Caffe2__OperatorDef *op = tu_op(type, in, "");

    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    if (strcmp(type, "Load") == 0)
        tu_arg_i(op, "load_all", 1);
    else
        tu_arg_i(op, "chunk_size", 7);
    return op;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    const int64_t d = 20;
    Caffe2__OperatorDef *op;
    ct_blob_t *b;
    ct_status_t st;

    tu_fail_alloc_off(); /* hooks in place before any allocation */
    e->dir = stu_tmpdir();
    e->path = stu_path(e->dir, "ckpt.minidb");
    if (ct_engine_new(NULL, &e->eng, NULL) != CT_OK ||
        ct_workspace_new(e->eng, NULL, &e->ws, NULL) != CT_OK)
        return -1;
    tu_fill_uniform(
        ct_tensor_data(tu_feed(e->ws, "w", CT_DTYPE_F32, 1, &d, NULL)), 20, -1,
        1, 9);
    tu_feed(e->ws, "i", CT_DTYPE_I64, 1, &d, NULL);
    if (ct_workspace_create_blob(e->ws, "s", &b, NULL) != CT_OK ||
        ct_blob_set_string(b, "text", 4, NULL) != CT_OK)
        return -1;
    op = op_def("Save", "w,i,s", e->path);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        return -1;
    tu_op_free(op);
    e->prev = stu_read(e->path, &e->prev_len);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ct_workspace_free(e->ws);
    ct_engine_free(e->eng);
    free(e->prev);
    free(e->path);
    stu_rmtree(e->dir);
    free(e);
    return 0;
}

static void test_alloc_fail_save_keeps_previous_and_leaks_nothing(void **s)
{
    struct env *e = *s;
    Caffe2__OperatorDef *op = op_def("Save", "w,i,s", e->path);
    ct_status_t st;
    long k;
    int rc = CT_ENOMEM;

    /* a different version, so a wrongly published file would show */
    ((float *)ct_tensor_data(tu_fetch(e->ws, "w")))[0] = 123;
    for (k = 1; rc != CT_OK; k++) {
        long live = tu_alloc_live();
        unsigned char *now;
        size_t len;
        tu_fail_alloc_after(k);
        rc = tu_run_op(e->ws, op, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        if (rc != CT_ENOMEM)
            fail_msg("allocation %ld: %s %s", k, ct_err_name(rc), st.msg);
        assert_int_equal(tu_alloc_live(), live);
        now = stu_read(e->path, &len);
        assert_int_equal(len, e->prev_len);
        assert_memory_equal(now, e->prev, len);
        free(now);
        assert_int_equal(stu_count_entries(e->dir), 1);
    }
    assert_true(k > 5);
    tu_op_free(op);
}

static void test_alloc_fail_load_changes_nothing_and_leaks_nothing(void **s)
{
    struct env *e = *s;
    Caffe2__OperatorDef *op = op_def("Load", "", e->path);
    ct_status_t st;
    long k;
    int rc = CT_ENOMEM;

    for (k = 1; rc != CT_OK; k++) {
        ct_workspace_t *ws;
        const char **names;
        size_t n;
        /* The baseline is taken before the workspace exists: a failed Load
         * may leave its blob table grown (not a leak), but freeing the
         * workspace must bring every count back. */
        long live = tu_alloc_live();
        assert_int_equal(ct_workspace_new(e->eng, NULL, &ws, NULL), CT_OK);
        tu_fail_alloc_after(k);
        rc = tu_run_op(ws, op, &st);
        tu_fail_alloc_off();
        if (rc != CT_OK) {
            long now;
            assert_int_equal(ct_workspace_list_blobs(ws, &names, &n, NULL),
                             CT_OK);
            ct_free(names);
            ct_workspace_free(ws);
            now = tu_alloc_live();
            if (rc != CT_ENOMEM || now != live || n != 0)
                fail_msg("allocation %ld: %s \"%s\", %ld blocks leaked, "
                         "%zu blobs",
                         k, ct_err_name(rc), st.msg, now - live, n);
        } else {
            assert_memory_equal(ct_tensor_cdata(tu_fetch(ws, "w")),
                                ct_tensor_cdata(tu_fetch(e->ws, "w")), 80);
            ct_workspace_free(ws);
            assert_int_equal(tu_alloc_live(), live);
        }
    }
    assert_true(k > 5);
    tu_op_free(op);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_alloc_fail_save_keeps_previous_and_leaks_nothing, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_alloc_fail_load_changes_nothing_and_leaks_nothing, setup,
            teardown),
    };
    return cmocka_run_group_tests_name("storage.alloc_fail", tests, NULL, NULL);
}
