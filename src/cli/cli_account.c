/* cli_account: `roost account add | list | show | passwd | del | set`.
 *
 * Generated passwords are printed alone on the last line of stdout, after
 * the human text, so scripts can take `tail -n 1`. A password given with
 * --password-stdin must be at least 8 characters. The argon2id parameters
 * come from the config so hashes made here match the server's. Gmail's POP
 * options: --pop-scope from-now offers POP only the mail that arrives from
 * the moment it is set (show prints that time); all offers everything.
 * --quota SIZE sets the mailbox quota (15G, 500M, 0 or unlimited: none);
 * show prints it with the account's current mailbox usage. Forwarding:
 * --forward-to OTHER (or off) and --forward-keep keep|mark-read|archive|
 * delete (what happens to Roost's copy); a malformed target, the account
 * itself or an unknown keep value is a usage error (exit 2). */
#include "auth/directory.h"
#include "cli/cli.h"
#include "core/config.h"
#include "store/store_imap.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define GENERATED_PASSWORD_LEN 20
#define MIN_PASSWORD_LEN 8
#define MAX_DAILY_LIMIT 1000000

static const char usage_text[] =
    "usage: roost account add ADDRESS [--plan free|business] [--daily-limit N] [--password-stdin]\n"
    "       roost account list\n"
    "       roost account show ADDRESS\n"
    "       roost account passwd ADDRESS [--password-stdin]\n"
    "       roost account del ADDRESS\n"
    "       roost account set ADDRESS [--plan free|business] [--daily-limit N] [--imap on|off]\n"
    "                                 [--pop on|off] [--two-factor on|off]\n"
    "                                 [--pop-scope all|from-now]\n"
    "                                 [--pop-after keep|mark-read|archive|delete]\n"
    "                                 [--quota SIZE (15G, 500M, 0 = unlimited)]\n"
    "                                 [--forward-to ADDRESS|off]\n"
    "                                 [--forward-keep keep|mark-read|archive|delete]\n";

/* The options of add/passwd/set; -1 means not given. */
struct account_opts {
    const char *address;
    int plan, daily_limit, imap, pop, two_factor;
    int pop_scope, pop_after;
    int has_quota;
    uint64_t quota;
    int password_stdin;
    const char *forward_to;   /* NULL: not given; "": off */
    int forward_keep;
};

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

/* The argon2id parameters must be set before any hash is made here. */
static struct directory *open_directory(const struct cli_ctx *ctx)
{
    if (ctx->cfg)
        dir_set_argon2_params(ctx->cfg->argon2_t_cost, ctx->cfg->argon2_m_cost_kib,
                              ctx->cfg->argon2_parallelism);
    return cli_open_directory(ctx);
}

static const char *plan_name(enum dir_plan p)
{
    switch (p) {
    case PLAN_FREE: return "free";
    case PLAN_BUSINESS: return "business";
    case PLAN_CUSTOM: return "custom";
    }
    return "?";
}

static const char *on_off(int v) { return v ? "on" : "off"; }

static void format_time(time_t t, char *out, size_t outsz)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, outsz, "%lld", (long long)t);
}

/* ------------------------------------------------------------ option parsing */

static int parse_on_off(const char *s, int *v_r)
{
    if (strcmp(s, "on") == 0)
        *v_r = 1;
    else if (strcmp(s, "off") == 0)
        *v_r = 0;
    else
        return -1;
    return 0;
}

static int parse_plan(const char *s, int *v_r)
{
    if (strcmp(s, "free") == 0)
        *v_r = PLAN_FREE;
    else if (strcmp(s, "business") == 0)
        *v_r = PLAN_BUSINESS;
    else
        return -1;
    return 0;
}

/* S among the names NAME_OF(0..N-1) gives its index. */
static int parse_name(const char *s, const char *(*name_of)(int), int n, int *v_r)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(s, name_of(i)) == 0) {
            *v_r = i;
            return 0;
        }
    }
    return -1;
}

static const char *scope_name(int i) { return dir_pop_scope_name((enum dir_pop_scope)i); }
static const char *after_name(int i) { return dir_pop_after_name((enum dir_pop_after)i); }

static int parse_limit(const char *s, int *v_r)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || s[0] == '+' || v < 0 || v > MAX_DAILY_LIMIT)
        return -1;
    *v_r = (int)v;
    return 0;
}

/* Which options each subcommand takes. */
enum { OPT_PLAN = 1, OPT_LIMIT = 2, OPT_STDIN = 4, OPT_FLAGS = 8, OPT_POP = 16, OPT_QUOTA = 32,
       OPT_FORWARD = 64 };

/* --forward-to VAL / --forward-keep VAL into O. 0 ok, 2 usage (printed). */
static int parse_forward(const char *opt, const char *val, struct account_opts *o)
{
    if (strcmp(opt, "--forward-keep") == 0) {
        o->forward_keep = val ? dir_forward_keep_parse(val) : -1;
        if (o->forward_keep >= 0)
            return 0;
        fprintf(stderr, "roost: --forward-keep must be keep, mark-read, archive or delete\n");
        return usage();
    }
    if (val && strcmp(val, "off") == 0) {
        o->forward_to = "";
        return 0;
    }
    if (!val || !dir_forward_address_valid(val)) {
        fprintf(stderr, "roost: --forward-to: not a valid address: %s\n", val ? val : "(none)");
        return usage();
    }
    o->forward_to = val;
    return 0;
}

/* Parses "ADDRESS [options]" from argv[2..]. 0 ok, 2 usage (printed). */
static int parse_opts(int argc, char **argv, unsigned allowed, struct account_opts *o)
{
    memset(o, 0, sizeof *o);
    o->plan = o->daily_limit = o->imap = o->pop = o->two_factor = -1;
    o->pop_scope = o->pop_after = -1;
    o->forward_keep = -1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, takes_value = 1;
        if ((allowed & OPT_STDIN) && strcmp(a, "--password-stdin") == 0) {
            o->password_stdin = 1;
            takes_value = 0;
        } else if ((allowed & OPT_PLAN) && strcmp(a, "--plan") == 0) {
            bad = !val || parse_plan(val, &o->plan) < 0;
        } else if ((allowed & OPT_LIMIT) && strcmp(a, "--daily-limit") == 0) {
            bad = !val || parse_limit(val, &o->daily_limit) < 0;
        } else if ((allowed & OPT_FLAGS) && strcmp(a, "--imap") == 0) {
            bad = !val || parse_on_off(val, &o->imap) < 0;
        } else if ((allowed & OPT_FLAGS) && strcmp(a, "--pop") == 0) {
            bad = !val || parse_on_off(val, &o->pop) < 0;
        } else if ((allowed & OPT_FLAGS) && strcmp(a, "--two-factor") == 0) {
            bad = !val || parse_on_off(val, &o->two_factor) < 0;
        } else if ((allowed & OPT_POP) && strcmp(a, "--pop-scope") == 0) {
            bad = !val || parse_name(val, scope_name, POP_SCOPE_FROM_NOW + 1, &o->pop_scope) < 0;
        } else if ((allowed & OPT_POP) && strcmp(a, "--pop-after") == 0) {
            bad = !val || parse_name(val, after_name, POP_AFTER_DELETE + 1, &o->pop_after) < 0;
        } else if ((allowed & OPT_QUOTA) && strcmp(a, "--quota") == 0) {
            bad = !val || dir_quota_parse(val, &o->quota) < 0;
            o->has_quota = 1;
        } else if ((allowed & OPT_FORWARD) &&
                   (strcmp(a, "--forward-to") == 0 || strcmp(a, "--forward-keep") == 0)) {
            if (parse_forward(a, val, o) != 0)
                return 2;
        } else if (a[0] != '-' && !o->address) {
            o->address = a;
            takes_value = 0;
        } else {
            fprintf(stderr, "roost: unexpected argument: %s\n", a);
            return usage();
        }
        if (bad) {
            fprintf(stderr, "roost: bad value for %s\n", a);
            return usage();
        }
        i += takes_value;
    }
    if (!o->address)
        return usage();
    if (o->forward_to && *o->forward_to && strcasecmp(o->forward_to, o->address) == 0) {
        fprintf(stderr, "roost: %s: an account cannot forward to itself\n", o->address);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ passwords */

/* Gets the new password: from stdin (checked) or generated. NULL on failure
 * (message printed). *generated_r tells which. The caller frees with
 * free_password. */
static char *obtain_password(int from_stdin, int *generated_r)
{
    *generated_r = !from_stdin;
    if (!from_stdin) {
        char *pw = malloc(GENERATED_PASSWORD_LEN + 1);
        if (!pw) {
            fprintf(stderr, "roost: out of memory\n");
            return NULL;
        }
        cli_random_password(pw, GENERATED_PASSWORD_LEN);
        return pw;
    }
    char *pw = cli_read_password_stdin();
    if (!pw) {
        fprintf(stderr, "roost: no password on stdin (one line, at most 1024 bytes)\n");
        return NULL;
    }
    if (strlen(pw) < MIN_PASSWORD_LEN) {
        fprintf(stderr, "roost: password must be at least %d characters\n", MIN_PASSWORD_LEN);
        OPENSSL_cleanse(pw, strlen(pw));
        free(pw);
        return NULL;
    }
    return pw;
}

static void free_password(char *pw)
{
    if (!pw)
        return;
    OPENSSL_cleanse(pw, strlen(pw));
    free(pw);
}

/* ------------------------------------------------------------------ commands */

static int report(int r, const char *address, const char *err, const char *fallback)
{
    if (r == 0)
        return 0;
    fprintf(stderr, "roost: %s: %s\n", address, err ? err : fallback);
    return 1;
}

static int account_add(struct directory *d, const struct account_opts *o)
{
    int generated = 0;
    char *pw = obtain_password(o->password_stdin, &generated);
    if (!pw)
        return 1;
    const char *err = NULL;
    int plan = o->plan >= 0 ? o->plan : PLAN_FREE;
    int r = dir_account_add(d, o->address, pw, (enum dir_plan)plan, &err);
    if (r == 0 && o->daily_limit >= 0)
        r = dir_account_set(d, o->address, -1, o->daily_limit, -1, -1, -1, &err);
    if (report(r, o->address, err, "cannot add account")) {
        free_password(pw);
        return 1;
    }
    struct dir_account a;
    if (dir_account_get(d, o->address, &a) == 0)
        printf("account created: %s (plan %s: %d messages and %d recipients a day)\n",
               a.address, plan_name(a.plan), a.daily_messages, a.daily_recipients);
    if (generated) {
        printf("generated password (shown only once):\n%s\n", pw);
    }
    free_password(pw);
    return 0;
}

static int account_passwd(struct directory *d, const struct account_opts *o)
{
    int before = dir_apppass_count(d, o->address);
    if (before < 0) {
        fprintf(stderr, "roost: %s: no such account\n", o->address);
        return 1;
    }
    int generated = 0;
    char *pw = obtain_password(o->password_stdin, &generated);
    if (!pw)
        return 1;
    const char *err = NULL;
    int r = dir_account_set_password(d, o->address, pw, &err);
    if (report(r, o->address, err, "cannot change password")) {
        free_password(pw);
        return 1;
    }
    printf("password changed for %s; %d app password%s revoked\n", o->address, before,
           before == 1 ? "" : "s");
    if (generated)
        printf("generated password (shown only once):\n%s\n", pw);
    free_password(pw);
    return 0;
}

static int account_del(struct directory *d, const char *address)
{
    const char *err = NULL;
    int r = dir_account_del(d, address, &err);
    if (report(r, address, err, "cannot delete account"))
        return 1;
    printf("account deleted: %s (with its aliases and app passwords)\n", address);
    return 0;
}

/* "forwarding: to OTHER, Roost's copy archived" or "forwarding: off". */
static void print_forward(struct directory *d, const char *address)
{
    static const char *const fates[] = { [FORWARD_KEEP] = "kept in the INBOX",
                                         [FORWARD_MARK_READ] = "kept, marked as read",
                                         [FORWARD_ARCHIVE] = "archived",
                                         [FORWARD_DELETE] = "deleted" };
    struct dir_forward f;
    if (dir_forward_get(d, address, &f) != 0)
        return;
    if (!f.to[0])
        printf("forwarding:       off (keep option: %s)\n", dir_forward_keep_name(f.keep));
    else
        printf("forwarding:       to %s, Roost's copy %s (%s)\n", f.to, fates[f.keep],
               dir_forward_keep_name(f.keep));
}

static int account_set(struct directory *d, const struct account_opts *o)
{
    const char *err = NULL;
    int r = 0;
    /* First: a refused target (exit 2) leaves the account unchanged. */
    if (o->forward_to || o->forward_keep >= 0) {
        r = dir_forward_set(d, o->address, o->forward_to, o->forward_keep, &err);
        if (r == 2) {
            fprintf(stderr, "roost: --forward-to %s: %s\n", o->forward_to, err ? err : "refused");
            return 2;
        }
        if (report(r, o->address, err, "cannot change account"))
            return 1;
    }
    if (o->plan >= 0 || o->daily_limit >= 0 || o->imap >= 0 || o->pop >= 0 ||
        o->two_factor >= 0)
        r = dir_account_set(d, o->address, o->plan, o->daily_limit, o->imap, o->pop,
                                o->two_factor, &err);
    if (r == 0 && (o->pop_scope >= 0 || o->pop_after >= 0))
        r = dir_account_set_pop(d, o->address, o->pop_scope, o->pop_after, time(NULL), &err);
    if (r == 0 && o->has_quota)
        r = dir_account_set_quota(d, o->address, o->quota, &err);
    if (report(r, o->address, err, "cannot change account"))
        return 1;
    struct dir_account a;
    char quota[64];
    if (dir_account_get(d, o->address, &a) == 0) {
        dir_quota_format(a.quota_bytes, quota, sizeof quota);
        printf("account updated: %s plan=%s messages/day=%d recipients/day=%d imap=%s pop=%s"
               " two-factor=%s pop-scope=%s pop-after=%s quota=%s\n", a.address,
               plan_name(a.plan), a.daily_messages, a.daily_recipients, on_off(a.imap_enabled),
               on_off(a.pop_enabled), on_off(a.two_factor), dir_pop_scope_name(a.pop_scope),
               dir_pop_after_name(a.pop_after), quota);
    }
    if (o->forward_to || o->forward_keep >= 0)
        print_forward(d, o->address);
    return 0;
}

static void print_account_row(const struct dir_account *a, void *arg)
{
    (void)arg;
    printf("%-40s %-9s %8d %8d %-4s %-4s %-3s\n", a->address, plan_name(a->plan),
           a->daily_messages, a->daily_recipients, on_off(a->imap_enabled),
           on_off(a->pop_enabled), on_off(a->two_factor));
}

static int account_list(struct directory *d)
{
    printf("%-40s %-9s %8s %8s %-4s %-4s %-3s\n", "ADDRESS", "PLAN", "MSGS/DAY", "RCPT/DAY",
           "IMAP", "POP", "2FA");
    if (dir_account_list(d, print_account_row, NULL) < 0) {
        fprintf(stderr, "roost: cannot list accounts\n");
        return 1;
    }
    return 0;
}

struct alias_collect {
    const char *target;
    int n;
};

static void print_alias_of(const char *source, const char *target, void *arg)
{
    struct alias_collect *c = arg;
    if (strcmp(target, c->target) != 0)
        return;
    printf("%s%s", c->n ? ", " : "", source);
    c->n++;
}

/* "pop scope" (with the time from-now counts from) and "pop after download". */
static void print_pop_options(const struct dir_account *a)
{
    char since[64];
    format_time(a->pop_since, since, sizeof since);
    if (a->pop_scope == POP_SCOPE_FROM_NOW)
        printf("pop scope:        %s (mail since %s)\n", dir_pop_scope_name(a->pop_scope), since);
    else
        printf("pop scope:        %s\n", dir_pop_scope_name(a->pop_scope));
    printf("pop after download: %s\n", dir_pop_after_name(a->pop_after));
}

/* "quota: 15 GiB (12.30 MiB used, 41 messages)". */
static void print_quota(const char *data_dir, const struct dir_account *a)
{
    char quota[64], used[64];
    struct store_usage u;
    const char *err = NULL;
    dir_quota_format(a->quota_bytes, quota, sizeof quota);
    if (store_usage_get(data_dir, a->address, &u, &err) < 0) {
        printf("quota:            %s (usage unknown: %s)\n", quota, err ? err : "error");
        return;
    }
    if (u.bytes == 0)
        snprintf(used, sizeof used, "0 bytes");
    else
        dir_quota_format(u.bytes, used, sizeof used);
    printf("quota:            %s (%s used, %llu messages)\n", quota, used,
           (unsigned long long)u.messages);
}

static int account_show(struct directory *d, const char *data_dir, const char *address)
{
    struct dir_account a;
    int r = dir_account_get(d, address, &a);
    if (r != 0)
        return report(r, address, r == 1 ? "no such account" : NULL, "cannot read account");
    struct dir_usage u;
    if (dir_send_usage(d, a.address, time(NULL), &u) < 0) {
        fprintf(stderr, "roost: %s: cannot read sending usage\n", address);
        return 1;
    }
    char created[64];
    format_time(a.created, created, sizeof created);
    printf("address:          %s\n", a.address);
    printf("id:               %lld\n", (long long)a.id);
    printf("plan:             %s\n", plan_name(a.plan));
    printf("daily limits:     %d messages, %d recipients (rolling 24 hours)\n",
           a.daily_messages, a.daily_recipients);
    printf("imap:             %s\n", on_off(a.imap_enabled));
    printf("pop:              %s\n", on_off(a.pop_enabled));
    print_pop_options(&a);
    print_quota(data_dir, &a);
    print_forward(d, a.address);
    printf("two-factor:       %s\n", on_off(a.two_factor));
    printf("created:          %s\n", created);
    printf("messages today:   %d / %d\n", u.messages, u.limit_messages);
    printf("recipients today: %d / %d\n", u.recipients, u.limit_recipients);
    printf("aliases:          ");
    struct alias_collect c = { a.address, 0 };
    if (dir_alias_list(d, print_alias_of, &c) < 0) {
        fprintf(stderr, "roost: cannot list aliases\n");
        return 1;
    }
    printf("%s\n", c.n ? "" : "(none)");
    printf("app passwords:    %d\n", dir_apppass_count(d, a.address));
    return 0;
}

/* ------------------------------------------------------------------- dispatch */

static unsigned options_for(const char *cmd)
{
    if (strcmp(cmd, "add") == 0)
        return OPT_PLAN | OPT_LIMIT | OPT_STDIN;
    if (strcmp(cmd, "passwd") == 0)
        return OPT_STDIN;
    if (strcmp(cmd, "set") == 0)
        return OPT_PLAN | OPT_LIMIT | OPT_FLAGS | OPT_POP | OPT_QUOTA | OPT_FORWARD;
    return 0;
}

static int run(struct directory *d, const char *data_dir, const char *cmd,
               const struct account_opts *o)
{
    if (strcmp(cmd, "add") == 0)
        return account_add(d, o);
    if (strcmp(cmd, "passwd") == 0)
        return account_passwd(d, o);
    if (strcmp(cmd, "set") == 0)
        return account_set(d, o);
    if (strcmp(cmd, "show") == 0)
        return account_show(d, data_dir, o->address);
    return account_del(d, o->address);
}

int cli_account_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    struct account_opts o;
    if (strcmp(cmd, "list") == 0) {
        if (argc != 2)
            return usage();
    } else if (strcmp(cmd, "add") == 0 || strcmp(cmd, "passwd") == 0 ||
               strcmp(cmd, "set") == 0 || strcmp(cmd, "show") == 0 || strcmp(cmd, "del") == 0) {
        if (parse_opts(argc, argv, options_for(cmd), &o) != 0)
            return 2;
        if (strcmp(cmd, "set") == 0 && o.plan < 0 && o.daily_limit < 0 && o.imap < 0 &&
            o.pop < 0 && o.two_factor < 0 && o.pop_scope < 0 && o.pop_after < 0 && !o.has_quota &&
            !o.forward_to && o.forward_keep < 0) {
            fprintf(stderr, "roost: account set needs at least one option\n");
            return usage();
        }
    } else {
        return usage();
    }
    struct directory *d = open_directory(ctx);
    if (!d)
        return 1;
    int rc = strcmp(cmd, "list") == 0 ? account_list(d) : run(d, ctx->data_dir, cmd, &o);
    dir_close(&d);
    return rc;
}
