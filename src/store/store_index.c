/* store_index: the one owner of an account's mailbox index
 * (DATA/mail/<account>/index.sqlite; store_int.h: store_ix_*).
 *
 * Owns: the account-name check (the name is a directory name under
 * DATA/mail), creating the account's directories (mail/<account>, msg/,
 * msg/tmp/, msg/pack/, each new one made durable by an fsync of its parent), opening
 * the index (WAL, synchronous=FULL, foreign keys, busy timeout), the schema
 * and its version (created at STORE_SCHEMA_VERSION; an older index is
 * migrated in place, a newer one refused), the default special-use
 * mailboxes with their UIDVALIDITY, and the small helpers every store file
 * uses (exec, step, mailbox lookup).
 *
 * Migrations: schema_steps[v] brings version v to v + 1. They all run in one
 * BEGIN IMMEDIATE transaction, and the version is read again once the write
 * lock is held, so two openers racing on an old index do the work once: the
 * second waits (busy timeout) and then finds nothing to do. */
#include "store/store_int.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_MAX_ACCOUNT 320

static const struct {
    const char *name, *special_use;
} default_mailboxes[] = {
    { "INBOX", NULL },      { "Sent", "\\Sent" }, { "Drafts", "\\Drafts" },
    { "Trash", "\\Trash" }, { "Junk", "\\Junk" }, { "Archive", "\\Archive" },
};

static int account_name_ok(const char *account);
static int make_dir_durable(const char *path, const char *parent);
static int make_dirs(const char *data_dir, const char *mail, const struct store_ix *ix);
static int schema_version(sqlite3 *db);
static int mailbox_create(sqlite3 *db, const char *name, const char *special_use);
static int schema_create_v1(sqlite3 *db);
static int schema_create_v2(sqlite3 *db);
static int schema_create_v3(sqlite3 *db);
static int schema_create_v4(sqlite3 *db);
static int schema_create_v5(sqlite3 *db);
static int schema_create_v6(sqlite3 *db);
static int schema_migrate(sqlite3 *db);
static int db_configure(sqlite3 *db);

/* schema_steps[v]: version v to v + 1 (0: an empty file, the whole v1). */
static int (*const schema_steps[])(sqlite3 *db) = { schema_create_v1, schema_create_v2,
                                                          schema_create_v3, schema_create_v4,
                                                          schema_create_v5, schema_create_v6 };
_Static_assert(sizeof schema_steps / sizeof schema_steps[0] == STORE_SCHEMA_VERSION,
               "one schema step per version");

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

/* mkdir PATH; when it is new, fsync PARENT so the entry survives a crash. */
static int make_dir_durable(const char *path, const char *parent)
{
    if (mkdir(path, 0700) < 0)
        return errno == EEXIST ? 0 : -1;
    return parent ? fs_fsync_dir_path(parent) : 0;
}

/* DATA, DATA/mail, the account root, msg/, msg/tmp/ and msg/pack/. */
static int make_dirs(const char *data_dir, const char *mail, const struct store_ix *ix)
{
    return make_dir_durable(data_dir, NULL) < 0 || make_dir_durable(mail, data_dir) < 0 ||
                   make_dir_durable(ix->root, mail) < 0 ||
                   make_dir_durable(ix->msg_dir, ix->root) < 0 ||
                   make_dir_durable(ix->tmp_dir, ix->msg_dir) < 0 ||
                   make_dir_durable(ix->pack_dir, ix->msg_dir) < 0
               ? -1
               : 0;
}

int store_ix_exec(sqlite3 *db, const char *sql)
{
    if (!strchr(sql, ';')) {   /* one statement: kept prepared (store_stmt.c) */
        if (store_ix_run(db, sql) == SQLITE_OK)
            return 0;
        log_error("store", "event=sql-failed error=\"%s\"", sqlite3_errmsg(db));
        return -1;
    }
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("store", "event=sql-failed error=\"%s\"", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

int store_ix_step(sqlite3_stmt *st)
{
    int step = sqlite3_step(st);
    return step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? 1 : -1;
}

int store_ix_exists(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    int rc = store_ix_step(st);
    sqlite3_finalize(st);
    return rc == 0 ? 1 : rc == 1 ? 0 : -1;
}

const char *store_mailbox_canonical(const char *name)
{
    return strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
}

int store_ix_mailbox(sqlite3 *db, const char *name, int64_t *id_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id FROM mailboxes WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, store_mailbox_canonical(name), -1, SQLITE_STATIC);
    int rc = store_ix_step(st);
    if (rc == 0)
        *id_r = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int store_ix_mbstate(sqlite3 *db, const char *name, struct store_mbstate *m)
{
    sqlite3_stmt *st;
    memset(m, 0, sizeof *m);
    if (sqlite3_prepare_v2(db,
                           "SELECT id, uidvalidity, uidnext, highestmodseq, special_use"
                           " FROM mailboxes WHERE name = ? AND noselect = 0",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, store_mailbox_canonical(name), -1, SQLITE_STATIC);
    int rc = store_ix_step(st);
    if (rc == 0) {
        m->id = sqlite3_column_int64(st, 0);
        m->uidvalidity = sqlite3_column_int64(st, 1);
        m->uidnext = sqlite3_column_int64(st, 2);
        m->highestmodseq = sqlite3_column_int64(st, 3);
        const char *su = (const char *)sqlite3_column_text(st, 4);
        snprintf(m->special_use, sizeof m->special_use, "%s", su ? su : "");
    }
    sqlite3_finalize(st);
    return rc;
}

int store_ix_mbstate_save(sqlite3 *db, const struct store_mbstate *m)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, m->uidnext);
    sqlite3_bind_int64(st, 2, m->highestmodseq);
    sqlite3_bind_int64(st, 3, m->id);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* ---- schema ---- */

/* 0 when the index has no schema yet. */
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
    int64_t id;
    return store_ix_mailbox_create(db, name, special_use, &id);
}

int64_t store_ix_next_uidvalidity(sqlite3 *db)
{
    /* UIDVALIDITY: the current time, strictly above any this account has
     * used (mailboxes carry their own; `uidvalidity_max` remembers those of
     * deleted and renamed ones), so a re-created mailbox never repeats one
     * (RFC 3501 2.3.1.1). 0 on error. */
    sqlite3_stmt *st;
    int64_t uidvalidity = (int64_t)(uint32_t)time(NULL);
    int has_max = schema_version(db) >= 3;
    const char *sql = has_max ? "SELECT max((SELECT max(uidvalidity) FROM mailboxes),"
                                " (SELECT value FROM uidvalidity_max))"
                              : "SELECT max(uidvalidity) FROM mailboxes";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        int64_t max = sqlite3_column_int64(st, 0);
        if (max >= uidvalidity)
            uidvalidity = max + 1;
    }
    sqlite3_finalize(st);
    if (uidvalidity > UINT32_MAX || uidvalidity <= 0)
        return 0;
    if (has_max) {
        char upd[96];
        snprintf(upd, sizeof upd, "UPDATE uidvalidity_max SET value = %lld",
                 (long long)uidvalidity);
        if (store_ix_exec(db, upd) < 0)
            return 0;
    }
    return uidvalidity;
}

int store_ix_mailbox_create(sqlite3 *db, const char *name, const char *special_use,
                            int64_t *id_r)
{
    sqlite3_stmt *st;
    int64_t uidvalidity = store_ix_next_uidvalidity(db);
    if (uidvalidity == 0)
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
    if (rc == 0)
        *id_r = sqlite3_last_insert_rowid(db);
    return rc;
}

/* Version 1: mailboxes, messages, deliveries, and the default mailboxes. */
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
    if (store_ix_exec(db, sql) < 0)
        return -1;
    for (size_t i = 0; i < sizeof default_mailboxes / sizeof default_mailboxes[0]; i++)
        if (mailbox_create(db, default_mailboxes[i].name, default_mailboxes[i].special_use) < 0)
            return -1;
    return 0;
}

/* Version 2: the UIDs that left each mailbox, for QRESYNC; and an index to
 * find the delivery row of a message when it moves. */
static int schema_create_v2(sqlite3 *db)
{
    return store_ix_exec(db, "CREATE TABLE vanished("
                             " mailbox_id INTEGER NOT NULL,"
                             " uid INTEGER NOT NULL,"
                             " modseq INTEGER NOT NULL,"
                             " PRIMARY KEY (mailbox_id, uid));"
                             "CREATE INDEX vanished_modseq ON vanished(mailbox_id, modseq);"
                             "CREATE INDEX deliveries_message ON deliveries(mailbox_id, uid);");
}

/* Version 3 (IMAP): the account's usage in one row kept by triggers in the
 * transaction of every insert and delete of a message (quota, RFC 9208);
 * an index for "changed since MODSEQ"; subscriptions as their own table
 * (names that do not exist may be subscribed, RFC 3501 6.3.6); a mailbox's
 * \Noselect state (a deleted mailbox that still has children); and the
 * highest UIDVALIDITY ever given, so that deleting the newest mailbox and
 * creating one again never repeats it. */
static int schema_create_v3(sqlite3 *db)
{
    return store_ix_exec(
        db, "CREATE TABLE usage(id INTEGER PRIMARY KEY CHECK (id = 1),"
            " bytes INTEGER NOT NULL, messages INTEGER NOT NULL);"
            "INSERT INTO usage(id, bytes, messages)"
            " SELECT 1, coalesce(sum(size), 0), count(*) FROM messages;"
            "CREATE TRIGGER usage_insert AFTER INSERT ON messages BEGIN"
            " UPDATE usage SET bytes = bytes + new.size, messages = messages + 1 WHERE id = 1;"
            " END;"
            "CREATE TRIGGER usage_delete AFTER DELETE ON messages BEGIN"
            " UPDATE usage SET bytes = bytes - old.size, messages = messages - 1 WHERE id = 1;"
            " END;"
            "CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);"
            "CREATE TABLE subscriptions(name TEXT PRIMARY KEY);"
            "INSERT INTO subscriptions(name) SELECT name FROM mailboxes WHERE subscribed = 1;"
            "ALTER TABLE mailboxes ADD COLUMN noselect INTEGER NOT NULL DEFAULT 0;"
            "CREATE TABLE uidvalidity_max(value INTEGER NOT NULL);"
            "INSERT INTO uidvalidity_max(value)"
            " SELECT coalesce(max(uidvalidity), 0) FROM mailboxes;");
}

/* Version 4 (SEARCH): the header block of each message (store_cached), so
 * that searching header fields reads the index instead of every file.
 * Messages stored before have none and are searched in their files. */
static int schema_create_v4(sqlite3 *db)
{
    return store_ix_exec(db, "ALTER TABLE messages ADD COLUMN header BLOB;");
}

/* Version 5 (pack files, store_pack.c): messages.offset is NULL for a
 * message that is a whole file (every message before), else the message is
 * `size` bytes at `offset` of the pack named by `file`; pack_state.active is
 * the pack deliveries append to (0: none yet), changed only under the write
 * lock; messages(file) answers "does any row still use this pack?". */
static int schema_create_v5(sqlite3 *db)
{
    /* The table is rebuilt so that offset sits next to file: a column added
     * at the end lies behind the cached header blob, and reading it made
     * every FETCH of a message with a large header read that blob's
     * overflow pages. */
    return store_ix_exec(db, "CREATE TABLE messages_v5("
                             " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
                             " uid INTEGER NOT NULL,"
                             " file TEXT NOT NULL,"
                             " offset INTEGER,"
                             " size INTEGER NOT NULL,"
                             " internaldate INTEGER NOT NULL,"
                             " modseq INTEGER NOT NULL,"
                             " flags TEXT NOT NULL DEFAULT '',"
                             " queue_id TEXT,"
                             " envelope TEXT,"
                             " bodystructure TEXT,"
                             " header BLOB,"
                             " PRIMARY KEY (mailbox_id, uid));"
                             "INSERT INTO messages_v5(mailbox_id, uid, file, offset, size,"
                             " internaldate, modseq, flags, queue_id, envelope, bodystructure,"
                             " header) SELECT mailbox_id, uid, file, NULL, size, internaldate,"
                             " modseq, flags, queue_id, envelope, bodystructure, header"
                             " FROM messages;"
                             "DROP TABLE messages;"
                             "ALTER TABLE messages_v5 RENAME TO messages;"
                             "CREATE TRIGGER usage_insert AFTER INSERT ON messages BEGIN"
                             " UPDATE usage SET bytes = bytes + new.size,"
                             " messages = messages + 1 WHERE id = 1;"
                             " END;"
                             "CREATE TRIGGER usage_delete AFTER DELETE ON messages BEGIN"
                             " UPDATE usage SET bytes = bytes - old.size,"
                             " messages = messages - 1 WHERE id = 1;"
                             " END;"
                             "CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);"
                             "CREATE INDEX messages_file ON messages(file);"
                             "CREATE TABLE pack_state(id INTEGER PRIMARY KEY CHECK (id = 1),"
                             " active INTEGER NOT NULL);"
                             "INSERT INTO pack_state(id, active) VALUES (1, 0);");
}

/* Version 6 (compaction, store_compact.c): the packs whose live messages
 * were rewritten elsewhere. No row names them any more, but a reader that
 * looked a row up just before (a POP3 snapshot, an IMAP FETCH) may still
 * open them, so they are unlinked only once retired_at (seconds since the
 * epoch) is older than the grace period. */
static int schema_create_v6(sqlite3 *db)
{
    return store_ix_exec(db, "CREATE TABLE pack_retired(file TEXT PRIMARY KEY,"
                             " retired_at INTEGER NOT NULL);");
}

/* Brings the index to STORE_SCHEMA_VERSION in one transaction. */
static int schema_migrate(sqlite3 *db)
{
    if (schema_version(db) >= STORE_SCHEMA_VERSION)
        return 0;
    if (store_ix_exec(db, "BEGIN IMMEDIATE") < 0)
        return -1;
    int v = schema_version(db);   /* again, now that we hold the write lock */
    for (int step = v < 0 ? 0 : v; step < STORE_SCHEMA_VERSION; step++)
        if (schema_steps[step](db) < 0)
            goto fail;
    if (v < STORE_SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d",
                 STORE_SCHEMA_VERSION);
        if (store_ix_exec(db, sql) < 0)
            goto fail;
    }
    if (store_ix_exec(db, "COMMIT") < 0)
        goto fail;
    if (v >= 1 && v < STORE_SCHEMA_VERSION)
        log_info("store", "event=index-migrated version=%d from=%d", STORE_SCHEMA_VERSION, v);
    return 0;
fail:
    store_ix_exec(db, "ROLLBACK");
    return -1;
}

static int db_configure(sqlite3 *db)
{
    /* mmap: reads of a big index (SELECT, FETCH, SEARCH scans) map its
     * pages instead of copying each one with pread */
    return store_ix_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
                   store_ix_exec(db, "PRAGMA synchronous=FULL") < 0 ||
                   store_ix_exec(db, "PRAGMA mmap_size=268435456") < 0 ||
                   store_ix_exec(db, "PRAGMA foreign_keys=ON") < 0
               ? -1
               : 0;
}

/* ---- open / close ---- */

/* A connection to INDEX (which exists or is created), configured and at
 * the current schema. 0 or -1 with *error_r. */
static int ix_connect(struct store_ix *ix, const char *index, int create, const char **error_r)
{
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(index, &ix->db, flags, NULL) != SQLITE_OK) {
        *error_r = "cannot open the mailbox index";
        return -1;
    }
    sqlite3_busy_timeout(ix->db, STORE_BUSY_TIMEOUT_MS);
    if (db_configure(ix->db) < 0) {
        *error_r = "cannot initialise the mailbox index";
        return -1;
    }
    if (schema_version(ix->db) > STORE_SCHEMA_VERSION) {
        *error_r = "the mailbox index is newer than this roost";
        return -1;
    }
    if (schema_migrate(ix->db) < 0) {
        *error_r = "cannot initialise the mailbox index";
        return -1;
    }
    if (stat(index, &ix->st) < 0) {
        *error_r = "cannot open the mailbox index";
        return -1;
    }
    return 0;
}

int store_ix_open(const char *data_dir, const char *account, int create, struct store_ix *ix,
                  const char **error_r)
{
    memset(ix, 0, sizeof *ix);
    if (!data_dir || !account_name_ok(account)) {
        *error_r = "bad account name";
        return -1;
    }
    char *mail = xasprintf("%s/mail", data_dir);
    ix->root = xasprintf("%s/%s", mail, account);
    ix->msg_dir = xasprintf("%s/msg", ix->root);
    ix->tmp_dir = xasprintf("%s/tmp", ix->msg_dir);
    ix->pack_dir = xasprintf("%s/pack", ix->msg_dir);
    ix->index = xasprintf("%s/index.sqlite", ix->root);
    int rc = -1;

    /* The directories are made before the index, so an index means they exist. */
    if (stat(ix->index, &ix->st) == 0) {
        ix->db = store_ixpool_take(ix->index, &ix->st);
        rc = ix->db || ix_connect(ix, ix->index, create, error_r) == 0 ? 0 : -1;
    } else if (!create) {
        rc = errno == ENOENT ? 1 : -1;
        *error_r = "no mail store for this account";
    } else if (make_dirs(data_dir, mail, ix) < 0) {
        *error_r = "cannot create the mail directories";
    } else {
        rc = ix_connect(ix, ix->index, create, error_r);
    }
    free(mail);
    if (rc != 0) {
        if (ix->db)
            store_ix_db_close(ix->db);
        ix->db = NULL;
        store_ix_close(ix);
    }
    return rc;
}

void store_ix_close(struct store_ix *ix)
{
    if (ix->db)
        store_ixpool_give(ix->db, ix->index, &ix->st);
    free(ix->root);
    free(ix->msg_dir);
    free(ix->tmp_dir);
    free(ix->pack_dir);
    free(ix->index);
    memset(ix, 0, sizeof *ix);
}
