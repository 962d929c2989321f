/* store_cache: the IMAP ENVELOPE and BODYSTRUCTURE that delivery and APPEND
 * store with a message (the `envelope` and `bodystructure` columns), so
 * that FETCH answers them without reparsing the message (DESIGN.md:
 * mailbox index).
 *
 * Until the MIME module (src/mime) is in the tree this computes nothing and
 * the columns stay NULL: FETCH then parses the message and fills them with
 * store_cache_structure. */
#include "store/store_int.h"

#include <stddef.h>

void store_structure_compute(const char *data, size_t len, char **envelope_r,
                             char **bodystructure_r)
{
    (void)data;
    (void)len;
    *envelope_r = NULL;
    *bodystructure_r = NULL;
}
