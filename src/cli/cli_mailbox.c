/* cli_mailbox: `roost mailbox list ADDRESS [MAILBOX]`,
 * `roost mailbox cat ADDRESS UID [MAILBOX]` and
 * `roost mailbox export ADDRESS DIR [MAILBOX]` (every message into DIR as
 * <UID>.eml, byte for byte), a read-only look into an account's store
 * (src/store). ADDRESS is resolved through the directory
 * (aliases, +tags, case) when it names a local recipient; otherwise it is
 * taken as the account address itself, lower-cased, so a store whose
 * account was deleted can still be read. `roost mailbox compact` (the one
 * subcommand that writes) lives in cli_compact.c. */
#include "auth/directory.h"
#include "cli/cli.h"
#include "core/fsutil.h"
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr, "usage: roost mailbox list ADDRESS [MAILBOX]\n"
                    "       roost mailbox cat ADDRESS UID [MAILBOX]\n"
                    "       roost mailbox export ADDRESS DIR [MAILBOX]\n"
                    "       roost mailbox compact [--grace SECONDS] ADDRESS|--all\n");
    return 2;
}

void cli_mailbox_account(const struct cli_ctx *ctx, const char *address, char *account)
{
    size_t n = strlen(address);
    if (n >= 320)
        n = 319;
    for (size_t i = 0; i < n; i++)
        account[i] = (char)tolower((unsigned char)address[i]);
    account[n] = '\0';

    const char *err = NULL;
    struct directory *d = dir_open(ctx->data_dir, &err);
    if (!d)
        return;
    char resolved[320];
    if (dir_resolve_rcpt(d, address, resolved) == DIR_RCPT_LOCAL)
        snprintf(account, 320, "%s", resolved);
    dir_close(&d);
}

static void print_message(const struct store_msg_info *m, void *arg)
{
    (void)arg;
    char date[32];
    struct tm tm;
    time_t t = m->internaldate;
    if (!gmtime_r(&t, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(date, sizeof date, "%lld", (long long)t);
    printf("%-8" PRIu32 " %10zu  %-20s  %-24s  %s\n", m->uid, m->size, date,
           m->flags[0] ? m->flags : "-", m->queue_id[0] ? m->queue_id : "-");
}

static int mailbox_list(const struct cli_ctx *ctx, const char *address, const char *mailbox)
{
    char account[320];
    cli_mailbox_account(ctx, address, account);
    uint32_t uidvalidity, uidnext, count;
    int rc = store_mailbox_status(ctx->data_dir, account, mailbox, &uidvalidity, &uidnext,
                                  &count);
    if (rc != 0) {
        fprintf(stderr, "roost: %s: %s\n", address,
                rc > 0 ? "no such mailbox" : "cannot read the mail store");
        return 1;
    }
    printf("# %s %s: %" PRIu32 " messages, UIDVALIDITY %" PRIu32 ", UIDNEXT %" PRIu32 "\n",
           account, mailbox, count, uidvalidity, uidnext);
    printf("%-8s %10s  %-20s  %-24s  %s\n", "UID", "SIZE", "INTERNALDATE", "FLAGS",
           "QUEUE-ID");
    rc = store_list(ctx->data_dir, account, mailbox, print_message, NULL);
    if (rc != 0) {
        fprintf(stderr, "roost: %s: cannot list %s\n", address, mailbox);
        return 1;
    }
    return 0;
}

static int parse_uid(const char *s, uint32_t *uid_r)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > UINT32_MAX)
        return -1;
    *uid_r = (uint32_t)v;
    return 0;
}

static int mailbox_cat(const struct cli_ctx *ctx, const char *address, const char *uid_s,
                       const char *mailbox)
{
    uint32_t uid;
    if (parse_uid(uid_s, &uid) < 0)
        return usage();
    char account[320];
    cli_mailbox_account(ctx, address, account);
    char *data = NULL;
    size_t len = 0;
    int rc = store_read(ctx->data_dir, account, mailbox, uid, &data, &len);
    if (rc != 0) {
        fprintf(stderr, "roost: %s: %s\n", address,
                rc > 0 ? "no such message" : "cannot read the message");
        return 1;
    }
    fflush(stdout);
    rc = fs_write_all(STDOUT_FILENO, data, len);
    free(data);
    if (rc < 0) {
        fprintf(stderr, "roost: cannot write to stdout: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

struct export_state {
    const char *data_dir, *account, *mailbox;
    int dirfd;
    unsigned long written;
    int failed;
};

/* Writes one message as DIR/<uid>.eml; never replaces an existing file. */
static void export_one(const struct store_msg_info *m, void *arg)
{
    struct export_state *st = arg;
    if (st->failed)
        return;
    char *data = NULL;
    size_t len = 0;
    int rc = store_read(st->data_dir, st->account, st->mailbox, m->uid, &data, &len);
    if (rc > 0)
        return;   /* expunged while we listed */
    if (rc < 0) {
        fprintf(stderr, "roost: UID %" PRIu32 ": cannot read the message\n", m->uid);
        st->failed = 1;
        return;
    }
    char name[32];
    snprintf(name, sizeof name, "%" PRIu32 ".eml", m->uid);
    int fd = openat(st->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || fs_write_all(fd, data, len) < 0) {
        fprintf(stderr, "roost: %s: %s\n", name, strerror(errno));
        st->failed = 1;
    } else {
        st->written++;
    }
    if (fd >= 0)
        close(fd);
    free(data);
}

static int mailbox_export(const struct cli_ctx *ctx, const char *address, const char *dir,
                          const char *mailbox)
{
    char account[320];
    cli_mailbox_account(ctx, address, account);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "roost: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct export_state st = { ctx->data_dir, account, mailbox, -1, 0, 0 };
    st.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st.dirfd < 0) {
        fprintf(stderr, "roost: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int rc = store_list(ctx->data_dir, account, mailbox, export_one, &st);
    close(st.dirfd);
    if (rc != 0) {
        fprintf(stderr, "roost: %s: %s\n", address,
                rc > 0 ? "no such mailbox" : "cannot read the mail store");
        return 1;
    }
    if (st.failed)
        return 1;
    printf("%lu messages written to %s\n", st.written, dir);
    return 0;
}

int cli_mailbox_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc < 3)
        return usage();
    if (strcmp(argv[1], "compact") == 0)
        return cli_mailbox_compact(argc - 1, argv + 1, ctx);
    if (strcmp(argv[1], "list") == 0 && argc <= 4)
        return mailbox_list(ctx, argv[2], argc == 4 ? argv[3] : "INBOX");
    if (strcmp(argv[1], "cat") == 0 && argc >= 4 && argc <= 5)
        return mailbox_cat(ctx, argv[2], argv[3], argc == 5 ? argv[4] : "INBOX");
    if (strcmp(argv[1], "export") == 0 && argc >= 4 && argc <= 5)
        return mailbox_export(ctx, argv[2], argv[3], argc == 5 ? argv[4] : "INBOX");
    return usage();
}
