/* cortado internal: deep copies into an op output, shared by ops/copy.c
 * and ops/reshape.c. */
#ifndef CT_OPS_COPY_H
#define CT_OPS_COPY_H

#include "ops/op_impl.h"

/* Makes output out_idx of ctx's op a deep copy of src (dtype and data;
 * strings duplicated) with shape (ndim, dims), which must have src's
 * element count. The output must not be src itself (the in-place case is
 * the caller's). Storage comes from ct_op_output, so it is charged to the
 * engine budget and reused across runs when the size is unchanged; the
 * result never shares storage with src, so a later in-place op on either
 * cannot change the other. Errors (through ct_op_fail): CT_ENOMEM,
 * CT_EOVERFLOW, CT_ESHAPE. */
int ct__op_copy_to_output(ct_op_ctx_t *ctx, int out_idx, const ct_tensor_t *src,
                          int ndim, const int64_t *dims);

#endif /* CT_OPS_COPY_H */
