/* test_mime: src/mime/ against real-world-shaped messages: ENVELOPE as in
 * RFC 3501's example, BODY/BODYSTRUCTURE of plain, multipart/alternative,
 * multipart/mixed with a base64 attachment (RFC 2231 filename), nested
 * message/rfc822, group addresses, encoded-words, raw 8-bit headers, and
 * malformed messages (no blank line, missing close delimiter, multipart
 * without boundary or delimiters, bad Content-Type, bare LF). Sizes and
 * line counts are computed here from the pieces the messages are built
 * of, not from the parser. Also section ranges (RFC 3501 6.4.5 numbering),
 * HEADER.FIELDS (.NOT), BINARY, the SEARCH helpers and a timing check.
 *
 * Every message is copied into a heap block of exactly its length, so
 * AddressSanitizer catches any read past the end. */
#include "core/buf.h"
#include "mime/mime.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CRLF "\r\n"

/* ---- helpers ---- */

struct m {
    char *data;
    size_t len;
    struct mime_msg *mm;
};

static struct m open_msg(const char *s, size_t len)
{
    struct m m;
    m.data = malloc(len ? len : 1);
    if (!m.data)
        abort();
    memcpy(m.data, s, len);
    m.len = len;
    m.mm = mime_parse(m.data, len);
    return m;
}

static struct m open_str(const char *s)
{
    return open_msg(s, strlen(s));
}

static void close_msg(struct m *m)
{
    mime_free(&m->mm);
    test_assert(m->mm == NULL);
    free(m->data);
}

static size_t lines_of(const char *s)
{
    size_t n = 0, len = strlen(s);
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    if (len && s[len - 1] != '\n')
        n++;
    return n;
}

static char *bodystructure(const struct m *m, int ext, int utf8)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    if (mime_bodystructure(m->mm, ext, utf8, &b) < 0)
        test_assert(!"bodystructure failed");
    return buf_steal(&b, NULL);
}

static char *envelope(const struct m *m, int utf8)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    if (mime_envelope(m->mm, utf8, &b) < 0)
        test_assert(!"envelope failed");
    return buf_steal(&b, NULL);
}

/* Section PATH ("" or "2.1") of KIND equals EXPECT (NULL: no such part). */
static int section_is(const struct m *m, const char *path, enum mime_section_kind kind,
                      const char *expect)
{
    uint32_t part[16];
    int n = 0;
    for (const char *p = path; *p;) {
        part[n++] = (uint32_t)strtoul(p, (char **)&p, 10);
        if (*p == '.')
            p++;
    }
    size_t off = 0, len = 0;
    int r = mime_section_range(m->mm, part, n, kind, &off, &len);
    if (!expect)
        return r == 1;
    if (r != 0 || off > m->len || len > m->len - off) {
        fprintf(stderr, "section %s kind %d: r=%d\n", path, (int)kind, r);
        return 0;
    }
    if (len != strlen(expect) || memcmp(m->data + off, expect, len) != 0) {
        fprintf(stderr, "section %s kind %d: got [%.*s] want [%s]\n", path, (int)kind, (int)len,
                m->data + off, expect);
        return 0;
    }
    return 1;
}

static int streq_report(const char *got, const char *want)
{
    if (strcmp(got, want) == 0)
        return 1;
    fprintf(stderr, "got:  %s\nwant: %s\n", got, want);
    return 0;
}

/* ---- RFC 3501's example message ---- */

#define RFC_HDR                                                                  \
    "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" CRLF                           \
    "From: Terry Gray <gray@cac.washington.edu>" CRLF                            \
    "Subject: IMAP4rev1 WG mtg summary and minutes" CRLF                         \
    "To: imap@cac.washington.edu" CRLF                                           \
    "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>" CRLF         \
    "Message-Id: <B27397-0100000@cac.washington.edu>" CRLF                       \
    "MIME-Version: 1.0" CRLF                                                     \
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII" CRLF CRLF
#define RFC_BODY                                                                 \
    "Minutes of the meeting." CRLF                                               \
    "  Attendees: many." CRLF CRLF                                               \
    "End." CRLF

static void test_rfc3501_example(void)
{
    test_begin("mime: RFC 3501 example ENVELOPE and BODY");
    struct m m = open_str(RFC_HDR RFC_BODY);
    char *env = envelope(&m, 0);
    test_assert(streq_report(env,
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((NIL NIL \"imap\" \"cac.washington.edu\")) "
        "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) "
        "NIL NIL \"<B27397-0100000@cac.washington.edu>\")"));
    free(env);

    char want[512];
    snprintf(want, sizeof want, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" %zu %zu)",
             strlen(RFC_BODY), lines_of(RFC_BODY));
    char *b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, want));
    free(b);
    snprintf(want, sizeof want,
             "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" %zu %zu NIL NIL NIL NIL)",
             strlen(RFC_BODY), lines_of(RFC_BODY));
    b = bodystructure(&m, 1, 0);
    test_assert(streq_report(b, want));
    free(b);

    /* A non-multipart message: part 1 is its body, 1.MIME its header. */
    test_assert(section_is(&m, "", MIME_SEC_ALL, RFC_HDR RFC_BODY));
    test_assert(section_is(&m, "", MIME_SEC_HEADER, RFC_HDR));
    test_assert(section_is(&m, "", MIME_SEC_TEXT, RFC_BODY));
    test_assert(section_is(&m, "1", MIME_SEC_ALL, RFC_BODY));
    test_assert(section_is(&m, "1", MIME_SEC_MIME, RFC_HDR));
    test_assert(section_is(&m, "2", MIME_SEC_ALL, NULL));
    test_assert(section_is(&m, "1.1", MIME_SEC_ALL, NULL));
    test_assert(section_is(&m, "1", MIME_SEC_HEADER, NULL));
    test_assert(section_is(&m, "", MIME_SEC_MIME, NULL));
    test_assert(section_is(&m, "0", MIME_SEC_ALL, NULL));

    time_t t;
    int tz;
    test_assert(mime_sent_date(m.mm, &t, &tz) == 0);
    test_assert(t == 837595405); /* 1996-07-17 09:23:25 UTC */
    test_assert(tz == -420);
    close_msg(&m);
    test_end();
}

/* ---- multipart/alternative with quoted-printable ---- */

#define ALT_P1_HDR "Content-Type: text/plain; charset=utf-8" CRLF \
                   "Content-Transfer-Encoding: quoted-printable" CRLF CRLF
#define ALT_P1_BODY "Gr=C3=BC=C3=9Fe aus Z=C3=BCrich," CRLF "mit einer sehr langen Zeile, die =" CRLF \
                    "umbrochen wird." CRLF
#define ALT_P2_HDR "Content-Type: text/html; charset=\"utf-8\"" CRLF \
                   "Content-Transfer-Encoding: quoted-printable" CRLF CRLF
#define ALT_P2_BODY "<p>Gr=C3=BC=C3=9Fe</p>"
#define ALT_HDR                                                          \
    "From: Ann Example <ann@example.org>" CRLF                           \
    "To: bob@example.net" CRLF                                           \
    "Subject: alt" CRLF                                                  \
    "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)" CRLF                    \
    "Message-ID: <alt@example.org>" CRLF                                 \
    "MIME-Version: 1.0" CRLF                                             \
    "Content-Type: multipart/alternative;" CRLF                          \
    "\tboundary=\"ALT-b0und\"" CRLF CRLF
#define ALT_MSG ALT_HDR "This is a multi-part message in MIME format." CRLF \
    "--ALT-b0und" CRLF ALT_P1_HDR ALT_P1_BODY CRLF                          \
    "--ALT-b0und" CRLF ALT_P2_HDR ALT_P2_BODY CRLF                          \
    "--ALT-b0und--" CRLF "epilogue" CRLF

static void test_alternative(void)
{
    test_begin("mime: multipart/alternative");
    struct m m = open_str(ALT_MSG);
    char want[1024];
    snprintf(want, sizeof want,
             "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" %zu %zu NIL NIL NIL NIL)"
             "(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" %zu %zu NIL NIL NIL NIL)"
             " \"ALTERNATIVE\" (\"BOUNDARY\" \"ALT-b0und\") NIL NIL NIL)",
             strlen(ALT_P1_BODY), lines_of(ALT_P1_BODY), strlen(ALT_P2_BODY), lines_of(ALT_P2_BODY));
    char *b = bodystructure(&m, 1, 0);
    test_assert(streq_report(b, want));
    free(b);
    snprintf(want, sizeof want,
             "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" %zu %zu)"
             "(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" %zu %zu)"
             " \"ALTERNATIVE\")",
             strlen(ALT_P1_BODY), lines_of(ALT_P1_BODY), strlen(ALT_P2_BODY), lines_of(ALT_P2_BODY));
    b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, want));
    free(b);

    test_assert(section_is(&m, "1", MIME_SEC_ALL, ALT_P1_BODY));
    test_assert(section_is(&m, "1", MIME_SEC_MIME, ALT_P1_HDR));
    test_assert(section_is(&m, "2", MIME_SEC_ALL, ALT_P2_BODY));
    test_assert(section_is(&m, "2", MIME_SEC_MIME, ALT_P2_HDR));
    test_assert(section_is(&m, "3", MIME_SEC_ALL, NULL));
    test_assert(section_is(&m, "1", MIME_SEC_TEXT, NULL));
    test_assert(section_is(&m, "", MIME_SEC_HEADER, ALT_HDR));

    struct buf out;
    buf_init(&out, 1 << 20);
    uint32_t p1 = 1;
    test_assert(mime_binary(m.mm, &p1, 1, &out) == 0);
    const char dec[] = "Gr\xc3\xbc\xc3\x9f" "e aus Z\xc3\xbcrich," CRLF
                       "mit einer sehr langen Zeile, die umbrochen wird." CRLF;
    test_assert_memeq(out.data, out.len, dec, sizeof dec - 1);
    buf_deinit(&out);

    /* SEARCH: QP undone, UTF-8, Unicode case folding (sharp s = ss). */
    test_assert(mime_text_contains(m.mm, "GR\xc3\x9c\x53SE AUS", 0) == 1);
    test_assert(mime_text_contains(m.mm, "die umbrochen", 0) == 1);
    test_assert(mime_text_contains(m.mm, "=C3", 0) == 0);
    test_assert(mime_text_contains(m.mm, "multi-part message", 0) == 0); /* preamble */
    test_assert(mime_text_contains(m.mm, "epilogue", 0) == 0);
    test_assert(mime_text_contains(m.mm, "ann example", 0) == 0);
    test_assert(mime_text_contains(m.mm, "ann example", 1) == 1);
    test_assert(mime_header_contains(m.mm, "FROM", "ANN@EXAMPLE") == 1);
    test_assert(mime_header_contains(m.mm, "from", "bob") == 0);
    test_assert(mime_header_contains(m.mm, "Message-Id", "") == 1);
    test_assert(mime_header_contains(m.mm, "X-None", "") == 0);
    close_msg(&m);
    test_end();
}

/* ---- multipart/mixed with a base64 attachment ---- */

#define MIX_P1_HDR "Content-Type: text/plain" CRLF CRLF
#define MIX_P1_BODY "See the attached report." CRLF
#define MIX_P2_HDR                                                      \
    "Content-Type: application/pdf; name=\"report.pdf\"" CRLF           \
    "Content-Transfer-Encoding: base64" CRLF                            \
    "Content-Disposition: attachment;" CRLF                             \
    " filename*0=\"quarterly-\";" CRLF                                  \
    " filename*1=\"report.pdf\"" CRLF                                   \
    "Content-ID: <att1@example.org>" CRLF                               \
    "Content-Description: The report" CRLF                              \
    "Content-Language: en, de" CRLF                                     \
    "Content-Location: http://example.org/r.pdf" CRLF CRLF
#define MIX_P2_BODY "JVBERi0xLjQKaGVsbG8gYXR0YWNobWVudAoAAf8gYmluYXJ5Cg==" CRLF
#define MIX_HDR "From: a@example.org" CRLF "Subject: report" CRLF \
    "Content-Type: multipart/mixed; boundary=mix-=_x; foo*=utf-8''%C3%A4" CRLF CRLF
#define MIX_MSG MIX_HDR "--mix-=_x" CRLF MIX_P1_HDR MIX_P1_BODY CRLF \
    "--mix-=_x  " CRLF MIX_P2_HDR MIX_P2_BODY CRLF "--mix-=_x--" CRLF

static void test_mixed(void)
{
    test_begin("mime: multipart/mixed with base64 attachment");
    struct m m = open_str(MIX_MSG);
    char want[1024];
    snprintf(want, sizeof want,
             "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" %zu %zu NIL NIL NIL NIL)"
             "(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<att1@example.org>\" \"The report\" "
             "\"BASE64\" %zu NIL (\"ATTACHMENT\" (\"FILENAME\" \"quarterly-report.pdf\")) (\"en\" \"de\") "
             "\"http://example.org/r.pdf\")"
             " \"MIXED\" (\"BOUNDARY\" \"mix-=_x\" \"FOO*\" \"utf-8''%%C3%%A4\") NIL NIL NIL)",
             strlen(MIX_P1_BODY), lines_of(MIX_P1_BODY), strlen(MIX_P2_BODY));
    char *b = bodystructure(&m, 1, 0);
    test_assert(streq_report(b, want));
    free(b);

    test_assert(section_is(&m, "2", MIME_SEC_ALL, MIX_P2_BODY));
    test_assert(section_is(&m, "2", MIME_SEC_MIME, MIX_P2_HDR));
    struct buf out;
    buf_init(&out, 1 << 20);
    uint32_t p2 = 2;
    test_assert(mime_binary(m.mm, &p2, 1, &out) == 0);
    const char pdf[] = "%PDF-1.4\nhello attachment\n\x00\x01\xff binary\n";
    test_assert_memeq(out.data, out.len, pdf, sizeof pdf - 1);
    buf_deinit(&out);

    /* Attachments: decoded bytes, ASCII needles only. */
    test_assert(mime_text_contains(m.mm, "HELLO ATTACHMENT", 0) == 1);
    test_assert(mime_text_contains(m.mm, "JVBERi0", 0) == 0);
    test_assert(mime_text_contains(m.mm, "attached REPORT", 0) == 1);
    close_msg(&m);
    test_end();
}

/* ---- nested message/rfc822, group addresses, encoded words ---- */

#define IN_P1_HDR "Content-Type: text/plain; charset=iso-8859-1" CRLF \
                  "Content-Transfer-Encoding: 8bit" CRLF CRLF
#define IN_P1_BODY "Caf\xe9 cr\xe8me" CRLF
#define IN_P2_HDR "Content-Type: text/html" CRLF CRLF
#define IN_P2_BODY "<b>x</b>"
#define IN_HDR                                                                   \
    "From: \"Doe, John\" <john@example.com>" CRLF                                \
    "To: Group: a@x.test, \"B \\\"Q\\\"\" <b@y.test>;, c@z.test" CRLF            \
    "Subject: =?ISO-8859-1?Q?Caf=E9?= =?UTF-8?B?w6Rw?=" CRLF                     \
    "Date: Tue, 1 Apr 2025 10:00:00 +0200" CRLF                                  \
    "Content-Type: multipart/alternative; boundary=inner" CRLF CRLF
#define IN_BODY "--inner" CRLF IN_P1_HDR IN_P1_BODY CRLF "--inner" CRLF IN_P2_HDR IN_P2_BODY CRLF \
                "--inner--" CRLF
#define NEST_P1_HDR "Content-Type: text/plain; charset=us-ascii" CRLF CRLF
#define NEST_P1_BODY "see below"
#define NEST_P2_HDR "Content-Type: message/rfc822" CRLF "Content-Description: forwarded" CRLF CRLF
#define NEST_HDR "From: fwd@example.org" CRLF "Subject: Fwd: hi" CRLF \
    "To: undisclosed-recipients:;" CRLF \
    "Content-Type: multipart/mixed; boundary=\"outer\"" CRLF CRLF
#define NEST_MSG NEST_HDR "--outer" CRLF NEST_P1_HDR NEST_P1_BODY CRLF \
    "--outer" CRLF NEST_P2_HDR IN_HDR IN_BODY CRLF "--outer--" CRLF

static void test_nested(void)
{
    test_begin("mime: nested message/rfc822, groups, encoded-words");
    struct m m = open_str(NEST_MSG);
    const char *inner_env =
        "(\"Tue, 1 Apr 2025 10:00:00 +0200\" \"=?ISO-8859-1?Q?Caf=E9?= =?UTF-8?B?w6Rw?=\" "
        "((\"Doe, John\" NIL \"john\" \"example.com\")) ((\"Doe, John\" NIL \"john\" \"example.com\")) "
        "((\"Doe, John\" NIL \"john\" \"example.com\")) "
        "((NIL NIL \"Group\" NIL)(NIL NIL \"a\" \"x.test\")(\"B \\\"Q\\\"\" NIL \"b\" \"y.test\")"
        "(NIL NIL NIL NIL)(NIL NIL \"c\" \"z.test\")) NIL NIL NIL NIL)";
    char want[2048];
    snprintf(want, sizeof want,
             "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" %zu %zu)"
             "(\"MESSAGE\" \"RFC822\" NIL NIL \"forwarded\" \"7BIT\" %zu %s "
             "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\") NIL NIL \"8BIT\" %zu %zu)"
             "(\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" %zu %zu) \"ALTERNATIVE\") %zu) \"MIXED\")",
             strlen(NEST_P1_BODY), lines_of(NEST_P1_BODY), strlen(IN_HDR IN_BODY), inner_env,
             strlen(IN_P1_BODY), lines_of(IN_P1_BODY), strlen(IN_P2_BODY), lines_of(IN_P2_BODY),
             lines_of(IN_HDR IN_BODY));
    char *b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, want));
    free(b);
    char *env = envelope(&m, 0);
    test_assert(streq_report(env, "(NIL \"Fwd: hi\" ((NIL NIL \"fwd\" \"example.org\")) "
                                  "((NIL NIL \"fwd\" \"example.org\")) ((NIL NIL \"fwd\" \"example.org\")) "
                                  "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)"));
    free(env);

    test_assert(section_is(&m, "1", MIME_SEC_ALL, NEST_P1_BODY));
    test_assert(section_is(&m, "2", MIME_SEC_ALL, IN_HDR IN_BODY));
    test_assert(section_is(&m, "2", MIME_SEC_MIME, NEST_P2_HDR));
    test_assert(section_is(&m, "2", MIME_SEC_HEADER, IN_HDR));
    test_assert(section_is(&m, "2", MIME_SEC_TEXT, IN_BODY));
    test_assert(section_is(&m, "2.1", MIME_SEC_ALL, IN_P1_BODY));
    test_assert(section_is(&m, "2.1", MIME_SEC_MIME, IN_P1_HDR));
    test_assert(section_is(&m, "2.2", MIME_SEC_ALL, IN_P2_BODY));
    test_assert(section_is(&m, "2.3", MIME_SEC_ALL, NULL));
    test_assert(section_is(&m, "2.1.1", MIME_SEC_ALL, NULL));
    test_assert(section_is(&m, "1", MIME_SEC_HEADER, NULL));
    test_assert(section_is(&m, "3", MIME_SEC_ALL, NULL));

    /* HEADER.FIELDS of the embedded message. */
    struct buf out;
    buf_init(&out, 1 << 20);
    uint32_t p2 = 2;
    char *fields[] = {"subject", "TO"};
    test_assert(mime_header_fields(m.mm, &p2, 1, fields, 2, 0, &out) == 0);
    const char *hf = "To: Group: a@x.test, \"B \\\"Q\\\"\" <b@y.test>;, c@z.test" CRLF
                     "Subject: =?ISO-8859-1?Q?Caf=E9?= =?UTF-8?B?w6Rw?=" CRLF CRLF;
    test_assert(streq_report(out.data, hf));
    buf_reset(&out);
    uint32_t p1 = 1;
    test_assert(mime_header_fields(m.mm, &p1, 1, fields, 2, 0, &out) == 1);
    buf_deinit(&out);

    /* SEARCH: charset conversion of 8-bit latin-1, embedded headers decoded. */
    test_assert(mime_text_contains(m.mm, "CAF\xc3\x89 CR\xc3\x88ME", 0) == 1);
    test_assert(mime_text_contains(m.mm, "caf\xc3\xa9\xc3\xa4p", 0) == 1);
    test_assert(mime_text_contains(m.mm, "Doe, John", 0) == 1);
    test_assert(mime_header_contains(m.mm, "subject", "fwd") == 1);
    test_assert(mime_header_contains(m.mm, "subject", "caf\xc3\xa9") == 0);
    test_assert(mime_header_contains(m.mm, "to", "undisclosed") == 1);
    close_msg(&m);
    test_end();
}

/* ---- 8-bit headers and UTF8=ACCEPT ---- */

#define U8_MSG "From: J\xc3\xb6rg <j\xc3\xb6rg@example.org>" CRLF \
    "Subject: Gr\xc3\xbc\xc3\x9f" "e" CRLF \
    "Subject: second" CRLF \
    "Reply-To:" CRLF \
    "Content-Type: text/plain; charset=utf-8" CRLF \
    "Content-Transfer-Encoding: 8bit" CRLF CRLF \
    "Gr\xc3\xbc\xc3\x9f" "e!" CRLF

static void test_8bit_headers(void)
{
    test_begin("mime: 8-bit headers, literals, UTF8=ACCEPT");
    struct m m = open_str(U8_MSG);
    char *env = envelope(&m, 0);
    test_assert(streq_report(env,
        "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e (({5}\r\nJ\xc3\xb6rg NIL {5}\r\nj\xc3\xb6rg \"example.org\")) "
        "(({5}\r\nJ\xc3\xb6rg NIL {5}\r\nj\xc3\xb6rg \"example.org\")) "
        "(({5}\r\nJ\xc3\xb6rg NIL {5}\r\nj\xc3\xb6rg \"example.org\")) NIL NIL NIL NIL NIL)"));
    free(env);
    env = envelope(&m, 1);
    test_assert(streq_report(env,
        "(NIL \"Gr\xc3\xbc\xc3\x9f" "e\" ((\"J\xc3\xb6rg\" NIL \"j\xc3\xb6rg\" \"example.org\")) "
        "((\"J\xc3\xb6rg\" NIL \"j\xc3\xb6rg\" \"example.org\")) "
        "((\"J\xc3\xb6rg\" NIL \"j\xc3\xb6rg\" \"example.org\")) NIL NIL NIL NIL NIL)"));
    free(env);
    test_assert(mime_header_contains(m.mm, "subject", "GR\xc3\x9c\x53SE") == 1);
    test_assert(mime_header_contains(m.mm, "subject", "SECOND") == 1);
    test_assert(mime_text_contains(m.mm, "\xc3\xbc\xc3\x9f" "e!", 0) == 1);
    close_msg(&m);

    /* Invalid UTF-8 is a literal even with UTF8=ACCEPT. */
    m = open_str("Subject: caf\xe9" CRLF CRLF "x");
    env = envelope(&m, 1);
    test_assert(streq_report(env, "(NIL {4}\r\ncaf\xe9 NIL NIL NIL NIL NIL NIL NIL NIL)"));
    free(env);
    close_msg(&m);
    test_end();
}

/* ---- addresses ---- */

static const struct addr_case {
    const char *value, *want;
} addr_cases[] = {
    {"a@b.example", "((NIL NIL \"a\" \"b.example\"))"},
    {"Ann <a@b.example>", "((\"Ann\" NIL \"a\" \"b.example\"))"},
    {"\"Ann \\\\ B\" <a@b.example>", "((\"Ann \\\\ B\" NIL \"a\" \"b.example\"))"},
    {"a@b.example (Ann Comment)", "((\"Ann Comment\" NIL \"a\" \"b.example\"))"},
    {"John Q. Public <jqp@x.example>", "((\"John Q. Public\" NIL \"jqp\" \"x.example\"))"},
    {"<@relay.example,@r2.example:joe@x.example>",
     "((NIL \"@relay.example,@r2.example\" \"joe\" \"x.example\"))"},
    {"\"joe smith\"@x.example", "((NIL NIL \"\\\"joe smith\\\"\" \"x.example\"))"},
    {"=?utf-8?q?J=C3=B6rg?= <j@x.example>", "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.example\"))"},
    {"a@x.example b@y.example", "((NIL NIL \"a\" \"x.example\")(NIL NIL \"b\" \"y.example\"))"},
    {"undisclosed", "((NIL NIL \"undisclosed\" \"MISSING_DOMAIN\"))"},
    {"<>", "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))"},
    {"", "NIL"},
    {" , ,", "NIL"},
    {"(only a comment)", "NIL"},
    {"G: ;", "((NIL NIL \"G\" NIL)(NIL NIL NIL NIL))"},
    {"G: a@x.example", "((NIL NIL \"G\" NIL)(NIL NIL \"a\" \"x.example\")(NIL NIL NIL NIL))"},
    {"\"unterminated <a@x.example>", "((NIL NIL \"\\\"unterminated <a@x.example>\" \"MISSING_DOMAIN\"))"},
    {"Ann <a@x.example", "((\"Ann\" NIL \"a\" \"x.example\"))"},
    {"a@[127.0.0.1]", "((NIL NIL \"a\" \"[127.0.0.1]\"))"},
};

static void test_addresses(void)
{
    test_begin("mime: ENVELOPE address lists");
    for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
        char msg[512];
        snprintf(msg, sizeof msg, "To: %s" CRLF CRLF, addr_cases[i].value);
        struct m m = open_str(msg);
        char *env = envelope(&m, 0);
        char want[1024];
        snprintf(want, sizeof want, "(NIL NIL NIL NIL NIL %s NIL NIL NIL NIL)", addr_cases[i].want);
        if (!streq_report(env, want)) {
            fprintf(stderr, "address case %zu: %s\n", i, addr_cases[i].value);
            test_assert(!"address case");
        }
        free(env);
        close_msg(&m);
    }
    test_end();
}

/* ---- malformed messages ---- */

static void test_malformed(void)
{
    test_begin("mime: malformed messages");
    /* No blank line: all header. */
    struct m m = open_str("From: a@b.example" CRLF "Subject: x" CRLF);
    char *b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)"));
    free(b);
    test_assert(section_is(&m, "", MIME_SEC_HEADER, "From: a@b.example" CRLF "Subject: x" CRLF));
    test_assert(section_is(&m, "", MIME_SEC_TEXT, ""));
    struct buf out;
    buf_init(&out, 1 << 20);
    char *subj[] = {"Subject"};
    test_assert(mime_header_fields(m.mm, NULL, 0, subj, 1, 0, &out) == 0);
    test_assert(streq_report(out.data, "Subject: x" CRLF CRLF));
    close_msg(&m);

    /* Header without final line end. */
    m = open_str("Subject: x");
    buf_reset(&out);
    test_assert(mime_header_fields(m.mm, NULL, 0, subj, 1, 0, &out) == 0);
    test_assert(streq_report(out.data, "Subject: x" CRLF CRLF));
    close_msg(&m);

    /* Missing close delimiter; second part without header. */
    m = open_str("Content-Type: multipart/mixed; boundary=b" CRLF CRLF
                 "--b" CRLF "Content-Type: text/plain" CRLF CRLF "abc" CRLF
                 "--b" CRLF CRLF "def" CRLF "ghi");
    b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 3 1)"
                                "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 8 2) \"MIXED\")"));
    free(b);
    test_assert(section_is(&m, "2", MIME_SEC_ALL, "def" CRLF "ghi"));
    test_assert(section_is(&m, "2", MIME_SEC_MIME, CRLF));
    close_msg(&m);

    /* Multipart without a boundary parameter, and one whose delimiters never
     * come: one text part. */
    const char *nob[] = {
        "Content-Type: multipart/mixed" CRLF CRLF "--b" CRLF CRLF "x" CRLF,
        "Content-Type: multipart/mixed; boundary=zz" CRLF CRLF "--b" CRLF CRLF "x" CRLF,
        "Content-Type: multipart/mixed; boundary=zz" CRLF CRLF "--zz--" CRLF,
        "Content-Type: multipart/mixed; boundary=\"\"" CRLF CRLF "--" CRLF CRLF "x" CRLF,
    };
    for (size_t i = 0; i < sizeof nob / sizeof nob[0]; i++) {
        m = open_str(nob[i]);
        b = bodystructure(&m, 0, 0);
        const char *body = strstr(nob[i], CRLF CRLF) + 4;
        char want[256];
        snprintf(want, sizeof want, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" %zu %zu)",
                 strlen(body), lines_of(body));
        test_assert(streq_report(b, want));
        free(b);
        test_assert(section_is(&m, "1", MIME_SEC_ALL, body));
        test_assert(section_is(&m, "2", MIME_SEC_ALL, NULL));
        close_msg(&m);
    }

    /* Invalid Content-Type: the default. Delimiter with junk after it is not one. */
    m = open_str("Content-Type: text" CRLF "Content-Transfer-Encoding: x-weird" CRLF CRLF "--b junk" CRLF);
    b = bodystructure(&m, 1, 0);
    test_assert(streq_report(b, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"X-WEIRD\" 10 1 NIL NIL NIL NIL)"));
    free(b);
    buf_reset(&out);
    uint32_t p1 = 1;
    test_assert(mime_binary(m.mm, &p1, 1, &out) == 2);
    test_assert(mime_text_contains(m.mm, "B JUNK", 0) == 1);
    close_msg(&m);

    /* Bare LF line ends. */
    m = open_str("Subject: lf\nContent-Type: multipart/mixed; boundary=q\n\n--q\n\nline1\nline2\n--q--\n");
    b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 2) \"MIXED\")"));
    free(b);
    test_assert(section_is(&m, "1", MIME_SEC_ALL, "line1\nline2"));
    test_assert(section_is(&m, "", MIME_SEC_HEADER, "Subject: lf\nContent-Type: multipart/mixed; boundary=q\n\n"));
    close_msg(&m);

    /* Empty message, and a message that is only a blank line. */
    m = open_msg("", 0);
    b = bodystructure(&m, 1, 0);
    test_assert(streq_report(b, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)"));
    free(b);
    char *env = envelope(&m, 0);
    test_assert(streq_report(env, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"));
    free(env);
    time_t t;
    int tz;
    test_assert(mime_sent_date(m.mm, &t, &tz) == 1);
    close_msg(&m);
    m = open_str(CRLF "body");
    test_assert(section_is(&m, "", MIME_SEC_HEADER, CRLF));
    test_assert(section_is(&m, "1", MIME_SEC_ALL, "body"));
    close_msg(&m);

    /* Bad date, NUL in a header, CR/LF left in a quoted value. */
    m = open_msg("Date: not a date\r\nSubject: a\0b\r\n\r\n", 35);
    test_assert(mime_sent_date(m.mm, &t, &tz) == 1);
    env = envelope(&m, 0);
    test_assert(streq_report(env, "(\"not a date\" \"ab\" NIL NIL NIL NIL NIL NIL NIL NIL)"));
    free(env);
    close_msg(&m);
    m = open_str("Subject: a\rb" CRLF CRLF);
    env = envelope(&m, 0);
    test_assert(streq_report(env, "(NIL {3}\r\na\rb NIL NIL NIL NIL NIL NIL NIL NIL)"));
    free(env);
    close_msg(&m);
    buf_deinit(&out);
    test_end();
}

/* ---- multipart/digest, deep nesting, same boundary nested ---- */

static void test_digest_and_depth(void)
{
    test_begin("mime: digest defaults, nesting limit");
    struct m m = open_str("Content-Type: multipart/digest; boundary=d" CRLF CRLF
                          "--d" CRLF CRLF "Subject: one" CRLF CRLF "first" CRLF
                          "--d" CRLF "Content-Type: text/plain" CRLF CRLF "plain" CRLF "--d--" CRLF);
    char *b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 21 "
                                "(NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) "
                                "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1) 3)"
                                "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 5 1) \"DIGEST\")"));
    free(b);
    test_assert(section_is(&m, "1.1", MIME_SEC_ALL, "first"));
    test_assert(section_is(&m, "1", MIME_SEC_HEADER, "Subject: one" CRLF CRLF));
    close_msg(&m);

    /* 200 nested message/rfc822 levels: parsed to the limit, then opaque. */
    struct buf msg;
    buf_init(&msg, 1 << 20);
    for (int i = 0; i < 200; i++)
        test_assert(buf_append(&msg, "Content-Type: message/rfc822" CRLF CRLF, 32) == 0);
    test_assert(buf_append(&msg, "end", 3) == 0);
    m = open_msg(msg.data, msg.len);
    b = bodystructure(&m, 1, 0);
    test_assert(strstr(b, "\"APPLICATION\" \"OCTET-STREAM\"") != NULL);
    if (!strstr(b, "\"APPLICATION\" \"OCTET-STREAM\""))
        fprintf(stderr, "%.300s\n", b);
    free(b);
    uint32_t path[60];
    for (int i = 0; i < 60; i++)
        path[i] = 1;
    size_t off, len;
    test_assert(mime_section_range(m.mm, path, 10, MIME_SEC_TEXT, &off, &len) == 0);
    test_assert(off + len == msg.len);
    close_msg(&m);
    buf_deinit(&msg);

    /* The same boundary nested: the inner multipart sees no delimiter. */
    m = open_str("Content-Type: multipart/mixed; boundary=s" CRLF CRLF "--s" CRLF
                 "Content-Type: multipart/mixed; boundary=s" CRLF CRLF "x" CRLF "--s" CRLF CRLF "y" CRLF "--s--");
    b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1 1)"
                                "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1 1) \"MIXED\")"));
    free(b);
    close_msg(&m);
    test_end();
}

/* ---- HEADER.FIELDS with folding ---- */

#define HF_MSG "Received: from a" CRLF "\tby b; Mon, 1 Jan 2024 00:00:00 +0000" CRLF \
    "Subject: folded" CRLF " subject line" CRLF "X-Empty:" CRLF "from: x@y.example" CRLF \
    "Subject : second" CRLF "not a field" CRLF CRLF "body" CRLF

static void test_header_fields(void)
{
    test_begin("mime: HEADER.FIELDS and .NOT");
    struct m m = open_str(HF_MSG);
    struct buf out;
    buf_init(&out, 1 << 20);
    char *f1[] = {"SUBJECT", "From"};
    test_assert(mime_header_fields(m.mm, NULL, 0, f1, 2, 0, &out) == 0);
    test_assert(streq_report(out.data, "Subject: folded" CRLF " subject line" CRLF "from: x@y.example" CRLF
                                       "Subject : second" CRLF CRLF));
    buf_reset(&out);
    test_assert(mime_header_fields(m.mm, NULL, 0, f1, 2, 1, &out) == 0);
    test_assert(streq_report(out.data, "Received: from a" CRLF "\tby b; Mon, 1 Jan 2024 00:00:00 +0000" CRLF
                                       "X-Empty:" CRLF CRLF));
    buf_reset(&out);
    char *none[] = {"x-nothing"};
    test_assert(mime_header_fields(m.mm, NULL, 0, none, 1, 0, &out) == 0);
    test_assert(streq_report(out.data, CRLF));
    test_assert(mime_header_contains(m.mm, "subject", "folded subject") == 1);
    test_assert(mime_header_contains(m.mm, "X-Empty", "") == 1);

    /* OUT full: -1, never a truncated success. */
    struct buf small;
    buf_init(&small, 10);
    test_assert(mime_header_fields(m.mm, NULL, 0, f1, 2, 0, &small) == -1);
    buf_deinit(&small);
    buf_init(&small, 10);
    test_assert(mime_bodystructure(m.mm, 1, 0, &small) == -1);
    buf_deinit(&small);
    buf_init(&small, 10);
    test_assert(mime_envelope(m.mm, 0, &small) == -1);
    buf_deinit(&small);
    buf_deinit(&out);
    close_msg(&m);
    test_end();
}

/* ---- charsets and dates ---- */

static void test_search_charsets(void)
{
    test_begin("mime: SEARCH charsets, encodings, dates");
    struct m m = open_str("Date: 3 Mar 2024 23:30:00 -0500" CRLF
                          "Subject: =?koi8-r?B?8NLJ18XU?=" CRLF
                          "Content-Type: text/plain; charset=windows-1252" CRLF
                          "Content-Transfer-Encoding: base64" CRLF CRLF
                          "U2No9m4gZ3L232UggCBldXJv" CRLF);
    /* base64 of "Sch\xf6n gr\xf6\xdf" "e \x80 euro" (windows-1252) */
    test_assert(mime_header_contains(m.mm, "subject", "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82") == 1);
    test_assert(mime_header_contains(m.mm, "subject", "\xd0\x9f\xd0\xa0\xd0\x98") == 1);
    test_assert(mime_text_contains(m.mm, "SCH\xc3\x96N", 0) == 1);
    test_assert(mime_text_contains(m.mm, "GR\xc3\x96SSE \xe2\x82\xac EURO", 0) == 1);
    test_assert(mime_text_contains(m.mm, "U2No", 0) == 0);
    time_t t;
    int tz;
    test_assert(mime_sent_date(m.mm, &t, &tz) == 0);
    test_assert(t == 1709526600); /* 2024-03-04 04:30:00 UTC */
    test_assert(tz == -300);
    close_msg(&m);

    /* Unknown charset: GMime's 8-bit fallback, ASCII still matches. */
    m = open_str("Content-Type: text/plain; charset=x-unknown-cs" CRLF CRLF "hello w\xf6rld" CRLF);
    test_assert(mime_text_contains(m.mm, "HELLO", 0) == 1);
    test_assert(mime_text_contains(m.mm, "", 0) == 1);
    close_msg(&m);
    test_end();
}

/* ---- parameters ---- */

/* Plain ASCII values take a fast path (no RFC 2047 decoding, ASCII case
 * folding): it must answer exactly as the decoding path does. */
static void test_search_plain_values(void)
{
    test_begin("mime: SEARCH on plain ASCII values, as on decoded ones");
    static const char msg[] = "Subject:   Hello   World  " CRLF
                              "X-Tab:\tTabbed\tvalue" CRLF
                              "X-Enc: =?utf-8?q?Hello_World?=" CRLF
                              "X-Eq: a=b?c" CRLF
                              "X-Kelvin: 300 k" CRLF
                              CRLF "body" CRLF;
    struct m m = open_msg(msg, sizeof msg - 1);
    test_assert(mime_header_contains(m.mm, "subject", "hello   world") == 1);
    test_assert(mime_header_contains(m.mm, "subject", "HELLO   WORLD") == 1);
    test_assert(mime_header_contains(m.mm, "subject", " hello") == 0);   /* trimmed */
    test_assert(mime_header_contains(m.mm, "subject", "world ") == 0);
    test_assert(mime_header_contains(m.mm, "subject", "hello world") == 0);
    test_assert(mime_header_contains(m.mm, "x-tab", "tabbed\tVALUE") == 1);
    test_assert(mime_header_contains(m.mm, "x-enc", "hello world") == 1);   /* decoded */
    test_assert(mime_header_contains(m.mm, "x-eq", "A=B?C") == 1);
    /* U+212A KELVIN SIGN folds to ASCII k */
    test_assert(mime_header_contains(m.mm, "x-kelvin", "300 \xe2\x84\xaa") == 1);
    test_assert(mime_header_contains(m.mm, "subject", "w\xc3\xb6rld") == 0);
    close_msg(&m);
    test_end();
}

static void test_params(void)
{
    test_begin("mime: parameters, RFC 2231 continuations, NULs in text");
    struct m m = open_str("Content-Type: application/x-thing; name*1=\"b c\"; (comment) name*0=a;" CRLF
                          " junk; title*0*=utf-8''%C3%A4; title*1=\"b c.pdf\"; orphan*2=z; E=\"q\\\"x\"" CRLF
                          "Content-Disposition: INLINE" CRLF CRLF "x");
    char *b = bodystructure(&m, 1, 0);
    test_assert(streq_report(b, "(\"APPLICATION\" \"X-THING\" (\"NAME\" \"ab c\" \"TITLE*\" \"utf-8''%C3%A4b%20c.pdf\" "
                                "\"E\" \"q\\\"x\" \"ORPHAN*2\" \"z\") NIL NIL \"7BIT\" 1 NIL (\"INLINE\" NIL) NIL NIL)"));
    free(b);
    close_msg(&m);

    m = open_msg("Content-Type: text/plain" CRLF CRLF "abc\0def", 35);
    test_assert(mime_text_contains(m.mm, "DEF", 0) == 1);
    b = bodystructure(&m, 0, 0);
    test_assert(streq_report(b, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 7 1)"));
    free(b);
    close_msg(&m);
    test_end();
}

/* ---- timing ---- */

static void test_timing(void)
{
    test_begin("mime: ENVELOPE + BODYSTRUCTURE of a 40 KiB message");
    struct buf msg;
    buf_init(&msg, 1 << 20);
    int r = buf_append(&msg, ALT_HDR, strlen(ALT_HDR));
    r |= buf_append(&msg, "--ALT-b0und" CRLF ALT_P1_HDR, strlen("--ALT-b0und" CRLF ALT_P1_HDR));
    for (int i = 0; i < 300; i++)
        r |= buf_appendf(&msg, "Line %d of a long quoted-printable text body, with some words=\r\n", i);
    r |= buf_append(&msg, CRLF "--ALT-b0und" CRLF MIX_P2_HDR, strlen(CRLF "--ALT-b0und" CRLF MIX_P2_HDR));
    for (int i = 0; i < 300; i++)
        r |= buf_append(&msg, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2\r\n", 66);
    r |= buf_append(&msg, "--ALT-b0und--" CRLF, 15);
    test_assert(r == 0);
    struct timespec a, z;
    int rounds = 500;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < rounds; i++) {
        struct mime_msg *mm = mime_parse(msg.data, msg.len);
        struct buf out;
        buf_init(&out, 1 << 20);
        test_assert(mime_envelope(mm, 0, &out) == 0);
        test_assert(mime_bodystructure(mm, 1, 0, &out) == 0);
        buf_deinit(&out);
        mime_free(&mm);
    }
    clock_gettime(CLOCK_MONOTONIC, &z);
    double us = ((double)(z.tv_sec - a.tv_sec) * 1e9 + (double)(z.tv_nsec - a.tv_nsec)) / 1e3 / rounds;
    printf("mime: %zu-byte message: parse + ENVELOPE + BODYSTRUCTURE in %.1f us\n", msg.len, us);
    test_assert(us < 2000); /* well under 1 ms optimised; ASan builds are slower */
    buf_deinit(&msg);
    test_end();
}

/* ---- worker threads ---- */

static void *thread_main(void *arg)
{
    const char *msg = arg;
    long ok = 1;
    for (int i = 0; i < 100; i++) {
        struct mime_msg *mm = mime_parse(msg, strlen(msg));
        struct buf out;
        buf_init(&out, 1 << 20);
        ok &= mime_envelope(mm, 0, &out) == 0 && mime_bodystructure(mm, 1, 1, &out) == 0;
        ok &= mime_text_contains(mm, "CAF\xc3\x89 CR\xc3\x88ME", 0) == 1;
        ok &= mime_header_contains(mm, "subject", "FWD") == 1;
        buf_deinit(&out);
        mime_free(&mm);
    }
    return (void *)ok;
}

static void test_threads(void)
{
    test_begin("mime: four threads at once");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        test_assert(pthread_create(&t[i], NULL, thread_main, (void *)NEST_MSG) == 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        test_assert(pthread_join(t[i], &r) == 0);
        test_assert(r == (void *)1);
    }
    test_end();
}

int main(void)
{
    mime_init();
    mime_init(); /* idempotent */
    return test_run((test_fn[]){test_rfc3501_example, test_alternative, test_mixed, test_nested,
                                test_8bit_headers, test_addresses, test_malformed,
                                test_digest_and_depth, test_header_fields, test_search_charsets,
                                test_search_plain_values, test_params, test_timing, test_threads, NULL});
}
