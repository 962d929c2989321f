/* imap_server: the IMAP listeners' public face (RFC 3501 IMAP4rev1, RFC
 * 9051 IMAP4rev2 and the extensions listed in docs/imap.md).
 * imap_accept() is the listener callback for the imap (143, STARTTLS) and
 * imaps (993, implicit TLS) kinds. Mailboxes are the account's store
 * (src/store/store_imap.h); changes made elsewhere reach the sessions
 * through the notifier (core/notify.h): cli_serve registers
 * imap_notify_changed for every loop. */
#ifndef ROOST_IMAP_SERVER_H
#define ROOST_IMAP_SERVER_H

#include "core/config.h"

struct loop;
struct worker_pool;

struct imap_server {
    const struct config *cfg;
    const char *data_dir;
    struct worker_pool *pool;
    int shutting_down;        /* atomic */
    void (*on_idle)(void);    /* last IMAP session ended during shutdown */
};

void imap_accept(struct loop *loop, int fd, const char *peer, const struct listener_conf *lc,
                 void *arg);
/* The notifier's handler (notify_fn): on LOOP's thread, marks the sessions
 * of ACCOUNT with a selected mailbox as needing the sync step, and wakes
 * those in IDLE. */
void imap_notify_changed(struct loop *loop, const char *account);
/* SIGTERM: new connections refused; then imap_loop_shutdown on every loop's
 * thread ends its sessions that are between commands (IDLE included) with
 * "* BYE"; the others end when their command is done. */
void imap_begin_shutdown(struct imap_server *srv);
void imap_loop_shutdown(struct loop *loop);
void imap_loop_free(struct loop *loop);
int imap_session_count(void);

#endif
