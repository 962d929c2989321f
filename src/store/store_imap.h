/* store_imap: the mailbox store as IMAP sees it: mailbox management (create,
 * delete, rename, subscribe, list, status), the view a session keeps of a
 * selected mailbox and the changes since a MODSEQ (how every session learns
 * what the others did), flag changes with UNCHANGEDSINCE, expunge, copy and
 * move with UID maps (UIDPLUS), APPEND, and quota.
 *
 * Like the rest of the store: blocking, worker threads only; each call opens
 * the account's index and closes it. Every change commits one SQLite
 * transaction, bumps the mailbox's HIGHESTMODSEQ and gives each touched
 * message that MODSEQ, records expunged UIDs in `vanished`, and then calls
 * notify_mailbox_changed(account) (core/notify.h) so that sessions on every
 * loop look for changes. Mailbox names are UTF-8 with "/" as the hierarchy
 * delimiter; "INBOX" is case-insensitive. */
#ifndef ROOST_STORE_IMAP_H
#define ROOST_STORE_IMAP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/store_msgfile.h"

/* System flags as bits; keywords stay text. */
enum store_sysflag {
    STORE_F_SEEN = 1 << 0, STORE_F_ANSWERED = 1 << 1, STORE_F_FLAGGED = 1 << 2,
    STORE_F_DELETED = 1 << 3, STORE_F_DRAFT = 1 << 4,
};
/* Parses a space-separated flags text into bits and the keywords (the rest,
 * space-separated, written to KW of size KWSZ). */
unsigned store_flags_parse(const char *flags, char *kw, size_t kwsz);

/* ---- mailboxes ---- */
enum store_mbox_attr {
    STORE_MB_NOSELECT = 1 << 0, STORE_MB_HASCHILDREN = 1 << 1,
    STORE_MB_SUBSCRIBED = 1 << 2, STORE_MB_NONEXISTENT = 1 << 3,
};
struct store_mailbox {
    char name[1024];
    char special_use[16];   /* "\\Sent" ..., "" when none */
    unsigned attrs;         /* enum store_mbox_attr */
};
/* All mailboxes of ACCOUNT (creating the account's store with the default
 * mailboxes if it has none), plus subscribed names that do not exist
 * (\NonExistent), sorted by name with INBOX first. *list_r is malloc'd.
 * 0 ok, -1 error. */
int store_mailboxes(const char *data_dir, const char *account, struct store_mailbox **list_r,
                    int *n_r, const char **error_r);
/* Creates NAME and any missing parents (RFC 3501 6.3.3). SPECIAL_USE may be
 * NULL (RFC 6154 CREATE-SPECIAL-USE). 0 ok, 1 already exists, -1 error. */
int store_mailbox_create(const char *data_dir, const char *account, const char *name,
                         const char *special_use, const char **error_r);
/* Deletes NAME and its messages. INBOX cannot be deleted (2). A mailbox
 * with children keeps its name as \Noselect (RFC 3501 6.3.4). 0 ok, 1 no
 * such mailbox, 2 refused (*error_r says why), -1 error. */
int store_mailbox_delete(const char *data_dir, const char *account, const char *name,
                         const char **error_r);
/* Renames FROM (and its children) to TO; renaming INBOX moves its messages
 * to a new mailbox TO and leaves INBOX empty (RFC 3501 6.3.5). New
 * UIDVALIDITY for the renamed mailboxes. 0 ok, 1 no such FROM, 2 TO exists,
 * -1 error. */
int store_mailbox_rename(const char *data_dir, const char *account, const char *from,
                         const char *to, const char **error_r);
/* Subscribe/unsubscribe (names that do not exist may be subscribed). */
int store_mailbox_subscribe(const char *data_dir, const char *account, const char *name,
                            int subscribe, const char **error_r);

struct store_status {
    uint32_t messages, unseen, deleted, uidnext, uidvalidity;
    uint64_t highestmodseq;
    uint64_t size;                  /* sum of message sizes (STATUS SIZE) */
};
/* 0 ok, 1 no such (selectable) mailbox, -1 error. */
int store_mailbox_status_full(const char *data_dir, const char *account, const char *name,
                              struct store_status *st, const char **error_r);

/* ---- the view of a selected mailbox ---- */
struct store_vmsg {
    uint32_t uid;
    unsigned sysflags;              /* enum store_sysflag */
    char *keywords;                 /* NULL or space-separated */
    uint64_t modseq;
};
struct store_view {
    uint32_t uidvalidity, uidnext;
    uint64_t highestmodseq;
    struct store_vmsg *msgs;        /* UID order; index + 1 = sequence number */
    uint32_t count;
    char **keywords;                /* every keyword used in the mailbox (FLAGS) */
    int nkeywords;
    char special_use[16];
    struct store_vblock *shared;    /* non-NULL: msgs is shared, read-only */
};
/* Reads the whole view of NAME. 0 ok, 1 no such (selectable) mailbox. */
int store_view_open(const char *data_dir, const char *account, const char *name,
                    struct store_view *v, const char **error_r);
void store_view_free(struct store_view *v);
/* Makes V's messages its own before it changes them: a view can share its
 * message array with other sessions (a cached big mailbox) until then. */
void store_view_own(struct store_view *v);

/* Everything that changed in NAME after MODSEQ: messages added or whose
 * flags changed (modseq > MODSEQ, UID order) and UIDs expunged
 * (vanished.modseq > MODSEQ). The session merges this into its view: UIDs
 * above its highest known UID are new (EXISTS), vanished UIDs it knows are
 * EXPUNGEs, the rest FETCH FLAGS. 0 ok, 1 mailbox gone (deleted/renamed:
 * the session should BYE or drop the selection), -1 error. */
struct store_changes {
    uint64_t highestmodseq;
    uint32_t uidnext, uidvalidity;
    struct store_vmsg *changed;
    uint32_t nchanged;
    uint32_t *vanished;
    uint32_t nvanished;
};
int store_changes_since(const char *data_dir, const char *account, const char *name,
                        uint64_t modseq, struct store_changes *c, const char **error_r);
void store_changes_free(struct store_changes *c);

/* Per-message data for FETCH and SEARCH. */
struct store_fmsg {
    uint32_t uid;
    size_t size;
    time_t internaldate;
    uint64_t modseq;
    unsigned sysflags;
    char *keywords;                 /* NULL or space-separated */
    char *envelope;                 /* cached IMAP ENVELOPE, NULL if not cached */
    char *bodystructure;            /* cached extended BODYSTRUCTURE, or NULL */
    char *header;                   /* cached header block (HEADER_LEN bytes; NUL-terminated only in
                                     * store_fetch_rows copies), or NULL */
    size_t header_len;
    char *path;                     /* the message file (whole, or its pack) */
    int64_t offset;                 /* in the pack; STORE_WHOLE_FILE: a whole file */
};
/* The rows for UIDS (sorted ascending), in UID order; missing UIDs are left
 * out. *msgs_r is malloc'd; free with store_fmsgs_free. */
int store_fetch_rows(const char *data_dir, const char *account, const char *name,
                     const uint32_t *uids, uint32_t n, struct store_fmsg **msgs_r,
                     uint32_t *n_r, const char **error_r);
/* The cached columns a caller wants; the others are left NULL (not read). */
enum store_row_cols {
    STORE_COL_ENVELOPE = 1, STORE_COL_BODYSTRUCTURE = 2, STORE_COL_HEADER = 4,
    STORE_COL_ALL = 7,
};
/* One row lent to a store_scan_rows callback (valid during the call only)
 * with the index of its UID in the caller's array; nonzero stops the scan. */
typedef int store_row_fn(void *arg, const struct store_fmsg *row, uint32_t index);
/* The rows of UIDS (sorted ascending) handed to FN one by one, in UID order,
 * inside one read transaction, without copying them: for SEARCH. Missing
 * UIDs are skipped. 0 (also when FN stopped it), 1 no such mailbox, -1. */
int store_scan_rows(const char *data_dir, const char *account, const char *name,
                    const uint32_t *uids, uint32_t n, unsigned cols, store_row_fn *fn,
                    void *arg, const char **error_r);
/* store_fetch_rows with only the cached columns COLS (enum store_row_cols). */
int store_fetch_rows_cols(const char *data_dir, const char *account, const char *name,
                          const uint32_t *uids, uint32_t n, unsigned cols,
                          struct store_fmsg **msgs_r, uint32_t *n_r, const char **error_r);
void store_fmsgs_free(struct store_fmsg *msgs, uint32_t n);
/* Stores the ENVELOPE/BODYSTRUCTURE computed for a message whose row had
 * none (older messages): best effort, no MODSEQ change. */
int store_cache_structure(const char *data_dir, const char *account, const char *name,
                          uint32_t uid, const char *envelope, const char *bodystructure);

/* ---- changes ---- */
enum store_flag_op { STORE_FLAGS_REPLACE, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };
/* One result per UID that exists. */
struct store_flag_result {
    uint32_t uid;
    unsigned sysflags;
    char *keywords;
    uint64_t modseq;
    int modified;       /* UNCHANGEDSINCE failed: not changed (MODIFIED) */
    int changed;        /* flags actually changed */
};
/* Applies OP with SYSFLAGS and KEYWORDS (space-separated, may be NULL) to
 * UIDS. With HAS_UNCHANGEDSINCE, messages whose modseq > UNCHANGEDSINCE are
 * left alone and reported modified (RFC 7162 3.1.3). *res_r malloc'd.
 * 0 ok, 1 no such (selectable) mailbox, -1 error (bad keyword, more flags
 * than a message can hold: nothing changed). */
int store_set_flags(const char *data_dir, const char *account, const char *name,
                    const uint32_t *uids, uint32_t n, enum store_flag_op op, unsigned sysflags,
                    const char *keywords, int has_unchangedsince, uint64_t unchangedsince,
                    struct store_flag_result **res_r, uint32_t *nres_r, const char **error_r);
void store_flag_results_free(struct store_flag_result *r, uint32_t n);

/* Expunges the messages with \Deleted among UIDS (all of the mailbox when
 * UIDS is NULL: EXPUNGE; a set: UID EXPUNGE). *expunged_r (malloc'd) gets
 * the UIDs removed, ascending; *modseq_r the mailbox's HIGHESTMODSEQ after
 * it. 0 ok, 1 no such (selectable) mailbox, -1 error. */
int store_expunge_deleted(const char *data_dir, const char *account, const char *name,
                          const uint32_t *uids, uint32_t n, uint32_t **expunged_r,
                          uint32_t *nexp_r, uint64_t *modseq_r, const char **error_r);

/* COPY/MOVE (RFC 4315 COPYUID, RFC 6851): copies UIDS of FROM to TO (with
 * flags; MOVE also expunges them from FROM in the same transaction).
 * QUOTA_BYTES is the account's limit (0: none; a MOVE within the account
 * never exceeds it).
 * SRC_R/DST_R (malloc'd, same length) map source to new UIDs; *uidvalidity_r
 * is TO's. Over quota: 3 (IMAP "NO [OVERQUOTA]"). No such TO: 1
 * ("NO [TRYCREATE]"). No such FROM: -1. UIDs not in FROM are left out of
 * the maps. */
int store_copy(const char *data_dir, const char *account, const char *from, const char *to,
               const uint32_t *uids, uint32_t n, int move, uint64_t quota_bytes,
               uint32_t **src_r,
               uint32_t **dst_r, uint32_t *ncopied_r, uint32_t *uidvalidity_r,
               const char **error_r);

/* APPEND (RFC 3501 6.3.11, 4315 APPENDUID): stores DATA into NAME with the
 * flags and internal date (0: now), durably (file, directory, index
 * fsync'd), with ENVELOPE/BODYSTRUCTURE cached; refused when the account's
 * usage plus LEN would pass QUOTA_BYTES (0: no limit). 0 ok, 1 no such mailbox
 * ("NO [TRYCREATE]"), 3 over quota ("NO [OVERQUOTA]"), -1 error. */
int store_append(const char *data_dir, const char *account, const char *name,
                 const char *data, size_t len, unsigned sysflags, const char *keywords,
                 time_t internaldate, uint64_t quota_bytes, uint32_t *uid_r,
                 uint32_t *uidvalidity_r,
                 const char **error_r);

/* ---- quota (RFC 9208 STORAGE and MESSAGE of the account) ---- */
struct store_usage {
    uint64_t bytes;
    uint64_t messages;
};
/* The account's usage over all mailboxes (kept up to date in the index, not
 * summed per call). */
int store_usage_get(const char *data_dir, const char *account, struct store_usage *u,
                    const char **error_r);

#endif
