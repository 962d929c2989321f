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

/* A lookup that waits while the trust anchor probe runs (dns_ctx.c may
 * replace the libunbound context meanwhile): START(OWNER) runs when the
 * probe is over. Embedded in the MX/address requests (dns.c) and the TXT
 * requests (dns_txt.c). */
struct dns_waiter {
    struct dns_waiter *next;
    void (*start)(void *owner);
    void *owner;
    int waiting;
};

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
    struct dns_waiter *wait_head, *wait_tail;
};

/* Queues W until the probe is over (dns_ctx.c). */
void dns_wait(struct dns *d, struct dns_waiter *w, void (*start)(void *owner), void *owner);
/* Takes W off the queue, if it is on it. */
void dns_unwait(struct dns *d, struct dns_waiter *w);
/* The probe is over: starts every waiter, in order. */
void dns_release_waiting(struct dns *d);

#endif
