/* cortado: blobs, named slots that hold one typed object.
 *
 * A blob holds nothing, a tensor, or any other object described by a
 * ct_blob_type (a small vtable: name and destroy). Later modules register
 * their own types (stat registry, timer, workspace stack, DB reader...).
 * Blobs are owned by their workspace; only the workspace frees them.
 * Thread-safety: a blob is not synchronised. During a net run an op
 * touches only the blobs bound to it at compile time.
 */
#ifndef CORTADO_BLOB_H
#define CORTADO_BLOB_H

#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_blob_s ct_blob_t;

/* Describes a type a blob can hold. Instances are static and immutable. */
typedef struct ct_blob_type {
    const char *name;              /* e.g. "Tensor", "StatRegistry" */
    void (*destroy_cb)(void *obj); /* frees obj; never NULL */
} ct_blob_type_t;

/* The type of tensor contents (obj is a ct_tensor_t *). */
CT_API extern const ct_blob_type_t ct_blob_type_tensor;

/* Type of the content, or NULL for an empty blob. */
CT_API const ct_blob_type_t *ct_blob_type(const ct_blob_t *b);
/* Name the blob has in its workspace; owned by the blob. */
CT_API const char *ct_blob_name(const ct_blob_t *b);
/* True when the blob holds nothing. */
CT_API bool ct_blob_is_empty(const ct_blob_t *b);
/* The object if the blob holds type `type`, else NULL (not found).
 * Borrowed; valid until the blob is reset, removed or its workspace freed. */
CT_API void *ct_blob_get(const ct_blob_t *b, const ct_blob_type_t *type);
/* The tensor if the blob holds one, else NULL. Borrowed. */
CT_API ct_tensor_t *ct_blob_get_tensor(const ct_blob_t *b);
/* Caffe2's GetMutable<Tensor>: returns the held tensor, or destroys the
 * current content and puts a new empty tensor (bound to eng) in the blob.
 * Errors: CT_ENOMEM (blob unchanged). */
CT_API int ct_blob_get_mutable_tensor(ct_blob_t *b, ct_engine_t *eng,
                                      ct_tensor_t **out, ct_status_t *st);
/* Destroys the content and stores obj of type `type` (takes ownership of
 * obj). type NULL with obj NULL empties the blob. */
CT_API void ct_blob_reset(ct_blob_t *b, const ct_blob_type_t *type, void *obj);
/* Removes the content without destroying it and returns it (ownership
 * passes to the caller); NULL when empty. */
CT_API void *ct_blob_take(ct_blob_t *b);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_BLOB_H */
