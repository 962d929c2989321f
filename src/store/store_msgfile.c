/* store_msgfile: opening, mapping and reading a stored message, whole file
 * or a range of a pack (store_msgfile.h). Message bytes never change once
 * stored: whole files are immutable and packs only grow (expunged space is
 * reclaimed by rewriting live messages elsewhere, never by truncating), so
 * a mapping stays valid, also after an unlink. */
#include "store/store_msgfile.h"
#include "core/fsutil.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int store_msg_open(const char *path, int64_t offset, size_t size, size_t max, size_t *len_r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) != 0)
        err = errno;
    else if (!S_ISREG(st.st_mode))
        err = EINVAL;
    else if (offset == STORE_WHOLE_FILE) {
        if ((uint64_t)st.st_size > max)
            err = EFBIG;
        else
            *len_r = (size_t)st.st_size;
    } else if (offset < 0 || size > max || (uint64_t)offset > (uint64_t)st.st_size ||
               (uint64_t)st.st_size - (uint64_t)offset < size) {
        err = offset < 0 ? EINVAL : size > max ? EFBIG : EIO;
    } else {
        *len_r = size;
    }
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* LEN bytes at OFF of FD into a malloc'd NUL-terminated buffer. */
static int read_range(int fd, off_t off, size_t len, char **data_r)
{
    char *data = xmalloc(len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, data + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(data);
            if (n == 0)
                errno = EIO;
            return -1;
        }
        got += (size_t)n;
    }
    data[len] = '\0';
    *data_r = data;
    return 0;
}

int store_msg_read(const char *path, int64_t offset, size_t size, size_t max, char **data_r,
                   size_t *len_r)
{
    size_t len;
    int fd = store_msg_open(path, offset, size, max, &len);
    if (fd < 0)
        return -1;
    off_t off = offset == STORE_WHOLE_FILE ? 0 : (off_t)offset;
    int rc = read_range(fd, off, len, data_r);
    int saved = errno;
    close(fd);
    if (rc == 0)
        *len_r = len;
    errno = saved;
    return rc;
}

int store_msg_map(const char *path, int64_t offset, size_t size, struct store_msg_map *m)
{
    size_t len;
    memset(m, 0, sizeof *m);
    int fd = store_msg_open(path, offset, size, SIZE_MAX / 2, &len);
    if (fd < 0)
        return -1;
    off_t off = offset == STORE_WHOLE_FILE ? 0 : (off_t)offset;
    int rc = 0;
    if (len == 0) {
        m->data = xstrdup("");
    } else {
        long page = sysconf(_SC_PAGESIZE);
        off_t base = page > 0 ? off - off % page : 0;
        size_t lead = (size_t)(off - base);
        void *p = mmap(NULL, lead + len, PROT_READ, MAP_PRIVATE, fd, base);
        if (p != MAP_FAILED) {
            m->base = p;
            m->maplen = lead + len;
            m->data = (char *)p + lead;
            m->mapped = 1;
        } else {
            rc = read_range(fd, off, len, &m->data);
        }
    }
    int saved = errno;
    close(fd);
    if (rc == 0)
        m->len = len;
    errno = saved;
    return rc;
}

void store_msg_unmap(struct store_msg_map *m)
{
    if (m->mapped)
        munmap(m->base, m->maplen);
    else
        free(m->data);
    memset(m, 0, sizeof *m);
}
