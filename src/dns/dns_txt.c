/* dns_txt: TXT lookups on the resolver's libunbound context (dns.h), for
 * MTA-STS discovery ("_mta-sts.DOMAIN", RFC 8461 3.1).
 *
 * One query per request, its own timer (the context's timeout). While the
 * trust anchor probe runs (dns_ctx.c may replace the libunbound context)
 * the request waits on the context's wait list (dns_wait), as MX lookups do. NXDOMAIN and
 * NODATA are both "no records" (DNS_OK, n = 0); SERVFAIL, a bogus answer
 * or a timeout is DNS_TEMPFAIL. DONE never runs inside dns_lookup_txt. */
#include "dns/dns.h"
#include "dns/dns_int.h"
#include "core/xalloc.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#define RR_TXT 16

struct dns_txt_req {
    struct dns *d;
    dns_txt_fn done;
    void *arg;
    char name[256];
    struct event *timer;      /* the deadline */
    struct event *poll;       /* the start, never inside dns_lookup_txt */
    struct dns_waiter wait;   /* while the trust anchor probe runs */
    int pending, async_id, finished;
    int answered;             /* query_cb ran (or a failure is already set) */
    struct dns_txt_answer ans;
};

int dns_txt_rdata(const unsigned char *rd, int len, char *out, size_t outsz, size_t *outlen_r)
{
    size_t o = 0;
    int i = 0;
    if (len < 1 || outsz == 0)
        return -1;
    while (i < len) {
        int n = rd[i++];
        if (n > len - i || o + (size_t)n >= outsz)
            return -1;
        memcpy(out + o, rd + i, (size_t)n);
        o += (size_t)n;
        i += n;
    }
    out[o] = '\0';
    *outlen_r = o;
    return 0;
}

static void txt_free(struct dns_txt_req *r)
{
    dns_unwait(r->d, &r->wait);
    if (r->pending)
        ub_cancel(r->d->ub, r->async_id);
    event_free(r->timer);
    event_free(r->poll);
    free(r);
}

void dns_txt_cancel(struct dns_txt_req *r)
{
    if (r)
        txt_free(r);
}

static void finish(struct dns_txt_req *r)
{
    if (r->finished)
        return;
    r->finished = 1;
    r->done(r->arg, &r->ans);
    txt_free(r);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_txt_req *r = arg;
    if (r->pending) {
        ub_cancel(r->d->ub, r->async_id);
        r->pending = 0;
    }
    if (!r->answered && r->ans.status == DNS_OK) {
        /* still in flight, or still waiting for the trust anchor probe */
        r->ans.status = DNS_TEMPFAIL;
        snprintf(r->ans.error, sizeof r->ans.error, "DNS lookup of the TXT records of %s timed"
                 " out", r->name);
    }
    finish(r);
}

static void query_cb(void *mydata, int err, struct ub_result *res)
{
    struct dns_txt_req *r = mydata;
    r->pending = 0;
    r->answered = 1;
    if (err != 0 || !res || res->bogus || (res->rcode != 0 && res->rcode != RCODE_NXDOMAIN)) {
        r->ans.status = DNS_TEMPFAIL;
        snprintf(r->ans.error, sizeof r->ans.error, "DNS lookup of the TXT records of %s failed"
                 " (%s)", r->name, res && res->bogus ? "DNSSEC validation failed"
                 : "SERVFAIL or no answer");
    } else if (res->havedata) {
        for (int i = 0; res->data[i] && r->ans.n < DNS_MAX_TXT; i++) {
            int k = r->ans.n;
            if (dns_txt_rdata((const unsigned char *)res->data[i], res->len[i], r->ans.txt[k],
                              sizeof r->ans.txt[k], &r->ans.len[k]) == 0)
                r->ans.n++;
        }
    }
    if (res)
        ub_resolve_free(res);
    /* from ub_process: the owner's callback may free things, so the
     * deadline timer (due now) delivers the answer */
    struct timeval now = {0, 0};
    evtimer_add(r->timer, &now);
}

static void txt_start(void *owner);

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
    txt_start(arg);
}

static void txt_start(void *owner)
{
    struct dns_txt_req *r = owner;
    if (r->d->probing) {
        dns_wait(r->d, &r->wait, txt_start, r);
        return;
    }
    if (ub_resolve_async(r->d->ub, r->name, RR_TXT, CLASS_IN, r, query_cb, &r->async_id) != 0) {
        r->ans.status = DNS_TEMPFAIL;
        snprintf(r->ans.error, sizeof r->ans.error, "cannot start the DNS lookup of %s", r->name);
        finish(r);
        return;
    }
    r->pending = 1;
}

struct dns_txt_req *dns_lookup_txt(struct dns *d, const char *name, dns_txt_fn done, void *arg)
{
    struct dns_txt_req *r = xcalloc(1, sizeof *r);
    r->d = d;
    r->done = done;
    r->arg = arg;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->ans.status = DNS_OK;
    r->timer = evtimer_new(d->base, deadline_cb, r);
    r->poll = evtimer_new(d->base, start_cb, r);
    struct timeval tv = {d->timeout_ms / 1000, (d->timeout_ms % 1000) * 1000};
    struct timeval now = {0, 0};
    if (!r->timer || !r->poll || evtimer_add(r->timer, &tv) < 0 || evtimer_add(r->poll, &now) < 0)
        abort();
    if (strlen(name) > 253) {
        r->ans.status = DNS_TEMPFAIL;
        snprintf(r->ans.error, sizeof r->ans.error, "the name is too long");
        event_del(r->poll);
        evtimer_add(r->timer, &now);
    }
    return r;
}
