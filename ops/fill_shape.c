/* The output-shape rules every filler shares (Caffe2's FillerOp
 * constructor and RunOnDevice): the `shape`, `extra_shape` and
 * `input_as_shape` arguments and the optional shape input. The rules are
 * listed in ops/fill.h; ops/fill.c and ops/fill_random.c use them.
 *
 * Everything here is checked once at op creation where it can be (a
 * negative or scalar `shape`, contradictory arguments) and at run time
 * where it depends on the input (its dtype, rank and values).
 */
#include <string.h>

#include "ops/fill.h"
#include "ops/op_impl.h"

const char *ct__fill_arg_field(const Caffe2__Argument *a)
{
    if (a->has_f)
        return "f";
    if (a->has_i)
        return "i";
    if (a->has_s)
        return "s";
    if (a->n_floats > 0)
        return "floats";
    if (a->n_ints > 0)
        return "ints";
    if (a->n_strings > 0)
        return "strings";
    if (a->t != NULL || a->n_tensors > 0)
        return "tensor";
    if (a->n != NULL || a->n_nets > 0)
        return "net";
    return "nothing";
}

int ct__fill_parse_dims_arg(const ct_op_t *op, const char *name, int64_t *v,
                            int *n, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, name);
    size_t k;

    *n = 0;
    if (a == NULL)
        return CT_OK;
    if (a->has_i || a->has_f)
        return ct_status_setf(st, CT_EARG,
                              "Argument %s was a scalar, list expected", name);
    if (a->n_ints == 0 && strcmp(ct__fill_arg_field(a), "nothing") != 0)
        return ct_status_setf(st, CT_EARG,
                              "Argument %s must be a list of ints, got %s",
                              name, ct__fill_arg_field(a));
    if (a->n_ints > CT_MAX_DIMS)
        return ct_status_setf(st, CT_EARG,
                              "Argument %s has %zu entries; a tensor has at "
                              "most %d dims",
                              name, a->n_ints, CT_MAX_DIMS);
    for (k = 0; k < a->n_ints; k++) {
        if (a->ints[k] < 0)
            return ct_status_setf(st, CT_EARG,
                                  "Argument %s has a negative entry: "
                                  "%s[%zu] = %lld",
                                  name, name, k, (long long)a->ints[k]);
        v[k] = a->ints[k];
    }
    *n = (int)a->n_ints;
    return CT_OK;
}

int ct__fill_parse_shape(const ct_op_t *op, struct ct__fill_shape *fs,
                         ct_status_t *st)
{
    int64_t ias;
    int rc;

    rc = ct__fill_parse_dims_arg(op, "shape", fs->shape, &fs->n_shape, st);
    if (rc != CT_OK)
        return rc;
    rc =
        ct__fill_parse_dims_arg(op, "extra_shape", fs->extra, &fs->n_extra, st);
    if (rc != CT_OK)
        return rc;
    rc = ct__arg_int(op, "input_as_shape", 0, &ias, st);
    if (rc != CT_OK)
        return rc;
    fs->input_as_shape = ias != 0;
    if (op->n_in > 0) {
        if (fs->n_shape > 0)
            return ct_status_setf(st, CT_EARG,
                                  "Cannot set the shape argument and pass in "
                                  "an input at the same time");
    } else {
        if (fs->n_extra > 0)
            return ct_status_setf(st, CT_EARG,
                                  "Cannot set extra_shape when there is no "
                                  "input");
        if (fs->input_as_shape)
            return ct_status_setf(st, CT_EARG,
                                  "An input must be given if input_as_shape "
                                  "is true");
    }
    return CT_OK;
}

static int dims_from_values(ct_op_ctx_t *ctx, const ct_tensor_t *in,
                            int n_extra, int *ndim, int64_t *dims)
{
    const char *name = ct_op_input_name(ctx->op, 0);
    ct_dtype_t dt = ct_tensor_dtype(in);
    int64_t numel = ct_tensor_numel(in), k;
    char buf[160];

    if (dt != CT_DTYPE_I64 && dt != CT_DTYPE_I32)
        return ct_op_fail(ctx, CT_ETYPE,
                          "input_as_shape: input 0 \"%s\" must be an INT64 "
                          "or INT32 tensor of dims, got %s",
                          name, ct_dtype_name(dt));
    if (ct_tensor_ndim(in) != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "input_as_shape: input 0 \"%s\" must be 1-D, got "
                          "shape %s",
                          name, ct_tensor_shape_str(in, buf, sizeof(buf)));
    if (numel == 0)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "input_as_shape: input 0 \"%s\" is empty; it must "
                          "hold at least one dim",
                          name);
    if (numel + n_extra > CT_MAX_DIMS)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "input_as_shape: input 0 \"%s\" gives rank %lld "
                          "(with extra_shape); at most %d",
                          name, (long long)(numel + n_extra), CT_MAX_DIMS);
    for (k = 0; k < numel; k++) {
        int64_t d = dt == CT_DTYPE_I64 ? CT_CDATA(in, int64_t)[k]
                                       : CT_CDATA(in, int32_t)[k];
        if (d < 0)
            return ct_op_fail(ctx, CT_ESHAPE,
                              "input_as_shape: input 0 \"%s\" has a negative "
                              "dim %lld at index %lld",
                              name, (long long)d, (long long)k);
        dims[k] = d;
    }
    *ndim = (int)numel;
    return CT_OK;
}

int ct__fill_dims(ct_op_ctx_t *ctx, const struct ct__fill_shape *fs, int *ndim,
                  int64_t *dims)
{
    const ct_tensor_t *in;
    int n = 0, rc;

    if (ctx->op->n_in == 0) {
        *ndim = fs->n_shape;
        if (fs->n_shape > 0)
            memcpy(dims, fs->shape, (size_t)fs->n_shape * sizeof(int64_t));
        return CT_OK;
    }
    rc = ct_op_input(ctx, 0, &in);
    if (rc != CT_OK)
        return rc;
    if (fs->input_as_shape) {
        rc = dims_from_values(ctx, in, fs->n_extra, &n, dims);
        if (rc != CT_OK)
            return rc;
    } else {
        n = ct_tensor_ndim(in);
        if (n + fs->n_extra > CT_MAX_DIMS)
            return ct_op_fail(ctx, CT_ESHAPE,
                              "input 0 \"%s\" of rank %d plus %d extra_shape "
                              "dims exceeds rank %d",
                              ct_op_input_name(ctx->op, 0), n, fs->n_extra,
                              CT_MAX_DIMS);
        if (n > 0)
            memcpy(dims, ct_tensor_dims(in), (size_t)n * sizeof(int64_t));
    }
    if (fs->n_extra > 0)
        memcpy(dims + n, fs->extra, (size_t)fs->n_extra * sizeof(int64_t));
    *ndim = n + fs->n_extra;
    return CT_OK;
}

void ct__fill_infer(const ct_op_t *op, const struct ct__fill_shape *fs,
                    ct_dtype_t dt, const ct_shape_t *in, ct_shape_t *out)
{
    out[0].dtype = dt;
    out[0].ndim = -1;
    if (op->n_in == 0) {
        out[0].ndim = fs->n_shape;
        if (fs->n_shape > 0)
            memcpy(out[0].dims, fs->shape,
                   (size_t)fs->n_shape * sizeof(int64_t));
        return;
    }
    if (fs->input_as_shape || in[0].ndim < 0 ||
        in[0].ndim + fs->n_extra > CT_MAX_DIMS)
        return;
    if (in[0].ndim > 0)
        memcpy(out[0].dims, in[0].dims, (size_t)in[0].ndim * sizeof(int64_t));
    if (fs->n_extra > 0)
        memcpy(out[0].dims + in[0].ndim, fs->extra,
               (size_t)fs->n_extra * sizeof(int64_t));
    out[0].ndim = in[0].ndim + fs->n_extra;
}
