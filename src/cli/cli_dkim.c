/* cli_dkim: `roost dkim generate DOMAIN [--rsa|--ed25519] [--selector S]`
 * and `roost dkim show DOMAIN`: the DKIM keys of the domains served here
 * (src/dkim/dkimkey.h). Both print the DNS TXT record to publish:
 *
 *   name:  202601._domainkey.example.com
 *   type:  TXT
 *   value: v=DKIM1; k=rsa; p=MIIBIjANBgkq...
 *
 * and the same record as a zone-file line with the value split into
 * strings of at most 255 characters (RFC 1035 §3.3.14; a 2048-bit RSA key
 * needs two). The server picks a new active key up with the next message;
 * no restart is needed. */
#include "cli/cli.h"
#include "cli/cli_dkimrec.h"
#include "dkim/dkimkey.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: roost dkim generate DOMAIN [--rsa|--ed25519] [--selector S]\n"
                    "       roost dkim show DOMAIN\n");
    return 2;
}

/* Lower-cases ARG into OUT; -1 if it is too long. */
static int lower_copy(char *out, size_t outsz, const char *arg)
{
    size_t n = strlen(arg);
    if (n >= outsz)
        return -1;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)arg[i]);
    return 0;
}

static void print_zone_line(const char *name, const char *value)
{
    printf("zone file:\n%s. IN TXT (", name);
    cli_txt_strings(value);
    printf(" )\n");
}

/* Prints DOMAIN's record for SEL (NULL: the active one). */
static int print_record(const struct cli_ctx *ctx, const char *domain, const char *sel)
{
    struct cli_dkim_record rec;
    const char *err = NULL;
    int r = cli_dkim_record_load(ctx->data_dir, domain, sel, &rec, &err);
    if (r == 1) {
        fprintf(stderr, "roost: %s: no DKIM key yet; make one with roost dkim generate %s\n",
                domain, domain);
        return 1;
    }
    if (r == -1) {
        fprintf(stderr, "roost: %s: cannot read the DKIM key: %s\n", domain, err ? err : "?");
        return 1;
    }
    if (r < 0) {
        fprintf(stderr, "roost: %s: %s\n", domain, err ? err : "cannot read the key");
        return 1;
    }
    printf("selector: %s (active)\nalgorithm: %s\n\nPublish this DNS TXT record:\n",
           rec.key.selector, rec.key.alg == DKIMKEY_ED25519 ? "ed25519-sha256" : "rsa-sha256");
    printf("name:  %s\ntype:  TXT\nvalue: %s\n\n", rec.name, rec.value);
    print_zone_line(rec.name, rec.value);
    cli_dkim_record_clear(&rec);
    return 0;
}

struct gen_opts {
    enum dkimkey_alg alg;
    const char *selector;
};

static int parse_gen_opts(int argc, char **argv, struct gen_opts *o)
{
    int alg_seen = 0;
    o->alg = DKIMKEY_RSA;
    o->selector = NULL;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--rsa") == 0 || strcmp(argv[i], "--ed25519") == 0) {
            if (alg_seen++) {
                fprintf(stderr, "roost: choose one of --rsa and --ed25519\n");
                return 2;
            }
            o->alg = argv[i][2] == 'r' ? DKIMKEY_RSA : DKIMKEY_ED25519;
        } else if (strcmp(argv[i], "--selector") == 0 && i + 1 < argc && !o->selector) {
            o->selector = argv[++i];
        } else {
            fprintf(stderr, "roost: dkim generate: unexpected argument '%s'\n", argv[i]);
            return usage();
        }
    }
    return 0;
}

static int dkim_generate(int argc, char **argv, const struct cli_ctx *ctx)
{
    struct gen_opts o;
    int rc = parse_gen_opts(argc, argv, &o);
    if (rc != 0)
        return rc;
    char domain[DKIMKEY_DOMAIN_MAX + 1], sel[DKIMKEY_SELECTOR_MAX + 1];
    if (lower_copy(domain, sizeof domain, argv[2]) < 0) {
        fprintf(stderr, "roost: domain name too long\n");
        return 1;
    }
    if (cli_check_domain(ctx, domain, domain, "see roost domain list") != 0)
        return 1;
    const char *err = NULL;
    if (o.selector) {
        if (lower_copy(sel, sizeof sel, o.selector) < 0 || !dkimkey_selector_valid(sel)) {
            fprintf(stderr, "roost: '%s': a selector is 1 to 63 letters, digits and "
                            "hyphens, not starting or ending with a hyphen\n", o.selector);
            return 1;
        }
    } else if (dkimkey_default_selector(ctx->data_dir, domain, time(NULL), sel, &err) < 0) {
        fprintf(stderr, "roost: %s: %s\n", domain, err);
        return 1;
    }
    int r = dkimkey_generate(ctx->data_dir, domain, sel, o.alg, &err);
    if (r == 1) {
        fprintf(stderr, "roost: %s: selector %s already has a key; choose another --selector\n",
                domain, sel);
        return 1;
    }
    if (r < 0) {
        fprintf(stderr, "roost: %s: cannot make the key: %s\n", domain, err ? err : "?");
        return 1;
    }
    printf("DKIM key generated for %s: %s, selector %s, now active.\n", domain,
           o.alg == DKIMKEY_ED25519 ? "ed25519" : "rsa-2048", sel);
    return print_record(ctx, domain, sel);
}

static int dkim_show(const struct cli_ctx *ctx, const char *arg)
{
    char domain[DKIMKEY_DOMAIN_MAX + 1];
    if (lower_copy(domain, sizeof domain, arg) < 0) {
        fprintf(stderr, "roost: domain name too long\n");
        return 1;
    }
    if (cli_check_domain(ctx, domain, domain, "see roost domain list") != 0)
        return 1;
    return print_record(ctx, domain, NULL);
}

int cli_dkim_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    if (argc >= 3 && strcmp(argv[1], "generate") == 0)
        return dkim_generate(argc, argv, ctx);
    if (argc == 3 && strcmp(argv[1], "show") == 0)
        return dkim_show(ctx, argv[2]);
    return usage();
}
