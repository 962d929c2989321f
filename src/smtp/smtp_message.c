/* smtp_message: the end of a mail transaction. Adds our Received: field,
 * applies the daily sending limit (checked at DATA/first BDAT, counted
 * atomically when the message is accepted), checks that the From: header
 * of submitted mail belongs to the account (GMime parses the addresses),
 * refuses mail that would take a local mailbox over its quota
 * (smtp_quota.c), DKIM-signs submitted mail on the same worker round trip
 * (smtp_dkim.c), hands the message to the queue and answers 250 only once
 * the queue reports it durable. */
#include "smtp/smtp_int.h"
#include "smtp/smtp_job.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "net/tls.h"
#include "mime/mime.h"
#include "queue/queue.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---------------------------------------------------------------- Received */

static const char *protocol_name(const struct smtp_session *s)
{
    static const char *const names[2][2][2][2] = {
        /* [utf8][esmtp][tls][auth] */
        {{{"SMTP", "SMTPA"}, {"SMTPS", "SMTPSA"}}, {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}}},
        {{{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
         {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}}},
    };
    int utf8 = s->tx && s->tx->params.smtputf8;
    return names[utf8][s->esmtp][smtp_is_tls(s)][s->authenticated];
}

void smtp_add_received(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    int r = buf_appendf(&tx->data, "Received: from %s ([%s])\r\n\tby %s (Roost) with %s id %s",
                        s->helo[0] ? s->helo : "unknown", s->peer, s->srv->cfg->hostname,
                        protocol_name(s), tx->queue_id);
    if (r == 0 && smtp_is_tls(s)) {
        SSL *ssl = conn_ssl(s->conn);
        r = buf_appendf(&tx->data, "\r\n\t(version=%s cipher=%s)", tls_version_name(ssl),
                        tls_cipher_name(ssl));
    }
    if (r == 0 && tx->nrcpt == 1)
        r = buf_appendf(&tx->data, "\r\n\tfor <%s>", tx->rcpts[0].address);
    if (r == 0)
        r = buf_appendf(&tx->data, ";\r\n\t%s\r\n", date);
    if (r < 0)
        abort(); /* the buffer's max leaves 8 KiB for this header */
    tx->header_len = tx->data.len;
}

/* ---------------------------------------------------------------- daily limit */

struct limit_ctx {
    void (*cont)(struct smtp_session *s);
};

static void limit_work(struct smtp_job *j)
{
    struct directory *d = dir_for_thread(j->data_dir, &j->error);
    struct dir_usage u;
    if (!d || dir_send_usage(d, j->account, time(NULL), &u) < 0) {
        j->result = -1;
        return;
    }
    j->result = !dir_usage_allows(&u, j->nrcpt);
}

static void refuse_daily_limit(struct smtp_session *s)
{
    log_info("smtp", "event=reject session=%s queue=%s client=%s account=%s reason=daily-limit"
             " result=550 command=data",
             s->id, s->tx->queue_id, s->peer, s->account);
    metrics_message_rejected(s->lc.kind, MR_RATE_LIMIT);
    smtp_reply(s, "550 5.4.5 Daily user sending limit exceeded");
    if (s->tx->bdat_left)
        smtp_discard(s, s->tx->bdat_left);
    smtp_tx_reset(s);
}

static void limit_done(struct smtp_job *j)
{
    struct smtp_session *s = j->s;
    struct limit_ctx *lc = j->owned;
    void (*cont)(struct smtp_session *) = lc->cont;
    if (j->result < 0) {
        smtp_reply(s, "451 4.3.0 Temporary lookup failure, try again later");
        if (s->tx->bdat_left)
            smtp_discard(s, s->tx->bdat_left);
        smtp_tx_reset(s);
        return;
    }
    if (j->result > 0) {
        refuse_daily_limit(s);
        return;
    }
    cont(s);
}

/* The usage read with the last RCPT (a moment ago) answers on the loop; a
 * worker reads it only when that read failed. The check is early refusal
 * only: the count at the end (final_work, dir_send_count) is atomic and is
 * what enforces the limit. */
void smtp_check_daily_limit(struct smtp_session *s, void (*cont)(struct smtp_session *s))
{
    if (!s->authenticated) {
        cont(s);
        return;
    }
    const struct smtp_tx *tx = s->tx;
    if (tx->usage_known) {
        if (!dir_usage_allows(&tx->usage, tx->nrcpt))
            refuse_daily_limit(s);
        else
            cont(s);
        return;
    }
    struct smtp_job *j = smtp_job_new(s);
    snprintf(j->account, sizeof j->account, "%s", s->account);
    j->nrcpt = s->tx->nrcpt;
    struct limit_ctx *lc = xmalloc(sizeof *lc);
    lc->cont = cont;
    j->owned = lc;
    smtp_job_run(j, limit_work, limit_done);
}

/* ---------------------------------------------------------------- From: */

/* 1 if every address in every From: field is owned by ACCOUNT, 0 if not,
 * -1 on a directory error. */
static int from_owned(struct directory *d, const char *account, const char *hdr, size_t len)
{
    size_t pos = 0;
    char *value;
    int result = 1;
    while (result == 1 && (value = mime_next_from_field(hdr, len, &pos)) != NULL) {
        InternetAddressList *list = internet_address_list_parse(NULL, value);
        free(value);
        int n = list ? internet_address_list_length(list) : 0;
        if (n == 0)
            result = 0;
        for (int i = 0; i < n && result == 1; i++) {
            InternetAddress *ia = internet_address_list_get_address(list, i);
            if (!INTERNET_ADDRESS_IS_MAILBOX(ia)) {
                result = 0;
                break;
            }
            const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            int r = addr ? dir_sender_allowed(d, account, addr) : 0;
            if (r != 1)
                result = r;
        }
        if (list)
            g_object_unref(list);
    }
    return result;
}

/* ---------------------------------------------------------------- completion */

enum { FINAL_OK, FINAL_FROM_NOT_OWNED, FINAL_DAILY_LIMIT, FINAL_ERROR };

static void final_work(struct smtp_job *j)
{
    struct smtp_tx *tx = j->ptr;
    struct directory *d = dir_for_thread(j->data_dir, &j->error);
    if (!d) {
        j->result = FINAL_ERROR;
        return;
    }
    int owned = from_owned(d, j->account, tx->data.data + tx->header_len,
                           tx->data.len - tx->header_len);
    if (owned < 0) {
        j->result = FINAL_ERROR;
        return;
    }
    if (owned == 0) {
        j->result = FINAL_FROM_NOT_OWNED;
        return;
    }
    int r = dir_send_count(d, j->account, tx->nrcpt, time(NULL), NULL);
    j->result = r < 0 ? FINAL_ERROR : r > 0 ? FINAL_DAILY_LIMIT : FINAL_OK;
    if (j->result == FINAL_OK && j->dkim)
        smtp_dkim_sign(d, j->data_dir, tx);
}

static void queued(void *arg, int result, const char *msg_id, const char *error)
{
    struct smtp_session *s = arg;
    if (smtp_job_end(s) != 0)
        return;
    if (result != 0) {
        log_error("smtp", "event=queue-failed session=%s queue=%s client=%s error=\"%s\"", s->id,
                  msg_id, s->peer, error ? error : "?");
        metrics_message_rejected(s->lc.kind, MR_TEMPORARY);
        smtp_reply(s, "451 4.3.0 Error: queue file write error, try again later");
    } else {
        s->messages++;
        s->noprogress = 0;
        s->bad_commands = 0;
        metrics_message_accepted(s->lc.kind);
        metrics_observe(MH_ACCEPT, metrics_since_s(s->data_end_us));
        log_info("smtp", "event=accepted session=%s queue=%s client=%s result=250", s->id, msg_id,
                 s->peer);
        smtp_reply(s, "250 2.0.0 OK %s", msg_id);
        if (__atomic_load_n(&s->srv->shutting_down, __ATOMIC_SEQ_CST)) {
            smtp_reply(s, "421 4.3.2 Service shutting down");
            smtp_close(s);
        }
    }
    smtp_resume(s);
}

static void submit_to_queue(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    struct spool_msg *m = xcalloc(1, sizeof *m);
    memcpy(m->id, tx->queue_id, sizeof m->id);
    m->sender = xstrdup(tx->from);
    m->arrived = time(NULL);
    m->client = xstrdup(s->peer);
    m->helo = xstrdup(s->helo);
    m->auth_account = s->authenticated ? xstrdup(s->account) : NULL;
    m->protocol = xstrdup(protocol_name(s));
    m->nrcpt = tx->nrcpt;
    m->rcpts = tx->rcpts;
    tx->rcpts = NULL;
    tx->nrcpt = 0;
    m->data = buf_steal(&tx->data, &m->len);
    log_info("smtp", "event=data session=%s queue=%s client=%s size=%zu rcpts=%d account=%s",
             s->id, m->id, s->peer, m->len, m->nrcpt, s->authenticated ? s->account : "-");
    smtp_tx_reset(s);
    smtp_job_begin(s);
    queue_submit(m, conn_loop(s->conn), queued, s);
}

static void final_done(struct smtp_job *j)
{
    struct smtp_session *s = j->s;
    switch (j->result) {
    case FINAL_OK:
        submit_to_queue(s);
        return;
    case FINAL_FROM_NOT_OWNED:
        log_info("smtp", "event=reject session=%s queue=%s client=%s account=%s reason=from-not-owned"
                 " result=553 command=data",
                 s->id, s->tx->queue_id, s->peer, s->account);
        metrics_message_rejected(s->lc.kind, MR_POLICY);
        smtp_reply(s, "553 5.7.1 Sender address not owned by this account");
        break;
    case FINAL_DAILY_LIMIT:
        refuse_daily_limit(s);
        return;
    default:
        smtp_reply(s, "451 4.3.0 Temporary lookup failure, try again later");
    }
    smtp_tx_reset(s);
}

static void message_accept(struct smtp_session *s);

void smtp_message_complete(struct smtp_session *s, int oversize, int bare)
{
    struct smtp_tx *tx = s->tx;
    s->state = SS_CMD;
    s->data_end_us = metrics_now_us();
    if (oversize || bare) {
        metrics_message_rejected(s->lc.kind, oversize ? MR_SIZE : MR_BARE_LINE_ENDING);
        log_info("smtp", "event=reject session=%s queue=%s client=%s reason=%s result=%d"
                 " command=data", s->id, tx->queue_id, s->peer, oversize ? "size" : "bare-cr-or-lf",
                 oversize ? 552 : 554);
        if (oversize)
            smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        else
            smtp_reply(s, "554 5.6.0 Message refused: bare CR or LF in message (lines must end with CRLF)");
        smtp_tx_reset(s);
        return;
    }
    smtp_check_quota(s, message_accept);
}

/* After the quota check: straight to the queue, or (submission) the From:
 * and daily-limit checks first. */
static void message_accept(struct smtp_session *s)
{
    if (!s->authenticated) {
        submit_to_queue(s);
        return;
    }
    struct smtp_job *j = smtp_job_new(s);
    snprintf(j->account, sizeof j->account, "%s", s->account);
    j->ptr = s->tx;
    j->dkim = smtp_is_submission(s);
    smtp_job_run(j, final_work, final_done);
}
