/* imap_fetch: builds the untagged FETCH response of one message (RFC 3501
 * 7.4.2, RFC 9051 7.5.2, RFC 7162 MODSEQ, RFC 3516 BINARY) from its index
 * row and, only when an item needs it, its file and MIME structure.
 *
 * Runs on a worker thread. Pure formatting: it never changes flags; the
 * caller sets \Seen first for non-PEEK body fetches (imap_fetch_sets_seen)
 * and passes the row with the new flags and ADD_FLAGS set so that FLAGS is
 * included in the reply as RFC 3501 6.4.5 requires. */
#ifndef ROOST_IMAP_FETCH_H
#define ROOST_IMAP_FETCH_H

#include "imap/imap_parse.h"
#include "store/store_imap.h"

#include <stddef.h>
#include <stdint.h>

struct buf;
struct mime_msg;

/* One message being evaluated (FETCH or SEARCH): its row and, loaded on
 * first need, its bytes and MIME structure. */
struct imap_msg_ctx {
    uint32_t seq;
    const struct store_fmsg *row;
    char *data;                 /* the message (map.data) */
    size_t len;
    struct store_msg_map map;
    struct mime_msg *mime;
    struct mime_msg *hdr;       /* the index's cached header block, parsed */
};
/* Loads the message bytes (once). 0 ok, -1 (file gone: the message was
 * expunged meanwhile). */
int imap_msg_load(struct imap_msg_ctx *m);
/* Parses the MIME structure (once; loads first). */
const struct mime_msg *imap_msg_mime(struct imap_msg_ctx *m);
/* The message's top-level header as a parsed message: from the index's
 * cached header block when the row has one (no file is read), else the
 * whole message (imap_msg_mime). */
const struct mime_msg *imap_msg_header(struct imap_msg_ctx *m);
void imap_msg_release(struct imap_msg_ctx *m);

/* 1 when SPEC fetches a body part without PEEK (BODY[...], RFC822,
 * RFC822.TEXT, BINARY[...]): the caller sets \Seen. */
int imap_fetch_sets_seen(const struct imap_fetch_spec *spec);
/* 1 when SPEC needs the message file (not only index columns). */
int imap_fetch_needs_file(const struct imap_fetch_spec *spec);

struct imap_fetch_opts {
    int uid_command;        /* UID FETCH: UID is always included */
    int add_flags;          /* FLAGS changed by this fetch (\Seen): include */
    int condstore;          /* CONDSTORE enabled: include MODSEQ always */
    int utf8;               /* UTF8=ACCEPT enabled */
};
/* Appends "* <seq> FETCH (...)\r\n" to OUT. 0 ok, 1 the message file is
 * gone (skip it), 2 BINARY of an unknown transfer encoding (the command
 * answers NO [UNKNOWN-CTE]), -1 OUT full. */
int imap_fetch_message(const struct imap_fetch_spec *spec, const struct imap_fetch_opts *o,
                       struct imap_msg_ctx *m, struct buf *out);

/* "(\Seen \Flagged kw1)" for SYSFLAGS + KEYWORDS, appended to OUT. */
int imap_flags_format(unsigned sysflags, const char *keywords, struct buf *out);

#endif
