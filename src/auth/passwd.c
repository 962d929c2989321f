/* passwd: account password hashing with argon2id (libargon2), in the PHC
 * encoded form ($argon2id$v=19$m=...,t=...,p=...$salt$hash) so that every
 * stored hash carries its own parameters and old hashes still verify after
 * the parameters change. Also the dummy hash used to make an unknown user
 * cost the same as a known one. Parameters are process-wide, set once at
 * start-up (dir_set_argon2_params); docs/accounts.md explains the defaults.
 *
 * A successful verification is remembered for VERIFIED_TTL seconds, as a
 * SHA-256 of a per-process random secret, the stored hash and the password:
 * a mail client that logs in again and again with the right password (one
 * connection per message sent, a POP3 poll every minute) then costs one
 * hash instead of an argon2id run each time. Only successes are kept (a
 * wrong password always pays argon2id), a changed password has a new stored
 * hash and so never matches an old entry, and nothing in memory reveals a
 * password (the secret makes an entry useless outside this process). */
#include "auth/dir_int.h"
#include "core/xalloc.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SALT_LEN 16
#define HASH_LEN 32

static pthread_mutex_t params_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned p_t = 2, p_m = 19456, p_p = 1;
/* The dummy hash and the parameters it was made with. */
static char *dummy_hash;
static unsigned dummy_t, dummy_m, dummy_p;

void dir_set_argon2_params(unsigned t_cost, unsigned m_cost_kib, unsigned parallelism)
{
    pthread_mutex_lock(&params_lock);
    if (t_cost >= ARGON2_MIN_TIME)
        p_t = t_cost;
    if (parallelism >= 1 && parallelism <= 64)
        p_p = parallelism;
    if (m_cost_kib >= 8 * p_p)
        p_m = m_cost_kib;
    pthread_mutex_unlock(&params_lock);
}

static void current_params(unsigned *t, unsigned *m, unsigned *p)
{
    pthread_mutex_lock(&params_lock);
    *t = p_t;
    *m = p_m;
    *p = p_p;
    pthread_mutex_unlock(&params_lock);
}

static char *hash_with(const char *password, unsigned t, unsigned m, unsigned p)
{
    unsigned char salt[SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return NULL;
    size_t enclen = argon2_encodedlen(t, m, p, SALT_LEN, HASH_LEN, Argon2_id);
    char *enc = xmalloc(enclen);
    int rc = argon2id_hash_encoded(t, m, p, password, strlen(password), salt, SALT_LEN,
                                   HASH_LEN, enc, enclen);
    OPENSSL_cleanse(salt, sizeof salt);
    if (rc != ARGON2_OK) {
        free(enc);
        return NULL;
    }
    return enc;
}

char *dir_passwd_hash(const char *password)
{
    unsigned t, m, p;
    current_params(&t, &m, &p);
    return hash_with(password, t, m, p);
}

#define VERIFIED_SLOTS 1024
#define VERIFIED_TTL 300

static struct {
    pthread_mutex_t lock;
    int ready;
    unsigned char secret[32];
    struct {
        unsigned char key[32];
        time_t until;
    } slot[VERIFIED_SLOTS];
} verified = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* KEY = SHA-256(secret, encoded, NUL, password). -1 when it cannot be made. */
static int verified_key(const char *encoded, const char *password, unsigned char key[32])
{
    pthread_mutex_lock(&verified.lock);
    if (!verified.ready && RAND_bytes(verified.secret, sizeof verified.secret) == 1)
        verified.ready = 1;
    int ready = verified.ready;
    unsigned char secret[32];
    memcpy(secret, verified.secret, sizeof secret);
    pthread_mutex_unlock(&verified.lock);
    if (!ready)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, secret, sizeof secret) == 1 &&
             EVP_DigestUpdate(ctx, encoded, strlen(encoded) + 1) == 1 &&
             EVP_DigestUpdate(ctx, password, strlen(password)) == 1 &&
             EVP_DigestFinal_ex(ctx, key, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(secret, sizeof secret);
    return ok ? 0 : -1;
}

static unsigned verified_index(const unsigned char key[32])
{
    return ((unsigned)key[0] | (unsigned)key[1] << 8) % VERIFIED_SLOTS;
}

static int verified_recall(const unsigned char key[32], time_t now)
{
    pthread_mutex_lock(&verified.lock);
    unsigned i = verified_index(key);
    int hit = verified.slot[i].until > now &&
              CRYPTO_memcmp(verified.slot[i].key, key, 32) == 0;
    pthread_mutex_unlock(&verified.lock);
    return hit;
}

static void verified_remember(const unsigned char key[32], time_t now)
{
    pthread_mutex_lock(&verified.lock);
    unsigned i = verified_index(key);
    memcpy(verified.slot[i].key, key, 32);
    verified.slot[i].until = now + VERIFIED_TTL;
    pthread_mutex_unlock(&verified.lock);
}

/* Verifications running now, by key: a second login with the same
 * password and stored hash while the first is still in argon2id (a mail
 * client opening several connections at once) waits for that result
 * instead of running argon2id again. The same key means the same password
 * and hash, so the result is the same. */
#define INFLIGHT_SLOTS 8

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct {
        unsigned char key[32];
        int busy, done, result, waiters;
    } slot[INFLIGHT_SLOTS];
} inflight = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Joins a running verification of KEY (its result, 0/1/-1) or registers
 * ours (*mine_r: the slot, or -1 when every slot is busy): -2. */
static int inflight_join(const unsigned char key[32], int *mine_r)
{
    *mine_r = -1;
    pthread_mutex_lock(&inflight.lock);
    for (int i = 0; i < INFLIGHT_SLOTS; i++) {
        if (!inflight.slot[i].busy || CRYPTO_memcmp(inflight.slot[i].key, key, 32) != 0)
            continue;
        inflight.slot[i].waiters++;
        while (!inflight.slot[i].done)
            pthread_cond_wait(&inflight.cond, &inflight.lock);
        int r = inflight.slot[i].result;
        if (--inflight.slot[i].waiters == 0)
            inflight.slot[i].busy = 0;
        pthread_mutex_unlock(&inflight.lock);
        return r;
    }
    for (int i = 0; i < INFLIGHT_SLOTS; i++)
        if (!inflight.slot[i].busy) {
            memcpy(inflight.slot[i].key, key, 32);
            inflight.slot[i].busy = 1;
            inflight.slot[i].done = 0;
            inflight.slot[i].waiters = 0;
            *mine_r = i;
            break;
        }
    pthread_mutex_unlock(&inflight.lock);
    return -2;
}

static void inflight_finish(int i, int result)
{
    if (i < 0)
        return;
    pthread_mutex_lock(&inflight.lock);
    inflight.slot[i].result = result;
    inflight.slot[i].done = 1;
    if (inflight.slot[i].waiters == 0)
        inflight.slot[i].busy = 0;
    pthread_cond_broadcast(&inflight.cond);
    pthread_mutex_unlock(&inflight.lock);
}

int dir_passwd_verify(const char *encoded, const char *password)
{
    unsigned char key[32];
    time_t now = time(NULL);
    int keyed = verified_key(encoded, password, key) == 0;
    if (keyed && verified_recall(key, now))
        return 1;
    int mine = -1;
    if (keyed) {
        int joined = inflight_join(key, &mine);
        if (joined != -2)
            return joined;
    }
    int rc = argon2id_verify(encoded, password, strlen(password));
    int result = rc == ARGON2_OK ? 1 : rc == ARGON2_VERIFY_MISMATCH ? 0 : -1;
    if (result == 1 && keyed)
        verified_remember(key, now);
    inflight_finish(mine, result);
    return result;
}

/* Returns a copy of the dummy hash for the current parameters, making it
 * (from a random password nobody knows) when they changed. */
static char *dummy_for_current_params(void)
{
    unsigned t, m, p;
    current_params(&t, &m, &p);
    pthread_mutex_lock(&params_lock);
    int fresh = dummy_hash && dummy_t == t && dummy_m == m && dummy_p == p;
    char *copy = fresh ? xstrdup(dummy_hash) : NULL;
    pthread_mutex_unlock(&params_lock);
    if (copy)
        return copy;

    unsigned char rnd[24];
    char secret[2 * sizeof rnd + 1];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return NULL;
    for (size_t i = 0; i < sizeof rnd; i++) {
        secret[2 * i] = (char)('a' + (rnd[i] >> 4));
        secret[2 * i + 1] = (char)('a' + (rnd[i] & 15));
    }
    secret[sizeof secret - 1] = '\0';
    char *made = hash_with(secret, t, m, p);
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(rnd, sizeof rnd);
    if (!made)
        return NULL;
    pthread_mutex_lock(&params_lock);
    free(dummy_hash);
    dummy_hash = xstrdup(made);
    dummy_t = t;
    dummy_m = m;
    dummy_p = p;
    pthread_mutex_unlock(&params_lock);
    return made;
}

void dir_passwd_dummy_verify(const char *password)
{
    char *dummy = dummy_for_current_params();
    if (!dummy)
        return;
    (void)dir_passwd_verify(dummy, password);
    free(dummy);
}
