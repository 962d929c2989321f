/* sockport: the client's port and the local port of an accepted socket, for
 * the connect log lines (the address itself comes from the listener). */
#ifndef ROOST_SOCKPORT_H
#define ROOST_SOCKPORT_H

/* The peer's port of FD, or 0 when unknown. */
int sock_peer_port(int fd);
/* The local port of FD, or 0 when unknown. */
int sock_local_port(int fd);

#endif
