/* queue_local: delivery of journal messages (journal.h) in batches, one
 * account at a time (queue_int.h: queue_local_add, queue_local_stop).
 *
 * On the queue loop every recipient of a journal message becomes a unit in
 * its account's waiting list. Each account has at most one batch job on the
 * worker pool; when it ends, whatever arrived meanwhile (up to
 * LOCAL_BATCH_MAX units) goes in the next one, so a busy account gets big
 * batches and an idle one is served at once. A job stores its messages with
 * one store_deliver_batch call (one pack append, one fdatasync, one index
 * transaction: store.h). An account that forwards, or a unit the store could
 * not take, falls back to the ordinary path: once all of a message's units
 * are back, a message with any fallback gets a round (queue_round.c), which
 * first copies it into a queue file of its own (spool_commit), then delivers
 * as for any queued message, idempotently by queue id. A message whose units
 * all succeeded releases its journal record: it is finished.
 *
 * A batch does not start the moment its first unit arrives: it waits
 * LOCAL_LINGER_MS for company (or until LOCAL_LINGER_ENOUGH units wait),
 * so that an account receiving a stream of mail (one sender's submissions
 * to one mailbox, a mailing list) pays one pack fdatasync and one index
 * commit for several messages instead of one each. The sender has its 250
 * already (the journal made the message durable); only the mailbox sees it
 * a few milliseconds later.
 *
 * While in this stage a qmsg is marked in_job, so the queue's other paths
 * leave it alone; qm->batch_left counts its units not yet back. */
#include "queue/queue_int.h"
#include "queue/journal.h"
#include "queue/retpath.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_BATCH_MAX 256
#define LOCAL_BATCH_BYTES (32u << 20)   /* a batch's content (after the first unit) */
#define LOCAL_LINGER_MS 4
#define LOCAL_LINGER_ENOUGH 32

struct lunit {
    struct lunit *next;
    struct qmsg *qm;
    int idx;
};

/* One account's waiting units (queue loop only). */
struct lacct {
    struct lacct *next;
    char *account;
    struct lunit *head, *tail;
    int waiting;              /* units in the list */
    int busy;                 /* a batch job runs */
    struct event *linger;     /* pending: the next batch waits for company */
    struct queue *q;
};

struct lbatch {
    struct queue *q;
    struct lacct *a;
    int n;
    struct lunit **units;
    int *ok;    /* 1 stored (or a duplicate), 0 fall back */
};

static void batch_kick(struct queue *q, struct lacct *a);
static void batch_start(struct queue *q, struct lacct *a);
static void linger_fire(evutil_socket_t fd, short what, void *arg);

static struct lacct *lacct_get(struct queue *q, const char *account)
{
    for (struct lacct *a = q->lacct; a; a = a->next)
        if (strcmp(a->account, account) == 0)
            return a;
    struct lacct *a = xcalloc(1, sizeof *a);
    a->account = xstrdup(account);
    a->q = q;
    a->next = q->lacct;
    q->lacct = a;
    return a;
}

static void lacct_drop_if_idle(struct queue *q, struct lacct *a)
{
    if (a->busy || a->head || (a->linger && evtimer_pending(a->linger, NULL)))
        return;
    for (struct lacct **pp = &q->lacct; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    if (a->linger)
        event_free(a->linger);
    free(a->account);
    free(a);
}

void queue_local_add(struct qmsg *qm)
{
    struct queue *q = qm->q;
    struct spool_msg *m = qm->msg;
    qm->in_job = 1;
    qm->batch_left = m->nrcpt;
    qm->batch_fallback = 0;
    for (int i = 0; i < m->nrcpt; i++) {
        struct lacct *a = lacct_get(q, m->rcpts[i].account);
        struct lunit *u = xcalloc(1, sizeof *u);
        u->qm = qm;
        u->idx = i;
        if (a->tail)
            a->tail->next = u;
        else
            a->head = u;
        a->tail = u;
        a->waiting++;
    }
    for (int i = 0; i < m->nrcpt; i++)
        batch_kick(q, lacct_get(q, m->rcpts[i].account));
}

/* ---- the job (worker) ---- */

/* 1 when the account forwards (the round's forward_deliver handles it), 0
 * not, -1 error. */
static int account_forwards(struct queue *q, const char *account)
{
    const char *err = NULL;
    struct directory *d = dir_for_thread(q->data_dir, &err);
    if (!d)
        return -1;
    struct dir_forward f;
    int g = dir_forward_get(d, account, &f);
    if (g < 0)
        return -1;
    return g == 0 && f.to[0] ? 1 : 0;
}

static void batch_work(void *arg)
{
    struct lbatch *b = arg;
    struct queue *q = b->q;
    if (queue_is_stopped(q))
        return;
    int fw = account_forwards(q, b->a->account);
    if (fw != 0)
        return;   /* every unit falls back (ok[] stays 0) */
    struct store_batch_item *items = xcalloc((size_t)b->n, sizeof *items);
    char **stored = xcalloc((size_t)b->n, sizeof *stored);
    for (int i = 0; i < b->n; i++) {
        const struct spool_msg *m = b->units[i]->qm->msg;
        items[i].mailbox = "INBOX";
        items[i].queue_id = m->id;
        stored[i] = retpath_message(m->sender, m->data, m->len, &items[i].len);
        items[i].data = stored[i];
        items[i].internaldate = m->arrived;
    }
    const char *error = "unknown";
    int rc = store_deliver_batch(q->data_dir, b->a->account, items, b->n, &error);
    for (int i = 0; i < b->n; i++)
        free(stored[i]);
    free(stored);
    for (int i = 0; i < b->n; i++) {
        const struct lunit *u = b->units[i];
        if (rc == 0 && items[i].result == 0) {
            b->ok[i] = 1;
            queue_log_local(u->qm, u->idx, items[i].uid, items[i].duplicate);
            if (!items[i].duplicate)
                queue_count_local(u->qm);
            continue;
        }
        char qc[LOG_QSIZE];
        const char *acct = b->a->account;
        log_warn("queue", "event=batch-delivery-failed queue=%s account=%s error=\"%s\""
                 " hint=\"retried one by one\"", u->qm->id, log_q(qc, sizeof qc, acct, strlen(acct)),
                 rc < 0 ? error : items[i].result == 1 ? "no such mailbox" : "store error");
    }
    free(items);
}

/* ---- back on the loop ---- */

/* Every unit of QM is back. */
static void local_finish(struct qmsg *qm)
{
    struct queue *q = qm->q;
    if (qm->batch_fallback) {
        qm->in_job = 0;
        qm->fresh = 1;
        queue_round_start(qm);   /* copies it to a queue file first */
        return;
    }
    journal_release(q->journal, qm->seg);
    qm->seg = NULL;
    log_info("queue", "event=removed queue=%s", qm->id);
    queue_inflight_add(q, -1);
    queue_qmsg_drop(qm);
}

static void batch_done(void *arg)
{
    struct lbatch *b = arg;
    struct queue *q = b->q;
    int stopped = queue_is_stopped(q);
    for (int i = 0; i < b->n; i++) {
        struct qmsg *qm = b->units[i]->qm;
        if (!b->ok[i])
            qm->batch_fallback = 1;
        free(b->units[i]);
        if (--qm->batch_left > 0)
            continue;
        if (stopped)
            queue_qmsg_drop(qm);   /* still in the journal: replayed at the next start */
        else
            local_finish(qm);
    }
    struct lacct *a = b->a;
    a->busy = 0;
    if (!stopped)
        batch_kick(q, a);
    lacct_drop_if_idle(q, a);
    free(b->units);
    free(b->ok);
    free(b);
    queue_release(q);
}

/* Units are waiting for A: a batch now if there are enough of them (or
 * the linger ran out), else the linger timer. */
static void batch_kick(struct queue *q, struct lacct *a)
{
    if (a->busy || !a->head)
        return;
    int armed = a->linger && evtimer_pending(a->linger, NULL);
    if (a->waiting >= LOCAL_LINGER_ENOUGH) {
        if (armed)
            evtimer_del(a->linger);
        batch_start(q, a);
        return;
    }
    if (armed)
        return;
    if (!a->linger)
        a->linger = evtimer_new(loop_base(q->loop), linger_fire, a);
    struct timeval tv = {0, LOCAL_LINGER_MS * 1000};
    if (!a->linger || evtimer_add(a->linger, &tv) < 0)
        batch_start(q, a);
}

static void linger_fire(evutil_socket_t fd, short what, void *arg)
{
    struct lacct *a = arg;
    struct queue *q = a->q;
    if (queue_is_stopped(q) || a->busy || !a->head)
        return;
    batch_start(q, a);
}

static void batch_start(struct queue *q, struct lacct *a)
{
    struct lbatch *b = xcalloc(1, sizeof *b);
    b->q = q;
    b->a = a;
    b->units = xcalloc(LOCAL_BATCH_MAX, sizeof *b->units);
    size_t bytes = 0;
    while (a->head && b->n < LOCAL_BATCH_MAX &&
           (b->n == 0 || bytes + a->head->qm->msg->len <= LOCAL_BATCH_BYTES)) {
        struct lunit *u = a->head;
        bytes += u->qm->msg->len;
        a->head = u->next;
        u->next = NULL;
        b->units[b->n++] = u;
        a->waiting--;
    }
    if (!a->head)
        a->tail = NULL;
    b->ok = xcalloc((size_t)b->n, sizeof *b->ok);
    a->busy = 1;
    queue_ref(q);
    worker_submit(q->pool, q->loop, batch_work, batch_done, b);
}

/* The queue stops: waiting units are dropped (their messages stay in the
 * journal); running jobs finish and find the queue stopped. */
void queue_local_stop(struct queue *q)
{
    for (struct lacct *a = q->lacct, *next; a; a = next) {
        next = a->next;
        while (a->head) {
            struct lunit *u = a->head;
            a->head = u->next;
            if (--u->qm->batch_left == 0)
                queue_qmsg_drop(u->qm);
            free(u);
        }
        a->tail = NULL;
        a->waiting = 0;
        if (a->linger)
            evtimer_del(a->linger);
        if (!a->busy)
            lacct_drop_if_idle(q, a);
    }
}
