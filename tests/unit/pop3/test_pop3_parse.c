/* test_pop3_parse: table-driven tests of src/pop3/pop3_parse.c: the command
 * split (keywords, argument counts and lengths at limit and limit+1, PASS
 * with spaces, AUTH initial responses, control bytes), strict numbers, UIDL
 * values and the RETR/TOP body writer (byte-stuffing, CRLF, TOP's cut, the
 * terminator), each body case fed whole, one byte at a time and in random
 * splits, and random input checked against the byte-wise reference model.
 *
 * Every command line is copied into a heap block of exactly its length
 * before the call, so AddressSanitizer catches any read past LEN. */
#include "pop3/pop3_parse.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) x, sizeof(x) - 1

static char *exact(const char *p, size_t n)
{
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    if (n)
        memcpy(q, p, n);
    return q;
}

/* A line of KW, a space and then N copies of C. */
static size_t fill_line(char *out, size_t outsz, const char *kw, char c, size_t n)
{
    size_t k = strlen(kw);
    if (k + 1 + n > outsz)
        abort();
    memcpy(out, kw, k);
    out[k] = ' ';
    memset(out + k + 1, c, n);
    return k + 1 + n;
}

/* ---- pop3_parse_command ---- */

static const struct cmd_case {
    const char *line;
    size_t len;
    enum pop3_perr err;
    enum pop3_verb verb;
    int nargs;
    const char *a0, *a1;
} cmd_cases[] = {
    {S("CAPA"), POP3_PERR_OK, POP3_VERB_CAPA, 0, NULL, NULL},
    {S("capa"), POP3_PERR_OK, POP3_VERB_CAPA, 0, NULL, NULL},
    {S("StLs"), POP3_PERR_OK, POP3_VERB_STLS, 0, NULL, NULL},
    {S("STAT"), POP3_PERR_OK, POP3_VERB_STAT, 0, NULL, NULL},
    {S("STAT "), POP3_PERR_OK, POP3_VERB_STAT, 0, NULL, NULL},
    {S("LIST 1"), POP3_PERR_OK, POP3_VERB_LIST, 1, "1", NULL},
    {S("uidl 12"), POP3_PERR_OK, POP3_VERB_UIDL, 1, "12", NULL},
    {S("TOP 1 10"), POP3_PERR_OK, POP3_VERB_TOP, 2, "1", "10"},
    {S("TOP 1 10 "), POP3_PERR_OK, POP3_VERB_TOP, 2, "1", "10"},
    {S("TOP 1  10"), POP3_PERR_SYNTAX, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("TOP 1 2 3"), POP3_PERR_SYNTAX, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("RETR  1"), POP3_PERR_SYNTAX, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("DELE 3"), POP3_PERR_OK, POP3_VERB_DELE, 1, "3", NULL},
    {S("NOOP"), POP3_PERR_OK, POP3_VERB_NOOP, 0, NULL, NULL},
    {S("RSET"), POP3_PERR_OK, POP3_VERB_RSET, 0, NULL, NULL},
    {S("QUIT"), POP3_PERR_OK, POP3_VERB_QUIT, 0, NULL, NULL},
    {S("APOP a b"), POP3_PERR_OK, POP3_VERB_APOP, 2, "a", "b"},
    {S("USER demo@example.test"), POP3_PERR_OK, POP3_VERB_USER, 1, "demo@example.test", NULL},
    {S("USER a b"), POP3_PERR_SYNTAX, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("USER"), POP3_PERR_OK, POP3_VERB_USER, 0, NULL, NULL},
    {S("PASS secret with  spaces "), POP3_PERR_OK, POP3_VERB_PASS, 1, "secret with  spaces ", NULL},
    {S("PASS  lead"), POP3_PERR_OK, POP3_VERB_PASS, 1, " lead", NULL},
    {S("PASS "), POP3_PERR_OK, POP3_VERB_PASS, 1, "", NULL},
    {S("PASS"), POP3_PERR_OK, POP3_VERB_PASS, 0, NULL, NULL},
    {S("PASS p\xc3\xa4ss"), POP3_PERR_OK, POP3_VERB_PASS, 1, "p\xc3\xa4ss", NULL},
    {S("PASS tab\tbad"), POP3_PERR_CONTROL, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("AUTH"), POP3_PERR_OK, POP3_VERB_AUTH, 0, NULL, NULL},
    {S("AUTH PLAIN"), POP3_PERR_OK, POP3_VERB_AUTH, 1, "PLAIN", NULL},
    {S("auth plain AGRlbW8AeA=="), POP3_PERR_OK, POP3_VERB_AUTH, 2, "plain", "AGRlbW8AeA=="},
    {S("AUTH PLAIN ="), POP3_PERR_OK, POP3_VERB_AUTH, 2, "PLAIN", "="},
    {S("AUTH PLAIN "), POP3_PERR_SYNTAX, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("AUTH PLAIN a b"), POP3_PERR_SYNTAX, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("AUTH  PLAIN"), POP3_PERR_SYNTAX, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("AUTH ABCDEFGHIJKLMNOPQRST"), POP3_PERR_OK, POP3_VERB_AUTH, 1, "ABCDEFGHIJKLMNOPQRST", NULL},
    {S("AUTH ABCDEFGHIJKLMNOPQRSTU"), POP3_PERR_ARG_TOO_LONG, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("XTND"), POP3_PERR_OK, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("XTND x y"), POP3_PERR_OK, POP3_VERB_UNKNOWN, 2, "x", "y"},
    {S("TO 1"), POP3_PERR_OK, POP3_VERB_UNKNOWN, 1, "1", NULL},
    {S("CAPAB"), POP3_PERR_KEYWORD, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("STARTTLS"), POP3_PERR_KEYWORD, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("RET1 1"), POP3_PERR_KEYWORD, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S(" STAT"), POP3_PERR_KEYWORD, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("\xc3\xa4"), POP3_PERR_KEYWORD, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S(""), POP3_PERR_EMPTY, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("STAT\0"), POP3_PERR_CONTROL, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("RETR 1\r"), POP3_PERR_CONTROL, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("LIST\x7f"), POP3_PERR_CONTROL, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("USER a\x01"), POP3_PERR_CONTROL, POP3_VERB_UNKNOWN, 0, NULL, NULL},
    {S("USER d\xc3\xa9mo@example.test"), POP3_PERR_OK, POP3_VERB_USER, 1, "d\xc3\xa9mo@example.test", NULL},
};

static void check_case(const struct cmd_case *t, size_t idx)
{
    char *line = exact(t->line, t->len);
    struct pop3_cmd c;
    enum pop3_perr e = pop3_parse_command(line, t->len, &c);
    int ok = e == t->err && c.verb == t->verb && c.nargs == t->nargs;
    if (ok && t->nargs >= 1)
        ok = c.arglen[0] == strlen(t->a0) && memcmp(c.arg[0], t->a0, c.arglen[0]) == 0 &&
             c.arg[0] >= line && c.arg[0] + c.arglen[0] <= line + t->len;
    if (ok && t->nargs >= 2)
        ok = c.arglen[1] == strlen(t->a1) && memcmp(c.arg[1], t->a1, c.arglen[1]) == 0;
    if (!ok)
        fprintf(stderr, "case %zu (%.*s): err=%d verb=%d nargs=%d\n", idx, (int)t->len,
                t->line, (int)e, (int)c.verb, c.nargs);
    test_assert(ok);
    free(line);
}

static void test_parse_table(void)
{
    test_begin("pop3_parse_command table");
    for (size_t i = 0; i < sizeof cmd_cases / sizeof cmd_cases[0]; i++)
        check_case(&cmd_cases[i], i);
    test_end();
}

static enum pop3_perr parse_heap(const char *p, size_t n, struct pop3_cmd *c)
{
    char *line = exact(p, n);
    enum pop3_perr e = pop3_parse_command(line, n, c);
    free(line);
    return e;
}

static void test_parse_arg_limits(void)
{
    char line[POP3_MAX_AUTH_LINE + 64];
    struct pop3_cmd c;
    size_t n;
    test_begin("pop3_parse_command argument limits");
    n = fill_line(line, sizeof line, "LIST", '7', POP3_MAX_ARG);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_OK && c.arglen[0] == POP3_MAX_ARG);
    n = fill_line(line, sizeof line, "LIST", '7', POP3_MAX_ARG + 1);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_ARG_TOO_LONG && c.nargs == 0);
    /* the second argument has its own limit */
    n = fill_line(line, sizeof line, "TOP 1", '7', POP3_MAX_ARG);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_OK && c.nargs == 2 &&
                c.arglen[1] == POP3_MAX_ARG);
    n = fill_line(line, sizeof line, "TOP 1", '7', POP3_MAX_ARG + 1);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_ARG_TOO_LONG);
    n = fill_line(line, sizeof line, "USER", 'u', POP3_MAX_USER);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_OK && c.arglen[0] == POP3_MAX_USER);
    n = fill_line(line, sizeof line, "USER", 'u', POP3_MAX_USER + 1);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_ARG_TOO_LONG);
    n = fill_line(line, sizeof line, "AUTH PLAIN", 'A', POP3_MAX_AUTH_LINE);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_OK && c.nargs == 2 &&
                c.arglen[1] == POP3_MAX_AUTH_LINE);
    n = fill_line(line, sizeof line, "AUTH PLAIN", 'A', POP3_MAX_AUTH_LINE + 1);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_ARG_TOO_LONG);
    /* PASS keeps everything (the session bounds the line) */
    n = fill_line(line, sizeof line, "PASS", ' ', 300);
    test_assert(parse_heap(line, n, &c) == POP3_PERR_OK && c.nargs == 1 && c.arglen[0] == 300);
    test_end();
}

static void test_parse_keyword_lengths(void)
{
    struct pop3_cmd c;
    test_begin("pop3_parse_command keyword length 4 and 5");
    test_assert(parse_heap(S("ABCD"), &c) == POP3_PERR_OK && c.verb == POP3_VERB_UNKNOWN);
    test_assert(parse_heap(S("ABCDE"), &c) == POP3_PERR_KEYWORD);
    test_assert(parse_heap(S("A"), &c) == POP3_PERR_OK && c.verb == POP3_VERB_UNKNOWN);
    test_assert(parse_heap(S("top 1 0"), &c) == POP3_PERR_OK && c.verb == POP3_VERB_TOP);
    test_assert_streq(pop3_verb_name(POP3_VERB_TOP), "TOP");
    test_assert_streq(pop3_verb_name(POP3_VERB_UNKNOWN), "UNKNOWN");
    test_assert_streq(pop3_verb_name((enum pop3_verb)99), "UNKNOWN");
    test_end();
}

/* Every single byte value after a valid command: controls are refused. */
static void test_parse_every_byte(void)
{
    test_begin("pop3_parse_command refuses every control byte");
    for (int b = 0; b < 256; b++) {
        char line[8] = "NOOP x";
        line[5] = (char)b;
        struct pop3_cmd c;
        enum pop3_perr e = parse_heap(line, 6, &c);
        if (b < 0x20 || b == 0x7f)
            test_assert(e == POP3_PERR_CONTROL);
        else if (b == ' ')
            test_assert(e == POP3_PERR_OK && c.nargs == 0);
        else
            test_assert(e == POP3_PERR_OK && c.nargs == 1 && c.arglen[0] == 1);
    }
    test_end();
}

/* ---- pop3_parse_number ---- */

static const struct num_case {
    const char *s;
    size_t len;
    int ret;
    unsigned long n;
} num_cases[] = {
    {S("0"), 0, 0},
    {S("1"), 0, 1},
    {S("007"), 0, 7},
    {S("4294967295"), 0, 4294967295UL},
    {S("4294967296"), -1, 0},
    {S("99999999999999999999999"), -1, 0},
    {S(""), -1, 0},
    {S("-1"), -1, 0},
    {S("+1"), -1, 0},
    {S("1a"), -1, 0},
    {S(" 1"), -1, 0},
    {S("1 "), -1, 0},
    {S("0x10"), -1, 0},
    {S("1\0"), -1, 0},
};

static void test_numbers(void)
{
    test_begin("pop3_parse_number");
    for (size_t i = 0; i < sizeof num_cases / sizeof num_cases[0]; i++) {
        const struct num_case *t = &num_cases[i];
        char *s = exact(t->s, t->len);
        unsigned long n = 12345;
        int r = pop3_parse_number(s, t->len, &n);
        if (r != t->ret || n != t->n)
            fprintf(stderr, "number case %zu: r=%d n=%lu\n", i, r, n);
        test_assert(r == t->ret && n == t->n);
        free(s);
    }
    test_end();
}

/* ---- UIDL ---- */

static void test_uidl(void)
{
    char u[POP3_UIDL_SIZE];
    test_begin("pop3_uidl");
    pop3_uidl(0x5f3a0001u, 1, u);
    test_assert_streq(u, "5f3a000100000001");
    pop3_uidl(0xffffffffu, 0xfffffffeu, u);
    test_assert_streq(u, "fffffffffffffffe");
    pop3_uidl(0, 0, u);
    test_assert_streq(u, "0000000000000000");
    test_assert(strlen(u) == POP3_UIDL_SIZE - 1);
    test_end();
}

/* ---- the RETR/TOP body writer ---- */

static const struct stuff_case {
    const char *name;
    const char *in;
    size_t inlen;
    int top;
    unsigned long lines;
    const char *out;
} stuff_cases[] = {
    {"plain", S("Subject: a\r\n\r\nbody\r\n"), 0, 0, "Subject: a\r\n\r\nbody\r\n.\r\n"},
    {"empty", S(""), 0, 0, ".\r\n"},
    {"dot line", S("A: b\r\n\r\n.\r\n"), 0, 0, "A: b\r\n\r\n..\r\n.\r\n"},
    {"dots", S("A: b\r\n\r\n..x\r\n.\r\n.y.\r\nz.\r\n"), 0, 0,
     "A: b\r\n\r\n...x\r\n..\r\n..y.\r\nz.\r\n.\r\n"},
    {"dot first byte", S(".A: b\r\n"), 0, 0, "..A: b\r\n.\r\n"},
    {"no final eol", S("A: b\r\n\r\nlast"), 0, 0, "A: b\r\n\r\nlast\r\n.\r\n"},
    {"final cr", S("A: b\r\n\r\nlast\r"), 0, 0, "A: b\r\n\r\nlast\r\n.\r\n"},
    {"bare lf", S("A: b\n\nx\n.\n"), 0, 0, "A: b\r\n\r\nx\r\n..\r\n.\r\n"},
    {"bare cr kept", S("A\rB\r\n"), 0, 0, "A\rB\r\n.\r\n"},
    {"top 0", S("A: b\r\nC: d\r\n\r\nl1\r\nl2\r\n"), 1, 0, "A: b\r\nC: d\r\n\r\n.\r\n"},
    {"top 1", S("A: b\r\n\r\nl1\r\nl2\r\n"), 1, 1, "A: b\r\n\r\nl1\r\n.\r\n"},
    {"top 2 stuffed", S("A: b\r\n\r\n.l1\r\n.l2\r\n.l3\r\n"), 1, 2, "A: b\r\n\r\n..l1\r\n..l2\r\n.\r\n"},
    {"top more than body", S("A: b\r\n\r\nl1\r\n"), 1, 10, "A: b\r\n\r\nl1\r\n.\r\n"},
    {"top unterminated", S("A: b\r\n\r\nl1"), 1, 10, "A: b\r\n\r\nl1\r\n.\r\n"},
    {"top no body", S("A: b\r\nC: d\r\n"), 1, 0, "A: b\r\nC: d\r\n.\r\n"},
    {"top header only no eol", S("A: b"), 1, 3, "A: b\r\n.\r\n"},
    {"top cr-only line is not blank", S("A: b\r\n\r\r\nx\r\n\r\nbody\r\n"), 1, 0,
     "A: b\r\n\r\r\nx\r\n\r\n.\r\n"},
    {"top body blank lines count", S("A: b\r\n\r\n\r\n\r\nx\r\n"), 1, 2, "A: b\r\n\r\n\r\n\r\n.\r\n"},
    {"top max lines", S("A: b\r\n\r\n1\r\n2\r\n"), 1, 4294967295UL, "A: b\r\n\r\n1\r\n2\r\n.\r\n"},
};

/* Feeds IN in pieces: SPLIT 0 = whole, 1 = one byte at a time, else
 * pseudo-random lengths from SEED. */
static char *run_stuffer(const struct stuff_case *t, int split, unsigned seed, size_t *len_r)
{
    struct pop3_stuffer st;
    pop3_stuffer_init(&st, t->top, t->lines);
    char *out = malloc(2 * t->inlen + POP3_STUFFER_FINISH_MAX + 1);
    size_t o = 0, i = 0;
    if (!out)
        abort();
    while (i < t->inlen) {
        size_t n = t->inlen - i;
        if (split == 1)
            n = 1;
        else if (split == 2) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 7;
            if (n > t->inlen - i)
                n = t->inlen - i;
        }
        char *piece = exact(t->in + i, n);
        size_t w = pop3_stuffer_feed(&st, piece, n, out + o);
        if (w > 2 * n)
            abort();
        o += w;
        free(piece);
        i += n;
    }
    o += pop3_stuffer_finish(&st, out + o);
    *len_r = o;
    return out;
}

static void test_stuffer_table(void)
{
    test_begin("pop3_stuffer table: whole, byte by byte, random splits");
    for (size_t i = 0; i < sizeof stuff_cases / sizeof stuff_cases[0]; i++) {
        const struct stuff_case *t = &stuff_cases[i];
        for (int split = 0; split < 3; split++) {
            for (unsigned seed = 1; seed <= (split == 2 ? 20u : 1u); seed++) {
                size_t n;
                char *out = run_stuffer(t, split, seed, &n);
                int ok = n == strlen(t->out) && memcmp(out, t->out, n) == 0;
                if (!ok)
                    fprintf(stderr, "stuffer case %s split %d: got %zu bytes: %.*s\n", t->name,
                            split, n, (int)n, out);
                test_assert(ok);
                free(out);
            }
        }
    }
    test_end();
}

/* Output never exceeds twice the input; a stream of dots is the worst. */
static void test_stuffer_worst_case(void)
{
    test_begin("pop3_stuffer worst case is 2x");
    static char in[4096], out[2 * sizeof in];
    for (size_t i = 0; i < sizeof in; i += 2) {
        in[i] = '.';
        in[i + 1] = '\n';
    }
    struct pop3_stuffer st;
    pop3_stuffer_init(&st, 0, 0);
    size_t n = pop3_stuffer_feed(&st, in, sizeof in, out);
    test_assert(n == 2 * sizeof in);
    test_assert(memcmp(out, "..\r\n..\r\n", 8) == 0);
    char fin[POP3_STUFFER_FINISH_MAX];
    test_assert(pop3_stuffer_finish(&st, fin) == 3 && memcmp(fin, ".\r\n", 3) == 0);
    /* after TOP's cut, input is ignored */
    pop3_stuffer_init(&st, 1, 0);
    n = pop3_stuffer_feed(&st, "A: b\r\n\r\nrest\r\n", 14, out);
    test_assert(n == 8 && st.done);
    test_assert(pop3_stuffer_feed(&st, "more", 4, out) == 0);
    test_end();
}

/* The body is the message unchanged once the stuffing is undone. */
static void test_stuffer_roundtrip(void)
{
    test_begin("pop3_stuffer round trip of random CRLF messages");
    unsigned seed = 7;
    for (int round = 0; round < 200; round++) {
        char msg[2048];
        size_t n = 0;
        while (n + 4 < sizeof msg) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) % 10;
            if (r < 2) {
                msg[n++] = '\r';
                msg[n++] = '\n';
            } else if (r < 4) {
                msg[n++] = '.';
            } else {
                msg[n++] = (char)('a' + r);
            }
        }
        msg[n++] = '\r';
        msg[n++] = '\n';
        struct stuff_case t = {"rt", msg, n, 0, 0, NULL};
        size_t olen;
        char *out = run_stuffer(&t, 2, seed, &olen);
        /* undo: drop the terminator, then the leading dot of each line */
        test_assert(olen >= 3 && memcmp(out + olen - 3, ".\r\n", 3) == 0);
        olen -= 3;
        char back[2048];
        size_t b = 0;
        int bol = 1;
        for (size_t i = 0; i < olen; i++) {
            if (bol && out[i] == '.') {
                test_assert(i + 1 < olen && out[i + 1] == '.');
                i++;
            }
            back[b++] = out[i];
            bol = out[i] == '\n';
        }
        test_assert_memeq(back, b, msg, n);
        free(out);
    }
    test_end();
}

/* The byte-at-a-time machine the line-wise stuffer replaced, kept as the
 * reference model: same state fields, same output for any input and any
 * split. */
static size_t ref_feed(struct pop3_stuffer *st, const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len && !st->done; i++) {
        char ch = in[i];
        if (ch == '\n') {
            if (!st->prev_cr)
                out[o++] = '\r';
            out[o++] = '\n';
            st->prev_cr = 0;
            if (st->in_body) {
                if (st->top && st->body_left > 0)
                    st->body_left--;
            } else if (!st->line_has_text) {
                st->in_body = 1;
            }
            st->at_bol = 1;
            st->line_has_text = 0;
            if (st->top && st->in_body && st->body_left == 0)
                st->done = 1;
            continue;
        }
        if (st->at_bol && ch == '.')
            out[o++] = '.';
        if (st->prev_cr)
            st->line_has_text = 1;
        st->at_bol = 0;
        out[o++] = ch;
        st->prev_cr = ch == '\r';
        if (ch != '\r')
            st->line_has_text = 1;
    }
    return o;
}

/* Random messages over the bytes that matter (CR, LF, ".", text), RETR and
 * TOP with 0..3 lines, random splits: the output and the state after each
 * piece equal the reference model's. */
static void test_stuffer_model(void)
{
    test_begin("pop3_stuffer equals the byte-wise model on random input and splits");
    static const char alphabet[] = "\r\n.a";
    unsigned seed = 11;
    for (int round = 0; round < 3000; round++) {
        char msg[96];
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof msg;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            msg[i] = alphabet[(seed >> 16) % 4];
        }
        int top = round % 2;
        unsigned long lines = (unsigned long)(round / 2 % 4);
        struct pop3_stuffer a, b;
        pop3_stuffer_init(&a, top, lines);
        pop3_stuffer_init(&b, top, lines);
        char oa[2 * sizeof msg + POP3_STUFFER_FINISH_MAX], ob[sizeof oa];
        size_t la = 0, lb = 0, i = 0;
        while (i < n) {
            seed = seed * 1103515245u + 12345u;
            size_t k = 1 + (seed >> 16) % 9;
            if (k > n - i)
                k = n - i;
            char *piece = exact(msg + i, k);
            la += pop3_stuffer_feed(&a, piece, k, oa + la);
            lb += ref_feed(&b, piece, k, ob + lb);
            free(piece);
            test_assert(memcmp(&a, &b, sizeof a) == 0);
            i += k;
        }
        la += pop3_stuffer_finish(&a, oa + la);
        lb += pop3_stuffer_finish(&b, ob + lb);
        test_assert_memeq(oa, la, ob, lb);
    }
    test_end();
}

int main(void)
{
    return test_run((test_fn[]){test_parse_table, test_parse_arg_limits,
                                test_parse_keyword_lengths, test_parse_every_byte,
                                test_numbers, test_uidl, test_stuffer_table,
                                test_stuffer_worst_case, test_stuffer_roundtrip, test_stuffer_model,
                                NULL});
}
