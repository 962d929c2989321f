/* mime_hdr: header fields and the structured MIME values in them.
 *
 * Iterates the fields of a header range (RFC 5322 2.2: a field is a line
 * "name: value" plus the continuation lines that start with whitespace),
 * unfolds values, and parses Content-Type and Content-Disposition values
 * (RFC 2045 5.1, RFC 2183) with their parameters, joining RFC 2231
 * continuations (name*0, name*1*...) as IMAP servers do. Everything is
 * lenient: junk between parameters is skipped, unquoted values may hold
 * characters RFC 2045 reserves (boundary==_x is common), an unterminated
 * quoted string or comment ends at the end of the value. */
#include "mime/mime_int.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_wsp(char c) { return c == ' ' || c == '\t'; }

int mime_name_eq(const char *s, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (k != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)name[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a + 32);
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b + 32);
        if (a != b)
            return 0;
    }
    return 1;
}

/* The end of the line starting at POS (just past its LF, or END). */
static size_t line_end(const char *data, size_t pos, size_t end)
{
    const char *lf = memchr(data + pos, '\n', end - pos);
    return lf ? (size_t)(lf - data) + 1 : end;
}

int mime_hdr_next(const char *data, size_t off, size_t len, size_t *pos, struct mime_hfield *f)
{
    size_t end = off + len;
    size_t p = *pos;
    while (p < end) {
        size_t ls = p, next = line_end(data, p, end);
        if (data[ls] == '\n' || (data[ls] == '\r' && ls + 1 < end && data[ls + 1] == '\n')) {
            *pos = end; /* the blank line: the header ends */
            return 0;
        }
        p = next;
        if (is_wsp(data[ls]))
            continue; /* a continuation without a field */
        const char *colon = memchr(data + ls, ':', next - ls);
        if (!colon)
            continue; /* not a field */
        size_t c = (size_t)(colon - data);
        size_t ne = c;
        while (ne > ls && is_wsp(data[ne - 1]))
            ne--;
        while (p < end && is_wsp(data[p]))
            p = line_end(data, p, end);
        if (ne == ls)
            continue; /* ": value" */
        size_t ve = p;
        if (ve > c + 1 && data[ve - 1] == '\n') {
            ve--;
            if (ve > c + 1 && data[ve - 1] == '\r')
                ve--;
        }
        f->name_off = ls;
        f->name_len = ne - ls;
        f->value_off = c + 1;
        f->value_len = ve - (c + 1);
        f->line_off = ls;
        f->line_len = p - ls;
        *pos = p;
        return 1;
    }
    *pos = end;
    return 0;
}

char *mime_unfold(const char *v, size_t len, size_t *n)
{
    char *out = xmalloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '\0' || c == '\n')
            continue;
        if (c == '\r' && i + 1 < len && v[i + 1] == '\n')
            continue;
        out[k++] = c;
    }
    size_t s = 0;
    while (s < k && is_wsp(out[s]))
        s++;
    while (k > s && (is_wsp(out[k - 1]) || out[k - 1] == '\r'))
        k--;
    if (s)
        memmove(out, out + s, k - s);
    k -= s;
    out[k] = '\0';
    *n = k;
    return out;
}

/* ---- structured values ---- */

struct cur {
    const char *s;
    size_t n, i;
};

/* RFC 5322 CFWS (whitespace and nested comments). */
static void skip_cfws(struct cur *c)
{
    while (c->i < c->n) {
        char ch = c->s[c->i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            c->i++;
        } else if (ch == '(') {
            int depth = 0;
            while (c->i < c->n) {
                ch = c->s[c->i++];
                if (ch == '\\' && c->i < c->n)
                    c->i++;
                else if (ch == '(')
                    depth++;
                else if (ch == ')' && --depth == 0)
                    break;
            }
        } else {
            break;
        }
    }
}

/* RFC 2045 5.1 token characters; 8-bit bytes are accepted too. */
static int is_tchar(unsigned char ch)
{
    if (ch <= 32 || ch == 127)
        return 0;
    return strchr("()<>@,;:\\\"/[]?=", ch) == NULL;
}

static size_t take_token(struct cur *c, const char **tok)
{
    size_t st = c->i;
    while (c->i < c->n && is_tchar((unsigned char)c->s[c->i]))
        c->i++;
    *tok = c->s + st;
    return c->i - st;
}

static void skip_to_semicolon(struct cur *c)
{
    int inq = 0;
    while (c->i < c->n) {
        char ch = c->s[c->i];
        if (inq && ch == '\\')
            c->i++;
        else if (ch == '"')
            inq = !inq;
        else if (ch == ';' && !inq)
            return;
        c->i++;
    }
}

static void params_add(struct mime_params *p, const char *name, size_t nlen, char *value)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4;
        p->v = xrealloc(p->v, xmul((size_t)p->cap, sizeof *p->v));
    }
    p->v[p->n].name = xstrndup(name, nlen);
    p->v[p->n].value = value;
    p->n++;
}

/* A quoted-string at C (on the opening quote), unescaped. */
static char *take_quoted(struct cur *c)
{
    char *out = xmalloc(c->n - c->i + 1);
    size_t k = 0;
    c->i++;
    while (c->i < c->n) {
        char ch = c->s[c->i++];
        if (ch == '"')
            break;
        if (ch == '\\' && c->i < c->n)
            ch = c->s[c->i++];
        if (ch == '\r' || ch == '\n' || ch == '\0')
            continue; /* folding inside the quotes */
        out[k++] = ch;
    }
    out[k] = '\0';
    return out;
}

/* An unquoted value: lenient, anything up to ';', whitespace or a comment. */
static char *take_bare(struct cur *c)
{
    size_t st = c->i;
    while (c->i < c->n) {
        unsigned char ch = (unsigned char)c->s[c->i];
        if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '"' ||
            ch == '(' || ch == '\0')
            break;
        c->i++;
    }
    return xstrndup(c->s + st, c->i - st);
}

static void params_join(struct mime_params *p);

static void parse_params(struct cur *c, struct mime_params *p)
{
    for (;;) {
        skip_cfws(c);
        if (c->i >= c->n)
            break;
        if (c->s[c->i] != ';') {
            skip_to_semicolon(c);
            continue;
        }
        c->i++;
        skip_cfws(c);
        const char *name;
        size_t nlen = take_token(c, &name);
        skip_cfws(c);
        if (nlen == 0 || c->i >= c->n || c->s[c->i] != '=') {
            skip_to_semicolon(c);
            continue;
        }
        c->i++;
        skip_cfws(c);
        char *value = (c->i < c->n && c->s[c->i] == '"') ? take_quoted(c) : take_bare(c);
        params_add(p, name, nlen, value);
    }
    params_join(p);
}

/* "name*3" or "name*3*": 1 with the base length, the index and whether
 * the segment is extended (RFC 2231 3, 4). */
static int continuation(const char *name, size_t *base, int *idx, int *ext)
{
    const char *star = strchr(name, '*');
    if (!star || star == name || star[1] < '0' || star[1] > '9')
        return 0;
    const char *d = star + 1;
    int v = 0;
    while (*d >= '0' && *d <= '9') {
        if (v > 9999)
            return 0;
        v = v * 10 + (*d - '0');
        d++;
    }
    if (d - (star + 1) > 1 && star[1] == '0')
        return 0; /* RFC 2231: no leading zeros */
    *ext = 0;
    if (*d == '*') {
        *ext = 1;
        d++;
    }
    if (*d)
        return 0;
    *base = (size_t)(star - name);
    *idx = v;
    return 1;
}

/* RFC 2231 attribute-char: what an extended value may hold unescaped. */
static int is_attr_char(unsigned char ch)
{
    return is_tchar(ch) && ch != '*' && ch != '\'' && ch != '%' && ch < 128;
}

static void append_seg(char **out, size_t *len, size_t *cap, const char *v, int escape)
{
    size_t need = *len + strlen(v) * 3 + 1;
    if (need > *cap) {
        *cap = need * 2;
        *out = xrealloc(*out, *cap);
    }
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if (escape && !is_attr_char(ch)) {
            static const char hex[] = "0123456789ABCDEF";
            (*out)[(*len)++] = '%';
            (*out)[(*len)++] = hex[ch >> 4];
            (*out)[(*len)++] = hex[ch & 15];
        } else {
            (*out)[(*len)++] = (char)ch;
        }
    }
    (*out)[*len] = '\0';
}

/* Joins the segments of one base name that start at index 0 and follow
 * without gaps into one parameter (name, or name* when segment 0 is
 * extended; plain segments of an extended value get %-escaped). */
static void join_base(const struct mime_params *p, int first, size_t blen, char *used,
                      struct mime_params *out)
{
    const char *bname = p->v[first].name;
    int ext0 = 0, found = 0;
    char *val = NULL;
    size_t len = 0, cap = 0;
    for (int want = 0;; want++) {
        int hit = -1, ext = 0;
        for (int i = 0; i < p->n && hit < 0; i++) {
            size_t b;
            int idx, e;
            if (!used[i] && continuation(p->v[i].name, &b, &idx, &e) && b == blen &&
                idx == want && strncasecmp(p->v[i].name, bname, blen) == 0) {
                hit = i;
                ext = e;
            }
        }
        if (hit < 0)
            break;
        if (want == 0)
            ext0 = ext;
        used[hit] = 1;
        found = 1;
        append_seg(&val, &len, &cap, p->v[hit].value, ext0 && !ext);
    }
    if (!found)
        return;
    char *name = xmalloc(blen + 2);
    memcpy(name, bname, blen);
    name[blen] = ext0 ? '*' : '\0';
    name[blen + 1] = '\0';
    params_add(out, name, strlen(name), val ? val : xstrdup(""));
    free(name);
}

static void params_join(struct mime_params *p)
{
    int any = 0;
    for (int i = 0; i < p->n && !any; i++) {
        size_t b;
        int idx, e;
        any = continuation(p->v[i].name, &b, &idx, &e);
    }
    if (!any)
        return;
    struct mime_params out = {0};
    char *used = xcalloc((size_t)p->n, 1);
    for (int i = 0; i < p->n; i++) {
        if (used[i])
            continue;
        size_t b;
        int idx, e;
        if (continuation(p->v[i].name, &b, &idx, &e) && idx == 0) {
            join_base(p, i, b, used, &out);
        } else if (!continuation(p->v[i].name, &b, &idx, &e)) {
            used[i] = 1;
            params_add(&out, p->v[i].name, strlen(p->v[i].name), xstrdup(p->v[i].value));
        }
    }
    /* Segments without a segment 0 stay as they were. */
    for (int i = 0; i < p->n; i++)
        if (!used[i])
            params_add(&out, p->v[i].name, strlen(p->v[i].name), xstrdup(p->v[i].value));
    free(used);
    mime_params_free(p);
    *p = out;
}

void mime_params_free(struct mime_params *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->v[i].name);
        free(p->v[i].value);
    }
    free(p->v);
    p->v = NULL;
    p->n = p->cap = 0;
}

const char *mime_params_get(const struct mime_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcasecmp(p->v[i].name, name) == 0)
            return p->v[i].value;
    return NULL;
}

int mime_ctype_parse(const char *s, size_t n, const char **type, size_t *type_len,
                     const char **sub, size_t *sub_len, struct mime_params *params)
{
    struct cur c = {s, n, 0};
    skip_cfws(&c);
    *type_len = take_token(&c, type);
    skip_cfws(&c);
    if (*type_len == 0 || c.i >= n || s[c.i] != '/')
        return -1;
    c.i++;
    skip_cfws(&c);
    *sub_len = take_token(&c, sub);
    if (*sub_len == 0)
        return -1;
    if (params)
        parse_params(&c, params);
    return 0;
}

int mime_disp_parse(const char *s, size_t n, const char **tok, size_t *tok_len,
                    struct mime_params *params)
{
    struct cur c = {s, n, 0};
    skip_cfws(&c);
    *tok_len = take_token(&c, tok);
    if (*tok_len == 0)
        return -1;
    if (params)
        parse_params(&c, params);
    return 0;
}

const char *mime_token(const char *s, size_t n, size_t *tok_len)
{
    struct cur c = {s, n, 0};
    const char *tok;
    skip_cfws(&c);
    *tok_len = take_token(&c, &tok);
    return *tok_len ? tok : NULL;
}
