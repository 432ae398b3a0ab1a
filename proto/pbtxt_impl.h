/* cortado internal: what the text format reader (pbtxt.c), its lexer
 * (pbtxt_lex.c) and the writer (pbtxt_write.c) share.
 *
 * The parser state lives here so that the lexer can fill the lookahead
 * token and report errors with line and column; only the proto/ files
 * include this header.
 */
#ifndef CT_PROTO_PBTXT_IMPL_H
#define CT_PROTO_PBTXT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/proto.h"
#include "proto/proto_impl.h"

enum ct__pbtxt_tok_kind {
    CT__TOK_EOF,
    CT__TOK_IDENT,
    CT__TOK_INT,
    CT__TOK_FLOAT,
    CT__TOK_STRING,
    CT__TOK_SYM
};

struct ct__pbtxt_tok {
    enum ct__pbtxt_tok_kind kind;
    const char *text; /* into the input; for CT__TOK_STRING quotes included */
    size_t len;
    int line, col;
};

/* One message being filled. */
struct ct__pbtxt_frame {
    ProtobufCMessage *msg;
    uint8_t *seen; /* bit per field index: the field has been given */
    /* Set while inside `field [ {...}, ... ]`: the list's field. */
    const ProtobufCFieldDescriptor *list_field;
    const char *field_name; /* field that opened it; NULL at top level */
    int line, col;          /* where it was opened */
    char close;             /* '}' or '>'; 0 at top level */
};

struct ct__pbtxt_parser {
    const char *s;
    size_t len, pos, line_start;
    int line;
    struct ct__pbtxt_tok tok; /* the lookahead token */
    int depth;                /* index of the innermost frame; -1 when done */
    struct ct__pbtxt_frame frames[CT_PROTO_MAX_DEPTH + 1];
    void *buf; /* scratch for decoded strings */
    size_t buf_len, buf_cap;
    struct ct__proto_alloc alloc;
    ct_status_t *st;
};

static inline bool ct__pbtxt_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool ct__pbtxt_is_hex(char c)
{
    return ct__pbtxt_is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Value of a hex digit (c must satisfy ct__pbtxt_is_hex). */
static inline int ct__pbtxt_hex_value(char c)
{
    return ct__pbtxt_is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Parses s[0..n) (digits, '.', exponent; no sign, no suffix) as a double,
 * independent of the LC_NUMERIC radix. False when the text is not
 * entirely a number. The writer uses it to check that a shortened float
 * reads back exactly, with the same conversion the reader applies. */
bool ct__pbtxt_parse_double(const char *s, size_t n, double *out);

/* Sets p->st to CT_EPARSE "line L, column C: <fmt...>" and returns
 * CT_EPARSE. Never allocates. */
int ct__pbtxt_error(struct ct__pbtxt_parser *p, int line, int col,
                    const char *fmt, ...) CT_PRINTF(4, 5);
/* Sets p->st to CT_ENOMEM and returns it. */
int ct__pbtxt_enomem(struct ct__pbtxt_parser *p);
/* Describes t for "found ..." in messages, in buf (or a literal). */
const char *ct__pbtxt_tok_desc(const struct ct__pbtxt_tok *t, char *buf,
                               size_t n);
/* Reads the next token into p->tok. CT_EPARSE on a bad token. */
int ct__pbtxt_lex(struct ct__pbtxt_parser *p);
/* Appends the decoded bytes of string token t to p->buf. CT_EPARSE on a
 * bad escape, CT_ENOMEM. */
int ct__pbtxt_decode_string(struct ct__pbtxt_parser *p,
                            const struct ct__pbtxt_tok *t);

#endif /* CT_PROTO_PBTXT_IMPL_H */
