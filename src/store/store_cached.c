/* store_cached: store_read_cached (store_cached.h). openat2 with
 * RESOLVE_CACHED fails with EAGAIN instead of reading a directory or an
 * inode from the disk, and preadv2 with RWF_NOWAIT fails with EAGAIN
 * instead of waiting for a page to be read: so the call costs a few system
 * calls and a copy, and never waits for the disk. Kernels before 5.12 (no
 * RESOLVE_CACHED) or file systems without RWF_NOWAIT make it fail with
 * ENOSYS, remembered for the process. Message files are written once and
 * never changed (store_file_write), so reading a whole file to its end is
 * the message; a message in a pack (store_pack.c) is exactly its SIZE bytes
 * at its OFFSET. */
#include "store/store_cached.h"
#include "store/store_msgfile.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static int unsupported; /* atomic: 1 once the kernel said it cannot */

static void mark_unsupported(void)
{
    __atomic_store_n(&unsupported, 1, __ATOMIC_RELAXED);
    errno = ENOSYS;
}

static int open_cached(const char *path)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_CACHED,
    };
    long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (fd < 0 && (errno == ENOSYS || errno == EINVAL || errno == E2BIG)) {
        mark_unsupported();
        return -1;
    }
    return (int)fd;
}

/* Reads the file from its start to its end into BUF: the bytes read, or
 * -1 (EFBIG when it holds more than CAP). */
static ssize_t read_nowait(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    for (;;) {
        char probe;
        /* once BUF is full, one more byte tells whether the file is longer */
        struct iovec iov = have < cap ? (struct iovec){buf + have, cap - have}
                                      : (struct iovec){&probe, 1};
        ssize_t n = preadv2(fd, &iov, 1, (off_t)have, RWF_NOWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno == EOPNOTSUPP)
                mark_unsupported();
            return -1;
        }
        if (n == 0)
            return (ssize_t)have;
        if (have == cap) {
            errno = EFBIG;
            return -1;
        }
        have += (size_t)n;
    }
}

/* SIZE bytes at OFFSET into BUF: SIZE, or -1 (EIO when the file ends
 * before them). */
static ssize_t read_range_nowait(int fd, int64_t offset, size_t size, char *buf)
{
    size_t have = 0;
    while (have < size) {
        struct iovec iov = { buf + have, size - have };
        ssize_t n = preadv2(fd, &iov, 1, (off_t)offset + (off_t)have, RWF_NOWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno == EOPNOTSUPP)
                mark_unsupported();
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        have += (size_t)n;
    }
    return (ssize_t)have;
}

ssize_t store_read_cached(const char *path, int64_t offset, size_t size, char *buf, size_t cap)
{
    if (__atomic_load_n(&unsupported, __ATOMIC_RELAXED)) {
        errno = ENOSYS;
        return -1;
    }
    if (offset != STORE_WHOLE_FILE && (offset < 0 || size > cap)) {
        errno = offset < 0 ? EINVAL : EFBIG;
        return -1;
    }
    int fd = open_cached(path);
    if (fd < 0)
        return -1;
    ssize_t n = offset == STORE_WHOLE_FILE ? read_nowait(fd, buf, cap)
                                           : read_range_nowait(fd, offset, size, buf);
    int saved = errno;
    close(fd);
    errno = saved;
    return n;
}
