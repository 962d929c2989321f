/* fuzz_mta_sts: libFuzzer target for src/queue/mta_sts_policy.c, the
 * MTA-STS TXT record and policy file parsers (what DNS and the policy
 * host's HTTPS answer carry) and the cache file reader. The first byte
 * picks the parser, the rest is the input. Invariants checked: a TXT id is
 * 1-32 letters and digits; a parsed policy has a known mode, a max_age
 * within the cap, mx patterns that are lower-case host names (or "*."
 * and one) and at least one unless the mode is none, each pattern matches
 * a host built from it; a policy written as a cache file reads back the
 * same. */
#include "queue/mta_sts_policy.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_policy(const struct sts_policy *p)
{
    if (p->mode != STS_MODE_NONE && p->mode != STS_MODE_TESTING && p->mode != STS_MODE_ENFORCE)
        abort();
    if (p->max_age < 0 || p->max_age > STS_MAX_AGE || p->nmx < 0 || p->nmx > STS_MAX_MX)
        abort();
    if (p->mode != STS_MODE_NONE && p->nmx == 0)
        abort();
    for (int i = 0; i < p->nmx; i++) {
        const char *m = p->mx[i];
        size_t n = strnlen(m, sizeof p->mx[i]);
        if (n == 0 || n == sizeof p->mx[i])
            abort();
        const char *h = m[0] == '*' && m[1] == '.' ? m + 2 : m;
        for (const char *c = h; *c; c++)
            if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' || *c == '.'))
                abort();
        char host[300];
        snprintf(host, sizeof host, "%s%s", h == m ? "" : "x.", h);
        if (!sts_pattern_match(m, host) || !sts_mx_match(p, host))
            abort();
        if (h != m) {
            snprintf(host, sizeof host, "a.b.%s", h);
            if (sts_pattern_match(m, host))
                abort();   /* a wildcard covers one label only */
        }
    }
}

static void fuzz_policy(const char *in, size_t len)
{
    struct sts_policy p;
    const char *err = NULL;
    if (sts_parse_policy(in, len, &p, &err) < 0) {
        if (!err)
            abort();
        return;
    }
    check_policy(&p);
    /* round trip through the cache file */
    size_t clen;
    char *f = sts_cache_format("id1", 12345, in, len, &clen);
    char id[STS_ID_MAX + 1];
    long long fetched;
    struct sts_policy q;
    if (sts_cache_parse(f, clen, id, &fetched, &q) < 0 || strcmp(id, "id1") != 0 ||
        fetched != 12345 || q.mode != p.mode || q.max_age != p.max_age || q.nmx != p.nmx)
        abort();
    free(f);
}

static void fuzz_txt(const char *in, size_t len)
{
    char id[STS_ID_MAX + 1];
    if (sts_parse_txt(in, len, id) != 1)
        return;
    size_t n = strnlen(id, sizeof id);
    if (n == 0 || n > STS_ID_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]))
            abort();
}

static void fuzz_cache(const char *in, size_t len)
{
    char id[STS_ID_MAX + 1];
    long long fetched;
    struct sts_policy p;
    if (sts_cache_parse(in, len, id, &fetched, &p) == 0) {
        if (fetched < 0)
            abort();
        check_policy(&p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > STS_MAX_BODY + 100)
        return 0;
    /* an exact-size copy, so that a read past the end is caught */
    size_t len = size - 1;
    char *in = malloc(len ? len : 1);
    if (!in)
        abort();
    memcpy(in, data + 1, len);
    switch (data[0] % 3) {
    case 0: fuzz_policy(in, len); break;
    case 1: fuzz_txt(in, len); break;
    default: fuzz_cache(in, len); break;
    }
    free(in);
    return 0;
}
