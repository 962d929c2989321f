/* store_cached: reading a small message file from an event loop, but only
 * when the kernel already holds it in memory (see store_cached.c). Unlike
 * the rest of store.h, this never blocks on the disk: an event loop may
 * call it, and hands the read to a worker when it fails. */
#ifndef ROOST_STORE_CACHED_H
#define ROOST_STORE_CACHED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads a message into BUF (CAP bytes) if every path component, the inode
 * and the pages are in the kernel's caches: the whole file PATH when OFFSET
 * is STORE_WHOLE_FILE (store_msgfile.h), else the SIZE bytes at OFFSET of
 * the pack PATH. Returns the message's length, or -1 with errno: EAGAIN
 * (something is not cached: use a worker), EFBIG (longer than CAP), EIO (a
 * pack shorter than OFFSET + SIZE), ENOSYS (the kernel cannot do this;
 * later calls fail at once), or the error of open or read. */
ssize_t store_read_cached(const char *path, int64_t offset, size_t size, char *buf, size_t cap);

#endif
