/* Unit tests for the client tools' pure parts: sendmail's argument parser,
 * stdin reader (limit and limit+1, byte-at-a-time) and -t header scan, the
 * pickup file envelope, roost check's greeting/refusal classification and
 * fixes, and roost send's type guessing, UTF-8 check and composition. */
#include "cli/check_fix.h"
#include "cli/compose.h"
#include "cli/sendmail_parse.h"
#include "queue/pickup_file.h"
#include "test.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(struct sm_args *a, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    char err[256];
    return sm_parse_args(argc, argv, a, err, sizeof err);
}

static void test_args(void)
{
    test_begin("sendmail args: -t -i -oi -f -F, combined, ignored flags, recipients, refusals");
    struct sm_args a;
    test_assert(parse(&a, (char *[]){"sendmail", "-t", "-oi", "-oem", "-odi", "-v", "-bm",
                                     "-fme@x.y", "-F", "Cron Daemon", "-N", "never",
                                     "a@x.y", "b", NULL}) == 0);
    test_assert(a.read_t && a.ignore_dots);
    test_assert_streq(a.from, "me@x.y");
    test_assert_streq(a.fullname, "Cron Daemon");
    test_assert(a.nrcpt == 2);
    test_assert_streq(a.rcpts[0], "a@x.y");
    test_assert_streq(a.rcpts[1], "b");
    sm_args_free(&a);
    test_assert(parse(&a, (char *[]){"sendmail", "-ti", "-r", "r@x.y", "--", "-odd@x.y", NULL}) == 0);
    test_assert(a.read_t && a.ignore_dots && a.nrcpt == 1);
    test_assert_streq(a.from, "r@x.y");
    test_assert_streq(a.rcpts[0], "-odd@x.y");
    sm_args_free(&a);
    test_assert(parse(&a, (char *[]){"sendmail", "-i", NULL}) == 0 && a.ignore_dots && !a.read_t);
    sm_args_free(&a);
    test_assert(parse(&a, (char *[]){"sendmail", "-bp", NULL}) < 0);
    sm_args_free(&a);
    test_assert(parse(&a, (char *[]){"sendmail", "-bs", NULL}) < 0);
    sm_args_free(&a);
    test_assert(parse(&a, (char *[]){"sendmail", "-q", NULL}) < 0);
    sm_args_free(&a);
    test_assert(parse(&a, (char *[]){"sendmail", "-f", NULL}) < 0);
    sm_args_free(&a);
    test_assert(parse(&a, (char *[]){"sendmail", "-Z", NULL}) < 0);
    sm_args_free(&a);
    test_end();
}

/* Reads IN (LEN) whole and byte by byte; both must agree; returns the result. */
static enum sm_read read_both(const char *in, size_t len, int ignore_dots, size_t max,
                              char **out_r, size_t *out_len_r)
{
    struct sm_reader w, b;
    sm_reader_init(&w, max, ignore_dots);
    sm_reader_init(&b, max, ignore_dots);
    enum sm_read e1 = sm_reader_feed(&w, in, len);
    if (e1 == SM_MORE)
        e1 = sm_reader_finish(&w);
    enum sm_read e2 = SM_MORE;
    for (size_t i = 0; i < len && e2 == SM_MORE; i++)
        e2 = sm_reader_feed(&b, in + i, 1);
    if (e2 == SM_MORE)
        e2 = sm_reader_finish(&b);
    test_assert(e1 == e2);
    test_assert(e1 != SM_DONE || (w.out.len == b.out.len &&
                                  memcmp(w.out.data ? w.out.data : "", b.out.data ? b.out.data : "",
                                         w.out.len) == 0));
    *out_len_r = w.out.len;
    *out_r = w.out.data ? strndup(w.out.data, w.out.len) : strdup("");
    sm_reader_deinit(&w);
    sm_reader_deinit(&b);
    return e1;
}

/* Reads the string IN whole and byte by byte (max 1000); asserts that the
 * reader ends cleanly with WANT. */
static void read_expect(const char *in, int ignore_dots, const char *want)
{
    char *out;
    size_t n;
    test_assert(read_both(in, strlen(in), ignore_dots, 1000, &out, &n) == SM_DONE);
    test_assert_streq(out, want);
    free(out);
}

static void test_reader(void)
{
    test_begin("sendmail reader: line ends, lone dot, -i, 998 and 999, size limit");
    char *out;
    size_t n;
    read_expect("a\nb\r\nc\rd", 0, "a\r\nb\r\nc\r\nd\r\n");
    read_expect("x\n.\nlost\n", 0, "x\r\n");
    read_expect("x\n.\nkept\n", 1, "x\r\n.\r\nkept\r\n");
    read_expect("x\n..\n.x\n", 0, "x\r\n..\r\n.x\r\n");
    char *line = malloc(1002);
    memset(line, 'y', 1001);
    line[998] = '\n';
    test_assert(read_both(line, 999, 0, 5000, &out, &n) == SM_DONE && n == 1000);
    free(out);
    memset(line, 'y', 1001);
    line[999] = '\n';
    test_assert(read_both(line, 1000, 0, 5000, &out, &n) == SM_ERR_LINE);
    free(out);
    test_assert(read_both("abc\n", 4, 0, 5, &out, &n) == SM_DONE && n == 5);
    free(out);
    test_assert(read_both("abcd\n", 5, 0, 5, &out, &n) == SM_ERR_SIZE);
    free(out);
    free(line);
    test_end();
}

static void test_header_scan(void)
{
    test_begin("sendmail -t: To/Cc/Bcc addresses (groups, folding), Bcc removed, presence flags");
    const char *m = "To: A <a@x.y>, b@x.y\r\nCc: Team: c@x.y, D <d@x.y>;\r\n"
                    "Bcc: e@x.y,\r\n f@x.y\r\nSubject: s\r\nDate: now\r\n\r\nTo: body@x.y\r\n";
    struct sm_header h;
    struct buf out;
    buf_init(&out, 4096);
    test_assert(sm_scan_header(m, strlen(m), 1, &h, &out) == 0);
    test_assert(h.nrcpt == 6);
    const char *want[] = {"a@x.y", "b@x.y", "c@x.y", "d@x.y", "e@x.y", "f@x.y"};
    for (int i = 0; i < 6 && i < h.nrcpt; i++)
        test_assert_streq(h.rcpts[i], want[i]);
    test_assert(h.has_date && !h.has_from && !h.has_msgid);
    test_assert(strstr(out.data, "Bcc") == NULL && strstr(out.data, "f@x.y") == NULL);
    test_assert(strstr(out.data, "Subject: s\r\n") != NULL);
    test_assert(h.body_off == strlen(m) - strlen("To: body@x.y\r\n"));
    sm_header_free(&h);
    buf_reset(&out);
    test_assert(sm_scan_header("no header line\r\n", 16, 1, &h, &out) == 0);
    test_assert(h.body_off == 0 && h.nrcpt == 0 && out.len == 0);
    sm_header_free(&h);
    buf_deinit(&out);
    test_end();
}

static void test_pickup_file(void)
{
    test_begin("pickup file: format and parse back, malformed envelopes refused");
    const char *rc[] = {"a@x.y", "b@x.y"};
    size_t len;
    char *f = pickup_format("s@x.y", rc, 2, &len);
    test_assert(f != NULL);
    struct pickup_env env;
    const char *err;
    test_assert(pickup_parse(f, len, &env, &err) == 0);
    test_assert_streq(env.sender, "s@x.y");
    test_assert(env.nrcpt == 2 && env.msg_off == len);
    pickup_env_free(&env);
    free(f);
    const char *bad[] = {
        "ROOST-PICKUP 2\nR a@x.y\n\n", "ROOST-PICKUP 1\n\n", "ROOST-PICKUP 1\nR a@x.y\n",
        "ROOST-PICKUP 1\nR a b@x.y\n\n", "ROOST-PICKUP 1\nS a@x.y\nS a@x.y\nR a@x.y\n\n",
        "ROOST-PICKUP 1\nX a@x.y\n\n", "ROOST-PICKUP 1\nR <a@x.y>\n\n", "ROOST-PICKUP 1\nR @\n\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        test_assert(pickup_parse(bad[i], strlen(bad[i]), &env, &err) < 0);
    test_assert(pickup_format(NULL, (const char *[]){"no spaces@x.y"}, 1, &len) == NULL);
    test_assert(pickup_format(NULL, rc, 0, &len) == NULL);
    char longaddr[PICKUP_ADDR_MAX + 2];
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    longaddr[5] = '@';
    test_assert(!pickup_addr_valid(longaddr, PICKUP_ADDR_MAX + 1, 1));
    test_assert(pickup_addr_valid(longaddr, PICKUP_ADDR_MAX, 1));
    char *nm = pickup_normalize("a\nb\r\nc\rd", 8, &len);
    test_assert(len == 12 && strcmp(nm, "a\r\nb\r\nc\r\nd\r\n") == 0);
    free(nm);
    nm = pickup_normalize("", 0, &len);
    test_assert(len == 0);
    free(nm);
    test_end();
}

static void test_check_fixes(void)
{
    test_begin("check: greetings, refusals and the fix sentences");
    test_assert(check_proto_of_greeting("220 mx ESMTP") == P_SMTP);
    test_assert(check_proto_of_greeting("* OK ready") == P_IMAP);
    test_assert(check_proto_of_greeting("+OK POP3") == P_POP3);
    test_assert(check_proto_of_greeting("SSH-2.0-OpenSSH") == P_UNKNOWN);
    test_assert(check_greeting_refuses("554 5.7.1 no") && !check_greeting_refuses("220 ok"));
    test_assert(check_fix_for_smtp("535 5.7.8 Username and Password not accepted") == FIX_WRONG_PASSWORD);
    test_assert(check_fix_for_smtp("534 5.7.9 Application-specific password required") == FIX_APP_PASSWORD);
    test_assert(check_fix_for_smtp("530 5.7.0 Must issue a STARTTLS command first") == FIX_STARTTLS_FIRST);
    test_assert(check_fix_for_smtp("530 5.7.0 Authentication Required") == FIX_AUTH_REQUIRED);
    test_assert(check_fix_for_smtp("550 5.4.5 Daily user sending limit exceeded") == FIX_DAILY_LIMIT);
    test_assert(check_fix_for_imap("NO [CONTACTADMIN] IMAP access is disabled for this account") == FIX_IMAP_DISABLED);
    test_assert(check_fix_for_imap("NO [AUTHENTICATIONFAILED] Invalid credentials") == FIX_WRONG_PASSWORD);
    test_assert(check_fix_for_pop3("-ERR [SYS/PERM] POP access is disabled for this account") == FIX_POP_DISABLED);
    test_assert(check_fix_for_pop3("-ERR [AUTH] Must issue a STLS command first") == FIX_STARTTLS_FIRST);
    char t[512];
    check_fix_text(FIX_USE_STARTTLS, P_SMTP, NULL, t, sizeof t);
    test_assert(strstr(t, "this port uses STARTTLS: set your app to STARTTLS / port 587") != NULL);
    check_fix_text(FIX_USE_IMPLICIT, P_IMAP, NULL, t, sizeof t);
    test_assert(strstr(t, "SSL/TLS / port 993") != NULL);
    check_fix_text(FIX_APP_PASSWORD, P_SMTP, "u@x.y", t, sizeof t);
    test_assert(strstr(t, "create an app password with roost app-password create u@x.y") != NULL);
    for (int f = 0; f < FIX_COUNT; f++) {
        check_fix_text((enum check_fix)f, P_POP3, "u@x.y", t, sizeof t);
        test_assert(strlen(t) > 10 && t[strlen(t) - 1] == '.');
    }
    test_end();
}

static void test_compose(void)
{
    test_begin("send: types, UTF-8, a composed message parses back with its parts");
    test_assert_streq(compose_guess_type("a/b/photo.JPG"), "image/jpeg");
    test_assert_streq(compose_guess_type("x.pdf"), "application/pdf");
    test_assert_streq(compose_guess_type(".bashrc"), "application/octet-stream");
    test_assert_streq(compose_guess_type("noext"), "application/octet-stream");
    test_assert(compose_utf8_valid("Gr\xc3\xbc\xc3\x9f" "e", 7));
    test_assert(!compose_utf8_valid("\xc3", 1));
    test_assert(!compose_utf8_valid("\xc0\xaf", 2));        /* overlong */
    test_assert(!compose_utf8_valid("\xed\xa0\x80", 3));    /* surrogate */
    test_assert(!compose_utf8_valid("a\0b", 3));
    test_assert(compose_utf8_valid("\xf0\x9f\x98\x80", 4));
    const char *to[] = {"T <t@x.y>"};
    struct compose c = {.from = "F <f@x.y>", .to = to, .nto = 1, .subject = "S\xc3\xbc",
                        .body = "line\nzwei \xc3\xbc\n", .body_len = 13};
    char *msg, err[256];
    size_t len;
    test_assert(compose_message(&c, &msg, &len, err, sizeof err) == 0);
    test_assert(strstr(msg, "MIME-Version: 1.0\r\n") && strstr(msg, "Message-Id: <") &&
                strstr(msg, "Date: ") && strstr(msg, "quoted-printable"));
    for (size_t i = 0; i < len; i++)
        test_assert(msg[i] != '\n' || (i > 0 && msg[i - 1] == '\r'));
    free(msg);
    c.body = "\xff";
    c.body_len = 1;
    test_assert(compose_message(&c, &msg, &len, err, sizeof err) < 0);
    const char *att[] = {"/nonexistent/file"};
    c.body = "x";
    c.attach = att;
    c.nattach = 1;
    test_assert(compose_message(&c, &msg, &len, err, sizeof err) < 0 && strstr(err, "/nonexistent/file"));
    test_end();
}

int main(void)
{
    g_mime_init();
    int rc = test_run((test_fn[]){test_args, test_reader, test_header_scan, test_pickup_file,
                                  test_check_fixes, test_compose, NULL});
    g_mime_shutdown();
    return rc;
}
