/* ExampleBatch: the next mini-batch of a data set held in two tensors.
 *
 * cortado's data op for training loops that keep the whole (small) data
 * set in memory, like MNIST: the caller loads the examples and labels once
 * into blobs (from .npy files with ct_npy_read_file, from IDX files, ...;
 * the op does no file I/O), and the net draws batch b from them, where b
 * comes from the iteration counter that Iter maintains. There is no
 * Caffe2 equivalent (Caffe2 reads batches from a DB with TensorProtosDB
 * input ops); the argument names follow Caffe2's where they exist.
 *
 * Inputs:  examples [N, d1, ...] (any numeric dtype: UINT8 images, FLOAT
 *          features, ...), labels [N] (INT32, INT64 or UINT8), iter (one
 *          INT64, e.g. Iter's output).
 * Outputs: data [batch_size, d1, ...] FLOAT, label [batch_size] INT32.
 * Attrs:   batch_size (int, required, >= 1);
 *          scale (float, 1), shift (float, 0): data = example * scale +
 *            shift, computed in double and rounded once to FLOAT (1/255 and
 *            0 turn UINT8 pixels into [0, 1]);
 *          stride (int, 1), offset (int, 0): the batch number is
 *            b = iter * stride + offset, so K concurrent micro-batch scopes
 *            that share one counter read disjoint batches with stride K
 *            and offsets 0 .. K-1;
 *          shuffle (int, 0), seed (int, 0): with shuffle = 1 each epoch
 *            visits the examples in its own pseudo-random order.
 * Batch b holds positions q = b * batch_size + k (k < batch_size) of the
 * endless sequence of epochs: epoch q / N, position q % N, so batches
 * wrap around the end of the data set and batch_size may exceed N. With
 * shuffle, position i of epoch e is example perm_e(i), a bijection of
 * [0, N) computed without storage: a 4-round Feistel network on the
 * smallest even number of bits covering N, keyed by (seed, e) through
 * splitmix64, with cycle walking back into [0, N) (fewer than 4 rounds
 * trips on average). The batch is therefore a pure function of (iter,
 * arguments), so reruns and concurrent scopes are deterministic.
 * Errors: N = 0, labels not N entries, a label outside INT32 (CT_ESHAPE /
 * CT_ETYPE / CT_EINVAL); negative iter, or b * batch_size overflowing
 * int64 (CT_EINVAL); bad arguments at creation (CT_EARG).
 * No gradient flows back into the data set (Caffe2's input ops have
 * NO_GRADIENT).
 */
#include <math.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"
#include "ops/rand.h"

struct batch_state {
    int64_t batch_size, stride, offset;
    double scale, shift;
    bool shuffle;
    uint64_t seed;
};

static int batch_init(ct_op_t *op, ct_status_t *st)
{
    struct batch_state *s = op->state;
    float scale, shift;
    int64_t shuffle, seed;
    int rc;

    if ((rc = ct__arg_int(op, "batch_size", 0, &s->batch_size, st)) != CT_OK ||
        (rc = ct__arg_int(op, "stride", 1, &s->stride, st)) != CT_OK ||
        (rc = ct__arg_int(op, "offset", 0, &s->offset, st)) != CT_OK ||
        (rc = ct__arg_float(op, "scale", 1.0f, &scale, st)) != CT_OK ||
        (rc = ct__arg_float(op, "shift", 0.0f, &shift, st)) != CT_OK ||
        (rc = ct__arg_int(op, "shuffle", 0, &shuffle, st)) != CT_OK ||
        (rc = ct__arg_int(op, "seed", 0, &seed, st)) != CT_OK)
        return rc;
    if (s->batch_size < 1)
        return ct_status_setf(st, CT_EARG, "batch_size=%lld must be >= 1",
                              (long long)s->batch_size);
    if (s->stride < 1)
        return ct_status_setf(st, CT_EARG, "stride=%lld must be >= 1",
                              (long long)s->stride);
    if (s->offset < 0)
        return ct_status_setf(st, CT_EARG, "offset=%lld must be >= 0",
                              (long long)s->offset);
    if (!isfinite(scale) || !isfinite(shift))
        return ct_status_setf(st, CT_EARG,
                              "scale=%g and shift=%g must be finite",
                              (double)scale, (double)shift);
    if (shuffle != 0 && shuffle != 1)
        return ct_status_setf(st, CT_EARG, "shuffle=%lld must be 0 or 1",
                              (long long)shuffle);
    s->scale = scale;
    s->shift = shift;
    s->shuffle = shuffle == 1;
    s->seed = (uint64_t)seed;
    return CT_OK;
}

/* ---- the permutation ---- */

struct perm {
    uint64_t n;       /* domain [0, n) */
    unsigned half;    /* bits per Feistel half */
    uint64_t mask;    /* (1 << half) - 1 */
    uint64_t keys[4]; /* round keys */
};

static void perm_init(struct perm *p, uint64_t n, uint64_t seed, uint64_t epoch)
{
    unsigned bits = 1;
    int r;

    while (bits < 64 && (UINT64_C(1) << bits) < n)
        bits++;
    p->n = n;
    p->half = (bits + 1) / 2;
    p->mask = (UINT64_C(1) << p->half) - 1;
    for (r = 0; r < 4; r++)
        p->keys[r] =
            ct__rand_mix64(seed ^ ct__rand_mix64(epoch * 4 + (uint64_t)r + 1));
}

/* perm(i) for i < n: Feistel rounds, repeated until inside [0, n). */
static uint64_t perm_apply(const struct perm *p, uint64_t i)
{
    do {
        uint64_t l = i >> p->half, r = i & p->mask, t;
        int k;
        for (k = 0; k < 4; k++) {
            t = l ^ (ct__rand_mix64(r ^ p->keys[k]) & p->mask);
            l = r;
            r = t;
        }
        i = (l << p->half) | r;
    } while (i >= p->n);
    return i;
}

/* ---- the kernel ---- */

static double load_num(const void *p, ct_dtype_t dt, int64_t i)
{
    switch (dt) {
    case CT_DTYPE_F32:
        return ((const float *)p)[i];
    case CT_DTYPE_F64:
        return ((const double *)p)[i];
    case CT_DTYPE_F16:
        return ct_f16_to_f32(((const uint16_t *)p)[i]);
    case CT_DTYPE_I32:
        return ((const int32_t *)p)[i];
    case CT_DTYPE_I64:
        return (double)((const int64_t *)p)[i];
    case CT_DTYPE_I16:
        return ((const int16_t *)p)[i];
    case CT_DTYPE_U16:
        return ((const uint16_t *)p)[i];
    case CT_DTYPE_I8:
        return ((const int8_t *)p)[i];
    case CT_DTYPE_BOOL:
    case CT_DTYPE_U8:
    case CT_DTYPE_BYTE:
        return ((const uint8_t *)p)[i];
    default:
        return 0;
    }
}

static int batch_run(ct_op_ctx_t *ctx)
{
    const struct batch_state *s = ctx->op->state;
    const ct_tensor_t *ex, *lab, *it;
    ct_tensor_t *data, *label;
    struct perm perm;
    int64_t dims[CT_MAX_DIMS], n, row, iter, b, first, k, j;
    uint64_t epoch = UINT64_MAX;
    const void *exv;
    float *dv;
    int32_t *lv;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &ex)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &lab)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &it)) != CT_OK)
        return rc;
    if (ex->dtype == CT_DTYPE_STRING || ex->dtype == CT_DTYPE_UNDEFINED)
        return ct_op_fail(
            ctx, CT_ETYPE, "examples \"%s\" are %s; a numeric dtype expected",
            ct_op_input_name(ctx->op, 0), ct_dtype_name(ex->dtype));
    if (ex->ndim < 1 || ex->dims[0] == 0)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "examples \"%s\" must be at least 1-D with N >= 1 "
                          "examples",
                          ct_op_input_name(ctx->op, 0));
    n = ex->dims[0];
    if (lab->dtype != CT_DTYPE_I32 && lab->dtype != CT_DTYPE_I64 &&
        lab->dtype != CT_DTYPE_U8)
        return ct_op_fail(ctx, CT_ETYPE,
                          "labels \"%s\" are %s; INT32, INT64 or UINT8 "
                          "expected",
                          ct_op_input_name(ctx->op, 1),
                          ct_dtype_name(lab->dtype));
    if (lab->numel != n)
        return ct_op_fail(
            ctx, CT_ESHAPE, "labels \"%s\" have %lld entries for %lld examples",
            ct_op_input_name(ctx->op, 1), (long long)lab->numel, (long long)n);
    if (it->dtype != CT_DTYPE_I64 || it->numel != 1)
        return ct_op_fail(ctx, CT_ETYPE,
                          "iteration input \"%s\" must be one INT64",
                          ct_op_input_name(ctx->op, 2));
    iter = CT_CDATA(it, int64_t)[0];
    if (iter < 0 || (iter > 0 && s->stride > (INT64_MAX - s->offset) / iter))
        return ct_op_fail(ctx, CT_EINVAL,
                          "iteration %lld * stride %lld + offset %lld is "
                          "negative or overflows",
                          (long long)iter, (long long)s->stride,
                          (long long)s->offset);
    b = iter * s->stride + s->offset;
    if (b > (INT64_MAX - s->batch_size) / s->batch_size)
        return ct_op_fail(ctx, CT_EINVAL,
                          "batch %lld of batch_size %lld overflows int64",
                          (long long)b, (long long)s->batch_size);
    first = b * s->batch_size;
    row = ex->numel / n;
    memcpy(dims, ex->dims, (size_t)ex->ndim * sizeof(int64_t));
    dims[0] = s->batch_size;
    exv = ct_tensor_cdata(ex);
    memset(&perm, 0, sizeof(perm));
    if ((rc = ct_op_output(ctx, 0, CT_DTYPE_F32, ex->ndim, dims, &data)) !=
            CT_OK ||
        (rc = ct_op_output(ctx, 1, CT_DTYPE_I32, 1, &s->batch_size, &label)) !=
            CT_OK)
        return rc;
    dv = CT_DATA(data, float);
    lv = CT_DATA(label, int32_t);
    for (k = 0; k < s->batch_size; k++) {
        const uint64_t q = (uint64_t)(first + k);
        uint64_t idx = q % (uint64_t)n;
        int64_t lab_v;
        if (s->shuffle) {
            if (q / (uint64_t)n != epoch) {
                epoch = q / (uint64_t)n;
                perm_init(&perm, (uint64_t)n, s->seed, epoch);
            }
            idx = perm_apply(&perm, idx);
        }
        lab_v = lab->dtype == CT_DTYPE_I64   ? CT_CDATA(lab, int64_t)[idx]
                : lab->dtype == CT_DTYPE_I32 ? CT_CDATA(lab, int32_t)[idx]
                                             : CT_CDATA(lab, uint8_t)[idx];
        if (lab_v < INT32_MIN || lab_v > INT32_MAX)
            return ct_op_fail(ctx, CT_EINVAL,
                              "label %lld of example %llu does not fit INT32",
                              (long long)lab_v, (unsigned long long)idx);
        lv[k] = (int32_t)lab_v;
        if (row == 0)
            continue;
        if (ex->dtype == CT_DTYPE_F32 && s->scale == 1 && s->shift == 0) {
            memcpy(dv + k * row, (const float *)exv + (int64_t)idx * row,
                   (size_t)row * sizeof(float));
            continue;
        }
        for (j = 0; j < row; j++)
            dv[k * row + j] =
                (float)(load_num(exv, ex->dtype, (int64_t)idx * row + j) *
                            s->scale +
                        s->shift);
    }
    return CT_OK;
}

static int batch_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                       ct_status_t *st)
{
    const struct batch_state *s = op->state;

    out[0] = in[0];
    out[0].dtype = CT_DTYPE_F32;
    if (out[0].ndim >= 1)
        out[0].dims[0] = s->batch_size;
    out[1].dtype = CT_DTYPE_I32;
    out[1].ndim = 1;
    out[1].dims[0] = s->batch_size;
    return CT_OK;
}

static const struct ct_arg_spec batch_args[] = {
    {"batch_size", CT_ARG_INT, true}, {"scale", CT_ARG_FLOAT, false},
    {"shift", CT_ARG_FLOAT, false},   {"stride", CT_ARG_INT, false},
    {"offset", CT_ARG_INT, false},    {"shuffle", CT_ARG_INT, false},
    {"seed", CT_ARG_INT, false},      {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_example_batch = {
    .name = "ExampleBatch",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 2,
    .max_outputs = 2,
    .args = batch_args,
    .state_size = sizeof(struct batch_state),
    .init_cb = batch_init,
    .infer_cb = batch_infer,
    .run_cb = batch_run,
    .grad_cb = ct__grad_none,
    .doc = "Mini-batch b = iter * stride + offset of (examples, labels)",
};
