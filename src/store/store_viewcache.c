/* store_viewcache: the views of the largest mailboxes read lately, shared
 * by every session of the process (store_int.h: store_viewcache_get,
 * store_viewcache_put), so that SELECT of a big mailbox that has not
 * changed copies an array instead of reading every row of the index.
 *
 * An entry is the (uid, flags, modseq) list of one mailbox of one index
 * file (path, device, inode) together with the mailbox's UIDVALIDITY,
 * UIDNEXT and HIGHESTMODSEQ when it was read. (The file's change time is
 * not part of the key: a checkpoint of the WAL changes it without changing
 * any mailbox. A store deleted and made again that got the old inode back
 * still differs in UIDVALIDITY, which is the creation time and never
 * repeats within a store.) Every change to a mailbox's
 * messages (delivery, APPEND, COPY, MOVE, flags, expunge) gives it a new
 * HIGHESTMODSEQ in the same transaction, so an entry whose three numbers
 * equal those read in the caller's read transaction is exactly what the
 * rows would say. Mailboxes under VIEWCACHE_MIN messages are read directly;
 * the cache keeps at most VIEWCACHE_ENTRIES entries and VIEWCACHE_MAX_BYTES,
 * dropping the least recently used.
 *
 * The message array itself is not copied: it lives in a reference-counted
 * block (struct store_vblock) that the cache and every view made from it
 * share read-only. A session that changes its view (its own flag changes,
 * expunges, new mail) first takes a private copy (store_view_own), so SELECT
 * of a cached mailbox costs a reference, and a hundred sessions on one big
 * mailbox hold one array. */
#include "store/store_imap.h"
#include "store/store_int.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define VIEWCACHE_MIN 2000
#define VIEWCACHE_ENTRIES 16
#define VIEWCACHE_MAX_BYTES (64u * 1024 * 1024)

struct store_vblock {
    atomic_uint refs;
    struct store_vmsg *msgs;    /* owned, with their keywords */
    uint32_t count;
    size_t bytes;
};

struct viewcache_entry {
    char *index;
    dev_t dev;
    ino_t ino;
    int64_t mbox;
    uint32_t uidvalidity, uidnext;
    uint64_t highestmodseq;
    struct store_vblock *block;
    char **keywords;            /* the mailbox's keyword list */
    int nkeywords;
    uint64_t used;
};

static struct {
    pthread_mutex_t lock;
    struct viewcache_entry e[VIEWCACHE_ENTRIES];
    size_t bytes;
    uint64_t clock;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

void store_vblock_unref(struct store_vblock *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    for (uint32_t i = 0; i < b->count; i++)
        free(b->msgs[i].keywords);
    free(b->msgs);
    free(b);
}

static char **keywords_copy(char *const *kw, int n)
{
    char **out = n ? xcalloc((size_t)n, sizeof *out) : NULL;
    for (int i = 0; i < n; i++)
        out[i] = xstrdup(kw[i]);
    return out;
}

static void entry_drop(struct viewcache_entry *e)
{
    cache.bytes -= e->block->bytes;
    store_vblock_unref(e->block);
    for (int i = 0; i < e->nkeywords; i++)
        free(e->keywords[i]);
    free(e->keywords);
    free(e->index);
    memset(e, 0, sizeof *e);
}

static struct viewcache_entry *entry_find(const struct store_ix *ix, int64_t mbox)
{
    for (int i = 0; i < VIEWCACHE_ENTRIES; i++) {
        struct viewcache_entry *e = &cache.e[i];
        if (e->index && e->mbox == mbox && e->dev == ix->st.st_dev &&
            e->ino == ix->st.st_ino && strcmp(e->index, ix->index) == 0)
            return e;
    }
    return NULL;
}

static int entry_current(const struct viewcache_entry *e, const struct store_mbstate *mb)
{
    return e->uidvalidity == (uint32_t)mb->uidvalidity &&
           e->uidnext == (uint32_t)mb->uidnext &&
           e->highestmodseq == (uint64_t)mb->highestmodseq;
}

int store_viewcache_get(const struct store_ix *ix, const struct store_mbstate *mb,
                        struct store_view *v)
{
    int hit = 0;
    pthread_mutex_lock(&cache.lock);
    struct viewcache_entry *e = entry_find(ix, mb->id);
    if (e && entry_current(e, mb)) {
        atomic_fetch_add(&e->block->refs, 1);
        v->shared = e->block;
        v->msgs = e->block->msgs;
        v->count = e->block->count;
        v->uidvalidity = e->uidvalidity;
        v->uidnext = e->uidnext;
        v->highestmodseq = e->highestmodseq;
        v->keywords = keywords_copy(e->keywords, e->nkeywords);
        v->nkeywords = e->nkeywords;
        e->used = ++cache.clock;
        hit = 1;
    }
    pthread_mutex_unlock(&cache.lock);
    return hit;
}

/* The slot for a new entry: a free one, else the least recently used. */
static struct viewcache_entry *slot_free(void)
{
    struct viewcache_entry *lru = &cache.e[0];
    for (int i = 0; i < VIEWCACHE_ENTRIES; i++) {
        if (!cache.e[i].index)
            return &cache.e[i];
        if (cache.e[i].used < lru->used)
            lru = &cache.e[i];
    }
    entry_drop(lru);
    return lru;
}

/* Drops least recently used entries (not KEEP) until the total fits. */
static void shrink_to_fit(const struct viewcache_entry *keep)
{
    while (cache.bytes > VIEWCACHE_MAX_BYTES) {
        struct viewcache_entry *lru = NULL;
        for (int i = 0; i < VIEWCACHE_ENTRIES; i++) {
            struct viewcache_entry *e = &cache.e[i];
            if (e->index && e != keep && (!lru || e->used < lru->used))
                lru = e;
        }
        if (!lru)
            return;
        entry_drop(lru);
    }
}

/* V's private messages become a shared block (V keeps a reference). */
static struct store_vblock *view_share(struct store_view *v)
{
    struct store_vblock *b = xcalloc(1, sizeof *b);
    atomic_init(&b->refs, 1);
    b->msgs = v->msgs;
    b->count = v->count;
    b->bytes = (size_t)v->count * sizeof *v->msgs;
    for (uint32_t i = 0; i < v->count; i++)
        if (v->msgs[i].keywords)
            b->bytes += strlen(v->msgs[i].keywords) + 1;
    v->shared = b;
    return b;
}

void store_viewcache_put(const struct store_ix *ix, const struct store_mbstate *mb,
                         struct store_view *v)
{
    if (v->shared || v->count < VIEWCACHE_MIN ||
        (size_t)v->count * sizeof *v->msgs > VIEWCACHE_MAX_BYTES / 2)
        return;
    struct store_vblock *b = view_share(v);
    atomic_fetch_add(&b->refs, 1);   /* the cache's */
    pthread_mutex_lock(&cache.lock);
    struct viewcache_entry *e = entry_find(ix, mb->id);
    if (e)
        entry_drop(e);
    else
        e = slot_free();
    e->index = xstrdup(ix->index);
    e->dev = ix->st.st_dev;
    e->ino = ix->st.st_ino;
    e->mbox = mb->id;
    e->uidvalidity = v->uidvalidity;
    e->uidnext = v->uidnext;
    e->highestmodseq = v->highestmodseq;
    e->block = b;
    e->keywords = keywords_copy(v->keywords, v->nkeywords);
    e->nkeywords = v->nkeywords;
    e->used = ++cache.clock;
    cache.bytes += b->bytes;
    shrink_to_fit(e);
    pthread_mutex_unlock(&cache.lock);
}

void store_view_own(struct store_view *v)
{
    struct store_vblock *b = v->shared;
    if (!b)
        return;
    struct store_vmsg *msgs = v->count ? xmalloc(xmul(v->count, sizeof *msgs)) : NULL;
    if (v->count)
        memcpy(msgs, v->msgs, (size_t)v->count * sizeof *msgs);
    for (uint32_t i = 0; i < v->count; i++)
        if (msgs[i].keywords)
            msgs[i].keywords = xstrdup(msgs[i].keywords);
    v->msgs = msgs;
    v->shared = NULL;
    store_vblock_unref(b);
}
