/* test_loop: loop runner and data-directory probes shared by the queue
 * unit tests (see test_loop.h). */
#include "test_loop.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "store/store.h"

#include <event2/event.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct waiter {
    struct event_base *base;
    int (*cond)(void *arg);
    void *arg;
    int met;
};

static void waiter_tick(evutil_socket_t fd, short what, void *arg)
{
    struct waiter *w = arg;
    if (w->cond(w->arg)) {
        w->met = 1;
        event_base_loopbreak(w->base);
    }
}

int test_run_until(struct loop *loop, int (*cond)(void *), void *arg, int timeout_ms)
{
    struct waiter w = { loop_base(loop), cond, arg, 0 };
    struct event *tick = event_new(w.base, -1, EV_PERSIST, waiter_tick, &w);
    struct timeval every = { 0, 5000 };
    event_add(tick, &every);
    struct timeval limit = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    event_base_loopexit(w.base, &limit);
    event_base_dispatch(w.base);
    event_free(tick);
    return w.met || cond(arg);
}

int test_log_count(const char *dir, const char *needle, const char *id)
{
    char *path = xasprintf("%s/log/roost.log", dir);
    FILE *fp = fopen(path, "r");
    free(path);
    if (!fp)
        return -1;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, fp))
        if (strstr(line, needle) && (!id || strstr(line, id)))
            n++;
    fclose(fp);
    return n;
}

int test_queue_file_exists(const char *dir, const char *id)
{
    char *p = xasprintf("%s/queue/%s", dir, id);
    struct stat st;
    int rc = stat(p, &st) == 0;
    free(p);
    return rc;
}

int test_inbox_count(const char *dir, const char *account)
{
    uint32_t uv, next, count;
    if (store_mailbox_status(dir, account, "INBOX", &uv, &next, &count) != 0)
        return 0;
    return (int)count;
}

long long test_db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    long long v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

long long test_index_int(const char *dir, const char *account, const char *sql)
{
    char *path = xasprintf("%s/mail/%s/index.sqlite", dir, account);
    long long v = test_db_int(path, sql);
    free(path);
    return v;
}

char *test_pack_path(const char *dir, const char *account, int seq)
{
    return xasprintf("%s/mail/%s/msg/pack/%016x", dir, account, seq);
}

int test_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int test_store_read_is(const char *dir, const char *account, const char *mailbox,
                       unsigned uid, const char *want, size_t wlen)
{
    char *data = NULL;
    size_t len = 0;
    int ok = store_read(dir, account, mailbox, uid, &data, &len) == 0 && len == wlen &&
             memcmp(data, want, len) == 0;
    free(data);
    return ok;
}

int test_index_exec(const char *dir, const char *account, const char *sql)
{
    char *path = xasprintf("%s/mail/%s/index.sqlite", dir, account);
    sqlite3 *db = NULL;
    int ok = sqlite3_open(path, &db) == SQLITE_OK &&
             sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    free(path);
    return ok;
}
