/* Tests for ops/copy.c: Copy and its device-transfer aliases over every
 * dtype and 0-d / empty shapes against a byte-wise reference (case
 * table), deep-copy independence, in-place rules, storage reuse across
 * runs, errors, the memory budget, allocation failures and shape
 * inference (white-box through ops/op_impl.h). */
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

static const char *const copy_types[] = {
    "Copy",         "CopyFromCPUInput", "CopyCPUToGPU",
    "CopyGPUToCPU", "EnsureCPUOutput",  "CopyOnDeviceLike",
};

static const ct_dtype_t all_dtypes[] = {
    CT_DTYPE_F32,  CT_DTYPE_I32, CT_DTYPE_BYTE, CT_DTYPE_STRING,
    CT_DTYPE_BOOL, CT_DTYPE_U8,  CT_DTYPE_I8,   CT_DTYPE_U16,
    CT_DTYPE_I16,  CT_DTYPE_I64, CT_DTYPE_F16,  CT_DTYPE_F64,
};

static const struct {
    int ndim;
    int64_t dims[3];
} shapes[] = {
    {2, {2, 3}}, {0, {0}}, {1, {0}}, {3, {2, 0, 3}}, {1, {257}},
};

static const char *const words[] = {"", "a", "bc", "def", "ghij", "klmno"};

/* Feeds X with dtype dt and the shape, filled with a pattern. */
static ct_tensor_t *feed_pattern(struct tu_env *e, const char *name,
                                 ct_dtype_t dt, int ndim, const int64_t *dims)
{
    ct_tensor_t *t = tu_feed(e->ws, name, dt, ndim, dims, NULL);
    int64_t k, n = ct_tensor_numel(t);
    ct_status_t st;

    if (dt == CT_DTYPE_STRING) {
        for (k = 0; k < n; k++) {
            const char *w = words[k % 6];
            assert_int_equal(ct_tensor_set_string(t, k, w, strlen(w), &st),
                             CT_OK);
        }
    } else {
        uint8_t *p = ct_tensor_data(t);
        for (k = 0; k < (int64_t)ct_tensor_nbytes(t); k++)
            p[k] = (uint8_t)(k * 37 + 11);
        if (dt == CT_DTYPE_BOOL) /* keep bools 0 or 1 */
            for (k = 0; k < n; k++)
                p[k] &= 1;
    }
    return t;
}

/* The naive reference: same dtype, shape and elements. */
static void assert_same_tensor(const ct_tensor_t *a, const ct_tensor_t *b)
{
    int64_t k, n = ct_tensor_numel(a);
    int i;

    assert_int_equal(ct_tensor_dtype(a), ct_tensor_dtype(b));
    assert_int_equal(ct_tensor_ndim(a), ct_tensor_ndim(b));
    for (i = 0; i < ct_tensor_ndim(a); i++)
        assert_int_equal(ct_tensor_dim(a, i), ct_tensor_dim(b, i));
    assert_int_equal(n, ct_tensor_numel(b));
    if (ct_tensor_dtype(a) == CT_DTYPE_STRING) {
        const ct_str_t *x = ct_tensor_cdata(a), *y = ct_tensor_cdata(b);
        for (k = 0; k < n; k++) {
            assert_int_equal(x[k].len, y[k].len);
            if (x[k].len > 0) {
                assert_memory_equal(x[k].data, y[k].data, x[k].len);
                assert_ptr_not_equal(x[k].data, y[k].data);
            }
        }
    } else if (n > 0) {
        assert_memory_equal(ct_tensor_cdata(a), ct_tensor_cdata(b),
                            ct_tensor_nbytes(a));
    }
}

static Caffe2__OperatorDef *copy_op(const char *type, const char *in,
                                    const char *out)
{
    char inputs[64];

    snprintf(inputs, sizeof(inputs), "%s%s", in,
             strcmp(type, "CopyOnDeviceLike") == 0 ? ",L" : "");
    return tu_op(type, inputs, out);
}

static int run(struct tu_env *e, Caffe2__OperatorDef *op, ct_status_t *st)
{
    int rc = tu_run_op(e->ws, op, st);

    tu_op_free(op);
    return rc;
}

/* ---- tests ---- */

static void test_copy_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t t, d, s;

    tu_feed(e->ws, "L", CT_DTYPE_F32, 0, NULL, NULL);
    for (t = 0; t < sizeof(copy_types) / sizeof(copy_types[0]); t++) {
        for (d = 0; d < sizeof(all_dtypes) / sizeof(all_dtypes[0]); d++) {
            for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
                ct_tensor_t *x = feed_pattern(e, "X", all_dtypes[d],
                                              shapes[s].ndim, shapes[s].dims);
                ct_status_t st;
                ct_tensor_t *y;

                if (run(e, copy_op(copy_types[t], "X", "Y"), &st) != CT_OK)
                    fail_msg("%s %s shape %zu: %s", copy_types[t],
                             ct_dtype_name(all_dtypes[d]), s, st.msg);
                y = tu_fetch(e->ws, "Y");
                assert_same_tensor(y, x);
                if (ct_tensor_numel(x) > 0)
                    assert_ptr_not_equal(ct_tensor_cdata(y),
                                         ct_tensor_cdata(x));
            }
        }
    }
}

static void test_copy_output_is_independent_of_input(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {4};
    const float v[] = {1, 2, 3, 4};
    ct_tensor_t *x = tu_feed_f32(e->ws, "X", 1, d, v), *y;
    ct_status_t st;

    assert_int_equal(run(e, tu_op("Copy", "X", "Y"), &st), CT_OK);
    y = tu_fetch(e->ws, "Y");
    CT_DATA(x, float)[0] = 100;
    assert_true(CT_CDATA(y, float)[0] == 1.0f);
    assert_int_equal(ct_tensor_storage_refs(x), 1);
    assert_int_equal(ct_tensor_storage_refs(y), 1);
}

static void test_copy_in_place_keeps_data_and_storage(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {3};
    const char *const v[] = {"x", "yy", "zzz"};
    ct_tensor_t *x = tu_feed(e->ws, "X", CT_DTYPE_STRING, 1, d, v);
    const void *before = ct_tensor_cdata(x);
    ct_status_t st;

    assert_int_equal(run(e, tu_op("Copy", "X", "X"), &st), CT_OK);
    x = tu_fetch(e->ws, "X");
    assert_ptr_equal(ct_tensor_cdata(x), before);
    assert_int_equal(((const ct_str_t *)ct_tensor_cdata(x))[2].len, 3);
}

static void test_copy_rerun_same_size_reuses_output_storage(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {8, 8};
    ct_status_t st;
    const void *first;

    feed_pattern(e, "X", CT_DTYPE_F64, 2, d);
    assert_int_equal(run(e, tu_op("Copy", "X", "Y"), &st), CT_OK);
    first = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    feed_pattern(e, "X", CT_DTYPE_F64, 2, d);
    assert_int_equal(run(e, tu_op("Copy", "X", "Y"), &st), CT_OK);
    assert_ptr_equal(ct_tensor_cdata(tu_fetch(e->ws, "Y")), first);
}

static void test_copy_undefined_input_gives_undefined_output(void **state)
{
    struct tu_env *e = *state;
    ct_status_t st;
    ct_blob_t *b;
    ct_tensor_t *t;

    assert_int_equal(ct_workspace_create_blob(e->ws, "X", &b, &st), CT_OK);
    assert_int_equal(ct_blob_get_mutable_tensor(b, e->eng, &t, &st), CT_OK);
    assert_int_equal(run(e, tu_op("Copy", "X", "Y"), &st), CT_OK);
    t = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_UNDEFINED);
    assert_int_equal(ct_tensor_numel(t), 0);
}

static void test_copy_empty_blob_input_returns_etype(void **state)
{
    struct tu_env *e = *state;
    ct_status_t st;
    ct_blob_t *b;
    int rc;

    assert_int_equal(ct_workspace_create_blob(e->ws, "X", &b, &st), CT_OK);
    rc = run(e, tu_op("Copy", "X", "Y"), &st);
    tu_assert_status(&st, rc, CT_ETYPE, "input 0 \"X\" is empty");
}

static void test_copy_missing_input_returns_enotfound(void **state)
{
    struct tu_env *e = *state;
    ct_status_t st;
    int rc = run(e, tu_op("Copy", "nope", "Y"), &st);

    tu_assert_status(&st, rc, CT_ENOTFOUND, "nope");
}

static void test_copy_device_aliases_in_place_returns_eschema(void **state)
{
    struct tu_env *e = *state;
    ct_status_t st;
    int rc;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    rc = run(e, tu_op("CopyGPUToCPU", "X", "X"), &st);
    tu_assert_status(&st, rc, CT_ESCHEMA, "in-place");
}

static void test_copy_wrong_arity_returns_eschema(void **state)
{
    struct tu_env *e = *state;
    ct_status_t st;
    int rc;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    rc = run(e, tu_op("Copy", "X,X", "Y"), &st);
    tu_assert_status(&st, rc, CT_ESCHEMA, "got 2");
    rc = run(e, tu_op("CopyOnDeviceLike", "X", "Y"), &st);
    tu_assert_status(&st, rc, CT_ESCHEMA, NULL);
}

static void test_copy_over_budget_returns_enomem_naming_shape(void **state)
{
    const int64_t d[] = {300, 1000};
    struct ct_engine_config cfg;
    ct_workspace_t *ws;
    ct_engine_t *eng;
    ct_status_t st;
    int rc;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = 2000000; /* room for X (1.2 MB), not for Y */
    assert_int_equal(ct_engine_new(&cfg, &eng, &st), CT_OK);
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed(ws, "X", CT_DTYPE_F32, 2, d, NULL);
    {
        Caffe2__OperatorDef *op = tu_op("Copy", "X", "Y");
        rc = tu_run_op(ws, op, &st);
        tu_op_free(op);
    }
    tu_assert_status(&st, rc, CT_ENOMEM, "[300, 1000]");
    assert_non_null(strstr(st.msg, "\"Y\""));
    ct_workspace_free(ws);
    ct_engine_free(eng);
}

static void test_copy_alloc_failures_return_enomem_no_leak(void **state)
{
    const int64_t d[] = {4};
    const char *const v[] = {"one", "two", "", "four"};
    long k, base;
    bool done = false;

    (void)state;
    base = tu_alloc_live();
    for (k = 1; !done && k < 1000; k++) {
        struct tu_env e;
        Caffe2__OperatorDef *op = tu_op("Copy", "X", "Y");
        ct_status_t st;
        int rc;

        tu_env_init(&e);
        tu_feed(e.ws, "X", CT_DTYPE_STRING, 1, d, v);
        tu_fail_alloc_after(k);
        rc = tu_run_op(e.ws, op, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            assert_same_tensor(tu_fetch(e.ws, "Y"), tu_fetch(e.ws, "X"));
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

static void test_copy_infer_output_matches_input(void **state)
{
    struct tu_env *e = *state;
    const int64_t d[] = {5, 0, 2};
    Caffe2__OperatorDef *def = tu_op("EnsureCPUOutput", "X", "Y");
    ct_shape_t in[1], out[1];
    ct_status_t st;
    ct_op_t *op;

    tu_feed(e->ws, "X", CT_DTYPE_I16, 3, d, NULL);
    assert_int_equal(ct__op_create(e->ws, def, 0, &op, &st), CT_OK);
    memset(in, 0, sizeof(in));
    memset(out, 0, sizeof(out));
    in[0].dtype = CT_DTYPE_I16;
    in[0].ndim = 3;
    memcpy(in[0].dims, d, sizeof(d));
    out[0].ndim = -1;
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_I16);
    assert_int_equal(out[0].ndim, 3);
    assert_memory_equal(out[0].dims, d, sizeof(d));
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_copy_case_table_matches_reference),
        T(test_copy_output_is_independent_of_input),
        T(test_copy_in_place_keeps_data_and_storage),
        T(test_copy_rerun_same_size_reuses_output_storage),
        T(test_copy_undefined_input_gives_undefined_output),
        T(test_copy_empty_blob_input_returns_etype),
        T(test_copy_missing_input_returns_enotfound),
        T(test_copy_device_aliases_in_place_returns_eschema),
        T(test_copy_wrong_arity_returns_eschema),
        cmocka_unit_test(test_copy_over_budget_returns_enomem_naming_shape),
        cmocka_unit_test(test_copy_alloc_failures_return_enomem_no_leak),
        T(test_copy_infer_output_matches_input),
    };
#undef T
    return cmocka_run_group_tests_name("ops.copy", tests, NULL, NULL);
}
