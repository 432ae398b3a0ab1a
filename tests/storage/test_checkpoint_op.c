/* Checkpoint / Snapshot, synchronous path (storage/checkpoint_op.c) and
 * the pattern rule (storage/path.c): one %d-style conversion substituted
 * with the int64 iteration, every other directive refused when the op is
 * created (checklist A18, C10: never a printf format from a model). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_test.h"
#include "test_util.h"

static void expect_format(const char *pattern, int64_t iter, const char *want)
{
    struct ct__pattern p;
    ct_status_t st;
    char *out;

    if (ct__pattern_parse(pattern, &p, &st) != CT_OK)
        fail_msg("pattern %s: %s", pattern, st.msg);
    assert_int_equal(ct__pattern_format(pattern, &p, iter, &out, &st), CT_OK);
    assert_string_equal(out, want);
    ct_free(out);
}

static void expect_reject(const char *pattern, const char *needle)
{
    struct ct__pattern p;
    ct_status_t st;
    int rc = ct__pattern_parse(pattern, &p, &st);

    if (rc != CT_EARG || strstr(st.msg, needle) == NULL)
        fail_msg("pattern \"%s\": want CT_EARG \"%s\", got %s \"%s\"", pattern,
                 needle, ct_err_name(rc), rc ? st.msg : "");
}

static void test_pattern_substitutes_iteration_as_int64(void **state)
{
    (void)state;
    expect_format("ckpt_%d", 42, "ckpt_42");
    expect_format("ckpt_%05d.minidb", 42, "ckpt_00042.minidb");
    expect_format("test_checkpoint_at_%05d", 90, "test_checkpoint_at_00090");
    expect_format("%d", (int64_t)1 << 40, "1099511627776");
    expect_format("a_%lld_b", -3, "a_-3_b");
    expect_format("x%-6ix", 12, "x12    x");
    expect_format("%+.3d", 7, "+007");
    expect_format("%u", 5, "5");
    expect_format("100%%_%d%%", 7, "100%_7%");
    expect_format("plain.minidb", 9, "plain.minidb");
}

static void test_pattern_rejects_other_directives(void **state)
{
    (void)state;
    expect_reject("ckpt_%s", "unsupported conversion \"%s\" at offset 5");
    expect_reject("%n", "unsupported conversion");
    expect_reject("%x", "unsupported conversion");
    expect_reject("%f", "unsupported conversion");
    expect_reject("%*d", "unsupported conversion \"%*\"");
    expect_reject("abc%", "unsupported conversion \"%\"");
    expect_reject("%5", "unsupported conversion");
    expect_reject("%d_%d", "a second conversion \"%d\" at offset 3");
    expect_reject("%100d", "width too large");
    expect_reject("%#d", "unsupported conversion");
    expect_reject("%99d", "width over 64");
}

struct env {
    ct_engine_t *eng;
    ct_workspace_t *ws;
    char *dir;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct ct_workspace_config cfg = {NULL, NULL};

    e->dir = stu_tmpdir();
    cfg.root_folder = e->dir;
    if (ct_engine_new(NULL, &e->eng, NULL) != CT_OK ||
        ct_workspace_new(e->eng, &cfg, &e->ws, NULL) != CT_OK)
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ct_workspace_free(e->ws);
    ct_engine_free(e->eng);
    stu_rmtree(e->dir);
    free(e);
    return 0;
}

static Caffe2__OperatorDef *ckpt_def(const char *type, const char *pattern,
                                     int64_t every)
{
    Caffe2__OperatorDef *op = tu_op(type, "iter,value", "");
    tu_arg_s(op, "db", pattern);
    tu_arg_s(op, "db_type", "minidb");
    if (every != 0)
        tu_arg_i(op, "every", every);
    return op;
}

static void set_iter(struct env *e, int64_t i)
{
    tu_feed(e->ws, "iter", CT_DTYPE_I64, 0, NULL, &i);
}

static void test_checkpoint_saves_every_nth_iteration(void **state)
{
    struct env *e = *state;
    const float value[3] = {1, 2, 3};
    const int64_t d = 3;
    Caffe2__OperatorDef *op =
        ckpt_def("Checkpoint", "test_checkpoint_at_%05d", 10);
    ct_status_t st;
    int64_t i;

    tu_feed_f32(e->ws, "value", 1, &d, value);
    for (i = 1; i <= 100; i++) {
        set_iter(e, i);
        if (tu_run_op(e->ws, op, &st) != CT_OK)
            fail_msg("iteration %lld: %s", (long long)i, st.msg);
    }
    tu_op_free(op);
    for (i = 1; i <= 100; i++) {
        char name[64], *p;
        snprintf(name, sizeof(name), "test_checkpoint_at_%05lld", (long long)i);
        p = stu_path(e->dir, name);
        assert_int_equal(stu_exists(p), i % 10 == 0);
        free(p);
    }
    assert_int_equal(stu_count_entries(e->dir), 10);
    /* Every input is saved, the counter included. */
    op = tu_op("Load", "", "iter,value");
    tu_arg_s(op, "db", "test_checkpoint_at_00090");
    tu_arg_s(op, "db_type", "minidb");
    set_iter(e, 0);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_int_equal(*(const int64_t *)ct_tensor_cdata(tu_fetch(e->ws, "iter")),
                     90);
    tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "value")), value, 3, 0,
                        0);
    tu_op_free(op);
}

static void test_snapshot_is_checkpoint_and_overwrites_safely(void **state)
{
    struct env *e = *state;
    const int64_t d = 1;
    Caffe2__OperatorDef *op = ckpt_def("Snapshot", "same.minidb", 0);
    ct_status_t st;
    char *path = stu_path(e->dir, "same.minidb");
    uint64_t n;
    int64_t i;

    for (i = 1; i <= 5; i++) {
        float v = (float)i;
        set_iter(e, i);
        tu_feed_f32(e->ws, "value", 1, &d, &v);
        assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
        assert_int_equal(ct_db_verify("minidb", path, &n, &st), CT_OK);
        assert_int_equal(n, 2);
        assert_int_equal(stu_count_entries(e->dir), 1);
    }
    tu_op_free(op);
    free(path);
}

static void test_checkpoint_args_checked_at_creation(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op;
    ct_status_t st;
    const float v = 1;
    const int64_t d = 1;

    tu_feed_f32(e->ws, "value", 1, &d, &v);
    set_iter(e, 1);
    op = ckpt_def("Checkpoint", "c_%d", -1);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_EARG);
    assert_non_null(strstr(st.msg, "Checkpoint interval should be positive"));
    tu_op_free(op);
    op = tu_op("Checkpoint", "iter", "");
    tu_arg_s(op, "db_type", "minidb");
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_EARG);
    assert_non_null(strstr(st.msg, "Must specify a checkpoint file pattern."));
    tu_op_free(op);
    op = ckpt_def("Checkpoint", "c_%s%n", 1);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_EARG);
    assert_non_null(strstr(st.msg, "unsupported conversion \"%s\""));
    tu_op_free(op);
    op = ckpt_def("Checkpoint", "../c_%d", 1);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_EPATH);
    tu_op_free(op);
    /* the counter must be an int64 tensor */
    tu_feed_f32(e->ws, "iter", 1, &d, &v);
    op = ckpt_def("Checkpoint", "c_%d", 1);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_ETYPE);
    assert_non_null(strstr(st.msg, "must be an INT64 tensor"));
    tu_op_free(op);
    assert_int_equal(stu_count_entries(e->dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_substitutes_iteration_as_int64),
        cmocka_unit_test(test_pattern_rejects_other_directives),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_saves_every_nth_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_is_checkpoint_and_overwrites_safely, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_args_checked_at_creation, setup, teardown),
    };
    return cmocka_run_group_tests_name("storage.checkpoint_op", tests, NULL,
                                       NULL);
}
