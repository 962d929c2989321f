/* store_int: internals shared by the files of src/store (nothing outside
 * src/store includes this).
 *
 * store_index.c is the one owner of an account's index
 * (DATA/mail/<account>/index.sqlite): the account-name check, the account's
 * directories, opening the connection (WAL, synchronous=FULL, busy timeout),
 * the schema (created at STORE_SCHEMA_VERSION, older versions migrated in
 * place), the default special-use mailboxes, and the small SQLite helpers
 * below. store.c (deliver, list, read), store_change.c (expunge, flags,
 * move) and store_pop.c (the POP3 maildrop) all open the index through
 * store_ix_open.
 *
 * Schema version 2 adds the `vanished` table (mailbox_id, uid, modseq): the
 * UIDs expunged from a mailbox (or moved out of it) with the MODSEQ of that
 * change, kept for IMAP QRESYNC (RFC 7162 3.2.10). store_ix_open migrates a
 * version-1 index in place (one BEGIN IMMEDIATE transaction; a concurrent
 * opener waits and then sees the work done) and creates a missing index
 * directly at the current version. Version 3 adds usage (kept by
 * triggers), subscriptions, mailboxes.noselect, uidvalidity_max and the
 * messages(mailbox_id, modseq) index. Version 4 adds messages.header (the
 * cached header block, store_cached). Version 5 adds messages.offset (a
 * message inside a pack file, store_pack.c), the messages(file) index and
 * pack_state (the active pack). Version 6 adds pack_retired (packs
 * compaction emptied, unlinked after a grace period: store_compact.c).
 * docs/storage.md describes the schema. */
#ifndef ROOST_STORE_INT_H
#define ROOST_STORE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define STORE_SCHEMA_VERSION 6
/* The flags column must fit struct store_msg_info.flags (256 with the NUL). */
#define STORE_MAX_FLAGS_LEN 255
/* One flag or keyword (RFC 3501 flag-keyword is an atom; we bound it). */
#define STORE_MAX_FLAG_LEN 64

/* An open index. Every call of the store API opens its own and closes it
 * (the connection itself is kept for the next call: store_ixpool). */
struct store_ix {
    sqlite3 *db;
    char *root;      /* DATA/mail/<account> */
    char *msg_dir;   /* .../msg */
    char *tmp_dir;   /* .../msg/tmp */
    char *pack_dir;  /* .../msg/pack */
    char *index;     /* .../index.sqlite */
    struct stat st;  /* of the index file, when open */
};

/* ---- store_index.c ---- */

/* Opens ACCOUNT's index (WAL, synchronous=FULL, foreign keys, busy timeout)
 * at schema version STORE_SCHEMA_VERSION, migrating an older one in place.
 * With CREATE, creates the directories (each new one made durable) and the
 * index (with the default mailboxes) when missing. Refuses account names
 * that are empty, start with '.', or contain '/' or control characters, and
 * an index newer than STORE_SCHEMA_VERSION. 0 open, 1 no store (only without
 * CREATE), -1 error; *error_r is set unless 0. IX is zeroed unless 0. */
int store_ix_open(const char *data_dir, const char *account, int create, struct store_ix *ix,
                  const char **error_r);
/* Closes the connection (an idle one goes back to the pool) and
 * frees the paths; IX may be zeroed or closed. */
void store_ix_close(struct store_ix *ix);

/* ---- store_viewcache.c ---- */

struct store_view;
struct store_mbstate;
/* Fills V from the cached view of mailbox MB of IX when it is current (MB
 * read in the caller's transaction). 1 filled, 0 not cached. */
int store_viewcache_get(const struct store_ix *ix, const struct store_mbstate *mb,
                        struct store_view *v);
/* Caches V, just read for MB in the caller's transaction: its messages
 * become a block shared by V and the cache. */
void store_viewcache_put(const struct store_ix *ix, const struct store_mbstate *mb,
                         struct store_view *v);
struct store_vblock;
/* Drops one reference to a shared block (store_view_free does it). */
void store_vblock_unref(struct store_vblock *b);

/* ---- store_stmt.c ---- */

/* A prepared statement of SQL on DB: one kept from an earlier
 * store_stmt_give on DB, else a new one; NULL on error (sqlite3_errmsg). */
sqlite3_stmt *store_stmt_take(sqlite3 *db, const char *sql);
/* Resets ST (NULL is fine) and keeps it for the next take on DB. */
void store_stmt_give(sqlite3 *db, sqlite3_stmt *st);
/* Finalizes the statements kept for DB. */
void store_stmt_forget(sqlite3 *db);
/* 1 when every statement DB has is a kept (idle) one. */
int store_stmt_only_kept(sqlite3 *db);
/* store_stmt_forget, then sqlite3_close; DB may be NULL. */
void store_ix_db_close(sqlite3 *db);
/* Runs the single statement SQL (rows ignored) from a kept statement:
 * SQLITE_OK or the error code. */
int store_ix_run(sqlite3 *db, const char *sql);

/* ---- store_ixpool.c ---- */

/* The pooled connection to index file PATH (ST: its stat), or NULL; the
 * caller owns it (out of the pool) until store_ixpool_give. */
sqlite3 *store_ixpool_take(const char *path, const struct stat *st);
/* Keeps DB (idle: no transaction, no statement) for the next
 * store_ixpool_take of PATH, on any thread, or closes it. */
void store_ixpool_give(sqlite3 *db, const char *path, const struct stat *st);

/* Runs SQL without results; 0 or -1 (logged). */
int store_ix_exec(sqlite3 *db, const char *sql);
/* Steps ST once: 0 a row, 1 no row (done), -1 error. */
int store_ix_step(sqlite3_stmt *st);
/* 1 when SQL (one text parameter, ARG) returns a row, 0 not, -1 error. */
int store_ix_exists(sqlite3 *db, const char *sql, const char *arg);
/* pack_state.active: the pack deliveries append to (0: none yet), or -1. */
int64_t store_pack_active(sqlite3 *db);
/* IMAP (RFC 3501 5.1): "INBOX" for any case of INBOX, NAME otherwise. */
const char *store_mailbox_canonical(const char *name);
/* The id of mailbox NAME (INBOX case-insensitive). 0 found, 1 none, -1 error. */
int store_ix_mailbox(sqlite3 *db, const char *name, int64_t *id_r);

/* A fresh UIDVALIDITY (time-based, strictly above any the account used;
 * remembered). Inside a write transaction. 0 on error. */
int64_t store_ix_next_uidvalidity(sqlite3 *db);
/* Inserts mailbox NAME (selectable, empty) with a fresh UIDVALIDITY. */
int store_ix_mailbox_create(sqlite3 *db, const char *name, const char *special_use,
                            int64_t *id_r);

/* The state of a selectable mailbox (not \Noselect). */
struct store_mbstate {
    int64_t id, uidvalidity, uidnext, highestmodseq;
    char special_use[16];
};
/* 0 found, 1 no such selectable mailbox, -1 error. */
int store_ix_mbstate(sqlite3 *db, const char *name, struct store_mbstate *m);
/* Stores M's uidnext and highestmodseq. 0 or -1. */
int store_ix_mbstate_save(sqlite3 *db, const struct store_mbstate *m);

/* ---- store.c ---- */

/* A unique message file name (no directory). */
void store_file_name(char *out, size_t outsz);
/* Writes msg/tmp/NAME, fsyncs it, renames it to msg/NAME, fsyncs msg/. */
int store_file_write(struct store_ix *s, const char *name, const char *data, size_t len,
                     const char **error_r);

/* Unlinks the files (relative to the account root) after a COMMIT, then
 * fsyncs msg/; best effort (a file left behind is an orphan). */
void store_files_unlink(const struct store_ix *s, char *const *files, size_t n);

/* ---- store_pack.c ---- */

/* A pack grows to about this size before deliveries start the next one. */
#define STORE_PACK_MAX (16u * 1024 * 1024)

/* The active pack, open for one delivery transaction. */
struct store_pack {
    int fd;
    uint64_t seq;
    char name[32];      /* "msg/pack/<16 hex digits>", relative to the root */
    uint64_t end;       /* where the next append goes (the file's size) */
    int created;        /* the file is new: store_pack_sync fsyncs msg/pack/ */
    char *retired;      /* the pack rotated away from, when no row uses it */
};
/* Inside a write transaction: opens the active pack (creating the first
 * one), rotating to the next when ADDING bytes would take it past
 * STORE_PACK_MAX (pack_state is updated in the transaction). 0 or -1. */
int store_pack_begin(struct store_ix *ix, uint64_t adding, struct store_pack *p,
                     const char **error_r);
/* Appends IOV (consumed: bases and lengths change) at p->end. 0 or -1. */
int store_pack_append(struct store_pack *p, struct iovec *iov, int n, const char **error_r);
/* fdatasync, and msg/pack/ fsync'd when the pack is new: before COMMIT. */
int store_pack_sync(const struct store_ix *ix, struct store_pack *p, const char **error_r);
/* Closes P; after a COMMIT (COMMITTED), unlinks the retired pack. */
void store_pack_end(const struct store_ix *ix, struct store_pack *p, int committed);
/* Inside the write transaction that deleted rows: leaves in FILES (their
 * `file` columns; sorted, *N_R updated, the others freed) the whole files
 * and the packs that no row names any more and that are not active: what
 * to unlink after the COMMIT. 0 or -1 (FILES then still valid). */
int store_pack_filter(sqlite3 *db, char **files, size_t *n_r);
/* 1 when FILE (relative to the root) names a pack. */
int store_pack_is(const char *file);
/* The name of pack SEQ relative to the account's root ("msg/pack/<16 hex>"). */
void store_pack_name(char *out, size_t outsz, uint64_t seq);
/* 1 when some message row names FILE, 0 not, -1 error. */
int store_pack_referenced(sqlite3 *db, const char *file);
/* Tests: rotate past BYTES instead (0: back to STORE_PACK_MAX). */
void store_pack_limit_set(uint64_t bytes);

/* ---- store_pop.c ---- */

/* 1 when a POP3 session holds the maildrop lock of the account at ROOT, 0
 * not (or no lock file: no session ever). The lock is taken and dropped at
 * once; a login meeting it meanwhile waits (store_pop_open retries). */
int store_pop_locked(const char *root);

/* ---- store_compact.c ---- */

/* Tests: with ON, every compaction transaction that copied bytes rolls back
 * after the copy and its fdatasync instead of committing (a crash there). */
void store_compact_abort_set(int on);

/* ---- store_compact_due.c ---- */

/* Records the account of index DB as due for the periodic compaction pass
 * (when enabled; no I/O). */
void store_compact_note(sqlite3 *db);

/* ---- store_cache.c ---- */

/* What the index caches of a message (the messages columns envelope,
 * bodystructure and header): the IMAP ENVELOPE and extended BODYSTRUCTURE
 * (NULL when they cannot be computed: FETCH then parses the message and
 * stores them with store_cache_structure), and the raw header block of the
 * message with its blank line, for SEARCH on header fields (NULL when it is
 * larger than STORE_MAX_CACHED_HEADER: SEARCH then reads the file). */
struct store_cached {
    char *envelope, *bodystructure;
    char *header;
    size_t header_len;
};
#define STORE_MAX_CACHED_HEADER (64u * 1024)
/* Computes C from the message DATA (every member malloc'd or NULL). */
void store_structure_compute(const char *data, size_t len, struct store_cached *c);
void store_cached_free(struct store_cached *c);

/* ---- store_flags.c ---- */

/* The flags column for SYSFLAGS and KEYWORDS (may be NULL): system flags
 * first in canonical case, then the keywords (deduplicated,
 * case-insensitively). malloc'd. */
char *store_flags_join(unsigned sysflags, const char *keywords);
/* 1 when KEYWORDS (NULL or space-separated) are all valid flag-keywords. */
int store_keywords_valid(const char *keywords);

/* ---- store_usage.c ---- */
struct store_usage;
/* The account's usage row. 0 or -1. */
int store_usage_read(sqlite3 *db, struct store_usage *u);
/* 1 when usage + ADDING would pass QUOTA_BYTES (0: no limit), 0 not, -1. */
int store_usage_over(sqlite3 *db, uint64_t quota_bytes, uint64_t adding);

/* ---- store_change.c ---- */

/* 1 when the space-separated FLAGS contain FLAG (case-insensitive). */
int store_flags_have(const char *flags, const char *flag);

#endif
