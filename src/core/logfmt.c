/* logfmt: a strict, bounded state machine over one log line; see logfmt.h
 * for the grammar. Decoded keys and values are copied into the line's own
 * buffer, so the result does not point into the input. */
#include "core/logfmt.h"

#include <string.h>

static int key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a quoted value starting after the opening quote at *POS; writes
 * into OUT and advances *POS past the closing quote. -1 when invalid. */
static int parse_quoted(const char *s, size_t len, size_t *pos, char *out, size_t *olen)
{
    size_t i = *pos, o = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' && (i + 1 == len || s[i + 1] == ' ')) {
            *pos = i + 1;
            *olen = o;
            return 0;
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (c != '\\') {
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (i + 1 >= len)
            return -1;
        unsigned char e = (unsigned char)s[i + 1];
        if (e == '"' || e == '\\') {
            out[o++] = (char)e;
            i += 2;
        } else if (e == 'x' && i + 3 < len && hexval((unsigned char)s[i + 2]) >= 0 &&
                   hexval((unsigned char)s[i + 3]) >= 0) {
            int v = hexval((unsigned char)s[i + 2]) * 16 + hexval((unsigned char)s[i + 3]);
            if (v == 0)
                return -1;
            out[o++] = (char)v;
            i += 4;
        } else {
            return -1;
        }
    }
    return -1; /* unterminated */
}

int logfmt_parse(struct logfmt_line *l, const char *line, size_t len)
{
    l->n = 0;
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > LOGFMT_MAX_LINE)
        return -1;
    size_t i = 0, o = 0;
    for (;;) {
        while (i < len && line[i] == ' ')
            i++;
        if (i == len)
            break;
        if (l->n == LOGFMT_MAX_FIELDS)
            goto bad;
        size_t k = i;
        while (i < len && key_char((unsigned char)line[i]))
            i++;
        if (i == k || i - k > LOGFMT_MAX_KEY || i == len || line[i] != '=')
            goto bad;
        struct logfmt_field *f = &l->f[l->n];
        memcpy(l->buf + o, line + k, i - k);
        f->key = l->buf + o;
        o += i - k;
        l->buf[o++] = '\0';
        i++; /* '=' */
        f->val = l->buf + o;
        if (i < len && line[i] == '"') {
            i++;
            size_t vlen;
            if (parse_quoted(line, len, &i, l->buf + o, &vlen) < 0)
                goto bad;
            f->vlen = vlen;
            o += vlen;
        } else {
            size_t v = i;
            while (i < len && line[i] != ' ') {
                unsigned char c = (unsigned char)line[i];
                if (c < 0x20 || c == 0x7f)
                    goto bad;
                i++;
            }
            memcpy(l->buf + o, line + v, i - v);
            f->vlen = i - v;
            o += i - v;
        }
        l->buf[o++] = '\0';
        l->n++;
    }
    return 0;
bad:
    l->n = 0;
    return -1;
}

const char *logfmt_get(const struct logfmt_line *l, const char *key)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->f[i].key, key) == 0)
            return l->f[i].val;
    return NULL;
}
