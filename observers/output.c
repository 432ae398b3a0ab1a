/* cortado: what the built-in observers share: text buffers and files,
 * Caffe2's `_<k>` file suffix, the min/max scan of an output tensor and a
 * cheap clock.
 *
 * Files are written whole: a dump builds its text in memory, then opens
 * the file with truncation, writes and closes it, checking every step, so
 * an error names the path and the reason (errno) instead of Caffe2's
 * warning-and-continue. Paths may be devices (/dev/stdout).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/alloc.h"
#include "observers/observer_impl.h"

/* ---- text ---- */

void ct__obs_buf_printf(struct ct__obs_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->p != NULL ? b->p + b->len : NULL,
                  b->p != NULL ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (b->p != NULL && b->len + (size_t)n < b->cap) {
        b->len += (size_t)n;
        return;
    }
    if (ct__grow((void **)&b->p, &b->cap,
                 b->len + (size_t)n + 1 > 256 ? b->len + (size_t)n + 1 : 256,
                 1) != CT_OK) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ct__obs_buf_json_str(struct ct__obs_buf *b, const char *s)
{
    const unsigned char *c;

    ct__obs_buf_printf(b, "\"");
    for (c = (const unsigned char *)s; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            ct__obs_buf_printf(b, "\\%c", *c);
        else if (*c < 0x20)
            ct__obs_buf_printf(b, "\\u%04x", *c);
        else
            ct__obs_buf_printf(b, "%c", *c);
    }
    ct__obs_buf_printf(b, "\"");
}

void ct__obs_buf_free(struct ct__obs_buf *b)
{
    ct__free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

/* ---- files ---- */

static int io_error(const char *path, int err, ct_status_t *st)
{
    return ct_status_setf(st, CT_EIO, "cannot write \"%s\": %s", path,
                          strerror(err));
}

int ct__obs_file_open(const char *path, FILE **out, ct_status_t *st)
{
    *out = fopen(path, "w");
    if (*out == NULL)
        return io_error(path, errno, st);
    return CT_OK;
}

int ct__obs_buf_drain(struct ct__obs_buf *b, FILE *f)
{
    if (b->oom)
        return ENOMEM;
    if (b->len > 0 && fwrite(b->p, 1, b->len, f) != b->len)
        return errno != 0 ? errno : EIO;
    b->len = 0;
    return 0;
}

int ct__obs_file_close(const char *path, FILE *f, int err, ct_status_t *st)
{
    if (fflush(f) != 0 && err == 0)
        err = errno != 0 ? errno : EIO;
    if (fclose(f) != 0 && err == 0)
        err = errno != 0 ? errno : EIO;
    if (err == ENOMEM)
        return ct_status_setf(st, CT_ENOMEM, "out of memory writing \"%s\"",
                              path);
    return err != 0 ? io_error(path, err, st) : CT_OK;
}

int ct__obs_buf_write(struct ct__obs_buf *b, const char *path, ct_status_t *st)
{
    FILE *f;
    int rc;

    if (b->oom)
        return ct_status_setf(st, CT_ENOMEM, "out of memory formatting \"%s\"",
                              path);
    rc = ct__obs_file_open(path, &f, st);
    if (rc != CT_OK)
        return rc;
    return ct__obs_file_close(path, f, ct__obs_buf_drain(b, f), st);
}

int ct__obs_probe_file(const char *path, ct_status_t *st)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);

    if (fd < 0)
        return io_error(path, errno, st);
    close(fd);
    return CT_OK;
}

char *ct__obs_suffixed_path(const char *path, long long k)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    struct ct__obs_buf b = {NULL, 0, 0, false};

    if (dot != NULL && (slash == NULL || dot > slash))
        ct__obs_buf_printf(&b, "%.*s_%lld%s", (int)(dot - path), path, k, dot);
    else
        ct__obs_buf_printf(&b, "%s_%lld", path, k);
    if (b.oom) {
        ct__obs_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* ---- tensors ---- */

/* Folds x[0, n) into *mn / *mx with eight independent accumulators, so
 * the compiler can keep them in vector registers. `x < m ? x : m` is
 * false for NaN, which therefore never replaces a value. */
#define DEFINE_MINMAX(fn, T)                                                   \
    static void fn(const T *x, int64_t n, T *mn, T *mx)                        \
    {                                                                          \
        T lo[8], hi[8];                                                        \
        int64_t i, j;                                                          \
        for (j = 0; j < 8; j++) {                                              \
            lo[j] = *mn;                                                       \
            hi[j] = *mx;                                                       \
        }                                                                      \
        for (i = 0; i + 8 <= n; i += 8)                                        \
            for (j = 0; j < 8; j++) {                                          \
                lo[j] = x[i + j] < lo[j] ? x[i + j] : lo[j];                   \
                hi[j] = x[i + j] > hi[j] ? x[i + j] : hi[j];                   \
            }                                                                  \
        for (; i < n; i++) {                                                   \
            lo[0] = x[i] < lo[0] ? x[i] : lo[0];                               \
            hi[0] = x[i] > hi[0] ? x[i] : hi[0];                               \
        }                                                                      \
        for (j = 1; j < 8; j++) {                                              \
            lo[0] = lo[j] < lo[0] ? lo[j] : lo[0];                             \
            hi[0] = hi[j] > hi[0] ? hi[j] : hi[0];                             \
        }                                                                      \
        *mn = lo[0];                                                           \
        *mx = hi[0];                                                           \
    }

#if defined(__SSE__)
#include <xmmintrin.h>

/* The float case with SSE: minps(x, m) returns m when x is NaN, the same
 * rule as the scalar loop, and the accumulators never hold a NaN, so the
 * lane order of the final reduction does not matter. */
static void minmax_f32(const float *x, int64_t n, float *mn, float *mx)
{
    __m128 lo0 = _mm_set1_ps(*mn), lo1 = lo0, hi0 = _mm_set1_ps(*mx);
    __m128 hi1 = hi0;
    float lo, hi;
    int64_t i;

    for (i = 0; i + 8 <= n; i += 8) {
        __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4);
        lo0 = _mm_min_ps(a, lo0);
        lo1 = _mm_min_ps(b, lo1);
        hi0 = _mm_max_ps(a, hi0);
        hi1 = _mm_max_ps(b, hi1);
    }
    if (i + 4 <= n) {
        __m128 a = _mm_loadu_ps(x + i);
        lo1 = _mm_min_ps(a, lo1);
        hi1 = _mm_max_ps(a, hi1);
        i += 4;
    }
    lo0 = _mm_min_ps(lo1, lo0);
    hi0 = _mm_max_ps(hi1, hi0);
    lo0 = _mm_min_ps(_mm_movehl_ps(lo0, lo0), lo0);
    hi0 = _mm_max_ps(_mm_movehl_ps(hi0, hi0), hi0);
    lo0 = _mm_min_ss(_mm_shuffle_ps(lo0, lo0, 1), lo0);
    hi0 = _mm_max_ss(_mm_shuffle_ps(hi0, hi0, 1), hi0);
    lo = _mm_cvtss_f32(lo0);
    hi = _mm_cvtss_f32(hi0);
    for (; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}
#else
DEFINE_MINMAX(minmax_f32, float)
#endif
DEFINE_MINMAX(minmax_i32, int32_t)
DEFINE_MINMAX(minmax_i64, int64_t)

bool ct__obs_tensor_minmax(const ct_tensor_t *t, float *mn, float *mx)
{
    int64_t n = t->numel;
    const void *data;

    /* ct_tensor_cdata's rule, inline: this runs once per output per op. */
    if (n <= 0 || t->storage == NULL || (data = t->storage->data) == NULL)
        return false;
    switch (t->dtype) {
    case CT_DTYPE_F32:
        minmax_f32(data, n, mn, mx);
        return true;
    case CT_DTYPE_I32: {
        /* Converting to float is monotonic, so the float of the integer
         * min is the min of the floats. */
        int32_t lo = INT32_MAX, hi = INT32_MIN;
        minmax_i32(data, n, &lo, &hi);
        *mn = (float)lo < *mn ? (float)lo : *mn;
        *mx = (float)hi > *mx ? (float)hi : *mx;
        return true;
    }
    case CT_DTYPE_I64: {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        minmax_i64(data, n, &lo, &hi);
        *mn = (float)lo < *mn ? (float)lo : *mn;
        *mx = (float)hi > *mx ? (float)hi : *mx;
        return true;
    }
    default:
        return false;
    }
}

/* ---- clock ---- */

uint64_t ct__obs_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The TSC is only trusted when the kernel itself uses it as clocksource:
 * Linux checks it is invariant and synchronised across CPUs first. */
static bool kernel_uses_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    char buf[32] = "";
    FILE *f = fopen(
        "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        "r");

    if (f == NULL)
        return false;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    return strncmp(buf, "tsc", 3) == 0 && (buf[3] == '\n' || buf[3] == '\0');
#else
    return false;
#endif
}

void ct__obs_clock_init(struct ct__obs_clock *c)
{
    c->tsc = kernel_uses_tsc();
    c->ns_per_tick = 1.0;
    c->ns0 = ct__obs_now_ns();
    c->tick0 = ct__obs_ticks(c);
}

void ct__obs_clock_calibrate(struct ct__obs_clock *c)
{
    uint64_t ns1, t1;

    if (!c->tsc)
        return;
    do {
        ns1 = ct__obs_now_ns();
        t1 = ct__obs_ticks(c);
    } while (ns1 - c->ns0 < 2000000);
    if (t1 > c->tick0)
        c->ns_per_tick = (double)(ns1 - c->ns0) / (double)(t1 - c->tick0);
}
