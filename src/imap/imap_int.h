/* imap_int: the IMAP session object and the internal API shared by the
 * files of src/imap/ only: session I/O and the command loop
 * (imap_session.c), worker round trips (imap_job.c), the selected mailbox's
 * view and the sync step (imap_view.c, imap_sync.c), the dispatch table
 * (imap_dispatch.c) and one file per group of commands.
 *
 * ---- The life of a command ----
 * The session frames one command at a time with the reader (imap_parse.h),
 * parses it into s->cmd and calls its handler from the table
 * (imap_dispatch.c) if the state allows it. While a command runs, nothing
 * more is read: pipelined commands wait in the input buffer and run in
 * order, one at a time. A handler ends its command with exactly one of
 *   imap_ok(s, "...")   "<tag> OK ..."   after the sync step
 *   imap_no(s, "...")   "<tag> NO ..."   after the sync step
 *   imap_bad(s, "...")  "<tag> BAD ..."  at once; counts a bad command
 * either directly or later, from a job's continuation (imap_job_run) or
 * from its s->more callback. Texts may start with a response code
 * ("[TRYCREATE] No such mailbox"). After that the command is freed and the
 * next one is read.
 *
 * ---- The sync step (multi-device sync) ----
 * The session keeps the view of the selected mailbox that it has told the
 * client about (s->sel->view: msgs[seq - 1], UID order). The store calls
 * notify_mailbox_changed(account) after every committed change; the
 * notifier runs imap_notify_changed on each loop, which sets s->dirty on
 * the account's sessions with a selected mailbox (and wakes IDLE). Before
 * the tagged OK/NO of every command, and at once during IDLE, a dirty
 * session runs store_changes_since(view.highestmodseq) on a worker and
 * turns the result into untagged responses, in this order:
 *   EXPUNGE n (VANISHED uids with QRESYNC) for UIDs of the view that are
 *     gone -- held back while the command is one flagged
 *     IMAP_CF_NO_EXPUNGE (FETCH, STORE, SEARCH, COPY by sequence number:
 *     RFC 3501 7.4.1, RFC 9051 7.5.1) and sent after the next command that
 *     allows them; held-back messages stay in the view meanwhile, so that
 *     sequence numbers never move under the client;
 *   EXISTS n when new UIDs arrived (appended to the view);
 *   FETCH n (FLAGS (...) [MODSEQ (m)] [UID u]) for flag changes that the
 *     view does not show yet. A session's own STORE updates its view
 *     (imap_view_set_flags) as it replies, so its own changes compare equal
 *     and are not announced twice.
 * Commands that change the selected mailbox themselves (STORE, EXPUNGE,
 * MOVE, APPEND, COPY into it) set s->dirty so that the step runs even before
 * the notification arrives.
 *
 * ---- How a message command (FETCH, STORE, SEARCH, COPY/MOVE) works ----
 * 1. Resolve the sequence set against the view on the loop:
 *      struct imap_seqset set;  imap_seqset_parse(arg, &set)
 *      imap_msgset_resolve(s, &set, c->uid, &ms, &err)
 *    gives the messages as parallel seq[]/uid[] arrays, ascending. With
 *    c->uid the set holds UIDs ('*' = highest UID of the view; UIDs that
 *    are not in the view are skipped); otherwise sequence numbers ('*' =
 *    the count; a number above the count is an error: imap_bad(s, err)).
 *    "$" (RFC 5182) resolves to s->sel->saved.
 * 2. Copy what the worker needs (UIDs, seqs, the parsed spec, options from
 *    imap_fetch_opts_init) into your own context, hang it on a job
 *    (imap_job_new: j->account and j->mailbox are already the session's;
 *    j->ctx / j->ctx_free) and imap_job_run(j, work, done). The work
 *    function runs on a worker thread and must not touch the session or the
 *    view; it builds untagged responses into j->out.
 * 3. Output in bounded batches: a work function stops adding messages once
 *    j->out holds IMAP_OUTPUT_BATCH bytes (one message's response may go
 *    over it, up to IMAP_JOB_OUTPUT_MAX) and records where it stopped in
 *    its context. job_done writes j->out to the client before calling
 *    DONE. If work remains, DONE sets s->more = your continuation: the
 *    session calls it once the connection's output has drained below
 *    IMAP_OUTPUT_LOW_WATER (conn.h high-water: a client that does not read
 *    keeps at most one batch in memory), and the continuation runs the next
 *    job. A big BODY[] may be cut into several jobs the same way (the
 *    literal's announcement first, then its octets).
 * 4. STORE: apply results to the view with imap_view_set_flags (so the
 *    sync step does not repeat them) and reply FETCH unless .SILENT;
 *    MOVE: after the COPYUID untagged OK, imap_view_expunged(s, uids, n)
 *    writes EXPUNGE or VANISHED and removes them from the view.
 * 5. Finish with imap_ok(s, "FETCH completed") (or imap_no / imap_bad):
 *    imap_ok runs the sync step (held-back EXPUNGEs stay held back for
 *    IMAP_CF_NO_EXPUNGE commands), then writes the tagged line.
 * A session whose connection closes while a job is in flight lives until
 * the job comes back; the job's DONE is then skipped and its CLEANUP (if
 * any) runs instead; s->cmd_ctx_free frees a command's context when the
 * session ends in the middle of a multi-round command. */
#ifndef ROOST_IMAP_INT_H
#define ROOST_IMAP_INT_H

#include "auth/directory.h"
#include "auth/sasl_server.h"
#include "core/buf.h"
#include "core/config.h"
#include "imap/imap_fetch.h"
#include "imap/imap_parse.h"
#include "imap/imap_server.h"
#include "store/store_imap.h"

#include <gsasl.h>
#include <stdint.h>
#include <sys/types.h>

struct conn;
struct loop;
struct evbuffer;
struct imap_zstream;

/* ---- limits (with their source) ---- */
/* Output: continue a multi-round command below this much unsent output. */
#define IMAP_OUTPUT_LOW_WATER (64 * 1024)
/* A job stops adding responses to j->out past this (a batch). */
#define IMAP_OUTPUT_BATCH (256 * 1024)
/* Hard bound of j->out: one message's whole FETCH response fits. */
#define IMAP_JOB_OUTPUT_MAX ((size_t)2 * IMAP_DEFAULT_APPEND_LIMIT + 1024 * 1024)
/* Mailbox names (store_mailbox.name, imap_mailbox_name_check). */
#define IMAP_MAILBOX_MAX 1023
/* Commands that change nothing and fetch nothing (NOOP, CAPABILITY floods)
 * within one second, with no other command between them, before "* BYE":
 * the "commands per second without progress" bound. A client polling with
 * NOOP every few seconds for days never comes near it. */
#define IMAP_MAX_NOPROGRESS_PER_SECOND 200
/* Before login: bad commands and commands in all (tighter, as pre-auth
 * code should be: STYLE.md A). */
#define IMAP_MAX_PREAUTH_COMMANDS 50
/* AUTHENTICATE responses (base64 line; RFC 4954 uses 12288 for SMTP). */
#define IMAP_MAX_AUTH_LINE 12288
#define IMAP_MAX_MECH 20
/* RFC 2971 3.3: ID fields. */
#define IMAP_MAX_ID_FIELDS 30
/* "DONE" and AUTHENTICATE lines: longer is refused. */
#define IMAP_MAX_RAW_LINE (IMAP_MAX_AUTH_LINE + 2)

/* ---- states (RFC 9051 3) ---- */
enum imap_state {
    IMAP_ST_TLS_HANDSHAKE,  /* imaps: the greeting waits for the handshake */
    IMAP_ST_NOT_AUTH,       /* 3.1 */
    IMAP_ST_AUTH,           /* 3.2 */
    IMAP_ST_SELECTED,       /* 3.3 */
    IMAP_ST_LOGOUT,         /* 3.4: closing */
};
const char *imap_state_name(enum imap_state st);

/* What the input holds apart from tagged commands. */
enum imap_input_mode {
    IMAP_IN_COMMAND,    /* tagged commands, through the reader */
    IMAP_IN_SASL,       /* AUTHENTICATE: one base64 line (or "*") per step */
    IMAP_IN_IDLE,       /* IDLE: "DONE" */
    IMAP_IN_STARTTLS,   /* upgrading: nothing is read */
};

/* ENABLEd extensions (RFC 5161) and implied ones. */
enum imap_enabled {
    IMAP_EN_CONDSTORE = 1 << 0,   /* RFC 7162 3.1: also by any CONDSTORE-enabling command */
    IMAP_EN_QRESYNC = 1 << 1,     /* implies CONDSTORE */
    IMAP_EN_REV2 = 1 << 2,        /* RFC 9051 */
    IMAP_EN_UTF8 = 1 << 3,        /* RFC 6855 UTF8=ACCEPT: names and strings in UTF-8 */
};

/* ---- dispatch table flags ---- */
#define IMAP_CF_NOT_AUTH (1u << 0)      /* valid in "not authenticated" */
#define IMAP_CF_AUTH (1u << 1)          /* valid in "authenticated" */
#define IMAP_CF_SELECTED (1u << 2)      /* valid in "selected" */
#define IMAP_CF_ANY (IMAP_CF_NOT_AUTH | IMAP_CF_AUTH | IMAP_CF_SELECTED)
#define IMAP_CF_LOGGED_IN (IMAP_CF_AUTH | IMAP_CF_SELECTED)
#define IMAP_CF_UID_OK (1u << 3)        /* has a "UID ..." form */
/* No EXPUNGE/VANISHED while this runs nor in its sync step (non-UID FETCH,
 * STORE, SEARCH, COPY: RFC 3501 7.4.1, RFC 9051 7.5.1). Set by dispatch for
 * the sequence-number forms only. */
#define IMAP_CF_NO_EXPUNGE (1u << 4)
/* Does not count as progress (NOOP, CAPABILITY, ...). */
#define IMAP_CF_NOPROGRESS (1u << 5)

struct imap_session;
typedef void (*imap_cmd_fn)(struct imap_session *s, struct imap_command *c);

struct imap_cmd_def {
    const char *name;       /* upper case, as imap_command.name */
    unsigned flags;         /* IMAP_CF_* */
    imap_cmd_fn fn;
};
/* Looks NAME up in the table (NULL: unknown command). */
const struct imap_cmd_def *imap_cmd_find(const char *name);

/* ---- the selected mailbox ---- */
struct imap_selected {
    char name[IMAP_MAILBOX_MAX + 1];   /* UTF-8, as the store names it ("INBOX") */
    int readonly;                      /* EXAMINE, or SELECT of a read-only mailbox */
    struct store_view view;            /* what the client has been told */
    /* UIDs expunged in the store whose EXPUNGE could not be sent yet (see
     * the sync step); still in the view. Ascending. */
    uint32_t *held_expunges;
    uint32_t nheld;
    /* SEARCH ... RETURN (SAVE) (RFC 5182): the saved UIDs, ascending. */
    uint32_t *saved;
    uint32_t nsaved;
};

/* ---- the session ---- */
struct imap_session {
    struct imap_session *prev, *next;   /* the loop's sessions */
    struct imap_server *srv;
    struct loop *loop;
    struct listener_conf lc;
    struct conn *conn;
    char id[13];
    char peer[64];
    enum imap_state state;
    enum imap_input_mode mode;
    int busy;               /* jobs in flight */
    int gone;               /* connection closed while busy: freed by the last job */
    int closing;
    int bad_commands;
    unsigned noprogress;    /* IMAP_CF_NOPROGRESS commands in a row this second */
    time_t noprogress_second;   /* CLOCK_MONOTONIC second they were counted in */
    unsigned preauth_commands;
    struct imap_reader *reader;

    /* the command being run */
    int in_command;         /* s->cmd holds a command that has not ended */
    struct imap_command cmd;
    unsigned cmd_flags;     /* its table flags (IMAP_CF_NO_EXPUNGE added per form) */
    /* A multi-round command: called on the loop whenever no job is in flight
     * and the output is below IMAP_OUTPUT_LOW_WATER, until the command ends
     * (ending it clears these; CMD_CTX_FREE(CMD_CTX) runs then, or when the
     * session ends first). */
    void (*more)(struct imap_session *s);
    void *cmd_ctx;
    void (*cmd_ctx_free)(void *ctx);
    /* the tagged reply waiting for the sync step */
    char *pending_reply;

    /* login */
    Gsasl_session *sasl;
    char sasl_mech[IMAP_MAX_MECH + 1];
    struct sasl_creds creds;            /* captured by the SASL exchange; wiped */
    char account[320];                  /* "" before login */
    char app_name[128];                 /* app password used, "" if none */
    uint64_t quota_bytes;               /* 0: no limit */

    unsigned enabled;                   /* enum imap_enabled */
    int compressed;                     /* COMPRESS DEFLATE active */
    struct imap_zstream *z;             /* its streams (imap_compress.c) */
    struct imap_selected *sel;          /* non-NULL in IMAP_ST_SELECTED */
    int dirty;                          /* the account changed: run the sync step */
    int syncing;                        /* a sync job is in flight */
    char idle_tag[IMAP_MAX_TAG + 1];    /* IDLE's tag while idling */

    unsigned long commands;             /* for the disconnect log line */
    unsigned long long written;         /* octets written (log; timeout progress) */
    unsigned long long timeout_mark;    /* WRITTEN at the last timeout check */
    int skipping_raw_line;              /* discarding a refused raw line */
    int idle_done;                      /* IDLE: "DONE" seen, ending */
};

/* ---- imap_session.c: output ---- */
/* Writes P as is (responses built elsewhere, literals). */
void imap_write(struct imap_session *s, const void *p, size_t n);
/* "* <text>\r\n". */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "+ <text>\r\n" (continuation request). */
void imap_continuation(struct imap_session *s, const char *text);
/* Unsent output (for batching). */
size_t imap_output_len(struct imap_session *s);

/* ---- imap_session.c: ending a command (see the top of this file) ---- */
void imap_ok(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_no(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_bad(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* OK without the sync step (LOGOUT, STARTTLS, COMPRESS: nothing may come
 * between the tagged reply and what follows it). */
void imap_ok_nosync(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Counts a bad command; "* BYE Too many invalid commands" and close at
 * IMAP_MAX_BAD_COMMANDS. Returns 1 when the session is closing. */
int imap_count_bad(struct imap_session *s);

/* ---- imap_session.c: the session ---- */
void imap_set_state(struct imap_session *s, enum imap_state st);
/* Processes buffered input and pending work until a job is in flight, a
 * multi-round command waits for output room, input runs out or the
 * session closes. */
void imap_resume(struct imap_session *s);
/* "* BYE <text>" (if TEXT) and close after the output is flushed. */
void imap_close(struct imap_session *s, const char *bye_text);
int imap_is_tls(const struct imap_session *s);
int imap_shutting_down(const struct imap_server *srv);
void imap_job_begin(struct imap_session *s);
/* Ends a job: returns 0 if the session is still there and may continue. */
int imap_job_end(struct imap_session *s);
/* The reader again from scratch (after STARTTLS, after a refused literal). */
void imap_reader_reset(struct imap_session *s);
/* The APPEND literal limit once logged in (the config's message size). */
size_t imap_append_limit(const struct imap_session *s);
/* Sets the connection's idle timeout for the session's state. */
void imap_session_timeouts(struct imap_session *s);

/* ---- imap_job.c: worker round trips ---- */
struct imap_job {
    struct imap_session *s;
    void (*work)(struct imap_job *j);      /* worker thread: no session access */
    void (*done)(struct imap_job *j);      /* session's loop; j->out already written */
    void (*cleanup)(struct imap_job *j);   /* session's loop, when the session is gone */
    const char *data_dir;
    char account[320];                     /* the session's account */
    char mailbox[IMAP_MAILBOX_MAX + 1];    /* the selected mailbox, "" if none */
    void *ctx;                             /* the command's own data */
    void (*ctx_free)(void *ctx);           /* frees ctx with the job (NULL: not owned) */
    struct buf out;                        /* untagged responses built by work
                                            * (max IMAP_JOB_OUTPUT_MAX) */
    int result;
    const char *error;                     /* static or store-owned text */
};
struct imap_job *imap_job_new(struct imap_session *s);
void imap_job_run(struct imap_job *j, void (*work)(struct imap_job *),
                  void (*done)(struct imap_job *));

/* ---- imap_view.c: the selected mailbox's view ---- */
struct imap_msgset {
    uint32_t *seq;          /* ascending */
    uint32_t *uid;          /* uid[i]: the message at seq[i] */
    uint32_t n;
};
/* See "How a message command works" above. 0 ok; -1 with *error_r (a
 * BAD text) for a sequence number past the end or "$" never saved. */
int imap_msgset_resolve(struct imap_session *s, const struct imap_seqset *set, int uid,
                        struct imap_msgset *ms, const char **error_r);
void imap_msgset_free(struct imap_msgset *ms);
/* The view's message count and its message at SEQ (1-based; NULL past the
 * end). */
uint32_t imap_view_count(const struct imap_session *s);
const struct store_vmsg *imap_view_msg(const struct imap_session *s, uint32_t seq);
/* The sequence number of UID, 0 when not in the view. */
uint32_t imap_view_seq(const struct imap_session *s, uint32_t uid);
/* Records flags this session set itself (STORE results): the sync step
 * will not announce them again. */
void imap_view_set_flags(struct imap_session *s, uint32_t uid, unsigned sysflags,
                         const char *keywords, uint64_t modseq);
/* UIDS (ascending) were expunged by this session's own command (EXPUNGE,
 * MOVE, CLOSE): writes "* n EXPUNGE" for each (or one "* VANISHED uids"
 * with QRESYNC) and removes them from the view. */
void imap_view_expunged(struct imap_session *s, const uint32_t *uids, uint32_t n);
/* Options for imap_fetch_message from the session's ENABLEd state. */
void imap_fetch_opts_init(const struct imap_session *s, int uid_command,
                          struct imap_fetch_opts *o);
/* A CONDSTORE-enabling command (RFC 7162 3.1): turns CONDSTORE on and, the
 * first time with a mailbox selected, writes "* OK [HIGHESTMODSEQ n]". */
void imap_enable_condstore(struct imap_session *s);
void imap_selected_free(struct imap_selected **selp);

/* ---- imap_sync.c: the sync step ---- */
/* Runs the sync step if the session is dirty (or FORCE), then THEN(s) on
 * the loop (at once when there is nothing to do). Used by imap_ok/imap_no
 * and IDLE; commands call imap_ok/imap_no instead. */
void imap_sync(struct imap_session *s, int force, void (*then)(struct imap_session *s));
/* Writes the held-back EXPUNGEs if the current command allows them. */
void imap_sync_flush_held(struct imap_session *s);

/* ---- command handlers (the dispatch table, imap_dispatch.c) ---- */
/* imap_cmds.c: any state */
void imap_cmd_capability(struct imap_session *s, struct imap_command *c);
void imap_cmd_noop(struct imap_session *s, struct imap_command *c);
void imap_cmd_logout(struct imap_session *s, struct imap_command *c);
void imap_cmd_id(struct imap_session *s, struct imap_command *c);
void imap_cmd_enable(struct imap_session *s, struct imap_command *c);
void imap_cmd_namespace(struct imap_session *s, struct imap_command *c);
void imap_cmd_idle(struct imap_session *s, struct imap_command *c);
void imap_cmd_compress(struct imap_session *s, struct imap_command *c);
/* imap_compress.c: COMPRESS=DEFLATE. imap_input is the buffer commands are
 * read from (inflated input once compression is on); imap_compress_input
 * inflates new connection input into it (-1: corrupt stream). */
struct evbuffer *imap_input(struct imap_session *s);
int imap_compress_input(struct imap_session *s);
void imap_compress_write(struct imap_session *s, const void *p, size_t n);
void imap_compress_free(struct imap_session *s);
/* imap_cmds.c: a raw line while idling (NULL: an overlong one), and the
 * sync step while idling (untagged responses at once). */
void imap_idle_line(struct imap_session *s, const char *line, size_t len);
void imap_idle_sync(struct imap_session *s);
/* Writes the CAPABILITY list for the current state (no "* ", no CRLF). */
void imap_capability_string(struct imap_session *s, struct buf *out);
/* imap_auth.c: not authenticated */
void imap_cmd_starttls(struct imap_session *s, struct imap_command *c);
void imap_cmd_login(struct imap_session *s, struct imap_command *c);
void imap_cmd_authenticate(struct imap_session *s, struct imap_command *c);
void imap_sasl_line(struct imap_session *s, const char *line, size_t len);
void imap_sasl_abort(struct imap_session *s);
/* imap_select.c */
void imap_cmd_select(struct imap_session *s, struct imap_command *c);   /* and EXAMINE */
void imap_cmd_close(struct imap_session *s, struct imap_command *c);
void imap_cmd_unselect(struct imap_session *s, struct imap_command *c);
void imap_cmd_expunge(struct imap_session *s, struct imap_command *c);  /* and UID EXPUNGE */
void imap_cmd_check(struct imap_session *s, struct imap_command *c);
/* imap_mailbox.c */
void imap_cmd_create(struct imap_session *s, struct imap_command *c);
void imap_cmd_delete(struct imap_session *s, struct imap_command *c);
void imap_cmd_rename(struct imap_session *s, struct imap_command *c);
void imap_cmd_subscribe(struct imap_session *s, struct imap_command *c); /* and UNSUBSCRIBE */
void imap_cmd_status(struct imap_session *s, struct imap_command *c);
void imap_cmd_getquota(struct imap_session *s, struct imap_command *c); /* and GETQUOTAROOT */
/* STATUS data items (RFC 9051 6.3.11, RFC 7162, RFC 8438 SIZE): parses the
 * item list into *ITEMS (0 ok, -1 bad) and writes "* STATUS name (...)". */
enum imap_status_item {
    IMAP_SI_MESSAGES = 1 << 0, IMAP_SI_RECENT = 1 << 1, IMAP_SI_UIDNEXT = 1 << 2,
    IMAP_SI_UIDVALIDITY = 1 << 3, IMAP_SI_UNSEEN = 1 << 4, IMAP_SI_DELETED = 1 << 5,
    IMAP_SI_SIZE = 1 << 6, IMAP_SI_HIGHESTMODSEQ = 1 << 7, IMAP_SI_APPENDLIMIT = 1 << 8,
};
int imap_status_items(const struct imap_arg *list, unsigned *items);
/* The account's quota now (worker thread: the directory, so that a change
 * by the administrator applies at once); FALLBACK when it cannot be read. */
uint64_t imap_account_quota(const struct imap_job *j, uint64_t fallback);
void imap_status_write(struct imap_session *s, const char *name, unsigned items,
                       const struct store_status *st);
/* imap_list.c */
void imap_cmd_list(struct imap_session *s, struct imap_command *c);     /* and LSUB */
/* imap_append.c */
void imap_cmd_append(struct imap_session *s, struct imap_command *c);
/* The message commands (helper "fetch": imap_fetch_cmd.c, imap_store_cmd.c,
 * imap_search_cmd.c, imap_copy_cmd.c). c->uid is set for the UID forms;
 * imap_cmd_copy serves COPY and MOVE (c->name says which). */
void imap_cmd_fetch(struct imap_session *s, struct imap_command *c);
void imap_cmd_store(struct imap_session *s, struct imap_command *c);
void imap_cmd_search(struct imap_session *s, struct imap_command *c);
void imap_cmd_copy(struct imap_session *s, struct imap_command *c);
/* A flag list as system flag bits and keywords joined with spaces (*KW
 * malloc'd, NULL when none); imap_store_cmd.c, used by APPEND too. */
void imap_flags_split(const struct imap_flag_list *fl, unsigned *sys, char **kw);

/* ---- helpers for handlers (imap_util.c) ---- */
/* The mailbox argument as the store names it: decoded from modified UTF-7
 * (unless UTF8=ACCEPT), "INBOX" in any case normalised, checked with
 * imap_mailbox_name_check. Returns 0 and the name in OUT (IMAP_MAILBOX_MAX
 * + 1), or -1 after answering (BAD for syntax, "NO [CANNOT] ..." for a
 * refused name). */
int imap_arg_mailbox(struct imap_session *s, const struct imap_arg *a, char *out);
/* Appends mailbox NAME (UTF-8) as the client should see it: modified UTF-7
 * unless UTF8=ACCEPT, quoted. */
int imap_mailbox_quote(const struct imap_session *s, const char *name, struct buf *out);
/* 1 when A is an atom equal (case-insensitively) to WORD. */
int imap_arg_is(const struct imap_arg *a, const char *word);

#endif
