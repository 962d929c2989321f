/* imap_compress: COMPRESS=DEFLATE (RFC 4978). After the tagged OK both
 * directions are raw deflate streams (RFC 1951, zlib windowBits -15).
 * Output is deflated as it is written, each write ending on a sync flush
 * so that the client can read what it was sent; input is inflated from the
 * connection into the buffer the command reader reads. */
#include "imap/imap_int.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "net/conn.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Inflated input held at most (bounds a decompression bomb: the reader
 * takes it in framed pieces long before this). */
#define IMAP_INFLATE_MAX (4 * 1024 * 1024)

struct imap_zstream {
    z_stream out;
    z_stream in;
    struct evbuffer *plain_in;
};

struct evbuffer *imap_input(struct imap_session *s)
{
    if (s->z)
        return s->z->plain_in;
    return conn_input(s->conn);
}

void imap_compress_free(struct imap_session *s)
{
    if (!s->z)
        return;
    deflateEnd(&s->z->out);
    inflateEnd(&s->z->in);
    evbuffer_free(s->z->plain_in);
    free(s->z);
    s->z = NULL;
}

void imap_compress_write(struct imap_session *s, const void *p, size_t n)
{
    unsigned char chunk[16384];
    z_stream *zs = &s->z->out;
    zs->next_in = (unsigned char *)(uintptr_t)p;
    zs->avail_in = (uInt)n;
    do {
        zs->next_out = chunk;
        zs->avail_out = sizeof chunk;
        if (deflate(zs, Z_SYNC_FLUSH) == Z_STREAM_ERROR)
            return;
        conn_write(s->conn, chunk, sizeof chunk - zs->avail_out);
    } while (zs->avail_out == 0 || zs->avail_in > 0);
}

int imap_compress_input(struct imap_session *s)
{
    struct evbuffer *raw = conn_input(s->conn);
    z_stream *zs = &s->z->in;
    unsigned char out[16384];
    while (evbuffer_get_length(raw) > 0 &&
           evbuffer_get_length(s->z->plain_in) < IMAP_INFLATE_MAX) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(raw, -1, NULL, &v, 1) < 1)
            break;
        zs->next_in = v.iov_base;
        zs->avail_in = (uInt)v.iov_len;
        zs->next_out = out;
        zs->avail_out = sizeof out;
        int r = inflate(zs, Z_SYNC_FLUSH);
        if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END)
            return -1;
        evbuffer_drain(raw, v.iov_len - zs->avail_in);
        evbuffer_add(s->z->plain_in, out, sizeof out - zs->avail_out);
        if (r == Z_BUF_ERROR && zs->avail_in == v.iov_len)
            break;
    }
    return 0;
}

void imap_cmd_compress(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 1 || !imap_arg_is(&c->args[0], "DEFLATE")) {
        imap_bad(s, "Only COMPRESS DEFLATE is supported");
        return;
    }
    if (s->z) {
        imap_no(s, "[COMPRESSIONACTIVE] DEFLATE is already active");
        return;
    }
    struct imap_zstream *z = xcalloc(1, sizeof *z);
    if (deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(z);
        imap_no(s, "[SERVERBUG] Cannot start compression");
        return;
    }
    if (inflateInit2(&z->in, -15) != Z_OK) {
        deflateEnd(&z->out);
        free(z);
        imap_no(s, "[SERVERBUG] Cannot start compression");
        return;
    }
    z->plain_in = evbuffer_new();
    imap_ok_nosync(s, "DEFLATE active");
    s->z = z;   /* everything after the OK is compressed */
    s->compressed = 1;
    log_info("imap", "event=compress session=%s", s->id);
    /* anything the client sent after the command is already deflated */
    if (evbuffer_get_length(conn_input(s->conn)) > 0 && imap_compress_input(s) < 0)
        imap_close(s, NULL);
}
