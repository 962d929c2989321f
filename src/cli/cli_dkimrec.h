/* cli_dkimrec: what `roost dkim` (cli_dkim.c) and `roost dns` (cli_dns.c)
 * share: checking that a domain is one served here, loading the DNS TXT
 * record of a domain's DKIM key (its name and value), and printing a TXT
 * value as DNS character-strings of at most 255 octets (RFC 1035 §3.3.14;
 * a 2048-bit RSA key needs two). */
#ifndef ROOST_CLI_DKIMREC_H
#define ROOST_CLI_DKIMREC_H

#include "dkim/dkimkey.h"

struct cli_ctx;

#define CLI_TXT_STRING_MAX 255

struct cli_dkim_record {
    struct dkimkey key;
    char name[DKIMKEY_SELECTOR_MAX + DKIMKEY_DOMAIN_MAX + 16]; /* SEL._domainkey.DOMAIN */
    char *value;                                              /* v=DKIM1; k=...; p=... */
};

/* 0 if DOMAIN (lower-case) is a valid domain served here. Otherwise prints
 * why on stderr and returns 1: "not a valid domain name" (naming SHOWN,
 * what the user typed), "cannot read the directory", or "not a domain
 * served here (HINT)". */
int cli_check_domain(const struct cli_ctx *ctx, const char *domain, const char *shown,
                     const char *hint);

/* Loads DOMAIN's key for selector SEL (NULL: the active key) and its TXT
 * record. 0: *rec is filled (release it with cli_dkim_record_clear); 1: the
 * domain has no key yet; -1: the key cannot be read, -2: its record cannot
 * be made (*error_r says why, or is NULL). */
int cli_dkim_record_load(const char *data_dir, const char *domain, const char *sel,
                         struct cli_dkim_record *rec, const char **error_r);
void cli_dkim_record_clear(struct cli_dkim_record *rec);

/* Prints VALUE as ` "..." "..."`, strings of at most CLI_TXT_STRING_MAX. */
void cli_txt_strings(const char *value);

#endif
