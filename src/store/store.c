/* store: an account's mailboxes on disk (see store.h).
 *
 * Owns DATA/mail/<account>/: index.sqlite (the truth: mailboxes, messages,
 * deliveries) and msg/ (one immutable file per message, written through
 * msg/tmp/). A message exists when the index says so; a file in msg/ that
 * no index row names is an orphan left by a crash between the rename and
 * the index commit, and is ignored.
 *
 * Invariants: UIDs in a mailbox only grow (uidnext is bumped in the same
 * transaction that inserts the message and is never lowered); every change
 * bumps highestmodseq; a queue id appears at most once in deliveries, which
 * is what makes local delivery idempotent.
 *
 * Every call opens its own SQLite connection (WAL, synchronous=FULL, busy
 * timeout) and closes it: calls are blocking and meant for worker threads;
 * SQLite serialises concurrent writers of one account. */
#include "store/store.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define STORE_SCHEMA_VERSION 1
#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_MAX_ACCOUNT 320
#define STORE_MAX_MESSAGE_FILE (1024u * 1024 * 1024)

struct store_db {
    sqlite3 *db;
    char *root;     /* DATA/mail/<account> */
    char *msg_dir;  /* .../msg */
    char *tmp_dir;  /* .../msg/tmp */
};

static const struct {
    const char *name, *special_use;
} default_mailboxes[] = {
    { "INBOX", NULL },        { "Sent", "\\Sent" }, { "Drafts", "\\Drafts" },
    { "Trash", "\\Trash" },   { "Junk", "\\Junk" }, { "Archive", "\\Archive" },
};

static int account_name_ok(const char *account);
static const char *mailbox_canonical(const char *mailbox);
static int make_dir_durable(const char *path, const char *parent);
static int db_exec(sqlite3 *db, const char *sql);
static int db_open(const char *data_dir, const char *account, int create, struct store_db *s,
                   const char **error_r);
static int db_open_read(const char *data_dir, const char *account, struct store_db *s);
static void db_close(struct store_db *s);
static int step_one(sqlite3_stmt *st);
static int step_done(sqlite3_stmt **stp);
static int schema_version(sqlite3 *db);
static int schema_migrate(sqlite3 *db);
static int schema_create_v1(sqlite3 *db);
static int mailbox_create(sqlite3 *db, const char *name, const char *special_use);
static int mailbox_id(sqlite3 *db, const char *name, int64_t *id_r);
static int delivery_lookup(sqlite3 *db, const char *queue_id, uint32_t *uid_r);
static void message_file_name(char *out, size_t outsz);
static int message_file_write(struct store_db *s, const char *name, const char *data,
                              size_t len, const char **error_r);
static int index_insert(struct store_db *s, int64_t mbox, const char *queue_id,
                        const char *file, size_t len, time_t internaldate, uint32_t *uid_r,
                        int *duplicate_r, int *committed_unknown_r);
static int message_lookup(struct store_db *s, const char *mailbox, uint32_t uid, char **file_r);
static void message_file_remove(struct store_db *s, const char *file);
static int read_whole_file(const char *path, char **data_r, size_t *len_r);

/* ---- helpers ---- */

static int account_name_ok(const char *account)
{
    if (!account || !*account || account[0] == '.')
        return 0;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)account; *p; p++, n++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f || n >= STORE_MAX_ACCOUNT)
            return 0;
    return 1;
}

/* IMAP (RFC 3501 5.1): INBOX is case-insensitive, other names are not. */
static const char *mailbox_canonical(const char *mailbox)
{
    return strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox;
}

/* mkdir PATH; when it is new, fsync PARENT so the entry survives a crash. */
static int make_dir_durable(const char *path, const char *parent)
{
    if (mkdir(path, 0700) < 0)
        return errno == EEXIST ? 0 : -1;
    return parent ? fs_fsync_dir_path(parent) : 0;
}

static int db_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("store", "event=sql-failed error=\"%s\"", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

/* ---- schema ---- */

static int schema_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL) != SQLITE_OK)
        return 0;   /* no table yet */
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

static int mailbox_create(sqlite3 *db, const char *name, const char *special_use)
{
    /* UIDVALIDITY: the creation time, strictly above any this account has
     * used, so a re-created mailbox never repeats one (RFC 3501 2.3.1.1). */
    sqlite3_stmt *st;
    int64_t uidvalidity = (int64_t)(uint32_t)time(NULL);
    if (sqlite3_prepare_v2(db, "SELECT max(uidvalidity) FROM mailboxes", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        int64_t max = sqlite3_column_int64(st, 0);
        if (max >= uidvalidity)
            uidvalidity = max + 1;
    }
    sqlite3_finalize(st);
    if (uidvalidity > UINT32_MAX || uidvalidity == 0)
        return -1;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO mailboxes(name, uidvalidity, uidnext, highestmodseq,"
                           " special_use, subscribed) VALUES (?, ?, 1, 1, ?, 1)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, uidvalidity);
    if (special_use)
        sqlite3_bind_text(st, 3, special_use, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

static int schema_create_v1(sqlite3 *db)
{
    static const char sql[] =
        "CREATE TABLE schema_version(version INTEGER NOT NULL);"
        "INSERT INTO schema_version(version) VALUES (0);"
        "CREATE TABLE mailboxes("
        " id INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL UNIQUE,"
        " uidvalidity INTEGER NOT NULL,"
        " uidnext INTEGER NOT NULL,"
        " highestmodseq INTEGER NOT NULL,"
        " special_use TEXT,"
        " subscribed INTEGER NOT NULL DEFAULT 1);"
        "CREATE TABLE messages("
        " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
        " uid INTEGER NOT NULL,"
        " file TEXT NOT NULL,"
        " size INTEGER NOT NULL,"
        " internaldate INTEGER NOT NULL,"
        " modseq INTEGER NOT NULL,"
        " flags TEXT NOT NULL DEFAULT '',"
        " queue_id TEXT,"
        " envelope TEXT,"
        " bodystructure TEXT,"
        " PRIMARY KEY (mailbox_id, uid));"
        "CREATE TABLE deliveries("
        " queue_id TEXT PRIMARY KEY,"
        " mailbox_id INTEGER NOT NULL,"
        " uid INTEGER NOT NULL);";
    if (db_exec(db, sql) < 0)
        return -1;
    for (size_t i = 0; i < sizeof default_mailboxes / sizeof default_mailboxes[0]; i++)
        if (mailbox_create(db, default_mailboxes[i].name, default_mailboxes[i].special_use) < 0)
            return -1;
    return 0;
}

/* Brings the index to STORE_SCHEMA_VERSION; each step in one transaction. */
static int schema_migrate(sqlite3 *db)
{
    if (schema_version(db) >= STORE_SCHEMA_VERSION)
        return 0;
    if (db_exec(db, "BEGIN IMMEDIATE") < 0)
        return -1;
    int v = schema_version(db);   /* again, now that we hold the write lock */
    if (v < 1 && schema_create_v1(db) < 0)
        goto fail;
    if (v < STORE_SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d",
                 STORE_SCHEMA_VERSION);
        if (db_exec(db, sql) < 0)
            goto fail;
    }
    if (db_exec(db, "COMMIT") < 0)
        goto fail;
    return 0;
fail:
    db_exec(db, "ROLLBACK");
    return -1;
}

/* ---- open / close ---- */

/* 0 open, 1 no store for this account (only when !CREATE), -1 error. */
static int db_open(const char *data_dir, const char *account, int create, struct store_db *s,
                   const char **error_r)
{
    memset(s, 0, sizeof *s);
    if (!account_name_ok(account)) {
        *error_r = "bad account name";
        return -1;
    }
    char *mail = xasprintf("%s/mail", data_dir);
    s->root = xasprintf("%s/%s", mail, account);
    s->msg_dir = xasprintf("%s/msg", s->root);
    s->tmp_dir = xasprintf("%s/tmp", s->msg_dir);
    char *index = xasprintf("%s/index.sqlite", s->root);
    int rc = -1;
    struct stat st;

    if (!create) {
        if (stat(index, &st) < 0) {
            rc = errno == ENOENT ? 1 : -1;
            *error_r = "no mail store for this account";
            goto out;
        }
    } else if (make_dir_durable(data_dir, NULL) < 0 || make_dir_durable(mail, data_dir) < 0 || make_dir_durable(s->root, mail) < 0 ||
               make_dir_durable(s->msg_dir, s->root) < 0 ||
               make_dir_durable(s->tmp_dir, s->msg_dir) < 0) {
        *error_r = "cannot create the mail directories";
        goto out;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) |
                SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(index, &s->db, flags, NULL) != SQLITE_OK) {
        *error_r = "cannot open the mailbox index";
        goto out;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (db_exec(s->db, "PRAGMA journal_mode=WAL") < 0 ||
        db_exec(s->db, "PRAGMA synchronous=FULL") < 0 ||
        db_exec(s->db, "PRAGMA foreign_keys=ON") < 0 || schema_migrate(s->db) < 0) {
        *error_r = "cannot initialise the mailbox index";
        goto out;
    }
    rc = 0;
out:
    free(mail);
    free(index);
    if (rc != 0)
        db_close(s);
    return rc;
}

static void db_close(struct store_db *s)
{
    if (s->db)
        sqlite3_close(s->db);
    free(s->root);
    free(s->msg_dir);
    free(s->tmp_dir);
    memset(s, 0, sizeof *s);
}

/* db_open for the read side: never creates; the error text is not wanted. */
static int db_open_read(const char *data_dir, const char *account, struct store_db *s)
{
    const char *error;
    return db_open(data_dir, account, 0, s, &error);
}

/* ---- lookups ---- */

/* Steps ST once: 0 a row, 1 no row, -1 error. */
static int step_one(sqlite3_stmt *st)
{
    int step = sqlite3_step(st);
    return step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? 1 : -1;
}

/* Runs the statement *STP (one that returns no rows), then finalizes it and
 * sets *STP to NULL. -1 if it did not finish: *STP is left to the caller,
 * so sqlite3_errmsg still tells why. */
static int step_done(sqlite3_stmt **stp)
{
    if (sqlite3_step(*stp) != SQLITE_DONE)
        return -1;
    sqlite3_finalize(*stp);
    *stp = NULL;
    return 0;
}

/* 0 found, 1 none, -1 error. */
static int mailbox_id(sqlite3 *db, const char *name, int64_t *id_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id FROM mailboxes WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, mailbox_canonical(name), -1, SQLITE_STATIC);
    int rc = step_one(st);
    if (rc == 0)
        *id_r = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* 0 delivered before (uid set), 1 not, -1 error. */
static int delivery_lookup(sqlite3 *db, const char *queue_id, uint32_t *uid_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT uid FROM deliveries WHERE queue_id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
    int rc = step_one(st);
    if (rc == 0)
        *uid_r = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* 0 found (*file_r malloc'd, relative to root), 1 none, -1 error. */
static int message_lookup(struct store_db *s, const char *mailbox, uint32_t uid, char **file_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT m.file FROM messages m JOIN mailboxes b ON b.id ="
                           " m.mailbox_id WHERE b.name = ? AND m.uid = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, mailbox_canonical(mailbox), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, uid);
    int rc = step_one(st);
    if (rc == 0)
        *file_r = xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc;
}

/* ---- deliver ---- */

/* Unique without coordination: time, then 64 random bits. */
static void message_file_name(char *out, size_t outsz)
{
    struct timeval tv;
    uint64_t r = 0;
    gettimeofday(&tv, NULL);
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)tv.tv_usec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    snprintf(out, outsz, "%lld.%06ld.%016" PRIx64, (long long)tv.tv_sec, (long)tv.tv_usec, r);
}

/* msg/tmp/NAME, fsync, rename to msg/NAME, fsync msg/. */
static int message_file_write(struct store_db *s, const char *name, const char *data,
                              size_t len, const char **error_r)
{
    char *tmp = xasprintf("%s/%s", s->tmp_dir, name);
    char *final = xasprintf("%s/%s", s->msg_dir, name);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error_r = "cannot create the message file";
        goto out;
    }
    if (fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        *error_r = "cannot write the message file";
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0 || rename(tmp, final) < 0) {
        *error_r = "cannot store the message file";
        unlink(tmp);
        goto out;
    }
    if (fs_fsync_dir_path(s->msg_dir) < 0) {
        *error_r = "cannot fsync the message directory";
        unlink(final);
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    free(final);
    return rc;
}

/* Removes FILE (relative to the account root), best effort. */
static void message_file_remove(struct store_db *s, const char *file)
{
    char *path = xasprintf("%s/%s", s->root, file);
    unlink(path);
    free(path);
}

/* One transaction: the message row, the delivery row, uidnext and
 * highestmodseq. Returns 0 and sets *uid_r, or sets *duplicate_r when the
 * queue id won a race with us. *committed_unknown_r is set when COMMIT
 * itself failed (the file must then stay: the row may exist). */
static int index_insert(struct store_db *s, int64_t mbox, const char *queue_id,
                        const char *file, size_t len, time_t internaldate, uint32_t *uid_r,
                        int *duplicate_r, int *committed_unknown_r)
{
    sqlite3 *db = s->db;
    sqlite3_stmt *st = NULL;
    int64_t uid, modseq;
    if (db_exec(db, "BEGIN IMMEDIATE") < 0)
        return -1;
    if (queue_id) {
        int d = delivery_lookup(db, queue_id, uid_r);
        if (d < 0)
            goto fail;
        if (d == 0) {
            *duplicate_r = 1;
            db_exec(db, "ROLLBACK");
            return 0;
        }
    }
    if (sqlite3_prepare_v2(db, "SELECT uidnext, highestmodseq FROM mailboxes WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, mbox);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto fail;
    uid = sqlite3_column_int64(st, 0);
    modseq = sqlite3_column_int64(st, 1) + 1;
    sqlite3_finalize(st);
    st = NULL;
    if (uid < 1 || uid >= UINT32_MAX)
        goto fail;   /* UID space exhausted: needs a new UIDVALIDITY */

    if (sqlite3_prepare_v2(db,
                           "INSERT INTO messages(mailbox_id, uid, file, size, internaldate,"
                           " modseq, flags, queue_id) VALUES (?, ?, ?, ?, ?, ?, '', ?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, mbox);
    sqlite3_bind_int64(st, 2, uid);
    sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)internaldate);
    sqlite3_bind_int64(st, 6, modseq);
    if (queue_id)
        sqlite3_bind_text(st, 7, queue_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    if (step_done(&st) < 0)
        goto fail;

    if (sqlite3_prepare_v2(db,
                           "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, uid + 1);
    sqlite3_bind_int64(st, 2, modseq);
    sqlite3_bind_int64(st, 3, mbox);
    if (step_done(&st) < 0)
        goto fail;

    if (queue_id) {
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO deliveries(queue_id, mailbox_id, uid)"
                               " VALUES (?, ?, ?)",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, mbox);
        sqlite3_bind_int64(st, 3, uid);
        if (step_done(&st) < 0)
            goto fail;
    }
    if (db_exec(db, "COMMIT") < 0) {
        *committed_unknown_r = 1;
        goto fail;
    }
    *uid_r = (uint32_t)uid;
    return 0;
fail:
    log_error("store", "event=index-failed error=\"%s\"", sqlite3_errmsg(db));
    if (st)
        sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(db))
        db_exec(db, "ROLLBACK");
    return -1;
}

int store_deliver(const char *data_dir, const char *account, const char *mailbox,
                  const char *queue_id, const char *data, size_t len, time_t internaldate,
                  uint32_t *uid_r, int *duplicate_r, const char **error_r)
{
    struct store_db s;
    *duplicate_r = 0;
    *uid_r = 0;
    if (queue_id && !*queue_id)
        queue_id = NULL;
    if (!mailbox || (!data && len > 0)) {
        *error_r = "bad arguments";
        return -1;
    }
    if (db_open(data_dir, account, 1, &s, error_r) != 0)
        return -1;
    int rc = -1;
    int64_t mbox;
    if (queue_id) {
        int d = delivery_lookup(s.db, queue_id, uid_r);
        if (d < 0) {
            *error_r = "cannot read the mailbox index";
            goto out;
        }
        if (d == 0) {
            *duplicate_r = 1;
            rc = 0;
            goto out;
        }
    }
    int m = mailbox_id(s.db, mailbox, &mbox);
    if (m != 0) {
        *error_r = m > 0 ? "no such mailbox" : "cannot read the mailbox index";
        goto out;
    }
    char name[96];
    message_file_name(name, sizeof name);
    if (message_file_write(&s, name, data ? data : "", len, error_r) < 0)
        goto out;
    char *file = xasprintf("msg/%s", name);
    int unknown = 0;
    if (index_insert(&s, mbox, queue_id, file, len, internaldate, uid_r, duplicate_r,
                     &unknown) < 0) {
        *error_r = "cannot update the mailbox index";
        if (!unknown)
            message_file_remove(&s, file);
    } else {
        if (*duplicate_r)
            message_file_remove(&s, file);
        rc = 0;
    }
    free(file);
out:
    db_close(&s);
    return rc;
}

/* ---- read side ---- */

int store_list(const char *data_dir, const char *account, const char *mailbox,
               void (*cb)(const struct store_msg_info *m, void *arg), void *arg)
{
    struct store_db s;
    int rc = db_open_read(data_dir, account, &s);
    if (rc != 0)
        return rc;
    int64_t mbox;
    sqlite3_stmt *st = NULL;
    rc = mailbox_id(s.db, mailbox, &mbox);
    if (rc != 0)
        goto out;
    rc = -1;
    if (sqlite3_prepare_v2(s.db,
                           "SELECT uid, file, size, internaldate, modseq, flags, queue_id"
                           " FROM messages WHERE mailbox_id = ? ORDER BY uid",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mbox);
    struct store_msg_info *info = xmalloc(sizeof *info);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(info, 0, sizeof *info);
        info->uid = (uint32_t)sqlite3_column_int64(st, 0);
        const char *file = (const char *)sqlite3_column_text(st, 1);
        info->size = (size_t)sqlite3_column_int64(st, 2);
        info->internaldate = (time_t)sqlite3_column_int64(st, 3);
        info->modseq = (uint64_t)sqlite3_column_int64(st, 4);
        const char *flags = (const char *)sqlite3_column_text(st, 5);
        const char *qid = (const char *)sqlite3_column_text(st, 6);
        snprintf(info->flags, sizeof info->flags, "%s", flags ? flags : "");
        snprintf(info->queue_id, sizeof info->queue_id, "%s", qid ? qid : "");
        snprintf(info->path, sizeof info->path, "%s/%s", s.root, file ? file : "");
        cb(info, arg);
    }
    free(info);
    rc = step == SQLITE_DONE ? 0 : -1;
out:
    if (st)
        sqlite3_finalize(st);
    db_close(&s);
    return rc;
}

int store_mailbox_status(const char *data_dir, const char *account, const char *mailbox,
                         uint32_t *uidvalidity_r, uint32_t *uidnext_r, uint32_t *count_r)
{
    struct store_db s;
    int rc = db_open_read(data_dir, account, &s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = -1;
    if (sqlite3_prepare_v2(s.db,
                           "SELECT uidvalidity, uidnext, (SELECT count(*) FROM messages m"
                           " WHERE m.mailbox_id = b.id) FROM mailboxes b WHERE name = ?",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, mailbox_canonical(mailbox), -1, SQLITE_STATIC);
    rc = step_one(st);
    if (rc == 0) {
        *uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 0);
        *uidnext_r = (uint32_t)sqlite3_column_int64(st, 1);
        *count_r = (uint32_t)sqlite3_column_int64(st, 2);
    }
out:
    if (st)
        sqlite3_finalize(st);
    db_close(&s);
    return rc;
}

int store_list_mailboxes(const char *data_dir, const char *account,
                         void (*cb)(const char *name, const char *special_use, void *arg),
                         void *arg)
{
    struct store_db s;
    int rc = db_open_read(data_dir, account, &s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = -1;
    if (sqlite3_prepare_v2(s.db, "SELECT name, special_use FROM mailboxes ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           arg);
    rc = step == SQLITE_DONE ? 0 : -1;
out:
    if (st)
        sqlite3_finalize(st);
    db_close(&s);
    return rc;
}

static int read_whole_file(const char *path, char **data_r, size_t *len_r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > STORE_MAX_MESSAGE_FILE) {
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *data = xmalloc(size + 1);
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(data);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    data[got] = '\0';
    *data_r = data;
    *len_r = got;
    return 0;
}

int store_read(const char *data_dir, const char *account, const char *mailbox, uint32_t uid,
               char **data_r, size_t *len_r)
{
    struct store_db s;
    int rc = db_open_read(data_dir, account, &s);
    if (rc != 0)
        return rc;
    char *file = NULL;
    rc = message_lookup(&s, mailbox, uid, &file);
    if (rc == 0) {
        char *path = xasprintf("%s/%s", s.root, file);
        if (read_whole_file(path, data_r, len_r) < 0) {
            log_error("store", "event=message-file-unreadable file=%s error=\"%s\"", file,
                      strerror(errno));
            rc = -1;
        }
        free(path);
    }
    free(file);
    db_close(&s);
    return rc;
}
