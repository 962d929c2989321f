/* test_store_imap: the store as IMAP sees it (store/store_imap.h): mailbox
 * create/delete/rename/subscribe/list/status, the view and the changes since
 * a MODSEQ after each kind of change, flags with UNCHANGEDSINCE, expunge of
 * \Deleted only, copy and move with UID maps and vanished, APPEND, quota
 * and usage, migration from a schema-2 index, a 100,000-message view, and
 * the notifier without loops. */
#include "store/store.h"
#include "store/store_imap.h"
#include "core/notify.h"
#include "core/worker.h"
#include "core/xalloc.h"
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

#define ACCT "alice@example.test"
static const char msg[] = "From: a@b\r\nSubject: hi\r\n\r\nbody\r\n";
#define MSGLEN (sizeof msg - 1)

static uint32_t put(const char *dir, const char *mbox, unsigned flags)
{
    uint32_t uid = 0, uv = 0;
    const char *err = NULL;
    if (store_append(dir, ACCT, mbox, msg, MSGLEN, flags, NULL, 0, 0, &uid, &uv, &err) != 0)
        return 0;
    return uid;
}

static long long ix_int(const char *dir, const char *sql)
{
    return test_index_int(dir, ACCT, sql);
}

static int ix_exec(const char *dir, const char *sql)
{
    return test_index_exec(dir, ACCT, sql);
}

static const struct store_mailbox *find_mb(const struct store_mailbox *l, int n,
                                           const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            return &l[i];
    return NULL;
}

static void test_flags_parse(void)
{
    test_begin("store imap: flags text to bits and keywords");
    char kw[64];
    unsigned b = store_flags_parse("\\Seen \\flagged $Forwarded \\Recent Work", kw, sizeof kw);
    test_assert(b == (STORE_F_SEEN | STORE_F_FLAGGED));
    test_assert_streq(kw, "$Forwarded Work");
    /* the callers size KW as strlen(flags) + 1: a lone keyword must fit */
    char exact[sizeof "$Solo"];
    test_assert(store_flags_parse("$Solo", exact, sizeof exact) == 0);
    test_assert_streq(exact, "$Solo");
    char two[sizeof "a bb"];
    test_assert(store_flags_parse("a bb", two, sizeof two) == 0);
    test_assert_streq(two, "a bb");
    test_assert(store_flags_parse("", kw, sizeof kw) == 0 && kw[0] == '\0');
    test_assert(store_flags_parse(NULL, kw, sizeof kw) == 0);
    test_assert(store_flags_parse("\\Deleted \\Draft \\Answered", NULL, 0) ==
                (STORE_F_DELETED | STORE_F_DRAFT | STORE_F_ANSWERED));
    test_end();
}

static void test_mailbox_create_list(void)
{
    test_begin("store imap: create with parents, list with attributes, special-use");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    struct store_mailbox *l = NULL;
    int n = 0;
    test_assert(store_mailboxes(dir, ACCT, &l, &n, &err) == 0 && n == 6);
    test_assert_streq(l[0].name, "INBOX");
    test_assert(find_mb(l, n, "Sent") && strcmp(find_mb(l, n, "Sent")->special_use, "\\Sent") == 0);
    test_assert(find_mb(l, n, "Sent")->attrs & STORE_MB_SUBSCRIBED);
    free(l);
    test_assert(store_mailbox_create(dir, ACCT, "Work/2024/Q1", NULL, &err) == 0);
    test_assert(store_mailbox_create(dir, ACCT, "Work/", NULL, &err) == 1);
    test_assert(store_mailbox_create(dir, ACCT, "inbox", NULL, &err) == 1);
    test_assert(store_mailbox_create(dir, ACCT, "Flagged", "\\Flagged", &err) == -1);
    test_assert(store_mailbox_create(dir, ACCT, "Old", "\\archive", &err) == 0);
    test_assert(store_mailbox_create(dir, ACCT, "", NULL, &err) == -1);
    test_assert(store_mailbox_create(dir, ACCT, "a//b", NULL, &err) == -1);
    test_assert(store_mailbox_create(dir, ACCT, "bad*", NULL, &err) == -1);
    test_assert(store_mailbox_create(dir, ACCT, "Ünïcødé", NULL, &err) == 0);
    test_assert(store_mailboxes(dir, ACCT, &l, &n, &err) == 0 && n == 11);
    test_assert_streq(l[0].name, "INBOX");
    for (int i = 2; i < n; i++)
        test_assert(strcmp(l[i - 1].name, l[i].name) < 0);
    test_assert(find_mb(l, n, "Work") && (find_mb(l, n, "Work")->attrs & STORE_MB_HASCHILDREN));
    test_assert(find_mb(l, n, "Work/2024/Q1") &&
                !(find_mb(l, n, "Work/2024/Q1")->attrs & STORE_MB_HASCHILDREN));
    test_assert(!(find_mb(l, n, "Work/2024/Q1")->attrs & STORE_MB_SUBSCRIBED));
    test_assert_streq(find_mb(l, n, "Old")->special_use, "\\Archive");
    free(l);
    /* a new mailbox is selectable and empty */
    struct store_status st;
    test_assert(store_mailbox_status_full(dir, ACCT, "Work/2024", &st, &err) == 0);
    test_assert(st.messages == 0 && st.uidnext == 1 && st.uidvalidity > 0);
    test_assert(store_mailbox_status_full(dir, ACCT, "NoSuch", &st, &err) == 1);
    test_end();
}

static void test_subscribe(void)
{
    test_begin("store imap: subscriptions, including names that do not exist");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(store_mailbox_subscribe(dir, ACCT, "Ghost", 1, &err) == 0);
    test_assert(store_mailbox_subscribe(dir, ACCT, "Ghost", 1, &err) == 0);
    test_assert(store_mailbox_subscribe(dir, ACCT, "Junk", 0, &err) == 0);
    struct store_mailbox *l = NULL;
    int n = 0;
    test_assert(store_mailboxes(dir, ACCT, &l, &n, &err) == 0 && n == 7);
    const struct store_mailbox *g = find_mb(l, n, "Ghost");
    test_assert(g && (g->attrs & STORE_MB_NONEXISTENT) && (g->attrs & STORE_MB_SUBSCRIBED));
    test_assert(!(find_mb(l, n, "Junk")->attrs & STORE_MB_SUBSCRIBED));
    free(l);
    test_assert(store_mailbox_create(dir, ACCT, "Ghost", NULL, &err) == 0);
    test_assert(store_mailboxes(dir, ACCT, &l, &n, &err) == 0 && n == 6 + 1);
    g = find_mb(l, n, "Ghost");
    test_assert(g && !(g->attrs & STORE_MB_NONEXISTENT) && (g->attrs & STORE_MB_SUBSCRIBED));
    free(l);
    test_end();
}

static void test_delete(void)
{
    test_begin("store imap: delete (INBOX refused, children keep a \\Noselect name)");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(store_mailbox_delete(dir, ACCT, "INBOX", &err) == 2);
    test_assert(store_mailbox_delete(dir, ACCT, "inbox", &err) == 2);
    test_assert(store_mailbox_delete(dir, ACCT, "NoSuch", &err) == 1);
    test_assert(store_mailbox_create(dir, ACCT, "P/C", NULL, &err) == 0);
    test_assert(put(dir, "P", 0) == 1 && put(dir, "P/C", 0) == 1);
    struct store_status st0;
    test_assert(store_mailbox_status_full(dir, ACCT, "P", &st0, &err) == 0);
    test_assert(store_mailbox_delete(dir, ACCT, "P", &err) == 0);
    struct store_status st;
    test_assert(store_mailbox_status_full(dir, ACCT, "P", &st, &err) == 1);
    struct store_view v;
    test_assert(store_view_open(dir, ACCT, "P", &v, &err) == 1);
    struct store_mailbox *l = NULL;
    int n = 0;
    test_assert(store_mailboxes(dir, ACCT, &l, &n, &err) == 0);
    test_assert(find_mb(l, n, "P") && (find_mb(l, n, "P")->attrs & STORE_MB_NOSELECT) &&
                (find_mb(l, n, "P")->attrs & STORE_MB_HASCHILDREN));
    free(l);
    test_assert(store_mailbox_delete(dir, ACCT, "P", &err) == 2);   /* \Noselect + children */
    struct store_usage u;
    test_assert(store_usage_get(dir, ACCT, &u, &err) == 0 && u.messages == 1 &&
                u.bytes == MSGLEN);
    test_assert(store_mailbox_delete(dir, ACCT, "P/C", &err) == 0);
    test_assert(store_usage_get(dir, ACCT, &u, &err) == 0 && u.messages == 0 && u.bytes == 0);
    test_assert(ix_int(dir, "SELECT count(*) FROM messages") == 0);
    /* the message files are gone */
    char *msgdir = xasprintf("%s/mail/%s/msg", dir, ACCT);
    char *cmd = xasprintf("test $(ls -A '%s' | grep -v '^tmp$' | grep -v '^pack$' | wc -l) -eq 0",
                          msgdir);
    test_assert(system(cmd) == 0);
    free(cmd);
    free(msgdir);
    /* re-created: selectable again with a new UIDVALIDITY */
    test_assert(store_mailbox_create(dir, ACCT, "P", NULL, &err) == 0);
    test_assert(store_mailbox_status_full(dir, ACCT, "P", &st, &err) == 0);
    test_assert(st.uidvalidity > st0.uidvalidity && st.messages == 0);
    test_end();
}

static void test_rename(void)
{
    test_begin("store imap: rename with children, rename INBOX, collisions");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(store_mailbox_create(dir, ACCT, "A/B/C", NULL, &err) == 0);
    test_assert(store_mailbox_create(dir, ACCT, "AB", NULL, &err) == 0);
    test_assert(put(dir, "A/B", 0) == 1);
    struct store_status before, after;
    test_assert(store_mailbox_status_full(dir, ACCT, "A/B", &before, &err) == 0);
    test_assert(store_mailbox_rename(dir, ACCT, "A", "X/Y", &err) == 0);
    test_assert(store_mailbox_status_full(dir, ACCT, "A", &after, &err) == 1);
    test_assert(store_mailbox_status_full(dir, ACCT, "X/Y/B", &after, &err) == 0);
    test_assert(after.messages == 1 && after.uidvalidity > before.uidvalidity);
    test_assert(store_mailbox_status_full(dir, ACCT, "X/Y/B/C", &after, &err) == 0);
    test_assert(store_mailbox_status_full(dir, ACCT, "X", &after, &err) == 0);
    test_assert(store_mailbox_status_full(dir, ACCT, "AB", &after, &err) == 0);  /* not a child */
    test_assert(store_mailbox_rename(dir, ACCT, "NoSuch", "Z", &err) == 1);
    test_assert(store_mailbox_rename(dir, ACCT, "AB", "Sent", &err) == 2);
    test_assert(store_mailbox_rename(dir, ACCT, "X", "X/Y/Z", &err) == -1);
    /* INBOX: the messages move, INBOX stays and is empty, UIDs go on */
    for (int i = 0; i < 3; i++)
        test_assert(put(dir, "INBOX", 0) == (uint32_t)i + 1);
    struct store_status in0;
    test_assert(store_mailbox_status_full(dir, ACCT, "INBOX", &in0, &err) == 0);
    test_assert(store_mailbox_rename(dir, ACCT, "INBOX", "Old Inbox", &err) == 0);
    struct store_status in1, old;
    test_assert(store_mailbox_status_full(dir, ACCT, "INBOX", &in1, &err) == 0);
    test_assert(in1.messages == 0 && in1.uidnext == 4 && in1.highestmodseq > in0.highestmodseq);
    test_assert(store_mailbox_status_full(dir, ACCT, "Old Inbox", &old, &err) == 0);
    test_assert(old.messages == 3 && old.uidnext == 4);
    struct store_changes c;
    test_assert(store_changes_since(dir, ACCT, "INBOX", in0.highestmodseq, &c, &err) == 0);
    test_assert(c.nvanished == 3 && c.vanished[0] == 1 && c.vanished[2] == 3);
    store_changes_free(&c);
    test_assert(put(dir, "INBOX", 0) == 4);
    char *data = NULL;
    size_t len = 0;
    test_assert(store_read(dir, ACCT, "Old Inbox", 2, &data, &len) == 0 && len == MSGLEN);
    free(data);
    test_end();
}

static void test_view_and_changes(void)
{
    test_begin("store imap: view, and changes since after each kind of change");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(put(dir, "INBOX", STORE_F_SEEN) == 1);
    test_assert(put(dir, "INBOX", 0) == 2);
    uint32_t qu;
    int dup;
    test_assert(store_deliver(dir, ACCT, "INBOX", "Q1", msg, MSGLEN, 0, &qu, &dup, &err) == 0);
    test_assert(qu == 3);
    struct store_view v;
    test_assert(store_view_open(dir, ACCT, "inbox", &v, &err) == 0);
    test_assert(v.count == 3 && v.uidnext == 4 && v.msgs[0].sysflags == STORE_F_SEEN);
    test_assert(v.msgs[2].uid == 3 && v.msgs[2].modseq == v.highestmodseq);
    uint64_t m0 = v.highestmodseq;
    store_view_free(&v);

    struct store_changes c;
    test_assert(store_changes_since(dir, ACCT, "INBOX", m0, &c, &err) == 0);
    test_assert(c.nchanged == 0 && c.nvanished == 0 && c.highestmodseq == m0);
    store_changes_free(&c);

    /* flags */
    uint32_t two[] = { 2 };
    struct store_flag_result *r;
    uint32_t nr;
    test_assert(store_set_flags(dir, ACCT, "INBOX", two, 1, STORE_FLAGS_ADD, STORE_F_FLAGGED,
                                "Work", 0, 0, &r, &nr, &err) == 0);
    test_assert(nr == 1 && r[0].changed && r[0].modseq == m0 + 1);
    store_flag_results_free(r, nr);
    test_assert(store_changes_since(dir, ACCT, "INBOX", m0, &c, &err) == 0);
    test_assert(c.nchanged == 1 && c.changed[0].uid == 2 &&
                c.changed[0].sysflags == STORE_F_FLAGGED);
    test_assert_streq(c.changed[0].keywords, "Work");
    test_assert(c.highestmodseq == m0 + 1);
    store_changes_free(&c);
    test_assert(store_view_open(dir, ACCT, "INBOX", &v, &err) == 0);
    test_assert(v.nkeywords == 1 && strcmp(v.keywords[0], "Work") == 0);
    store_view_free(&v);

    /* delivery and append */
    test_assert(store_deliver(dir, ACCT, "INBOX", "Q2", msg, MSGLEN, 0, &qu, &dup, &err) == 0);
    test_assert(store_changes_since(dir, ACCT, "INBOX", m0 + 1, &c, &err) == 0);
    test_assert(c.nchanged == 1 && c.changed[0].uid == 4 && c.uidnext == 5);
    store_changes_free(&c);

    /* expunge via the POP3 path and via IMAP */
    uint32_t one[] = { 1 };
    test_assert(store_expunge(dir, ACCT, "INBOX", one, 1, &err) == 0);
    test_assert(store_changes_since(dir, ACCT, "INBOX", m0 + 2, &c, &err) == 0);
    test_assert(c.nchanged == 0 && c.nvanished == 1 && c.vanished[0] == 1);
    store_changes_free(&c);

    /* move out (the old store_move) */
    uint32_t three[] = { 3 };
    test_assert(store_move(dir, ACCT, "INBOX", "Archive", three, 1, &err) == 0);
    test_assert(store_changes_since(dir, ACCT, "INBOX", m0 + 3, &c, &err) == 0);
    test_assert(c.nvanished == 1 && c.vanished[0] == 3 && c.highestmodseq == m0 + 4);
    store_changes_free(&c);
    /* the full picture from the start */
    test_assert(store_changes_since(dir, ACCT, "INBOX", m0, &c, &err) == 0);
    test_assert(c.nchanged == 2 && c.nvanished == 2);
    store_changes_free(&c);
    /* gone mailbox */
    test_assert(store_mailbox_create(dir, ACCT, "Tmp", NULL, &err) == 0);
    test_assert(store_mailbox_delete(dir, ACCT, "Tmp", &err) == 0);
    test_assert(store_changes_since(dir, ACCT, "Tmp", 0, &c, &err) == 1);
    test_end();
}

static void test_set_flags(void)
{
    test_begin("store imap: set flags (replace, add, remove, UNCHANGEDSINCE)");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int i = 0; i < 3; i++)
        test_assert(put(dir, "INBOX", 0) == (uint32_t)i + 1);
    struct store_status st;
    test_assert(store_mailbox_status_full(dir, ACCT, "INBOX", &st, &err) == 0);
    uint64_t m0 = st.highestmodseq;
    test_assert(st.unseen == 3);
    uint32_t all[] = { 1, 2, 3, 9 };
    struct store_flag_result *r;
    uint32_t nr;
    test_assert(store_set_flags(dir, ACCT, "INBOX", all, 4, STORE_FLAGS_REPLACE,
                                STORE_F_SEEN | STORE_F_DRAFT, "a b A", 0, 0, &r, &nr,
                                &err) == 0);
    test_assert(nr == 3 && r[0].sysflags == (STORE_F_SEEN | STORE_F_DRAFT));
    test_assert_streq(r[0].keywords, "a b");
    store_flag_results_free(r, nr);
    test_assert(ix_int(dir, "SELECT count(*) FROM messages WHERE flags = '\\Seen \\Draft a b'") ==
                3);
    /* no change: no MODSEQ bump */
    test_assert(store_set_flags(dir, ACCT, "INBOX", all, 3, STORE_FLAGS_ADD, STORE_F_SEEN, "B",
                                0, 0, &r, &nr, &err) == 0);
    test_assert(nr == 3 && !r[0].changed && r[0].modseq == m0 + 1);
    store_flag_results_free(r, nr);
    test_assert(store_mailbox_status_full(dir, ACCT, "INBOX", &st, &err) == 0);
    test_assert(st.highestmodseq == m0 + 1 && st.unseen == 0);
    test_assert(store_set_flags(dir, ACCT, "INBOX", all, 1, STORE_FLAGS_REMOVE,
                                STORE_F_DRAFT, "a", 0, 0, &r, &nr, &err) == 0);
    test_assert(nr == 1 && r[0].changed && r[0].sysflags == STORE_F_SEEN &&
                r[0].modseq == m0 + 2);
    test_assert_streq(r[0].keywords, "b");
    store_flag_results_free(r, nr);
    /* UNCHANGEDSINCE m0+1: UID 1 (m0+2) is MODIFIED, 2 and 3 change */
    test_assert(store_set_flags(dir, ACCT, "INBOX", all, 3, STORE_FLAGS_ADD, STORE_F_FLAGGED,
                                NULL, 1, m0 + 1, &r, &nr, &err) == 0);
    test_assert(nr == 3 && r[0].modified && !r[0].changed && r[0].modseq == m0 + 2);
    test_assert(!(r[0].sysflags & STORE_F_FLAGGED));
    test_assert(!r[1].modified && r[1].changed && r[1].modseq == m0 + 3);
    store_flag_results_free(r, nr);
    /* UNCHANGEDSINCE 0 fails for every message */
    test_assert(store_set_flags(dir, ACCT, "INBOX", all, 3, STORE_FLAGS_ADD, STORE_F_ANSWERED,
                                NULL, 1, 0, &r, &nr, &err) == 0);
    test_assert(nr == 3 && r[0].modified && r[1].modified && r[2].modified);
    store_flag_results_free(r, nr);
    /* bad keyword, no such mailbox, too many flags */
    test_assert(store_set_flags(dir, ACCT, "INBOX", all, 3, STORE_FLAGS_ADD, 0, "bad(kw", 0, 0,
                                &r, &nr, &err) == -1);
    test_assert(store_set_flags(dir, ACCT, "NoSuch", all, 3, STORE_FLAGS_ADD, 0, NULL, 0, 0, &r,
                                &nr, &err) == 1);
    char many[400] = "";
    for (int i = 0; i < 60; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "kw%02d ", i);
    test_assert(store_set_flags(dir, ACCT, "INBOX", all, 3, STORE_FLAGS_ADD, 0, many, 0, 0, &r,
                                &nr, &err) == -1);
    test_assert(store_mailbox_status_full(dir, ACCT, "INBOX", &st, &err) == 0);
    test_assert(st.highestmodseq == m0 + 3);
    test_end();
}

static void test_expunge_deleted(void)
{
    test_begin("store imap: expunge removes only \\Deleted, UID EXPUNGE only the set");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(put(dir, "INBOX", STORE_F_DELETED) == 1);
    test_assert(put(dir, "INBOX", 0) == 2);
    test_assert(put(dir, "INBOX", STORE_F_DELETED | STORE_F_SEEN) == 3);
    test_assert(put(dir, "INBOX", STORE_F_DELETED) == 4);
    uint32_t *ex;
    uint32_t nex;
    uint64_t ms;
    uint32_t set[] = { 2, 3 };
    test_assert(store_expunge_deleted(dir, ACCT, "INBOX", set, 2, &ex, &nex, &ms, &err) == 0);
    test_assert(nex == 1 && ex[0] == 3);
    free(ex);
    struct store_changes c;
    test_assert(store_changes_since(dir, ACCT, "INBOX", ms - 1, &c, &err) == 0);
    test_assert(c.nvanished == 1 && c.vanished[0] == 3 && c.highestmodseq == ms);
    store_changes_free(&c);
    test_assert(store_expunge_deleted(dir, ACCT, "INBOX", NULL, 0, &ex, &nex, &ms, &err) == 0);
    test_assert(nex == 2 && ex[0] == 1 && ex[1] == 4);
    free(ex);
    test_assert(store_expunge_deleted(dir, ACCT, "INBOX", NULL, 0, &ex, &nex, &ms, &err) == 0);
    test_assert(nex == 0 && ex == NULL);
    struct store_view v;
    test_assert(store_view_open(dir, ACCT, "INBOX", &v, &err) == 0);
    test_assert(v.count == 1 && v.msgs[0].uid == 2);
    store_view_free(&v);
    struct store_usage u;
    test_assert(store_usage_get(dir, ACCT, &u, &err) == 0 && u.messages == 1);
    test_end();
}

static void test_copy_move(void)
{
    test_begin("store imap: copy and move with UID maps, vanished, shared files");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int i = 0; i < 4; i++)
        test_assert(put(dir, "INBOX", i == 1 ? STORE_F_FLAGGED : 0) == (uint32_t)i + 1);
    test_assert(put(dir, "Archive", 0) == 1);
    uint32_t uids[] = { 2, 3, 7 };
    uint32_t *src, *dst, n, uv;
    test_assert(store_copy(dir, ACCT, "INBOX", "Archive", uids, 3, 0, 0, &src, &dst, &n, &uv,
                           &err) == 0);
    test_assert(n == 2 && src[0] == 2 && src[1] == 3 && dst[0] == 2 && dst[1] == 3 && uv > 0);
    free(src);
    free(dst);
    struct store_status st;
    test_assert(store_mailbox_status_full(dir, ACCT, "Archive", &st, &err) == 0);
    test_assert(st.messages == 3 && st.uidnext == 4 && st.uidvalidity == uv);
    struct store_changes cc;
    test_assert(store_changes_since(dir, ACCT, "Archive", st.highestmodseq - 1, &cc, &err) == 0);
    test_assert(cc.nchanged == 2 && cc.changed[0].uid == 2 && cc.changed[1].uid == 3 &&
                cc.nvanished == 0);
    store_changes_free(&cc);
    struct store_usage u;
    test_assert(store_usage_get(dir, ACCT, &u, &err) == 0 && u.messages == 7);
    /* flags copied; expunging the original leaves the copy readable */
    struct store_view v;
    test_assert(store_view_open(dir, ACCT, "Archive", &v, &err) == 0);
    test_assert(v.count == 3 && v.msgs[1].sysflags == STORE_F_FLAGGED);
    store_view_free(&v);
    uint32_t two[] = { 2 };
    test_assert(store_expunge(dir, ACCT, "INBOX", two, 1, &err) == 0);
    char *data = NULL;
    size_t len = 0;
    test_assert(store_read(dir, ACCT, "Archive", 2, &data, &len) == 0);
    test_assert_memeq(data, len, msg, MSGLEN);
    free(data);
    /* move: new UIDs, vanished in the source with its MODSEQ */
    struct store_status in0;
    test_assert(store_mailbox_status_full(dir, ACCT, "INBOX", &in0, &err) == 0);
    uint32_t mv[] = { 1, 3 };
    test_assert(store_copy(dir, ACCT, "INBOX", "Archive", mv, 2, 1, 0, &src, &dst, &n, &uv,
                           &err) == 0);
    test_assert(n == 2 && dst[0] == 4 && dst[1] == 5);
    free(src);
    free(dst);
    struct store_changes c;
    test_assert(store_changes_since(dir, ACCT, "INBOX", in0.highestmodseq, &c, &err) == 0);
    test_assert(c.nvanished == 2 && c.vanished[0] == 1 && c.vanished[1] == 3);
    test_assert(c.highestmodseq == in0.highestmodseq + 1);
    store_changes_free(&c);
    test_assert(store_read(dir, ACCT, "Archive", 5, &data, &len) == 0);
    free(data);
    test_assert(store_usage_get(dir, ACCT, &u, &err) == 0 && u.messages == 6);
    /* no such target: 1; copy within a mailbox */
    uint32_t four[] = { 4 };
    test_assert(store_copy(dir, ACCT, "INBOX", "Nope", four, 1, 0, 0, &src, &dst, &n, &uv,
                           &err) == 1);
    test_assert(store_copy(dir, ACCT, "INBOX", "INBOX", four, 1, 0, 0, &src, &dst, &n, &uv,
                           &err) == 0);
    test_assert(n == 1 && dst[0] == 5);
    free(src);
    free(dst);
    test_end();
}

static void test_append_quota(void)
{
    test_begin("store imap: APPEND and COPY refused over quota, usage kept");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    uint32_t uid, uv;
    test_assert(store_append(dir, ACCT, "Drafts", msg, MSGLEN, STORE_F_DRAFT, "$Todo",
                             1700000000, 0, &uid, &uv, &err) == 0);
    test_assert(uid == 1 && uv > 0);
    test_assert(store_append(dir, ACCT, "Nope", msg, MSGLEN, 0, NULL, 0, 0, &uid, &uv, &err) ==
                1);
    uint64_t quota = 2 * MSGLEN;
    test_assert(store_append(dir, ACCT, "INBOX", msg, MSGLEN, 0, NULL, 0, quota, &uid, &uv,
                             &err) == 0);
    test_assert(store_append(dir, ACCT, "INBOX", msg, MSGLEN, 0, NULL, 0, quota, &uid, &uv,
                             &err) == 3);
    test_assert(store_append(dir, ACCT, "INBOX", msg, MSGLEN, 0, NULL, 0, 0, &uid, &uv, &err) ==
                0);
    uint32_t *src, *dst, n;
    uint32_t one[] = { 1 };
    test_assert(store_copy(dir, ACCT, "INBOX", "Archive", one, 1, 0, 3 * MSGLEN, &src, &dst, &n,
                           &uv, &err) == 3);
    test_assert(store_copy(dir, ACCT, "INBOX", "Archive", one, 1, 1, 3 * MSGLEN, &src, &dst, &n,
                           &uv, &err) == 0);   /* a move never passes the quota */
    free(src);
    free(dst);
    struct store_usage u;
    test_assert(store_usage_get(dir, ACCT, &u, &err) == 0);
    test_assert(u.messages == 3 && u.bytes == 3 * MSGLEN);
    test_assert(ix_int(dir, "SELECT bytes FROM usage") ==
                ix_int(dir, "SELECT sum(size) FROM messages"));
    struct store_fmsg *f;
    uint32_t nf;
    uint32_t want[] = { 1, 5 };
    test_assert(store_fetch_rows(dir, ACCT, "Drafts", want, 2, &f, &nf, &err) == 0);
    test_assert(nf == 1 && f[0].uid == 1 && f[0].internaldate == 1700000000 &&
                f[0].sysflags == STORE_F_DRAFT && f[0].size == MSGLEN);
    test_assert_streq(f[0].keywords, "$Todo");
    test_assert(access(f[0].path, R_OK) == 0);
    store_fmsgs_free(f, nf);
    /* APPEND computed the structure (src/mime); a later store_cache_structure
     * only fills rows that have none, so it leaves this one alone. */
    test_assert(store_fetch_rows(dir, ACCT, "Drafts", want, 1, &f, &nf, &err) == 0);
    test_assert(nf == 1 && f[0].envelope && f[0].envelope[0] == '(');
    test_assert(f[0].bodystructure && f[0].bodystructure[0] == '(');
    store_fmsgs_free(f, nf);
    test_assert(store_cache_structure(dir, ACCT, "Drafts", 1, "(NIL)", "(\"text\")") == 0);
    test_assert(store_fetch_rows(dir, ACCT, "Drafts", want, 1, &f, &nf, &err) == 0);
    test_assert(nf == 1 && f[0].envelope && strcmp(f[0].envelope, "(NIL)") != 0);
    store_fmsgs_free(f, nf);
    /* no store at all: nothing used */
    test_assert(store_usage_get(dir, "nobody@example.test", &u, &err) == 0 && u.bytes == 0);
    test_end();
}

static void test_migrate_v2(void)
{
    test_begin("store imap: a schema-2 index is migrated (usage, subscriptions, noselect)");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    for (int i = 0; i < 3; i++)   /* whole files, as version 2 had */
        test_assert(put(dir, "INBOX", 0) == (uint32_t)i + 1);
    test_assert(ix_exec(dir, "DROP INDEX messages_file; DROP TABLE pack_state;"
                             " DROP TABLE pack_retired;"
                             " ALTER TABLE messages DROP COLUMN offset;"
                             " DROP TRIGGER usage_insert; DROP TRIGGER usage_delete;"
                             " DROP TABLE usage; DROP TABLE subscriptions;"
                             " DROP TABLE uidvalidity_max; DROP INDEX messages_modseq;"
                             " ALTER TABLE mailboxes DROP COLUMN noselect;"
                             " ALTER TABLE messages DROP COLUMN header;"
                             " UPDATE mailboxes SET subscribed = 0 WHERE name = 'Junk';"
                             " UPDATE schema_version SET version = 2"));
    test_assert(ix_int(dir, "SELECT version FROM schema_version") == 2);
    struct store_usage u;
    test_assert(store_usage_get(dir, ACCT, &u, &err) == 0);
    test_assert(u.messages == 3 && u.bytes == 3 * MSGLEN);
    test_assert(ix_int(dir, "SELECT version FROM schema_version") == 6);
    struct store_mailbox *l = NULL;
    int n = 0;
    test_assert(store_mailboxes(dir, ACCT, &l, &n, &err) == 0 && n == 6);
    test_assert(find_mb(l, n, "INBOX")->attrs & STORE_MB_SUBSCRIBED);
    test_assert(!(find_mb(l, n, "Junk")->attrs & STORE_MB_SUBSCRIBED));
    free(l);
    test_assert(store_mailbox_create(dir, ACCT, "New", NULL, &err) == 0);
    struct store_status a, b;
    test_assert(store_mailbox_status_full(dir, ACCT, "New", &a, &err) == 0);
    test_assert(store_mailbox_status_full(dir, ACCT, "Archive", &b, &err) == 0);
    test_assert(a.uidvalidity > b.uidvalidity);
    test_end();
}

static void test_uidvalidity_never_repeats(void)
{
    test_begin("store imap: UIDVALIDITY strictly increases across delete and re-create");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    uint32_t last = 0;
    for (int i = 0; i < 5; i++) {
        struct store_status st;
        test_assert(store_mailbox_create(dir, ACCT, "Z", NULL, &err) == 0);
        test_assert(store_mailbox_status_full(dir, ACCT, "Z", &st, &err) == 0);
        test_assert(st.uidvalidity > last);
        last = st.uidvalidity;
        test_assert(store_mailbox_delete(dir, ACCT, "Z", &err) == 0);
    }
    test_end();
}

static void test_big_view(void)
{
    test_begin("store imap: a 100,000-message view, read again from the cache and after changes");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    test_assert(put(dir, "INBOX", 0) == 1);
    /* rows straight into the index (the files do not matter to the view) */
    test_assert(ix_exec(dir, "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n"
                             " WHERE i < 100000) INSERT INTO messages(mailbox_id, uid, file,"
                             " size, internaldate, modseq, flags) SELECT (SELECT id FROM"
                             " mailboxes WHERE name = 'INBOX'), i, 'msg/none', 100, 0, i,"
                             " CASE WHEN i % 3 = 0 THEN '\\Seen' WHEN i % 7 = 0 THEN"
                             " '\\Seen $Label1' ELSE '' END FROM n;"
                             " UPDATE mailboxes SET uidnext = 100001, highestmodseq = 100000"
                             " WHERE name = 'INBOX'"));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct store_view v;
    test_assert(store_view_open(dir, ACCT, "INBOX", &v, &err) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("     store_view_open of %u messages: %.1f ms\n", v.count, ms);
    test_assert(v.count == 100000 && v.msgs[99999].uid == 100000 && v.nkeywords == 1);
    test_assert(v.msgs[2].sysflags == STORE_F_SEEN);
    store_view_free(&v);
    /* again: the unchanged view comes from the process's cache */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    test_assert(store_view_open(dir, ACCT, "INBOX", &v, &err) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("     store_view_open of %u messages again (cached): %.1f ms\n", v.count, ms);
    test_assert(v.count == 100000 && v.msgs[99999].uid == 100000 && v.nkeywords == 1);
    test_assert(v.msgs[6].sysflags == STORE_F_SEEN && v.msgs[6].keywords &&
                strcmp(v.msgs[6].keywords, "$Label1") == 0);
    store_view_free(&v);
    struct store_changes c;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    test_assert(store_changes_since(dir, ACCT, "INBOX", 100000, &c, &err) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("     store_changes_since with nothing changed: %.2f ms\n", ms);
    test_assert(c.nchanged == 0);
    store_changes_free(&c);
    test_assert(store_changes_since(dir, ACCT, "INBOX", 99990, &c, &err) == 0);
    test_assert(c.nchanged == 10 && c.changed[0].uid == 99991);
    store_changes_free(&c);
    /* every change shows in the next view: flags, a new keyword, expunge, delivery */
    uint32_t five[] = { 5 }, ten[] = { 10 };
    test_assert(store_add_flag(dir, ACCT, "INBOX", five, 1, "\\Flagged", &err) == 0);
    test_assert(store_add_flag(dir, ACCT, "INBOX", five, 1, "$New", &err) == 0);
    test_assert(store_view_open(dir, ACCT, "INBOX", &v, &err) == 0);
    test_assert(v.msgs[4].uid == 5 && v.msgs[4].sysflags == STORE_F_FLAGGED);
    test_assert(v.msgs[4].keywords && strcmp(v.msgs[4].keywords, "$New") == 0);
    test_assert(v.nkeywords == 2 && v.highestmodseq == 100002);
    store_view_free(&v);
    test_assert(store_expunge(dir, ACCT, "INBOX", ten, 1, &err) == 0);
    test_assert(store_view_open(dir, ACCT, "INBOX", &v, &err) == 0);
    test_assert(v.count == 99999 && v.msgs[9].uid == 11);
    store_view_free(&v);
    test_assert(put(dir, "INBOX", 0) == 100001);
    test_assert(store_view_open(dir, ACCT, "INBOX", &v, &err) == 0);
    test_assert(v.count == 100000 && v.msgs[99999].uid == 100001 && v.uidnext == 100002);
    store_view_free(&v);
    test_end();
}

static void test_notify_without_loops(void)
{
    test_begin("notify: without registered loops a change notifies nobody");
    notify_reset();
    notify_mailbox_changed(ACCT);
    notify_mailbox_changed(NULL);
    notify_register_loop(NULL, NULL);
    notify_mailbox_changed(ACCT);
    test_end();
}

struct worker_arg {
    const char *dir;
    int id, failures;
};

/* 40 APPENDs into INBOX and Archive, flag changes and copies between them. */
static void *concurrent_worker(void *arg)
{
    struct worker_arg *w = arg;
    const char *err = NULL;
    for (int i = 0; i < 40; i++) {
        uint32_t uid = put(w->dir, i % 2 ? "Archive" : "INBOX", 0);
        if (uid == 0) {
            w->failures++;
            continue;
        }
        struct store_flag_result *r;
        uint32_t nr, one[] = { uid };
        if (store_set_flags(w->dir, ACCT, i % 2 ? "Archive" : "INBOX", one, 1, STORE_FLAGS_ADD,
                            STORE_F_SEEN, NULL, 0, 0, &r, &nr, &err) != 0)
            w->failures++;
        else
            store_flag_results_free(r, nr);
        if (i % 10 == 0) {
            uint32_t *src, *dst, n, uv;
            if (store_copy(w->dir, ACCT, "INBOX", "Trash", one, 1, 0, 0, &src, &dst, &n, &uv,
                           &err) != 0)
                w->failures++;
            else {
                free(src);
                free(dst);
            }
        }
    }
    return NULL;
}

static void test_concurrent_changes(void)
{
    test_begin("store imap: concurrent appends, flags and copies keep UIDs, MODSEQs, usage");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    struct store_mailbox *l;
    int nl;
    test_assert(store_mailboxes(dir, ACCT, &l, &nl, &err) == 0);
    free(l);
    pthread_t t[4];
    struct worker_arg w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker_arg){ dir, i, 0 };
        test_assert(pthread_create(&t[i], NULL, concurrent_worker, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        test_assert(w[i].failures == 0);
    }
    static const char *const boxes[] = { "INBOX", "Archive", "Trash" };
    uint64_t total = 0;
    for (int b = 0; b < 3; b++) {
        struct store_view v;
        test_assert(store_view_open(dir, ACCT, boxes[b], &v, &err) == 0);
        total += v.count;
        uint64_t maxms = 0;
        for (uint32_t i = 0; i < v.count; i++) {
            test_assert(v.msgs[i].uid == i + 1);   /* dense: nothing expunged */
            if (v.msgs[i].modseq > maxms)
                maxms = v.msgs[i].modseq;
        }
        test_assert(v.uidnext == v.count + 1 && v.highestmodseq == maxms);
        store_view_free(&v);
    }
    test_assert(total == 4 * 40 + 4 * 4);
    struct store_usage u;
    test_assert(store_usage_get(dir, ACCT, &u, &err) == 0 && u.messages == total &&
                u.bytes == total * MSGLEN);
    test_end();
}

struct notified {
    struct loop *loop;
    int calls;
    char last[64];
};
static struct notified notified[2];

static void on_change(struct loop *loop, const char *account)
{
    for (int i = 0; i < 2; i++) {
        if (notified[i].loop == loop) {
            notified[i].calls++;
            snprintf(notified[i].last, sizeof notified[i].last, "%s", account);
        }
    }
}

static void test_notify_loops(void)
{
    test_begin("notify: every registered loop gets each change, on its own queue");
    const char *dir = test_tmpdir();
    const char *err = NULL;
    memset(notified, 0, sizeof notified);
    notify_reset();
    for (int i = 0; i < 2; i++) {
        notified[i].loop = loop_new();
        notify_register_loop(notified[i].loop, on_change);
    }
    test_assert(put(dir, "INBOX", 0) == 1);                       /* append */
    uint32_t one[] = { 1 };
    struct store_flag_result *r;
    uint32_t nr;
    test_assert(store_set_flags(dir, ACCT, "INBOX", one, 1, STORE_FLAGS_ADD, STORE_F_SEEN, NULL,
                                0, 0, &r, &nr, &err) == 0);       /* flags */
    store_flag_results_free(r, nr);
    test_assert(store_set_flags(dir, ACCT, "INBOX", one, 1, STORE_FLAGS_ADD, STORE_F_SEEN, NULL,
                                0, 0, &r, &nr, &err) == 0);       /* no change: no notice */
    store_flag_results_free(r, nr);
    test_assert(store_mailbox_create(dir, ACCT, "N", NULL, &err) == 0);   /* mailbox */
    uint32_t uid;
    int dup;
    test_assert(store_deliver(dir, ACCT, "INBOX", "QN", msg, MSGLEN, 0, &uid, &dup, &err) == 0);
    test_assert(notified[0].calls == 0);   /* posted, not run: the loops have not run */
    for (int i = 0; i < 2; i++) {
        struct loop *l = notified[i].loop;
        loop_free(&l);   /* runs the posted completions */
        test_assert(notified[i].calls == 4);
        test_assert_streq(notified[i].last, ACCT);
    }
    notify_reset();
    test_end();
}

int main(void)
{
    return test_run((test_fn[]){ test_flags_parse, test_mailbox_create_list, test_subscribe,
                                 test_delete, test_rename, test_view_and_changes,
                                 test_set_flags, test_expunge_deleted, test_copy_move,
                                 test_append_quota, test_migrate_v2,
                                 test_uidvalidity_never_repeats, test_big_view,
                                 test_notify_without_loops, test_notify_loops,
                                 test_concurrent_changes, NULL });
}
