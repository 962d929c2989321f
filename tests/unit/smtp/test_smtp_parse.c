/* test_smtp_parse: table-driven tests of src/smtp/smtp_parse.c: command
 * split, MAIL/RCPT paths and parameters, BDAT, AUTH, EHLO argument and the
 * address split, with the limits tested at limit and limit+1.
 *
 * Every input is copied into a heap block of exactly its length before the
 * call, so AddressSanitizer catches any read past LEN. */
#include "smtp/smtp_parse.h"
#include "test_smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) x, sizeof(x) - 1

static char *exact(const char *p, size_t n);
static void fill_path(char *out, size_t outsz, const char *prefix, size_t llen, size_t dlen,
                      const char *suffix);

/* A heap copy of exactly N bytes (ASan red zone right after). */
static char *exact(const char *p, size_t n)
{
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    if (n)
        memcpy(q, p, n);
    return q;
}

/* PREFIX "<" local(LLEN) "@" domain(DLEN) ">" SUFFIX; the domain has a dot
 * every 50 octets, never first, last or doubled. */
static void fill_path(char *out, size_t outsz, const char *prefix, size_t llen, size_t dlen,
                      const char *suffix)
{
    size_t n = 0, pl = strlen(prefix), sl = strlen(suffix);
    if (pl + llen + dlen + sl + 4 > outsz)
        abort();
    memcpy(out, prefix, pl);
    n = pl;
    out[n++] = '<';
    for (size_t i = 0; i < llen; i++)
        out[n++] = 'l';
    out[n++] = '@';
    for (size_t i = 0; i < dlen; i++)
        out[n++] = (i % 50 == 49 && i + 2 < dlen) ? '.' : 'd';
    out[n++] = '>';
    memcpy(out + n, suffix, sl);
    n += sl;
    out[n] = '\0';
}

/* ---- smtp_parse_command ---- */

static const struct cmd_case {
    const char *line;
    size_t len;
    int ret;
    enum smtp_verb verb;
    const char *arg;
} cmd_cases[] = {
    {S("EHLO example.com"), 0, SMTP_VERB_EHLO, "example.com"},
    {S("ehlo   example.com   "), 0, SMTP_VERB_EHLO, "example.com"},
    {S("HeLo x"), 0, SMTP_VERB_HELO, "x"},
    {S("QUIT"), 0, SMTP_VERB_QUIT, ""},
    {S("quit   "), 0, SMTP_VERB_QUIT, ""},
    {S("MAIL FROM:<a@b.c> SIZE=10"), 0, SMTP_VERB_MAIL, "FROM:<a@b.c> SIZE=10"},
    {S("mail from:<>"), 0, SMTP_VERB_MAIL, "from:<>"},
    {S("RCPT TO:<a@b.c> "), 0, SMTP_VERB_RCPT, "TO:<a@b.c>"},
    {S("DATA"), 0, SMTP_VERB_DATA, ""},
    {S("BDAT 10 LAST"), 0, SMTP_VERB_BDAT, "10 LAST"},
    {S("RSET"), 0, SMTP_VERB_RSET, ""},
    {S("NOOP hello  world"), 0, SMTP_VERB_NOOP, "hello  world"},
    {S("VRFY root"), 0, SMTP_VERB_VRFY, "root"},
    {S("EXPN list"), 0, SMTP_VERB_EXPN, "list"},
    {S("HELP"), 0, SMTP_VERB_HELP, ""},
    {S("StartTLS"), 0, SMTP_VERB_STARTTLS, ""},
    {S("AUTH PLAIN dGVzdA=="), 0, SMTP_VERB_AUTH, "PLAIN dGVzdA=="},
    {S("XFOO bar"), 0, SMTP_VERB_UNKNOWN, "bar"},
    {S("MAI"), 0, SMTP_VERB_UNKNOWN, ""},
    {S("MAILX FROM:<>"), 0, SMTP_VERB_UNKNOWN, "FROM:<>"},
    {S("STARTTLSX"), 0, SMTP_VERB_UNKNOWN, ""},
    {S("NOOP a\tb"), 0, SMTP_VERB_NOOP, "a\tb"},
    {S("NOOP caf\xc3\xa9"), 0, SMTP_VERB_NOOP, "caf\xc3\xa9"},
    {S("NOOP \xff\xfe"), 0, SMTP_VERB_NOOP, "\xff\xfe"},
    {S(""), -1, SMTP_VERB_UNKNOWN, ""},
    {S("   "), -1, SMTP_VERB_UNKNOWN, ""},
    {S(" EHLO x"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("EH1O x"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("MAIL:FROM"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("EHLO\tx"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("\xc3\xa9HLO x"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("EHLO a\0b"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("\0"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("EHLO a\rb"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("EHLO a\nb"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("EHLO a\x7f"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("EHLO \x1b[0m"), -1, SMTP_VERB_UNKNOWN, ""},
    {S("DATA\r"), -1, SMTP_VERB_UNKNOWN, ""},
};

static void test_command(void)
{
    test_begin("smtp_parse_command table");
    for (size_t i = 0; i < sizeof cmd_cases / sizeof cmd_cases[0]; i++) {
        const struct cmd_case *t = &cmd_cases[i];
        char *line = exact(t->line, t->len);
        struct smtp_cmd cmd;
        int r = smtp_parse_command(line, t->len, &cmd);
        if (r != t->ret)
            printf("     case %zu: ret %d\n", i, r);
        test_assert(r == t->ret);
        if (r == 0 && t->ret == 0) {
            test_assert(cmd.verb == t->verb);
            test_assert_memeq(cmd.arg, cmd.arglen, t->arg, strlen(t->arg));
            test_assert(cmd.arg >= line && cmd.arg + cmd.arglen <= line + t->len);
        }
        free(line);
    }
    test_end();
}

static void test_verb_name(void)
{
    test_begin("smtp_verb_name");
    test_assert_streq(smtp_verb_name(SMTP_VERB_EHLO), "EHLO");
    test_assert_streq(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
    test_assert_streq(smtp_verb_name(SMTP_VERB_AUTH), "AUTH");
    test_assert_streq(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
    test_assert_streq(smtp_verb_name((enum smtp_verb)999), "UNKNOWN");
    /* every verb name parses back to its verb */
    for (int v = SMTP_VERB_EHLO; v < SMTP_VERB_UNKNOWN; v++) {
        const char *name = smtp_verb_name((enum smtp_verb)v);
        struct smtp_cmd cmd;
        test_assert(smtp_parse_command(name, strlen(name), &cmd) == 0);
        test_assert(cmd.verb == (enum smtp_verb)v);
    }
    test_end();
}

/* ---- smtp_parse_mail ---- */

static const struct mail_case {
    const char *arg;
    size_t len;
    enum smtp_perr err;
    const char *addr;
    int has_size;
    unsigned long long size;
    enum smtp_body body;
    int smtputf8;
    const char *auth;
} mail_cases[] = {
    /* paths */
    {S("FROM:<a@b.c>"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<>"), SMTP_PERR_OK, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM: <>"), SMTP_PERR_OK, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:   <a@b.c>   "), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("from:<User.Name+tag@Example.COM>"), SMTP_PERR_OK, "User.Name+tag@Example.COM", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<!#$%&'*+-/=?^_`{|}~@x.y>"), SMTP_PERR_OK, "!#$%&'*+-/=?^_`{|}~@x.y", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b-c.d>"), SMTP_PERR_OK, "a@b-c.d", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@localhost>"), SMTP_PERR_OK, "a@localhost", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@123.example>"), SMTP_PERR_OK, "a@123.example", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[192.0.2.1]>"), SMTP_PERR_OK, "a@[192.0.2.1]", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[IPv6:2001:db8::1]>"), SMTP_PERR_OK, "a@[IPv6:2001:db8::1]", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[ipv6:::ffff:192.0.2.1]>"), SMTP_PERR_OK, "a@[ipv6:::ffff:192.0.2.1]", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<@r1.example,@r2.example:u@e.f>"), SMTP_PERR_OK, "u@e.f", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<@r1.example:u@e.f>"), SMTP_PERR_OK, "u@e.f", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"john doe\"@x.y>"), SMTP_PERR_OK, "\"john doe\"@x.y", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"a\\\"b\"@x.y>"), SMTP_PERR_OK, "\"a\\\"b\"@x.y", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"a\\\\b\"@x.y>"), SMTP_PERR_OK, "\"a\\\\b\"@x.y", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"a@b\"@x.y>"), SMTP_PERR_OK, "\"a@b\"@x.y", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"\"@x.y>"), SMTP_PERR_OK, "\"\"@x.y", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"a\\ b\"@x.y>"), SMTP_PERR_OK, "\"a\\ b\"@x.y", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM :<>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM<>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FRM:<>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("TO:<a@b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S(""), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:a@b.c"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:a@b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c>>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<<a@b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<Postmaster>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<@b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b..c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c.>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@.b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@-b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b-.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b_c.d>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a..b@c.d>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<.a@c.d>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a.@c.d>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a b@c.d>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a(b)@c.d>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b@c.d>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[192.0.2.256]>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[192.0.2]>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[192.0.2.1.5]>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[0192.0.2.1]>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[IPv6:zz::1]>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[IPv6:1:2:3:4:5:6:7:8:9]>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[2001:db8::1]>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[x-tag:stuff]>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[1.2.3.4]x>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@[1.2.3.4>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<@r.s u@e.f>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<@r.s,u@e.f>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<@:u@e.f>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<@r.s,:u@e.f>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"abc@x.y>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"a\x01\"@x.y>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"a\\\x01\"@x.y>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<\"a\"b@x.y>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\0@b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c>\0"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\x01@b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b\x7f.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:\t<a@b.c>"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    /* UTF-8 */
    {S("FROM:<j\xc3\xb6rg@ex\xc3\xa4mple.de> SMTPUTF8"), SMTP_PERR_OK, "j\xc3\xb6rg@ex\xc3\xa4mple.de", 0, 0, SMTP_BODY_7BIT, 1, ""},
    {S("FROM:<j\xc3\xb6rg@ex\xc3\xa4mple.de>"), SMTP_PERR_NEED_UTF8, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SMTPUTF8"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_7BIT, 1, ""},
    {S("FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a> smtputf8 BODY=8BITMIME"), SMTP_PERR_OK, "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", 0, 0, SMTP_BODY_8BITMIME, 1, ""},
    {S("FROM:<\"j\xc3\xb6 rg\"@x.y> SMTPUTF8"), SMTP_PERR_OK, "\"j\xc3\xb6 rg\"@x.y", 0, 0, SMTP_BODY_7BIT, 1, ""},
    {S("FROM:<\xf0\x9f\x98\x80@x.y> SMTPUTF8"), SMTP_PERR_OK, "\xf0\x9f\x98\x80@x.y", 0, 0, SMTP_BODY_7BIT, 1, ""},
    {S("FROM:<@r\xc3\xa4.s:a@b.c>"), SMTP_PERR_NEED_UTF8, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\xc3\x28@b.c> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\xc0\xaf@b.c> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\xe0\x80\xaf@b.c> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\xed\xa0\x80@b.c> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\xf4\x90\x80\x80@b.c> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\xf8\x88\x80\x80\x80@b.c> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b\xe2\x82> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a\x80@b.c> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c\xff> SMTPUTF8"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> X=\xc3\xa9"), SMTP_PERR_UNKNOWN_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> X=\xc3"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    /* SIZE */
    {S("FROM:<a@b.c> SIZE=1000"), SMTP_PERR_OK, "a@b.c", 1, 1000, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<> SIZE=0"), SMTP_PERR_OK, "", 1, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> size=18446744073709551615"), SMTP_PERR_OK, "a@b.c", 1, 18446744073709551615ULL, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=00000000000000000001"), SMTP_PERR_OK, "a@b.c", 1, 1, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=000000000000000000001"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    /* RFC 1870 allows 20 digits: past our range saturates (then 552 5.3.4) */
    {S("FROM:<a@b.c> SIZE=18446744073709551616"), SMTP_PERR_OK, "a@b.c", 1, 18446744073709551615ULL, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=99999999999999999999"), SMTP_PERR_OK, "a@b.c", 1, 18446744073709551615ULL, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=12a"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=-1"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=+1"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE="), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=1 SIZE=2"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    /* BODY */
    {S("FROM:<a@b.c> BODY=8BITMIME"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_8BITMIME, 0, ""},
    {S("FROM:<a@b.c> body=8bitmime"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_8BITMIME, 0, ""},
    {S("FROM:<a@b.c> BODY=7BIT"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> Body=BinaryMIME"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_BINARYMIME, 0, ""},
    {S("FROM:<a@b.c> BODY=9BIT"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> BODY=8BITMIMEX"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> BODY"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> BODY=7BIT BODY=8BITMIME"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    /* SMTPUTF8 */
    {S("FROM:<a@b.c> smtputf8"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_7BIT, 1, ""},
    {S("FROM:<a@b.c> SMTPUTF8=yes"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SMTPUTF8 SMTPUTF8"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    /* AUTH */
    {S("FROM:<a@b.c> AUTH=<>"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_7BIT, 0, "<>"},
    {S("FROM:<a@b.c> auth=joe+40example.com"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_7BIT, 0, "joe+40example.com"},
    {S("FROM:<a@b.c> AUTH=a+2Bb"), SMTP_PERR_OK, "a@b.c", 0, 0, SMTP_BODY_7BIT, 0, "a+2Bb"},
    {S("FROM:<a@b.c> AUTH=a+2bb"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> AUTH=joe+4"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> AUTH=joe+"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> AUTH=joe+4G"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> AUTH=j\xc3\xa9"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> AUTH"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> AUTH=<> AUTH=<>"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    /* combinations, unknown, syntax */
    {S("FROM:<a@b.c>  SIZE=100  BODY=8BITMIME  SMTPUTF8  AUTH=<>  "), SMTP_PERR_OK, "a@b.c", 1, 100, SMTP_BODY_8BITMIME, 1, "<>"},
    {S("FROM:<a@b.c> RET=FULL"), SMTP_PERR_UNKNOWN_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> ENVID=QQ314159"), SMTP_PERR_UNKNOWN_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> X-FOO"), SMTP_PERR_UNKNOWN_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=x RET=FULL"), SMTP_PERR_BAD_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> RET=FULL SIZE=x"), SMTP_PERR_UNKNOWN_PARAM, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c>SIZE=1"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=1\t"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c>\tSIZE=1"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> =1"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> -X"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> X=a=b"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> X_Y=1"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
    {S("FROM:<a@b.c> SIZE=1\0"), SMTP_PERR_SYNTAX, "", 0, 0, SMTP_BODY_7BIT, 0, ""},
};

static void test_mail(void)
{
    test_begin("smtp_parse_mail table");
    for (size_t i = 0; i < sizeof mail_cases / sizeof mail_cases[0]; i++) {
        const struct mail_case *t = &mail_cases[i];
        char *arg = exact(t->arg, t->len);
        char addr[SMTP_MAX_PATH + 1];
        struct smtp_mail_params p;
        memset(addr, 'X', sizeof addr);
        enum smtp_perr e = smtp_parse_mail(arg, t->len, addr, &p);
        if (e != t->err)
            printf("     case %zu (%s): err %d, want %d\n", i, t->arg, (int)e, (int)t->err);
        test_assert(e == t->err);
        test_assert_streq(addr, t->addr);
        test_assert(p.has_size == t->has_size);
        test_assert(p.size == t->size);
        test_assert(p.body == t->body);
        test_assert(p.smtputf8 == t->smtputf8);
        test_assert_streq(p.auth, t->auth);
        free(arg);
    }
    test_end();
}

static void mail_one(const char *arg, enum smtp_perr want, size_t addrlen)
{
    char addr[SMTP_MAX_PATH + 1];
    struct smtp_mail_params p;
    size_t len = strlen(arg);
    char *a = exact(arg, len);
    enum smtp_perr e = smtp_parse_mail(a, len, addr, &p);
    if (e != want)
        printf("     len %zu: err %d, want %d\n", len, (int)e, (int)want);
    test_assert(e == want);
    test_assert(strlen(addr) == addrlen);
    free(a);
}

static void rcpt_one(const char *arg, int utf8, enum smtp_perr want, size_t addrlen)
{
    char addr[SMTP_MAX_PATH + 1];
    size_t len = strlen(arg);
    char *a = exact(arg, len);
    enum smtp_perr e = smtp_parse_rcpt(a, len, utf8, addr);
    if (e != want)
        printf("     len %zu: err %d, want %d\n", len, (int)e, (int)want);
    test_assert(e == want);
    test_assert(strlen(addr) == addrlen);
    free(a);
}

static void test_path_limits(void)
{
    char s[1024];
    test_begin("path limits (local part, domain, path) at limit and limit+1");
    /* local part: SMTP_MAX_LOCALPART ok, one more too long */
    fill_path(s, sizeof s, "FROM:", SMTP_MAX_LOCALPART, 10, "");
    mail_one(s, SMTP_PERR_OK, SMTP_MAX_LOCALPART + 11);
    fill_path(s, sizeof s, "FROM:", SMTP_MAX_LOCALPART + 1, 10, "");
    mail_one(s, SMTP_PERR_PATH_TOO_LONG, 0);
    fill_path(s, sizeof s, "TO:", SMTP_MAX_LOCALPART + 1, 10, "");
    rcpt_one(s, 0, SMTP_PERR_PATH_TOO_LONG, 0);
    /* whole path "<...>": 256 ok, 257 too long (local 64 + '@' + domain + 2) */
    size_t dl = SMTP_MAX_PATH - 3 - SMTP_MAX_LOCALPART;
    fill_path(s, sizeof s, "FROM:", SMTP_MAX_LOCALPART, dl, " SIZE=1");
    mail_one(s, SMTP_PERR_OK, SMTP_MAX_PATH - 2);
    fill_path(s, sizeof s, "FROM:", SMTP_MAX_LOCALPART, dl + 1, "");
    mail_one(s, SMTP_PERR_PATH_TOO_LONG, 0);
    fill_path(s, sizeof s, "TO:", SMTP_MAX_LOCALPART, dl, "");
    rcpt_one(s, 0, SMTP_PERR_OK, SMTP_MAX_PATH - 2);
    fill_path(s, sizeof s, "TO:", SMTP_MAX_LOCALPART, dl + 1, "");
    rcpt_one(s, 0, SMTP_PERR_PATH_TOO_LONG, 0);
    fill_path(s, sizeof s, "TO:", 1, SMTP_MAX_PATH - 4, "");
    rcpt_one(s, 0, SMTP_PERR_OK, SMTP_MAX_PATH - 2);
    fill_path(s, sizeof s, "TO:", 1, SMTP_MAX_PATH - 3, "");
    rcpt_one(s, 0, SMTP_PERR_PATH_TOO_LONG, 0);
    /* domain 255 / 256 (necessarily also over the path limit) */
    fill_path(s, sizeof s, "TO:", 1, SMTP_MAX_DOMAIN, "");
    rcpt_one(s, 0, SMTP_PERR_PATH_TOO_LONG, 0);
    fill_path(s, sizeof s, "TO:", 1, SMTP_MAX_DOMAIN + 1, "");
    rcpt_one(s, 0, SMTP_PERR_PATH_TOO_LONG, 0);
    /* a source route counts in the path length: "@r:" is 3 octets */
    for (size_t extra = 0; extra <= 1; extra++) {
        char t[1024];
        fill_path(s, sizeof s, "", SMTP_MAX_LOCALPART, dl - 3 + extra, "");
        int n = snprintf(t, sizeof t, "FROM:<@r:%s", s + 1);
        test_assert(n > 0 && (size_t)n < sizeof t);
        mail_one(t, extra ? SMTP_PERR_PATH_TOO_LONG : SMTP_PERR_OK,
                 extra ? 0 : SMTP_MAX_PATH - 2 - 3);
    }
    /* a quoted local part counts with its quotes and backslashes */
    {
        char t[256];
        char q[SMTP_MAX_LOCALPART + 16];
        memset(q, 'q', sizeof q);
        int n = snprintf(t, sizeof t, "FROM:<\"%.*s\"@x.y>", SMTP_MAX_LOCALPART - 2, q);
        test_assert(n > 0);
        mail_one(t, SMTP_PERR_OK, SMTP_MAX_LOCALPART + 4);
        n = snprintf(t, sizeof t, "FROM:<\"%.*s\"@x.y>", SMTP_MAX_LOCALPART - 1, q);
        test_assert(n > 0);
        mail_one(t, SMTP_PERR_PATH_TOO_LONG, 0);
    }
    test_end();
}

static void test_auth_param_limit(void)
{
    char s[1024], v[600];
    test_begin("MAIL AUTH= value at limit and limit+1");
    size_t lim = SMTP_MAX_PATH + 2;
    memset(v, 'v', sizeof v);
    int n = snprintf(s, sizeof s, "FROM:<a@b.c> AUTH=%.*s", (int)lim, v);
    test_assert(n > 0 && (size_t)n < sizeof s);
    {
        char addr[SMTP_MAX_PATH + 1];
        struct smtp_mail_params p;
        test_assert(smtp_parse_mail(s, strlen(s), addr, &p) == SMTP_PERR_OK);
        test_assert(strlen(p.auth) == lim);
    }
    n = snprintf(s, sizeof s, "FROM:<a@b.c> AUTH=%.*s", (int)lim + 1, v);
    test_assert(n > 0 && (size_t)n < sizeof s);
    mail_one(s, SMTP_PERR_BAD_PARAM, 0);
    test_end();
}

/* ---- smtp_parse_rcpt ---- */

static const struct rcpt_case {
    const char *arg;
    size_t len;
    int utf8;
    enum smtp_perr err;
    const char *addr;
} rcpt_cases[] = {
    {S("TO:<a@b.c>"), 0, SMTP_PERR_OK, "a@b.c"},
    {S("to:<a@b.c>"), 0, SMTP_PERR_OK, "a@b.c"},
    {S("To:  <a@b.c>  "), 0, SMTP_PERR_OK, "a@b.c"},
    {S("TO:<Postmaster>"), 0, SMTP_PERR_OK, "postmaster"},
    {S("TO:<POSTMASTER>"), 0, SMTP_PERR_OK, "postmaster"},
    {S("TO:<postmaster>"), 1, SMTP_PERR_OK, "postmaster"},
    {S("TO:<Postmaster@Example.com>"), 0, SMTP_PERR_OK, "Postmaster@Example.com"},
    {S("TO:<@r.s,@t.u:a@b.c>"), 0, SMTP_PERR_OK, "a@b.c"},
    {S("TO:<\"x y\"@b.c>"), 0, SMTP_PERR_OK, "\"x y\"@b.c"},
    {S("TO:<a@[127.0.0.1]>"), 0, SMTP_PERR_OK, "a@[127.0.0.1]"},
    {S("TO:<j\xc3\xb6rg@b.c>"), 1, SMTP_PERR_OK, "j\xc3\xb6rg@b.c"},
    {S("TO:<j\xc3\xb6rg@b.c>"), 0, SMTP_PERR_NEED_UTF8, ""},
    {S("TO:<a@b\xc3\xa4.c>"), 0, SMTP_PERR_NEED_UTF8, ""},
    {S("TO:<a@b\xc3\xa4.c>"), 1, SMTP_PERR_OK, "a@b\xc3\xa4.c"},
    {S("TO:<a\xc3@b.c>"), 1, SMTP_PERR_SYNTAX, ""},
    {S("TO:<>"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:<>"), 1, SMTP_PERR_SYNTAX, ""},
    {S("TO:<Postmaster >"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:<postmaster"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:<postmasterx>"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:Postmaster"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:a@b.c"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:<a@b.c"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:<a@b.c>x"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO :<a@b.c>"), 0, SMTP_PERR_SYNTAX, ""},
    {S("FROM:<a@b.c>"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:<a@b.c> =x"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:<a\0@b.c>"), 0, SMTP_PERR_SYNTAX, ""},
    {S("TO:<a@b.c> NOTIFY=NEVER"), 0, SMTP_PERR_UNKNOWN_PARAM, ""},
    {S("TO:<a@b.c> ORCPT=rfc822;a@b.c"), 0, SMTP_PERR_UNKNOWN_PARAM, ""},
    {S("TO:<Postmaster> SMTPUTF8"), 0, SMTP_PERR_UNKNOWN_PARAM, ""},
    {S("TO:<a@b.c> SIZE=10"), 0, SMTP_PERR_UNKNOWN_PARAM, ""},
};

static void test_rcpt(void)
{
    test_begin("smtp_parse_rcpt table");
    for (size_t i = 0; i < sizeof rcpt_cases / sizeof rcpt_cases[0]; i++) {
        const struct rcpt_case *t = &rcpt_cases[i];
        char *arg = exact(t->arg, t->len);
        char addr[SMTP_MAX_PATH + 1];
        memset(addr, 'X', sizeof addr);
        enum smtp_perr e = smtp_parse_rcpt(arg, t->len, t->utf8, addr);
        if (e != t->err)
            printf("     case %zu (%s): err %d, want %d\n", i, t->arg, (int)e, (int)t->err);
        test_assert(e == t->err);
        test_assert_streq(addr, t->addr);
        free(arg);
    }
    test_end();
}

/* ---- smtp_parse_bdat ---- */

static const struct bdat_case {
    const char *arg;
    size_t len;
    int ret;
    unsigned long long size;
    int last;
} bdat_cases[] = {
    {S("0"), 0, 0, 0},
    {S("0 LAST"), 0, 0, 1},
    {S("100 last"), 0, 100, 1},
    {S("100   LaSt  "), 0, 100, 1},
    {S("100  "), 0, 100, 0},
    {S("18446744073709551615"), 0, 18446744073709551615ULL, 0},
    {S("18446744073709551615 LAST"), 0, 18446744073709551615ULL, 1},
    {S("00000000000000000042"), 0, 42, 0},
    {S("000000000000000000042"), -1, 0, 0},
    {S("18446744073709551616"), -1, 0, 0},
    {S("99999999999999999999"), -1, 0, 0},
    {S(""), -1, 0, 0},
    {S("LAST"), -1, 0, 0},
    {S("-1"), -1, 0, 0},
    {S("+1"), -1, 0, 0},
    {S("1.5"), -1, 0, 0},
    {S("0x10"), -1, 0, 0},
    {S("10LAST"), -1, 0, 0},
    {S("10 LASTX"), -1, 0, 0},
    {S("10 LAS"), -1, 0, 0},
    {S("10 LAST x"), -1, 0, 0},
    {S("10 10"), -1, 0, 0},
    {S("10\tLAST"), -1, 0, 0},
    {S("10 LAST\0"), -1, 0, 0},
    {S(" 10"), -1, 0, 0},
};

static void test_bdat(void)
{
    test_begin("smtp_parse_bdat table");
    for (size_t i = 0; i < sizeof bdat_cases / sizeof bdat_cases[0]; i++) {
        const struct bdat_case *t = &bdat_cases[i];
        char *arg = exact(t->arg, t->len);
        unsigned long long size = 77;
        int last = 77;
        int r = smtp_parse_bdat(arg, t->len, &size, &last);
        if (r != t->ret)
            printf("     case %zu (%s): ret %d\n", i, t->arg, r);
        test_assert(r == t->ret);
        test_assert(size == t->size);
        test_assert(last == t->last);
        free(arg);
    }
    test_end();
}

/* ---- smtp_parse_auth ---- */

static const struct auth_case {
    const char *arg;
    size_t len;
    int ret;
    const char *mech;
    const char *ir; /* NULL: absent */
} auth_cases[] = {
    {S("PLAIN"), 0, "PLAIN", NULL},
    {S("plain"), 0, "PLAIN", NULL},
    {S("PLAIN   "), 0, "PLAIN", NULL},
    {S("PLAIN ="), 0, "PLAIN", "="},
    {S("PLAIN AGpvZQBwYXNz"), 0, "PLAIN", "AGpvZQBwYXNz"},
    {S("PLAIN   dGVzdA==  "), 0, "PLAIN", "dGVzdA=="},
    {S("PLAIN dGVzdDE="), 0, "PLAIN", "dGVzdDE="},
    {S("LOGIN dXNlcg=="), 0, "LOGIN", "dXNlcg=="},
    {S("x-oauth2_v1"), 0, "X-OAUTH2_V1", NULL},
    {S("SCRAM-SHA-256 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM"), 0, "SCRAM-SHA-256", "biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM"},
    {S("ABCDEFGHIJKLMNOPQRST"), 0, "ABCDEFGHIJKLMNOPQRST", NULL},
    {S("ABCDEFGHIJKLMNOPQRSTU"), -1, "", NULL},
    {S(""), -1, "", NULL},
    {S(" PLAIN"), -1, "", NULL},
    {S("PL@IN"), -1, "", NULL},
    {S("PLAIN\t="), -1, "", NULL},
    {S("PL\xc3\xa4IN"), -1, "", NULL},
    {S("PLAIN dGVzdA="), -1, "", NULL},
    {S("PLAIN dGVzd==="), -1, "", NULL},
    {S("PLAIN ===="), -1, "", NULL},
    {S("PLAIN =="), -1, "", NULL},
    {S("PLAIN dGVz=A=="), -1, "", NULL},
    {S("PLAIN dGVz!A=="), -1, "", NULL},
    {S("PLAIN dGVzdA== x"), -1, "", NULL},
    {S("PLAIN = ="), -1, "", NULL},
    {S("PLAIN dGVz\0A=="), -1, "", NULL},
    {S("PLAIN *"), -1, "", NULL},
};

static void test_auth(void)
{
    test_begin("smtp_parse_auth table");
    for (size_t i = 0; i < sizeof auth_cases / sizeof auth_cases[0]; i++) {
        const struct auth_case *t = &auth_cases[i];
        char *arg = exact(t->arg, t->len);
        char mech[21];
        const char *ir = (const char *)1;
        size_t irlen = 99;
        int r = smtp_parse_auth(arg, t->len, mech, &ir, &irlen);
        if (r != t->ret)
            printf("     case %zu (%s): ret %d\n", i, t->arg, r);
        test_assert(r == t->ret);
        test_assert_streq(mech, t->mech);
        if (t->ir) {
            test_assert(ir != NULL);
            if (ir)
                test_assert_memeq(ir, irlen, t->ir, strlen(t->ir));
            test_assert(ir >= arg && ir + irlen <= arg + t->len);
        } else {
            test_assert(ir == NULL && irlen == 0);
        }
        free(arg);
    }
    test_end();
}

/* ---- smtp_helo_valid ---- */

static const struct helo_case {
    const char *arg;
    size_t len;
    int valid;
} helo_cases[] = {
    {S("example.com"), 1},
    {S("mail.example.com."), 1},
    {S("localhost"), 1},
    {S("my_laptop.local"), 1},
    {S("DESKTOP-ABC123"), 1},
    {S("-weird-"), 1},
    {S("192.0.2.1"), 1},
    {S("[192.0.2.1]"), 1},
    {S("[IPv6:2001:db8::1]"), 1},
    {S("[ipv6:::1]"), 1},
    {S("ex\xc3\xa4mple.de"), 1},
    {S("\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a"), 1},
    {S(""), 0},
    {S("."), 0},
    {S(".example.com"), 0},
    {S("example..com"), 0},
    {S("example.com.."), 0},
    {S("a b"), 0},
    {S(" a"), 0},
    {S("a\tb"), 0},
    {S("a\0b"), 0},
    {S("a\x7f"), 0},
    {S("a\x1b"), 0},
    {S("a!b"), 0},
    {S("a@b"), 0},
    {S("<a>"), 0},
    {S("ex\xc3\x28mple"), 0},
    {S("ex\xc0\xafmple"), 0},
    {S("[192.0.2.1"), 0},
    {S("[192.0.2.256]"), 0},
    {S("[192.0.2.1]x"), 0},
    {S("[192.0.2.1]."), 0},
    {S("[IPv6:zz]"), 0},
    {S("[foo]"), 0},
    {S("[]"), 0},
    {S("["), 0},
};

static void test_helo(void)
{
    char s[300];
    test_begin("smtp_helo_valid table and length limit");
    for (size_t i = 0; i < sizeof helo_cases / sizeof helo_cases[0]; i++) {
        const struct helo_case *t = &helo_cases[i];
        char *arg = exact(t->arg, t->len);
        int v = smtp_helo_valid(arg, t->len);
        if (v != t->valid)
            printf("     case %zu (%s): %d\n", i, t->arg, v);
        test_assert(v == t->valid);
        free(arg);
    }
    /* 255 octets ok, 256 not, also with a trailing dot */
    for (size_t n = SMTP_MAX_DOMAIN - 1; n <= SMTP_MAX_DOMAIN + 1; n++) {
        for (size_t i = 0; i < n; i++)
            s[i] = (i % 60 == 59) ? '.' : 'h';
        char *arg = exact(s, n);
        test_assert(smtp_helo_valid(arg, n) == (n <= SMTP_MAX_DOMAIN));
        free(arg);
        s[n - 1] = '.';
        arg = exact(s, n);
        test_assert(smtp_helo_valid(arg, n) == (n <= SMTP_MAX_DOMAIN));
        free(arg);
    }
    test_end();
}

/* ---- smtp_addr_split ---- */

static const struct split_case {
    const char *addr;
    int ret;
    const char *local, *domain;
} split_cases[] = {
    {"a@b", 0, "a", "b"},
    {"user.name@example.com", 0, "user.name", "example.com"},
    {"a@b@c", 0, "a@b", "c"},
    {"\"a@b\"@c", 0, "\"a@b\"", "c"},
    {"\"a\\\"@b\"@c.d", 0, "\"a\\\"@b\"", "c.d"},
    {"\"x y\"@[192.0.2.1]", 0, "\"x y\"", "[192.0.2.1]"},
    {"j\xc3\xb6rg@ex\xc3\xa4mple.de", 0, "j\xc3\xb6rg", "ex\xc3\xa4mple.de"},
    {"\"a@b\"", -1, NULL, NULL},
    {"\"abc@d", -1, NULL, NULL},
    {"\"a\\\"@d", -1, NULL, NULL},
    {"@b", -1, NULL, NULL},
    {"a@", -1, NULL, NULL},
    {"", -1, NULL, NULL},
    {"ab", -1, NULL, NULL},
    {"postmaster", -1, NULL, NULL},
    {"\"\"@x", 0, "\"\"", "x"},
};

static void test_addr_split(void)
{
    test_begin("smtp_addr_split table");
    for (size_t i = 0; i < sizeof split_cases / sizeof split_cases[0]; i++) {
        const struct split_case *t = &split_cases[i];
        const char *l, *d;
        size_t ll, dl;
        char *addr = exact(t->addr, strlen(t->addr) + 1);
        int r = smtp_addr_split(addr, &l, &ll, &d, &dl);
        if (r != t->ret)
            printf("     case %zu (%s): ret %d\n", i, t->addr, r);
        test_assert(r == t->ret);
        if (r == 0 && t->ret == 0) {
            test_assert_memeq(l, ll, t->local, strlen(t->local));
            test_assert_memeq(d, dl, t->domain, strlen(t->domain));
        }
        free(addr);
    }
    test_end();
}

/* Whatever smtp_parse_mail/rcpt accept, smtp_addr_split splits. */
static void test_parse_then_split(void)
{
    test_begin("accepted paths split cleanly");
    for (size_t i = 0; i < sizeof mail_cases / sizeof mail_cases[0]; i++) {
        const struct mail_case *t = &mail_cases[i];
        if (t->err != SMTP_PERR_OK || t->addr[0] == '\0')
            continue;
        const char *l, *d;
        size_t ll, dl;
        test_assert(smtp_addr_split(t->addr, &l, &ll, &d, &dl) == 0);
        test_assert(ll > 0 && dl > 0 && ll + dl + 1 == strlen(t->addr));
    }
    test_end();
}

const test_fn test_smtp_parse_tests[] = {
    test_command, test_verb_name, test_mail, test_path_limits, test_auth_param_limit,
    test_rcpt, test_bdat, test_auth, test_helo, test_addr_split, test_parse_then_split, NULL,
};
