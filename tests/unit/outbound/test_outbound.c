/* test_outbound: the pure parts of the outbound transport — the SMTP reply
 * parser (single and multi-line replies, enhanced codes, every kind of bad
 * line, the limits), the EHLO capability parser, dot-stuffing, the BDAT
 * chunk body (no stuffing, the same line-end repair), the MX
 * RDATA decoder and MX ordering (preference first, equal preferences
 * shuffled), the TLSA RDATA decoder and which TLSA records SMTP can use
 * (RFC 7672 3.1), and the [outbound]/[transport]/[queue] config keys with
 * config_route. Lines are copied into exact-size heap blocks so ASan sees
 * any read past their end. */
#include "core/config.h"
#include "core/limits.h"
#include "dns/dns.h"
#include "smtp/smtp_client.h"
#include "test.h"

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int feed(struct smtpc_reply *r, const char *line, const char **err)
{
    size_t n = strlen(line);
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    memcpy(q, line, n);
    int rc = smtpc_reply_feed(r, q, n, err);
    free(q);
    return rc;
}

static void test_reply_single_and_multi(void)
{
    test_begin("smtpc reply: single line, multi-line, enhanced code, text");
    struct smtpc_reply r;
    smtpc_reply_init(&r);
    const char *err = NULL;
    test_assert(feed(&r, "250 2.1.0 Sender OK", &err) == SMTPC_DONE);
    test_assert(r.code == 250);
    test_assert_streq(r.enhanced, "2.1.0");
    test_assert_streq(r.text.data, "2.1.0 Sender OK");
    char *s = smtpc_reply_string(&r);
    test_assert_streq(s, "250 2.1.0 Sender OK");
    free(s);
    /* a new reply after DONE starts afresh */
    test_assert(feed(&r, "550-5.1.1 The email account that you tried to reach", &err) == SMTPC_MORE);
    test_assert(feed(&r, "550-5.1.1 does not exist. Please try", &err) == SMTPC_MORE);
    test_assert(feed(&r, "550 5.1.1 double-checking", &err) == SMTPC_DONE);
    test_assert(r.code == 550 && r.nlines == 3);
    test_assert_streq(r.enhanced, "5.1.1");
    test_assert(strchr(r.text.data, '\n') != NULL);
    /* bare code, no text */
    test_assert(feed(&r, "354", &err) == SMTPC_DONE);
    test_assert(r.code == 354 && r.enhanced[0] == '\0');
    /* enhanced code of the wrong class is not one */
    test_assert(feed(&r, "451 5.1.1 mixed", &err) == SMTPC_DONE);
    test_assert(r.enhanced[0] == '\0');
    test_assert(feed(&r, "250 2.0.0", &err) == SMTPC_DONE);
    test_assert_streq(r.enhanced, "2.0.0");
    test_assert(feed(&r, "250 2.0.0x text", &err) == SMTPC_DONE);
    test_assert(r.enhanced[0] == '\0');
    smtpc_reply_deinit(&r);
    test_end();
}

static void test_reply_bad(void)
{
    test_begin("smtpc reply: garbage, changed code, NUL, limits");
    static const char *const bad[] = {
        "", "25", "hello there", "650 six hundred", "150 one", "2x0 nope", "250_under",
        "abc def", "099 zero",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct smtpc_reply r;
        smtpc_reply_init(&r);
        const char *err = NULL;
        test_assert(feed(&r, bad[i], &err) == SMTPC_BAD);
        test_assert(err != NULL);
        smtpc_reply_deinit(&r);
    }
    struct smtpc_reply r;
    smtpc_reply_init(&r);
    const char *err = NULL;
    test_assert(feed(&r, "250-first", &err) == SMTPC_MORE);
    test_assert(feed(&r, "550 second", &err) == SMTPC_BAD);
    smtpc_reply_reset(&r);
    test_assert(smtpc_reply_feed(&r, "250 a\0b", 7, &err) == SMTPC_BAD);
    /* line length: at the limit ok, one more refused */
    char *line = malloc(SMTPC_MAX_REPLY_LINE + 2);
    memset(line, 'x', SMTPC_MAX_REPLY_LINE + 1);
    memcpy(line, "250 ", 4);
    smtpc_reply_reset(&r);
    test_assert(smtpc_reply_feed(&r, line, SMTPC_MAX_REPLY_LINE, &err) == SMTPC_DONE);
    smtpc_reply_reset(&r);
    test_assert(smtpc_reply_feed(&r, line, SMTPC_MAX_REPLY_LINE + 1, &err) == SMTPC_BAD);
    free(line);
    /* line count */
    smtpc_reply_reset(&r);
    int rc = SMTPC_MORE;
    for (int i = 0; i < SMTPC_MAX_REPLY_LINES + 5 && rc == SMTPC_MORE; i++)
        rc = feed(&r, "250-x", &err);
    test_assert(rc == SMTPC_BAD);
    smtpc_reply_deinit(&r);
    test_end();
}

static void ehlo(struct smtpc_caps *caps, const char *const *lines)
{
    struct smtpc_reply r;
    smtpc_reply_init(&r);
    const char *err;
    for (int i = 0; lines[i]; i++)
        feed(&r, lines[i], &err);
    smtpc_parse_ehlo(&r, caps);
    smtpc_reply_deinit(&r);
}

static void test_ehlo(void)
{
    test_begin("smtpc EHLO: keywords, SIZE, AUTH mechanisms, case");
    struct smtpc_caps c;
    ehlo(&c, (const char *const[]){"250-smtp.gmail.com at your service", "250-SIZE 35882577",
                                  "250-8BITMIME", "250-AUTH LOGIN PLAIN XOAUTH2",
                                  "250-ENHANCEDSTATUSCODES", "250-pipelining", "250-CHUNKING",
                                  "250 SMTPUTF8", NULL});
    test_assert(c.size_given && c.size == 35882577);
    test_assert(c.eightbitmime && c.pipelining && c.chunking && c.smtputf8);
    test_assert(c.auth_plain && c.auth_login && !c.starttls);
    ehlo(&c, (const char *const[]){"250-mx.example", "250-STARTTLS", "250-SIZE",
                                  "250 AUTH=LOGIN", NULL});
    test_assert(c.starttls && c.size_given && c.size == 0);
    test_assert(!c.auth_plain && !c.auth_login && !c.pipelining);
    /* the greeting line is not a keyword; other codes give nothing */
    ehlo(&c, (const char *const[]){"250 STARTTLS", NULL});
    test_assert(!c.starttls);
    ehlo(&c, (const char *const[]){"502-x", "502 STARTTLS", NULL});
    test_assert(!c.starttls);
    ehlo(&c, (const char *const[]){"250-x", "250-SIZE 99999999999999999999999", "250 AUTH CRAM-MD5", NULL});
    test_assert(c.size_given && !c.auth_plain);
    test_end();
}

static char *stuff(const char *in, size_t *len_r)
{
    struct evbuffer *b = evbuffer_new();
    test_assert(smtpc_dot_stuff(b, in, strlen(in)) == 0);
    size_t n = evbuffer_get_length(b);
    char *out = malloc(n + 1);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    evbuffer_free(b);
    *len_r = n;
    return out;
}

static void test_dot_stuff(void)
{
    test_begin("smtpc dot-stuffing: leading dots, bare LF, missing final CRLF");
    static const char *const cases[][2] = {
        {"a\r\n", "a\r\n.\r\n"},
        {".\r\n", "..\r\n.\r\n"},
        {"x\r\n.hidden\r\n..two\r\n", "x\r\n..hidden\r\n...two\r\n.\r\n"},
        {"bare\nlf\n", "bare\r\nlf\r\n.\r\n"},
        {"no end", "no end\r\n.\r\n"},
        {"", ".\r\n"},
        {"a\r\n\r\n.\r\n", "a\r\n\r\n..\r\n.\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *out = stuff(cases[i][0], &n);
        test_assert_streq(out, cases[i][1]);
        free(out);
    }
    test_assert(smtpc_has_8bit("abc", 3) == 0);
    test_assert(smtpc_has_8bit("caf\xc3\xa9", 5) == 1);
    test_end();
}

static void test_chunk_body(void)
{
    test_begin("smtpc BDAT body: bytes unchanged, leading dots kept, bare LF, final CRLF");
    static const char *const cases[][2] = {
        {"a\r\n", "a\r\n"},
        {".\r\n", ".\r\n"},
        {"x\r\n.hidden\r\n..two\r\n.\r\n", "x\r\n.hidden\r\n..two\r\n.\r\n"},
        {"bare\nlf\n", "bare\r\nlf\r\n"},
        {"\nfirst", "\r\nfirst\r\n"},
        {"mixed\r\nbare\ncr\r\n", "mixed\r\nbare\r\ncr\r\n"},
        {"no end", "no end\r\n"},
        {"cr end\r", "cr end\r\n"},
        {"in\rside\r\n", "in\rside\r\n"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *in = cases[i][0];
        size_t n = strlen(in);
        char *q = malloc(n ? n : 1);   /* exact size: ASan sees overreads */
        test_assert(q != NULL);
        memcpy(q, in, n);
        struct evbuffer *b = evbuffer_new();
        test_assert(smtpc_chunk_body(b, q, n) == 0);
        size_t on = evbuffer_get_length(b);
        char *out = malloc(on + 1);
        evbuffer_remove(b, out, on);
        out[on] = '\0';
        test_assert_streq(out, cases[i][1]);
        /* the DATA path sends the same lines, only stuffed and terminated */
        size_t sn;
        char *st = stuff(in, &sn);
        test_assert(sn >= 3 && memcmp(st + sn - 3, ".\r\n", 3) == 0);
        free(st);
        free(out);
        free(q);
        evbuffer_free(b);
    }
    test_end();
}

static void test_mx_rdata(void)
{
    test_begin("dns: MX RDATA decoding, null MX, malformed");
    int pref;
    char name[256];
    static const unsigned char mx1[] = {0, 10, 2, 'm', 'x', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
    test_assert(dns_mx_rdata(mx1, sizeof mx1, &pref, name, sizeof name) == 0);
    test_assert(pref == 10);
    test_assert_streq(name, "mx.example.com");
    static const unsigned char nullmx[] = {0, 0, 0};
    test_assert(dns_mx_rdata(nullmx, sizeof nullmx, &pref, name, sizeof name) == 0);
    test_assert(pref == 0);
    test_assert_streq(name, ".");
    static const unsigned char trunc[] = {0, 5, 4, 'a', 'b'};
    test_assert(dns_mx_rdata(trunc, sizeof trunc, &pref, name, sizeof name) < 0);
    static const unsigned char ptr[] = {0, 5, 0xc0, 12};
    test_assert(dns_mx_rdata(ptr, sizeof ptr, &pref, name, sizeof name) < 0);
    static const unsigned char badch[] = {0, 5, 3, 'a', ' ', 'b', 0};
    test_assert(dns_mx_rdata(badch, sizeof badch, &pref, name, sizeof name) < 0);
    static const unsigned char trailing[] = {0, 5, 1, 'a', 0, 7};
    test_assert(dns_mx_rdata(trailing, sizeof trailing, &pref, name, sizeof name) < 0);
    test_assert(dns_mx_rdata(mx1, 2, &pref, name, sizeof name) < 0);
    test_assert(dns_mx_rdata(mx1, sizeof mx1, &pref, name, 5) < 0);
    test_end();
}

static unsigned seq_state;
static unsigned seq_rnd(void)
{
    return seq_state = seq_state * 1103515245u + 12345u;
}

static void test_mx_order(void)
{
    test_begin("dns: MX hosts by preference, equal preferences shuffled");
    int first_b = 0, first_c = 0;
    for (int round = 0; round < 200; round++) {
        struct dns_mxhost h[4] = {{"c", 20, 0}, {"a", 5, 0}, {"b", 20, 0}, {"d", 30, 0}};
        seq_state = (unsigned)round * 7919u;
        dns_sort_hosts(h, 4, seq_rnd);
        test_assert_streq(h[0].name, "a");
        test_assert_streq(h[3].name, "d");
        test_assert(h[1].pref == 20 && h[2].pref == 20);
        first_b += strcmp(h[1].name, "b") == 0;
        first_c += strcmp(h[1].name, "c") == 0;
    }
    test_assert(first_b > 40 && first_c > 40);   /* both orders happen */
    test_end();
}


/* A real P-256 key's SubjectPublicKeyInfo and a self-signed certificate for
 * it, as TLSA full data (matching type 0): usable with the right selector,
 * unusable with the other one or with a byte more or less. */
static void test_full_data_decoded(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    test_assert(k != NULL);
    unsigned char rd[3 + 2048], *p = rd + 3;
    int spki = i2d_PUBKEY(k, &p);
    test_assert(spki > 0 && spki < 2000);
    struct dns_tlsa t;
    rd[0] = 3, rd[1] = 1, rd[2] = 0;
    test_assert(dns_tlsa_rdata(rd, 3 + spki, &t) == 0 && dns_tlsa_usable(&t));
    test_assert(dns_tlsa_rdata(rd, 3 + spki - 1, &t) == 0 && !dns_tlsa_usable(&t));
    rd[3 + spki] = 0;
    test_assert(dns_tlsa_rdata(rd, 3 + spki + 1, &t) == 0 && !dns_tlsa_usable(&t));
    rd[1] = 0;   /* selector 0 wants a certificate */
    test_assert(dns_tlsa_rdata(rd, 3 + spki, &t) == 0 && !dns_tlsa_usable(&t));

    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    test_assert(x && n && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                                      (const unsigned char *)"mx.example", -1, -1, 0));
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    test_assert(X509_set_subject_name(x, n) && X509_set_issuer_name(x, n) &&
                X509_set_pubkey(x, k) && X509_sign(x, k, EVP_sha256()) > 0);
    p = rd + 3;
    int cert = i2d_X509(x, &p);
    test_assert(cert > 0 && cert < 2000);
    test_assert(dns_tlsa_rdata(rd, 3 + cert, &t) == 0 && dns_tlsa_usable(&t));
    rd[1] = 1;   /* and selector 1 wants a public key */
    test_assert(dns_tlsa_rdata(rd, 3 + cert, &t) == 0 && !dns_tlsa_usable(&t));
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(k);
}
static void test_tlsa(void)
{
    test_begin("dns: TLSA RDATA decoding and usability for SMTP (RFC 7672 3.1)");
    unsigned char rd[3 + 64];
    memset(rd, 0xab, sizeof rd);
    rd[0] = 3;
    rd[1] = 1;
    rd[2] = 1;
    struct dns_tlsa t;
    test_assert(dns_tlsa_rdata(rd, 3 + 32, &t) == 0);
    test_assert(t.usage == 3 && t.selector == 1 && t.mtype == 1 && t.len == 32);
    test_assert(t.data == rd + 3);
    test_assert(dns_tlsa_usable(&t));
    /* SHA-256 must be 32 bytes, SHA-512 64 */
    test_assert(dns_tlsa_rdata(rd, 3 + 31, &t) == 0 && !dns_tlsa_usable(&t));
    rd[2] = 2;
    test_assert(dns_tlsa_rdata(rd, 3 + 64, &t) == 0 && dns_tlsa_usable(&t));
    test_assert(dns_tlsa_rdata(rd, 3 + 32, &t) == 0 && !dns_tlsa_usable(&t));
    /* full (0): the DER the selector names, and nothing else: 10 bytes of
     * junk are unusable (the host then gets TLS without authentication,
     * rather than being deferred for good) */
    rd[2] = 0;
    test_assert(dns_tlsa_rdata(rd, 3 + 10, &t) == 0 && !dns_tlsa_usable(&t));
    test_full_data_decoded();
    test_assert(dns_tlsa_rdata(rd, 3, &t) < 0);   /* no data at all: malformed */
    test_assert(dns_tlsa_rdata(rd, 2, &t) < 0);
    /* DANE-TA (2) is usable; PKIX-TA (0) and PKIX-EE (1) are not for SMTP */
    rd[2] = 1;
    for (int u = 0; u < 5; u++) {
        rd[0] = (unsigned char)u;
        test_assert(dns_tlsa_rdata(rd, 3 + 32, &t) == 0);
        test_assert(dns_tlsa_usable(&t) == (u == 2 || u == 3));
    }
    /* selectors 0 (certificate) and 1 (SPKI) only; matching types 0..2 */
    rd[0] = 3;
    rd[1] = 2;
    test_assert(dns_tlsa_rdata(rd, 3 + 32, &t) == 0 && !dns_tlsa_usable(&t));
    rd[1] = 0;
    rd[2] = 3;
    test_assert(dns_tlsa_rdata(rd, 3 + 32, &t) == 0 && !dns_tlsa_usable(&t));
    /* at the data limit and one past it */
    unsigned char *big = calloc(1, 3 + DNS_TLSA_MAX_DATA + 1);
    test_assert(big != NULL);
    big[0] = 3;
    /* parsed at the limit (zeros are no certificate: unusable) */
    test_assert(dns_tlsa_rdata(big, 3 + DNS_TLSA_MAX_DATA, &t) == 0 && !dns_tlsa_usable(&t));
    test_assert(dns_tlsa_rdata(big, 3 + DNS_TLSA_MAX_DATA + 1, &t) < 0);
    free(big);
    test_end();
}

static void test_config(void)
{
    test_begin("config: [outbound], [transport], [queue] and config_route");
    struct config cfg;
    char *errors = NULL;
    const char *good =
        "[outbound]\nresolver = 127.0.0.1@5353\nrelay = smtp.gmail.com:465\n"
        "relay_auth_file = /etc/roost/relay\ntls_required_domains = Bank.example b.example\n"
        "max_connections = 20\nmax_connections_per_destination = 2\nidle_seconds = 3\n"
        "timeout_percent = 5\nsmtp_port = 2525\nsource_address = 2001:db8::25 192.0.2.25\n"
        "[transport]\nexample.org = relay\nother.example = smtp:[10.0.0.1]:2525\n"
        "third.example = smtp:mx.third.example\n* = mx\n"
        "[queue]\nretry_unit_ms = 50\n";
    test_assert(config_load_string(good, "t.conf", &cfg, &errors) == 0);
    test_assert(errors == NULL);
    test_assert_streq(cfg.outbound.resolver, "127.0.0.1@5353");
    test_assert_streq(cfg.outbound.relay_host, "smtp.gmail.com");
    test_assert(cfg.outbound.relay_port == 465);
    test_assert_streq(cfg.outbound.tls_required_domains, "bank.example b.example");
    test_assert(cfg.outbound.max_connections == 20 && cfg.outbound.max_per_destination == 2);
    test_assert(cfg.outbound.idle_seconds == 3 && cfg.outbound.timeout_percent == 5);
    test_assert(cfg.outbound.smtp_port == 2525 && cfg.retry_unit_ms == 50);
    test_assert_streq(cfg.outbound.source4, "192.0.2.25");
    test_assert_streq(cfg.outbound.source6, "2001:db8::25");
    const struct transport_route *r = config_route(&cfg, "example.org");
    test_assert(r->kind == ROUTE_RELAY);
    r = config_route(&cfg, "other.example");
    test_assert(r->kind == ROUTE_SMTP && r->no_mx && r->port == 2525);
    test_assert_streq(r->host, "10.0.0.1");
    r = config_route(&cfg, "third.example");
    test_assert(r->kind == ROUTE_SMTP && !r->no_mx && r->port == 0);
    test_assert(config_route(&cfg, "elsewhere.example")->kind == ROUTE_MX);
    config_free(&cfg);

    /* relay configured, no "*": everything goes through the relay */
    test_assert(config_load_string("[outbound]\nrelay = smtp.example.com\n", "t", &cfg, NULL) == 0);
    test_assert(cfg.outbound.relay_port == 587);
    test_assert(config_route(&cfg, "any.example")->kind == ROUTE_RELAY);
    config_free(&cfg);
    test_assert(config_load_string("", "t", &cfg, NULL) == 0);
    test_assert(config_route(&cfg, "any.example")->kind == ROUTE_MX);
    test_assert(cfg.outbound.smtp_port == 25 && cfg.outbound.timeout_percent == 100);
    test_assert(cfg.outbound.enabled == 1);
    test_assert(cfg.outbound.dnssec_trust_anchor == NULL);   /* the default file */
    config_free(&cfg);
    test_assert(config_load_string("[outbound]\ndnssec_trust_anchor = /etc/roost/ta.key\n", "t",
                                   &cfg, NULL) == 0);
    test_assert_streq(cfg.outbound.dnssec_trust_anchor, "/etc/roost/ta.key");
    config_free(&cfg);
    test_assert(config_load_string("[outbound]\ndnssec_trust_anchor = none\n", "t", &cfg, NULL) == 0);
    test_assert_streq(cfg.outbound.dnssec_trust_anchor, "none");
    config_free(&cfg);
    test_assert(config_load_string("[outbound]\nenabled = no\n", "t", &cfg, NULL) == 0);
    test_assert(cfg.outbound.enabled == 0);
    config_free(&cfg);

    static const char *const bad[] = {
        "[outbound]\nresolver = dns.example\n",
        "[outbound]\nrelay = bad host:25\n",
        "[outbound]\nrelay = host:99999\n",
        "[outbound]\nrelay_tls = maybe\n",
        "[outbound]\nrelay_auth_file = relative\n",
        "[outbound]\ndnssec_trust_anchor = root.key\n",
        "[outbound]\ndnssec_trust_anchor = \n",
        "[outbound]\nmax_connections = 0\n",
        "[outbound]\ntimeout_percent = 5000\n",
        "[outbound]\nnope = 1\n",
        "[outbound]\nenabled = maybe\n",
        "[outbound]\nsource_address = mail.example.com\n",
        "[outbound]\nsource_address = 192.0.2.1 192.0.2.2\n",
        "[outbound]\nsource_address = 192.0.2.1 2001:db8::1 2001:db8::2\n",
        "[outbound]\nsource_address =  \n",
        "[outbound]\ntls_required_domains = ok.example b@d\n",
        "[transport]\nexample.org = relay\n",
        "[transport]\nexample.org = carrier-pigeon\n",
        "[transport]\nexample.org = smtp:[10.0.0.1\n",
        "[transport]\nexample.org = smtp:host:0\n",
        "[transport]\nbad domain = mx\n",
        "[transport]\na.example = mx\na.example = mx\n",
        "[queue]\nretry_unit_ms = 0\n",
        "[queue]\nother = 1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errors = NULL;
        int rc = config_load_string(bad[i], "bad.conf", &cfg, &errors);
        test_assert(rc < 0);
        test_assert(errors != NULL && strstr(errors, "bad.conf:") != NULL);
        free(errors);
        config_free(&cfg);
    }
    test_end();
}

int main(void)
{
    return test_run((test_fn[]){test_reply_single_and_multi, test_reply_bad, test_ehlo,
                                test_dot_stuff, test_chunk_body, test_mx_rdata, test_mx_order, test_tlsa, test_config,
                                NULL});
}
