/* Unit tests for src/core: bounded buffers, log escaping, the config
 * parser (values, every error with its line number, limits) and the worker
 * pool's round trip back to the submitting loop. */
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/worker.h"
#include "test.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_buf_limits(void)
{
    test_begin("buf: append up to max, refuse max+1 unchanged");
    struct buf b;
    buf_init(&b, 10);
    test_assert(buf_append(&b, "0123456789", 10) == 0);
    test_assert(b.len == 10);
    test_assert(buf_append(&b, "x", 1) < 0);
    test_assert(b.len == 10 && memcmp(b.data, "0123456789", 10) == 0);
    test_assert(b.data[b.len] == '\0');
    buf_reset(&b);
    test_assert(buf_append(&b, "01234567890", 11) < 0 && b.len == 0);
    test_assert(buf_appendf(&b, "%d-%s", 42, "ab") == 0 && strcmp(b.data, "42-ab") == 0);
    size_t n;
    char *p = buf_steal(&b, &n);
    test_assert(n == 5 && strcmp(p, "42-ab") == 0 && b.data == NULL);
    free(p);
    buf_deinit(&b);
    test_end();
}

static void test_buf_prepend(void)
{
    test_begin("buf_prepend: inserts in front, limit and limit+1");
    struct buf b;
    buf_init(&b, 10);
    test_assert(buf_prepend(&b, "89", 2) == 0 && strcmp(b.data, "89") == 0);
    test_assert(buf_append(&b, "x", 1) == 0);
    test_assert(buf_prepend(&b, "01234", 5) == 0 && strcmp(b.data, "0123489x") == 0);
    test_assert(buf_prepend(&b, "abc", 3) < 0 && b.len == 8 && strcmp(b.data, "0123489x") == 0);
    test_assert(buf_prepend(&b, "ab", 2) == 0 && b.len == 10 && strcmp(b.data, "ab0123489x") == 0);
    buf_deinit(&b);
    test_end();
}

static void test_log_q(void)
{
    test_begin("log_q: quotes, escapes control/non-ASCII/quote, truncates");
    char out[LOG_QSIZE];
    test_assert_streq(log_q(out, sizeof out, "a b", 3), "\"a b\"");
    test_assert_streq(log_q(out, sizeof out, "x\r\n\"\\\xff", 6), "\"x\\x0d\\x0a\\x22\\x5c\\xff\"");
    char big[1000];
    memset(big, 'A', sizeof big);
    log_q(out, sizeof out, big, sizeof big);
    test_assert(strlen(out) < sizeof out);
    test_assert(strstr(out, "...\"") != NULL);
    test_assert_streq(log_q(out, 16, NULL, 0), "\"\"");
    test_end();
}

static void test_config_good(void)
{
    test_begin("config: a full valid file");
    const char *text =
        "; comment\n"
        "[server]\nhostname = mx.example.test\ndata_dir = /var/lib/roost\nuser = mail\nworkers = 8\n"
        "[listeners]\nsmtp = 127.0.0.1:2525 [::1]:2525\nsubmissions = :465\n"
        "[tls]\ncert = /c.pem\nkey = /k.pem\n"
        "[limits]\nmax_message_size = 10M\nmax_recipients = 5\nidle_timeout = 2\n";
    struct config c;
    char *err = NULL;
    test_assert(config_load_string(text, "t.conf", &c, &err) == 0);
    test_assert(err == NULL);
    test_assert_streq(c.hostname, "mx.example.test");
    test_assert_streq(c.data_dir, "/var/lib/roost");
    test_assert(c.workers == 8);
    test_assert(c.nlisteners == 3);
    test_assert(c.listeners[0].kind == LK_SMTP && c.listeners[0].port == 2525);
    test_assert_streq(c.listeners[1].host, "::1");
    test_assert(c.listeners[2].kind == LK_SUBMISSIONS && strcmp(c.listeners[2].host, "0.0.0.0") == 0);
    test_assert(c.max_message_size == 10 * 1024 * 1024);
    test_assert(c.max_recipients == 5 && c.idle_timeout == 2);
    config_free(&c);
    test_end();
}

static void test_config_defaults(void)
{
    test_begin("config: empty file means production defaults 25/587/465/110/995/143/993");
    struct config c;
    char *err = NULL;
    test_assert(config_load_string("", "e.conf", &c, &err) == 0);
    test_assert(c.nlisteners == 7 && c.listeners[0].port == 25 && c.listeners[1].port == 587 &&
                c.listeners[2].port == 465 && c.listeners[3].port == 110 &&
                c.listeners[4].port == 995 && c.listeners[4].kind == LK_POP3S);
    test_assert(c.listeners[5].port == 143 && c.listeners[5].kind == LK_IMAP &&
                c.listeners[6].port == 993 && c.listeners[6].kind == LK_IMAPS);
    test_assert(c.max_message_size == 35882577 && c.max_recipients == 100);
    config_free(&c);
    config_defaults(&c, 1);
    test_assert(c.dev && c.listeners[0].port == 2525 && strcmp(c.listeners[0].host, "127.0.0.1") == 0);
    test_assert(c.nlisteners == 7 && c.listeners[5].port == 2143 && c.listeners[6].port == 2993);
    config_free(&c);
    test_end();
}

static void test_config_errors(void)
{
    test_begin("config: every error reported with its line number");
    const char *text =
        "[server]\n"                 /* 1 */
        "hostname = ok.example\n"    /* 2 */
        "bogus = 1\n"                /* 3 */
        "[limits]\n"                 /* 4 */
        "max_recipients = lots\n"    /* 5 */
        "[listeners]\n"              /* 6 */
        "imap4 = 1.2.3.4:1\n"        /* 7 */
        "smtp = nowhere\n"           /* 8 */
        "[nosuch]\n"                 /* 9 */
        "a = b\n";                   /* 10 */
    struct config c;
    char *err = NULL;
    test_assert(config_load_string(text, "bad.conf", &c, &err) < 0);
    test_assert(err != NULL);
    if (err) {
        test_assert(strstr(err, "bad.conf:3: unknown key 'bogus'") != NULL);
        test_assert(strstr(err, "bad.conf:5: max_recipients") != NULL);
        test_assert(strstr(err, "bad.conf:7: unknown listener kind") != NULL);
        test_assert(strstr(err, "bad.conf:8: smtp: 'nowhere'") != NULL);
        test_assert(strstr(err, "bad.conf:10: unknown section [nosuch]") != NULL);
    }
    free(err);
    config_free(&c);
    test_end();
}

static void test_config_limits(void)
{
    test_begin("config: ranges at limit and limit+1, long lines, syntax errors");
    struct config c;
    char *err = NULL;
    test_assert(config_load_string("[limits]\nmax_recipients = 100000\n", "a", &c, &err) == 0);
    config_free(&c);
    test_assert(config_load_string("[limits]\nmax_recipients = 100001\n", "a", &c, &err) < 0);
    free(err);
    config_free(&c);
    test_assert(config_load_string("[limits]\nmax_recipients = 0\n", "a", &c, &err) < 0);
    free(err);
    config_free(&c);
    test_assert(config_load_string("[limits]\nmax_message_size = 99999999999999999999999\n", "a", &c, &err) < 0);
    free(err);
    config_free(&c);
    char longline[400];
    memset(longline, 'a', sizeof longline);
    memcpy(longline, "[server]\nhostname = ", 20);
    longline[sizeof longline - 1] = '\0';
    test_assert(config_load_string(longline, "l", &c, &err) < 0);
    test_assert(err && strstr(err, "l:2: line too long") != NULL);
    free(err);
    config_free(&c);
    test_assert(config_load_string("[server\nhostname = x\n", "s", &c, &err) < 0);
    test_assert(err && strstr(err, "s:1:") != NULL);
    free(err);
    config_free(&c);
    test_assert(config_load_string("[tls]\ncert = /x\n", "t", &c, &err) < 0);
    test_assert(err && strstr(err, "needs both cert and key") != NULL);
    free(err);
    config_free(&c);
    test_assert(config_load_string("[listeners]\nsmtp = 127.0.0.1:25\nsubmission = 127.0.0.1:25\n", "d", &c, &err) < 0);
    test_assert(err && strstr(err, "two listeners") != NULL);
    free(err);
    config_free(&c);
    test_end();
}

static void test_hostport(void)
{
    test_begin("config_parse_hostport: v4, v6, bad ports");
    char h[64];
    int port;
    test_assert(config_parse_hostport("1.2.3.4:25", h, sizeof h, &port) == 0 && port == 25 &&
                strcmp(h, "1.2.3.4") == 0);
    test_assert(config_parse_hostport("[::1]:65535", h, sizeof h, &port) == 0 && port == 65535 &&
                strcmp(h, "::1") == 0);
    test_assert(config_parse_hostport("1.2.3.4:65536", h, sizeof h, &port) < 0);
    test_assert(config_parse_hostport("1.2.3.4:0", h, sizeof h, &port) < 0);
    test_assert(config_parse_hostport("::1:25", h, sizeof h, &port) < 0);
    test_assert(config_parse_hostport("1.2.3.4", h, sizeof h, &port) < 0);
    test_assert(config_parse_hostport("[::1]25", h, sizeof h, &port) < 0);
    test_assert(config_parse_hostport("h:2x", h, sizeof h, &port) < 0);
    test_end();
}

struct wjob {
    int worked, done;
    struct loop *loop;
};

static void wwork(void *arg) { ((struct wjob *)arg)->worked = 1; }
static void wdone(void *arg)
{
    struct wjob *j = arg;
    test_assert(j->worked == 1);
    j->done = 1;
}

static void test_worker_roundtrip(void)
{
    test_begin("worker: 200 jobs run on the pool and complete on the loop");
    struct loop *l = loop_new();
    struct worker_pool *p = worker_pool_new(4);
    struct wjob jobs[200];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 200; i++)
        worker_submit(p, l, wwork, wdone, &jobs[i]);
    for (int tries = 0; loop_pending_jobs(l) > 0 && tries < 1000; tries++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(loop_base(l), &tv);
        event_base_dispatch(loop_base(l));
    }
    int done = 0;
    for (int i = 0; i < 200; i++)
        done += jobs[i].done;
    test_assert(done == 200);
    test_assert(loop_pending_jobs(l) == 0);
    worker_pool_free(&p);
    loop_free(&l);
    test_assert(p == NULL && l == NULL);
    test_end();
}

struct post_ctx {
    struct loop *loop;
    pthread_t loop_thread;
    int ran_on_loop_thread;
};

static void posted(void *arg)
{
    struct post_ctx *pc = arg;
    pc->ran_on_loop_thread = pthread_equal(pthread_self(), pc->loop_thread);
    event_base_loopexit(loop_base(pc->loop), NULL);
}

static void *poster(void *arg)
{
    struct post_ctx *pc = arg;
    loop_post(pc->loop, posted, pc);
    return NULL;
}

static void test_loop_post(void)
{
    test_begin("loop_post: work posted from another thread runs on the loop's thread");
    struct post_ctx pc = {.loop = loop_new(), .loop_thread = pthread_self()};
    pthread_t t;
    test_assert(pthread_create(&t, NULL, poster, &pc) == 0);
    struct timeval limit = {5, 0};
    event_base_loopexit(loop_base(pc.loop), &limit);
    event_base_loop(loop_base(pc.loop), EVLOOP_NO_EXIT_ON_EMPTY);
    pthread_join(t, NULL);
    test_assert(pc.ran_on_loop_thread == 1);
    test_assert(loop_pending_jobs(pc.loop) == 0);
    int slotval = 7;
    loop_set_slot(pc.loop, LOOP_SLOT_SMTP, &slotval);
    test_assert(loop_get_slot(pc.loop, LOOP_SLOT_SMTP) == &slotval);
    loop_free(&pc.loop);
    test_end();
}

int main(void)
{
    log_set_stderr(0);
    return test_run((test_fn[]){test_buf_limits, test_buf_prepend, test_log_q, test_config_good, test_config_defaults,
                                test_config_errors, test_config_limits, test_hostport,
                                test_worker_roundtrip, test_loop_post, NULL});
}
