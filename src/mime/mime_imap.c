/* mime_imap: the IMAP ENVELOPE, BODY and BODYSTRUCTURE strings (RFC 3501
 * 7.4.2 and 9 "envelope", "body"; RFC 9051 7.5.2) of a parsed message.
 *
 * Header values are sent as they appear, unfolded, with RFC 2047
 * encoded-words left encoded (clients decode them). A string is quoted
 * when it can be: no CR, LF or NUL, and 7-bit unless the session enabled
 * UTF8=ACCEPT (then valid UTF-8 may be quoted too); otherwise it is a
 * literal (NULs are dropped, a literal cannot hold them). Type, subtype,
 * encoding, disposition and parameter names are upper-cased as in RFC
 * 3501's examples; parameter values are kept as written. */
#include "mime/mime_int.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

int mime_put_nstring(struct buf *out, const char *s, size_t n, int utf8)
{
    if (!s)
        return buf_append(out, "NIL", 3);
    int quote = 1, high = 0, nul = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n')
            quote = 0;
        else if (c == 0)
            nul = 1, quote = 0;
        else if (c >= 0x80)
            high = 1;
    }
    if (quote && high && (!utf8 || !g_utf8_validate(s, (gssize)n, NULL)))
        quote = 0;
    if (quote) {
        if (buf_append(out, "\"", 1) < 0)
            return -1;
        size_t st = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\') {
                if (buf_append(out, s + st, i - st) < 0 || buf_append(out, "\\", 1) < 0)
                    return -1;
                st = i;
            }
        }
        return buf_append(out, s + st, n - st) < 0 || buf_append(out, "\"", 1) < 0 ? -1 : 0;
    }
    size_t len = n;
    if (nul)
        for (size_t i = 0; i < n; i++)
            len -= s[i] == 0;
    if (buf_appendf(out, "{%zu}\r\n", len) < 0)
        return -1;
    if (!nul)
        return buf_append(out, s, n);
    for (size_t i = 0; i < n; i++)
        if (s[i] && buf_append(out, s + i, 1) < 0)
            return -1;
    return 0;
}

/* S upper-cased (ASCII) as an IMAP string. */
static int put_upper(struct buf *out, const char *s, size_t n, int utf8)
{
    char small[64] = "";
    char *u = n < sizeof small ? small : xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        u[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
    int r = mime_put_nstring(out, u, n, utf8);
    if (u != small)
        free(u);
    return r;
}

static int sp(struct buf *out)
{
    return buf_append(out, " ", 1);
}

/* A header value of node N, unfolded, as an nstring (NIL when absent). */
static int put_field(const struct mime_msg *m, const struct mime_node *n, enum mime_field f,
                     int utf8, struct buf *out)
{
    if (n->field_off[f] == MIME_NONE)
        return buf_append(out, "NIL", 3);
    size_t len;
    char *v = mime_unfold(m->data + n->field_off[f], n->field_len[f], &len);
    int r = mime_put_nstring(out, v, len, utf8);
    free(v);
    return r;
}

static int put_addresses(const struct mime_msg *m, const struct mime_node *n, enum mime_field f,
                         int utf8, struct buf *out)
{
    if (n->field_off[f] == MIME_NONE)
        return buf_append(out, "NIL", 3);
    size_t len;
    char *v = mime_unfold(m->data + n->field_off[f], n->field_len[f], &len);
    int r = mime_addr_list_write(v, len, utf8, out);
    free(v);
    return r;
}

/* Sender and Reply-To: the From list when absent or empty (RFC 3501 7.4.2). */
static int put_addresses_or_from(const struct mime_msg *m, const struct mime_node *n,
                                 enum mime_field f, int utf8, struct buf *out)
{
    size_t before = out->len;
    if (put_addresses(m, n, f, utf8, out) < 0)
        return -1;
    if (out->len - before == 3 && memcmp(out->data + before, "NIL", 3) == 0) {
        out->len = before;
        out->data[before] = '\0';
        return put_addresses(m, n, MF_FROM, utf8, out);
    }
    return 0;
}

static int write_envelope(const struct mime_msg *m, const struct mime_node *n, int utf8,
                          struct buf *out)
{
    if (buf_append(out, "(", 1) < 0 || put_field(m, n, MF_DATE, utf8, out) < 0 || sp(out) < 0 ||
        put_field(m, n, MF_SUBJECT, utf8, out) < 0 || sp(out) < 0 ||
        put_addresses(m, n, MF_FROM, utf8, out) < 0 || sp(out) < 0 ||
        put_addresses_or_from(m, n, MF_SENDER, utf8, out) < 0 || sp(out) < 0 ||
        put_addresses_or_from(m, n, MF_REPLY_TO, utf8, out) < 0 || sp(out) < 0 ||
        put_addresses(m, n, MF_TO, utf8, out) < 0 || sp(out) < 0 ||
        put_addresses(m, n, MF_CC, utf8, out) < 0 || sp(out) < 0 ||
        put_addresses(m, n, MF_BCC, utf8, out) < 0 || sp(out) < 0 ||
        put_field(m, n, MF_IN_REPLY_TO, utf8, out) < 0 || sp(out) < 0 ||
        put_field(m, n, MF_MESSAGE_ID, utf8, out) < 0 || buf_append(out, ")", 1) < 0)
        return -1;
    return 0;
}

int mime_envelope(const struct mime_msg *m, int utf8, struct buf *out)
{
    return write_envelope(m, &m->nodes[0], utf8, out);
}

/* ---------------------------------------------------------------- BODY */

static int put_params(const struct mime_params *p, int utf8, struct buf *out)
{
    if (p->n == 0)
        return buf_append(out, "NIL", 3);
    if (buf_append(out, "(", 1) < 0)
        return -1;
    for (int i = 0; i < p->n; i++) {
        if ((i && sp(out) < 0) || put_upper(out, p->v[i].name, strlen(p->v[i].name), utf8) < 0 ||
            sp(out) < 0 || mime_put_nstring(out, p->v[i].value, strlen(p->v[i].value), utf8) < 0)
            return -1;
    }
    return buf_append(out, ")", 1);
}

/* body-fld-param of the Content-Type. */
static int put_ctype_params(const struct mime_msg *m, const struct mime_node *n, int utf8,
                            struct buf *out)
{
    if (n->ct_src == MIME_CT_DEFAULT)
        return buf_append(out, "(\"CHARSET\" \"US-ASCII\")", 22);
    if (n->ct_src != MIME_CT_HEADER)
        return buf_append(out, "NIL", 3);
    struct mime_params p = {0};
    const char *t, *s;
    size_t tl, sl;
    mime_ctype_parse(m->data + n->field_off[MF_CONTENT_TYPE], n->field_len[MF_CONTENT_TYPE], &t, &tl,
                     &s, &sl, &p);
    int r = put_params(&p, utf8, out);
    mime_params_free(&p);
    return r;
}

static int put_disposition(const struct mime_msg *m, const struct mime_node *n, int utf8,
                           struct buf *out)
{
    if (n->field_off[MF_CONTENT_DISPOSITION] == MIME_NONE)
        return buf_append(out, "NIL", 3);
    struct mime_params p = {0};
    const char *tok;
    size_t tl;
    int r;
    if (mime_disp_parse(m->data + n->field_off[MF_CONTENT_DISPOSITION],
                        n->field_len[MF_CONTENT_DISPOSITION], &tok, &tl, &p) < 0)
        r = buf_append(out, "NIL", 3);
    else
        r = buf_append(out, "(", 1) < 0 || put_upper(out, tok, tl, utf8) < 0 || sp(out) < 0 ||
                    put_params(&p, utf8, out) < 0 || buf_append(out, ")", 1) < 0
                ? -1
                : 0;
    mime_params_free(&p);
    return r;
}

/* body-fld-lang: NIL, one string, or a list (Content-Language, RFC 3282). */
static int put_language(const struct mime_msg *m, const struct mime_node *n, int utf8,
                        struct buf *out)
{
    if (n->field_off[MF_CONTENT_LANGUAGE] == MIME_NONE)
        return buf_append(out, "NIL", 3);
    size_t len;
    char *v = mime_unfold(m->data + n->field_off[MF_CONTENT_LANGUAGE],
                          n->field_len[MF_CONTENT_LANGUAGE], &len);
    /* Tags are the runs between commas and whitespace. */
    size_t starts[64], lens[64];
    int count = 0;
    for (size_t i = 0; i < len && count < 64;) {
        while (i < len && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t st = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i > st) {
            starts[count] = st;
            lens[count++] = i - st;
        }
    }
    int r = 0;
    if (count == 0)
        r = buf_append(out, "NIL", 3);
    else if (count == 1)
        r = mime_put_nstring(out, v + starts[0], lens[0], utf8);
    else {
        r = buf_append(out, "(", 1);
        for (int i = 0; i < count && r == 0; i++)
            r = (i && sp(out) < 0) || mime_put_nstring(out, v + starts[i], lens[i], utf8) < 0 ? -1 : 0;
        if (r == 0)
            r = buf_append(out, ")", 1);
    }
    free(v);
    return r;
}

/* SP dsp SP lang SP loc: the extension data both kinds of body end with. */
static int put_ext_tail(const struct mime_msg *m, const struct mime_node *n, int utf8,
                        struct buf *out)
{
    return sp(out) < 0 || put_disposition(m, n, utf8, out) < 0 || sp(out) < 0 ||
                   put_language(m, n, utf8, out) < 0 || sp(out) < 0 ||
                   put_field(m, n, MF_CONTENT_LOCATION, utf8, out) < 0
               ? -1
               : 0;
}

static int put_encoding(const struct mime_msg *m, const struct mime_node *n, int utf8,
                        struct buf *out)
{
    if (n->field_off[MF_CONTENT_TRANSFER_ENCODING] != MIME_NONE) {
        size_t tl;
        const char *tok = mime_token(m->data + n->field_off[MF_CONTENT_TRANSFER_ENCODING],
                                     n->field_len[MF_CONTENT_TRANSFER_ENCODING], &tl);
        if (tok)
            return put_upper(out, tok, tl, utf8);
    }
    return buf_append(out, "\"7BIT\"", 6);
}

static int write_body(const struct mime_msg *m, int idx, int ext, int utf8, struct buf *out);

static int write_multipart(const struct mime_msg *m, const struct mime_node *n, int ext,
                           int utf8, struct buf *out)
{
    if (buf_append(out, "(", 1) < 0)
        return -1;
    for (int c = n->first_child; c >= 0; c = m->nodes[c].next_sibling)
        if (write_body(m, c, ext, utf8, out) < 0)
            return -1;
    if (sp(out) < 0 || put_upper(out, n->subtype, n->subtype_len, utf8) < 0)
        return -1;
    if (ext && (sp(out) < 0 || put_ctype_params(m, n, utf8, out) < 0 || put_ext_tail(m, n, utf8, out) < 0))
        return -1;
    return buf_append(out, ")", 1);
}

static int write_single(const struct mime_msg *m, const struct mime_node *n, int ext, int utf8,
                        struct buf *out)
{
    if (buf_append(out, "(", 1) < 0 || put_upper(out, n->type, n->type_len, utf8) < 0 ||
        sp(out) < 0 || put_upper(out, n->subtype, n->subtype_len, utf8) < 0 || sp(out) < 0 ||
        put_ctype_params(m, n, utf8, out) < 0 || sp(out) < 0 ||
        put_field(m, n, MF_CONTENT_ID, utf8, out) < 0 || sp(out) < 0 ||
        put_field(m, n, MF_CONTENT_DESCRIPTION, utf8, out) < 0 || sp(out) < 0 ||
        put_encoding(m, n, utf8, out) < 0 || buf_appendf(out, " %zu", n->body_len) < 0)
        return -1;
    if (n->kind == MIME_MESSAGE) {
        int e = n->first_child;
        if (sp(out) < 0 || write_envelope(m, &m->nodes[e], utf8, out) < 0 || sp(out) < 0 ||
            write_body(m, e, ext, utf8, out) < 0 ||
            buf_appendf(out, " %zu", mime_body_lines(m, n)) < 0)
            return -1;
    } else if (mime_is_text(n)) {
        if (buf_appendf(out, " %zu", mime_body_lines(m, n)) < 0)
            return -1;
    }
    if (ext && (sp(out) < 0 || put_field(m, n, MF_CONTENT_MD5, utf8, out) < 0 ||
                put_ext_tail(m, n, utf8, out) < 0))
        return -1;
    return buf_append(out, ")", 1);
}

static int write_body(const struct mime_msg *m, int idx, int ext, int utf8, struct buf *out)
{
    const struct mime_node *n = &m->nodes[idx];
    if (n->kind == MIME_MULTIPART)
        return write_multipart(m, n, ext, utf8, out);
    return write_single(m, n, ext, utf8, out);
}

int mime_bodystructure(const struct mime_msg *m, int extended, int utf8, struct buf *out)
{
    return write_body(m, 0, extended, utf8, out);
}
