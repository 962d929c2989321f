/* remote: one delivery attempt of one queued message to the recipients of
 * one destination, on the queue's loop. The contract between the scheduler
 * (queue.c: which recipients are due, what to do with each outcome) and the
 * outbound transport (remote.c: routing by MX or smarthost, DNS, the SMTP
 * client, TLS policy, connection limits and reuse).
 *
 * The scheduler calls remote_deliver with recipients that share a
 * destination domain; DONE runs later on the same loop with one result per
 * recipient, in the order given. The transport never touches the spool. */
#ifndef ROOST_REMOTE_H
#define ROOST_REMOTE_H

#include "queue/spool.h"

struct loop;
struct config;

enum rcpt_outcome {
    RCPT_DELIVERED,   /* the next server answered 250 to this recipient's data */
    RCPT_DEFERRED,    /* temporary: 4xx, no answer, DNS SERVFAIL, connection failure */
    RCPT_FAILED,      /* permanent: 5xx, null MX, no such domain, policy */
};

struct remote_result {
    int idx;                   /* recipient index in the spool message */
    enum rcpt_outcome outcome;
    int code;                  /* the SMTP reply code, 0 when there was none */
    char enhanced[16];         /* "5.1.1" (from the reply or ours), "" if none */
    char *reply;               /* the remote reply, lines joined by "\n"; or our own
                                * plain description ("connection refused by ...") */
    char *remote_host;         /* "mx1.example.com [192.0.2.1]", or NULL */
};

struct remote_attempt {
    const struct spool_msg *msg;   /* the caller keeps it alive until DONE */
    const int *rcpts;              /* recipient indexes, all in DOMAIN */
    int nrcpt;
    const char *domain;            /* lower-case destination domain */
};

/* The connection an answered attempt used, kept back from the next message
 * until the caller has recorded the results, so that a crash repeats at
 * most one message per connection. */
struct remote_hold;

/* RESULTS (N of them) are freed by the transport after DONE returns. HOLD
 * (NULL when no connection carried the message) belongs to the caller,
 * who passes it to remote_hold_release once the results are durable. */
typedef void (*remote_done_fn)(void *arg, const struct remote_result *results, int n,
                               struct remote_hold *hold);

/* Gives the connection back (reused, parked idle or closed) and frees
 * HOLD. Loop only; NULL does nothing; after remote_stop it only frees. */
void remote_hold_release(struct remote_hold *hold);

/* Starts the transport on LOOP (the queue's loop) with CFG's outbound
 * settings. 0 ok, -1 with ERROR_R. */
int remote_start(const struct config *cfg, struct loop *loop, const char **error_r);
void remote_stop(void);

/* Where the MTA-STS policy cache lives (DATA/queue/mta-sts) and the pool
 * that writes it; after remote_start. Without it: in memory only. */
struct worker_pool;
void remote_set_store(const char *data_dir, struct worker_pool *pool);

/* Added: 1 between remote_start and remote_stop. Without a transport
 * remote recipients simply stay queued. */
int remote_running(void);

/* One attempt. Always calls DONE exactly once, never from inside this call. */
void remote_deliver(const struct remote_attempt *a, remote_done_fn done, void *arg);

#endif
