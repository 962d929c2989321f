/* store_usage: the account's usage for quota (store_imap.h:
 * store_usage_get, RFC 9208 STORAGE and MESSAGE). The one-row `usage` table
 * is kept by triggers on messages (store_index.c, schema 3) in the
 * transaction of every insert and delete, so reading it costs one row;
 * store_usage_over is the check APPEND and COPY run inside their write
 * transaction. */
#include "store/store_imap.h"
#include "store/store_int.h"

#include <string.h>

int store_usage_read(sqlite3 *db, struct store_usage *u)
{
    memset(u, 0, sizeof *u);
    sqlite3_stmt *st = store_stmt_take(db, "SELECT bytes, messages FROM usage WHERE id = 1");
    if (!st)
        return -1;
    int rc = store_ix_step(st);
    if (rc == 0) {
        int64_t b = sqlite3_column_int64(st, 0), m = sqlite3_column_int64(st, 1);
        u->bytes = b > 0 ? (uint64_t)b : 0;
        u->messages = m > 0 ? (uint64_t)m : 0;
    }
    store_stmt_give(db, st);
    return rc < 0 ? -1 : 0;
}

int store_usage_over(sqlite3 *db, uint64_t quota_bytes, uint64_t adding)
{
    struct store_usage u;
    if (quota_bytes == 0)
        return 0;
    if (store_usage_read(db, &u) < 0)
        return -1;
    return u.bytes + adding > quota_bytes ? 1 : 0;
}

int store_usage_get(const char *data_dir, const char *account, struct store_usage *u,
                    const char **error_r)
{
    struct store_ix ix;
    memset(u, 0, sizeof *u);
    int rc = store_ix_open(data_dir, account, 0, &ix, error_r);
    if (rc == 1)
        return 0;   /* no store yet: nothing used */
    if (rc != 0)
        return -1;
    rc = store_usage_read(ix.db, u);
    if (rc < 0)
        *error_r = "cannot read the mailbox index";
    store_ix_close(&ix);
    return rc;
}
