/* cortado: the storage I/O shim and the crash-safe file writer.
 *
 * Design note: see storage/fileio.h for the writer protocol. The fault
 * plan is process-wide test state: 16 slots of (op, countdown, errno)
 * plus per-op call counters, all atomics, so a plan armed by a test
 * thread fires correctly on a writer thread. The wrappers read one
 * relaxed flag to skip the plan entirely when nothing is armed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/alloc.h"
#include "storage/fileio.h"

/* ---- the fault plan ---- */

#define N_PLANS 16

struct plan {
    _Atomic int op;
    _Atomic long countdown; /* > 0: armed; the call that moves it to 0 fails */
    _Atomic int err;
};

/* atomic, relaxed: test-only state; a plan armed before the call it
 * targets is sequenced before it by the test itself (same thread, or a
 * join/lock the test uses to start the writer). */
static struct plan plans[N_PLANS];
static _Atomic int n_armed;
static _Atomic size_t short_writes;
static _Atomic long counts[CT_IO_OP_COUNT];

void ct__io_fail_nth(enum ct__io_op op, long nth, int err)
{
    int i;

    CT_ASSERT(op >= 0 && op < CT_IO_OP_COUNT && nth > 0, "bad fault plan");
    for (i = 0; i < N_PLANS; i++) {
        if (atomic_load(&plans[i].countdown) > 0)
            continue;
        atomic_store(&plans[i].op, (int)op);
        atomic_store(&plans[i].err, err);
        atomic_store(&plans[i].countdown, nth);
        atomic_fetch_add(&n_armed, 1);
        return;
    }
    CT_ASSERT(0, "more than %d I/O fault plans armed", N_PLANS);
}

void ct__io_set_short_writes(size_t max)
{
    atomic_store(&short_writes, max);
}

void ct__io_reset(void)
{
    int i;

    for (i = 0; i < N_PLANS; i++)
        atomic_store(&plans[i].countdown, 0);
    atomic_store(&n_armed, 0);
    atomic_store(&short_writes, 0);
    for (i = 0; i < CT_IO_OP_COUNT; i++)
        atomic_store(&counts[i], 0);
}

long ct__io_count(enum ct__io_op op)
{
    return atomic_load(&counts[op]);
}

const char *ct__io_op_name(enum ct__io_op op)
{
    static const char *const names[CT_IO_OP_COUNT] = {
        "open",   "write",     "read",       "fsync",  "close",
        "rename", "open(dir)", "fsync(dir)", "unlink",
    };
    return op >= 0 && op < CT_IO_OP_COUNT ? names[op] : "?";
}

/* Counts the call and returns the errno it must fail with, or 0. */
static int io_enter(enum ct__io_op op)
{
    int i;

    atomic_fetch_add_explicit(&counts[op], 1, memory_order_relaxed);
    if (atomic_load_explicit(&n_armed, memory_order_relaxed) == 0)
        return 0;
    for (i = 0; i < N_PLANS; i++) {
        long left;
        if (atomic_load(&plans[i].op) != (int)op)
            continue;
        left = atomic_load(&plans[i].countdown);
        while (left > 0 && !atomic_compare_exchange_weak(&plans[i].countdown,
                                                         &left, left - 1))
            ;
        if (left == 1) {
            atomic_fetch_sub(&n_armed, 1);
            return atomic_load(&plans[i].err);
        }
    }
    return 0;
}

#define IO_FAULT(op)                                                           \
    do {                                                                       \
        int fault_ = io_enter(op);                                             \
        if (fault_ != 0) {                                                     \
            errno = fault_;                                                    \
            return -1;                                                         \
        }                                                                      \
    } while (0)

int ct__io_open(const char *path, int flags, mode_t mode)
{
    IO_FAULT(CT_IO_OPEN);
    return open(path, flags, mode);
}

ssize_t ct__io_writev(int fd, const struct iovec *iov, int n)
{
    size_t max;

    IO_FAULT(CT_IO_WRITE);
    max = atomic_load_explicit(&short_writes, memory_order_relaxed);
    if (max > 0 && n > 0) {
        /* A short write: at most max bytes of the first non-empty piece. */
        int i;
        for (i = 0; i < n && iov[i].iov_len == 0; i++)
            ;
        if (i == n)
            return 0;
        return write(fd, iov[i].iov_base,
                     iov[i].iov_len < max ? iov[i].iov_len : max);
    }
    return writev(fd, iov, n);
}

ssize_t ct__io_pread(int fd, void *buf, size_t n, off_t off)
{
    IO_FAULT(CT_IO_READ);
    return pread(fd, buf, n, off);
}

int ct__io_fsync(int fd)
{
    IO_FAULT(CT_IO_FSYNC);
    return fsync(fd);
}

int ct__io_close(int fd)
{
    int fault = io_enter(CT_IO_CLOSE);

    /* The descriptor is released even when the plan fails the call, as
     * Linux does for a close that reports EIO. */
    if (fault != 0) {
        close(fd);
        errno = fault;
        return -1;
    }
    return close(fd);
}

int ct__io_rename(const char *from, const char *to)
{
    IO_FAULT(CT_IO_RENAME);
    return rename(from, to);
}

int ct__io_open_dir(const char *path)
{
    IO_FAULT(CT_IO_OPEN_DIR);
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int ct__io_fsync_dir(int fd)
{
    IO_FAULT(CT_IO_FSYNC_DIR);
    return fsync(fd);
}

int ct__io_unlink(const char *path)
{
    IO_FAULT(CT_IO_UNLINK);
    return unlink(path);
}

const char *ct__errno_text(int err, char *buf, size_t size)
{
    static const struct {
        int err;
        const char *name;
    } names[] = {
        {ENOSPC, "ENOSPC"}, {EIO, "EIO"},
        {EDQUOT, "EDQUOT"}, {EFBIG, "EFBIG"},
        {EMFILE, "EMFILE"}, {EACCES, "EACCES"},
        {ENOENT, "ENOENT"}, {EROFS, "EROFS"},
        {EEXIST, "EEXIST"}, {EXDEV, "EXDEV"},
        {EINTR, "EINTR"},   {EPERM, "EPERM"},
        {EISDIR, "EISDIR"}, {ENOTDIR, "ENOTDIR"},
        {ENFILE, "ENFILE"}, {ENAMETOOLONG, "ENAMETOOLONG"},
    };
    char text[96];
    const char *name = NULL;
    size_t i;

    if (strerror_r(err, text, sizeof(text)) != 0)
        snprintf(text, sizeof(text), "error %d", err);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].err == err)
            name = names[i].name;
    if (name != NULL)
        snprintf(buf, size, "%s (%s)", text, name);
    else
        snprintf(buf, size, "%s (errno %d)", text, err);
    return buf;
}

static int io_fail(ct_status_t *st, int code, const char *what,
                   const char *path, int err)
{
    char ebuf[128];
    return ct_status_setf(st, code, "cannot %s %s: %s", what, path,
                          ct__errno_text(err, ebuf, sizeof(ebuf)));
}

/* ---- temporary names ---- */

/* Longest part of the target's name kept in a temporary name, so that
 * ".<name>.tmp.<pid>.<seq>" stays under NAME_MAX (255). */
#define TMP_NAME_KEEP 200

/* Names temporary files uniquely within the process; the pid separates
 * processes. atomic, relaxed: only uniqueness matters, not ordering. */
static _Atomic unsigned tmp_seq;

/* Splits path into a malloc'd directory ("." when there is no slash) and
 * a pointer to the last component. */
static char *dir_of(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        *base = path;
        return ct__strdup(".");
    }
    *base = slash + 1;
    return ct__strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

static bool all_digits(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > 19)
        return false;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* When name is ".<stem>.tmp.<pid>.<seq>", sets *stem, *stem_len and *pid. */
static bool parse_temp_name(const char *name, const char **stem,
                            size_t *stem_len, long *pid)
{
    size_t n = strlen(name);
    const char *seq, *p, *tmp;

    if (n < 8 || name[0] != '.')
        return false;
    seq = strrchr(name, '.');
    if (seq == name || !all_digits(seq + 1, strlen(seq + 1)))
        return false;
    for (p = seq - 1; p > name && *p != '.'; p--)
        ;
    if (p <= name || !all_digits(p + 1, (size_t)(seq - p - 1)))
        return false;
    if ((size_t)(p - name) < 5)
        return false;
    tmp = p - 4;
    if (memcmp(tmp, ".tmp", 4) != 0 || tmp <= name + 1)
        return false;
    *stem = name + 1;
    *stem_len = (size_t)(tmp - name - 1);
    *pid = strtol(p + 1, NULL, 10);
    return true;
}

bool ct__is_temp_name(const char *path)
{
    const char *base = strrchr(path, '/'), *stem;
    size_t stem_len;
    long pid;

    return parse_temp_name(base != NULL ? base + 1 : path, &stem, &stem_len,
                           &pid);
}

int ct__sweep_temp_files(const char *path, int *n_removed, ct_status_t *st)
{
    const char *base, *stem;
    size_t keep, stem_len;
    char *dir, *full;
    struct dirent *e;
    DIR *d;
    long pid;
    int n = 0;

    if (n_removed != NULL)
        *n_removed = 0;
    dir = dir_of(path, &base);
    if (dir == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory sweeping %s", path);
    keep = strlen(base) < TMP_NAME_KEEP ? strlen(base) : TMP_NAME_KEEP;
    d = opendir(dir);
    if (d == NULL) {
        int err = errno;
        ct__free(dir);
        if (err == ENOENT)
            return CT_OK;
        return io_fail(st, CT_EIO, "list directory", path, err);
    }
    while ((e = readdir(d)) != NULL) {
        if (!parse_temp_name(e->d_name, &stem, &stem_len, &pid) ||
            stem_len != keep || memcmp(stem, base, keep) != 0)
            continue;
        /* Only files of processes that are gone: a live process (this one
         * included) may be writing it right now. A recycled pid keeps a
         * stale file until that process exits too, which is harmless. */
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
            errno != ESRCH)
            continue;
        full = ct__malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (full == NULL)
            break;
        sprintf(full, "%s/%s", dir, e->d_name);
        if (ct__io_unlink(full) == 0)
            n++;
        ct__free(full);
    }
    closedir(d);
    ct__free(dir);
    if (n_removed != NULL)
        *n_removed = n;
    return CT_OK;
}

/* ---- the crash-safe writer ---- */

static void afile_release(struct ct__afile *f)
{
    ct__free(f->path);
    ct__free(f->tmp);
    ct__free(f->dir);
    f->path = f->tmp = f->dir = NULL;
    f->fd = -1;
}

int ct__afile_open(struct ct__afile *f, const char *path, ct_status_t *st)
{
    const char *base;
    struct stat sb;
    size_t cap;
    int attempt;

    memset(f, 0, sizeof(*f));
    f->fd = -1;
    if (path[0] == '\0')
        return ct_status_setf(st, CT_EPATH, "empty path");
    /* The previous file is replaced by rename, which would replace a
     * symbolic link itself or fail on a directory: refuse both up front
     * (checklist A18), and anything that is not a regular file. */
    if (lstat(path, &sb) == 0) {
        if (S_ISLNK(sb.st_mode))
            return ct_status_setf(st, CT_EPATH,
                                  "%s is a symbolic link; refusing to "
                                  "replace it",
                                  path);
        if (S_ISDIR(sb.st_mode))
            return ct_status_setf(st, CT_EPATH, "%s is a directory", path);
        if (!S_ISREG(sb.st_mode))
            return ct_status_setf(st, CT_EPATH, "%s is not a regular file",
                                  path);
    }
    if (ct__is_temp_name(path))
        return ct_status_setf(st, CT_EPATH,
                              "%s has the name of a temporary file", path);
    f->path = ct__strdup(path);
    f->dir = dir_of(path, &base);
    cap = strlen(f->dir ? f->dir : "") + TMP_NAME_KEEP + 64;
    f->tmp = ct__malloc(cap);
    if (f->path == NULL || f->dir == NULL || f->tmp == NULL) {
        afile_release(f);
        return ct_status_setf(st, CT_ENOMEM, "out of memory writing %s", path);
    }
    /* Best effort: a failure to list the directory shows up again, with a
     * better message, when the temporary file is created. */
    ct__sweep_temp_files(path, NULL, NULL);
    for (attempt = 0; attempt < 100; attempt++) {
        unsigned seq =
            atomic_fetch_add_explicit(&tmp_seq, 1, memory_order_relaxed);
        snprintf(f->tmp, cap, "%s/.%.*s.tmp.%ld.%u", f->dir, TMP_NAME_KEEP,
                 base, (long)getpid(), seq);
        f->fd =
            ct__io_open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (f->fd >= 0 || errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        int rc = io_fail(st, CT_EIO, "create temporary file", f->tmp, errno);
        afile_release(f);
        return rc;
    }
    return CT_OK;
}

int ct__afile_writev(struct ct__afile *f, const struct iovec *iov, int n,
                     ct_status_t *st)
{
    struct iovec local[64];
    int i = 0;

    CT_ASSERT(f->fd >= 0, "write to a released file");
    if (f->err != 0)
        return io_fail(st, CT_EIO, "write", f->tmp, f->err);
    while (i < n) {
        /* Copy a window of pieces so a partial write can advance into
         * them without touching the caller's array; cap each call at
         * 1 GiB (Linux moves at most 0x7ffff000 bytes per call anyway). */
        int k = 0;
        size_t total = 0;
        ssize_t got;
        while (i + k < n && k < 64 && total < ((size_t)1 << 30)) {
            local[k] = iov[i + k];
            total += local[k].iov_len;
            k++;
        }
        {
            int at = 0;
            while (at < k) {
                got = ct__io_writev(f->fd, local + at, k - at);
                if (got < 0) {
                    if (errno == EINTR)
                        continue;
                    f->err = errno;
                    return io_fail(st, CT_EIO, "write", f->tmp, f->err);
                }
                f->size += (uint64_t)got;
                while (at < k && (size_t)got >= local[at].iov_len) {
                    got -= (ssize_t)local[at].iov_len;
                    at++;
                }
                if (at < k) {
                    local[at].iov_base = (char *)local[at].iov_base + got;
                    local[at].iov_len -= (size_t)got;
                }
            }
        }
        i += k;
    }
    return CT_OK;
}

int ct__afile_write(struct ct__afile *f, const void *buf, size_t len,
                    ct_status_t *st)
{
    struct iovec v;

    v.iov_base = (void *)buf;
    v.iov_len = len;
    return ct__afile_writev(f, &v, 1, st);
}

void ct__afile_abort(struct ct__afile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    /* A failed unlink leaves a stale temporary file: the loader refuses
     * temporary names and the next save of this path sweeps it. */
    if (f->tmp != NULL)
        ct__io_unlink(f->tmp);
    afile_release(f);
}

int ct__afile_commit(struct ct__afile *f, ct_status_t *st)
{
    int rc, dfd, err;

    CT_ASSERT(f->fd >= 0, "commit of a released file");
    if (f->err != 0) {
        rc = io_fail(st, CT_EIO, "write", f->tmp, f->err);
        goto fail;
    }
    while (ct__io_fsync(f->fd) != 0) {
        /* EINTR means the call did nothing; any other error is final:
         * after a failed fsync the page cache may have dropped the dirty
         * pages, so a retry that succeeds proves nothing. */
        if (errno != EINTR) {
            rc = io_fail(st, CT_EIO, "fsync", f->tmp, errno);
            goto fail;
        }
    }
    err = ct__io_close(f->fd) == 0 || errno == EINTR ? 0 : errno;
    f->fd = -1;
    if (err != 0) {
        rc = io_fail(st, CT_EIO, "close", f->tmp, err);
        goto fail;
    }
    if (ct__io_rename(f->tmp, f->path) != 0) {
        char ebuf[128];
        rc = ct_status_setf(st, CT_EIO, "cannot rename %s to %s: %s", f->tmp,
                            f->path, ct__errno_text(errno, ebuf, sizeof(ebuf)));
        goto fail;
    }
    /* Published. Only the durability of the rename is left. */
    rc = CT_OK;
    dfd = ct__io_open_dir(f->dir);
    if (dfd < 0) {
        err = errno;
    } else {
        err = 0;
        while (ct__io_fsync_dir(dfd) != 0) {
            if (errno != EINTR) {
                err = errno;
                break;
            }
        }
        close(dfd);
    }
    if (err != 0) {
        char ebuf[128];
        rc = ct_status_setf(st, CT_EDURABILITY,
                            "committed, durability unknown: wrote %s, but "
                            "cannot fsync its directory %s: %s",
                            f->path, f->dir,
                            ct__errno_text(err, ebuf, sizeof(ebuf)));
    }
    afile_release(f);
    return rc;

fail:
    ct__afile_abort(f);
    return rc;
}

/* ---- reading ---- */

int ct__read_exact(int fd, void *buf, size_t n, uint64_t off, const char *path,
                   ct_status_t *st)
{
    char *p = buf;

    while (n > 0) {
        size_t want = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        ssize_t got = ct__io_pread(fd, p, want, (off_t)off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return io_fail(st, CT_EIO, "read", path, errno);
        }
        if (got == 0)
            return ct_status_setf(st, CT_ECORRUPT,
                                  "%s: unexpected end of file at offset "
                                  "%llu (the file shrank while being read)",
                                  path, (unsigned long long)off);
        p += got;
        off += (uint64_t)got;
        n -= (size_t)got;
    }
    return CT_OK;
}
