/* serve_lock: one `roost serve` per data directory (serve_lock.h).
 *
 * Two servers on one data directory would both append to the queue
 * journal, replay each other's segments and write the same mailbox
 * indexes. Until now only the listening ports kept a second one out, and
 * only when it was configured with the same ports. The server holds an
 * exclusive flock(2) on DATA/serve.lock for its whole life (the kernel
 * lets it go when the process ends, however it ends) and writes its pid
 * into the file, so the refusal can name the running one. */
#include "cli/serve_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static char lock_err[4096 + 256];

/* The pid the holder wrote, or "?" */
static void holder_pid(int fd, char *out, size_t outsz)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    size_t len = n > 0 ? strspn(buf, "0123456789") : 0;
    snprintf(out, outsz, "%.*s", len > 0 ? (int)len : 1, len > 0 ? buf : "?");
}

int serve_lock_data_dir(const char *data_dir, const char **error_r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/serve.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        snprintf(lock_err, sizeof lock_err, "cannot open %s: %s", path, strerror(errno));
        *error_r = lock_err;
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32];
        holder_pid(fd, pid, sizeof pid);
        if (e == EWOULDBLOCK)
            snprintf(lock_err, sizeof lock_err,
                     "another roost serve (pid %s) is running on the data directory %s;"
                     " stop it first, or give this one a data directory of its own", pid,
                     data_dir);
        else
            snprintf(lock_err, sizeof lock_err, "cannot lock %s: %s", path, strerror(e));
        close(fd);
        *error_r = lock_err;
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* the lock holds without the pid; only the refusal text lacks it */
    }
    return 0;   /* fd stays open: the lock lasts as long as the process */
}
