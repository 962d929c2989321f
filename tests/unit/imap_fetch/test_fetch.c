/* test_fetch: imap_fetch_message over hand-made rows and message files:
 * index items without any file, cached and computed ENVELOPE/BODYSTRUCTURE
 * and BODY, every section kind with echoed specs, partials (origin in the
 * reply, clamping, past the end), BINARY as literal8, BINARY.SIZE, unknown
 * transfer encodings, RFC822.*, a full output buffer and a vanished file. */
#include "fetch_tests.h"
#include "imap/imap_fetch_int.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "mime/mime.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRLF "\r\n"

/* Runs one FETCH; returns the response (malloc'd) and *RC. */
static char *fetch(const struct imap_fetch_spec *spec, const struct imap_fetch_opts *o,
                   const struct store_fmsg *row, int *rc, size_t *len)
{
    struct imap_fetch_opts none = { 0 };
    struct imap_msg_ctx m = { .seq = 3, .row = row };
    struct buf out;
    buf_init(&out, 1 << 20);
    *rc = imap_fetch_message(spec, o ? o : &none, &m, &out);
    imap_msg_release(&m);
    return buf_steal(&out, len);
}

static char *fetch_items(unsigned items, const struct imap_fetch_opts *o,
                         const struct store_fmsg *row, int *rc)
{
    struct imap_fetch_spec spec = { .items = items };
    return fetch(&spec, o, row, rc, NULL);
}

static struct imap_section section(enum imap_section_kind kind, int nparts, uint32_t p1,
                                   uint32_t p2)
{
    struct imap_section s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.nparts = nparts;
    s.part[0] = p1;
    s.part[1] = p2;
    return s;
}

/* The response for one section of ROW. */
static char *fetch_section(const struct imap_section *sec, const struct store_fmsg *row,
                           int *rc, size_t *len)
{
    struct imap_fetch_spec spec = { .sections = (struct imap_section *)sec, .nsections = 1 };
    return fetch(&spec, NULL, row, rc, len);
}

/* "* 3 FETCH (" NAME " {n}\r\n" DATA ")\r\n" for section data. */
static char *expect_literal(const char *name, const char *data, size_t n)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    if (buf_appendf(&b, "* 3 FETCH (%s {%zu}" CRLF, name, n) < 0 ||
        buf_append(&b, data, n) < 0 || buf_append(&b, ")" CRLF, 3) < 0)
        abort();
    return buf_steal(&b, NULL);
}

static void check_section(const struct imap_section *sec, const struct store_fmsg *row,
                          const char *name, const char *data, size_t n)
{
    int rc;
    size_t len;
    char *got = fetch_section(sec, row, &rc, &len);
    char *want = expect_literal(name, data, n);
    test_assert(rc == 0);
    test_assert_memeq(got, len, want, strlen(want));
    if (len != strlen(want) || memcmp(got, want, len) != 0)
        printf("     got:  %s\n     want: %s\n", got, want);
    free(got);
    free(want);
}

static void check_empty_section(const struct imap_section *sec, const struct store_fmsg *row,
                                const char *name)
{
    int rc;
    char *got = fetch_section(sec, row, &rc, NULL);
    char *want = xasprintf("* 3 FETCH (%s \"\")" CRLF, name);
    test_assert(rc == 0);
    test_assert_streq(got, want);
    free(got);
    free(want);
}

static char *mime_out(const char *msg, int what)
{
    struct mime_msg *mm = mime_parse(msg, strlen(msg));
    struct buf b;
    buf_init(&b, 1 << 20);
    int rc = what == 0 ? mime_envelope(mm, 0, &b) : mime_bodystructure(mm, what == 2, 0, &b);
    test_assert(rc == 0);
    mime_free(&mm);
    return buf_steal(&b, NULL);
}

void test_fetch_index_items(void)
{
    test_begin("fetch: index items never open the file");
    int rc;
    struct store_fmsg row = fx_row(42, STORE_F_SEEN | STORE_F_FLAGGED, "$Forwarded work", NULL,
                                   1234);
    char *got = fetch_items(IMAP_FI_UID | IMAP_FI_FLAGS | IMAP_FI_INTERNALDATE |
                            IMAP_FI_RFC822_SIZE | IMAP_FI_MODSEQ, NULL, &row, &rc);
    test_assert(rc == 0);
    test_assert_streq(got, "* 3 FETCH (UID 42 FLAGS (\\Seen \\Flagged $Forwarded work)"
                           " INTERNALDATE \"05-Feb-2024 10:00:00 +0000\" RFC822.SIZE 1234"
                           " MODSEQ (7))" CRLF);
    free(got);

    /* UID FETCH adds UID; add_flags adds FLAGS; CONDSTORE adds MODSEQ */
    struct imap_fetch_opts o = { .uid_command = 1, .add_flags = 1, .condstore = 1 };
    got = fetch_items(IMAP_FI_RFC822_SIZE, &o, &row, &rc);
    test_assert_streq(got, "* 3 FETCH (UID 42 FLAGS (\\Seen \\Flagged $Forwarded work)"
                           " RFC822.SIZE 1234 MODSEQ (7))" CRLF);
    free(got);
    fx_row_free(&row);

    row = fx_row(1, STORE_F_ANSWERED | STORE_F_DELETED | STORE_F_DRAFT, NULL, NULL, 0);
    got = fetch_items(IMAP_FI_FLAGS, NULL, &row, &rc);
    test_assert_streq(got, "* 3 FETCH (FLAGS (\\Answered \\Deleted \\Draft))" CRLF);
    free(got);
    row.sysflags = 0;
    got = fetch_items(IMAP_FI_FLAGS, NULL, &row, &rc);
    test_assert_streq(got, "* 3 FETCH (FLAGS ())" CRLF);
    free(got);

    /* CHANGEDSINCE implies MODSEQ in every response (RFC 7162 3.1.4.1) */
    struct imap_fetch_spec spec = { .items = IMAP_FI_FLAGS, .changedsince = 3 };
    got = fetch(&spec, NULL, &row, &rc, NULL);
    test_assert_streq(got, "* 3 FETCH (FLAGS () MODSEQ (7))" CRLF);
    free(got);
    fx_row_free(&row);
    test_end();
}

void test_fetch_structures(void)
{
    test_begin("fetch: ENVELOPE/BODYSTRUCTURE/BODY cached or computed");
    int rc;
    struct store_fmsg row = fx_row(5, 0, NULL, NULL, 10);
    row.envelope = xstrdup("(\"cached envelope\")");
    row.bodystructure = xstrdup("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL"
                                " \"7BIT\" 3 1 NIL NIL NIL NIL)");
    char *got = fetch_items(IMAP_FI_ENVELOPE | IMAP_FI_BODY | IMAP_FI_BODYSTRUCTURE, NULL, &row,
                            &rc);
    test_assert(rc == 0);
    test_assert_streq(got, "* 3 FETCH (ENVELOPE (\"cached envelope\")"
                           " BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 1)"
                           " BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL"
                           " \"7BIT\" 3 1 NIL NIL NIL NIL))" CRLF);
    free(got);
    fx_row_free(&row);

    /* no cache: parsed from the file */
    char *path = fx_write("m1", fx_multipart);
    row = fx_row(6, 0, NULL, path, strlen(fx_multipart));
    char *env = mime_out(fx_multipart, 0), *body = mime_out(fx_multipart, 1),
         *bs = mime_out(fx_multipart, 2);
    char *want = xasprintf("* 3 FETCH (ENVELOPE %s BODY %s BODYSTRUCTURE %s)" CRLF, env, body, bs);
    got = fetch_items(IMAP_FI_ENVELOPE | IMAP_FI_BODY | IMAP_FI_BODYSTRUCTURE, NULL, &row, &rc);
    test_assert(rc == 0);
    test_assert_streq(got, want);
    free(got);
    free(want);

    /* a malformed cached BODYSTRUCTURE: BODY is computed instead */
    row.bodystructure = xstrdup("(\"TEXT\" \"PLAIN\"");
    want = xasprintf("* 3 FETCH (BODY %s)" CRLF, body);
    got = fetch_items(IMAP_FI_BODY, NULL, &row, &rc);
    test_assert_streq(got, want);
    free(got);
    free(want);
    free(env);
    free(body);
    free(bs);
    fx_row_free(&row);
    free(path);
    test_end();
}

static void check_body_conversion(const char *msg)
{
    char *body = mime_out(msg, 1), *bs = mime_out(msg, 2);
    struct buf b;
    buf_init(&b, 1 << 20);
    test_assert(imap_body_from_bodystructure(bs, strlen(bs), &b) == 0);
    test_assert_streq(b.data, body);
    if (!b.data || strcmp(b.data, body) != 0)
        printf("     from: %s\n     got:  %s\n     want: %s\n", bs, b.data, body);
    buf_deinit(&b);
    free(body);
    free(bs);
}

void test_fetch_body_from_bodystructure(void)
{
    test_begin("fetch: BODY derived from a cached BODYSTRUCTURE");
    check_body_conversion(fx_multipart);
    check_body_conversion(fx_simple);
    check_body_conversion("Content-Type: multipart/alternative; boundary=a" CRLF CRLF
                          "--a" CRLF "Content-Type: text/plain" CRLF CRLF "x" CRLF
                          "--a" CRLF "Content-Type: multipart/related; boundary=b" CRLF CRLF
                          "--b" CRLF "Content-Type: text/html" CRLF CRLF "<p>x</p>" CRLF
                          "--b" CRLF "Content-Type: image/png" CRLF
                          "Content-Disposition: inline; filename=\"a b.png\"" CRLF
                          "Content-Language: en" CRLF CRLF "iVBO" CRLF
                          "--b--" CRLF "--a--" CRLF);

    struct buf b;
    buf_init(&b, 1 << 16);
    /* literals, nested lists and unknown trailing extensions */
    const char *in = "((\"TEXT\" \"PLAIN\" NIL NIL {3}\r\na b \"BASE64\" 4 1 NIL"
                     " (\"inline\" NIL) NIL NIL (1 (2))) \"MIXED\" (\"BOUNDARY\" \"x\") NIL NIL NIL)";
    test_assert(imap_body_from_bodystructure(in, strlen(in), &b) == 0);
    test_assert_streq(b.data, "((\"TEXT\" \"PLAIN\" NIL NIL {3}\r\na b \"BASE64\" 4 1) \"MIXED\")");
    /* malformed: refused, OUT untouched */
    static const char *const bad[] = {
        "", "(", "(\"TEXT\" \"PLAIN\")", "(\"A\" \"B\" NIL NIL NIL \"7BIT\" 3", "x",
        "(\"TEXT\" \"PLAIN\" NIL NIL {9}\r\nab \"7BIT\" 1 1)", "(\"A\" \"B\" NIL NIL NIL \"7BIT\" 3) x",
        "((\"A\" \"B\" NIL NIL NIL \"7BIT\" 3))",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_reset(&b);
        if (buf_append(&b, "keep", 4) < 0)
            abort();
        test_assert(imap_body_from_bodystructure(bad[i], strlen(bad[i]), &b) == -2);
        test_assert_streq(b.data, "keep");
    }
    /* deep nesting is bounded */
    struct buf deep;
    buf_init(&deep, 1 << 20);
    for (int i = 0; i < 5000; i++)
        if (buf_append(&deep, "(", 1) < 0)
            abort();
    buf_reset(&b);
    test_assert(imap_body_from_bodystructure(deep.data, deep.len, &b) == -2);
    buf_deinit(&deep);
    /* OUT full: -1, untouched */
    struct buf small;
    buf_init(&small, 10);
    const char *one = "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 3 1)";
    test_assert(imap_body_from_bodystructure(one, strlen(one), &small) == -1);
    test_assert(small.len == 0);
    buf_deinit(&small);
    buf_deinit(&b);
    test_end();
}

static const char *after(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    return p ? p + strlen(needle) : NULL;
}

void test_fetch_sections(void)
{
    test_begin("fetch: body sections, echoed specs, missing parts");
    char *path = fx_write("m", fx_multipart);
    struct store_fmsg row = fx_row(9, 0, NULL, path, strlen(fx_multipart));
    const char *msg = fx_multipart;
    size_t len = strlen(msg);
    const char *text = after(msg, "MIME-Version: 1.0" CRLF "Content-Type: multipart/mixed;"
                                  " boundary=\"BOUND\"" CRLF CRLF);
    size_t hdr = (size_t)(text - msg);

    struct imap_section s = section(IMAP_SEC_ALL, 0, 0, 0);
    check_section(&s, &row, "BODY[]", msg, len);
    s.peek = 1;   /* BODY.PEEK[] answers as BODY[] */
    check_section(&s, &row, "BODY[]", msg, len);

    s = section(IMAP_SEC_HEADER, 0, 0, 0);
    check_section(&s, &row, "BODY[HEADER]", msg, hdr);
    char lower[] = "header";   /* as a client may write it: echoed in upper case */
    s.spec = lower;
    check_section(&s, &row, "BODY[HEADER]", msg, hdr);
    s.spec = NULL;
    s = section(IMAP_SEC_TEXT, 0, 0, 0);
    check_section(&s, &row, "BODY[TEXT]", text, len - hdr);

    /* top-level HEADER agrees with the MIME module's range */
    struct mime_msg *mm = mime_parse(msg, len);
    size_t off = 99, n = 0;
    test_assert(mime_section_range(mm, NULL, 0, MIME_SEC_HEADER, &off, &n) == 0);
    test_assert(off == 0 && n == hdr);
    test_assert(mime_section_range(mm, NULL, 0, MIME_SEC_TEXT, &off, &n) == 0);
    test_assert(off == hdr && n == len - hdr);

    char *fields[] = { "SUBJECT", "X-TAG" };
    s = section(IMAP_SEC_HEADER_FIELDS, 0, 0, 0);
    s.fields = fields;
    s.nfields = 2;
    const char *want = "Subject: Quarterly report" CRLF "X-Tag: alpha" CRLF "  continued" CRLF CRLF;
    check_section(&s, &row, "BODY[HEADER.FIELDS (SUBJECT X-TAG)]", want, strlen(want));
    struct buf b;
    buf_init(&b, 1 << 16);
    test_assert(mime_header_fields(mm, NULL, 0, fields, 2, 0, &b) == 0);
    test_assert_streq(b.data, want);
    s.spec = "header.fields (Subject x-tag)";   /* keyword upper case, names as written */
    check_section(&s, &row, "BODY[HEADER.FIELDS (Subject x-tag)]", want, strlen(want));

    s = section(IMAP_SEC_HEADER_FIELDS_NOT, 0, 0, 0);
    char *most[] = { "FROM", "TO", "CC", "DATE", "MESSAGE-ID", "MIME-VERSION", "CONTENT-TYPE" };
    s.fields = most;
    s.nfields = 7;
    check_section(&s, &row, "BODY[HEADER.FIELDS.NOT (FROM TO CC DATE MESSAGE-ID MIME-VERSION"
                            " CONTENT-TYPE)]", want, strlen(want));
    buf_reset(&b);
    test_assert(mime_header_fields(mm, NULL, 0, most, 7, 1, &b) == 0);
    test_assert_streq(b.data, want);
    buf_deinit(&b);
    mime_free(&mm);

    s = section(IMAP_SEC_ALL, 1, 1, 0);
    const char *p1 = "Hello Bob, the numbers are attached.";
    check_section(&s, &row, "BODY[1]", p1, strlen(p1));
    s = section(IMAP_SEC_MIME, 1, 1, 0);
    const char *m1 = "Content-Type: text/plain; charset=utf-8" CRLF CRLF;
    check_section(&s, &row, "BODY[1.MIME]", m1, strlen(m1));
    s = section(IMAP_SEC_HEADER, 1, 3, 0);
    const char *h3 = "From: dave@example.test" CRLF "Subject: inner note" CRLF CRLF;
    check_section(&s, &row, "BODY[3.HEADER]", h3, strlen(h3));
    s = section(IMAP_SEC_TEXT, 1, 3, 0);
    check_section(&s, &row, "BODY[3.TEXT]", "Inner body text.", 16);
    s = section(IMAP_SEC_ALL, 2, 3, 1);
    check_section(&s, &row, "BODY[3.1]", "Inner body text.", 16);
    char *subj[] = { "SUBJECT" };
    s = section(IMAP_SEC_HEADER_FIELDS, 1, 3, 0);
    s.fields = subj;
    s.nfields = 1;
    check_section(&s, &row, "BODY[3.HEADER.FIELDS (SUBJECT)]", "Subject: inner note" CRLF CRLF, 23);
    s = section(IMAP_SEC_ALL, 1, 2, 0);
    check_section(&s, &row, "BODY[2]", "AGFiYwBkZWY=", 12);

    /* parts that do not exist, or sections meaningless for the part: "" */
    s = section(IMAP_SEC_ALL, 1, 9, 0);
    check_empty_section(&s, &row, "BODY[9]");
    s = section(IMAP_SEC_HEADER, 1, 1, 0);
    check_empty_section(&s, &row, "BODY[1.HEADER]");
    s = section(IMAP_SEC_ALL, 2, 1, 5);
    check_empty_section(&s, &row, "BODY[1.5]");
    s = section(IMAP_SEC_HEADER_FIELDS, 1, 7, 0);
    s.fields = subj;
    s.nfields = 1;
    check_empty_section(&s, &row, "BODY[7.HEADER.FIELDS (SUBJECT)]");

    /* several sections in one response, after the index items */
    struct imap_section two[2] = { section(IMAP_SEC_MIME, 1, 1, 0), section(IMAP_SEC_ALL, 1, 1, 0) };
    two[0].spec = "1.MIME";
    two[1].spec = "1";
    struct imap_fetch_spec spec = { .items = IMAP_FI_UID, .sections = two, .nsections = 2 };
    int rc;
    char *got = fetch(&spec, NULL, &row, &rc, NULL);
    char *w = xasprintf("* 3 FETCH (UID 9 BODY[1.MIME] {%zu}" CRLF "%s BODY[1] {%zu}" CRLF "%s)" CRLF,
                        strlen(m1), m1, strlen(p1), p1);
    test_assert_streq(got, w);
    free(got);
    free(w);
    fx_row_free(&row);
    free(path);
    test_end();
}

void test_fetch_partial(void)
{
    test_begin("fetch: partial ranges");
    char *path = fx_write("m", fx_multipart);
    struct store_fmsg row = fx_row(9, 0, NULL, path, strlen(fx_multipart));
    size_t len = strlen(fx_multipart);
    struct imap_section s = section(IMAP_SEC_ALL, 0, 0, 0);
    s.partial = 1;
    s.offset = 0;
    s.count = 10;
    check_section(&s, &row, "BODY[]<0>", fx_multipart, 10);
    s.offset = 6;
    s.count = 3;
    check_section(&s, &row, "BODY[]<6>", fx_multipart + 6, 3);
    /* a count past the end is cut; an origin at/past the end is "" */
    s.offset = (uint32_t)len - 4;
    s.count = 1000;
    char *name = xasprintf("BODY[]<%zu>", len - 4);
    check_section(&s, &row, name, fx_multipart + len - 4, 4);
    free(name);
    s.offset = (uint32_t)len;
    name = xasprintf("BODY[]<%zu>", len);
    check_empty_section(&s, &row, name);
    free(name);
    s.offset = 4000000000u;
    s.count = 4000000000u;
    check_empty_section(&s, &row, "BODY[]<4000000000>");
    /* RFC 3501: <0.2048> of a shorter text is still BODY[]<0> */
    s.offset = 0;
    s.count = 4000000000u;
    check_section(&s, &row, "BODY[]<0>", fx_multipart, len);
    /* inside a part */
    s = section(IMAP_SEC_ALL, 1, 1, 0);
    s.partial = 1;
    s.offset = 6;
    s.count = 3;
    check_section(&s, &row, "BODY[1]<6>", "Bob", 3);
    s.count = 0;
    check_empty_section(&s, &row, "BODY[1]<6>");
    fx_row_free(&row);
    free(path);
    test_end();
}

void test_fetch_binary(void)
{
    test_begin("fetch: BINARY, literal8, BINARY.SIZE, unknown encodings");
    char *path = fx_write("m", fx_multipart);
    struct store_fmsg row = fx_row(9, 0, NULL, path, strlen(fx_multipart));
    int rc;
    size_t len;
    struct imap_section s = section(IMAP_SEC_ALL, 1, 2, 0);
    s.binary = 1;
    char *got = fetch_section(&s, &row, &rc, &len);
    static const char want[] = "* 3 FETCH (BINARY[2] ~{8}" CRLF "\0abc\0def)" CRLF;
    test_assert(rc == 0);
    test_assert_memeq(got, len, want, sizeof want - 1);
    free(got);

    s.partial = 1;
    s.offset = 1;
    s.count = 3;
    check_section(&s, &row, "BINARY[2]<1>", "abc", 3);

    s = section(IMAP_SEC_ALL, 1, 2, 0);
    s.binary_size = 1;
    got = fetch_section(&s, &row, &rc, NULL);
    test_assert_streq(got, "* 3 FETCH (BINARY.SIZE[2] 8)" CRLF);
    free(got);

    s = section(IMAP_SEC_ALL, 1, 1, 0);
    s.binary = 1;
    check_section(&s, &row, "BINARY[1]", "Hello Bob, the numbers are attached.", 36);
    s = section(IMAP_SEC_ALL, 0, 0, 0);
    s.binary = 1;
    check_section(&s, &row, "BINARY[]", fx_multipart, strlen(fx_multipart));

    s = section(IMAP_SEC_ALL, 1, 9, 0);
    s.binary = 1;
    check_empty_section(&s, &row, "BINARY[9]");

    /* x-weird: "NO [UNKNOWN-CTE]", nothing written */
    struct imap_section bad[2] = { section(IMAP_SEC_ALL, 1, 1, 0), section(IMAP_SEC_ALL, 1, 4, 0) };
    bad[1].binary = 1;
    struct imap_fetch_spec spec = { .items = IMAP_FI_UID, .sections = bad, .nsections = 2 };
    struct imap_fetch_opts none = { 0 };
    struct imap_msg_ctx m = { .seq = 1, .row = &row };
    struct buf out;
    buf_init(&out, 1 << 20);
    if (buf_append(&out, "before", 6) < 0)
        abort();
    test_assert(imap_fetch_message(&spec, &none, &m, &out) == 2);
    test_assert_streq(out.data, "before");
    bad[1].binary = 0;
    bad[1].binary_size = 1;
    test_assert(imap_fetch_message(&spec, &none, &m, &out) == 2);
    imap_msg_release(&m);
    buf_deinit(&out);
    fx_row_free(&row);
    free(path);
    test_end();
}

void test_fetch_rfc822(void)
{
    test_begin("fetch: RFC822, RFC822.HEADER, RFC822.TEXT");
    char *path = fx_write("s", fx_simple);
    struct store_fmsg row = fx_row(2, 0, NULL, path, strlen(fx_simple));
    const char *text = strstr(fx_simple, CRLF CRLF) + 4;
    size_t hdr = (size_t)(text - fx_simple);
    int rc;
    char *got = fetch_items(IMAP_FI_RFC822 | IMAP_FI_RFC822_HEADER | IMAP_FI_RFC822_TEXT, NULL,
                            &row, &rc);
    char *want = xasprintf("* 3 FETCH (RFC822.HEADER {%zu}" CRLF "%.*s RFC822.TEXT {%zu}" CRLF
                           "%s RFC822 {%zu}" CRLF "%s)" CRLF,
                           hdr, (int)hdr, fx_simple, strlen(text), text, strlen(fx_simple),
                           fx_simple);
    test_assert(rc == 0);
    test_assert_streq(got, want);
    free(got);
    free(want);
    fx_row_free(&row);

    /* a message without a blank line is all header */
    char *p2 = fx_write("h", "Subject: only" CRLF);
    row = fx_row(3, 0, NULL, p2, 15);
    got = fetch_items(IMAP_FI_RFC822_HEADER | IMAP_FI_RFC822_TEXT, NULL, &row, &rc);
    test_assert_streq(got, "* 3 FETCH (RFC822.HEADER {15}" CRLF "Subject: only" CRLF
                           " RFC822.TEXT \"\")" CRLF);
    free(got);
    fx_row_free(&row);
    free(p2);

    /* an empty file */
    char *p3 = fx_write("e", "");
    row = fx_row(4, 0, NULL, p3, 0);
    got = fetch_items(IMAP_FI_RFC822, NULL, &row, &rc);
    test_assert_streq(got, "* 3 FETCH (RFC822 \"\")" CRLF);
    free(got);
    fx_row_free(&row);
    free(p3);
    free(path);
    test_end();
}

void test_fetch_out_full_and_gone(void)
{
    test_begin("fetch: full output is undone; a vanished file is reported");
    char *path = fx_write("m", fx_multipart);
    struct store_fmsg row = fx_row(9, STORE_F_SEEN, "a b c", path, strlen(fx_multipart));
    struct imap_section s = section(IMAP_SEC_ALL, 0, 0, 0);
    struct imap_fetch_spec spec = { .items = IMAP_FI_UID | IMAP_FI_FLAGS, .sections = &s,
                                    .nsections = 1 };
    struct imap_fetch_opts none = { 0 };
    struct imap_msg_ctx m = { .seq = 1, .row = &row };
    /* every size short of the whole response fails cleanly */
    struct buf whole;
    buf_init(&whole, 1 << 20);
    test_assert(imap_fetch_message(&spec, &none, &m, &whole) == 0);
    for (size_t max = 3; max < 3 + whole.len; max += 7) {
        struct buf out;
        buf_init(&out, max);
        if (buf_append(&out, "abc", 3) < 0)
            abort();
        test_assert(imap_fetch_message(&spec, &none, &m, &out) == -1);
        test_assert(out.len == 3 && memcmp(out.data, "abc", 3) == 0);
        buf_deinit(&out);
    }
    imap_msg_release(&m);
    buf_deinit(&whole);
    fx_row_free(&row);

    /* no file: body items say so (1) and write nothing; index items work */
    row = fx_row(9, 0, NULL, NULL, 10);
    struct buf out;
    buf_init(&out, 1 << 16);
    m = (struct imap_msg_ctx){ .seq = 1, .row = &row };
    test_assert(imap_fetch_message(&spec, &none, &m, &out) == 1);
    test_assert(out.len == 0);
    spec.nsections = 0;
    spec.items = IMAP_FI_ENVELOPE;
    test_assert(imap_fetch_message(&spec, &none, &m, &out) == 1);
    spec.items = IMAP_FI_RFC822_HEADER;
    test_assert(imap_fetch_message(&spec, &none, &m, &out) == 1);
    spec.items = IMAP_FI_BODYSTRUCTURE;
    test_assert(imap_fetch_message(&spec, &none, &m, &out) == 1);
    test_assert(out.len == 0);
    spec.items = IMAP_FI_UID | IMAP_FI_RFC822_SIZE;
    test_assert(imap_fetch_message(&spec, &none, &m, &out) == 0);
    test_assert_streq(out.data, "* 1 FETCH (UID 9 RFC822.SIZE 10)" CRLF);
    test_assert(imap_msg_load(&m) == -1);
    test_assert(imap_msg_mime(&m) == NULL);
    imap_msg_release(&m);
    buf_deinit(&out);
    fx_row_free(&row);
    free(path);
    test_end();
}

void test_fetch_spec_predicates(void)
{
    test_begin("fetch: which specs set \\Seen and which need the file");
    struct imap_section s = section(IMAP_SEC_ALL, 0, 0, 0);
    struct imap_fetch_spec spec = { .items = IMAP_FI_FLAGS | IMAP_FI_ENVELOPE | IMAP_FI_BODY |
                                             IMAP_FI_BODYSTRUCTURE | IMAP_FI_UID |
                                             IMAP_FI_INTERNALDATE | IMAP_FI_RFC822_SIZE |
                                             IMAP_FI_MODSEQ };
    test_assert(!imap_fetch_sets_seen(&spec));
    test_assert(!imap_fetch_needs_file(&spec));
    spec.items = IMAP_FI_RFC822_HEADER;
    test_assert(!imap_fetch_sets_seen(&spec));
    test_assert(imap_fetch_needs_file(&spec));
    spec.items = IMAP_FI_RFC822;
    test_assert(imap_fetch_sets_seen(&spec));
    spec.items = IMAP_FI_RFC822_TEXT;
    test_assert(imap_fetch_sets_seen(&spec));
    spec.items = 0;
    spec.sections = &s;
    spec.nsections = 1;
    test_assert(imap_fetch_sets_seen(&spec));
    test_assert(imap_fetch_needs_file(&spec));
    s.peek = 1;
    test_assert(!imap_fetch_sets_seen(&spec));
    s.peek = 0;
    s.binary = 1;
    test_assert(imap_fetch_sets_seen(&spec));
    s.binary = 0;
    s.binary_size = 1;
    test_assert(!imap_fetch_sets_seen(&spec));
    test_assert(imap_fetch_needs_file(&spec));

    struct buf b;
    buf_init(&b, 1 << 10);
    test_assert(imap_flags_format(0x1f, "  one  two ", &b) == 0);
    test_assert_streq(b.data, "(\\Seen \\Answered \\Flagged \\Deleted \\Draft one two)");
    buf_deinit(&b);
    test_end();
}
