/* store_msgfile: reading one stored message wherever it lives: a whole
 * file of its own (msg/<name>, the row's offset is NULL) or SIZE bytes at
 * OFFSET inside an append-only pack file (msg/pack/<seq>, see
 * store_pack.c). Every reader of message bytes (store_read, IMAP FETCH and
 * SEARCH, the POP3 maildrop) goes through these, so no caller does offset
 * arithmetic of its own. Blocking (disk): worker threads only, except
 * store_read_cached (store_cached.h). */
#ifndef ROOST_STORE_MSGFILE_H
#define ROOST_STORE_MSGFILE_H

#include <stddef.h>
#include <stdint.h>

/* The offset of a message that is a whole file (the row's NULL). */
#define STORE_WHOLE_FILE ((int64_t)-1)

/* A message's bytes, mapped or read into memory. */
struct store_msg_map {
    char *data;         /* the message (NUL-terminated when not mapped) */
    size_t len;
    void *base;         /* what to munmap (page-aligned), when mapped */
    size_t maplen;
    int mapped;
};

/* Opens PATH read-only and checks that the message fits in it: with
 * OFFSET = STORE_WHOLE_FILE the whole file (at most MAX bytes: *len_r is its
 * size), else SIZE bytes at OFFSET (*len_r = SIZE). Returns the descriptor
 * or -1 with errno (EIO when the file is shorter than the row says, EFBIG
 * when over MAX). */
int store_msg_open(const char *path, int64_t offset, size_t size, size_t max, size_t *len_r);

/* Maps (or, when mmap fails, reads) the message. 0 or -1 with errno. */
int store_msg_map(const char *path, int64_t offset, size_t size, struct store_msg_map *m);
void store_msg_unmap(struct store_msg_map *m);

/* Reads the message into a malloc'd NUL-terminated buffer (at most MAX
 * bytes). 0 or -1 with errno. */
int store_msg_read(const char *path, int64_t offset, size_t size, size_t max, char **data_r,
                   size_t *len_r);

#endif
