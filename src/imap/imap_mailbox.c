/* imap_mailbox: managing mailboxes: CREATE (with RFC 6154 USE), DELETE,
 * RENAME, SUBSCRIBE/UNSUBSCRIBE (RFC 9051 6.3.4-6.3.8), STATUS (6.3.11,
 * STATUS=SIZE, HIGHESTMODSEQ, APPENDLIMIT) and the account quota
 * (GETQUOTA/GETQUOTAROOT, RFC 9208: one root "" with STORAGE and MESSAGE). */
#include "imap/imap_int.h"
#include "auth/dir_cache.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mbox_ctx {
    char name[IMAP_MAILBOX_MAX + 1];
    char to[IMAP_MAILBOX_MAX + 1];
    char special_use[16];
    int subscribe;
    unsigned items;
    struct store_status st;
    struct store_usage usage;
    uint64_t quota;
};

static struct imap_job *mbox_job(struct imap_session *s, struct mbox_ctx **ctx_r)
{
    struct imap_job *j = imap_job_new(s);
    *ctx_r = xcalloc(1, sizeof **ctx_r);
    j->ctx = *ctx_r;
    j->ctx_free = free;
    return j;
}

static void store_failed(struct imap_session *s, struct imap_job *j, const char *what)
{
    log_error("imap", "event=%s-failed session=%s error=\"%s\"", what, s->id,
              j->error ? j->error : "store");
    imap_no(s, "[SERVERBUG] %s failed", what);
}

/* ---- CREATE ---- */

static void create_work(struct imap_job *j)
{
    struct mbox_ctx *m = j->ctx;
    j->result = store_mailbox_create(j->data_dir, j->account, m->name,
                                     m->special_use[0] ? m->special_use : NULL, &j->error);
}

static void create_done(struct imap_job *j)
{
    if (j->result == 0)
        imap_ok(j->s, "CREATE completed");
    else if (j->result == 1)
        imap_no(j->s, "[ALREADYEXISTS] Mailbox already exists");
    else if (j->error)
        imap_no(j->s, "[CANNOT] %s", j->error);
    else
        store_failed(j->s, j, "CREATE");
}

/* "(USE (\Sent))" (RFC 6154 3). */
static int parse_create_params(const struct imap_arg *a, char *special_use)
{
    if (a->type != IMAP_ARG_LIST || a->nlist != 2 || !imap_arg_is(&a->list[0], "USE") ||
        a->list[1].type != IMAP_ARG_LIST || a->list[1].nlist != 1 ||
        a->list[1].list[0].type != IMAP_ARG_ATOM)
        return -1;
    static const char *const uses[] = {"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"};
    for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++)
        if (strcasecmp(a->list[1].list[0].str, uses[i]) == 0) {
            snprintf(special_use, 16, "%s", uses[i]);
            return 0;
        }
    return 1;
}

void imap_cmd_create(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs < 1 || c->nargs > 2) {
        imap_bad(s, "CREATE needs a mailbox name");
        return;
    }
    struct mbox_ctx *m;
    char name[IMAP_MAILBOX_MAX + 1], use[16] = "";
    if (c->nargs == 2) {
        int r = parse_create_params(&c->args[1], use);
        if (r < 0) {
            imap_bad(s, "Invalid CREATE parameters");
            return;
        }
        if (r > 0) {
            imap_no(s, "[USEATTR] Unsupported special-use attribute");
            return;
        }
    }
    if (imap_arg_mailbox(s, &c->args[0], name) < 0)
        return;
    if (strcmp(name, "INBOX") == 0) {
        imap_no(s, "[ALREADYEXISTS] INBOX always exists");
        return;
    }
    struct imap_job *j = mbox_job(s, &m);
    memcpy(m->name, name, sizeof name);
    memcpy(m->special_use, use, sizeof use);
    imap_job_run(j, create_work, create_done);
}

/* ---- DELETE ---- */

static void delete_work(struct imap_job *j)
{
    struct mbox_ctx *m = j->ctx;
    j->result = store_mailbox_delete(j->data_dir, j->account, m->name, &j->error);
}

static void delete_done(struct imap_job *j)
{
    if (j->result == 0)
        imap_ok(j->s, "DELETE completed");
    else if (j->result == 1)
        imap_no(j->s, "[NONEXISTENT] No such mailbox");
    else if (j->result == 2)
        imap_no(j->s, "[CANNOT] %s", j->error ? j->error : "Mailbox cannot be deleted");
    else
        store_failed(j->s, j, "DELETE");
}

void imap_cmd_delete(struct imap_session *s, struct imap_command *c)
{
    char name[IMAP_MAILBOX_MAX + 1];
    if (c->nargs != 1) {
        imap_bad(s, "DELETE needs a mailbox name");
        return;
    }
    if (imap_arg_mailbox(s, &c->args[0], name) < 0)
        return;
    if (s->sel && strcmp(s->sel->name, name) == 0) {
        /* deleting the selected mailbox: the sync step ends the session's
         * selection; be explicit instead */
        imap_no(s, "[INUSE] Unselect the mailbox before deleting it");
        return;
    }
    struct mbox_ctx *m;
    struct imap_job *j = mbox_job(s, &m);
    memcpy(m->name, name, sizeof name);
    imap_job_run(j, delete_work, delete_done);
}

/* ---- RENAME ---- */

static void rename_work(struct imap_job *j)
{
    struct mbox_ctx *m = j->ctx;
    j->result = store_mailbox_rename(j->data_dir, j->account, m->name, m->to, &j->error);
}

static void rename_done(struct imap_job *j)
{
    if (j->result == 0)
        imap_ok(j->s, "RENAME completed");
    else if (j->result == 1)
        imap_no(j->s, "[NONEXISTENT] No such mailbox");
    else if (j->result == 2)
        imap_no(j->s, "[ALREADYEXISTS] Target mailbox already exists");
    else if (j->error)
        imap_no(j->s, "[CANNOT] %s", j->error);
    else
        store_failed(j->s, j, "RENAME");
}

void imap_cmd_rename(struct imap_session *s, struct imap_command *c)
{
    char from[IMAP_MAILBOX_MAX + 1], to[IMAP_MAILBOX_MAX + 1];
    if (c->nargs != 2) {
        imap_bad(s, "RENAME needs two mailbox names");
        return;
    }
    if (imap_arg_mailbox(s, &c->args[0], from) < 0 || imap_arg_mailbox(s, &c->args[1], to) < 0)
        return;
    if (strcmp(to, "INBOX") == 0) {
        imap_no(s, "[ALREADYEXISTS] INBOX always exists");
        return;
    }
    struct mbox_ctx *m;
    struct imap_job *j = mbox_job(s, &m);
    memcpy(m->name, from, sizeof from);
    memcpy(m->to, to, sizeof to);
    imap_job_run(j, rename_work, rename_done);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

static void subscribe_work(struct imap_job *j)
{
    struct mbox_ctx *m = j->ctx;
    j->result = store_mailbox_subscribe(j->data_dir, j->account, m->name, m->subscribe, &j->error);
}

static void subscribe_done(struct imap_job *j)
{
    struct mbox_ctx *m = j->ctx;
    if (j->result == 0)
        imap_ok(j->s, "%s completed", m->subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
    else
        store_failed(j->s, j, m->subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

void imap_cmd_subscribe(struct imap_session *s, struct imap_command *c)
{
    char name[IMAP_MAILBOX_MAX + 1];
    if (c->nargs != 1) {
        imap_bad(s, "%s needs a mailbox name", c->name);
        return;
    }
    if (imap_arg_mailbox(s, &c->args[0], name) < 0)
        return;
    struct mbox_ctx *m;
    struct imap_job *j = mbox_job(s, &m);
    memcpy(m->name, name, sizeof name);
    m->subscribe = strcmp(c->name, "SUBSCRIBE") == 0;
    imap_job_run(j, subscribe_work, subscribe_done);
}

/* ---- STATUS ---- */

static const struct {
    const char *name;
    unsigned bit;
} status_names[] = {
    {"MESSAGES", IMAP_SI_MESSAGES}, {"RECENT", IMAP_SI_RECENT},
    {"UIDNEXT", IMAP_SI_UIDNEXT},   {"UIDVALIDITY", IMAP_SI_UIDVALIDITY},
    {"UNSEEN", IMAP_SI_UNSEEN},     {"DELETED", IMAP_SI_DELETED},
    {"SIZE", IMAP_SI_SIZE},         {"HIGHESTMODSEQ", IMAP_SI_HIGHESTMODSEQ},
    {"APPENDLIMIT", IMAP_SI_APPENDLIMIT},
};

int imap_status_items(const struct imap_arg *list, unsigned *items)
{
    *items = 0;
    if (list->type != IMAP_ARG_LIST || list->nlist == 0)
        return -1;
    for (int i = 0; i < list->nlist; i++) {
        unsigned bit = 0;
        for (size_t k = 0; k < sizeof status_names / sizeof status_names[0]; k++)
            if (imap_arg_is(&list->list[i], status_names[k].name))
                bit = status_names[k].bit;
        if (!bit)
            return -1;
        *items |= bit;
    }
    return 0;
}

void imap_status_write(struct imap_session *s, const char *name, unsigned items,
                       const struct store_status *st)
{
    struct buf b;
    buf_init(&b, 8192);
    int rc = buf_append(&b, "* STATUS ", 9);
    rc |= imap_mailbox_quote(s, name, &b);
    rc |= buf_append(&b, " (", 2);
    const char *sep = "";
    uint64_t values[] = {st->messages, 0, st->uidnext, st->uidvalidity, st->unseen,
                         st->deleted, st->size, st->highestmodseq, imap_append_limit(s)};
    for (size_t k = 0; k < sizeof status_names / sizeof status_names[0]; k++) {
        if (!(items & status_names[k].bit))
            continue;
        rc |= buf_appendf(&b, "%s%s %llu", sep, status_names[k].name,
                          (unsigned long long)values[k]);
        sep = " ";
    }
    rc |= buf_append(&b, ")\r\n", 3);
    if (rc == 0)
        imap_write(s, b.data, b.len);
    buf_deinit(&b);
}

static void status_work(struct imap_job *j)
{
    struct mbox_ctx *m = j->ctx;
    j->result = store_mailbox_status_full(j->data_dir, j->account, m->name, &m->st, &j->error);
}

static void status_done(struct imap_job *j)
{
    struct mbox_ctx *m = j->ctx;
    if (j->result == 1) {
        imap_no(j->s, "[NONEXISTENT] No such mailbox");
        return;
    }
    if (j->result != 0) {
        store_failed(j->s, j, "STATUS");
        return;
    }
    imap_status_write(j->s, m->name, m->items, &m->st);
    imap_ok(j->s, "STATUS completed");
}

void imap_cmd_status(struct imap_session *s, struct imap_command *c)
{
    char name[IMAP_MAILBOX_MAX + 1];
    unsigned items;
    if (c->nargs != 2 || imap_status_items(&c->args[1], &items) < 0) {
        imap_bad(s, "STATUS needs a mailbox name and a list of items");
        return;
    }
    if (imap_arg_mailbox(s, &c->args[0], name) < 0)
        return;
    if (items & IMAP_SI_HIGHESTMODSEQ)
        imap_enable_condstore(s);
    struct mbox_ctx *m;
    struct imap_job *j = mbox_job(s, &m);
    memcpy(m->name, name, sizeof name);
    m->items = items;
    imap_job_run(j, status_work, status_done);
}

/* ---- QUOTA ---- */

uint64_t imap_account_quota(const struct imap_job *j, uint64_t fallback)
{
    const char *err = NULL;
    struct directory *d = dir_for_thread(j->data_dir, &err);
    struct dir_account acct;
    if (!d || dir_account_get(d, j->account, &acct) != 0)
        return fallback;
    return acct.quota_bytes;
}

static void quota_work(struct imap_job *j)
{
    struct mbox_ctx *m = j->ctx;
    m->quota = imap_account_quota(j, m->quota);
    j->result = store_usage_get(j->data_dir, j->account, &m->usage, &j->error);
}

static void quota_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct mbox_ctx *m = j->ctx;
    if (j->result != 0) {
        store_failed(s, j, "GETQUOTA");
        return;
    }
    if (m->subscribe) { /* GETQUOTAROOT */
        struct buf b;
        buf_init(&b, 4096);
        if (buf_append(&b, "* QUOTAROOT ", 12) == 0 && imap_mailbox_quote(s, m->name, &b) == 0 &&
            buf_append(&b, " \"\"\r\n", 5) == 0)
            imap_write(s, b.data, b.len);
        buf_deinit(&b);
    }
    s->quota_bytes = m->quota;
    if (m->quota)
        imap_untagged(s, "QUOTA \"\" (STORAGE %llu %llu)",
                      (unsigned long long)((m->usage.bytes + 1023) / 1024),
                      (unsigned long long)(m->quota / 1024));
    else
        imap_untagged(s, "QUOTA \"\" ()");
    imap_ok(s, "%s completed", m->subscribe ? "GETQUOTAROOT" : "GETQUOTA");
}

void imap_cmd_getquota(struct imap_session *s, struct imap_command *c)
{
    if (strcmp(c->name, "SETQUOTA") == 0) {
        imap_no(s, "[NOPERM] Quotas are set by the administrator");
        return;
    }
    int root = strcmp(c->name, "GETQUOTAROOT") == 0;
    const char *arg;
    if (c->nargs != 1 || !imap_arg_astring(&c->args[0], &arg, NULL)) {
        imap_bad(s, "%s needs one argument", c->name);
        return;
    }
    struct mbox_ctx *m;
    char name[IMAP_MAILBOX_MAX + 1] = "";
    if (root) {
        if (imap_arg_mailbox(s, &c->args[0], name) < 0)
            return;
    } else if (arg[0] != '\0') {
        imap_no(s, "[NONEXISTENT] No such quota root");
        return;
    }
    struct imap_job *j = mbox_job(s, &m);
    memcpy(m->name, name, sizeof name);
    m->subscribe = root;
    m->quota = s->quota_bytes;
    imap_job_run(j, quota_work, quota_done);
}
