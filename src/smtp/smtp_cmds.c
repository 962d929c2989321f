/* smtp_cmds: the SMTP command handlers (RFC 5321 and extensions). Each
 * handler checks the session state, answers at once or starts a job and
 * answers from its continuation. Reply texts follow DESIGN.md (Gmail's
 * wording where users search for it). */
#include "smtp/smtp_int.h"
#include "smtp/smtp_job.h"
#include "smtp/smtp_srs.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "auth/throttle.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "net/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>


/* ---------------------------------------------------------------- helpers */

static void lower_copy(char *dst, size_t dstsz, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < dstsz; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] + 32) : src[i];
    dst[i] = '\0';
}

static int need_helo(struct smtp_session *s)
{
    if (s->helo_seen)
        return 0;
    smtp_reply(s, "503 5.5.1 EHLO/HELO first.");
    smtp_count_bad(s);
    return 1;
}

static int noprogress(struct smtp_session *s)
{
    if (++s->noprogress > SMTP_MAX_NOPROGRESS_COMMANDS) {
        smtp_reply(s, "421 4.7.0 Too many commands without progress, closing connection");
        smtp_close(s);
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- EHLO/HELO */

static void cmd_helo(struct smtp_session *s, const struct smtp_cmd *c, int esmtp)
{
    if (noprogress(s))
        return;
    if (c->arglen == 0 || !smtp_helo_valid(c->arg, c->arglen)) {
        smtp_reply(s, "501 5.5.4 Empty or invalid %s argument", esmtp ? "EHLO" : "HELO");
        smtp_count_bad(s);
        return;
    }
    smtp_tx_reset(s);
    s->helo_seen = 1;
    s->esmtp = esmtp;
    size_t n = c->arglen < sizeof s->helo - 1 ? c->arglen : sizeof s->helo - 1;
    memcpy(s->helo, c->arg, n);
    s->helo[n] = '\0';
    const char *host = s->srv->cfg->hostname;
    if (!esmtp) {
        smtp_reply(s, "250 %s at your service", host);
        return;
    }
    smtp_reply(s, "250-%s at your service, [%s]", host, s->peer);
    smtp_reply(s, "250-SIZE %zu", s->srv->cfg->max_message_size);
    smtp_reply(s, "250-8BITMIME");
    if (!smtp_is_tls(s) && tls_available())
        smtp_reply(s, "250-STARTTLS");
    if (smtp_is_tls(s) && smtp_is_submission(s) && !s->authenticated)
        smtp_reply(s, "250-AUTH PLAIN LOGIN");
    smtp_reply(s, "250-ENHANCEDSTATUSCODES");
    smtp_reply(s, "250-PIPELINING");
    smtp_reply(s, "250-CHUNKING");
    smtp_reply(s, "250 SMTPUTF8");
}

/* ---------------------------------------------------------------- STARTTLS */

static void cmd_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (c->arglen) {
        smtp_reply(s, "501 5.5.4 Syntax error (no parameters allowed)");
        smtp_count_bad(s);
        return;
    }
    if (smtp_is_tls(s)) {
        smtp_reply(s, "503 5.5.1 TLS already active");
        smtp_count_bad(s);
        return;
    }
    if (!tls_available()) {
        smtp_reply(s, "454 4.7.0 TLS not available due to temporary reason");
        return;
    }
    smtp_reply(s, "220 2.0.0 Ready to start TLS");
    /* RFC 3207 4.2: forget everything learnt before TLS. */
    smtp_tx_reset(s);
    s->helo_seen = 0;
    s->helo[0] = '\0';
    s->state = SS_STARTTLS;
    long discarded = conn_starttls(s->conn);
    if (discarded > 0)
        log_info("smtp", "event=starttls-discarded session=%s client=%s bytes=%ld", s->id,
                 s->peer, discarded);
}

/* ---------------------------------------------------------------- AUTH */

static void auth_finish_sasl(struct smtp_session *s)
{
    if (s->sasl) {
        gsasl_finish(s->sasl);
        s->sasl = NULL;
    }
    s->state = SS_CMD;
}

static void auth_work(struct smtp_job *j)
{
    struct directory *d = dir_for_thread(j->data_dir, &j->error);
    if (!d) {
        j->result = DIR_AUTH_ERROR;
        return;
    }
    j->result = dir_authenticate(d, j->user, j->pass, j->account, j->app_name);
}

static void auth_done(struct smtp_job *j)
{
    struct smtp_session *s = j->s;
    char q[LOG_QSIZE];
    const char *user = log_q(q, sizeof q, j->user, strlen(j->user));
    switch (j->result) {
    case DIR_AUTH_OK:
        throttle_succeeded(j->account, s->peer);
        s->authenticated = 1;
        snprintf(s->account, sizeof s->account, "%s", j->account);
        snprintf(s->app_name, sizeof s->app_name, "%s", j->app_name);
        s->bad_commands = 0;
        metrics_login(s->lc.kind, ML_OK);
        log_info("smtp", "event=auth session=%s client=%s mech=%s result=ok account=%s app_password=%s",
                 s->id, s->peer, s->sasl_mech, s->account, s->app_name[0] ? s->app_name : "-");
        smtp_reply(s, "235 2.7.0 Accepted");
        return;
    case DIR_AUTH_APP_PASSWORD_REQUIRED:
        throttle_failed(j->user, s->peer, time(NULL));
        metrics_login(s->lc.kind, ML_APP_PASSWORD_REQUIRED);
        log_info("smtp", "event=auth session=%s client=%s mech=%s result=app-password-required user=%s",
                 s->id, s->peer, s->sasl_mech, user);
        smtp_reply(s, "534 5.7.9 Application-specific password required");
        break;
    case DIR_AUTH_FAIL:
        throttle_failed(j->user, s->peer, time(NULL));
        metrics_login(s->lc.kind, ML_BAD_PASSWORD);
        log_info("smtp", "event=auth session=%s client=%s mech=%s result=fail user=%s", s->id,
                 s->peer, s->sasl_mech, user);
        smtp_reply(s, "535 5.7.8 Username and Password not accepted");
        break;
    default:
        metrics_login(s->lc.kind, ML_ERROR);
        log_error("smtp", "event=auth session=%s client=%s result=error error=\"%s\"", s->id,
                  s->peer, j->error ? j->error : "directory");
        smtp_reply(s, "454 4.7.0 Temporary authentication failure");
        return;
    }
    smtp_count_bad(s);
}

/* The SASL exchange is complete: verify the captured credentials. */
static void auth_verify(struct smtp_session *s)
{
    char *user = s->creds.user, *pass = s->creds.pass;
    s->creds.user = s->creds.pass = NULL;
    if (!user || !pass) {
        free(user);
        if (pass) {
            explicit_bzero(pass, strlen(pass));
            free(pass);
        }
        metrics_login(s->lc.kind, ML_BAD_PASSWORD);
        smtp_reply(s, "535 5.7.8 Username and Password not accepted");
        smtp_count_bad(s);
        return;
    }
    char lower[320];
    lower_copy(lower, sizeof lower, user);
    if (!throttle_allowed(lower, s->peer, time(NULL))) {
        char q[LOG_QSIZE];
        metrics_login(s->lc.kind, ML_THROTTLED);
        log_info("smtp", "event=auth session=%s client=%s result=throttled user=%s", s->id,
                 s->peer, log_q(q, sizeof q, user, strlen(user)));
        smtp_reply(s, "454 4.7.0 Too many login attempts, please try again later");
        explicit_bzero(pass, strlen(pass));
        free(pass);
        free(user);
        return;
    }
    struct smtp_job *j = smtp_job_new(s);
    j->user = xstrdup(lower);
    free(user);
    j->pass = pass;
    smtp_job_run(j, auth_work, auth_done);
}

/* One SASL step with INPUT (base64, NUL-terminated). */
static void auth_step(struct smtp_session *s, const char *input)
{
    char *out = NULL;
    int r = gsasl_step64(s->sasl, input, &out);
    if (r == GSASL_NEEDS_MORE) {
        smtp_reply(s, "334 %s", out ? out : "");
        gsasl_free(out);
        s->state = SS_AUTH;
        return;
    }
    gsasl_free(out);
    auth_finish_sasl(s);
    if (r == GSASL_OK) {
        auth_verify(s);
        return;
    }
    if (r == GSASL_BASE64_ERROR || r == GSASL_MECHANISM_PARSE_ERROR) {
        smtp_reply(s, "501 5.5.2 Cannot decode response");
    } else {
        metrics_login(s->lc.kind, ML_BAD_PASSWORD);
        smtp_reply(s, "535 5.7.8 Username and Password not accepted");
        throttle_failed(NULL, s->peer, time(NULL));
    }
    smtp_count_bad(s);
}

void smtp_auth_response(struct smtp_session *s, const char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        auth_finish_sasl(s);
        smtp_reply(s, "501 5.7.0 Authentication aborted");
        smtp_count_bad(s);
        return;
    }
    auth_step(s, line);
}

static void cmd_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (!smtp_is_submission(s)) {
        smtp_reply(s, "503 5.5.1 AUTH is not available on this port; use submission (587 or 465)");
        smtp_count_bad(s);
        return;
    }
    if (!smtp_is_tls(s)) {
        smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        smtp_count_bad(s);
        return;
    }
    if (need_helo(s))
        return;
    if (s->authenticated) {
        smtp_reply(s, "503 5.5.1 Already authenticated");
        smtp_count_bad(s);
        return;
    }
    if (s->tx) {
        smtp_reply(s, "503 5.5.1 AUTH not allowed during a mail transaction");
        smtp_count_bad(s);
        return;
    }
    char mech[21];
    const char *ir = NULL;
    size_t irlen = 0;
    if (smtp_parse_auth(c->arg, c->arglen, mech, &ir, &irlen) < 0) {
        smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        smtp_count_bad(s);
        return;
    }
    if (strcmp(mech, "PLAIN") != 0 && strcmp(mech, "LOGIN") != 0) {
        smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
        smtp_count_bad(s);
        return;
    }
    if (!throttle_allowed(NULL, s->peer, time(NULL))) {
        metrics_login(s->lc.kind, ML_THROTTLED);
        smtp_reply(s, "454 4.7.0 Too many login attempts, please try again later");
        return;
    }
    if (sasl_server_begin(mech, &s->creds, &s->sasl) < 0) {
        smtp_reply(s, "454 4.7.0 Temporary authentication failure");
        return;
    }
    snprintf(s->sasl_mech, sizeof s->sasl_mech, "%s", mech);
    if (!ir) {
        auth_step(s, "");
        return;
    }
    char *irs = xstrndup(ir, irlen);
    if (strcmp(irs, "=") == 0)
        irs[0] = '\0';
    if (strcmp(mech, "LOGIN") == 0) {
        /* RFC 4954 clients may send the user name as an initial response:
         * skip the server's "Username:" prompt. */
        char *out = NULL;
        gsasl_step64(s->sasl, "", &out);
        gsasl_free(out);
    }
    auth_step(s, irs);
    explicit_bzero(irs, strlen(irs));
    free(irs);
}

/* ---------------------------------------------------------------- MAIL */

static void mail_accept(struct smtp_session *s, const char *from, const struct smtp_mail_params *p)
{
    struct smtp_tx *tx = xcalloc(1, sizeof *tx);
    snprintf(tx->from, sizeof tx->from, "%s", from);
    tx->params = *p;
    tx->rcpts = xcalloc((size_t)s->srv->cfg->max_recipients, sizeof *tx->rcpts);
    tx->rooms = xcalloc((size_t)s->srv->cfg->max_recipients, sizeof *tx->rooms);
    spool_new_id(tx->queue_id);
    s->tx = tx;
    char q[LOG_QSIZE];
    log_info("smtp", "event=mail session=%s queue=%s client=%s from=%s size=%llu result=250",
             s->id, tx->queue_id, s->peer, log_q(q, sizeof q, from, strlen(from)),
             p->has_size ? p->size : 0ULL);
    smtp_reply(s, "250 2.1.0 OK");
}

static void sender_work(struct smtp_job *j)
{
    struct directory *d = dir_for_thread(j->data_dir, &j->error);
    j->result = d ? dir_sender_allowed(d, j->account, j->addr) : -1;
}

static void sender_done(struct smtp_job *j)
{
    struct smtp_session *s = j->s;
    if (j->result < 0) {
        smtp_reply(s, "451 4.3.0 Temporary lookup failure, try again later");
        return;
    }
    if (j->result == 0) {
        char q[LOG_QSIZE];
        metrics_message_rejected(s->lc.kind, MR_POLICY);
        log_info("smtp", "event=reject session=%s client=%s account=%s from=%s reason=sender-not-owned"
                 " result=553 command=mail", s->id, s->peer, s->account,
                 log_q(q, sizeof q, j->addr, strlen(j->addr)));
        smtp_reply(s, "553 5.7.1 Sender address not owned by this account");
        return;
    }
    mail_accept(s, j->addr, j->owned);
}

/* A refused MAIL or RCPT command: the reply code and why, for `roost log`. */
static void log_cmd_reject(struct smtp_session *s, const char *cmd, int code, const char *reason)
{
    log_info("smtp", "event=reject session=%s%s%s client=%s command=%s result=%d reason=%s", s->id,
             s->tx ? " queue=" : "", s->tx ? s->tx->queue_id : "", s->peer, cmd, code, reason);
}

static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (smtp_is_submission(s) && !smtp_is_tls(s)) {
        log_cmd_reject(s, "mail", 530, "starttls-required");
        smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        smtp_count_bad(s);
        return;
    }
    if (need_helo(s))
        return;
    if (s->tx) {
        smtp_reply(s, "503 5.5.1 Nested MAIL command");
        smtp_count_bad(s);
        return;
    }
    if (smtp_is_submission(s) && !s->authenticated) {
        log_cmd_reject(s, "mail", 530, "auth-required");
        smtp_reply(s, "530 5.7.0 Authentication Required");
        smtp_count_bad(s);
        return;
    }
    char addr[SMTP_MAX_PATH + 1];
    struct smtp_mail_params p;
    memset(&p, 0, sizeof p);
    enum smtp_perr e = smtp_parse_mail(c->arg, c->arglen, addr, &p);
    switch (e) {
    case SMTP_PERR_OK:
        break;
    case SMTP_PERR_NEED_UTF8:
        log_cmd_reject(s, "mail", 553, "smtputf8-required");
        smtp_reply(s, "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter");
        smtp_count_bad(s);
        return;
    case SMTP_PERR_UNKNOWN_PARAM:
        log_cmd_reject(s, "mail", 555, "unsupported-parameter");
        smtp_reply(s, "555 5.5.4 Unsupported MAIL parameter");
        smtp_count_bad(s);
        return;
    case SMTP_PERR_BAD_PARAM:
        log_cmd_reject(s, "mail", 501, "bad-parameter");
        smtp_reply(s, "501 5.5.4 Invalid MAIL parameter value");
        smtp_count_bad(s);
        return;
    case SMTP_PERR_PATH_TOO_LONG:
        log_cmd_reject(s, "mail", 501, "sender-too-long");
        smtp_reply(s, "501 5.1.7 Sender address too long");
        smtp_count_bad(s);
        return;
    default:
        log_cmd_reject(s, "mail", 501, "sender-syntax");
        smtp_reply(s, "501 5.1.7 Bad sender address syntax");
        smtp_count_bad(s);
        return;
    }
    if (p.body == SMTP_BODY_BINARYMIME) {
        log_cmd_reject(s, "mail", 555, "binarymime");
        smtp_reply(s, "555 5.5.4 BINARYMIME is not supported");
        smtp_count_bad(s);
        return;
    }
    if (p.has_size && p.size > s->srv->cfg->max_message_size) {
        metrics_message_rejected(s->lc.kind, MR_SIZE);
        log_cmd_reject(s, "mail", 552, "size");
        smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return;
    }
    if (!s->authenticated) {
        mail_accept(s, addr, &p);
        return;
    }
    if (addr[0] == '\0') {
        metrics_message_rejected(s->lc.kind, MR_POLICY);
        log_cmd_reject(s, "mail", 553, "null-sender-authenticated");
        smtp_reply(s, "553 5.7.1 Sender address not owned by this account");
        return;
    }
    if (dir_sender_is_account(s->account, addr)) {
        mail_accept(s, addr, &p);   /* its own address: no lookup needed */
        return;
    }
    struct smtp_job *j = smtp_job_new(s);
    snprintf(j->addr, sizeof j->addr, "%s", addr);
    snprintf(j->account, sizeof j->account, "%s", s->account);
    struct smtp_mail_params *pp = xmalloc(sizeof *pp);
    *pp = p;
    j->owned = pp;
    smtp_job_run(j, sender_work, sender_done);
}

/* ---------------------------------------------------------------- RCPT */

/* A local recipient whose mailbox is at or over its quota (smtp_quota.c). */
#define RCPT_MAILBOX_FULL 100

/* A bounce to our SRS address whose original sender is remote (smtp_srs.c). */
#define RCPT_SRS_REMOTE 101

static void rcpt_work(struct smtp_job *j)
{
    struct directory *d = dir_for_thread(j->data_dir, &j->error);
    int srs = d ? smtp_srs_rcpt(d, j->data_dir, j->addr, sizeof j->addr) : 0;
    j->result = d ? (int)dir_resolve_rcpt(d, j->addr, j->account) : (int)DIR_RCPT_ERROR;
    if (srs != 0)
        j->result = srs < 0 ? (int)DIR_RCPT_NO_SUCH_USER
                  : j->result == DIR_RCPT_NOT_LOCAL ? RCPT_SRS_REMOTE : j->result;
    j->room = UINT64_MAX;
    if (j->result == DIR_RCPT_LOCAL && smtp_quota_room(d, j->data_dir, j->account, &j->room) == 0 &&
        j->room == 0)
        j->result = RCPT_MAILBOX_FULL;
    /* the sender's daily usage, for the check at DATA (smtp_message.c) */
    if (d && j->auth_account[0])
        j->usage_known = dir_send_usage(d, j->auth_account, time(NULL), &j->usage) == 0;
}

static void rcpt_add(struct smtp_session *s, const char *addr, const char *account,
                     uint64_t room)
{
    struct smtp_tx *tx = s->tx;
    tx->rooms[tx->nrcpt] = room;
    struct spool_rcpt *r = &tx->rcpts[tx->nrcpt++];
    r->address = xstrdup(addr);
    r->account = account ? xstrdup(account) : NULL;
    smtp_reply(s, "250 2.1.5 OK");
}

static void rcpt_done(struct smtp_job *j)
{
    struct smtp_session *s = j->s;
    char q[LOG_QSIZE];
    const char *to = log_q(q, sizeof q, j->addr, strlen(j->addr));
    if (!s->tx) /* cannot happen: no commands run while busy */
        return;
    if (j->usage_known) {
        s->tx->usage = j->usage;
        s->tx->usage_known = 1;
    }
    const char *qid = s->tx->queue_id;
    switch (j->result) {
    case DIR_RCPT_LOCAL:
        log_info("smtp", "event=rcpt session=%s queue=%s client=%s to=%s account=%s result=250",
                 s->id, qid, s->peer, to, j->account);
        rcpt_add(s, j->addr, j->account, j->room);
        return;
    case RCPT_MAILBOX_FULL:
        log_info("smtp", "event=rcpt session=%s queue=%s client=%s to=%s account=%s result=552"
                 " reason=over-quota", s->id, qid, s->peer, to, j->account);
        metrics_message_rejected(s->lc.kind, MR_QUOTA);
        smtp_reply(s, "552 5.2.2 Mailbox full");
        return;
    case RCPT_SRS_REMOTE:
        log_info("smtp", "event=rcpt session=%s queue=%s client=%s to=%s result=250 route=srs",
                 s->id, qid, s->peer, to);
        rcpt_add(s, j->addr, NULL, UINT64_MAX);
        return;
    case DIR_RCPT_NO_SUCH_USER:
        log_info("smtp", "event=rcpt session=%s queue=%s client=%s to=%s result=550 reason=no-such-user",
                 s->id, qid, s->peer, to);
        metrics_message_rejected(s->lc.kind, MR_UNKNOWN_RECIPIENT);
        smtp_reply(s, "550 5.1.1 The email account that you tried to reach does not exist");
        return;
    case DIR_RCPT_NOT_LOCAL:
        if (s->authenticated) {
            log_info("smtp", "event=rcpt session=%s queue=%s client=%s to=%s result=250 route=remote",
                     s->id, qid, s->peer, to);
            rcpt_add(s, j->addr, NULL, UINT64_MAX);
            return;
        }
        log_info("smtp", "event=rcpt session=%s queue=%s client=%s to=%s result=550 reason=relay-denied",
                 s->id, qid, s->peer, to);
        metrics_message_rejected(s->lc.kind, MR_RELAY);
        smtp_reply(s, "550 5.7.1 Relaying denied");
        return;
    default:
        log_error("smtp", "event=rcpt session=%s client=%s result=451 error=\"%s\"", s->id,
                  s->peer, j->error ? j->error : "directory");
        smtp_reply(s, "451 4.3.0 Temporary lookup failure, try again later");
    }
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (!s->tx) {
        smtp_reply(s, "503 5.5.1 MAIL first.");
        smtp_count_bad(s);
        return;
    }
    if (s->tx->bdat_started) {
        smtp_reply(s, "503 5.5.1 RCPT not allowed after BDAT");
        smtp_count_bad(s);
        return;
    }
    if (s->tx->nrcpt >= s->srv->cfg->max_recipients) {
        log_cmd_reject(s, "rcpt", 452, "too-many-recipients");
        smtp_reply(s, "452 4.5.3 Too many recipients");
        return;
    }
    char addr[SMTP_MAX_PATH + 1];
    enum smtp_perr e = smtp_parse_rcpt(c->arg, c->arglen, s->tx->params.smtputf8, addr);
    switch (e) {
    case SMTP_PERR_OK:
        break;
    case SMTP_PERR_NEED_UTF8:
        log_cmd_reject(s, "rcpt", 553, "smtputf8-required");
        smtp_reply(s, "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter on MAIL");
        smtp_count_bad(s);
        return;
    case SMTP_PERR_UNKNOWN_PARAM:
    case SMTP_PERR_BAD_PARAM:
        log_cmd_reject(s, "rcpt", 555, "unsupported-parameter");
        smtp_reply(s, "555 5.5.4 Unsupported RCPT parameter");
        smtp_count_bad(s);
        return;
    default:
        log_cmd_reject(s, "rcpt", 501, "recipient-syntax");
        smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
        smtp_count_bad(s);
        return;
    }
    struct smtp_job *j = smtp_job_new(s);
    if (strcmp(addr, "postmaster") == 0)
        snprintf(j->addr, sizeof j->addr, "postmaster@%s", s->srv->cfg->hostname);
    else
        snprintf(j->addr, sizeof j->addr, "%s", addr);
    if (s->authenticated)
        snprintf(j->auth_account, sizeof j->auth_account, "%s", s->account);
    smtp_job_run(j, rcpt_work, rcpt_done);
}

/* ---------------------------------------------------------------- DATA / BDAT */

static int tx_ready_for_data(struct smtp_session *s)
{
    if (!s->tx) {
        smtp_reply(s, "503 5.5.1 MAIL first.");
        smtp_count_bad(s);
        return 0;
    }
    if (s->tx->nrcpt == 0) {
        smtp_reply(s, "503 5.5.1 RCPT first.");
        smtp_count_bad(s);
        return 0;
    }
    return 1;
}

static void data_go(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    buf_init(&tx->data, s->srv->cfg->max_message_size + 8192);
    smtp_add_received(s);
    smtp_data_init(&tx->rd, s->srv->cfg->max_message_size);
    s->state = SS_DATA;
    smtp_reply(s, "354 Go ahead");
}

static void cmd_data(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (c->arglen) {
        smtp_reply(s, "501 5.5.4 Syntax: DATA takes no parameters");
        smtp_count_bad(s);
        return;
    }
    if (!tx_ready_for_data(s))
        return;
    if (s->tx->bdat_started) {
        smtp_reply(s, "503 5.5.1 DATA not allowed after BDAT");
        smtp_count_bad(s);
        return;
    }
    smtp_check_daily_limit(s, data_go);
}

static void bdat_begin_chunk(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (!tx->bdat_started) {
        tx->bdat_started = 1;
        buf_init(&tx->data, s->srv->cfg->max_message_size + 8192);
        smtp_add_received(s);
    }
    s->state = SS_BDAT;
}

static void bdat_after_limit(struct smtp_session *s)
{
    bdat_begin_chunk(s);
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c)
{
    unsigned long long size;
    int last;
    if (smtp_parse_bdat(c->arg, c->arglen, &size, &last) < 0) {
        smtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
        smtp_count_bad(s);
        /* The chunk size is unknown: the byte stream cannot be followed. */
        smtp_close(s);
        return;
    }
    if (!s->tx || s->tx->nrcpt == 0) {
        /* RFC 3030 2: the chunk is still read, and discarded. */
        smtp_reply(s, s->tx ? "503 5.5.1 RCPT first." : "503 5.5.1 MAIL first.");
        smtp_count_bad(s);
        smtp_discard(s, size);
        return;
    }
    struct smtp_tx *tx = s->tx;
    tx->bdat_left = size;
    tx->bdat_last = last;
    if (!tx->bdat_started)
        smtp_check_daily_limit(s, bdat_after_limit);
    else
        bdat_begin_chunk(s);
}

/* ---------------------------------------------------------------- the rest */

static void cmd_rset(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (noprogress(s))
        return;
    smtp_tx_reset(s);
    smtp_reply(s, "250 2.1.5 Flushed");
}

static void cmd_noop(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (noprogress(s))
        return;
    smtp_reply(s, "250 2.0.0 OK");
}

static void cmd_quit(struct smtp_session *s, const struct smtp_cmd *c)
{
    smtp_reply(s, "221 2.0.0 closing connection");
    smtp_close(s);
}

static void cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (noprogress(s))
        return;
    smtp_reply(s, "252 2.1.5 Send some mail, I'll try my best");
}

static void cmd_expn(struct smtp_session *s, const struct smtp_cmd *c)
{
    smtp_reply(s, "502 5.5.1 EXPN is not supported");
    smtp_count_bad(s);
}

static void cmd_help(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (noprogress(s))
        return;
    smtp_reply(s, "214 2.0.0 Roost SMTP: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
}

void smtp_dispatch(struct smtp_session *s, const char *line, size_t len)
{
    struct smtp_cmd c;
    if (smtp_parse_command(line, len, &c) < 0) {
        smtp_reply(s, "500 5.5.2 Syntax error, command unrecognized");
        smtp_count_bad(s);
        return;
    }
    log_debug("smtp", "event=command session=%s verb=%s", s->id, smtp_verb_name(c.verb));
    switch (c.verb) {
    case SMTP_VERB_EHLO: cmd_helo(s, &c, 1); break;
    case SMTP_VERB_HELO: cmd_helo(s, &c, 0); break;
    case SMTP_VERB_STARTTLS: cmd_starttls(s, &c); break;
    case SMTP_VERB_AUTH: cmd_auth(s, &c); break;
    case SMTP_VERB_MAIL: cmd_mail(s, &c); break;
    case SMTP_VERB_RCPT: cmd_rcpt(s, &c); break;
    case SMTP_VERB_DATA: cmd_data(s, &c); break;
    case SMTP_VERB_BDAT: cmd_bdat(s, &c); break;
    case SMTP_VERB_RSET: cmd_rset(s, &c); break;
    case SMTP_VERB_NOOP: cmd_noop(s, &c); break;
    case SMTP_VERB_QUIT: cmd_quit(s, &c); break;
    case SMTP_VERB_VRFY: cmd_vrfy(s, &c); break;
    case SMTP_VERB_EXPN: cmd_expn(s, &c); break;
    case SMTP_VERB_HELP: cmd_help(s, &c); break;
    default:
        smtp_reply(s, "500 5.5.1 Unrecognized command");
        smtp_count_bad(s);
    }
}
