/* imap_rowwalk: the chunked walk over a message set's index rows that
 * FETCH and SEARCH share (see imap_msgcmd.h): IMAP_ROWS_PER_QUERY rows per
 * store query, each row handed out with its sequence number, UIDs the store
 * no longer has counted as missing. Worker threads only; touches no
 * session state. */
#include "imap/imap_msgcmd.h"
#include "store/store_imap.h"

#include <string.h>

int imap_uid_in(const uint32_t *a, uint32_t n, uint32_t v)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] == v)
            return 1;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

void imap_rowwalk_init(struct imap_rowwalk *w, const uint32_t *uid, const uint32_t *seq,
                       uint32_t n)
{
    memset(w, 0, sizeof *w);
    w->uid = uid;
    w->seq = seq;
    w->n = n;
    w->cols = STORE_COL_ALL;
}

int imap_rowwalk_get(struct imap_rowwalk *w, const struct imap_job *j,
                     const struct store_fmsg **row_r, uint32_t *seq_r, const char **error_r)
{
    while (w->rowpos >= w->nrows) {
        /* the chunk is used up: the UIDs it did not return are gone */
        w->missing += w->chunk_end - w->pos;
        w->pos = w->chunk_end;
        store_fmsgs_free(w->rows, w->nrows);
        w->rows = NULL;
        w->nrows = w->rowpos = 0;
        if (w->pos >= w->n)
            return 0;
        uint32_t want = w->n - w->pos;
        if (want > IMAP_ROWS_PER_QUERY)
            want = IMAP_ROWS_PER_QUERY;
        w->chunk_end = w->pos + want;
        if (store_fetch_rows_cols(j->data_dir, j->account, j->mailbox, w->uid + w->pos, want,
                                  w->cols, &w->rows, &w->nrows, error_r) != 0) {
            w->rows = NULL;
            w->nrows = 0;
            w->chunk_end = w->pos;
            return -1;
        }
    }
    const struct store_fmsg *row = &w->rows[w->rowpos];
    while (w->pos < w->chunk_end && w->uid[w->pos] < row->uid) {
        w->missing++;
        w->pos++;
    }
    *row_r = row;
    *seq_r = w->seq ? w->seq[w->pos] : w->pos + 1;
    return 1;
}

void imap_rowwalk_next(struct imap_rowwalk *w)
{
    if (w->rowpos < w->nrows) {
        w->rowpos++;
        w->pos++;
    }
}

int imap_rowwalk_done(const struct imap_rowwalk *w)
{
    return w->rowpos >= w->nrows && w->chunk_end >= w->n;
}

void imap_rowwalk_free(struct imap_rowwalk *w)
{
    store_fmsgs_free(w->rows, w->nrows);
    w->rows = NULL;
    w->nrows = w->rowpos = 0;
}
