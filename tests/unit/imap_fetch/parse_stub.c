/* parse_stub: stand-ins for the two imap_parse.h functions this module
 * uses (imap_datetime_format, imap_seqset_contains) until src/imap/
 * imap_parse.c is in the tree; removed when it is merged. */
#include "imap/imap_parse.h"

#include <stdio.h>
#include <time.h>

void imap_datetime_format(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%d-%b-%Y %H:%M:%S +0000", &tm);
}

int imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star_value)
{
    for (int i = 0; i < set->n; i++) {
        uint32_t lo = set->r[i].lo == IMAP_SEQ_STAR ? star_value : set->r[i].lo;
        uint32_t hi = set->r[i].hi == IMAP_SEQ_STAR ? star_value : set->r[i].hi;
        if (lo > hi) {
            uint32_t t = lo;
            lo = hi;
            hi = t;
        }
        if (n >= lo && n <= hi)
            return 1;
    }
    return 0;
}
