/* Tests for ops/reshape.c: Reshape (shape argument, INT64 and INT32 shape
 * inputs, in place and not), Flatten and FlattenToVec over several dtypes
 * and 0-d / empty shapes against a naive reference (case tables), every
 * error with its message, storage independence, allocation failures and
 * shape inference (white-box through ops/op_impl.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

/* ---- helpers ---- */

static const ct_dtype_t dtypes[] = {CT_DTYPE_F32, CT_DTYPE_I64, CT_DTYPE_STRING,
                                    CT_DTYPE_U8, CT_DTYPE_F16};

static const char *const words[] = {"", "a", "bc", "def", "ghij"};

/* Feeds `name` with a recognisable pattern. */
static ct_tensor_t *feed_pattern(struct tu_env *e, const char *name,
                                 ct_dtype_t dt, int ndim, const int64_t *dims)
{
    ct_tensor_t *t = tu_feed(e->ws, name, dt, ndim, dims, NULL);
    int64_t k;
    ct_status_t st;

    if (dt == CT_DTYPE_STRING) {
        for (k = 0; k < ct_tensor_numel(t); k++)
            assert_int_equal(ct_tensor_set_string(t, k, words[k % 5],
                                                  strlen(words[k % 5]), &st),
                             CT_OK);
    } else {
        uint8_t *p = ct_tensor_data(t);
        for (k = 0; k < (int64_t)ct_tensor_nbytes(t); k++)
            p[k] = (uint8_t)(k * 29 + 3);
    }
    return t;
}

/* Asserts t holds the pattern feed_pattern writes, for numel elements. */
static void assert_pattern(const ct_tensor_t *t, ct_dtype_t dt)
{
    int64_t k;

    assert_int_equal(ct_tensor_dtype(t), dt);
    if (dt == CT_DTYPE_STRING) {
        const ct_str_t *s = ct_tensor_cdata(t);
        for (k = 0; k < ct_tensor_numel(t); k++) {
            assert_int_equal(s[k].len, strlen(words[k % 5]));
            if (s[k].len > 0)
                assert_memory_equal(s[k].data, words[k % 5], s[k].len);
        }
    } else {
        const uint8_t *p = ct_tensor_cdata(t);
        for (k = 0; k < (int64_t)ct_tensor_nbytes(t); k++)
            assert_int_equal(p[k], (uint8_t)(k * 29 + 3));
    }
}

static void assert_shape(const ct_tensor_t *t, int ndim, const int64_t *dims)
{
    int i;

    assert_int_equal(ct_tensor_ndim(t), ndim);
    for (i = 0; i < ndim; i++)
        assert_int_equal(ct_tensor_dim(t, i), dims[i]);
}

static int run(struct tu_env *e, Caffe2__OperatorDef *op, ct_status_t *st)
{
    int rc = tu_run_op(e->ws, op, st);

    tu_op_free(op);
    return rc;
}

/* ---- Reshape case table ---- */

struct reshape_case {
    const char *what;
    int n_in;
    int64_t in[4];
    int n_shape;
    int64_t shape[4];
    int n_out;
    int64_t out[4];
};

static const struct reshape_case reshape_cases[] = {
    {"flat", 2, {2, 3}, 1, {6}, 1, {6}},
    {"-1 last", 2, {2, 3}, 2, {3, -1}, 2, {3, 2}},
    {"-1 first", 3, {2, 3, 4}, 2, {-1, 4}, 2, {6, 4}},
    {"0 and -1", 3, {2, 3, 4}, 3, {0, -1, 2}, 3, {2, 6, 2}},
    {"all 0", 3, {2, 3, 4}, 3, {0, 0, 0}, 3, {2, 3, 4}},
    {"unit dims", 1, {6}, 4, {1, 2, 1, 3}, 4, {1, 2, 1, 3}},
    {"0-d to [1]", 0, {0}, 1, {1}, 1, {1}},
    {"0-d to [-1]", 0, {0}, 1, {-1}, 1, {1}},
    {"[1] to 0-d", 1, {1}, 0, {0}, 0, {0}},
    {"[1,1] to 0-d", 2, {1, 1}, 0, {0}, 0, {0}},
    {"empty to -1", 2, {0, 3}, 1, {-1}, 1, {0}},
    {"empty literal 0", 2, {0, 3}, 2, {3, 0}, 2, {3, 0}},
    {"empty 0 and -1", 2, {0, 3}, 3, {0, 5, -1}, 3, {0, 5, 0}},
    {"long", 1, {1000}, 3, {10, -1, 4}, 3, {10, 25, 4}},
};

enum shape_src { SRC_ARG, SRC_I64, SRC_I32 };

static Caffe2__OperatorDef *reshape_op(struct tu_env *e,
                                       const struct reshape_case *c,
                                       enum shape_src src, const char *out)
{
    Caffe2__OperatorDef *op;
    char outputs[32];
    int64_t n = c->n_shape;
    int32_t s32[4];
    int i;

    snprintf(outputs, sizeof(outputs), "%s,old", out);
    if (src == SRC_ARG) {
        op = tu_op("Reshape", "X", outputs);
        tu_arg_ints(op, "shape", (size_t)c->n_shape, c->shape);
        return op;
    }
    for (i = 0; i < c->n_shape; i++)
        s32[i] = (int32_t)c->shape[i];
    tu_feed(e->ws, "S", src == SRC_I64 ? CT_DTYPE_I64 : CT_DTYPE_I32, 1, &n,
            src == SRC_I64 ? (const void *)c->shape : (const void *)s32);
    return tu_op("Reshape", "X,S", outputs);
}

static void check_old_shape(struct tu_env *e, const struct reshape_case *c,
                            enum shape_src src)
{
    ct_tensor_t *t = tu_fetch(e->ws, "old");
    int i;

    assert_int_equal(ct_tensor_dtype(t),
                     src == SRC_I32 ? CT_DTYPE_I32 : CT_DTYPE_I64);
    assert_int_equal(ct_tensor_ndim(t), 1);
    assert_int_equal(ct_tensor_dim(t, 0), c->n_in);
    for (i = 0; i < c->n_in; i++) {
        int64_t v =
            src == SRC_I32 ? CT_CDATA(t, int32_t)[i] : CT_CDATA(t, int64_t)[i];
        assert_int_equal(v, c->in[i]);
    }
}

static void test_reshape_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t c, d;
    int src;

    for (c = 0; c < sizeof(reshape_cases) / sizeof(reshape_cases[0]); c++) {
        const struct reshape_case *rc = &reshape_cases[c];
        for (d = 0; d < sizeof(dtypes) / sizeof(dtypes[0]); d++) {
            for (src = SRC_ARG; src <= SRC_I32; src++) {
                ct_tensor_t *x =
                    feed_pattern(e, "X", dtypes[d], rc->n_in, rc->in);
                ct_status_t st;
                ct_tensor_t *y;

                if (run(e, reshape_op(e, rc, (enum shape_src)src, "Y"), &st) !=
                    CT_OK)
                    fail_msg("case %s %s src %d: %s", rc->what,
                             ct_dtype_name(dtypes[d]), src, st.msg);
                y = tu_fetch(e->ws, "Y");
                assert_shape(y, rc->n_out, rc->out);
                assert_pattern(y, dtypes[d]);
                /* The input is untouched and shares nothing. */
                assert_shape(x, rc->n_in, rc->in);
                assert_pattern(x, dtypes[d]);
                assert_int_equal(ct_tensor_storage_refs(y) <= 1, 1);
                if (ct_tensor_numel(x) > 0)
                    assert_ptr_not_equal(ct_tensor_cdata(y),
                                         ct_tensor_cdata(x));
                check_old_shape(e, rc, (enum shape_src)src);
            }
        }
    }
}

static void test_reshape_in_place_case_table_keeps_storage(void **state)
{
    struct tu_env *e = *state;
    size_t c, d;

    for (c = 0; c < sizeof(reshape_cases) / sizeof(reshape_cases[0]); c++) {
        const struct reshape_case *rc = &reshape_cases[c];
        for (d = 0; d < sizeof(dtypes) / sizeof(dtypes[0]); d++) {
            ct_tensor_t *x = feed_pattern(e, "X", dtypes[d], rc->n_in, rc->in);
            const void *before = ct_tensor_cdata(x);
            ct_status_t st;

            if (run(e, reshape_op(e, rc, SRC_ARG, "X"), &st) != CT_OK)
                fail_msg("case %s %s: %s", rc->what, ct_dtype_name(dtypes[d]),
                         st.msg);
            x = tu_fetch(e->ws, "X");
            assert_shape(x, rc->n_out, rc->out);
            assert_pattern(x, dtypes[d]);
            assert_ptr_equal(ct_tensor_cdata(x), before);
            check_old_shape(e, rc, SRC_ARG);
        }
    }
}

/* ---- Flatten / FlattenToVec case table ---- */

#define TO_VEC (-100) /* FlattenToVec instead of Flatten */
#define NO_AXIS (-200)

struct flatten_case {
    int axis; /* NO_AXIS: default; TO_VEC: FlattenToVec */
    int n_in;
    int64_t in[4];
    int n_out;
    int64_t out[2];
};

static const struct flatten_case flatten_cases[] = {
    {NO_AXIS, 3, {2, 3, 4}, 2, {2, 12}},
    {0, 3, {2, 3, 4}, 2, {1, 24}},
    {2, 3, {2, 3, 4}, 2, {6, 4}},
    {3, 3, {2, 3, 4}, 2, {24, 1}},
    {0, 0, {0}, 2, {1, 1}},
    {1, 1, {5}, 2, {5, 1}},
    {NO_AXIS, 2, {0, 5}, 2, {0, 5}},
    {2, 3, {3, 0, 2}, 2, {0, 2}},
    {TO_VEC, 3, {2, 3, 4}, 1, {24}},
    {TO_VEC, 2, {0, 3}, 1, {0}},
    {TO_VEC, 1, {7}, 1, {7}},
};

static void test_flatten_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t c, d;

    for (c = 0; c < sizeof(flatten_cases) / sizeof(flatten_cases[0]); c++) {
        const struct flatten_case *fc = &flatten_cases[c];
        for (d = 0; d < sizeof(dtypes) / sizeof(dtypes[0]); d++) {
            ct_tensor_t *x = feed_pattern(e, "X", dtypes[d], fc->n_in, fc->in);
            Caffe2__OperatorDef *op = tu_op(
                fc->axis == TO_VEC ? "FlattenToVec" : "Flatten", "X", "Y");
            ct_status_t st;
            ct_tensor_t *y;

            if (fc->axis >= 0)
                tu_arg_i(op, "axis", fc->axis);
            if (run(e, op, &st) != CT_OK)
                fail_msg("case %zu %s: %s", c, ct_dtype_name(dtypes[d]),
                         st.msg);
            y = tu_fetch(e->ws, "Y");
            assert_shape(y, fc->n_out, fc->out);
            assert_pattern(y, dtypes[d]);
            assert_pattern(x, dtypes[d]);
            if (ct_tensor_numel(x) > 0)
                assert_ptr_not_equal(ct_tensor_cdata(y), ct_tensor_cdata(x));
        }
    }
}

/* ---- the error table ---- */

struct err_case {
    const char *what;
    const char *type;
    const char *inputs;
    const char *outputs;
    int n_x;
    int64_t x[3]; /* shape of input X (F32) */
    int n_arg;    /* entries of the shape argument; -1: none */
    int64_t arg[4];
    int s_kind; /* shape input S: 0 none, 1 I64, 2 F32, 3 2-D I64 */
    int n_s;
    int64_t s[4];
    int axis; /* NO_AXIS: absent; -300: given as a float */
    int code;
    const char *needle;
};

#define AXIS_AS_FLOAT (-300)

static const struct err_case err_cases[] = {
    {"arg and input",
     "Reshape",
     "X,S",
     "Y,old",
     2,
     {2, 3},
     1,
     {6},
     1,
     1,
     {6},
     NO_AXIS,
     CT_EARG,
     "do not pass in the argument `shape`"},
    {"no shape",
     "Reshape",
     "X",
     "Y,old",
     2,
     {2, 3},
     -1,
     {0},
     0,
     0,
     {0},
     NO_AXIS,
     CT_EARG,
     "Argument `shape` is missing."},
    {"two -1 arg",
     "Reshape",
     "X",
     "Y,old",
     2,
     {2, 3},
     3,
     {-1, 1, -1},
     0,
     0,
     {0},
     NO_AXIS,
     CT_EARG,
     "Argument `shape` has more than one missing dimension (-1 at 0 and 2)"},
    {"-2 arg",
     "Reshape",
     "X",
     "Y,old",
     2,
     {2, 3},
     2,
     {3, -2},
     0,
     0,
     {0},
     NO_AXIS,
     CT_EARG,
     "entry 1 is -2"},
    {"two -1 input",
     "Reshape",
     "X,S",
     "Y,old",
     2,
     {2, 3},
     -1,
     {0},
     1,
     2,
     {-1, -1},
     NO_AXIS,
     CT_ESHAPE,
     "new shape input 1 \"S\" has more than one missing dimension"},
    {"mismatch",
     "Reshape",
     "X",
     "Y,old",
     2,
     {2, 3},
     1,
     {4},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESHAPE,
     "new shape [4] does not agree with the input [2, 3]: 4 != 6 elements"},
    {"not a multiple",
     "Reshape",
     "X",
     "Y,old",
     2,
     {2, 3},
     2,
     {4, -1},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESHAPE,
     "6 elements are not a multiple of 4"},
    {"0 beyond rank",
     "Reshape",
     "X",
     "Y,old",
     2,
     {2, 3},
     3,
     {0, 3, 0},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESHAPE,
     "entry 2 is 0 (copy the input's dim), but the input [2, 3] has rank 2"},
    {"empty to non-empty",
     "Reshape",
     "X",
     "Y,old",
     2,
     {0, 3},
     2,
     {2, 2},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESHAPE,
     "cannot reshape the empty input [0, 3] to [2, 2] (4 elements)"},
    {"float shape input",
     "Reshape",
     "X,S",
     "Y,old",
     2,
     {2, 3},
     -1,
     {0},
     2,
     1,
     {6},
     NO_AXIS,
     CT_ETYPE,
     "new shape input 1 \"S\" must be INT64 or INT32, got FLOAT"},
    {"2-D shape input",
     "Reshape",
     "X,S",
     "Y,old",
     2,
     {2, 3},
     -1,
     {0},
     3,
     2,
     {6, 1},
     NO_AXIS,
     CT_ESHAPE,
     "Shape should be 1-D"},
    {"one output",
     "Reshape",
     "X",
     "Y",
     2,
     {2, 3},
     1,
     {6},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESCHEMA,
     NULL},
    {"same outputs",
     "Reshape",
     "X",
     "Y,Y",
     2,
     {2, 3},
     1,
     {6},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESCHEMA,
     "outputs 0 and 1 are the same blob \"Y\""},
    {"in place 0->1",
     "Reshape",
     "X",
     "Y,X",
     2,
     {2, 3},
     1,
     {6},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESCHEMA,
     "in-place"},
    {"axis > rank",
     "Flatten",
     "X",
     "Y",
     3,
     {2, 3, 4},
     -1,
     {0},
     0,
     0,
     {0},
     4,
     CT_ESHAPE,
     "The rank of the tensor must be >= axis: input [2, 3, 4] has rank 3, "
     "axis=4"},
    {"negative axis",
     "Flatten",
     "X",
     "Y",
     3,
     {2, 3, 4},
     -1,
     {0},
     0,
     0,
     {0},
     -1,
     CT_EARG,
     "Argument axis=-1 must be >= 0"},
    {"float axis",
     "Flatten",
     "X",
     "Y",
     3,
     {2, 3, 4},
     -1,
     {0},
     0,
     0,
     {0},
     AXIS_AS_FLOAT,
     CT_EARG,
     "Argument axis does not have the right field"},
    {"flatten in place",
     "Flatten",
     "X",
     "X",
     2,
     {2, 3},
     -1,
     {0},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESCHEMA,
     "in-place"},
    {"vec of 0-d",
     "FlattenToVec",
     "X",
     "Y",
     0,
     {0},
     -1,
     {0},
     0,
     0,
     {0},
     NO_AXIS,
     CT_ESHAPE,
     "The rank of the tensor must be >= 1"},
};

static Caffe2__OperatorDef *err_op(struct tu_env *e, const struct err_case *c)
{
    Caffe2__OperatorDef *op = tu_op(c->type, c->inputs, c->outputs);
    int64_t n = c->n_s, two[2] = {c->n_s, 1};
    float f[4];
    int i;

    tu_feed(e->ws, "X", CT_DTYPE_F32, c->n_x, c->x, NULL);
    for (i = 0; i < c->n_s; i++)
        f[i] = (float)c->s[i];
    if (c->s_kind == 1)
        tu_feed(e->ws, "S", CT_DTYPE_I64, 1, &n, c->s);
    else if (c->s_kind == 2)
        tu_feed(e->ws, "S", CT_DTYPE_F32, 1, &n, f);
    else if (c->s_kind == 3)
        tu_feed(e->ws, "S", CT_DTYPE_I64, 2, two, c->s);
    if (c->n_arg >= 0)
        tu_arg_ints(op, "shape", (size_t)c->n_arg, c->arg);
    if (c->axis == AXIS_AS_FLOAT)
        tu_arg_f(op, "axis", 1.0f);
    else if (c->axis != NO_AXIS)
        tu_arg_i(op, "axis", c->axis);
    return op;
}

static void test_reshape_error_table_returns_codes_and_messages(void **state)
{
    struct tu_env *e = *state;
    size_t c;

    for (c = 0; c < sizeof(err_cases) / sizeof(err_cases[0]); c++) {
        ct_status_t st;
        int rc = run(e, err_op(e, &err_cases[c]), &st);

        if (rc != err_cases[c].code ||
            (err_cases[c].needle != NULL &&
             strstr(st.msg, err_cases[c].needle) == NULL))
            fail_msg("case \"%s\": want %s \"%s\", got %s \"%s\"",
                     err_cases[c].what, ct_err_name(err_cases[c].code),
                     err_cases[c].needle ? err_cases[c].needle : "",
                     ct_err_name(rc), st.msg);
    }
}

static void test_reshape_alloc_failures_return_enomem_no_leak(void **state)
{
    const int64_t d[] = {2, 2}, shape[] = {-1};
    const char *const v[] = {"one", "two", "", "four"};
    long k, base;
    bool done = false;

    (void)state;
    base = tu_alloc_live();
    for (k = 1; !done && k < 1000; k++) {
        struct tu_env e;
        Caffe2__OperatorDef *op = tu_op("Reshape", "X", "Y,old");
        ct_status_t st;
        int rc;

        tu_arg_ints(op, "shape", 1, shape);
        tu_env_init(&e);
        tu_feed(e.ws, "X", CT_DTYPE_STRING, 2, d, v);
        tu_fail_alloc_after(k);
        rc = tu_run_op(e.ws, op, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            ct_tensor_t *y = tu_fetch(e.ws, "Y");
            assert_int_equal(ct_tensor_ndim(y), 1);
            assert_int_equal(((const ct_str_t *)ct_tensor_cdata(y))[3].len, 4);
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

static ct_op_t *create(struct tu_env *e, const Caffe2__OperatorDef *def)
{
    ct_status_t st;
    ct_op_t *op;

    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create %s: %s", def->type, st.msg);
    return op;
}

static void test_reshape_infer_resolves_zero_and_minus_one(void **state)
{
    struct tu_env *e = *state;
    const int64_t in_dims[] = {2, 3, 4}, arg[] = {0, -1}, want[] = {2, 12};
    Caffe2__OperatorDef *def = tu_op("Reshape", "X", "Y,old");
    ct_shape_t in[2], out[2];
    ct_status_t st;
    ct_op_t *op;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 3, in_dims, NULL);
    tu_arg_ints(def, "shape", 2, arg);
    op = create(e, def);
    memset(in, 0, sizeof(in));
    memset(out, 0, sizeof(out));
    in[0].dtype = CT_DTYPE_F64;
    in[0].ndim = 3;
    memcpy(in[0].dims, in_dims, sizeof(in_dims));
    out[0].ndim = out[1].ndim = -1;
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_F64);
    assert_int_equal(out[0].ndim, 2);
    assert_memory_equal(out[0].dims, want, sizeof(want));
    assert_int_equal(out[1].dtype, CT_DTYPE_I64);
    assert_int_equal(out[1].ndim, 1);
    assert_int_equal(out[1].dims[0], 3);

    /* A static mismatch is reported at compile time. */
    in[0].ndim = 1;
    in[0].dims[0] = 7;
    memset(&st, 0, sizeof(st));
    {
        const int64_t bad[] = {2, -1};
        Caffe2__OperatorDef *d2 = tu_op("Reshape", "X", "Y,old");
        ct_op_t *op2;

        tu_arg_ints(d2, "shape", 2, bad);
        op2 = create(e, d2);
        assert_int_equal(op2->schema->infer_cb(op2, in, out, &st), CT_ESHAPE);
        assert_non_null(strstr(st.msg, "not a multiple of 2"));
        ct__op_destroy(op2);
        tu_op_free(d2);
    }
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_reshape_infer_shape_input_leaves_dims_unknown(void **state)
{
    struct tu_env *e = *state;
    const int64_t two[] = {2}, vals[] = {3, 2};
    Caffe2__OperatorDef *def = tu_op("Reshape", "X,S", "Y,old");
    ct_shape_t in[2], out[2];
    ct_status_t st;
    ct_op_t *op;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 1, (const int64_t[]){6}, NULL);
    tu_feed(e->ws, "S", CT_DTYPE_I32, 1, two, vals);
    op = create(e, def);
    memset(in, 0, sizeof(in));
    memset(out, 0, sizeof(out));
    in[0].dtype = CT_DTYPE_F32;
    in[0].ndim = 1;
    in[0].dims[0] = 6;
    in[1].dtype = CT_DTYPE_I32;
    in[1].ndim = 1;
    in[1].dims[0] = 2;
    out[0].ndim = out[1].ndim = -1;
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_true(out[0].ndim < 0);
    assert_int_equal(out[0].dtype, CT_DTYPE_F32);
    assert_int_equal(out[1].dtype, CT_DTYPE_I32);
    assert_int_equal(out[1].ndim, 1);
    assert_int_equal(out[1].dims[0], 1);
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_flatten_infer_gives_two_dims(void **state)
{
    struct tu_env *e = *state;
    const int64_t in_dims[] = {2, 3, 4, 5}, want[] = {6, 20};
    Caffe2__OperatorDef *def = tu_op("Flatten", "X", "Y");
    ct_shape_t in[1], out[1];
    ct_status_t st;
    ct_op_t *op;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, in_dims, NULL);
    tu_arg_i(def, "axis", 2);
    op = create(e, def);
    memset(in, 0, sizeof(in));
    in[0].dtype = CT_DTYPE_U8;
    in[0].ndim = 4;
    memcpy(in[0].dims, in_dims, sizeof(in_dims));
    out[0].ndim = -1;
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_U8);
    assert_int_equal(out[0].ndim, 2);
    assert_memory_equal(out[0].dims, want, sizeof(want));
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_reshape_case_table_matches_reference),
        T(test_reshape_in_place_case_table_keeps_storage),
        T(test_flatten_case_table_matches_reference),
        T(test_reshape_error_table_returns_codes_and_messages),
        cmocka_unit_test(test_reshape_alloc_failures_return_enomem_no_leak),
        T(test_reshape_infer_resolves_zero_and_minus_one),
        T(test_reshape_infer_shape_input_leaves_dims_unknown),
        T(test_flatten_infer_gives_two_dims),
    };
#undef T
    return cmocka_run_group_tests_name("ops.reshape", tests, NULL, NULL);
}
