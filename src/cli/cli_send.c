/* cli_send: `roost send`, compose a message (compose.c) and send it to any
 * SMTP server (Roost, smtp.gmail.com...) over implicit TLS (465), STARTTLS
 * (587) or plain, with AUTH PLAIN/LOGIN, on the blocking client in netc.c
 * and smtpc.c. The password comes from --password-file or $ROOST_PASSWORD,
 * never from the command line. -v prints the SMTP transcript to stderr with
 * AUTH secrets masked.
 *
 * Exit codes: 0 sent, 1 other failure (a file, the message, a protocol
 * error), 2 usage, 3 cannot connect (name, refused, timeout), 4 TLS
 * (handshake, certificate, no STARTTLS), 5 login refused, 6 the server
 * refused the sender, a recipient or the message. */
#include "cli/cli.h"
#include "cli/compose.h"
#include "cli/smtpc.h"
#include "core/config.h"
#include "core/xalloc.h"

#include <gmime/gmime.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEND_MAX_RCPTS 100   /* as the submission server's default */

enum { EX_SENT = 0, EX_FAIL = 1, EX_USAGE = 2, EX_CONNECT = 3, EX_TLS = 4, EX_AUTH = 5,
       EX_REFUSED = 6 };

enum tls_mode { TLS_DEFAULT, TLS_IMPLICIT, TLS_STARTTLS, TLS_NONE };

struct send_opts {
    char host[256];
    int port;
    enum tls_mode tls;
    const char *user, *password_file, *from, *subject, *body, *ca_file;
    const char *to[SEND_MAX_RCPTS], *cc[SEND_MAX_RCPTS], *bcc[SEND_MAX_RCPTS];
    int nto, ncc, nbcc;
    const char *attach[COMPOSE_MAX_ATTACH];
    int nattach;
    int insecure, verbose, timeout;
};

static const char send_usage[] =
    "usage: roost send --server HOST[:PORT] [--tls implicit|starttls|none]\n"
    "                  [--user ADDRESS [--password-file FILE]] --from ADDRESS\n"
    "                  --to ADDRESS [--to ...] [--cc ADDRESS ...] [--bcc ADDRESS ...]\n"
    "                  [--subject TEXT] [--body TEXT] [--attach FILE ...]\n"
    "                  [--ca-file PEM] [--insecure] [--timeout SECONDS] [-v]\n"
    "The text is --body, else standard input. The password is the first line of\n"
    "--password-file, else $ROOST_PASSWORD. PORT defaults to 587; --tls defaults\n"
    "to implicit on port 465, else starttls.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "roost send: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", send_usage);
    return EX_USAGE;
}

static int add_to(const char **list, int *n, const char *v, const char *what)
{
    if (*n >= SEND_MAX_RCPTS) {
        fprintf(stderr, "roost send: more than %d %s addresses\n", SEND_MAX_RCPTS, what);
        return -1;
    }
    list[(*n)++] = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct send_opts *o)
{
    memset(o, 0, sizeof *o);
    o->port = 587;
    o->timeout = 30;
    int have_server = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
            takes = 0;
        } else if (strcmp(a, "--insecure") == 0) {
            o->insecure = 1;
            takes = 0;
        } else if (!v) {
            return usage_error("%s needs a value (or is unknown)", a);
        } else if (strcmp(a, "--server") == 0) {
            if (config_parse_hostport(v, o->host, sizeof o->host, &o->port) != 0) {
                snprintf(o->host, sizeof o->host, "%s", v);
                o->port = 587;
                if (strchr(v, ':') || !v[0])
                    return usage_error("bad --server \"%s\" (HOST or HOST:PORT)", v);
            }
            have_server = 1;
        } else if (strcmp(a, "--tls") == 0) {
            if (strcmp(v, "implicit") == 0 || strcmp(v, "ssl") == 0)
                o->tls = TLS_IMPLICIT;
            else if (strcmp(v, "starttls") == 0)
                o->tls = TLS_STARTTLS;
            else if (strcmp(v, "none") == 0)
                o->tls = TLS_NONE;
            else
                return usage_error("bad --tls \"%s\" (implicit, starttls or none)", v);
        } else if (strcmp(a, "--user") == 0) {
            o->user = v;
        } else if (strcmp(a, "--password-file") == 0) {
            o->password_file = v;
        } else if (strcmp(a, "--from") == 0) {
            o->from = v;
        } else if (strcmp(a, "--to") == 0) {
            if (add_to(o->to, &o->nto, v, "--to") < 0)
                return EX_USAGE;
        } else if (strcmp(a, "--cc") == 0) {
            if (add_to(o->cc, &o->ncc, v, "--cc") < 0)
                return EX_USAGE;
        } else if (strcmp(a, "--bcc") == 0) {
            if (add_to(o->bcc, &o->nbcc, v, "--bcc") < 0)
                return EX_USAGE;
        } else if (strcmp(a, "--subject") == 0) {
            o->subject = v;
        } else if (strcmp(a, "--body") == 0) {
            o->body = v;
        } else if (strcmp(a, "--attach") == 0) {
            if (o->nattach >= COMPOSE_MAX_ATTACH) {
                fprintf(stderr, "roost send: more than %d attachments\n", COMPOSE_MAX_ATTACH);
                return EX_USAGE;
            }
            o->attach[o->nattach++] = v;
        } else if (strcmp(a, "--ca-file") == 0) {
            o->ca_file = v;
        } else if (strcmp(a, "--timeout") == 0) {
            o->timeout = atoi(v);
            if (o->timeout < 1 || o->timeout > 3600)
                return usage_error("bad --timeout \"%s\" (1 to 3600 seconds)", v);
        } else if (strcmp(a, "--password") == 0) {
            fprintf(stderr, "roost send: no password on the command line (other users can see"
                            " it): use --password-file FILE or $ROOST_PASSWORD\n");
            return EX_USAGE;
        } else {
            return usage_error("unknown option %s", a);
        }
        i += takes;
    }
    if (!have_server)
        return usage_error("%s", "--server HOST[:PORT] is required");
    if (!o->from)
        return usage_error("%s", "--from ADDRESS is required");
    if (o->nto + o->ncc + o->nbcc == 0)
        return usage_error("%s", "no recipients: give --to, --cc or --bcc");
    if (o->nto + o->ncc + o->nbcc > SEND_MAX_RCPTS)
        return usage_error("more than %d recipients", SEND_MAX_RCPTS);
    if (o->tls == TLS_DEFAULT)
        o->tls = o->port == 465 ? TLS_IMPLICIT : TLS_STARTTLS;
    return 0;
}

/* The addr-spec of an address argument ("Name <a@b>" -> a@b); NULL when it
 * is not one mailbox. */
static char *addr_spec(const char *s)
{
    InternetAddressList *l = internet_address_list_parse(NULL, s);
    char *out = NULL;
    if (l && internet_address_list_length(l) == 1) {
        InternetAddress *ia = internet_address_list_get_address(l, 0);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            if (a && strchr(a, '@') && strlen(a) <= 320 && !strpbrk(a, "\r\n<> "))
                out = xstrdup(a);
        }
    }
    if (l)
        g_object_unref(l);
    return out;
}

static char *read_stdin_all(size_t *len_r)
{
    size_t cap = 65536, len = 0;
    char *p = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap > COMPOSE_MAX_TOTAL) {
                free(p);
                return NULL;
            }
            cap *= 2;
            p = xrealloc(p, cap + 1);
        }
        size_t n = fread(p + len, 1, cap - len, stdin);
        len += n;
        if (n == 0)
            break;
    }
    p[len] = '\0';
    *len_r = len;
    return p;
}

static char *get_password(const struct send_opts *o)
{
    if (o->password_file) {
        char err[512];
        char *pw = netc_read_password_file(o->password_file, err, sizeof err);
        if (!pw)
            fprintf(stderr, "roost send: %s\n", err);
        return pw;
    }
    const char *env = getenv("ROOST_PASSWORD");
    if (env && env[0])
        return xstrdup(env);
    fprintf(stderr, "roost send: --user needs a password: --password-file FILE or"
                    " $ROOST_PASSWORD\n");
    return NULL;
}

/* Why a login was refused, in one sentence, from the server's reply. */
static const char *auth_hint(const struct smtpc_reply *r)
{
    if (strstr(r->last, "5.7.9"))
        return "this account has two-factor authentication: use an app password"
               " (Roost: roost app-password create ADDRESS NAME; Gmail: myaccount.google.com"
               "/apppasswords)";
    if (strstr(r->last, "5.7.8"))
        return "the address or the password is wrong";
    if (r->code == 530)
        return "the server wants TLS first: use --tls starttls or --tls implicit";
    if (r->code == 454)
        return "too many attempts or a temporary problem: wait and try again";
    return NULL;
}

struct session {
    struct netc c;
    struct smtpc_reply r;
    const struct send_opts *o;
};

static int fail(struct session *s, int code, const char *what, enum netc_err e)
{
    fprintf(stderr, "roost send: %s: %s\n", what, smtpc_why(&s->c, e, &s->r));
    netc_close(&s->c);
    return code;
}

static int tls_fail(struct session *s, enum netc_err e)
{
    fprintf(stderr, "roost send: %s\n", s->c.err);
    if (e == NETC_ERR_VERIFY)
        fprintf(stderr, "roost send: (a self-signed or private certificate: --ca-file PEM"
                        " trusts it; --insecure skips the check)\n");
    else if (s->o->tls == TLS_IMPLICIT)
        fprintf(stderr, "roost send: (if this port speaks STARTTLS, as 587 does, use"
                        " --tls starttls)\n");
    netc_close(&s->c);
    return EX_TLS;
}

static int ehlo(struct session *s)
{
    char name[256] = "localhost";
    if (gethostname(name, sizeof name - 1) != 0 || !name[0] || strchr(name, ' '))
        snprintf(name, sizeof name, "localhost");
    char *line = xasprintf("EHLO %s", name);
    enum netc_err e = smtpc_cmd(&s->c, line, &s->r);
    free(line);
    if (e != NETC_OK || s->r.code != 250)
        return fail(s, EX_FAIL, "EHLO refused", e);
    return 0;
}

/* Connect, TLS, EHLO, AUTH. 0 or an exit code. */
static int open_session(struct session *s, const char *password)
{
    const struct send_opts *o = s->o;
    netc_init(&s->c, o->host);
    s->c.verbose = o->verbose;
    s->c.timeout_ms = o->timeout * 1000;
    s->c.verify = !o->insecure;
    s->c.ca_file = o->ca_file;
    enum netc_err e = netc_connect(&s->c, o->port);
    if (e != NETC_OK) {
        fprintf(stderr, "roost send: %s\n", s->c.err);
        if (e == NETC_ERR_REFUSED)
            fprintf(stderr, "roost send: (nothing listens there: check the port, 465 or"
                            " 587, and that the server runs)\n");
        return EX_CONNECT;
    }
    if (o->tls == TLS_IMPLICIT && (e = netc_start_tls(&s->c)) != NETC_OK)
        return tls_fail(s, e);
    e = smtpc_reply(&s->c, &s->r);
    if (e != NETC_OK || s->r.code != 220)
        return fail(s, EX_CONNECT, "the server did not greet", e);
    int rc = ehlo(s);
    if (rc)
        return rc;
    if (o->tls == TLS_STARTTLS) {
        if (!smtpc_has(&s->r, "STARTTLS")) {
            fprintf(stderr, "roost send: %s does not offer STARTTLS (on port 465 use --tls"
                            " implicit)\n", o->host);
            netc_close(&s->c);
            return EX_TLS;
        }
        e = smtpc_cmd(&s->c, "STARTTLS", &s->r);
        if (e != NETC_OK || s->r.code != 220)
            return fail(s, EX_TLS, "STARTTLS refused", e);
        if (netc_pending(&s->c) > 0) {
            fprintf(stderr, "roost send: the server sent data before the TLS handshake\n");
            netc_close(&s->c);
            return EX_TLS;
        }
        if ((e = netc_start_tls(&s->c)) != NETC_OK)
            return tls_fail(s, e);
        if ((rc = ehlo(s)) != 0)
            return rc;
    }
    if (o->user) {
        char mechs[512];
        smtpc_auth_mechs(&s->r, mechs, sizeof mechs);
        e = smtpc_auth(&s->c, mechs, o->user, password, &s->r);
        if (e != NETC_OK || s->r.code != 235) {
            const char *hint = e == NETC_OK ? auth_hint(&s->r) : NULL;
            fprintf(stderr, "roost send: login refused: %s\n", smtpc_why(&s->c, e, &s->r));
            if (hint)
                fprintf(stderr, "roost send: (%s)\n", hint);
            netc_close(&s->c);
            return EX_AUTH;
        }
    }
    return 0;
}

static int envelope(struct session *s, const char *sender)
{
    char *line = xasprintf("MAIL FROM:<%s>", sender);
    enum netc_err e = smtpc_cmd(&s->c, line, &s->r);
    free(line);
    if (e != NETC_OK || s->r.code != 250)
        return fail(s, EX_REFUSED, "sender refused", e);
    const char *const *lists[3] = {s->o->to, s->o->cc, s->o->bcc};
    int counts[3] = {s->o->nto, s->o->ncc, s->o->nbcc};
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < counts[l]; i++) {
            char *a = addr_spec(lists[l][i]);
            line = xasprintf("RCPT TO:<%s>", a);
            e = smtpc_cmd(&s->c, line, &s->r);
            free(line);
            if (e != NETC_OK || (s->r.code != 250 && s->r.code != 251)) {
                char what[400];
                snprintf(what, sizeof what, "recipient %s refused (nothing was sent)", a);
                free(a);
                return fail(s, EX_REFUSED, what, e);
            }
            free(a);
        }
    return 0;
}

static int check_addresses(const struct send_opts *o, char **sender_r)
{
    *sender_r = addr_spec(o->from);
    if (!*sender_r) {
        fprintf(stderr, "roost send: --from \"%s\" is not one address\n", o->from);
        return -1;
    }
    const char *const *lists[3] = {o->to, o->cc, o->bcc};
    int counts[3] = {o->nto, o->ncc, o->nbcc};
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < counts[l]; i++) {
            char *a = addr_spec(lists[l][i]);
            if (!a) {
                fprintf(stderr, "roost send: \"%s\" is not one address\n", lists[l][i]);
                free(*sender_r);
                return -1;
            }
            free(a);
        }
    return 0;
}

static int send_run(struct send_opts *o)
{
    char *sender = NULL, *password = NULL, *body = NULL, *msg = NULL;
    size_t body_len = 0, msg_len = 0;
    int rc = EX_FAIL;
    if (check_addresses(o, &sender) < 0)
        return EX_USAGE;
    if (o->user && !(password = get_password(o)))
        goto out;
    if (o->body) {
        body = xstrdup(o->body);
        body_len = strlen(body);
    } else if (!(body = read_stdin_all(&body_len))) {
        fprintf(stderr, "roost send: the text on standard input is larger than %u MB\n",
                COMPOSE_MAX_TOTAL / (1024 * 1024));
        goto out;
    }
    struct compose cm = {.from = o->from, .to = o->to, .nto = o->nto, .cc = o->cc,
                         .ncc = o->ncc, .subject = o->subject, .body = body,
                         .body_len = body_len, .attach = o->attach, .nattach = o->nattach};
    char err[512];
    if (compose_message(&cm, &msg, &msg_len, err, sizeof err) < 0) {
        fprintf(stderr, "roost send: %s\n", err);
        goto out;
    }
    struct session *s = xcalloc(1, sizeof *s);
    s->o = o;
    rc = open_session(s, password);
    if (rc == 0)
        rc = envelope(s, sender);
    if (rc == 0) {
        enum netc_err e = smtpc_cmd(&s->c, "DATA", &s->r);
        if (e != NETC_OK || s->r.code != 354)
            rc = fail(s, EX_REFUSED, "DATA refused", e);
        else if ((e = smtpc_send_data(&s->c, msg, msg_len, &s->r)) != NETC_OK || s->r.code != 250)
            rc = fail(s, EX_REFUSED, "message refused", e);
        else {
            printf("sent: %s\n", s->r.last);
            (void)smtpc_cmd(&s->c, "QUIT", &s->r);
            netc_close(&s->c);
        }
    }
    free(s);
out:
    if (password) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
    free(sender);
    free(body);
    free(msg);
    return rc;
}

int cli_send_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    struct send_opts *o = xmalloc(sizeof *o);
    int rc = parse_opts(argc, argv, o);
    if (rc == 0) {
        g_mime_init();
        rc = send_run(o);
        g_mime_shutdown();
    }
    free(o);
    return rc;
}
