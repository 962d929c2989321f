/* test_forward: the pure parts of src/queue/forward.c (the derived queue id
 * of a forwarded copy, the loop rules on the header) and the SRS secret
 * file of src/queue/srs_key.c. Delivery itself is tested end to end in
 * tests/proto/test_forward.py; forward_deliver is also driven here on a
 * real spool, directory and store, with the crash-and-retry cases. */
#include "forward_tests.h"
#include "auth/directory.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "queue/forward.h"
#include "queue/spool.h"
#include "queue/srs_key.h"
#include "store/store.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void test_forward_id(void)
{
    test_begin("forward: the copy's queue id is derived, valid and distinct");
    char orig[SPOOL_ID_LEN + 1], a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1], c[SPOOL_ID_LEN + 1];
    spool_new_id(orig);
    forward_id(orig, 0, a);
    forward_id(orig, 0, b);
    forward_id(orig, 1, c);
    test_assert(spool_id_valid(a) && spool_id_valid(c));
    test_assert_streq(a, b);
    test_assert(strcmp(a, c) != 0 && strcmp(a, orig) != 0);
    test_assert(memcmp(a, orig, 11) == 0);   /* sorts with the original */
    char again[SPOOL_ID_LEN + 1];
    forward_id(a, 0, again);                 /* a forward of a forward */
    test_assert(spool_id_valid(again) && strcmp(again, a) != 0);
    test_end();
}

void test_forward_loop(void)
{
    test_begin("forward: loop rules on Delivered-To: and Received:");
    const char *why = NULL;
    const char *acct = "a@x.example", *tgt = "b@y.example";
    const char *plain = "Received: from z\r\nSubject: hi\r\n\r\nDelivered-To: a@x.example\r\n";
    test_assert(forward_is_loop(plain, strlen(plain), acct, tgt, NULL, &why) == 0);
    const char *self = "Delivered-To: <A@X.example>\r\nSubject: hi\r\n\r\nbody\r\n";
    test_assert(forward_is_loop(self, strlen(self), acct, tgt, NULL, &why) == 1);
    test_assert_streq(why, "delivered-to-self");
    const char *target = "delivered-to :  b@y.example \r\n\r\n";
    test_assert(forward_is_loop(target, strlen(target), acct, tgt, NULL, &why) == 1);
    test_assert_streq(why, "delivered-to-target");
    const char *other = "Delivered-To: c@x.example\nX-Delivered-To: a@x.example\n\n";
    test_assert(forward_is_loop(other, strlen(other), acct, tgt, NULL, &why) == 0);
    /* the target is an alias: the account behind it had it */
    const char *behind = "Delivered-To: bob@y.example\r\n\r\n";
    test_assert(forward_is_loop(behind, strlen(behind), acct, "alias@y.example", NULL, &why) == 0);
    test_assert(forward_is_loop(behind, strlen(behind), acct, "alias@y.example", "bob@y.example",
                                &why) == 1);
    test_assert_streq(why, "delivered-to-target");
    const char *prefix = "Delivered-To: a@x.example.evil\r\n\r\n";
    test_assert(forward_is_loop(prefix, strlen(prefix), acct, tgt, NULL, &why) == 0);

    char *many = xmalloc(64 * 40 + 16);
    size_t n = 0;
    for (int i = 0; i <= FORWARD_MAX_RECEIVED; i++)
        n += (size_t)sprintf(many + n, "Received: from hop%d\r\n", i);
    n += (size_t)sprintf(many + n, "\r\nbody\r\n");
    test_assert(forward_is_loop(many, n, acct, tgt, NULL, &why) == 1);
    test_assert_streq(why, "too-many-hops");
    n = 0;
    for (int i = 0; i < FORWARD_MAX_RECEIVED; i++)
        n += (size_t)sprintf(many + n, "Received: from hop%d\r\n", i);
    test_assert(forward_is_loop(many, n, acct, tgt, NULL, &why) == 0);   /* no body: header only */
    n = 0;
    for (int i = 0; i <= FORWARD_MAX_DELIVERED_TO; i++)
        n += (size_t)sprintf(many + n, "Delivered-To: u%d@z.example\r\n", i);
    test_assert(forward_is_loop(many, n, acct, tgt, NULL, &why) == 1);
    test_assert_streq(why, "too-many-delivered-to");
    free(many);
    test_assert(forward_is_loop("", 0, acct, tgt, NULL, &why) == 0);
    test_end();
}

void test_srs_key_file(void)
{
    test_begin("srs key: made at first use, 32 bytes 0600, then stable");
    const char *dir = test_tmpdir();
    unsigned char k1[SRS_KEY_LEN], k2[SRS_KEY_LEN];
    const char *err = NULL;
    test_assert(srs_key_get(dir, k1, &err) == 0);
    char *path = xasprintf("%s/srs.key", dir);
    struct stat st;
    test_assert(stat(path, &st) == 0 && st.st_size == SRS_KEY_LEN &&
                (st.st_mode & 0777) == 0600);
    test_assert(srs_key_get(dir, k2, &err) == 0 && memcmp(k1, k2, SRS_KEY_LEN) == 0);
    /* the file is the truth: another directory has another key */
    char *dir2 = xasprintf("%s/other", dir);
    test_assert(mkdir(dir2, 0700) == 0);
    test_assert(srs_key_get(dir2, k2, &err) == 0 && memcmp(k1, k2, SRS_KEY_LEN) != 0);
    /* a key of the wrong size is an error, never silently replaced */
    char *bad = xasprintf("%s/bad", dir);
    test_assert(mkdir(bad, 0700) == 0);
    char *badkey = xasprintf("%s/srs.key", bad);
    FILE *f = fopen(badkey, "wb");
    test_assert(f != NULL);
    if (f) {
        fputs("short", f);
        fclose(f);
    }
    test_assert(srs_key_get(bad, k2, &err) == -1);
    test_assert(stat(badkey, &st) == 0 && st.st_size == 5);
    unlink(badkey);
    unlink(path);
    char *path2 = xasprintf("%s/srs.key", dir2);
    unlink(path2);
    rmdir(dir2);
    rmdir(bad);
    free(path);
    free(path2);
    free(dir2);
    free(bad);
    free(badkey);
    test_end();
}

void test_dir_forward(void)
{
    test_begin("directory: forwarding settings, refused targets, migration default");
    const char *err = NULL;
    struct directory *d = dir_open(test_tmpdir(), &err);
    test_assert(d != NULL);
    if (!d) {
        test_end();
        return;
    }
    test_assert(dir_domain_add(d, "a.example", NULL) == 0);
    test_assert(dir_domain_add(d, "b.example", NULL) == 0);
    dir_set_argon2_params(1, 8, 1);
    test_assert(dir_account_add(d, "ann@a.example", "password1", PLAN_FREE, &err) == 0);
    test_assert(dir_account_add(d, "bob@b.example", "password1", PLAN_FREE, &err) == 0);
    test_assert(dir_alias_add(d, "annie@a.example", "ann@a.example", &err) == 0);
    struct dir_forward f;
    test_assert(dir_forward_get(d, "ann@a.example", &f) == 0 && f.to[0] == 0 &&
                f.keep == FORWARD_KEEP);
    test_assert(dir_forward_get(d, "nobody@a.example", &f) == 1);
    test_assert(dir_forward_set(d, "ANN@a.example", "Bob@B.example", FORWARD_ARCHIVE, &err) == 0);
    test_assert(dir_forward_get(d, "ann@a.example", &f) == 0);
    test_assert_streq(f.to, "bob@b.example");
    test_assert(f.keep == FORWARD_ARCHIVE);
    /* keep alone leaves the target; target alone leaves keep */
    test_assert(dir_forward_set(d, "ann@a.example", NULL, FORWARD_DELETE, &err) == 0);
    test_assert(dir_forward_set(d, "ann@a.example", "x+y@remote.example", -1, &err) == 0);
    test_assert(dir_forward_get(d, "ann@a.example", &f) == 0 && f.keep == FORWARD_DELETE);
    test_assert_streq(f.to, "x+y@remote.example");
    /* refused: itself, through plus-addressing or an alias, unknown local, malformed */
    test_assert(dir_forward_set(d, "ann@a.example", "ann@a.example", -1, &err) == 2);
    test_assert(dir_forward_set(d, "ann@a.example", "ann+x@a.example", -1, &err) == 2);
    test_assert(dir_forward_set(d, "ann@a.example", "annie@a.example", -1, &err) == 2);
    test_assert(dir_forward_set(d, "ann@a.example", "carol@b.example", -1, &err) == 2);
    test_assert(dir_forward_set(d, "ann@a.example", "not an address", -1, &err) == 2);
    test_assert(dir_forward_set(d, "ann@a.example", "a@b", -1, &err) == 2);
    test_assert(dir_forward_set(d, "ann@a.example", "a..b@b.example", -1, &err) == 2);
    test_assert(dir_forward_set(d, "ann@a.example", "bob@b.example", 7, &err) == -1);
    test_assert(dir_forward_set(d, "nobody@a.example", "bob@b.example", -1, &err) == 1);
    test_assert(dir_forward_get(d, "ann@a.example", &f) == 0);
    test_assert_streq(f.to, "x+y@remote.example");   /* unchanged by the refusals */
    /* off */
    test_assert(dir_forward_set(d, "ann@a.example", "", -1, &err) == 0);
    test_assert(dir_forward_get(d, "ann@a.example", &f) == 0 && f.to[0] == 0 &&
                f.keep == FORWARD_DELETE);
    test_assert(dir_forward_keep_parse("mark-read") == FORWARD_MARK_READ);
    test_assert(dir_forward_keep_parse("shred") == -1 && dir_forward_keep_parse(NULL) == -1);
    test_assert_streq(dir_forward_keep_name(FORWARD_ARCHIVE), "archive");
    test_assert(dir_schema_version(d) == 5);
    dir_close(&d);
    test_end();
}

/* ---- forward_deliver on a real spool, directory and store ---- */

struct sched_log {
    int n;
    char ids[8][SPOOL_ID_LEN + 1];
};

static void record_schedule(const char *id, void *arg)
{
    struct sched_log *s = arg;
    if (s->n < 8)
        snprintf(s->ids[s->n], sizeof s->ids[0], "%s", id);
    s->n++;
}

static struct spool_msg *make_msg(const char *id, const char *sender, const char *rcpt,
                                  const char *data)
{
    struct spool_msg *m = xcalloc(1, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    m->sender = xstrdup(sender);
    m->arrived = 1700000000;
    m->protocol = xstrdup("ESMTP");
    m->nrcpt = 1;
    m->rcpts = xcalloc(1, sizeof *m->rcpts);
    m->rcpts[0].address = xstrdup(rcpt);
    m->rcpts[0].account = xstrdup(rcpt);
    m->data = xstrdup(data);
    m->len = strlen(data);
    return m;
}

/* Number of messages in MAILBOX of ACCOUNT (0 when it has none). */
static void count_one(const struct store_msg_info *m, void *arg)
{
    (void)m;
    (*(int *)arg)++;
}

static int count_in(const char *dir, const char *account, const char *mailbox)
{
    int n = 0;
    store_list(dir, account, mailbox, count_one, &n);
    return n;
}

static void has_seen(const struct store_msg_info *m, void *arg)
{
    if (strstr(m->flags, "\\Seen"))
        (*(int *)arg)++;
}

void test_forward_deliver(void)
{
    test_begin("forward: deliver queues one durable copy (SRS sender), keeps per option, "
               "and a retry queues nothing twice");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    struct directory *d = dir_open(dir, &err);
    test_assert(d != NULL);
    if (!d) {
        test_end();
        return;
    }
    dir_set_argon2_params(1, 8, 1);
    test_assert(dir_domain_add(d, "a.example", NULL) == 0);
    test_assert(dir_domain_add(d, "b.example", NULL) == 0);
    test_assert(dir_account_add(d, "bob@b.example", "password1", PLAN_FREE, &err) == 0);
    const char *keeps[] = { "keep", "mark-read", "archive", "delete" };
    char acct[4][64];
    for (int i = 0; i < 4; i++) {
        snprintf(acct[i], sizeof acct[i], "%s@a.example", keeps[i]);
        test_assert(dir_account_add(d, acct[i], "password1", PLAN_FREE, &err) == 0);
        test_assert(dir_forward_set(d, acct[i], "bob@b.example", dir_forward_keep_parse(keeps[i]),
                                    &err) == 0);
    }
    dir_close(&d);

    struct spool *sp = spool_open(dir, &err);
    struct loop *lp = loop_new();
    struct sched_log sl = { 0 };
    struct forward_queue fq = { dir, sp, lp, record_schedule, &sl };
    const char *body = "Subject: hi\r\n\r\nbody\r\n";
    for (int i = 0; i < 4 && sp; i++) {
        char id[SPOOL_ID_LEN + 1];
        spool_new_id(id);
        struct spool_msg *m = make_msg(id, "carol@c.example", acct[i], body);
        uint32_t uid = 99;
        int dup = 9;
        sl.n = 0;
        test_assert(forward_deliver(&fq, m, 0, &uid, &dup, &err) == 0);
        event_base_loop(loop_base(lp), EVLOOP_NONBLOCK);
        char fwd[SPOOL_ID_LEN + 1];
        forward_id(id, 0, fwd);
        test_assert(sl.n == 1 && strcmp(sl.ids[0], fwd) == 0);
        struct spool_msg *f = NULL;
        test_assert(spool_load(sp, fwd, &f) == 0);
        if (f) {
            test_assert(strncmp(f->sender, "SRS0=", 5) == 0);
            test_assert(strstr(f->sender, "=c.example=carol@a.example") != NULL);
            test_assert(f->nrcpt == 1 && strcmp(f->rcpts[0].address, "bob@b.example") == 0 &&
                        f->rcpts[0].account && strcmp(f->rcpts[0].account, "bob@b.example") == 0);
            char *expect = xasprintf("Delivered-To: %s\r\n%s", acct[i], body);
            test_assert_memeq(f->data, f->len, expect, strlen(expect));
            free(expect);
            spool_msg_free(&f);
        }
        int inbox = count_in(dir, acct[i], "INBOX"), archive = count_in(dir, acct[i], "Archive");
        int seen = 0;
        store_list(dir, acct[i], "INBOX", has_seen, &seen);
        switch (i) {
        case 0: test_assert(inbox == 1 && archive == 0 && seen == 0 && dup == 0); break;
        case 1: test_assert(inbox == 1 && archive == 0 && seen == 1); break;
        case 2: test_assert(inbox == 0 && archive == 1); break;
        case 3: test_assert(inbox == 0 && archive == 0 && uid == 0 && dup == 0); break;
        }
        /* a crash before the recipient was marked done: delivered again */
        sl.n = 0;
        test_assert(forward_deliver(&fq, m, 0, &uid, &dup, &err) == 0);
        event_base_loop(loop_base(lp), EVLOOP_NONBLOCK);
        test_assert(sl.n == 0);                       /* already queued: not again */
        test_assert(i == 3 || dup == 1);              /* the store's duplicate */
        test_assert(count_in(dir, acct[i], "INBOX") == inbox &&
                    count_in(dir, acct[i], "Archive") == archive);
        /* the copy was delivered and removed meanwhile: queued once more,
         * under the same id (a local target's store drops the duplicate) */
        test_assert(spool_remove(sp, fwd) == 0);
        test_assert(forward_deliver(&fq, m, 0, &uid, &dup, &err) == 0);
        event_base_loop(loop_base(lp), EVLOOP_NONBLOCK);
        test_assert(sl.n == 1 && strcmp(sl.ids[0], fwd) == 0);
        spool_msg_free(&m);
    }
    /* null sender stays null; no forwarding: plain INBOX delivery */
    char id[SPOOL_ID_LEN + 1];
    spool_new_id(id);
    struct spool_msg *m = make_msg(id, "", acct[0], body);
    uint32_t uid;
    int dup;
    sl.n = 0;
    test_assert(sp && forward_deliver(&fq, m, 0, &uid, &dup, &err) == 0);
    event_base_loop(loop_base(lp), EVLOOP_NONBLOCK);
    char fwd[SPOOL_ID_LEN + 1];
    forward_id(id, 0, fwd);
    struct spool_msg *f = NULL;
    test_assert(sp && spool_load(sp, fwd, &f) == 0 && f && f->sender[0] == '\0');
    spool_msg_free(&f);
    spool_msg_free(&m);
    spool_new_id(id);
    m = make_msg(id, "carol@c.example", "bob@b.example", body);
    sl.n = 0;
    test_assert(sp && forward_deliver(&fq, m, 0, &uid, &dup, &err) == 0 && sl.n == 0);
    test_assert(count_in(dir, "bob@b.example", "INBOX") == 1);
    spool_msg_free(&m);
    loop_free(&lp);
    spool_close(&sp);
    test_end();
}
