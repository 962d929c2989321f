/* imap_fetch_int: the pieces of FETCH evaluation shared by the files of
 * imap_fetch*.c and imap_search*.c only: output helpers that can be undone
 * when OUT fills up, body sections, and the BODY structure derived from a
 * cached BODYSTRUCTURE. */
#ifndef ROOST_IMAP_FETCH_INT_H
#define ROOST_IMAP_FETCH_INT_H

#include "imap/imap_fetch.h"

#include <stddef.h>

struct buf;

/* Appends a NUL-terminated string / a decimal number. 0 ok, -1 full. */
int imap_out_str(struct buf *out, const char *s);
int imap_out_u64(struct buf *out, uint64_t v);
/* Cuts OUT back to LEN (undoes a partly written item). */
void imap_out_truncate(struct buf *out, size_t len);
/* Message data as an IMAP string: "" when empty, else a literal "{n}\r\n"
 * with the bytes, or a literal8 "~{n}\r\n" when LITERAL8_IF_NUL is set
 * and the data holds a NUL (RFC 3516 4.2). 0 ok, -1 full. */
int imap_out_literal(struct buf *out, const char *data, size_t len, int literal8_if_nul);

/* The numbers V as a sequence set, runs of consecutive numbers as "a:b",
 * in the order given ("1:3,5,8:9"; COPYUID sets keep the source order).
 * 0 ok, -1 full. */
int imap_out_set(struct buf *out, const uint32_t *v, uint32_t n);

/* Appends one body section item (BODY[...]<o> data, BINARY[...] data or
 * BINARY.SIZE[...] n) for message M. 0 ok, 1 the message file is gone,
 * 2 BINARY of an unknown transfer encoding, -1 OUT full. */
int imap_fetch_section(const struct imap_section *sec, struct imap_msg_ctx *m,
                       struct buf *out);

/* Writes the non-extensible BODY structure (RFC 3501 7.4.2 BODY) derived
 * from an extended BODYSTRUCTURE string by leaving out the extension data.
 * 0 ok, -1 OUT full, -2 BS malformed (on errors OUT is left as it was). */
int imap_body_from_bodystructure(const char *bs, size_t len, struct buf *out);

/* The end of the top-level header of DATA: the offset just past the blank
 * line that ends it (the whole message when there is none). */
size_t imap_header_end(const char *data, size_t len);

#endif
