/* store_append: IMAP APPEND (store_imap.h: store_append; RFC 3501 6.3.11,
 * RFC 4315 APPENDUID). Like store_deliver: the message file is written to
 * msg/tmp/, fsync'd, renamed into msg/ and msg/ fsync'd; then one
 * BEGIN IMMEDIATE transaction checks the quota again, inserts the row with
 * UID = uidnext and MODSEQ = HIGHESTMODSEQ + 1 (with the cached ENVELOPE
 * and BODYSTRUCTURE, store_cache.c) and bumps both. A refused or failed
 * insert removes the file. */
#include "store/store_imap.h"
#include "store/store_int.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The transaction: 0 ok, 1 no such mailbox, 3 over quota, -1 error. */
static int append_index(struct store_ix *ix, const char *name, const char *file, size_t len,
                        const char *flags, time_t internaldate, uint64_t quota_bytes,
                        const struct store_cached *cache, uint32_t *uid_r,
                        uint32_t *uidvalidity_r, int *unknown_r)
{
    sqlite3 *db = ix->db;
    sqlite3_stmt *st = NULL;
    struct store_mbstate mb;
    if (store_ix_exec(db, "BEGIN IMMEDIATE") < 0)
        return -1;
    int rc = store_ix_mbstate(db, name, &mb);
    if (rc != 0)
        goto out;
    rc = store_usage_over(db, quota_bytes, len);
    if (rc != 0) {
        rc = rc > 0 ? 3 : -1;
        goto out;
    }
    rc = -1;
    if (mb.uidnext < 1 || mb.uidnext >= UINT32_MAX)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO messages(mailbox_id, uid, file, size, internaldate,"
                           " modseq, flags, envelope, bodystructure, header)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mb.id);
    sqlite3_bind_int64(st, 2, mb.uidnext);
    sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)internaldate);
    sqlite3_bind_int64(st, 6, mb.highestmodseq + 1);
    sqlite3_bind_text(st, 7, flags, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, cache->envelope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, cache->bodystructure, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 10, cache->header, (int)cache->header_len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    *uid_r = (uint32_t)mb.uidnext;
    *uidvalidity_r = (uint32_t)mb.uidvalidity;
    mb.uidnext++;
    mb.highestmodseq++;
    if (store_ix_mbstate_save(db, &mb) < 0)
        goto out;
    if (store_ix_exec(db, "COMMIT") < 0) {
        *unknown_r = 1;
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        log_error("store", "event=index-failed op=append error=\"%s\"", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(db))
        store_ix_exec(db, "ROLLBACK");
    return rc;
}

int store_append(const char *data_dir, const char *account, const char *name,
                 const char *data, size_t len, unsigned sysflags, const char *keywords,
                 time_t internaldate, uint64_t quota_bytes, uint32_t *uid_r,
                 uint32_t *uidvalidity_r, const char **error_r)
{
    *uid_r = 0;
    *uidvalidity_r = 0;
    if (!name || (!data && len > 0) || !store_keywords_valid(keywords)) {
        *error_r = "bad arguments";
        return -1;
    }
    char *flags = store_flags_join(sysflags, keywords);
    if (strlen(flags) > STORE_MAX_FLAGS_LEN) {
        free(flags);
        *error_r = "too many flags on the message";
        return -1;
    }
    struct store_ix ix;
    if (store_ix_open(data_dir, account, 1, &ix, error_r) != 0) {
        free(flags);
        return -1;
    }
    struct store_mbstate mb;
    int rc = store_ix_mbstate(ix.db, name, &mb);
    if (rc == 0)
        rc = store_usage_over(ix.db, quota_bytes, len) > 0 ? 3 : 0;
    char fname[96], *file = NULL;
    if (rc != 0)
        goto done;
    store_file_name(fname, sizeof fname);
    if (store_file_write(&ix, fname, data ? data : "", len, error_r) < 0) {
        rc = -1;
        goto out;
    }
    file = xasprintf("msg/%s", fname);
    int unknown = 0;
    struct store_cached cache;
    store_structure_compute(data ? data : "", len, &cache);
    rc = append_index(&ix, name, file, len, flags, internaldate ? internaldate : time(NULL),
                      quota_bytes, &cache, uid_r, uidvalidity_r, &unknown);
    store_cached_free(&cache);
    if (rc != 0 && !unknown) {
        char *files[] = { file };
        store_files_unlink(&ix, files, 1);
    }
    if (rc == 0)
        notify_mailbox_changed(account);
done:
    if (rc == 1)
        *error_r = "no such mailbox";
    else if (rc == 3)
        *error_r = "over quota";
    else if (rc < 0)
        *error_r = "cannot update the mailbox index";
out:
    free(file);
    free(flags);
    store_ix_close(&ix);
    return rc;
}
