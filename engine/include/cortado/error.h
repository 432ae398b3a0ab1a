/* cortado: error codes and the caller-owned status.
 *
 * Every fallible function returns int: 0 (CT_OK) or a negative CT_E* code.
 * Context travels in a caller-owned ct_status_t passed as the optional last
 * argument (NULL allowed). There is no global "last error": two threads
 * never share a status unless the caller makes them. Filling a status
 * never allocates.
 */
#ifndef CORTADO_ERROR_H
#define CORTADO_ERROR_H

#include <stdarg.h>

#include "cortado/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, default text). The one list generates the enum,
 * ct_strerror() and ct_err_name(). Values are stable: never renumber. */
#define CT_ERROR_LIST(X)                                                       \
    X(CT_OK, 0, "success")                                                     \
    X(CT_EINVAL, -1, "invalid argument")                                       \
    X(CT_ENOMEM, -2, "out of memory")                                          \
    X(CT_EPARSE, -3, "parse error")                                            \
    X(CT_ESCHEMA, -4, "operator def did not pass schema checking")             \
    X(CT_EARG, -5, "bad operator argument")                                    \
    X(CT_ESHAPE, -6, "bad shape")                                              \
    X(CT_ETYPE, -7, "type mismatch")                                           \
    X(CT_ENOTFOUND, -8, "not found")                                           \
    X(CT_EEXIST, -9, "already exists")                                         \
    X(CT_ENOTSUP, -10, "not supported")                                        \
    X(CT_EGRAPH, -11, "invalid net")                                           \
    X(CT_EOVERFLOW, -12, "size overflow")                                      \
    X(CT_EIO, -13, "I/O error")                                                \
    X(CT_ECORRUPT, -14, "corrupt data")                                        \
    X(CT_EPATH, -15, "path not allowed")                                       \
    X(CT_EDURABILITY, -16, "committed, durability unknown")                    \
    X(CT_EBUSY, -17, "busy")                                                   \
    X(CT_ECANCELED, -18, "canceled")                                           \
    X(CT_ESTATE, -19, "invalid state")                                         \
    X(CT_EINTERNAL, -20, "internal error")

enum ct_error {
#define CT__ERR_ENUM(name, value, text) name = value,
    CT_ERROR_LIST(CT__ERR_ENUM)
#undef CT__ERR_ENUM
        CT_ERROR_COUNT_ = 21 /* number of codes, for tables */
};

/* Size of the message buffer in a status, including the terminating NUL. */
#define CT_STATUS_MSG_MAX 256

/* Caller-owned error context. `node` is the op index inside the net that
 * failed (-1 when not an op error) and `op` that op's type. `msg` is the
 * full human-readable message; for op failures it reads
 * `node 12 "conv1" (Conv): want 4-d input, got 3-d`. */
typedef struct ct_status_s {
    int code;
    int node;
    char op[64];
    char msg[CT_STATUS_MSG_MAX];
} ct_status_t;

/* Default text of a code, e.g. "out of memory"; "unknown error" for values
 * outside the list. Static storage; thread-safe. */
CT_API const char *ct_strerror(int code);
/* Symbolic name of a code, e.g. "CT_ENOMEM". Static storage. */
CT_API const char *ct_err_name(int code);

/* Resets st to CT_OK, node -1, empty strings. NULL allowed. */
CT_API void ct_status_clear(ct_status_t *st);
/* Sets st's code and formats its message (truncated to fit). Returns code,
 * so `return ct_status_setf(st, CT_EINVAL, "...")` reads naturally. With
 * st NULL it only returns code. Never allocates. */
CT_API int ct_status_setf(ct_status_t *st, int code, const char *fmt, ...)
    CT_PRINTF(3, 4);
CT_API int ct_status_vsetf(ct_status_t *st, int code, const char *fmt,
                           va_list ap);
/* Prepends formatted context to st->msg ("<prefix><old message>"),
 * keeping the code. No-op when st is NULL or holds CT_OK. */
CT_API void ct_status_prefix(ct_status_t *st, const char *fmt, ...)
    CT_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_ERROR_H */
