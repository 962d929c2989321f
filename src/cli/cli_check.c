/* cli_check: `roost check HOST[:PORT]`, the "why can't I send or receive"
 * doctor. It resolves the name, connects, finds out what the port speaks
 * (implicit TLS or plain, then SMTP, IMAP or POP3 from the greeting),
 * reports the TLS version, cipher and certificate (chain, expiry, name),
 * the capabilities and login mechanisms, and with --user a login test;
 * --send-test also sends a short test message (which is how a daily limit
 * shows). Each problem found is printed with one sentence on how to fix
 * it. Exit code 0 when all is fine, 1 when a problem was found, 2 usage.
 *
 * Detection: on ports where TLS is expected from the first byte (465, 993,
 * 995 or --tls implicit) the TLS handshake comes first, and when it fails a
 * new plain connection looks for a greeting. Elsewhere it waits for a plain
 * greeting; a port that stays silent for GREETING_WAIT_MS gets a TLS
 * handshake on the same connection. The expectation (--tls, --protocol,
 * else the standard port numbers) is then compared with what was found. */
#include "cli/cli.h"
#include "cli/check_fix.h"
#include "cli/smtpc.h"
#include "core/config.h"
#include "core/xalloc.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define GREETING_WAIT_MS 3000
#define IMAP_MAX_LINES 200      /* untagged lines accepted per IMAP command */

enum mode { M_UNKNOWN, M_PLAIN, M_IMPLICIT };

struct check_opts {
    char host[256];
    int port;
    enum mode want_tls;          /* M_UNKNOWN: no expectation */
    int tls_none;                /* --tls none: never STARTTLS (as the app) */
    enum check_proto want_proto;
    const char *user, *password_file, *ca_file, *to, *from;
    int send_test, verbose, timeout;
};

struct check {
    struct check_opts o;
    struct netc c;
    enum check_proto proto;
    enum mode mode;
    char *password;
    int problems;
    int tls_reported;
};

static const char check_usage[] =
    "usage: roost check HOST[:PORT] [--tls implicit|starttls|none]\n"
    "                   [--protocol smtp|imap|pop3] [--user ADDRESS [--password-file FILE]]\n"
    "                   [--send-test [--from ADDRESS] [--to ADDRESS]] [--ca-file PEM]\n"
    "                   [--timeout SECONDS] [-v]\n"
    "PORT defaults to 465. The password is the first line of --password-file, else\n"
    "$ROOST_PASSWORD. Exit code 0: no problem found; 1: a problem (with its fix).\n";

static void line(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %-13s ", key);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

static void problem(struct check *k, enum check_fix fix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct check *k, enum check_fix fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("PROBLEM: ");
    vprintf(fmt, ap);
    va_end(ap);
    char text[512];
    check_fix_text(fix, k->proto, k->o.user, text, sizeof text);
    printf("\n  fix: %s\n", text);
    k->problems++;
}

static int parse_opts(int argc, char **argv, struct check_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout = 15;
    int have_host = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strcmp(a, "--send-test") == 0) {
            o->send_test = 1;
            continue;
        }
        if (a[0] != '-') {
            if (have_host++)
                goto bad;
            o->port = 465;
            if (config_parse_hostport(a, o->host, sizeof o->host, &o->port) != 0) {
                if (strchr(a, ':') || !a[0] || strlen(a) >= sizeof o->host)
                    goto bad;
                snprintf(o->host, sizeof o->host, "%s", a);
            }
            continue;
        }
        if (!v)
            goto bad;
        i++;
        if (strcmp(a, "--tls") == 0) {
            if (strcmp(v, "implicit") == 0 || strcmp(v, "ssl") == 0)
                o->want_tls = M_IMPLICIT;
            else if (strcmp(v, "starttls") == 0)
                o->want_tls = M_PLAIN;
            else if (strcmp(v, "none") == 0)
                o->want_tls = M_PLAIN, o->tls_none = 1;
            else
                goto bad;
        } else if (strcmp(a, "--protocol") == 0) {
            o->want_proto = strcmp(v, "smtp") == 0 ? P_SMTP : strcmp(v, "imap") == 0 ? P_IMAP
                          : strcmp(v, "pop3") == 0 ? P_POP3 : P_UNKNOWN;
            if (o->want_proto == P_UNKNOWN)
                goto bad;
        } else if (strcmp(a, "--user") == 0) {
            o->user = v;
        } else if (strcmp(a, "--password-file") == 0) {
            o->password_file = v;
        } else if (strcmp(a, "--ca-file") == 0) {
            o->ca_file = v;
        } else if (strcmp(a, "--to") == 0) {
            o->to = v;
        } else if (strcmp(a, "--from") == 0) {
            o->from = v;
        } else if (strcmp(a, "--timeout") == 0) {
            o->timeout = atoi(v);
            if (o->timeout < 1 || o->timeout > 600)
                goto bad;
        } else {
            goto bad;
        }
    }
    if (!have_host)
        goto bad;
    if (o->want_tls == M_UNKNOWN && (o->port == 465 || o->port == 993 || o->port == 995))
        o->want_tls = M_IMPLICIT;
    if (o->want_tls == M_UNKNOWN && (o->port == 25 || o->port == 587 || o->port == 143 ||
                                     o->port == 110))
        o->want_tls = M_PLAIN;
    if (o->want_proto == P_UNKNOWN)
        o->want_proto = check_proto_for_port(o->port);
    if (o->send_test && !o->user && !o->from) {
        fprintf(stderr, "roost check: --send-test needs --user or --from\n");
        return 2;
    }
    return 0;
bad:
    fprintf(stderr, "%s", check_usage);
    return 2;
}

/* ------------------------------------------------------------ connection */

static int do_connect(struct check *k)
{
    netc_init(&k->c, k->o.host);
    k->c.verbose = k->o.verbose;
    k->c.timeout_ms = k->o.timeout * 1000;
    k->c.verify = 0;      /* reported, not enforced */
    k->c.ca_file = k->o.ca_file;
    enum netc_err e = netc_connect(&k->c, k->o.port);
    if (e == NETC_OK)
        return 0;
    switch (e) {
    case NETC_ERR_RESOLVE:
        problem(k, FIX_RESOLVE, "%s", k->c.err);
        break;
    case NETC_ERR_REFUSED:
        problem(k, FIX_REFUSED, "nothing is listening on %s port %d (connection refused)",
                k->o.host, k->o.port);
        break;
    case NETC_ERR_TIMEOUT:
        problem(k, FIX_TIMEOUT, "%s", k->c.err);
        break;
    default:
        problem(k, FIX_UNREACHABLE, "%s", k->c.err);
    }
    return -1;
}

static void report_tls(struct check *k)
{
    if (k->tls_reported || !k->c.ssl)
        return;
    k->tls_reported = 1;
    struct netc_cert ci;
    if (netc_cert_info(&k->c, &ci) < 0) {
        line("tls", "%s", "no certificate");
        return;
    }
    line("tls", "%s %s", ci.version, ci.cipher);
    line("certificate", "%s", ci.subject);
    line("issuer", "%s", ci.issuer);
    line("expires", "%s (%ld days left)", ci.not_after, ci.days_left);
    line("chain", "%s%s", ci.chain_ok ? "trusted" : "NOT trusted: ", ci.chain_ok ? "" : ci.chain_error);
    line("name", "%s %s", k->o.host, ci.name_ok ? "matches the certificate" : "is NOT in the certificate");
    if (ci.days_left < 0)
        problem(k, FIX_CERT_EXPIRED, "the certificate expired on %s", ci.not_after);
    else if (ci.days_left < 14)
        printf("  warning: the certificate expires in %ld days: renew it soon\n", ci.days_left);
    if (!ci.chain_ok)
        problem(k, FIX_CERT_UNTRUSTED, "the certificate is not trusted: %s", ci.chain_error);
    if (!ci.name_ok)
        problem(k, FIX_CERT_NAME, "the certificate is for another name (%s), not %s",
                ci.subject, k->o.host);
}

/* Reads the first line a plain server sends. */
static int read_greeting(struct check *k, char *greet)
{
    enum netc_err e = netc_read_line(&k->c, greet, NULL);
    if (e != NETC_OK) {
        problem(k, FIX_NO_GREETING, "no greeting from %s port %d: %s", k->o.host, k->o.port,
                k->c.err);
        return -1;
    }
    return 0;
}

/* Connects and finds out whether the port speaks TLS from the first byte
 * or plain text; GREET gets the greeting line. */
static int detect(struct check *k, char *greet)
{
    if (do_connect(k) < 0)
        return -1;
    line("connected", "%s port %d (%s)", k->o.host, k->o.port, k->c.peer);
    if (k->o.want_tls == M_IMPLICIT) {
        if (netc_start_tls(&k->c) == NETC_OK) {
            k->mode = M_IMPLICIT;
            return read_greeting(k, greet);
        }
        char tls_err[sizeof k->c.err];
        snprintf(tls_err, sizeof tls_err, "%s", k->c.err);
        netc_close(&k->c);
        if (do_connect(k) < 0)
            return -1;
        if (netc_wait_readable(&k->c, GREETING_WAIT_MS) &&
            netc_read_line(&k->c, greet, NULL) == NETC_OK) {
            k->mode = M_PLAIN;
            return 0;
        }
        problem(k, FIX_TLS_BROKEN, "%s", tls_err);
        return -1;
    }
    if (netc_wait_readable(&k->c, GREETING_WAIT_MS)) {
        k->mode = M_PLAIN;
        return read_greeting(k, greet);
    }
    if (netc_start_tls(&k->c) == NETC_OK) {
        k->mode = M_IMPLICIT;
        return read_greeting(k, greet);
    }
    problem(k, FIX_NO_GREETING, "%s port %d sent no greeting within %d s and no TLS handshake"
            " either", k->o.host, k->o.port, GREETING_WAIT_MS / 1000);
    return -1;
}

static int starttls_now(struct check *k)
{
    if (netc_pending(&k->c) > 0) {
        problem(k, FIX_TLS_BROKEN, "the server sent data right before the TLS handshake");
        return -1;
    }
    if (netc_start_tls(&k->c) != NETC_OK) {
        problem(k, FIX_TLS_BROKEN, "%s", k->c.err);
        return -1;
    }
    line("starttls", "%s", "ok");
    report_tls(k);
    return 0;
}

/* ------------------------------------------------------------ SMTP */

static void smtp_login_result(struct check *k, const struct smtpc_reply *r)
{
    if (r->code == 235) {
        line("login", "ok (%s)", r->last);
        return;
    }
    enum check_fix f = check_fix_for_smtp(r->last);
    problem(k, f, "login refused: %s", r->last);
}

static void smtp_send_test(struct check *k, struct smtpc_reply *r)
{
    const char *from = k->o.from ? k->o.from : k->o.user;
    const char *to = k->o.to ? k->o.to : from;
    char *cmd = xasprintf("MAIL FROM:<%s>", from);
    enum netc_err e = smtpc_cmd(&k->c, cmd, r);
    free(cmd);
    if (e == NETC_OK && r->code == 250) {
        cmd = xasprintf("RCPT TO:<%s>", to);
        e = smtpc_cmd(&k->c, cmd, r);
        free(cmd);
    }
    if (e == NETC_OK && (r->code == 250 || r->code == 251))
        e = smtpc_cmd(&k->c, "DATA", r);
    if (e == NETC_OK && r->code == 354) {
        char *msg = xasprintf("From: <%s>\r\nTo: <%s>\r\nSubject: roost check test message\r\n"
                              "\r\nThis message was sent by roost check --send-test.\r\n", from, to);
        e = smtpc_send_data(&k->c, msg, strlen(msg), r);
        free(msg);
    }
    if (e != NETC_OK) {
        problem(k, FIX_TLS_BROKEN, "the test message failed: %s", k->c.err);
        return;
    }
    if (r->code == 250) {
        line("send test", "ok, a test message to %s: %s", to, r->last);
        return;
    }
    problem(k, check_fix_for_smtp(r->last), "the test message was refused: %s", r->last);
}

static void check_smtp(struct check *k)
{
    struct smtpc_reply *r = xcalloc(1, sizeof *r);
    char name[256] = "localhost";
    if (gethostname(name, sizeof name - 1) != 0 || !name[0])
        snprintf(name, sizeof name, "localhost");
    char *ehlo = xasprintf("EHLO %s", name);
    enum netc_err e = smtpc_cmd(&k->c, ehlo, r);
    if (e != NETC_OK || r->code != 250) {
        problem(k, FIX_PROTOCOL, "EHLO refused: %s", smtpc_why(&k->c, e, r));
        goto out;
    }
    if (k->mode == M_PLAIN && !k->o.tls_none) {
        if (!smtpc_has(r, "STARTTLS")) {
            problem(k, FIX_NO_STARTTLS, "the server offers no STARTTLS on this port");
        } else {
            e = smtpc_cmd(&k->c, "STARTTLS", r);
            if (e != NETC_OK || r->code != 220) {
                problem(k, FIX_TLS_BROKEN, "STARTTLS refused: %s", smtpc_why(&k->c, e, r));
                goto out;
            }
            if (starttls_now(k) < 0)
                goto out;
            e = smtpc_cmd(&k->c, ehlo, r);
            if (e != NETC_OK || r->code != 250) {
                problem(k, FIX_PROTOCOL, "EHLO refused: %s", smtpc_why(&k->c, e, r));
                goto out;
            }
        }
    }
    for (int i = 1; i < r->nlines && i < SMTPC_MAX_LINES; i++)
        line(i == 1 ? "capabilities" : "", "%s", r->lines[i]);
    char mechs[512];
    smtpc_auth_mechs(r, mechs, sizeof mechs);
    line("login with", "%s", mechs[0] ? mechs : "(no AUTH offered)");
    if (k->o.user) {
        if (!mechs[0] && (k->c.ssl || k->o.tls_none) && !smtpc_has(r, "STARTTLS")) {
            problem(k, FIX_NO_AUTH, "the server offers no login (AUTH) on this port");
            goto out;
        }
        e = smtpc_auth(&k->c, mechs, k->o.user, k->password, r);
        if (e != NETC_OK)
            problem(k, FIX_PROTOCOL, "login failed: %s", k->c.err);
        else
            smtp_login_result(k, r);
        if (e != NETC_OK || r->code != 235)
            goto out;
    }
    if (k->o.send_test)
        smtp_send_test(k, r);
    (void)smtpc_cmd(&k->c, "QUIT", r);
out:
    free(ehlo);
    free(r);
}

/* ------------------------------------------------------------ IMAP */

/* Sends "TAG CMD" and reads up to the tagged reply (in TAGGED); the
 * CAPABILITY data, if any, goes to CAPS. */
static int imap_cmd(struct check *k, const char *tag, const char *cmd, const char *shown,
                    char *tagged, char *caps, size_t capsz)
{
    char *l = xasprintf("%s %s", tag, cmd);
    char *s = xasprintf("%s %s", tag, shown);
    enum netc_err e = netc_send_masked(&k->c, l, s);
    OPENSSL_cleanse(l, strlen(l));
    free(l);
    free(s);
    size_t tl = strlen(tag);
    for (int n = 0; e == NETC_OK && n < IMAP_MAX_LINES; n++) {
        e = netc_read_line(&k->c, tagged, NULL);
        if (e != NETC_OK)
            break;
        if (caps && strncasecmp(tagged, "* CAPABILITY ", 13) == 0)
            snprintf(caps, capsz, "%s", tagged + 13);
        if (strncmp(tagged, tag, tl) == 0 && tagged[tl] == ' ') {
            memmove(tagged, tagged + tl + 1, strlen(tagged + tl + 1) + 1);
            return 0;
        }
    }
    problem(k, FIX_PROTOCOL, "IMAP %s failed: %s", shown, e != NETC_OK ? k->c.err : "no end");
    return -1;
}

static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strcasestr(p, w)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return 1;
    return 0;
}

static void imap_quote(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    out[o++] = '"';
    for (; *s && o + 3 < outsz; s++) {
        if (*s == '"' || *s == '\\')
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void check_imap(struct check *k)
{
    char *tagged = xmalloc(NETC_LINE_MAX + 1), *caps = xcalloc(1, NETC_LINE_MAX + 1);
    if (imap_cmd(k, "c1", "CAPABILITY", "CAPABILITY", tagged, caps, NETC_LINE_MAX + 1) < 0)
        goto out;
    if (k->mode == M_PLAIN && !k->o.tls_none) {
        if (!has_word(caps, "STARTTLS")) {
            problem(k, FIX_NO_STARTTLS, "the server offers no STARTTLS on this port");
        } else {
            if (imap_cmd(k, "c2", "STARTTLS", "STARTTLS", tagged, NULL, 0) < 0)
                goto out;
            if (strncasecmp(tagged, "OK", 2) != 0) {
                problem(k, FIX_TLS_BROKEN, "STARTTLS refused: %s", tagged);
                goto out;
            }
            if (starttls_now(k) < 0 ||
                imap_cmd(k, "c3", "CAPABILITY", "CAPABILITY", tagged, caps, NETC_LINE_MAX + 1) < 0)
                goto out;
        }
    }
    line("capabilities", "%s", caps);
    if (k->o.user) {
        char qu[700], qp[2100];
        imap_quote(k->o.user, qu, sizeof qu);
        imap_quote(k->password, qp, sizeof qp);
        char *cmd = xasprintf("LOGIN %s %s", qu, qp);
        char *shown = xasprintf("LOGIN %s ********", qu);
        OPENSSL_cleanse(qp, sizeof qp);
        int r = imap_cmd(k, "c4", cmd, shown, tagged, NULL, 0);
        OPENSSL_cleanse(cmd, strlen(cmd));
        free(cmd);
        free(shown);
        if (r == 0) {
            if (strncasecmp(tagged, "OK", 2) == 0)
                line("login", "ok");
            else
                problem(k, check_fix_for_imap(tagged), "login refused: %s", tagged);
        }
    }
    (void)imap_cmd(k, "c5", "LOGOUT", "LOGOUT", tagged, NULL, 0);
out:
    free(tagged);
    free(caps);
}

/* ------------------------------------------------------------ POP3 */

static int pop_cmd(struct check *k, const char *cmd, const char *shown, char *reply)
{
    enum netc_err e = netc_send_masked(&k->c, cmd, shown);
    if (e == NETC_OK)
        e = netc_read_line(&k->c, reply, NULL);
    if (e != NETC_OK) {
        problem(k, FIX_PROTOCOL, "POP3 %s failed: %s", shown, k->c.err);
        return -1;
    }
    return 0;
}

/* CAPA: the capability lines, space-separated, into CAPS. */
static int pop_capa(struct check *k, char *reply, char *caps, size_t capsz)
{
    caps[0] = '\0';
    if (pop_cmd(k, "CAPA", "CAPA", reply) < 0)
        return -1;
    if (strncmp(reply, "+OK", 3) != 0)
        return 0;
    size_t used = 0;
    for (int n = 0; n < IMAP_MAX_LINES; n++) {
        if (netc_read_line(&k->c, reply, NULL) != NETC_OK) {
            problem(k, FIX_PROTOCOL, "POP3 CAPA failed: %s", k->c.err);
            return -1;
        }
        if (strcmp(reply, ".") == 0)
            return 0;
        int w = snprintf(caps + used, capsz - used, "%s%s", used ? ", " : "", reply);
        if (w > 0 && used + (size_t)w < capsz)
            used += (size_t)w;
    }
    return -1;
}

static void check_pop3(struct check *k)
{
    char *reply = xmalloc(NETC_LINE_MAX + 1), *caps = xmalloc(NETC_LINE_MAX + 1);
    if (pop_capa(k, reply, caps, NETC_LINE_MAX + 1) < 0)
        goto out;
    if (k->mode == M_PLAIN && !k->o.tls_none) {
        if (!strstr(caps, "STLS")) {
            problem(k, FIX_NO_STARTTLS, "the server offers no STLS (STARTTLS) on this port");
        } else {
            if (pop_cmd(k, "STLS", "STLS", reply) < 0)
                goto out;
            if (strncmp(reply, "+OK", 3) != 0) {
                problem(k, FIX_TLS_BROKEN, "STLS refused: %s", reply);
                goto out;
            }
            if (starttls_now(k) < 0 || pop_capa(k, reply, caps, NETC_LINE_MAX + 1) < 0)
                goto out;
        }
    }
    line("capabilities", "%s", caps);
    if (k->o.user) {
        char *u = xasprintf("USER %s", k->o.user);
        int r = pop_cmd(k, u, u, reply);
        free(u);
        if (r == 0 && strncmp(reply, "+OK", 3) == 0) {
            char *p = xasprintf("PASS %s", k->password);
            r = pop_cmd(k, p, "PASS ********", reply);
            OPENSSL_cleanse(p, strlen(p));
            free(p);
        }
        if (r == 0) {
            if (strncmp(reply, "+OK", 3) == 0)
                line("login", "ok (%s)", reply);
            else
                problem(k, check_fix_for_pop3(reply), "login refused: %s", reply);
        }
    }
    (void)pop_cmd(k, "QUIT", "QUIT", reply);
out:
    free(reply);
    free(caps);
}

/* ------------------------------------------------------------ main */

static void compare_expectations(struct check *k, const char *greet)
{
    const char *pname = check_proto_name(k->proto);
    if (k->proto == P_UNKNOWN) {
        problem(k, FIX_PROTOCOL, "the port answered \"%.200s\", which is not SMTP, IMAP or POP3",
                greet);
        return;
    }
    if (k->o.want_tls == M_IMPLICIT && k->mode == M_PLAIN)
        problem(k, FIX_USE_STARTTLS, "this port speaks plain %s (STARTTLS), not TLS from the"
                " first byte (SSL/TLS)", pname);
    else if (k->o.want_tls == M_PLAIN && k->mode == M_IMPLICIT)
        problem(k, FIX_USE_IMPLICIT, "this port speaks TLS from the first byte (SSL/TLS), not"
                " plain %s with STARTTLS", pname);
    if (k->o.want_proto != P_UNKNOWN && k->o.want_proto != k->proto) {
        enum check_proto want = k->o.want_proto;
        k->proto = want;   /* the fix names the right ports for what was wanted */
        problem(k, FIX_WRONG_PROTOCOL, "this port speaks %s, not %s", pname,
                check_proto_name(want));
        k->proto = check_proto_of_greeting(greet);
    }
}

int cli_check_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    struct check *k = xcalloc(1, sizeof *k);
    char *greet = xmalloc(NETC_LINE_MAX + 1);
    int rc = parse_opts(argc, argv, &k->o);
    if (rc != 0)
        goto out;
    if (k->o.user) {
        char err[512];
        if (k->o.password_file)
            k->password = netc_read_password_file(k->o.password_file, err, sizeof err);
        else if (getenv("ROOST_PASSWORD") && getenv("ROOST_PASSWORD")[0])
            k->password = xstrdup(getenv("ROOST_PASSWORD"));
        else
            snprintf(err, sizeof err, "--user needs a password: --password-file FILE or"
                                      " $ROOST_PASSWORD");
        if (!k->password) {
            fprintf(stderr, "roost check: %s\n", err);
            rc = 2;
            goto out;
        }
    }
    printf("roost check %s port %d\n", k->o.host, k->o.port);
    if (detect(k, greet) == 0) {
        k->proto = check_proto_of_greeting(greet);
        line("mode", "%s", k->mode == M_IMPLICIT ? "TLS from the first byte (SSL/TLS)"
                                                 : "plain text (STARTTLS to encrypt)");
        report_tls(k);
        line("greeting", "%s", greet);
        compare_expectations(k, greet);
        if (check_greeting_refuses(greet))
            problem(k, FIX_REFUSED_GREETING, "the server refuses the connection: %s", greet);
        else if (k->proto == P_SMTP)
            check_smtp(k);
        else if (k->proto == P_IMAP)
            check_imap(k);
        else if (k->proto == P_POP3)
            check_pop3(k);
    }
    netc_close(&k->c);
    if (k->problems == 0)
        printf("result: OK, no problem found\n");
    else
        printf("result: %d problem%s found\n", k->problems, k->problems == 1 ? "" : "s");
    rc = k->problems ? 1 : 0;
out:
    if (k->password) {
        OPENSSL_cleanse(k->password, strlen(k->password));
        free(k->password);
    }
    free(greet);
    free(k);
    return rc;
}
