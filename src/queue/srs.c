/* srs: SRS0/SRS1 address rewriting and reversal (see srs.h).
 *
 * Every input is bounded: addresses longer than SRS_ADDR_MAX are refused
 * before anything is copied, and the hash input (at most three such fields)
 * fits a fixed buffer. The parser is a plain left-to-right split on '=' with
 * a check per field; tests/fuzz/fuzz_srs.c drives it and the round trip. */
#include "queue/srs.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SRS_DAY 86400
#define SRS_TIME_SLOTS 1024     /* two base32 characters */
#define SRS_SEPARATORS "=+-"

static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static int tag_of(const char *local, size_t len);
static int b32_value(char c);
static int b64_char(char c);
static int addr_char_ok(unsigned char c);
static const char *field_end(const char *p, const char *end);
static void srs_hash(const unsigned char key[SRS_KEY_LEN], int n, const char *const *parts,
                     const size_t *lens, char out[SRS_HASH_LEN + 1]);
static int hash_equal(const char *a, const char *b, size_t n);
static void stamp_make(time_t now, char out[3]);
static int stamp_fresh(const char *stamp, time_t now);

const char *srs_result_name(enum srs_result r)
{
    switch (r) {
    case SRS_OK: return "ok";
    case SRS_NOT_SRS: return "not-srs";
    case SRS_SYNTAX: return "malformed";
    case SRS_BAD_HASH: return "bad-hash";
    case SRS_EXPIRED: return "expired";
    case SRS_TOO_LONG: return "too-long";
    }
    return "?";
}

/* ---------------------------------------------------------------- helpers */

/* 0 for "SRS0" + separator, 1 for "SRS1" + separator (any case), else -1. */
static int tag_of(const char *local, size_t len)
{
    if (len < 5 || strncasecmp(local, "SRS", 3) != 0 || !strchr(SRS_SEPARATORS, local[4]) ||
        local[4] == '\0')
        return -1;
    if (local[3] == '0')
        return 0;
    if (local[3] == '1')
        return 1;
    return -1;
}

static int b32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    const char *p = c ? strchr(base32, c) : NULL;
    return p ? (int)(p - base32) : -1;
}

static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Bytes an SRS local part or domain may hold: printable, no specials that
 * would need quoting in an SMTP path (UTF-8 bytes allowed: SMTPUTF8). */
static int addr_char_ok(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '@' && c != '<' && c != '>' && c != '"' &&
           c != '\\' && c != ',' && c != ';' && c != ':' && c != '(' && c != ')' &&
           c != '[' && c != ']';
}

/* The next '=' in [p, end), or NULL. */
static const char *field_end(const char *p, const char *end)
{
    const char *q = memchr(p, '=', (size_t)(end - p));
    return q;
}

/* HMAC-SHA1 over the lower-cased concatenation of the N parts, base64,
 * first SRS_HASH_LEN characters. */
static void srs_hash(const unsigned char key[SRS_KEY_LEN], int n, const char *const *parts,
                     const size_t *lens, char out[SRS_HASH_LEN + 1])
{
    unsigned char buf[3 * (SRS_ADDR_MAX + 1)];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < lens[i] && len < sizeof buf; j++) {
            unsigned char c = (unsigned char)parts[i][j];
            buf[len++] = (unsigned char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    if (!HMAC(EVP_sha1(), key, SRS_KEY_LEN, buf, len, md, &mdlen) || mdlen < 15) {
        memset(out, '!', SRS_HASH_LEN);   /* never matches a base64 hash */
        out[SRS_HASH_LEN] = '\0';
        return;
    }
    EVP_EncodeBlock(b64, md, (int)mdlen);
    memcpy(out, b64, SRS_HASH_LEN);
    out[SRS_HASH_LEN] = '\0';
}

/* Case-insensitive, in constant time for the N characters. */
static int hash_equal(const char *a, const char *b, size_t n)
{
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        x = (unsigned char)(x >= 'A' && x <= 'Z' ? x - 'A' + 'a' : x);
        y = (unsigned char)(y >= 'A' && y <= 'Z' ? y - 'A' + 'a' : y);
        diff |= (unsigned)(x ^ y);
    }
    return diff == 0;
}

static void stamp_make(time_t now, char out[3])
{
    unsigned long days = (unsigned long)(now / SRS_DAY) % SRS_TIME_SLOTS;
    out[0] = base32[(days >> 5) & 31];
    out[1] = base32[days & 31];
    out[2] = '\0';
}

/* 1 if the two-character STAMP is at most SRS_MAX_AGE_DAYS old at NOW. */
static int stamp_fresh(const char *stamp, time_t now)
{
    int hi = b32_value(stamp[0]), lo = b32_value(stamp[1]);
    if (hi < 0 || lo < 0)
        return 0;
    unsigned long then = (unsigned long)(hi << 5 | lo);
    unsigned long today = (unsigned long)(now / SRS_DAY) % SRS_TIME_SLOTS;
    while (today < then)
        today += SRS_TIME_SLOTS;
    return today - then <= SRS_MAX_AGE_DAYS;
}

/* ---------------------------------------------------------------- parse */

enum srs_result srs_parse(const char *address, size_t len, struct srs_parts *p)
{
    memset(p, 0, sizeof *p);
    const char *at = len ? memrchr(address, '@', len) : NULL;
    if (!at)
        return SRS_NOT_SRS;
    size_t local_len = (size_t)(at - address);
    int type = tag_of(address, local_len);
    if (type < 0)
        return SRS_NOT_SRS;
    if (len > SRS_ADDR_MAX)
        return SRS_SYNTAX;
    p->type = type;
    p->domain = at + 1;
    p->domain_len = len - local_len - 1;
    if (p->domain_len == 0)
        return SRS_SYNTAX;
    for (size_t i = 0; i < len; i++)
        if (address + i != at && !addr_char_ok((unsigned char)address[i]))
            return SRS_SYNTAX;

    const char *end = at;
    const char *f = address + 5;
    const char *e = field_end(f, end);
    if (!e || e - f != SRS_HASH_LEN)
        return SRS_SYNTAX;
    for (const char *c = f; c < e; c++)
        if (!b64_char(*c))
            return SRS_SYNTAX;
    p->hash = f;
    p->hash_len = (size_t)(e - f);
    f = e + 1;
    if (type == 0) {
        e = field_end(f, end);
        if (!e || e - f != 2 || b32_value(f[0]) < 0 || b32_value(f[1]) < 0)
            return SRS_SYNTAX;
        p->stamp = f;
        p->stamp_len = 2;
        f = e + 1;
    }
    e = field_end(f, end);
    if (!e || e == f)
        return SRS_SYNTAX;
    p->host = f;
    p->host_len = (size_t)(e - f);
    p->user = e + 1;
    p->user_len = (size_t)(end - p->user);
    if (p->user_len == 0)
        return SRS_SYNTAX;
    return SRS_OK;
}

/* ---------------------------------------------------------------- forward */

/* Copies S into OUT if it fits; 0 or -1. */
static int copy_out(const char *s, char *out, size_t outsz)
{
    size_t n = strlen(s);
    if (n >= outsz)
        return -1;
    memcpy(out, s, n + 1);
    return 0;
}

int srs_forward(const unsigned char key[SRS_KEY_LEN], const char *sender,
                const char *alias_domain, time_t now, char *out, size_t outsz)
{
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    if (!sender || !*sender)
        return 0;
    int fits = copy_out(sender, out, outsz) == 0;
    const char *at = strrchr(sender, '@');
    size_t slen = strlen(sender);
    if (!at || at == sender || !at[1] || slen > SRS_ADDR_MAX || !alias_domain || !*alias_domain)
        return -1;
    const char *sdomain = at + 1;
    if (strcasecmp(sdomain, alias_domain) == 0)
        return fits ? 0 : -1;
    /* Only what reverses unambiguously: no '=' in the domain (it is the
     * field separator), no byte the parser refuses. */
    if (strchr(sdomain, '='))
        return -1;
    for (const char *c = sender; *c; c++)
        if (c != at && !addr_char_ok((unsigned char)*c))
            return -1;
    size_t local_len = (size_t)(at - sender);
    size_t dlen = strlen(sdomain);
    char hash[SRS_HASH_LEN + 1];
    char buf[2 * SRS_ADDR_MAX + 64];
    int n;
    int type = tag_of(sender, local_len);
    struct srs_parts sp;
    if (type == 1 && srs_parse(sender, slen, &sp) == SRS_OK) {
        /* SRS1 again: the same first host and rest, our hash and domain. */
        const char *parts[] = { sp.host, sp.user };
        const size_t lens[] = { sp.host_len, sp.user_len };
        srs_hash(key, 2, parts, lens, hash);
        n = snprintf(buf, sizeof buf, "SRS1=%s=%.*s=%.*s@%s", hash, (int)sp.host_len, sp.host,
                     (int)sp.user_len, sp.user, alias_domain);
    } else if (type == 0) {
        /* An SRS0 of another forwarder: SRS1 naming that forwarder. */
        const char *user = sender + 4;
        size_t ulen = local_len - 4;
        const char *parts[] = { sdomain, user };
        const size_t lens[] = { dlen, ulen };
        srs_hash(key, 2, parts, lens, hash);
        n = snprintf(buf, sizeof buf, "SRS1=%s=%s=%.*s@%s", hash, sdomain, (int)ulen, user,
                     alias_domain);
    } else {
        char stamp[3];
        stamp_make(now, stamp);
        const char *parts[] = { stamp, sdomain, sender };
        const size_t lens[] = { 2, dlen, local_len };
        srs_hash(key, 3, parts, lens, hash);
        n = snprintf(buf, sizeof buf, "SRS0=%s=%s=%s=%.*s@%s", hash, stamp, sdomain,
                     (int)local_len, sender, alias_domain);
    }
    if (n < 0 || (size_t)n >= sizeof buf || (size_t)n > SRS_ADDR_MAX || (size_t)n >= outsz)
        return -1;
    memcpy(out, buf, (size_t)n + 1);
    return 1;
}

/* ---------------------------------------------------------------- reverse */

enum srs_result srs_reverse(const unsigned char key[SRS_KEY_LEN], const char *address,
                            time_t now, char *out, size_t outsz)
{
    struct srs_parts p;
    enum srs_result r = srs_parse(address, strlen(address), &p);
    if (r != SRS_OK)
        return r;
    char hash[SRS_HASH_LEN + 1];
    int n;
    if (p.type == 0) {
        const char *parts[] = { p.stamp, p.host, p.user };
        const size_t lens[] = { p.stamp_len, p.host_len, p.user_len };
        srs_hash(key, 3, parts, lens, hash);
        if (!hash_equal(hash, p.hash, SRS_HASH_LEN))
            return SRS_BAD_HASH;
        if (!stamp_fresh(p.stamp, now))
            return SRS_EXPIRED;
        n = snprintf(out, outsz, "%.*s@%.*s", (int)p.user_len, p.user, (int)p.host_len, p.host);
    } else {
        const char *parts[] = { p.host, p.user };
        const size_t lens[] = { p.host_len, p.user_len };
        srs_hash(key, 2, parts, lens, hash);
        if (!hash_equal(hash, p.hash, SRS_HASH_LEN))
            return SRS_BAD_HASH;
        n = snprintf(out, outsz, "SRS0%.*s@%.*s", (int)p.user_len, p.user, (int)p.host_len,
                     p.host);
    }
    if (n < 0 || (size_t)n >= outsz) {
        if (outsz)
            out[0] = '\0';
        return SRS_TOO_LONG;
    }
    return SRS_OK;
}
