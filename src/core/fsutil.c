/* fsutil: small filesystem helpers shared by the modules that write files
 * durably (see fsutil.h). */
#include "core/fsutil.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
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

int fs_writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        fs_iov_advance(&iov, &n, (size_t)w);
    }
    return 0;
}

int fs_read_regular(int fd, size_t max, char **data_r, size_t *len_r)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        errno = EFBIG;
        return -2;
    }
    size_t size = (size_t)st.st_size;
    char *data = xmalloc(size + 1);
    size_t got;
    if (fs_read_full(fd, data, size, &got) < 0) {
        free(data);
        return -1;
    }
    data[got] = '\0';
    *data_r = data;
    *len_r = got;
    return 0;
}
