/* cli_queue: `roost queue ...`, the messages waiting in DATA/queue/.
 *
 *   list                 one block per message: id, arrival, size, sender,
 *                        state; per recipient its state, attempts, next
 *                        attempt and last reply
 *   show ID              the envelope, the header and each recipient's
 *                        history of attempts
 *   retry ID|--all       pending recipients due now
 *   hold ID / release ID the whole message waits / goes on (due now)
 *   delete ID            removed without a notice to the sender
 *   bounce ID            pending recipients failed now, with a DSN
 *
 * Reading opens the spool read-only and replays the state files
 * (rcptstate.h), so nothing is created, cleaned or moved: safe while the
 * server runs. The actions are requests (qctl.h): recorded in the message's
 * state file and acted on by the running server at once, or by the next
 * start. Exit codes: 0 ok, 1 no such message or failure, 2 usage or a
 * malformed queue id. */
#include "cli/cli.h"
#include "queue/qctl.h"
#include "queue/rcptstate.h"
#include "queue/spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: roost queue list\n"
                    "       roost queue show ID\n"
                    "       roost queue retry ID|--all\n"
                    "       roost queue hold|release|delete|bounce ID\n");
    return 2;
}

static void fmt_time(int64_t ms, char *out, size_t outsz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outsz, "%lld", (long long)t);
}

/* A reply for one terminal line: controls become spaces, at most MAX bytes. */
static void one_line(char *out, size_t outsz, const char *s, size_t max)
{
    size_t o = 0;
    for (size_t i = 0; s && s[i] && i < max && o + 1 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = c < ' ' || c == 0x7f ? ' ' : (char)c;
    }
    out[o] = '\0';
}

static void fmt_attempt(const struct rs_attempt *a, char *out, size_t outsz)
{
    char reply[400], code[16];
    one_line(reply, sizeof reply, a->reply ? a->reply : "", 300);
    snprintf(code, sizeof code, "%d", a->code);
    int prefix = a->code > 0 && strncmp(reply, code, strlen(code)) != 0;
    snprintf(out, outsz, "%s%s%s%s%s%s", prefix ? code : "", prefix ? " " : "",
             prefix && a->enhanced[0] ? a->enhanced : "", prefix && a->enhanced[0] ? " " : "",
             reply, a->host ? " (" : "");
    if (a->host) {
        size_t l = strlen(out);
        snprintf(out + l, outsz - l, "%s)", a->host);
    }
}

static const char *rcpt_state(const struct spool_rcpt *r, const struct rs_rcpt *s)
{
    if (r->done || s->state == RS_DELIVERED)
        return "delivered";
    if (s->state == RS_FAILED)
        return "failed";
    return s->attempts ? "deferred" : "pending";
}

static const char *msg_state(const struct rs_msg *st)
{
    if (st->delete_req)
        return "delete-requested";
    if (st->bounce_req)
        return "bounce-requested";
    if (st->held)
        return "held";
    return "active";
}

struct list_state {
    struct spool *spool;
    const char *qdir;
    int count;
    int failed;
};

static void print_one(const char *id, void *arg)
{
    struct list_state *ls = arg;
    struct spool_msg *m = NULL;
    int rc = spool_load(ls->spool, id, &m);
    if (rc > 0)
        return;   /* delivered and removed while we listed */
    if (rc < 0) {
        fprintf(stderr, "roost: %s: unreadable or corrupt queue file\n", id);
        ls->failed = 1;
        return;
    }
    struct rs_msg *st = NULL;
    if (rs_load(ls->qdir, id, m->nrcpt, &st) < 0)
        fprintf(stderr, "roost: %s: unreadable state file\n", id);
    char date[32];
    fmt_time((int64_t)m->arrived * 1000, date, sizeof date);
    printf("%s  %s  %zu bytes  from <%s>  %s\n", m->id, date, m->len, m->sender,
           msg_state(st));
    for (int i = 0; i < m->nrcpt; i++) {
        const struct spool_rcpt *r = &m->rcpts[i];
        const struct rs_rcpt *s = &st->r[i];
        printf("    %-9s <%s>%s%s  attempts=%d", rcpt_state(r, s), r->address,
               r->account ? " local " : " remote", r->account ? r->account : "", s->attempts);
        if (!r->done && s->state == RS_PENDING && s->attempts > 0 && !st->held) {
            char next[32];
            fmt_time(s->next_ms, next, sizeof next);
            printf("  next=%s", next);
        }
        if (s->attempts > 0) {
            char last[800];
            fmt_attempt(&s->last, last, sizeof last);
            printf("  last=\"%s\"", last);
        }
        printf("\n");
    }
    ls->count++;
    rs_free(&st);
    spool_msg_free(&m);
}

static struct spool *open_queue(const struct cli_ctx *ctx, int *empty_r)
{
    const char *err = NULL;
    struct spool *s = spool_open_readonly(ctx->data_dir, &err);
    *empty_r = 0;
    if (!s && err && strcmp(err, "no queue directory") == 0) {
        *empty_r = 1;
        return NULL;
    }
    if (!s)
        fprintf(stderr, "roost: cannot open the queue: %s\n", err ? err : "unknown error");
    return s;
}

static int queue_list(const struct cli_ctx *ctx)
{
    int empty;
    struct list_state ls = { 0 };
    ls.spool = open_queue(ctx, &empty);
    if (!ls.spool && empty) {
        printf("0 messages queued\n");
        return 0;
    }
    if (!ls.spool)
        return 1;
    ls.qdir = spool_dir(ls.spool);
    int rc = spool_scan(ls.spool, print_one, &ls);
    spool_close(&ls.spool);
    if (rc < 0) {
        fprintf(stderr, "roost: cannot read the queue directory\n");
        return 1;
    }
    printf("%d message%s queued\n", ls.count, ls.count == 1 ? "" : "s");
    return ls.failed ? 1 : 0;
}

static int check_id(const char *id)
{
    if (spool_id_valid(id))
        return 0;
    fprintf(stderr, "roost: '%.40s' is not a queue id (20 characters, as `roost queue list` "
                    "shows them)\n", id);
    return 2;
}

static void print_header(const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (data + off)) : len - off;
        size_t vis = n > 0 && data[off + n - 1] == '\r' ? n - 1 : n;
        if (vis == 0)
            break;
        putchar(' ');
        putchar(' ');
        for (size_t i = 0; i < vis; i++) {   /* no terminal control bytes */
            unsigned char c = (unsigned char)data[off + i];
            putchar(c < ' ' && c != '\t' ? '?' : c == 0x7f ? '?' : c);
        }
        putchar('\n');
        off += n + 1;
    }
}

static int queue_show(const struct cli_ctx *ctx, const char *id)
{
    if (check_id(id))
        return 2;
    int empty;
    struct spool *sp = open_queue(ctx, &empty);
    if (!sp && !empty)
        return 1;
    struct spool_msg *m = NULL;
    int rc = sp ? spool_load(sp, id, &m) : 1;
    if (rc != 0) {
        fprintf(stderr, rc > 0 ? "roost: no message %s in the queue\n"
                               : "roost: %s: unreadable or corrupt queue file\n", id);
        spool_close(&sp);
        return 1;
    }
    struct rs_msg *st = NULL;
    rs_load(spool_dir(sp), id, m->nrcpt, &st);
    char date[32];
    fmt_time((int64_t)m->arrived * 1000, date, sizeof date);
    printf("id:        %s\nstate:     %s\nsender:    <%s>\narrived:   %s\nsize:      %zu bytes\n",
           m->id, msg_state(st), m->sender, date, m->len);
    printf("client:    %s\nhelo:      %s\nauth:      %s\nprotocol:  %s\n",
           m->client ? m->client : "-", m->helo ? m->helo : "-",
           m->auth_account ? m->auth_account : "-", m->protocol ? m->protocol : "-");
    if (st->torn)
        printf("note:      %d damaged state record%s ignored\n", st->torn,
               st->torn == 1 ? "" : "s");
    printf("header:\n");
    print_header(m->data, m->len);
    printf("recipients:\n");
    for (int i = 0; i < m->nrcpt; i++) {
        const struct spool_rcpt *r = &m->rcpts[i];
        const struct rs_rcpt *s = &st->r[i];
        printf("  <%s>%s%s  %s  attempts=%d%s\n", r->address, r->account ? " local " : " remote",
               r->account ? r->account : "", rcpt_state(r, s), s->attempts,
               s->gave_up ? "  (gave up: too old)" : "");
        if (!r->done && s->state == RS_PENDING && s->attempts > 0) {
            char next[32];
            fmt_time(s->next_ms, next, sizeof next);
            printf("    next attempt %s%s\n", next, st->held ? " (held)" : "");
        }
        for (int h = 0; h < s->nhist; h++) {
            char t[32], line[800];
            fmt_time(s->hist[h].t_ms, t, sizeof t);
            fmt_attempt(&s->hist[h], line, sizeof line);
            const char *what = s->hist[h].outcome == 'd' ? "delivered"
                             : s->hist[h].outcome == 'f' ? "failed" : "deferred";
            printf("    %s  %-9s %s\n", t, what, line);
        }
    }
    rs_free(&st);
    spool_msg_free(&m);
    spool_close(&sp);
    return 0;
}

static const char *op_done_text(char op)
{
    switch (op) {
    case QCTL_HOLD: return "held";
    case QCTL_RELEASE: return "released";
    case QCTL_RETRY: return "retry requested";
    case QCTL_BOUNCE: return "bounce requested";
    case QCTL_DELETE: return "delete requested";
    }
    return "?";
}

static int request_one(const struct cli_ctx *ctx, const char *id, char op, int quiet_missing)
{
    const char *err = NULL;
    int rc = qctl_request(ctx->data_dir, id, op, &err);
    if (rc > 0) {
        if (!quiet_missing)
            fprintf(stderr, "roost: no message %s in the queue\n", id);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "roost: %s: %s\n", id, err ? err : "failed");
        return 1;
    }
    printf("%s: %s\n", id, op_done_text(op));
    return 0;
}

struct all_state {
    const struct cli_ctx *ctx;
    int count, failed;
};

static void retry_one(const char *id, void *arg)
{
    struct all_state *as = arg;
    int rc = request_one(as->ctx, id, QCTL_RETRY, 1);
    if (rc == 0)
        as->count++;
}

static void print_when(const struct cli_ctx *ctx)
{
    if (qctl_server_running(ctx->data_dir))
        printf("The running server acts on it now.\n");
    else
        printf("No server is running: the next start acts on it.\n");
}

static int queue_action(const struct cli_ctx *ctx, const char *verb, const char *id)
{
    char op = strcmp(verb, "hold") == 0 ? QCTL_HOLD
            : strcmp(verb, "release") == 0 ? QCTL_RELEASE
            : strcmp(verb, "retry") == 0 ? QCTL_RETRY
            : strcmp(verb, "bounce") == 0 ? QCTL_BOUNCE
            : strcmp(verb, "delete") == 0 ? QCTL_DELETE : 0;
    if (!op)
        return usage();
    if (op == QCTL_RETRY && strcmp(id, "--all") == 0) {
        int empty;
        struct spool *sp = open_queue(ctx, &empty);
        struct all_state as = { .ctx = ctx };
        if (sp) {
            if (spool_scan(sp, retry_one, &as) < 0)
                as.failed = 1;
            spool_close(&sp);
        } else if (!empty) {
            return 1;
        }
        printf("%d message%s due now\n", as.count, as.count == 1 ? "" : "s");
        if (as.count)
            print_when(ctx);
        return as.failed ? 1 : 0;
    }
    if (check_id(id))
        return 2;
    int rc = request_one(ctx, id, op, 0);
    if (rc == 0)
        print_when(ctx);
    return rc;
}

int cli_queue_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc == 2 && strcmp(argv[1], "list") == 0)
        return queue_list(ctx);
    if (argc == 3 && strcmp(argv[1], "show") == 0)
        return queue_show(ctx, argv[2]);
    if (argc == 3)
        return queue_action(ctx, argv[1], argv[2]);
    return usage();
}
