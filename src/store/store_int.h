/* store_int: internals shared by store_change.c and store_pop.c (nothing
 * outside src/store includes this): one open connection to an account's
 * index (DATA/mail/<account>/index.sqlite), the index schema at version 2,
 * and a few small SQLite helpers.
 *
 * Schema version 2 adds the `vanished` table (mailbox_id, uid, modseq): the
 * UIDs expunged from a mailbox (or moved out of it) with the MODSEQ of that
 * change, kept for IMAP QRESYNC (RFC 7162 3.2.10). store_ix_open migrates a
 * version-1 index in place (one BEGIN IMMEDIATE transaction; a concurrent
 * opener waits and then sees the work done) and creates a missing index.
 *
 * These are small own versions of helpers that store.c keeps static
 * (db_open, mailbox_id, db_exec, the version-1 schema); they should move
 * into store.c (and STORE_SCHEMA_VERSION there become 2) once store.c may
 * change again, so that the schema has one owner. */
#ifndef ROOST_STORE_INT_H
#define ROOST_STORE_INT_H

#include <sqlite3.h>
#include <stdint.h>

#define STORE_IX_SCHEMA_VERSION 2
/* The flags column must fit struct store_msg_info.flags (256 with the NUL). */
#define STORE_MAX_FLAGS_LEN 255
/* One flag or keyword (RFC 3501 flag-keyword is an atom; we bound it). */
#define STORE_MAX_FLAG_LEN 64

struct store_ix {
    sqlite3 *db;
    char *root;      /* DATA/mail/<account> */
    char *msg_dir;   /* .../msg */
};

/* Opens ACCOUNT's index (WAL, synchronous=FULL, busy timeout) at schema
 * version 2. With CREATE, creates the directories and the index (with the
 * default mailboxes) when missing. 0 open, 1 no store (only without CREATE),
 * -1 error with *error_r set. */
int store_ix_open(const char *data_dir, const char *account, int create, struct store_ix *ix,
                  const char **error_r);
void store_ix_close(struct store_ix *ix);

/* Runs SQL without results; 0 or -1 (logged). */
int store_ix_exec(sqlite3 *db, const char *sql);
/* The id of mailbox NAME (INBOX case-insensitive). 0 found, 1 none, -1 error. */
int store_ix_mailbox(sqlite3 *db, const char *name, int64_t *id_r);
/* 1 when the space-separated FLAGS contain FLAG (case-insensitive). */
int store_flags_have(const char *flags, const char *flag);

#endif
