/* Reliability checklist B9, the lmdb parts storage/test_lmdb.c does not
 * try (docs/reliability.md): a write that runs out of room, for real,
 * and an environment used after fork().
 *
 * - ENOSPC: in a child process with a private mount namespace (unshare;
 *   as root, or unprivileged through a user namespace, as
 *   storage/test_enospc.c) an lmdb DB on a 256 KiB tmpfs gets 8 KiB
 *   records committed one transaction each until a commit fails. Skipped
 *   where namespaces or tmpfs mounts are not allowed.
 * - EFBIG: the same with RLIMIT_FSIZE = 128 KiB (SIGXFSZ ignored), which
 *   needs no privilege at all.
 * Both must give CT_EIO naming the DB path, the lmdb call and the error
 * text (lmdb reports a short write as EIO, see fill_until_failure), and a fresh
 * READ open must give back every record committed before the failure, byte for
 * byte, and none of the failed transaction.
 * - fork: a child opens and reads a DB its parent holds open (lmdb
 *   forbids using the parent's environment), then the parent still reads.
 *
 * MDB_MAP_FULL is not reachable: storage/lmdb.c sets a fixed 1 TiB map
 * (MAP_SIZE) on every open and ct_db_set_options takes no map size, so it
 * would take 1 TiB of data; see docs/reliability.md B9. */
#define _GNU_SOURCE /* unshare(2), in this test only */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cortado/storage.h"
#include "fs_util.h"
#include "test_util.h"

#define SKIP_CODE 77
#define VAL_LEN 8192
#define MAX_RECS 4096

static void fill_val(unsigned char *v, int i)
{
    int j;

    for (j = 0; j < VAL_LEN; j++)
        v[j] = (unsigned char)(i * 31 + j * 7);
}

static void key_of(char *k, size_t n, int i)
{
    snprintf(k, n, "k%06d", i);
}

/* Reads path back: the records must be exactly k0..k(n-1). Returns 0 or
 * a nonzero code (for a child's exit status); prints why. */
static int check_committed(const char *path, int n)
{
    unsigned char want[VAL_LEN];
    char key[32];
    ct_db_t *db;
    ct_db_cursor_t *c;
    ct_status_t st;
    int i = 0, rc = 0;

    if (ct_db_open("lmdb", path, CT_DB_READ, &db, &st) != CT_OK) {
        fprintf(stderr, "reopen: %s\n", st.msg);
        return 20;
    }
    if (ct_db_cursor_new(db, &c, &st) != CT_OK) {
        fprintf(stderr, "cursor: %s\n", st.msg);
        ct_db_free(db);
        return 21;
    }
    for (; ct_db_cursor_valid(c); i++) {
        const void *v;
        size_t klen, vlen;
        const char *k = ct_db_cursor_key(c, &klen);

        key_of(key, sizeof(key), i);
        fill_val(want, i);
        if (i >= n || strcmp(k, key) != 0 ||
            ct_db_cursor_value(c, &v, &vlen, &st) != CT_OK || vlen != VAL_LEN ||
            memcmp(v, want, VAL_LEN) != 0) {
            fprintf(stderr, "record %d (%s) differs, %d committed\n", i, k, n);
            rc = 22;
            break;
        }
        if (ct_db_cursor_next(c, &st) != CT_OK) {
            fprintf(stderr, "next: %s\n", st.msg);
            rc = 23;
            break;
        }
    }
    if (rc == 0 && i != n) {
        fprintf(stderr, "read %d records, %d committed\n", i, n);
        rc = 24;
    }
    ct_db_cursor_free(c);
    ct_db_free(db);
    return rc;
}

/* Commits one VAL_LEN record per transaction into a NEW lmdb at path
 * until a put or a commit fails; checks that failure (CT_EIO, the path,
 * "mdb_txn_commit failed", and `errtext` or `errtext2`) and that the
 * committed records read back. Returns 0 or a nonzero code (child exit
 * status). */
static int fill_until_failure(const char *path, const char *errtext,
                              const char *errtext2)
{
    unsigned char val[VAL_LEN];
    char key[32];
    ct_db_t *db;
    ct_db_txn_t *t;
    ct_status_t st;
    int n = 0, rc = CT_OK;

    if (ct_db_open("lmdb", path, CT_DB_NEW, &db, &st) != CT_OK) {
        fprintf(stderr, "open: %s\n", st.msg);
        return 10;
    }
    if (ct_db_txn_new(db, &t, &st) != CT_OK) {
        fprintf(stderr, "txn: %s\n", st.msg);
        return 11;
    }
    while (n < MAX_RECS) {
        key_of(key, sizeof(key), n);
        fill_val(val, n);
        rc = ct_db_txn_put(t, key, strlen(key), val, VAL_LEN, &st);
        if (rc == CT_OK)
            rc = ct_db_txn_commit(t, &st);
        if (rc != CT_OK)
            break;
        n++;
    }
    ct_db_txn_free(t);
    ct_db_free(db);
    if (rc != CT_EIO || strstr(st.msg, path) == NULL ||
        strstr(st.msg, "mdb_txn_commit failed") == NULL ||
        (strstr(st.msg, errtext) == NULL && strstr(st.msg, errtext2) == NULL)) {
        fprintf(stderr, "after %d commits: %s %s\n", n, ct_err_name(rc),
                st.msg);
        return 12;
    }
    if (n < 2) { /* some records fit before the failure */
        fprintf(stderr, "only %d commits before: %s\n", n, st.msg);
        return 13;
    }
    return check_committed(path, n);
}

static int wait_child(pid_t pid)
{
    int status;

    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_lmdb_enospc_on_real_tmpfs_keeps_committed(void **state)
{
    char dir[] = "/tmp/ct_rel_lmdb_XXXXXX";
    pid_t pid;
    int code;

    (void)state;
    if (!ct_db_type_registered("lmdb"))
        skip();
    assert_non_null(mkdtemp(dir));
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        char path[64];

        if (unshare(CLONE_NEWNS) != 0 &&
            unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            _exit(SKIP_CODE);
        if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", dir, "tmpfs", 0, "size=256k") != 0)
            _exit(SKIP_CODE);
        snprintf(path, sizeof(path), "%s/db", dir);
        /* lmdb turns a short pwrite into EIO (mdb.c, mdb_page_flush:
         * "TODO: Use which error code?"), and tmpfs fills the last page
         * before it refuses, so the text is usually "Input/output error",
         * "No space left on device" when the write starts on a full
         * file system. */
        _exit(fill_until_failure(path, "No space left on device",
                                 "Input/output error"));
    }
    code = wait_child(pid);
    tu_rm_dir(dir); /* the tmpfs went with the child's namespace */
    if (code == SKIP_CODE)
        skip();
    assert_int_equal(code, 0);
}

static void test_lmdb_file_size_limit_keeps_committed(void **state)
{
    char dir[] = "/tmp/ct_rel_lmdb_XXXXXX";
    char path[64];
    pid_t pid;
    int code;

    (void)state;
    if (!ct_db_type_registered("lmdb"))
        skip();
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/db", dir);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl = {128 * 1024, 128 * 1024};

        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(SKIP_CODE);
        _exit(fill_until_failure(path, "File too large", "Input/output error"));
    }
    code = wait_child(pid);
    /* The parent has no limit: the DB still reads back here too. */
    if (code == 0) {
        ct_db_t *db;
        ct_db_cursor_t *c;
        ct_status_t st;
        int n = 0;

        assert_int_equal(ct_db_open("lmdb", path, CT_DB_READ, &db, &st), CT_OK);
        assert_int_equal(ct_db_cursor_new(db, &c, &st), CT_OK);
        for (; ct_db_cursor_valid(c); n++)
            assert_int_equal(ct_db_cursor_next(c, &st), CT_OK);
        ct_db_cursor_free(c);
        ct_db_free(db);
        assert_int_equal(check_committed(path, n), 0);
        assert_true(n >= 2);
    }
    snprintf(path, sizeof(path), "%s/db", dir);
    tu_rm_dir(path);
    tu_rm_dir(dir);
    if (code == SKIP_CODE)
        skip();
    assert_int_equal(code, 0);
}

static void test_lmdb_env_opened_in_parent_is_usable_in_fork_child(void **s)
{
    char dir[] = "/tmp/ct_rel_lmdb_XXXXXX";
    char path[64];
    struct ct_db_record r[3];
    char keys[3][32];
    unsigned char vals[3][VAL_LEN];
    ct_db_t *db;
    ct_status_t st;
    pid_t pid;
    int i;

    (void)s;
    if (!ct_db_type_registered("lmdb"))
        skip();
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/db", dir);
    for (i = 0; i < 3; i++) {
        key_of(keys[i], sizeof(keys[i]), i);
        fill_val(vals[i], i);
        r[i].key = keys[i];
        r[i].klen = strlen(keys[i]);
        r[i].val = vals[i];
        r[i].vlen = VAL_LEN;
    }
    assert_int_equal(ct_db_write_records("lmdb", path, r, 3, &st), CT_OK);
    /* The parent holds the environment open across the fork. */
    assert_int_equal(ct_db_open("lmdb", path, CT_DB_READ, &db, &st), CT_OK);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        /* A new environment of its own: reads, and may even write since
         * the parent's read-only entry is not this process's. */
        int rc = check_committed(path, 3);
        ct_db_t *w;

        if (rc == 0 && ct_db_open("lmdb", path, CT_DB_WRITE, &w, &st) != CT_OK)
            rc = 30;
        else if (rc == 0)
            ct_db_free(w);
        _exit(rc);
    }
    assert_int_equal(wait_child(pid), 0);
    assert_int_equal(check_committed(path, 3), 0); /* shares db's env */
    ct_db_free(db);
    assert_int_equal(check_committed(path, 3), 0);
    tu_rm_dir(path);
    tu_rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lmdb_enospc_on_real_tmpfs_keeps_committed),
        cmocka_unit_test(test_lmdb_file_size_limit_keeps_committed),
        cmocka_unit_test(
            test_lmdb_env_opened_in_parent_is_usable_in_fork_child),
    };

    return cmocka_run_group_tests_name("engine.reliability_lmdb", tests, NULL,
                                       NULL);
}
