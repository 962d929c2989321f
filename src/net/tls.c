/* tls: OpenSSL server context, reload, and self-signed certificates. */
#include "net/tls.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *current_ctx;
static char *cur_cert, *cur_key;
static char tls_err[512];

static const char *ssl_error(const char *what)
{
    unsigned long e = ERR_get_error();
    char detail[256] = "";
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    snprintf(tls_err, sizeof tls_err, "%s: %s", what, detail[0] ? detail : "unknown error");
    return tls_err;
}

static SSL_CTX *make_ctx(const char *cert, const char *key, const char **error_r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        *error_r = ssl_error("SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_num_tickets(ctx, 1);
    static const unsigned char sid[] = "roost";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        *error_r = ssl_error(cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        *error_r = ssl_error(key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int tls_load(const char *cert, const char *key, const char **error_r)
{
    SSL_CTX *ctx = make_ctx(cert, key, error_r);
    if (!ctx)
        return -1;
    pthread_mutex_lock(&tls_lock);
    SSL_CTX *old = current_ctx;
    current_ctx = ctx;
    if (cert != cur_cert) {
        free(cur_cert);
        cur_cert = xstrdup(cert);
    }
    if (key != cur_key) {
        free(cur_key);
        cur_key = xstrdup(key);
    }
    pthread_mutex_unlock(&tls_lock);
    SSL_CTX_free(old);
    return 0;
}

int tls_reload(const char **error_r)
{
    if (!cur_cert) {
        *error_r = "no certificate configured";
        return -1;
    }
    return tls_load(cur_cert, cur_key, error_r);
}

int tls_available(void)
{
    pthread_mutex_lock(&tls_lock);
    int r = current_ctx != NULL;
    pthread_mutex_unlock(&tls_lock);
    return r;
}

SSL *tls_new_ssl(void)
{
    pthread_mutex_lock(&tls_lock);
    SSL *ssl = current_ctx ? SSL_new(current_ctx) : NULL;
    pthread_mutex_unlock(&tls_lock);
    return ssl;
}

void tls_shutdown(void)
{
    pthread_mutex_lock(&tls_lock);
    SSL_CTX_free(current_ctx);
    current_ctx = NULL;
    free(cur_cert);
    free(cur_key);
    cur_cert = cur_key = NULL;
    pthread_mutex_unlock(&tls_lock);
}

const char *tls_version_name(SSL *ssl) { return ssl ? SSL_get_version(ssl) : "none"; }
const char *tls_cipher_name(SSL *ssl) { return ssl ? SSL_get_cipher_name(ssl) : "none"; }

/* ---- self-signed certificate ---- */

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int r = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
    X509_EXTENSION_free(ext);
    return r;
}

static int write_pem(const char *path, int mode, int is_key, EVP_PKEY *pkey, X509 *x)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    int ok = is_key ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)
                    : PEM_write_X509(f, x);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int tls_ensure_self_signed(const char *cert, const char *key, const char *hostname,
                           const char **error_r)
{
    struct stat st;
    if (stat(cert, &st) == 0 && stat(key, &st) == 0)
        return 0;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = -1;
    if (!pkey || !x) {
        *error_r = ssl_error("key generation");
        goto out;
    }
    X509_set_version(x, 2);
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (RAND_bytes(serial, sizeof serial) != 1 || !(bn = BN_bin2bn(serial, sizeof serial, NULL))) {
        *error_r = ssl_error("serial");
        goto out;
    }
    BN_set_bit(bn, 0);
    BN_clear_bit(bn, 127);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Roost (self-signed)", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0);
    X509_set_issuer_name(x, name);
    char san[600];
    snprintf(san, sizeof san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
    if (add_ext(x, NID_subject_alt_name, san) < 0 ||
        add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") < 0 ||
        add_ext(x, NID_ext_key_usage, "serverAuth") < 0) {
        *error_r = ssl_error("certificate extensions");
        goto out;
    }
    if (X509_sign(x, pkey, EVP_sha256()) == 0) {
        *error_r = ssl_error("certificate signing");
        goto out;
    }
    if (write_pem(key, 0600, 1, pkey, x) < 0 || write_pem(cert, 0644, 0, pkey, x) < 0) {
        snprintf(tls_err, sizeof tls_err, "writing %s: %s", cert, strerror(errno));
        *error_r = tls_err;
        goto out;
    }
    log_info("tls", "event=self-signed-created cert=%s hostname=%s", cert, hostname);
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}
