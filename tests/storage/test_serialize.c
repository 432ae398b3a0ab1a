/* Blob serialization (storage/serialize.c) and deserialization
 * (storage/deserialize.c): the exact bytes of spec §4.5, canonical
 * encoding for every dtype (protobuf-c repacks our bytes unchanged),
 * round trips of every dtype, 0-d, empty and chunked tensors, other valid
 * encodings (unpacked, reordered, raw_data, byte_data), and the bad
 * records of reliability checklist B5 / B8. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cortado/proto.h"
#include "storage_test.h"
#include "test_util.h"

static ct_engine_t *eng;

static int setup(void **state)
{
    (void)state;
    tu_fail_alloc_off(); /* counting hooks in place before any allocation */
    return ct_engine_new(NULL, &eng, NULL);
}

static int teardown(void **state)
{
    (void)state;
    ct_engine_free(eng);
    return 0;
}

static ct_tensor_t *make(ct_dtype_t dt, int ndim, const int64_t *dims,
                         const void *data)
{
    ct_tensor_t *t;
    ct_status_t st;

    assert_int_equal(ct_tensor_new_shape(eng, dt, ndim, dims, &t, &st), CT_OK);
    if (data != NULL && ct_tensor_numel(t) > 0)
        memcpy(ct_tensor_data(t), data, ct_tensor_nbytes(t));
    return t;
}

static void serialize(const char *name, const ct_tensor_t *t, int64_t chunk,
                      int float_format, struct stu_recs *out)
{
    struct ct_serialize_options o = {chunk, float_format};
    struct ct_save_item it = {name, t, NULL, 0, &o};
    ct_status_t st;

    memset(out, 0, sizeof(*out));
    if (ct__serialize_item(&it, stu_capture, out, &st) != CT_OK)
        fail_msg("serialize %s: %s", name, st.msg);
}

/* Deserializes every record into one blob state; returns the tensor. */
static ct_tensor_t *deserialize(const struct stu_recs *r)
{
    struct ct__blob_state s;
    ct_status_t st;
    ct_tensor_t *t;
    size_t i;

    memset(&s, 0, sizeof(s));
    for (i = 0; i < r->n; i++)
        if (ct__blob_state_merge(&s, eng, r->r[i].key, r->r[i].val,
                                 r->r[i].vlen, 0, &st) != CT_OK)
            fail_msg("merge %s: %s", r->r[i].key, st.msg);
    if (ct__blob_state_check(&s, "x", &st) != CT_OK)
        fail_msg("%s", st.msg);
    assert_int_equal(s.kind, CT_BLOB_KIND_TENSOR);
    t = s.tensor;
    s.tensor = NULL;
    ct__blob_state_destroy(&s);
    return t;
}

static void assert_same_tensor(const ct_tensor_t *a, const ct_tensor_t *b)
{
    int64_t i;

    assert_int_equal(ct_tensor_dtype(a), ct_tensor_dtype(b));
    assert_int_equal(ct_tensor_ndim(a), ct_tensor_ndim(b));
    for (i = 0; i < ct_tensor_ndim(a); i++)
        assert_int_equal(ct_tensor_dim(a, (int)i), ct_tensor_dim(b, (int)i));
    if (ct_tensor_dtype(a) == CT_DTYPE_STRING) {
        const ct_str_t *x = ct_tensor_cdata(a), *y = ct_tensor_cdata(b);
        for (i = 0; i < ct_tensor_numel(a); i++) {
            assert_int_equal(x[i].len, y[i].len);
            if (x[i].len > 0)
                assert_memory_equal(x[i].data, y[i].data, x[i].len);
        }
    } else if (ct_tensor_numel(a) > 0) {
        assert_memory_equal(ct_tensor_cdata(a), ct_tensor_cdata(b),
                            ct_tensor_nbytes(a));
    }
}

/* pack(unpack(bytes)) == bytes: our encoding is protobuf's canonical one. */
static void assert_canonical(const unsigned char *v, size_t len)
{
    ProtobufCMessage *m;
    ct_status_t st;
    void *packed;
    size_t plen;

    assert_int_equal(
        ct_proto_unpack(&caffe2__blob_proto__descriptor, v, len, &m, &st),
        CT_OK);
    assert_int_equal(ct_proto_pack(m, &packed, &plen, &st), CT_OK);
    assert_int_equal(plen, len);
    assert_memory_equal(packed, v, len);
    ct_free(packed);
    ct_proto_free(m);
}

static void test_serialize_float_matches_spec_byte_example(void **state)
{
    static const unsigned char want[] = {
        0x0a, 0x01, 0x78, 0x12, 0x06, 'T',  'e',  'n',  's',  'o',  'r',
        0x1a, 0x1d, 0x08, 0x02, 0x10, 0x01, 0x1a, 0x08, 0x00, 0x00, 0x80,
        0x3f, 0x00, 0x00, 0x00, 0x40, 0x3a, 0x01, 0x78, 0x42, 0x02, 0x08,
        0x00, 0x5a, 0x04, 0x08, 0x00, 0x10, 0x02, 0x78, 0x00};
    static const unsigned char rec_head[] = {0x04, 0x00, 0x00, 0x00, 0x2a, 0x00,
                                             0x00, 0x00, 'x',  '#',  '%',  '0'};
    const float x[2] = {1.0f, 2.0f};
    const int64_t dims[1] = {2};
    ct_tensor_t *t = make(CT_DTYPE_F32, 1, dims, x);
    struct ct_save_item it = {"x", t, NULL, 0, NULL};
    struct stu_recs r, file;
    unsigned char *buf;
    size_t len;
    char *dir = stu_tmpdir(), *path = stu_path(dir, "x.minidb");

    (void)state;
    serialize("x", t, 0, 0, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.r[0].key, "x#%0");
    assert_int_equal(r.r[0].vlen, sizeof(want));
    assert_memory_equal(r.r[0].val, want, sizeof(want));

    /* In the file: header record, then exactly the spec's record bytes. */
    stu_save(path, &it, 1);
    buf = stu_read(path, &len);
    assert_non_null(buf);
    assert_true(stu_parse_minidb(buf, len, &file));
    assert_int_equal(file.n, 3);
    assert_string_equal(file.r[0].key, CT_MINIDB_HEADER_KEY);
    assert_memory_equal(buf + file.r[1].offset, rec_head, sizeof(rec_head));
    assert_memory_equal(buf + file.r[1].offset + sizeof(rec_head), want,
                        sizeof(want));
    assert_string_equal(file.r[2].key, CT_MINIDB_MANIFEST_KEY);
    stu_recs_free(&file);
    free(buf);
    stu_recs_free(&r);
    ct_tensor_free(t);
    free(path);
    stu_rmtree(dir);
}

static void test_serialize_every_dtype_is_canonical_and_round_trips(void **s)
{
    static const ct_dtype_t dts[] = {
        CT_DTYPE_F32, CT_DTYPE_I32, CT_DTYPE_BYTE, CT_DTYPE_BOOL,
        CT_DTYPE_U8,  CT_DTYPE_I8,  CT_DTYPE_U16,  CT_DTYPE_I16,
        CT_DTYPE_I64, CT_DTYPE_F16, CT_DTYPE_F64,
    };
    const int64_t dims[2] = {2, 3};
    size_t k;

    (void)s;
    for (k = 0; k < sizeof(dts) / sizeof(dts[0]); k++) {
        unsigned char raw[6 * 8];
        ct_tensor_t *t, *back;
        struct stu_recs r;
        size_t i;
        for (i = 0; i < sizeof(raw); i++) /* includes negative values */
            raw[i] = (unsigned char)(i * 37 + 200);
        if (dts[k] == CT_DTYPE_BOOL)
            for (i = 0; i < 6; i++)
                raw[i] &= 1;
        t = make(dts[k], 2, dims, raw);
        serialize("x", t, 0, 0, &r);
        assert_int_equal(r.n, 1);
        assert_string_equal(r.r[0].key, "x#%0");
        assert_canonical(r.r[0].val, r.r[0].vlen);
        back = deserialize(&r);
        assert_same_tensor(t, back);
        ct_tensor_free(back);
        stu_recs_free(&r);
        ct_tensor_free(t);
    }
}

static void test_serialize_uses_caffe2_data_fields(void **state)
{
    static const struct {
        ct_dtype_t dt;
        const char *field;
    } cases[] = {
        {CT_DTYPE_F32, "float"},  {CT_DTYPE_F64, "double"},
        {CT_DTYPE_I64, "int64"},  {CT_DTYPE_I32, "int32"},
        {CT_DTYPE_BOOL, "int32"}, {CT_DTYPE_I8, "int32"},
        {CT_DTYPE_I16, "int32"},  {CT_DTYPE_U8, "int32"},
        {CT_DTYPE_U16, "int32"},  {CT_DTYPE_F16, "int32"},
    };
    const int64_t dims[2] = {2, 3};
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        ct_tensor_t *t = make(cases[k].dt, 2, dims, NULL);
        struct stu_recs r;
        ProtobufCMessage *m;
        const Caffe2__TensorProto *tp;
        ct_status_t st;
        size_t n;
        serialize("x", t, 0, 0, &r);
        assert_int_equal(ct_proto_unpack(&caffe2__blob_proto__descriptor,
                                         r.r[0].val, r.r[0].vlen, &m, &st),
                         CT_OK);
        tp = ((Caffe2__BlobProto *)m)->tensor;
        n = strcmp(cases[k].field, "float") == 0    ? tp->n_float_data
            : strcmp(cases[k].field, "double") == 0 ? tp->n_double_data
            : strcmp(cases[k].field, "int64") == 0  ? tp->n_int64_data
                                                    : tp->n_int32_data;
        assert_int_equal(n, 6);
        assert_true(tp->has_data_type);
        assert_int_equal(tp->data_type, cases[k].dt);
        /* Only float carries data_format. */
        assert_int_equal(tp->has_data_format, cases[k].dt == CT_DTYPE_F32);
        assert_int_equal(tp->device_detail->device_type, 0);
        assert_true(tp->device_detail->has_device_type);
        assert_int_equal(tp->segment->begin, 0);
        assert_int_equal(tp->segment->end, 6);
        ct_proto_free(m);
        stu_recs_free(&r);
        ct_tensor_free(t);
    }
}

static void test_serialize_strings_scalar_and_empty_round_trip(void **state)
{
    const int64_t d3[1] = {3}, d0x3[2] = {0, 3};
    ct_tensor_t *t, *back;
    struct stu_recs r;
    ct_status_t st;
    const int64_t v = -5;

    (void)state;
    /* strings, one empty and one with a NUL inside */
    t = make(CT_DTYPE_STRING, 1, d3, NULL);
    assert_int_equal(ct_tensor_set_string(t, 0, "abc", 3, &st), CT_OK);
    assert_int_equal(ct_tensor_set_string(t, 2, "a\0b", 3, &st), CT_OK);
    serialize("s", t, 0, 0, &r);
    assert_canonical(r.r[0].val, r.r[0].vlen);
    back = deserialize(&r);
    assert_same_tensor(t, back);
    ct_tensor_free(back);
    stu_recs_free(&r);
    ct_tensor_free(t);

    /* 0-d */
    t = make(CT_DTYPE_I64, 0, NULL, &v);
    serialize("i", t, 0, 0, &r);
    assert_int_equal(r.n, 1);
    back = deserialize(&r);
    assert_same_tensor(t, back);
    assert_int_equal(*(const int64_t *)ct_tensor_cdata(back), -5);
    ct_tensor_free(back);
    stu_recs_free(&r);
    ct_tensor_free(t);

    /* 0 x 3: one chunk, dims kept */
    t = make(CT_DTYPE_F32, 2, d0x3, NULL);
    serialize("e", t, 0, 0, &r);
    assert_int_equal(r.n, 1);
    assert_canonical(r.r[0].val, r.r[0].vlen);
    back = deserialize(&r);
    assert_same_tensor(t, back);
    ct_tensor_free(back);
    stu_recs_free(&r);
    ct_tensor_free(t);
}

static void test_serialize_undefined_empty_loads_as_float_0(void **state)
{
    ct_tensor_t *t, *back;
    struct stu_recs r;

    (void)state;
    assert_int_equal(ct_tensor_new(eng, &t, NULL), CT_OK);
    serialize("u", t, 0, 0, &r);
    back = deserialize(&r);
    assert_int_equal(ct_tensor_dtype(back), CT_DTYPE_F32);
    assert_int_equal(ct_tensor_ndim(back), 1);
    assert_int_equal(ct_tensor_dim(back, 0), 0);
    ct_tensor_free(back);
    stu_recs_free(&r);
    ct_tensor_free(t);
}

static void test_serialize_chunk_sizes_give_caffe2_counts(void **state)
{
    const int64_t dims[1] = {1234};
    ct_tensor_t *t = make(CT_DTYPE_I16, 1, dims, NULL), *back;
    struct stu_recs r;
    int16_t *p = ct_tensor_data(t);
    int i;

    (void)state;
    for (i = 0; i < 1234; i++)
        p[i] = (int16_t)(i * 7 - 3000);
    serialize("x", t, 32, 0, &r); /* ceil(1234 / 32) = 39 */
    assert_int_equal(r.n, 39);
    assert_string_equal(r.r[38].key, "x#%38");
    back = deserialize(&r);
    assert_same_tensor(t, back);
    ct_tensor_free(back);
    stu_recs_free(&r);
    serialize("x", t, 1234, 0, &r); /* chunk = numel: one */
    assert_int_equal(r.n, 1);
    stu_recs_free(&r);
    serialize("x", t, 1234 / 2 + 1, 0, &r); /* numel / 2 + 1: two */
    assert_int_equal(r.n, 2);
    stu_recs_free(&r);
    serialize("x", t, -1, 0, &r); /* no chunking */
    assert_int_equal(r.n, 1);
    stu_recs_free(&r);
    assert_int_equal(ct__chunk_len(1000010, NULL), 1000000);
    ct_tensor_free(t);
}

static void test_serialize_bfloat16_is_half_size_and_close(void **state)
{
    const int64_t dims[1] = {4000};
    ct_tensor_t *t = make(CT_DTYPE_F32, 1, dims, NULL), *back;
    struct stu_recs r16, r32;
    float *x = ct_tensor_data(t);
    const float *y;
    int i;

    (void)state;
    tu_fill_uniform(x, 4000, -3, 3, 7);
    serialize("f", t, -1, 2, &r16);
    serialize("f", t, -1, 0, &r32);
    assert_true(r16.r[0].vlen < 0.6 * r32.r[0].vlen);
    assert_canonical(r16.r[0].val, r16.r[0].vlen);
    back = deserialize(&r16);
    y = ct_tensor_cdata(back);
    for (i = 0; i < 4000; i++)
        assert_true(y[i] - x[i] < 0.02f && x[i] - y[i] < 0.02f);
    ct_tensor_free(back);
    stu_recs_free(&r16);
    stu_recs_free(&r32);
    ct_tensor_free(t);
}

/* ---- other valid encodings ---- */

static int merge_bytes(const unsigned char *v, size_t len, ct_tensor_t **out,
                       ct_status_t *st)
{
    struct ct__blob_state s;
    int rc;

    memset(&s, 0, sizeof(s));
    rc = ct__blob_state_merge(&s, eng, "k#%0", v, len, 0, st);
    if (rc == CT_OK)
        rc = ct__blob_state_check(&s, "k", st);
    if (rc == CT_OK) {
        *out = s.tensor;
        s.tensor = NULL;
    }
    ct__blob_state_destroy(&s);
    return rc;
}

/* BlobProto{type "Tensor", tensor = tp bytes}. */
static size_t wrap(unsigned char *out, const unsigned char *tp, size_t n)
{
    static const unsigned char head[] = {0x12, 0x06, 'T', 'e', 'n',
                                         's',  'o',  'r', 0x1a};
    memcpy(out, head, sizeof(head));
    out[sizeof(head)] = (unsigned char)n;
    memcpy(out + sizeof(head) + 1, tp, n);
    return sizeof(head) + 1 + n;
}

static void test_deserialize_accepts_unpacked_reordered_raw(void **state)
{
    /* segment first, then data_type, unpacked float_data (fixed32 tags),
     * dims last. */
    static const unsigned char unpacked[] = {
        0x5a, 0x04, 0x08, 0x00, 0x10, 0x02, 0x10, 0x01, 0x1d, 0x00,
        0x00, 0x80, 0x3f, 0x1d, 0x00, 0x00, 0x00, 0x40, 0x08, 0x02};
    /* float as raw_data (ONNX style), no segment */
    static const unsigned char raw[] = {0x08, 0x02, 0x10, 0x01, 0x6a,
                                        0x08, 0x00, 0x00, 0x80, 0x3f,
                                        0x00, 0x00, 0x00, 0x40};
    /* uint16 [2] as byte_data (Caffe2's bytes-holder flag) */
    static const unsigned char u16[] = {0x08, 0x02, 0x10, 0x08, 0x2a,
                                        0x04, 0x34, 0x12, 0xff, 0xff};
    /* int32 unpacked varints, one negative (10 bytes) */
    static const unsigned char i32[] = {0x08, 0x02, 0x10, 0x02, 0x20, 0x05,
                                        0x20, 0xfd, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0x01};
    unsigned char buf[64];
    ct_tensor_t *t;
    ct_status_t st;
    const float *f;

    (void)state;
    assert_int_equal(
        merge_bytes(buf, wrap(buf, unpacked, sizeof(unpacked)), &t, &st),
        CT_OK);
    f = ct_tensor_cdata(t);
    assert_true(f[0] == 1.0f && f[1] == 2.0f);
    ct_tensor_free(t);
    assert_int_equal(merge_bytes(buf, wrap(buf, raw, sizeof(raw)), &t, &st),
                     CT_OK);
    f = ct_tensor_cdata(t);
    assert_true(f[0] == 1.0f && f[1] == 2.0f);
    ct_tensor_free(t);
    assert_int_equal(merge_bytes(buf, wrap(buf, u16, sizeof(u16)), &t, &st),
                     CT_OK);
    assert_int_equal(((const uint16_t *)ct_tensor_cdata(t))[0], 0x1234);
    assert_int_equal(((const uint16_t *)ct_tensor_cdata(t))[1], 0xffff);
    ct_tensor_free(t);
    assert_int_equal(merge_bytes(buf, wrap(buf, i32, sizeof(i32)), &t, &st),
                     CT_OK);
    assert_int_equal(((const int32_t *)ct_tensor_cdata(t))[0], 5);
    assert_int_equal(((const int32_t *)ct_tensor_cdata(t))[1], -3);
    ct_tensor_free(t);
}

/* ---- bad records (checklist B5, B8) ---- */

static void expect_bad(const unsigned char *tp, size_t n, int code,
                       const char *needle)
{
    unsigned char buf[96];
    ct_tensor_t *t = NULL;
    ct_status_t st;
    long live = tu_alloc_live();
    int rc = merge_bytes(buf, wrap(buf, tp, n), &t, &st);

    if (rc != code || strstr(st.msg, needle) == NULL)
        fail_msg("want %s \"%s\", got %s \"%s\"", ct_err_name(code), needle,
                 ct_err_name(rc), rc != CT_OK ? st.msg : "");
    assert_null(t);
    assert_int_equal(tu_alloc_live(), live);
}

static void test_deserialize_bad_tensors_fail_cleanly(void **state)
{
    static const unsigned char no_type[] = {0x08, 0x01, 0x1a, 0x04, 0, 0, 0, 0};
    static const unsigned char neg_dim[] = {0x08, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0xff,
                                            0x01, 0x10, 0x01};
    static const unsigned char overflow[] = {
        0x08, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x08, 0xff, 0xff, 0xff,
        0xff, 0x0f, 0x08, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x10, 0x01};
    static const unsigned char count[] = {0x08, 0x03, 0x10, 0x01, 0x1a,
                                          0x04, 0,    0,    0,    0};
    static const unsigned char dtype[] = {0x08, 0x01, 0x10, 0x0b};
    static const unsigned char zch[] = {0x08, 0x01, 0x10, 0x0e};
    static const unsigned char seg[] = {0x08, 0x02, 0x10, 0x01, 0x5a,
                                        0x04, 0x08, 0x01, 0x10, 0x05};
    /* 2^62 elements with 4 bytes of data: refused before allocating. */
    static const unsigned char huge[] = {
        0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x10, 0x01,
        0x1a, 0x04, 0,    0,    0,    0,    0x5a, 0x04, 0x08, 0x00, 0x10, 0x01};
    static const unsigned char fmt[] = {0x08, 0x01, 0x10, 0x02, 0x78, 0x01};
    unsigned char buf[96];
    ct_tensor_t *t = NULL;
    ct_status_t st;
    struct ct__blob_state s;
    size_t n;

    (void)state;
    expect_bad(no_type, sizeof(no_type), CT_ECORRUPT, "unrecognized data type");
    expect_bad(neg_dim, sizeof(neg_dim), CT_ECORRUPT, "negative");
    expect_bad(overflow, sizeof(overflow), CT_ECORRUPT, "overflows");
    expect_bad(count, sizeof(count), CT_ECORRUPT, "Incorrect proto field size");
    expect_bad(dtype, sizeof(dtype), CT_ECORRUPT, "unrecognized data type 11");
    expect_bad(zch, sizeof(zch), CT_ENOTSUP, "ZERO_COLLISION_HASH");
    expect_bad(seg, sizeof(seg), CT_ECORRUPT, "Invalid chunk 1 5");
    expect_bad(fmt, sizeof(fmt), CT_ENOTSUP, "serialization format 1");
    /* with the db-size bound of a small file */
    n = wrap(buf, huge, sizeof(huge));
    memset(&s, 0, sizeof(s));
    assert_int_equal(ct__blob_state_merge(&s, eng, "h#%0", buf, n, 100, &st),
                     CT_ECORRUPT);
    assert_non_null(strstr(st.msg, "cannot fit in a db of 100 bytes"));
    ct__blob_state_destroy(&s);
    /* not a BlobProto at all */
    assert_int_equal(merge_bytes((const unsigned char *)"\xff\xff", 2, &t, &st),
                     CT_ECORRUPT);
    assert_non_null(strstr(st.msg, "Couldn't parse Proto"));
}

static void test_deserialize_chunk_states_catch_missing_extra_overlap(void **s)
{
    const int64_t dims[1] = {100};
    ct_tensor_t *t = make(CT_DTYPE_F32, 1, dims, NULL);
    struct stu_recs r;
    struct ct__blob_state bs;
    ct_status_t st;

    (void)s;
    serialize("x", t, 30, 0, &r); /* 4 chunks */
    assert_int_equal(r.n, 4);
    /* missing chunk 2 */
    memset(&bs, 0, sizeof(bs));
    assert_int_equal(
        ct__blob_state_merge(&bs, eng, "x#%0", r.r[0].val, r.r[0].vlen, 0, &st),
        CT_OK);
    assert_int_equal(
        ct__blob_state_merge(&bs, eng, "x#%1", r.r[1].val, r.r[1].vlen, 0, &st),
        CT_OK);
    assert_int_equal(
        ct__blob_state_merge(&bs, eng, "x#%3", r.r[3].val, r.r[3].vlen, 0, &st),
        CT_OK);
    assert_int_equal(ct__blob_state_check(&bs, "x", &st), CT_ECORRUPT);
    assert_non_null(strstr(st.msg, "Data size mismatch for blob x. "
                                   "Expected: 100 Read: 70"));
    /* chunk 1 again: overlaps (Caffe2 would have counted it) */
    assert_int_equal(
        ct__blob_state_merge(&bs, eng, "x#%1", r.r[1].val, r.r[1].vlen, 0, &st),
        CT_ECORRUPT);
    assert_non_null(strstr(st.msg, "overlaps"));
    assert_int_equal(
        ct__blob_state_merge(&bs, eng, "x#%2", r.r[2].val, r.r[2].vlen, 0, &st),
        CT_OK);
    assert_int_equal(ct__blob_state_check(&bs, "x", &st), CT_OK);
    /* complete: one more part is extra */
    assert_int_equal(
        ct__blob_state_merge(&bs, eng, "x#%0", r.r[0].val, r.r[0].vlen, 0, &st),
        CT_ECORRUPT);
    assert_non_null(strstr(st.msg, "Found an extra part for an already "
                                   "filled tensor: x#%0"));
    ct__blob_state_destroy(&bs);
    stu_recs_free(&r);
    ct_tensor_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serialize_float_matches_spec_byte_example),
        cmocka_unit_test(
            test_serialize_every_dtype_is_canonical_and_round_trips),
        cmocka_unit_test(test_serialize_uses_caffe2_data_fields),
        cmocka_unit_test(test_serialize_strings_scalar_and_empty_round_trip),
        cmocka_unit_test(test_serialize_undefined_empty_loads_as_float_0),
        cmocka_unit_test(test_serialize_chunk_sizes_give_caffe2_counts),
        cmocka_unit_test(test_serialize_bfloat16_is_half_size_and_close),
        cmocka_unit_test(test_deserialize_accepts_unpacked_reordered_raw),
        cmocka_unit_test(test_deserialize_bad_tensors_fail_cleanly),
        cmocka_unit_test(
            test_deserialize_chunk_states_catch_missing_extra_overlap),
    };
    return cmocka_run_group_tests_name("storage.serialize", tests, setup,
                                       teardown);
}
