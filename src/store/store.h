/* store: an account's mailboxes, in DATA/mail/<account>/: an index
 * (index.sqlite: mailboxes with UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ; messages
 * with UID, flags, keywords, internal date, size, MODSEQ, the queue id they
 * came from, and columns for cached ENVELOPE/BODYSTRUCTURE) plus the message
 * bytes: delivered mail in append-only pack files under msg/pack/, APPENDed
 * and older mail one file per message under msg/ (store_msgfile.h reads
 * either).
 *
 * All calls block on disk and SQLite: worker threads only. Each call opens
 * what it needs; concurrent calls for one account are serialised by SQLite
 * (WAL, busy timeout). Every account starts with INBOX, Sent, Drafts, Trash,
 * Junk and Archive (special-use). */
#ifndef ROOST_STORE_H
#define ROOST_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/store_msgfile.h"

struct store_msg_info {
    uint32_t uid;
    size_t size;
    time_t internaldate;
    uint64_t modseq;
    char flags[256];        /* space-separated, e.g. "\\Seen \\Flagged" */
    char queue_id[64];      /* "" when not from the queue (APPEND) */
    char path[4096];        /* the message file (whole, or the pack) */
    int64_t offset;         /* in the pack; STORE_WHOLE_FILE (-1): a whole file */
};

/* Delivers DATA into MAILBOX of ACCOUNT. Idempotent per (account, queue id):
 * if this queue id is already in the account's store, nothing is written and
 * *duplicate_r = 1. Returns 0 once the message file and the index are on
 * stable storage (file, directory and index fsync'd), -1 on error. */
int store_deliver(const char *data_dir, const char *account, const char *mailbox,
                  const char *queue_id, const char *data, size_t len, time_t internaldate,
                  uint32_t *uid_r, int *duplicate_r, const char **error_r);

/* One message of a batch delivery. */
struct store_batch_item {
    const char *mailbox;      /* "INBOX" usually */
    const char *queue_id;     /* idempotency key (deliveries table), may be NULL */
    const char *data;
    size_t len;
    time_t internaldate;
    const char *flags;        /* e.g. "\\Seen" or "" or NULL */
    uint32_t uid;             /* out */
    int duplicate;            /* out: queue_id delivered before (not stored again) */
    int result;               /* out: 0 stored (or duplicate), 1 no such mailbox, -1 error */
};
/* Delivers the N ITEMS into ACCOUNT's mailboxes in one transaction: the
 * bytes appended to the account's active pack file and fdatasync'd, then
 * the index COMMIT (synchronous=FULL). Idempotent per queue id, also inside
 * one batch (the same queue id twice is stored once; the second is a
 * duplicate with the first's UID). The quota is not checked. Returns 0 when
 * the transaction committed (each item's result says what happened to it),
 * -1 when nothing was stored (*error_r set; retry them all later).
 * Blocking: worker threads only. */
int store_deliver_batch(const char *data_dir, const char *account,
                        struct store_batch_item *items, int n, const char **error_r);

/* Lists the messages of MAILBOX in UID order. 0 ok, 1 no such mailbox or
 * account store, -1 error. */
int store_list(const char *data_dir, const char *account, const char *mailbox,
               void (*cb)(const struct store_msg_info *m, void *arg), void *arg);

/* UIDVALIDITY and UIDNEXT of MAILBOX. 0 ok, 1 none. */
int store_mailbox_status(const char *data_dir, const char *account, const char *mailbox,
                         uint32_t *uidvalidity_r, uint32_t *uidnext_r, uint32_t *count_r);

/* Reads one message (by UID) into a malloc'd buffer. 0 ok, 1 none. */
int store_read(const char *data_dir, const char *account, const char *mailbox, uint32_t uid,
               char **data_r, size_t *len_r);

/* Added: calls CB for each mailbox of ACCOUNT in creation order with its
 * special-use attribute (NULL when none). 0 ok, 1 no store, -1 error. */
int store_list_mailboxes(const char *data_dir, const char *account,
                         void (*cb)(const char *name, const char *special_use, void *arg),
                         void *arg);

/* ---- changes to messages (POP3 now, IMAP later) ----
 * Each returns 0 once the change is on stable storage, -1 on error. UIDs not
 * in the mailbox are ignored. Every change bumps HIGHESTMODSEQ. */
/* Removes the messages (index rows and files). */
int store_expunge(const char *data_dir, const char *account, const char *mailbox,
                  const uint32_t *uids, int n, const char **error_r);
/* Adds FLAG (e.g. "\\Seen") to the messages' flags (no duplicates). */
int store_add_flag(const char *data_dir, const char *account, const char *mailbox,
                   const uint32_t *uids, int n, const char *flag, const char **error_r);
/* Moves the messages to mailbox TO (new UIDs there, gone from FROM). */
int store_move(const char *data_dir, const char *account, const char *from, const char *to,
               const uint32_t *uids, int n, const char **error_r);

/* ---- compaction (store_compact.c) ----
 * A pack (not the active one) whose live bytes fall below this share of its
 * size has its live messages rewritten into the active pack. */
#define STORE_COMPACT_LIVE_PERCENT 50
/* A pack emptied by compaction is unlinked on a pass this many seconds or
 * more after it was retired (readers that looked its rows up before may
 * still open it meanwhile). */
#define STORE_COMPACT_GRACE 3600
struct store_compact_stats {
    uint64_t packs_rewritten;   /* packs whose live messages were copied */
    uint64_t packs_emptied;     /* packs no row named, retired without a copy */
    uint64_t messages_moved;    /* distinct (pack, offset) copied */
    uint64_t bytes_copied;
    uint64_t bytes_retired;     /* size of the packs retired by this pass */
    uint64_t packs_removed;     /* retired packs unlinked after their grace */
    uint64_t bytes_freed;       /* their size */
    uint64_t packs_waiting;     /* retired packs still in their grace period */
    int removal_postponed;      /* a POP3 session was open: no retired pack removed */
};
/* One compaction pass over ACCOUNT: unlinks the retired packs past the
 * grace period (unless a POP3 session holds the maildrop lock), then rewrites every pack below the active one that is
 * worth it (one write transaction each, serialised with deliveries by the
 * index's write lock) and retires it. Safe while the server runs. 0 done,
 * 1 no store for the account, -1 error (*error_r: the last one; the packs
 * that could be done were). Blocking: worker threads only. */
int store_compact_account(const char *data_dir, const char *account,
                          struct store_compact_stats *st, const char **error_r);
/* The grace period in seconds (tests, `roost mailbox compact --grace`);
 * negative: back to STORE_COMPACT_GRACE. */
void store_compact_grace_set(int64_t seconds);
/* The accounts due for a pass (store_compact_due.c), recorded only once
 * enabled (the server): a change left a pack partly live, a delivery
 * rotated away from a pack with mail in it, or retired packs wait. */
void store_compact_due_enable(int on);
void store_compact_due_add(const char *account);
/* Takes the set (a malloc'd array of *N_R malloc'd names, may be NULL);
 * *ALL_R = 1 when it overflowed: every account is due. */
char **store_compact_due_take(size_t *n_r, int *all_r);
/* Every account store under DATA_DIR/mail (a pass over all of them): a
 * malloc'd array of *N_R malloc'd names. 0, 1 no mail stores at all, -1
 * error (errno). */
int store_compact_all_accounts(const char *data_dir, char ***names_r, size_t *n_r);

/* ---- the POP3 maildrop ----
 * A POP3 session holds an exclusive lock on the account's maildrop (INBOX)
 * for its whole life; IMAP sessions are not blocked by it. */
struct store_pop;
struct store_pop_msg {
    uint32_t uid;
    size_t size;            /* octets of the stored message (CRLF lines) */
    time_t internaldate;
    int seen;               /* has \Seen */
    char *path;             /* the message file (owned by the snapshot) */
    int64_t offset;         /* in the pack PATH; STORE_WHOLE_FILE: PATH is the message */
};
/* Locks ACCOUNT's maildrop (creating the account's store and INBOX when it
 * has none yet) and snapshots the INBOX messages whose internal date is at
 * or after SINCE (0: all), in UID order. Returns 0, 1 when another POP3
 * session holds the lock, -1 on error. Blocking: worker threads only. */
int store_pop_open(const char *data_dir, const char *account, time_t since,
                   struct store_pop **pop_r, const char **error_r);
int store_pop_count(const struct store_pop *p);
const struct store_pop_msg *store_pop_msg(const struct store_pop *p, int i);
uint32_t store_pop_uidvalidity(const struct store_pop *p);
/* Releases the lock and frees the snapshot. */
void store_pop_close(struct store_pop **pp);

#endif
