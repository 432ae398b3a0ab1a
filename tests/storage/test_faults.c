/* The crash-safe save path under injected faults (reliability checklist
 * §A, synchronous path), through the I/O shim of storage/fileio.h:
 * every system call of a save (open, write at the first / middle / last
 * call, fsync, close, rename) failing with ENOSPC, EIO, EDQUOT, EFBIG,
 * EMFILE and EACCES gives CT_EIO naming the file and the errno, leaves the
 * previous checkpoint byte-identical and loadable, and leaves no
 * temporary file (A1, A4, A6, A7). A failed directory fsync is
 * CT_EDURABILITY with the new file in place (A5). Short writes and EINTR
 * still produce the reference bytes (A2, A3). A failed cleanup leaves a
 * temporary file that the loader never reads and the next process's save
 * sweeps (A8). A real file size limit gives EFBIG (A9). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/fileio.h"
#include "storage_test.h"
#include "test_util.h"

#define BIG 40000 /* floats: 160 KB, written straight from the tensor */

struct env {
    ct_engine_t *eng;
    char *dir, *path;
    ct_tensor_t *big_old, *big_new, *iter;
    unsigned char *prev, *next; /* reference bytes of both versions */
    size_t prev_len, next_len;
};

static void items_of(struct env *e, bool new_version, struct ct_save_item it[3])
{
    static const struct ct_serialize_options chunked = {20000, 0};

    memset(it, 0, 3 * sizeof(*it));
    it[0].name = "iter";
    it[0].tensor = e->iter;
    it[1].name = "w";
    it[1].tensor = new_version ? e->big_new : e->big_old;
    it[1].opts = &chunked;
    it[2].name = "note";
    it[2].str = new_version ? "version two" : "version one";
    it[2].str_len = strlen(it[2].str);
}

static int save(struct env *e, bool new_version, ct_status_t *st)
{
    struct ct_save_item it[3];

    items_of(e, new_version, it);
    return ct_db_save_items("minidb", e->path, NULL, 0, it, 3, NULL, st);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    const int64_t n = BIG, one = 7;
    ct_status_t st;

    if (e == NULL || ct_engine_new(NULL, &e->eng, NULL) != CT_OK)
        return -1;
    e->dir = stu_tmpdir();
    e->path = stu_path(e->dir, "ckpt.minidb");
    if (ct_tensor_new_shape(e->eng, CT_DTYPE_F32, 1, &n, &e->big_old, &st) ||
        ct_tensor_new_shape(e->eng, CT_DTYPE_F32, 1, &n, &e->big_new, &st) ||
        ct_tensor_new_shape(e->eng, CT_DTYPE_I64, 0, NULL, &e->iter, &st))
        return -1;
    tu_fill_uniform(ct_tensor_data(e->big_old), BIG, -1, 1, 1);
    tu_fill_uniform(ct_tensor_data(e->big_new), BIG, -1, 1, 2);
    *(int64_t *)ct_tensor_data(e->iter) = one;
    ct__io_reset();
    if (save(e, true, &st) != CT_OK)
        return -1;
    e->next = stu_read(e->path, &e->next_len);
    if (save(e, false, &st) != CT_OK)
        return -1;
    e->prev = stu_read(e->path, &e->prev_len);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ct__io_reset();
    ct_tensor_free(e->big_old);
    ct_tensor_free(e->big_new);
    ct_tensor_free(e->iter);
    ct_engine_free(e->eng);
    free(e->prev);
    free(e->next);
    free(e->path);
    stu_rmtree(e->dir);
    free(e);
    return 0;
}

/* The file equals want, verifies, and is alone in its directory. */
static void assert_file(const struct env *e, const unsigned char *want,
                        size_t len, int entries)
{
    size_t n;
    unsigned char *got = stu_read(e->path, &n);
    ct_status_t st;

    assert_non_null(got);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
    free(got);
    if (ct_db_verify("minidb", e->path, NULL, &st) != CT_OK)
        fail_msg("%s", st.msg);
    assert_int_equal(stu_count_entries(e->dir), entries);
}

static void restore_prev(struct env *e)
{
    ct_status_t st;

    ct__io_reset();
    assert_int_equal(save(e, false, &st), CT_OK);
    assert_file(e, e->prev, e->prev_len, 1);
    ct__io_reset();
}

static void test_faults_every_step_keeps_previous_checkpoint(void **state)
{
    static const int errs[] = {ENOSPC, EIO, EDQUOT, EFBIG, EMFILE, EACCES};
    static const char *const names[] = {"ENOSPC", "EIO",    "EDQUOT",
                                        "EFBIG",  "EMFILE", "EACCES"};
    static const enum ct__io_op ops[] = {CT_IO_OPEN, CT_IO_WRITE, CT_IO_FSYNC,
                                         CT_IO_CLOSE, CT_IO_RENAME};
    struct env *e = *state;
    long calls[CT_IO_OP_COUNT];
    ct_status_t st;
    size_t o, k, x;
    int n_cases = 0;

    /* How many calls of each kind one save makes. */
    ct__io_reset();
    assert_int_equal(save(e, true, &st), CT_OK);
    for (o = 0; o < CT_IO_OP_COUNT; o++)
        calls[o] = ct__io_count((enum ct__io_op)o);
    assert_true(calls[CT_IO_WRITE] >= 3);
    assert_int_equal(calls[CT_IO_OPEN], 1);
    assert_int_equal(calls[CT_IO_RENAME], 1);
    restore_prev(e);

    for (o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        long nth[3] = {1, (calls[ops[o]] + 1) / 2, calls[ops[o]]};
        for (k = 0; k < 3; k++) {
            if (k > 0 && nth[k] == nth[k - 1])
                continue;
            for (x = 0; x < sizeof(errs) / sizeof(errs[0]); x++) {
                int rc;
                ct__io_reset();
                ct__io_fail_nth(ops[o], nth[k], errs[x]);
                rc = save(e, true, &st);
                if (rc != CT_EIO || strstr(st.msg, names[x]) == NULL ||
                    strstr(st.msg, "ckpt.minidb") == NULL)
                    fail_msg("%s #%ld %s: got %s \"%s\"",
                             ct__io_op_name(ops[o]), nth[k], names[x],
                             ct_err_name(rc), rc ? st.msg : "");
                if (ops[o] == CT_IO_FSYNC) /* A4: no rename after it */
                    assert_int_equal(ct__io_count(CT_IO_RENAME), 0);
                ct__io_reset();
                assert_file(e, e->prev, e->prev_len, 1);
                n_cases++;
            }
        }
    }
    assert_true(n_cases >= 5 * 6);
}

static void test_faults_dir_fsync_is_durability_unknown(void **state)
{
    struct env *e = *state;
    enum ct__io_op ops[2] = {CT_IO_OPEN_DIR, CT_IO_FSYNC_DIR};
    ct_status_t st;
    int i;

    for (i = 0; i < 2; i++) {
        restore_prev(e);
        ct__io_fail_nth(ops[i], 1, EIO);
        assert_int_equal(save(e, true, &st), CT_EDURABILITY);
        tu_assert_status(&st, CT_EDURABILITY, CT_EDURABILITY,
                         "committed, durability unknown");
        assert_non_null(strstr(st.msg, "EIO"));
        ct__io_reset();
        assert_file(e, e->next, e->next_len, 1); /* the new one is in */
    }
}

static void test_faults_short_writes_and_eintr_give_same_bytes(void **state)
{
    struct env *e = *state;
    ct_status_t st;

    restore_prev(e);
    ct__io_set_short_writes(7);
    assert_int_equal(save(e, true, &st), CT_OK);
    assert_true(ct__io_count(CT_IO_WRITE) > (long)(e->next_len / 7));
    ct__io_reset();
    assert_file(e, e->next, e->next_len, 1);

    restore_prev(e);
    ct__io_fail_nth(CT_IO_WRITE, 1, EINTR);
    ct__io_fail_nth(CT_IO_WRITE, 3, EINTR);
    ct__io_fail_nth(CT_IO_FSYNC, 1, EINTR);
    ct__io_fail_nth(CT_IO_FSYNC_DIR, 1, EINTR);
    ct__io_fail_nth(CT_IO_OPEN, 1, EEXIST); /* a temp-name collision */
    assert_int_equal(save(e, true, &st), CT_OK);
    assert_int_equal(ct__io_count(CT_IO_FSYNC), 2);
    assert_int_equal(ct__io_count(CT_IO_OPEN), 2);
    ct__io_reset();
    assert_file(e, e->next, e->next_len, 1);
}

static void test_faults_failed_cleanup_is_ignored_then_swept(void **state)
{
    struct env *e = *state;
    ct_status_t st;
    int status;
    pid_t pid;

    restore_prev(e);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A writer that fails and cannot even remove its temporary. */
        ct__io_fail_nth(CT_IO_WRITE, 2, ENOSPC);
        ct__io_fail_nth(CT_IO_UNLINK, 1, EIO);
        _exit(save(e, true, &st) == CT_EIO ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The stale temporary is there, and the loader does not care. */
    assert_int_equal(stu_count_entries(e->dir), 2);
    assert_file(e, e->prev, e->prev_len, 2);
    /* The next save (another process's, so the writer is gone) sweeps. */
    assert_int_equal(save(e, true, &st), CT_OK);
    assert_file(e, e->next, e->next_len, 1);
}

static void test_faults_real_file_size_limit_gives_efbig(void **state)
{
    struct env *e = *state;
    int status;
    pid_t pid;

    restore_prev(e);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        ct_status_t st;
        int rc;
        signal(SIGXFSZ, SIG_IGN);
        rl.rlim_cur = rl.rlim_max = 64 * 1024;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        rc = save(e, true, &st);
        if (rc != CT_EIO || strstr(st.msg, "EFBIG") == NULL) {
            fprintf(stderr, "got %s %s\n", ct_err_name(rc), st.msg);
            _exit(1);
        }
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_file(e, e->prev, e->prev_len, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_faults_every_step_keeps_previous_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_faults_dir_fsync_is_durability_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_faults_short_writes_and_eintr_give_same_bytes, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_faults_failed_cleanup_is_ignored_then_swept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_faults_real_file_size_limit_gives_efbig, setup, teardown),
    };
    return cmocka_run_group_tests_name("storage.faults", tests, NULL, NULL);
}
