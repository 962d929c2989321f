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
 * A round (queue_round.c, on a worker) does everything that touches files for
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
#include "queue/queue_int.h"
#include "queue/journal.h"
#include "queue/qctl.h"
#include "queue/rcptstate.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/worker.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* An answered attempt's destination slot and connection, kept until its
 * results are recorded. */
struct qhold {
    struct qhold *next;
    char *domain;
    struct remote_hold *h;
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
    struct journal_seg *seg;
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

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static struct queue *the_queue;
static struct sched_policy configured_policy;
static int configured_policy_set;
static unsigned configured_retry_unit_ms = 1000;
static char *configured_hostname;
static const struct config *configured_cfg;

static struct queue *queue_acquire(void);
static void log_accepted(const struct spool_msg *msg);
static void submit_work(void *arg);
static void submit_done(void *arg);
static void submit_refused(evutil_socket_t fd, short what, void *arg);
static int all_local(const struct spool_msg *m);
static void inbox_run(evutil_socket_t fd, short what, void *arg);
static struct qmsg *qmsg_new(struct queue *q, const char *id, struct spool_msg *msg);
static void qmsg_unlist(struct qmsg *qm);
static void qmsg_free(struct qmsg *qm);
static void round_done(void *arg);
static void round_finish(struct qmsg *qm);
static void timer_fire(evutil_socket_t fd, short what, void *arg);
static void timer_arm(struct qmsg *qm, int64_t at_ms);
static void remote_start_all(struct qmsg *qm);
static void remote_done_cb(void *arg, const struct remote_result *results, int n,
                           struct remote_hold *hold);
static int holds_release(struct qmsg *qm);
static void wake_starved(struct queue *q);
static void resume_one(const char *id, void *arg);
static int replay_one(struct spool_msg *m, struct journal_seg *seg, void *arg);
static void start_fresh(struct queue *q, struct spool_msg *msg, struct journal_seg *seg);
static void journal_done(void *arg, int result, struct journal_seg *seg, const char *error);
static void queue_inbox_post_seg(struct queue *q, struct spool_msg *msg, struct journal_seg *seg);
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

void queue_ref(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->refs++;
    pthread_mutex_unlock(&q->lock);
}

void queue_release(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    int last = --q->refs == 0;
    pthread_mutex_unlock(&q->lock);
    if (!last)
        return;
    spool_close(&q->spool);
    sched_slots_free(&q->slots);
    if (q->own_cfg) {
        config_free(q->own_cfg);
        free(q->own_cfg);
    }
    pthread_mutex_destroy(&q->lock);
    free(q->data_dir);
    free(q->hostname);
    free(q);
}

void queue_stats_add(struct queue *q, unsigned long *field, long delta)
{
    pthread_mutex_lock(&q->lock);
    *field += (unsigned long)delta;
    pthread_mutex_unlock(&q->lock);
}

void queue_depth_set(struct qmsg *qm, enum queue_depth state)
{
    struct queue *q = qm->q;
    if (state == qm->depth)
        return;
    pthread_mutex_lock(&q->lock);
    if (qm->depth != QD_NONE)
        q->stats.depth[qm->depth]--;
    if (state != QD_NONE)
        q->stats.depth[state]++;
    pthread_mutex_unlock(&q->lock);
    qm->depth = state;
}

void queue_inflight_add(struct queue *q, int delta)
{
    pthread_mutex_lock(&q->lock);
    q->inflight += delta;
    pthread_mutex_unlock(&q->lock);
}

int queue_is_stopped(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    int stopped = q->stopped;
    pthread_mutex_unlock(&q->lock);
    return stopped;
}

unsigned queue_unit_ms(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    unsigned u = q->policy.unit_ms;
    pthread_mutex_unlock(&q->lock);
    return u;
}

/* The policy with the current unit (a copy, for a worker). */
void queue_policy_get(struct queue *q, struct sched_policy *p_r)
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
    const char *jerr = NULL;
    q->journal = journal_open(data_dir, &jerr);
    if (!q->journal)
        log_warn("queue", "event=journal-unavailable error=\"%s\" hint=\"every message gets a"
                 " queue file\"", jerr ? jerr : "?");
    q->inbox_ev = event_new(loop_base(loop), -1, 0, inbox_run, q);
    if (!q->inbox_ev) {
        *error_r = "cannot create the queue event";
        queue_release(q);
        return -1;
    }
    const struct config *rcfg = q->cfg;
    if (!rcfg) {
        /* The transport keeps the config it starts with: it lives as long
         * as the queue. */
        q->own_cfg = xcalloc(1, sizeof *q->own_cfg);
        config_defaults(q->own_cfg, 1);
        rcfg = q->own_cfg;
    }
    int enabled = rcfg->outbound.enabled;
    int rrc = enabled ? remote_start(rcfg, loop, error_r) : 0;
    if (rrc < 0) {
        event_free(q->inbox_ev);
        queue_release(q);
        return -1;
    }
    q->remote_started = enabled;
    if (enabled)
        remote_set_store(data_dir, pool);
    if (!enabled)
        log_info("outbound", "event=disabled hint=\"[outbound] enabled = no: remote recipients"
                 " stay queued\"");
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
    if (q->journal)
        journal_replay(q->journal, replay_one, q);
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
    /* Appends still waiting are committed and answered; what the journal
     * holds is replayed at the next start. */
    pthread_mutex_lock(&q->lock);
    struct journal *jn = q->journal;
    q->journal = NULL;
    pthread_mutex_unlock(&q->lock);
    journal_close(&jn);
    queue_local_stop(q);
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
    if (j->q->journal && all_local(msg)) {
        journal_append(j->q->journal, msg, loop, journal_done, j);
        return;
    }
    worker_submit(j->q->pool, loop, submit_work, submit_done, j);
}

/* Journal messages: every recipient is a local account (remote ones need
 * the state file and retries of a queue file of their own). */
static int all_local(const struct spool_msg *m)
{
    if (m->nrcpt < 1)
        return 0;
    for (int i = 0; i < m->nrcpt; i++)
        if (!m->rcpts[i].account || !m->rcpts[i].account[0])
            return 0;
    return 1;
}

static void log_accepted(const struct spool_msg *msg)
{
    char qs[LOG_QSIZE];
    const char *s = msg->sender ? msg->sender : "";
    log_info("queue", "event=accepted queue=%s from=%s nrcpt=%d size=%zu", msg->id,
             log_q(qs, sizeof qs, s, strlen(s)), msg->nrcpt, msg->len);
}

/* The submitter's loop: the journal made the message durable (or not). */
static void journal_done(void *arg, int result, struct journal_seg *seg, const char *error)
{
    struct submit_job *j = arg;
    if (result == 0) {
        log_accepted(j->msg);
        queue_stats_add(j->q, &j->q->stats.accepted, 1);
        queue_inflight_add(j->q, 1);
    } else {
        log_error("queue", "event=commit-failed queue=%s error=\"%s\"", j->id, error);
    }
    if (j->done)
        j->done(j->arg, result, j->id, result == 0 ? NULL : error);
    if (result == 0)
        queue_inbox_post_seg(j->q, j->msg, seg);
    else
        spool_msg_free(&j->msg);
    queue_release(j->q);
    free(j);
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
int queue_commit(struct queue *q, struct spool_msg *msg, const char **error_r)
{
    if (spool_commit(q->spool, msg, error_r) < 0) {
        log_error("queue", "event=commit-failed queue=%s error=\"%s\"", msg->id, *error_r);
        return -1;
    }
    log_accepted(msg);
    queue_stats_add(q, &q->stats.accepted, 1);
    queue_inflight_add(q, 1);
    return 0;
}

static void submit_work(void *arg)
{
    struct submit_job *j = arg;
    if (queue_is_stopped(j->q)) {
        j->result = -1;
        j->error = "queue stopping";
        return;
    }
    j->result = queue_commit(j->q, j->msg, &j->error);
}

static void submit_done(void *arg)
{
    struct submit_job *j = arg;
    if (j->done)
        j->done(j->arg, j->result, j->id, j->result == 0 ? NULL : j->error);
    if (j->result == 0)
        queue_inbox_post(j->q, j->msg);
    else
        spool_msg_free(&j->msg);
    queue_release(j->q);
    free(j);
}

/* Any thread: hands a committed message to the queue loop. */
void queue_inbox_post(struct queue *q, struct spool_msg *msg)
{
    queue_inbox_post_seg(q, msg, NULL);
}

/* The same for a journal message (SEG: its record). */
static void queue_inbox_post_seg(struct queue *q, struct spool_msg *msg, struct journal_seg *seg)
{
    struct inbox_item *it = xcalloc(1, sizeof *it);
    it->msg = msg;
    it->seg = seg;
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
        start_fresh(q, it->msg, it->seg);
        free(it);
        it = next;
    }
}

static void resume_one(const char *id, void *arg)
{
    struct queue *q = arg;
    queue_inflight_add(q, 1);
    struct qmsg *qm = qmsg_new(q, id, NULL);
    qm->has_state = 1;
    queue_round_start(qm);
}

/* A record of the journal found at start: delivered again (idempotently),
 * unless it was copied to a queue file of its own, which spool_scan took. */
static int replay_one(struct spool_msg *m, struct journal_seg *seg, void *arg)
{
    struct queue *q = arg;
    char *path = xasprintf("%s/%s", spool_dir(q->spool), m->id);
    struct stat st;
    int has_file = stat(path, &st) == 0;
    free(path);
    if (has_file || !all_local(m)) {
        spool_msg_free(&m);
        return 0;
    }
    queue_inflight_add(q, 1);
    start_fresh(q, m, seg);
    return 1;
}

/* A message just made durable: a journal message (SEG set) goes to the
 * per-account batches, any other gets its first round. */
static void start_fresh(struct queue *q, struct spool_msg *msg, struct journal_seg *seg)
{
    struct qmsg *qm = qmsg_new(q, msg->id, msg);
    qm->fresh = 1;
    qm->seg = seg;
    if (seg)
        queue_local_add(qm);
    else
        queue_round_start(qm);
}

void queue_resume_committed(const char *id, void *arg)
{
    struct queue *q = arg;
    if (!queue_is_stopped(q))
        resume_one(id, q);
}

/* ---- queued messages (queue loop only) ---- */

static struct qmsg *qmsg_new(struct queue *q, const char *id, struct spool_msg *msg)
{
    struct qmsg *qm = xcalloc(1, sizeof *qm);
    qm->q = q;
    snprintf(qm->id, sizeof qm->id, "%s", id);
    qm->msg = msg;
    qm->accepted_us = msg ? metrics_now_us() : 0;
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

void queue_clear_results(struct qmsg *qm)
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
    holds_release(qm);
    if (qm->timer)
        event_free(qm->timer);
    spool_msg_free(&qm->msg);
    queue_clear_results(qm);
    free(qm->due);
    free(qm);
}

void queue_qmsg_drop(struct qmsg *qm)
{
    qmsg_unlist(qm);
    qmsg_free(qm);
}

void queue_round_start(struct qmsg *qm)
{
    if (qm->timer)
        evtimer_del(qm->timer);
    if (qm->kick)
        qm->has_state = 1;   /* a request wrote the state file */
    qm->in_job = 1;
    qm->kick = 0;
    queue_ref(qm->q);
    worker_submit(qm->q->pool, qm->q->loop, queue_round_work, round_done, qm);
}

/* ---- back on the loop ---- */

static void round_done(void *arg)
{
    struct qmsg *qm = arg;
    struct queue *q = qm->q;
    qm->in_job = 0;
    /* the results this round recorded free their slots and connections */
    int freed = holds_release(qm);
    if (queue_is_stopped(q) || qm->outcome == OUT_SKIPPED) {
        qmsg_unlist(qm);
        if (qm->outstanding == 0)
            qmsg_free(qm);
        queue_release(q);
        return;
    }
    if (qm->seg && qm->promoted) {
        journal_release(q->journal, qm->seg);   /* it has a queue file now */
        qm->seg = NULL;
    }
    switch (qm->outcome) {
    case OUT_REMOVED:
    case OUT_GONE:
        queue_stats_add(q, &q->stats.pending_remote, -qm->remote_pending);
        queue_depth_set(qm, QD_NONE);
        queue_inflight_add(q, -1);
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
    if (freed)
        wake_starved(q);
    queue_release(q);
}

/* Nothing in flight for QM: sleep until its next time (or go again). */
static void round_finish(struct qmsg *qm)
{
    if (!qm->seg || qm->promoted)
        spool_msg_free(&qm->msg);   /* else the journal holds its only copy */
    if (qm->kick) {
        queue_round_start(qm);
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
        queue_round_start(qm);
}

/* A due recipient with its destination domain (lower case). */
struct due_rcpt {
    char *domain;
    int idx;
};

static char *domain_of(const char *address)
{
    const char *at = strrchr(address, '@');
    char *d = xstrdup(at ? at + 1 : "");
    for (char *c = d; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return d;
}

static int cmp_due(const void *a, const void *b)
{
    const struct due_rcpt *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* The due remote recipients sorted by domain, then one remote_deliver per
 * domain as far as the slots allow; the rest wait for a slot (qm->starved). */
static void remote_start_all(struct qmsg *qm)
{
    struct queue *q = qm->q;
    struct spool_msg *m = qm->msg;
    int n = qm->ndue;
    struct due_rcpt *due = xcalloc((size_t)n + 1, sizeof *due);
    for (int i = 0; i < n; i++) {
        due[i].idx = qm->due[i];
        due[i].domain = domain_of(m->rcpts[qm->due[i]].address);
    }
    qsort(due, (size_t)n, sizeof *due, cmp_due);
    qm->starved = 0;
    for (int a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && strcmp(due[a].domain, due[b].domain) == 0; b++) {
        }
        if (!sched_slot_take(q->slots, &q->policy, due[a].domain)) {
            qm->starved = 1;
            continue;
        }
        struct qattempt *at = xcalloc(1, sizeof *at);
        at->qm = qm;
        at->domain = xstrdup(due[a].domain);
        at->n = b - a;
        at->idx = xcalloc((size_t)at->n, sizeof *at->idx);
        for (int k = a; k < b; k++)
            at->idx[k - a] = due[k].idx;
        qm->outstanding++;
        queue_ref(q);
        struct remote_attempt ra = { .msg = m, .rcpts = at->idx, .nrcpt = at->n,
                                     .domain = at->domain };
        remote_deliver(&ra, remote_done_cb, at);
    }
    for (int i = 0; i < n; i++)
        free(due[i].domain);
    free(due);
    qm->ndue = 0;
}

static void remote_done_cb(void *arg, const struct remote_result *results, int n,
                           struct remote_hold *hold)
{
    struct qattempt *at = arg;
    struct qmsg *qm = at->qm;
    struct queue *q = qm->q;
    struct qhold *qh = xcalloc(1, sizeof *qh);
    qh->domain = at->domain;   /* its slot is released with the hold */
    qh->h = hold;
    qh->next = qm->holds;
    qm->holds = qh;
    qm->outstanding--;
    int64_t now = rs_now_ms();
    qm->res = xrealloc(qm->res, xmul((size_t)(qm->nres + n) + 1, sizeof *qm->res));
    /* only the recipients of this attempt, each once */
    int nr = qm->msg ? qm->msg->nrcpt : 0;
    unsigned char *mine = xcalloc((size_t)nr + 1, 1);
    for (int k = 0; k < at->n; k++)
        if (at->idx[k] >= 0 && at->idx[k] < nr)
            mine[at->idx[k]] = 1;
    for (int i = 0; i < n; i++) {
        const struct remote_result *x = &results[i];
        if (x->idx < 0 || x->idx >= nr || !mine[x->idx])
            continue;   /* not a recipient of this attempt (or twice): ignored */
        mine[x->idx] = 0;
        metrics_delivery(x->outcome == RCPT_DELIVERED ? MD_REMOTE_DELIVERED
                         : x->outcome == RCPT_DEFERRED ? MD_REMOTE_DEFERRED : MD_REMOTE_FAILED);
        if (x->outcome == RCPT_DELIVERED && qm->accepted_us)
            metrics_observe(MH_DELIVERY, metrics_since_s(qm->accepted_us));
        struct qres *c = &qm->res[qm->nres++];
        c->idx = x->idx;
        c->outcome = x->outcome;
        c->code = x->code;
        snprintf(c->enhanced, sizeof c->enhanced, "%s", x->enhanced);
        c->reply = x->reply ? xstrdup(x->reply) : NULL;
        c->host = x->remote_host ? xstrdup(x->remote_host) : NULL;
        c->t_ms = now;
    }
    free(mine);
    free(at->idx);
    free(at);
    if (queue_is_stopped(q)) {
        holds_release(qm);
        if (qm->outstanding == 0 && !qm->in_job && !qm->listed)
            qmsg_free(qm);
        queue_release(q);
        return;
    }
    if (qm->outstanding == 0 && (qm->nres > 0 || qm->kick)) {
        /* records the results; round_done releases the holds */
        queue_round_start(qm);
    } else {
        /* other destinations of this message are still being tried (or
         * there is nothing to record): the slot and connection go back now
         * rather than wait for the slowest of them */
        holds_release(qm);
        if (qm->outstanding == 0)
            round_finish(qm);
        wake_starved(q);
    }
    queue_release(q);
}

/* Gives back every slot and connection QM holds; how many. */
static int holds_release(struct qmsg *qm)
{
    int n = 0;
    while (qm->holds) {
        struct qhold *qh = qm->holds;
        qm->holds = qh->next;
        sched_slot_release(qm->q->slots, qh->domain);
        remote_hold_release(qh->h);
        free(qh->domain);
        free(qh);
        n++;
    }
    return n;
}

/* A slot came free: messages that waited for one go again. */
static void wake_starved(struct queue *q)
{
    for (struct qmsg *qm = q->msgs; qm; qm = qm->next)
        if (qm->starved && !qm->in_job && qm->outstanding == 0) {
            qm->starved = 0;
            queue_round_start(qm);
        }
}

/* ---- control requests (queue loop) ---- */

/* Loop only; QM's fields are the worker's while a round runs, so a busy
 * message just gets the flag and goes again when it is done. */
static void kick_one(struct qmsg *qm)
{
    qm->kick = 1;
    if (!qm->in_job && qm->outstanding == 0)
        queue_round_start(qm);
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
    struct journal *j = q->journal;
    if (j)
        journal_stats(j, &st->journal_commits, &st->journal_records);
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

int queue_running(void)
{
    struct queue *q = queue_acquire();
    if (!q)
        return 0;
    pthread_mutex_lock(&q->lock);
    int running = !q->stopped;
    pthread_mutex_unlock(&q->lock);
    queue_release(q);
    return running;
}
