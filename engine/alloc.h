/* cortado internal: the library allocator.
 *
 * Every allocation of the library goes through these wrappers so that
 * ct_set_allocator() hooks (fault injection in tests) see all of them.
 * Tensor storage uses ct__aligned_alloc (64-byte aligned; jemalloc's
 * mallocx when the build has jemalloc) and is charged to an engine budget
 * by the engine, not here.
 */
#ifndef CT_ENGINE_ALLOC_H
#define CT_ENGINE_ALLOC_H

#include <stddef.h>

#include "cortado/engine.h"

#define CT_TENSOR_ALIGN 64

void *ct__malloc(size_t size);
void *ct__calloc(size_t n, size_t size); /* overflow-checked */
void *ct__realloc(void *p, size_t size);
void ct__free(void *p);
char *ct__strdup(const char *s);
char *ct__strndup(const char *s, size_t n);
/* size may be 0 (returns a unique pointer). Memory is not zeroed. */
void *ct__aligned_alloc(size_t size);
void ct__aligned_free(void *p, size_t size);
/* Grows *arr (element size `elem`) so it holds at least `need` elements,
 * doubling *cap. Returns 0 or CT_ENOMEM (array unchanged). */
int ct__grow(void **arr, size_t *cap, size_t need, size_t elem);

#endif /* CT_ENGINE_ALLOC_H */
