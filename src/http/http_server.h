/* http_server: the HTTP listener of `roost serve` on libmicrohttpd (MHD):
 * /metrics, /healthz, client autoconfiguration (Thunderbird, Outlook,
 * Apple) and the MTA-STS policy. docs/http.md describes every endpoint.
 *
 * Threads: each listen address gets one MHD daemon with its own internal
 * polling thread (MHD_USE_INTERNAL_POLLING_THREAD), not an fd on Roost's
 * event loops. The handlers read SQLite (is this domain served?) and the
 * file system (/healthz), which must never run on an event loop; on MHD's
 * own thread they block nobody but the (rare, small) HTTP requests queued
 * behind them. They share nothing mutable with the mail loops except the
 * atomic counters of core/metrics.h and the queue's locked statistics.
 *
 * Lifecycle: http_bind() before the privilege drop (binds the sockets so
 * ports below 1024 work, and reads the certificate and key, which may be
 * readable by root only); http_start() after it; http_stop() at exit. */
#ifndef ROOST_HTTP_SERVER_H
#define ROOST_HTTP_SERVER_H

struct config;

/* Binds every [http] listen address. 0 ok (also when none is configured),
 * -1 with ERROR_R set. */
int http_bind(const struct config *cfg, const char **error_r);
/* Starts serving on the bound sockets. CFG and DATA_DIR must outlive the
 * server. 0 ok, -1 with ERROR_R set. */
int http_start(const struct config *cfg, const char *data_dir, const char **error_r);
/* Stops the daemons and closes the sockets; idempotent. */
void http_stop(void);

#endif
