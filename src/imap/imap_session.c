/* imap_session: one IMAP server connection: accept and connection limits,
 * greeting, framing commands with the reader (imap_parse.h) and running them
 * one at a time, the raw lines of AUTHENTICATE and IDLE, ending commands
 * (tagged replies after the sync step), timeouts, the notifier's handler,
 * shutdown and the session's end. Command semantics live in the other
 * files of src/imap/ (imap_int.h describes the whole).
 *
 * Invariants: at most one command runs at a time (s->in_command); while it
 * runs nothing more is taken from the input buffer, so pipelined commands
 * run in order after it (libevent stops reading at the conn's high-water
 * mark). While s->busy a job is in flight and only its continuation may
 * touch the command. A session whose connection closes while busy is freed
 * by the last job's completion. */
#include "imap/imap_int.h"
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
#include <time.h>
#include <unistd.h>

/* Before login the autologout is short (RFC 9051 5.4 sets the 30-minute
 * minimum for authenticated sessions only). */
#define IMAP_PREAUTH_TIMEOUT 180
/* An APPEND literal before login is refused from its announced size. */
#define IMAP_PREAUTH_APPEND_LIMIT 4096

/* Each loop keeps its own list of sessions (loop slot LOOP_SLOT_IMAP); the
 * only state shared between loops is the atomic session count that tells
 * shutdown when the last session has ended. */
struct imap_loop {
    struct imap_session *sessions;
};

static int total_sessions; /* atomic */

static struct imap_loop *imap_loop_of(struct loop *l)
{
    struct imap_loop *il = loop_get_slot(l, LOOP_SLOT_IMAP);
    if (!il) {
        il = xcalloc(1, sizeof *il);
        loop_set_slot(l, LOOP_SLOT_IMAP, il);
    }
    return il;
}

static void on_tls_ready(void *ctx);
static void on_data(void *ctx);
static void on_drained(void *ctx);
static void on_closed(void *ctx, enum conn_close_reason why);
static void on_timeout(void *ctx);

static const struct conn_handlers imap_conn_handlers = {
    .on_tls_ready = on_tls_ready,
    .on_data = on_data,
    .on_drained = on_drained,
    .on_closed = on_closed,
    .on_timeout = on_timeout,
};

int imap_session_count(void) { return __atomic_load_n(&total_sessions, __ATOMIC_SEQ_CST); }

int imap_shutting_down(const struct imap_server *srv)
{
    return __atomic_load_n(&srv->shutting_down, __ATOMIC_SEQ_CST);
}

int imap_is_tls(const struct imap_session *s) { return s->conn && conn_is_tls(s->conn); }

const char *imap_state_name(enum imap_state st)
{
    static const char *const names[] = {"tls-handshake", "not-authenticated", "authenticated",
                                        "selected", "logout"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

void imap_set_state(struct imap_session *s, enum imap_state st)
{
    if (s->state == st)
        return;
    log_debug("imap", "event=state session=%s from=%s to=%s", s->id, imap_state_name(s->state),
              imap_state_name(st));
    s->state = st;
}

/* ---------------------------------------------------------------- output */

void imap_write(struct imap_session *s, const void *p, size_t n)
{
    if (!s->conn || s->gone || n == 0)
        return;
    if (s->z)
        imap_compress_write(s, p, n);
    else
        conn_write(s->conn, p, n);
    s->written += n;
}

size_t imap_output_len(struct imap_session *s)
{
    return s->conn ? conn_output_len(s->conn) : 0;
}

/* Formats PREFIX + FMT + CRLF and writes it. Lines are short texts; an
 * overlong one is cut (never a protocol value: those go through bufs). */
static void write_line(struct imap_session *s, const char *prefix, const char *fmt, va_list ap)
{
    char line[2048];
    size_t plen = strlen(prefix);
    if (plen > sizeof line / 2)
        plen = sizeof line / 2;
    memcpy(line, prefix, plen);
    int n = vsnprintf(line + plen, sizeof line - plen - 2, fmt, ap);
    if (n < 0)
        return;
    size_t len = plen + (size_t)n;
    if (len > sizeof line - 3)
        len = sizeof line - 3;
    line[len++] = '\r';
    line[len++] = '\n';
    imap_write(s, line, len);
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(s, "* ", fmt, ap);
    va_end(ap);
}

void imap_continuation(struct imap_session *s, const char *text)
{
    char line[256];
    int n = snprintf(line, sizeof line, "+ %s\r\n", text);
    if (n > 0 && (size_t)n < sizeof line)
        imap_write(s, line, (size_t)n);
}

void imap_close(struct imap_session *s, const char *bye_text)
{
    if (s->closing)
        return;
    if (bye_text)
        imap_untagged(s, "BYE %s", bye_text);
    s->closing = 1;
    imap_set_state(s, IMAP_ST_LOGOUT);
    if (s->conn)
        conn_close(s->conn);
}

int imap_count_bad(struct imap_session *s)
{
    if (++s->bad_commands >= IMAP_MAX_BAD_COMMANDS) {
        log_info("imap", "event=too-many-errors session=%s client=%s", s->id, s->peer);
        imap_close(s, "Too many invalid commands");
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- ending commands */

static void free_command_state(struct imap_session *s)
{
    s->more = NULL;
    if (s->cmd_ctx && s->cmd_ctx_free)
        s->cmd_ctx_free(s->cmd_ctx);
    s->cmd_ctx = NULL;
    s->cmd_ctx_free = NULL;
}

static void end_command(struct imap_session *s)
{
    free_command_state(s);
    if (s->in_command)
        imap_command_free(&s->cmd);
    memset(&s->cmd, 0, sizeof s->cmd);
    s->in_command = 0;
    s->cmd_flags = 0;
}

/* The sync step is done: the tagged reply goes out and the command ends. */
static void write_pending_reply(struct imap_session *s)
{
    if (s->pending_reply) {
        imap_write(s, s->pending_reply, strlen(s->pending_reply));
        free(s->pending_reply);
        s->pending_reply = NULL;
    }
    end_command(s);
}

static void finish(struct imap_session *s, const char *status, int sync, const char *fmt,
                   va_list ap)
{
    if (!s->in_command || s->pending_reply)
        return; /* ended already: a bug in the caller, but never two replies */
    free_command_state(s);
    if (strcmp(status, "OK") == 0)
        s->bad_commands = 0; /* the bound is on invalid commands in a row */
    char text[1024];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n < 0)
        text[0] = '\0';
    s->pending_reply = xasprintf("%s %s %s\r\n", s->cmd.tag[0] ? s->cmd.tag : "*", status, text);
    if (sync && s->sel && !s->closing)
        imap_sync(s, 0, write_pending_reply);
    else
        write_pending_reply(s);
}

void imap_ok(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finish(s, "OK", 1, fmt, ap);
    va_end(ap);
}

void imap_no(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finish(s, "NO", 1, fmt, ap);
    va_end(ap);
}

void imap_ok_nosync(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finish(s, "OK", 0, fmt, ap);
    va_end(ap);
}

void imap_bad(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finish(s, "BAD", 0, fmt, ap);
    va_end(ap);
    imap_count_bad(s);
}

/* ---------------------------------------------------------------- session life */

static void imap_session_free(struct imap_session *s)
{
    struct imap_loop *il = imap_loop_of(s->loop);
    if (s->prev)
        s->prev->next = s->next;
    else
        il->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    int left = __atomic_sub_fetch(&total_sessions, 1, __ATOMIC_SEQ_CST);
    imap_sasl_abort(s);
    free(s->pending_reply);
    end_command(s);
    imap_selected_free(&s->sel);
    imap_reader_free(&s->reader);
    imap_compress_free(s);
    netlimit_release(s->peer);
    struct imap_server *srv = s->srv;
    free(s);
    if (left == 0 && imap_shutting_down(srv) && srv->on_idle)
        srv->on_idle();
}

void imap_job_begin(struct imap_session *s)
{
    s->busy++;
}

int imap_job_end(struct imap_session *s)
{
    s->busy--;
    if (s->gone) {
        if (s->busy == 0)
            imap_session_free(s);
        return -1;
    }
    return 0;
}

size_t imap_append_limit(const struct imap_session *s)
{
    return s->srv->cfg->max_message_size;
}

void imap_reader_reset(struct imap_session *s)
{
    imap_reader_free(&s->reader);
    s->reader = imap_reader_new(s->account[0] ? imap_append_limit(s)
                                              : IMAP_PREAUTH_APPEND_LIMIT);
}

void imap_session_timeouts(struct imap_session *s)
{
    if (!s->conn)
        return;
    if (!s->account[0]) {
        conn_set_idle_timeout(s->conn, IMAP_PREAUTH_TIMEOUT);
        return;
    }
    const struct config *cfg = s->srv->cfg;
    conn_set_idle_timeout(s->conn, cfg->idle_timeout > IMAP_IDLE_TIMEOUT ? cfg->idle_timeout
                                                                          : IMAP_IDLE_TIMEOUT);
}

static void greet(struct imap_session *s)
{
    imap_set_state(s, IMAP_ST_NOT_AUTH);
    struct buf caps;
    buf_init(&caps, 4096);
    imap_capability_string(s, &caps);
    imap_untagged(s, "OK [CAPABILITY %s] Roost IMAP4rev1 ready", caps.data ? caps.data : "");
    buf_deinit(&caps);
}

static void make_id(char id[13])
{
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    for (int i = 0; i < 6; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
}

static void refuse_connection(int fd, const char *peer, const struct listener_conf *lc,
                              int stopping, enum netlimit_result lim)
{
    /* The plaintext listener gets a BYE; implicit TLS just a close. */
    if (lc->kind == LK_IMAP) {
        const char *msg = stopping ? "* BYE [UNAVAILABLE] Server shutting down\r\n"
                                   : "* BYE [UNAVAILABLE] Too many connections, try again later\r\n";
        ssize_t w = write(fd, msg, strlen(msg));
        (void)w;
    }
    log_info("imap", "event=connection-refused client=%s listener=%s reason=%s", peer,
             listener_kind_name(lc->kind),
             stopping ? "shutdown" : lim == NETLIMIT_TOTAL ? "max-connections" : "max-per-address");
    close(fd);
}

void imap_accept(struct loop *loop, int fd, const char *peer, const struct listener_conf *lc,
                 void *arg)
{
    struct imap_server *srv = arg;
    enum netlimit_result lim = netlimit_acquire(peer, srv->cfg->max_connections,
                                                srv->cfg->max_connections_per_ip);
    int stopping = imap_shutting_down(srv);
    if (lim != NETLIMIT_OK || stopping) {
        if (lim == NETLIMIT_OK)
            netlimit_release(peer);
        refuse_connection(fd, peer, lc, stopping, lim);
        return;
    }
    struct imap_session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    s->loop = loop;
    s->lc = *lc;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    make_id(s->id);
    s->conn = conn_new(loop, fd, peer, lc->kind == LK_IMAPS, &imap_conn_handlers, s);
    if (!s->conn) {
        netlimit_release(peer);
        free(s);
        return;
    }
    conn_set_metrics_kind(s->conn, lc->kind);
    imap_reader_reset(s);
    struct imap_loop *il = imap_loop_of(loop);
    s->next = il->sessions;
    if (il->sessions)
        il->sessions->prev = s;
    il->sessions = s;
    __atomic_add_fetch(&total_sessions, 1, __ATOMIC_SEQ_CST);
    imap_session_timeouts(s);
    log_info("imap", "event=connect session=%s client=%s port=%d listener=%s local_port=%d",
             s->id, s->peer, sock_peer_port(fd), listener_kind_name(lc->kind), sock_local_port(fd));
    if (lc->kind == LK_IMAPS)
        s->state = IMAP_ST_TLS_HANDSHAKE;
    else
        greet(s);
}

static void on_tls_ready(void *ctx)
{
    struct imap_session *s = ctx;
    SSL *ssl = conn_ssl(s->conn);
    log_info("imap", "event=tls session=%s client=%s version=%s cipher=%s mode=%s", s->id,
             s->peer, tls_version_name(ssl), tls_cipher_name(ssl),
             s->state == IMAP_ST_TLS_HANDSHAKE ? "implicit" : "starttls");
    if (s->state == IMAP_ST_TLS_HANDSHAKE) {
        greet(s);
    } else if (s->mode == IMAP_IN_STARTTLS) {
        s->mode = IMAP_IN_COMMAND;
        imap_resume(s);
    }
}

static void on_closed(void *ctx, enum conn_close_reason why)
{
    static const char *const names[] = {"logout", "eof", "error", "timeout", "tls-failed"};
    struct imap_session *s = ctx;
    log_info("imap", "event=disconnect session=%s client=%s reason=%s account=%s commands=%lu "
             "bytes_out=%llu", s->id, s->peer, names[why], s->account[0] ? s->account : "-",
             s->commands, s->written);
    s->conn = NULL;
    s->gone = 1;
    if (s->busy == 0)
        imap_session_free(s);
}

/* The autologout timer (RFC 9051 5.4), also in IDLE (RFC 2177 asks clients
 * to re-issue IDLE within 29 minutes). While a long response streams to a
 * client that reads it, the client sends nothing: that is not idleness. */
static void on_timeout(void *ctx)
{
    struct imap_session *s = ctx;
    if (s->in_command && s->mode != IMAP_IN_IDLE && s->written != s->timeout_mark) {
        s->timeout_mark = s->written;
        conn_resume_read(s->conn); /* re-arms the timer */
        return;
    }
    log_info("imap", "event=idle-timeout session=%s client=%s state=%s idle=%d", s->id, s->peer,
             imap_state_name(s->state), s->mode == IMAP_IN_IDLE);
    if (s->in_command && s->mode != IMAP_IN_IDLE) {
        /* a stalled response: nothing can go into its middle */
        s->closing = 1;
        conn_close(s->conn);
        return;
    }
    imap_close(s, "Autologout; idle for too long");
}

static void on_drained(void *ctx)
{
    imap_resume(ctx);
}

static void on_data(void *ctx)
{
    struct imap_session *s = ctx;
    if (s->z && imap_compress_input(s) < 0) {
        log_info("imap", "event=compress-error session=%s client=%s", s->id, s->peer);
        s->closing = 1;
        conn_close(s->conn);
        return;
    }
    imap_resume(s);
}

/* ---------------------------------------------------------------- input */

/* Takes one raw line (AUTHENTICATE response, IDLE's DONE) from the input.
 * Returns 1 with the line (CRLF or LF removed, NUL-terminated), 0 when more
 * input is needed, -1 when an overlong line was refused (the caller's mode
 * is ended by TOO_LONG). */
static int read_raw_line(struct imap_session *s, char *line, size_t max, size_t *len_r)
{
    struct evbuffer *in = imap_input(s);
    size_t eol_len = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    if (p.pos < 0) {
        if (evbuffer_get_length(in) > max) {
            /* drop the rest of that line as it comes: it is refused */
            evbuffer_drain(in, evbuffer_get_length(in));
            s->skipping_raw_line = 1;
            return -1;
        }
        return 0;
    }
    size_t pos = (size_t)p.pos;
    if (s->skipping_raw_line || pos > max) {
        evbuffer_drain(in, pos + 1);
        int was = s->skipping_raw_line;
        s->skipping_raw_line = 0;
        return was ? 2 : -1;
    }
    if (evbuffer_remove(in, line, pos + 1) != (int)(pos + 1))
        return -1;
    size_t len = pos;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    line[len] = '\0';
    *len_r = len;
    return 1;
}

static void idle_input(struct imap_session *s)
{
    char line[64];
    size_t len = 0;
    int r = read_raw_line(s, line, sizeof line - 2, &len);
    if (r == 0)
        return;
    if (r == 2) /* the tail of a refused line */
        return;
    imap_idle_line(s, r == 1 ? line : NULL, r == 1 ? len : 0);
}

static void sasl_input(struct imap_session *s)
{
    char *line = xmalloc(IMAP_MAX_RAW_LINE + 2);
    size_t len = 0;
    int r = read_raw_line(s, line, IMAP_MAX_RAW_LINE, &len);
    if (r == 1) {
        imap_sasl_line(s, line, len);
        explicit_bzero(line, len);
    } else if (r == -1) {
        imap_sasl_line(s, NULL, 0); /* too long: the exchange fails */
    }
    free(line);
}

static int is_message_command(const char *name)
{
    return strcmp(name, "FETCH") == 0 || strcmp(name, "STORE") == 0 ||
           strcmp(name, "SEARCH") == 0 || strcmp(name, "COPY") == 0;
}

static unsigned state_flag(enum imap_state st)
{
    switch (st) {
    case IMAP_ST_NOT_AUTH:
        return IMAP_CF_NOT_AUTH;
    case IMAP_ST_AUTH:
        return IMAP_CF_AUTH;
    case IMAP_ST_SELECTED:
        return IMAP_CF_SELECTED;
    default:
        return 0;
    }
}

/* Limits on commands that are not bad but get nowhere. */
static int count_command(struct imap_session *s, const struct imap_cmd_def *def)
{
    s->commands++;
    if (!s->account[0] && ++s->preauth_commands > IMAP_MAX_PREAUTH_COMMANDS) {
        log_info("imap", "event=too-many-commands session=%s client=%s state=%s", s->id,
                 s->peer, imap_state_name(s->state));
        imap_close(s, "Too many commands before login");
        return -1;
    }
    if (def && (def->flags & IMAP_CF_NOPROGRESS)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec != s->noprogress_second) {
            s->noprogress_second = now.tv_sec;
            s->noprogress = 0;
        }
        if (++s->noprogress > IMAP_MAX_NOPROGRESS_PER_SECOND) {
            log_info("imap", "event=no-progress session=%s client=%s", s->id, s->peer);
            imap_close(s, "Too many commands without progress");
            return -1;
        }
    } else {
        s->noprogress = 0;
    }
    return 0;
}

/* Parses and runs one framed command. */
static void run_command(struct imap_session *s, struct imap_framed *f)
{
    memset(&s->cmd, 0, sizeof s->cmd);
    enum imap_perr e = imap_parse_command(f, &s->cmd);
    imap_framed_free(&f);
    s->in_command = 1;
    s->cmd_flags = 0;
    if (e == IMAP_PERR_NO_TAG) {
        s->cmd.tag[0] = '\0';
        imap_bad(s, "%s", imap_perr_text(e));
        return;
    }
    if (e != IMAP_PERR_OK) {
        imap_bad(s, "%s", imap_perr_text(e));
        return;
    }
    const struct imap_cmd_def *def = imap_cmd_find(s->cmd.name);
    if (count_command(s, def) < 0) {
        end_command(s);
        return;
    }
    log_debug("imap", "event=command session=%s name=%s%s", s->id, s->cmd.uid ? "UID " : "",
              s->cmd.name);
    if (!def) {
        imap_bad(s, "Unknown command");
        return;
    }
    if (s->cmd.uid && !(def->flags & IMAP_CF_UID_OK)) {
        imap_bad(s, "Unknown command");
        return;
    }
    if (!(def->flags & state_flag(s->state))) {
        if (s->state == IMAP_ST_NOT_AUTH)
            imap_bad(s, "Log in first");
        else if (s->state == IMAP_ST_AUTH && (def->flags & IMAP_CF_SELECTED))
            imap_bad(s, "No mailbox selected");
        else
            imap_bad(s, "Command not valid in this state");
        return;
    }
    s->cmd_flags = def->flags;
    if (!s->cmd.uid && is_message_command(s->cmd.name))
        s->cmd_flags |= IMAP_CF_NO_EXPUNGE;
    def->fn(s, &s->cmd);
}

static void refuse_framing(struct imap_session *s, enum imap_read r)
{
    const char *tag = imap_reader_tag(s->reader);
    char t[IMAP_MAX_TAG + 1];
    snprintf(t, sizeof t, "%s", tag && *tag ? tag : "*");
    if (r == IMAP_READ_LINE_TOO_LONG) {
        log_info("imap", "event=line-too-long session=%s client=%s", s->id, s->peer);
        imap_write(s, t, strlen(t));
        imap_write(s, " BAD Line too long\r\n", 20);
    } else {
        log_info("imap", "event=literal-too-big session=%s client=%s", s->id, s->peer);
        imap_write(s, t, strlen(t));
        if (strcmp(t, "*") == 0)
            imap_write(s, " BAD [TOOBIG] Literal too big\r\n", 31);
        else
            imap_write(s, " NO [TOOBIG] Literal too big\r\n", 30);
    }
    imap_count_bad(s);
}

/* Feeds the reader from the input buffer until it frames a command (run
 * it), needs more input, or the session stops. */
static void command_input(struct imap_session *s)
{
    struct evbuffer *in = imap_input(s);
    while (!s->closing && !s->in_command && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return;
        size_t used = 0;
        enum imap_read r = imap_reader_feed(s->reader, v.iov_base, v.iov_len, &used);
        if (used > v.iov_len)
            used = v.iov_len;
        evbuffer_drain(in, used);
        switch (r) {
        case IMAP_READ_MORE:
            if (used == 0)
                return;
            break;
        case IMAP_READ_CONTINUE:
            imap_continuation(s, "OK");
            break;
        case IMAP_READ_COMMAND:
            run_command(s, imap_reader_take(s->reader));
            return;
        case IMAP_READ_LINE_TOO_LONG:
        case IMAP_READ_LITERAL_TOO_BIG:
            refuse_framing(s, r);
            break;
        }
    }
}

static void close_for_shutdown(struct imap_session *s)
{
    log_info("imap", "event=shutdown-close session=%s client=%s state=%s", s->id, s->peer,
             imap_state_name(s->state));
    imap_close(s, "[UNAVAILABLE] Server shutting down");
}

/* Processes buffered input and pending work until a job is in flight, a
 * multi-round command waits for output room, input runs out or the session
 * closes. */
void imap_resume(struct imap_session *s)
{
    while (s->conn && !s->gone && !s->busy && !s->closing) {
        if (s->z && imap_compress_input(s) < 0) {
            imap_close(s, NULL);
            return;
        }
        size_t unsent = conn_output_len(s->conn);
        if (s->more) {
            if (unsent > IMAP_OUTPUT_LOW_WATER)
                return; /* on_drained resumes */
            void (*more)(struct imap_session *) = s->more;
            more(s);
            continue;
        }
        if (s->mode == IMAP_IN_STARTTLS || s->state == IMAP_ST_TLS_HANDSHAKE)
            return;
        if (s->mode == IMAP_IN_IDLE) {
            if (imap_shutting_down(s->srv)) {
                close_for_shutdown(s);
                return;
            }
            size_t before = evbuffer_get_length(imap_input(s));
            if (s->dirty && !s->syncing) {
                imap_idle_sync(s);
                continue;
            }
            if (before == 0)
                return;
            idle_input(s);
            if (evbuffer_get_length(imap_input(s)) == before)
                return;
            continue;
        }
        if (s->mode == IMAP_IN_SASL) {
            size_t before = evbuffer_get_length(imap_input(s));
            if (before == 0)
                return;
            sasl_input(s);
            if (evbuffer_get_length(imap_input(s)) == before && s->mode == IMAP_IN_SASL)
                return;
            continue;
        }
        if (s->in_command)
            return; /* waiting for a job or for output room */
        if (unsent > IMAP_OUTPUT_LOW_WATER)
            return; /* a client that pipelines but does not read */
        if (imap_shutting_down(s->srv)) {
            close_for_shutdown(s);
            return;
        }
        if (evbuffer_get_length(imap_input(s)) == 0)
            return;
        command_input(s);
    }
}

/* ---------------------------------------------------------------- notifier */

void imap_notify_changed(struct loop *loop, const char *account)
{
    struct imap_loop *il = loop_get_slot(loop, LOOP_SLOT_IMAP);
    for (struct imap_session *s = il ? il->sessions : NULL; s; s = s->next) {
        if (!s->sel || s->gone || strcmp(s->account, account) != 0)
            continue;
        s->dirty = 1;
        if (s->mode == IMAP_IN_IDLE && !s->busy)
            imap_resume(s);
    }
}

/* ---------------------------------------------------------------- shutdown */

void imap_begin_shutdown(struct imap_server *srv)
{
    __atomic_store_n(&srv->shutting_down, 1, __ATOMIC_SEQ_CST);
    if (imap_session_count() == 0 && srv->on_idle)
        srv->on_idle();
}

/* Ends the sessions of LOOP that are between commands or in IDLE; the
 * others end as soon as their command is done (imap_resume). */
void imap_loop_shutdown(struct loop *loop)
{
    struct imap_loop *il = loop_get_slot(loop, LOOP_SLOT_IMAP);
    for (struct imap_session *s = il ? il->sessions : NULL; s; s = s->next) {
        if (s->busy || s->closing || s->gone)
            continue;
        if (s->mode == IMAP_IN_IDLE || (!s->in_command && s->mode == IMAP_IN_COMMAND &&
                                        s->state != IMAP_ST_TLS_HANDSHAKE))
            close_for_shutdown(s);
    }
}

/* After the loops stopped and the worker pool is gone: free the slot (the
 * sessions still there hold no locks; their memory goes with the process). */
void imap_loop_free(struct loop *loop)
{
    struct imap_loop *il = loop_get_slot(loop, LOOP_SLOT_IMAP);
    if (!il)
        return;
    free(il);
    loop_set_slot(loop, LOOP_SLOT_IMAP, NULL);
}
