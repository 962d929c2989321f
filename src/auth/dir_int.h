/* dir_int: internals shared by the .c files in src/auth that implement
 * directory.h: the struct directory (one SQLite connection plus the app
 * password key), small SQLite helpers, address helpers and the password
 * hashing entry points. Nothing outside src/auth includes this. */
#ifndef ROOST_DIR_INT_H
#define ROOST_DIR_INT_H

#include "auth/directory.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define DIR_KEY_LEN 32          /* app-password HMAC key (secrets table) */
#define DIR_ADDR_MAX 320        /* buffer for an address, NUL included */
#define DIR_LOCAL_MAX 64        /* RFC 5321 4.5.3.1.1 */
#define DIR_DOMAIN_MAX 253      /* RFC 1035 2.3.4, without the trailing dot */
#define DIR_LABEL_MAX 63
#define DIR_PASSWORD_MAX 1024   /* longer account passwords are refused */
#define DIR_APPNAME_MAX 100     /* app password names, bytes */
#define DIR_APPPASS_LEN 16
#define DIR_DAY 86400           /* the rolling window of the send counters */

struct directory {
    sqlite3 *db;
    unsigned char key[DIR_KEY_LEN];
    char err[256];
};

/* ---- dir_sql.c ---- */
/* Prepares SQL (or takes an idle cached statement of the same text); NULL
 * on failure with d->err set. Give it back with dir_finish. */
sqlite3_stmt *dir_prep(struct directory *d, const char *sql);
/* Resets ST and keeps it for the next dir_prep of its SQL (or finalizes it). */
void dir_finish(struct directory *d, sqlite3_stmt *st);
/* Finalizes D's statements kept by this thread (before closing D). */
void dir_stmt_cache_drop(struct directory *d);
/* Runs SQL without results; 0 ok, -1 with d->err set. */
int dir_exec(struct directory *d, const char *sql);
/* Records the connection's last error in d->err and returns d->err. */
const char *dir_sql_error(struct directory *d, const char *what);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int dir_begin(struct directory *d);
int dir_commit(struct directory *d);
void dir_rollback(struct directory *d);
/* Binds text, returning 0 or -1. */
int dir_bind_text(sqlite3_stmt *st, int idx, const char *s);
/* Sets *error_r to MSG when error_r is not NULL. */
void dir_set_error(const char **error_r, const char *msg);
/* Prepares SQL, binds KEY as its one parameter and steps once. 1: a row;
 * *st_r is on it, and the caller reads it and finalizes *st_r. 0: no row.
 * -1: error (a failed step is recorded in d->err as WHAT). On 0 and -1 the
 * statement is already finalized. */
int dir_lookup_row(struct directory *d, const char *sql, const char *key, const char *what,
                   sqlite3_stmt **st_r);
/* The account id for ADDRESS (already normalised): >0, 0 if none, -1 error. */
int64_t dir_account_id(struct directory *d, const char *address);
/* Opens a transaction and looks up the account ADDRESS (already
 * normalised). >0: its id, with the transaction open for the caller to
 * commit or roll back; 0: no such account, -1: error; on both *error_r says
 * why and the transaction is rolled back. */
int64_t dir_begin_account(struct directory *d, const char *address, const char **error_r);
/* Runs SQL, an UPDATE whose ?1 is the text VALUE and ?2 the account ID.
 * 0 ok; -1 with the failure recorded in d->err as WHAT. */
int dir_update_account_text(struct directory *d, int64_t id, const char *sql, const char *value,
                            const char *what);
/* The index of S in NAMES (N entries), or -1 (also for a NULL S). */
int dir_name_index(const char *const *names, int n, const char *s);

/* ---- dir_addr.c ---- */
/* 1 if DOMAIN is LDH labels, at least two, at most 253 octets. */
int dir_domain_valid(const char *domain);
/* 1 if LOCAL (LEN bytes) is a dot-atom of atext without '+', <= 64 octets. */
int dir_local_valid(const char *local, size_t len);
/* Copies S lower-cased into OUT (size OUTSZ); -1 if it does not fit. */
int dir_lower(char *out, size_t outsz, const char *s);
/* Normalises a valid account/alias address into OUT (DIR_ADDR_MAX);
 * -1 if malformed. */
int dir_normalize_address(const char *address, char out[DIR_ADDR_MAX]);
/* Strips "+tag" from the local part of a lower-cased address in place.
 * Returns 1 if something was stripped, 0 if not (no '+', or empty base). */
int dir_strip_plus(char *address);

/* ---- passwd.c ---- */
/* argon2id-hashes PASSWORD into a fresh encoded string (caller frees);
 * NULL on failure. */
char *dir_passwd_hash(const char *password);
/* 1 match, 0 mismatch, -1 error. */
int dir_passwd_verify(const char *encoded, const char *password);
/* One verify against a dummy hash, for unknown users (timing). */
void dir_passwd_dummy_verify(const char *password);

/* ---- apppass.c ---- */
/* Checks PASSWORD against the app passwords of ACCOUNT_ID. 1 match (name
 * copied to NAME_R, last_used set to NOW), 0 none, -1 error. */
int dir_apppass_check(struct directory *d, int64_t account_id, const char *password,
                      time_t now, char name_r[128]);

/* ---- dir_pop.c ---- */
/* The POP option columns of accounts (schema version 2), in the order
 * dir_pop_from_row reads them. */
#define DIR_POP_COLUMNS "pop_scope, pop_since, pop_after"
/* Fills A's pop_scope, pop_since and pop_after from row ST, whose
 * DIR_POP_COLUMNS start at column COL. */
void dir_pop_from_row(sqlite3_stmt *st, int col, struct dir_account *a);

#endif
