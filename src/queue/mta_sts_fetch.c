/* mta_sts_fetch: the HTTPS GET of an MTA-STS policy (RFC 8461 3.3):
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt with libevent's HTTP
 * client over an OpenSSL bufferevent, on the caller's loop.
 *
 * The host's addresses come from the outbound resolver (dns_lookup_host,
 * so the connection goes to a numeric address and libevent never
 * resolves); they are tried in order while connections fail. The
 * certificate must verify (the context's CA store: the system's or
 * [outbound] tls_ca_file) for the name mta-sts.DOMAIN, wildcards only as
 * a whole leftmost label. Only a 200 answer with a text/plain body of at
 * most 64 KiB counts; redirects are not followed (RFC 8461 3.3). One
 * deadline covers it all (lookup, connect, handshake, answer). DONE runs
 * once, from a timer, never inside sts_fetch_start; the HTTP connection
 * is freed outside libevent's own callbacks. */
#include "queue/mta_sts.h"
#include "queue/mta_sts_policy.h"
#include "core/xalloc.h"
#include "dns/dns.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sts_fetch {
    struct event_base *base;
    struct dns *dns;
    SSL_CTX *ctx;
    char host[300];
    int port, timeout_ms;
    sts_fetch_fn done;
    void *arg;
    struct dns_req *dreq;
    struct dns_answer *addrs;     /* copied from the lookup */
    int next_addr;
    struct evhttp_connection *conn;
    SSL *ssl;                     /* owned by the connection's bufferevent */
    struct event *deadline, *finish_ev, *retry_ev;
    int ok, finished;
    char *body;
    size_t len;
    char error[800];
    enum evhttp_request_error http_error;
    int have_http_error;
};

static void try_next(struct sts_fetch *f);

static void conn_free(struct sts_fetch *f)
{
    if (f->conn)
        evhttp_connection_free(f->conn);
    f->conn = NULL;
    f->ssl = NULL;
}

static void fetch_free(struct sts_fetch *f)
{
    if (f->dreq)
        dns_cancel(f->dreq);
    conn_free(f);
    event_free(f->deadline);
    event_free(f->finish_ev);
    event_free(f->retry_ev);
    free(f->addrs);
    free(f->body);
    free(f);
}

void sts_fetch_cancel(struct sts_fetch *f)
{
    if (f)
        fetch_free(f);
}

static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sts_fetch *f = arg;
    conn_free(f);
    f->done(f->arg, f->ok, f->body, f->len, f->error);
    fetch_free(f);
}

/* Ends the fetch at the next loop iteration (out of libevent's HTTP code). */
static void finish_later(struct sts_fetch *f)
{
    if (f->finished)
        return;
    f->finished = 1;
    struct timeval now = {0, 0};
    evtimer_del(f->deadline);
    evtimer_del(f->retry_ev);
    evtimer_add(f->finish_ev, &now);
}

static void fail(struct sts_fetch *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct sts_fetch *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->error, sizeof f->error, fmt, ap);
    va_end(ap);
    finish_later(f);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sts_fetch *f = arg;
    fail(f, "fetching https://%s/.well-known/mta-sts.txt timed out", f->host);
}

static const char *http_error_text(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT: return "timed out";
    case EVREQ_HTTP_EOF: return "connection closed";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid answer headers";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection failed";
    case EVREQ_HTTP_DATA_TOO_LONG: return "answer larger than 64 KiB";
    default: return "failed";
    }
}

static void error_cb(enum evhttp_request_error e, void *arg)
{
    struct sts_fetch *f = arg;
    f->http_error = e;
    f->have_http_error = 1;
}

/* The Content-Type is text/plain (parameters ignored: RFC 8461 3.2). */
static int text_plain(struct evhttp_request *req)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    if (!ct)
        return 0;
    ct += strspn(ct, " \t");
    return strncasecmp(ct, "text/plain", 10) == 0 &&
           (ct[10] == '\0' || ct[10] == ';' || ct[10] == ' ' || ct[10] == '\t');
}

static void req_cb(struct evhttp_request *req, void *arg)
{
    struct sts_fetch *f = arg;
    if (f->finished)
        return;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 0) {
        /* no answer: say why (a certificate first), then the next address */
        char detail[200];
        long vr = f->ssl ? SSL_get_verify_result(f->ssl) : X509_V_OK;
        if (vr != X509_V_OK)
            snprintf(detail, sizeof detail, ": certificate not accepted: %s",
                     X509_verify_cert_error_string(vr));
        else
            snprintf(detail, sizeof detail, ": %s", f->have_http_error
                     ? http_error_text(f->http_error) : "connection failed");
        ERR_clear_error();
        snprintf(f->error, sizeof f->error, "fetching https://%s/.well-known/mta-sts.txt"
                 " failed%s", f->host, detail);
        if (vr == X509_V_OK && f->addrs && f->next_addr < f->addrs->naddrs) {
            /* the next address, from a timer (the connection is freed there) */
            f->have_http_error = 0;
            struct timeval now = {0, 0};
            evtimer_add(f->retry_ev, &now);
            return;
        }
        finish_later(f);
        return;
    }
    char detail[64];
    if (code != 200) {
        snprintf(detail, sizeof detail, "%d", code);
        fail(f, "https://%s/.well-known/mta-sts.txt answered HTTP %s (only 200 counts,"
             " redirects are not followed)", f->host, detail);
        return;
    }
    if (!text_plain(req)) {
        fail(f, "https://%s/.well-known/mta-sts.txt is not text/plain", f->host);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n > STS_MAX_BODY) {
        fail(f, "https://%s/.well-known/mta-sts.txt is larger than 64 KiB", f->host);
        return;
    }
    f->body = xmalloc(n + 1);
    evbuffer_remove(in, f->body, n);
    f->body[n] = '\0';
    f->len = n;
    f->ok = 1;
    finish_later(f);
}

/* A connection and the GET to address number f->next_addr. */
static int start_http(struct sts_fetch *f)
{
    const struct dns_addr *a = &f->addrs->addrs[f->next_addr++];
    SSL *ssl = SSL_new(f->ctx);
    if (!ssl)
        return -1;
    SSL_set_tlsext_host_name(ssl, f->host);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, f->host) != 1) {
        SSL_free(ssl);
        return -1;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        f->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        return -1;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    f->conn = evhttp_connection_base_bufferevent_new(f->base, NULL, bev, a->str,
                                                     (unsigned short)f->port);
    if (!f->conn) {
        bufferevent_free(bev);
        return -1;
    }
    f->ssl = ssl;
    struct timeval tv = {f->timeout_ms / 1000, (f->timeout_ms % 1000) * 1000};
    evhttp_connection_set_timeout_tv(f->conn, &tv);
    evhttp_connection_set_retries(f->conn, 0);
    evhttp_connection_set_max_body_size(f->conn, STS_MAX_BODY);
    evhttp_connection_set_max_headers_size(f->conn, 16384);
    struct evhttp_request *req = evhttp_request_new(req_cb, f);
    if (!req)
        return -1;
    evhttp_request_set_error_cb(req, error_cb);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", f->host);
    evhttp_add_header(h, "Accept", "text/plain");
    evhttp_add_header(h, "Connection", "close");
    if (evhttp_make_request(f->conn, req, EVHTTP_REQ_GET, "/.well-known/mta-sts.txt") != 0)
        return -1;   /* the request is freed by libevent */
    return 0;
}

static void try_next(struct sts_fetch *f)
{
    if (f->finished)
        return;
    while (f->next_addr < f->addrs->naddrs) {
        conn_free(f);
        if (start_http(f) == 0)
            return;
        snprintf(f->error, sizeof f->error, "cannot start the HTTPS request to %s", f->host);
    }
    finish_later(f);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    try_next(arg);
}

static void dns_cb(void *arg, const struct dns_answer *ans)
{
    struct sts_fetch *f = arg;
    f->dreq = NULL;
    if (ans->status != DNS_OK || ans->naddrs == 0) {
        fail(f, "no address for %s (%s)", f->host, ans->error[0] ? ans->error : "no A or AAAA records");
        return;
    }
    f->addrs = xmalloc(sizeof *f->addrs);
    memcpy(f->addrs, ans, sizeof *f->addrs);
    try_next(f);
}

struct sts_fetch *sts_fetch_start(struct event_base *base, struct dns *dns, SSL_CTX *ctx,
                                  const char *domain, int port, int timeout_ms,
                                  sts_fetch_fn done, void *arg)
{
    struct sts_fetch *f = xcalloc(1, sizeof *f);
    f->base = base;
    f->dns = dns;
    f->ctx = ctx;
    f->port = port;
    f->timeout_ms = timeout_ms;
    f->done = done;
    f->arg = arg;
    snprintf(f->host, sizeof f->host, "mta-sts.%s", domain);
    f->deadline = evtimer_new(base, deadline_cb, f);
    f->finish_ev = evtimer_new(base, finish_cb, f);
    f->retry_ev = evtimer_new(base, retry_cb, f);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (!f->deadline || !f->finish_ev || !f->retry_ev || evtimer_add(f->deadline, &tv) < 0)
        abort();
    f->dreq = dns_lookup_host(dns, f->host, port, dns_cb, f);
    return f;
}
