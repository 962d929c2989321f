/* test_spool: the queue file format and its durability machinery
 * (src/queue/spool.c): round trip, every kind of corruption, done marks,
 * scan order, tmp leftovers, id uniqueness and group commit. */
#include "queue/spool.h"
#include "core/xalloc.h"
#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Shared helpers, defined in test_queue.c. */
struct spool_msg *tq_make_msg(const char *sender, const char *data, size_t len);
void tq_add_rcpt(struct spool_msg *m, const char *address, const char *account);

static int file_exists(const char *dir, const char *sub, const char *name)
{
    char *p = sub ? xasprintf("%s/queue/%s/%s", dir, sub, name)
                  : xasprintf("%s/queue/%s", dir, name);
    struct stat st;
    int rc = stat(p, &st) == 0;
    free(p);
    return rc;
}

static char *slurp(const char *path, size_t *len_r)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = xmalloc(64 * 1024 * 1024);
    *len_r = fread(data, 1, 64 * 1024 * 1024, f);
    fclose(f);
    return data;
}

static int spew(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fwrite(data, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static void test_round_trip(void)
{
    test_begin("spool: commit and load round trip");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    struct spool *s = spool_open(dir, &err);
    test_assert(s != NULL);
    test_assert(file_exists(dir, NULL, "tmp") && file_exists(dir, NULL, "corrupt"));
    static const char body[] = "Received: x\r\n\r\nbody\0with nul\r\n";
    struct spool_msg *m = tq_make_msg("sender@example.test", body, sizeof body - 1);
    tq_add_rcpt(m, "alice@example.test", "alice@example.test");
    tq_add_rcpt(m, "bob@remote.test", NULL);
    m->auth_account = xstrdup("carol@example.test");
    spool_new_id(m->id);
    test_assert(spool_id_valid(m->id));
    test_assert(spool_commit(s, m, &err) == 0);
    test_assert(file_exists(dir, NULL, m->id));
    test_assert(!file_exists(dir, "tmp", m->id));

    struct spool_msg *l = NULL;
    test_assert(spool_load(s, m->id, &l) == 0);
    test_assert(l != NULL);
    if (l) {
        test_assert_streq(l->id, m->id);
        test_assert_streq(l->sender, "sender@example.test");
        test_assert(l->arrived == m->arrived);
        test_assert_streq(l->client, "192.0.2.1");
        test_assert_streq(l->helo, "client.example.test");
        test_assert_streq(l->auth_account, "carol@example.test");
        test_assert_streq(l->protocol, "ESMTPSA");
        test_assert(l->nrcpt == 2);
        test_assert_streq(l->rcpts[0].address, "alice@example.test");
        test_assert_streq(l->rcpts[0].account, "alice@example.test");
        test_assert_streq(l->rcpts[1].address, "bob@remote.test");
        test_assert(l->rcpts[1].account == NULL);
        test_assert(!l->rcpts[0].done && !l->rcpts[1].done);
        test_assert_memeq(l->data, l->len, body, sizeof body - 1);
    }
    spool_msg_free(&l);
    test_assert(l == NULL);

    /* null sender, no optional fields, empty body */
    struct spool_msg *n = tq_make_msg("", "", 0);
    free(n->client);
    free(n->helo);
    free(n->protocol);
    n->client = n->helo = n->protocol = NULL;
    tq_add_rcpt(n, "x@example.test", "x@example.test");
    spool_new_id(n->id);
    test_assert(spool_commit(s, n, &err) == 0);
    test_assert(spool_load(s, n->id, &l) == 0);
    if (l) {
        test_assert_streq(l->sender, "");
        test_assert(l->client == NULL && l->helo == NULL && l->auth_account == NULL);
        test_assert(l->len == 0);
    }
    spool_msg_free(&l);

    /* the same id twice is refused, the first file stays */
    test_assert(spool_commit(s, n, &err) == -1);
    test_assert(spool_load(s, n->id, &l) == 0);
    spool_msg_free(&l);

    /* missing and malformed ids */
    test_assert(spool_load(s, "00000000000000000000", &l) == 1);
    test_assert(spool_load(s, "../../etc/passwd", &l) == 1);
    /* a value with a newline cannot be written */
    free(n->helo);
    n->helo = xstrdup("evil\nauth=root");
    spool_new_id(n->id);
    test_assert(spool_commit(s, n, &err) == -1);
    test_assert(!file_exists(dir, NULL, n->id) && !file_exists(dir, "tmp", n->id));

    spool_msg_free(&m);
    spool_msg_free(&n);
    spool_close(&s);
    test_assert(s == NULL);
    test_end();
}

/* Writes a good queue file for ID and returns its bytes. */
static char *good_file(struct spool *s, const char *dir, char id[SPOOL_ID_LEN + 1],
                       size_t *len_r)
{
    const char *err;
    struct spool_msg *m = tq_make_msg("a@example.test", "Subject: x\r\n\r\nhello\r\n", 21);
    tq_add_rcpt(m, "b@example.test", "b@example.test");
    spool_new_id(m->id);
    memcpy(id, m->id, SPOOL_ID_LEN + 1);
    if (spool_commit(s, m, &err) < 0) {
        spool_msg_free(&m);
        return NULL;
    }
    spool_msg_free(&m);
    char *path = xasprintf("%s/queue/%s", dir, id);
    char *data = slurp(path, len_r);
    free(path);
    return data;
}

/* Replaces queue file ID with DATA, loads it: must be -1 and moved. */
static int corrupt_case(struct spool *s, const char *dir, const char *id, const void *data,
                        size_t len)
{
    char *path = xasprintf("%s/queue/%s", dir, id);
    int ok = spew(path, data, len) == 0;
    free(path);
    struct spool_msg *m = (struct spool_msg *)1;
    ok = ok && spool_load(s, id, &m) == -1 && m == NULL;
    ok = ok && !file_exists(dir, NULL, id) && file_exists(dir, "corrupt", id);
    return ok;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Re-seals a modified file with a correct END record. */
static void reseal(unsigned char *d, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, d, (uInt)(len - 9));
    put32(d + len - 4, (uint32_t)crc);
}

static void test_corruption(void)
{
    test_begin("spool: every kind of corruption is rejected and moved to corrupt/");
    const char *dir = test_tmpdir();
    const char *err;
    struct spool *s = spool_open(dir, &err);
    char id[SPOOL_ID_LEN + 1];
    size_t len;
    char *good = good_file(s, dir, id, &len);
    test_assert(good != NULL && len > 40);
    if (!good) {
        spool_close(&s);
        test_end();
        return;
    }
    unsigned char *d = xmalloc(len + 16);
    int cases = 0, passed = 0;

    /* truncated at many offsets, including inside headers and the END */
    size_t cuts[] = { 0, 1, 7, 8, 9, 12, 13, 20, len / 2, len - 9, len - 5, len - 4, len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cases++;
        passed += corrupt_case(s, dir, id, good, cuts[i]);
    }
    /* bad CRC */
    memcpy(d, good, len);
    d[len - 1] ^= 0x01;
    cases++;
    passed += corrupt_case(s, dir, id, d, len);
    /* a flipped body byte (CRC no longer matches) */
    memcpy(d, good, len);
    d[len - 12] ^= 0x20;
    cases++;
    passed += corrupt_case(s, dir, id, d, len);
    /* missing END record (file ends right after the message) */
    cases++;
    passed += corrupt_case(s, dir, id, good, len - 9);
    /* bad magic */
    memcpy(d, good, len);
    d[0] = 'X';
    reseal(d, len);
    cases++;
    passed += corrupt_case(s, dir, id, d, len);
    /* oversized length field in the first record (points past the end) */
    memcpy(d, good, len);
    put32(d + 9, 0x7fffffff);
    reseal(d, len);
    cases++;
    passed += corrupt_case(s, dir, id, d, len);
    /* length field off by one byte past the end */
    memcpy(d, good, len);
    put32(d + 9, (uint32_t)len);
    cases++;
    passed += corrupt_case(s, dir, id, d, len);
    /* trailing garbage after END */
    memcpy(d, good, len);
    memcpy(d + len, "junk", 4);
    cases++;
    passed += corrupt_case(s, dir, id, d, len + 4);
    /* unknown record type (resealed so only the type is wrong) */
    memcpy(d, good, len);
    d[8] = 'Q';
    reseal(d, len);
    cases++;
    passed += corrupt_case(s, dir, id, d, len);
    /* END record with the wrong length */
    memcpy(d, good, len);
    put32(d + len - 8, 3);
    cases++;
    passed += corrupt_case(s, dir, id, d, len);
    /* empty file */
    cases++;
    passed += corrupt_case(s, dir, id, "", 0);
    test_assert(passed == cases);

    /* the .done companion goes with it */
    char id2[SPOOL_ID_LEN + 1];
    size_t len2;
    char *good2 = good_file(s, dir, id2, &len2);
    test_assert(spool_mark_done(s, id2, 0) == 0);
    test_assert(corrupt_case(s, dir, id2, good2, len2 - 1));
    char done2[64];
    snprintf(done2, sizeof done2, "%s.done", id2);
    test_assert(file_exists(dir, "corrupt", done2) && !file_exists(dir, NULL, done2));
    free(good2);

    /* an envelope whose id does not match the file name */
    char id3[SPOOL_ID_LEN + 1];
    size_t len3;
    char *good3 = good_file(s, dir, id3, &len3);
    char other[SPOOL_ID_LEN + 1];
    spool_new_id(other);
    test_assert(good3 && corrupt_case(s, dir, other, good3, len3));
    free(good3);

    free(d);
    free(good);
    spool_close(&s);
    test_end();
}

static void test_mark_done(void)
{
    test_begin("spool: done marks are applied by load, torn marks ignored");
    const char *dir = test_tmpdir();
    const char *err;
    struct spool *s = spool_open(dir, &err);
    struct spool_msg *m = tq_make_msg("a@x.test", "hi", 2);
    for (int i = 0; i < 13; i++) {
        char a[32];
        snprintf(a, sizeof a, "r%d@x.test", i);
        tq_add_rcpt(m, a, a);
    }
    spool_new_id(m->id);
    test_assert(spool_commit(s, m, &err) == 0);
    test_assert(spool_mark_done(s, m->id, 1) == 0);
    test_assert(spool_mark_done(s, m->id, 12) == 0);
    test_assert(spool_mark_done(s, m->id, 500) == 0);   /* out of range: ignored */
    test_assert(spool_mark_done(s, "bad id", 0) == -1);
    test_assert(spool_mark_done(s, m->id, -1) == -1);
    /* a torn append: "D1" of "D10." must not count as recipient 1 or 10 */
    char *done = xasprintf("%s/queue/%s.done", dir, m->id);
    FILE *f = fopen(done, "a");
    test_assert(f != NULL);
    if (f) {
        fputs("\nD1", f);
        fclose(f);
    }
    test_assert(spool_mark_done(s, m->id, 3) == 0);   /* after the torn one */
    f = fopen(done, "a");
    if (f) {
        fputs("\nD4", f);   /* torn at the very end */
        fclose(f);
    }
    struct spool_msg *l = NULL;
    test_assert(spool_load(s, m->id, &l) == 0);
    if (l) {
        for (int i = 0; i < 13; i++)
            test_assert(l->rcpts[i].done == (i == 1 || i == 3 || i == 12));
    }
    spool_msg_free(&l);
    /* remove takes the file and the marks */
    test_assert(spool_remove(s, m->id) == 0);
    test_assert(!file_exists(dir, NULL, m->id));
    struct stat st;
    test_assert(stat(done, &st) < 0);
    test_assert(spool_load(s, m->id, &l) == 1);
    free(done);
    spool_msg_free(&m);
    spool_close(&s);
    test_end();
}

struct scan_acc {
    int n;
    char ids[16][SPOOL_ID_LEN + 1];
};

static void scan_cb(const char *id, void *arg)
{
    struct scan_acc *a = arg;
    if (a->n < 16)
        snprintf(a->ids[a->n], sizeof a->ids[a->n], "%s", id);
    a->n++;
}

static void test_scan_and_leftovers(void)
{
    test_begin("spool: scan is oldest first and skips tmp, corrupt, .done; leftovers removed");
    const char *dir = test_tmpdir();
    const char *err;
    struct spool *s = spool_open(dir, &err);
    char ids[5][SPOOL_ID_LEN + 1];
    for (int i = 0; i < 5; i++) {
        struct spool_msg *m = tq_make_msg("a@x.test", "hi", 2);
        tq_add_rcpt(m, "b@x.test", "b@x.test");
        spool_new_id(m->id);
        memcpy(ids[i], m->id, sizeof ids[i]);
        test_assert(spool_commit(s, m, &err) == 0);
        spool_msg_free(&m);
        usleep(1000);
    }
    test_assert(spool_mark_done(s, ids[2], 0) == 0);
    /* strays: a tmp leftover, a corrupt file, a non-id name, an orphan .done */
    char *tmpf = xasprintf("%s/queue/tmp/%s", dir, "00000000000000000001");
    char *corf = xasprintf("%s/queue/corrupt/%s", dir, "00000000000000000002");
    char *stray = xasprintf("%s/queue/README", dir);
    char *orphan = xasprintf("%s/queue/00000000000000000003.done", dir);
    test_assert(spew(tmpf, "x", 1) == 0 && spew(corf, "x", 1) == 0 && spew(stray, "x", 1) == 0 &&
                spew(orphan, "\nD0.\n", 5) == 0);
    spool_close(&s);

    s = spool_open(dir, &err);   /* a restart */
    test_assert(s != NULL);
    struct stat st;
    test_assert(stat(tmpf, &st) < 0);          /* never acknowledged: removed */
    test_assert(stat(corf, &st) == 0);         /* corrupt files are kept */
    test_assert(stat(orphan, &st) < 0);        /* orphan marks removed */
    struct scan_acc acc = { 0 };
    test_assert(spool_scan(s, scan_cb, &acc) == 0);
    test_assert(acc.n == 5);
    for (int i = 0; i < 5 && i < acc.n; i++)
        test_assert_streq(acc.ids[i], ids[i]);
    free(tmpf);
    free(corf);
    free(stray);
    free(orphan);
    spool_close(&s);
    test_end();
}

static void test_readonly(void)
{
    test_begin("spool: read-only open changes nothing");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(spool_open_readonly(dir, &err) == NULL && err);   /* no queue/ yet */
    struct spool *s = spool_open(dir, &err);
    struct spool_msg *m = tq_make_msg("a@x.test", "hi", 2);
    tq_add_rcpt(m, "b@x.test", "b@x.test");
    spool_new_id(m->id);
    test_assert(spool_commit(s, m, &err) == 0);
    spool_close(&s);
    char *tmpf = xasprintf("%s/queue/tmp/00000000000000000001", dir);
    test_assert(spew(tmpf, "x", 1) == 0);
    char bad[SPOOL_ID_LEN + 1];
    spool_new_id(bad);
    char *badf = xasprintf("%s/queue/%s", dir, bad);
    test_assert(spew(badf, "garbage", 7) == 0);

    struct spool *ro = spool_open_readonly(dir, &err);
    test_assert(ro != NULL);
    struct stat st;
    test_assert(stat(tmpf, &st) == 0);   /* a running server's commit in progress */
    struct spool_msg *l = NULL;
    test_assert(spool_load(ro, m->id, &l) == 0);
    spool_msg_free(&l);
    test_assert(spool_load(ro, bad, &l) == -1);
    test_assert(stat(badf, &st) == 0);   /* reported, not moved */
    test_assert(spool_mark_done(ro, m->id, 0) == -1);
    test_assert(spool_remove(ro, m->id) == -1);
    spool_new_id(m->id);
    test_assert(spool_commit(ro, m, &err) == -1);
    spool_close(&ro);
    free(tmpf);
    free(badf);
    spool_msg_free(&m);
    test_end();
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

struct id_thread {
    char (*ids)[SPOOL_ID_LEN + 1];
    int n;
};

static void *gen_ids(void *arg)
{
    struct id_thread *t = arg;
    for (int i = 0; i < t->n; i++)
        spool_new_id(t->ids[i]);
    return NULL;
}

static void test_id_uniqueness(void)
{
    test_begin("spool: 100k ids from 4 threads are unique, valid and time-sorted");
    enum { PER = 25000, NT = 4, N = PER * NT };
    char (*ids)[SPOOL_ID_LEN + 1] = xcalloc(N, SPOOL_ID_LEN + 1);
    pthread_t th[NT];
    struct id_thread ta[NT];
    for (int t = 0; t < NT; t++) {
        ta[t] = (struct id_thread){ ids + t * PER, PER };
        test_assert(pthread_create(&th[t], NULL, gen_ids, &ta[t]) == 0);
    }
    for (int t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    int sorted_per_thread = 1, valid = 1;
    for (int t = 0; t < NT; t++)
        for (int i = 1; i < PER; i++)
            if (strcmp(ids[t * PER + i - 1], ids[t * PER + i]) >= 0)
                sorted_per_thread = 0;
    for (int i = 0; i < N; i++)
        if (!spool_id_valid(ids[i]) || strlen(ids[i]) != SPOOL_ID_LEN)
            valid = 0;
    test_assert(sorted_per_thread);
    test_assert(valid);
    qsort(ids, N, SPOOL_ID_LEN + 1, cmp_str);
    int dups = 0;
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            dups++;
    test_assert(dups == 0);
    /* ids made later sort later */
    char a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1];
    spool_new_id(a);
    usleep(2000);
    spool_new_id(b);
    test_assert(strcmp(a, b) < 0);
    test_assert(!spool_id_valid("short"));
    test_assert(!spool_id_valid("0000000000000000000I"));   /* I not in the alphabet */
    test_assert(!spool_id_valid("000000000000000000000"));  /* 21 chars */
    free(ids);
    test_end();
}

struct commit_thread {
    struct spool *s;
    int n, failures;
};

static void *commit_many(void *arg)
{
    struct commit_thread *t = arg;
    for (int i = 0; i < t->n; i++) {
        const char *err;
        struct spool_msg *m = tq_make_msg("a@x.test", "body\r\n", 6);
        tq_add_rcpt(m, "b@x.test", "b@x.test");
        spool_new_id(m->id);
        if (spool_commit(t->s, m, &err) < 0)
            t->failures++;
        spool_msg_free(&m);
    }
    return NULL;
}

static void test_group_commit(void)
{
    test_begin("spool: 8 threads x 50 commits share directory fsyncs");
    const char *dir = test_tmpdir();
    const char *err;
    struct spool *s = spool_open(dir, &err);
    enum { NT = 8, PER = 50 };
    pthread_t th[NT];
    struct commit_thread ct[NT];
    unsigned long before = spool_dir_fsyncs(s);
    for (int t = 0; t < NT; t++) {
        ct[t] = (struct commit_thread){ s, PER, 0 };
        test_assert(pthread_create(&th[t], NULL, commit_many, &ct[t]) == 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        test_assert(ct[t].failures == 0);
    }
    unsigned long fsyncs = spool_dir_fsyncs(s) - before;
    printf("     group commit: %d commits, %lu directory fsyncs\n", NT * PER, fsyncs);
    test_assert(fsyncs >= 1);
    test_assert(fsyncs < NT * PER);
    struct scan_acc acc = { 0 };
    test_assert(spool_scan(s, scan_cb, &acc) == 0 && acc.n == NT * PER);
    spool_close(&s);
    test_end();
}

void tq_spool_tests(void);
void tq_spool_tests(void)
{
    test_round_trip();
    test_corruption();
    test_mark_done();
    test_scan_and_leftovers();
    test_readonly();
    test_id_uniqueness();
    test_group_commit();
}
