/* imap_search: evaluates a parsed SEARCH program (imap_parse.h) against one
 * message, and formats SEARCH / ESEARCH replies.
 *
 * Runs on a worker thread. Keys on flags, UIDs, sequence numbers, sizes,
 * internal dates and MODSEQ use the index row only; header keys parse the
 * message (imap_msg_mime), body keys decode it (mime_text_contains). */
#ifndef ROOST_IMAP_SEARCH_H
#define ROOST_IMAP_SEARCH_H

#include "imap/imap_fetch.h"
#include "imap/imap_parse.h"

#include <stdint.h>

struct buf;

/* What the sequence set keys are resolved against. */
struct imap_search_env {
    uint32_t count;             /* messages in the session's view ('*' as seq) */
    uint32_t max_uid;           /* highest UID in the view ('*' as UID) */
    const uint32_t *saved;      /* "$" (RFC 5182): saved UIDs, ascending */
    uint32_t nsaved;
    time_t now;                 /* OLDER/YOUNGER */
};
/* 1 matches, 0 does not, -1 the message file is gone. */
int imap_search_match(const struct imap_search_prog *p, const struct imap_search_env *env,
                      struct imap_msg_ctx *m);
/* 1 when P needs only index columns (no file): evaluation is cheap. */
int imap_search_index_only(const struct imap_search_prog *p);
/* 1 when P has a key on header fields (the cached header block serves it). */
int imap_search_reads_header(const struct imap_search_prog *p);
/* Case-folds the strings of P's header keys once, before the messages are
 * compared (worker threads: GLib). */
void imap_search_prepare(struct imap_search_prog *p);

/* The reply for matches (sequence numbers or UIDs per UID_COMMAND, both
 * ascending): "* SEARCH 1 2 3 (MODSEQ n)\r\n" or, for RETURN (...),
 * "* ESEARCH (TAG "a1") UID MIN 1 MAX 3 COUNT 3 ALL 1:3 (MODSEQ n)\r\n".
 * HIGHEST_MODSEQ is the largest MODSEQ among the matches (printed when
 * P->uses_modseq). */
int imap_search_format(const struct imap_search_prog *p, const char *tag, int uid_command,
                       const uint32_t *matches, uint32_t n, uint64_t highest_modseq,
                       struct buf *out);

#endif
