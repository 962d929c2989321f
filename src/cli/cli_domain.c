/* cli_domain: `roost domain add DOMAIN | list | del DOMAIN`, the domains
 * this server receives mail for. */
#include "auth/directory.h"
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: roost domain add DOMAIN | list | del DOMAIN\n");
    return 2;
}

static int domain_add(struct directory *d, const char *name)
{
    const char *err = NULL;
    int r = dir_domain_add(d, name, &err);
    if (r != 0) {
        fprintf(stderr, "roost: %s: %s\n", name, err ? err : "cannot add domain");
        return 1;
    }
    printf("domain added: %s\n", name);
    return 0;
}

static int domain_del(struct directory *d, const char *name)
{
    const char *err = NULL;
    int r = dir_domain_del(d, name, &err);
    if (r == 2) {
        fprintf(stderr, "roost: %s: domain still has accounts; delete them first\n", name);
        return 1;
    }
    if (r != 0) {
        fprintf(stderr, "roost: %s: %s\n", name, err ? err : "cannot delete domain");
        return 1;
    }
    printf("domain deleted: %s\n", name);
    return 0;
}

static void print_domain(const char *domain, void *arg)
{
    (void)arg;
    printf("%s\n", domain);
}

static int domain_list(struct directory *d)
{
    if (dir_domain_list(d, print_domain, NULL) < 0) {
        fprintf(stderr, "roost: cannot list domains\n");
        return 1;
    }
    return 0;
}

int cli_domain_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    int is_add = strcmp(cmd, "add") == 0, is_del = strcmp(cmd, "del") == 0;
    int is_list = strcmp(cmd, "list") == 0;
    if (!((is_add || is_del) && argc == 3) && !(is_list && argc == 2))
        return usage();
    struct directory *d = cli_open_directory(ctx);
    if (!d)
        return 1;
    int rc = is_add ? domain_add(d, argv[2]) : is_del ? domain_del(d, argv[2]) : domain_list(d);
    dir_close(&d);
    return rc;
}
