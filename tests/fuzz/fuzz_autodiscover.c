/* fuzz_autodiscover: libFuzzer target for src/http/http_parse.c and the
 * documents src/http/http_autoconfig.c builds from what it parses. The
 * input is used three ways, each as an exact-size heap copy so that
 * AddressSanitizer catches any read past the length:
 *   - as an Outlook Autodiscover request body (http_autodiscover_email);
 *   - as an emailaddress= value (http_parse_email);
 *   - as a Host header (http_host_domain).
 * Cross-checks that abort() on failure:
 *   - a parsed address has a 1..64 byte local part of atext and dots and a
 *     lower-case domain of letters, digits, hyphens and dots, and parses
 *     again to the same result when printed as local@domain;
 *   - a body with <!DOCTYPE or <!ENTITY (any case) is never accepted;
 *   - every document built for a parsed address is well formed enough:
 *     it contains neither a raw '<' nor a raw '&' from the address (the
 *     escaped address appears instead), and the builders never fail with
 *     a 64 KiB buffer. */
#include "core/buf.h"
#include "http/http_autoconfig.h"
#include "http/http_parse.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "check failed: %s\n", #x); abort(); } } while (0)

static char *dup_exact(const void *p, size_t n)
{
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    memcpy(q, p, n);
    return q;
}

static int contains_ci(const uint8_t *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp((const char *)p + i, needle, k) == 0)
            return 1;
    return 0;
}

static void check_email(const struct http_email *e)
{
    size_t ll = strlen(e->local), dl = strlen(e->domain);
    CHECK(ll >= 1 && ll <= HTTP_LOCAL_MAX);
    CHECK(dl >= 3 && dl <= HTTP_DOMAIN_MAX);
    for (size_t i = 0; i < ll; i++)
        CHECK(e->local[i] > 32 && e->local[i] < 127 && !strchr("<>()[]\\,;:@\" ", e->local[i]));
    for (size_t i = 0; i < dl; i++)
        CHECK(islower((unsigned char)e->domain[i]) || isdigit((unsigned char)e->domain[i]) ||
              e->domain[i] == '-' || e->domain[i] == '.');
    char again[HTTP_LOCAL_MAX + HTTP_DOMAIN_MAX + 2];
    int n = snprintf(again, sizeof again, "%s@%s", e->local, e->domain);
    struct http_email e2;
    CHECK(http_parse_email(again, (size_t)n, &e2) == 0);
    CHECK(strcmp(e2.local, e->local) == 0 && strcmp(e2.domain, e->domain) == 0);
}

static void check_documents(const struct http_email *e)
{
    struct http_site site = {.hostname = "mail.example.test", .mta_sts_max_age = 86400};
    for (int k = 0; k < LK_COUNT; k++)
        site.port[k] = 1000 + k;
    int (*builders[])(const struct http_site *, const struct http_email *, struct buf *) = {
        http_autodiscover_xml, http_mobileconfig};
    for (size_t i = 0; i < sizeof builders / sizeof *builders; i++) {
        struct buf b;
        buf_init(&b, 64 * 1024);
        CHECK(builders[i](&site, e, &b) == 0);
        /* Every '&' starts an entity; no '<' outside markup comes from the
         * address: the local part's escapes are what we find. */
        for (size_t j = 0; j < b.len; j++)
            if (b.data[j] == '&')
                CHECK(strncmp(b.data + j, "&amp;", 5) == 0 || strncmp(b.data + j, "&lt;", 4) == 0 ||
                      strncmp(b.data + j, "&gt;", 4) == 0 || strncmp(b.data + j, "&quot;", 6) == 0 ||
                      strncmp(b.data + j, "&apos;", 6) == 0);
        buf_deinit(&b);
    }
    struct buf b;
    buf_init(&b, 64 * 1024);
    CHECK(http_thunderbird_xml(&site, e->domain, &b) == 0);
    buf_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_email e;
    char *body = dup_exact(data, size);
    if (http_autodiscover_email(body, size, &e) == 0) {
        CHECK(!contains_ci(data, size, "<!DOCTYPE") && !contains_ci(data, size, "<!ENTITY"));
        check_email(&e);
        check_documents(&e);
    }
    free(body);

    char *addr = dup_exact(data, size);
    if (http_parse_email(addr, size, &e) == 0) {
        CHECK(size <= HTTP_EMAIL_MAX);
        check_email(&e);
        check_documents(&e);
    }
    free(addr);

    char *host = dup_exact(data, size);
    char domain[HTTP_DOMAIN_MAX + 1];
    if (http_host_domain(host, size, domain) == 0) {
        size_t dl = strlen(domain);
        CHECK(dl >= 3 && dl <= HTTP_DOMAIN_MAX && dl <= size);
    }
    free(host);
    return 0;
}
