/* journal: the group-committed queue for mail that is delivered at once.
 *
 * A message whose recipients are all local accounts does not get a queue
 * file of its own: its queue-file bytes (spool_encode) are appended to the
 * active segment DATA/queue/journal/<16 hex digits>, and one thread of the
 * journal writes every message waiting at that moment with one writev and
 * makes them durable with one fdatasync (group commit: the sessions that
 * arrive while an fdatasync runs share the next one). Only then does each
 * submitter hear that its message is durable and may answer 250.
 *
 * Record: 'J', length (4 bytes, little-endian) of what follows, the queue
 * id (SPOOL_ID_LEN octets), the queue-file bytes (which end with their own
 * CRC). A segment starts with "ROOSTJ1\n". A torn record at the end (a
 * crash during a write that was never acknowledged) ends the scan.
 *
 * Every record holds a reference on its segment until the queue releases
 * it (the message is in its mailboxes, or was copied to a queue file of its
 * own to wait for a retry). A segment is closed at JOURNAL_SEGMENT_MAX
 * octets (or when nothing in it is pending and it passed
 * JOURNAL_SEGMENT_IDLE_ROTATE); a closed segment without references is
 * unlinked and the directory fsync'd. At start every segment found is
 * replayed (journal_replay): its records go to the queue again, which
 * delivers them idempotently (the store knows the queue ids it stored). */
#ifndef ROOST_JOURNAL_H
#define ROOST_JOURNAL_H

#include "queue/spool.h"

#include <stdint.h>

#define JOURNAL_SEGMENT_MAX (64u * 1024 * 1024)
#define JOURNAL_SEGMENT_IDLE_ROTATE (4u * 1024 * 1024)

struct journal;
struct journal_seg;
struct loop;

/* Creates DATA/queue/journal/ as needed and starts the commit thread.
 * Segments already there stay untouched until journal_replay. */
struct journal *journal_open(const char *data_dir, const char **error_r);
/* Commits what is waiting (its submitters are told on their loops, which
 * must still run them: see loop_post_job), then stops the thread. */
void journal_close(struct journal **jp);

/* Result on the submitter's loop: 0 durable in SEG (one reference to
 * release), -1 not stored (ERROR says why). */
typedef void (*journal_done_fn)(void *arg, int result, struct journal_seg *seg,
                                const char *error);
/* Loop thread: encodes MSG now (MSG->id set) and queues it for the next
 * group commit; DONE runs later on LOOP, never inside this call. */
void journal_append(struct journal *j, const struct spool_msg *msg, struct loop *loop,
                    journal_done_fn done, void *arg);
/* Any thread: one record of SEG is finished with. */
void journal_release(struct journal *j, struct journal_seg *seg);

/* Start-up, before any journal_append: calls CB for every intact record of
 * every segment found, oldest first; CB owns MSG and returns 1 if it keeps
 * the reference on SEG (release it later), 0 if not. Segments are closed;
 * those left without references are removed. Returns records replayed. */
int journal_replay(struct journal *j,
                   int (*cb)(struct spool_msg *msg, struct journal_seg *seg, void *arg),
                   void *arg);

/* For tests and status: group commits (fdatasyncs) and records written. */
void journal_stats(struct journal *j, unsigned long *commits_r, unsigned long *records_r);

#endif
