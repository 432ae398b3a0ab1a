/* Tests for engine/tensor.c: dtypes, shapes, storage sharing and copies,
 * the engine memory budget and float16 conversion. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cortado/tensor.h"
#include "test_util.h"

/* ---- fixtures ---- */

/* An engine with the default budget. */
static int setup_engine(void **state)
{
    ct_engine_t *eng;

    if (ct_engine_new(NULL, &eng, NULL) != CT_OK)
        return -1;
    *state = eng;
    return 0;
}

/* An engine with a 1 MiB budget. */
static int setup_small_engine(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;

    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = 1 << 20;
    if (ct_engine_new(&cfg, &eng, NULL) != CT_OK)
        return -1;
    *state = eng;
    return 0;
}

/* Every test must have freed its tensors: the budget counter is the leak
 * check for tensor storage. */
static int teardown_engine(void **state)
{
    ct_engine_t *eng = *state;
    int leaked = ct_engine_mem_in_use(eng) != 0;

    ct_engine_free(eng);
    return leaked ? -1 : 0;
}

/* ---- helpers ---- */

static ct_tensor_t *make(ct_engine_t *eng, ct_dtype_t dt, int ndim,
                         const int64_t *dims)
{
    ct_tensor_t *t = NULL;
    ct_status_t st;

    if (ct_tensor_new_shape(eng, dt, ndim, dims, &t, &st) != CT_OK)
        fail_msg("ct_tensor_new_shape: %s", st.msg);
    return t;
}

static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
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

static void dim_2_of(void *t)
{
    (void)ct_tensor_dim(t, 2);
}

static void assert_shape(const ct_tensor_t *t, int ndim, const int64_t *dims)
{
    int i;

    assert_int_equal(ct_tensor_ndim(t), ndim);
    for (i = 0; i < ndim; i++)
        assert_int_equal(ct_tensor_dim(t, i), dims[i]);
}

/* ---- tests: dtypes ---- */

static void test_dtype_size_every_dtype(void **state)
{
    static const struct {
        ct_dtype_t dt;
        size_t size;
    } want[] = {
        {CT_DTYPE_F32, 4},  {CT_DTYPE_I32, 4},
        {CT_DTYPE_BYTE, 1}, {CT_DTYPE_STRING, sizeof(ct_str_t)},
        {CT_DTYPE_BOOL, 1}, {CT_DTYPE_U8, 1},
        {CT_DTYPE_I8, 1},   {CT_DTYPE_U16, 2},
        {CT_DTYPE_I16, 2},  {CT_DTYPE_I64, 8},
        {CT_DTYPE_F16, 2},  {CT_DTYPE_F64, 8},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(ct_dtype_size(want[i].dt), want[i].size);
    assert_int_equal(ct_dtype_size(CT_DTYPE_UNDEFINED), 0);
    assert_int_equal(ct_dtype_size((ct_dtype_t)11), 0);
    assert_int_equal(ct_dtype_size(CT_DTYPE_COUNT), 0);
    assert_int_equal(ct_dtype_size((ct_dtype_t)-3), 0);
}

static void test_dtype_name_every_dtype(void **state)
{
    static const struct {
        ct_dtype_t dt;
        const char *name;
    } want[] = {
        {CT_DTYPE_F32, "FLOAT"},   {CT_DTYPE_I32, "INT32"},
        {CT_DTYPE_BYTE, "BYTE"},   {CT_DTYPE_STRING, "STRING"},
        {CT_DTYPE_BOOL, "BOOL"},   {CT_DTYPE_U8, "UINT8"},
        {CT_DTYPE_I8, "INT8"},     {CT_DTYPE_U16, "UINT16"},
        {CT_DTYPE_I16, "INT16"},   {CT_DTYPE_I64, "INT64"},
        {CT_DTYPE_F16, "FLOAT16"}, {CT_DTYPE_F64, "DOUBLE"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(ct_dtype_name(want[i].dt), want[i].name);
    assert_string_equal(ct_dtype_name(CT_DTYPE_UNDEFINED), "UNDEFINED");
    assert_string_equal(ct_dtype_name((ct_dtype_t)11), "UNDEFINED");
    assert_string_equal(ct_dtype_name((ct_dtype_t)99), "UNDEFINED");
}

static void test_dtype_valid_rejects_gaps_and_out_of_range(void **state)
{
    int dt;

    (void)state;
    for (dt = 1; dt < CT_DTYPE_COUNT; dt++)
        assert_int_equal(ct_dtype_valid(dt), dt != 11);
    assert_false(ct_dtype_valid(0));
    assert_false(ct_dtype_valid(-1));
    assert_false(ct_dtype_valid(CT_DTYPE_COUNT));
    assert_false(ct_dtype_valid(1000));
}

static void test_dtype_parse_caffe2_names_round_trip(void **state)
{
    ct_dtype_t out;
    int dt;

    (void)state;
    for (dt = 1; dt < CT_DTYPE_COUNT; dt++) {
        if (!ct_dtype_valid(dt))
            continue;
        assert_int_equal(ct_dtype_parse(ct_dtype_name((ct_dtype_t)dt), &out),
                         CT_OK);
        assert_int_equal(out, dt);
    }
}

static void test_dtype_parse_short_names_case_insensitive(void **state)
{
    static const struct {
        const char *name;
        ct_dtype_t dt;
    } want[] = {
        {"float32", CT_DTYPE_F32},   {"F32", CT_DTYPE_F32},
        {"Float", CT_DTYPE_F32},     {"int64", CT_DTYPE_I64},
        {"INT32", CT_DTYPE_I32},     {"uint8", CT_DTYPE_U8},
        {"bool", CT_DTYPE_BOOL},     {"double", CT_DTYPE_F64},
        {"float16", CT_DTYPE_F16},   {"HALF", CT_DTYPE_F16},
        {"string", CT_DTYPE_STRING}, {"int8", CT_DTYPE_I8},
        {"uint16", CT_DTYPE_U16},    {"int16", CT_DTYPE_I16},
        {"float64", CT_DTYPE_F64},   {"byte", CT_DTYPE_BYTE},
    };
    ct_dtype_t out;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(ct_dtype_parse(want[i].name, &out), CT_OK);
        assert_int_equal(out, want[i].dt);
    }
}

static void test_dtype_parse_unknown_returns_einval(void **state)
{
    ct_dtype_t out = CT_DTYPE_F32;

    (void)state;
    assert_int_equal(ct_dtype_parse("quaternion", &out), CT_EINVAL);
    assert_int_equal(ct_dtype_parse("", &out), CT_EINVAL);
    assert_int_equal(ct_dtype_parse("UNDEFINED", &out), CT_EINVAL);
    assert_int_equal(ct_dtype_parse("float32 ", &out), CT_EINVAL);
    assert_int_equal(out, CT_DTYPE_F32);
}

/* ---- tests: construction ---- */

static void test_tensor_new_is_empty_undefined(void **state)
{
    ct_tensor_t *t;
    ct_status_t st;

    assert_int_equal(ct_tensor_new(*state, &t, &st), CT_OK);
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_UNDEFINED);
    assert_int_equal(ct_tensor_ndim(t), 1);
    assert_int_equal(ct_tensor_dim(t, 0), 0);
    assert_int_equal(ct_tensor_numel(t), 0);
    assert_int_equal(ct_tensor_nbytes(t), 0);
    assert_null(ct_tensor_data(t));
    assert_null(ct_tensor_cdata(t));
    assert_int_equal(ct_tensor_storage_refs(t), 0);
    ct_tensor_free(t);
}

static void test_tensor_new_alloc_failure_returns_enomem(void **state)
{
    ct_tensor_t *t = (ct_tensor_t *)state; /* non-NULL sentinel */
    ct_status_t st;
    int rc;

    tu_fail_alloc_after(1);
    rc = ct_tensor_new(*state, &t, &st);
    tu_fail_alloc_off();
    tu_assert_status(&st, rc, CT_ENOMEM, "tensor: out of memory");
    assert_null(t);
}

static void test_tensor_free_null_is_noop(void **state)
{
    (void)state;
    ct_tensor_free(NULL);
}

static void test_tensor_new_shape_zero_filled(void **state)
{
    int64_t dims[3] = {2, 3, 4};
    ct_tensor_t *t = make(*state, CT_DTYPE_I64, 3, dims);
    const int64_t *d = ct_tensor_cdata(t);
    int64_t i;

    assert_shape(t, 3, dims);
    assert_int_equal(ct_tensor_numel(t), 24);
    assert_int_equal(ct_tensor_nbytes(t), 24 * 8);
    assert_memory_equal(ct_tensor_dims(t), dims, sizeof(dims));
    assert_int_equal((uintptr_t)ct_tensor_data(t) % 64, 0);
    for (i = 0; i < 24; i++)
        assert_int_equal(d[i], 0);
    assert_int_equal(ct_tensor_storage_refs(t), 1);
    assert_true(ct_engine_mem_in_use(*state) == 24 * 8);
    ct_tensor_free(t);
}

static void test_tensor_new_shape_scalar_has_one_element(void **state)
{
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 0, NULL);

    assert_int_equal(ct_tensor_ndim(t), 0);
    assert_int_equal(ct_tensor_numel(t), 1);
    assert_int_equal(ct_tensor_nbytes(t), 4);
    assert_non_null(ct_tensor_data(t));
    assert_true(*(float *)ct_tensor_data(t) == 0.0f);
    ct_tensor_free(t);
}

static void test_tensor_new_shape_zero_dim_has_no_data(void **state)
{
    int64_t dims[2] = {3, 0};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 2, dims);

    assert_shape(t, 2, dims);
    assert_int_equal(ct_tensor_numel(t), 0);
    assert_int_equal(ct_tensor_nbytes(t), 0);
    assert_null(ct_tensor_data(t));
    assert_int_equal(ct_tensor_storage_refs(t), 1);
    assert_true(ct_engine_mem_in_use(*state) == 0);
    ct_tensor_free(t);
}

static void test_tensor_new_shape_strings_start_empty(void **state)
{
    int64_t dims[1] = {3};
    ct_tensor_t *t = make(*state, CT_DTYPE_STRING, 1, dims);
    const ct_str_t *s = ct_tensor_cdata(t);
    int i;

    for (i = 0; i < 3; i++) {
        assert_int_equal(s[i].len, 0);
        assert_null(s[i].data);
    }
    ct_tensor_free(t);
}

static void test_tensor_new_shape_negative_dim_returns_eshape(void **state)
{
    int64_t dims[2] = {2, -2};
    ct_tensor_t *t = (ct_tensor_t *)state;
    ct_status_t st;
    int rc;

    rc = ct_tensor_new_shape(*state, CT_DTYPE_F32, 2, dims, &t, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "dim 1 is negative (-2)");
    assert_null(t);
}

static void test_tensor_new_shape_rank_too_large_returns_eshape(void **state)
{
    int64_t dims[CT_MAX_DIMS + 1];
    ct_tensor_t *t;
    ct_status_t st;
    int i, rc;

    for (i = 0; i <= CT_MAX_DIMS; i++)
        dims[i] = 1;
    rc = ct_tensor_new_shape(*state, CT_DTYPE_F32, CT_MAX_DIMS + 1, dims, &t,
                             &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "rank 17 outside [0, 16]");
    rc = ct_tensor_new_shape(*state, CT_DTYPE_F32, -1, dims, &t, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "rank -1 outside [0, 16]");
    t = make(*state, CT_DTYPE_U8, CT_MAX_DIMS, dims);
    assert_int_equal(ct_tensor_ndim(t), CT_MAX_DIMS);
    assert_int_equal(ct_tensor_numel(t), 1);
    ct_tensor_free(t);
}

static void test_tensor_new_shape_int64_overflow_returns_eoverflow(void **state)
{
    int64_t dims[2] = {INT64_MAX, 2};
    ct_tensor_t *t;
    ct_status_t st;
    int rc;

    rc = ct_tensor_new_shape(*state, CT_DTYPE_U8, 2, dims, &t, &st);
    tu_assert_status(&st, rc, CT_EOVERFLOW,
                     "element count of shape [9223372036854775807, 2] "
                     "overflows int64");
}

static void test_tensor_new_shape_byte_overflow_returns_eoverflow(void **state)
{
    int64_t dims[2] = {(int64_t)1 << 31, (int64_t)1 << 31};
    ct_tensor_t *t;
    ct_status_t st;
    int rc;

    /* 2^62 elements fit int64, but not 2^65 bytes in size_t. */
    rc = ct_tensor_new_shape(*state, CT_DTYPE_F64, 2, dims, &t, &st);
    tu_assert_status(&st, rc, CT_EOVERFLOW,
                     "4611686018427387904 elements of 8 bytes overflow "
                     "size_t");
    assert_true(ct_engine_mem_in_use(*state) == 0);
}

static void test_tensor_new_shape_zero_dim_beats_overflow(void **state)
{
    int64_t dims[3] = {INT64_MAX, 0, INT64_MAX};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 3, dims);

    assert_int_equal(ct_tensor_numel(t), 0);
    ct_tensor_free(t);
}

static void test_tensor_new_shape_invalid_dtype_returns_etype(void **state)
{
    int64_t dims[1] = {2};
    ct_tensor_t *t;
    ct_status_t st;
    int rc;

    rc = ct_tensor_new_shape(*state, (ct_dtype_t)11, 1, dims, &t, &st);
    tu_assert_status(&st, rc, CT_ETYPE, "invalid dtype 11");
    rc = ct_tensor_new_shape(*state, CT_DTYPE_UNDEFINED, 1, dims, &t, &st);
    tu_assert_status(&st, rc, CT_ETYPE, "invalid dtype 0");
}

static void test_tensor_new_shape_alloc_failure_returns_enomem(void **state)
{
    int64_t dims[2] = {3, 5};
    ct_tensor_t *t;
    ct_status_t st;
    long k, live;
    int rc;

    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_tensor_new_shape(*state, CT_DTYPE_F32, 2, dims, &t, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        assert_int_equal(rc, CT_ENOMEM);
        assert_int_equal(st.code, CT_ENOMEM);
        assert_null(t);
        assert_int_equal(tu_alloc_live(), live);
        assert_true(ct_engine_mem_in_use(*state) == 0);
    }
    /* tensor, storage header, storage data */
    assert_int_equal(k, 4);
    assert_int_equal(ct_tensor_numel(t), 15);
    ct_tensor_free(t);
}

static void test_tensor_new_shape_data_alloc_failure_names_shape(void **state)
{
    int64_t dims[2] = {3, 5};
    ct_tensor_t *t;
    ct_status_t st;
    int rc;

    tu_fail_alloc_after(3);
    rc = ct_tensor_new_shape(*state, CT_DTYPE_F32, 2, dims, &t, &st);
    tu_fail_alloc_off();
    tu_assert_status(&st, rc, CT_ENOMEM,
                     "tensor [3, 5] FLOAT: malloc of 60 bytes failed");
}

/* ---- tests: resize and reshape ---- */

static void test_tensor_resize_same_size_keeps_storage(void **state)
{
    int64_t a[2] = {2, 3}, b[3] = {3, 1, 2};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 2, a);
    float *p = ct_tensor_data(t);

    p[5] = 42.0f;
    assert_int_equal(ct_tensor_resize(t, CT_DTYPE_F32, 3, b, NULL), CT_OK);
    assert_ptr_equal(ct_tensor_data(t), p);
    assert_true(p[5] == 42.0f);
    assert_shape(t, 3, b);
    assert_true(ct_engine_mem_in_use(*state) == 24);
    ct_tensor_free(t);
}

static void test_tensor_resize_shared_storage_copies_on_write(void **state)
{
    int64_t a[1] = {4};
    ct_tensor_t *t = make(*state, CT_DTYPE_I32, 1, a);
    ct_tensor_t *u;
    int32_t *p = ct_tensor_data(t);

    p[0] = 7;
    assert_int_equal(ct_tensor_new(*state, &u, NULL), CT_OK);
    ct_tensor_share(u, t);
    assert_int_equal(ct_tensor_resize(t, CT_DTYPE_I32, 1, a, NULL), CT_OK);
    /* t got its own copy (an in-place op still reads its input through
     * t); u keeps the snapshot. Writes to t no longer reach u. */
    assert_ptr_not_equal(ct_tensor_data(t), p);
    assert_int_equal(*(int32_t *)ct_tensor_data(t), 7);
    *(int32_t *)ct_tensor_data(t) = 9;
    assert_ptr_equal(ct_tensor_data(u), p);
    assert_int_equal(p[0], 7);
    assert_int_equal(ct_tensor_storage_refs(t), 1);
    assert_int_equal(ct_tensor_storage_refs(u), 1);
    ct_tensor_free(t);
    ct_tensor_free(u);
}

static void test_tensor_resize_other_dtype_same_bytes_reallocates(void **state)
{
    int64_t a[1] = {4};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);

    *(float *)ct_tensor_data(t) = 1.0f;
    assert_int_equal(ct_tensor_resize(t, CT_DTYPE_I32, 1, a, NULL), CT_OK);
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_I32);
    assert_int_equal(*(int32_t *)ct_tensor_data(t), 0);
    assert_true(ct_engine_mem_in_use(*state) == 16);
    ct_tensor_free(t);
}

static void test_tensor_resize_new_size_zeroes_and_recharges(void **state)
{
    int64_t a[1] = {4}, b[1] = {100};
    ct_tensor_t *t = make(*state, CT_DTYPE_F64, 1, a);

    assert_int_equal(ct_tensor_resize(t, CT_DTYPE_F64, 1, b, NULL), CT_OK);
    assert_int_equal(ct_tensor_numel(t), 100);
    assert_true(((double *)ct_tensor_data(t))[99] == 0.0);
    assert_true(ct_engine_mem_in_use(*state) == 800);
    assert_true(ct_engine_mem_peak(*state) >= 800);
    ct_tensor_free(t);
}

static void test_tensor_resize_failure_leaves_tensor_unchanged(void **state)
{
    int64_t a[2] = {2, 2}, bad[2] = {2, -1};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 2, a);
    void *p = ct_tensor_data(t);
    ct_status_t st;
    int rc;

    rc = ct_tensor_resize(t, CT_DTYPE_F64, 2, bad, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "dim 1 is negative (-1)");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_F32);
    assert_shape(t, 2, a);
    assert_ptr_equal(ct_tensor_data(t), p);
    ct_tensor_free(t);
}

static void
test_tensor_resize_alloc_failure_leaves_tensor_unchanged(void **state)
{
    int64_t a[1] = {2}, b[1] = {8};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    void *p = ct_tensor_data(t);
    long k, live;
    int rc;

    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_tensor_resize(t, CT_DTYPE_F32, 1, b, NULL);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        assert_int_equal(rc, CT_ENOMEM);
        assert_ptr_equal(ct_tensor_data(t), p);
        assert_int_equal(ct_tensor_numel(t), 2);
        assert_int_equal(tu_alloc_live(), live);
        assert_true(ct_engine_mem_in_use(*state) == 8);
    }
    assert_int_equal(ct_tensor_numel(t), 8);
    ct_tensor_free(t);
}

static void test_tensor_reshape_same_count_keeps_data(void **state)
{
    int64_t a[2] = {2, 6}, b[3] = {3, 2, 2};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 2, a);
    void *p = ct_tensor_data(t);

    assert_int_equal(ct_tensor_reshape(t, 3, b, NULL), CT_OK);
    assert_shape(t, 3, b);
    assert_ptr_equal(ct_tensor_data(t), p);
    assert_int_equal(ct_tensor_reshape(t, 0, NULL, NULL), CT_ESHAPE);
    ct_tensor_free(t);
}

static void test_tensor_reshape_scalar_to_vector_of_one(void **state)
{
    int64_t one[1] = {1};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 0, NULL);

    assert_int_equal(ct_tensor_reshape(t, 1, one, NULL), CT_OK);
    assert_int_equal(ct_tensor_ndim(t), 1);
    assert_int_equal(ct_tensor_reshape(t, 0, NULL, NULL), CT_OK);
    assert_int_equal(ct_tensor_ndim(t), 0);
    ct_tensor_free(t);
}

static void test_tensor_reshape_count_mismatch_returns_eshape(void **state)
{
    int64_t a[2] = {2, 3}, b[1] = {4};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 2, a);
    ct_status_t st;
    int rc;

    rc = ct_tensor_reshape(t, 1, b, &st);
    tu_assert_status(&st, rc, CT_ESHAPE,
                     "cannot reshape [2, 3] (6 elements) to [4] "
                     "(4 elements)");
    assert_shape(t, 2, a);
    ct_tensor_free(t);
}

static void test_tensor_reshape_bad_dims_return_errors(void **state)
{
    int64_t a[1] = {6}, neg[2] = {-2, -3}, big[2] = {INT64_MAX, 3};
    int64_t deep[CT_MAX_DIMS + 1];
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    ct_status_t st;
    int i, rc;

    rc = ct_tensor_reshape(t, 2, neg, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "dim 0 is negative (-2)");
    rc = ct_tensor_reshape(t, 2, big, &st);
    tu_assert_status(&st, rc, CT_EOVERFLOW, "overflows int64");
    for (i = 0; i <= CT_MAX_DIMS; i++)
        deep[i] = 1;
    rc = ct_tensor_reshape(t, CT_MAX_DIMS + 1, deep, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "rank 17 outside [0, 16]");
    assert_shape(t, 1, a);
    ct_tensor_free(t);
}

static void test_tensor_dim_out_of_range_aborts(void **state)
{
    int64_t a[2] = {5, 7};
    ct_tensor_t *t = make(*state, CT_DTYPE_U8, 2, a);

    assert_int_equal(ct_tensor_dim(t, 1), 7);
    expect_abort(dim_2_of, t);
    ct_tensor_free(t);
}

/* ---- tests: share and copy ---- */

static void test_tensor_share_counts_references(void **state)
{
    int64_t a[2] = {2, 2};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 2, a);
    ct_tensor_t *u, *v;

    assert_int_equal(ct_tensor_new(*state, &u, NULL), CT_OK);
    assert_int_equal(ct_tensor_new(*state, &v, NULL), CT_OK);
    ct_tensor_share(u, t);
    ct_tensor_share(v, u);
    assert_int_equal(ct_tensor_storage_refs(t), 3);
    assert_ptr_equal(ct_tensor_data(u), ct_tensor_data(t));
    assert_int_equal(ct_tensor_dtype(v), CT_DTYPE_F32);
    assert_shape(v, 2, a);
    ((float *)ct_tensor_data(t))[3] = 5.0f;
    assert_true(((float *)ct_tensor_data(v))[3] == 5.0f);
    ct_tensor_free(t);
    assert_int_equal(ct_tensor_storage_refs(u), 2);
    assert_true(ct_engine_mem_in_use(*state) == 16);
    ct_tensor_free(u);
    ct_tensor_free(v);
    assert_true(ct_engine_mem_in_use(*state) == 0);
}

static void test_tensor_share_with_self_is_noop(void **state)
{
    int64_t a[1] = {3};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);

    ct_tensor_share(t, t);
    assert_int_equal(ct_tensor_storage_refs(t), 1);
    ct_tensor_free(t);
}

static void test_tensor_share_drops_previous_storage(void **state)
{
    int64_t a[1] = {3}, b[1] = {5};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    ct_tensor_t *u = make(*state, CT_DTYPE_F64, 1, b);

    assert_true(ct_engine_mem_in_use(*state) == 12 + 40);
    ct_tensor_share(u, t);
    assert_true(ct_engine_mem_in_use(*state) == 12);
    assert_int_equal(ct_tensor_dtype(u), CT_DTYPE_F32);
    ct_tensor_free(t);
    ct_tensor_free(u);
}

static void test_tensor_share_of_empty_tensor_drops_storage(void **state)
{
    int64_t a[1] = {3};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    ct_tensor_t *e;

    assert_int_equal(ct_tensor_new(*state, &e, NULL), CT_OK);
    ct_tensor_share(t, e);
    assert_int_equal(ct_tensor_storage_refs(t), 0);
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_UNDEFINED);
    assert_int_equal(ct_tensor_numel(t), 0);
    assert_true(ct_engine_mem_in_use(*state) == 0);
    ct_tensor_free(t);
    ct_tensor_free(e);
}

static void test_tensor_copy_is_deep(void **state)
{
    int64_t a[2] = {2, 3};
    ct_tensor_t *t = make(*state, CT_DTYPE_I16, 2, a);
    ct_tensor_t *u;
    int16_t *p = ct_tensor_data(t);
    int i;

    for (i = 0; i < 6; i++)
        p[i] = (int16_t)(i * 11);
    assert_int_equal(ct_tensor_new(*state, &u, NULL), CT_OK);
    assert_int_equal(ct_tensor_copy(u, t, NULL), CT_OK);
    assert_ptr_not_equal(ct_tensor_data(u), ct_tensor_data(t));
    assert_memory_equal(ct_tensor_data(u), p, 12);
    assert_shape(u, 2, a);
    assert_int_equal(ct_tensor_dtype(u), CT_DTYPE_I16);
    assert_int_equal(ct_tensor_storage_refs(t), 1);
    assert_int_equal(ct_tensor_storage_refs(u), 1);
    p[0] = 99;
    assert_int_equal(((int16_t *)ct_tensor_data(u))[0], 0);
    ct_tensor_free(t);
    ct_tensor_free(u);
}

static void test_tensor_copy_strings_duplicates_bytes(void **state)
{
    int64_t a[1] = {3};
    ct_tensor_t *t = make(*state, CT_DTYPE_STRING, 1, a);
    ct_tensor_t *u;
    const ct_str_t *s, *c;

    assert_int_equal(ct_tensor_set_string(t, 0, "ab\0c", 4, NULL), CT_OK);
    assert_int_equal(ct_tensor_set_string(t, 2, "xyz", 3, NULL), CT_OK);
    assert_int_equal(ct_tensor_new(*state, &u, NULL), CT_OK);
    assert_int_equal(ct_tensor_copy(u, t, NULL), CT_OK);
    s = ct_tensor_cdata(t);
    c = ct_tensor_cdata(u);
    assert_int_equal(c[0].len, 4);
    assert_memory_equal(c[0].data, "ab\0c", 4);
    assert_ptr_not_equal(c[0].data, s[0].data);
    assert_int_equal(c[1].len, 0);
    assert_null(c[1].data);
    assert_memory_equal(c[2].data, "xyz", 3);
    /* Overwriting the source leaves the copy alone. */
    assert_int_equal(ct_tensor_set_string(t, 2, "q", 1, NULL), CT_OK);
    assert_int_equal(c[2].len, 3);
    ct_tensor_free(t);
    assert_memory_equal(c[2].data, "xyz", 3);
    ct_tensor_free(u);
}

static void test_tensor_copy_of_shared_source_does_not_share(void **state)
{
    int64_t a[1] = {2};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    ct_tensor_t *u, *v;

    assert_int_equal(ct_tensor_new(*state, &u, NULL), CT_OK);
    assert_int_equal(ct_tensor_new(*state, &v, NULL), CT_OK);
    ct_tensor_share(u, t);
    assert_int_equal(ct_tensor_copy(v, u, NULL), CT_OK);
    assert_int_equal(ct_tensor_storage_refs(t), 2);
    assert_int_equal(ct_tensor_storage_refs(v), 1);
    ct_tensor_free(t);
    ct_tensor_free(u);
    ct_tensor_free(v);
}

static void test_tensor_copy_undefined_source_empties_dest(void **state)
{
    int64_t a[1] = {2};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    ct_tensor_t *e;

    assert_int_equal(ct_tensor_new(*state, &e, NULL), CT_OK);
    assert_int_equal(ct_tensor_copy(t, e, NULL), CT_OK);
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_UNDEFINED);
    assert_int_equal(ct_tensor_numel(t), 0);
    assert_int_equal(ct_tensor_storage_refs(t), 0);
    assert_true(ct_engine_mem_in_use(*state) == 0);
    ct_tensor_free(t);
    ct_tensor_free(e);
}

static void test_tensor_copy_empty_shape_keeps_dims(void **state)
{
    int64_t a[3] = {4, 0, 2};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 3, a);
    ct_tensor_t *u;

    assert_int_equal(ct_tensor_new(*state, &u, NULL), CT_OK);
    assert_int_equal(ct_tensor_copy(u, t, NULL), CT_OK);
    assert_shape(u, 3, a);
    assert_null(ct_tensor_data(u));
    ct_tensor_free(t);
    ct_tensor_free(u);
}

static void test_tensor_copy_alloc_failure_leaves_dest_unchanged(void **state)
{
    int64_t a[1] = {3}, b[1] = {1};
    ct_tensor_t *t = make(*state, CT_DTYPE_STRING, 1, a);
    ct_tensor_t *u = make(*state, CT_DTYPE_F32, 1, b);
    void *p = ct_tensor_data(u);
    ct_status_t st;
    long k, live;
    int rc;

    assert_int_equal(ct_tensor_set_string(t, 0, "alpha", 5, NULL), CT_OK);
    assert_int_equal(ct_tensor_set_string(t, 1, "beta", 4, NULL), CT_OK);
    assert_int_equal(ct_tensor_set_string(t, 2, "gamma", 5, NULL), CT_OK);
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_tensor_copy(u, t, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM, "copy of tensor [3] STRING");
        assert_int_equal(ct_tensor_dtype(u), CT_DTYPE_F32);
        assert_ptr_equal(ct_tensor_data(u), p);
        assert_int_equal(tu_alloc_live(), live);
    }
    /* storage header, element array, three strings */
    assert_int_equal(k, 6);
    assert_memory_equal(((ct_str_t *)ct_tensor_data(u))[1].data, "beta", 4);
    ct_tensor_free(t);
    ct_tensor_free(u);
}

static void test_tensor_set_string_on_numeric_returns_etype(void **state)
{
    int64_t a[1] = {2};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    ct_status_t st;
    int rc;

    rc = ct_tensor_set_string(t, 0, "x", 1, &st);
    tu_assert_status(&st, rc, CT_ETYPE, "set_string on a FLOAT tensor");
    ct_tensor_free(t);
}

static void test_tensor_set_string_out_of_range_returns_einval(void **state)
{
    int64_t a[1] = {2};
    ct_tensor_t *t = make(*state, CT_DTYPE_STRING, 1, a);
    ct_status_t st;
    int rc;

    rc = ct_tensor_set_string(t, 2, "x", 1, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "string index 2 outside [0, 2)");
    rc = ct_tensor_set_string(t, -1, "x", 1, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "string index -1 outside [0, 2)");
    ct_tensor_free(t);
}

static void test_tensor_set_string_alloc_failure_keeps_old(void **state)
{
    int64_t a[1] = {1};
    ct_tensor_t *t = make(*state, CT_DTYPE_STRING, 1, a);
    ct_status_t st;
    int rc;

    assert_int_equal(ct_tensor_set_string(t, 0, "old", 3, NULL), CT_OK);
    tu_fail_alloc_after(1);
    rc = ct_tensor_set_string(t, 0, "newer", 5, &st);
    tu_fail_alloc_off();
    tu_assert_status(&st, rc, CT_ENOMEM, "out of memory for a 5-byte string");
    assert_memory_equal(((ct_str_t *)ct_tensor_data(t))[0].data, "old", 3);
    /* An empty string frees the old bytes and allocates nothing. */
    assert_int_equal(ct_tensor_set_string(t, 0, "", 0, NULL), CT_OK);
    assert_null(((ct_str_t *)ct_tensor_data(t))[0].data);
    ct_tensor_free(t);
}

/* ---- tests: formatting ---- */

static void test_dims_str_formats_shapes(void **state)
{
    int64_t a[3] = {2, 3, 40};
    char buf[64];

    (void)state;
    assert_string_equal(ct_dims_str(3, a, buf, sizeof(buf)), "[2, 3, 40]");
    assert_string_equal(ct_dims_str(0, NULL, buf, sizeof(buf)), "[]");
    assert_string_equal(ct_dims_str(1, a, buf, sizeof(buf)), "[2]");
}

static void test_dims_str_small_buffer_is_terminated(void **state)
{
    int64_t a[3] = {123456, 7, 8};
    char buf[6];

    (void)state;
    memset(buf, 'x', sizeof(buf));
    ct_dims_str(3, a, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 5);
    assert_memory_equal(buf, "[1234", 5);
    buf[0] = 'q';
    ct_dims_str(3, a, buf, 0);
    assert_int_equal(buf[0], 'q');
}

static void test_tensor_shape_str_uses_tensor_dims(void **state)
{
    int64_t a[2] = {5, 1};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 2, a);
    char buf[32];

    assert_string_equal(ct_tensor_shape_str(t, buf, sizeof(buf)), "[5, 1]");
    ct_tensor_free(t);
}

static void test_dims_numel_products(void **state)
{
    int64_t a[3] = {2, 3, 7}, n = -1;

    (void)state;
    assert_int_equal(ct_dims_numel(3, a, &n, NULL), CT_OK);
    assert_int_equal(n, 42);
    assert_int_equal(ct_dims_numel(0, NULL, &n, NULL), CT_OK);
    assert_int_equal(n, 1);
}

/* ---- tests: memory budget ---- */

static void test_tensor_absurd_shape_over_budget_returns_enomem(void **state)
{
    int64_t dims[2] = {1 << 20, 1 << 20};
    ct_tensor_t *t = (ct_tensor_t *)state;
    ct_status_t st;
    int rc;

    rc = ct_tensor_new_shape(*state, CT_DTYPE_F32, 2, dims, &t, &st);
    tu_assert_status(&st, rc, CT_ENOMEM,
                     "tensor [1048576, 1048576] FLOAT: 4398046511104 bytes "
                     "exceed the memory budget (0 of 1048576 bytes in use)");
    assert_null(t);
    assert_true(ct_engine_mem_in_use(*state) == 0);
    assert_true(ct_engine_mem_peak(*state) == 0);
}

static void test_tensor_budget_counts_live_bytes_and_peak(void **state)
{
    int64_t half[1] = {(1 << 20) / 8}, small[1] = {1000};
    ct_tensor_t *a, *b, *c;
    ct_status_t st;
    int rc;

    a = make(*state, CT_DTYPE_F32, 1, half); /* 512 KiB */
    b = make(*state, CT_DTYPE_I32, 1, half); /* 1 MiB in all */
    assert_true(ct_engine_mem_in_use(*state) == 1 << 20);
    rc = ct_tensor_new_shape(*state, CT_DTYPE_U8, 0, NULL, &c, &st);
    tu_assert_status(&st, rc, CT_ENOMEM,
                     "tensor [] UINT8: 1 bytes exceed the memory budget "
                     "(1048576 of 1048576 bytes in use)");
    ct_tensor_free(b);
    assert_true(ct_engine_mem_in_use(*state) == 1 << 19);
    c = make(*state, CT_DTYPE_F32, 1, small);
    assert_true(ct_engine_mem_in_use(*state) == (1 << 19) + 4000);
    ct_tensor_free(a);
    ct_tensor_free(c);
    assert_true(ct_engine_mem_in_use(*state) == 0);
    assert_true(ct_engine_mem_peak(*state) == 1 << 20);
}

static void test_tensor_budget_shared_storage_charged_once(void **state)
{
    int64_t dims[1] = {1000};
    ct_tensor_t *a = make(*state, CT_DTYPE_F32, 1, dims);
    ct_tensor_t *b;

    assert_int_equal(ct_tensor_new(*state, &b, NULL), CT_OK);
    ct_tensor_share(b, a);
    assert_true(ct_engine_mem_in_use(*state) == 4000);
    ct_tensor_free(a);
    assert_true(ct_engine_mem_in_use(*state) == 4000);
    ct_tensor_free(b);
    assert_true(ct_engine_mem_in_use(*state) == 0);
}

static void test_tensor_resize_over_budget_keeps_tensor(void **state)
{
    int64_t a[1] = {10}, big[1] = {1 << 20};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    ct_status_t st;
    int rc;

    rc = ct_tensor_resize(t, CT_DTYPE_F32, 1, big, &st);
    tu_assert_status(&st, rc, CT_ENOMEM,
                     "tensor [1048576] FLOAT: 4194304 bytes exceed");
    assert_int_equal(ct_tensor_numel(t), 10);
    assert_true(ct_engine_mem_in_use(*state) == 40);
    ct_tensor_free(t);
}

static void test_tensor_copy_over_budget_returns_enomem(void **state)
{
    int64_t a[1] = {(1 << 20) / 4 - 1};
    ct_tensor_t *t = make(*state, CT_DTYPE_F32, 1, a);
    ct_tensor_t *u;
    ct_status_t st;
    int rc;

    assert_int_equal(ct_tensor_new(*state, &u, NULL), CT_OK);
    rc = ct_tensor_copy(u, t, &st);
    tu_assert_status(&st, rc, CT_ENOMEM,
                     "copy of tensor [262143] FLOAT: 1048572 bytes exceed "
                     "the memory budget");
    assert_int_equal(ct_tensor_dtype(u), CT_DTYPE_UNDEFINED);
    ct_tensor_free(t);
    ct_tensor_free(u);
}

/* ---- tests: float16 ---- */

static void test_f16_every_half_round_trips(void **state)
{
    uint32_t h;

    (void)state;
    for (h = 0; h < 65536; h++) {
        float f = ct_f16_to_f32((uint16_t)h);
        uint16_t back = ct_f32_to_f16(f);
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0) {
            /* NaN: stays a NaN of the same sign (the payload class is
             * all that survives, as with hardware conversions). */
            assert_true(isnan(f));
            assert_int_equal(back & 0x7c00u, 0x7c00u);
            assert_int_not_equal(back & 0x3ffu, 0);
            assert_int_equal(back & 0x8000u, h & 0x8000u);
            continue;
        }
        if (back != h)
            fail_msg("half 0x%04x -> %.9g -> 0x%04x", (unsigned)h, (double)f,
                     (unsigned)back);
    }
}

static void test_f16_to_f32_known_values(void **state)
{
    (void)state;
    assert_true(ct_f16_to_f32(0x3c00) == 1.0f);
    assert_true(ct_f16_to_f32(0xc000) == -2.0f);
    assert_true(ct_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(ct_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    assert_true(ct_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24));
    assert_true(ct_f16_to_f32(0x0400) == ldexpf(1.0f, -14));
    assert_true(isinf(ct_f16_to_f32(0x7c00)));
    assert_true(ct_f16_to_f32(0xfc00) < 0 && isinf(ct_f16_to_f32(0xfc00)));
    assert_true(signbit(ct_f16_to_f32(0x8000)));
    assert_true(ct_f16_to_f32(0x8000) == 0.0f);
}

static void test_f32_to_f16_rounds_ties_to_even(void **state)
{
    (void)state;
    /* 1 + 2^-11 lies halfway between 0x3c00 (even) and 0x3c01. */
    assert_int_equal(ct_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00);
    /* 1 + 3 * 2^-11 is halfway between 0x3c01 and 0x3c02 (even). */
    assert_int_equal(ct_f32_to_f16(1.0f + 3.0f * ldexpf(1.0f, -11)), 0x3c02);
    /* Just above a tie rounds up. */
    assert_int_equal(ct_f32_to_f16(f32_of_bits(0x3f801001u)),
                     0x3c01); /* 1+2^-11+ulp */
    /* Just below a tie rounds down. */
    assert_int_equal(ct_f32_to_f16(f32_of_bits(0x3f800fffu)), 0x3c00);
    /* Mantissa carry into the exponent: 2 - 2^-12 rounds to 2.0. */
    assert_int_equal(ct_f32_to_f16(2.0f - ldexpf(1.0f, -12)), 0x4000);
    assert_int_equal(ct_f32_to_f16(-1.0f - ldexpf(1.0f, -11)), 0xbc00);
}

static void test_f32_to_f16_overflow_and_specials(void **state)
{
    uint16_t n;

    (void)state;
    assert_int_equal(ct_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(ct_f32_to_f16(65519.0f), 0x7bff);
    /* 65520 is the tie between 65504 (odd mantissa) and infinity. */
    assert_int_equal(ct_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(ct_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(ct_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(ct_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(ct_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(ct_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(ct_f32_to_f16(-0.0f), 0x8000);
    n = ct_f32_to_f16(NAN);
    assert_int_equal(n & 0x7c00, 0x7c00);
    assert_int_not_equal(n & 0x3ff, 0);
}

static void test_f32_to_f16_subnormals_round_ties_to_even(void **state)
{
    (void)state;
    /* 2^-25 is half the smallest subnormal: ties to even gives 0. */
    assert_int_equal(ct_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);
    assert_int_equal(ct_f32_to_f16(-ldexpf(1.0f, -25)), 0x8000);
    /* Slightly more than half rounds up to the smallest subnormal. */
    assert_int_equal(ct_f32_to_f16(ldexpf(1.0f, -25) * 1.0001f), 0x0001);
    /* 3 * 2^-25 = 1.5 subnormal ulps: tie between 1 and 2, gives 2. */
    assert_int_equal(ct_f32_to_f16(3.0f * ldexpf(1.0f, -25)), 0x0002);
    /* 1023.5 ulps: tie between 0x03ff and 0x0400 (the smallest normal). */
    assert_int_equal(ct_f32_to_f16(ldexpf(2047.0f, -25)), 0x0400);
    /* Far below the subnormal range, and f32 subnormals, flush to 0. */
    assert_int_equal(ct_f32_to_f16(ldexpf(1.0f, -30)), 0x0000);
    assert_int_equal(ct_f32_to_f16(f32_of_bits(0x00000001u)), 0x0000);
    assert_int_equal(ct_f32_to_f16(f32_of_bits(0x80400000u)), 0x8000);
}

int main(void)
{
#define T(f) cmocka_unit_test(f)
#define TE(f) cmocka_unit_test_setup_teardown(f, setup_engine, teardown_engine)
#define TS(f)                                                                  \
    cmocka_unit_test_setup_teardown(f, setup_small_engine, teardown_engine)
    const struct CMUnitTest tests[] = {
        T(test_dtype_size_every_dtype),
        T(test_dtype_name_every_dtype),
        T(test_dtype_valid_rejects_gaps_and_out_of_range),
        T(test_dtype_parse_caffe2_names_round_trip),
        T(test_dtype_parse_short_names_case_insensitive),
        T(test_dtype_parse_unknown_returns_einval),
        TE(test_tensor_new_is_empty_undefined),
        TE(test_tensor_new_alloc_failure_returns_enomem),
        T(test_tensor_free_null_is_noop),
        TE(test_tensor_new_shape_zero_filled),
        TE(test_tensor_new_shape_scalar_has_one_element),
        TE(test_tensor_new_shape_zero_dim_has_no_data),
        TE(test_tensor_new_shape_strings_start_empty),
        TE(test_tensor_new_shape_negative_dim_returns_eshape),
        TE(test_tensor_new_shape_rank_too_large_returns_eshape),
        TE(test_tensor_new_shape_int64_overflow_returns_eoverflow),
        TE(test_tensor_new_shape_byte_overflow_returns_eoverflow),
        TE(test_tensor_new_shape_zero_dim_beats_overflow),
        TE(test_tensor_new_shape_invalid_dtype_returns_etype),
        TE(test_tensor_new_shape_alloc_failure_returns_enomem),
        TE(test_tensor_new_shape_data_alloc_failure_names_shape),
        TE(test_tensor_resize_same_size_keeps_storage),
        TE(test_tensor_resize_shared_storage_copies_on_write),
        TE(test_tensor_resize_other_dtype_same_bytes_reallocates),
        TE(test_tensor_resize_new_size_zeroes_and_recharges),
        TE(test_tensor_resize_failure_leaves_tensor_unchanged),
        TE(test_tensor_resize_alloc_failure_leaves_tensor_unchanged),
        TE(test_tensor_reshape_same_count_keeps_data),
        TE(test_tensor_reshape_scalar_to_vector_of_one),
        TE(test_tensor_reshape_count_mismatch_returns_eshape),
        TE(test_tensor_reshape_bad_dims_return_errors),
        TE(test_tensor_dim_out_of_range_aborts),
        TE(test_tensor_share_counts_references),
        TE(test_tensor_share_with_self_is_noop),
        TE(test_tensor_share_drops_previous_storage),
        TE(test_tensor_share_of_empty_tensor_drops_storage),
        TE(test_tensor_copy_is_deep),
        TE(test_tensor_copy_strings_duplicates_bytes),
        TE(test_tensor_copy_of_shared_source_does_not_share),
        TE(test_tensor_copy_undefined_source_empties_dest),
        TE(test_tensor_copy_empty_shape_keeps_dims),
        TE(test_tensor_copy_alloc_failure_leaves_dest_unchanged),
        TE(test_tensor_set_string_on_numeric_returns_etype),
        TE(test_tensor_set_string_out_of_range_returns_einval),
        TE(test_tensor_set_string_alloc_failure_keeps_old),
        T(test_dims_str_formats_shapes),
        T(test_dims_str_small_buffer_is_terminated),
        TE(test_tensor_shape_str_uses_tensor_dims),
        T(test_dims_numel_products),
        TS(test_tensor_absurd_shape_over_budget_returns_enomem),
        TS(test_tensor_budget_counts_live_bytes_and_peak),
        TS(test_tensor_budget_shared_storage_charged_once),
        TS(test_tensor_resize_over_budget_keeps_tensor),
        TS(test_tensor_copy_over_budget_returns_enomem),
        T(test_f16_every_half_round_trips),
        T(test_f16_to_f32_known_values),
        T(test_f32_to_f16_rounds_ties_to_even),
        T(test_f32_to_f16_overflow_and_specials),
        T(test_f32_to_f16_subnormals_round_ties_to_even),
    };
#undef T
#undef TE
#undef TS

    (void)tu_alloc_live(); /* count every block from the start */
    return cmocka_run_group_tests_name("engine.tensor", tests, NULL, NULL);
}
