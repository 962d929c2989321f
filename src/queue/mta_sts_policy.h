/* mta_sts_policy: the pure parts of MTA-STS (RFC 8461): the TXT record
 * "_mta-sts.DOMAIN" (3.1), the policy file (3.2), matching an MX host
 * against the policy's mx patterns (4.1), and the cache file Roost keeps
 * per domain (DATA/queue/mta-sts/DOMAIN). No I/O: unit tested
 * (tests/unit/outbound) and fuzzed (tests/fuzz/fuzz_mta_sts.c). The
 * fetching, caching and enforcing are in mta_sts.c and queue/remote.c. */
#ifndef ROOST_MTA_STS_POLICY_H
#define ROOST_MTA_STS_POLICY_H

#include <stddef.h>

#define STS_MAX_MX 64              /* mx lines in one policy (more: malformed) */
#define STS_MAX_AGE 31557600L      /* max_age is capped here (one year, RFC 8461 3.2) */
#define STS_MAX_BODY 65536         /* policy bytes (RFC 8461 3.3: 64 KiB) */
#define STS_ID_MAX 32

enum sts_mode { STS_MODE_NONE, STS_MODE_TESTING, STS_MODE_ENFORCE };

struct sts_policy {
    enum sts_mode mode;
    long max_age;                  /* seconds, at most STS_MAX_AGE */
    int nmx;
    char mx[STS_MAX_MX][256];      /* lower case: "mx.example.net" or "*.example.net" */
};

/* One TXT record (its character-strings joined), LEN bytes at REC.
 * 1: a "v=STSv1" record, well formed, its id into ID; 0: not an STSv1
 * record (to be ignored); -1: an STSv1 record that is malformed. */
int sts_parse_txt(const char *rec, size_t len, char id[STS_ID_MAX + 1]);

/* The policy file (LEN bytes, not NUL-terminated). 0 ok; -1 malformed,
 * with ERROR_R (a static string) saying what. */
int sts_parse_policy(const char *text, size_t len, struct sts_policy *out, const char **error_r);

/* 1 when HOST (an MX host name, any case, a trailing dot allowed) matches
 * one of P's mx patterns: exactly, or "*.REST" with one leftmost label. */
int sts_mx_match(const struct sts_policy *p, const char *host);
/* One pattern. */
int sts_pattern_match(const char *pattern, const char *host);

const char *sts_mode_name(enum sts_mode m);

/* The cache file: "roost-mta-sts 1\nid: ID\nfetched: UNIXTIME\n\n" and the
 * policy text as fetched. sts_cache_format returns a malloc'd buffer (its
 * length in *LEN_R); sts_cache_parse 0 ok (ID, *FETCHED_R, OUT), -1
 * malformed (a file of another version, a bad header, a bad policy). */
char *sts_cache_format(const char *id, long long fetched, const char *policy, size_t plen,
                       size_t *len_r);
int sts_cache_parse(const char *data, size_t len, char id[STS_ID_MAX + 1], long long *fetched_r,
                    struct sts_policy *out);

#endif
