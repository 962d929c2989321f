/* rcptstate: the per-recipient delivery state of one queued message, kept
 * in DATA/queue/<id>.state next to the immutable queue file.
 *
 * The file is a log of records, each appended (and fsync'd) as one line:
 *   "\n" TYPE " " key=value ... " z=" CRC-32 (8 hex digits of what precedes) "\n"
 * Values are percent-encoded (every byte outside '!'..'~', and '%', '=').
 * The leading newline ends any torn previous line, so a torn record (a crash
 * in the middle of an append) fails its CRC and is ignored on its own; the
 * records after it still count.
 *
 * Records (t = wall-clock milliseconds):
 *   A t i=IDX o=d|r|f c=CODE e=ENH h=HOST m=REPLY n=NEXT g=1
 *                  one attempt of recipient IDX: delivered, deferred (retry at
 *                  NEXT) or failed (g=1: given up when the message expired)
 *   W t            the "delayed" DSN was sent
 *   H t / U t      hold / release the whole message (release: pending now due)
 *   Y t            retry requested: every pending recipient due at t
 *   B t            bounce requested: the server fails what is pending, with a DSN
 *   X t            delete requested: the server removes the message, no DSN
 *
 * Replaying the records in order gives struct rs_msg. A message that never
 * needed one (local recipients delivered at the first try) has no file. */
#ifndef ROOST_RCPTSTATE_H
#define ROOST_RCPTSTATE_H

#include <stddef.h>
#include <stdint.h>

/* Attempts kept per recipient for `queue show` (the oldest drop out). */
#define RS_MAX_HISTORY 32
/* A state file read back is at most 16 MiB plus 64 KiB per recipient. */
#define RS_MAX_FILE (16u * 1024 * 1024)
#define RS_MAX_FILE_PER_RCPT (64u * 1024)

enum rs_state { RS_PENDING, RS_DELIVERED, RS_FAILED };

struct rs_attempt {
    int64_t t_ms;
    char outcome;          /* 'd', 'r', 'f' */
    int code;
    char enhanced[16];
    char *host;            /* NULL when none */
    char *reply;           /* NULL when none */
};

struct rs_rcpt {
    enum rs_state state;
    int attempts;
    int64_t next_ms;       /* 0: due now */
    int gave_up;
    struct rs_attempt last;          /* zeroed before the first attempt */
    int nhist;
    struct rs_attempt hist[RS_MAX_HISTORY];
};

struct rs_msg {
    int nrcpt;
    struct rs_rcpt *r;
    int held;
    int warned;
    int bounce_req;
    int delete_req;
    int64_t held_ms;       /* when held (for list/show) */
    int torn;              /* records ignored: bad CRC or shape */
};

/* One record to append. */
struct rs_record {
    char type;             /* 'A', 'W', 'H', 'U', 'Y', 'B', 'X' */
    int64_t t_ms;
    int idx;               /* 'A' */
    char outcome;          /* 'A' */
    int code;
    const char *enhanced, *host, *reply;
    int64_t next_ms;
    int gave_up;
};

int64_t rs_now_ms(void);

/* A fresh state for NRCPT recipients: all pending, due now. */
struct rs_msg *rs_new(int nrcpt);
void rs_free(struct rs_msg **sp);

/* Replays the bytes of a state file into S (pure; used by rs_load). */
void rs_replay(struct rs_msg *s, const char *data, size_t len);
/* Applies one record to S (what rs_replay does per line). */
void rs_apply(struct rs_msg *s, const struct rs_record *rec);

/* Encodes REC as one line (with its leading newline) into a malloc'd string. */
char *rs_encode(const struct rs_record *rec, size_t *len_r);

/* DATA/queue/<id>.state: load (a missing file gives a fresh state), append
 * records with one write and one fsync (the directory fsync'd too when the
 * file is new), remove (no fsync: a leftover is removed at start). QDIR is
 * DATA/queue. Loading returns -1 only on a read error. */
int rs_load(const char *qdir, const char *id, int nrcpt, struct rs_msg **s_r);
int rs_append(const char *qdir, const char *id, const struct rs_record *recs, int n);
void rs_remove(const char *qdir, const char *id);
/* Removes <id>.state files whose queue file is gone (at start). */
void rs_remove_orphans(const char *qdir);

const char *rs_state_name(enum rs_state st);

#endif
