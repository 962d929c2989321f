/* queue: the scheduler between the SMTP sessions, the spool and the local
 * mailbox store (see queue.h).
 *
 * Threads and ownership:
 *  - queue_submit runs on a session's loop; spool_commit runs on a worker;
 *    the session's done callback runs back on the session's loop. Then the
 *    message is handed to the queue loop through a mutex-protected inbox and
 *    a libevent user event (the one documented cross-loop channel here).
 *  - Everything about queued messages (struct qmsg, the retry timers, the
 *    list of messages) lives on the queue loop's thread. A message has at
 *    most one delivery job at a time (qm->in_job); while the job runs, the
 *    worker owns the qmsg's message and progress fields.
 *  - struct queue is reference counted: every job holds a reference, so a
 *    queue_stop while jobs are still running (or their completions are still
 *    queued on a loop) only marks it stopped; the last job frees it.
 *
 * Delivery: for each local recipient not yet done, store_deliver (idempotent
 * by queue id) and then spool_mark_done, except for the last one, after
 * which the message is removed from the spool at once (a crash in between
 * redelivers, and the store reports the duplicate). Remote recipients stay queued for the
 * outbound module. Failures are retried on a timer with growing delays. */
#include "queue/queue.h"
#include "queue/forward.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "store/store.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Retry delays in units (seconds by default): quick at first, then minutes. */
static const unsigned retry_delays[] = { 5, 15, 30, 60, 300, 900, 1800 };
#define N_RETRY_DELAYS (sizeof retry_delays / sizeof retry_delays[0])

enum outcome {
    OUT_REMOVED,    /* every recipient done; the spool file is gone */
    OUT_GONE,       /* the spool file vanished or was corrupt */
    OUT_RETRY,      /* some local delivery failed */
    OUT_REMOTE,     /* only remote recipients remain */
    OUT_SKIPPED,    /* the queue was stopping */
};

struct queue;

struct qmsg {
    struct queue *q;
    struct qmsg *prev, *next;
    char id[SPOOL_ID_LEN + 1];
    struct spool_msg *msg;   /* NULL: load from the spool */
    struct event *retry;
    int attempts;
    int in_job;
    int listed;
    int remote_pending;      /* remote recipients still waiting (last known) */
    int remote_logged;
    enum outcome outcome;
};

struct inbox_item {
    struct inbox_item *next;
    struct spool_msg *msg;
};

struct queue {
    pthread_mutex_t lock;    /* refs, stopped, inbox, stats, inflight */
    int refs;
    int stopped;
    char *data_dir;
    struct spool *spool;
    struct worker_pool *pool;
    struct loop *loop;
    struct event *inbox_ev;
    struct inbox_item *inbox_head, *inbox_tail;
    struct qmsg *msgs;       /* queue loop only */
    int inflight;
    unsigned retry_unit_ms;
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

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static struct queue *the_queue;
static unsigned configured_retry_unit_ms = 1000;

static struct queue *queue_acquire(void);
static void queue_ref(struct queue *q);
static void queue_release(struct queue *q);
static void stats_add(struct queue *q, unsigned long *field, long delta);
static void inflight_add(struct queue *q, int delta);
static void submit_work(void *arg);
static void submit_done(void *arg);
static void submit_refused(evutil_socket_t fd, short what, void *arg);
static void inbox_post(struct queue *q, struct spool_msg *msg);
static void inbox_run(evutil_socket_t fd, short what, void *arg);
static struct qmsg *qmsg_new(struct queue *q, const char *id, struct spool_msg *msg);
static void qmsg_unlist(struct qmsg *qm);
static void qmsg_free(struct qmsg *qm);
static void delivery_schedule(struct qmsg *qm);
static void delivery_work(void *arg);
static void delivery_done(void *arg);
static enum outcome deliver_locals(struct qmsg *qm);
static int deliver_one(struct qmsg *qm, int idx, int last);
static void retry_fire(evutil_socket_t fd, short what, void *arg);
static void retry_arm(struct qmsg *qm);
static void resume_one(const char *id, void *arg);

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
    pthread_mutex_destroy(&q->lock);
    free(q->data_dir);
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

void queue_set_retry_unit_ms(unsigned ms)
{
    configured_retry_unit_ms = ms ? ms : 1;
    struct queue *q = queue_acquire();
    if (q) {
        pthread_mutex_lock(&q->lock);
        q->retry_unit_ms = configured_retry_unit_ms;
        pthread_mutex_unlock(&q->lock);
        queue_release(q);
    }
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
    q->spool = sp;
    q->pool = pool;
    q->loop = loop;
    q->retry_unit_ms = configured_retry_unit_ms;
    q->inbox_ev = event_new(loop_base(loop), -1, 0, inbox_run, q);
    if (!q->inbox_ev) {
        *error_r = "cannot create the queue event";
        queue_release(q);
        return -1;
    }
    pthread_mutex_lock(&global_lock);
    the_queue = q;
    pthread_mutex_unlock(&global_lock);

    int before = q->inflight;
    if (spool_scan(sp, resume_one, q) < 0)
        log_error("queue", "event=scan-failed dir=%s", spool_dir(sp));
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
    while (it) {
        struct inbox_item *next = it->next;
        spool_msg_free(&it->msg);   /* durable in the spool: resumed next start */
        free(it);
        it = next;
    }
    while (q->msgs) {
        struct qmsg *qm = q->msgs;
        qmsg_unlist(qm);
        if (qm->retry) {
            event_free(qm->retry);
            qm->retry = NULL;
        }
        if (!qm->in_job)
            qmsg_free(qm);   /* else delivery_done frees it */
    }
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

static void submit_work(void *arg)
{
    struct submit_job *j = arg;
    struct queue *q = j->q;
    pthread_mutex_lock(&q->lock);
    int stopped = q->stopped;
    pthread_mutex_unlock(&q->lock);
    if (stopped) {
        j->result = -1;
        j->error = "queue stopping";
        return;
    }
    j->result = spool_commit(q->spool, j->msg, &j->error);
    char qs[LOG_QSIZE];
    if (j->result < 0) {
        log_error("queue", "event=commit-failed queue=%s error=\"%s\"", j->id, j->error);
        return;
    }
    const char *s = j->msg->sender ? j->msg->sender : "";
    log_info("queue", "event=accepted queue=%s from=%s nrcpt=%d size=%zu", j->id,
             log_q(qs, sizeof qs, s, strlen(s)), j->msg->nrcpt, j->msg->len);
    stats_add(q, &q->stats.accepted, 1);
    inflight_add(q, 1);
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
        free(it);
        delivery_schedule(qm);
        it = next;
    }
}

static void resume_one(const char *id, void *arg)
{
    struct queue *q = arg;
    inflight_add(q, 1);
    delivery_schedule(qmsg_new(q, id, NULL));
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

static void qmsg_free(struct qmsg *qm)
{
    if (qm->retry)
        event_free(qm->retry);
    spool_msg_free(&qm->msg);
    free(qm);
}

static void delivery_schedule(struct qmsg *qm)
{
    qm->in_job = 1;
    queue_ref(qm->q);
    worker_submit(qm->q->pool, qm->q->loop, delivery_work, delivery_done, qm);
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
    if (forward_deliver(&(struct forward_queue){ q->data_dir, q->spool, q->loop, resume_one, q },
                        m, idx, &uid, &dup, &error) < 0) {
        log_error("queue", "event=delivery-failed queue=%s rcpt=%s account=%s attempt=%d"
                  " error=\"%s\"", m->id, qa, qc, qm->attempts + 1, error);
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

static enum outcome deliver_locals(struct qmsg *qm)
{
    struct queue *q = qm->q;
    struct spool_msg *m = qm->msg;
    int failed = 0, remote = 0, pending = 0;
    for (int i = 0; i < m->nrcpt; i++)
        pending += !m->rcpts[i].done;
    for (int i = 0; i < m->nrcpt; i++) {
        struct spool_rcpt *r = &m->rcpts[i];
        if (r->done)
            continue;
        pending--;
        if (!r->account) {
            remote++;
            if (!qm->remote_logged) {
                char qa[LOG_QSIZE];
                log_info("queue", "event=queued-remote queue=%s rcpt=%s", m->id,
                         log_q(qa, sizeof qa, r->address, strlen(r->address)));
            }
            continue;
        }
        if (deliver_one(qm, i, pending == 0 && remote == 0 && failed == 0) < 0)
            failed++;
    }
    qm->remote_logged = 1;
    stats_add(q, &q->stats.pending_remote, remote - qm->remote_pending);
    qm->remote_pending = remote;
    if (failed) {
        stats_add(q, &q->stats.failed, failed);
        return OUT_RETRY;
    }
    if (remote)
        return OUT_REMOTE;
    if (spool_remove(q->spool, m->id) < 0) {
        log_error("queue", "event=remove-failed queue=%s", m->id);
        return OUT_RETRY;
    }
    log_info("queue", "event=removed queue=%s", m->id);
    return OUT_REMOVED;
}

static void delivery_work(void *arg)
{
    struct qmsg *qm = arg;
    struct queue *q = qm->q;
    pthread_mutex_lock(&q->lock);
    int stopped = q->stopped;
    pthread_mutex_unlock(&q->lock);
    if (stopped) {
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
    qm->outcome = deliver_locals(qm);
    /* Retries and the outbound module reload from the spool: the spool is
     * the truth, and waiting messages should not hold their bodies. */
    spool_msg_free(&qm->msg);
}

static void delivery_done(void *arg)
{
    struct qmsg *qm = arg;
    struct queue *q = qm->q;
    qm->in_job = 0;
    pthread_mutex_lock(&q->lock);
    int stopped = q->stopped;
    pthread_mutex_unlock(&q->lock);
    if (stopped || qm->outcome == OUT_SKIPPED) {
        qmsg_unlist(qm);
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
    case OUT_RETRY:
        retry_arm(qm);
        break;
    case OUT_REMOTE:
    case OUT_SKIPPED:
        break;   /* waits for the outbound module */
    }
    queue_release(q);
}

static void retry_arm(struct qmsg *qm)
{
    struct queue *q = qm->q;
    size_t i = (size_t)qm->attempts < N_RETRY_DELAYS ? (size_t)qm->attempts
                                                     : N_RETRY_DELAYS - 1;
    qm->attempts++;
    pthread_mutex_lock(&q->lock);
    unsigned long ms = (unsigned long)retry_delays[i] * q->retry_unit_ms;
    pthread_mutex_unlock(&q->lock);
    struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
    if (!qm->retry)
        qm->retry = evtimer_new(loop_base(q->loop), retry_fire, qm);
    if (!qm->retry || evtimer_add(qm->retry, &tv) < 0) {
        log_error("queue", "event=retry-timer-failed queue=%s", qm->id);
        return;
    }
    log_info("queue", "event=retry-scheduled queue=%s attempt=%d delay_ms=%lu", qm->id,
             qm->attempts, ms);
}

static void retry_fire(evutil_socket_t fd, short what, void *arg)
{
    struct qmsg *qm = arg;
    if (!qm->in_job)
        delivery_schedule(qm);
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
