/* smtp_client: one outbound SMTP connection as an explicit state machine
 * on a libevent bufferevent (see smtp_client.h).
 *
 *   CONNECT -> [implicit TLS] -> GREETING -> EHLO (5xx: HELO) ->
 *   [STARTTLS -> TLS -> EHLO] -> [AUTH] -> READY
 *   READY -> [RSET] -> MAIL, RCPT... (one write with PIPELINING) -> DATA ->
 *   message -> READY (or closed)
 *   With CHUNKING (RFC 3030) offered, "BDAT <size> LAST" and the message
 *   (not dot-stuffed) take the place of DATA: in the same write as MAIL and
 *   RCPT with PIPELINING, else after the last RCPT reply (S_BDAT).
 *
 * Every wait for a reply has the RFC 5321 4.5.3.2 timeout of its state,
 * scaled by timeout_percent. A failure while connecting moves to the next
 * target; a failed opportunistic TLS handshake retries the same target in
 * plain text (as Postfix does: the mail gets through, and the log says
 * tls-failed). Replies are read line by line with a hard length limit;
 * anything that is not a reply closes the connection (temporary failure).
 *
 * DANE (RFC 7672): a target with TLSA records (smtpc_target.dane) must
 * offer STARTTLS and, with usable records, present a certificate that
 * matches one (smtp_client_dane.c); otherwise the next target, never
 * plain text. Its failures carry the enhanced code 4.7.5.
 *
 * MTA-STS (RFC 8461): with sts_enforce the connection is TLS_REQUIRED
 * (queue/remote.c picks the MX hosts); its failures say MTA-STS and carry
 * 4.7.5 too. With sts_testing it stays opportunistic, but the certificate
 * is checked without being enforced and what enforce would have refused
 * is logged (event=mta-sts outcome=would-defer).
 *
 * Lifetime: the owner's callbacks (ready, tx done, closed) are the last
 * thing a handler does, so the owner may free or reuse the connection from
 * inside them. Connections saying QUIT are kept on a list until the reply
 * or a short timeout, and smtpc_shutdown() frees what is left. */
#include "smtp/smtp_client.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SMTPC_MAX_TARGETS 32

enum smtpc_state {
    S_CONNECT, S_TLS_IMPLICIT, S_GREETING, S_EHLO, S_HELO, S_STARTTLS, S_TLS, S_EHLO2,
    S_AUTH_PLAIN, S_AUTH_LOGIN_USER, S_AUTH_LOGIN_PASS, S_AUTH_LOGIN_DONE, S_READY,
    S_RSET, S_MAIL_RCPT, S_DATA, S_DOT, S_BDAT, S_IDLE, S_QUIT,
};

static const char *const state_names[] = {
    "connect", "tls-implicit", "greeting", "ehlo", "helo", "starttls", "tls", "ehlo",
    "auth", "auth", "auth", "auth", "ready", "rset", "mail-rcpt", "data", "dot", "bdat",
    "idle", "quit",
};

/* RFC 5321 4.5.3.2 (seconds); connect as Postfix smtp_connect_timeout. */
static int state_timeout_s(enum smtpc_state s)
{
    switch (s) {
    case S_CONNECT: return 30;
    case S_TLS_IMPLICIT: case S_TLS: return NET_TLS_HANDSHAKE_TIMEOUT * 2;
    case S_GREETING: return 300;
    case S_MAIL_RCPT: return 300;
    case S_DATA: return 120;
    case S_DOT: return 600;
    case S_BDAT: return 600;   /* like the final dot: the reply is the outcome */
    case S_QUIT: return 5;
    default: return 300;
    }
}

struct smtpc {
    struct loop *loop;
    struct event_base *base;
    struct smtpc_params p;
    char *helo, *auth_user, *auth_pass;
    struct smtpc_target targets[SMTPC_MAX_TARGETS];
    int ntargets, cur;
    int plain_retry;           /* this target again, without TLS */
    int last_tried;            /* index of the last target connected to, -1 */
    struct bufferevent *bev;
    SSL *ssl;                  /* owned by the bev once attached */
    enum smtpc_state state;
    struct smtpc_reply reply;
    struct smtpc_caps caps;
    char tls_desc[128];
    struct smtpc_tlsa *tlsa;   /* copies of the params' records (DANE) */
    int ntlsa;
    unsigned char *tlsa_blob;  /* their data */
    char *dane_domain;
    char sts_domain[256];      /* MTA-STS: the recipient domain, for the logs */
    smtpc_ready_fn ready;
    void *ready_arg;
    struct smtpc_conn_result last;   /* the last connection-level failure */
    /* transaction */
    struct smtpc_tx *tx;
    smtpc_tx_fn tx_done;
    void *tx_arg;
    int need_rset;
    int expected;              /* replies still due in S_MAIL_RCPT */
    int mail_idx;              /* next reply: -1 MAIL, else the rcpt index */
    int sent;                  /* commands sent: 0 none, 1 MAIL, 1+i RCPTs */
    int mail_failed;
    int accepted;
    int bdat_sent;             /* BDAT LAST and the message are on the wire */
    /* parked */
    void (*closed)(void *arg, struct smtpc *c);
    void *closed_arg;
    struct smtpc *qnext, *qprev;   /* the QUIT list */
    struct event *later_ev;
    void (*later_fn)(evutil_socket_t, short, void *);
};

static struct smtpc *quitting;    /* the queue loop's thread only */

static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void try_target(struct smtpc *c);
static void copy_tlsa(struct smtpc *c, const struct smtpc_params *p);
static int bound_socket(int family, const char *src);
static void target_failed(struct smtpc *c, const char *event, const char *hint, int code,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void on_reply(struct smtpc *c);
static void conn_lost(struct smtpc *c, const char *why);
static void tx_continue(struct smtpc *c);
static void tx_finish(struct smtpc *c, int alive);

static void try_target_cb(evutil_socket_t fd, short what, void *arg)
{
    try_target(arg);
}

static void tx_continue_cb(evutil_socket_t fd, short what, void *arg)
{
    tx_continue(arg);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smtpc *c = arg;
    c->later_fn(fd, what, c);
}

/* Runs FN at the next loop iteration; the timer dies with C. */
static void later(struct smtpc *c, void (*fn)(evutil_socket_t, short, void *))
{
    struct timeval now = {0, 0};
    c->later_fn = fn;
    if (evtimer_add(c->later_ev, &now) < 0)
        abort();
}

static void set_state(struct smtpc *c, enum smtpc_state s)
{
    if (c->state != s && c->cur >= 0 && c->cur < c->ntargets)
        log_debug("outbound", "event=state remote=\"%s [%s]\" from=%s to=%s",
                  c->targets[c->cur].host, c->targets[c->cur].addr_str,
                  state_names[c->state], state_names[s]);
    c->state = s;
    long ms = (long)state_timeout_s(s) * 10L * c->p.timeout_percent;
    if (ms < 100)
        ms = 100;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (c->bev) {
        /* the data block timeout (3 min) applies to writes */
        long wms = 180L * 10L * c->p.timeout_percent;
        struct timeval wtv = {wms / 1000, (wms % 1000) * 1000};
        bufferevent_set_timeouts(c->bev, s == S_IDLE ? NULL : &tv, s == S_IDLE ? NULL : &wtv);
    }
}

static void sendf(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sendf(struct smtpc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
    va_end(ap);
}

static void result_clear(struct smtpc_conn_result *r)
{
    free(r->text);
    memset(r, 0, sizeof *r);
}

static void bev_close(struct smtpc *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);   /* frees the SSL and closes the socket */
        c->bev = NULL;
        c->ssl = NULL;
    } else if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
}

static void smtpc_free(struct smtpc *c)
{
    bev_close(c);
    if (c->later_ev)
        event_free(c->later_ev);
    smtpc_reply_deinit(&c->reply);
    result_clear(&c->last);
    free(c->helo);
    free(c->tlsa);
    free(c->tlsa_blob);
    free(c->dane_domain);
    if (c->auth_pass)
        OPENSSL_cleanse(c->auth_pass, strlen(c->auth_pass));
    free(c->auth_user);
    free(c->auth_pass);
    free(c);
}

/* ---- connecting ---- */

struct smtpc *smtpc_connect(struct loop *loop, const struct smtpc_params *p,
                            const struct smtpc_target *targets, int ntargets,
                            smtpc_ready_fn ready, void *arg)
{
    struct smtpc *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->base = loop_base(loop);
    c->p = *p;
    c->helo = xstrdup(p->helo);
    c->auth_user = p->auth_user ? xstrdup(p->auth_user) : NULL;
    c->auth_pass = p->auth_pass ? xstrdup(p->auth_pass) : NULL;
    c->p.helo = c->helo;
    c->p.auth_user = c->auth_user;
    c->p.auth_pass = c->auth_pass;
    if (c->p.timeout_percent <= 0)
        c->p.timeout_percent = 100;
    c->ntargets = ntargets < SMTPC_MAX_TARGETS ? ntargets : SMTPC_MAX_TARGETS;
    memcpy(c->targets, targets, sizeof targets[0] * (size_t)c->ntargets);
    copy_tlsa(c, p);
    snprintf(c->sts_domain, sizeof c->sts_domain, "%s", p->sts_domain ? p->sts_domain : "");
    c->p.sts_domain = c->sts_domain;
    c->ready = ready;
    c->ready_arg = arg;
    c->cur = -1;
    c->last_tried = -1;
    smtpc_reply_init(&c->reply);
    snprintf(c->tls_desc, sizeof c->tls_desc, "none");
    c->last.status = SMTPC_TEMPFAIL;
    c->last.text = xstrdup("no mail server to connect to");
    c->last.event = "connect-failed";
    /* Start from a timer so READY never runs inside this call. */
    c->later_ev = evtimer_new(c->base, later_cb, c);
    if (!c->later_ev)
        abort();
    set_state(c, S_CONNECT);
    later(c, try_target_cb);
    return c;
}

static int start_tls(struct smtpc *c, int implicit)
{
    const struct smtpc_target *t = &c->targets[c->cur];
    int dane = t->dane == SMTPC_DANE_VERIFY;
    if (dane && !c->p.dane_ctx)
        return -1;   /* never without the verifier: the target fails */
    c->ssl = SSL_new(dane ? c->p.dane_ctx : c->p.ssl_ctx);
    if (!c->ssl)
        return -1;
    struct in6_addr dummy;
    int numeric = inet_pton(AF_INET, t->host, &dummy) == 1 || inet_pton(AF_INET6, t->host, &dummy) == 1;
    if (!numeric)
        SSL_set_tlsext_host_name(c->ssl, t->host);
    if (dane) {
        const char *err;
        if (t->tlsa_first < 0 || t->tlsa_first + t->ntlsa > c->ntlsa ||
            smtpc_dane_enable(c->ssl, t->host, c->dane_domain, c->tlsa + t->tlsa_first,
                              t->ntlsa, &err) < 0) {
            SSL_free(c->ssl);
            c->ssl = NULL;
            return -1;
        }
    } else if (c->p.tls != SMTPC_TLS_OPPORTUNISTIC) {
        /* RFC 7672 is for DANE; for a named policy we check the name we
         * connected to (the MX host or the relay) against the certificate */
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (numeric ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), t->host) != 1
                    : SSL_set1_host(c->ssl, t->host) != 1) {
            SSL_free(c->ssl);
            c->ssl = NULL;
            return -1;
        }
        SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
        if (c->p.sts_testing && !numeric) {
            /* MTA-STS testing: verified (chain and name) but not enforced;
             * tls_done logs the outcome */
            SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(c->ssl, t->host) != 1)
                ERR_clear_error();
        }
    }
    /* The filter's own timeouts (set_state) govern from now on: the plain
     * bev's last ones (connect: 30 s scaled, for implicit TLS) would
     * otherwise end a slow AUTH or final dot under it. */
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    struct bufferevent *tb = bufferevent_openssl_filter_new(
        c->base, c->bev, c->ssl, BUFFEREVENT_SSL_CONNECTING,
        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!tb) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        return -1;
    }
    c->bev = tb;   /* owns the plain bev and the SSL now */
    bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
    bufferevent_setcb(tb, read_cb, NULL, event_cb, c);
    bufferevent_enable(tb, EV_READ | EV_WRITE);
    set_state(c, implicit ? S_TLS_IMPLICIT : S_TLS);
    return 0;
}

/* The TLS mode for the current target: a DANE target requires TLS
 * whatever the connection's mode (RFC 7672 2.2). */
static enum smtpc_tls target_tls(const struct smtpc *c)
{
    if (c->cur >= 0 && c->cur < c->ntargets && c->targets[c->cur].dane != SMTPC_DANE_NONE &&
        c->p.tls == SMTPC_TLS_OPPORTUNISTIC)
        return SMTPC_TLS_REQUIRED;
    return c->p.tls;
}

static int target_dane(const struct smtpc *c)
{
    return c->cur >= 0 && c->cur < c->ntargets && c->targets[c->cur].dane != SMTPC_DANE_NONE;
}

/* MTA-STS testing mode: what an enforced policy would have refused with
 * the current target (RFC 8461 5: deliver, but say so). */
static void sts_would_defer(const struct smtpc *c, const char *why)
{
    if (!c->p.sts_testing || target_dane(c))
        return;
    const struct smtpc_target *t = &c->targets[c->cur];
    char qw[LOG_QSIZE];
    log_warn("outbound", "event=mta-sts domain=%s mode=testing outcome=would-defer"
             " remote=\"%s [%s]\" reason=%s hint=\"the domain's MTA-STS policy is in testing"
             " mode, so the mail is delivered; in enforce mode this server would be refused\"",
             c->sts_domain, t->host, t->addr_str, log_q(qw, sizeof qw, why, strlen(why)));
}

/* The params' TLSA records, data included, into C (the caller's go away). */
static void copy_tlsa(struct smtpc *c, const struct smtpc_params *p)
{
    c->p.tlsa = NULL;
    c->p.dane_domain = NULL;
    c->dane_domain = p->dane_domain ? xstrdup(p->dane_domain) : NULL;
    if (!p->tlsa || p->ntlsa <= 0)
        return;
    size_t total = 0;
    for (int i = 0; i < p->ntlsa; i++)
        total += p->tlsa[i].len;
    c->tlsa = xcalloc((size_t)p->ntlsa, sizeof *c->tlsa);
    c->tlsa_blob = xmalloc(total ? total : 1);
    size_t o = 0;
    for (int i = 0; i < p->ntlsa; i++) {
        c->tlsa[i] = p->tlsa[i];
        memcpy(c->tlsa_blob + o, p->tlsa[i].data, p->tlsa[i].len);
        c->tlsa[i].data = c->tlsa_blob + o;
        o += p->tlsa[i].len;
    }
    c->ntlsa = p->ntlsa;
}

static void try_target(struct smtpc *c)
{
    if (c->plain_retry == 1)
        c->plain_retry = 2;   /* the same target, in plain text */
    else {
        c->plain_retry = 0;
        c->cur++;
    }
    if (c->cur >= c->ntargets) {
        /* every target failed: report the last failure */
        smtpc_ready_fn ready = c->ready;
        void *arg = c->ready_arg;
        struct smtpc_conn_result res = c->last;
        memset(&c->last, 0, sizeof c->last);
        if (c->last_tried >= 0) {
            const struct smtpc_target *t = &c->targets[c->last_tried];
            snprintf(res.remote, sizeof res.remote, "%.255s [%.63s]", t->host, t->addr_str);
            snprintf(res.tls, sizeof res.tls, "%s", c->tls_desc);
        }
        smtpc_free(c);
        ready(arg, NULL, &res);
        free(res.text);
        return;
    }
    const struct smtpc_target *t = &c->targets[c->cur];
    c->last_tried = c->cur;
    bev_close(c);
    smtpc_reply_reset(&c->reply);
    memset(&c->caps, 0, sizeof c->caps);
    snprintf(c->tls_desc, sizeof c->tls_desc, "none");
    int fd = -1;
    const char *src = t->addr.ss_family == AF_INET6 ? c->p.source6 : c->p.source4;
    if (src[0] && (fd = bound_socket(t->addr.ss_family, src)) < 0) {
        target_failed(c, "connect-failed", "check [outbound] source_address: it must be an"
                      " address of this host", 0, "cannot use source address %s for %s [%s]: %s",
                      src, t->host, t->addr_str, strerror(errno));
        return;
    }
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!c->bev) {
        if (fd >= 0)
            close(fd);
        target_failed(c, "connect-failed", NULL, 0, "cannot create a socket");
        return;
    }
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    set_state(c, S_CONNECT);
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&t->addr, (int)t->addrlen) < 0) {
        target_failed(c, "connect-failed", NULL, 0, "cannot connect to %s [%s]: %s", t->host,
                      t->addr_str, strerror(errno));
        return;
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* A non-blocking TCP socket of FAMILY bound to numeric address SRC (any
 * port), or -1 with errno. */
static int bound_socket(int family, const char *src)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        len = sizeof *a;
        if (inet_pton(AF_INET6, src, &a->sin6_addr) != 1) {
            errno = EINVAL;
            return -1;
        }
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        len = sizeof *a;
        if (inet_pton(AF_INET, src, &a->sin_addr) != 1) {
            errno = EINVAL;
            return -1;
        }
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The current target failed while connecting: remember why, try the next. */
static void target_failed(struct smtpc *c, const char *event, const char *hint, int code,
                          const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    const struct smtpc_target *t = c->cur >= 0 && c->cur < c->ntargets ? &c->targets[c->cur] : NULL;
    char qt[LOG_QSIZE];
    /* the log always says what happens next; the result keeps only a
     * hint about something to fix */
    const char *lhint = hint;
    if (!lhint && event && strcmp(event, "connect-failed") == 0)
        lhint = c->cur + 1 < c->ntargets ? "this mail server cannot be used now; trying the next one"
                                         : "no mail server of the destination could be used";
    else if (!lhint && event && strcmp(event, "tls-failed") == 0)
        lhint = "TLS with this server failed";
    if (event && t)
        log_warn("outbound", "event=%s remote=\"%s [%s]\" error=%s%s%s%s", event, t->host,
                 t->addr_str, log_q(qt, sizeof qt, text, strlen(text)), lhint ? " hint=\"" : "",
                 lhint ? lhint : "", lhint ? "\"" : "");
    result_clear(&c->last);
    c->last.status = code >= 500 && code < 600 ? SMTPC_PERMFAIL : SMTPC_TEMPFAIL;
    c->last.code = code;
    if (code && strlen(text) > 4)
        smtpc_parse_enhanced(text + 4, strlen(text) - 4, code / 100, c->last.enhanced);
    c->last.text = xstrdup(text);
    c->last.event = event;
    c->last.hint = hint;
    if (event && strcmp(event, "tls-failed") == 0 && (target_dane(c) || c->p.sts_enforce) &&
        !c->last.enhanced[0]) {
        /* a DANE (RFC 7672) or MTA-STS (RFC 8461) policy failure: 4.7.5 */
        snprintf(c->last.enhanced, sizeof c->last.enhanced, "4.7.5");
        free(c->last.text);
        c->last.text = xasprintf("451 4.7.5 %s", text);
    }
    /* AUTH failures are the same on every host of a relay: stop there */
    if (event && strcmp(event, "auth-failed") == 0)
        c->cur = c->ntargets;
    bev_close(c);
    later(c, try_target_cb);
}

static void connected(struct smtpc *c)
{
    if (c->p.tls == SMTPC_TLS_IMPLICIT) {
        if (start_tls(c, 1) < 0)
            target_failed(c, "tls-failed", NULL, 0, "cannot start TLS");
        return;
    }
    set_state(c, S_GREETING);
}

static void tls_done(struct smtpc *c)
{
    const struct smtpc_target *t = &c->targets[c->cur];
    char rec[32];
    int depth = -1;
    int dane = t->dane == SMTPC_DANE_VERIFY && smtpc_dane_matched(c->ssl, rec, sizeof rec, &depth) == 0;
    if (t->dane == SMTPC_DANE_VERIFY && !dane) {
        /* cannot happen (SSL_VERIFY_PEER fails the handshake): never send unverified */
        target_failed(c, "tls-failed", NULL, 0, "DANE: the certificate of %s [%s] was not"
                      " verified", t->host, t->addr_str);
        return;
    }
    int sts = !dane && c->p.sts_enforce && c->p.tls == SMTPC_TLS_REQUIRED;
    snprintf(c->tls_desc, sizeof c->tls_desc, "%s/%s%s", SSL_get_version(c->ssl),
             SSL_get_cipher_name(c->ssl), dane ? "/dane" : sts ? "/mta-sts" : "");
    if (!dane && c->p.sts_testing) {
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK) {
            char why[200];
            snprintf(why, sizeof why, "certificate not accepted: %s",
                     X509_verify_cert_error_string(vr));
            sts_would_defer(c, why);
        }
    }
    if (dane)
        log_info("outbound", "event=dane-verified remote=\"%s [%s]\" tlsa=\"%s\" depth=%d",
                 t->host, t->addr_str, rec, depth);
    if (c->state == S_TLS_IMPLICIT) {
        set_state(c, S_GREETING);
        return;
    }
    set_state(c, S_EHLO2);
    sendf(c, "EHLO %s\r\n", c->helo);
}

static void tls_failed(struct smtpc *c)
{
    const struct smtpc_target *t = &c->targets[c->cur];
    char detail[256] = "";
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(detail, sizeof detail, "certificate not accepted: %s",
                 X509_verify_cert_error_string(vr));
    else if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    else
        snprintf(detail, sizeof detail, "connection closed during the handshake");
    ERR_clear_error();
    if (target_dane(c)) {
        target_failed(c, "tls-failed",
                      vr != X509_V_OK ? "the server's certificate matches none of the DANE TLSA"
                                        " records the destination publishes for this host"
                                        " (RFC 7672); its operator must fix the records or"
                                        " the certificate; the mail waits"
                                      : "the TLS handshake failed; this host requires TLS"
                                        " (DANE TLSA records), so the mail waits",
                      0, "DANE: TLS with %s [%s] failed: %s", t->host, t->addr_str, detail);
        return;
    }
    if (target_tls(c) == SMTPC_TLS_OPPORTUNISTIC && c->state == S_TLS) {
        log_warn("outbound", "event=tls-failed remote=\"%s [%s]\" error=\"%s\" hint=\"STARTTLS"
                 " handshake failed; retrying this host without TLS (opportunistic TLS)\"",
                 t->host, t->addr_str, detail);
        sts_would_defer(c, "the STARTTLS handshake failed");
        c->plain_retry = 1;
        bev_close(c);
        later(c, try_target_cb);
        return;
    }
    if (c->p.sts_enforce) {
        target_failed(c, "tls-failed",
                      vr != X509_V_OK ? "the destination's MTA-STS policy (enforce) requires a"
                                        " certificate that verifies for the MX host name; this"
                                        " one does not, so the mail waits (the destination"
                                        " must fix its certificate or its policy)"
                                      : "the TLS handshake failed; the destination's MTA-STS"
                                        " policy (enforce) requires TLS, so the mail waits",
                      0, "MTA-STS: TLS with %s [%s] failed: %s", t->host, t->addr_str, detail);
        return;
    }
    target_failed(c, "tls-failed",
                  vr != X509_V_OK ? "the server's certificate does not verify for this host name;"
                                    " for a relay set relay_ca_file, for MX hosts tls_ca_file"
                                  : "the TLS handshake failed",
                  0, "TLS with %s [%s] failed: %s", t->host, t->addr_str, detail);
}

/* ---- I/O ---- */

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct smtpc *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        if (c->state == S_TLS || c->state == S_TLS_IMPLICIT || c->state == S_CONNECT)
            return;
        size_t eol_len = 0;
        struct evbuffer_ptr pos = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        if (pos.pos < 0) {
            if (evbuffer_get_length(in) > SMTPC_MAX_REPLY_LINE) {
                conn_lost(c, "the server sent a line longer than 2048 bytes");
            }
            return;
        }
        if ((size_t)pos.pos > SMTPC_MAX_REPLY_LINE) {
            conn_lost(c, "the server sent a line longer than 2048 bytes");
            return;
        }
        char line[SMTPC_MAX_REPLY_LINE + 3];
        evbuffer_remove(in, line, (size_t)pos.pos);
        evbuffer_drain(in, eol_len);
        if (c->state == S_IDLE || c->state == S_QUIT) {
            /* an idle server speaking (421) or the answer to QUIT: done */
            conn_lost(c, "the server closed the idle connection");
            return;
        }
        const char *err = NULL;
        int r = smtpc_reply_feed(&c->reply, line, (size_t)pos.pos, &err);
        if (r == SMTPC_BAD) {
            char msg[128];
            snprintf(msg, sizeof msg, "the server sent a malformed reply (%s)", err);
            conn_lost(c, msg);
            return;
        }
        if (r == SMTPC_MORE)
            continue;
        /* on_reply may hand C to the owner (who may free it): read on only
         * while pipelined replies are still due, when it cannot have */
        int more = c->state == S_MAIL_RCPT && c->expected > 1;
        on_reply(c);
        if (!more)
            return;
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct smtpc *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == S_CONNECT)
            connected(c);
        else if (c->state == S_TLS || c->state == S_TLS_IMPLICIT)
            tls_done(c);
        return;
    }
    if (c->state == S_TLS || c->state == S_TLS_IMPLICIT) {
        if (what & BEV_EVENT_TIMEOUT)
            target_failed(c, "tls-failed", NULL, 0, "TLS handshake with %s timed out",
                          c->targets[c->cur].host);
        else
            tls_failed(c);
        return;
    }
    if (c->state == S_CONNECT) {
        const struct smtpc_target *t = &c->targets[c->cur];
        int err = EVUTIL_SOCKET_ERROR();
        if (what & BEV_EVENT_TIMEOUT)
            target_failed(c, "connect-failed", NULL, 0, "connection to %s [%s] timed out",
                          t->host, t->addr_str);
        else
            target_failed(c, "connect-failed", NULL, 0, "cannot connect to %s [%s]: %s",
                          t->host, t->addr_str, err ? evutil_socket_error_to_string(err)
                                                    : "connection failed");
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        char msg[96];
        snprintf(msg, sizeof msg, "timeout waiting for the server's reply (%s)",
                 state_names[c->state]);
        conn_lost(c, msg);
    } else if (what & BEV_EVENT_EOF) {
        conn_lost(c, "the server closed the connection");
    } else {
        conn_lost(c, "connection error");
    }
}

/* The connection is gone (EOF, error, timeout, garbage) outside connect. */
static void conn_lost(struct smtpc *c, const char *why)
{
    const struct smtpc_target *t = &c->targets[c->cur];
    char text[600];
    if (c->reply.nlines > 0 && !c->reply.done)
        snprintf(text, sizeof text, "%s [%s]: %s in the middle of a reply", t->host, t->addr_str, why);
    else
        snprintf(text, sizeof text, "%s [%s]: %s", t->host, t->addr_str, why);
    switch (c->state) {
    case S_GREETING: case S_EHLO: case S_HELO: case S_STARTTLS: case S_EHLO2:
    case S_AUTH_PLAIN: case S_AUTH_LOGIN_USER: case S_AUTH_LOGIN_PASS: case S_AUTH_LOGIN_DONE:
        c->plain_retry = 0;
        target_failed(c, "connect-failed", NULL, 0, "%s", text);
        return;
    case S_IDLE: {
        bev_close(c);
        void (*closed)(void *, struct smtpc *) = c->closed;
        void *arg = c->closed_arg;
        c->closed = NULL;
        if (closed)
            closed(arg, c);   /* the owner frees it (smtpc_quit) */
        else
            smtpc_quit(c);
        return;
    }
    case S_QUIT:
        if (c->qprev)
            c->qprev->qnext = c->qnext;
        else if (quitting == c)
            quitting = c->qnext;
        if (c->qnext)
            c->qnext->qprev = c->qprev;
        smtpc_free(c);
        return;
    default:
        break;
    }
    /* in a transaction: every recipient without a final answer is deferred */
    if (c->tx && c->state == S_RSET && c->sent == 0)
        c->tx->stale = 1;
    if (c->tx) {
        for (int i = 0; i < c->tx->nrcpt; i++) {
            struct smtpc_rcpt_result *r = &c->tx->results[i];
            if (r->code != 0 && r->status != SMTPC_OK)
                continue;   /* its own RCPT refusal stands */
            free(r->text);
            r->status = SMTPC_TEMPFAIL;
            r->code = 0;
            snprintf(r->enhanced, sizeof r->enhanced, "4.4.2");
            r->text = xstrdup(text);
        }
    }
    bev_close(c);
    tx_finish(c, 0);
}

/* ---- the session before transactions ---- */

static char *b64(const void *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

static void start_auth(struct smtpc *c)
{
    if (c->caps.auth_plain) {
        size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
        char *raw = xmalloc(ul + pl + 2);
        raw[0] = '\0';
        memcpy(raw + 1, c->auth_user, ul);
        raw[1 + ul] = '\0';
        memcpy(raw + 2 + ul, c->auth_pass, pl);
        char *enc = b64(raw, ul + pl + 2);
        OPENSSL_cleanse(raw, ul + pl + 2);
        free(raw);
        set_state(c, S_AUTH_PLAIN);
        sendf(c, "AUTH PLAIN %s\r\n", enc);
        OPENSSL_cleanse(enc, strlen(enc));
        free(enc);
    } else {
        set_state(c, S_AUTH_LOGIN_USER);
        sendf(c, "AUTH LOGIN\r\n");
    }
}

static const char *auth_hint(const struct smtpc_reply *r)
{
    if (r->code == 534 || strcmp(r->enhanced, "5.7.9") == 0)
        return "the relay wants an app password (534 5.7.9 Application-specific password"
               " required): create one in the relay account's security settings and put it"
               " in relay_auth_file";
    if (r->code == 535 || strcmp(r->enhanced, "5.7.8") == 0)
        return "the relay refused the username or password (535 5.7.8): fix relay_auth_file"
               " (format: username password)";
    if (r->code == 454)
        return "the relay refuses logins for now (454): too many attempts; it will be retried";
    return "the relay refused AUTH: check relay_auth_file";
}

/* Greeting, EHLO, TLS and AUTH done (or skipped): ready for transactions. */
static void session_ready(struct smtpc *c)
{
    if (target_dane(c) && !c->ssl) {
        target_failed(c, "tls-failed", "the destination publishes DANE TLSA records for this"
                      " host (RFC 7672), so TLS is required, but the server does not offer"
                      " STARTTLS; the mail is not sent in plain text",
                      0, "DANE: %s [%s] does not offer STARTTLS", c->targets[c->cur].host,
                      c->targets[c->cur].addr_str);
        return;
    }
    if (c->p.tls == SMTPC_TLS_REQUIRED && !c->ssl && c->p.sts_enforce) {
        target_failed(c, "tls-failed", "the destination's MTA-STS policy (enforce) requires"
                      " TLS but the server does not offer STARTTLS; the mail is not sent in"
                      " plain text", 0, "MTA-STS: %s [%s] does not offer STARTTLS",
                      c->targets[c->cur].host, c->targets[c->cur].addr_str);
        return;
    }
    if (!c->ssl && c->plain_retry != 2 && !c->auth_user)
        sts_would_defer(c, "the server does not offer STARTTLS");
    if (c->p.tls == SMTPC_TLS_REQUIRED && !c->ssl) {
        target_failed(c, "tls-failed", "TLS is required for this destination"
                      " (tls_required_domains) but the server does not offer STARTTLS",
                      0, "%s [%s] does not offer STARTTLS", c->targets[c->cur].host,
                      c->targets[c->cur].addr_str);
        return;
    }
    if (c->auth_user && c->state != S_AUTH_PLAIN && c->state != S_AUTH_LOGIN_DONE) {
        if (!c->ssl) {
            target_failed(c, "auth-failed", "the relay does not offer STARTTLS; Roost sends"
                          " its password only over TLS", 0,
                          "%s [%s] does not offer TLS, AUTH not attempted",
                          c->targets[c->cur].host, c->targets[c->cur].addr_str);
            return;
        }
        if (!c->caps.auth_plain && !c->caps.auth_login) {
            target_failed(c, "auth-failed", "the relay offers neither AUTH PLAIN nor AUTH LOGIN",
                          0, "%s [%s] offers no usable AUTH mechanism", c->targets[c->cur].host,
                          c->targets[c->cur].addr_str);
            return;
        }
        start_auth(c);
        return;
    }
    set_state(c, S_READY);
    bufferevent_disable(c->bev, EV_READ);
    c->plain_retry = 0;
    smtpc_ready_fn ready = c->ready;
    c->ready = NULL;
    struct smtpc_conn_result ok = {.status = SMTPC_OK};
    ready(c->ready_arg, c, &ok);
}

static void after_ehlo(struct smtpc *c)
{
    smtpc_parse_ehlo(&c->reply, &c->caps);
    if (c->state == S_EHLO && !c->ssl && !c->plain_retry && c->caps.starttls &&
        c->p.tls != SMTPC_TLS_IMPLICIT) {
        set_state(c, S_STARTTLS);
        sendf(c, "STARTTLS\r\n");
        return;
    }
    session_ready(c);
}

static void on_session_reply(struct smtpc *c)
{
    const struct smtpc_target *t = &c->targets[c->cur];
    const struct smtpc_reply *r = &c->reply;
    char *rs = smtpc_reply_string(r);
    switch (c->state) {
    case S_GREETING:
        if (r->code != 220) {
            target_failed(c, "connect-failed", NULL, r->code, "%s", rs);
            break;
        }
        set_state(c, S_EHLO);
        sendf(c, "EHLO %s\r\n", c->helo);
        break;
    case S_EHLO:
    case S_EHLO2:
        if (r->code == 250)
            after_ehlo(c);
        else if (r->code >= 500 && c->state == S_EHLO && !c->ssl) {
            set_state(c, S_HELO);
            sendf(c, "HELO %s\r\n", c->helo);
        } else
            target_failed(c, "connect-failed", NULL, r->code, "%s", rs);
        break;
    case S_HELO:
        if (r->code == 250) {
            memset(&c->caps, 0, sizeof c->caps);
            session_ready(c);
        } else
            target_failed(c, "connect-failed", NULL, r->code, "%s", rs);
        break;
    case S_STARTTLS:
        if (r->code != 220) {
            if (target_tls(c) == SMTPC_TLS_OPPORTUNISTIC) {
                c->caps.starttls = 0;
                session_ready(c);   /* go on in plain text */
            } else
                target_failed(c, "tls-failed", "the server refused STARTTLS", r->code, "%s", rs);
            break;
        }
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            /* plaintext after the 220: an injection attempt (CVE-2011-0411) */
            target_failed(c, "tls-failed", NULL, 0, "%s [%s] sent data after its STARTTLS reply",
                          t->host, t->addr_str);
            break;
        }
        if (start_tls(c, 0) < 0)
            target_failed(c, "tls-failed", NULL, 0, "cannot start TLS");
        break;
    case S_AUTH_LOGIN_USER:
    case S_AUTH_LOGIN_PASS:
        if (r->code == 334) {
            const char *v = c->state == S_AUTH_LOGIN_USER ? c->auth_user : c->auth_pass;
            char *enc = b64(v, strlen(v));
            sendf(c, "%s\r\n", enc);
            OPENSSL_cleanse(enc, strlen(enc));
            free(enc);
            set_state(c, c->state == S_AUTH_LOGIN_USER ? S_AUTH_LOGIN_PASS : S_AUTH_LOGIN_DONE);
            break;
        }
        /* fall through */
    case S_AUTH_PLAIN:
    case S_AUTH_LOGIN_DONE:
        if (r->code == 235) {
            log_info("outbound", "event=auth-ok remote=\"%s [%s]\"", t->host, t->addr_str);
            set_state(c, S_AUTH_LOGIN_DONE);
            session_ready(c);
        } else {
            /* 5xx to AUTH must not fail the mail: the operator's password
             * is wrong, not the message (it stays queued) */
            target_failed(c, "auth-failed", auth_hint(r), 0, "%s", rs);
            c->last.code = r->code;
            memcpy(c->last.enhanced, r->enhanced, sizeof c->last.enhanced);
            c->last.status = SMTPC_TEMPFAIL;
        }
        break;
    default:
        break;
    }
    free(rs);
}

/* ---- transactions ---- */

static int needs_smtputf8(const struct smtpc_tx *tx)
{
    if (smtpc_has_8bit(tx->sender, strlen(tx->sender)))
        return 1;
    for (int i = 0; i < tx->nrcpt; i++)
        if (smtpc_has_8bit(tx->rcpts[i], strlen(tx->rcpts[i])))
            return 1;
    return 0;
}

/* 8-bit bytes in the header section (UTF-8 header fields, RFC 6532). */
static int header_8bit(const char *d, size_t len)
{
    const char *end = memmem(d, len, "\r\n\r\n", 4);
    size_t hl = end ? (size_t)(end - d) : len;
    return smtpc_has_8bit(d, hl);
}

static void fail_all(struct smtpc *c, enum smtpc_status st, int code, const char *enh,
                     const char *text)
{
    for (int i = 0; i < c->tx->nrcpt; i++) {
        struct smtpc_rcpt_result *r = &c->tx->results[i];
        if (r->code && r->status != SMTPC_OK)
            continue;
        free(r->text);
        r->status = st;
        r->code = code;
        snprintf(r->enhanced, sizeof r->enhanced, "%s", enh);
        r->text = xstrdup(text);
    }
}

void smtpc_send(struct smtpc *c, struct smtpc_tx *tx, smtpc_tx_fn done, void *arg)
{
    c->closed = NULL;   /* no longer parked */
    c->tx = tx;
    c->tx_done = done;
    c->tx_arg = arg;
    c->mail_failed = 0;
    c->accepted = 0;
    c->bdat_sent = 0;
    c->sent = 0;
    c->expected = 0;
    c->mail_idx = -1;
    for (int i = 0; i < tx->nrcpt; i++)
        memset(&tx->results[i], 0, sizeof tx->results[i]);
    bufferevent_enable(c->bev, EV_READ);
    int utf8 = needs_smtputf8(tx);
    if (c->caps.size_given && c->caps.size > 0 && tx->len > c->caps.size) {
        char text[200];
        snprintf(text, sizeof text, "552 5.3.4 Message size exceeds fixed limit (the message"
                 " is %zu bytes, %s accepts at most %llu)", tx->len, c->targets[c->cur].host,
                 c->caps.size);
        fail_all(c, SMTPC_PERMFAIL, 552, "5.3.4", text);
        set_state(c, S_RSET);   /* nothing sent: finish from a timer */
        later(c, tx_continue_cb);
        c->sent = -1;
        return;
    }
    if (utf8 && !c->caps.smtputf8) {
        fail_all(c, SMTPC_PERMFAIL, 553, "5.6.7",
                 "553 5.6.7 the envelope has non-ASCII addresses but the receiving server does"
                 " not support SMTPUTF8 (RFC 6531), so the message cannot be delivered there");
        set_state(c, S_RSET);
        later(c, tx_continue_cb);
        c->sent = -1;
        return;
    }
    if (c->need_rset) {
        set_state(c, S_RSET);
        sendf(c, "RSET\r\n");
        return;
    }
    c->need_rset = 1;
    set_state(c, S_MAIL_RCPT);
    tx_continue(c);
}

static void bdat_failed_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_lost(arg, "cannot queue the message for sending");
}

/* "BDAT <size> LAST" and the message as one chunk (RFC 3030 2). */
static int send_bdat(struct smtpc *c)
{
    struct evbuffer *body = evbuffer_new();
    if (!body)
        return -1;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc = 0;
    if (smtpc_chunk_body(body, c->tx->data, c->tx->len) < 0 ||
        evbuffer_add_printf(out, "BDAT %zu LAST\r\n", evbuffer_get_length(body)) < 0 ||
        evbuffer_add_buffer(out, body) < 0)
        rc = -1;
    evbuffer_free(body);
    c->bdat_sent = 1;
    return rc;
}

/* Sends what may be sent now: MAIL and RCPTs (all at once with
 * PIPELINING, one by one without; with CHUNKING too, BDAT LAST and the
 * message right behind them), or finishes an aborted transaction. */
static void tx_continue(struct smtpc *c)
{
    struct smtpc_tx *tx = c->tx;
    if (c->sent < 0) {
        c->sent = 0;
        tx_finish(c, 1);
        return;
    }
    while (c->sent <= tx->nrcpt && (c->caps.pipelining || c->expected == 0)) {
        if (c->sent == 0) {
            char params[128] = "";
            size_t o = 0;
            if (c->caps.size_given)
                o += (size_t)snprintf(params + o, sizeof params - o, " SIZE=%zu", tx->len);
            if (c->caps.eightbitmime && smtpc_has_8bit(tx->data, tx->len))
                o += (size_t)snprintf(params + o, sizeof params - o, " BODY=8BITMIME");
            if (c->caps.smtputf8 && (needs_smtputf8(tx) || header_8bit(tx->data, tx->len)))
                snprintf(params + o, sizeof params - o, " SMTPUTF8");
            sendf(c, "MAIL FROM:<%s>%s\r\n", tx->sender, params);
        } else {
            sendf(c, "RCPT TO:<%s>\r\n", tx->rcpts[c->sent - 1]);
        }
        c->sent++;
        c->expected++;
    }
    if (c->caps.pipelining && c->caps.chunking && c->sent > tx->nrcpt && !c->bdat_sent) {
        /* RFC 3030 4.2: BDAT may be pipelined; the server reads and drops
         * the chunk if MAIL or every RCPT was refused */
        if (send_bdat(c) < 0) {
            /* maybe inside smtpc_send: DONE must run later */
            bufferevent_disable(c->bev, EV_READ);
            later(c, bdat_failed_cb);
            return;
        }
        c->expected++;
    }
}

static void set_result(struct smtpc_rcpt_result *r, const struct smtpc_reply *rep)
{
    free(r->text);
    r->code = rep->code;
    snprintf(r->enhanced, sizeof r->enhanced, "%s", rep->enhanced);
    r->text = smtpc_reply_string(rep);
    r->status = rep->code < 300 ? SMTPC_OK : rep->code < 500 ? SMTPC_TEMPFAIL : SMTPC_PERMFAIL;
}

static void on_tx_reply(struct smtpc *c)
{
    struct smtpc_tx *tx = c->tx;
    const struct smtpc_reply *r = &c->reply;
    switch (c->state) {
    case S_RSET:
        if (r->code != 250) {
            conn_lost(c, "the server refused RSET");
            return;
        }
        set_state(c, S_MAIL_RCPT);
        tx_continue(c);
        return;
    case S_MAIL_RCPT:
        c->expected--;
        if (c->mail_idx < 0) {
            if (r->code != 250) {
                /* MAIL refused: applies to every recipient */
                c->mail_failed = 1;
                for (int i = 0; i < tx->nrcpt; i++)
                    set_result(&tx->results[i], r);
                if (!c->caps.pipelining) {
                    c->sent = tx->nrcpt + 1;   /* send no RCPT */
                    c->expected = 0;
                }
            }
        } else if (!c->mail_failed) {
            set_result(&tx->results[c->mail_idx], r);
            if (r->code >= 200 && r->code < 300)
                c->accepted++;
        }
        c->mail_idx++;
        if (c->sent <= tx->nrcpt && !c->mail_failed)
            tx_continue(c);
        if (c->bdat_sent && c->expected == 1) {
            set_state(c, S_BDAT);   /* only the pipelined BDAT's reply is due */
            return;
        }
        if (c->expected > 0)
            return;
        if (c->mail_failed || c->accepted == 0) {
            tx_finish(c, 1);
            return;
        }
        if (c->caps.chunking) {
            set_state(c, S_BDAT);
            if (send_bdat(c) < 0)
                conn_lost(c, "cannot queue the message for sending");
            return;
        }
        set_state(c, S_DATA);
        sendf(c, "DATA\r\n");
        return;
    case S_DATA:
        if (r->code != 354) {
            for (int i = 0; i < tx->nrcpt; i++)
                if (tx->results[i].status == SMTPC_OK)
                    set_result(&tx->results[i], r);
            tx_finish(c, 1);
            return;
        }
        set_state(c, S_DOT);
        if (smtpc_dot_stuff(bufferevent_get_output(c->bev), tx->data, tx->len) < 0) {
            conn_lost(c, "cannot queue the message for sending");
            return;
        }
        return;
    case S_DOT:
        for (int i = 0; i < tx->nrcpt; i++)
            if (tx->results[i].status == SMTPC_OK)
                set_result(&tx->results[i], r);
        tx_finish(c, 1);
        return;
    case S_BDAT:
        /* the reply to BDAT LAST is the message's outcome, as the reply to
         * the final dot; after a refused MAIL or no accepted RCPT (the
         * chunk went out pipelined) it changes nothing */
        if (!c->mail_failed && c->accepted > 0)
            for (int i = 0; i < tx->nrcpt; i++)
                if (tx->results[i].status == SMTPC_OK)
                    set_result(&tx->results[i], r);
        tx_finish(c, 1);
        return;
    default:
        return;
    }
}

static void tx_finish(struct smtpc *c, int alive)
{
    smtpc_tx_fn done = c->tx_done;
    void *arg = c->tx_arg;
    c->tx = NULL;
    c->tx_done = NULL;
    if (alive) {
        set_state(c, S_READY);
        bufferevent_disable(c->bev, EV_READ);
    } else {
        smtpc_free(c);
        c = NULL;
    }
    if (done)
        done(arg, c, alive);
}

static void on_reply(struct smtpc *c)
{
    if (c->state >= S_RSET && c->state <= S_BDAT)
        on_tx_reply(c);
    else
        on_session_reply(c);
}

int smtpc_dot_stuff(struct evbuffer *out, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;   /* index of LF or len */
        size_t le = end;
        if (le > i && data[le - 1] == '\r')
            le--;
        if (data[i] == '.' && evbuffer_add(out, ".", 1) < 0)
            return -1;
        if (evbuffer_add(out, data + i, le - i) < 0 || evbuffer_add(out, "\r\n", 2) < 0)
            return -1;
        i = nl ? end + 1 : len;
    }
    return evbuffer_add(out, ".\r\n", 3);
}

/* ---- idle, quit, accessors ---- */

void smtpc_park(struct smtpc *c, void (*closed)(void *arg, struct smtpc *c), void *arg)
{
    c->closed = closed;
    c->closed_arg = arg;
    set_state(c, S_IDLE);
    bufferevent_enable(c->bev, EV_READ);
}

void smtpc_quit(struct smtpc *c)
{
    if (!c->bev) {
        smtpc_free(c);
        return;
    }
    c->closed = NULL;
    set_state(c, S_QUIT);
    sendf(c, "QUIT\r\n");
    bufferevent_enable(c->bev, EV_READ);
    c->qprev = NULL;
    c->qnext = quitting;
    if (quitting)
        quitting->qprev = c;
    quitting = c;
}

void smtpc_abort(struct smtpc *c)
{
    smtpc_free(c);
}

void smtpc_shutdown(void)
{
    while (quitting) {
        struct smtpc *c = quitting;
        quitting = c->qnext;
        smtpc_free(c);
    }
}

const struct smtpc_target *smtpc_current(const struct smtpc *c)
{
    return &c->targets[c->cur];
}

const char *smtpc_tls_desc(const struct smtpc *c)
{
    return c->tls_desc;
}

const struct smtpc_caps *smtpc_caps(const struct smtpc *c)
{
    return &c->caps;
}
