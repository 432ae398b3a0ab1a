/* Reshape, Flatten and FlattenToVec (Caffe2's reshape_op.h, flatten_op.h
 * and FlattenToVecOp in utility_ops.h). All three keep the data in
 * row-major order and change only the shape; every dtype, strings
 * included, is supported.
 *
 * Storage: a non-in-place result is a deep copy (ops/copy.h), as in
 * Caffe2. Sharing the input's storage would be cheaper, but a later
 * in-place op on either blob would then silently rewrite the other.
 *
 * Reshape
 *   inputs   0: data; 1 (optional): new shape, a 1-D INT64 or INT32 tensor.
 *   outputs  0: reshaped; 1: old_shape, the input's dims as a 1-D tensor
 *            (INT64 with the `shape` argument; with a shape input, that
 *            input's dtype, as Caffe2 does).
 *   args     shape (ints): the new shape; exactly one of the argument and
 *            input 1 must be given.
 *   rules    An entry 0 copies the input's dim at that index (Caffe1
 *            syntax; only when the input has elements, otherwise 0 is a
 *            literal 0 dim); one entry -1 is inferred from the element
 *            count. Errors (CT_EARG for the argument at op creation,
 *            CT_ESHAPE at run): more than one -1, an entry below -1, a 0
 *            at an index beyond the input's rank, an element count that
 *            does not match, a shape input that is not 1-D (CT_ETYPE when
 *            it is not INT32/INT64).
 *   in place input 0 = output 0 is allowed: only the dims change.
 *   Differs from Caffe2: reshaping an empty input to a shape with
 *   elements is CT_ESHAPE (Caffe2 produced uninitialised elements), and
 *   a 0 beyond the input's rank gets its own message instead of "can not
 *   reshape a non-zero size tensor to zero size".
 * Flatten: out is 2-D [prod(dims[:axis]), prod(dims[axis:])]; `axis` (i,
 *   default 1) must lie in [0, rank]. Not in place (as in Caffe2).
 * FlattenToVec: out is 1-D [numel]; the input needs rank >= 1.
 * ResizeLike (Caffe2's, utility_ops.h): out = input 0's data with input
 *   1's shape; the element counts must match (CT_ESHAPE). Input 0 ->
 *   output 0 may be in place.
 *
 * Gradients (Caffe2's makers): Reshape's is Reshape(dY, old_shape) ->
 * (dX, "_<dX>_dims") without the forward arguments; Flatten's and
 * FlattenToVec's are ResizeLike(dY, X) -> dX.
 */
#include <stdio.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/copy.h"
#include "ops/op_impl.h"

/* ---- Reshape ---- */

struct reshape_state {
    bool has_shape_arg;
    int n_shape;
    int64_t shape[CT_MAX_DIMS]; /* entries >= -1, at most one -1 */
};

/* Checks the raw entries of a new shape: each >= -1, one -1 at most.
 * `what` names the source in messages ("Argument shape", "input 1 ..."). */
static int check_entries(const char *what, int n, const int64_t *v, int code,
                         ct_status_t *st)
{
    int i, unknown = -1;

    for (i = 0; i < n; i++) {
        if (v[i] < -1)
            return ct_status_setf(st, code,
                                  "%s: entry %d is %lld; entries are >= 0, "
                                  "or -1 for the one inferred dim",
                                  what, i, (long long)v[i]);
        if (v[i] == -1) {
            if (unknown >= 0)
                return ct_status_setf(st, code,
                                      "%s has more than one missing "
                                      "dimension (-1 at %d and %d)",
                                      what, unknown, i);
            unknown = i;
        }
    }
    return CT_OK;
}

/* Resolves 0 and -1 entries of shape[0..n) against the input's dims. */
static int resolve_shape(int in_ndim, const int64_t *in_dims, int n,
                         int64_t *shape, ct_status_t *st)
{
    int64_t total, size = 1;
    int i, unknown = -1, rc;
    char a[160], b[160];

    rc = ct_dims_numel(in_ndim, in_dims, &total, st);
    if (rc != CT_OK)
        return rc;
    ct_dims_str(n, shape, b, sizeof(b));
    for (i = 0; i < n; i++) {
        if (shape[i] == 0 && total != 0) {
            if (i >= in_ndim)
                return ct_status_setf(
                    st, CT_ESHAPE,
                    "new shape %s: entry %d is 0 (copy "
                    "the input's dim), but the input %s "
                    "has rank %d",
                    b, i, ct_dims_str(in_ndim, in_dims, a, sizeof(a)), in_ndim);
            shape[i] = in_dims[i];
        }
        if (shape[i] == -1) {
            unknown = i;
        } else if (shape[i] != 0 && size > INT64_MAX / shape[i]) {
            return ct_status_setf(st, CT_ESHAPE,
                                  "new shape %s overflows int64 elements", b);
        } else {
            size *= shape[i];
        }
    }
    ct_dims_str(in_ndim, in_dims, a, sizeof(a));
    if (total == 0) {
        if (unknown >= 0)
            shape[unknown] = 0;
        else if (size != 0)
            return ct_status_setf(st, CT_ESHAPE,
                                  "cannot reshape the empty input %s to %s "
                                  "(%lld elements)",
                                  a, b, (long long)size);
        return CT_OK;
    }
    if (unknown >= 0) {
        if (size == 0 || total % size != 0)
            return ct_status_setf(st, CT_ESHAPE,
                                  "new shape %s does not agree with the "
                                  "input %s: %lld elements are not a "
                                  "multiple of %lld",
                                  b, a, (long long)total, (long long)size);
        shape[unknown] = total / size;
    } else if (size != total) {
        return ct_status_setf(st, CT_ESHAPE,
                              "new shape %s does not agree with the input "
                              "%s: %lld != %lld elements",
                              b, a, (long long)size, (long long)total);
    }
    return CT_OK;
}

static int reshape_init(ct_op_t *op, ct_status_t *st)
{
    struct reshape_state *s = op->state;
    const Caffe2__Argument *a = ct__arg_find(op, "shape");
    size_t k;

    if (op->n_out == 2 && op->out[0] == op->out[1])
        return ct_status_setf(st, CT_ESCHEMA,
                              "outputs 0 and 1 are the same blob \"%s\"",
                              ct_op_output_name(op, 0));
    s->has_shape_arg = a != NULL;
    if (op->n_in == 2 && a != NULL)
        return ct_status_setf(st, CT_EARG,
                              "New shape is specified by the input blob, do "
                              "not pass in the argument `shape`.");
    if (op->n_in == 1 && a == NULL)
        return ct_status_setf(st, CT_EARG, "Argument `shape` is missing.");
    if (a == NULL)
        return CT_OK;
    if (a->has_i || a->has_f || a->has_s || a->n_floats > 0 || a->n_strings > 0)
        return ct_status_setf(st, CT_EARG,
                              "Argument shape must be a list of ints");
    if (a->n_ints > CT_MAX_DIMS)
        return ct_status_setf(st, CT_EARG,
                              "Argument shape has %zu entries; a tensor has "
                              "at most %d dims",
                              a->n_ints, CT_MAX_DIMS);
    for (k = 0; k < a->n_ints; k++)
        s->shape[k] = a->ints[k];
    s->n_shape = (int)a->n_ints;
    return check_entries("Argument `shape`", s->n_shape, s->shape, CT_EARG, st);
}

/* Copies the new shape of one run into shape[] and its source dtype. */
static int run_new_shape(ct_op_ctx_t *ctx, const struct reshape_state *s,
                         int *n, int64_t *shape, ct_dtype_t *dt)
{
    const char *name;
    const ct_tensor_t *t;
    ct_status_t st;
    char what[200], buf[160];
    int64_t k, numel;
    int rc;

    if (s->has_shape_arg) {
        *n = s->n_shape;
        if (s->n_shape > 0)
            memcpy(shape, s->shape, (size_t)s->n_shape * sizeof(int64_t));
        *dt = CT_DTYPE_I64;
        return CT_OK;
    }
    rc = ct_op_input(ctx, 1, &t);
    if (rc != CT_OK)
        return rc;
    name = ct_op_input_name(ctx->op, 1);
    *dt = ct_tensor_dtype(t);
    if (*dt != CT_DTYPE_I64 && *dt != CT_DTYPE_I32)
        return ct_op_fail(ctx, CT_ETYPE,
                          "new shape input 1 \"%s\" must be INT64 or INT32, "
                          "got %s",
                          name, ct_dtype_name(*dt));
    if (ct_tensor_ndim(t) != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "Shape should be 1-D: input 1 \"%s\" has shape %s",
                          name, ct_tensor_shape_str(t, buf, sizeof(buf)));
    numel = ct_tensor_numel(t);
    if (numel > CT_MAX_DIMS)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "new shape input 1 \"%s\" has %lld entries; a "
                          "tensor has at most %d dims",
                          name, (long long)numel, CT_MAX_DIMS);
    for (k = 0; k < numel; k++)
        shape[k] = *dt == CT_DTYPE_I64 ? CT_CDATA(t, int64_t)[k]
                                       : CT_CDATA(t, int32_t)[k];
    *n = (int)numel;
    snprintf(what, sizeof(what), "new shape input 1 \"%s\"", name);
    rc = check_entries(what, *n, shape, CT_ESHAPE, &st);
    return rc == CT_OK ? CT_OK : ct_op_fail(ctx, rc, "%s", st.msg);
}

static int write_old_shape(ct_op_ctx_t *ctx, ct_dtype_t dt, int ndim,
                           const int64_t *dims)
{
    int64_t n = ndim;
    ct_tensor_t *t;
    int i, rc;

    for (i = 0; dt == CT_DTYPE_I32 && i < ndim; i++) {
        if (dims[i] > INT32_MAX)
            return ct_op_fail(ctx, CT_EOVERFLOW,
                              "input dim %d (%lld) does not fit the INT32 "
                              "old_shape output",
                              i, (long long)dims[i]);
    }
    rc = ct_op_output(ctx, 1, dt, 1, &n, &t);
    if (rc != CT_OK)
        return rc;
    for (i = 0; i < ndim; i++) {
        if (dt == CT_DTYPE_I64)
            CT_DATA(t, int64_t)[i] = dims[i];
        else
            CT_DATA(t, int32_t)[i] = (int32_t)dims[i];
    }
    return CT_OK;
}

static int reshape_run(ct_op_ctx_t *ctx)
{
    const struct reshape_state *s = ctx->op->state;
    int64_t shape[CT_MAX_DIMS], old_dims[CT_MAX_DIMS];
    const ct_tensor_t *in;
    ct_tensor_t *out;
    ct_dtype_t old_dt;
    ct_status_t st;
    int n = 0, old_ndim, rc;

    rc = ct_op_input(ctx, 0, &in);
    if (rc == CT_OK)
        rc = run_new_shape(ctx, s, &n, shape, &old_dt);
    if (rc != CT_OK)
        return rc;
    old_ndim = ct_tensor_ndim(in);
    if (old_ndim > 0)
        memcpy(old_dims, ct_tensor_dims(in),
               (size_t)old_ndim * sizeof(int64_t));
    rc = resolve_shape(old_ndim, old_dims, n, shape, &st);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", st.msg);
    if (ctx->op->in[0] == ctx->op->out[0]) {
        /* In place: the output is the input; only its dims change. */
        rc = ct_op_output_tensor(ctx, 0, &out);
        if (rc != CT_OK)
            return rc;
        rc = ct_tensor_reshape(out, n, shape, &st);
        if (rc != CT_OK)
            return ct_op_fail(ctx, rc, "%s", st.msg);
    } else {
        rc = ct__op_copy_to_output(ctx, 0, in, n, shape);
        if (rc != CT_OK)
            return rc;
    }
    return write_old_shape(ctx, old_dt, old_ndim, old_dims);
}

static int reshape_infer(const ct_op_t *op, const ct_shape_t *in,
                         ct_shape_t *out, ct_status_t *st)
{
    const struct reshape_state *s = op->state;
    int64_t shape[CT_MAX_DIMS];

    int rc;

    out[0].dtype = in[0].dtype;
    out[1].dtype = s->has_shape_arg ? CT_DTYPE_I64 : in[1].dtype;
    if (in[0].ndim < 0)
        return CT_OK;
    out[1].ndim = 1;
    out[1].dims[0] = in[0].ndim;
    if (!s->has_shape_arg)
        return CT_OK;
    if (s->n_shape > 0)
        memcpy(shape, s->shape, (size_t)s->n_shape * sizeof(int64_t));
    rc = resolve_shape(in[0].ndim, in[0].dims, s->n_shape, shape, st);
    if (rc != CT_OK)
        return rc;
    out[0].ndim = s->n_shape;
    if (s->n_shape > 0)
        memcpy(out[0].dims, shape, (size_t)s->n_shape * sizeof(int64_t));
    return CT_OK;
}

/* ---- Flatten, FlattenToVec ---- */

struct flatten_state {
    int32_t axis;
    bool to_vec; /* FlattenToVec: one dim */
};

static int flatten_init(ct_op_t *op, ct_status_t *st)
{
    struct flatten_state *s = op->state;
    int rc = ct__arg_int32(op, "axis", 1, &s->axis, st);

    if (rc == CT_OK && s->axis < 0)
        return ct_status_setf(st, CT_EARG,
                              "Argument axis=%d must be >= 0 (and <= the "
                              "input's rank)",
                              (int)s->axis);
    return rc;
}

static int flatten_to_vec_init(ct_op_t *op, ct_status_t *st)
{
    struct flatten_state *s = op->state;

    s->to_vec = true;
    return CT_OK;
}

/* The output dims for an input of the given rank and dims. */
static int flatten_dims(const struct flatten_state *s, int ndim,
                        const int64_t *dims, int *n_out, int64_t *out,
                        ct_status_t *st)
{
    char buf[160];
    int rc;

    if (s->to_vec) {
        if (ndim < 1)
            return ct_status_setf(st, CT_ESHAPE,
                                  "The rank of the tensor must be >= 1: "
                                  "input %s is 0-d",
                                  ct_dims_str(ndim, dims, buf, sizeof(buf)));
        *n_out = 1;
        return ct_dims_numel(ndim, dims, &out[0], st);
    }
    if (ndim < s->axis)
        return ct_status_setf(st, CT_ESHAPE,
                              "The rank of the tensor must be >= axis: "
                              "input %s has rank %d, axis=%d",
                              ct_dims_str(ndim, dims, buf, sizeof(buf)), ndim,
                              (int)s->axis);
    *n_out = 2;
    rc = ct_dims_numel(s->axis, dims, &out[0], st);
    if (rc == CT_OK)
        rc = ct_dims_numel(ndim - s->axis, dims + s->axis, &out[1], st);
    return rc;
}

static int flatten_run(ct_op_ctx_t *ctx)
{
    const struct flatten_state *s = ctx->op->state;
    const ct_tensor_t *in;
    int64_t dims[2];
    ct_status_t st;
    int n, rc;

    rc = ct_op_input(ctx, 0, &in);
    if (rc != CT_OK)
        return rc;
    rc = flatten_dims(s, ct_tensor_ndim(in), ct_tensor_dims(in), &n, dims, &st);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", st.msg);
    return ct__op_copy_to_output(ctx, 0, in, n, dims);
}

static int flatten_infer(const ct_op_t *op, const ct_shape_t *in,
                         ct_shape_t *out, ct_status_t *st)
{
    const struct flatten_state *s = op->state;
    int rc;

    out[0].dtype = in[0].dtype;
    if (in[0].ndim < 0)
        return CT_OK;
    rc = flatten_dims(s, in[0].ndim, in[0].dims, &out[0].ndim, out[0].dims, st);
    if (rc != CT_OK)
        out[0].ndim = -1;
    return rc;
}

/* ---- ResizeLike ---- */

static int resize_like_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *in, *like;
    ct_tensor_t *out;
    ct_status_t st;
    char s1[128], s2[128];
    int rc;

    if ((rc = ct_op_input(ctx, 0, &in)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &like)) != CT_OK)
        return rc;
    if (ct_tensor_numel(in) != ct_tensor_numel(like))
        return ct_op_fail(ctx, CT_ESHAPE,
                          "input 0 %s has %lld elements but input 1 %s has "
                          "%lld; ResizeLike keeps the element count",
                          ct_tensor_shape_str(in, s1, sizeof(s1)),
                          (long long)ct_tensor_numel(in),
                          ct_tensor_shape_str(like, s2, sizeof(s2)),
                          (long long)ct_tensor_numel(like));
    if (ctx->op->in[0] != ctx->op->out[0])
        return ct__op_copy_to_output(ctx, 0, in, ct_tensor_ndim(like),
                                     ct_tensor_dims(like));
    rc = ct_op_output_tensor(ctx, 0, &out);
    if (rc != CT_OK)
        return rc;
    ct_status_clear(&st);
    rc =
        ct_tensor_reshape(out, ct_tensor_ndim(like), ct_tensor_dims(like), &st);
    return rc == CT_OK ? CT_OK : ct_op_fail(ctx, rc, "%s", st.msg);
}

static int resize_like_infer(const ct_op_t *op, const ct_shape_t *in,
                             ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[1];
    out[0].dtype = in[0].dtype;
    return CT_OK;
}

/* ---- gradient makers ---- */

/* Reshape(dY, old_shape) -> (dX, "_<dX>_dims"), no forward arguments. */
static int reshape_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *in[2], *out[2];
    char tmp[512];

    in[0] = ct__grad_out(g, 0);
    if (in[0] == NULL)
        return ct__grad_none(g, st); /* only old_shape has a gradient */
    in[1] = ct__grad_fwd_out(g, 1);
    out[0] = ct__grad_in(g, 0);
    if (snprintf(tmp, sizeof(tmp), "_%s_dims", out[0]) >= (int)sizeof(tmp))
        return ct_status_setf(st, CT_ENOTSUP,
                              "gradient blob name \"%s\" is too long", out[0]);
    out[1] = tmp;
    return ct__grad_emit(g, "Reshape", in, 2, out, 2, CT__GRAD_NO_ARGS, NULL,
                         st);
}

/* ResizeLike(dY, X) -> dX; X only gives the shape. */
static int flatten_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *in[2], *out[1];

    in[0] = ct__grad_out(g, 0);
    in[1] = g->def->input[0];
    out[0] = ct__grad_in(g, 0);
    return ct__grad_emit(g, "ResizeLike", in, 2, out, 1, CT__GRAD_NO_ARGS, NULL,
                         st);
}

/* ---- schemas ---- */

static const struct ct_arg_spec reshape_args[] = {
    {"shape", CT_ARG_ANY, false}, /* ints; checked by reshape_init */
    {NULL, CT_ARG_ANY, false},
};

static const struct ct_arg_spec flatten_args[] = {
    {"axis", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_reshape = {
    .name = "Reshape",
    .min_inputs = 1,
    .max_inputs = 2,
    .min_outputs = 2,
    .max_outputs = 2,
    .inplace_cb = ct__inplace_0_0,
    .args = reshape_args,
    .state_size = sizeof(struct reshape_state),
    .init_cb = reshape_init,
    .infer_cb = reshape_infer,
    .run_cb = reshape_run,
    .grad_cb = reshape_grad_make,
    .doc = "New shape (0 copies a dim, -1 inferred); also the old shape.",
};

const struct ct_op_schema ct__op_flatten = {
    .name = "Flatten",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = flatten_args,
    .state_size = sizeof(struct flatten_state),
    .init_cb = flatten_init,
    .infer_cb = flatten_infer,
    .run_cb = flatten_run,
    .grad_cb = flatten_grad_make,
    .doc = "2-D [prod(dims[:axis]), prod(dims[axis:])].",
};

const struct ct_op_schema ct__op_flatten_to_vec = {
    .name = "FlattenToVec",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .state_size = sizeof(struct flatten_state),
    .init_cb = flatten_to_vec_init,
    .infer_cb = flatten_infer,
    .run_cb = flatten_run,
    .grad_cb = flatten_grad_make,
    .doc = "1-D [numel].",
};

const struct ct_op_schema ct__op_resize_like = {
    .name = "ResizeLike",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .inplace_cb = ct__inplace_0_0,
    .infer_cb = resize_like_infer,
    .run_cb = resize_like_run,
    .doc = "Input 0's data with input 1's shape.",
};
