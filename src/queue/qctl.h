/* qctl: how `roost queue hold|release|retry|bounce|delete` (a separate
 * process) reaches the queue of a running server, and how a stopped server
 * learns of it at its next start.
 *
 * The CLI appends the request as a record to the message's state file
 * (DATA/queue/<id>.state, rcptstate.h; fsync'd), which is the truth: the
 * queue replays it whenever it loads the message, at the latest at the next
 * start. Then it drops an empty wake-up file DATA/queue/ctl/<id>.<op>.<uniq>.
 * The server watches DATA/queue/ctl/ with inotify on the queue's loop, removes
 * each wake-up file and has the queue reread that message at once (or right
 * after the attempt in progress). The server holds an exclusive flock on
 * DATA/queue/ctl/server.lock while it runs, so the CLI can tell whether a
 * server will act now or at its next start. */
#ifndef ROOST_QCTL_H
#define ROOST_QCTL_H

struct event_base;

enum qctl_op {
    QCTL_HOLD = 'H',
    QCTL_RELEASE = 'U',
    QCTL_RETRY = 'Y',
    QCTL_BOUNCE = 'B',
    QCTL_DELETE = 'X',
};

/* CLI side. Records OP for message ID: 0 done, 1 no such message in the
 * queue, -1 failed (ERROR_R). */
int qctl_request(const char *data_dir, const char *id, char op, const char **error_r);
/* 1 when a server holds the queue's lock (it runs), else 0. */
int qctl_server_running(const char *data_dir);

/* Server side: CB(id, op, arg) on BASE's thread for every wake-up file. */
typedef void (*qctl_fn)(const char *id, char op, void *arg);
struct qctl_watch;
struct qctl_watch *qctl_watch_start(const char *data_dir, struct event_base *base, qctl_fn cb,
                                    void *arg, const char **error_r);
/* Handles the wake-up files already there (left while no server ran). */
void qctl_watch_scan(struct qctl_watch *w);
void qctl_watch_stop(struct qctl_watch **wp);

#endif
