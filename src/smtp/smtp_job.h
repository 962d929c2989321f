/* smtp_job: runs a piece of slow work (directory lookups, password
 * hashing, header checks) for a session on the worker pool and continues
 * the session on its loop afterwards. If the session's connection closed
 * meanwhile, the continuation is skipped and the session freed. */
#ifndef ROOST_SMTP_JOB_H
#define ROOST_SMTP_JOB_H

#include "smtp/smtp_int.h"

struct smtp_job {
    struct smtp_session *s;
    void (*work)(struct smtp_job *j);   /* worker thread: no session access */
    void (*done)(struct smtp_job *j);   /* session's loop */
    const char *data_dir;
    char addr[SMTP_MAX_PATH + 1];
    char account[320];
    char app_name[128];
    char *user, *pass;                  /* wiped and freed with the job */
    int result;
    int nrcpt;
    int dkim;                           /* final check: DKIM-sign if OK */
    uint64_t room;                      /* RCPT: the mailbox's room (quota.c) */
    char auth_account[320];             /* RCPT: the authenticated sender, or "" */
    struct dir_usage usage;             /* RCPT: its daily usage, when usage_known */
    int usage_known;
    const char *error;
    void *ptr;                          /* job-specific, borrowed */
    void *owned;                        /* job-specific, free()d with the job */
};

struct smtp_job *smtp_job_new(struct smtp_session *s);
void smtp_job_run(struct smtp_job *j, void (*work)(struct smtp_job *), void (*done)(struct smtp_job *));

#endif
