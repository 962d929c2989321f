/* fuzz_pop3_command: libFuzzer target for src/pop3/pop3_parse.c. The input
 * is one command line (no CRLF). It goes through pop3_parse_command, each
 * argument through pop3_parse_number, and the whole input through the
 * RETR/TOP body writer (whole and in two pieces split at a point taken from
 * the input). Each call gets an exact-size heap copy so AddressSanitizer
 * catches any read past the length. Cross-checks that abort() on failure:
 *   - on success the arguments lie within the line, are non-empty (but
 *     PASS's may be empty), contain no control byte, respect their limits
 *     (PASS: any length; AUTH: mechanism 1..20, response 1..12288; USER
 *     up to 250; others up to 40), and only PASS's may contain a space;
 *   - on failure the command is zeroed;
 *   - a parsed number prints and reparses to the same value;
 *   - the body writer gives the same bytes whole and split, at most twice
 *     the input plus the terminator, ends in ".\r\n", and every LF in its
 *     output follows a CR. */
#include "pop3/pop3_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "check failed: %s\n", #x); abort(); } } while (0)

static char *dup_exact(const void *p, size_t n)
{
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    if (n)
        memcpy(q, p, n);
    return q;
}

static void check_number(const char *arg, size_t len)
{
    char *a = dup_exact(arg, len);
    unsigned long n = 1;
    if (pop3_parse_number(a, len, &n) == 0) {
        char back[32];
        int k = snprintf(back, sizeof back, "%lu", n);
        unsigned long n2;
        CHECK(k > 0 && n <= POP3_MAX_NUMBER);
        CHECK(pop3_parse_number(back, (size_t)k, &n2) == 0 && n2 == n);
    } else {
        CHECK(n == 0);
    }
    free(a);
}

static size_t arg_limit(enum pop3_verb v, int i)
{
    if (v == POP3_VERB_AUTH)
        return i == 0 ? POP3_MAX_MECH : POP3_MAX_AUTH_LINE;
    if (v == POP3_VERB_USER)
        return POP3_MAX_USER;
    if (v == POP3_VERB_PASS)
        return (size_t)-1;
    return POP3_MAX_ARG;
}

static void check_command(const char *line, size_t size)
{
    struct pop3_cmd c;
    enum pop3_perr e = pop3_parse_command(line, size, &c);
    if (e != POP3_PERR_OK) {
        CHECK(c.nargs == 0 && c.verb == POP3_VERB_UNKNOWN);
        return;
    }
    CHECK(size >= 1 && c.nargs >= 0 && c.nargs <= 2);
    CHECK(pop3_verb_name(c.verb) != NULL);
    for (int i = 0; i < c.nargs; i++) {
        CHECK(c.arg[i] >= line && c.arg[i] + c.arglen[i] <= line + size);
        CHECK(c.arglen[i] <= arg_limit(c.verb, i));
        CHECK(c.arglen[i] > 0 || c.verb == POP3_VERB_PASS);
        for (size_t k = 0; k < c.arglen[i]; k++) {
            unsigned char b = (unsigned char)c.arg[i][k];
            CHECK(b >= 0x20 && b != 0x7f);
            CHECK(b != ' ' || c.verb == POP3_VERB_PASS);
        }
        check_number(c.arg[i], c.arglen[i]);
    }
}

static size_t stuff(const char *in, size_t len, size_t cut, int top, unsigned long lines,
                    char *out)
{
    struct pop3_stuffer st;
    pop3_stuffer_init(&st, top, lines);
    char *a = dup_exact(in, cut), *b = dup_exact(in + cut, len - cut);
    size_t o = pop3_stuffer_feed(&st, a, cut, out);
    o += pop3_stuffer_feed(&st, b, len - cut, out + o);
    o += pop3_stuffer_finish(&st, out + o);
    free(a);
    free(b);
    return o;
}

static void check_stuffer(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    int top = data[0] & 1;
    unsigned long lines = data[0] >> 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    size_t cap = 2 * len + POP3_STUFFER_FINISH_MAX;
    char *o1 = malloc(cap), *o2 = malloc(cap);
    if (!o1 || !o2)
        abort();
    size_t n1 = stuff(in, len, 0, top, lines, o1);
    size_t n2 = stuff(in, len, len ? (size_t)data[len] % (len + 1) : 0, top, lines, o2);
    CHECK(n1 == n2 && memcmp(o1, o2, n1) == 0);
    CHECK(n1 <= cap && n1 >= 3 && memcmp(o1 + n1 - 3, ".\r\n", 3) == 0);
    for (size_t i = 0; i < n1; i++)
        if (o1[i] == '\n')
            CHECK(i > 0 && o1[i - 1] == '\r');
    free(o1);
    free(o2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = dup_exact(data, size);
    check_command(line, size);
    free(line);
    check_stuffer(data, size);
    return 0;
}
