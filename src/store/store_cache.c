/* store_cache: the IMAP ENVELOPE and BODYSTRUCTURE that delivery and APPEND
 * store with a message (the `envelope` and `bodystructure` columns), so
 * that FETCH answers them without reparsing the message (DESIGN.md:
 * mailbox index). Computed with src/mime (GMime) before the index
 * transaction, as a session without UTF8=ACCEPT sees them (8-bit header
 * values as literals, mime.h) and with the extended BODYSTRUCTURE.
 * A structure larger than STORE_MAX_CACHED is not cached: FETCH then
 * parses the message itself. */
#include "store/store_int.h"
#include "core/buf.h"
#include "mime/mime.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

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

void store_structure_compute(const char *data, size_t len, char **envelope_r,
                             char **bodystructure_r)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    *envelope_r = *bodystructure_r = NULL;
    pthread_once(&once, mime_init_once);
    struct mime_msg *m = mime_parse(data, len);
    if (!m)
        return;
    *envelope_r = cached_string(m, 1);
    *bodystructure_r = cached_string(m, 0);
    if (!*envelope_r || !*bodystructure_r) {
        free(*envelope_r);
        free(*bodystructure_r);
        *envelope_r = *bodystructure_r = NULL;
    }
    mime_free(&m);
}
