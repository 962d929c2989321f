/* imap_fetch_msg: one message being evaluated by FETCH or SEARCH
 * (struct imap_msg_ctx): its file is mapped (or read, when mmap is not
 * possible) at most once, on first need, and its MIME structure parsed at
 * most once. Items that only need the index row never reach this file, nor
 * do SEARCH keys on header fields when the row carries the cached header
 * block (imap_msg_header).
 *
 * Message files are immutable once stored (expunge unlinks them; a mapping
 * stays valid after an unlink), so a mapping never changes under us. */
#include "imap/imap_fetch.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "mime/mime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads the whole file into a malloc'd buffer (when mmap fails). */
static int read_all(int fd, size_t size, char **data_r)
{
    char *data = xmalloc(size + 1);
    size_t got;
    if (fs_read_full(fd, data, size, &got) < 0 || got != size) {
        free(data);
        return -1;
    }
    data[size] = '\0';
    *data_r = data;
    return 0;
}

int imap_msg_load(struct imap_msg_ctx *m)
{
    if (m->data)
        return 0;
    if (!m->row || !m->row->path)
        return -1;
    int fd = open(m->row->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        m->data = xstrdup("");
        m->len = 0;
        m->mapped = 0;
        rc = 0;
        goto out;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
        m->data = p;
        m->mapped = 1;
    } else if (read_all(fd, size, &m->data) == 0) {
        m->mapped = 0;
    } else {
        goto out;
    }
    m->len = size;
    rc = 0;
out:
    close(fd);
    return rc;
}

const struct mime_msg *imap_msg_mime(struct imap_msg_ctx *m)
{
    if (m->mime)
        return m->mime;
    if (imap_msg_load(m) != 0)
        return NULL;
    m->mime = mime_parse(m->data, m->len);
    return m->mime;
}

const struct mime_msg *imap_msg_header(struct imap_msg_ctx *m)
{
    if (m->mime)
        return m->mime;
    if (!m->hdr && m->row && m->row->header)
        m->hdr = mime_parse(m->row->header, m->row->header_len);
    return m->hdr ? m->hdr : imap_msg_mime(m);
}

void imap_msg_release(struct imap_msg_ctx *m)
{
    if (m->mime)
        mime_free(&m->mime);
    if (m->hdr)
        mime_free(&m->hdr);
    if (m->data) {
        if (m->mapped)
            munmap(m->data, m->len);
        else
            free(m->data);
    }
    m->data = NULL;
    m->len = 0;
    m->mapped = 0;
}
