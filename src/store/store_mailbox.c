/* store_mailbox: IMAP mailbox management (store_imap.h: store_mailboxes,
 * store_mailbox_create / _delete / _rename / _subscribe,
 * store_mailbox_status_full).
 *
 * Names are UTF-8 with "/" as the hierarchy delimiter; "INBOX" is
 * case-insensitive. Children of NAME are the rows whose name lies in
 * [NAME "/", NAME "0") ("0" follows "/" in byte order), which the UNIQUE
 * index on mailboxes.name answers. A deleted mailbox with children stays as
 * \Noselect (RFC 3501 6.3.4); creating it again makes it selectable with a
 * fresh UIDVALIDITY. Renamed mailboxes get fresh UIDVALIDITYs, so sessions
 * and clients never mix their UIDs with the old ones. Subscriptions are
 * names (table `subscriptions`) and outlive their mailboxes. Each change
 * is one BEGIN IMMEDIATE transaction, then notify_mailbox_changed. */
#include "store/store_imap.h"
#include "store/store_int.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A mailbox name fits struct store_mailbox.name with room to spare. */
#define STORE_MAX_MAILBOX_NAME 1000

static const char *const special_uses[] = { "\\Archive", "\\Drafts", "\\Junk", "\\Sent",
                                            "\\Trash" };

/* NAME without one trailing "/" (RFC 3501 6.3.3), canonical INBOX; NULL
 * when the name is not one we store. malloc'd. */
static char *name_clean(const char *name)
{
    if (!name)
        return NULL;
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '/')
        n--;
    if (n == 0 || n > STORE_MAX_MAILBOX_NAME || name[0] == '/')
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f || ch == '*' || ch == '%' ||
            (ch == '/' && (i + 1 == n || name[i + 1] == '/')))
            return NULL;
    }
    char *out = xstrndup(name, n);
    if (strcasecmp(out, "INBOX") == 0)
        memcpy(out, "INBOX", 5);
    return out;
}

static int is_inbox(const char *name)
{
    return strcmp(name, "INBOX") == 0;
}

/* 0 found (*id_r, *noselect_r), 1 none, -1 error. Any mailbox. */
static int mailbox_find(sqlite3 *db, const char *name, int64_t *id_r, int *noselect_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id, noselect FROM mailboxes WHERE name = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = store_ix_step(st);
    if (rc == 0) {
        *id_r = sqlite3_column_int64(st, 0);
        if (noselect_r)
            *noselect_r = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return rc;
}

/* 1 when NAME has children, 0 not, -1 error. */
static int mailbox_has_children(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM mailboxes WHERE name > ?1 || '/'"
                           " AND name < ?1 || '0' LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = store_ix_step(st);
    sqlite3_finalize(st);
    return rc == 0 ? 1 : rc == 1 ? 0 : -1;
}

static int exec_bind(sqlite3 *db, const char *sql, const char *t1, int64_t i2)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 1) {
        if (t1)
            sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 1, i2);
    }
    if (np >= 2)
        sqlite3_bind_int64(st, 2, i2);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* Opens the index and starts the write transaction. */
static int tx_begin(const char *data_dir, const char *account, struct store_ix *ix,
                    const char **error_r)
{
    if (store_ix_open(data_dir, account, 1, ix, error_r) != 0)
        return -1;
    if (store_ix_exec(ix->db, "BEGIN IMMEDIATE") < 0) {
        *error_r = "cannot lock the mailbox index";
        store_ix_close(ix);
        return -1;
    }
    *error_r = "cannot update the mailbox index";   /* unless a reason is found */
    return 0;
}

/* COMMITs (or, on RC != 0, rolls back) and closes; notifies on a commit. */
static int tx_end(struct store_ix *ix, const char *account, int rc, const char **error_r)
{
    if (rc == 0 && store_ix_exec(ix->db, "COMMIT") < 0) {
        *error_r = "cannot commit the mailbox index";
        rc = -1;
    }
    if (rc < 0 && ix->db)
        log_error("store", "event=index-failed op=mailbox error=\"%s\"",
                  sqlite3_errmsg(ix->db));
    if (ix->db && !sqlite3_get_autocommit(ix->db))
        store_ix_exec(ix->db, "ROLLBACK");
    if (rc == 0)
        notify_mailbox_changed(account);
    return rc;
}

/* Creates the missing parents of NAME (selectable, RFC 3501 6.3.3). */
static int parents_create(sqlite3 *db, const char *name)
{
    char *buf = xstrdup(name);
    int rc = 0;
    for (char *p = strchr(buf, '/'); p && rc == 0; p = strchr(p + 1, '/')) {
        *p = '\0';
        int64_t id;
        int f = mailbox_find(db, store_mailbox_canonical(buf), &id, NULL);
        if (f < 0)
            rc = -1;
        else if (f == 1)
            rc = store_ix_mailbox_create(db, store_mailbox_canonical(buf), NULL, &id);
        *p = '/';
    }
    free(buf);
    return rc;
}

/* ---------------------------------------------------------- create */

int store_mailbox_create(const char *data_dir, const char *account, const char *name,
                         const char *special_use, const char **error_r)
{
    char *clean = name_clean(name);
    if (!clean) {
        *error_r = "bad mailbox name";
        return -1;
    }
    if (special_use) {
        int ok = 0;
        for (size_t i = 0; i < sizeof special_uses / sizeof special_uses[0]; i++)
            if (strcasecmp(special_use, special_uses[i]) == 0) {
                special_use = special_uses[i];
                ok = 1;
            }
        if (!ok) {
            free(clean);
            *error_r = "unsupported special-use attribute";
            return -1;
        }
    }
    struct store_ix ix;
    if (tx_begin(data_dir, account, &ix, error_r) < 0) {
        free(clean);
        return -1;
    }
    int64_t id;
    int noselect = 0;
    int rc = mailbox_find(ix.db, clean, &id, &noselect);
    if (rc == 0 && !noselect) {
        *error_r = "mailbox already exists";
        rc = 1;
    } else if (rc == 0) {
        /* a \Noselect name becomes a mailbox again, with a new UIDVALIDITY */
        int64_t uv = store_ix_next_uidvalidity(ix.db);
        sqlite3_stmt *st = NULL;
        rc = -1;
        if (uv && sqlite3_prepare_v2(ix.db,
                                     "UPDATE mailboxes SET noselect = 0, uidvalidity = ?,"
                                     " special_use = ? WHERE id = ?",
                                     -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, uv);
            sqlite3_bind_text(st, 2, special_use, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, id);
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        }
        sqlite3_finalize(st);
    } else if (rc == 1) {
        rc = parents_create(ix.db, clean) < 0 ||
                     store_ix_mailbox_create(ix.db, clean, special_use, &id) < 0
                 ? -1
                 : 0;
    }
    if (rc < 0)
        *error_r = "cannot update the mailbox index";
    rc = tx_end(&ix, account, rc, error_r);
    store_ix_close(&ix);
    free(clean);
    return rc;
}

/* ---------------------------------------------------------- delete */

/* Deletes the messages of mailbox ID (files collected into *FILES_R). */
static int messages_delete(sqlite3 *db, int64_t id, char ***files_r, size_t *n_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM messages WHERE mailbox_id = ? RETURNING file", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    char **files = NULL;
    size_t n = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            files = xrealloc(files, xmul(cap, sizeof *files));
        }
        const char *f = (const char *)sqlite3_column_text(st, 0);
        files[n++] = xstrdup(f ? f : "");
    }
    sqlite3_finalize(st);
    *files_r = files;
    *n_r = n;
    return step == SQLITE_DONE ? 0 : -1;
}

static void files_free(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

int store_mailbox_delete(const char *data_dir, const char *account, const char *name,
                         const char **error_r)
{
    char *clean = name_clean(name);
    if (!clean) {
        *error_r = "no such mailbox";
        return 1;
    }
    if (is_inbox(clean)) {
        free(clean);
        *error_r = "INBOX cannot be deleted";
        return 2;
    }
    struct store_ix ix;
    if (tx_begin(data_dir, account, &ix, error_r) < 0) {
        free(clean);
        return -1;
    }
    char **files = NULL;
    size_t nfiles = 0;
    int64_t id;
    int noselect = 0, children = 0;
    int rc = mailbox_find(ix.db, clean, &id, &noselect);
    if (rc == 1)
        *error_r = "no such mailbox";
    if (rc == 0 && (children = mailbox_has_children(ix.db, clean)) < 0)
        rc = -1;
    if (rc == 0 && children && noselect) {
        *error_r = "mailbox has children and is already \\Noselect";
        rc = 2;
    }
    if (rc == 0) {
        rc = messages_delete(ix.db, id, &files, &nfiles) < 0 ||
                     store_pack_filter(ix.db, files, &nfiles) < 0 ||
                     exec_bind(ix.db, "DELETE FROM vanished WHERE mailbox_id = ?", NULL, id) < 0 ||
                     exec_bind(ix.db,
                               children ? "UPDATE mailboxes SET noselect = 1,"
                                          " highestmodseq = highestmodseq + 1 WHERE id = ?"
                                        : "DELETE FROM mailboxes WHERE id = ?",
                               NULL, id) < 0
                 ? -1
                 : 0;
        if (rc < 0)
            *error_r = "cannot update the mailbox index";
    }
    rc = tx_end(&ix, account, rc, error_r);
    if (rc == 0)
        store_files_unlink(&ix, files, nfiles);
    files_free(files, nfiles);
    store_ix_close(&ix);
    free(clean);
    return rc;
}

/* ---------------------------------------------------------- rename */

/* INBOX: its messages move to the new mailbox TO (same UIDs there, under
 * TO's own UIDVALIDITY); INBOX stays, empty, the UIDs vanished from it. */
static int rename_inbox(sqlite3 *db, const char *to)
{
    struct store_mbstate in, dst;
    if (store_ix_mbstate(db, "INBOX", &in) != 0 || parents_create(db, to) < 0 ||
        store_ix_mailbox_create(db, to, NULL, &dst.id) < 0)
        return -1;
    int64_t modseq = in.highestmodseq + 1;
    sqlite3_stmt *st;
    static const char *const sql[] = {
        "INSERT OR REPLACE INTO vanished(mailbox_id, uid, modseq)"
        " SELECT mailbox_id, uid, ?3 FROM messages WHERE mailbox_id = ?1",
        "UPDATE messages SET mailbox_id = ?2, modseq = ?3 WHERE mailbox_id = ?1",
        "UPDATE deliveries SET mailbox_id = ?2 WHERE mailbox_id = ?1",
        "UPDATE mailboxes SET uidnext = ?4, highestmodseq = ?3 WHERE id = ?2",
        "UPDATE mailboxes SET highestmodseq = ?3 WHERE id = ?1",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return -1;
        int np = sqlite3_bind_parameter_count(st);
        int64_t v[4] = { in.id, dst.id, modseq, in.uidnext };
        for (int p = 1; p <= np; p++)
            sqlite3_bind_int64(st, p, v[p - 1]);
        int ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
        if (!ok)
            return -1;
    }
    return 0;
}

/* FROM and its children become TO...; 2 when a new name exists. */
static int rename_tree(sqlite3 *db, const char *from, const char *to)
{
    sqlite3_stmt *sel, *upd = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, name FROM mailboxes WHERE name = ?1"
                           " OR (name > ?1 || '/' AND name < ?1 || '0')",
                           -1, &sel, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(sel, 1, from, -1, SQLITE_STATIC);
    size_t fl = strlen(from);
    int64_t *ids = NULL;
    char **names = NULL;
    size_t n = 0;
    int step, rc = -1;
    while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
        ids = xrealloc(ids, xmul(n + 1, sizeof *ids));
        names = xrealloc(names, xmul(n + 1, sizeof *names));
        ids[n] = sqlite3_column_int64(sel, 0);
        names[n] = xasprintf("%s%s", to, (const char *)sqlite3_column_text(sel, 1) + fl);
        n++;
    }
    sqlite3_finalize(sel);
    if (step != SQLITE_DONE)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int64_t id;
        int f = mailbox_find(db, names[i], &id, NULL);
        if (f != 1) {
            rc = f == 0 ? 2 : -1;
            goto out;
        }
        if (strlen(names[i]) > STORE_MAX_MAILBOX_NAME)
            goto out;
    }
    if (parents_create(db, to) < 0 ||
        sqlite3_prepare_v2(db, "UPDATE mailboxes SET name = ?, uidvalidity = ? WHERE id = ?",
                           -1, &upd, NULL) != SQLITE_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int64_t uv = store_ix_next_uidvalidity(db);
        sqlite3_reset(upd);
        sqlite3_bind_text(upd, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(upd, 2, uv);
        sqlite3_bind_int64(upd, 3, ids[i]);
        if (!uv || sqlite3_step(upd) != SQLITE_DONE)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(upd);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(ids);
    return rc;
}

int store_mailbox_rename(const char *data_dir, const char *account, const char *from,
                         const char *to, const char **error_r)
{
    char *cf = name_clean(from), *ct = name_clean(to);
    int rc = -1;
    struct store_ix ix = { 0 };
    if (!cf || !ct) {
        *error_r = cf ? "bad mailbox name" : "no such mailbox";
        rc = cf ? -1 : 1;
        goto out;
    }
    size_t fl = strlen(cf);
    if (!is_inbox(cf) && strncmp(ct, cf, fl) == 0 && ct[fl] == '/') {
        *error_r = "cannot rename a mailbox into itself";
        goto out;
    }
    if (tx_begin(data_dir, account, &ix, error_r) < 0)
        goto out;
    int64_t id;
    rc = mailbox_find(ix.db, cf, &id, NULL);
    if (rc == 1)
        *error_r = "no such mailbox";
    if (rc == 0) {
        int t = mailbox_find(ix.db, ct, &id, NULL);
        rc = t == 0 ? 2 : t < 0 ? -1 : 0;
        if (rc == 2)
            *error_r = "target mailbox already exists";
    }
    if (rc == 0) {
        rc = is_inbox(cf) ? rename_inbox(ix.db, ct) : rename_tree(ix.db, cf, ct);
        if (rc == 2)
            *error_r = "a target mailbox already exists";
        else if (rc < 0)
            *error_r = "cannot update the mailbox index";
    }
    rc = tx_end(&ix, account, rc, error_r);
out:
    store_ix_close(&ix);
    free(cf);
    free(ct);
    return rc;
}

/* ---------------------------------------------------------- subscribe */

int store_mailbox_subscribe(const char *data_dir, const char *account, const char *name,
                            int subscribe, const char **error_r)
{
    char *clean = name_clean(name);
    if (!clean) {
        *error_r = "bad mailbox name";
        return -1;
    }
    struct store_ix ix;
    if (tx_begin(data_dir, account, &ix, error_r) < 0) {
        free(clean);
        return -1;
    }
    int rc = exec_bind(ix.db,
                       subscribe ? "INSERT OR IGNORE INTO subscriptions(name) VALUES (?)"
                                 : "DELETE FROM subscriptions WHERE name = ?",
                       clean, 0);
    if (rc < 0)
        *error_r = "cannot update the mailbox index";
    rc = tx_end(&ix, account, rc, error_r);
    store_ix_close(&ix);
    free(clean);
    return rc;
}

/* ---------------------------------------------------------- list */

static int mailbox_cmp(const void *a, const void *b)
{
    const char *x = ((const struct store_mailbox *)a)->name;
    const char *y = ((const struct store_mailbox *)b)->name;
    int xi = is_inbox(x), yi = is_inbox(y);
    if (xi != yi)
        return yi - xi;
    return strcmp(x, y);
}

static struct store_mailbox *list_find(struct store_mailbox *l, int n, const char *name)
{
    struct store_mailbox key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return bsearch(&key, l, (size_t)n, sizeof *l, mailbox_cmp);
}

/* Mailboxes, then the subscribed names; the caller sorts. */
static int list_read(sqlite3 *db, struct store_mailbox **list_r, int *n_r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, special_use, noselect,"
                           " name IN (SELECT name FROM subscriptions) FROM mailboxes"
                           " UNION ALL SELECT name, NULL, 0, 2 FROM subscriptions"
                           " WHERE name NOT IN (SELECT name FROM mailboxes)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    struct store_mailbox *l = NULL;
    int n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        l = xrealloc(l, xmul((size_t)n + 1, sizeof *l));
        struct store_mailbox *m = &l[n++];
        memset(m, 0, sizeof *m);
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *su = (const char *)sqlite3_column_text(st, 1);
        snprintf(m->name, sizeof m->name, "%s", name ? name : "");
        snprintf(m->special_use, sizeof m->special_use, "%s", su ? su : "");
        int sub = sqlite3_column_int(st, 3);
        if (sqlite3_column_int(st, 2))
            m->attrs |= STORE_MB_NOSELECT;
        if (sub)
            m->attrs |= STORE_MB_SUBSCRIBED;
        if (sub == 2)
            m->attrs |= STORE_MB_NONEXISTENT | STORE_MB_NOSELECT;
    }
    sqlite3_finalize(st);
    *list_r = l;
    *n_r = n;
    return step == SQLITE_DONE ? 0 : -1;
}

int store_mailboxes(const char *data_dir, const char *account, struct store_mailbox **list_r,
                    int *n_r, const char **error_r)
{
    *list_r = NULL;
    *n_r = 0;
    struct store_ix ix;
    if (store_ix_open(data_dir, account, 1, &ix, error_r) != 0)
        return -1;
    struct store_mailbox *l = NULL;
    int n = 0;
    if (store_ix_exec(ix.db, "BEGIN") < 0 || list_read(ix.db, &l, &n) < 0) {
        log_error("store", "event=index-failed op=list error=\"%s\"", sqlite3_errmsg(ix.db));
        *error_r = "cannot read the mailbox index";
        free(l);
        if (!sqlite3_get_autocommit(ix.db))
            store_ix_exec(ix.db, "ROLLBACK");
        store_ix_close(&ix);
        return -1;
    }
    store_ix_exec(ix.db, "ROLLBACK");
    store_ix_close(&ix);
    qsort(l, (size_t)n, sizeof *l, mailbox_cmp);
    /* \HasChildren: each existing mailbox marks its parent */
    for (int i = 0; i < n; i++) {
        if (l[i].attrs & STORE_MB_NONEXISTENT)
            continue;
        char parent[sizeof l[i].name];
        snprintf(parent, sizeof parent, "%s", l[i].name);
        char *slash = strrchr(parent, '/');
        if (!slash)
            continue;
        *slash = '\0';
        struct store_mailbox *p = list_find(l, n, parent);
        if (p)
            p->attrs |= STORE_MB_HASCHILDREN;
    }
    *list_r = l;
    *n_r = n;
    return 0;
}

/* ---------------------------------------------------------- status */

int store_mailbox_status_full(const char *data_dir, const char *account, const char *name,
                              struct store_status *s, const char **error_r)
{
    memset(s, 0, sizeof *s);
    if (!name) {
        *error_r = "bad arguments";
        return -1;
    }
    struct store_ix ix;
    if (store_ix_open(data_dir, account, 1, &ix, error_r) != 0)
        return -1;
    struct store_mbstate mb;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (store_ix_exec(ix.db, "BEGIN") < 0)
        goto out;
    rc = store_ix_mbstate(ix.db, name, &mb);
    if (rc != 0)
        goto out;
    rc = -1;
    if (sqlite3_prepare_v2(ix.db,
                           "SELECT count(*), coalesce(sum(size), 0),"
                           " coalesce(sum(instr(lower(flags), '\\seen') = 0), 0),"
                           " coalesce(sum(instr(lower(flags), '\\deleted') > 0), 0)"
                           " FROM messages WHERE mailbox_id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mb.id);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    s->messages = (uint32_t)sqlite3_column_int64(st, 0);
    s->size = (uint64_t)sqlite3_column_int64(st, 1);
    s->unseen = (uint32_t)sqlite3_column_int64(st, 2);
    s->deleted = (uint32_t)sqlite3_column_int64(st, 3);
    s->uidnext = (uint32_t)mb.uidnext;
    s->uidvalidity = (uint32_t)mb.uidvalidity;
    s->highestmodseq = (uint64_t)mb.highestmodseq;
    rc = 0;
out:
    if (rc == 1)
        *error_r = "no such mailbox";
    else if (rc < 0)
        *error_r = "cannot read the mailbox index";
    sqlite3_finalize(st);
    if (ix.db && !sqlite3_get_autocommit(ix.db))
        store_ix_exec(ix.db, "ROLLBACK");
    store_ix_close(&ix);
    return rc;
}
