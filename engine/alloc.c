/* cortado: the library allocator.
 *
 * Default hooks use the C allocator for small objects and 64-byte aligned
 * blocks for tensor storage (jemalloc's mallocx/sdallocx when built with
 * jemalloc, so the size-class lookup is skipped on free). ct_set_allocator
 * replaces them process-wide; it must be called before any other call,
 * which is why a plain (non-atomic) struct is enough.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef CT_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "cortado/error.h"
#include "engine/alloc.h"

static void *default_malloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}

static void *default_realloc(void *p, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(p, size);
}

static void default_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

#ifdef CT_HAVE_JEMALLOC
/* jemalloc's MALLOCX_ALIGN() calls ffs(), which strict POSIX 2008 headers
 * do not declare; pass log2 of the (power of two) alignment instead. */
static int lg_align(size_t align)
{
    return __builtin_ctzll((unsigned long long)align);
}
#endif

static void *default_aligned(size_t align, size_t size, void *ctx)
{
    (void)ctx;
#ifdef CT_HAVE_JEMALLOC
    return mallocx(size == 0 ? 1 : size, MALLOCX_LG_ALIGN(lg_align(align)));
#else
    void *p = NULL;
    if (posix_memalign(&p, align, size == 0 ? 1 : size) != 0)
        return NULL;
    return p;
#endif
}

static void default_aligned_free(void *p, size_t size, void *ctx)
{
    (void)ctx;
#ifdef CT_HAVE_JEMALLOC
    if (p != NULL)
        sdallocx(p, size == 0 ? 1 : size,
                 MALLOCX_LG_ALIGN(lg_align(CT_TENSOR_ALIGN)));
#else
    (void)size;
    free(p);
#endif
}

static const struct ct_allocator default_allocator = {
    default_malloc,  default_realloc,      default_free,
    default_aligned, default_aligned_free, NULL,
};

/* Set before any other call (documented contract), read everywhere. */
static struct ct_allocator allocator = {
    default_malloc,  default_realloc,      default_free,
    default_aligned, default_aligned_free, NULL,
};

void ct_set_allocator(const struct ct_allocator *a)
{
    if (a == NULL) {
        allocator = default_allocator;
        return;
    }
    allocator.malloc_cb = a->malloc_cb ? a->malloc_cb : default_malloc;
    allocator.realloc_cb = a->realloc_cb ? a->realloc_cb : default_realloc;
    allocator.free_cb = a->free_cb ? a->free_cb : default_free;
    allocator.aligned_cb = a->aligned_cb ? a->aligned_cb : default_aligned;
    allocator.aligned_free_cb =
        a->aligned_free_cb ? a->aligned_free_cb : default_aligned_free;
    allocator.ctx = a->ctx;
}

void *ct__malloc(size_t size)
{
    return allocator.malloc_cb(size == 0 ? 1 : size, allocator.ctx);
}

void *ct__calloc(size_t n, size_t size)
{
    void *p;
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    p = ct__malloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *ct__realloc(void *p, size_t size)
{
    return allocator.realloc_cb(p, size == 0 ? 1 : size, allocator.ctx);
}

void ct__free(void *p)
{
    if (p != NULL)
        allocator.free_cb(p, allocator.ctx);
}

void ct_free(void *p)
{
    ct__free(p);
}

char *ct__strndup(const char *s, size_t n)
{
    char *d = ct__malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *ct__strdup(const char *s)
{
    return ct__strndup(s, strlen(s));
}

void *ct__aligned_alloc(size_t size)
{
    return allocator.aligned_cb(CT_TENSOR_ALIGN, size, allocator.ctx);
}

void ct__aligned_free(void *p, size_t size)
{
    if (p != NULL)
        allocator.aligned_free_cb(p, size, allocator.ctx);
}

int ct__grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *p;

    if (need <= *cap)
        return CT_OK;
    ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return CT_ENOMEM;
        ncap *= 2;
    }
    if (elem != 0 && ncap > SIZE_MAX / elem)
        return CT_ENOMEM;
    p = ct__realloc(*arr, ncap * elem);
    if (p == NULL)
        return CT_ENOMEM;
    *arr = p;
    *cap = ncap;
    return CT_OK;
}
