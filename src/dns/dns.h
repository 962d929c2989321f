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
 * (DNS_MAX_MX_HOSTS hosts, DNS_MAX_ADDRS addresses).
 *
 * DNSSEC and DANE (RFC 7672 2.2): with a trust anchor (dns_new's
 * TRUST_ANCHOR, a file of DS or DNSKEY records) libunbound validates every
 * answer. A bogus answer is a failure (MX: DNS_TEMPFAIL; a host's A/AAAA:
 * that host is left out). When the MX RRset (or, implicit MX, the proof
 * that there is none) is secure, each host whose address records are all
 * secure gets a TLSA lookup, "_PORT._tcp.HOST": its outcome is the host's
 * struct dns_host dane state; a bogus or failed TLSA lookup leaves the
 * host out (DNS_TEMPFAIL when no host is left). */
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

/* One TLSA record (RFC 6698 2.1): usage, selector, matching type, data.
 * In an answer, DATA belongs to the request (valid during the callback). */
struct dns_tlsa {
    unsigned char usage, selector, mtype;
    size_t len;
    const unsigned char *data;
};

enum dns_dane {
    DNS_DANE_NONE,       /* no DANE: insecure, no TLSA records (proven), or no trust anchor */
    DNS_DANE_USABLE,     /* secure TLSA records, at least one usable (RFC 7672 3.1) */
    DNS_DANE_UNUSABLE,   /* secure TLSA records, none usable: TLS required, unauthenticated */
};

/* A mail exchanger: its name, how secure its records are, its TLSA records. */
struct dns_host {
    char name[256];
    int addr_secure;         /* every answered address lookup was DNSSEC-secure */
    enum dns_dane dane;
    int ntlsa;               /* usable records only */
    struct dns_tlsa tlsa[DNS_MAX_TLSA];
};

struct dns_addr {
    char host[256];          /* the MX host (or the domain, implicit MX) */
    int host_idx;            /* index in dns_answer.hosts, -1 for an address literal */
    int pref;
    struct sockaddr_storage ss;   /* with the port set */
    socklen_t sslen;
    char str[64];            /* numeric address */
};

struct dns_answer {
    enum dns_status status;
    char error[400];         /* plain words when status != DNS_OK */
    int implicit_mx;
    int mx_secure;           /* the MX RRset (or the absence of one) is DNSSEC-secure */
    int nhosts;
    struct dns_host hosts[DNS_MAX_MX_HOSTS];
    int naddrs;
    struct dns_addr addrs[DNS_MAX_ADDRS];
};

typedef void (*dns_fn)(void *arg, const struct dns_answer *ans);

/* FORWARDER: "addr" or "addr@port", NULL for the system's resolvers.
 * TIMEOUT_MS bounds every lookup (then DNS_TEMPFAIL). TRUST_ANCHOR: a
 * file of DS/DNSKEY records (zone file format) for DNSSEC validation, or
 * NULL (no validation, so no DANE). With one, the first lookups wait for
 * a probe of the anchor zone's DNSKEY set (at most TIMEOUT_MS); if that
 * does not validate (a resolver that drops DNSSEC records, a file that
 * does not load) validation is turned off and the error logged. */
struct dns *dns_new(struct event_base *base, const char *forwarder, int timeout_ms,
                    const char *trust_anchor, const char **error_r);
/* 1 when answers are validated (a trust anchor was given). */
int dns_validating(const struct dns *d);
void dns_free(struct dns **dp);

/* The mail exchangers of DOMAIN, as addresses with PORT. An address
 * literal ("[192.0.2.1]", "[IPv6:2001:db8::1]") is answered at once. DONE
 * runs once, later, on the loop, unless dns_cancel() is called first. */
struct dns_req *dns_lookup_mx(struct dns *d, const char *domain, int port, dns_fn done,
                              void *arg);
/* The A and AAAA records of HOST (no MX), or HOST itself when numeric.
 * No TLSA lookups (the relay and smtp:[host] routes). */
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

/* A TLSA record's RDATA into OUT (OUT->data points into RD). 0 ok, -1
 * malformed (shorter than 4 bytes, or more data than DNS_TLSA_MAX_DATA). */
int dns_tlsa_rdata(const unsigned char *rd, int len, struct dns_tlsa *out);
/* 1 when SMTP can use the record (RFC 7672 3.1): usage DANE-TA(2) or
 * DANE-EE(3) (PKIX-TA/EE, 0 and 1, are not for SMTP), selector 0 or 1,
 * matching type 0 (full), 1 (SHA-256, 32 bytes) or 2 (SHA-512, 64 bytes). */
int dns_tlsa_usable(const struct dns_tlsa *t);

/* ---- TXT records (dns_txt.c, for MTA-STS discovery) ---- */

#define DNS_MAX_TXT 8              /* TXT records kept from one answer */
#define DNS_TXT_MAX_LEN 1024       /* bytes of one record (its strings joined) */

/* A TXT answer: DNS_OK with N records (0: NXDOMAIN or no TXT records, as
 * both mean "none here"), or DNS_TEMPFAIL (SERVFAIL, bogus, timeout). */
struct dns_txt_answer {
    enum dns_status status;
    int n;
    char txt[DNS_MAX_TXT][DNS_TXT_MAX_LEN + 1];
    size_t len[DNS_MAX_TXT];
    char error[400];
};
typedef void (*dns_txt_fn)(void *arg, const struct dns_txt_answer *ans);
struct dns_txt_req;
/* The TXT records of NAME. DONE runs once, later, on the loop, unless
 * dns_txt_cancel() is called first. */
struct dns_txt_req *dns_lookup_txt(struct dns *d, const char *name, dns_txt_fn done, void *arg);
void dns_txt_cancel(struct dns_txt_req *r);
/* Pure: a TXT record's RDATA (character-strings, each a length byte and
 * its bytes) joined into OUT (NUL-terminated, *OUTLEN_R bytes). 0 ok, -1
 * malformed or longer than OUTSZ - 1. */
int dns_txt_rdata(const unsigned char *rd, int len, char *out, size_t outsz, size_t *outlen_r);

#endif
