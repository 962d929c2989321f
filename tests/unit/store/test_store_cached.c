/* test_store_cached: store_read_cached (src/store/store_cached.c): a cached
 * file is read whole; a file longer than the buffer, one exactly as long,
 * an empty one and a missing one; a file whose pages were dropped from the
 * page cache fails with EAGAIN instead of waiting for the disk (where the
 * kernel honours the drop). */
#include "store/store_cached.h"
#include "store_tests.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    test_assert(fd >= 0);
    test_assert(write(fd, data, len) == (ssize_t)len);
    test_assert(fsync(fd) == 0);
    close(fd);
}

void test_store_read_cached(void)
{
    test_begin("store_read_cached: whole file, exact fit, too long, empty, missing, evicted");
    const char *dir = test_tmpdir();
    char path[4096], buf[64];
    static char big[256 * 1024];
    snprintf(path, sizeof path, "%s/m1", dir);
    write_file(path, "From: a\r\n\r\nbody\r\n", 17);
    ssize_t n = store_read_cached(path, -1, 0, buf, sizeof buf);
    if (n < 0 && errno == ENOSYS) {
        fprintf(stderr, "store_read_cached: not supported here (openat2/RWF_NOWAIT)\n");
        test_end();
        return;
    }
    test_assert(n == 17 && memcmp(buf, "From: a\r\n\r\nbody\r\n", 17) == 0);
    n = store_read_cached(path, -1, 0, buf, 17);   /* exactly fits */
    test_assert(n == 17);
    errno = 0;
    n = store_read_cached(path, -1, 0, buf, 16);   /* one byte too long */
    test_assert(n == -1 && errno == EFBIG);
    snprintf(path, sizeof path, "%s/empty", dir);
    write_file(path, "", 0);
    test_assert(store_read_cached(path, -1, 0, buf, sizeof buf) == 0);
    snprintf(path, sizeof path, "%s/missing", dir);
    errno = 0;
    /* ENOENT, or EAGAIN when the name's absence is not cached either */
    test_assert(store_read_cached(path, -1, 0, buf, sizeof buf) == -1 &&
                (errno == ENOENT || errno == EAGAIN));
    /* dropped from the page cache: EAGAIN, never a partial answer */
    memset(big, 'x', sizeof big);
    snprintf(path, sizeof path, "%s/big", dir);
    write_file(path, big, sizeof big);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    test_assert(fd >= 0);
    test_assert(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
    close(fd);
    errno = 0;
    n = store_read_cached(path, -1, 0, big, sizeof big);
    test_assert(n == (ssize_t)sizeof big || (n == -1 && errno == EAGAIN));
    test_end();
}
