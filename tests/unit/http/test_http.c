/* Unit tests for src/http (the request parsers and the documents built
 * from them), src/core/metrics.c (counters, histograms from several
 * threads) and the [http] config keys. */
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/http_autoconfig.h"
#include "http/http_health.h"
#include "http/http_metrics.h"
#include "http/http_parse.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int email_ok(const char *s)
{
    struct http_email e;
    return http_parse_email(s, strlen(s), &e) == 0;
}

static void test_parse_email(void)
{
    test_begin("http_parse_email");
    struct http_email e;
    const char *s = "First.Last+tag@Mail.Example.COM";
    test_assert(http_parse_email(s, strlen(s), &e) == 0);
    test_assert_streq(e.local, "First.Last+tag");
    test_assert_streq(e.domain, "mail.example.com");
    test_assert(email_ok("o'neil&co@example.test"));
    test_assert(!email_ok(""));
    test_assert(!email_ok("@example.com"));
    test_assert(!email_ok("a@"));
    test_assert(!email_ok("a@localhost"));          /* one label */
    test_assert(!email_ok("a@127.0.0.1"));          /* an address, not a domain */
    test_assert(!email_ok("a@-x.com"));
    test_assert(!email_ok("a@x-.com"));
    test_assert(!email_ok("a@x..com"));
    test_assert(!email_ok(".a@x.com"));
    test_assert(!email_ok("a.@x.com"));
    test_assert(!email_ok("a..b@x.com"));
    test_assert(!email_ok("a b@x.com"));
    test_assert(!email_ok("a<b@x.com"));
    test_assert(!email_ok("a@b@x.com"));
    test_assert(!email_ok("a@x.com\n"));
    char longlocal[80];
    memset(longlocal, 'a', 65);
    snprintf(longlocal + 65, sizeof longlocal - 65, "@x.com");
    test_assert(!email_ok(longlocal));
    longlocal[1] = '@';
    longlocal[2] = '\0';
    test_assert(!email_ok(longlocal));
    /* exactly LEN bytes are read: no NUL needed */
    test_assert(http_parse_email("ab@x.comZZZ", 8, &e) == 0);
    test_assert_streq(e.domain, "x.com");
    test_end();
}

static int ad(const char *body, char *addr_r)
{
    struct http_email e;
    if (http_autodiscover_email(body, strlen(body), &e) < 0)
        return -1;
    sprintf(addr_r, "%s@%s", e.local, e.domain);
    return 0;
}

static void test_autodiscover_body(void)
{
    test_begin("http_autodiscover_email");
    char a[400];
    test_assert(ad("<?xml version=\"1.0\"?><Autodiscover xmlns=\"x\"><Request>"
                   "<EMailAddress>\r\n  u@Example.com \r\n</EMailAddress>"
                   "<AcceptableResponseSchema>y</AcceptableResponseSchema></Request></Autodiscover>",
                   a) == 0);
    test_assert_streq(a, "u@example.com");
    test_assert(ad("<a:Autodiscover xmlns:a=\"x\"><a:Request><a:EMailAddress>v@x.org"
                   "</a:EMailAddress></a:Request></a:Autodiscover>", a) == 0);
    test_assert_streq(a, "v@x.org");
    test_assert(ad("", a) < 0);
    test_assert(ad("hello", a) < 0);
    test_assert(ad("<Autodiscover><Request><EMailAddress>u@x.com", a) < 0);
    test_assert(ad("<Autodiscover><Request><EMailAddress>u@x.com</EMailAddress>", a) < 0);
    test_assert(ad("<Autodiscover><Request><EMailAddress/></Request></Autodiscover>", a) < 0);
    test_assert(ad("<Autodiscover><Request><EMailAddressX>u@x.com</EMailAddressX></Request>"
                   "</Autodiscover>", a) < 0);
    test_assert(ad("<!DOCTYPE x [<!ENTITY e \"u@x.com\">]><Autodiscover><Request><EMailAddress>"
                   "&e;</EMailAddress></Request></Autodiscover>", a) < 0);
    test_assert(ad("<Autodiscover><Request><EMailAddress>u&#64;x.com</EMailAddress></Request>"
                   "</Autodiscover>", a) < 0);
    test_assert(ad("<Autodiscover><Request><EMailAddress>u@x.com<b/></EMailAddress></Request>"
                   "</Autodiscover>", a) < 0);
    test_end();
}

static void test_host_domain(void)
{
    test_begin("http_host_domain");
    char d[HTTP_DOMAIN_MAX + 1];
    test_assert(http_host_domain("autoconfig.Example.com:8080", 27, d) == 0);
    test_assert_streq(d, "example.com");
    test_assert(http_host_domain("autodiscover.example.com.", 25, d) == 0);
    test_assert_streq(d, "example.com");
    test_assert(http_host_domain("mail.example.com", 16, d) == 0);
    test_assert_streq(d, "mail.example.com");
    test_assert(http_host_domain("127.0.0.1:80", 12, d) < 0);
    test_assert(http_host_domain("[::1]:80", 8, d) < 0);
    test_assert(http_host_domain("", 0, d) < 0);
    test_end();
}

static struct http_site test_site(void)
{
    struct http_site s = {.hostname = "mail.example.test", .mta_sts_mode = MTA_STS_ENFORCE,
                          .mta_sts_max_age = 3600};
    s.port[LK_IMAPS] = 993;
    s.port[LK_SUBMISSION] = 587;
    return s;
}

static void test_documents(void)
{
    test_begin("autoconfig documents");
    struct http_site site = test_site();
    struct http_email e;
    const char *addr = "a<b>&'\"@example.test";   /* not valid, but escaped all the same */
    snprintf(e.local, sizeof e.local, "%.*s", (int)(strchr(addr, '@') - addr), addr);
    snprintf(e.domain, sizeof e.domain, "example.test");
    struct buf b;
    buf_init(&b, 64 * 1024);
    test_assert(http_autodiscover_xml(&site, &e, &b) == 0);
    test_assert(strstr(b.data, "<LoginName>a&lt;b&gt;&amp;&apos;&quot;@example.test</LoginName>"));
    test_assert(strstr(b.data, "<Port>993</Port>") && strstr(b.data, "<Port>587</Port>"));
    test_assert(!strstr(b.data, "<Type>POP3</Type>"));   /* no POP3 listener: not offered */
    buf_reset(&b);
    test_assert(http_thunderbird_xml(&site, "example.test", &b) == 0);
    test_assert(strstr(b.data, "<socketType>SSL</socketType>"));
    test_assert(strstr(b.data, "<socketType>STARTTLS</socketType>"));
    test_assert(!strstr(b.data, "type=\"pop3\""));
    buf_reset(&b);
    test_assert(http_mobileconfig(&site, &e, &b) == 0);
    test_assert(strstr(b.data, "<integer>993</integer>"));
    test_assert(strstr(b.data, "<key>OutgoingMailServerUseSSL</key>\n\t\t\t<false/>"));
    buf_reset(&b);
    test_assert(http_mta_sts_txt(&site, &b) == 0);
    test_assert_streq(b.data, "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\n"
                              "max_age: 3600\r\n");
    /* A full buffer is an error, never a truncated document. */
    struct buf small;
    buf_init(&small, 100);
    test_assert(http_thunderbird_xml(&site, "example.test", &small) < 0);
    buf_deinit(&small);
    buf_deinit(&b);
    test_end();
}

static void *hammer(void *arg)
{
    for (int i = 0; i < 10000; i++) {
        metrics_login(LK_IMAPS, ML_OK);
        metrics_observe(MH_ACCEPT, 0.003);
    }
    return arg;
}

static void test_metrics_threads(void)
{
    test_begin("metrics from several threads");
    struct metrics_snapshot before, after;
    metrics_snapshot(&before);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    metrics_observe(MH_DELIVERY, 1000);   /* past the last bound: +Inf bucket */
    metrics_observe(MH_DELIVERY, -1);     /* counted as 0 */
    metrics_login(LK_COUNT, ML_OK);       /* out of range: ignored */
    metrics_message_rejected(LK_SMTP, MR_COUNT);
    metrics_snapshot(&after);
    test_assert(after.logins[LK_IMAPS][ML_OK] - before.logins[LK_IMAPS][ML_OK] == 40000);
    /* 0.003 s falls in the 0.005 bucket (index 2) */
    test_assert(after.hist[MH_ACCEPT].buckets[2] - before.hist[MH_ACCEPT].buckets[2] == 40000);
    test_assert(after.hist[MH_ACCEPT].sum_us - before.hist[MH_ACCEPT].sum_us == 40000ull * 3000);
    test_assert(after.hist[MH_DELIVERY].buckets[METRICS_NBUCKETS] -
                before.hist[MH_DELIVERY].buckets[METRICS_NBUCKETS] == 1);
    test_assert(after.hist[MH_DELIVERY].buckets[0] - before.hist[MH_DELIVERY].buckets[0] == 1);
    struct buf b;
    buf_init(&b, 256 * 1024);
    test_assert(http_metrics_render(&b, 1700000000) == 0);
    test_assert(strstr(b.data, "roost_start_time_seconds 1700000000\n"));
    test_assert(strstr(b.data, "# TYPE roost_accept_latency_seconds histogram\n"));
    test_assert(strstr(b.data, "roost_accept_latency_seconds_bucket{le=\"+Inf\"}"));
    test_assert(strstr(b.data, "roost_logins_total{protocol=\"imaps\",outcome=\"ok\"}"));
    buf_deinit(&b);
    test_end();
}

static void test_http_config(void)
{
    test_begin("[http] config");
    struct config cfg;
    char *errors = NULL;
    config_defaults(&cfg, 1);
    test_assert(cfg.http.nlisten == 1 && cfg.http.listen[0].port == 8080);
    test_assert_streq(cfg.http.listen[0].host, "127.0.0.1");
    test_assert(cfg.http.mta_sts_mode == MTA_STS_TESTING && cfg.http.mta_sts_max_age == 604800);
    config_free(&cfg);
    test_assert(config_load_string("[http]\nlisten = 127.0.0.1:8081 [::1]:8081\ntls = on\n"
                                   "metrics = public\nmta_sts_mode = enforce\n"
                                   "max_connections = 5\ntimeout = 9\n", "t", &cfg, &errors) == 0);
    test_assert(cfg.http.nlisten == 2 && cfg.http.tls == 1 && cfg.http.metrics_public == 1);
    test_assert_streq(cfg.http.listen[1].host, "::1");
    test_assert(cfg.http.max_connections == 5 && cfg.http.timeout == 9);
    test_assert(cfg.http.mta_sts_mode == MTA_STS_ENFORCE);
    config_free(&cfg);
    test_assert(config_load_string("[http]\nlisten =\n", "t", &cfg, &errors) == 0);
    test_assert(cfg.http.nlisten == 0);
    config_free(&cfg);
    test_assert(config_load_string("[listeners]\nsmtp = 127.0.0.1:2525\n[http]\n"
                                   "listen = 127.0.0.1:2525\n", "t", &cfg, &errors) < 0);
    test_assert(errors && strstr(errors, "also a mail listener"));
    free(errors);
    errors = NULL;
    config_free(&cfg);
    test_end();
}

static void test_health_failing(void)
{
    test_begin("healthz reports what fails");
    struct buf b;
    buf_init(&b, 4096);
    /* No queue started in this process and a data directory that is not
     * there: unhealthy, and the body says which parts failed. */
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/nonexistent", test_tmpdir());
    test_assert(http_health_check(missing, &b) == 0);
    test_assert(strstr(b.data, "\"status\":\"fail\""));
    test_assert(strstr(b.data, "\"queue\":\"stopped\""));
    test_assert(strstr(b.data, "\"spool\":\"not writable\""));
    test_assert(strstr(b.data, "\"store\":\"not writable\""));
    buf_deinit(&b);
    test_end();
}

int main(void)
{
    log_set_stderr(0);
    return test_run((test_fn[]){test_parse_email, test_autodiscover_body, test_host_domain,
                                test_documents, test_metrics_threads, test_http_config,
                                test_health_failing, NULL});
}
