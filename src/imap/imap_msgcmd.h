/* imap_msgcmd: what the message commands (imap_fetch_cmd.c,
 * imap_store_cmd.c, imap_search_cmd.c, imap_copy_cmd.c) share: reading the
 * sequence-set argument and the row walk that maps store rows back to
 * their sequence numbers. Internal to those files. */
#ifndef ROOST_IMAP_MSGCMD_H
#define ROOST_IMAP_MSGCMD_H

#include "imap/imap_int.h"

#include <stdint.h>

/* Rows read from the store per query (FETCH, SEARCH): one SQL round per
 * chunk, bounded memory. */
#define IMAP_ROWS_PER_QUERY 512

/* Parses the sequence-set argument ARG and resolves it against the view
 * (imap_msgset_resolve). 0 ok (free *SET and *MS); -1 after answering BAD. */
int imap_msgcmd_set(struct imap_session *s, const struct imap_arg *arg, int uid,
                    struct imap_seqset *set, struct imap_msgset *ms);

/* Walks UIDs in chunks of IMAP_ROWS_PER_QUERY: fetches the rows of the next
 * chunk when the current one is used up, and gives each row with its
 * sequence number. UID and SEQ are parallel, ascending. Runs on a worker. */
struct imap_rowwalk {
    const uint32_t *uid, *seq;
    uint32_t n;
    uint32_t pos;            /* index in uid[] of the current row */
    uint32_t chunk_end;      /* uid[pos..chunk_end) are the fetched chunk */
    struct store_fmsg *rows;
    uint32_t nrows, rowpos;
    uint32_t missing;        /* UIDs the store no longer has */
    unsigned cols;           /* cached columns to read (store_row_cols; init: all) */
};
void imap_rowwalk_init(struct imap_rowwalk *w, const uint32_t *uid, const uint32_t *seq,
                       uint32_t n);
/* 1 with *ROW_R and *SEQ_R (the current row), 0 at the end, -1 store error
 * (*error_r). The row stays current until imap_rowwalk_next. */
int imap_rowwalk_get(struct imap_rowwalk *w, const struct imap_job *j,
                     const struct store_fmsg **row_r, uint32_t *seq_r, const char **error_r);
void imap_rowwalk_next(struct imap_rowwalk *w);
/* 1 when every row has been handed out (no store round needed to know). */
int imap_rowwalk_done(const struct imap_rowwalk *w);
void imap_rowwalk_free(struct imap_rowwalk *w);

/* 1 when the ascending array A holds V. */
int imap_uid_in(const uint32_t *a, uint32_t n, uint32_t v);

#endif
