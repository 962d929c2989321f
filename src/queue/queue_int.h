/* queue_int: what queue.c (the loop side: submission, timers, remote
 * attempts, control requests) and queue_round.c (the worker side: one
 * round of file work for one message) share. Nothing else includes it. */
#ifndef ROOST_QUEUE_INT_H
#define ROOST_QUEUE_INT_H

#include "queue/remote.h"
#include "queue/schedule.h"
#include "queue/queue.h"

#include <pthread.h>
#include <stdint.h>

struct event;
struct qctl_watch;
struct inbox_item;
struct journal;
struct journal_seg;
struct lacct;

enum outcome {
    OUT_REMOVED,    /* every recipient done; the spool file is gone */
    OUT_GONE,       /* the spool file vanished or was corrupt */
    OUT_WAIT,       /* something remains: wait for wake_ms / remote attempts */
    OUT_SKIPPED,    /* the queue was stopping */
};

/* One remote result kept until the next round records it. */
struct qhold;   /* queue.c */

struct qres {
    int idx;
    enum rcpt_outcome outcome;
    int code;
    char enhanced[16];
    char *reply;
    char *host;
    int64_t t_ms;
};

/* A queued message, on the queue loop; a round's worker owns the fields
 * while qm->in_job. */
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
    enum queue_depth depth;  /* its state in stats.depth (QD_NONE: not counted) */
    int has_state;           /* a state file may exist */
    enum outcome outcome;
    int64_t wake_ms;         /* next round (0: none) */
    uint64_t accepted_us;    /* when it became durable (0: resumed at start) */
    struct journal_seg *seg; /* its journal record (NULL: none / released) */
    int promoted;            /* copied from the journal to a queue file */
    int batch_left;          /* queue_local.c: units not back yet */
    int batch_fallback;      /* queue_local.c: some unit needs a round */
    int ndue;
    int *due;                /* remote recipients due now (round_work -> loop) */
    int nres;
    struct qres *res;        /* remote results (loop -> next round_work) */
    struct qhold *holds;     /* answered attempts' slots and connections (loop) */
};

/* The running queue (reference counted; see queue.c). */
struct queue {
    pthread_mutex_t lock;    /* refs, stopped, inbox, stats, inflight, unit */
    int refs;
    int stopped;
    char *data_dir;
    char *hostname;
    const struct config *cfg;
    struct config *own_cfg;  /* the defaults when no config was set (tests) */
    struct spool *spool;
    struct worker_pool *pool;
    struct loop *loop;
    struct event *inbox_ev;
    struct inbox_item *inbox_head, *inbox_tail;
    struct qmsg *msgs;       /* queue loop only */
    struct sched_slots *slots;   /* queue loop only */
    struct qctl_watch *ctl;
    struct journal *journal; /* NULL: every message gets a queue file */
    struct lacct *lacct;     /* queue_local.c, queue loop only */
    int remote_started;
    int inflight;
    struct sched_policy policy;  /* unit_ms under lock; the rest fixed */
    struct queue_stats stats;
};

/* queue.c: shared with the round. Thread-safe. */
int queue_is_stopped(struct queue *q);
unsigned queue_unit_ms(struct queue *q);
void queue_policy_get(struct queue *q, struct sched_policy *p_r);
void queue_stats_add(struct queue *q, unsigned long *field, long delta);
/* Moves QM from its counted state to STATE in stats.depth. */
void queue_depth_set(struct qmsg *qm, enum queue_depth state);
/* Worker: makes MSG durable and counts it; then queue_inbox_post hands it
 * to the queue loop (any thread). */
int queue_commit(struct queue *q, struct spool_msg *msg, const char **error_r);
void queue_inbox_post(struct queue *q, struct spool_msg *msg);
/* Queue loop: starts delivering spool file ID committed by a worker (a
 * forwarded copy, forward.h), as the files found at start-up; ARG is the
 * queue. Nothing happens once the queue is stopping (the file is resumed
 * at the next start). */
void queue_resume_committed(const char *id, void *arg);
/* Frees QM's remote results (the round has recorded them). */
void queue_clear_results(struct qmsg *qm);
/* Queue loop: starts a round for QM (a worker job). */
void queue_round_start(struct qmsg *qm);
/* Queue loop: QM is finished with; unlisted and freed. */
void queue_qmsg_drop(struct qmsg *qm);
void queue_inflight_add(struct queue *q, int delta);
/* A reference on Q for a job or an attempt (queue_release gives it back;
 * the last one frees Q). */
void queue_ref(struct queue *q);
void queue_release(struct queue *q);

/* queue_local.c (queue loop): delivers QM, a journal message whose
 * recipients are all local, in per-account batches; a message the batch
 * cannot finish gets a round. queue_local_stop drops what waits. */
void queue_local_add(struct qmsg *qm);
void queue_local_stop(struct queue *q);

/* queue_round.c, worker: the log line of a local delivery of recipient IDX
 * of QM (delivered, or a duplicate of one stored before), and the count of
 * a new one (statistics, metrics, delivery latency). */
void queue_log_local(const struct qmsg *qm, int idx, uint32_t uid, int duplicate);
void queue_count_local(struct qmsg *qm);

/* queue_round.c: worker. One round for QM (see queue.c's top comment);
 * sets qm->outcome, qm->wake_ms and qm->due. */
void queue_round_work(void *arg);

#endif
