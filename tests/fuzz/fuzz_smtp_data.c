/* fuzz_smtp_data: libFuzzer target for src/smtp/smtp_data.c. Input layout:
 * byte 0-1 = the size limit (0..65535, reduced modulo len+8 so that the
 * oversize path is common), byte 2 = the seed of the split pattern, byte 3 =
 * the room in OUT beyond the limit (0 = unlimited), the rest = the bytes
 * the client sends after DATA. The input is fed whole, in splits derived
 * from the seed, and one byte at a time; all three, and a direct model of
 * the policy (first CRLF.CRLF ends, line-start dots dropped, bare CR/LF),
 * must agree on output and state, else abort(). smtp_bare_eol_scan is
 * checked the same way (whole, split, byte by byte, model). */
#include "core/buf.h"
#include "smtp/smtp_data.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct res {
    size_t consumed, size;
    int oversize, bare, done;
    struct buf out;
};

static uint32_t rng_s;

static uint32_t rng(void)
{
    rng_s = rng_s * 1103515245u + 12345u;
    return rng_s >> 8;
}

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "check failed: %s\n", #x); abort(); } } while (0)

/* MODE 0: whole; 1: byte by byte; 2: random pieces from SEED. */
static void run(const char *in, size_t len, size_t max, size_t outmax, int mode, unsigned seed,
                struct res *r)
{
    struct smtp_data_reader rd;
    smtp_data_init(&rd, max);
    buf_init(&r->out, outmax);
    r->consumed = 0;
    rng_s = seed;
    size_t pos = 0;
    while (pos < len && !rd.done) {
        size_t n = len - pos;
        if (mode == 1)
            n = 1;
        else if (mode == 2)
            n = 1 + rng() % (rng() % 4 == 0 ? n : (n < 8 ? n : 8));
        char *piece = malloc(n);
        if (!piece)
            abort();
        memcpy(piece, in + pos, n);
        size_t used = smtp_data_feed(&rd, piece, n, &r->out);
        free(piece);
        CHECK(used <= n);
        CHECK(rd.done || used == n);
        r->consumed += used;
        pos += n;
    }
    if (rd.done)
        CHECK(smtp_data_feed(&rd, "x", 1, &r->out) == 0);
    r->size = rd.size;
    r->oversize = rd.oversize;
    r->bare = rd.bare_eol;
    r->done = rd.done;
}

static void model(const char *in, size_t len, size_t max, size_t outroom, struct res *r)
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
    size_t cend = done ? end - 3 : end, n = 0;
    char *content = malloc(len + 1);
    if (!content)
        abort();
    for (size_t i = 0; i < cend; i++) {
        int ls = i == 0 || (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n');
        if (!(ls && in[i] == '.'))
            content[n++] = in[i];
    }
    if (!done && len >= 2 && in[len - 1] == '\r' && in[len - 2] == '.' &&
        (len == 2 || (len >= 4 && in[len - 4] == '\r' && in[len - 3] == '\n')))
        n--;
    int bare = 0;
    for (size_t i = 0; i < end; i++)
        if ((in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) ||
            (in[i] == '\r' && i + 1 < end && in[i + 1] != '\n'))
            bare = 1;
    size_t keep = n < max ? n : max;
    if (keep > outroom)
        keep = outroom;
    buf_init(&r->out, (size_t)-1 / 2);
    CHECK(buf_append(&r->out, content, keep) == 0);
    free(content);
    r->consumed = end;
    r->size = n;
    r->oversize = keep < n;
    r->bare = bare;
    r->done = done;
}

static void same(const struct res *a, const struct res *b)
{
    CHECK(a->consumed == b->consumed);
    CHECK(a->size == b->size);
    CHECK(a->oversize == b->oversize);
    CHECK(a->bare == b->bare);
    CHECK(a->done == b->done);
    CHECK(a->out.len == b->out.len);
    CHECK(a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0);
}

static int bare_scan(const char *in, size_t len, int mode, unsigned seed)
{
    int st = 0, r = 0;
    size_t pos = 0;
    rng_s = seed;
    while (pos < len) {
        size_t n = mode == 0 ? len - pos : mode == 1 ? 1 : 1 + rng() % (len - pos);
        r = smtp_bare_eol_scan(in + pos, n, &st);
        pos += n;
    }
    int r2 = smtp_bare_eol_scan(NULL, 0, &st);
    CHECK(r2 >= r);
    return r2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    const char *in = (const char *)data + 4;
    size_t len = size - 4;
    size_t max = (((size_t)data[0] << 8) | data[1]) % (len + 8);
    unsigned seed = data[2];
    size_t outroom = data[3] ? data[3] - 1u : (size_t)-1 / 2;
    size_t outmax = outroom;

    struct res whole, bytes, split, m;
    run(in, len, max, outmax, 0, 0, &whole);
    run(in, len, max, outmax, 1, 0, &bytes);
    run(in, len, max, outmax, 2, seed, &split);
    model(in, len, max, outroom, &m);
    same(&whole, &bytes);
    same(&whole, &split);
    same(&whole, &m);
    buf_deinit(&whole.out);
    buf_deinit(&bytes.out);
    buf_deinit(&split.out);
    buf_deinit(&m.out);

    int bm = 0;
    for (size_t i = 0; i < len; i++)
        if ((in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) ||
            (in[i] == '\r' && (i + 1 == len || in[i + 1] != '\n')))
            bm = 1;
    CHECK(bare_scan(in, len, 0, 0) == bm);
    CHECK(bare_scan(in, len, 1, 0) == bm);
    CHECK(bare_scan(in, len, 2, seed) == bm);
    return 0;
}
