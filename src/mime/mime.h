/* mime: what IMAP (and SMTP's checks) need from a message's MIME structure,
 * on GMime 3: the IMAP ENVELOPE, BODY and BODYSTRUCTURE strings (RFC 3501
 * 7.4.2, RFC 9051 7.5.2), the byte ranges of body sections (BODY[1.2.MIME],
 * HEADER, TEXT, ...), decoded section content for BINARY (RFC 3516), header
 * fields decoded from RFC 2047 for SEARCH, and the decoded text of a
 * message for SEARCH BODY/TEXT.
 *
 * Messages are the stored bytes (CRLF line ends). Nothing here blocks on
 * anything but the CPU: call from worker threads (GMime is thread-safe once
 * mime_init has run). Every result is malloc'd/appended by the call and owned
 * by the caller. Malformed messages never fail: they get the structure a
 * lenient parser finds (a message without a blank line is all header; a
 * multipart without boundaries is one text part), as Dovecot does. */
#ifndef ROOST_MIME_H
#define ROOST_MIME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;

/* Once, before any thread uses GMime (roost serve and the tests call it). */
void mime_init(void);

/* The parsed structure of one message, with byte offsets into the message
 * it was parsed from (which must stay alive and unchanged while this is
 * used). */
struct mime_msg;
struct mime_msg *mime_parse(const char *data, size_t len);
void mime_free(struct mime_msg **mp);

/* The IMAP ENVELOPE, e.g. ("date" "subject" ((NIL NIL "a" "b.c")) ...),
 * appended to OUT. Header values are sent as they appear (unfolded, RFC
 * 2047 encoded-words left encoded). Strings are quoted when they can be,
 * else literals: a value with CR or LF, or with 8-bit bytes is a literal
 * {n}, except that with UTF8 (a session that enabled UTF8=ACCEPT) valid
 * UTF-8 is quoted. The result may thus contain literals (CRLF inside).
 * 0 ok, -1 OUT full. */
int mime_envelope(const struct mime_msg *m, int utf8, struct buf *out);
/* BODYSTRUCTURE (EXTENDED set) or BODY (extended 0), appended to OUT. */
int mime_bodystructure(const struct mime_msg *m, int extended, int utf8, struct buf *out);

/* A body section. PART is the part path (1.2.3; nparts 0 = the whole
 * message). KIND is one of: */
enum mime_section_kind {
    MIME_SEC_ALL,        /* the part's content (for nparts 0: the whole message) */
    MIME_SEC_HEADER,     /* the header of the message or of an embedded message/rfc822 part */
    MIME_SEC_TEXT,       /* the body of the message or embedded message */
    MIME_SEC_MIME,       /* the MIME header of part PART (nparts >= 1) */
};
/* The byte range [*off, *off + *len) of a section in the message. Returns
 * 0, or 1 when the part does not exist (IMAP then answers an empty string,
 * as RFC 3501 6.4.5 allows, or NIL). A HEADER range includes the blank line
 * that ends the header. */
int mime_section_range(const struct mime_msg *m, const uint32_t *part, int nparts,
                       enum mime_section_kind kind, size_t *off, size_t *len);
/* HEADER.FIELDS (NOT): the header of the message or embedded part PART with
 * only (or without) the named fields, ended by a blank line, appended to OUT.
 * 0 ok, 1 PART does not exist or is not a message/rfc822 part, -1 OUT full. */
int mime_header_fields(const struct mime_msg *m, const uint32_t *part, int nparts,
                       char *const *fields, int nfields, int not, struct buf *out);
/* BINARY[part]: the part's content with its Content-Transfer-Encoding
 * undone, appended to OUT. 0 ok, 1 no such part, 2 unknown encoding
 * (IMAP: NO [UNKNOWN-CTE]), -1 OUT full. */
int mime_binary(const struct mime_msg *m, const uint32_t *part, int nparts, struct buf *out);

/* SEARCH. Every comparison is a case-insensitive substring match on UTF-8
 * (RFC 3501 6.4.4 / 9051: i;unicode-casemap is fine; ASCII case folding is
 * the minimum). */
/* 1 when header field NAME (any occurrence, RFC 2047 decoded, unfolded)
 * contains NEEDLE; with an empty NEEDLE, 1 when the field exists. For
 * FROM/TO/CC/BCC the address list text (display names and addresses) is
 * searched. */
int mime_header_contains(const struct mime_msg *m, const char *name, const char *needle);
/* NEEDLE as the SEARCH comparisons want it (case-folded UTF-8; malloc'd,
 * *len_r its length): fold once, compare with many messages. */
char *mime_search_fold(const char *needle, size_t *len_r);
/* The next From: field of the header block [P, P+LEN) from *POS on: its
 * value unfolded (CR and LF removed), malloc'd, *POS moved past it; NULL at
 * the end of the header. */
char *mime_next_from_field(const char *p, size_t len, size_t *pos);

/* mime_header_contains on a raw header block (DATA[off..off+len), e.g. the
 * index's cached header) with a needle from mime_search_fold. */
int mime_hdrblock_contains(const char *data, size_t off, size_t len, const char *name,
                           const char *folded, size_t nl);
/* 1 when the body text (BODY; with HEADERS also every header: TEXT) of the
 * message contains NEEDLE, after undoing transfer encodings and converting
 * text parts' charsets to UTF-8. Attachments that are not text are searched
 * in their decoded bytes only for ASCII needles. */
int mime_text_contains(const struct mime_msg *m, const char *needle, int headers);
/* The Date: header as Unix time (for SENTBEFORE/SENTON/SENTSINCE; the day is
 * taken in the header's own zone as RFC 3501 says). 0 ok, 1 none or bad. */
int mime_sent_date(const struct mime_msg *m, time_t *t, int *tz_offset_minutes);

#endif
