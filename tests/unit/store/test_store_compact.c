/* test_store_compact: pack compaction (src/store/store_compact.c). An
 * account filled with tiny packs, most of its mail expunged, compacted:
 * every survivor reads back byte for byte, usage unchanged, the old packs
 * retired and removed only after the grace, the active pack never
 * rewritten, a reader holding an old (pack, offset) still reading during
 * the grace (and a POP3 session's snapshot for as long as it is open),
 * COPY twins moved once, a pack no row names retired, a crash
 * between the copy and the commit (store_compact_abort_set) leaving every
 * row valid, deliveries racing with compaction losing nothing, the set of
 * accounts due for the server's pass, and the [store] keys. */
#include "store/store.h"
#include "store/store_imap.h"
#include "store/store_int.h"
#include "core/config.h"
#include "core/xalloc.h"
#include "store_tests.h"
#include "test.h"
#include "test_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCT "compact@example.test"
#define PER 8        /* messages per batch: one pack each */
#define MSGLEN 900   /* bytes per message; 8 fill a pack of 8000 */
#define PACKMAX 8000

static long long ix_int(const char *dir, const char *sql)
{
    return test_index_int(dir, ACCT, sql);
}

static char *pack_path(const char *dir, int seq)
{
    return test_pack_path(dir, ACCT, seq);
}

/* The bytes of message N (1-based UID order of delivery): MSGLEN bytes
 * that differ per message, NULs and bare CR/LF included. */
static void msg_bytes(int n, char *out)
{
    int h = snprintf(out, MSGLEN, "Subject: compact %d\r\n\r\n", n);
    for (int k = h; k < MSGLEN; k++)
        out[k] = (char)((k * 7 + n * 13) % 256);
}

static int read_is(const char *dir, const char *mailbox, uint32_t uid, int n)
{
    char want[MSGLEN];
    msg_bytes(n, want);
    return test_store_read_is(dir, ACCT, mailbox, uid, want, MSGLEN);
}

/* Delivers messages FIRST..FIRST+PER-1 (queue ids C<n>) as one batch. */
static int deliver_batch(const char *dir, int first)
{
    char data[PER][MSGLEN];
    char qid[PER][24];
    struct store_batch_item it[PER];
    for (int i = 0; i < PER; i++) {
        msg_bytes(first + i, data[i]);
        snprintf(qid[i], sizeof qid[i], "C%d", first + i);
        it[i] = (struct store_batch_item){ .mailbox = "INBOX", .queue_id = qid[i],
                                           .data = data[i], .len = MSGLEN,
                                           .internaldate = 1700000000 + first + i };
    }
    const char *err = NULL;
    if (store_deliver_batch(dir, ACCT, it, PER, &err) < 0)
        return -1;
    for (int i = 0; i < PER; i++)
        if (it[i].result != 0)
            return -1;
    return 0;
}

/* NB batches: packs 1..NB, the last active; UID n holds message n. */
static void fill(const char *dir, int nb)
{
    store_pack_limit_set(PACKMAX);
    for (int b = 0; b < nb; b++)
        test_assert(deliver_batch(dir, b * PER + 1) == 0);
    test_assert(ix_int(dir, "SELECT active FROM pack_state") == nb);
}

/* Expunges every UID of packs 1..NP except the first of each. */
static void expunge_most(const char *dir, int np)
{
    uint32_t uids[64];
    int n = 0;
    for (int p = 0; p < np; p++)
        for (int i = 1; i < PER; i++)
            uids[n++] = (uint32_t)(p * PER + i + 1);
    const char *err = NULL;
    test_assert(store_expunge(dir, ACCT, "INBOX", uids, n, &err) == 0);
}

static int compact(const char *dir, struct store_compact_stats *st)
{
    const char *err = NULL;
    return store_compact_account(dir, ACCT, st, &err);
}

static long long rows_in(const char *dir, int seq)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE file = 'msg/pack/%016x'",
             seq);
    return ix_int(dir, sql);
}

void test_compact_rewrite_retire_remove(void)
{
    test_begin("compact: survivors byte-identical, usage kept, retire then remove after grace");
    const char *dir = test_tmpdir();
    fill(dir, 6);   /* packs 1..6, 6 active */
    expunge_most(dir, 4);   /* packs 1..4 keep one message of 8 each */
    struct store_usage before, after;
    const char *err = NULL;
    test_assert(store_usage_get(dir, ACCT, &before, &err) == 0);
    test_assert(before.messages == 6 * PER - 4 * (PER - 1));
    char *p[8];
    for (int i = 1; i < 8; i++)
        p[i] = pack_path(dir, i);
    struct stat p6a;
    test_assert(stat(p[6], &p6a) == 0);

    store_compact_grace_set(-1);   /* the default hour */
    struct store_compact_stats st;
    test_assert(compact(dir, &st) == 0);
    test_assert(st.packs_rewritten == 4);
    test_assert(st.messages_moved == 4);
    test_assert(st.bytes_copied == 4 * MSGLEN);
    test_assert(st.packs_emptied == 0);
    test_assert(st.packs_removed == 0);
    test_assert(st.packs_waiting == 4);
    test_assert(st.bytes_retired == 4 * PER * MSGLEN);
    /* no row names packs 1..4; they stay on disk, retired */
    for (int i = 1; i <= 4; i++) {
        test_assert(rows_in(dir, i) == 0);
        test_assert(test_path_exists(p[i]));
    }
    test_assert(ix_int(dir, "SELECT count(*) FROM pack_retired") == 4);
    /* pack 5 (all live) and the active pack 6 keep their rows and bytes; the
     * copies went to pack 7 (6 was full: the delivery path's rotation) */
    test_assert(rows_in(dir, 5) == PER && rows_in(dir, 6) == PER);
    struct stat p6b;
    test_assert(stat(p[6], &p6b) == 0 && p6b.st_size == p6a.st_size);
    test_assert(ix_int(dir, "SELECT active FROM pack_state") == 7);
    test_assert(rows_in(dir, 7) == 4);
    /* every survivor reads back through the normal path */
    for (int pk = 0; pk < 4; pk++)
        test_assert(read_is(dir, "INBOX", (uint32_t)(pk * PER + 1), pk * PER + 1));
    for (int n = 4 * PER + 1; n <= 6 * PER; n++)
        test_assert(read_is(dir, "INBOX", (uint32_t)n, n));
    test_assert(store_usage_get(dir, ACCT, &after, &err) == 0);
    test_assert(after.bytes == before.bytes && after.messages == before.messages);

    /* a second pass inside the grace: nothing removed, nothing rewritten */
    test_assert(compact(dir, &st) == 0);
    test_assert(st.packs_rewritten == 0 && st.packs_removed == 0 && st.packs_waiting == 4);
    for (int i = 1; i <= 4; i++)
        test_assert(test_path_exists(p[i]));

    /* past the grace: the retired packs go */
    store_compact_grace_set(0);
    test_assert(compact(dir, &st) == 0);
    test_assert(st.packs_removed == 4);
    test_assert(st.bytes_freed == 4 * PER * MSGLEN);
    test_assert(st.packs_waiting == 0);
    for (int i = 1; i <= 4; i++)
        test_assert(!test_path_exists(p[i]));
    test_assert(test_path_exists(p[5]) && test_path_exists(p[6]) && test_path_exists(p[7]));
    test_assert(ix_int(dir, "SELECT count(*) FROM pack_retired") == 0);
    for (int pk = 0; pk < 4; pk++)
        test_assert(read_is(dir, "INBOX", (uint32_t)(pk * PER + 1), pk * PER + 1));
    test_assert(store_usage_get(dir, ACCT, &after, &err) == 0);
    test_assert(after.bytes == before.bytes && after.messages == before.messages);
    /* and the new pack takes deliveries as usual */
    test_assert(deliver_batch(dir, 6 * PER + 1) == 0);
    test_assert(read_is(dir, "INBOX", 6 * PER + 1, 6 * PER + 1));
    for (int i = 1; i < 8; i++)
        free(p[i]);
    store_compact_grace_set(-1);
    store_pack_limit_set(0);
    test_end();
}

/* store_list callback: remembers UID 1's row. */
static void grab_uid1(const struct store_msg_info *m, void *arg)
{
    if (m->uid == 1)
        *(struct store_msg_info *)arg = *m;
}

void test_compact_reader_grace(void)
{
    test_begin("compact: a POP3 snapshot and a looked-up row read the old pack in the grace;"
               " no pack goes while a POP3 session is open");
    const char *dir = test_tmpdir();
    fill(dir, 3);
    expunge_most(dir, 1);
    struct store_pop *pop = NULL;
    const char *err = NULL;
    test_assert(store_pop_open(dir, ACCT, 0, &pop, &err) == 0);
    const struct store_pop_msg *pm = store_pop_msg(pop, 0);
    test_assert(pm && pm->uid == 1 && pm->offset != STORE_WHOLE_FILE);
    static struct store_msg_info info;
    memset(&info, 0, sizeof info);
    test_assert(store_list(dir, ACCT, "INBOX", grab_uid1, &info) == 0 && info.uid == 1);

    store_compact_grace_set(3600);
    struct store_compact_stats st;
    test_assert(compact(dir, &st) == 0 && st.packs_rewritten == 1);
    char want[MSGLEN];
    msg_bytes(1, want);
    /* the old (pack, offset): still the same bytes */
    char *data = NULL;
    size_t len = 0;
    test_assert(store_msg_read(pm->path, pm->offset, pm->size, 1 << 20, &data, &len) == 0);
    test_assert_memeq(data, len, want, MSGLEN);
    free(data);
    struct store_msg_map map;
    test_assert(store_msg_map(info.path, info.offset, info.size, &map) == 0);
    test_assert_memeq(map.data, map.len, want, MSGLEN);
    store_msg_unmap(&map);
    /* a fresh lookup names the new place */
    struct store_msg_info now;
    memset(&now, 0, sizeof now);
    test_assert(store_list(dir, ACCT, "INBOX", grab_uid1, &now) == 0);
    test_assert(strcmp(now.path, info.path) != 0);
    test_assert(read_is(dir, "INBOX", 1, 1));

    /* past the grace, but the POP3 session is still open: the pack stays */
    store_compact_grace_set(0);
    test_assert(compact(dir, &st) == 0 && st.packs_removed == 0 && st.removal_postponed &&
                st.packs_waiting == 1);
    test_assert(store_msg_read(pm->path, pm->offset, pm->size, 1 << 20, &data, &len) == 0);
    test_assert_memeq(data, len, want, MSGLEN);
    free(data);
    store_pop_close(&pop);

    /* once it ended the old pack goes: a stale reader sees "expunged" */
    test_assert(compact(dir, &st) == 0 && st.packs_removed == 1 && !st.removal_postponed);
    errno = 0;
    test_assert(store_msg_read(info.path, info.offset, info.size, 1 << 20, &data, &len) < 0 &&
                errno == ENOENT);
    test_assert(read_is(dir, "INBOX", 1, 1));
    store_compact_grace_set(-1);
    store_pack_limit_set(0);
    test_end();
}

void test_compact_copies_and_orphans(void)
{
    test_begin("compact: COPY twins moved once; a pack no row names retired; threshold");
    const char *dir = test_tmpdir();
    fill(dir, 4);
    expunge_most(dir, 1);   /* pack 1: UID 1 left */
    /* COPY UID 1 to Archive: two rows, one (pack, offset) */
    uint32_t one = 1, *src = NULL, *dst = NULL, nc = 0, uv = 0;
    const char *err = NULL;
    test_assert(store_copy(dir, ACCT, "INBOX", "Archive", &one, 1, 0, 0, &src, &dst, &nc, &uv,
                           &err) == 0 &&
                nc == 1);
    uint32_t arch = dst[0];
    free(src);
    free(dst);
    /* pack 2: 4 of 8 gone (exactly half live: not below the threshold) */
    uint32_t half[4] = { 9, 10, 11, 12 };
    test_assert(store_expunge(dir, ACCT, "INBOX", half, 4, &err) == 0);
    /* pack 3: everything gone, so expunge unlinked it; a file left behind
     * (as a crash between a COMMIT and the unlink leaves it) */
    uint32_t all3[PER];
    for (int i = 0; i < PER; i++)
        all3[i] = (uint32_t)(2 * PER + i + 1);
    test_assert(store_expunge(dir, ACCT, "INBOX", all3, PER, &err) == 0);
    char *p3 = pack_path(dir, 3);
    test_assert(!test_path_exists(p3));
    int fd = open(p3, O_WRONLY | O_CREAT | O_EXCL, 0600);
    test_assert(fd >= 0 && write(fd, "orphan bytes", 12) == 12);
    close(fd);

    store_compact_grace_set(3600);
    struct store_compact_stats st;
    test_assert(compact(dir, &st) == 0);
    test_assert(st.packs_rewritten == 1 && st.messages_moved == 1);
    test_assert(st.bytes_copied == MSGLEN);   /* the twins share their bytes */
    test_assert(st.packs_emptied == 1);
    test_assert(rows_in(dir, 1) == 0 && rows_in(dir, 2) == PER - 4);
    /* pack 4 was active and full: the copy went to pack 5, one copy of
     * the bytes for both rows */
    test_assert(rows_in(dir, 5) == 2);
    test_assert(ix_int(dir, "SELECT count(DISTINCT offset) FROM messages"
                            " WHERE file = 'msg/pack/0000000000000005'") == 1);
    test_assert(ix_int(dir, "SELECT count(*) FROM messages WHERE offset ="
                            " (SELECT offset FROM messages WHERE uid = 1 AND mailbox_id ="
                            " (SELECT id FROM mailboxes WHERE name = 'INBOX'))"
                            " AND file = (SELECT file FROM messages WHERE uid = 1 AND"
                            " mailbox_id = (SELECT id FROM mailboxes WHERE name = 'INBOX'))") ==
                2);
    test_assert(read_is(dir, "INBOX", 1, 1));
    test_assert(read_is(dir, "Archive", arch, 1));
    for (int n = 13; n <= 16; n++)
        test_assert(read_is(dir, "INBOX", (uint32_t)n, n));
    store_compact_grace_set(0);
    test_assert(compact(dir, &st) == 0 && st.packs_removed == 2);
    test_assert(!test_path_exists(p3));
    test_assert(read_is(dir, "Archive", arch, 1));
    free(p3);
    store_compact_grace_set(-1);
    store_pack_limit_set(0);
    test_end();
}

void test_compact_crash_before_commit(void)
{
    test_begin("compact: a crash between the copy and the commit leaves every row valid");
    const char *dir = test_tmpdir();
    fill(dir, 3);
    expunge_most(dir, 2);
    char *p4 = pack_path(dir, 4);
    store_compact_abort_set(1);
    struct store_compact_stats st;
    test_assert(compact(dir, &st) < 0);
    store_compact_abort_set(0);
    test_assert(st.packs_rewritten == 0);
    /* rows unchanged, nothing retired, the copied bytes sit unreferenced in
     * the pack the copy went to */
    test_assert(rows_in(dir, 1) == 1 && rows_in(dir, 2) == 1 && rows_in(dir, 3) == PER);
    test_assert(ix_int(dir, "SELECT count(*) FROM pack_retired") == 0);
    struct stat sb;
    test_assert(stat(p4, &sb) == 0 && sb.st_size >= MSGLEN && rows_in(dir, 4) == 0);
    test_assert(read_is(dir, "INBOX", 1, 1) && read_is(dir, "INBOX", PER + 1, PER + 1));
    /* the next pass does the work; the tail stays unread */
    test_assert(compact(dir, &st) == 0 && st.packs_rewritten == 2);
    test_assert(read_is(dir, "INBOX", 1, 1) && read_is(dir, "INBOX", PER + 1, PER + 1));
    test_assert(ix_int(dir, "SELECT min(offset) FROM messages WHERE file ="
                            " 'msg/pack/0000000000000004'") >= (long long)sb.st_size);
    test_assert(deliver_batch(dir, 3 * PER + 1) == 0);
    for (int n = 3 * PER + 1; n <= 4 * PER; n++)
        test_assert(read_is(dir, "INBOX", (uint32_t)n, n));
    free(p4);
    store_pack_limit_set(0);
    test_end();
}

struct race {
    const char *dir;
    int batches;
    int failures;
    volatile int done;
};

static void *race_deliver(void *arg)
{
    struct race *r = arg;
    for (int b = 0; b < r->batches; b++)
        if (deliver_batch(r->dir, 1000 + b * PER) < 0)
            r->failures++;
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *race_compact(void *arg)
{
    struct race *r = arg;
    int passes = 0;
    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) || passes < 2) {
        struct store_compact_stats st;
        const char *err = NULL;
        if (store_compact_account(r->dir, ACCT, &st, &err) < 0)
            r->failures++;
        passes++;
    }
    return NULL;
}

void test_compact_races_delivery(void)
{
    test_begin("compact: deliveries racing with compaction lose nothing");
    const char *dir = test_tmpdir();
    fill(dir, 6);
    expunge_most(dir, 5);
    store_compact_grace_set(0);
    struct race rd = { dir, 24, 0, 0 }, rc = { dir, 0, 0, 0 };
    pthread_t td, tc;
    test_assert(pthread_create(&tc, NULL, race_compact, &rc) == 0);
    test_assert(pthread_create(&td, NULL, race_deliver, &rd) == 0);
    pthread_join(td, NULL);
    __atomic_store_n(&rc.done, 1, __ATOMIC_RELEASE);
    pthread_join(tc, NULL);
    test_assert(rd.failures == 0 && rc.failures == 0);
    /* the survivors of the fill and every raced delivery, byte for byte */
    for (int pk = 0; pk < 5; pk++)
        test_assert(read_is(dir, "INBOX", (uint32_t)(pk * PER + 1), pk * PER + 1));
    for (int n = 5 * PER + 1; n <= 6 * PER; n++)
        test_assert(read_is(dir, "INBOX", (uint32_t)n, n));
    for (int b = 0; b < rd.batches; b++)
        for (int i = 0; i < PER; i++) {
            uint32_t uid = (uint32_t)(6 * PER + b * PER + i + 1);
            test_assert(read_is(dir, "INBOX", uid, 1000 + b * PER + i));
        }
    test_assert(ix_int(dir, "SELECT count(*) FROM messages") == 5 + PER + rd.batches * PER);
    /* a last pass leaves no pack worth compacting, and removes what is retired */
    struct store_compact_stats st;
    test_assert(compact(dir, &st) == 0 && compact(dir, &st) == 0);
    test_assert(st.packs_rewritten == 0 && st.packs_waiting == 0);
    store_compact_grace_set(-1);
    store_pack_limit_set(0);
    test_end();
}

void test_compact_no_store(void)
{
    test_begin("compact: an account without a store, a bad name");
    const char *dir = test_tmpdir();
    struct store_compact_stats st;
    const char *err = NULL;
    test_assert(store_compact_account(dir, "nobody@example.test", &st, &err) == 1);
    test_assert(store_compact_account(dir, "../x", &st, &err) < 0);
    test_end();
}

void test_compact_due_set(void)
{
    test_begin("compact: accounts become due on a partial expunge, a rotation, waiting packs");
    const char *dir = test_tmpdir();
    size_t n;
    int all;
    char **names = store_compact_due_take(&n, &all);   /* empty whatever came before */
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    fill(dir, 2);   /* off: nothing recorded */
    names = store_compact_due_take(&n, &all);
    test_assert(n == 0 && !all && names == NULL);

    store_compact_due_enable(1);
    /* a rotation away from a pack that holds mail */
    test_assert(deliver_batch(dir, 2 * PER + 1) == 0);
    names = store_compact_due_take(&n, &all);
    test_assert(n == 1 && !all && names && strcmp(names[0], ACCT) == 0);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    /* an expunge that leaves a pack partly live; twice: recorded once */
    uint32_t a[2] = { 1, 2 };
    const char *err = NULL;
    test_assert(store_expunge(dir, ACCT, "INBOX", a, 1, &err) == 0);
    test_assert(store_expunge(dir, ACCT, "INBOX", a + 1, 1, &err) == 0);
    names = store_compact_due_take(&n, &all);
    test_assert(n == 1 && names && strcmp(names[0], ACCT) == 0);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    names = store_compact_due_take(&n, &all);
    test_assert(n == 0 && names == NULL);
    /* overflow: "every account" */
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "a%d@example.test", i);
        store_compact_due_add(name);
    }
    names = store_compact_due_take(&n, &all);
    test_assert(all == 1 && n == 4096);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    store_compact_due_enable(0);
    store_compact_due_add("x@example.test");
    names = store_compact_due_take(&n, &all);
    test_assert(n == 0 && !all);
    store_pack_limit_set(0);
    test_end();
}

void test_compact_config(void)
{
    test_begin("compact: [store] compact_interval and compact_grace");
    struct config c;
    char *err = NULL;
    test_assert(config_load_string("", "e.conf", &c, &err) == 0);
    test_assert(c.compact_interval == 3600 && c.compact_grace == 3600);
    config_free(&c);
    test_assert(config_load_string("[store]\ncompact_interval = 10m\ncompact_grace = 0\n",
                                   "s.conf", &c, &err) == 0);
    test_assert(c.compact_interval == 600 && c.compact_grace == 0);
    config_free(&c);
    test_assert(config_load_string("[store]\ncompact_interval = soon\ncompact_grace = 31d\n"
                                   "bogus = 1\n",
                                   "b.conf", &c, &err) < 0);
    test_assert(err && strstr(err, "b.conf:2: compact_interval") &&
                strstr(err, "b.conf:3: compact_grace") &&
                strstr(err, "b.conf:4: unknown key 'bogus' in [store]"));
    free(err);
    config_free(&c);
    test_end();
}
