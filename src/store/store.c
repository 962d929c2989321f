/* store: delivering into an account's mailboxes and reading them back
 * (store.h: store_deliver, store_list, store_mailbox_status, store_read,
 * store_list_mailboxes).
 *
 * Owns the message files under DATA/mail/<account>/msg/ (one immutable file
 * per message, written through msg/tmp/) and the rows a delivery adds to the
 * index. The index itself (index.sqlite: opening it, the directories, the
 * schema and its migrations, the default mailboxes, mailbox lookup) belongs
 * to store_index.c (store_int.h); changes to stored messages are in
 * store_change.c, the POP3 maildrop in store_pop.c.
 *
 * The index is the truth: a message exists when the index says so; a file
 * in msg/ that no index row names is an orphan left by a crash between the
 * rename and the index commit, and is ignored.
 *
 * Invariants: UIDs in a mailbox only grow (uidnext is bumped in the same
 * transaction that inserts the message and is never lowered); every change
 * bumps highestmodseq; a queue id appears at most once in deliveries, which
 * is what makes local delivery idempotent.
 *
 * Every call opens its own connection (store_ix_open: WAL,
 * synchronous=FULL, busy timeout) and closes it: calls are blocking and
 * meant for worker threads; SQLite serialises concurrent writers of one
 * account. */
#include "store/store.h"
#include "store/store_int.h"
#include "core/fsutil.h"
#include "core/notify.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define STORE_MAX_MESSAGE_FILE (1024u * 1024 * 1024)

static int db_open_read(const char *data_dir, const char *account, struct store_ix *s);
static int step_done(sqlite3_stmt **stp);
static int delivery_lookup(sqlite3 *db, const char *queue_id, uint32_t *uid_r);
static int index_insert(struct store_ix *s, int64_t mbox, const char *queue_id,
                        const char *file, size_t len, time_t internaldate,
                        const struct store_cached *cache, uint32_t *uid_r, int *duplicate_r,
                        int *committed_unknown_r);
static int message_lookup(struct store_ix *s, const char *mailbox, uint32_t uid, char **file_r);
static void message_file_remove(struct store_ix *s, const char *file);
static int read_whole_file(const char *path, char **data_r, size_t *len_r);

/* ---- lookups ---- */

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

/* store_ix_open for the read side: never creates; the error text is not wanted. */
static int db_open_read(const char *data_dir, const char *account, struct store_ix *s)
{
    const char *error;
    return store_ix_open(data_dir, account, 0, s, &error);
}

/* 0 delivered before (uid set), 1 not, -1 error. */
static int delivery_lookup(sqlite3 *db, const char *queue_id, uint32_t *uid_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT uid FROM deliveries WHERE queue_id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
    int rc = store_ix_step(st);
    if (rc == 0)
        *uid_r = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* 0 found (*file_r malloc'd, relative to root), 1 none, -1 error. */
static int message_lookup(struct store_ix *s, const char *mailbox, uint32_t uid, char **file_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT m.file FROM messages m JOIN mailboxes b ON b.id ="
                           " m.mailbox_id WHERE b.name = ? AND m.uid = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, store_mailbox_canonical(mailbox), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, uid);
    int rc = store_ix_step(st);
    if (rc == 0)
        *file_r = xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc;
}

/* ---- deliver ---- */

/* Unique without coordination: time, then 64 random bits. */
void store_file_name(char *out, size_t outsz)
{
    struct timeval tv;
    uint64_t r = 0;
    gettimeofday(&tv, NULL);
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)tv.tv_usec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    snprintf(out, outsz, "%lld.%06ld.%016" PRIx64, (long long)tv.tv_sec, (long)tv.tv_usec, r);
}

/* msg/tmp/NAME, fsync, rename to msg/NAME, fsync msg/. */
int store_file_write(struct store_ix *s, const char *name, const char *data, size_t len,
                     const char **error_r)
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
static void message_file_remove(struct store_ix *s, const char *file)
{
    char *path = xasprintf("%s/%s", s->root, file);
    unlink(path);
    free(path);
}

/* One transaction: the message row, the delivery row, uidnext and
 * highestmodseq. Returns 0 and sets *uid_r, or sets *duplicate_r when the
 * queue id won a race with us. *committed_unknown_r is set when COMMIT
 * itself failed (the file must then stay: the row may exist). */
static int index_insert(struct store_ix *s, int64_t mbox, const char *queue_id,
                        const char *file, size_t len, time_t internaldate,
                        const struct store_cached *cache, uint32_t *uid_r, int *duplicate_r,
                        int *committed_unknown_r)
{
    sqlite3 *db = s->db;
    sqlite3_stmt *st = NULL;
    int64_t uid, modseq;
    if (store_ix_exec(db, "BEGIN IMMEDIATE") < 0)
        return -1;
    if (queue_id) {
        int d = delivery_lookup(db, queue_id, uid_r);
        if (d < 0)
            goto fail;
        if (d == 0) {
            *duplicate_r = 1;
            store_ix_exec(db, "ROLLBACK");
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
                           " modseq, flags, queue_id, envelope, bodystructure, header)"
                           " VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?)",
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
    sqlite3_bind_text(st, 8, cache->envelope, -1, SQLITE_STATIC);        /* NULL: NULL */
    sqlite3_bind_text(st, 9, cache->bodystructure, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 10, cache->header, (int)cache->header_len, SQLITE_STATIC);
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
    if (store_ix_exec(db, "COMMIT") < 0) {
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
        store_ix_exec(db, "ROLLBACK");
    return -1;
}

int store_deliver(const char *data_dir, const char *account, const char *mailbox,
                  const char *queue_id, const char *data, size_t len, time_t internaldate,
                  uint32_t *uid_r, int *duplicate_r, const char **error_r)
{
    struct store_ix s;
    *duplicate_r = 0;
    *uid_r = 0;
    if (queue_id && !*queue_id)
        queue_id = NULL;
    if (!mailbox || (!data && len > 0)) {
        *error_r = "bad arguments";
        return -1;
    }
    if (store_ix_open(data_dir, account, 1, &s, error_r) != 0)
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
    int m = store_ix_mailbox(s.db, mailbox, &mbox);
    if (m != 0) {
        *error_r = m > 0 ? "no such mailbox" : "cannot read the mailbox index";
        goto out;
    }
    char name[96];
    store_file_name(name, sizeof name);
    if (store_file_write(&s, name, data ? data : "", len, error_r) < 0)
        goto out;
    char *file = xasprintf("msg/%s", name);
    int unknown = 0;
    struct store_cached cache;
    store_structure_compute(data ? data : "", len, &cache);
    int ins = index_insert(&s, mbox, queue_id, file, len, internaldate, &cache, uid_r,
                           duplicate_r, &unknown);
    store_cached_free(&cache);
    if (ins < 0) {
        *error_r = "cannot update the mailbox index";
        if (!unknown)
            message_file_remove(&s, file);
    } else {
        if (*duplicate_r)
            message_file_remove(&s, file);
        else
            notify_mailbox_changed(account);
        rc = 0;
    }
    free(file);
out:
    store_ix_close(&s);
    return rc;
}

void store_files_unlink(const struct store_ix *s, char *const *files, size_t n)
{
    int removed = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", s->root, files[i]);
        if (unlink(path) == 0)
            removed++;
        else if (errno != ENOENT)
            log_warn("store", "event=unlink-failed file=%s error=\"%s\"", files[i],
                     strerror(errno));
        free(path);
    }
    if (removed > 0 && fs_fsync_dir_path(s->msg_dir) < 0)
        log_warn("store", "event=fsync-failed dir=msg error=\"%s\"", strerror(errno));
}

/* ---- read side ---- */

int store_list(const char *data_dir, const char *account, const char *mailbox,
               void (*cb)(const struct store_msg_info *m, void *arg), void *arg)
{
    struct store_ix s;
    int rc = db_open_read(data_dir, account, &s);
    if (rc != 0)
        return rc;
    int64_t mbox;
    sqlite3_stmt *st = NULL;
    rc = store_ix_mailbox(s.db, mailbox, &mbox);
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
    store_ix_close(&s);
    return rc;
}

int store_mailbox_status(const char *data_dir, const char *account, const char *mailbox,
                         uint32_t *uidvalidity_r, uint32_t *uidnext_r, uint32_t *count_r)
{
    struct store_ix s;
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
    sqlite3_bind_text(st, 1, store_mailbox_canonical(mailbox), -1, SQLITE_STATIC);
    rc = store_ix_step(st);
    if (rc == 0) {
        *uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 0);
        *uidnext_r = (uint32_t)sqlite3_column_int64(st, 1);
        *count_r = (uint32_t)sqlite3_column_int64(st, 2);
    }
out:
    if (st)
        sqlite3_finalize(st);
    store_ix_close(&s);
    return rc;
}

int store_list_mailboxes(const char *data_dir, const char *account,
                         void (*cb)(const char *name, const char *special_use, void *arg),
                         void *arg)
{
    struct store_ix s;
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
    store_ix_close(&s);
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
    size_t size = (size_t)st.st_size, got;
    char *data = xmalloc(size + 1);
    if (fs_read_full(fd, data, size, &got) < 0 || got != size) {
        free(data);
        close(fd);
        return -1;
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
    struct store_ix s;
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
    store_ix_close(&s);
    return rc;
}
