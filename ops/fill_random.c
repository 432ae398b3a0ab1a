/* Random fillers (Caffe2's caffe2/operators/filler_op.{h,cc}):
 *
 * UniformFill     FLOAT, uniform in [min, max); min (f, default 0) and
 *                 max (f, default 1), min < max.
 * UniformIntFill  INT32, uniform in [min, max], both ends included as in
 *                 Caffe2's integer RandUniform; min (i, default 0), max (i,
 *                 default 1), min < max.
 *   Both may take 3 inputs (shape, min, max): min and max then come from
 *   1-element tensors of the output dtype (and must not also be given as
 *   arguments); when min > max the output gets dim 0 set to 0 (Caffe2's
 *   "empty" convention), when min == max every element is min.
 * GaussianFill    FLOAT, normal with mean (f, default 0) and std (f,
 *                 default 1). std must be >= 0 (Caffe2 only DCHECKs > 0;
 *                 std = 0 gives `mean` everywhere).
 * XavierFill      FLOAT, uniform in [-s, s) with s = sqrt(3 / fan_in) and
 *                 fan_in = numel / shape[0] (rank >= 1).
 * MSRAFill        FLOAT, normal with mean 0 and std s = sqrt(2 / fan_out),
 *                 fan_out = numel / shape[1] (rank >= 2).
 *   As in Caffe2, s is computed in single precision. An output with no
 *   elements is valid and left empty (Caffe2 divides by zero there).
 *
 * Shape: `shape`, `extra_shape`, `input_as_shape` and the optional shape
 * input follow ops/fill.h. No input is overwritten; nothing runs in place.
 *
 * Randomness (ops/rand.h): Philox4x32-10, keyed once per op instance at
 * creation from op->seed. With DeviceOption.random_seed set (op->has_seed)
 * the key is a function of that seed alone, so the same seed gives the
 * same values. Without it the engine's derived seed (op position and
 * first output name) is used, in a separate key domain: results are
 * reproducible, where Caffe2 seeds such ops at random. Each op instance
 * counts its runs and run r draws stream r, so every run of one instance
 * yields fresh values while a re-created op replays them, like Caffe2's
 * per-op generator. Gaussian values use Box-Muller on 53-bit uniforms,
 * uniform ones 24 (FLOAT) or 64 (INT32) random bits; values never depend
 * on how a fill is split among workers.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "ops/fill.h"
#include "ops/op_impl.h"
#include "ops/rand.h"

enum random_kind {
    RANDOM_UNIFORM,
    RANDOM_UNIFORM_INT,
    RANDOM_GAUSSIAN,
    RANDOM_XAVIER,
    RANDOM_MSRA
};

struct random_fill_state {
    struct ct__fill_shape fs;
    enum random_kind kind;
    ct_dtype_t dtype;
    float a, b;     /* min/max (UniformFill) or mean/std (GaussianFill) */
    int32_t ia, ib; /* min/max (UniformIntFill) */
    bool bounds_from_inputs; /* 3 inputs: min and max are inputs 1 and 2 */
    uint64_t key;            /* Philox key, fixed at creation */
    /* Runs started so far; run r draws stream r. atomic, relaxed: only
     * the uniqueness of each value matters. */
    _Atomic uint64_t n_runs;
};

/* The rank fan_in / fan_out needs, or 0. */
static int min_rank(enum random_kind kind)
{
    return kind == RANDOM_XAVIER ? 1 : kind == RANDOM_MSRA ? 2 : 0;
}

static const char *kind_name(enum random_kind kind)
{
    return kind == RANDOM_XAVIER ? "XavierFill" : "MSRAFill";
}

static int bounds_args(ct_op_t *op, struct random_fill_state *s,
                       ct_status_t *st)
{
    int rc;

    if (s->bounds_from_inputs) {
        if (ct__arg_has(op, "min"))
            return ct_status_setf(st, CT_EARG,
                                  "Cannot set both min arg and min input "
                                  "blob");
        if (ct__arg_has(op, "max"))
            return ct_status_setf(st, CT_EARG,
                                  "Cannot set both max arg and max input "
                                  "blob");
        return CT_OK;
    }
    if (s->kind == RANDOM_UNIFORM) {
        rc = ct__arg_float(op, "min", 0.0f, &s->a, st);
        if (rc == CT_OK)
            rc = ct__arg_float(op, "max", 1.0f, &s->b, st);
        if (rc == CT_OK && (!isfinite(s->a) || !isfinite(s->b)))
            return ct_status_setf(st, CT_EARG,
                                  "min and max must be finite: min=%g, "
                                  "max=%g",
                                  (double)s->a, (double)s->b);
        if (rc == CT_OK && !(s->a < s->b))
            return ct_status_setf(st, CT_EARG,
                                  "Max value should be bigger than min "
                                  "value: min=%g, max=%g",
                                  (double)s->a, (double)s->b);
        return rc;
    }
    rc = ct__arg_int32(op, "min", 0, &s->ia, st);
    if (rc == CT_OK)
        rc = ct__arg_int32(op, "max", 1, &s->ib, st);
    if (rc == CT_OK && !(s->ia < s->ib))
        return ct_status_setf(st, CT_EARG,
                              "Max value should be bigger than min value: "
                              "min=%d, max=%d",
                              (int)s->ia, (int)s->ib);
    return rc;
}

static int random_init(ct_op_t *op, enum random_kind kind, ct_status_t *st)
{
    struct random_fill_state *s = op->state;
    char buf[160];
    int rc;

    s->kind = kind;
    s->dtype = kind == RANDOM_UNIFORM_INT ? CT_DTYPE_I32 : CT_DTYPE_F32;
    atomic_init(&s->n_runs, 0);
    s->key = ct__rand_key(op->seed, op->has_seed);
    if (op->n_in == 2)
        return ct_status_setf(st, CT_ESCHEMA,
                              "takes 0, 1 or 3 inputs (shape, min, max), "
                              "got 2");
    rc = ct__fill_parse_shape(op, &s->fs, st);
    if (rc != CT_OK)
        return rc;
    switch (kind) {
    case RANDOM_UNIFORM:
    case RANDOM_UNIFORM_INT:
        s->bounds_from_inputs = op->n_in == 3;
        return bounds_args(op, s, st);
    case RANDOM_GAUSSIAN:
        rc = ct__arg_float(op, "mean", 0.0f, &s->a, st);
        if (rc == CT_OK)
            rc = ct__arg_float(op, "std", 1.0f, &s->b, st);
        if (rc == CT_OK && !(s->b >= 0.0f))
            return ct_status_setf(st, CT_EARG, "Argument std=%g must be >= 0",
                                  (double)s->b);
        return rc;
    case RANDOM_XAVIER:
    case RANDOM_MSRA:
        if (op->n_in == 0 && s->fs.n_shape < min_rank(kind))
            return ct_status_setf(
                st, CT_EARG,
                "Argument shape %s: %s needs rank >= %d "
                "(fan from shape[%d])",
                ct_dims_str(s->fs.n_shape, s->fs.shape, buf, sizeof(buf)),
                kind_name(kind), min_rank(kind), min_rank(kind) - 1);
        return CT_OK;
    }
    return CT_OK;
}

/* Reads the 1-element min or max input i of dtype dt into *v. */
static int bound_input(ct_op_ctx_t *ctx, int i, ct_dtype_t dt, void *v)
{
    const char *what = i == 1 ? "min" : "max";
    const ct_tensor_t *t;
    int rc = ct_op_input(ctx, i, &t);

    if (rc != CT_OK)
        return rc;
    if (ct_tensor_dtype(t) != dt)
        return ct_op_fail(ctx, CT_ETYPE,
                          "%s input %d \"%s\" must be %s, got %s", what, i,
                          ct_op_input_name(ctx->op, i), ct_dtype_name(dt),
                          ct_dtype_name(ct_tensor_dtype(t)));
    if (ct_tensor_numel(t) != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "%s blob must be scalar: input %d \"%s\" has %lld "
                          "elements",
                          what, i, ct_op_input_name(ctx->op, i),
                          (long long)ct_tensor_numel(t));
    memcpy(v, ct_tensor_cdata(t), ct_dtype_size(dt));
    return CT_OK;
}

/* Bounds of one run: from the state or from inputs 1 and 2. *empty is set
 * when min > max (the output's dim 0 becomes 0). */
static int run_bounds(ct_op_ctx_t *ctx, const struct random_fill_state *s,
                      float *a, float *b, int32_t *ia, int32_t *ib, bool *empty)
{
    int rc;

    *a = s->a, *b = s->b, *ia = s->ia, *ib = s->ib;
    *empty = false;
    if (!s->bounds_from_inputs)
        return CT_OK;
    if (s->kind == RANDOM_UNIFORM) {
        rc = bound_input(ctx, 1, CT_DTYPE_F32, a);
        if (rc == CT_OK)
            rc = bound_input(ctx, 2, CT_DTYPE_F32, b);
        if (rc == CT_OK && (isnan(*a) || isnan(*b) || isinf(*a) || isinf(*b)))
            return ct_op_fail(ctx, CT_EARG,
                              "min and max inputs must be finite: min=%g, "
                              "max=%g",
                              (double)*a, (double)*b);
        *empty = rc == CT_OK && *a > *b;
        return rc;
    }
    rc = bound_input(ctx, 1, CT_DTYPE_I32, ia);
    if (rc == CT_OK)
        rc = bound_input(ctx, 2, CT_DTYPE_I32, ib);
    *empty = rc == CT_OK && *ia > *ib;
    return rc;
}

static int random_run(ct_op_ctx_t *ctx)
{
    struct random_fill_state *s = ctx->op->state;
    int64_t dims[CT_MAX_DIMS], numel, fan;
    struct ct__rng rng;
    ct_tensor_t *out;
    float a, b, scale;
    int32_t ia, ib;
    bool empty;
    char buf[160];
    int ndim, rc;

    rc = ct__fill_dims(ctx, &s->fs, &ndim, dims);
    if (rc == CT_OK)
        rc = run_bounds(ctx, s, &a, &b, &ia, &ib, &empty);
    if (rc != CT_OK)
        return rc;
    if (ndim < min_rank(s->kind))
        return ct_op_fail(ctx, CT_ESHAPE,
                          "%s needs an output of rank >= %d (fan from "
                          "shape[%d]), got shape %s",
                          kind_name(s->kind), min_rank(s->kind),
                          min_rank(s->kind) - 1,
                          ct_dims_str(ndim, dims, buf, sizeof(buf)));
    if (empty) {
        if (ndim == 0)
            return ct_op_fail(ctx, CT_ESHAPE,
                              "min > max asks for an empty output, but the "
                              "output is 0-d");
        dims[0] = 0;
    }
    rc = ct_op_output(ctx, 0, s->dtype, ndim, dims, &out);
    if (rc != CT_OK)
        return rc;
    numel = ct_tensor_numel(out);
    if (numel == 0)
        return CT_OK;
    rng.key = s->key;
    rng.stream = atomic_fetch_add_explicit(&s->n_runs, 1, memory_order_relaxed);
    switch (s->kind) {
    case RANDOM_UNIFORM:
        if (a == b) {
            int64_t k;
            for (k = 0; k < numel; k++)
                CT_DATA(out, float)[k] = a;
            break;
        }
        ct__rand_uniform_f32(&rng, 0, (size_t)numel, a, b, CT_DATA(out, float));
        break;
    case RANDOM_UNIFORM_INT:
        ct__rand_uniform_i32(&rng, 0, (size_t)numel, ia, ib,
                             CT_DATA(out, int32_t));
        break;
    case RANDOM_GAUSSIAN:
        ct__rand_gaussian_f32(&rng, 0, (size_t)numel, a, b,
                              CT_DATA(out, float));
        break;
    case RANDOM_XAVIER:
        fan = numel / dims[0];
        scale = sqrtf(3.0f / (float)fan);
        ct__rand_uniform_f32(&rng, 0, (size_t)numel, -scale, scale,
                             CT_DATA(out, float));
        break;
    case RANDOM_MSRA:
        fan = numel / dims[1];
        scale = sqrtf(2.0f / (float)fan);
        ct__rand_gaussian_f32(&rng, 0, (size_t)numel, 0.0f, scale,
                              CT_DATA(out, float));
        break;
    }
    return CT_OK;
}

static int random_infer(const ct_op_t *op, const ct_shape_t *in,
                        ct_shape_t *out, ct_status_t *st)
{
    const struct random_fill_state *s = op->state;

    ct__fill_infer(op, &s->fs, s->dtype, in, out);
    /* min > max inputs change dim 0 at run time. */
    if (s->bounds_from_inputs)
        out[0].ndim = -1;
    return CT_OK;
}

static int uniform_init(ct_op_t *op, ct_status_t *st)
{
    return random_init(op, RANDOM_UNIFORM, st);
}

static int uniform_int_init(ct_op_t *op, ct_status_t *st)
{
    return random_init(op, RANDOM_UNIFORM_INT, st);
}

static int gaussian_init(ct_op_t *op, ct_status_t *st)
{
    return random_init(op, RANDOM_GAUSSIAN, st);
}

static int xavier_init(ct_op_t *op, ct_status_t *st)
{
    return random_init(op, RANDOM_XAVIER, st);
}

static int msra_init(ct_op_t *op, ct_status_t *st)
{
    return random_init(op, RANDOM_MSRA, st);
}

static const struct ct_arg_spec uniform_args[] = {
    CT__FILL_SHAPE_ARGS,
    {"min", CT_ARG_FLOAT, false},
    {"max", CT_ARG_FLOAT, false},
    {NULL, CT_ARG_ANY, false},
};

static const struct ct_arg_spec uniform_int_args[] = {
    CT__FILL_SHAPE_ARGS,
    {"min", CT_ARG_INT, false},
    {"max", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

static const struct ct_arg_spec gaussian_args[] = {
    CT__FILL_SHAPE_ARGS,
    {"mean", CT_ARG_FLOAT, false},
    {"std", CT_ARG_FLOAT, false},
    {NULL, CT_ARG_ANY, false},
};

static const struct ct_arg_spec fan_args[] = {
    CT__FILL_SHAPE_ARGS,
    {NULL, CT_ARG_ANY, false},
};

#define RANDOM_SCHEMA(sym, type, n_in_max, arg_list, init, what)               \
    const struct ct_op_schema sym = {                                          \
        .name = type,                                                          \
        .min_inputs = 0,                                                       \
        .max_inputs = n_in_max,                                                \
        .min_outputs = 1,                                                      \
        .max_outputs = 1,                                                      \
        .args = arg_list,                                                      \
        .state_size = sizeof(struct random_fill_state),                        \
        .init_cb = init,                                                       \
        .infer_cb = random_infer,                                              \
        .run_cb = random_run,                                                  \
        .flags = CT_OP_F_RANDOM,                                               \
        .doc = what,                                                           \
    }

RANDOM_SCHEMA(ct__op_uniform_fill, "UniformFill", 3, uniform_args, uniform_init,
              "Uniform floats in [min, max).");
RANDOM_SCHEMA(ct__op_uniform_int_fill, "UniformIntFill", 3, uniform_int_args,
              uniform_int_init, "Uniform int32 in [min, max].");
RANDOM_SCHEMA(ct__op_gaussian_fill, "GaussianFill", 1, gaussian_args,
              gaussian_init, "Normal floats with mean and std.");
RANDOM_SCHEMA(ct__op_xavier_fill, "XavierFill", 1, fan_args, xavier_init,
              "Uniform in +-sqrt(3 / fan_in), fan_in = numel / shape[0].");
RANDOM_SCHEMA(ct__op_msra_fill, "MSRAFill", 1, fan_args, msra_init,
              "Normal, std sqrt(2 / fan_out), fan_out = numel / shape[1].");
