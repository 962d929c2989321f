/* fsutil: small filesystem helpers shared by the modules that write files
 * durably (see fsutil.h). */
#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

int fs_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int fs_read_full(int fd, void *p, size_t n, size_t *got_r)
{
    char *c = p;
    size_t got = 0;
    int rc = 0;
    while (got < n) {
        ssize_t r = read(fd, c + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -1;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    *got_r = got;
    return rc;
}

int fs_fsync_dir_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

void fs_iov_advance(struct iovec **iov, int *n, size_t done)
{
    struct iovec *v = *iov;
    int left = *n;
    while (left > 0 && done >= v->iov_len) {
        done -= v->iov_len;
        v++;
        left--;
    }
    if (left > 0 && done > 0) {
        v->iov_base = (char *)v->iov_base + done;
        v->iov_len -= done;
    }
    *iov = v;
    *n = left;
}
