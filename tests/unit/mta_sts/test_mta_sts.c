/* test_mta_sts: the pure parts of MTA-STS (RFC 8461): the "_mta-sts" TXT
 * record (3.1), the policy file (3.2: fields, modes, max_age cap, mx
 * patterns, line ends, what is malformed), the mx matcher (4.1: a
 * wildcard covers exactly one leftmost label), the cache file format, the
 * TXT RDATA decoder, and the [outbound] mta_sts keys. Inputs are copied
 * into exact-size heap blocks so ASan sees any read past their end. */
#include "core/config.h"
#include "dns/dns.h"
#include "queue/mta_sts_policy.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int txt(const char *s, char id[STS_ID_MAX + 1])
{
    size_t n = strlen(s);
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    memcpy(q, s, n);
    int rc = sts_parse_txt(q, n, id);
    free(q);
    return rc;
}

static int policy(const char *s, struct sts_policy *p)
{
    size_t n = strlen(s);
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    memcpy(q, s, n);
    const char *err = NULL;
    int rc = sts_parse_policy(q, n, p, &err);
    if (rc < 0)
        test_assert(err != NULL);
    free(q);
    return rc;
}

static void test_txt(void)
{
    test_begin("mta-sts: TXT record (RFC 8461 3.1)");
    char id[STS_ID_MAX + 1];
    test_assert(txt("v=STSv1; id=20160831085700Z", id) == 1);
    test_assert_streq(id, "20160831085700Z");
    test_assert(txt("v=STSv1;id=abc", id) == 1);
    test_assert_streq(id, "abc");
    test_assert(txt("v=STSv1; id=abc;", id) == 1);
    test_assert(txt("v=STSv1 ; id=abc ; ext=val", id) == 1);
    test_assert(txt("v=STSv1; ext.x-y_z=1; id=X9", id) == 1);
    test_assert_streq(id, "X9");
    /* 32 characters is the longest id */
    test_assert(txt("v=STSv1; id=0123456789abcdef0123456789abcdef", id) == 1);
    /* not STSv1 records: ignored */
    test_assert(txt("v=spf1 -all", id) == 0);
    test_assert(txt("v=STSv10; id=1", id) == 0);
    test_assert(txt("", id) == 0);
    test_assert(txt("some text", id) == 0);
    /* STSv1 but malformed */
    test_assert(txt("v=STSv1", id) == -1);
    test_assert(txt("v=STSv1;", id) == -1);
    test_assert(txt("v=STSv1; id=", id) == -1);
    test_assert(txt("v=STSv1; id=a-b", id) == -1);
    test_assert(txt("v=STSv1; id=0123456789abcdef0123456789abcdef0", id) == -1);
    test_assert(txt("v=STSv1; id=1; id=2", id) == -1);
    test_assert(txt("v=STSv1; id=1 junk", id) == -1);
    test_assert(txt("v=STSv1; id=1; =x", id) == -1);
    test_assert(txt("v=STSv1; id=1; e=", id) == -1);
    test_assert(txt("v=STSv1; id=1; e=a=b", id) == -1);
    test_end();
}

static void test_policy_good(void)
{
    test_begin("mta-sts: policy file, well formed");
    struct sts_policy p;
    test_assert(policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
                       "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
                       &p) == 0);
    test_assert(p.mode == STS_MODE_ENFORCE && p.max_age == 604800 && p.nmx == 3);
    test_assert_streq(p.mx[1], "*.example.net");
    /* LF line ends, no final line end, trailing blanks, upper-case mx, extensions */
    test_assert(policy("version: STSv1\nmode: testing\nmx: MX.Example.ORG \nfoo: bar baz\nmax_age: 86400", &p) == 0);
    test_assert(p.mode == STS_MODE_TESTING && p.nmx == 1);
    test_assert_streq(p.mx[0], "mx.example.org");
    /* mode none needs no mx */
    test_assert(policy("version: STSv1\nmode: none\nmax_age: 0\n", &p) == 0);
    test_assert(p.mode == STS_MODE_NONE && p.max_age == 0 && p.nmx == 0);
    /* max_age above a year is capped */
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 9999999999\n", &p) == 0);
    test_assert(p.max_age == STS_MAX_AGE);
    test_assert(policy("version:STSv1\nmode:\tenforce\nmx:a.b\nmax_age:1\n", &p) == 0);
    test_end();
}

static void test_policy_bad(void)
{
    test_begin("mta-sts: policy file, malformed");
    struct sts_policy p;
    test_assert(policy("", &p) < 0);
    test_assert(policy("mode: enforce\nmx: a.b\nmax_age: 1\n", &p) < 0);            /* no version */
    test_assert(policy("version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmx: a.b\nmax_age: 1\n", &p) < 0);             /* no mode */
    test_assert(policy("version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a.b\n", &p) < 0);          /* no max_age */
    test_assert(policy("version: STSv1\nmode: enforce\nmax_age: 1\n", &p) < 0);      /* no mx */
    test_assert(policy("version: STSv1\nmode: testing\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 12345678901\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1 day\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmode: none\nmx: a.b\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: -a.b\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a_b.c\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx a.b\nmax_age: 1\n", &p) < 0);
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a.b\x01\nmax_age: 1\n", &p) < 0);
    test_assert(policy("<html><body>404</body></html>\n", &p) < 0);
    /* more than STS_MAX_MX mx lines */
    char big[STS_MAX_MX * 16 + 100];
    size_t o = (size_t)snprintf(big, sizeof big, "version: STSv1\nmode: enforce\nmax_age: 1\n");
    for (int i = 0; i <= STS_MAX_MX; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "mx: m%d.b\n", i);
    test_assert(policy(big, &p) < 0);
    test_end();
}

static void test_match(void)
{
    test_begin("mta-sts: mx matching (RFC 8461 4.1)");
    test_assert(sts_pattern_match("mail.example.com", "mail.example.com"));
    test_assert(sts_pattern_match("mail.example.com", "MAIL.Example.com."));
    test_assert(!sts_pattern_match("mail.example.com", "mail.example.com.au"));
    test_assert(!sts_pattern_match("mail.example.com", "xmail.example.com"));
    test_assert(sts_pattern_match("*.example.net", "mx1.example.net"));
    test_assert(sts_pattern_match("*.example.net", "MX1.EXAMPLE.NET."));
    test_assert(!sts_pattern_match("*.example.net", "a.b.example.net"));
    test_assert(!sts_pattern_match("*.example.net", "example.net"));
    test_assert(!sts_pattern_match("*.example.net", ".example.net"));
    test_assert(!sts_pattern_match("*.example.net", "mx1.example.network"));
    struct sts_policy p;
    test_assert(policy("version: STSv1\nmode: enforce\nmx: a.example\nmx: *.b.example\nmax_age: 1\n",
                       &p) == 0);
    test_assert(sts_mx_match(&p, "a.example"));
    test_assert(sts_mx_match(&p, "x.b.example"));
    test_assert(!sts_mx_match(&p, "b.example"));
    test_assert(!sts_mx_match(&p, "c.example"));
    test_assert_streq(sts_mode_name(STS_MODE_ENFORCE), "enforce");
    test_assert_streq(sts_mode_name(STS_MODE_TESTING), "testing");
    test_assert_streq(sts_mode_name(STS_MODE_NONE), "none");
    test_end();
}

static void test_cache(void)
{
    test_begin("mta-sts: cache file");
    const char *pol = "version: STSv1\nmode: enforce\nmx: *.x.test\nmax_age: 600\n";
    size_t len;
    char *f = sts_cache_format("abc123", 1700000000LL, pol, strlen(pol), &len);
    char id[STS_ID_MAX + 1];
    long long fetched = 0;
    struct sts_policy p;
    test_assert(sts_cache_parse(f, len, id, &fetched, &p) == 0);
    test_assert_streq(id, "abc123");
    test_assert(fetched == 1700000000LL && p.max_age == 600 && p.nmx == 1);
    /* every truncation is malformed or at least never read past the end */
    for (size_t n = 0; n < len; n++) {
        char *q = malloc(n ? n : 1);
        if (!q)
            abort();
        memcpy(q, f, n);
        sts_cache_parse(q, n, id, &fetched, &p);
        free(q);
    }
    free(f);
    test_assert(sts_cache_parse("roost-mta-sts 2\nid: a\nfetched: 1\n\n", 31, id, &fetched, &p) < 0);
    const char *bad = "roost-mta-sts 1\nid: a-b\nfetched: 1\n\nversion: STSv1\n";
    test_assert(sts_cache_parse(bad, strlen(bad), id, &fetched, &p) < 0);
    bad = "roost-mta-sts 1\nid: a\nfetched: 99999999999999999999\n\n";
    test_assert(sts_cache_parse(bad, strlen(bad), id, &fetched, &p) < 0);
    test_end();
}

static void test_txt_rdata(void)
{
    test_begin("dns: TXT RDATA (character-strings joined)");
    char out[64];
    size_t n;
    const unsigned char one[] = {7, 'v', '=', 'S', 'T', 'S', 'v', '1'};
    test_assert(dns_txt_rdata(one, sizeof one, out, sizeof out, &n) == 0);
    test_assert(n == 7);
    test_assert_streq(out, "v=STSv1");
    const unsigned char two[] = {3, 'a', 'b', 'c', 0, 2, 'd', 'e'};
    test_assert(dns_txt_rdata(two, sizeof two, out, sizeof out, &n) == 0);
    test_assert_streq(out, "abcde");
    const unsigned char shortr[] = {5, 'a', 'b'};
    test_assert(dns_txt_rdata(shortr, sizeof shortr, out, sizeof out, &n) < 0);
    test_assert(dns_txt_rdata(one, 0, out, sizeof out, &n) < 0);
    test_assert(dns_txt_rdata(one, sizeof one, out, 7, &n) < 0);   /* no room for the NUL */
    test_end();
}

static void test_config_keys(void)
{
    test_begin("config: [outbound] mta_sts, mta_sts_port");
    struct config cfg;
    config_outbound_defaults(&cfg);
    test_assert(cfg.outbound.mta_sts == 1 && cfg.outbound.mta_sts_port == 443);
    char err[300];
    test_assert(config_outbound_key(&cfg, "outbound", "mta_sts", "no", err, sizeof err) == 0);
    test_assert(cfg.outbound.mta_sts == 0);
    test_assert(config_outbound_key(&cfg, "outbound", "mta_sts", "yes", err, sizeof err) == 0);
    test_assert(cfg.outbound.mta_sts == 1);
    test_assert(config_outbound_key(&cfg, "outbound", "mta_sts", "maybe", err, sizeof err) < 0);
    test_assert(config_outbound_key(&cfg, "outbound", "mta_sts_port", "8443", err, sizeof err) == 0);
    test_assert(cfg.outbound.mta_sts_port == 8443);
    test_assert(config_outbound_key(&cfg, "outbound", "mta_sts_port", "0", err, sizeof err) < 0);
    test_assert(config_outbound_key(&cfg, "outbound", "mta_sts_port", "70000", err, sizeof err) < 0);
    config_outbound_free(&cfg);
    test_end();
}

int main(void)
{
    return test_run((test_fn[]){test_txt, test_policy_good, test_policy_bad, test_match,
                                test_cache, test_txt_rdata, test_config_keys, NULL});
}
