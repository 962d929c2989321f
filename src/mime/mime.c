/* mime: the structure of a stored message (see mime.h and mime_int.h) and
 * the byte ranges of its sections.
 *
 * The structure comes from our own scan of the stored bytes rather than
 * from GMime's object tree, because IMAP needs exact offsets and sizes of
 * every header and body as stored (RFC 3501 6.4.5, 7.4.2) and GMime does
 * not keep them for nested parts. The scan follows RFC 2045/2046 and is
 * lenient as Dovecot is:
 *   - a header ends at the first empty line; without one, the whole entity
 *     is header and the body is empty;
 *   - a multipart's parts are found by delimiter lines "--boundary" (plus
 *     "--" for the close delimiter, then optional whitespace); the line end
 *     before a delimiter belongs to the delimiter; a missing close
 *     delimiter ends the last part at the end of the body; a multipart
 *     without a boundary parameter or without any delimiter line is one
 *     text/plain part;
 *   - message/rfc822 and message/global parts contain a message parsed the
 *     same way; parts of multipart/digest default to message/rfc822;
 *   - beyond MIME_MAX_DEPTH levels or MIME_MAX_PARTS parts, containers are
 *     opaque (application/octet-stream).
 * GMime does the decoding (transfer encodings here, RFC 2047, charsets and
 * dates in mime_search.c). */
#include "mime/mime_int.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_gmime(void)
{
    g_mime_init();
}

void mime_init(void)
{
    pthread_once(&init_once, init_gmime);
}

/* ---------------------------------------------------------------- parse */

static const char *const field_names[MF_COUNT] = {
    [MF_CONTENT_TYPE] = "Content-Type",
    [MF_CONTENT_TRANSFER_ENCODING] = "Content-Transfer-Encoding",
    [MF_CONTENT_ID] = "Content-ID",
    [MF_CONTENT_DESCRIPTION] = "Content-Description",
    [MF_CONTENT_DISPOSITION] = "Content-Disposition",
    [MF_CONTENT_LANGUAGE] = "Content-Language",
    [MF_CONTENT_LOCATION] = "Content-Location",
    [MF_CONTENT_MD5] = "Content-MD5",
    [MF_DATE] = "Date",
    [MF_SUBJECT] = "Subject",
    [MF_FROM] = "From",
    [MF_SENDER] = "Sender",
    [MF_REPLY_TO] = "Reply-To",
    [MF_TO] = "To",
    [MF_CC] = "Cc",
    [MF_BCC] = "Bcc",
    [MF_IN_REPLY_TO] = "In-Reply-To",
    [MF_MESSAGE_ID] = "Message-ID",
};

static int new_node(struct mime_msg *m)
{
    if (m->nnodes == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->nodes = xrealloc(m->nodes, xmul((size_t)m->cap, sizeof *m->nodes));
    }
    struct mime_node *n = &m->nodes[m->nnodes];
    memset(n, 0, sizeof *n);
    for (int i = 0; i < MF_COUNT; i++)
        n->field_off[i] = MIME_NONE;
    n->first_child = n->next_sibling = -1;
    return m->nnodes++;
}

static size_t line_end(const char *d, size_t p, size_t end)
{
    const char *lf = memchr(d + p, '\n', end - p);
    return lf ? (size_t)(lf - d) + 1 : end;
}

/* Splits [start, end) into header (with its blank line) and body. */
static void split_header(const char *d, size_t start, size_t end, struct mime_node *n)
{
    size_t p = start;
    n->hdr_off = start;
    while (p < end) {
        size_t blank = 0;
        if (d[p] == '\n')
            blank = 1;
        else if (d[p] == '\r' && p + 1 < end && d[p + 1] == '\n')
            blank = 2;
        if (blank) {
            n->hdr_len = p + blank - start;
            n->body_off = p + blank;
            n->body_len = end - n->body_off;
            return;
        }
        p = line_end(d, p, end);
    }
    n->hdr_len = end - start;
    n->body_off = end;
    n->body_len = 0;
}

static void read_fields(const char *d, struct mime_node *n)
{
    size_t pos = n->hdr_off;
    struct mime_hfield f;
    while (mime_hdr_next(d, n->hdr_off, n->hdr_len, &pos, &f)) {
        for (int i = 0; i < MF_COUNT; i++) {
            if (n->field_off[i] == MIME_NONE && mime_name_eq(d + f.name_off, f.name_len, field_names[i])) {
                n->field_off[i] = f.value_off;
                n->field_len[i] = f.value_len;
                break;
            }
        }
    }
}

static void set_type(struct mime_node *n, enum mime_ctype_src src)
{
    static const struct { const char *t, *s; } defaults[] = {
        [MIME_CT_DEFAULT] = {"text", "plain"},
        [MIME_CT_DIGEST] = {"message", "rfc822"},
        [MIME_CT_OPAQUE] = {"application", "octet-stream"},
    };
    n->ct_src = src;
    n->type = defaults[src].t;
    n->type_len = strlen(n->type);
    n->subtype = defaults[src].s;
    n->subtype_len = strlen(n->subtype);
}

/* A delimiter line of BOUNDARY starting at LS? Sets *CLOSE and *AFTER (just
 * past its line end). */
static int is_delimiter(const char *d, size_t ls, size_t end, const char *b, size_t blen,
                        int *close, size_t *after)
{
    if (end - ls < 2 + blen || d[ls] != '-' || d[ls + 1] != '-' || memcmp(d + ls + 2, b, blen) != 0)
        return 0;
    size_t q = ls + 2 + blen;
    *close = 0;
    if (end - q >= 2 && d[q] == '-' && d[q + 1] == '-') {
        *close = 1;
        q += 2;
    }
    while (q < end && (d[q] == ' ' || d[q] == '\t'))
        q++;
    if (q < end && d[q] == '\r' && q + 1 < end && d[q + 1] == '\n')
        q++;
    if (q < end && d[q] != '\n')
        return 0;
    *after = q < end ? q + 1 : end;
    return 1;
}

/* The next delimiter line at or after P (a line start or not), or MIME_NONE. */
static size_t find_delimiter(const char *d, size_t s, size_t p, size_t end, const char *b,
                             size_t blen, int *close, size_t *after)
{
    if (p == s && is_delimiter(d, p, end, b, blen, close, after))
        return p;
    while (p < end) {
        const char *hit = memmem(d + p, end - p, "\n--", 3);
        if (!hit)
            return MIME_NONE;
        size_t ls = (size_t)(hit - d) + 1;
        if (is_delimiter(d, ls, end, b, blen, close, after))
            return ls;
        p = ls;
    }
    return MIME_NONE;
}

static int parse_entity(struct mime_msg *m, size_t start, size_t end, int is_message,
                        int in_digest, int depth);

static void add_child(struct mime_msg *m, int parent, int *last, size_t start, size_t end,
                      int in_digest, int depth)
{
    int c = parse_entity(m, start, end, 0, in_digest, depth + 1);
    if (*last < 0)
        m->nodes[parent].first_child = c;
    else
        m->nodes[*last].next_sibling = c;
    m->nodes[parent].nchildren++;
    *last = c;
}

/* Splits the body of multipart node IDX into parts; 0 when it has none (no
 * delimiter line, or only a close delimiter): the caller makes the node a
 * text part. */
static int split_parts(struct mime_msg *m, int idx, const char *b, size_t blen, int depth)
{
    const char *d = m->data;
    size_t s = m->nodes[idx].body_off, e = s + m->nodes[idx].body_len;
    int digest = mime_name_eq(m->nodes[idx].subtype, m->nodes[idx].subtype_len, "digest");
    size_t p = s, part_start = MIME_NONE, after;
    int found = 0, last = -1, close;
    size_t ls;
    while ((ls = find_delimiter(d, s, p, e, b, blen, &close, &after)) != MIME_NONE) {
        if (part_start != MIME_NONE) {
            size_t pe = ls;
            if (pe > part_start && d[pe - 1] == '\n') {
                pe--;
                if (pe > part_start && d[pe - 1] == '\r')
                    pe--;
            }
            add_child(m, idx, &last, part_start, pe, digest, depth);
        }
        found = 1;
        if (close) {
            part_start = MIME_NONE;
            break;
        }
        part_start = p = after;
        if (m->nnodes >= MIME_MAX_PARTS)
            break; /* the last part takes the rest */
    }
    if (part_start != MIME_NONE)
        add_child(m, idx, &last, part_start, e, digest, depth);
    return found && m->nodes[idx].nchildren > 0;
}

static void parse_container(struct mime_msg *m, int idx, int depth)
{
    struct mime_node *n = &m->nodes[idx];
    int multipart = mime_name_eq(n->type, n->type_len, "multipart");
    int message = mime_name_eq(n->type, n->type_len, "message") &&
                  (mime_name_eq(n->subtype, n->subtype_len, "rfc822") ||
                   mime_name_eq(n->subtype, n->subtype_len, "global"));
    if (!multipart && !message)
        return;
    if (depth >= MIME_MAX_DEPTH || m->nnodes >= MIME_MAX_PARTS) {
        set_type(n, MIME_CT_OPAQUE);
        return;
    }
    if (message) {
        n->kind = MIME_MESSAGE;
        size_t bo = n->body_off, bl = n->body_len;
        int c = parse_entity(m, bo, bo + bl, 1, 0, depth + 1);
        m->nodes[idx].first_child = c;
        m->nodes[idx].nchildren = 1;
        return;
    }
    struct mime_params params = {0};
    const char *t, *s;
    size_t tl, sl;
    mime_ctype_parse(m->data + n->field_off[MF_CONTENT_TYPE], n->field_len[MF_CONTENT_TYPE], &t,
                     &tl, &s, &sl, &params);
    const char *b = mime_params_get(&params, "boundary");
    size_t blen = b ? strlen(b) : 0;
    n->kind = MIME_MULTIPART;
    if (blen == 0 || blen > MIME_MAX_BOUNDARY || !split_parts(m, idx, b, blen, depth)) {
        n = &m->nodes[idx];
        n->kind = MIME_LEAF;
        n->first_child = -1;
        n->nchildren = 0;
        set_type(n, MIME_CT_DEFAULT);
    }
    mime_params_free(&params);
}

static int parse_entity(struct mime_msg *m, size_t start, size_t end, int is_message,
                        int in_digest, int depth)
{
    int idx = new_node(m);
    struct mime_node *n = &m->nodes[idx];
    n->is_message = is_message;
    split_header(m->data, start, end, n);
    read_fields(m->data, n);
    if (n->field_off[MF_CONTENT_TYPE] != MIME_NONE &&
        mime_ctype_parse(m->data + n->field_off[MF_CONTENT_TYPE], n->field_len[MF_CONTENT_TYPE],
                         &n->type, &n->type_len, &n->subtype, &n->subtype_len, NULL) == 0)
        n->ct_src = MIME_CT_HEADER;
    else
        set_type(n, in_digest ? MIME_CT_DIGEST : MIME_CT_DEFAULT);
    parse_container(m, idx, depth);
    return idx;
}

struct mime_msg *mime_parse(const char *data, size_t len)
{
    struct mime_msg *m = xcalloc(1, sizeof *m);
    m->data = data;
    m->len = len;
    parse_entity(m, 0, len, 1, 0, 0);
    return m;
}

void mime_free(struct mime_msg **mp)
{
    if (!*mp)
        return;
    free((*mp)->nodes);
    free(*mp);
    *mp = NULL;
}

/* ---------------------------------------------------------------- helpers */

int mime_is_text(const struct mime_node *n)
{
    return mime_name_eq(n->type, n->type_len, "text");
}

size_t mime_body_lines(const struct mime_msg *m, const struct mime_node *n)
{
    const char *p = m->data + n->body_off, *e = p + n->body_len;
    size_t lines = 0;
    while (p < e) {
        const char *lf = memchr(p, '\n', (size_t)(e - p));
        if (!lf)
            return lines + 1;
        lines++;
        p = lf + 1;
    }
    return lines;
}

int mime_embedded(const struct mime_msg *m, int idx)
{
    return m->nodes[idx].kind == MIME_MESSAGE ? m->nodes[idx].first_child : -1;
}

static int nth_child(const struct mime_msg *m, int idx, uint32_t k)
{
    int c = m->nodes[idx].first_child;
    for (uint32_t i = 1; c >= 0 && i < k; i++)
        c = m->nodes[c].next_sibling;
    return c;
}

/* RFC 3501 6.4.5: the parts of a message are its body's parts when that is
 * a multipart, else part 1 is the body; a message/rfc822 part's parts are
 * those of the message it contains. */
int mime_resolve(const struct mime_msg *m, const uint32_t *part, int nparts)
{
    int cur = 0, as_message = 1;
    for (int i = 0; i < nparts; i++) {
        uint32_t k = part[i];
        if (k == 0)
            return -1;
        int msg = as_message ? cur : mime_embedded(m, cur);
        int base = msg >= 0 ? msg : cur;
        if (m->nodes[base].kind == MIME_MULTIPART)
            cur = nth_child(m, base, k);
        else if (msg >= 0 && k == 1)
            cur = msg;
        else
            return -1;
        if (cur < 0)
            return -1;
        as_message = 0;
    }
    return cur;
}

/* ---------------------------------------------------------------- sections */

int mime_section_range(const struct mime_msg *m, const uint32_t *part, int nparts,
                       enum mime_section_kind kind, size_t *off, size_t *len)
{
    int idx = 0;
    if (nparts > 0) {
        idx = mime_resolve(m, part, nparts);
        if (idx < 0)
            return 1;
        if (kind == MIME_SEC_HEADER || kind == MIME_SEC_TEXT) {
            idx = mime_embedded(m, idx);
            if (idx < 0)
                return 1;
        }
    } else if (kind == MIME_SEC_ALL) {
        *off = 0;
        *len = m->len;
        return 0;
    } else if (kind == MIME_SEC_MIME) {
        return 1;
    }
    const struct mime_node *n = &m->nodes[idx];
    if (kind == MIME_SEC_HEADER || kind == MIME_SEC_MIME) {
        *off = n->hdr_off;
        *len = n->hdr_len;
    } else {
        *off = n->body_off;
        *len = n->body_len;
    }
    return 0;
}

int mime_header_fields(const struct mime_msg *m, const uint32_t *part, int nparts,
                       char *const *fields, int nfields, int not, struct buf *out)
{
    int idx = 0;
    if (nparts > 0) {
        idx = mime_resolve(m, part, nparts);
        if (idx >= 0)
            idx = mime_embedded(m, idx);
        if (idx < 0)
            return 1;
    }
    const struct mime_node *n = &m->nodes[idx];
    size_t pos = n->hdr_off;
    struct mime_hfield f;
    while (mime_hdr_next(m->data, n->hdr_off, n->hdr_len, &pos, &f)) {
        int hit = 0;
        for (int i = 0; i < nfields && !hit; i++)
            hit = mime_name_eq(m->data + f.name_off, f.name_len, fields[i]);
        if (hit == not)
            continue;
        if (buf_append(out, m->data + f.line_off, f.line_len) < 0)
            return -1;
        if (m->data[f.line_off + f.line_len - 1] != '\n' && buf_append(out, "\r\n", 2) < 0)
            return -1;
    }
    return buf_append(out, "\r\n", 2) < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- decoding */

int mime_decode_body(const struct mime_msg *m, const struct mime_node *n, char **out,
                     size_t *outlen)
{
    const char *in = m->data + n->body_off;
    size_t len = n->body_len;
    GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_7BIT;
    if (n->field_off[MF_CONTENT_TRANSFER_ENCODING] != MIME_NONE) {
        size_t tl;
        const char *tok = mime_token(m->data + n->field_off[MF_CONTENT_TRANSFER_ENCODING],
                                     n->field_len[MF_CONTENT_TRANSFER_ENCODING], &tl);
        if (tok) {
            char name[32];
            if (tl >= sizeof name)
                return 2;
            memcpy(name, tok, tl);
            name[tl] = '\0';
            enc = g_mime_content_encoding_from_string(name);
            /* RFC 3516 4.3: we decode what RFC 2045 defines; x-uuencode
             * and other private encodings are unknown. */
            if (enc == GMIME_CONTENT_ENCODING_DEFAULT || enc == GMIME_CONTENT_ENCODING_UUENCODE)
                return 2;
        }
    }
    if (enc == GMIME_CONTENT_ENCODING_7BIT || enc == GMIME_CONTENT_ENCODING_8BIT ||
        enc == GMIME_CONTENT_ENCODING_BINARY) {
        *out = xmalloc(len + 1);
        memcpy(*out, in, len);
        (*out)[len] = '\0';
        *outlen = len;
        return 0;
    }
    GMimeEncoding st;
    g_mime_encoding_init_decode(&st, enc);
    size_t cap = g_mime_encoding_outlen(&st, len);
    if (cap < len)
        cap = len;
    cap += 64;
    char *buf = xmalloc(cap);
    size_t k = g_mime_encoding_flush(&st, in, len, buf);
    if (k >= cap)
        abort(); /* GMime wrote past what it promised */
    buf[k] = '\0';
    *out = buf;
    *outlen = k;
    return 0;
}

int mime_binary(const struct mime_msg *m, const uint32_t *part, int nparts, struct buf *out)
{
    if (nparts == 0)
        return buf_append(out, m->data, m->len) < 0 ? -1 : 0;
    int idx = mime_resolve(m, part, nparts);
    if (idx < 0)
        return 1;
    const struct mime_node *n = &m->nodes[idx];
    if (n->kind != MIME_LEAF)
        return buf_append(out, m->data + n->body_off, n->body_len) < 0 ? -1 : 0;
    char *dec;
    size_t dlen;
    int r = mime_decode_body(m, n, &dec, &dlen);
    if (r)
        return r;
    r = buf_append(out, dec, dlen) < 0 ? -1 : 0;
    free(dec);
    return r;
}
