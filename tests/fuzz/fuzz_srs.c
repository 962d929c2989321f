/* fuzz_srs: libFuzzer target for src/queue/srs.c, the SRS address parser
 * and rewriter. The input is one address (bytes, no CRLF). Each call gets
 * an exact-size heap copy so AddressSanitizer catches any read past the
 * length. Cross-checks that abort() on failure:
 *   - srs_parse: on SRS_OK every part lies inside the input, the hash has
 *     SRS_HASH_LEN characters, an SRS0 a two-character stamp, host and user
 *     are not empty, the domain is what follows the last '@';
 *   - srs_reverse (fixed key and time) agrees with srs_parse on whether the
 *     input is SRS at all, and its output fits and is NUL-terminated;
 *   - round trip: the input as an envelope sender, srs_forward by
 *     fwd.example, then srs_reverse of the result when it parses, gives the
 *     input back (an SRS1 input: the SRS0 at its first forwarder; the tag
 *     of an SRS0 input in upper case);
 *   - the rewritten address never exceeds SRS_ADDR_MAX. */
#include "queue/srs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "check failed: %s\n", #x); abort(); } } while (0)

static const time_t T = 1796000000;
static const unsigned char key[SRS_KEY_LEN] = "fuzz-srs-key-0123456789abcdefgh";

static int inside(const char *base, size_t len, const char *p, size_t n)
{
    return p >= base && p + n <= base + len;
}

static void check_parse(const char *a, size_t n)
{
    struct srs_parts p;
    enum srs_result r = srs_parse(a, n, &p);
    CHECK(r == SRS_OK || r == SRS_NOT_SRS || r == SRS_SYNTAX);
    if (r != SRS_OK)
        return;
    CHECK(p.type == 0 || p.type == 1);
    CHECK(inside(a, n, p.hash, p.hash_len) && p.hash_len == SRS_HASH_LEN);
    CHECK(p.type == 1 || (inside(a, n, p.stamp, p.stamp_len) && p.stamp_len == 2));
    CHECK(inside(a, n, p.host, p.host_len) && p.host_len > 0);
    CHECK(inside(a, n, p.user, p.user_len) && p.user_len > 0);
    CHECK(inside(a, n, p.domain, p.domain_len) && p.domain_len > 0);
    CHECK(p.domain + p.domain_len == a + n && p.domain[-1] == '@');
    CHECK(!memchr(p.domain, '@', p.domain_len));
    CHECK(n <= SRS_ADDR_MAX);
}

static void check_round_trip(const char *s)
{
    char out[SRS_ADDR_MAX + 1], back[SRS_ADDR_MAX + 1];
    int f = srs_forward(key, s, "fwd.example", T, out, sizeof out);
    CHECK(f == -1 || f == 0 || f == 1);
    if (f < 0)
        return;
    CHECK(strlen(out) <= SRS_ADDR_MAX);
    if (f == 0) {
        CHECK(strcmp(out, s) == 0);
        return;
    }
    CHECK(strncmp(out, "SRS0=", 5) == 0 || strncmp(out, "SRS1=", 5) == 0);
    struct srs_parts p;
    CHECK(srs_parse(out, strlen(out), &p) == SRS_OK);
    enum srs_result r = srs_reverse(key, out, T, back, sizeof back);
    CHECK(r == SRS_OK);
    if (r != SRS_OK)
        return;
    struct srs_parts sp;
    if (srs_parse(s, strlen(s), &sp) == SRS_OK && sp.type == 1) {
        char expect[2 * SRS_ADDR_MAX];
        snprintf(expect, sizeof expect, "SRS0%.*s@%.*s", (int)sp.user_len, sp.user,
                 (int)sp.host_len, sp.host);
        CHECK(strcmp(back, expect) == 0);
    } else {
        /* an SRS0 sender comes back with the tag in upper case, as in libsrs2 */
        CHECK(strlen(back) == strlen(s) && strncasecmp(back, s, 4) == 0 &&
              strcmp(back + (strlen(s) >= 4 ? 4 : 0), s + (strlen(s) >= 4 ? 4 : 0)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *a = malloc(size ? size : 1);
    if (!a)
        abort();
    if (size)
        memcpy(a, data, size);
    check_parse(a, size);
    free(a);

    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    char out[SRS_ADDR_MAX + 1];
    struct srs_parts p;
    enum srs_result pr = srs_parse(s, strlen(s), &p);
    enum srs_result r = srs_reverse(key, s, T, out, sizeof out);
    CHECK((pr == SRS_OK) == (r == SRS_OK || r == SRS_BAD_HASH || r == SRS_EXPIRED ||
                             r == SRS_TOO_LONG));
    if (pr != SRS_OK)
        CHECK(r == pr);
    if (r == SRS_OK)
        CHECK(strlen(out) < sizeof out);
    check_round_trip(s);
    free(s);
    return 0;
}
