/* check_fix: greetings, refusals and their fixes for `roost check` (see
 * check_fix.h). The sentences name Roost's own commands, since Roost is
 * what this tool is shipped with, and the ports clients use. */
#include "cli/check_fix.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum check_proto check_proto_of_greeting(const char *g)
{
    if (!strncmp(g, "220", 3) || !strncmp(g, "421", 3) || !strncmp(g, "554", 3))
        return P_SMTP;
    if (!strncasecmp(g, "* OK", 4) || !strncasecmp(g, "* PREAUTH", 9) || !strncasecmp(g, "* BYE", 5))
        return P_IMAP;
    if (!strncmp(g, "+OK", 3) || !strncmp(g, "-ERR", 4))
        return P_POP3;
    return P_UNKNOWN;
}

int check_greeting_refuses(const char *g)
{
    return !strncmp(g, "421", 3) || !strncmp(g, "554", 3) || !strncasecmp(g, "* BYE", 5) ||
           !strncmp(g, "-ERR", 4);
}

enum check_proto check_proto_for_port(int port)
{
    switch (port) {
    case 25: case 465: case 587: case 2525: case 2465: case 2587:
        return P_SMTP;
    case 143: case 993: case 2143: case 2993:
        return P_IMAP;
    case 110: case 995: case 2110: case 2995:
        return P_POP3;
    default:
        return P_UNKNOWN;
    }
}

const char *check_proto_name(enum check_proto p)
{
    return p == P_SMTP ? "SMTP" : p == P_IMAP ? "IMAP" : p == P_POP3 ? "POP3" : "an unknown protocol";
}

enum check_fix check_fix_for_smtp(const char *r)
{
    if (strstr(r, "5.7.9"))
        return FIX_APP_PASSWORD;
    if (strstr(r, "5.4.5"))
        return FIX_DAILY_LIMIT;
    if (!strncmp(r, "535", 3) || strstr(r, "5.7.8"))
        return FIX_WRONG_PASSWORD;
    if (!strncmp(r, "530", 3))
        return strcasestr(r, "STARTTLS") ? FIX_STARTTLS_FIRST : FIX_AUTH_REQUIRED;
    if (!strncmp(r, "454", 3) && strcasestr(r, "login"))
        return FIX_THROTTLED;
    if (!strncmp(r, "553", 3) && strstr(r, "5.7.1"))
        return FIX_SENDER_NOT_OWNED;
    if (!strncmp(r, "550", 3) && strstr(r, "5.7.1"))
        return FIX_RELAY_DENIED;
    if (!strncmp(r, "552", 3))
        return FIX_TOO_BIG;
    return FIX_OTHER_REPLY;
}

/* A reply phrase (matched without case) and the fix it calls for; the
 * first matching entry of a table wins. */
struct fix_phrase {
    const char *needle;
    enum check_fix fix;
};

static const struct fix_phrase imap_phrases[] = {
    {"Application-specific password", FIX_APP_PASSWORD},
    {"IMAP access is disabled", FIX_IMAP_DISABLED},
    {"IMAP is disabled", FIX_IMAP_DISABLED},
    {"PRIVACYREQUIRED", FIX_STARTTLS_FIRST},
    {"STARTTLS", FIX_STARTTLS_FIRST},
    {"LOGINDISABLED", FIX_STARTTLS_FIRST},
    {"Too many", FIX_THROTTLED},
    {"AUTHENTICATIONFAILED", FIX_WRONG_PASSWORD},
    {"Invalid credentials", FIX_WRONG_PASSWORD},
};

static const struct fix_phrase pop3_phrases[] = {
    {"Application-specific password", FIX_APP_PASSWORD},
    {"POP access is disabled", FIX_POP_DISABLED},
    {"POP is disabled", FIX_POP_DISABLED},
    {"STLS", FIX_STARTTLS_FIRST},
    {"STARTTLS", FIX_STARTTLS_FIRST},
    {"[IN-USE]", FIX_POP_IN_USE},
    {"Too many", FIX_THROTTLED},
    {"[AUTH]", FIX_WRONG_PASSWORD},
    {"not accepted", FIX_WRONG_PASSWORD},
};

static enum check_fix fix_by_phrase(const struct fix_phrase *t, size_t n, const char *r)
{
    for (size_t i = 0; i < n; i++)
        if (strcasestr(r, t[i].needle))
            return t[i].fix;
    return FIX_OTHER_REPLY;
}

enum check_fix check_fix_for_imap(const char *r)
{
    return fix_by_phrase(imap_phrases, sizeof imap_phrases / sizeof *imap_phrases, r);
}

enum check_fix check_fix_for_pop3(const char *r)
{
    return fix_by_phrase(pop3_phrases, sizeof pop3_phrases / sizeof *pop3_phrases, r);
}

void check_fix_text(enum check_fix fix, enum check_proto proto, const char *user, char *out,
                    size_t outsz)
{
    const char *u = user ? user : "ADDRESS";
    int tls_port = proto == P_IMAP ? 993 : proto == P_POP3 ? 995 : 465;
    int stls_port = proto == P_IMAP ? 143 : proto == P_POP3 ? 110 : 587;
    const char *ports = proto == P_IMAP ? "993 (SSL/TLS) or 143 (STARTTLS) for IMAP"
                      : proto == P_POP3 ? "995 (SSL/TLS) or 110 (STARTTLS) for POP3"
                                        : "465 (SSL/TLS) or 587 (STARTTLS) to send, 993/143"
                                          " for IMAP, 995/110 for POP3";
    switch (fix) {
    case FIX_RESOLVE:
        snprintf(out, outsz, "check the spelling of the server name and that it has an A or"
                             " AAAA record in DNS.");
        break;
    case FIX_REFUSED:
        snprintf(out, outsz, "wrong port or server down: use port %s, and check that the"
                             " server runs (roost serve) and listens on this address.", ports);
        break;
    case FIX_TIMEOUT:
        snprintf(out, outsz, "a firewall drops the connection or the host is down: open the"
                             " port in the firewall (and at the hosting provider), or check the"
                             " address.");
        break;
    case FIX_UNREACHABLE:
        snprintf(out, outsz, "the network cannot reach this host: check the address and your"
                             " connection.");
        break;
    case FIX_TLS_BROKEN:
        snprintf(out, outsz, "the TLS set-up of the server is broken: check its certificate"
                             " and key ([tls] cert and key) and its log.");
        break;
    case FIX_NO_GREETING:
        snprintf(out, outsz, "this port does not speak mail: use port %s.", ports);
        break;
    case FIX_USE_STARTTLS:
        snprintf(out, outsz, "this port uses STARTTLS: set your app to STARTTLS / port %d"
                             " (or to SSL/TLS on port %d).", stls_port, tls_port);
        break;
    case FIX_USE_IMPLICIT:
        snprintf(out, outsz, "this port uses SSL/TLS from the first byte: set your app to"
                             " SSL/TLS / port %d (or to STARTTLS on port %d).", tls_port, stls_port);
        break;
    case FIX_WRONG_PROTOCOL:
        snprintf(out, outsz, "wrong port for %s: use port %s.", check_proto_name(proto), ports);
        break;
    case FIX_REFUSED_GREETING:
        snprintf(out, outsz, "the server turned you away (too many connections, a block list"
                             " or shutdown): wait and try again, or read the server's log.");
        break;
    case FIX_NO_STARTTLS:
        snprintf(out, outsz, "passwords would cross the network unencrypted: use SSL/TLS on"
                             " port %d, or give the server a certificate.", tls_port);
        break;
    case FIX_NO_AUTH:
        snprintf(out, outsz, "this port takes mail from other servers only (25): to send"
                             " with a login use port 465 (SSL/TLS) or 587 (STARTTLS).");
        break;
    case FIX_CERT_EXPIRED:
        snprintf(out, outsz, "renew the certificate (e.g. certbot renew), then reload the"
                             " server (SIGHUP).");
        break;
    case FIX_CERT_UNTRUSTED:
        snprintf(out, outsz, "install a certificate from a public CA (e.g. Let's Encrypt) and"
                             " set [tls] cert and key; for a self-signed test server give"
                             " --ca-file with its certificate.");
        break;
    case FIX_CERT_NAME:
        snprintf(out, outsz, "check the name: set your app's server to a name the certificate"
                             " carries, or get a certificate for this name.");
        break;
    case FIX_PROTOCOL:
        snprintf(out, outsz, "the server broke the protocol or closed the connection: read the"
                             " server's log, or check that this is the right port (%s).", ports);
        break;
    case FIX_STARTTLS_FIRST:
        snprintf(out, outsz, "this server requires STARTTLS before login: set your app's"
                             " security to STARTTLS (port %d) or SSL/TLS (port %d), not"
                             " \"none\".", stls_port, tls_port);
        break;
    case FIX_WRONG_PASSWORD:
        snprintf(out, outsz, "wrong password (or username): the username is the full address;"
                             " an administrator resets the password with roost account passwd %s.",
                 u);
        break;
    case FIX_APP_PASSWORD:
        snprintf(out, outsz, "this account has two-factor authentication: create an app"
                             " password with roost app-password create %s NAME and use it"
                             " instead of the account password.", u);
        break;
    case FIX_DAILY_LIMIT:
        snprintf(out, outsz, "the daily sending limit is reached: wait until messages sent in"
                             " the last 24 hours drop out, or raise it with roost account set %s"
                             " --daily-limit N (or --plan business).", u);
        break;
    case FIX_IMAP_DISABLED:
        snprintf(out, outsz, "IMAP is turned off for this account: turn it on with roost"
                             " account set %s --imap on.", u);
        break;
    case FIX_POP_DISABLED:
        snprintf(out, outsz, "POP is turned off for this account: turn it on with roost"
                             " account set %s --pop on.", u);
        break;
    case FIX_THROTTLED:
        snprintf(out, outsz, "too many failed logins: wait a few minutes, then log in with the"
                             " right password (check every device that uses this account).");
        break;
    case FIX_AUTH_REQUIRED:
        snprintf(out, outsz, "this port needs a login before sending: give your app the"
                             " account's address and password (roost check: --user).");
        break;
    case FIX_SENDER_NOT_OWNED:
        snprintf(out, outsz, "send from the account's own address or one of its aliases (roost"
                             " alias add ALIAS %s).", u);
        break;
    case FIX_RELAY_DENIED:
        snprintf(out, outsz, "this port does not relay: send through port 465 or 587 with a"
                             " login.");
        break;
    case FIX_TOO_BIG:
        snprintf(out, outsz, "the message is larger than the server takes: send smaller"
                             " attachments or a link.");
        break;
    case FIX_POP_IN_USE:
        snprintf(out, outsz, "another POP3 client is downloading this mailbox: close it or"
                             " wait until it is done.");
        break;
    case FIX_OTHER_REPLY:
    case FIX_COUNT:
        snprintf(out, outsz, "read the server's reply above and its log (roost logs it with"
                             " the same code).");
        break;
    }
}
