/* cli_status: `roost status [--json]`, the server at a glance: each
 * configured listener and whether it answers a TCP connect, the queue
 * (messages in DATA/queue/, those with remote recipients still pending and
 * the oldest of them), bounces in the last 24 hours (from the event log) and
 * each account's sending over the rolling 24 hours against its daily limit.
 * Reads only (spool read-only, log files, the directory), so it is safe
 * while the server runs. Exit 0 when every listener answers, 1 otherwise. */
#include "cli/cli.h"
#include "cli/cli_logread.h"
#include "auth/directory.h"
#include "core/config.h"
#include "core/xalloc.h"
#include "queue/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 2000

struct queue_stats {
    struct spool *spool;
    int messages, deferred, unreadable;
    time_t oldest_deferred;   /* 0 = none */
};

struct acct_usage {
    char address[320];
    struct dir_usage u;
    int ok;
};

struct accounts {
    struct acct_usage *a;
    int n, cap;
};

/* ------------------------------------------------------------ listeners */

/* 1 when HOST:PORT accepts a TCP connection within the timeout. A wildcard
 * address is tried on loopback. */
static int answers(const char *host, int port)
{
    const char *h = host;
    if (!h[0] || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "*") == 0)
        h = "127.0.0.1";
    else if (strcmp(h, "::") == 0)
        h = "::1";
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(h, ps, &hints, &ai) != 0)
        return 0;
    int up = 0;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r == 0) {
            up = 1;
        } else if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) == 1) {
                int err = 0;
                socklen_t len = sizeof err;
                up = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
            }
        }
        close(fd);
    }
    freeaddrinfo(ai);
    return up;
}

/* ------------------------------------------------------------ queue */

static void count_one(const char *id, void *arg)
{
    struct queue_stats *q = arg;
    struct spool_msg *m = NULL;
    int rc = spool_load(q->spool, id, &m);
    if (rc > 0)
        return; /* delivered and removed meanwhile */
    if (rc < 0) {
        q->unreadable++;
        return;
    }
    q->messages++;
    int pending_remote = 0;
    for (int i = 0; i < m->nrcpt; i++)
        if (!m->rcpts[i].done && !m->rcpts[i].account)
            pending_remote = 1;
    if (pending_remote) {
        q->deferred++;
        if (!q->oldest_deferred || m->arrived < q->oldest_deferred)
            q->oldest_deferred = m->arrived;
    }
    spool_msg_free(&m);
}

static int queue_stats(const char *data_dir, struct queue_stats *q)
{
    const char *err = NULL;
    q->spool = spool_open_readonly(data_dir, &err);
    if (!q->spool)
        return err && strcmp(err, "no queue directory") == 0 ? 0 : -1;
    int rc = spool_scan(q->spool, count_one, q);
    spool_close(&q->spool);
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ bounces */

struct bounce_ctx {
    char since[32];
    struct logset ids;
};

static int count_bounce(const struct logfmt_line *l, void *arg)
{
    struct bounce_ctx *b = arg;
    const char *ev = logfmt_get(l, "event");
    if (strcmp(logfmt_get(l, "ts"), b->since) < 0)
        return 0;
    int bounce = strcmp(ev, "bounced") == 0 ||
                 (strcmp(ev, "dsn-queued") == 0 && logfmt_get(l, "kind") &&
                  strcmp(logfmt_get(l, "kind"), "failed") == 0);
    if (bounce) {
        const char *q = logfmt_get(l, "queue");
        logset_add(&b->ids, q ? q : logfmt_get(l, "ts")); /* one per message */
    }
    return 0;
}

static int bounces_24h(const char *data_dir, time_t now)
{
    struct bounce_ctx b;
    memset(&b, 0, sizeof b);
    logread_ts(now - 86400, 0, b.since);
    struct logread r;
    logread_open(&r, data_dir);
    logread_each(&r, count_bounce, &b);
    logread_close(&r);
    int n = (int)b.ids.n;
    logset_free(&b.ids);
    return n;
}

/* ------------------------------------------------------------ accounts */

static void add_account(const struct dir_account *a, void *arg)
{
    struct accounts *as = arg;
    if (as->n == as->cap) {
        as->cap = as->cap ? as->cap * 2 : 16;
        as->a = xrealloc(as->a, (size_t)as->cap * sizeof *as->a);
    }
    memset(&as->a[as->n], 0, sizeof as->a[as->n]);
    snprintf(as->a[as->n].address, sizeof as->a[as->n].address, "%s", a->address);
    as->n++;
}

static int account_usage(const struct cli_ctx *ctx, struct accounts *as, time_t now)
{
    struct directory *d = cli_open_directory(ctx);
    if (!d)
        return -1;
    int rc = dir_account_list(d, add_account, as);
    for (int i = 0; rc == 0 && i < as->n; i++)
        as->a[i].ok = dir_send_usage(d, as->a[i].address, now, &as->a[i].u) == 0;
    dir_close(&d);
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ output */

static void age_text(long secs, char *out, size_t outsz)
{
    if (secs < 120)
        snprintf(out, outsz, "%lds", secs);
    else if (secs < 7200)
        snprintf(out, outsz, "%ldm", secs / 60);
    else if (secs < 2 * 86400)
        snprintf(out, outsz, "%ldh%02ldm", secs / 3600, secs / 60 % 60);
    else
        snprintf(out, outsz, "%ldd%02ldh", secs / 86400, secs / 3600 % 24);
}

static void print_text(const struct config *cfg, const int *up, const struct queue_stats *q,
                       int qerr, int bounces, const struct accounts *as, int aerr, time_t now)
{
    printf("Listeners\n");
    for (int i = 0; i < cfg->nlisteners; i++) {
        const struct listener_conf *lc = &cfg->listeners[i];
        int v6 = strchr(lc->host, ':') != NULL;
        printf("  %-12s %s%s%s:%-5d  %s\n", listener_kind_name(lc->kind), v6 ? "[" : "",
               lc->host[0] ? lc->host : "*", v6 ? "]" : "", lc->port, up[i] ? "up" : "DOWN");
    }
    printf("Queue\n");
    if (qerr) {
        printf("  cannot read the queue\n");
    } else {
        printf("  %d message%s queued, %d with remote recipients pending", q->messages,
               q->messages == 1 ? "" : "s", q->deferred);
        if (q->oldest_deferred) {
            char age[32];
            age_text((long)(now - q->oldest_deferred), age, sizeof age);
            printf(" (oldest %s)", age);
        }
        printf("\n");
        if (q->unreadable)
            printf("  %d unreadable queue file%s\n", q->unreadable, q->unreadable == 1 ? "" : "s");
    }
    printf("Bounces in the last 24 hours: %d\n", bounces);
    printf("Sending in the last 24 hours (messages/limit, recipients/limit)\n");
    if (aerr)
        printf("  cannot read the directory\n");
    else if (as->n == 0)
        printf("  no accounts\n");
    for (int i = 0; !aerr && i < as->n; i++) {
        const struct acct_usage *a = &as->a[i];
        if (!a->ok)
            printf("  %-40s unknown\n", a->address);
        else
            printf("  %-40s %d/%d messages, %d/%d recipients\n", a->address, a->u.messages,
                   a->u.limit_messages, a->u.recipients, a->u.limit_recipients);
    }
}

static void json_s(const char *s)
{
    logread_json_str(stdout, s, strlen(s));
}

static void print_json(const struct config *cfg, const int *up, const struct queue_stats *q,
                       int qerr, int bounces, const struct accounts *as, int aerr, time_t now)
{
    printf("{\"listeners\":[");
    for (int i = 0; i < cfg->nlisteners; i++) {
        const struct listener_conf *lc = &cfg->listeners[i];
        printf("%s{\"kind\":", i ? "," : "");
        json_s(listener_kind_name(lc->kind));
        printf(",\"address\":");
        json_s(lc->host);
        printf(",\"port\":%d,\"up\":%s}", lc->port, up[i] ? "true" : "false");
    }
    printf("],\"queue\":");
    if (qerr)
        printf("null");
    else if (q->oldest_deferred)
        printf("{\"messages\":%d,\"deferred\":%d,\"oldest_deferred_age\":%ld,\"unreadable\":%d}",
               q->messages, q->deferred, (long)(now - q->oldest_deferred), q->unreadable);
    else
        printf("{\"messages\":%d,\"deferred\":%d,\"oldest_deferred_age\":null,\"unreadable\":%d}",
               q->messages, q->deferred, q->unreadable);
    printf(",\"bounces_24h\":%d,\"accounts\":", bounces);
    if (aerr) {
        printf("null");
    } else {
        putchar('[');
        for (int i = 0; i < as->n; i++) {
            const struct acct_usage *a = &as->a[i];
            printf("%s{\"account\":", i ? "," : "");
            json_s(a->address);
            if (a->ok)
                printf(",\"messages\":%d,\"limit_messages\":%d,\"recipients\":%d,"
                       "\"limit_recipients\":%d}", a->u.messages, a->u.limit_messages,
                       a->u.recipients, a->u.limit_recipients);
            else
                printf(",\"messages\":null}");
        }
        putchar(']');
    }
    printf("}\n");
}

int cli_status_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    int json = 0;
    if (argc == 2 && strcmp(argv[1], "--json") == 0) {
        json = 1;
    } else if (argc != 1) {
        fprintf(stderr, "usage: roost status [--json]\n");
        return 2;
    }
    const struct config *cfg = ctx->cfg;
    time_t now = time(NULL);
    int up[CONFIG_MAX_LISTENERS] = {0}, all_up = 1;
    for (int i = 0; i < cfg->nlisteners; i++) {
        up[i] = answers(cfg->listeners[i].host, cfg->listeners[i].port);
        all_up &= up[i];
    }
    struct queue_stats q;
    memset(&q, 0, sizeof q);
    int qerr = queue_stats(ctx->data_dir, &q) < 0;
    int bounces = bounces_24h(ctx->data_dir, now);
    struct accounts as = {0};
    int aerr = account_usage(ctx, &as, now) < 0;
    if (json)
        print_json(cfg, up, &q, qerr, bounces, &as, aerr, now);
    else
        print_text(cfg, up, &q, qerr, bounces, &as, aerr, now);
    free(as.a);
    return all_up && !qerr && !aerr ? 0 : 1;
}
