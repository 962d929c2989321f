/* pop3_retr: streams a message for RETR and TOP (RFC 1939 7, 11) without
 * loading it into memory. Each worker job opens the message file (first
 * job), reads up to POP3_RETR_CHUNK bytes, and runs them through the
 * stuffer (pop3_parse.h: byte-stuffing, CRLF, TOP's cut, the final "."),
 * so the loop only writes. The next chunk is read only once the output
 * holds less than POP3_OUTPUT_LOW_WATER (backpressure: a client that reads
 * slowly keeps at most one chunk plus the mark in memory).
 *
 * Ownership: the session owns s->retr; while a chunk job is in flight
 * (s->busy) only that job touches it. The "+OK N octets" line is written
 * with the first chunk, so a message file that vanished (expunged over
 * IMAP) still gets a clean -ERR. A message counts as retrieved (for the
 * after-download option) once its terminating "." is queued. */
#include "pop3/pop3_int.h"
#include "pop3/pop3_job.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "store/store.h"

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

/* Fills r->in with up to POP3_RETR_CHUNK bytes. Returns the count, 0 at
 * the end of the file, -1 with r->error set. */
static ssize_t read_chunk(struct pop3_retr *r)
{
    size_t have = 0;
    while (have < POP3_RETR_CHUNK) {
        ssize_t n = read(r->fd, r->in + have, POP3_RETR_CHUNK - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r->error = errno;
            return -1;
        }
        if (n == 0) {
            r->eof = 1;
            break;
        }
        have += (size_t)n;
    }
    return (ssize_t)have;
}

static void chunk_work(struct pop3_job *j)
{
    struct pop3_retr *r = j->retr;
    r->outlen = 0;
    if (r->fd < 0) {
        r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) {
            r->error = errno;
            return;
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

void pop3_retr_start(struct pop3_session *s, int msgno, int is_top, unsigned long lines)
{
    const struct store_pop_msg *m = store_pop_msg(s->pop, msgno - 1);
    struct pop3_retr *r = xcalloc(1, sizeof *r);
    r->msgno = msgno;
    r->is_top = is_top;
    r->fd = -1;
    r->size = m->size;
    snprintf(r->path, sizeof r->path, "%s", m->path);
    pop3_stuffer_init(&r->st, is_top, lines);
    /* one pair of buffers per session, not per message: a 192 KiB
     * allocation is an mmap/munmap pair each time */
    if (!s->retr_in) {
        s->retr_in = xmalloc(POP3_RETR_CHUNK);
        s->retr_out = xmalloc(2 * POP3_RETR_CHUNK + POP3_STUFFER_FINISH_MAX);
    }
    r->in = s->retr_in;
    r->out = s->retr_out;
    s->retr = r;
    pop3_retr_continue(s);
}
