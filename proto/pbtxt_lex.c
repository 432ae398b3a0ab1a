/* cortado: the lexer of the protobuf text format reader (pbtxt.c).
 *
 * Design note
 * -----------
 * Tokens are identifiers, numbers (decimal, 0x hex, 0 octal, floats with
 * exponent and `f` suffix), string literals in single or double quotes
 * (which may not cross a line) and the one-character symbols
 * { } < > : ; , [ ] -. Blank space and `#` comments to the end of the line
 * are skipped. Each token records its line and column (both from 1,
 * columns counted in bytes) so the parser can report "line L, column C:
 * <what>". A number that runs into a letter or '.' is an error, as in
 * C++'s tokenizer. String literals are kept raw; the parser decodes them
 * with ct__pbtxt_decode_string, which understands \n \t \r \a \b \f
 * \v \\ \' \" \? \ooo (up to 3 octal digits, at most \377), \xHH
 * (1 or 2 hex digits) and \uXXXX / \UXXXXXXXX (as UTF-8).
 *
 * Numbers go through strtod, which follows LC_NUMERIC; as in protobuf's
 * own NoLocaleStrtod, a '.' the locale does not use is mapped to its radix
 * before retrying.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alloc.h"
#include "proto/pbtxt_impl.h"

/* ---- numbers without locale surprises ---- */

/* Parses s[0..n) (no sign, no suffix) as a double. False when the text is
 * not entirely a number. */
bool ct__pbtxt_parse_double(const char *s, size_t n, double *out)
{
    char buf[128];
    const char *radix = localeconv()->decimal_point;
    char *end;
    size_t i;

    if (n == 0 || n >= sizeof(buf) - 8)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, &end);
    if (end == buf + n)
        return true;
    /* strtod stopped at '.', which this locale does not use as radix. */
    if (*end != '.' || radix == NULL || strlen(radix) != 1)
        return false;
    for (i = 0; i < n; i++)
        if (buf[i] == '.')
            buf[i] = radix[0];
    *out = strtod(buf, &end);
    return end == buf + n;
}

/* ---- lexer ---- */

int ct__pbtxt_error(struct ct__pbtxt_parser *p, int line, int col,
                    const char *fmt, ...)
{
    char what[CT_STATUS_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return ct_status_setf(p->st, CT_EPARSE, "line %d, column %d: %s", line, col,
                          what);
}

int ct__pbtxt_enomem(struct ct__pbtxt_parser *p)
{
    return ct_status_setf(p->st, CT_ENOMEM,
                          "out of memory parsing text format (line %d)",
                          p->tok.line);
}

/* Describes a token for "found ..." in messages. */
const char *ct__pbtxt_tok_desc(const struct ct__pbtxt_tok *t, char *buf,
                               size_t n)
{
    if (t->kind == CT__TOK_EOF)
        return "end of input";
    snprintf(buf, n, "'%.*s%s'", (int)(t->len > 32 ? 32 : t->len), t->text,
             t->len > 32 ? "..." : "");
    return buf;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || ct__pbtxt_is_digit(c);
}

static int lex_number(struct ct__pbtxt_parser *p, size_t i, size_t *end,
                      enum ct__pbtxt_tok_kind *kind)
{
    const char *s = p->s;
    size_t j = i, k;
    int col = (int)(i - p->line_start) + 1;

    *kind = CT__TOK_INT;
    if (s[j] == '0' && j + 1 < p->len && (s[j + 1] | 0x20) == 'x') {
        j += 2;
        for (k = j; j < p->len && ct__pbtxt_is_hex(s[j]); j++)
            ;
        if (j == k)
            return ct__pbtxt_error(p, p->line, col,
                                   "'0x' must be followed by hex digits");
    } else {
        while (j < p->len && ct__pbtxt_is_digit(s[j]))
            j++;
        if (j < p->len && s[j] == '.') {
            *kind = CT__TOK_FLOAT;
            for (j++; j < p->len && ct__pbtxt_is_digit(s[j]); j++)
                ;
        }
        if (j < p->len && (s[j] | 0x20) == 'e') {
            *kind = CT__TOK_FLOAT;
            j++;
            if (j < p->len && (s[j] == '+' || s[j] == '-'))
                j++;
            for (k = j; j < p->len && ct__pbtxt_is_digit(s[j]); j++)
                ;
            if (j == k)
                return ct__pbtxt_error(p, p->line, col,
                                       "exponent of '%.*s' has no digits",
                                       (int)(j - i), s + i);
        }
        if (j < p->len && (s[j] | 0x20) == 'f') {
            *kind = CT__TOK_FLOAT;
            j++;
        }
    }
    if (j < p->len && (is_ident_char(s[j]) || s[j] == '.'))
        return ct__pbtxt_error(
            p, p->line, col,
            "invalid number: '%.*s' runs into '%c' (need space "
            "between a number and what follows)",
            (int)(j - i), s + i, s[j]);
    *end = j;
    return CT_OK;
}

/* Reads the next token into p->tok. */
int ct__pbtxt_lex(struct ct__pbtxt_parser *p)
{
    const char *s = p->s;
    size_t i = p->pos, j = p->pos;
    struct ct__pbtxt_tok *t = &p->tok;
    char c;
    int rc;

    while (i < p->len) {
        c = s[i];
        if (c == '\n') {
            i++;
            p->line++;
            p->line_start = i;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\v' ||
                   c == '\f') {
            i++;
        } else if (c == '#') {
            while (i < p->len && s[i] != '\n')
                i++;
        } else {
            break;
        }
    }
    t->line = p->line;
    t->col = (int)(i - p->line_start) + 1;
    t->text = s + i;
    if (i >= p->len) {
        t->kind = CT__TOK_EOF;
        t->len = 0;
        p->pos = i;
        return CT_OK;
    }
    c = s[i];
    if (is_ident_start(c)) {
        for (j = i + 1; j < p->len && is_ident_char(s[j]); j++)
            ;
        t->kind = CT__TOK_IDENT;
    } else if (ct__pbtxt_is_digit(c) ||
               (c == '.' && i + 1 < p->len && ct__pbtxt_is_digit(s[i + 1]))) {
        rc = lex_number(p, i, &j, &t->kind);
        if (rc != CT_OK)
            return rc;
    } else if (c == '"' || c == '\'') {
        for (j = i + 1; j < p->len && s[j] != c; j++) {
            if (s[j] == '\\' && j + 1 < p->len)
                j++;
            if (s[j] == '\n')
                break;
        }
        if (j >= p->len || s[j] != c)
            return ct__pbtxt_error(p, t->line, t->col,
                                   "string literal is not closed on its line");
        j++;
        t->kind = CT__TOK_STRING;
    } else if (c != '\0' && strchr("{}<>:;,[]-", c) != NULL) {
        j = i + 1;
        t->kind = CT__TOK_SYM;
    } else if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) {
        return ct__pbtxt_error(p, t->line, t->col, "unexpected character '%c'",
                               c);
    } else {
        return ct__pbtxt_error(p, t->line, t->col, "unexpected byte 0x%02x",
                               (unsigned char)c);
    }
    t->len = j - i;
    p->pos = j;
    return CT_OK;
}

static int buf_put(struct ct__pbtxt_parser *p, const void *data, size_t n)
{
    if (n == 0)
        return CT_OK; /* data may be NULL, and memcpy must not see it */
    if (ct__grow(&p->buf, &p->buf_cap, p->buf_len + n, 1) != CT_OK)
        return ct__pbtxt_enomem(p);
    memcpy((char *)p->buf + p->buf_len, data, n);
    p->buf_len += n;
    return CT_OK;
}

/* Encodes a \u or \U code point as UTF-8. */
static int put_utf8(struct ct__pbtxt_parser *p, uint32_t cp)
{
    uint8_t b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xc0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xe0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xf0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_put(p, b, n);
}

int ct__pbtxt_decode_string(struct ct__pbtxt_parser *p,
                            const struct ct__pbtxt_tok *t)
{
    static const char simple_from[] = "ntrabfv\\'\"?";
    static const char simple_to[] = "\n\t\r\a\b\f\v\\'\"?";
    const char *s = t->text + 1;
    size_t n = t->len - 2, i = 0;
    int rc;

    while (i < n) {
        size_t run = i;
        uint8_t byte;
        int col;
        while (run < n && s[run] != '\\')
            run++;
        rc = buf_put(p, s + i, run - i);
        if (rc != CT_OK)
            return rc;
        if (run == n)
            break;
        col = t->col + 1 + (int)run;
        i = run + 1; /* past the backslash; the lexer saw a char after it */
        /* Single-character escapes map through these two strings. */
        if (s[i] != '\0' && strchr(simple_from, s[i]) != NULL) {
            byte = (uint8_t)simple_to[strchr(simple_from, s[i]) - simple_from];
            i++;
            rc = buf_put(p, &byte, 1);
            if (rc != CT_OK)
                return rc;
            continue;
        }
        switch (s[i]) {
        case 'x':
        case 'X': {
            unsigned v = 0, k;
            for (k = 0; k < 2 && i + 1 < n && ct__pbtxt_is_hex(s[i + 1]);
                 k++, i++)
                v = v * 16 + (unsigned)ct__pbtxt_hex_value(s[i + 1]);
            if (k == 0)
                return ct__pbtxt_error(p, t->line, col,
                                       "\\x must be followed by hex digits");
            byte = (uint8_t)v;
            break;
        }
        case 'u':
        case 'U': {
            unsigned want = s[i] == 'u' ? 4 : 8, k;
            uint32_t cp = 0;
            for (k = 0; k < want; k++) {
                if (i + 1 + k >= n || !ct__pbtxt_is_hex(s[i + 1 + k]))
                    return ct__pbtxt_error(p, t->line, col,
                                           "\\%c needs %u hex digits", s[i],
                                           want);
                cp = cp * 16 + (uint32_t)ct__pbtxt_hex_value(s[i + 1 + k]);
            }
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return ct__pbtxt_error(
                    p, t->line, col,
                    "\\%c escape is not a Unicode scalar value", s[i]);
            i += want + 1;
            rc = put_utf8(p, cp);
            if (rc != CT_OK)
                return rc;
            continue;
        }
        default:
            if (s[i] >= '0' && s[i] <= '7') {
                unsigned v = (unsigned)(s[i] - '0'), k;
                for (k = 1;
                     k < 3 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7';
                     k++, i++)
                    v = v * 8 + (unsigned)(s[i + 1] - '0');
                if (v > 0xff)
                    return ct__pbtxt_error(p, t->line, col,
                                           "octal escape is larger than \\377");
                byte = (uint8_t)v;
                break;
            }
            return ct__pbtxt_error(p, t->line, col,
                                   "invalid escape sequence '\\%c'", s[i]);
        }
        i++;
        rc = buf_put(p, &byte, 1);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}
