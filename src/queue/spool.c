/* spool: the durable queue files in DATA/queue/ (format in spool.h).
 *
 * Owns: queue ids, writing a queue file durably (tmp/ + fsync + rename +
 * group-committed directory fsync), strict decoding of queue files, the
 * per-recipient .done marks, moving bad files to corrupt/ and the scan.
 *
 * Group commit: every committer, after its rename, takes a ticket
 * (renamed_gen). One directory fsync at a time runs; it snapshots
 * renamed_gen before it starts, so it covers every rename whose ticket is at
 * or below the snapshot. A committer waits until synced_gen reaches its
 * ticket; whoever finds no fsync running starts the next one. N concurrent
 * committers therefore share a handful of fsyncs instead of N.
 *
 * .done marks are lines "D<index>." appended (with a leading newline, so a
 * torn previous append can never merge with the next one) and fsync'd. Only
 * complete "D<digits>." lines count: a torn write is never misread as a mark
 * for another recipient. A lost mark only causes a retry, which local
 * delivery answers as a duplicate.
 *
 * Thread safety: every function may be called from any worker thread
 * concurrently; the only shared state is the group-commit block and the
 * id generator, each under its own mutex. */
#include "queue/spool.h"
#include "core/buf.h"
#include "core/fsutil.h"
#include "core/le32.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#define SPOOL_MAGIC "ROOSTQ1\n"
#define SPOOL_MAGIC_LEN 8
#define REC_HDR_LEN 5
/* Largest queue file we will read back: well above any message size we
 * accept (limits.h SMTP_DEFAULT_MAX_MESSAGE) plus the envelope. */
#define SPOOL_MAX_FILE (512u * 1024 * 1024)
#define SPOOL_MAX_RCPT 100000
#define SPOOL_MAX_ENVELOPE (64 * 1024)

#define REC_ENVELOPE 'E'
#define REC_RCPT 'R'
#define REC_MESSAGE 'M'
#define REC_END 'Z'

/* Sortable base32: the alphabet is in ASCII order. */
static const char id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

struct spool {
    char *dir;          /* DATA/queue */
    char *tmp_dir;      /* DATA/queue/tmp */
    char *corrupt_dir;  /* DATA/queue/corrupt */
    int dir_fd;
    int readonly;       /* spool_open_readonly: never changes anything */
    pthread_mutex_t gc_lock;
    pthread_cond_t gc_cond;
    uint64_t renamed_gen;   /* tickets handed out after renames */
    uint64_t synced_gen;    /* every ticket <= this is durable */
    uint64_t failed_gen;    /* tickets <= this whose fsync failed */
    int syncing;
    unsigned long dir_fsyncs;
};

struct rec_writer {
    struct buf *out;
    uLong crc;
    int failed;
};

static int make_dir(const char *path);
static void remove_tmp_leftovers(struct spool *s);
static void remove_orphan_done_files(struct spool *s);
static int id_valid(const char *id);
static int group_commit_wait(struct spool *s);
static void rec_write(struct rec_writer *w, const void *p, size_t n);
static void rec_put(struct rec_writer *w, char type, const void *p, size_t n);
static int envelope_value_ok(const char *v);
static int envelope_build(const struct spool_msg *msg, struct buf *env);
static int parse_spool(const char *id, const char *p, size_t n, struct spool_msg **msg_r,
                       const char **why_r);
static int parse_envelope(struct spool_msg *m, const char *p, size_t n);
static int parse_rcpt(struct spool_msg *m, const char *p, size_t n);
static void move_to_corrupt(struct spool *s, const char *id, const char *why);
static void apply_done_marks(struct spool *s, struct spool_msg *m);
static int cmp_ids(const void *a, const void *b);
static int rename_noreplace(const char *from, const char *to);

/* ---- small helpers ---- */

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

static int id_valid(const char *id)
{
    size_t i;
    for (i = 0; id[i]; i++)
        if (i >= SPOOL_ID_LEN || !strchr(id_alphabet, id[i]))
            return 0;
    return i == SPOOL_ID_LEN;
}

int spool_id_valid(const char *id)
{
    return id && id_valid(id);
}

/* ---- ids ---- */

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t id_last_us;
static uint32_t id_counter;

#define ID_TIME_CHARS 11    /* 55 bits of microseconds: beyond year 3000 */
#define ID_COUNTER_CHARS 4  /* 20 bits */
#define ID_RANDOM_CHARS 5   /* 25 bits */

static void put_base32(char *out, int nchars, uint64_t v)
{
    for (int i = nchars - 1; i >= 0; i--) {
        out[i] = id_alphabet[v & 31];
        v >>= 5;
    }
}

static uint32_t random_u32(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, 0) == (ssize_t)sizeof r)
        return r;
    /* No entropy source: time and address bits still make a clash unlikely;
     * the counter keeps ids unique inside this process anyway. */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint32_t)tv.tv_usec * 2654435761u ^ (uint32_t)getpid();
}

void spool_new_id(char id_r[SPOOL_ID_LEN + 1])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t now = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    uint64_t us;
    uint32_t ctr;

    pthread_mutex_lock(&id_lock);
    if (now > id_last_us) {
        id_last_us = now;
        id_counter = 0;
    } else if (++id_counter >= (1u << 20)) {
        id_last_us++;   /* borrow from the future rather than repeat */
        id_counter = 0;
    }
    us = id_last_us;
    ctr = id_counter;
    pthread_mutex_unlock(&id_lock);

    put_base32(id_r, ID_TIME_CHARS, us);
    put_base32(id_r + ID_TIME_CHARS, ID_COUNTER_CHARS, ctr);
    put_base32(id_r + ID_TIME_CHARS + ID_COUNTER_CHARS, ID_RANDOM_CHARS,
               random_u32() & ((1u << 25) - 1));
    id_r[SPOOL_ID_LEN] = '\0';
}

/* ---- open / close ---- */

static void remove_tmp_leftovers(struct spool *s)
{
    DIR *d = opendir(s->tmp_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            log_info("spool", "event=tmp-removed file=%s", e->d_name);
        else
            log_warn("spool", "event=tmp-remove-failed file=%s error=\"%s\"", e->d_name,
                     strerror(errno));
    }
    closedir(d);
}

/* A .done file whose message is gone is what a crash inside spool_remove
 * leaves behind. */
static void remove_orphan_done_files(struct spool *s)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n != SPOOL_ID_LEN + 5 || strcmp(e->d_name + SPOOL_ID_LEN, ".done") != 0)
            continue;
        char id[SPOOL_ID_LEN + 1];
        memcpy(id, e->d_name, SPOOL_ID_LEN);
        id[SPOOL_ID_LEN] = '\0';
        struct stat st;
        if (fstatat(dirfd(d), id, &st, 0) < 0 && errno == ENOENT)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

struct spool *spool_open(const char *data_dir, const char **error_r)
{
    struct spool *s = xcalloc(1, sizeof *s);
    s->dir = xasprintf("%s/queue", data_dir);
    s->tmp_dir = xasprintf("%s/tmp", s->dir);
    s->corrupt_dir = xasprintf("%s/corrupt", s->dir);
    s->dir_fd = -1;
    pthread_mutex_init(&s->gc_lock, NULL);
    pthread_cond_init(&s->gc_cond, NULL);

    if (make_dir(data_dir) < 0 || make_dir(s->dir) < 0 || make_dir(s->tmp_dir) < 0 ||
        make_dir(s->corrupt_dir) < 0) {
        *error_r = "cannot create the queue directories";
        goto fail;
    }
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        *error_r = "cannot open the queue directory";
        goto fail;
    }
    remove_tmp_leftovers(s);
    remove_orphan_done_files(s);
    if (fsync(s->dir_fd) < 0 || fs_fsync_dir_path(data_dir) < 0) {
        *error_r = "cannot fsync the queue directory";
        goto fail;
    }
    return s;
fail:
    spool_close(&s);
    return NULL;
}

struct spool *spool_open_readonly(const char *data_dir, const char **error_r)
{
    struct spool *s = xcalloc(1, sizeof *s);
    s->dir = xasprintf("%s/queue", data_dir);
    s->tmp_dir = xasprintf("%s/tmp", s->dir);
    s->corrupt_dir = xasprintf("%s/corrupt", s->dir);
    s->readonly = 1;
    pthread_mutex_init(&s->gc_lock, NULL);
    pthread_cond_init(&s->gc_cond, NULL);
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        *error_r = errno == ENOENT ? "no queue directory" : "cannot open the queue directory";
        spool_close(&s);
        return NULL;
    }
    return s;
}

void spool_close(struct spool **sp)
{
    struct spool *s = *sp;
    if (!s)
        return;
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    pthread_mutex_destroy(&s->gc_lock);
    pthread_cond_destroy(&s->gc_cond);
    free(s->dir);
    free(s->tmp_dir);
    free(s->corrupt_dir);
    free(s);
    *sp = NULL;
}

const char *spool_dir(struct spool *s)
{
    return s->dir;
}

unsigned long spool_dir_fsyncs(struct spool *s)
{
    pthread_mutex_lock(&s->gc_lock);
    unsigned long n = s->dir_fsyncs;
    pthread_mutex_unlock(&s->gc_lock);
    return n;
}

/* ---- commit ---- */

static void rec_write(struct rec_writer *w, const void *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    if (buf_append(w->out, p, n) < 0) {
        w->failed = 1;
        return;
    }
    /* crc32 takes a uInt length: feed large buffers in pieces. */
    const unsigned char *c = p;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        w->crc = crc32(w->crc, c, chunk);
        c += chunk;
        n -= chunk;
    }
}

static void rec_put(struct rec_writer *w, char type, const void *p, size_t n)
{
    unsigned char hdr[REC_HDR_LEN];
    if (n > UINT32_MAX) {
        w->failed = 1;
        errno = EFBIG;
        return;
    }
    hdr[0] = (unsigned char)type;
    le32_put(hdr + 1, (uint32_t)n);
    rec_write(w, hdr, sizeof hdr);
    rec_write(w, p, n);
}

static int envelope_value_ok(const char *v)
{
    return !v || !strpbrk(v, "\r\n");
}

static int envelope_build(const struct spool_msg *msg, struct buf *env)
{
    const char *vals[] = { msg->sender, msg->client, msg->helo, msg->auth_account,
                           msg->protocol };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        if (!envelope_value_ok(vals[i]))
            return -1;
    if (buf_appendf(env, "id=%s\nsender=%s\narrived=%lld\n", msg->id,
                    msg->sender ? msg->sender : "", (long long)msg->arrived) < 0)
        return -1;
    if (msg->client && buf_appendf(env, "client=%s\n", msg->client) < 0)
        return -1;
    if (msg->helo && buf_appendf(env, "helo=%s\n", msg->helo) < 0)
        return -1;
    if (msg->auth_account && buf_appendf(env, "auth=%s\n", msg->auth_account) < 0)
        return -1;
    if (msg->protocol && buf_appendf(env, "protocol=%s\n", msg->protocol) < 0)
        return -1;
    return 0;
}

static int rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* File systems without RENAME_NOREPLACE: link refuses to replace too. */
    if (link(from, to) < 0)
        return -1;
    unlink(from);
    return 0;
}

/* Waits until a directory fsync that started after our rename finished. */
static int group_commit_wait(struct spool *s)
{
    int rc = 0;
    pthread_mutex_lock(&s->gc_lock);
    uint64_t ticket = ++s->renamed_gen;
    for (;;) {
        if (s->synced_gen >= ticket)
            break;
        if (s->failed_gen >= ticket) {
            rc = -1;
            break;
        }
        if (s->syncing) {
            pthread_cond_wait(&s->gc_cond, &s->gc_lock);
            continue;
        }
        s->syncing = 1;
        uint64_t covers = s->renamed_gen;
        pthread_mutex_unlock(&s->gc_lock);
        int frc = fsync(s->dir_fd);
        pthread_mutex_lock(&s->gc_lock);
        s->dir_fsyncs++;
        s->syncing = 0;
        if (frc == 0)
            s->synced_gen = covers;
        else
            s->failed_gen = covers;
        pthread_cond_broadcast(&s->gc_cond);
    }
    pthread_mutex_unlock(&s->gc_lock);
    return rc;
}

/* The bytes of a queue file for MSG (format in spool.h): magic, E, R*, M
 * and Z with the CRC of everything before it. */
int spool_encode(const struct spool_msg *msg, struct buf *out, const char **error_r)
{
    if (!id_valid(msg->id)) {
        *error_r = "bad queue id";
        return -1;
    }
    if (msg->nrcpt < 0 || msg->nrcpt > SPOOL_MAX_RCPT || (msg->nrcpt > 0 && !msg->rcpts)) {
        *error_r = "bad recipient count";
        return -1;
    }
    if (msg->len > SPOOL_MAX_FILE / 2) {
        *error_r = "message too large for the queue";
        return -1;
    }
    struct buf env;
    buf_init(&env, SPOOL_MAX_ENVELOPE);
    int bad = envelope_build(msg, &env) < 0;
    struct rec_writer w = { .out = out, .crc = crc32(0L, Z_NULL, 0), .failed = bad };
    rec_write(&w, SPOOL_MAGIC, SPOOL_MAGIC_LEN);
    rec_put(&w, REC_ENVELOPE, env.data, env.len);
    buf_deinit(&env);
    for (int i = 0; i < msg->nrcpt && !w.failed; i++) {
        const struct spool_rcpt *r = &msg->rcpts[i];
        const char *acct = r->account ? r->account : "";
        size_t alen = strlen(r->address), clen = strlen(acct);
        char *rec = xmalloc(alen + 1 + clen);
        memcpy(rec, r->address, alen);
        rec[alen] = '\0';
        memcpy(rec + alen + 1, acct, clen);
        rec_put(&w, REC_RCPT, rec, alen + 1 + clen);
        free(rec);
    }
    rec_put(&w, REC_MESSAGE, msg->data, msg->len);
    unsigned char crcbuf[4];
    le32_put(crcbuf, (uint32_t)w.crc);
    rec_put(&w, REC_END, crcbuf, sizeof crcbuf);
    if (w.failed) {
        *error_r = bad ? "bad envelope value" : "queue file too large";
        return -1;
    }
    return 0;
}

int spool_decode(const char *id, const char *p, size_t n, struct spool_msg **msg_r,
                 const char **why_r)
{
    if (!id_valid(id)) {
        *why_r = "bad-id";
        return -1;
    }
    return parse_spool(id, p, n, msg_r, why_r);
}

int spool_commit(struct spool *s, const struct spool_msg *msg, const char **error_r)
{
    if (s->readonly) {
        *error_r = "queue opened read-only";
        return -1;
    }
    struct buf enc;
    buf_init(&enc, SPOOL_MAX_FILE);
    if (spool_encode(msg, &enc, error_r) < 0) {
        buf_deinit(&enc);
        return -1;
    }
    char *tmp = xasprintf("%s/%s", s->tmp_dir, msg->id);
    char *final = xasprintf("%s/%s", s->dir, msg->id);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error_r = "cannot create the queue file";
        goto out;
    }
    if (fs_write_all(fd, enc.data, enc.len) < 0) {
        *error_r = "cannot write the queue file";
        goto out_unlink;
    }
    if (fsync(fd) < 0) {
        *error_r = "cannot fsync the queue file";
        goto out_unlink;
    }
    if (close(fd) < 0) {
        fd = -1;
        *error_r = "cannot close the queue file";
        goto out_unlink;
    }
    fd = -1;
    if (rename_noreplace(tmp, final) < 0) {
        *error_r = errno == EEXIST ? SPOOL_ERR_EXISTS : "cannot rename the queue file";
        goto out_unlink;
    }
    if (group_commit_wait(s) < 0) {
        /* Not acknowledged: take it back so it is not delivered behind the
         * client's back (the client will retry). */
        *error_r = "cannot fsync the queue directory";
        unlink(final);
        goto out;
    }
    rc = 0;
    goto out;
out_unlink:
    unlink(tmp);
out:
    if (fd >= 0)
        close(fd);
    free(tmp);
    free(final);
    buf_deinit(&enc);
    return rc;
}

/* ---- load ---- */

static int parse_envelope(struct spool_msg *m, const char *p, size_t n)
{
    if (memchr(p, '\0', n))
        return -1;
    char *copy = xstrndup(p, n);
    char *save = NULL;
    int have_id = 0, have_arrived = 0, have_sender = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            goto bad;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        char **slot = NULL;
        if (strcmp(k, "id") == 0) {
            if (strcmp(v, m->id) != 0)
                goto bad;
            have_id = 1;
        } else if (strcmp(k, "arrived") == 0) {
            char *end;
            errno = 0;
            long long t = strtoll(v, &end, 10);
            if (errno || end == v || *end)
                goto bad;
            m->arrived = (time_t)t;
            have_arrived = 1;
        } else if (strcmp(k, "sender") == 0) {
            slot = &m->sender;
            have_sender = 1;
        } else if (strcmp(k, "client") == 0) {
            slot = &m->client;
        } else if (strcmp(k, "helo") == 0) {
            slot = &m->helo;
        } else if (strcmp(k, "auth") == 0) {
            slot = &m->auth_account;
        } else if (strcmp(k, "protocol") == 0) {
            slot = &m->protocol;
        }   /* unknown keys: written by a newer version, ignored */
        if (slot) {
            if (*slot)
                goto bad;   /* repeated key */
            *slot = xstrdup(v);
        }
    }
    free(copy);
    return have_id && have_arrived && have_sender ? 0 : -1;
bad:
    free(copy);
    return -1;
}

static int parse_rcpt(struct spool_msg *m, const char *p, size_t n)
{
    const char *nul = memchr(p, '\0', n);
    if (!nul || nul == p)
        return -1;
    size_t alen = (size_t)(nul - p), clen = n - alen - 1;
    if (memchr(nul + 1, '\0', clen))
        return -1;
    if (m->nrcpt >= SPOOL_MAX_RCPT)
        return -1;
    m->rcpts = xrealloc(m->rcpts, xmul((size_t)m->nrcpt + 1, sizeof *m->rcpts));
    struct spool_rcpt *r = &m->rcpts[m->nrcpt++];
    r->address = xstrndup(p, alen);
    r->account = clen ? xstrndup(nul + 1, clen) : NULL;
    r->done = 0;
    return 0;
}

/* Decodes a whole queue file: E, R*, M, Z in that order, nothing after Z. */
static int parse_spool(const char *id, const char *p, size_t n, struct spool_msg **msg_r,
                       const char **why_r)
{
    if (n < SPOOL_MAGIC_LEN || memcmp(p, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != 0) {
        *why_r = "bad-magic";
        return -1;
    }
    struct spool_msg *m = xcalloc(1, sizeof *m);
    memcpy(m->id, id, SPOOL_ID_LEN + 1);
    size_t off = SPOOL_MAGIC_LEN;
    int have_env = 0, have_msg = 0;
    for (;;) {
        if (n - off < REC_HDR_LEN) {
            *why_r = off == n ? "no-end-record" : "truncated-header";
            goto bad;
        }
        char type = p[off];
        uint32_t len = le32_get((const unsigned char *)p + off + 1);
        size_t body = off + REC_HDR_LEN;
        if (len > n - body) {
            *why_r = "length-past-end";
            goto bad;
        }
        const char *rp = p + body;
        if (type == REC_END) {
            if (!have_env || !have_msg || len != 4) {
                *why_r = "early-end-record";
                goto bad;
            }
            uLong crc = crc32(0L, Z_NULL, 0);
            crc = crc32(crc, (const Bytef *)p, (uInt)off);
            if ((uint32_t)crc != le32_get((const unsigned char *)rp)) {
                *why_r = "bad-crc";
                goto bad;
            }
            if (body + len != n) {
                *why_r = "trailing-data";
                goto bad;
            }
            break;
        }
        if (type == REC_ENVELOPE && !have_env && len <= SPOOL_MAX_ENVELOPE) {
            if (parse_envelope(m, rp, len) < 0) {
                *why_r = "bad-envelope";
                goto bad;
            }
            have_env = 1;
        } else if (type == REC_RCPT && have_env && !have_msg) {
            if (parse_rcpt(m, rp, len) < 0) {
                *why_r = "bad-recipient";
                goto bad;
            }
        } else if (type == REC_MESSAGE && have_env && !have_msg) {
            m->data = xmalloc((size_t)len + 1);
            memcpy(m->data, rp, len);
            m->data[len] = '\0';
            m->len = len;
            have_msg = 1;
        } else {
            *why_r = "unexpected-record";
            goto bad;
        }
        off = body + len;
    }
    *msg_r = m;
    return 0;
bad:
    spool_msg_free(&m);
    return -1;
}

static void move_to_corrupt(struct spool *s, const char *id, const char *why)
{
    if (s->readonly) {
        log_warn("spool", "event=corrupt queue=%s reason=%s moved=no", id, why);
        return;
    }
    char *from = xasprintf("%s/%s", s->dir, id);
    char *to = xasprintf("%s/%s", s->corrupt_dir, id);
    char *dfrom = xasprintf("%s/%s.done", s->dir, id);
    char *dto = xasprintf("%s/%s.done", s->corrupt_dir, id);
    if (rename(from, to) < 0)
        log_error("spool", "event=corrupt-move-failed queue=%s error=\"%s\"", id,
                  strerror(errno));
    else
        log_error("spool", "event=corrupt queue=%s reason=%s moved=corrupt/%s", id, why, id);
    if (rename(dfrom, dto) < 0 && errno != ENOENT)
        log_warn("spool", "event=corrupt-move-failed file=%s.done error=\"%s\"", id,
                 strerror(errno));
    if (fs_fsync_dir_path(s->corrupt_dir) < 0 || fsync(s->dir_fd) < 0)
        log_warn("spool", "event=fsync-failed dir=corrupt error=\"%s\"", strerror(errno));
    free(from);
    free(to);
    free(dfrom);
    free(dto);
}

static void apply_done_marks(struct spool *s, struct spool_msg *m)
{
    char *path = xasprintf("%s/%s.done", s->dir, m->id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return;
    char *data;
    size_t len;
    int rc = fs_read_regular(fd, 16u * 1024 * 1024, &data, &len);
    close(fd);
    if (rc < 0)
        return;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t ll = strlen(line);
        if (ll < 3 || ll > 12 || line[0] != 'D' || line[ll - 1] != '.')
            continue;
        long idx = 0;
        int ok = 1;
        for (size_t i = 1; i < ll - 1; i++) {
            if (line[i] < '0' || line[i] > '9') {
                ok = 0;
                break;
            }
            idx = idx * 10 + (line[i] - '0');
        }
        if (ok && idx < m->nrcpt)
            m->rcpts[idx].done = 1;
    }
    free(data);
}

int spool_load(struct spool *s, const char *id, struct spool_msg **msg_r)
{
    *msg_r = NULL;
    if (!id_valid(id))
        return 1;
    char *path = xasprintf("%s/%s", s->dir, id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        log_error("spool", "event=load-failed queue=%s error=\"%s\"", id, strerror(errno));
        return -1;
    }
    char *data;
    size_t len;
    int rc = fs_read_regular(fd, SPOOL_MAX_FILE, &data, &len);
    close(fd);
    if (rc == -2) {
        move_to_corrupt(s, id, "too-large");
        return -1;
    }
    if (rc < 0) {
        log_error("spool", "event=load-failed queue=%s error=\"%s\"", id, strerror(errno));
        return -1;
    }
    const char *why = "unknown";
    struct spool_msg *m = NULL;
    rc = parse_spool(id, data, len, &m, &why);
    free(data);
    if (rc < 0) {
        move_to_corrupt(s, id, why);
        return -1;
    }
    apply_done_marks(s, m);
    *msg_r = m;
    return 0;
}

void spool_msg_free(struct spool_msg **mp)
{
    struct spool_msg *m = *mp;
    if (!m)
        return;
    free(m->sender);
    free(m->client);
    free(m->helo);
    free(m->auth_account);
    free(m->protocol);
    for (int i = 0; i < m->nrcpt; i++) {
        free(m->rcpts[i].address);
        free(m->rcpts[i].account);
    }
    free(m->rcpts);
    free(m->data);
    free(m);
    *mp = NULL;
}

/* ---- progress and removal ---- */

int spool_mark_done(struct spool *s, const char *id, int idx)
{
    if (s->readonly || !id_valid(id) || idx < 0)
        return -1;
    char *path = xasprintf("%s/%s.done", s->dir, id);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0)
        return -1;
    struct stat st;
    int created = fstat(fd, &st) == 0 && st.st_size == 0;
    char line[32];
    int n = snprintf(line, sizeof line, "\nD%d.\n", idx);
    int rc = 0;
    if (n < 0 || (size_t)n >= sizeof line || fs_write_all(fd, line, (size_t)n) < 0 || fsync(fd) < 0)
        rc = -1;
    if (close(fd) < 0)
        rc = -1;
    /* A new .done file needs its directory entry on disk too. */
    if (rc == 0 && created && fsync(s->dir_fd) < 0)
        rc = -1;
    return rc;
}

int spool_remove(struct spool *s, const char *id)
{
    if (s->readonly || !id_valid(id))
        return -1;
    char *path = xasprintf("%s/%s", s->dir, id);
    char *done = xasprintf("%s/%s.done", s->dir, id);
    int rc = 0;
    /* The message first: a crash in between leaves only an orphan .done,
     * which spool_open removes. */
    if (unlink(path) < 0 && errno != ENOENT)
        rc = -1;
    if (rc == 0 && unlink(done) < 0 && errno != ENOENT)
        rc = -1;
    if (rc == 0 && fsync(s->dir_fd) < 0)
        rc = -1;
    free(path);
    free(done);
    return rc;
}

/* ---- scan ---- */

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int spool_scan(struct spool *s, void (*cb)(const char *id, void *arg), void *arg)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return -1;
    char **ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!id_valid(e->d_name))
            continue;   /* ".", "..", tmp, corrupt, *.done, strays */
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = xrealloc(ids, xmul(cap, sizeof *ids));
        }
        ids[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(ids, n, sizeof *ids, cmp_ids);
    for (size_t i = 0; i < n; i++) {
        cb(ids[i], arg);
        free(ids[i]);
    }
    free(ids);
    return 0;
}
