/* store_copy: IMAP COPY and MOVE (store_imap.h: store_copy; RFC 4315
 * COPYUID, RFC 6851 MOVE).
 *
 * One BEGIN IMMEDIATE transaction. COPY gives each copy of a whole-file
 * message its own file: a hard link (messages are never modified) under a
 * new name in msg/, so expunging one copy unlinks only its own name and the
 * other's data stays; the links are made and msg/ fsync'd before the
 * COMMIT, and removed again if the transaction fails. A copy of a message
 * in a pack is a row naming the same pack and offset (the pack stays while
 * any row names it: store_pack.c). MOVE re-homes the rows (new UIDs in TO, the
 * file and the deliveries row follow) and records the old UIDs in FROM's
 * `vanished`. The target's messages get its HIGHESTMODSEQ + 1, the source's
 * vanished rows the source's. Quota (COPY only) is checked in the
 * transaction. */
#include "store/store_imap.h"
#include "store/store_int.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct copy_row {
    uint32_t uid;
    int64_t size, internaldate;
    char *file, *flags, *envelope, *bodystructure;
    int64_t offset;     /* in the pack FILE; STORE_WHOLE_FILE: a whole file */
    char *newfile;      /* COPY: the link made for it, or the same pack */
    int linked;         /* NEWFILE is a new link (removed if the COPY fails) */
};

struct copy_job {
    struct store_ix ix;
    struct store_mbstate from, to;
    struct copy_row *rows;
    uint32_t n;
    int move;
};

static char *col_dup(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? xstrdup(t) : NULL;
}

/* The source rows of UIDS that exist, in the order given. */
static int copy_collect(struct copy_job *j, const uint32_t *uids, uint32_t n,
                        uint64_t *bytes_r)
{
    sqlite3_stmt *st;
    *bytes_r = 0;
    if (sqlite3_prepare_v2(j->ix.db,
                           "SELECT size, internaldate, file, flags, envelope, bodystructure, offset"
                           " FROM messages WHERE mailbox_id = ? AND uid = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    j->rows = n ? xcalloc(n, sizeof *j->rows) : NULL;
    int step = SQLITE_DONE;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0 && uids[i] == uids[i - 1])
            continue;   /* UIDS come sorted: a repeat is adjacent */
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, j->from.id);
        sqlite3_bind_int64(st, 2, uids[i]);
        step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            continue;
        if (step != SQLITE_ROW)
            break;
        struct copy_row *r = &j->rows[j->n++];
        r->uid = uids[i];
        r->size = sqlite3_column_int64(st, 0);
        r->internaldate = sqlite3_column_int64(st, 1);
        r->file = col_dup(st, 2);
        r->flags = col_dup(st, 3);
        r->envelope = col_dup(st, 4);
        r->bodystructure = col_dup(st, 5);
        r->offset = sqlite3_column_type(st, 6) == SQLITE_NULL ? STORE_WHOLE_FILE
                                                              : sqlite3_column_int64(st, 6);
        *bytes_r += (uint64_t)r->size;
        step = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : -1;
}

/* COPY: a new hard link per whole-file row, then msg/ fsync'd; a pack row
 * names the same pack. */
static int copy_links(struct copy_job *j, const char **error_r)
{
    int links = 0;
    for (uint32_t i = 0; i < j->n; i++) {
        if (j->rows[i].offset != STORE_WHOLE_FILE) {
            j->rows[i].newfile = xstrdup(j->rows[i].file);
            continue;
        }
        char name[96];
        store_file_name(name, sizeof name);
        char *src = xasprintf("%s/%s", j->ix.root, j->rows[i].file);
        char *dst = xasprintf("%s/%s", j->ix.msg_dir, name);
        int r = link(src, dst);
        if (r < 0)
            log_error("store", "event=link-failed file=%s error=\"%s\"", j->rows[i].file,
                      strerror(errno));
        free(src);
        free(dst);
        if (r < 0) {
            *error_r = "cannot link the message file";
            return -1;
        }
        j->rows[i].newfile = xasprintf("msg/%s", name);
        j->rows[i].linked = 1;
        links++;
    }
    if (links > 0 && fs_fsync_dir_path(j->ix.msg_dir) < 0) {
        *error_r = "cannot fsync the message directory";
        return -1;
    }
    return 0;
}

static void copy_unlink_new(struct copy_job *j)
{
    char **files = xcalloc(j->n ? j->n : 1, sizeof *files);
    size_t k = 0;
    for (uint32_t i = 0; i < j->n; i++)
        if (j->rows[i].linked)
            files[k++] = j->rows[i].newfile;
    store_files_unlink(&j->ix, files, k);
    free(files);
}

static int copy_insert(struct copy_job *j, int64_t to_modseq, uint32_t *dst)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(j->ix.db,
                           "INSERT INTO messages(mailbox_id, uid, file, size, internaldate,"
                           " modseq, flags, envelope, bodystructure, header, offset)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
                           " (SELECT header FROM messages WHERE mailbox_id = ?10 AND uid = ?11),"
                           " ?12)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = 0;
    for (uint32_t i = 0; i < j->n && rc == 0; i++) {
        struct copy_row *r = &j->rows[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, j->to.id);
        sqlite3_bind_int64(st, 2, j->to.uidnext);
        sqlite3_bind_text(st, 3, r->newfile, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, r->size);
        sqlite3_bind_int64(st, 5, r->internaldate);
        sqlite3_bind_int64(st, 6, to_modseq);
        sqlite3_bind_text(st, 7, r->flags ? r->flags : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, r->envelope, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, r->bodystructure, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 10, j->from.id);
        sqlite3_bind_int64(st, 11, r->uid);
        if (r->offset != STORE_WHOLE_FILE)
            sqlite3_bind_int64(st, 12, r->offset);
        else
            sqlite3_bind_null(st, 12);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = -1;
        dst[i] = (uint32_t)j->to.uidnext++;
    }
    sqlite3_finalize(st);
    return rc;
}

static int move_rows(struct copy_job *j, int64_t to_modseq, int64_t from_modseq,
                     uint32_t *dst)
{
    static const char *const sql[3] = {
        "UPDATE messages SET mailbox_id = ?1, uid = ?2, modseq = ?3"
        " WHERE mailbox_id = ?4 AND uid = ?5",
        "UPDATE deliveries SET mailbox_id = ?1, uid = ?2 WHERE mailbox_id = ?4 AND uid = ?5",
        "INSERT OR REPLACE INTO vanished(mailbox_id, uid, modseq) VALUES (?4, ?5, ?6)",
    };
    sqlite3_stmt *st[3] = { NULL, NULL, NULL };
    int rc = -1;
    for (int k = 0; k < 3; k++)
        if (sqlite3_prepare_v2(j->ix.db, sql[k], -1, &st[k], NULL) != SQLITE_OK)
            goto out;
    for (uint32_t i = 0; i < j->n; i++) {
        for (int k = 0; k < 3; k++) {
            sqlite3_reset(st[k]);
            int np = sqlite3_bind_parameter_count(st[k]);
            int64_t v[6] = { j->to.id, j->to.uidnext, to_modseq, j->from.id, j->rows[i].uid,
                             from_modseq };
            for (int p = 1; p <= np; p++)   /* ?1..?6, each statement uses some */
                sqlite3_bind_int64(st[k], p, v[p - 1]);
            if (sqlite3_step(st[k]) != SQLITE_DONE)
                goto out;
        }
        dst[i] = (uint32_t)j->to.uidnext++;
    }
    rc = 0;
out:
    for (int k = 0; k < 3; k++)
        sqlite3_finalize(st[k]);
    return rc;
}

static void copy_job_free(struct copy_job *j)
{
    for (uint32_t i = 0; i < j->n; i++) {
        free(j->rows[i].file);
        free(j->rows[i].flags);
        free(j->rows[i].envelope);
        free(j->rows[i].bodystructure);
        free(j->rows[i].newfile);
    }
    free(j->rows);
    if (j->ix.db && !sqlite3_get_autocommit(j->ix.db))
        store_ix_exec(j->ix.db, "ROLLBACK");
    store_ix_close(&j->ix);
}

/* Inside the transaction: the new rows, the maps, both mailboxes' state. */
static int copy_apply(struct copy_job *j, uint32_t *dst, const char **error_r)
{
    int same = j->from.id == j->to.id;
    int64_t to_modseq = j->to.highestmodseq + 1;
    int64_t from_modseq = same ? to_modseq : j->from.highestmodseq + 1;
    if (j->to.uidnext < 1 || j->to.uidnext + (int64_t)j->n > UINT32_MAX) {
        *error_r = "no UIDs left in the target mailbox";
        return -1;
    }
    if (j->move) {
        if (move_rows(j, to_modseq, from_modseq, dst) < 0)
            return -1;
    } else if (copy_links(j, error_r) < 0 || copy_insert(j, to_modseq, dst) < 0) {
        return -1;
    }
    j->to.highestmodseq = to_modseq;
    if (store_ix_mbstate_save(j->ix.db, &j->to) < 0)
        return -1;
    if (j->move && !same) {
        j->from.highestmodseq = from_modseq;
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(j->ix.db, "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?",
                               -1, &st, NULL) != SQLITE_OK)
            return -1;
        sqlite3_bind_int64(st, 1, from_modseq);
        sqlite3_bind_int64(st, 2, j->from.id);
        int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
        return rc;
    }
    return 0;
}

int store_copy(const char *data_dir, const char *account, const char *from, const char *to,
               const uint32_t *uids, uint32_t n, int move, uint64_t quota_bytes,
               uint32_t **src_r, uint32_t **dst_r, uint32_t *ncopied_r,
               uint32_t *uidvalidity_r, const char **error_r)
{
    *src_r = *dst_r = NULL;
    *ncopied_r = 0;
    *uidvalidity_r = 0;
    if (!from || !to || (n > 0 && !uids)) {
        *error_r = "bad arguments";
        return -1;
    }
    struct copy_job j;
    memset(&j, 0, sizeof j);
    j.move = move;
    if (store_ix_open(data_dir, account, 1, &j.ix, error_r) != 0)
        return -1;
    uint32_t *dst = NULL;
    int rc = -1;
    if (store_ix_exec(j.ix.db, "BEGIN IMMEDIATE") < 0) {
        *error_r = "cannot lock the mailbox index";
        goto out;
    }
    int m = store_ix_mbstate(j.ix.db, from, &j.from);
    if (m != 0) {
        *error_r = m > 0 ? "no such source mailbox" : "cannot read the mailbox index";
        goto out;
    }
    m = store_ix_mbstate(j.ix.db, to, &j.to);
    if (m != 0) {
        *error_r = m > 0 ? "no such mailbox" : "cannot read the mailbox index";
        rc = m > 0 ? 1 : -1;
        goto out;
    }
    *uidvalidity_r = (uint32_t)j.to.uidvalidity;
    uint64_t bytes;
    if (copy_collect(&j, uids, n, &bytes) < 0)
        goto sqlfail;
    if (j.n == 0) {
        rc = 0;
        goto out;
    }
    m = move ? 0 : store_usage_over(j.ix.db, quota_bytes, bytes);
    if (m != 0) {
        *error_r = m > 0 ? "over quota" : "cannot read the mailbox index";
        rc = m > 0 ? 3 : -1;
        goto out;
    }
    dst = xcalloc(j.n, sizeof *dst);
    const char *why = NULL;
    if (copy_apply(&j, dst, &why) < 0 || store_ix_exec(j.ix.db, "COMMIT") < 0) {
        if (!move)
            copy_unlink_new(&j);
        if (why) {
            *error_r = why;
            goto out;
        }
        goto sqlfail;
    }
    notify_mailbox_changed(account);
    uint32_t *src = xcalloc(j.n, sizeof *src);
    for (uint32_t i = 0; i < j.n; i++)
        src[i] = j.rows[i].uid;
    *src_r = src;
    *dst_r = dst;
    *ncopied_r = j.n;
    dst = NULL;
    rc = 0;
    goto out;
sqlfail:
    log_error("store", "event=index-failed op=copy error=\"%s\"", sqlite3_errmsg(j.ix.db));
    *error_r = "cannot update the mailbox index";
out:
    free(dst);
    copy_job_free(&j);
    return rc;
}
