/* cortado: observer spec strings and file name templates.
 *
 * A spec is `NAME[=FILE][,key=value...]` (the CLI's --observe). NAME,
 * FILE and each key and value are copied, NUL-terminated, one after the
 * other into sp->buf. A value may not contain a comma, with
 * one exception so that a comma delimiter can be written plainly: a value
 * that starts with ',' and is followed by the end or by another ',' is
 * the one-character string "," ("delimiter=," / "delimiter=,,nbins=8").
 * Each kind lists its keys; anything else is an error naming the spec,
 * the key and the keys that exist.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alloc.h"
#include "observers/observer_impl.h"

static const struct {
    const char *name;
    const struct ct__obs_kind *kind;
} kinds[] = {
    {"minmax", &ct__obs_kind_minmax},
    {"histogram", &ct__obs_kind_histogram},
    {"time", &ct__obs_kind_time},
    {"runcount", &ct__obs_kind_runcount},
    {"trace", &ct__obs_kind_trace},
    /* Caffe2's names (add_observer_to_net, the quantization entry points). */
    {"TimeObserver", &ct__obs_kind_time},
    {"RunCountObserver", &ct__obs_kind_runcount},
    {"OutputMinMaxObserver", &ct__obs_kind_minmax},
    {"HistogramObserver", &ct__obs_kind_histogram},
};

#define SPEC_ERR(sp, ...) spec_err((sp)->text, st, __VA_ARGS__)

static int spec_err(const char *text, ct_status_t *st, const char *fmt, ...)
    CT_PRINTF(3, 4);

static int spec_err(const char *text, ct_status_t *st, const char *fmt, ...)
{
    char msg[CT_STATUS_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ct_status_setf(st, CT_EINVAL, "observer spec \"%s\": %s", text, msg);
}

static const struct ct__obs_kind *find_kind(const char *name)
{
    size_t k;

    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (strcmp(kinds[k].name, name) == 0)
            return kinds[k].kind;
    return NULL;
}

static bool kind_has_option(const struct ct__obs_kind *kind, const char *key)
{
    const char *const *o;

    if (strcmp(key, "file") == 0)
        return kind->file != 0;
    for (o = kind->options; o != NULL && *o != NULL; o++)
        if (strcmp(*o, key) == 0)
            return true;
    return false;
}

/* "file, dump_freq, delimiter" for messages. */
static void list_options(const struct ct__obs_kind *kind, char *buf,
                         size_t size)
{
    const char *const *o;
    size_t off = 0;

    buf[0] = '\0';
    if (kind->file != 0)
        off += (size_t)snprintf(buf, size, "file");
    for (o = kind->options; o != NULL && *o != NULL && off < size; o++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? ", " : "",
                                *o);
    if (buf[0] == '\0')
        snprintf(buf, size, "none");
}

void ct__obs_spec_destroy(struct ct__obs_spec *sp)
{
    ct__free(sp->buf);
    sp->buf = NULL;
}

/* Copies len bytes of src into the piece buffer at *w. */
static char *take(char **w, const char *src, size_t len)
{
    char *r = *w;

    memcpy(r, src, len);
    r[len] = '\0';
    *w += len + 1;
    return r;
}

static int add_option(struct ct__obs_spec *sp, const char *key, const char *val,
                      ct_status_t *st)
{
    char names[128];
    int k;

    if (!kind_has_option(sp->kind, key)) {
        list_options(sp->kind, names, sizeof(names));
        return SPEC_ERR(sp, "unknown option \"%s\" for %s (options: %s)", key,
                        sp->kind->name, names);
    }
    if (strcmp(key, "file") == 0) {
        if (sp->file != NULL)
            return SPEC_ERR(sp, "option file is given twice");
        sp->file = val;
        return CT_OK;
    }
    for (k = 0; k < sp->n_kv; k++)
        if (strcmp(sp->key[k], key) == 0)
            return SPEC_ERR(sp, "option %s is given twice", key);
    CT_ASSERT(sp->n_kv < CT__OBS_SPEC_MAX_KV, "more options than keys");
    sp->key[sp->n_kv] = key;
    sp->val[sp->n_kv++] = val;
    return CT_OK;
}

int ct__obs_spec_parse(const char *text, struct ct__obs_spec *sp,
                       ct_status_t *st)
{
    const char *p = text;
    char *w;
    size_t n, len;
    int rc;

    memset(sp, 0, sizeof(*sp));
    sp->text = text;
    n = strlen(text);
    sp->buf = ct__malloc(2 * n + 2);
    if (sp->buf == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory parsing observer spec");
    w = sp->buf;
    len = strcspn(p, "=,");
    if (len == 0)
        return SPEC_ERR(sp, "no observer name (want NAME[=FILE][,key=value"
                            "...], NAME one of minmax, histogram, time, "
                            "runcount, trace)");
    sp->kind = find_kind(take(&w, p, len));
    if (sp->kind == NULL)
        return SPEC_ERR(sp,
                        "unknown observer \"%.*s\" (known: minmax, histogram, "
                        "time, runcount, trace)",
                        (int)len, p);
    p += len;
    if (*p == '=') {
        p++;
        len = strcspn(p, ",");
        if (len == 0)
            return SPEC_ERR(sp, "empty FILE after '='");
        rc = add_option(sp, "file", take(&w, p, len), st);
        if (rc != CT_OK)
            return rc;
        p += len;
    }
    while (*p == ',') {
        const char *key;
        p++;
        len = strcspn(p, "=,");
        if (p[len] != '=')
            return SPEC_ERR(sp, "option \"%.*s\" is not key=value", (int)len,
                            p);
        if (len == 0)
            return SPEC_ERR(sp, "an option has no name before '='");
        key = take(&w, p, len);
        p += len + 1;
        if (p[0] == ',' && (p[1] == '\0' || p[1] == ','))
            len = 1; /* the plain comma value */
        else
            len = strcspn(p, ",");
        if (len == 0)
            return SPEC_ERR(sp, "option %s has an empty value", key);
        rc = add_option(sp, key, take(&w, p, len), st);
        if (rc != CT_OK)
            return rc;
        p += len;
    }
    if (sp->kind->file == 2 && sp->file == NULL)
        return SPEC_ERR(sp, "%s needs a file (%s=FILE)", sp->kind->name,
                        sp->kind->name);
    if (sp->file != NULL)
        return ct__obs_template_check(text, sp->file, st);
    return CT_OK;
}

const char *ct__obs_spec_get(const struct ct__obs_spec *sp, const char *key)
{
    int k;

    for (k = 0; k < sp->n_kv; k++)
        if (strcmp(sp->key[k], key) == 0)
            return sp->val[k];
    return NULL;
}

int ct__obs_spec_int(const struct ct__obs_spec *sp, const char *key,
                     long long dflt, long long lo, long long hi, long long *out,
                     ct_status_t *st)
{
    const char *v = ct__obs_spec_get(sp, key);
    char *end;
    long long x;

    *out = dflt;
    if (v == NULL)
        return CT_OK;
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
        return SPEC_ERR(sp, "%s: want an integer in [%lld, %lld], got \"%s\"",
                        key, lo, hi, v);
    *out = x;
    return CT_OK;
}

int ct__obs_spec_dump_freq(const struct ct__obs_spec *sp, int *out,
                           ct_status_t *st)
{
    long long v;
    int rc = ct__obs_spec_int(sp, "dump_freq", -1, -1, 1000000000, &v, st);

    if (rc != CT_OK)
        return rc;
    if (v == 0)
        /* Caffe2 computes cnt % 0 here. */
        return SPEC_ERR(sp, "dump_freq: want -1 (only at the end) or N >= 1 "
                            "(every N runs), got 0");
    *out = (int)v;
    return CT_OK;
}

int ct__obs_spec_delimiter(const struct ct__obs_spec *sp, char out[16],
                           ct_status_t *st)
{
    static const struct {
        const char *name, *val;
    } named[] = {{"space", " "}, {"tab", "\t"}, {"\\t", "\t"}, {"comma", ","}};
    const char *v = ct__obs_spec_get(sp, "delimiter");
    size_t k;

    if (v == NULL)
        v = " ";
    for (k = 0; k < sizeof(named) / sizeof(named[0]); k++)
        if (strcmp(v, named[k].name) == 0)
            v = named[k].val;
    if (strlen(v) > 15)
        return SPEC_ERR(sp, "delimiter: at most 15 bytes, got \"%s\"", v);
    snprintf(out, 16, "%s", v);
    return CT_OK;
}

/* ---- file name templates ---- */

int ct__obs_template_check(const char *spec, const char *tmpl, ct_status_t *st)
{
    const char *p;

    for (p = strchr(tmpl, '%'); p != NULL; p = strchr(p + 2, '%')) {
        if (p[1] == 'n' || p[1] == 'i' || p[1] == '%')
            continue;
        return spec_err(spec, st,
                        "file \"%s\": unknown placeholder %%%.1s (use %%n "
                        "for the net name, %%i for its id, %%%% for %%)",
                        tmpl, p[1] != '\0' ? p + 1 : "");
    }
    return CT_OK;
}

/* Appends the net name with every byte outside [A-Za-z0-9._-] as '_'. */
static void put_name(struct ct__obs_buf *b, const char *name)
{
    const char *c;

    if (name[0] == '\0') {
        ct__obs_buf_printf(b, "net");
        return;
    }
    for (c = name; *c != '\0'; c++) {
        char ch = *c;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
                  ch == '-';
        ct__obs_buf_printf(b, "%c", ok ? ch : '_');
    }
}

char *ct__obs_template_expand(const char *tmpl, const char *net_name,
                              uint64_t net_id, bool per_net, bool with_id)
{
    struct ct__obs_buf b = {NULL, 0, 0, false};
    const char *p, *ext = NULL;

    if (per_net && strchr(tmpl, '%') == NULL) {
        const char *dot = strrchr(tmpl, '.'), *slash = strrchr(tmpl, '/');
        if (dot != NULL && (slash == NULL || dot > slash))
            ext = dot;
        ct__obs_buf_printf(&b, "%.*s.",
                           (int)(ext != NULL ? ext - tmpl : (long)strlen(tmpl)),
                           tmpl);
        put_name(&b, net_name);
        if (with_id)
            ct__obs_buf_printf(&b, ".%llu", (unsigned long long)net_id);
        ct__obs_buf_printf(&b, "%s", ext != NULL ? ext : "");
    } else {
        for (p = tmpl; *p != '\0'; p++) {
            if (p[0] != '%') {
                ct__obs_buf_printf(&b, "%c", p[0]);
                continue;
            }
            p++;
            if (*p == '\0')
                break; /* ct__obs_template_check refuses this */
            if (*p == 'n')
                put_name(&b, net_name);
            else if (*p == 'i')
                ct__obs_buf_printf(&b, "%llu", (unsigned long long)net_id);
            else
                ct__obs_buf_printf(&b, "%%");
        }
    }
    if (b.oom || b.p == NULL) {
        ct__obs_buf_free(&b);
        return NULL;
    }
    return b.p;
}
