/* Tests for engine/args.c: the argument getters and the creation-time
 * argument check with Caffe2's ArgumentHelper rules (spec §0.2). Ops are
 * bare ct_op_t structs over an OperatorDef: no registry, no workspace. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "engine/op_internal.h"
#include "ops/op_impl.h"
#include "test_util.h"

/* ---- fixtures ---- */

/* An op whose def is built by each test; teardown frees the def. */
struct fx {
    ct_op_t op;
    Caffe2__OperatorDef *def;
    ct_status_t st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->def = tu_op("Test", "X", "Y");
    f->op.def = f->def;
    ct_status_clear(&f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tu_op_free(f->def);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static int dummy_run(ct_op_ctx_t *ctx)
{
    (void)ctx;
    return CT_OK;
}

static const struct ct_arg_spec test_specs[] = {
    {"axis", CT_ARG_INT, false},     {"alpha", CT_ARG_FLOAT, false},
    {"order", CT_ARG_STRING, false}, {"shape", CT_ARG_INTS, true},
    {"value", CT_ARG_ANY, false},    {NULL, CT_ARG_ANY, false},
};

static const struct ct_op_schema test_schema = {
    .name = "Test",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = test_specs,
    .run_cb = dummy_run,
};

static void add_shape(Caffe2__OperatorDef *def)
{
    static const int64_t shape[] = {2, 3};
    tu_arg_ints(def, "shape", 2, shape);
}

/* ---- tests: lookup ---- */

static void test_arg_find_returns_argument_or_null(void **state)
{
    struct fx *f = *state;

    tu_arg_i(f->def, "axis", 1);
    assert_non_null(ct__arg_find(&f->op, "axis"));
    assert_true(ct__arg_has(&f->op, "axis"));
    assert_null(ct__arg_find(&f->op, "nope"));
    assert_false(ct__arg_has(&f->op, "nope"));
}

/* ---- tests: integers ---- */

static void test_arg_int_reads_i(void **state)
{
    struct fx *f = *state;
    int64_t v = 0;

    tu_arg_i(f->def, "axis", -7);
    assert_int_equal(ct__arg_int(&f->op, "axis", 0, &v, &f->st), CT_OK);
    assert_int_equal(v, -7);
}

static void test_arg_int_absent_gives_default(void **state)
{
    struct fx *f = *state;
    int64_t v = 0;

    assert_int_equal(ct__arg_int(&f->op, "axis", 42, &v, &f->st), CT_OK);
    assert_int_equal(v, 42);
}

static void test_arg_int_float_field_returns_earg(void **state)
{
    struct fx *f = *state;
    int64_t v = 0;
    int rc;

    tu_arg_f(f->def, "axis", 1.0f);
    rc = ct__arg_int(&f->op, "axis", 0, &v, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument axis does not have the right field: expected "
                     "i, has f");
}

static void test_arg_int32_in_range_reads_value(void **state)
{
    struct fx *f = *state;
    int32_t v = 0;

    tu_arg_i(f->def, "lo", INT32_MIN);
    tu_arg_i(f->def, "hi", INT32_MAX);
    assert_int_equal(ct__arg_int32(&f->op, "lo", 0, &v, &f->st), CT_OK);
    assert_int_equal(v, INT32_MIN);
    assert_int_equal(ct__arg_int32(&f->op, "hi", 0, &v, &f->st), CT_OK);
    assert_int_equal(v, INT32_MAX);
    assert_int_equal(ct__arg_int32(&f->op, "none", -3, &v, &f->st), CT_OK);
    assert_int_equal(v, -3);
}

static void test_arg_int32_out_of_range_returns_earg(void **state)
{
    struct fx *f = *state;
    int32_t v = 5;
    int rc;

    tu_arg_i(f->def, "axis", (int64_t)INT32_MAX + 1);
    tu_arg_i(f->def, "low", (int64_t)INT32_MIN - 1);
    rc = ct__arg_int32(&f->op, "axis", 0, &v, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument axis value 2147483648 is out of range for "
                     "int32");
    assert_int_equal(v, 5);
    rc = ct__arg_int32(&f->op, "low", 0, &v, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument low value -2147483649 is out of range");
}

static void test_arg_int32_wrong_field_returns_earg(void **state)
{
    struct fx *f = *state;
    int32_t v;
    int rc;

    tu_arg_s(f->def, "axis", "1");
    rc = ct__arg_int32(&f->op, "axis", 0, &v, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG, "expected i, has s");
}

/* ---- tests: floats ---- */

static void test_arg_float_reads_f(void **state)
{
    struct fx *f = *state;
    float v = 0;

    tu_arg_f(f->def, "alpha", 0.25f);
    assert_int_equal(ct__arg_float(&f->op, "alpha", 1.0f, &v, &f->st), CT_OK);
    assert_true(v == 0.25f);
    assert_int_equal(ct__arg_float(&f->op, "beta", 1.5f, &v, &f->st), CT_OK);
    assert_true(v == 1.5f);
}

/* Spec §0.2's example: default_value=16 given as an int to a float. */
static void test_arg_float_int_field_returns_earg(void **state)
{
    struct fx *f = *state;
    float v;
    int rc;

    tu_arg_i(f->def, "default_value", 16);
    rc = ct__arg_float(&f->op, "default_value", 0, &v, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument default_value does not have the right field: "
                     "expected f, has i");
}

/* ---- tests: strings ---- */

static void test_arg_string_reads_s_with_length(void **state)
{
    struct fx *f = *state;
    const char *s = NULL;
    size_t len = 0;

    tu_arg_s(f->def, "order", "NCHW");
    assert_int_equal(ct__arg_string(&f->op, "order", "NHWC", &s, &len, &f->st),
                     CT_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "NCHW", 4);
}

static void test_arg_string_absent_gives_default(void **state)
{
    struct fx *f = *state;
    const char *s = NULL;
    size_t len = 0;

    assert_int_equal(ct__arg_string(&f->op, "order", "NHWC", &s, &len, &f->st),
                     CT_OK);
    assert_string_equal(s, "NHWC");
    assert_int_equal(len, 4);
    assert_int_equal(ct__arg_string(&f->op, "order", NULL, &s, NULL, &f->st),
                     CT_OK);
    assert_null(s);
}

static void test_arg_string_wrong_field_returns_earg(void **state)
{
    struct fx *f = *state;
    const char *s;
    size_t len;
    int rc;

    tu_arg_i(f->def, "order", 1);
    rc = ct__arg_string(&f->op, "order", "", &s, &len, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument order does not have the right field: expected "
                     "s, has i");
}

/* ---- tests: repeated ---- */

static void test_arg_ints_reads_list(void **state)
{
    struct fx *f = *state;
    static const int64_t want[] = {4, -1, 9};
    const int64_t *v;
    size_t n;

    tu_arg_ints(f->def, "dims", 3, want);
    assert_int_equal(ct__arg_ints(&f->op, "dims", &v, &n, &f->st), CT_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(v, want, sizeof(want));
}

static void test_arg_ints_absent_gives_empty(void **state)
{
    struct fx *f = *state;
    const int64_t *v = (const int64_t *)f;
    size_t n = 7;

    assert_int_equal(ct__arg_ints(&f->op, "dims", &v, &n, &f->st), CT_OK);
    assert_int_equal(n, 0);
    assert_null(v);
}

static void test_arg_ints_no_field_gives_empty(void **state)
{
    struct fx *f = *state;
    const int64_t *v;
    size_t n = 7;

    tu_arg_ints(f->def, "dims", 0, NULL); /* an empty list on the wire */
    assert_int_equal(ct__arg_ints(&f->op, "dims", &v, &n, &f->st), CT_OK);
    assert_int_equal(n, 0);
}

static void test_arg_ints_scalar_field_returns_earg(void **state)
{
    struct fx *f = *state;
    const int64_t *v;
    size_t n;
    int rc;

    tu_arg_i(f->def, "dims", 3);
    rc = ct__arg_ints(&f->op, "dims", &v, &n, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument dims does not have the right field: expected "
                     "ints, has i");
}

static void test_arg_floats_reads_list(void **state)
{
    struct fx *f = *state;
    static const float want[] = {0.5f, -2.0f};
    const float *v;
    size_t n;

    tu_arg_floats(f->def, "scales", 2, want);
    assert_int_equal(ct__arg_floats(&f->op, "scales", &v, &n, &f->st), CT_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(v, want, sizeof(want));
}

static void test_arg_floats_wrong_field_returns_earg(void **state)
{
    struct fx *f = *state;
    static const int64_t ints[] = {1, 2};
    const float *v;
    size_t n;
    int rc;

    tu_arg_ints(f->def, "scales", 2, ints);
    rc = ct__arg_floats(&f->op, "scales", &v, &n, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument scales does not have the right field: expected "
                     "floats, has ints");
}

static void test_arg_strings_reads_list(void **state)
{
    struct fx *f = *state;
    static const char *const want[] = {"a", "bc"};
    const ProtobufCBinaryData *v;
    size_t n;

    tu_arg_strings(f->def, "names", 2, want);
    assert_int_equal(ct__arg_strings(&f->op, "names", &v, &n, &f->st), CT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[1].len, 2);
    assert_memory_equal(v[1].data, "bc", 2);
}

static void test_arg_strings_wrong_field_returns_earg(void **state)
{
    struct fx *f = *state;
    const ProtobufCBinaryData *v;
    size_t n;
    int rc;

    tu_arg_s(f->def, "names", "a");
    rc = ct__arg_strings(&f->op, "names", &v, &n, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG, "expected strings, has s");
}

static void test_arg_wrong_field_lists_every_field(void **state)
{
    struct fx *f = *state;
    int64_t v;
    int rc;

    tu_arg_f(f->def, "mixed", 1.0f);
    f->def->arg[0]->has_s = 1; /* f and s set, no i */
    f->def->arg[0]->s.len = 0;
    rc = ct__arg_int(&f->op, "mixed", 0, &v, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG, "expected i, has f and s");
    f->def->arg[0]->has_s = 0;
    f->def->arg[0]->has_f = 0;
    rc = ct__arg_int(&f->op, "mixed", 0, &v, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG, "expected i, has none");
}

/* ---- tests: net-level arguments ---- */

static void test_argv_int_reads_net_argument(void **state)
{
    struct fx *f = *state;
    int64_t v = 0;
    int rc;

    tu_arg_i(f->def, "num_workers", 8);
    tu_arg_f(f->def, "bad", 8.0f);
    assert_int_equal(
        ct__argv_int(f->def->arg, f->def->n_arg, "num_workers", 1, &v, &f->st),
        CT_OK);
    assert_int_equal(v, 8);
    assert_int_equal(
        ct__argv_int(f->def->arg, f->def->n_arg, "none", 3, &v, &f->st), CT_OK);
    assert_int_equal(v, 3);
    rc = ct__argv_int(f->def->arg, f->def->n_arg, "bad", 0, &v, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG, "expected i, has f");
    assert_null(ct__argv_find(NULL, 0, "x"));
}

/* ---- tests: ct__args_check ---- */

static void test_args_check_valid_passes(void **state)
{
    struct fx *f = *state;

    f->op.schema = &test_schema;
    add_shape(f->def);
    tu_arg_i(f->def, "axis", 1);
    tu_arg_f(f->def, "alpha", 1.0f);
    tu_arg_s(f->def, "order", "NCHW");
    tu_arg_s(f->def, "value", "anything"); /* CT_ARG_ANY */
    tu_arg_i(f->def, "not_in_schema", 1);  /* unknown names are fine */
    assert_int_equal(ct__args_check(&f->op, &f->st), CT_OK);
}

static void test_args_check_identical_duplicates_pass(void **state)
{
    struct fx *f = *state;
    static const int64_t dims[] = {1, 2, 3};

    tu_arg_i(f->def, "axis", 1);
    tu_arg_i(f->def, "axis", 1);
    tu_arg_ints(f->def, "dims", 3, dims);
    tu_arg_ints(f->def, "dims", 3, dims);
    tu_arg_s(f->def, "order", "NCHW");
    tu_arg_s(f->def, "order", "NCHW");
    assert_int_equal(ct__args_check(&f->op, &f->st), CT_OK);
}

static void test_args_check_different_duplicates_return_earg(void **state)
{
    struct fx *f = *state;
    int rc;

    tu_arg_i(f->def, "axis", 1);
    tu_arg_i(f->def, "axis", 2);
    rc = ct__args_check(&f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "argument axis given twice with different values");
}

static void
test_args_check_duplicates_differing_in_field_return_earg(void **state)
{
    struct fx *f = *state;
    static const int64_t a[] = {1, 2}, b[] = {1, 3};
    int rc;

    /* Same value, different field. */
    tu_arg_i(f->def, "k", 1);
    tu_arg_f(f->def, "k", 1.0f);
    rc = ct__args_check(&f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG, "argument k given twice");
    tu_op_free(f->def);

    /* Lists differing in one element. */
    f->def = tu_op("Test", "X", "Y");
    f->op.def = f->def;
    tu_arg_ints(f->def, "dims", 2, a);
    tu_arg_ints(f->def, "dims", 2, b);
    rc = ct__args_check(&f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG, "argument dims given twice");
    tu_op_free(f->def);

    /* 0.0 and -0.0 serialise differently. */
    f->def = tu_op("Test", "X", "Y");
    f->op.def = f->def;
    tu_arg_f(f->def, "z", 0.0f);
    tu_arg_f(f->def, "z", -0.0f);
    rc = ct__args_check(&f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG, "argument z given twice");
}

static void test_args_check_required_missing_returns_earg(void **state)
{
    struct fx *f = *state;
    int rc;

    f->op.schema = &test_schema;
    rc = ct__args_check(&f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Test: Required argument shape is not provided");
}

static void test_args_check_spec_wrong_field_returns_earg(void **state)
{
    struct fx *f = *state;
    int rc;

    f->op.schema = &test_schema;
    add_shape(f->def);
    tu_arg_f(f->def, "axis", 1.0f);
    rc = ct__args_check(&f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument axis does not have the right field: expected "
                     "i, has f");
}

static void test_args_check_spec_list_wrong_field_returns_earg(void **state)
{
    struct fx *f = *state;
    int rc;

    f->op.schema = &test_schema;
    tu_arg_i(f->def, "shape", 4);
    rc = ct__args_check(&f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_EARG,
                     "Argument shape does not have the right field: expected "
                     "ints, has i");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_arg_find_returns_argument_or_null),
        T(test_arg_int_reads_i),
        T(test_arg_int_absent_gives_default),
        T(test_arg_int_float_field_returns_earg),
        T(test_arg_int32_in_range_reads_value),
        T(test_arg_int32_out_of_range_returns_earg),
        T(test_arg_int32_wrong_field_returns_earg),
        T(test_arg_float_reads_f),
        T(test_arg_float_int_field_returns_earg),
        T(test_arg_string_reads_s_with_length),
        T(test_arg_string_absent_gives_default),
        T(test_arg_string_wrong_field_returns_earg),
        T(test_arg_ints_reads_list),
        T(test_arg_ints_absent_gives_empty),
        T(test_arg_ints_no_field_gives_empty),
        T(test_arg_ints_scalar_field_returns_earg),
        T(test_arg_floats_reads_list),
        T(test_arg_floats_wrong_field_returns_earg),
        T(test_arg_strings_reads_list),
        T(test_arg_strings_wrong_field_returns_earg),
        T(test_arg_wrong_field_lists_every_field),
        T(test_argv_int_reads_net_argument),
        T(test_args_check_valid_passes),
        T(test_args_check_identical_duplicates_pass),
        T(test_args_check_different_duplicates_return_earg),
        T(test_args_check_duplicates_differing_in_field_return_earg),
        T(test_args_check_required_missing_returns_earg),
        T(test_args_check_spec_wrong_field_returns_earg),
        T(test_args_check_spec_list_wrong_field_returns_earg),
    };
#undef T
    return cmocka_run_group_tests_name("engine.args", tests, NULL, NULL);
}
