/* fuzz_mime: libFuzzer target for src/mime/. The input is a message (the
 * stored bytes). It is parsed, and then:
 *   - ENVELOPE and BODY/BODYSTRUCTURE (both with and without UTF8=ACCEPT)
 *     must be one well-formed IMAP parenthesized list: balanced, quoted
 *     strings without CR/LF/NUL (and 7-bit unless UTF8), literals whose
 *     announced length fits;
 *   - every section that exists (part paths found by walking 1, 2, ... at
 *     each level, bounded) must lie inside the input, a part's MIME header
 *     must end where its content starts, an embedded message's HEADER where
 *     its TEXT starts, and the whole message's HEADER must start at 0;
 *   - HEADER.FIELDS and .NOT of each message header must end with CRLF;
 *   - BINARY of each part answers 0, 1 or 2;
 *   - the SEARCH helpers run with fixed needles and one taken from the
 *     input, and mime_sent_date with the header's own zone;
 *   - header SEARCH (with its fast path for plain ASCII values) answers as
 *     a reference that always unfolds, decodes RFC 2047 and case-folds.
 * Any violation aborts. */
#include "core/buf.h"
#include "mime/mime.h"
#include "mime/mime_int.h"

#include <gmime/gmime.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Case-folded valid UTF-8 of S (g_malloc'd). */
static char *ref_fold(const char *s)
{
    char *valid = g_utf8_make_valid(s, -1);
    char *f = g_utf8_casefold(valid, -1);
    g_free(valid);
    return f;
}

/* Header field NAME of the block DATA[0..len) contains NEEDLE, the slow
 * way for every value: unfold, RFC 2047 decode, case-fold, compare. */
static int ref_header_contains(const char *data, size_t len, const char *name,
                               const char *needle)
{
    char *fn = ref_fold(needle);
    size_t pos = 0;
    struct mime_hfield f;
    int found = 0;
    while (!found && mime_hdr_next(data, 0, len, &pos, &f)) {
        if (!mime_name_eq(data + f.name_off, f.name_len, name))
            continue;
        if (!*fn) {
            found = 1;
            break;
        }
        size_t ul;
        char *v = mime_unfold(data + f.value_off, f.value_len, &ul);
        char *d = g_mime_utils_header_decode_text(NULL, v);
        char *fd = ref_fold(d);
        found = strstr(fd, fn) != NULL;
        g_free(fd);
        g_free(d);
        free(v);
    }
    g_free(fn);
    return found;
}

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "check failed: %s\n", #x); abort(); } } while (0)

#define MAX_PATHS 300
#define MAX_DEPTH 6
#define MAX_WIDTH 40

/* One IMAP list: "(" ... ")" with nested lists, NIL, numbers, quoted
 * strings and literals, separated by single spaces. */
static void check_imap_list(const char *s, size_t n, int utf8)
{
    size_t i = 0;
    int depth = 0, started = 0;
    while (i < n) {
        char c = s[i];
        if (c == '(') {
            depth++;
            started = 1;
            i++;
        } else if (c == ')') {
            CHECK(depth > 0);
            depth--;
            i++;
            if (depth == 0)
                break;
        } else if (c == ' ') {
            CHECK(depth > 0);
            i++;
        } else if (c == '"') {
            i++;
            for (;;) {
                CHECK(i < n);
                unsigned char q = (unsigned char)s[i];
                CHECK(q != '\r' && q != '\n' && q != 0);
                CHECK(utf8 || q < 0x80);
                if (q == '\\') {
                    CHECK(i + 1 < n && (s[i + 1] == '\\' || s[i + 1] == '"'));
                    i += 2;
                    continue;
                }
                i++;
                if (q == '"')
                    break;
            }
        } else if (c == '{') {
            size_t len = 0;
            i++;
            CHECK(i < n && s[i] >= '0' && s[i] <= '9');
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                CHECK(len < ((size_t)1 << 40));
                len = len * 10 + (size_t)(s[i++] - '0');
            }
            CHECK(i + 3 <= n && s[i] == '}' && s[i + 1] == '\r' && s[i + 2] == '\n');
            i += 3;
            CHECK(len <= n - i);
            CHECK(memchr(s + i, 0, len) == NULL);
            i += len;
        } else if (c == 'N') {
            CHECK(n - i >= 3 && memcmp(s + i, "NIL", 3) == 0);
            i += 3;
        } else {
            CHECK(c >= '0' && c <= '9');
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
        }
        CHECK(depth > 0 || !started);
    }
    CHECK(started && depth == 0 && i == n);
}

struct walk {
    const struct mime_msg *m;
    size_t size;
    int paths;
};

static void check_range(const struct walk *w, const uint32_t *p, int np, enum mime_section_kind k,
                        int *ok, size_t *off, size_t *len)
{
    *ok = mime_section_range(w->m, p, np, k, off, len) == 0;
    if (*ok)
        CHECK(*off <= w->size && *len <= w->size - *off);
}

static void check_fields(const struct mime_msg *m, const uint32_t *p, int np, int expect_ok)
{
    static char *names[] = {"Subject", "from", "CONTENT-TYPE", "x"};
    for (int not = 0; not < 2; not++) {
        struct buf out;
        buf_init(&out, 1 << 24);
        int r = mime_header_fields(m, p, np, names, 4, not, &out);
        CHECK(r == (expect_ok ? 0 : 1));
        if (r == 0)
            CHECK(out.len >= 2 && memcmp(out.data + out.len - 2, "\r\n", 2) == 0);
        buf_deinit(&out);
    }
}

static void walk(struct walk *w, uint32_t *p, int np)
{
    for (uint32_t k = 1; k <= MAX_WIDTH && w->paths < MAX_PATHS; k++) {
        p[np] = k;
        size_t aoff, alen, moff, mlen, hoff, hlen, toff, tlen;
        int a, mi, h, t;
        check_range(w, p, np + 1, MIME_SEC_ALL, &a, &aoff, &alen);
        if (!a)
            return;
        w->paths++;
        check_range(w, p, np + 1, MIME_SEC_MIME, &mi, &moff, &mlen);
        CHECK(mi && moff + mlen == aoff);
        check_range(w, p, np + 1, MIME_SEC_HEADER, &h, &hoff, &hlen);
        check_range(w, p, np + 1, MIME_SEC_TEXT, &t, &toff, &tlen);
        CHECK(h == t);
        if (h) {
            CHECK(hoff == aoff && hoff + hlen == toff && toff + tlen == aoff + alen);
        }
        check_fields(w->m, p, np + 1, h);
        struct buf out;
        buf_init(&out, 1 << 24);
        int r = mime_binary(w->m, p, np + 1, &out);
        CHECK(r == 0 || r == 2);
        if (r == 0 && !h)
            CHECK(out.len <= alen + 3); /* decoding never grows */
        buf_deinit(&out);
        if (np + 1 < MAX_DEPTH)
            walk(w, p, np + 1);
    }
}

static void check_list(const struct mime_msg *m, int which, int ext, int utf8)
{
    struct buf out;
    buf_init(&out, 1 << 26);
    int r = which ? mime_bodystructure(m, ext, utf8, &out) : mime_envelope(m, utf8, &out);
    CHECK(r == 0);
    check_imap_list(out.data, out.len, utf8);
    buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mime_init();
    /* A copy of exactly SIZE bytes: ASan sees any read past the end. */
    char *msg = malloc(size ? size : 1);
    if (!msg)
        abort();
    if (size)
        memcpy(msg, data, size);
    struct mime_msg *m = mime_parse(msg, size);
    CHECK(m != NULL);

    for (int utf8 = 0; utf8 < 2; utf8++) {
        check_list(m, 0, 0, utf8);
        check_list(m, 1, 0, utf8);
        check_list(m, 1, 1, utf8);
    }

    struct walk w = {m, size, 0};
    size_t off, len, hoff, hlen, toff, tlen;
    CHECK(mime_section_range(m, NULL, 0, MIME_SEC_ALL, &off, &len) == 0 && off == 0 && len == size);
    CHECK(mime_section_range(m, NULL, 0, MIME_SEC_HEADER, &hoff, &hlen) == 0 && hoff == 0);
    CHECK(mime_section_range(m, NULL, 0, MIME_SEC_TEXT, &toff, &tlen) == 0);
    CHECK(hlen == toff && toff + tlen == size);
    CHECK(mime_section_range(m, NULL, 0, MIME_SEC_MIME, &off, &len) == 1);
    check_fields(m, NULL, 0, 1);
    uint32_t path[MAX_DEPTH + 1];
    walk(&w, path, 0);

    /* SEARCH helpers. */
    char needle[9];
    size_t nl = size < 8 ? size : 8;
    memcpy(needle, msg + (size - nl) / 2, nl);
    needle[nl] = '\0';
    static const char *const names[] = {"subject", "from", "to", "cc", "bcc", "x-unknown"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int r = mime_header_contains(m, names[i], needle);
        CHECK(r == 0 || r == 1);
        CHECK(mime_header_contains(m, names[i], "\xc3\xa9") >= 0);
        size_t fl;
        char *folded = mime_search_fold(needle, &fl);
        int fast = mime_hdrblock_contains(msg, 0, hlen, names[i], folded, fl);
        free(folded);
        CHECK(fast == r);
        CHECK(fast == ref_header_contains(msg, hlen, names[i], needle));
    }
    CHECK(mime_text_contains(m, needle, 0) >= 0);
    CHECK(mime_text_contains(m, needle, 1) >= 0);
    CHECK(mime_text_contains(m, "stra\xc3\x9f" "e", 0) >= 0);
    CHECK(mime_text_contains(m, "", 1) == 1);
    time_t t;
    int tz;
    if (mime_sent_date(m, &t, &tz) == 0)
        CHECK(tz > -24 * 60 && tz < 24 * 60);

    /* the From: fields (submission's ownership check, the DKIM domain):
     * each call moves forward, values hold no CR or LF */
    size_t pos = 0, last = 0;
    char *from;
    while ((from = mime_next_from_field(msg, size, &pos)) != NULL) {
        CHECK(pos > last && pos <= size);
        CHECK(!strchr(from, '\r') && !strchr(from, '\n'));
        last = pos;
        free(from);
    }

    mime_free(&m);
    CHECK(m == NULL);
    free(msg);
    return 0;
}
