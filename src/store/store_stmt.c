/* store_stmt: prepared statements kept with their index connection between
 * store calls (store_int.h: store_stmt_take, store_stmt_give).
 *
 * Index connections live in the pool (store_ixpool.c) and serve one call
 * after another; preparing the same SQL again for each call (the quota read
 * of every RCPT, BEGIN and COMMIT of every delivery batch, the schema
 * cookie of every pool take) was a few percent of a submitted message's
 * CPU. A statement given back is reset, its bindings cleared, and kept here
 * with its connection until the next take of the same SQL on that
 * connection, by whichever thread holds the connection then (the pool gives
 * a connection to one thread at a time). Before a connection closes,
 * store_stmt_forget finalizes its kept statements. The table is
 * process-wide and small; when it is full a given-back statement is simply
 * finalized. */
#include "store/store_int.h"

#include <pthread.h>
#include <string.h>

#define STMT_KEPT 512

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    sqlite3 *db;
    sqlite3_stmt *st;
} kept[STMT_KEPT];

sqlite3_stmt *store_stmt_take(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&kept_lock);
    for (int i = 0; i < STMT_KEPT; i++)
        if (kept[i].db == db && strcmp(sqlite3_sql(kept[i].st), sql) == 0) {
            st = kept[i].st;
            kept[i].db = NULL;
            kept[i].st = NULL;
            break;
        }
    pthread_mutex_unlock(&kept_lock);
    if (st)
        return st;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

void store_stmt_give(sqlite3 *db, sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_lock(&kept_lock);
    for (int i = 0; i < STMT_KEPT; i++)
        if (!kept[i].st) {
            kept[i].db = db;
            kept[i].st = st;
            st = NULL;
            break;
        }
    pthread_mutex_unlock(&kept_lock);
    sqlite3_finalize(st);
}

void store_stmt_forget(sqlite3 *db)
{
    sqlite3_stmt *drop[STMT_KEPT];
    int n = 0;
    pthread_mutex_lock(&kept_lock);
    for (int i = 0; i < STMT_KEPT; i++)
        if (kept[i].st && kept[i].db == db) {
            drop[n++] = kept[i].st;
            kept[i].db = NULL;
            kept[i].st = NULL;
        }
    pthread_mutex_unlock(&kept_lock);
    for (int i = 0; i < n; i++)
        sqlite3_finalize(drop[i]);
}

/* Every kept statement of DB is one of DB's statements, so DB has only kept
 * ones when the two counts agree: one pass over each list. */
int store_stmt_only_kept(sqlite3 *db)
{
    int all = 0, mine = 0;
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st))
        all++;
    pthread_mutex_lock(&kept_lock);
    for (int i = 0; i < STMT_KEPT; i++)
        mine += kept[i].st && kept[i].db == db;
    pthread_mutex_unlock(&kept_lock);
    return all == mine;
}

void store_ix_db_close(sqlite3 *db)
{
    if (!db)
        return;
    store_stmt_forget(db);
    sqlite3_close(db);
}

int store_ix_run(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = store_stmt_take(db, sql);
    if (!st)
        return SQLITE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    store_stmt_give(db, st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
