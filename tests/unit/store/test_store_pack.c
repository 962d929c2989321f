/* test_store_pack: delivered mail in pack files (src/store/store_batch.c,
 * store_pack.c, store_msgfile.c): a batch of 300 read back byte for byte
 * through every reader (store_read, the IMAP row and mapping, the POP3
 * snapshot, the cached read); duplicates across batches and inside one; a
 * missing mailbox; UID and MODSEQ growth; rotation; unlinking a pack no row
 * uses (never the active one); COPY of a pack row; a crash tail in the
 * pack; a version-4 index of whole files migrated; concurrent batches,
 * rotations and expunges; and a timing of batched against one-by-one
 * delivery (printed, not asserted). */
#include "store/store.h"
#include "store/store_cached.h"
#include "store/store_imap.h"
#include "store/store_int.h"
#include "imap/imap_fetch.h"
#include "core/xalloc.h"
#include "store_tests.h"
#include "test.h"
#include "test_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACCT "pack@example.test"
#define BATCH 300

/* Message I: a header, then a body of a size and bytes that depend on I
 * (NULs, bare CR/LF included). malloc'd. */
static char *make_msg(int i, size_t *len_r)
{
    size_t body = (size_t)(i * 37 % 2000) + (i % 7 == 0 ? 70000 : 0);
    char head[128];
    int h = snprintf(head, sizeof head, "Subject: pack %d\r\nFrom: a@b.test\r\n\r\n", i);
    char *m = xmalloc((size_t)h + body + 1);
    memcpy(m, head, (size_t)h);
    for (size_t k = 0; k < body; k++)
        m[h + k] = (char)((k * 131 + (size_t)i) % 251);
    *len_r = (size_t)h + body;
    m[*len_r] = '\0';
    return m;
}

static long long ix_int(const char *dir, const char *sql)
{
    return test_index_int(dir, ACCT, sql);
}

static int ix_exec(const char *dir, const char *sql)
{
    return test_index_exec(dir, ACCT, sql);
}

static char *pack_path(const char *dir, int seq)
{
    return test_pack_path(dir, ACCT, seq);
}

static int read_is(const char *dir, const char *mailbox, uint32_t uid, const char *want,
                   size_t wlen)
{
    return test_store_read_is(dir, ACCT, mailbox, uid, want, wlen);
}

/* Delivers messages FIRST..FIRST+N-1 (queue ids P<i>) into INBOX. */
static int put_batch(const char *dir, int first, int n, char **msgs, size_t *lens,
                     struct store_batch_item *it)
{
    char (*qid)[24] = xcalloc((size_t)n, sizeof *qid);
    for (int i = 0; i < n; i++) {
        snprintf(qid[i], sizeof qid[i], "P%d", first + i);
        msgs[i] = make_msg(first + i, &lens[i]);
        it[i] = (struct store_batch_item){ .mailbox = "INBOX", .queue_id = qid[i],
                                           .data = msgs[i], .len = lens[i],
                                           .internaldate = 1700000000 + first + i };
    }
    const char *err = NULL;
    int rc = store_deliver_batch(dir, ACCT, it, n, &err);
    free(qid);   /* the items' queue ids are not used after the call */
    for (int i = 0; i < n; i++)
        it[i].queue_id = NULL;
    return rc;
}

void test_pack_batch_read_back(void)
{
    test_begin("pack: a batch of 300 read back by store_read, IMAP rows, POP3, cached read");
    const char *dir = test_tmpdir();
    char *msgs[BATCH];
    size_t lens[BATCH];
    struct store_batch_item *it = xcalloc(BATCH, sizeof *it);
    test_assert(put_batch(dir, 0, BATCH, msgs, lens, it) == 0);
    for (int i = 0; i < BATCH; i++)
        test_assert(it[i].result == 0 && !it[i].duplicate && it[i].uid == (uint32_t)i + 1);
    for (int i = 0; i < BATCH; i++)
        test_assert(read_is(dir, "INBOX", (uint32_t)i + 1, msgs[i], lens[i]));
    /* one pack, no whole files */
    char *p1 = pack_path(dir, 1);
    test_assert(test_path_exists(p1));
    test_assert(ix_int(dir, "SELECT count(*) FROM messages WHERE offset IS NULL") == 0);
    test_assert(ix_int(dir, "SELECT count(DISTINCT file) FROM messages") == 1);
    test_assert(ix_int(dir, "SELECT active FROM pack_state") == 1);
    test_assert(ix_int(dir, "SELECT count(*) FROM deliveries") == BATCH);

    /* the IMAP path: rows with path + offset, mapped by imap_msg_load */
    uint32_t *uids = xcalloc(BATCH, sizeof *uids);
    for (int i = 0; i < BATCH; i++)
        uids[i] = (uint32_t)i + 1;
    struct store_fmsg *rows = NULL;
    uint32_t nrows = 0;
    const char *err = NULL;
    test_assert(store_fetch_rows(dir, ACCT, "INBOX", uids, BATCH, &rows, &nrows, &err) == 0);
    test_assert(nrows == BATCH);
    for (uint32_t i = 0; i < nrows; i++) {
        struct imap_msg_ctx m = { .seq = i + 1, .row = &rows[i] };
        test_assert(rows[i].offset >= 0 && rows[i].size == lens[i]);
        test_assert(rows[i].envelope != NULL && rows[i].header != NULL);
        test_assert(imap_msg_load(&m) == 0);
        test_assert_memeq(m.data, m.len, msgs[i], lens[i]);
        imap_msg_release(&m);
    }
    store_fmsgs_free(rows, nrows);

    /* the POP3 path: the snapshot, store_msg_open/read, the cached read */
    struct store_pop *p = NULL;
    test_assert(store_pop_open(dir, ACCT, 0, &p, &err) == 0);
    test_assert(store_pop_count(p) == BATCH);
    static char buf[128 * 1024];
    int cached_ok = 0;
    for (int i = 0; i < BATCH && p; i++) {
        const struct store_pop_msg *m = store_pop_msg(p, i);
        test_assert(m->size == lens[i] && m->offset >= 0);
        char *data = NULL;
        size_t len = 0;
        test_assert(store_msg_read(m->path, m->offset, m->size, SIZE_MAX, &data, &len) == 0);
        test_assert_memeq(data, len, msgs[i], lens[i]);
        free(data);
        ssize_t n = store_read_cached(m->path, m->offset, m->size, buf, sizeof buf);
        if (n >= 0) {
            test_assert_memeq(buf, (size_t)n, msgs[i], lens[i]);
            cached_ok++;
        } else {
            test_assert(errno == ENOSYS || errno == EAGAIN || errno == EFBIG);
        }
        errno = 0;
        test_assert(store_read_cached(m->path, m->offset, m->size, buf, m->size - 1) == -1 &&
                    (errno == EFBIG || errno == ENOSYS));
    }
    store_pop_close(&p);
    fprintf(stderr, "  (%d of %d read from the page cache)\n", cached_ok, BATCH);
    /* a range past the end of the pack is an error, not a short message */
    struct stat st;
    test_assert(stat(p1, &st) == 0);
    char *data = NULL;
    size_t len = 0;
    errno = 0;
    test_assert(store_msg_read(p1, st.st_size - 4, 5, SIZE_MAX, &data, &len) == -1 &&
                errno == EIO);
    test_assert(store_msg_read(p1, st.st_size - 4, 4, SIZE_MAX, &data, &len) == 0 && len == 4);
    free(data);

    free(p1);
    free(uids);
    for (int i = 0; i < BATCH; i++)
        free(msgs[i]);
    free(it);
    test_end();
}

void test_pack_duplicates(void)
{
    test_begin("pack: duplicates by queue id across batches and inside one batch");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    struct store_batch_item a[2] = {
        { .mailbox = "INBOX", .queue_id = "Q1", .data = "one", .len = 3 },
        { .mailbox = "INBOX", .queue_id = "Q2", .data = "two", .len = 3 },
    };
    test_assert(store_deliver_batch(dir, ACCT, a, 2, &err) == 0);
    test_assert(a[0].uid == 1 && a[1].uid == 2 && !a[0].duplicate && !a[1].duplicate);
    struct store_batch_item b[5] = {
        { .mailbox = "INBOX", .queue_id = "Q2", .data = "TWO", .len = 3 },
        { .mailbox = "INBOX", .queue_id = "Q3", .data = "three", .len = 5 },
        { .mailbox = "INBOX", .queue_id = "Q3", .data = "THREE", .len = 5 },
        { .mailbox = "INBOX", .queue_id = NULL, .data = "noqid", .len = 5 },
        { .mailbox = "INBOX", .queue_id = "", .data = "emptyqid", .len = 8 },
    };
    test_assert(store_deliver_batch(dir, ACCT, b, 5, &err) == 0);
    test_assert(b[0].result == 0 && b[0].duplicate && b[0].uid == 2);
    test_assert(b[1].result == 0 && !b[1].duplicate && b[1].uid == 3);
    test_assert(b[2].result == 0 && b[2].duplicate && b[2].uid == 3);
    test_assert(b[3].result == 0 && !b[3].duplicate && b[3].uid == 4);
    test_assert(b[4].result == 0 && !b[4].duplicate && b[4].uid == 5);
    test_assert(read_is(dir, "INBOX", 2, "two", 3));
    test_assert(read_is(dir, "INBOX", 3, "three", 5));
    test_assert(ix_int(dir, "SELECT count(*) FROM messages") == 5);
    test_assert(ix_int(dir, "SELECT count(*) FROM deliveries") == 3);
    /* a batch of nothing but duplicates writes nothing */
    char *p1 = pack_path(dir, 1);
    struct stat st0, st1;
    test_assert(stat(p1, &st0) == 0);
    struct store_batch_item c[2] = {
        { .mailbox = "INBOX", .queue_id = "Q1", .data = "x", .len = 1 },
        { .mailbox = "INBOX", .queue_id = "Q3", .data = "y", .len = 1 },
    };
    test_assert(store_deliver_batch(dir, ACCT, c, 2, &err) == 0);
    test_assert(c[0].duplicate && c[0].uid == 1 && c[1].duplicate && c[1].uid == 3);
    test_assert(stat(p1, &st1) == 0 && st1.st_size == st0.st_size);
    /* store_deliver is a batch of one */
    uint32_t uid = 0;
    int dup = 0;
    test_assert(store_deliver(dir, ACCT, "INBOX", "Q3", "z", 1, 0, &uid, &dup, &err) == 0);
    test_assert(dup == 1 && uid == 3);
    test_assert(store_deliver(dir, ACCT, "INBOX", "Q4", "four", 4, 0, &uid, &dup, &err) == 0);
    test_assert(dup == 0 && uid == 6 && read_is(dir, "INBOX", 6, "four", 4));
    test_assert(store_deliver_batch(dir, ACCT, NULL, 0, &err) == 0);
    test_assert(store_deliver_batch(dir, ACCT, NULL, 1, &err) == -1);
    test_assert(store_deliver_batch(dir, "../x", c, 2, &err) == -1 && c[0].result == -1);
    free(p1);
    test_end();
}

void test_pack_missing_mailbox(void)
{
    test_begin("pack: items for a missing mailbox or with bad input fail alone");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    struct store_batch_item it[6] = {
        { .mailbox = "INBOX", .queue_id = "M1", .data = "a", .len = 1 },
        { .mailbox = "NoSuch", .queue_id = "M2", .data = "b", .len = 1 },
        { .mailbox = "Sent", .queue_id = "M3", .data = "c", .len = 1, .flags = "\\Seen" },
        { .mailbox = NULL, .queue_id = "M4", .data = "d", .len = 1 },
        { .mailbox = "inbox", .queue_id = "M5", .data = NULL, .len = 3 },
        { .mailbox = "inbox", .queue_id = "M6", .data = "f", .len = 1, .flags = "bad(kw" },
    };
    test_assert(store_deliver_batch(dir, ACCT, it, 6, &err) == 0);
    test_assert(it[0].result == 0 && it[0].uid == 1);
    test_assert(it[1].result == 1 && it[1].uid == 0);
    test_assert(it[2].result == 0 && it[2].uid == 1);
    test_assert(it[3].result == -1 && it[4].result == -1 && it[5].result == -1);
    test_assert(read_is(dir, "Sent", 1, "c", 1));
    test_assert(ix_int(dir, "SELECT count(*) FROM messages m JOIN mailboxes b ON"
                            " b.id = m.mailbox_id WHERE b.name = 'Sent'"
                            " AND m.flags = '\\Seen'") == 1);
    /* the failed queue ids were not recorded: a later retry stores them */
    test_assert(ix_int(dir, "SELECT count(*) FROM deliveries") == 2);
    uint32_t uid;
    int dup;
    test_assert(store_deliver(dir, ACCT, "INBOX", "M2", "b", 1, 0, &uid, &dup, &err) == 0);
    test_assert(uid == 2 && !dup);
    err = NULL;
    test_assert(store_deliver(dir, ACCT, "NoSuch", "M7", "b", 1, 0, &uid, &dup, &err) == -1);
    test_assert_streq(err, "no such mailbox");
    test_end();
}

void test_pack_uid_modseq(void)
{
    test_begin("pack: UIDs and MODSEQs grow across batches and mailboxes");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int round = 0; round < 3; round++) {
        struct store_batch_item it[4];
        for (int i = 0; i < 4; i++)
            it[i] = (struct store_batch_item){ .mailbox = i % 2 ? "Archive" : "INBOX",
                                               .data = "m", .len = 1 };
        test_assert(store_deliver_batch(dir, ACCT, it, 4, &err) == 0);
        test_assert(it[0].uid == (uint32_t)round * 2 + 1 && it[2].uid == it[0].uid + 1);
        test_assert(it[1].uid == (uint32_t)round * 2 + 1 && it[3].uid == it[1].uid + 1);
    }
    test_assert(ix_int(dir, "SELECT uidnext FROM mailboxes WHERE name = 'INBOX'") == 7);
    test_assert(ix_int(dir, "SELECT uidnext FROM mailboxes WHERE name = 'Archive'") == 7);
    /* one MODSEQ per batch and mailbox, growing; the mailbox's highest the last */
    test_assert(ix_int(dir, "SELECT count(DISTINCT modseq) FROM messages m JOIN mailboxes b"
                            " ON b.id = m.mailbox_id WHERE b.name = 'INBOX'") == 3);
    test_assert(ix_int(dir, "SELECT highestmodseq FROM mailboxes WHERE name = 'INBOX'") ==
                ix_int(dir, "SELECT max(modseq) FROM messages m JOIN mailboxes b"
                            " ON b.id = m.mailbox_id WHERE b.name = 'INBOX'"));
    test_assert(ix_int(dir, "SELECT count(*) FROM messages a JOIN messages b ON"
                            " a.mailbox_id = b.mailbox_id AND a.uid < b.uid"
                            " AND a.modseq > b.modseq") == 0);
    test_assert(ix_int(dir, "SELECT count(*) FROM messages a JOIN messages b ON"
                            " a.mailbox_id = b.mailbox_id AND a.uid + 2 = b.uid"
                            " AND a.modseq >= b.modseq") == 0);
    test_assert(ix_int(dir, "SELECT messages FROM usage") == 12);
    test_end();
}

void test_pack_rotation_and_unlink(void)
{
    test_begin("pack: rotation; a pack goes when no row uses it, never the active one");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    store_pack_limit_set(8000);
    char *msgs[8];
    size_t lens[8];
    struct store_batch_item it[8];
    /* ~1 KiB each: 8 a batch fit a pack of 8000 bytes */
    int first = 0;
    for (int b = 0; b < 3; b++) {
        char (*qid)[16] = xcalloc(8, sizeof *qid);
        for (int i = 0; i < 8; i++) {
            snprintf(qid[i], sizeof qid[i], "R%d", first + i);
            lens[i] = 900;
            msgs[i] = xmalloc(lens[i]);
            memset(msgs[i], 'a' + b, lens[i]);
            it[i] = (struct store_batch_item){ .mailbox = "INBOX", .queue_id = qid[i],
                                               .data = msgs[i], .len = lens[i] };
        }
        test_assert(store_deliver_batch(dir, ACCT, it, 8, &err) == 0);
        for (int i = 0; i < 8; i++) {
            test_assert(it[i].result == 0 && it[i].uid == (uint32_t)(first + i + 1));
            free(msgs[i]);
        }
        free(qid);
        first += 8;
    }
    /* three batches of 7200 bytes: three packs, the last active */
    char *p1 = pack_path(dir, 1), *p2 = pack_path(dir, 2), *p3 = pack_path(dir, 3);
    test_assert(test_path_exists(p1) && test_path_exists(p2) && test_path_exists(p3));
    test_assert(ix_int(dir, "SELECT active FROM pack_state") == 3);
    test_assert(ix_int(dir, "SELECT count(*) FROM messages WHERE file ="
                            " 'msg/pack/0000000000000002'") == 8);
    char want[900];
    memset(want, 'b', sizeof want);
    test_assert(read_is(dir, "INBOX", 9, want, sizeof want));
    test_assert(read_is(dir, "INBOX", 16, want, sizeof want));

    /* all but one message of pack 1: it stays; then the last one: gone */
    uint32_t some[7] = { 1, 2, 3, 4, 5, 6, 7 };
    test_assert(store_expunge(dir, ACCT, "INBOX", some, 7, &err) == 0);
    test_assert(test_path_exists(p1));
    uint32_t last[1] = { 8 };
    test_assert(store_expunge(dir, ACCT, "INBOX", last, 1, &err) == 0);
    test_assert(!test_path_exists(p1));
    /* every message of the active pack: it stays (deliveries append to it) */
    uint32_t act[8] = { 17, 18, 19, 20, 21, 22, 23, 24 };
    test_assert(store_expunge(dir, ACCT, "INBOX", act, 8, &err) == 0);
    test_assert(test_path_exists(p3));
    /* the IMAP expunge path (\Deleted + EXPUNGE) unlinks pack 2 */
    uint32_t two[8] = { 9, 10, 11, 12, 13, 14, 15, 16 };
    struct store_flag_result *res = NULL;
    uint32_t nres = 0;
    test_assert(store_set_flags(dir, ACCT, "INBOX", two, 8, STORE_FLAGS_ADD, STORE_F_DELETED,
                                NULL, 0, 0, &res, &nres, &err) == 0);
    store_flag_results_free(res, nres);
    uint32_t *exp = NULL, nexp = 0;
    uint64_t modseq = 0;
    test_assert(store_expunge_deleted(dir, ACCT, "INBOX", NULL, 0, &exp, &nexp, &modseq, &err) ==
                0);
    test_assert(nexp == 8);
    free(exp);
    test_assert(!test_path_exists(p2) && test_path_exists(p3));
    test_assert(ix_int(dir, "SELECT count(*) FROM messages") == 0);

    /* a mailbox deleted with the last rows of a pack takes the pack along */
    test_assert(store_mailbox_create(dir, ACCT, "Old", NULL, &err) == 0);
    store_pack_limit_set(20000);
    struct store_batch_item big[2] = {
        { .mailbox = "Old", .data = want, .len = sizeof want },
        { .mailbox = "Old", .data = want, .len = sizeof want },
    };
    test_assert(store_deliver_batch(dir, ACCT, big, 2, &err) == 0);  /* fits pack 3 */
    store_pack_limit_set(1000);
    struct store_batch_item next[1] = { { .mailbox = "INBOX", .data = "n", .len = 1 } };
    test_assert(store_deliver_batch(dir, ACCT, next, 1, &err) == 0);  /* rotates to 4 */
    char *p4 = pack_path(dir, 4);
    test_assert(test_path_exists(p3) && test_path_exists(p4));
    test_assert(store_mailbox_delete(dir, ACCT, "Old", &err) == 0);
    test_assert(!test_path_exists(p3) && test_path_exists(p4));
    test_assert(read_is(dir, "INBOX", 25, "n", 1));
    /* rotating away from a pack nothing uses any more unlinks it */
    uint32_t n25[1] = { 25 };
    test_assert(store_expunge(dir, ACCT, "INBOX", n25, 1, &err) == 0);
    test_assert(test_path_exists(p4));   /* active */
    store_pack_limit_set(1);
    struct store_batch_item again[1] = { { .mailbox = "INBOX", .data = want, .len = 900 } };
    test_assert(store_deliver_batch(dir, ACCT, again, 1, &err) == 0);  /* rotates to 5 */
    char *p5 = pack_path(dir, 5);
    test_assert(!test_path_exists(p4) && test_path_exists(p5));
    store_pack_limit_set(0);
    free(p1);
    free(p2);
    free(p3);
    free(p4);
    free(p5);
    test_end();
}

void test_pack_copy_then_expunge(void)
{
    test_begin("pack: COPY of a pack row shares its bytes; expunging the original keeps it");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    store_pack_limit_set(40);
    struct store_batch_item it[2] = {
        { .mailbox = "INBOX", .queue_id = "C1", .data = "Subject: c\r\n\r\ncopy me\r\n",
          .len = 23 },
        { .mailbox = "INBOX", .queue_id = "C2", .data = "Subject: d\r\n\r\nmove me\r\n",
          .len = 23 },
    };
    test_assert(store_deliver_batch(dir, ACCT, it, 2, &err) == 0);
    uint32_t uids[2] = { 1, 2 }, *src = NULL, *dst = NULL, n = 0, uv = 0;
    test_assert(store_copy(dir, ACCT, "INBOX", "Archive", uids, 1, 0, 0, &src, &dst, &n, &uv,
                           &err) == 0);
    test_assert(n == 1 && dst[0] == 1);
    free(src);
    free(dst);
    test_assert(store_copy(dir, ACCT, "INBOX", "Trash", uids + 1, 1, 1, 0, &src, &dst, &n, &uv,
                           &err) == 0);
    test_assert(n == 1 && dst[0] == 1);
    free(src);
    free(dst);
    test_assert(ix_int(dir, "SELECT count(DISTINCT file) FROM messages") == 1);
    /* pack 1 stops being active: the next delivery rotates past 40 bytes */
    struct store_batch_item more[1] = { { .mailbox = "INBOX", .data = "more", .len = 4 } };
    test_assert(store_deliver_batch(dir, ACCT, more, 1, &err) == 0);
    char *p1 = pack_path(dir, 1);
    test_assert(ix_int(dir, "SELECT active FROM pack_state") == 2);
    test_assert(store_expunge(dir, ACCT, "INBOX", uids, 1, &err) == 0);
    test_assert(test_path_exists(p1));
    test_assert(read_is(dir, "Archive", 1, it[0].data, it[0].len));
    test_assert(read_is(dir, "Trash", 1, it[1].data, it[1].len));
    uint32_t one[1] = { 1 };
    test_assert(store_expunge(dir, ACCT, "Archive", one, 1, &err) == 0);
    test_assert(test_path_exists(p1));   /* the moved message still uses it */
    test_assert(store_expunge(dir, ACCT, "Trash", one, 1, &err) == 0);
    test_assert(!test_path_exists(p1));
    test_assert(read_is(dir, "INBOX", 3, "more", 4));
    store_pack_limit_set(0);
    free(p1);
    test_end();
}

void test_pack_crash_tail(void)
{
    test_begin("pack: bytes a crash left at the end of a pack disturb nothing");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    struct store_batch_item a[1] = { { .mailbox = "INBOX", .data = "before", .len = 6 } };
    test_assert(store_deliver_batch(dir, ACCT, a, 1, &err) == 0);
    char *p1 = pack_path(dir, 1);
    int fd = open(p1, O_WRONLY | O_APPEND | O_CLOEXEC);
    test_assert(fd >= 0);
    test_assert(write(fd, "GARBAGE\0half a message", 22) == 22);
    close(fd);
    test_assert(read_is(dir, "INBOX", 1, "before", 6));
    struct store_batch_item b[2] = {
        { .mailbox = "INBOX", .queue_id = "T1", .data = "after", .len = 5 },
        { .mailbox = "INBOX", .queue_id = "T2", .data = "", .len = 0 },
    };
    test_assert(store_deliver_batch(dir, ACCT, b, 2, &err) == 0);
    test_assert(b[0].uid == 2 && b[1].uid == 3);
    test_assert(read_is(dir, "INBOX", 1, "before", 6));
    test_assert(read_is(dir, "INBOX", 2, "after", 5));
    test_assert(read_is(dir, "INBOX", 3, "", 0));
    test_assert(ix_int(dir, "SELECT offset FROM messages WHERE uid = 2") == 6 + 22);
    struct stat st;
    test_assert(stat(p1, &st) == 0 && st.st_size == 6 + 22 + 5);
    free(p1);
    test_end();
}

void test_pack_migrate_v4(void)
{
    test_begin("pack: a version-4 index of whole files is migrated and stays readable");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    uint32_t uid, uv;
    static const char m1[] = "Subject: old\r\n\r\nwhole file\r\n";
    static const char m2[] = "Subject: old2\r\n\r\nanother\r\n";
    test_assert(store_append(dir, ACCT, "INBOX", m1, sizeof m1 - 1, 0, NULL, 1000, 0, &uid, &uv,
                             &err) == 0 && uid == 1);
    test_assert(store_append(dir, ACCT, "INBOX", m2, sizeof m2 - 1, 0, NULL, 1000, 0, &uid, &uv,
                             &err) == 0 && uid == 2);
    test_assert(ix_exec(dir, "DROP INDEX messages_file; DROP TABLE pack_state;"
                             " DROP TABLE pack_retired;"
                             " ALTER TABLE messages DROP COLUMN offset;"
                             " UPDATE schema_version SET version = 4"));
    test_assert(ix_int(dir, "SELECT version FROM schema_version") == 4);
    test_assert(read_is(dir, "INBOX", 1, m1, sizeof m1 - 1));   /* migrates */
    test_assert(ix_int(dir, "SELECT version FROM schema_version") == 6);
    test_assert(ix_int(dir, "SELECT count(*) FROM messages WHERE offset IS NULL") == 2);
    /* a store made before packs has no msg/pack/ yet: the first delivery makes it */
    char *pdir = xasprintf("%s/mail/%s/msg/pack", dir, ACCT);
    rmdir(pdir);
    test_assert(!test_path_exists(pdir));
    int dup;
    test_assert(store_deliver(dir, ACCT, "INBOX", "N1", "new", 3, 0, &uid, &dup, &err) == 0);
    test_assert(uid == 3 && test_path_exists(pdir));
    test_assert(read_is(dir, "INBOX", 2, m2, sizeof m2 - 1));
    test_assert(read_is(dir, "INBOX", 3, "new", 3));
    /* whole files still go with their rows; copies of them are links */
    char *file = NULL;
    {
        char *path = xasprintf("%s/mail/%s/index.sqlite", dir, ACCT);
        sqlite3 *db = NULL;
        sqlite3_stmt *st;
        if (sqlite3_open(path, &db) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "SELECT file FROM messages WHERE uid = 1", -1, &st, NULL) ==
                SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                file = xasprintf("%s/mail/%s/%s", dir, ACCT, sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
        free(path);
    }
    test_assert(file && test_path_exists(file));
    uint32_t one[1] = { 1 }, *src = NULL, *dst = NULL, n = 0;
    test_assert(store_copy(dir, ACCT, "INBOX", "Archive", one, 1, 0, 0, &src, &dst, &n, &uv,
                           &err) == 0 && n == 1);
    free(src);
    free(dst);
    test_assert(store_expunge(dir, ACCT, "INBOX", one, 1, &err) == 0);
    test_assert(file && !test_path_exists(file));
    test_assert(read_is(dir, "Archive", 1, m1, sizeof m1 - 1));
    free(file);
    free(pdir);
    test_end();
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void test_pack_timing(void)
{
    test_begin("pack: timing, batches of 64 against one by one (printed)");
    const char *env = getenv("ROOST_PACK_BENCH");
    int total = env ? atoi(env) : 2048;
    total = total < 64 ? 64 : (total + 63) / 64 * 64;
    int single = total / 8;
    const char *dir = test_tmpdir();
    const char *err = NULL;
    static char msg[4096];
    memset(msg, 'x', sizeof msg);
    memcpy(msg, "Subject: bench\r\nFrom: a@b.test\r\n\r\n", 35);
    struct store_batch_item it[64];
    char qid[64][24];
    int failures = 0;
    double t0 = now_s();
    for (int done = 0; done < total; done += 64) {
        for (int i = 0; i < 64; i++) {
            snprintf(qid[i], sizeof qid[i], "B%d", done + i);
            it[i] = (struct store_batch_item){ .mailbox = "INBOX", .queue_id = qid[i],
                                               .data = msg, .len = sizeof msg };
        }
        if (store_deliver_batch(dir, ACCT, it, 64, &err) != 0)
            failures++;
    }
    double batched = now_s() - t0;
    t0 = now_s();
    for (int i = 0; i < single; i++) {
        uint32_t uid;
        int dup;
        snprintf(qid[0], sizeof qid[0], "S%d", i);
        if (store_deliver(dir, ACCT, "INBOX", qid[0], msg, sizeof msg, 0, &uid, &dup, &err) != 0)
            failures++;
    }
    double one = now_s() - t0;
    test_assert(failures == 0);
    test_assert(ix_int(dir, "SELECT count(*) FROM messages") == total + single);
    fprintf(stderr,
            "  %d x 4 KiB in batches of 64: %.2f s, %.0f msg/s; %d one by one: %.2f s,"
            " %.0f msg/s (ROOST_PACK_BENCH=N for more)\n",
            total, batched, total / batched, single, one, single / one);
    test_end();
}

/* ---- concurrent batches, rotations and expunges ---- */

struct conc {
    const char *dir;
    int id;
    int failures;
    int stop;   /* the expunger runs until the deliverers are done */
};

static void *conc_deliver(void *arg)
{
    struct conc *c = arg;
    char body[200];
    for (int b = 0; b < 12; b++) {
        struct store_batch_item it[16];
        char qid[16][32];
        for (int i = 0; i < 16; i++) {
            snprintf(qid[i], sizeof qid[i], "C%d-%d-%d", c->id, b, i);
            it[i] = (struct store_batch_item){ .mailbox = "INBOX", .queue_id = qid[i],
                                               .data = body, .len = sizeof body };
        }
        memset(body, 'A' + c->id, sizeof body);
        const char *err = NULL;
        if (store_deliver_batch(c->dir, ACCT, it, 16, &err) != 0)
            c->failures++;
        for (int i = 0; i < 16; i++)
            if (it[i].result != 0 || it[i].duplicate)
                c->failures++;
    }
    return NULL;
}

static void *conc_expunge(void *arg)
{
    struct conc *c = arg;
    uint32_t next = 1;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        uint32_t uids[5];
        for (int i = 0; i < 5; i++)
            uids[i] = next + (uint32_t)i * 2;   /* every other UID of a window */
        next += 10;
        const char *err = NULL;
        if (store_expunge(c->dir, ACCT, "INBOX", uids, 5, &err) != 0)
            c->failures++;
        if (next > 600)
            next = 1;
    }
    return NULL;
}

void test_pack_concurrent(void)
{
    test_begin("pack: concurrent batches, rotations and expunges keep every row readable");
    const char *dir = test_tmpdir();
    store_pack_limit_set(3000);
    struct conc d[3], x = { dir, 9, 0, 0 };
    pthread_t th[3], tx;
    uint32_t uid;
    int dup;
    const char *err = NULL;
    test_assert(store_deliver(dir, ACCT, "INBOX", NULL, "first", 5, 0, &uid, &dup, &err) == 0);
    test_assert(pthread_create(&tx, NULL, conc_expunge, &x) == 0);
    for (int i = 0; i < 3; i++) {
        d[i] = (struct conc){ dir, i, 0, 0 };
        test_assert(pthread_create(&th[i], NULL, conc_deliver, &d[i]) == 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        test_assert(d[i].failures == 0);
    }
    __atomic_store_n(&x.stop, 1, __ATOMIC_RELEASE);
    pthread_join(tx, NULL);
    test_assert(x.failures == 0);
    store_pack_limit_set(0);
    test_assert(ix_int(dir, "SELECT count(*) FROM deliveries") == 3 * 12 * 16);
    test_assert(ix_int(dir, "SELECT active FROM pack_state") > 3);

    /* every row reads back; the packs on disk are exactly those rows use,
     * plus the active one */
    char *path = xasprintf("%s/mail/%s/index.sqlite", dir, ACCT);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    test_assert(sqlite3_open(path, &db) == SQLITE_OK);
    test_assert(sqlite3_prepare_v2(db, "SELECT uid, size FROM messages ORDER BY uid", -1, &st,
                                   NULL) == SQLITE_OK);
    int rows = 0, bad = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        char *data = NULL;
        size_t len = 0;
        uint32_t u = (uint32_t)sqlite3_column_int64(st, 0);
        if (store_read(dir, ACCT, "INBOX", u, &data, &len) != 0 ||
            len != (size_t)sqlite3_column_int64(st, 1))
            bad++;
        else if (u > 1 && (len != 200 || data[0] < 'A' || data[0] > 'C' ||
                           strspn(data, (char[]){ data[0], '\0' }) != len))
            bad++;   /* one deliverer's bytes, whole */
        free(data);
        rows++;
    }
    sqlite3_finalize(st);
    test_assert(rows > 0 && bad == 0);
    long long active = ix_int(dir, "SELECT active FROM pack_state");
    int stray = 0, missing = 0;
    for (long long seq = 1; seq <= active + 1; seq++) {
        char name[64];
        snprintf(name, sizeof name, "msg/pack/%016llx", seq);
        test_assert(sqlite3_prepare_v2(db, "SELECT count(*) FROM messages WHERE file = ?", -1,
                                       &st, NULL) == SQLITE_OK);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        long long used = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        sqlite3_finalize(st);
        char *p = pack_path(dir, (int)seq);
        int on_disk = test_path_exists(p);
        free(p);
        if (on_disk && used == 0 && seq != active)
            stray++;
        if (!on_disk && (used > 0 || seq == active))
            missing++;
    }
    test_assert(stray == 0 && missing == 0);
    sqlite3_close(db);
    free(path);
    test_end();
}
