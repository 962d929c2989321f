/* imap_sync: the sync step (imap_int.h): what changed in the selected
 * mailbox since the view's HIGHESTMODSEQ, turned into untagged EXPUNGE (or
 * VANISHED), EXISTS and FETCH responses, in that order. EXPUNGEs are held
 * back while the running command forbids them (RFC 9051 7.5.1). */
#include "imap/imap_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct sync_ctx {
    uint64_t since;
    struct store_changes ch;
    int rc;
    void (*then)(struct imap_session *s);
};

static void sync_ctx_free(void *p)
{
    struct sync_ctx *c = p;
    store_changes_free(&c->ch);
    free(c);
}

static void sync_work(struct imap_job *j)
{
    struct sync_ctx *c = j->ctx;
    c->rc = store_changes_since(j->data_dir, j->account, j->mailbox, c->since, &c->ch, &j->error);
}

static int expunges_allowed(const struct imap_session *s)
{
    return !(s->in_command && (s->cmd_flags & IMAP_CF_NO_EXPUNGE));
}

static int is_held(const struct imap_selected *sel, uint32_t uid)
{
    for (uint32_t i = 0; i < sel->nheld; i++)
        if (sel->held_expunges[i] == uid)
            return 1;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void imap_sync_flush_held(struct imap_session *s)
{
    if (!s->sel || s->sel->nheld == 0 || !expunges_allowed(s))
        return;
    qsort(s->sel->held_expunges, s->sel->nheld, sizeof *s->sel->held_expunges, cmp_u32);
    uint32_t *uids = s->sel->held_expunges;
    uint32_t n = s->sel->nheld;
    s->sel->held_expunges = NULL;
    s->sel->nheld = 0;
    imap_view_expunged(s, uids, n);
    free(uids);
}

static void hold_expunges(struct imap_session *s, const struct store_changes *ch)
{
    struct imap_selected *sel = s->sel;
    for (uint32_t i = 0; i < ch->nvanished; i++) {
        uint32_t uid = ch->vanished[i];
        if (!imap_view_seq(s, uid) || is_held(sel, uid))
            continue;
        sel->held_expunges =
            xrealloc(sel->held_expunges, xmul((size_t)sel->nheld + 1, sizeof(uint32_t)));
        sel->held_expunges[sel->nheld++] = uid;
    }
}

static int same_keywords(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void announce_flags(struct imap_session *s, uint32_t seq, const struct store_vmsg *m)
{
    struct buf b;
    buf_init(&b, 16384);
    if (imap_flags_format(m->sysflags, m->keywords, &b) == 0) {
        char extra[96] = "";
        size_t off = 0;
        if (s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC))
            off += (size_t)snprintf(extra + off, sizeof extra - off, " MODSEQ (%llu)",
                                    (unsigned long long)m->modseq);
        if (s->enabled & IMAP_EN_QRESYNC)
            snprintf(extra + off, sizeof extra - off, " UID %u", m->uid);
        imap_untagged(s, "%u FETCH (FLAGS %.*s%s)", seq, (int)b.len, b.data, extra);
    }
    buf_deinit(&b);
}

static void append_new(struct imap_session *s, const struct store_vmsg *m)
{
    struct store_view *v = &s->sel->view;
    store_view_own(v);
    v->msgs = xrealloc(v->msgs, xmul((size_t)v->count + 1, sizeof *v->msgs));
    struct store_vmsg *d = &v->msgs[v->count++];
    d->uid = m->uid;
    d->sysflags = m->sysflags;
    d->keywords = m->keywords ? xstrdup(m->keywords) : NULL;
    d->modseq = m->modseq;
}

/* Merges the changes into the view and tells the client. */
static void apply_changes(struct imap_session *s, const struct store_changes *ch)
{
    struct store_view *v = &s->sel->view;
    if (ch->nchanged)
        store_view_own(v);   /* before any pointer into it is taken */
    hold_expunges(s, ch);
    imap_sync_flush_held(s);
    uint32_t last_uid = v->count ? v->msgs[v->count - 1].uid : 0;
    uint32_t before = v->count;
    for (uint32_t i = 0; i < ch->nchanged; i++)
        if (ch->changed[i].uid > last_uid)
            append_new(s, &ch->changed[i]);
    if (v->count != before)
        imap_untagged(s, "%u EXISTS", v->count);
    for (uint32_t i = 0; i < ch->nchanged; i++) {
        const struct store_vmsg *m = &ch->changed[i];
        if (m->uid > last_uid)
            continue;
        uint32_t seq = imap_view_seq(s, m->uid);
        if (!seq || is_held(s->sel, m->uid))
            continue;
        struct store_vmsg *mine = &v->msgs[seq - 1];
        int differs = mine->sysflags != m->sysflags || !same_keywords(mine->keywords, m->keywords);
        int modseq_news = (s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC)) &&
                          m->modseq > mine->modseq;
        imap_view_set_flags(s, m->uid, m->sysflags, m->keywords, m->modseq);
        if (differs || modseq_news)
            announce_flags(s, seq, mine);
    }
    if (ch->highestmodseq > v->highestmodseq)
        v->highestmodseq = ch->highestmodseq;
    if (ch->uidnext > v->uidnext)
        v->uidnext = ch->uidnext;
}

static void sync_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct sync_ctx *c = j->ctx;
    s->syncing = 0;
    if (s->sel && c->rc == 0 && c->ch.uidvalidity == s->sel->view.uidvalidity) {
        apply_changes(s, &c->ch);
    } else if (s->sel && (c->rc == 1 || c->ch.uidvalidity != s->sel->view.uidvalidity)) {
        log_info("imap", "event=selected-mailbox-gone session=%s account=%s mailbox=\"%s\"",
                 s->id, s->account, s->sel->name);
        imap_close(s, "Selected mailbox was deleted or renamed");
    } else if (c->rc < 0) {
        log_error("imap", "event=sync-failed session=%s error=\"%s\"", s->id,
                  j->error ? j->error : "store");
        s->dirty = 1;
    }
    c->then(s);
}

void imap_sync(struct imap_session *s, int force, void (*then)(struct imap_session *s))
{
    if (!s->sel || (!s->dirty && !force) || s->syncing) {
        if (s->sel)
            imap_sync_flush_held(s);
        then(s);
        return;
    }
    s->dirty = 0;
    s->syncing = 1;
    struct sync_ctx *c = xcalloc(1, sizeof *c);
    c->since = s->sel->view.highestmodseq;
    c->then = then;
    struct imap_job *j = imap_job_new(s);
    j->ctx = c;
    j->ctx_free = sync_ctx_free;
    imap_job_run(j, sync_work, sync_done);
}
