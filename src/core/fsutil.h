/* fsutil: small filesystem helpers shared by the modules that write files
 * durably (queue/spool.c, store/store.c): writing a whole buffer and
 * fsyncing a directory by its path; and the read loop that the readers of
 * queue, state and message files share (spool, rcptstate, pickup, store,
 * imap_fetch_msg); and writing iovec arrays whole (queue/journal.c,
 * store/store_pack.c). */
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

/* Reads the whole regular file open at FD (at most MAX bytes) into a
 * malloc'd buffer with a NUL after it. 0 ok (*DATA_R, *LEN_R), -1 read
 * error, -2 not a regular file or larger than MAX (errno EFBIG). */
int fs_read_regular(int fd, size_t max, char **data_r, size_t *len_r);

/* Writes all N vectors at IOV to FD (writev, IOV_MAX at a time), retrying
 * on EINTR and short writes; IOV is consumed. 0, or -1 with errno set. */
struct iovec;
int fs_writev_all(int fd, struct iovec *iov, int n);

/* After a writev/pwritev that wrote DONE bytes of the *N vectors at *IOV:
 * drops the vectors written in full and trims the one written in part. */
void fs_iov_advance(struct iovec **iov, int *n, size_t done);

#endif
