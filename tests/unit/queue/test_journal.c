/* Unit tests for the queue journal (src/queue/journal.c): group commit of
 * appends from a loop, replay after a restart, torn tails, segment removal
 * once every record is released. */
#include "queue/journal.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "test.h"
#include "test_loop.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NMSG 300

struct results {
    int done, ok;
    struct journal_seg *segs[NMSG];
};

static struct spool_msg *make_msg(int i)
{
    struct spool_msg *m = xcalloc(1, sizeof *m);
    spool_new_id(m->id);
    m->sender = xstrdup("a@example.org");
    m->arrived = 1700000000 + i;
    m->nrcpt = 1;
    m->rcpts = xcalloc(1, sizeof *m->rcpts);
    m->rcpts[0].address = xasprintf("u%d@example.com", i);
    m->rcpts[0].account = xasprintf("u%d@example.com", i);
    m->data = xasprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i);
    m->len = strlen(m->data);
    return m;
}

static void on_done(void *arg, int result, struct journal_seg *seg, const char *error)
{
    struct results *r = arg;
    if (result == 0)
        r->segs[r->ok++] = seg;
    r->done++;
}

static int all_done(void *arg)
{
    return ((struct results *)arg)->done == NMSG;
}

static int count_segments(const char *dir)
{
    char *p = xasprintf("%s/queue/journal", dir);
    DIR *d = opendir(p);
    free(p);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

struct replayed {
    int n;
    char ids[NMSG][SPOOL_ID_LEN + 1];
    struct journal_seg *segs[NMSG];
    int keep;
};

static int on_replay(struct spool_msg *m, struct journal_seg *seg, void *arg)
{
    struct replayed *r = arg;
    if (r->n < NMSG) {
        memcpy(r->ids[r->n], m->id, sizeof r->ids[0]);
        r->segs[r->n] = seg;
    }
    r->n++;
    spool_msg_free(&m);
    return r->keep;
}

/* Appends NMSG messages; their ids go to IDS. */
static void append_all(const char *dir, char ids[][SPOOL_ID_LEN + 1], struct results *res,
                       struct journal **jp, struct loop *l)
{
    const char *err = NULL;
    *jp = journal_open(dir, &err);
    test_assert(*jp != NULL);
    for (int i = 0; i < NMSG; i++) {
        struct spool_msg *m = make_msg(i);
        memcpy(ids[i], m->id, sizeof ids[0]);
        journal_append(*jp, m, l, on_done, res);
        spool_msg_free(&m);
    }
    test_assert(test_run_until(l, all_done, res, 10000));
    test_assert(res->ok == NMSG);
}

/* Reopens DIR's journal, replays it without keeping anything and closes it:
 * every segment is then removed. Returns the records replayed. */
static int replay_and_drop(const char *dir)
{
    static struct replayed rp;
    memset(&rp, 0, sizeof rp);
    const char *err = NULL;
    struct journal *j = journal_open(dir, &err);
    test_assert(j != NULL);
    if (!j)
        return -1;
    int n = journal_replay(j, on_replay, &rp);
    journal_close(&j);
    return n;
}

/* A fresh directory and loop, and a journal holding NMSG appended messages. */
static struct {
    const char *dir;
    struct loop *l;
    struct journal *j;
    struct results res;
    char ids[NMSG][SPOOL_ID_LEN + 1];
} fx;

static void fixture_fill(void)
{
    memset(&fx, 0, sizeof fx);
    fx.dir = test_tmpdir();
    fx.l = loop_new();
    append_all(fx.dir, fx.ids, &fx.res, &fx.j, fx.l);
}

static void test_group_commit_and_replay(void)
{
    test_begin("journal: appends are committed in groups and replayed in order");
    fixture_fill();
    const char *dir = fx.dir;
    struct loop *l = fx.l;
    struct journal *j = fx.j;
    unsigned long commits = 0, records = 0;
    journal_stats(j, &commits, &records);
    test_assert(records == NMSG);
    test_assert(commits >= 1 && commits <= NMSG);
    journal_close(&j);
    test_assert(count_segments(dir) == 1);

    static struct replayed rp;
    memset(&rp, 0, sizeof rp);
    rp.keep = 1;
    const char *err = NULL;
    j = journal_open(dir, &err);
    test_assert(journal_replay(j, on_replay, &rp) == NMSG);
    test_assert(rp.n == NMSG);
    for (int i = 0; i < NMSG && i < rp.n; i++)
        test_assert_streq(rp.ids[i], fx.ids[i]);
    /* released one by one: the segment goes with the last */
    for (int i = 0; i < NMSG; i++)
        journal_release(j, rp.segs[i]);
    journal_close(&j);
    test_assert(count_segments(dir) == 0);
    loop_free(&l);
    test_end();
}

static void test_torn_tail(void)
{
    test_begin("journal: a torn record at the end is ignored, the rest replayed");
    fixture_fill();
    const char *dir = fx.dir;
    struct loop *l = fx.l;
    struct journal *j = fx.j;
    journal_close(&j);
    /* a partial record, as a crash during an unacknowledged write leaves */
    char *seg = xasprintf("%s/queue/journal/%016x", dir, 1);
    int fd = open(seg, O_WRONLY | O_APPEND);
    test_assert(fd >= 0);
    static const char torn[] = "J\x40\x00\x00\x00" "0123456789";
    test_assert(write(fd, torn, sizeof torn - 1) == (ssize_t)(sizeof torn - 1));
    close(fd);
    test_assert(replay_and_drop(dir) == NMSG);
    /* nothing was kept: the segment is gone */
    test_assert(count_segments(dir) == 0);
    free(seg);
    loop_free(&l);
    test_end();
}

static void test_release_live(void)
{
    test_begin("journal: releasing every live record keeps the active segment until closed");
    fixture_fill();
    const char *dir = fx.dir;
    struct loop *l = fx.l;
    struct journal *j = fx.j;
    for (int i = 0; i < NMSG; i++)
        journal_release(j, fx.res.segs[i]);
    journal_close(&j);
    /* the active segment stays (small, open); a restart replays it and the
     * queue finds every message delivered already */
    test_assert(count_segments(dir) == 1);
    test_assert(replay_and_drop(dir) == NMSG);
    test_assert(count_segments(dir) == 0);
    loop_free(&l);
    test_end();
}

static void test_bad_message(void)
{
    test_begin("journal: a message that cannot be encoded is refused on the loop");
    const char *dir = test_tmpdir();
    struct loop *l = loop_new();
    const char *err = NULL;
    struct journal *j = journal_open(dir, &err);
    static struct results res;
    memset(&res, 0, sizeof res);
    struct spool_msg *m = make_msg(1);
    free(m->sender);
    m->sender = xstrdup("bad\r\nsender@example.org");
    journal_append(j, m, l, on_done, &res);
    test_assert(res.done == 0);   /* never inside the call */
    spool_msg_free(&m);
    for (int i = 0; i < 100 && res.done == 0; i++)
        event_base_loop(loop_base(l), EVLOOP_ONCE | EVLOOP_NONBLOCK);
    test_assert(res.done == 1 && res.ok == 0);
    journal_close(&j);
    loop_free(&l);
    test_end();
}

void tq_journal_tests(void);
void tq_journal_tests(void)
{
    test_group_commit_and_replay();
    test_torn_tail();
    test_release_live();
    test_bad_message();
}
