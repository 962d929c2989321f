/* imap_fetch_msg: one message being evaluated by FETCH or SEARCH
 * (struct imap_msg_ctx): its bytes (a whole file, or its range of a pack:
 * store_msgfile.h) are mapped (or read, when mmap is not possible) at most
 * once, on first need, and its MIME structure parsed at
 * most once. Items that only need the index row never reach this file, nor
 * do SEARCH keys on header fields when the row carries the cached header
 * block (imap_msg_header).
 *
 * Stored bytes are immutable (expunge unlinks files; packs only grow; a
 * mapping stays valid after an unlink), so a mapping never changes under us. */
#include "imap/imap_fetch.h"
#include "mime/mime.h"

#include <stdlib.h>

int imap_msg_load(struct imap_msg_ctx *m)
{
    if (m->data)
        return 0;
    if (!m->row || !m->row->path)
        return -1;
    if (store_msg_map(m->row->path, m->row->offset, m->row->size, &m->map) != 0)
        return -1;
    m->data = m->map.data;
    m->len = m->map.len;
    return 0;
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
    if (m->data)
        store_msg_unmap(&m->map);
    m->data = NULL;
    m->len = 0;
}
