/* conn: one client connection on an event loop, as protocols see it.
 *
 * Protocols get events (tls_ready, data, drained, closed) and buffered I/O;
 * only conn.c and tls.c touch libevent bufferevents and OpenSSL. A conn
 * starts plain or in implicit TLS (the greeting waits for tls_ready).
 * conn_starttls() upgrades after the pending output (the 220) is flushed:
 * it frees the plaintext bufferevent, and with it any plaintext the client
 * pipelined after STARTTLS, then starts the TLS handshake on the socket.
 *
 * Lifetime: the protocol owns the conn. conn_close() flushes, closes and
 * then calls on_closed once, from a fresh loop iteration (never inside the
 * protocol's own callback); after on_closed the conn is freed and must not
 * be touched. A peer EOF, I/O error or timeout also ends in on_closed. */
#ifndef ROOST_CONN_H
#define ROOST_CONN_H

#include "core/config.h"

#include <event2/buffer.h>
#include <openssl/ssl.h>
#include <stddef.h>

struct loop;
struct conn;

enum conn_close_reason { CONN_CLOSED_BY_US, CONN_EOF, CONN_ERROR, CONN_TIMEOUT, CONN_TLS_FAILED };

struct conn_handlers {
    void (*on_tls_ready)(void *ctx);   /* implicit TLS handshake or STARTTLS done */
    void (*on_data)(void *ctx);        /* new input in conn_input() */
    void (*on_drained)(void *ctx);     /* output below the low-water mark */
    void (*on_closed)(void *ctx, enum conn_close_reason why);
    /* Idle timeout: the protocol may write a farewell and conn_close();
     * without this handler the conn just closes (CONN_TIMEOUT). */
    void (*on_timeout)(void *ctx);
};

struct conn *conn_new(struct loop *loop, int fd, const char *peer_addr, int implicit_tls,
                      const struct conn_handlers *h, void *ctx);
const char *conn_peer(struct conn *c);
struct loop *conn_loop(struct conn *c);
struct evbuffer *conn_input(struct conn *c);
size_t conn_output_len(struct conn *c);
void conn_write(struct conn *c, const void *data, size_t len);
void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_pause_read(struct conn *c);
void conn_resume_read(struct conn *c);
/* Seconds without input before on_closed(CONN_TIMEOUT); 0 = none. */
void conn_set_idle_timeout(struct conn *c, int seconds);
/* Upgrade to TLS once the output is flushed. Returns the number of
 * plaintext input bytes discarded. -1 if TLS is not available. */
long conn_starttls(struct conn *c);
int conn_is_tls(struct conn *c);
SSL *conn_ssl(struct conn *c);
/* Counts this conn's TLS handshakes (implicit or STARTTLS) under the
 * listener kind KIND in the metrics (core/metrics.h). */
void conn_set_metrics_kind(struct conn *c, enum listener_kind kind);
/* Flush what is queued, then close. */
void conn_close(struct conn *c);
int conn_closing(struct conn *c);

#endif
