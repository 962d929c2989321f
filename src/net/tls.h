/* tls: the one place that configures OpenSSL. Holds the server SSL_CTX
 * (TLS 1.2 minimum, the certificate and key from the config or the
 * self-signed development pair), reloads it on SIGHUP, and makes the
 * self-signed ECDSA P-256 certificate on first start. Connections call
 * tls_new_ssl(); the context they got stays alive (refcounted by OpenSSL)
 * even when a reload swaps in a new one. */
#ifndef ROOST_TLS_H
#define ROOST_TLS_H

#include <openssl/ssl.h>

/* Loads CERT and KEY into a new context and makes it current. */
int tls_load(const char *cert, const char *key, const char **error_r);
/* Loads again from the same files (SIGHUP). On failure the old context stays. */
int tls_reload(const char **error_r);
int tls_available(void);
SSL *tls_new_ssl(void);
void tls_shutdown(void);

/* Where `roost serve` keeps that self-signed pair when [tls] is not set,
 * inside the data directory. */
#define TLS_SELF_SIGNED_CERT "tls/cert.pem"
#define TLS_SELF_SIGNED_KEY "tls/key.pem"

/* Creates a self-signed ECDSA P-256 certificate for HOSTNAME (and
 * localhost, 127.0.0.1, ::1) valid for ten years, if CERT does not exist yet. */
int tls_ensure_self_signed(const char *cert, const char *key, const char *hostname,
                           const char **error_r);

/* "TLSv1.3" and the cipher name for logs and Received: headers. */
const char *tls_version_name(SSL *ssl);
const char *tls_cipher_name(SSL *ssl);

#endif
