/* Reliability checklist gaps of the storage area (docs/reliability.md):
 * A6 rename failing with every errno of the row (sync path), A7 the
 * temporary file's open failing with ENOENT (a missing directory, for
 * real) and EROFS, B6 a duplicate key inside one foreign minidb file, and
 * C10 a hard link inside the root folder that leads out of it: a save
 * through it must never write the outside file, and A17 SIGKILL while
 * the same path is overwritten again and again. Each checks the code, a
 * message naming the path and errno, the previous checkpoint byte for
 * byte, and that no temporary file is left behind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cortado/storage.h"
#include "storage/fileio.h"
#include "fs_util.h"
#include "test_util.h"

/* ---- fixture ---- */

struct env {
    ct_engine_t *eng;
    ct_workspace_t *ws; /* root folder: dir */
    char dir[64];
    char path[128]; /* dir/ckpt.minidb */
    ct_tensor_t *x;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct ct_workspace_config cfg = {NULL, NULL};
    const int64_t n = 257;
    ct_status_t st;

    if (e == NULL)
        return -1;
    ct__io_reset();
    snprintf(e->dir, sizeof(e->dir), "/tmp/ct_rel_XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return -1;
    snprintf(e->path, sizeof(e->path), "%s/ckpt.minidb", e->dir);
    cfg.root_folder = e->dir;
    if (ct_engine_new(NULL, &e->eng, &st) != CT_OK ||
        ct_workspace_new(e->eng, &cfg, &e->ws, &st) != CT_OK ||
        ct_tensor_new_shape(e->eng, CT_DTYPE_F32, 1, &n, &e->x, &st) != CT_OK)
        return -1;
    tu_fill_uniform(ct_tensor_data(e->x), (size_t)n, -1, 1, 7);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ct__io_reset();
    ct_tensor_free(e->x);
    ct_workspace_free(e->ws);
    ct_engine_free(e->eng);
    tu_rm_dir(e->dir);
    free(e);
    return 0;
}

/* ---- helpers ---- */

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_all(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int save_x(struct env *e, const char *path, const char *note,
                  ct_status_t *st)
{
    struct ct_save_item it[2];

    memset(it, 0, sizeof(it));
    it[0].name = "x";
    it[0].tensor = e->x;
    it[1].name = "note";
    it[1].str = note;
    it[1].str_len = strlen(note);
    return ct_db_save_items("minidb", path, NULL, 0, it, 2, NULL, st);
}

/* The file at path equals want and verifies. */
static void assert_same(const char *path, const unsigned char *want, size_t len)
{
    size_t n;
    unsigned char *got = read_all(path, &n);
    ct_status_t st;

    assert_non_null(got);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
    free(got);
    if (ct_db_verify("minidb", path, NULL, &st) != CT_OK)
        fail_msg("%s", st.msg);
}

/* ---- A7: open(temp) fails ---- */

static void test_save_into_missing_directory_returns_eio_naming_enoent(void **s)
{
    struct env *e = *s;
    char path[192];
    ct_status_t st;
    int rc;

    snprintf(path, sizeof(path), "%s/no_such_dir/ckpt.minidb", e->dir);
    rc = save_x(e, path, "v1", &st);
    tu_assert_status(&st, rc, CT_EIO, "ENOENT");
    assert_non_null(strstr(st.msg, "no_such_dir"));
    assert_int_equal(count_entries(e->dir), 0);
}

static void test_save_open_temp_erofs_keeps_previous(void **state)
{
    struct env *e = *state;
    unsigned char *prev;
    size_t len;
    ct_status_t st;
    int rc;

    assert_int_equal(save_x(e, e->path, "v1", &st), CT_OK);
    prev = read_all(e->path, &len);
    assert_non_null(prev);
    ct__io_fail_nth(CT_IO_OPEN, 1, EROFS);
    rc = save_x(e, e->path, "v2", &st);
    ct__io_reset();
    tu_assert_status(&st, rc, CT_EIO, "EROFS");
    assert_non_null(strstr(st.msg, "ckpt.minidb"));
    assert_same(e->path, prev, len);
    assert_int_equal(count_entries(e->dir), 1);
    free(prev);
}

/* ---- A6: rename fails (sync path; async is in test_checkpoint_async) ---- */

static void test_save_rename_failures_keep_previous(void **state)
{
    static const int errs[] = {ENOSPC, EXDEV, EACCES, ENOENT, EROFS};
    static const char *const names[] = {"ENOSPC", "EXDEV", "EACCES", "ENOENT",
                                        "EROFS"};
    struct env *e = *state;
    unsigned char *prev;
    size_t len, i;
    ct_status_t st;

    assert_int_equal(save_x(e, e->path, "v1", &st), CT_OK);
    prev = read_all(e->path, &len);
    assert_non_null(prev);
    for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        int rc;
        ct__io_reset();
        ct__io_fail_nth(CT_IO_RENAME, 1, errs[i]);
        rc = save_x(e, e->path, "v2", &st);
        ct__io_reset();
        if (rc != CT_EIO || strstr(st.msg, names[i]) == NULL ||
            strstr(st.msg, "ckpt.minidb") == NULL)
            fail_msg("rename %s: got %s \"%s\"", names[i], ct_err_name(rc),
                     rc != CT_OK ? st.msg : "");
        assert_same(e->path, prev, len);
        assert_int_equal(count_entries(e->dir), 1); /* temp removed */
    }
    free(prev);
}

/* ---- B6: duplicate keys in one file ---- */

/* Appends one Caffe2 minidb record (int32 key length, int32 value length,
 * key, value) to buf at *n. */
static void put_rec(unsigned char *buf, size_t *n, const char *key, size_t klen,
                    const unsigned char *val, size_t vlen)
{
    int32_t k = (int32_t)klen, v = (int32_t)vlen;

    memcpy(buf + *n, &k, 4);
    memcpy(buf + *n + 4, &v, 4);
    memcpy(buf + *n + 8, key, klen);
    memcpy(buf + *n + 8 + klen, val, vlen);
    *n += 8 + klen + vlen;
}

static int load_all(struct env *e, const char *path, ct_status_t *st)
{
    Caffe2__OperatorDef *op = tu_op("Load", "", "");
    ct_workspace_t *ws;
    int rc;

    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    tu_arg_i(op, "load_all", 1);
    assert_int_equal(ct_workspace_new(e->eng, NULL, &ws, NULL), CT_OK);
    rc = tu_run_op(ws, op, st);
    tu_op_free(op);
    ct_workspace_free(ws);
    return rc;
}

static void test_load_duplicate_key_in_one_file_fails(void **state)
{
    struct env *e = *state;
    unsigned char *file, *dup;
    const unsigned char *val = NULL;
    size_t len, off, n = 0, vlen = 0, klen = 0;
    const char *key = NULL;
    char path[192];
    ct_status_t st;
    int rc;

    /* The BlobProto cortado writes for x, taken from a real file. */
    assert_int_equal(save_x(e, e->path, "v1", &st), CT_OK);
    file = read_all(e->path, &len);
    assert_non_null(file);
    for (off = 0; off + 8 <= len;) {
        int32_t k, v;
        memcpy(&k, file + off, 4);
        memcpy(&v, file + off + 4, 4);
        assert_true(k > 0 && v > 0 && off + 8 + (size_t)k + (size_t)v <= len);
        if (file[off + 8] == 'x') {
            key = (const char *)file + off + 8;
            klen = (size_t)k;
            val = file + off + 8 + k;
            vlen = (size_t)v;
        }
        off += 8 + (size_t)k + (size_t)v;
    }
    assert_non_null(val);
    /* A foreign (Caffe2-written, no manifest) file: the record twice. */
    dup = malloc(2 * (8 + klen + vlen));
    assert_non_null(dup);
    put_rec(dup, &n, key, klen, val, vlen);
    assert_int_equal(load_all(e, e->path, &st), CT_OK);
    snprintf(path, sizeof(path), "%s/dup.minidb", e->dir);
    write_all(path, dup, n);
    assert_int_equal(load_all(e, path, &st), CT_OK); /* once: fine */
    put_rec(dup, &n, key, klen, val, vlen);
    write_all(path, dup, n);
    rc = load_all(e, path, &st);
    if (rc == CT_OK)
        fail_msg("a file holding key %.*s twice loaded silently", (int)klen,
                 key);
    assert_true(rc == CT_ECORRUPT || rc == CT_EEXIST);
    assert_non_null(strstr(st.msg, "x"));
    free(dup);
    free(file);
}

/* ---- C10: a hard link out of the root folder ---- */

static void test_save_op_through_hard_link_never_writes_outside(void **state)
{
    struct env *e = *state;
    char outside_dir[64], outside[128], link_path[192];
    static const char secret[] = "outside the root folder";
    Caffe2__OperatorDef *op;
    unsigned char *after;
    size_t len;
    ct_status_t st;
    int rc;

    snprintf(outside_dir, sizeof(outside_dir), "/tmp/ct_rel_out_XXXXXX");
    assert_non_null(mkdtemp(outside_dir));
    snprintf(outside, sizeof(outside), "%s/victim.minidb", outside_dir);
    write_all(outside, secret, sizeof(secret));
    snprintf(link_path, sizeof(link_path), "%s/hl.minidb", e->dir);
    assert_int_equal(link(outside, link_path), 0);
    tu_feed_f32(e->ws, "x", 1, (const int64_t[]){2}, (const float[]){1, 2});
    op = tu_op("Save", "x", "");
    tu_arg_s(op, "db", "hl.minidb");
    tu_arg_s(op, "db_type", "minidb");
    rc = tu_run_op(e->ws, op, &st);
    tu_op_free(op);
    /* Refusing (CT_EPATH) or replacing the link is fine; writing through
     * it into the outside file is not. */
    assert_true(rc == CT_OK || rc == CT_EPATH);
    after = read_all(outside, &len);
    assert_non_null(after);
    assert_int_equal(len, sizeof(secret));
    assert_memory_equal(after, secret, len);
    free(after);
    tu_rm_dir(outside_dir);
}

/* ---- A17: SIGKILL while overwriting the same path ---- */

static void test_kill_during_same_name_overwrite_leaves_complete_file(void **s)
{
    struct env *e = *s;
    unsigned int seed = 12345;
    ct_status_t st;
    int round;

    assert_int_equal(save_x(e, e->path, "first", &st), CT_OK);
    for (round = 0; round < 60; round++) {
        struct timespec ts = {0, 0};
        uint64_t n;
        int status;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int i;
            for (i = 0;; i++)
                if (save_x(e, e->path, i % 2 ? "odd" : "even", &st) != CT_OK)
                    _exit(1);
        }
        ts.tv_nsec = (long)(rand_r(&seed) % 20000) * 1000; /* 0-20 ms */
        nanosleep(&ts, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status)); /* never failed on its own */
        /* The old or the new file, complete; never missing or torn. */
        if (ct_db_verify("minidb", e->path, &n, &st) != CT_OK)
            fail_msg("round %d: %s", round, st.msg);
        assert_int_equal(load_all(e, e->path, &st), CT_OK);
    }
    /* The dead writers' temporary files go with the next save. */
    assert_int_equal(save_x(e, e->path, "last", &st), CT_OK);
    assert_int_equal(count_entries(e->dir), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_save_into_missing_directory_returns_eio_naming_enoent, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_save_open_temp_erofs_keeps_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_rename_failures_keep_previous,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_load_duplicate_key_in_one_file_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_save_op_through_hard_link_never_writes_outside, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_kill_during_same_name_overwrite_leaves_complete_file, setup,
            teardown),
    };
    return cmocka_run_group_tests_name("engine.reliability_storage", tests,
                                       NULL, NULL);
}
