/* store_compact: giving back the space of expunged mail in pack files
 * (store.h: store_compact_account).
 *
 * A pack keeps the bytes of every message ever appended to it until no row
 * names it any more (store_pack.c). A compaction pass over one account:
 *
 * 1. unlinks the retired packs (pack_retired) whose grace period is over:
 *    their rows are deleted in one write transaction, then the files go;
 * 2. picks the packs below the active one (never appended to again: the
 *    active sequence number only grows) that are not retired and whose live
 *    bytes (the sizes of the distinct (file, offset) rows naming them: a
 *    COPY shares its original's bytes) are below STORE_COMPACT_LIVE_PERCENT
 *    of the file's size, or 0;
 * 3. for each, in one BEGIN IMMEDIATE transaction (the write lock every
 *    delivery takes, so nothing else appends to the active pack meanwhile):
 *    reads its live set again, appends those bytes to the active pack
 *    (store_pack_begin: the delivery path's rotation rule), fdatasync's it,
 *    points every row of (old pack, old offset) at (new pack, new offset),
 *    records the old pack in pack_retired, and COMMITs.
 *
 * The old pack is not unlinked at that COMMIT: a POP3 snapshot or an IMAP
 * FETCH that looked the row up just before still reads the old place, which
 * holds the same bytes. It goes on a later pass once retired_at is older
 * than the grace period and no POP3 session holds the maildrop lock (a
 * snapshot lives as long as its session). A crash before the COMMIT leaves copied bytes at
 * the end of the active pack that no row names (as a delivery's crash
 * does) and every row as it was; a crash after the COMMIT and before an
 * unlink leaves a pack no row names, which the next pass retires again.
 * Blocking (disk, SQLite): worker threads and the CLI only. */
#include "store/store.h"
#include "store/store_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Copy buffer: a message is copied in pieces of at most this size. */
#define COMPACT_CHUNK (1024u * 1024)

static int64_t grace_s = STORE_COMPACT_GRACE;   /* atomic; tests and the CLI set it */
static int abort_before_commit;                 /* atomic; tests */

void store_compact_grace_set(int64_t seconds)
{
    __atomic_store_n(&grace_s, seconds < 0 ? (int64_t)STORE_COMPACT_GRACE : seconds,
                     __ATOMIC_RELAXED);
}

void store_compact_abort_set(int on)
{
    __atomic_store_n(&abort_before_commit, on, __ATOMIC_RELAXED);
}

/* One live message of a pack: SIZE bytes at OFFSET, going to NEWOFF. */
struct live {
    int64_t offset, size, newoff;
};

/* A pack the pass looks at. */
struct cand {
    uint64_t seq;
    char name[32];
};

/* ---- step 1: retired packs past their grace ---- */

static int retired_expire(struct store_ix *ix, struct store_compact_stats *st)
{
    /* A POP3 session keeps its snapshot's (pack, offset)s for its whole
     * life, however long: while one is open (it may have started before a
     * rewrite), no retired pack goes. */
    if (store_pop_locked(ix->root)) {
        st->removal_postponed = 1;
        return 0;
    }
    int64_t cutoff = (int64_t)time(NULL) - __atomic_load_n(&grace_s, __ATOMIC_RELAXED);
    sqlite3 *db = ix->db;
    if (store_ix_exec(db, "BEGIN IMMEDIATE") < 0)
        return -1;
    sqlite3_stmt *sel = NULL, *del = NULL;
    char **files = NULL;
    size_t n = 0, cap = 0;
    if (sqlite3_prepare_v2(db, "SELECT file FROM pack_retired WHERE retired_at <= ?", -1, &sel,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "DELETE FROM pack_retired WHERE file = ?", -1, &del, NULL) !=
            SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(sel, 1, cutoff);
    int rc;
    while ((rc = store_ix_step(sel)) == 0) {
        const char *f = (const char *)sqlite3_column_text(sel, 0);
        if (!f || !store_pack_is(f))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            files = xrealloc(files, cap * sizeof *files);
        }
        files[n++] = xstrdup(f);
    }
    if (rc < 0)
        goto fail;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int used = store_pack_referenced(db, files[i]);
        if (used < 0)
            goto fail;
        sqlite3_reset(del);
        sqlite3_bind_text(del, 1, files[i], -1, SQLITE_STATIC);
        if (sqlite3_step(del) != SQLITE_DONE)
            goto fail;
        if (used) {   /* a row names it again: it is live, not retired */
            log_warn("store", "event=pack-retired-in-use file=%s", files[i]);
            free(files[i]);
            continue;
        }
        files[k++] = files[i];
    }
    n = k;
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    sel = del = NULL;
    if (store_ix_exec(db, "COMMIT") < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", ix->root, files[i]);
        struct stat sb;
        if (stat(path, &sb) == 0) {
            st->packs_removed++;
            st->bytes_freed += (uint64_t)sb.st_size;
        }
        free(path);
    }
    store_files_unlink(ix, files, n);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return 0;
fail:
    log_error("store", "event=index-failed op=compact-expire error=\"%s\"", sqlite3_errmsg(db));
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    if (!sqlite3_get_autocommit(db))
        store_ix_exec(db, "ROLLBACK");
    return -1;
}

/* ---- step 2: candidates ---- */

/* The sequence number of a pack file name (16 hex digits), or 0. */
static uint64_t pack_seq(const char *d_name)
{
    if (strlen(d_name) != 16)
        return 0;
    uint64_t v = 0;
    for (const char *p = d_name; *p; p++) {
        int c = (unsigned char)*p;
        int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (x < 0)
            return 0;
        v = v << 4 | (uint64_t)x;
    }
    return v;
}

/* 1 when FILE is in pack_retired, 0 not, -1 error. */
static int is_retired(sqlite3 *db, const char *file)
{
    return store_ix_exists(db, "SELECT 1 FROM pack_retired WHERE file = ?", file);
}

/* The distinct live messages of pack FILE, by offset (*n_r of them, their
 * sizes summed in *bytes_r). 0 or -1. */
static int live_set(sqlite3 *db, const char *file, struct live **out, size_t *n_r,
                    uint64_t *bytes_r)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n_r = 0;
    *bytes_r = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT offset, max(size) FROM messages WHERE file = ?"
                           " AND offset IS NOT NULL GROUP BY offset ORDER BY offset",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = store_ix_step(st)) == 0) {
        if (*n_r == cap) {
            cap = cap ? cap * 2 : 64;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        struct live *l = &(*out)[(*n_r)++];
        l->offset = sqlite3_column_int64(st, 0);
        l->size = sqlite3_column_int64(st, 1);
        l->newoff = -1;
        if (l->offset < 0 || l->size < 0) {
            rc = -1;
            break;
        }
        *bytes_r += (uint64_t)l->size;
    }
    sqlite3_finalize(st);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n_r = 0;
        return -1;
    }
    return 0;
}

/* 1 when a pack of SIZE bytes with LIVE live bytes is worth rewriting. */
static int worth(uint64_t live, uint64_t size)
{
    return live == 0 || live * 100 < size * STORE_COMPACT_LIVE_PERCENT;
}

/* The packs below ACTIVE on disk that are not retired (no lock: each is
 * checked again in its own transaction). 0 or -1. */
static int candidates(struct store_ix *ix, uint64_t active, struct cand **out, size_t *n_r)
{
    *out = NULL;
    *n_r = 0;
    DIR *d = opendir(ix->pack_dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t seq = pack_seq(de->d_name);
        if (seq == 0 || seq >= active)
            continue;
        if (*n_r == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        struct cand *c = &(*out)[(*n_r)++];
        c->seq = seq;
        store_pack_name(c->name, sizeof c->name, seq);
    }
    closedir(d);
    return 0;
}

/* ---- step 3: rewriting one pack ---- */

/* Copies SIZE bytes at OFF of FD to the end of P through BUF. 0 or -1. */
static int copy_range(int fd, int64_t off, int64_t size, struct store_pack *p, char *buf,
                      const char **error_r)
{
    while (size > 0) {
        size_t want = size > (int64_t)COMPACT_CHUNK ? COMPACT_CHUNK : (size_t)size;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            *error_r = "cannot read the pack file";
            return -1;
        }
        struct iovec iov = { buf, (size_t)got };
        if (store_pack_append(p, &iov, 1, error_r) < 0)
            return -1;
        off += got;
        size -= got;
    }
    return 0;
}

/* Points the rows of (OLD, l->offset) at (NEW, l->newoff) and retires OLD. */
static int rows_move(sqlite3 *db, const char *old, const char *new, const struct live *l,
                     size_t n)
{
    sqlite3_stmt *up = NULL, *ret = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db,
                           "UPDATE messages SET file = ?, offset = ? WHERE file = ?"
                           " AND offset = ?",
                           -1, &up, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO pack_retired(file, retired_at)"
                           " VALUES (?, ?)",
                           -1, &ret, NULL) != SQLITE_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(up);
        sqlite3_bind_text(up, 1, new, -1, SQLITE_STATIC);
        sqlite3_bind_int64(up, 2, l[i].newoff);
        sqlite3_bind_text(up, 3, old, -1, SQLITE_STATIC);
        sqlite3_bind_int64(up, 4, l[i].offset);
        if (sqlite3_step(up) != SQLITE_DONE)
            goto out;
    }
    sqlite3_bind_text(ret, 1, old, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ret, 2, (int64_t)time(NULL));
    rc = sqlite3_step(ret) == SQLITE_DONE ? 0 : -1;
out:
    sqlite3_finalize(up);
    sqlite3_finalize(ret);
    return rc;
}

/* Inside the write transaction: copies the N live messages L (BYTES in
 * all) of the old pack open as FD (SIZE bytes) to the end of the active
 * pack P, noting each one's new offset, and fdatasync's P. 0 or -1. */
static int live_copy(struct store_ix *ix, int fd, uint64_t size, struct live *l, size_t n,
                     uint64_t bytes, struct store_pack *p, const char **error_r)
{
    if (store_pack_begin(ix, bytes, p, error_r) < 0)
        return -1;
    char *buf = xmalloc(COMPACT_CHUNK);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((uint64_t)l[i].offset > size || size - (uint64_t)l[i].offset < (uint64_t)l[i].size) {
            *error_r = "a row points past the end of its pack";
            rc = -1;
            break;
        }
        l[i].newoff = (int64_t)p->end;
        rc = copy_range(fd, l[i].offset, l[i].size, p, buf, error_r);
    }
    free(buf);
    if (rc == 0)
        rc = store_pack_sync(ix, p, error_r);
    return rc;
}

/* Rewrites pack C when it is still worth it. 0 (done or nothing to do) or
 * -1 (*error_r; that pack is left as it was). */
static int pack_compact(struct store_ix *ix, const struct cand *c,
                        struct store_compact_stats *st, const char **error_r)
{
    sqlite3 *db = ix->db;
    struct store_pack p;
    memset(&p, 0, sizeof p);
    p.fd = -1;
    struct live *l = NULL;
    size_t n = 0;
    uint64_t bytes = 0;
    int fd = -1, committed = 0, rc = -1;
    if (store_ix_exec(db, "BEGIN IMMEDIATE") < 0) {
        *error_r = "cannot lock the mailbox index";
        return -1;
    }
    *error_r = "cannot update the mailbox index";
    int r = is_retired(db, c->name);
    if (r != 0) {
        rc = r > 0 ? 0 : -1;
        goto out;
    }
    char *path = xasprintf("%s/%s", ix->root, c->name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    int open_errno = errno;
    free(path);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        rc = fd < 0 && open_errno == ENOENT ? 0 : -1;   /* unlinked since the listing */
        *error_r = "cannot open the pack file";
        goto out;
    }
    if (live_set(db, c->name, &l, &n, &bytes) < 0)
        goto out;
    if (!worth(bytes, (uint64_t)sb.st_size)) {
        rc = 0;
        goto out;
    }
    if (n > 0 && live_copy(ix, fd, (uint64_t)sb.st_size, l, n, bytes, &p, error_r) < 0)
        goto out;
    if (n > 0 && __atomic_load_n(&abort_before_commit, __ATOMIC_RELAXED)) {
        *error_r = "aborted before the commit (test)";
        goto out;
    }
    if (rows_move(db, c->name, p.name, l, n) < 0)
        goto out;
    if (store_ix_exec(db, "COMMIT") < 0)
        goto out;
    committed = 1;
    rc = 0;
    st->messages_moved += n;
    st->bytes_copied += bytes;
    if (n > 0)
        st->packs_rewritten++;
    else
        st->packs_emptied++;
    st->bytes_retired += (uint64_t)sb.st_size;
    log_info("store", "event=pack-compacted file=%s size=%jd live=%" PRIu64
             " messages=%zu into=%s",
             c->name, (intmax_t)sb.st_size, bytes, n, n > 0 ? p.name : "-");
out:
    if (!committed && !sqlite3_get_autocommit(db))
        store_ix_exec(db, "ROLLBACK");
    if (fd >= 0)
        close(fd);
    store_pack_end(ix, &p, committed);
    free(l);
    return rc;
}

/* The retired packs still in their grace period. */
static void retired_count(sqlite3 *db, struct store_compact_stats *st)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM pack_retired", -1, &s, NULL) != SQLITE_OK)
        return;
    if (store_ix_step(s) == 0)
        st->packs_waiting = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
}

int store_compact_account(const char *data_dir, const char *account,
                          struct store_compact_stats *st, const char **error_r)
{
    memset(st, 0, sizeof *st);
    struct store_ix ix;
    int rc = store_ix_open(data_dir, account, 0, &ix, error_r);
    if (rc != 0)
        return rc;
    rc = -1;
    struct cand *c = NULL;
    size_t n = 0;
    if (retired_expire(&ix, st) < 0) {
        *error_r = "cannot update the mailbox index";
        goto out;
    }
    int64_t active = store_pack_active(ix.db);
    if (active < 0) {
        *error_r = "cannot read the mailbox index";
        goto out;
    }
    if (candidates(&ix, (uint64_t)active, &c, &n) < 0) {
        *error_r = "cannot list the pack directory";
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *err = NULL;
        if (pack_compact(&ix, &c[i], st, &err) < 0) {
            log_error("store", "event=compact-failed file=%s error=\"%s\"", c[i].name, err);
            *error_r = err;
            rc = -1;   /* the other packs still go */
        }
    }
    retired_count(ix.db, st);
out:
    free(c);
    store_ix_close(&ix);
    return rc;
}
