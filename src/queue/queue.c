/* queue: the scheduler between the SMTP sessions, the spool, the local
 * mailbox store and the outbound transport (see queue.h).
 *
 * Threads and ownership:
 *  - queue_submit runs on a session's loop; spool_commit runs on a worker;
 *    the session's done callback runs back on the session's loop. Then the
 *    message is handed to the queue loop through a mutex-protected inbox and
 *    a libevent user event (the one documented cross-loop channel here).
 *  - Everything about queued messages (struct qmsg, the timers, the list of
 *    messages, the remote-attempt slots) lives on the queue loop's thread. A
 *    message has at most one round job at a time (qm->in_job); while it runs
 *    the worker owns the qmsg's message, state and result fields. Remote
 *    attempts run on the queue loop (qm->outstanding counts them) and never
 *    overlap a round job.
 *  - struct queue is reference counted: every job and remote attempt holds a
 *    reference, so a queue_stop while they are still running only marks it
 *    stopped; the last one frees it.
 *
 * A round (round_work, on a worker) does everything that touches files for
 * one message: load the queue file and the state (rcptstate.h), apply the
 * results of the remote attempts that just finished, honour `roost queue`
 * requests, deliver the due local recipients (store_deliver, idempotent by
 * queue id, then spool_mark_done except for the last recipient, after which
 * the message is removed at once), decide deferrals, give-ups and DSNs (one
 * DSN per kind per round for all the recipients concerned, committed to the
 * spool before the failure is recorded: a crash in between may repeat a DSN,
 * never lose one), append the round's records with one fsync, remove the
 * message when every recipient is finished, and list the remote recipients
 * that are due. Back on the loop (round_done) those go to the transport,
 * one remote_deliver per destination domain, within the slot limits; when
 * every attempt has answered, the next round records the results.
 *
 * A message whose recipients are all local and delivered at the first try
 * never gets a state file: no fsync is added to that path. */
#include "queue/queue.h"
#include "queue/dsn.h"
#include "queue/qctl.h"
#include "queue/rcptstate.h"
#include "queue/remote.h"
#include "queue/schedule.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/config.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "store/store.h"

#include <ctype.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BOUNCED_BY_ADMIN "bounced by the mail administrator (roost queue bounce)"
#define EXPIRED_STATUS "5.4.7"

enum outcome {
    OUT_REMOVED,    /* every recipient done; the spool file is gone */
    OUT_GONE,       /* the spool file vanished or was corrupt */
    OUT_WAIT,       /* something remains: wait for wake_ms / remote attempts */
    OUT_SKIPPED,    /* the queue was stopping */
};

struct queue;

/* One remote result kept until the next round records it. */
struct qres {
    int idx;
    enum rcpt_outcome outcome;
    int code;
    char enhanced[16];
    char *reply;
    char *host;
    int64_t t_ms;
};

struct qmsg {
    struct queue *q;
    struct qmsg *prev, *next;
    char id[SPOOL_ID_LEN + 1];
    struct spool_msg *msg;   /* NULL: load from the spool */
    struct event *timer;
    int in_job;
    int outstanding;         /* remote attempts in flight */
    int listed;
    int fresh;               /* just submitted: no state file can exist yet */
    int kick;                /* a control request came while busy */
    int starved;             /* due remote recipients waited for a slot */
    int remote_pending;      /* remote recipients still waiting (last known) */
    int remote_logged;
    int has_state;           /* a state file may exist */
    enum outcome outcome;
    int64_t wake_ms;         /* next round (0: none) */
    int ndue;
    int *due;                /* remote recipients due now (round_work -> loop) */
    int nres;
    struct qres *res;        /* remote results (loop -> next round_work) */
};

/* One remote_deliver call. */
struct qattempt {
    struct qmsg *qm;
    char *domain;
    int n;
    int *idx;
};

struct inbox_item {
    struct inbox_item *next;
    struct spool_msg *msg;
};

struct queue {
    pthread_mutex_t lock;    /* refs, stopped, inbox, stats, inflight, unit */
    int refs;
    int stopped;
    char *data_dir;
    char *hostname;
    const struct config *cfg;
    struct spool *spool;
    struct worker_pool *pool;
    struct loop *loop;
    struct event *inbox_ev;
    struct inbox_item *inbox_head, *inbox_tail;
    struct qmsg *msgs;       /* queue loop only */
    struct sched_slots *slots;   /* queue loop only */
    struct qctl_watch *ctl;
    int remote_started;
    int inflight;
    struct sched_policy policy;  /* unit_ms under lock; the rest fixed */
    struct queue_stats stats;
};

struct submit_job {
    struct queue *q;
    struct spool_msg *msg;
    queue_done_fn done;
    void *arg;
    int result;
    const char *error;
    char id[SPOOL_ID_LEN + 1];
};

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

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static struct queue *the_queue;
static struct sched_policy configured_policy;
static int configured_policy_set;
static unsigned configured_retry_unit_ms = 1000;
static char *configured_hostname;
static const struct config *configured_cfg;

static struct queue *queue_acquire(void);
static void queue_ref(struct queue *q);
static void queue_release(struct queue *q);
static void stats_add(struct queue *q, unsigned long *field, long delta);
static void inflight_add(struct queue *q, int delta);
static unsigned unit_ms(struct queue *q);
static int commit_and_post(struct queue *q, struct spool_msg *msg, const char **error_r);
static void submit_work(void *arg);
static void submit_done(void *arg);
static void submit_refused(evutil_socket_t fd, short what, void *arg);
static void inbox_post(struct queue *q, struct spool_msg *msg);
static void inbox_run(evutil_socket_t fd, short what, void *arg);
static struct qmsg *qmsg_new(struct queue *q, const char *id, struct spool_msg *msg);
static void qmsg_unlist(struct qmsg *qm);
static void qmsg_free(struct qmsg *qm);
static void qmsg_clear_results(struct qmsg *qm);
static void round_start(struct qmsg *qm);
static void round_work(void *arg);
static void round_done(void *arg);
static void round_finish(struct qmsg *qm);
static int deliver_one(struct qmsg *qm, int idx, int last);
static void timer_fire(evutil_socket_t fd, short what, void *arg);
static void timer_arm(struct qmsg *qm, int64_t at_ms);
static void remote_start_all(struct qmsg *qm);
static void remote_done_cb(void *arg, const struct remote_result *results, int n);
static void wake_starved(struct queue *q);
static void resume_one(const char *id, void *arg);
static void ctl_cb(const char *id, char op, void *arg);

/* ---- lifetime ---- */

static struct queue *queue_acquire(void)
{
    pthread_mutex_lock(&global_lock);
    struct queue *q = the_queue;
    if (q)
        queue_ref(q);
    pthread_mutex_unlock(&global_lock);
    return q;
}

static void queue_ref(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->refs++;
    pthread_mutex_unlock(&q->lock);
}

static void queue_release(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    int last = --q->refs == 0;
    pthread_mutex_unlock(&q->lock);
    if (!last)
        return;
    spool_close(&q->spool);
    sched_slots_free(&q->slots);
    pthread_mutex_destroy(&q->lock);
    free(q->data_dir);
    free(q->hostname);
    free(q);
}

static void stats_add(struct queue *q, unsigned long *field, long delta)
{
    pthread_mutex_lock(&q->lock);
    *field += (unsigned long)delta;
    pthread_mutex_unlock(&q->lock);
}

static void inflight_add(struct queue *q, int delta)
{
    pthread_mutex_lock(&q->lock);
    q->inflight += delta;
    pthread_mutex_unlock(&q->lock);
}

static int is_stopped(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    int stopped = q->stopped;
    pthread_mutex_unlock(&q->lock);
    return stopped;
}

static unsigned unit_ms(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    unsigned u = q->policy.unit_ms;
    pthread_mutex_unlock(&q->lock);
    return u;
}

/* The policy with the current unit (a copy, for a worker). */
static void policy_get(struct queue *q, struct sched_policy *p_r)
{
    pthread_mutex_lock(&q->lock);
    *p_r = q->policy;
    pthread_mutex_unlock(&q->lock);
}

void queue_set_retry_unit_ms(unsigned ms)
{
    configured_retry_unit_ms = ms ? ms : 1;
    struct queue *q = queue_acquire();
    if (q) {
        pthread_mutex_lock(&q->lock);
        q->policy.unit_ms = configured_retry_unit_ms;
        pthread_mutex_unlock(&q->lock);
        queue_release(q);
    }
}

void queue_set_config(const struct config *cfg)
{
    configured_cfg = cfg;
    free(configured_hostname);
    configured_hostname = cfg && cfg->hostname ? xstrdup(cfg->hostname) : NULL;
    if (cfg) {
        sched_policy_from_config(&configured_policy, cfg);
        configured_policy_set = 1;
    }
}

void queue_set_policy(const struct sched_policy *p)
{
    configured_policy = *p;
    configured_policy_set = 1;
    configured_retry_unit_ms = p->unit_ms ? p->unit_ms : 1;
}

int queue_start(const char *data_dir, struct worker_pool *pool, struct loop *loop,
                const char **error_r)
{
    pthread_mutex_lock(&global_lock);
    int running = the_queue != NULL;
    pthread_mutex_unlock(&global_lock);
    if (running) {
        *error_r = "queue already started";
        return -1;
    }
    struct spool *sp = spool_open(data_dir, error_r);
    if (!sp)
        return -1;
    struct queue *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    q->refs = 1;
    q->data_dir = xstrdup(data_dir);
    q->hostname = xstrdup(configured_hostname ? configured_hostname : "localhost");
    q->cfg = configured_cfg;
    q->spool = sp;
    q->pool = pool;
    q->loop = loop;
    q->slots = sched_slots_new();
    if (configured_policy_set)
        q->policy = configured_policy;
    else
        sched_policy_default(&q->policy);
    q->policy.unit_ms = configured_retry_unit_ms;
    q->inbox_ev = event_new(loop_base(loop), -1, 0, inbox_run, q);
    if (!q->inbox_ev) {
        *error_r = "cannot create the queue event";
        queue_release(q);
        return -1;
    }
    struct config defaults;
    const struct config *rcfg = q->cfg;
    if (!rcfg) {
        config_defaults(&defaults, 1);
        rcfg = &defaults;
    }
    int rrc = remote_start(rcfg, loop, error_r);
    if (!q->cfg)
        config_free(&defaults);
    if (rrc < 0) {
        event_free(q->inbox_ev);
        queue_release(q);
        return -1;
    }
    q->remote_started = 1;
    pthread_mutex_lock(&global_lock);
    the_queue = q;
    pthread_mutex_unlock(&global_lock);

    rs_remove_orphans(spool_dir(sp));
    const char *cerr = NULL;
    q->ctl = qctl_watch_start(data_dir, loop_base(loop), ctl_cb, q, &cerr);
    if (!q->ctl)
        log_warn("queue", "event=control-unavailable error=\"%s\"", cerr ? cerr : "?");
    int before = q->inflight;
    if (spool_scan(sp, resume_one, q) < 0)
        log_error("queue", "event=scan-failed dir=%s", spool_dir(sp));
    qctl_watch_scan(q->ctl);   /* requests made while no server ran */
    log_info("queue", "event=started dir=%s resumed=%d", spool_dir(sp), q->inflight - before);
    return 0;
}

void queue_stop(void)
{
    pthread_mutex_lock(&global_lock);
    struct queue *q = the_queue;
    the_queue = NULL;
    pthread_mutex_unlock(&global_lock);
    if (!q)
        return;

    pthread_mutex_lock(&q->lock);
    q->stopped = 1;
    struct inbox_item *it = q->inbox_head;
    q->inbox_head = q->inbox_tail = NULL;
    event_free(q->inbox_ev);
    q->inbox_ev = NULL;
    pthread_mutex_unlock(&q->lock);
    qctl_watch_stop(&q->ctl);
    while (it) {
        struct inbox_item *next = it->next;
        spool_msg_free(&it->msg);   /* durable in the spool: resumed next start */
        free(it);
        it = next;
    }
    while (q->msgs) {
        struct qmsg *qm = q->msgs;
        qmsg_unlist(qm);
        if (qm->timer) {
            event_free(qm->timer);
            qm->timer = NULL;
        }
        if (!qm->in_job && qm->outstanding == 0)
            qmsg_free(qm);   /* else round_done / remote_done_cb frees it */
    }
    /* Attempts still running are answered now (the contract: DONE exactly
     * once); their callbacks see the queue stopped. */
    if (q->remote_started)
        remote_stop();
    log_info("queue", "event=stopped");
    queue_release(q);
}

/* ---- submission ---- */

void queue_submit(struct spool_msg *msg, struct loop *loop, queue_done_fn done, void *arg)
{
    struct submit_job *j = xcalloc(1, sizeof *j);
    j->msg = msg;
    j->done = done;
    j->arg = arg;
    if (!msg->id[0])
        spool_new_id(msg->id);
    if (!msg->arrived)
        msg->arrived = time(NULL);
    memcpy(j->id, msg->id, sizeof j->id);
    j->q = queue_acquire();
    if (!j->q) {
        /* Still answer on the loop, never from inside queue_submit. */
        static const struct timeval now = { 0, 0 };
        if (event_base_once(loop_base(loop), -1, EV_TIMEOUT, submit_refused, j, &now) < 0)
            abort();
        return;
    }
    worker_submit(j->q->pool, loop, submit_work, submit_done, j);
}

static void submit_refused(evutil_socket_t fd, short what, void *arg)
{
    struct submit_job *j = arg;
    if (j->done)
        j->done(j->arg, -1, j->id, "queue not running");
    spool_msg_free(&j->msg);
    free(j);
}

/* Worker: spool_commit and the accounting; the caller posts the message. */
static int commit_and_post(struct queue *q, struct spool_msg *msg, const char **error_r)
{
    if (spool_commit(q->spool, msg, error_r) < 0) {
        log_error("queue", "event=commit-failed queue=%s error=\"%s\"", msg->id, *error_r);
        return -1;
    }
    char qs[LOG_QSIZE];
    const char *s = msg->sender ? msg->sender : "";
    log_info("queue", "event=accepted queue=%s from=%s nrcpt=%d size=%zu", msg->id,
             log_q(qs, sizeof qs, s, strlen(s)), msg->nrcpt, msg->len);
    stats_add(q, &q->stats.accepted, 1);
    inflight_add(q, 1);
    return 0;
}

static void submit_work(void *arg)
{
    struct submit_job *j = arg;
    if (is_stopped(j->q)) {
        j->result = -1;
        j->error = "queue stopping";
        return;
    }
    j->result = commit_and_post(j->q, j->msg, &j->error);
}

static void submit_done(void *arg)
{
    struct submit_job *j = arg;
    if (j->done)
        j->done(j->arg, j->result, j->id, j->result == 0 ? NULL : j->error);
    if (j->result == 0)
        inbox_post(j->q, j->msg);
    else
        spool_msg_free(&j->msg);
    queue_release(j->q);
    free(j);
}

/* Any thread: hands a committed message to the queue loop. */
static void inbox_post(struct queue *q, struct spool_msg *msg)
{
    struct inbox_item *it = xcalloc(1, sizeof *it);
    it->msg = msg;
    pthread_mutex_lock(&q->lock);
    if (q->stopped) {
        pthread_mutex_unlock(&q->lock);
        spool_msg_free(&it->msg);
        free(it);
        return;
    }
    if (q->inbox_tail)
        q->inbox_tail->next = it;
    else
        q->inbox_head = it;
    q->inbox_tail = it;
    event_active(q->inbox_ev, 0, 0);
    pthread_mutex_unlock(&q->lock);
}

static void inbox_run(evutil_socket_t fd, short what, void *arg)
{
    struct queue *q = arg;
    pthread_mutex_lock(&q->lock);
    struct inbox_item *it = q->inbox_head;
    q->inbox_head = q->inbox_tail = NULL;
    pthread_mutex_unlock(&q->lock);
    while (it) {
        struct inbox_item *next = it->next;
        struct qmsg *qm = qmsg_new(q, it->msg->id, it->msg);
        qm->fresh = 1;
        free(it);
        round_start(qm);
        it = next;
    }
}

static void resume_one(const char *id, void *arg)
{
    struct queue *q = arg;
    inflight_add(q, 1);
    struct qmsg *qm = qmsg_new(q, id, NULL);
    qm->has_state = 1;
    round_start(qm);
}

/* ---- queued messages (queue loop only) ---- */

static struct qmsg *qmsg_new(struct queue *q, const char *id, struct spool_msg *msg)
{
    struct qmsg *qm = xcalloc(1, sizeof *qm);
    qm->q = q;
    snprintf(qm->id, sizeof qm->id, "%s", id);
    qm->msg = msg;
    qm->next = q->msgs;
    if (q->msgs)
        q->msgs->prev = qm;
    q->msgs = qm;
    qm->listed = 1;
    return qm;
}

static void qmsg_unlist(struct qmsg *qm)
{
    if (!qm->listed)
        return;
    if (qm->prev)
        qm->prev->next = qm->next;
    else
        qm->q->msgs = qm->next;
    if (qm->next)
        qm->next->prev = qm->prev;
    qm->prev = qm->next = NULL;
    qm->listed = 0;
}

static void qmsg_clear_results(struct qmsg *qm)
{
    for (int i = 0; i < qm->nres; i++) {
        free(qm->res[i].reply);
        free(qm->res[i].host);
    }
    free(qm->res);
    qm->res = NULL;
    qm->nres = 0;
}

static void qmsg_free(struct qmsg *qm)
{
    if (qm->timer)
        event_free(qm->timer);
    spool_msg_free(&qm->msg);
    qmsg_clear_results(qm);
    free(qm->due);
    free(qm);
}

static void round_start(struct qmsg *qm)
{
    if (qm->timer)
        evtimer_del(qm->timer);
    if (qm->kick)
        qm->has_state = 1;   /* a request wrote the state file */
    qm->in_job = 1;
    qm->kick = 0;
    queue_ref(qm->q);
    worker_submit(qm->q->pool, qm->q->loop, round_work, round_done, qm);
}

/* ---- the round (worker) ---- */

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
static int queue_dsn(struct round *r, enum dsn_kind kind, const struct dsn_rcpt *rcpts, int n,
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
    if (commit_and_post(q, d, &err) < 0) {
        spool_msg_free(&d);
        return -1;
    }
    log_info("queue", "event=dsn-queued queue=%s dsn=%s kind=%s rcpts=%d to=%s", m->id, d->id,
             kind == DSN_FAILED ? "failed" : "delayed", n, qs);
    inbox_post(q, d);
    (void)p;
    return 0;
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
    stats_add(r->qm->q, &r->qm->q->stats.failed, r->nfail);
    if (!r->m->sender || !r->m->sender[0]) {
        log_info("queue", "event=dsn-suppressed queue=%s reason=null-sender rcpts=%d",
                 r->m->id, r->nfail);
        return;
    }
    queue_dsn(r, DSN_FAILED, r->fails, r->nfail, p);
}

/* Once per message: the "delayed" DSN for the remote recipients that have
 * been deferred, when the message is older than delay_warning. */
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
        stats_add(qm->q, &qm->q->stats.failed, 1);
        round_defer(r, i, 1, 451, "4.3.0", "local delivery failed (see the server log)", NULL,
                    rs_now_ms(), p);
    }
}

/* The remote recipients due now, and the next time anything is due. */
static void round_plan(struct round *r, const struct sched_policy *p)
{
    struct qmsg *qm = r->qm;
    struct spool_msg *m = r->m;
    int remote = 0;
    int64_t wake = 0;
    free(qm->due);
    qm->due = xcalloc((size_t)m->nrcpt, sizeof *qm->due);
    qm->ndue = 0;
    for (int i = 0; i < m->nrcpt; i++) {
        if (rcpt_finished(r, i))
            continue;
        const struct rs_rcpt *s = &r->st->r[i];
        if (!m->rcpts[i].account) {
            remote++;
            if (!qm->remote_logged && s->attempts == 0) {
                char qa[LOG_QSIZE];
                log_rcpt(qa, sizeof qa, m->rcpts[i].address);
                log_info("queue", "event=queued-remote queue=%s rcpt=%s", m->id, qa);
            }
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
    stats_add(qm->q, &qm->q->stats.pending_remote, remote - qm->remote_pending);
    qm->remote_pending = remote;
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
        qm->wake_ms = r->now + 5 * (int64_t)unit_ms(q);
        return;
    }
    if (qm->has_state || r->nrec > 0)
        rs_remove(spool_dir(q->spool), qm->id);
    if (event)
        log_info("queue", "event=%s queue=%s", event, qm->id);
    log_info("queue", "event=removed queue=%s", qm->id);
    qm->outcome = OUT_REMOVED;
}

static void round_work(void *arg)
{
    struct qmsg *qm = arg;
    struct queue *q = qm->q;
    if (is_stopped(q)) {
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
    struct sched_policy p;
    policy_get(q, &p);
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
    qmsg_clear_results(qm);
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
    if (store_deliver(q->data_dir, r->account, "INBOX", m->id, m->data, m->len, m->arrived,
                      &uid, &dup, &error) < 0) {
        log_error("queue", "event=delivery-failed queue=%s rcpt=%s account=%s error=\"%s\"",
                  m->id, qa, qc, error);
        return -1;
    }
    if (dup)
        log_info("queue", "event=duplicate-skipped queue=%s rcpt=%s account=%s uid=%u"
                 " mailbox=INBOX", m->id, qa, qc, uid);
    else
        log_info("queue", "event=delivered queue=%s rcpt=%s account=%s uid=%u mailbox=INBOX",
                 m->id, qa, qc, uid);
    if (!last && spool_mark_done(q->spool, m->id, idx) < 0) {
        /* The store has it; a retry will find the duplicate and mark again. */
        log_error("queue", "event=mark-done-failed queue=%s rcpt=%s", m->id, qa);
        return -1;
    }
    r->done = 1;
    if (!dup)
        stats_add(q, &q->stats.delivered_local, 1);
    return 0;
}

/* ---- back on the loop ---- */

static void round_done(void *arg)
{
    struct qmsg *qm = arg;
    struct queue *q = qm->q;
    qm->in_job = 0;
    if (is_stopped(q) || qm->outcome == OUT_SKIPPED) {
        qmsg_unlist(qm);
        if (qm->outstanding == 0)
            qmsg_free(qm);
        queue_release(q);
        return;
    }
    switch (qm->outcome) {
    case OUT_REMOVED:
    case OUT_GONE:
        stats_add(q, &q->stats.pending_remote, -qm->remote_pending);
        inflight_add(q, -1);
        qmsg_unlist(qm);
        qmsg_free(qm);
        break;
    case OUT_WAIT:
        if (qm->ndue > 0)
            remote_start_all(qm);
        if (qm->outstanding == 0)
            round_finish(qm);
        break;
    case OUT_SKIPPED:
        break;
    }
    queue_release(q);
}

/* Nothing in flight for QM: sleep until its next time (or go again). */
static void round_finish(struct qmsg *qm)
{
    spool_msg_free(&qm->msg);
    if (qm->kick) {
        round_start(qm);
        return;
    }
    if (qm->wake_ms)
        timer_arm(qm, qm->wake_ms);
}

static void timer_arm(struct qmsg *qm, int64_t at_ms)
{
    int64_t delay = at_ms - rs_now_ms();
    if (delay < 0)
        delay = 0;
    struct timeval tv = { .tv_sec = (time_t)(delay / 1000),
                          .tv_usec = (suseconds_t)(delay % 1000) * 1000 };
    if (!qm->timer)
        qm->timer = evtimer_new(loop_base(qm->q->loop), timer_fire, qm);
    if (!qm->timer || evtimer_add(qm->timer, &tv) < 0)
        log_error("queue", "event=retry-timer-failed queue=%s", qm->id);
}

static void timer_fire(evutil_socket_t fd, short what, void *arg)
{
    struct qmsg *qm = arg;
    if (!qm->in_job && qm->outstanding == 0)
        round_start(qm);
}

static void domain_of(const char *address, char *out, size_t outsz)
{
    const char *at = strrchr(address, '@');
    snprintf(out, outsz, "%s", at ? at + 1 : "");
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
}

/* The due remote recipients, one remote_deliver per destination domain, as
 * far as the slots allow; the rest wait for a slot (qm->starved). */
static void remote_start_all(struct qmsg *qm)
{
    struct queue *q = qm->q;
    struct spool_msg *m = qm->msg;
    int *taken = xcalloc((size_t)qm->ndue, sizeof *taken);
    qm->starved = 0;
    for (int a = 0; a < qm->ndue; a++) {
        if (taken[a])
            continue;
        char dom[256], other[256];
        domain_of(m->rcpts[qm->due[a]].address, dom, sizeof dom);
        if (!sched_slot_take(q->slots, &q->policy, dom)) {
            qm->starved = 1;
            for (int b = a; b < qm->ndue; b++) {
                domain_of(m->rcpts[qm->due[b]].address, other, sizeof other);
                if (strcmp(dom, other) == 0)
                    taken[b] = 1;
            }
            continue;
        }
        struct qattempt *at = xcalloc(1, sizeof *at);
        at->qm = qm;
        at->domain = xstrdup(dom);
        at->idx = xcalloc((size_t)qm->ndue, sizeof *at->idx);
        for (int b = a; b < qm->ndue; b++) {
            domain_of(m->rcpts[qm->due[b]].address, other, sizeof other);
            if (!taken[b] && strcmp(dom, other) == 0) {
                taken[b] = 1;
                at->idx[at->n++] = qm->due[b];
            }
        }
        qm->outstanding++;
        queue_ref(q);
        struct remote_attempt ra = { .msg = m, .rcpts = at->idx, .nrcpt = at->n,
                                     .domain = at->domain };
        remote_deliver(&ra, remote_done_cb, at);
    }
    free(taken);
    qm->ndue = 0;
}

static void remote_done_cb(void *arg, const struct remote_result *results, int n)
{
    struct qattempt *at = arg;
    struct qmsg *qm = at->qm;
    struct queue *q = qm->q;
    sched_slot_release(q->slots, at->domain);
    qm->outstanding--;
    int64_t now = rs_now_ms();
    qm->res = xrealloc(qm->res, xmul((size_t)(qm->nres + n) + 1, sizeof *qm->res));
    for (int i = 0; i < n; i++) {
        const struct remote_result *x = &results[i];
        int ok = 0;
        for (int k = 0; k < at->n; k++)
            ok |= at->idx[k] == x->idx;
        if (!ok)
            continue;   /* not a recipient of this attempt: ignored */
        struct qres *c = &qm->res[qm->nres++];
        c->idx = x->idx;
        c->outcome = x->outcome;
        c->code = x->code;
        snprintf(c->enhanced, sizeof c->enhanced, "%s", x->enhanced);
        c->reply = x->reply ? xstrdup(x->reply) : NULL;
        c->host = x->remote_host ? xstrdup(x->remote_host) : NULL;
        c->t_ms = now;
    }
    free(at->domain);
    free(at->idx);
    free(at);
    if (is_stopped(q)) {
        if (qm->outstanding == 0 && !qm->in_job && !qm->listed)
            qmsg_free(qm);
        queue_release(q);
        return;
    }
    if (qm->outstanding == 0) {
        if (qm->nres > 0 || qm->kick)
            round_start(qm);   /* records the results */
        else
            round_finish(qm);
    }
    wake_starved(q);
    queue_release(q);
}

/* A slot came free: messages that waited for one go again. */
static void wake_starved(struct queue *q)
{
    for (struct qmsg *qm = q->msgs; qm; qm = qm->next)
        if (qm->starved && !qm->in_job && qm->outstanding == 0) {
            qm->starved = 0;
            round_start(qm);
        }
}

/* ---- control requests (queue loop) ---- */

/* Loop only; QM's fields are the worker's while a round runs, so a busy
 * message just gets the flag and goes again when it is done. */
static void kick_one(struct qmsg *qm)
{
    qm->kick = 1;
    if (!qm->in_job && qm->outstanding == 0)
        round_start(qm);
}

void queue_control_kick(const char *id)
{
    struct queue *q = queue_acquire();
    if (!q)
        return;
    for (struct qmsg *qm = q->msgs; qm; qm = qm->next)
        if (!id || strcmp(qm->id, id) == 0)
            kick_one(qm);
    queue_release(q);
}

static void ctl_cb(const char *id, char op, void *arg)
{
    const char *ev = op == QCTL_HOLD ? "held" : op == QCTL_RELEASE ? "released"
                   : op == QCTL_RETRY ? "retry-requested" : op == QCTL_BOUNCE ? "bounce-requested"
                   : op == QCTL_DELETE ? "delete-requested" : "control-request";
    log_info("queue", "event=%s queue=%s", ev, id);
    queue_control_kick(id);
}

/* ---- status ---- */

void queue_get_stats(struct queue_stats *st)
{
    memset(st, 0, sizeof *st);
    struct queue *q = queue_acquire();
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    *st = q->stats;
    pthread_mutex_unlock(&q->lock);
    queue_release(q);
}

int queue_inflight(void)
{
    struct queue *q = queue_acquire();
    if (!q)
        return 0;
    pthread_mutex_lock(&q->lock);
    int n = q->inflight;
    pthread_mutex_unlock(&q->lock);
    queue_release(q);
    return n;
}
