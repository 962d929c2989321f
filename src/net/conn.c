/* conn: bufferevent-backed connections with implicit TLS, STARTTLS upgrade,
 * idle timeouts, read pausing and deferred close (see conn.h). */
#include "net/conn.h"
#include "net/tls.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/worker.h"
#include "core/xalloc.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_READ_HIGH_WATER (256 * 1024)

enum conn_phase { PH_OPEN, PH_STARTTLS_PENDING, PH_CLOSING, PH_CLOSED };

struct conn {
    struct loop *loop;
    struct bufferevent *bev;
    SSL *ssl;
    int fd;
    int bev_owns_fd;          /* the TLS bufferevent closes fd and frees SSL */
    enum conn_phase phase;
    int read_paused;
    int idle_timeout;
    int tls_handshaking;
    char peer[64];
    const struct conn_handlers *h;
    void *ctx;
    enum conn_close_reason reason;
    struct event *finish_ev;
    int metrics_kind;         /* listener kind for the TLS metrics; -1 = none */
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_finish(struct conn *c, enum conn_close_reason why);

static void conn_apply_timeouts(struct conn *c)
{
    struct timeval tv = {.tv_sec = c->tls_handshaking ? 30 : c->idle_timeout};
    if (tv.tv_sec > 0)
        bufferevent_set_timeouts(c->bev, &tv, NULL);
    else
        bufferevent_set_timeouts(c->bev, NULL, NULL);
}

static void conn_setup_bev(struct conn *c)
{
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_READ_HIGH_WATER);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    conn_apply_timeouts(c);
    if (!c->read_paused)
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    else
        bufferevent_enable(c->bev, EV_WRITE);
}

static int conn_start_tls_bev(struct conn *c)
{
    c->ssl = tls_new_ssl();
    if (!c->ssl)
        return -1;
    c->bev = bufferevent_openssl_socket_new(loop_base(c->loop), c->fd, c->ssl,
                                            BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!c->bev) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        return -1;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    c->bev_owns_fd = 1;
    c->tls_handshaking = 1;
    conn_setup_bev(c);
    return 0;
}

struct conn *conn_new(struct loop *loop, int fd, const char *peer_addr, int implicit_tls,
                      const struct conn_handlers *h, void *ctx)
{
    struct conn *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->fd = fd;
    /* Replies are written as they are ready (a status line, then a body in
     * chunks, then its end): without this, Nagle's algorithm holds the last
     * small segment until the client's delayed ACK, milliseconds per reply. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->h = h;
    c->ctx = ctx;
    c->metrics_kind = -1;
    snprintf(c->peer, sizeof c->peer, "%s", peer_addr);
    if (implicit_tls) {
        if (conn_start_tls_bev(c) < 0) {
            close(fd);
            free(c);
            return NULL;
        }
    } else {
        c->bev = bufferevent_socket_new(loop_base(loop), fd, BEV_OPT_DEFER_CALLBACKS);
        if (!c->bev) {
            close(fd);
            free(c);
            return NULL;
        }
        conn_setup_bev(c);
    }
    return c;
}

const char *conn_peer(struct conn *c) { return c->peer; }
struct loop *conn_loop(struct conn *c) { return c->loop; }
struct evbuffer *conn_input(struct conn *c) { return bufferevent_get_input(c->bev); }
int conn_is_tls(struct conn *c) { return c->ssl != NULL; }
SSL *conn_ssl(struct conn *c) { return c->ssl; }
int conn_closing(struct conn *c) { return c->phase >= PH_CLOSING; }

size_t conn_output_len(struct conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* A reply goes out in this turn of the loop rather than the next: libevent
 * only adds the write event when output appears and writes once epoll says
 * the socket is writable, which it almost always is (one epoll round and
 * two epoll_ctl per reply). Activating the write event runs the
 * bufferevent's own write callback before the loop polls again; with the
 * loop's change list (worker.c) the event's add and delete then cancel out
 * without a system call. Not while a TLS handshake runs: the write event
 * then drives the handshake. */
static void write_now(struct conn *c)
{
    if (!c->tls_handshaking && event_pending(&c->bev->ev_write, EV_WRITE, NULL))
        event_active(&c->bev->ev_write, EV_WRITE, 1);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
    if (c->phase >= PH_CLOSING && c->phase != PH_CLOSING)
        return;
    bufferevent_write(c->bev, data, len);
    write_now(c);
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    conn_write(c, s, (size_t)n);
    free(s);
}

void conn_pause_read(struct conn *c)
{
    c->read_paused = 1;
    bufferevent_disable(c->bev, EV_READ);
}

void conn_resume_read(struct conn *c)
{
    c->read_paused = 0;
    if (c->phase == PH_OPEN && !c->tls_handshaking)
        bufferevent_enable(c->bev, EV_READ);
    else if (c->phase == PH_OPEN)
        bufferevent_enable(c->bev, EV_READ);
}

void conn_set_idle_timeout(struct conn *c, int seconds)
{
    c->idle_timeout = seconds;
    conn_apply_timeouts(c);
}

long conn_starttls(struct conn *c)
{
    if (c->ssl || !tls_available())
        return -1;
    long discarded = (long)evbuffer_get_length(bufferevent_get_input(c->bev));
    evbuffer_drain(bufferevent_get_input(c->bev), (size_t)discarded);
    bufferevent_disable(c->bev, EV_READ);
    c->phase = PH_STARTTLS_PENDING;
    if (conn_output_len(c) == 0)
        conn_write_cb(c->bev, c); /* nothing to flush: upgrade now */
    return discarded;
}

static void conn_do_upgrade(struct conn *c)
{
    /* Freeing the plaintext bufferevent drops any plaintext it buffered;
     * the fd stays open (no BEV_OPT_CLOSE_ON_FREE on plain connections). */
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->phase = PH_OPEN;
    if (conn_start_tls_bev(c) < 0) {
        log_warn("net", "event=starttls-failed client=%s", c->peer);
        c->bev = bufferevent_socket_new(loop_base(c->loop), c->fd, BEV_OPT_DEFER_CALLBACKS);
        if (!c->bev)
            abort();
        conn_setup_bev(c);
        conn_finish(c, CONN_TLS_FAILED);
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->phase != PH_OPEN)
        return;
    c->h->on_data(c->ctx);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    /* Deferred callbacks can report a drain that happened before more
     * output was queued: act only when the output really is empty. */
    if (conn_output_len(c) > 0)
        return;
    if (c->phase == PH_STARTTLS_PENDING) {
        conn_do_upgrade(c);
        return;
    }
    if (c->phase == PH_CLOSING) {
        conn_finish(c, c->reason);
        return;
    }
    if (c->phase == PH_OPEN && c->h->on_drained)
        c->h->on_drained(c->ctx);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->tls_handshaking && c->metrics_kind >= 0)
            metrics_tls_handshake((enum listener_kind)c->metrics_kind, 1);
        c->tls_handshaking = 0;
        conn_apply_timeouts(c);
        if (c->phase == PH_OPEN && c->h->on_tls_ready)
            c->h->on_tls_ready(c->ctx);
        return;
    }
    if (c->phase >= PH_CLOSED)
        return;
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->phase == PH_OPEN &&
        !c->tls_handshaking && c->h->on_timeout) {
        c->reason = CONN_TIMEOUT;
        c->h->on_timeout(c->ctx);
        if (c->phase == PH_CLOSING)
            c->reason = CONN_TIMEOUT;
        return;
    }
    enum conn_close_reason why = CONN_ERROR;
    if (what & BEV_EVENT_TIMEOUT)
        why = CONN_TIMEOUT;
    else if (c->tls_handshaking)
        why = CONN_TLS_FAILED;
    else if (what & BEV_EVENT_EOF)
        why = CONN_EOF;
    if (c->phase == PH_CLOSING)
        why = c->reason;
    conn_finish(c, why);
}

/* Reads and drops what the client sent that nobody will read: closing a
 * socket with unread input makes the kernel answer with a reset, which
 * can destroy the farewell still on its way to the client (the BYE after a
 * pipelined burst). Bounded. */
static void conn_drain_socket(int fd)
{
    char sink[16384];
    for (int i = 0; i < 64; i++)
        if (recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
            break;
}

static void conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    conn_drain_socket(c->fd);
    c->h->on_closed(c->ctx, c->reason);
    event_free(c->finish_ev);
    if (c->bev)
        bufferevent_free(c->bev);
    if (!c->bev_owns_fd)
        close(c->fd);
    free(c);
}

/* Stops all I/O now and schedules on_closed + free for a fresh iteration. */
static void conn_finish(struct conn *c, enum conn_close_reason why)
{
    if (c->phase == PH_CLOSED)
        return;
    if ((c->tls_handshaking || why == CONN_TLS_FAILED) && c->metrics_kind >= 0)
        metrics_tls_handshake((enum listener_kind)c->metrics_kind, 0);
    c->phase = PH_CLOSED;
    c->reason = why;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    c->finish_ev = event_new(loop_base(c->loop), -1, 0, conn_free_cb, c);
    event_active(c->finish_ev, 0, 0);
}

void conn_set_metrics_kind(struct conn *c, enum listener_kind kind)
{
    c->metrics_kind = (int)kind;
}

void conn_close(struct conn *c)
{
    if (c->phase >= PH_CLOSING)
        return;
    if (c->reason != CONN_TIMEOUT)
        c->reason = CONN_CLOSED_BY_US;
    bufferevent_disable(c->bev, EV_READ);
    if (c->phase == PH_STARTTLS_PENDING || conn_output_len(c) == 0) {
        conn_finish(c, c->reason);
        return;
    }
    c->phase = PH_CLOSING;
    /* bound the flush: a client that never reads must not keep us */
    struct timeval tv = {.tv_sec = 30};
    bufferevent_set_timeouts(c->bev, NULL, &tv);
}
