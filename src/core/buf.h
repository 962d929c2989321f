/* buf: an owned byte buffer with a hard maximum fixed at creation.
 * An append past max fails (returns -1) and leaves the buffer unchanged; it
 * never truncates silently. The bytes are always followed by a NUL for
 * convenience, but len is the truth. */
#ifndef ROOST_BUF_H
#define ROOST_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_deinit(struct buf *b);
void buf_reset(struct buf *b);
__attribute__((warn_unused_result)) int buf_append(struct buf *b, const void *p, size_t n);
__attribute__((warn_unused_result)) int buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Inserts N bytes of P before the buffer's bytes; fails (-1, buffer
 * unchanged) like an append would past max. */
__attribute__((warn_unused_result)) int buf_prepend(struct buf *b, const void *p, size_t n);
/* Hands the bytes to the caller (who frees them) and resets the buffer. */
char *buf_steal(struct buf *b, size_t *len_r);

#endif
