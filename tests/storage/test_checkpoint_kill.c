/* Crash consistency of asynchronous checkpoints (reliability checklist
 * A10, A16, A17): a child process (this binary re-executed with --child)
 * saves a few MB of tensors asynchronously in a loop, with values that
 * change every iteration and keep_last retention, while the parent
 * SIGKILLs it at a random moment: after 0 to 3 saves were queued (the
 * child reports each one on a pipe; with max_in_flight 1, queueing save k
 * means save k-1 was published), plus a random delay up to the measured
 * time between two saves, so kills land while staging, writing,
 * fsyncing, renaming and deleting old files alike. After every
 * kill each checkpoint file present must verify (framing, manifest, every
 * CRC32C), load, and hold exactly the values of the iteration its name
 * gives; the stale temporary files of the dead child must be swept; and
 * the newest complete checkpoint must never be lost.
 * CT_KILL_ROUNDS sets the number of kills (default 200; nightly 10000).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "scheduler/sync.h"
#include "storage/fileio.h"
#include "storage_test.h"
#include "test_util.h"

#define PATTERN "ckpt_%012d.minidb"
#define ITERS_PER_ROUND 1000000LL

static const char *const names[] = {"iter", "w0", "w1", "emb", "step"};
#define N_NAMES (sizeof(names) / sizeof(names[0]))
/* Element counts: about 4.5 MB in all. */
static const int64_t sizes[N_NAMES] = {1, 262144, 524288, 262144, 1000};
static const ct_dtype_t dtypes[N_NAMES] = {
    CT_DTYPE_I64, CT_DTYPE_F32, CT_DTYPE_F32, CT_DTYPE_I32, CT_DTYPE_F64};

/* Element j of tensor k at iteration i, as raw bits of its dtype. */
static float value_f32(int64_t i, size_t k, int64_t j)
{
    return (float)((uint64_t)(i * 31 + j * 7 + (int64_t)k) % 100003u) * 0.5f;
}

static int32_t value_i32(int64_t i, int64_t j)
{
    return (int32_t)((uint32_t)i * 2654435761u + (uint32_t)j);
}

static double value_f64(int64_t i, int64_t j)
{
    return (double)i / (double)(j + 1);
}

static void fill(ct_tensor_t *t, size_t k, int64_t i)
{
    int64_t j, n = sizes[k];

    switch (dtypes[k]) {
    case CT_DTYPE_I64:
        *(int64_t *)ct_tensor_data(t) = i;
        break;
    case CT_DTYPE_F32:
        for (j = 0; j < n; j++)
            ((float *)ct_tensor_data(t))[j] = value_f32(i, k, j);
        break;
    case CT_DTYPE_I32:
        for (j = 0; j < n; j++)
            ((int32_t *)ct_tensor_data(t))[j] = value_i32(i, j);
        break;
    default:
        for (j = 0; j < n; j++)
            ((double *)ct_tensor_data(t))[j] = value_f64(i, j);
        break;
    }
}

/* Whether t holds exactly the values of iteration i (bitwise). */
static bool holds(const ct_tensor_t *t, size_t k, int64_t i)
{
    int64_t j, n = sizes[k];

    if (ct_tensor_dtype(t) != dtypes[k] || ct_tensor_numel(t) != n)
        return false;
    for (j = 0; j < n; j++) {
        switch (dtypes[k]) {
        case CT_DTYPE_I64:
            if (((const int64_t *)ct_tensor_cdata(t))[j] != i)
                return false;
            break;
        case CT_DTYPE_F32: {
            float v = value_f32(i, k, j);
            if (memcmp((const float *)ct_tensor_cdata(t) + j, &v, 4) != 0)
                return false;
            break;
        }
        case CT_DTYPE_I32:
            if (((const int32_t *)ct_tensor_cdata(t))[j] != value_i32(i, j))
                return false;
            break;
        default: {
            double v = value_f64(i, j);
            if (memcmp((const double *)ct_tensor_cdata(t) + j, &v, 8) != 0)
                return false;
            break;
        }
        }
    }
    return true;
}

/* ---- the child: checkpoints until killed ---- */

static int child_main(const char *dir, int64_t base, int snapshot, int ready_fd)
{
    struct ct_workspace_config wcfg = {NULL, NULL};
    struct ct_checkpoint_options o;
    ct_tensor_t *t[N_NAMES];
    ct_engine_t *eng;
    ct_workspace_t *ws;
    ct_status_t st;
    char pattern[4096];
    uint64_t t_end;
    int64_t i;
    size_t k;

    snprintf(pattern, sizeof(pattern), "%s/%s", dir, PATTERN);
    wcfg.root_folder = dir;
    if (ct_engine_new(NULL, &eng, &st) != CT_OK ||
        ct_workspace_new(eng, &wcfg, &ws, &st) != CT_OK) {
        fprintf(stderr, "child: %s\n", st.msg);
        return 3;
    }
    for (k = 0; k < N_NAMES; k++) {
        ct_blob_t *b;
        if (ct_workspace_create_blob(ws, names[k], &b, &st) != CT_OK ||
            ct_blob_get_mutable_tensor(b, eng, &t[k], &st) != CT_OK) {
            fprintf(stderr, "child: %s\n", st.msg);
            return 3;
        }
    }
    ct_checkpoint_options_init(&o);
    o.keep_last = 3;
    o.snapshot = snapshot;
    if (write(ready_fd, "r", 1) != 1)
        return 3;
    /* Killed long before; a bound in case the parent died. */
    t_end = ct__now_ns() + 20ull * 1000000000u;
    for (i = base + 1; ct__now_ns() < t_end; i++) {
        for (k = 0; k < N_NAMES; k++) {
            /* Resize before writing (as ops do): copies on write when a
             * SHARE snapshot still holds the storage. */
            if (ct_tensor_resize(t[k], dtypes[k], k == 0 ? 0 : 1, &sizes[k],
                                 &st) != CT_OK) {
                fprintf(stderr, "child: %s\n", st.msg);
                return 3;
            }
            fill(t[k], k, i);
        }
        if (ct_engine_checkpoint_async(eng, ws, names, N_NAMES, pattern, i, &o,
                                       &st) != CT_OK) {
            fprintf(stderr, "child: iteration %lld: %s\n", (long long)i,
                    st.msg);
            return 4;
        }
        if (write(ready_fd, "q", 1) != 1)
            return 3;
    }
    return 5;
}

/* ---- the parent ---- */

struct figures {
    long rounds, files_checked, rounds_with_new, temps_swept, max_kept;
    long failed_children;
    int64_t newest;
};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Loads path (a checkpoint of iteration iter) and checks every value. */
static void check_file(ct_workspace_t *ws, const char *path, int64_t iter)
{
    Caffe2__OperatorDef *op = tu_op("Load", "", "iter,w0,w1,emb,step");
    ct_status_t st;
    uint64_t n;
    size_t k;

    if (ct_db_verify("minidb", path, &n, &st) != CT_OK)
        fail_msg("after a kill: %s does not verify: %s", path, st.msg);
    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    if (tu_run_op(ws, op, &st) != CT_OK)
        fail_msg("after a kill: %s does not load: %s", path, st.msg);
    tu_op_free(op);
    for (k = 0; k < N_NAMES; k++)
        if (!holds(tu_fetch(ws, names[k]), k, iter))
            fail_msg("after a kill: %s: \"%s\" does not hold the values of "
                     "iteration %lld",
                     path, names[k], (long long)iter);
}

/* Checks, sweeps and prunes dir after a kill. */
static void check_dir(ct_workspace_t *ws, const char *dir, int64_t base,
                      struct figures *f)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int64_t newest = -1;
    long n_final = 0, n_temp = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        long long iter;
        char tail;
        char *p;
        if (e->d_name[0] == '.' &&
            (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0))
            continue;
        p = stu_path(dir, e->d_name);
        if (ct__is_temp_name(e->d_name)) {
            /* ".<target>.tmp.<pid>.<seq>": sweep the target's temporaries
             * (the child is dead, so they are stale). */
            char *target = strdup(p), *base_name, *cut;
            int n_removed = 0;
            ct_status_t st;
            assert_non_null(target);
            base_name = strrchr(target, '/') + 1;
            memmove(base_name, base_name + 1, strlen(base_name));
            cut = strstr(base_name, ".tmp.");
            assert_non_null(cut);
            *cut = '\0';
            assert_int_equal(ct_db_sweep_temp_files(target, &n_removed, &st),
                             CT_OK);
            f->temps_swept += n_removed;
            n_temp++;
            free(target);
        } else if (sscanf(e->d_name, "ckpt_%lld.minidb%c", &iter, &tail) == 1) {
            check_file(ws, p, iter);
            f->files_checked++;
            n_final++;
            if (iter > newest)
                newest = iter;
        } else {
            fail_msg("unexpected file %s", p);
        }
        free(p);
    }
    closedir(d);
    /* Every stale temporary file is gone after the sweep. */
    assert_int_equal(stu_count_entries(dir), n_final);
    (void)n_temp;
    /* The newest complete checkpoint is never lost. */
    assert_true(newest >= f->newest);
    if (newest > base)
        f->rounds_with_new++;
    if (n_final > f->max_kept)
        f->max_kept = n_final;
    f->newest = newest;
    /* Keep only the newest file for the next round. */
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        long long iter;
        char tail;
        if (sscanf(e->d_name, "ckpt_%lld.minidb%c", &iter, &tail) == 1 &&
            iter != newest) {
            char *p = stu_path(dir, e->d_name);
            assert_int_equal(unlink(p), 0);
            free(p);
        }
    }
    closedir(d);
}

static void test_checkpoint_kill_newest_complete_checkpoint_loads(void **state)
{
    struct tu_env env;
    struct figures f;
    char *dir = stu_tmpdir();
    const char *env_rounds = getenv("CT_KILL_ROUNDS");
    long rounds = env_rounds != NULL ? atol(env_rounds) : 200, r;
    uint64_t seed = (uint64_t)time(NULL), rng, t0 = ct__now_ns();
    long interval_us = 50000; /* between two saves; measured as we go */
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    (void)state;
    assert_true(len > 0);
    exe[len] = '\0';
    rng = seed;
    memset(&f, 0, sizeof(f));
    f.newest = -1;
    tu_env_init(&env);
    for (r = 1; r <= rounds; r++) {
        char base_arg[32], mode_arg[8], fd_arg[16], ready;
        int64_t base = (int64_t)r * ITERS_PER_ROUND;
        int n_saves = (int)(rng_next(&rng) % 4u), k, status, fds[2];
        long delay_us;
        uint64_t t_prev = 0;
        pid_t pid;

        assert_int_equal(pipe(fds), 0);
        snprintf(base_arg, sizeof(base_arg), "%lld", (long long)base);
        snprintf(mode_arg, sizeof(mode_arg), "%d", (int)(r % 2));
        snprintf(fd_arg, sizeof(fd_arg), "%d", fds[1]);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            execl(exe, exe, "--child", dir, base_arg, mode_arg, fd_arg,
                  (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        /* The ready byte, then one byte per save queued. EOF: the child
         * failed (counted by its exit status below). */
        for (k = 0; k <= n_saves; k++) {
            ssize_t got;
            while ((got = read(fds[0], &ready, 1)) < 0 && errno == EINTR)
                ;
            if (got != 1)
                break;
            if (k >= 2)
                interval_us =
                    (interval_us * 7 + (long)((ct__now_ns() - t_prev) / 1000)) /
                    8;
            t_prev = ct__now_ns();
        }
        delay_us = (long)(rng_next(&rng) % (uint64_t)(interval_us + 1));
        sleep_us(delay_us);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        close(fds[0]);
        if (!WIFSIGNALED(status))
            f.failed_children++; /* it exited by itself: an error */
        check_dir(env.ws, dir, base, &f);
        f.rounds++;
    }
    tu_env_destroy(&env);
    print_message("kill test: seed %llu, %ld kills in %.1f s (%.0f ms "
                  "between saves); %ld files verified and loaded, %ld "
                  "rounds published a new checkpoint before the kill, %ld "
                  "stale temporary files swept, at most %ld files present, "
                  "newest iteration %lld\n",
                  (unsigned long long)seed, f.rounds,
                  (double)(ct__now_ns() - t0) / 1e9, interval_us / 1e3,
                  f.files_checked, f.rounds_with_new, f.temps_swept, f.max_kept,
                  (long long)f.newest);
    assert_int_equal(f.failed_children, 0);
    /* The kills must land both between and during saves. */
    assert_true(f.rounds_with_new > 0);
    assert_true(f.temps_swept > 0);
    stu_rmtree(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_kill_newest_complete_checkpoint_loads),
    };

    if (argc == 6 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], strtoll(argv[3], NULL, 10), atoi(argv[4]),
                          atoi(argv[5]));
    return cmocka_run_group_tests_name("storage.checkpoint_kill", tests, NULL,
                                       NULL);
}
