/* store_flags: flags as IMAP sees them (store_imap.h: store_flags_parse,
 * store_set_flags with UNCHANGEDSINCE, store_expunge_deleted) and the
 * helpers that turn system-flag bits and keywords into the `flags` column
 * (store_int.h: store_flags_join, store_keywords_valid).
 *
 * The `flags` column stays the one representation (the text store.c,
 * store_change.c and store_pop.c read): system flags first in canonical
 * case, then keywords. A change is one BEGIN IMMEDIATE transaction: the
 * messages it really changed get HIGHESTMODSEQ + 1, which becomes the new
 * HIGHESTMODSEQ; expunged UIDs go to `vanished` with that MODSEQ; files go
 * after the COMMIT. Then notify_mailbox_changed. */
#include "store/store_imap.h"
#include "store/store_int.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    unsigned bit;
} sysflag_names[] = {
    { "\\Seen", STORE_F_SEEN },       { "\\Answered", STORE_F_ANSWERED },
    { "\\Flagged", STORE_F_FLAGGED }, { "\\Deleted", STORE_F_DELETED },
    { "\\Draft", STORE_F_DRAFT },
};
#define NSYSFLAGS (sizeof sysflag_names / sizeof sysflag_names[0])

static int keyword_valid(const char *p, size_t n);
static int keywords_have(const char *list, const char *kw, size_t n);
static void kw_append(char **out, size_t *len, const char *kw, size_t n);
static char *keywords_apply(const char *old, const char *arg, enum store_flag_op op);
static void flags_split(const char *flags, unsigned *sys_r, char **kw_r);

/* ---------------------------------------------------------- the column */

unsigned store_flags_parse(const char *flags, char *kw, size_t kwsz)
{
    unsigned bits = 0;
    size_t used = 0;
    if (kw && kwsz)
        kw[0] = '\0';
    for (const char *p = flags; p && *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == 0)
            break;
        int sys = 0;
        if (p[0] == '\\') {
            sys = 1;   /* unknown system flags (\Recent ...) are not stored */
            for (size_t i = 0; i < NSYSFLAGS; i++)
                if (strlen(sysflag_names[i].name) == n &&
                    strncasecmp(p, sysflag_names[i].name, n) == 0)
                    bits |= sysflag_names[i].bit;
        }
        if (!sys && kw && used + (used ? 1 : 0) + n + 1 <= kwsz) {
            if (used)
                kw[used++] = ' ';
            memcpy(kw + used, p, n);
            used += n;
            kw[used] = '\0';
        }
        p += n;
    }
    return bits;
}

/* Bits and a malloc'd keyword list (NULL when none). */
static void flags_split(const char *flags, unsigned *sys_r, char **kw_r)
{
    *kw_r = NULL;
    *sys_r = 0;
    if (!flags || !*flags)
        return;
    size_t sz = strlen(flags) + 1;
    char *kw = xmalloc(sz);
    *sys_r = store_flags_parse(flags, kw, sz);
    if (*kw)
        *kw_r = kw;
    else
        free(kw);
}

/* RFC 3501 flag-keyword: atom, bounded. */
static int keyword_valid(const char *p, size_t n)
{
    if (n == 0 || n > STORE_MAX_FLAG_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch))
            return 0;
    }
    return 1;
}

int store_keywords_valid(const char *keywords)
{
    for (const char *p = keywords; p && *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n && !keyword_valid(p, n))
            return 0;
        p += n;
    }
    return 1;
}

static int keywords_have(const char *list, const char *kw, size_t n)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ')
            p++;
        size_t m = strcspn(p, " ");
        if (m == n && m && strncasecmp(p, kw, n) == 0)
            return 1;
        p += m;
    }
    return 0;
}

static void kw_append(char **out, size_t *len, const char *kw, size_t n)
{
    *out = xrealloc(*out, *len + n + 2);
    if (*len)
        (*out)[(*len)++] = ' ';
    memcpy(*out + *len, kw, n);
    *len += n;
    (*out)[*len] = '\0';
}

char *store_flags_join(unsigned sysflags, const char *keywords)
{
    char *out = xstrdup("");
    size_t len = 0;
    for (size_t i = 0; i < NSYSFLAGS; i++)
        if (sysflags & sysflag_names[i].bit)
            kw_append(&out, &len, sysflag_names[i].name, strlen(sysflag_names[i].name));
    for (const char *p = keywords; p && *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n && p[0] != '\\' && !keywords_have(out, p, n))
            kw_append(&out, &len, p, n);
        p += n;
    }
    return out;
}

/* OLD's keywords after OP with ARG (both may be NULL); malloc'd or NULL. */
static char *keywords_apply(const char *old, const char *arg, enum store_flag_op op)
{
    const char *src[2] = { op == STORE_FLAGS_REPLACE ? arg : old,
                           op == STORE_FLAGS_ADD ? arg : NULL };
    char *out = NULL;
    size_t len = 0;
    for (int s = 0; s < 2; s++) {
        for (const char *p = src[s]; p && *p;) {
            while (*p == ' ')
                p++;
            size_t n = strcspn(p, " ");
            int drop = n == 0 || (op == STORE_FLAGS_REMOVE && keywords_have(arg, p, n)) ||
                       keywords_have(out, p, n);
            if (!drop)
                kw_append(&out, &len, p, n);
            p += n;
        }
    }
    return out;
}

/* ---------------------------------------------------------- set flags */

static const char sql_get[] =
    "SELECT flags, modseq FROM messages WHERE mailbox_id = ? AND uid = ?";
static const char sql_set[] =
    "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?";

/* One UID: fills R (returns 1) or skips a missing UID (0); -1 error. */
static int set_one(sqlite3_stmt *get, sqlite3_stmt *set, const struct store_mbstate *mb,
                   uint32_t uid, enum store_flag_op op, unsigned sysflags, const char *keywords,
                   int has_ucs, uint64_t ucs, struct store_flag_result *r, const char **error_r)
{
    sqlite3_reset(get);
    sqlite3_bind_int64(get, 1, mb->id);
    sqlite3_bind_int64(get, 2, uid);
    int step = sqlite3_step(get);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? 0 : -1;
    memset(r, 0, sizeof *r);
    r->uid = uid;
    r->modseq = (uint64_t)sqlite3_column_int64(get, 1);
    char *oldkw;
    unsigned oldsys;
    flags_split((const char *)sqlite3_column_text(get, 0), &oldsys, &oldkw);
    if (has_ucs && r->modseq > ucs) {
        r->modified = 1;
        r->sysflags = oldsys;
        r->keywords = oldkw;
        return 1;
    }
    unsigned sys = op == STORE_FLAGS_REPLACE ? sysflags
                   : op == STORE_FLAGS_ADD   ? oldsys | sysflags
                                             : oldsys & ~sysflags;
    char *kw = keywords_apply(oldkw, keywords, op);
    char *oldtext = store_flags_join(oldsys, oldkw);
    char *text = store_flags_join(sys, kw);
    free(oldkw);
    r->sysflags = sys;
    r->keywords = kw;
    int rc = 1;
    if (strcmp(oldtext, text) != 0) {
        if (strlen(text) > STORE_MAX_FLAGS_LEN) {
            *error_r = "too many flags on the message";
            rc = -1;
            goto out;
        }
        sqlite3_reset(set);
        sqlite3_bind_text(set, 1, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(set, 2, mb->highestmodseq + 1);
        sqlite3_bind_int64(set, 3, mb->id);
        sqlite3_bind_int64(set, 4, uid);
        if (sqlite3_step(set) != SQLITE_DONE)
            rc = -1;
        sqlite3_reset(set);
        r->changed = 1;
        r->modseq = (uint64_t)mb->highestmodseq + 1;
    }
out:
    if (rc < 0) {
        free(r->keywords);
        r->keywords = NULL;
    }
    free(oldtext);
    free(text);
    return rc;
}

int store_set_flags(const char *data_dir, const char *account, const char *name,
                    const uint32_t *uids, uint32_t n, enum store_flag_op op, unsigned sysflags,
                    const char *keywords, int has_unchangedsince, uint64_t unchangedsince,
                    struct store_flag_result **res_r, uint32_t *nres_r, const char **error_r)
{
    *res_r = NULL;
    *nres_r = 0;
    if (!name || (n > 0 && !uids) || !store_keywords_valid(keywords)) {
        *error_r = "bad arguments";
        return -1;
    }
    struct store_ix ix;
    if (store_ix_open(data_dir, account, 1, &ix, error_r) != 0)
        return -1;
    sqlite3_stmt *get = NULL, *set = NULL;
    struct store_flag_result *res = n ? xcalloc(n, sizeof *res) : NULL;
    uint32_t nres = 0, changed = 0;
    struct store_mbstate mb;
    int rc = -1;
    if (store_ix_exec(ix.db, "BEGIN IMMEDIATE") < 0) {
        *error_r = "cannot lock the mailbox index";
        goto out;
    }
    int m = store_ix_mbstate(ix.db, name, &mb);
    if (m != 0) {
        *error_r = m > 0 ? "no such mailbox" : "cannot read the mailbox index";
        rc = m > 0 ? 1 : -1;
        goto out;
    }
    if (sqlite3_prepare_v2(ix.db, sql_get, -1, &get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ix.db, sql_set, -1, &set, NULL) != SQLITE_OK)
        goto sqlfail;
    for (uint32_t i = 0; i < n; i++) {
        const char *why = NULL;
        int r = set_one(get, set, &mb, uids[i], op, sysflags, keywords, has_unchangedsince,
                        unchangedsince, &res[nres], &why);
        if (r < 0) {
            if (why) {
                *error_r = why;
                goto out;
            }
            goto sqlfail;
        }
        if (r > 0)
            changed += (uint32_t)res[nres++].changed;
    }
    if (changed > 0) {
        mb.highestmodseq++;
        if (store_ix_mbstate_save(ix.db, &mb) < 0)
            goto sqlfail;
    }
    sqlite3_finalize(get);
    sqlite3_finalize(set);
    get = set = NULL;
    if (store_ix_exec(ix.db, changed ? "COMMIT" : "ROLLBACK") < 0) {
        *error_r = "cannot commit the mailbox index";
        goto out;
    }
    if (changed)
        notify_mailbox_changed(account);
    *res_r = res;
    *nres_r = nres;
    res = NULL;
    nres = 0;
    rc = 0;
    goto out;
sqlfail:
    log_error("store", "event=index-failed op=set-flags error=\"%s\"", sqlite3_errmsg(ix.db));
    *error_r = "cannot update the mailbox index";
out:
    sqlite3_finalize(get);
    sqlite3_finalize(set);
    if (ix.db && !sqlite3_get_autocommit(ix.db))
        store_ix_exec(ix.db, "ROLLBACK");
    store_flag_results_free(res, nres);
    store_ix_close(&ix);
    return rc;
}

void store_flag_results_free(struct store_flag_result *r, uint32_t n)
{
    for (uint32_t i = 0; r && i < n; i++)
        free(r[i].keywords);
    free(r);
}

/* ------------------------------------------------------------- expunge */

struct expunge {
    uint32_t *uids;
    char **files;
    uint32_t n, cap;
    int filtered;       /* store_pack_filter ran: FILES holds NFILES */
    size_t nfiles;
};

static void expunge_add(struct expunge *e, uint32_t uid, const char *file)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->uids = xrealloc(e->uids, xmul(e->cap, sizeof *e->uids));
        e->files = xrealloc(e->files, xmul(e->cap, sizeof *e->files));
    }
    e->uids[e->n] = uid;
    e->files[e->n++] = xstrdup(file ? file : "");
}

static void expunge_free(struct expunge *e)
{
    size_t nf = e->filtered ? e->nfiles : e->n;
    for (size_t i = 0; i < nf; i++)
        free(e->files[i]);
    free(e->files);
    free(e->uids);
}

/* Collects the \Deleted messages of MB among UIDS (all when NULL). */
static int expunge_collect(sqlite3 *db, const struct store_mbstate *mb, const uint32_t *uids,
                           uint32_t n, struct expunge *e)
{
    sqlite3_stmt *st;
    const char *sql = uids ? "SELECT uid, flags, file FROM messages WHERE mailbox_id = ?"
                             " AND uid = ?"
                           : "SELECT uid, flags, file FROM messages WHERE mailbox_id = ?"
                             " AND instr(lower(flags), '\\deleted') > 0 ORDER BY uid";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int step = SQLITE_DONE;
    for (uint32_t i = 0; i < (uids ? n : 1); i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, mb->id);
        if (uids) {
            if (i > 0 && uids[i] == uids[i - 1])
                continue;
            sqlite3_bind_int64(st, 2, uids[i]);
        }
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *flags = (const char *)sqlite3_column_text(st, 1);
            if (store_flags_parse(flags, NULL, 0) & STORE_F_DELETED)
                expunge_add(e, (uint32_t)sqlite3_column_int64(st, 0),
                            (const char *)sqlite3_column_text(st, 2));
        }
        if (step != SQLITE_DONE)
            break;
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : -1;
}

/* Deletes E's rows and records them in `vanished` with MODSEQ. */
static int expunge_rows(sqlite3 *db, int64_t mbox, int64_t modseq, const struct expunge *e)
{
    sqlite3_stmt *del = NULL, *van = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", -1,
                           &del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO vanished(mailbox_id, uid, modseq)"
                           " VALUES (?, ?, ?)",
                           -1, &van, NULL) != SQLITE_OK)
        goto out;
    for (uint32_t i = 0; i < e->n; i++) {
        sqlite3_reset(del);
        sqlite3_bind_int64(del, 1, mbox);
        sqlite3_bind_int64(del, 2, e->uids[i]);
        sqlite3_reset(van);
        sqlite3_bind_int64(van, 1, mbox);
        sqlite3_bind_int64(van, 2, e->uids[i]);
        sqlite3_bind_int64(van, 3, modseq);
        if (sqlite3_step(del) != SQLITE_DONE || sqlite3_step(van) != SQLITE_DONE)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(del);
    sqlite3_finalize(van);
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int store_expunge_deleted(const char *data_dir, const char *account, const char *name,
                          const uint32_t *uids, uint32_t n, uint32_t **expunged_r,
                          uint32_t *nexp_r, uint64_t *modseq_r, const char **error_r)
{
    *expunged_r = NULL;
    *nexp_r = 0;
    if (modseq_r)
        *modseq_r = 0;
    if (!name || (uids && n == 0)) {
        if (name)
            return 0;
        *error_r = "bad arguments";
        return -1;
    }
    struct store_ix ix;
    if (store_ix_open(data_dir, account, 1, &ix, error_r) != 0)
        return -1;
    struct expunge e = { 0 };
    struct store_mbstate mb;
    uint32_t *sorted = NULL;
    int rc = -1;
    if (store_ix_exec(ix.db, "BEGIN IMMEDIATE") < 0) {
        *error_r = "cannot lock the mailbox index";
        goto out;
    }
    int m = store_ix_mbstate(ix.db, name, &mb);
    if (m != 0) {
        *error_r = m > 0 ? "no such mailbox" : "cannot read the mailbox index";
        rc = m > 0 ? 1 : -1;
        goto out;
    }
    if (uids) {
        sorted = xmalloc(xmul(n, sizeof *sorted));
        memcpy(sorted, uids, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_u32);
    }
    if (expunge_collect(ix.db, &mb, sorted, n, &e) < 0)
        goto sqlfail;
    if (modseq_r)
        *modseq_r = (uint64_t)mb.highestmodseq;
    if (e.n == 0) {
        store_ix_exec(ix.db, "ROLLBACK");
        rc = 0;
        goto out;
    }
    mb.highestmodseq++;
    if (expunge_rows(ix.db, mb.id, mb.highestmodseq, &e) < 0 ||
        store_ix_mbstate_save(ix.db, &mb) < 0)
        goto sqlfail;
    e.nfiles = e.n;   /* the packs still in use, and the active one, stay */
    e.filtered = 1;
    if (store_pack_filter(ix.db, e.files, &e.nfiles) < 0)
        goto sqlfail;
    if (store_ix_exec(ix.db, "COMMIT") < 0) {
        *error_r = "cannot commit the mailbox index";
        goto out;
    }
    store_files_unlink(&ix, e.files, e.nfiles);
    notify_mailbox_changed(account);
    if (modseq_r)
        *modseq_r = (uint64_t)mb.highestmodseq;
    *expunged_r = e.uids;
    *nexp_r = e.n;
    e.uids = NULL;
    rc = 0;
    goto out;
sqlfail:
    log_error("store", "event=index-failed op=expunge error=\"%s\"", sqlite3_errmsg(ix.db));
    *error_r = "cannot update the mailbox index";
out:
    if (ix.db && !sqlite3_get_autocommit(ix.db))
        store_ix_exec(ix.db, "ROLLBACK");
    free(sorted);
    expunge_free(&e);
    store_ix_close(&ix);
    return rc;
}
