/* smtp_client_dane: DANE TLSA authentication (RFC 7672, RFC 7671) of an
 * outbound SMTP connection, on OpenSSL's own DANE support.
 *
 * The TLSA records come from the resolver (dns/dns.h: only DNSSEC-secure,
 * only usable ones: DANE-TA(2) and DANE-EE(3)); smtp_client.c calls
 * smtpc_dane_enable() on the SSL before the STARTTLS handshake and
 * smtpc_dane_matched() after it. OpenSSL checks the chain against the
 * records: DANE-EE matches the server's own certificate or key, with no
 * name or expiry checks (RFC 7672 3.1.1, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
 * DANE-TA matches an issuer in the chain the server sends, and then the
 * certificate must name the MX host (the TLSA base domain) or the
 * next-domain (RFC 7672 3.2.2). A certificate that matches nothing fails
 * the handshake (X509_V_ERR_DANE_NO_MATCH). */
#include "smtp/smtp_client.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <strings.h>

int smtpc_dane_enable(SSL *ssl, const char *host, const char *next_domain,
                      const struct smtpc_tlsa *recs, int n, const char **error_r)
{
    if (SSL_dane_enable(ssl, host) <= 0) {
        ERR_clear_error();
        *error_r = "cannot enable DANE on the TLS connection";
        return -1;
    }
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    /* RFC 7672 3.2.3: a wildcard only as the whole leftmost label */
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (next_domain && next_domain[0] && strcasecmp(next_domain, host) != 0 &&
        SSL_add1_host(ssl, next_domain) != 1) {
        ERR_clear_error();
        *error_r = "cannot set the DANE reference names";
        return -1;
    }
    int usable = 0;
    for (int i = 0; i < n; i++) {
        /* 1 added, 0 unusable, -1 malformed: the others still count */
        if (SSL_dane_tlsa_add(ssl, recs[i].usage, recs[i].selector, recs[i].mtype,
                              recs[i].data, recs[i].len) > 0)
            usable++;
    }
    ERR_clear_error();
    if (usable == 0) {
        *error_r = "none of the TLSA records is usable";
        return -1;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    return 0;
}

int smtpc_dane_matched(SSL *ssl, char *out, size_t outsz, int *depth_r)
{
    uint8_t usage, selector, mtype;
    const unsigned char *data;
    size_t dlen;
    if (SSL_get_verify_result(ssl) != X509_V_OK)
        return -1;
    int depth = SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, &data, &dlen);
    if (depth < 0)
        return -1;
    snprintf(out, outsz, "%u %u %u", usage, selector, mtype);
    *depth_r = depth;
    return 0;
}
