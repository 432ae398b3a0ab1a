/* The lmdb backend (storage/lmdb.c): Save / Load round trip, cursor seek,
 * NEW on an existing directory, and the bad inputs of checklist B9 (not
 * an lmdb directory, a truncated data.mdb, the same environment opened
 * twice in one process). Skipped when the build has no liblmdb. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_test.h"
#include "test_util.h"

static void test_lmdb_save_load_round_trip(void **state)
{
    struct tu_env e;
    char *dir, *path;
    const int64_t d = 1000;
    Caffe2__OperatorDef *op;
    ct_status_t st;
    ct_tensor_t *t;
    float *x;
    uint64_t n;

    (void)state;
    if (!ct_db_type_registered("lmdb"))
        skip();
    dir = stu_tmpdir();
    path = stu_path(dir, "db.lmdb");
    tu_env_init(&e);
    t = tu_feed(e.ws, "w", CT_DTYPE_F32, 1, &d, NULL);
    x = ct_tensor_data(t);
    tu_fill_uniform(x, 1000, -1, 1, 5);
    op = tu_op("Save", "w", "");
    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "lmdb");
    tu_arg_i(op, "absolute_path", 1);
    tu_arg_i(op, "chunk_size", 300); /* 4 chunks */
    assert_int_equal(tu_run_op(e.ws, op, &st), CT_OK);
    /* NEW on an existing directory fails, as in Caffe2. */
    assert_int_equal(tu_run_op(e.ws, op, &st), CT_EEXIST);
    tu_op_free(op);
    assert_int_equal(ct_db_verify("LMDB", path, &n, &st), CT_OK);
    assert_int_equal(n, 4);
    assert_string_equal(ct_db_detect_type(path), "lmdb");

    op = tu_op("Load", "", "w2");
    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "lmdb");
    tu_arg_i(op, "absolute_path", 1);
    tu_arg_strings(op, "source_blob_names", 1, (const char *const[]){"w"});
    assert_int_equal(tu_run_op(e.ws, op, &st), CT_OK);
    tu_op_free(op);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e.ws, "w2")), x, 4000);
    tu_env_destroy(&e);
    free(path);
    stu_rmtree(dir);
}

static void test_lmdb_cursor_seeks_and_env_is_shared(void **state)
{
    struct ct_db_record r[3] = {
        {"a", 1, "1", 1}, {"c", 1, "3", 1}, {"e", 1, "5", 1}};
    char *dir, *path;
    ct_db_t *db1, *db2, *w;
    ct_db_cursor_t *c;
    ct_status_t st;
    size_t klen;

    (void)state;
    if (!ct_db_type_registered("lmdb"))
        skip();
    dir = stu_tmpdir();
    path = stu_path(dir, "db");
    assert_int_equal(ct_db_write_records("lmdb", path, r, 3, &st), CT_OK);
    /* Two READ handles on one path share one environment. */
    assert_int_equal(ct_db_open("lmdb", path, CT_DB_READ, &db1, &st), CT_OK);
    assert_int_equal(ct_db_open("lmdb", path, CT_DB_READ, &db2, &st), CT_OK);
    assert_int_equal(ct_db_open("lmdb", path, CT_DB_WRITE, &w, &st), CT_EBUSY);
    assert_int_equal(ct_db_cursor_new(db2, &c, &st), CT_OK);
    assert_int_equal(ct_db_cursor_seek(c, "b", 1, &st), CT_OK);
    assert_string_equal(ct_db_cursor_key(c, &klen), "c");
    assert_int_equal(ct_db_cursor_next(c, &st), CT_OK);
    assert_string_equal(ct_db_cursor_key(c, &klen), "e");
    assert_int_equal(ct_db_cursor_next(c, &st), CT_OK);
    assert_false(ct_db_cursor_valid(c));
    ct_db_cursor_free(c);
    ct_db_free(db1);
    ct_db_free(db2);
    free(path);
    stu_rmtree(dir);
}

static void test_lmdb_bad_inputs_fail_cleanly(void **state)
{
    char *dir, *path, *file, *data;
    ct_db_t *db;
    ct_db_cursor_t *c;
    struct ct_db_record r = {"k", 1, "v", 1};
    ct_status_t st;
    unsigned char *buf;
    size_t n;
    int rc;

    (void)state;
    if (!ct_db_type_registered("lmdb"))
        skip();
    dir = stu_tmpdir();
    path = stu_path(dir, "db");
    file = stu_path(dir, "plain");
    data = stu_path(path, "data.mdb");
    /* missing */
    assert_int_equal(ct_db_open("lmdb", path, CT_DB_READ, &db, &st),
                     CT_ENOTFOUND);
    /* a regular file, not an lmdb directory */
    stu_write(file, "not lmdb", 8);
    rc = ct_db_open("lmdb", file, CT_DB_READ, &db, &st);
    assert_true(rc != CT_OK);
    assert_non_null(strstr(st.msg, "plain"));
    /* a truncated data.mdb */
    assert_int_equal(ct_db_write_records("lmdb", path, &r, 1, &st), CT_OK);
    buf = stu_read(data, &n);
    stu_write(data, buf, 100);
    free(buf);
    rc = ct_db_open("lmdb", path, CT_DB_READ, &db, &st);
    if (rc == CT_OK) {
        rc = ct_db_cursor_new(db, &c, &st);
        if (rc == CT_OK)
            ct_db_cursor_free(c);
        ct_db_free(db);
    }
    assert_true(rc != CT_OK);
    assert_non_null(strstr(st.msg, "failed"));
    free(data);
    free(file);
    free(path);
    stu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lmdb_save_load_round_trip),
        cmocka_unit_test(test_lmdb_cursor_seeks_and_env_is_shared),
        cmocka_unit_test(test_lmdb_bad_inputs_fail_cleanly),
    };
    return cmocka_run_group_tests_name("storage.lmdb", tests, NULL, NULL);
}
