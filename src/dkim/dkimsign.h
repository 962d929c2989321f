/* dkimsign: DKIM signatures made with libopendkim (RFC 6376, RFC 8463).
 *
 * One library handle for the process, made on first use (pthread_once) and
 * shared by the worker threads, as the opendkim filter shares its own.
 * Signatures use relaxed/relaxed canonicalisation, rsa-sha256 or
 * ed25519-sha256 by the key's type, cover these header fields when present:
 *   From To Cc Subject Date Message-ID MIME-Version Content-Type
 *   Reply-To In-Reply-To References
 * and over-sign From (h= names it once more than it occurs, so a From: added
 * on the way breaks the signature). Signing is CPU work of about a
 * millisecond (RSA-2048): call it from a worker thread, never a loop. */
#ifndef ROOST_DKIMSIGN_H
#define ROOST_DKIMSIGN_H

#include <stddef.h>

struct dkimkey;

/* Signs MSG (LEN bytes: header, empty line, body, lines ending CRLF) with
 * KEY. Returns the complete field "DKIM-Signature: ...\r\n" (folded with
 * CRLF + TAB), malloc'd; or NULL with ERROR_R set. ID names the message in
 * libopendkim's own diagnostics (the queue id). */
char *dkimsign_message(const struct dkimkey *key, const char *msg, size_t len, const char *id,
                       const char **error_r);

#endif
