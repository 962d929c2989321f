/* http_metrics: the /metrics page (see http_metrics.h). Reads one
 * snapshot of the atomic counters and the queue's counters (under the
 * queue's own lock, through queue_get_stats / queue_inflight). */
#include "http/http_metrics.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "queue/queue.h"

#include <stdio.h>

static int header(struct buf *out, const char *name, const char *type, const char *help)
{
    return buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const enum listener_kind login_kinds[] = {LK_SUBMISSION, LK_SUBMISSIONS, LK_IMAP,
                                                 LK_IMAPS, LK_POP3, LK_POP3S};
static const enum listener_kind smtp_kinds[] = {LK_SMTP, LK_SUBMISSION, LK_SUBMISSIONS};

static int connections(struct buf *out, const struct metrics_snapshot *s)
{
    int r = header(out, "roost_connections_total", "counter",
                   "TCP connections accepted, by listener kind.");
    for (int k = 0; r == 0 && k < LK_COUNT; k++)
        r = buf_appendf(out, "roost_connections_total{protocol=\"%s\"} %llu\n",
                        listener_kind_name((enum listener_kind)k), s->connections[k]);
    r = r ? r : header(out, "roost_tls_handshakes_total", "counter",
                       "TLS handshakes (implicit TLS and STARTTLS) by listener kind and result.");
    for (int k = 0; r == 0 && k < LK_COUNT; k++) {
        const char *p = listener_kind_name((enum listener_kind)k);
        r = buf_appendf(out, "roost_tls_handshakes_total{protocol=\"%s\",result=\"ok\"} %llu\n"
                             "roost_tls_handshakes_total{protocol=\"%s\",result=\"failed\"} %llu\n",
                        p, s->tls_ok[k], p, s->tls_failed[k]);
    }
    return r;
}

static int logins(struct buf *out, const struct metrics_snapshot *s)
{
    int r = header(out, "roost_logins_total", "counter",
                   "Login attempts (SMTP AUTH, IMAP, POP3) by listener kind and outcome.");
    for (size_t i = 0; r == 0 && i < sizeof login_kinds / sizeof *login_kinds; i++)
        for (int o = 0; r == 0 && o < ML_COUNT; o++)
            r = buf_appendf(out, "roost_logins_total{protocol=\"%s\",outcome=\"%s\"} %llu\n",
                            listener_kind_name(login_kinds[i]),
                            metrics_login_name((enum metrics_login)o),
                            s->logins[login_kinds[i]][o]);
    return r;
}

static int messages(struct buf *out, const struct metrics_snapshot *s)
{
    int r = header(out, "roost_messages_accepted_total", "counter",
                   "Messages accepted (250 after DATA/BDAT), by listener kind.");
    for (size_t i = 0; r == 0 && i < sizeof smtp_kinds / sizeof *smtp_kinds; i++)
        r = buf_appendf(out, "roost_messages_accepted_total{protocol=\"%s\"} %llu\n",
                        listener_kind_name(smtp_kinds[i]), s->accepted[smtp_kinds[i]]);
    r = r ? r : header(out, "roost_messages_rejected_total", "counter",
                       "Messages or recipients refused, by listener kind and reason.");
    for (size_t i = 0; r == 0 && i < sizeof smtp_kinds / sizeof *smtp_kinds; i++)
        for (int m = 0; r == 0 && m < MR_COUNT; m++)
            r = buf_appendf(out, "roost_messages_rejected_total{protocol=\"%s\",reason=\"%s\"} %llu\n",
                            listener_kind_name(smtp_kinds[i]),
                            metrics_reject_name((enum metrics_reject)m),
                            s->rejected[smtp_kinds[i]][m]);
    r = r ? r : header(out, "roost_deliveries_total", "counter",
                       "Delivery attempts per recipient, by route and outcome.");
    for (int d = 0; r == 0 && d < MD_COUNT; d++)
        r = buf_appendf(out, "roost_deliveries_total{route=\"%s\",outcome=\"%s\"} %llu\n",
                        metrics_delivery_route((enum metrics_delivery)d),
                        metrics_delivery_outcome((enum metrics_delivery)d), s->deliveries[d]);
    r = r ? r : header(out, "roost_dsns_total", "counter",
                       "Delivery status notifications queued for senders, by kind.");
    for (int k = 0; r == 0 && k < MDSN_COUNT; k++)
        r = buf_appendf(out, "roost_dsns_total{kind=\"%s\"} %llu\n",
                        metrics_dsn_name((enum metrics_dsn)k), s->dsns[k]);
    return r;
}

static int queue(struct buf *out)
{
    struct queue_stats st;
    queue_get_stats(&st);
    int inflight = queue_inflight();
    int r = header(out, "roost_queue_messages", "gauge",
                   "Messages in the queue directory, waiting for any delivery.");
    r = r ? r : buf_appendf(out, "roost_queue_messages{state=\"queued\"} %d\n", inflight);
    r = r ? r : header(out, "roost_queue_recipients", "gauge",
                       "Queued recipients waiting for the outbound (remote) delivery.");
    r = r ? r : buf_appendf(out, "roost_queue_recipients{state=\"remote_pending\"} %lu\n",
                            st.pending_remote);
    r = r ? r : header(out, "roost_queue_depth", "gauge",
                       "Waiting messages by state after their last scheduler round.");
    static const char *const names[QD_COUNT] = {NULL, "pending_local", "pending_remote", "held"};
    for (int d = QD_PENDING_LOCAL; r == 0 && d < QD_COUNT; d++)
        r = buf_appendf(out, "roost_queue_depth{state=\"%s\"} %lu\n", names[d], st.depth[d]);
    r = r ? r : header(out, "roost_queue_journal_commits_total", "counter",
                       "Group commits (one write and one fdatasync each) of the queue journal.");
    r = r ? r : buf_appendf(out, "roost_queue_journal_commits_total %lu\n", st.journal_commits);
    r = r ? r : header(out, "roost_queue_journal_messages_total", "counter",
                       "Messages made durable by those group commits.");
    r = r ? r : buf_appendf(out, "roost_queue_journal_messages_total %lu\n", st.journal_records);
    return r;
}

static int histogram(struct buf *out, const char *name, const char *help,
                     const struct metrics_hist_snap *h)
{
    int r = header(out, name, "histogram", help);
    unsigned long long cum = 0;
    for (int b = 0; r == 0 && b < METRICS_NBUCKETS; b++) {
        cum += h->buckets[b];
        r = buf_appendf(out, "%s_bucket{le=\"%g\"} %llu\n", name, metrics_bucket_bounds[b], cum);
    }
    cum += h->buckets[METRICS_NBUCKETS];
    r = r ? r : buf_appendf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n",
                            name, cum, name, (double)h->sum_us / 1e6, name, cum);
    return r;
}

int http_metrics_render(struct buf *out, time_t started)
{
    struct metrics_snapshot s;
    metrics_snapshot(&s);
    int r = header(out, "roost_start_time_seconds", "gauge",
                   "When roost serve started, in seconds since the epoch.");
    r = r ? r : buf_appendf(out, "roost_start_time_seconds %lld\n", (long long)started);
    r = r ? r : connections(out, &s);
    r = r ? r : logins(out, &s);
    r = r ? r : messages(out, &s);
    r = r ? r : queue(out);
    r = r ? r : histogram(out, "roost_accept_latency_seconds",
                          "From the end of DATA/BDAT to the 250 reply (message durable).",
                          &s.hist[MH_ACCEPT]);
    r = r ? r : histogram(out, "roost_delivery_latency_seconds",
                          "From the 250 reply to the message stored in a local mailbox.",
                          &s.hist[MH_DELIVERY]);
    return r;
}
