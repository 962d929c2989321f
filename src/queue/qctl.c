/* qctl: the control channel between `roost queue` and the running queue
 * (see qctl.h): state records plus inotify wake-ups in DATA/queue/ctl/. */
#include "queue/qctl.h"
#include "queue/rcptstate.h"
#include "queue/spool.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_NAME "server.lock"

struct qctl_watch {
    char *dir;           /* DATA/queue/ctl */
    int lock_fd;
    int ino_fd;
    struct event *ev;
    qctl_fn cb;
    void *arg;
};

static int valid_op(char op)
{
    return op == QCTL_HOLD || op == QCTL_RELEASE || op == QCTL_RETRY || op == QCTL_BOUNCE ||
           op == QCTL_DELETE;
}

static int queue_file_exists(const char *qdir, const char *id)
{
    char *p = xasprintf("%s/%s", qdir, id);
    struct stat st;
    int ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

/* ---- CLI side ---- */

int qctl_request(const char *data_dir, const char *id, char op, const char **error_r)
{
    if (!spool_id_valid(id) || !valid_op(op)) {
        *error_r = "bad queue id";
        return -1;
    }
    char *qdir = xasprintf("%s/queue", data_dir);
    char *cdir = xasprintf("%s/ctl", qdir);
    int rc = -1;
    if (!queue_file_exists(qdir, id)) {
        rc = 1;
        goto out;
    }
    struct rs_record rec = { .type = op, .t_ms = rs_now_ms() };
    if (rs_append(qdir, id, &rec, 1) < 0) {
        *error_r = "cannot write the message's state file";
        goto out;
    }
    if (!queue_file_exists(qdir, id)) {   /* finished while we wrote */
        rs_remove(qdir, id);
        rc = 1;
        goto out;
    }
    if (mkdir(cdir, 0700) < 0 && errno != EEXIST) {
        *error_r = "cannot create the queue's ctl directory";
        goto out;
    }
    static unsigned counter;
    char *req = xasprintf("%s/%s.%c.%ld.%u.%lld", cdir, id, op, (long)getpid(), counter++,
                          (long long)rs_now_ms());
    int fd = open(req, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    free(req);
    if (fd < 0) {
        *error_r = "cannot write the request for the server";
        goto out;
    }
    close(fd);
    rc = 0;
out:
    free(qdir);
    free(cdir);
    return rc;
}

int qctl_server_running(const char *data_dir)
{
    char *path = xasprintf("%s/queue/ctl/" LOCK_NAME, data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return 0;
    int running = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0)
        running = errno == EWOULDBLOCK;
    else
        flock(fd, LOCK_UN);
    close(fd);
    return running;
}

/* ---- server side ---- */

/* "<id>.<op>.<anything>" -> id, op. */
static int parse_name(const char *name, char id[SPOOL_ID_LEN + 1], char *op_r)
{
    if (strlen(name) < SPOOL_ID_LEN + 3 || name[SPOOL_ID_LEN] != '.' ||
        name[SPOOL_ID_LEN + 2] != '.')
        return -1;
    memcpy(id, name, SPOOL_ID_LEN);
    id[SPOOL_ID_LEN] = '\0';
    if (!spool_id_valid(id) || !valid_op(name[SPOOL_ID_LEN + 1]))
        return -1;
    *op_r = name[SPOOL_ID_LEN + 1];
    return 0;
}

void qctl_watch_scan(struct qctl_watch *w)
{
    if (!w)
        return;
    DIR *d = opendir(w->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char id[SPOOL_ID_LEN + 1], op;
        if (e->d_name[0] == '.' || strcmp(e->d_name, LOCK_NAME) == 0)
            continue;
        if (parse_name(e->d_name, id, &op) < 0) {
            unlinkat(dirfd(d), e->d_name, 0);   /* a stray: no use keeping it */
            continue;
        }
        if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno == ENOENT)
            continue;
        w->cb(id, op, w->arg);
    }
    closedir(d);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct qctl_watch *w = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(w->ino_fd, buf, sizeof buf) > 0) {
        /* drained: the directory scan below is the truth */
    }
    qctl_watch_scan(w);
}

struct qctl_watch *qctl_watch_start(const char *data_dir, struct event_base *base, qctl_fn cb,
                                    void *arg, const char **error_r)
{
    struct qctl_watch *w = xcalloc(1, sizeof *w);
    w->dir = xasprintf("%s/queue/ctl", data_dir);
    w->lock_fd = w->ino_fd = -1;
    w->cb = cb;
    w->arg = arg;
    if (mkdir(w->dir, 0700) < 0 && errno != EEXIST) {
        *error_r = "cannot create DATA/queue/ctl";
        goto fail;
    }
    char *lock = xasprintf("%s/" LOCK_NAME, w->dir);
    w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock);
    if (w->lock_fd < 0 || flock(w->lock_fd, LOCK_EX | LOCK_NB) < 0)
        log_warn("queue", "event=ctl-lock-failed hint=\"is another server using this data directory?\"");
    w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ino_fd < 0 ||
        inotify_add_watch(w->ino_fd, w->dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        *error_r = "cannot watch DATA/queue/ctl (inotify)";
        goto fail;
    }
    w->ev = event_new(base, w->ino_fd, EV_READ | EV_PERSIST, on_inotify, w);
    if (!w->ev || event_add(w->ev, NULL) < 0) {
        *error_r = "cannot add the ctl event";
        goto fail;
    }
    return w;
fail:
    qctl_watch_stop(&w);
    return NULL;
}

void qctl_watch_stop(struct qctl_watch **wp)
{
    struct qctl_watch *w = *wp;
    if (!w)
        return;
    if (w->ev)
        event_free(w->ev);
    if (w->ino_fd >= 0)
        close(w->ino_fd);
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    free(w->dir);
    free(w);
    *wp = NULL;
}
