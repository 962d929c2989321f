/* cli_dkimrec: the domain check and the DKIM TXT record that `roost dkim`
 * and `roost dns` share (see cli_dkimrec.h). */
#include "cli/cli_dkimrec.h"
#include "auth/directory.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_check_domain(const struct cli_ctx *ctx, const char *domain, const char *shown,
                     const char *hint)
{
    if (!dkimkey_domain_valid(domain)) {
        fprintf(stderr, "roost: %s: not a valid domain name\n", shown);
        return 1;
    }
    struct directory *d = cli_open_directory(ctx);
    if (!d)
        return 1;
    int r = dir_domain_exists(d, domain);
    dir_close(&d);
    if (r < 0) {
        fprintf(stderr, "roost: cannot read the directory\n");
        return 1;
    }
    if (r == 0) {
        fprintf(stderr, "roost: %s: not a domain served here (%s)\n", domain, hint);
        return 1;
    }
    return 0;
}

int cli_dkim_record_load(const char *data_dir, const char *domain, const char *sel,
                         struct cli_dkim_record *rec, const char **error_r)
{
    rec->value = NULL;
    int r = dkimkey_load(data_dir, domain, sel, &rec->key, error_r);
    if (r != 0)
        return r;
    rec->value = dkimkey_txt_value(&rec->key, error_r);
    if (!rec->value) {
        dkimkey_clear(&rec->key);
        return -2;
    }
    snprintf(rec->name, sizeof rec->name, "%s._domainkey.%s", rec->key.selector, domain);
    return 0;
}

void cli_dkim_record_clear(struct cli_dkim_record *rec)
{
    free(rec->value);
    rec->value = NULL;
    dkimkey_clear(&rec->key);
}

void cli_txt_strings(const char *value)
{
    size_t len = strlen(value);
    for (size_t off = 0; off < len; off += CLI_TXT_STRING_MAX) {
        size_t n = len - off < CLI_TXT_STRING_MAX ? len - off : CLI_TXT_STRING_MAX;
        printf(" \"%.*s\"", (int)n, value + off);
    }
}
