/* throttle: failed-login throttling in memory (see throttle.h).
 *
 * One table of keys, "a:<account>" (lower-cased) and "i:<client address>",
 * each holding the times of its most recent failures in a small ring. A key
 * is refused while it has LIMIT failures newer than AUTH_FAIL_WINDOW seconds
 * (a sliding window: the oldest of those failures expiring lets the next
 * attempt through). The table is a chained hash plus a list ordered by last
 * failure; beyond THROTTLE_MAX_KEYS the least recently failed key is evicted,
 * so an attacker spraying addresses costs bounded memory. Keys whose last
 * failure left the window are dropped when met.
 *
 * Success clears the account key only: clearing the client-address key too
 * would let someone who owns one account reset the counter between guesses
 * at other accounts. One mutex guards everything; it is the only shared
 * mutable state and every call is short. */
#include "auth/throttle.h"
#include "core/limits.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define THROTTLE_BUCKETS 65536      /* power of two */
#define THROTTLE_KEY_MAX 330        /* "a:" + address; longer keys are cut */
#define RING (AUTH_FAIL_LIMIT_ADDR > AUTH_FAIL_LIMIT_ACCOUNT ? AUTH_FAIL_LIMIT_ADDR \
                                                             : AUTH_FAIL_LIMIT_ACCOUNT)

struct tkey {
    struct tkey *hnext;          /* hash chain */
    struct tkey *older, *newer;  /* list by last failure */
    uint64_t hash;
    int nfails;                  /* entries used in fails[] */
    int next;                    /* ring position of the next write */
    time_t fails[RING];
    time_t last;
    char key[];                  /* NUL-terminated */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tkey **buckets;
static struct tkey *oldest, *newest;
static size_t nkeys;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void make_key(char out[THROTTLE_KEY_MAX + 1], char kind, const char *s)
{
    size_t n = 0;
    out[n++] = kind;
    out[n++] = ':';
    for (; *s && n < THROTTLE_KEY_MAX; s++) {
        unsigned char c = (unsigned char)*s;
        out[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[n] = '\0';
}

static void list_unlink(struct tkey *k)
{
    if (k->older)
        k->older->newer = k->newer;
    else
        oldest = k->newer;
    if (k->newer)
        k->newer->older = k->older;
    else
        newest = k->older;
    k->older = k->newer = NULL;
}

static void list_push_newest(struct tkey *k)
{
    k->older = newest;
    k->newer = NULL;
    if (newest)
        newest->newer = k;
    else
        oldest = k;
    newest = k;
}

static void remove_key(struct tkey *k)
{
    struct tkey **pp = &buckets[k->hash & (THROTTLE_BUCKETS - 1)];
    while (*pp && *pp != k)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = k->hnext;
    list_unlink(k);
    free(k);
    nkeys--;
}

static int expired(const struct tkey *k, time_t now)
{
    return now - k->last >= AUTH_FAIL_WINDOW;
}

/* Finds KEY; drops it and returns NULL if all its failures expired. */
static struct tkey *find_key(const char *key, time_t now)
{
    if (!buckets)
        return NULL;
    uint64_t h = fnv1a(key);
    for (struct tkey *k = buckets[h & (THROTTLE_BUCKETS - 1)]; k; k = k->hnext) {
        if (k->hash != h || strcmp(k->key, key) != 0)
            continue;
        if (expired(k, now)) {
            remove_key(k);
            return NULL;
        }
        return k;
    }
    return NULL;
}

static void evict_if_full(void)
{
    while (nkeys >= THROTTLE_MAX_KEYS && oldest)
        remove_key(oldest);
}

static struct tkey *add_key(const char *key)
{
    if (!buckets)
        buckets = xcalloc(THROTTLE_BUCKETS, sizeof *buckets);
    evict_if_full();
    size_t len = strlen(key);
    struct tkey *k = xcalloc(1, sizeof *k + len + 1);
    k->hash = fnv1a(key);
    memcpy(k->key, key, len + 1);
    struct tkey **b = &buckets[k->hash & (THROTTLE_BUCKETS - 1)];
    k->hnext = *b;
    *b = k;
    list_push_newest(k);
    nkeys++;
    return k;
}

static int recent_failures(const struct tkey *k, time_t now)
{
    int n = 0;
    for (int i = 0; i < k->nfails; i++)
        if (now - k->fails[i] < AUTH_FAIL_WINDOW)
            n++;
    return n;
}

static int key_allowed(char kind, const char *s, int limit, time_t now)
{
    if (!s)
        return 1;
    char key[THROTTLE_KEY_MAX + 1];
    make_key(key, kind, s);
    struct tkey *k = find_key(key, now);
    return !k || recent_failures(k, now) < limit;
}

static void key_failed(char kind, const char *s, time_t now)
{
    if (!s)
        return;
    char key[THROTTLE_KEY_MAX + 1];
    make_key(key, kind, s);
    struct tkey *k = find_key(key, now);
    if (!k)
        k = add_key(key);
    k->fails[k->next] = now;
    k->next = (k->next + 1) % RING;
    if (k->nfails < RING)
        k->nfails++;
    if (now > k->last)
        k->last = now;
    list_unlink(k);
    list_push_newest(k);
}

int throttle_allowed(const char *account, const char *addr, time_t now)
{
    pthread_mutex_lock(&lock);
    int ok = key_allowed('i', addr, AUTH_FAIL_LIMIT_ADDR, now) &&
             key_allowed('a', account, AUTH_FAIL_LIMIT_ACCOUNT, now);
    pthread_mutex_unlock(&lock);
    return ok;
}

void throttle_failed(const char *account, const char *addr, time_t now)
{
    pthread_mutex_lock(&lock);
    key_failed('i', addr, now);
    key_failed('a', account, now);
    pthread_mutex_unlock(&lock);
}

void throttle_succeeded(const char *account, const char *addr)
{
    (void)addr;
    if (!account)
        return;
    char key[THROTTLE_KEY_MAX + 1];
    make_key(key, 'a', account);
    pthread_mutex_lock(&lock);
    if (buckets) {
        uint64_t h = fnv1a(key);
        for (struct tkey *k = buckets[h & (THROTTLE_BUCKETS - 1)]; k; k = k->hnext) {
            if (k->hash == h && strcmp(k->key, key) == 0) {
                remove_key(k);
                break;
            }
        }
    }
    pthread_mutex_unlock(&lock);
}

void throttle_reset(void)
{
    pthread_mutex_lock(&lock);
    while (oldest)
        remove_key(oldest);
    pthread_mutex_unlock(&lock);
}

size_t throttle_key_count(void)
{
    pthread_mutex_lock(&lock);
    size_t n = nkeys;
    pthread_mutex_unlock(&lock);
    return n;
}
