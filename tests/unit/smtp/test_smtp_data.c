/* test_smtp_data: tests of the DATA reader (src/smtp/smtp_data.c): end of
 * data, dot-unstuffing, every SMTP-smuggling variant, empty message, the
 * size limit at max and max+1, a full output buffer, pipelined bytes left
 * unconsumed, and the BDAT bare CR/LF scan.
 *
 * Every table case runs fed whole, one byte at a time, split at every single
 * position, and with random splits; all must give the same output and state.
 * A property test then compares the reader with a direct (non-incremental)
 * model of the policy on many random inputs. */
#include "core/buf.h"
#include "smtp/smtp_data.h"
#include "test_smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) x, sizeof(x) - 1

struct result {
    size_t consumed;
    struct buf out;
    size_t size;
    int oversize, bare, done;
};

static unsigned long long rng_state;
static unsigned rng(void);
static void feed_split(const char *in, size_t len, size_t max, size_t outmax,
                       const size_t *cuts, size_t ncuts, struct result *res);
static void feed_random(const char *in, size_t len, size_t max, size_t outmax, unsigned seed,
                        struct result *res);
static int same(const struct result *a, const struct result *b);
static void model(const char *in, size_t len, size_t max, struct result *res);

/* xorshift64*: deterministic, so failures reproduce. */
static unsigned rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (unsigned)((rng_state * 2685821657736338717ULL) >> 32);
}

/* Feeds IN in pieces ending at CUTS (ascending positions), like a session:
 * the bytes after the end are not offered again once the reader is done. */
static void feed_split(const char *in, size_t len, size_t max, size_t outmax,
                       const size_t *cuts, size_t ncuts, struct result *res)
{
    struct smtp_data_reader r;
    smtp_data_init(&r, max);
    buf_init(&res->out, outmax);
    res->consumed = 0;
    size_t pos = 0;
    for (size_t k = 0; k <= ncuts && !r.done; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        if (end < pos)
            end = pos;
        /* copy each piece into its own block so over-reads are caught */
        size_t n = end - pos;
        char *piece = malloc(n ? n : 1);
        if (!piece)
            abort();
        if (n)
            memcpy(piece, in + pos, n);
        size_t used = smtp_data_feed(&r, piece, n, &res->out);
        free(piece);
        if (used > n)
            abort();
        res->consumed += used;
        if (!r.done && used != n)
            test_assert(!"consumed less than offered without being done");
        pos = end;
    }
    /* once done, more input is refused */
    if (r.done)
        test_assert(smtp_data_feed(&r, "x", 1, &res->out) == 0);
    res->size = r.size;
    res->oversize = r.oversize;
    res->bare = r.bare_eol;
    res->done = r.done;
}

static void feed_random(const char *in, size_t len, size_t max, size_t outmax, unsigned seed,
                        struct result *res)
{
    size_t cuts[64], n = 0;
    rng_state = 0x9E3779B97F4A7C15ULL ^ seed;
    size_t pos = 0;
    while (n < 64 && len > 0) {
        pos += 1 + rng() % (len / 3 + 2);
        if (pos >= len)
            break;
        cuts[n++] = pos;
    }
    feed_split(in, len, max, outmax, cuts, n, res);
}

static int same(const struct result *a, const struct result *b)
{
    return a->consumed == b->consumed && a->out.len == b->out.len &&
           (a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0) &&
           a->size == b->size && a->oversize == b->oversize && a->bare == b->bare &&
           a->done == b->done;
}

/* The policy, written directly: the end is the first "\r\n.\r\n" (or ".\r\n"
 * at the very start); a line starts at 0 or after CRLF and loses its first
 * dot; a bare LF or a CR followed by something other than LF is bare; a CR
 * held after a line-start dot at the end of input is not yet content. */
static void model(const char *in, size_t len, size_t max, struct result *res)
{
    size_t end = len;
    int done = 0;
    if (len >= 3 && memcmp(in, ".\r\n", 3) == 0) {
        end = 3;
        done = 1;
    } else {
        for (size_t k = 0; k + 5 <= len; k++)
            if (memcmp(in + k, "\r\n.\r\n", 5) == 0) {
                end = k + 5;
                done = 1;
                break;
            }
    }
    size_t cend = done ? end - 3 : end;
    char *content = malloc(len + 1);
    size_t n = 0;
    if (!content)
        abort();
    for (size_t i = 0; i < cend; i++) {
        int line_start = i == 0 || (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n');
        if (in[i] == '.' && line_start)
            continue;
        content[n++] = in[i];
    }
    if (!done && len >= 2 && in[len - 1] == '\r' && in[len - 2] == '.' &&
        (len == 2 || (len >= 4 && in[len - 4] == '\r' && in[len - 3] == '\n')))
        n--; /* the held CR */
    int bare = 0;
    for (size_t i = 0; i < end; i++) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            bare = 1;
        if (in[i] == '\r' && i + 1 < end && in[i + 1] != '\n')
            bare = 1;
    }
    res->consumed = end;
    buf_init(&res->out, (size_t)-1 / 2);
    if (buf_append(&res->out, content, n < max ? n : max) < 0)
        abort();
    res->size = n;
    res->oversize = n > max;
    res->bare = bare;
    res->done = done;
    free(content);
}

static const struct data_case {
    const char *name;
    const char *in;
    size_t len;
    size_t max;
    int done;
    size_t consumed; /* (size_t)-1: all of it */
    const char *content;
    size_t clen;
    int bare, oversize;
} data_cases[] = {
#define ALL ((size_t)-1)
    {"simple", S("Hello\r\n.\r\n"), 1000, 1, ALL, S("Hello\r\n"), 0, 0},
    {"empty message", S(".\r\n"), 1000, 1, ALL, S(""), 0, 0},
    {"empty message, max 0", S(".\r\n"), 0, 1, ALL, S(""), 0, 0},
    {"one empty line", S("\r\n.\r\n"), 1000, 1, ALL, S("\r\n"), 0, 0},
    {"two lines", S("a\r\n\r\nb\r\n.\r\n"), 1000, 1, ALL, S("a\r\n\r\nb\r\n"), 0, 0},
    {"dot-stuffed dot line", S("..\r\n.\r\n"), 1000, 1, ALL, S(".\r\n"), 0, 0},
    {"dot-stuffing", S("a\r\n..b\r\n...\r\n.c\r\n. \r\n.\r\n"), 1000, 1, ALL, S("a\r\n.b\r\n..\r\nc\r\n \r\n"), 0, 0},
    {"first line stuffed", S(".a\r\n.\r\n"), 1000, 1, ALL, S("a\r\n"), 0, 0},
    {"dot mid-line kept", S("a.b\r\nc.\r\n.\r\n"), 1000, 1, ALL, S("a.b\r\nc.\r\n"), 0, 0},
    {"binary and NUL kept", S("a\0b\xff\r\n.\r\n"), 1000, 1, ALL, S("a\0b\xff\r\n"), 0, 0},
    {"pipelined after end", S("x\r\n.\r\nQUIT\r\n"), 1000, 1, 6, S("x\r\n"), 0, 0},
    {"pipelined after empty", S(".\r\nMAIL FROM:<>\r\n"), 1000, 1, 3, S(""), 0, 0},
    {"pipelined second end", S("x\r\n.\r\n.\r\n"), 1000, 1, 6, S("x\r\n"), 0, 0},
    {"no end yet", S("abc\r\n"), 1000, 0, ALL, S("abc\r\n"), 0, 0},
    {"no end, pending dot", S("abc\r\n."), 1000, 0, ALL, S("abc\r\n"), 0, 0},
    {"no end, pending dot CR", S("abc\r\n.\r"), 1000, 0, ALL, S("abc\r\n"), 0, 0},
    {"no end, pending CR", S("abc\r"), 1000, 0, ALL, S("abc\r"), 0, 0},
    /* smuggling: none of these end the message */
    {"LF.LF", S("a\n.\nMAIL FROM:<x@y>\r\n"), 1000, 0, ALL, S("a\n.\nMAIL FROM:<x@y>\r\n"), 1, 0},
    {"LF.LF at start", S("\n.\n"), 1000, 0, ALL, S("\n.\n"), 1, 0},
    {"CRLF.LF", S("a\r\n.\nMAIL FROM:<x@y>\r\n"), 1000, 0, ALL, S("a\r\n\nMAIL FROM:<x@y>\r\n"), 1, 0},
    {"LF.CRLF", S("a\n.\r\nMAIL FROM:<x@y>\r\n"), 1000, 0, ALL, S("a\n.\r\nMAIL FROM:<x@y>\r\n"), 1, 0},
    {"CR.CRLF", S("a\r.\r\nMAIL FROM:<x@y>\r\n"), 1000, 0, ALL, S("a\r.\r\nMAIL FROM:<x@y>\r\n"), 1, 0},
    {"CRLF.CR x", S("a\r\n.\rMAIL FROM:<x@y>\r\n"), 1000, 0, ALL, S("a\r\n\rMAIL FROM:<x@y>\r\n"), 1, 0},
    {"CR.CR", S("a\r.\rb"), 1000, 0, ALL, S("a\r.\rb"), 1, 0},
    {".LF at start", S(".\nb"), 1000, 0, ALL, S("\nb"), 1, 0},
    {".CR x at start", S(".\rb"), 1000, 0, ALL, S("\rb"), 1, 0},
    {"CRCRLF.CRLF", S("a\r\r\n.\r\n"), 1000, 1, ALL, S("a\r\r\n"), 1, 0},
    {"CRLF.CRCRLF then end", S("a\r\n.\r\r\n.\r\n"), 1000, 1, ALL, S("a\r\n\r\r\n"), 1, 0},
    {"smuggled then real end", S("a\n.\nRSET\r\nb\r\n.\r\n"), 1000, 1, ALL, S("a\n.\nRSET\r\nb\r\n"), 1, 0},
    {"bare LF mid-line", S("a\nb\r\n.\r\n"), 1000, 1, ALL, S("a\nb\r\n"), 1, 0},
    {"bare CR mid-line", S("a\rb\r\n.\r\n"), 1000, 1, ALL, S("a\rb\r\n"), 1, 0},
    {"LFCRLF", S("a\n\r\n.\r\n"), 1000, 1, ALL, S("a\n\r\n"), 1, 0},
    /* size limit: content counted after unstuffing */
    {"at max", S("abc\r\n.\r\n"), 5, 1, ALL, S("abc\r\n"), 0, 0},
    {"max+1", S("abc\r\n.\r\n"), 4, 1, ALL, S("abc\r"), 0, 1},
    {"max 0", S("abc\r\n.\r\n"), 0, 1, ALL, S(""), 0, 1},
    {"stuffed at max", S("..\r\n.\r\n"), 3, 1, ALL, S(".\r\n"), 0, 0},
    {"stuffed max+1", S("..\r\n.\r\n"), 2, 1, ALL, S(".\r"), 0, 1},
    {"oversize, pipelined kept", S("abcdef\r\n.\r\nQUIT\r\n"), 3, 1, 11, S("abc"), 0, 1},
    {"oversize and bare", S("abc\ndef\r\n.\r\n"), 2, 1, ALL, S("ab"), 1, 1},
#undef ALL
};

static void check_case(const struct data_case *t, const struct result *res, const char *how)
{
    size_t consumed = t->consumed == (size_t)-1 ? t->len : t->consumed;
    int ok = res->consumed == consumed && res->done == t->done && res->bare == t->bare &&
             res->oversize == t->oversize && res->out.len == t->clen &&
             (t->clen == 0 || memcmp(res->out.data, t->content, t->clen) == 0);
    if (!ok)
        printf("     %s (%s): consumed %zu done %d bare %d oversize %d len %zu\n", t->name, how,
               res->consumed, res->done, res->bare, res->oversize, res->out.len);
    test_assert(ok);
}

static void test_data_table(void)
{
    test_begin("DATA reader table: whole, byte by byte, every 2-split, random splits");
    for (size_t i = 0; i < sizeof data_cases / sizeof data_cases[0]; i++) {
        const struct data_case *t = &data_cases[i];
        struct result whole, other, m;
        size_t cuts[4096];

        feed_split(t->in, t->len, t->max, (size_t)-1 / 2, NULL, 0, &whole);
        check_case(t, &whole, "whole");
        test_assert(whole.size >= whole.out.len);
        model(t->in, t->len, t->max, &m);
        check_case(t, &m, "model");
        buf_deinit(&m.out);

        for (size_t k = 0; k < t->len && k < 4096; k++)
            cuts[k] = k + 1;
        feed_split(t->in, t->len, t->max, (size_t)-1 / 2, cuts, t->len, &other);
        check_case(t, &other, "byte by byte");
        test_assert(same(&whole, &other));
        buf_deinit(&other.out);

        for (size_t k = 0; k <= t->len; k++) {
            cuts[0] = k;
            feed_split(t->in, t->len, t->max, (size_t)-1 / 2, cuts, 1, &other);
            if (!same(&whole, &other))
                printf("     %s: split at %zu differs\n", t->name, k);
            test_assert(same(&whole, &other));
            buf_deinit(&other.out);
        }
        for (unsigned seed = 0; seed < 50; seed++) {
            feed_random(t->in, t->len, t->max, (size_t)-1 / 2, seed, &other);
            test_assert(same(&whole, &other));
            buf_deinit(&other.out);
        }
        buf_deinit(&whole.out);
    }
    test_end();
}

static void test_data_big(void)
{
    test_begin("DATA reader: large message at max and max+1, fed in odd chunks");
    size_t body = 100000;
    char *in = malloc(body + 16);
    if (!in)
        abort();
    for (size_t i = 0; i < body; i++)
        in[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
    /* cut the body after its last CRLF, then the end */
    size_t n = body - (body % 78);
    memcpy(in + n, ".\r\n", 3);
    size_t len = n + 3;
    for (int extra = 0; extra <= 1; extra++) {
        size_t max = n - (size_t)extra;
        struct result whole, other;
        feed_split(in, len, max, (size_t)-1 / 2, NULL, 0, &whole);
        test_assert(whole.done && whole.consumed == len && whole.size == n);
        test_assert(whole.oversize == extra);
        test_assert(whole.out.len == max);
        test_assert(memcmp(whole.out.data, in, max) == 0);
        for (unsigned seed = 0; seed < 10; seed++) {
            feed_random(in, len, max, (size_t)-1 / 2, seed, &other);
            test_assert(same(&whole, &other));
            buf_deinit(&other.out);
        }
        buf_deinit(&whole.out);
    }
    free(in);
    test_end();
}

static void test_data_out_full(void)
{
    test_begin("DATA reader: OUT fuller than max counts as oversize, same under splits");
    static const char in[] = "0123456789\r\n.\r\nNOOP\r\n";
    size_t len = sizeof in - 1;
    for (size_t outmax = 0; outmax <= 14; outmax++) {
        struct result whole, other;
        feed_split(in, len, 1000, outmax, NULL, 0, &whole);
        test_assert(whole.done && whole.consumed == len - 6 && whole.size == 12);
        test_assert(whole.oversize == (outmax < 12));
        test_assert(whole.out.len == (outmax < 12 ? outmax : 12));
        for (unsigned seed = 0; seed < 20; seed++) {
            feed_random(in, len, 1000, outmax, seed, &other);
            test_assert(same(&whole, &other));
            buf_deinit(&other.out);
        }
        buf_deinit(&whole.out);
    }
    /* OUT already holds a header: the content follows it, max counts content only */
    {
        struct smtp_data_reader r;
        struct buf out;
        buf_init(&out, 20);
        test_assert(buf_append(&out, "Received: x\r\n", 13) == 0);
        smtp_data_init(&r, 100);
        test_assert(smtp_data_feed(&r, "abcdefghij\r\n.\r\n", 15, &out) == 15);
        test_assert(r.done && r.oversize && r.size == 12 && out.len == 20);
        test_assert(memcmp(out.data, "Received: x\r\nabcdefg", 20) == 0);
        buf_deinit(&out);
    }
    test_end();
}

static void test_data_model(void)
{
    static const char alphabet[] = ".\r\n\r\n.aX";
    char in[48];
    test_begin("DATA reader agrees with the policy model on random inputs");
    int bad = 0;
    for (unsigned iter = 0; iter < 30000 && bad < 5; iter++) {
        rng_state = 0xD1B54A32D192ED03ULL + iter;
        size_t len = rng() % sizeof in;
        for (size_t i = 0; i < len; i++)
            in[i] = alphabet[rng() % (sizeof alphabet - 1)];
        size_t max = rng() % 40;
        struct result whole, m, other;
        feed_split(in, len, max, (size_t)-1 / 2, NULL, 0, &whole);
        model(in, len, max, &m);
        feed_random(in, len, max, (size_t)-1 / 2, iter, &other);
        if (!same(&whole, &m) || !same(&whole, &other)) {
            bad++;
            printf("     mismatch on input of %zu bytes (iter %u)\n", len, iter);
        }
        buf_deinit(&whole.out);
        buf_deinit(&m.out);
        buf_deinit(&other.out);
    }
    test_assert(bad == 0);
    test_end();
}

/* ---- smtp_bare_eol_scan ---- */

static const struct bare_case {
    const char *chunks[4]; /* NULL-terminated list of chunks */
    int last;              /* then the end-of-data call */
    int bare;
} bare_cases[] = {
    {{"a\r\nb\r\n", NULL}, 1, 0},
    {{"", NULL}, 1, 0},
    {{"a\nb", NULL}, 0, 1},
    {{"\n", NULL}, 0, 1},
    {{"a\rb", NULL}, 0, 1},
    {{"a\r", "\nb", NULL}, 1, 0},
    {{"a\r", "", "\nb", NULL}, 1, 0},
    {{"a\r", "b", NULL}, 0, 1},
    {{"a\r", "\r\n", NULL}, 0, 1},
    {{"a\r", NULL}, 0, 0},
    {{"a\r", NULL}, 1, 1},
    {{"a\r\n", "\n", NULL}, 0, 1},
    {{"a\r\n.\r\n", "\r\n", NULL}, 1, 0},
    {{"a\n", "b\r\n", NULL}, 1, 1},
};

static void test_bare_scan(void)
{
    test_begin("smtp_bare_eol_scan: chunks, byte by byte, end of data");
    for (size_t i = 0; i < sizeof bare_cases / sizeof bare_cases[0]; i++) {
        const struct bare_case *t = &bare_cases[i];
        for (int bytewise = 0; bytewise <= 1; bytewise++) {
            int st = 0, r = 0;
            for (size_t c = 0; c < 4 && t->chunks[c]; c++) {
                const char *p = t->chunks[c];
                size_t n = strlen(p);
                if (!bytewise) {
                    r = smtp_bare_eol_scan(p, n, &st);
                } else {
                    for (size_t k = 0; k < n; k++)
                        r = smtp_bare_eol_scan(p + k, 1, &st);
                    if (n == 0)
                        r = smtp_bare_eol_scan(p, 0, &st);
                }
            }
            /* *STATE != 0 exactly when the data would be bare if it ended here */
            int st_end = st;
            test_assert((st != 0) == smtp_bare_eol_scan(NULL, 0, &st_end));
            if (t->last)
                r = smtp_bare_eol_scan(NULL, 0, &st);
            if (r != t->bare)
                printf("     case %zu bytewise %d: %d\n", i, bytewise, r);
            test_assert(r == t->bare);
        }
    }
    test_end();
}

const test_fn test_smtp_data_tests[] = {
    test_data_table, test_data_big, test_data_out_full, test_data_model, test_bare_scan, NULL,
};
