/* directory: the administrative half of directory.h: domains, accounts and
 * aliases (add, delete, list, change). Names are validated and lower-cased
 * here before they reach SQL; uniqueness is enforced by the schema so two
 * concurrent writers cannot both win. Slow argon2id hashing happens before a
 * write transaction starts, never while holding the write lock. */
#include "auth/dir_int.h"
#include "core/limits.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int plan_valid(int plan)
{
    return plan == PLAN_FREE || plan == PLAN_BUSINESS || plan == PLAN_CUSTOM;
}

static void plan_limits(int plan, int *msgs, int *rcpts)
{
    if (plan == PLAN_BUSINESS) {
        *msgs = PLAN_BUSINESS_MESSAGES;
        *rcpts = PLAN_BUSINESS_RECIPIENTS;
    } else {
        *msgs = PLAN_FREE_MESSAGES;
        *rcpts = PLAN_FREE_RECIPIENTS;
    }
}

/* Quotes a name for a log line (names are validated, but atext allows '='). */
static const char *q(char buf[LOG_QSIZE], const char *s)
{
    return log_q(buf, LOG_QSIZE, s, strlen(s));
}

/* 1 when the last step failed on a UNIQUE/PRIMARY KEY constraint. */
static int is_unique_violation(struct directory *d)
{
    int x = sqlite3_extended_errcode(d->db);
    return x == SQLITE_CONSTRAINT_UNIQUE || x == SQLITE_CONSTRAINT_PRIMARYKEY;
}

/* Runs a one-row-changing statement; returns the number of changed rows or
 * -1. */
static int step_changes(struct directory *d, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        dir_sql_error(d, what);
        return -1;
    }
    return sqlite3_changes(d->db);
}

/* ------------------------------------------------------------------ domains */

static int normalize_domain(const char *domain, char out[DIR_ADDR_MAX])
{
    if (!domain || !dir_domain_valid(domain))
        return -1;
    return dir_lower(out, DIR_ADDR_MAX, domain);
}

int dir_domain_add(struct directory *d, const char *domain, const char **error_r)
{
    char name[DIR_ADDR_MAX];
    if (normalize_domain(domain, name) < 0) {
        dir_set_error(error_r, "malformed domain name");
        return -1;
    }
    sqlite3_stmt *st = dir_prep(d, "INSERT INTO domains(name, created) VALUES(?, ?)");
    if (!st) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    int ret = -1;
    if (dir_bind_text(st, 1, name) == 0 &&
        sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL)) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_DONE) {
            ret = 0;
        } else if (is_unique_violation(d)) {
            ret = 1;
            dir_set_error(error_r, "domain already exists");
        } else {
            dir_set_error(error_r, dir_sql_error(d, "domain add"));
        }
    }
    dir_finish(d, st);
    if (ret == 0) {
        char qb[LOG_QSIZE];
        log_info("auth", "event=domain_added domain=%s", q(qb, name));
    }
    return ret;
}

static int count_where(struct directory *d, const char *sql, const char *arg)
{
    sqlite3_stmt *st = dir_prep(d, sql);
    if (!st)
        return -1;
    int n = -1;
    if (dir_bind_text(st, 1, arg) == 0 && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    else
        dir_sql_error(d, "count");
    dir_finish(d, st);
    return n;
}

int dir_domain_del(struct directory *d, const char *domain, const char **error_r)
{
    char name[DIR_ADDR_MAX];
    if (normalize_domain(domain, name) < 0) {
        dir_set_error(error_r, "no such domain");
        return 1;
    }
    if (dir_begin(d) < 0) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    int ret = -1;
    int n = count_where(d, "SELECT count(*) FROM accounts WHERE domain = ?", name);
    if (n < 0) {
        dir_set_error(error_r, d->err);
    } else if (n > 0) {
        ret = 2;
        dir_set_error(error_r, "domain still has accounts");
    } else {
        sqlite3_stmt *st = dir_prep(d, "DELETE FROM domains WHERE name = ?");
        int changed = st && dir_bind_text(st, 1, name) == 0 ? step_changes(d, st, "domain del")
                                                           : -1;
        dir_finish(d, st);
        if (changed < 0) {
            dir_set_error(error_r, d->err);
        } else if (changed == 0) {
            ret = 1;
            dir_set_error(error_r, "no such domain");
        } else {
            ret = 0;
        }
    }
    if (ret == 0 && dir_commit(d) < 0) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    if (ret != 0) {
        dir_rollback(d);
    } else {
        char qb[LOG_QSIZE];
        log_info("auth", "event=domain_deleted domain=%s", q(qb, name));
    }
    return ret;
}

int dir_domain_exists(struct directory *d, const char *domain)
{
    char name[DIR_ADDR_MAX];
    if (!domain || dir_lower(name, sizeof name, domain) < 0)
        return 0;
    int n = count_where(d, "SELECT count(*) FROM domains WHERE name = ?", name);
    return n < 0 ? -1 : n > 0;
}

int dir_domain_list(struct directory *d, void (*cb)(const char *domain, void *arg), void *arg)
{
    sqlite3_stmt *st = dir_prep(d, "SELECT name FROM domains ORDER BY name");
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), arg);
    dir_finish(d, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ----------------------------------------------------------------- accounts */

#define ACCOUNT_COLUMNS \
    "id, address, plan, daily_messages, daily_recipients, imap, pop, two_factor, created, " \
    DIR_POP_COLUMNS ", quota_bytes"

static void row_to_account(sqlite3_stmt *st, struct dir_account *a)
{
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(st, 0);
    snprintf(a->address, sizeof a->address, "%s", (const char *)sqlite3_column_text(st, 1));
    int plan = sqlite3_column_int(st, 2);
    a->plan = plan_valid(plan) ? (enum dir_plan)plan : PLAN_FREE;
    if (a->plan == PLAN_CUSTOM) {
        a->daily_messages = sqlite3_column_int(st, 3);
        a->daily_recipients = sqlite3_column_int(st, 4);
    } else {
        plan_limits(a->plan, &a->daily_messages, &a->daily_recipients);
    }
    a->imap_enabled = sqlite3_column_int(st, 5);
    a->pop_enabled = sqlite3_column_int(st, 6);
    a->two_factor = sqlite3_column_int(st, 7);
    a->created = (time_t)sqlite3_column_int64(st, 8);
    dir_pop_from_row(st, 9, a);
    int64_t quota = sqlite3_column_int64(st, 12);
    a->quota_bytes = quota > 0 ? (uint64_t)quota : 0;
}

int dir_account_get(struct directory *d, const char *address, struct dir_account *a_r)
{
    char addr[DIR_ADDR_MAX];
    if (!address || dir_lower(addr, sizeof addr, address) < 0)
        return 1;
    sqlite3_stmt *st;
    int r = dir_lookup_row(d, "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE address = ?", addr,
                           "account get", &st);
    if (r != 1)
        return r == 0 ? 1 : -1;
    row_to_account(st, a_r);
    dir_finish(d, st);
    return 0;
}

int dir_account_list(struct directory *d, void (*cb)(const struct dir_account *a, void *arg),
                     void *arg)
{
    sqlite3_stmt *st = dir_prep(d, "SELECT " ACCOUNT_COLUMNS " FROM accounts ORDER BY address");
    if (!st)
        return -1;
    int rc;
    struct dir_account a;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_to_account(st, &a);
        cb(&a, arg);
    }
    dir_finish(d, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int password_acceptable(const char *password, const char **error_r)
{
    if (!password || !*password) {
        dir_set_error(error_r, "empty password");
        return 0;
    }
    if (strlen(password) > DIR_PASSWORD_MAX) {
        dir_set_error(error_r, "password too long");
        return 0;
    }
    return 1;
}

static int alias_exists(struct directory *d, const char *source)
{
    return count_where(d, "SELECT count(*) FROM aliases WHERE source = ?", source);
}

/* Checks what dir_account_add refuses before the slow hash. 0 or the return
 * code. */
static int account_add_precheck(struct directory *d, const char *addr, const char **error_r)
{
    const char *domain = strchr(addr, '@') + 1;
    int r = dir_domain_exists(d, domain);
    if (r < 0) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    if (r == 0) {
        dir_set_error(error_r, "unknown domain");
        return 2;
    }
    int64_t id = dir_account_id(d, addr);
    int alias = alias_exists(d, addr);
    if (id < 0 || alias < 0) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    if (id > 0) {
        dir_set_error(error_r, "account already exists");
        return 1;
    }
    if (alias > 0) {
        dir_set_error(error_r, "an alias with that address already exists");
        return 1;
    }
    return 0;
}

static int insert_account(struct directory *d, const char *addr, const char *hash, int plan,
                          const char **error_r)
{
    int msgs, rcpts;
    plan_limits(plan, &msgs, &rcpts);
    sqlite3_stmt *st = dir_prep(d, "INSERT INTO accounts(address, domain, password_hash, plan,"
                                   " daily_messages, daily_recipients, created)"
                                   " VALUES(?, ?, ?, ?, ?, ?, ?)");
    if (!st) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    int ret = -1;
    if (dir_bind_text(st, 1, addr) == 0 && dir_bind_text(st, 2, strchr(addr, '@') + 1) == 0 &&
        dir_bind_text(st, 3, hash) == 0 && sqlite3_bind_int(st, 4, plan) == SQLITE_OK &&
        sqlite3_bind_int(st, 5, msgs) == SQLITE_OK && sqlite3_bind_int(st, 6, rcpts) == SQLITE_OK &&
        sqlite3_bind_int64(st, 7, (sqlite3_int64)time(NULL)) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_DONE) {
            ret = 0;
        } else if (is_unique_violation(d)) {
            ret = 1;
            dir_set_error(error_r, "account already exists");
        } else if (sqlite3_extended_errcode(d->db) == SQLITE_CONSTRAINT_FOREIGNKEY) {
            ret = 2;
            dir_set_error(error_r, "unknown domain");
        } else {
            dir_set_error(error_r, dir_sql_error(d, "account add"));
        }
    }
    dir_finish(d, st);
    return ret;
}

int dir_account_add(struct directory *d, const char *address, const char *password,
                    enum dir_plan plan, const char **error_r)
{
    char addr[DIR_ADDR_MAX];
    if (dir_normalize_address(address, addr) < 0) {
        dir_set_error(error_r, "malformed address");
        return -1;
    }
    if (!plan_valid((int)plan)) {
        dir_set_error(error_r, "unknown plan");
        return -1;
    }
    if (!password_acceptable(password, error_r))
        return -1;
    int pre = account_add_precheck(d, addr, error_r);
    if (pre != 0)
        return pre;
    char *hash = dir_passwd_hash(password);
    if (!hash) {
        dir_set_error(error_r, "password hashing failed");
        return -1;
    }
    int ret = insert_account(d, addr, hash, (int)plan, error_r);
    OPENSSL_cleanse(hash, strlen(hash));
    free(hash);
    if (ret == 0) {
        char qb[LOG_QSIZE];
        log_info("auth", "event=account_added account=%s", q(qb, addr));
    }
    return ret;
}

int dir_account_del(struct directory *d, const char *address, const char **error_r)
{
    char addr[DIR_ADDR_MAX];
    if (!address || dir_lower(addr, sizeof addr, address) < 0) {
        dir_set_error(error_r, "no such account");
        return 1;
    }
    sqlite3_stmt *st = dir_prep(d, "DELETE FROM accounts WHERE address = ?");
    int changed = st && dir_bind_text(st, 1, addr) == 0 ? step_changes(d, st, "account del") : -1;
    dir_finish(d, st);
    if (changed < 0) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    if (changed == 0) {
        dir_set_error(error_r, "no such account");
        return 1;
    }
    char qb[LOG_QSIZE];
    log_info("auth", "event=account_deleted account=%s", q(qb, addr));
    return 0;
}

/* Stores HASH and revokes every app password of ID, in one transaction. */
static int store_password(struct directory *d, int64_t id, const char *hash)
{
    if (dir_begin(d) < 0)
        return -1;
    sqlite3_stmt *st = dir_prep(d, "UPDATE accounts SET password_hash = ? WHERE id = ?");
    int ok = st && dir_bind_text(st, 1, hash) == 0 &&
             sqlite3_bind_int64(st, 2, id) == SQLITE_OK && step_changes(d, st, "passwd") == 1;
    dir_finish(d, st);
    if (ok) {
        st = dir_prep(d, "DELETE FROM app_passwords WHERE account_id = ?");
        ok = st && sqlite3_bind_int64(st, 1, id) == SQLITE_OK &&
             step_changes(d, st, "revoke app passwords") >= 0;
        dir_finish(d, st);
    }
    if (!ok) {
        dir_rollback(d);
        return -1;
    }
    return dir_commit(d);
}

int dir_account_set_password(struct directory *d, const char *address, const char *password,
                             const char **error_r)
{
    char addr[DIR_ADDR_MAX];
    if (!address || dir_lower(addr, sizeof addr, address) < 0) {
        dir_set_error(error_r, "no such account");
        return 1;
    }
    if (!password_acceptable(password, error_r))
        return -1;
    int64_t id = dir_account_id(d, addr);
    if (id <= 0) {
        dir_set_error(error_r, id < 0 ? d->err : "no such account");
        return id < 0 ? -1 : 1;
    }
    char *hash = dir_passwd_hash(password);
    if (!hash) {
        dir_set_error(error_r, "password hashing failed");
        return -1;
    }
    int rc = store_password(d, id, hash);
    OPENSSL_cleanse(hash, strlen(hash));
    free(hash);
    if (rc < 0) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    char qb[LOG_QSIZE];
    log_info("auth", "event=password_changed account=%s app_passwords_revoked=all",
             q(qb, addr));
    return 0;
}

static int flag_valid(int v) { return v >= -1 && v <= 1; }

int dir_account_set(struct directory *d, const char *address, int plan, int daily_limit,
                    int imap, int pop, int two_factor, const char **error_r)
{
    if ((plan != -1 && !plan_valid(plan)) || !flag_valid(imap) || !flag_valid(pop) ||
        !flag_valid(two_factor)) {
        dir_set_error(error_r, "invalid setting");
        return -1;
    }
    struct dir_account a;
    int r = dir_account_get(d, address, &a);
    if (r != 0) {
        dir_set_error(error_r, r == 1 ? "no such account" : d->err);
        return r;
    }
    int new_plan = (int)a.plan, msgs = a.daily_messages, rcpts = a.daily_recipients;
    if (plan >= 0) {
        new_plan = plan;
        if (plan != PLAN_CUSTOM)
            plan_limits(plan, &msgs, &rcpts);
    }
    if (daily_limit >= 0) {
        new_plan = PLAN_CUSTOM;
        msgs = rcpts = daily_limit;
    }
    sqlite3_stmt *st = dir_prep(d, "UPDATE accounts SET plan = ?, daily_messages = ?,"
                                   " daily_recipients = ?, imap = ?, pop = ?, two_factor = ?"
                                   " WHERE id = ?");
    int ok = st && sqlite3_bind_int(st, 1, new_plan) == SQLITE_OK &&
             sqlite3_bind_int(st, 2, msgs) == SQLITE_OK &&
             sqlite3_bind_int(st, 3, rcpts) == SQLITE_OK &&
             sqlite3_bind_int(st, 4, imap >= 0 ? imap : a.imap_enabled) == SQLITE_OK &&
             sqlite3_bind_int(st, 5, pop >= 0 ? pop : a.pop_enabled) == SQLITE_OK &&
             sqlite3_bind_int(st, 6, two_factor >= 0 ? two_factor : a.two_factor) == SQLITE_OK &&
             sqlite3_bind_int64(st, 7, a.id) == SQLITE_OK && step_changes(d, st, "account set") == 1;
    dir_finish(d, st);
    if (!ok) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    char qb[LOG_QSIZE];
    log_info("auth", "event=account_changed account=%s plan=%d daily_messages=%d"
             " daily_recipients=%d", q(qb, a.address), new_plan, msgs, rcpts);
    return 0;
}

/* ------------------------------------------------------------------ aliases */

/* Normalises an alias source: local@domain or "@domain". -1 if malformed. */
static int normalize_alias_source(const char *source, char out[DIR_ADDR_MAX])
{
    if (!source)
        return -1;
    if (source[0] == '@')
        return dir_domain_valid(source + 1) ? dir_lower(out, DIR_ADDR_MAX, source) : -1;
    return dir_normalize_address(source, out);
}

static int alias_add_checks(struct directory *d, const char *src, const char *tgt,
                            int64_t *target_id_r, const char **error_r)
{
    int r = dir_domain_exists(d, strchr(src, '@') + 1);
    if (r <= 0) {
        dir_set_error(error_r, r < 0 ? d->err : "unknown domain");
        return r < 0 ? -1 : 2;
    }
    int64_t tid = dir_account_id(d, tgt);
    if (tid <= 0) {
        dir_set_error(error_r, tid < 0 ? d->err : "no such account (alias target)");
        return tid < 0 ? -1 : 2;
    }
    int64_t sid = src[0] == '@' ? 0 : dir_account_id(d, src);
    if (sid != 0) {
        dir_set_error(error_r, sid < 0 ? d->err : "an account with that address already exists");
        return sid < 0 ? -1 : 1;
    }
    *target_id_r = tid;
    return 0;
}

int dir_alias_add(struct directory *d, const char *source, const char *target,
                  const char **error_r)
{
    char src[DIR_ADDR_MAX], tgt[DIR_ADDR_MAX];
    if (normalize_alias_source(source, src) < 0) {
        dir_set_error(error_r, "malformed alias source");
        return -1;
    }
    if (dir_normalize_address(target, tgt) < 0) {
        dir_set_error(error_r, "malformed target address");
        return -1;
    }
    int64_t tid = 0;
    int r = alias_add_checks(d, src, tgt, &tid, error_r);
    if (r != 0)
        return r;
    sqlite3_stmt *st = dir_prep(d, "INSERT INTO aliases(source, domain, account_id, created)"
                                   " VALUES(?, ?, ?, ?)");
    int ret = -1;
    if (st && dir_bind_text(st, 1, src) == 0 && dir_bind_text(st, 2, strchr(src, '@') + 1) == 0 &&
        sqlite3_bind_int64(st, 3, tid) == SQLITE_OK &&
        sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL)) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_DONE) {
            ret = 0;
        } else if (is_unique_violation(d)) {
            ret = 1;
            dir_set_error(error_r, "alias already exists");
        } else {
            dir_set_error(error_r, dir_sql_error(d, "alias add"));
        }
    } else {
        dir_set_error(error_r, d->err);
    }
    dir_finish(d, st);
    if (ret == 0) {
        char qs[LOG_QSIZE], qt[LOG_QSIZE];
        log_info("auth", "event=alias_added source=%s target=%s", q(qs, src), q(qt, tgt));
    }
    return ret;
}

int dir_alias_del(struct directory *d, const char *source, const char **error_r)
{
    char src[DIR_ADDR_MAX];
    if (!source || dir_lower(src, sizeof src, source) < 0) {
        dir_set_error(error_r, "no such alias");
        return 1;
    }
    sqlite3_stmt *st = dir_prep(d, "DELETE FROM aliases WHERE source = ?");
    int changed = st && dir_bind_text(st, 1, src) == 0 ? step_changes(d, st, "alias del") : -1;
    dir_finish(d, st);
    if (changed < 0) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    if (changed == 0) {
        dir_set_error(error_r, "no such alias");
        return 1;
    }
    char qb[LOG_QSIZE];
    log_info("auth", "event=alias_deleted source=%s", q(qb, src));
    return 0;
}

int dir_alias_list(struct directory *d, void (*cb)(const char *source, const char *target,
                                                   void *arg), void *arg)
{
    sqlite3_stmt *st = dir_prep(d, "SELECT aliases.source, accounts.address FROM aliases"
                                   " JOIN accounts ON accounts.id = aliases.account_id"
                                   " ORDER BY aliases.domain, aliases.source");
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           arg);
    dir_finish(d, st);
    return rc == SQLITE_DONE ? 0 : -1;
}
