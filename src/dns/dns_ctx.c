/* dns_ctx: the resolver's libunbound context (dns.h: dns_new, dns_free)
 * and the trust anchor probe.
 *
 * The context runs in async mode, its descriptor watched by a libevent
 * event whose callback runs ub_process(): the requests' callbacks (dns.c)
 * run there, on the loop's thread.
 *
 * The trust anchor probe: a resolver that drops DNSSEC records (some
 * forwarders do) would make every answer bogus, and every mail wait. So
 * dns_new first asks for the DNSKEY set of the trust anchor's zone ("."
 * for the root key); lookups wait for that answer (at most the lookup
 * timeout) on the wait list. Bogus, or a trust anchor file that does not
 * load: the context is made again without the trust anchor (no DNSSEC,
 * no DANE; logged as an error); secure: validation stays; no answer:
 * validation stays (nothing is known against it). */
#include "dns/dns.h"
#include "dns/dns_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

static void dns_readable(evutil_socket_t fd, short what, void *arg);
static void probe_start(struct dns *d, const char *trust_anchor);

/* A libunbound context in async mode: FORWARDER or the system's
 * resolvers, validating from TRUST_ANCHOR unless it is NULL. */
static struct ub_ctx *ctx_new(const char *forwarder, const char *trust_anchor,
                              const char **error_r)
{
    struct ub_ctx *ub = ub_ctx_create();
    if (!ub) {
        *error_r = "cannot create the libunbound context";
        return NULL;
    }
    int rc = ub_ctx_async(ub, 1);
    if (rc == 0 && forwarder) {
        /* a local forwarder (127.0.0.1@5353) is what the option is for */
        rc = ub_ctx_set_option(ub, "do-not-query-localhost:", "no");
        /* unbound answers the RFC 6761 name "test." itself (NXDOMAIN); with
         * a forwarder of our own, let it answer (the test suite's dnsmasq) */
        if (rc == 0)
            rc = ub_ctx_set_option(ub, "local-zone:", "test. transparent");
        /* and "test." is not in the signed root: unsigned, unless a trust
         * anchor of its own (tests/proto/test_dane.py) says otherwise */
        if (rc == 0 && trust_anchor)
            rc = ub_ctx_set_option(ub, "domain-insecure:", "test.");
        if (rc == 0)
            rc = ub_ctx_set_fwd(ub, forwarder);
    } else if (rc == 0) {
        int r2 = ub_ctx_resolvconf(ub, NULL);
        if (r2 != 0)
            log_warn("dns", "event=resolvconf-failed error=\"%s\" fallback=recursion",
                     ub_strerror(r2));
    }
    if (rc == 0 && trust_anchor)
        rc = ub_ctx_add_ta_file(ub, trust_anchor);
    if (rc != 0) {
        *error_r = ub_strerror(rc);
        ub_ctx_delete(ub);
        return NULL;
    }
    return ub;
}

/* Watches the context's descriptor on the loop. */
static int watch(struct dns *d, const char **error_r)
{
    if (d->ev)
        event_free(d->ev);
    d->ev = event_new(d->base, ub_fd(d->ub), EV_READ | EV_PERSIST, dns_readable, d);
    if (!d->ev || event_add(d->ev, NULL) < 0) {
        *error_r = "cannot watch the resolver's descriptor";
        return -1;
    }
    return 0;
}

struct dns *dns_new(struct event_base *base, const char *forwarder, int timeout_ms,
                    const char *trust_anchor, const char **error_r)
{
    struct ub_ctx *ub = ctx_new(forwarder, trust_anchor, error_r);
    if (!ub)
        return NULL;
    struct dns *d = xcalloc(1, sizeof *d);
    d->validating = trust_anchor != NULL;
    d->forwarder = forwarder ? xstrdup(forwarder) : NULL;
    d->ub = ub;
    d->base = base;
    d->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    if (watch(d, error_r) < 0) {
        dns_free(&d);
        return NULL;
    }
    if (trust_anchor)
        probe_start(d, trust_anchor);
    return d;
}

/* ---- the trust anchor probe ---- */

/* The owner name of the first record of the trust anchor file (zone file
 * format) into OUT: the zone the probe asks about. 0, or -1. */
static int anchor_name(const char *path, char *out, size_t outsz)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[1024];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == ' ' || line[0] == '\t' || line[0] == ';' || line[0] == '#' ||
            line[0] == '$' || line[0] == '\n' || line[0] == '\r')
            continue;   /* continuation, comment, directive or blank */
        size_t n = strcspn(line, " \t\r\n");
        if (n > 0 && n < outsz) {
            memcpy(out, line, n);
            out[n] = '\0';
            rc = 0;
        }
        break;
    }
    fclose(f);
    return rc;
}

/* Makes the context again without the trust anchor (never from inside
 * ub_process): no DNSSEC, no DANE, said as an error with HINT and WHY. */
static void drop_validation(struct dns *d, const char *hint, const char *why)
{
    const char *err = NULL;
    struct ub_ctx *ub = ctx_new(d->forwarder, NULL, &err);
    if (ub) {
        event_free(d->ev);
        d->ev = NULL;
        ub_ctx_delete(d->ub);
        d->ub = ub;
        d->validating = 0;
        if (watch(d, &err) < 0)
            log_error("dns", "event=watch-failed error=\"%s\"", err);
    }
    char qn[LOG_QSIZE], qw[LOG_QSIZE];
    log_error("dns", "event=dnssec-off anchor=%s why=%s dane=off hint=\"%s\"",
              log_q(qn, sizeof qn, d->probe_name, strlen(d->probe_name)),
              log_q(qw, sizeof qw, why, strlen(why)), hint);
}

static void probe_cb(void *mydata, int err, struct ub_result *res)
{
    struct dns *d = mydata;
    d->probe_pending = 0;
    if (err == 0 && res && res->secure) {
        d->probe_result = PROBE_SECURE;
    } else if (err == 0 && res && res->bogus) {
        d->probe_result = PROBE_BOGUS;
        snprintf(d->probe_why, sizeof d->probe_why, "%s",
                 res->why_bogus ? res->why_bogus : "validation failed");
    } else {
        d->probe_result = PROBE_UNSURE;
    }
    if (res)
        ub_resolve_free(res);
    /* the context may be replaced: not inside its own ub_process() */
    struct timeval now = {0, 0};
    evtimer_add(d->probe_timer, &now);
}

/* The probe answered (or timed out): keep or drop validation, then start
 * the lookups that waited. */
static void probe_done(evutil_socket_t fd, short what, void *arg)
{
    struct dns *d = arg;
    if (!d->probing)
        return;
    d->probing = 0;
    if (d->probe_pending) {
        ub_cancel(d->ub, d->probe_id);
        d->probe_pending = 0;
    }
    char qn[LOG_QSIZE];
    log_q(qn, sizeof qn, d->probe_name, strlen(d->probe_name));
    if (d->probe_result == PROBE_BOGUS) {
        drop_validation(d, "the DNSKEY records of the trust anchor's zone do not validate"
                        " through this resolver: it drops DNSSEC records; mail goes out"
                        " without DNSSEC and DANE -- use a DNSSEC-aware resolver ([outbound]"
                        " resolver) or check dnssec_trust_anchor", d->probe_why);
    } else {
        log_info("dns", "event=dnssec-probe anchor=%s result=%s", qn,
                 d->probe_result == PROBE_SECURE ? "secure"
                                                 : "no-answer validation=on");
    }
    dns_release_waiting(d);
}

static void probe_start(struct dns *d, const char *trust_anchor)
{
    if (anchor_name(trust_anchor, d->probe_name, sizeof d->probe_name) < 0) {
        log_warn("dns", "event=dnssec-probe result=skipped hint=\"no record found in the"
                 " trust anchor file\"");
        return;
    }
    d->probe_timer = evtimer_new(d->base, probe_done, d);
    if (!d->probe_timer)
        abort();
    int rc = ub_resolve_async(d->ub, d->probe_name, RR_DNSKEY, CLASS_IN, d, probe_cb,
                              &d->probe_id);
    if (rc != 0) {
        /* the trust anchor file did not load (libunbound reads it now):
         * every lookup would fail the same way */
        drop_validation(d, "the trust anchor file cannot be used: fix or remove"
                        " [outbound] dnssec_trust_anchor", ub_strerror(rc));
        return;
    }
    d->probe_pending = 1;
    d->probing = 1;
    struct timeval tv = {d->timeout_ms / 1000, (d->timeout_ms % 1000) * 1000};
    evtimer_add(d->probe_timer, &tv);
}

/* ---- lookups waiting for the probe ---- */

void dns_wait(struct dns *d, struct dns_waiter *w, void (*start)(void *owner), void *owner)
{
    w->start = start;
    w->owner = owner;
    w->next = NULL;
    w->waiting = 1;
    if (d->wait_tail)
        d->wait_tail->next = w;
    else
        d->wait_head = w;
    d->wait_tail = w;
}

void dns_unwait(struct dns *d, struct dns_waiter *w)
{
    if (!w->waiting)
        return;
    struct dns_waiter **pp = &d->wait_head, *prev = NULL;
    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp)
        *pp = w->next;
    if (d->wait_tail == w)
        d->wait_tail = prev;
    w->waiting = 0;
}

void dns_release_waiting(struct dns *d)
{
    while (d->wait_head) {
        struct dns_waiter *w = d->wait_head;
        d->wait_head = w->next;
        if (!d->wait_head)
            d->wait_tail = NULL;
        w->next = NULL;
        w->waiting = 0;
        w->start(w->owner);
    }
}

int dns_validating(const struct dns *d)
{
    return d->validating;
}

void dns_free(struct dns **dp)
{
    struct dns *d = *dp;
    if (!d)
        return;
    if (d->ev)
        event_free(d->ev);
    if (d->probe_timer)
        event_free(d->probe_timer);
    ub_ctx_delete(d->ub);   /* a pending probe goes with it */
    free(d->forwarder);
    free(d);
    *dp = NULL;
}

static void dns_readable(evutil_socket_t fd, short what, void *arg)
{
    struct dns *d = arg;
    int rc = ub_process(d->ub);
    if (rc != 0)
        log_error("dns", "event=process-failed error=\"%s\"", ub_strerror(rc));
}
