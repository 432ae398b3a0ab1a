/* Tests for engine/op.c and ops/registry.c: registry lookup, op creation
 * in Caffe2's order (spec §0.2) with its error messages, and the kernel
 * helpers' errors (input type, output allocation against the budget). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/op_internal.h"
#include "ops/op_impl.h"
#include "test_util.h"

/* ---- fixtures ---- */

struct fx {
    struct tu_env env;
    Caffe2__OperatorDef *def;
    ct_op_t *op;
    ct_status_t st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    tu_env_init(&f->env);
    ct_status_clear(&f->st);
    *state = f;
    return 0;
}

/* An engine whose memory budget is 1 KiB. */
static int setup_small(void **state)
{
    struct ct_engine_config cfg;
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = 1024;
    if (ct_engine_new(&cfg, &f->env.eng, NULL) != CT_OK ||
        ct_workspace_new(f->env.eng, NULL, &f->env.ws, NULL) != CT_OK)
        return -1;
    ct_status_clear(&f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ct__op_destroy(f->op);
    tu_op_free(f->def);
    tu_env_destroy(&f->env);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static int create(struct fx *f)
{
    ct_status_clear(&f->st);
    return ct__op_create(f->env.ws, f->def, 3, &f->op, &f->st);
}

static void counter_destroy(void *obj)
{
    free(obj);
}

static const ct_blob_type_t counter_type = {"Counter", counter_destroy};

static void *find_relu(void *arg)
{
    const struct ct_op_schema *const *all;

    *(const struct ct_op_schema **)arg = ct__op_schema_find("Relu");
    return ct__op_schema_list(&all) > 0 ? (void *)all : NULL;
}

/* ---- tests: registry ---- */

/* Runs first, so the threads race on the registry's one-time sort. */
static void test_op_schema_find_concurrent_first_use(void **state)
{
    const struct ct_op_schema *found[4];
    pthread_t t[4];
    void *list[4];
    int k;

    (void)state;
    for (k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&t[k], NULL, find_relu, &found[k]), 0);
    for (k = 0; k < 4; k++) {
        pthread_join(t[k], &list[k]);
        assert_non_null(found[k]);
        assert_ptr_equal(found[k], found[0]);
        assert_ptr_equal(list[k], list[0]);
    }
}

static void test_op_schema_find_known_and_unknown(void **state)
{
    const struct ct_op_schema *s = ct__op_schema_find("Relu");

    (void)state;
    assert_non_null(s);
    assert_string_equal(s->name, "Relu");
    assert_null(ct__op_schema_find("relu")); /* case-sensitive */
    assert_null(ct__op_schema_find(""));
    assert_null(ct__op_schema_find(NULL));
}

static void test_op_schema_list_is_sorted_and_findable(void **state)
{
    const struct ct_op_schema *const *all;
    size_t n = ct__op_schema_list(&all), k;

    (void)state;
    assert_true(n > 0);
    assert_null(all[n]);
    for (k = 0; k < n; k++) {
        assert_ptr_equal(ct__op_schema_find(all[k]->name), all[k]);
        if (k > 0)
            assert_true(strcmp(all[k - 1]->name, all[k]->name) < 0);
    }
}

/* ---- tests: creation ---- */

static void test_op_create_binds_blobs(void **state)
{
    struct fx *f = *state;
    Caffe2__OperatorDef *again;
    ct_op_t *op2;

    tu_feed_f32(f->env.ws, "X", 0, NULL, (const float[]){-2});
    f->def = tu_op("Relu", "X", "Y");
    assert_int_equal(create(f), CT_OK);
    assert_int_equal(f->op->idx, 3);
    assert_int_equal(f->op->n_in, 1);
    assert_int_equal(f->op->n_out, 1);
    assert_ptr_equal(f->op->in[0], ct_workspace_get_blob(f->env.ws, "X"));
    assert_ptr_equal(f->op->out[0], ct_workspace_get_blob(f->env.ws, "Y"));
    assert_true(ct_blob_is_empty(f->op->out[0])); /* created, not run */
    assert_int_equal(f->op->numa_node, -1);
    assert_false(f->op->has_seed);
    assert_string_equal(ct_op_input_name(f->op, 0), "X");
    assert_string_equal(ct_op_output_name(f->op, 0), "Y");

    /* The derived seed is reproducible. */
    again = tu_op("Relu", "X", "Y");
    assert_int_equal(ct__op_create(f->env.ws, again, 3, &op2, &f->st), CT_OK);
    assert_int_equal(op2->seed, f->op->seed);
    ct__op_destroy(op2);
    tu_op_free(again);

    assert_int_equal(ct__op_run_serial(f->op, &f->st), CT_OK);
    assert_true(*(float *)ct_tensor_data(tu_fetch(f->env.ws, "Y")) == 0.0f);
}

static void test_op_create_unknown_type_returns_enotfound(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_op("Frobnicate", "", "Y");
    rc = create(f);
    tu_assert_status(&f->st, rc, CT_ENOTFOUND,
                     "unknown operator type \"Frobnicate\"");
    assert_null(f->op);
    assert_false(ct_workspace_has_blob(f->env.ws, "Y"));
}

static void test_op_create_arity_returns_eschema(void **state)
{
    struct fx *f = *state;
    int rc;

    f->def = tu_op("Add", "A", "C");
    rc = create(f);
    tu_assert_status(&f->st, rc, CT_ESCHEMA,
                     "Operator def did not pass schema checking: Add takes 2 "
                     "inputs, got 1");
    tu_op_free(f->def);
    f->def = tu_op("Add", "A,B", "C,D");
    rc = create(f);
    tu_assert_status(&f->st, rc, CT_ESCHEMA, "Add takes 1 output, got 2");
}

static void test_op_create_inplace_returns_eschema(void **state)
{
    struct fx *f = *state;
    int rc;

    tu_feed_f32(f->env.ws, "X", 0, NULL, (const float[]){1});
    f->def = tu_op("Flatten", "X", "X");
    rc = create(f);
    tu_assert_status(&f->st, rc, CT_ESCHEMA,
                     "Operator def did not pass schema checking: Flatten does "
                     "not allow input 0 and output 0 to be the same blob "
                     "\"X\" (in-place)");
}

static void test_op_create_missing_input_returns_enotfound(void **state)
{
    struct fx *f = *state;
    int rc;

    tu_feed_f32(f->env.ws, "A", 0, NULL, (const float[]){1});
    f->def = tu_op("Add", "A,B", "C");
    rc = create(f);
    tu_assert_status(&f->st, rc, CT_ENOTFOUND,
                     "op Add: Encountered a non-existing input blob: B");
    assert_false(ct_workspace_has_blob(f->env.ws, "C"));
}

static void test_op_create_init_error_propagates(void **state)
{
    struct fx *f = *state;
    int rc;

    /* ConstantFill's init rejects an INT32 value that does not fit. */
    f->def = tu_op("ConstantFill", "", "Y");
    tu_arg_i(f->def, "dtype", CT_DTYPE_I8);
    tu_arg_i(f->def, "value", 1000);
    rc = create(f);
    tu_assert_status(&f->st, rc, CT_EARG, "value");
    assert_null(f->op);
}

static void test_op_create_alloc_failure_returns_enomem(void **state)
{
    struct fx *f = *state;
    ct_blob_t *b;
    long live, k;
    int rc;

    tu_feed_f32(f->env.ws, "A", 0, NULL, (const float[]){1});
    tu_feed_f32(f->env.ws, "B", 0, NULL, (const float[]){1});
    assert_int_equal(ct_workspace_create_blob(f->env.ws, "C", &b, &f->st),
                     CT_OK);
    f->def = tu_op("Add", "A,B", "C");
    live = tu_alloc_live();
    for (k = 1;; k++) {
        tu_fail_alloc_after(k);
        rc = create(f);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&f->st, rc, CT_ENOMEM, "out of memory");
        assert_null(f->op);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_true(k > 2);
}

/* ---- tests: kernel helpers ---- */

static void test_op_input_empty_blob_returns_etype(void **state)
{
    struct fx *f = *state;
    ct_blob_t *b;
    int rc;

    assert_int_equal(ct_workspace_create_blob(f->env.ws, "X", &b, &f->st),
                     CT_OK);
    f->def = tu_op("Relu", "X", "Y");
    assert_int_equal(create(f), CT_OK);
    rc = ct__op_run_serial(f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_ETYPE, "input 0 \"X\" is empty");
    /* Without a status the code still comes back. */
    assert_int_equal(ct__op_run_serial(f->op, NULL), CT_ETYPE);
}

static void test_op_input_non_tensor_returns_etype(void **state)
{
    struct fx *f = *state;
    ct_blob_t *b;
    int rc;

    assert_int_equal(ct_workspace_create_blob(f->env.ws, "X", &b, &f->st),
                     CT_OK);
    ct_blob_reset(b, &counter_type, malloc(8));
    f->def = tu_op("Relu", "X", "Y");
    assert_int_equal(create(f), CT_OK);
    rc = ct__op_run_serial(f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_ETYPE,
                     "input 0 \"X\" holds Counter, not a tensor");
}

static void test_op_output_over_budget_names_output(void **state)
{
    struct fx *f = *state;
    static const int64_t shape[] = {1000, 1000};
    int rc;

    f->def = tu_op("ConstantFill", "", "Y");
    tu_arg_ints(f->def, "shape", 2, shape);
    tu_arg_f(f->def, "value", 1.0f);
    assert_int_equal(create(f), CT_OK);
    rc = ct__op_run_serial(f->op, &f->st);
    tu_assert_status(&f->st, rc, CT_ENOMEM,
                     "output 0 \"Y\": tensor [1000, 1000] FLOAT: 4000000 "
                     "bytes exceed the memory budget");
    assert_int_equal(ct_engine_mem_in_use(f->env.eng), 0);
}

static void test_op_output_helpers_with_manual_context(void **state)
{
    struct fx *f = *state;
    static const int64_t dims[] = {3};
    ct_op_ctx_t ctx;
    ct_tensor_t *t;

    f->def = tu_op("ConstantFill", "", "Y");
    assert_int_equal(create(f), CT_OK);
    memset(&ctx, 0, sizeof(ctx));
    ctx.op = f->op;
    ctx.eng = f->env.eng;
    ctx.nth = 1;
    ctx.status = &f->st;
    assert_int_equal(ct_op_output_tensor(&ctx, 0, &t), CT_OK);
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_UNDEFINED);
    assert_int_equal(ct_op_output(&ctx, 0, CT_DTYPE_I32, 1, dims, &t), CT_OK);
    assert_int_equal(ct_tensor_numel(t), 3);
    assert_int_equal(ct_op_fail(&ctx, CT_ESHAPE, "bad %d", 7), CT_ESHAPE);
    assert_string_equal(f->st.msg, "bad 7");
}

static void test_inplace_rules(void **state)
{
    (void)state;
    assert_true(ct__inplace_any(3, 1));
    assert_true(ct__inplace_0_0(0, 0));
    assert_false(ct__inplace_0_0(1, 0));
    assert_false(ct__inplace_0_0(0, 1));
    assert_true(ct__inplace_same(2, 2));
    assert_false(ct__inplace_same(1, 2));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TS(f) cmocka_unit_test_setup_teardown(f, setup_small, teardown)
    const struct CMUnitTest tests[] = {
        T(test_op_schema_find_concurrent_first_use),
        T(test_op_schema_find_known_and_unknown),
        T(test_op_schema_list_is_sorted_and_findable),
        T(test_op_create_binds_blobs),
        T(test_op_create_unknown_type_returns_enotfound),
        T(test_op_create_arity_returns_eschema),
        T(test_op_create_inplace_returns_eschema),
        T(test_op_create_missing_input_returns_enotfound),
        T(test_op_create_init_error_propagates),
        T(test_op_create_alloc_failure_returns_enomem),
        T(test_op_input_empty_blob_returns_etype),
        T(test_op_input_non_tensor_returns_etype),
        TS(test_op_output_over_budget_names_output),
        T(test_op_output_helpers_with_manual_context),
        T(test_inplace_rules),
    };
#undef T
#undef TS
    return cmocka_run_group_tests_name("engine.op", tests, NULL, NULL);
}
