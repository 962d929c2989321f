/* http_metrics: renders core/metrics.h's counters and the queue's state
 * in the Prometheus text exposition format 0.0.4 (Content-Type
 * "text/plain; version=0.0.4"). Every label combination is written, zeros
 * included, so a series exists before its first event. docs/http.md lists
 * the metrics. */
#ifndef ROOST_HTTP_METRICS_H
#define ROOST_HTTP_METRICS_H

#include <time.h>

struct buf;

/* Appends the whole exposition to OUT. 0 ok, -1 OUT full. */
int http_metrics_render(struct buf *out, time_t started);

#endif
