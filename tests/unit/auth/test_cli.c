/* test_cli: the domain/account/alias/app-password subcommands called
 * directly, with stdin, stdout and stderr redirected to files: exit codes,
 * error texts, and the generated secret alone on the last line. */
#include "auth/directory.h"
#include "auth_tests.h"
#include "cli/cli.h"
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct run {
    int rc;
    char out[8192], err[4096];
};

static void slurp(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs MAIN with ARGS (NULL-terminated, args[0] = group) and INPUT on stdin. */
static void run_cli(struct run *r, int (*main_fn)(int, char **, const struct cli_ctx *),
                    const char *input, const char *const *args)
{
    char in_path[4300], out_path[4300], err_path[4300];
    snprintf(in_path, sizeof in_path, "%s/cli.in", test_tmpdir());
    snprintf(out_path, sizeof out_path, "%s/cli.out", test_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/cli.err", test_tmpdir());
    FILE *f = fopen(in_path, "w");
    if (f) {
        fputs(input ? input : "", f);
        fclose(f);
    }
    char *argv[16];
    int argc = 0;
    while (args[argc] && argc < 15) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    struct cli_ctx ctx = { test_tmpdir(), NULL };

    fflush(stdout);
    fflush(stderr);
    int save_in = dup(0), save_out = dup(1), save_err = dup(2);
    int fin = open(in_path, O_RDONLY), fout = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int ferr = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fin, 0);
    dup2(fout, 1);
    dup2(ferr, 2);
    clearerr(stdin);
    r->rc = main_fn(argc, argv, &ctx);
    fflush(stdout);
    fflush(stderr);
    dup2(save_in, 0);
    dup2(save_out, 1);
    dup2(save_err, 2);
    clearerr(stdin);
    close(save_in);
    close(save_out);
    close(save_err);
    close(fin);
    close(fout);
    close(ferr);
    slurp(out_path, r->out, sizeof r->out);
    slurp(err_path, r->err, sizeof r->err);
}

/* The last line of S (without its newline) into OUT. */
static void last_line(const char *s, char *out, size_t size)
{
    size_t len = strlen(s);
    if (len && s[len - 1] == '\n')
        len--;
    size_t start = len;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    snprintf(out, size, "%.*s", (int)(len - start), s + start);
}

#define RUN(r, fn, input, ...) run_cli((r), (fn), (input), (const char *const[]){ __VA_ARGS__, NULL })

void test_cli_domain_account(void)
{
    test_begin("cli: domain and account commands, exit codes, secret on last line");
    struct run r;
    RUN(&r, cli_domain_main, NULL, "domain", "add", "example.com");
    test_assert(r.rc == 0);
    RUN(&r, cli_domain_main, NULL, "domain", "add", "example.com");
    test_assert(r.rc == 1 && strstr(r.err, "roost: ") && strstr(r.err, "already exists"));
    RUN(&r, cli_domain_main, NULL, "domain", "add", "bad_name");
    test_assert(r.rc == 1 && strstr(r.err, "malformed"));
    RUN(&r, cli_domain_main, NULL, "domain", "frob");
    test_assert(r.rc == 2 && strstr(r.err, "usage:"));
    RUN(&r, cli_domain_main, NULL, "domain", "list");
    test_assert(r.rc == 0);
    test_assert_streq(r.out, "example.com\n");

    char pw[200], acct[320];
    RUN(&r, cli_account_main, NULL, "account", "add", "Bob@Example.com");
    test_assert(r.rc == 0);
    last_line(r.out, pw, sizeof pw);
    test_assert(strlen(pw) == 20);
    struct directory *d = dir_open(test_tmpdir(), NULL);
    test_assert(d != NULL);
    if (d)
        test_assert(dir_authenticate(d, "bob@example.com", pw, acct, NULL) == DIR_AUTH_OK);

    RUN(&r, cli_account_main, "short\n", "account", "add", "a@example.com", "--password-stdin");
    test_assert(r.rc == 1 && strstr(r.err, "at least 8"));
    RUN(&r, cli_account_main, "eight ch\n", "account", "add", "a@example.com",
        "--password-stdin", "--plan", "business");
    test_assert(r.rc == 0);
    last_line(r.out, pw, sizeof pw);
    test_assert(strstr(pw, "eight ch") == NULL); /* a given password is not echoed */
    if (d)
        test_assert(dir_authenticate(d, "a@example.com", "eight ch", acct, NULL) == DIR_AUTH_OK);
    RUN(&r, cli_account_main, NULL, "account", "add", "x@unknown.example");
    test_assert(r.rc == 1 && strstr(r.err, "unknown domain"));
    RUN(&r, cli_account_main, NULL, "account", "add", "x+y@example.com");
    test_assert(r.rc == 1 && strstr(r.err, "malformed address"));
    RUN(&r, cli_account_main, NULL, "account", "add", "BOB@example.com");
    test_assert(r.rc == 1 && strstr(r.err, "already exists"));
    RUN(&r, cli_account_main, NULL, "account", "add", "c@example.com", "--daily-limit", "-1");
    test_assert(r.rc == 2);
    RUN(&r, cli_account_main, NULL, "account", "add", "c@example.com", "--daily-limit", "7");
    test_assert(r.rc == 0);
    RUN(&r, cli_account_main, NULL, "account", "set", "c@example.com", "--imap", "maybe");
    test_assert(r.rc == 2);
    RUN(&r, cli_account_main, NULL, "account", "set", "c@example.com", "--two-factor", "on",
        "--pop", "off");
    test_assert(r.rc == 0);
    RUN(&r, cli_account_main, NULL, "account", "set", "nobody@example.com", "--pop", "off");
    test_assert(r.rc == 1 && strstr(r.err, "no such account"));
    RUN(&r, cli_account_main, NULL, "account", "show", "c@example.com");
    test_assert(r.rc == 0);
    test_assert(strstr(r.out, "messages today:   0 / 7\n") != NULL);
    test_assert(strstr(r.out, "recipients today: 0 / 7\n") != NULL);
    test_assert(strstr(r.out, "plan:             custom\n") != NULL);
    test_assert(strstr(r.out, "two-factor:       on\n") != NULL);
    test_assert(strstr(r.out, "pop:              off\n") != NULL);
    RUN(&r, cli_account_main, NULL, "account", "list");
    test_assert(r.rc == 0 && strstr(r.out, "ADDRESS") && strstr(r.out, "bob@example.com"));
    RUN(&r, cli_account_main, NULL, "account", "del", "nobody@example.com");
    test_assert(r.rc == 1 && strstr(r.err, "no such account"));
    RUN(&r, cli_domain_main, NULL, "domain", "del", "example.com");
    test_assert(r.rc == 1 && strstr(r.err, "accounts"));
    dir_close(&d);
    test_end();
}

void test_cli_alias_apppass(void)
{
    test_begin("cli: aliases and app passwords, passwd revokes");
    struct run r;
    RUN(&r, cli_domain_main, NULL, "domain", "add", "example.com");
    RUN(&r, cli_account_main, "password one\n", "account", "add", "bob@example.com",
        "--password-stdin");
    test_assert(r.rc == 0);
    RUN(&r, cli_alias_main, NULL, "alias", "add", "info@example.com", "bob@example.com");
    test_assert(r.rc == 0);
    RUN(&r, cli_alias_main, NULL, "alias", "add", "@example.com", "bob@example.com");
    test_assert(r.rc == 0);
    RUN(&r, cli_alias_main, NULL, "alias", "add", "info@example.com", "bob@example.com");
    test_assert(r.rc == 1 && strstr(r.err, "exists"));
    RUN(&r, cli_alias_main, NULL, "alias", "add", "x@example.com", "ghost@example.com");
    test_assert(r.rc == 1 && strstr(r.err, "no such account"));
    RUN(&r, cli_alias_main, NULL, "alias", "list");
    test_assert(r.rc == 0 && strstr(r.out, "info@example.com") && strstr(r.out, "catch-all"));
    RUN(&r, cli_alias_main, NULL, "alias", "del", "@example.com");
    test_assert(r.rc == 0);
    RUN(&r, cli_alias_main, NULL, "alias", "del", "@example.com");
    test_assert(r.rc == 1);
    RUN(&r, cli_alias_main, NULL, "alias", "add", "x@example.com");
    test_assert(r.rc == 2);

    char pw[200], acct[320], app[128];
    RUN(&r, cli_apppass_main, NULL, "app-password", "create", "bob@example.com", "phone");
    test_assert(r.rc == 0);
    last_line(r.out, pw, sizeof pw);
    test_assert(strlen(pw) == 16);
    struct directory *d = dir_open(test_tmpdir(), NULL);
    test_assert(d != NULL);
    if (d) {
        test_assert(dir_authenticate(d, "bob@example.com", pw, acct, app) == DIR_AUTH_OK);
        test_assert_streq(app, "phone");
    }
    RUN(&r, cli_apppass_main, NULL, "app-password", "create", "bob@example.com", "phone");
    test_assert(r.rc == 1 && strstr(r.err, "exists"));
    RUN(&r, cli_apppass_main, NULL, "app-password", "create", "bob@example.com", "laptop");
    test_assert(r.rc == 0);
    RUN(&r, cli_apppass_main, NULL, "app-password", "list", "bob@example.com");
    test_assert(r.rc == 0);
    test_assert(strncmp(r.out, "NAME", 4) == 0 && strstr(r.out, "LAST USED"));
    test_assert(strstr(r.out, "laptop") && strstr(r.out, "never"));
    RUN(&r, cli_apppass_main, NULL, "app-password", "revoke", "bob@example.com", "laptop");
    test_assert(r.rc == 0);
    RUN(&r, cli_apppass_main, NULL, "app-password", "revoke", "bob@example.com", "laptop");
    test_assert(r.rc == 1 && strstr(r.err, "no such app password"));
    RUN(&r, cli_apppass_main, NULL, "app-password", "list", "nobody@example.com");
    test_assert(r.rc == 1 && strstr(r.err, "no such account"));

    RUN(&r, cli_account_main, NULL, "account", "passwd", "bob@example.com");
    test_assert(r.rc == 0 && strstr(r.out, "1 app password revoked"));
    char newpw[200];
    last_line(r.out, newpw, sizeof newpw);
    test_assert(strlen(newpw) == 20);
    if (d) {
        test_assert(dir_authenticate(d, "bob@example.com", pw, acct, app) == DIR_AUTH_FAIL);
        test_assert(dir_authenticate(d, "bob@example.com", newpw, acct, app) == DIR_AUTH_OK);
    }
    RUN(&r, cli_account_main, NULL, "account", "del", "bob@example.com");
    test_assert(r.rc == 0);
    dir_close(&d);
    test_end();
}
