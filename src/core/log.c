/* log: thread-safe logfmt event lines to stderr and DATA/log/roost.log,
 * with size rotation to roost.log.1 .. roost.log.N (1 = newest). */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static int log_to_stderr = 1;
static enum log_level log_min = LOG_INFO;
static char log_path[4096];   /* roost.log, for rotation */
static size_t log_size;       /* bytes in the current file */
static size_t log_max_size;   /* rotate at this size; 0 = never */
static int log_keep = 10;

static const char *level_name(enum log_level l)
{
    switch (l) {
    case LOG_DEBUG: return "debug";
    case LOG_INFO: return "info";
    case LOG_WARN: return "warn";
    case LOG_ERROR: return "error";
    }
    return "?";
}

int log_open_dir(const char *dir)
{
    if (!dir)
        return 0;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/roost.log", dir) >= (int)sizeof path)
        return -1;
    mkdir(dir, 0750);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    struct stat st;
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = fd;
    memcpy(log_path, path, sizeof log_path);
    log_size = fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void log_set_rotation(size_t max_size, int keep)
{
    pthread_mutex_lock(&log_lock);
    log_max_size = max_size;
    log_keep = keep < 1 ? 1 : keep;
    pthread_mutex_unlock(&log_lock);
}

/* With log_lock held: shift the numbered files up by one, roost.log to
 * roost.log.1, and open a fresh roost.log. On any failure the current file
 * stays open (lines keep going somewhere) and the next try waits for another
 * max_size bytes. */
static void rotate_locked(void)
{
    char from[4200], to[4200];
    log_size = 0;
    for (int i = log_keep - 1; i >= 1; i--) {
        snprintf(from, sizeof from, "%s.%d", log_path, i);
        snprintf(to, sizeof to, "%s.%d", log_path, i + 1);
        if (rename(from, to) != 0 && errno != ENOENT)
            return;
    }
    snprintf(to, sizeof to, "%s.1", log_path);
    if (rename(log_path, to) != 0)
        return;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    close(log_fd);
    log_fd = fd;
}

void log_set_stderr(int on) { log_to_stderr = on; }
void log_set_level(enum log_level min) { log_min = min; }

void log_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    log_path[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void vlog_event(enum log_level lvl, const char *comp, const char *fmt, va_list ap)
{
    char line[8192];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
                     level_name(lvl), comp);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    pthread_mutex_lock(&log_lock);
    if (log_to_stderr)
        write_all(2, line, len);
    if (log_fd >= 0) {
        write_all(log_fd, line, len);
        log_size += len;
        if (log_max_size > 0 && log_size >= log_max_size && log_path[0])
            rotate_locked();
    }
    pthread_mutex_unlock(&log_lock);
}

void log_event(enum log_level lvl, const char *comp, const char *fmt, ...)
{
    if (lvl < log_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog_event(lvl, comp, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char q[LOG_QSIZE];
    log_event(LOG_ERROR, "main", "event=fatal error=%s", log_q(q, sizeof q, msg, strlen(msg)));
    if (!log_to_stderr)
        fprintf(stderr, "roost: %s\n", msg);
    exit(1);
}

const char *log_q(char *out, size_t outsz, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, limit = outsz - 6; /* room for ..." and NUL */
    if (!s)
        s = "", len = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? 4 : 1;
        if (o + need > limit) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
