/* A real ENOSPC (reliability checklist A1): in a child process with a
 * private mount namespace (unshare; as root, or as an unprivileged user
 * through a user namespace), a 256 KiB tmpfs holds a first checkpoint;
 * a second, larger one cannot fit. The save must fail with CT_EIO naming
 * ENOSPC, remove its temporary file, and leave the first checkpoint
 * byte-identical and loadable. Skipped where namespaces or tmpfs mounts
 * are not allowed. _GNU_SOURCE is for unshare(2) in this test only. */
#define _GNU_SOURCE

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage_test.h"
#include "test_util.h"

#define SKIP_CODE 77

static int save_floats(ct_engine_t *eng, const char *path, int64_t n,
                       ct_status_t *st)
{
    ct_tensor_t *t;
    struct ct_save_item it;
    int rc = ct_tensor_new_shape(eng, CT_DTYPE_F32, 1, &n, &t, st);

    if (rc != CT_OK)
        return rc;
    tu_fill_uniform(ct_tensor_data(t), (size_t)n, -1, 1, (uint64_t)n);
    memset(&it, 0, sizeof(it));
    it.name = "w";
    it.tensor = t;
    rc = ct_db_save_items("minidb", path, NULL, 0, &it, 1, NULL, st);
    ct_tensor_free(t);
    return rc;
}

/* Runs in the child; returns its exit code. */
static int child(const char *mnt)
{
    ct_engine_t *eng;
    ct_status_t st;
    char *path = stu_path(mnt, "ckpt.minidb");
    unsigned char *before, *after;
    size_t n0, n1;
    int rc;

    if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return SKIP_CODE;
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=256k") != 0)
        return SKIP_CODE;
    if (ct_engine_new(NULL, &eng, &st) != CT_OK)
        return 3;
    if (save_floats(eng, path, 20000, &st) != CT_OK) { /* 80 KB: fits */
        fprintf(stderr, "first save: %s\n", st.msg);
        return 4;
    }
    before = stu_read(path, &n0);
    rc = save_floats(eng, path, 60000, &st); /* 240 KB: does not */
    if (rc != CT_EIO || strstr(st.msg, "ENOSPC") == NULL) {
        fprintf(stderr, "second save: %s %s\n", ct_err_name(rc), st.msg);
        return 5;
    }
    after = stu_read(path, &n1);
    if (after == NULL || n1 != n0 || memcmp(before, after, n0) != 0)
        return 6;
    if (ct_db_verify("minidb", path, NULL, &st) != CT_OK)
        return 7;
    if (stu_count_entries(mnt) != 1) /* the temporary is gone */
        return 8;
    free(before);
    free(after);
    free(path);
    ct_engine_free(eng);
    return 0;
}

static void test_enospc_on_real_tmpfs_keeps_previous(void **state)
{
    char *dir = stu_tmpdir();
    int status;
    pid_t pid;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(dir));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    stu_rmtree(dir);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == SKIP_CODE)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enospc_on_real_tmpfs_keeps_previous),
    };
    return cmocka_run_group_tests_name("storage.enospc", tests, NULL, NULL);
}
