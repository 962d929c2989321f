/* cli: the roost subcommands other than serve. Each group's entry point
 * gets argv starting at the group name (argv[0] = "account", ...), the
 * resolved data directory and the loaded config. It prints results to stdout
 * and errors to stderr as "roost: ...", and returns the process exit code:
 * 0 ok, 1 failed (bad input, not found, duplicate...), 2 usage error. */
#ifndef ROOST_CLI_H
#define ROOST_CLI_H

struct config;
struct directory;

struct cli_ctx {
    const char *data_dir;
    const struct config *cfg;
};

int cli_domain_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_account_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_alias_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_apppass_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_mailbox_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_queue_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_config_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_dkim_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_log_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_status_main(int argc, char **argv, const struct cli_ctx *ctx);
/* Client tools (cli_send.c, cli_check.c, cli_sendmail.c). */
int cli_send_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_check_main(int argc, char **argv, const struct cli_ctx *ctx);
int cli_sendmail_main(int argc, char **argv, const struct cli_ctx *ctx);
/* main() when started as "sendmail" (a symlink): loads $ROOST_CONFIG or
 * /etc/roost/roost.conf if present, and treats every argument as sendmail's. */
int cli_sendmail_entry(int argc, char **argv);
int cli_dns_main(int argc, char **argv, const struct cli_ctx *ctx);
/* `roost mailbox compact` (cli_compact.c); argv[0] = "compact". */
int cli_mailbox_compact(int argc, char **argv, const struct cli_ctx *ctx);
/* Fills ACCOUNT (320 bytes) with the account ADDRESS belongs to (cli_mailbox.c). */
void cli_mailbox_account(const struct cli_ctx *ctx, const char *address, char *account);

/* Shared helpers. */
/* Reads one line (without the newline) from stdin into a malloc'd string. */
char *cli_read_password_stdin(void);
/* Generates a random password of LEN letters and digits (NUL-terminated). */
void cli_random_password(char *out, int len);
/* Opens the directory under ctx->data_dir; on failure prints
 * "roost: cannot open the directory: ..." to stderr and returns NULL. */
struct directory *cli_open_directory(const struct cli_ctx *ctx);

#endif
