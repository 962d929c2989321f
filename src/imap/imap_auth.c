/* imap_auth: getting a session logged in: STARTTLS (RFC 9051 6.2.1),
 * LOGIN (6.2.3) and AUTHENTICATE PLAIN/LOGIN with SASL-IR (6.2.2, RFC
 * 4959). Passwords are checked on the worker pool (argon2id); throttling,
 * two-factor (app passwords only) and the account's IMAP switch are the
 * same rules as POP3 and SMTP. Before TLS on the 143 listener no login is
 * possible (LOGINDISABLED), on loopback too. */
#include "imap/imap_int.h"
#include "auth/directory.h"
#include "auth/dir_cache.h"
#include "auth/throttle.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "net/conn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum login_result { LOGIN_OK, LOGIN_FAIL, LOGIN_APP_PASSWORD, LOGIN_DISABLED, LOGIN_ERROR };

struct login_ctx {
    char *user, *pass;
    char account[320];
    char app_name[128];
    struct dir_account acct;
    enum login_result result;
};

static void wipe_free(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static void login_ctx_free(void *p)
{
    struct login_ctx *l = p;
    free(l->user);
    wipe_free(&l->pass);
    free(l);
}

/* No login without TLS (LOGINDISABLED). 1 after answering. */
static int need_tls(struct imap_session *s)
{
    if (imap_is_tls(s))
        return 0;
    imap_no(s, "[PRIVACYREQUIRED] Use STARTTLS first; logins are disabled without TLS");
    return 1;
}

void imap_cmd_starttls(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "STARTTLS takes no arguments");
        return;
    }
    if (imap_is_tls(s)) {
        imap_bad(s, "TLS is already active");
        return;
    }
    imap_ok_nosync(s, "Begin TLS negotiation now");
    s->mode = IMAP_IN_STARTTLS;
    long discarded = conn_starttls(s->conn);
    if (discarded > 0)
        log_info("imap", "event=starttls-discarded session=%s client=%s bytes=%ld", s->id,
                 s->peer, discarded);
    imap_reader_reset(s);
}

static void login_work(struct imap_job *j)
{
    struct login_ctx *l = j->ctx;
    struct directory *d = dir_for_thread(j->data_dir, &j->error);
    if (!d) {
        l->result = LOGIN_ERROR;
        return;
    }
    enum dir_auth a = dir_authenticate(d, l->user, l->pass, l->account, l->app_name);
    if (a == DIR_AUTH_FAIL || a == DIR_AUTH_APP_PASSWORD_REQUIRED) {
        l->result = a == DIR_AUTH_FAIL ? LOGIN_FAIL : LOGIN_APP_PASSWORD;
        return;
    }
    if (a != DIR_AUTH_OK || dir_account_get(d, l->account, &l->acct) != 0) {
        l->result = LOGIN_ERROR;
        return;
    }
    l->result = l->acct.imap_enabled ? LOGIN_OK : LOGIN_DISABLED;
}

static void log_login(struct imap_session *s, const struct login_ctx *l, const char *result)
{
    char q[LOG_QSIZE];
    log_info("imap", "event=login session=%s client=%s mech=%s result=%s user=%s account=%s "
             "app_password=%s", s->id, s->peer, s->sasl_mech, result,
             log_q(q, sizeof q, l->user, strlen(l->user)), l->account[0] ? l->account : "-",
             l->app_name[0] ? l->app_name : "-");
}

static void login_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct login_ctx *l = j->ctx;
    switch (l->result) {
    case LOGIN_OK: {
        throttle_succeeded(l->account, s->peer);
        snprintf(s->account, sizeof s->account, "%s", l->account);
        snprintf(s->app_name, sizeof s->app_name, "%s", l->app_name);
        s->quota_bytes = l->acct.quota_bytes;
        s->bad_commands = 0;
        imap_set_state(s, IMAP_ST_AUTH);
        imap_reader_reset(s);
        imap_session_timeouts(s);
        metrics_login(s->lc.kind, ML_OK);
        log_login(s, l, "ok");
        struct buf caps;
        buf_init(&caps, 4096);
        imap_capability_string(s, &caps);
        imap_ok(s, "[CAPABILITY %s] Logged in", caps.data ? caps.data : "");
        buf_deinit(&caps);
        return;
    }
    case LOGIN_DISABLED:
        throttle_succeeded(l->account, s->peer);
        metrics_login(s->lc.kind, ML_DISABLED);
        log_login(s, l, "imap-disabled");
        imap_no(s, "[CONTACTADMIN] IMAP access is disabled for this account");
        return;
    case LOGIN_APP_PASSWORD:
        throttle_failed(l->user, s->peer, time(NULL));
        metrics_login(s->lc.kind, ML_APP_PASSWORD_REQUIRED);
        log_login(s, l, "app-password-required");
        imap_no(s, "[AUTHENTICATIONFAILED] Application-specific password required");
        break;
    case LOGIN_FAIL:
        throttle_failed(l->user, s->peer, time(NULL));
        metrics_login(s->lc.kind, ML_BAD_PASSWORD);
        log_login(s, l, "fail");
        imap_no(s, "[AUTHENTICATIONFAILED] Invalid credentials");
        break;
    case LOGIN_ERROR:
        metrics_login(s->lc.kind, ML_ERROR);
        log_error("imap", "event=login session=%s client=%s result=error error=\"%s\"", s->id,
                  s->peer, j->error ? j->error : "directory");
        imap_no(s, "[UNAVAILABLE] Temporary authentication failure");
        return;
    }
    imap_count_bad(s);
}

/* Checks USER/PASS (taken over) on a worker, unless throttled. */
static void login_start(struct imap_session *s, char *user, char *pass)
{
    for (char *p = user; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strlen(user) >= 320 || !throttle_allowed(user, s->peer, time(NULL))) {
        char q[LOG_QSIZE];
        metrics_login(s->lc.kind, ML_THROTTLED);
        log_info("imap", "event=login session=%s client=%s mech=%s result=throttled user=%s",
                 s->id, s->peer, s->sasl_mech, log_q(q, sizeof q, user, strlen(user)));
        imap_no(s, "[UNAVAILABLE] Too many login attempts, please try again later");
        free(user);
        wipe_free(&pass);
        return;
    }
    struct login_ctx *l = xcalloc(1, sizeof *l);
    l->user = user;
    l->pass = pass;
    struct imap_job *j = imap_job_new(s);
    j->ctx = l;
    j->ctx_free = login_ctx_free;
    imap_job_run(j, login_work, login_done);
}

void imap_cmd_login(struct imap_session *s, struct imap_command *c)
{
    const char *user, *pass;
    size_t ulen, plen;
    if (c->nargs != 2 || !imap_arg_astring(&c->args[0], &user, &ulen) ||
        !imap_arg_astring(&c->args[1], &pass, &plen) || memchr(user, '\0', ulen) ||
        memchr(pass, '\0', plen)) {
        imap_bad(s, "LOGIN needs a user name and a password");
        return;
    }
    if (need_tls(s))
        return;
    snprintf(s->sasl_mech, sizeof s->sasl_mech, "LOGIN-CMD");
    char *u = xstrndup(user, ulen), *pw = xstrndup(pass, plen);
    explicit_bzero(c->args[1].str, c->args[1].len);
    login_start(s, u, pw);
}

/* ---- AUTHENTICATE ---- */

void imap_sasl_abort(struct imap_session *s)
{
    if (s->sasl) {
        gsasl_finish(s->sasl);
        s->sasl = NULL;
    }
    sasl_creds_clear(&s->creds);
    if (s->mode == IMAP_IN_SASL)
        s->mode = IMAP_IN_COMMAND;
}

static void sasl_finished(struct imap_session *s)
{
    char *user = s->creds.user, *pass = s->creds.pass;
    s->creds.user = s->creds.pass = NULL;
    if (!user || !pass) {
        free(user);
        wipe_free(&pass);
        metrics_login(s->lc.kind, ML_BAD_PASSWORD);
        imap_no(s, "[AUTHENTICATIONFAILED] Invalid credentials");
        imap_count_bad(s);
        return;
    }
    login_start(s, user, pass);
}

/* One SASL step with INPUT (base64). */
static void sasl_step(struct imap_session *s, const char *input)
{
    char *out = NULL;
    int r = gsasl_step64(s->sasl, input, &out);
    if (r == GSASL_NEEDS_MORE) {
        imap_continuation(s, out ? out : "");
        gsasl_free(out);
        s->mode = IMAP_IN_SASL;
        return;
    }
    gsasl_free(out);
    gsasl_finish(s->sasl);
    s->sasl = NULL;
    s->mode = IMAP_IN_COMMAND;
    if (r == GSASL_OK) {
        sasl_finished(s);
        return;
    }
    sasl_creds_clear(&s->creds);
    if (r == GSASL_BASE64_ERROR || r == GSASL_MECHANISM_PARSE_ERROR) {
        imap_bad(s, "Cannot decode the SASL response");
        return;
    }
    throttle_failed(NULL, s->peer, time(NULL));
    metrics_login(s->lc.kind, ML_BAD_PASSWORD);
    imap_no(s, "[AUTHENTICATIONFAILED] Invalid credentials");
    imap_count_bad(s);
}

void imap_sasl_line(struct imap_session *s, const char *line, size_t len)
{
    if (!line) {
        imap_sasl_abort(s);
        imap_bad(s, "SASL response too long");
        return;
    }
    if (len == 1 && line[0] == '*') {
        imap_sasl_abort(s);
        imap_bad(s, "Authentication cancelled");
        return;
    }
    if (memchr(line, '\0', len)) {
        imap_sasl_abort(s);
        imap_bad(s, "Invalid SASL response");
        return;
    }
    sasl_step(s, line);
}

void imap_cmd_authenticate(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs < 1 || c->nargs > 2 || c->args[0].type != IMAP_ARG_ATOM ||
        (c->nargs == 2 && c->args[1].type != IMAP_ARG_ATOM)) {
        imap_bad(s, "AUTHENTICATE needs a mechanism name");
        return;
    }
    char mech[IMAP_MAX_MECH + 1];
    snprintf(mech, sizeof mech, "%s", c->args[0].str);
    for (char *p = mech; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    if (strcmp(mech, "PLAIN") != 0 && strcmp(mech, "LOGIN") != 0) {
        imap_no(s, "Unsupported authentication mechanism");
        return;
    }
    if (need_tls(s))
        return;
    if (!throttle_allowed(NULL, s->peer, time(NULL))) {
        metrics_login(s->lc.kind, ML_THROTTLED);
        imap_no(s, "[UNAVAILABLE] Too many login attempts, please try again later");
        return;
    }
    if (sasl_server_begin(mech, &s->creds, &s->sasl) < 0) {
        imap_no(s, "[UNAVAILABLE] Temporary authentication failure");
        return;
    }
    snprintf(s->sasl_mech, sizeof s->sasl_mech, "%s", mech);
    if (c->nargs < 2) {
        sasl_step(s, "");
        return;
    }
    /* SASL-IR (RFC 4959): "=" is an empty initial response */
    char *ir = xstrdup(strcmp(c->args[1].str, "=") == 0 ? "" : c->args[1].str);
    if (strcmp(mech, "LOGIN") == 0) {
        char *out = NULL;
        int r = gsasl_step64(s->sasl, "", &out);
        gsasl_free(out);
        if (r != GSASL_NEEDS_MORE) {
            imap_sasl_abort(s);
            imap_no(s, "[UNAVAILABLE] Temporary authentication failure");
            wipe_free(&ir);
            return;
        }
    }
    sasl_step(s, ir);
    wipe_free(&ir);
}
