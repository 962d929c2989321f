/* dir_sql: the small SQLite helpers every directory file uses (prepare,
 * exec, transactions, error text), and the account lookup, text-option
 * update and name lookup that dir_pop.c and dir_forward.c share. Errors are
 * copied into the directory's own err buffer so callers can hand out a
 * stable message. */
#include "auth/dir_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

const char *dir_sql_error(struct directory *d, const char *what)
{
    snprintf(d->err, sizeof d->err, "%s: %s", what, sqlite3_errmsg(d->db));
    return d->err;
}

/* Prepared statements are kept for reuse (parsing the SQL was a tenth of
 * the CPU of a submission): idle ones wait in this thread's cache, keyed by
 * the connection and the SQL text, until the next dir_prep of the same text.
 * dir_finish resets a statement and puts it back; dir_close finalizes the
 * connection's cached ones (connections are used by one thread: the worker
 * that opened it, dir_cache.h, or the CLI). */
#define STMT_CACHE 48

static __thread struct {
    sqlite3 *db;
    sqlite3_stmt *st;
} stmt_cache[STMT_CACHE];

sqlite3_stmt *dir_prep(struct directory *d, const char *sql)
{
    for (int i = 0; i < STMT_CACHE; i++)
        if (stmt_cache[i].db == d->db && strcmp(sqlite3_sql(stmt_cache[i].st), sql) == 0) {
            sqlite3_stmt *st = stmt_cache[i].st;
            stmt_cache[i].db = NULL;
            stmt_cache[i].st = NULL;
            return st;
        }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        dir_sql_error(d, "prepare");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

void dir_finish(struct directory *d, sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (int i = 0; i < STMT_CACHE; i++)
        if (!stmt_cache[i].st) {
            stmt_cache[i].db = d->db;
            stmt_cache[i].st = st;
            return;
        }
    sqlite3_finalize(st);
}

void dir_stmt_cache_drop(struct directory *d)
{
    for (int i = 0; i < STMT_CACHE; i++)
        if (stmt_cache[i].st && stmt_cache[i].db == d->db) {
            sqlite3_finalize(stmt_cache[i].st);
            stmt_cache[i].db = NULL;
            stmt_cache[i].st = NULL;
        }
}

/* One statement (BEGIN, COMMIT, a PRAGMA) runs from the statement cache:
 * sqlite3_exec would parse it again on every call, and a submitted message
 * runs five of them. */
static int exec_cached(struct directory *d, const char *sql)
{
    sqlite3_stmt *st = dir_prep(d, sql);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        snprintf(d->err, sizeof d->err, "sqlite: %s", sqlite3_errmsg(d->db));
    dir_finish(d, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int dir_exec(struct directory *d, const char *sql)
{
    if (!strchr(sql, ';'))
        return exec_cached(d, sql);
    char *msg = NULL;
    if (sqlite3_exec(d->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(d->err, sizeof d->err, "sqlite: %s", msg ? msg : "unknown error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Write transactions of this process's directory connections queue on a
 * mutex rather than in SQLite's busy handler, which sleeps 1, 2, 5 ms... and
 * polls: with a send count per submitted message, workers slept in it while
 * the lock was long free. Other processes (the CLI) still meet the busy
 * timeout. A thread holds the mutex from dir_begin to its commit or
 * rollback; a nested dir_begin fails in SQLite as before, without taking it
 * again. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int write_held;

static void write_release(void)
{
    if (write_held) {
        write_held = 0;
        pthread_mutex_unlock(&write_lock);
    }
}

int dir_begin(struct directory *d)
{
    int took = !write_held;
    if (took) {
        pthread_mutex_lock(&write_lock);
        write_held = 1;
    }
    if (dir_exec(d, "BEGIN IMMEDIATE") < 0) {
        if (took)
            write_release();
        return -1;
    }
    return 0;
}

int dir_commit(struct directory *d)
{
    if (dir_exec(d, "COMMIT") < 0) {
        dir_rollback(d);
        return -1;
    }
    write_release();
    return 0;
}

void dir_rollback(struct directory *d)
{
    if (!sqlite3_get_autocommit(d->db))
        (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    write_release();
}

int dir_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -1;
}

void dir_set_error(const char **error_r, const char *msg)
{
    if (error_r)
        *error_r = msg;
}

int dir_lookup_row(struct directory *d, const char *sql, const char *key, const char *what,
                   sqlite3_stmt **st_r)
{
    sqlite3_stmt *st = dir_prep(d, sql);
    if (!st)
        return -1;
    int ret = -1;
    if (dir_bind_text(st, 1, key) == 0) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *st_r = st;
            return 1;
        }
        if (rc == SQLITE_DONE)
            ret = 0;
        else
            dir_sql_error(d, what);
    }
    dir_finish(d, st);
    return ret;
}

int64_t dir_account_id(struct directory *d, const char *address)
{
    sqlite3_stmt *st;
    int r = dir_lookup_row(d, "SELECT id FROM accounts WHERE address = ?", address,
                           "account lookup", &st);
    if (r != 1)
        return r;
    int64_t id = sqlite3_column_int64(st, 0);
    dir_finish(d, st);
    return id;
}

int64_t dir_begin_account(struct directory *d, const char *address, const char **error_r)
{
    if (dir_begin(d) < 0) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    int64_t id = dir_account_id(d, address);
    if (id <= 0) {
        dir_set_error(error_r, id < 0 ? d->err : "no such account");
        dir_rollback(d);
    }
    return id;
}

int dir_update_account_text(struct directory *d, int64_t id, const char *sql, const char *value,
                            const char *what)
{
    sqlite3_stmt *st = dir_prep(d, sql);
    if (!st)
        return -1;
    int ok = dir_bind_text(st, 1, value) == 0 && sqlite3_bind_int64(st, 2, id) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;
    if (!ok)
        dir_sql_error(d, what);
    dir_finish(d, st);
    return ok ? 0 : -1;
}

int dir_name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}
