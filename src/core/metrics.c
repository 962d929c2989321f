/* metrics: the counters behind /metrics as C11 atomics (see metrics.h).
 * Relaxed ordering is enough: each counter is independent and only read
 * for reporting. */
#include "core/metrics.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef _Atomic unsigned long long counter;

struct histogram {
    counter buckets[METRICS_NBUCKETS + 1];
    counter sum_us;
};

static counter connections[LK_COUNT];
static counter tls_ok[LK_COUNT], tls_failed[LK_COUNT];
static counter logins[LK_COUNT][ML_COUNT];
static counter accepted[LK_COUNT];
static counter rejected[LK_COUNT][MR_COUNT];
static counter deliveries[MD_COUNT];
static counter dsns[MDSN_COUNT];
static struct histogram hists[MH_COUNT];

const double metrics_bucket_bounds[METRICS_NBUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

static void inc(counter *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long get(counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static int kind_ok(enum listener_kind k)
{
    return k >= 0 && k < LK_COUNT;
}

void metrics_connection(enum listener_kind k)
{
    if (kind_ok(k))
        inc(&connections[k]);
}

void metrics_tls_handshake(enum listener_kind k, int ok)
{
    if (kind_ok(k))
        inc(ok ? &tls_ok[k] : &tls_failed[k]);
}

void metrics_login(enum listener_kind k, enum metrics_login o)
{
    if (kind_ok(k) && o >= 0 && o < ML_COUNT)
        inc(&logins[k][o]);
}

void metrics_message_accepted(enum listener_kind k)
{
    if (kind_ok(k))
        inc(&accepted[k]);
}

void metrics_message_rejected(enum listener_kind k, enum metrics_reject r)
{
    if (kind_ok(k) && r >= 0 && r < MR_COUNT)
        inc(&rejected[k][r]);
}

void metrics_delivery(enum metrics_delivery d)
{
    if (d >= 0 && d < MD_COUNT)
        inc(&deliveries[d]);
}

void metrics_dsn(enum metrics_dsn k)
{
    if (k >= 0 && k < MDSN_COUNT)
        inc(&dsns[k]);
}

void metrics_observe(enum metrics_histogram h, double seconds)
{
    if (h < 0 || h >= MH_COUNT)
        return;
    if (!(seconds > 0))
        seconds = 0;
    if (seconds > 1e9)
        seconds = 1e9;
    int i = 0;
    while (i < METRICS_NBUCKETS && seconds > metrics_bucket_bounds[i])
        i++;
    inc(&hists[h].buckets[i]);
    atomic_fetch_add_explicit(&hists[h].sum_us, (unsigned long long)(seconds * 1e6),
                              memory_order_relaxed);
}

uint64_t metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

double metrics_since_s(uint64_t start_us)
{
    uint64_t now = metrics_now_us();
    return now > start_us ? (double)(now - start_us) / 1e6 : 0;
}

void metrics_snapshot(struct metrics_snapshot *s)
{
    memset(s, 0, sizeof *s);
    for (int k = 0; k < LK_COUNT; k++) {
        s->connections[k] = get(&connections[k]);
        s->tls_ok[k] = get(&tls_ok[k]);
        s->tls_failed[k] = get(&tls_failed[k]);
        s->accepted[k] = get(&accepted[k]);
        for (int o = 0; o < ML_COUNT; o++)
            s->logins[k][o] = get(&logins[k][o]);
        for (int r = 0; r < MR_COUNT; r++)
            s->rejected[k][r] = get(&rejected[k][r]);
    }
    for (int d = 0; d < MD_COUNT; d++)
        s->deliveries[d] = get(&deliveries[d]);
    for (int k = 0; k < MDSN_COUNT; k++)
        s->dsns[k] = get(&dsns[k]);
    for (int h = 0; h < MH_COUNT; h++) {
        for (int b = 0; b <= METRICS_NBUCKETS; b++)
            s->hist[h].buckets[b] = get(&hists[h].buckets[b]);
        s->hist[h].sum_us = get(&hists[h].sum_us);
    }
}

const char *metrics_login_name(enum metrics_login o)
{
    static const char *const names[ML_COUNT] = {
        "ok", "bad_password", "app_password_required", "throttled", "disabled", "error",
    };
    return o >= 0 && o < ML_COUNT ? names[o] : "?";
}

const char *metrics_reject_name(enum metrics_reject r)
{
    static const char *const names[MR_COUNT] = {
        "size", "relay", "rate_limit", "quota", "policy", "unknown_recipient",
        "bare_line_ending", "temporary",
    };
    return r >= 0 && r < MR_COUNT ? names[r] : "?";
}

const char *metrics_delivery_route(enum metrics_delivery d)
{
    return d == MD_LOCAL_DELIVERED || d == MD_LOCAL_FAILED ? "local" : "remote";
}

const char *metrics_delivery_outcome(enum metrics_delivery d)
{
    static const char *const names[MD_COUNT] = {
        "delivered", "failed", "delivered", "deferred", "failed",
    };
    return d >= 0 && d < MD_COUNT ? names[d] : "?";
}

const char *metrics_dsn_name(enum metrics_dsn k)
{
    return k == MDSN_FAILED ? "failed" : k == MDSN_DELAYED ? "delayed" : "?";
}
