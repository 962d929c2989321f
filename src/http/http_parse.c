/* http_parse: e-mail address, Autodiscover body and Host header parsing for
 * the autoconfiguration endpoints (see http_parse.h). Every loop is bounded
 * by the input length; nothing reads past LEN. */
#include "http/http_parse.h"

#include <ctype.h>
#include <strings.h>
#include <string.h>

static int is_atext(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* A DNS name: labels of 1..63 letters, digits, hyphens, not starting or
 * ending with a hyphen; at least two labels, the last not all digits.
 * Copies it lower-cased. */
static int parse_domain(const char *s, size_t len, char out[HTTP_DOMAIN_MAX + 1])
{
    if (len == 0 || len > HTTP_DOMAIN_MAX)
        return -1;
    size_t label = 0;
    int labels = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return -1;
            label = 0;
            labels++;
        } else if (isalnum(c) || c == '-') {
            if (label == 0 && c == '-')
                return -1;
            if (++label > 63)
                return -1;
        } else {
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    if (label == 0 || s[len - 1] == '-' || labels < 2)
        return -1;
    /* An all-digit last label is an IPv4 address, not a domain. */
    size_t k = len;
    while (k > 0 && s[k - 1] != '.' && isdigit((unsigned char)s[k - 1]))
        k--;
    if (k > 0 && s[k - 1] == '.')
        return -1;
    out[len] = '\0';
    return 0;
}

int http_parse_email(const char *s, size_t len, struct http_email *e_r)
{
    if (len == 0 || len > HTTP_EMAIL_MAX)
        return -1;
    const char *at = memchr(s, '@', len);
    if (!at)
        return -1;
    size_t llen = (size_t)(at - s);
    if (llen == 0 || llen > HTTP_LOCAL_MAX)
        return -1;
    for (size_t i = 0; i < llen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (i == 0 || i == llen - 1 || s[i - 1] == '.')
                return -1;
        } else if (!is_atext(c)) {
            return -1;
        }
    }
    if (parse_domain(at + 1, len - llen - 1, e_r->domain) < 0)
        return -1;
    memcpy(e_r->local, s, llen);
    e_r->local[llen] = '\0';
    return 0;
}

/* Case-sensitive search of NEEDLE in [P, END). */
static const char *find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || (size_t)(end - p) < n)
        return NULL;
    return memmem(p, (size_t)(end - p), needle, n);
}

static int has_ci(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(p + i, needle, n) == 0)
            return 1;
    return 0;
}

/* At P (just after '<' or "</"): an optional "prefix:" then NAME, then
 * '>' or whitespace (or '/' for an empty element). Returns the position
 * after the name, or NULL. */
static const char *match_name(const char *p, const char *end, const char *name)
{
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '_' || *q == '-' || *q == '.'))
        q++;
    if (q < end && *q == ':')
        p = q + 1;
    size_t n = strlen(name);
    if ((size_t)(end - p) < n + 1 || memcmp(p, name, n) != 0)
        return NULL;
    p += n;
    if (*p == '>' || *p == '/' || isspace((unsigned char)*p))
        return p;
    return NULL;
}

/* Finds the next start tag NAME at or after P; returns the position after
 * its '>' (or NULL). A self-closing tag counts as not found. */
static const char *find_start(const char *p, const char *end, const char *name)
{
    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        p++;
        const char *q = match_name(p, end, name);
        if (!q)
            continue;
        const char *gt = memchr(q, '>', (size_t)(end - q));
        if (!gt || gt[-1] == '/')
            return NULL;
        return gt + 1;
    }
    return NULL;
}

int http_autodiscover_email(const char *body, size_t len, struct http_email *e_r)
{
    if (!body || len == 0 || len > HTTP_AUTODISCOVER_MAX)
        return -1;
    if (memchr(body, '\0', len))
        return -1;
    if (has_ci(body, len, "<!DOCTYPE") || has_ci(body, len, "<!ENTITY"))
        return -1;
    const char *end = body + len;
    const char *root = find_start(body, end, "Autodiscover");
    if (!root)
        return -1;
    const char *req = find_start(root, end, "Request");
    if (!req)
        return -1;
    const char *text = find_start(req, end, "EMailAddress");
    if (!text)
        return -1;
    const char *close = find(text, end, "</");
    if (!close || !match_name(close + 2, end, "EMailAddress"))
        return -1;
    /* The whole document must be closed too: Request and Autodiscover. */
    const char *after = close + 2;
    if (!find(after, end, "Request>") || !find(after, end, "Autodiscover>"))
        return -1;
    while (text < close && isspace((unsigned char)*text))
        text++;
    while (close > text && isspace((unsigned char)close[-1]))
        close--;
    if (memchr(text, '<', (size_t)(close - text)) || memchr(text, '&', (size_t)(close - text)))
        return -1;
    return http_parse_email(text, (size_t)(close - text), e_r);
}

int http_host_domain(const char *host, size_t len, char out[HTTP_DOMAIN_MAX + 1])
{
    if (!host)
        return -1;
    const char *colon = memchr(host, ':', len);
    if (colon)
        len = (size_t)(colon - host);
    static const char *const prefixes[] = {"autoconfig.", "autodiscover.", "mta-sts."};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t n = strlen(prefixes[i]);
        if (len > n && strncasecmp(host, prefixes[i], n) == 0) {
            host += n;
            len -= n;
            break;
        }
    }
    if (len && host[len - 1] == '.')
        len--;
    return parse_domain(host, len, out);
}
