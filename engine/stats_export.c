/* cortado: stat registry exports as JSON and Prometheus text, and files.
 *
 * Both formats start from one ct_stat_registry_export snapshot and are
 * sorted (JSON by key, Prometheus by family then key), so two exports of
 * the same values are byte-identical whatever the registration order.
 * When the snapshot reset the registry and a later step fails (out of
 * memory while formatting, a write error), the exported values are added
 * back, so a failed export loses nothing.
 *
 * Prometheus exposition format 0.0.4: metric names match
 * [a-zA-Z_:][a-zA-Z0-9_:]*; every other byte becomes '_' and a name that
 * starts with a digit gets a '_' prefix. Two keys may sanitise to the same
 * family ("a/b" and "a_b"); a family must be one contiguous group with
 * one TYPE line, and samples must differ by labels, so a key that needed
 * sanitising carries its exact text in a `key` label. Label values and
 * JSON strings are UTF-8: invalid bytes become U+FFFD.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/stats.h"
#include "engine/alloc.h"
#include "engine/stats_impl.h"

/* A growable text buffer; `failed` sticks after the first OOM. */
struct buf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void buf_reserve(struct buf *b, size_t extra)
{
    if (b->failed)
        return;
    if (ct__grow((void **)&b->p, &b->cap, b->len + extra + 1, 1) != CT_OK)
        b->failed = true;
}

static void buf_put(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...) CT_PRINTF(2, 3);
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    CT_ASSERT(n >= 0 && (size_t)n < sizeof(tmp), "short format overflow");
    buf_put(b, tmp, (size_t)n);
}

/* Appends v in decimal (no printf: exports format one per counter). */
static void buf_put_i64(struct buf *b, int64_t v)
{
    char tmp[24], *e = tmp + sizeof(tmp), *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    buf_put(b, p, (size_t)(e - p));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

/* Appends s escaped for a JSON string (json) or a Prometheus label value
 * (!json), without the quotes. */
static void put_escaped(struct buf *b, const char *s, bool json)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;

    while (i < n) {
        unsigned char c = p[i];
        size_t l, run = i;
        /* Printable ASCII other than the two escapes goes out in runs. */
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
               p[run] != '\\')
            run++;
        if (run > i) {
            buf_put(b, (const char *)&p[i], run - i);
            i = run;
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_put(b, e, 2);
            i++;
        } else if (c == '\n') {
            buf_puts(b, "\\n");
            i++;
        } else if (c < 0x20) {
            if (json)
                buf_printf(b, "\\u%04x", c);
            else
                buf_put(b, (const char *)&p[i], 1);
            i++;
        } else if ((l = utf8_len(p + i, n - i)) > 0) {
            buf_put(b, (const char *)&p[i], l);
            i += l;
        } else {
            buf_puts(b, json ? "\\ufffd" : "\xef\xbf\xbd");
            i++;
        }
    }
}

static int cmp_key(const void *a, const void *b)
{
    const struct ct_stat_value *x = *(const struct ct_stat_value *const *)a;
    const struct ct_stat_value *y = *(const struct ct_stat_value *const *)b;
    return strcmp(x->key, y->key);
}

/* ---- JSON ---- */

static int format_json(const struct ct_stat_list *l, struct buf *b)
{
    const struct ct_stat_value **v;
    size_t i;

    v = ct__calloc(l->n > 0 ? l->n : 1, sizeof(*v));
    if (v == NULL)
        return CT_ENOMEM;
    for (i = 0; i < l->n; i++)
        v[i] = &l->items[i];
    if (l->n > 1)
        qsort(v, l->n, sizeof(*v), cmp_key);
    buf_printf(b, "{\n  \"ts_ns\": %" PRId64 ",\n  \"stats\": {", l->ts_ns);
    for (i = 0; i < l->n; i++) {
        buf_puts(b, i == 0 ? "\n    \"" : ",\n    \"");
        put_escaped(b, v[i]->key, true);
        buf_puts(b, "\": ");
        buf_put_i64(b, v[i]->value);
    }
    buf_puts(b, l->n > 0 ? "\n  }\n}\n" : "}\n}\n");
    ct__free(v);
    return b->failed ? CT_ENOMEM : CT_OK;
}

/* ---- Prometheus ---- */

struct prom_item {
    char *name; /* sanitised family name (owned) */
    const struct ct_stat_value *v;
    bool renamed; /* name differs from the key */
};

static int cmp_prom(const void *a, const void *b)
{
    const struct prom_item *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->v->key, y->v->key);
}

static bool prom_first_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == ':';
}

static bool prom_ok(char c)
{
    return prom_first_ok(c) || (c >= '0' && c <= '9');
}

/* Sanitised copy of key; NULL on OOM. A leading digit (or an empty key)
 * gets a '_' prefix, so only prom_ok applies to the bytes that follow. */
static char *prom_name(const char *key, bool *renamed)
{
    size_t n = strlen(key), i, o = 0;
    char *s = ct__malloc(n + 2);

    if (s == NULL)
        return NULL;
    *renamed = n == 0 || !prom_first_ok(key[0]);
    if (n == 0 || (key[0] >= '0' && key[0] <= '9'))
        s[o++] = '_';
    for (i = 0; i < n; i++) {
        bool ok = prom_ok(key[i]);
        s[o++] = ok ? key[i] : '_';
        *renamed |= !ok;
    }
    s[o] = '\0';
    return s;
}

static int format_prom(const struct ct_stat_list *l, struct buf *b)
{
    struct prom_item *it;
    size_t i, j, n = l->n;
    int rc = CT_OK;

    it = ct__calloc(n > 0 ? n : 1, sizeof(*it));
    if (it == NULL)
        return CT_ENOMEM;
    for (i = 0; i < n && rc == CT_OK; i++) {
        it[i].v = &l->items[i];
        it[i].name = prom_name(l->items[i].key, &it[i].renamed);
        if (it[i].name == NULL)
            rc = CT_ENOMEM;
    }
    if (rc == CT_OK && n > 1)
        qsort(it, n, sizeof(*it), cmp_prom);
    for (i = 0; rc == CT_OK && i < n; i = j) {
        bool gauge = false;
        for (j = i; j < n && strcmp(it[j].name, it[i].name) == 0; j++)
            gauge |= it[j].v->kind == CT_STAT_GAUGE;
        buf_puts(b, "# TYPE ");
        buf_puts(b, it[i].name);
        buf_puts(b, gauge ? " gauge\n" : " counter\n");
        for (size_t k = i; k < j; k++) {
            buf_puts(b, it[k].name);
            if (it[k].renamed) {
                buf_puts(b, "{key=\"");
                put_escaped(b, it[k].v->key, false);
                buf_puts(b, "\"}");
            }
            buf_puts(b, " ");
            buf_put_i64(b, it[k].v->value);
            buf_puts(b, "\n");
        }
    }
    for (i = 0; i < n; i++)
        ct__free(it[i].name);
    ct__free(it);
    if (rc == CT_OK && b->failed)
        rc = CT_ENOMEM;
    if (rc == CT_OK && b->p == NULL) {
        /* No counters: an empty exposition, still a NUL-terminated text. */
        buf_reserve(b, 0);
        if (b->failed)
            rc = CT_ENOMEM;
        else
            b->p[0] = '\0';
    }
    return rc;
}

/* ---- common path ---- */

typedef int (*format_fn)(const struct ct_stat_list *l, struct buf *b);

/* Puts the values of a reset export back after a failure. */
static void restore(ct_stat_registry_t *reg, bool reset,
                    const struct ct_stat_list *l)
{
    if (reset)
        ct__stat_registry_restore(reg, l);
}

static int export_text(ct_stat_registry_t *reg, bool reset, format_fn fmt,
                       const char *what, struct buf *b, ct_status_t *st)
{
    struct ct_stat_list l;
    int rc;

    memset(b, 0, sizeof(*b));
    rc = ct_stat_registry_export(reg, reset, &l, st);
    if (rc != CT_OK)
        return rc;
    rc = fmt(&l, b);
    if (rc != CT_OK) {
        restore(reg, reset, &l);
        ct__free(b->p);
        memset(b, 0, sizeof(*b));
        rc = ct_status_setf(st, CT_ENOMEM,
                            "stat registry: out of memory formatting %zu "
                            "counters as %s",
                            l.n, what);
    }
    ct_stat_list_destroy(&l);
    return rc;
}

static int export_to_string(ct_stat_registry_t *reg, bool reset, format_fn fmt,
                            const char *what, char **out, size_t *len,
                            ct_status_t *st)
{
    struct buf b;
    int rc = export_text(reg, reset, fmt, what, &b, st);

    *out = rc == CT_OK ? b.p : NULL;
    if (len != NULL)
        *len = rc == CT_OK ? b.len : 0;
    return rc;
}

int ct_stat_registry_export_json(ct_stat_registry_t *reg, bool reset,
                                 char **out, size_t *len, ct_status_t *st)
{
    return export_to_string(reg, reset, format_json, "JSON", out, len, st);
}

int ct_stat_registry_export_prom(ct_stat_registry_t *reg, bool reset,
                                 char **out, size_t *len, ct_status_t *st)
{
    return export_to_string(reg, reset, format_prom, "Prometheus text", out,
                            len, st);
}

/* ---- files ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes text to path: in place for a device or pipe, else through a
 * temporary file in the same directory, fsync'ed and renamed. */
static int write_file(const char *path, const char *text, size_t n,
                      ct_status_t *st)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    struct stat sb;
    char *tmp;
    int fd, e, k;

    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        if (S_ISDIR(sb.st_mode))
            return ct_status_setf(st, CT_EIO, "%s: is a directory", path);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return ct_status_setf(st, CT_EIO, "%s: cannot open: %s", path,
                                  strerror(errno));
        e = write_all(fd, text, n);
        close(fd);
        if (e != 0)
            return ct_status_setf(st, CT_EIO, "%s: write failed: %s", path,
                                  strerror(e));
        return CT_OK;
    }
    tmp = ct__malloc(strlen(path) + 64);
    if (tmp == NULL)
        return ct_status_setf(st, CT_ENOMEM, "%s: out of memory", path);
    fd = -1;
    e = EEXIST;
    for (k = 0; k < 100 && fd < 0; k++) {
        sprintf(tmp, "%.*s.%s.tmp.%ld.%d", (int)dir_len, path, path + dir_len,
                (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && (e = errno) != EEXIST)
            break;
    }
    if (fd < 0) {
        ct__free(tmp);
        return ct_status_setf(
            st, CT_EIO, "%s: cannot create a temporary file in %s: %s", path,
            dir_len > 0 ? "its directory" : "the current directory",
            strerror(e));
    }
    e = write_all(fd, text, n);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        ct__free(tmp);
        return ct_status_setf(st, CT_EIO, "%s: write failed: %s", path,
                              strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        ct__free(tmp);
        return ct_status_setf(st, CT_EIO,
                              "%s: cannot rename the temporary file into "
                              "place: %s",
                              path, strerror(e));
    }
    ct__free(tmp);
    return CT_OK;
}

static int write_text_file(ct_stat_registry_t *reg, const char *path,
                           bool reset, format_fn fmt, const char *what,
                           ct_status_t *st)
{
    struct ct_stat_list l;
    struct buf b;
    int rc;

    CT_ASSERT(path != NULL, "stats file: NULL path");
    memset(&b, 0, sizeof(b));
    rc = ct_stat_registry_export(reg, reset, &l, st);
    if (rc != CT_OK)
        return rc;
    rc = fmt(&l, &b);
    if (rc != CT_OK)
        rc = ct_status_setf(st, CT_ENOMEM,
                            "%s: out of memory formatting %zu counters as %s",
                            path, l.n, what);
    else
        rc = write_file(path, b.p, b.len, st);
    if (rc != CT_OK)
        restore(reg, reset, &l);
    ct__free(b.p);
    ct_stat_list_destroy(&l);
    return rc;
}

int ct_stat_registry_write_json_file(ct_stat_registry_t *reg, const char *path,
                                     bool reset, ct_status_t *st)
{
    return write_text_file(reg, path, reset, format_json, "JSON", st);
}

int ct_stat_registry_write_prom_file(ct_stat_registry_t *reg, const char *path,
                                     bool reset, ct_status_t *st)
{
    return write_text_file(reg, path, reset, format_prom, "Prometheus text",
                           st);
}
