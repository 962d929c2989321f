/* logfmt: the parser for one line of Roost's event log (core/log.c):
 *
 *   ts=2026-01-05T10:00:01.123Z level=info comp=smtp event=rcpt to="a b" ...
 *
 * Fields are KEY=VALUE separated by one or more spaces. A key is 1..64 of
 * [A-Za-z0-9_.-]. A value is either bare (any bytes but space and control
 * bytes, possibly empty) or double-quoted. Inside quotes \xHH, \" and \\ are
 * escapes (log_q writes \xHH for '"', '\\', control and non-ASCII bytes); a
 * quote ends the value only when a space or the end of the line follows it,
 * so a raw '"' inside an error text written without log_q stays in the value.
 * Anything else (no '=', bad key, bad escape, unterminated quote, control
 * byte, more than LOGFMT_MAX_FIELDS fields, longer than LOGFMT_MAX_LINE) makes
 * the whole line invalid: readers skip it. One trailing "\n" or "\r\n" is
 * ignored. Decoded values may hold any byte except NUL (\x00 is refused). */
#ifndef ROOST_LOGFMT_H
#define ROOST_LOGFMT_H

#include <stddef.h>

#define LOGFMT_MAX_LINE 16384
#define LOGFMT_MAX_FIELDS 64
#define LOGFMT_MAX_KEY 64

struct logfmt_field {
    const char *key;   /* NUL-terminated, in the line's buffer */
    const char *val;   /* decoded, NUL-terminated */
    size_t vlen;
};

struct logfmt_line {
    int n;
    struct logfmt_field f[LOGFMT_MAX_FIELDS];
    char buf[LOGFMT_MAX_LINE + 2 * LOGFMT_MAX_FIELDS + 2];
};

/* Parses LEN bytes of LINE into L. 0 on success, -1 if the line is invalid
 * (L is then empty). */
int logfmt_parse(struct logfmt_line *l, const char *line, size_t len);

/* The first value of KEY, or NULL. */
const char *logfmt_get(const struct logfmt_line *l, const char *key);

#endif
