/* pop3_cmds: the POP3 command handlers (RFC 1939, 2449 CAPA and response
 * codes, 2595 STLS, 5034 AUTH; no APOP). A table gives each command the
 * states it is valid in; each handler checks its arguments, answers at once
 * or starts a job and answers from its continuation.
 *
 * Login (USER/PASS or AUTH PLAIN/LOGIN through GNU SASL, whose callback
 * only captures the credentials) is one worker job: dir_authenticate, then
 * dir_account_get (POP enabled? which mail? what after download?), then
 * store_pop_open, which locks the maildrop and snapshots it. QUIT in the
 * TRANSACTION state is the UPDATE job: DELE'd messages are expunged and the
 * account's after-download option is applied to the messages RETR'd. */
#include "pop3/pop3_int.h"
#include "pop3/pop3_job.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "auth/throttle.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "net/tls.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* POP3's own GNU SASL context (separate from SMTP's), made on first use. */

#define STATE_AUTH (1u << P3_AUTHORIZATION)
#define STATE_TRANS (1u << P3_TRANSACTION)

enum login_result { LR_OK, LR_FAIL, LR_APP_PASSWORD, LR_DISABLED, LR_IN_USE, LR_ERROR };

/* ---------------------------------------------------------------- helpers */

static void lower_copy(char *dst, size_t dstsz, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < dstsz; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] + 32) : src[i];
    dst[i] = '\0';
}

static void wipe_free(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static void syntax_error(struct pop3_session *s)
{
    pop3_reply(s, "-ERR Syntax error");
    pop3_count_bad(s);
}

/* Login is allowed only under TLS (DESIGN.md; loopback included). */
static int login_allowed(const struct pop3_session *s)
{
    return pop3_is_tls(s) && s->state == P3_AUTHORIZATION;
}

static int need_tls(struct pop3_session *s)
{
    if (pop3_is_tls(s))
        return 0;
    pop3_reply(s, "-ERR [AUTH] Must issue a STLS command first");
    pop3_count_bad(s);
    return 1;
}

static void close_pop_work(void *arg)
{
    struct store_pop *pop = arg;
    store_pop_close(&pop);
}

void pop3_drop_maildrop(struct pop3_session *s, int now)
{
    free(s->deleted);
    free(s->retrieved);
    s->deleted = s->retrieved = NULL;
    s->count = 0;
    if (!s->pop)
        return;
    if (now)
        store_pop_close(&s->pop);
    else
        worker_submit(s->srv->pool, NULL, close_pop_work, NULL, s->pop);
    s->pop = NULL;
}

/* ---------------------------------------------------------------- CAPA */

static void cmd_capa(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (c->nargs) {
        syntax_error(s);
        return;
    }
    pop3_reply(s, "+OK Capability list follows");
    pop3_reply(s, "TOP");
    pop3_reply(s, "UIDL");
    pop3_reply(s, "RESP-CODES");
    pop3_reply(s, "AUTH-RESP-CODE");
    pop3_reply(s, "PIPELINING");
    if (login_allowed(s)) {
        pop3_reply(s, "USER");
        pop3_reply(s, "SASL PLAIN LOGIN");
    }
    if (s->lc.kind == LK_POP3 && !pop3_is_tls(s) && tls_available() &&
        s->state == P3_AUTHORIZATION)
        pop3_reply(s, "STLS");
    /* RFC 2449 6.7: deleting or archiving after download takes the message
     * out of the maildrop, a retention of 0 days. */
    if (s->state == P3_TRANSACTION && (s->pop_after == POP_AFTER_DELETE ||
                                       s->pop_after == POP_AFTER_ARCHIVE))
        pop3_reply(s, "EXPIRE 0");
    else
        pop3_reply(s, "EXPIRE NEVER");
    pop3_reply(s, "LOGIN-DELAY 0");
    pop3_reply(s, "IMPLEMENTATION Roost");
    pop3_reply(s, ".");
}

/* ---------------------------------------------------------------- STLS */

static void cmd_stls(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (c->nargs) {
        syntax_error(s);
        return;
    }
    if (pop3_is_tls(s)) {
        pop3_reply(s, "-ERR Command not permitted when TLS active");
        pop3_count_bad(s);
        return;
    }
    if (s->lc.kind != LK_POP3 || !tls_available()) {
        pop3_reply(s, "-ERR [SYS/TEMP] TLS not available");
        return;
    }
    pop3_reply(s, "+OK Begin TLS negotiation");
    /* RFC 2595 4: forget everything learnt before TLS. */
    s->user[0] = '\0';
    pop3_set_state(s, P3_STLS);
    long discarded = conn_starttls(s->conn);
    if (discarded > 0)
        log_info("pop3", "event=stls-discarded session=%s client=%s bytes=%ld", s->id, s->peer,
                 discarded);
}

/* ---------------------------------------------------------------- login */

static void login_work(struct pop3_job *j)
{
    struct directory *d = dir_for_thread(j->data_dir, &j->error);
    if (!d) {
        j->result = LR_ERROR;
        return;
    }
    enum dir_auth a = dir_authenticate(d, j->user, j->pass, j->account, j->app_name);
    if (a == DIR_AUTH_FAIL || a == DIR_AUTH_APP_PASSWORD_REQUIRED) {
        j->result = a == DIR_AUTH_FAIL ? LR_FAIL : LR_APP_PASSWORD;
        return;
    }
    if (a != DIR_AUTH_OK || dir_account_get(d, j->account, &j->acct) != 0) {
        j->result = LR_ERROR;
        return;
    }
    if (!j->acct.pop_enabled) {
        j->result = LR_DISABLED;
        return;
    }
    time_t since = j->acct.pop_scope == POP_SCOPE_FROM_NOW ? j->acct.pop_since : 0;
    int r = store_pop_open(j->data_dir, j->account, since, &j->pop, &j->error);
    j->result = r == 0 ? LR_OK : r == 1 ? LR_IN_USE : LR_ERROR;
}

/* The session went away while its login ran: release the fresh lock. */
static void login_cleanup(struct pop3_job *j)
{
    if (j->pop) {
        worker_submit(j->s->srv->pool, NULL, close_pop_work, NULL, j->pop);
        j->pop = NULL;
    }
}

static void enter_transaction(struct pop3_session *s, struct pop3_job *j)
{
    s->pop = j->pop;
    j->pop = NULL;
    s->count = store_pop_count(s->pop);
    size_t n = s->count > 0 ? (size_t)s->count : 1;
    s->deleted = xcalloc(n, 1);
    s->retrieved = xcalloc(n, 1);
    s->pop_after = j->acct.pop_after;
    snprintf(s->account, sizeof s->account, "%s", j->account);
    snprintf(s->app_name, sizeof s->app_name, "%s", j->app_name);
    s->bad_commands = 0;
    s->user[0] = '\0';
    pop3_set_state(s, P3_TRANSACTION);
}

static void login_done(struct pop3_job *j)
{
    struct pop3_session *s = j->s;
    char q[LOG_QSIZE];
    const char *user = log_q(q, sizeof q, j->user, strlen(j->user));
    const char *app = j->app_name[0] ? j->app_name : "-";
    s->user[0] = '\0';
    switch (j->result) {
    case LR_OK:
        throttle_succeeded(j->account, s->peer);
        enter_transaction(s, j);
        metrics_login(s->lc.kind, ML_OK);
        log_info("pop3", "event=login session=%s client=%s mech=%s result=ok account=%s "
                 "app_password=%s messages=%d", s->id, s->peer, s->sasl_mech, s->account, app,
                 s->count);
        pop3_reply(s, "+OK Logged in, %d messages", s->count);
        return;
    case LR_DISABLED:
        throttle_succeeded(j->account, s->peer);
        metrics_login(s->lc.kind, ML_DISABLED);
        log_info("pop3", "event=login session=%s client=%s mech=%s result=pop-disabled "
                 "account=%s app_password=%s", s->id, s->peer, s->sasl_mech, j->account, app);
        pop3_reply(s, "-ERR [SYS/PERM] POP access is disabled for this account");
        return;
    case LR_IN_USE:
        throttle_succeeded(j->account, s->peer);
        log_info("pop3", "event=login session=%s client=%s mech=%s result=in-use account=%s "
                 "app_password=%s", s->id, s->peer, s->sasl_mech, j->account, app);
        pop3_reply(s, "-ERR [IN-USE] Maildrop is locked by another POP3 session");
        return;
    case LR_APP_PASSWORD:
        throttle_failed(j->user, s->peer, time(NULL));
        metrics_login(s->lc.kind, ML_APP_PASSWORD_REQUIRED);
        log_info("pop3", "event=login session=%s client=%s mech=%s result=app-password-required "
                 "user=%s", s->id, s->peer, s->sasl_mech, user);
        pop3_reply(s, "-ERR [AUTH] Application-specific password required");
        break;
    case LR_FAIL:
        throttle_failed(j->user, s->peer, time(NULL));
        metrics_login(s->lc.kind, ML_BAD_PASSWORD);
        log_info("pop3", "event=login session=%s client=%s mech=%s result=fail user=%s", s->id,
                 s->peer, s->sasl_mech, user);
        pop3_reply(s, "-ERR [AUTH] Username and password not accepted");
        break;
    default:
        metrics_login(s->lc.kind, ML_ERROR);
        log_error("pop3", "event=login session=%s client=%s mech=%s result=error user=%s "
                  "error=\"%s\"", s->id, s->peer, s->sasl_mech, user,
                  j->error ? j->error : "directory or store");
        pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
        return;
    }
    pop3_count_bad(s);
}

/* Checks USER/PASS (taken over: freed here) on a worker, unless throttled. */
static void login_start(struct pop3_session *s, char *user, char *pass)
{
    char lower[320];
    lower_copy(lower, sizeof lower, user);
    if (!throttle_allowed(lower, s->peer, time(NULL))) {
        char q[LOG_QSIZE];
        metrics_login(s->lc.kind, ML_THROTTLED);
        log_info("pop3", "event=login session=%s client=%s mech=%s result=throttled user=%s",
                 s->id, s->peer, s->sasl_mech, log_q(q, sizeof q, user, strlen(user)));
        pop3_reply(s, "-ERR [SYS/TEMP] Too many login attempts, please try again later");
        s->user[0] = '\0';
        wipe_free(&pass);
        free(user);
        return;
    }
    struct pop3_job *j = pop3_job_new(s);
    j->user = xstrdup(lower);
    j->pass = pass;
    j->cleanup = login_cleanup;
    free(user);
    pop3_job_run(j, login_work, login_done);
}

static void cmd_user(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (need_tls(s))
        return;
    if (c->nargs != 1) {
        syntax_error(s);
        return;
    }
    memcpy(s->user, c->arg[0], c->arglen[0]);
    s->user[c->arglen[0]] = '\0';
    pop3_reply(s, "+OK Send your password");
}

static void cmd_pass(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (need_tls(s))
        return;
    if (s->user[0] == '\0') {
        pop3_reply(s, "-ERR Command not valid in this state");
        pop3_count_bad(s);
        return;
    }
    if (c->nargs != 1) {
        s->user[0] = '\0';
        syntax_error(s);
        return;
    }
    snprintf(s->sasl_mech, sizeof s->sasl_mech, "USER");
    login_start(s, xstrdup(s->user), xstrndup(c->arg[0], c->arglen[0]));
}

/* ---------------------------------------------------------------- AUTH */

void pop3_sasl_abort(struct pop3_session *s)
{
    if (s->sasl) {
        gsasl_finish(s->sasl);
        s->sasl = NULL;
    }
    sasl_creds_clear(&s->creds);
    if (s->state == P3_SASL)
        pop3_set_state(s, P3_AUTHORIZATION);
}

/* The SASL exchange is complete: verify the captured credentials. */
static void sasl_verify(struct pop3_session *s)
{
    char *user = s->creds.user, *pass = s->creds.pass;
    s->creds.user = s->creds.pass = NULL;
    if (!user || !pass) {
        free(user);
        wipe_free(&pass);
        metrics_login(s->lc.kind, ML_BAD_PASSWORD);
        pop3_reply(s, "-ERR [AUTH] Username and password not accepted");
        pop3_count_bad(s);
        return;
    }
    login_start(s, user, pass);
}

/* One SASL step with INPUT (base64, NUL-terminated). */
static void sasl_step(struct pop3_session *s, const char *input)
{
    char *out = NULL;
    int r = gsasl_step64(s->sasl, input, &out);
    if (r == GSASL_NEEDS_MORE) {
        pop3_reply(s, "+ %s", out ? out : "");
        gsasl_free(out);
        pop3_set_state(s, P3_SASL);
        return;
    }
    gsasl_free(out);
    if (s->sasl) {
        gsasl_finish(s->sasl);
        s->sasl = NULL;
    }
    pop3_set_state(s, P3_AUTHORIZATION);
    if (r == GSASL_OK) {
        sasl_verify(s);
        return;
    }
    pop3_sasl_abort(s);
    if (r == GSASL_BASE64_ERROR || r == GSASL_MECHANISM_PARSE_ERROR) {
        pop3_reply(s, "-ERR Cannot decode response");
    } else {
        metrics_login(s->lc.kind, ML_BAD_PASSWORD);
        pop3_reply(s, "-ERR [AUTH] Username and password not accepted");
        throttle_failed(NULL, s->peer, time(NULL));
    }
    pop3_count_bad(s);
}

void pop3_sasl_response(struct pop3_session *s, const char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        pop3_sasl_abort(s);
        pop3_reply(s, "-ERR Authentication cancelled");
        pop3_count_bad(s);
        return;
    }
    if (memchr(line, '\0', len)) {
        pop3_sasl_abort(s);
        syntax_error(s);
        return;
    }
    sasl_step(s, line);
}

static void auth_list_mechanisms(struct pop3_session *s)
{
    pop3_reply(s, "+OK Supported mechanisms follow");
    pop3_reply(s, "PLAIN");
    pop3_reply(s, "LOGIN");
    pop3_reply(s, ".");
}

static void cmd_auth(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (need_tls(s))
        return;
    if (c->nargs == 0) {
        auth_list_mechanisms(s);
        return;
    }
    char mech[POP3_MAX_MECH + 1];
    for (size_t i = 0; i < c->arglen[0]; i++)
        mech[i] = (c->arg[0][i] >= 'a' && c->arg[0][i] <= 'z') ? (char)(c->arg[0][i] - 32)
                                                               : c->arg[0][i];
    mech[c->arglen[0]] = '\0';
    if (strcmp(mech, "PLAIN") != 0 && strcmp(mech, "LOGIN") != 0) {
        pop3_reply(s, "-ERR Unsupported authentication mechanism");
        pop3_count_bad(s);
        return;
    }
    if (!throttle_allowed(NULL, s->peer, time(NULL))) {
        metrics_login(s->lc.kind, ML_THROTTLED);
        pop3_reply(s, "-ERR [SYS/TEMP] Too many login attempts, please try again later");
        return;
    }
    if (sasl_server_begin(mech, &s->creds, &s->sasl) < 0) {
        pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
        return;
    }
    snprintf(s->sasl_mech, sizeof s->sasl_mech, "%s", mech);
    s->user[0] = '\0';
    if (c->nargs < 2) {
        sasl_step(s, "");
        return;
    }
    /* RFC 5034 4: "=" is an empty initial response. */
    char *ir = xstrndup(c->arg[1], c->arglen[1]);
    if (strcmp(ir, "=") == 0)
        ir[0] = '\0';
    if (strcmp(mech, "LOGIN") == 0) {
        /* An initial response to LOGIN is the user name: skip the
         * server's "Username:" prompt. */
        char *out = NULL;
        int r = gsasl_step64(s->sasl, "", &out);
        gsasl_free(out);
        if (r != GSASL_NEEDS_MORE) {
            pop3_sasl_abort(s);
            pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
            wipe_free(&ir);
            return;
        }
    }
    sasl_step(s, ir);
    wipe_free(&ir);
}

/* ---------------------------------------------------------------- TRANSACTION */

/* Looks up the message number in C->arg[IDX]. Returns the 0-based index,
 * or -1 after answering. */
static int message_arg(struct pop3_session *s, const struct pop3_cmd *c, int idx)
{
    unsigned long n;
    if (pop3_parse_number(c->arg[idx], c->arglen[idx], &n) < 0) {
        syntax_error(s);
        return -1;
    }
    if (n == 0 || n > (unsigned long)s->count) {
        pop3_reply(s, "-ERR No such message");
        return -1;
    }
    if (s->deleted[n - 1]) {
        pop3_reply(s, "-ERR Message %lu already deleted", n);
        return -1;
    }
    return (int)(n - 1);
}

static void maildrop_totals(const struct pop3_session *s, int *n_r, unsigned long long *octets_r)
{
    int n = 0;
    unsigned long long octets = 0;
    for (int i = 0; i < s->count; i++) {
        if (s->deleted[i])
            continue;
        n++;
        octets += store_pop_msg(s->pop, i)->size;
    }
    *n_r = n;
    *octets_r = octets;
}

static void cmd_stat(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (c->nargs) {
        syntax_error(s);
        return;
    }
    int n;
    unsigned long long octets;
    maildrop_totals(s, &n, &octets);
    pop3_reply(s, "+OK %d %llu", n, octets);
}

static void list_line(struct pop3_session *s, int i, int uidl, int single)
{
    const struct store_pop_msg *m = store_pop_msg(s->pop, i);
    const char *prefix = single ? "+OK " : "";
    if (uidl) {
        char u[POP3_UIDL_SIZE];
        pop3_uidl(store_pop_uidvalidity(s->pop), m->uid, u);
        pop3_reply(s, "%s%d %s", prefix, i + 1, u);
    } else {
        pop3_reply(s, "%s%d %zu", prefix, i + 1, m->size);
    }
}

/* LIST and UIDL (RFC 1939 5, 7): one message or every one not deleted. */
static void cmd_list_or_uidl(struct pop3_session *s, const struct pop3_cmd *c, int uidl)
{
    if (c->nargs > 1) {
        syntax_error(s);
        return;
    }
    if (c->nargs == 1) {
        int i = message_arg(s, c, 0);
        if (i >= 0)
            list_line(s, i, uidl, 1);
        return;
    }
    if (uidl) {
        pop3_reply(s, "+OK Unique-ID listing follows");
    } else {
        int n;
        unsigned long long octets;
        maildrop_totals(s, &n, &octets);
        pop3_reply(s, "+OK %d messages (%llu octets)", n, octets);
    }
    for (int i = 0; i < s->count; i++)
        if (!s->deleted[i])
            list_line(s, i, uidl, 0);
    pop3_reply(s, ".");
}

static void cmd_list(struct pop3_session *s, const struct pop3_cmd *c) { cmd_list_or_uidl(s, c, 0); }
static void cmd_uidl(struct pop3_session *s, const struct pop3_cmd *c) { cmd_list_or_uidl(s, c, 1); }

static void cmd_retr(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (c->nargs != 1) {
        syntax_error(s);
        return;
    }
    int i = message_arg(s, c, 0);
    if (i >= 0)
        pop3_retr_start(s, i + 1, 0, 0);
}

static void cmd_top(struct pop3_session *s, const struct pop3_cmd *c)
{
    unsigned long lines;
    if (c->nargs != 2 || pop3_parse_number(c->arg[1], c->arglen[1], &lines) < 0) {
        syntax_error(s);
        return;
    }
    int i = message_arg(s, c, 0);
    if (i >= 0)
        pop3_retr_start(s, i + 1, 1, lines);
}

static void cmd_dele(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (c->nargs != 1) {
        syntax_error(s);
        return;
    }
    int i = message_arg(s, c, 0);
    if (i < 0)
        return;
    s->deleted[i] = 1;
    pop3_reply(s, "+OK Message %d deleted", i + 1);
}

static void cmd_noop(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (c->nargs) {
        syntax_error(s);
        return;
    }
    pop3_reply(s, "+OK");
}

static void cmd_rset(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (c->nargs) {
        syntax_error(s);
        return;
    }
    memset(s->deleted, 0, s->count > 0 ? (size_t)s->count : 1);
    int n;
    unsigned long long octets;
    maildrop_totals(s, &n, &octets);
    pop3_reply(s, "+OK Maildrop has %d messages (%llu octets)", n, octets);
}

/* ---------------------------------------------------------------- QUIT / UPDATE */

static void update_work(struct pop3_job *j)
{
    const char *err = NULL;
    int failed = 0;
    if (j->ndel > 0 && store_expunge(j->data_dir, j->account, "INBOX", j->del_uids, j->ndel,
                                     &err) < 0)
        failed = 1;
    if (j->nafter > 0) {
        int r = 0;
        if (j->after == POP_AFTER_MARK_READ)
            r = store_add_flag(j->data_dir, j->account, "INBOX", j->after_uids, j->nafter,
                               "\\Seen", &err);
        else if (j->after == POP_AFTER_ARCHIVE)
            r = store_move(j->data_dir, j->account, "INBOX", "Archive", j->after_uids,
                           j->nafter, &err);
        if (r < 0)
            failed = 1;
    }
    j->result = failed ? -1 : 0;
    j->error = err;
    store_pop_close(&j->pop);
}

static void update_done(struct pop3_job *j)
{
    struct pop3_session *s = j->s;
    if (j->result < 0) {
        log_error("pop3", "event=update session=%s client=%s account=%s result=error "
                  "error=\"%s\"", s->id, s->peer, s->account, j->error ? j->error : "store");
        pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages not removed");
    } else {
        log_info("pop3", "event=update session=%s client=%s account=%s result=ok deleted=%d "
                 "after=%s applied=%d", s->id, s->peer, s->account, j->ndel,
                 dir_pop_after_name(j->after), j->nafter);
        pop3_reply(s, "+OK Bye");
    }
    pop3_close(s);
}

/* Splits the snapshot into the UIDs to expunge and those the
 * after-download option applies to (RETR'd, not deleted). */
static void plan_update(struct pop3_session *s, struct pop3_job *j)
{
    size_t n = s->count > 0 ? (size_t)s->count : 1;
    j->del_uids = xcalloc(n, sizeof *j->del_uids);
    j->after_uids = xcalloc(n, sizeof *j->after_uids);
    j->after = s->pop_after;
    for (int i = 0; i < s->count; i++) {
        uint32_t uid = store_pop_msg(s->pop, i)->uid;
        if (s->deleted[i])
            j->del_uids[j->ndel++] = uid;
        else if (s->retrieved[i] && s->pop_after == POP_AFTER_DELETE)
            j->del_uids[j->ndel++] = uid;
        else if (s->retrieved[i] && s->pop_after != POP_AFTER_KEEP)
            j->after_uids[j->nafter++] = uid;
    }
}

static void cmd_quit(struct pop3_session *s, const struct pop3_cmd *c)
{
    if (s->state != P3_TRANSACTION) {
        pop3_reply(s, "+OK Bye");
        pop3_close(s);
        return;
    }
    struct pop3_job *j = pop3_job_new(s);
    snprintf(j->account, sizeof j->account, "%s", s->account);
    plan_update(s, j);
    j->pop = s->pop;   /* the job applies the changes, then unlocks */
    s->pop = NULL;
    pop3_set_state(s, P3_UPDATE);
    pop3_job_run(j, update_work, update_done);
}

/* ---------------------------------------------------------------- dispatch */

struct pop3_command {
    enum pop3_verb verb;
    unsigned states;
    void (*handler)(struct pop3_session *s, const struct pop3_cmd *c);
};

static const struct pop3_command commands[] = {
    {POP3_VERB_CAPA, STATE_AUTH | STATE_TRANS, cmd_capa},
    {POP3_VERB_STLS, STATE_AUTH, cmd_stls},
    {POP3_VERB_AUTH, STATE_AUTH, cmd_auth},
    {POP3_VERB_USER, STATE_AUTH, cmd_user},
    {POP3_VERB_PASS, STATE_AUTH, cmd_pass},
    {POP3_VERB_QUIT, STATE_AUTH | STATE_TRANS, cmd_quit},
    {POP3_VERB_STAT, STATE_TRANS, cmd_stat},
    {POP3_VERB_LIST, STATE_TRANS, cmd_list},
    {POP3_VERB_UIDL, STATE_TRANS, cmd_uidl},
    {POP3_VERB_RETR, STATE_TRANS, cmd_retr},
    {POP3_VERB_TOP, STATE_TRANS, cmd_top},
    {POP3_VERB_DELE, STATE_TRANS, cmd_dele},
    {POP3_VERB_NOOP, STATE_TRANS, cmd_noop},
    {POP3_VERB_RSET, STATE_TRANS, cmd_rset},
};

void pop3_dispatch(struct pop3_session *s, const char *line, size_t len)
{
    struct pop3_cmd c;
    enum pop3_perr e = pop3_parse_command(line, len, &c);
    if (e == POP3_PERR_EMPTY || e == POP3_PERR_KEYWORD) {
        pop3_reply(s, "-ERR Unknown command");
        pop3_count_bad(s);
        return;
    }
    if (e != POP3_PERR_OK) {
        syntax_error(s);
        return;
    }
    log_debug("pop3", "event=command session=%s verb=%s", s->id, pop3_verb_name(c.verb));
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (commands[i].verb != c.verb)
            continue;
        if (!(commands[i].states & (1u << s->state))) {
            pop3_reply(s, "-ERR Command not valid in this state");
            pop3_count_bad(s);
            return;
        }
        commands[i].handler(s, &c);
        return;
    }
    pop3_reply(s, "-ERR Unknown command");
    pop3_count_bad(s);
}
