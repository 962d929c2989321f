/* rcptstate: the per-recipient state log DATA/queue/<id>.state (format in
 * rcptstate.h): encoding and replaying records, appending them durably,
 * removing the file with its message. Functions that touch files block
 * (worker threads or the CLI); the rest are pure. */
#include "queue/rcptstate.h"
#include "core/buf.h"
#include "core/fsutil.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#define RS_MAX_LINE (64 * 1024)
#define RS_MAX_VALUE 4096
#define STATE_SUFFIX ".state"

static void attempt_clear(struct rs_attempt *a);
static void attempt_copy(struct rs_attempt *dst, const struct rs_attempt *src);
static int put_value(struct buf *b, const char *key, const char *v);
static char *decode_value(const char *v, size_t n);
static int parse_line(const char *line, size_t n, struct rs_record *rec, char **host_r,
                      char **reply_r, char **enh_r);

int64_t rs_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

const char *rs_state_name(enum rs_state st)
{
    switch (st) {
    case RS_PENDING: return "pending";
    case RS_DELIVERED: return "delivered";
    case RS_FAILED: return "failed";
    }
    return "?";
}

/* ---- the state in memory ---- */

struct rs_msg *rs_new(int nrcpt)
{
    struct rs_msg *s = xcalloc(1, sizeof *s);
    s->nrcpt = nrcpt;
    s->r = xcalloc(nrcpt > 0 ? (size_t)nrcpt : 1, sizeof *s->r);
    return s;
}

static void attempt_clear(struct rs_attempt *a)
{
    free(a->host);
    free(a->reply);
    memset(a, 0, sizeof *a);
}

static void attempt_copy(struct rs_attempt *dst, const struct rs_attempt *src)
{
    attempt_clear(dst);
    *dst = *src;
    dst->host = src->host ? xstrdup(src->host) : NULL;
    dst->reply = src->reply ? xstrdup(src->reply) : NULL;
}

void rs_free(struct rs_msg **sp)
{
    struct rs_msg *s = *sp;
    if (!s)
        return;
    for (int i = 0; i < s->nrcpt; i++) {
        attempt_clear(&s->r[i].last);
        for (int h = 0; h < s->r[i].nhist; h++)
            attempt_clear(&s->r[i].hist[h]);
    }
    free(s->r);
    free(s);
    *sp = NULL;
}

void rs_apply(struct rs_msg *s, const struct rs_record *rec)
{
    switch (rec->type) {
    case 'A': {
        if (rec->idx < 0 || rec->idx >= s->nrcpt)
            return;
        struct rs_rcpt *r = &s->r[rec->idx];
        struct rs_attempt a = { .t_ms = rec->t_ms, .outcome = rec->outcome, .code = rec->code,
                                .host = (char *)rec->host, .reply = (char *)rec->reply };
        snprintf(a.enhanced, sizeof a.enhanced, "%s", rec->enhanced ? rec->enhanced : "");
        r->attempts++;
        attempt_copy(&r->last, &a);
        if (r->nhist == RS_MAX_HISTORY) {
            attempt_clear(&r->hist[0]);
            memmove(&r->hist[0], &r->hist[1], sizeof r->hist[0] * (RS_MAX_HISTORY - 1));
            memset(&r->hist[RS_MAX_HISTORY - 1], 0, sizeof r->hist[0]);
            r->nhist--;
        }
        attempt_copy(&r->hist[r->nhist++], &a);
        if (rec->outcome == 'd') {
            r->state = RS_DELIVERED;
        } else if (rec->outcome == 'f') {
            r->state = RS_FAILED;
            r->gave_up = rec->gave_up;
        } else {
            r->next_ms = rec->next_ms;
        }
        break;
    }
    case 'W':
        s->warned = 1;
        break;
    case 'H':
        s->held = 1;
        s->held_ms = rec->t_ms;
        break;
    case 'U':
    case 'Y':
        if (rec->type == 'U')
            s->held = 0;
        for (int i = 0; i < s->nrcpt; i++)
            if (s->r[i].state == RS_PENDING && s->r[i].next_ms > rec->t_ms)
                s->r[i].next_ms = rec->t_ms;
        break;
    case 'B':
        s->bounce_req = 1;
        break;
    case 'X':
        s->delete_req = 1;
        break;
    default:
        break;
    }
}

/* ---- encoding ---- */

static int put_value(struct buf *b, const char *key, const char *v)
{
    if (buf_appendf(b, " %s=", key) < 0)
        return -1;
    size_t n = strlen(v);
    if (n > RS_MAX_VALUE)
        n = RS_MAX_VALUE;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        int rc = c > ' ' && c < 0x7f && c != '%' && c != '='
                     ? buf_append(b, &v[i], 1)
                     : buf_appendf(b, "%%%02X", c);
        if (rc < 0)
            return -1;
    }
    return 0;
}

char *rs_encode(const struct rs_record *rec, size_t *len_r)
{
    struct buf b;
    buf_init(&b, RS_MAX_LINE);
    int rc = buf_appendf(&b, "\n%c t=%lld", rec->type, (long long)rec->t_ms);
    if (rc == 0 && rec->type == 'A') {
        rc = buf_appendf(&b, " i=%d o=%c c=%d n=%lld", rec->idx, rec->outcome, rec->code,
                         (long long)rec->next_ms);
        if (rc == 0 && rec->gave_up)
            rc = buf_appendf(&b, " g=1");
        if (rc == 0 && rec->enhanced && rec->enhanced[0])
            rc = put_value(&b, "e", rec->enhanced);
        if (rc == 0 && rec->host)
            rc = put_value(&b, "h", rec->host);
        if (rc == 0 && rec->reply)
            rc = put_value(&b, "m", rec->reply);
    }
    if (rc == 0) {
        uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)b.data + 1, (uInt)(b.len - 1));
        rc = buf_appendf(&b, " z=%08lx\n", (unsigned long)crc);
    }
    if (rc < 0) {
        buf_deinit(&b);
        return NULL;
    }
    return buf_steal(&b, len_r);
}

/* ---- decoding ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static char *decode_value(const char *v, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '%') {
            int h, l;
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            h = hexval(v[i + 1]);
            l = hexval(v[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            out[o++] = v[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int parse_int64(const char *v, size_t n, int64_t *out)
{
    if (n == 0 || n > 19)
        return -1;
    int64_t x = 0;
    size_t i = 0;
    int neg = 0;
    if (v[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1)
            return -1;
    }
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    *out = neg ? -x : x;
    return 0;
}

/* One line without its newline: "T k=v ... z=crc". 0 ok, -1 bad (ignored). */
static int parse_line(const char *line, size_t n, struct rs_record *rec, char **host_r,
                      char **reply_r, char **enh_r)
{
    memset(rec, 0, sizeof *rec);
    rec->idx = -1;
    if (n < 3 + 11 || line[1] != ' ')
        return -1;
    const char *z = line + n - 11;   /* " z=XXXXXXXX" */
    if (memcmp(z, " z=", 3) != 0)
        return -1;
    int64_t want;
    char hex[9];
    memcpy(hex, z + 3, 8);
    hex[8] = '\0';
    char *end;
    want = (int64_t)strtoul(hex, &end, 16);
    if (*end)
        return -1;
    uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)line, (uInt)(z - line));
    if ((int64_t)crc != want)
        return -1;
    rec->type = line[0];
    const char *p = line + 2, *stop = z;
    int have_t = 0;
    while (p < stop) {
        const char *sp = memchr(p, ' ', (size_t)(stop - p));
        const char *tokend = sp ? sp : stop;
        const char *eq = memchr(p, '=', (size_t)(tokend - p));
        if (!eq || eq == p)
            return -1;
        size_t klen = (size_t)(eq - p);
        const char *v = eq + 1;
        size_t vlen = (size_t)(tokend - v);
        int64_t num = 0;
        if (klen == 1 && strchr("ticn", p[0])) {
            if (parse_int64(v, vlen, &num) < 0)
                return -1;
            if (p[0] == 't') { rec->t_ms = num; have_t = 1; }
            else if (p[0] == 'i') rec->idx = num < 0 || num > 1000000 ? -1 : (int)num;
            else if (p[0] == 'c') rec->code = num < 0 || num > 999 ? 0 : (int)num;
            else rec->next_ms = num;
        } else if (klen == 1 && p[0] == 'o') {
            if (vlen != 1 || !strchr("drf", v[0]))
                return -1;
            rec->outcome = v[0];
        } else if (klen == 1 && p[0] == 'g') {
            rec->gave_up = vlen == 1 && v[0] == '1';
        } else if (klen == 1 && strchr("ehm", p[0])) {
            char **slot = p[0] == 'e' ? enh_r : p[0] == 'h' ? host_r : reply_r;
            if (*slot)
                return -1;
            *slot = decode_value(v, vlen);
            if (!*slot)
                return -1;
        }   /* unknown keys: a newer version's, ignored */
        p = sp ? sp + 1 : stop;
    }
    if (!have_t)
        return -1;
    if (rec->type == 'A' && (rec->idx < 0 || !rec->outcome))
        return -1;
    rec->host = *host_r;
    rec->reply = *reply_r;
    rec->enhanced = *enh_r;
    return 0;
}

void rs_replay(struct rs_msg *s, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (data + off)) : len - off;
        const char *line = data + off;
        off += n + 1;
        if (n == 0)
            continue;
        if (!nl || n > RS_MAX_LINE) {   /* a last line without its newline is torn */
            s->torn++;
            continue;
        }
        struct rs_record rec;
        char *host = NULL, *reply = NULL, *enh = NULL;
        if (parse_line(line, n, &rec, &host, &reply, &enh) == 0)
            rs_apply(s, &rec);
        else
            s->torn++;
        free(host);
        free(reply);
        free(enh);
    }
}

/* ---- files ---- */

static char *state_path(const char *qdir, const char *id)
{
    return xasprintf("%s/%s" STATE_SUFFIX, qdir, id);
}

int rs_load(const char *qdir, const char *id, int nrcpt, struct rs_msg **s_r)
{
    struct rs_msg *s = rs_new(nrcpt);
    *s_r = s;
    char *path = state_path(qdir, id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    uint64_t max = RS_MAX_FILE + (uint64_t)(nrcpt > 0 ? nrcpt : 0) * RS_MAX_FILE_PER_RCPT;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > max) {
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size, got;
    char *data = xmalloc(size + 1);
    (void)fs_read_full(fd, data, size, &got); /* replays what was read, as far as it goes */
    close(fd);
    rs_replay(s, data, got);
    free(data);
    return 0;
}

int rs_append(const char *qdir, const char *id, const struct rs_record *recs, int n)
{
    if (n <= 0)
        return 0;
    struct buf all;
    buf_init(&all, RS_MAX_FILE);
    for (int i = 0; i < n; i++) {
        size_t len;
        char *line = rs_encode(&recs[i], &len);
        if (!line || buf_append(&all, line, len) < 0) {
            free(line);
            buf_deinit(&all);
            errno = EFBIG;
            return -1;
        }
        free(line);
    }
    char *path = state_path(qdir, id);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    int rc = -1;
    if (fd >= 0) {
        struct stat st;
        int created = fstat(fd, &st) == 0 && st.st_size == 0;
        rc = fs_write_all(fd, all.data, all.len) == 0 && fsync(fd) == 0 ? 0 : -1;
        if (close(fd) < 0)
            rc = -1;
        if (rc == 0 && created && fs_fsync_dir_path(qdir) < 0)
            rc = -1;
    }
    buf_deinit(&all);
    return rc;
}

void rs_remove(const char *qdir, const char *id)
{
    char *path = state_path(qdir, id);
    unlink(path);
    free(path);
}

void rs_remove_orphans(const char *qdir)
{
    DIR *d = opendir(qdir);
    if (!d)
        return;
    struct dirent *e;
    size_t sl = strlen(STATE_SUFFIX);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= sl || n - sl > 64 || strcmp(e->d_name + n - sl, STATE_SUFFIX) != 0)
            continue;
        char id[65];
        memcpy(id, e->d_name, n - sl);
        id[n - sl] = '\0';
        struct stat st;
        if (fstatat(dirfd(d), id, &st, 0) < 0 && errno == ENOENT)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}
