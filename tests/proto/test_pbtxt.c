/* Tests for proto/pbtxt.c: the text format reader and writer, and round
 * trips of the shared Caffe2 files through both formats. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cortado/proto.h"
#include "proto/caffe2.pb-c.h"
#include "test_util.h"

#define NETDEF (&caffe2__net_def__descriptor)
#define ARGUMENT (&caffe2__argument__descriptor)
#define TENSOR (&caffe2__tensor_proto__descriptor)

/* ---- helpers ---- */

static ProtobufCMessage *parse_ok(const ProtobufCMessageDescriptor *desc,
                                  const char *text)
{
    ProtobufCMessage *m = NULL;
    ct_status_t st;

    if (ct_pbtxt_parse(desc, text, strlen(text), &m, &st) != CT_OK)
        fail_msg("parse of <<%s>> failed: %s", text, st.msg);
    return m;
}

static void expect_error(const ProtobufCMessageDescriptor *desc,
                         const char *text, const char *msg)
{
    ProtobufCMessage *m = NULL;
    ct_status_t st;
    int rc = ct_pbtxt_parse(desc, text, strlen(text), &m, &st);

    tu_assert_status(&st, rc, CT_EPARSE, NULL);
    assert_null(m);
    assert_string_equal(st.msg, msg);
}

/* Formats m, compares with want, frees the text. */
static void expect_text(const ProtobufCMessage *m, const char *want)
{
    char *text;
    size_t len;
    ct_status_t st;

    assert_int_equal(ct_pbtxt_format(m, &text, &len, &st), CT_OK);
    assert_int_equal(len, strlen(text));
    assert_string_equal(text, want);
    ct_free(text);
}

/* Parses text as desc and checks that formatting gives `want` back. */
static void expect_reformat(const ProtobufCMessageDescriptor *desc,
                            const char *text, const char *want)
{
    ProtobufCMessage *m = parse_ok(desc, text);

    expect_text(m, want);
    ct_proto_free(m);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Sorted paths (relative to the data dir) of files with `suffix` in
 * caffe2/ and its immediate subfolders. Caller frees each and the array. */
static size_t list_data_files(const char *suffix, char ***out)
{
    char **names = NULL;
    size_t n = 0, cap = 0, i, j;
    DIR *top = opendir(tu_data_path("caffe2"));
    struct dirent *e;

    assert_non_null(top);
    while ((e = readdir(top)) != NULL) {
        char sub[512];
        DIR *d;
        struct dirent *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "caffe2/%s", e->d_name);
        d = opendir(tu_data_path(sub));
        if (d == NULL)
            continue;
        while ((f = readdir(d)) != NULL) {
            if (!has_suffix(f->d_name, suffix))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                names = realloc(names, cap * sizeof(char *));
                assert_non_null(names);
            }
            names[n] = malloc(strlen(sub) + strlen(f->d_name) + 2);
            assert_non_null(names[n]);
            sprintf(names[n], "%s/%s", sub, f->d_name);
            n++;
        }
        closedir(d);
    }
    closedir(top);
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    *out = names;
    return n;
}

static void free_list(char **names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Nested text NetDef: "arg { n { arg { nets { ... } } } }" with `depth`
 * messages below the top level. *col is the column of the '{' opening the
 * message at depth `mark`. */
static char *nested_text(size_t depth, size_t mark, int *col)
{
    char *s = malloc(depth * 8 + 8), *p = s;
    size_t k;

    assert_non_null(s);
    for (k = 1; k <= depth; k++) {
        const char *open = (k - 1) % 2 == 0   ? "arg "
                           : (k - 1) % 4 == 1 ? "n "
                                              : "nets ";
        p += sprintf(p, "%s", open);
        if (k == mark)
            *col = (int)(p - s) + 1;
        p += sprintf(p, "{ ");
    }
    for (k = 1; k <= depth; k++)
        *p++ = '}';
    *p = '\0';
    return s;
}

/* ---- reader: accepted syntax ---- */

static void test_pbtxt_parse_full_syntax_returns_values(void **state)
{
    static const char text[] =
        "# leading comment\n"
        "name: \"a\" \"b\" 'c'  # adjacent strings concatenate\n"
        "op <\n"
        "  input: [\"x\", \"y\"]\n"
        "  input: \"z\";\n"
        "  type: \"T\",\n"
        "  arg: { name: \"f\" f: -1.5e-3 }\n"
        "  arg { name: \"fl\" floats: [inf, -inf, nan, 1e-05, 1.5f, 2, 0x10,"
        " .5, -Infinity] }\n"
        "  arg { name: \"in\" ints: [1, -2, 0x7fffffffffffffff,"
        " -9223372036854775808, 017] }\n"
        "  arg { name: \"s\" s: \"\\n\\t\\\\\\\"\\'\\101\\x41\\u00e9\\?\""
        " strings: [\"\", \"\\000\\377\"] }\n"
        "  is_gradient_op: True\n"
        ">\n"
        "op: [ { type: \"A\" }, < type: \"B\" > ]\n"
        "op []\n"
        "num_workers: -0x10\n"
        "device_option { device_type: 1 random_seed: 4294967295 }\n"
        "external_output: []\n";
    ProtobufCMessage *m = parse_ok(NETDEF, text);
    Caffe2__NetDef *net = (Caffe2__NetDef *)m;
    Caffe2__OperatorDef *op;
    Caffe2__Argument *a;

    (void)state;
    assert_string_equal(net->name, "abc");
    assert_int_equal(net->n_op, 3);
    op = net->op[0];
    assert_int_equal(op->n_input, 3);
    assert_string_equal(op->input[2], "z");
    assert_string_equal(op->type, "T");
    assert_true(op->has_is_gradient_op && op->is_gradient_op);
    assert_int_equal(op->n_arg, 4);
    assert_true(op->arg[0]->has_f && op->arg[0]->f == -1.5e-3f);
    a = op->arg[1];
    assert_int_equal(a->n_floats, 9);
    assert_true(isinf(a->floats[0]) && a->floats[0] > 0);
    assert_true(isinf(a->floats[1]) && a->floats[1] < 0);
    assert_true(isnan(a->floats[2]));
    assert_true(a->floats[3] == 1e-05f);
    assert_true(a->floats[4] == 1.5f);
    assert_true(a->floats[5] == 2.0f);
    assert_true(a->floats[6] == 16.0f);
    assert_true(a->floats[7] == 0.5f);
    assert_true(isinf(a->floats[8]) && a->floats[8] < 0);
    a = op->arg[2];
    assert_int_equal(a->n_ints, 5);
    assert_true(a->ints[1] == -2);
    assert_true(a->ints[2] == INT64_MAX);
    assert_true(a->ints[3] == INT64_MIN);
    assert_true(a->ints[4] == 15);
    a = op->arg[3];
    assert_true(a->has_s);
    assert_int_equal(a->s.len, 10);
    assert_memory_equal(a->s.data, "\n\t\\\"'AA\xc3\xa9?", 10);
    assert_int_equal(a->n_strings, 2);
    assert_int_equal(a->strings[0].len, 0);
    assert_null(a->strings[0].data);
    assert_int_equal(a->strings[1].len, 2);
    assert_memory_equal(a->strings[1].data, "\0\xff", 2);
    assert_string_equal(net->op[1]->type, "A");
    assert_string_equal(net->op[2]->type, "B");
    assert_true(net->has_num_workers && net->num_workers == -16);
    assert_true(net->device_option->has_random_seed);
    assert_true(net->device_option->random_seed == UINT32_MAX);
    assert_int_equal(net->n_external_output, 0);
    ct_proto_free(m);
}

static void test_pbtxt_parse_bool_spellings_return_values(void **state)
{
    static const char *yes[] = {"true", "True", "t", "1"};
    static const char *no[] = {"false", "False", "f", "0"};
    size_t i;

    (void)state;
    for (i = 0; i < 4; i++) {
        char text[64];
        ProtobufCMessage *m;
        snprintf(text, sizeof(text), "unknown_shape: %s", yes[i]);
        m = parse_ok(&caffe2__tensor_shape__descriptor, text);
        assert_true(((Caffe2__TensorShape *)m)->unknown_shape);
        ct_proto_free(m);
        snprintf(text, sizeof(text), "unknown_shape: %s", no[i]);
        m = parse_ok(&caffe2__tensor_shape__descriptor, text);
        assert_true(((Caffe2__TensorShape *)m)->has_unknown_shape);
        assert_false(((Caffe2__TensorShape *)m)->unknown_shape);
        ct_proto_free(m);
    }
}

static void test_pbtxt_parse_enums_by_name_and_number(void **state)
{
    ProtobufCMessage *m;

    (void)state;
    m = parse_ok(TENSOR, "data_type: INT64");
    assert_int_equal(((Caffe2__TensorProto *)m)->data_type, 10);
    ct_proto_free(m);
    m = parse_ok(TENSOR, "data_type: 13");
    assert_int_equal(((Caffe2__TensorProto *)m)->data_type, 13);
    ct_proto_free(m);
    /* 11 is not in DataType: kept, and printed back as a number. */
    expect_reformat(TENSOR, "data_type: 11", "data_type: 11\n");
    expect_reformat(TENSOR, "data_type: DOUBLE", "data_type: DOUBLE\n");
}

static void test_pbtxt_parse_empty_input_returns_empty_message(void **state)
{
    ProtobufCMessage *m;

    (void)state;
    m = parse_ok(NETDEF, "");
    expect_text(m, "");
    ct_proto_free(m);
    m = parse_ok(NETDEF, "  # only a comment\n\n");
    assert_null(((Caffe2__NetDef *)m)->name);
    ct_proto_free(m);
}

static void test_pbtxt_parse_utf8_bom_is_skipped(void **state)
{
    ProtobufCMessage *m;

    (void)state;
    m = parse_ok(NETDEF, "\xef\xbb\xbfname: \"x\"");
    assert_string_equal(((Caffe2__NetDef *)m)->name, "x");
    ct_proto_free(m);
    expect_error(NETDEF, "\xef\xbb\xbf}",
                 "line 1, column 1: expected a field name, found '}'");
}

static void test_pbtxt_parse_other_message_types_round_trip(void **state)
{
    static const char meta[] = "blobs {\n"
                               "  key: \"params\"\n"
                               "  value: \"w\"\n"
                               "  value: \"b\"\n"
                               "}\n"
                               "nets {\n"
                               "  key: \"predict\"\n"
                               "  value {\n"
                               "    name: \"p\"\n"
                               "    op {\n"
                               "      type: \"Relu\"\n"
                               "    }\n"
                               "  }\n"
                               "}\n"
                               "modelInfo {\n"
                               "  predictorType: \"SINGLE_PREDICTOR\"\n"
                               "}\n";
    static const char tensors[] = "protos {\n"
                                  "  dims: 2\n"
                                  "  data_type: FLOAT\n"
                                  "  float_data: 1\n"
                                  "  float_data: 2.5\n"
                                  "  name: \"t\"\n"
                                  "  segment {\n"
                                  "    begin: 0\n"
                                  "    end: 2\n"
                                  "  }\n"
                                  "}\n";
    ProtobufCMessage *m, *back;
    ct_status_t st;
    void *bin;
    size_t len;

    (void)state;
    expect_reformat(&caffe2__meta_net_def__descriptor, meta, meta);
    expect_reformat(&caffe2__tensor_protos__descriptor, tensors, tensors);
    m = parse_ok(&caffe2__meta_net_def__descriptor, meta);
    assert_int_equal(ct_proto_pack(m, &bin, &len, &st), CT_OK);
    assert_int_equal(ct_proto_unpack(&caffe2__meta_net_def__descriptor, bin,
                                     len, &back, &st),
                     CT_OK);
    expect_text(back, meta);
    ct_free(bin);
    ct_proto_free(back);
    ct_proto_free(m);
}

static void test_pbtxt_parse_unknown_fields_round_trip_binary(void **state)
{
    /* name "a"; unknown 100 varint 2^63, 101 bytes "x\0y", 102 fixed32,
     * 103 fixed64; inside op: unknown 50 varint 1. */
    static const uint8_t in[] = {
        0x0a, 0x01, 'a',  0x12, 0x03, 0x90, 0x03, 0x01, 0xa0, 0x06, 0x80,
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0xaa, 0x06,
        0x03, 'x',  0x00, 'y',  0xb5, 0x06, 0x01, 0x02, 0x03, 0x04, 0xb9,
        0x06, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    static const char want[] = "name: \"a\"\n"
                               "op {\n"
                               "  50: 1\n"
                               "}\n"
                               "100: 9223372036854775808\n"
                               "101: \"x\\000y\"\n"
                               "102: 0x04030201\n"
                               "103: 0x0807060504030201\n";
    ProtobufCMessage *m, *back;
    ct_status_t st;
    void *out;
    size_t len;

    (void)state;
    assert_int_equal(ct_proto_unpack(NETDEF, in, sizeof(in), &m, &st), CT_OK);
    expect_text(m, want);
    back = parse_ok(NETDEF, want);
    assert_int_equal(ct_proto_pack(back, &out, &len, &st), CT_OK);
    assert_int_equal(len, sizeof(in));
    assert_memory_equal(out, in, len);
    ct_free(out);
    ct_proto_free(back);
    ct_proto_free(m);
}

static void test_pbtxt_parse_bad_unknown_fields_return_eparse(void **state)
{
    (void)state;
    expect_error(NETDEF, "1: \"x\"",
                 "line 1, column 1: field 1 of caffe2.NetDef must be given "
                 "by its name \"name\"");
    expect_error(NETDEF, "0: 1", "line 1, column 1: invalid field number '0'");
    expect_error(NETDEF, "536870912: 1",
                 "line 1, column 1: invalid field number '536870912'");
    expect_error(NETDEF, "100: 0x123",
                 "line 1, column 6: hex value of unknown field 100 needs 8 "
                 "(fixed32) or 16 (fixed64) digits");
    expect_error(NETDEF, "100 { }",
                 "line 1, column 5: expected ':' after \"100\", found '{'");
    expect_error(NETDEF, "100: abc",
                 "line 1, column 6: expected a number or a string for "
                 "unknown field 100, found 'abc'");
}

/* ---- reader: errors ---- */

static void test_pbtxt_parse_unknown_field_names_field_and_type(void **state)
{
    (void)state;
    expect_error(NETDEF, "name: \"x\"\nfoo: 1\n",
                 "line 2, column 1: message type caffe2.NetDef has no field "
                 "named \"foo\"");
    expect_error(NETDEF, "op {\n  type: \"Relu\"\n  kernel: 3\n}\n",
                 "line 3, column 3: message type caffe2.OperatorDef has no "
                 "field named \"kernel\"");
}

static void test_pbtxt_parse_syntax_errors_give_line_and_column(void **state)
{
    (void)state;
    expect_error(NETDEF, "name \"x\"",
                 "line 1, column 6: expected ':' after \"name\", found "
                 "'\"x\"'");
    expect_error(NETDEF, "op {\n  type: \"Relu\"\n",
                 "line 3, column 1: unexpected end of input: \"op\" opened "
                 "at line 1, column 4 is not closed");
    expect_error(NETDEF, "}",
                 "line 1, column 1: expected a field name, "
                 "found '}'");
    expect_error(NETDEF, "op { type: \"a\" >",
                 "line 1, column 16: expected a field name, found '>'");
    expect_error(NETDEF, "op: 3",
                 "line 1, column 5: expected '{' or '<' after \"op\", found "
                 "'3'");
    expect_error(NETDEF, "external_input: [\"a\"; \"b\"]",
                 "line 1, column 21: expected ',' or ']' in the list of "
                 "\"external_input\", found ';'");
    expect_error(NETDEF, "op [ { type: \"a\" } { } ]",
                 "line 1, column 20: expected ',' or ']' in the list of "
                 "\"op\", found '{'");
    expect_error(NETDEF, "name: [\"a\"]",
                 "line 1, column 7: non-repeated field \"name\" cannot take "
                 "a list");
    expect_error(NETDEF, "[ext.foo]: 1",
                 "line 1, column 1: extension and Any field names ([...]) "
                 "are not supported");
    expect_error(NETDEF, "name: @",
                 "line 1, column 7: unexpected character '@'");
    expect_error(NETDEF, "\n\n  \xc3\xa9: 1",
                 "line 3, column 3: unexpected byte 0xc3");
}

static void test_pbtxt_parse_bad_strings_return_eparse(void **state)
{
    (void)state;
    expect_error(NETDEF, "name: \"a\\qb\"",
                 "line 1, column 9: invalid escape sequence '\\q'");
    expect_error(NETDEF, "name: \"abc\nname: 1",
                 "line 1, column 7: string literal is not closed on its "
                 "line");
    expect_error(NETDEF, "name: 'abc\"",
                 "line 1, column 7: string literal is not closed on its "
                 "line");
    expect_error(NETDEF, "name: \"a\\0b\"",
                 "line 1, column 7: string field \"name\" cannot hold a NUL "
                 "byte (protobuf-c strings are NUL-terminated)");
    expect_error(NETDEF, "name: \"\\xg\"",
                 "line 1, column 8: \\x must be followed by hex digits");
    expect_error(NETDEF, "name: \"\\400\"",
                 "line 1, column 8: octal escape is larger than \\377");
    expect_error(NETDEF, "name: \"\\ud800\"",
                 "line 1, column 8: \\u escape is not a Unicode scalar "
                 "value");
    expect_error(NETDEF, "name: 5",
                 "line 1, column 7: expected a string for string field "
                 "\"name\", found '5'");
}

static void test_pbtxt_parse_duplicate_field_returns_eparse(void **state)
{
    (void)state;
    expect_error(NETDEF, "name: \"a\" name: \"b\"",
                 "line 1, column 11: non-repeated field \"name\" of "
                 "caffe2.NetDef is given more than once");
    expect_error(NETDEF, "device_option {}\ndevice_option {}",
                 "line 2, column 1: non-repeated field \"device_option\" of "
                 "caffe2.NetDef is given more than once");
}

static void test_pbtxt_parse_missing_required_names_fields(void **state)
{
    (void)state;
    expect_error(TENSOR, "segment { begin: 1 }",
                 "line 1, column 20: message caffe2.TensorProto.Segment is "
                 "missing required field: end");
    expect_error(&caffe2__qtensor_proto__descriptor, "precision: 8",
                 "line 1, column 13: message caffe2.QTensorProto is missing "
                 "required fields: scale, bias, is_signed");
}

static void test_pbtxt_parse_out_of_range_numbers_return_eparse(void **state)
{
    (void)state;
    expect_error(NETDEF, "num_workers: 3000000000",
                 "line 1, column 14: value 3000000000 is out of range for "
                 "int32 field \"num_workers\"");
    expect_error(NETDEF, "num_workers: -2147483649",
                 "line 1, column 14: value -2147483649 is out of range for "
                 "int32 field \"num_workers\"");
    expect_error(&caffe2__device_option__descriptor, "random_seed: -1",
                 "line 1, column 14: negative value for uint32 field "
                 "\"random_seed\"");
    expect_error(&caffe2__device_option__descriptor, "random_seed: 4294967296",
                 "line 1, column 14: value 4294967296 is out of range for "
                 "uint32 field \"random_seed\"");
    expect_error(ARGUMENT, "i: 9223372036854775808",
                 "line 1, column 4: value 9223372036854775808 is out of range "
                 "for int64 field \"i\"");
    expect_error(ARGUMENT, "i: -99999999999999999999",
                 "line 1, column 5: value -99999999999999999999 is out of "
                 "range for int64 field \"i\"");
    expect_error(&caffe2__operator_def__descriptor, "is_gradient_op: 2",
                 "line 1, column 17: value 2 is out of range for bool field "
                 "\"is_gradient_op\"");
    expect_error(NETDEF, "num_workers: 2147483648",
                 "line 1, column 14: value 2147483648 is out of range for "
                 "int32 field \"num_workers\"");
}

static void test_pbtxt_parse_bad_numbers_return_eparse(void **state)
{
    (void)state;
    expect_error(NETDEF, "num_workers: \"4\"",
                 "line 1, column 14: expected an integer for int32 field "
                 "\"num_workers\", found '\"4\"'");
    expect_error(NETDEF, "num_workers: 1.5",
                 "line 1, column 14: expected an integer for int32 field "
                 "\"num_workers\", found '1.5'");
    expect_error(NETDEF, "num_workers: 12abc",
                 "line 1, column 14: invalid number: '12' runs into 'a' "
                 "(need space between a number and what follows)");
    expect_error(NETDEF, "num_workers: 0x",
                 "line 1, column 14: '0x' must be followed by hex digits");
    expect_error(NETDEF, "num_workers: 09",
                 "line 1, column 14: invalid octal number '09'");
    expect_error(ARGUMENT, "f: 1e+",
                 "line 1, column 4: exponent of '1e+' has no digits");
    expect_error(ARGUMENT, "f: abc",
                 "line 1, column 4: expected a number for float field \"f\", "
                 "found 'abc'");
    expect_error(TENSOR, "data_type: FLOATY",
                 "line 1, column 12: unknown value 'FLOATY' for enum field "
                 "\"data_type\" (caffe2.TensorProto.DataType)");
    expect_error(&caffe2__operator_def__descriptor, "is_gradient_op: yes",
                 "line 1, column 17: expected true or false for bool field "
                 "\"is_gradient_op\", found 'yes'");
}

static void test_pbtxt_parse_float_out_of_range_saturates(void **state)
{
    ProtobufCMessage *m;
    Caffe2__Argument *a;

    (void)state;
    /* C++ SafeDoubleToFloat semantics: beyond FLT_MAX is infinity. */
    m = parse_ok(ARGUMENT, "floats: [1e39, -1e39, 1e-50, 3.4028234e38]");
    a = (Caffe2__Argument *)m;
    assert_true(isinf(a->floats[0]) && a->floats[0] > 0);
    assert_true(isinf(a->floats[1]) && a->floats[1] < 0);
    assert_true(a->floats[2] == 0.0f);
    assert_false(isinf(a->floats[3]));
    ct_proto_free(m);
}

static void test_pbtxt_parse_depth_100_parses_101_fails(void **state)
{
    int col = 0;
    char *ok = nested_text(CT_PROTO_MAX_DEPTH, 0, &col);
    char *bad =
        nested_text(CT_PROTO_MAX_DEPTH + 1, CT_PROTO_MAX_DEPTH + 1, &col);
    char want[80];
    ProtobufCMessage *m = parse_ok(NETDEF, ok);
    void *bin;
    size_t len;
    ct_status_t st;

    (void)state;
    /* The binary form of the deepest accepted text unpacks again. */
    assert_int_equal(ct_proto_pack(m, &bin, &len, &st), CT_OK);
    ct_proto_free(m);
    assert_int_equal(ct_proto_unpack(NETDEF, bin, len, &m, &st), CT_OK);
    ct_proto_free(m);
    ct_free(bin);
    snprintf(want, sizeof(want), "line 1, column %d: nesting too deep (> 100)",
             col);
    expect_error(NETDEF, bad, want);
    free(ok);
    free(bad);
}

static void test_pbtxt_parse_depth_1e6_returns_eparse(void **state)
{
    int col = 0;
    char *bad = nested_text(1000000, CT_PROTO_MAX_DEPTH + 1, &col);
    char want[80];

    (void)state;
    snprintf(want, sizeof(want), "line 1, column %d: nesting too deep (> 100)",
             col);
    expect_error(NETDEF, bad, want);
    free(bad);
}

static void test_pbtxt_parse_random_text_never_crashes(void **state)
{
    static const char *pieces[] = {
        "name",
        "op",
        "arg",
        "n",
        "nets",
        "type",
        "ints",
        "floats",
        "s",
        "f",
        "i",
        "{",
        "}",
        "<",
        ">",
        "[",
        "]",
        ":",
        ";",
        ",",
        "-",
        "\"x\"",
        "'\\n'",
        "\"\\",
        "1",
        "0x1f",
        "1e5",
        "-3",
        "inf",
        "nan",
        "true",
        "#c\n",
        "\n",
        " ",
        "\"",
        "\xff",
        "device_option",
        "external_input",
    };
    const size_t n_pieces = sizeof(pieces) / sizeof(pieces[0]);
    uint64_t seed = 0xfeedbeefULL;
    char buf[1024];
    int i, n_ok = 0;

    (void)state;
    for (i = 0; i < 2000; i++) {
        size_t len = 0, k, n = xorshift(&seed) % 40;
        ProtobufCMessage *m = NULL;
        ct_status_t st;
        int rc;
        for (k = 0; k < n; k++) {
            const char *pc = pieces[xorshift(&seed) % n_pieces];
            size_t pl = strlen(pc);
            if (len + pl + 1 >= sizeof(buf))
                break;
            memcpy(buf + len, pc, pl);
            len += pl;
            if (xorshift(&seed) % 2)
                buf[len++] = ' ';
        }
        rc = ct_pbtxt_parse(NETDEF, buf, len, &m, &st);
        if (rc != CT_OK && rc != CT_EPARSE)
            fail_msg("input %d: %s", i, st.msg);
        if (rc == CT_OK) {
            n_ok++;
            ct_proto_free(m);
        } else {
            assert_non_null(strstr(st.msg, "line "));
        }
    }
    print_message("random texts: %d of 2000 parsed\n", n_ok);
}

static void test_pbtxt_parse_mutated_text_never_crashes(void **state)
{
    static const char base[] =
        "name: \"m\"\n"
        "op {\n"
        "  input: \"x\" output: \"y\" type: \"Conv\"\n"
        "  arg { name: \"k\" ints: [3, 3] f: 1e-05 s: \"a\\tb\" }\n"
        "  device_option { device_type: 1 }\n"
        "}\n"
        "op < type: 'Relu' is_gradient_op: false >\n"
        "num_workers: 0x2  # comment\n"
        "external_input: \"x\"\n";
    static const char alphabet[] = "{}<>:[],;\"'\\#\n -0x1e.9fa_z";
    uint64_t seed = 7;
    char buf[sizeof(base) + 8];
    int i, n_ok = 0;

    (void)state;
    for (i = 0; i < 2000; i++) {
        size_t len = sizeof(base) - 1;
        int muts = 1 + (int)(xorshift(&seed) % 3), j, rc;
        ProtobufCMessage *m = NULL, *back;
        ct_status_t st;
        memcpy(buf, base, len);
        for (j = 0; j < muts; j++) {
            size_t at = xorshift(&seed) % len;
            char c = alphabet[xorshift(&seed) % (sizeof(alphabet) - 1)];
            switch (xorshift(&seed) % 3) {
            case 0: /* replace */
                buf[at] = c;
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert */
                if (len + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = c;
                    len++;
                }
            }
        }
        rc = ct_pbtxt_parse(NETDEF, buf, len, &m, &st);
        if (rc != CT_OK && rc != CT_EPARSE)
            fail_msg("mutation %d: %s", i, st.msg);
        if (rc != CT_OK)
            continue;
        /* Whatever is accepted is written back as text that reads back
         * to the same binary. */
        {
            char *text;
            size_t text_len, a_len, b_len;
            void *a, *b;
            assert_int_equal(ct_pbtxt_format(m, &text, &text_len, &st), CT_OK);
            if (ct_pbtxt_parse(NETDEF, text, text_len, &back, &st) != CT_OK)
                fail_msg("mutation %d: reparse: %s\n%s", i, st.msg, text);
            assert_int_equal(ct_proto_pack(m, &a, &a_len, &st), CT_OK);
            assert_int_equal(ct_proto_pack(back, &b, &b_len, &st), CT_OK);
            assert_int_equal(a_len, b_len);
            assert_memory_equal(a, b, a_len);
            ct_free(a);
            ct_free(b);
            ct_free(text);
            ct_proto_free(back);
        }
        ct_proto_free(m);
        n_ok++;
    }
    print_message("mutated texts: %d of 2000 parsed\n", n_ok);
}

static void test_pbtxt_parse_alloc_failure_returns_enomem(void **state)
{
    static const char text[] =
        "name: \"n\"\n"
        "op { input: \"a\" input: \"b\" input: \"c\" input: \"d\""
        " input: \"e\" type: \"T\""
        " arg { name: \"x\" ints: [1, 2, 3, 4, 5, 6] s: \"bytes\" } }\n"
        "external_input: \"a\"\n";
    long k;

    (void)state;
    for (k = 1;; k++) {
        long live = tu_alloc_live();
        ProtobufCMessage *m = NULL;
        ct_status_t st;
        int rc;
        tu_fail_alloc_after(k);
        rc = ct_pbtxt_parse(NETDEF, text, strlen(text), &m, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            ct_proto_free(m);
            assert_int_equal(tu_alloc_live(), live);
            break;
        }
        tu_assert_status(&st, rc, CT_ENOMEM, "out of memory");
        assert_null(m);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_true(k > 10);
}

/* ---- writer ---- */

static void test_pbtxt_format_small_netdef_matches_cpp_layout(void **state)
{
    (void)state;
    expect_reformat(NETDEF,
                    "external_input: \"x\" op { type: \"Relu\" input: \"x\""
                    " output: \"y\" name: \"\" device_option {}"
                    " arg { i: 0 name: \"a\" } engine: \"\" }"
                    " name: \"net\" num_workers: 2",
                    "name: \"net\"\n"
                    "op {\n"
                    "  input: \"x\"\n"
                    "  output: \"y\"\n"
                    "  name: \"\"\n"
                    "  type: \"Relu\"\n"
                    "  arg {\n"
                    "    name: \"a\"\n"
                    "    i: 0\n"
                    "  }\n"
                    "  device_option {\n"
                    "  }\n"
                    "  engine: \"\"\n"
                    "}\n"
                    "num_workers: 2\n"
                    "external_input: \"x\"\n");
}

static void test_pbtxt_format_floats_like_simple_ftoa(void **state)
{
    (void)state;
    expect_reformat(ARGUMENT,
                    "floats: [0.1, 0.33333334, 1e-05, 1.00000006569e-05, -0,"
                    " inf, -inf, nan, 16777216, 3e38, 1e-45, 100, 1.5,"
                    " 0.9891946315765381, 123456789]",
                    "floats: 0.1\n"
                    "floats: 0.333333343\n"
                    "floats: 1e-05\n"
                    "floats: 1.00000007e-05\n"
                    "floats: -0\n"
                    "floats: inf\n"
                    "floats: -inf\n"
                    "floats: nan\n"
                    "floats: 16777216\n"
                    "floats: 3e+38\n"
                    "floats: 1.4013e-45\n"
                    "floats: 100\n"
                    "floats: 1.5\n"
                    "floats: 0.989194632\n"
                    "floats: 123456792\n");
}

static void test_pbtxt_format_doubles_like_simple_dtoa(void **state)
{
    (void)state;
    expect_reformat(&caffe2__qtensor_proto__descriptor,
                    "precision: 8 scale: 0.1 bias: -2.5 is_signed: false"
                    " scales: [0.3333333333333333, 1e300, 5e-324, -0]",
                    "precision: 8\n"
                    "scale: 0.1\n"
                    "bias: -2.5\n"
                    "is_signed: false\n"
                    "scales: 0.33333333333333331\n"
                    "scales: 1e+300\n"
                    "scales: 4.94065645841247e-324\n"
                    "scales: -0\n");
}

static void test_pbtxt_format_strings_use_cescape(void **state)
{
    (void)state;
    expect_reformat(ARGUMENT,
                    "name: \"\\001\\x7f\\xff\\\"'\\\\\\n\\r\\t ~\\u00e9\""
                    " s: \"\\000a\\x80\"",
                    "name: \"\\001\\177\\377\\\"\\'\\\\\\n\\r\\t "
                    "~\\303\\251\"\n"
                    "s: \"\\000a\\200\"\n");
}

static void test_pbtxt_format_presence_follows_has_flags(void **state)
{
    Caffe2__Argument a = CAFFE2__ARGUMENT__INIT;

    (void)state;
    expect_text(&a.base, "");
    a.f = 3.0f; /* set, but not marked present */
    expect_text(&a.base, "");
    a.has_i = 1; /* present with the default value */
    expect_text(&a.base, "i: 0\n");
    a.name = "";
    expect_text(&a.base, "name: \"\"\ni: 0\n");
    a.has_s = 1; /* empty bytes, present */
    expect_text(&a.base, "name: \"\"\ni: 0\ns: \"\"\n");
}

static void test_pbtxt_format_unknown_fields_print_as_numbers(void **state)
{
    /* name "a"; field 100 varint 5; field 101 bytes "xy"; 102 fixed32 */
    static const uint8_t in[] = {0x0a, 0x01, 'a',  0xa0, 0x06, 0x05,
                                 0xaa, 0x06, 0x02, 'x',  'y',  0xb5,
                                 0x06, 0x01, 0x02, 0x03, 0x04};
    ProtobufCMessage *m;
    ct_status_t st;

    (void)state;
    assert_int_equal(ct_proto_unpack(NETDEF, in, sizeof(in), &m, &st), CT_OK);
    expect_text(m, "name: \"a\"\n100: 5\n101: \"xy\"\n102: 0x04030201\n");
    ct_proto_free(m);
}

static void test_pbtxt_format_depth_over_100_returns_einval(void **state)
{
    Caffe2__NetDef nets[52];
    Caffe2__Argument args[51];
    Caffe2__Argument *arg_ptrs[51];
    char *text = NULL;
    size_t len, i;
    ct_status_t st;
    int rc;

    (void)state;
    /* 51 NetDef -> Argument -> NetDef hops: 102 levels below the top. */
    for (i = 0; i < 52; i++) {
        Caffe2__NetDef init = CAFFE2__NET_DEF__INIT;
        nets[i] = init;
    }
    for (i = 0; i < 51; i++) {
        Caffe2__Argument init = CAFFE2__ARGUMENT__INIT;
        args[i] = init;
        args[i].n = &nets[i + 1];
        arg_ptrs[i] = &args[i];
        nets[i].n_arg = 1;
        nets[i].arg = &arg_ptrs[i];
    }
    rc = ct_pbtxt_format(&nets[0].base, &text, &len, &st);
    tu_assert_status(&st, rc, CT_EINVAL,
                     "caffe2.NetDef nests messages deeper than 100");
    assert_null(text);
}

static void test_pbtxt_format_alloc_failure_returns_enomem(void **state)
{
    ProtobufCMessage *m = parse_ok(NETDEF, "name: \"x\" op { type: \"T\" }");
    long k;

    (void)state;
    for (k = 1;; k++) {
        long live = tu_alloc_live();
        char *text = NULL;
        size_t len;
        ct_status_t st;
        int rc;
        tu_fail_alloc_after(k);
        rc = ct_pbtxt_format(m, &text, &len, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK) {
            ct_free(text);
            break;
        }
        tu_assert_status(&st, rc, CT_ENOMEM,
                         "out of memory formatting caffe2.NetDef as text");
        assert_null(text);
        assert_int_equal(tu_alloc_live(), live);
    }
    ct_proto_free(m);
}

/* ---- shared data ---- */

static void test_pbtxt_parse_zoo_files_parse_as_netdef(void **state)
{
    char **names;
    size_t n, i, n_checked = 0;

    (void)state;
    if (!tu_have_data())
        skip();
    n = list_data_files(".pbtxt", &names);
    assert_true(n >= 11);
    for (i = 0; i < n; i++) {
        ct_netdef_t *def;
        ct_status_t st;
        if (ct_netdef_read_file(tu_data_path(names[i]), &def, &st) != CT_OK)
            fail_msg("%s", st.msg);
        assert_true(def->n_op > 0);
        if (strstr(names[i], "resnet50_") != NULL) {
            assert_int_equal(def->n_op, 175);
            assert_string_equal(def->name, "resnet50");
            n_checked++;
        }
        if (strstr(names[i], "densenet121_") != NULL) {
            assert_int_equal(def->n_op, 668);
            n_checked++;
        }
        ct_netdef_free(def);
    }
    assert_int_equal(n_checked, 2);
    free_list(names, n);
}

/* pbtxt -> pb -> pbtxt -> pb: both binaries are equal and the text
 * written from the first binary is a fixed point of the writer. */
static void test_pbtxt_format_zoo_round_trip_is_fixed_point(void **state)
{
    char **names;
    size_t n, i;

    (void)state;
    if (!tu_have_data())
        skip();
    n = list_data_files(".pbtxt", &names);
    for (i = 0; i < n; i++) {
        ProtobufCMessage *m, *m1, *m2;
        void *file, *pb1, *pb2;
        char *t1, *t2;
        size_t file_len, pb1_len, pb2_len, t1_len, t2_len;
        ct_status_t st;
        assert_int_equal(
            ct_file_read(tu_data_path(names[i]), &file, &file_len, &st), CT_OK);
        assert_int_equal(ct_pbtxt_parse(NETDEF, file, file_len, &m, &st),
                         CT_OK);
        assert_int_equal(ct_proto_pack(m, &pb1, &pb1_len, &st), CT_OK);
        assert_int_equal(ct_proto_unpack(NETDEF, pb1, pb1_len, &m1, &st),
                         CT_OK);
        assert_int_equal(ct_pbtxt_format(m1, &t1, &t1_len, &st), CT_OK);
        assert_int_equal(ct_pbtxt_parse(NETDEF, t1, t1_len, &m2, &st), CT_OK);
        assert_int_equal(ct_proto_pack(m2, &pb2, &pb2_len, &st), CT_OK);
        if (pb1_len != pb2_len || memcmp(pb1, pb2, pb1_len) != 0)
            fail_msg("%s: binary changed through text", names[i]);
        assert_int_equal(ct_pbtxt_format(m2, &t2, &t2_len, &st), CT_OK);
        if (t1_len != t2_len || memcmp(t1, t2, t1_len) != 0)
            fail_msg("%s: text is not a fixed point", names[i]);
        ct_free(file);
        ct_free(pb1);
        ct_free(pb2);
        ct_free(t1);
        ct_free(t2);
        ct_proto_free(m);
        ct_proto_free(m1);
        ct_proto_free(m2);
    }
    free_list(names, n);
}

/* pb -> pbtxt -> pb gives back the original file, byte for byte. */
static void
test_pbtxt_format_binary_files_round_trip_byte_identical(void **state)
{
    char **names;
    size_t n, i;

    (void)state;
    if (!tu_have_data())
        skip();
    n = list_data_files(".pb", &names);
    assert_true(n >= 8);
    for (i = 0; i < n; i++) {
        ProtobufCMessage *m, *back;
        void *file, *pb;
        char *text;
        size_t file_len, pb_len, text_len;
        ct_status_t st;
        assert_int_equal(
            ct_file_read(tu_data_path(names[i]), &file, &file_len, &st), CT_OK);
        if (ct_proto_unpack(NETDEF, file, file_len, &m, &st) != CT_OK)
            fail_msg("%s: %s", names[i], st.msg);
        assert_int_equal(ct_pbtxt_format(m, &text, &text_len, &st), CT_OK);
        if (ct_pbtxt_parse(NETDEF, text, text_len, &back, &st) != CT_OK)
            fail_msg("%s: %s", names[i], st.msg);
        assert_int_equal(ct_proto_pack(back, &pb, &pb_len, &st), CT_OK);
        if (pb_len != file_len || memcmp(pb, file, file_len) != 0)
            fail_msg("%s: pb -> pbtxt -> pb differs from the file", names[i]);
        ct_free(file);
        ct_free(pb);
        ct_free(text);
        ct_proto_free(m);
        ct_proto_free(back);
    }
    free_list(names, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbtxt_parse_full_syntax_returns_values),
        cmocka_unit_test(test_pbtxt_parse_bool_spellings_return_values),
        cmocka_unit_test(test_pbtxt_parse_enums_by_name_and_number),
        cmocka_unit_test(test_pbtxt_parse_empty_input_returns_empty_message),
        cmocka_unit_test(test_pbtxt_parse_utf8_bom_is_skipped),
        cmocka_unit_test(test_pbtxt_parse_other_message_types_round_trip),
        cmocka_unit_test(test_pbtxt_parse_unknown_fields_round_trip_binary),
        cmocka_unit_test(test_pbtxt_parse_bad_unknown_fields_return_eparse),
        cmocka_unit_test(test_pbtxt_parse_unknown_field_names_field_and_type),
        cmocka_unit_test(test_pbtxt_parse_syntax_errors_give_line_and_column),
        cmocka_unit_test(test_pbtxt_parse_bad_strings_return_eparse),
        cmocka_unit_test(test_pbtxt_parse_duplicate_field_returns_eparse),
        cmocka_unit_test(test_pbtxt_parse_missing_required_names_fields),
        cmocka_unit_test(test_pbtxt_parse_out_of_range_numbers_return_eparse),
        cmocka_unit_test(test_pbtxt_parse_bad_numbers_return_eparse),
        cmocka_unit_test(test_pbtxt_parse_float_out_of_range_saturates),
        cmocka_unit_test(test_pbtxt_parse_depth_100_parses_101_fails),
        cmocka_unit_test(test_pbtxt_parse_depth_1e6_returns_eparse),
        cmocka_unit_test(test_pbtxt_parse_random_text_never_crashes),
        cmocka_unit_test(test_pbtxt_parse_mutated_text_never_crashes),
        cmocka_unit_test(test_pbtxt_parse_alloc_failure_returns_enomem),
        cmocka_unit_test(test_pbtxt_format_small_netdef_matches_cpp_layout),
        cmocka_unit_test(test_pbtxt_format_floats_like_simple_ftoa),
        cmocka_unit_test(test_pbtxt_format_doubles_like_simple_dtoa),
        cmocka_unit_test(test_pbtxt_format_strings_use_cescape),
        cmocka_unit_test(test_pbtxt_format_presence_follows_has_flags),
        cmocka_unit_test(test_pbtxt_format_unknown_fields_print_as_numbers),
        cmocka_unit_test(test_pbtxt_format_depth_over_100_returns_einval),
        cmocka_unit_test(test_pbtxt_format_alloc_failure_returns_enomem),
        cmocka_unit_test(test_pbtxt_parse_zoo_files_parse_as_netdef),
        cmocka_unit_test(test_pbtxt_format_zoo_round_trip_is_fixed_point),
        cmocka_unit_test(
            test_pbtxt_format_binary_files_round_trip_byte_identical),
    };

    /* Install the counting allocator hooks before anything allocates. */
    tu_fail_alloc_off();
    return cmocka_run_group_tests_name("proto.pbtxt", tests, NULL, NULL);
}
