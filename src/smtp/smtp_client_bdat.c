/* smtp_client_bdat: the message body as the outbound client sends it in a
 * BDAT chunk (RFC 3030 CHUNKING): the stored bytes as they are, no
 * dot-stuffing and no end marker; only bare LF becomes CRLF and a missing
 * final line end is added, the same line-ending repair the DATA path makes
 * (smtpc_dot_stuff), so both send the same message. Pure, no I/O. */
#include "smtp/smtp_client.h"

#include <event2/buffer.h>
#include <string.h>

int smtpc_chunk_body(struct evbuffer *out, const char *data, size_t len)
{
    size_t run = 0;   /* start of the bytes not yet appended */
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if (nl == data || nl[-1] != '\r') {
            size_t at = (size_t)(nl - data);
            if (evbuffer_add(out, data + run, at - run) < 0 || evbuffer_add(out, "\r\n", 2) < 0)
                return -1;
            run = at + 1;
        }
        p = nl + 1;
    }
    if (run < len && evbuffer_add(out, data + run, len - run) < 0)
        return -1;
    if (len > 0 && data[len - 1] != '\n')
        return evbuffer_add(out, data[len - 1] == '\r' ? "\n" : "\r\n",
                            data[len - 1] == '\r' ? 1 : 2);
    return 0;
}
