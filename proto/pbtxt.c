/* cortado: protobuf text format (pbtxt) reader for any protobuf-c
 * message.
 *
 * Design note
 * -----------
 * The reader is driven only by ProtobufCMessageDescriptor and
 * ProtobufCFieldDescriptor, so every message of caffe2.proto (and any other
 * protobuf-c message) is handled by the same code. Tokens come from the lexer
 * in pbtxt_lex.c, with the line and column that errors report as "line L,
 * column C: <what>". The parser is a loop over an explicit stack of
 * CT_PROTO_MAX_DEPTH + 1 frames, never C recursion, so hostile nesting costs a
 * clean CT_EPARSE and no stack. It builds messages in exactly the layout
 * protobuf_c_message_unpack produces, so that ct_proto_free
 * (protobuf_c_message_free_unpacked) can release them: each message is
 * allocated with ct__malloc and initialised by its descriptor's message_init;
 * strings are NUL-terminated ct__malloc copies; bytes are ct__malloc'd data +
 * len (data NULL when empty); repeated fields are ct__realloc'd arrays (grown
 * to powers of two, the slack is never read). Every new value is linked into
 * its parent at once, so on any error freeing the root releases everything
 * built so far. Accepted syntax is that of C++ TextFormat::Parser: `#`
 * comments, `name: value`, `name { ... }` or `name < ... >` with an optional
 * ':', `;` or `,` after any field, repeated fields as repeated entries or `[a,
 * b]` lists (messages too), adjacent string literals concatenated, C escapes,
 * integer literals in decimal, hex and octal, floats with exponent, `f` suffix,
 * inf/infinity/nan, booleans true/false/True/False/ t/f/1/0, enums by name or
 * number. Deviations, each on purpose: out-of-range float literals become +-inf
 * as C++ does, but integers out of the field's range are errors; an enum number
 * the enum does not list is kept (protobuf-c keeps it when unpacking binary, so
 * pb -> pbtxt -> pb stays lossless); strings may not contain NUL, which
 * protobuf-c's char * strings cannot hold; extension and Any names ([...]) are
 * refused; `number: value` entries, which the writer prints for unknown fields
 * as C++ does, are read back as protobuf-c unknown fields (C++ rejects them),
 * so pb -> pbtxt -> pb stays lossless for fields this schema lacks.
 *
 * The writer, pbtxt_write.c, prints what C++ TextFormat::Print prints.
 */
#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/proto.h"
#include "engine/alloc.h"
#include "proto/pbtxt_impl.h"
#include "proto/proto_impl.h"

/* ---- values ---- */

union scalar {
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f;
    double d;
    protobuf_c_boolean b;
    char *str;
    ProtobufCBinaryData bytes;
    ProtobufCMessage *msg;
};

static bool tok_is(const struct ct__pbtxt_tok *t, char sym)
{
    return t->kind == CT__TOK_SYM && t->text[0] == sym;
}

static bool tok_word(const struct ct__pbtxt_tok *t, const char *word)
{
    return t->kind == CT__TOK_IDENT && strlen(word) == t->len &&
           memcmp(t->text, word, t->len) == 0;
}

static bool tok_word_nocase(const struct ct__pbtxt_tok *t, const char *word)
{
    size_t i;

    if (t->kind != CT__TOK_IDENT || strlen(word) != t->len)
        return false;
    for (i = 0; i < t->len; i++)
        if (tolower((unsigned char)t->text[i]) != word[i])
            return false;
    return true;
}

static const char *type_name(ProtobufCType type)
{
    static const char *const names[] = {
        [PROTOBUF_C_TYPE_INT32] = "int32",
        [PROTOBUF_C_TYPE_SINT32] = "sint32",
        [PROTOBUF_C_TYPE_SFIXED32] = "sfixed32",
        [PROTOBUF_C_TYPE_INT64] = "int64",
        [PROTOBUF_C_TYPE_SINT64] = "sint64",
        [PROTOBUF_C_TYPE_SFIXED64] = "sfixed64",
        [PROTOBUF_C_TYPE_UINT32] = "uint32",
        [PROTOBUF_C_TYPE_FIXED32] = "fixed32",
        [PROTOBUF_C_TYPE_UINT64] = "uint64",
        [PROTOBUF_C_TYPE_FIXED64] = "fixed64",
        [PROTOBUF_C_TYPE_FLOAT] = "float",
        [PROTOBUF_C_TYPE_DOUBLE] = "double",
        [PROTOBUF_C_TYPE_BOOL] = "bool",
        [PROTOBUF_C_TYPE_ENUM] = "enum",
        [PROTOBUF_C_TYPE_STRING] = "string",
        [PROTOBUF_C_TYPE_BYTES] = "bytes",
        [PROTOBUF_C_TYPE_MESSAGE] = "message",
    };

    if ((unsigned)type < sizeof(names) / sizeof(names[0]) && names[type])
        return names[type];
    return "?";
}

/* Magnitude of an integer token (decimal, 0x hex or 0 octal); `neg` and
 * f (NULL for unknown fields) only word the error. */
static int tok_uint(struct ct__pbtxt_parser *p, const struct ct__pbtxt_tok *t,
                    const ProtobufCFieldDescriptor *f, bool neg, uint64_t *out)
{
    const char *s = t->text;
    size_t n = t->len, i = 0;
    unsigned base = 10;
    uint64_t v = 0;

    if (n > 2 && s[0] == '0' && (s[1] | 0x20) == 'x') {
        base = 16;
        i = 2;
    } else if (n > 1 && s[0] == '0') {
        base = 8;
        i = 1;
    }
    for (; i < n; i++) {
        unsigned d = (unsigned)ct__pbtxt_hex_value(s[i]);
        if (d >= base)
            return ct__pbtxt_error(p, t->line, t->col,
                                   "invalid octal number '%.*s'", (int)n, s);
        if (v > (UINT64_MAX - d) / base)
            return ct__pbtxt_error(p, t->line, t->col,
                                   "value %s%.*s is out of range for %s field "
                                   "\"%s\"",
                                   neg ? "-" : "", (int)n, s,
                                   f ? type_name(f->type) : "unknown",
                                   f ? f->name : "");
        v = v * base + d;
    }
    *out = v;
    return CT_OK;
}

/* Reads an optionally negative integer and checks it against [lo, hi]
 * (as magnitudes: a negative value needs -lo_mag <= value). */
static int parse_integer(struct ct__pbtxt_parser *p,
                         const ProtobufCFieldDescriptor *f, uint64_t neg_limit,
                         uint64_t pos_limit, bool *neg, uint64_t *mag)
{
    struct ct__pbtxt_tok start = p->tok;
    char what[48];
    int rc;

    *neg = false;
    if (tok_is(&p->tok, '-')) {
        *neg = true;
        rc = ct__pbtxt_lex(p);
        if (rc != CT_OK)
            return rc;
    }
    if (p->tok.kind != CT__TOK_INT)
        return ct__pbtxt_error(
            p, p->tok.line, p->tok.col,
            "expected an integer for %s field \"%s\", found %s",
            type_name(f->type), f->name,
            ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
    rc = tok_uint(p, &p->tok, f, *neg, mag);
    if (rc != CT_OK)
        return rc;
    if (*neg && neg_limit == 0 && *mag != 0)
        return ct__pbtxt_error(p, start.line, start.col,
                               "negative value for %s field \"%s\"",
                               type_name(f->type), f->name);
    if (*mag > (*neg ? neg_limit : pos_limit))
        return ct__pbtxt_error(
            p, start.line, start.col,
            "value %s%.*s is out of range for %s field \"%s\"", *neg ? "-" : "",
            (int)p->tok.len, p->tok.text, type_name(f->type), f->name);
    return ct__pbtxt_lex(p);
}

static int parse_floating(struct ct__pbtxt_parser *p,
                          const ProtobufCFieldDescriptor *f, double *out)
{
    struct ct__pbtxt_tok *t = &p->tok;
    bool neg = false;
    char what[48];
    double v;
    int rc;

    if (tok_is(t, '-')) {
        neg = true;
        rc = ct__pbtxt_lex(p);
        if (rc != CT_OK)
            return rc;
    }
    if (t->kind == CT__TOK_INT && t->len > 1 && t->text[0] == '0') {
        uint64_t mag; /* hex or octal: exact as an integer first */
        rc = tok_uint(p, t, f, neg, &mag);
        if (rc != CT_OK)
            return rc;
        v = (double)mag;
    } else if (t->kind == CT__TOK_INT || t->kind == CT__TOK_FLOAT) {
        size_t n = t->len;
        if ((t->text[n - 1] | 0x20) == 'f')
            n--;
        if (!ct__pbtxt_parse_double(t->text, n, &v))
            return ct__pbtxt_error(p, t->line, t->col, "invalid number '%.*s'",
                                   (int)t->len, t->text);
    } else if (tok_word_nocase(t, "inf") || tok_word_nocase(t, "infinity")) {
        v = INFINITY;
    } else if (tok_word_nocase(t, "nan")) {
        v = NAN;
    } else {
        return ct__pbtxt_error(
            p, t->line, t->col,
            "expected a number for %s field \"%s\", found %s",
            type_name(f->type), f->name,
            ct__pbtxt_tok_desc(t, what, sizeof(what)));
    }
    *out = neg ? -v : v;
    return ct__pbtxt_lex(p);
}

static const ProtobufCEnumValue *
find_enum_value(const ProtobufCEnumDescriptor *d, const char *s, size_t n)
{
    unsigned i;

    for (i = 0; i < d->n_values; i++)
        if (strlen(d->values[i].name) == n &&
            memcmp(d->values[i].name, s, n) == 0)
            return &d->values[i];
    return NULL;
}

static void free_value(struct ct__pbtxt_parser *p,
                       const ProtobufCFieldDescriptor *f, union scalar *v)
{
    if (f->type == PROTOBUF_C_TYPE_STRING)
        ct__free(v->str);
    else if (f->type == PROTOBUF_C_TYPE_BYTES)
        ct__free(v->bytes.data);
    else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        protobuf_c_message_free_unpacked(v->msg, &p->alloc.base);
}

/* Links a value into the innermost message: appended to a repeated field
 * or stored with its presence flag. Takes ownership of v's allocation,
 * freeing it on failure. */
static int store(struct ct__pbtxt_parser *p, const ProtobufCFieldDescriptor *f,
                 union scalar *v)
{
    char *base = (char *)p->frames[p->depth].msg;
    size_t siz = ct__proto_elem_size(f->type);

    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t *n = (size_t *)(base + f->quantifier_offset);
        void **arr = (void **)(base + f->offset);
        /* Capacity is implicit: 4, then each power of two. */
        if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
            size_t cap = *n == 0 ? 4 : *n * 2;
            void *grown = ct__realloc(*arr, cap * siz);
            if (grown == NULL) {
                free_value(p, f, v);
                return ct__pbtxt_enomem(p);
            }
            *arr = grown;
        }
        memcpy((char *)*arr + *n * siz, v, siz);
        (*n)++;
        return CT_OK;
    }
    memcpy(base + f->offset, v, siz);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(base + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    return CT_OK;
}

static int parse_strings(struct ct__pbtxt_parser *p,
                         const ProtobufCFieldDescriptor *f, union scalar *v)
{
    struct ct__pbtxt_tok start = p->tok;
    char what[48];
    int rc;

    if (p->tok.kind != CT__TOK_STRING)
        return ct__pbtxt_error(
            p, p->tok.line, p->tok.col,
            "expected a string for %s field \"%s\", found %s",
            type_name(f->type), f->name,
            ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
    p->buf_len = 0;
    while (p->tok.kind == CT__TOK_STRING) {
        rc = ct__pbtxt_decode_string(p, &p->tok);
        if (rc == CT_OK)
            rc = ct__pbtxt_lex(p);
        if (rc != CT_OK)
            return rc;
    }
    if (f->type == PROTOBUF_C_TYPE_BYTES) {
        v->bytes.len = p->buf_len;
        v->bytes.data = NULL;
        if (p->buf_len == 0)
            return CT_OK; /* as protobuf-c's unpacker leaves empty bytes */
        v->bytes.data = ct__malloc(p->buf_len);
        if (v->bytes.data == NULL)
            return ct__pbtxt_enomem(p);
        memcpy(v->bytes.data, p->buf, p->buf_len);
        return CT_OK;
    }
    if (p->buf_len > 0 && memchr(p->buf, 0, p->buf_len) != NULL)
        return ct__pbtxt_error(p, start.line, start.col,
                               "string field \"%s\" cannot hold a NUL byte "
                               "(protobuf-c strings are NUL-terminated)",
                               f->name);
    v->str = ct__malloc(p->buf_len + 1);
    if (v->str == NULL)
        return ct__pbtxt_enomem(p);
    if (p->buf_len > 0)
        memcpy(v->str, p->buf, p->buf_len);
    v->str[p->buf_len] = '\0';
    return CT_OK;
}

/* Parses one scalar value of field f at the lookahead and stores it. */
static int parse_value(struct ct__pbtxt_parser *p,
                       const ProtobufCFieldDescriptor *f)
{
    struct ct__pbtxt_tok *t = &p->tok;
    union scalar v;
    uint64_t mag = 0;
    double d = 0;
    bool neg = false;
    char what[48];
    int rc = CT_OK;

    memset(&v, 0, sizeof(v));
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
        rc = parse_strings(p, f, &v);
        break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        rc =
            parse_integer(p, f, (uint64_t)INT32_MAX + 1, INT32_MAX, &neg, &mag);
        v.i32 = neg ? (int32_t)(0 - mag) : (int32_t)mag;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        rc =
            parse_integer(p, f, (uint64_t)INT64_MAX + 1, INT64_MAX, &neg, &mag);
        v.i64 = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        rc = parse_integer(p, f, 0, UINT32_MAX, &neg, &mag);
        v.u32 = (uint32_t)mag;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        rc = parse_integer(p, f, 0, UINT64_MAX, &neg, &mag);
        v.u64 = mag;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        rc = parse_floating(p, f, &d);
        /* As C++'s SafeDoubleToFloat: out of range saturates to inf,
         * which also keeps the conversion defined. */
        v.f = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        rc = parse_floating(p, f, &v.d);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (tok_word(t, "true") || tok_word(t, "True") || tok_word(t, "t")) {
            v.b = 1;
        } else if (tok_word(t, "false") || tok_word(t, "False") ||
                   tok_word(t, "f")) {
            v.b = 0;
        } else if (t->kind == CT__TOK_INT) {
            rc = tok_uint(p, t, f, false, &mag);
            if (rc != CT_OK)
                return rc;
            if (mag > 1)
                return ct__pbtxt_error(
                    p, t->line, t->col,
                    "value %.*s is out of range for bool field "
                    "\"%s\"",
                    (int)t->len, t->text, f->name);
            v.b = (protobuf_c_boolean)mag;
        } else {
            return ct__pbtxt_error(
                p, t->line, t->col,
                "expected true or false for bool field \"%s\", "
                "found %s",
                f->name, ct__pbtxt_tok_desc(t, what, sizeof(what)));
        }
        rc = ct__pbtxt_lex(p);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        if (t->kind == CT__TOK_IDENT) {
            const ProtobufCEnumDescriptor *ed = f->descriptor;
            const ProtobufCEnumValue *ev = find_enum_value(ed, t->text, t->len);
            if (ev == NULL)
                return ct__pbtxt_error(
                    p, t->line, t->col,
                    "unknown value '%.*s' for enum field \"%s\" "
                    "(%s)",
                    (int)t->len, t->text, f->name, ed->name);
            v.i32 = ev->value;
            rc = ct__pbtxt_lex(p);
        } else {
            rc = parse_integer(p, f, (uint64_t)INT32_MAX + 1, INT32_MAX, &neg,
                               &mag);
            v.i32 = neg ? (int32_t)(0 - mag) : (int32_t)mag;
        }
        break;
    default:
        CT_ASSERT(0, "message field %s parsed as a scalar", f->name);
    }
    if (rc != CT_OK) {
        free_value(p, f, &v);
        return rc;
    }
    return store(p, f, &v);
}

/* ---- structure ---- */

static const ProtobufCFieldDescriptor *
find_field(const ProtobufCMessageDescriptor *d, const char *s, size_t n)
{
    unsigned lo = 0, hi = d->n_fields, i;

    if (d->fields_sorted_by_name == NULL) {
        for (i = 0; i < d->n_fields; i++)
            if (strlen(d->fields[i].name) == n &&
                memcmp(d->fields[i].name, s, n) == 0)
                return &d->fields[i];
        return NULL;
    }
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const ProtobufCFieldDescriptor *f =
            &d->fields[d->fields_sorted_by_name[mid]];
        int c = strncmp(f->name, s, n);
        if (c == 0 && f->name[n] != '\0')
            c = 1;
        if (c == 0)
            return f;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int skip_separator(struct ct__pbtxt_parser *p)
{
    if (tok_is(&p->tok, ';') || tok_is(&p->tok, ','))
        return ct__pbtxt_lex(p);
    return CT_OK;
}

/* Starts a sub-message of field f in the innermost frame, opened by the
 * token `at` ('{' or '<'), and makes it the innermost frame. */
static int open_message(struct ct__pbtxt_parser *p,
                        const ProtobufCFieldDescriptor *f,
                        const struct ct__pbtxt_tok *at)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    struct ct__pbtxt_frame *child;
    union scalar v;
    uint8_t *seen;
    int rc;

    if (p->depth == CT_PROTO_MAX_DEPTH)
        return ct__pbtxt_error(p, at->line, at->col, "nesting too deep (> %d)",
                               CT_PROTO_MAX_DEPTH);
    v.msg = ct__malloc(d->sizeof_message);
    if (v.msg == NULL)
        return ct__pbtxt_enomem(p);
    protobuf_c_message_init(d, v.msg);
    seen = ct__calloc((d->n_fields + 7) / 8 + 1, 1);
    if (seen == NULL) {
        protobuf_c_message_free_unpacked(v.msg, &p->alloc.base);
        return ct__pbtxt_enomem(p);
    }
    rc = store(p, f, &v);
    if (rc != CT_OK) {
        ct__free(seen);
        return rc;
    }
    child = &p->frames[++p->depth];
    child->msg = v.msg;
    child->seen = seen;
    child->list_field = NULL;
    child->field_name = f->name;
    child->line = at->line;
    child->col = at->col;
    child->close = at->text[0] == '{' ? '}' : '>';
    return ct__pbtxt_lex(p);
}

/* Checks required fields of the innermost message, at token `at`, and
 * pops it. */
static int close_message(struct ct__pbtxt_parser *p,
                         const struct ct__pbtxt_tok *at)
{
    struct ct__pbtxt_frame *fr = &p->frames[p->depth];
    const ProtobufCMessageDescriptor *d = fr->msg->descriptor;
    char names[160];
    size_t used = 0;
    unsigned i, missing = 0;

    names[0] = '\0';
    for (i = 0; i < d->n_fields; i++) {
        if (d->fields[i].label != PROTOBUF_C_LABEL_REQUIRED ||
            (fr->seen[i / 8] & (1u << (i % 8))) != 0)
            continue;
        if (used < sizeof(names))
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                     missing ? ", " : "", d->fields[i].name);
        missing++;
    }
    if (missing > 0)
        return ct__pbtxt_error(p, at->line, at->col,
                               "message %s is missing required field%s: %s",
                               d->name, missing > 1 ? "s" : "", names);
    ct__free(fr->seen);
    fr->seen = NULL;
    p->depth--;
    return CT_OK;
}

/* Inside `field [ {...}` after an element closed: ',' and the next
 * element, or ']'. */
static int continue_list(struct ct__pbtxt_parser *p)
{
    struct ct__pbtxt_frame *fr = &p->frames[p->depth];
    const ProtobufCFieldDescriptor *f = fr->list_field;
    char what[48];
    int rc;

    if (tok_is(&p->tok, ']')) {
        fr->list_field = NULL;
        rc = ct__pbtxt_lex(p);
        return rc == CT_OK ? skip_separator(p) : rc;
    }
    if (!tok_is(&p->tok, ','))
        return ct__pbtxt_error(
            p, p->tok.line, p->tok.col,
            "expected ',' or ']' in the list of \"%s\", found %s", f->name,
            ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
    rc = ct__pbtxt_lex(p);
    if (rc != CT_OK)
        return rc;
    if (!tok_is(&p->tok, '{') && !tok_is(&p->tok, '<'))
        return ct__pbtxt_error(
            p, p->tok.line, p->tok.col,
            "expected '{' or '<' for an element of \"%s\", found "
            "%s",
            f->name, ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
    return open_message(p, f, &p->tok);
}

static int parse_message_field(struct ct__pbtxt_parser *p,
                               const ProtobufCFieldDescriptor *f)
{
    struct ct__pbtxt_frame *fr = &p->frames[p->depth];
    char what[48];
    int rc;

    if (tok_is(&p->tok, ':')) {
        rc = ct__pbtxt_lex(p);
        if (rc != CT_OK)
            return rc;
    }
    if (tok_is(&p->tok, '[')) {
        if (f->label != PROTOBUF_C_LABEL_REPEATED)
            return ct__pbtxt_error(
                p, p->tok.line, p->tok.col,
                "non-repeated field \"%s\" cannot take a list", f->name);
        rc = ct__pbtxt_lex(p);
        if (rc != CT_OK)
            return rc;
        if (tok_is(&p->tok, ']')) {
            rc = ct__pbtxt_lex(p);
            return rc == CT_OK ? skip_separator(p) : rc;
        }
        if (!tok_is(&p->tok, '{') && !tok_is(&p->tok, '<'))
            return ct__pbtxt_error(
                p, p->tok.line, p->tok.col,
                "expected '{' or '<' for an element of \"%s\", "
                "found %s",
                f->name, ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
        fr->list_field = f;
        return open_message(p, f, &p->tok);
    }
    if (!tok_is(&p->tok, '{') && !tok_is(&p->tok, '<'))
        return ct__pbtxt_error(p, p->tok.line, p->tok.col,
                               "expected '{' or '<' after \"%s\", found %s",
                               f->name,
                               ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
    return open_message(p, f, &p->tok);
}

static int parse_scalar_field(struct ct__pbtxt_parser *p,
                              const ProtobufCFieldDescriptor *f)
{
    char what[48];
    int rc;

    if (!tok_is(&p->tok, ':'))
        return ct__pbtxt_error(p, p->tok.line, p->tok.col,
                               "expected ':' after \"%s\", found %s", f->name,
                               ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
    rc = ct__pbtxt_lex(p);
    if (rc != CT_OK)
        return rc;
    if (!tok_is(&p->tok, '[')) {
        rc = parse_value(p, f);
        return rc == CT_OK ? skip_separator(p) : rc;
    }
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return ct__pbtxt_error(p, p->tok.line, p->tok.col,
                               "non-repeated field \"%s\" cannot take a list",
                               f->name);
    rc = ct__pbtxt_lex(p);
    if (rc == CT_OK && !tok_is(&p->tok, ']')) {
        for (;;) {
            rc = parse_value(p, f);
            if (rc != CT_OK)
                return rc;
            if (tok_is(&p->tok, ']'))
                break;
            if (!tok_is(&p->tok, ','))
                return ct__pbtxt_error(
                    p, p->tok.line, p->tok.col,
                    "expected ',' or ']' in the list of \"%s\", "
                    "found %s",
                    f->name, ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
            rc = ct__pbtxt_lex(p);
            if (rc != CT_OK)
                return rc;
        }
    }
    if (rc == CT_OK)
        rc = ct__pbtxt_lex(p); /* the ']' */
    return rc == CT_OK ? skip_separator(p) : rc;
}

/* Parses one `name ...` entry of the innermost message. */
static int parse_field(struct ct__pbtxt_parser *p)
{
    struct ct__pbtxt_frame *fr = &p->frames[p->depth];
    const ProtobufCMessageDescriptor *d = fr->msg->descriptor;
    const ProtobufCFieldDescriptor *f;
    struct ct__pbtxt_tok name = p->tok;
    unsigned idx;
    int rc;

    f = find_field(d, name.text, name.len);
    if (f == NULL)
        return ct__pbtxt_error(p, name.line, name.col,
                               "message type %s has no field named \"%.*s\"",
                               d->name, (int)(name.len > 64 ? 64 : name.len),
                               name.text);
    idx = (unsigned)(f - d->fields);
    if (f->label != PROTOBUF_C_LABEL_REPEATED &&
        (fr->seen[idx / 8] & (1u << (idx % 8))) != 0)
        return ct__pbtxt_error(
            p, name.line, name.col,
            "non-repeated field \"%s\" of %s is given more than "
            "once",
            f->name, d->name);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which =
            *(const uint32_t *)((const char *)fr->msg + f->quantifier_offset);
        if (which != 0 && which != f->id) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(d, which);
            return ct__pbtxt_error(
                p, name.line, name.col,
                "field \"%s\" of %s is given along with \"%s\", "
                "another member of the same oneof",
                f->name, d->name, other ? other->name : "?");
        }
    }
    fr->seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
    rc = ct__pbtxt_lex(p);
    if (rc != CT_OK)
        return rc;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return parse_message_field(p, f);
    return parse_scalar_field(p, f);
}

static size_t encode_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;

    do {
        out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    return n;
}

/* Reads the value of an unknown field as pbtxt_write.c prints it (decimal:
 * varint; 0x and 8 or 16 hex digits: fixed32 or fixed64; strings:
 * length-delimited) into protobuf-c's layout: the bytes after the tag,
 * length prefix included. */
static int parse_unknown_value(struct ct__pbtxt_parser *p, uint32_t number,
                               ProtobufCMessageUnknownField *u)
{
    const struct ct__pbtxt_tok *t = &p->tok;
    uint8_t head[16];
    size_t hlen = 0, i;
    const void *tail = NULL;
    size_t tail_len = 0;
    uint64_t v;
    char what[48];
    int rc;

    if (t->kind == CT__TOK_STRING) {
        p->buf_len = 0;
        while (p->tok.kind == CT__TOK_STRING) {
            rc = ct__pbtxt_decode_string(p, &p->tok);
            if (rc == CT_OK)
                rc = ct__pbtxt_lex(p);
            if (rc != CT_OK)
                return rc;
        }
        u->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        hlen = encode_varint(head, p->buf_len);
        tail = p->buf;
        tail_len = p->buf_len;
    } else if (t->kind == CT__TOK_INT) {
        bool hex = t->len > 2 && (t->text[1] | 0x20) == 'x';
        rc = tok_uint(p, t, NULL, false, &v);
        if (rc != CT_OK)
            return rc;
        if (!hex) {
            u->wire_type = PROTOBUF_C_WIRE_TYPE_VARINT;
            hlen = encode_varint(head, v);
        } else if (t->len == 10 || t->len == 18) {
            u->wire_type = t->len == 10 ? PROTOBUF_C_WIRE_TYPE_32BIT
                                        : PROTOBUF_C_WIRE_TYPE_64BIT;
            for (hlen = 0; hlen < (t->len - 2) / 2; hlen++)
                head[hlen] = (uint8_t)(v >> (8 * hlen));
        } else {
            return ct__pbtxt_error(p, t->line, t->col,
                                   "hex value of unknown field %" PRIu32
                                   " needs 8 (fixed32) or 16 (fixed64) digits",
                                   number);
        }
        rc = ct__pbtxt_lex(p);
        if (rc != CT_OK)
            return rc;
    } else {
        return ct__pbtxt_error(
            p, t->line, t->col,
            "expected a number or a string for unknown field "
            "%" PRIu32 ", found %s",
            number, ct__pbtxt_tok_desc(t, what, sizeof(what)));
    }
    u->tag = number;
    u->len = hlen + tail_len;
    u->data = ct__malloc(u->len);
    if (u->data == NULL)
        return ct__pbtxt_enomem(p);
    for (i = 0; i < hlen; i++)
        u->data[i] = head[i];
    if (tail_len > 0)
        memcpy(u->data + hlen, tail, tail_len);
    return CT_OK;
}

/* `12: 5`, `13: 0x01020304`, `14: "bytes"`: an unknown field as the
 * writer prints it. C++ TextFormat prints unknown fields the same way but
 * cannot read them back; keeping them as protobuf-c unknown fields makes
 * pb -> pbtxt -> pb lossless for fields this schema lacks. */
static int parse_unknown_field(struct ct__pbtxt_parser *p)
{
    ProtobufCMessage *m = p->frames[p->depth].msg;
    struct ct__pbtxt_tok num = p->tok;
    const ProtobufCFieldDescriptor *known;
    ProtobufCMessageUnknownField u;
    uint32_t number = 0;
    char what[48];
    size_t i, n = m->n_unknown_fields;
    int rc;

    for (i = 0; i < num.len && num.len <= 9 && num.text[0] != '0'; i++)
        number = number * 10 + (uint32_t)(num.text[i] - '0');
    if (i != num.len || number == 0 || number > 0x1fffffff)
        return ct__pbtxt_error(p, num.line, num.col,
                               "invalid field number '%.*s'", (int)num.len,
                               num.text);
    known = protobuf_c_message_descriptor_get_field(m->descriptor, number);
    if (known != NULL)
        return ct__pbtxt_error(p, num.line, num.col,
                               "field %" PRIu32
                               " of %s must be given by its name "
                               "\"%s\"",
                               number, m->descriptor->name, known->name);
    rc = ct__pbtxt_lex(p);
    if (rc != CT_OK)
        return rc;
    if (!tok_is(&p->tok, ':'))
        return ct__pbtxt_error(p, p->tok.line, p->tok.col,
                               "expected ':' after \"%" PRIu32 "\", found %s",
                               number,
                               ct__pbtxt_tok_desc(&p->tok, what, sizeof(what)));
    rc = ct__pbtxt_lex(p);
    if (rc != CT_OK)
        return rc;
    rc = parse_unknown_value(p, number, &u);
    if (rc != CT_OK)
        return rc;
    /* Same implicit capacity as repeated fields: 4, then powers of two. */
    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        void *grown =
            ct__realloc(m->unknown_fields, (n == 0 ? 4 : n * 2) * sizeof(u));
        if (grown == NULL) {
            ct__free(u.data);
            return ct__pbtxt_enomem(p);
        }
        m->unknown_fields = grown;
    }
    m->unknown_fields[n] = u;
    m->n_unknown_fields = (unsigned)n + 1;
    return skip_separator(p);
}

/* The statement loop: one field, one message close or one list step per
 * iteration, until the top-level message is complete. */
static int parse_all(struct ct__pbtxt_parser *p)
{
    char what[48];
    int rc = ct__pbtxt_lex(p);

    while (rc == CT_OK && p->depth >= 0) {
        struct ct__pbtxt_frame *fr = &p->frames[p->depth];
        struct ct__pbtxt_tok t = p->tok;

        if (fr->list_field != NULL) {
            rc = continue_list(p);
        } else if (t.kind == CT__TOK_EOF) {
            if (p->depth > 0)
                return ct__pbtxt_error(
                    p, t.line, t.col,
                    "unexpected end of input: \"%s\" opened at "
                    "line %d, column %d is not closed",
                    fr->field_name, fr->line, fr->col);
            rc = close_message(p, &t);
        } else if (p->depth > 0 && tok_is(&t, fr->close)) {
            rc = close_message(p, &t);
            if (rc == CT_OK)
                rc = ct__pbtxt_lex(p);
            /* A list element's ',' belongs to the list, not to us. */
            if (rc == CT_OK && p->frames[p->depth].list_field == NULL)
                rc = skip_separator(p);
        } else if (t.kind == CT__TOK_IDENT) {
            rc = parse_field(p);
        } else if (t.kind == CT__TOK_INT) {
            rc = parse_unknown_field(p);
        } else if (tok_is(&t, '[')) {
            return ct__pbtxt_error(
                p, t.line, t.col,
                "extension and Any field names ([...]) are not "
                "supported");
        } else {
            return ct__pbtxt_error(p, t.line, t.col,
                                   "expected a field name, found %s",
                                   ct__pbtxt_tok_desc(&t, what, sizeof(what)));
        }
    }
    return rc;
}

int ct_pbtxt_parse(const ProtobufCMessageDescriptor *desc, const char *text,
                   size_t len, ProtobufCMessage **out, ct_status_t *st)
{
    struct ct__pbtxt_parser *p;
    ProtobufCMessage *root;
    uint8_t *seen;
    int rc, i;

    CT_ASSERT(desc != NULL && out != NULL, "NULL argument");
    CT_ASSERT(desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
              "not a message descriptor");
    CT_ASSERT(text != NULL || len == 0, "NULL text of %zu bytes", len);
    if (len > CT_PROTO_MAX_BYTES)
        return ct_status_setf(st, CT_EPARSE,
                              "input of %zu bytes exceeds the limit of %zu "
                              "bytes",
                              len, CT_PROTO_MAX_BYTES);
    /* The parser holds 101 frames; keep it off the caller's stack. */
    p = ct__calloc(1, sizeof(*p));
    root = ct__malloc(desc->sizeof_message);
    seen = ct__calloc((desc->n_fields + 7) / 8 + 1, 1);
    if (p == NULL || root == NULL || seen == NULL) {
        ct__free(p);
        ct__free(root);
        ct__free(seen);
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory parsing text format");
    }
    protobuf_c_message_init(desc, root);
    p->s = text == NULL ? "" : text;
    p->len = len;
    p->line = 1;
    /* ct_proto_detect calls input with a UTF-8 BOM text, so skip it; the
     * first column is the one after it. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        p->pos = p->line_start = 3;
    p->st = st;
    ct__proto_alloc_init(&p->alloc);
    p->frames[0].msg = root;
    p->frames[0].seen = seen;

    rc = parse_all(p);
    for (i = 0; i <= p->depth; i++)
        ct__free(p->frames[i].seen);
    if (rc != CT_OK)
        protobuf_c_message_free_unpacked(root, &p->alloc.base);
    else
        *out = root;
    ct__free(p->buf);
    ct__free(p);
    return rc;
}
