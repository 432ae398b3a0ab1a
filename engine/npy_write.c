/* cortado: NumPy .npy writer (the reader is in npy.c).
 *
 * Writing reproduces numpy.save byte for byte: keys sorted, Python reprs,
 * the 21-digit growth padding and 64-byte alignment, so files round-trip
 * through numpy unchanged. Data is written in host byte order with the
 * matching mark, hence no swapping on write. Files are written to a
 * temporary name in the target's directory, flushed to disk and renamed
 * over the target, so a reader sees the old or the complete new file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/npy.h"
#include "engine/alloc.h"
#include "engine/npy_impl.h"

/* Describes how t is written: the header text and the element width. */
struct npy_plan {
    char header[640]; /* preamble + dict + padding + '\n' */
    size_t header_bytes;
    size_t itemsize;
    uint64_t data_bytes;
};

static const char *descr_kind(ct_dtype_t dt)
{
    switch (dt) {
    case CT_DTYPE_F32:
        return "f4";
    case CT_DTYPE_F64:
        return "f8";
    case CT_DTYPE_F16:
        return "f2";
    case CT_DTYPE_I8:
        return "i1";
    case CT_DTYPE_I16:
        return "i2";
    case CT_DTYPE_I32:
        return "i4";
    case CT_DTYPE_I64:
        return "i8";
    case CT_DTYPE_U8:
        return "u1";
    case CT_DTYPE_BYTE:
        return "u1";
    case CT_DTYPE_U16:
        return "u2";
    case CT_DTYPE_BOOL:
        return "b1";
    default:
        return NULL;
    }
}

static int plan_write(const ct_tensor_t *t, struct npy_plan *pl,
                      ct_status_t *st)
{
    ct_dtype_t dt = ct_tensor_dtype(t);
    int ndim = ct_tensor_ndim(t);
    const int64_t *dims = ct_tensor_dims(t);
    int64_t numel = ct_tensor_numel(t);
    char dict[512], descr[32];
    size_t dlen, total;
    int i, n, digits;

    if (dt == CT_DTYPE_STRING) {
        const ct_str_t *e = ct_tensor_cdata(t);
        size_t w = 1;
        int64_t k;
        for (k = 0; k < numel; k++)
            if (e[k].len > w)
                w = e[k].len;
        pl->itemsize = w;
        snprintf(descr, sizeof(descr), "|S%zu", w);
    } else {
        const char *kind = descr_kind(dt);
        if (kind == NULL)
            return ct_status_setf(st, CT_ETYPE,
                                  "cannot write a %s tensor as .npy",
                                  ct_dtype_name(dt));
        pl->itemsize = ct_dtype_size(dt);
        snprintf(descr, sizeof(descr), "%c%s",
                 pl->itemsize == 1          ? '|'
                 : ct__npy_host_is_little() ? '<'
                                            : '>',
                 kind);
    }
    if (numel != 0 && pl->itemsize > UINT64_MAX / (uint64_t)numel)
        return ct_status_setf(st, CT_EOVERFLOW, "tensor data size overflows");
    pl->data_bytes = (uint64_t)numel * pl->itemsize;

    /* Python's repr of the header dict, keys sorted. */
    n = snprintf(dict, sizeof(dict),
                 "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    dlen = (size_t)n;
    for (i = 0; i < ndim; i++) {
        n = snprintf(dict + dlen, sizeof(dict) - dlen, "%s%lld", i ? ", " : "",
                     (long long)dims[i]);
        dlen += (size_t)n;
    }
    n = snprintf(dict + dlen, sizeof(dict) - dlen, "%s), }",
                 ndim == 1 ? "," : "");
    dlen += (size_t)n;
    if (ndim > 0) {
        digits = snprintf(NULL, 0, "%lld", (long long)dims[0]);
        for (i = digits; i < CT_NPY_GROWTH_DIGITS; i++)
            dict[dlen++] = ' ';
    }
    /* Version 1.0: 10-byte preamble; dict + '\n' padded with spaces so
     * that the data starts at a multiple of 64 (numpy pads a full 64 when
     * already aligned). The dict is < 512 bytes, so 1.0 always fits. */
    total = CT_NPY_MAGIC_LEN + 2 + 2 + dlen + 1;
    total += CT_NPY_ALIGN - total % CT_NPY_ALIGN;
    CT_ASSERT(total <= sizeof(pl->header), "npy header too long");
    memcpy(pl->header, CT_NPY_MAGIC, CT_NPY_MAGIC_LEN);
    pl->header[6] = 1;
    pl->header[7] = 0;
    pl->header[8] = (char)((total - 10) & 0xff);
    pl->header[9] = (char)((total - 10) >> 8);
    memcpy(pl->header + 10, dict, dlen);
    memset(pl->header + 10 + dlen, ' ', total - 10 - dlen - 1);
    pl->header[total - 1] = '\n';
    pl->header_bytes = total;
    return CT_OK;
}

/* Where serialised bytes go: a memory buffer or a stdio stream. */
struct sink {
    unsigned char *buf; /* memory: next byte to write */
    FILE *f;            /* file: stream, or NULL */
    int err;            /* errno of the first failed write */
};

static void sink_put(struct sink *s, const void *p, size_t n)
{
    if (n == 0 || s->err != 0)
        return;
    if (s->f == NULL) {
        memcpy(s->buf, p, n);
        s->buf += n;
    } else if (fwrite(p, 1, n, s->f) != n) {
        s->err = errno != 0 ? errno : EIO;
    }
}

static void emit(const ct_tensor_t *t, const struct npy_plan *pl,
                 struct sink *s)
{
    ct_dtype_t dt = ct_tensor_dtype(t);
    int64_t numel = ct_tensor_numel(t), i;

    sink_put(s, pl->header, pl->header_bytes);
    if (dt == CT_DTYPE_STRING) {
        static const unsigned char zeros[256];
        const ct_str_t *e = ct_tensor_cdata(t);
        for (i = 0; i < numel; i++) {
            size_t pad = pl->itemsize - e[i].len;
            sink_put(s, e[i].data, e[i].len);
            while (pad > 0) {
                size_t k = pad < sizeof(zeros) ? pad : sizeof(zeros);
                sink_put(s, zeros, k);
                pad -= k;
            }
        }
    } else if (dt == CT_DTYPE_BOOL) {
        /* Canonical 0/1 bytes whatever the storage holds. */
        const unsigned char *b = ct_tensor_cdata(t);
        unsigned char chunk[4096];
        int64_t k;
        for (i = 0; i < numel; i += (int64_t)sizeof(chunk)) {
            int64_t m = numel - i < (int64_t)sizeof(chunk)
                            ? numel - i
                            : (int64_t)sizeof(chunk);
            for (k = 0; k < m; k++)
                chunk[k] = b[i + k] != 0;
            sink_put(s, chunk, (size_t)m);
        }
    } else {
        sink_put(s, ct_tensor_cdata(t), (size_t)pl->data_bytes);
    }
}

int ct_npy_write_buffer(const ct_tensor_t *t, void **out, size_t *len,
                        ct_status_t *st)
{
    struct npy_plan pl;
    struct sink s = {NULL, NULL, 0};
    void *buf;
    int rc;

    CT_ASSERT(t != NULL && out != NULL && len != NULL, "NULL argument");
    *out = NULL;
    *len = 0;
    rc = plan_write(t, &pl, st);
    if (rc != CT_OK)
        return rc;
    if (pl.data_bytes > SIZE_MAX - pl.header_bytes)
        return ct_status_setf(st, CT_EOVERFLOW, "npy: file size overflows");
    buf = ct__malloc(pl.header_bytes + (size_t)pl.data_bytes);
    if (buf == NULL)
        return ct_status_setf(
            st, CT_ENOMEM, "npy: out of memory for a %llu-byte buffer",
            (unsigned long long)(pl.header_bytes + pl.data_bytes));
    s.buf = buf;
    emit(t, &pl, &s);
    *out = buf;
    *len = pl.header_bytes + (size_t)pl.data_bytes;
    return CT_OK;
}

/* Opens a new temporary file next to path: "<dir>/.<base>.tmp.<pid>.<k>". */
static int open_temp(const char *path, char **tmp_out, int *fd_out,
                     ct_status_t *st)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_len;
    size_t cap = strlen(path) + 64;
    char *tmp = ct__malloc(cap);
    int k, e = EEXIST;

    if (tmp == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    for (k = 0; k < 100; k++) {
        int fd;
        snprintf(tmp, cap, "%.*s.%s.tmp.%ld.%d", (int)dir_len, path, base,
                 (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            *tmp_out = tmp;
            *fd_out = fd;
            return CT_OK;
        }
        e = errno;
        if (e != EEXIST)
            break;
    }
    ct__free(tmp);
    return ct_status_setf(
        st, CT_EIO, "cannot create a temporary file in %s: %s",
        dir_len > 0 ? "its directory" : "the current directory", strerror(e));
}

/* Writes the whole file on an open stream and closes it. */
static int write_stream(const ct_tensor_t *t, const struct npy_plan *pl, int fd,
                        bool sync, ct_status_t *st)
{
    struct sink s = {NULL, NULL, 0};
    int e;

    s.f = fdopen(fd, "wb");
    if (s.f == NULL) {
        e = errno;
        close(fd);
        return ct_status_setf(st, CT_EIO, "cannot open a stream: %s",
                              strerror(e));
    }
    errno = 0;
    emit(t, pl, &s);
    if (s.err == 0 && fflush(s.f) != 0)
        s.err = errno != 0 ? errno : EIO;
    if (s.err == 0 && sync && fsync(fileno(s.f)) != 0 && errno != EINVAL)
        s.err = errno;
    if (fclose(s.f) != 0 && s.err == 0)
        s.err = errno != 0 ? errno : EIO;
    if (s.err != 0)
        return ct_status_setf(st, CT_EIO, "write failed: %s", strerror(s.err));
    return CT_OK;
}

int ct_npy_write_file(const ct_tensor_t *t, const char *path, ct_status_t *st)
{
    struct npy_plan pl;
    struct stat sb;
    char *tmp = NULL;
    int fd = -1, rc;

    CT_ASSERT(t != NULL && path != NULL, "NULL argument");
    rc = plan_write(t, &pl, st);
    if (rc != CT_OK)
        goto fail;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        /* A device or pipe (/dev/stdout): write in place, no rename. */
        if (S_ISDIR(sb.st_mode)) {
            rc = ct_status_setf(st, CT_EIO, "is a directory");
            goto fail;
        }
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = ct_status_setf(st, CT_EIO, "cannot open: %s", strerror(errno));
            goto fail;
        }
        rc = write_stream(t, &pl, fd, false, st);
        if (rc != CT_OK)
            goto fail;
        return CT_OK;
    }
    rc = open_temp(path, &tmp, &fd, st);
    if (rc != CT_OK)
        goto fail;
    rc = write_stream(t, &pl, fd, true, st);
    if (rc == CT_OK && rename(tmp, path) != 0)
        rc = ct_status_setf(st, CT_EIO,
                            "cannot rename the temporary file "
                            "into place: %s",
                            strerror(errno));
    if (rc != CT_OK) {
        unlink(tmp);
        ct__free(tmp);
        goto fail;
    }
    ct__free(tmp);
    return CT_OK;
fail:
    ct_status_prefix(st, "%s: ", path);
    return rc;
}
