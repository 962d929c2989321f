/* test_pop_options: Gmail's per-account POP options in the directory
 * (dir_account_set_pop, the pop_* fields of dir_account_get/list, the names)
 * and the schema migration that added them (version 1 -> 2 keeps accounts
 * and gives them all / 0 / keep); and `roost account set --pop-scope
 * --pop-after` / `roost account show` through cli_account_main. */
#include "auth/directory.h"
#include "auth_tests.h"
#include "cli/cli.h"
#include "test.h"
#include "test_loop.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BOB "bob@example.com"
#define T0 1700000000

static char *pop_db_path(void)
{
    static char p[4200];
    snprintf(p, sizeof p, "%s/directory.sqlite", test_tmpdir());
    return p;
}

static long long pop_raw_int(const char *sql)
{
    return test_db_int(pop_db_path(), sql);
}

static int pop_raw_exec(const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(pop_db_path(), &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

/* A fresh directory with example.com and bob@example.com. */
static struct directory *open_with_account(void)
{
    const char *err = NULL;
    struct directory *d = dir_open(test_tmpdir(), &err);
    test_assert(d != NULL);
    if (!d)
        return NULL;
    test_assert(dir_domain_add(d, "example.com", &err) == 0);
    test_assert(dir_account_add(d, BOB, "correct horse", PLAN_BUSINESS, &err) == 0);
    return d;
}

static int pop_is(struct directory *d, enum dir_pop_scope scope, time_t since,
                  enum dir_pop_after after)
{
    struct dir_account a;
    if (dir_account_get(d, BOB, &a) != 0)
        return 0;
    return a.pop_scope == scope && a.pop_since == since && a.pop_after == after;
}

void test_pop_options_migration(void)
{
    test_begin("pop options: a version-1 directory is migrated, accounts kept, defaults");
    struct directory *d = open_with_account();
    if (!d) {
        test_end();
        return;
    }
    const char *err = NULL;
    test_assert(dir_schema_version(d) == 5);
    test_assert(dir_account_set(d, BOB, -1, -1, -1, 0, 1, &err) == 0);
    test_assert(dir_account_set_pop(d, BOB, POP_SCOPE_FROM_NOW, POP_AFTER_DELETE, T0, &err) ==
                0);
    dir_close(&d);

    /* turn it into the version-1 database an older roost left behind */
    test_assert(pop_raw_exec("ALTER TABLE accounts DROP COLUMN pop_scope;"
                             "ALTER TABLE accounts DROP COLUMN pop_since;"
                             "ALTER TABLE accounts DROP COLUMN pop_after;"
                             "ALTER TABLE accounts DROP COLUMN quota_bytes;"
                             "ALTER TABLE accounts DROP COLUMN forward_to;"
                             "ALTER TABLE accounts DROP COLUMN forward_keep;"
                             "DELETE FROM schema_version WHERE version >= 2;") == 0);
    test_assert(pop_raw_int("SELECT max(version) FROM schema_version") == 1);
    test_assert(pop_raw_int("SELECT count(*) FROM pragma_table_info('accounts')"
                            " WHERE name LIKE 'pop_%'") == 0);

    d = dir_open(test_tmpdir(), &err);
    test_assert(d != NULL);
    if (!d) {
        test_end();
        return;
    }
    test_assert(dir_schema_version(d) == 5);
    struct dir_account a;
    test_assert(dir_account_get(d, BOB, &a) == 0);
    test_assert(a.plan == PLAN_BUSINESS && a.pop_enabled == 0 && a.imap_enabled == 1 &&
                a.two_factor == 1);
    test_assert(a.pop_scope == POP_SCOPE_ALL && a.pop_since == 0 &&
                a.pop_after == POP_AFTER_KEEP);
    char acct[320];
    test_assert(dir_authenticate(d, BOB, "correct horse", acct, NULL) ==
                DIR_AUTH_APP_PASSWORD_REQUIRED);
    test_assert(pop_raw_int("SELECT count(*) FROM schema_version") == 5);
    /* the new columns refuse values the code does not know */
    test_assert(pop_raw_exec("UPDATE accounts SET pop_scope = 'sometimes'") == -1);
    test_assert(pop_raw_exec("UPDATE accounts SET pop_after = 'shred'") == -1);
    test_assert(pop_raw_exec("UPDATE accounts SET pop_after = 'archive'") == 0);
    test_assert(pop_is(d, POP_SCOPE_ALL, 0, POP_AFTER_ARCHIVE));
    dir_close(&d);

    /* reopening at the current version runs no migration */
    d = dir_open(test_tmpdir(), &err);
    test_assert(d && dir_schema_version(d) == 5);
    test_assert(pop_raw_int("SELECT count(*) FROM schema_version") == 5);
    dir_close(&d);
    test_end();
}

struct seen_list {
    int n, from_now;
    time_t since;
};

static void list_cb(const struct dir_account *a, void *arg)
{
    struct seen_list *s = arg;
    s->n++;
    if (a->pop_scope == POP_SCOPE_FROM_NOW && a->pop_after == POP_AFTER_MARK_READ) {
        s->from_now++;
        s->since = a->pop_since;
    }
}

void test_pop_options_set_get(void)
{
    test_begin("pop options: set and get each value; from-now records now, all clears it");
    struct directory *d = open_with_account();
    if (!d) {
        test_end();
        return;
    }
    const char *err = NULL;
    test_assert(pop_is(d, POP_SCOPE_ALL, 0, POP_AFTER_KEEP));   /* a new account */

    test_assert(dir_account_set_pop(d, BOB, POP_SCOPE_FROM_NOW, -1, T0, &err) == 0);
    test_assert(pop_is(d, POP_SCOPE_FROM_NOW, T0, POP_AFTER_KEEP));
    static const enum dir_pop_after afters[] = { POP_AFTER_MARK_READ, POP_AFTER_ARCHIVE,
                                                 POP_AFTER_DELETE, POP_AFTER_KEEP };
    for (size_t i = 0; i < sizeof afters / sizeof afters[0]; i++) {
        test_assert(dir_account_set_pop(d, BOB, -1, (int)afters[i], T0 + 99, &err) == 0);
        test_assert(pop_is(d, POP_SCOPE_FROM_NOW, T0, afters[i]));   /* scope left alone */
    }
    /* choosing from-now again starts from the new now */
    test_assert(dir_account_set_pop(d, "Bob@Example.COM", POP_SCOPE_FROM_NOW,
                                    POP_AFTER_MARK_READ, T0 + 60, &err) == 0);
    test_assert(pop_is(d, POP_SCOPE_FROM_NOW, T0 + 60, POP_AFTER_MARK_READ));
    struct seen_list s = { 0, 0, 0 };
    test_assert(dir_account_list(d, list_cb, &s) == 0);
    test_assert(s.n == 1 && s.from_now == 1 && s.since == T0 + 60);

    /* -1 / -1 leaves everything */
    test_assert(dir_account_set_pop(d, BOB, -1, -1, T0 + 500, &err) == 0);
    test_assert(pop_is(d, POP_SCOPE_FROM_NOW, T0 + 60, POP_AFTER_MARK_READ));
    /* all clears the time */
    test_assert(dir_account_set_pop(d, BOB, POP_SCOPE_ALL, -1, T0 + 500, &err) == 0);
    test_assert(pop_is(d, POP_SCOPE_ALL, 0, POP_AFTER_MARK_READ));
    test_assert(pop_raw_int("SELECT pop_since FROM accounts") == 0);

    /* unknown accounts and bad values change nothing */
    err = NULL;
    test_assert(dir_account_set_pop(d, "nobody@example.com", POP_SCOPE_ALL, -1, T0, &err) == 1);
    test_assert(err && strstr(err, "no such account"));
    test_assert(dir_account_set_pop(d, "nobody@example.com", -1, -1, T0, &err) == 1);
    test_assert(dir_account_set_pop(d, NULL, -1, -1, T0, &err) == 1);
    test_assert(dir_account_set_pop(d, BOB, 2, -1, T0, &err) == -1);
    test_assert(dir_account_set_pop(d, BOB, -2, -1, T0, &err) == -1);
    test_assert(dir_account_set_pop(d, BOB, -1, 4, T0, &err) == -1);
    test_assert(dir_account_set_pop(d, BOB, -1, -2, T0, &err) == -1);
    test_assert(dir_account_set_pop(d, BOB, POP_SCOPE_FROM_NOW, -1, 0, &err) == -1);
    test_assert(pop_is(d, POP_SCOPE_ALL, 0, POP_AFTER_MARK_READ));

    /* other account changes leave the POP options alone */
    test_assert(dir_account_set(d, BOB, PLAN_FREE, -1, -1, 0, -1, &err) == 0);
    test_assert(pop_is(d, POP_SCOPE_ALL, 0, POP_AFTER_MARK_READ));
    dir_close(&d);
    test_end();
}

void test_pop_option_names(void)
{
    test_begin("pop options: names");
    test_assert_streq(dir_pop_scope_name(POP_SCOPE_ALL), "all");
    test_assert_streq(dir_pop_scope_name(POP_SCOPE_FROM_NOW), "from-now");
    test_assert_streq(dir_pop_after_name(POP_AFTER_KEEP), "keep");
    test_assert_streq(dir_pop_after_name(POP_AFTER_MARK_READ), "mark-read");
    test_assert_streq(dir_pop_after_name(POP_AFTER_ARCHIVE), "archive");
    test_assert_streq(dir_pop_after_name(POP_AFTER_DELETE), "delete");
    test_assert_streq(dir_pop_scope_name((enum dir_pop_scope)2), "?");
    test_assert_streq(dir_pop_after_name((enum dir_pop_after)4), "?");
    test_assert_streq(dir_pop_after_name((enum dir_pop_after)-1), "?");
    test_end();
}

/* ---------------------------------------------------------------------- CLI */

struct cli_run {
    int rc;
    char out[8192], err[4096];
};

static void slurp_file(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs `roost account ARGS...` with stdout and stderr captured. */
static void account_cli(struct cli_run *r, const char *const *args)
{
    char out_path[4300], err_path[4300];
    snprintf(out_path, sizeof out_path, "%s/pop-cli.out", test_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/pop-cli.err", test_tmpdir());
    char *argv[16];
    int argc = 0;
    argv[argc++] = (char *)"account";
    while (args[argc - 1] && argc < 15) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    argv[argc] = NULL;
    struct cli_ctx ctx = { test_tmpdir(), NULL };
    fflush(stdout);
    fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    int fout = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int ferr = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fout, 1);
    dup2(ferr, 2);
    r->rc = cli_account_main(argc, argv, &ctx);
    fflush(stdout);
    fflush(stderr);
    dup2(save_out, 1);
    dup2(save_err, 2);
    close(save_out);
    close(save_err);
    close(fout);
    close(ferr);
    slurp_file(out_path, r->out, sizeof r->out);
    slurp_file(err_path, r->err, sizeof r->err);
}

#define CLI(r, ...) account_cli((r), (const char *const[]){ __VA_ARGS__, NULL })

/* 1 when OUT has a line "LABEL<spaces>VALUE" (account show aligns values). */
static int shows(const char *out, const char *label, const char *value)
{
    for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        size_t ll = strlen(label);
        if (strncmp(p, label, ll) != 0)
            continue;
        const char *v = p + ll;
        while (*v == ' ')
            v++;
        size_t vl = strlen(value);
        if (strncmp(v, value, vl) == 0 && (v[vl] == '\n' || v[vl] == '\0'))
            return 1;
    }
    return 0;
}

void test_pop_options_cli(void)
{
    test_begin("pop options: roost account set --pop-scope/--pop-after, account show");
    struct directory *d = open_with_account();
    dir_close(&d);
    static struct cli_run r;

    CLI(&r, "show", BOB);
    test_assert(r.rc == 0);
    test_assert(shows(r.out, "pop scope:", "all"));
    test_assert(shows(r.out, "pop after download:", "keep"));

    time_t before = time(NULL);
    CLI(&r, "set", BOB, "--pop-scope", "from-now", "--pop-after", "archive");
    test_assert(r.rc == 0);
    time_t after = time(NULL);
    const char *err = NULL;
    d = dir_open(test_tmpdir(), &err);
    struct dir_account a;
    test_assert(d && dir_account_get(d, BOB, &a) == 0);
    test_assert(a.pop_scope == POP_SCOPE_FROM_NOW && a.pop_after == POP_AFTER_ARCHIVE);
    test_assert(a.pop_since >= before && a.pop_since <= after);
    dir_close(&d);
    CLI(&r, "show", BOB);
    test_assert(r.rc == 0);
    test_assert(strstr(r.out, "\npop scope:        from-now (mail since ") != NULL);
    char since_text[64];
    struct tm tm;
    test_assert(gmtime_r(&a.pop_since, &tm) != NULL);
    test_assert(strftime(since_text, sizeof since_text, "(mail since %Y-%m-%d %H:%M:%S UTC)",
                         &tm) > 0);
    test_assert(strstr(r.out, since_text) != NULL);
    test_assert(shows(r.out, "pop after download:", "archive"));

    static const char *const afters[] = { "keep", "mark-read", "archive", "delete" };
    for (size_t i = 0; i < 4; i++) {
        CLI(&r, "set", BOB, "--pop-after", afters[i]);
        test_assert(r.rc == 0);
        CLI(&r, "show", BOB);
        test_assert(shows(r.out, "pop after download:", afters[i]));
        test_assert(strstr(r.out, "\npop scope:        from-now (mail since ") != NULL);
    }
    /* together with the existing options */
    CLI(&r, "set", BOB, "--pop-scope", "all", "--pop", "off");
    test_assert(r.rc == 0);
    CLI(&r, "show", BOB);
    test_assert(shows(r.out, "pop scope:", "all"));

    /* bad values: usage (exit 2) naming the accepted values, nothing changed */
    CLI(&r, "set", BOB, "--pop-scope", "sometimes");
    test_assert(r.rc == 2);
    test_assert(strstr(r.err, "all|from-now") != NULL);
    CLI(&r, "set", BOB, "--pop-after", "shred");
    test_assert(r.rc == 2);
    test_assert(strstr(r.err, "keep|mark-read|archive|delete") != NULL);
    CLI(&r, "set", BOB, "--pop-after");
    test_assert(r.rc == 2);
    CLI(&r, "show", BOB);
    test_assert(shows(r.out, "pop scope:", "all"));
    test_assert(shows(r.out, "pop after download:", "delete"));
    /* unknown account */
    CLI(&r, "set", "nobody@example.com", "--pop-after", "keep");
    test_assert(r.rc == 1);
    test_end();
}
