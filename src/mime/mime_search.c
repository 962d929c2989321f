/* mime_search: what IMAP SEARCH compares (RFC 3501 6.4.4, RFC 9051 6.4.4):
 * header fields decoded from RFC 2047 (GMime), body text with transfer
 * encodings undone and text parts converted to UTF-8 from their charset
 * (GMime's iconv wrappers; unknown charsets and undeclared 8-bit text go
 * through GMime's 8-bit fallback), and the Date: field as a time in its own
 * zone.
 *
 * Matching is substring after Unicode simple case folding of both sides
 * (GLib g_utf8_casefold), which covers i;ascii-casemap and is close to
 * i;unicode-casemap. Parts that are not text are searched in their decoded
 * bytes with ASCII case folding, and only for ASCII needles. */
#include "mime/mime_int.h"
#include "core/xalloc.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

/* Case-folded UTF-8 of S[0..n): invalid sequences become U+FFFD, NULs
 * spaces. g_malloc'd, NUL-terminated, *OUTLEN its length. */
static char *fold(const char *s, size_t n, size_t *outlen)
{
    char *valid;
    if (memchr(s, 0, n)) {
        /* g_utf8_make_valid keeps NULs, which would end the string early. */
        char *copy = xmalloc(n + 1);
        for (size_t i = 0; i < n; i++)
            copy[i] = s[i] ? s[i] : ' ';
        copy[n] = '\0';
        valid = g_utf8_make_valid(copy, (gssize)n);
        free(copy);
    } else {
        valid = g_utf8_make_valid(s, (gssize)n);
    }
    char *f = g_utf8_casefold(valid, -1);
    g_free(valid);
    *outlen = strlen(f);
    return f;
}

static int has(const char *hay, size_t hl, const char *needle, size_t nl)
{
    return nl == 0 || (hl >= nl && memmem(hay, hl, needle, nl) != NULL);
}

static int folded_contains(const char *s, size_t n, const char *needle, size_t nl)
{
    size_t fl;
    char *f = fold(s, n, &fl);
    int r = has(f, fl, needle, nl);
    g_free(f);
    return r;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* ASCII case-insensitive search; NEEDLE is lower case already. */
static int ascii_contains(const char *hay, size_t hl, const char *needle, size_t nl)
{
    if (nl == 0)
        return 1;
    for (size_t i = 0; i + nl <= hl; i++) {
        if (lower((unsigned char)hay[i]) != (unsigned char)needle[0])
            continue;
        size_t k = 1;
        while (k < nl && lower((unsigned char)hay[i + k]) == (unsigned char)needle[k])
            k++;
        if (k == nl)
            return 1;
    }
    return 0;
}

/* 1 when S[0..n) is printable ASCII on one line without an encoded-word:
 * unfolding, RFC 2047 decoding and Unicode case folding then change
 * nothing but the case of A-Z and the blanks around it. */
static int plain_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f || (c == '=' && i + 1 < n && s[i + 1] == '?'))
            return 0;
    }
    return 1;
}

/* The fast path for a plain ASCII value (plain_ascii): trimmed as
 * mime_unfold trims, compared with the ASCII-lowered NEEDLE. */
static int plain_contains(const char *v, size_t n, const char *needle, size_t nl)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return ascii_contains(v, n, needle, nl);
}

char *mime_search_fold(const char *needle, size_t *len_r)
{
    size_t n;
    char *g = fold(needle, strlen(needle), &n);
    char *out = xmalloc(n + 1);
    memcpy(out, g, n + 1);
    g_free(g);
    *len_r = n;
    return out;
}

/* A header value unfolded and decoded from RFC 2047 to UTF-8 (g_malloc'd). */
static char *decoded_at(const char *data, const struct mime_hfield *f)
{
    size_t len;
    char *v = mime_unfold(data + f->value_off, f->value_len, &len);
    char *d = g_mime_utils_header_decode_text(NULL, v);
    free(v);
    return d;
}

int mime_hdrblock_contains(const char *data, size_t off, size_t len, const char *name,
                           const char *folded, size_t nl)
{
    int ascii_needle = plain_ascii(folded, nl);   /* folded: lower case already */
    size_t pos = off;
    struct mime_hfield f;
    while (mime_hdr_next(data, off, len, &pos, &f)) {
        if (!mime_name_eq(data + f.name_off, f.name_len, name))
            continue;
        if (nl == 0)
            return 1;
        const char *v = data + f.value_off;
        int found;
        if (plain_ascii(v, f.value_len)) {
            /* an ASCII value cannot hold a needle that folds to non-ASCII */
            found = ascii_needle && plain_contains(v, f.value_len, folded, nl);
        } else {
            char *d = decoded_at(data, &f);
            found = folded_contains(d, strlen(d), folded, nl);
            g_free(d);
        }
        if (found)
            return 1;
    }
    return 0;
}

int mime_header_contains(const struct mime_msg *m, const char *name, const char *needle)
{
    size_t nl;
    char *fn = mime_search_fold(needle, &nl);
    const struct mime_node *n = &m->nodes[0];
    int found = mime_hdrblock_contains(m->data, n->hdr_off, n->hdr_len, name, fn, nl);
    free(fn);
    return found;
}

/* Every field of node N's header, decoded, as "Name: value". */
static int header_text_contains(const struct mime_msg *m, const struct mime_node *n,
                                const char *needle, size_t nl)
{
    size_t pos = n->hdr_off;
    struct mime_hfield f;
    while (mime_hdr_next(m->data, n->hdr_off, n->hdr_len, &pos, &f)) {
        char *d = decoded_at(m->data, &f);
        size_t dl = strlen(d);
        char *line = xmalloc(f.name_len + 2 + dl + 1);
        memcpy(line, m->data + f.name_off, f.name_len);
        memcpy(line + f.name_len, ": ", 2);
        memcpy(line + f.name_len + 2, d, dl + 1);
        g_free(d);
        int r = folded_contains(line, f.name_len + 2 + dl, needle, nl);
        free(line);
        if (r)
            return 1;
    }
    return 0;
}

/* S in CHARSET converted to UTF-8 with iconv; undecodable bytes become
 * U+FFFD. NULL when iconv does not know the charset. g_malloc'd. */
static char *convert(const char *s, size_t n, const char *charset, size_t *outlen)
{
    iconv_t cd = g_mime_iconv_open("UTF-8", charset);
    if (cd == (iconv_t)-1)
        return NULL;
    size_t cap = n * 4 + 16, used = 0;
    char *out = g_malloc(cap);
    char *in = (char *)s;
    size_t inleft = n;
    while (inleft > 0) {
        char *op = out + used;
        size_t outleft = cap - used - 4;
        size_t r = iconv(cd, &in, &inleft, &op, &outleft);
        used = (size_t)(op - out);
        if (r != (size_t)-1)
            break;
        if (errno == E2BIG) {
            cap *= 2;
            out = g_realloc(out, cap);
        } else {
            /* EILSEQ or EINVAL (truncated at the end): U+FFFD, skip one byte. */
            if (cap - used < 8) {
                cap *= 2;
                out = g_realloc(out, cap);
            }
            memcpy(out + used, "\xef\xbf\xbd", 3);
            used += 3;
            in++;
            inleft--;
        }
    }
    g_mime_iconv_close(cd);
    out[used] = '\0';
    *outlen = used;
    return out;
}

/* The UTF-8 text of a decoded text part (g_malloc'd). */
static char *text_utf8(const struct mime_msg *m, const struct mime_node *n, const char *s,
                       size_t len, size_t *outlen)
{
    char *charset = NULL;
    if (n->ct_src == MIME_CT_HEADER) {
        struct mime_params p = {0};
        const char *t, *st;
        size_t tl, sl;
        mime_ctype_parse(m->data + n->field_off[MF_CONTENT_TYPE], n->field_len[MF_CONTENT_TYPE], &t,
                         &tl, &st, &sl, &p);
        const char *c = mime_params_get(&p, "charset");
        if (c && *c)
            charset = xstrdup(c);
        mime_params_free(&p);
    }
    char *out = NULL;
    if (charset && g_ascii_strcasecmp(charset, "us-ascii") != 0 &&
        g_ascii_strcasecmp(charset, "utf-8") != 0 && g_ascii_strcasecmp(charset, "utf8") != 0)
        out = convert(s, len, charset, outlen);
    free(charset);
    if (out)
        return out;
    /* ASCII-compatible text from here on: NULs would end it early. */
    char *copy = g_malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        copy[i] = s[i] ? s[i] : ' ';
    copy[len] = '\0';
    if (g_utf8_validate(copy, (gssize)len, NULL)) {
        *outlen = len;
        return copy;
    }
    out = g_mime_utils_decode_8bit(NULL, copy, len);
    g_free(copy);
    *outlen = strlen(out);
    return out;
}

struct needle {
    const char *folded;     /* case-folded UTF-8 */
    size_t len;
    const char *ascii;      /* lower-case ASCII, NULL when the needle is not ASCII */
};

static int node_contains(const struct mime_msg *m, int idx, const struct needle *nd)
{
    const struct mime_node *n = &m->nodes[idx];
    if (n->kind == MIME_MULTIPART) {
        for (int c = n->first_child; c >= 0; c = m->nodes[c].next_sibling)
            if (node_contains(m, c, nd))
                return 1;
        return 0;
    }
    if (n->kind == MIME_MESSAGE) {
        int e = n->first_child;
        return header_text_contains(m, &m->nodes[e], nd->folded, nd->len) ||
               node_contains(m, e, nd);
    }
    char *dec;
    size_t dl;
    if (mime_decode_body(m, n, &dec, &dl) != 0) {
        /* Unknown transfer encoding: the bytes as stored. */
        dec = xmalloc(n->body_len + 1);
        memcpy(dec, m->data + n->body_off, n->body_len);
        dl = n->body_len;
    }
    int r = 0;
    if (mime_is_text(n)) {
        size_t ul;
        char *u = text_utf8(m, n, dec, dl, &ul);
        r = folded_contains(u, ul, nd->folded, nd->len);
        g_free(u);
    } else if (nd->ascii) {
        r = ascii_contains(dec, dl, nd->ascii, nd->len);
    }
    free(dec);
    return r;
}

int mime_text_contains(const struct mime_msg *m, const char *needle, int headers)
{
    struct needle nd;
    size_t raw = strlen(needle);
    char *f = fold(needle, raw, &nd.len);
    nd.folded = f;
    int ascii = 1;
    for (size_t i = 0; i < nd.len; i++)
        ascii &= (unsigned char)f[i] < 0x80;
    nd.ascii = ascii ? f : NULL;
    int r = nd.len == 0 || (headers && header_text_contains(m, &m->nodes[0], f, nd.len)) ||
            node_contains(m, 0, &nd);
    g_free(f);
    return r;
}

int mime_sent_date(const struct mime_msg *m, time_t *t, int *tz_offset_minutes)
{
    const struct mime_node *n = &m->nodes[0];
    if (n->field_off[MF_DATE] == MIME_NONE)
        return 1;
    size_t len;
    char *v = mime_unfold(m->data + n->field_off[MF_DATE], n->field_len[MF_DATE], &len);
    GDateTime *dt = len ? g_mime_utils_header_decode_date(v) : NULL;
    free(v);
    if (!dt)
        return 1;
    *t = (time_t)g_date_time_to_unix(dt);
    *tz_offset_minutes = (int)(g_date_time_get_utc_offset(dt) / G_TIME_SPAN_MINUTE);
    g_date_time_unref(dt);
    return 0;
}
