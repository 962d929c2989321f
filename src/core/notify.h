/* notify: the one channel through which a change to an account's mailboxes
 * reaches the IMAP sessions that show them, on whichever loop they run
 * (DESIGN.md: connection code shares no mutable state except through
 * documented channels).
 *
 * The store calls notify_mailbox_changed() (from any thread) after every
 * committed change: delivery, APPEND, flags, expunge, copy, move, mailbox
 * create/delete/rename. Each loop that registered a handler gets the
 * account name posted to it (loop_post) and looks up its own sessions for
 * that account; no session pointer ever crosses threads. Without
 * registered loops (CLI, unit tests) a change notifies nobody. */
#ifndef ROOST_NOTIFY_H
#define ROOST_NOTIFY_H

struct loop;

/* Called on LOOP's thread with the account whose mailboxes changed. */
typedef void (*notify_fn)(struct loop *loop, const char *account);

/* Registers LOOP (at start-up, before the loops run; at most 256 loops). */
void notify_register_loop(struct loop *loop, notify_fn fn);
/* Forgets every loop (at shutdown, after the loops stopped). */
void notify_reset(void);
/* Posts ACCOUNT to every registered loop. Thread-safe. */
void notify_mailbox_changed(const char *account);

#endif
