/* smtp_server: the SMTP listeners' public face. smtp_accept() is the
 * listener callback for the smtp, submission and submissions kinds; the
 * server context it gets is read-only shared configuration. */
#ifndef ROOST_SMTP_SERVER_H
#define ROOST_SMTP_SERVER_H

#include "core/config.h"

struct loop;
struct worker_pool;

struct smtp_server {
    const struct config *cfg;
    const char *data_dir;
    struct worker_pool *pool;
    int shutting_down;
    void (*on_idle)(void);   /* called when the last session ends during shutdown */
};

void smtp_accept(struct loop *loop, int fd, const char *peer, const struct listener_conf *lc,
                 void *arg);
/* SIGTERM: marks the server as stopping (new connections get 421 and
 * sessions close after their transaction); then run smtp_loop_shutdown on
 * every loop's own thread: its idle sessions get 421 and close. When the
 * last session of all loops ends, srv->on_idle runs (on that session's
 * loop thread). */
void smtp_begin_shutdown(struct smtp_server *srv);
void smtp_loop_shutdown(struct loop *loop);
/* Frees the loop's SMTP state (after the loop has stopped). */
void smtp_loop_free(struct loop *loop);
int smtp_session_count(void);

#endif
