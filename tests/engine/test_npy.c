/* Tests for engine/npy.c: NumPy .npy reading and writing.
 *
 * Reference files are written literally here (bytes numpy 1.24 produced,
 * or headers made by hand), so the test needs no Python.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cortado/npy.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/engine.h"
#include "cortado/tensor.h"
#include "test_util.h"

/* ---- fixtures ---- */

struct fx {
    ct_engine_t *eng;
    char dir[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    ct_status_t st;

    if (f == NULL)
        return -1;
    if (ct_engine_new(NULL, &f->eng, &st) != CT_OK) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/ct_test_npy.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        ct_engine_free(f->eng);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char path[512];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(f->dir);
    ct_engine_free(f->eng);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* Builds a .npy image: magic, version major.0, the dict padded with
 * spaces and '\n' to a multiple of 64 (as numpy does), then n data bytes.
 * Returns the size; buf must hold it. */
static size_t mk(unsigned char *buf, int major, const char *dict,
                 const void *data, size_t n)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t total = pre + dl + 1;
    size_t hl;

    total += (64 - total % 64) % 64;
    hl = total - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    buf[8] = (unsigned char)(hl & 0xff);
    buf[9] = (unsigned char)(hl >> 8);
    if (major != 1) {
        buf[10] = (unsigned char)(hl >> 16);
        buf[11] = (unsigned char)(hl >> 24);
    }
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hl - dl - 1);
    buf[total - 1] = '\n';
    if (n > 0)
        memcpy(buf + total, data, n);
    return total + n;
}

static ct_tensor_t *read_ok(struct fx *f, const void *buf, size_t len)
{
    ct_tensor_t *t = NULL;
    ct_status_t st;
    int rc = ct_npy_read_buffer(f->eng, buf, len, &t, &st);

    if (rc != CT_OK)
        fail_msg("read failed: %s", st.msg);
    assert_non_null(t);
    return t;
}

/* Reads a buffer expected to fail with code; checks the message. */
static void read_fails(struct fx *f, const void *buf, size_t len, int code,
                       const char *needle)
{
    ct_tensor_t *t = (ct_tensor_t *)1;
    ct_status_t st;
    int rc = ct_npy_read_buffer(f->eng, buf, len, &t, &st);

    assert_null(t);
    tu_assert_status(&st, rc, code, needle);
    assert_non_null(strstr(st.msg, "npy: "));
    assert_int_equal(ct_engine_mem_in_use(f->eng), 0);
}

static void dict_fails(struct fx *f, const char *dict, const void *data,
                       size_t n, int code, const char *needle)
{
    unsigned char buf[1024];
    size_t len = mk(buf, 1, dict, data, n);
    read_fails(f, buf, len, code, needle);
}

static void assert_shape(const ct_tensor_t *t, ct_dtype_t dt, int ndim,
                         const int64_t *dims)
{
    int i;

    assert_int_equal(ct_tensor_dtype(t), dt);
    assert_int_equal(ct_tensor_ndim(t), ndim);
    for (i = 0; i < ndim; i++)
        assert_int_equal(ct_tensor_dim(t, i), dims[i]);
}

static void write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Literal numpy 1.24 output of np.save(np.array([[1, -2, 3], [4, 5, -6]],
 * np.int32)). */
static const char NP_I32_HDR[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, "
    "'shape': (2, 3), }                                                    "
    "      \n";
static const int32_t NP_I32_DATA[] = {1, -2, 3, 4, 5, -6};

static size_t numpy_i32(unsigned char *buf)
{
    memcpy(buf, NP_I32_HDR, 128);
    memcpy(buf + 128, NP_I32_DATA, sizeof(NP_I32_DATA));
    return 128 + sizeof(NP_I32_DATA);
}

/* ---- reading real numpy output ---- */

static void test_npy_read_buffer_numpy_i32_matches(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    size_t len = numpy_i32(buf);
    ct_tensor_t *t;
    static const int64_t dims[] = {2, 3};

    assert_int_equal(sizeof(NP_I32_HDR) - 1, 128);
    t = read_ok(f, buf, len);
    assert_shape(t, CT_DTYPE_I32, 2, dims);
    assert_memory_equal(ct_tensor_cdata(t), NP_I32_DATA, sizeof(NP_I32_DATA));
    ct_tensor_free(t);
}

static void test_npy_read_buffer_scalar_0d(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    double v = 3.5;
    size_t len =
        mk(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
           &v, sizeof(v));
    ct_tensor_t *t = read_ok(f, buf, len);

    assert_shape(t, CT_DTYPE_F64, 0, NULL);
    assert_int_equal(ct_tensor_numel(t), 1);
    assert_true(*(const double *)ct_tensor_cdata(t) == 3.5);
    ct_tensor_free(t);
}

static void test_npy_read_buffer_empty_zero_dim(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    size_t len = mk(
        buf, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (0, 3), }",
        NULL, 0);
    ct_tensor_t *t = read_ok(f, buf, len);
    static const int64_t dims[] = {0, 3};

    assert_shape(t, CT_DTYPE_I16, 2, dims);
    assert_int_equal(ct_tensor_numel(t), 0);
    ct_tensor_free(t);
}

static void test_npy_read_buffer_zero_dim_with_huge_dims_ok(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    size_t len = mk(buf, 1,
                    "{'descr': '<f4', 'fortran_order': False, "
                    "'shape': (0, 4611686018427387904, 4611686018427387904), }",
                    NULL, 0);
    ct_tensor_t *t = read_ok(f, buf, len);

    assert_int_equal(ct_tensor_numel(t), 0);
    ct_tensor_free(t);
}

static void test_npy_read_buffer_strings_strip_trailing_nuls(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    /* np.array([b'ab', b'', b'xyz']) plus an interior NUL: b'a\0c'. */
    static const char data[] = "ab\0\0\0\0xyza\0c";
    size_t len =
        mk(buf, 1, "{'descr': '|S3', 'fortran_order': False, 'shape': (4,), }",
           data, 12);
    ct_tensor_t *t = read_ok(f, buf, len);
    const ct_str_t *e;
    static const int64_t dims[] = {4};

    assert_shape(t, CT_DTYPE_STRING, 1, dims);
    e = ct_tensor_cdata(t);
    assert_int_equal(e[0].len, 2);
    assert_memory_equal(e[0].data, "ab", 2);
    assert_int_equal(e[1].len, 0);
    assert_int_equal(e[2].len, 3);
    assert_memory_equal(e[2].data, "xyz", 3);
    assert_int_equal(e[3].len, 3);
    assert_memory_equal(e[3].data, "a\0c", 3);
    ct_tensor_free(t);
}

static void test_npy_read_buffer_v2_and_v3_headers(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    float v[3] = {1.0f, 2.0f, 3.0f};
    int major;

    for (major = 2; major <= 3; major++) {
        size_t len = mk(buf, major,
                        "{'descr': '<f4', 'fortran_order': False, "
                        "'shape': (3,), }",
                        v, sizeof(v));
        ct_tensor_t *t = read_ok(f, buf, len);
        assert_int_equal(ct_tensor_numel(t), 3);
        assert_memory_equal(ct_tensor_cdata(t), v, sizeof(v));
        ct_tensor_free(t);
    }
}

/* Header spellings numpy (or other writers) produce and Python accepts. */
static void test_npy_read_buffer_header_variants_parse(void **state)
{
    struct fx *f = *state;
    static const char *const dicts[] = {
        "{'shape': (2, 3), 'fortran_order': False, 'descr': '<i4'}",
        "{ 'descr' : '<i4' , 'fortran_order' : False , 'shape' : ( 2 , 3 ) , }",
        "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2, 3)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 3L), }",
        "{'descr': '<i4', 'fortran_order': False, 'shape': [2, 3]}",
        "{'descr': '=i4', 'fortran_order': False, 'shape': (2, 3,), }",
        "{'descr': 'i4', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr':'<i4','fortran_order':False,'shape':(2,3)}",
        "{'descr': '<i4',\n 'fortran_order': False,\t'shape': (2, 3), }",
    };
    static const int64_t dims[] = {2, 3};
    unsigned char buf[512];
    size_t k;

    for (k = 0; k < sizeof(dicts) / sizeof(dicts[0]); k++) {
        size_t len = mk(buf, 1, dicts[k], NP_I32_DATA, sizeof(NP_I32_DATA));
        ct_tensor_t *t = read_ok(f, buf, len);
        assert_shape(t, CT_DTYPE_I32, 2, dims);
        assert_memory_equal(ct_tensor_cdata(t), NP_I32_DATA,
                            sizeof(NP_I32_DATA));
        ct_tensor_free(t);
    }
}

static void test_npy_read_buffer_every_dtype_spelling_maps(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *descr;
        ct_dtype_t dt;
        size_t size;
    } cases[] = {
        {"<f4", CT_DTYPE_F32, 4},    {"<f8", CT_DTYPE_F64, 8},
        {"<f2", CT_DTYPE_F16, 2},    {"|i1", CT_DTYPE_I8, 1},
        {"<i1", CT_DTYPE_I8, 1},     {"<i2", CT_DTYPE_I16, 2},
        {"<i4", CT_DTYPE_I32, 4},    {"<i8", CT_DTYPE_I64, 8},
        {"|u1", CT_DTYPE_U8, 1},     {"<u1", CT_DTYPE_U8, 1},
        {"<u2", CT_DTYPE_U16, 2},    {"|b1", CT_DTYPE_BOOL, 1},
        {"<b1", CT_DTYPE_BOOL, 1},   {"=f4", CT_DTYPE_F32, 4},
        {"|S5", CT_DTYPE_STRING, 5},
    };
    unsigned char buf[512], data[16];
    char dict[160];
    size_t k;

    memset(data, 1, sizeof(data));
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        ct_tensor_t *t;
        size_t len;
        snprintf(dict, sizeof(dict),
                 "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }",
                 cases[k].descr);
        len = mk(buf, 1, dict, data, 2 * cases[k].size);
        t = read_ok(f, buf, len);
        assert_int_equal(ct_tensor_dtype(t), cases[k].dt);
        assert_int_equal(ct_tensor_numel(t), 2);
        ct_tensor_free(t);
    }
}

static void test_npy_read_buffer_big_endian_swapped(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    static const unsigned char be_i32[] = {0x00, 0x00, 0x01, 0x02,
                                           0xff, 0xff, 0xff, 0xfe};
    static const unsigned char be_f64[] = {0x40, 0x0c, 0, 0, 0, 0, 0, 0};
    static const unsigned char be_u16[] = {0x12, 0x34};
    ct_tensor_t *t;
    size_t len;

    len =
        mk(buf, 1, "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
           be_i32, sizeof(be_i32));
    t = read_ok(f, buf, len);
    assert_int_equal(((const int32_t *)ct_tensor_cdata(t))[0], 0x102);
    assert_int_equal(((const int32_t *)ct_tensor_cdata(t))[1], -2);
    ct_tensor_free(t);

    len = mk(buf, 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (), }",
             be_f64, sizeof(be_f64));
    t = read_ok(f, buf, len);
    assert_true(*(const double *)ct_tensor_cdata(t) == 3.5);
    ct_tensor_free(t);

    len =
        mk(buf, 1, "{'descr': '>u2', 'fortran_order': False, 'shape': (1,), }",
           be_u16, sizeof(be_u16));
    t = read_ok(f, buf, len);
    assert_int_equal(*(const uint16_t *)ct_tensor_cdata(t), 0x1234);
    ct_tensor_free(t);
}

static void test_npy_read_buffer_bool_bytes_canonicalised(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    static const unsigned char data[] = {0, 1, 2, 255};
    size_t len =
        mk(buf, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }",
           data, sizeof(data));
    ct_tensor_t *t = read_ok(f, buf, len);
    const unsigned char *b = ct_tensor_cdata(t);

    assert_int_equal(b[0], 0);
    assert_int_equal(b[1], 1);
    assert_int_equal(b[2], 1);
    assert_int_equal(b[3], 1);
    ct_tensor_free(t);
}

static void test_npy_read_buffer_fortran_1d_accepted(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    float v[3] = {1, 2, 3};
    size_t len =
        mk(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 1), }",
           v, sizeof(v));
    ct_tensor_t *t = read_ok(f, buf, len);

    assert_memory_equal(ct_tensor_cdata(t), v, sizeof(v));
    ct_tensor_free(t);
}

/* ---- read errors ---- */

static void test_npy_read_buffer_fortran_2d_returns_enotsup(void **state)
{
    float v[6] = {0};
    dict_fails(*state,
               "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", v,
               sizeof(v), CT_ENOTSUP, "Fortran-order array of shape [2, 3]");
}

static void test_npy_read_buffer_bad_magic_returns_eparse(void **state)
{
    static const char junk[] = "PK\x03\x04 this is a zip file, not npy....";
    read_fails(*state, junk, sizeof(junk), CT_EPARSE, "not a .npy file");
    read_fails(*state, "", 0, CT_EPARSE, "not a .npy file");
}

static void test_npy_read_buffer_short_preamble_returns_ecorrupt(void **state)
{
    read_fails(*state, "\x93NUMPY\x01\x00v", 9, CT_ECORRUPT,
               "truncated header");
    read_fails(*state, "\x93NUMPY\x02\x00v\x00\x00", 11, CT_ECORRUPT,
               "truncated header");
}

static void test_npy_read_buffer_unknown_version_returns_enotsup(void **state)
{
    unsigned char buf[256];
    size_t len = numpy_i32(buf);

    buf[6] = 4;
    read_fails(*state, buf, len, CT_ENOTSUP, "version 4.0");
    buf[6] = 1;
    buf[7] = 1;
    read_fails(*state, buf, len, CT_ENOTSUP, "version 1.1");
}

static void test_npy_read_buffer_header_past_end_returns_ecorrupt(void **state)
{
    unsigned char buf[256];
    numpy_i32(buf);
    read_fails(*state, buf, 100, CT_ECORRUPT, "truncated header");
}

static void test_npy_read_buffer_huge_header_returns_eparse(void **state)
{
    unsigned char buf[64] = "\x93NUMPY\x02\x00";

    buf[8] = 0;
    buf[9] = 0;
    buf[10] = 0;
    buf[11] = 0x40; /* 1 GiB */
    read_fails(*state, buf, sizeof(buf), CT_EPARSE, "exceeds the");
}

static void test_npy_read_buffer_bad_dict_returns_eparse(void **state)
{
    static const struct {
        const char *dict, *needle;
    } cases[] = {
        {"'descr': '<i4'", "expected '{'"},
        {"{'descr' '<i4', 'fortran_order': False, 'shape': (6,)}",
         "expected ':'"},
        {"{'descr': '<i4, 'fortran_order': False, 'shape': (6,)}",
         "expected ',' or '}'"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (6,)", "'}'"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (6,)} x",
         "only padding"},
        {"{'descr': '<i4', 'fortran_order': false, 'shape': (6,)}",
         "True or False"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': 6}", "shape tuple"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (6 7)}",
         "expected ','"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (x,)}",
         "expected a dimension"},
        {"{'descr': '<\\i4', 'fortran_order': False, 'shape': (6,)}",
         "unsupported character"},
        {"{descr: '<i4', 'fortran_order': False, 'shape': (6,)}",
         "quoted string"},
        {"{'descr': '<i4', 'shape': (6,)}", "no 'fortran_order' key"},
        {"{'fortran_order': False, 'shape': (6,)}", "no 'descr' key"},
        {"{'descr': '<i4', 'fortran_order': False}", "no 'shape' key"},
        {"{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, "
         "'shape': (6,)}",
         "appears twice"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (6,), "
         "'extra': 1}",
         "unexpected header key 'extra'"},
        {"{'descr': '', 'fortran_order': False, 'shape': (6,)}", "bad dtype"},
    };
    size_t k;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        dict_fails(*state, cases[k].dict, NP_I32_DATA, sizeof(NP_I32_DATA),
                   CT_EPARSE, cases[k].needle);
}

static void test_npy_read_buffer_unsupported_dtypes_return_enotsup(void **state)
{
    static const struct {
        const char *dict, *needle;
    } cases[] = {
        {"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
         "Python objects"},
        {"{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }",
         "unicode"},
        {"{'descr': [('a', '<i4'), ('b', '<f4')], 'fortran_order': False, "
         "'shape': (3,), }",
         "structured dtypes"},
        {"{'descr': '|V8', 'fortran_order': False, 'shape': (3,), }",
         "void/structured"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }",
         "'<c8' has no cortado"},
        {"{'descr': '<u4', 'fortran_order': False, 'shape': (6,), }",
         "'<u4' has no cortado"},
        {"{'descr': '<u8', 'fortran_order': False, 'shape': (3,), }",
         "'<u8' has no cortado"},
        {"{'descr': '<f16', 'fortran_order': False, 'shape': (3,), }",
         "'<f16' has no cortado"},
        {"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (3,), }",
         "not supported"},
        {"{'descr': '|S0', 'fortran_order': False, 'shape': (3,), }",
         "not supported"},
    };
    size_t k;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        dict_fails(*state, cases[k].dict, NP_I32_DATA, sizeof(NP_I32_DATA),
                   CT_ENOTSUP, cases[k].needle);
}

static void test_npy_read_buffer_rank_17_returns_enotsup(void **state)
{
    dict_fails(*state,
               "{'descr': '<i4', 'fortran_order': False, 'shape': "
               "(1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,6), }",
               NP_I32_DATA, sizeof(NP_I32_DATA), CT_ENOTSUP,
               "rank 17 exceeds the maximum of 16");
}

static void test_npy_read_buffer_absurd_shapes_return_ecorrupt(void **state)
{
    static const struct {
        const char *dict, *needle;
    } cases[] = {
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (-6,), }",
         "negative dimension"},
        {"{'descr': '<i4', 'fortran_order': False, "
         "'shape': (99999999999999999999,), }",
         "does not fit in int64"},
        {"{'descr': '<i4', 'fortran_order': False, "
         "'shape': (4611686018427387904, 4611686018427387904), }",
         "too large"},
        {"{'descr': '<i8', 'fortran_order': False, "
         "'shape': (2305843009213693952,), }",
         "too large"},
        /* 2^40 elements over 24 bytes: no allocation may happen. */
        {"{'descr': '<i4', 'fortran_order': False, "
         "'shape': (1099511627776,), }",
         "truncated data"},
        {"{'descr': '|S1000000', 'fortran_order': False, "
         "'shape': (1000000,), }",
         "truncated data"},
    };
    size_t k;
    long live;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        live = tu_alloc_live();
        dict_fails(*state, cases[k].dict, NP_I32_DATA, sizeof(NP_I32_DATA),
                   CT_ECORRUPT, cases[k].needle);
        assert_int_equal(tu_alloc_live(), live);
    }
}

static void test_npy_read_buffer_truncated_data_returns_ecorrupt(void **state)
{
    unsigned char buf[256];
    size_t len = numpy_i32(buf);

    read_fails(*state, buf, len - 1, CT_ECORRUPT,
               "needs 24 bytes, the file has 23");
    read_fails(*state, buf, 128, CT_ECORRUPT, "needs 24 bytes");
}

static void test_npy_read_buffer_trailing_bytes_return_ecorrupt(void **state)
{
    unsigned char buf[256];
    size_t len = numpy_i32(buf);

    buf[len] = 0;
    read_fails(*state, buf, len + 1, CT_ECORRUPT, "1 unexpected bytes");
}

/* ---- files ---- */

static void test_npy_read_file_numpy_bytes_ok(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    size_t len = numpy_i32(buf);
    char path[256];
    ct_tensor_t *t = NULL;
    ct_status_t st;

    snprintf(path, sizeof(path), "%s/a.npy", f->dir);
    write_bytes(path, buf, len);
    assert_int_equal(ct_npy_read_file(f->eng, path, &t, &st), CT_OK);
    assert_memory_equal(ct_tensor_cdata(t), NP_I32_DATA, sizeof(NP_I32_DATA));
    ct_tensor_free(t);
}

static void test_npy_read_file_strings_and_tiny_header_ok(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    char path[256];
    ct_tensor_t *t = NULL;
    ct_status_t st;
    size_t len =
        mk(buf, 1, "{'descr': '|S2', 'fortran_order': False, 'shape': (2,)}",
           "hi\0\0", 4);

    snprintf(path, sizeof(path), "%s/s.npy", f->dir);
    write_bytes(path, buf, len);
    assert_int_equal(ct_npy_read_file(f->eng, path, &t, &st), CT_OK);
    assert_int_equal(((const ct_str_t *)ct_tensor_cdata(t))[0].len, 2);
    assert_int_equal(((const ct_str_t *)ct_tensor_cdata(t))[1].len, 0);
    ct_tensor_free(t);
}

static void file_fails(struct fx *f, const char *path, int code,
                       const char *needle)
{
    ct_tensor_t *t = (ct_tensor_t *)1;
    ct_status_t st;
    int rc = ct_npy_read_file(f->eng, path, &t, &st);

    assert_null(t);
    tu_assert_status(&st, rc, code, needle);
    /* The message starts with the path. */
    assert_int_equal(strncmp(st.msg, path, strlen(path)), 0);
}

static void test_npy_read_file_errors_name_the_path(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    size_t len = numpy_i32(buf);
    char path[256];

    snprintf(path, sizeof(path), "%s/missing.npy", f->dir);
    file_fails(f, path, CT_EIO, "No such file or directory");
    file_fails(f, f->dir, CT_EIO, "is a directory");
    file_fails(f, "/dev/null", CT_EIO, "not a regular file");

    snprintf(path, sizeof(path), "%s/trunc.npy", f->dir);
    write_bytes(path, buf, len - 4);
    file_fails(f, path, CT_ECORRUPT, "truncated data");
    write_bytes(path, buf, 60);
    file_fails(f, path, CT_ECORRUPT, "truncated header");
    write_bytes(path, buf, 5);
    file_fails(f, path, CT_EPARSE, "not a .npy file");
    write_bytes(path, "", 0);
    file_fails(f, path, CT_EPARSE, "not a .npy file");
    buf[len] = 7;
    write_bytes(path, buf, len + 1);
    file_fails(f, path, CT_ECORRUPT, "unexpected bytes");

    len = mk(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}",
             "0123456789abcdef", 16);
    write_bytes(path, buf, len);
    file_fails(f, path, CT_ENOTSUP, "Fortran-order");
}

/* ---- writing ---- */

static ct_tensor_t *make_tensor(struct fx *f, ct_dtype_t dt, int ndim,
                                const int64_t *dims)
{
    ct_tensor_t *t = NULL;
    ct_status_t st;
    int64_t i, n;
    unsigned char *p;

    assert_int_equal(ct_tensor_new_shape(f->eng, dt, ndim, dims, &t, &st),
                     CT_OK);
    n = ct_tensor_numel(t);
    if (dt == CT_DTYPE_STRING) {
        for (i = 0; i < n; i++) {
            char s[32];
            int len = snprintf(s, sizeof(s), "s%lld", (long long)(i * 37));
            assert_int_equal(
                ct_tensor_set_string(t, i, s, (size_t)(i % 3 ? len : 0), &st),
                CT_OK);
        }
        return t;
    }
    p = ct_tensor_data(t);
    for (i = 0; i < (int64_t)ct_tensor_nbytes(t); i++)
        p[i] = (unsigned char)(i * 29 + 7);
    if (dt == CT_DTYPE_BOOL)
        for (i = 0; i < n; i++)
            p[i] &= 1;
    return t;
}

static void assert_same_tensor(const ct_tensor_t *a, const ct_tensor_t *b)
{
    int64_t i;

    assert_int_equal(ct_tensor_ndim(a), ct_tensor_ndim(b));
    for (i = 0; i < ct_tensor_ndim(a); i++)
        assert_int_equal(ct_tensor_dim(a, (int)i), ct_tensor_dim(b, (int)i));
    assert_int_equal(ct_tensor_numel(a), ct_tensor_numel(b));
    if (ct_tensor_dtype(a) == CT_DTYPE_STRING) {
        const ct_str_t *x = ct_tensor_cdata(a), *y = ct_tensor_cdata(b);
        assert_int_equal(ct_tensor_dtype(b), CT_DTYPE_STRING);
        for (i = 0; i < ct_tensor_numel(a); i++) {
            assert_int_equal(x[i].len, y[i].len);
            if (x[i].len > 0)
                assert_memory_equal(x[i].data, y[i].data, x[i].len);
        }
        return;
    }
    assert_int_equal(ct_tensor_nbytes(a), ct_tensor_nbytes(b));
    if (ct_tensor_nbytes(a) > 0)
        assert_memory_equal(ct_tensor_cdata(a), ct_tensor_cdata(b),
                            ct_tensor_nbytes(a));
}

static void test_npy_write_buffer_every_dtype_round_trips(void **state)
{
    struct fx *f = *state;
    static const ct_dtype_t dts[] = {
        CT_DTYPE_F32, CT_DTYPE_F64,  CT_DTYPE_F16,   CT_DTYPE_I8,
        CT_DTYPE_I16, CT_DTYPE_I32,  CT_DTYPE_I64,   CT_DTYPE_U8,
        CT_DTYPE_U16, CT_DTYPE_BOOL, CT_DTYPE_STRING};
    static const int64_t shapes[][3] = {{2, 3, 4}, {0, 5, 0}, {7, 0, 0}};
    static const int ranks[] = {3, 2, 0};
    size_t d, s;

    for (d = 0; d < sizeof(dts) / sizeof(dts[0]); d++) {
        for (s = 0; s < 3; s++) {
            ct_tensor_t *t = make_tensor(f, dts[d], ranks[s], shapes[s]);
            ct_tensor_t *back;
            ct_status_t st;
            void *buf = NULL;
            size_t len = 0;
            assert_int_equal(ct_npy_write_buffer(t, &buf, &len, &st), CT_OK);
            assert_int_equal(((const unsigned char *)buf)[8] + 10, 128);
            back = read_ok(f, buf, len);
            assert_int_equal(ct_tensor_dtype(back), dts[d]);
            assert_same_tensor(t, back);
            ct_free(buf);
            ct_tensor_free(back);
            ct_tensor_free(t);
        }
    }
}

static void test_npy_write_buffer_matches_numpy_bytes(void **state)
{
    struct fx *f = *state;
    static const int64_t dims[] = {2, 3};
    ct_tensor_t *t;
    ct_status_t st;
    void *buf;
    size_t len;
    unsigned char ref[256];
    size_t ref_len = numpy_i32(ref);

    assert_int_equal(
        ct_tensor_new_shape(f->eng, CT_DTYPE_I32, 2, dims, &t, &st), CT_OK);
    memcpy(ct_tensor_data(t), NP_I32_DATA, sizeof(NP_I32_DATA));
    assert_int_equal(ct_npy_write_buffer(t, &buf, &len, &st), CT_OK);
    assert_int_equal(len, ref_len);
    assert_memory_equal(buf, ref, len);
    ct_free(buf);
    ct_tensor_free(t);
}

static void test_npy_write_buffer_header_spellings_match_numpy(void **state)
{
    struct fx *f = *state;
    static const struct {
        ct_dtype_t dt;
        int ndim;
        int64_t dims[2];
        const char *dict;
    } cases[] = {
        /* 0-d: no growth padding. */
        {CT_DTYPE_F64,
         0,
         {0},
         "{'descr': '<f8', 'fortran_order': False, "
         "'shape': (), }"},
        {CT_DTYPE_U8,
         1,
         {3},
         "{'descr': '|u1', 'fortran_order': False, "
         "'shape': (3,), }"},
        {CT_DTYPE_BYTE,
         1,
         {3},
         "{'descr': '|u1', 'fortran_order': False, "
         "'shape': (3,), }"},
        {CT_DTYPE_BOOL,
         2,
         {12, 1},
         "{'descr': '|b1', 'fortran_order': "
         "False, 'shape': (12, 1), }"},
        {CT_DTYPE_I8,
         1,
         {2},
         "{'descr': '|i1', 'fortran_order': False, "
         "'shape': (2,), }"},
    };
    size_t k;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        ct_tensor_t *t;
        ct_status_t st;
        void *buf;
        size_t len, dl = strlen(cases[k].dict);
        const char *p;
        assert_int_equal(ct_tensor_new_shape(f->eng, cases[k].dt, cases[k].ndim,
                                             cases[k].dims, &t, &st),
                         CT_OK);
        assert_int_equal(ct_npy_write_buffer(t, &buf, &len, &st), CT_OK);
        p = (const char *)buf + 10;
        assert_memory_equal(p, cases[k].dict, dl);
        /* Then only spaces up to the '\n' that ends byte 127. */
        while (p[dl] == ' ')
            dl++;
        assert_int_equal(10 + dl, 127);
        assert_int_equal(p[dl], '\n');
        ct_free(buf);
        ct_tensor_free(t);
    }
}

static void test_npy_write_buffer_strings_padded_to_longest(void **state)
{
    struct fx *f = *state;
    static const int64_t dims[] = {3};
    static const char dict[] = "{'descr': '|S3', 'fortran_order': False, "
                               "'shape': (3,), }";
    ct_tensor_t *t;
    ct_status_t st;
    void *buf;
    size_t len;

    assert_int_equal(
        ct_tensor_new_shape(f->eng, CT_DTYPE_STRING, 1, dims, &t, &st), CT_OK);
    assert_int_equal(ct_tensor_set_string(t, 0, "ab", 2, &st), CT_OK);
    assert_int_equal(ct_tensor_set_string(t, 2, "xyz", 3, &st), CT_OK);
    assert_int_equal(ct_npy_write_buffer(t, &buf, &len, &st), CT_OK);
    assert_int_equal(len, 137); /* numpy's np.save size for this array */
    assert_memory_equal((char *)buf + 10, dict, sizeof(dict) - 1);
    assert_memory_equal((char *)buf + 128, "ab\0\0\0\0xyz", 9);
    ct_free(buf);

    /* All strings empty: numpy uses S1. */
    assert_int_equal(ct_tensor_set_string(t, 0, "", 0, &st), CT_OK);
    assert_int_equal(ct_tensor_set_string(t, 2, "", 0, &st), CT_OK);
    assert_int_equal(ct_npy_write_buffer(t, &buf, &len, &st), CT_OK);
    assert_non_null(strstr((char *)buf + 10, "'|S1'"));
    assert_int_equal(len, 128 + 3);
    ct_free(buf);
    ct_tensor_free(t);
}

static void test_npy_write_buffer_undefined_returns_etype(void **state)
{
    struct fx *f = *state;
    ct_tensor_t *t;
    ct_status_t st;
    void *buf = (void *)1;
    size_t len = 1;
    int rc;

    assert_int_equal(ct_tensor_new(f->eng, &t, &st), CT_OK);
    rc = ct_npy_write_buffer(t, &buf, &len, &st);
    tu_assert_status(&st, rc, CT_ETYPE, "cannot write a UNDEFINED tensor");
    assert_null(buf);
    rc = ct_npy_write_file(t, "/tmp/never-written.npy", &st);
    tu_assert_status(&st, rc, CT_ETYPE, "/tmp/never-written.npy: ");
    ct_tensor_free(t);
}

static size_t count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_npy_write_file_round_trips_and_replaces(void **state)
{
    struct fx *f = *state;
    static const int64_t dims[] = {4, 5};
    ct_tensor_t *t = make_tensor(f, CT_DTYPE_F32, 2, dims);
    ct_tensor_t *s = make_tensor(f, CT_DTYPE_STRING, 1, dims);
    ct_tensor_t *back = NULL;
    ct_status_t st;
    char path[256];

    snprintf(path, sizeof(path), "%s/out.npy", f->dir);
    assert_int_equal(ct_npy_write_file(s, path, &st), CT_OK);
    assert_int_equal(ct_npy_read_file(f->eng, path, &back, &st), CT_OK);
    assert_same_tensor(s, back);
    ct_tensor_free(back);
    /* Overwrite: the new content replaces the old, no temp file left. */
    assert_int_equal(ct_npy_write_file(t, path, &st), CT_OK);
    assert_int_equal(ct_npy_read_file(f->eng, path, &back, &st), CT_OK);
    assert_same_tensor(t, back);
    assert_int_equal(count_dir_entries(f->dir), 1);
    ct_tensor_free(back);
    ct_tensor_free(s);
    ct_tensor_free(t);
}

static void test_npy_write_file_bad_dir_returns_eio(void **state)
{
    struct fx *f = *state;
    static const int64_t dims[] = {2};
    ct_tensor_t *t = make_tensor(f, CT_DTYPE_I64, 1, dims);
    ct_status_t st;
    char path[256];
    int rc;

    snprintf(path, sizeof(path), "%s/no/such/dir/x.npy", f->dir);
    rc = ct_npy_write_file(t, path, &st);
    tu_assert_status(&st, rc, CT_EIO, "No such file or directory");
    assert_int_equal(strncmp(st.msg, path, strlen(path)), 0);
    rc = ct_npy_write_file(t, f->dir, &st);
    tu_assert_status(&st, rc, CT_EIO, "is a directory");
    ct_tensor_free(t);
}

/* ---- allocation failures ---- */

static void test_npy_read_alloc_failure_returns_enomem(void **state)
{
    struct fx *f = *state;
    unsigned char buf[256];
    char path[256];
    size_t len =
        mk(buf, 1, "{'descr': '|S2', 'fortran_order': False, 'shape': (3,)}",
           "abcdef", 6);
    int pass;

    snprintf(path, sizeof(path), "%s/s.npy", f->dir);
    write_bytes(path, buf, len);
    for (pass = 0; pass < 2; pass++) {
        long k;
        for (k = 1;; k++) {
            ct_tensor_t *t = NULL;
            ct_status_t st;
            long live = tu_alloc_live();
            int rc;
            tu_fail_alloc_after(k);
            rc = pass == 0 ? ct_npy_read_buffer(f->eng, buf, len, &t, &st)
                           : ct_npy_read_file(f->eng, path, &t, &st);
            tu_fail_alloc_off();
            if (rc == CT_OK) {
                ct_tensor_free(t);
                break;
            }
            assert_int_equal(rc, CT_ENOMEM);
            assert_null(t);
            assert_int_equal(tu_alloc_live(), live);
            assert_int_equal(ct_engine_mem_in_use(f->eng), 0);
        }
        assert_true(k > 1);
    }
}

static void test_npy_write_alloc_failure_returns_enomem(void **state)
{
    struct fx *f = *state;
    static const int64_t dims[] = {3};
    ct_tensor_t *t = make_tensor(f, CT_DTYPE_STRING, 1, dims);
    char path[256];
    long k;

    snprintf(path, sizeof(path), "%s/w.npy", f->dir);
    for (k = 1;; k++) {
        ct_status_t st;
        void *buf = NULL;
        size_t len;
        long live = tu_alloc_live();
        int rc;
        tu_fail_alloc_after(k);
        rc = ct_npy_write_buffer(t, &buf, &len, &st);
        if (rc == CT_OK)
            rc = ct_npy_write_file(t, path, &st);
        tu_fail_alloc_off();
        ct_free(buf);
        if (rc == CT_OK)
            break;
        assert_int_equal(rc, CT_ENOMEM);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_int_equal(count_dir_entries(f->dir), 1);
    ct_tensor_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_npy_read_buffer_numpy_i32_matches),
        T(test_npy_read_buffer_scalar_0d),
        T(test_npy_read_buffer_empty_zero_dim),
        T(test_npy_read_buffer_zero_dim_with_huge_dims_ok),
        T(test_npy_read_buffer_strings_strip_trailing_nuls),
        T(test_npy_read_buffer_v2_and_v3_headers),
        T(test_npy_read_buffer_header_variants_parse),
        T(test_npy_read_buffer_every_dtype_spelling_maps),
        T(test_npy_read_buffer_big_endian_swapped),
        T(test_npy_read_buffer_bool_bytes_canonicalised),
        T(test_npy_read_buffer_fortran_1d_accepted),
        T(test_npy_read_buffer_fortran_2d_returns_enotsup),
        T(test_npy_read_buffer_bad_magic_returns_eparse),
        T(test_npy_read_buffer_short_preamble_returns_ecorrupt),
        T(test_npy_read_buffer_unknown_version_returns_enotsup),
        T(test_npy_read_buffer_header_past_end_returns_ecorrupt),
        T(test_npy_read_buffer_huge_header_returns_eparse),
        T(test_npy_read_buffer_bad_dict_returns_eparse),
        T(test_npy_read_buffer_unsupported_dtypes_return_enotsup),
        T(test_npy_read_buffer_rank_17_returns_enotsup),
        T(test_npy_read_buffer_absurd_shapes_return_ecorrupt),
        T(test_npy_read_buffer_truncated_data_returns_ecorrupt),
        T(test_npy_read_buffer_trailing_bytes_return_ecorrupt),
        T(test_npy_read_file_numpy_bytes_ok),
        T(test_npy_read_file_strings_and_tiny_header_ok),
        T(test_npy_read_file_errors_name_the_path),
        T(test_npy_write_buffer_every_dtype_round_trips),
        T(test_npy_write_buffer_matches_numpy_bytes),
        T(test_npy_write_buffer_header_spellings_match_numpy),
        T(test_npy_write_buffer_strings_padded_to_longest),
        T(test_npy_write_buffer_undefined_returns_etype),
        T(test_npy_write_file_round_trips_and_replaces),
        T(test_npy_write_file_bad_dir_returns_eio),
        T(test_npy_read_alloc_failure_returns_enomem),
        T(test_npy_write_alloc_failure_returns_enomem),
#undef T
    };

    /* Install the counting allocator before the first allocation. */
    (void)tu_alloc_live();
    return cmocka_run_group_tests_name("engine.npy", tests, NULL, NULL);
}
