/* dkimkey: generating, storing and loading DKIM keys (see dkimkey.h).
 *
 * Durability: a key is written to a temporary name, fsync'd, linked to
 * <selector>.key (link() refuses to replace an existing key) and the
 * directory fsync'd; only then is `active` replaced (write, fsync, rename,
 * fsync the directory). A crash leaves either the old or the new selector
 * active, never a selector without its key. */
#include "dkim/dkimkey.h"
#include "core/fsutil.h"
#include "core/xalloc.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DKIMKEY_FILE_MAX (64 * 1024) /* a PEM key is a few KiB at most */

static __thread char errbuf[PATH_MAX + 256];

static const char *err_errno(const char *what)
{
    snprintf(errbuf, sizeof errbuf, "%s: %.200s", what, strerror(errno));
    return errbuf;
}

const char *dkimkey_alg_name(enum dkimkey_alg alg)
{
    return alg == DKIMKEY_ED25519 ? "ed25519" : "rsa";
}

/* ---------------------------------------------------------------- names */

static int label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Checks one label [p, p+n). */
static int label_valid(const char *p, size_t n)
{
    if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!label_char(p[i]))
            return 0;
    return 1;
}

int dkimkey_domain_valid(const char *domain)
{
    size_t len = domain ? strlen(domain) : 0;
    if (len == 0 || len > DKIMKEY_DOMAIN_MAX)
        return 0;
    const char *p = domain;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_valid(p, n))
            return 0;
        if (!dot)
            return 1;
        p = dot + 1;
    }
}

int dkimkey_selector_valid(const char *sel)
{
    return sel && label_valid(sel, strlen(sel));
}

/* ---------------------------------------------------------------- paths */

static int path_of(char *out, size_t outsz, const char *data_dir, const char *domain,
                   const char *file)
{
    int n;
    if (!domain)
        n = snprintf(out, outsz, "%s/dkim", data_dir);
    else if (!file)
        n = snprintf(out, outsz, "%s/dkim/%s", data_dir, domain);
    else
        n = snprintf(out, outsz, "%s/dkim/%s/%s", data_dir, domain, file);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static int key_path(char *out, size_t outsz, const char *data_dir, const char *domain,
                    const char *sel)
{
    char file[DKIMKEY_SELECTOR_MAX + 8];
    snprintf(file, sizeof file, "%s.key", sel);
    return path_of(out, outsz, data_dir, domain, file);
}

int dkimkey_exists(const char *data_dir, const char *domain, const char *sel)
{
    char path[PATH_MAX];
    struct stat st;
    return key_path(path, sizeof path, data_dir, domain, sel) == 0 && stat(path, &st) == 0;
}

int dkimkey_default_selector(const char *data_dir, const char *domain, time_t now,
                             char out[DKIMKEY_SELECTOR_MAX + 1], const char **error_r)
{
    struct tm tm;
    char base[16];
    gmtime_r(&now, &tm);
    strftime(base, sizeof base, "%Y%m", &tm);
    snprintf(out, DKIMKEY_SELECTOR_MAX + 1, "%s", base);
    for (int n = 2; dkimkey_exists(data_dir, domain, out); n++) {
        if (n > 999) {
            *error_r = "too many keys made this month; choose one with --selector";
            return -1;
        }
        snprintf(out, DKIMKEY_SELECTOR_MAX + 1, "%s-%d", base, n);
    }
    return 0;
}

/* ---------------------------------------------------------------- files */

static int mkdir_private(const char *path, const char **error_r)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    *error_r = err_errno(path);
    return -1;
}

/* Writes N bytes of P to PATH (created 0600, must not exist) and fsyncs. */
static int write_new_file(const char *path, const void *p, size_t n, const char **error_r)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error_r = err_errno(path);
        return -1;
    }
    if (fs_write_all(fd, p, n) < 0 || fsync(fd) < 0) {
        *error_r = err_errno(path);
        close(fd);
        unlink(path);
        return -1;
    }
    if (close(fd) < 0) {
        *error_r = err_errno(path);
        unlink(path);
        return -1;
    }
    return 0;
}

/* Reads a small file into a malloc'd NUL-terminated string. 0 ok, 1 missing. */
static int read_small_file(const char *path, char **out_r, size_t *len_r, const char **error_r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        *error_r = err_errno(path);
        return -1;
    }
    char *buf = xmalloc(DKIMKEY_FILE_MAX + 1);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, DKIMKEY_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *error_r = err_errno(path);
            break;
        }
        if (r == 0 || (len += (size_t)r) > DKIMKEY_FILE_MAX)
            break;
    }
    close(fd);
    if (*error_r == NULL && len > DKIMKEY_FILE_MAX)
        *error_r = "key file too large";
    if (*error_r) {
        OPENSSL_cleanse(buf, DKIMKEY_FILE_MAX + 1);
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    *out_r = buf;
    *len_r = len;
    return 0;
}

/* ---------------------------------------------------------------- generate */

static EVP_PKEY *make_key(enum dkimkey_alg alg)
{
    if (alg == DKIMKEY_ED25519)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIMKEY_RSA_BITS);
}

/* The PEM (PKCS#8) of PKEY in a malloc'd string. */
static char *pem_of(EVP_PKEY *pkey, size_t *len_r)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    if (!bio)
        return NULL;
    char *out = NULL;
    if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
        char *p;
        long n = BIO_get_mem_data(bio, &p);
        if (n > 0) {
            out = xmalloc((size_t)n + 1);
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
            *len_r = (size_t)n;
        }
    }
    BIO_free(bio);
    return out;
}

/* Stores PEM as DOMAIN's key SEL: 0 ok, 1 exists, -1 error. */
static int store_key(const char *data_dir, const char *domain, const char *sel,
                     const char *pem, size_t len, const char **error_r)
{
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX], tmpname[DKIMKEY_SELECTOR_MAX + 32];
    snprintf(tmpname, sizeof tmpname, ".%s.key.%ld.tmp", sel, (long)getpid());
    if (path_of(dir, sizeof dir, data_dir, NULL, NULL) < 0 ||
        key_path(path, sizeof path, data_dir, domain, sel) < 0 ||
        path_of(tmp, sizeof tmp, data_dir, domain, tmpname) < 0) {
        *error_r = "data directory path too long";
        return -1;
    }
    if (mkdir_private(dir, error_r) < 0 ||
        path_of(dir, sizeof dir, data_dir, domain, NULL) < 0 || mkdir_private(dir, error_r) < 0)
        return -1;
    (void)unlink(tmp);
    if (write_new_file(tmp, pem, len, error_r) < 0)
        return -1;
    int r = link(tmp, path);
    int saved = errno;
    unlink(tmp);
    if (r < 0 && saved == EEXIST)
        return 1;
    errno = saved;
    if (r < 0 || fs_fsync_dir_path(dir) < 0) {
        *error_r = err_errno(path);
        return -1;
    }
    return 0;
}

/* Makes SEL DOMAIN's active selector (atomic replace). */
static int set_active(const char *data_dir, const char *domain, const char *sel,
                      const char **error_r)
{
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX], line[DKIMKEY_SELECTOR_MAX + 2];
    char tmpname[64];
    snprintf(tmpname, sizeof tmpname, ".active.%ld.tmp", (long)getpid());
    if (path_of(dir, sizeof dir, data_dir, domain, NULL) < 0 ||
        path_of(path, sizeof path, data_dir, domain, "active") < 0 ||
        path_of(tmp, sizeof tmp, data_dir, domain, tmpname) < 0) {
        *error_r = "data directory path too long";
        return -1;
    }
    int n = snprintf(line, sizeof line, "%s\n", sel);
    (void)unlink(tmp);
    if (write_new_file(tmp, line, (size_t)n, error_r) < 0)
        return -1;
    if (rename(tmp, path) < 0) {
        *error_r = err_errno(path);
        unlink(tmp);
        return -1;
    }
    if (fs_fsync_dir_path(dir) < 0) {
        *error_r = err_errno(dir);
        return -1;
    }
    return 0;
}

int dkimkey_generate(const char *data_dir, const char *domain, const char *sel,
                     enum dkimkey_alg alg, const char **error_r)
{
    *error_r = NULL;
    if (!dkimkey_domain_valid(domain) || !dkimkey_selector_valid(sel)) {
        *error_r = "invalid domain or selector";
        return -1;
    }
    if (dkimkey_exists(data_dir, domain, sel))
        return 1;
    EVP_PKEY *pkey = make_key(alg);
    if (!pkey) {
        *error_r = "OpenSSL could not generate the key";
        return -1;
    }
    size_t len = 0;
    char *pem = pem_of(pkey, &len);
    EVP_PKEY_free(pkey);
    if (!pem) {
        *error_r = "OpenSSL could not encode the key";
        return -1;
    }
    int r = store_key(data_dir, domain, sel, pem, len, error_r);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (r != 0)
        return r;
    return set_active(data_dir, domain, sel, error_r) < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- load */

int dkimkey_active(const char *data_dir, const char *domain,
                   char sel_r[DKIMKEY_SELECTOR_MAX + 1], const char **error_r)
{
    *error_r = NULL;
    char path[PATH_MAX];
    if (!dkimkey_domain_valid(domain) ||
        path_of(path, sizeof path, data_dir, domain, "active") < 0) {
        *error_r = "invalid domain";
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    int r = read_small_file(path, &text, &len, error_r);
    if (r != 0)
        return r;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    r = 0;
    if (!dkimkey_selector_valid(text)) {
        *error_r = "the active-selector file is damaged";
        r = -1;
    } else {
        snprintf(sel_r, DKIMKEY_SELECTOR_MAX + 1, "%s", text);
    }
    free(text);
    return r;
}

/* Reads PEM's algorithm; -1 if it is not an RSA or Ed25519 private key. */
static int pem_alg(const char *pem, size_t len, enum dkimkey_alg *alg_r)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pkey)
        return -1;
    int id = EVP_PKEY_get_base_id(pkey);
    EVP_PKEY_free(pkey);
    if (id == EVP_PKEY_RSA)
        *alg_r = DKIMKEY_RSA;
    else if (id == EVP_PKEY_ED25519)
        *alg_r = DKIMKEY_ED25519;
    else
        return -1;
    return 0;
}

int dkimkey_load(const char *data_dir, const char *domain, const char *sel,
                 struct dkimkey *k_r, const char **error_r)
{
    *error_r = NULL;
    memset(k_r, 0, sizeof *k_r);
    char active[DKIMKEY_SELECTOR_MAX + 1], path[PATH_MAX];
    if (!sel) {
        int r = dkimkey_active(data_dir, domain, active, error_r);
        if (r != 0)
            return r;
        sel = active;
    }
    if (!dkimkey_domain_valid(domain) || !dkimkey_selector_valid(sel) ||
        key_path(path, sizeof path, data_dir, domain, sel) < 0) {
        *error_r = "invalid domain or selector";
        return -1;
    }
    int r = read_small_file(path, &k_r->pem, &k_r->pem_len, error_r);
    if (r != 0)
        return r;
    if (pem_alg(k_r->pem, k_r->pem_len, &k_r->alg) < 0) {
        dkimkey_clear(k_r);
        *error_r = "the key file does not hold an RSA or Ed25519 private key";
        return -1;
    }
    snprintf(k_r->domain, sizeof k_r->domain, "%s", domain);
    snprintf(k_r->selector, sizeof k_r->selector, "%s", sel);
    return 0;
}

void dkimkey_clear(struct dkimkey *k)
{
    if (k->pem) {
        OPENSSL_cleanse(k->pem, k->pem_len);
        free(k->pem);
    }
    k->pem = NULL;
    k->pem_len = 0;
}

/* ---------------------------------------------------------------- record */

/* The public key bytes DKIM publishes for PKEY (malloc'd) and their count. */
static unsigned char *public_bytes(EVP_PKEY *pkey, enum dkimkey_alg alg, size_t *len_r)
{
    if (alg == DKIMKEY_ED25519) {
        size_t n = 0;
        if (EVP_PKEY_get_raw_public_key(pkey, NULL, &n) != 1 || n == 0)
            return NULL;
        unsigned char *out = xmalloc(n);
        if (EVP_PKEY_get_raw_public_key(pkey, out, &n) != 1) {
            free(out);
            return NULL;
        }
        *len_r = n;
        return out;
    }
    int n = i2d_PUBKEY(pkey, NULL);
    if (n <= 0)
        return NULL;
    unsigned char *out = xmalloc((size_t)n), *p = out;
    if (i2d_PUBKEY(pkey, &p) != n) {
        free(out);
        return NULL;
    }
    *len_r = (size_t)n;
    return out;
}

char *dkimkey_txt_value(const struct dkimkey *k, const char **error_r)
{
    *error_r = NULL;
    BIO *bio = BIO_new_mem_buf(k->pem, (int)k->pem_len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    size_t n = 0;
    unsigned char *pub = pkey ? public_bytes(pkey, k->alg, &n) : NULL;
    EVP_PKEY_free(pkey);
    if (!pub) {
        *error_r = "cannot read the public key";
        return NULL;
    }
    char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, pub, (int)n);
    free(pub);
    char *out = NULL;
    if (asprintf(&out, "v=DKIM1; k=%s; p=%s", dkimkey_alg_name(k->alg), b64) < 0)
        abort();
    free(b64);
    return out;
}
