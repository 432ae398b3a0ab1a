/* cortado: tensors.
 *
 * A tensor is a dtype, up to CT_MAX_DIMS int64 dims (0-d scalars and
 * tensors with a zero dim are valid) and a refcounted, 64-byte aligned
 * storage allocated through an engine, which charges its memory budget.
 * dtypes carry Caffe2's TensorProto.DataType numbers. String tensors hold
 * ct_str_t elements (byte strings with a length; they may contain NULs).
 * Thread-safety: a tensor is not synchronised; concurrent readers are
 * fine, a writer needs exclusive access. Storage refcounts are atomic, so
 * tensors sharing storage may live on different threads.
 */
#ifndef CORTADO_TENSOR_H
#define CORTADO_TENSOR_H

#include <stdbool.h>

#include "cortado/common.h"
#include "cortado/engine.h"
#include "cortado/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Caffe2 TensorProto.DataType values. */
typedef enum ct_dtype {
    CT_DTYPE_UNDEFINED = 0,
    CT_DTYPE_F32 = 1,
    CT_DTYPE_I32 = 2,
    CT_DTYPE_BYTE = 3, /* raw bytes; 1-byte elements like U8 */
    CT_DTYPE_STRING = 4,
    CT_DTYPE_BOOL = 5,
    CT_DTYPE_U8 = 6,
    CT_DTYPE_I8 = 7,
    CT_DTYPE_U16 = 8,
    CT_DTYPE_I16 = 9,
    CT_DTYPE_I64 = 10,
    CT_DTYPE_F16 = 12, /* IEEE binary16, stored as uint16_t */
    CT_DTYPE_F64 = 13,
    CT_DTYPE_COUNT = 14
} ct_dtype_t;

/* Element of a CT_DTYPE_STRING tensor. `data` is owned by the tensor's
 * storage (allocated with the library allocator); NULL when len is 0. */
typedef struct ct_str {
    size_t len;
    char *data;
} ct_str_t;

typedef struct ct_tensor_s ct_tensor_t;

/* Bytes per element (sizeof(ct_str_t) for strings); 0 for invalid. */
CT_API size_t ct_dtype_size(ct_dtype_t dt);
/* Caffe2 name, e.g. "FLOAT", "INT64"; "UNDEFINED" for invalid values. */
CT_API const char *ct_dtype_name(ct_dtype_t dt);
/* Parses a Caffe2 name ("FLOAT") or a short one ("float32", "f32", "int64",
 * "uint8", "bool", "double", "float16", "string"). Case-insensitive.
 * CT_EINVAL when unknown. */
CT_API int ct_dtype_parse(const char *name, ct_dtype_t *out);
/* True for values that name a storable dtype (not UNDEFINED / 11). */
CT_API bool ct_dtype_valid(int dt);

/* Creates an empty tensor (dtype UNDEFINED, rank 1, dims {0}, no storage)
 * bound to engine eng for later allocations. Caller frees with
 * ct_tensor_free. Errors: CT_ENOMEM. */
CT_API int ct_tensor_new(ct_engine_t *eng, ct_tensor_t **out, ct_status_t *st);
/* Creates a tensor of the given dtype and shape with zeroed storage
 * (strings empty). ndim 0 makes a scalar. Errors: CT_ESHAPE (negative dim,
 * rank > CT_MAX_DIMS), CT_EOVERFLOW, CT_ENOMEM (budget or malloc). */
CT_API int ct_tensor_new_shape(ct_engine_t *eng, ct_dtype_t dt, int ndim,
                               const int64_t *dims, ct_tensor_t **out,
                               ct_status_t *st);
/* Frees t and drops its storage reference. NULL allowed. */
CT_API void ct_tensor_free(ct_tensor_t *t);

CT_API ct_dtype_t ct_tensor_dtype(const ct_tensor_t *t);
CT_API int ct_tensor_ndim(const ct_tensor_t *t);
/* Owned by t, valid until the next reshape/resize. */
CT_API const int64_t *ct_tensor_dims(const ct_tensor_t *t);
CT_API int64_t ct_tensor_dim(const ct_tensor_t *t, int i);
CT_API int64_t ct_tensor_numel(const ct_tensor_t *t);
CT_API size_t ct_tensor_nbytes(const ct_tensor_t *t);
/* Pointer to the elements; NULL when numel is 0. Owned by the storage. */
CT_API void *ct_tensor_data(ct_tensor_t *t);
CT_API const void *ct_tensor_cdata(const ct_tensor_t *t);
/* Number of tensors sharing t's storage (0 when it has none). */
CT_API int ct_tensor_storage_refs(const ct_tensor_t *t);

/* Gives t dtype dt and the shape. Same dtype and element count: the
 * contents are kept (in place when t is the storage's only holder, else
 * copied on write so other holders keep theirs). Otherwise t gets new
 * zeroed storage. On failure t is unchanged.
 * Errors: CT_ESHAPE, CT_EOVERFLOW, CT_ENOMEM. */
CT_API int ct_tensor_resize(ct_tensor_t *t, ct_dtype_t dt, int ndim,
                            const int64_t *dims, ct_status_t *st);
/* Changes the shape without touching data; the element count must stay
 * the same (CT_ESHAPE otherwise). */
CT_API int ct_tensor_reshape(ct_tensor_t *t, int ndim, const int64_t *dims,
                             ct_status_t *st);
/* Deep copy of src into dst (dtype, shape, data; strings duplicated).
 * dst must be a different tensor. On failure dst is unchanged. */
CT_API int ct_tensor_copy(ct_tensor_t *dst, const ct_tensor_t *src,
                          ct_status_t *st);
/* Makes dst share src's storage (refcount +1), dtype and shape. */
CT_API void ct_tensor_share(ct_tensor_t *dst, const ct_tensor_t *src);
/* Sets string element i to a copy of the bytes. CT_ETYPE when t is not a
 * string tensor; CT_EINVAL when i is out of range; CT_ENOMEM. */
CT_API int ct_tensor_set_string(ct_tensor_t *t, int64_t i, const char *s,
                                size_t len, ct_status_t *st);
/* Formats the shape as "[2, 3]" into buf (always NUL-terminated). */
CT_API const char *ct_tensor_shape_str(const ct_tensor_t *t, char *buf,
                                       size_t size);
/* Formats a dims array the same way. */
CT_API const char *ct_dims_str(int ndim, const int64_t *dims, char *buf,
                               size_t size);
/* Product of dims with overflow check; CT_EOVERFLOW or CT_ESHAPE (negative
 * dim) named in st. */
CT_API int ct_dims_numel(int ndim, const int64_t *dims, int64_t *out,
                         ct_status_t *st);

/* float16 <-> float32 conversion (round to nearest even). */
CT_API float ct_f16_to_f32(uint16_t h);
CT_API uint16_t ct_f32_to_f16(float f);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_TENSOR_H */
