/* smtp_int: the SMTP server session and transaction objects, shared by the
 * files of src/smtp/ only (session I/O, command handlers, async jobs,
 * message finishing). */
#ifndef ROOST_SMTP_INT_H
#define ROOST_SMTP_INT_H

#include "core/buf.h"
#include "core/config.h"
#include "core/limits.h"
#include "queue/spool.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_server.h"

#include "auth/directory.h"
#include "auth/sasl_server.h"

#include <gsasl.h>
#include <stdint.h>

struct conn;
struct directory;
struct loop;

enum smtp_state {
    SS_TLS_HANDSHAKE, /* implicit TLS: greeting after the handshake */
    SS_CMD,           /* reading commands */
    SS_AUTH,          /* reading SASL responses */
    SS_DATA,          /* reading DATA content */
    SS_BDAT,          /* reading a BDAT chunk */
    SS_DISCARD,       /* skipping a refused BDAT chunk */
    SS_STARTTLS,      /* 220 sent, upgrading */
    SS_QUIT           /* closing */
};

/* One mail transaction (MAIL .. end of data). RSET frees one thing. */
struct smtp_tx {
    char queue_id[SPOOL_ID_LEN + 1];
    char from[SMTP_MAX_PATH + 1];
    struct smtp_mail_params params;
    int nrcpt;
    struct spool_rcpt *rcpts;       /* max_recipients entries */
    uint64_t *rooms;                /* per recipient: its mailbox's room at RCPT */
    struct dir_usage usage;         /* authenticated: the sender's daily usage, */
    int usage_known;                /* read with the last accepted RCPT */
    struct buf data;                /* our Received: + content */
    size_t header_len;              /* length of our own fields in front
                                       (Received:, then DKIM-Signature:) */
    struct smtp_data_reader rd;
    int bdat_started;
    unsigned long long bdat_left;
    int bdat_last;
    int bdat_bare_state, bdat_bare, bdat_oversize;
    size_t bdat_size;
};

struct smtp_session {
    struct smtp_session *prev, *next;
    struct smtp_server *srv;
    struct loop *loop;
    struct listener_conf lc;
    uint64_t data_end_us;     /* end of DATA/BDAT LAST, for the accept latency */
    struct conn *conn;
    char id[13];
    char peer[64];
    enum smtp_state state;
    int busy;            /* async jobs in flight */
    int gone;            /* connection closed while busy: free when idle */
    int helo_seen, esmtp;
    char helo[256];
    int authenticated;
    char account[320];
    char app_name[128];
    Gsasl_session *sasl;
    char sasl_mech[21];
    struct sasl_creds creds;      /* captured by the SASL exchange; wiped */
    int bad_commands;
    int noprogress;
    int skipping_long_line;
    unsigned long long discard_left;
    unsigned long messages;
    struct smtp_tx *tx;
    struct event *session_timer;
    int closing;
};

/* session.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void smtp_close(struct smtp_session *s);
void smtp_job_begin(struct smtp_session *s);
/* Ends a job: returns 0 if the session is still there and may continue. */
int smtp_job_end(struct smtp_session *s);
void smtp_resume(struct smtp_session *s);
/* Skips the next N input bytes (a refused BDAT chunk). */
void smtp_discard(struct smtp_session *s, unsigned long long n);
void smtp_count_bad(struct smtp_session *s);
void smtp_tx_free(struct smtp_tx **txp);
void smtp_tx_reset(struct smtp_session *s);
int smtp_is_submission(const struct smtp_session *s);
int smtp_is_tls(const struct smtp_session *s);

/* cmds.c */
void smtp_dispatch(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_response(struct smtp_session *s, const char *line, size_t len);

/* message.c: end of DATA / BDAT LAST */
void smtp_message_complete(struct smtp_session *s, int oversize, int bare);
/* DATA/BDAT start: daily-limit check then CONT runs (on the loop). */
void smtp_check_daily_limit(struct smtp_session *s, void (*cont)(struct smtp_session *s));
/* quota.c: the bytes ACCOUNT's mailbox may still take before its quota (0:
 * at or over it; UINT64_MAX: no quota, or the usage could not be read,
 * which never blocks mail). 0, or -1 on a directory error (*room_r is then
 * UINT64_MAX). Worker threads only. */
struct directory;
int smtp_quota_room(struct directory *d, const char *data_dir, const char *account,
                    uint64_t *room_r);
/* End of DATA/BDAT, on the loop: refuses the transaction with 552 5.2.2
 * when the message is larger than the room a local recipient's mailbox had
 * at RCPT (tx->rooms), else CONT runs. */
void smtp_check_quota(struct smtp_session *s, void (*cont)(struct smtp_session *s));
/* Builds our Received: field into tx->data. */
void smtp_add_received(struct smtp_session *s);

/* dkim.c: worker thread. DKIM-signs TX's message for the domain of its
 * From: (else of its envelope sender) when that domain is served here and
 * has a key, putting DKIM-Signature: in front of tx->data. Never fails the
 * message: without a key or on an error it stays unsigned (logged). */
void smtp_dkim_sign(struct directory *d, const char *data_dir, struct smtp_tx *tx);

#endif
