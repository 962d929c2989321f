/* limits: every hard bound Roost applies to its inputs, with its source.
 * Configurable limits have their default here; the rest are fixed. */
#ifndef ROOST_LIMITS_H
#define ROOST_LIMITS_H

/* RFC 5321 4.5.3.1.4 allows 512 octets for a command line; ESMTP parameters
 * (RFC 1869 / 5321 4.5.3.1.2) may extend it. Longer lines get 500 5.5.2. */
#define SMTP_MAX_LINE 2048
/* RFC 4954 4: AUTH responses may be up to 12288 octets (base64). */
#define SMTP_MAX_AUTH_LINE 12288
/* Default SIZE, as Gmail advertises (RFC 1870). */
#define SMTP_DEFAULT_MAX_MESSAGE 35882577
/* RFC 5321 4.5.3.1.8: at least 100 recipients must be accepted. */
#define SMTP_DEFAULT_MAX_RCPT 100
/* Bad or unknown commands before we close (Postfix smtpd_hard_error_limit). */
#define SMTP_MAX_BAD_COMMANDS 20
/* Commands in a transaction-less session before we close (NOOP/RSET floods). */
#define SMTP_MAX_NOPROGRESS_COMMANDS 100
/* RFC 5321 4.5.3.2.7: the server timeout is at least 5 minutes. */
#define SMTP_DEFAULT_IDLE_TIMEOUT 300
#define SMTP_DEFAULT_SESSION_TIMEOUT 3600
#define NET_DEFAULT_MAX_CONNECTIONS 1000
#define NET_DEFAULT_MAX_PER_IP 30
#define NET_TLS_HANDSHAKE_TIMEOUT 30
/* RFC 5321 4.5.3.1.1-3 give 64 octets for a local part but ask servers to
 * accept longer ones where they can: SRS addresses (forwarding, bounces to
 * forwarded mail) routinely pass 64, so the envelope takes up to 128; the
 * path stays within 256. Account names keep the 64 (docs/accounts.md). */
#define SMTP_MAX_LOCALPART 128
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 256
/* Failed logins before 454 4.7.0, per account and per client address,
 * within the window (seconds). */
#define AUTH_FAIL_LIMIT_ACCOUNT 10
#define AUTH_FAIL_LIMIT_ADDR 20
#define AUTH_FAIL_WINDOW 900
/* Gmail's plans: messages and recipients per rolling 24 hours. */
#define PLAN_FREE_MESSAGES 500
#define PLAN_FREE_RECIPIENTS 500
#define PLAN_BUSINESS_MESSAGES 2000
#define PLAN_BUSINESS_RECIPIENTS 10000

/* Outbound transport (docs/outbound.md): connections in total and per
 * destination (Postfix: default_destination_concurrency_limit = 20; we are
 * gentler with small sites), seconds an idle connection is kept for the
 * next message to the same destination (Postfix smtp_connection_cache_time_limit). */
#define OUTBOUND_DEFAULT_MAX_CONNECTIONS 50
#define OUTBOUND_DEFAULT_MAX_PER_DEST 5
#define OUTBOUND_DEFAULT_IDLE_SECONDS 5
/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; we read up to
 * this many and fail the connection beyond (garbage or a hostile server). */
#define SMTPC_MAX_REPLY_LINE 2048
#define SMTPC_MAX_REPLY_LINES 100
/* MX hosts tried per destination and addresses per host (Postfix
 * smtp_mx_address_limit = 5, smtp_mx_session_limit = 2). */
#define DNS_MAX_MX_HOSTS 10
#define DNS_MAX_ADDRS 20
#define DNS_MAX_TLSA 8             /* usable TLSA records kept per MX host */
#define DNS_TLSA_MAX_DATA 16384    /* a full certificate or key (matching type 0) */

#endif
