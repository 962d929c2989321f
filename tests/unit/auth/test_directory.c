/* test_directory: the account directory (src/auth) against a real SQLite
 * file in a fresh temporary directory per test: schema and migrations,
 * domains, accounts, aliases, passwords and app passwords, recipient
 * resolution, sender checks and the rolling daily sending limits. Also the
 * runner's main() for unit_auth (the throttle tests live in test_throttle.c). */
#include "auth/dir_int.h"
#include "auth/directory.h"
#include "auth_tests.h"
#include "core/limits.h"
#include "core/log.h"
#include "test.h"
#include "test_loop.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define FAST_T 1
#define FAST_M 64
#define FAST_P 1

/* ------------------------------------------------------------------ helpers */

static struct directory *open_fresh(void)
{
    const char *err = NULL;
    struct directory *d = dir_open(test_tmpdir(), &err);
    test_assert(d != NULL);
    if (!d)
        printf("     dir_open: %s\n", err ? err : "?");
    return d;
}

static char *db_path(void)
{
    static char p[4200];
    snprintf(p, sizeof p, "%s/directory.sqlite", test_tmpdir());
    return p;
}

/* Runs a one-integer query on the database file directly. */
static long long raw_int(const char *sql)
{
    return test_db_int(db_path(), sql);
}

static int raw_exec(const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(db_path(), &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static char *read_file(const char *path, size_t *len_r)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0, len = 0, n;
    char chunk[8192];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            data = realloc(data, cap);
            if (!data)
                abort();
        }
        memcpy(data + len, chunk, n);
        len += n;
    }
    fclose(f);
    *len_r = len;
    return data;
}

/* A directory with example.com and bob@example.com (password "correct horse"). */
static struct directory *open_with_bob(void)
{
    struct directory *d = open_fresh();
    if (!d)
        return NULL;
    test_assert(dir_domain_add(d, "example.com", NULL) == 0);
    test_assert(dir_account_add(d, "bob@example.com", "correct horse", PLAN_FREE, NULL) == 0);
    return d;
}

static void make_string(char *out, char c, size_t n)
{
    memset(out, c, n);
    out[n] = '\0';
}

/* ------------------------------------------------------------------- schema */

static void test_schema_create_and_reopen(void)
{
    test_begin("schema: create, settings, reopen is a no-op");
    struct directory *d = open_fresh();
    if (!d) {
        test_end();
        return;
    }
    test_assert(dir_schema_version(d) == 5);
    test_assert(dir_domain_add(d, "example.com", NULL) == 0);
    dir_close(&d);
    test_assert(d == NULL);

    struct stat st;
    test_assert(stat(db_path(), &st) == 0 && (st.st_mode & 0777) == 0600);
    test_assert(raw_int("SELECT count(*) FROM schema_version") == 5);
    test_assert(raw_int("SELECT length(value) FROM secrets WHERE name = 'apppass_key'") == 32);
    long long tables = raw_int("SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    test_assert(tables == 7);

    size_t len1 = 0, len2 = 0;
    char *before = read_file(db_path(), &len1);
    d = open_fresh();
    test_assert(d && dir_schema_version(d) == 5);
    test_assert(d && dir_domain_exists(d, "example.com") == 1);
    dir_close(&d);
    char *after = read_file(db_path(), &len2);
    test_assert(before && after);
    if (before && after)
        test_assert_memeq(before, len1, after, len2);
    free(before);
    free(after);
    test_assert(raw_int("SELECT count(*) FROM schema_version") == 5);
    test_end();
}

static void test_schema_wal_and_newer_refused(void)
{
    test_begin("schema: WAL mode; a newer schema is refused");
    struct directory *d = open_fresh();
    dir_close(&d);
    sqlite3 *db = NULL;
    test_assert(sqlite3_open(db_path(), &db) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    test_assert(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    test_assert(sqlite3_step(st) == SQLITE_ROW);
    test_assert_streq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    test_assert(raw_exec("INSERT INTO schema_version(version, applied) VALUES(99, 0)") == 0);
    const char *err = NULL;
    d = dir_open(test_tmpdir(), &err);
    test_assert(d == NULL);
    test_assert(err && strstr(err, "newer") != NULL);
    dir_close(&d);
    test_end();
}

/* ------------------------------------------------------------------ domains */

struct list_acc {
    char buf[1024];
};

static void append_name(const char *name, void *arg)
{
    struct list_acc *l = arg;
    size_t n = strlen(l->buf);
    snprintf(l->buf + n, sizeof l->buf - n, "%s;", name);
}

static void test_domains(void)
{
    test_begin("domains: add, duplicate, bad names, limits, del");
    struct directory *d = open_fresh();
    if (!d) {
        test_end();
        return;
    }
    const char *err = NULL;
    test_assert(dir_domain_add(d, "Example.COM", &err) == 0);
    test_assert(dir_domain_exists(d, "example.com") == 1);
    test_assert(dir_domain_exists(d, "EXAMPLE.com") == 1);
    test_assert(dir_domain_add(d, "example.com", &err) == 1);
    test_assert(err && strstr(err, "exists"));
    test_assert(dir_domain_add(d, "b.example.org", NULL) == 0);

    static const char *const bad[] = {
        "", "localhost", "-a.com", "a-.com", "a..com", ".a.com", "a.com.", "a_b.com",
        "a b.com", "exa\xc3\xa9mple.com", "a.123", "@a.com", "a.com/x", NULL,
    };
    for (int i = 0; bad[i]; i++) {
        err = NULL;
        test_assert(dir_domain_add(d, bad[i], &err) == -1);
        test_assert(err && strstr(err, "malformed"));
    }
    test_assert(dir_domain_add(d, NULL, NULL) == -1);

    /* label of 63 octets ok, 64 not */
    char name[400], label[70];
    make_string(label, 'l', 63);
    snprintf(name, sizeof name, "%s.com", label);
    test_assert(dir_domain_add(d, name, NULL) == 0);
    make_string(label, 'l', 64);
    snprintf(name, sizeof name, "%s.com", label);
    test_assert(dir_domain_add(d, name, NULL) == -1);
    /* 253 octets ok, 254 not: 3 x 63 + 61 + 3 dots = 253 */
    char l63[64], l61[62], l62[63];
    make_string(l63, 'a', 63);
    make_string(l61, 'b', 61);
    make_string(l62, 'b', 62);
    snprintf(name, sizeof name, "%s.%s.%s.%s", l63, l63, l63, l61);
    test_assert(strlen(name) == 253);
    test_assert(dir_domain_add(d, name, NULL) == 0);
    snprintf(name, sizeof name, "%s.%s.%s.%s", l63, l63, l63, l62);
    test_assert(strlen(name) == 254);
    test_assert(dir_domain_add(d, name, NULL) == -1);

    struct list_acc l = { "" };
    test_assert(dir_domain_del(d, name, NULL) == 1); /* never added */
    make_string(label, 'l', 63);
    snprintf(name, sizeof name, "%s.COM", label);
    test_assert(dir_domain_del(d, name, NULL) == 0);
    test_assert(dir_domain_list(d, append_name, &l) == 0);
    test_assert(strncmp(l.buf, "aaaa", 4) == 0);
    test_assert(strstr(l.buf, ";b.example.org;example.com;") != NULL);

    /* del with accounts refused, unknown refused, aliases go with the domain */
    test_assert(dir_account_add(d, "bob@example.com", "pw123456", PLAN_FREE, NULL) == 0);
    test_assert(dir_alias_add(d, "info@b.example.org", "bob@example.com", NULL) == 0);
    err = NULL;
    test_assert(dir_domain_del(d, "example.com", &err) == 2);
    test_assert(err && strstr(err, "accounts"));
    test_assert(dir_domain_del(d, "nope.example", NULL) == 1);
    test_assert(dir_domain_del(d, "B.Example.org", NULL) == 0);
    char acct[320];
    test_assert(dir_resolve_rcpt(d, "info@b.example.org", acct) == DIR_RCPT_NOT_LOCAL);
    test_assert(dir_domain_add(d, "b.example.org", NULL) == 0);
    test_assert(dir_resolve_rcpt(d, "info@b.example.org", acct) == DIR_RCPT_NO_SUCH_USER);
    test_assert(dir_account_del(d, "bob@example.com", NULL) == 0);
    test_assert(dir_domain_del(d, "example.com", NULL) == 0);
    test_assert(dir_domain_exists(d, "example.com") == 0);
    dir_close(&d);
    test_end();
}

/* ---------------------------------------------------------------- addresses */

static void test_address_rules(void)
{
    test_begin("addresses: dot-atom local part without '+', 64 octets, domain rules");
    static const char *const good[] = {
        "bob@example.com", "Bob.Smith@Example.com", "a@b.co", "o'hara@example.com",
        "x!#$%&'*-/=?^_`{|}~@example.com", "1@1.example", NULL,
    };
    static const char *const bad[] = {
        "bob", "@example.com", "bob@", "bob@localhost", "b+tag@example.com",
        ".bob@example.com", "bob.@example.com", "b..ob@example.com", "b ob@example.com",
        "\"bob\"@example.com", "b@b@example.com", "b(c)@example.com", "b,c@example.com",
        "b\xc3\xa9@example.com", "bob@exa_mple.com", "", NULL,
    };
    for (int i = 0; good[i]; i++)
        test_assert(dir_address_valid(good[i]) == 1);
    for (int i = 0; bad[i]; i++)
        test_assert(dir_address_valid(bad[i]) == 0);
    test_assert(dir_address_valid(NULL) == 0);
    char local[80], addr[400];
    make_string(local, 'x', 64);
    snprintf(addr, sizeof addr, "%s@example.com", local);
    test_assert(dir_address_valid(addr) == 1);
    make_string(local, 'x', 65);
    snprintf(addr, sizeof addr, "%s@example.com", local);
    test_assert(dir_address_valid(addr) == 0);
    test_end();
}

/* ----------------------------------------------------------------- accounts */

static void test_accounts(void)
{
    test_begin("accounts: bad address, unknown domain, duplicate, case, set, del");
    struct directory *d = open_fresh();
    if (!d) {
        test_end();
        return;
    }
    const char *err = NULL;
    test_assert(dir_domain_add(d, "example.com", NULL) == 0);
    test_assert(dir_account_add(d, "bob+x@example.com", "pw123456", PLAN_FREE, &err) == -1);
    test_assert(err && strstr(err, "malformed"));
    test_assert(dir_account_add(d, "bob@other.example", "pw123456", PLAN_FREE, &err) == 2);
    test_assert(err && strstr(err, "unknown domain"));
    test_assert(dir_account_add(d, "bob@example.com", "", PLAN_FREE, &err) == -1);
    test_assert(dir_account_add(d, "Bob@Example.com", "pw123456", PLAN_BUSINESS, &err) == 0);
    test_assert(dir_account_add(d, "bob@example.com", "pw123456", PLAN_FREE, &err) == 1);
    test_assert(err && strstr(err, "exists"));
    test_assert(dir_account_add(d, "BOB@EXAMPLE.COM", "pw123456", PLAN_FREE, &err) == 1);

    struct dir_account a;
    test_assert(dir_account_get(d, "bOb@example.COM", &a) == 0);
    test_assert_streq(a.address, "bob@example.com");
    test_assert(a.plan == PLAN_BUSINESS);
    test_assert(a.daily_messages == PLAN_BUSINESS_MESSAGES);
    test_assert(a.daily_recipients == PLAN_BUSINESS_RECIPIENTS);
    test_assert(a.imap_enabled == 1 && a.pop_enabled == 1 && a.two_factor == 0);
    test_assert(a.created > 0 && a.created <= time(NULL));
    test_assert(dir_account_get(d, "nobody@example.com", &a) == 1);

    /* an alias address cannot become an account and vice versa */
    test_assert(dir_alias_add(d, "info@example.com", "bob@example.com", NULL) == 0);
    test_assert(dir_account_add(d, "info@example.com", "pw123456", PLAN_FREE, &err) == 1);
    test_assert(dir_alias_add(d, "BOB@example.com", "bob@example.com", &err) == 1);

    /* set: plan, custom limit, flags */
    test_assert(dir_account_set(d, "bob@example.com", PLAN_FREE, -1, 0, -1, 1, NULL) == 0);
    test_assert(dir_account_get(d, "bob@example.com", &a) == 0);
    test_assert(a.plan == PLAN_FREE && a.daily_messages == PLAN_FREE_MESSAGES);
    test_assert(a.imap_enabled == 0 && a.pop_enabled == 1 && a.two_factor == 1);
    test_assert(dir_account_set(d, "bob@example.com", -1, 42, -1, 0, -1, NULL) == 0);
    test_assert(dir_account_get(d, "bob@example.com", &a) == 0);
    test_assert(a.plan == PLAN_CUSTOM && a.daily_messages == 42 && a.daily_recipients == 42);
    test_assert(a.imap_enabled == 0 && a.pop_enabled == 0 && a.two_factor == 1);
    test_assert(dir_account_set(d, "bob@example.com", PLAN_BUSINESS, -1, -1, -1, -1, NULL) == 0);
    test_assert(dir_account_get(d, "bob@example.com", &a) == 0);
    test_assert(a.plan == PLAN_BUSINESS && a.daily_recipients == PLAN_BUSINESS_RECIPIENTS);
    test_assert(dir_account_set(d, "bob@example.com", 7, -1, -1, -1, -1, NULL) == -1);
    test_assert(dir_account_set(d, "bob@example.com", -1, -1, 2, -1, -1, NULL) == -1);
    test_assert(dir_account_set(d, "no@example.com", -1, 5, -1, -1, -1, &err) == 1);

    /* del removes aliases and app passwords */
    char pw[17];
    test_assert(dir_apppass_create(d, "bob@example.com", "phone", pw, NULL) == 0);
    test_assert(dir_account_del(d, "BOB@example.com", NULL) == 0);
    test_assert(dir_account_del(d, "bob@example.com", &err) == 1);
    test_assert(raw_int("SELECT count(*) FROM aliases") == 0);
    test_assert(raw_int("SELECT count(*) FROM app_passwords") == 0);
    dir_close(&d);
    test_end();
}

/* ----------------------------------------------------------- authentication */

static void test_authenticate(void)
{
    test_begin("authenticate: ok, wrong, unknown user, case-insensitive user");
    struct directory *d = open_with_bob();
    if (!d) {
        test_end();
        return;
    }
    char acct[320], app[128];
    test_assert(dir_authenticate(d, "bob@example.com", "correct horse", acct, app) ==
                DIR_AUTH_OK);
    test_assert_streq(acct, "bob@example.com");
    test_assert_streq(app, "");
    test_assert(dir_authenticate(d, "BOB@Example.com", "correct horse", acct, NULL) ==
                DIR_AUTH_OK);
    test_assert_streq(acct, "bob@example.com");
    test_assert(dir_authenticate(d, "bob@example.com", "Correct horse", acct, app) ==
                DIR_AUTH_FAIL);
    test_assert(dir_authenticate(d, "bob@example.com", "", acct, app) == DIR_AUTH_FAIL);
    test_assert(dir_authenticate(d, "alice@example.com", "correct horse", acct, app) ==
                DIR_AUTH_FAIL);
    test_assert(dir_authenticate(d, "not an address", "x", acct, app) == DIR_AUTH_FAIL);
    char huge[2000];
    make_string(huge, 'a', sizeof huge - 1);
    test_assert(dir_authenticate(d, huge, "x", acct, app) == DIR_AUTH_FAIL);
    test_assert(dir_authenticate(d, "bob@example.com", huge, acct, app) == DIR_AUTH_FAIL);
    /* the hash is argon2id and the password itself is not stored */
    test_assert(raw_int("SELECT count(*) FROM accounts WHERE password_hash LIKE '$argon2id$%'")
                == 1);
    test_assert(raw_int("SELECT count(*) FROM accounts WHERE instr(password_hash, 'horse')")
                == 0);
    /* set_password */
    test_assert(dir_account_set_password(d, "bob@example.com", "new secret", NULL) == 0);
    test_assert(dir_authenticate(d, "bob@example.com", "correct horse", acct, app) ==
                DIR_AUTH_FAIL);
    test_assert(dir_authenticate(d, "bob@example.com", "new secret", acct, app) == DIR_AUTH_OK);
    test_assert(dir_account_set_password(d, "x@example.com", "new secret", NULL) == 1);
    dir_close(&d);
    test_end();
}

static void test_argon2_defaults(void)
{
    test_begin("authenticate with the default argon2id parameters (t=2 m=19456 p=1)");
    dir_set_argon2_params(2, 19456, 1);
    struct directory *d = open_fresh();
    if (d) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        test_assert(dir_domain_add(d, "example.com", NULL) == 0);
        test_assert(dir_account_add(d, "bob@example.com", "correct horse", PLAN_FREE, NULL)
                    == 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        char acct[320];
        test_assert(dir_authenticate(d, "bob@example.com", "correct horse", acct, NULL) ==
                    DIR_AUTH_OK);
        test_assert(dir_authenticate(d, "bob@example.com", "wrong", acct, NULL) ==
                    DIR_AUTH_FAIL);
        test_assert(raw_int("SELECT count(*) FROM accounts WHERE password_hash"
                            " LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'") == 1);
        printf("     argon2id default hash + insert: %.0f ms\n",
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        dir_close(&d);
    }
    dir_set_argon2_params(FAST_T, FAST_M, FAST_P);
    test_end();
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_verified_cache(void)
{
    test_begin("a verified password is remembered; wrong ones and changed hashes are not");
    dir_set_argon2_params(2, 19456, 1);
    char *h1 = dir_passwd_hash("correct horse");
    char *h2 = dir_passwd_hash("correct horse");   /* another salt: another stored hash */
    test_assert(h1 && h2 && strcmp(h1, h2) != 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    test_assert(dir_passwd_verify(h1, "correct horse") == 1);
    double first = ms_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++)
        test_assert(dir_passwd_verify(h1, "correct horse") == 1);
    double again = ms_since(&t0) / 100;
    printf("     verify: %.1f ms with argon2id, %.4f ms remembered\n", first, again);
    test_assert(dir_passwd_verify(h1, "correct horsE") == 0);
    test_assert(dir_passwd_verify(h1, "") == 0);
    test_assert(dir_passwd_verify(h2, "wrong") == 0);
    test_assert(dir_passwd_verify(h2, "correct horse") == 1);
    free(h1);
    free(h2);
    dir_set_argon2_params(FAST_T, FAST_M, FAST_P);
    test_end();
}

/* ------------------------------------------------------------ app passwords */

static void test_two_factor(void)
{
    test_begin("two-factor: main password refused, app passwords ok, revoke, passwd");
    struct directory *d = open_with_bob();
    if (!d) {
        test_end();
        return;
    }
    char acct[320], app[128], pw1[17], pw2[17];
    const char *err = NULL;
    test_assert(dir_account_set(d, "bob@example.com", -1, -1, -1, -1, 1, NULL) == 0);
    test_assert(dir_authenticate(d, "bob@example.com", "correct horse", acct, app) ==
                DIR_AUTH_APP_PASSWORD_REQUIRED);
    test_assert(dir_authenticate(d, "bob@example.com", "wrong horse", acct, app) ==
                DIR_AUTH_FAIL);

    test_assert(dir_apppass_create(d, "bob@example.com", "Thunderbird", pw1, NULL) == 0);
    test_assert(strlen(pw1) == 16);
    for (int i = 0; i < 16; i++)
        test_assert(pw1[i] >= 'a' && pw1[i] <= 'z');
    test_assert(dir_apppass_create(d, "bob@example.com", "iPhone", pw2, NULL) == 0);
    test_assert(strcmp(pw1, pw2) != 0);
    test_assert(dir_apppass_create(d, "bob@example.com", "iPhone", pw2, &err) == 2);
    test_assert(dir_apppass_create(d, "nobody@example.com", "x", pw2, &err) == 1);
    test_assert(dir_apppass_create(d, "bob@example.com", "", pw2, &err) == -1);
    test_assert(dir_apppass_create(d, "bob@example.com", "a\nb", pw2, &err) == -1);
    char name[120];
    make_string(name, 'n', 100);
    test_assert(dir_apppass_create(d, "bob@example.com", name, pw2, &err) == 0);
    make_string(name, 'n', 101);
    test_assert(dir_apppass_create(d, "bob@example.com", name, pw2, &err) == -1);
    test_assert(dir_apppass_count(d, "bob@example.com") == 3);
    /* stored only as a keyed hash */
    test_assert(raw_int("SELECT count(*) FROM app_passwords WHERE length(hash) = 32") == 3);

    test_assert(dir_authenticate(d, "bob@example.com", pw1, acct, app) == DIR_AUTH_OK);
    test_assert_streq(acct, "bob@example.com");
    test_assert_streq(app, "Thunderbird");
    test_assert(raw_int("SELECT last_used FROM app_passwords WHERE name = 'Thunderbird'") > 0);
    test_assert(raw_int("SELECT last_used FROM app_passwords WHERE name = 'iPhone'") == 0);

    /* revoked: refused at once */
    test_assert(dir_apppass_revoke(d, "bob@example.com", "Thunderbird", NULL) == 0);
    test_assert(dir_apppass_revoke(d, "bob@example.com", "Thunderbird", &err) == 2);
    test_assert(dir_apppass_revoke(d, "nobody@example.com", "Thunderbird", &err) == 1);
    test_assert(dir_authenticate(d, "bob@example.com", pw1, acct, app) == DIR_AUTH_FAIL);

    /* passwd revokes every app password */
    char pw3[17];
    test_assert(dir_apppass_create(d, "bob@example.com", "laptop", pw3, NULL) == 0);
    test_assert(dir_authenticate(d, "bob@example.com", pw3, acct, app) == DIR_AUTH_OK);
    test_assert(dir_account_set_password(d, "bob@example.com", "another one", NULL) == 0);
    test_assert(dir_apppass_count(d, "bob@example.com") == 0);
    test_assert(dir_authenticate(d, "bob@example.com", pw3, acct, app) == DIR_AUTH_FAIL);
    test_assert(dir_authenticate(d, "bob@example.com", "another one", acct, app) ==
                DIR_AUTH_APP_PASSWORD_REQUIRED);
    dir_close(&d);
    test_end();
}

static void apppass_count_cb(const char *name, time_t created, time_t last_used, void *arg)
{
    int *n = arg;
    (void)name;
    (void)created;
    (void)last_used;
    (*n)++;
}

static void test_apppass_formats(void)
{
    test_begin("app passwords: spaces and upper case accepted, other accounts not");
    struct directory *d = open_with_bob();
    if (!d) {
        test_end();
        return;
    }
    test_assert(dir_account_add(d, "alice@example.com", "alice pw!", PLAN_FREE, NULL) == 0);
    char pw[17], acct[320], app[128], typed[40];
    test_assert(dir_apppass_create(d, "bob@example.com", "mail", pw, NULL) == 0);
    snprintf(typed, sizeof typed, "%.4s %.4s %.4s %.4s", pw, pw + 4, pw + 8, pw + 12);
    test_assert(dir_authenticate(d, "bob@example.com", typed, acct, app) == DIR_AUTH_OK);
    for (size_t i = 0; typed[i]; i++)
        if (typed[i] != ' ')
            typed[i] = (char)(typed[i] - 'a' + 'A');
    test_assert(dir_authenticate(d, "bob@example.com", typed, acct, app) == DIR_AUTH_OK);
    test_assert_streq(app, "mail");
    /* another account's app password does not work for alice */
    test_assert(dir_authenticate(d, "alice@example.com", pw, acct, app) == DIR_AUTH_FAIL);
    /* one letter off, 15 and 17 letters */
    char off[20];
    snprintf(off, sizeof off, "%s", pw);
    off[0] = off[0] == 'a' ? 'b' : 'a';
    test_assert(dir_authenticate(d, "bob@example.com", off, acct, app) == DIR_AUTH_FAIL);
    snprintf(off, sizeof off, "%.15s", pw);
    test_assert(dir_authenticate(d, "bob@example.com", off, acct, app) == DIR_AUTH_FAIL);
    snprintf(off, sizeof off, "%sa", pw);
    test_assert(dir_authenticate(d, "bob@example.com", off, acct, app) == DIR_AUTH_FAIL);
    int n = 0;
    test_assert(dir_apppass_list(d, "bob@example.com", apppass_count_cb, &n) == 0 && n == 1);
    test_assert(dir_apppass_list(d, "nobody@example.com", apppass_count_cb, &n) == -1);
    dir_close(&d);
    test_end();
}

/* ---------------------------------------------------------------- resolving */

static void test_resolve(void)
{
    test_begin("resolve: exact, alias, plus, plus through alias, catch-all, none, not local");
    struct directory *d = open_with_bob();
    if (!d) {
        test_end();
        return;
    }
    char acct[320];
    test_assert(dir_domain_add(d, "other.example", NULL) == 0);
    test_assert(dir_account_add(d, "carol@other.example", "carol pw", PLAN_FREE, NULL) == 0);
    test_assert(dir_alias_add(d, "sales@example.com", "carol@other.example", NULL) == 0);
    test_assert(dir_alias_add(d, "sales@example.com", "bob@example.com", NULL) == 1);
    test_assert(dir_alias_add(d, "x@nowhere.example", "bob@example.com", NULL) == 2);
    test_assert(dir_alias_add(d, "x@example.com", "ghost@example.com", NULL) == 2);
    test_assert(dir_alias_add(d, "x+y@example.com", "bob@example.com", NULL) == -1);
    test_assert(dir_alias_add(d, "@bad", "bob@example.com", NULL) == -1);

    test_assert(dir_resolve_rcpt(d, "bob@example.com", acct) == DIR_RCPT_LOCAL);
    test_assert_streq(acct, "bob@example.com");
    test_assert(dir_resolve_rcpt(d, "BOB@EXAMPLE.COM", acct) == DIR_RCPT_LOCAL);
    test_assert(dir_resolve_rcpt(d, "Sales@example.com", acct) == DIR_RCPT_LOCAL);
    test_assert_streq(acct, "carol@other.example");
    test_assert(dir_resolve_rcpt(d, "bob+news@example.com", acct) == DIR_RCPT_LOCAL);
    test_assert_streq(acct, "bob@example.com");
    test_assert(dir_resolve_rcpt(d, "bob+a+b@example.com", acct) == DIR_RCPT_LOCAL);
    test_assert(dir_resolve_rcpt(d, "sales+q3@example.com", acct) == DIR_RCPT_LOCAL);
    test_assert_streq(acct, "carol@other.example");
    test_assert(dir_resolve_rcpt(d, "nobody@example.com", acct) == DIR_RCPT_NO_SUCH_USER);
    test_assert(dir_resolve_rcpt(d, "+tag@example.com", acct) == DIR_RCPT_NO_SUCH_USER);
    test_assert(dir_resolve_rcpt(d, "bob@elsewhere.example", acct) == DIR_RCPT_NOT_LOCAL);
    test_assert(dir_resolve_rcpt(d, "bob", acct) == DIR_RCPT_NOT_LOCAL);
    test_assert(dir_resolve_rcpt(d, "", acct) == DIR_RCPT_NOT_LOCAL);
    char huge[1000];
    make_string(huge, 'a', sizeof huge - 1);
    test_assert(dir_resolve_rcpt(d, huge, acct) == DIR_RCPT_NOT_LOCAL);

    /* catch-all: after exact, alias and plus */
    test_assert(dir_alias_add(d, "@Example.com", "carol@other.example", NULL) == 0);
    test_assert(dir_alias_add(d, "@example.com", "bob@example.com", NULL) == 1);
    test_assert(dir_resolve_rcpt(d, "nobody@example.com", acct) == DIR_RCPT_LOCAL);
    test_assert_streq(acct, "carol@other.example");
    test_assert(dir_resolve_rcpt(d, "bob+x@example.com", acct) == DIR_RCPT_LOCAL);
    test_assert_streq(acct, "bob@example.com");
    test_assert(dir_resolve_rcpt(d, "nobody@other.example", acct) == DIR_RCPT_NO_SUCH_USER);

    test_assert(dir_alias_del(d, "@EXAMPLE.COM", NULL) == 0);
    test_assert(dir_alias_del(d, "@example.com", NULL) == 1);
    test_assert(dir_resolve_rcpt(d, "nobody@example.com", acct) == DIR_RCPT_NO_SUCH_USER);
    dir_close(&d);
    test_end();
}

/* ------------------------------------------------------------------ senders */

static void test_sender_allowed(void)
{
    test_begin("sender_allowed: own, +tag, alias, not catch-all, not others");
    struct directory *d = open_with_bob();
    if (!d) {
        test_end();
        return;
    }
    test_assert(dir_account_add(d, "alice@example.com", "alice pw!", PLAN_FREE, NULL) == 0);
    test_assert(dir_alias_add(d, "info@example.com", "bob@example.com", NULL) == 0);
    test_assert(dir_alias_add(d, "@example.com", "bob@example.com", NULL) == 0);
    test_assert(dir_sender_allowed(d, "bob@example.com", "bob@example.com") == 1);
    test_assert(dir_sender_allowed(d, "bob@example.com", "Bob@Example.COM") == 1);
    test_assert(dir_sender_allowed(d, "bob@example.com", "bob+lists@example.com") == 1);
    test_assert(dir_sender_allowed(d, "bob@example.com", "info@example.com") == 1);
    test_assert(dir_sender_allowed(d, "bob@example.com", "info+x@example.com") == 1);
    test_assert(dir_sender_allowed(d, "bob@example.com", "random@example.com") == 0);
    test_assert(dir_sender_allowed(d, "bob@example.com", "@example.com") == 0);
    test_assert(dir_sender_allowed(d, "bob@example.com", "alice@example.com") == 0);
    test_assert(dir_sender_allowed(d, "alice@example.com", "info@example.com") == 0);
    test_assert(dir_sender_allowed(d, "bob@example.com", "bob@example.org") == 0);
    test_assert(dir_sender_allowed(d, "bob@example.com", "") == 0);
    dir_close(&d);
    test_end();
}

/* -------------------------------------------------------------- send limits */

static void test_send_limits_custom(void)
{
    test_begin("send limits: messages and recipients at limit, limit+1, after 24h");
    struct directory *d = open_with_bob();
    if (!d) {
        test_end();
        return;
    }
    struct dir_usage u;
    time_t t0 = 1700000000;
    test_assert(dir_account_set(d, "bob@example.com", -1, 5, -1, -1, -1, NULL) == 0);
    /* messages: 5 of 1 recipient each */
    for (int i = 0; i < 5; i++)
        test_assert(dir_send_count(d, "bob@example.com", 1, t0 + i, &u) == 0);
    test_assert(u.messages == 5 && u.recipients == 5);
    test_assert(u.limit_messages == 5 && u.limit_recipients == 5);
    test_assert(dir_send_count(d, "bob@example.com", 0, t0 + 10, &u) == 1); /* limit + 1 */
    test_assert(u.messages == 5);
    test_assert(dir_send_usage(d, "BOB@example.com", t0 + 10, &u) == 0 && u.messages == 5);
    /* rolling: at t0 + 86399 the first still counts; at t0 + 86400 it is gone */
    test_assert(dir_send_count(d, "bob@example.com", 0, t0 + 86399, &u) == 1);
    test_assert(dir_send_count(d, "bob@example.com", 0, t0 + 86400, &u) == 0);
    test_assert(u.messages == 5 && u.recipients == 4);
    /* old rows are pruned as we go */
    test_assert(raw_int("SELECT count(*) FROM send_log WHERE time <= 1700000000") == 0);

    /* recipients: a fresh day */
    time_t t1 = t0 + 3 * 86400;
    test_assert(dir_send_count(d, "bob@example.com", 4, t1, &u) == 0);
    test_assert(dir_send_count(d, "bob@example.com", 2, t1, &u) == 1); /* 6 > 5 */
    test_assert(u.recipients == 4);
    test_assert(dir_send_count(d, "bob@example.com", 1, t1, &u) == 0); /* exactly 5 */
    test_assert(u.recipients == 5 && u.messages == 2);
    /* two sends in the same second share one row of the log */
    test_assert(raw_int("SELECT count(*) FROM send_log WHERE time = 1700259200") == 1);
    test_assert(raw_int("SELECT messages FROM send_log WHERE time = 1700259200") == 2);
    test_assert(dir_send_count(d, "bob@example.com", 1, t1 + 1, &u) == 1);
    test_assert(dir_send_count(d, "bob@example.com", 5, t1 + 86400, &u) == 0);

    test_assert(dir_send_count(d, "nobody@example.com", 1, t1, &u) == -1);
    test_assert(dir_send_count(d, "bob@example.com", -1, t1, &u) == -1);
    test_assert(dir_send_usage(d, "nobody@example.com", t1, &u) == -1);
    dir_close(&d);
    test_end();
}

static void test_send_limits_plans(void)
{
    test_begin("send limits: free plan 500/500, business 10000 recipients");
    struct directory *d = open_with_bob();
    if (!d) {
        test_end();
        return;
    }
    struct dir_usage u;
    time_t t0 = 1800000000;
    /* free: 500 recipients at the limit, one more refused */
    test_assert(dir_send_count(d, "bob@example.com", PLAN_FREE_RECIPIENTS, t0, &u) == 0);
    test_assert(dir_send_count(d, "bob@example.com", 1, t0, &u) == 1);
    test_assert(u.recipients == PLAN_FREE_RECIPIENTS && u.limit_messages == PLAN_FREE_MESSAGES);
    /* free: 500 messages (0 recipients each, only the message limit binds) */
    time_t t1 = t0 + 86400;
    int ok = 0;
    for (int i = 0; i < PLAN_FREE_MESSAGES; i++)
        ok += dir_send_count(d, "bob@example.com", 0, t1, NULL) == 0;
    test_assert(ok == PLAN_FREE_MESSAGES);
    test_assert(dir_send_count(d, "bob@example.com", 0, t1, &u) == 1);
    test_assert(u.messages == PLAN_FREE_MESSAGES);
    /* business */
    test_assert(dir_account_set(d, "bob@example.com", PLAN_BUSINESS, -1, -1, -1, -1, NULL) == 0);
    time_t t2 = t1 + 86400;
    test_assert(dir_send_count(d, "bob@example.com", PLAN_BUSINESS_RECIPIENTS, t2, &u) == 0);
    test_assert(dir_send_count(d, "bob@example.com", 1, t2, &u) == 1);
    test_assert(u.limit_messages == PLAN_BUSINESS_MESSAGES);
    dir_close(&d);
    test_end();
}

static void test_two_connections(void)
{
    test_begin("two connections: a revoke on one is seen by the next login on the other");
    struct directory *d1 = open_with_bob();
    struct directory *d2 = open_fresh();
    char pw[17], acct[320];
    if (d1 && d2) {
        test_assert(dir_apppass_create(d1, "bob@example.com", "phone", pw, NULL) == 0);
        test_assert(dir_authenticate(d2, "bob@example.com", pw, acct, NULL) == DIR_AUTH_OK);
        test_assert(dir_apppass_revoke(d1, "bob@example.com", "phone", NULL) == 0);
        test_assert(dir_authenticate(d2, "bob@example.com", pw, acct, NULL) == DIR_AUTH_FAIL);
        test_assert(dir_send_count(d1, "bob@example.com", 3, 1000, NULL) == 0);
        struct dir_usage u;
        test_assert(dir_send_usage(d2, "bob@example.com", 1000, &u) == 0 && u.recipients == 3);
    }
    dir_close(&d1);
    dir_close(&d2);
    test_end();
}

int main(void)
{
    log_set_stderr(0);
    dir_set_argon2_params(FAST_T, FAST_M, FAST_P);
    return test_run((test_fn[]){
        test_schema_create_and_reopen,
        test_schema_wal_and_newer_refused,
        test_domains,
        test_address_rules,
        test_accounts,
        test_authenticate,
        test_argon2_defaults,
        test_verified_cache,
        test_two_factor,
        test_apppass_formats,
        test_resolve,
        test_sender_allowed,
        test_send_limits_custom,
        test_send_limits_plans,
        test_throttle_limits_account,
        test_throttle_limits_addr,
        test_throttle_success_clears_account,
        test_throttle_bounded,
        test_two_connections,
        test_cli_domain_account,
        test_cli_alias_apppass,
        test_pop_options_migration,
        test_pop_options_set_get,
        test_pop_option_names,
        test_pop_options_cli,
        test_quota_parse_format,
        test_quota_set_get_migration,
        test_quota_cli,
        NULL,
    });
}
