/* store_change: changes to stored messages (store.h: store_expunge,
 * store_add_flag, store_move) and the flag-list helper store_flags_have
 * (store_int.h, also used by store_pop.c). The index itself (opening it,
 * its schema and migrations, mailbox lookup) belongs to store_index.c.
 *
 * Every change runs in one BEGIN IMMEDIATE transaction on a connection with
 * synchronous=FULL, so it is on stable storage when COMMIT returns. A change
 * that touches at least one message takes the mailbox's HIGHESTMODSEQ + 1 as
 * its MODSEQ, gives it to every message it changed and stores it as the new
 * HIGHESTMODSEQ; UIDs that are not in the mailbox are skipped, and a call
 * that changes nothing bumps nothing.
 *
 * Expunge and move record the UIDs that left a mailbox in `vanished` with
 * that MODSEQ. Expunged files are unlinked only after the COMMIT, then msg/
 * is fsync'd: a crash in between leaves an orphan file, which store.c
 * ignores. The deliveries row of an expunged message stays, so a redelivery
 * of its queue id is still a duplicate and a deleted message never comes
 * back; a moved message keeps its file and its deliveries row follows it. */
#include "store/store.h"
#include "store/store_int.h"
#include "core/fsutil.h"
#include "core/notify.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The per-message statements, prepared once per change (a POP3 QUIT may
 * expunge tens of thousands of messages in one call). */
static const char sql_expunge[] =
    "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING file";
static const char sql_vanished[] =
    "INSERT OR REPLACE INTO vanished(mailbox_id, uid, modseq) VALUES (?, ?, ?)";
static const char sql_flags_get[] = "SELECT flags FROM messages WHERE mailbox_id = ? AND uid = ?";
static const char sql_flags_set[] =
    "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?";
static const char sql_move[] = "UPDATE messages SET mailbox_id = ?, uid = ?, modseq = ?"
                               " WHERE mailbox_id = ? AND uid = ?";
static const char sql_move_delivery[] =
    "UPDATE deliveries SET mailbox_id = ?, uid = ? WHERE mailbox_id = ? AND uid = ?";
#define CHANGE_STMTS 3

/* The files of the expunged messages, unlinked after the COMMIT. */
struct file_list {
    char **names;   /* relative to the account root */
    size_t n, cap;
};

/* A change in progress: the open index, the mailbox and its next MODSEQ. */
struct change {
    struct store_ix ix;
    int64_t mbox;
    int64_t modseq;     /* the MODSEQ this change gives */
    int changed;        /* messages changed so far */
    const char *stmt_sql[CHANGE_STMTS];
    sqlite3_stmt *stmt[CHANGE_STMTS];
};

static int flag_valid(const char *flag);
static int uids_valid(const uint32_t *uids, int n, const char **error_r);
static int change_begin(const char *data_dir, const char *account, const char *mailbox,
                        struct change *c, const char **error_r);
static int mailbox_next_modseq(sqlite3 *db, int64_t mbox, int64_t *modseq_r,
                               int64_t *uidnext_r);
static int mailbox_store_modseq(sqlite3 *db, int64_t mbox, int64_t modseq);
static int change_commit(struct change *c, const char **error_r);
static void change_abort(struct change *c);
static sqlite3_stmt *change_prep(struct change *c, const char *sql);
static void change_reset_all(struct change *c);
static void change_finish(struct change *c);
static int vanished_record(struct change *c, uint32_t uid);
static int expunge_one(struct change *c, uint32_t uid, struct file_list *fl);
static void file_list_free(struct file_list *fl);
static int flag_add_one(struct change *c, uint32_t uid, const char *flag,
                        const char **error_r);
static int move_one(struct change *c, int64_t to, int64_t *uidnext, int64_t to_modseq,
                    uint32_t uid, const char **error_r);
static int move_store_target(sqlite3 *db, int64_t to, int64_t uidnext, int64_t modseq);
static int move_target(struct change *c, const char *to_name, int64_t *to_r,
                       int64_t *uidnext_r, int64_t *modseq_r, const char **error_r);
static const char *qa(char *out, size_t outsz, const char *s);

/* ---------------------------------------------------------------- flags */

int store_flags_have(const char *flags, const char *flag)
{
    size_t fl = strlen(flag);
    const char *p = flags;
    while (p && *p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == fl && n > 0 && strncasecmp(p, flag, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* ------------------------------------------------------------ the changes */

/* RFC 3501 flag: "\" atom (system flag) or atom (keyword); we bound it. */
static int flag_valid(const char *flag)
{
    if (!flag)
        return 0;
    const char *p = flag[0] == '\\' ? flag + 1 : flag;
    size_t n = strlen(flag);
    if (!*p || n > STORE_MAX_FLAG_LEN)
        return 0;
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch))
            return 0;
    }
    return 1;
}

static int uids_valid(const uint32_t *uids, int n, const char **error_r)
{
    if (n < 0 || (n > 0 && !uids)) {
        *error_r = "bad arguments";
        return 0;
    }
    return 1;
}

/* 0 found (modseq = highestmodseq + 1), 1 none, -1 error. */
static int mailbox_next_modseq(sqlite3 *db, int64_t mbox, int64_t *modseq_r,
                               int64_t *uidnext_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT highestmodseq, uidnext FROM mailboxes WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, mbox);
    int rc = store_ix_step(st);
    if (rc == 0) {
        *modseq_r = sqlite3_column_int64(st, 0) + 1;
        if (uidnext_r)
            *uidnext_r = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc;
}

static int mailbox_store_modseq(sqlite3 *db, int64_t mbox, int64_t modseq)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, modseq);
    sqlite3_bind_int64(st, 2, mbox);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* Opens the index, finds MAILBOX and starts the write transaction. */
static int change_begin(const char *data_dir, const char *account, const char *mailbox,
                        struct change *c, const char **error_r)
{
    memset(c, 0, sizeof *c);
    if (!mailbox) {
        *error_r = "bad arguments";
        return -1;
    }
    if (store_ix_open(data_dir, account, 0, &c->ix, error_r) != 0)
        return -1;
    if (store_ix_exec(c->ix.db, "BEGIN IMMEDIATE") < 0) {
        *error_r = "cannot lock the mailbox index";
        change_finish(c);
        return -1;
    }
    int m = store_ix_mailbox(c->ix.db, mailbox, &c->mbox);
    if (m == 0)
        m = mailbox_next_modseq(c->ix.db, c->mbox, &c->modseq, NULL);
    if (m != 0) {
        *error_r = m > 0 ? "no such mailbox" : "cannot read the mailbox index";
        change_abort(c);
        return -1;
    }
    return 0;
}

/* Stores the new HIGHESTMODSEQ when something changed, then COMMITs (a
 * change of nothing just ends the transaction). Closes the index. */
static int change_commit(struct change *c, const char **error_r)
{
    sqlite3 *db = c->ix.db;
    change_reset_all(c);
    if (c->changed > 0 && mailbox_store_modseq(db, c->mbox, c->modseq) < 0) {
        *error_r = "cannot update the mailbox index";
        change_abort(c);
        return -1;
    }
    if (store_ix_exec(db, c->changed > 0 ? "COMMIT" : "ROLLBACK") < 0) {
        *error_r = "cannot commit the mailbox index";
        change_abort(c);
        return -1;
    }
    return 0;
}

static void change_abort(struct change *c)
{
    change_reset_all(c);
    if (c->ix.db && !sqlite3_get_autocommit(c->ix.db))
        store_ix_exec(c->ix.db, "ROLLBACK");
    change_finish(c);
}

/* The statement for SQL (one of the sql_* above), prepared on first use and
 * reset for the next; it stays owned by C. NULL on error. */
static sqlite3_stmt *change_prep(struct change *c, const char *sql)
{
    int i;
    for (i = 0; i < CHANGE_STMTS && c->stmt_sql[i]; i++) {
        if (c->stmt_sql[i] == sql) {
            sqlite3_reset(c->stmt[i]);
            sqlite3_clear_bindings(c->stmt[i]);
            return c->stmt[i];
        }
    }
    if (i == CHANGE_STMTS)
        return NULL;   /* a programming error: raise CHANGE_STMTS */
    if (sqlite3_prepare_v2(c->ix.db, sql, -1, &c->stmt[i], NULL) != SQLITE_OK) {
        sqlite3_finalize(c->stmt[i]);
        c->stmt[i] = NULL;
        return NULL;
    }
    c->stmt_sql[i] = sql;
    return c->stmt[i];
}

static void change_reset_all(struct change *c)
{
    for (int i = 0; i < CHANGE_STMTS && c->stmt[i]; i++)
        sqlite3_reset(c->stmt[i]);
}

/* Finalizes the statements and closes the index. */
static void change_finish(struct change *c)
{
    for (int i = 0; i < CHANGE_STMTS; i++) {
        sqlite3_finalize(c->stmt[i]);
        c->stmt[i] = NULL;
        c->stmt_sql[i] = NULL;
    }
    store_ix_close(&c->ix);
}

static int vanished_record(struct change *c, uint32_t uid)
{
    sqlite3_stmt *st = change_prep(c, sql_vanished);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, c->mbox);
    sqlite3_bind_int64(st, 2, uid);
    sqlite3_bind_int64(st, 3, c->modseq);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
}

/* Client-supplied names (mailbox, flag) quoted for the log. */
static const char *qa(char *out, size_t outsz, const char *s)
{
    return log_q(out, outsz, s, strlen(s));
}

/* ---- expunge ---- */

/* Deletes the row of UID (if any) and appends its file to FL. */
static int expunge_one(struct change *c, uint32_t uid, struct file_list *fl)
{
    sqlite3_stmt *st = change_prep(c, sql_expunge);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, c->mbox);
    sqlite3_bind_int64(st, 2, uid);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (fl->n == fl->cap) {
            fl->cap = fl->cap ? xmul(fl->cap, 2) : 64;
            fl->names = xrealloc(fl->names, xmul(fl->cap, sizeof *fl->names));
        }
        fl->names[fl->n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
        step = sqlite3_step(st);
        c->changed++;
        if (step == SQLITE_DONE && vanished_record(c, uid) < 0)
            step = SQLITE_ERROR;
    }
    return step == SQLITE_DONE ? 0 : -1;
}

int store_expunge(const char *data_dir, const char *account, const char *mailbox,
                  const uint32_t *uids, int n, const char **error_r)
{
    if (!uids_valid(uids, n, error_r))
        return -1;
    if (n == 0)
        return 0;
    struct change c;
    if (change_begin(data_dir, account, mailbox, &c, error_r) < 0)
        return -1;
    struct file_list fl = { NULL, 0, 0 };
    int rc = -1;
    for (int i = 0; i < n; i++) {
        if (expunge_one(&c, uids[i], &fl) < 0) {
            log_error("store", "event=index-failed op=expunge error=\"%s\"",
                      sqlite3_errmsg(c.ix.db));
            *error_r = "cannot update the mailbox index";
            change_abort(&c);
            goto out;
        }
    }
    size_t count = fl.n;
    if (store_pack_filter(c.ix.db, fl.names, &fl.n) < 0) {
        log_error("store", "event=index-failed op=expunge error=\"%s\"",
                  sqlite3_errmsg(c.ix.db));
        *error_r = "cannot read the mailbox index";
        change_abort(&c);
        goto out;
    }
    if (change_commit(&c, error_r) < 0)
        goto out;
    store_files_unlink(&c.ix, fl.names, fl.n);
    char qb[LOG_QSIZE];
    if (count > 0) {
        log_info("store", "event=expunge mailbox=%s count=%zu modseq=%" PRId64,
                 qa(qb, sizeof qb, mailbox), count, c.modseq);
        notify_mailbox_changed(account);
    }
    change_finish(&c);
    rc = 0;
out:
    file_list_free(&fl);
    return rc;
}

static void file_list_free(struct file_list *fl)
{
    for (size_t i = 0; i < fl->n; i++)
        free(fl->names[i]);
    free(fl->names);
    memset(fl, 0, sizeof *fl);
}

/* ---- flags ---- */

static int flag_add_one(struct change *c, uint32_t uid, const char *flag,
                        const char **error_r)
{
    sqlite3_stmt *st = change_prep(c, sql_flags_get);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, c->mbox);
    sqlite3_bind_int64(st, 2, uid);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? 0 : -1;   /* no such UID: ignored */
    const char *old = (const char *)sqlite3_column_text(st, 0);
    if (!old)
        old = "";
    if (store_flags_have(old, flag))
        return 0;
    char *flags = *old ? xasprintf("%s %s", old, flag) : xstrdup(flag);
    sqlite3_reset(st);
    int rc = -1;
    if (strlen(flags) > STORE_MAX_FLAGS_LEN) {
        *error_r = "too many flags on the message";
        goto out;
    }
    if (!(st = change_prep(c, sql_flags_set)))
        goto out;
    sqlite3_bind_text(st, 1, flags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->modseq);
    sqlite3_bind_int64(st, 3, c->mbox);
    sqlite3_bind_int64(st, 4, uid);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_reset(st);   /* FLAGS is bound SQLITE_STATIC and freed below */
    if (rc == 0)
        c->changed++;
out:
    free(flags);
    return rc;
}

int store_add_flag(const char *data_dir, const char *account, const char *mailbox,
                   const uint32_t *uids, int n, const char *flag, const char **error_r)
{
    if (!uids_valid(uids, n, error_r))
        return -1;
    if (!flag_valid(flag)) {
        *error_r = "bad flag";
        return -1;
    }
    if (n == 0)
        return 0;
    struct change c;
    if (change_begin(data_dir, account, mailbox, &c, error_r) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const char *why = NULL;
        if (flag_add_one(&c, uids[i], flag, &why) < 0) {
            if (!why)
                log_error("store", "event=index-failed op=add-flag error=\"%s\"",
                          sqlite3_errmsg(c.ix.db));
            *error_r = why ? why : "cannot update the mailbox index";
            change_abort(&c);
            return -1;
        }
    }
    if (change_commit(&c, error_r) < 0)
        return -1;
    char qb[LOG_QSIZE], fb[LOG_QSIZE];
    if (c.changed > 0) {
        log_info("store", "event=flag-added mailbox=%s flag=%s count=%d modseq=%" PRId64,
                 qa(qb, sizeof qb, mailbox), qa(fb, sizeof fb, flag), c.changed, c.modseq);
        notify_mailbox_changed(account);
    }
    change_finish(&c);
    return 0;
}

/* ---- move ---- */

/* Gives UID of the source mailbox the next UID of mailbox TO, with
 * TO_MODSEQ; the source records it as vanished; the delivery row follows. */
static int move_one(struct change *c, int64_t to, int64_t *uidnext, int64_t to_modseq,
                    uint32_t uid, const char **error_r)
{
    sqlite3 *db = c->ix.db;
    if (*uidnext < 1 || *uidnext >= UINT32_MAX) {
        *error_r = "no UIDs left in the target mailbox";
        return -1;
    }
    sqlite3_stmt *st = change_prep(c, sql_move);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, to);
    sqlite3_bind_int64(st, 2, *uidnext);
    sqlite3_bind_int64(st, 3, to_modseq);
    sqlite3_bind_int64(st, 4, c->mbox);
    sqlite3_bind_int64(st, 5, uid);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc < 0 || sqlite3_changes(db) == 0)
        return rc;   /* no such UID: ignored */
    if (!(st = change_prep(c, sql_move_delivery)))
        return -1;
    sqlite3_bind_int64(st, 1, to);
    sqlite3_bind_int64(st, 2, *uidnext);
    sqlite3_bind_int64(st, 3, c->mbox);
    sqlite3_bind_int64(st, 4, uid);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc < 0 || vanished_record(c, uid) < 0)
        return -1;
    (*uidnext)++;
    c->changed++;
    return 0;
}

static int move_store_target(sqlite3 *db, int64_t to, int64_t uidnext, int64_t modseq)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, uidnext);
    sqlite3_bind_int64(st, 2, modseq);
    sqlite3_bind_int64(st, 3, to);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* Finds TO and its UIDNEXT / next MODSEQ inside the open transaction. */
static int move_target(struct change *c, const char *to_name, int64_t *to_r,
                       int64_t *uidnext_r, int64_t *modseq_r, const char **error_r)
{
    int m = store_ix_mailbox(c->ix.db, to_name, to_r);
    if (m == 0)
        m = mailbox_next_modseq(c->ix.db, *to_r, modseq_r, uidnext_r);
    if (m != 0) {
        *error_r = m > 0 ? "no such target mailbox" : "cannot read the mailbox index";
        return -1;
    }
    if (*to_r == c->mbox) {
        *error_r = "source and target are the same mailbox";
        return -1;
    }
    return 0;
}

int store_move(const char *data_dir, const char *account, const char *from, const char *to,
               const uint32_t *uids, int n, const char **error_r)
{
    if (!uids_valid(uids, n, error_r))
        return -1;
    if (!to) {
        *error_r = "bad arguments";
        return -1;
    }
    if (n == 0)
        return 0;
    struct change c;
    if (change_begin(data_dir, account, from, &c, error_r) < 0)
        return -1;
    int64_t to_id, uidnext, to_modseq;
    if (move_target(&c, to, &to_id, &uidnext, &to_modseq, error_r) < 0) {
        change_abort(&c);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *why = NULL;
        if (move_one(&c, to_id, &uidnext, to_modseq, uids[i], &why) < 0) {
            if (!why)
                log_error("store", "event=index-failed op=move error=\"%s\"",
                          sqlite3_errmsg(c.ix.db));
            *error_r = why ? why : "cannot update the mailbox index";
            change_abort(&c);
            return -1;
        }
    }
    if (c.changed > 0 && move_store_target(c.ix.db, to_id, uidnext, to_modseq) < 0) {
        *error_r = "cannot update the mailbox index";
        change_abort(&c);
        return -1;
    }
    if (change_commit(&c, error_r) < 0)
        return -1;
    char qb[LOG_QSIZE], tb[LOG_QSIZE];
    if (c.changed > 0) {
        log_info("store", "event=move from=%s to=%s count=%d", qa(qb, sizeof qb, from),
                 qa(tb, sizeof tb, to), c.changed);
        notify_mailbox_changed(account);
    }
    change_finish(&c);
    return 0;
}
