/* dir_schema: opening DATA/directory.sqlite, its connection settings and its
 * schema migrations.
 *
 * Settings on every connection: WAL (readers never block the writer, so the
 * CLI works while the server runs), busy timeout 5000 ms, synchronous=FULL
 * (a committed change survives power loss), foreign keys on.
 *
 * Migrations are an ordered array; migration N brings the schema from
 * version N-1 to N in one transaction (BEGIN IMMEDIATE, so two processes
 * opening a fresh database at once serialise and the second sees the work of
 * the first). schema_version keeps one row per applied version; the schema's
 * version is the largest. Opening a database already at the current version
 * runs no write at all. A database newer than this binary is refused.
 *
 * Migration 1 also creates the secrets row: 32 random bytes (RAND_bytes),
 * the key of the app-password HMACs, loaded into the directory at open. */
#include "auth/dir_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct migration {
    int version;
    const char *sql;
    int (*after)(struct directory *d); /* extra work in the same transaction */
};

static int create_secret_key(struct directory *d);

static const char migration_1_sql[] =
    "CREATE TABLE schema_version ("
    "  version INTEGER PRIMARY KEY,"
    "  applied INTEGER NOT NULL);"
    "CREATE TABLE domains ("
    "  name TEXT PRIMARY KEY,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE accounts ("
    "  id INTEGER PRIMARY KEY,"
    "  address TEXT NOT NULL UNIQUE,"
    "  domain TEXT NOT NULL REFERENCES domains(name) ON DELETE RESTRICT,"
    "  password_hash TEXT NOT NULL,"
    "  plan INTEGER NOT NULL,"
    "  daily_messages INTEGER NOT NULL,"
    "  daily_recipients INTEGER NOT NULL,"
    "  imap INTEGER NOT NULL DEFAULT 1,"
    "  pop INTEGER NOT NULL DEFAULT 1,"
    "  two_factor INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX accounts_domain ON accounts(domain);"
    "CREATE TABLE aliases ("
    "  source TEXT PRIMARY KEY,"
    "  domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX aliases_account ON aliases(account_id);"
    "CREATE INDEX aliases_domain ON aliases(domain);"
    "CREATE TABLE app_passwords ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(account_id, name));"
    "CREATE TABLE send_log ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  time INTEGER NOT NULL,"
    "  recipients INTEGER NOT NULL);"
    "CREATE INDEX send_log_account_time ON send_log(account_id, time);"
    "CREATE INDEX send_log_time ON send_log(time);"
    "CREATE TABLE secrets ("
    "  name TEXT PRIMARY KEY,"
    "  value BLOB NOT NULL);";

/* Version 2: Gmail's POP options per account (dir_pop.c): which mail POP
 * offers and what a download followed by QUIT does. Existing accounts get
 * all / 0 / keep. */
static const char migration_2_sql[] =
    "ALTER TABLE accounts ADD COLUMN pop_scope TEXT NOT NULL DEFAULT 'all'"
    "  CHECK (pop_scope IN ('all', 'from-now'));"
    "ALTER TABLE accounts ADD COLUMN pop_since INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE accounts ADD COLUMN pop_after TEXT NOT NULL DEFAULT 'keep'"
    "  CHECK (pop_after IN ('keep', 'mark-read', 'archive', 'delete'));";

/* Version 3: the mailbox quota per account in bytes (dir_quota.c; 0: no
 * limit). Existing and new accounts get DIR_QUOTA_DEFAULT, 15 GiB, the
 * storage of Gmail's free plan. */
#define STR2(x) #x
#define STR(x) STR2(x)
static const char migration_3_sql[] =
    "ALTER TABLE accounts ADD COLUMN quota_bytes INTEGER NOT NULL DEFAULT "
    STR(DIR_QUOTA_DEFAULT) " CHECK (quota_bytes >= 0);";

/* Version 4: forwarding per account (dir_forward.c), Gmail's "Forward a
 * copy of incoming mail to ... and keep / mark as read / archive / delete
 * Roost's copy". forward_to '' is off. Existing accounts: off, keep. */
static const char migration_4_sql[] =
    "ALTER TABLE accounts ADD COLUMN forward_to TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE accounts ADD COLUMN forward_keep TEXT NOT NULL DEFAULT 'keep'"
    "  CHECK (forward_keep IN ('keep', 'mark-read', 'archive', 'delete'));";

/* Version 5: the send log keeps one row per account and second with the
 * number of messages sent in it (dir_mail.c), so that the 24-hour sum an
 * account's every send needs reads one row per busy second instead of one
 * per message (a newsletter of 10,000 messages read 10,000 rows per send). */
static const char migration_5_sql[] =
    "CREATE TABLE send_log_v5 ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  time INTEGER NOT NULL,"
    "  recipients INTEGER NOT NULL,"
    "  messages INTEGER NOT NULL DEFAULT 1,"
    "  UNIQUE (account_id, time));"
    "INSERT INTO send_log_v5(account_id, time, recipients, messages)"
    "  SELECT account_id, time, sum(recipients), count(*) FROM send_log"
    "  GROUP BY account_id, time;"
    "DROP TABLE send_log;"
    "ALTER TABLE send_log_v5 RENAME TO send_log;"
    "CREATE INDEX send_log_time ON send_log(time);";

static const struct migration migrations[] = {
    { 1, migration_1_sql, create_secret_key },
    { 2, migration_2_sql, NULL },
    { 3, migration_3_sql, NULL },
    { 4, migration_4_sql, NULL },
    { 5, migration_5_sql, NULL },
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static int create_secret_key(struct directory *d)
{
    unsigned char key[DIR_KEY_LEN];
    if (RAND_bytes(key, sizeof key) != 1) {
        snprintf(d->err, sizeof d->err, "RAND_bytes failed");
        return -1;
    }
    sqlite3_stmt *st = dir_prep(d, "INSERT INTO secrets(name, value) VALUES('apppass_key', ?)");
    int ok = st && sqlite3_bind_blob(st, 1, key, sizeof key, SQLITE_TRANSIENT) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;
    if (st && !ok)
        dir_sql_error(d, "secret key");
    dir_finish(d, st);
    OPENSSL_cleanse(key, sizeof key);
    return ok ? 0 : -1;
}

static int load_secret_key(struct directory *d)
{
    sqlite3_stmt *st = dir_prep(d, "SELECT value FROM secrets WHERE name = 'apppass_key'");
    if (!st)
        return -1;
    int ok = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == DIR_KEY_LEN) {
        memcpy(d->key, sqlite3_column_blob(st, 0), DIR_KEY_LEN);
        ok = 1;
    } else {
        snprintf(d->err, sizeof d->err, "directory has no valid app-password key");
    }
    dir_finish(d, st);
    return ok ? 0 : -1;
}

/* The schema version: 0 for an empty database, -1 on error. */
static int read_version(struct directory *d)
{
    sqlite3_stmt *st = dir_prep(d, "SELECT count(*) FROM sqlite_master "
                                   "WHERE type = 'table' AND name = 'schema_version'");
    if (!st)
        return -1;
    int exists = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    dir_finish(d, st);
    if (exists <= 0)
        return exists < 0 ? -1 : 0;
    st = dir_prep(d, "SELECT coalesce(max(version), 0) FROM schema_version");
    if (!st)
        return -1;
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    if (v < 0)
        dir_sql_error(d, "schema version");
    dir_finish(d, st);
    return v;
}

static int record_version(struct directory *d, int version)
{
    sqlite3_stmt *st = dir_prep(d, "INSERT INTO schema_version(version, applied) VALUES(?, ?)");
    if (!st)
        return -1;
    int ok = sqlite3_bind_int(st, 1, version) == SQLITE_OK &&
             sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL)) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;
    if (!ok)
        dir_sql_error(d, "schema version");
    dir_finish(d, st);
    return ok ? 0 : -1;
}

/* Applies migration M in one transaction unless another process did first. */
static int apply_migration(struct directory *d, const struct migration *m)
{
    if (dir_begin(d) < 0)
        return -1;
    int v = read_version(d);
    if (v < 0)
        goto fail;
    if (v >= m->version) {
        dir_rollback(d);
        return 0;
    }
    if (dir_exec(d, m->sql) < 0)
        goto fail;
    if (m->after && m->after(d) < 0)
        goto fail;
    if (record_version(d, m->version) < 0)
        goto fail;
    if (dir_commit(d) < 0)
        return -1;
    log_info("auth", "event=schema_migrated version=%d", m->version);
    return 0;
fail:
    dir_rollback(d);
    return -1;
}

static int migrate(struct directory *d)
{
    int v = read_version(d);
    if (v < 0)
        return -1;
    int latest = migrations[N_MIGRATIONS - 1].version;
    if (v > latest) {
        snprintf(d->err, sizeof d->err,
                 "directory schema version %d is newer than this roost (%d)", v, latest);
        return -1;
    }
    for (int i = 0; i < N_MIGRATIONS; i++) {
        if (migrations[i].version > v && apply_migration(d, &migrations[i]) < 0)
            return -1;
    }
    return 0;
}

static int configure_connection(struct directory *d)
{
    if (sqlite3_busy_timeout(d->db, 5000) != SQLITE_OK) {
        dir_sql_error(d, "busy_timeout");
        return -1;
    }
    sqlite3_stmt *st = dir_prep(d, "PRAGMA journal_mode=WAL");
    if (!st)
        return -1;
    int wal = sqlite3_step(st) == SQLITE_ROW &&
              strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    dir_finish(d, st);
    if (!wal) {
        snprintf(d->err, sizeof d->err, "cannot switch directory to WAL mode");
        return -1;
    }
    return dir_exec(d, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
}

/* Creates the file with mode 0600 if missing: it holds password hashes and
 * the app-password key. SQLite gives the -wal and -shm files the same mode. */
static int precreate_private(const char *path, struct directory *d)
{
    /* Never open+close an existing database file: closing any descriptor
     * of it drops every POSIX lock this process holds on it, including
     * those of SQLite connections on other threads (then another process
     * may delete the WAL under them and they stop seeing new commits). */
    struct stat st;
    if (stat(path, &st) == 0)
        return 0;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return 0;
    if (fd < 0) {
        snprintf(d->err, sizeof d->err, "%s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

struct directory *dir_open(const char *data_dir, const char **error_r)
{
    static __thread char open_err[512];
    struct directory *d = xcalloc(1, sizeof *d);
    char *path = xasprintf("%s/directory.sqlite", data_dir);

    if (mkdir(data_dir, 0750) < 0 && errno != EEXIST) {
        snprintf(d->err, sizeof d->err, "%s: %s", data_dir, strerror(errno));
        goto fail;
    }
    if (precreate_private(path, d) < 0)
        goto fail;
    if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(d->err, sizeof d->err, "%s: %s", path,
                 d->db ? sqlite3_errmsg(d->db) : "cannot open");
        goto fail;
    }
    if (configure_connection(d) < 0 || migrate(d) < 0 || load_secret_key(d) < 0)
        goto fail;
    free(path);
    return d;
fail:
    snprintf(open_err, sizeof open_err, "%s", d->err);
    dir_set_error(error_r, open_err);
    free(path);
    dir_close(&d);
    return NULL;
}

void dir_close(struct directory **dp)
{
    struct directory *d = *dp;
    if (!d)
        return;
    *dp = NULL;
    if (d->db) {
        dir_stmt_cache_drop(d);
        sqlite3_close_v2(d->db);
    }
    OPENSSL_cleanse(d->key, sizeof d->key);
    free(d);
}

int dir_schema_version(struct directory *d)
{
    return read_version(d);
}
