/* queue: accepts messages from sessions and drives them to their end.
 *
 * queue_submit makes a message durable on a worker thread (spool_commit)
 * and then calls back on the submitting loop; only then may the session
 * answer 250. After that the queue delivers local recipients into their
 * mailboxes (store_deliver, idempotent by queue id), marks them done, and
 * removes the message once every recipient is finished. Recipients in other
 * domains go to the outbound transport (remote.h), grouped by destination
 * domain, and are retried with back-off (schedule.h); their state lives in
 * DATA/queue/<id>.state (rcptstate.h). Permanent failures and messages too
 * old to keep trying bounce with a DSN (dsn.h); a "delayed" DSN warns the
 * sender once. At start the queue scans DATA/queue/ and resumes every message
 * it finds: due recipients go at once, the others wait for their time.
 * queue_start also starts the transport (remote_start) on the queue's loop
 * (unless [outbound] enabled = no: remote recipients then wait, untried)
 * and queue_stop stops it. `roost queue` requests (hold, release, retry,
 * bounce, delete) reach the running queue through qctl.h. docs/queue.md. */
#ifndef ROOST_QUEUE_H
#define ROOST_QUEUE_H

#include "queue/spool.h"

struct config;
struct loop;
struct sched_policy;
struct worker_pool;

/* Added: the [server] hostname (DSNs) and the [queue] policy, taken by the
 * next queue_start (CFG must outlive the queue: the transport reads it). */
void queue_set_config(const struct config *cfg);
/* Added for tests: the policy (durations in units of P->unit_ms). */
void queue_set_policy(const struct sched_policy *p);

int queue_start(const char *data_dir, struct worker_pool *pool, struct loop *loop,
                const char **error_r);
void queue_stop(void);

/* Takes ownership of MSG (assigns MSG->id if empty). DONE runs on LOOP with
 * the result: 0 durable (the id is MSG_ID), -1 failed (ERROR set). */
typedef void (*queue_done_fn)(void *arg, int result, const char *msg_id, const char *error);
void queue_submit(struct spool_msg *msg, struct loop *loop, queue_done_fn done, void *arg);

/* Where a waiting message stands after its last round (for /metrics):
 * held by the administrator, local recipients waiting for a retry, or
 * only remote recipients waiting (deferred or not yet tried). */
enum queue_depth { QD_NONE, QD_PENDING_LOCAL, QD_PENDING_REMOTE, QD_HELD, QD_COUNT };

/* Counters for status and tests. */
struct queue_stats {
    unsigned long accepted, delivered_local, pending_remote, failed;
    unsigned long depth[QD_COUNT];   /* messages by state; [QD_NONE] unused */
    unsigned long journal_commits;   /* group commits (fdatasyncs) of the journal */
    unsigned long journal_records;   /* messages those commits made durable */
};
void queue_get_stats(struct queue_stats *st);
/* Number of messages currently in DATA/queue/ waiting for something. */
int queue_inflight(void);
/* 1 if the queue is started and not stopping (for /healthz). */
int queue_running(void);

/* Added: the retry delays (locally 5 s, 15 s, 30 s, 1 min, 5 min, 15 min,
 * then every 30 min; remotely [queue] retry_schedule) and the max_age and
 * delay_warning are counted in units of MS milliseconds; 1000 by default.
 * Tests shrink it. */
void queue_set_retry_unit_ms(unsigned ms);

/* Added: on the queue's loop, a `roost queue` request was recorded for
 * message ID (NULL: every message): the queue rereads its state now, or
 * right after the attempt in progress. */
void queue_control_kick(const char *id);

#endif
