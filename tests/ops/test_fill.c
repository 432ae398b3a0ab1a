/* Tests for ops/fill.c and ops/fill_shape.c: ConstantFill and
 * GivenTensor*Fill over every dtype against a naive reference (case
 * tables), the shape rules every filler shares (shape, extra_shape,
 * input_as_shape, 0-d and empty shapes), every argument and input error
 * with its message, shape inference (white-box through ops/op_impl.h), the
 * memory budget and allocation failures. The random fillers are in
 * test_fill_random.c, the generator in test_rand.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_impl.h"
#include "test_util.h"

/* ---- fixtures ---- */

#include "fill_fixture.h"

static void assert_string(const ct_tensor_t *t, int64_t k, const char *want)
{
    const ct_str_t *s = (const ct_str_t *)ct_tensor_cdata(t) + k;

    assert_int_equal(s->len, strlen(want));
    if (s->len > 0)
        assert_memory_equal(s->data, want, s->len);
}

/* Runs op, asserts success, frees op and returns blob `out`. */
static ct_tensor_t *run_ok(struct tu_env *e, Caffe2__OperatorDef *op,
                           const char *out)
{
    ct_status_t st;
    int rc = tu_run_op(e->ws, op, &st);

    if (rc != CT_OK)
        fail_msg("%s failed: %s", op->type, st.msg);
    tu_op_free(op);
    return tu_fetch(e->ws, out);
}

/* Creates op (white-box) for shape inference. */
static ct_op_t *create_op(struct tu_env *e, const Caffe2__OperatorDef *def)
{
    ct_status_t st;
    ct_op_t *op;

    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create %s: %s", def->type, st.msg);
    return op;
}

static ct_shape_t shape_of(ct_dtype_t dt, int nd, const int64_t *d)
{
    ct_shape_t s;

    memset(&s, 0, sizeof(s));
    s.dtype = dt;
    s.ndim = nd;
    if (nd > 0)
        memcpy(s.dims, d, (size_t)nd * sizeof(int64_t));
    return s;
}

static const int64_t dims_23[] = {2, 3};

/* ---- the ConstantFill case table ---- */

#define ABSENT (-1)

struct constant_case {
    const char *what;
    int dtype;     /* ABSENT: no dtype argument */
    char field;    /* value given as 'f', 'i', 's'; 0: absent */
    double v;      /* f or i value */
    const char *s; /* s value; also the expected string */
    ct_dtype_t want;
    double want_v;
};

static const struct constant_case constant_cases[] = {
    {"no args", ABSENT, 0, 0, NULL, CT_DTYPE_F32, 0},
    {"f value infers FLOAT", ABSENT, 'f', 2.5, NULL, CT_DTYPE_F32, 2.5},
    {"i value infers INT64", ABSENT, 'i', -7, NULL, CT_DTYPE_I64, -7},
    {"FLOAT", CT_DTYPE_F32, 'f', -1.25, NULL, CT_DTYPE_F32, -1.25},
    {"FLOAT default", CT_DTYPE_F32, 0, 0, NULL, CT_DTYPE_F32, 0},
    {"DOUBLE", CT_DTYPE_F64, 'f', 0.375, NULL, CT_DTYPE_F64, 0.375},
    {"BOOL 3 is true", CT_DTYPE_BOOL, 'i', 3, NULL, CT_DTYPE_BOOL, 1},
    {"BOOL 0", CT_DTYPE_BOOL, 'i', 0, NULL, CT_DTYPE_BOOL, 0},
    {"INT8", CT_DTYPE_I8, 'i', -128, NULL, CT_DTYPE_I8, -128},
    {"INT16", CT_DTYPE_I16, 'i', -300, NULL, CT_DTYPE_I16, -300},
    {"INT32", CT_DTYPE_I32, 'i', 123456, NULL, CT_DTYPE_I32, 123456},
    {"INT64", CT_DTYPE_I64, 'i', 1e15, NULL, CT_DTYPE_I64, 1e15},
    {"UINT8", CT_DTYPE_U8, 'i', 255, NULL, CT_DTYPE_U8, 255},
    {"UINT16", CT_DTYPE_U16, 'i', 65535, NULL, CT_DTYPE_U16, 65535},
    {"STRING", CT_DTYPE_STRING, 's', 0, "caffe", CT_DTYPE_STRING, 0},
    {"STRING default", CT_DTYPE_STRING, 0, 0, "", CT_DTYPE_STRING, 0},
};

/* Shapes every case is run with: 2-D, 0-d, empty, empty in the middle. */
static const struct {
    int ndim;
    int64_t dims[3];
} constant_shapes[] = {
    {2, {2, 3}}, {0, {0}}, {1, {0}}, {3, {2, 0, 3}}, {1, {1000}},
};

static Caffe2__OperatorDef *constant_op(const struct constant_case *c, int ndim,
                                        const int64_t *dims)
{
    Caffe2__OperatorDef *op = tu_op("ConstantFill", "", "Y");

    tu_arg_ints(op, "shape", (size_t)ndim, dims);
    if (c->dtype != ABSENT)
        tu_arg_i(op, "dtype", c->dtype);
    if (c->field == 'f')
        tu_arg_f(op, "value", (float)c->v);
    else if (c->field == 'i')
        tu_arg_i(op, "value", (int64_t)c->v);
    else if (c->field == 's')
        tu_arg_s(op, "value", c->s);
    return op;
}

static void test_constant_fill_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t c, s;

    for (c = 0; c < sizeof(constant_cases) / sizeof(constant_cases[0]); c++) {
        const struct constant_case *cc = &constant_cases[c];
        for (s = 0; s < sizeof(constant_shapes) / sizeof(constant_shapes[0]);
             s++) {
            int nd = constant_shapes[s].ndim;
            const int64_t *d = constant_shapes[s].dims;
            ct_tensor_t *t = run_ok(e, constant_op(cc, nd, d), "Y");
            int64_t k, numel = 1;
            int i;

            for (i = 0; i < nd; i++)
                numel *= d[i];
            assert_int_equal(ct_tensor_dtype(t), cc->want);
            assert_shape(t, nd, d);
            assert_int_equal(ct_tensor_numel(t), numel);
            for (k = 0; k < numel; k++) {
                if (cc->want == CT_DTYPE_STRING)
                    assert_string(t, k, cc->s);
                else if (elem(t, k) != cc->want_v)
                    fail_msg("case %s shape %zu elem %lld: got %g want %g",
                             cc->what, s, (long long)k, elem(t, k), cc->want_v);
            }
        }
    }
}

static void test_constant_fill_input_dims_plus_extra_shape_used(void **state)
{
    struct tu_env *e = *state;
    const int64_t in_dims[] = {3, 4}, extra[] = {2}, want[] = {3, 4, 2};
    Caffe2__OperatorDef *op = tu_op("ConstantFill", "X", "Y");
    ct_tensor_t *t;
    int64_t k;

    tu_feed(e->ws, "X", CT_DTYPE_STRING, 2, in_dims,
            (const char *const[]){"a", "b", "c", "d", "e", "f", "g", "h", "i",
                                  "j", "k", "l"});
    tu_arg_ints(op, "extra_shape", 1, extra);
    tu_arg_f(op, "value", 4.0f);
    t = run_ok(e, op, "Y");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_F32);
    assert_shape(t, 3, want);
    for (k = 0; k < 24; k++)
        assert_true(elem(t, k) == 4.0);
}

static void test_constant_fill_input_as_shape_reads_int64_values(void **state)
{
    struct tu_env *e = *state;
    const int64_t one[] = {3}, vals[] = {2, 0, 5}, extra[] = {1};
    const int64_t want[] = {2, 0, 5, 1};
    Caffe2__OperatorDef *op = tu_op("ConstantFill", "S", "Y");
    ct_tensor_t *t;

    tu_feed(e->ws, "S", CT_DTYPE_I64, 1, one, vals);
    tu_arg_i(op, "input_as_shape", 1);
    tu_arg_ints(op, "extra_shape", 1, extra);
    tu_arg_i(op, "dtype", CT_DTYPE_I32);
    tu_arg_i(op, "value", 9);
    t = run_ok(e, op, "Y");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_I32);
    assert_shape(t, 4, want);
}

static void test_constant_fill_input_as_shape_reads_int32_values(void **state)
{
    struct tu_env *e = *state;
    const int64_t one[] = {2};
    const int32_t vals[] = {4, 3};
    const int64_t want[] = {4, 3};
    Caffe2__OperatorDef *op = tu_op("ConstantFill", "S", "Y");
    ct_tensor_t *t;
    int64_t k;

    tu_feed(e->ws, "S", CT_DTYPE_I32, 1, one, vals);
    tu_arg_i(op, "input_as_shape", 1);
    tu_arg_f(op, "value", -2.0f);
    t = run_ok(e, op, "Y");
    assert_shape(t, 2, want);
    for (k = 0; k < 12; k++)
        assert_true(elem(t, k) == -2.0);
}

static void test_constant_fill_rerun_string_output_replaces_values(void **state)
{
    struct tu_env *e = *state;
    const struct constant_case a = {"a",           CT_DTYPE_STRING, 's', 0,
                                    "first value", CT_DTYPE_STRING, 0};
    const struct constant_case b = {"b", CT_DTYPE_STRING, 's', 0,
                                    "x", CT_DTYPE_STRING, 0};
    ct_tensor_t *t;

    t = run_ok(e, constant_op(&a, 2, dims_23), "Y");
    assert_string(t, 5, "first value");
    t = run_ok(e, constant_op(&b, 2, dims_23), "Y");
    assert_string(t, 0, "x");
    assert_string(t, 5, "x");
}

/* ---- the GivenTensor*Fill case table ---- */

struct given_case {
    const char *type;
    int dtype;              /* GivenTensorFill's dtype; ABSENT: none */
    const char *dtype_name; /* dtype given as a name instead */
    char field;             /* values as 'f' floats, 'i' ints, 's' strings */
    size_t n;
    double f[6];
    int64_t i[6];
    const char *s[6];
    int ndim;
    int64_t dims[3];
    ct_dtype_t want;
};

static const struct given_case given_cases[] = {
    {"GivenTensorFill",
     ABSENT,
     NULL,
     'f',
     6,
     {1, -2, 3.5f, 4, 5, 1e-3f},
     {0},
     {NULL},
     2,
     {2, 3},
     CT_DTYPE_F32},
    {"GivenTensorFill",
     ABSENT,
     NULL,
     'f',
     1,
     {7},
     {0},
     {NULL},
     0,
     {0},
     CT_DTYPE_F32},
    {"GivenTensorFill",
     ABSENT,
     NULL,
     0,
     0,
     {0},
     {0},
     {NULL},
     2,
     {0, 3},
     CT_DTYPE_F32},
    {"GivenTensorFill",
     CT_DTYPE_F64,
     NULL,
     'f',
     3,
     {0.5, -0.25, 8},
     {0},
     {NULL},
     1,
     {3},
     CT_DTYPE_F64},
    {"GivenTensorFill",
     ABSENT,
     "int32",
     'i',
     4,
     {0},
     {1, -2, 3, INT32_MAX},
     {NULL},
     2,
     {2, 2},
     CT_DTYPE_I32},
    {"GivenTensorFill",
     ABSENT,
     "INT64",
     'i',
     2,
     {0},
     {INT64_MIN, 5},
     {NULL},
     1,
     {2},
     CT_DTYPE_I64},
    {"GivenTensorFill",
     CT_DTYPE_BOOL,
     NULL,
     'i',
     3,
     {0},
     {0, 1, 5},
     {NULL},
     1,
     {3},
     CT_DTYPE_BOOL},
    {"GivenTensorFill",
     CT_DTYPE_I16,
     NULL,
     'i',
     2,
     {0},
     {-32768, 32767},
     {NULL},
     1,
     {2},
     CT_DTYPE_I16},
    {"GivenTensorFill",
     CT_DTYPE_STRING,
     NULL,
     's',
     2,
     {0},
     {0},
     {"ab", ""},
     1,
     {2},
     CT_DTYPE_STRING},
    {"GivenTensorDoubleFill",
     ABSENT,
     NULL,
     'f',
     2,
     {1.5, -3},
     {0},
     {NULL},
     1,
     {2},
     CT_DTYPE_F64},
    {"GivenTensorBoolFill",
     ABSENT,
     NULL,
     'i',
     4,
     {0},
     {0, 2, 0, 1},
     {NULL},
     2,
     {2, 2},
     CT_DTYPE_BOOL},
    {"GivenTensorInt16Fill",
     ABSENT,
     NULL,
     'i',
     3,
     {0},
     {-5, 0, 300},
     {NULL},
     1,
     {3},
     CT_DTYPE_I16},
    {"GivenTensorIntFill",
     ABSENT,
     NULL,
     'i',
     6,
     {0},
     {INT32_MIN, -1, 0, 1, 2, INT32_MAX},
     {NULL},
     3,
     {1, 2, 3},
     CT_DTYPE_I32},
    {"GivenTensorIntFill",
     ABSENT,
     NULL,
     0,
     0,
     {0},
     {0},
     {NULL},
     1,
     {0},
     CT_DTYPE_I32},
    {"GivenTensorInt64Fill",
     ABSENT,
     NULL,
     'i',
     3,
     {0},
     {INT64_MAX, INT64_MIN, 42},
     {NULL},
     1,
     {3},
     CT_DTYPE_I64},
    {"GivenTensorStringFill",
     ABSENT,
     NULL,
     's',
     3,
     {0},
     {0},
     {"x", "", "longer string"},
     1,
     {3},
     CT_DTYPE_STRING},
    {"GivenTensorByteStringToUInt8Fill",
     ABSENT,
     NULL,
     's',
     1,
     {0},
     {0},
     {"AZ~"},
     1,
     {3},
     CT_DTYPE_U8},
};

static Caffe2__OperatorDef *given_op(const struct given_case *c)
{
    Caffe2__OperatorDef *op = tu_op(c->type, "", "Y");
    float f[6];
    size_t k;

    tu_arg_ints(op, "shape", (size_t)c->ndim, c->dims);
    if (c->dtype != ABSENT)
        tu_arg_i(op, "dtype", c->dtype);
    if (c->dtype_name != NULL)
        tu_arg_s(op, "dtype", c->dtype_name);
    for (k = 0; k < c->n; k++)
        f[k] = (float)c->f[k];
    if (c->field == 'f')
        tu_arg_floats(op, "values", c->n, f);
    else if (c->field == 'i')
        tu_arg_ints(op, "values", c->n, c->i);
    else if (c->field == 's')
        tu_arg_strings(op, "values", c->n, c->s);
    return op;
}

static void check_given(const struct given_case *c, const ct_tensor_t *t)
{
    int64_t k, n = ct_tensor_numel(t);

    assert_int_equal(ct_tensor_dtype(t), c->want);
    assert_shape(t, c->ndim, c->dims);
    for (k = 0; k < n; k++) {
        switch (c->want) {
        case CT_DTYPE_F32:
            assert_true(elem(t, k) == (double)(float)c->f[k]);
            break;
        case CT_DTYPE_F64:
            /* Caffe2 reads double values from the floats field. */
            assert_true(elem(t, k) == (double)(float)c->f[k]);
            break;
        case CT_DTYPE_BOOL:
            assert_true(elem(t, k) == (c->i[k] != 0));
            break;
        case CT_DTYPE_I64:
            assert_true(CT_CDATA(t, int64_t)[k] == c->i[k]);
            break;
        case CT_DTYPE_STRING:
            assert_string(t, k, c->s[k]);
            break;
        case CT_DTYPE_U8:
            assert_true(elem(t, k) == (double)(uint8_t)c->s[0][k]);
            break;
        default:
            assert_true(elem(t, k) == (double)c->i[k]);
            break;
        }
    }
}

static void test_given_tensor_fill_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t c;

    for (c = 0; c < sizeof(given_cases) / sizeof(given_cases[0]); c++) {
        ct_tensor_t *t = run_ok(e, given_op(&given_cases[c]), "Y");
        check_given(&given_cases[c], t);
    }
}

static void
test_given_tensor_fill_input_shape_counts_values_at_run(void **state)
{
    struct tu_env *e = *state;
    const int64_t dims[] = {3, 1};
    const int64_t vals[] = {4, 5, 6};
    Caffe2__OperatorDef *op = tu_op("GivenTensorInt64Fill", "X", "Y");
    ct_tensor_t *t;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, dims, NULL);
    tu_arg_ints(op, "values", 3, vals);
    t = run_ok(e, op, "Y");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_I64);
    assert_shape(t, 2, dims);
    assert_true(CT_CDATA(t, int64_t)[2] == 6);
}

/* ---- the error table ---- */

struct err_case {
    const char *what;
    Caffe2__OperatorDef *(*make)(struct tu_env *e);
    int code;
    const char *needle;
};

static Caffe2__OperatorDef *cf(void)
{
    return tu_op("ConstantFill", "", "Y");
}

static Caffe2__OperatorDef *e_undefined_dtype(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_i(op, "dtype", 0);
    return op;
}

static Caffe2__OperatorDef *e_float16_dtype(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_i(op, "dtype", CT_DTYPE_F16);
    return op;
}

static Caffe2__OperatorDef *e_bad_dtype_number(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_i(op, "dtype", 99);
    return op;
}

static Caffe2__OperatorDef *e_string_value_no_dtype(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_s(op, "value", "abc");
    return op;
}

static Caffe2__OperatorDef *e_float_value_int_dtype(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_i(op, "dtype", CT_DTYPE_I32);
    tu_arg_f(op, "value", 1.5f);
    return op;
}

static Caffe2__OperatorDef *e_value_out_of_range(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_i(op, "dtype", CT_DTYPE_U8);
    tu_arg_i(op, "value", 300);
    return op;
}

static Caffe2__OperatorDef *e_negative_shape(struct tu_env *e)
{
    const int64_t d[] = {2, -3};
    Caffe2__OperatorDef *op = cf();
    tu_arg_ints(op, "shape", 2, d);
    return op;
}

static Caffe2__OperatorDef *e_scalar_shape(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_i(op, "shape", 4);
    return op;
}

static Caffe2__OperatorDef *e_too_many_dims(struct tu_env *e)
{
    int64_t d[CT_MAX_DIMS + 1];
    Caffe2__OperatorDef *op = cf();
    size_t k;

    for (k = 0; k < CT_MAX_DIMS + 1; k++)
        d[k] = 1;
    tu_arg_ints(op, "shape", CT_MAX_DIMS + 1, d);
    return op;
}

static Caffe2__OperatorDef *e_shape_and_input(struct tu_env *e)
{
    Caffe2__OperatorDef *op = tu_op("ConstantFill", "X", "Y");
    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, dims_23, NULL);
    tu_arg_ints(op, "shape", 2, dims_23);
    return op;
}

static Caffe2__OperatorDef *e_extra_shape_no_input(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_ints(op, "extra_shape", 2, dims_23);
    return op;
}

static Caffe2__OperatorDef *e_input_as_shape_no_input(struct tu_env *e)
{
    Caffe2__OperatorDef *op = cf();
    tu_arg_i(op, "input_as_shape", 1);
    return op;
}

static Caffe2__OperatorDef *as_shape_op(struct tu_env *e, ct_dtype_t dt,
                                        int ndim, const int64_t *dims,
                                        const void *data)
{
    Caffe2__OperatorDef *op = tu_op("ConstantFill", "S", "Y");
    tu_feed(e->ws, "S", dt, ndim, dims, data);
    tu_arg_i(op, "input_as_shape", 1);
    return op;
}

static Caffe2__OperatorDef *e_as_shape_float(struct tu_env *e)
{
    const int64_t d[] = {2};
    const float v[] = {2, 3};
    return as_shape_op(e, CT_DTYPE_F32, 1, d, v);
}

static Caffe2__OperatorDef *e_as_shape_2d(struct tu_env *e)
{
    const int64_t v[] = {2, 3, 4, 5, 6, 7};
    return as_shape_op(e, CT_DTYPE_I64, 2, dims_23, v);
}

static Caffe2__OperatorDef *e_as_shape_empty(struct tu_env *e)
{
    const int64_t d[] = {0};
    return as_shape_op(e, CT_DTYPE_I64, 1, d, NULL);
}

static Caffe2__OperatorDef *e_as_shape_negative(struct tu_env *e)
{
    const int64_t d[] = {2}, v[] = {3, -2};
    return as_shape_op(e, CT_DTYPE_I64, 1, d, v);
}

static Caffe2__OperatorDef *e_two_inputs(struct tu_env *e)
{
    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    return tu_op("ConstantFill", "X,X", "Y");
}

static Caffe2__OperatorDef *e_given_count(struct tu_env *e)
{
    const float v[] = {1, 2, 3, 4, 5};
    Caffe2__OperatorDef *op = tu_op("GivenTensorFill", "", "Y");
    tu_arg_ints(op, "shape", 2, dims_23);
    tu_arg_floats(op, "values", 5, v);
    return op;
}

static Caffe2__OperatorDef *e_given_count_from_input(struct tu_env *e)
{
    const int64_t d[] = {2, 2};
    const char *const v[] = {"a", "b", "c"};
    Caffe2__OperatorDef *op = tu_op("GivenTensorStringFill", "X", "Y");
    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, d, NULL);
    tu_arg_strings(op, "values", 3, v);
    return op;
}

static Caffe2__OperatorDef *e_given_int_range(struct tu_env *e)
{
    const int64_t d[] = {2}, v[] = {1, (int64_t)1 << 40};
    Caffe2__OperatorDef *op = tu_op("GivenTensorIntFill", "", "Y");
    tu_arg_ints(op, "shape", 1, d);
    tu_arg_ints(op, "values", 2, v);
    return op;
}

static Caffe2__OperatorDef *e_given_wrong_field(struct tu_env *e)
{
    const int64_t d[] = {2};
    const float v[] = {1, 2};
    Caffe2__OperatorDef *op = tu_op("GivenTensorIntFill", "", "Y");
    tu_arg_ints(op, "shape", 1, d);
    tu_arg_floats(op, "values", 2, v);
    return op;
}

static Caffe2__OperatorDef *e_given_bad_dtype(struct tu_env *e)
{
    Caffe2__OperatorDef *op = tu_op("GivenTensorFill", "", "Y");
    tu_arg_i(op, "dtype", CT_DTYPE_F16);
    return op;
}

static Caffe2__OperatorDef *e_given_undefined_dtype(struct tu_env *e)
{
    Caffe2__OperatorDef *op = tu_op("GivenTensorFill", "", "Y");
    tu_arg_s(op, "dtype", "undefined");
    return op;
}

static Caffe2__OperatorDef *e_given_unknown_dtype_name(struct tu_env *e)
{
    Caffe2__OperatorDef *op = tu_op("GivenTensorFill", "", "Y");
    tu_arg_s(op, "dtype", "FLOAT17");
    return op;
}

static Caffe2__OperatorDef *e_bytes_two_strings(struct tu_env *e)
{
    const char *const v[] = {"ab", "cd"};
    Caffe2__OperatorDef *op =
        tu_op("GivenTensorByteStringToUInt8Fill", "", "Y");
    tu_arg_strings(op, "values", 2, v);
    return op;
}

static const struct err_case err_cases[] = {
    {"dtype 0", e_undefined_dtype, CT_EARG,
     "cannot have undefined 'dtype' argument"},
    {"dtype FLOAT16", e_float16_dtype, CT_EARG,
     "Unexpected 'dtype' argument value: 12"},
    {"dtype 99", e_bad_dtype_number, CT_EARG,
     "Unexpected 'dtype' argument value: 99"},
    {"string value, no dtype", e_string_value_no_dtype, CT_EARG,
     "'value' is of unexpected type"},
    {"f value, INT32", e_float_value_int_dtype, CT_EARG,
     "Argument value does not have the right field"},
    {"300 as UINT8", e_value_out_of_range, CT_EARG,
     "value=300 does not fit dtype UINT8"},
    {"negative shape", e_negative_shape, CT_EARG,
     "shape has a negative entry: shape[1] = -3"},
    {"scalar shape", e_scalar_shape, CT_EARG,
     "shape was a scalar, list expected"},
    {"17 dims", e_too_many_dims, CT_EARG, "shape has 17 entries"},
    {"shape and input", e_shape_and_input, CT_EARG,
     "Cannot set the shape argument and pass in an input"},
    {"extra_shape, no input", e_extra_shape_no_input, CT_EARG,
     "Cannot set extra_shape when there is no input"},
    {"input_as_shape, no input", e_input_as_shape_no_input, CT_EARG,
     "An input must be given if input_as_shape is true"},
    {"input_as_shape FLOAT", e_as_shape_float, CT_ETYPE,
     "input 0 \"S\" must be an INT64 or INT32 tensor of dims, got FLOAT"},
    {"input_as_shape 2-D", e_as_shape_2d, CT_ESHAPE,
     "input 0 \"S\" must be 1-D, got shape [2, 3]"},
    {"input_as_shape empty", e_as_shape_empty, CT_ESHAPE, "\"S\" is empty"},
    {"input_as_shape negative", e_as_shape_negative, CT_ESHAPE,
     "negative dim -2 at index 1"},
    {"2 inputs", e_two_inputs, CT_ESCHEMA, NULL},
    {"given count", e_given_count, CT_EARG,
     "values has 5 entries but the output shape [2, 3] has 6 elements"},
    {"given count from input", e_given_count_from_input, CT_EARG,
     "values has 3 entries but the output shape [2, 2] has 4 elements"},
    {"given int range", e_given_int_range, CT_EARG,
     "values[1] = 1099511627776 does not fit dtype INT32"},
    {"given wrong field", e_given_wrong_field, CT_EARG,
     "values must be ints for dtype INT32, got floats"},
    {"given dtype FLOAT16", e_given_bad_dtype, CT_EARG,
     "Unexpected 'dtype' argument value: 12"},
    {"given dtype undefined", e_given_undefined_dtype, CT_EARG,
     "Cannot have undefined 'dtype' argument"},
    {"given dtype name", e_given_unknown_dtype_name, CT_EARG,
     "Unknown 'dtype' argument: \"FLOAT17\""},
    {"byte string count", e_bytes_two_strings, CT_EARG,
     "exactly one byte string, got 2"},
};

static void test_fill_error_table_returns_codes_and_messages(void **state)
{
    struct tu_env *e = *state;
    size_t c;

    for (c = 0; c < sizeof(err_cases) / sizeof(err_cases[0]); c++) {
        Caffe2__OperatorDef *op = err_cases[c].make(e);
        ct_status_t st;
        int rc = tu_run_op(e->ws, op, &st);

        if (rc != err_cases[c].code ||
            (err_cases[c].needle != NULL &&
             strstr(st.msg, err_cases[c].needle) == NULL))
            fail_msg("case \"%s\": want %s \"%s\", got %s \"%s\"",
                     err_cases[c].what, ct_err_name(err_cases[c].code),
                     err_cases[c].needle ? err_cases[c].needle : "",
                     ct_err_name(rc), st.msg);
        tu_op_free(op);
    }
}

/* ---- memory budget and allocation failures ---- */

static void expect_too_big(struct tu_env *e, const char *type, int dtype,
                           int64_t d0, int64_t d1, const char *needle)
{
    const int64_t d[] = {d0, d1};
    Caffe2__OperatorDef *op = tu_op(type, "", "Y");
    ct_status_t st;
    int rc;

    tu_arg_ints(op, "shape", 2, d);
    if (dtype != ABSENT)
        tu_arg_i(op, "dtype", dtype);
    rc = tu_run_op(e->ws, op, &st);
    tu_op_free(op);
    if (rc != CT_ENOMEM && rc != CT_EOVERFLOW)
        fail_msg("%s: want CT_ENOMEM or CT_EOVERFLOW, got %s: %s", type,
                 ct_err_name(rc), st.msg);
    if (strstr(st.msg, needle) == NULL)
        fail_msg("message \"%s\" does not name the shape %s", st.msg, needle);
}

static void test_constant_fill_huge_shape_fails_without_crash(void **state)
{
    struct tu_env *e = *state;

    expect_too_big(e, "ConstantFill", ABSENT, (int64_t)1 << 40,
                   (int64_t)1 << 20, "[1099511627776, 1048576]");
    expect_too_big(e, "ConstantFill", CT_DTYPE_F64, (int64_t)1 << 40,
                   (int64_t)1 << 22, "[1099511627776, 4194304]");
    expect_too_big(e, "ConstantFill", CT_DTYPE_STRING, (int64_t)1 << 40,
                   (int64_t)1 << 20, "[1099511627776, 1048576]");
    expect_too_big(e, "ConstantFill", ABSENT, (int64_t)1 << 40,
                   (int64_t)1 << 40, "[1099511627776, 1099511627776]");
    /* The engine still works afterwards. */
    {
        const struct constant_case c = {"f",  ABSENT,       'f', 1,
                                        NULL, CT_DTYPE_F32, 1};
        ct_tensor_t *t = run_ok(e, constant_op(&c, 2, dims_23), "Y");
        assert_true(elem(t, 5) == 1.0);
    }
}

static void
test_constant_fill_alloc_failures_return_enomem_no_leak(void **state)
{
    const char *const v[] = {"alpha", "beta", "gamma"};
    const int64_t d[] = {3};
    long k, base;
    bool done = false;

    (void)state;
    base = tu_alloc_live();
    for (k = 1; !done && k < 1000; k++) {
        struct tu_env e;
        Caffe2__OperatorDef *op = tu_op("GivenTensorStringFill", "", "Y");
        ct_status_t st;
        int rc;

        tu_arg_ints(op, "shape", 1, d);
        tu_arg_strings(op, "values", 3, v);
        tu_env_init(&e);
        tu_fail_alloc_after(k);
        rc = tu_run_op(e.ws, op, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            assert_string(tu_fetch(e.ws, "Y"), 2, "gamma");
            done = true;
        } else {
            tu_assert_status(&st, rc, CT_ENOMEM, NULL);
        }
        tu_op_free(op);
        tu_env_destroy(&e);
        assert_int_equal(tu_alloc_live(), base);
    }
    assert_true(done);
}

/* ---- shape inference ---- */

static void test_fill_infer_static_input_and_value_shapes(void **state)
{
    struct tu_env *e = *state;
    const int64_t in_dims[] = {4, 5}, extra[] = {6}, want[] = {4, 5, 6};
    Caffe2__OperatorDef *def;
    ct_shape_t in[3], out[1];
    ct_status_t st;
    ct_op_t *op;

    memset(in, 0, sizeof(in));
    /* Static shape, dtype from the op. */
    def = tu_op("GivenTensorFill", "", "Y");
    tu_arg_ints(def, "shape", 2, dims_23);
    tu_arg_s(def, "dtype", "double");
    tu_arg_floats(def, "values", 6, (const float[]){1, 2, 3, 4, 5, 6});
    op = create_op(e, def);
    out[0] = shape_of(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_F64);
    assert_int_equal(out[0].ndim, 2);
    assert_memory_equal(out[0].dims, dims_23, sizeof(dims_23));
    ct__op_destroy(op);
    tu_op_free(def);

    /* Input dims plus extra_shape. */
    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, in_dims, NULL);
    def = tu_op("UniformIntFill", "X", "Y");
    tu_arg_ints(def, "extra_shape", 1, extra);
    op = create_op(e, def);
    in[0] = shape_of(CT_DTYPE_F32, 2, in_dims);
    out[0] = shape_of(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_I32);
    assert_int_equal(out[0].ndim, 3);
    assert_memory_equal(out[0].dims, want, sizeof(want));
    ct__op_destroy(op);
    tu_op_free(def);

    /* input_as_shape: dims depend on values, so unknown. */
    def = tu_op("ConstantFill", "X", "Y");
    tu_arg_i(def, "input_as_shape", 1);
    tu_arg_i(def, "dtype", CT_DTYPE_BOOL);
    op = create_op(e, def);
    in[0] = shape_of(CT_DTYPE_I64, 1, (const int64_t[]){2});
    out[0] = shape_of(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_BOOL);
    assert_true(out[0].ndim < 0);
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_env, teardown_env)
    const struct CMUnitTest tests[] = {
        T(test_constant_fill_case_table_matches_reference),
        T(test_constant_fill_input_dims_plus_extra_shape_used),
        T(test_constant_fill_input_as_shape_reads_int64_values),
        T(test_constant_fill_input_as_shape_reads_int32_values),
        T(test_constant_fill_rerun_string_output_replaces_values),
        T(test_given_tensor_fill_case_table_matches_reference),
        T(test_given_tensor_fill_input_shape_counts_values_at_run),
        T(test_fill_error_table_returns_codes_and_messages),
        T(test_constant_fill_huge_shape_fails_without_crash),
        cmocka_unit_test(
            test_constant_fill_alloc_failures_return_enomem_no_leak),
        T(test_fill_infer_static_input_and_value_shapes),
    };
#undef T
    return cmocka_run_group_tests_name("ops.fill", tests, NULL, NULL);
}
