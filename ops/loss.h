/* cortado internal: what the loss ops share (ops/loss.c: SquaredL2Distance,
 * AveragedLoss, LabelCrossEntropy; ops/softmax_with_loss.c:
 * SoftmaxWithLoss). Values are FLOAT or DOUBLE, read and written as double
 * through ct__loss_get/ct__loss_set; labels are INT32 or INT64. The
 * ct__loss_want_* checks fail the op (ct_op_fail) with the message the
 * loss ops have always given and return its code, CT_OK otherwise.
 */
#ifndef CT_OPS_LOSS_H
#define CT_OPS_LOSS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

/* Guards every log, as Caffe2's kLOG_THRESHOLD. */
#define CT__LOSS_LOG_THRESHOLD 1e-20

/* ---- element access (per element: inline) ---- */

static inline double ct__loss_get(const void *p, bool f64, int64_t i)
{
    return f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static inline void ct__loss_set(void *p, bool f64, int64_t i, double v)
{
    if (f64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* max(p, 1e-20): a probability safe to take the log of or divide by. */
static inline double ct__loss_clamp(double p)
{
    return p > CT__LOSS_LOG_THRESHOLD ? p : CT__LOSS_LOG_THRESHOLD;
}

/* Label i of an INT32 or INT64 tensor. */
static inline int64_t ct__loss_label(const ct_tensor_t *t, int64_t i)
{
    return t->dtype == CT_DTYPE_I64 ? CT_CDATA(t, int64_t)[i]
                                    : CT_CDATA(t, int32_t)[i];
}

/* The value of a 1-element tensor of either real dtype. */
static inline double ct__loss_scalar(const ct_tensor_t *t)
{
    return ct__loss_get(ct_tensor_cdata(t), t->dtype == CT_DTYPE_F64, 0);
}

/* ---- checks (ops/loss.c) ---- */

bool ct__loss_same_shape(const ct_tensor_t *a, const ct_tensor_t *b);
/* Input i is FLOAT or DOUBLE; CT_ENOTSUP otherwise. */
int ct__loss_want_real(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t);
/* Input i has dtype dt; CT_ETYPE otherwise. */
int ct__loss_want_dtype(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t,
                        ct_dtype_t dt);
/* Label input i holds n class indices in [0, d): CT_ETYPE for a dtype
 * other than INT32/INT64, CT_ESHAPE for a count other than n, CT_EINVAL
 * naming the first row whose label is out of range. */
int ct__loss_want_labels(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t,
                         int64_t n, int64_t d);
/* The dLoss input i holds one element; CT_ESHAPE otherwise. */
int ct__loss_want_scalar(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t);
/* t (called `what` in the message) holds n entries, one per row;
 * CT_ESHAPE otherwise. */
int ct__loss_want_rows(ct_op_ctx_t *ctx, const char *what, const ct_tensor_t *t,
                       int64_t n);

/* infer_cb of a gradient op whose only output is dX, shaped like input 0. */
int ct__loss_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                        ct_shape_t *out, ct_status_t *st);

#endif /* CT_OPS_LOSS_H */
