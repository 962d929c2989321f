/* fsutil: small filesystem helpers shared by the modules that write files
 * durably (queue/spool.c, store/store.c): writing a whole buffer and
 * fsyncing a directory by its path; and the read loop that the readers of
 * queue, state and message files share (spool, rcptstate, pickup, store,
 * imap_fetch_msg); and advancing an iovec array past a short writev
 * (queue/journal.c, store/store_pack.c). */
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

/* Reads up to N bytes from FD into P, retrying on EINTR and short reads,
 * until N bytes are in or the file ends. *GOT_R is the number of bytes read
 * (less than N only at end of file or on error). 0 on success (end of file
 * included); -1 with errno set on a read error. */
int fs_read_full(int fd, void *p, size_t n, size_t *got_r);

/* After a writev/pwritev that wrote DONE bytes of the *N vectors at *IOV:
 * drops the vectors written in full and trims the one written in part. */
struct iovec;
void fs_iov_advance(struct iovec **iov, int *n, size_t done);

#endif
