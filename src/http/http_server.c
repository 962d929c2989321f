/* http_server: libmicrohttpd glue, routing and limits for the HTTP
 * listener (see http_server.h).
 *
 * Limits: at most [http] max_connections connections per listen address
 * and [limits] max_connections_per_ip from one client; [http] timeout
 * seconds per idle connection; request line and headers within
 * HTTP_CONN_MEMORY bytes (MHD answers 431/414 beyond). Request bodies are
 * kept up to HTTP_AUTODISCOVER_MAX bytes: a larger Content-Length gets 413
 * at once; a larger chunked body is read and dropped up to
 * HTTP_DISCARD_MAX (then 413), and beyond that the connection is closed.
 * Paths are matched exactly, so nothing here maps a URL to a file. */
#include "http/http_server.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "http/http_autoconfig.h"
#include "http/http_health.h"
#include "http/http_metrics.h"
#include "http/http_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_CONN_MEMORY (32 * 1024)
#define HTTP_BODY_MAX (256 * 1024)   /* largest response we build (metrics) */
#define HTTP_DISCARD_MAX (1024 * 1024) /* body bytes read past the limit before closing */

struct http_listen {
    int fd;
    char host[256];
    int port;
    struct MHD_Daemon *daemon;
};

static struct http_listen listens[CONFIG_MAX_HTTP_LISTENERS];
static int nlistens;
static char *tls_cert_pem, *tls_key_pem;
static const struct config *the_cfg;
static const char *the_data_dir;
static struct http_site site;
static time_t started;

/* Per request: the body of an Autodiscover POST, or the bytes of a body
 * we ignore. */
struct request {
    struct buf body;
    int too_big;
    size_t discarded;
    int status;
};

/* ---- binding ---- */

static char *read_file(const char *path, const char **error_r)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        *error_r = "cannot read the TLS certificate or key for [http] tls";
        return NULL;
    }
    struct buf b;
    buf_init(&b, 1024 * 1024);
    char chunk[4096];
    size_t n;
    int r = 0;
    while (r == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        r = buf_append(&b, chunk, n);
    fclose(f);
    if (r < 0 || b.len == 0) {
        buf_deinit(&b);
        *error_r = "the TLS certificate or key for [http] tls is empty or too big";
        return NULL;
    }
    size_t len;
    return buf_steal(&b, &len);
}

static int bind_one(struct http_listen *l, const char **error_r)
{
    static __thread char err[512];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", l->port);
    if (getaddrinfo(l->host, port, &hints, &ai) != 0 || !ai) {
        snprintf(err, sizeof err, "[http] listen: %s is not a numeric address", l->host);
        *error_r = err;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        snprintf(err, sizeof err, "[http] cannot listen on %s port %d: %s", l->host, l->port,
                 strerror(errno));
        *error_r = err;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    l->fd = fd;
    return 0;
}

int http_bind(const struct config *cfg, const char **error_r)
{
    for (int i = 0; i < cfg->http.nlisten; i++) {
        struct http_listen *l = &listens[nlistens];
        memset(l, 0, sizeof *l);
        l->fd = -1;
        snprintf(l->host, sizeof l->host, "%s", cfg->http.listen[i].host);
        l->port = cfg->http.listen[i].port;
        if (bind_one(l, error_r) < 0)
            return -1;
        nlistens++;
    }
    if (nlistens && cfg->http.tls) {
        if (!cfg->tls_cert || !cfg->tls_key) {
            *error_r = "[http] tls = on needs a certificate";
            return -1;
        }
        tls_cert_pem = read_file(cfg->tls_cert, error_r);
        if (!tls_cert_pem)
            return -1;
        tls_key_pem = read_file(cfg->tls_key, error_r);
        if (!tls_key_pem)
            return -1;
    }
    return 0;
}

/* ---- responses ---- */

static enum MHD_Result respond(struct MHD_Connection *c, struct request *rq, int status,
                               const char *type, struct buf *body)
{
    size_t len = 0;
    char *data = body ? buf_steal(body, &len) : NULL;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, data ? data : (void *)"",
                                        data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
    enum MHD_Result r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    rq->status = status;
    return r;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, struct request *rq, int status,
                                    const char *text)
{
    struct buf b;
    buf_init(&b, 4096);
    if (buf_appendf(&b, "%s\n", text) < 0) {
        buf_deinit(&b);
        return MHD_NO;
    }
    return respond(c, rq, status, "text/plain; charset=utf-8", &b);
}

/* ---- handlers ---- */

static int client_is_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* 1 served, 0 not, -1 directory error. */
static int domain_served(const char *domain)
{
    const char *err = NULL;
    struct directory *d = dir_for_thread(the_data_dir, &err);
    if (!d)
        return -1;
    int r = dir_domain_exists(d, domain);
    return r < 0 ? -1 : r > 0;
}

static enum MHD_Result not_served(struct MHD_Connection *c, struct request *rq, int served)
{
    if (served < 0)
        return respond_text(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "directory unavailable");
    return respond_text(c, rq, MHD_HTTP_NOT_FOUND, "no such domain here");
}

static enum MHD_Result h_metrics(struct MHD_Connection *c, struct request *rq)
{
    if (!the_cfg->http.metrics_public && !client_is_loopback(c))
        return respond_text(c, rq, MHD_HTTP_FORBIDDEN,
                            "metrics are served to loopback clients only ([http] metrics)");
    struct buf b;
    buf_init(&b, HTTP_BODY_MAX);
    if (http_metrics_render(&b, started) < 0) {
        buf_deinit(&b);
        return respond_text(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics too large");
    }
    return respond(c, rq, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static enum MHD_Result h_healthz(struct MHD_Connection *c, struct request *rq)
{
    struct buf b;
    buf_init(&b, 4096);
    int ok = http_health_check(the_data_dir, &b);
    return respond(c, rq, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", &b);
}

/* The address from ?emailaddress=. 1 found and valid, 0 absent, -1 bad. */
static int query_email(struct MHD_Connection *c, struct http_email *e)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "emailaddress");
    if (!v)
        return 0;
    return http_parse_email(v, strlen(v), e) == 0 ? 1 : -1;
}

static enum MHD_Result h_thunderbird(struct MHD_Connection *c, struct request *rq)
{
    struct http_email e;
    char domain[HTTP_DOMAIN_MAX + 1];
    int q = query_email(c, &e);
    if (q < 0)
        return respond_text(c, rq, MHD_HTTP_BAD_REQUEST, "emailaddress is not an e-mail address");
    if (q > 0) {
        snprintf(domain, sizeof domain, "%s", e.domain);
    } else {
        /* Thunderbird asks autoconfig.DOMAIN; without the address the Host
         * header names the domain. */
        const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        if (!host || http_host_domain(host, strlen(host), domain) < 0)
            return respond_text(c, rq, MHD_HTTP_BAD_REQUEST, "emailaddress required");
    }
    int served = domain_served(domain);
    if (served <= 0)
        return not_served(c, rq, served);
    struct buf b;
    buf_init(&b, 64 * 1024);
    if (http_thunderbird_xml(&site, domain, &b) < 0) {
        buf_deinit(&b);
        return respond_text(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "response too large");
    }
    return respond(c, rq, MHD_HTTP_OK, "application/xml; charset=utf-8", &b);
}

static enum MHD_Result h_autodiscover(struct MHD_Connection *c, struct request *rq)
{
    struct http_email e;
    if (rq->too_big)
        return respond_text(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
    if (http_autodiscover_email(rq->body.data, rq->body.len, &e) < 0)
        return respond_text(c, rq, MHD_HTTP_BAD_REQUEST,
                            "expected an Autodiscover request with an EMailAddress");
    int served = domain_served(e.domain);
    if (served <= 0)
        return not_served(c, rq, served);
    struct buf b;
    buf_init(&b, 64 * 1024);
    if (http_autodiscover_xml(&site, &e, &b) < 0) {
        buf_deinit(&b);
        return respond_text(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "response too large");
    }
    return respond(c, rq, MHD_HTTP_OK, "application/xml; charset=utf-8", &b);
}

static enum MHD_Result h_mobileconfig(struct MHD_Connection *c, struct request *rq)
{
    struct http_email e;
    int q = query_email(c, &e);
    if (q == 0)
        return respond_text(c, rq, MHD_HTTP_BAD_REQUEST, "emailaddress required");
    if (q < 0)
        return respond_text(c, rq, MHD_HTTP_BAD_REQUEST, "emailaddress is not an e-mail address");
    int served = domain_served(e.domain);
    if (served <= 0)
        return not_served(c, rq, served);
    struct buf b;
    buf_init(&b, 64 * 1024);
    if (http_mobileconfig(&site, &e, &b) < 0) {
        buf_deinit(&b);
        return respond_text(c, rq, MHD_HTTP_NOT_FOUND, "no IMAP or submission listener to offer");
    }
    size_t len;
    char *data = buf_steal(&b, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    char disp[HTTP_DOMAIN_MAX + 64];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s.mobileconfig\"", e.domain);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-apple-aspen-config");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result r = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    rq->status = MHD_HTTP_OK;
    return r;
}

static enum MHD_Result h_mta_sts(struct MHD_Connection *c, struct request *rq)
{
    struct buf b;
    buf_init(&b, 4096);
    if (http_mta_sts_txt(&site, &b) < 0) {
        buf_deinit(&b);
        return MHD_NO;
    }
    return respond(c, rq, MHD_HTTP_OK, "text/plain; charset=utf-8", &b);
}

/* ---- routing ---- */

enum route_method { RM_GET, RM_POST };

struct route {
    const char *path;
    enum route_method method;
    enum MHD_Result (*fn)(struct MHD_Connection *c, struct request *rq);
};

static const struct route routes[] = {
    {"/metrics", RM_GET, h_metrics},
    {"/healthz", RM_GET, h_healthz},
    {"/.well-known/autoconfig/mail/config-v1.1.xml", RM_GET, h_thunderbird},
    {"/mail/config-v1.1.xml", RM_GET, h_thunderbird},
    {"/autodiscover/autodiscover.xml", RM_POST, h_autodiscover},
    {"/Autodiscover/Autodiscover.xml", RM_POST, h_autodiscover},
    {"/apple/mobileconfig", RM_GET, h_mobileconfig},
    {"/.well-known/mta-sts.txt", RM_GET, h_mta_sts},
};

static const struct route *find_route(const char *url)
{
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (strcmp(url, routes[i].path) == 0)
            return &routes[i];
    return NULL;
}

static enum MHD_Result dispatch(struct MHD_Connection *c, struct request *rq, const char *url,
                                const char *method)
{
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (!get && !post)
        return respond_text(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    const struct route *r = find_route(url);
    if (!r)
        return respond_text(c, rq, MHD_HTTP_NOT_FOUND, "not found");
    if ((r->method == RM_GET && !get) || (r->method == RM_POST && !post))
        return respond_text(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    return r->fn(c, rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct request *rq = *con_cls;
    if (!rq) {
        rq = xcalloc(1, sizeof *rq);
        buf_init(&rq->body, HTTP_AUTODISCOVER_MAX);
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > HTTP_AUTODISCOVER_MAX)
            return respond_text(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* MHD cannot answer in the middle of an upload: past the limit the
         * rest is read and dropped (413 at the end), up to HTTP_DISCARD_MAX,
         * beyond which the connection is closed without an answer. */
        if (rq->status)
            return MHD_NO;
        if (!rq->too_big && buf_append(&rq->body, upload_data, *upload_data_size) < 0)
            rq->too_big = 1;
        if (rq->too_big) {
            rq->discarded += *upload_data_size;
            if (rq->discarded > HTTP_DISCARD_MAX)
                return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->status)
        return MHD_YES;
    return dispatch(c, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *rq = *con_cls;
    if (!rq)
        return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char peer[INET6_ADDRSTRLEN] = "?";
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, peer, sizeof peer);
    else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, peer,
                  sizeof peer);
    log_debug("http", "event=request client=%s status=%d", peer, rq->status);
    buf_deinit(&rq->body);
    free(rq);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512], q[LOG_QSIZE];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    log_info("http", "event=mhd message=%s", log_q(q, sizeof q, msg, n));
}

int http_start(const struct config *cfg, const char *data_dir, const char **error_r)
{
    static __thread char err[512];
    the_cfg = cfg;
    the_data_dir = data_dir;
    started = time(NULL);
    http_site_from_config(cfg, &site);
    for (int i = 0; i < nlistens; i++) {
        struct http_listen *l = &listens[i];
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
        if (tls_cert_pem)
            flags |= MHD_USE_TLS;
        struct MHD_OptionItem tls_opts[] = {
            {MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert_pem},
            {MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key_pem},
            {MHD_OPTION_HTTPS_PRIORITIES, 0,
             (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
            {MHD_OPTION_END, 0, NULL},
        };
        struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
        l->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, NULL,
            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http.max_connections,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http.timeout,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_ARRAY, tls_cert_pem ? tls_opts : no_opts,
            MHD_OPTION_END);
        if (!l->daemon) {
            snprintf(err, sizeof err, "[http] cannot start the HTTP server on %s port %d%s",
                     l->host, l->port, tls_cert_pem ? " (TLS: is the key readable by GnuTLS?)" : "");
            *error_r = err;
            return -1;
        }
        l->fd = -1;   /* the daemon owns it now */
        log_info("http", "event=listening addr=%s port=%d tls=%s", l->host, l->port,
                 tls_cert_pem ? "on" : "off");
    }
    return 0;
}

void http_stop(void)
{
    for (int i = 0; i < nlistens; i++) {
        if (listens[i].daemon)
            MHD_stop_daemon(listens[i].daemon);
        else if (listens[i].fd >= 0)
            close(listens[i].fd);
        listens[i].daemon = NULL;
        listens[i].fd = -1;
    }
    nlistens = 0;
    if (tls_key_pem)
        explicit_bzero(tls_key_pem, strlen(tls_key_pem));
    free(tls_key_pem);
    free(tls_cert_pem);
    tls_key_pem = tls_cert_pem = NULL;
}
