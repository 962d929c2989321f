/* store_cached: reading a small message file from an event loop, but only
 * when the kernel already holds it in memory (see store_cached.c). Unlike
 * the rest of store.h, this never blocks on the disk: an event loop may
 * call it, and hands the read to a worker when it fails. */
#ifndef ROOST_STORE_CACHED_H
#define ROOST_STORE_CACHED_H

#include <stddef.h>
#include <sys/types.h>

/* Reads the whole file PATH into BUF (CAP bytes) if every path component,
 * the inode and the file's pages are in the kernel's caches and the file
 * holds at most CAP bytes. Returns the file's length, or -1 with errno:
 * EAGAIN (something is not cached: use a worker), EFBIG (longer than CAP),
 * ENOSYS (the kernel cannot do this; later calls fail at once), or the
 * error of open or read. */
ssize_t store_read_cached(const char *path, char *buf, size_t cap);

#endif
