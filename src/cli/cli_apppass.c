/* cli_apppass: `roost app-password create ADDRESS NAME | list ADDRESS |
 * revoke ADDRESS NAME`. A created password is printed alone on the last
 * line of stdout; it is never shown again. */
#include "auth/directory.h"
#include "cli/cli.h"
#include "core/xalloc.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: roost app-password create ADDRESS NAME | list ADDRESS"
                    " | revoke ADDRESS NAME\n");
    return 2;
}

static void format_time(time_t t, char *out, size_t outsz)
{
    struct tm tm;
    if (t == 0) {
        snprintf(out, outsz, "never");
        return;
    }
    if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(out, outsz, "%lld", (long long)t);
}

static int apppass_create(struct directory *d, const char *address, const char *name)
{
    char pw[17];
    const char *err = NULL;
    if (dir_apppass_create(d, address, name, pw, &err) != 0) {
        fprintf(stderr, "roost: %s: %s\n", address, err ? err : "cannot create app password");
        return 1;
    }
    printf("app password \"%s\" created for %s.\n", name, address);
    printf("Use it in the mail client instead of the account password; it is shown only once.\n");
    printf("%s\n", pw);
    OPENSSL_cleanse(pw, sizeof pw);
    return 0;
}

static int apppass_revoke(struct directory *d, const char *address, const char *name)
{
    const char *err = NULL;
    if (dir_apppass_revoke(d, address, name, &err) != 0) {
        fprintf(stderr, "roost: %s: %s: %s\n", address, name,
                err ? err : "cannot revoke app password");
        return 1;
    }
    printf("app password \"%s\" revoked for %s\n", name, address);
    return 0;
}

struct row {
    char *name;
    time_t created, last_used;
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static void collect_row(const char *name, time_t created, time_t last_used, void *arg)
{
    struct rows *rs = arg;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 8;
        rs->v = xrealloc(rs->v, xmul(rs->cap, sizeof *rs->v));
    }
    rs->v[rs->n++] = (struct row){ xstrdup(name), created, last_used };
}

static void print_rows(const struct rows *rs)
{
    int w = 4;
    for (size_t i = 0; i < rs->n; i++) {
        size_t l = strlen(rs->v[i].name);
        if ((int)l > w)
            w = (int)l;
    }
    printf("%-*s  %-20s  %s\n", w, "NAME", "CREATED", "LAST USED");
    for (size_t i = 0; i < rs->n; i++) {
        char c[64], u[64];
        format_time(rs->v[i].created, c, sizeof c);
        format_time(rs->v[i].last_used, u, sizeof u);
        printf("%-*s  %-20s  %s\n", w, rs->v[i].name, c, u);
    }
}

static int apppass_list(struct directory *d, const char *address)
{
    struct dir_account a;
    if (dir_account_get(d, address, &a) != 0) {
        fprintf(stderr, "roost: %s: no such account\n", address);
        return 1;
    }
    struct rows rs = { NULL, 0, 0 };
    int rc = 0;
    if (dir_apppass_list(d, a.address, collect_row, &rs) < 0) {
        fprintf(stderr, "roost: %s: cannot list app passwords\n", address);
        rc = 1;
    } else {
        print_rows(&rs);
    }
    for (size_t i = 0; i < rs.n; i++)
        free(rs.v[i].name);
    free(rs.v);
    return rc;
}

int cli_apppass_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    int is_create = strcmp(cmd, "create") == 0 && argc == 4;
    int is_revoke = strcmp(cmd, "revoke") == 0 && argc == 4;
    int is_list = strcmp(cmd, "list") == 0 && argc == 3;
    if (!is_create && !is_revoke && !is_list)
        return usage();
    struct directory *d = cli_open_directory(ctx);
    if (!d)
        return 1;
    int rc = is_create ? apppass_create(d, argv[2], argv[3])
             : is_revoke ? apppass_revoke(d, argv[2], argv[3])
                         : apppass_list(d, argv[2]);
    dir_close(&d);
    return rc;
}
