/* http_health: the /healthz checks (see http_health.h). A directory is
 * "writable" if an unnamed O_TMPFILE can be made in it (nothing is left
 * behind); file systems without O_TMPFILE fall back to access(W_OK). */
#include "http/http_health.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/buf.h"
#include "queue/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static int dir_writable(const char *data_dir, const char *sub)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", data_dir, sub) >= sizeof path)
        return 0;
    int fd = open(path, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return 1;
    }
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
        return access(path, W_OK) == 0;
    return 0;
}

int http_health_check(const char *data_dir, struct buf *out)
{
    int queue_ok = queue_running();
    int spool_ok = dir_writable(data_dir, "queue");
    int mail_ok = dir_writable(data_dir, "mail");
    const char *err = NULL;
    struct directory *d = dir_for_thread(data_dir, &err);
    int dir_ok = d && dir_domain_exists(d, "healthz.invalid") >= 0;
    int ok = queue_ok && spool_ok && mail_ok && dir_ok;
    if (buf_appendf(out, "{\"status\":\"%s\",\"queue\":\"%s\",\"queued\":%d,\"spool\":\"%s\","
                         "\"store\":\"%s\",\"directory\":\"%s\"}\n",
                    ok ? "ok" : "fail", queue_ok ? "running" : "stopped", queue_inflight(),
                    spool_ok ? "writable" : "not writable", mail_ok ? "writable" : "not writable",
                    dir_ok ? "ok" : "failed") < 0)
        return 0;
    return ok;
}
