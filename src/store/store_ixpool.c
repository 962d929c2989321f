/* store_ixpool: a few open index connections per thread, kept between
 * store calls (store_int.h: store_ixpool_take, store_ixpool_give).
 *
 * Opening an account's index costs an open(2) of the file and its WAL and
 * shared-memory files, three PRAGMAs and a parse of the schema: far more
 * than the query that follows for SELECT, a chunk of FETCH rows or one
 * delivery. store_ix_close gives an idle connection (no open transaction,
 * no statement left) to its thread's pool; store_ix_open takes it back when
 * the same index file (same path, device and inode: a deleted and recreated
 * store is a new file) is opened again on that thread. Connections never
 * move between threads (they are opened SQLITE_OPEN_NOMUTEX); the least
 * recently used one is closed when the pool is full, and a thread's pool is
 * closed when the thread ends. A pooled connection sees every commit made
 * by others at the start of its next transaction (WAL), exactly as a new
 * one would. The schema cookie is compared too: an index whose schema was
 * changed meanwhile (by another process, or by hand) gets a new connection,
 * which checks and migrates it as store_ix_open always does. */
#include "store/store_int.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define IXPOOL_SIZE 4

struct ixpool_entry {
    sqlite3 *db;
    char *path;
    dev_t dev;
    ino_t ino;
    int cookie;         /* PRAGMA schema_version when pooled */
    uint64_t used;
};

struct ixpool {
    struct ixpool_entry e[IXPOOL_SIZE];
    uint64_t clock;
};

static pthread_key_t pool_key;

/* SQLite's schema cookie (it changes with every schema change), -1 error. */
static int schema_cookie(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA schema_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void entry_close(struct ixpool_entry *e)
{
    if (e->db)
        sqlite3_close(e->db);
    free(e->path);
    memset(e, 0, sizeof *e);
}

static void pool_destroy(void *p)
{
    struct ixpool *pool = p;
    for (int i = 0; i < IXPOOL_SIZE; i++)
        entry_close(&pool->e[i]);
    free(pool);
}

static void pool_key_create(void)
{
    (void)pthread_key_create(&pool_key, pool_destroy);
}

static struct ixpool *pool_get(void)
{
    pthread_once(&pool_once, pool_key_create);
    struct ixpool *pool = pthread_getspecific(pool_key);
    if (!pool) {
        pool = xcalloc(1, sizeof *pool);
        if (pthread_setspecific(pool_key, pool) != 0) {
            free(pool);
            return NULL;
        }
    }
    return pool;
}

sqlite3 *store_ixpool_take(const char *path, const struct stat *st)
{
    struct ixpool *pool = pool_get();
    if (!pool)
        return NULL;
    for (int i = 0; i < IXPOOL_SIZE; i++) {
        struct ixpool_entry *e = &pool->e[i];
        if (!e->db || strcmp(e->path, path) != 0)
            continue;
        if (e->dev != st->st_dev || e->ino != st->st_ino) {
            entry_close(e);   /* the store was deleted and made again */
            continue;
        }
        sqlite3 *db = e->db;
        int same = schema_cookie(db) == e->cookie;
        if (same)
            e->db = NULL;
        entry_close(e);
        return same ? db : NULL;
    }
    return NULL;
}

void store_ixpool_give(sqlite3 *db, const char *path, const struct stat *st)
{
    struct ixpool *pool = pool_get();
    int cookie = -1;
    if (!pool || !sqlite3_get_autocommit(db) || sqlite3_next_stmt(db, NULL) != NULL ||
        (cookie = schema_cookie(db)) < 0) {
        sqlite3_close(db);
        return;
    }
    struct ixpool_entry *slot = &pool->e[0];
    for (int i = 0; i < IXPOOL_SIZE; i++) {
        struct ixpool_entry *e = &pool->e[i];
        if (e->db && strcmp(e->path, path) == 0) {
            slot = e;   /* one connection per file is enough */
            break;
        }
        if (!e->db) {
            slot = e;
            continue;
        }
        if (slot->db && e->used < slot->used)
            slot = e;
    }
    entry_close(slot);
    slot->db = db;
    slot->path = xstrdup(path);
    slot->dev = st->st_dev;
    slot->ino = st->st_ino;
    slot->cookie = cookie;
    slot->used = ++pool->clock;
}
