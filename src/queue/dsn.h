/* dsn: composes delivery status notifications (RFC 3464): the "failed"
 * bounce and the "delayed" warning sent to a message's envelope sender.
 *
 * A pure function of its input: multipart/report; report-type=
 * delivery-status with a plain-words text/plain part, the
 * message/delivery-status part (one per-recipient block for every
 * recipient of the notice) and the original message's header as
 * text/rfc822-headers. From MAILER-DAEMON@hostname; the caller queues it
 * with the null envelope sender. Every value that came from elsewhere (the
 * remote reply, addresses, the original header) is bounded and made
 * 7-bit-safe. Lines end in CRLF. */
#ifndef ROOST_DSN_H
#define ROOST_DSN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum dsn_kind { DSN_FAILED, DSN_DELAYED };

struct dsn_rcpt {
    const char *address;      /* the recipient as given in RCPT TO */
    const char *status;       /* enhanced status "5.1.1" / "4.4.1" */
    int code;                 /* the SMTP reply code, 0 when there was none */
    const char *reply;        /* the reply (lines joined by "\n") or our own words; may be NULL */
    const char *remote_host;  /* "mx.example.com [192.0.2.1]" or NULL */
    int64_t last_attempt_ms;  /* 0 when never attempted */
    int expired;              /* given up: the message was too old */
    int by_admin;             /* returned by `roost queue bounce` */
};

struct dsn_input {
    enum dsn_kind kind;
    const char *hostname;     /* the reporting MTA */
    const char *queue_id;     /* the original message's */
    const char *sender;       /* the original envelope sender (the notice's recipient) */
    time_t arrived;
    time_t now;
    time_t retry_until;       /* DSN_DELAYED: when the queue gives up */
    const char *message;      /* the original message (its header is quoted) */
    size_t message_len;
    const struct dsn_rcpt *rcpts;
    int nrcpt;
};

/* The whole notice (header and body) as a malloc'd buffer; NULL when it
 * would pass 1 MiB (the queue lists at most 50 recipients per notice). */
char *dsn_compose(const struct dsn_input *in, size_t *len_r);

/* "Thu, 03 Dec 2026 06:40:03 +0000" (RFC 5322), locale-independent. */
void dsn_format_date(time_t t, char *out, size_t outsz);

#endif
