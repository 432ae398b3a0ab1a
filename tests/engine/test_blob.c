/* Tests for engine/blob.c: blob contents, typed access and ownership
 * (white-box for the workspace-internal constructor, blob_impl.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cortado/blob.h"
#include "engine/blob_impl.h"
#include "test_util.h"

/* ---- fixtures ---- */

static int setup_engine(void **state)
{
    ct_engine_t *eng;

    if (ct_engine_new(NULL, &eng, NULL) != CT_OK)
        return -1;
    *state = eng;
    return 0;
}

static int teardown_engine(void **state)
{
    ct_engine_free(*state);
    return 0;
}

/* ---- helpers ---- */

/* A non-tensor type that counts how often its objects are destroyed. */
static int n_destroyed;

static void counter_destroy(void *obj)
{
    n_destroyed++;
    free(obj);
}

static const ct_blob_type_t counter_type = {"Counter", counter_destroy};

static int *new_counter(int v)
{
    int *p = malloc(sizeof(*p));
    assert_non_null(p);
    *p = v;
    return p;
}

/* Runs fn(arg) in a child process and asserts that it aborts (a
 * CT_ASSERT contract check); the child's stderr is discarded. */
static void expect_abort(void (*fn)(void *), void *arg)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(2);
        fn(arg);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void reset_type_without_obj(void *arg)
{
    ct_blob_reset(arg, &counter_type, NULL);
}

/* ---- tests ---- */

static void test_blob_new_is_empty_and_named(void **state)
{
    ct_blob_t *b = ct__blob_new("data");

    (void)state;
    assert_non_null(b);
    assert_string_equal(ct_blob_name(b), "data");
    assert_true(ct_blob_is_empty(b));
    assert_null(ct_blob_type(b));
    assert_null(ct_blob_get(b, &ct_blob_type_tensor));
    assert_null(ct_blob_get_tensor(b));
    assert_null(ct_blob_take(b));
    ct__blob_free(b);
}

static void test_blob_new_copies_name(void **state)
{
    char name[8] = "abc";
    ct_blob_t *b = ct__blob_new(name);

    (void)state;
    strcpy(name, "xyz");
    assert_string_equal(ct_blob_name(b), "abc");
    ct__blob_free(b);
}

static void test_blob_new_alloc_failure_returns_null(void **state)
{
    ct_blob_t *b;
    long k, live;

    (void)state;
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        b = ct__blob_new("x");
        tu_fail_alloc_off();
        if (b != NULL)
            break;
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_int_equal(k, 3);
    ct__blob_free(b);
}

static void test_blob_free_null_is_noop(void **state)
{
    (void)state;
    ct__blob_free(NULL);
}

static void test_blob_free_destroys_content(void **state)
{
    ct_blob_t *b = ct__blob_new("c");

    (void)state;
    n_destroyed = 0;
    ct_blob_reset(b, &counter_type, new_counter(1));
    ct__blob_free(b);
    assert_int_equal(n_destroyed, 1);
}

static void test_blob_set_name_replaces_name(void **state)
{
    ct_blob_t *b = ct__blob_new("old");

    (void)state;
    assert_int_equal(ct__blob_set_name(b, "new"), CT_OK);
    assert_string_equal(ct_blob_name(b), "new");
    ct__blob_free(b);
}

static void test_blob_set_name_alloc_failure_keeps_old(void **state)
{
    ct_blob_t *b = ct__blob_new("old");
    long live = tu_alloc_live();
    int rc;

    (void)state;
    tu_fail_alloc_after(1);
    rc = ct__blob_set_name(b, "new");
    tu_fail_alloc_off();
    assert_int_equal(rc, CT_ENOMEM);
    assert_string_equal(ct_blob_name(b), "old");
    assert_int_equal(tu_alloc_live(), live);
    ct__blob_free(b);
}

static void test_blob_reset_stores_and_destroys_previous(void **state)
{
    ct_blob_t *b = ct__blob_new("c");
    int *one = new_counter(1);

    (void)state;
    n_destroyed = 0;
    ct_blob_reset(b, &counter_type, one);
    assert_false(ct_blob_is_empty(b));
    assert_ptr_equal(ct_blob_type(b), &counter_type);
    assert_ptr_equal(ct_blob_get(b, &counter_type), one);
    assert_null(ct_blob_get_tensor(b));
    ct_blob_reset(b, &counter_type, new_counter(2));
    assert_int_equal(n_destroyed, 1);
    assert_int_equal(*(int *)ct_blob_get(b, &counter_type), 2);
    ct_blob_reset(b, NULL, NULL);
    assert_int_equal(n_destroyed, 2);
    assert_true(ct_blob_is_empty(b));
    ct__blob_free(b);
}

static void test_blob_reset_same_object_keeps_it_alive(void **state)
{
    ct_blob_t *b = ct__blob_new("c");
    int *one = new_counter(7);

    (void)state;
    n_destroyed = 0;
    ct_blob_reset(b, &counter_type, one);
    ct_blob_reset(b, &counter_type, one);
    assert_int_equal(n_destroyed, 0);
    assert_int_equal(*(int *)ct_blob_get(b, &counter_type), 7);
    ct__blob_free(b);
    assert_int_equal(n_destroyed, 1);
}

static void test_blob_reset_type_without_object_aborts(void **state)
{
    ct_blob_t *b = ct__blob_new("c");

    (void)state;
    expect_abort(reset_type_without_obj, b);
    ct__blob_free(b);
}

static void test_blob_take_returns_content_without_destroying(void **state)
{
    ct_blob_t *b = ct__blob_new("c");
    int *one = new_counter(1);
    void *got;

    (void)state;
    n_destroyed = 0;
    ct_blob_reset(b, &counter_type, one);
    got = ct_blob_take(b);
    assert_ptr_equal(got, one);
    assert_true(ct_blob_is_empty(b));
    assert_null(ct_blob_type(b));
    ct__blob_free(b);
    assert_int_equal(n_destroyed, 0);
    free(got);
}

static void test_blob_get_wrong_type_returns_null(void **state)
{
    ct_blob_t *b = ct__blob_new("c");

    (void)state;
    ct_blob_reset(b, &counter_type, new_counter(1));
    assert_null(ct_blob_get(b, &ct_blob_type_tensor));
    assert_null(ct_blob_get_tensor(b));
    ct__blob_free(b);
}

static void test_blob_type_tensor_is_named_tensor(void **state)
{
    (void)state;
    assert_string_equal(ct_blob_type_tensor.name, "Tensor");
    assert_non_null(ct_blob_type_tensor.destroy_cb);
}

static void test_blob_get_mutable_tensor_creates_empty_tensor(void **state)
{
    ct_engine_t *eng = *state;
    ct_blob_t *b = ct__blob_new("t");
    ct_tensor_t *t = NULL;
    ct_status_t st;

    assert_int_equal(ct_blob_get_mutable_tensor(b, eng, &t, &st), CT_OK);
    assert_non_null(t);
    assert_ptr_equal(ct_blob_get_tensor(b), t);
    assert_ptr_equal(ct_blob_type(b), &ct_blob_type_tensor);
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_UNDEFINED);
    assert_int_equal(ct_tensor_numel(t), 0);
    ct__blob_free(b);
}

static void test_blob_get_mutable_tensor_returns_existing(void **state)
{
    ct_engine_t *eng = *state;
    ct_blob_t *b = ct__blob_new("t");
    ct_tensor_t *t1, *t2;
    int64_t dims[1] = {3};

    assert_int_equal(ct_blob_get_mutable_tensor(b, eng, &t1, NULL), CT_OK);
    assert_int_equal(ct_tensor_resize(t1, CT_DTYPE_F32, 1, dims, NULL), CT_OK);
    assert_int_equal(ct_blob_get_mutable_tensor(b, eng, &t2, NULL), CT_OK);
    assert_ptr_equal(t1, t2);
    assert_int_equal(ct_tensor_numel(t2), 3);
    ct__blob_free(b);
}

static void test_blob_get_mutable_tensor_replaces_other_type(void **state)
{
    ct_engine_t *eng = *state;
    ct_blob_t *b = ct__blob_new("t");
    ct_tensor_t *t;

    n_destroyed = 0;
    ct_blob_reset(b, &counter_type, new_counter(1));
    assert_int_equal(ct_blob_get_mutable_tensor(b, eng, &t, NULL), CT_OK);
    assert_int_equal(n_destroyed, 1);
    assert_ptr_equal(ct_blob_get_tensor(b), t);
    ct__blob_free(b);
}

static void test_blob_get_mutable_tensor_alloc_failure_keeps_blob(void **state)
{
    ct_engine_t *eng = *state;
    ct_blob_t *b = ct__blob_new("t");
    int *one = new_counter(1);
    ct_tensor_t *t;
    ct_status_t st;
    long live = tu_alloc_live();
    int rc;

    n_destroyed = 0;
    ct_blob_reset(b, &counter_type, one);
    tu_fail_alloc_after(1);
    rc = ct_blob_get_mutable_tensor(b, eng, &t, &st);
    tu_fail_alloc_off();
    tu_assert_status(&st, rc, CT_ENOMEM, "tensor: out of memory");
    assert_int_equal(n_destroyed, 0);
    assert_ptr_equal(ct_blob_get(b, &counter_type), one);
    assert_int_equal(tu_alloc_live(), live);
    ct__blob_free(b);
}

static void test_blob_free_releases_tensor_storage(void **state)
{
    ct_engine_t *eng = *state;
    ct_blob_t *b = ct__blob_new("t");
    ct_tensor_t *t;
    int64_t dims[2] = {4, 4};

    assert_int_equal(ct_blob_get_mutable_tensor(b, eng, &t, NULL), CT_OK);
    assert_int_equal(ct_tensor_resize(t, CT_DTYPE_F64, 2, dims, NULL), CT_OK);
    assert_true(ct_engine_mem_in_use(eng) == 128);
    ct__blob_free(b);
    assert_true(ct_engine_mem_in_use(eng) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blob_new_is_empty_and_named),
        cmocka_unit_test(test_blob_new_copies_name),
        cmocka_unit_test(test_blob_new_alloc_failure_returns_null),
        cmocka_unit_test(test_blob_free_null_is_noop),
        cmocka_unit_test(test_blob_free_destroys_content),
        cmocka_unit_test(test_blob_set_name_replaces_name),
        cmocka_unit_test(test_blob_set_name_alloc_failure_keeps_old),
        cmocka_unit_test(test_blob_reset_stores_and_destroys_previous),
        cmocka_unit_test(test_blob_reset_same_object_keeps_it_alive),
        cmocka_unit_test(test_blob_reset_type_without_object_aborts),
        cmocka_unit_test(test_blob_take_returns_content_without_destroying),
        cmocka_unit_test(test_blob_get_wrong_type_returns_null),
        cmocka_unit_test(test_blob_type_tensor_is_named_tensor),
        cmocka_unit_test_setup_teardown(
            test_blob_get_mutable_tensor_creates_empty_tensor, setup_engine,
            teardown_engine),
        cmocka_unit_test_setup_teardown(
            test_blob_get_mutable_tensor_returns_existing, setup_engine,
            teardown_engine),
        cmocka_unit_test_setup_teardown(
            test_blob_get_mutable_tensor_replaces_other_type, setup_engine,
            teardown_engine),
        cmocka_unit_test_setup_teardown(
            test_blob_get_mutable_tensor_alloc_failure_keeps_blob, setup_engine,
            teardown_engine),
        cmocka_unit_test_setup_teardown(test_blob_free_releases_tensor_storage,
                                        setup_engine, teardown_engine),
    };

    (void)tu_alloc_live(); /* count every block from the start */
    return cmocka_run_group_tests_name("engine.blob", tests, NULL, NULL);
}
