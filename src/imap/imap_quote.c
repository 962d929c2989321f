/* imap_quote: writes a string as IMAP sends it (RFC 9051 4.3): a quoted
 * string when it can be one, else a literal. When OUT cannot take it all,
 * OUT is left as it was. */
#include "imap/imap_parse.h"
#include "core/buf.h"

#include <stdio.h>
#include <string.h>

static int quote_into(struct buf *out, const char *s, size_t len, int utf8)
{
    int literal = 0;
    for (size_t i = 0; i < len && !literal; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0' || c == '\r' || c == '\n' || (c >= 0x80 && !utf8))
            literal = 1;
    }
    if (literal || len > 1024) {
        char hdr[32];
        int n = snprintf(hdr, sizeof hdr, "{%zu}\r\n", len);
        if (buf_append(out, hdr, (size_t)n) < 0 || buf_append(out, s, len) < 0)
            return -1;
        return 0;
    }
    if (buf_append(out, "\"", 1) < 0)
        return -1;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            if (buf_append(out, s + start, i - start) < 0 || buf_append(out, "\\", 1) < 0)
                return -1;
            start = i;
        }
    }
    if (buf_append(out, s + start, len - start) < 0 || buf_append(out, "\"", 1) < 0)
        return -1;
    return 0;
}

int imap_quote_string(struct buf *out, const char *s, size_t len, int utf8)
{
    size_t mark = out->len;
    if (quote_into(out, s, len, utf8) == 0)
        return 0;
    out->len = mark;   /* OUT full: nothing half-written stays */
    return -1;
}
