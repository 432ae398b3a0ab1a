/* cortado: DB paths and checkpoint patterns.
 *
 * Path rule (reliability checklist C10, A18). Save, Load, Checkpoint and
 * DBExists take `db` from a NetDef, which may come from anywhere:
 *   - absolute_path = 0 (the default): db is joined to the workspace root
 *     folder and must stay inside it. It must be relative, must not have a
 *     ".." component, and the deepest part of the joined path that exists
 *     must, once symbolic links are resolved (realpath), lie inside the
 *     resolved root: a symlinked directory cannot lead out either.
 *     Violations are CT_EPATH. Caffe2 simply concatenated root + "/" + db.
 *   - absolute_path = 1: db is used as given (relative to the process's
 *     working directory if it is not absolute), as in Caffe2: the net's
 *     author explicitly opted out of the root.
 * In both cases writers refuse to replace a symbolic link, a directory or
 * a non-regular file, and readers refuse cortado's temporary files (see
 * storage/fileio.c).
 *
 * Pattern rule. Caffe2's Checkpoint passed the `db` pattern and the
 * iteration to snprintf, so "%s" or "%n" in a model was undefined
 * behaviour. Here the pattern is parsed once: literal text, "%%", and at
 * most one integer conversion %d / %i / %u with optional flags "-+ 0",
 * a width and a precision up to 64, and length modifiers (ignored: the
 * iteration is always formatted as int64). Anything else is rejected
 * with CT_EARG when the op is created. The conversion is rebuilt from the
 * parsed parts, so the pattern text never reaches printf.
 */
/* realpath() is an XSI interface. */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alloc.h"
#include "storage/fileio.h"
#include "storage/storage_impl.h"

#define MAX_PATTERN 4096
#define MAX_WIDTH 64

int ct__path_check_lexical(const char *db, bool absolute, ct_status_t *st)
{
    const char *p = db;

    if (db[0] == '\0')
        return ct_status_setf(st, CT_EPATH, "empty db path");
    if (absolute)
        return CT_OK;
    if (db[0] == '/')
        return ct_status_setf(st, CT_EPATH,
                              "db \"%s\" is an absolute path but "
                              "absolute_path is 0 (it would be taken "
                              "relative to the workspace root folder)",
                              db);
    while (*p != '\0') {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return ct_status_setf(st, CT_EPATH,
                                  "db \"%s\": \"..\" components are not "
                                  "allowed (the path must stay inside the "
                                  "workspace root folder; set absolute_path "
                                  "to use a path of your own)",
                                  db);
        p += n;
        while (*p == '/')
            p++;
    }
    return CT_OK;
}

static bool inside(const char *real, const char *root)
{
    size_t n = strlen(root);

    if (n == 1 && root[0] == '/')
        return true;
    return strncmp(real, root, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

/* realpath of the deepest existing prefix of path (malloc'd), or NULL
 * with errno when not even "/" or "." resolves. */
static char *real_ancestor(const char *path)
{
    char *p = ct__strdup(path), *r = NULL, *cut;

    if (p == NULL)
        return NULL;
    for (;;) {
        r = realpath(p, NULL);
        if (r != NULL || (errno != ENOENT && errno != ENOTDIR))
            break;
        cut = strrchr(p, '/');
        if (cut == NULL) {
            r = realpath(".", NULL);
            break;
        }
        if (cut == p) {
            r = realpath("/", NULL);
            break;
        }
        *cut = '\0';
    }
    ct__free(p);
    return r;
}

int ct__path_resolve(const char *root, const char *db, bool absolute,
                     char **out, ct_status_t *st)
{
    char *path, *rroot, *rpath;
    size_t rl;
    int rc = ct__path_check_lexical(db, absolute, st);

    if (rc != CT_OK)
        return rc;
    if (absolute) {
        path = ct__strdup(db);
        if (path == NULL)
            return ct_status_setf(st, CT_ENOMEM, "out of memory");
        *out = path;
        return CT_OK;
    }
    if (root == NULL || root[0] == '\0')
        root = ".";
    rl = strlen(root);
    path = ct__malloc(rl + strlen(db) + 2);
    if (path == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    sprintf(path, "%s%s%s", root, root[rl - 1] == '/' ? "" : "/", db);
    rroot = realpath(root, NULL);
    if (rroot == NULL) {
        /* No root folder yet: nothing can be opened under it either, and
         * the open reports that with the path. */
        *out = path;
        return CT_OK;
    }
    rpath = real_ancestor(path);
    if (rpath != NULL && !inside(rpath, rroot)) {
        rc = ct_status_setf(st, CT_EPATH,
                            "db \"%s\" leads to %s, outside the workspace "
                            "root folder %s (through a symbolic link)",
                            db, rpath, rroot);
        ct__free(path);
        path = NULL;
    }
    free(rpath); /* realpath allocates with malloc */
    free(rroot);
    if (rc == CT_OK)
        *out = path;
    return rc;
}

/* ---- patterns ---- */

static int bad_conv(const char *pattern, size_t at, size_t len, const char *why,
                    ct_status_t *st)
{
    return ct_status_setf(st, CT_EARG,
                          "checkpoint pattern \"%s\": %s \"%.*s\" at offset "
                          "%zu (only one %%d-style integer conversion is "
                          "substituted; write %%%% for a literal %%)",
                          pattern, why, (int)len, pattern + at, at);
}

int ct__pattern_parse(const char *pattern, struct ct__pattern *p,
                      ct_status_t *st)
{
    size_t i = 0, n = strlen(pattern);
    bool have = false;

    memset(p, 0, sizeof(*p));
    if (n > MAX_PATTERN)
        return ct_status_setf(st, CT_EARG,
                              "checkpoint pattern of %zu bytes (limit %d)", n,
                              MAX_PATTERN);
    while (i < n) {
        size_t at, fl = 0, k;
        char flags[8] = {0}, conv;
        int width = -1, prec = -1;
        if (pattern[i] != '%') {
            i++;
            continue;
        }
        if (pattern[i + 1] == '%') {
            i += 2;
            continue;
        }
        at = i++;
        while (i < n && strchr("-+ 0", pattern[i]) != NULL) {
            if (fl < sizeof(flags) - 1 && strchr(flags, pattern[i]) == NULL)
                flags[fl++] = pattern[i];
            flags[fl] = '\0';
            i++;
        }
        flags[fl] = '\0';
        for (k = 0; i < n && pattern[i] >= '0' && pattern[i] <= '9'; i++) {
            width = (width < 0 ? 0 : width) * 10 + (pattern[i] - '0');
            if (++k > 2)
                return bad_conv(pattern, at, i + 1 - at, "width too large in",
                                st);
        }
        if (i < n && pattern[i] == '.') {
            prec = 0;
            for (i++, k = 0; i < n && pattern[i] >= '0' && pattern[i] <= '9';
                 i++) {
                prec = prec * 10 + (pattern[i] - '0');
                if (++k > 2)
                    return bad_conv(pattern, at, i + 1 - at,
                                    "precision too large in", st);
            }
        }
        while (i < n && strchr("hljztqL", pattern[i]) != NULL)
            i++;
        conv = i < n ? pattern[i] : '\0';
        if (conv != 'd' && conv != 'i' && conv != 'u')
            return bad_conv(pattern, at, i < n ? i + 1 - at : n - at,
                            "unsupported conversion", st);
        i++;
        if (have)
            return bad_conv(pattern, at, i - at, "a second conversion", st);
        if (width > MAX_WIDTH || prec > MAX_WIDTH)
            return bad_conv(pattern, at, i - at, "width over 64 in", st);
        have = true;
        p->conv_at = at;
        p->conv_len = i - at;
        {
            char w[8] = "", pr[8] = "";
            if (width >= 0)
                snprintf(w, sizeof(w), "%d", width);
            if (prec >= 0)
                snprintf(pr, sizeof(pr), ".%d", prec);
            snprintf(p->fmt, sizeof(p->fmt), "%%%s%s%s%s", flags, w, pr,
                     conv == 'u' ? PRIu64 : PRId64);
        }
    }
    return CT_OK;
}

/* Appends pattern[from, to) to out with "%%" turned into "%". */
static size_t copy_literal(char *out, const char *pattern, size_t from,
                           size_t to)
{
    size_t i, n = 0;

    for (i = from; i < to; i++) {
        out[n++] = pattern[i];
        if (pattern[i] == '%' && i + 1 < to && pattern[i + 1] == '%')
            i++;
    }
    return n;
}

int ct__pattern_format(const char *pattern, const struct ct__pattern *p,
                       int64_t iter, char **out, ct_status_t *st)
{
    size_t n = strlen(pattern), len = 0;
    char num[MAX_WIDTH + 32] = "";
    char *s;

    if (p->fmt[0] != '\0') {
        /* p->fmt was rebuilt from validated parts (flags, a width and a
         * precision of at most 64, PRId64/PRIu64), never from input text:
         * this is not a user format. */
        if (p->fmt[strlen(p->fmt) - 1] == 'u')
            snprintf(num, sizeof(num), p->fmt, (uint64_t)iter);
        else
            snprintf(num, sizeof(num), p->fmt, iter);
    }
    s = ct__malloc(n + strlen(num) + 1);
    if (s == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    if (p->fmt[0] == '\0') {
        len = copy_literal(s, pattern, 0, n);
    } else {
        len = copy_literal(s, pattern, 0, p->conv_at);
        memcpy(s + len, num, strlen(num));
        len += strlen(num);
        len += copy_literal(s + len, pattern, p->conv_at + p->conv_len, n);
    }
    s[len] = '\0';
    *out = s;
    return CT_OK;
}
