/* serve_compact: pack compaction inside `roost serve`. A timer on the main
 * loop fires every [store] compact_interval; unless the previous pass is
 * still running, it hands one pass to the worker pool (SQLite, reading and
 * fdatasync of packs: never on a loop). The pass takes the accounts due
 * (store_compact_due.c: a change left a pack partly live, a delivery
 * rotated away from a pack holding mail, retired packs wait) and runs
 * store_compact_account on each; an account whose retired packs are still
 * in their grace period stays due for the next pass, which removes them.
 * When the set overflowed, every account store under DATA/mail is looked
 * at. Each pack is rewritten in its own write transaction, so deliveries
 * into the account wait at most one pack's copy. `running` is touched on
 * the main loop's thread only (the timer and the job's done). */
#include "cli/serve_compact.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "store/store.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct event *timer;
static struct worker_pool *pool;
static struct loop *main_loop;
static const char *data_dir;
static int running;

struct pass {
    char **names;
    size_t n;
    int all;
};

static void pass_work(void *arg)
{
    struct pass *p = arg;
    p->names = store_compact_due_take(&p->n, &p->all);
    if (p->all) {   /* the set overflowed: every account store */
        for (size_t i = 0; i < p->n; i++)
            free(p->names[i]);
        free(p->names);
        store_compact_all_accounts(data_dir, &p->names, &p->n);   /* none listed: nothing to do */
    }
    uint64_t rewritten = 0, removed = 0, freed = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct store_compact_stats st;
        const char *err = NULL;
        int rc = store_compact_account(data_dir, p->names[i], &st, &err);
        char qb[LOG_QSIZE];
        log_q(qb, sizeof qb, p->names[i], strlen(p->names[i]));
        if (rc < 0)
            log_warn("store", "event=compact-pass-failed account=%s error=\"%s\"", qb,
                     err ? err : "?");
        if (rc == 0 && st.packs_waiting > 0)
            store_compact_due_add(p->names[i]);   /* remove them once the grace is over */
        if (rc == 0 && (st.packs_rewritten || st.packs_emptied || st.packs_removed))
            log_info("store", "event=compacted account=%s rewritten=%" PRIu64 " moved=%" PRIu64
                     " copied=%" PRIu64 " removed=%" PRIu64 " freed=%" PRIu64
                     " waiting=%" PRIu64,
                     qb, st.packs_rewritten + st.packs_emptied, st.messages_moved,
                     st.bytes_copied, st.packs_removed, st.bytes_freed, st.packs_waiting);
        rewritten += st.packs_rewritten + st.packs_emptied;
        removed += st.packs_removed;
        freed += st.bytes_freed;
    }
    if (p->n > 0)
        log_debug("store", "event=compact-pass accounts=%zu rewritten=%" PRIu64
                  " removed=%" PRIu64 " freed=%" PRIu64,
                  p->n, rewritten, removed, freed);
}

static void pass_done(void *arg)
{
    struct pass *p = arg;
    for (size_t i = 0; i < p->n; i++)
        free(p->names[i]);
    free(p->names);
    free(p);
    running = 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (running)
        return;   /* never two passes at once */
    running = 1;
    worker_submit(pool, main_loop, pass_work, pass_done, xcalloc(1, sizeof(struct pass)));
}

void serve_compact_start(const char *dir, struct worker_pool *wp, struct loop *loop,
                         unsigned interval, unsigned grace)
{
    store_compact_grace_set((int64_t)grace);
    if (interval == 0)
        return;
    data_dir = dir;
    pool = wp;
    main_loop = loop;
    store_compact_due_enable(1);
    timer = event_new(loop_base(loop), -1, EV_PERSIST, on_timer, NULL);
    struct timeval tv = { (time_t)interval, 0 };
    if (!timer || event_add(timer, &tv) < 0)
        log_error("store", "event=compact-timer-failed");
}

void serve_compact_stop(void)
{
    store_compact_due_enable(0);
    if (timer)
        event_free(timer);
    timer = NULL;
}
