/* imap_fetch_body: body section items of FETCH (RFC 3501 6.4.5 and 7.4.2,
 * RFC 9051 6.4.5, RFC 3516 BINARY): BODY[<section>]<<partial>> with the
 * section echoed with its keyword in upper case, BINARY[<part>] as a literal8
 * when the decoded data holds a NUL, and BINARY.SIZE[<part>].
 *
 * The whole message and the top-level HEADER, TEXT and HEADER.FIELDS
 * (.NOT) are cut from the message bytes directly; everything inside a part
 * asks the MIME structure (mime.h) for its byte range. Sections that do not
 * exist, or make no sense for the part (3.HEADER of a text part), are the
 * empty string, as RFC 3501 allows. */
#include "imap/imap_fetch_int.h"
#include "core/buf.h"
#include "mime/mime.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

size_t imap_header_end(const char *data, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl)
            return len;
        size_t eol = (size_t)(nl - data);
        if (eol == pos || (eol == pos + 1 && data[pos] == '\r'))
            return eol + 1;
        pos = eol + 1;
    }
    return len;
}

/* 1 when the field NAME (length N) is one of FIELDS (compared without case). */
static int field_listed(const char *name, size_t n, char *const *fields, int nfields)
{
    for (int i = 0; i < nfields; i++)
        if (strlen(fields[i]) == n && strncasecmp(fields[i], name, n) == 0)
            return 1;
    return 0;
}

/* HEADER.FIELDS (.NOT) of the top-level header [0, HDR): the fields kept,
 * with their continuation lines, then the blank line. */
static int top_header_fields(const char *data, size_t hdr, const struct imap_section *sec,
                             struct buf *tmp)
{
    int not = sec->kind == IMAP_SEC_HEADER_FIELDS_NOT;
    size_t pos = 0;
    while (pos < hdr) {
        /* one field: its first line and the lines starting with SP/HT */
        size_t end = pos;
        do {
            const char *nl = memchr(data + end, '\n', hdr - end);
            end = nl ? (size_t)(nl - data) + 1 : hdr;
        } while (end < hdr && (data[end] == ' ' || data[end] == '\t'));
        const char *colon = memchr(data + pos, ':', end - pos);
        if (colon) {
            size_t n = (size_t)(colon - (data + pos));
            while (n > 0 && (data[pos + n - 1] == ' ' || data[pos + n - 1] == '\t'))
                n--;
            if (field_listed(data + pos, n, sec->fields, sec->nfields) != not &&
                buf_append(tmp, data + pos, end - pos) < 0)
                return -1;
        }
        pos = end;
    }
    return buf_append(tmp, "\r\n", 2);
}

static enum mime_section_kind mime_kind(enum imap_section_kind k)
{
    switch (k) {
    case IMAP_SEC_HEADER: return MIME_SEC_HEADER;
    case IMAP_SEC_TEXT: return MIME_SEC_TEXT;
    case IMAP_SEC_MIME: return MIME_SEC_MIME;
    default: return MIME_SEC_ALL;
    }
}

/* The bytes of SEC: *P and *LEN point into the message or into TMP. 0 ok,
 * 1 file gone, 2 unknown transfer encoding, -1 full. */
static int section_bytes(const struct imap_section *sec, struct imap_msg_ctx *m,
                         struct buf *tmp, const char **p, size_t *len)
{
    *p = "";
    *len = 0;
    if (imap_msg_load(m) != 0)
        return 1;
    if ((sec->binary || sec->binary_size) && sec->nparts == 0) {
        *p = m->data;   /* BINARY[]: the message as it is stored */
        *len = m->len;
        return 0;
    }
    if (sec->binary || sec->binary_size) {
        const struct mime_msg *mm = imap_msg_mime(m);
        if (!mm)
            return 1;
        int rc = mime_binary(mm, sec->part, sec->nparts, tmp);
        if (rc == 2 || rc < 0)
            return rc;
        if (rc == 0) {
            *p = tmp->data ? tmp->data : "";
            *len = tmp->len;
        }
        return 0;
    }
    if (sec->nparts == 0) {
        size_t hdr = imap_header_end(m->data, m->len);
        switch (sec->kind) {
        case IMAP_SEC_ALL:
            *p = m->data;
            *len = m->len;
            return 0;
        case IMAP_SEC_HEADER:
            *p = m->data;
            *len = hdr;
            return 0;
        case IMAP_SEC_TEXT:
            *p = m->data + hdr;
            *len = m->len - hdr;
            return 0;
        case IMAP_SEC_HEADER_FIELDS:
        case IMAP_SEC_HEADER_FIELDS_NOT:
            if (top_header_fields(m->data, hdr, sec, tmp) < 0)
                return -1;
            *p = tmp->data;
            *len = tmp->len;
            return 0;
        case IMAP_SEC_MIME:
            return 0;   /* no MIME header above the message: empty */
        }
        return 0;
    }
    const struct mime_msg *mm = imap_msg_mime(m);
    if (!mm)
        return 1;
    if (sec->kind == IMAP_SEC_HEADER_FIELDS || sec->kind == IMAP_SEC_HEADER_FIELDS_NOT) {
        int rc = mime_header_fields(mm, sec->part, sec->nparts, sec->fields, sec->nfields,
                                    sec->kind == IMAP_SEC_HEADER_FIELDS_NOT, tmp);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            *p = tmp->data ? tmp->data : "";
            *len = tmp->len;
        }
        return 0;
    }
    size_t off = 0, n = 0;
    if (mime_section_range(mm, sec->part, sec->nparts, mime_kind(sec->kind), &off, &n) == 0 &&
        off <= m->len && n <= m->len - off) {
        *p = m->data + off;
        *len = n;
    }
    return 0;
}

/* The section as the client wrote it, its keyword in upper case (the field
 * names of HEADER.FIELDS as written). */
static int spec_echo(const char *spec, struct buf *out)
{
    size_t kw = strcspn(spec, "(");
    for (size_t i = 0; i < kw; i++) {
        char c = spec[i] >= 'a' && spec[i] <= 'z' ? (char)(spec[i] - 32) : spec[i];
        if (buf_append(out, &c, 1) < 0)
            return -1;
    }
    return imap_out_str(out, spec + kw);
}

/* The section text: echoed, or rebuilt when the parser left none
 * (structures made by hand). */
static int section_spec(const struct imap_section *sec, struct buf *out)
{
    if (sec->spec)
        return spec_echo(sec->spec, out);
    for (int i = 0; i < sec->nparts; i++)
        if ((i && buf_append(out, ".", 1) < 0) || imap_out_u64(out, sec->part[i]) < 0)
            return -1;
    static const char *const names[] = {
        [IMAP_SEC_ALL] = "", [IMAP_SEC_HEADER] = "HEADER",
        [IMAP_SEC_HEADER_FIELDS] = "HEADER.FIELDS", [IMAP_SEC_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
        [IMAP_SEC_TEXT] = "TEXT", [IMAP_SEC_MIME] = "MIME",
    };
    if (sec->kind == IMAP_SEC_ALL)
        return 0;
    if ((sec->nparts && buf_append(out, ".", 1) < 0) || imap_out_str(out, names[sec->kind]) < 0)
        return -1;
    if (sec->kind != IMAP_SEC_HEADER_FIELDS && sec->kind != IMAP_SEC_HEADER_FIELDS_NOT)
        return 0;
    if (buf_append(out, " (", 2) < 0)
        return -1;
    for (int i = 0; i < sec->nfields; i++)
        if ((i && buf_append(out, " ", 1) < 0) || imap_out_str(out, sec->fields[i]) < 0)
            return -1;
    return buf_append(out, ")", 1);
}

static int write_section(const struct imap_section *sec, const char *p, size_t len,
                         struct buf *out)
{
    const char *name = sec->binary_size ? "BINARY.SIZE[" : sec->binary ? "BINARY[" : "BODY[";
    if (imap_out_str(out, name) < 0 || section_spec(sec, out) < 0 || buf_append(out, "]", 1) < 0)
        return -1;
    if (sec->binary_size)
        return buf_append(out, " ", 1) < 0 ? -1 : imap_out_u64(out, len);
    if (sec->partial) {
        /* RFC 3501 6.4.5: the substring from the origin octet; an origin
         * past the end is the empty string; the reply names the origin. */
        if (sec->offset >= len) {
            p = "";
            len = 0;
        } else {
            p += sec->offset;
            len -= sec->offset;
            if (len > sec->count)
                len = sec->count;
        }
        if (buf_append(out, "<", 1) < 0 || imap_out_u64(out, sec->offset) < 0 ||
            buf_append(out, ">", 1) < 0)
            return -1;
    }
    if (buf_append(out, " ", 1) < 0)
        return -1;
    return imap_out_literal(out, p, len, sec->binary);
}

int imap_fetch_section(const struct imap_section *sec, struct imap_msg_ctx *m,
                       struct buf *out)
{
    size_t start = out->len;
    struct buf tmp;
    buf_init(&tmp, out->max);
    const char *p;
    size_t len;
    int rc = section_bytes(sec, m, &tmp, &p, &len);
    if (rc == 0)
        rc = write_section(sec, p, len, out);
    buf_deinit(&tmp);
    if (rc != 0)
        imap_out_truncate(out, start);
    return rc;
}
