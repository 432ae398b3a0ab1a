/* cortado: common definitions shared by every public header.
 *
 * Export macro, cache-line size and the always-on assertion used for
 * contract violations. Includes only the C standard headers it needs.
 */
#ifndef CORTADO_COMMON_H
#define CORTADO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CT_STATIC_DEFINE)
#define CT_API
#elif defined(__GNUC__)
#define CT_API __attribute__((visibility("default")))
#else
#define CT_API
#endif

#if defined(__GNUC__)
#define CT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CT_NORETURN __attribute__((noreturn))
#define CT_LIKELY(x) __builtin_expect(!!(x), 1)
#define CT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define CT_PRINTF(a, b)
#define CT_NORETURN
#define CT_LIKELY(x) (x)
#define CT_UNLIKELY(x) (x)
#endif

/* Size of a cache line on every target we build for; per-worker hot data
 * is padded to it. 128 would cover adjacent-line prefetch on x86, but 64
 * matches the destructive-interference size the hardware reports. */
#define CT_CACHE_LINE 64

/* Highest tensor rank cortado accepts. Caffe2 has no fixed limit; real
 * nets use at most 6. A larger rank is a clean CT_ESHAPE, never UB. */
#define CT_MAX_DIMS 16

/* Library version. */
#define CT_VERSION_MAJOR 0
#define CT_VERSION_MINOR 1
#define CT_VERSION_PATCH 0
CT_API const char *ct_version_string(void);

/* Prints "file:line: assertion `cond' failed: <message>" to stderr and
 * aborts. Used for contract violations only (NULL handles, broken
 * invariants), never for bad input. Always on: NDEBUG does not strip it. */
CT_API CT_NORETURN void ct__assert_fail(const char *file, int line,
                                        const char *cond, const char *fmt, ...)
    CT_PRINTF(4, 5);

#define CT_ASSERT(cond, ...)                                                   \
    do {                                                                       \
        if (CT_UNLIKELY(!(cond)))                                              \
            ct__assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);           \
    } while (0)

/* Constant rather than #ifdef, so debug-only checks stay compiled. */
#ifdef CT_DEBUG_BUILD
#define CT_DEBUG 1
#else
#define CT_DEBUG 0
#endif

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_COMMON_H */
