/* cortado: protobuf text format (pbtxt) writer for any protobuf-c
 * message.
 *
 * Design note
 * -----------
 * Driven only by the descriptors, like the reader in pbtxt.c, and without
 * recursion: an explicit stack of CT_PROTO_MAX_DEPTH + 1 frames (message,
 * field index, element index) walks the message, so printing costs the
 * same small stack at any depth, and a message nested deeper than the
 * reader accepts is refused (CT_EINVAL) rather than written.
 *
 * It prints what C++ TextFormat::Print prints: present fields in
 * field-number order (protoc-c emits descriptor fields sorted by number, the
 * order Reflection::ListFields returns), two spaces of indent per level,
 * `name {` ... `}` for messages, strings and bytes in double quotes with C++
 * CEscape (\n \r \t \" \' \\ and any other byte outside 0x20-0x7e as three
 * octal digits), enums by name (number when unknown), floats as %.6g when
 * that reads back to the same float and %.9g otherwise, doubles as %.15g or
 * %.17g (SimpleFtoa/SimpleDtoa), and unknown fields last as `number: value`
 * (decimal varints, 0x%08x and 0x%016x fixed values, quoted length-delimited
 * ones; C++ would print the latter as `number { ... }` when they happen to
 * parse as a message, but a string is what the reader can turn back into the
 * same bytes). Presence follows protobuf-c's packer: has_ flags for optional
 * scalars, non-NULL and not the default pointer for strings and messages,
 * the case member for oneofs, nonzero for proto3 fields without presence.
 *
 * Numbers go through snprintf and strtod, which follow LC_NUMERIC; as in
 * protobuf's own DelocalizeRadix/NoLocaleStrtod, a locale radix is mapped
 * to '.' on output and back on input.
 */
#include <float.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cortado/proto.h"
#include "engine/alloc.h"
#include "proto/pbtxt_impl.h"
#include "proto/proto_impl.h"

/* ---- numbers without locale surprises ---- */

/* Replaces the locale's radix character in a printed number with '.'. */
static void delocalize(char *buf)
{
    const char *radix = localeconv()->decimal_point;
    size_t rn;
    char *at;

    if (radix == NULL || strcmp(radix, ".") == 0 || radix[0] == '\0')
        return;
    at = strstr(buf, radix);
    if (at == NULL)
        return;
    rn = strlen(radix);
    *at = '.';
    memmove(at + 1, at + rn, strlen(at + rn) + 1);
}

static bool reparse_equals_float(const char *buf, float v)
{
    double d;
    return ct__pbtxt_parse_double(buf, strlen(buf), &d) && (float)d == v;
}

static bool reparse_equals_double(const char *buf, double v)
{
    double d;
    return ct__pbtxt_parse_double(buf, strlen(buf), &d) && d == v;
}

/* protobuf's SimpleFtoa: FLT_DIG digits when they read back to the same
 * float, else FLT_DIG + 3 (always enough for a float). */
static void format_float(float v, char *buf, size_t n)
{
    if (isinf(v)) {
        snprintf(buf, n, "%s", v > 0 ? "inf" : "-inf");
        return;
    }
    if (isnan(v)) {
        snprintf(buf, n, "nan");
        return;
    }
    snprintf(buf, n, "%.*g", FLT_DIG, (double)v);
    delocalize(buf);
    if (!reparse_equals_float(buf, v)) {
        snprintf(buf, n, "%.*g", FLT_DIG + 3, (double)v);
        delocalize(buf);
    }
}

/* protobuf's SimpleDtoa: DBL_DIG digits, else DBL_DIG + 2. */
static void format_double(double v, char *buf, size_t n)
{
    if (isinf(v)) {
        snprintf(buf, n, "%s", v > 0 ? "inf" : "-inf");
        return;
    }
    if (isnan(v)) {
        snprintf(buf, n, "nan");
        return;
    }
    snprintf(buf, n, "%.*g", DBL_DIG, v);
    delocalize(buf);
    if (!reparse_equals_double(buf, v)) {
        snprintf(buf, n, "%.*g", DBL_DIG + 2, v);
        delocalize(buf);
    }
}

/* ---- writer ---- */

struct obuf {
    void *data;
    size_t len, cap;
    bool failed; /* sticky: an allocation failed, output is incomplete */
};

static void put(struct obuf *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (ct__grow(&o->data, &o->cap, o->len + n + 1, 1) != CT_OK) {
        o->failed = true;
        return;
    }
    if (n > 0)
        memcpy((char *)o->data + o->len, s, n);
    o->len += n;
    ((char *)o->data)[o->len] = '\0';
}

static void puts_(struct obuf *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_indent(struct obuf *o, int depth)
{
    static const char spaces[] = "                                ";
    size_t n = (size_t)depth * 2;

    while (n > 0) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        put(o, spaces, k);
        n -= k;
    }
}

/* C++ CEscape, in double quotes. */
static void put_quoted(struct obuf *o, const uint8_t *s, size_t n)
{
    size_t i = 0;

    put(o, "\"", 1);
    while (i < n) {
        size_t run = i;
        char esc[8];
        while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' &&
               s[run] != '\'' && s[run] != '\\')
            run++;
        put(o, (const char *)s + i, run - i);
        if (run == n)
            break;
        switch (s[run]) {
        case '\n':
            puts_(o, "\\n");
            break;
        case '\r':
            puts_(o, "\\r");
            break;
        case '\t':
            puts_(o, "\\t");
            break;
        case '"':
            puts_(o, "\\\"");
            break;
        case '\'':
            puts_(o, "\\'");
            break;
        case '\\':
            puts_(o, "\\\\");
            break;
        default:
            snprintf(esc, sizeof(esc), "\\%03o", (unsigned)s[run]);
            puts_(o, esc);
        }
        i = run + 1;
    }
    put(o, "\"", 1);
}

/* How many values of f the message holds (0 or 1 for singular fields). */
static size_t field_count(const ProtobufCMessage *m,
                          const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *member = base + f->offset;
    bool is_ptr =
        f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
    const void *ptr = is_ptr ? *(const void *const *)member : NULL;

    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
            return 0;
        return is_ptr && (ptr == NULL || ptr == f->default_value) ? 0 : 1;
    }
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return is_ptr && ptr == NULL ? 0 : 1;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (is_ptr)
            return ptr != NULL && ptr != f->default_value;
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    }
    /* proto3 without presence: printed when not zero. */
    if (f->type == PROTOBUF_C_TYPE_STRING)
        return ptr != NULL && *(const char *)ptr != '\0';
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return ptr != NULL;
    if (f->type == PROTOBUF_C_TYPE_BYTES)
        return ((const ProtobufCBinaryData *)member)->len != 0;
    {
        size_t siz = ct__proto_elem_size(f->type), i;
        for (i = 0; i < siz; i++)
            if (((const uint8_t *)member)[i] != 0)
                return 1;
    }
    return 0;
}

static void put_value(struct obuf *o, const ProtobufCFieldDescriptor *f,
                      const void *v)
{
    char num[64];

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(num, sizeof(num), "%" PRId32, *(const int32_t *)v);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(num, sizeof(num), "%" PRIu32, *(const uint32_t *)v);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)v);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)v);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        format_float(*(const float *)v, num, sizeof(num));
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        format_double(*(const double *)v, num, sizeof(num));
        break;
    case PROTOBUF_C_TYPE_BOOL:
        snprintf(num, sizeof(num), "%s",
                 *(const protobuf_c_boolean *)v ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t e = *(const int32_t *)v;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, e);
        if (ev != NULL) {
            puts_(o, ev->name);
            return;
        }
        snprintf(num, sizeof(num), "%" PRId32, e);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;
        put_quoted(o, (const uint8_t *)s, strlen(s));
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = v;
        put_quoted(o, b->data, b->len);
        return;
    }
    default:
        CT_ASSERT(0, "message field %s printed as a scalar", f->name);
    }
    puts_(o, num);
}

/* Unknown fields, as C++ prints them: `number: value`, fixed-width values
 * in hex, length-delimited ones as a quoted string. protobuf-c keeps the
 * bytes after the tag (with the length prefix for wire type 2). */
static void put_unknown(struct obuf *o, const ProtobufCMessage *m, int depth)
{
    unsigned i;

    for (i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        char num[64];
        uint64_t v = 0;
        size_t k, skip = 0;

        put_indent(o, depth);
        snprintf(num, sizeof(num), "%" PRIu32 ": ", u->tag);
        puts_(o, num);
        switch (u->wire_type) {
        case PROTOBUF_C_WIRE_TYPE_VARINT:
            for (k = 0; k < u->len && k < 10; k++)
                v |= (uint64_t)(u->data[k] & 0x7f) << (7 * k);
            snprintf(num, sizeof(num), "%" PRIu64, v);
            puts_(o, num);
            break;
        case PROTOBUF_C_WIRE_TYPE_32BIT:
        case PROTOBUF_C_WIRE_TYPE_64BIT:
            for (k = u->len; k > 0; k--)
                v = (v << 8) | u->data[k - 1];
            snprintf(num, sizeof(num), "0x%0*" PRIx64, (int)u->len * 2, v);
            puts_(o, num);
            break;
        default:
            while (skip < u->len && (u->data[skip] & 0x80) != 0)
                skip++;
            skip = skip < u->len ? skip + 1 : u->len;
            put_quoted(o, u->data + skip, u->len - skip);
        }
        put(o, "\n", 1);
    }
}

struct wframe {
    const ProtobufCMessage *msg;
    unsigned field; /* index into descriptor->fields being printed */
    size_t elem;    /* next element of that field */
};

int ct_pbtxt_format(const ProtobufCMessage *msg, char **out, size_t *len,
                    ct_status_t *st)
{
    struct wframe stack[CT_PROTO_MAX_DEPTH + 1];
    struct obuf o = {NULL, 0, 0, false};
    int depth = 0;

    CT_ASSERT(msg != NULL && out != NULL && len != NULL, "NULL argument");
    stack[0].msg = msg;
    stack[0].field = 0;
    stack[0].elem = 0;
    put(&o, "", 0); /* an empty message still yields "" */
    while (depth >= 0 && !o.failed) {
        struct wframe *fr = &stack[depth];
        const ProtobufCMessageDescriptor *d = fr->msg->descriptor;
        const ProtobufCFieldDescriptor *f;
        const char *member;

        if (fr->field == d->n_fields) {
            put_unknown(&o, fr->msg, depth);
            if (--depth >= 0) {
                put_indent(&o, depth);
                put(&o, "}\n", 2);
            }
            continue;
        }
        f = &d->fields[fr->field];
        if (fr->elem >= field_count(fr->msg, f)) {
            fr->field++;
            fr->elem = 0;
            continue;
        }
        member = (const char *)fr->msg + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            member = *(const char *const *)member +
                     fr->elem * ct__proto_elem_size(f->type);
        fr->elem++;
        put_indent(&o, depth);
        puts_(&o, f->name);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (depth == CT_PROTO_MAX_DEPTH) {
                ct__free(o.data);
                return ct_status_setf(
                    st, CT_EINVAL, "%s nests messages deeper than %d",
                    msg->descriptor->name, CT_PROTO_MAX_DEPTH);
            }
            put(&o, " {\n", 3);
            depth++;
            stack[depth].msg = *(const ProtobufCMessage *const *)member;
            stack[depth].field = 0;
            stack[depth].elem = 0;
            continue;
        }
        put(&o, ": ", 2);
        put_value(&o, f, member);
        put(&o, "\n", 1);
    }
    if (o.failed) {
        ct__free(o.data);
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory formatting %s as text",
                              msg->descriptor->name);
    }
    *out = o.data;
    *len = o.len;
    return CT_OK;
}
