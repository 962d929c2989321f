/* cli_serve: the `roost serve` subcommand (see cli_serve.c). */
#ifndef ROOST_CLI_SERVE_H
#define ROOST_CLI_SERVE_H

struct cli_ctx;
int cli_serve_main(int argc, char **argv, const struct cli_ctx *ctx);

#endif
