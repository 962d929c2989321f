/* imap_job: worker-pool round trips for IMAP sessions (imap_int.h: "the
 * life of a command"). The work function runs on a worker and builds its
 * untagged responses into j->out; on the session's loop the output is
 * written first, then DONE runs, then the session resumes. */
#include "imap/imap_int.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "net/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct imap_job *imap_job_new(struct imap_session *s)
{
    struct imap_job *j = xcalloc(1, sizeof *j);
    j->s = s;
    j->data_dir = s->srv->data_dir;
    snprintf(j->account, sizeof j->account, "%s", s->account);
    if (s->sel)
        snprintf(j->mailbox, sizeof j->mailbox, "%s", s->sel->name);
    buf_init(&j->out, IMAP_JOB_OUTPUT_MAX);
    return j;
}

static void job_work(void *arg)
{
    struct imap_job *j = arg;
    j->work(j);
}

static void job_free(struct imap_job *j)
{
    if (j->ctx && j->ctx_free)
        j->ctx_free(j->ctx);
    buf_deinit(&j->out);
    free(j);
}

static void job_done(void *arg)
{
    struct imap_job *j = arg;
    struct imap_session *s = j->s;
    if (s->gone) {
        if (j->cleanup)
            j->cleanup(j);
        imap_job_end(s);
        job_free(j);
        return;
    }
    imap_job_end(s);
    if (j->out.len)
        imap_write(s, j->out.data, j->out.len);
    if (j->done)
        j->done(j);
    job_free(j);
    imap_resume(s);
}

void imap_job_run(struct imap_job *j, void (*work)(struct imap_job *),
                  void (*done)(struct imap_job *))
{
    j->work = work;
    j->done = done;
    imap_job_begin(j->s);
    worker_submit(j->s->srv->pool, j->s->loop, job_work, job_done, j);
}
