/* cortado: NumPy .npy reader (the writer is in npy_write.c).
 *
 * Layout of a .npy file (numpy/lib/format.py): the magic "\x93NUMPY", a
 * major and a minor version byte, the header length (2 bytes little-endian
 * for version 1, 4 bytes for versions 2 and 3), the header (a Python dict
 * literal padded with spaces and a newline so that the data starts on a
 * 64-byte boundary), then the raw elements in C order.
 *
 * Reading never trusts the header: the element count and byte size are
 * overflow-checked and must match the bytes that follow exactly before
 * anything proportional to them is allocated, so a header claiming 2^62
 * elements over 10 bytes of data is a CT_ECORRUPT with no allocation. The
 * file reader streams the elements straight into the tensor's storage
 * (one copy, no whole-file buffer) except for strings, which go through a
 * buffer of the data's size.
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

/* A parsed header. */
struct npy_header {
    ct_dtype_t dtype;
    size_t itemsize; /* bytes per element in the file */
    bool swap;       /* file byte order differs from the host's */
    int ndim;
    int64_t dims[CT_MAX_DIMS];
    int64_t numel;
    uint64_t data_bytes;
    size_t header_bytes; /* preamble + dict: where the data starts */
    char descr[40];      /* for messages */
};

/* ---- the header dict: a tiny Python literal parser ---- */

struct lex {
    const char *s;
    size_t n;
    size_t pos;
    ct_status_t *st;
};

static void lex_ws(struct lex *lx)
{
    while (lx->pos < lx->n) {
        char c = lx->s[lx->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        lx->pos++;
    }
}

static int lex_peek(struct lex *lx)
{
    lex_ws(lx);
    return lx->pos < lx->n ? (unsigned char)lx->s[lx->pos] : -1;
}

static int lex_fail(struct lex *lx, const char *what)
{
    int c = lx->pos < lx->n ? (unsigned char)lx->s[lx->pos] : -1;

    if (c >= 0x20 && c < 0x7f)
        return ct_status_setf(lx->st, CT_EPARSE,
                              "bad header at byte %zu: %s, found '%c'", lx->pos,
                              what, c);
    if (c < 0)
        return ct_status_setf(lx->st, CT_EPARSE,
                              "bad header at byte %zu: %s, found the end",
                              lx->pos, what);
    return ct_status_setf(lx->st, CT_EPARSE,
                          "bad header at byte %zu: %s, found byte 0x%02x",
                          lx->pos, what, c);
}

static int lex_expect(struct lex *lx, char c, const char *what)
{
    if (lex_peek(lx) != (unsigned char)c)
        return lex_fail(lx, what);
    lx->pos++;
    return CT_OK;
}

/* A quoted string without escapes; *p points into the header. */
static int lex_string(struct lex *lx, const char **p, size_t *len)
{
    int q = lex_peek(lx);
    size_t start;

    if (q != '\'' && q != '"')
        return lex_fail(lx, "expected a quoted string");
    start = ++lx->pos;
    while (lx->pos < lx->n && lx->s[lx->pos] != (char)q) {
        char c = lx->s[lx->pos];
        if (c == '\\' || c == '\n' || c == '\0')
            return lex_fail(lx, "unsupported character in a string");
        lx->pos++;
    }
    if (lx->pos >= lx->n)
        return lex_fail(lx, "unterminated string");
    *p = lx->s + start;
    *len = lx->pos - start;
    lx->pos++;
    return CT_OK;
}

static bool lex_word(struct lex *lx, const char *w)
{
    size_t k = strlen(w);

    lex_ws(lx);
    if (lx->n - lx->pos < k || memcmp(lx->s + lx->pos, w, k) != 0)
        return false;
    /* The word must end here ("Truex" is not True). */
    if (lx->pos + k < lx->n) {
        char c = lx->s[lx->pos + k];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_')
            return false;
    }
    lx->pos += k;
    return true;
}

/* A non-negative integer, with Python 2's optional L suffix. */
static int lex_dim(struct lex *lx, int64_t *out)
{
    int64_t v = 0;
    size_t start;

    if (lex_peek(lx) == '-')
        return ct_status_setf(lx->st, CT_ECORRUPT,
                              "bad header at byte %zu: negative dimension",
                              lx->pos);
    start = lx->pos;
    while (lx->pos < lx->n && lx->s[lx->pos] >= '0' && lx->s[lx->pos] <= '9') {
        int d = lx->s[lx->pos] - '0';
        if (v > (INT64_MAX - d) / 10)
            return ct_status_setf(lx->st, CT_ECORRUPT,
                                  "bad header at byte %zu: dimension "
                                  "does not fit in int64",
                                  start);
        v = v * 10 + d;
        lx->pos++;
    }
    if (lx->pos == start)
        return lex_fail(lx, "expected a dimension");
    if (lx->pos < lx->n && (lx->s[lx->pos] == 'L' || lx->s[lx->pos] == 'l'))
        lx->pos++;
    *out = v;
    return CT_OK;
}

/* A tuple (or list) of dims: (), (3,), (5, 8), (5, 8,). Ranks above
 * CT_MAX_DIMS are counted, not stored, and rejected by the caller. */
static int lex_shape(struct lex *lx, struct npy_header *h)
{
    int open = lex_peek(lx);
    char close;
    int rc;

    if (open != '(' && open != '[')
        return lex_fail(lx, "expected a shape tuple");
    close = open == '(' ? ')' : ']';
    lx->pos++;
    h->ndim = 0;
    for (;;) {
        int64_t d = 0;
        if (lex_peek(lx) == (unsigned char)close) {
            lx->pos++;
            return CT_OK;
        }
        rc = lex_dim(lx, &d);
        if (rc != CT_OK)
            return rc;
        if (h->ndim < CT_MAX_DIMS)
            h->dims[h->ndim] = d;
        if (h->ndim < INT32_MAX)
            h->ndim++;
        if (lex_peek(lx) == ',') {
            lx->pos++;
            continue;
        }
        if (lex_peek(lx) != (unsigned char)close)
            return lex_fail(lx, "expected ',' or the end of the shape");
    }
}

/* Maps a numpy type string like "<f4" or "|S12" to a dtype. */
static int parse_descr(const char *p, size_t len, struct npy_header *h,
                       ct_status_t *st)
{
    char order = '=';
    char kind;
    size_t i = 0;
    uint64_t size = 0;
    bool big;

    snprintf(h->descr, sizeof(h->descr), "%.*s", (int)(len < 32 ? len : 32), p);
    if (i < len && p[i] != '\0' && strchr("<>=|", p[i]) != NULL)
        order = p[i++];
    if (i >= len)
        return ct_status_setf(st, CT_EPARSE, "bad dtype '%s'", h->descr);
    kind = p[i++];
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
        if (size > (UINT64_MAX - 9) / 10)
            return ct_status_setf(st, CT_EPARSE, "bad dtype '%s'", h->descr);
        size = size * 10 + (uint64_t)(p[i] - '0');
    }
    switch (kind) {
    case 'O':
        return ct_status_setf(st, CT_ENOTSUP,
                              "dtype '%s' (Python objects, pickled) is not "
                              "supported",
                              h->descr);
    case 'U':
        return ct_status_setf(st, CT_ENOTSUP,
                              "dtype '%s' (unicode) is not supported; save "
                              "byte strings (numpy dtype 'S')",
                              h->descr);
    case 'V':
        return ct_status_setf(st, CT_ENOTSUP,
                              "dtype '%s' (void/structured) is not supported",
                              h->descr);
    default:
        break;
    }
    if (i != len || size == 0)
        return ct_status_setf(st, CT_ENOTSUP, "dtype '%s' is not supported",
                              h->descr);
    h->dtype = CT_DTYPE_UNDEFINED;
    switch (kind) {
    case 'f':
        h->dtype = size == 2   ? CT_DTYPE_F16
                   : size == 4 ? CT_DTYPE_F32
                   : size == 8 ? CT_DTYPE_F64
                               : CT_DTYPE_UNDEFINED;
        break;
    case 'i':
        h->dtype = size == 1   ? CT_DTYPE_I8
                   : size == 2 ? CT_DTYPE_I16
                   : size == 4 ? CT_DTYPE_I32
                   : size == 8 ? CT_DTYPE_I64
                               : CT_DTYPE_UNDEFINED;
        break;
    case 'u':
        h->dtype = size == 1   ? CT_DTYPE_U8
                   : size == 2 ? CT_DTYPE_U16
                               : CT_DTYPE_UNDEFINED;
        break;
    case 'b':
        h->dtype = size == 1 ? CT_DTYPE_BOOL : CT_DTYPE_UNDEFINED;
        break;
    case 'S':
        h->dtype = CT_DTYPE_STRING;
        break;
    default:
        break;
    }
    if (h->dtype == CT_DTYPE_UNDEFINED)
        return ct_status_setf(st, CT_ENOTSUP,
                              "dtype '%s' has no cortado equivalent (float "
                              "f2/f4/f8, int i1/i2/i4/i8, uint u1/u2, bool "
                              "b1 and bytes S<n> are supported)",
                              h->descr);
    if (size > SIZE_MAX)
        return ct_status_setf(st, CT_ECORRUPT, "dtype '%s' is too wide",
                              h->descr);
    h->itemsize = (size_t)size;
    big = order == '>' || (order != '<' && !ct__npy_host_is_little());
    h->swap = h->dtype != CT_DTYPE_STRING && h->itemsize > 1 &&
              big == ct__npy_host_is_little();
    return CT_OK;
}

enum { KEY_DESCR = 1, KEY_FORTRAN = 2, KEY_SHAPE = 4 };

/* Parses the dict text into h (dtype, shape, fortran order check). */
static int parse_dict(const char *s, size_t n, struct npy_header *h,
                      ct_status_t *st)
{
    struct lex lx = {s, n, 0, st};
    unsigned seen = 0;
    bool fortran = false;
    const char *descr = NULL;
    size_t descr_len = 0;
    int rc;

    rc = lex_expect(&lx, '{', "expected '{'");
    if (rc != CT_OK)
        return rc;
    for (;;) {
        const char *key;
        size_t klen;
        unsigned bit;

        if (lex_peek(&lx) == '}') {
            lx.pos++;
            break;
        }
        rc = lex_string(&lx, &key, &klen);
        if (rc != CT_OK)
            return rc;
        if (klen == 5 && memcmp(key, "descr", 5) == 0)
            bit = KEY_DESCR;
        else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0)
            bit = KEY_FORTRAN;
        else if (klen == 5 && memcmp(key, "shape", 5) == 0)
            bit = KEY_SHAPE;
        else
            return ct_status_setf(st, CT_EPARSE, "unexpected header key '%.*s'",
                                  (int)(klen < 32 ? klen : 32), key);
        if (seen & bit)
            return ct_status_setf(st, CT_EPARSE,
                                  "header key '%.*s' appears twice", (int)klen,
                                  key);
        seen |= bit;
        rc = lex_expect(&lx, ':', "expected ':' after a key");
        if (rc != CT_OK)
            return rc;
        if (bit == KEY_DESCR) {
            if (lex_peek(&lx) == '[')
                return ct_status_setf(st, CT_ENOTSUP,
                                      "structured dtypes (a list of "
                                      "fields) are not supported");
            rc = lex_string(&lx, &descr, &descr_len);
        } else if (bit == KEY_FORTRAN) {
            if (lex_word(&lx, "True"))
                fortran = true;
            else if (lex_word(&lx, "False"))
                fortran = false;
            else
                rc = lex_fail(&lx, "expected True or False");
        } else {
            rc = lex_shape(&lx, h);
        }
        if (rc != CT_OK)
            return rc;
        if (lex_peek(&lx) == ',') {
            lx.pos++;
            continue;
        }
        if (lex_peek(&lx) != '}')
            return lex_fail(&lx, "expected ',' or '}'");
    }
    if (lex_peek(&lx) != -1)
        return lex_fail(&lx, "expected only padding after '}'");
    if (!(seen & KEY_DESCR))
        return ct_status_setf(st, CT_EPARSE, "header has no 'descr' key");
    if (!(seen & KEY_FORTRAN))
        return ct_status_setf(st, CT_EPARSE,
                              "header has no 'fortran_order' key");
    if (!(seen & KEY_SHAPE))
        return ct_status_setf(st, CT_EPARSE, "header has no 'shape' key");
    if (h->ndim > CT_MAX_DIMS)
        return ct_status_setf(st, CT_ENOTSUP,
                              "rank %d exceeds the maximum of %d", h->ndim,
                              CT_MAX_DIMS);
    rc = parse_descr(descr, descr_len, h, st);
    if (rc != CT_OK)
        return rc;
    if (fortran) {
        /* Fortran and C order lay out the same bytes when at most one dim
         * is larger than 1. */
        int i, n_big = 0;
        for (i = 0; i < h->ndim; i++)
            n_big += h->dims[i] > 1;
        if (n_big > 1) {
            char buf[128];
            return ct_status_setf(
                st, CT_ENOTSUP,
                "Fortran-order array of shape %s is not supported; save a "
                "C-order copy (numpy.ascontiguousarray)",
                ct_dims_str(h->ndim, h->dims, buf, sizeof(buf)));
        }
    }
    return CT_OK;
}

/* Checks the preamble of the len bytes at p (len may be short) and
 * returns where the dict starts and how long it is. */
static int parse_preamble(const unsigned char *p, size_t len, size_t *dict_off,
                          size_t *dict_len, ct_status_t *st)
{
    size_t n;

    if (len < CT_NPY_MAGIC_LEN ||
        memcmp(p, CT_NPY_MAGIC, CT_NPY_MAGIC_LEN) != 0)
        return ct_status_setf(st, CT_EPARSE,
                              "not a .npy file (no \\x93NUMPY magic)");
    if (len < 8)
        return ct_status_setf(st, CT_ECORRUPT, "truncated header (%zu bytes)",
                              len);
    if ((p[6] != 1 && p[6] != 2 && p[6] != 3) || p[7] != 0)
        return ct_status_setf(st, CT_ENOTSUP,
                              "unsupported .npy format version %u.%u "
                              "(1.0, 2.0 and 3.0 are read)",
                              p[6], p[7]);
    if (p[6] == 1) {
        if (len < 10)
            return ct_status_setf(st, CT_ECORRUPT,
                                  "truncated header (%zu bytes)", len);
        n = (size_t)p[8] | (size_t)p[9] << 8;
        *dict_off = 10;
    } else {
        if (len < 12)
            return ct_status_setf(st, CT_ECORRUPT,
                                  "truncated header (%zu bytes)", len);
        n = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 |
            (size_t)p[11] << 24;
        *dict_off = 12;
    }
    if (n > CT_NPY_MAX_HEADER)
        return ct_status_setf(st, CT_EPARSE,
                              "header of %zu bytes exceeds the %zu-byte "
                              "limit",
                              n, CT_NPY_MAX_HEADER);
    *dict_len = n;
    return CT_OK;
}

/* Element count and data size, overflow-checked, then compared with the
 * bytes available after the header. */
static int check_sizes(struct npy_header *h, uint64_t avail, ct_status_t *st)
{
    char buf[160];
    int64_t numel = 1;
    int i;

    for (i = 0; i < h->ndim; i++) {
        if (h->dims[i] != 0 && numel > INT64_MAX / h->dims[i])
            goto overflow;
        numel *= h->dims[i];
    }
    if (numel != 0 && h->itemsize > UINT64_MAX / (uint64_t)numel)
        goto overflow;
    h->numel = numel;
    h->data_bytes = (uint64_t)numel * h->itemsize;
    if (h->data_bytes > avail)
        return ct_status_setf(st, CT_ECORRUPT,
                              "truncated data: shape %s '%s' needs %llu "
                              "bytes, the file has %llu after the header",
                              ct_dims_str(h->ndim, h->dims, buf, sizeof(buf)),
                              h->descr, (unsigned long long)h->data_bytes,
                              (unsigned long long)avail);
    if (h->data_bytes < avail)
        return ct_status_setf(st, CT_ECORRUPT,
                              "%llu unexpected bytes after the data of "
                              "shape %s '%s'",
                              (unsigned long long)(avail - h->data_bytes),
                              ct_dims_str(h->ndim, h->dims, buf, sizeof(buf)),
                              h->descr);
    return CT_OK;
overflow:
    return ct_status_setf(
        st, CT_ECORRUPT, "shape %s '%s' is too large (byte size overflows)",
        ct_dims_str(h->ndim, h->dims, buf, sizeof(buf)), h->descr);
}

/* ---- building the tensor ---- */

static void swap_bytes(unsigned char *p, size_t n, size_t size)
{
    size_t i, k;

    for (i = 0; i < n; i++, p += size) {
        for (k = 0; k < size / 2; k++) {
            unsigned char c = p[k];
            p[k] = p[size - 1 - k];
            p[size - 1 - k] = c;
        }
    }
}

/* Byte order and bool canonicalisation on numeric data in place. */
static void fix_numeric(void *data, const struct npy_header *h)
{
    size_t n = (size_t)h->numel;

    if (h->swap)
        swap_bytes(data, n, h->itemsize);
    if (h->dtype == CT_DTYPE_BOOL) {
        unsigned char *b = data;
        size_t i;
        for (i = 0; i < n; i++)
            b[i] = b[i] != 0;
    }
}

/* Sets every string element from fixed-width raw bytes, dropping trailing
 * NULs as numpy does. */
static int fill_strings(ct_tensor_t *t, const struct npy_header *h,
                        const unsigned char *raw, ct_status_t *st)
{
    int64_t i;

    for (i = 0; i < h->numel; i++) {
        const unsigned char *e = raw + (size_t)i * h->itemsize;
        size_t len = h->itemsize;
        int rc;
        while (len > 0 && e[len - 1] == 0)
            len--;
        rc = ct_tensor_set_string(t, i, (const char *)e, len, st);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}

static int parse_all(const unsigned char *p, size_t len, struct npy_header *h,
                     ct_status_t *st)
{
    size_t off, n;
    int rc;

    memset(h, 0, sizeof(*h));
    rc = parse_preamble(p, len, &off, &n, st);
    if (rc != CT_OK)
        return rc;
    if (n > len - off)
        return ct_status_setf(st, CT_ECORRUPT,
                              "truncated header: %zu bytes announced, %zu "
                              "present",
                              n, len - off);
    rc = parse_dict((const char *)p + off, n, h, st);
    if (rc != CT_OK)
        return rc;
    h->header_bytes = off + n;
    return check_sizes(h, len - h->header_bytes, st);
}

int ct_npy_read_buffer(ct_engine_t *eng, const void *buf, size_t len,
                       ct_tensor_t **out, ct_status_t *st)
{
    const unsigned char *p = buf;
    struct npy_header h;
    ct_tensor_t *t = NULL;
    int rc;

    CT_ASSERT(out != NULL, "out is NULL");
    CT_ASSERT(buf != NULL || len == 0, "buf is NULL");
    *out = NULL;
    rc = parse_all(p, len, &h, st);
    if (rc != CT_OK)
        goto fail;
    rc = ct_tensor_new_shape(eng, h.dtype, h.ndim, h.dims, &t, st);
    if (rc != CT_OK)
        goto fail;
    if (h.dtype == CT_DTYPE_STRING) {
        rc = fill_strings(t, &h, p + h.header_bytes, st);
        if (rc != CT_OK)
            goto fail_tensor;
    } else if (h.data_bytes > 0) {
        memcpy(ct_tensor_data(t), p + h.header_bytes, (size_t)h.data_bytes);
        fix_numeric(ct_tensor_data(t), &h);
    }
    *out = t;
    return CT_OK;
fail_tensor:
    ct_tensor_free(t);
fail:
    ct_status_prefix(st, "npy: ");
    return rc;
}

/* Reads exactly n bytes; CT_EIO on error, CT_ECORRUPT when the file ends
 * first (it shrank after fstat). */
static int read_full(int fd, void *dst, size_t n, ct_status_t *st)
{
    unsigned char *p = dst;

    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        ssize_t r = read(fd, p, chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return ct_status_setf(st, CT_EIO, "read failed: %s",
                                  strerror(errno));
        }
        if (r == 0)
            return ct_status_setf(st, CT_ECORRUPT,
                                  "unexpected end of file (%zu bytes "
                                  "missing)",
                                  n);
        p += r;
        n -= (size_t)r;
    }
    return CT_OK;
}

static int read_fd(ct_engine_t *eng, int fd, ct_tensor_t **out, ct_status_t *st)
{
    unsigned char pre[12];
    unsigned char *dict = NULL;
    void *raw = NULL;
    struct npy_header h;
    struct stat sb;
    uint64_t fsize;
    size_t off, n, npre;
    ct_tensor_t *t = NULL;
    int rc;

    if (fstat(fd, &sb) != 0)
        return ct_status_setf(st, CT_EIO, "stat failed: %s", strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return ct_status_setf(st, CT_EIO, "is a directory");
    if (!S_ISREG(sb.st_mode))
        return ct_status_setf(st, CT_EIO, "not a regular file");
    fsize = (uint64_t)sb.st_size;
    memset(&h, 0, sizeof(h));
    npre = fsize < sizeof(pre) ? (size_t)fsize : sizeof(pre);
    rc = read_full(fd, pre, npre, st);
    if (rc != CT_OK)
        return rc;
    rc = parse_preamble(pre, npre, &off, &n, st);
    if (rc != CT_OK)
        return rc;
    if (n > fsize - off)
        return ct_status_setf(st, CT_ECORRUPT,
                              "truncated header: %zu bytes announced, %llu "
                              "present",
                              n, (unsigned long long)(fsize - off));
    /* The preamble read may have taken the first dict bytes (v1 headers
     * are 10 bytes, we read 12). */
    dict = ct__malloc(n + 1);
    if (dict == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory for the header");
    if (npre > off) {
        size_t have = npre - off < n ? npre - off : n;
        memcpy(dict, pre + off, have);
        rc = read_full(fd, dict + have, n - have, st);
    } else {
        rc = read_full(fd, dict, n, st);
    }
    if (rc != CT_OK)
        goto done;
    rc = parse_dict((const char *)dict, n, &h, st);
    if (rc != CT_OK)
        goto done;
    h.header_bytes = off + n;
    rc = check_sizes(&h, fsize - h.header_bytes, st);
    if (rc != CT_OK)
        goto done;
    /* A v1 file with an empty dict could leave preamble bytes consumed
     * past the header; seek to the data explicitly. */
    if (lseek(fd, (off_t)h.header_bytes, SEEK_SET) < 0) {
        rc = ct_status_setf(st, CT_EIO, "seek failed: %s", strerror(errno));
        goto done;
    }
    rc = ct_tensor_new_shape(eng, h.dtype, h.ndim, h.dims, &t, st);
    if (rc != CT_OK)
        goto done;
    if (h.dtype == CT_DTYPE_STRING) {
        /* data_bytes equals the rest of the file, so this is bounded by
         * what is on disk. */
        if (h.data_bytes > SIZE_MAX) {
            rc = ct_status_setf(st, CT_EOVERFLOW, "data too large");
            goto done;
        }
        raw = ct__malloc(h.data_bytes > 0 ? (size_t)h.data_bytes : 1);
        if (raw == NULL) {
            rc = ct_status_setf(st, CT_ENOMEM,
                                "out of memory for %llu bytes of strings",
                                (unsigned long long)h.data_bytes);
            goto done;
        }
        rc = read_full(fd, raw, (size_t)h.data_bytes, st);
        if (rc == CT_OK)
            rc = fill_strings(t, &h, raw, st);
    } else if (h.data_bytes > 0) {
        rc = read_full(fd, ct_tensor_data(t), (size_t)h.data_bytes, st);
        if (rc == CT_OK)
            fix_numeric(ct_tensor_data(t), &h);
    }
done:
    ct__free(raw);
    ct__free(dict);
    if (rc != CT_OK) {
        ct_tensor_free(t);
        return rc;
    }
    *out = t;
    return CT_OK;
}

int ct_npy_read_file(ct_engine_t *eng, const char *path, ct_tensor_t **out,
                     ct_status_t *st)
{
    int fd, rc;

    CT_ASSERT(path != NULL && out != NULL, "path or out is NULL");
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = ct_status_setf(st, CT_EIO, "cannot open: %s", strerror(errno));
    } else {
        rc = read_fd(eng, fd, out, st);
        close(fd);
    }
    if (rc != CT_OK)
        ct_status_prefix(st, "%s: ", path);
    return rc;
}
