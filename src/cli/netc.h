/* netc: the small blocking TCP + TLS client behind `roost send` and
 * `roost check` (a CLI may block; the server's own outbound client is the
 * asynchronous one in src/smtp). One connection at a time: resolve and
 * connect with a timeout, read CRLF lines with a hard length bound, write,
 * and turn TLS on at any point (implicit TLS right after connect, or after
 * STARTTLS/STLS). Certificate checks use the system CA store, or CA_FILE;
 * with VERIFY off the handshake completes anyway and the result is kept
 * for `roost check` to report. With a transcript on, every line goes to
 * stderr as "C: " / "S: "; callers mask AUTH secrets themselves
 * (netc_send_masked). */
#ifndef ROOST_NETC_H
#define ROOST_NETC_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Longest line read (SMTP allows 512 for replies; IMAP capability lines
 * are longer). */
#define NETC_LINE_MAX 8192

enum netc_err {
    NETC_OK = 0,
    NETC_ERR_RESOLVE,   /* getaddrinfo failed */
    NETC_ERR_REFUSED,   /* connection refused (nothing listening) */
    NETC_ERR_TIMEOUT,   /* connect or read timed out */
    NETC_ERR_CONNECT,   /* other connect error (unreachable...) */
    NETC_ERR_TLS,       /* handshake failed */
    NETC_ERR_VERIFY,    /* handshake done but the certificate was refused */
    NETC_ERR_IO,        /* read/write failed, or the peer closed */
    NETC_ERR_TOOLONG,   /* a line longer than NETC_LINE_MAX */
};

struct netc {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int timeout_ms;
    int verbose;             /* transcript to stderr */
    int verify;              /* refuse an untrusted or misnamed certificate */
    const char *ca_file;     /* NULL: the system store */
    char host[256];          /* the name the certificate must carry */
    char peer[64];           /* the numeric address connected to */
    char err[512];           /* the last error, for people */
    long verify_result;      /* X509_V_OK or the chain error (after TLS) */
    char rbuf[16384];
    size_t rlen, roff;
};

/* Sets defaults (timeout 30 s, verify on). */
void netc_init(struct netc *c, const char *host);
/* Resolves HOST (c->host) and connects to PORT. */
enum netc_err netc_connect(struct netc *c, int port);
/* 1 if the peer sent something within MS milliseconds (or closed), else 0. */
int netc_wait_readable(struct netc *c, int ms);
/* TLS handshake on the connection (SNI = host). */
enum netc_err netc_start_tls(struct netc *c);
/* Reads one line without its CRLF (or LF) into LINE (NETC_LINE_MAX + 1). */
enum netc_err netc_read_line(struct netc *c, char *line, size_t *len_r);
enum netc_err netc_write(struct netc *c, const void *p, size_t n);
/* Writes LINE + CRLF; the transcript shows it. */
enum netc_err netc_send_line(struct netc *c, const char *line);
/* Writes LINE + CRLF; the transcript shows SHOWN instead (no secrets). */
enum netc_err netc_send_masked(struct netc *c, const char *line, const char *shown);
/* Bytes already buffered but not read (plaintext before STARTTLS). */
size_t netc_pending(const struct netc *c);
void netc_close(struct netc *c);

/* Certificate facts for `roost check`, after TLS. */
struct netc_cert {
    char subject[256], issuer[256];
    char not_after[64];
    long days_left;           /* negative when expired */
    int name_ok;              /* the certificate names c->host */
    int chain_ok;
    char chain_error[160];
    char version[32], cipher[96];
};
int netc_cert_info(struct netc *c, struct netc_cert *ci);

/* Base64 of N bytes into a fresh string. */
char *netc_base64(const void *p, size_t n);
/* Reads the first line of FILE (the password) into a fresh string, or NULL
 * with ERR set. */
char *netc_read_password_file(const char *file, char *err, size_t errsz);

#endif
