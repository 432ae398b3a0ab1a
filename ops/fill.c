/* Deterministic fillers: ConstantFill and the GivenTensor*Fill family
 * (Caffe2's caffe2/operators/filler_op.{h,cc} and
 * given_tensor_byte_string_to_uint8_fill_op.h). The random fillers live in
 * ops/fill_random.c; the output-shape rules all fillers share are in
 * ops/fill_shape.c (see ops/fill.h).
 *
 * Inputs: none, or one whose dims (or, with input_as_shape, whose values)
 * give the output shape. Output 0: the filled tensor. Nothing runs in
 * place. Arguments are parsed and validated once, at op creation; a
 * static shape is checked against `values` there too.
 *
 * ConstantFill: out[i] = value.
 *   dtype  (i) TensorProto.DataType; FLOAT when absent, except that an
 *          absent dtype with `value` given takes the value's field: f gives
 *          FLOAT, i gives INT64 and anything else is CT_EARG (as Caffe2).
 *   value  read from the field the dtype implies: f for FLOAT and DOUBLE,
 *          i for BOOL and the integer types (must fit the type: Caffe2's
 *          lossless conversion rule; BOOL is value != 0), s for STRING.
 *          Default 0 / "".
 *   dtypes FLOAT, DOUBLE, BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16,
 *          STRING. UNDEFINED and other numbers (FLOAT16, BYTE) are CT_EARG,
 *          as in Caffe2.
 * GivenTensorFill (FLOAT), GivenTensorDoubleFill (DOUBLE),
 * GivenTensorBoolFill (BOOL), GivenTensorInt16Fill (INT16),
 * GivenTensorIntFill (INT32), GivenTensorInt64Fill (INT64),
 * GivenTensorStringFill (STRING): out = values, in row-major order.
 *   values floats for FLOAT and DOUBLE, ints for BOOL and the integer
 *          types (each must fit), strings for STRING. Absent = no values.
 *   dtype  GivenTensorFill only (the others ignore it, as Caffe2 does): an
 *          int or a type name ("DOUBLE", "int32", ...) choosing FLOAT,
 *          DOUBLE, BOOL, INT16, INT32, INT64 or STRING.
 *   The count of values must equal the output's element count (CT_EARG
 *   naming both).
 * GivenTensorByteStringToUInt8Fill: `values` holds exactly one byte string
 *   whose bytes become a UINT8 tensor. dtype, if given, must be STRING.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ops/fill.h"
#include "ops/op_impl.h"

/* ---- helpers ---- */

/* Name of a dtype number for messages; "no such dtype" when invalid. */
static const char *dtype_label(int32_t dt)
{
    return ct_dtype_valid(dt) ? ct_dtype_name((ct_dtype_t)dt) : "no such dtype";
}

/* Range of an integer dtype (BOOL excluded: any i is accepted). */
static void int_range(ct_dtype_t dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case CT_DTYPE_I8:
        *lo = INT8_MIN, *hi = INT8_MAX;
        break;
    case CT_DTYPE_U8:
        *lo = 0, *hi = UINT8_MAX;
        break;
    case CT_DTYPE_I16:
        *lo = INT16_MIN, *hi = INT16_MAX;
        break;
    case CT_DTYPE_U16:
        *lo = 0, *hi = UINT16_MAX;
        break;
    case CT_DTYPE_I32:
        *lo = INT32_MIN, *hi = INT32_MAX;
        break;
    default:
        *lo = INT64_MIN, *hi = INT64_MAX;
        break;
    }
}

/* Writes the string (p, len) into every element of out. */
static int fill_strings(ct_op_ctx_t *ctx, ct_tensor_t *out, const void *p,
                        size_t len)
{
    int64_t k, n = ct_tensor_numel(out);
    ct_status_t st;

    for (k = 0; k < n; k++) {
        if (ct_tensor_set_string(out, k, p, len, &st) != CT_OK)
            return ct_op_fail(ctx, st.code, "%s", st.msg);
    }
    return CT_OK;
}

/* ---- ConstantFill ---- */

struct constant_fill_state {
    struct ct__fill_shape fs;
    ct_dtype_t dtype;
    double f;      /* FLOAT, DOUBLE */
    int64_t i;     /* BOOL (0 or 1) and the integer dtypes */
    const char *s; /* STRING; borrowed from the def */
    size_t s_len;
};

static int constant_fill_dtype(const ct_op_t *op, int32_t *dt, ct_status_t *st)
{
    const Caffe2__Argument *value = ct__arg_find(op, "value");

    if (ct__arg_has(op, "dtype"))
        return ct__arg_int32(op, "dtype", CT_DTYPE_F32, dt, st);
    *dt = CT_DTYPE_F32;
    if (value == NULL || value->has_f)
        return CT_OK;
    if (value->has_i) {
        *dt = CT_DTYPE_I64;
        return CT_OK;
    }
    return ct_status_setf(st, CT_EARG,
                          "Argument 'value' is of unexpected type (%s): "
                          "without dtype it must be a float (f) or an int "
                          "(i)",
                          ct__fill_arg_field(value));
}

static int constant_fill_init(ct_op_t *op, ct_status_t *st)
{
    struct constant_fill_state *s = op->state;
    int32_t dt;
    int64_t lo, hi;
    float f;
    int rc;

    rc = ct__fill_parse_shape(op, &s->fs, st);
    if (rc == CT_OK)
        rc = constant_fill_dtype(op, &dt, st);
    if (rc != CT_OK)
        return rc;
    switch (dt) {
    case CT_DTYPE_F32:
    case CT_DTYPE_F64:
        rc = ct__arg_float(op, "value", 0.0f, &f, st);
        s->f = f;
        break;
    case CT_DTYPE_BOOL:
        rc = ct__arg_int(op, "value", 0, &s->i, st);
        s->i = s->i != 0;
        break;
    case CT_DTYPE_I8:
    case CT_DTYPE_I16:
    case CT_DTYPE_I32:
    case CT_DTYPE_I64:
    case CT_DTYPE_U8:
    case CT_DTYPE_U16:
        rc = ct__arg_int(op, "value", 0, &s->i, st);
        int_range((ct_dtype_t)dt, &lo, &hi);
        if (rc == CT_OK && (s->i < lo || s->i > hi))
            return ct_status_setf(
                st, CT_EARG, "Argument value=%lld does not fit dtype %s",
                (long long)s->i, ct_dtype_name((ct_dtype_t)dt));
        break;
    case CT_DTYPE_STRING:
        s->s = NULL;
        s->s_len = 0;
        rc = ct__arg_string(op, "value", "", &s->s, &s->s_len, st);
        if (rc == CT_OK && s->s == NULL)
            s->s_len = 0;
        break;
    case CT_DTYPE_UNDEFINED:
        return ct_status_setf(st, CT_EARG,
                              "ConstantFill op cannot have undefined 'dtype' "
                              "argument");
    default:
        return ct_status_setf(st, CT_EARG,
                              "Unexpected 'dtype' argument value: %d (%s); "
                              "ConstantFill takes FLOAT, DOUBLE, BOOL, INT8, "
                              "INT16, INT32, INT64, UINT8, UINT16 or STRING",
                              (int)dt, dtype_label(dt));
    }
    s->dtype = (ct_dtype_t)dt;
    return rc;
}

static int constant_fill_infer(const ct_op_t *op, const ct_shape_t *in,
                               ct_shape_t *out, ct_status_t *st)
{
    const struct constant_fill_state *s = op->state;

    ct__fill_infer(op, &s->fs, s->dtype, in, out);
    return CT_OK;
}

static int constant_fill_run(ct_op_ctx_t *ctx)
{
    const struct constant_fill_state *s = ctx->op->state;
    int64_t dims[CT_MAX_DIMS], k, n;
    ct_tensor_t *out;
    int ndim, rc;

    rc = ct__fill_dims(ctx, &s->fs, &ndim, dims);
    if (rc == CT_OK)
        rc = ct_op_output(ctx, 0, s->dtype, ndim, dims, &out);
    if (rc != CT_OK)
        return rc;
    n = ct_tensor_numel(out);
    switch (s->dtype) {
    case CT_DTYPE_F32: {
        float *y = CT_DATA(out, float), v = (float)s->f;
        for (k = 0; k < n; k++)
            y[k] = v;
        break;
    }
    case CT_DTYPE_F64: {
        double *y = CT_DATA(out, double);
        for (k = 0; k < n; k++)
            y[k] = s->f;
        break;
    }
    case CT_DTYPE_BOOL:
    case CT_DTYPE_I8:
    case CT_DTYPE_U8:
        if (n > 0)
            memset(ct_tensor_data(out), (int)(uint8_t)s->i, (size_t)n);
        break;
    case CT_DTYPE_I16:
    case CT_DTYPE_U16: {
        uint16_t *y = CT_DATA(out, uint16_t), v = (uint16_t)s->i;
        for (k = 0; k < n; k++)
            y[k] = v;
        break;
    }
    case CT_DTYPE_I32: {
        int32_t *y = CT_DATA(out, int32_t), v = (int32_t)s->i;
        for (k = 0; k < n; k++)
            y[k] = v;
        break;
    }
    case CT_DTYPE_I64: {
        int64_t *y = CT_DATA(out, int64_t);
        for (k = 0; k < n; k++)
            y[k] = s->i;
        break;
    }
    case CT_DTYPE_STRING:
        return fill_strings(ctx, out, s->s, s->s_len);
    default:
        return ct_op_fail(ctx, CT_ENOTSUP, "ConstantFill of dtype %s",
                          ct_dtype_name(s->dtype));
    }
    return CT_OK;
}

/* ---- GivenTensor*Fill ---- */

struct given_fill_state {
    struct ct__fill_shape fs;
    ct_dtype_t dtype;
    size_t n_values;
    const float *f;               /* FLOAT, DOUBLE: the floats field */
    const int64_t *i;             /* BOOL and integer dtypes: ints */
    const ProtobufCBinaryData *s; /* STRING: strings */
    const uint8_t *bytes;         /* UINT8: the one byte string */
};

/* Caffe2's cast::GetCastDataType: dtype given as an int or as a type
 * name. */
static int parse_cast_dtype(const ct_op_t *op, int32_t *dt, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, "dtype");
    ct_dtype_t parsed;
    char name[32];

    if (a == NULL || !a->has_s)
        return ct__arg_int32(op, "dtype", CT_DTYPE_F32, dt, st);
    if (a->s.len < sizeof(name)) {
        memcpy(name, a->s.data, a->s.len);
        name[a->s.len] = '\0';
        if (strcasecmp(name, "UNDEFINED") == 0) {
            *dt = CT_DTYPE_UNDEFINED;
            return CT_OK;
        }
        if (strlen(name) == a->s.len && ct_dtype_parse(name, &parsed) == 0) {
            *dt = (int32_t)parsed;
            return CT_OK;
        }
    }
    return ct_status_setf(st, CT_EARG, "Unknown 'dtype' argument: \"%.*s\"",
                          (int)(a->s.len > 64 ? 64 : a->s.len),
                          (const char *)a->s.data);
}

/* The `values` argument as the field the dtype reads. */
static int given_values(const ct_op_t *op, struct given_fill_state *s,
                        ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, "values");
    const char *want;
    int64_t lo, hi;
    size_t k, n = 0;

    switch (s->dtype) {
    case CT_DTYPE_F32:
    case CT_DTYPE_F64:
        want = "floats";
        if (a != NULL)
            s->f = a->floats, n = a->n_floats;
        break;
    case CT_DTYPE_STRING:
        want = "strings";
        if (a != NULL)
            s->s = a->strings, n = a->n_strings;
        break;
    case CT_DTYPE_U8:
        want = "strings";
        if (a != NULL && a->n_strings != 1)
            return ct_status_setf(st, CT_EARG,
                                  "Argument values must hold exactly one "
                                  "byte string, got %zu",
                                  a->n_strings);
        if (a != NULL)
            s->bytes = a->strings[0].data, n = a->strings[0].len;
        break;
    default:
        want = "ints";
        if (a != NULL)
            s->i = a->ints, n = a->n_ints;
        break;
    }
    if (a != NULL && n == 0 && strcmp(ct__fill_arg_field(a), "nothing") != 0 &&
        s->dtype != CT_DTYPE_U8)
        return ct_status_setf(st, CT_EARG,
                              "Argument values must be %s for dtype %s, got "
                              "%s",
                              want, ct_dtype_name(s->dtype),
                              ct__fill_arg_field(a));
    if (s->i != NULL && s->dtype != CT_DTYPE_BOOL) {
        int_range(s->dtype, &lo, &hi);
        for (k = 0; k < n; k++) {
            if (s->i[k] < lo || s->i[k] > hi)
                return ct_status_setf(st, CT_EARG,
                                      "Argument values[%zu] = %lld does not "
                                      "fit dtype %s",
                                      k, (long long)s->i[k],
                                      ct_dtype_name(s->dtype));
        }
    }
    s->n_values = n;
    return CT_OK;
}

static int check_count(size_t n_values, int ndim, const int64_t *dims,
                       ct_status_t *st)
{
    int64_t numel;
    char buf[160];
    int rc = ct_dims_numel(ndim, dims, &numel, st);

    if (rc != CT_OK)
        return rc;
    if ((uint64_t)numel != n_values)
        return ct_status_setf(st, CT_EARG,
                              "Argument values has %zu entries but the "
                              "output shape %s has %lld elements",
                              n_values,
                              ct_dims_str(ndim, dims, buf, sizeof(buf)),
                              (long long)numel);
    return CT_OK;
}

/* dflt: the dtype of the op. override: whether `dtype` may change it
 * (GivenTensorFill only). */
static int given_init(ct_op_t *op, ct_dtype_t dflt, bool override,
                      ct_status_t *st)
{
    struct given_fill_state *s = op->state;
    int32_t dt = (int32_t)dflt;
    int rc;

    rc = ct__fill_parse_shape(op, &s->fs, st);
    if (rc != CT_OK)
        return rc;
    if (override && ct__arg_has(op, "dtype")) {
        rc = parse_cast_dtype(op, &dt, st);
        if (rc != CT_OK)
            return rc;
        switch (dt) {
        case CT_DTYPE_F32:
        case CT_DTYPE_F64:
        case CT_DTYPE_BOOL:
        case CT_DTYPE_I16:
        case CT_DTYPE_I32:
        case CT_DTYPE_I64:
        case CT_DTYPE_STRING:
            break;
        case CT_DTYPE_UNDEFINED:
            return ct_status_setf(st, CT_EARG,
                                  "Cannot have undefined 'dtype' argument");
        default:
            return ct_status_setf(st, CT_EARG,
                                  "Unexpected 'dtype' argument value: %d "
                                  "(%s); GivenTensorFill takes FLOAT, DOUBLE, "
                                  "BOOL, INT16, INT32, INT64 or STRING",
                                  (int)dt, dtype_label(dt));
        }
    }
    s->dtype = (ct_dtype_t)dt;
    rc = given_values(op, s, st);
    if (rc == CT_OK && op->n_in == 0)
        rc = check_count(s->n_values, s->fs.n_shape, s->fs.shape, st);
    return rc;
}

static int given_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                       ct_status_t *st)
{
    const struct given_fill_state *s = op->state;

    ct__fill_infer(op, &s->fs, s->dtype, in, out);
    return CT_OK;
}

static int given_run(ct_op_ctx_t *ctx)
{
    const struct given_fill_state *s = ctx->op->state;
    int64_t dims[CT_MAX_DIMS], k, n;
    ct_tensor_t *out;
    ct_status_t st;
    int ndim, rc;

    rc = ct__fill_dims(ctx, &s->fs, &ndim, dims);
    if (rc != CT_OK)
        return rc;
    rc = check_count(s->n_values, ndim, dims, &st);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", st.msg);
    rc = ct_op_output(ctx, 0, s->dtype, ndim, dims, &out);
    if (rc != CT_OK)
        return rc;
    n = ct_tensor_numel(out);
    if (n == 0)
        return CT_OK;
    switch (s->dtype) {
    case CT_DTYPE_F32:
        memcpy(CT_DATA(out, float), s->f, (size_t)n * sizeof(float));
        break;
    case CT_DTYPE_F64:
        for (k = 0; k < n; k++)
            CT_DATA(out, double)[k] = s->f[k];
        break;
    case CT_DTYPE_BOOL:
        for (k = 0; k < n; k++)
            CT_DATA(out, uint8_t)[k] = s->i[k] != 0;
        break;
    case CT_DTYPE_I16:
        for (k = 0; k < n; k++)
            CT_DATA(out, int16_t)[k] = (int16_t)s->i[k];
        break;
    case CT_DTYPE_I32:
        for (k = 0; k < n; k++)
            CT_DATA(out, int32_t)[k] = (int32_t)s->i[k];
        break;
    case CT_DTYPE_I64:
        memcpy(CT_DATA(out, int64_t), s->i, (size_t)n * sizeof(int64_t));
        break;
    case CT_DTYPE_U8:
        memcpy(CT_DATA(out, uint8_t), s->bytes, (size_t)n);
        break;
    case CT_DTYPE_STRING:
        for (k = 0; k < n; k++) {
            if (ct_tensor_set_string(out, k, (const char *)s->s[k].data,
                                     s->s[k].len, &st) != CT_OK)
                return ct_op_fail(ctx, st.code, "%s", st.msg);
        }
        break;
    default:
        return ct_op_fail(ctx, CT_ENOTSUP, "GivenTensorFill of dtype %s",
                          ct_dtype_name(s->dtype));
    }
    return CT_OK;
}

static int given_f32_init(ct_op_t *op, ct_status_t *st)
{
    return given_init(op, CT_DTYPE_F32, true, st);
}

static int given_f64_init(ct_op_t *op, ct_status_t *st)
{
    return given_init(op, CT_DTYPE_F64, false, st);
}

static int given_bool_init(ct_op_t *op, ct_status_t *st)
{
    return given_init(op, CT_DTYPE_BOOL, false, st);
}

static int given_i16_init(ct_op_t *op, ct_status_t *st)
{
    return given_init(op, CT_DTYPE_I16, false, st);
}

static int given_i32_init(ct_op_t *op, ct_status_t *st)
{
    return given_init(op, CT_DTYPE_I32, false, st);
}

static int given_i64_init(ct_op_t *op, ct_status_t *st)
{
    return given_init(op, CT_DTYPE_I64, false, st);
}

static int given_string_init(ct_op_t *op, ct_status_t *st)
{
    return given_init(op, CT_DTYPE_STRING, false, st);
}

static int given_bytes_init(ct_op_t *op, ct_status_t *st)
{
    int32_t dt;
    int rc;

    if (ct__arg_has(op, "dtype")) {
        rc = parse_cast_dtype(op, &dt, st);
        if (rc != CT_OK)
            return rc;
        if (dt == CT_DTYPE_UNDEFINED)
            return ct_status_setf(st, CT_EARG,
                                  "Cannot have undefined 'dtype' argument");
        if (dt != CT_DTYPE_STRING && dt != CT_DTYPE_U8)
            return ct_status_setf(st, CT_EARG,
                                  "Unexpected 'dtype' argument value: %d "
                                  "(%s); GivenTensorByteStringToUInt8Fill "
                                  "takes STRING",
                                  (int)dt, dtype_label(dt));
    }
    return given_init(op, CT_DTYPE_U8, false, st);
}

/* ---- schemas ---- */

static const struct ct_arg_spec constant_fill_args[] = {
    CT__FILL_SHAPE_ARGS,
    {"dtype", CT_ARG_INT, false},
    {"value", CT_ARG_ANY, false},
    {NULL, CT_ARG_ANY, false},
};

/* `dtype` is an int or a name for GivenTensorFill; the others ignore it. */
static const struct ct_arg_spec given_fill_args[] = {
    CT__FILL_SHAPE_ARGS,
    {"dtype", CT_ARG_ANY, false},
    {"values", CT_ARG_ANY, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_constant_fill = {
    .name = "ConstantFill",
    .min_inputs = 0,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = constant_fill_args,
    .state_size = sizeof(struct constant_fill_state),
    .init_cb = constant_fill_init,
    .infer_cb = constant_fill_infer,
    .run_cb = constant_fill_run,
    .doc = "Fills the output with `value` of type `dtype`.",
};

#define GIVEN_SCHEMA(sym, type, init, what)                                    \
    const struct ct_op_schema sym = {                                          \
        .name = type,                                                          \
        .min_inputs = 0,                                                       \
        .max_inputs = 1,                                                       \
        .min_outputs = 1,                                                      \
        .max_outputs = 1,                                                      \
        .args = given_fill_args,                                               \
        .state_size = sizeof(struct given_fill_state),                         \
        .init_cb = init,                                                       \
        .infer_cb = given_infer,                                               \
        .run_cb = given_run,                                                   \
        .doc = "Fills the output with the " what " in `values`.",              \
    }

GIVEN_SCHEMA(ct__op_given_tensor_fill, "GivenTensorFill", given_f32_init,
             "floats (or the dtype's values)");
GIVEN_SCHEMA(ct__op_given_tensor_double_fill, "GivenTensorDoubleFill",
             given_f64_init, "floats, as doubles,");
GIVEN_SCHEMA(ct__op_given_tensor_bool_fill, "GivenTensorBoolFill",
             given_bool_init, "ints, as bools,");
GIVEN_SCHEMA(ct__op_given_tensor_int16_fill, "GivenTensorInt16Fill",
             given_i16_init, "ints, as int16,");
GIVEN_SCHEMA(ct__op_given_tensor_int_fill, "GivenTensorIntFill", given_i32_init,
             "ints, as int32,");
GIVEN_SCHEMA(ct__op_given_tensor_int64_fill, "GivenTensorInt64Fill",
             given_i64_init, "ints");
GIVEN_SCHEMA(ct__op_given_tensor_string_fill, "GivenTensorStringFill",
             given_string_init, "strings");
GIVEN_SCHEMA(ct__op_given_tensor_byte_string_to_uint8_fill,
             "GivenTensorByteStringToUInt8Fill", given_bytes_init,
             "bytes of the one string");
