/* cortado internal: the output-shape rules every filler shares (Caffe2's
 * FillerOp), defined in ops/fill_shape.c and used by ops/fill.c and
 * ops/fill_random.c.
 *
 * Arguments: `shape` (ints), `extra_shape` (ints), `input_as_shape` (i).
 *   - No input: the output has shape `shape` (a 0-d scalar when absent).
 *     `extra_shape` and `input_as_shape` need an input (CT_EARG).
 *   - An input and input_as_shape = 0: the output takes the input's dims,
 *     then `extra_shape`. `shape` must not be given (CT_EARG).
 *   - An input and input_as_shape = 1: input 0 is a non-empty 1-D INT64
 *     (or INT32) tensor holding the dims, then `extra_shape` follows.
 * UniformFill and UniformIntFill may have 3 inputs (shape, min, max);
 * input 0 plays the same role.
 */
#ifndef CT_OPS_FILL_H
#define CT_OPS_FILL_H

#include "ops/op_impl.h"

struct ct__fill_shape {
    int n_shape; /* entries of `shape` */
    int n_extra; /* entries of `extra_shape` */
    bool input_as_shape;
    int64_t shape[CT_MAX_DIMS]; /* every entry >= 0 */
    int64_t extra[CT_MAX_DIMS]; /* every entry >= 0 */
};

/* The argument specs of the shape arguments, for a schema's list. `shape`
 * is checked by ct__fill_parse_shape (a scalar gets Caffe2's message). */
/* clang-format off */
#define CT__FILL_SHAPE_ARGS                                                   \
    {"shape", CT_ARG_ANY, false},                                             \
    {"extra_shape", CT_ARG_ANY, false},                                       \
    {"input_as_shape", CT_ARG_INT, false}
/* clang-format on */

/* Parses and validates the shape arguments of op into fs (at op creation).
 * Errors: CT_EARG naming the argument and the offending value. */
int ct__fill_parse_shape(const ct_op_t *op, struct ct__fill_shape *fs,
                         ct_status_t *st);

/* The output dims of one run into dims[CT_MAX_DIMS] and *ndim. Errors
 * (through ct_op_fail): CT_ETYPE / CT_ESHAPE for a bad shape input. */
int ct__fill_dims(ct_op_ctx_t *ctx, const struct ct__fill_shape *fs, int *ndim,
                  int64_t *dims);

/* Shape inference: out->dims from fs and in[0] (unknown when the shape
 * comes from an input's values); out->dtype = dt. */
void ct__fill_infer(const ct_op_t *op, const struct ct__fill_shape *fs,
                    ct_dtype_t dt, const ct_shape_t *in, ct_shape_t *out);

/* Reads a repeated integer argument into v[CT_MAX_DIMS] (for shapes):
 * CT_EARG when it is not a list of ints, has more than CT_MAX_DIMS
 * entries, or an entry is negative. */
int ct__fill_parse_dims_arg(const ct_op_t *op, const char *name, int64_t *v,
                            int *n, ct_status_t *st);

/* The name of the field a has set ("f", "ints", ...; "nothing" when
 * none), for messages. */
const char *ct__fill_arg_field(const Caffe2__Argument *a);

#endif /* CT_OPS_FILL_H */
