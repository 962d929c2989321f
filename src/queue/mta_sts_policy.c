/* mta_sts_policy: parsers and the mx matcher of MTA-STS (RFC 8461), pure
 * and bounded (see mta_sts_policy.h). Grammars: 3.1 (TXT record) and 3.2
 * (policy file: "key: value" lines ended by LF or CRLF; version, mode,
 * max_age required, mx required unless mode is none; unknown keys
 * ignored; a repeated known key is malformed). */
#include "queue/mta_sts_policy.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* sts-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static int ext_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 32 || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

/* One "name=value" field of the TXT record (no delimiters around). */
static int txt_field(const char *f, size_t n, char id[STS_ID_MAX + 1], int *have_id)
{
    const char *eq = memchr(f, '=', n);
    if (!eq)
        return -1;
    size_t kn = (size_t)(eq - f), vn = n - kn - 1;
    const char *v = eq + 1;
    if (kn == 2 && memcmp(f, "id", 2) == 0) {
        if (vn == 0 || vn > STS_ID_MAX || *have_id)
            return -1;
        for (size_t i = 0; i < vn; i++)
            if (!isalnum((unsigned char)v[i]))
                return -1;
        memcpy(id, v, vn);
        id[vn] = '\0';
        *have_id = 1;
        return 0;
    }
    if (!ext_name_ok(f, kn) || vn == 0)
        return -1;
    for (size_t i = 0; i < vn; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
            return -1;
    }
    return 0;
}

int sts_parse_txt(const char *rec, size_t len, char id[STS_ID_MAX + 1])
{
    static const char ver[] = "v=STSv1";
    size_t vl = sizeof ver - 1;
    if (len < vl || memcmp(rec, ver, vl) != 0 || (len > vl && rec[vl] != ';' && !wsp(rec[vl])))
        return 0;
    int have_id = 0;
    size_t i = vl;
    for (;;) {
        while (i < len && wsp(rec[i]))
            i++;
        if (i == len)
            break;
        if (rec[i] != ';')
            return -1;
        i++;
        while (i < len && wsp(rec[i]))
            i++;
        if (i == len)
            break;                  /* a trailing delimiter */
        size_t start = i;
        while (i < len && rec[i] != ';' && !wsp(rec[i]))
            i++;
        if (txt_field(rec + start, i - start, id, &have_id) < 0)
            return -1;
    }
    return have_id ? 1 : -1;
}

/* RFC 5321 Domain: labels of letters, digits and '-' (not first or last),
 * 1-63 bytes each, 253 in all. */
static int domain_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t lab = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (lab == 0 || s[i - 1] == '-')
                return 0;
            lab = 0;
            continue;
        }
        if (!isalnum((unsigned char)c) && !(c == '-' && lab > 0))
            return 0;
        if (++lab > 63)
            return 0;
    }
    return lab > 0 && s[n - 1] != '-';
}

static int mx_value(const char *v, size_t n, struct sts_policy *out)
{
    size_t off = n >= 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;
    if (!domain_ok(v + off, n - off))
        return -1;
    if (out->nmx >= STS_MAX_MX)
        return -1;
    char *m = out->mx[out->nmx++];
    for (size_t i = 0; i < n; i++)
        m[i] = (char)tolower((unsigned char)v[i]);
    m[n] = '\0';
    return 0;
}

enum { HAVE_VERSION = 1, HAVE_MODE = 2, HAVE_MAXAGE = 4 };

/* One "key: value" line (no line end; trailing WSP already cut). */
static int policy_line(const char *l, size_t n, struct sts_policy *out, int *have,
                       const char **error_r)
{
    const char *colon = memchr(l, ':', n);
    if (!colon || !ext_name_ok(l, (size_t)(colon - l))) {
        *error_r = "a line is not \"key: value\"";
        return -1;
    }
    size_t kn = (size_t)(colon - l);
    const char *v = colon + 1;
    size_t vn = n - kn - 1;
    while (vn > 0 && wsp(*v)) {
        v++;
        vn--;
    }
    for (size_t i = 0; i < vn; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f) {
            *error_r = "a control character in a value";
            return -1;
        }
#define KEY(s) (kn == sizeof(s) - 1 && memcmp(l, s, kn) == 0)
#define VAL(s) (vn == sizeof(s) - 1 && memcmp(v, s, vn) == 0)
    if (KEY("version")) {
        if ((*have & HAVE_VERSION) || !VAL("STSv1")) {
            *error_r = "version is not STSv1 (or repeated)";
            return -1;
        }
        *have |= HAVE_VERSION;
    } else if (KEY("mode")) {
        if (*have & HAVE_MODE) {
            *error_r = "mode repeated";
            return -1;
        }
        if (VAL("enforce"))
            out->mode = STS_MODE_ENFORCE;
        else if (VAL("testing"))
            out->mode = STS_MODE_TESTING;
        else if (VAL("none"))
            out->mode = STS_MODE_NONE;
        else {
            *error_r = "mode is not enforce, testing or none";
            return -1;
        }
        *have |= HAVE_MODE;
    } else if (KEY("max_age")) {
        if ((*have & HAVE_MAXAGE) || vn == 0 || vn > 10) {
            *error_r = "max_age is not 1 to 10 digits (or repeated)";
            return -1;
        }
        long long a = 0;
        for (size_t i = 0; i < vn; i++) {
            if (!isdigit((unsigned char)v[i])) {
                *error_r = "max_age is not a number";
                return -1;
            }
            a = a * 10 + (v[i] - '0');
        }
        out->max_age = a > STS_MAX_AGE ? STS_MAX_AGE : (long)a;
        *have |= HAVE_MAXAGE;
    } else if (KEY("mx")) {
        if (mx_value(v, vn, out) < 0) {
            *error_r = out->nmx >= STS_MAX_MX ? "too many mx lines" : "an mx value is not a"
                       " host name or *.domain";
            return -1;
        }
    }
    /* other keys: extensions, ignored */
#undef KEY
#undef VAL
    return 0;
}

int sts_parse_policy(const char *text, size_t len, struct sts_policy *out, const char **error_r)
{
    memset(out, 0, sizeof *out);
    if (len > STS_MAX_BODY) {
        *error_r = "larger than 64 KiB";
        return -1;
    }
    int have = 0;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t n = end - i;
        if (n > 0 && text[i + n - 1] == '\r')
            n--;
        while (n > 0 && wsp(text[i + n - 1]))
            n--;
        if (n > 0 && policy_line(text + i, n, out, &have, error_r) < 0)
            return -1;
        i = nl ? end + 1 : len;
    }
    if (have != (HAVE_VERSION | HAVE_MODE | HAVE_MAXAGE)) {
        *error_r = !(have & HAVE_VERSION) ? "no version" : !(have & HAVE_MODE) ? "no mode"
                   : "no max_age";
        return -1;
    }
    if (out->nmx == 0 && out->mode != STS_MODE_NONE) {
        *error_r = "no mx";
        return -1;
    }
    return 0;
}

int sts_pattern_match(const char *pattern, const char *host)
{
    size_t hn = strlen(host);
    if (hn > 0 && host[hn - 1] == '.')
        hn--;
    if (pattern[0] == '*' && pattern[1] == '.') {
        /* exactly one leftmost label: "a.example.net" for "*.example.net" */
        const char *dot = memchr(host, '.', hn);
        if (!dot || dot == host)
            return 0;
        size_t rest = hn - (size_t)(dot + 1 - host);
        return strlen(pattern + 2) == rest && strncasecmp(dot + 1, pattern + 2, rest) == 0;
    }
    return strlen(pattern) == hn && strncasecmp(pattern, host, hn) == 0;
}

int sts_mx_match(const struct sts_policy *p, const char *host)
{
    for (int i = 0; i < p->nmx; i++)
        if (sts_pattern_match(p->mx[i], host))
            return 1;
    return 0;
}

const char *sts_mode_name(enum sts_mode m)
{
    return m == STS_MODE_ENFORCE ? "enforce" : m == STS_MODE_TESTING ? "testing" : "none";
}

char *sts_cache_format(const char *id, long long fetched, const char *policy, size_t plen,
                       size_t *len_r)
{
    char head[128];
    int hn = snprintf(head, sizeof head, "roost-mta-sts 1\nid: %s\nfetched: %lld\n\n", id, fetched);
    char *out = xmalloc((size_t)hn + plen + 1);
    memcpy(out, head, (size_t)hn);
    memcpy(out + hn, policy, plen);
    out[(size_t)hn + plen] = '\0';
    *len_r = (size_t)hn + plen;
    return out;
}

/* The header line at *P (ending in LF) as "KEY: value": the value, or NULL. */
static const char *head_line(const char **p, const char *end, const char *key, size_t *vlen)
{
    size_t kn = strlen(key);
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl || (size_t)(nl - *p) < kn + 2 || memcmp(*p, key, kn) != 0 || (*p)[kn] != ':' ||
        (*p)[kn + 1] != ' ')
        return NULL;
    const char *v = *p + kn + 2;
    *vlen = (size_t)(nl - v);
    *p = nl + 1;
    return v;
}

int sts_cache_parse(const char *data, size_t len, char id[STS_ID_MAX + 1], long long *fetched_r,
                    struct sts_policy *out)
{
    static const char magic[] = "roost-mta-sts 1\n";
    const char *p = data, *end = data + len;
    if (len < sizeof magic - 1 || memcmp(p, magic, sizeof magic - 1) != 0)
        return -1;
    p += sizeof magic - 1;
    size_t n;
    const char *v = head_line(&p, end, "id", &n);
    if (!v || n == 0 || n > STS_ID_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]))
            return -1;
    memcpy(id, v, n);
    id[n] = '\0';
    v = head_line(&p, end, "fetched", &n);
    if (!v || n == 0 || n > 18)
        return -1;
    long long f = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)v[i]))
            return -1;
        f = f * 10 + (v[i] - '0');
    }
    *fetched_r = f;
    if (p >= end || *p != '\n')
        return -1;
    p++;
    const char *err;
    return sts_parse_policy(p, (size_t)(end - p), out, &err);
}
