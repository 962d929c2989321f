/* fuzz_smtp_command: libFuzzer target for src/smtp/smtp_parse.c. The input
 * is one command line (no CRLF). It goes through smtp_parse_command and then,
 * by verb, through the argument parsers (MAIL, RCPT with both UTF-8
 * settings, BDAT, AUTH, EHLO/HELO, the address split); unknown verbs feed
 * their argument to every parser. Each call gets an exact-size heap copy so
 * AddressSanitizer catches any read past the length. Cross-checks that
 * abort() on failure:
 *   - arg lies within the line, has no leading/trailing space;
 *   - a mailbox MAIL accepts, RCPT accepts too (same text), it splits, and
 *     its domain passes smtp_helo_valid; paths respect the length limits;
 *   - RCPT accepted without UTF-8 is accepted with it, same address;
 *   - BDAT sizes print and reparse to the same value;
 *   - AUTH mechanisms are 1..20 upper-case chars, the response lies in ARG. */
#include "smtp/smtp_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dup_exact(const void *p, size_t n)
{
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    if (n)
        memcpy(q, p, n);
    return q;
}

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "check failed: %s\n", #x); abort(); } } while (0)

static void check_split_domain(const char *addr)
{
    const char *l, *d;
    size_t ll, dl;
    CHECK(smtp_addr_split(addr, &l, &ll, &d, &dl) == 0);
    CHECK(ll > 0 && ll <= SMTP_MAX_LOCALPART && dl > 0 && dl <= SMTP_MAX_DOMAIN);
    char *dom = dup_exact(d, dl);
    CHECK(smtp_helo_valid(dom, dl) == 1);
    free(dom);
}

static void do_rcpt(const char *arg, size_t len)
{
    char a0[SMTP_MAX_PATH + 1], a1[SMTP_MAX_PATH + 1];
    enum smtp_perr e0 = smtp_parse_rcpt(arg, len, 0, a0);
    enum smtp_perr e1 = smtp_parse_rcpt(arg, len, 1, a1);
    if (e0 == SMTP_PERR_OK)
        CHECK(e1 == SMTP_PERR_OK && strcmp(a0, a1) == 0);
    if (e1 == SMTP_PERR_NEED_UTF8)
        abort();
    if (e1 == SMTP_PERR_OK) {
        CHECK(a1[0] != '\0' && strlen(a1) <= SMTP_MAX_PATH - 2);
        if (strcmp(a1, "postmaster") != 0)
            check_split_domain(a1);
    } else {
        CHECK(a1[0] == '\0');
    }
}

static void do_mail(const char *arg, size_t len)
{
    char addr[SMTP_MAX_PATH + 1];
    struct smtp_mail_params p;
    enum smtp_perr e = smtp_parse_mail(arg, len, addr, &p);
    if (e != SMTP_PERR_OK) {
        CHECK(addr[0] == '\0' && !p.has_size && !p.smtputf8 && p.auth[0] == '\0');
        return;
    }
    size_t n = strlen(addr);
    CHECK(n <= SMTP_MAX_PATH - 2);
    CHECK(strlen(p.auth) <= SMTP_MAX_PATH + 2);
    if (n == 0)
        return;
    check_split_domain(addr);
    /* what MAIL accepts as a mailbox, RCPT accepts as the same mailbox */
    char line[SMTP_MAX_PATH + 8], back[SMTP_MAX_PATH + 1];
    int k = snprintf(line, sizeof line, "TO:<%s>", addr);
    CHECK(k > 0 && (size_t)k < sizeof line);
    char *l = dup_exact(line, (size_t)k);
    CHECK(smtp_parse_rcpt(l, (size_t)k, p.smtputf8, back) == SMTP_PERR_OK);
    CHECK(strcmp(back, addr) == 0 || strcmp(back, "postmaster") == 0);
    free(l);
}

static void do_bdat(const char *arg, size_t len)
{
    unsigned long long sz;
    int last;
    if (smtp_parse_bdat(arg, len, &sz, &last) != 0) {
        CHECK(sz == 0 && last == 0);
        return;
    }
    char line[40];
    int k = snprintf(line, sizeof line, "%llu%s", sz, last ? " LAST" : "");
    CHECK(k > 0 && (size_t)k < sizeof line);
    unsigned long long sz2;
    int last2;
    CHECK(smtp_parse_bdat(line, (size_t)k, &sz2, &last2) == 0 && sz2 == sz && last2 == last);
}

static void do_auth(const char *arg, size_t len)
{
    char mech[21];
    const char *ir;
    size_t irlen;
    if (smtp_parse_auth(arg, len, mech, &ir, &irlen) != 0) {
        CHECK(mech[0] == '\0' && ir == NULL && irlen == 0);
        return;
    }
    size_t n = strlen(mech);
    CHECK(n >= 1 && n <= 20);
    for (size_t i = 0; i < n; i++)
        CHECK(!(mech[i] >= 'a' && mech[i] <= 'z'));
    if (ir)
        CHECK(ir >= arg && irlen >= 1 && ir + irlen <= arg + len);
    else
        CHECK(irlen == 0);
}

static void do_helo(const char *arg, size_t len)
{
    int v = smtp_helo_valid(arg, len);
    CHECK(v == 0 || v == 1);
    if (v)
        CHECK(len >= 1 && len <= SMTP_MAX_DOMAIN && memchr(arg, ' ', len) == NULL);
}

static void do_split(const char *arg, size_t len)
{
    /* smtp_addr_split takes a C string */
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, arg, len);
    s[len] = '\0';
    const char *l, *d;
    size_t ll, dl;
    if (smtp_addr_split(s, &l, &ll, &d, &dl) == 0)
        CHECK(ll > 0 && dl > 0 && l == s && d == s + ll + 1 && s[ll] == '@' &&
              ll + 1 + dl == strlen(s));
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = dup_exact(data, size);
    struct smtp_cmd cmd;
    if (smtp_parse_command(line, size, &cmd) == 0) {
        CHECK(cmd.arg >= line && cmd.arg + cmd.arglen <= line + size);
        CHECK(cmd.arglen == 0 || (cmd.arg[0] != ' ' && cmd.arg[cmd.arglen - 1] != ' '));
        CHECK(smtp_verb_name(cmd.verb) != NULL);
        char *arg = dup_exact(cmd.arg, cmd.arglen);
        size_t n = cmd.arglen;
        switch (cmd.verb) {
        case SMTP_VERB_MAIL:
            do_mail(arg, n);
            break;
        case SMTP_VERB_RCPT:
            do_rcpt(arg, n);
            break;
        case SMTP_VERB_BDAT:
            do_bdat(arg, n);
            break;
        case SMTP_VERB_AUTH:
            do_auth(arg, n);
            break;
        case SMTP_VERB_EHLO:
        case SMTP_VERB_HELO:
            do_helo(arg, n);
            break;
        case SMTP_VERB_VRFY:
        case SMTP_VERB_EXPN:
            do_split(arg, n);
            break;
        default:
            do_mail(arg, n);
            do_rcpt(arg, n);
            do_bdat(arg, n);
            do_auth(arg, n);
            do_helo(arg, n);
            do_split(arg, n);
            break;
        }
        free(arg);
    }
    free(line);
    return 0;
}
