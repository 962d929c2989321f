/* queue_round: one round of file work for one queued message, on a worker
 * thread (queue.c's top comment tells the whole story). It loads the queue
 * file and the state log, records the results of the remote attempts that
 * just ended, honours `roost queue` requests, delivers the due local
 * recipients, decides deferrals, give-ups and notices (DSNs), appends the
 * round's records with one fsync, removes a finished message, and lists the
 * remote recipients due now for the loop to hand to the transport. */
#include "queue/queue_int.h"
#include "queue/dsn.h"
#include "queue/forward.h"
#include "queue/rcptstate.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BOUNCED_BY_ADMIN "bounced by the mail administrator (roost queue bounce)"
#define EXPIRED_STATUS "5.4.7"
#define DSN_MAX_RCPTS 50   /* recipients listed in one notice */

/* What one round decides, on the worker. */
struct round {
    struct qmsg *qm;
    struct spool_msg *m;
    struct rs_msg *st;
    int64_t now, expiry;
    struct rs_record *recs;
    int nrec, caprec;
    struct dsn_rcpt *fails;
    int nfail, capfail;
    char **owned;            /* strings the records point at */
    int nowned, capowned;
};

static int deliver_one(struct qmsg *qm, int idx, int last);

static char *round_own(struct round *r, char *s)
{
    if (!s)
        return NULL;
    if (r->nowned == r->capowned) {
        r->capowned = r->capowned ? r->capowned * 2 : 16;
        r->owned = xrealloc(r->owned, xmul((size_t)r->capowned, sizeof *r->owned));
    }
    r->owned[r->nowned++] = s;
    return s;
}

/* Adds a record to the round and applies it to the state at once. The
 * copy returned owns its strings (REC's may point into the state). */
static const struct rs_record *round_record(struct round *r, const struct rs_record *rec)
{
    if (r->nrec == r->caprec) {
        r->caprec = r->caprec ? r->caprec * 2 : 8;
        r->recs = xrealloc(r->recs, xmul((size_t)r->caprec, sizeof *r->recs));
    }
    struct rs_record *c = &r->recs[r->nrec++];
    *c = *rec;
    c->enhanced = round_own(r, rec->enhanced ? xstrdup(rec->enhanced) : NULL);
    c->host = round_own(r, rec->host ? xstrdup(rec->host) : NULL);
    c->reply = round_own(r, rec->reply ? xstrdup(rec->reply) : NULL);
    rs_apply(r->st, c);
    return c;
}

static void round_fail(struct round *r, int idx, const struct rs_record *rec, int expired)
{
    if (r->nfail == r->capfail) {
        r->capfail = r->capfail ? r->capfail * 2 : 8;
        r->fails = xrealloc(r->fails, xmul((size_t)r->capfail, sizeof *r->fails));
    }
    struct dsn_rcpt *f = &r->fails[r->nfail++];
    memset(f, 0, sizeof *f);
    f->address = r->m->rcpts[idx].address;
    f->status = round_own(r, xstrdup(rec->enhanced && rec->enhanced[0] ? rec->enhanced : "5.0.0"));
    f->code = rec->code;
    f->reply = round_own(r, rec->reply ? xstrdup(rec->reply) : NULL);
    f->remote_host = round_own(r, rec->host ? xstrdup(rec->host) : NULL);
    f->last_attempt_ms = rec->t_ms;
    f->expired = expired;
}

static void round_free(struct round *r)
{
    for (int i = 0; i < r->nowned; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r->recs);
    free(r->fails);
    rs_free(&r->st);
}

static int rcpt_finished(const struct round *r, int i)
{
    return r->m->rcpts[i].done || r->st->r[i].state != RS_PENDING;
}

static void log_rcpt(char *out, size_t outsz, const char *addr)
{
    log_q(out, outsz, addr, strlen(addr));
}

static void iso8601(int64_t ms, char *out, size_t outsz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outsz, "%lld", (long long)t);
}

/* A deferral of recipient IDX (a remote result or a local failure): retry
 * later, or give up when the message is too old. */
static void round_defer(struct round *r, int idx, int local, int code, const char *enh,
                        const char *reply, const char *host, int64_t t_ms,
                        const struct sched_policy *p)
{
    struct rs_record rec = { .type = 'A', .t_ms = t_ms, .idx = idx, .code = code,
                             .enhanced = enh, .reply = reply, .host = host };
    char qa[LOG_QSIZE];
    log_rcpt(qa, sizeof qa, r->m->rcpts[idx].address);
    if (r->now >= r->expiry) {
        rec.outcome = 'f';
        rec.gave_up = 1;
        struct rs_record fr = rec;
        fr.enhanced = EXPIRED_STATUS;
        round_record(r, &rec);
        round_fail(r, idx, &fr, 1);
        return;
    }
    int attempts = r->st->r[idx].attempts + 1;
    rec.outcome = 'r';
    rec.next_ms = local ? sched_next_local(p, attempts, r->now, r->expiry)
                        : sched_next_remote(p, attempts, r->now, r->expiry);
    round_record(r, &rec);
    char when[40];
    iso8601(rec.next_ms, when, sizeof when);
    log_info("queue", "event=retry-scheduled queue=%s rcpt=%s attempt=%d next=%s delay_ms=%lld",
             r->m->id, qa, attempts, when, (long long)(rec.next_ms - r->now));
}

static void round_apply_results(struct round *r, const struct sched_policy *p)
{
    struct qmsg *qm = r->qm;
    for (int k = 0; k < qm->nres; k++) {
        const struct qres *x = &qm->res[k];
        if (x->idx < 0 || x->idx >= r->m->nrcpt || rcpt_finished(r, x->idx))
            continue;
        if (x->outcome == RCPT_DEFERRED) {
            round_defer(r, x->idx, 0, x->code, x->enhanced, x->reply, x->host, x->t_ms, p);
            continue;
        }
        struct rs_record rec = { .type = 'A', .t_ms = x->t_ms, .idx = x->idx,
                                 .outcome = x->outcome == RCPT_DELIVERED ? 'd' : 'f',
                                 .code = x->code, .enhanced = x->enhanced, .reply = x->reply,
                                 .host = x->host };
        const struct rs_record *c = round_record(r, &rec);
        if (x->outcome == RCPT_FAILED)
            round_fail(r, x->idx, c, 0);
    }
}

/* Resolves the DSN's recipient (the original sender): local account or not. */
static int dsn_recipient(struct queue *q, const char *sender, char **account_r)
{
    const char *err = NULL;
    char account[320];
    *account_r = NULL;
    struct directory *d = dir_for_thread(q->data_dir, &err);
    enum dir_rcpt res = d ? dir_resolve_rcpt(d, sender, account) : DIR_RCPT_ERROR;
    if (res == DIR_RCPT_LOCAL) {
        *account_r = xstrdup(account);
        return 0;
    }
    if (res == DIR_RCPT_NO_SUCH_USER)
        return -1;
    if (res == DIR_RCPT_ERROR)
        log_warn("queue", "event=dsn-lookup-failed error=\"%s\" hint=\"sent as to a remote address\"",
                 err ? err : "lookup failed");
    return 0;
}

/* Composes and queues one DSN about the recipients in FAILS. 0 ok. */
static int dsn_one(struct round *r, enum dsn_kind kind, const struct dsn_rcpt *rcpts, int n,
                   const struct sched_policy *p)
{
    struct queue *q = r->qm->q;
    struct spool_msg *m = r->m;
    char qs[LOG_QSIZE];
    log_q(qs, sizeof qs, m->sender, strlen(m->sender));
    char *account = NULL;
    if (dsn_recipient(q, m->sender, &account) < 0) {
        log_warn("queue", "event=dsn-not-sent queue=%s kind=%s to=%s reason=no-such-user", m->id,
                 kind == DSN_FAILED ? "failed" : "delayed", qs);
        return 0;
    }
    struct dsn_input in = {
        .kind = kind, .hostname = q->hostname, .queue_id = m->id, .sender = m->sender,
        .arrived = m->arrived, .now = (time_t)(r->now / 1000),
        .retry_until = (time_t)(r->expiry / 1000), .message = m->data, .message_len = m->len,
        .rcpts = rcpts, .nrcpt = n,
    };
    size_t len = 0;
    char *data = dsn_compose(&in, &len);
    if (!data) {
        free(account);
        log_error("queue", "event=dsn-failed queue=%s error=\"cannot compose\"", m->id);
        return -1;
    }
    struct spool_msg *d = xcalloc(1, sizeof *d);
    spool_new_id(d->id);
    d->sender = xstrdup("");
    d->arrived = in.now;
    d->client = xstrdup("127.0.0.1");
    d->helo = xstrdup(q->hostname);
    d->protocol = xstrdup("DSN");
    d->nrcpt = 1;
    d->rcpts = xcalloc(1, sizeof *d->rcpts);
    d->rcpts[0].address = xstrdup(m->sender);
    d->rcpts[0].account = account;
    d->data = data;
    d->len = len;
    const char *err = NULL;
    if (queue_commit(q, d, &err) < 0) {
        spool_msg_free(&d);
        return -1;
    }
    log_info("queue", "event=dsn-queued queue=%s dsn=%s kind=%s rcpts=%d to=%s", m->id, d->id,
             kind == DSN_FAILED ? "failed" : "delayed", n, qs);
    metrics_dsn(kind == DSN_FAILED ? MDSN_FAILED : MDSN_DELAYED);
    queue_inbox_post(q, d);
    (void)p;
    return 0;
}

/* One notice per DSN_MAX_RCPTS recipients, so that each stays well inside
 * dsn_compose's bound however many recipients failed together. */
static void queue_dsn(struct round *r, enum dsn_kind kind, const struct dsn_rcpt *rcpts, int n,
                      const struct sched_policy *p)
{
    for (int off = 0; off < n; off += DSN_MAX_RCPTS)
        dsn_one(r, kind, rcpts + off, n - off < DSN_MAX_RCPTS ? n - off : DSN_MAX_RCPTS, p);
}

/* The round's failures: one "failed" DSN for all of them (not for the null
 * sender), and the bounced log lines. */
static void round_bounce(struct round *r, const struct sched_policy *p)
{
    if (r->nfail == 0)
        return;
    for (int i = 0; i < r->nfail; i++) {
        char qa[LOG_QSIZE], qr[LOG_QSIZE];
        const struct dsn_rcpt *f = &r->fails[i];
        log_rcpt(qa, sizeof qa, f->address);
        const char *reply = f->reply ? f->reply : "";
        log_info("queue", "event=bounced queue=%s rcpt=%s status=%s reason=%s reply=%s",
                 r->m->id, qa, f->status,
                 f->expired ? "expired" : f->by_admin ? "bounced-by-admin" : "failed",
                 log_q(qr, sizeof qr, reply, strlen(reply)));
    }
    queue_stats_add(r->qm->q, &r->qm->q->stats.failed, r->nfail);
    if (!r->m->sender || !r->m->sender[0]) {
        log_info("queue", "event=dsn-suppressed queue=%s reason=null-sender rcpts=%d",
                 r->m->id, r->nfail);
        return;
    }
    queue_dsn(r, DSN_FAILED, r->fails, r->nfail, p);
}

/* Once per message: the "delayed" DSN for the recipients that have been
 * deferred, when the message is older than delay_warning. */
static void round_warn(struct round *r, const struct sched_policy *p)
{
    int64_t warn_at = sched_warning_ms(p, r->m->arrived);
    if (r->st->warned || !warn_at || r->now < warn_at || r->now >= r->expiry)
        return;
    struct dsn_rcpt *w = xcalloc((size_t)r->m->nrcpt, sizeof *w);
    int n = 0;
    for (int i = 0; i < r->m->nrcpt; i++) {
        const struct rs_rcpt *s = &r->st->r[i];
        if (rcpt_finished(r, i) || s->attempts == 0)
            continue;
        w[n].address = r->m->rcpts[i].address;
        w[n].status = s->last.enhanced[0] ? s->last.enhanced : "4.0.0";
        w[n].code = s->last.code;
        w[n].reply = s->last.reply;
        w[n].remote_host = s->last.host;
        w[n].last_attempt_ms = s->last.t_ms;
        n++;
    }
    if (n > 0) {
        if (r->m->sender && r->m->sender[0])
            queue_dsn(r, DSN_DELAYED, w, n, p);
        struct rs_record rec = { .type = 'W', .t_ms = r->now };
        round_record(r, &rec);
    }
    free(w);
}

static void round_deliver_locals(struct round *r, const struct sched_policy *p)
{
    struct qmsg *qm = r->qm;
    struct spool_msg *m = r->m;
    int unfinished = 0;
    for (int i = 0; i < m->nrcpt; i++)
        unfinished += !rcpt_finished(r, i);
    for (int i = 0; i < m->nrcpt; i++) {
        struct spool_rcpt *rc = &m->rcpts[i];
        if (!rc->account || rcpt_finished(r, i) || r->st->r[i].next_ms > r->now)
            continue;
        /* the last one: nothing else unfinished (failures stay unfinished) */
        if (deliver_one(qm, i, unfinished == 1) == 0) {
            unfinished--;
            continue;
        }
        queue_stats_add(qm->q, &qm->q->stats.failed, 1);
        round_defer(r, i, 1, 451, "4.3.0", "local delivery failed (see the server log)", NULL,
                    rs_now_ms(), p);
    }
}

/* The remote recipients due now, and the next time anything is due. */
static void round_plan(struct round *r, const struct sched_policy *p)
{
    struct qmsg *qm = r->qm;
    struct spool_msg *m = r->m;
    int remote = 0, local = 0;
    int64_t wake = 0;
    free(qm->due);
    qm->due = xcalloc((size_t)m->nrcpt, sizeof *qm->due);
    qm->ndue = 0;
    for (int i = 0; i < m->nrcpt; i++) {
        if (rcpt_finished(r, i))
            continue;
        const struct rs_rcpt *s = &r->st->r[i];
        if (m->rcpts[i].account)
            local++;
        if (!m->rcpts[i].account) {
            remote++;
            if (!qm->remote_logged && s->attempts == 0) {
                char qa[LOG_QSIZE];
                log_rcpt(qa, sizeof qa, m->rcpts[i].address);
                log_info("queue", "event=queued-remote queue=%s rcpt=%s", m->id, qa);
            }
            if (!qm->q->remote_started)
                continue;   /* [outbound] enabled = no: waits, untried */
            if (!r->st->held && s->next_ms <= r->now) {
                qm->due[qm->ndue++] = i;
                continue;
            }
        }
        if (!r->st->held && (!wake || s->next_ms < wake))
            wake = s->next_ms;
    }
    qm->remote_logged = 1;
    int64_t warn_at = sched_warning_ms(p, m->arrived);
    if (remote && !r->st->warned && warn_at > r->now && wake && warn_at < wake)
        wake = warn_at;
    qm->wake_ms = wake;
    queue_stats_add(qm->q, &qm->q->stats.pending_remote, remote - qm->remote_pending);
    qm->remote_pending = remote;
    queue_depth_set(qm, r->st->held ? QD_HELD : local ? QD_PENDING_LOCAL
                        : remote ? QD_PENDING_REMOTE : QD_NONE);
}

static int round_all_finished(const struct round *r)
{
    for (int i = 0; i < r->m->nrcpt; i++)
        if (!rcpt_finished(r, i))
            return 0;
    return 1;
}

static void round_remove(struct round *r, const char *event)
{
    struct qmsg *qm = r->qm;
    struct queue *q = qm->q;
    if (spool_remove(q->spool, qm->id) < 0) {
        log_error("queue", "event=remove-failed queue=%s", qm->id);
        qm->outcome = OUT_WAIT;
        qm->wake_ms = r->now + 5 * (int64_t)queue_unit_ms(q);
        return;
    }
    if (qm->has_state || r->nrec > 0)
        rs_remove(spool_dir(q->spool), qm->id);
    if (event)
        log_info("queue", "event=%s queue=%s", event, qm->id);
    log_info("queue", "event=removed queue=%s", qm->id);
    qm->outcome = OUT_REMOVED;
}

/* A journal message (journal.h) that is not finished at once gets a queue
 * file of its own before anything else, so that its state and retries work
 * as for any message; the loop then releases the journal record. 0 done,
 * -1 failed (retried shortly: the journal still holds it). */
static int promote(struct qmsg *qm)
{
    struct queue *q = qm->q;
    const char *error = NULL;
    if (spool_commit(q->spool, qm->msg, &error) < 0 &&
        strcmp(error, SPOOL_ERR_EXISTS) != 0) {
        log_error("queue", "event=commit-failed queue=%s error=\"%s\"", qm->id, error);
        qm->outcome = OUT_WAIT;
        qm->wake_ms = rs_now_ms() + 5 * (int64_t)queue_unit_ms(q);
        return -1;
    }
    qm->promoted = 1;
    log_info("queue", "event=queue-file-written queue=%s reason=retry-needed", qm->id);
    return 0;
}

void queue_round_work(void *arg)
{
    struct qmsg *qm = arg;
    struct queue *q = qm->q;
    if (queue_is_stopped(q)) {
        qm->outcome = OUT_SKIPPED;
        return;
    }
    if (!qm->msg) {
        int rc = spool_load(q->spool, qm->id, &qm->msg);
        if (rc != 0) {
            log_warn("queue", "event=load-failed queue=%s result=%s", qm->id,
                     rc > 0 ? "missing" : "corrupt");
            qm->outcome = OUT_GONE;
            return;
        }
    }
    if (qm->seg && !qm->promoted && promote(qm) < 0)
        return;   /* keeps the message: the journal is its only copy */
    struct sched_policy p;
    queue_policy_get(q, &p);
    struct round r = { .qm = qm, .m = qm->msg, .now = rs_now_ms() };
    r.expiry = sched_expiry_ms(&p, r.m->arrived);
    const char *qdir = spool_dir(q->spool);
    if (qm->fresh && qm->nres == 0) {
        r.st = rs_new(r.m->nrcpt);
    } else if (rs_load(qdir, qm->id, r.m->nrcpt, &r.st) < 0) {
        log_error("queue", "event=state-unreadable queue=%s", qm->id);
    }
    qm->fresh = 0;
    if (r.st->torn)
        log_warn("queue", "event=state-records-ignored queue=%s count=%d", qm->id, r.st->torn);
    qm->outcome = OUT_WAIT;
    if (r.st->delete_req) {
        round_remove(&r, "deleted");
        goto out;
    }
    round_apply_results(&r, &p);
    if (r.st->bounce_req) {
        for (int i = 0; i < r.m->nrcpt; i++) {
            if (rcpt_finished(&r, i))
                continue;
            struct rs_record rec = { .type = 'A', .t_ms = r.now, .idx = i, .outcome = 'f',
                                     .enhanced = "5.0.0", .reply = BOUNCED_BY_ADMIN };
            /* the notice quotes the last answer, when there was one; the
             * fail entry copies it before the record replaces it */
            const struct rs_attempt *last = &r.st->r[i].last;
            struct rs_record told = rec;
            if (last->reply) {
                told.code = last->code;
                told.reply = last->reply;
                told.host = last->host;
                told.t_ms = last->t_ms;
            } else {
                told.t_ms = 0;
            }
            round_fail(&r, i, &told, 0);
            r.fails[r.nfail - 1].by_admin = 1;
            round_record(&r, &rec);
        }
    }
    if (!r.st->held)
        round_deliver_locals(&r, &p);
    round_bounce(&r, &p);
    round_warn(&r, &p);
    if (r.nrec > 0) {
        if (rs_append(qdir, qm->id, r.recs, r.nrec) < 0)
            log_error("queue", "event=state-write-failed queue=%s", qm->id);
        qm->has_state = 1;
    }
    if (round_all_finished(&r)) {
        round_remove(&r, NULL);
        goto out;
    }
    round_plan(&r, &p);
out:
    round_free(&r);
    queue_clear_results(qm);
    /* Waiting messages do not hold their bodies; the transport needs it. */
    if (qm->outcome != OUT_WAIT || qm->ndue == 0)
        spool_msg_free(&qm->msg);
}

/* Worker: one local recipient. 0 done (delivered or duplicate), -1 failed.
 * LAST: no recipient remains after this one, so the message is removed
 * right after and its .done mark would be written only to be deleted (a
 * crash before the removal redelivers, which the store turns into a
 * duplicate by queue id): it is not written. */
static int deliver_one(struct qmsg *qm, int idx, int last)
{
    struct queue *q = qm->q;
    struct spool_msg *m = qm->msg;
    struct spool_rcpt *r = &m->rcpts[idx];
    char qa[LOG_QSIZE], qc[LOG_QSIZE];
    uint32_t uid = 0;
    int dup = 0;
    const char *error = "unknown";
    log_q(qa, sizeof qa, r->address, strlen(r->address));
    log_q(qc, sizeof qc, r->account, strlen(r->account));
    const struct forward_queue fq = { q->data_dir, q->spool, q->loop, queue_resume_committed, q };
    if (forward_deliver(&fq, m, idx, &uid, &dup, &error) < 0) {
        metrics_delivery(MD_LOCAL_FAILED);
        log_error("queue", "event=delivery-failed queue=%s rcpt=%s account=%s error=\"%s\"",
                  m->id, qa, qc, error);
        return -1;
    }
    queue_log_local(qm, idx, uid, dup);
    if (!last && spool_mark_done(q->spool, m->id, idx) < 0) {
        /* The store has it; a retry will find the duplicate and mark again. */
        log_error("queue", "event=mark-done-failed queue=%s rcpt=%s", m->id, qa);
        return -1;
    }
    r->done = 1;
    if (!dup)
        queue_count_local(qm);
    return 0;
}

void queue_log_local(const struct qmsg *qm, int idx, uint32_t uid, int duplicate)
{
    const struct spool_msg *m = qm->msg;
    const struct spool_rcpt *r = &m->rcpts[idx];
    char qa[LOG_QSIZE], qc[LOG_QSIZE];
    log_q(qa, sizeof qa, r->address, strlen(r->address));
    log_q(qc, sizeof qc, r->account, strlen(r->account));
    if (duplicate)
        log_info("queue", "event=duplicate-skipped queue=%s rcpt=%s account=%s uid=%u"
                 " mailbox=INBOX", m->id, qa, qc, uid);
    else
        log_info("queue", "event=delivered queue=%s rcpt=%s account=%s uid=%u mailbox=INBOX",
                 m->id, qa, qc, uid);
}

void queue_count_local(struct qmsg *qm)
{
    queue_stats_add(qm->q, &qm->q->stats.delivered_local, 1);
    metrics_delivery(MD_LOCAL_DELIVERED);
    if (qm->accepted_us)
        metrics_observe(MH_DELIVERY, metrics_since_s(qm->accepted_us));
}
