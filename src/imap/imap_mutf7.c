/* imap_mutf7: mailbox names in modified UTF-7 (RFC 3501 5.1.3) to and
 * from UTF-8, and the checks every mailbox name passes (no "..", no
 * leading "/", no control characters, no wildcards). Decoding is strict:
 * a base64 run must be non-empty, must not encode printable ASCII, must
 * hold whole UTF-16 units with paired surrogates and zero padding bits. */
#include "imap/imap_parse.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME_OCTETS 1000

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Appends code point CP as UTF-8. */
static int put_utf8(struct buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(b, u, n);
}

/* Decodes the base64 run S[0..len) into UTF-8. */
static int decode_run(const char *s, size_t len, struct buf *out)
{
    if (len == 0)
        return -1;
    uint32_t bits = 0;
    int nbits = 0;
    uint32_t high = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        bits = (bits << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits < 16)
            continue;
        nbits -= 16;
        uint32_t unit = (bits >> nbits) & 0xffff;
        bits &= (1u << nbits) - 1;
        if (high) {
            if (unit < 0xdc00 || unit > 0xdfff)
                return -1;
            if (put_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00)) < 0)
                return -1;
            high = 0;
        } else if (unit >= 0xd800 && unit <= 0xdbff) {
            high = unit;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            return -1;
        } else {
            if ((unit >= 0x20 && unit <= 0x7e) || unit == 0)
                return -1; /* printable ASCII must be itself; no NUL in a name */
            if (put_utf8(out, unit) < 0)
                return -1;
        }
    }
    if (high || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
        return -1;
    return 0;
}

char *imap_mutf7_to_utf8(const char *s)
{
    struct buf out;
    buf_init(&out, 4 * strlen(s) + 16);
    for (const char *p = s; *p;) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c > 0x7e)
            goto bad;
        if (c != '&') {
            if (buf_append(&out, p, 1) < 0)
                goto bad;
            p++;
            continue;
        }
        const char *end = strchr(p + 1, '-');
        if (!end)
            goto bad;
        if (end == p + 1) {
            if (buf_append(&out, "&", 1) < 0)
                goto bad;
        } else if (decode_run(p + 1, (size_t)(end - p - 1), &out) < 0 ||
                   (end[1] == '&' && end[2] != '-')) {
            goto bad; /* two encoded runs in a row are one run (canonical form) */
        }
        p = end + 1;
    }
    if (buf_append(&out, "", 1) < 0)
        goto bad;
    return buf_steal(&out, NULL);
bad:
    buf_deinit(&out);
    return NULL;
}

/* The next code point of UTF-8 text; -1 for malformed input. */
static int32_t next_utf8(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t cp;
    int n;
    if (p[0] < 0x80) {
        *pp = p + 1;
        return p[0];
    }
    if ((p[0] & 0xe0) == 0xc0) {
        cp = p[0] & 0x1f;
        n = 1;
    } else if ((p[0] & 0xf0) == 0xe0) {
        cp = p[0] & 0x0f;
        n = 2;
    } else if ((p[0] & 0xf8) == 0xf0) {
        cp = p[0] & 0x07;
        n = 3;
    } else {
        return -1;
    }
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *pp = p + n + 1;
    return (int32_t)cp;
}

static int flush_run(struct buf *out, const uint16_t *units, size_t n)
{
    if (buf_append(out, "&", 1) < 0)
        return -1;
    uint32_t bits = 0;
    int nbits = 0;
    for (size_t i = 0; i < n; i++) {
        bits = (bits << 16) | units[i];
        nbits += 16;
        while (nbits >= 6) {
            nbits -= 6;
            if (buf_append(out, &b64[(bits >> nbits) & 0x3f], 1) < 0)
                return -1;
        }
        bits &= (1u << nbits) - 1;
    }
    if (nbits > 0 && buf_append(out, &b64[(bits << (6 - nbits)) & 0x3f], 1) < 0)
        return -1;
    return buf_append(out, "-", 1);
}

char *imap_utf8_to_mutf7(const char *s)
{
    size_t len = strlen(s);
    struct buf out;
    buf_init(&out, 4 * len + 16);
    uint16_t *units = xmalloc(xmul(len + 1, 2 * sizeof *units));
    size_t nunits = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int32_t cp = next_utf8(&p);
        if (cp < 0)
            goto bad;
        if (cp >= 0x20 && cp <= 0x7e) {
            if (nunits && flush_run(&out, units, nunits) < 0)
                goto bad;
            nunits = 0;
            if (buf_append(&out, cp == '&' ? "&-" : (const char *)&(char){(char)cp},
                           cp == '&' ? 2 : 1) < 0)
                goto bad;
            continue;
        }
        if (cp >= 0x10000) {
            units[nunits++] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
            units[nunits++] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
        } else {
            units[nunits++] = (uint16_t)cp;
        }
    }
    if (nunits && flush_run(&out, units, nunits) < 0)
        goto bad;
    free(units);
    if (buf_append(&out, "", 1) < 0) {
        buf_deinit(&out);
        return NULL;
    }
    return buf_steal(&out, NULL);
bad:
    free(units);
    buf_deinit(&out);
    return NULL;
}

const char *imap_mailbox_name_check(const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return "Empty mailbox name";
    if (len > MAX_NAME_OCTETS)
        return "Mailbox name too long";
    if (name[0] == '/')
        return "Mailbox name must not start with \"/\"";
    const unsigned char *p = (const unsigned char *)name;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return "Control characters are not allowed in mailbox names";
        if (*p == '*' || *p == '%')
            return "\"*\" and \"%\" are not allowed in mailbox names";
        if (*p >= 0x80) {
            if (next_utf8(&p) < 0)
                return "Mailbox name is not valid UTF-8";
            continue;
        }
        p++;
    }
    const char *c = name;
    for (;;) {
        const char *slash = strchr(c, '/');
        size_t clen = slash ? (size_t)(slash - c) : strlen(c);
        if (clen == 0)
            return "Empty hierarchy level in mailbox name";
        if ((clen == 1 && c[0] == '.') || (clen == 2 && c[0] == '.' && c[1] == '.'))
            return "\".\" and \"..\" are not allowed in mailbox names";
        if (!slash)
            break;
        c = slash + 1;
    }
    return NULL;
}
