/* test_queue: the queue scheduler (src/queue/queue.c) with a real event
 * loop and worker pool: submit and local delivery, remote recipients that
 * stay queued, resume at start, no duplicate after a crash between delivery
 * and the done mark, retries, corrupt files at resume. Also holds the
 * helpers shared with test_spool.c and the test program's main. */
#include "core/config.h"
#include "queue/queue.h"
#include "queue/spool.h"
#include "store/store.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "test.h"
#include "test_loop.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct spool_msg *tq_make_msg(const char *sender, const char *data, size_t len);
void tq_add_rcpt(struct spool_msg *m, const char *address, const char *account);
void tq_spool_tests(void);
void tq_journal_tests(void);

#define ALICE "alice@example.test"

struct spool_msg *tq_make_msg(const char *sender, const char *data, size_t len)
{
    struct spool_msg *m = xcalloc(1, sizeof *m);
    m->sender = xstrdup(sender);
    m->arrived = time(NULL);   /* now: the queue gives up on messages older than max_age */
    m->client = xstrdup("192.0.2.1");
    m->helo = xstrdup("client.example.test");
    m->protocol = xstrdup("ESMTPSA");
    m->data = xmalloc(len + 1);
    memcpy(m->data, data, len);
    m->data[len] = '\0';
    m->len = len;
    return m;
}

void tq_add_rcpt(struct spool_msg *m, const char *address, const char *account)
{
    m->rcpts = xrealloc(m->rcpts, xmul((size_t)m->nrcpt + 1, sizeof *m->rcpts));
    struct spool_rcpt *r = &m->rcpts[m->nrcpt++];
    r->address = xstrdup(address);
    r->account = account ? xstrdup(account) : NULL;
    r->done = 0;
}

/* ---- fixtures ---- */

struct fixture {
    const char *dir;
    struct loop *loop;
    struct worker_pool *pool;
};

static int fixture_start(struct fixture *f)
{
    f->dir = test_tmpdir();
    char *logdir = xasprintf("%s/log", f->dir);
    log_open_dir(logdir);
    free(logdir);
    f->loop = loop_new();
    f->pool = worker_pool_new(2);
    /* No outbound transport: remote recipients wait in the queue (and no
     * DNS query leaves the machine). */
    static struct config cfg;
    static int cfg_ready;
    if (!cfg_ready) {
        config_defaults(&cfg, 1);
        cfg.outbound.enabled = 0;
        cfg_ready = 1;
    }
    queue_set_config(&cfg);
    const char *err = NULL;
    return queue_start(f->dir, f->pool, f->loop, &err);
}

static void fixture_stop(struct fixture *f)
{
    queue_stop();
    worker_pool_free(&f->pool);
    loop_free(&f->loop);
    log_close();
}

struct submit_result {
    int called, result;
    char id[64];
    char error[128];
};

static void on_done(void *arg, int result, const char *msg_id, const char *error)
{
    struct submit_result *r = arg;
    r->called++;
    r->result = result;
    snprintf(r->id, sizeof r->id, "%s", msg_id ? msg_id : "");
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
}

static int cond_submitted_and_idle(void *arg)
{
    struct submit_result *r = arg;
    return r->called && queue_inflight() == 0;
}

static int cond_idle(void *arg)
{
    (void)arg;
    return queue_inflight() == 0;
}

/* ---- tests ---- */

static void test_submit_local(void)
{
    test_begin("queue: submit, done callback, local delivery, file removed");
    struct fixture f;
    test_assert(fixture_start(&f) == 0);
    static const char body[] = "Subject: t\r\n\r\nhello\r\n";
    struct spool_msg *m = tq_make_msg("s@remote.test", body, sizeof body - 1);
    tq_add_rcpt(m, ALICE, ALICE);
    tq_add_rcpt(m, "Alice+tag@example.test", ALICE);   /* same account twice: one copy */
    struct submit_result r = { 0 };
    queue_submit(m, f.loop, on_done, &r);
    test_assert(r.called == 0);   /* never called from inside queue_submit */
    test_assert(test_run_until(f.loop, cond_submitted_and_idle, &r, 10000));
    test_assert(r.called == 1 && r.result == 0);
    test_assert(spool_id_valid(r.id));
    test_assert(!test_queue_file_exists(f.dir, r.id));
    test_assert(test_inbox_count(f.dir, ALICE) == 1);
    char *data = NULL;
    size_t len = 0;
    test_assert(store_read(f.dir, ALICE, "INBOX", 1, &data, &len) == 0);
    /* final delivery puts the envelope sender on top (RFC 5321 4.4) */
    static const char stored[] = "Return-Path: <s@remote.test>\r\nSubject: t\r\n\r\nhello\r\n";
    test_assert_memeq(data, len, stored, sizeof stored - 1);
    free(data);
    struct queue_stats st;
    queue_get_stats(&st);
    test_assert(st.accepted == 1 && st.delivered_local == 1 && st.failed == 0);
    test_assert(test_log_count(f.dir, "event=accepted", r.id) == 1);
    test_assert(test_log_count(f.dir, "event=delivered", r.id) == 1);
    test_assert(test_log_count(f.dir, "event=duplicate-skipped", r.id) == 1);
    test_assert(test_log_count(f.dir, "event=removed", r.id) == 1);
    fixture_stop(&f);
    test_end();
}

static void test_many_submits(void)
{
    test_begin("queue: 50 submissions, all delivered once");
    struct fixture f;
    test_assert(fixture_start(&f) == 0);
    enum { N = 50 };
    struct submit_result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "Subject: %d\r\n\r\nx\r\n", i);
        struct spool_msg *m = tq_make_msg("s@remote.test", body, (size_t)n);
        tq_add_rcpt(m, ALICE, ALICE);
        queue_submit(m, f.loop, on_done, &r[i]);
    }
    test_assert(test_run_until(f.loop, cond_submitted_and_idle, &r[N - 1], 20000));
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += r[i].called == 1 && r[i].result == 0;
    test_assert(ok == N);
    test_assert(test_inbox_count(f.dir, ALICE) == N);
    fixture_stop(&f);
    test_end();
}

static int cond_remote_pending(void *arg)
{
    struct submit_result *r = arg;
    struct queue_stats st;
    queue_get_stats(&st);
    return r->called && st.pending_remote == 1 && st.delivered_local == 1;
}

static void test_remote_stays_queued(void)
{
    test_begin("queue: remote recipients stay queued, local ones are done");
    struct fixture f;
    test_assert(fixture_start(&f) == 0);
    struct spool_msg *m = tq_make_msg("s@example.test", "x\r\n", 3);
    tq_add_rcpt(m, "bob@remote.test", NULL);
    tq_add_rcpt(m, ALICE, ALICE);
    struct submit_result r = { 0 };
    queue_submit(m, f.loop, on_done, &r);
    test_assert(test_run_until(f.loop, cond_remote_pending, &r, 10000));
    test_assert(r.result == 0);
    test_assert(test_queue_file_exists(f.dir, r.id));
    test_assert(queue_inflight() == 1);
    test_assert(test_inbox_count(f.dir, ALICE) == 1);
    test_assert(test_log_count(f.dir, "event=queued-remote", r.id) == 1);
    fixture_stop(&f);

    /* after a restart: the local one is marked done, the remote one waits */
    struct spool_msg *l = NULL;
    const char *err;
    struct spool *s = spool_open(f.dir, &err);
    test_assert(s && spool_load(s, r.id, &l) == 0);
    if (l)
        test_assert(l->rcpts[0].done == 0 && l->rcpts[1].done == 1);
    spool_msg_free(&l);
    spool_close(&s);
    test_end();
}

static void test_resume(void)
{
    test_begin("queue: messages found at start are delivered");
    const char *dir = test_tmpdir();
    const char *err;
    struct spool *s = spool_open(dir, &err);
    char ids[3][SPOOL_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        struct spool_msg *m = tq_make_msg("s@remote.test", "resumed\r\n", 9);
        tq_add_rcpt(m, ALICE, ALICE);
        spool_new_id(m->id);
        memcpy(ids[i], m->id, sizeof ids[i]);
        test_assert(spool_commit(s, m, &err) == 0);
        spool_msg_free(&m);
    }
    spool_close(&s);

    struct fixture f;
    test_assert(fixture_start(&f) == 0);
    test_assert(queue_inflight() == 3);
    test_assert(test_run_until(f.loop, cond_idle, NULL, 10000));
    test_assert(test_inbox_count(dir, ALICE) == 3);
    for (int i = 0; i < 3; i++)
        test_assert(!test_queue_file_exists(dir, ids[i]));
    struct queue_stats st;
    queue_get_stats(&st);
    test_assert(st.delivered_local == 3);
    fixture_stop(&f);
    test_end();
}

static void test_resume_no_duplicate(void)
{
    test_begin("queue: crash after store, before done mark -> no duplicate");
    const char *dir = test_tmpdir();
    const char *err;
    struct spool *s = spool_open(dir, &err);
    struct spool_msg *m = tq_make_msg("s@remote.test", "once\r\n", 6);
    tq_add_rcpt(m, ALICE, ALICE);
    tq_add_rcpt(m, "bob@example.test", "bob@example.test");
    spool_new_id(m->id);
    test_assert(spool_commit(s, m, &err) == 0);
    spool_close(&s);
    /* the crashed run had delivered to alice but not marked it done */
    uint32_t uid;
    int dup;
    test_assert(store_deliver(dir, ALICE, "INBOX", m->id, m->data, m->len, m->arrived, &uid,
                              &dup, &err) == 0);

    struct fixture f;
    test_assert(fixture_start(&f) == 0);
    test_assert(test_run_until(f.loop, cond_idle, NULL, 10000));
    test_assert(test_inbox_count(dir, ALICE) == 1);
    test_assert(test_inbox_count(dir, "bob@example.test") == 1);
    test_assert(!test_queue_file_exists(dir, m->id));
    test_assert(test_log_count(dir, "event=duplicate-skipped", m->id) == 1);
    test_assert(test_log_count(dir, "event=delivered", m->id) == 1);
    fixture_stop(&f);
    spool_msg_free(&m);
    test_end();
}

static int cond_failed_once(void *arg)
{
    (void)arg;
    struct queue_stats st;
    queue_get_stats(&st);
    return st.failed >= 1;
}

static void test_retry(void)
{
    test_begin("queue: a failed local delivery is retried");
    struct fixture f;
    queue_set_retry_unit_ms(10);   /* 50 ms, 150 ms, ... */
    test_assert(fixture_start(&f) == 0);
    /* make the account's store impossible to create */
    char *mail = xasprintf("%s/mail", f.dir);
    FILE *fp = fopen(mail, "w");
    test_assert(fp != NULL);
    if (fp)
        fclose(fp);
    struct spool_msg *m = tq_make_msg("s@remote.test", "retry\r\n", 7);
    tq_add_rcpt(m, ALICE, ALICE);
    struct submit_result r = { 0 };
    queue_submit(m, f.loop, on_done, &r);
    test_assert(test_run_until(f.loop, cond_failed_once, NULL, 10000));
    test_assert(r.result == 0);
    test_assert(queue_inflight() == 1);
    test_assert(test_queue_file_exists(f.dir, r.id));
    test_assert(unlink(mail) == 0);   /* the disk problem is fixed */
    test_assert(test_run_until(f.loop, cond_idle, NULL, 10000));
    test_assert(test_inbox_count(f.dir, ALICE) == 1);
    test_assert(!test_queue_file_exists(f.dir, r.id));
    test_assert(test_log_count(f.dir, "event=delivery-failed", r.id) >= 1);
    test_assert(test_log_count(f.dir, "event=retry-scheduled", r.id) >= 1);
    free(mail);
    fixture_stop(&f);
    queue_set_retry_unit_ms(1000);
    test_end();
}

static void test_corrupt_at_resume(void)
{
    test_begin("queue: a corrupt queue file at start goes to corrupt/");
    const char *dir = test_tmpdir();
    const char *err;
    struct spool *s = spool_open(dir, &err);
    char id[SPOOL_ID_LEN + 1];
    spool_new_id(id);
    spool_close(&s);
    char *path = xasprintf("%s/queue/%s", dir, id);
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs("ROOSTQ1\nE garbage", fp);
        fclose(fp);
    }
    struct fixture f;
    test_assert(fixture_start(&f) == 0);
    test_assert(test_run_until(f.loop, cond_idle, NULL, 10000));
    test_assert(!test_queue_file_exists(dir, id));
    char *moved = xasprintf("%s/queue/corrupt/%s", dir, id);
    struct stat st;
    test_assert(stat(moved, &st) == 0);
    fixture_stop(&f);
    free(moved);
    free(path);
    test_end();
}

static void test_not_running(void)
{
    test_begin("queue: submit without a running queue fails on the loop");
    struct loop *loop = loop_new();
    struct spool_msg *m = tq_make_msg("s@x.test", "x", 1);
    tq_add_rcpt(m, ALICE, ALICE);
    struct submit_result r = { 0 };
    queue_submit(m, loop, on_done, &r);
    test_assert(r.called == 0);
    event_base_loop(loop_base(loop), EVLOOP_ONCE | EVLOOP_NONBLOCK);
    test_assert(r.called == 1 && r.result == -1 && r.error[0]);
    test_assert(queue_inflight() == 0);
    struct queue_stats st;
    queue_get_stats(&st);
    test_assert(st.accepted == 0);
    loop_free(&loop);
    /* and a second start while running is refused */
    struct fixture f;
    test_assert(fixture_start(&f) == 0);
    const char *err = NULL;
    test_assert(queue_start(f.dir, f.pool, f.loop, &err) == -1 && err);
    fixture_stop(&f);
    test_end();
}

static void run_queue_tests(void)
{
    test_submit_local();
    test_many_submits();
    test_remote_stays_queued();
    test_resume();
    test_resume_no_duplicate();
    test_retry();
    test_corrupt_at_resume();
    test_not_running();
}

int main(void)
{
    log_set_stderr(0);
    return test_run((test_fn[]){ tq_spool_tests, tq_journal_tests, run_queue_tests, NULL });
}
