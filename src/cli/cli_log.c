/* cli_log: `roost log`, the event log read back: every line, or the story
 * of one message (--message QUEUE-ID: its SMTP session, queue, deliveries,
 * attempts and DSNs, following dsn= to the DSN's own delivery and fwd= to a
 * forwarded copy), or the lines
 * selected by filters, as a readable time line or as JSON (one object per
 * line, every key). Reads DATA/log/roost.log and its rotated files only, so
 * it is safe while the server runs.
 *
 * Selection runs in two passes over the files. The first collects the
 * session and queue ids each filter selects (a message's session is known
 * only from its MAIL line, after the session's connect and AUTH lines); the
 * second prints every line that all filters select and that lies inside the
 * time and protocol bounds. docs/log.md describes each filter. */
#include "cli/cli.h"
#include "cli/cli_logread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum fkind { F_MESSAGE, F_ACCOUNT, F_SESSION, F_FROM, F_TO, F_STATUS };

struct filter {
    enum fkind kind;
    const char *arg;
    struct logset q, s;   /* queue and session ids it selects */
};

#define MAX_FILTERS 8

struct log_opts {
    struct filter f[MAX_FILTERS];
    int nf;
    char since[32], until[32];
    const char *protocol;
    int json;
    int found;            /* --message: the id appeared */
    long printed;
};

static int usage(void)
{
    fprintf(stderr,
            "usage: roost log [--message QUEUE-ID] [--account ADDRESS] [--session ID]\n"
            "                 [--from TEXT] [--to TEXT] [--since TIME] [--until TIME]\n"
            "                 [--status delivered|deferred|bounced|rejected]\n"
            "                 [--protocol smtp|imap|pop3] [--json]\n"
            "TIME: 2026-12-03, 2026-12-03T10:00[:00] (UTC), or 30m, 1h, 2d, 1w ago\n");
    return 2;
}

static int eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int has_ci(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

/* ------------------------------------------------------------ selection */

static int status_match(const char *status, const struct logfmt_line *l)
{
    const char *ev = logfmt_get(l, "event"), *outcome = logfmt_get(l, "outcome");
    const char *comp = logfmt_get(l, "comp"), *result = logfmt_get(l, "result");
    if (strcmp(status, "delivered") == 0)
        return (eq(comp, "queue") && eq(ev, "delivered")) ||
               (eq(ev, "attempt") && eq(outcome, "delivered"));
    if (strcmp(status, "deferred") == 0)
        return (eq(ev, "attempt") && eq(outcome, "deferred")) || eq(ev, "deferred") ||
               eq(ev, "retry-scheduled") || (eq(ev, "dsn-queued") && eq(logfmt_get(l, "kind"), "delayed"));
    if (strcmp(status, "bounced") == 0)
        return eq(ev, "bounced") || (eq(ev, "attempt") && eq(outcome, "failed")) ||
               (eq(ev, "dsn-queued") && eq(logfmt_get(l, "kind"), "failed"));
    /* rejected: a refusal answered to the client */
    return eq(comp, "smtp") &&
           (eq(ev, "reject") || eq(ev, "queue-failed") ||
            (eq(ev, "rcpt") && result && (result[0] == '4' || result[0] == '5')));
}

static int account_match(const char *a, const struct logfmt_line *l)
{
    static const char *const keys[] = {"account", "user", "to-account", "auth_account"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = logfmt_get(l, keys[i]);
        if (v && strcasecmp(v, a) == 0)
            return 1;
    }
    return 0;
}

static int direct(const struct filter *f, const struct logfmt_line *l)
{
    switch (f->kind) {
    case F_MESSAGE:
        return eq(logfmt_get(l, "queue"), f->arg);
    case F_ACCOUNT:
        return account_match(f->arg, l);
    case F_SESSION:
        return eq(logfmt_get(l, "session"), f->arg);
    case F_FROM:
        return has_ci(logfmt_get(l, "from"), f->arg);
    case F_TO:
        /* to= of dsn-queued names the DSN's recipient (the sender of the
         * message): the DSN's own lines carry it as rcpt= */
        return (!eq(logfmt_get(l, "event"), "dsn-queued") && has_ci(logfmt_get(l, "to"), f->arg)) ||
               has_ci(logfmt_get(l, "rcpt"), f->arg);
    case F_STATUS:
        return status_match(f->arg, l);
    }
    return 0;
}

static void collect(struct filter *f, const struct logfmt_line *l, struct log_opts *o)
{
    const char *q = logfmt_get(l, "queue"), *s = logfmt_get(l, "session");
    const char *ev = logfmt_get(l, "event");
    switch (f->kind) {
    case F_MESSAGE:
        if (!logset_has(&f->q, q))
            return;
        o->found = 1;
        logset_add(&f->s, s);
        if (eq(ev, "dsn-queued"))
            logset_add(&f->q, logfmt_get(l, "dsn"));
        else if (eq(ev, "forwarded"))
            logset_add(&f->q, logfmt_get(l, "fwd"));
        return;
    case F_ACCOUNT:
        if (direct(f, l)) {
            if (eq(ev, "auth") || eq(ev, "login"))
                logset_add(&f->s, s);
            logset_add(&f->q, q);
        } else if (q && logset_has(&f->s, s)) {
            logset_add(&f->q, q);
        }
        return;
    case F_SESSION:
        return;
    case F_STATUS:
        /* a bounce or delay also brings in the DSN's own lines (its
         * queueing and its delivery to the sender) */
        if (direct(f, l)) {
            logset_add(&f->q, q);
            if (eq(ev, "dsn-queued"))
                logset_add(&f->q, logfmt_get(l, "dsn"));
        }
        return;
    default:
        if (direct(f, l))
            logset_add(&f->q, q);
    }
}

static int selected(const struct filter *f, const struct logfmt_line *l)
{
    const char *q = logfmt_get(l, "queue"), *s = logfmt_get(l, "session");
    switch (f->kind) {
    case F_MESSAGE:
        return logset_has(&f->q, q) || (logset_has(&f->s, s) && (!q || logset_has(&f->q, q)));
    case F_ACCOUNT:
        return direct(f, l) || logset_has(&f->s, s) || logset_has(&f->q, q);
    case F_SESSION:
        return direct(f, l);
    default:
        return direct(f, l) || logset_has(&f->q, q);
    }
}

/* --protocol smtp also keeps the mail flow behind SMTP (queue, delivery,
 * outbound, DKIM, spool lines). */
static int protocol_match(const char *p, const char *comp)
{
    if (!p)
        return 1;
    if (!comp)
        return 0;
    if (strcmp(p, "smtp") == 0)
        return strcmp(comp, "smtp") == 0 || strcmp(comp, "queue") == 0 ||
               strcmp(comp, "outbound") == 0 || strcmp(comp, "dkim") == 0 ||
               strcmp(comp, "spool") == 0;
    return strcmp(p, comp) == 0;
}

/* ------------------------------------------------------------ output */

/* The readable phrase of an event: segments printed only when every {key}
 * they name is present (a value "-" counts as absent). */
struct phrase {
    const char *event;   /* "comp.event" or "event" */
    const char *seg[8];
};

static const struct phrase phrases[] = {
    {"connect", {"connection from {client}", " port {port}", " to the {listener} listener",
                 " (port {local_port})"}},
    {"connection-refused", {"connection from {client} refused", " on {listener}", ": {reason}"}},
    {"tls", {"TLS established", " ({mode})", ": {version}", " {cipher}"}},
    {"starttls-discarded", {"plaintext after STARTTLS discarded ({bytes} bytes)"}},
    {"auth", {"AUTH", " {mech}", " {result}", " as {account}", " (app password \"{app_password}\")",
              " user {user}", " error {error}"}},
    {"login", {"login", " {mech}", " {result}", " as {account}", " (app password \"{app_password}\")",
               " user {user}", " {messages} messages", " error {error}"}},
    {"mail", {"MAIL FROM:<{from}>", " SIZE={size}", " -> {result}", ", queue id {queue}"}},
    {"rcpt", {"RCPT TO:<{to}>", " -> {result}", " ({reason})", " local account {account}",
              " route {route}", " error {error}"}},
    {"reject", {"{command} refused", " -> {result}", ": {reason}", " (account {account})",
                " from <{from}>", " to account {to-account}"}},
    {"smtp.data", {"DATA received: {size} bytes", " for {rcpts} recipients", " (account {account})"}},
    {"smtp.accepted", {"message accepted", " -> {result}", " queued as {queue}"}},
    {"queue-failed", {"queue write failed: {error}"}},
    {"disconnect", {"disconnected ({reason})", " after {messages} messages",
                    " account {account}", " {retrieved} retrieved"}},
    {"queue.accepted", {"queued as {queue}", " from <{from}>", ", {nrcpt} recipients",
                        ", {size} bytes"}},
    {"delivered", {"delivered to {account}", " mailbox {mailbox}", " uid {uid}", " (<{rcpt}>)"}},
    {"duplicate-skipped", {"already delivered to {account}", " uid {uid}", " (<{rcpt}>)"}},
    {"delivery-failed", {"local delivery to <{rcpt}> failed", " (attempt {attempt})",
                         ": {error}"}},
    {"queued-remote", {"waiting for remote delivery to <{rcpt}>"}},
    {"retry-scheduled", {"retry {attempt} scheduled", " in {delay_ms} ms", " (at {next})",
                         " for <{rcpt}>"}},
    {"attempt", {"delivery attempt to <{rcpt}>", ": {outcome}", " via {remote}",
                 " reply \"{reply}\"", " tls {tls}"}},
    {"dsn-queued", {"{kind} DSN queued", " as {dsn}", " to <{to}>", " for {rcpts} recipients"}},
    {"dsn-suppressed", {"no DSN sent", " ({reason})", " for {rcpts} recipients"}},
    {"dsn-not-sent", {"{kind} DSN not sent", " to <{to}>", ": {reason}"}},
    {"bounced", {"bounced", " <{rcpt}>", " {status}", " ({reason})", ": \"{reply}\""}},
    {"forwarded", {"forwarded by {account}", " to <{to}>", " as {fwd}", " (SRS sender {srs})"}},
    {"held", {"held by the administrator"}},
    {"released", {"released by the administrator"}},
    {"retry-requested", {"retry requested by the administrator"}},
    {"bounce-requested", {"bounce requested by the administrator"}},
    {"delete-requested", {"delete requested by the administrator"}},
    {"deleted", {"deleted from the queue", " by {by}"}},
    {"removed", {"removed from the queue (done)"}},
    {"signed", {"DKIM-signed", " d={domain}", " s={selector}", " a={a}"}},
};

static const char *val(const struct logfmt_line *l, const char *k, size_t klen)
{
    char key[LOGFMT_MAX_KEY + 1];
    if (klen > LOGFMT_MAX_KEY)
        return NULL;
    memcpy(key, k, klen);
    key[klen] = '\0';
    const char *v = logfmt_get(l, key);
    return v && *v && strcmp(v, "-") != 0 ? v : NULL;
}

/* Prints V with control bytes escaped (values are decoded). */
static void put_text(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

/* 1 if every {key} of SEG is present; with PRINT set, prints it. */
static int segment(const struct logfmt_line *l, const char *seg, int print)
{
    for (const char *p = seg; *p;) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            const char *v = val(l, p + 1, (size_t)(e - p - 1));
            if (!v)
                return 0;
            if (print)
                put_text(v);
            p = e + 1;
        } else {
            if (print)
                putchar(*p);
            p++;
        }
    }
    return 1;
}

static const struct phrase *phrase_of(const char *comp, const char *ev)
{
    char both[160];
    snprintf(both, sizeof both, "%s.%s", comp ? comp : "", ev);
    for (size_t i = 0; i < sizeof phrases / sizeof *phrases; i++)
        if (strcmp(phrases[i].event, both) == 0)
            return &phrases[i];
    for (size_t i = 0; i < sizeof phrases / sizeof *phrases; i++)
        if (strcmp(phrases[i].event, ev) == 0)
            return &phrases[i];
    return NULL;
}

static void print_human(const struct logfmt_line *l)
{
    const char *ts = logfmt_get(l, "ts"), *comp = logfmt_get(l, "comp");
    const char *ev = logfmt_get(l, "event"), *lvl = logfmt_get(l, "level");
    const char *sid = logfmt_get(l, "session"), *qid = logfmt_get(l, "queue");
    char when[40];
    snprintf(when, sizeof when, "%s", ts);
    char *t = strchr(when, 'T');
    if (t)
        *t = ' ';
    size_t wl = strlen(when);
    if (wl && when[wl - 1] == 'Z')
        when[wl - 1] = '\0';
    printf("%-23s  %-8s  ", when, comp ? comp : "-");
    if (sid)
        printf("session %-12s  ", sid);
    else if (qid)
        printf("queue %-20s  ", qid);
    if (lvl && (strcmp(lvl, "warn") == 0 || strcmp(lvl, "error") == 0))
        printf("%s: ", lvl);
    const struct phrase *ph = phrase_of(comp, ev);
    if (ph) {
        for (int i = 0; i < 8 && ph->seg[i]; i++)
            if (segment(l, ph->seg[i], 0))
                segment(l, ph->seg[i], 1);
        if (sid && qid && !strstr(ph->seg[0], "{queue}") && strcmp(ev, "mail") != 0)
            printf(" [queue %s]", qid);
    } else {
        put_text(ev);
        for (int i = 0; i < l->n; i++) {
            const char *k = l->f[i].key;
            if (!strcmp(k, "ts") || !strcmp(k, "level") || !strcmp(k, "comp") ||
                !strcmp(k, "event") || (sid && !strcmp(k, "session")) ||
                (!sid && qid && !strcmp(k, "queue")))
                continue;
            printf(" %s=", k);
            put_text(l->f[i].val);
        }
    }
    putchar('\n');
}

static void print_json(const struct logfmt_line *l)
{
    putchar('{');
    for (int i = 0; i < l->n; i++) {
        if (i)
            putchar(',');
        logread_json_str(stdout, l->f[i].key, strlen(l->f[i].key));
        putchar(':');
        logread_json_str(stdout, l->f[i].val, l->f[i].vlen);
    }
    fputs("}\n", stdout);
}

/* ------------------------------------------------------------ passes */

static int pass1(const struct logfmt_line *l, void *arg)
{
    struct log_opts *o = arg;
    for (int i = 0; i < o->nf; i++)
        collect(&o->f[i], l, o);
    return 0;
}

static int pass2(const struct logfmt_line *l, void *arg)
{
    struct log_opts *o = arg;
    const char *ts = logfmt_get(l, "ts");
    if (o->since[0] && strcmp(ts, o->since) < 0)
        return 0;
    if (o->until[0] && strcmp(ts, o->until) > 0)
        return 0;
    if (!protocol_match(o->protocol, logfmt_get(l, "comp")))
        return 0;
    for (int i = 0; i < o->nf; i++)
        if (!selected(&o->f[i], l))
            return 0;
    if (o->json)
        print_json(l);
    else
        print_human(l);
    o->printed++;
    return 0;
}

static int add_filter(struct log_opts *o, enum fkind k, const char *arg)
{
    if (o->nf == MAX_FILTERS || !arg[0])
        return -1;
    struct filter *f = &o->f[o->nf++];
    memset(f, 0, sizeof *f);
    f->kind = k;
    f->arg = arg;
    if (k == F_MESSAGE)
        logset_add(&f->q, arg);
    return 0;
}

static int parse_args(int argc, char **argv, struct log_opts *o)
{
    time_t now = time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "roost: log: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        static const struct { const char *opt; enum fkind k; } fl[] = {
            {"--message", F_MESSAGE}, {"--account", F_ACCOUNT}, {"--session", F_SESSION},
            {"--from", F_FROM},       {"--to", F_TO},           {"--status", F_STATUS},
        };
        int done = 0;
        for (size_t j = 0; j < sizeof fl / sizeof *fl && !done; j++) {
            if (strcmp(a, fl[j].opt) != 0)
                continue;
            if (fl[j].k == F_STATUS && strcmp(v, "delivered") && strcmp(v, "deferred") &&
                strcmp(v, "bounced") && strcmp(v, "rejected")) {
                fprintf(stderr, "roost: log: --status is delivered, deferred, bounced or rejected\n");
                return -1;
            }
            if (add_filter(o, fl[j].k, v) < 0) {
                fprintf(stderr, "roost: log: %s: empty value or too many filters\n", a);
                return -1;
            }
            done = 1;
        }
        if (done)
            continue;
        if (strcmp(a, "--since") == 0 || strcmp(a, "--until") == 0) {
            time_t t;
            if (logread_parse_time(v, now, &t) < 0) {
                fprintf(stderr, "roost: log: %s: '%s' is not a date (2026-12-03), a date and "
                        "time (2026-12-03T10:00) or a duration ago (30m, 1h, 2d)\n", a, v);
                return -1;
            }
            if (a[2] == 's')
                logread_ts(t, 0, o->since);
            else
                logread_ts(t, 1, o->until);
        } else if (strcmp(a, "--protocol") == 0) {
            if (strcmp(v, "smtp") && strcmp(v, "imap") && strcmp(v, "pop3")) {
                fprintf(stderr, "roost: log: --protocol is smtp, imap or pop3\n");
                return -1;
            }
            o->protocol = v;
        } else {
            fprintf(stderr, "roost: log: unknown option '%s'\n", a);
            return -1;
        }
    }
    return 0;
}

int cli_log_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    struct log_opts *o = calloc(1, sizeof *o);
    if (!o)
        return 1;
    int rc = 0;
    if (parse_args(argc, argv, o) < 0) {
        rc = usage();
        goto out;
    }
    const char *message = NULL;
    for (int i = 0; i < o->nf; i++)
        if (o->f[i].kind == F_MESSAGE)
            message = o->f[i].arg;
    struct logread r;
    logread_open(&r, ctx->data_dir);
    if (o->nf > 0)
        logread_each(&r, pass1, o);
    if (message && !o->found) {
        fprintf(stderr, "roost: no such message in the log: %s\n", message);
        rc = 1;
    } else {
        if (message && !o->json)
            printf("Message %s\n", message);
        logread_each(&r, pass2, o);
        if (fflush(stdout) != 0)
            rc = 1;
    }
    logread_close(&r);
out:
    for (int i = 0; i < o->nf; i++) {
        logset_free(&o->f[i].q);
        logset_free(&o->f[i].s);
    }
    free(o);
    return rc;
}
