/* cli_logread: reading the event log files in time order, plus the small
 * helpers `roost log` and `roost status` share (see cli_logread.h). */
#include "cli/cli_logread.h"
#include "core/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int logread_open(struct logread *r, const char *data_dir)
{
    r->n = 0;
    struct stat seen[LOGREAD_MAX_FILES];
    for (int i = 0; i < LOGREAD_MAX_FILES; i++) {
        char path[4200];
        if (i == 0)
            snprintf(path, sizeof path, "%s/log/roost.log", data_dir);
        else
            snprintf(path, sizeof path, "%s/log/roost.log.%d", data_dir, i);
        FILE *f = fopen(path, "re");
        if (!f) {
            if (i == 0)
                continue; /* roost.log may be missing right after a rotation */
            break;
        }
        struct stat st;
        int dup = 0;
        if (fstat(fileno(f), &st) == 0) {
            /* a rotation between two opens shows one file under two names */
            for (int j = 0; j < r->n; j++)
                if (seen[j].st_dev == st.st_dev && seen[j].st_ino == st.st_ino)
                    dup = 1;
        }
        if (dup) {
            fclose(f);
            continue;
        }
        seen[r->n] = st;
        r->f[r->n++] = f;
    }
    return 0;
}

void logread_close(struct logread *r)
{
    for (int i = 0; i < r->n; i++)
        fclose(r->f[i]);
    r->n = 0;
}

void logread_each(struct logread *r, logread_fn fn, void *arg)
{
    struct logfmt_line *l = xmalloc(sizeof *l);
    char *line = NULL;
    size_t cap = 0;
    for (int i = r->n - 1; i >= 0; i--) {
        FILE *f = r->f[i];
        rewind(f);
        ssize_t n;
        int stop = 0;
        while (!stop && (n = getline(&line, &cap, f)) > 0) {
            if (logfmt_parse(l, line, (size_t)n) < 0)
                continue;
            if (!logfmt_get(l, "ts") || !logfmt_get(l, "event"))
                continue;
            stop = fn(l, arg);
        }
        if (stop)
            break;
    }
    free(line);
    free(l);
}

/* ------------------------------------------------------------ string set */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void grow(struct logset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    char **slot = xcalloc(cap, sizeof *slot);
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slot[i])
            continue;
        size_t j = hash(s->slot[i]) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = s->slot[i];
    }
    free(s->slot);
    s->slot = slot;
    s->cap = cap;
}

int logset_has(const struct logset *s, const char *v)
{
    if (!s->cap || !v)
        return 0;
    for (size_t j = hash(v) & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1))
        if (strcmp(s->slot[j], v) == 0)
            return 1;
    return 0;
}

void logset_add(struct logset *s, const char *v)
{
    if (!v || !*v || logset_has(s, v))
        return;
    if ((s->n + 1) * 2 > s->cap)
        grow(s);
    size_t j = hash(v) & (s->cap - 1);
    while (s->slot[j])
        j = (j + 1) & (s->cap - 1);
    s->slot[j] = xstrdup(v);
    s->n++;
}

void logset_free(struct logset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------ time */

int logread_parse_time(const char *s, time_t now, time_t *t_r)
{
    char *end;
    if (s[0] >= '0' && s[0] <= '9') {
        unsigned long long n = strtoull(s, &end, 10);
        if (end != s && end[0] && !end[1] && n < 100000000ULL) {
            unsigned long long mult = 0;
            switch (end[0]) {
            case 's': mult = 1; break;
            case 'm': mult = 60; break;
            case 'h': mult = 3600; break;
            case 'd': mult = 86400; break;
            case 'w': mult = 7 * 86400; break;
            }
            if (mult) {
                *t_r = now - (time_t)(n * mult);
                return 0;
            }
        }
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h = 0, mi = 0, se = 0, used = 0;
    size_t len = strlen(s);
    if (len && s[len - 1] == 'Z')
        len--;
    for (int i = 0; i < 10; i++) {
        int want_dash = (i == 4 || i == 7);
        if (want_dash ? s[i] != '-' : !(s[i] >= '0' && s[i] <= '9'))
            return -1;
    }
    for (size_t i = 11; i < len; i++)
        if (s[i] != ':' && !(s[i] >= '0' && s[i] <= '9'))
            return -1;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
        return -1;
    if ((size_t)used < len) {
        if (s[used] != 'T' && s[used] != ' ')
            return -1;
        int u2 = 0;
        const char *p = s + used + 1;
        if (sscanf(p, "%2d:%2d%n", &h, &mi, &u2) != 2 || u2 != 5)
            return -1;
        used += 1 + u2;
        if ((size_t)used < len) {
            if (sscanf(s + used, ":%2d%n", &se, &u2) != 1 || u2 != 3)
                return -1;
            used += u2;
        }
        if ((size_t)used != len)
            return -1;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 ||
        h < 0 || mi < 0 || se < 0)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    struct tm back;
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d)
        return -1; /* 2026-02-30 */
    *t_r = t;
    return 0;
}

void logread_ts(time_t t, int end, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%sZ", end ? "999" : "000");
}

time_t logread_ts_parse(const char *ts)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!ts || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* ------------------------------------------------------------ JSON */

/* Length of the valid UTF-8 sequence at S (at most N bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t need;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        need = 2, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        need = 3, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        need = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (need > n)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

void logread_json_str(FILE *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc(c, out);
            i++;
        } else {
            size_t k = utf8_len(p + i, len - i);
            if (k) {
                fwrite(p + i, 1, k, out);
                i += k;
            } else {
                fprintf(out, "\\u%04x", c);
                i++;
            }
        }
    }
    fputc('"', out);
}
