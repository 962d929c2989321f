/* http_health: what /healthz reports. The server is healthy when the
 * queue is running, the data directory's queue/ and mail/ directories
 * accept a new file, and the directory database answers a query. */
#ifndef ROOST_HTTP_HEALTH_H
#define ROOST_HTTP_HEALTH_H

struct buf;

/* Runs the checks (blocking file system and SQLite calls: call it on the
 * HTTP thread, never on an event loop) and appends a one-line JSON body to
 * OUT. Returns 1 healthy, 0 not. */
int http_health_check(const char *data_dir, struct buf *out);

#endif
