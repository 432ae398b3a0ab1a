/* cortado CLI: option parsing, error reporting and formatting helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cortado/engine.h"
#include "engine/cli/cli_util.h"

/* ---- errors ---- */

/* Writes msg to stderr with every newline or tab turned into a space, so
 * an error is always one line. */
static void put_one_line(const char *msg)
{
    for (; *msg != '\0'; msg++)
        fputc(*msg == '\n' || *msg == '\r' || *msg == '\t' ? ' ' : *msg,
              stderr);
}

static void verror(const char *fmt, va_list ap)
{
    char buf[1024];

    vsnprintf(buf, sizeof(buf), fmt, ap);
    fputs("cortado: error: ", stderr);
    put_one_line(buf);
    fputc('\n', stderr);
}

void ct__cli_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
}

int ct__cli_usage_error(const struct ct__cli_parser *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
    fprintf(stderr, "usage: %s\n", p->synopsis);
    fprintf(stderr, "Run 'cortado %s --help' for details.\n", p->cmd);
    return CT_CLI_EXIT_USAGE;
}

int ct__cli_status_error(const ct_status_t *st, int rc, const char *what)
{
    const char *msg =
        st != NULL && st->msg[0] != '\0' ? st->msg : ct_strerror(rc);

    if (what != NULL)
        ct__cli_error("%s: %s", what, msg);
    else
        ct__cli_error("%s", msg);
    return CT_CLI_EXIT_FAIL;
}

/* ---- option parsing ---- */

void ct__cli_parser_init(struct ct__cli_parser *p, int argc, char **argv,
                         const char *cmd, const char *synopsis,
                         const struct ct__cli_opt *opts)
{
    p->argc = argc;
    p->argv = argv;
    p->idx = 1;
    p->only_positionals = false;
    p->cmd = cmd;
    p->synopsis = synopsis;
    p->opts = opts;
}

static const struct ct__cli_opt *find_long(const struct ct__cli_parser *p,
                                           const char *name, size_t len)
{
    const struct ct__cli_opt *o;

    for (o = p->opts; o->name != NULL; o++)
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static const struct ct__cli_opt *find_short(const struct ct__cli_parser *p,
                                            char c)
{
    const struct ct__cli_opt *o;

    for (o = p->opts; o->name != NULL; o++)
        if (o->short_name != 0 && o->short_name == c)
            return o;
    return NULL;
}

int ct__cli_next(struct ct__cli_parser *p, const char **val)
{
    const struct ct__cli_opt *o;
    const char *a, *eq;
    char dashed[64];

    *val = NULL;
    if (p->idx >= p->argc)
        return CT_CLI_END;
    a = p->argv[p->idx++];
    if (p->only_positionals || a[0] != '-' || a[1] == '\0') {
        *val = a; /* "-" alone is a positional (stdin/stdout) */
        return CT_CLI_POSITIONAL;
    }
    if (strcmp(a, "--") == 0) {
        p->only_positionals = true;
        return ct__cli_next(p, val);
    }
    if (a[1] == '-') {
        eq = strchr(a + 2, '=');
        o = find_long(p, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
        if (o == NULL) {
            ct__cli_usage_error(p, "unknown option '%.*s'",
                                (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
            return CT_CLI_BAD;
        }
        snprintf(dashed, sizeof(dashed), "--%s", o->name);
        if (eq != NULL) {
            if (!o->has_arg) {
                ct__cli_usage_error(p, "option '%s' takes no value", dashed);
                return CT_CLI_BAD;
            }
            *val = eq + 1;
            return o->id;
        }
    } else {
        if (a[2] != '\0' || (o = find_short(p, a[1])) == NULL) {
            ct__cli_usage_error(p, "unknown option '%s'", a);
            return CT_CLI_BAD;
        }
        snprintf(dashed, sizeof(dashed), "-%c", a[1]);
    }
    if (o->has_arg) {
        if (p->idx >= p->argc) {
            ct__cli_usage_error(p, "option '%s' needs a value", dashed);
            return CT_CLI_BAD;
        }
        *val = p->argv[p->idx++];
    }
    return o->id;
}

bool ct__cli_parse_int(const struct ct__cli_parser *p, const char *opt,
                       const char *s, long long lo, long long hi,
                       long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        ct__cli_usage_error(p, "%s wants an integer in [%lld, %lld], got '%s'",
                            opt, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool ct__cli_split_assign(const struct ct__cli_parser *p, const char *opt,
                          const char *s, char **blob, const char **file)
{
    const char *eq = strchr(s, '=');
    char *copy;

    if (eq == NULL || eq == s || eq[1] == '\0') {
        ct__cli_usage_error(p, "%s wants BLOB=FILE, got '%s'", opt, s);
        return false;
    }
    copy = malloc(strlen(s) + 1);
    if (copy == NULL) {
        ct__cli_error("out of memory");
        return false;
    }
    strcpy(copy, s);
    copy[eq - s] = '\0';
    *blob = copy;
    *file = copy + (eq - s) + 1;
    return true;
}

/* ---- NetDef files ---- */

int ct__cli_read_netdef(const char *path, ct_netdef_t **out,
                        enum ct_proto_format *fmt, size_t *size,
                        ct_status_t *st)
{
    void *buf;
    size_t len;
    enum ct_proto_format f;
    int rc;

    *out = NULL;
    rc = ct_file_read(path, &buf, &len, st);
    if (rc != CT_OK)
        return rc;
    f = ct_proto_detect(buf, len);
    rc = ct_netdef_parse(buf, len, f, out, st);
    if (rc != CT_OK && f == CT_PROTO_TEXT &&
        ct_netdef_parse(buf, len, CT_PROTO_BINARY, out, NULL) == CT_OK) {
        f = CT_PROTO_BINARY;
        rc = CT_OK;
        ct_status_clear(st);
    }
    ct_free(buf);
    if (rc != CT_OK) {
        ct_status_prefix(st, "%s: ", path);
        return rc;
    }
    if (fmt != NULL)
        *fmt = f;
    if (size != NULL)
        *size = len;
    return CT_OK;
}

const char *ct__cli_format_name(enum ct_proto_format fmt)
{
    return fmt == CT_PROTO_TEXT ? "pbtxt" : "pb";
}

/* ---- formatting ---- */

const char *ct__cli_fmt_duration(double ns, char *buf, size_t size)
{
    if (ns < 1e3)
        snprintf(buf, size, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, size, "%.3g us", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, size, "%.3g ms", ns / 1e6);
    else
        snprintf(buf, size, "%.3g s", ns / 1e9);
    return buf;
}

static void print_string(FILE *f, const ct_str_t *s)
{
    size_t i, n = s->len < 24 ? s->len : 24;

    fputc('"', f);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s->data[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
    fputs(s->len > n ? "...\"" : "\"", f);
}

void ct__cli_print_values(FILE *f, const ct_tensor_t *t, int max_values)
{
    const void *d = ct_tensor_cdata(t);
    int64_t n = ct_tensor_numel(t), i;

    fputc('[', f);
    for (i = 0; i < n && i < max_values; i++) {
        if (i > 0)
            fputs(", ", f);
        switch (ct_tensor_dtype(t)) {
        case CT_DTYPE_F32:
            fprintf(f, "%.6g", ((const float *)d)[i]);
            break;
        case CT_DTYPE_F64:
            fprintf(f, "%.6g", ((const double *)d)[i]);
            break;
        case CT_DTYPE_F16:
            fprintf(f, "%.4g", ct_f16_to_f32(((const uint16_t *)d)[i]));
            break;
        case CT_DTYPE_I32:
            fprintf(f, "%ld", (long)((const int32_t *)d)[i]);
            break;
        case CT_DTYPE_I64:
            fprintf(f, "%lld", (long long)((const int64_t *)d)[i]);
            break;
        case CT_DTYPE_I16:
            fprintf(f, "%d", ((const int16_t *)d)[i]);
            break;
        case CT_DTYPE_I8:
            fprintf(f, "%d", ((const int8_t *)d)[i]);
            break;
        case CT_DTYPE_U16:
            fprintf(f, "%u", ((const uint16_t *)d)[i]);
            break;
        case CT_DTYPE_U8:
        case CT_DTYPE_BYTE:
            fprintf(f, "%u", ((const uint8_t *)d)[i]);
            break;
        case CT_DTYPE_BOOL:
            fputs(((const uint8_t *)d)[i] ? "true" : "false", f);
            break;
        case CT_DTYPE_STRING:
            print_string(f, (const ct_str_t *)d + i);
            break;
        default:
            fputc('?', f);
            break;
        }
    }
    if (n > max_values)
        fputs(", ...", f);
    fputc(']', f);
}

uint64_t ct__cli_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
