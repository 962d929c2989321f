/* log: one logfmt line per event, to stderr and to DATA/log/roost.log.
 *
 *   ts=2026-01-05T10:00:01.123Z level=info comp=smtp event=rcpt session=7f3a ...
 *
 * Callers pass the key=value tail as a printf format. Any value that came
 * from a client must go through log_q() first: it quotes, escapes control and
 * non-ASCII bytes as \xHH and truncates. Passwords and AUTH payloads never
 * reach a log call. Safe to call from any thread. The file rotates by size
 * (log_set_rotation); docs/log.md lists every event and its keys. */
#ifndef ROOST_LOG_H
#define ROOST_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Opens DIR/roost.log for appending (dir may be NULL: stderr only). */
int log_open_dir(const char *dir);
void log_set_stderr(int on);
void log_set_level(enum log_level min);
void log_close(void);
/* Size rotation of roost.log: once it reaches MAX_SIZE bytes (0 = never),
 * roost.log.KEEP-1 .. .1 become .KEEP .. .2 (the oldest beyond KEEP is
 * overwritten), roost.log becomes roost.log.1 and a new roost.log starts.
 * Done under the log lock right after a line is written: no line is lost or
 * split, and each thread's lines stay in order across files. */
void log_set_rotation(size_t max_size, int keep);

void log_event(enum log_level lvl, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quote and escape a client-supplied value of LEN bytes for a log line,
 * into OUT (size OUTSZ, at least 8). Truncates at about 200 bytes with "...".
 * Returns OUT. */
const char *log_q(char *out, size_t outsz, const char *s, size_t len);
#define LOG_QSIZE 256

/* Convenience: fatal error during start-up or config: logs and exits 1. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_info(comp, ...)  log_event(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log_event(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_event(LOG_ERROR, comp, __VA_ARGS__)
#define log_debug(comp, ...) log_event(LOG_DEBUG, comp, __VA_ARGS__)

#endif
