/* cli_queue: `roost queue list`, the messages waiting in DATA/queue/ with
 * their sender and each recipient's state (done / pending, local account or
 * remote). Reads the spool files directly; safe while the server runs: the
 * spool is opened read-only, so nothing is created, cleaned or moved. */
#include "cli/cli.h"
#include "queue/spool.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: roost queue list\n");
    return 2;
}

struct list_state {
    struct spool *spool;
    int count;
    int failed;
};

static void print_one(const char *id, void *arg)
{
    struct list_state *st = arg;
    struct spool_msg *m = NULL;
    int rc = spool_load(st->spool, id, &m);
    if (rc > 0)
        return;   /* delivered and removed while we listed */
    if (rc < 0) {
        fprintf(stderr, "roost: %s: unreadable or corrupt queue file\n", id);
        st->failed = 1;
        return;
    }
    char date[32];
    struct tm tm;
    time_t t = m->arrived;
    if (!gmtime_r(&t, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(date, sizeof date, "%lld", (long long)t);
    printf("%s  %s  %zu bytes  from <%s>\n", m->id, date, m->len, m->sender);
    for (int i = 0; i < m->nrcpt; i++) {
        const struct spool_rcpt *r = &m->rcpts[i];
        printf("    %-7s <%s>%s%s\n", r->done ? "done" : "pending", r->address,
               r->account ? " local " : " remote", r->account ? r->account : "");
    }
    st->count++;
    spool_msg_free(&m);
}

static int queue_list(const struct cli_ctx *ctx)
{
    const char *err = NULL;
    struct list_state st = { 0 };
    st.spool = spool_open_readonly(ctx->data_dir, &err);
    if (!st.spool && err && strcmp(err, "no queue directory") == 0) {
        printf("0 messages queued\n");
        return 0;
    }
    if (!st.spool) {
        fprintf(stderr, "roost: cannot open the queue: %s\n", err ? err : "unknown error");
        return 1;
    }
    int rc = spool_scan(st.spool, print_one, &st);
    spool_close(&st.spool);
    if (rc < 0) {
        fprintf(stderr, "roost: cannot read the queue directory\n");
        return 1;
    }
    printf("%d message%s queued\n", st.count, st.count == 1 ? "" : "s");
    return st.failed ? 1 : 0;
}

int cli_queue_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc == 2 && strcmp(argv[1], "list") == 0)
        return queue_list(ctx);
    return usage();
}
