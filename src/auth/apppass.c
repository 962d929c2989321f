/* apppass: application passwords. Each is 16 random lower-case letters
 * (RAND_bytes with rejection sampling, so every letter is equally likely:
 * 16 * log2(26) = 75 bits), shown once and stored only as
 * HMAC-SHA256(directory key, "<account id>:<password>"). The key lives in the
 * secrets table, so a stolen hash is useless without it, and the account id
 * in the message binds a hash to its account. High entropy makes a fast
 * keyed hash enough (DESIGN.md); comparison is constant-time.
 * Users may type the password as Gmail shows it ("abcd efgh ijkl mnop") or in
 * upper case: spaces are dropped and letters lower-cased before hashing. */
#include "auth/dir_int.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define MAC_LEN 32

static int random_letters(char *out, size_t n)
{
    size_t have = 0;
    while (have < n) {
        unsigned char rnd[32];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return -1;
        for (size_t i = 0; i < sizeof rnd && have < n; i++) {
            if (rnd[i] >= 26 * 9) /* 234: reject so that % 26 is unbiased */
                continue;
            out[have++] = (char)('a' + rnd[i] % 26);
        }
        OPENSSL_cleanse(rnd, sizeof rnd);
    }
    out[n] = '\0';
    return 0;
}

/* Drops spaces and lower-cases PASSWORD into OUT. Returns 0 if the result is
 * exactly 16 letters, -1 otherwise (then it cannot be an app password). */
static int canonical_apppass(const char *password, char out[DIR_APPPASS_LEN + 1])
{
    size_t n = 0;
    for (const char *p = password; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ' ')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c < 'a' || c > 'z' || n == DIR_APPPASS_LEN)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return n == DIR_APPPASS_LEN ? 0 : -1;
}

static int apppass_mac(const struct directory *d, int64_t account_id, const char *pw,
                       unsigned char mac[MAC_LEN])
{
    char msg[64];
    int len = snprintf(msg, sizeof msg, "%lld:%s", (long long)account_id, pw);
    if (len < 0 || (size_t)len >= sizeof msg)
        return -1;
    unsigned int maclen = 0;
    unsigned char *r = HMAC(EVP_sha256(), d->key, DIR_KEY_LEN, (const unsigned char *)msg,
                            (size_t)len, mac, &maclen);
    OPENSSL_cleanse(msg, sizeof msg);
    return r && maclen == MAC_LEN ? 0 : -1;
}

static int name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t len = strlen(name);
    if (len == 0 || len > DIR_APPNAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Looks up the account id for ADDRESS; 0/1/-1 like the API, error_r set. */
static int account_for(struct directory *d, const char *address, int64_t *id_r,
                       const char **error_r)
{
    char addr[DIR_ADDR_MAX];
    if (!address || dir_lower(addr, sizeof addr, address) < 0) {
        dir_set_error(error_r, "no such account");
        return 1;
    }
    int64_t id = dir_account_id(d, addr);
    if (id <= 0) {
        dir_set_error(error_r, id < 0 ? d->err : "no such account");
        return id < 0 ? -1 : 1;
    }
    *id_r = id;
    return 0;
}

static int insert_apppass(struct directory *d, int64_t id, const char *name,
                          const unsigned char mac[MAC_LEN], const char **error_r)
{
    sqlite3_stmt *st = dir_prep(d, "INSERT INTO app_passwords(account_id, name, hash, created)"
                                   " VALUES(?, ?, ?, ?)");
    if (!st) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    int ret = -1;
    if (sqlite3_bind_int64(st, 1, id) == SQLITE_OK && dir_bind_text(st, 2, name) == 0 &&
        sqlite3_bind_blob(st, 3, mac, MAC_LEN, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL)) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_DONE) {
            ret = 0;
        } else if (sqlite3_extended_errcode(d->db) == SQLITE_CONSTRAINT_UNIQUE) {
            ret = 2;
            dir_set_error(error_r, "an app password with that name already exists");
        } else {
            dir_set_error(error_r, dir_sql_error(d, "app password create"));
        }
    }
    dir_finish(d, st);
    return ret;
}

int dir_apppass_create(struct directory *d, const char *address, const char *name,
                       char pw_r[17], const char **error_r)
{
    if (!name_valid(name)) {
        dir_set_error(error_r, "app password name must be 1-100 printable characters");
        return -1;
    }
    int64_t id = 0;
    int r = account_for(d, address, &id, error_r);
    if (r != 0)
        return r;
    unsigned char mac[MAC_LEN];
    if (random_letters(pw_r, DIR_APPPASS_LEN) < 0 || apppass_mac(d, id, pw_r, mac) < 0) {
        OPENSSL_cleanse(pw_r, DIR_APPPASS_LEN + 1);
        dir_set_error(error_r, "cannot generate an app password");
        return -1;
    }
    r = insert_apppass(d, id, name, mac, error_r);
    if (r != 0)
        OPENSSL_cleanse(pw_r, DIR_APPPASS_LEN + 1);
    else
        log_info("auth", "event=apppass_created account_id=%lld", (long long)id);
    return r;
}

int dir_apppass_revoke(struct directory *d, const char *address, const char *name,
                       const char **error_r)
{
    int64_t id = 0;
    int r = account_for(d, address, &id, error_r);
    if (r != 0)
        return r;
    sqlite3_stmt *st = dir_prep(d, "DELETE FROM app_passwords WHERE account_id = ? AND name = ?");
    int ok = st && sqlite3_bind_int64(st, 1, id) == SQLITE_OK &&
             dir_bind_text(st, 2, name ? name : "") == 0 && sqlite3_step(st) == SQLITE_DONE;
    if (st && !ok)
        dir_sql_error(d, "app password revoke");
    dir_finish(d, st);
    if (!ok) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    if (sqlite3_changes(d->db) == 0) {
        dir_set_error(error_r, "no such app password");
        return 2;
    }
    log_info("auth", "event=apppass_revoked account_id=%lld", (long long)id);
    return 0;
}

int dir_apppass_list(struct directory *d, const char *address,
                     void (*cb)(const char *name, time_t created, time_t last_used, void *arg),
                     void *arg)
{
    int64_t id = 0;
    if (account_for(d, address, &id, NULL) != 0)
        return -1;
    sqlite3_stmt *st = dir_prep(d, "SELECT name, created, last_used FROM app_passwords"
                                   " WHERE account_id = ? ORDER BY name");
    if (!st)
        return -1;
    int rc = SQLITE_ERROR;
    if (sqlite3_bind_int64(st, 1, id) == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            cb((const char *)sqlite3_column_text(st, 0), (time_t)sqlite3_column_int64(st, 1),
               (time_t)sqlite3_column_int64(st, 2), arg);
    }
    dir_finish(d, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int dir_apppass_count(struct directory *d, const char *address)
{
    int64_t id = 0;
    if (account_for(d, address, &id, NULL) != 0)
        return -1;
    sqlite3_stmt *st = dir_prep(d, "SELECT count(*) FROM app_passwords WHERE account_id = ?");
    if (!st)
        return -1;
    int n = -1;
    if (sqlite3_bind_int64(st, 1, id) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    dir_finish(d, st);
    return n;
}

static int touch_last_used(struct directory *d, int64_t row_id, time_t now)
{
    sqlite3_stmt *st = dir_prep(d, "UPDATE app_passwords SET last_used = ? WHERE id = ?");
    int ok = st && sqlite3_bind_int64(st, 1, (sqlite3_int64)now) == SQLITE_OK &&
             sqlite3_bind_int64(st, 2, row_id) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
    dir_finish(d, st);
    return ok ? 0 : -1;
}

int dir_apppass_check(struct directory *d, int64_t account_id, const char *password,
                      time_t now, char name_r[128])
{
    char pw[DIR_APPPASS_LEN + 1];
    unsigned char mac[MAC_LEN];
    if (canonical_apppass(password, pw) < 0)
        return 0;
    int r = apppass_mac(d, account_id, pw, mac);
    OPENSSL_cleanse(pw, sizeof pw);
    if (r < 0)
        return -1;
    sqlite3_stmt *st = dir_prep(d, "SELECT id, name, hash FROM app_passwords"
                                   " WHERE account_id = ?");
    if (!st)
        return -1;
    int64_t match_id = 0;
    int rc = SQLITE_ERROR;
    if (sqlite3_bind_int64(st, 1, account_id) == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (sqlite3_column_bytes(st, 2) != MAC_LEN ||
                CRYPTO_memcmp(sqlite3_column_blob(st, 2), mac, MAC_LEN) != 0)
                continue;
            match_id = sqlite3_column_int64(st, 0);
            snprintf(name_r, 128, "%s", (const char *)sqlite3_column_text(st, 1));
        }
    }
    dir_finish(d, st);
    if (rc != SQLITE_DONE)
        return -1;
    if (!match_id)
        return 0;
    if (touch_last_used(d, match_id, now) < 0)
        log_warn("auth", "event=apppass_touch_failed account_id=%lld", (long long)account_id);
    return 1;
}
