/* smtp_data: the incremental DATA reader (RFC 5321 4.1.1.4 and 4.5.2:
 * end-of-data detection and dot-unstuffing) with Roost's SMTP-smuggling
 * policy, and the bare CR/LF scan for BDAT chunks (RFC 3030).
 *
 * Policy (DESIGN.md "SMTP smuggling"): the content starts at a line start.
 * A line ends only at CR LF. The ONLY end of the message is CR LF "." CR LF
 * where that first CR LF ends a line (or the "." is the first byte of the
 * content). A bare LF (not preceded by CR) or a bare CR (not followed by LF)
 * never ends a line nor the message: it is stored as is and sets bare_eol,
 * and the session refuses the message after the real end (554 5.6.0).
 * Dot-unstuffing: at a line start, a "." followed by anything but CR LF is
 * removed (only that first dot).
 *
 * The reader gives the same output and state whatever way its input is
 * split (whole, byte by byte, between CR and LF, between "." and CR). */
#ifndef ROOST_SMTP_DATA_H
#define ROOST_SMTP_DATA_H

#include "core/buf.h"

#include <stddef.h>

struct smtp_data_reader {
    int state;    /* internal (enum in smtp_data.c) */
    size_t max;   /* content bytes we keep */
    size_t size;  /* unstuffed content seen so far, kept or not (saturates) */
    int oversize; /* content went past MAX (or OUT was full): not all kept */
    int bare_eol; /* a bare CR or bare LF was seen */
    int done;     /* the terminating CRLF.CRLF was consumed */
};

void smtp_data_init(struct smtp_data_reader *r, size_t max);

/* Consumes up to LEN bytes of IN, appending the unstuffed content to OUT (the
 * lines keep their CRLF; the final ".\r\n" is not part of the content, the
 * CRLF before it is). Stops right after the terminating CRLF.CRLF
 * (r->done = 1) so the caller keeps the bytes that follow (pipelined
 * commands). Returns the number of bytes consumed (LEN unless done; 0 once
 * done). Content beyond MAX is not appended and sets r->oversize; the reader
 * keeps consuming until the end. When OUT has less room than that, what fits
 * is appended and the rest counts as oversize too. The bytes appended are
 * always a prefix of the content, independent of how IN was split. */
size_t smtp_data_feed(struct smtp_data_reader *r, const char *in, size_t len, struct buf *out);

/* For BDAT chunks (no unstuffing): scans a chunk for bare CR or bare LF,
 * carrying state across chunks in *STATE (init 0), so a CR at the end of one
 * chunk and an LF at the start of the next make a proper CRLF. Call it once
 * more with P == NULL (and LEN 0) after the LAST chunk: a CR that ended the
 * data then counts as bare (a non-NULL P with LEN 0 is a no-op). *STATE is 0
 * exactly when nothing bare was seen and no CR is pending, so "*STATE != 0"
 * after the last chunk also means bare. Returns 1 if a bare CR/LF was seen
 * so far. */
int smtp_bare_eol_scan(const char *p, size_t len, int *state);

#endif
