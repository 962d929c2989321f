/* test_quota: the per-account mailbox quota in the directory
 * (dir_quota_parse/format, dir_account_set_quota, the quota_bytes field of
 * dir_account_get, the migration to schema version 3 that adds it with the
 * 15 GiB default) and `roost account set --quota` / `account show`. */
#include "auth/directory.h"
#include "auth_tests.h"
#include "cli/cli.h"
#include "store/store_imap.h"
#include "test.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAROL "carol@example.com"
#define GIB (UINT64_C(1) << 30)
#define MIB (UINT64_C(1) << 20)

struct quota_run {
    int rc;
    char out[8192], err[4096];
};

static void q_slurp(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* `roost account ARGS...` with stdout and stderr captured. */
static void q_cli(struct quota_run *r, const char *const *args)
{
    char out_path[4300], err_path[4300];
    snprintf(out_path, sizeof out_path, "%s/quota-cli.out", test_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/quota-cli.err", test_tmpdir());
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
    q_slurp(out_path, r->out, sizeof r->out);
    q_slurp(err_path, r->err, sizeof r->err);
}
#define QCLI(r, ...) q_cli((r), (const char *const[]){ __VA_ARGS__, NULL })

static struct directory *q_open(void)
{
    const char *err = NULL;
    struct directory *d = dir_open(test_tmpdir(), &err);
    test_assert(d != NULL);
    if (d && dir_domain_exists(d, "example.com") != 1) {
        test_assert(dir_domain_add(d, "example.com", &err) == 0);
        test_assert(dir_account_add(d, CAROL, "correct horse", PLAN_FREE, &err) == 0);
    }
    return d;
}

static int q_exec(const char *sql)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/directory.sqlite", test_tmpdir());
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

void test_quota_parse_format(void)
{
    test_begin("quota: sizes parsed (15G, 500M, 0, unlimited) and formatted");
    uint64_t b = 1;
    test_assert(dir_quota_parse("15G", &b) == 0 && b == 15 * GIB);
    test_assert(dir_quota_parse("15GiB", &b) == 0 && b == 15 * GIB);
    test_assert(dir_quota_parse("500m", &b) == 0 && b == 500 * MIB);
    test_assert(dir_quota_parse("500MB", &b) == 0 && b == 500 * MIB);
    test_assert(dir_quota_parse("1.5G", &b) == 0 && b == 3 * GIB / 2);
    test_assert(dir_quota_parse("64K", &b) == 0 && b == 65536);
    test_assert(dir_quota_parse("1T", &b) == 0 && b == 1024 * GIB);
    test_assert(dir_quota_parse("12345", &b) == 0 && b == 12345);
    test_assert(dir_quota_parse("0", &b) == 0 && b == 0);
    test_assert(dir_quota_parse("unlimited", &b) == 0 && b == 0);
    static const char *const bad[] = { "", "G", "-1", "15X", "1.5", "15 G", "1e9", ".5G",
                                       "99999999999999999999", "9000000T", "15GG", NULL };
    for (int i = 0; bad[i]; i++) {
        b = 7;
        test_assert(dir_quota_parse(bad[i], &b) == -1 && b == 7);
    }
    char out[64];
    dir_quota_format(15 * GIB, out, sizeof out);
    test_assert_streq(out, "15 GiB");
    dir_quota_format(500 * MIB, out, sizeof out);
    test_assert_streq(out, "500 MiB");
    dir_quota_format(3 * GIB / 2, out, sizeof out);
    test_assert_streq(out, "1.50 GiB");
    dir_quota_format(0, out, sizeof out);
    test_assert_streq(out, "unlimited");
    dir_quota_format(100, out, sizeof out);
    test_assert_streq(out, "100 bytes");
    test_assert(DIR_QUOTA_DEFAULT == 15 * GIB);
    test_end();
}

void test_quota_set_get_migration(void)
{
    test_begin("quota: default 15 GiB, set and get, unknown account, v2 -> v3 migration");
    struct directory *d = q_open();
    if (!d) {
        test_end();
        return;
    }
    const char *err = NULL;
    struct dir_account a;
    test_assert(dir_account_get(d, CAROL, &a) == 0 && a.quota_bytes == 15 * GIB);
    test_assert(dir_account_set_quota(d, "Carol@Example.com", 500 * MIB, &err) == 0);
    test_assert(dir_account_get(d, CAROL, &a) == 0 && a.quota_bytes == 500 * MIB);
    test_assert(dir_account_set_quota(d, CAROL, 0, &err) == 0);
    test_assert(dir_account_get(d, CAROL, &a) == 0 && a.quota_bytes == 0);
    test_assert(dir_account_set_quota(d, "nobody@example.com", 1, &err) == 1);
    test_assert(dir_account_set_quota(d, CAROL, UINT64_MAX, &err) == -1);
    /* other changes leave it */
    test_assert(dir_account_set_quota(d, CAROL, 2 * GIB, &err) == 0);
    test_assert(dir_account_set(d, CAROL, PLAN_BUSINESS, -1, 0, -1, -1, &err) == 0);
    test_assert(dir_account_get(d, CAROL, &a) == 0 && a.quota_bytes == 2 * GIB);
    dir_close(&d);
    /* a version-2 directory gets the column with the default */
    test_assert(q_exec("ALTER TABLE accounts DROP COLUMN quota_bytes;"
                       "ALTER TABLE accounts DROP COLUMN forward_to;"
                       "ALTER TABLE accounts DROP COLUMN forward_keep;"
                       "DELETE FROM schema_version WHERE version >= 3;") == 0);
    d = q_open();
    test_assert(d && dir_schema_version(d) == 5);
    test_assert(d && dir_account_get(d, CAROL, &a) == 0 && a.quota_bytes == 15 * GIB &&
                a.plan == PLAN_BUSINESS);
    test_assert(q_exec("UPDATE accounts SET quota_bytes = -5") == -1);
    dir_close(&d);
    test_end();
}

void test_quota_cli(void)
{
    test_begin("quota: roost account set --quota, account show with usage");
    struct directory *d = q_open();
    dir_close(&d);
    static struct quota_run r;
    QCLI(&r, "show", CAROL);
    test_assert(r.rc == 0 && strstr(r.out, "\nquota:            15 GiB (0 bytes used, 0 messages)\n"));
    QCLI(&r, "set", CAROL, "--quota", "500M");
    test_assert(r.rc == 0 && strstr(r.out, "quota=500 MiB"));
    uint32_t uid, uv;
    const char *err = NULL;
    test_assert(store_append(test_tmpdir(), CAROL, "INBOX", "Subject: x\r\n\r\nx\r\n", 17, 0,
                             NULL, 0, 0, &uid, &uv, &err) == 0);
    QCLI(&r, "show", CAROL);
    test_assert(r.rc == 0 && strstr(r.out, "\nquota:            500 MiB (17 bytes used, 1 messages)\n"));
    QCLI(&r, "set", CAROL, "--quota", "0");
    test_assert(r.rc == 0 && strstr(r.out, "quota=unlimited"));
    QCLI(&r, "set", CAROL, "--quota", "lots");
    test_assert(r.rc == 2 && strstr(r.err, "bad value for --quota"));
    QCLI(&r, "set", CAROL, "--quota");
    test_assert(r.rc == 2);
    QCLI(&r, "add", "dave@example.com", "--quota", "1G");
    test_assert(r.rc == 2);
    QCLI(&r, "set", "nobody@example.com", "--quota", "1G");
    test_assert(r.rc != 0);
    test_end();
}
