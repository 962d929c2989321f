/* store: reading an account's mailboxes back (store.h: store_list,
 * store_mailbox_status, store_read, store_list_mailboxes) and the whole
 * message files under DATA/mail/<account>/msg/ (one immutable file per
 * message, written through msg/tmp/: APPEND, COPY's links). Delivery
 * (store_deliver, store_deliver_batch) is store_batch.c, into pack files
 * (store_pack.c). The index itself (index.sqlite: opening it, the directories, the
 * schema and its migrations, the default mailboxes, mailbox lookup) belongs
 * to store_index.c (store_int.h); changes to stored messages are in
 * store_change.c, the POP3 maildrop in store_pop.c.
 *
 * The index is the truth: a message exists when the index says so; a file
 * in msg/ that no index row names is an orphan left by a crash between the
 * rename and the index commit, and is ignored (so are pack bytes no row
 * names).
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
static int message_lookup(struct store_ix *s, const char *mailbox, uint32_t uid, char **file_r,
                          int64_t *offset_r, size_t *size_r);

/* ---- lookups ---- */

/* store_ix_open for the read side: never creates; the error text is not wanted. */
static int db_open_read(const char *data_dir, const char *account, struct store_ix *s)
{
    const char *error;
    return store_ix_open(data_dir, account, 0, s, &error);
}

/* 0 found (*file_r malloc'd, relative to root; the offset in it, or
 * STORE_WHOLE_FILE, and the size), 1 none, -1 error. */
static int message_lookup(struct store_ix *s, const char *mailbox, uint32_t uid, char **file_r,
                          int64_t *offset_r, size_t *size_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT m.file, m.offset, m.size FROM messages m JOIN mailboxes b"
                           " ON b.id = m.mailbox_id WHERE b.name = ? AND m.uid = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, store_mailbox_canonical(mailbox), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, uid);
    int rc = store_ix_step(st);
    if (rc == 0) {
        *file_r = xstrdup((const char *)sqlite3_column_text(st, 0));
        *offset_r = sqlite3_column_type(st, 1) == SQLITE_NULL ? STORE_WHOLE_FILE
                                                              : sqlite3_column_int64(st, 1);
        *size_r = (size_t)sqlite3_column_int64(st, 2);
    }
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

void store_files_unlink(const struct store_ix *s, char *const *files, size_t n)
{
    int removed = 0, packs = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", s->root, files[i]);
        if (unlink(path) == 0)
            store_pack_is(files[i]) ? packs++ : removed++;
        else if (errno != ENOENT)
            log_warn("store", "event=unlink-failed file=%s error=\"%s\"", files[i],
                     strerror(errno));
        free(path);
    }
    if (removed > 0 && fs_fsync_dir_path(s->msg_dir) < 0)
        log_warn("store", "event=fsync-failed dir=msg error=\"%s\"", strerror(errno));
    if (packs > 0 && fs_fsync_dir_path(s->pack_dir) < 0)
        log_warn("store", "event=fsync-failed dir=msg/pack error=\"%s\"", strerror(errno));
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
                           "SELECT uid, file, size, internaldate, modseq, flags, queue_id,"
                           " offset FROM messages WHERE mailbox_id = ? ORDER BY uid",
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
        info->offset = sqlite3_column_type(st, 7) == SQLITE_NULL ? STORE_WHOLE_FILE
                                                                 : sqlite3_column_int64(st, 7);
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

int store_read(const char *data_dir, const char *account, const char *mailbox, uint32_t uid,
               char **data_r, size_t *len_r)
{
    struct store_ix s;
    int rc = db_open_read(data_dir, account, &s);
    if (rc != 0)
        return rc;
    char *file = NULL;
    int64_t offset = STORE_WHOLE_FILE;
    size_t size = 0;
    rc = message_lookup(&s, mailbox, uid, &file, &offset, &size);
    if (rc == 0) {
        char *path = xasprintf("%s/%s", s.root, file);
        if (store_msg_read(path, offset, size, STORE_MAX_MESSAGE_FILE, data_r, len_r) < 0) {
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
