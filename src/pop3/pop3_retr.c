/* pop3_retr: streams a message for RETR and TOP (RFC 1939 7, 11) without
 * loading it into memory. Each worker job opens the message file (first
 * job: store_msg_open, a whole file or the message's range of a pack),
 * reads up to POP3_RETR_CHUNK bytes, and runs them through the
 * stuffer (pop3_parse.h: byte-stuffing, CRLF, TOP's cut, the final "."),
 * so the loop only writes. The next chunk is read only once the output
 * holds less than POP3_OUTPUT_LOW_WATER (backpressure: a client that reads
 * slowly keeps at most one chunk plus the mark in memory).
 *
 * Ownership: the session owns s->retr; while a chunk job is in flight
 * (s->busy) only that job touches it. The "+OK N octets" line is written
 * with the first chunk, so a message file that vanished (expunged over
 * IMAP) still gets a clean -ERR. A message counts as retrieved (for the
 * after-download option) once its terminating "." is queued.
 *
 * A message that fits one chunk and whose file the kernel holds in memory
 * (store_read_cached: no disk wait possible) is served on the loop at
 * once, status line, body and "." in one write: no worker round trip, and
 * pipelined RETRs are answered one after the other in the same pass of
 * pop3_resume. Anything else (a longer message, a file not cached, an
 * error) takes the worker path above, which also reports the errors. */
#include "pop3/pop3_int.h"
#include "pop3/pop3_job.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "store/store.h"
#include "store/store_cached.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pop3_retr_free(struct pop3_retr **rp)
{
    struct pop3_retr *r = *rp;
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd); /* a read-only regular file: does not block */
    free(r);   /* in/out belong to the session (reused by the next RETR) */
    *rp = NULL;
}

/* Fills r->in with up to POP3_RETR_CHUNK bytes of the message (a whole
 * file to its end, a pack's range to its last byte). Returns the count, 0
 * at the end, -1 with r->error set. */
static ssize_t read_chunk(struct pop3_retr *r)
{
    size_t have = 0;
    int whole = r->left == SIZE_MAX;
    size_t want = r->left < POP3_RETR_CHUNK ? r->left : POP3_RETR_CHUNK;
    while (have < want) {
        ssize_t n = pread(r->fd, r->in + have, want - have, (off_t)r->offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r->error = errno;
            return -1;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        r->offset += n;
        if (!whole)
            r->left -= (size_t)n;
    }
    if (have < want && !whole) {
        r->error = EIO;   /* the pack is shorter than its row says */
        return -1;
    }
    if (r->left == 0 || have < want)
        r->eof = 1;
    return (ssize_t)have;
}

static void chunk_work(struct pop3_job *j)
{
    struct pop3_retr *r = j->retr;
    r->outlen = 0;
    if (r->fd < 0) {
        size_t len;
        r->fd = store_msg_open(r->path, r->offset, r->size, SIZE_MAX, &len);
        if (r->fd < 0) {
            r->error = errno;
            return;
        }
        if (r->offset == STORE_WHOLE_FILE) {
            r->offset = 0;
            r->left = SIZE_MAX;   /* to the end of the file, as it always was */
        } else {
            r->left = len;
        }
    }
    ssize_t n = read_chunk(r);
    if (n < 0)
        return;
    r->outlen = pop3_stuffer_feed(&r->st, r->in, (size_t)n, r->out);
    if (r->st.done)
        r->eof = 1;
    if (r->eof) {
        r->outlen += pop3_stuffer_finish(&r->st, r->out + r->outlen);
        close(r->fd);
        r->fd = -1;
    }
}

static void chunk_failed(struct pop3_session *s, struct pop3_retr *r)
{
    log_error("pop3", "event=retr session=%s client=%s account=%s msg=%d result=error "
              "error=\"%s\"", s->id, s->peer, s->account, r->msgno, strerror(r->error));
    if (!r->started) {
        pop3_reply(s, "-ERR Message %d is no longer available", r->msgno);
        pop3_retr_free(&s->retr);
        return;
    }
    /* Half a message was sent: the stream cannot be repaired. */
    pop3_retr_free(&s->retr);
    pop3_close(s);
}

static void chunk_done(struct pop3_job *j)
{
    struct pop3_session *s = j->s;
    struct pop3_retr *r = s->retr;
    if (r->error) {
        chunk_failed(s, r);
        return;
    }
    if (!r->started) {
        r->started = 1;
        pop3_reply(s, "+OK %zu octets", r->size);
    }
    pop3_write(s, r->out, r->outlen);
    s->streamed += r->outlen;
    if (!r->eof)
        return; /* pop3_resume continues when the output has room */
    if (!r->is_top) {
        s->retrieved[r->msgno - 1] = 1;
        s->retrs++;
    }
    log_debug("pop3", "event=%s session=%s msg=%d", r->is_top ? "top" : "retr", s->id, r->msgno);
    pop3_retr_free(&s->retr);
}

void pop3_retr_continue(struct pop3_session *s)
{
    if (!s->retr || s->busy || !s->conn)
        return;
    if (conn_output_len(s->conn) > POP3_OUTPUT_LOW_WATER)
        return; /* on_drained resumes */
    struct pop3_job *j = pop3_job_new(s);
    j->retr = s->retr;
    pop3_job_run(j, chunk_work, chunk_done);
}

/* one pair of buffers per session, not per message: a 192 KiB allocation
 * is an mmap/munmap pair each time */
static void ensure_buffers(struct pop3_session *s)
{
    if (!s->retr_in) {
        s->retr_in = xmalloc(POP3_RETR_CHUNK);
        s->retr_out = xmalloc(POP3_RETR_OUT_SIZE);
    }
}

/* The whole message from the page cache, on the loop: 0 when it was sent,
 * -1 when the worker path must serve it. */
static int retr_inline(struct pop3_session *s, const struct store_pop_msg *m, int msgno,
                       int is_top, unsigned long lines)
{
    if (m->size > POP3_RETR_CHUNK)
        return -1;
    ssize_t n = store_read_cached(m->path, m->offset, m->size, s->retr_in, POP3_RETR_CHUNK);
    if (n < 0)
        return -1;
    char *out = s->retr_out;
    int o = snprintf(out, POP3_RETR_HEAD_MAX, "+OK %zu octets\r\n", m->size);
    if (o < 0 || o >= POP3_RETR_HEAD_MAX)
        return -1;
    struct pop3_stuffer st;
    pop3_stuffer_init(&st, is_top, lines);
    size_t len = (size_t)o;
    size_t body = pop3_stuffer_feed(&st, s->retr_in, (size_t)n, out + len);
    body += pop3_stuffer_finish(&st, out + len + body);
    pop3_write(s, out, len + body);
    s->streamed += body;
    if (!is_top) {
        s->retrieved[msgno - 1] = 1;
        s->retrs++;
    }
    log_debug("pop3", "event=%s session=%s msg=%d cached=1", is_top ? "top" : "retr", s->id,
              msgno);
    return 0;
}

void pop3_retr_start(struct pop3_session *s, int msgno, int is_top, unsigned long lines)
{
    const struct store_pop_msg *m = store_pop_msg(s->pop, msgno - 1);
    ensure_buffers(s);
    if (retr_inline(s, m, msgno, is_top, lines) == 0)
        return;
    struct pop3_retr *r = xcalloc(1, sizeof *r);
    r->msgno = msgno;
    r->is_top = is_top;
    r->fd = -1;
    r->size = m->size;
    snprintf(r->path, sizeof r->path, "%s", m->path);
    r->offset = m->offset;
    pop3_stuffer_init(&r->st, is_top, lines);
    r->in = s->retr_in;
    r->out = s->retr_out;
    s->retr = r;
    pop3_retr_continue(s);
}
