/* The DB interface (storage/db.c) and the minidb backend
 * (storage/minidb.c): registry, modes, cursors and transactions, the
 * header / manifest records, NEW never touching the previous file before
 * close, WRITE, and the reader's checks on bad files (checklist B1, B4,
 * B6, B7). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/fileio.h"
#include "storage_test.h"
#include "test_util.h"

struct env {
    char *dir;
    char *path;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return -1;
    e->dir = stu_tmpdir();
    e->path = stu_path(e->dir, "x.minidb");
    ct__io_reset();
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ct__io_reset();
    free(e->path);
    stu_rmtree(e->dir);
    free(e);
    return 0;
}

static void write3(const char *path, const char *tag)
{
    struct ct_db_record r[3] = {
        {"a", 1, tag, strlen(tag)},
        {"bb", 2, "value-two", 9},
        {"c#%0", 4, "\0\1\2", 3},
    };
    ct_status_t st;

    if (ct_db_write_records("minidb", path, r, 3, &st) != CT_OK)
        fail_msg("%s", st.msg);
}

/* Reads every record; returns the count, and the first value in first. */
static int read_all(const char *path, char *first, size_t cap, int *rc_out,
                    ct_status_t *st)
{
    ct_db_t *db = NULL;
    ct_db_cursor_t *c = NULL;
    int n = 0, rc;

    rc = ct_db_open("minidb", path, CT_DB_READ, &db, st);
    if (rc == CT_OK)
        rc = ct_db_cursor_new(db, &c, st);
    while (rc == CT_OK && ct_db_cursor_valid(c)) {
        const void *v;
        size_t len;
        rc = ct_db_cursor_value(c, &v, &len, st);
        if (rc == CT_OK && n == 0 && first != NULL)
            snprintf(first, cap, "%.*s", (int)len, (const char *)v);
        if (rc == CT_OK) {
            n++;
            rc = ct_db_cursor_next(c, st);
        }
    }
    ct_db_cursor_free(c);
    ct_db_free(db);
    *rc_out = rc;
    return n;
}

static void test_db_write_records_then_cursor_reads_them(void **state)
{
    struct env *e = *state;
    ct_db_t *db;
    ct_db_cursor_t *c;
    ct_status_t st;
    const void *v;
    size_t klen, vlen;
    uint64_t n;

    write3(e->path, "one");
    assert_int_equal(ct_db_open("MiniDB", e->path, CT_DB_READ, &db, &st),
                     CT_OK);
    assert_string_equal(ct_db_type_name(db), "minidb");
    assert_int_equal(ct_db_cursor_new(db, &c, &st), CT_OK);
    assert_true(ct_db_cursor_valid(c));
    assert_string_equal(ct_db_cursor_key(c, &klen), "a");
    assert_int_equal(ct_db_cursor_value(c, &v, &vlen, &st), CT_OK);
    assert_int_equal(vlen, 3);
    assert_memory_equal(v, "one", 3);
    assert_int_equal(ct_db_cursor_next(c, &st), CT_OK);
    assert_string_equal(ct_db_cursor_key(c, &klen), "bb");
    assert_int_equal(ct_db_cursor_next(c, &st), CT_OK);
    assert_string_equal(ct_db_cursor_key(c, &klen), "c#%0");
    assert_int_equal(ct_db_cursor_value(c, &v, &vlen, &st), CT_OK);
    assert_memory_equal(v, "\0\1\2", 3);
    assert_int_equal(ct_db_cursor_next(c, &st), CT_OK);
    assert_false(ct_db_cursor_valid(c)); /* the manifest is not a record */
    assert_int_equal(ct_db_cursor_seek_to_first(c, &st), CT_OK);
    assert_string_equal(ct_db_cursor_key(c, &klen), "a");
    assert_int_equal(ct_db_cursor_seek(c, "bb", 2, &st), CT_ENOTSUP);
    tu_assert_status(&st, CT_ENOTSUP, CT_ENOTSUP,
                     "MiniDB does not support seeking");
    ct_db_cursor_free(c);
    ct_db_free(db);
    assert_int_equal(ct_db_verify("minidb", e->path, &n, &st), CT_OK);
    assert_int_equal(n, 3);
    /* Only the file: no temporary left behind. */
    assert_int_equal(stu_count_entries(e->dir), 1);
}

static void test_db_open_unregistered_type_is_error(void **state)
{
    struct env *e = *state;
    ct_db_t *db;
    ct_status_t st;

    assert_false(ct_db_type_registered("leveldb"));
    assert_true(ct_db_type_registered("minidb"));
    assert_int_equal(ct_db_open("leveldb", e->path, CT_DB_READ, &db, &st),
                     CT_ENOTFOUND);
    tu_assert_status(&st, CT_ENOTFOUND, CT_ENOTFOUND,
                     "Cannot find db implementation of type leveldb");
}

static void test_db_modes_are_enforced(void **state)
{
    struct env *e = *state;
    ct_db_t *db;
    ct_db_cursor_t *c;
    ct_db_txn_t *t;
    ct_status_t st;

    assert_int_equal(ct_db_open("minidb", e->path, CT_DB_NEW, &db, &st), CT_OK);
    assert_int_equal(ct_db_cursor_new(db, &c, &st), CT_ESTATE);
    assert_int_equal(ct_db_txn_new(db, &t, &st), CT_OK);
    assert_int_equal(ct_db_txn_put(t, "", 0, "v", 1, &st), CT_EINVAL);
    tu_assert_status(&st, CT_EINVAL, CT_EINVAL, "empty key");
    assert_int_equal(ct_db_txn_put(t, "k", 1, "", 0, &st), CT_EINVAL);
    assert_int_equal(ct_db_txn_put(t, CT_MINIDB_MANIFEST_KEY,
                                   strlen(CT_MINIDB_MANIFEST_KEY), "v", 1, &st),
                     CT_EINVAL);
    tu_assert_status(&st, CT_EINVAL, CT_EINVAL, "reserved");
    assert_int_equal(ct_db_txn_put(t, "k", 1, "v", 1, &st), CT_OK);
    assert_int_equal(ct_db_txn_commit(t, &st), CT_OK);
    ct_db_txn_free(t);
    assert_int_equal(ct_db_close(db, &st), CT_OK);
    assert_int_equal(ct_db_open("minidb", e->path, CT_DB_READ, &db, &st),
                     CT_OK);
    assert_int_equal(ct_db_txn_new(db, &t, &st), CT_ESTATE);
    ct_db_free(db);
}

static void test_db_new_keeps_previous_until_close(void **state)
{
    struct env *e = *state;
    unsigned char *before, *after;
    size_t n0, n1;
    ct_db_t *db;
    ct_db_txn_t *t;
    ct_status_t st;
    char first[16];
    int rc;

    write3(e->path, "old");
    before = stu_read(e->path, &n0);
    assert_int_equal(ct_db_open("minidb", e->path, CT_DB_NEW, &db, &st), CT_OK);
    assert_int_equal(ct_db_txn_new(db, &t, &st), CT_OK);
    assert_int_equal(ct_db_txn_put(t, "a", 1, "new", 3, &st), CT_OK);
    assert_int_equal(ct_db_txn_commit(t, &st), CT_OK);
    ct_db_txn_free(t);
    /* Mid-save: the old file is intact and still loads. */
    after = stu_read(e->path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(after);
    assert_int_equal(read_all(e->path, first, sizeof(first), &rc, &st), 3);
    assert_int_equal(rc, CT_OK);
    assert_string_equal(first, "old");
    assert_int_equal(stu_count_entries(e->dir), 2); /* + the temporary */
    /* Discarding: the temporary goes, the old file stays. */
    ct_db_free(db);
    assert_int_equal(stu_count_entries(e->dir), 1);
    after = stu_read(e->path, &n1);
    assert_memory_equal(before, after, n0);
    free(after);
    free(before);
}

static void test_db_write_mode_appends_crash_safely(void **state)
{
    struct env *e = *state;
    ct_db_t *db;
    ct_db_txn_t *t;
    ct_status_t st;
    char *other = stu_path(e->dir, "new.minidb");
    uint64_t n;

    write3(e->path, "one");
    assert_int_equal(ct_db_open("minidb", e->path, CT_DB_WRITE, &db, &st),
                     CT_OK);
    assert_int_equal(ct_db_txn_new(db, &t, &st), CT_OK);
    assert_int_equal(ct_db_txn_put(t, "d", 1, "four", 4, &st), CT_OK);
    ct_db_txn_free(t);
    assert_int_equal(ct_db_close(db, &st), CT_OK);
    assert_int_equal(ct_db_verify("minidb", e->path, &n, &st), CT_OK);
    assert_int_equal(n, 4);
    /* WRITE on a missing file creates it. */
    assert_int_equal(ct_db_open("minidb", other, CT_DB_WRITE, &db, &st), CT_OK);
    assert_int_equal(ct_db_txn_new(db, &t, &st), CT_OK);
    assert_int_equal(ct_db_txn_put(t, "d", 1, "four", 4, &st), CT_OK);
    ct_db_txn_free(t);
    assert_int_equal(ct_db_close(db, &st), CT_OK);
    assert_int_equal(ct_db_verify("minidb", other, &n, &st), CT_OK);
    assert_int_equal(n, 1);
    free(other);
}

/* A minidb as Caffe2 writes it: records only. */
static size_t caffe2_file(unsigned char *buf, const char *const *kv, int n)
{
    size_t off = 0;
    int i;

    for (i = 0; i < n; i++) {
        uint32_t k = (uint32_t)strlen(kv[2 * i]);
        uint32_t v = (uint32_t)strlen(kv[2 * i + 1]);
        memcpy(buf + off, &k, 4);
        memcpy(buf + off + 4, &v, 4);
        memcpy(buf + off + 8, kv[2 * i], k);
        memcpy(buf + off + 8 + k, kv[2 * i + 1], v);
        off += 8 + k + v;
    }
    return off;
}

static void test_db_reads_foreign_files_without_manifest(void **state)
{
    struct env *e = *state;
    static const char *const kv[] = {"k1", "v1", "key2", "value2"};
    unsigned char buf[64];
    ct_status_t st;
    uint64_t n;

    stu_write(e->path, buf, caffe2_file(buf, kv, 2));
    assert_int_equal(ct_db_verify("minidb", e->path, &n, &st), CT_OK);
    assert_int_equal(n, 2);
}

static void expect_corrupt(const char *path, const void *buf, size_t len,
                           int code, const char *needle)
{
    ct_status_t st;
    int rc;

    stu_write(path, buf, len);
    rc = ct_db_verify("minidb", path, NULL, &st);
    if (rc != code || strstr(st.msg, needle) == NULL)
        fail_msg("want %s \"%s\", got %s \"%s\"", ct_err_name(code), needle,
                 ct_err_name(rc), rc != CT_OK ? st.msg : "(ok)");
}

static void test_db_reader_rejects_bad_framing(void **state)
{
    struct env *e = *state;
    static const char *const kv[] = {"k1", "v1", "key2", "value2"};
    unsigned char buf[64];
    size_t n = caffe2_file(buf, kv, 2);
    int32_t bad;

    expect_corrupt(e->path, "", 0, CT_ECORRUPT, "empty file");
    /* a trailing 1..7 bytes: a torn header */
    memset(buf + n, 0, 8);
    expect_corrupt(e->path, buf, n + 3, CT_ECORRUPT,
                   "truncated record header at offset 30");
    /* key_len 0, negative, INT32_MAX, value past the end (B4) */
    memset(buf, 0, 4);
    expect_corrupt(e->path, buf, n, CT_ECORRUPT,
                   "record at offset 0: key length 0 is not positive");
    bad = -5;
    memcpy(buf, &bad, 4);
    expect_corrupt(e->path, buf, n, CT_ECORRUPT, "key length -5");
    bad = INT32_MAX;
    memcpy(buf, &bad, 4);
    expect_corrupt(e->path, buf, n, CT_ECORRUPT, "runs past the end");
    n = caffe2_file(buf, kv, 2);
    bad = 100;
    memcpy(buf + 16, &bad, 4);
    expect_corrupt(e->path, buf, n, CT_ECORRUPT,
                   "record at offset 12 (key length 4, value length 100)");
    /* Caffe2's testTruncatedFile: 20 zero bytes */
    memset(buf, 0, 20);
    expect_corrupt(e->path, buf, 20, CT_ECORRUPT, "key length 0");
}

static void test_db_reader_rejects_missing_paths_dirs_fifos(void **state)
{
    struct env *e = *state;
    ct_db_t *db;
    ct_status_t st;
    char *fifo = stu_path(e->dir, "fifo");
    char *tmp = stu_path(e->dir, ".x.minidb.tmp.123.4");

    assert_int_equal(ct_db_open("minidb", e->path, CT_DB_READ, &db, &st),
                     CT_ENOTFOUND);
    tu_assert_status(&st, CT_ENOTFOUND, CT_ENOTFOUND, "Cannot open file: ");
    assert_non_null(strstr(st.msg, "ENOENT"));
    assert_int_equal(ct_db_open("minidb", e->dir, CT_DB_READ, &db, &st),
                     CT_EPATH);
    tu_assert_status(&st, CT_EPATH, CT_EPATH, "is a directory");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(ct_db_open("minidb", fifo, CT_DB_READ, &db, &st),
                     CT_EPATH);
    tu_assert_status(&st, CT_EPATH, CT_EPATH, "not a regular file");
    write3(e->path, "x");
    {
        size_t n;
        unsigned char *b = stu_read(e->path, &n);
        stu_write(tmp, b, n);
        free(b);
    }
    assert_int_equal(ct_db_open("minidb", tmp, CT_DB_READ, &db, &st), CT_EPATH);
    tu_assert_status(&st, CT_EPATH, CT_EPATH, "temporary file");
    /* Writers refuse to replace directories and symbolic links (A18). */
    assert_int_equal(ct_db_open("minidb", e->dir, CT_DB_NEW, &db, &st),
                     CT_EPATH);
    assert_int_equal(unlink(fifo), 0);
    assert_int_equal(symlink("x.minidb", fifo), 0);
    assert_int_equal(ct_db_open("minidb", fifo, CT_DB_NEW, &db, &st), CT_EPATH);
    tu_assert_status(&st, CT_EPATH, CT_EPATH, "symbolic link");
    free(fifo);
    free(tmp);
}

static void test_db_header_and_manifest_must_both_be_there(void **state)
{
    struct env *e = *state;
    unsigned char *buf;
    size_t n, cut;
    struct stu_recs r;
    char needle[96];

    write3(e->path, "one");
    buf = stu_read(e->path, &n);
    assert_true(stu_parse_minidb(buf, n, &r));
    assert_int_equal(r.n, 5);
    /* cut exactly before the manifest: framing is fine, still caught */
    cut = r.r[4].offset;
    expect_corrupt(e->path, buf, cut, CT_ECORRUPT, "no manifest record");
    /* the header's key damaged */
    buf[8] ^= 0x01;
    expect_corrupt(e->path, buf, n, CT_ECORRUPT, "header record at offset 0");
    buf[8] ^= 0x01;
    /* the manifest's key damaged: the header still promises one */
    buf[r.r[4].offset + 8 + 3] ^= 0x20;
    expect_corrupt(e->path, buf, n, CT_ECORRUPT, "no manifest record");
    buf[r.r[4].offset + 8 + 3] ^= 0x20;
    /* a header of a future version */
    buf[r.r[0].offset + 8 + r.r[0].klen + r.r[0].vlen - 1] = '2';
    expect_corrupt(e->path, buf, n, CT_ENOTSUP, "newer cortado");
    buf[r.r[0].offset + 8 + r.r[0].klen + r.r[0].vlen - 1] = '1';
    /* a data byte flipped: the CRC names key and offset */
    buf[r.r[2].offset + 8 + 2 + 4] ^= 0x40;
    snprintf(needle, sizeof(needle), "key bb at offset %llu: CRC32C mismatch",
             (unsigned long long)r.r[2].offset);
    expect_corrupt(e->path, buf, n, CT_ECORRUPT, needle);
    stu_recs_free(&r);
    free(buf);
}

static void test_db_sweep_removes_dead_writers_temp_files(void **state)
{
    struct env *e = *state;
    char name[96], *dead, *mine, *other;
    ct_status_t st;
    int n = -1, status;
    pid_t pid = fork();

    if (pid == 0)
        _exit(0);
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    snprintf(name, sizeof(name), ".x.minidb.tmp.%ld.7", (long)pid);
    dead = stu_path(e->dir, name);
    snprintf(name, sizeof(name), ".x.minidb.tmp.%ld.8", (long)getpid());
    mine = stu_path(e->dir, name);
    snprintf(name, sizeof(name), ".y.minidb.tmp.%ld.9", (long)pid);
    other = stu_path(e->dir, name);
    stu_write(dead, "x", 1);
    stu_write(mine, "x", 1);
    stu_write(other, "x", 1);
    assert_true(ct__is_temp_name(dead));
    assert_false(ct__is_temp_name(e->path));
    assert_int_equal(ct_db_sweep_temp_files(e->path, &n, &st), CT_OK);
    assert_int_equal(n, 1);
    assert_false(stu_exists(dead));
    assert_true(stu_exists(mine));  /* a live process's (ours) */
    assert_true(stu_exists(other)); /* another target's */
    free(dead);
    free(mine);
    free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_db_write_records_then_cursor_reads_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_open_unregistered_type_is_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_modes_are_enforced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_db_new_keeps_previous_until_close,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_write_mode_appends_crash_safely,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_db_reads_foreign_files_without_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_reader_rejects_bad_framing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_db_reader_rejects_missing_paths_dirs_fifos, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_db_header_and_manifest_must_both_be_there, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_db_sweep_removes_dead_writers_temp_files, setup, teardown),
    };
    return cmocka_run_group_tests_name("storage.minidb", tests, NULL, NULL);
}
