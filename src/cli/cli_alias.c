/* cli_alias: `roost alias add SOURCE TARGET | list | del SOURCE`. SOURCE is
 * local@domain, or "@domain" for the domain's catch-all; TARGET is a local
 * account. */
#include "auth/directory.h"
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: roost alias add SOURCE TARGET | list | del SOURCE"
                    "   (SOURCE \"@domain\" = catch-all)\n");
    return 2;
}

static int alias_add(struct directory *d, const char *source, const char *target)
{
    const char *err = NULL;
    if (dir_alias_add(d, source, target, &err) != 0) {
        fprintf(stderr, "roost: %s: %s\n", source, err ? err : "cannot add alias");
        return 1;
    }
    printf("alias added: %s -> %s\n", source, target);
    return 0;
}

static int alias_del(struct directory *d, const char *source)
{
    const char *err = NULL;
    if (dir_alias_del(d, source, &err) != 0) {
        fprintf(stderr, "roost: %s: %s\n", source, err ? err : "cannot delete alias");
        return 1;
    }
    printf("alias deleted: %s\n", source);
    return 0;
}

static void print_alias(const char *source, const char *target, void *arg)
{
    (void)arg;
    printf("%-40s %s%s\n", source, target, source[0] == '@' ? "   (catch-all)" : "");
}

static int alias_list(struct directory *d)
{
    printf("%-40s %s\n", "SOURCE", "TARGET");
    if (dir_alias_list(d, print_alias, NULL) < 0) {
        fprintf(stderr, "roost: cannot list aliases\n");
        return 1;
    }
    return 0;
}

int cli_alias_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    int is_add = strcmp(cmd, "add") == 0 && argc == 4;
    int is_del = strcmp(cmd, "del") == 0 && argc == 3;
    int is_list = strcmp(cmd, "list") == 0 && argc == 2;
    if (!is_add && !is_del && !is_list)
        return usage();
    struct directory *d = cli_open_directory(ctx);
    if (!d)
        return 1;
    int rc = is_add ? alias_add(d, argv[2], argv[3]) : is_del ? alias_del(d, argv[2])
                                                              : alias_list(d);
    dir_close(&d);
    return rc;
}
