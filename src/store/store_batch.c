/* store_batch: delivering into an account's mailboxes (store.h:
 * store_deliver_batch, and store_deliver, a batch of one).
 *
 * One call stores N messages of one account in one BEGIN IMMEDIATE
 * transaction: per item, the duplicate check by queue id (the deliveries
 * table, and the items before it in the batch), the mailbox, a UID and a
 * MODSEQ (the batch is one change: its messages in one mailbox share that
 * mailbox's highestmodseq + 1); then every stored message's bytes are appended to the active
 * pack in one pwritev (store_pack.c), the rows inserted with prepared
 * statements reused across the items, each touched mailbox's uidnext and
 * highestmodseq saved once, the pack fdatasync'd (its directory fsync'd
 * when the pack is new), and only then COMMIT (synchronous=FULL: durable
 * when it returns). notify_mailbox_changed runs once after.
 *
 * The ENVELOPE/BODYSTRUCTURE/header cache of each message is computed
 * before the write lock is taken (pure CPU: it need not hold other
 * writers back). The quota is not checked here: SMTP checked it at
 * RCPT/DATA. A crash after the append and before the COMMIT leaves bytes
 * in the pack that no row names: harmless, never read. */
#include "store/store.h"
#include "store/store_imap.h"
#include "store/store_int.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/xalloc.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

enum { ST_DUP, ST_MBOX, ST_INSERT, ST_DELIVERY, ST_MBSAVE, ST_N };
static const char *const batch_sql[ST_N] = {
    "SELECT uid FROM deliveries WHERE queue_id = ?",
    "SELECT id, uidnext, highestmodseq FROM mailboxes WHERE name = ? AND noselect = 0",
    "INSERT INTO messages(mailbox_id, uid, file, offset, size, internaldate, modseq, flags,"
    " queue_id, envelope, bodystructure, header) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO deliveries(queue_id, mailbox_id, uid) VALUES (?, ?, ?)",
    "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
};

/* A mailbox the batch delivers into. */
struct bmbox {
    const char *name;       /* canonical */
    int64_t id, uidnext, highestmodseq;
    int found;              /* 0 no such mailbox */
    int touched;
};

/* What the batch knows of one item. */
struct bitem {
    const char *qid;        /* NULL: none */
    char *flags;            /* normalised, malloc'd */
    struct store_cached cache;
    int mb;                 /* index into bmbox */
    int64_t modseq;
    uint64_t offset;
    int store;              /* 1: append and insert */
    int twin;               /* >= 0: the earlier item with the same queue id */
};

struct batch {
    struct store_ix ix;
    sqlite3_stmt *st[ST_N];
    struct store_batch_item *items;
    struct bitem *b;
    int n;
    struct bmbox *mb;
    int nmb;
    struct store_pack pack;
};

static sqlite3_stmt *stmt(struct batch *bt, int which)
{
    sqlite3_stmt *st = bt->st[which];
    if (!st)
        return bt->st[which] = store_stmt_take(bt->ix.db, batch_sql[which]);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Before the lock: argument checks, flags, the cached structure. */
static void item_prepare(struct store_batch_item *it, struct bitem *b)
{
    b->twin = -1;
    b->mb = -1;
    b->qid = it->queue_id && *it->queue_id ? it->queue_id : NULL;
    if (!it->mailbox || (!it->data && it->len > 0))
        return;   /* result stays -1 */
    char kw[STORE_MAX_FLAGS_LEN + 1];
    unsigned sys = store_flags_parse(it->flags ? it->flags : "", kw, sizeof kw);
    if (!store_keywords_valid(kw))
        return;
    b->flags = store_flags_join(sys, kw);
    if (strlen(b->flags) > STORE_MAX_FLAGS_LEN) {
        free(b->flags);
        b->flags = NULL;
        return;
    }
    store_structure_compute(it->data ? it->data : "", it->len, &b->cache);
    it->result = 0;   /* so far */
}

/* The batch's slot for mailbox NAME, looked up on first use. -1 error. */
static int mbox_slot(struct batch *bt, const char *name)
{
    name = store_mailbox_canonical(name);
    for (int i = 0; i < bt->nmb; i++)
        if (strcmp(bt->mb[i].name, name) == 0)
            return i;
    sqlite3_stmt *st = stmt(bt, ST_MBOX);
    if (!st)
        return -1;
    struct bmbox *m = &bt->mb[bt->nmb];
    memset(m, 0, sizeof *m);
    m->name = name;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = store_ix_step(st);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        m->found = 1;
        m->id = sqlite3_column_int64(st, 0);
        m->uidnext = sqlite3_column_int64(st, 1);
        m->highestmodseq = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    return bt->nmb++;
}

/* In the transaction: duplicate, mailbox, UID and MODSEQ of item I. */
static int item_place(struct batch *bt, int i)
{
    struct store_batch_item *it = &bt->items[i];
    struct bitem *b = &bt->b[i];
    if (it->result != 0)
        return 0;
    if (b->qid) {
        for (int j = 0; j < i; j++) {
            if (bt->b[j].qid && bt->items[j].result == 0 && !bt->items[j].duplicate &&
                strcmp(bt->b[j].qid, b->qid) == 0) {
                b->twin = j;
                it->duplicate = 1;
                return 0;
            }
        }
        sqlite3_stmt *st = stmt(bt, ST_DUP);
        if (!st)
            return -1;
        sqlite3_bind_text(st, 1, b->qid, -1, SQLITE_STATIC);
        int d = store_ix_step(st);
        if (d < 0)
            return -1;
        if (d == 0) {
            it->uid = (uint32_t)sqlite3_column_int64(st, 0);
            it->duplicate = 1;
            sqlite3_reset(st);
            return 0;
        }
        sqlite3_reset(st);
    }
    int m = mbox_slot(bt, it->mailbox);
    if (m < 0)
        return -1;
    struct bmbox *mb = &bt->mb[m];
    if (!mb->found) {
        it->result = 1;
        return 0;
    }
    if (mb->uidnext < 1 || mb->uidnext >= UINT32_MAX) {
        it->result = -1;   /* UID space exhausted: needs a new UIDVALIDITY */
        return 0;
    }
    if (!mb->touched)
        mb->highestmodseq++;   /* the batch is one change: one MODSEQ per mailbox */
    b->mb = m;
    it->uid = (uint32_t)mb->uidnext++;
    b->modseq = mb->highestmodseq;
    mb->touched = 1;
    b->store = 1;
    return 0;
}

/* Appends the bytes of every item to store to the active pack. */
static int batch_append(struct batch *bt, const char **error_r)
{
    uint64_t total = 0;
    int k = 0;
    for (int i = 0; i < bt->n; i++)
        if (bt->b[i].store) {
            total += bt->items[i].len;
            k++;
        }
    if (store_pack_begin(&bt->ix, total, &bt->pack, error_r) < 0)
        return -1;
    struct iovec *iov = xcalloc(k ? (size_t)k : 1, sizeof *iov);
    uint64_t off = bt->pack.end;
    k = 0;
    for (int i = 0; i < bt->n; i++) {
        if (!bt->b[i].store)
            continue;
        bt->b[i].offset = off;
        off += bt->items[i].len;
        if (bt->items[i].len > 0)
            iov[k++] = (struct iovec){ (void *)bt->items[i].data, bt->items[i].len };
    }
    int rc = store_pack_append(&bt->pack, iov, k, error_r);
    free(iov);
    return rc;
}

static int item_insert(struct batch *bt, int i)
{
    struct store_batch_item *it = &bt->items[i];
    struct bitem *b = &bt->b[i];
    struct bmbox *mb = &bt->mb[b->mb];
    sqlite3_stmt *st = stmt(bt, ST_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, mb->id);
    sqlite3_bind_int64(st, 2, it->uid);
    sqlite3_bind_text(st, 3, bt->pack.name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)b->offset);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)it->len);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)it->internaldate);
    sqlite3_bind_int64(st, 7, b->modseq);
    sqlite3_bind_text(st, 8, b->flags, -1, SQLITE_STATIC);
    if (b->qid)
        sqlite3_bind_text(st, 9, b->qid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, b->cache.envelope, -1, SQLITE_STATIC);     /* NULL: NULL */
    sqlite3_bind_text(st, 11, b->cache.bodystructure, -1, SQLITE_STATIC);
    if (b->cache.header)
        sqlite3_bind_blob(st, 12, b->cache.header, (int)b->cache.header_len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return -1;
    if (!b->qid)
        return 0;
    if (!(st = stmt(bt, ST_DELIVERY)))
        return -1;
    sqlite3_bind_text(st, 1, b->qid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, mb->id);
    sqlite3_bind_int64(st, 3, it->uid);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
}

static int mailboxes_save(struct batch *bt)
{
    for (int m = 0; m < bt->nmb; m++) {
        if (!bt->mb[m].touched)
            continue;
        sqlite3_stmt *st = stmt(bt, ST_MBSAVE);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, bt->mb[m].uidnext);
        sqlite3_bind_int64(st, 2, bt->mb[m].highestmodseq);
        sqlite3_bind_int64(st, 3, bt->mb[m].id);
        if (sqlite3_step(st) != SQLITE_DONE)
            return -1;
    }
    return 0;
}

/* The transaction. 0 committed (*stored_r: messages stored), -1 not. */
static int batch_commit(struct batch *bt, int *stored_r, const char **error_r)
{
    sqlite3 *db = bt->ix.db;
    *error_r = "cannot update the mailbox index";
    if (store_ix_exec(db, "BEGIN IMMEDIATE") < 0) {
        *error_r = "cannot lock the mailbox index";
        return -1;
    }
    int stored = 0;
    for (int i = 0; i < bt->n; i++) {
        if (item_place(bt, i) < 0)
            goto sqlfail;
        stored += bt->b[i].store;
    }
    if (stored > 0) {
        if (batch_append(bt, error_r) < 0)
            goto fail;
        for (int i = 0; i < bt->n; i++)
            if (bt->b[i].store && item_insert(bt, i) < 0)
                goto sqlfail;
        if (mailboxes_save(bt) < 0)
            goto sqlfail;
        if (store_pack_sync(&bt->ix, &bt->pack, error_r) < 0)
            goto fail;
    }
    for (int i = 0; i < ST_N; i++)
        if (bt->st[i])
            sqlite3_reset(bt->st[i]);
    if (store_ix_exec(db, stored > 0 ? "COMMIT" : "ROLLBACK") < 0)
        goto sqlfail;
    *stored_r = stored;
    return 0;
sqlfail:
    log_error("store", "event=index-failed op=deliver error=\"%s\"", sqlite3_errmsg(db));
    *error_r = "cannot update the mailbox index";
fail:
    for (int i = 0; i < ST_N; i++)
        if (bt->st[i])
            sqlite3_reset(bt->st[i]);
    if (!sqlite3_get_autocommit(db))
        store_ix_exec(db, "ROLLBACK");
    return -1;
}

static void batch_free(struct batch *bt, int committed)
{
    for (int i = 0; i < ST_N; i++)
        store_stmt_give(bt->ix.db, bt->st[i]);
    for (int i = 0; i < bt->n; i++) {
        free(bt->b[i].flags);
        store_cached_free(&bt->b[i].cache);
    }
    free(bt->b);
    free(bt->mb);
    if (bt->ix.db)
        store_pack_end(&bt->ix, &bt->pack, committed);
    store_ix_close(&bt->ix);
}

int store_deliver_batch(const char *data_dir, const char *account,
                        struct store_batch_item *items, int n, const char **error_r)
{
    if (n < 0 || (n > 0 && !items)) {
        *error_r = "bad arguments";
        return -1;
    }
    for (int i = 0; i < n; i++) {
        items[i].uid = 0;
        items[i].duplicate = 0;
        items[i].result = -1;
    }
    struct batch bt;
    memset(&bt, 0, sizeof bt);
    bt.pack.fd = -1;
    if (store_ix_open(data_dir, account, 1, &bt.ix, error_r) != 0)
        return -1;
    bt.items = items;
    bt.n = n;
    bt.b = xcalloc(n ? (size_t)n : 1, sizeof *bt.b);
    bt.mb = xcalloc(n ? (size_t)n : 1, sizeof *bt.mb);
    for (int i = 0; i < n; i++)
        item_prepare(&items[i], &bt.b[i]);
    int stored = 0;
    if (batch_commit(&bt, &stored, error_r) < 0) {
        for (int i = 0; i < n; i++) {
            items[i].uid = 0;
            items[i].duplicate = 0;
            items[i].result = -1;
        }
        batch_free(&bt, 0);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (bt.b[i].twin >= 0)
            items[i].uid = items[bt.b[i].twin].uid;
    batch_free(&bt, 1);
    if (stored > 0)
        notify_mailbox_changed(account);
    return 0;
}

int store_deliver(const char *data_dir, const char *account, const char *mailbox,
                  const char *queue_id, const char *data, size_t len, time_t internaldate,
                  uint32_t *uid_r, int *duplicate_r, const char **error_r)
{
    struct store_batch_item it = {
        .mailbox = mailbox, .queue_id = queue_id, .data = data, .len = len,
        .internaldate = internaldate,
    };
    *uid_r = 0;
    *duplicate_r = 0;
    if (!mailbox || (!data && len > 0)) {
        *error_r = "bad arguments";
        return -1;
    }
    if (store_deliver_batch(data_dir, account, &it, 1, error_r) < 0)
        return -1;
    if (it.result != 0) {
        *error_r = it.result > 0 ? "no such mailbox" : "cannot store the message";
        return -1;
    }
    *uid_r = it.uid;
    *duplicate_r = it.duplicate;
    return 0;
}
