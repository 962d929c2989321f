/* srs: the Sender Rewriting Scheme (Shevek's paper; the SRS0/SRS1 "guarded"
 * format of libsrs2 and Mail::SRS), so that a forwarded message still passes
 * SPF at the next hop and its bounces come back to us and then to the
 * original sender.
 *
 *   forward  user@orig.example by fwd.example:
 *            SRS0=HHHHHH=TT=orig.example=user@fwd.example
 *   re-forward of SRS0=HHH=TT=orig.example=user@fwd1.example by fwd2.example:
 *            SRS1=GGGGGG=fwd1.example==HHH=TT=orig.example=user@fwd2.example
 *   (an SRS1 sender is re-forwarded as SRS1 with the same first host)
 *
 * HHHHHH: the first SRS_HASH_LEN characters of the base64 HMAC-SHA1, keyed
 * with the secret, over the lower-cased timestamp, domain and local part
 * (SRS0) or first host and rest (SRS1). TT: the day number (unix time /
 * 86400) modulo 1024 in two base32 characters. Reversal accepts any case
 * (some MTAs lower-case local parts; the hash is compared case-insensitively
 * as the spec says) and any of the separators = + - after SRS0/SRS1; SRS0
 * addresses older than SRS_MAX_AGE_DAYS are refused.
 *
 * Debian 12 packages no libsrs2 (nor any other SRS library), so this is
 * written here on OpenSSL's HMAC. Pure functions: no files, no globals (the
 * secret lives in srs_key.c). */
#ifndef ROOST_SRS_H
#define ROOST_SRS_H

#include <stddef.h>
#include <time.h>

#define SRS_KEY_LEN 32
#define SRS_HASH_LEN 6          /* base64 characters kept (libsrs2 keeps 4) */
#define SRS_MAX_AGE_DAYS 21
#define SRS_ADDR_MAX 256        /* an SMTP path (RFC 5321 4.5.3.1.3), NUL excluded */

enum srs_result {
    SRS_OK = 0,
    SRS_NOT_SRS,        /* not an SRS address */
    SRS_SYNTAX,         /* SRS0/SRS1 tag, but malformed */
    SRS_BAD_HASH,       /* hash does not verify (forged or tampered) */
    SRS_EXPIRED,        /* SRS0 timestamp older than SRS_MAX_AGE_DAYS (or in the future) */
    SRS_TOO_LONG,       /* the result would not fit the output */
};
const char *srs_result_name(enum srs_result r);

/* The parts of an SRS address, as views into it (not NUL-terminated). */
struct srs_parts {
    int type;                        /* 0: SRS0, 1: SRS1 */
    const char *hash;   size_t hash_len;
    const char *stamp;  size_t stamp_len;   /* SRS0 only */
    const char *host;   size_t host_len;    /* SRS0: original domain; SRS1: first forwarder */
    const char *user;   size_t user_len;    /* SRS0: original local part; SRS1: the SRS0
                                               rest, from its separator on */
    const char *domain; size_t domain_len;  /* after the last '@': the forwarder's (ours) */
};

/* Splits ADDRESS (LEN bytes, no NUL needed) into its SRS parts. SRS_OK,
 * SRS_NOT_SRS (no SRS0/SRS1 tag followed by = + or -, or no '@'), or
 * SRS_SYNTAX (a field missing or empty, a hash that is not base64 of
 * SRS_HASH_LEN characters, a timestamp that is not two base32 characters,
 * longer than SRS_ADDR_MAX). */
enum srs_result srs_parse(const char *address, size_t len, struct srs_parts *p);

/* Rewrites the envelope sender SENDER for a message forwarded by
 * ALIAS_DOMAIN at NOW into OUT (OUTSZ bytes). Returns 1 rewritten, 0 left as
 * it is (the null sender, or a sender already in ALIAS_DOMAIN, as libsrs2
 * does; OUT holds a copy), -1 cannot (malformed sender: no local part or
 * domain, '=' in the domain, a space, control or special byte; or the
 * result would be longer than SRS_ADDR_MAX; OUT holds a copy of SENDER when
 * it fits). Whatever it rewrites, srs_reverse gives back. */
int srs_forward(const unsigned char key[SRS_KEY_LEN], const char *sender,
                const char *alias_domain, time_t now, char *out, size_t outsz);

/* Reverses ADDRESS (an SRS address whose domain the caller has checked is
 * one of ours) at NOW: SRS0 gives the original sender, SRS1 the SRS0
 * address at the first forwarder. SRS_OK with OUT written, or the reason. */
enum srs_result srs_reverse(const unsigned char key[SRS_KEY_LEN], const char *address,
                            time_t now, char *out, size_t outsz);

#endif
