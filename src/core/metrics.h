/* metrics: process-wide counters and latency histograms for /metrics.
 *
 * Every counter is a C11 atomic, updated with relaxed fetch-adds, so any
 * loop thread or worker may call these functions at any time without a lock
 * and without touching other global state; the HTTP thread reads a
 * snapshot (metrics_snapshot) and renders it (src/http/http_metrics.c).
 * A snapshot is not one atomic cut across all counters, but every single
 * value in it only ever grows, and a histogram's count is the sum of its
 * buckets as read, so the exposition is always self-consistent.
 *
 * Protocol labels are the listener kinds (core/config.h): smtp,
 * submission, submissions, imap, imaps, pop3, pop3s. docs/http.md lists
 * every metric with its labels. */
#ifndef ROOST_METRICS_H
#define ROOST_METRICS_H

#include "core/config.h"

#include <stdint.h>

/* The result of one login attempt (SMTP AUTH, IMAP LOGIN/AUTHENTICATE,
 * POP3 USER/PASS/AUTH). */
enum metrics_login {
    ML_OK,
    ML_BAD_PASSWORD,           /* unknown user or wrong password */
    ML_APP_PASSWORD_REQUIRED,  /* two-factor account, account password given */
    ML_THROTTLED,              /* too many failures: refused before checking */
    ML_DISABLED,               /* right password, protocol turned off */
    ML_ERROR,                  /* temporary failure (directory) */
    ML_COUNT
};

/* Why a message (or a recipient of it) was refused. */
enum metrics_reject {
    MR_SIZE,               /* 552 5.3.4 */
    MR_RELAY,              /* 550 5.7.1 Relaying denied */
    MR_RATE_LIMIT,         /* 550 5.4.5 daily sending limit */
    MR_QUOTA,              /* 552 5.2.2 Mailbox full */
    MR_POLICY,             /* 553 5.7.1 sender / From: not owned by the account */
    MR_UNKNOWN_RECIPIENT,  /* 550 5.1.1 */
    MR_BARE_LINE_ENDING,   /* 554 5.6.0 bare CR or LF (SMTP smuggling) */
    MR_TEMPORARY,          /* 451 4.3.0 lookup or queue failure */
    MR_COUNT
};

/* One delivery attempt of one recipient. The local delivery (queue.c)
 * reports delivered/failed; the outbound module reports the remote ones. */
enum metrics_delivery {
    MD_LOCAL_DELIVERED,
    MD_LOCAL_FAILED,       /* will be retried */
    MD_REMOTE_DELIVERED,
    MD_REMOTE_DEFERRED,    /* temporary failure, will be retried */
    MD_REMOTE_FAILED,      /* permanent failure, a bounce is sent */
    MD_COUNT
};

/* A delivery status notification queued for the sender. */
enum metrics_dsn { MDSN_FAILED, MDSN_DELAYED, MDSN_COUNT };

enum metrics_histogram { MH_ACCEPT, MH_DELIVERY, MH_COUNT };

/* Bucket upper bounds in seconds (the +Inf bucket is implicit). */
#define METRICS_NBUCKETS 15
extern const double metrics_bucket_bounds[METRICS_NBUCKETS];

void metrics_connection(enum listener_kind k);
/* An implicit-TLS or STARTTLS handshake on a listener of kind K ended. */
void metrics_tls_handshake(enum listener_kind k, int ok);
void metrics_login(enum listener_kind k, enum metrics_login outcome);
void metrics_message_accepted(enum listener_kind k);
void metrics_message_rejected(enum listener_kind k, enum metrics_reject reason);
/* Call once per recipient delivery attempt, from any thread. */
void metrics_delivery(enum metrics_delivery outcome);
/* Call once per DSN queued (queue_round.c), from any thread. */
void metrics_dsn(enum metrics_dsn kind);
/* Records a latency of SECONDS (negative values count as 0). */
void metrics_observe(enum metrics_histogram h, double seconds);

/* CLOCK_MONOTONIC in microseconds: for latencies measured within this
 * process (start = metrics_now_us(); ... metrics_observe(h, since)). */
uint64_t metrics_now_us(void);
double metrics_since_s(uint64_t start_us);

struct metrics_hist_snap {
    unsigned long long buckets[METRICS_NBUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    unsigned long long sum_us;
};

struct metrics_snapshot {
    unsigned long long connections[LK_COUNT];
    unsigned long long tls_ok[LK_COUNT], tls_failed[LK_COUNT];
    unsigned long long logins[LK_COUNT][ML_COUNT];
    unsigned long long accepted[LK_COUNT];
    unsigned long long rejected[LK_COUNT][MR_COUNT];
    unsigned long long deliveries[MD_COUNT];
    unsigned long long dsns[MDSN_COUNT];
    struct metrics_hist_snap hist[MH_COUNT];
};

void metrics_snapshot(struct metrics_snapshot *s);

const char *metrics_login_name(enum metrics_login o);
const char *metrics_reject_name(enum metrics_reject r);
/* "local"/"remote" and "delivered"/"failed"/"deferred". */
const char *metrics_delivery_route(enum metrics_delivery d);
const char *metrics_delivery_outcome(enum metrics_delivery d);
/* "failed"/"delayed". */
const char *metrics_dsn_name(enum metrics_dsn k);

#endif
