/* test_batch: the worker side of FETCH over a real store index: the
 * chunked row walk (imap_rowwalk, missing UIDs counted) and a FETCH 1:*
 * (FLAGS ENVELOPE) of 20,000 messages with cached ENVELOPEs done in
 * IMAP_OUTPUT_BATCH batches the way imap_fetch_cmd.c does it: every message
 * answered once, in order, no file opened (the rows point at no file), and
 * the time printed (issue 7 compares with Dovecot's 0.2-0.9 s). */
#include "fetch_tests.h"
#include "imap/imap_msgcmd.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACCT "perf@example.test"
#define NMSG 20000

static const char envelope[] =
    "(\"Mon, 05 Feb 2024 10:00:00 +0000\" \"Quarterly report for the team\""
    " ((\"Alice Example\" NIL \"alice\" \"example.test\"))"
    " ((\"Alice Example\" NIL \"alice\" \"example.test\"))"
    " ((\"Alice Example\" NIL \"alice\" \"example.test\"))"
    " ((NIL NIL \"bob\" \"example.test\")) ((NIL NIL \"carol\" \"example.test\")) NIL NIL"
    " \"<m1@example.test>\")";

static int ix_exec(const char *dir, const char *sql)
{
    char *path = xasprintf("%s/mail/%s/index.sqlite", dir, ACCT);
    sqlite3 *db = NULL;
    int ok = sqlite3_open(path, &db) == SQLITE_OK &&
             sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        printf("     sqlite: %s\n", db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    free(path);
    return ok;
}

/* A store with NMSG rows (UIDs 1..NMSG, every 100th missing) whose files
 * do not exist, with ENVELOPE cached. */
static void make_store(const char *dir)
{
    uint32_t uid = 0, uv = 0;
    const char *err = NULL;
    static const char m[] = "Subject: x\r\n\r\ny\r\n";
    test_assert(store_append(dir, ACCT, "INBOX", m, sizeof m - 1, 0, NULL, 0, 0, &uid, &uv,
                             &err) == 0);
    char *sql = xasprintf(
        "DELETE FROM messages;"
        " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
        " INSERT INTO messages(mailbox_id, uid, file, size, internaldate, modseq, flags,"
        " envelope, bodystructure) SELECT (SELECT id FROM mailboxes WHERE name = 'INBOX'), i,"
        " 'msg/none', 1000 + i, 1707127200, i, CASE WHEN i %% 3 = 0 THEN '\\Seen' ELSE '' END,"
        " '%s', NULL FROM n WHERE i %% 100 != 50;"
        " UPDATE mailboxes SET uidnext = %d, highestmodseq = %d WHERE name = 'INBOX'",
        NMSG, envelope, NMSG + 1, NMSG);
    test_assert(ix_exec(dir, sql));
    free(sql);
}

static void job_init(struct imap_job *j, const char *dir)
{
    memset(j, 0, sizeof *j);
    j->data_dir = dir;
    snprintf(j->account, sizeof j->account, "%s", ACCT);
    snprintf(j->mailbox, sizeof j->mailbox, "INBOX");
    buf_init(&j->out, IMAP_JOB_OUTPUT_MAX);
}

void test_batch_rowwalk(void)
{
    test_begin("batch: row walk in chunks, missing UIDs counted");
    const char *dir = test_tmpdir();
    make_store(dir);
    struct imap_job j;
    job_init(&j, dir);
    uint32_t n = 2000;
    uint32_t *uid = xcalloc(n, sizeof *uid), *seq = xcalloc(n, sizeof *seq);
    for (uint32_t i = 0; i < n; i++) {
        uid[i] = i + 1;
        seq[i] = 10 + i;
    }
    struct imap_rowwalk w;
    imap_rowwalk_init(&w, uid, seq, n);
    const struct store_fmsg *row;
    uint32_t s, got = 0, bad = 0;
    const char *err = NULL;
    int r;
    while ((r = imap_rowwalk_get(&w, &j, &row, &s, &err)) == 1) {
        if (row->uid % 100 == 50 || s != row->uid + 9)
            bad++;
        got++;
        imap_rowwalk_next(&w);
    }
    test_assert(r == 0);
    test_assert(bad == 0);
    test_assert(got == n - n / 100);
    test_assert(w.missing == n / 100);
    test_assert(imap_rowwalk_done(&w));
    imap_rowwalk_free(&w);
    free(uid);
    free(seq);
    buf_deinit(&j.out);
    test_end();
}

void test_batch_fetch_20000(void)
{
    test_begin("batch: FETCH 1:* (FLAGS ENVELOPE) of 20,000 cached messages");
    const char *dir = test_tmpdir();
    make_store(dir);
    uint32_t n = NMSG;
    uint32_t *uid = xcalloc(n, sizeof *uid), *seq = xcalloc(n, sizeof *seq);
    for (uint32_t i = 0; i < n; i++) {
        uid[i] = i + 1;
        seq[i] = i + 1;
    }
    struct imap_fetch_spec spec = { .items = IMAP_FI_FLAGS | IMAP_FI_ENVELOPE };
    struct imap_fetch_opts o = { 0 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct imap_rowwalk w;
    imap_rowwalk_init(&w, uid, seq, n);
    uint32_t answered = 0, batches = 0, gone = 0, order_ok = 1, last = 0;
    size_t bytes = 0, biggest = 0;
    const char *err = NULL;
    int finished = 0;
    while (!finished) {
        struct imap_job j;   /* one worker job per batch */
        job_init(&j, dir);
        while (j.out.len < IMAP_OUTPUT_BATCH) {
            const struct store_fmsg *row;
            uint32_t s;
            int r = imap_rowwalk_get(&w, &j, &row, &s, &err);
            if (r <= 0) {
                test_assert(r == 0);
                finished = 1;
                break;
            }
            struct imap_msg_ctx m = { .seq = s, .row = row };
            int rc = imap_fetch_message(&spec, &o, &m, &j.out);
            imap_msg_release(&m);
            test_assert(rc == 0);
            gone += rc == 1;
            order_ok &= s > last;
            last = s;
            answered++;
            imap_rowwalk_next(&w);
        }
        batches++;
        bytes += j.out.len;
        if (j.out.len > biggest)
            biggest = j.out.len;
        buf_deinit(&j.out);
    }
    imap_rowwalk_free(&w);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("     %u messages, %zu bytes in %u batches (largest %zu) in %.1f ms\n", answered,
           bytes, batches, biggest, ms);
    test_assert(answered == n - n / 100);
    test_assert(w.missing == n / 100);
    test_assert(gone == 0 && order_ok);
    test_assert(biggest < IMAP_OUTPUT_BATCH + 4096);
    test_assert(batches > 10);
    /* generous even for a sanitizer build on a busy 2-core machine */
    test_assert(ms < 20000);
    free(uid);
    free(seq);
    test_end();
}
