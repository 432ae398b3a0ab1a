/* cortado internal: the broadcasting shape helpers of ops/elementwise.c
 * (Add, Sub, Mul, Div), shared with ops/compare.c (EQ ... GE). */
#ifndef CT_OPS_ELEMENTWISE_H
#define CT_OPS_ELEMENTWISE_H

#include <stdint.h>

#include "ops/op_impl.h"

/* Collapsed iteration plan: output dims and element strides of A and B
 * (0 where broadcast). C is dense. ndim >= 1; the innermost strides are 0
 * or 1 and never both 0. */
struct ct__bcast {
    int ndim;
    int64_t dims[CT_MAX_DIMS];
    int64_t sa[CT_MAX_DIMS], sb[CT_MAX_DIMS];
};

/* Caffe2's ComputeBinaryBroadcastForwardDims (numpy rule: shapes aligned
 * at the right, each pair of dims equal or one of them 1, a 0 against a 1
 * gives 0): the output rank and dims of A op B into *nc and c. A mismatch
 * is CT_ESHAPE, "cannot broadcast A [..] with B [..]: dim i of A is x,
 * dim j of B is y" naming the outermost mismatching pair, in st. */
int ct__bcast_numpy_dims(int na, const int64_t *a, int nb, const int64_t *b,
                         int *nc, int64_t *c, ct_status_t *st);

/* Builds the collapsed plan for A and B aligned at the right (numpy
 * rule); the shapes must be compatible. Legacy broadcasting passes A as
 * [pre, n, post] and B as [n, 1], or a scalar B as [numel(A)] and [1]. */
void ct__bcast_plan_build(int na, const int64_t *a, int nb, const int64_t *b,
                          struct ct__bcast *p);

#endif /* CT_OPS_ELEMENTWISE_H */
