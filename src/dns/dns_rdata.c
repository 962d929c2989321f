/* dns_rdata: the pure parts of the resolver (dns.h): the RDATA of MX and
 * TLSA records as libunbound hands them over (wire format, from the
 * network: bounded and checked here), whether a TLSA record is usable for
 * SMTP (RFC 7672; full data is decoded with OpenSSL), and the order of MX
 * hosts. No I/O; unit tested
 * (tests/unit/outbound) and fuzzed (tests/fuzz/fuzz_dns_rdata.c). */
#include "dns/dns.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int dns_mx_rdata(const unsigned char *rd, int len, int *pref_r, char *name, size_t namesz)
{
    if (len < 3 || namesz < 2)
        return -1;
    *pref_r = (rd[0] << 8) | rd[1];
    int i = 2;
    size_t o = 0;
    if (rd[i] == 0) {
        if (len != 3)
            return -1;
        snprintf(name, namesz, ".");
        return 0;
    }
    while (i < len && rd[i] != 0) {
        int l = rd[i];
        if (l > 63 || i + 1 + l >= len)
            return -1;   /* compression pointers are not expected here */
        if (o + (size_t)l + 2 > namesz)
            return -1;
        if (o > 0)
            name[o++] = '.';
        for (int k = 0; k < l; k++) {
            unsigned char ch = rd[i + 1 + k];
            if (!isalnum(ch) && ch != '-' && ch != '_')
                return -1;
            name[o++] = (char)tolower(ch);
        }
        i += 1 + l;
    }
    if (i != len - 1)
        return -1;
    name[o] = '\0';
    return 0;
}

void dns_sort_hosts(struct dns_mxhost *h, int n, unsigned (*rnd)(void))
{
    for (int i = 0; i < n; i++)
        h[i].key = rnd();
    for (int i = 1; i < n; i++) {
        struct dns_mxhost t = h[i];
        int j = i - 1;
        while (j >= 0 && (h[j].pref > t.pref || (h[j].pref == t.pref && h[j].key > t.key))) {
            h[j + 1] = h[j];
            j--;
        }
        h[j + 1] = t;
    }
}

int dns_tlsa_rdata(const unsigned char *rd, int len, struct dns_tlsa *out)
{
    if (len < 4 || len - 3 > DNS_TLSA_MAX_DATA)
        return -1;
    out->usage = rd[0];
    out->selector = rd[1];
    out->mtype = rd[2];
    out->len = (size_t)len - 3;
    out->data = rd + 3;
    return 0;
}

/* Full data (matching type 0) must be what its selector says: a DER
 * certificate (0) or SubjectPublicKeyInfo (1), nothing after it. A record
 * that is not is unusable, not a reason to defer (RFC 7671 4.1, RFC 7672
 * 2.2: a host whose records are all unusable gets TLS without
 * authentication). */
static int full_data_decodes(const struct dns_tlsa *t)
{
    const unsigned char *p = t->data;
    if (t->len == 0 || t->len > (size_t)INT32_MAX)
        return 0;
    int ok = 0;
    if (t->selector == 0) {
        X509 *x = d2i_X509(NULL, &p, (long)t->len);
        ok = x != NULL && p == t->data + t->len;
        X509_free(x);
    } else {
        EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)t->len);
        ok = k != NULL && p == t->data + t->len;
        EVP_PKEY_free(k);
    }
    ERR_clear_error();
    return ok;
}

int dns_tlsa_usable(const struct dns_tlsa *t)
{
    if (t->usage != 2 && t->usage != 3)
        return 0;     /* PKIX-TA / PKIX-EE: not for SMTP (RFC 7672 3.1.3) */
    if (t->selector > 1)
        return 0;
    switch (t->mtype) {
    case 0: return full_data_decodes(t);
    case 1: return t->len == 32;
    case 2: return t->len == 64;
    default: return 0;
    }
}
