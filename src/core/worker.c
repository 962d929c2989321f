/* worker: thread pool whose completions are posted back to the submitting
 * event loop through a mutex-protected queue and a libevent user event.
 *
 * Idle workers wait each on a semaphore of their own, on a stack: a new
 * job wakes the worker that went idle last (its stack and caches are the
 * warmest), if any is idle (a busy one takes queued jobs when it is done),
 * after the pool's lock is released, so the woken thread does not block at
 * once on the lock its waker still holds. */
#include "core/worker.h"
#include "core/xalloc.h"

#include <event2/thread.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

struct job {
    struct job *next;
    struct loop *loop;
    worker_fn work, done;
    void *arg;
    int counted;    /* loop_post_job: ends a loop_job_begin */
};

struct loop {
    struct event_base *base;
    struct event *wake;
    pthread_mutex_t lock;
    struct job *done_head, *done_tail;
    int pending;                  /* atomic: submitted, done not yet run */
    void *slots[LOOP_SLOT_COUNT];
};

struct worker {
    struct worker_pool *pool;
    struct worker *next_idle;
    sem_t wake;
    pthread_t thread;
};

struct worker_pool {
    pthread_mutex_t lock;
    struct job *head, *tail;
    struct worker *idle;          /* stack: the last to go idle first */
    int stopping;
    int nthreads;
    struct worker *workers;
};

static void loop_run_completions(evutil_socket_t fd, short what, void *arg)
{
    struct loop *l = arg;
    pthread_mutex_lock(&l->lock);
    struct job *j = l->done_head;
    l->done_head = l->done_tail = NULL;
    pthread_mutex_unlock(&l->lock);
    while (j) {
        struct job *next = j->next;
        if (j->work || j->counted)
            __atomic_sub_fetch(&l->pending, 1, __ATOMIC_RELAXED);
        if (j->done)
            j->done(j->arg);
        free(j);
        j = next;
    }
}

static void use_pthreads(void)
{
    evthread_use_pthreads();
}

struct loop *loop_new(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, use_pthreads);
    struct loop *l = xcalloc(1, sizeof *l);
    /* The change list folds an event's add and delete in one turn of the
     * loop (a reply's write event, conn.c) into no epoll_ctl at all. */
    struct event_config *cfg = event_config_new();
    if (!cfg)
        abort();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    l->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!l->base)
        abort();
    pthread_mutex_init(&l->lock, NULL);
    l->wake = event_new(l->base, -1, 0, loop_run_completions, l);
    return l;
}

void loop_free(struct loop **lp)
{
    struct loop *l = *lp;
    if (!l)
        return;
    loop_run_completions(-1, 0, l);
    event_free(l->wake);
    event_base_free(l->base);
    pthread_mutex_destroy(&l->lock);
    free(l);
    *lp = NULL;
}

struct event_base *loop_base(struct loop *l) { return l->base; }
int loop_pending_jobs(struct loop *l) { return __atomic_load_n(&l->pending, __ATOMIC_RELAXED); }
void loop_set_slot(struct loop *l, enum loop_slot slot, void *p) { l->slots[slot] = p; }
void *loop_get_slot(struct loop *l, enum loop_slot slot) { return l->slots[slot]; }

static void post_done(struct job *j)
{
    struct loop *l = j->loop;
    j->next = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->done_tail)
        l->done_tail->next = j;
    else
        l->done_head = j;
    l->done_tail = j;
    pthread_mutex_unlock(&l->lock);
    event_active(l->wake, 0, 0);
}

void loop_post(struct loop *l, worker_fn fn, void *arg)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->loop = l;
    j->done = fn;
    j->arg = arg;
    post_done(j);
}

void loop_job_begin(struct loop *l)
{
    __atomic_add_fetch(&l->pending, 1, __ATOMIC_RELAXED);
}

void loop_post_job(struct loop *l, worker_fn done, void *arg)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->loop = l;
    j->done = done;
    j->arg = arg;
    j->counted = 1;
    post_done(j);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct worker_pool *p = w->pool;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        struct job *j = p->head;
        if (!j) {
            if (p->stopping) {
                pthread_mutex_unlock(&p->lock);
                return NULL;
            }
            w->next_idle = p->idle;
            p->idle = w;
            pthread_mutex_unlock(&p->lock);
            while (sem_wait(&w->wake) != 0) {
            }
            continue;
        }
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->work(j->arg);
        if (j->loop)
            post_done(j);
        else
            free(j);
    }
}

struct worker_pool *worker_pool_new(int nthreads)
{
    struct worker_pool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->nthreads = nthreads < 1 ? 1 : nthreads;
    p->workers = xcalloc((size_t)p->nthreads, sizeof *p->workers);
    for (int i = 0; i < p->nthreads; i++) {
        struct worker *w = &p->workers[i];
        w->pool = p;
        if (sem_init(&w->wake, 0, 0) != 0)
            abort();
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            abort();
    }
    return p;
}

void worker_pool_free(struct worker_pool **pp)
{
    struct worker_pool *p = *pp;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    p->idle = NULL;
    pthread_mutex_unlock(&p->lock);
    /* a worker that is not waiting yet finds the semaphore posted */
    for (int i = 0; i < p->nthreads; i++)
        sem_post(&p->workers[i].wake);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (int i = 0; i < p->nthreads; i++)
        sem_destroy(&p->workers[i].wake);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
    *pp = NULL;
}

void worker_submit(struct worker_pool *p, struct loop *l, worker_fn work,
                   worker_fn done, void *arg)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->loop = done ? l : NULL;
    j->work = work;
    j->done = done;
    j->arg = arg;
    if (j->loop)
        __atomic_add_fetch(&l->pending, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    struct worker *w = p->idle;
    if (w)
        p->idle = w->next_idle;
    pthread_mutex_unlock(&p->lock);
    if (w)
        sem_post(&w->wake);
}
