/* notify: the change notifier (core/notify.h). A fixed table of registered
 * loops under a mutex; a change posts a copy of the account name to each
 * loop (loop_post), where the loop's handler runs and the copy is freed.
 * Loops are registered at start-up and forgotten at shutdown; in between the
 * table only is read (under the mutex, since the store calls from worker
 * threads). */
#include "core/notify.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NOTIFY_MAX_LOOPS 256

struct notify_slot {
    struct loop *loop;
    notify_fn fn;
};

/* What one loop_post carries: the handler and a copy of the account. */
struct notify_msg {
    notify_fn fn;
    struct loop *loop;
    char *account;
};

static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static struct notify_slot notify_loops[NOTIFY_MAX_LOOPS];
static int notify_nloops;

static void notify_deliver(void *arg);

void notify_register_loop(struct loop *loop, notify_fn fn)
{
    if (!loop || !fn)
        return;
    pthread_mutex_lock(&notify_lock);
    if (notify_nloops < NOTIFY_MAX_LOOPS)
        notify_loops[notify_nloops++] = (struct notify_slot){ loop, fn };
    else
        log_error("notify", "event=too-many-loops max=%d", NOTIFY_MAX_LOOPS);
    pthread_mutex_unlock(&notify_lock);
}

void notify_reset(void)
{
    pthread_mutex_lock(&notify_lock);
    memset(notify_loops, 0, sizeof notify_loops);
    notify_nloops = 0;
    pthread_mutex_unlock(&notify_lock);
}

/* On the loop's thread: the handler, then the copy goes. */
static void notify_deliver(void *arg)
{
    struct notify_msg *m = arg;
    m->fn(m->loop, m->account);
    free(m->account);
    free(m);
}

void notify_mailbox_changed(const char *account)
{
    if (!account)
        return;
    pthread_mutex_lock(&notify_lock);
    for (int i = 0; i < notify_nloops; i++) {
        struct notify_msg *m = xmalloc(sizeof *m);
        m->fn = notify_loops[i].fn;
        m->loop = notify_loops[i].loop;
        m->account = xstrdup(account);
        loop_post(m->loop, notify_deliver, m);
    }
    pthread_mutex_unlock(&notify_lock);
}
