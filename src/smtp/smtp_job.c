/* smtp_job: worker-pool round trips for SMTP sessions (see smtp_job.h). */
#include "smtp/smtp_job.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "net/conn.h"

#include <stdlib.h>
#include <string.h>

struct smtp_job *smtp_job_new(struct smtp_session *s)
{
    struct smtp_job *j = xcalloc(1, sizeof *j);
    j->s = s;
    j->data_dir = s->srv->data_dir;
    return j;
}

static void job_work(void *arg)
{
    struct smtp_job *j = arg;
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

static void job_done(void *arg)
{
    struct smtp_job *j = arg;
    struct smtp_session *s = j->s;
    if (smtp_job_end(s) == 0) {
        j->done(j);
        wipe(&j->user);
        wipe(&j->pass);
        free(j->owned);
        free(j);
        smtp_resume(s);
        return;
    }
    wipe(&j->user);
    wipe(&j->pass);
    free(j->owned);
    free(j);
}

void smtp_job_run(struct smtp_job *j, void (*work)(struct smtp_job *), void (*done)(struct smtp_job *))
{
    j->work = work;
    j->done = done;
    smtp_job_begin(j->s);
    worker_submit(j->s->srv->pool, conn_loop(j->s->conn), job_work, job_done, j);
}
