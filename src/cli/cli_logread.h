/* cli_logread: what `roost log` and `roost status` share for reading the
 * event log: DATA/log/roost.log and its rotated files in time order, a small
 * string set, time bounds given on the command line, and JSON strings.
 * Reading only: safe while the server runs and rotates (every file is opened
 * before the first is read, the same file seen twice is read once). */
#ifndef ROOST_CLI_LOGREAD_H
#define ROOST_CLI_LOGREAD_H

#include "core/logfmt.h"

#include <stdio.h>
#include <time.h>

#define LOGREAD_MAX_FILES 1001

struct logread {
    int n;
    FILE *f[LOGREAD_MAX_FILES];   /* f[0] = roost.log (newest), f[n-1] oldest */
};

/* Opens DATA_DIR/log/roost.log and roost.log.1, .2 ... (stops at the first
 * missing number). 0 on success (possibly no files at all). */
int logread_open(struct logread *r, const char *data_dir);
void logread_close(struct logread *r);

/* Calls FN for every valid line (it has ts= and event=), oldest file first,
 * in file order; invalid lines are skipped. FN returns non-zero to stop.
 * May be called again: the files are read from the start each time. */
typedef int (*logread_fn)(const struct logfmt_line *l, void *arg);
void logread_each(struct logread *r, logread_fn fn, void *arg);

/* A set of short strings (session and queue ids). */
struct logset {
    char **slot;
    size_t cap, n;
};
void logset_add(struct logset *s, const char *v);
int logset_has(const struct logset *s, const char *v);
void logset_free(struct logset *s);

/* Parses a time given on the command line: "2026-12-03", "2026-12-03T10:00",
 * "2026-12-03 10:00:30", optionally with a final Z (all UTC), or a relative
 * "30m", "1h", "2d", "1w" (s/m/h/d/w before NOW). 0 ok, -1 invalid. */
int logread_parse_time(const char *s, time_t now, time_t *t_r);
/* Formats T like the log's ts= (…T10:00:00.000Z, or .999Z with END set), so
 * ts strings compare as time. */
void logread_ts(time_t t, int end, char out[32]);
/* Parses a log ts= value to seconds; -1 if it is not one. */
time_t logread_ts_parse(const char *ts);

/* Writes S (LEN bytes) as a JSON string: escapes '"', '\\' and control
 * bytes, keeps valid UTF-8, writes other bytes as \u00XX. */
void logread_json_str(FILE *out, const char *s, size_t len);

#endif
