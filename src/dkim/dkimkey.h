/* dkimkey: the DKIM signing keys of the domains Roost serves.
 *
 * Layout under the data directory (directories 0700, files 0600, owned by
 * whoever runs Roost; nothing else needs to read them):
 *   DATA/dkim/<domain>/<selector>.key   PEM PKCS#8 private key (RSA or Ed25519)
 *   DATA/dkim/<domain>/active           the active selector, one line
 * Generating a key writes <selector>.key (never replacing an existing one)
 * and then makes it active by replacing `active` atomically; older keys stay
 * so that mail signed with them still verifies while DNS catches up.
 *
 * Keys are made with OpenSSL 3's EVP API. The public half is published as a
 * DNS TXT record at <selector>._domainkey.<domain>: "v=DKIM1; k=rsa; p=" +
 * base64 of the SubjectPublicKeyInfo (RFC 6376 §3.6.1), or "v=DKIM1;
 * k=ed25519; p=" + base64 of the raw 32-byte key (RFC 8463 §4).
 *
 * Symbols use the prefix dkimkey_ because libopendkim owns dkim_. All
 * functions are thread-safe; error strings are static or thread-local. */
#ifndef ROOST_DKIMKEY_H
#define ROOST_DKIMKEY_H

#include <stddef.h>
#include <time.h>

#define DKIMKEY_SELECTOR_MAX 63   /* one DNS label is enough for us */
#define DKIMKEY_DOMAIN_MAX 253    /* RFC 1035 §2.3.4 */
#define DKIMKEY_RSA_BITS 2048     /* RFC 8301 §3.2: at least 1024, 2048 advised */

enum dkimkey_alg { DKIMKEY_RSA, DKIMKEY_ED25519 };

struct dkimkey {
    char domain[DKIMKEY_DOMAIN_MAX + 1];
    char selector[DKIMKEY_SELECTOR_MAX + 1];
    enum dkimkey_alg alg;
    char *pem;        /* private key, NUL-terminated; wiped by dkimkey_clear */
    size_t pem_len;
};

const char *dkimkey_alg_name(enum dkimkey_alg alg); /* "rsa" or "ed25519" */

/* 1 if DOMAIN is a plain lower-case DNS name that is safe as a file name
 * (labels of a-z 0-9 '-', not starting or ending with '-', no empty label). */
int dkimkey_domain_valid(const char *domain);
/* 1 if SEL is a valid selector for us: one label of a-z 0-9 '-' (lower
 * case), 1..63 characters, not starting or ending with '-'. */
int dkimkey_selector_valid(const char *sel);

/* The default selector for a key made at NOW: its UTC year and month,
 * "YYYYMM"; if DOMAIN already has that selector, "YYYYMM-2", "-3", ... */
int dkimkey_default_selector(const char *data_dir, const char *domain, time_t now,
                             char out[DKIMKEY_SELECTOR_MAX + 1], const char **error_r);

/* 1 if DOMAIN has a key file for SEL, 0 if not. */
int dkimkey_exists(const char *data_dir, const char *domain, const char *sel);

/* Generates a key for DOMAIN under SEL (which must not exist yet), stores it
 * durably and makes SEL the active selector. 0 ok, 1 SEL already exists,
 * -1 error (ERROR_R says why). DOMAIN and SEL must be valid (above). */
int dkimkey_generate(const char *data_dir, const char *domain, const char *sel,
                     enum dkimkey_alg alg, const char **error_r);

/* Reads DOMAIN's active selector into SEL_R: 0 ok, 1 DOMAIN has no key,
 * -1 error. */
int dkimkey_active(const char *data_dir, const char *domain,
                   char sel_r[DKIMKEY_SELECTOR_MAX + 1], const char **error_r);

/* Loads DOMAIN's private key for SEL (NULL: the active one) into K_R.
 * 0 ok, 1 no such key, -1 error. Free with dkimkey_clear. */
int dkimkey_load(const char *data_dir, const char *domain, const char *sel,
                 struct dkimkey *k_r, const char **error_r);
/* Wipes and frees the private key in K. */
void dkimkey_clear(struct dkimkey *k);

/* The TXT record value for K ("v=DKIM1; k=...; p=..."), malloc'd, or NULL
 * with ERROR_R set if the key cannot be read. */
char *dkimkey_txt_value(const struct dkimkey *k, const char **error_r);

#endif
