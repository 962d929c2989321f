/* fsutil: small filesystem helpers shared by the modules that write files
 * durably (queue/spool.c, store/store.c): writing a whole buffer and
 * fsyncing a directory by its path. */
#ifndef ROOST_FSUTIL_H
#define ROOST_FSUTIL_H

#include <stddef.h>

/* Writes all N bytes of P to FD, retrying on EINTR and short writes.
 * 0 on success; -1 with errno set on failure (EIO if write returned 0). */
int fs_write_all(int fd, const void *p, size_t n);

/* Opens the directory PATH, fsyncs it and closes it. Returns fsync's result
 * (0 or -1), or -1 if it cannot be opened; errno is that of the failing
 * call, never clobbered by the close. */
int fs_fsync_dir_path(const char *path);

#endif
