/* store_pack: the append-only pack files of an account's delivered mail
 * (store_int.h: store_pack_*).
 *
 * DATA/mail/<account>/msg/pack/<16 hex digits> holds many messages one
 * after the other; a message row with a non-NULL `offset` is `size` bytes at
 * that offset of the pack its `file` names. Deliveries append to the active
 * pack (pack_state.active), chosen and, past STORE_PACK_MAX, rotated to the
 * next sequence number inside the delivery's write transaction: the pack is
 * fdatasync'd (and msg/pack/ fsync'd when the file is new) before COMMIT,
 * so a committed row always names bytes on stable storage. A crash between
 * the append and the COMMIT leaves bytes that no row names at the end of the
 * pack; the next append goes after them (at the file's size), so they are
 * never read.
 *
 * A pack is unlinked once no row names it and it is not the active one,
 * decided in the write transaction of the change that removed its last row
 * (store_pack_filter): a delivery, which takes the active pack under the
 * same lock, can never append to a pack being unlinked, and the active
 * sequence number only grows. Bytes never change once written and packs are
 * never truncated, so readers (store_msgfile.c) may map them. A pack that
 * keeps little live mail is rewritten into the active one and retired by
 * store_compact.c; the changes that may leave such a pack note the account
 * as due for the server's pass (store_compact_note). */
#include "store/store_int.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PACK_PREFIX "msg/pack/"

static uint64_t pack_max = STORE_PACK_MAX;   /* atomic; tests lower it */

void store_pack_limit_set(uint64_t bytes)
{
    __atomic_store_n(&pack_max, bytes ? bytes : STORE_PACK_MAX, __ATOMIC_RELAXED);
}

int store_pack_is(const char *file)
{
    return file && strncmp(file, PACK_PREFIX, sizeof PACK_PREFIX - 1) == 0;
}

void store_pack_name(char *out, size_t outsz, uint64_t seq)
{
    snprintf(out, outsz, PACK_PREFIX "%016" PRIx64, seq);
}

int64_t store_pack_active(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT active FROM pack_state WHERE id = 1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    int64_t v = store_ix_step(st) == 0 ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static int active_set(sqlite3 *db, uint64_t seq)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE pack_state SET active = ? WHERE id = 1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

int store_pack_referenced(sqlite3 *db, const char *file)
{
    return store_ix_exists(db, "SELECT 1 FROM messages WHERE file = ? LIMIT 1", file);
}

/* Opens pack SEQ for appending (creating it, and msg/pack/ for a store made
 * before packs existed, each new entry made durable at store_pack_sync). */
static int pack_open(struct store_ix *ix, struct store_pack *p, uint64_t seq)
{
    char *path;
    store_pack_name(p->name, sizeof p->name, seq);
    path = xasprintf("%s/%s", ix->root, p->name);
    p->fd = open(path, O_RDWR | O_CLOEXEC);
    if (p->fd < 0 && errno == ENOENT) {
        if (mkdir(ix->pack_dir, 0700) == 0) {
            if (fs_fsync_dir_path(ix->msg_dir) < 0) {
                free(path);
                return -1;
            }
        } else if (errno != EEXIST) {
            free(path);
            return -1;
        }
        p->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        p->created = 1;
    }
    free(path);
    if (p->fd < 0)
        return -1;
    struct stat st;
    if (fstat(p->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(p->fd);
        p->fd = -1;
        return -1;
    }
    p->seq = seq;
    p->end = (uint64_t)st.st_size;   /* after any tail a crash left */
    return 0;
}

int store_pack_begin(struct store_ix *ix, uint64_t adding, struct store_pack *p,
                     const char **error_r)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    int64_t active = store_pack_active(ix->db);
    if (active < 0) {
        *error_r = "cannot read the mailbox index";
        return -1;
    }
    uint64_t seq = active > 0 ? (uint64_t)active : 1;
    if (pack_open(ix, p, seq) < 0)
        goto fail;
    uint64_t max = __atomic_load_n(&pack_max, __ATOMIC_RELAXED);
    if (active > 0 && p->end > 0 && p->end + adding > max) {
        /* rotate: the full pack stops being active; unlinked after COMMIT
         * when nothing uses it any more */
        char old[sizeof p->name];
        memcpy(old, p->name, sizeof old);
        close(p->fd);
        p->fd = -1;
        int used = store_pack_referenced(ix->db, old);
        if (used < 0) {
            *error_r = "cannot read the mailbox index";
            return -1;
        }
        if (pack_open(ix, p, seq + 1) < 0)
            goto fail;
        if (!used)
            p->retired = xstrdup(old);
        else
            store_compact_note(ix->db);   /* it may hold expunged space */
    }
    if ((uint64_t)active != p->seq && active_set(ix->db, p->seq) < 0) {
        *error_r = "cannot update the mailbox index";
        store_pack_end(ix, p, 0);
        return -1;
    }
    return 0;
fail:
    log_error("store", "event=pack-open-failed error=\"%s\"", strerror(errno));
    *error_r = "cannot open the pack file";
    store_pack_end(ix, p, 0);
    return -1;
}

int store_pack_append(struct store_pack *p, struct iovec *iov, int n, const char **error_r)
{
    while (n > 0) {
        int cnt = n < IOV_MAX ? n : IOV_MAX;
        ssize_t w = pwritev(p->fd, iov, cnt, (off_t)p->end);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_error("store", "event=pack-write-failed file=%s error=\"%s\"", p->name,
                      w < 0 ? strerror(errno) : "no progress");
            *error_r = "cannot write the pack file";
            return -1;
        }
        p->end += (uint64_t)w;
        fs_iov_advance(&iov, &n, (size_t)w);
    }
    return 0;
}

int store_pack_sync(const struct store_ix *ix, struct store_pack *p, const char **error_r)
{
    if (fdatasync(p->fd) < 0) {
        log_error("store", "event=pack-sync-failed file=%s error=\"%s\"", p->name,
                  strerror(errno));
        *error_r = "cannot fsync the pack file";
        return -1;
    }
    if (p->created && fs_fsync_dir_path(ix->pack_dir) < 0) {
        *error_r = "cannot fsync the pack directory";
        return -1;
    }
    p->created = 0;
    return 0;
}

void store_pack_end(const struct store_ix *ix, struct store_pack *p, int committed)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    if (p->retired && committed)
        store_files_unlink(ix, &p->retired, 1);
    free(p->retired);
    p->retired = NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_pack_filter(sqlite3 *db, char **files, size_t *n_r)
{
    size_t n = *n_r, k = 0;
    int64_t active = -1;
    char active_name[32] = "", prev[64] = "";
    if (n == 0)
        return 0;
    qsort(files, n, sizeof *files, cmp_str);   /* a pack named many times: adjacent */
    for (size_t i = 0; i < n; i++) {
        if (store_pack_is(files[i])) {
            int drop = strcmp(files[i], prev) == 0;   /* decided already */
            if (!drop) {
                snprintf(prev, sizeof prev, "%s", files[i]);
                if (active < 0 && (active = store_pack_active(db)) >= 0)
                    store_pack_name(active_name, sizeof active_name, (uint64_t)active);
                int used = active < 0 ? -1 : store_pack_referenced(db, files[i]);
                if (used < 0) {
                    while (i < n)   /* keep the list whole for the caller to free */
                        files[k++] = files[i++];
                    *n_r = k;
                    return -1;
                }
                drop = used || strcmp(files[i], active_name) == 0;
                if (drop)
                    store_compact_note(db);   /* a pack that stays lost some mail */
            }
            if (drop) {
                free(files[i]);
                continue;
            }
        }
        files[k++] = files[i];
    }
    *n_r = k;
    return 0;
}
