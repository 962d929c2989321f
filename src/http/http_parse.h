/* http_parse: the parts of an HTTP request that come from the client and
 * choose what the autoconfiguration endpoints answer: an e-mail address
 * (query string emailaddress=, Outlook's Autodiscover <EMailAddress>) and
 * the Host header. Pure functions on bounded byte ranges, no allocation,
 * no libmicrohttpd: tests/fuzz/fuzz_autodiscover.c drives them directly.
 *
 * The Autodiscover body is not given to an XML library: we need one
 * element's text, so a bounded scan finds it. Bodies with a DOCTYPE or an
 * entity declaration are refused outright (no DTDs, so no external or
 * recursive entities), as are character references inside the address. */
#ifndef ROOST_HTTP_PARSE_H
#define ROOST_HTTP_PARSE_H

#include <stddef.h>

#define HTTP_EMAIL_MAX 254         /* RFC 5321 §4.5.3.1.3 path, less the <> */
#define HTTP_LOCAL_MAX 64          /* RFC 5321 §4.5.3.1.1 */
#define HTTP_DOMAIN_MAX 253        /* RFC 1035 §2.3.4 */
#define HTTP_AUTODISCOVER_MAX 16384 /* request bodies are a few hundred bytes */

struct http_email {
    char local[HTTP_LOCAL_MAX + 1];
    char domain[HTTP_DOMAIN_MAX + 1];   /* lower case */
};

/* Parses S (LEN bytes, no NUL needed) as local@domain: a dot-atom local
 * part of RFC 5322 atext characters and a DNS name of letters, digits and
 * hyphens. 0 ok, -1 not an address we answer for. */
int http_parse_email(const char *s, size_t len, struct http_email *e_r);

/* Finds the text of the EMailAddress element (any namespace prefix) of an
 * Outlook Autodiscover request and parses it. 0 ok; -1 malformed body,
 * DOCTYPE/ENTITY present, no or bad address. */
int http_autodiscover_email(const char *body, size_t len, struct http_email *e_r);

/* The domain named by a Host header: port removed, lower case, and a
 * leading "autoconfig." or "autodiscover." label dropped. 0 ok, -1 not a
 * DNS name. */
int http_host_domain(const char *host, size_t len, char out[HTTP_DOMAIN_MAX + 1]);

#endif
