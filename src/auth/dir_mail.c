/* dir_mail: the questions the mail protocols ask the directory: where does
 * this recipient go (dir_resolve_rcpt), who is this login
 * (dir_authenticate), may this account send as that address
 * (dir_sender_allowed), and may it send one more message today
 * (dir_send_count / dir_send_usage, a rolling 24 hours kept in send_log and
 * pruned as it goes). Inputs here come from clients: lengths are checked
 * before anything is copied, and everything is compared in lower case. */
#include "auth/dir_int.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- recipients */

/* Runs SQL, a query for one address keyed by KEY; 1 found (copied to
 * ACCOUNT_R), 0 not, -1 error. */
static int find_address(struct directory *d, const char *sql, const char *key, char *account_r)
{
    sqlite3_stmt *st;
    int r = dir_lookup_row(d, sql, key, "address lookup", &st);
    if (r == 1) {
        snprintf(account_r, DIR_ADDR_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
        dir_finish(d, st);
    }
    return r;
}

/* Looks up an account by exact address; 1 found (copied), 0 not, -1 error. */
static int find_account(struct directory *d, const char *addr, char *account_r)
{
    return find_address(d, "SELECT address FROM accounts WHERE address = ?", addr, account_r);
}

/* Looks up an alias source; 1 found (target copied), 0 not, -1 error. */
static int find_alias(struct directory *d, const char *source, char *account_r)
{
    return find_address(d, "SELECT accounts.address FROM aliases"
                           " JOIN accounts ON accounts.id = aliases.account_id"
                           " WHERE aliases.source = ?",
                        source, account_r);
}

/* Account, then alias. 1 found, 0 not, -1 error. */
static int find_account_or_alias(struct directory *d, const char *addr, char *account_r)
{
    int r = find_account(d, addr, account_r);
    if (r != 0)
        return r;
    return find_alias(d, addr, account_r);
}

enum dir_rcpt dir_resolve_rcpt(struct directory *d, const char *address, char *account_r)
{
    char addr[DIR_ADDR_MAX];
    if (!address || dir_lower(addr, sizeof addr, address) < 0)
        return DIR_RCPT_NOT_LOCAL;
    const char *at = strrchr(addr, '@');
    if (!at || at == addr)
        return DIR_RCPT_NOT_LOCAL;
    int served = dir_domain_exists(d, at + 1);
    if (served < 0)
        return DIR_RCPT_ERROR;
    if (!served)
        return DIR_RCPT_NOT_LOCAL;

    int r = find_account_or_alias(d, addr, account_r);
    if (r == 0 && dir_strip_plus(addr))
        r = find_account_or_alias(d, addr, account_r);
    if (r == 0) {
        char catchall[DIR_ADDR_MAX];
        snprintf(catchall, sizeof catchall, "%s", strrchr(addr, '@'));
        r = find_alias(d, catchall, account_r);
    }
    if (r < 0)
        return DIR_RCPT_ERROR;
    return r ? DIR_RCPT_LOCAL : DIR_RCPT_NO_SUCH_USER;
}

/* ----------------------------------------------------------- authentication */

struct auth_row {
    int64_t id;
    char address[DIR_ADDR_MAX];
    char hash[256];
    int two_factor;
};

/* 1 found, 0 not, -1 error. */
static int load_auth_row(struct directory *d, const char *addr, struct auth_row *row)
{
    sqlite3_stmt *st;
    int r = dir_lookup_row(d, "SELECT id, address, password_hash, two_factor"
                              " FROM accounts WHERE address = ?",
                           addr, "auth lookup", &st);
    if (r != 1)
        return r;
    row->id = sqlite3_column_int64(st, 0);
    snprintf(row->address, sizeof row->address, "%s", (const char *)sqlite3_column_text(st, 1));
    int n = snprintf(row->hash, sizeof row->hash, "%s", (const char *)sqlite3_column_text(st, 2));
    row->two_factor = sqlite3_column_int(st, 3);
    dir_finish(d, st);
    return n > 0 && (size_t)n < sizeof row->hash ? 1 : -1;
}

static enum dir_auth auth_unknown_user(const char *password)
{
    dir_passwd_dummy_verify(password);
    return DIR_AUTH_FAIL;
}

enum dir_auth dir_authenticate(struct directory *d, const char *username, const char *password,
                               char *account_r, char *app_name_r)
{
    char addr[DIR_ADDR_MAX], app[128];
    struct auth_row row;
    if (app_name_r)
        app_name_r[0] = '\0';
    if (!password)
        return DIR_AUTH_FAIL;
    if (strlen(password) > DIR_PASSWORD_MAX)
        return auth_unknown_user("");
    if (!username || dir_lower(addr, sizeof addr, username) < 0)
        return auth_unknown_user(password);
    int r = load_auth_row(d, addr, &row);
    if (r < 0)
        return DIR_AUTH_ERROR;
    if (r == 0)
        return auth_unknown_user(password);

    r = dir_apppass_check(d, row.id, password, time(NULL), app);
    if (r < 0)
        return DIR_AUTH_ERROR;
    if (r == 1) {
        snprintf(account_r, DIR_ADDR_MAX, "%s", row.address);
        if (app_name_r)
            snprintf(app_name_r, 128, "%s", app);
        return DIR_AUTH_OK;
    }
    r = dir_passwd_verify(row.hash, password);
    if (r < 0) {
        log_error("auth", "event=bad_password_hash account_id=%lld", (long long)row.id);
        return DIR_AUTH_ERROR;
    }
    if (r == 0)
        return DIR_AUTH_FAIL;
    if (row.two_factor)
        return DIR_AUTH_APP_PASSWORD_REQUIRED;
    snprintf(account_r, DIR_ADDR_MAX, "%s", row.address);
    return DIR_AUTH_OK;
}

/* ------------------------------------------------------------------ senders */

/* Lower-cases ACCOUNT and ADDRESS (into ACCT and ADDR) and strips a +tag
 * from ADDR: 1 when ADDR is then ACCOUNT itself, 0 when it is not, -1 when
 * ADDRESS can never be a sender (no local part, too long). */
static int sender_own_address(const char *account, const char *address, char *acct, char *addr)
{
    if (!account || !address || dir_lower(acct, DIR_ADDR_MAX, account) < 0 ||
        dir_lower(addr, DIR_ADDR_MAX, address) < 0)
        return -1;
    const char *at = strrchr(addr, '@');
    if (!at || at == addr)
        return -1; /* no local part: never a catch-all "@domain" */
    dir_strip_plus(addr);
    return strcmp(addr, acct) == 0;
}

int dir_sender_is_account(const char *account, const char *address)
{
    char acct[DIR_ADDR_MAX], addr[DIR_ADDR_MAX];
    return sender_own_address(account, address, acct, addr) == 1;
}

int dir_sender_allowed(struct directory *d, const char *account, const char *address)
{
    char acct[DIR_ADDR_MAX], addr[DIR_ADDR_MAX], target[DIR_ADDR_MAX];
    int own = sender_own_address(account, address, acct, addr);
    if (own != 0)
        return own > 0;
    int r = find_alias(d, addr, target);
    if (r < 0)
        return -1;
    return r == 1 && strcmp(target, acct) == 0;
}

/* -------------------------------------------------------------- send limits */

struct send_state {
    int64_t id;
    struct dir_usage u;
};

/* Loads the account's limits and its usage in (now - 24h, now]. 0 ok,
 * 1 no such account, -1 error. */
static int load_send_state(struct directory *d, const char *account, time_t now,
                           struct send_state *s)
{
    struct dir_account a;
    int r = dir_account_get(d, account, &a);
    if (r != 0)
        return r;
    s->id = a.id;
    s->u.limit_messages = a.daily_messages;
    s->u.limit_recipients = a.daily_recipients;
    sqlite3_stmt *st = dir_prep(d, "SELECT coalesce(sum(messages), 0), coalesce(sum(recipients), 0) FROM send_log"
                                   " WHERE account_id = ? AND time > ? AND time <= ?");
    if (!st)
        return -1;
    int ok = sqlite3_bind_int64(st, 1, a.id) == SQLITE_OK &&
             sqlite3_bind_int64(st, 2, (sqlite3_int64)now - DIR_DAY) == SQLITE_OK &&
             sqlite3_bind_int64(st, 3, (sqlite3_int64)now) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        s->u.messages = sqlite3_column_int(st, 0);
        s->u.recipients = sqlite3_column_int(st, 1);
    } else {
        dir_sql_error(d, "send usage");
    }
    dir_finish(d, st);
    return ok ? 0 : -1;
}

static int prune_send_log(struct directory *d, time_t now)
{
    sqlite3_stmt *st = dir_prep(d, "DELETE FROM send_log WHERE time <= ?");
    int ok = st && sqlite3_bind_int64(st, 1, (sqlite3_int64)now - DIR_DAY) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;
    dir_finish(d, st);
    return ok ? 0 : -1;
}

static int record_send(struct directory *d, int64_t id, int nrcpt, time_t now)
{
    sqlite3_stmt *st = dir_prep(d, "INSERT INTO send_log(account_id, time, recipients, messages)"
                                   " VALUES(?, ?, ?, 1) ON CONFLICT(account_id, time) DO UPDATE"
                                   " SET recipients = recipients + excluded.recipients,"
                                   " messages = messages + 1");
    int ok = st && sqlite3_bind_int64(st, 1, id) == SQLITE_OK &&
             sqlite3_bind_int64(st, 2, (sqlite3_int64)now) == SQLITE_OK &&
             sqlite3_bind_int(st, 3, nrcpt) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
    dir_finish(d, st);
    return ok ? 0 : -1;
}

static int send_count_tx(struct directory *d, const char *account, int nrcpt, time_t now,
                         struct dir_usage *usage_r);

int dir_usage_allows(const struct dir_usage *u, int nrcpt)
{
    return u->messages < u->limit_messages &&
           (long long)u->recipients + nrcpt <= (long long)u->limit_recipients;
}

/* The count is soft state: its commit is not fsync'd (synchronous=NORMAL
 * for this one transaction; WAL mode keeps it across a crash of the server,
 * and the next checkpoint makes it durable). A power cut may forget the
 * last moments of sends: one fsync per submitted message would otherwise
 * be the cost of every send. */
int dir_send_count(struct directory *d, const char *account, int nrcpt, time_t now,
                   struct dir_usage *usage_r)
{
    if (nrcpt < 0)
        return -1;
    if (dir_exec(d, "PRAGMA synchronous=NORMAL") < 0)
        return -1;
    int ret = send_count_tx(d, account, nrcpt, now, usage_r);
    if (dir_exec(d, "PRAGMA synchronous=FULL") < 0)
        return -1;
    return ret;
}

static int send_count_tx(struct directory *d, const char *account, int nrcpt, time_t now,
                         struct dir_usage *usage_r)
{
    if (dir_begin(d) < 0)
        return -1;
    struct send_state s;
    int ret = -1;
    if (prune_send_log(d, now) < 0 || load_send_state(d, account, now, &s) != 0)
        goto out;
    if (!dir_usage_allows(&s.u, nrcpt)) {
        ret = 1;
        goto out;
    }
    if (record_send(d, s.id, nrcpt, now) < 0)
        goto out;
    s.u.messages++;
    s.u.recipients += nrcpt;
    ret = 0;
out:
    if (ret >= 0 && dir_commit(d) < 0)
        ret = -1;
    if (ret < 0)
        dir_rollback(d);
    if (ret >= 0 && usage_r)
        *usage_r = s.u;
    return ret;
}

int dir_send_usage(struct directory *d, const char *account, time_t now, struct dir_usage *u_r)
{
    struct send_state s;
    if (load_send_state(d, account, now, &s) != 0)
        return -1;
    *u_r = s.u;
    return 0;
}
