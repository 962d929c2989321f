/* dns: MX and address lookups on libunbound, driven by the loop (dns.h).
 *
 * A request walks two phases: the MX query, then one A and one AAAA query
 * per MX host, all in flight at once. Each query is a struct dns_query in
 * the request (its ub async id kept so dns_cancel can ub_cancel it).
 * libunbound calls back from ub_process(), which runs in our event
 * callback, so the request is only touched on the loop's thread. A request
 * finishes when nothing is pending (or its timer fires); DONE is never
 * called from inside dns_lookup_*: immediate answers go through a zero
 * timer.
 *
 * With a trust anchor a third phase may follow the addresses (RFC 7672
 * 2.2): one TLSA query per host whose MX and address records were secure.
 * Every query keeps libunbound's secure / bogus flags; collect() turns
 * them into the answer's per-host DNSSEC and DANE state.
 *
 * The context itself (dns_new, dns_free) and the trust anchor probe that
 * may hold the first lookups are in dns_ctx.c; requests wait on the
 * context's wait list while it runs (dns_release_waiting). */
#include "dns/dns.h"
#include "dns/dns_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>



struct dns_query {
    struct dns_req *req;
    int host;          /* index in hosts, -1 for the MX query */
    int type;
    int async_id;
    int pending;
    int tempfail;      /* SERVFAIL or error (bogus included) */
    int nxdomain;
    int answered;      /* an answer that is not a failure (data, NODATA, NXDOMAIN) */
    int secure;        /* libunbound: validated */
    int bogus;         /* libunbound: validation failed */
    char why[200];     /* why bogus */
    int n;             /* addresses found */
    struct sockaddr_storage addrs[DNS_MAX_ADDRS];
};

struct dns_req {
    struct dns *d;
    dns_fn done;
    void *arg;
    int port;
    char domain[256];
    int npending;
    int finished;
    struct event *timer;
    struct dns_answer ans;
    int nhosts;
    struct dns_mxhost hosts[DNS_MAX_MX_HOSTS];
    struct dns_query mxq;
    struct dns_query q[2 * DNS_MAX_MX_HOSTS];
    int want_tlsa;     /* an MX lookup (dns_lookup_mx) */
    struct dns_query tq[DNS_MAX_MX_HOSTS];     /* TLSA, per host */
    struct dns_waiter wait;   /* on d's wait list while the trust anchor probe runs */
    unsigned char *tlsa_data[DNS_MAX_MX_HOSTS][DNS_MAX_TLSA];   /* owned copies */
};

static void req_timeout(evutil_socket_t fd, short what, void *arg);
static void query_cb(void *mydata, int err, struct ub_result *result);
static void req_finish(struct dns_req *r);
static void req_fail(struct dns_req *r, enum dns_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int start_query(struct dns_req *r, struct dns_query *q, const char *name, int type);
static void start_addresses(struct dns_req *r);
static void addresses_done(struct dns_req *r);
static void collect(struct dns_req *r);
static void req_start(struct dns_req *r);

static unsigned rand_key(void)
{
    unsigned v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (unsigned)random();
    return v;
}

/* ---- requests ---- */

static struct dns_req *req_new(struct dns *d, const char *name, int port, dns_fn done, void *arg)
{
    struct dns_req *r = xcalloc(1, sizeof *r);
    r->d = d;
    r->done = done;
    r->arg = arg;
    r->port = port;
    snprintf(r->domain, sizeof r->domain, "%s", name);
    r->timer = evtimer_new(d->base, req_timeout, r);
    struct timeval tv = {d->timeout_ms / 1000, (d->timeout_ms % 1000) * 1000};
    if (!r->timer || evtimer_add(r->timer, &tv) < 0)
        abort();
    return r;
}

static void req_free(struct dns_req *r)
{
    dns_unwait(r->d, &r->wait);
    if (r->timer)
        event_free(r->timer);
    for (int h = 0; h < DNS_MAX_MX_HOSTS; h++)
        for (int i = 0; i < DNS_MAX_TLSA; i++)
            free(r->tlsa_data[h][i]);
    free(r);
}

static void cancel_pending(struct dns_req *r)
{
    if (r->mxq.pending)
        ub_cancel(r->d->ub, r->mxq.async_id);
    r->mxq.pending = 0;
    for (size_t i = 0; i < sizeof r->q / sizeof r->q[0]; i++)
        if (r->q[i].pending) {
            ub_cancel(r->d->ub, r->q[i].async_id);
            r->q[i].pending = 0;
        }
    for (size_t i = 0; i < sizeof r->tq / sizeof r->tq[0]; i++)
        if (r->tq[i].pending) {
            ub_cancel(r->d->ub, r->tq[i].async_id);
            r->tq[i].pending = 0;
        }
    r->npending = 0;
}

void dns_cancel(struct dns_req *r)
{
    if (!r)
        return;
    cancel_pending(r);
    req_free(r);
}

/* Delivers the answer: from a callback or the (zero or timeout) timer. */
static void req_finish(struct dns_req *r)
{
    if (r->finished)
        return;
    r->finished = 1;
    cancel_pending(r);
    r->done(r->arg, &r->ans);
    req_free(r);
}

static void req_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct dns_req *r = arg;
    if (r->ans.status == DNS_OK && r->ans.naddrs == 0 && !r->ans.error[0]) {
        r->ans.status = DNS_TEMPFAIL;
        snprintf(r->ans.error, sizeof r->ans.error, "DNS lookup for %s timed out", r->domain);
    }
    req_finish(r);
}

/* Records a failure and finishes at the next loop iteration. */
static void req_fail(struct dns_req *r, enum dns_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->ans.error, sizeof r->ans.error, fmt, ap);
    va_end(ap);
    r->ans.status = st;
    r->ans.naddrs = 0;
    cancel_pending(r);
    struct timeval now = {0, 0};
    evtimer_add(r->timer, &now);
}

static int start_query(struct dns_req *r, struct dns_query *q, const char *name, int type)
{
    q->req = r;
    q->type = type;
    q->pending = 1;
    r->npending++;
    int rc = ub_resolve_async(r->d->ub, name, type, CLASS_IN, q, query_cb, &q->async_id);
    if (rc != 0) {
        q->pending = 0;
        r->npending--;
        q->tempfail = 1;
        log_warn("dns", "event=resolve-failed name=%s error=\"%s\"", name, ub_strerror(rc));
        return -1;
    }
    return 0;
}

/* Every MX record is read and sorted before the first DNS_MAX_MX_HOSTS are
 * kept: answers come in any order, and keeping the first ten as they came
 * could drop the preferred hosts of a domain with more. */
#define MX_READ_MAX 64

static void parse_mx(struct dns_req *r, struct ub_result *res)
{
    int nulls = 0, n = 0;
    struct dns_mxhost *all = xcalloc(MX_READ_MAX, sizeof *all);
    for (int i = 0; res->data[i] && n < MX_READ_MAX; i++) {
        struct dns_mxhost *h = &all[n];
        if (dns_mx_rdata((const unsigned char *)res->data[i], res->len[i], &h->pref, h->name,
                         sizeof h->name) < 0)
            continue;
        if (strcmp(h->name, ".") == 0) {
            nulls++;
            continue;
        }
        n++;
    }
    dns_sort_hosts(all, n, rand_key);
    r->nhosts = n < DNS_MAX_MX_HOSTS ? n : DNS_MAX_MX_HOSTS;
    memcpy(r->hosts, all, sizeof *all * (size_t)r->nhosts);
    free(all);
    if (nulls && r->nhosts == 0) {
        req_fail(r, DNS_NULLMX, "%s does not accept mail (null MX, RFC 7505)", r->domain);
        return;
    }
    if (r->nhosts == 0) {
        req_fail(r, DNS_NOADDR, "the MX records of %s are not usable", r->domain);
        return;
    }
    start_addresses(r);
}

static const char *type_name(int type)
{
    switch (type) {
    case RR_A: return "A";
    case RR_AAAA: return "AAAA";
    case RR_MX: return "MX";
    case RR_TLSA: return "TLSA";
    default: return "?";
    }
}

/* A validation failure: kept for the answer's error text and logged. */
static void note_bogus(struct dns_query *q, const struct ub_result *res)
{
    const char *why = res->why_bogus ? res->why_bogus : "DNSSEC validation failed";
    const char *name = res->qname ? res->qname : "";
    snprintf(q->why, sizeof q->why, "%s", why);
    char qn[LOG_QSIZE], qw[LOG_QSIZE];
    log_warn("dns", "event=dnssec-bogus name=%s type=%s why=%s hint=\"the DNSSEC signatures"
             " of this name do not validate: the destination's DNS is broken or forged, or"
             " the resolver drops DNSSEC records (check [outbound] resolver)\"",
             log_q(qn, sizeof qn, name, strlen(name)), type_name(q->type),
             log_q(qw, sizeof qw, why, strlen(why)));
}

/* A secure TLSA RRset: its usable records (copied) are the host's. */
static void keep_tlsa(struct dns_req *r, struct dns_query *q, const struct ub_result *res)
{
    struct dns_host *h = &r->ans.hosts[q->host];
    h->dane = DNS_DANE_UNUSABLE;
    for (int i = 0; res->data[i]; i++) {
        struct dns_tlsa t;
        if (dns_tlsa_rdata((const unsigned char *)res->data[i], res->len[i], &t) < 0 ||
            !dns_tlsa_usable(&t) || h->ntlsa >= DNS_MAX_TLSA)
            continue;
        unsigned char *copy = xmalloc(t.len);
        memcpy(copy, t.data, t.len);
        r->tlsa_data[q->host][h->ntlsa] = copy;
        t.data = copy;
        h->tlsa[h->ntlsa++] = t;
    }
    if (h->ntlsa > 0)
        h->dane = DNS_DANE_USABLE;
}

static void keep_addresses(struct dns_req *r, struct dns_query *q, const struct ub_result *res)
{
    for (int i = 0; res->data[i] && q->n < DNS_MAX_ADDRS; i++) {
        struct sockaddr_storage *ss = &q->addrs[q->n];
        memset(ss, 0, sizeof *ss);
        if (q->type == RR_A && res->len[i] == 4) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)r->port);
            memcpy(&s4->sin_addr, res->data[i], 4);
            q->n++;
        } else if (q->type == RR_AAAA && res->len[i] == 16) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)r->port);
            memcpy(&s6->sin6_addr, res->data[i], 16);
            q->n++;
        }
    }
}

static void query_cb(void *mydata, int err, struct ub_result *res)
{
    struct dns_query *q = mydata;
    struct dns_req *r = q->req;
    q->pending = 0;
    r->npending--;
    if (err != 0 || !res) {
        q->tempfail = 1;
    } else if (res->bogus) {
        /* libunbound answers SERVFAIL for it: a failure, never data */
        q->tempfail = 1;
        q->bogus = 1;
        note_bogus(q, res);
    } else if (res->rcode == RCODE_NXDOMAIN || res->nxdomain) {
        q->nxdomain = 1;
        q->answered = 1;
        q->secure = res->secure;
    } else if (res->rcode != 0) {
        q->tempfail = 1;
    } else {
        q->answered = 1;
        q->secure = res->secure;
        if (res->havedata && q == &r->mxq) {
            r->ans.mx_secure = res->secure;
            parse_mx(r, res);
            ub_resolve_free(res);
            return;
        }
        if (res->havedata && q->type == RR_TLSA) {
            if (res->secure)
                keep_tlsa(r, q, res);   /* insecure TLSA records: no DANE (RFC 7672 2.2) */
        } else if (res->havedata) {
            keep_addresses(r, q, res);
        }
    }
    if (res)
        ub_resolve_free(res);
    if (q == &r->mxq) {
        /* the MX query without data */
        if (q->bogus)
            req_fail(r, DNS_TEMPFAIL, "DNSSEC validation of the MX records of %s failed (%s)",
                     r->domain, q->why);
        else if (q->tempfail)
            req_fail(r, DNS_TEMPFAIL, "DNS lookup of the MX records of %s failed (SERVFAIL or no answer)",
                     r->domain);
        else if (q->nxdomain)
            req_fail(r, DNS_NXDOMAIN, "the domain %s does not exist (NXDOMAIN)", r->domain);
        else {
            /* RFC 5321 5.1: no MX, the domain is its own (implicit) MX;
             * RFC 7672 2.2.2: DANE if that NODATA answer was secure */
            r->ans.implicit_mx = 1;
            r->ans.mx_secure = q->secure;
            r->nhosts = 1;
            snprintf(r->hosts[0].name, sizeof r->hosts[0].name, "%s", r->domain);
            start_addresses(r);
        }
        return;
    }
    if (r->npending == 0 && !r->finished) {
        if (q->type == RR_TLSA)
            collect(r);
        else
            addresses_done(r);
    }
}

static void start_addresses(struct dns_req *r)
{
    for (int h = 0; h < r->nhosts; h++) {
        r->q[2 * h].host = h;
        r->q[2 * h + 1].host = h;
        start_query(r, &r->q[2 * h], r->hosts[h].name, RR_AAAA);
        start_query(r, &r->q[2 * h + 1], r->hosts[h].name, RR_A);
    }
    if (r->npending == 0)
        addresses_done(r);
}

/* RFC 7672 2.2: a host's address records are secure when every lookup
 * that was answered validated (and one was); one bogus answer is enough
 * to distrust the host. */
static int host_addr_secure(const struct dns_req *r, int h)
{
    int answered = 0;
    for (int k = 0; k < 2; k++) {
        const struct dns_query *q = &r->q[2 * h + k];
        if (q->bogus)
            return 0;
        if (q->answered) {
            if (!q->secure)
                return 0;
            answered++;
        }
    }
    return answered > 0;
}

/* Every address query answered: the TLSA queries of the hosts that may
 * use DANE (the MX RRset and their addresses secure), then collect. */
static void addresses_done(struct dns_req *r)
{
    r->ans.nhosts = r->nhosts;
    for (int h = 0; h < r->nhosts; h++) {
        struct dns_host *dh = &r->ans.hosts[h];
        memcpy(dh->name, r->hosts[h].name, sizeof dh->name);   /* both 256, terminated */
        dh->addr_secure = host_addr_secure(r, h);
    }
    if (r->d->validating && r->want_tlsa && r->ans.mx_secure) {
        for (int h = 0; h < r->nhosts; h++) {
            char name[300];
            if (!r->ans.hosts[h].addr_secure || r->q[2 * h].n + r->q[2 * h + 1].n == 0)
                continue;
            int n = snprintf(name, sizeof name, "_%d._tcp.%s", r->port, r->hosts[h].name);
            if (n < 0 || n > 253)
                continue;   /* no such name can exist */
            r->tq[h].host = h;
            if (start_query(r, &r->tq[h], name, RR_TLSA) < 0)
                snprintf(r->tq[h].why, sizeof r->tq[h].why, "cannot start the lookup");
        }
    }
    if (r->npending == 0)
        collect(r);
}

static void add_addr(struct dns_req *r, int h, const struct sockaddr_storage *ss)
{
    if (r->ans.naddrs >= DNS_MAX_ADDRS)
        return;
    struct dns_addr *a = &r->ans.addrs[r->ans.naddrs++];
    size_t hn = strnlen(r->hosts[h].name, sizeof a->host - 1);
    memcpy(a->host, r->hosts[h].name, hn);
    a->host[hn] = '\0';
    a->host_idx = h;
    a->pref = r->hosts[h].pref;
    a->ss = *ss;
    if (ss->ss_family == AF_INET6) {
        a->sslen = sizeof(struct sockaddr_in6);
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, a->str, sizeof a->str);
    } else {
        a->sslen = sizeof(struct sockaddr_in);
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, a->str, sizeof a->str);
    }
}

/* Why host H may not be used (its DNSSEC or DANE lookups failed) into
 * WHY, or 0 when it may. */
static int host_unusable(struct dns_req *r, int h, char *why, size_t whysz)
{
    for (int k = 0; k < 2; k++) {
        const struct dns_query *q = &r->q[2 * h + k];
        if (q->bogus) {
            snprintf(why, whysz, "DNSSEC validation of the %s records of %s failed (%s)",
                     type_name(q->type), r->hosts[h].name, q->why);
            return 1;
        }
    }
    const struct dns_query *t = &r->tq[h];
    if (t->type != RR_TLSA || !t->tempfail)
        return 0;
    if (t->bogus)
        snprintf(why, whysz, "DNSSEC validation of the DANE TLSA records of %s failed (%s)",
                 r->hosts[h].name, t->why);
    else
        snprintf(why, whysz, "the lookup of the DANE TLSA records of %s failed (SERVFAIL or no"
                 " answer%s%s)", r->hosts[h].name, t->why[0] ? ": " : "", t->why);
    if (!t->bogus) {
        char qn[LOG_QSIZE];
        log_warn("dns", "event=dane-lookup-failed host=%s hint=\"a host whose DANE TLSA"
                 " records cannot be looked up is not used (RFC 7672 2.2); the mail waits"
                 " if no other host is left\"",
                 log_q(qn, sizeof qn, r->hosts[h].name, strlen(r->hosts[h].name)));
    }
    return 1;
}

/* All queries answered: the ordered list, or why there is none. */
static void collect(struct dns_req *r)
{
    int tempfail = 0, nx = 0, dropped = 0;
    char why[300] = "";
    r->ans.nhosts = r->nhosts;
    for (int h = 0; h < r->nhosts; h++) {
        if (host_unusable(r, h, why, sizeof why)) {
            dropped++;
            r->ans.hosts[h].dane = DNS_DANE_NONE;
            r->ans.hosts[h].ntlsa = 0;
            continue;
        }
        for (int k = 0; k < 2; k++) {
            struct dns_query *q = &r->q[2 * h + k];
            tempfail |= q->tempfail;
            nx += q->nxdomain;
            for (int i = 0; i < q->n; i++)
                add_addr(r, h, &q->addrs[i]);
        }
    }
    if (r->ans.naddrs > 0) {
        r->ans.status = DNS_OK;
    } else if (dropped) {
        r->ans.status = DNS_TEMPFAIL;
        snprintf(r->ans.error, sizeof r->ans.error, "%s", why);
    } else if (tempfail) {
        r->ans.status = DNS_TEMPFAIL;
        snprintf(r->ans.error, sizeof r->ans.error,
                 "DNS lookup of the addresses of the mail servers of %s failed", r->domain);
    } else if (r->ans.implicit_mx && nx) {
        r->ans.status = DNS_NXDOMAIN;
        snprintf(r->ans.error, sizeof r->ans.error, "the domain %s does not exist (NXDOMAIN)",
                 r->domain);
    } else {
        r->ans.status = DNS_NOADDR;
        snprintf(r->ans.error, sizeof r->ans.error, "no address (A or AAAA) for %s%s",
                 r->ans.implicit_mx ? "" : "the mail servers of ", r->domain);
    }
    struct timeval now = {0, 0};
    evtimer_add(r->timer, &now);   /* req_timeout sees a final status */
}

/* "[192.0.2.1]", "[IPv6:2001:db8::1]" or a bare numeric address. */
static int literal(const char *s, int port, struct dns_addr *a)
{
    char buf[80];
    size_t n = strlen(s);
    if (n >= sizeof buf)
        return -1;
    if (s[0] == '[' && n > 2 && s[n - 1] == ']') {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
    } else {
        memcpy(buf, s, n + 1);
    }
    const char *p = buf;
    if (strncasecmp(p, "IPv6:", 5) == 0)
        p += 5;
    memset(a, 0, sizeof *a);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
    if (p == buf && inet_pton(AF_INET, p, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        a->sslen = sizeof *s4;
    } else if (inet_pton(AF_INET6, p, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        a->sslen = sizeof *s6;
    } else {
        return -1;
    }
    snprintf(a->str, sizeof a->str, "%.63s", p);
    snprintf(a->host, sizeof a->host, "%.63s", p);
    a->host_idx = -1;
    return 0;
}

static struct dns_req *lookup(struct dns *d, const char *name, int port, int mx, dns_fn done,
                              void *arg)
{
    struct dns_req *r = req_new(d, name, port, done, arg);
    r->mxq.host = -1;
    r->want_tlsa = mx;
    if (literal(name, port, &r->ans.addrs[0]) == 0) {
        r->ans.naddrs = 1;
        r->ans.status = DNS_OK;
        struct timeval now = {0, 0};
        evtimer_add(r->timer, &now);
        return r;
    }
    if (strlen(name) > 253 || !name[0] || name[0] == '.' || strstr(name, "..")) {
        req_fail(r, DNS_NXDOMAIN, "'%s' is not a valid domain name", name);
        return r;
    }
    if (!mx) {
        r->nhosts = 1;
        r->ans.implicit_mx = 1;
        snprintf(r->hosts[0].name, sizeof r->hosts[0].name, "%s", name);
    }
    req_start(r);
    return r;
}

/* Starts R's first queries, or puts it on the wait list while the trust
 * anchor probe runs. */
static void req_start_waiter(void *owner)
{
    req_start(owner);
}

static void req_start(struct dns_req *r)
{
    if (r->d->probing) {
        dns_wait(r->d, &r->wait, req_start_waiter, r);
        return;
    }
    if (!r->want_tlsa) {
        start_addresses(r);
        return;
    }
    if (start_query(r, &r->mxq, r->domain, RR_MX) < 0)
        req_fail(r, DNS_TEMPFAIL, "cannot start the DNS lookup of %s", r->domain);
}

struct dns_req *dns_lookup_mx(struct dns *d, const char *domain, int port, dns_fn done,
                              void *arg)
{
    return lookup(d, domain, port, 1, done, arg);
}

struct dns_req *dns_lookup_host(struct dns *d, const char *host, int port, dns_fn done,
                                void *arg)
{
    return lookup(d, host, port, 0, done, arg);
}
