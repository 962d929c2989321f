/* cli_compact: `roost mailbox compact [--grace SECONDS] ADDRESS|--all`,
 * one compaction pass (store_compact_account, src/store/store_compact.c)
 * over one account or every account store under DATA/mail: packs whose
 * live messages fell below half of their size are rewritten into the active
 * pack and retired; retired packs older than the grace period (--grace, else
 * the config's [store] compact_grace, one hour by default) are unlinked. Safe while `roost serve`
 * runs: each pack is rewritten under the account index's write lock, the
 * one deliveries take. Prints one line per account that had something to
 * do (with ADDRESS: always). */
#include "cli/cli.h"
#include "core/config.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: roost mailbox compact [--grace SECONDS] ADDRESS|--all\n");
    return 2;
}

static void print_stats(const char *account, const struct store_compact_stats *st)
{
    printf("%s: %" PRIu64 " packs rewritten (%" PRIu64 " messages, %" PRIu64
           " bytes copied), %" PRIu64 " empty packs retired, %" PRIu64
           " bytes to reclaim after the grace period; %" PRIu64
           " retired packs removed (%" PRIu64 " bytes freed); %" PRIu64
           " retired packs in their grace period%s\n",
           account, st->packs_rewritten, st->messages_moved, st->bytes_copied,
           st->packs_emptied,
           st->bytes_retired > st->bytes_copied ? st->bytes_retired - st->bytes_copied : 0,
           st->packs_removed,
           st->bytes_freed, st->packs_waiting,
           st->removal_postponed ? " (none removed: a POP3 session is open)" : "");
}

/* One account. 0 done, 1 failed; QUIET: no line when nothing happened or
 * the account has no store. */
static int compact_one(const struct cli_ctx *ctx, const char *account, int quiet)
{
    struct store_compact_stats st;
    const char *err = NULL;
    int rc = store_compact_account(ctx->data_dir, account, &st, &err);
    if (rc > 0) {
        if (!quiet)
            fprintf(stderr, "roost: %s: no mail store for this account\n", account);
        return quiet ? 0 : 1;
    }
    if (rc < 0)
        fprintf(stderr, "roost: %s: %s\n", account, err ? err : "compaction failed");
    if (!quiet || st.packs_rewritten || st.packs_emptied || st.packs_removed)
        print_stats(account, &st);
    return rc < 0 ? 1 : 0;
}

static int compact_all(const struct cli_ctx *ctx)
{
    char **names;
    size_t n;
    int r = store_compact_all_accounts(ctx->data_dir, &names, &n);
    if (r > 0) {
        printf("no mail stores\n");
        return 0;
    }
    if (r < 0) {
        fprintf(stderr, "roost: %s/mail: %s\n", ctx->data_dir, strerror(errno));
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed |= compact_one(ctx, names[i], 1);
        free(names[i]);
    }
    free(names);
    printf("%zu account stores looked at\n", n);
    return failed;
}

static int parse_seconds(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 100LL * 365 * 86400)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int cli_mailbox_compact(int argc, char **argv, const struct cli_ctx *ctx)
{
    /* argv[0] = "compact"; the grace the server uses unless --grace */
    int i = 1;
    store_compact_grace_set(ctx->cfg ? (int64_t)ctx->cfg->compact_grace : -1);
    if (i + 1 < argc && strcmp(argv[i], "--grace") == 0) {
        int64_t grace;
        if (parse_seconds(argv[i + 1], &grace) < 0)
            return usage();
        store_compact_grace_set(grace);
        i += 2;
    }
    if (i + 1 != argc)
        return usage();
    if (strcmp(argv[i], "--all") == 0)
        return compact_all(ctx);
    if (argv[i][0] == '-')
        return usage();
    char account[320];
    cli_mailbox_account(ctx, argv[i], account);
    return compact_one(ctx, account, 0);
}
