/* store_ixpool: open index connections kept between store calls, shared by
 * every thread of the process (store_int.h: store_ixpool_take,
 * store_ixpool_give).
 *
 * Opening an account's index costs an open(2) of the file and its WAL and
 * shared-memory files, three PRAGMAs and a parse of the schema: far more
 * than the query that follows for SELECT, a chunk of FETCH rows or one
 * delivery. store_ix_close gives an idle connection (no open transaction,
 * no statement left) to the pool; store_ix_open takes it back when the same
 * index file (same path, device and inode: a deleted and recreated store is
 * a new file) is opened again, on whatever thread. A taken connection is
 * out of the pool, so only one thread uses it at a time, which is all
 * SQLite's multi-thread mode (SQLITE_OPEN_NOMUTEX) asks.
 *
 * One pool for the process rather than one per thread: a take gets the
 * most recently used connection to the file, whichever thread used it, so
 * a job finds the index's pages mapped (PRAGMA mmap_size) and warm on any
 * worker, and the server's memory does not depend on which worker last
 * served an account. Concurrent users of one index use a connection each,
 * and the pool keeps up to IXPOOL_PER_FILE of them per file (a delivery
 * batch, an RCPT's quota read and an IMAP command at the same moment must
 * not reopen the file each time); the least recently used goes when the
 * pool is full. A pooled connection sees every commit made by others at
 * the start of its next transaction (WAL), exactly as a new one would. The
 * schema cookie is compared too: an index whose schema was changed meanwhile (by
 * another process, or by hand) gets a new connection, which checks and
 * migrates it as store_ix_open always does. */
#include "store/store_int.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define IXPOOL_SIZE 32
#define IXPOOL_PER_FILE 4   /* jobs on one account at once: RCPT, delivery, IMAP, POP3 */

struct ixpool_entry {
    sqlite3 *db;
    char *path;
    dev_t dev;
    ino_t ino;
    int cookie;         /* PRAGMA schema_version when pooled */
    uint64_t used;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ixpool_entry pool[IXPOOL_SIZE];
static uint64_t pool_clock;

/* SQLite's schema cookie (it changes with every schema change), -1 error. */
static int schema_cookie(sqlite3 *db)
{
    sqlite3_stmt *st = store_stmt_take(db, "PRAGMA schema_version");
    if (!st)
        return -1;
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    store_stmt_give(db, st);
    return v;
}

/* Empties E; its connection (if any) goes to *CLOSE_R for the caller to
 * close outside the lock. */
static void entry_clear(struct ixpool_entry *e, sqlite3 **close_r)
{
    *close_r = e->db;
    free(e->path);
    memset(e, 0, sizeof *e);
}

sqlite3 *store_ixpool_take(const char *path, const struct stat *st)
{
    sqlite3 *db = NULL, *stale[IXPOOL_SIZE];
    int nstale = 0, cookie = -1;
    pthread_mutex_lock(&pool_lock);
    struct ixpool_entry *best = NULL;
    for (int i = 0; i < IXPOOL_SIZE; i++) {
        struct ixpool_entry *e = &pool[i];
        if (!e->db || strcmp(e->path, path) != 0)
            continue;
        if (e->dev != st->st_dev || e->ino != st->st_ino) {
            entry_clear(e, &stale[nstale++]);   /* the store was deleted and made again */
            continue;
        }
        if (!best || e->used > best->used)
            best = e;   /* the most recently used: its pages are the warmest */
    }
    if (best) {
        cookie = best->cookie;
        entry_clear(best, &db);
    }
    pthread_mutex_unlock(&pool_lock);
    for (int i = 0; i < nstale; i++)
        store_ix_db_close(stale[i]);
    if (db && schema_cookie(db) != cookie) {
        store_ix_db_close(db);
        db = NULL;
    }
    return db;
}

void store_ixpool_give(sqlite3 *db, const char *path, const struct stat *st)
{
    int cookie = -1;
    if (!sqlite3_get_autocommit(db) || !store_stmt_only_kept(db) ||
        (cookie = schema_cookie(db)) < 0) {
        store_ix_db_close(db);
        return;
    }
    sqlite3 *closing = NULL;
    pthread_mutex_lock(&pool_lock);
    /* an empty slot, else the least recently used entry; but a file that
     * has IXPOOL_PER_FILE entries already gives up its own oldest */
    struct ixpool_entry *slot = NULL, *own_oldest = NULL;
    int own = 0;
    for (int i = 0; i < IXPOOL_SIZE; i++) {
        struct ixpool_entry *e = &pool[i];
        if (e->db && strcmp(e->path, path) == 0) {
            own++;
            if (!own_oldest || e->used < own_oldest->used)
                own_oldest = e;
        }
        if (!slot || (slot->db && (!e->db || e->used < slot->used)))
            slot = e;
    }
    if (own >= IXPOOL_PER_FILE)
        slot = own_oldest;
    entry_clear(slot, &closing);
    slot->db = db;
    slot->path = xstrdup(path);
    slot->dev = st->st_dev;
    slot->ino = st->st_ino;
    slot->cookie = cookie;
    slot->used = ++pool_clock;
    pthread_mutex_unlock(&pool_lock);
    if (closing)
        store_ix_db_close(closing);
}
