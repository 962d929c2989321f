/* pop3_session: one POP3 server connection: accept and connection limits,
 * greeting, reading command lines (bounded; CRLF required), pausing while
 * a job runs or a message streams, timeouts, shutdown and the session's
 * end. Command semantics live in pop3_cmds.c, RETR/TOP streaming in
 * pop3_retr.c, worker round trips in pop3_job.c.
 *
 * Invariants: at most one command is processed at a time; while s->busy a
 * job is in flight, and while s->retr is set a message is being streamed:
 * in both cases nothing more is read from the input buffer (libevent stops
 * reading at the conn's high-water mark). A session whose connection closes
 * while busy is freed by the last job's completion. A session that ends
 * without QUIT changes nothing in the maildrop; its lock is released. */
#include "pop3/pop3_int.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/sockport.h"
#include "net/tls.h"

#include <event2/buffer.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Each loop keeps its own list of sessions (loop slot LOOP_SLOT_POP3); the
 * only state shared between loops is the atomic session count that tells
 * shutdown when the last session has ended. */
struct pop3_loop {
    struct pop3_session *sessions;
};

static int total_sessions; /* atomic */

static struct pop3_loop *pop3_loop_of(struct loop *l)
{
    struct pop3_loop *pl = loop_get_slot(l, LOOP_SLOT_POP3);
    if (!pl) {
        pl = xcalloc(1, sizeof *pl);
        loop_set_slot(l, LOOP_SLOT_POP3, pl);
    }
    return pl;
}

static void on_tls_ready(void *ctx);
static void on_data(void *ctx);
static void on_drained(void *ctx);
static void on_closed(void *ctx, enum conn_close_reason why);
static void on_timeout(void *ctx);

static const struct conn_handlers pop3_conn_handlers = {
    .on_tls_ready = on_tls_ready,
    .on_data = on_data,
    .on_drained = on_drained,
    .on_closed = on_closed,
    .on_timeout = on_timeout,
};

int pop3_session_count(void) { return __atomic_load_n(&total_sessions, __ATOMIC_SEQ_CST); }

int pop3_shutting_down(const struct pop3_server *srv)
{
    return __atomic_load_n(&srv->shutting_down, __ATOMIC_SEQ_CST);
}

int pop3_is_tls(const struct pop3_session *s) { return s->conn && conn_is_tls(s->conn); }

const char *pop3_state_name(enum pop3_state st)
{
    static const char *const names[] = {"tls-handshake", "authorization", "sasl", "stls",
                                        "transaction", "update", "closed"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

void pop3_set_state(struct pop3_session *s, enum pop3_state st)
{
    if (s->state == st)
        return;
    log_debug("pop3", "event=state session=%s from=%s to=%s", s->id, pop3_state_name(s->state),
              pop3_state_name(st));
    s->state = st;
}

void pop3_write(struct pop3_session *s, const void *p, size_t n)
{
    if (!s->conn || s->gone)
        return;
    conn_write(s->conn, p, n);
}

void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
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
    pop3_write(s, line, (size_t)n);
}

void pop3_close(struct pop3_session *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    pop3_set_state(s, P3_CLOSED);
    if (s->conn)
        conn_close(s->conn);
}

void pop3_count_bad(struct pop3_session *s)
{
    if (++s->bad_commands >= POP3_MAX_BAD_COMMANDS) {
        pop3_reply(s, "-ERR Too many errors");
        log_info("pop3", "event=too-many-errors session=%s client=%s", s->id, s->peer);
        pop3_close(s);
    }
}

static void pop3_session_free(struct pop3_session *s)
{
    struct pop3_loop *pl = pop3_loop_of(s->loop);
    if (s->prev)
        s->prev->next = s->next;
    else
        pl->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    int left = __atomic_sub_fetch(&total_sessions, 1, __ATOMIC_SEQ_CST);
    pop3_sasl_abort(s);
    pop3_retr_free(&s->retr);
    free(s->retr_in);
    free(s->retr_out);
    pop3_drop_maildrop(s, 0);
    netlimit_release(s->peer);
    struct pop3_server *srv = s->srv;
    free(s);
    if (left == 0 && pop3_shutting_down(srv) && srv->on_idle)
        srv->on_idle();
}

void pop3_job_begin(struct pop3_session *s)
{
    s->busy++;
}

int pop3_job_end(struct pop3_session *s)
{
    s->busy--;
    if (s->gone) {
        if (s->busy == 0)
            pop3_session_free(s);
        return -1;
    }
    return 0;
}

static void greet(struct pop3_session *s)
{
    pop3_set_state(s, P3_AUTHORIZATION);
    pop3_reply(s, "+OK Roost POP3 server ready");
}

static void make_id(char id[13])
{
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    for (int i = 0; i < 6; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
}

static int idle_timeout(const struct config *cfg)
{
    return cfg->idle_timeout > POP3_MIN_IDLE_TIMEOUT ? cfg->idle_timeout : POP3_MIN_IDLE_TIMEOUT;
}

static void refuse_connection(int fd, const char *peer, const struct listener_conf *lc,
                              int stopping, enum netlimit_result lim)
{
    /* The plaintext listener gets an -ERR; implicit TLS just a close. */
    if (lc->kind == LK_POP3) {
        const char *msg = stopping ? "-ERR [SYS/TEMP] Server shutting down\r\n"
                                   : "-ERR [SYS/TEMP] Too many connections, try again later\r\n";
        ssize_t w = write(fd, msg, strlen(msg));
        (void)w;
    }
    log_info("pop3", "event=connection-refused client=%s listener=%s reason=%s", peer,
             listener_kind_name(lc->kind),
             stopping ? "shutdown" : lim == NETLIMIT_TOTAL ? "max-connections" : "max-per-address");
    close(fd);
}

void pop3_accept(struct loop *loop, int fd, const char *peer, const struct listener_conf *lc,
                 void *arg)
{
    struct pop3_server *srv = arg;
    enum netlimit_result lim = netlimit_acquire(peer, srv->cfg->max_connections,
                                                srv->cfg->max_connections_per_ip);
    int stopping = pop3_shutting_down(srv);
    if (lim != NETLIMIT_OK || stopping) {
        if (lim == NETLIMIT_OK)
            netlimit_release(peer);
        refuse_connection(fd, peer, lc, stopping, lim);
        return;
    }
    struct pop3_session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    s->loop = loop;
    s->lc = *lc;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    make_id(s->id);
    s->conn = conn_new(loop, fd, peer, lc->kind == LK_POP3S, &pop3_conn_handlers, s);
    if (!s->conn) {
        netlimit_release(peer);
        free(s);
        return;
    }
    conn_set_metrics_kind(s->conn, lc->kind);
    struct pop3_loop *pl = pop3_loop_of(loop);
    s->next = pl->sessions;
    if (pl->sessions)
        pl->sessions->prev = s;
    pl->sessions = s;
    __atomic_add_fetch(&total_sessions, 1, __ATOMIC_SEQ_CST);
    conn_set_idle_timeout(s->conn, idle_timeout(srv->cfg));
    log_info("pop3", "event=connect session=%s client=%s port=%d listener=%s local_port=%d",
             s->id, s->peer, sock_peer_port(fd), listener_kind_name(lc->kind), sock_local_port(fd));
    if (lc->kind == LK_POP3S)
        s->state = P3_TLS_HANDSHAKE;
    else
        greet(s);
}

static void on_tls_ready(void *ctx)
{
    struct pop3_session *s = ctx;
    SSL *ssl = conn_ssl(s->conn);
    log_info("pop3", "event=tls session=%s client=%s version=%s cipher=%s mode=%s", s->id,
             s->peer, tls_version_name(ssl), tls_cipher_name(ssl),
             s->state == P3_TLS_HANDSHAKE ? "implicit" : "starttls");
    if (s->state == P3_TLS_HANDSHAKE) {
        greet(s);
    } else if (s->state == P3_STLS) {
        pop3_set_state(s, P3_AUTHORIZATION);
        pop3_resume(s);
    }
}

static void on_closed(void *ctx, enum conn_close_reason why)
{
    static const char *const names[] = {"quit", "eof", "error", "timeout", "tls-failed"};
    struct pop3_session *s = ctx;
    log_info("pop3", "event=disconnect session=%s client=%s reason=%s account=%s retrieved=%lu",
             s->id, s->peer, names[why], s->account[0] ? s->account : "-", s->retrs);
    s->conn = NULL;
    s->gone = 1;
    if (s->busy == 0)
        pop3_session_free(s);
}

/* RFC 1939 3: the autologout timer. While a message streams to a client
 * that reads it, the client sends nothing: that is not idleness. */
static void on_timeout(void *ctx)
{
    struct pop3_session *s = ctx;
    if (s->retr && s->streamed != s->stream_mark) {
        s->stream_mark = s->streamed;
        conn_resume_read(s->conn); /* re-arms the timer */
        return;
    }
    log_info("pop3", "event=idle-timeout session=%s client=%s streaming=%d", s->id, s->peer,
             s->retr != NULL);
    if (s->retr) {
        /* a stalled stream: no reply can go into the middle of a message */
        pop3_close(s);
        return;
    }
    pop3_reply(s, "-ERR Disconnected for inactivity");
    pop3_close(s);
}

static void on_drained(void *ctx)
{
    pop3_resume(ctx);
}

static void on_data(void *ctx)
{
    pop3_resume(ctx);
}

static void refuse_long_line(struct pop3_session *s)
{
    if (s->state == P3_SASL)
        pop3_sasl_abort(s);
    pop3_reply(s, "-ERR Line too long");
    log_info("pop3", "event=line-too-long session=%s client=%s", s->id, s->peer);
    pop3_count_bad(s);
}

/* Takes one line from the input. Returns 1 with the line (CRLF removed,
 * NUL-terminated) in LINE/LEN_R, 0 when more input is needed, -1 when an
 * overlong line was refused or skipped (the caller continues). An overlong
 * line is answered as soon as it passes MAX, then skipped up to its LF.
 * *BARE_LF_R is set when the line ended in LF without CR. */
static int read_line(struct pop3_session *s, char *line, size_t max, size_t *len_r,
                     int *bare_lf_r)
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
    if (evbuffer_remove(in, line, pos + 1) != (int)(pos + 1))
        return -1;
    *len_r = pos;
    *bare_lf_r = !(pos > 0 && line[pos - 1] == '\r');
    if (!*bare_lf_r)
        (*len_r)--;
    line[*len_r] = '\0';
    return 1;
}

static int is_auth_command(const char *line, size_t len)
{
    return len >= 5 && strncasecmp(line, "AUTH ", 5) == 0;
}

static void close_for_shutdown(struct pop3_session *s)
{
    pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
    log_info("pop3", "event=shutdown-close session=%s client=%s state=%s", s->id, s->peer,
             pop3_state_name(s->state));
    pop3_close(s);
}

/* Processes buffered input until a job is in flight, a message streams,
 * input runs out or the session closes. */
void pop3_resume(struct pop3_session *s)
{
    char line[POP3_MAX_AUTH_CMD_LINE + 2];
    while (s->conn && !s->gone && !s->busy && !s->closing) {
        if (s->retr) {
            pop3_retr_continue(s);
            if (s->retr || s->busy)
                return; /* the job or on_drained resumes */
            continue;
        }
        if (conn_output_len(s->conn) > POP3_OUTPUT_LOW_WATER)
            return; /* on_drained resumes (LIST/UIDL of a large maildrop) */
        if (s->state != P3_AUTHORIZATION && s->state != P3_TRANSACTION && s->state != P3_SASL)
            return;
        if (pop3_shutting_down(s->srv)) {
            /* a command or stream that was running at SIGTERM has ended */
            close_for_shutdown(s);
            return;
        }
        /* RFC 5034 4: an initial response and SASL responses may be up
         * to 12288 octets; other commands POP3_MAX_LINE. */
        size_t len = 0;
        int bare_lf = 0;
        int r = read_line(s, line, POP3_MAX_AUTH_CMD_LINE, &len, &bare_lf);
        if (r == 0)
            return;
        if (r < 0)
            continue;
        if (s->state == P3_SASL ? len > POP3_MAX_AUTH_LINE
                                : len > POP3_MAX_LINE && !is_auth_command(line, len)) {
            refuse_long_line(s);
            explicit_bzero(line, len);
            continue;
        }
        if (bare_lf) {
            pop3_reply(s, "-ERR Syntax error: command lines must end with CRLF");
            log_info("pop3", "event=bare-lf-command session=%s client=%s", s->id, s->peer);
            if (s->state == P3_SASL)
                pop3_sasl_abort(s);
            pop3_count_bad(s);
            explicit_bzero(line, len);
            continue;
        }
        if (s->state == P3_SASL)
            pop3_sasl_response(s, line, len);
        else
            pop3_dispatch(s, line, len);
        explicit_bzero(line, len);
    }
}

void pop3_begin_shutdown(struct pop3_server *srv)
{
    __atomic_store_n(&srv->shutting_down, 1, __ATOMIC_SEQ_CST);
    if (pop3_session_count() == 0 && srv->on_idle)
        srv->on_idle();
}

/* Ends the sessions of LOOP that are between commands; the others end as
 * soon as their command or stream is done (pop3_resume). Their changes are
 * not applied (no UPDATE without QUIT); their maildrop locks are released. */
void pop3_loop_shutdown(struct loop *loop)
{
    struct pop3_loop *pl = loop_get_slot(loop, LOOP_SLOT_POP3);
    for (struct pop3_session *s = pl ? pl->sessions : NULL; s; s = s->next) {
        if (s->busy || s->closing || s->retr)
            continue;
        if (s->state == P3_AUTHORIZATION || s->state == P3_TRANSACTION || s->state == P3_SASL)
            close_for_shutdown(s);
    }
}

/* After the loops stopped and the worker pool is gone: release the locks
 * of sessions that never ended (forced shutdown) and free the slot. */
void pop3_loop_free(struct loop *loop)
{
    struct pop3_loop *pl = loop_get_slot(loop, LOOP_SLOT_POP3);
    if (!pl)
        return;
    for (struct pop3_session *s = pl->sessions; s; s = s->next)
        pop3_drop_maildrop(s, 1);
    free(pl);
    loop_set_slot(loop, LOOP_SLOT_POP3, NULL);
}
