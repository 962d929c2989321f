/* test_search: imap_search_match for every key of enum imap_skey over
 * hand-made rows (index keys with no file at all, header/body/sent-date
 * keys over message files), AND/OR/NOT with index keys evaluated first,
 * and the SEARCH / ESEARCH replies. */
#include "fetch_tests.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define CRLF "\r\n"
#define FEB(d) ((time_t)1706745600 + ((d) - 1) * 86400)   /* d Feb 2024 00:00 UTC */

static struct imap_search_key key(enum imap_skey k)
{
    struct imap_search_key s;
    memset(&s, 0, sizeof s);
    s.key = k;
    return s;
}

static struct imap_search_key key_str(enum imap_skey k, const char *str)
{
    struct imap_search_key s = key(k);
    s.str = (char *)str;
    return s;
}

static struct imap_search_key key_num(enum imap_skey k, uint64_t n)
{
    struct imap_search_key s = key(k);
    s.num = n;
    s.date = (time_t)n;
    return s;
}

static const struct imap_search_env default_env = {
    .count = 10, .max_uid = 500, .now = 1707127200 + 100,
};

/* Evaluates the one-key program K against ROW as message SEQ. */
static int match_env(struct imap_search_key k, const struct store_fmsg *row, uint32_t seq,
                     const struct imap_search_env *env)
{
    struct imap_search_prog p;
    memset(&p, 0, sizeof p);
    p.root.key = IMAP_SK_AND;
    p.root.child = &k;
    p.root.nchild = 1;
    struct imap_msg_ctx m = { .seq = seq, .row = row };
    int r = imap_search_match(&p, env, &m);
    imap_msg_release(&m);
    return r;
}

static int match(struct imap_search_key k, const struct store_fmsg *row)
{
    return match_env(k, row, 3, &default_env);
}

void test_search_index_keys(void)
{
    test_begin("search: flag, keyword, size and MODSEQ keys from the row only");
    struct store_fmsg row = fx_row(42, STORE_F_SEEN | STORE_F_FLAGGED, "$Junk Work", NULL, 1000);
    static const struct { enum imap_skey k; int want; } flags[] = {
        { IMAP_SK_ALL, 1 }, { IMAP_SK_SEEN, 1 }, { IMAP_SK_UNSEEN, 0 },
        { IMAP_SK_FLAGGED, 1 }, { IMAP_SK_UNFLAGGED, 0 }, { IMAP_SK_ANSWERED, 0 },
        { IMAP_SK_UNANSWERED, 1 }, { IMAP_SK_DELETED, 0 }, { IMAP_SK_UNDELETED, 1 },
        { IMAP_SK_DRAFT, 0 }, { IMAP_SK_UNDRAFT, 1 }, { IMAP_SK_RECENT, 0 },
        { IMAP_SK_NEW, 0 }, { IMAP_SK_OLD, 1 },
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        test_assert(match(key(flags[i].k), &row) == flags[i].want);
    row.sysflags = STORE_F_ANSWERED | STORE_F_DELETED | STORE_F_DRAFT;
    test_assert(match(key(IMAP_SK_ANSWERED), &row) == 1);
    test_assert(match(key(IMAP_SK_DELETED), &row) == 1);
    test_assert(match(key(IMAP_SK_DRAFT), &row) == 1);
    test_assert(match(key(IMAP_SK_SEEN), &row) == 0);
    test_assert(match(key(IMAP_SK_UNSEEN), &row) == 1);

    test_assert(match(key_str(IMAP_SK_KEYWORD, "work"), &row) == 1);    /* no case */
    test_assert(match(key_str(IMAP_SK_KEYWORD, "$junk"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_KEYWORD, "Wor"), &row) == 0);      /* whole words */
    test_assert(match(key_str(IMAP_SK_KEYWORD, "\\Deleted"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_UNKEYWORD, "Work"), &row) == 0);
    test_assert(match(key_str(IMAP_SK_UNKEYWORD, "other"), &row) == 1);
    free(row.keywords);
    row.keywords = NULL;
    test_assert(match(key_str(IMAP_SK_KEYWORD, "Work"), &row) == 0);

    test_assert(match(key_num(IMAP_SK_LARGER, 999), &row) == 1);
    test_assert(match(key_num(IMAP_SK_LARGER, 1000), &row) == 0);
    test_assert(match(key_num(IMAP_SK_SMALLER, 1001), &row) == 1);
    test_assert(match(key_num(IMAP_SK_SMALLER, 1000), &row) == 0);
    test_assert(match(key_num(IMAP_SK_MODSEQ, 7), &row) == 1);
    test_assert(match(key_num(IMAP_SK_MODSEQ, 8), &row) == 0);
    test_assert(match(key_num(IMAP_SK_OLDER, 50), &row) == 1);
    test_assert(match(key_num(IMAP_SK_OLDER, 100), &row) == 1);
    test_assert(match(key_num(IMAP_SK_OLDER, 200), &row) == 0);
    test_assert(match(key_num(IMAP_SK_YOUNGER, 200), &row) == 1);
    test_assert(match(key_num(IMAP_SK_YOUNGER, 100), &row) == 0);

    struct store_fmsg no_file = fx_row(1, 0, NULL, NULL, 1);
    struct imap_search_prog p;
    memset(&p, 0, sizeof p);
    struct imap_search_key ks[3] = { key(IMAP_SK_SEEN), key_num(IMAP_SK_LARGER, 5),
                                     key(IMAP_SK_UNDRAFT) };
    p.root = key(IMAP_SK_AND);
    p.root.child = ks;
    p.root.nchild = 3;
    test_assert(imap_search_index_only(&p));
    ks[1] = key_str(IMAP_SK_FROM, "x");
    test_assert(!imap_search_index_only(&p));
    fx_row_free(&no_file);
    fx_row_free(&row);
    test_end();
}

void test_search_sets(void)
{
    test_begin("search: sequence and UID sets with '*' and '$'");
    struct store_fmsg row = fx_row(42, 0, NULL, NULL, 1);
    struct imap_seq_range r1[] = { { 2, 4 } };
    struct imap_search_key k = key(IMAP_SK_SEQSET);
    k.set = (struct imap_seqset){ .r = r1, .n = 1 };
    test_assert(match_env(k, &row, 3, &default_env) == 1);
    test_assert(match_env(k, &row, 5, &default_env) == 0);
    struct imap_seq_range r2[] = { { 1, 1 }, { 7, IMAP_SEQ_STAR } };   /* 1,7:* */
    k.set = (struct imap_seqset){ .r = r2, .n = 2 };
    test_assert(match_env(k, &row, 10, &default_env) == 1);
    test_assert(match_env(k, &row, 8, &default_env) == 1);
    test_assert(match_env(k, &row, 3, &default_env) == 0);
    struct imap_seq_range r3[] = { { IMAP_SEQ_STAR, IMAP_SEQ_STAR } };  /* * */
    k.set = (struct imap_seqset){ .r = r3, .n = 1 };
    test_assert(match_env(k, &row, 10, &default_env) == 1);
    test_assert(match_env(k, &row, 9, &default_env) == 0);

    k.key = IMAP_SK_UID;
    struct imap_seq_range u1[] = { { 40, 45 } };
    k.set = (struct imap_seqset){ .r = u1, .n = 1 };
    test_assert(match(k, &row) == 1);
    struct imap_seq_range u2[] = { { 43, IMAP_SEQ_STAR } };
    k.set = (struct imap_seqset){ .r = u2, .n = 1 };
    test_assert(match(k, &row) == 0);
    /* UID * is the highest UID: 600:* means 500:600 with max_uid 500 */
    struct imap_seq_range u3[] = { { 600, IMAP_SEQ_STAR } };
    k.set = (struct imap_seqset){ .r = u3, .n = 1 };
    row.uid = 500;
    test_assert(match(k, &row) == 1);
    row.uid = 499;
    test_assert(match(k, &row) == 0);

    /* "$": the saved UIDs, for both set keys */
    static const uint32_t saved[] = { 3, 42, 77 };
    struct imap_search_env env = default_env;
    env.saved = saved;
    env.nsaved = 3;
    k.set = (struct imap_seqset){ .saved = 1 };
    row.uid = 42;
    test_assert(match_env(k, &row, 9, &env) == 1);
    k.key = IMAP_SK_SEQSET;
    test_assert(match_env(k, &row, 9, &env) == 1);
    row.uid = 43;
    test_assert(match_env(k, &row, 9, &env) == 0);
    env.nsaved = 0;
    row.uid = 42;
    test_assert(match_env(k, &row, 9, &env) == 0);
    fx_row_free(&row);
    test_end();
}

void test_search_dates(void)
{
    test_begin("search: internal dates in UTC days, sent dates in their own zone");
    struct store_fmsg row = fx_row(1, 0, NULL, NULL, 1);   /* 5 Feb 10:00 UTC */
    test_assert(match(key_num(IMAP_SK_BEFORE, (uint64_t)FEB(5)), &row) == 0);
    test_assert(match(key_num(IMAP_SK_BEFORE, (uint64_t)FEB(6)), &row) == 1);
    test_assert(match(key_num(IMAP_SK_ON, (uint64_t)FEB(5)), &row) == 1);
    test_assert(match(key_num(IMAP_SK_ON, (uint64_t)FEB(4)), &row) == 0);
    test_assert(match(key_num(IMAP_SK_SINCE, (uint64_t)FEB(5)), &row) == 1);
    test_assert(match(key_num(IMAP_SK_SINCE, (uint64_t)FEB(6)), &row) == 0);
    row.internaldate = FEB(6) - 1;   /* the last second of 5 Feb */
    test_assert(match(key_num(IMAP_SK_ON, (uint64_t)FEB(5)), &row) == 1);
    fx_row_free(&row);

    char *path = fx_write("s", fx_simple);   /* Date: 1 Feb 23:30 -0500 */
    row = fx_row(1, 0, NULL, path, 1);
    test_assert(match(key_num(IMAP_SK_SENTON, (uint64_t)FEB(1)), &row) == 1);
    test_assert(match(key_num(IMAP_SK_SENTON, (uint64_t)FEB(2)), &row) == 0);
    test_assert(match(key_num(IMAP_SK_SENTBEFORE, (uint64_t)FEB(2)), &row) == 1);
    test_assert(match(key_num(IMAP_SK_SENTBEFORE, (uint64_t)FEB(1)), &row) == 0);
    test_assert(match(key_num(IMAP_SK_SENTSINCE, (uint64_t)FEB(1)), &row) == 1);
    test_assert(match(key_num(IMAP_SK_SENTSINCE, (uint64_t)FEB(2)), &row) == 0);
    fx_row_free(&row);
    free(path);

    /* no Date: header: the internal date stands in */
    path = fx_write("n", "Subject: x" CRLF CRLF "y" CRLF);
    row = fx_row(1, 0, NULL, path, 1);
    test_assert(match(key_num(IMAP_SK_SENTON, (uint64_t)FEB(5)), &row) == 1);
    fx_row_free(&row);
    free(path);
    test_end();
}

void test_search_file_keys(void)
{
    test_begin("search: header, body and text keys");
    char *path = fx_write("m", fx_multipart);
    struct store_fmsg row = fx_row(1, 0, NULL, path, 1);
    test_assert(match(key_str(IMAP_SK_FROM, "alice@example"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_FROM, "alice example"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_FROM, "bob"), &row) == 0);
    test_assert(match(key_str(IMAP_SK_TO, "BOB@"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_CC, "carol"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_BCC, "carol"), &row) == 0);
    test_assert(match(key_str(IMAP_SK_SUBJECT, "quarterly"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_SUBJECT, "weekly"), &row) == 0);
    struct imap_search_key h = key_str(IMAP_SK_HEADER, "continued");
    h.field = "X-Tag";
    test_assert(match(h, &row) == 1);
    h.str = "";
    test_assert(match(h, &row) == 1);    /* the field exists */
    h.field = "X-Missing";
    test_assert(match(h, &row) == 0);
    test_assert(match(key_str(IMAP_SK_BODY, "numbers are"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_BODY, "quarterly report"), &row) == 0);
    test_assert(match(key_str(IMAP_SK_TEXT, "quarterly report"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_TEXT, "no such words"), &row) == 0);
    fx_row_free(&row);
    free(path);

    path = fx_write("s", fx_simple);
    row = fx_row(1, 0, NULL, path, 1);
    test_assert(match(key_str(IMAP_SK_SUBJECT, "CAFÉ"), &row) == 1 ||
                match(key_str(IMAP_SK_SUBJECT, "café"), &row) == 1);
    test_assert(match(key_str(IMAP_SK_BODY, "NOON"), &row) == 1);
    fx_row_free(&row);
    free(path);

    /* the file is gone: -1 */
    row = fx_row(1, 0, NULL, NULL, 1);
    test_assert(match(key_str(IMAP_SK_FROM, "a"), &row) == -1);
    test_assert(match(key_str(IMAP_SK_BODY, "a"), &row) == -1);
    fx_row_free(&row);
    test_end();
}

/* K against ROW with the program prepared as SEARCH does (folded needles). */
static int match_prepared(struct imap_search_key k, const struct store_fmsg *row)
{
    struct imap_search_prog p;
    memset(&p, 0, sizeof p);
    p.root.key = IMAP_SK_AND;
    p.root.child = &k;
    p.root.nchild = 1;
    imap_search_prepare(&p);
    struct imap_msg_ctx m = { .seq = 1, .row = row };
    int r = imap_search_match(&p, &default_env, &m);
    imap_msg_release(&m);
    free(k.folded);
    return r;
}

void test_search_cached_header(void)
{
    test_begin("search: header keys answered from the index's cached header, no file");
    const char *msg = fx_multipart;
    const char *end = strstr(msg, CRLF CRLF);
    test_assert(end != NULL);
    struct store_fmsg row = fx_row(1, 0, NULL, NULL, 1);   /* no file at all */
    row.header_len = (size_t)(end - msg) + 4;
    row.header = xmalloc(row.header_len + 1);
    memcpy(row.header, msg, row.header_len);
    row.header[row.header_len] = '\0';
    test_assert(match_prepared(key_str(IMAP_SK_FROM, "alice@example"), &row) == 1);
    test_assert(match_prepared(key_str(IMAP_SK_FROM, "ALICE EXAMPLE"), &row) == 1);
    test_assert(match_prepared(key_str(IMAP_SK_FROM, "bob"), &row) == 0);
    test_assert(match_prepared(key_str(IMAP_SK_TO, "BOB@"), &row) == 1);
    test_assert(match_prepared(key_str(IMAP_SK_SUBJECT, "quarterly"), &row) == 1);
    test_assert(match_prepared(key_str(IMAP_SK_SUBJECT, "weekly"), &row) == 0);
    struct imap_search_key h = key_str(IMAP_SK_HEADER, "continued");
    h.field = "x-tag";
    test_assert(match_prepared(h, &row) == 1);   /* a folded value */
    h.str = "";
    test_assert(match_prepared(h, &row) == 1);
    h.field = "X-Missing";
    test_assert(match_prepared(h, &row) == 0);
    /* a body key needs the file, which is not there */
    test_assert(match_prepared(key_str(IMAP_SK_BODY, "numbers"), &row) == -1);
    free(row.header);
    row.header = NULL;
    fx_row_free(&row);

    /* an RFC 2047 subject in the cached header is decoded */
    static const char enc[] = "Subject: =?UTF-8?Q?Caf=C3=A9_au_lait?=" CRLF CRLF;
    row = fx_row(2, 0, NULL, NULL, 1);
    row.header = xstrdup(enc);
    row.header_len = sizeof enc - 1;
    test_assert(match_prepared(key_str(IMAP_SK_SUBJECT, "CAF\xc3\x89 AU"), &row) == 1);
    test_assert(match_prepared(key_str(IMAP_SK_SUBJECT, "=?utf-8"), &row) == 0);
    free(row.header);
    row.header = NULL;
    fx_row_free(&row);
    test_end();
}

void test_search_nesting(void)
{
    test_begin("search: AND/OR/NOT, index keys first");
    /* no file: a header key would answer -1 if it were evaluated */
    struct store_fmsg row = fx_row(1, STORE_F_SEEN, NULL, NULL, 100);
    struct imap_search_key and_kids[2] = { key_str(IMAP_SK_FROM, "x"), key(IMAP_SK_UNSEEN) };
    struct imap_search_key k = key(IMAP_SK_AND);
    k.child = and_kids;
    k.nchild = 2;
    test_assert(match(k, &row) == 0);          /* UNSEEN fails first */
    struct imap_search_key or_kids[2] = { key_str(IMAP_SK_BODY, "x"), key(IMAP_SK_SEEN) };
    k = key(IMAP_SK_OR);
    k.child = or_kids;
    k.nchild = 2;
    test_assert(match(k, &row) == 1);          /* SEEN matches first */
    or_kids[1] = key(IMAP_SK_DELETED);
    test_assert(match(k, &row) == -1);         /* needs the file */
    struct imap_search_key not_kid = key(IMAP_SK_SEEN);
    k = key(IMAP_SK_NOT);
    k.child = &not_kid;
    k.nchild = 1;
    test_assert(match(k, &row) == 0);
    not_kid = key_num(IMAP_SK_LARGER, 500);
    test_assert(match(k, &row) == 1);
    not_kid = key_str(IMAP_SK_TO, "x");
    test_assert(match(k, &row) == -1);
    /* OR (NOT SEEN) (SMALLER 200) */
    struct imap_search_key inner = key(IMAP_SK_SEEN);
    struct imap_search_key nk = key(IMAP_SK_NOT);
    nk.child = &inner;
    nk.nchild = 1;
    struct imap_search_key kids2[2] = { nk, key_num(IMAP_SK_SMALLER, 200) };
    k = key(IMAP_SK_OR);
    k.child = kids2;
    k.nchild = 2;
    test_assert(match(k, &row) == 1);
    kids2[1] = key_num(IMAP_SK_SMALLER, 50);
    test_assert(match(k, &row) == 0);
    /* a long NOT chain */
    enum { CHAIN = 1001 };
    struct imap_search_key *chain = xcalloc(CHAIN, sizeof *chain);
    for (int i = 0; i < CHAIN - 1; i++) {
        chain[i].key = IMAP_SK_NOT;
        chain[i].child = &chain[i + 1];
        chain[i].nchild = 1;
    }
    chain[CHAIN - 1].key = IMAP_SK_SEEN;
    test_assert(match(chain[0], &row) == 1);   /* 1000 NOTs: SEEN */
    test_assert(match(chain[1], &row) == 0);
    free(chain);
    fx_row_free(&row);
    test_end();
}

static char *format(const struct imap_search_prog *p, const char *tag, int uid,
                    const uint32_t *m, uint32_t n, uint64_t hm)
{
    struct buf b;
    buf_init(&b, 1 << 22);
    test_assert(imap_search_format(p, tag, uid, m, n, hm, &b) == 0);
    return buf_steal(&b, NULL);
}

void test_search_format_plain(void)
{
    test_begin("search: SEARCH replies");
    static const uint32_t m[] = { 1, 2, 3, 5 };
    struct imap_search_prog p;
    memset(&p, 0, sizeof p);
    char *s = format(&p, "a1", 0, m, 4, 0);
    test_assert_streq(s, "* SEARCH 1 2 3 5" CRLF);
    free(s);
    s = format(&p, "a1", 1, NULL, 0, 0);
    test_assert_streq(s, "* SEARCH" CRLF);
    free(s);
    p.uses_modseq = 1;
    s = format(&p, "a1", 0, m, 4, 917162500);
    test_assert_streq(s, "* SEARCH 1 2 3 5 (MODSEQ 917162500)" CRLF);
    free(s);
    s = format(&p, "a1", 0, m, 0, 917162500);   /* RFC 7162 3.1.5: none when empty */
    test_assert_streq(s, "* SEARCH" CRLF);
    free(s);
    /* OUT full: -1 and nothing written */
    struct buf b;
    buf_init(&b, 12);
    test_assert(imap_search_format(&p, "a1", 0, m, 4, 9, &b) == -1);
    test_assert(b.len == 0);
    buf_deinit(&b);
    test_end();
}

void test_search_format_esearch(void)
{
    test_begin("search: ESEARCH replies");
    static const uint32_t m[] = { 1, 2, 3, 5, 8, 9, 11 };
    struct imap_search_prog p;
    memset(&p, 0, sizeof p);
    p.esearch = 1;
    char *s = format(&p, "A282", 0, m, 7, 0);
    test_assert_streq(s, "* ESEARCH (TAG \"A282\") ALL 1:3,5,8:9,11" CRLF);
    free(s);
    s = format(&p, "A282", 1, m, 7, 0);
    test_assert_streq(s, "* ESEARCH (TAG \"A282\") UID ALL 1:3,5,8:9,11" CRLF);
    free(s);
    p.ret = IMAP_ESR_MIN | IMAP_ESR_MAX | IMAP_ESR_COUNT;
    s = format(&p, "t", 0, m, 7, 0);
    test_assert_streq(s, "* ESEARCH (TAG \"t\") MIN 1 MAX 11 COUNT 7" CRLF);
    free(s);
    p.ret |= IMAP_ESR_ALL;
    s = format(&p, "t", 0, m, 0, 0);
    test_assert_streq(s, "* ESEARCH (TAG \"t\") COUNT 0" CRLF);
    free(s);
    p.ret = IMAP_ESR_MIN;
    s = format(&p, "t", 0, m, 0, 0);
    test_assert_streq(s, "* ESEARCH (TAG \"t\")" CRLF);
    free(s);
    /* SAVE alone: no reply; with others: the others */
    p.ret = IMAP_ESR_SAVE;
    s = format(&p, "t", 0, m, 7, 0);
    test_assert_streq(s, "");
    free(s);
    p.ret = IMAP_ESR_SAVE | IMAP_ESR_MIN;
    s = format(&p, "t", 0, m, 7, 0);
    test_assert_streq(s, "* ESEARCH (TAG \"t\") MIN 1" CRLF);
    free(s);
    /* MODSEQ (RFC 7162 3.1.5) */
    p.ret = IMAP_ESR_ALL;
    p.uses_modseq = 1;
    s = format(&p, "a", 1, m, 3, 1236);
    test_assert_streq(s, "* ESEARCH (TAG \"a\") UID ALL 1:3 MODSEQ 1236" CRLF);
    free(s);
    s = format(&p, "a", 1, m, 0, 1236);
    test_assert_streq(s, "* ESEARCH (TAG \"a\") UID" CRLF);
    free(s);
    /* a tag that needs escaping; no tag */
    p.uses_modseq = 0;
    s = format(&p, "a\"b\\", 0, m, 1, 0);
    test_assert_streq(s, "* ESEARCH (TAG \"a\\\"b\\\\\") ALL 1" CRLF);
    free(s);
    s = format(&p, NULL, 0, m, 1, 0);
    test_assert_streq(s, "* ESEARCH ALL 1" CRLF);
    free(s);
    /* a large alternating result */
    enum { N = 100000 };
    uint32_t *big = xcalloc(N, sizeof *big);
    for (uint32_t i = 0; i < N; i++)
        big[i] = 2 * i + 1;
    s = format(&p, "z", 1, big, N, 0);
    test_assert(strncmp(s, "* ESEARCH (TAG \"z\") UID ALL 1,3,5,", 34) == 0);
    test_assert(strstr(s, ",199999" CRLF) != NULL);
    free(s);
    for (uint32_t i = 0; i < N; i++)
        big[i] = i + 1;
    s = format(&p, "z", 1, big, N, 0);
    test_assert_streq(s, "* ESEARCH (TAG \"z\") UID ALL 1:100000" CRLF);
    free(s);
    free(big);
    test_end();
}
