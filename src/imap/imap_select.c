/* imap_select: opening and leaving a mailbox: SELECT and EXAMINE (RFC 9051
 * 6.3.2/6.3.3) with the CONDSTORE and QRESYNC parameters (RFC 7162 3.1.8,
 * 3.2.5), CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315). */
#include "imap/imap_int.h"
#include "imap/imap_fetch_int.h"
#include "imap/imap_msgcmd.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct select_ctx {
    char name[IMAP_MAILBOX_MAX + 1];
    int readonly;
    int rc;
    struct store_view view;
    /* QRESYNC */
    int qresync;
    uint32_t q_uidvalidity;
    uint64_t q_modseq;
    struct imap_seqset known;       /* known-uids, n == 0: all */
    struct store_changes ch;
};

static void select_ctx_free(void *p)
{
    struct select_ctx *c = p;
    store_view_free(&c->view);
    imap_seqset_free(&c->known);
    store_changes_free(&c->ch);
    free(c);
}

static void select_work(struct imap_job *j)
{
    struct select_ctx *c = j->ctx;
    c->rc = store_view_open(j->data_dir, j->account, c->name, &c->view, &j->error);
    if (c->rc == 0 && c->qresync && c->q_uidvalidity == c->view.uidvalidity)
        c->rc = store_changes_since(j->data_dir, j->account, c->name, c->q_modseq, &c->ch,
                                    &j->error) < 0 ? -1 : 0;
}

static void write_flags(struct imap_session *s, const struct store_view *v, int readonly)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    int ok = buf_append(&b, "\\Answered \\Flagged \\Deleted \\Seen \\Draft", 40);
    for (int i = 0; i < v->nkeywords && ok == 0; i++)
        ok = buf_appendf(&b, " %s", v->keywords[i]);
    if (ok == 0) {
        imap_untagged(s, "FLAGS (%.*s)", (int)b.len, b.data);
        if (readonly)
            imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
        else
            imap_untagged(s, "OK [PERMANENTFLAGS (%.*s \\*)] Flags permitted", (int)b.len,
                          b.data);
    }
    buf_deinit(&b);
}

/* QRESYNC (RFC 7162 3.2.5.2): VANISHED (EARLIER) and the changed flags. */
static void write_qresync(struct imap_session *s, struct select_ctx *c)
{
    const struct store_view *v = &s->sel->view;
    if (c->q_uidvalidity != v->uidvalidity)
        return;
    uint32_t n = 0;
    uint32_t *van = xmalloc(xmul((size_t)c->ch.nvanished + 1, sizeof *van));
    for (uint32_t i = 0; i < c->ch.nvanished; i++)
        if (c->known.n == 0 || imap_seqset_contains(&c->known, c->ch.vanished[i], UINT32_MAX))
            van[n++] = c->ch.vanished[i];
    if (n) {
        struct buf b;
        buf_init(&b, (size_t)n * 24 + 64);
        if (imap_out_set(&b, van, n) == 0)
            imap_untagged(s, "VANISHED (EARLIER) %.*s", (int)b.len, b.data);
        buf_deinit(&b);
    }
    free(van);
    for (uint32_t seq = 1; seq <= v->count; seq++) {
        const struct store_vmsg *m = &v->msgs[seq - 1];
        if (m->modseq <= c->q_modseq)
            continue;
        struct buf b;
        buf_init(&b, 16384);
        if (imap_flags_format(m->sysflags, m->keywords, &b) == 0)
            imap_untagged(s, "%u FETCH (UID %u FLAGS %.*s MODSEQ (%llu))", seq, m->uid,
                          (int)b.len, b.data, (unsigned long long)m->modseq);
        buf_deinit(&b);
    }
}

static void select_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct select_ctx *c = j->ctx;
    if (c->rc == 1) {
        imap_no(s, "[NONEXISTENT] No such mailbox");
        return;
    }
    if (c->rc != 0) {
        log_error("imap", "event=select-failed session=%s error=\"%s\"", s->id,
                  j->error ? j->error : "store");
        imap_no(s, "[SERVERBUG] Cannot open the mailbox");
        return;
    }
    struct imap_selected *sel = xcalloc(1, sizeof *sel);
    snprintf(sel->name, sizeof sel->name, "%s", c->name);
    sel->readonly = c->readonly;
    sel->view = c->view;
    memset(&c->view, 0, sizeof c->view);
    s->sel = sel;
    s->dirty = 0;
    imap_set_state(s, IMAP_ST_SELECTED);
    const struct store_view *v = &sel->view;
    write_flags(s, v, c->readonly);
    imap_untagged(s, "%u EXISTS", v->count);
    if (!(s->enabled & IMAP_EN_REV2)) {
        imap_untagged(s, "0 RECENT");
        for (uint32_t i = 0; i < v->count; i++)
            if (!(v->msgs[i].sysflags & STORE_F_SEEN)) {
                imap_untagged(s, "OK [UNSEEN %u] First unseen", i + 1);
                break;
            }
    }
    imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", v->uidvalidity);
    imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", v->uidnext);
    imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)v->highestmodseq);
    if (c->qresync)
        write_qresync(s, c);
    log_debug("imap", "event=select session=%s mailbox=\"%s\" messages=%u", s->id, sel->name,
              v->count);
    imap_ok(s, "[%s] %s completed", c->readonly ? "READ-ONLY" : "READ-WRITE",
            c->readonly ? "EXAMINE" : "SELECT");
}

/* (QRESYNC (uidvalidity modseq [known-uids [seq-match]])) */
static int parse_qresync(const struct imap_arg *a, struct select_ctx *c)
{
    if (a->type != IMAP_ARG_LIST || a->nlist < 2 || a->nlist > 4)
        return -1;
    for (int i = 0; i < 2; i++)
        if (a->list[i].type != IMAP_ARG_ATOM)
            return -1;
    uint64_t uv, ms;
    if (imap_parse_number(a->list[0].str, a->list[0].len, UINT32_MAX, &uv) < 0 || uv == 0 ||
        imap_parse_number(a->list[1].str, a->list[1].len, INT64_MAX, &ms) < 0)
        return -1;
    c->q_uidvalidity = (uint32_t)uv;
    c->q_modseq = ms;
    if (a->nlist >= 3) {
        if (a->list[2].type == IMAP_ARG_ATOM) {
            if (imap_seqset_parse(a->list[2].str, &c->known) < 0 || c->known.saved)
                return -1;
        } else if (a->list[2].type != IMAP_ARG_LIST) {
            return -1;
        }
    }
    c->qresync = 1;
    return 0;
}

static int parse_select_params(struct imap_session *s, const struct imap_arg *a,
                               struct select_ctx *c)
{
    if (a->type != IMAP_ARG_LIST)
        return -1;
    for (int i = 0; i < a->nlist; i++) {
        if (imap_arg_is(&a->list[i], "CONDSTORE")) {
            imap_enable_condstore(s);
        } else if (imap_arg_is(&a->list[i], "QRESYNC") && i + 1 < a->nlist) {
            if (!(s->enabled & IMAP_EN_QRESYNC) || parse_qresync(&a->list[++i], c) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

void imap_cmd_select(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs < 1 || c->nargs > 2) {
        imap_bad(s, "%s needs a mailbox name", c->name);
        return;
    }
    struct select_ctx *ctx = xcalloc(1, sizeof *ctx);
    ctx->readonly = strcmp(c->name, "EXAMINE") == 0;
    if (c->nargs == 2 && parse_select_params(s, &c->args[1], ctx) < 0) {
        select_ctx_free(ctx);
        imap_bad(s, "Invalid %s parameters", c->name);
        return;
    }
    if (imap_arg_mailbox(s, &c->args[0], ctx->name) < 0) {
        select_ctx_free(ctx);
        return;
    }
    /* the old selection ends first, whatever happens (RFC 9051 6.3.2) */
    if (s->sel) {
        imap_selected_free(&s->sel);
        imap_set_state(s, IMAP_ST_AUTH);
        imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
    }
    struct imap_job *j = imap_job_new(s);
    j->ctx = ctx;
    j->ctx_free = select_ctx_free;
    imap_job_run(j, select_work, select_done);
}

/* ---- leaving ---- */

static void leave_mailbox(struct imap_session *s)
{
    imap_selected_free(&s->sel);
    s->dirty = 0;
    imap_set_state(s, IMAP_ST_AUTH);
}

static void close_work(struct imap_job *j)
{
    uint32_t *exp = NULL, n = 0;
    uint64_t ms = 0;
    j->result = store_expunge_deleted(j->data_dir, j->account, j->mailbox, NULL, 0, &exp, &n,
                                      &ms, &j->error);
    free(exp);
}

static void close_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    leave_mailbox(s);
    if (j->result < 0)
        imap_no(s, "[SERVERBUG] Mailbox closed, but expunging failed");
    else
        imap_ok(s, "CLOSE completed");
}

void imap_cmd_close(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "CLOSE takes no arguments");
        return;
    }
    if (s->sel->readonly) {
        leave_mailbox(s);
        imap_ok(s, "CLOSE completed");
        return;
    }
    imap_job_run(imap_job_new(s), close_work, close_done);
}

void imap_cmd_unselect(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "UNSELECT takes no arguments");
        return;
    }
    leave_mailbox(s);
    imap_ok(s, "UNSELECT completed");
}

struct expunge_ctx {
    uint32_t *uids;       /* UID EXPUNGE: the set; NULL: all */
    uint32_t n;
    uint32_t *expunged;
    uint32_t nexp;
    uint64_t modseq;
};

static void expunge_ctx_free(void *p)
{
    struct expunge_ctx *e = p;
    free(e->uids);
    free(e->expunged);
    free(e);
}

static void expunge_work(struct imap_job *j)
{
    struct expunge_ctx *e = j->ctx;
    if (e->uids && e->n == 0)
        return; /* UID EXPUNGE of UIDs not in the view */
    j->result = store_expunge_deleted(j->data_dir, j->account, j->mailbox, e->uids, e->n,
                                      &e->expunged, &e->nexp, &e->modseq, &j->error);
}

static void expunge_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct expunge_ctx *e = j->ctx;
    if (j->result != 0) {
        imap_no(s, "[SERVERBUG] Expunge failed");
        return;
    }
    imap_view_expunged(s, e->expunged, e->nexp);
    if (s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC))
        imap_ok(s, "[HIGHESTMODSEQ %llu] EXPUNGE completed", (unsigned long long)e->modseq);
    else
        imap_ok(s, "EXPUNGE completed");
}

void imap_cmd_expunge(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != (c->uid ? 1 : 0)) {
        imap_bad(s, c->uid ? "UID EXPUNGE needs a UID set" : "EXPUNGE takes no arguments");
        return;
    }
    if (s->sel->readonly) {
        imap_no(s, "[READ-ONLY] Mailbox is read-only");
        return;
    }
    struct expunge_ctx *e = xcalloc(1, sizeof *e);
    if (c->uid) {
        struct imap_seqset set;
        struct imap_msgset ms;
        if (imap_msgcmd_set(s, &c->args[0], 1, &set, &ms) != 0) {
            free(e);
            return;
        }
        e->uids = ms.uid;
        e->n = ms.n;
        ms.uid = NULL;
        if (!e->uids)
            e->uids = xcalloc(1, sizeof *e->uids);
        imap_msgset_free(&ms);
        imap_seqset_free(&set);
    }
    s->dirty = 1;
    struct imap_job *j = imap_job_new(s);
    j->ctx = e;
    j->ctx_free = expunge_ctx_free;
    imap_job_run(j, expunge_work, expunge_done);
}
