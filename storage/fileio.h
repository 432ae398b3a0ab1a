/* cortado internal: file I/O for storage/, behind a fault-injection shim.
 *
 * Every system call the storage code makes on the save and load paths
 * goes through a ct__io_* wrapper. In production a wrapper is the system
 * call plus one relaxed atomic increment. Tests arm a fault plan ("fail
 * the 3rd write with ENOSPC", "every write moves at most 7 bytes") and
 * count calls, so each step of the writer protocol can be failed
 * deterministically (SQLite's approach), without root.
 *
 * ct__afile is the crash-safe file writer every replaced file goes
 * through (reliability checklist §1.3):
 *   1. open "<dir>/.<name>.tmp.<pid>.<seq>" with O_CREAT|O_EXCL|O_CLOEXEC,
 *      mode 0644, in the target's own directory (rename must not cross
 *      file systems);
 *   2. write, looping on short writes and retrying EINTR;
 *   3. fsync the file (EINTR retried, any other error is final: no retry,
 *      no rename), close it and check close;
 *   4. rename over the target, which atomically replaces the previous
 *      file: it is never truncated, unlinked or written before this point;
 *   5. open and fsync the directory. A failure here is CT_EDURABILITY,
 *      "committed, durability unknown": the new file is in place, but a
 *      crash may still bring back the previous one.
 * Any failure before step 4 closes and unlinks the temporary file and
 * leaves the target untouched; if even the unlink fails the stale file is
 * ignored by the loader (temporary names are refused) and removed by the
 * next save of that path (ct__sweep_temp_files).
 */
#ifndef CT_STORAGE_FILEIO_H
#define CT_STORAGE_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "cortado/error.h"

enum ct__io_op {
    CT_IO_OPEN,      /* open() of a file: temporary file or a DB to read */
    CT_IO_WRITE,     /* write() / writev() */
    CT_IO_READ,      /* pread() */
    CT_IO_FSYNC,     /* fsync() of a file */
    CT_IO_CLOSE,     /* close() of a file written */
    CT_IO_RENAME,    /* rename() of the temporary file over the target */
    CT_IO_OPEN_DIR,  /* open() of the directory, for its fsync */
    CT_IO_FSYNC_DIR, /* fsync() of the directory */
    CT_IO_UNLINK,    /* unlink() of a temporary file */
    CT_IO_OP_COUNT
};

/* ---- the fault plan (tests) ---- */

/* The nth call (1-based, counting from now) of op fails with errno err
 * (the call is not made). Up to 16 plans are armed at once; each fires
 * once. err EINTR makes that one call look interrupted. */
void ct__io_fail_nth(enum ct__io_op op, long nth, int err);
/* Makes every write/writev move at most max bytes (0: off). */
void ct__io_set_short_writes(size_t max);
/* Disarms every plan and zeroes the counters. */
void ct__io_reset(void);
/* Calls of op since the last reset (failed ones included). */
long ct__io_count(enum ct__io_op op);
/* Name of an op, e.g. "fsync(dir)". */
const char *ct__io_op_name(enum ct__io_op op);

/* ---- the wrappers: same contract as the system calls ---- */

int ct__io_open(const char *path, int flags, mode_t mode);
ssize_t ct__io_writev(int fd, const struct iovec *iov, int n);
ssize_t ct__io_pread(int fd, void *buf, size_t n, off_t off);
int ct__io_fsync(int fd);
int ct__io_close(int fd);
int ct__io_rename(const char *from, const char *to);
int ct__io_open_dir(const char *path);
int ct__io_fsync_dir(int fd);
int ct__io_unlink(const char *path);

/* "No space left on device (ENOSPC)" into buf. */
const char *ct__errno_text(int err, char *buf, size_t size);

/* ---- the crash-safe writer ---- */

struct ct__afile {
    int fd;        /* -1 once closed */
    char *path;    /* target, owned */
    char *tmp;     /* temporary file, owned */
    char *dir;     /* directory of both, owned */
    uint64_t size; /* bytes written so far */
    int err;       /* errno of a failed write, sticky; 0 when fine */
};

/* Sweeps stale temporary files of path, then creates a fresh temporary
 * file next to it. Errors: CT_EPATH (path is a directory, a symbolic link
 * or not a regular file), CT_EIO naming the temporary file and errno,
 * CT_ENOMEM. On failure f holds nothing to release. */
int ct__afile_open(struct ct__afile *f, const char *path, ct_status_t *st);
/* Appends the pieces, looping on short writes and EINTR. After a failure
 * every later call returns CT_EIO again. */
int ct__afile_writev(struct ct__afile *f, const struct iovec *iov, int n,
                     ct_status_t *st);
int ct__afile_write(struct ct__afile *f, const void *buf, size_t len,
                    ct_status_t *st);
/* Steps 3-5 above, then releases f. CT_OK, CT_EIO (target untouched,
 * temporary removed), CT_EDURABILITY. */
int ct__afile_commit(struct ct__afile *f, ct_status_t *st);
/* Closes and removes the temporary file and releases f; the target is
 * untouched. Safe on a zeroed or already released f (fd -1 or NULL
 * names). */
void ct__afile_abort(struct ct__afile *f);

/* ---- reading ---- */

/* Reads exactly n bytes at off. 0, or CT_EIO (errno, named with path), or
 * CT_ECORRUPT when the file ends first (it shrank under us). */
int ct__read_exact(int fd, void *buf, size_t n, uint64_t off, const char *path,
                   ct_status_t *st);

/* ---- temporary names ---- */

/* True when the last path component has the shape of a cortado
 * temporary file: ".<name>.tmp.<digits>.<digits>". */
bool ct__is_temp_name(const char *path);
/* Removes "<dir>/.<name>.tmp.<pid>.<seq>" files of path whose pid is not
 * a live process. *n_removed may be NULL. CT_EIO when the directory
 * cannot be listed (a missing directory counts as nothing to sweep). */
int ct__sweep_temp_files(const char *path, int *n_removed, ct_status_t *st);

#endif /* CT_STORAGE_FILEIO_H */
