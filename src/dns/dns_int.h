/* dns_int: what dns.c (requests) and dns_ctx.c (the libunbound context,
 * the trust anchor probe) share. Not for other modules: they use dns.h. */
#ifndef ROOST_DNS_INT_H
#define ROOST_DNS_INT_H

#include <event2/event.h>

#define RR_A 1
#define RR_MX 15
#define RR_AAAA 28
#define RR_DNSKEY 48
#define RR_TLSA 52
#define CLASS_IN 1
#define RCODE_NXDOMAIN 3

struct ub_ctx;
struct dns_req;

struct dns {
    struct ub_ctx *ub;
    struct event_base *base;
    struct event *ev;
    int timeout_ms;
    int validating;    /* a trust anchor is loaded */
    char *forwarder;
    /* the trust anchor probe */
    int probing;                   /* lookups wait on WAIT_HEAD */
    int probe_pending, probe_id;   /* the DNSKEY query in libunbound */
    enum { PROBE_NONE, PROBE_SECURE, PROBE_BOGUS, PROBE_UNSURE } probe_result;
    char probe_name[256];
    char probe_why[200];
    struct event *probe_timer;
    struct dns_req *wait_head, *wait_tail;
};

/* Starts the requests that waited for the trust anchor probe (dns.c). */
void dns_release_waiting(struct dns *d);

#endif
