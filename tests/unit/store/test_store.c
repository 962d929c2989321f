/* test_store: the mailbox store (src/store): delivery and read-back, the
 * idempotency by queue id, UIDs across reopen, status, special-use
 * mailboxes, account-name safety and orphan message files. */
#include "store/store.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store_tests.h"
#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCT "alice@example.test"

struct listing {
    int n;
    uint32_t uids[64];
    size_t sizes[64];
    char qids[64][64];
};

static void collect(const struct store_msg_info *m, void *arg)
{
    struct listing *l = arg;
    if (l->n < 64) {
        l->uids[l->n] = m->uid;
        l->sizes[l->n] = m->size;
        snprintf(l->qids[l->n], sizeof l->qids[l->n], "%s", m->queue_id);
    }
    l->n++;
}

static int deliver(const char *dir, const char *acct, const char *qid, const char *data,
                   size_t len, uint32_t *uid_r, int *dup_r)
{
    const char *err = NULL;
    return store_deliver(dir, acct, "INBOX", qid, data, len, 1700000000, uid_r, dup_r, &err);
}

static int count_files(const char *path)
{
    char *cmd = xasprintf("ls -A '%s' | wc -l", path);
    FILE *f = popen(cmd, "r");
    free(cmd);
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

static void test_deliver_read_back(void)
{
    test_begin("store: deliver and read back byte for byte");
    const char *dir = test_tmpdir();
    static const char msg1[] = "Subject: hi\r\n\r\nhello\r\n";
    static const char msg2[] = "Subject: nul\n\nbinary\0with\0nuls\r\rbare CR\nbare LF\r\n.\r\n";
    size_t big_len = 1024 * 1024 + 17;
    char *big = xmalloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 131 + (i >> 7));
    const char *msgs[] = { msg1, msg2, big };
    size_t lens[] = { sizeof msg1 - 1, sizeof msg2 - 1, big_len };
    uint32_t uids[3];
    for (int i = 0; i < 3; i++) {
        char qid[32];
        int dup = -1;
        snprintf(qid, sizeof qid, "Q%d", i);
        test_assert(deliver(dir, ACCT, qid, msgs[i], lens[i], &uids[i], &dup) == 0);
        test_assert(dup == 0);
        test_assert(uids[i] == (uint32_t)i + 1);
    }
    for (int i = 0; i < 3; i++) {
        char *data = NULL;
        size_t len = 0;
        test_assert(store_read(dir, ACCT, "INBOX", uids[i], &data, &len) == 0);
        test_assert_memeq(data, len, msgs[i], lens[i]);
        free(data);
    }
    /* INBOX is case-insensitive */
    char *data = NULL;
    size_t len = 0;
    test_assert(store_read(dir, ACCT, "inbox", 1, &data, &len) == 0);
    free(data);
    test_assert(store_read(dir, ACCT, "INBOX", 99, &data, &len) == 1);
    test_assert(store_read(dir, ACCT, "NoSuch", 1, &data, &len) == 1);
    test_assert(store_read(dir, "bob@example.test", "INBOX", 1, &data, &len) == 1);

    struct listing l = { 0 };
    test_assert(store_list(dir, ACCT, "INBOX", collect, &l) == 0);
    test_assert(l.n == 3);
    test_assert(l.uids[0] == 1 && l.uids[1] == 2 && l.uids[2] == 3);
    test_assert(l.sizes[2] == big_len);
    test_assert_streq(l.qids[1], "Q1");
    test_assert(store_list(dir, ACCT, "NoSuch", collect, &l) == 1);
    test_assert(store_list(dir, "nobody@x", "INBOX", collect, &l) == 1);
    free(big);
    test_end();
}

static void test_empty_message(void)
{
    test_begin("store: empty message and no queue id (APPEND shape)");
    const char *dir = test_tmpdir();
    uint32_t uid;
    int dup;
    test_assert(deliver(dir, ACCT, NULL, "", 0, &uid, &dup) == 0 && uid == 1 && !dup);
    test_assert(deliver(dir, ACCT, "", "x", 1, &uid, &dup) == 0 && uid == 2 && !dup);
    char *data = NULL;
    size_t len = 99;
    test_assert(store_read(dir, ACCT, "INBOX", 1, &data, &len) == 0 && len == 0);
    free(data);
    struct listing l = { 0 };
    test_assert(store_list(dir, ACCT, "INBOX", collect, &l) == 0 && l.n == 2);
    test_assert_streq(l.qids[0], "");
    test_end();
}

static void test_duplicate_queue_id(void)
{
    test_begin("store: duplicate queue id is reported and writes nothing");
    const char *dir = test_tmpdir();
    uint32_t uid = 0, uid2 = 0;
    int dup = -1;
    test_assert(deliver(dir, ACCT, "QDUP", "a\r\n", 3, &uid, &dup) == 0 && dup == 0);
    char *msgdir = xasprintf("%s/mail/%s/msg", dir, ACCT);
    int files = count_files(msgdir);
    uint32_t v1, n1, c1, v2, n2, c2;
    test_assert(store_mailbox_status(dir, ACCT, "INBOX", &v1, &n1, &c1) == 0);
    test_assert(deliver(dir, ACCT, "QDUP", "b\r\n", 3, &uid2, &dup) == 0);
    test_assert(dup == 1);
    test_assert(uid2 == uid);
    test_assert(count_files(msgdir) == files);
    test_assert(store_mailbox_status(dir, ACCT, "INBOX", &v2, &n2, &c2) == 0);
    test_assert(v1 == v2 && n1 == n2 && c1 == c2 && c2 == 1);
    /* the same queue id for another account is not a duplicate there */
    test_assert(deliver(dir, "bob@example.test", "QDUP", "a", 1, &uid2, &dup) == 0 && !dup);
    free(msgdir);
    test_end();
}

static void test_uids_across_reopen(void)
{
    test_begin("store: UIDs strictly increase, UIDVALIDITY stays, across reopen");
    const char *dir = test_tmpdir();
    uint32_t last = 0, uv0 = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++) {
            char qid[32];
            uint32_t uid;
            int dup;
            snprintf(qid, sizeof qid, "R%dI%d", round, i);
            test_assert(deliver(dir, ACCT, qid, "m", 1, &uid, &dup) == 0);
            test_assert(uid > last);
            last = uid;
        }
        uint32_t uv, next, count;
        test_assert(store_mailbox_status(dir, ACCT, "INBOX", &uv, &next, &count) == 0);
        if (round == 0)
            uv0 = uv;
        test_assert(uv == uv0 && uv != 0);
        test_assert(next == last + 1);
        test_assert(count == (uint32_t)(round + 1) * 4);
    }
    test_end();
}

static void mbox_cb(const char *name, const char *special_use, void *arg)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s=%s;", name, special_use ? special_use : "-");
}

static void test_special_use_and_status(void)
{
    test_begin("store: default mailboxes with special-use, status");
    const char *dir = test_tmpdir();
    uint32_t uv, next, count, uid;
    int dup;
    test_assert(store_mailbox_status(dir, ACCT, "INBOX", &uv, &next, &count) == 1);
    test_assert(deliver(dir, ACCT, "S1", "x", 1, &uid, &dup) == 0);
    char out[512] = "";
    test_assert(store_list_mailboxes(dir, ACCT, mbox_cb, out) == 0);
    test_assert_streq(out, "INBOX=-;Sent=\\Sent;Drafts=\\Drafts;Trash=\\Trash;Junk=\\Junk;"
                           "Archive=\\Archive;");
    const char *names[] = { "Sent", "Drafts", "Trash", "Junk", "Archive" };
    uint32_t inbox_uv;
    test_assert(store_mailbox_status(dir, ACCT, "INBOX", &inbox_uv, &next, &count) == 0);
    test_assert(next == 2 && count == 1);
    for (size_t i = 0; i < 5; i++) {
        test_assert(store_mailbox_status(dir, ACCT, names[i], &uv, &next, &count) == 0);
        test_assert(next == 1 && count == 0 && uv > inbox_uv);
    }
    test_assert(store_mailbox_status(dir, ACCT, "sent", &uv, &next, &count) == 1);
    /* delivering into another existing mailbox works; into a missing one fails */
    const char *err = NULL;
    test_assert(store_deliver(dir, ACCT, "Sent", "S2", "y", 1, 0, &uid, &dup, &err) == 0);
    test_assert(uid == 1);
    test_assert(store_deliver(dir, ACCT, "Nope", "S3", "y", 1, 0, &uid, &dup, &err) == -1);
    test_assert(err != NULL);
    test_end();
}

static void test_bad_account_names(void)
{
    test_begin("store: account names with / or a leading dot are refused");
    const char *dir = test_tmpdir();
    const char *bad[] = { "../etc", "a/b", ".hidden", "", "..", "/abs", "a\nb" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t uid, uv, next, count;
        int dup;
        const char *err = NULL;
        test_assert(store_deliver(dir, bad[i], "INBOX", "Q", "x", 1, 0, &uid, &dup, &err) == -1);
        test_assert(err != NULL);
        test_assert(store_mailbox_status(dir, bad[i], "INBOX", &uv, &next, &count) != 0);
    }
    char *long_name = xmalloc(400);
    memset(long_name, 'a', 399);
    long_name[399] = '\0';
    uint32_t uid;
    int dup;
    const char *err = NULL;
    test_assert(store_deliver(dir, long_name, "INBOX", "Q", "x", 1, 0, &uid, &dup, &err) == -1);
    free(long_name);
    struct stat st;
    char *etc = xasprintf("%s/etc", dir);
    test_assert(stat(etc, &st) < 0);
    free(etc);
    test_end();
}

static void test_orphan_file_tolerated(void)
{
    test_begin("store: orphan message files (crash before index commit) are ignored");
    const char *dir = test_tmpdir();
    uint32_t uid;
    int dup;
    test_assert(deliver(dir, ACCT, "O1", "first", 5, &uid, &dup) == 0 && uid == 1);
    /* what a crash between the rename and the index commit leaves */
    char *orphan = xasprintf("%s/mail/%s/msg/1700000000.000001.deadbeef", dir, ACCT);
    char *tmpleft = xasprintf("%s/mail/%s/msg/tmp/1700000000.000002.cafe", dir, ACCT);
    FILE *f = fopen(orphan, "w");
    test_assert(f != NULL);
    if (f) {
        fputs("orphan", f);
        fclose(f);
    }
    f = fopen(tmpleft, "w");
    test_assert(f != NULL);
    if (f)
        fclose(f);
    /* the redelivery of the crashed queue id is NOT a duplicate */
    test_assert(deliver(dir, ACCT, "O2", "second", 6, &uid, &dup) == 0);
    test_assert(dup == 0 && uid == 2);
    struct listing l = { 0 };
    test_assert(store_list(dir, ACCT, "INBOX", collect, &l) == 0 && l.n == 2);
    char *data;
    size_t len;
    test_assert(store_read(dir, ACCT, "INBOX", 2, &data, &len) == 0);
    test_assert_memeq(data, len, "second", 6);
    free(data);
    free(orphan);
    free(tmpleft);
    test_end();
}

struct par_arg {
    const char *dir;
    int base;
    int failures;
};

static void *par_deliver(void *arg)
{
    struct par_arg *a = arg;
    for (int i = 0; i < 10; i++) {
        char qid[32];
        uint32_t uid;
        int dup;
        snprintf(qid, sizeof qid, "P%d-%d", a->base, i % 5);   /* each id twice */
        if (deliver(a->dir, ACCT, qid, "p", 1, &uid, &dup) != 0)
            a->failures++;
    }
    return NULL;
}

static void test_concurrent_deliveries(void)
{
    test_begin("store: concurrent deliveries to one account, each queue id once");
    const char *dir = test_tmpdir();
    pthread_t th[4];
    struct par_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct par_arg){ dir, i % 2, 0 };   /* two threads share each id set */
        test_assert(pthread_create(&th[i], NULL, par_deliver, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        test_assert(args[i].failures == 0);
    }
    uint32_t uv, next, count;
    test_assert(store_mailbox_status(dir, ACCT, "INBOX", &uv, &next, &count) == 0);
    test_assert(count == 10);
    test_assert(next == 11);
    test_end();
}

int main(void)
{
    log_set_stderr(0);
    return test_run((test_fn[]){ test_deliver_read_back, test_empty_message,
                                 test_duplicate_queue_id, test_uids_across_reopen,
                                 test_special_use_and_status, test_bad_account_names,
                                 test_orphan_file_tolerated, test_concurrent_deliveries,
                                 test_store_expunge, test_store_add_flag,
                                 test_store_flag_limits, test_store_move,
                                 test_store_index_migrated, test_store_pop_lock,
                                 test_store_pop_since, test_store_pop_empty_account,
                                 test_store_pop_snapshot_stable, test_store_read_cached,
                                 test_pack_batch_read_back, test_pack_duplicates,
                                 test_pack_missing_mailbox, test_pack_uid_modseq,
                                 test_pack_rotation_and_unlink, test_pack_copy_then_expunge,
                                 test_pack_crash_tail, test_pack_migrate_v4, test_pack_concurrent,
                                 test_pack_timing,
                                 test_compact_rewrite_retire_remove, test_compact_reader_grace,
                                 test_compact_copies_and_orphans,
                                 test_compact_crash_before_commit, test_compact_races_delivery,
                                 test_compact_no_store, test_compact_due_set, test_compact_config,
                                 NULL });
}
