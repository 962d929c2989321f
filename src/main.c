/* main: argv → `roost serve` or one of the CLI command groups.
 *
 * Global options (anywhere before or after the command name):
 *   --config FILE   the configuration (else: development defaults)
 *   --data DIR      the data directory (else: the config's data_dir,
 *                   $ROOST_DATA, ./roost-data)
 * CLI commands run as the owner of the data directory when started as
 * root, so files they create stay readable by the server. */
#include "cli/cli.h"
#include "cli/cli_serve.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: roost [--config FILE] [--data DIR] COMMAND ...\n"
    "\n"
    "  serve                              run the mail server (development instance on\n"
    "                                     127.0.0.1 without --config)\n"
    "                                     mail for other domains goes out by MX or via\n"
    "                                     [outbound] relay (docs/outbound.md)\n"
    "                                     (DANE-verified TLS to MX hosts with DNSSEC\n"
    "                                     TLSA records: [outbound] dnssec_trust_anchor)\n"
    "                                     (MTA-STS policies of recipient domains, RFC 8461:\n"
    "                                     [outbound] mta_sts = yes|no, default yes)\n"
    "  config check FILE                  check a configuration file\n"
    "  domain add|list|del [DOMAIN]       domains served here\n"
    "  account add ADDRESS [--plan free|business] [--daily-limit N] [--password-stdin]\n"
    "  account list | show ADDRESS | passwd ADDRESS [--password-stdin] | del ADDRESS\n"
    "  account set ADDRESS [--plan free|business] [--daily-limit N] [--imap on|off]\n"
    "                      [--pop on|off] [--two-factor on|off]\n"
    "                      [--pop-scope all|from-now]\n"
    "                      [--pop-after keep|mark-read|archive|delete]\n"
    "                      [--quota SIZE|unlimited]   (e.g. 15G, 500M)\n"
    "                      [--forward-to ADDRESS|off]  forward a copy of incoming mail\n"
    "                      [--forward-keep keep|mark-read|archive|delete]  Roost's copy\n"
    "  alias add SOURCE TARGET | list | del SOURCE     (SOURCE @domain = catch-all)\n"
    "  app-password create ADDRESS NAME | list ADDRESS | revoke ADDRESS NAME\n"
    "  mailbox list ADDRESS [MAILBOX] | cat ADDRESS UID [MAILBOX]\n"
    "  mailbox export ADDRESS DIR [MAILBOX]\n"
    "                                     every message into DIR as UID.eml\n"
    "  mailbox compact [--grace SECONDS] ADDRESS|--all\n"
    "                                     give back the space of expunged mail: rewrite\n"
    "                                     mostly-empty packs, remove retired ones older\n"
    "                                     than the grace period ([store] compact_grace)\n"
    "  queue list | show ID               queued messages; one message's envelope, header and\n"
    "                                     attempts per recipient\n"
    "  queue retry ID|--all | hold ID | release ID | delete ID | bounce ID\n"
    "                                     act on queued mail (the running server acts at once,\n"
    "                                     else its next start); delete sends no notice,\n"
    "                                     bounce returns it to the sender with a DSN\n"
    "  dkim generate DOMAIN [--rsa|--ed25519] [--selector S]\n"
    "                                     new signing key (RSA-2048 by default, selector\n"
    "                                     YYYYMM); prints the DNS TXT record to publish\n"
    "  dkim show DOMAIN                   the active key's DNS TXT record\n"
    "  log [--message QUEUE-ID] [--account A] [--session S] [--from TEXT] [--to TEXT]\n"
    "      [--since TIME] [--until TIME] [--status delivered|deferred|bounced|rejected]\n"
    "      [--protocol smtp|imap|pop3] [--json]\n"
    "                                     the event log: a message's whole story, or\n"
    "                                     filtered lines (TIME: 2026-12-03[T10:00], 1h, 2d)\n"
    "  status [--json]                    listeners up or down, queue, deferred mail,\n"
    "                                     bounces in 24 h, each account's sends vs limit\n"
    "  send --server HOST[:PORT] --from ADDRESS --to ADDRESS [--cc ...] [--subject S]\n"
    "       [--body TEXT] [--attach FILE ...] [--user ADDRESS --password-file FILE]\n"
    "       [--tls implicit|starttls|none] [--ca-file PEM] [--insecure] [-v]\n"
    "                                     compose and send a message to any SMTP server\n"
    "  check HOST[:PORT] [--tls implicit|starttls|none] [--protocol smtp|imap|pop3]\n"
    "       [--user ADDRESS --password-file FILE] [--send-test] [--ca-file PEM]\n"
    "                                     diagnose a mail port; names the fix of each problem\n"
    "  sendmail [-t] [-i] [-f ADDRESS] [-F NAME] [RECIPIENT ...] < message\n"
    "                                     sendmail-compatible submission (also as a symlink\n"
    "                                     named sendmail); see docs/sendmail.md\n"
    "  dns DOMAIN                         every DNS record to publish for DOMAIN (MX, SPF,\n"
    "                                     DKIM, DMARC, MTA-STS, TLS-RPT, autoconfig, SRV)\n"
    "  help                               this text\n"
    "\n"
    "The data directory is --data DIR, else the config's data_dir, else $ROOST_DATA,\n"
    "else ./roost-data. See README.md and docs/ for more.\n";

struct cmd_group {
    const char *name;
    int (*fn)(int argc, char **argv, const struct cli_ctx *ctx);
    int needs_data;
};

static const struct cmd_group groups[] = {
    {"serve", cli_serve_main, 1},
    {"config", cli_config_main, 0},
    {"domain", cli_domain_main, 1},
    {"account", cli_account_main, 1},
    {"alias", cli_alias_main, 1},
    {"app-password", cli_apppass_main, 1},
    {"mailbox", cli_mailbox_main, 1},
    {"queue", cli_queue_main, 1},
    {"dkim", cli_dkim_main, 1},
    {"log", cli_log_main, 1},
    {"status", cli_status_main, 1},
    {"send", cli_send_main, 0},
    {"check", cli_check_main, 0},
    {"sendmail", cli_sendmail_main, 0},
    {"dns", cli_dns_main, 1},
};

/* As root, become the owner of an existing data directory (CLI only). */
static void become_data_owner(const char *data_dir)
{
    struct stat st;
    if (geteuid() != 0 || stat(data_dir, &st) != 0 || st.st_uid == 0)
        return;
    if (setgroups(0, NULL) != 0 || setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0) {
        fprintf(stderr, "roost: cannot switch to the data directory's owner: %s\n", strerror(errno));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *data_opt = NULL;
    /* Installed as sendmail (a symlink): every argument is sendmail's. */
    const char *prog = argc > 0 ? strrchr(argv[0], '/') : NULL;
    if (argc > 0 && strcmp(prog ? prog + 1 : argv[0], "sendmail") == 0)
        return cli_sendmail_entry(argc, argv);
    char **args = xcalloc((size_t)argc + 1, sizeof *args);
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--data") == 0) && i + 1 < argc) {
            if (argv[i][2] == 'c')
                config_path = argv[++i];
            else
                data_opt = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--data") == 0) {
            fprintf(stderr, "roost: %s needs a value\n", argv[i]);
            return 2;
        } else {
            args[nargs++] = argv[i];
        }
    }
    if (nargs == 0 || strcmp(args[0], "help") == 0 || strcmp(args[0], "--help") == 0 ||
        strcmp(args[0], "-h") == 0) {
        fputs(usage_text, nargs == 0 ? stderr : stdout);
        free(args);
        return nargs == 0 ? 2 : 0;
    }
    const struct cmd_group *g = NULL;
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (strcmp(args[0], groups[i].name) == 0)
            g = &groups[i];
    if (!g) {
        fprintf(stderr, "roost: unknown command '%s'\n\n%s", args[0], usage_text);
        free(args);
        return 2;
    }
    struct config cfg;
    if (config_path) {
        char *errors = NULL;
        if (config_load(config_path, &cfg, &errors) < 0) {
            fputs(errors ? errors : "invalid configuration\n", stderr);
            free(errors);
            config_free(&cfg);
            free(args);
            return 1;
        }
    } else {
        config_defaults(&cfg, 1);
    }
    char *data_dir = config_resolve_data_dir(data_opt, &cfg);
    if (g->needs_data && g->fn != cli_serve_main) {
        log_set_stderr(0);
        become_data_owner(data_dir);
    }
    struct cli_ctx ctx = {.data_dir = data_dir, .cfg = &cfg};
    int rc = g->fn(nargs, args, &ctx);
    free(data_dir);
    config_free(&cfg);
    free(args);
    return rc;
}
