/* imap_parse_int: what the files of the IMAP parser share (imap_reader.c,
 * imap_parse.c and the typed parsers); not for the rest of src/imap. */
#ifndef ROOST_IMAP_PARSE_INT_H
#define ROOST_IMAP_PARSE_INT_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

/* A framed command: its line texts (no CRLF) and, after each line that
 * announced one, the literal's octets. */
struct imap_piece {
    int is_literal;
    int lit8;
    char *data;       /* NUL-terminated copy */
    size_t len;
};
struct imap_framed {
    struct imap_piece *p;
    int n, cap;
};


#endif
