/* store_view: what an IMAP session reads of a selected mailbox
 * (store_imap.h: store_view_open, store_changes_since, store_fetch_rows,
 * store_scan_rows, store_cache_structure).
 *
 * The view is one prepared SELECT of (uid, flags, modseq) in UID order (the
 * primary key order) inside a read transaction, so the mailbox state and
 * the messages agree; a big mailbox that has not changed since its view was
 * last read is shared from store_viewcache instead. store_changes_since
 * first compares HIGHESTMODSEQ: when nothing changed it runs no message
 * query at all; otherwise it reads messages(mailbox_id, modseq) and
 * vanished(mailbox_id, modseq) through their indexes. FETCH and SEARCH rows
 * come from one walk (store_scan_rows) that lends each row to a callback;
 * store_fetch_rows is that walk with a callback that keeps copies. */
#include "store/store_imap.h"
#include "store/store_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char sql_rows[] = "SELECT uid, flags, modseq FROM messages WHERE mailbox_id = ?"
                               " ORDER BY uid";
static const char sql_changed[] = "SELECT uid, flags, modseq FROM messages"
                                  " WHERE mailbox_id = ? AND modseq > ? ORDER BY uid";
static const char sql_vanished[] = "SELECT uid FROM vanished WHERE mailbox_id = ?"
                                   " AND modseq > ? ORDER BY uid";

/* Fills M from a (uid, flags, modseq) row; keywords malloc'd or NULL. */
static void vmsg_from_row(sqlite3_stmt *st, struct store_vmsg *m)
{
    m->uid = (uint32_t)sqlite3_column_int64(st, 0);
    m->modseq = (uint64_t)sqlite3_column_int64(st, 2);
    m->keywords = NULL;
    m->sysflags = 0;
    const char *flags = (const char *)sqlite3_column_text(st, 1);
    if (!flags || !*flags)
        return;
    size_t sz = strlen(flags) + 1;
    char *kw = xmalloc(sz);
    m->sysflags = store_flags_parse(flags, kw, sz);
    if (*kw)
        m->keywords = kw;
    else
        free(kw);
}

/* Adds M's keywords to V's list of keywords (case-insensitively unique). */
static void view_add_keywords(struct store_view *v, const char *kw)
{
    for (const char *p = kw; p && *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        int seen = n == 0;
        for (int i = 0; !seen && i < v->nkeywords; i++)
            seen = strlen(v->keywords[i]) == n && strncasecmp(v->keywords[i], p, n) == 0;
        if (!seen) {
            v->keywords = xrealloc(v->keywords, xmul((size_t)v->nkeywords + 1,
                                                     sizeof *v->keywords));
            v->keywords[v->nkeywords++] = xstrndup(p, n);
        }
        p += n;
    }
}

/* Reads rows of ST into a growing array. -1 on error. */
static int vmsgs_read(sqlite3_stmt *st, struct store_vmsg **msgs_r, uint32_t *n_r,
                      struct store_view *v)
{
    struct store_vmsg *msgs = NULL;
    uint32_t n = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            msgs = xrealloc(msgs, xmul(cap, sizeof *msgs));
        }
        vmsg_from_row(st, &msgs[n]);
        if (v && msgs[n].keywords)
            view_add_keywords(v, msgs[n].keywords);
        n++;
    }
    *msgs_r = msgs;
    *n_r = n;
    return step == SQLITE_DONE ? 0 : -1;
}

static void vmsgs_free(struct store_vmsg *msgs, uint32_t n)
{
    for (uint32_t i = 0; msgs && i < n; i++)
        if (msgs[i].keywords)
            free(msgs[i].keywords);
    free(msgs);
}

/* Opens the index and starts a read transaction on NAME. 0, 1 none, -1. */
static int view_begin(const char *data_dir, const char *account, const char *name,
                      struct store_ix *ix, struct store_mbstate *mb, const char **error_r)
{
    if (!name) {
        *error_r = "bad arguments";
        return -1;
    }
    if (store_ix_open(data_dir, account, 1, ix, error_r) != 0)
        return -1;
    if (store_ix_exec(ix->db, "BEGIN") < 0) {
        *error_r = "cannot read the mailbox index";
        store_ix_close(ix);
        return -1;
    }
    int m = store_ix_mbstate(ix->db, name, mb);
    if (m != 0) {
        *error_r = m > 0 ? "no such mailbox" : "cannot read the mailbox index";
        store_ix_exec(ix->db, "ROLLBACK");
        store_ix_close(ix);
    }
    return m;
}

static void view_end(struct store_ix *ix)
{
    if (ix->db && !sqlite3_get_autocommit(ix->db))
        store_ix_exec(ix->db, "ROLLBACK");
    store_ix_close(ix);
}

int store_view_open(const char *data_dir, const char *account, const char *name,
                    struct store_view *v, const char **error_r)
{
    memset(v, 0, sizeof *v);
    struct store_ix ix;
    struct store_mbstate mb;
    int rc = view_begin(data_dir, account, name, &ix, &mb, error_r);
    if (rc != 0)
        return rc;
    v->uidvalidity = (uint32_t)mb.uidvalidity;
    v->uidnext = (uint32_t)mb.uidnext;
    v->highestmodseq = (uint64_t)mb.highestmodseq;
    snprintf(v->special_use, sizeof v->special_use, "%s", mb.special_use);
    if (store_viewcache_get(&ix, &mb, v)) {
        view_end(&ix);
        return 0;
    }
    sqlite3_stmt *st = NULL;
    rc = -1;
    if (sqlite3_prepare_v2(ix.db, sql_rows, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mb.id);
    if (vmsgs_read(st, &v->msgs, &v->count, v) < 0)
        goto out;
    store_viewcache_put(&ix, &mb, v);
    rc = 0;
out:
    if (rc != 0) {
        log_error("store", "event=index-failed op=view error=\"%s\"", sqlite3_errmsg(ix.db));
        *error_r = "cannot read the mailbox index";
        store_view_free(v);
    }
    sqlite3_finalize(st);
    view_end(&ix);
    return rc;
}

void store_view_free(struct store_view *v)
{
    if (v->shared)
        store_vblock_unref(v->shared);
    else
        vmsgs_free(v->msgs, v->count);
    for (int i = 0; i < v->nkeywords; i++)
        free(v->keywords[i]);
    free(v->keywords);
    memset(v, 0, sizeof *v);
}

static int vanished_read(sqlite3 *db, int64_t mbox, uint64_t modseq, uint32_t **uids_r,
                         uint32_t *n_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql_vanished, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, mbox);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
    uint32_t *uids = NULL, n = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uids = xrealloc(uids, xmul(cap, sizeof *uids));
        }
        uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    *uids_r = uids;
    *n_r = n;
    return step == SQLITE_DONE ? 0 : -1;
}

int store_changes_since(const char *data_dir, const char *account, const char *name,
                        uint64_t modseq, struct store_changes *c, const char **error_r)
{
    memset(c, 0, sizeof *c);
    struct store_ix ix;
    struct store_mbstate mb;
    int rc = view_begin(data_dir, account, name, &ix, &mb, error_r);
    if (rc != 0)
        return rc;
    c->highestmodseq = (uint64_t)mb.highestmodseq;
    c->uidnext = (uint32_t)mb.uidnext;
    c->uidvalidity = (uint32_t)mb.uidvalidity;
    if (c->highestmodseq <= modseq) {
        view_end(&ix);
        return 0;   /* nothing changed: no message query */
    }
    sqlite3_stmt *st = NULL;
    rc = -1;
    if (sqlite3_prepare_v2(ix.db, sql_changed, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mb.id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
    if (vmsgs_read(st, &c->changed, &c->nchanged, NULL) < 0 ||
        vanished_read(ix.db, mb.id, modseq, &c->vanished, &c->nvanished) < 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        log_error("store", "event=index-failed op=changes error=\"%s\"",
                  sqlite3_errmsg(ix.db));
        *error_r = "cannot read the mailbox index";
        store_changes_free(c);
    }
    sqlite3_finalize(st);
    view_end(&ix);
    return rc;
}

void store_changes_free(struct store_changes *c)
{
    vmsgs_free(c->changed, c->nchanged);
    free(c->vanished);
    memset(c, 0, sizeof *c);
}

/* The row columns FETCH and SEARCH read (the cached ones that COLS asks
 * for, NULL for the others), by UID (RANGE 0) or over a UID range. */
static void fmsg_sql(char *sql, size_t size, unsigned cols, int range)
{
    snprintf(sql, size,
             "SELECT uid, size, internaldate, modseq, flags, %s, %s, file, %s, offset"
             " FROM messages WHERE mailbox_id = ?1 %s",
             cols & STORE_COL_ENVELOPE ? "envelope" : "NULL",
             cols & STORE_COL_BODYSTRUCTURE ? "bodystructure" : "NULL",
             cols & STORE_COL_HEADER ? "header" : "NULL",
             range ? "AND uid BETWEEN ?2 AND ?3 ORDER BY uid" : "AND uid = ?2");
}

/* Where the rows go: FN gets each row found, lent (row_lend), with the
 * index of its UID in the caller's array; nonzero stops the walk. */
struct fmsg_walk {
    sqlite3 *db;
    const char *root;
    int64_t mbox;
    unsigned cols;
    store_row_fn *fn;
    void *arg;
};

/* Hands the current row of ST to W's callback: its strings point into
 * SQLite's row and the buffers here, valid until the callback returns.
 * Returns the callback's answer. */
static int row_lend(struct fmsg_walk *w, sqlite3_stmt *st, uint32_t index)
{
    struct store_fmsg m = {
        .uid = (uint32_t)sqlite3_column_int64(st, 0),
        .size = (size_t)sqlite3_column_int64(st, 1),
        .internaldate = (time_t)sqlite3_column_int64(st, 2),
        .modseq = (uint64_t)sqlite3_column_int64(st, 3),
    };
    char kw[STORE_MAX_FLAGS_LEN + 1];
    const char *flags = (const char *)sqlite3_column_text(st, 4);
    m.sysflags = store_flags_parse(flags, kw, sizeof kw);
    m.keywords = *kw ? kw : NULL;
    m.envelope = (char *)sqlite3_column_text(st, 5);
    m.bodystructure = (char *)sqlite3_column_text(st, 6);
    const char *file = (const char *)sqlite3_column_text(st, 7);
    size_t rl = strlen(w->root), fl = file ? strlen(file) : 0;
    char stack[1024];
    char *path = rl + fl + 2 <= sizeof stack ? stack : xmalloc(rl + fl + 2);
    memcpy(path, w->root, rl);
    path[rl] = '/';
    memcpy(path + rl + 1, file ? file : "", fl + 1);
    m.path = path;
    m.offset = sqlite3_column_type(st, 9) == SQLITE_NULL ? STORE_WHOLE_FILE
                                                         : sqlite3_column_int64(st, 9);
    /* the blob where SQLite has it: sqlite3_column_text would copy every
     * header to put a NUL after it (a copy per row of a SEARCH) */
    m.header = (char *)sqlite3_column_blob(st, 8);
    m.header_len = m.header ? (size_t)sqlite3_column_bytes(st, 8) : 0;
    int stop = w->fn(w->arg, &m, index);
    if (path != stack)
        free(path);
    return stop;
}

/* The statement for W's columns, by UID (RANGE 0) or over a range. */
static sqlite3_stmt *fmsg_prepare(const struct fmsg_walk *w, int range)
{
    char sql[256];
    sqlite3_stmt *st;
    fmsg_sql(sql, sizeof sql, w->cols, range);
    return sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) == SQLITE_OK ? st : NULL;
}

/* UIDS one by one (a sparse set). 0, 1 stopped, -1 error. */
static int fmsgs_by_uid(struct fmsg_walk *w, const uint32_t *uids, uint32_t n)
{
    sqlite3_stmt *st = fmsg_prepare(w, 0);
    if (!st)
        return -1;
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, w->mbox);
        sqlite3_bind_int64(st, 2, uids[i]);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            rc = row_lend(w, st, i) ? 1 : 0;
        else if (step != SQLITE_DONE)
            rc = -1;
    }
    sqlite3_finalize(st);
    return rc;
}

/* One scan of the UID range of UIDS (a dense set), keeping the rows whose
 * UID is in UIDS. 0, 1 stopped, -1 error. */
static int fmsgs_by_range(struct fmsg_walk *w, const uint32_t *uids, uint32_t n)
{
    sqlite3_stmt *st = fmsg_prepare(w, 1);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, w->mbox);
    sqlite3_bind_int64(st, 2, uids[0]);
    sqlite3_bind_int64(st, 3, uids[n - 1]);
    uint32_t i = 0;
    int step = SQLITE_DONE, rc = 0;
    while (rc == 0 && i < n && (step = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t uid = (uint32_t)sqlite3_column_int64(st, 0);
        while (i < n && uids[i] < uid)
            i++;
        if (i < n && uids[i] == uid) {
            rc = row_lend(w, st, i) ? 1 : 0;
            i++;
        }
    }
    if (rc == 0 && i < n && step != SQLITE_DONE)
        rc = -1;
    sqlite3_finalize(st);
    return rc;
}

int store_scan_rows(const char *data_dir, const char *account, const char *name,
                    const uint32_t *uids, uint32_t n, unsigned cols, store_row_fn *fn,
                    void *arg, const char **error_r)
{
    if (n > 0 && !uids) {
        *error_r = "bad arguments";
        return -1;
    }
    struct store_ix ix;
    struct store_mbstate mb;
    int rc = view_begin(data_dir, account, name, &ix, &mb, error_r);
    if (rc != 0)
        return rc;
    struct fmsg_walk w = { .db = ix.db, .root = ix.root, .mbox = mb.id, .cols = cols,
                           .fn = fn, .arg = arg };
    if (n > 0) {
        /* a range scan reads every row between the ends: worth it when the
         * set fills a good part of that range */
        uint64_t span = (uint64_t)uids[n - 1] - uids[0] + 1;
        rc = span <= (uint64_t)n * 4 ? fmsgs_by_range(&w, uids, n) : fmsgs_by_uid(&w, uids, n);
    }
    if (rc < 0) {
        log_error("store", "event=index-failed op=fetch error=\"%s\"", sqlite3_errmsg(ix.db));
        *error_r = "cannot read the mailbox index";
    }
    view_end(&ix);
    return rc < 0 ? -1 : 0;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* store_fetch_rows' sink: an owned copy of each lent row. */
struct fmsg_array {
    struct store_fmsg *msgs;
    uint32_t got;
};

static int row_copy(void *arg, const struct store_fmsg *row, uint32_t index)
{
    struct fmsg_array *a = arg;
    struct store_fmsg *m = &a->msgs[a->got++];
    *m = *row;
    m->keywords = dup_or_null(row->keywords);
    m->envelope = dup_or_null(row->envelope);
    m->bodystructure = dup_or_null(row->bodystructure);
    m->path = xstrdup(row->path);
    if (row->header) {
        m->header = xmalloc(row->header_len + 1);
        memcpy(m->header, row->header, row->header_len);
        m->header[row->header_len] = '\0';
    }
    return 0;
}

int store_fetch_rows(const char *data_dir, const char *account, const char *name,
                     const uint32_t *uids, uint32_t n, struct store_fmsg **msgs_r,
                     uint32_t *n_r, const char **error_r)
{
    return store_fetch_rows_cols(data_dir, account, name, uids, n, STORE_COL_ALL, msgs_r, n_r,
                                 error_r);
}

int store_fetch_rows_cols(const char *data_dir, const char *account, const char *name,
                          const uint32_t *uids, uint32_t n, unsigned cols,
                          struct store_fmsg **msgs_r, uint32_t *n_r, const char **error_r)
{
    *msgs_r = NULL;
    *n_r = 0;
    struct fmsg_array a = { .msgs = n ? xcalloc(n, sizeof *a.msgs) : NULL };
    int rc = store_scan_rows(data_dir, account, name, uids, n, cols, row_copy, &a, error_r);
    if (rc != 0) {
        store_fmsgs_free(a.msgs, n);
        return rc;
    }
    *msgs_r = a.msgs;
    *n_r = a.got;
    return 0;
}

void store_fmsgs_free(struct store_fmsg *msgs, uint32_t n)
{
    for (uint32_t i = 0; msgs && i < n; i++) {
        free(msgs[i].keywords);
        free(msgs[i].envelope);
        free(msgs[i].bodystructure);
        free(msgs[i].header);
        free(msgs[i].path);
    }
    free(msgs);
}

int store_cache_structure(const char *data_dir, const char *account, const char *name,
                          uint32_t uid, const char *envelope, const char *bodystructure)
{
    struct store_ix ix;
    struct store_mbstate mb;
    const char *error;
    if (!name || !envelope || !bodystructure)
        return -1;
    if (store_ix_open(data_dir, account, 0, &ix, &error) != 0)
        return -1;
    int rc = store_ix_mbstate(ix.db, name, &mb);
    sqlite3_stmt *st = NULL;
    if (rc == 0) {
        rc = -1;
        if (sqlite3_prepare_v2(ix.db,
                               "UPDATE messages SET envelope = ?, bodystructure = ?"
                               " WHERE mailbox_id = ? AND uid = ? AND envelope IS NULL",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, envelope, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, bodystructure, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, mb.id);
            sqlite3_bind_int64(st, 4, uid);
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        }
    }
    sqlite3_finalize(st);
    store_ix_close(&ix);
    return rc;
}
