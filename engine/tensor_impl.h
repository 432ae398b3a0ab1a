/* cortado internal: tensor and storage layout, for kernels and the
 * engine. Only ops/, engine/, storage/ and white-box tests include it. */
#ifndef CT_ENGINE_TENSOR_IMPL_H
#define CT_ENGINE_TENSOR_IMPL_H

#include <stdatomic.h>

#include "cortado/tensor.h"

/* Refcounted element storage. Immutable size and dtype; the data may be
 * written by whoever holds the only reference (or by an op that owns the
 * output blob during a run). */
struct ct__storage {
    _Atomic int refs; /* atomic: acq_rel on drop so the freeing thread
                         sees every write made through other refs */
    ct_dtype_t dtype;
    size_t nbytes; /* charged to eng's budget */
    int64_t numel;
    void *data; /* 64-byte aligned; NULL when nbytes is 0 */
    ct_engine_t *eng;
};

struct ct_tensor_s {
    ct_dtype_t dtype;
    int ndim;
    int64_t numel;
    int64_t dims[CT_MAX_DIMS];
    struct ct__storage *storage; /* NULL until first resize */
    ct_engine_t *eng;
};

/* Typed data pointer shorthand for kernels: CT_DATA(t, float). NULL when
 * the tensor has no elements, so loops over numel never dereference it. */
#define CT_DATA(t, type) ((type *)ct_tensor_data(t))
#define CT_CDATA(t, type) ((const type *)ct_tensor_cdata(t))

#endif /* CT_ENGINE_TENSOR_IMPL_H */
