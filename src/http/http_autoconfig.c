/* http_autoconfig: Thunderbird's clientConfig, Outlook's Autodiscover
 * response, Apple's .mobileconfig and the MTA-STS policy (see
 * http_autoconfig.h). Servers are listed implicit TLS first (465, 993,
 * 995), then STARTTLS (587, 143, 110); a kind with no listener is left
 * out. Usernames are the full address, as Roost logs in by address. */
#include "http/http_autoconfig.h"
#include "core/buf.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

void http_site_from_config(const struct config *cfg, struct http_site *site_r)
{
    memset(site_r, 0, sizeof *site_r);
    /* The development instance listens on 127.0.0.1 only (its printed
     * settings say so too); a configured one by its host name. */
    site_r->hostname = cfg->dev ? "127.0.0.1" : cfg->hostname;
    for (int i = cfg->nlisteners - 1; i >= 0; i--)
        site_r->port[cfg->listeners[i].kind] = cfg->listeners[i].port;
    site_r->mta_sts_mode = cfg->http.mta_sts_mode;
    site_r->mta_sts_max_age = cfg->http.mta_sts_max_age;
}

/* Appends S with XML's five special characters escaped. */
static int xml_text(struct buf *out, const char *s)
{
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        }
        if (rep ? buf_append(out, rep, strlen(rep)) < 0 : buf_append(out, s, 1) < 0)
            return -1;
    }
    return 0;
}

struct server_entry {
    enum listener_kind kind;
    const char *tag;     /* incomingServer / outgoingServer */
    const char *type;    /* imap, pop3, smtp */
    int implicit_tls;
};

static const struct server_entry entries[] = {
    {LK_IMAPS, "incomingServer", "imap", 1},
    {LK_IMAP, "incomingServer", "imap", 0},
    {LK_POP3S, "incomingServer", "pop3", 1},
    {LK_POP3, "incomingServer", "pop3", 0},
    {LK_SUBMISSIONS, "outgoingServer", "smtp", 1},
    {LK_SUBMISSION, "outgoingServer", "smtp", 0},
};
#define NENTRIES (sizeof entries / sizeof *entries)

int http_thunderbird_xml(const struct http_site *site, const char *domain, struct buf *out)
{
    int r = buf_appendf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<clientConfig version=\"1.1\">\n  <emailProvider id=\"");
    r = r ? r : xml_text(out, domain);
    r = r ? r : buf_appendf(out, "\">\n    <domain>");
    r = r ? r : xml_text(out, domain);
    r = r ? r : buf_appendf(out, "</domain>\n    <displayName>");
    r = r ? r : xml_text(out, domain);
    r = r ? r : buf_appendf(out, " (Roost)</displayName>\n    <displayShortName>");
    r = r ? r : xml_text(out, domain);
    r = r ? r : buf_appendf(out, "</displayShortName>\n");
    for (size_t i = 0; r == 0 && i < NENTRIES; i++) {
        const struct server_entry *e = &entries[i];
        if (!site->port[e->kind])
            continue;
        r = buf_appendf(out, "    <%s type=\"%s\">\n      <hostname>", e->tag, e->type);
        r = r ? r : xml_text(out, site->hostname);
        r = r ? r : buf_appendf(out, "</hostname>\n      <port>%d</port>\n"
                                     "      <socketType>%s</socketType>\n"
                                     "      <authentication>password-cleartext</authentication>\n"
                                     "      <username>%%EMAILADDRESS%%</username>\n    </%s>\n",
                                site->port[e->kind], e->implicit_tls ? "SSL" : "STARTTLS", e->tag);
    }
    r = r ? r : buf_appendf(out, "  </emailProvider>\n</clientConfig>\n");
    return r;
}

static const char *autodiscover_type(const struct server_entry *e)
{
    return strcmp(e->type, "imap") == 0 ? "IMAP" : strcmp(e->type, "pop3") == 0 ? "POP3" : "SMTP";
}

int http_autodiscover_xml(const struct http_site *site, const struct http_email *em,
                          struct buf *out)
{
    int r = buf_appendf(out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n"
        "  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n"
        "    <Account>\n"
        "      <AccountType>email</AccountType>\n"
        "      <Action>settings</Action>\n");
    for (size_t i = 0; r == 0 && i < NENTRIES; i++) {
        const struct server_entry *e = &entries[i];
        if (!site->port[e->kind])
            continue;
        /* Encryption overrides SSL for the clients that know it: SSL is
         * implicit TLS, TLS is STARTTLS. */
        r = buf_appendf(out, "      <Protocol>\n        <Type>%s</Type>\n        <Server>",
                        autodiscover_type(e));
        r = r ? r : xml_text(out, site->hostname);
        r = r ? r : buf_appendf(out, "</Server>\n        <Port>%d</Port>\n        <LoginName>",
                                site->port[e->kind]);
        r = r ? r : xml_text(out, em->local);
        r = r ? r : buf_append(out, "@", 1);
        r = r ? r : xml_text(out, em->domain);
        r = r ? r : buf_appendf(out, "</LoginName>\n        <DomainRequired>off</DomainRequired>\n"
                                     "        <SPA>off</SPA>\n        <SSL>on</SSL>\n"
                                     "        <Encryption>%s</Encryption>\n"
                                     "        <AuthRequired>on</AuthRequired>\n%s"
                                     "      </Protocol>\n",
                                e->implicit_tls ? "SSL" : "TLS",
                                e->kind == LK_SUBMISSIONS || e->kind == LK_SUBMISSION
                                    ? "        <UsePOPAuth>off</UsePOPAuth>\n"
                                      "        <SMTPLast>off</SMTPLast>\n" : "");
    }
    r = r ? r : buf_appendf(out, "    </Account>\n  </Response>\n</Autodiscover>\n");
    return r;
}

/* A stable UUID for NAME (so installing a new profile for the same
 * address replaces the old one): SHA-256 of it, shaped as a version 4
 * UUID. */
static void stable_uuid(const char *what, const struct http_email *e, char out[37])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    char name[32 + HTTP_LOCAL_MAX + HTTP_DOMAIN_MAX];
    int n = snprintf(name, sizeof name, "roost-mobileconfig:%s:%s@%s", what, e->local, e->domain);
    if (n < 0 || (size_t)n >= sizeof name || !EVP_Digest(name, (size_t)n, md, NULL, EVP_sha256(), NULL))
        memset(md, 0, sizeof md);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x40);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10],
             md[11], md[12], md[13], md[14], md[15]);
}

static int plist_string(struct buf *out, const char *key, const char *v)
{
    int r = buf_appendf(out, "\t\t\t<key>%s</key>\n\t\t\t<string>", key);
    r = r ? r : xml_text(out, v);
    return r ? r : buf_appendf(out, "</string>\n");
}

/* E's address, XML-escaped. */
static int xml_addr(struct buf *out, const struct http_email *e)
{
    int r = xml_text(out, e->local);
    r = r ? r : buf_append(out, "@", 1);
    return r ? r : xml_text(out, e->domain);
}

static int plist_addr(struct buf *out, const char *key, const struct http_email *e)
{
    int r = buf_appendf(out, "\t\t\t<key>%s</key>\n\t\t\t<string>", key);
    r = r ? r : xml_addr(out, e);
    return r ? r : buf_appendf(out, "</string>\n");
}

/* The five keys of one mail server; PREFIX is "Incoming" or "Outgoing". */
static int plist_server(struct buf *out, const char *prefix, const char *host, int port, int ssl,
                        const struct http_email *e)
{
    char key[64];
    snprintf(key, sizeof key, "%sMailServerAuthentication", prefix);
    int r = plist_string(out, key, "EmailAuthPassword");
    snprintf(key, sizeof key, "%sMailServerHostName", prefix);
    r = r ? r : plist_string(out, key, host);
    r = r ? r : buf_appendf(out, "\t\t\t<key>%sMailServerPortNumber</key>\n"
                                 "\t\t\t<integer>%d</integer>\n"
                                 "\t\t\t<key>%sMailServerUseSSL</key>\n\t\t\t<%s/>\n",
                            prefix, port, prefix, ssl ? "true" : "false");
    snprintf(key, sizeof key, "%sMailServerUsername", prefix);
    return r ? r : plist_addr(out, key, e);
}

int http_mobileconfig(const struct http_site *site, const struct http_email *e, struct buf *out)
{
    /* IMAP over TLS if offered, else IMAP with STARTTLS; 465 else 587. */
    int in_port = site->port[LK_IMAPS] ? site->port[LK_IMAPS] : site->port[LK_IMAP];
    int out_port = site->port[LK_SUBMISSIONS] ? site->port[LK_SUBMISSIONS]
                                               : site->port[LK_SUBMISSION];
    if (!in_port || !out_port)
        return -1;
    char uuid_mail[37], uuid_profile[37];
    stable_uuid("mail", e, uuid_mail);
    stable_uuid("profile", e, uuid_profile);
    int r = buf_appendf(out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
        "<plist version=\"1.0\">\n<dict>\n\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n");
    r = r ? r : plist_addr(out, "EmailAccountDescription", e);
    r = r ? r : plist_addr(out, "EmailAccountName", e);
    r = r ? r : plist_string(out, "EmailAccountType", "EmailTypeIMAP");
    r = r ? r : plist_addr(out, "EmailAddress", e);
    r = r ? r : plist_server(out, "Incoming", site->hostname, in_port, site->port[LK_IMAPS] != 0,
                             e);
    r = r ? r : plist_server(out, "Outgoing", site->hostname, out_port,
                             site->port[LK_SUBMISSIONS] != 0, e);
    r = r ? r : buf_appendf(out, "\t\t\t<key>OutgoingPasswordSameAsIncomingPassword</key>\n"
                                 "\t\t\t<true/>\n");
    r = r ? r : plist_string(out, "PayloadDescription", "Mail account settings from Roost");
    r = r ? r : plist_addr(out, "PayloadDisplayName", e);
    r = r ? r : buf_appendf(out, "\t\t\t<key>PayloadIdentifier</key>\n"
                                 "\t\t\t<string>roost.mail.%s</string>\n", uuid_mail);
    r = r ? r : plist_string(out, "PayloadType", "com.apple.mail.managed");
    r = r ? r : plist_string(out, "PayloadUUID", uuid_mail);
    r = r ? r : buf_appendf(out, "\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n"
                                 "\t\t\t<key>PreventAppSheet</key>\n\t\t\t<false/>\n"
                                 "\t\t\t<key>PreventMove</key>\n\t\t\t<false/>\n"
                                 "\t\t\t<key>SMIMEEnabled</key>\n\t\t\t<false/>\n"
                                 "\t\t</dict>\n\t</array>\n"
                                 "\t<key>PayloadDescription</key>\n"
                                 "\t<string>Sets up the mail account ");
    r = r ? r : xml_addr(out, e);
    r = r ? r : buf_appendf(out, "</string>\n\t<key>PayloadDisplayName</key>\n\t<string>");
    r = r ? r : xml_text(out, e->domain);
    r = r ? r : buf_appendf(out, " mail</string>\n\t<key>PayloadIdentifier</key>\n"
                                 "\t<string>roost.profile.%s</string>\n"
                                 "\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n"
                                 "\t<key>PayloadType</key>\n\t<string>Configuration</string>\n"
                                 "\t<key>PayloadUUID</key>\n\t<string>%s</string>\n"
                                 "\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n"
                                 "</dict>\n</plist>\n", uuid_profile, uuid_profile);
    return r;
}

int http_mta_sts_txt(const struct http_site *site, struct buf *out)
{
    static const char *const modes[] = {"testing", "enforce", "none"};
    /* RFC 8461 §3.2: key/value lines ending in CRLF. */
    return buf_appendf(out, "version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: %ld\r\n",
                       modes[site->mta_sts_mode], site->hostname, site->mta_sts_max_age);
}
