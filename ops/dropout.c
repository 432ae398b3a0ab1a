/* Dropout.
 *
 * Math: is_test != 0: Y = X (a copy, or nothing when Y is X; the mask
 * output, if any, is left untouched, as in Caffe2). is_test = 0: each
 * element is kept with probability 1 - ratio and scaled,
 *   mask[i] = u[i] >= ratio,  Y[i] = mask[i] ? X[i] / (1 - ratio) : 0,
 * with u[i] uniform in [0, 1) (Caffe2 draws a Bernoulli(1 - ratio)).
 * Input X. Outputs Y of X's shape and dtype, and mask (BOOL, X's shape),
 * which training mode requires (Caffe2 fails at run time without it;
 * cortado rejects the op when it is created).
 * Attrs: ratio (float, 0.5, in [0, 1)), is_test (int, 0).
 * Dtype: FLOAT (Caffe2's CPU kernel); is_test also copies DOUBLE. Others
 * CT_ENOTSUP. In-place: X -> Y.
 *
 * DropoutGrad (Caffe2's name): inputs dY and, in training mode, the mask;
 * output dX = dY * mask / (1 - ratio), or dX = dY with is_test. Same
 * attrs as Dropout (the maker copies them). In-place: dY -> dX. The
 * maker emits {dY, mask} -> {dX} (just {dY} with is_test), as Caffe2's
 * GetDropoutGradient.
 *
 * Randomness (ops/rand.h): Philox4x32-10 keyed once per op instance from
 * op->seed (DeviceOption.random_seed, or the engine's derived seed). Run r
 * draws stream r, and element i uses word i % 4 of block i / 4 (the block
 * layout of ops/rand.c), so the mask is a pure function of (seed, run, i):
 * repeatable for a seed, fresh on each run, and independent of how the
 * elements are split among workers.
 */
#include <stdatomic.h>
#include <string.h>

#include "engine/gradient.h"
#include "engine/op_internal.h"
#include "ops/op_impl.h"
#include "ops/rand.h"

struct dropout_state {
    float ratio;
    bool is_test;
    uint64_t key; /* Philox key, fixed at creation */
    /* Training runs started so far; run r draws stream r. atomic,
     * relaxed: only needs a distinct value per run. */
    _Atomic uint64_t n_runs;
};

/* Elements [e0, e1): 32 random bits per element, four per Philox block,
 * compared with the threshold ratio * 2^32. y may be x. */
static void dropout_f32(const struct ct__rng *rng, uint64_t threshold,
                        float scale, const float *x, float *y, bool *mask,
                        int64_t e0, int64_t e1)
{
    const uint32_t key[2] = {(uint32_t)rng->key, (uint32_t)(rng->key >> 32)};
    uint32_t r[4];
    int64_t i = e0;

    while (i < e1) {
        const uint64_t blk = (uint64_t)i / 4;
        const uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32),
                                 (uint32_t)rng->stream,
                                 (uint32_t)(rng->stream >> 32)};
        int k;

        ct__philox4x32_10(ctr, key, r);
        for (k = (int)(i % 4); k < 4 && i < e1; k++, i++) {
            const bool keep = (uint64_t)r[k] >= threshold;
            mask[i] = keep;
            y[i] = keep ? x[i] * scale : 0.0f;
        }
    }
}

static int dropout_run(ct_op_ctx_t *ctx)
{
    struct dropout_state *s = ctx->op->state;
    const ct_tensor_t *x;
    const void *xs;
    ct_tensor_t *y, *mask;
    struct ct__rng rng;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    if (x->dtype != CT_DTYPE_F32 && !(s->is_test && x->dtype == CT_DTYPE_F64))
        return ct_op_fail(
            ctx, CT_ENOTSUP, "unsupported dtype %s for X (FLOAT%s)",
            ct_dtype_name(x->dtype), s->is_test ? " or DOUBLE" : "");
    /* X's data before Y's (see ops/softmax.c on shared storage). */
    xs = ct_tensor_cdata(x);
    if (s->is_test) {
        if (ctx->op->in[0] == ctx->op->out[0])
            return CT_OK;
        rc = ct_op_output(ctx, 0, x->dtype, x->ndim, x->dims, &y);
        if (rc == CT_OK && x->numel > 0)
            memcpy(ct_tensor_data(y), xs, ct_tensor_nbytes(x));
        return rc;
    }
    if ((rc = ct_op_output(ctx, 1, CT_DTYPE_BOOL, x->ndim, x->dims, &mask)) !=
            CT_OK ||
        (rc = ct_op_output(ctx, 0, CT_DTYPE_F32, x->ndim, x->dims, &y)) !=
            CT_OK)
        return rc;
    rng.key = s->key;
    rng.stream = atomic_fetch_add_explicit(&s->n_runs, 1, memory_order_relaxed);
    if (x->numel == 0)
        return CT_OK;
    /* ratio * 2^32 in double is exact enough: u = r / 2^32 >= ratio. One
     * range for now; ct_parallel_for will split the elements. */
    dropout_f32(&rng, (uint64_t)((double)s->ratio * 4294967296.0),
                (float)(1.0 / (1.0 - (double)s->ratio)), xs, CT_DATA(y, float),
                CT_DATA(mask, bool), 0, x->numel);
    return CT_OK;
}

static int dropout_init(ct_op_t *op, ct_status_t *st)
{
    struct dropout_state *s = op->state;
    int64_t is_test;
    int rc;

    if ((rc = ct__arg_float(op, "ratio", 0.5f, &s->ratio, st)) != CT_OK ||
        (rc = ct__arg_int(op, "is_test", 0, &is_test, st)) != CT_OK)
        return rc;
    s->is_test = is_test != 0;
    if (!(s->ratio >= 0 && s->ratio < 1))
        return ct_status_setf(st, CT_EARG, "ratio must be in [0, 1), got %g",
                              (double)s->ratio);
    if (!s->is_test && op->n_out < 2)
        return ct_status_setf(st, CT_ESCHEMA,
                              "Dropout in training mode (is_test=0) needs the "
                              "mask as output 1; set is_test=1 for "
                              "inference");
    s->key = ct__rand_key(op->seed, op->has_seed);
    atomic_init(&s->n_runs, 0);
    return CT_OK;
}

static int dropout_infer(const ct_op_t *op, const ct_shape_t *in,
                         ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[0];
    if (op->n_out > 1) {
        out[1] = in[0];
        out[1].dtype = CT_DTYPE_BOOL;
    }
    return CT_OK;
}

/* Training: a random draw, a compare and a multiply per element; the
 * copy of is_test costs the bytes moved. */
static double dropout_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct dropout_state *s = op->state;
    double v = 1;
    int i;

    if (in[0].ndim < 0)
        return 0;
    for (i = 0; i < in[0].ndim; i++)
        v *= (double)in[0].dims[i];
    if (s->is_test)
        return strcmp(op->def->input[0], op->def->output[0]) == 0 ? 0 : v;
    return 4 * v;
}

/* ---- DropoutGrad ---- */

static int dropout_grad_run(ct_op_ctx_t *ctx)
{
    const struct dropout_state *s = ctx->op->state;
    const ct_tensor_t *dy, *mask = NULL;
    const float *dys;
    const bool *m;
    ct_tensor_t *dx;
    char b1[128], b2[128];
    float scale;
    int64_t i;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &dy)) != CT_OK)
        return rc;
    if (dy->dtype != CT_DTYPE_F32)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s for dY (FLOAT)",
                          ct_dtype_name(dy->dtype));
    if (!s->is_test) {
        if ((rc = ct_op_input(ctx, 1, &mask)) != CT_OK)
            return rc;
        if (mask->dtype != CT_DTYPE_BOOL || mask->numel != dy->numel)
            return ct_op_fail(ctx, CT_ESHAPE,
                              "mask %s %s must be BOOL with the %lld "
                              "elements of dY %s",
                              ct_dtype_name(mask->dtype),
                              ct_tensor_shape_str(mask, b1, sizeof(b1)),
                              (long long)dy->numel,
                              ct_tensor_shape_str(dy, b2, sizeof(b2)));
    }
    dys = CT_CDATA(dy, float);
    m = mask != NULL ? CT_CDATA(mask, bool) : NULL;
    if ((rc = ct_op_output(ctx, 0, CT_DTYPE_F32, dy->ndim, dy->dims, &dx)) !=
        CT_OK)
        return rc;
    scale = s->is_test ? 1.0f : (float)(1.0 / (1.0 - (double)s->ratio));
    for (i = 0; i < dy->numel; i++)
        CT_DATA(dx, float)[i] = m == NULL || m[i] ? dys[i] * scale : 0.0f;
    return CT_OK;
}

static int dropout_grad_init(ct_op_t *op, ct_status_t *st)
{
    struct dropout_state *s = op->state;
    int64_t is_test;
    int rc;

    if ((rc = ct__arg_float(op, "ratio", 0.5f, &s->ratio, st)) != CT_OK ||
        (rc = ct__arg_int(op, "is_test", 0, &is_test, st)) != CT_OK)
        return rc;
    s->is_test = is_test != 0;
    if (!(s->ratio >= 0 && s->ratio < 1))
        return ct_status_setf(st, CT_EARG, "ratio must be in [0, 1), got %g",
                              (double)s->ratio);
    if (!s->is_test && op->n_in < 2)
        return ct_status_setf(st, CT_ESCHEMA,
                              "DropoutGrad in training mode (is_test=0) "
                              "needs the mask as input 1");
    return CT_OK;
}

static int dropout_grad_infer(const ct_op_t *op, const ct_shape_t *in,
                              ct_shape_t *out, ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

static int dropout_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const Caffe2__OperatorDef *d = g->def;
    const char *in[2], *out[1];
    int64_t is_test = 0;
    int rc;

    if ((rc = ct__argv_int(d->arg, d->n_arg, "is_test", 0, &is_test, st)) !=
        CT_OK)
        return rc;
    if ((in[0] = ct__grad_out(g, 0)) == NULL)
        return ct_status_setf(st, CT_ENOTSUP,
                              "Dropout needs the gradient of output 0 (Y)");
    out[0] = ct__grad_in(g, 0);
    if (is_test)
        return ct__grad_emit(g, "DropoutGrad", in, 1, out, 1, 0, NULL, st);
    in[1] = ct__grad_fwd_out(g, 1);
    return ct__grad_emit(g, "DropoutGrad", in, 2, out, 1, 0, NULL, st);
}

static const struct ct_arg_spec dropout_args[] = {
    {"ratio", CT_ARG_FLOAT, false},
    {"is_test", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_dropout = {
    .name = "Dropout",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 2,
    .inplace_cb = ct__inplace_0_0,
    .args = dropout_args,
    .state_size = sizeof(struct dropout_state),
    .init_cb = dropout_init,
    .infer_cb = dropout_infer,
    .run_cb = dropout_run,
    .grad_cb = dropout_grad_make,
    .cost_cb = dropout_cost,
    .flags = CT_OP_F_RANDOM,
    .doc = "Y = X * mask / (1 - ratio), mask ~ Bernoulli(1 - ratio)",
};

const struct ct_op_schema ct__op_dropout_grad = {
    .name = "DropoutGrad",
    .min_inputs = 1,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .inplace_cb = ct__inplace_0_0,
    .args = dropout_args,
    .state_size = sizeof(struct dropout_state),
    .init_cb = dropout_grad_init,
    .infer_cb = dropout_grad_infer,
    .run_cb = dropout_grad_run,
    .doc = "dX = dY * mask / (1 - ratio) (dY with is_test)",
};
