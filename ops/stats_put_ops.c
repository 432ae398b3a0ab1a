/* AveragePut, IncrementPut and StdDevPut (Caffe2's caffe2/operators/
 * stats_put_ops.{h,cc}): put the first element of a tensor, scaled to an
 * int64, into a stat of the engine's registry.
 *
 * Input 0 `value`: INT32, FLOAT, UINT8, INT8, UINT16, INT16, INT64,
 * FLOAT16 or DOUBLE (anything else: CT_ENOTSUP "Unsupported type of
 * tensor: <dtype>"); only element 0 is read. No outputs, no in-place.
 * Arguments:
 *   stat_name         string, default the input's name. Caffe2 documents
 *                     it as `name` but reads `stat_name`; we read
 *                     `stat_name`, else `name`, else the input's name.
 *   magnitude_expand  int, default 1: the value is multiplied by it.
 *                     Must be positive (Caffe2 divides by it: 0 crashes).
 *   bound             int (bool), default 0: clamp instead of failing.
 *   default_value     float (field f), used for an empty tensor; without
 *                     it an empty tensor fails.
 * Keys (registered when the op is created, so they export as 0):
 *   AveragePut    <name>/stat_value/sum, <name>/stat_value/count
 *   IncrementPut  <name>/stat_value
 *   StdDevPut     <name>/stat_value/{sum,count,sumsqoffset,sumoffset}
 *
 * With B = INT64_MAX / magnitude_expand (integer division) and x the
 * element (or the default converted to the tensor's type):
 *   bound:     NaN -> 0; x <= -B -> INT64_MIN; x >= B -> INT64_MAX; else
 *              trunc(x * magnitude_expand).
 *   not bound: NaN -> "Input value cannot be NaN!"; trunc(|x|) >= B ->
 *              "Input value is too large for the given magnitude
 *              expansion!"; else trunc(x * magnitude_expand).
 * The product has Caffe2's types: float for FLOAT (the factor rounded to
 * float), double for DOUBLE, int64 for integers and half precision for
 * FLOAT16 (both factors and the product rounded to half, so a factor
 * above 65504 is inf). Unlike Caffe2, every conversion is checked: NaN is
 * tested before any cast, and a product that rounding pushed out of the
 * int64 range (or 0 * inf in half precision) is clamped (bound) or an
 * error, never UB. A default_value that does not fit an integer dtype is
 * CT_EINVAL.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cortado/stats.h"
#include "ops/op_impl.h"

enum put_kind { PUT_AVERAGE, PUT_INCREMENT, PUT_STDDEV };

struct put_state {
    enum put_kind kind;
    char *name; /* the stat's name (owned), for messages */
    int64_t magnitude;
    int64_t bound_b; /* INT64_MAX / magnitude */
    bool bound;
    bool has_default;
    float default_value;
    struct ct_stat_avg avg;
    struct ct_stat_exported inc;
    ct_stat_stddev_t *sd;
};

static const struct ct_arg_spec put_args[] = {
    {"stat_name", CT_ARG_STRING, false},     {"name", CT_ARG_STRING, false},
    {"magnitude_expand", CT_ARG_INT, false}, {"bound", CT_ARG_INT, false},
    {"default_value", CT_ARG_FLOAT, false},  {NULL, CT_ARG_ANY, false},
};

static int put_init(ct_op_t *op, enum put_kind kind, ct_status_t *st)
{
    struct put_state *s = op->state;
    ct_stat_registry_t *reg = ct_engine_stats(op->eng);
    const char *arg = ct__arg_has(op, "stat_name") ? "stat_name" : "name";
    const char *name, *nul;
    size_t len;
    int64_t bound;
    int rc;

    s->kind = kind;
    rc = ct__arg_string(op, arg, ct_op_input_name(op, 0), &name, &len, st);
    if (rc != CT_OK)
        return rc;
    if ((nul = memchr(name, '\0', len)) != NULL)
        return ct_status_setf(st, CT_EARG,
                              "Argument %s contains a NUL byte at offset %zu",
                              arg, (size_t)(nul - name));
    s->name = ct__strndup(name, len);
    if (s->name == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory for %s", arg);
    if ((rc = ct__arg_int(op, "magnitude_expand", 1, &s->magnitude, st)) !=
            CT_OK ||
        (rc = ct__arg_int(op, "bound", 0, &bound, st)) != CT_OK ||
        (rc = ct__arg_float(op, "default_value", 0.0f, &s->default_value,
                            st)) != CT_OK)
        return rc;
    if (s->magnitude <= 0)
        return ct_status_setf(st, CT_EARG,
                              "Argument magnitude_expand must be positive, "
                              "got %lld",
                              (long long)s->magnitude);
    s->bound = bound != 0;
    s->bound_b = INT64_MAX / s->magnitude;
    /* "Has a default" means the argument is present (with field f, which
     * the generic check enforces). */
    s->has_default = ct__arg_has(op, "default_value");
    switch (kind) {
    case PUT_AVERAGE:
        return ct_stat_avg_init(&s->avg, reg, s->name, "stat_value", st);
    case PUT_INCREMENT:
        return ct_stat_exported_init(&s->inc, reg, s->name, "stat_value", st);
    default:
        return ct_stat_stddev_new(reg, s->name, "stat_value", &s->sd, st);
    }
}

static int average_put_init(ct_op_t *op, ct_status_t *st)
{
    return put_init(op, PUT_AVERAGE, st);
}

static int increment_put_init(ct_op_t *op, ct_status_t *st)
{
    return put_init(op, PUT_INCREMENT, st);
}

static int stddev_put_init(ct_op_t *op, ct_status_t *st)
{
    return put_init(op, PUT_STDDEV, st);
}

static void put_fini(ct_op_t *op)
{
    struct put_state *s = op->state;

    ct_stat_stddev_free(s->sd);
    ct__free(s->name);
}

/* ---- value -> int64 ---- */

static int too_large(ct_op_ctx_t *ctx, const struct put_state *s, double x)
{
    return ct_op_fail(ctx, CT_EINVAL,
                      "Input value is too large for the given magnitude "
                      "expansion! (stat %s: value %g, magnitude_expand %lld, "
                      "|value| must be below %lld)",
                      s->name, x, (long long)s->magnitude,
                      (long long)s->bound_b);
}

static int is_nan(ct_op_ctx_t *ctx, const struct put_state *s)
{
    return ct_op_fail(ctx, CT_EINVAL, "Input value cannot be NaN! (stat %s)",
                      s->name);
}

/* trunc(x * m) for a finite-or-not floating product p: checked against
 * the int64 range (rounding in the product's precision can reach it). */
static int product_to_int(ct_op_ctx_t *ctx, const struct put_state *s, double x,
                          double p, int64_t *r)
{
    if (isnan(p)) {
        if (s->bound) {
            *r = 0;
            return CT_OK;
        }
        return is_nan(ctx, s);
    }
    if (p >= 0x1p63 || p < -0x1p63) {
        if (s->bound) {
            *r = p > 0 ? INT64_MAX : INT64_MIN;
            return CT_OK;
        }
        return too_large(ctx, s, x);
    }
    *r = (int64_t)p;
    return CT_OK;
}

/* x is the value in its own precision, widened exactly to double (every
 * float and half is a double); xb = x compared against B in that
 * precision (Caffe2 converts B to the value's type for the comparison). */
static int put_floating(ct_op_ctx_t *ctx, const struct put_state *s,
                        ct_dtype_t dt, double x, int64_t *r)
{
    double neg_b, pos_b, t, p;

    if (dt == CT_DTYPE_F64) {
        pos_b = (double)s->bound_b;
    } else {
        /* float and half compare as float. */
        pos_b = (double)(float)s->bound_b;
    }
    neg_b = -pos_b;
    if (s->bound) {
        if (isnan(x)) {
            *r = 0;
            return CT_OK;
        }
        if (x <= neg_b) {
            *r = INT64_MIN;
            return CT_OK;
        }
        if (x >= pos_b) {
            *r = INT64_MAX;
            return CT_OK;
        }
    } else {
        if (isnan(x))
            return is_nan(ctx, s);
        /* Caffe2: |(int64)x| < B, with the cast made safe first. */
        t = trunc(fabs(x));
        if (t >= 0x1p63 || (int64_t)t >= s->bound_b)
            return too_large(ctx, s, x);
    }
    switch (dt) {
    case CT_DTYPE_F64:
        p = x * (double)s->magnitude;
        break;
    case CT_DTYPE_F32:
        p = (double)((float)x * (float)s->magnitude);
        break;
    default: /* F16: Half * Half, computed in float and rounded to half */
        p = (double)ct_f16_to_f32(ct_f32_to_f16(
            (float)x * ct_f16_to_f32(ct_f32_to_f16((float)s->magnitude))));
        break;
    }
    return product_to_int(ctx, s, x, p, r);
}

static int put_integer(ct_op_ctx_t *ctx, const struct put_state *s, int64_t x,
                       int64_t *r)
{
    int64_t b = s->bound_b;

    if (x <= -b || x >= b) {
        if (!s->bound)
            return too_large(ctx, s, (double)x);
        *r = x <= -b ? INT64_MIN : INT64_MAX;
        return CT_OK;
    }
    *r = x * s->magnitude; /* |x| < INT64_MAX / m: no overflow */
    return CT_OK;
}

/* The default value converted to integer dtype dt, checked. */
static int default_integer(ct_op_ctx_t *ctx, const struct put_state *s,
                           ct_dtype_t dt, int64_t *x)
{
    double d = (double)s->default_value, lo, hi;

    switch (dt) {
    case CT_DTYPE_I8:
        lo = INT8_MIN, hi = INT8_MAX;
        break;
    case CT_DTYPE_U8:
        lo = 0, hi = UINT8_MAX;
        break;
    case CT_DTYPE_I16:
        lo = INT16_MIN, hi = INT16_MAX;
        break;
    case CT_DTYPE_U16:
        lo = 0, hi = UINT16_MAX;
        break;
    case CT_DTYPE_I32:
        lo = INT32_MIN, hi = INT32_MAX;
        break;
    default:
        lo = -0x1p63, hi = 0x1p63;
        break;
    }
    d = trunc(d);
    if (!(d >= lo && (dt == CT_DTYPE_I64 ? d < hi : d <= hi)))
        return ct_op_fail(ctx, CT_EINVAL,
                          "default_value %g does not fit the %s input of "
                          "stat %s",
                          (double)s->default_value, ct_dtype_name(dt), s->name);
    *x = (int64_t)d;
    return CT_OK;
}

/* The dtypes Caffe2's DispatchHelper accepts for the Put ops. */
static bool supported(ct_dtype_t dt)
{
    switch (dt) {
    case CT_DTYPE_I32:
    case CT_DTYPE_F32:
    case CT_DTYPE_U8:
    case CT_DTYPE_I8:
    case CT_DTYPE_U16:
    case CT_DTYPE_I16:
    case CT_DTYPE_I64:
    case CT_DTYPE_F16:
    case CT_DTYPE_F64:
        return true;
    default:
        return false;
    }
}

static int put_run(ct_op_ctx_t *ctx)
{
    const struct put_state *s = ctx->op->state;
    const ct_tensor_t *in;
    const void *p;
    ct_dtype_t dt;
    int64_t r = 0, xi = 0;
    double xf;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &in)) != CT_OK)
        return rc;
    dt = ct_tensor_dtype(in);
    if (!supported(dt))
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "Unsupported type of tensor: %s (input 0 \"%s\"; "
                          "INT32, FLOAT, UINT8, INT8, UINT16, INT16, INT64, "
                          "FLOAT16 or DOUBLE expected)",
                          ct_dtype_name(dt), ct_op_input_name(ctx->op, 0));
    /* Caffe2 tests the data pointer, which is null exactly when the
     * tensor has no elements. */
    p = ct_tensor_numel(in) > 0 ? ct_tensor_cdata(in) : NULL;
    if (p == NULL && !s->has_default)
        return ct_op_fail(ctx, CT_EINVAL,
                          "Default value must be provided when receiving "
                          "empty tensors for %s",
                          s->name);
    switch (dt) {
    case CT_DTYPE_F64:
        xf = p ? *(const double *)p : (double)s->default_value;
        rc = put_floating(ctx, s, dt, xf, &r);
        break;
    case CT_DTYPE_F32:
        xf = p ? (double)*(const float *)p : (double)s->default_value;
        rc = put_floating(ctx, s, dt, xf, &r);
        break;
    case CT_DTYPE_F16:
        xf = (double)ct_f16_to_f32(p ? *(const uint16_t *)p
                                     : ct_f32_to_f16(s->default_value));
        rc = put_floating(ctx, s, dt, xf, &r);
        break;
    default: /* the integer types */
        if (p == NULL) {
            rc = default_integer(ctx, s, dt, &xi);
        } else {
            rc = CT_OK;
            xi = dt == CT_DTYPE_I64   ? *(const int64_t *)p
                 : dt == CT_DTYPE_I32 ? *(const int32_t *)p
                 : dt == CT_DTYPE_I16 ? *(const int16_t *)p
                 : dt == CT_DTYPE_I8  ? *(const int8_t *)p
                 : dt == CT_DTYPE_U16 ? *(const uint16_t *)p
                                      : *(const uint8_t *)p;
        }
        if (rc == CT_OK)
            rc = put_integer(ctx, s, xi, &r);
        break;
    }
    if (rc != CT_OK)
        return rc;
    switch (s->kind) {
    case PUT_AVERAGE:
        ct_stat_avg_add(&s->avg, r);
        break;
    case PUT_INCREMENT:
        ct_stat_exported_add(&s->inc, r);
        break;
    default:
        ct_stat_stddev_add(s->sd, r);
        break;
    }
    return CT_OK;
}

#define PUT_SCHEMA(sym, type, init, what)                                      \
    const struct ct_op_schema sym = {                                          \
        .name = type,                                                          \
        .min_inputs = 1,                                                       \
        .max_inputs = 1,                                                       \
        .min_outputs = 0,                                                      \
        .max_outputs = 0,                                                      \
        .args = put_args,                                                      \
        .state_size = sizeof(struct put_state),                                \
        .init_cb = init,                                                       \
        .fini_cb = put_fini,                                                   \
        .run_cb = put_run,                                                     \
        .doc = what,                                                           \
    }

PUT_SCHEMA(ct__op_average_put, "AveragePut", average_put_init,
           "Adds a scaled value to <name>/stat_value/{sum,count}.");
PUT_SCHEMA(ct__op_increment_put, "IncrementPut", increment_put_init,
           "Adds a scaled value to <name>/stat_value.");
PUT_SCHEMA(ct__op_stddev_put, "StdDevPut", stddev_put_init,
           "Adds a scaled value to a standard-deviation stat.");
