/* spool: the durable queue, DATA/queue/, one file per accepted message.
 *
 * File format (all integers little-endian):
 *   magic "ROOSTQ1\n", then records: type (1 byte), length (4 bytes), payload.
 *   'E' envelope fields (key=value lines: id, sender, arrived, client, helo,
 *       auth account, protocol), 'R' one recipient (address NUL account),
 *   'M' message content, 'Z' end: CRC-32 of everything before it.
 * A file without a valid end record is corrupt and is moved to
 * queue/corrupt/, never deleted. Per-recipient progress is kept in a
 * companion DATA/queue/<id>.done file of appended recipient indexes (each
 * appended and fsync'd), so the message file is never rewritten.
 *
 * spool_commit writes queue/tmp/<id>, fsyncs it, renames it into queue/ and
 * fsyncs queue/ — the directory fsync is shared (group commit): concurrent
 * committers wait for one fsync that covers all their renames. */
#ifndef ROOST_SPOOL_H
#define ROOST_SPOOL_H

#include <stddef.h>
#include <time.h>

#define SPOOL_ID_LEN 20

struct spool_rcpt {
    char *address;   /* as given in RCPT TO */
    char *account;   /* local account it resolves to, or NULL for remote */
    int done;        /* delivered (or permanently finished) */
};

struct spool_msg {
    char id[SPOOL_ID_LEN + 1];
    char *sender;        /* "" for the null reverse-path */
    time_t arrived;
    char *client;        /* client address */
    char *helo;
    char *auth_account;  /* NULL when not authenticated */
    char *protocol;      /* ESMTP, ESMTPS, ESMTPSA ... */
    int nrcpt;
    struct spool_rcpt *rcpts;
    char *data;          /* the message as stored (with our Received:) */
    size_t len;
};

struct spool;

/* Creates DATA/queue/{tmp,corrupt} as needed. */
struct spool *spool_open(const char *data_dir, const char **error_r);
void spool_close(struct spool **sp);
const char *spool_dir(struct spool *s);

/* A new unique, sortable queue id (time + counter + random), base32. */
void spool_new_id(char id_r[SPOOL_ID_LEN + 1]);

struct buf;
/* The queue-file bytes of MSG (what spool_commit writes), appended to OUT.
 * 0, or -1 with *error_r (bad id, envelope value or size). */
int spool_encode(const struct spool_msg *msg, struct buf *out, const char **error_r);
/* Decodes the queue-file bytes P (N octets) of message ID strictly, as
 * spool_load does. 0 ok (*msg_r), -1 (*why_r names the defect). */
int spool_decode(const char *id, const char *p, size_t n, struct spool_msg **msg_r,
                 const char **why_r);

/* Blocking (worker thread): makes MSG durable. MSG->id must be set. When a
 * queue file of that id exists already, fails with *error_r ==
 * SPOOL_ERR_EXISTS (compare with strcmp). */
#define SPOOL_ERR_EXISTS "queue id already exists"
int spool_commit(struct spool *s, const struct spool_msg *msg, const char **error_r);

/* Loads queue file ID (with done marks applied). 0 ok, 1 missing,
 * -1 corrupt (the file has been moved to queue/corrupt/). */
int spool_load(struct spool *s, const char *id, struct spool_msg **msg_r);
void spool_msg_free(struct spool_msg **mp);

/* Records that recipient IDX of message ID is finished (durably). */
int spool_mark_done(struct spool *s, const char *id, int idx);
/* Removes a finished message (file and .done), fsyncing the directory. */
int spool_remove(struct spool *s, const char *id);

/* Calls CB with the id of every message in queue/ (oldest first). */
int spool_scan(struct spool *s, void (*cb)(const char *id, void *arg), void *arg);

/* Added for tests and status: 1 if ID has the queue-id shape (SPOOL_ID_LEN
 * characters of the sortable base32 alphabet), else 0. */
int spool_id_valid(const char *id);
/* Added: opens an existing queue for reading only (the CLI while the server
 * runs): no directories created, tmp/ left alone, corrupt files reported but
 * not moved; commit, mark_done and remove fail. */
struct spool *spool_open_readonly(const char *data_dir, const char **error_r);
/* Number of queue-directory fsyncs done by spool_commit (group commit). */
unsigned long spool_dir_fsyncs(struct spool *s);

#endif
