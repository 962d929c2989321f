/* smtp_session: one SMTP server connection: accept and limits, greeting,
 * reading command lines (bounded; CRLF required), feeding DATA and BDAT
 * content to the transaction, pausing while an async job runs, timeouts,
 * and the session's end. Command semantics live in smtp_cmds.c, the end of
 * a message in smtp_message.c.
 *
 * Invariants: at most one command is processed at a time; while s->busy a
 * job is in flight and nothing more is read from the input buffer (libevent
 * stops reading at the conn's high-water mark). A session whose connection
 * closes while busy is freed by the last job's completion. */
#include "smtp/smtp_int.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/sockport.h"
#include "net/tls.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SMTP_OUTPUT_HIGH_WATER (512 * 1024)

/* Each loop keeps its own list of sessions (loop slot LOOP_SLOT_SMTP);
 * the only state shared between loops is the atomic session count that
 * tells shutdown when the last session has ended. */
struct smtp_loop {
    struct smtp_session *sessions;
};

static int total_sessions; /* atomic */

static struct smtp_loop *smtp_loop_of(struct loop *l)
{
    struct smtp_loop *sl = loop_get_slot(l, LOOP_SLOT_SMTP);
    if (!sl) {
        sl = xcalloc(1, sizeof *sl);
        loop_set_slot(l, LOOP_SLOT_SMTP, sl);
    }
    return sl;
}

static void on_tls_ready(void *ctx);
static void on_data(void *ctx);
static void on_drained(void *ctx);
static void on_closed(void *ctx, enum conn_close_reason why);
static void on_timeout(void *ctx);

static const struct conn_handlers smtp_conn_handlers = {
    .on_tls_ready = on_tls_ready,
    .on_data = on_data,
    .on_drained = on_drained,
    .on_closed = on_closed,
    .on_timeout = on_timeout,
};

int smtp_session_count(void) { return __atomic_load_n(&total_sessions, __ATOMIC_SEQ_CST); }

static int shutting_down(const struct smtp_server *srv)
{
    return __atomic_load_n(&srv->shutting_down, __ATOMIC_SEQ_CST);
}
int smtp_is_submission(const struct smtp_session *s) { return s->lc.kind != LK_SMTP; }
int smtp_is_tls(const struct smtp_session *s) { return s->conn && conn_is_tls(s->conn); }

void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
    if (!s->conn || s->gone)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 3)
        n = (int)sizeof line - 3;
    line[n++] = '\r';
    line[n++] = '\n';
    conn_write(s->conn, line, (size_t)n);
}

void smtp_count_bad(struct smtp_session *s)
{
    if (++s->bad_commands >= SMTP_MAX_BAD_COMMANDS) {
        smtp_reply(s, "421 4.7.0 Too many errors, closing connection");
        log_info("smtp", "event=too-many-errors session=%s client=%s", s->id, s->peer);
        smtp_close(s);
    }
}

void smtp_tx_free(struct smtp_tx **txp)
{
    struct smtp_tx *tx = *txp;
    if (!tx)
        return;
    for (int i = 0; i < tx->nrcpt; i++) {
        free(tx->rcpts[i].address);
        free(tx->rcpts[i].account);
    }
    free(tx->rcpts);
    free(tx->rooms);
    buf_deinit(&tx->data);
    free(tx);
    *txp = NULL;
}

void smtp_tx_reset(struct smtp_session *s)
{
    smtp_tx_free(&s->tx);
}

static void smtp_session_free(struct smtp_session *s)
{
    struct smtp_loop *sl = smtp_loop_of(s->loop);
    if (s->prev)
        s->prev->next = s->next;
    else
        sl->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    int left = __atomic_sub_fetch(&total_sessions, 1, __ATOMIC_SEQ_CST);
    smtp_tx_free(&s->tx);
    if (s->sasl)
        gsasl_finish(s->sasl);
    sasl_creds_clear(&s->creds);
    if (s->session_timer)
        event_free(s->session_timer);
    netlimit_release(s->peer);
    struct smtp_server *srv = s->srv;
    free(s);
    if (left == 0 && shutting_down(srv) && srv->on_idle)
        srv->on_idle();
}

void smtp_close(struct smtp_session *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    s->state = SS_QUIT;
    if (s->conn)
        conn_close(s->conn);
}

void smtp_job_begin(struct smtp_session *s)
{
    s->busy++;
}

int smtp_job_end(struct smtp_session *s)
{
    s->busy--;
    if (s->gone) {
        if (s->busy == 0)
            smtp_session_free(s);
        return -1;
    }
    return 0;
}

static void on_session_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_session *s = arg;
    if (s->busy || s->closing)
        return;
    smtp_reply(s, "421 4.4.2 Session time limit exceeded, closing connection");
    log_info("smtp", "event=session-timeout session=%s client=%s", s->id, s->peer);
    smtp_close(s);
}

static void greet(struct smtp_session *s)
{
    s->state = SS_CMD;
    smtp_reply(s, "220 %s ESMTP Roost", s->srv->cfg->hostname);
}

void smtp_accept(struct loop *loop, int fd, const char *peer, const struct listener_conf *lc,
                 void *arg)
{
    struct smtp_server *srv = arg;
    enum netlimit_result lim = netlimit_acquire(peer, srv->cfg->max_connections,
                                                srv->cfg->max_connections_per_ip);
    int stopping = shutting_down(srv);
    if (lim != NETLIMIT_OK || stopping) {
        /* Plaintext listeners get a 421; implicit TLS ones just a close. */
        if (lc->kind != LK_SUBMISSIONS) {
            const char *msg = stopping
                                  ? "421 4.3.2 Service shutting down\r\n"
                                  : "421 4.7.0 Too many connections, try again later\r\n";
            ssize_t w = write(fd, msg, strlen(msg));
            (void)w;
        }
        log_info("smtp", "event=connection-refused client=%s listener=%s reason=%s", peer,
                 listener_kind_name(lc->kind),
                 stopping ? "shutdown" : lim == NETLIMIT_TOTAL ? "max-connections" : "max-per-address");
        if (lim == NETLIMIT_OK)
            netlimit_release(peer);
        close(fd);
        return;
    }
    struct smtp_session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    s->loop = loop;
    s->lc = *lc;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    for (int i = 0; i < 6; i++)
        snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
    s->conn = conn_new(loop, fd, peer, lc->kind == LK_SUBMISSIONS, &smtp_conn_handlers, s);
    if (!s->conn) {
        netlimit_release(peer);
        free(s);
        return;
    }
    conn_set_metrics_kind(s->conn, lc->kind);
    struct smtp_loop *sl = smtp_loop_of(loop);
    s->next = sl->sessions;
    if (sl->sessions)
        sl->sessions->prev = s;
    sl->sessions = s;
    __atomic_add_fetch(&total_sessions, 1, __ATOMIC_SEQ_CST);
    conn_set_idle_timeout(s->conn, srv->cfg->idle_timeout);
    s->session_timer = event_new(loop_base(loop), -1, 0, on_session_timer, s);
    struct timeval tv = {.tv_sec = srv->cfg->session_timeout};
    event_add(s->session_timer, &tv);
    log_info("smtp", "event=connect session=%s client=%s port=%d listener=%s local_port=%d",
             s->id, s->peer, sock_peer_port(fd), listener_kind_name(lc->kind), sock_local_port(fd));
    if (lc->kind == LK_SUBMISSIONS)
        s->state = SS_TLS_HANDSHAKE;
    else
        greet(s);
}

static void on_tls_ready(void *ctx)
{
    struct smtp_session *s = ctx;
    SSL *ssl = conn_ssl(s->conn);
    log_info("smtp", "event=tls session=%s client=%s version=%s cipher=%s mode=%s", s->id,
             s->peer, tls_version_name(ssl), tls_cipher_name(ssl),
             s->state == SS_TLS_HANDSHAKE ? "implicit" : "starttls");
    if (s->state == SS_TLS_HANDSHAKE) {
        greet(s);
    } else if (s->state == SS_STARTTLS) {
        s->state = SS_CMD;
        smtp_resume(s);
    }
}

static void on_closed(void *ctx, enum conn_close_reason why)
{
    static const char *const names[] = {"quit", "eof", "error", "timeout", "tls-failed"};
    struct smtp_session *s = ctx;
    log_info("smtp", "event=disconnect session=%s client=%s reason=%s messages=%lu", s->id,
             s->peer, names[why], s->messages);
    s->conn = NULL;
    s->gone = 1;
    if (s->busy == 0)
        smtp_session_free(s);
}

static void on_timeout(void *ctx)
{
    struct smtp_session *s = ctx;
    smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->srv->cfg->hostname);
    log_info("smtp", "event=idle-timeout session=%s client=%s", s->id, s->peer);
    smtp_close(s);
}

static void on_drained(void *ctx)
{
    struct smtp_session *s = ctx;
    smtp_resume(s);
}

static void on_data(void *ctx)
{
    struct smtp_session *s = ctx;
    smtp_resume(s);
}

/* Takes one line from the input. Returns 1 with the line (CRLF removed) in
 * LINE/LEN_R, 0 when more input is needed, -1 when an overlong line was
 * refused (the caller continues). *BARE_LF_R is set when the line ended in
 * LF without CR. */
static void refuse_long_line(struct smtp_session *s)
{
    smtp_reply(s, "500 5.5.2 Line too long");
    log_info("smtp", "event=line-too-long session=%s client=%s", s->id, s->peer);
    smtp_count_bad(s);
}

/* Takes one line from the input. Returns 1 with the line (CRLF removed) in
 * LINE/LEN_R, 0 when more input is needed, -1 when an overlong line was
 * refused or skipped (the caller continues). An overlong line is answered
 * as soon as it passes MAX, then skipped up to its LF. *BARE_LF_R is set
 * when the line ended in LF without CR. */
static int read_line(struct smtp_session *s, char *line, size_t max, size_t *len_r, int *bare_lf_r)
{
    struct evbuffer *in = conn_input(s->conn);
    size_t eol_len = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    if (p.pos < 0) {
        size_t have = evbuffer_get_length(in);
        if (have > max || s->skipping_long_line) {
            evbuffer_drain(in, have);
            if (!s->skipping_long_line) {
                s->skipping_long_line = 1;
                refuse_long_line(s);
            }
        }
        return 0;
    }
    size_t pos = (size_t)p.pos;
    if (s->skipping_long_line || pos > max) {
        evbuffer_drain(in, pos + 1);
        if (!s->skipping_long_line)
            refuse_long_line(s);
        s->skipping_long_line = 0;
        return -1;
    }
    evbuffer_remove(in, line, pos + 1);
    *len_r = pos;
    *bare_lf_r = !(pos > 0 && line[pos - 1] == '\r');
    if (!*bare_lf_r)
        (*len_r)--;
    line[*len_r] = '\0';
    return 1;
}

static void feed_data(struct smtp_session *s)
{
    struct evbuffer *in = conn_input(s->conn);
    struct smtp_tx *tx = s->tx;
    while (!tx->rd.done && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = smtp_data_feed(&tx->rd, v.iov_base, v.iov_len, &tx->data);
        evbuffer_drain(in, used);
    }
    if (tx->rd.done)
        smtp_message_complete(s, tx->rd.oversize, tx->rd.bare_eol);
}

static void feed_bdat(struct smtp_session *s)
{
    struct evbuffer *in = conn_input(s->conn);
    struct smtp_tx *tx = s->tx;
    size_t max = s->srv->cfg->max_message_size;
    while (tx->bdat_left > 0 && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t n = v.iov_len;
        if (n > tx->bdat_left)
            n = (size_t)tx->bdat_left;
        if (smtp_bare_eol_scan(v.iov_base, n, &tx->bdat_bare_state))
            tx->bdat_bare = 1;
        if (!tx->bdat_oversize && (tx->bdat_size + n > max ||
                                   buf_append(&tx->data, v.iov_base, n) < 0))
            tx->bdat_oversize = 1;
        tx->bdat_size += n;
        tx->bdat_left -= n;
        evbuffer_drain(in, n);
    }
    if (tx->bdat_left > 0)
        return;
    s->state = SS_CMD;
    if (!tx->bdat_last) {
        smtp_reply(s, "250 2.0.0 %zu octets received", tx->bdat_size);
        return;
    }
    /* A bare CR pending at the very end of the last chunk is bare too. */
    if (smtp_bare_eol_scan("", 0, &tx->bdat_bare_state) || tx->bdat_bare_state)
        tx->bdat_bare = 1;
    smtp_message_complete(s, tx->bdat_oversize, tx->bdat_bare);
}

void smtp_discard(struct smtp_session *s, unsigned long long n)
{
    if (n == 0)
        return;
    s->discard_left = n;
    s->state = SS_DISCARD;
}

static void feed_discard(struct smtp_session *s)
{
    struct evbuffer *in = conn_input(s->conn);
    size_t have = evbuffer_get_length(in);
    size_t n = have < s->discard_left ? have : (size_t)s->discard_left;
    evbuffer_drain(in, n);
    s->discard_left -= n;
    if (s->discard_left == 0)
        s->state = SS_CMD;
}

/* Processes buffered input until a job is in flight, input runs out or
 * the session closes. */
void smtp_resume(struct smtp_session *s)
{
    char line[SMTP_MAX_AUTH_LINE + 2];
    while (s->conn && !s->busy && !s->closing) {
        if (conn_output_len(s->conn) > SMTP_OUTPUT_HIGH_WATER)
            return; /* on_drained resumes */
        if (s->state == SS_DATA) {
            feed_data(s);
            if (s->state == SS_DATA)
                return;
            continue;
        }
        if (s->state == SS_DISCARD) {
            feed_discard(s);
            if (s->state == SS_DISCARD)
                return;
            continue;
        }
        if (s->state == SS_BDAT) {
            feed_bdat(s);
            if (s->state == SS_BDAT)
                return;
            continue;
        }
        if (s->state != SS_CMD && s->state != SS_AUTH)
            return;
        /* RFC 4954 4: an AUTH command with its initial response, and each
         * SASL response, may be up to 12288 octets; other commands 2048. */
        size_t len = 0;
        int bare_lf = 0;
        int r = read_line(s, line, SMTP_MAX_AUTH_LINE + 1, &len, &bare_lf);
        if (r == 0)
            return;
        if (r < 0)
            continue;
        if (s->state == SS_CMD && len > SMTP_MAX_LINE && strncasecmp(line, "AUTH ", 5) != 0) {
            refuse_long_line(s);
            continue;
        }
        if (bare_lf) {
            smtp_reply(s, "500 5.5.2 Syntax error: command lines must end with CRLF");
            log_info("smtp", "event=bare-lf-command session=%s client=%s", s->id, s->peer);
            if (s->state == SS_AUTH) {
                s->state = SS_CMD;
                if (s->sasl) {
                    gsasl_finish(s->sasl);
                    s->sasl = NULL;
                }
            }
            smtp_count_bad(s);
            continue;
        }
        if (s->state == SS_AUTH)
            smtp_auth_response(s, line, len);
        else
            smtp_dispatch(s, line, len);
        explicit_bzero(line, len);
    }
}

void smtp_begin_shutdown(struct smtp_server *srv)
{
    __atomic_store_n(&srv->shutting_down, 1, __ATOMIC_SEQ_CST);
    if (smtp_session_count() == 0 && srv->on_idle)
        srv->on_idle();
}


void smtp_loop_shutdown(struct loop *loop)
{
    struct smtp_loop *sl = loop_get_slot(loop, LOOP_SLOT_SMTP);
    for (struct smtp_session *s = sl ? sl->sessions : NULL; s; s = s->next) {
        if (!s->tx && !s->busy && !s->closing && s->state == SS_CMD) {
            smtp_reply(s, "421 4.3.2 Service shutting down");
            smtp_close(s);
        }
    }
}

void smtp_loop_free(struct loop *loop)
{
    free(loop_get_slot(loop, LOOP_SLOT_SMTP));
    loop_set_slot(loop, LOOP_SLOT_SMTP, NULL);
}
