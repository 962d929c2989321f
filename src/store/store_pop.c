/* store_pop: the POP3 maildrop (store.h: store_pop_*): an exclusive lock
 * on an account's INBOX for a POP3 session and the snapshot of its messages
 * that the session numbers 1..n.
 *
 * The lock is flock(LOCK_EX|LOCK_NB) on DATA/mail/<account>/pop.lock.
 * flock locks belong to the open file description, so every store_pop_open
 * opens the file anew: two sessions of one process (one thread or two)
 * exclude each other just as two processes do, and the kernel drops the
 * lock if the process dies. IMAP and delivery never take this lock.
 *
 * The snapshot is read in one read transaction (UIDVALIDITY and the
 * messages agree) and never changes afterwards: mail delivered during the
 * session shows up in the next one (RFC 1939 does not let the maildrop
 * change under a session). A message expunged by IMAP during the session
 * keeps its entry; reading its path then fails, and the caller answers
 * that message with an error.
 *
 * The index is opened through store_index.c (store_ix_open with CREATE: an
 * account that never received mail gets its store and INBOX here). */
#include "store/store.h"
#include "store/store_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

struct store_pop {
    int lock_fd;
    uint32_t uidvalidity;
    int n, cap;
    struct store_pop_msg *msgs;
};

/* A busy maildrop lock is tried again this many times, this far apart. */
#define POP_LOCK_RETRIES 10
#define POP_LOCK_RETRY_NS (5 * 1000 * 1000L)

static int pop_lock(const char *root, int *fd_r, const char **error_r);
static int pop_snapshot(struct store_pop *p, const struct store_ix *ix, time_t since,
                        const char **error_r);
static int pop_read_inbox(sqlite3 *db, int64_t *mbox_r, uint32_t *uidvalidity_r);
static int pop_add(struct store_pop *p, const struct store_ix *ix, sqlite3_stmt *st);

/* One non-blocking try for the exclusive lock on FD: 0, or -1 with errno
 * (EWOULDBLOCK: another session holds it). */
static int lock_try(int fd)
{
    int r;
    do
        r = flock(fd, LOCK_EX | LOCK_NB);
    while (r < 0 && errno == EINTR);
    return r;
}

int store_pop_locked(const char *root)
{
    char *path = xasprintf("%s/pop.lock", root);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    if (fd < 0)
        return 0;
    int busy = lock_try(fd) < 0 && errno == EWOULDBLOCK;
    close(fd);   /* drops the lock when we took it */
    return busy;
}

/* 0 locked (*fd_r open), 1 held by another session, -1 error. */
static int pop_lock(const char *root, int *fd_r, const char **error_r)
{
    char *path = xasprintf("%s/pop.lock", root);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    free(path);
    if (fd < 0) {
        *error_r = "cannot open the maildrop lock";
        return -1;
    }
    /* A lock held a moment longer than the session that took it (a client
     * that dropped its connection and comes straight back before the
     * server has noticed; a compaction pass looking whether a session
     * runs) is worth a short wait on this worker thread: a session that
     * really is open keeps it far longer, and gets [IN-USE]. */
    int r;
    for (int tries = 0;; tries++) {
        r = lock_try(fd);
        if (r == 0 || errno != EWOULDBLOCK || tries >= POP_LOCK_RETRIES)
            break;
        struct timespec ts = {0, POP_LOCK_RETRY_NS};
        nanosleep(&ts, NULL);
    }
    if (r < 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        *error_r = busy ? "the maildrop is in use by another POP3 session"
                        : "cannot lock the maildrop";
        return busy ? 1 : -1;
    }
    *fd_r = fd;
    return 0;
}

/* INBOX's id and UIDVALIDITY. 0 or -1. */
static int pop_read_inbox(sqlite3 *db, int64_t *mbox_r, uint32_t *uidvalidity_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id, uidvalidity FROM mailboxes WHERE name = 'INBOX'", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *mbox_r = sqlite3_column_int64(st, 0);
        *uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 1);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Appends the message on row ST (uid, file, size, internaldate, flags,
 * offset). */
static int pop_add(struct store_pop *p, const struct store_ix *ix, sqlite3_stmt *st)
{
    if (p->n == p->cap) {
        if (p->cap > (INT32_MAX / 2))
            return -1;
        p->cap = p->cap ? p->cap * 2 : 64;
        p->msgs = xrealloc(p->msgs, xmul((size_t)p->cap, sizeof *p->msgs));
    }
    struct store_pop_msg *m = &p->msgs[p->n];
    memset(m, 0, sizeof *m);
    const char *file = (const char *)sqlite3_column_text(st, 1);
    const char *flags = (const char *)sqlite3_column_text(st, 4);
    sqlite3_int64 size = sqlite3_column_int64(st, 2);
    if (!file || size < 0)
        return -1;
    m->path = xasprintf("%s/%s", ix->root, file);
    m->offset = sqlite3_column_type(st, 5) == SQLITE_NULL ? STORE_WHOLE_FILE
                                                          : sqlite3_column_int64(st, 5);
    m->uid = (uint32_t)sqlite3_column_int64(st, 0);
    m->size = (size_t)size;
    m->internaldate = (time_t)sqlite3_column_int64(st, 3);
    m->seen = flags && store_flags_have(flags, "\\Seen");
    p->n++;
    return 0;
}

/* Reads UIDVALIDITY and the INBOX messages with internaldate >= SINCE in one
 * read transaction. */
static int pop_snapshot(struct store_pop *p, const struct store_ix *ix, time_t since,
                        const char **error_r)
{
    sqlite3 *db = ix->db;
    sqlite3_stmt *st = NULL;
    int64_t mbox;
    int rc = -1, step = SQLITE_ERROR;
    if (store_ix_exec(db, "BEGIN") < 0)
        goto out;
    if (pop_read_inbox(db, &mbox, &p->uidvalidity) < 0)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT uid, file, size, internaldate, flags, offset FROM messages"
                           " WHERE mailbox_id = ? AND internaldate >= ? ORDER BY uid",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mbox);
    sqlite3_bind_int64(st, 2, since > 0 ? (sqlite3_int64)since : 0);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (pop_add(p, ix, st) < 0)
            goto out;
    if (step == SQLITE_DONE)
        rc = 0;
out:
    if (rc < 0) {
        log_error("store", "event=pop-snapshot-failed error=\"%s\"", sqlite3_errmsg(db));
        *error_r = "cannot read the maildrop";
    }
    if (st)
        sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(db))
        store_ix_exec(db, "COMMIT");
    return rc;
}

int store_pop_open(const char *data_dir, const char *account, time_t since,
                   struct store_pop **pop_r, const char **error_r)
{
    *pop_r = NULL;
    struct store_ix ix;
    if (store_ix_open(data_dir, account, 1, &ix, error_r) != 0)
        return -1;
    struct store_pop *p = xcalloc(1, sizeof *p);
    p->lock_fd = -1;
    int rc = pop_lock(ix.root, &p->lock_fd, error_r);
    if (rc == 0 && pop_snapshot(p, &ix, since, error_r) < 0)
        rc = -1;
    char qb[LOG_QSIZE];
    if (rc == 1)
        log_info("store", "event=pop-in-use account=%s",
                 log_q(qb, sizeof qb, account, strlen(account)));
    store_ix_close(&ix);
    if (rc != 0) {
        store_pop_close(&p);
        return rc;
    }
    *pop_r = p;
    return 0;
}

int store_pop_count(const struct store_pop *p)
{
    return p ? p->n : 0;
}

const struct store_pop_msg *store_pop_msg(const struct store_pop *p, int i)
{
    if (!p || i < 0 || i >= p->n)
        return NULL;
    return &p->msgs[i];
}

uint32_t store_pop_uidvalidity(const struct store_pop *p)
{
    return p ? p->uidvalidity : 0;
}

void store_pop_close(struct store_pop **pp)
{
    struct store_pop *p = *pp;
    if (!p)
        return;
    *pp = NULL;
    if (p->lock_fd >= 0) {
        /* close alone would drop it too; unlocking first says so. */
        if (flock(p->lock_fd, LOCK_UN) < 0)
            log_warn("store", "event=pop-unlock-failed error=\"%s\"", strerror(errno));
        if (close(p->lock_fd) < 0)
            log_warn("store", "event=pop-lock-close-failed error=\"%s\"", strerror(errno));
    }
    for (int i = 0; i < p->n; i++)
        free(p->msgs[i].path);
    free(p->msgs);
    free(p);
}
