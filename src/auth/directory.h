/* directory: domains, accounts, aliases, app passwords and send counters,
 * in DATA/directory.sqlite (schema versions + migrations).
 *
 * A struct directory is one SQLite connection: use it from one thread at a
 * time. The server opens one per worker job (or caches one per worker
 * thread); the CLI opens its own. SQLite runs in WAL mode with a busy
 * timeout, so the CLI works while the server runs and every change (a revoked
 * app password, a new account) is seen by the next lookup.
 *
 * All functions returning int give 0 on success and -1 on an internal error
 * (with *error_r set to a static or directory-owned message) unless they
 * document other values. Addresses are compared case-insensitively and stored
 * in lower case. */
#ifndef ROOST_DIRECTORY_H
#define ROOST_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct directory;

enum dir_plan { PLAN_FREE, PLAN_BUSINESS, PLAN_CUSTOM };

enum dir_pop_scope { POP_SCOPE_ALL, POP_SCOPE_FROM_NOW };
enum dir_pop_after { POP_AFTER_KEEP, POP_AFTER_MARK_READ, POP_AFTER_ARCHIVE, POP_AFTER_DELETE };

struct dir_account {
    int64_t id;
    char address[320];        /* local@domain, lower case */
    enum dir_plan plan;
    int daily_messages;       /* effective limits after plan/custom */
    int daily_recipients;
    int imap_enabled, pop_enabled, two_factor;
    time_t created;
    enum dir_pop_scope pop_scope;  /* which mail POP3 offers */
    time_t pop_since;              /* from-now: mail that arrived at or after this */
    enum dir_pop_after pop_after;  /* what a POP3 download followed by QUIT does */
    uint64_t quota_bytes;          /* mailbox storage limit; 0: none (RFC 9208 STORAGE) */
};

struct dir_usage {           /* rolling 24 hours */
    int messages, recipients;
    int limit_messages, limit_recipients;
};

/* Password hashing parameters (argon2id); defaults if never called. */
void dir_set_argon2_params(unsigned t_cost, unsigned m_cost_kib, unsigned parallelism);

/* Opens (creating and migrating as needed) DATA_DIR/directory.sqlite. */
struct directory *dir_open(const char *data_dir, const char **error_r);
void dir_close(struct directory **dp);
int dir_schema_version(struct directory *d);

/* ---- domains ---- */
/* 0 ok, 1 already exists, -1 error (bad name or internal). */
int dir_domain_add(struct directory *d, const char *domain, const char **error_r);
/* 0 ok, 1 no such domain, 2 domain still has accounts, -1 error. */
int dir_domain_del(struct directory *d, const char *domain, const char **error_r);
/* 1 served here, 0 not, -1 error. */
int dir_domain_exists(struct directory *d, const char *domain);
/* Calls CB for each domain in name order. */
int dir_domain_list(struct directory *d, void (*cb)(const char *domain, void *arg), void *arg);

/* ---- accounts ---- */
/* 0 ok, 1 exists, 2 unknown domain, -1 error (malformed address, internal). */
int dir_account_add(struct directory *d, const char *address, const char *password,
                    enum dir_plan plan, const char **error_r);
/* 0 ok, 1 no such account, -1 error. Removes its aliases and app passwords. */
int dir_account_del(struct directory *d, const char *address, const char **error_r);
/* 0 found, 1 not found, -1 error. */
int dir_account_get(struct directory *d, const char *address, struct dir_account *a_r);
int dir_account_list(struct directory *d, void (*cb)(const struct dir_account *a, void *arg),
                     void *arg);
/* Sets a new password and revokes every app password. 0 ok, 1 no account. */
int dir_account_set_password(struct directory *d, const char *address, const char *password,
                             const char **error_r);
/* daily_limit < 0 leaves it; plan selects the default limits; a custom
 * daily_limit >= 0 makes the plan PLAN_CUSTOM with that many messages and
 * recipients a day. imap/pop/two_factor: -1 leave, 0 off, 1 on.
 * 0 ok, 1 no account. */
int dir_account_set(struct directory *d, const char *address, int plan, int daily_limit,
                    int imap, int pop, int two_factor, const char **error_r);

/* Gmail's POP options. SCOPE/AFTER: -1 leaves it. Setting the scope to
 * from-now records NOW as the time from which mail is offered; setting it
 * to all clears it. 0 ok, 1 no account. */
int dir_account_set_pop(struct directory *d, const char *address, int scope, int after,
                        time_t now, const char **error_r);
const char *dir_pop_scope_name(enum dir_pop_scope s);
const char *dir_pop_after_name(enum dir_pop_after a);

/* ---- quota (dir_quota.c) ----
 * The default for every account: 15 GiB, as Gmail's free plan. */
#define DIR_QUOTA_DEFAULT 16106127360
/* Sets ADDRESS's mailbox quota (0: no limit). 0 ok, 1 no account. */
int dir_account_set_quota(struct directory *d, const char *address, uint64_t bytes,
                          const char **error_r);
/* Parses a size: a number of bytes, or with a K, M, G or T suffix (binary
 * units, case-insensitive, optional "B"/"iB": "15G", "500M", "1.5G"); "0"
 * or "unlimited" is no limit. 0 ok, -1 malformed or above 2^53. */
int dir_quota_parse(const char *s, uint64_t *bytes_r);
/* "15 GiB", "500 MiB", "1234 bytes", "unlimited". */
void dir_quota_format(uint64_t bytes, char *out, size_t outsz);

/* ---- aliases ---- */
/* SOURCE is local@domain or "@domain" (catch-all for the domain); TARGET is
 * a local account address. 0 ok, 1 exists, 2 unknown domain or target,
 * -1 error. */
int dir_alias_add(struct directory *d, const char *source, const char *target,
                  const char **error_r);
/* 0 ok, 1 no such alias. */
int dir_alias_del(struct directory *d, const char *source, const char **error_r);
int dir_alias_list(struct directory *d, void (*cb)(const char *source, const char *target,
                                                   void *arg), void *arg);

/* ---- app passwords ---- */
/* Creates an app password named NAME; writes the 16 random lower-case
 * letters to PW_R (17 bytes). 0 ok, 1 no account, 2 name exists, -1 error. */
int dir_apppass_create(struct directory *d, const char *address, const char *name,
                       char pw_r[17], const char **error_r);
/* 0 ok, 1 no account, 2 no such app password. */
int dir_apppass_revoke(struct directory *d, const char *address, const char *name,
                       const char **error_r);
/* Number of app passwords of ADDRESS, -1 if no such account or error. */
int dir_apppass_count(struct directory *d, const char *address);
/* last_used is 0 when never used. */
int dir_apppass_list(struct directory *d, const char *address,
                     void (*cb)(const char *name, time_t created, time_t last_used, void *arg),
                     void *arg);

/* ---- what the mail protocols ask ---- */
enum dir_rcpt {
    DIR_RCPT_LOCAL,        /* account_r holds the account address */
    DIR_RCPT_NO_SUCH_USER, /* served domain, nobody there: 550 5.1.1 */
    DIR_RCPT_NOT_LOCAL,    /* not a served domain */
    DIR_RCPT_ERROR
};
/* Resolves a recipient: exact account, then alias, then plus-addressing
 * (user+tag@domain -> user@domain, through aliases too), then the domain's
 * catch-all. ACCOUNT_R must hold 320 bytes. */
enum dir_rcpt dir_resolve_rcpt(struct directory *d, const char *address, char *account_r);

enum dir_auth {
    DIR_AUTH_OK,                /* account_r set; app_name_r set if an app password matched */
    DIR_AUTH_FAIL,              /* unknown user or wrong password: 535 5.7.8 */
    DIR_AUTH_APP_PASSWORD_REQUIRED, /* two-factor on and the main password was given: 534 5.7.9 */
    DIR_AUTH_ERROR
};
/* Checks USERNAME (the full address, case-insensitive) and PASSWORD: the
 * account password (argon2id) or any of its app passwords (keyed hash).
 * Slow (argon2id): call on a worker thread only. Records last use of an app
 * password. ACCOUNT_R holds 320 bytes, APP_NAME_R 128 (may be NULL). */
enum dir_auth dir_authenticate(struct directory *d, const char *username, const char *password,
                               char *account_r, char *app_name_r);

/* 1 when ACCOUNT may send as ADDRESS (its own address, its own address with
 * a +tag, or an alias whose target is the account; not a catch-all), 0 when
 * not, -1 error. */
int dir_sender_allowed(struct directory *d, const char *account, const char *address);
/* The part of dir_sender_allowed that needs no lookup: 1 when ADDRESS is
 * ACCOUNT's own address (any case, any +tag), else 0 (it may still be an
 * alias of the account: ask dir_sender_allowed). Any thread. */
int dir_sender_is_account(const char *account, const char *address);

/* Daily sending limit on a rolling 24 hours. Checks whether ACCOUNT may send
 * one more message to NRCPT recipients at NOW; if yes, records it and
 * returns 0; if it would pass either limit returns 1 and records nothing.
 * USAGE_R (may be NULL) receives the usage after the call. */
int dir_send_count(struct directory *d, const char *account, int nrcpt, time_t now,
                   struct dir_usage *usage_r);
int dir_send_usage(struct directory *d, const char *account, time_t now, struct dir_usage *u_r);
/* 1 when usage U leaves room for one more message to NRCPT recipients. */
int dir_usage_allows(const struct dir_usage *u, int nrcpt);

/* 1 if ADDRESS is syntactically a valid local@domain we accept for accounts
 * and aliases, 0 if not. */
int dir_address_valid(const char *address);

/* ---- forwarding (dir_forward.c) ----
 * Gmail's "Forward a copy of incoming mail to OTHER and ... Roost's copy":
 * keep it in the INBOX, keep it marked as read, archive it, or delete it. */
enum dir_forward_keep { FORWARD_KEEP, FORWARD_MARK_READ, FORWARD_ARCHIVE, FORWARD_DELETE };
struct dir_forward {
    char to[320];                   /* "" when forwarding is off */
    enum dir_forward_keep keep;
};
/* 0 ok, 1 no such account, -1 error. */
int dir_forward_get(struct directory *d, const char *address, struct dir_forward *f_r);
/* TO: NULL leaves it, "" turns forwarding off, else the target (stored
 * lower-cased). KEEP: -1 leaves it. 0 ok, 1 no such account, 2 target
 * refused (*error_r says why: malformed, the account itself, or no account
 * behind an address of a domain served here), -1 error. */
int dir_forward_set(struct directory *d, const char *address, const char *to, int keep,
                    const char **error_r);
const char *dir_forward_keep_name(enum dir_forward_keep k);
/* The keep option named S, or -1. */
int dir_forward_keep_parse(const char *s);
/* 1 if ADDRESS is local@domain with a dot-atom local part ('+' allowed)
 * and a valid domain, at most 319 octets; 0 if not. */
int dir_forward_address_valid(const char *address);

#endif
