/* pickup: the server side of `roost sendmail`. Watches DATA/pickup/
 * (inotify, plus a scan at start and every PICKUP_RESCAN_SECONDS for
 * retries), turns each file dropped there into a queued message
 * (queue_submit) and removes the file once the queue holds it durably.
 *
 * Who sent it is the file's owner (st_uid), which a local user cannot
 * forge. Root and the data directory's owner are trusted: their -f sender
 * is kept and they may send anywhere, as authenticated users. Every other
 * user sends as LOGIN@hostname and only to recipients in domains served
 * here; other recipients are dropped with a log line. Files that are not
 * valid pickup files are moved to DATA/pickup/corrupt/, never deleted.
 * docs/sendmail.md explains the choice.
 *
 * Runs on LOOP's thread (the queue loop); file reading and directory
 * lookups run on the worker pool. */
#ifndef ROOST_PICKUP_H
#define ROOST_PICKUP_H

#include <stddef.h>

struct loop;
struct worker_pool;

#define PICKUP_RESCAN_SECONDS 30
#define PICKUP_BATCH 100          /* files taken per scan */

/* Creates DATA/pickup (mode 1733: anyone may drop a file, nobody else may
 * list or remove it) and DATA/pickup/corrupt, makes DATA searchable by
 * others (o+x, nothing else) so that local users can reach it, and starts
 * watching. */
int pickup_start(const char *data_dir, const char *hostname, size_t max_message_size,
                 struct worker_pool *pool, struct loop *loop, const char **error_r);
/* Stops watching; jobs still running finish and then free the state. */
void pickup_stop(void);

#endif
