/* pop3_job: worker-pool round trips for POP3 sessions (see pop3_job.h). */
#include "pop3/pop3_job.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

struct pop3_job *pop3_job_new(struct pop3_session *s)
{
    struct pop3_job *j = xcalloc(1, sizeof *j);
    j->s = s;
    j->data_dir = s->srv->data_dir;
    return j;
}

static void job_work(void *arg)
{
    struct pop3_job *j = arg;
    j->work(j);
}

static void wipe(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static void job_free(struct pop3_job *j)
{
    wipe(&j->user);
    wipe(&j->pass);
    free(j->del_uids);
    free(j->after_uids);
    free(j);
}

static void job_done(void *arg)
{
    struct pop3_job *j = arg;
    struct pop3_session *s = j->s;
    if (s->gone) {
        /* the session may be freed by pop3_job_end: clean up first */
        if (j->cleanup)
            j->cleanup(j);
        pop3_job_end(s);
        job_free(j);
        return;
    }
    pop3_job_end(s);
    j->done(j);
    job_free(j);
    pop3_resume(s);
}

void pop3_job_run(struct pop3_job *j, void (*work)(struct pop3_job *),
                  void (*done)(struct pop3_job *))
{
    j->work = work;
    j->done = done;
    pop3_job_begin(j->s);
    worker_submit(j->s->srv->pool, conn_loop(j->s->conn), job_work, job_done, j);
}
