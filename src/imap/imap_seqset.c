/* imap_seqset: sequence sets (RFC 9051 9 sequence-set, RFC 5182 "$") and
 * their compact form for COPYUID/APPENDUID and ESEARCH ALL. */
#include "imap/imap_parse.h"
#include "imap/imap_parse_int.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The number of a set element: nz-number or '*'. */
static int seq_number(const char *s, size_t len, uint32_t *out)
{
    if (len == 1 && s[0] == '*') {
        *out = IMAP_SEQ_STAR;
        return 0;
    }
    uint64_t v;
    if (imap_parse_number(s, len, UINT32_MAX - 1, &v) < 0 || v == 0 || s[0] == '0')
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int imap_seqset_parse(const char *s, struct imap_seqset *set)
{
    memset(set, 0, sizeof *set);
    if (!s || !*s)
        return -1;
    if (strcmp(s, "$") == 0) {
        set->saved = 1;
        return 0;
    }
    int cap = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t elen = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', elen);
        struct imap_seq_range r;
        if (colon) {
            if (seq_number(p, (size_t)(colon - p), &r.lo) < 0 ||
                seq_number(colon + 1, elen - (size_t)(colon - p) - 1, &r.hi) < 0)
                goto bad;
            if (r.lo > r.hi) {
                uint32_t t = r.lo;
                r.lo = r.hi;
                r.hi = t;
            }
        } else {
            if (seq_number(p, elen, &r.lo) < 0)
                goto bad;
            r.hi = r.lo;
        }
        if (set->n == cap) {
            cap = cap ? cap * 2 : 4;
            set->r = xrealloc(set->r, xmul((size_t)cap, sizeof *set->r));
        }
        set->r[set->n++] = r;
        if (!comma)
            return 0;
        p = comma + 1;
    }
bad:
    imap_seqset_free(set);
    return -1;
}

void imap_seqset_free(struct imap_seqset *set)
{
    free(set->r);
    memset(set, 0, sizeof *set);
}

int imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star_value)
{
    for (int i = 0; i < set->n; i++) {
        uint32_t lo = set->r[i].lo == IMAP_SEQ_STAR ? star_value : set->r[i].lo;
        uint32_t hi = set->r[i].hi == IMAP_SEQ_STAR ? star_value : set->r[i].hi;
        if (lo > hi) {
            uint32_t t = lo;
            lo = hi;
            hi = t;
        }
        if (n >= lo && n <= hi)
            return 1;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int imap_uids_format(const uint32_t *uids, int n, char *out, size_t outsz)
{
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    if (n <= 0)
        return 0;
    uint32_t *v = xmalloc(xmul((size_t)n, sizeof *v));
    memcpy(v, uids, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_u32);
    size_t len = 0;
    int i = 0, rc = 0;
    while (i < n) {
        int j = i;
        while (j + 1 < n && (v[j + 1] == v[j] || v[j + 1] == v[j] + 1))
            j++;
        int w = v[j] == v[i] ? snprintf(out + len, outsz - len, "%s%u", len ? "," : "", v[i])
                             : snprintf(out + len, outsz - len, "%s%u:%u", len ? "," : "",
                                        v[i], v[j]);
        if (w < 0 || (size_t)w >= outsz - len) {
            rc = -1;
            break;
        }
        len += (size_t)w;
        i = j + 1;
    }
    free(v);
    return rc < 0 ? -1 : (int)len;
}
