/* dns: the asynchronous resolver of the outbound transport, on libunbound.
 *
 * One struct dns per event loop: a ub_ctx in threaded async mode whose
 * ub_fd() is watched by a libevent event; ub_process() runs the callbacks
 * on the loop's thread. Resolver: a forwarder ("127.0.0.1@5353",
 * ub_ctx_set_fwd) or the system's (/etc/resolv.conf, ub_ctx_resolvconf).
 *
 * dns_lookup_mx is RFC 5321 5.1: MX records (sorted by preference, equal
 * preferences shuffled), then the A and AAAA records of each host (IPv6
 * first, then IPv4, per host); no MX record: the domain itself (implicit
 * MX); a null MX ("0 .", RFC 7505): DNS_NULLMX. NXDOMAIN is permanent,
 * SERVFAIL and timeouts are temporary. Every answer is bounded
 * (DNS_MAX_MX_HOSTS hosts, DNS_MAX_ADDRS addresses). */
#ifndef ROOST_DNS_H
#define ROOST_DNS_H

#include "core/limits.h"

#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_req;

enum dns_status {
    DNS_OK,
    DNS_TEMPFAIL,   /* SERVFAIL, timeout, resolver error: try later */
    DNS_NXDOMAIN,   /* the domain does not exist */
    DNS_NULLMX,     /* the domain accepts no mail (RFC 7505) */
    DNS_NOADDR,     /* MX hosts (or the host) without any address */
};

struct dns_addr {
    char host[256];          /* the MX host (or the domain, implicit MX) */
    int pref;
    struct sockaddr_storage ss;   /* with the port set */
    socklen_t sslen;
    char str[64];            /* numeric address */
};

struct dns_answer {
    enum dns_status status;
    char error[400];         /* plain words when status != DNS_OK */
    int implicit_mx;
    int naddrs;
    struct dns_addr addrs[DNS_MAX_ADDRS];
};

typedef void (*dns_fn)(void *arg, const struct dns_answer *ans);

/* FORWARDER: "addr" or "addr@port", NULL for the system's resolvers.
 * TIMEOUT_MS bounds every lookup (then DNS_TEMPFAIL). */
struct dns *dns_new(struct event_base *base, const char *forwarder, int timeout_ms,
                    const char **error_r);
void dns_free(struct dns **dp);

/* The mail exchangers of DOMAIN, as addresses with PORT. An address
 * literal ("[192.0.2.1]", "[IPv6:2001:db8::1]") is answered at once. DONE
 * runs once, later, on the loop, unless dns_cancel() is called first. */
struct dns_req *dns_lookup_mx(struct dns *d, const char *domain, int port, dns_fn done,
                              void *arg);
/* The A and AAAA records of HOST (no MX), or HOST itself when numeric. */
struct dns_req *dns_lookup_host(struct dns *d, const char *host, int port, dns_fn done,
                                void *arg);
void dns_cancel(struct dns_req *r);

/* Pure helpers, unit tested: the name in an MX record's RDATA (uncompressed
 * wire format after the 2-byte preference) as text ("." for the root).
 * 0 ok, -1 malformed. */
int dns_mx_rdata(const unsigned char *rd, int len, int *pref_r, char *name, size_t namesz);
/* MX hosts sorted by preference; equal preferences in the order of random
 * keys drawn from RND (RFC 5321 5.1: spread the load). */
struct dns_mxhost {
    char name[256];
    int pref;
    unsigned key;
};
void dns_sort_hosts(struct dns_mxhost *h, int n, unsigned (*rnd)(void));

#endif
