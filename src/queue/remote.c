/* remote: a placeholder for the outbound transport (remote.h) so that this
 * build links and runs: every attempt answers every recipient DEFERRED with
 * "outbound delivery is not built in this build", asynchronously on the
 * queue's loop. The real transport replaces this file; no scheduling logic
 * lives here. Attempts still pending at remote_stop are answered then. */
#include "queue/remote.h"
#include "core/worker.h"
#include "core/xalloc.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending {
    struct pending *prev, *next;
    struct event *ev;
    int n;
    int *idx;
    remote_done_fn done;
    void *arg;
};

static struct loop *remote_loop;
static struct pending *pending_list;

static void answer(struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        pending_list = p->next;
    if (p->next)
        p->next->prev = p->prev;
    struct remote_result *res = xcalloc((size_t)p->n ? (size_t)p->n : 1, sizeof *res);
    for (int i = 0; i < p->n; i++) {
        res[i].idx = p->idx[i];
        res[i].outcome = RCPT_DEFERRED;
        snprintf(res[i].enhanced, sizeof res[i].enhanced, "4.4.0");
        res[i].reply = xstrdup("outbound delivery is not built in this build");
    }
    p->done(p->arg, res, p->n);
    for (int i = 0; i < p->n; i++)
        free(res[i].reply);
    free(res);
    event_free(p->ev);
    free(p->idx);
    free(p);
}

static void fire(evutil_socket_t fd, short what, void *arg)
{
    answer(arg);
}

int remote_start(const struct config *cfg, struct loop *loop, const char **error_r)
{
    remote_loop = loop;
    return 0;
}

void remote_stop(void)
{
    while (pending_list)
        answer(pending_list);
    remote_loop = NULL;
}

void remote_deliver(const struct remote_attempt *a, remote_done_fn done, void *arg)
{
    struct pending *p = xcalloc(1, sizeof *p);
    p->n = a->nrcpt;
    p->idx = xcalloc((size_t)a->nrcpt ? (size_t)a->nrcpt : 1, sizeof *p->idx);
    memcpy(p->idx, a->rcpts, sizeof *p->idx * (size_t)a->nrcpt);
    p->done = done;
    p->arg = arg;
    p->next = pending_list;
    if (pending_list)
        pending_list->prev = p;
    pending_list = p;
    static const struct timeval now = { 0, 0 };
    if (!remote_loop || !(p->ev = evtimer_new(loop_base(remote_loop), fire, p)) ||
        evtimer_add(p->ev, &now) < 0)
        abort();   /* remote_start was not called: a wiring bug */
}
