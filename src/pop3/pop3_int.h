/* pop3_int: the POP3 session object and the internal API shared by the
 * files of src/pop3/ only: session I/O (pop3_session.c), command handlers
 * (pop3_cmds.c), worker round trips and the maildrop jobs (pop3_job.c) and
 * RETR/TOP streaming (pop3_retr.c). */
#ifndef ROOST_POP3_INT_H
#define ROOST_POP3_INT_H

#include "auth/directory.h"
#include "core/config.h"
#include "pop3/pop3_parse.h"
#include "pop3/pop3_server.h"

#include "auth/sasl_server.h"

#include <gsasl.h>
#include <stdint.h>
#include <sys/types.h>

struct conn;
struct loop;
struct store_pop;

enum pop3_state {
    P3_TLS_HANDSHAKE, /* implicit TLS: greeting after the handshake */
    P3_AUTHORIZATION, /* RFC 1939 4 */
    P3_SASL,          /* reading AUTH responses */
    P3_STLS,          /* "+OK Begin TLS negotiation" sent, upgrading */
    P3_TRANSACTION,   /* RFC 1939 5: the maildrop is locked */
    P3_UPDATE,        /* RFC 1939 6: QUIT is applying the changes */
    P3_CLOSED         /* closing */
};
const char *pop3_state_name(enum pop3_state st);

/* A RETR or TOP being streamed. While a chunk job is in flight the job owns
 * it; otherwise the session does. */
struct pop3_retr {
    int msgno;              /* 1-based */
    int is_top;
    int fd;                 /* -1 until the first job opened the file */
    char path[4096];
    int64_t offset;         /* in the pack PATH, or STORE_WHOLE_FILE */
    size_t left;            /* bytes still to read (a pack: SIZE from OFFSET) */
    size_t size;            /* for "+OK N octets" */
    int started;            /* "+OK" written */
    int eof;                /* the terminator is in OUT */
    int error;              /* errno of a failed open/read, 0 if none */
    struct pop3_stuffer st;
    char *in;               /* POP3_RETR_CHUNK bytes (the session's retr_in) */
    char *out;              /* POP3_RETR_OUT_SIZE bytes (the session's retr_out) */
    size_t outlen;
};

/* The status line of a RETR/TOP served from the cache ("+OK N octets"). */
#define POP3_RETR_HEAD_MAX 48
/* Room for a stuffed chunk (twice its size at worst), the terminator and,
 * on the cached path, the status line before them. */
#define POP3_RETR_OUT_SIZE (POP3_RETR_HEAD_MAX + 2 * POP3_RETR_CHUNK + POP3_STUFFER_FINISH_MAX)

struct pop3_session {
    struct pop3_session *prev, *next;
    struct pop3_server *srv;
    struct loop *loop;
    struct listener_conf lc;
    struct conn *conn;
    char id[13];
    char peer[64];
    enum pop3_state state;
    int busy;               /* jobs in flight */
    int gone;               /* connection closed while busy: free when idle */
    int closing;
    int bad_commands;
    int skipping_long_line;
    /* AUTHORIZATION */
    char user[POP3_MAX_USER + 1];   /* USER given, "" if none */
    Gsasl_session *sasl;
    char sasl_mech[POP3_MAX_MECH + 1];
    struct sasl_creds creds;        /* captured by the SASL exchange; wiped */
    /* TRANSACTION */
    char account[320];
    char app_name[128];
    enum dir_pop_after pop_after;
    struct store_pop *pop;          /* the locked maildrop snapshot */
    int count;                      /* messages in the snapshot */
    unsigned char *deleted;         /* per message: DELE'd */
    unsigned char *retrieved;       /* per message: RETR fully sent */
    struct pop3_retr *retr;         /* RETR/TOP in progress */
    char *retr_in, *retr_out;       /* its buffers, kept for the next RETR */
    unsigned long long stream_mark; /* bytes streamed at the last idle check */
    unsigned long long streamed;
    unsigned long retrs;
};

/* session.c */
void pop3_reply(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_write(struct pop3_session *s, const void *p, size_t n);
void pop3_close(struct pop3_session *s);
void pop3_count_bad(struct pop3_session *s);
void pop3_set_state(struct pop3_session *s, enum pop3_state st);
void pop3_resume(struct pop3_session *s);
int pop3_is_tls(const struct pop3_session *s);
int pop3_shutting_down(const struct pop3_server *srv);
void pop3_job_begin(struct pop3_session *s);
/* Ends a job: returns 0 if the session is still there and may continue. */
int pop3_job_end(struct pop3_session *s);

/* cmds.c */
void pop3_dispatch(struct pop3_session *s, const char *line, size_t len);
void pop3_sasl_response(struct pop3_session *s, const char *line, size_t len);
void pop3_sasl_abort(struct pop3_session *s);
/* Drops the message snapshot and releases the maildrop lock without
 * applying anything: on a worker, or at once (blocking) when NOW is set
 * (only after the loops stopped). */
void pop3_drop_maildrop(struct pop3_session *s, int now);

/* retr.c */
/* Starts streaming message MSGNO (1-based, valid, not deleted). */
void pop3_retr_start(struct pop3_session *s, int msgno, int is_top, unsigned long lines);
/* Continues a stream if the output has room. */
void pop3_retr_continue(struct pop3_session *s);
void pop3_retr_free(struct pop3_retr **rp);

#endif
