/* test_sched: the queue's scheduler (src/queue/queue.c) driven for real
 * (event loop, worker pool, spool, state files, local delivery of the DSNs)
 * against a fake outbound transport defined here: remote_start/stop/deliver
 * answer from a script per recipient address (deliver, 451, 550, connection
 * refused, or "hang" until released), so this binary never links the real
 * remote.c. Durations are shrunk with the policy's unit. */
#include "queue/dsn.h"
#include "queue/qctl.h"
#include "queue/queue.h"
#include "queue/rcptstate.h"
#include "queue/remote.h"
#include "queue/schedule.h"
#include "queue/spool.h"
#include "auth/directory.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "store/store.h"
#include "test.h"
#include "test_loop.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void ts_sched_tests(void);

#define SENDER "alice@example.test"
#define MAX_CALLS 256

/* ---- the fake transport ---- */

struct call {
    char domain[64];
    int nrcpt;
    char rcpts[8][64];
    int64_t t_ms;
};

struct fake_pending {
    struct fake_pending *next;
    struct event *ev;
    const struct spool_msg *msg;
    int n;
    int idx[256];
    remote_done_fn done;
    void *arg;
    int hung;
};

static struct loop *fake_loop;
static struct fake_pending *fake_list;
static struct call calls[MAX_CALLS];
static int ncalls;
static int outstanding, max_outstanding;
static int hang_all;          /* answers wait for fake_release() */

static void fake_reset(void)
{
    ncalls = 0;
    outstanding = max_outstanding = 0;
    hang_all = 0;
}

/* The scripted answer for one address: by its local part. */
static void script(const char *addr, struct remote_result *r)
{
    r->code = 0;
    r->enhanced[0] = '\0';
    r->remote_host = xstrdup("mx.fake.test [192.0.2.25]");
    if (strncmp(addr, "ok", 2) == 0) {
        r->outcome = RCPT_DELIVERED;
        r->code = 250;
        snprintf(r->enhanced, sizeof r->enhanced, "2.0.0");
        r->reply = xstrdup("250 2.0.0 OK");
    } else if (strncmp(addr, "bad", 3) == 0) {
        r->outcome = RCPT_FAILED;
        r->code = 550;
        snprintf(r->enhanced, sizeof r->enhanced, "5.1.1");
        r->reply = xstrdup("550 5.1.1 The email account that you tried to reach does not exist");
    } else if (strncmp(addr, "refused", 7) == 0) {
        r->outcome = RCPT_DEFERRED;
        free(r->remote_host);
        r->remote_host = NULL;
        r->reply = xstrdup("connection refused by mx.fake.test [192.0.2.25]");
    } else {
        r->outcome = RCPT_DEFERRED;
        r->code = 451;
        snprintf(r->enhanced, sizeof r->enhanced, "4.7.1");
        r->reply = xstrdup("451 4.7.1 Try again later");
    }
}

static void fake_answer(struct fake_pending *p)
{
    struct fake_pending **pp = &fake_list;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    struct remote_result *res = xcalloc((size_t)p->n + 1, sizeof *res);
    for (int i = 0; i < p->n; i++) {
        res[i].idx = p->idx[i];
        script(p->msg->rcpts[p->idx[i]].address, &res[i]);
    }
    outstanding--;
    remote_done_fn done = p->done;
    void *arg = p->arg;
    event_free(p->ev);
    int n = p->n;
    free(p);
    done(arg, res, n, NULL);
    for (int i = 0; i < n; i++) {
        free(res[i].reply);
        free(res[i].remote_host);
    }
    free(res);
}

static void fake_fire(evutil_socket_t fd, short what, void *arg)
{
    fake_answer(arg);
}

int remote_start(const struct config *cfg, struct loop *loop, const char **error_r)
{
    fake_loop = loop;
    return 0;
}

void remote_set_store(const char *data_dir, struct worker_pool *pool)
{
    (void)data_dir;   /* the fake keeps no MTA-STS cache */
    (void)pool;
}

void remote_hold_release(struct remote_hold *hold)
{
    (void)hold;   /* the fake hands out no connections */
}

void remote_stop(void)
{
    while (fake_list)
        fake_answer(fake_list);
}

void remote_deliver(const struct remote_attempt *a, remote_done_fn done, void *arg)
{
    struct fake_pending *p = xcalloc(1, sizeof *p);
    p->msg = a->msg;
    p->n = a->nrcpt < 256 ? a->nrcpt : 256;
    memcpy(p->idx, a->rcpts, sizeof p->idx[0] * (size_t)p->n);
    p->done = done;
    p->arg = arg;
    p->next = fake_list;
    fake_list = p;
    if (ncalls < MAX_CALLS) {
        struct call *c = &calls[ncalls++];
        snprintf(c->domain, sizeof c->domain, "%s", a->domain);
        c->nrcpt = a->nrcpt;
        for (int i = 0; i < a->nrcpt && i < 8; i++)
            snprintf(c->rcpts[i], sizeof c->rcpts[i], "%s", a->msg->rcpts[a->rcpts[i]].address);
        c->t_ms = rs_now_ms();
    }
    if (++outstanding > max_outstanding)
        max_outstanding = outstanding;
    p->ev = evtimer_new(loop_base(fake_loop), fake_fire, p);
    p->hung = hang_all;
    if (!hang_all) {
        static const struct timeval now = { 0, 0 };
        evtimer_add(p->ev, &now);
    }
}

static void fake_release(void)
{
    hang_all = 0;
    static const struct timeval now = { 0, 0 };
    for (struct fake_pending *p = fake_list; p; p = p->next)
        if (p->hung) {
            p->hung = 0;
            evtimer_add(p->ev, &now);
        }
}

static int calls_for(const char *addr)
{
    int n = 0;
    for (int i = 0; i < ncalls; i++)
        for (int k = 0; k < calls[i].nrcpt && k < 8; k++)
            n += strcmp(calls[i].rcpts[k], addr) == 0;
    return n;
}

/* ---- fixture ---- */

struct fx {
    const char *dir;
    struct loop *loop;
    struct worker_pool *pool;
};

static void policy(struct sched_policy *p, unsigned unit_ms, unsigned r0, unsigned r1,
                   unsigned r2, unsigned max_age, unsigned warn)
{
    sched_policy_default(p);
    p->unit_ms = unit_ms;
    p->retry[0] = r0;
    p->retry[1] = r1;
    p->retry[2] = r2;
    p->nretry = 3;
    p->max_age = max_age;
    p->delay_warning = warn;
}

static int fx_start(struct fx *f, const struct sched_policy *p, int fresh)
{
    if (fresh) {
        f->dir = test_tmpdir();
        const char *err = NULL;
        struct directory *d = dir_open(f->dir, &err);
        if (!d)
            return -1;
        dir_set_argon2_params(1, 8, 1);
        dir_domain_add(d, "example.test", &err);
        dir_account_add(d, SENDER, "pw-not-used-here", PLAN_FREE, &err);
        dir_close(&d);
    }
    char *logdir = xasprintf("%s/log", f->dir);
    log_open_dir(logdir);
    free(logdir);
    f->loop = loop_new();
    f->pool = worker_pool_new(2);
    queue_set_policy(p);
    const char *err = NULL;
    return queue_start(f->dir, f->pool, f->loop, &err);
}

static void fx_stop(struct fx *f)
{
    queue_stop();
    worker_pool_free(&f->pool);
    loop_free(&f->loop);
    log_close();
}

static int run_until(struct fx *f, int (*cond)(void *), void *arg, int timeout_ms)
{
    return test_run_until(f->loop, cond, arg, timeout_ms);
}

static int cond_never(void *arg)
{
    return 0;
}

static void run_for(struct fx *f, int ms)
{
    run_until(f, cond_never, NULL, ms);
}

static int inbox_count(const char *dir)
{
    return test_inbox_count(dir, SENDER);
}

static char *inbox_read(const char *dir, uint32_t uid)
{
    char *data = NULL;
    size_t len = 0;
    if (store_read(dir, SENDER, "INBOX", uid, &data, &len) != 0)
        return NULL;
    return data;
}

struct sub {
    int called, result;
    char id[SPOOL_ID_LEN + 1];
};

static void on_done(void *arg, int result, const char *msg_id, const char *error)
{
    struct sub *s = arg;
    s->called = 1;
    s->result = result;
    snprintf(s->id, sizeof s->id, "%s", msg_id);
}

static int cond_called(void *arg)
{
    return ((struct sub *)arg)->called;
}

/* Submits a message from SENDER_ADDR to the NULL-terminated RCPTS (all
 * remote) and waits for the 250. */
static void submit(struct fx *f, const char *sender, const char *const *rcpts, struct sub *s)
{
    static const char body[] = "From: Alice <alice@example.test>\r\nTo: someone\r\n"
                               "Subject: sched test\r\nMessage-ID: <t1@example.test>\r\n\r\n"
                               "hello\r\n";
    struct spool_msg *m = xcalloc(1, sizeof *m);
    m->sender = xstrdup(sender);
    m->client = xstrdup("192.0.2.1");
    m->protocol = xstrdup("ESMTPSA");
    m->data = xstrdup(body);
    m->len = sizeof body - 1;
    for (int i = 0; rcpts[i]; i++) {
        m->rcpts = xrealloc(m->rcpts, sizeof *m->rcpts * (size_t)(m->nrcpt + 1));
        m->rcpts[m->nrcpt].address = xstrdup(rcpts[i]);
        m->rcpts[m->nrcpt].account = NULL;
        m->rcpts[m->nrcpt].done = 0;
        m->nrcpt++;
    }
    memset(s, 0, sizeof *s);
    queue_submit(m, f->loop, on_done, s);
    test_assert(run_until(f, cond_called, s, 5000));
    test_assert(s->result == 0);
}

struct gone_arg {
    struct fx *f;
    const char *id;
};

static int cond_gone(void *arg)
{
    struct gone_arg *g = arg;
    return !test_queue_file_exists(g->f->dir, g->id);
}

static int wait_gone(struct fx *f, const char *id, int ms)
{
    struct gone_arg g = { f, id };
    return run_until(f, cond_gone, &g, ms);
}

struct inbox_arg {
    const char *dir;
    int n;
};

static int cond_inbox(void *arg)
{
    struct inbox_arg *a = arg;
    return inbox_count(a->dir) >= a->n;
}

static int wait_inbox(struct fx *f, int n, int ms)
{
    struct inbox_arg a = { f->dir, n };
    return run_until(f, cond_inbox, &a, ms);
}

struct calls_arg {
    const char *addr;
    int n;
};

static int cond_calls(void *arg)
{
    struct calls_arg *a = arg;
    return calls_for(a->addr) >= a->n;
}

static int wait_calls(struct fx *f, const char *addr, int n, int ms)
{
    struct calls_arg a = { addr, n };
    return run_until(f, cond_calls, &a, ms);
}

struct log_arg {
    const char *dir, *needle, *id;
    int n;
};

static int cond_log(void *arg)
{
    struct log_arg *a = arg;
    return test_log_count(a->dir, a->needle, a->id) >= a->n;
}

/* Waits until the log has N lines with NEEDLE and ID; then exactly N? */
static int wait_log(struct fx *f, const char *needle, const char *id, int n, int ms)
{
    struct log_arg a = { f->dir, needle, id, n };
    return run_until(f, cond_log, &a, ms) && test_log_count(f->dir, needle, id) == n;
}

/* ---- tests ---- */

static void test_outcomes_and_dsn(void)
{
    test_begin("sched: one attempt per domain, per-recipient outcomes, DSN for the 550 only");
    fake_reset();
    struct sched_policy p;
    policy(&p, 1000, 300, 600, 1200, 5 * 86400, 4 * 3600);
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    static const char *const rcpts[] = { "ok1@a.test", "bad1@a.test", "later@b.test",
                                         "ok2@A.test", NULL };
    struct sub s;
    submit(&f, SENDER, rcpts, &s);
    test_assert(wait_inbox(&f, 1, 5000));
    run_for(&f, 100);
    /* a.test once with its three recipients, b.test once */
    test_assert(ncalls == 2);
    int a = strcmp(calls[0].domain, "a.test") == 0 ? 0 : 1;
    test_assert_streq(calls[a].domain, "a.test");
    test_assert(calls[a].nrcpt == 3);
    test_assert_streq(calls[1 - a].domain, "b.test");
    test_assert(calls[1 - a].nrcpt == 1);
    test_assert(test_queue_file_exists(f.dir, s.id));   /* later@b.test waits */
    test_assert(test_log_count(f.dir, "event=dsn-queued", s.id) == 1);
    test_assert(test_log_count(f.dir, "kind=failed rcpts=1", s.id) == 1);
    test_assert(test_log_count(f.dir, "event=bounced", s.id) == 1);
    test_assert(test_log_count(f.dir, "event=retry-scheduled", s.id) == 1);
    char *dsn = inbox_read(f.dir, 1);
    test_assert(dsn != NULL);
    if (dsn) {
        test_assert(strstr(dsn, "multipart/report; report-type=delivery-status") != NULL);
        test_assert(strstr(dsn, "From: Mail Delivery System <MAILER-DAEMON@") != NULL);
        test_assert(strstr(dsn, "Final-Recipient: rfc822; bad1@a.test\r\n") != NULL);
        test_assert(strstr(dsn, "Action: failed\r\nStatus: 5.1.1\r\n") != NULL);
        test_assert(strstr(dsn, "Remote-MTA: dns; mx.fake.test\r\n") != NULL);
        test_assert(strstr(dsn, "Diagnostic-Code: smtp; 550 5.1.1") != NULL);
        test_assert(strstr(dsn, "ok1@a.test") == NULL && strstr(dsn, "later@b.test") == NULL);
        test_assert(strstr(dsn, "Subject: sched test\r\n") != NULL);   /* original header */
        test_assert(strstr(dsn, "\r\nhello\r\n") == NULL);              /* not its body */
    }
    free(dsn);
    /* the state file says it all, and survives */
    struct rs_msg *st = NULL;
    char *qdir = xasprintf("%s/queue", f.dir);
    test_assert(rs_load(qdir, s.id, 4, &st) == 0);
    test_assert(st->r[0].state == RS_DELIVERED && st->r[3].state == RS_DELIVERED);
    test_assert(st->r[1].state == RS_FAILED && st->r[1].last.code == 550);
    test_assert(st->r[2].state == RS_PENDING && st->r[2].attempts == 1);
    test_assert(st->r[2].next_ms > rs_now_ms() + 250 * 1000);
    rs_free(&st);
    free(qdir);
    fx_stop(&f);
    test_end();
}

static void test_backoff(void)
{
    test_begin("sched: retries with growing back-off (shrunk unit)");
    fake_reset();
    struct sched_policy p;
    policy(&p, 20, 5, 10, 20, 100000, 0);   /* 100 ms, 200 ms, then 400 ms */
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    static const char *const rcpts[] = { "slow@c.test", NULL };
    struct sub s;
    submit(&f, SENDER, rcpts, &s);
    test_assert(wait_calls(&f, "slow@c.test", 5, 5000));
    test_assert(ncalls >= 5);
    int64_t g1 = calls[1].t_ms - calls[0].t_ms, g2 = calls[2].t_ms - calls[1].t_ms,
            g3 = calls[3].t_ms - calls[2].t_ms, g4 = calls[4].t_ms - calls[3].t_ms;
    test_assert(g1 >= 95 && g1 < 1000);
    test_assert(g2 >= 195 && g2 < 1200);
    test_assert(g3 >= 395 && g3 < 1500);
    test_assert(g4 >= 395 && g4 < 1500);   /* the last step repeats */
    test_assert(test_log_count(f.dir, "event=retry-scheduled", s.id) >= 4);
    test_assert(test_log_count(f.dir, "event=dsn-queued", s.id) == 0);
    fx_stop(&f);
    test_end();
}

static int cond_dsn2(void *arg)
{
    struct fx *f = arg;
    return inbox_count(f->dir) >= 2;
}

static void test_delayed_then_bounce(void)
{
    test_begin("sched: an always-deferred destination: one delayed DSN, then the bounce");
    fake_reset();
    struct sched_policy p;
    policy(&p, 50, 2, 2, 2, 24, 6);   /* retry 100 ms, warn at 300 ms, give up at 1.2 s */
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    static const char *const rcpts[] = { "refused@d.test", NULL };
    struct sub s;
    submit(&f, SENDER, rcpts, &s);
    test_assert(run_until(&f, cond_dsn2, &f, 8000));
    test_assert(wait_gone(&f, s.id, 3000));
    test_assert(test_log_count(f.dir, "kind=delayed", s.id) == 1);
    test_assert(test_log_count(f.dir, "kind=failed", s.id) == 1);
    test_assert(test_log_count(f.dir, "reason=expired", s.id) == 1);
    char *d1 = inbox_read(f.dir, 1), *d2 = inbox_read(f.dir, 2);
    test_assert(d1 && d2);
    if (d1 && d2) {
        test_assert(strstr(d1, "Action: delayed\r\n") != NULL);
        test_assert(strstr(d1, "Will-Retry-Until: ") != NULL);
        test_assert(strstr(d1, "not been delivered yet") != NULL);
        test_assert(strstr(d2, "Action: failed\r\nStatus: 5.4.7\r\n") != NULL);
        test_assert(strstr(d2, "X-Roost; connection refused") != NULL);
        test_assert(strstr(d2, "gave up") != NULL);
    }
    free(d1);
    free(d2);
    fx_stop(&f);
    test_end();
}

static void test_null_sender(void)
{
    test_begin("sched: no DSN for the null sender (a bounce that bounces)");
    fake_reset();
    struct sched_policy p;
    policy(&p, 1000, 300, 600, 1200, 5 * 86400, 4 * 3600);
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    static const char *const rcpts[] = { "bad@e.test", NULL };
    struct sub s;
    submit(&f, "", rcpts, &s);
    test_assert(wait_gone(&f, s.id, 5000));
    run_for(&f, 100);
    test_assert(test_log_count(f.dir, "event=bounced", s.id) == 1);
    test_assert(test_log_count(f.dir, "event=dsn-suppressed", s.id) == 1);
    test_assert(test_log_count(f.dir, "event=dsn-queued", NULL) == 0);
    test_assert(inbox_count(f.dir) == 0);
    fx_stop(&f);
    test_end();
}

static void test_restart_resumes(void)
{
    test_begin("sched: the schedule survives a restart (not due waits, due goes)");
    fake_reset();
    struct sched_policy p;
    policy(&p, 100, 10, 10, 10, 100000, 0);   /* next attempt 1 s later */
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    static const char *const rcpts[] = { "wait@f.test", NULL };
    struct sub s;
    submit(&f, SENDER, rcpts, &s);
    test_assert(wait_calls(&f, "wait@f.test", 1, 3000));
    run_for(&f, 50);
    fx_stop(&f);
    int64_t stopped = rs_now_ms();

    test_assert(fx_start(&f, &p, 0) == 0);
    run_for(&f, 300);
    test_assert(calls_for("wait@f.test") == 1);   /* not due yet */
    test_assert(wait_calls(&f, "wait@f.test", 2, 3000));
    test_assert(calls[ncalls - 1].t_ms - stopped >= 500);
    fx_stop(&f);

    /* stopped past its time: due at once on start */
    usleep(1100 * 1000);
    test_assert(fx_start(&f, &p, 0) == 0);
    int64_t started = rs_now_ms();
    test_assert(wait_calls(&f, "wait@f.test", 3, 3000));
    test_assert(calls[ncalls - 1].t_ms - started < 500);
    fx_stop(&f);
    test_end();
}

static void test_control(void)
{
    test_begin("sched: hold, retry while held, release, retry, delete, bounce (roost queue)");
    fake_reset();
    struct sched_policy p;
    policy(&p, 1000, 3600, 3600, 3600, 5 * 86400, 0);   /* no retry during the test */
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    static const char *const rcpts[] = { "hold@g.test", NULL };
    struct sub s;
    submit(&f, SENDER, rcpts, &s);
    test_assert(wait_calls(&f, "hold@g.test", 1, 3000));
    const char *err = NULL;

    test_assert(qctl_request(f.dir, s.id, QCTL_HOLD, &err) == 0);
    run_for(&f, 200);
    test_assert(test_log_count(f.dir, "event=held", s.id) == 1);
    test_assert(qctl_request(f.dir, s.id, QCTL_RETRY, &err) == 0);
    run_for(&f, 300);
    test_assert(calls_for("hold@g.test") == 1);   /* held: no attempt */
    test_assert(qctl_request(f.dir, s.id, QCTL_RELEASE, &err) == 0);
    test_assert(wait_calls(&f, "hold@g.test", 2, 3000));
    test_assert(test_log_count(f.dir, "event=released", s.id) == 1);
    run_for(&f, 100);
    test_assert(qctl_request(f.dir, s.id, QCTL_RETRY, &err) == 0);
    test_assert(wait_calls(&f, "hold@g.test", 3, 3000));
    test_assert(test_log_count(f.dir, "event=retry-requested", s.id) == 2);
    run_for(&f, 100);

    test_assert(qctl_request(f.dir, s.id, QCTL_DELETE, &err) == 0);
    test_assert(wait_gone(&f, s.id, 3000));
    test_assert(wait_log(&f, "event=deleted", s.id, 1, 3000));
    test_assert(test_log_count(f.dir, "event=dsn-queued", s.id) == 0);
    test_assert(qctl_request(f.dir, s.id, QCTL_HOLD, &err) == 1);   /* gone */

    struct sub b;
    static const char *const rcpts2[] = { "bounce@g.test", NULL };
    submit(&f, SENDER, rcpts2, &b);
    test_assert(wait_calls(&f, "bounce@g.test", 1, 3000));
    run_for(&f, 100);
    test_assert(qctl_request(f.dir, b.id, QCTL_BOUNCE, &err) == 0);
    test_assert(wait_gone(&f, b.id, 3000));
    test_assert(wait_inbox(&f, 1, 3000));
    test_assert(test_log_count(f.dir, "kind=failed rcpts=1", b.id) == 1);
    char *dsn = inbox_read(f.dir, 1);
    test_assert(dsn && strstr(dsn, "Final-Recipient: rfc822; bounce@g.test") != NULL);
    test_assert(dsn && strstr(dsn, "451 4.7.1 Try again later") != NULL);   /* last reply */
    free(dsn);
    test_assert(qctl_request(f.dir, "not-an-id", QCTL_HOLD, &err) == -1);
    fx_stop(&f);
    test_end();
}

static void test_control_while_stopped(void)
{
    test_begin("sched: a request made while no server runs is honoured at start");
    fake_reset();
    struct sched_policy p;
    policy(&p, 1000, 3600, 3600, 3600, 5 * 86400, 0);
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    static const char *const rcpts[] = { "x@h.test", NULL };
    struct sub s;
    submit(&f, SENDER, rcpts, &s);
    test_assert(wait_calls(&f, "x@h.test", 1, 3000));
    run_for(&f, 50);
    fx_stop(&f);
    test_assert(!qctl_server_running(f.dir));
    const char *err = NULL;
    test_assert(qctl_request(f.dir, s.id, QCTL_DELETE, &err) == 0);
    test_assert(fx_start(&f, &p, 0) == 0);
    test_assert(qctl_server_running(f.dir));
    test_assert(wait_gone(&f, s.id, 3000));
    test_assert(calls_for("x@h.test") == 1);
    test_assert(wait_log(&f, "event=deleted", s.id, 1, 3000));
    fx_stop(&f);
    test_end();
}

static void test_limits(void)
{
    test_begin("sched: outstanding attempts bounded in total and per domain");
    fake_reset();
    struct sched_policy p;
    policy(&p, 1000, 3600, 3600, 3600, 5 * 86400, 0);
    p.max_remote = 3;
    p.max_per_domain = 2;
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    hang_all = 1;
    static const char *const one[] = { "ok@same.test", NULL };
    static const char *const two[] = { "ok@other.test", NULL };
    static const char *const three[] = { "ok@third.test", NULL };
    struct sub s[7];
    for (int i = 0; i < 4; i++)
        submit(&f, SENDER, one, &s[i]);
    submit(&f, SENDER, two, &s[4]);
    submit(&f, SENDER, three, &s[5]);
    run_for(&f, 300);
    test_assert(outstanding == 3);
    int same = 0;
    for (int i = 0; i < ncalls; i++)
        same += strcmp(calls[i].domain, "same.test") == 0;
    test_assert(same == 2);
    fake_release();
    for (int i = 0; i < 6; i++)
        test_assert(wait_gone(&f, s[i].id, 5000));
    test_assert(max_outstanding <= 3);
    test_assert(ncalls == 6);
    fx_stop(&f);
    test_end();
}

static void test_local_only_no_state(void)
{
    test_begin("sched: local recipients delivered at once leave no state file behind");
    fake_reset();
    struct sched_policy p;
    policy(&p, 1000, 300, 600, 1200, 5 * 86400, 4 * 3600);
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    struct spool_msg *m = xcalloc(1, sizeof *m);
    m->sender = xstrdup("someone@remote.test");
    m->data = xstrdup("Subject: local\r\n\r\nx\r\n");
    m->len = strlen(m->data);
    m->nrcpt = 1;
    m->rcpts = xcalloc(1, sizeof *m->rcpts);
    m->rcpts[0].address = xstrdup(SENDER);
    m->rcpts[0].account = xstrdup(SENDER);
    struct sub s = { 0 };
    queue_submit(m, f.loop, on_done, &s);
    test_assert(run_until(&f, cond_called, &s, 5000) && s.result == 0);
    test_assert(wait_gone(&f, s.id, 5000));
    test_assert(wait_inbox(&f, 1, 5000));
    char *state = xasprintf("%s/queue/%s.state", f.dir, s.id);
    struct stat st;
    test_assert(stat(state, &st) < 0);   /* never written (removal would not unlink it) */
    free(state);
    test_assert(ncalls == 0);
    fx_stop(&f);
    test_end();
}

static void test_many_failures(void)
{
    test_begin("sched: 120 recipients failing together: notices of at most 50 each");
    fake_reset();
    struct sched_policy p;
    policy(&p, 1000, 300, 600, 1200, 5 * 86400, 4 * 3600);
    struct fx f;
    test_assert(fx_start(&f, &p, 1) == 0);
    static char addrs[120][32];
    static const char *rcpts[121];
    for (int i = 0; i < 120; i++) {
        snprintf(addrs[i], sizeof addrs[i], "bad%d@z.test", i);
        rcpts[i] = addrs[i];
    }
    rcpts[120] = NULL;
    struct sub s;
    submit(&f, SENDER, rcpts, &s);
    test_assert(wait_gone(&f, s.id, 10000));
    test_assert(wait_inbox(&f, 3, 10000));
    test_assert(ncalls == 1 && calls[0].nrcpt == 120);
    test_assert(test_log_count(f.dir, "kind=failed rcpts=50", s.id) == 2);
    test_assert(test_log_count(f.dir, "kind=failed rcpts=20", s.id) == 1);
    test_assert(test_log_count(f.dir, "event=bounced", s.id) == 120);
    /* The three notices are queued side by side: their INBOX order is not
     * fixed. Together they name every recipient exactly once. */
    int named = 0, has_last = 0;
    for (uint32_t uid = 1; uid <= 3; uid++) {
        char *dsn = inbox_read(f.dir, uid);
        test_assert(dsn != NULL);
        for (const char *cur = dsn; dsn && (cur = strstr(cur, "Final-Recipient: rfc822; ")); cur++)
            named++;
        if (dsn && strstr(dsn, "Final-Recipient: rfc822; bad119@z.test\r\n"))
            has_last++;
        free(dsn);
    }
    test_assert(named == 120 && has_last == 1);
    fx_stop(&f);
    test_end();
}

void ts_sched_tests(void)
{
    test_many_failures();
    test_local_only_no_state();
    test_outcomes_and_dsn();
    test_backoff();
    test_delayed_then_bounce();
    test_null_sender();
    test_restart_resumes();
    test_control();
    test_control_while_stopped();
    test_limits();
}
