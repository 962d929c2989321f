/* http_autoconfig: the documents mail apps fetch to configure themselves,
 * built from the server's host name and its configured listeners:
 *  - Thunderbird (and Evolution, KMail, K-9/Thunderbird for Android):
 *    clientConfig version 1.1 (config-v1.1.xml)
 *  - Outlook: the POX Autodiscover response (responseschema/2006a)
 *  - Apple Mail on macOS and iOS: a .mobileconfig profile with one
 *    com.apple.mail.managed payload (unsigned)
 *  - MTA-STS (RFC 8461): the policy file for sending servers
 * Each function appends to OUT (a struct buf with a maximum) and returns 0,
 * or -1 if OUT is full. Addresses must already be validated
 * (http_parse.h); they are XML-escaped all the same. */
#ifndef ROOST_HTTP_AUTOCONFIG_H
#define ROOST_HTTP_AUTOCONFIG_H

#include "core/config.h"
#include "http/http_parse.h"

struct buf;

/* What the documents advertise: the host name clients connect to and the
 * first configured port of each listener kind (0: not offered). */
struct http_site {
    const char *hostname;
    int port[LK_COUNT];
    enum mta_sts_mode mta_sts_mode;
    long mta_sts_max_age;
};

void http_site_from_config(const struct config *cfg, struct http_site *site_r);

int http_thunderbird_xml(const struct http_site *site, const char *domain, struct buf *out);
int http_autodiscover_xml(const struct http_site *site, const struct http_email *e,
                          struct buf *out);
int http_mobileconfig(const struct http_site *site, const struct http_email *e, struct buf *out);
int http_mta_sts_txt(const struct http_site *site, struct buf *out);

#endif
