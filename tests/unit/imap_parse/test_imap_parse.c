/* Unit tests for the IMAP reader and parser (src/imap/imap_parse.h):
 * framing with literals and limits, the argument tree, and every typed
 * parser with good and bad input. */
#include "imap/imap_parse.h"
#include "core/buf.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* Feeds TEXT in chunks of CHUNK bytes; returns the results seen, one
 * letter each (M more, C continue, K command, L line too long, T too big),
 * and parses each framed command into CMDS (up to 8). */
static int feed_all(struct imap_reader *r, const char *text, size_t len, size_t chunk,
                    char *results, struct imap_command *cmds, int *ncmds)
{
    size_t pos = 0;
    int nres = 0;
    *ncmds = 0;
    while (pos < len) {
        size_t n = len - pos < chunk ? len - pos : chunk;
        size_t used = 0;
        enum imap_read res = imap_reader_feed(r, text + pos, n, &used);
        pos += used;
        static const char letters[] = "MCKLT";
        if (res != IMAP_READ_MORE)
            results[nres++] = letters[res];
        if (res == IMAP_READ_COMMAND) {
            struct imap_framed *f = imap_reader_take(r);
            if (*ncmds < 8)
                imap_parse_command(f, &cmds[(*ncmds)++]);
            imap_framed_free(&f);
        }
        if (res == IMAP_READ_MORE && used == 0)
            break;
    }
    results[nres] = '\0';
    return nres;
}

static void free_cmds(struct imap_command *cmds, int n)
{
    for (int i = 0; i < n; i++)
        imap_command_free(&cmds[i]);
}

static void test_reader_pipelined_and_chunks(void)
{
    test_begin("reader: pipelined commands, sync and non-sync literals, any chunk size");
    const char text[] = "a1 NOOP\r\na2 LOGIN {4}\r\nuser {3+}\r\np\0s\r\na3 UID FETCH 1:* FLAGS\r\n";
    for (size_t chunk = 1; chunk <= sizeof text; chunk++) {
        struct imap_reader *r = imap_reader_new(1000);
        char res[32];
        struct imap_command cmds[8];
        int n;
        feed_all(r, text, sizeof text - 1, chunk, res, cmds, &n);
        test_assert_streq(res, "KCKK");
        test_assert(n == 3);
        test_assert_streq(cmds[0].tag, "a1");
        test_assert_streq(cmds[0].name, "NOOP");
        test_assert(cmds[1].nargs == 2 && cmds[1].args[0].type == IMAP_ARG_LITERAL);
        test_assert_streq(cmds[1].args[0].str, "user");
        test_assert_memeq(cmds[1].args[1].str, cmds[1].args[1].len, "p\0s", 3);
        test_assert(cmds[2].uid && strcmp(cmds[2].name, "FETCH") == 0 && cmds[2].nargs == 2);
        free_cmds(cmds, n);
        imap_reader_free(&r);
    }
    test_end();
}

static void test_reader_limits(void)
{
    test_begin("reader: huge literals refused from the announcement, long lines skipped");
    struct imap_reader *r = imap_reader_new(1000);
    char res[32];
    struct imap_command cmds[8];
    int n;
    /* a 2 GB synchronizing literal: refused, no "+", next command works */
    const char big[] = "t1 LOGIN {2000000000}\r\nt2 NOOP\r\n";
    feed_all(r, big, sizeof big - 1, 7, res, cmds, &n);
    test_assert_streq(res, "TK");
    test_assert_streq(imap_reader_tag(r), "t2");
    test_assert(n == 1 && strcmp(cmds[0].name, "NOOP") == 0);
    free_cmds(cmds, n);
    /* APPEND gets the append limit; others the command literal budget */
    const char app[] = "t3 APPEND INBOX {1001}\r\nt4 APPEND INBOX {1000}\r\n";
    feed_all(r, app, sizeof app - 1, 100, res, cmds, &n);
    test_assert_streq(res, "TC");
    free_cmds(cmds, n);
    imap_reader_free(&r);
    /* a non-synchronizing literal over the limit: its octets are skipped */
    r = imap_reader_new(10);
    const char ns[] = "t5 APPEND INBOX {20+}\r\n01234567890123456789\r\nt6 NOOP\r\n";
    feed_all(r, ns, sizeof ns - 1, 3, res, cmds, &n);
    test_assert_streq(res, "TK");
    test_assert(n == 1 && strcmp(cmds[0].tag, "t6") == 0);
    free_cmds(cmds, n);
    imap_reader_free(&r);
    /* a line over IMAP_MAX_LINE */
    r = imap_reader_new(10);
    size_t len = IMAP_MAX_LINE + 100;
    char *line = malloc(len + 20);
    memcpy(line, "t7 NOOP ", 8);
    memset(line + 8, 'x', len - 8);
    memcpy(line + len, "\r\nt8 NOOP\r\n", 11);
    feed_all(r, line, len + 11, 4096, res, cmds, &n);
    test_assert_streq(res, "LK");
    test_assert(n == 1 && strcmp(cmds[0].tag, "t8") == 0);
    free_cmds(cmds, n);
    free(line);
    imap_reader_free(&r);
    test_end();
}

static enum imap_perr parse_text(const char *text, struct imap_command *cmd)
{
    struct imap_reader *r = imap_reader_new(100);
    size_t used;
    enum imap_read res = imap_reader_feed(r, text, strlen(text), &used);
    enum imap_perr e = IMAP_PERR_NO_TAG;
    memset(cmd, 0, sizeof *cmd);
    if (res == IMAP_READ_COMMAND) {
        struct imap_framed *f = imap_reader_take(r);
        e = imap_parse_command(f, cmd);
        imap_framed_free(&f);
    }
    imap_reader_free(&r);
    return e;
}

static void test_parse_tree(void)
{
    test_begin("parser: atoms with sections, strings, NIL, nested lists, errors");
    struct imap_command c;
    test_assert(parse_text("x FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (A B)]<0.10> \"q\\\"s\" NIL)\r\n",
                           &c) == IMAP_PERR_OK);
    test_assert(c.nargs == 2 && c.args[1].type == IMAP_ARG_LIST && c.args[1].nlist == 4);
    test_assert_streq(c.args[1].list[1].str, "BODY.PEEK[HEADER.FIELDS (A B)]<0.10>");
    test_assert_streq(c.args[1].list[2].str, "q\"s");
    test_assert(c.args[1].list[3].type == IMAP_ARG_NIL);
    imap_command_free(&c);
    test_assert(parse_text("x list \"\" *\r\n", &c) == IMAP_PERR_OK && strcmp(c.name, "LIST") == 0);
    imap_command_free(&c);
    test_assert(parse_text("\r\n", &c) == IMAP_PERR_NO_TAG);
    test_assert(parse_text("a+b NOOP\r\n", &c) == IMAP_PERR_NO_TAG);
    test_assert(parse_text("x\r\n", &c) == IMAP_PERR_NO_COMMAND);
    test_assert(parse_text("x FETCH 1 (FLAGS\r\n", &c) == IMAP_PERR_SYNTAX);
    test_assert_streq(c.tag, "x");
    test_assert(parse_text("x FETCH 1 FLAGS)\r\n", &c) == IMAP_PERR_SYNTAX);
    test_assert(parse_text("x LOGIN \"unterminated\r\n", &c) == IMAP_PERR_SYNTAX);
    test_assert(parse_text("x LOGIN \xc3\xa9 y\r\n", &c) == IMAP_PERR_SYNTAX);
    char deep[200] = "x NOOP ";
    for (int i = 0; i < IMAP_MAX_DEPTH + 1; i++)
        strcat(deep, "(");
    for (int i = 0; i < IMAP_MAX_DEPTH + 1; i++)
        strcat(deep, ")");
    strcat(deep, "\r\n");
    test_assert(parse_text(deep, &c) == IMAP_PERR_TOO_DEEP);
    test_end();
}

static void test_seqsets(void)
{
    test_begin("sequence sets: ranges, '*', '$', errors, formatting");
    struct imap_seqset s;
    test_assert(imap_seqset_parse("1,3:5,9:*", &s) == 0 && s.n == 3);
    test_assert(imap_seqset_contains(&s, 4, 20) && !imap_seqset_contains(&s, 2, 20));
    test_assert(imap_seqset_contains(&s, 20, 20) && imap_seqset_contains(&s, 9, 20));
    imap_seqset_free(&s);
    test_assert(imap_seqset_parse("5:2", &s) == 0 && s.r[0].lo == 2 && s.r[0].hi == 5);
    imap_seqset_free(&s);
    test_assert(imap_seqset_parse("$", &s) == 0 && s.saved);
    const char *bad[] = {"", "0", "1,,2", "1:", ":3", "a", "4294967296", "01", "1:2:3", NULL};
    for (int i = 0; bad[i]; i++)
        test_assert(imap_seqset_parse(bad[i], &s) == -1);
    uint32_t uids[] = {7, 1, 2, 3, 5, 6, 9};
    char out[64];
    test_assert(imap_uids_format(uids, 7, out, sizeof out) > 0);
    test_assert_streq(out, "1:3,5:7,9");
    test_assert(imap_uids_format(uids, 7, out, 4) == -1);
    test_end();
}

static void test_fetch_items(void)
{
    test_begin("FETCH items: macros, sections, partials, BINARY, modifiers, errors");
    struct imap_command c;
    struct imap_fetch_spec f;
    const char *err;
    test_assert(parse_text("x FETCH 1 FULL\r\n", &c) == IMAP_PERR_OK);
    test_assert(imap_fetch_parse(&c.args[1], 1, &f, &err) == 0);
    test_assert(f.items & IMAP_FI_ENVELOPE && f.items & IMAP_FI_BODY);
    imap_fetch_spec_free(&f);
    imap_command_free(&c);
    test_assert(parse_text("x FETCH 1 (UID BODY[1.2.HEADER.FIELDS.NOT (x-a)]<5.10> BINARY.PEEK[2] "
                           "BINARY.SIZE[3] BODY[]) (CHANGEDSINCE 9 VANISHED)\r\n", &c) == 0);
    test_assert(imap_fetch_parse(&c.args[1], 2, &f, &err) == 0);
    test_assert(f.nsections == 4 && f.changedsince == 9 && f.vanished);
    test_assert(f.sections[0].kind == IMAP_SEC_HEADER_FIELDS_NOT && f.sections[0].nparts == 2);
    test_assert_streq(f.sections[0].fields[0], "X-A");
    test_assert(f.sections[0].partial && f.sections[0].offset == 5 && f.sections[0].count == 10);
    test_assert(f.sections[1].binary && f.sections[1].peek && f.sections[2].binary_size);
    test_assert(f.sections[3].kind == IMAP_SEC_ALL && !f.sections[3].peek);
    imap_fetch_spec_free(&f);
    imap_command_free(&c);
    const char *bad[] = {"x FETCH 1 ()\r\n", "x FETCH 1 (ALL)\r\n", "x FETCH 1 BODY[9.FOO]\r\n",
                         "x FETCH 1 BODY[MIME]\r\n", "x FETCH 1 BODY[]<1.2.3>\r\n",
                         "x FETCH 1 BINARY[HEADER]\r\n", "x FETCH 1 NOSUCH\r\n",
                         "x FETCH 1 BODY[0]\r\n", "x FETCH 1 FLAGS (VANISHED)\r\n", NULL};
    for (int i = 0; bad[i]; i++) {
        test_assert(parse_text(bad[i], &c) == IMAP_PERR_OK);
        test_assert(imap_fetch_parse(&c.args[1], c.nargs - 1, &f, &err) == -1);
        imap_command_free(&c);
    }
    test_end();
}

static void test_search_programs(void)
{
    test_begin("SEARCH: keys, OR/NOT/lists, RETURN, CHARSET, dates, errors");
    struct imap_command c;
    struct imap_search_prog p;
    const char *err;
    test_assert(parse_text("x SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM a (NOT SEEN "
                           "LARGER 5) SINCE 1-Feb-2024 HEADER X-Y z 1:3 UID 5:* MODSEQ 7\r\n",
                           &c) == 0);
    test_assert(imap_search_parse(c.args, c.nargs, &p, &err) == 0);
    test_assert(p.esearch && p.ret == (IMAP_ESR_MIN | IMAP_ESR_COUNT) && p.uses_modseq);
    test_assert(p.needs_headers && !p.needs_body);
    test_assert(p.root.nchild == 6 && p.root.child[0].key == IMAP_SK_OR);
    test_assert(p.root.child[0].child[1].key == IMAP_SK_AND);
    test_assert(p.root.child[1].key == IMAP_SK_SINCE && p.root.child[1].date == 1706745600);
    test_assert_streq(p.root.child[2].field, "X-Y");
    imap_search_prog_free(&p);
    imap_command_free(&c);
    test_assert(parse_text("x SEARCH CHARSET KOI8-R ALL\r\n", &c) == 0);
    test_assert(imap_search_parse(c.args, c.nargs, &p, &err) == 1 && strstr(err, "BADCHARSET"));
    imap_command_free(&c);
    const char *bad[] = {"x SEARCH NOSUCHKEY\r\n", "x SEARCH LARGER x\r\n",
                         "x SEARCH BEFORE 31-Feb-2024\r\n", "x SEARCH OR ALL\r\n",
                         "x SEARCH RETURN (BOGUS) ALL\r\n", "x SEARCH NOT\r\n",
                         "x SEARCH CHARSET UTF-8\r\n", NULL};
    for (int i = 0; bad[i]; i++) {
        test_assert(parse_text(bad[i], &c) == IMAP_PERR_OK);
        test_assert(imap_search_parse(c.args, c.nargs, &p, &err) == -1);
        imap_command_free(&c);
    }
    test_end();
}

static void test_flags_and_store(void)
{
    test_begin("flags and STORE: normalised system flags, keywords, UNCHANGEDSINCE, errors");
    struct imap_command c;
    struct imap_store_spec st;
    const char *err;
    test_assert(parse_text("x STORE 1 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\seen $Junk \\SEEN)\r\n",
                           &c) == 0);
    test_assert(imap_store_parse(&c.args[1], c.nargs - 1, &st, &err) == 0);
    test_assert(st.op == IMAP_STORE_ADD && st.silent && st.has_unchangedsince &&
                st.unchangedsince == 4 && st.flags.n == 2);
    test_assert_streq(st.flags.flag[0], "\\Seen");
    test_assert_streq(st.flags.flag[1], "$Junk");
    imap_store_spec_free(&st);
    imap_command_free(&c);
    test_assert(parse_text("x STORE 1 -FLAGS \\Draft\r\n", &c) == 0);
    test_assert(imap_store_parse(&c.args[1], c.nargs - 1, &st, &err) == 0 &&
                st.op == IMAP_STORE_REMOVE && st.flags.n == 1);
    imap_store_spec_free(&st);
    imap_command_free(&c);
    const char *bad[] = {"x STORE 1 FLAGS (\\Recent)\r\n", "x STORE 1 FLAGS (\\Bogus)\r\n",
                         "x STORE 1 XFLAGS (a)\r\n", "x STORE 1 +FLAGS\r\n",
                         "x STORE 1 (UNCHANGEDSINCE x) FLAGS (a)\r\n", NULL};
    for (int i = 0; bad[i]; i++) {
        test_assert(parse_text(bad[i], &c) == IMAP_PERR_OK);
        test_assert(imap_store_parse(&c.args[1], c.nargs - 1, &st, &err) == -1);
        imap_command_free(&c);
    }
    test_end();
}

static void test_dates(void)
{
    test_begin("dates: date, date-time with zones, formatting, bad days and months");
    time_t t;
    test_assert(imap_date_parse("1-Feb-1994", &t) == 0 && t == 760060800);
    test_assert(imap_date_parse("29-Feb-2024", &t) == 0);
    test_assert(imap_date_parse("29-Feb-2023", &t) == -1);
    test_assert(imap_date_parse("1-Foo-1994", &t) == -1);
    test_assert(imap_date_parse("1-Feb-94", &t) == -1);
    test_assert(imap_datetime_parse("17-Jul-1996 02:44:25 -0700", &t) == 0 && t == 837596665);
    test_assert(imap_datetime_parse(" 7-Jul-1996 02:44:25 +0000", &t) == 0);
    test_assert(imap_datetime_parse("17-Jul-1996 24:44:25 -0700", &t) == -1);
    test_assert(imap_datetime_parse("17-Jul-1996 02:44:25", &t) == -1);
    char out[32];
    imap_datetime_format(837596665, out);
    test_assert_streq(out, "17-Jul-1996 09:44:25 +0000");
    test_end();
}

static void test_mutf7_and_names(void)
{
    test_begin("modified UTF-7: round trips, strict decoding; mailbox name checks");
    struct {
        const char *utf8, *mutf7;
    } ok[] = {{"INBOX", "INBOX"}, {"a&b", "a&-b"}, {"\xe2\x98\xba", "&Jjo-"},
              {"Entw\xc3\xbcrfe", "Entw&APw-rfe"}, {"\xf0\x9f\x93\xa7", "&2D3c5w-"},
              {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *m = imap_utf8_to_mutf7(ok[i].utf8);
        test_assert(m && strcmp(m, ok[i].mutf7) == 0);
        free(m);
        char *u = imap_mutf7_to_utf8(ok[i].mutf7);
        test_assert(u && strcmp(u, ok[i].utf8) == 0);
        free(u);
    }
    const char *bad[] = {"&", "&Jjo", "&AGE-", "&2D3-", "&Jjo-&Jjo-", "a\x01", "\xc3\xa9",
                         "&Jj!-", NULL};
    for (int i = 0; bad[i]; i++)
        test_assert(imap_mutf7_to_utf8(bad[i]) == NULL);
    test_assert(imap_utf8_to_mutf7("\xff") == NULL);
    test_assert(imap_mailbox_name_check("Work/2024") == NULL);
    const char *refused[] = {"", "/x", "a//b", "a/../b", "..", "a/.", "x\ty", "a*", "b%",
                             "bad\xc3", NULL};
    for (int i = 0; refused[i]; i++)
        test_assert(imap_mailbox_name_check(refused[i]) != NULL);
    test_end();
}

static void test_quote(void)
{
    test_begin("quoting: quoted strings with escapes, literals for CR/LF/NUL/8-bit");
    struct buf b;
    buf_init(&b, 1024);
    test_assert(imap_quote_string(&b, "a\"b\\c", 5, 0) == 0);
    test_assert_streq(b.data, "\"a\\\"b\\\\c\"");
    buf_reset(&b);
    test_assert(imap_quote_string(&b, "x\r\ny", 4, 0) == 0);
    test_assert_memeq(b.data, b.len, "{4}\r\nx\r\ny", 9);
    buf_reset(&b);
    test_assert(imap_quote_string(&b, "\xc3\xa9", 2, 1) == 0);
    test_assert_streq(b.data, "\"\xc3\xa9\"");
    buf_reset(&b);
    test_assert(imap_quote_string(&b, "\xc3\xa9", 2, 0) == 0 && b.data[0] == '{');
    buf_deinit(&b);
    test_end();
}

int main(void)
{
    return test_run((test_fn[]){test_reader_pipelined_and_chunks, test_reader_limits,
                                test_parse_tree, test_seqsets, test_fetch_items,
                                test_search_programs, test_flags_and_store, test_dates,
                                test_mutf7_and_names, test_quote, NULL});
}
