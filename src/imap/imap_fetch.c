/* imap_fetch: the untagged FETCH response of one message (RFC 3501 7.4.2,
 * RFC 9051 7.5.2, RFC 7162 MODSEQ, RFC 3516 BINARY).
 *
 * Index items (UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ) come from the
 * row; ENVELOPE and BODYSTRUCTURE from the row's cached strings (BODY is
 * derived from the cached BODYSTRUCTURE), so a FETCH of those never opens
 * the message file unless the cache is empty. Body sections are in
 * imap_fetch_body.c.
 *
 * Items are written in a fixed order (UID first, then the index items,
 * then the structures, then the message data); RFC 3501 lets the server
 * choose. When OUT fills up the response is undone entirely, so the
 * caller can flush OUT and call again for the same message. */
#include "imap/imap_fetch_int.h"
#include "core/buf.h"
#include "mime/mime.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int imap_out_str(struct buf *out, const char *s)
{
    return buf_append(out, s, strlen(s));
}

int imap_out_u64(struct buf *out, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, v);
    return buf_append(out, num, (size_t)n);
}

void imap_out_truncate(struct buf *out, size_t len)
{
    if (out->len > len) {
        out->len = len;
        out->data[len] = '\0';
    }
}

int imap_out_literal(struct buf *out, const char *data, size_t len, int literal8_if_nul)
{
    if (len == 0)
        return imap_out_str(out, "\"\"");
    size_t start = out->len;
    int lit8 = literal8_if_nul && memchr(data, '\0', len) != NULL;
    char head[40];
    int n = snprintf(head, sizeof head, "%s{%zu}\r\n", lit8 ? "~" : "", len);
    if (buf_append(out, head, (size_t)n) < 0 || buf_append(out, data, len) < 0) {
        imap_out_truncate(out, start);
        return -1;
    }
    return 0;
}

int imap_flags_format(unsigned sysflags, const char *keywords, struct buf *out)
{
    static const struct { unsigned bit; const char *name; } sys[] = {
        { STORE_F_SEEN, "\\Seen" }, { STORE_F_ANSWERED, "\\Answered" },
        { STORE_F_FLAGGED, "\\Flagged" }, { STORE_F_DELETED, "\\Deleted" },
        { STORE_F_DRAFT, "\\Draft" },
    };
    size_t start = out->len;
    int first = 1;
    if (buf_append(out, "(", 1) < 0)
        return -1;
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        if (!(sysflags & sys[i].bit))
            continue;
        if ((!first && buf_append(out, " ", 1) < 0) || imap_out_str(out, sys[i].name) < 0)
            goto full;
        first = 0;
    }
    for (const char *p = keywords ? keywords : ""; *p;) {
        size_t n = strcspn(p, " ");
        if (n > 0) {
            if ((!first && buf_append(out, " ", 1) < 0) || buf_append(out, p, n) < 0)
                goto full;
            first = 0;
        }
        p += n;
        p += strspn(p, " ");
    }
    if (buf_append(out, ")", 1) < 0)
        goto full;
    return 0;
full:
    imap_out_truncate(out, start);
    return -1;
}

int imap_fetch_sets_seen(const struct imap_fetch_spec *spec)
{
    if (spec->items & (IMAP_FI_RFC822 | IMAP_FI_RFC822_TEXT))
        return 1;
    for (int i = 0; i < spec->nsections; i++)
        if (!spec->sections[i].peek && !spec->sections[i].binary_size)
            return 1;
    return 0;
}

int imap_fetch_needs_file(const struct imap_fetch_spec *spec)
{
    return spec->nsections > 0 ||
           (spec->items & (IMAP_FI_RFC822 | IMAP_FI_RFC822_HEADER | IMAP_FI_RFC822_TEXT)) != 0;
}

/* ---- the items ---- */

/* " NAME " separator plus name. */
static int item_name(struct buf *out, int *first, const char *name)
{
    if (!*first && buf_append(out, " ", 1) < 0)
        return -1;
    *first = 0;
    if (imap_out_str(out, name) < 0 || buf_append(out, " ", 1) < 0)
        return -1;
    return 0;
}

static int item_internaldate(struct buf *out, time_t t)
{
    char date[32];
    imap_datetime_format(t, date);
    if (buf_append(out, "\"", 1) < 0 || imap_out_str(out, date) < 0 ||
        buf_append(out, "\"", 1) < 0)
        return -1;
    return 0;
}

/* ENVELOPE: the cached string, else computed. 1 when the file is gone. */
static int item_envelope(struct imap_msg_ctx *m, const struct imap_fetch_opts *o,
                         struct buf *out)
{
    if (m->row->envelope && *m->row->envelope)
        return imap_out_str(out, m->row->envelope);
    const struct mime_msg *mm = imap_msg_mime(m);
    if (!mm)
        return 1;
    return mime_envelope(mm, o->utf8, out);
}

/* BODY (EXTENDED 0) or BODYSTRUCTURE (1): from the cached BODYSTRUCTURE
 * when there is one, else computed. 1 when the file is gone. */
static int item_structure(struct imap_msg_ctx *m, const struct imap_fetch_opts *o,
                          int extended, struct buf *out)
{
    const char *bs = m->row->bodystructure;
    if (bs && *bs) {
        if (extended)
            return imap_out_str(out, bs);
        int rc = imap_body_from_bodystructure(bs, strlen(bs), out);
        if (rc != -2)
            return rc;
        /* a malformed cache entry: compute it instead */
    }
    const struct mime_msg *mm = imap_msg_mime(m);
    if (!mm)
        return 1;
    return mime_bodystructure(mm, extended, o->utf8, out);
}

/* RFC822, RFC822.HEADER, RFC822.TEXT (RFC 3501 6.4.5): the whole message,
 * its header (with the blank line), its text. */
static int item_rfc822(struct imap_msg_ctx *m, unsigned which, struct buf *out)
{
    if (imap_msg_load(m) != 0)
        return 1;
    size_t hdr = imap_header_end(m->data, m->len);
    const char *p = m->data;
    size_t len = m->len;
    if (which == IMAP_FI_RFC822_HEADER)
        len = hdr;
    else if (which == IMAP_FI_RFC822_TEXT) {
        p += hdr;
        len -= hdr;
    }
    return imap_out_literal(out, p, len, 0);
}

/* Writes the items in their fixed order. Same returns as
 * imap_fetch_message; OUT is cleaned up by the caller. */
static int fetch_items(const struct imap_fetch_spec *spec, const struct imap_fetch_opts *o,
                       struct imap_msg_ctx *m, struct buf *out)
{
    const struct store_fmsg *row = m->row;
    unsigned items = spec->items;
    int first = 1, rc;

    if ((items & IMAP_FI_UID) || o->uid_command) {
        if (item_name(out, &first, "UID") < 0 || imap_out_u64(out, row->uid) < 0)
            return -1;
    }
    if ((items & IMAP_FI_FLAGS) || o->add_flags) {
        if (item_name(out, &first, "FLAGS") < 0 ||
            imap_flags_format(row->sysflags, row->keywords, out) < 0)
            return -1;
    }
    if (items & IMAP_FI_INTERNALDATE) {
        if (item_name(out, &first, "INTERNALDATE") < 0 ||
            item_internaldate(out, row->internaldate) < 0)
            return -1;
    }
    if (items & IMAP_FI_RFC822_SIZE) {
        if (item_name(out, &first, "RFC822.SIZE") < 0 || imap_out_u64(out, row->size) < 0)
            return -1;
    }
    if ((items & IMAP_FI_MODSEQ) || o->condstore || spec->changedsince) {
        if (item_name(out, &first, "MODSEQ") < 0 || buf_append(out, "(", 1) < 0 ||
            imap_out_u64(out, row->modseq) < 0 || buf_append(out, ")", 1) < 0)
            return -1;
    }
    if (items & IMAP_FI_ENVELOPE) {
        if (item_name(out, &first, "ENVELOPE") < 0)
            return -1;
        if ((rc = item_envelope(m, o, out)) != 0)
            return rc;
    }
    if (items & IMAP_FI_BODY) {
        if (item_name(out, &first, "BODY") < 0)
            return -1;
        if ((rc = item_structure(m, o, 0, out)) != 0)
            return rc;
    }
    if (items & IMAP_FI_BODYSTRUCTURE) {
        if (item_name(out, &first, "BODYSTRUCTURE") < 0)
            return -1;
        if ((rc = item_structure(m, o, 1, out)) != 0)
            return rc;
    }
    static const struct { unsigned bit; const char *name; } rfc822[] = {
        { IMAP_FI_RFC822_HEADER, "RFC822.HEADER" }, { IMAP_FI_RFC822_TEXT, "RFC822.TEXT" },
        { IMAP_FI_RFC822, "RFC822" },
    };
    for (size_t i = 0; i < sizeof rfc822 / sizeof rfc822[0]; i++) {
        if (!(items & rfc822[i].bit))
            continue;
        if (item_name(out, &first, rfc822[i].name) < 0)
            return -1;
        if ((rc = item_rfc822(m, rfc822[i].bit, out)) != 0)
            return rc;
    }
    for (int i = 0; i < spec->nsections; i++) {
        if (!first && buf_append(out, " ", 1) < 0)
            return -1;
        first = 0;
        if ((rc = imap_fetch_section(&spec->sections[i], m, out)) != 0)
            return rc;
    }
    return 0;
}

int imap_fetch_message(const struct imap_fetch_spec *spec, const struct imap_fetch_opts *o,
                       struct imap_msg_ctx *m, struct buf *out)
{
    size_t start = out->len;
    char head[40];
    int n = snprintf(head, sizeof head, "* %" PRIu32 " FETCH (", m->seq);
    int rc = buf_append(out, head, (size_t)n);
    if (rc == 0)
        rc = fetch_items(spec, o, m, out);
    if (rc == 0 && buf_append(out, ")\r\n", 3) < 0)
        rc = -1;
    if (rc != 0)
        imap_out_truncate(out, start);
    return rc;
}
