/* imap_bodystruct: the non-extensible BODY structure (RFC 3501 7.4.2 BODY,
 * "BODYSTRUCTURE without extension data") derived from the extended
 * BODYSTRUCTURE string cached in the index, so that FETCH BODY needs no
 * file read either.
 *
 * Grammar used (RFC 3501 9): a body is "(" 1part ")" or "(" 1*body SP
 * subtype [ext] ")". A 1part keeps its first 7 elements (type, subtype,
 * params, id, description, encoding, octets), 8 for TEXT (+ lines) and 10
 * for MESSAGE/RFC822 and MESSAGE/GLOBAL (+ envelope, body, lines; the
 * inner body is converted too). Everything after is extension data and is
 * left out. Elements are quoted strings, literals, NIL, numbers or lists. */
#include "imap/imap_fetch_int.h"
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Nesting bound for the walk (message/rfc822 inside multiparts, lists). */
#define BS_MAX_DEPTH 100

struct bs {
    const char *s;
    size_t len, pos;
    struct buf *out;
};

static void skip_spaces(struct bs *b)
{
    while (b->pos < b->len && b->s[b->pos] == ' ')
        b->pos++;
}

/* Moves past one element. 0 ok, -2 malformed. */
static int skip_element(struct bs *b, int depth)
{
    if (depth > BS_MAX_DEPTH || b->pos >= b->len)
        return -2;
    char c = b->s[b->pos];
    if (c == '(') {
        b->pos++;
        for (;;) {
            skip_spaces(b);
            if (b->pos >= b->len)
                return -2;
            if (b->s[b->pos] == ')') {
                b->pos++;
                return 0;
            }
            if (skip_element(b, depth + 1) < 0)
                return -2;
        }
    }
    if (c == '"') {
        for (b->pos++; b->pos < b->len; b->pos++) {
            if (b->s[b->pos] == '\\')
                b->pos++;
            else if (b->s[b->pos] == '"') {
                b->pos++;
                return 0;
            }
        }
        return -2;
    }
    if (c == '{') {
        char *end;
        unsigned long long n = strtoull(b->s + b->pos + 1, &end, 10);
        size_t after = (size_t)(end - b->s);
        if (end == b->s + b->pos + 1 || after + 3 > b->len || memcmp(end, "}\r\n", 3) != 0 ||
            n > b->len - (after + 3))
            return -2;
        b->pos = after + 3 + (size_t)n;
        return 0;
    }
    if (c == ')')
        return -2;
    size_t start = b->pos;
    while (b->pos < b->len && b->s[b->pos] != ' ' && b->s[b->pos] != '(' &&
           b->s[b->pos] != ')')
        b->pos++;
    return b->pos > start ? 0 : -2;
}

/* Copies one element to the output. */
static int copy_element(struct bs *b, int depth)
{
    size_t start = b->pos;
    if (skip_element(b, depth) < 0)
        return -2;
    return buf_append(b->out, b->s + start, b->pos - start) < 0 ? -1 : 0;
}

/* Skips the rest of a list up to and past its ")". */
static int skip_rest(struct bs *b, int depth)
{
    for (;;) {
        skip_spaces(b);
        if (b->pos >= b->len)
            return -2;
        if (b->s[b->pos] == ')') {
            b->pos++;
            return 0;
        }
        if (skip_element(b, depth) < 0)
            return -2;
    }
}

static int quoted_is(const struct bs *b, size_t start, size_t end, const char *word)
{
    size_t n = strlen(word);
    return end - start == n + 2 && b->s[start] == '"' &&
           strncasecmp(b->s + start + 1, word, n) == 0 && b->s[end - 1] == '"';
}

static int convert_body(struct bs *b, int depth);

static int convert_multipart(struct bs *b, int depth)
{
    int rc;
    /* 1*body: the parts follow each other without a space (RFC 3501 9) */
    while (b->pos < b->len && b->s[b->pos] == '(') {
        if ((rc = convert_body(b, depth + 1)) != 0)
            return rc;
        skip_spaces(b);
    }
    if (buf_append(b->out, " ", 1) < 0)
        return -1;
    if ((rc = copy_element(b, depth)) != 0)   /* the subtype */
        return rc;
    return skip_rest(b, depth);
}

static int convert_onepart(struct bs *b, int depth)
{
    /* find the type and subtype to know how many fields are basic */
    size_t save = b->pos, t0 = b->pos;
    if (skip_element(b, depth) < 0)
        return -2;
    size_t t1 = b->pos;
    skip_spaces(b);
    size_t s0 = b->pos;
    if (skip_element(b, depth) < 0)
        return -2;
    size_t s1 = b->pos;
    b->pos = save;
    int is_msg = quoted_is(b, t0, t1, "MESSAGE") &&
                 (quoted_is(b, s0, s1, "RFC822") || quoted_is(b, s0, s1, "GLOBAL"));
    int nfields = is_msg ? 10 : quoted_is(b, t0, t1, "TEXT") ? 8 : 7;
    for (int i = 0; i < nfields; i++) {
        skip_spaces(b);
        if (b->pos >= b->len || b->s[b->pos] == ')')
            return -2;
        if (i && buf_append(b->out, " ", 1) < 0)
            return -1;
        int rc = (is_msg && i == 8) ? convert_body(b, depth + 1) : copy_element(b, depth);
        if (rc != 0)
            return rc;
    }
    return skip_rest(b, depth);
}

static int convert_body(struct bs *b, int depth)
{
    if (depth > BS_MAX_DEPTH || b->pos >= b->len || b->s[b->pos] != '(')
        return -2;
    b->pos++;
    if (buf_append(b->out, "(", 1) < 0)
        return -1;
    skip_spaces(b);
    int rc = (b->pos < b->len && b->s[b->pos] == '(') ? convert_multipart(b, depth)
                                                      : convert_onepart(b, depth);
    if (rc != 0)
        return rc;
    return buf_append(b->out, ")", 1) < 0 ? -1 : 0;
}

int imap_body_from_bodystructure(const char *bs, size_t len, struct buf *out)
{
    size_t start = out->len;
    struct bs b = { .s = bs, .len = len, .pos = 0, .out = out };
    int rc = convert_body(&b, 0);
    if (rc == 0) {
        skip_spaces(&b);
        if (b.pos != len)
            rc = -2;
    }
    if (rc != 0)
        imap_out_truncate(out, start);
    return rc;
}
