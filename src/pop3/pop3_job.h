/* pop3_job: runs a piece of slow work (password check, directory lookup,
 * maildrop lock and snapshot, UPDATE, reading a message chunk) for a POP3
 * session on the worker pool and continues the session on its loop
 * afterwards. If the session's connection closed meanwhile, the
 * continuation is skipped, CLEANUP (if any) runs on the loop, and the
 * session is freed once its last job has come back. */
#ifndef ROOST_POP3_JOB_H
#define ROOST_POP3_JOB_H

#include "pop3/pop3_int.h"

#include <time.h>

struct pop3_job {
    struct pop3_session *s;
    void (*work)(struct pop3_job *j);     /* worker thread: no session access */
    void (*done)(struct pop3_job *j);     /* session's loop */
    void (*cleanup)(struct pop3_job *j);  /* session's loop, when the session is gone */
    const char *data_dir;
    char account[320];
    char app_name[128];
    char *user, *pass;                    /* wiped and freed with the job */
    int result;
    int result2;
    const char *error;
    struct dir_account acct;
    time_t since;
    struct store_pop *pop;                /* handed over to the session by done */
    enum dir_pop_after after;
    uint32_t *del_uids, *after_uids;      /* UPDATE: free()d with the job */
    int ndel, nafter;
    struct pop3_retr *retr;               /* borrowed from the session */
};

struct pop3_job *pop3_job_new(struct pop3_session *s);
void pop3_job_run(struct pop3_job *j, void (*work)(struct pop3_job *),
                  void (*done)(struct pop3_job *));

#endif
