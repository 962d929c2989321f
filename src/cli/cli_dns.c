/* cli_dns: `roost dns DOMAIN` prints every DNS record DOMAIN needs for mail
 * served by this Roost, as zone-file lines with a comment before each group:
 * MX, SPF, DKIM (the active key, through src/dkim), DMARC, MTA-STS and its
 * policy host, TLS-RPT, the DANE TLSA record of the MX host (3 1 1: the
 * SHA-256 of the server certificate's public key), the autoconfig/autodiscover
 * names and the RFC 6186 / RFC 8314 SRV records. Host names come from [server] hostname and ports
 * from the configured listeners; a service with no listener gets the
 * "not offered" SRV target "." (RFC 6186 §4). The MTA-STS id is derived
 * from the policy text, so it changes exactly when the policy does.
 * Exit 0, or 1 for a domain not served here, 2 for usage. */
#include "cli/cli.h"
#include "cli/cli_dkimrec.h"
#include "core/buf.h"
#include "core/config.h"
#include "dkim/dkimkey.h"
#include "http/http_autoconfig.h"
#include "net/tls.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_TTL 3600

static void txt_record(const char *name, const char *value)
{
    if (strlen(value) <= CLI_TXT_STRING_MAX) {
        printf("%s. %d IN TXT \"%s\"\n", name, DNS_TTL, value);
        return;
    }
    printf("%s. %d IN TXT (", name, DNS_TTL);
    cli_txt_strings(value);
    printf(" )\n");
}

static void dkim_records(const struct cli_ctx *ctx, const char *domain)
{
    struct cli_dkim_record rec;
    const char *err = NULL;
    int r = cli_dkim_record_load(ctx->data_dir, domain, NULL, &rec, &err);
    if (r == 1) {
        printf("; DKIM: %s has no signing key yet. Make one with\n;   roost dkim generate %s\n"
               "; and run roost dns %s again.\n", domain, domain, domain);
        return;
    }
    if (r < 0) {
        printf("; DKIM: cannot read the key of %s: %s\n", domain, err ? err : "?");
        return;
    }
    printf("; DKIM (RFC 6376): selector %s, %s. Outgoing mail is signed with it.\n",
           rec.key.selector, dkimkey_alg_name(rec.key.alg));
    txt_record(rec.name, rec.value);
    cli_dkim_record_clear(&rec);
}

/* 16 hex digits of SHA-256 over the policy text. */
static void mta_sts_id(const struct http_site *site, char out[17])
{
    struct buf b;
    buf_init(&b, 4096);
    unsigned char md[EVP_MAX_MD_SIZE];
    if (http_mta_sts_txt(site, &b) < 0 || !EVP_Digest(b.data, b.len, md, NULL, EVP_sha256(), NULL))
        memset(md, 0, sizeof md);
    buf_deinit(&b);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The certificate Roost serves: [tls] cert, else the self-signed one
 * `roost serve` makes in DATA/tls. */
static X509 *served_cert(const struct cli_ctx *ctx, char *path, size_t pathsz)
{
    if (ctx->cfg->tls_cert)
        snprintf(path, pathsz, "%s", ctx->cfg->tls_cert);
    else
        snprintf(path, pathsz, "%s/" TLS_SELF_SIGNED_CERT, ctx->data_dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

/* RFC 7672 3.1.1 / RFC 7671 5.1: DANE-EE, the certificate's public key
 * (SubjectPublicKeyInfo), SHA-256: a renewal that keeps the key keeps the
 * record valid. */
static void dane_record(const struct cli_ctx *ctx, const char *host)
{
    char path[4096];
    X509 *x = served_cert(ctx, path, sizeof path);
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int len = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;
    int ok = len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    X509_free(x);
    printf("; DANE (RFC 7672): senders that validate DNSSEC check %s's certificate\n"
           "; against this record. Publish it only if the zone of %s is\n"
           "; DNSSEC-signed, and publish the new one before the certificate's key changes\n"
           "; (a renewal that keeps the key keeps it valid).\n", host, host);
    if (!ok) {
        printf("; (cannot read the certificate %s: start roost serve once, or set [tls] cert)\n",
               path);
        return;
    }
    printf("_25._tcp.%s. %d IN TLSA 3 1 1 ", host, DNS_TTL);
    for (unsigned i = 0; i < mdlen; i++)
        printf("%02x", md[i]);
    printf("\n");
}

struct srv {
    const char *service;
    enum listener_kind kind;
    int priority;
};

/* RFC 8314 §5.1: implicit TLS preferred (lower priority) over STARTTLS;
 * RFC 6186 §3.4: IMAP preferred over POP3. */
static const struct srv srvs[] = {
    {"_submissions._tcp", LK_SUBMISSIONS, 0},
    {"_submission._tcp", LK_SUBMISSION, 5},
    {"_imaps._tcp", LK_IMAPS, 0},
    {"_imap._tcp", LK_IMAP, 5},
    {"_pop3s._tcp", LK_POP3S, 10},
    {"_pop3._tcp", LK_POP3, 20},
};

static void print_records(const struct cli_ctx *ctx, const char *domain)
{
    struct http_site site;
    http_site_from_config(ctx->cfg, &site);
    const char *host = site.hostname;
    printf("; DNS records for %s, whose mail is served by %s (Roost).\n"
           "; %s itself needs A and/or AAAA records with this server's public\n"
           "; addresses (not printed: Roost cannot know them behind NAT).\n\n", domain, host, host);

    printf("; MX: where the world delivers mail for %s\n", domain);
    printf("%s. %d IN MX 10 %s.\n\n", domain, DNS_TTL, host);

    printf("; SPF (RFC 7208): only the MX host sends mail for %s\n", domain);
    txt_record(domain, "v=spf1 mx -all");
    printf("\n");

    dkim_records(ctx, domain);
    printf("\n");

    char name[DKIMKEY_DOMAIN_MAX + 64], value[DKIMKEY_DOMAIN_MAX + 128];
    printf("; DMARC (RFC 7489): quarantine mail that fails SPF and DKIM; daily reports\n");
    snprintf(name, sizeof name, "_dmarc.%s", domain);
    snprintf(value, sizeof value, "v=DMARC1; p=quarantine; rua=mailto:postmaster@%s", domain);
    txt_record(name, value);
    printf("\n");

    char id[17];
    mta_sts_id(&site, id);
    printf("; MTA-STS (RFC 8461): senders fetch the policy from\n"
           ";   https://mta-sts.%s/.well-known/mta-sts.txt\n"
           "; which needs a certificate valid for mta-sts.%s ([http] tls, docs/http.md)\n",
           domain, domain);
    snprintf(name, sizeof name, "_mta-sts.%s", domain);
    snprintf(value, sizeof value, "v=STSv1; id=%s", id);
    txt_record(name, value);
    printf("mta-sts.%s. %d IN CNAME %s.\n\n", domain, DNS_TTL, host);

    printf("; TLS-RPT (RFC 8460): reports about TLS failures delivering to %s\n", domain);
    snprintf(name, sizeof name, "_smtp._tls.%s", domain);
    snprintf(value, sizeof value, "v=TLSRPTv1; rua=mailto:postmaster@%s", domain);
    txt_record(name, value);
    printf("\n");

    dane_record(ctx, host);
    printf("\n");

    printf("; Client autoconfiguration (Thunderbird, Outlook; docs/http.md)\n");
    printf("autoconfig.%s. %d IN CNAME %s.\n", domain, DNS_TTL, host);
    printf("autodiscover.%s. %d IN CNAME %s.\n\n", domain, DNS_TTL, host);

    printf("; Service records (RFC 6186, RFC 8314): priority weight port target\n");
    for (size_t i = 0; i < sizeof srvs / sizeof *srvs; i++) {
        int port = site.port[srvs[i].kind];
        if (port)
            printf("%s.%s. %d IN SRV %d 1 %d %s.\n", srvs[i].service, domain, DNS_TTL,
                   srvs[i].priority, port, host);
        else
            printf("%s.%s. %d IN SRV 0 0 0 .\n", srvs[i].service, domain, DNS_TTL);
    }
}

int cli_dns_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: roost dns DOMAIN\n");
        return 2;
    }
    char domain[DKIMKEY_DOMAIN_MAX + 1];
    size_t n = strlen(argv[1]);
    if (n > 0 && argv[1][n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof domain) {
        fprintf(stderr, "roost: %s: not a valid domain name\n", argv[1]);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        domain[i] = (char)tolower((unsigned char)argv[1][i]);
    domain[n] = '\0';
    char hint[DKIMKEY_DOMAIN_MAX + 32];
    snprintf(hint, sizeof hint, "add it with roost domain add %s", domain);
    if (cli_check_domain(ctx, domain, argv[1], hint) != 0)
        return 1;
    print_records(ctx, domain);
    return 0;
}
