/* queue: accepts messages from sessions and drives them to their end.
 *
 * queue_submit makes a message durable on a worker thread (spool_commit)
 * and then calls back on the submitting loop; only then may the session
 * answer 250. After that the queue delivers local recipients into their
 * mailboxes (store_deliver, idempotent by queue id), marks them done, and
 * removes the message once every recipient is finished. Recipients in other
 * domains go to the outbound transport (remote.h) when it runs, else stay
 * queued. At start
 * the queue scans DATA/queue/ and resumes every message it finds. */
#ifndef ROOST_QUEUE_H
#define ROOST_QUEUE_H

#include "queue/spool.h"

struct loop;
struct worker_pool;

int queue_start(const char *data_dir, struct worker_pool *pool, struct loop *loop,
                const char **error_r);
void queue_stop(void);

/* Takes ownership of MSG (assigns MSG->id if empty). DONE runs on LOOP with
 * the result: 0 durable (the id is MSG_ID), -1 failed (ERROR set). */
typedef void (*queue_done_fn)(void *arg, int result, const char *msg_id, const char *error);
void queue_submit(struct spool_msg *msg, struct loop *loop, queue_done_fn done, void *arg);

/* Counters for status and tests. */
struct queue_stats {
    unsigned long accepted, delivered_local, pending_remote, failed;
};
void queue_get_stats(struct queue_stats *st);
/* Number of messages currently in DATA/queue/ waiting for something. */
int queue_inflight(void);

/* Added: the retry delays (5 s, 15 s, 30 s, 1 min, 5 min, 15 min, then every
 * 30 min) are counted in units of MS milliseconds; 1000 by default. Tests
 * shrink it. */
void queue_set_retry_unit_ms(unsigned ms);

#endif
