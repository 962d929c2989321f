/* fuzz_dns_rdata: libFuzzer target for src/dns/dns_rdata.c, the MX and TLSA
 * RDATA that DNS answers carry (from the network, through libunbound). The
 * first byte picks the record type, the rest is the RDATA. Invariants
 * checked: a parsed MX name is NUL-terminated within its buffer, lower
 * case, and "." or dot-separated labels of letters, digits, '-' and '_'; a
 * parsed TLSA record's data lies inside the input and its usability agrees
 * with RFC 7672's usages, selectors and digest lengths; sorting parsed
 * hosts keeps them ordered by preference. */
#include "dns/dns.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned fixed_key(void)
{
    static unsigned k = 12345;
    k = k * 1103515245u + 12345u;
    return k;
}

static void check_name(const char *name, size_t cap)
{
    size_t n = strnlen(name, cap);
    if (n == cap)
        abort();
    if (strcmp(name, ".") == 0)
        return;
    if (n == 0 || name[0] == '.' || name[n - 1] == '.')
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(islower(c) || isdigit(c) || c == '-' || c == '_' || c == '.'))
            abort();
        if (c == '.' && name[i + 1] == '.')
            abort();
    }
}

static void fuzz_mx(const uint8_t *rd, int len)
{
    struct dns_mxhost hosts[3];
    int n = 0;
    /* the same RDATA three times, read with a shrinking name buffer */
    size_t caps[3] = {sizeof hosts[0].name, 64, 2};
    for (int k = 0; k < 3; k++) {
        memset(&hosts[n], 0, sizeof hosts[n]);
        int pref = -1;
        if (dns_mx_rdata(rd, len, &pref, hosts[n].name, caps[k]) < 0)
            continue;
        if (pref < 0 || pref > 65535)
            abort();
        check_name(hosts[n].name, caps[k]);
        hosts[n].pref = pref + k;   /* distinct preferences for the sort check */
        n++;
    }
    dns_sort_hosts(hosts, n, fixed_key);
    for (int i = 1; i < n; i++)
        if (hosts[i - 1].pref > hosts[i].pref)
            abort();
}

static void fuzz_tlsa(const uint8_t *rd, int len)
{
    struct dns_tlsa t;
    if (dns_tlsa_rdata(rd, len, &t) < 0)
        return;
    if (t.data != rd + 3 || t.len != (size_t)len - 3)
        abort();
    int usable = dns_tlsa_usable(&t);
    if (usable && ((t.usage != 2 && t.usage != 3) || t.selector > 1 || t.mtype > 2))
        abort();
    if (usable && ((t.mtype == 1 && t.len != 32) || (t.mtype == 2 && t.len != 64)))
        abort();
    if (usable && t.mtype == 0 && t.len == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 70000)
        return 0;
    /* an exact-size copy, so that a read past the RDATA is caught */
    int len = (int)size - 1;
    uint8_t *rd = malloc(len ? (size_t)len : 1);
    if (!rd)
        abort();
    memcpy(rd, data + 1, (size_t)len);
    if (data[0] & 1)
        fuzz_tlsa(rd, len);
    else
        fuzz_mx(rd, len);
    free(rd);
    return 0;
}
