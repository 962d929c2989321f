/* journal: group-committed segments for mail delivered at once (journal.h).
 *
 * Threads: journal_append runs on session loops and only encodes and links
 * the record into the waiting list; the journal's own thread does all file
 * work (segment creation, writev, fdatasync, truncation after a failed
 * write, unlinking finished segments) and posts each result to its
 * submitter's loop (loop_post_job, so shutdown waits for it). Segment
 * reference counts and the waiting list are under j->lock; the active
 * segment's descriptor and size belong to the thread. */
#include "queue/journal.h"
#include "queue/journal_parse.h"
#include "core/buf.h"
#include "core/fsutil.h"
#include "core/le32.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SEG_NAME_LEN 16
#define BATCH_IOV 512

struct journal_seg {
    struct journal_seg *next;
    uint64_t seq;
    int refs;        /* records not yet released (j->lock) */
    int sealed;      /* no more appends (j->lock) */
    uint64_t size;   /* octets written (the thread; read under j->lock) */
};

struct jitem {
    struct jitem *next;
    struct buf rec;
    struct loop *loop;
    journal_done_fn done;
    void *arg;
    int result;
    const char *error;
    struct journal_seg *seg;
};

struct journal {
    char *dir;
    int dir_fd;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct jitem *head, *tail;
    int stopping;
    int reap;                   /* a sealed segment may have no references */
    int rotate;                 /* the active segment may be idle and large */
    struct journal_seg *segs;   /* every live segment (j->lock) */
    struct journal_seg *active; /* the thread's; NULL: none open */
    int active_fd;
    uint64_t next_seq;
    unsigned long commits, records;
};

static void *commit_thread(void *arg);

static void seg_path(const struct journal *j, uint64_t seq, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%016" PRIx64, j->dir, seq);
}

/* 1 and *seq_r if NAME is a segment name (16 lower-case hex digits). */
static int seg_name_parse(const char *name, uint64_t *seq_r)
{
    if (strlen(name) != SEG_NAME_LEN || strspn(name, "0123456789abcdef") != SEG_NAME_LEN)
        return 0;
    *seq_r = strtoull(name, NULL, 16);
    return 1;
}

/* ---- open / close ---- */

struct journal *journal_open(const char *data_dir, const char **error_r)
{
    struct journal *j = xcalloc(1, sizeof *j);
    j->dir = xasprintf("%s/queue/journal", data_dir);
    j->dir_fd = -1;
    j->active_fd = -1;
    j->next_seq = 1;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    char *parent = xasprintf("%s/queue", data_dir);
    if (mkdir(parent, 0700) < 0 && errno != EEXIST) {
        *error_r = "cannot create the queue directory";
        goto fail;
    }
    int made = mkdir(j->dir, 0700) == 0;
    if (!made && errno != EEXIST) {
        *error_r = "cannot create the queue journal directory";
        goto fail;
    }
    if (made && fs_fsync_dir_path(parent) < 0) {
        *error_r = "cannot fsync the queue directory";
        goto fail;
    }
    j->dir_fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dir_fd < 0) {
        *error_r = "cannot open the queue journal directory";
        goto fail;
    }
    if (pthread_create(&j->thread, NULL, commit_thread, j) != 0) {
        *error_r = "cannot start the journal thread";
        goto fail;
    }
    j->thread_started = 1;
    free(parent);
    return j;
fail:
    free(parent);
    journal_close(&j);
    return NULL;
}

void journal_close(struct journal **jp)
{
    struct journal *j = *jp;
    if (!j)
        return;
    if (j->thread_started) {
        pthread_mutex_lock(&j->lock);
        j->stopping = 1;
        pthread_cond_signal(&j->cond);
        pthread_mutex_unlock(&j->lock);
        pthread_join(j->thread, NULL);
    }
    if (j->active_fd >= 0)
        close(j->active_fd);
    if (j->dir_fd >= 0)
        close(j->dir_fd);
    while (j->segs) {
        struct journal_seg *n = j->segs->next;
        free(j->segs);   /* the files stay: replayed at the next start */
        j->segs = n;
    }
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
    free(j->dir);
    free(j);
    *jp = NULL;
}

void journal_stats(struct journal *j, unsigned long *commits_r, unsigned long *records_r)
{
    pthread_mutex_lock(&j->lock);
    *commits_r = j->commits;
    *records_r = j->records;
    pthread_mutex_unlock(&j->lock);
}

/* ---- append (loop threads) ---- */

static void item_done(void *arg)
{
    struct jitem *it = arg;
    it->done(it->arg, it->result, it->seg, it->error);
    buf_deinit(&it->rec);
    free(it);
}

void journal_append(struct journal *j, const struct spool_msg *msg, struct loop *loop,
                    journal_done_fn done, void *arg)
{
    struct jitem *it = xcalloc(1, sizeof *it);
    it->loop = loop;
    it->done = done;
    it->arg = arg;
    buf_init(&it->rec, (size_t)UINT32_MAX);
    unsigned char hdr[REC_HDR] = { 'J', 0, 0, 0, 0 };
    const char *err = NULL;
    int bad = buf_append(&it->rec, hdr, sizeof hdr) < 0 ||
              buf_append(&it->rec, msg->id, SPOOL_ID_LEN) < 0 ||
              spool_encode(msg, &it->rec, &err) < 0;
    loop_job_begin(loop);
    if (bad) {
        it->result = -1;
        it->error = err ? err : "cannot encode the message";
        loop_post_job(loop, item_done, it);
        return;
    }
    le32_put((unsigned char *)it->rec.data + 1, (uint32_t)(it->rec.len - REC_HDR));
    pthread_mutex_lock(&j->lock);
    if (j->stopping) {
        pthread_mutex_unlock(&j->lock);
        it->result = -1;
        it->error = "queue stopping";
        loop_post_job(loop, item_done, it);
        return;
    }
    if (j->tail)
        j->tail->next = it;
    else
        j->head = it;
    j->tail = it;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

void journal_release(struct journal *j, struct journal_seg *seg)
{
    pthread_mutex_lock(&j->lock);
    if (--seg->refs == 0) {
        if (seg->sealed)
            j->reap = 1;
        else if (seg->size >= JOURNAL_SEGMENT_IDLE_ROTATE)
            j->rotate = 1;
        if (j->reap || j->rotate)
            pthread_cond_signal(&j->cond);
    }
    pthread_mutex_unlock(&j->lock);
}

/* ---- the commit thread ---- */

/* A new active segment: created, its magic written, its name durable. */
static int segment_create(struct journal *j)
{
    char path[PATH_MAX];
    uint64_t seq = j->next_seq++;
    seg_path(j, seq, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (fs_write_all(fd, SEG_MAGIC, SEG_MAGIC_LEN) < 0 || fsync(fd) < 0 || fsync(j->dir_fd) < 0) {
        close(fd);
        unlink(path);
        return -1;
    }
    struct journal_seg *s = xcalloc(1, sizeof *s);
    s->seq = seq;
    s->size = SEG_MAGIC_LEN;
    pthread_mutex_lock(&j->lock);
    s->next = j->segs;
    j->segs = s;
    pthread_mutex_unlock(&j->lock);
    j->active = s;
    j->active_fd = fd;
    return 0;
}

/* Closes the active segment to appends; the reaper removes it once free. */
static void segment_seal(struct journal *j)
{
    if (!j->active)
        return;
    close(j->active_fd);
    j->active_fd = -1;
    pthread_mutex_lock(&j->lock);
    j->active->sealed = 1;
    if (j->active->refs == 0)
        j->reap = 1;
    pthread_mutex_unlock(&j->lock);
    j->active = NULL;
}

/* Writes ITEMS (at most BATCH_IOV) and fdatasyncs once. */
static void commit_batch(struct journal *j, struct jitem **items, int n)
{
    const char *error = NULL;
    if (!j->active && segment_create(j) < 0)
        error = "cannot create a queue journal segment";
    struct iovec iov[BATCH_IOV];
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = items[i]->rec.data;
        iov[i].iov_len = items[i]->rec.len;
        total += items[i]->rec.len;
    }
    if (!error && fs_writev_all(j->active_fd, iov, n) < 0)
        error = "cannot write the queue journal";
    if (!error && fdatasync(j->active_fd) < 0)
        error = "cannot fsync the queue journal";
    if (error && j->active) {
        /* Nothing here was acknowledged: take it back, start a new segment. */
        if (ftruncate(j->active_fd, (off_t)j->active->size) < 0 || fdatasync(j->active_fd) < 0)
            log_error("queue", "event=journal-truncate-failed segment=%016" PRIx64
                      " error=\"%s\"", j->active->seq, strerror(errno));
        segment_seal(j);
    }
    if (error)
        log_error("queue", "event=journal-write-failed error=\"%s\" os_error=\"%s\"", error,
                  strerror(errno));
    pthread_mutex_lock(&j->lock);
    j->commits++;
    if (!error) {
        j->active->size += total;
        j->active->refs += n;
        j->records += (unsigned long)n;
    }
    pthread_mutex_unlock(&j->lock);
    for (int i = 0; i < n; i++) {
        items[i]->result = error ? -1 : 0;
        items[i]->error = error;
        items[i]->seg = error ? NULL : j->active;
        loop_post_job(items[i]->loop, item_done, items[i]);
    }
    if (!error && j->active->size >= JOURNAL_SEGMENT_MAX)
        segment_seal(j);
}

/* Unlinks every sealed segment without references, then fsyncs the dir. */
static void reap_segments(struct journal *j)
{
    struct journal_seg *dead = NULL;
    pthread_mutex_lock(&j->lock);
    j->reap = 0;
    for (struct journal_seg **pp = &j->segs; *pp;) {
        struct journal_seg *s = *pp;
        if (s->sealed && s->refs == 0) {
            *pp = s->next;
            s->next = dead;
            dead = s;
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&j->lock);
    if (!dead)
        return;
    while (dead) {
        struct journal_seg *n = dead->next;
        char path[PATH_MAX];
        seg_path(j, dead->seq, path, sizeof path);
        if (unlink(path) < 0 && errno != ENOENT)
            log_warn("queue", "event=journal-unlink-failed segment=%016" PRIx64 " error=\"%s\"",
                     dead->seq, strerror(errno));
        free(dead);
        dead = n;
    }
    if (fsync(j->dir_fd) < 0)
        log_warn("queue", "event=fsync-failed dir=queue/journal error=\"%s\"", strerror(errno));
}

/* The active segment is large and nothing in it is pending: close it so
 * that it can go. */
static void rotate_idle(struct journal *j)
{
    pthread_mutex_lock(&j->lock);
    j->rotate = 0;
    int idle = j->active && j->active->refs == 0 && j->active->size >= JOURNAL_SEGMENT_IDLE_ROTATE;
    pthread_mutex_unlock(&j->lock);
    if (idle)
        segment_seal(j);
}

static void *commit_thread(void *arg)
{
    struct journal *j = arg;
    struct jitem *batch[BATCH_IOV];
    pthread_mutex_lock(&j->lock);
    for (;;) {
        while (!j->head && !j->reap && !j->rotate && !j->stopping)
            pthread_cond_wait(&j->cond, &j->lock);
        if (!j->head && !j->reap && !j->rotate)
            break;   /* stopping, nothing left */
        int n = 0;
        while (j->head && n < BATCH_IOV) {
            batch[n++] = j->head;
            j->head = j->head->next;
        }
        if (!j->head)
            j->tail = NULL;
        int reap = j->reap, rotate = j->rotate;
        pthread_mutex_unlock(&j->lock);
        if (n > 0)
            commit_batch(j, batch, n);
        if (rotate)
            rotate_idle(j);
        if (reap)
            reap_segments(j);   /* a reap asked meanwhile: the next turn */
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ---- replay (start-up) ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int read_segment(const char *path, char **data_r, size_t *len_r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    int rc = fs_read_regular(fd, (size_t)JOURNAL_SEGMENT_MAX * 16, data_r, len_r);
    close(fd);
    return rc < 0 ? -1 : 0;
}

struct replay_ctx {
    struct journal *j;
    struct journal_seg *seg;
    int (*cb)(struct spool_msg *, struct journal_seg *, void *);
    void *arg;
    int count;
};

/* One intact record: a reference on the segment unless CB declines it. */
static void replay_record(struct spool_msg *m, void *arg)
{
    struct replay_ctx *rc = arg;
    pthread_mutex_lock(&rc->j->lock);
    rc->seg->refs++;
    pthread_mutex_unlock(&rc->j->lock);
    if (!rc->cb(m, rc->seg, rc->arg)) {
        pthread_mutex_lock(&rc->j->lock);
        rc->seg->refs--;
        pthread_mutex_unlock(&rc->j->lock);
    }
    rc->count++;
}

/* Replays one segment; returns the records handed to CB. */
static int replay_segment(struct journal *j, struct journal_seg *seg,
                          int (*cb)(struct spool_msg *, struct journal_seg *, void *), void *arg)
{
    char path[PATH_MAX];
    seg_path(j, seg->seq, path, sizeof path);
    char *data = NULL;
    size_t len = 0;
    if (read_segment(path, &data, &len) < 0) {
        log_error("queue", "event=journal-unreadable segment=%016" PRIx64 " error=\"%s\"",
                  seg->seq, strerror(errno));
        seg->refs++;   /* keep the file: never delete what could not be read */
        return 0;
    }
    struct replay_ctx rc = { j, seg, cb, arg, 0 };
    size_t off = 0;
    const char *why = NULL;
    journal_parse(data, len, replay_record, &rc, &off, &why);
    int count = rc.count;
    if (why && strcmp(why, "torn-record") == 0) {
        /* the end of a write that was never acknowledged */
        log_warn("queue", "event=journal-tail-ignored segment=%016" PRIx64 " offset=%zu"
                 " bytes=%zu reason=%s", seg->seq, off, len - off, why);
    } else if (why) {
        /* a damaged record that was written in full: keep the file for a
         * look (queue/corrupt/), never delete what could have been mail */
        char to[PATH_MAX];
        snprintf(to, sizeof to, "%s/../corrupt/journal-%016" PRIx64, j->dir, seg->seq);
        int moved = rename(path, to) == 0;
        log_error("queue", "event=journal-damaged segment=%016" PRIx64 " offset=%zu bytes=%zu"
                  " reason=%s moved=%s", seg->seq, off, len - off, why,
                  moved ? "corrupt/" : "no");
        if (!moved)
            seg->refs++;   /* stays, replayed again at the next start */
    }
    free(data);
    return count;
}

int journal_replay(struct journal *j,
                   int (*cb)(struct spool_msg *msg, struct journal_seg *seg, void *arg),
                   void *arg)
{
    DIR *d = opendir(j->dir);
    if (!d)
        return 0;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;
        if (!seg_name_parse(e->d_name, &seq))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            seqs = xrealloc(seqs, xmul(cap, sizeof *seqs));
        }
        seqs[n++] = seq;
    }
    closedir(d);
    if (n > 0)
        qsort(seqs, n, sizeof *seqs, cmp_u64);
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        struct journal_seg *s = xcalloc(1, sizeof *s);
        s->seq = seqs[i];
        s->sealed = 1;
        pthread_mutex_lock(&j->lock);
        s->next = j->segs;
        j->segs = s;
        if (seqs[i] >= j->next_seq)
            j->next_seq = seqs[i] + 1;
        pthread_mutex_unlock(&j->lock);
        total += replay_segment(j, s, cb, arg);
    }
    free(seqs);
    pthread_mutex_lock(&j->lock);
    j->reap = 1;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    return total;
}
