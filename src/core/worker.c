/* worker: thread pool whose completions are posted back to the submitting
 * event loop through a mutex-protected queue and a libevent user event. */
#include "core/worker.h"
#include "core/xalloc.h"

#include <event2/thread.h>
#include <pthread.h>
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

struct worker_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail;
    int stopping;
    int nthreads;
    pthread_t *threads;
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
    l->base = event_base_new();
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
    struct worker_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        struct job *j = p->head;
        if (!j) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
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
    pthread_cond_init(&p->cond, NULL);
    p->nthreads = nthreads < 1 ? 1 : nthreads;
    p->threads = xcalloc((size_t)p->nthreads, sizeof *p->threads);
    for (int i = 0; i < p->nthreads; i++)
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
            abort();
    return p;
}

void worker_pool_free(struct worker_pool **pp)
{
    struct worker_pool *p = *pp;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
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
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}
