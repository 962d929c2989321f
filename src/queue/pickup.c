/* pickup: DATA/pickup/ to the queue (see pickup.h).
 *
 * One scan at a time: a scan job (worker) reads up to PICKUP_BATCH files,
 * checks them and builds their spool messages; back on the loop each is
 * handed to queue_submit, and once the queue reports it durable an unlink
 * job (worker) removes the pickup file and fsyncs the directory. A crash
 * between the two submits the file again at the next start (at least once,
 * never lost). While messages of a scan are still in flight no new scan
 * starts (rescan is remembered), so a file is never taken twice.
 *
 * State lives on the loop's thread; jobs hold a reference, so pickup_stop
 * while jobs run only marks it stopped and the last job frees it. */
#include "queue/pickup.h"
#include "queue/pickup_file.h"
#include "queue/queue.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "dkim/dkim_served.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NAME_MAX_LEN 64

struct pickup {
    int refs;
    int stopped;
    char *data_dir, *dir, *corrupt, *hostname;
    size_t max_file;
    uid_t owner;                 /* of DATA */
    struct worker_pool *pool;
    struct loop *loop;
    int ifd;
    struct event *iev, *timer;
    int scanning, rescan, inflight;
};

struct item {
    char name[NAME_MAX_LEN + 1];
    struct spool_msg *msg;
};

struct scan_job {
    struct pickup *p;
    struct item *items;
    int n;
    int more;                    /* the batch was full */
};

struct file_job {                /* one message: submit, then unlink */
    struct pickup *p;
    char name[NAME_MAX_LEN + 1];
    char id[SPOOL_ID_LEN + 1];
};

static struct pickup *the_pickup;

static void request_scan(struct pickup *p);

static void pickup_unref(struct pickup *p)
{
    if (--p->refs > 0)
        return;
    free(p->data_dir);
    free(p->dir);
    free(p->corrupt);
    free(p->hostname);
    free(p);
}

/* ---------------------------------------------------------------- worker side */

static void quarantine(struct pickup *p, int dfd, const char *name, const char *why)
{
    char *to = xasprintf("%s/%s", p->corrupt, name);
    char qn[LOG_QSIZE];
    log_q(qn, sizeof qn, name, strlen(name));
    if (renameat(dfd, name, AT_FDCWD, to) == 0)
        log_warn("pickup", "event=corrupt file=%s reason=\"%s\" moved-to=corrupt/", qn, why);
    else
        log_error("pickup", "event=corrupt file=%s reason=\"%s\" error=\"cannot move: %s\"", qn,
                  why, strerror(errno));
    free(to);
}

static char *read_all(int fd, size_t size)
{
    char *data = xmalloc(size + 1);
    size_t got;
    if (fs_read_full(fd, data, size, &got) < 0 || got != size) {
        free(data);
        return NULL;
    }
    data[size] = '\0';
    return data;
}

static char *owner_login(uid_t uid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res && res->pw_name[0])
        return xstrdup(res->pw_name);
    return xasprintf("uid%u", (unsigned)uid);
}

static void add_rcpt(struct spool_msg *m, const char *addr, const char *account)
{
    m->rcpts = xrealloc(m->rcpts, xmul((size_t)m->nrcpt + 1, sizeof *m->rcpts));
    m->rcpts[m->nrcpt].address = xstrdup(addr);
    m->rcpts[m->nrcpt].account = account ? xstrdup(account) : NULL;
    m->rcpts[m->nrcpt].done = 0;
    m->nrcpt++;
}

/* Resolves the recipients into M. 0 ok, -1 directory error (retry). */
static int resolve_rcpts(struct pickup *p, const struct pickup_env *env, int trusted,
                         const char *qn, struct spool_msg *m)
{
    const char *err = NULL;
    struct directory *d = dir_for_thread(p->data_dir, &err);
    if (!d)
        return -1;
    for (int i = 0; i < env->nrcpt; i++) {
        char account[320];
        char qa[LOG_QSIZE];
        log_q(qa, sizeof qa, env->rcpts[i], strlen(env->rcpts[i]));
        switch (dir_resolve_rcpt(d, env->rcpts[i], account)) {
        case DIR_RCPT_LOCAL:
            add_rcpt(m, env->rcpts[i], account);
            break;
        case DIR_RCPT_NOT_LOCAL:
            if (trusted)
                add_rcpt(m, env->rcpts[i], NULL);
            else
                log_warn("pickup", "event=rcpt-refused file=%s rcpt=%s reason=not-local"
                         " hint=\"only root and the data directory's owner may send outside"
                         " the served domains\"", qn, qa);
            break;
        case DIR_RCPT_NO_SUCH_USER:
            log_warn("pickup", "event=rcpt-refused file=%s rcpt=%s reason=no-such-user", qn, qa);
            break;
        case DIR_RCPT_ERROR:
            return -1;
        }
    }
    return 0;
}

/* The DKIM-Signature field for a trusted user's message BODY (dkim_served.h),
 * or NULL: unsigned. */
static char *sign_local(struct pickup *p, const char *sender, const char *body, size_t len,
                        const char *qid)
{
    const char *err = NULL;
    struct directory *d = dir_for_thread(p->data_dir, &err);
    return d ? dkim_sign_served(d, p->data_dir, sender, body, len, SIZE_MAX, qid) : NULL;
}

/* Reads one pickup file and builds its message; NULL when the file was
 * dealt with (quarantined, dropped) or must wait for a retry. */
static struct spool_msg *take_file(struct pickup *p, int dfd, const char *name)
{
    char qn[LOG_QSIZE];
    log_q(qn, sizeof qn, name, strlen(name));
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            quarantine(p, dfd, name, "a symbolic link");
        else if (errno != ENOENT)
            log_error("pickup", "event=open-failed file=%s error=\"%s\"", qn, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *data = NULL;
    struct spool_msg *m = NULL;
    struct pickup_env env = {0};
    const char *why = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_nlink != 1)
        why = "a hard link";
    else if ((size_t)st.st_size > p->max_file)
        why = "larger than max_message_size";
    else if (!(data = read_all(fd, (size_t)st.st_size)))
        why = "cannot read it";
    else if (pickup_parse(data, (size_t)st.st_size, &env, &why) < 0)
        data = (free(data), NULL);
    close(fd);
    if (!data) {
        quarantine(p, dfd, name, why ? why : "unreadable");
        return NULL;
    }
    uid_t uid = st.st_uid;
    int trusted = uid == 0 || uid == geteuid() || uid == p->owner;
    char *login = owner_login(uid);
    char *own = xasprintf("%s@%s", login, p->hostname);
    const char *sender = trusted && env.sender ? env.sender : own;
    if (!trusted && env.sender && strcasecmp(env.sender, own) != 0) {
        char qs[LOG_QSIZE];
        log_info("pickup", "event=sender-replaced file=%s uid=%u from=%s to=%s", qn,
                 (unsigned)uid, log_q(qs, sizeof qs, env.sender, strlen(env.sender)), own);
    }
    m = xcalloc(1, sizeof *m);
    spool_new_id(m->id);
    m->sender = xstrdup(sender);
    m->client = xstrdup("local");
    m->helo = xstrdup("localhost");
    m->protocol = xstrdup("LOCAL");
    if (resolve_rcpts(p, &env, trusted, qn, m) < 0) {
        log_error("pickup", "event=lookup-failed file=%s retry=yes", qn);
        spool_msg_free(&m);
        goto out;
    }
    if (m->nrcpt == 0) {
        log_warn("pickup", "event=dropped file=%s uid=%u reason=no-deliverable-recipient", qn,
                 (unsigned)uid);
        spool_msg_free(&m);
        if (unlinkat(dfd, name, 0) != 0)
            log_error("pickup", "event=unlink-failed file=%s error=\"%s\"", qn, strerror(errno));
        goto out;
    }
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char *recv = xasprintf("Received: by %s (Roost, from userid %u)\r\n\tid %s;\r\n\t%s\r\n",
                           p->hostname, (unsigned)uid, m->id, date);
    size_t ml;
    char *body = pickup_normalize(data + env.msg_off, (size_t)st.st_size - env.msg_off, &ml);
    /* a trusted user's mail leaves signed like a logged-in sender's (its
     * From: or envelope domain, when served here with a key); an untrusted
     * user's only goes to local mailboxes and says whatever it says */
    char *sig = trusted ? sign_local(p, sender, body, ml, m->id) : NULL;
    size_t sl = sig ? strlen(sig) : 0, rl = strlen(recv);
    m->data = xmalloc(sl + rl + ml + 1);
    if (sl)
        memcpy(m->data, sig, sl);
    memcpy(m->data + sl, recv, rl);
    memcpy(m->data + sl + rl, body, ml);
    m->data[sl + rl + ml] = '\0';
    m->len = sl + rl + ml;
    free(sig);
    free(body);
    free(recv);
    char qs[LOG_QSIZE];
    log_info("pickup", "event=taken file=%s queue=%s uid=%u user=%s trusted=%d from=%s nrcpt=%d"
             " size=%zu", qn, m->id, (unsigned)uid, login, trusted,
             log_q(qs, sizeof qs, sender, strlen(sender)), m->nrcpt, ml);
out:
    pickup_env_free(&env);
    free(data);
    free(login);
    free(own);
    return m;
}

static void scan_work(void *arg)
{
    struct scan_job *j = arg;
    struct pickup *p = j->p;
    DIR *dir = opendir(p->dir);
    if (!dir) {
        log_error("pickup", "event=scan-failed dir=%s error=\"%s\"", p->dir, strerror(errno));
        return;
    }
    j->items = xcalloc(PICKUP_BATCH, sizeof *j->items);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "corrupt") == 0)
            continue;
        if (strlen(de->d_name) > NAME_MAX_LEN) {
            quarantine(p, dirfd(dir), de->d_name, "name too long");
            continue;
        }
        if (j->n >= PICKUP_BATCH) {
            j->more = 1;
            break;
        }
        struct spool_msg *m = take_file(p, dirfd(dir), de->d_name);
        if (m) {
            memcpy(j->items[j->n].name, de->d_name, strlen(de->d_name) + 1);
            j->items[j->n++].msg = m;
        }
    }
    closedir(dir);
}

static void unlink_work(void *arg)
{
    struct file_job *f = arg;
    char *path = xasprintf("%s/%s", f->p->dir, f->name);
    if (unlink(path) != 0 && errno != ENOENT)
        log_error("pickup", "event=unlink-failed file=%s queue=%s error=\"%s\"", f->name, f->id,
                  strerror(errno));
    else if (fs_fsync_dir_path(f->p->dir) != 0)
        log_error("pickup", "event=fsync-failed dir=%s error=\"%s\"", f->p->dir, strerror(errno));
    free(path);
}

/* ---------------------------------------------------------------- loop side */

static void file_finished(struct pickup *p)
{
    p->inflight--;
    if (p->inflight == 0 && p->rescan && !p->stopped) {
        p->rescan = 0;
        request_scan(p);
    }
}

static void unlink_done(void *arg)
{
    struct file_job *f = arg;
    struct pickup *p = f->p;
    file_finished(p);
    free(f);
    pickup_unref(p);
}

static void submitted(void *arg, int result, const char *msg_id, const char *error)
{
    struct file_job *f = arg;
    struct pickup *p = f->p;
    if (result != 0 || p->stopped) {
        if (result != 0)
            log_error("pickup", "event=queue-failed file=%s error=\"%s\" retry=yes", f->name,
                      error ? error : "?");
        file_finished(p);
        free(f);
        pickup_unref(p);
        return;
    }
    worker_submit(p->pool, p->loop, unlink_work, unlink_done, f);
}

static void scan_done(void *arg)
{
    struct scan_job *j = arg;
    struct pickup *p = j->p;
    p->scanning = 0;
    for (int i = 0; i < j->n; i++) {
        if (p->stopped) {
            spool_msg_free(&j->items[i].msg);   /* the file stays: taken at the next start */
            continue;
        }
        struct file_job *f = xcalloc(1, sizeof *f);
        f->p = p;
        p->refs++;
        p->inflight++;
        snprintf(f->name, sizeof f->name, "%s", j->items[i].name);
        snprintf(f->id, sizeof f->id, "%s", j->items[i].msg->id);
        queue_submit(j->items[i].msg, p->loop, submitted, f);
    }
    if (j->more)
        p->rescan = 1;
    if (p->inflight == 0 && p->rescan && !p->stopped) {
        p->rescan = 0;
        request_scan(p);
    }
    free(j->items);
    free(j);
    pickup_unref(p);
}

static void request_scan(struct pickup *p)
{
    if (p->stopped)
        return;
    if (p->scanning || p->inflight > 0) {
        p->rescan = 1;
        return;
    }
    struct scan_job *j = xcalloc(1, sizeof *j);
    j->p = p;
    p->refs++;
    p->scanning = 1;
    worker_submit(p->pool, p->loop, scan_work, scan_done, j);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(fd, buf, sizeof buf) > 0)
        ;
    request_scan(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    request_scan(arg);
}

static int make_dirs(struct pickup *p, const char **error_r)
{
    static char errbuf[512];
    if ((mkdir(p->dir, 01733) != 0 && errno != EEXIST) || chmod(p->dir, 01733) != 0 ||
        (mkdir(p->corrupt, 0700) != 0 && errno != EEXIST)) {
        snprintf(errbuf, sizeof errbuf, "cannot create %s: %s", p->dir, strerror(errno));
        *error_r = errbuf;
        return -1;
    }
    struct stat st;
    if (stat(p->data_dir, &st) != 0) {
        snprintf(errbuf, sizeof errbuf, "cannot stat %s: %s", p->data_dir, strerror(errno));
        *error_r = errbuf;
        return -1;
    }
    p->owner = st.st_uid;
    if (!(st.st_mode & S_IXOTH)) {
        if (chmod(p->data_dir, (st.st_mode & 07777) | S_IXOTH) == 0)
            log_info("pickup", "event=data-dir-searchable dir=%s mode=%04o hint=\"local users"
                     " reach DATA/pickup; nothing in DATA becomes readable\"", p->data_dir,
                     (unsigned)((st.st_mode & 07777) | S_IXOTH));
        else
            log_warn("pickup", "event=chmod-failed dir=%s error=\"%s\"", p->data_dir,
                     strerror(errno));
    }
    return 0;
}

int pickup_start(const char *data_dir, const char *hostname, size_t max_message_size,
                 struct worker_pool *pool, struct loop *loop, const char **error_r)
{
    if (the_pickup) {
        *error_r = "pickup already started";
        return -1;
    }
    struct pickup *p = xcalloc(1, sizeof *p);
    p->refs = 1;
    p->data_dir = xstrdup(data_dir);
    p->dir = xasprintf("%s/pickup", data_dir);
    p->corrupt = xasprintf("%s/pickup/corrupt", data_dir);
    p->hostname = xstrdup(hostname);
    p->max_file = max_message_size + PICKUP_MAX_ENVELOPE + 8192;
    p->pool = pool;
    p->loop = loop;
    p->ifd = -1;
    if (make_dirs(p, error_r) < 0) {
        pickup_unref(p);
        return -1;
    }
    p->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (p->ifd < 0 || inotify_add_watch(p->ifd, p->dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
        /* Without inotify the periodic scan still finds every file. */
        log_warn("pickup", "event=inotify-unavailable error=\"%s\" rescan_seconds=%d",
                 strerror(errno), PICKUP_RESCAN_SECONDS);
        if (p->ifd >= 0)
            close(p->ifd);
        p->ifd = -1;
    } else {
        p->iev = event_new(loop_base(loop), p->ifd, EV_READ | EV_PERSIST, on_inotify, p);
        event_add(p->iev, NULL);
    }
    p->timer = event_new(loop_base(loop), -1, EV_PERSIST, on_timer, p);
    struct timeval tv = {.tv_sec = PICKUP_RESCAN_SECONDS};
    event_add(p->timer, &tv);
    the_pickup = p;
    log_info("pickup", "event=started dir=%s", p->dir);
    request_scan(p);
    return 0;
}

void pickup_stop(void)
{
    struct pickup *p = the_pickup;
    if (!p)
        return;
    the_pickup = NULL;
    p->stopped = 1;
    if (p->iev)
        event_free(p->iev);
    if (p->timer)
        event_free(p->timer);
    if (p->ifd >= 0)
        close(p->ifd);
    p->iev = p->timer = NULL;
    p->ifd = -1;
    pickup_unref(p);
}
