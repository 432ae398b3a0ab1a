/* Concat and Split along one axis.
 *
 * Concat: Y = the inputs laid side by side along `axis`; every other dim
 * must match (and so must the rank and dtype). With add_axis != 0 a new
 * axis of length n_inputs is inserted at `axis` instead (every input has
 * the same shape; `axis` may then equal the rank). Outputs: Y and,
 * optionally, split_info, INT32 [n_inputs], each input's extent along the
 * axis (1 with add_axis), which Split takes back as its second input.
 * Split: the inverse. X is cut along `axis` into n_outputs pieces whose
 * extents come from the INT32 second input, else the `split` argument
 * (ints), else equal parts (the extent must then divide evenly). With
 * add_axis != 0, X's extent must equal n_outputs and each piece drops
 * the axis (the inverse of Concat's add_axis).
 * Attrs: axis (int; negative counts from the end) or order ("NCHW" gives
 * axis 1, "NHWC" axis 3), never both; without either, axis is 1. add_axis
 * (int, 0) applies only with axis, as in Caffe2. split (ints).
 * Dtypes: any, strings included (copied element by element); every
 * element is copied as bytes otherwise. No in-place.
 * Differences from Caffe2: Concat accepts one output (Caffe2's schema
 * wants exactly two); negative split extents are CT_EARG (Caffe2 does
 * not check).
 *
 * Gradient makers (Caffe2's GetConcatGradient / GetSplitGradient), with
 * the forward op's arguments: Concat's gradient is Split(dY, split_info)
 * into the inputs' gradients (Concat needs its split_info output for it);
 * Split's is Concat of every output's gradient into dX and
 * "_<dX>_dims" (every output must have a gradient).
 *
 * Both kernels copy rows: the tensor is viewed as [before, extent * after]
 * with `before` the product of the dims ahead of the axis, and each piece
 * moves `before` rows of its extent * after elements.
 */
#include <stdio.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

struct cs_state {
    int32_t axis;
    bool add_axis;
    const int64_t *split; /* Split's `split` argument, borrowed */
    size_t n_split;
};

/* ---- shared ---- */

static int cs_parse_axis(ct_op_t *op, struct cs_state *s, ct_status_t *st)
{
    const char *order;
    size_t order_len;
    int64_t add_axis = 0;
    int rc;

    if (ct__arg_has(op, "axis") && ct__arg_has(op, "order"))
        return ct_status_setf(st, CT_EARG,
                              "You shouldn't specify both the dim to %s "
                              "(axis), and the order in the case of 4-D "
                              "images (order).",
                              op->schema->name[0] == 'C' ? "concat" : "split");
    if (ct__arg_has(op, "axis")) {
        if ((rc = ct__arg_int32(op, "axis", -1, &s->axis, st)) != CT_OK ||
            (rc = ct__arg_int(op, "add_axis", 0, &add_axis, st)) != CT_OK)
            return rc;
        s->add_axis = add_axis != 0;
        return CT_OK;
    }
    if ((rc = ct__arg_string(op, "order", "NCHW", &order, &order_len, st)) !=
        CT_OK)
        return rc;
    if (order_len == 4 && memcmp(order, "NCHW", 4) == 0)
        s->axis = 1;
    else if (order_len == 4 && memcmp(order, "NHWC", 4) == 0)
        s->axis = 3;
    else
        return ct_status_setf(st, CT_EARG, "Unsupported storage order: %.*s",
                              (int)order_len, order);
    return CT_OK;
}

/* Canonical axis for rank nd (nd + 1 with add_axis for Concat). */
static int cs_axis(const struct cs_state *s, int nd, int *out, const char *what,
                   int nx, const int64_t *dx, ct_status_t *st)
{
    char buf[128];

    if (s->axis < -nd || s->axis >= nd)
        return ct_status_setf(
            st, CT_ESHAPE, "axis %d is out of range for %s %s (%d dims%s)",
            (int)s->axis, what, ct_dims_str(nx, dx, buf, sizeof(buf)), nx,
            nd != nx ? " + the added axis" : "");
    *out = s->axis < 0 ? s->axis + nd : s->axis;
    return CT_OK;
}

static int64_t dims_prod(const int64_t *d, int lo, int hi)
{
    int64_t p = 1;
    int i;

    for (i = lo; i < hi; i++)
        p *= d[i];
    return p;
}

/* Copies `rows` rows of `len` elements from src (row stride src_ld) to dst
 * (row stride dst_ld); strides and lengths in elements of size es. String
 * tensors copy element by element through the tensor API. */
static void cs_copy_rows(char *dst, int64_t dst_ld, const char *src,
                         int64_t src_ld, int64_t rows, int64_t len, size_t es)
{
    int64_t r;

    if (len == 0)
        return;
    if (dst_ld == len && src_ld == len) {
        memcpy(dst, src, (size_t)(rows * len) * es);
        return;
    }
    for (r = 0; r < rows; r++)
        memcpy(dst + (size_t)(r * dst_ld) * es, src + (size_t)(r * src_ld) * es,
               (size_t)len * es);
}

/* String elements cannot be memcpy'd (each owns its bytes). */
static int cs_copy_strings(ct_op_ctx_t *ctx, ct_tensor_t *dst, int64_t dst_off,
                           int64_t dst_ld, const ct_tensor_t *src,
                           int64_t src_off, int64_t src_ld, int64_t rows,
                           int64_t len)
{
    const ct_str_t *s = ct_tensor_cdata(src);
    int64_t r, k;
    int rc;

    for (r = 0; r < rows; r++)
        for (k = 0; k < len; k++) {
            const ct_str_t *e = &s[src_off + r * src_ld + k];
            rc = ct_tensor_set_string(dst, dst_off + r * dst_ld + k,
                                      e->data != NULL ? e->data : "", e->len,
                                      ctx->status);
            if (rc != CT_OK)
                return rc;
        }
    return CT_OK;
}

/* ---- Concat ---- */

/* The inputs of a Concat: shapes at inference, tensors when running
 * (already checked to be tensors). Reading them through this avoids
 * copying n shapes at run time. */
struct cs_inputs {
    const ct_shape_t *shapes; /* NULL: read op's input tensors */
    const ct_op_t *op;
};

static void cs_input(const struct cs_inputs *in, int i, ct_dtype_t *dt, int *nd,
                     const int64_t **d)
{
    const ct_tensor_t *t;

    if (in->shapes != NULL) {
        *dt = in->shapes[i].dtype;
        *nd = in->shapes[i].ndim;
        *d = in->shapes[i].dims;
        return;
    }
    t = ct_blob_get_tensor(in->op->in[i]);
    *dt = t->dtype;
    *nd = t->ndim;
    *d = t->dims;
}

/* Checks the inputs and gives the output dims and the canonical axis. */
static int concat_dims(const struct cs_state *s, int n,
                       const struct cs_inputs *in, int *axis, int *ynd,
                       int64_t *yd, ct_status_t *st)
{
    char b0[128], b1[128];
    const int64_t *d0, *di;
    ct_dtype_t t0, ti;
    int i, k, rc, n0, ni, nd;
    int64_t total = 0, ext;

    cs_input(in, 0, &t0, &n0, &d0);
    nd = n0 + (s->add_axis ? 1 : 0);
    if (nd > CT_MAX_DIMS)
        return ct_status_setf(st, CT_ESHAPE,
                              "adding an axis to %s gives more than %d dims",
                              ct_dims_str(n0, d0, b0, sizeof(b0)), CT_MAX_DIMS);
    if ((rc = cs_axis(s, nd, axis, "input 0", n0, d0, st)) != CT_OK)
        return rc;
    for (i = 0; i < n; i++) {
        bool same;
        cs_input(in, i, &ti, &ni, &di);
        same = ni == n0;
        if (ti != t0)
            return ct_status_setf(st, CT_ETYPE,
                                  "All inputs must have the same type, "
                                  "expected: %s but got: %s for input: %d",
                                  ct_dtype_name(t0), ct_dtype_name(ti), i);
        for (k = 0; same && k < n0; k++)
            same = di[k] == d0[k] || (!s->add_axis && k == *axis);
        if (!same)
            return ct_status_setf(
                st, CT_ESHAPE,
                "input %d %s does not match input 0 %s: inputs may differ "
                "only along axis %d%s",
                i, ct_dims_str(ni, di, b1, sizeof(b1)),
                ct_dims_str(n0, d0, b0, sizeof(b0)), *axis,
                s->add_axis ? " (and not at all with add_axis)" : "");
        ext = s->add_axis ? 1 : di[*axis];
        if (ext > INT32_MAX || total > INT64_MAX - ext)
            return ct_status_setf(st, CT_EOVERFLOW,
                                  "the concatenated extent overflows at "
                                  "input %d",
                                  i);
        total += ext;
    }
    *ynd = nd;
    for (k = 0, i = 0; k < nd; k++) {
        if (k == *axis) {
            yd[k] = total;
            if (!s->add_axis)
                i++;
        } else {
            yd[k] = d0[i++];
        }
    }
    return CT_OK;
}

static int concat_run(ct_op_ctx_t *ctx)
{
    const struct cs_state *s = ctx->op->state;
    const int n = ctx->op->n_in;
    const struct cs_inputs in = {NULL, ctx->op};
    int64_t yd[CT_MAX_DIMS], before, after, off = 0;
    const ct_tensor_t *x;
    ct_tensor_t *y, *info;
    ct_status_t lst;
    ct_dtype_t dt;
    size_t es;
    int i, axis, ynd, rc;

    for (i = 0; i < n; i++)
        if ((rc = ct_op_input(ctx, i, &x)) != CT_OK)
            return rc;
    ct_status_clear(&lst);
    rc = concat_dims(s, n, &in, &axis, &ynd, yd, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    if (ctx->op->n_out > 1) {
        const int64_t nn = n;
        if ((rc = ct_op_output(ctx, 1, CT_DTYPE_I32, 1, &nn, &info)) != CT_OK)
            return rc;
        for (i = 0; i < n; i++) {
            ct_op_input(ctx, i, &x);
            CT_DATA(info, int32_t)
            [i] = s->add_axis ? 1 : (int32_t)x->dims[axis];
        }
    }
    ct_op_input(ctx, 0, &x);
    dt = x->dtype;
    if ((rc = ct_op_output(ctx, 0, dt, ynd, yd, &y)) != CT_OK)
        return rc;
    before = dims_prod(yd, 0, axis);
    after = dims_prod(yd, axis + 1, ynd);
    es = ct_dtype_size(dt);
    /* One range for now; ct_parallel_for will split the inputs. */
    for (i = 0; i < n && rc == CT_OK; i++) {
        int64_t len;
        ct_op_input(ctx, i, &x);
        len = (s->add_axis ? 1 : x->dims[axis]) * after;
        if (before > 0 && dt == CT_DTYPE_STRING)
            rc = cs_copy_strings(ctx, y, off, yd[axis] * after, x, 0, len,
                                 before, len);
        else if (before > 0)
            cs_copy_rows((char *)ct_tensor_data(y) + (size_t)off * es,
                         yd[axis] * after, ct_tensor_cdata(x), len, before, len,
                         es);
        off += len;
    }
    return rc;
}

static int concat_init(ct_op_t *op, ct_status_t *st)
{
    return cs_parse_axis(op, op->state, st);
}

static int concat_infer(const ct_op_t *op, const ct_shape_t *in,
                        ct_shape_t *out, ct_status_t *st)
{
    const struct cs_state *s = op->state;
    const struct cs_inputs inputs = {in, op};
    int i, axis;

    out[0].dtype = in[0].dtype;
    if (op->n_out > 1) {
        out[1].dtype = CT_DTYPE_I32;
        out[1].ndim = 1;
        out[1].dims[0] = op->n_in;
    }
    for (i = 0; i < op->n_in; i++)
        if (in[i].ndim < 0)
            return CT_OK;
    return concat_dims(s, op->n_in, &inputs, &axis, &out[0].ndim, out[0].dims,
                       st);
}

/* Bytes moved: every input element once. */
static double concat_cost(const ct_op_t *op, const ct_shape_t *in)
{
    double v = 0;
    int i, k;

    for (i = 0; i < op->n_in; i++) {
        double e = 1;
        if (in[i].ndim < 0)
            return 0;
        for (k = 0; k < in[i].ndim; k++)
            e *= (double)in[i].dims[k];
        v += e;
    }
    return v;
}

/* ---- Split ---- */

/* Extent i of the n pieces of an axis of length len, from the split
 * input (data non-NULL), the argument, or equal parts. Valid once
 * split_check passed. */
static int64_t split_ext(const struct cs_state *s, int i, int n, int64_t len,
                         const int32_t *data)
{
    if (s->add_axis)
        return 1;
    if (data != NULL)
        return data[i];
    if (s->n_split > 0)
        return s->split[i];
    return len / n;
}

/* Checks that the extents are >= 0 and add up to len. */
static int split_check(const struct cs_state *s, int n, int64_t len,
                       const int32_t *data, int64_t n_data, ct_status_t *st)
{
    int64_t total = 0, e;
    int i;

    if (data != NULL && n_data != n)
        return ct_status_setf(st, CT_ESHAPE,
                              "the split input has %lld values for %d "
                              "outputs",
                              (long long)n_data, n);
    if (!s->add_axis && data == NULL && s->n_split == 0 && len % n != 0)
        return ct_status_setf(st, CT_ESHAPE,
                              "If you did not specify split explicitly, the "
                              "number of input channels should be divisible "
                              "by the output size (%lld along the axis, %d "
                              "outputs).",
                              (long long)len, n);
    for (i = 0; i < n; i++) {
        e = split_ext(s, i, n, len, data);
        if (e < 0)
            return ct_status_setf(st, CT_EARG,
                                  "split extent %d is negative (%lld)", i,
                                  (long long)e);
        if (e > len - total)
            break; /* the sum exceeds len: reported below */
        total += e;
    }
    if (i < n || total != len)
        return ct_status_setf(st, CT_ESHAPE,
                              "Sum of split dimensions do not match: should "
                              "be %lld, got %s%lld%s",
                              (long long)len, i < n ? "more than " : "",
                              (long long)total,
                              s->add_axis ? " (add_axis: one output per "
                                            "slice)"
                                          : "");
    return CT_OK;
}

static int split_run(ct_op_ctx_t *ctx)
{
    const struct cs_state *s = ctx->op->state;
    const int n = ctx->op->n_out;
    const ct_tensor_t *x, *sp = NULL;
    const int32_t *data = NULL;
    int64_t yd[CT_MAX_DIMS], before, after, off = 0;
    ct_status_t lst;
    size_t es;
    int i, k, axis, rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    if (ctx->op->n_in > 1) {
        if ((rc = ct_op_input(ctx, 1, &sp)) != CT_OK)
            return rc;
        if (sp->dtype != CT_DTYPE_I32)
            return ct_op_fail(
                ctx, CT_ETYPE, "the split input \"%s\" is %s, want INT32",
                ct_op_input_name(ctx->op, 1), ct_dtype_name(sp->dtype));
        data = CT_CDATA(sp, int32_t);
    }
    ct_status_clear(&lst);
    if ((rc = cs_axis(s, x->ndim, &axis, "X", x->ndim, x->dims, &lst)) !=
            CT_OK ||
        (rc = split_check(s, n, x->dims[axis], data, sp != NULL ? sp->numel : 0,
                          &lst)) != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    before = dims_prod(x->dims, 0, axis);
    after = dims_prod(x->dims, axis + 1, x->ndim);
    es = ct_dtype_size(x->dtype);
    for (i = 0; i < n; i++) {
        const int64_t ext = split_ext(s, i, n, x->dims[axis], data);
        const int64_t len = ext * after;
        const char *xs = ct_tensor_cdata(x);
        ct_tensor_t *y;
        int ynd = 0;
        for (k = 0; k < x->ndim; k++) {
            if (k == axis && s->add_axis)
                continue;
            yd[ynd++] = k == axis ? ext : x->dims[k];
        }
        if ((rc = ct_op_output(ctx, i, x->dtype, ynd, yd, &y)) != CT_OK)
            return rc;
        if (before > 0 && x->dtype == CT_DTYPE_STRING)
            rc = cs_copy_strings(ctx, y, 0, len, x, off, x->dims[axis] * after,
                                 before, len);
        else if (before > 0)
            cs_copy_rows(ct_tensor_data(y), len, xs + (size_t)off * es,
                         x->dims[axis] * after, before, len, es);
        if (rc != CT_OK)
            return rc;
        off += len;
    }
    return CT_OK;
}

static int split_init(ct_op_t *op, ct_status_t *st)
{
    struct cs_state *s = op->state;
    int rc;

    if ((rc = cs_parse_axis(op, s, st)) != CT_OK ||
        (rc = ct__arg_ints(op, "split", &s->split, &s->n_split, st)) != CT_OK)
        return rc;
    if (s->n_split > 0 && op->n_in > 1)
        return ct_status_setf(st, CT_EARG,
                              "If you set split with an input blob, do not "
                              "pass in split in the argument.");
    if (s->n_split > 0 && s->n_split != (size_t)op->n_out)
        return ct_status_setf(st, CT_EARG,
                              "The number of splits specified should be "
                              "equal to the number of outputs (split has "
                              "%zu values, %d outputs).",
                              s->n_split, op->n_out);
    return CT_OK;
}

static int split_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                       ct_status_t *st)
{
    const struct cs_state *s = op->state;
    int i, k, axis, rc;
    int64_t len;

    for (i = 0; i < op->n_out; i++)
        out[i].dtype = in[0].dtype;
    /* The pieces of a split given as a tensor are known only at run time
     * (unless add_axis fixes them). */
    if (in[0].ndim < 0 || (op->n_in > 1 && !s->add_axis))
        return CT_OK;
    if ((rc = cs_axis(s, in[0].ndim, &axis, "X", in[0].ndim, in[0].dims, st)) !=
        CT_OK)
        return rc;
    len = in[0].dims[axis];
    if ((rc = split_check(s, op->n_out, len, NULL, 0, st)) != CT_OK)
        return rc;
    for (i = 0; i < op->n_out; i++) {
        out[i].ndim = 0;
        for (k = 0; k < in[0].ndim; k++) {
            if (k == axis && s->add_axis)
                continue;
            out[i].dims[out[i].ndim++] =
                k == axis ? split_ext(s, i, op->n_out, len, NULL)
                          : in[0].dims[k];
        }
    }
    return CT_OK;
}

static double split_cost(const ct_op_t *op, const ct_shape_t *in)
{
    double v = 1;
    int k;

    if (in[0].ndim < 0)
        return 0;
    for (k = 0; k < in[0].ndim; k++)
        v *= (double)in[0].dims[k];
    return v;
}

/* ---- gradient makers ---- */

static int concat_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const int n = (int)g->def->n_input;
    const char *in[2], **out;
    int i, rc;

    if ((rc = ct__grad_need_out(g, 0, &in[0], st)) != CT_OK)
        return rc;
    if (g->def->n_output < 2)
        return ct_status_setf(st, CT_ENOTSUP,
                              "the gradient of Concat needs its split_info "
                              "output (output 1)");
    in[1] = ct__grad_fwd_out(g, 1);
    out = ct__calloc((size_t)n, sizeof(*out));
    if (out == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory for %d names", n);
    for (i = 0; i < n; i++)
        out[i] = ct__grad_in(g, i);
    rc = ct__grad_emit(g, "Split", in, 2, out, n, 0, NULL, st);
    ct__free((void *)out);
    return rc;
}

static int split_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const int n = (int)g->def->n_output;
    const char **in, *out[2];
    char *dims;
    size_t len;
    int i, rc = CT_OK;

    in = ct__calloc((size_t)n, sizeof(*in));
    if (in == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory for %d names", n);
    for (i = 0; i < n && rc == CT_OK; i++)
        rc = ct__grad_need_out(g, i, &in[i], st);
    if (rc != CT_OK)
        goto done;
    out[0] = ct__grad_in(g, 0);
    len = strlen(out[0]) + 7;
    dims = ct__malloc(len);
    if (dims == NULL) {
        rc = ct_status_setf(st, CT_ENOMEM, "out of memory for a blob name");
        goto done;
    }
    snprintf(dims, len, "_%s_dims", out[0]);
    out[1] = dims;
    rc = ct__grad_emit(g, "Concat", in, n, out, 2, 0, NULL, st);
    ct__free(dims);
done:
    ct__free((void *)in);
    return rc;
}

static const struct ct_arg_spec cs_args[] = {
    {"axis", CT_ARG_INT, false},     {"order", CT_ARG_STRING, false},
    {"add_axis", CT_ARG_INT, false}, {"split", CT_ARG_INTS, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_concat = {
    .name = "Concat",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 1,
    .max_outputs = 2,
    .args = cs_args,
    .state_size = sizeof(struct cs_state),
    .init_cb = concat_init,
    .infer_cb = concat_infer,
    .run_cb = concat_run,
    .grad_cb = concat_grad_make,
    .cost_cb = concat_cost,
    .doc = "Y = the inputs joined along axis; split_info = their extents",
};

const struct ct_op_schema ct__op_split = {
    .name = "Split",
    .min_inputs = 1,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = CT_INF,
    .args = cs_args,
    .state_size = sizeof(struct cs_state),
    .init_cb = split_init,
    .infer_cb = split_infer,
    .run_cb = split_run,
    .grad_cb = split_grad_make,
    .cost_cb = split_cost,
    .doc = "the pieces of X along axis, by split or in equal parts",
};
