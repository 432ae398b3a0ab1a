/* Tests for proto/proto.c: the guarded binary unpacker, packing, format
 * detection, files, and the NetDef shorthands. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/proto.h"
#include "proto/caffe2.pb-c.h"
#include "test_util.h"

#define NETDEF (&caffe2__net_def__descriptor)

/* ---- fixtures ---- */

struct tmpdir {
    char path[64];
};

static int tmpdir_setup(void **state)
{
    struct tmpdir *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return -1;
    snprintf(t->path, sizeof(t->path), "/tmp/ct_test_proto_XXXXXX");
    if (mkdtemp(t->path) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int tmpdir_teardown(void **state)
{
    struct tmpdir *t = *state;
    struct dirent *e;
    char path[512];
    DIR *d = opendir(t->path);

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", t->path, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(t->path);
    free(t);
    return 0;
}

/* ---- helpers ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    return n;
}

/* A small NetDef packed by protobuf-c itself: name, one FC op with an
 * argument holding a float and two floats, num_workers, inputs. */
static uint8_t *small_netdef(size_t *len)
{
    static char *in[] = {"X", "W"};
    static char *outs[] = {"Y"};
    static float floats[] = {1.5f, -2.0f};
    Caffe2__Argument arg = CAFFE2__ARGUMENT__INIT;
    Caffe2__Argument *args[1] = {&arg};
    Caffe2__OperatorDef op = CAFFE2__OPERATOR_DEF__INIT;
    Caffe2__OperatorDef *ops[1] = {&op};
    Caffe2__NetDef net = CAFFE2__NET_DEF__INIT;
    uint8_t *buf;

    arg.name = "alpha";
    arg.has_f = 1;
    arg.f = 0.5f;
    arg.n_floats = 2;
    arg.floats = floats;
    op.n_input = 2;
    op.input = in;
    op.n_output = 1;
    op.output = outs;
    op.type = "FC";
    op.n_arg = 1;
    op.arg = args;
    net.name = "small";
    net.n_op = 1;
    net.op = ops;
    net.has_num_workers = 1;
    net.num_workers = 4;
    net.n_external_input = 2;
    net.external_input = in;
    *len = protobuf_c_message_get_packed_size(&net.base);
    buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(&net.base, buf), *len);
    return buf;
}

/* NetDef -> arg -> n -> arg -> nets -> ... with `depth` messages nested
 * below the top NetDef (even depths are NetDefs, odd ones Arguments;
 * Argument.n and Argument.nets alternate). *mark_off is the offset of the
 * tag that opens the message at depth `mark` (0 when mark is 0). */
static uint8_t *build_nested(size_t depth, size_t *len, size_t mark,
                             size_t *mark_off)
{
    size_t cap = depth * 6 + 16, pos = cap, k, mark_pos = cap;
    uint8_t *b = malloc(cap);

    assert_non_null(b);
    for (k = depth; k >= 1; k--) {
        uint8_t tmp[10];
        size_t n = put_varint(tmp, cap - pos);
        pos -= n;
        memcpy(b + pos, tmp, n);
        if ((k - 1) % 2 == 0)
            b[--pos] = 0x32; /* NetDef.arg = 6, length-delimited */
        else
            b[--pos] = (k - 1) % 4 == 1 ? 0x42 : 0x4a; /* Argument.n/nets */
        if (k == mark)
            mark_pos = pos;
    }
    *len = cap - pos;
    if (mark_off != NULL)
        *mark_off = mark == 0 ? 0 : mark_pos - pos;
    memmove(b, b + pos, *len);
    return b;
}

/* Depth of the chain built by build_nested, walked without recursion. */
static size_t nested_depth(const Caffe2__NetDef *net)
{
    size_t d = 0;

    for (;;) {
        const Caffe2__Argument *a;
        if (net->n_arg == 0)
            return d;
        a = net->arg[0];
        d++;
        if (a->n != NULL)
            net = a->n;
        else if (a->n_nets > 0)
            net = a->nets[0];
        else
            return d;
        d++;
    }
}

static int unpack_netdef(const uint8_t *buf, size_t len, ct_status_t *st)
{
    ProtobufCMessage *m = NULL;
    int rc;

    ct_status_clear(st);
    rc = ct_proto_unpack(NETDEF, buf, len, &m, st);
    if (rc == CT_OK) {
        assert_non_null(m);
        ct_proto_free(m);
    }
    return rc;
}

static void expect_parse_error(const ProtobufCMessageDescriptor *desc,
                               const uint8_t *buf, size_t len, const char *msg)
{
    ProtobufCMessage *m = NULL;
    ct_status_t st;
    int rc = ct_proto_unpack(desc, buf, len, &m, &st);

    tu_assert_status(&st, rc, CT_EPARSE, NULL);
    assert_null(m);
    assert_string_equal(st.msg, msg);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- unpack: valid input ---- */

static void test_proto_unpack_small_netdef_returns_fields(void **state)
{
    size_t len;
    uint8_t *buf = small_netdef(&len);
    ProtobufCMessage *m;
    Caffe2__NetDef *net;
    ct_status_t st;

    (void)state;
    assert_int_equal(ct_proto_unpack(NETDEF, buf, len, &m, &st), CT_OK);
    net = (Caffe2__NetDef *)m;
    assert_string_equal(net->name, "small");
    assert_int_equal(net->n_op, 1);
    assert_string_equal(net->op[0]->type, "FC");
    assert_int_equal(net->op[0]->n_arg, 1);
    assert_true(net->op[0]->arg[0]->has_f);
    assert_true(net->op[0]->arg[0]->f == 0.5f);
    assert_int_equal(net->op[0]->arg[0]->n_floats, 2);
    assert_int_equal(net->num_workers, 4);
    ct_proto_free(m);
    free(buf);
}

static void test_proto_unpack_zero_bytes_returns_empty_message(void **state)
{
    ProtobufCMessage *m;
    ct_status_t st;

    (void)state;
    assert_int_equal(ct_proto_unpack(NETDEF, NULL, 0, &m, &st), CT_OK);
    assert_null(((Caffe2__NetDef *)m)->name);
    assert_int_equal(((Caffe2__NetDef *)m)->n_op, 0);
    ct_proto_free(m);
}

static void test_proto_unpack_unknown_fields_are_kept(void **state)
{
    /* name "a", then unknown field 100 (varint 5) and 101 (bytes "xy"). */
    static const uint8_t in[] = {0x0a, 0x01, 'a',  0xa0, 0x06, 0x05,
                                 0xaa, 0x06, 0x02, 'x',  'y'};
    ProtobufCMessage *m;
    ct_status_t st;
    void *out;
    size_t len;

    (void)state;
    assert_int_equal(ct_proto_unpack(NETDEF, in, sizeof(in), &m, &st), CT_OK);
    assert_int_equal(m->n_unknown_fields, 2);
    assert_int_equal(ct_proto_pack(m, &out, &len, &st), CT_OK);
    assert_int_equal(len, sizeof(in));
    assert_memory_equal(out, in, len);
    ct_free(out);
    ct_proto_free(m);
}

static void
test_proto_unpack_packed_and_unpacked_repeated_both_accepted(void **state)
{
    /* Argument.ints (6) packed {1, 300}, then unpacked 7. */
    static const uint8_t in[] = {0x32, 0x03, 0x01, 0xac, 0x02, 0x30, 0x07};
    ProtobufCMessage *m;
    Caffe2__Argument *a;
    ct_status_t st;

    (void)state;
    assert_int_equal(
        ct_proto_unpack(&caffe2__argument__descriptor, in, sizeof(in), &m, &st),
        CT_OK);
    a = (Caffe2__Argument *)m;
    assert_int_equal(a->n_ints, 3);
    assert_int_equal(a->ints[0], 1);
    assert_int_equal(a->ints[1], 300);
    assert_int_equal(a->ints[2], 7);
    ct_proto_free(m);
}

/* ---- unpack: hostile input ---- */

static void test_proto_unpack_truncated_netdef_fails_inside_fields(void **state)
{
    size_t len, k, pos = 0;
    uint8_t *buf = small_netdef(&len);
    bool *boundary = calloc(len + 1, sizeof(bool));
    ct_status_t st;

    (void)state;
    assert_non_null(boundary);
    /* A prefix that ends between two top-level fields is itself a valid
     * NetDef (no field of NetDef is required); any other cut is not. */
    while (pos < len) {
        uint64_t tag = 0, v = 0;
        unsigned shift = 0;
        boundary[pos] = true;
        do
            tag |= (uint64_t)(buf[pos] & 0x7f) << shift, shift += 7;
        while (buf[pos++] & 0x80);
        switch (tag & 7) {
        case 0:
            while (buf[pos++] & 0x80)
                ;
            break;
        case 2:
            shift = 0;
            do
                v |= (uint64_t)(buf[pos] & 0x7f) << shift, shift += 7;
            while (buf[pos++] & 0x80);
            pos += (size_t)v;
            break;
        default:
            fail_msg("unexpected wire type in small_netdef");
        }
    }
    boundary[len] = true;
    for (k = 0; k <= len; k++) {
        int rc = unpack_netdef(buf, k, &st);
        if (boundary[k]) {
            if (rc != CT_OK)
                fail_msg("prefix %zu of %zu: %s", k, len, st.msg);
        } else {
            tu_assert_status(&st, rc, CT_EPARSE, NULL);
        }
    }
    free(boundary);
    free(buf);
}

static void test_proto_unpack_one_byte_inputs_return_eparse(void **state)
{
    ct_status_t st;
    unsigned b;

    (void)state;
    /* A lone byte is a tag without its value (or an invalid tag). */
    for (b = 0; b < 256; b++) {
        uint8_t in = (uint8_t)b;
        tu_assert_status(&st, unpack_netdef(&in, 1, &st), CT_EPARSE, NULL);
    }
}

static void test_proto_unpack_random_bytes_never_crash(void **state)
{
    uint64_t seed = 0x5eed1234abcdULL;
    uint8_t buf[512];
    ct_status_t st;
    int i, n_ok = 0;

    (void)state;
    for (i = 0; i < 2000; i++) {
        size_t len = (size_t)(xorshift(&seed) % sizeof(buf)), k;
        int rc;
        for (k = 0; k < len; k++)
            buf[k] = (uint8_t)xorshift(&seed);
        rc = unpack_netdef(buf, len, &st);
        if (rc != CT_OK && rc != CT_EPARSE)
            fail_msg("input %d: %s", i, st.msg);
        n_ok += rc == CT_OK;
    }
    print_message("random inputs: %d of 2000 parsed\n", n_ok);
}

static void test_proto_unpack_mutated_netdef_never_crashes(void **state)
{
    uint64_t seed = 42;
    size_t len;
    uint8_t *orig = small_netdef(&len);
    uint8_t *buf = malloc(len);
    ct_status_t st;
    int i, n_ok = 0;

    (void)state;
    assert_non_null(buf);
    for (i = 0; i < 2000; i++) {
        int flips = 1 + (int)(xorshift(&seed) % 4), j, rc;
        memcpy(buf, orig, len);
        for (j = 0; j < flips; j++)
            buf[xorshift(&seed) % len] ^=
                (uint8_t)(1u << (xorshift(&seed) % 8));
        rc = unpack_netdef(buf, len, &st);
        if (rc != CT_OK && rc != CT_EPARSE)
            fail_msg("mutation %d: %s", i, st.msg);
        n_ok += rc == CT_OK;
    }
    print_message("mutated inputs: %d of 2000 parsed\n", n_ok);
    free(buf);
    free(orig);
}

static void test_proto_unpack_depth_100_parses(void **state)
{
    size_t len;
    uint8_t *buf = build_nested(CT_PROTO_MAX_DEPTH, &len, 0, NULL);
    ProtobufCMessage *m;
    ct_status_t st;

    (void)state;
    assert_int_equal(ct_proto_unpack(NETDEF, buf, len, &m, &st), CT_OK);
    assert_int_equal(nested_depth((Caffe2__NetDef *)m), CT_PROTO_MAX_DEPTH);
    ct_proto_free(m);
    free(buf);
}

static void test_proto_unpack_depth_101_returns_eparse(void **state)
{
    size_t len, off;
    uint8_t *buf = build_nested(CT_PROTO_MAX_DEPTH + 1, &len,
                                CT_PROTO_MAX_DEPTH + 1, &off);
    char want[80];

    (void)state;
    snprintf(want, sizeof(want), "nesting too deep (> 100) at offset %zu", off);
    expect_parse_error(NETDEF, buf, len, want);
    free(buf);
}

static void test_proto_unpack_depth_1e4_and_1e6_return_eparse(void **state)
{
    static const size_t depths[] = {10000, 1000000};
    size_t i;

    (void)state;
    for (i = 0; i < 2; i++) {
        size_t len, off;
        uint8_t *buf =
            build_nested(depths[i], &len, CT_PROTO_MAX_DEPTH + 1, &off);
        char want[80];
        snprintf(want, sizeof(want), "nesting too deep (> 100) at offset %zu",
                 off);
        expect_parse_error(NETDEF, buf, len, want);
        free(buf);
    }
}

struct small_stack_job {
    const uint8_t *buf;
    size_t len;
    int rc;
    size_t depth;
};

static void *small_stack_main(void *arg)
{
    struct small_stack_job *job = arg;
    ProtobufCMessage *m = NULL;

    job->rc = ct_proto_unpack(NETDEF, job->buf, job->len, &m, NULL);
    if (job->rc == CT_OK) {
        job->depth = nested_depth((Caffe2__NetDef *)m);
        ct_proto_free(m);
    }
    return NULL;
}

static void *noop_main(void *arg)
{
    return arg;
}

/* glibc places static TLS (ours and every linked library's, e.g.
 * OpenBLAS's) in the thread's stack block and refuses a stack smaller
 * than that with EINVAL. The smallest stack a thread can have here. */
static size_t min_thread_stack(void)
{
    size_t size = 16 * 1024;
    pthread_attr_t attr;
    pthread_t tid;

    for (;; size *= 2) {
        assert_true(size <= ((size_t)64 << 20));
        assert_int_equal(pthread_attr_init(&attr), 0);
        assert_int_equal(pthread_attr_setstacksize(&attr, size), 0);
        if (pthread_create(&tid, &attr, noop_main, NULL) == 0) {
            pthread_attr_destroy(&attr);
            assert_int_equal(pthread_join(tid, NULL), 0);
            return size;
        }
        pthread_attr_destroy(&attr);
    }
}

static void test_proto_unpack_depth_100_on_64k_stack_succeeds(void **state)
{
    struct small_stack_job job = {NULL, 0, -1, 0};
    pthread_attr_t attr;
    pthread_t tid;
    uint8_t *buf;

    (void)state;
    buf = build_nested(CT_PROTO_MAX_DEPTH, &job.len, 0, NULL);
    job.buf = buf;
    assert_int_equal(pthread_attr_init(&attr), 0);
    /* 64 KiB of usable stack on top of what the TLS takes. */
    assert_int_equal(
        pthread_attr_setstacksize(&attr, min_thread_stack() + 64 * 1024), 0);
    assert_int_equal(pthread_create(&tid, &attr, small_stack_main, &job), 0);
    assert_int_equal(pthread_join(tid, NULL), 0);
    pthread_attr_destroy(&attr);
    assert_int_equal(job.rc, CT_OK);
    assert_int_equal(job.depth, CT_PROTO_MAX_DEPTH);
    free(buf);
}

static void test_proto_unpack_huge_length_prefix_returns_eparse(void **state)
{
    uint8_t in[16] = {0x0a}; /* NetDef.name, length 2^60 */
    size_t n = 1 + put_varint(in + 1, (uint64_t)1 << 60);

    (void)state;
    expect_parse_error(NETDEF, in, n,
                       "length 1152921504606846976 at offset 1 exceeds the "
                       "remaining 0 bytes");
}

static void
test_proto_unpack_length_past_nested_end_returns_eparse(void **state)
{
    /* op { type: <length 9, but the op holds only 3 bytes> } name: "abc" */
    static const uint8_t in[] = {0x12, 0x03, 0x22, 0x09, 'x',
                                 0x0a, 0x03, 'a',  'b',  'c'};

    (void)state;
    expect_parse_error(NETDEF, in, sizeof(in),
                       "length 9 at offset 3 exceeds the remaining 1 bytes");
}

static void test_proto_unpack_wire_types_6_and_7_return_eparse(void **state)
{
    static const uint8_t w6[] = {0x0e, 0x00};
    static const uint8_t w7[] = {0x0f, 0x00};

    (void)state;
    expect_parse_error(NETDEF, w6, sizeof(w6),
                       "invalid wire type 6 (field 1) at offset 0");
    expect_parse_error(NETDEF, w7, sizeof(w7),
                       "invalid wire type 7 (field 1) at offset 0");
}

static void test_proto_unpack_group_tags_return_eparse(void **state)
{
    static const uint8_t start[] = {0x0b, 0x0c};
    static const uint8_t end[] = {0xa4, 0x06};

    (void)state;
    expect_parse_error(NETDEF, start, sizeof(start),
                       "group wire type 3 (field 1) at offset 0: groups are "
                       "not supported (caffe2.proto uses none)");
    expect_parse_error(NETDEF, end, sizeof(end),
                       "group wire type 4 (field 100) at offset 0: groups "
                       "are not supported (caffe2.proto uses none)");
}

static void test_proto_unpack_unterminated_varint_returns_eparse(void **state)
{
    static const uint8_t cut[] = {0x20, 0x80, 0x80};
    static const uint8_t tag[] = {0x80};
    uint8_t longv[13] = {0x20};

    (void)state;
    expect_parse_error(NETDEF, cut, sizeof(cut),
                       "unterminated value varint at offset 1");
    expect_parse_error(NETDEF, tag, sizeof(tag),
                       "unterminated tag varint at offset 0");
    memset(longv + 1, 0x80, 11);
    longv[12] = 0x01;
    expect_parse_error(NETDEF, longv, sizeof(longv),
                       "overlong value varint (more than 10 bytes) at "
                       "offset 1");
}

static void test_proto_unpack_bad_tags_return_eparse(void **state)
{
    static const uint8_t zero[] = {0x02, 0x00};
    static const uint8_t big[] = {0xf8, 0xff, 0xff, 0xff, 0x7f, 0x00};
    static const uint8_t longlen[] = {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};

    (void)state;
    expect_parse_error(NETDEF, zero, sizeof(zero),
                       "invalid field number 0 at offset 0");
    expect_parse_error(NETDEF, big, sizeof(big),
                       "invalid tag at offset 0: field number too large");
    expect_parse_error(NETDEF, longlen, sizeof(longlen),
                       "overlong length prefix (6 bytes) at offset 1");
}

static void test_proto_unpack_truncated_fixed_returns_eparse(void **state)
{
    static const uint8_t f32[] = {0x15, 0x00, 0x00}; /* Argument.f */
    static const uint8_t f64[] = {0x19, 0x00};       /* QTensorProto.scale */

    (void)state;
    expect_parse_error(&caffe2__argument__descriptor, f32, sizeof(f32),
                       "truncated fixed32 value at offset 1: needs 4 bytes, "
                       "2 remain");
    expect_parse_error(&caffe2__qtensor_proto__descriptor, f64, sizeof(f64),
                       "truncated fixed64 value at offset 1: needs 8 bytes, "
                       "1 remain");
}

static void test_proto_unpack_packed_bad_length_returns_eparse(void **state)
{
    /* TensorProto.float_data (3), packed, 3 bytes. */
    static const uint8_t f[] = {0x1a, 0x03, 0x00, 0x00, 0x00};
    /* TensorProto.double_data (9), packed, 12 bytes. */
    uint8_t d[14] = {0x4a, 0x0c};
    /* TensorProto.int64_data (10), packed, last varint cut. */
    static const uint8_t v[] = {0x52, 0x02, 0x01, 0x80};

    (void)state;
    expect_parse_error(&caffe2__tensor_proto__descriptor, f, sizeof(f),
                       "packed field caffe2.TensorProto.float_data at offset "
                       "0: length 3 is not a multiple of 4");
    expect_parse_error(&caffe2__tensor_proto__descriptor, d, sizeof(d),
                       "packed field caffe2.TensorProto.double_data at "
                       "offset 0: length 12 is not a multiple of 8");
    expect_parse_error(&caffe2__tensor_proto__descriptor, v, sizeof(v),
                       "unterminated packed varint at offset 1");
}

static void test_proto_unpack_wrong_wire_type_returns_eparse(void **state)
{
    static const uint8_t in[] = {0x08, 0x01}; /* NetDef.name as varint */

    (void)state;
    expect_parse_error(NETDEF, in, sizeof(in),
                       "field caffe2.NetDef.name at offset 0 has wire type "
                       "0, expected 2");
}

static void test_proto_unpack_missing_required_returns_eparse(void **state)
{
    /* TensorProto { segment { begin: 1 } }: Segment.end is required. */
    static const uint8_t in[] = {0x5a, 0x02, 0x08, 0x01};

    (void)state;
    expect_parse_error(&caffe2__tensor_proto__descriptor, in, sizeof(in),
                       "missing required field caffe2.TensorProto.Segment.end "
                       "in the message at offset 2");
}

static void test_proto_unpack_input_over_limit_returns_eparse(void **state)
{
    static const uint8_t one[1];
    ProtobufCMessage *m = NULL;
    ct_status_t st;
    int rc;

    (void)state;
    /* The size check comes first, so the buffer is never read. */
    rc = ct_proto_unpack(NETDEF, one, CT_PROTO_MAX_BYTES + 1, &m, &st);
    tu_assert_status(&st, rc, CT_EPARSE,
                     "input of 2147483648 bytes exceeds the limit of "
                     "2147483647 bytes");
    assert_null(m);
}

static void test_proto_unpack_alloc_failure_returns_enomem(void **state)
{
    static const size_t depths[] = {0, 20}; /* in place; on the thread */
    size_t i;

    (void)state;
    for (i = 0; i < 2; i++) {
        size_t len;
        uint8_t *buf = depths[i] == 0 ? small_netdef(&len)
                                      : build_nested(depths[i], &len, 0, NULL);
        long k;
        for (k = 1;; k++) {
            long live = tu_alloc_live();
            ProtobufCMessage *m = NULL;
            ct_status_t st;
            int rc;
            tu_fail_alloc_after(k);
            rc = ct_proto_unpack(NETDEF, buf, len, &m, &st);
            tu_fail_alloc_off();
            if (rc == CT_OK) {
                ct_proto_free(m);
                assert_int_equal(tu_alloc_live(), live);
                break;
            }
            tu_assert_status(&st, rc, CT_ENOMEM,
                             "out of memory unpacking caffe2.NetDef");
            assert_null(m);
            assert_int_equal(tu_alloc_live(), live);
        }
        assert_true(k > 3);
        free(buf);
    }
}

/* Paints a thread's stack, runs protobuf-c's own (unguarded) unpacker at
 * depth 0, 8 and 100 on valid input, and reports how much stack it used.
 * This is the measurement behind CT_PROTO_SAFE_DEPTH in proto.c. */
struct paint_job {
    const uint8_t *buf;
    size_t len;
    ProtobufCMessage *msg;
};

static void *paint_main(void *arg)
{
    struct paint_job *job = arg;

    job->msg = protobuf_c_message_unpack(NETDEF, NULL, job->len, job->buf);
    return NULL;
}

static size_t stack_used_by_unpack(size_t depth)
{
    const size_t size = (size_t)1 << 20;
    struct paint_job job;
    pthread_attr_t attr;
    pthread_t tid;
    uint8_t *stack;
    size_t i = 0;

    assert_int_equal(posix_memalign((void **)&stack, 4096, size), 0);
    memset(stack, 0xa5, size);
    job.buf = build_nested(depth, &job.len, 0, NULL);
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstack(&attr, stack, size), 0);
    assert_int_equal(pthread_create(&tid, &attr, paint_main, &job), 0);
    assert_int_equal(pthread_join(tid, NULL), 0);
    pthread_attr_destroy(&attr);
    while (i < size && stack[i] == 0xa5)
        i++;
    assert_non_null(job.msg);
    protobuf_c_message_free_unpacked(job.msg, NULL);
    free((void *)job.buf);
    free(stack);
    return size - i;
}

static void test_proto_unpack_stack_use_per_level_is_bounded(void **state)
{
    size_t base = stack_used_by_unpack(0);
    size_t at8 = stack_used_by_unpack(8);
    size_t at100 = stack_used_by_unpack(100);
    double per_level = (double)(at100 - base) / 100.0;

    (void)state;
    print_message("protobuf-c unpack stack: depth 0 %zu B, depth 8 %zu B, "
                  "depth 100 %zu B, %.0f B per level\n",
                  base, at8, at100, per_level);
    /* What runs in place (depth <= CT_PROTO_SAFE_DEPTH) must fit well
     * inside a small thread stack, and depth 100 must be what makes the
     * big-stack thread necessary. */
    assert_true(at8 - base < 32 * 1024); /* base includes static TLS */
    assert_true(per_level > 100.0);
}

/* ---- pack / copy ---- */

static void test_proto_pack_small_netdef_returns_same_bytes(void **state)
{
    size_t len, out_len;
    uint8_t *buf = small_netdef(&len);
    ProtobufCMessage *m, *c;
    ct_status_t st;
    void *out, *out2;

    (void)state;
    assert_int_equal(ct_proto_unpack(NETDEF, buf, len, &m, &st), CT_OK);
    assert_int_equal(ct_proto_pack(m, &out, &out_len, &st), CT_OK);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, buf, len);
    assert_int_equal(ct_proto_copy(m, &c, &st), CT_OK);
    assert_ptr_not_equal(c, m);
    assert_int_equal(ct_proto_pack(c, &out2, &out_len, &st), CT_OK);
    assert_int_equal(out_len, len);
    assert_memory_equal(out2, buf, len);
    ct_free(out);
    ct_free(out2);
    ct_proto_free(c);
    ct_proto_free(m);
    free(buf);
}

static void test_proto_pack_over_limit_returns_eoverflow(void **state)
{
    static uint8_t byte;
    Caffe2__BlobProto blob = CAFFE2__BLOB_PROTO__INIT;
    void *out = NULL;
    size_t len;
    ct_status_t st;
    int rc;

    (void)state;
    /* Only the sizes are read before the limit check, so a 2 GiB length
     * over a one-byte buffer is safe here. */
    blob.has_content = 1;
    blob.content.len = CT_PROTO_MAX_BYTES;
    blob.content.data = &byte;
    rc = ct_proto_pack(&blob.base, &out, &len, &st);
    tu_assert_status(&st, rc, CT_EOVERFLOW,
                     "caffe2.BlobProto packs to 2147483653 bytes, over the "
                     "limit of 2147483647");
    assert_null(out);
}

static void test_proto_free_null_is_noop(void **state)
{
    (void)state;
    ct_proto_free(NULL);
    ct_netdef_free(NULL);
}

/* ---- detection ---- */

static void test_proto_detect_text_and_binary_by_content(void **state)
{
    static const char *texts[] = {
        "name: \"x\"\n",
        "# a comment\nop { type: \"Relu\" }\n",
        "\xef\xbb\xbf  external_input: \"d\xc3\xa9j\xc3\xa0\"",
        "   \n\t",
    };
    static const uint8_t bin1[] = {0x0a, 0x08, 'r', 'e', 's',
                                   'n',  'e',  't', '5', '0'};
    static const uint8_t bin2[] = {'n', 'a', 'm', 'e', 0xff};
    static const uint8_t bin3[] = {'n', 'a', 'm', 'e', 0x01};
    size_t i, len;
    uint8_t *small = small_netdef(&len);

    (void)state;
    for (i = 0; i < 4; i++)
        assert_int_equal(ct_proto_detect(texts[i], strlen(texts[i])),
                         CT_PROTO_TEXT);
    assert_int_equal(ct_proto_detect(bin1, sizeof(bin1)), CT_PROTO_BINARY);
    assert_int_equal(ct_proto_detect(bin2, sizeof(bin2)), CT_PROTO_BINARY);
    assert_int_equal(ct_proto_detect(bin3, sizeof(bin3)), CT_PROTO_BINARY);
    assert_int_equal(ct_proto_detect(small, len), CT_PROTO_BINARY);
    assert_int_equal(ct_proto_detect(NULL, 0), CT_PROTO_BINARY);
    free(small);
}

static void test_proto_detect_data_files_by_content(void **state)
{
    static const char *files[] = {
        "caffe2/zoo_pbtxt/resnet50_predict_net.pbtxt",
        "caffe2/zoo_pbtxt/mask_rcnn_2go_fp32_model.pb",
        "caffe2/mnist_lenet_agnostic12/init_net.pb",
        "caffe2/mnist_lenet_agnostic12/predict_net.pb",
        "caffe2/squeezenet_trafficlight_miyuan2018/predict_net.pb",
    };
    size_t i;

    (void)state;
    if (!tu_have_data())
        skip();
    for (i = 0; i < 5; i++) {
        void *buf;
        size_t len;
        ct_status_t st;
        assert_int_equal(ct_file_read(tu_data_path(files[i]), &buf, &len, &st),
                         CT_OK);
        assert_int_equal(ct_proto_detect(buf, len),
                         i == 0 ? CT_PROTO_TEXT : CT_PROTO_BINARY);
        ct_free(buf);
    }
}

/* ---- files ---- */

static void test_file_read_missing_returns_eio(void **state)
{
    void *buf = NULL;
    size_t len;
    ct_status_t st;
    int rc;

    (void)state;
    rc = ct_file_read("/nonexistent/ct/file.pb", &buf, &len, &st);
    tu_assert_status(&st, rc, CT_EIO,
                     "cannot open /nonexistent/ct/file.pb: No such file or "
                     "directory");
    assert_null(buf);
}

static void test_file_read_directory_returns_eio(void **state)
{
    struct tmpdir *t = *state;
    void *buf = NULL;
    size_t len;
    ct_status_t st;
    char want[128];
    int rc;

    rc = ct_file_read(t->path, &buf, &len, &st);
    snprintf(want, sizeof(want), "cannot read %s: Is a directory", t->path);
    tu_assert_status(&st, rc, CT_EIO, want);
    assert_null(buf);
}

static void test_file_read_contents_are_nul_terminated(void **state)
{
    struct tmpdir *t = *state;
    char path[128];
    void *buf;
    size_t len;
    ct_status_t st;

    snprintf(path, sizeof(path), "%s/empty", t->path);
    write_file(path, "", 0);
    assert_int_equal(ct_file_read(path, &buf, &len, &st), CT_OK);
    assert_int_equal(len, 0);
    assert_int_equal(((char *)buf)[0], '\0');
    ct_free(buf);
    snprintf(path, sizeof(path), "%s/abc", t->path);
    write_file(path, "abc", 3);
    assert_int_equal(ct_file_read(path, &buf, &len, &st), CT_OK);
    assert_int_equal(len, 3);
    assert_string_equal(buf, "abc");
    ct_free(buf);
}

static void test_file_write_replaces_atomically_and_cleans_up(void **state)
{
    struct tmpdir *t = *state;
    char path[128];
    void *buf;
    size_t len, i;
    ct_status_t st;
    char *big = malloc(3 << 20);

    assert_non_null(big);
    for (i = 0; i < (3u << 20); i++)
        big[i] = (char)(i * 7);
    snprintf(path, sizeof(path), "%s/out.bin", t->path);
    write_file(path, "old contents", 12);
    assert_int_equal(ct_file_write(path, big, 3 << 20, &st), CT_OK);
    assert_int_equal(ct_file_read(path, &buf, &len, &st), CT_OK);
    assert_int_equal(len, 3 << 20);
    assert_memory_equal(buf, big, len);
    ct_free(buf);
    /* No temporary file is left next to the target. */
    assert_int_equal(count_entries(t->path), 1);
    assert_int_equal(ct_file_write(path, NULL, 0, &st), CT_OK);
    assert_int_equal(ct_file_read(path, &buf, &len, &st), CT_OK);
    assert_int_equal(len, 0);
    ct_free(buf);
    free(big);
}

static void test_file_write_missing_dir_returns_eio(void **state)
{
    struct tmpdir *t = *state;
    char path[128];
    ct_status_t st;
    int rc;

    snprintf(path, sizeof(path), "%s/no/such/dir/x.pb", t->path);
    rc = ct_file_write(path, "x", 1, &st);
    tu_assert_status(&st, rc, CT_EIO, "No such file or directory");
    assert_non_null(strstr(st.msg, "cannot create "));
    assert_non_null(strstr(st.msg, "/no/such/dir/x.pb.tmp."));
}

/* ---- message files ---- */

static void test_proto_write_file_both_formats_read_back(void **state)
{
    struct tmpdir *t = *state;
    static const char *names[] = {"net.pb", "net.pbtxt"};
    size_t len, i;
    uint8_t *buf = small_netdef(&len);
    ProtobufCMessage *m, *back;
    ct_status_t st;

    assert_int_equal(ct_proto_unpack(NETDEF, buf, len, &m, &st), CT_OK);
    for (i = 0; i < 2; i++) {
        char path[128];
        void *file, *packed;
        size_t file_len, packed_len;
        snprintf(path, sizeof(path), "%s/%s", t->path, names[i]);
        assert_int_equal(ct_proto_write_file(m, path, CT_PROTO_AUTO, &st),
                         CT_OK);
        assert_int_equal(ct_file_read(path, &file, &file_len, &st), CT_OK);
        assert_int_equal(ct_proto_detect(file, file_len),
                         i == 0 ? CT_PROTO_BINARY : CT_PROTO_TEXT);
        ct_free(file);
        assert_int_equal(
            ct_proto_read_file(NETDEF, path, CT_PROTO_AUTO, &back, &st), CT_OK);
        assert_int_equal(ct_proto_pack(back, &packed, &packed_len, &st), CT_OK);
        assert_int_equal(packed_len, len);
        assert_memory_equal(packed, buf, len);
        ct_free(packed);
        ct_proto_free(back);
    }
    ct_proto_free(m);
    free(buf);
}

static void test_proto_write_file_alloc_failure_returns_enomem(void **state)
{
    struct tmpdir *t = *state;
    static const char *names[] = {"a.pb", "a.pbtxt"};
    size_t len, i;
    uint8_t *buf = small_netdef(&len);
    ProtobufCMessage *m;
    ct_status_t st;

    assert_int_equal(ct_proto_unpack(NETDEF, buf, len, &m, &st), CT_OK);
    for (i = 0; i < 2; i++) {
        char path[128];
        long k;
        snprintf(path, sizeof(path), "%s/%s", t->path, names[i]);
        for (k = 1;; k++) {
            long live = tu_alloc_live();
            int rc;
            tu_fail_alloc_after(k);
            rc = ct_proto_write_file(m, path, CT_PROTO_AUTO, &st);
            tu_fail_alloc_off();
            assert_int_equal(tu_alloc_live(), live);
            if (rc == CT_OK)
                break;
            tu_assert_status(&st, rc, CT_ENOMEM, "out of memory");
            /* Nothing was created, not even a temporary file. */
            assert_int_equal(count_entries(t->path), (int)i);
        }
        for (k = 1;; k++) {
            long live = tu_alloc_live();
            ProtobufCMessage *back = NULL;
            int rc;
            tu_fail_alloc_after(k);
            rc = ct_proto_read_file(NETDEF, path, CT_PROTO_AUTO, &back, &st);
            tu_fail_alloc_off();
            if (rc == CT_OK) {
                ct_proto_free(back);
                assert_int_equal(tu_alloc_live(), live);
                break;
            }
            tu_assert_status(&st, rc, CT_ENOMEM, "out of memory");
            assert_non_null(strstr(st.msg, path));
            assert_null(back);
            assert_int_equal(tu_alloc_live(), live);
        }
    }
    ct_proto_free(m);
    free(buf);
}

static void test_proto_read_file_bad_content_names_path(void **state)
{
    struct tmpdir *t = *state;
    char path[128], want[256];
    ProtobufCMessage *m = NULL;
    ct_status_t st;
    int rc;

    snprintf(path, sizeof(path), "%s/bad.pbtxt", t->path);
    write_file(path, "name: \"x\"\nbogus: 1\n", 19);
    rc = ct_proto_read_file(NETDEF, path, CT_PROTO_AUTO, &m, &st);
    snprintf(want, sizeof(want),
             "%s: line 2, column 1: message type caffe2.NetDef has no field "
             "named \"bogus\"",
             path);
    tu_assert_status(&st, rc, CT_EPARSE, NULL);
    assert_string_equal(st.msg, want);
    assert_null(m);
    rc = ct_proto_read_file(NETDEF, "/nonexistent.pb", CT_PROTO_AUTO, &m, &st);
    tu_assert_status(&st, rc, CT_EIO, "cannot open /nonexistent.pb");
}

static void test_netdef_read_file_binary_files_repack_identically(void **state)
{
    static const char *files[] = {
        "caffe2/mnist_lenet_agnostic12/init_net.pb",
        "caffe2/mnist_lenet_agnostic12/predict_net.pb",
        "caffe2/mnist_lenet_agnostic12/testpredict_net.pb",
        "caffe2/mnist_onnx2caffe2_hungmingwu/init_net.pb",
        "caffe2/mnist_onnx2caffe2_hungmingwu/predict_net.pb",
        "caffe2/squeezenet_trafficlight_miyuan2018/init_net.pb",
        "caffe2/squeezenet_trafficlight_miyuan2018/predict_net.pb",
        "caffe2/zoo_pbtxt/mask_rcnn_2go_fp32_model.pb",
    };
    static const size_t n_ops[] = {9, 8, 12, 8, 11, 53, 66, 111};
    size_t i;

    (void)state;
    if (!tu_have_data())
        skip();
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        ct_netdef_t *def;
        ct_status_t st;
        void *orig, *packed;
        size_t orig_len, packed_len;
        const char *path = tu_data_path(files[i]);
        if (ct_netdef_read_file(path, &def, &st) != CT_OK)
            fail_msg("%s", st.msg);
        assert_int_equal(def->n_op, n_ops[i]);
        assert_int_equal(def->base.n_unknown_fields, 0);
        assert_int_equal(ct_file_read(path, &orig, &orig_len, &st), CT_OK);
        assert_int_equal(ct_proto_pack(&def->base, &packed, &packed_len, &st),
                         CT_OK);
        assert_int_equal(packed_len, orig_len);
        assert_memory_equal(packed, orig, orig_len);
        ct_free(packed);
        ct_free(orig);
        ct_netdef_free(def);
    }
}

static void test_netdef_parse_formats_and_fallback(void **state)
{
    /* A binary NetDef holding only a 65-byte printable name: "\nA" + 65
     * letters reads as text to the detector, then fails as text, and the
     * AUTO path falls back to binary. */
    char in[67];
    ct_netdef_t *def;
    ct_status_t st;
    int rc;

    (void)state;
    in[0] = 0x0a;
    in[1] = 'A';
    memset(in + 2, 'b', 65);
    assert_int_equal(ct_proto_detect(in, sizeof(in)), CT_PROTO_TEXT);
    assert_int_equal(ct_netdef_parse(in, sizeof(in), CT_PROTO_AUTO, &def, &st),
                     CT_OK);
    assert_int_equal(strlen(def->name), 65);
    ct_netdef_free(def);
    rc = ct_netdef_parse(in, sizeof(in), CT_PROTO_TEXT, &def, &st);
    tu_assert_status(&st, rc, CT_EPARSE, "line 2, column 1: ");
    assert_int_equal(
        ct_netdef_parse("name: \"t\"", 9, CT_PROTO_TEXT, &def, &st), CT_OK);
    assert_string_equal(def->name, "t");
    ct_netdef_free(def);
    rc = ct_netdef_parse("name: \"t\"", 9, CT_PROTO_BINARY, &def, &st);
    tu_assert_status(&st, rc, CT_EPARSE, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_unpack_small_netdef_returns_fields),
        cmocka_unit_test(test_proto_unpack_zero_bytes_returns_empty_message),
        cmocka_unit_test(test_proto_unpack_unknown_fields_are_kept),
        cmocka_unit_test(
            test_proto_unpack_packed_and_unpacked_repeated_both_accepted),
        cmocka_unit_test(
            test_proto_unpack_truncated_netdef_fails_inside_fields),
        cmocka_unit_test(test_proto_unpack_one_byte_inputs_return_eparse),
        cmocka_unit_test(test_proto_unpack_random_bytes_never_crash),
        cmocka_unit_test(test_proto_unpack_mutated_netdef_never_crashes),
        cmocka_unit_test(test_proto_unpack_depth_100_parses),
        cmocka_unit_test(test_proto_unpack_depth_101_returns_eparse),
        cmocka_unit_test(test_proto_unpack_depth_1e4_and_1e6_return_eparse),
        cmocka_unit_test(test_proto_unpack_depth_100_on_64k_stack_succeeds),
        cmocka_unit_test(test_proto_unpack_huge_length_prefix_returns_eparse),
        cmocka_unit_test(
            test_proto_unpack_length_past_nested_end_returns_eparse),
        cmocka_unit_test(test_proto_unpack_wire_types_6_and_7_return_eparse),
        cmocka_unit_test(test_proto_unpack_group_tags_return_eparse),
        cmocka_unit_test(test_proto_unpack_unterminated_varint_returns_eparse),
        cmocka_unit_test(test_proto_unpack_bad_tags_return_eparse),
        cmocka_unit_test(test_proto_unpack_truncated_fixed_returns_eparse),
        cmocka_unit_test(test_proto_unpack_packed_bad_length_returns_eparse),
        cmocka_unit_test(test_proto_unpack_wrong_wire_type_returns_eparse),
        cmocka_unit_test(test_proto_unpack_missing_required_returns_eparse),
        cmocka_unit_test(test_proto_unpack_input_over_limit_returns_eparse),
        cmocka_unit_test(test_proto_unpack_alloc_failure_returns_enomem),
        cmocka_unit_test(test_proto_unpack_stack_use_per_level_is_bounded),
        cmocka_unit_test(test_proto_pack_small_netdef_returns_same_bytes),
        cmocka_unit_test(test_proto_pack_over_limit_returns_eoverflow),
        cmocka_unit_test(test_proto_free_null_is_noop),
        cmocka_unit_test(test_proto_detect_text_and_binary_by_content),
        cmocka_unit_test(test_proto_detect_data_files_by_content),
        cmocka_unit_test(test_file_read_missing_returns_eio),
        cmocka_unit_test_setup_teardown(test_file_read_directory_returns_eio,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(
            test_file_read_contents_are_nul_terminated, tmpdir_setup,
            tmpdir_teardown),
        cmocka_unit_test_setup_teardown(
            test_file_write_replaces_atomically_and_cleans_up, tmpdir_setup,
            tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_file_write_missing_dir_returns_eio,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(
            test_proto_write_file_both_formats_read_back, tmpdir_setup,
            tmpdir_teardown),
        cmocka_unit_test_setup_teardown(
            test_proto_write_file_alloc_failure_returns_enomem, tmpdir_setup,
            tmpdir_teardown),
        cmocka_unit_test_setup_teardown(
            test_proto_read_file_bad_content_names_path, tmpdir_setup,
            tmpdir_teardown),
        cmocka_unit_test(test_netdef_read_file_binary_files_repack_identically),
        cmocka_unit_test(test_netdef_parse_formats_and_fallback),
    };

    /* Install the counting allocator hooks before anything allocates, so
     * that live-block counts in the tests are exact. */
    tu_fail_alloc_off();
    return cmocka_run_group_tests_name("proto.proto", tests, NULL, NULL);
}
