/* test_store_pop: changes to stored messages (store_expunge, store_add_flag,
 * store_move: durability shape, MODSEQ, the vanished table, deliveries
 * following a moved message, limits of flags) and the POP3 maildrop
 * (store_pop_*: the exclusive lock across handles and threads, since
 * filtering, an account without a store, a snapshot that does not move). */
#include "store/store.h"
#include "store/store_imap.h"
#include "core/xalloc.h"
#include "store_tests.h"
#include "test.h"
#include "test_loop.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACCT "pop@example.test"
#define MAXL 32

struct msgs {
    int n;
    uint32_t uid[MAXL];
    uint64_t modseq[MAXL];
    char flags[MAXL][256];
    char qid[MAXL][64];
    char path[MAXL][4096];
};

static void collect_msgs(const struct store_msg_info *m, void *arg)
{
    struct msgs *l = arg;
    if (l->n < MAXL) {
        l->uid[l->n] = m->uid;
        l->modseq[l->n] = m->modseq;
        snprintf(l->flags[l->n], sizeof l->flags[l->n], "%s", m->flags);
        snprintf(l->qid[l->n], sizeof l->qid[l->n], "%s", m->queue_id);
        snprintf(l->path[l->n], sizeof l->path[l->n], "%s", m->path);
    }
    l->n++;
}

static struct msgs *list_of(const char *dir, const char *mailbox)
{
    static struct msgs l;
    memset(&l, 0, sizeof l);
    if (store_list(dir, ACCT, mailbox, collect_msgs, &l) != 0)
        l.n = -1;
    return &l;
}

static const char *const bodies[] = {
    "Subject: one\r\n\r\nfirst\r\n",
    "Subject: two\r\n\r\nsecond message\r\n",
    "Subject: three\r\n\r\nthe third one\r\n",
    "Subject: four\r\n\r\n4\r\n",
};

/* Delivers bodies[i] as queue id Q<i> at internal date DATE. */
static int put(const char *dir, int i, time_t date)
{
    char qid[16];
    snprintf(qid, sizeof qid, "Q%d", i);
    uint32_t uid;
    int dup;
    const char *err = NULL;
    return store_deliver(dir, ACCT, "INBOX", qid, bodies[i], strlen(bodies[i]), date, &uid,
                         &dup, &err) == 0 && !dup
               ? (int)uid
               : -1;
}

static long long ix_int(const char *dir, const char *sql)
{
    return test_index_int(dir, ACCT, sql);
}

static long long highestmodseq(const char *dir, const char *mailbox)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT highestmodseq FROM mailboxes WHERE name = '%s'", mailbox);
    return ix_int(dir, sql);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int read_is(const char *dir, const char *mailbox, uint32_t uid, const char *want)
{
    char *data = NULL;
    size_t len = 0;
    int ok = store_read(dir, ACCT, mailbox, uid, &data, &len) == 0 && len == strlen(want) &&
             memcmp(data, want, len) == 0;
    free(data);
    return ok;
}

/* ------------------------------------------------------------------ expunge */

void test_store_expunge(void)
{
    test_begin("store change: expunge removes rows and files, bumps modseq, records vanished");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int i = 0; i < 3; i++)
        test_assert(put(dir, i, 1000) == i + 1);
    struct msgs before = *list_of(dir, "INBOX");
    test_assert(before.n == 3);
    long long m0 = highestmodseq(dir, "INBOX");
    test_assert(m0 > 0);

    uint32_t del[] = { 2, 99, 2 };   /* unknown and repeated UIDs are ignored */
    test_assert(store_expunge(dir, ACCT, "inbox", del, 3, &err) == 0);
    struct msgs *l = list_of(dir, "INBOX");
    test_assert(l->n == 2 && l->uid[0] == 1 && l->uid[1] == 3);
    /* delivered mail shares the active pack: it stays (test_store_pack.c) */
    test_assert(file_exists(before.path[0]) && file_exists(before.path[2]));
    test_assert(highestmodseq(dir, "INBOX") == m0 + 1);
    test_assert(ix_int(dir, "SELECT count(*) FROM vanished") == 1);
    test_assert(ix_int(dir, "SELECT modseq FROM vanished WHERE uid = 2") == m0 + 1);
    test_assert(ix_int(dir, "SELECT count(*) FROM messages WHERE uid = 2") == 0);
    uint32_t uv, next, count;
    test_assert(store_mailbox_status(dir, ACCT, "INBOX", &uv, &next, &count) == 0);
    test_assert(next == 4 && count == 2);   /* UIDs are never reused */

    /* nothing to change: no modseq bump, no vanished row */
    uint32_t unknown[] = { 2, 4, 1000 };
    test_assert(store_expunge(dir, ACCT, "INBOX", unknown, 3, &err) == 0);
    test_assert(highestmodseq(dir, "INBOX") == m0 + 1);
    test_assert(ix_int(dir, "SELECT count(*) FROM vanished") == 1);
    test_assert(store_expunge(dir, ACCT, "INBOX", NULL, 0, &err) == 0);

    /* a deleted message never comes back through a redelivery of its queue id */
    uint32_t uid = 0;
    int dup = 0;
    test_assert(store_deliver(dir, ACCT, "INBOX", "Q1", "x", 1, 1000, &uid, &dup, &err) == 0);
    test_assert(dup == 1);
    test_assert(list_of(dir, "INBOX")->n == 2);

    /* bad input */
    err = NULL;
    test_assert(store_expunge(dir, ACCT, "NoSuch", del, 1, &err) == -1 && err);
    test_assert(store_expunge(dir, ACCT, "INBOX", NULL, 1, &err) == -1);
    test_assert(store_expunge(dir, ACCT, "INBOX", del, -1, &err) == -1);
    test_assert(store_expunge(dir, "nobody@example.test", "INBOX", del, 1, &err) == -1);
    test_assert(store_expunge(dir, "../x", "INBOX", del, 1, &err) == -1);

    /* all of them at once */
    uint32_t rest[] = { 1, 3 };
    test_assert(store_expunge(dir, ACCT, "INBOX", rest, 2, &err) == 0);
    test_assert(list_of(dir, "INBOX")->n == 0);
    test_assert(highestmodseq(dir, "INBOX") == m0 + 2);
    test_assert(ix_int(dir, "SELECT count(*) FROM vanished WHERE modseq = (SELECT"
                            " highestmodseq FROM mailboxes WHERE name = 'INBOX')") == 2);
    test_assert(file_exists(before.path[0]));   /* the active pack */
    test_assert(ix_int(dir, "SELECT count(*) FROM messages") == 0);
    test_end();
}

/* -------------------------------------------------------------------- flags */

void test_store_add_flag(void)
{
    test_begin("store change: add_flag is idempotent and gives changed messages the new modseq");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int i = 0; i < 3; i++)
        test_assert(put(dir, i, 1000) == i + 1);
    long long m0 = highestmodseq(dir, "INBOX");
    uint64_t third = list_of(dir, "INBOX")->modseq[2];

    uint32_t some[] = { 1, 2, 77 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", some, 3, "\\Seen", &err) == 0);
    struct msgs *l = list_of(dir, "INBOX");
    test_assert(l->n == 3);
    test_assert_streq(l->flags[0], "\\Seen");
    test_assert_streq(l->flags[1], "\\Seen");
    test_assert_streq(l->flags[2], "");
    test_assert(l->modseq[0] == (uint64_t)m0 + 1 && l->modseq[1] == (uint64_t)m0 + 1);
    test_assert(l->modseq[2] == third);
    test_assert(highestmodseq(dir, "INBOX") == m0 + 1);

    /* again, and in another case: nothing changes, nothing is bumped */
    test_assert(store_add_flag(dir, ACCT, "INBOX", some, 3, "\\Seen", &err) == 0);
    test_assert(store_add_flag(dir, ACCT, "INBOX", some, 2, "\\SEEN", &err) == 0);
    l = list_of(dir, "INBOX");
    test_assert_streq(l->flags[0], "\\Seen");
    test_assert(highestmodseq(dir, "INBOX") == m0 + 1);

    uint32_t one[] = { 1 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", one, 1, "\\Flagged", &err) == 0);
    test_assert(store_add_flag(dir, ACCT, "INBOX", one, 1, "$Work", &err) == 0);
    l = list_of(dir, "INBOX");
    test_assert_streq(l->flags[0], "\\Seen \\Flagged $Work");
    test_assert_streq(l->flags[1], "\\Seen");
    test_assert(highestmodseq(dir, "INBOX") == m0 + 3);

    /* bad flags and arguments change nothing */
    static const char *const bad[] = { "", "\\", "a b", "(x", "x)", "a\"b", "a*", "a%",
                                       "x]", "\\\\x", "tab\t", "\x7f", "caf\xc3\xa9" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        test_assert(store_add_flag(dir, ACCT, "INBOX", one, 1, bad[i], &err) == -1);
    test_assert(store_add_flag(dir, ACCT, "INBOX", one, 1, NULL, &err) == -1);
    test_assert(store_add_flag(dir, ACCT, "NoSuch", one, 1, "\\Seen", &err) == -1);
    test_assert(store_add_flag(dir, "nobody@example.test", "INBOX", one, 1, "\\Seen", &err) ==
                -1);
    test_assert(highestmodseq(dir, "INBOX") == m0 + 3);
    test_end();
}

void test_store_flag_limits(void)
{
    test_begin("store change: one flag up to 64 octets, a message's flags up to 255");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int i = 0; i < 2; i++)
        test_assert(put(dir, i, 1000) == i + 1);
    char k64[65], k65[66], k58[59];
    memset(k64, 'k', 64);
    k64[64] = '\0';
    memset(k65, 'k', 65);
    k65[65] = '\0';
    memset(k58, 'm', 58);
    k58[58] = '\0';
    uint32_t one[] = { 1 }, both[] = { 1, 2 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", one, 1, k65, &err) == -1);
    test_assert(store_add_flag(dir, ACCT, "INBOX", both, 2, k64, &err) == 0);
    /* 64 + 1 + 64 + 1 + 64 + 1 + 58 = 253 octets on both messages */
    k64[0] = 'a';
    test_assert(store_add_flag(dir, ACCT, "INBOX", both, 2, k64, &err) == 0);
    k64[0] = 'b';
    test_assert(store_add_flag(dir, ACCT, "INBOX", both, 2, k64, &err) == 0);
    test_assert(store_add_flag(dir, ACCT, "INBOX", both, 2, k58, &err) == 0);
    struct msgs *l = list_of(dir, "INBOX");
    test_assert(strlen(l->flags[0]) == 253 && strlen(l->flags[1]) == 253);
    long long m = highestmodseq(dir, "INBOX");
    /* 253 + " x" = 255: fits */
    test_assert(store_add_flag(dir, ACCT, "INBOX", one, 1, "x", &err) == 0);
    l = list_of(dir, "INBOX");
    test_assert(strlen(l->flags[0]) == 255);
    /* 253 + " xy" = 256: refused */
    err = NULL;
    uint32_t two[] = { 2 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", two, 1, "xy", &err) == -1);
    test_assert(err != NULL);
    /* a batch where message 2 would fit and message 1 not changes nothing */
    uint32_t two_then_one[] = { 2, 1 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", two_then_one, 2, "y", &err) == -1);
    l = list_of(dir, "INBOX");
    test_assert(strlen(l->flags[0]) == 255 && strlen(l->flags[1]) == 253);
    test_assert(highestmodseq(dir, "INBOX") == m + 1);
    test_end();
}

/* --------------------------------------------------------------------- move */

void test_store_move(void)
{
    test_begin("store change: move keeps file, flags and delivery record; new UID in target");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int i = 0; i < 3; i++)
        test_assert(put(dir, i, 1000 + i) == i + 1);
    uint32_t two[] = { 2 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", two, 1, "\\Seen", &err) == 0);
    struct msgs before = *list_of(dir, "INBOX");
    long long in0 = highestmodseq(dir, "INBOX"), ar0 = highestmodseq(dir, "Archive");

    uint32_t mv[] = { 2, 50 };
    test_assert(store_move(dir, ACCT, "INBOX", "Archive", mv, 2, &err) == 0);
    struct msgs *l = list_of(dir, "INBOX");
    test_assert(l->n == 2 && l->uid[0] == 1 && l->uid[1] == 3);
    l = list_of(dir, "Archive");
    test_assert(l->n == 1 && l->uid[0] == 1);
    test_assert_streq(l->flags[0], "\\Seen");
    test_assert_streq(l->qid[0], "Q1");
    test_assert_streq(l->path[0], before.path[1]);   /* same file */
    test_assert(l->modseq[0] == (uint64_t)ar0 + 1);
    test_assert(read_is(dir, "Archive", 1, bodies[1]));
    char *data = NULL;
    size_t len;
    test_assert(store_read(dir, ACCT, "INBOX", 2, &data, &len) == 1);
    free(data);
    test_assert(highestmodseq(dir, "INBOX") == in0 + 1);
    test_assert(highestmodseq(dir, "Archive") == ar0 + 1);
    test_assert(ix_int(dir, "SELECT modseq FROM vanished WHERE uid = 2 AND mailbox_id ="
                            " (SELECT id FROM mailboxes WHERE name = 'INBOX')") == in0 + 1);
    uint32_t uv, next, count;
    test_assert(store_mailbox_status(dir, ACCT, "Archive", &uv, &next, &count) == 0);
    test_assert(next == 2 && count == 1);

    /* the delivery record followed: a redelivery of Q1 is still a duplicate
     * and names the message where it is now */
    uint32_t uid = 0;
    int dup = 0;
    test_assert(store_deliver(dir, ACCT, "INBOX", "Q1", "x", 1, 1000, &uid, &dup, &err) == 0);
    test_assert(dup == 1 && uid == 1);
    test_assert(ix_int(dir, "SELECT count(*) FROM deliveries d JOIN mailboxes b ON"
                            " b.id = d.mailbox_id WHERE d.queue_id = 'Q1' AND"
                            " b.name = 'Archive' AND d.uid = 1") == 1);
    test_assert(list_of(dir, "INBOX")->n == 2);

    /* the rest, in the order given: UIDs 2 and 3 in Archive */
    uint32_t rest[] = { 3, 1 };
    test_assert(store_move(dir, ACCT, "inbox", "Archive", rest, 2, &err) == 0);
    l = list_of(dir, "Archive");
    test_assert(l->n == 3 && l->uid[1] == 2 && l->uid[2] == 3);
    test_assert_streq(l->qid[1], "Q2");
    test_assert_streq(l->qid[2], "Q0");
    test_assert(read_is(dir, "Archive", 3, bodies[0]));
    test_assert(list_of(dir, "INBOX")->n == 0);

    /* nothing to move, bad targets: nothing changes */
    long long in1 = highestmodseq(dir, "INBOX"), ar1 = highestmodseq(dir, "Archive");
    test_assert(store_move(dir, ACCT, "INBOX", "Archive", rest, 2, &err) == 0);
    uint32_t a1[] = { 1 };
    test_assert(store_move(dir, ACCT, "Archive", "NoSuch", a1, 1, &err) == -1);
    test_assert(store_move(dir, ACCT, "Archive", "Archive", a1, 1, &err) == -1);
    test_assert(store_move(dir, ACCT, "NoSuch", "INBOX", a1, 1, &err) == -1);
    test_assert(store_move(dir, ACCT, "Archive", NULL, a1, 1, &err) == -1);
    test_assert(highestmodseq(dir, "INBOX") == in1 && highestmodseq(dir, "Archive") == ar1);
    test_assert(list_of(dir, "Archive")->n == 3);

    /* and back: a new UID in INBOX, after every UID INBOX ever had */
    test_assert(store_move(dir, ACCT, "Archive", "INBOX", a1, 1, &err) == 0);
    l = list_of(dir, "INBOX");
    test_assert(l->n == 1 && l->uid[0] == 4);
    test_assert(read_is(dir, "INBOX", 4, bodies[1]));
    test_end();
}

void test_store_index_migrated(void)
{
    test_begin("store change: a version-1 index is migrated in place, messages kept");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int i = 0; i < 2; i++) {   /* whole files, as version 1 had */
        uint32_t uid = 0, uv;
        test_assert(store_append(dir, ACCT, "INBOX", bodies[i], strlen(bodies[i]), 0, NULL, 1000,
                                 0, &uid, &uv, &err) == 0 && uid == (uint32_t)i + 1);
    }
    /* make it a version-1 index whatever store.c created */
    char *path = xasprintf("%s/mail/%s/index.sqlite", dir, ACCT);
    sqlite3 *db = NULL;
    test_assert(sqlite3_open(path, &db) == SQLITE_OK);
    test_assert(sqlite3_exec(db, "DROP TABLE IF EXISTS vanished;"
                                 " DROP INDEX IF EXISTS deliveries_message;"
                                 " DROP TRIGGER usage_insert; DROP TRIGGER usage_delete;"
                                 " DROP TABLE usage; DROP TABLE subscriptions;"
                                 " DROP TABLE uidvalidity_max; DROP INDEX messages_modseq;"
                                 " ALTER TABLE mailboxes DROP COLUMN noselect;"
                                 " ALTER TABLE messages DROP COLUMN header;"
                                 " DROP INDEX messages_file; DROP TABLE pack_state;"
                                 " DROP TABLE pack_retired;"
                                 " ALTER TABLE messages DROP COLUMN offset;"
                                 " UPDATE schema_version SET version = 1",
                             NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    free(path);
    test_assert(ix_int(dir, "SELECT version FROM schema_version") == 1);

    uint32_t one[] = { 1 };
    test_assert(store_expunge(dir, ACCT, "INBOX", one, 1, &err) == 0);
    test_assert(ix_int(dir, "SELECT version FROM schema_version") == 6);
    test_assert(ix_int(dir, "SELECT count(*) FROM vanished WHERE uid = 1") == 1);
    test_assert(ix_int(dir, "SELECT messages FROM usage") == 1);
    struct msgs *l = list_of(dir, "INBOX");
    test_assert(l->n == 1 && l->uid[0] == 2);
    test_assert(read_is(dir, "INBOX", 2, bodies[1]));
    /* store.c still works on the migrated index */
    test_assert(put(dir, 2, 1000) == 3);
    test_end();
}

/* --------------------------------------------------------------------- POP3 */

struct try_open {
    const char *dir;
    int rc;
    int got_handle;
};

static void *try_open_thread(void *arg)
{
    struct try_open *t = arg;
    struct store_pop *p = NULL;
    const char *err = NULL;
    t->rc = store_pop_open(t->dir, ACCT, 0, &p, &err);
    t->got_handle = p != NULL;
    store_pop_close(&p);
    return NULL;
}

static int open_from_thread(const char *dir, int *got_handle_r)
{
    struct try_open t = { dir, -2, -1 };
    pthread_t th;
    if (pthread_create(&th, NULL, try_open_thread, &t) != 0)
        return -2;
    pthread_join(th, NULL);
    *got_handle_r = t.got_handle;
    return t.rc;
}

void test_store_pop_lock(void)
{
    test_begin("store pop: one session at a time, across handles and threads");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(put(dir, 0, 1000) == 1);
    struct store_pop *a = NULL, *b = (struct store_pop *)&err;
    test_assert(store_pop_open(dir, ACCT, 0, &a, &err) == 0 && a != NULL);
    /* same thread, another handle */
    err = NULL;
    test_assert(store_pop_open(dir, ACCT, 0, &b, &err) == 1);
    test_assert(b == NULL && err != NULL);
    /* another thread */
    int got = -1;
    test_assert(open_from_thread(dir, &got) == 1 && got == 0);
    /* another account is not locked */
    struct store_pop *other = NULL;
    test_assert(store_pop_open(dir, "other@example.test", 0, &other, &err) == 0);
    store_pop_close(&other);
    test_assert(other == NULL);
    /* IMAP-side work goes on while the lock is held */
    uint32_t one[] = { 1 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", one, 1, "\\Seen", &err) == 0);

    store_pop_close(&a);
    test_assert(a == NULL);
    store_pop_close(&a);   /* a second close is harmless */
    test_assert(open_from_thread(dir, &got) == 0 && got == 1);
    test_assert(store_pop_open(dir, ACCT, 0, &b, &err) == 0 && b != NULL);
    test_assert(open_from_thread(dir, &got) == 1);
    store_pop_close(&b);
    test_assert(store_pop_open(dir, ACCT, 0, &b, &err) == 0);
    store_pop_close(&b);

    /* a lock let go within the retry window (a dropped session the server
     * is still closing): the login waits for it instead of [IN-USE] */
    test_assert(store_pop_open(dir, ACCT, 0, &a, &err) == 0);
    struct try_open t = { dir, -2, -1 };
    pthread_t th;
    test_assert(pthread_create(&th, NULL, try_open_thread, &t) == 0);
    struct timespec ts = {0, 5 * 1000 * 1000L};   /* well inside the 50 ms */
    nanosleep(&ts, NULL);
    store_pop_close(&a);
    pthread_join(th, NULL);
    test_assert(t.rc == 0 && t.got_handle == 1);
    test_end();
}

void test_store_pop_since(void)
{
    test_begin("store pop: snapshot in UID order, since filtering, size, path, seen");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(put(dir, 0, 3000) == 1);   /* UID order, not date order */
    test_assert(put(dir, 1, 1000) == 2);
    test_assert(put(dir, 2, 2000) == 3);
    test_assert(put(dir, 3, 1999) == 4);
    uint32_t seen[] = { 3 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", seen, 1, "\\Seen", &err) == 0);
    uint32_t uv, next, count;
    test_assert(store_mailbox_status(dir, ACCT, "INBOX", &uv, &next, &count) == 0);

    struct store_pop *p = NULL;
    test_assert(store_pop_open(dir, ACCT, 0, &p, &err) == 0);
    test_assert(store_pop_count(p) == 4);
    test_assert(store_pop_uidvalidity(p) == uv && uv != 0);
    for (int i = 0; i < 4; i++) {
        const struct store_pop_msg *m = store_pop_msg(p, i);
        test_assert(m && m->uid == (uint32_t)i + 1);
        if (!m)
            continue;
        test_assert(m->size == strlen(bodies[i]));
        test_assert(m->seen == (i == 2));
        char *data = NULL;
        size_t len = 0;
        test_assert(store_msg_read(m->path, m->offset, m->size, 1 << 20, &data, &len) == 0);
        test_assert_memeq(data, len, bodies[i], strlen(bodies[i]));
        free(data);
    }
    test_assert(store_pop_msg(p, 4) == NULL && store_pop_msg(p, -1) == NULL);
    store_pop_close(&p);

    /* since: internal date at or after it */
    test_assert(store_pop_open(dir, ACCT, 2000, &p, &err) == 0);
    test_assert(store_pop_count(p) == 2);
    test_assert(store_pop_msg(p, 0) && store_pop_msg(p, 0)->uid == 1);
    test_assert(store_pop_msg(p, 1) && store_pop_msg(p, 1)->uid == 3);
    store_pop_close(&p);
    test_assert(store_pop_open(dir, ACCT, 2001, &p, &err) == 0);
    test_assert(store_pop_count(p) == 1);
    store_pop_close(&p);
    test_assert(store_pop_open(dir, ACCT, 3001, &p, &err) == 0);
    test_assert(store_pop_count(p) == 0 && store_pop_msg(p, 0) == NULL);
    store_pop_close(&p);

    /* POP sees only INBOX */
    uint32_t mv[] = { 1 };
    test_assert(store_move(dir, ACCT, "INBOX", "Archive", mv, 1, &err) == 0);
    test_assert(store_pop_open(dir, ACCT, 0, &p, &err) == 0);
    test_assert(store_pop_count(p) == 3);
    test_assert(store_pop_msg(p, 0) && store_pop_msg(p, 0)->uid == 2);
    store_pop_close(&p);
    test_end();
}

static void count_mailboxes(const char *name, const char *special_use, void *arg)
{
    (void)name;
    (void)special_use;
    (*(int *)arg)++;
}

void test_store_pop_empty_account(void)
{
    test_begin("store pop: an account that never received mail has an empty maildrop");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    int n = 0;
    test_assert(store_list_mailboxes(dir, ACCT, count_mailboxes, &n) == 1);
    struct store_pop *p = NULL;
    test_assert(store_pop_open(dir, ACCT, 0, &p, &err) == 0 && p != NULL);
    test_assert(store_pop_count(p) == 0);
    test_assert(store_pop_uidvalidity(p) != 0);
    uint32_t uv, next, count;
    test_assert(store_mailbox_status(dir, ACCT, "INBOX", &uv, &next, &count) == 0);
    test_assert(uv == store_pop_uidvalidity(p) && next == 1 && count == 0);
    store_pop_close(&p);
    test_assert(store_list_mailboxes(dir, ACCT, count_mailboxes, &n) == 0 && n == 6);
    /* delivery works into the store the POP3 open created */
    test_assert(put(dir, 0, 1000) == 1);
    test_assert(ix_int(dir, "SELECT version FROM schema_version") == 6);

    /* bad account names never touch the disk */
    static const char *const bad[] = { "", "../etc", "a/b", ".hidden", "a\nb" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (struct store_pop *)&err;
        test_assert(store_pop_open(dir, bad[i], 0, &p, &err) == -1 && p == NULL);
    }
    p = (struct store_pop *)&err;
    test_assert(store_pop_open(dir, NULL, 0, &p, &err) == -1 && p == NULL);
    test_assert(store_pop_count(NULL) == 0 && store_pop_msg(NULL, 0) == NULL);
    test_end();
}

void test_store_pop_snapshot_stable(void)
{
    test_begin("store pop: the snapshot does not change while the session runs");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(put(dir, 0, 1000) == 1);
    test_assert(put(dir, 1, 1000) == 2);
    struct store_pop *p = NULL;
    test_assert(store_pop_open(dir, ACCT, 0, &p, &err) == 0);
    test_assert(store_pop_count(p) == 2);
    test_assert(put(dir, 2, 1000) == 3);    /* delivery goes on under the lock */
    uint32_t one[] = { 1 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", one, 1, "\\Seen", &err) == 0);
    test_assert(store_pop_count(p) == 2);
    test_assert(store_pop_msg(p, 0) && store_pop_msg(p, 0)->seen == 0);
    test_assert(store_pop_msg(p, 2) == NULL);
    /* what the session deletes at QUIT, while it still holds the lock */
    uint32_t dele[] = { store_pop_msg(p, 1) ? store_pop_msg(p, 1)->uid : 0 };
    test_assert(store_expunge(dir, ACCT, "INBOX", dele, 1, &err) == 0);
    store_pop_close(&p);
    test_assert(store_pop_open(dir, ACCT, 0, &p, &err) == 0);
    test_assert(store_pop_count(p) == 2);
    test_assert(store_pop_msg(p, 0) && store_pop_msg(p, 0)->uid == 1 &&
                store_pop_msg(p, 0)->seen == 1);
    test_assert(store_pop_msg(p, 1) && store_pop_msg(p, 1)->uid == 3);
    store_pop_close(&p);
    test_end();
}
