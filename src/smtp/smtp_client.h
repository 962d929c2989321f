/* smtp_client: the outbound SMTP client (RFC 5321 client side, STARTTLS
 * RFC 3207, AUTH RFC 4954, PIPELINING RFC 2920, SIZE RFC 1870, 8BITMIME
 * RFC 6152, SMTPUTF8 RFC 6531) on libevent bufferevents.
 *
 * Two layers:
 *  - smtp_client_parse.c: the reply parser (multi-line replies, codes,
 *    enhanced status codes) and the EHLO capability parser. Pure, bounded,
 *    unit tested and fuzzed (tests/fuzz/fuzz_smtp_reply.c).
 *  - smtp_client.c: one connection as a state machine: connect (trying the
 *    targets in order), greeting, EHLO/HELO, STARTTLS, AUTH, then any
 *    number of transactions (MAIL, RCPT..., DATA or BDAT LAST with
 *    CHUNKING, RFC 3030) with RSET in between, and QUIT. The owner (queue/remote.c) decides what to do with the outcome. */
#ifndef ROOST_SMTP_CLIENT_H
#define ROOST_SMTP_CLIENT_H

#include "core/buf.h"

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/socket.h>

/* ---- replies (smtp_client_parse.c) ---- */

struct smtpc_reply {
    int code;            /* 0 until the first line is seen */
    char enhanced[16];   /* "5.1.1" from the first line, or "" */
    struct buf text;     /* the lines without "NNN-", joined by "\n" */
    int nlines;
    int done;
};

enum { SMTPC_MORE = 0, SMTPC_DONE = 1, SMTPC_BAD = -1 };

void smtpc_reply_init(struct smtpc_reply *r);
void smtpc_reply_reset(struct smtpc_reply *r);
void smtpc_reply_deinit(struct smtpc_reply *r);
/* Feeds one reply line (without the CRLF). SMTPC_DONE when the reply is
 * complete, SMTPC_MORE for a continuation line, SMTPC_BAD (ERROR_R set, a
 * static string) for anything that is not a reply line, a code that changes
 * between lines, too long a line or too many lines. */
int smtpc_reply_feed(struct smtpc_reply *r, const char *line, size_t len, const char **error_r);
/* "NNN text" with further lines joined by "\n"; allocated. */
char *smtpc_reply_string(const struct smtpc_reply *r);

/* Capabilities from a 250 reply to EHLO (RFC 5321 4.1.1.1). */
struct smtpc_caps {
    int pipelining, starttls, eightbitmime, smtputf8, chunking;
    int size_given;
    unsigned long long size;      /* 0 with size_given: no fixed limit */
    int auth_plain, auth_login;
};
void smtpc_parse_ehlo(const struct smtpc_reply *r, struct smtpc_caps *caps);

/* Enhanced status code at the start of TEXT ("5.1.1 ..."), matching class
 * CLS (2, 4 or 5). Returns its length (0 if none) and copies it into OUT. */
size_t smtpc_parse_enhanced(const char *text, size_t len, int cls, char out[16]);

/* ---- connections (smtp_client.c) ---- */

struct loop;
struct smtpc;

/* DANE (RFC 7672) for one target, from its DNSSEC-secure TLSA records. */
enum smtpc_dane {
    SMTPC_DANE_NONE,             /* the connection's TLS mode applies */
    SMTPC_DANE_VERIFY,           /* STARTTLS required; the certificate must match a TLSA record */
    SMTPC_DANE_TLS_ONLY,         /* TLSA records, none usable: STARTTLS required, unverified */
};

/* One TLSA record (RFC 6698 2.1). */
struct smtpc_tlsa {
    unsigned char usage, selector, mtype;
    size_t len;
    const unsigned char *data;
};

struct smtpc_target {
    char host[256];              /* the name we connect to (MX host, relay) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_str[64];           /* numeric */
    enum smtpc_dane dane;
    int tlsa_first, ntlsa;       /* SMTPC_DANE_VERIFY: its records in smtpc_params.tlsa */
};

enum smtpc_tls {
    SMTPC_TLS_OPPORTUNISTIC,     /* STARTTLS when offered, unverified; plain if not */
    SMTPC_TLS_REQUIRED,          /* STARTTLS, verified chain and name, or fail */
    SMTPC_TLS_IMPLICIT,          /* TLS from the first byte, verified */
};

struct smtpc_params {
    const char *helo;            /* our EHLO name */
    enum smtpc_tls tls;
    SSL_CTX *ssl_ctx;            /* verify or not, per TLS mode */
    const char *auth_user;       /* NULL: no AUTH */
    const char *auth_pass;
    int timeout_percent;         /* RFC 5321 4.5.3.2 timeouts, scaled */
    char source4[16];            /* numeric source address for IPv4 targets, "" none */
    char source6[46];            /* and for IPv6 targets */
    /* DANE: a context with SSL_CTX_dane_enable for SMTPC_DANE_VERIFY
     * targets, their TLSA records (copied by smtpc_connect), and the
     * next-domain, a second reference name for DANE-TA certificates when
     * the MX RRset was secure (RFC 7672 3.2.2), or NULL */
    SSL_CTX *dane_ctx;
    const struct smtpc_tlsa *tlsa;
    int ntlsa;
    const char *dane_domain;
    /* MTA-STS (RFC 8461) of the recipient domain STS_DOMAIN (copied):
     * STS_ENFORCE with SMTPC_TLS_REQUIRED makes the failures name MTA-STS
     * (4.7.5) and a verified session's tls desc end in "/mta-sts";
     * STS_TESTING (opportunistic TLS, a context with a CA store) logs what
     * enforce would have refused (event=mta-sts outcome=would-defer). DANE
     * targets are never judged by MTA-STS (RFC 8461 2). */
    int sts_enforce, sts_testing;
    const char *sts_domain;
};

/* Result of connecting (greeting, EHLO, TLS, AUTH), or of a transaction. */
enum smtpc_status {
    SMTPC_OK,
    SMTPC_TEMPFAIL,   /* connection failed, timeout, 4xx, garbage: try later */
    SMTPC_PERMFAIL,   /* 5xx to something that applies to every recipient */
};

struct smtpc_conn_result {
    enum smtpc_status status;
    int code;                    /* reply code, 0 if none */
    char enhanced[16];
    char *text;                  /* the reply or our description (allocated) */
    const char *event;           /* connect-failed, tls-failed, auth-failed or NULL */
    const char *hint;            /* plain words for the operator, or NULL */
    char remote[330];            /* "host [address]" of the last one tried, or "" */
    char tls[128];               /* its TLS ("TLSv1.3/CIPHER" or "none"), or "" */
};

typedef void (*smtpc_ready_fn)(void *arg, struct smtpc *c, const struct smtpc_conn_result *res);

/* Connects to TARGETS in order (copied): on a connection failure, a 4xx or
 * 5xx greeting, or (opportunistic TLS) a failed handshake (then the same
 * host again without TLS), the next. READY runs once, later, on LOOP's
 * base: status OK with C ready for transactions, or the last failure (C is
 * then already freed and NULL). */
struct smtpc *smtpc_connect(struct loop *loop, const struct smtpc_params *p,
                            const struct smtpc_target *targets, int ntargets,
                            smtpc_ready_fn ready, void *arg);

/* One transaction. PER_RCPT_CODE etc. are filled in per recipient. */
struct smtpc_rcpt_result {
    enum smtpc_status status;
    int code;
    char enhanced[16];
    char *text;                  /* allocated */
};
struct smtpc_tx {
    const char *sender;
    const char *const *rcpts;
    int nrcpt;
    const char *data;            /* the message, CRLF lines, not dot-stuffed */
    size_t len;
    struct smtpc_rcpt_result *results;   /* NRCPT of them, filled by smtpc */
    int stale;                   /* set by smtpc: a reused connection died at RSET,
                                  * nothing was sent (worth a fresh connection) */
};
/* DONE runs once, later. ALIVE: the connection may take another
 * transaction (else it has been closed and freed). */
typedef void (*smtpc_tx_fn)(void *arg, struct smtpc *c, int alive);
void smtpc_send(struct smtpc *c, struct smtpc_tx *tx, smtpc_tx_fn done, void *arg);

/* An idle connection: CLOSED runs if the server closes it (C is then freed). */
void smtpc_park(struct smtpc *c, void (*closed)(void *arg, struct smtpc *c), void *arg);
/* QUIT and free (the QUIT is sent and the socket closed in the background). */
void smtpc_quit(struct smtpc *c);
/* Frees C at once, no callbacks (shutdown of a busy connection). */
void smtpc_abort(struct smtpc *c);
/* Frees the connections still saying QUIT (at shutdown, on the loop). */
void smtpc_shutdown(void);

const struct smtpc_target *smtpc_current(const struct smtpc *c);
/* "TLSv1.3/TLS_AES_256_GCM_SHA384" or "none"; "/dane" is appended when
 * the certificate was verified by DANE TLSA records, "/mta-sts" when an
 * MTA-STS policy in enforce mode required and verified it */
const char *smtpc_tls_desc(const struct smtpc *c);
const struct smtpc_caps *smtpc_caps(const struct smtpc *c);

/* Helpers used by the client and by tests: does the message have bytes
 * >= 0x80; does an address need SMTPUTF8. */
int smtpc_has_8bit(const char *data, size_t len);
/* Appends DATA dot-stuffed (RFC 5321 4.5.2), bare LF made CRLF, ending
 * with CRLF.CRLF, to OUT (an evbuffer). */
struct evbuffer;
int smtpc_dot_stuff(struct evbuffer *out, const char *data, size_t len);
/* Appends DATA as one BDAT chunk (smtp_client_bdat.c): no dot-stuffing,
 * bare LF made CRLF, a final CRLF added if missing. */
int smtpc_chunk_body(struct evbuffer *out, const char *data, size_t len);

/* ---- DANE (smtp_client_dane.c) ---- */

/* Makes SSL (from a context with SSL_CTX_dane_enable) verify the peer by
 * the NTLSA records RECS (RFC 7672 3): the TLSA base domain HOST and,
 * when not NULL, NEXT_DOMAIN as the reference names for DANE-TA
 * certificates; no name checks for DANE-EE. 0 ok, -1 with ERROR_R (no
 * usable record, or an OpenSSL failure). */
int smtpc_dane_enable(SSL *ssl, const char *host, const char *next_domain,
                      const struct smtpc_tlsa *recs, int n, const char **error_r);
/* After a verified handshake: the record that matched, as "usage selector
 * mtype" and the depth of the certificate it matched, into OUT; 0, or -1
 * when DANE did not verify the peer. */
int smtpc_dane_matched(SSL *ssl, char *out, size_t outsz, int *depth_r);

#endif
