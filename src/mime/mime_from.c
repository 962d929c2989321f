/* mime_from: the From: fields of a header block as raw text (mime.h:
 * mime_next_from_field), for the checks that look at who a message says it
 * is from: submission's From: ownership and the DKIM signing domain. */
#include "mime/mime.h"
#include "core/buf.h"

#include <strings.h>

char *mime_next_from_field(const char *p, size_t len, size_t *pos)
{
    size_t i = *pos;
    while (i < len) {
        size_t eol = i;
        while (eol < len && p[eol] != '\n')
            eol++;
        size_t linelen = eol - i;
        if (linelen == 0 || (linelen == 1 && p[i] == '\r'))
            return NULL; /* end of header */
        size_t next = eol < len ? eol + 1 : eol;
        if (linelen >= 5 && strncasecmp(p + i, "From:", 5) == 0) {
            struct buf v;
            buf_init(&v, len);
            size_t vstart = i + 5;
            size_t end = next;
            while (end < len && (p[end] == ' ' || p[end] == '\t')) {
                while (end < len && p[end] != '\n')
                    end++;
                if (end < len)
                    end++;
            }
            for (size_t k = vstart; k < end; k++)
                if (p[k] != '\r' && p[k] != '\n' && buf_append(&v, p + k, 1) < 0)
                    break;
            *pos = end;
            return buf_steal(&v, NULL);
        }
        i = next;
    }
    return NULL;
}
