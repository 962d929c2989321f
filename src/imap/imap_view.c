/* imap_view: the selected mailbox as this session has told the client
 * about it (imap_int.h: "the sync step"): sequence numbers, resolving
 * sequence sets, recording the session's own flag changes and expunges. */
#include "imap/imap_int.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

uint32_t imap_view_count(const struct imap_session *s)
{
    return s->sel ? s->sel->view.count : 0;
}

const struct store_vmsg *imap_view_msg(const struct imap_session *s, uint32_t seq)
{
    if (!s->sel || seq == 0 || seq > s->sel->view.count)
        return NULL;
    return &s->sel->view.msgs[seq - 1];
}

uint32_t imap_view_seq(const struct imap_session *s, uint32_t uid)
{
    if (!s->sel)
        return 0;
    const struct store_vmsg *m = s->sel->view.msgs;
    uint32_t lo = 0, hi = s->sel->view.count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->sel->view.count && m[lo].uid == uid ? lo + 1 : 0;
}

static void msgset_add(struct imap_msgset *ms, uint32_t *cap, uint32_t seq, uint32_t uid)
{
    if (ms->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        ms->seq = xrealloc(ms->seq, xmul(*cap, sizeof *ms->seq));
        ms->uid = xrealloc(ms->uid, xmul(*cap, sizeof *ms->uid));
    }
    ms->seq[ms->n] = seq;
    ms->uid[ms->n] = uid;
    ms->n++;
}

/* "$": the saved UIDs that are still in the view. */
static void resolve_saved(const struct imap_session *s, struct imap_msgset *ms)
{
    uint32_t cap = 0;
    for (uint32_t i = 0; i < s->sel->nsaved; i++) {
        uint32_t seq = imap_view_seq(s, s->sel->saved[i]);
        if (seq)
            msgset_add(ms, &cap, seq, s->sel->saved[i]);
    }
}

int imap_msgset_resolve(struct imap_session *s, const struct imap_seqset *set, int uid,
                        struct imap_msgset *ms, const char **error_r)
{
    memset(ms, 0, sizeof *ms);
    if (!s->sel) {
        *error_r = "No mailbox selected";
        return -1;
    }
    if (set->saved) {
        resolve_saved(s, ms);
        return 0;
    }
    const struct store_view *v = &s->sel->view;
    uint32_t count = v->count;
    if (!uid) {
        for (int i = 0; i < set->n; i++) {
            uint32_t lo = set->r[i].lo, hi = set->r[i].hi;
            if ((lo != IMAP_SEQ_STAR && lo > count) || (hi != IMAP_SEQ_STAR && hi > count) ||
                count == 0) {
                *error_r = "Invalid message sequence number";
                return -1;
            }
        }
        uint32_t cap = 0;
        for (uint32_t seq = 1; seq <= count; seq++)
            if (imap_seqset_contains(set, seq, count))
                msgset_add(ms, &cap, seq, v->msgs[seq - 1].uid);
        return 0;
    }
    uint32_t star = count ? v->msgs[count - 1].uid : 0;
    uint32_t cap = 0;
    if (count == 0)
        return 0;
    for (uint32_t seq = 1; seq <= count; seq++) {
        uint32_t u = v->msgs[seq - 1].uid;
        if (imap_seqset_contains(set, u, star))
            msgset_add(ms, &cap, seq, u);
    }
    /* "n:*" always includes the highest UID (RFC 9051 6.4.8) */
    if (ms->n == 0) {
        for (int i = 0; i < set->n; i++)
            if (set->r[i].hi == IMAP_SEQ_STAR || set->r[i].lo == IMAP_SEQ_STAR) {
                msgset_add(ms, &cap, count, star);
                break;
            }
    }
    return 0;
}

void imap_msgset_free(struct imap_msgset *ms)
{
    free(ms->seq);
    free(ms->uid);
    memset(ms, 0, sizeof *ms);
}

void imap_view_set_flags(struct imap_session *s, uint32_t uid, unsigned sysflags,
                         const char *keywords, uint64_t modseq)
{
    uint32_t seq = imap_view_seq(s, uid);
    if (!seq)
        return;
    store_view_own(&s->sel->view);
    struct store_vmsg *m = &s->sel->view.msgs[seq - 1];
    m->sysflags = sysflags;
    free(m->keywords);
    m->keywords = keywords && *keywords ? xstrdup(keywords) : NULL;
    if (modseq > m->modseq)
        m->modseq = modseq;
}

/* Removes UID from the view (and the saved result). */
static void view_remove(struct imap_session *s, uint32_t seq)
{
    struct store_view *v = &s->sel->view;
    store_view_own(v);
    free(v->msgs[seq - 1].keywords);
    memmove(&v->msgs[seq - 1], &v->msgs[seq], (v->count - seq) * sizeof *v->msgs);
    v->count--;
}

void imap_view_expunged(struct imap_session *s, const uint32_t *uids, uint32_t n)
{
    if (!s->sel || n == 0)
        return;
    if (s->enabled & IMAP_EN_QRESYNC) {
        char *text = xmalloc((size_t)n * 24 + 16);
        if (imap_uids_format(uids, (int)n, text, (size_t)n * 24 + 16) >= 0)
            imap_untagged(s, "VANISHED %s", text);
        free(text);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t seq = imap_view_seq(s, uids[i]);
            if (seq)
                view_remove(s, seq);
        }
        return;
    }
    /* descending sequence numbers keep the earlier ones valid */
    for (uint32_t i = n; i-- > 0;) {
        uint32_t seq = imap_view_seq(s, uids[i]);
        if (!seq)
            continue;
        view_remove(s, seq);
        imap_untagged(s, "%u EXPUNGE", seq);
    }
}

void imap_fetch_opts_init(const struct imap_session *s, int uid_command,
                          struct imap_fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->uid_command = uid_command;
    o->condstore = (s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC)) != 0;
    o->utf8 = (s->enabled & IMAP_EN_UTF8) != 0;
}

void imap_enable_condstore(struct imap_session *s)
{
    if (s->enabled & IMAP_EN_CONDSTORE)
        return;
    s->enabled |= IMAP_EN_CONDSTORE;
    if (s->sel)
        imap_untagged(s, "OK [HIGHESTMODSEQ %llu] CONDSTORE enabled",
                      (unsigned long long)s->sel->view.highestmodseq);
}

void imap_selected_free(struct imap_selected **selp)
{
    struct imap_selected *sel = *selp;
    if (!sel)
        return;
    *selp = NULL;
    store_view_free(&sel->view);
    free(sel->held_expunges);
    free(sel->saved);
    free(sel);
}
