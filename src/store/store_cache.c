/* store_cache: the IMAP ENVELOPE and BODYSTRUCTURE that delivery and APPEND
 * store with a message (the `envelope` and `bodystructure` columns), so
 * that FETCH answers them without reparsing the message (DESIGN.md:
 * mailbox index). Computed with src/mime (GMime) before the index
 * transaction, as a session without UTF8=ACCEPT sees them (8-bit header
 * values as literals, mime.h) and with the extended BODYSTRUCTURE.
 * A structure larger than STORE_MAX_CACHED is not cached: FETCH then
 * parses the message itself. The header block goes to the `header` column
 * for SEARCH on header fields (store_int.h: store_cached). */
#include "store/store_int.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "mime/mime.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Bounds one cached string (a message with thousands of parts). */
#define STORE_MAX_CACHED (256u * 1024)

static void mime_init_once(void)
{
    mime_init();
}

/* Runs FN's text into a malloc'd string, NULL when it does not fit. */
static char *cached_string(const struct mime_msg *m, int envelope)
{
    struct buf b;
    buf_init(&b, STORE_MAX_CACHED);
    int rc = envelope ? mime_envelope(m, 0, &b) : mime_bodystructure(m, 1, 0, &b);
    char *out = NULL;
    if (rc == 0 && b.len > 0 && buf_append(&b, "", 1) == 0)
        out = buf_steal(&b, NULL);
    buf_deinit(&b);
    return out;
}

/* The message's header block (with the blank line that ends it). */
static void cached_header(const struct mime_msg *m, const char *data, struct store_cached *c)
{
    size_t off, len;
    if (mime_section_range(m, NULL, 0, MIME_SEC_HEADER, &off, &len) != 0 ||
        len > STORE_MAX_CACHED_HEADER)
        return;
    c->header = xmalloc(len + 1);
    memcpy(c->header, data + off, len);
    c->header[len] = '\0';
    c->header_len = len;
}

void store_structure_compute(const char *data, size_t len, struct store_cached *c)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    memset(c, 0, sizeof *c);
    pthread_once(&once, mime_init_once);
    struct mime_msg *m = mime_parse(data, len);
    if (!m)
        return;
    c->envelope = cached_string(m, 1);
    c->bodystructure = cached_string(m, 0);
    if (!c->envelope || !c->bodystructure) {
        free(c->envelope);
        free(c->bodystructure);
        c->envelope = c->bodystructure = NULL;
    }
    cached_header(m, data, c);
    mime_free(&m);
}

void store_cached_free(struct store_cached *c)
{
    free(c->envelope);
    free(c->bodystructure);
    free(c->header);
    memset(c, 0, sizeof *c);
}
