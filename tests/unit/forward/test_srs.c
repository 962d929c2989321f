/* test_srs: the SRS rewriting of src/queue/srs.c: SRS0 round trip, SRS1 of
 * an SRS0 and of an SRS1, tampered and expired addresses refused, the
 * case-insensitive hash and timestamp, the separators, and bad input to the
 * parser and to the rewriter. */
#include "forward_tests.h"
#include "queue/srs.h"
#include "test.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define DAY 86400
static const time_t T0 = 1796000000;   /* a fixed "now" (2026-11) */

void srs_tests_key(unsigned char key[SRS_KEY_LEN], unsigned char seed)
{
    for (int i = 0; i < SRS_KEY_LEN; i++)
        key[i] = (unsigned char)(seed * 31 + i * 7);
}

static void test_srs0_round_trip(void)
{
    test_begin("srs: SRS0 forward and reverse round trip");
    unsigned char key[SRS_KEY_LEN];
    srs_tests_key(key, 1);
    char out[SRS_ADDR_MAX + 1], back[SRS_ADDR_MAX + 1];
    test_assert(srs_forward(key, "Alice.B@Orig.Example", "fwd.example", T0, out, sizeof out) ==
                1);
    /* SRS0=HHHHHH=TT=Orig.Example=Alice.B@fwd.example */
    test_assert(strncmp(out, "SRS0=", 5) == 0);
    test_assert(strlen(out) == 5 + SRS_HASH_LEN + 1 + 2 + 1 + strlen("Orig.Example=Alice.B@fwd.example"));
    test_assert(strstr(out, "=Orig.Example=Alice.B@fwd.example") != NULL);
    struct srs_parts p;
    test_assert(srs_parse(out, strlen(out), &p) == SRS_OK);
    test_assert(p.type == 0 && p.hash_len == SRS_HASH_LEN && p.stamp_len == 2);
    test_assert(p.host_len == 12 && memcmp(p.host, "Orig.Example", 12) == 0);
    test_assert(p.user_len == 7 && memcmp(p.user, "Alice.B", 7) == 0);
    test_assert(p.domain_len == 11 && memcmp(p.domain, "fwd.example", 11) == 0);
    test_assert(srs_reverse(key, out, T0, back, sizeof back) == SRS_OK);
    test_assert_streq(back, "Alice.B@Orig.Example");
    /* the same input gives the same address the same day */
    char again[SRS_ADDR_MAX + 1];
    test_assert(srs_forward(key, "Alice.B@Orig.Example", "fwd.example", T0 + 60, again,
                            sizeof again) == 1);
    test_assert_streq(again, out);
    /* a local part with '=' and '+' survives */
    test_assert(srs_forward(key, "a=b+c@x.example", "fwd.example", T0, out, sizeof out) == 1);
    test_assert(srs_reverse(key, out, T0, back, sizeof back) == SRS_OK);
    test_assert_streq(back, "a=b+c@x.example");
    test_end();
}

static void test_srs1(void)
{
    test_begin("srs: SRS1 of an SRS0 (and of an SRS1) reverses to the SRS0");
    unsigned char k1[SRS_KEY_LEN], k2[SRS_KEY_LEN], k3[SRS_KEY_LEN];
    srs_tests_key(k1, 1);
    srs_tests_key(k2, 2);
    srs_tests_key(k3, 3);
    char s0[SRS_ADDR_MAX + 1], s1[SRS_ADDR_MAX + 1], s1b[SRS_ADDR_MAX + 1];
    char back[SRS_ADDR_MAX + 1];
    test_assert(srs_forward(k1, "user@orig.example", "fwd1.example", T0, s0, sizeof s0) == 1);
    test_assert(srs_forward(k2, s0, "fwd2.example", T0, s1, sizeof s1) == 1);
    /* SRS1=GGGGGG=fwd1.example==HHHHHH=TT=orig.example=user@fwd2.example */
    char expect_tail[2 * SRS_ADDR_MAX];
    snprintf(expect_tail, sizeof expect_tail, "=fwd1.example=%s", s0 + 4);
    test_assert(strncmp(s1, "SRS1=", 5) == 0);
    char *at = strrchr(expect_tail, '@');
    if (at)
        snprintf(at, sizeof expect_tail - (size_t)(at - expect_tail), "@fwd2.example");
    test_assert_streq(s1 + 5 + SRS_HASH_LEN, expect_tail);
    struct srs_parts p;
    test_assert(srs_parse(s1, strlen(s1), &p) == SRS_OK && p.type == 1);
    /* fwd2 reverses its SRS1 to the SRS0 at fwd1, which reverses it */
    test_assert(srs_reverse(k2, s1, T0, back, sizeof back) == SRS_OK);
    test_assert_streq(back, s0);
    test_assert(srs_reverse(k1, back, T0, back, sizeof back) == SRS_OK);
    test_assert_streq(back, "user@orig.example");
    /* fwd1's key does not verify fwd2's SRS1 */
    test_assert(srs_reverse(k1, s1, T0, back, sizeof back) == SRS_BAD_HASH);
    /* a third forwarder keeps the first host and rest: SRS1 again */
    test_assert(srs_forward(k3, s1, "fwd3.example", T0, s1b, sizeof s1b) == 1);
    test_assert(strncmp(s1b, "SRS1=", 5) == 0 && strstr(s1b, "=fwd1.example==") != NULL);
    test_assert(strstr(s1b, "@fwd3.example") != NULL);
    test_assert(srs_reverse(k3, s1b, T0, back, sizeof back) == SRS_OK);
    test_assert_streq(back, s0);
    test_end();
}

static void test_tampered(void)
{
    test_begin("srs: a tampered hash, stamp, domain or user is refused");
    unsigned char key[SRS_KEY_LEN], other[SRS_KEY_LEN];
    srs_tests_key(key, 1);
    srs_tests_key(other, 9);
    char s0[SRS_ADDR_MAX + 1], t[SRS_ADDR_MAX + 1], back[SRS_ADDR_MAX + 1];
    test_assert(srs_forward(key, "user@orig.example", "fwd.example", T0, s0, sizeof s0) == 1);
    /* each hash character changed to another letter of another case class */
    for (int i = 0; i < SRS_HASH_LEN; i++) {
        snprintf(t, sizeof t, "%s", s0);
        char c = t[5 + i];
        t[5 + i] = (c == 'Q' || c == 'q') ? 'Z' : 'Q';
        test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_BAD_HASH);
    }
    snprintf(t, sizeof t, "%s", s0);
    char *u = strstr(t, "=user@");
    if (u) u[1] = 'v';
    test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_BAD_HASH);
    snprintf(t, sizeof t, "%s", s0);
    char *d = strstr(t, "=orig.example=");
    if (d) d[1] = 'e';
    test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_BAD_HASH);
    snprintf(t, sizeof t, "%s", s0);
    t[5 + SRS_HASH_LEN + 2] = t[5 + SRS_HASH_LEN + 2] == 'A' ? 'B' : 'A';
    test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_BAD_HASH);
    /* another secret */
    test_assert(srs_reverse(other, s0, T0, back, sizeof back) == SRS_BAD_HASH);
    test_end();
}

static void test_expired(void)
{
    test_begin("srs: older than 21 days or from the future is refused");
    unsigned char key[SRS_KEY_LEN];
    srs_tests_key(key, 1);
    char s[SRS_ADDR_MAX + 1], back[SRS_ADDR_MAX + 1];
    test_assert(srs_forward(key, "user@orig.example", "fwd.example", T0 - 21 * DAY, s,
                            sizeof s) == 1);
    test_assert(srs_reverse(key, s, T0, back, sizeof back) == SRS_OK);
    test_assert(srs_forward(key, "user@orig.example", "fwd.example", T0 - 22 * DAY, s,
                            sizeof s) == 1);
    test_assert(srs_reverse(key, s, T0, back, sizeof back) == SRS_EXPIRED);
    test_assert(srs_forward(key, "user@orig.example", "fwd.example", T0 - 400 * DAY, s,
                            sizeof s) == 1);
    test_assert(srs_reverse(key, s, T0, back, sizeof back) == SRS_EXPIRED);
    test_assert(srs_forward(key, "user@orig.example", "fwd.example", T0 + 2 * DAY, s,
                            sizeof s) == 1);
    test_assert(srs_reverse(key, s, T0, back, sizeof back) == SRS_EXPIRED);
    /* the 1024-day wrap: a stamp from 1024 days ago reads as today (spec) */
    test_assert(srs_forward(key, "user@orig.example", "fwd.example", T0 - 1024 * DAY, s,
                            sizeof s) == 1);
    test_assert(srs_reverse(key, s, T0, back, sizeof back) == SRS_OK);
    test_end();
}

static void test_case_insensitive(void)
{
    test_begin("srs: hash, stamp and tag compare case-insensitively; = + - separators");
    unsigned char key[SRS_KEY_LEN];
    srs_tests_key(key, 1);
    char s[SRS_ADDR_MAX + 1], t[SRS_ADDR_MAX + 1], back[SRS_ADDR_MAX + 1];
    test_assert(srs_forward(key, "User@Orig.Example", "fwd.example", T0, s, sizeof s) == 1);
    for (size_t i = 0; i <= strlen(s); i++)
        t[i] = (char)tolower((unsigned char)s[i]);
    test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_OK);
    test_assert_streq(back, "user@orig.example");
    for (size_t i = 0; i <= strlen(s); i++)
        t[i] = (char)toupper((unsigned char)s[i]);
    test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_OK);
    test_assert_streq(back, "USER@ORIG.EXAMPLE");
    snprintf(t, sizeof t, "%s", s);
    t[4] = '+';
    test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_OK);
    t[4] = '-';
    test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_OK);
    t[4] = '.';
    test_assert(srs_reverse(key, t, T0, back, sizeof back) == SRS_NOT_SRS);
    test_end();
}

static void test_bad_input(void)
{
    test_begin("srs: malformed addresses and senders");
    unsigned char key[SRS_KEY_LEN];
    srs_tests_key(key, 1);
    char back[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1];
    struct srs_parts p;
    static const struct { const char *a; enum srs_result r; } cases[] = {
        { "", SRS_NOT_SRS },
        { "@", SRS_NOT_SRS },
        { "plain@fwd.example", SRS_NOT_SRS },
        { "SRS0=abcdef=AA=orig.example=user", SRS_NOT_SRS },   /* no '@' */
        { "SRS2=abcdef=AA=orig.example=user@fwd.example", SRS_NOT_SRS },
        { "SRS0@fwd.example", SRS_NOT_SRS },
        { "SRS0=@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=AA@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=AA=orig.example@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=AA=orig.example=@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=AA==user@fwd.example", SRS_SYNTAX },
        { "SRS0=abcde=AA=orig.example=user@fwd.example", SRS_SYNTAX },     /* short hash */
        { "SRS0=abcdefg=AA=orig.example=user@fwd.example", SRS_SYNTAX },   /* long hash */
        { "SRS0=abc!ef=AA=orig.example=user@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=A1=orig.example=user@fwd.example", SRS_SYNTAX },    /* 1 is not base32 */
        { "SRS0=abcdef=AAA=orig.example=user@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=AA=orig.example=user@", SRS_SYNTAX },
        { "SRS0=abcdef=AA=orig.example=us er@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=AA=orig.example=us\"er@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=AA=or@ig.example=user@fwd.example", SRS_SYNTAX },
        { "SRS1=abcdef=fwd1.example@fwd.example", SRS_SYNTAX },
        { "SRS1=abcdef==x@fwd.example", SRS_SYNTAX },
        { "SRS1=abcdef=fwd1.example=@fwd.example", SRS_SYNTAX },
        { "SRS0=abcdef=AA=orig.example=user@fwd.example", SRS_BAD_HASH },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum srs_result r = srs_reverse(key, cases[i].a, T0, back, sizeof back);
        if (r != cases[i].r)
            fprintf(stderr, "case %zu (%s): %s\n", i, cases[i].a, srs_result_name(r));
        test_assert(r == cases[i].r);
    }
    /* longer than an SMTP path */
    char longa[400];
    memset(longa, 'a', sizeof longa);
    memcpy(longa, "SRS0=abcdef=AA=o.example=", 25);
    memcpy(longa + 380, "@fwd.example", 13);
    test_assert(srs_parse(longa, strlen(longa), &p) == SRS_SYNTAX);
    /* a NUL inside the length is refused, not read past */
    test_assert(srs_parse("SRS0=abcdef=AA=o.example=u\0x@f.example", 37, &p) == SRS_SYNTAX);

    /* the rewriter: null sender, our own domain, malformed, too long */
    test_assert(srs_forward(key, "", "fwd.example", T0, out, sizeof out) == 0 && out[0] == 0);
    test_assert(srs_forward(key, NULL, "fwd.example", T0, out, sizeof out) == 0 && out[0] == 0);
    test_assert(srs_forward(key, "me@FWD.example", "fwd.example", T0, out, sizeof out) == 0);
    test_assert_streq(out, "me@FWD.example");
    test_assert(srs_forward(key, "nodomain", "fwd.example", T0, out, sizeof out) == -1);
    test_assert(srs_forward(key, "@orig.example", "fwd.example", T0, out, sizeof out) == -1);
    test_assert(srs_forward(key, "user@", "fwd.example", T0, out, sizeof out) == -1);
    /* what would not reverse unambiguously is left alone */
    test_assert(srs_forward(key, "user@SRS0=x.example", "fwd.example", T0, out, sizeof out) ==
                -1);
    test_assert(srs_forward(key, "us er@x.example", "fwd.example", T0, out, sizeof out) == -1);
    test_assert(srs_forward(key, "\"a@b\"@x.example", "fwd.example", T0, out, sizeof out) == -1);
    char longs[250];
    memset(longs, 'b', sizeof longs);
    memcpy(longs + 230, "@orig.example", 14);
    test_assert(srs_forward(key, longs, "fwd.example", T0, out, sizeof out) == -1);
    test_assert_streq(out, longs);   /* the caller may keep the original */
    char small[16];
    test_assert(srs_forward(key, "user@orig.example", "fwd.example", T0, small, sizeof small) ==
                -1);
    test_assert(srs_forward(key, "user@orig.example", "fwd.example", T0, out, sizeof out) == 1);
    test_assert(srs_reverse(key, out, T0, small, sizeof small) == SRS_TOO_LONG);
    test_end();
}

int main(void)
{
    return test_run((test_fn[]){ test_srs0_round_trip, test_srs1, test_tampered, test_expired,
                                 test_case_insensitive, test_bad_input, test_forward_id,
                                 test_forward_loop, test_srs_key_file, test_dir_forward,
                                 test_forward_deliver, NULL });
}
