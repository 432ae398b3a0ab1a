/* cortado: error codes and status formatting.
 *
 * Every function here is async-signal-unsafe but allocation-free: error
 * paths must work when malloc is what failed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/error.h"

const char *ct_strerror(int code)
{
    switch (code) {
#define CT__ERR_TEXT(name, value, text)                                        \
    case value:                                                                \
        return text;
        CT_ERROR_LIST(CT__ERR_TEXT)
#undef CT__ERR_TEXT
    }
    return "unknown error";
}

const char *ct_err_name(int code)
{
    switch (code) {
#define CT__ERR_NAME(name, value, text)                                        \
    case value:                                                                \
        return #name;
        CT_ERROR_LIST(CT__ERR_NAME)
#undef CT__ERR_NAME
    }
    return "CT_E?";
}

void ct_status_clear(ct_status_t *st)
{
    if (st == NULL)
        return;
    st->code = CT_OK;
    st->node = -1;
    st->op[0] = '\0';
    st->msg[0] = '\0';
}

int ct_status_vsetf(ct_status_t *st, int code, const char *fmt, va_list ap)
{
    if (st == NULL)
        return code;
    st->code = code;
    st->node = -1;
    st->op[0] = '\0';
    if (fmt == NULL) {
        snprintf(st->msg, sizeof(st->msg), "%s", ct_strerror(code));
    } else {
        /* The message may be built from st->msg itself (callers that
         * re-wrap an inner error), so format into a scratch copy. */
        char tmp[CT_STATUS_MSG_MAX];
        vsnprintf(tmp, sizeof(tmp), fmt, ap);
        memcpy(st->msg, tmp, sizeof(tmp));
    }
    return code;
}

int ct_status_setf(ct_status_t *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ct_status_vsetf(st, code, fmt, ap);
    va_end(ap);
    return code;
}

void ct_status_prefix(ct_status_t *st, const char *fmt, ...)
{
    char pre[CT_STATUS_MSG_MAX];
    char tmp[CT_STATUS_MSG_MAX];
    va_list ap;

    if (st == NULL || st->code == CT_OK)
        return;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    {
        /* Explicit concatenation: the result is cut at the buffer size on
         * purpose, which snprintf("%s%s") would warn about. */
        size_t a = strnlen(pre, sizeof(pre) - 1);
        size_t b = strnlen(st->msg, sizeof(st->msg) - 1);
        if (b > sizeof(tmp) - 1 - a)
            b = sizeof(tmp) - 1 - a;
        memcpy(tmp, pre, a);
        memcpy(tmp + a, st->msg, b);
        tmp[a + b] = '\0';
    }
    memcpy(st->msg, tmp, sizeof(tmp));
}

void ct__assert_fail(const char *file, int line, const char *cond,
                     const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: assertion `%s' failed: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

const char *ct_version_string(void)
{
    return "0.1.0";
}
