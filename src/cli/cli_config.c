/* cli_config: `roost config check FILE` — parses FILE and reports every
 * error with its line number; exit 0 when the file is valid. */
#include "cli/cli.h"
#include "core/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_config_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "usage: roost config check FILE\n");
        return 2;
    }
    struct config cfg;
    char *errors = NULL;
    int r = config_load(argv[2], &cfg, &errors);
    if (r < 0) {
        fputs(errors ? errors : "invalid configuration\n", stderr);
        free(errors);
        config_free(&cfg);
        return 1;
    }
    printf("%s: OK (%d listeners, hostname %s)\n", argv[2], cfg.nlisteners, cfg.hostname);
    for (int i = 0; i < cfg.nlisteners; i++)
        printf("  %-12s %s:%d\n", listener_kind_name(cfg.listeners[i].kind),
               cfg.listeners[i].host, cfg.listeners[i].port);
    config_free(&cfg);
    return 0;
}
