/* smtp_quota: mail for a local account whose mailbox is full (RFC 9208
 * quota, the directory's accounts.quota_bytes; the store keeps the usage).
 *
 * RCPT TO: a local recipient whose mailbox is already at or over its quota
 * gets "552 5.2.2 Mailbox full" (smtp_cmds.c asks smtp_quota_full on the
 * worker). End of DATA/BDAT: if the message would take any local
 * recipient's mailbox over its quota, the whole transaction is refused with
 * the same reply before anything is queued (one SMTP reply covers every
 * recipient; the sending server bounces it, as for any 5xx). Once a
 * message has been answered 250 it is delivered whatever the quota, since
 * the 250 promised it. A failure to read the usage never blocks mail
 * (logged; the store's own checks still hold for IMAP). */
#include "smtp/smtp_int.h"
#include "smtp/smtp_job.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "store/store_imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int smtp_quota_full(struct directory *d, const char *data_dir, const char *account,
                    uint64_t adding)
{
    struct dir_account a;
    int r = dir_account_get(d, account, &a);
    if (r != 0)
        return r < 0 ? -1 : 0;
    if (a.quota_bytes == 0)
        return 0;
    struct store_usage u;
    const char *err = NULL;
    if (store_usage_get(data_dir, account, &u, &err) < 0) {
        log_warn("smtp", "event=quota-unknown account=%s error=\"%s\"", account,
                 err ? err : "?");
        return 0;
    }
    return adding == 0 ? u.bytes >= a.quota_bytes : u.bytes + adding > a.quota_bytes;
}

/* What the DATA check needs from the transaction, copied for the worker:
 * one allocation (freed with the job even if the session goes away), the
 * local accounts packed NUL-separated after the struct. */
struct quota_ctx {
    void (*cont)(struct smtp_session *s);
    uint64_t len;
    int n;
    char accounts[];
};

static void quota_work(struct smtp_job *j)
{
    struct quota_ctx *qc = j->owned;
    struct directory *d = dir_for_thread(j->data_dir, &j->error);
    j->result = 0;
    if (!d)
        return;   /* the directory's own errors come later, with their replies */
    const char *acct = qc->accounts;
    for (int i = 0; i < qc->n && j->result == 0; i++, acct += strlen(acct) + 1) {
        if (smtp_quota_full(d, j->data_dir, acct, qc->len) > 0) {
            j->result = 1;
            snprintf(j->account, sizeof j->account, "%s", acct);
        }
    }
}

int smtp_quota_tx_over(struct directory *d, const char *data_dir, const struct smtp_tx *tx,
                       char *account_r, size_t account_sz)
{
    for (int i = 0; i < tx->nrcpt; i++) {
        const char *acct = tx->rcpts[i].account;
        if (acct && smtp_quota_full(d, data_dir, acct, tx->data.len) > 0) {
            snprintf(account_r, account_sz, "%s", acct);
            return 1;
        }
    }
    return 0;
}

void smtp_refuse_over_quota(struct smtp_session *s, const char *account)
{
    char q[LOG_QSIZE];
    log_info("smtp", "event=reject session=%s queue=%s client=%s to-account=%s"
             " reason=over-quota result=552 command=data", s->id, s->tx->queue_id, s->peer,
             log_q(q, sizeof q, account, strlen(account)));
    metrics_message_rejected(s->lc.kind, MR_QUOTA);
    smtp_reply(s, "552 5.2.2 Mailbox full");
    smtp_tx_reset(s);
}

static void quota_done(struct smtp_job *j)
{
    struct smtp_session *s = j->s;
    struct quota_ctx *qc = j->owned;
    if (j->result > 0) {
        smtp_refuse_over_quota(s, j->account);
        return;
    }
    qc->cont(s);
}

void smtp_check_quota(struct smtp_session *s, void (*cont)(struct smtp_session *s))
{
    struct smtp_tx *tx = s->tx;
    size_t total = 0;
    int n = 0;
    for (int i = 0; i < tx->nrcpt; i++) {
        if (tx->rcpts[i].account) {
            total += strlen(tx->rcpts[i].account) + 1;
            n++;
        }
    }
    if (n == 0) {
        cont(s);
        return;
    }
    struct quota_ctx *qc = xmalloc(sizeof *qc + total);
    qc->cont = cont;
    qc->len = tx->data.len;
    qc->n = n;
    char *p = qc->accounts;
    for (int i = 0; i < tx->nrcpt; i++) {
        if (tx->rcpts[i].account) {
            size_t l = strlen(tx->rcpts[i].account) + 1;
            memcpy(p, tx->rcpts[i].account, l);
            p += l;
        }
    }
    struct smtp_job *j = smtp_job_new(s);
    j->owned = qc;
    smtp_job_run(j, quota_work, quota_done);
}
