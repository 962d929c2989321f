/* imap_append: APPEND (RFC 9051 6.3.12) with flags and internal date,
 * APPENDUID (RFC 4315), TRYCREATE, OVERQUOTA (RFC 9208) and APPENDLIMIT
 * (RFC 7889: the reader refuses a bigger literal from its announcement).
 * The message is stored durably on a worker before the tagged OK. */
#include "imap/imap_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct append_ctx {
    char name[IMAP_MAILBOX_MAX + 1];
    char *data;
    size_t len;
    unsigned sysflags;
    char *keywords;
    time_t date;
    uint64_t quota;
    uint32_t uid, uidvalidity;
    int into_selected;
};

static void append_ctx_free(void *p)
{
    struct append_ctx *a = p;
    free(a->data);
    free(a->keywords);
    free(a);
}

static void append_work(struct imap_job *j)
{
    struct append_ctx *a = j->ctx;
    a->quota = imap_account_quota(j, a->quota);
    j->result = store_append(j->data_dir, j->account, a->name, a->data, a->len, a->sysflags,
                             a->keywords, a->date, a->quota, &a->uid, &a->uidvalidity,
                             &j->error);
}

static void append_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct append_ctx *a = j->ctx;
    switch (j->result) {
    case 0:
        log_info("imap", "event=append session=%s account=%s mailbox=\"%s\" uid=%u size=%zu",
                 s->id, s->account, a->name, a->uid, a->len);
        if (s->sel && strcmp(s->sel->name, a->name) == 0)
            s->dirty = 1;
        imap_ok(s, "[APPENDUID %u %u] APPEND completed", a->uidvalidity, a->uid);
        return;
    case 1:
        imap_no(s, "[TRYCREATE] No such mailbox");
        return;
    case 3:
        imap_no(s, "[OVERQUOTA] Quota exceeded: the account's mailbox is full");
        return;
    default:
        log_error("imap", "event=append-failed session=%s error=\"%s\"", s->id,
                  j->error ? j->error : "store");
        imap_no(s, "[SERVERBUG] APPEND failed");
    }
}

void imap_cmd_append(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs < 2 || c->nargs > 4 || c->args[c->nargs - 1].type != IMAP_ARG_LITERAL) {
        imap_bad(s, "APPEND needs a mailbox name, optional flags and date, and a literal");
        return;
    }
    struct append_ctx *a = xcalloc(1, sizeof *a);
    int i = 1;
    if (i < c->nargs - 1 && c->args[i].type == IMAP_ARG_LIST) {
        struct imap_flag_list fl;
        const char *err = NULL;
        if (imap_flags_parse(&c->args[i], 1, &fl, &err) < 0) {
            append_ctx_free(a);
            imap_bad(s, "%s", err ? err : "Invalid flags");
            return;
        }
        imap_flags_split(&fl, &a->sysflags, &a->keywords);
        imap_flags_free(&fl);
        i++;
    }
    if (i < c->nargs - 1) {
        const char *d;
        if (c->args[i].type != IMAP_ARG_STRING || !imap_arg_astring(&c->args[i], &d, NULL) ||
            imap_datetime_parse(d, &a->date) < 0) {
            append_ctx_free(a);
            imap_bad(s, "Invalid date-time");
            return;
        }
        i++;
    }
    if (i != c->nargs - 1) {
        append_ctx_free(a);
        imap_bad(s, "Invalid APPEND arguments");
        return;
    }
    const struct imap_arg *lit = &c->args[i];
    if (lit->len == 0) {
        append_ctx_free(a);
        imap_no(s, "Empty message");
        return;
    }
    if (lit->len > imap_append_limit(s)) {
        append_ctx_free(a);
        imap_no(s, "[TOOBIG] Message is larger than APPENDLIMIT");
        return;
    }
    if (imap_arg_mailbox(s, &c->args[0], a->name) < 0) {
        append_ctx_free(a);
        return;
    }
    /* the command's literal is handed over, not copied */
    a->data = lit->str;
    a->len = lit->len;
    c->args[i].str = NULL;
    c->args[i].len = 0;
    a->quota = s->quota_bytes;
    struct imap_job *j = imap_job_new(s);
    j->ctx = a;
    j->ctx_free = append_ctx_free;
    imap_job_run(j, append_work, append_done);
}
