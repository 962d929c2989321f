/* test_pure: the pure parts of the scheduler: the state log's encoding and
 * replay (torn records ignored), DSN composition, the back-off arithmetic,
 * the slot table and the [queue] config keys. Also the program's main. */
#include "queue/dsn.h"
#include "queue/rcptstate.h"
#include "queue/schedule.h"
#include "core/config.h"
#include "core/xalloc.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ts_sched_tests(void);

static char *encode_all(const struct rs_record *recs, int n, size_t *len_r)
{
    char *all = xstrdup("");
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t l;
        char *line = rs_encode(&recs[i], &l);
        all = xrealloc(all, len + l + 1);
        memcpy(all + len, line, l);
        len += l;
        all[len] = '\0';
        free(line);
    }
    *len_r = len;
    return all;
}

static void test_state_roundtrip(void)
{
    test_begin("rcptstate: records encode and replay; odd bytes survive");
    struct rs_record recs[] = {
        { .type = 'A', .t_ms = 1000, .idx = 0, .outcome = 'r', .code = 451, .enhanced = "4.7.1",
          .reply = "451 4.7.1 try\nlater = 100% sure", .host = "mx [192.0.2.1]", .next_ms = 5000 },
        { .type = 'A', .t_ms = 2000, .idx = 1, .outcome = 'd', .code = 250, .reply = "ok" },
        { .type = 'H', .t_ms = 3000 },
        { .type = 'A', .t_ms = 6000, .idx = 0, .outcome = 'r', .code = 451, .next_ms = 9000 },
        { .type = 'U', .t_ms = 7000 },
        { .type = 'W', .t_ms = 7001 },
        { .type = 'A', .t_ms = 8000, .idx = 2, .outcome = 'f', .code = 0, .gave_up = 1,
          .reply = "r\xc3\xa9ponse" },
    };
    size_t len;
    char *all = encode_all(recs, 7, &len);
    struct rs_msg *s = rs_new(3);
    rs_replay(s, all, len);
    test_assert(s->torn == 0);
    test_assert(s->r[0].state == RS_PENDING && s->r[0].attempts == 2);
    test_assert(s->r[0].next_ms == 7000);   /* the release made it due */
    test_assert(s->r[0].nhist == 2);
    test_assert_streq(s->r[0].hist[0].reply, "451 4.7.1 try\nlater = 100% sure");
    test_assert_streq(s->r[0].hist[0].host, "mx [192.0.2.1]");
    test_assert_streq(s->r[0].hist[0].enhanced, "4.7.1");
    test_assert(s->r[1].state == RS_DELIVERED);
    test_assert(s->r[2].state == RS_FAILED && s->r[2].gave_up);
    test_assert_streq(s->r[2].last.reply, "r\xc3\xa9ponse");
    test_assert(!s->held && s->warned);
    rs_free(&s);
    free(all);
    test_end();
}

static void test_state_torn(void)
{
    test_begin("rcptstate: a torn or damaged record is ignored, the later ones count");
    struct rs_record a = { .type = 'A', .t_ms = 1, .idx = 0, .outcome = 'r', .code = 451,
                           .next_ms = 100 };
    struct rs_record h = { .type = 'H', .t_ms = 2 };
    size_t la, lh;
    char *ea = rs_encode(&a, &la), *eh = rs_encode(&h, &lh);
    /* every possible tear of the first record, followed by the second whole */
    for (size_t cut = 0; cut < la; cut++) {
        char *buf = xmalloc(cut + lh);
        memcpy(buf, ea, cut);
        memcpy(buf + cut, eh, lh);
        struct rs_msg *s = rs_new(1);
        rs_replay(s, buf, cut + lh);
        test_assert(s->held == 1);
        /* only the final newline lost: the record itself is whole and counts */
        test_assert(s->r[0].attempts == (cut == la - 1 ? 1 : 0));
        rs_free(&s);
        free(buf);
    }
    /* a flipped byte fails the CRC */
    char *bad = xstrdup(ea);
    bad[5] ^= 1;
    struct rs_msg *s = rs_new(1);
    rs_replay(s, bad, la);
    test_assert(s->torn == 1 && s->r[0].attempts == 0);
    rs_free(&s);
    /* an index out of range and garbage lines change nothing */
    struct rs_record far = { .type = 'A', .t_ms = 1, .idx = 7, .outcome = 'd' };
    size_t lf;
    char *ef = rs_encode(&far, &lf);
    s = rs_new(1);
    rs_replay(s, ef, lf);
    rs_replay(s, "\nA t=1 i=0 o=d z=00000000\n\n\n%%%\n", 33);
    test_assert(s->r[0].state == RS_PENDING && s->r[0].attempts == 0);
    rs_free(&s);
    free(ef);
    free(bad);
    free(ea);
    free(eh);
    test_end();
}

static void test_state_file(void)
{
    test_begin("rcptstate: append, load, orphans removed");
    const char *dir = test_tmpdir();
    const char *id = "0123456789ABCDEFGHJK";
    struct rs_record recs[] = { { .type = 'A', .t_ms = 10, .idx = 1, .outcome = 'f', .code = 550,
                                  .enhanced = "5.1.1", .reply = "no" },
                                { .type = 'B', .t_ms = 11 } };
    test_assert(rs_append(dir, id, recs, 2) == 0);
    struct rs_msg *s = NULL;
    test_assert(rs_load(dir, id, 2, &s) == 0);
    test_assert(s->r[1].state == RS_FAILED && s->bounce_req && !s->delete_req);
    rs_free(&s);
    test_assert(rs_load(dir, "0123456789ABCDEFGHJM", 2, &s) == 0);   /* none: fresh */
    test_assert(s->r[0].state == RS_PENDING && s->r[0].attempts == 0);
    rs_free(&s);
    rs_remove_orphans(dir);   /* no queue file next to it: removed */
    char *path = xasprintf("%s/%s.state", dir, id);
    FILE *fp = fopen(path, "r");
    test_assert(fp == NULL);
    if (fp)
        fclose(fp);
    free(path);
    test_end();
}

static void test_dsn(void)
{
    test_begin("dsn: RFC 3464 layout, values cleaned, header only");
    static const char msg[] = "From: a@example.test\r\nSubject: hi \xc3\xa9\r\nX-Long: 1\r\n\r\n"
                              "Body line\r\n";
    struct dsn_rcpt r[2] = {
        { .address = "bad@x.test", .status = "5.1.1", .code = 550,
          .reply = "550 5.1.1 no such\r\nuser here", .remote_host = "mx.x.test [192.0.2.9]",
          .last_attempt_ms = 1764745200000LL },
        { .address = "old@y.test", .status = "5.4.7", .code = 0, .reply = "connection refused",
          .expired = 1 },
    };
    struct dsn_input in = { .kind = DSN_FAILED, .hostname = "mail.example.test",
                            .queue_id = "0123456789ABCDEFGHJK", .sender = "a@example.test",
                            .arrived = 1764745000, .now = 1764745300, .message = msg,
                            .message_len = sizeof msg - 1, .rcpts = r, .nrcpt = 2 };
    size_t len;
    char *d = dsn_compose(&in, &len);
    test_assert(d && strlen(d) == len);
    test_assert(strstr(d, "From: Mail Delivery System <MAILER-DAEMON@mail.example.test>\r\n") == d);
    test_assert(strstr(d, "To: <a@example.test>\r\n") != NULL);
    test_assert(strstr(d, "Auto-Submitted: auto-replied\r\n") != NULL);
    test_assert(strstr(d, "Content-Type: multipart/report; report-type=delivery-status;") != NULL);
    test_assert(strstr(d, "Reporting-MTA: dns; mail.example.test\r\n") != NULL);
    test_assert(strstr(d, "Arrival-Date: ") != NULL);
    test_assert(strstr(d, "Final-Recipient: rfc822; bad@x.test\r\nAction: failed\r\n"
                          "Status: 5.1.1\r\nRemote-MTA: dns; mx.x.test\r\n"
                          "Diagnostic-Code: smtp; 550 5.1.1 no such user here\r\n"
                          "Last-Attempt-Date: ") != NULL);
    test_assert(strstr(d, "Final-Recipient: rfc822; old@y.test\r\nAction: failed\r\n"
                          "Status: 5.4.7\r\nDiagnostic-Code: X-Roost; connection refused") != NULL);
    test_assert(strstr(d, "Content-Type: text/rfc822-headers\r\n\r\nFrom: a@example.test\r\n"
                          "Subject: hi ??\r\nX-Long: 1\r\n") != NULL);
    test_assert(strstr(d, "Body line") == NULL);
    test_assert(strstr(d, "The receiving server mx.x.test [192.0.2.9] answered:") != NULL);
    for (size_t i = 0; i < len; i++) {
        test_assert((unsigned char)d[i] < 0x80);
        if (d[i] == '\n')
            test_assert(i > 0 && d[i - 1] == '\r');
    }
    free(d);

    in.kind = DSN_DELAYED;
    in.retry_until = 1765177200;
    r[0].status = "4.7.1";
    in.nrcpt = 1;
    d = dsn_compose(&in, &len);
    test_assert(d && strstr(d, "Action: delayed\r\nStatus: 4.7.1\r\n") != NULL);
    test_assert(d && strstr(d, "Will-Retry-Until: Mon, 08 Dec 2025 07:00:00 +0000\r\n") != NULL);
    test_assert(d && strstr(d, "will keep trying until Mon, 08 Dec 2025 07:00:00 +0000") != NULL);
    free(d);

    char date[64];
    dsn_format_date(0, date, sizeof date);
    test_assert_streq(date, "Thu, 01 Jan 1970 00:00:00 +0000");
    test_end();
}

static void test_backoff_math(void)
{
    test_begin("schedule: back-off steps, the last repeats, capped at expiry");
    struct sched_policy p;
    sched_policy_default(&p);
    test_assert(p.unit_ms == 1000 && p.nretry == 7 && p.retry[0] == 300 && p.retry[6] == 14400);
    test_assert(p.max_age == 5 * 86400 && p.delay_warning == 4 * 3600);
    int64_t exp = sched_expiry_ms(&p, 1000);
    test_assert(exp == 1000 * 1000LL + 5 * 86400 * 1000LL);
    test_assert(sched_next_remote(&p, 1, 0, exp) == 300000);
    test_assert(sched_next_remote(&p, 2, 0, exp) == 600000);
    test_assert(sched_next_remote(&p, 7, 0, exp) == 14400000);
    test_assert(sched_next_remote(&p, 50, 0, exp) == 14400000);
    test_assert(sched_next_remote(&p, 50, exp - 10, exp) == exp);
    test_assert(sched_next_local(&p, 1, 0, exp) == 5000);
    test_assert(sched_next_local(&p, 99, 0, exp) == 1800000);
    test_assert(sched_warning_ms(&p, 0) == 4 * 3600 * 1000LL);
    p.delay_warning = 0;
    test_assert(sched_warning_ms(&p, 0) == 0);

    struct sched_slots *s = sched_slots_new();
    p.max_remote = 3;
    p.max_per_domain = 2;
    test_assert(sched_slot_take(s, &p, "a") && sched_slot_take(s, &p, "a"));
    test_assert(!sched_slot_take(s, &p, "a"));
    test_assert(sched_slot_take(s, &p, "b"));
    test_assert(!sched_slot_take(s, &p, "c"));   /* total */
    sched_slot_release(s, "a");
    test_assert(sched_slots_domain(s, "a") == 1 && sched_slots_total(s) == 2);
    test_assert(sched_slot_take(s, &p, "c"));
    sched_slots_free(&s);
    test_end();
}

static void test_config(void)
{
    test_begin("config: [queue] keys, durations, errors");
    struct config c;
    char *errs = NULL;
    test_assert(config_load_string("[queue]\nretry_schedule = 30s 1m 2h\nmax_age = 2d\n"
                                   "delay_warning = 0\nmax_remote_attempts = 7\n"
                                   "max_attempts_per_domain = 3\n", "t", &c, &errs) == 0);
    test_assert(c.queue_nretry == 3 && c.queue_retry[0] == 30 && c.queue_retry[1] == 60 &&
                c.queue_retry[2] == 7200);
    test_assert(c.queue_max_age == 2 * 86400 && c.queue_delay_warning == 0);
    test_assert(c.queue_max_remote == 7 && c.queue_max_per_domain == 3);
    config_free(&c);
    static const char *const bad[] = {
        "[queue]\nretry_schedule = 5x\n", "[queue]\nretry_schedule =\n",
        "[queue]\nmax_age = 0\n", "[queue]\nmax_age = -1d\n", "[queue]\ndelay_warning = 4w\n",
        "[queue]\nmax_remote_attempts = 0\n", "[queue]\nnope = 1\n",
        "[queue]\nretry_schedule = 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s\n",
        "[queue]\nmax_age = 999999999999d\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errs = NULL;
        test_assert(config_load_string(bad[i], "t", &c, &errs) == -1);
        test_assert(errs != NULL);
        free(errs);
        config_free(&c);
    }
    unsigned d;
    test_assert(config_parse_duration("45", &d) == 0 && d == 45);
    test_assert(config_parse_duration("5d", &d) == 0 && d == 432000);
    test_assert(config_parse_duration("", &d) == -1);
    test_assert(config_parse_duration("1h30m", &d) == -1);
    test_end();
}

int main(void)
{
    static const test_fn tests[] = {
        test_state_roundtrip, test_state_torn, test_state_file, test_dsn, test_backoff_math,
        test_config, ts_sched_tests, NULL,
    };
    return test_run(tests);
}
