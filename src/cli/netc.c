/* netc: blocking TCP + TLS client for the CLI tools (see netc.h).
 *
 * The socket is non-blocking only while connecting (so the connect can
 * time out), then blocking with SO_RCVTIMEO/SO_SNDTIMEO: every read and
 * write is bounded by the timeout. Lines are bounded by NETC_LINE_MAX. */
#include "cli/netc.h"
#include "core/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Longest password file line. */
#define PASSWORD_FILE_MAX 1024

static void set_err(struct netc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum netc_err connect_one(struct netc *c, const struct addrinfo *ai);
static void ssl_errors(char *out, size_t outsz);
static int fill(struct netc *c);

static void set_err(struct netc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

void netc_init(struct netc *c, const char *host)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->timeout_ms = 30000;
    c->verify = 1;
    snprintf(c->host, sizeof c->host, "%s", host);
}

static enum netc_err connect_one(struct netc *c, const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        set_err(c, "socket: %s", strerror(errno));
        return NETC_ERR_CONNECT;
    }
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n;
        do
            n = poll(&p, 1, c->timeout_ms);
        while (n < 0 && errno == EINTR);
        if (n == 0) {
            close(fd);
            set_err(c, "no answer within %d s", c->timeout_ms / 1000);
            return NETC_ERR_TIMEOUT;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        errno = soerr;
        r = soerr ? -1 : 0;
    }
    if (r < 0) {
        int e = errno;
        close(fd);
        set_err(c, "%s", strerror(e));
        return e == ECONNREFUSED ? NETC_ERR_REFUSED : e == ETIMEDOUT ? NETC_ERR_TIMEOUT
                                                                     : NETC_ERR_CONNECT;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = c->timeout_ms / 1000, .tv_usec = (c->timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    getnameinfo(ai->ai_addr, ai->ai_addrlen, c->peer, sizeof c->peer, NULL, 0, NI_NUMERICHOST);
    c->fd = fd;
    return NETC_OK;
}

enum netc_err netc_connect(struct netc *c, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int g = getaddrinfo(c->host, ports, &hints, &res);
    if (g != 0) {
        set_err(c, "cannot resolve %s: %s", c->host, gai_strerror(g));
        return NETC_ERR_RESOLVE;
    }
    enum netc_err e = NETC_ERR_CONNECT;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        e = connect_one(c, ai);
        if (e == NETC_OK)
            break;
    }
    freeaddrinfo(res);
    if (e != NETC_OK) {
        char why[sizeof c->err];
        snprintf(why, sizeof why, "%s", c->err);
        set_err(c, "cannot connect to %s port %d: %s", c->host, port, why);
    } else if (c->verbose) {
        fprintf(stderr, "* connected to %s (%s) port %d\n", c->host, c->peer, port);
    }
    return e;
}

int netc_wait_readable(struct netc *c, int ms)
{
    if (c->roff < c->rlen || (c->ssl && SSL_pending(c->ssl) > 0))
        return 1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n;
    do
        n = poll(&p, 1, ms);
    while (n < 0 && errno == EINTR);
    return n > 0;
}

static void ssl_errors(char *out, size_t outsz)
{
    unsigned long e;
    size_t used = 0;
    out[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        const char *reason = ERR_reason_error_string(e);
        int n = snprintf(out + used, outsz - used, "%s%s", used ? "; " : "", reason ? reason : one);
        if (n < 0 || (size_t)n >= outsz - used)
            break;
        used += (size_t)n;
    }
    if (!out[0])
        snprintf(out, outsz, "the connection closed during the handshake");
}

enum netc_err netc_start_tls(struct netc *c)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx) {
        set_err(c, "cannot create a TLS context");
        return NETC_ERR_TLS;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    if (c->ca_file) {
        if (SSL_CTX_load_verify_locations(c->ctx, c->ca_file, NULL) != 1) {
            set_err(c, "cannot load the CA file %s", c->ca_file);
            return NETC_ERR_TLS;
        }
        /* A self-signed server certificate given as its own CA. */
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ctx), X509_V_FLAG_PARTIAL_CHAIN);
    } else {
        SSL_CTX_set_default_verify_paths(c->ctx);
    }
    SSL_CTX_set_verify(c->ctx, c->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    unsigned char ipbuf[16];
    int is_ip = inet_pton(AF_INET, c->host, ipbuf) == 1 || inet_pton(AF_INET6, c->host, ipbuf) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(c->ssl, c->host);
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip)
        X509_VERIFY_PARAM_set1_ip_asc(vp, c->host);
    else
        X509_VERIFY_PARAM_set1_host(vp, c->host, 0);
    ERR_clear_error();
    if (SSL_connect(c->ssl) != 1) {
        char why[400];
        ssl_errors(why, sizeof why);
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK) {
            set_err(c, "the certificate of %s was refused: %s", c->host,
                    X509_verify_cert_error_string(vr));
            c->verify_result = vr;
            return NETC_ERR_VERIFY;
        }
        set_err(c, "TLS handshake with %s failed: %s", c->host, why);
        return NETC_ERR_TLS;
    }
    c->verify_result = SSL_get_verify_result(c->ssl);
    /* Nothing read before the handshake may count as protected. */
    c->rlen = c->roff = 0;
    if (c->verbose)
        fprintf(stderr, "* TLS: %s %s\n", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
    return NETC_OK;
}

size_t netc_pending(const struct netc *c)
{
    return c->rlen - c->roff;
}

/* Reads more bytes into rbuf: 1 got some, 0 closed, -1 error/timeout. */
static int fill(struct netc *c)
{
    if (c->roff > 0) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    if (c->rlen == sizeof c->rbuf)
        return -1;
    ssize_t n;
    if (c->ssl) {
        int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof c->rbuf - c->rlen));
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        }
        n = r;
    } else {
        do
            n = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return n == 0 ? 0 : -1;
    }
    c->rlen += (size_t)n;
    return 1;
}

enum netc_err netc_read_line(struct netc *c, char *line, size_t *len_r)
{
    for (;;) {
        char *start = c->rbuf + c->roff;
        char *nl = memchr(start, '\n', c->rlen - c->roff);
        if (nl) {
            size_t n = (size_t)(nl - start);
            size_t keep = n > 0 && start[n - 1] == '\r' ? n - 1 : n;
            if (keep > NETC_LINE_MAX) {
                set_err(c, "a line from the server is longer than %d bytes", NETC_LINE_MAX);
                return NETC_ERR_TOOLONG;
            }
            memcpy(line, start, keep);
            line[keep] = '\0';
            if (len_r)
                *len_r = keep;
            c->roff += n + 1;
            if (c->verbose)
                fprintf(stderr, "S: %s\n", line);
            return NETC_OK;
        }
        if (c->rlen - c->roff > NETC_LINE_MAX) {
            set_err(c, "a line from the server is longer than %d bytes", NETC_LINE_MAX);
            return NETC_ERR_TOOLONG;
        }
        int r = fill(c);
        if (r <= 0) {
            if (r == 0)
                set_err(c, "the server closed the connection");
            else if (errno == EAGAIN || errno == EWOULDBLOCK)
                set_err(c, "no answer from the server within %d s", c->timeout_ms / 1000);
            else
                set_err(c, "reading from the server failed");
            return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? NETC_ERR_TIMEOUT
                                                                     : NETC_ERR_IO;
        }
    }
}

enum netc_err netc_write(struct netc *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w;
        if (c->ssl) {
            int chunk = n > 65536 ? 65536 : (int)n;
            int r = SSL_write(c->ssl, s, chunk);
            w = r > 0 ? r : -1;
        } else {
            do
                w = write(c->fd, s, n);
            while (w < 0 && errno == EINTR);
        }
        if (w <= 0) {
            set_err(c, "writing to the server failed");
            return NETC_ERR_IO;
        }
        s += w;
        n -= (size_t)w;
    }
    return NETC_OK;
}

enum netc_err netc_send_masked(struct netc *c, const char *line, const char *shown)
{
    if (c->verbose)
        fprintf(stderr, "C: %s\n", shown);
    size_t n = strlen(line);
    char *out = xmalloc(n + 3);
    memcpy(out, line, n);
    memcpy(out + n, "\r\n", 3);
    enum netc_err e = netc_write(c, out, n + 2);
    OPENSSL_cleanse(out, n + 2);
    free(out);
    return e;
}

enum netc_err netc_send_line(struct netc *c, const char *line)
{
    return netc_send_masked(c, line, line);
}

void netc_close(struct netc *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->ctx) {
        SSL_CTX_free(c->ctx);
        c->ctx = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->rlen = c->roff = 0;
}

int netc_cert_info(struct netc *c, struct netc_cert *ci)
{
    memset(ci, 0, sizeof *ci);
    if (!c->ssl)
        return -1;
    snprintf(ci->version, sizeof ci->version, "%s", SSL_get_version(c->ssl));
    snprintf(ci->cipher, sizeof ci->cipher, "%s", SSL_get_cipher_name(c->ssl));
    X509 *x = SSL_get1_peer_certificate(c->ssl);
    if (!x)
        return -1;
    X509_NAME_oneline(X509_get_subject_name(x), ci->subject, sizeof ci->subject);
    X509_NAME_oneline(X509_get_issuer_name(x), ci->issuer, sizeof ci->issuer);
    const ASN1_TIME *na = X509_get0_notAfter(x);
    struct tm tm;
    if (ASN1_TIME_to_tm(na, &tm) == 1) {
        strftime(ci->not_after, sizeof ci->not_after, "%Y-%m-%d %H:%M:%S UTC", &tm);
        int days = 0, secs = 0;
        if (ASN1_TIME_diff(&days, &secs, NULL, na) == 1)
            ci->days_left = days;
    }
    unsigned char ipbuf[16];
    int is_ip = inet_pton(AF_INET, c->host, ipbuf) == 1 || inet_pton(AF_INET6, c->host, ipbuf) == 1;
    ci->name_ok = is_ip ? X509_check_ip_asc(x, c->host, 0) == 1
                        : X509_check_host(x, c->host, 0, 0, NULL) == 1;
    long vr = SSL_get_verify_result(c->ssl);
    /* The chain alone: a name mismatch is reported by name_ok. */
    ci->chain_ok = vr == X509_V_OK || vr == X509_V_ERR_HOSTNAME_MISMATCH ||
                   vr == X509_V_ERR_IP_ADDRESS_MISMATCH;
    if (!ci->chain_ok)
        snprintf(ci->chain_error, sizeof ci->chain_error, "%s", X509_verify_cert_error_string(vr));
    X509_free(x);
    return 0;
}

char *netc_base64(const void *p, size_t n)
{
    char *out = xmalloc(xmul(n / 3 + 2, 4) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    out[len] = '\0';
    return out;
}

char *netc_read_password_file(const char *file, char *err, size_t errsz)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, errsz, "cannot read the password file %s: %s", file, strerror(errno));
        return NULL;
    }
    char *line = xmalloc(PASSWORD_FILE_MAX + 2);
    if (!fgets(line, PASSWORD_FILE_MAX + 2, f)) {
        if (ferror(f))
            snprintf(err, errsz, "cannot read the password file %s: %s", file, strerror(errno));
        else
            snprintf(err, errsz, "the password file %s is empty", file);
        fclose(f);
        free(line);
        return NULL;
    }
    fclose(f);
    size_t n = strcspn(line, "\r\n");
    if (n > PASSWORD_FILE_MAX) {
        snprintf(err, errsz, "the password in %s is longer than %d bytes", file, PASSWORD_FILE_MAX);
        OPENSSL_cleanse(line, PASSWORD_FILE_MAX + 2);
        free(line);
        return NULL;
    }
    line[n] = '\0';
    if (n == 0) {
        snprintf(err, errsz, "the password file %s is empty", file);
        free(line);
        return NULL;
    }
    return line;
}
