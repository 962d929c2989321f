/* listener: listening sockets and the connection limits shared by all
 * loops (connections in total and per client address, one mutex).
 * Binding happens before the privilege drop. */
#ifndef ROOST_LISTENER_H
#define ROOST_LISTENER_H

#include "core/config.h"

struct loop;

typedef void (*listener_accept_fn)(struct loop *loop, int fd, const char *peer,
                                   const struct listener_conf *lc, void *arg);

/* Binds every listener of CFG (not yet accepting). */
int listeners_bind(const struct config *cfg, const char **error_r);
/* Starts accepting on LOOPS[0]; each new connection goes to the next loop
 * in turn, and ACCEPT runs on that loop's thread. */
int listeners_start(struct loop **loops, int nloops, listener_accept_fn accept, void *arg);
/* Stops accepting and closes the sockets (SIGTERM). */
void listeners_close(void);

enum netlimit_result { NETLIMIT_OK, NETLIMIT_TOTAL, NETLIMIT_PER_ADDR };
enum netlimit_result netlimit_acquire(const char *peer, int max_total, int max_per_addr);
void netlimit_release(const char *peer);
int netlimit_total(void);

#endif
