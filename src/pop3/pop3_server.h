/* pop3_server: the POP3 listeners' public face (RFC 1939, 2449, 2595,
 * 5034). pop3_accept() is the listener callback for the pop3 (110, STLS)
 * and pop3s (995, implicit TLS) kinds. The maildrop is the account's INBOX
 * in the shared store (src/store), locked exclusively for the session. */
#ifndef ROOST_POP3_SERVER_H
#define ROOST_POP3_SERVER_H

#include "core/config.h"

struct loop;
struct worker_pool;

struct pop3_server {
    const struct config *cfg;
    const char *data_dir;
    struct worker_pool *pool;
    int shutting_down;        /* atomic */
    void (*on_idle)(void);    /* last POP3 session ended during shutdown */
};

void pop3_accept(struct loop *loop, int fd, const char *peer, const struct listener_conf *lc,
                 void *arg);
/* SIGTERM: new connections refused; then pop3_loop_shutdown on every loop's
 * thread ends its sessions that are not in the middle of a command. */
void pop3_begin_shutdown(struct pop3_server *srv);
void pop3_loop_shutdown(struct loop *loop);
void pop3_loop_free(struct loop *loop);
int pop3_session_count(void);

#endif
