/* Unit tests for the event log: the logfmt line parser (bare and quoted
 * values, escapes, the lines it must refuse) and size rotation of roost.log
 * (many threads logging across rotations: no line lost, each thread's lines
 * in order, at most KEEP rotated files), the [log] config keys, and the
 * helpers of `roost log` (command-line times, JSON strings, the id set). */
#include "cli/cli_logread.h"
#include "core/config.h"
#include "core/log.h"
#include "core/logfmt.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct logfmt_line L;

static int parse(const char *s)
{
    return logfmt_parse(&L, s, strlen(s));
}

static void test_parse_basic(void)
{
    test_begin("logfmt: bare values, the trailing newline, first key wins");
    test_assert(parse("ts=2026-01-05T10:00:01.123Z level=info comp=smtp event=rcpt "
                      "session=7f3a to=a@b.test result=250 empty= event=again\n") == 0);
    test_assert(L.n == 9);
    test_assert_streq(logfmt_get(&L, "ts"), "2026-01-05T10:00:01.123Z");
    test_assert_streq(logfmt_get(&L, "event"), "rcpt");
    test_assert_streq(logfmt_get(&L, "to"), "a@b.test");
    test_assert_streq(logfmt_get(&L, "empty"), "");
    test_assert(logfmt_get(&L, "missing") == NULL);
    test_assert(parse("a=1   b=2\r\n") == 0 && L.n == 2);
    test_assert_streq(logfmt_get(&L, "b"), "2");
    test_assert(parse("") == 0 && L.n == 0);
    test_assert(parse("   \n") == 0 && L.n == 0);
    test_end();
}

static void test_parse_quoted(void)
{
    test_begin("logfmt: quoted values with escapes, as log_q writes them");
    test_assert(parse("from=\"a b\" x=\"\" y=\"q\\x22uote\\x5c\" z=\"\\\"\\\\\"") == 0);
    test_assert(L.n == 4);
    test_assert_streq(logfmt_get(&L, "from"), "a b");
    test_assert_streq(logfmt_get(&L, "x"), "");
    test_assert_streq(logfmt_get(&L, "y"), "q\"uote\\");
    test_assert_streq(logfmt_get(&L, "z"), "\"\\");
    /* round trip through log_q: control, quote, non-ASCII */
    const char raw[] = "we\"ird\r\n\x01 caf\xc3\xa9";
    char q[LOG_QSIZE], line[400];
    snprintf(line, sizeof line, "k=%s n=1", log_q(q, sizeof q, raw, sizeof raw - 1));
    test_assert(parse(line) == 0 && L.n == 2);
    test_assert_streq(logfmt_get(&L, "k"), raw);
    test_assert(L.f[0].vlen == sizeof raw - 1);
    /* a raw quote inside a quoted error text (not followed by a space) */
    test_assert(parse("error=\"near \"x\": syntax error\" n=2") == 0);
    test_assert_streq(logfmt_get(&L, "error"), "near \"x\": syntax error");
    test_assert_streq(logfmt_get(&L, "n"), "2");
    test_end();
}

static void test_parse_bad(void)
{
    test_begin("logfmt: invalid lines are refused whole");
    const char *bad[] = {
        "no equals here", "=v", "k", "k=1 junk", "bad key=1", "k\xff=1",
        "k=\"unterminated", "k=\"bad \\q escape\"", "k=\"\\x4\"", "k=\"\\xzz\"",
        "k=\"\\x00\"", "k=\"tab\there\"", "k=ctl\x01", "k=\"x\"y", "k=\"end\\",
        "ts=1 level=info comp=x event=y\nsecond=line",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int r = parse(bad[i]);
        if (r != -1)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        test_assert(r == -1 && L.n == 0);
    }
    char many[2000] = "";
    for (int i = 0; i <= LOGFMT_MAX_FIELDS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "k%d=v ", i);
    test_assert(parse(many) == -1);
    char *longline = malloc(LOGFMT_MAX_LINE + 10);
    memset(longline, 'a', LOGFMT_MAX_LINE + 9);
    memcpy(longline, "k=", 2);
    longline[LOGFMT_MAX_LINE + 9] = '\0';
    test_assert(parse(longline) == -1);
    longline[LOGFMT_MAX_LINE] = '\0'; /* exactly the limit */
    test_assert(parse(longline) == 0 && L.f[0].vlen == LOGFMT_MAX_LINE - 2);
    char key[80];
    memset(key, 'k', sizeof key);
    memcpy(key + LOGFMT_MAX_KEY, "=1", 3);
    test_assert(parse(key) == 0);
    memset(key, 'k', sizeof key);
    memcpy(key + LOGFMT_MAX_KEY + 1, "=1", 3);
    test_assert(parse(key) == -1);
    free(longline);
    test_end();
}

/* ------------------------------------------------------------ rotation */

#define NTHREADS 8
#define NLINES 600

static void *logger(void *arg)
{
    int t = (int)(long)arg;
    for (int i = 0; i < NLINES; i++)
        log_info("test", "event=t thread=%d seq=%d pad=\"%s\"", t, i,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    return NULL;
}

/* Reads FILE's lines, checking each thread's sequence. */
static int read_file(const char *path, int next[NTHREADS], int *lines, int *bad)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (logfmt_parse(&L, line, (size_t)n) < 0) {
            (*bad)++;
            continue;
        }
        const char *th = logfmt_get(&L, "thread"), *sq = logfmt_get(&L, "seq");
        if (!th || !sq) {
            (*bad)++;
            continue;
        }
        int t = atoi(th), s = atoi(sq);
        if (t < 0 || t >= NTHREADS || s != next[t])
            (*bad)++;
        else
            next[t]++;
        (*lines)++;
    }
    free(line);
    fclose(f);
    return 0;
}

static void test_rotation_threads(void)
{
    test_begin("log rotation: 8 threads across many rotations, nothing lost, order kept");
    const char *dir = test_tmpdir();
    test_assert(log_open_dir(dir) == 0);
    log_set_rotation(4096, 1000);
    pthread_t th[NTHREADS];
    for (long t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, logger, (void *)t);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    log_close();
    int next[NTHREADS] = {0}, lines = 0, bad = 0, files = 0;
    char path[4200];
    int maxn = 0;
    for (int i = 1; i < 2000; i++) {
        snprintf(path, sizeof path, "%s/roost.log.%d", dir, i);
        if (access(path, F_OK) != 0)
            break;
        maxn = i;
    }
    test_assert(maxn > 10);
    for (int i = maxn; i >= 1; i--) { /* oldest first */
        snprintf(path, sizeof path, "%s/roost.log.%d", dir, i);
        struct stat st;
        test_assert(stat(path, &st) == 0 && st.st_size >= 4096 && st.st_size < 4096 + 200);
        test_assert(read_file(path, next, &lines, &bad) == 0);
        files++;
    }
    snprintf(path, sizeof path, "%s/roost.log", dir);
    test_assert(read_file(path, next, &lines, &bad) == 0);
    test_assert(bad == 0);
    test_assert(lines == NTHREADS * NLINES);
    for (int t = 0; t < NTHREADS; t++)
        test_assert(next[t] == NLINES);
    test_end();
}

static void test_rotation_keep(void)
{
    test_begin("log rotation: keep=3 keeps roost.log.1..3, the newest lines");
    const char *dir = test_tmpdir();
    test_assert(log_open_dir(dir) == 0);
    log_set_rotation(1000, 3);
    for (int i = 0; i < 200; i++)
        log_info("test", "event=k seq=%d", i);
    log_close();
    char path[4200];
    for (int i = 1; i <= 3; i++) {
        snprintf(path, sizeof path, "%s/roost.log.%d", dir, i);
        test_assert(access(path, F_OK) == 0);
    }
    snprintf(path, sizeof path, "%s/roost.log.4", dir);
    test_assert(access(path, F_OK) != 0);
    /* the newest line is in roost.log (or, right after a rotation, .1) */
    snprintf(path, sizeof path, "%s/roost.log", dir);
    FILE *f = fopen(path, "r");
    char buf[256], last[256] = "";
    while (f && fgets(buf, sizeof buf, f))
        snprintf(last, sizeof last, "%s", buf);
    if (f)
        fclose(f);
    if (!last[0]) {
        snprintf(path, sizeof path, "%s/roost.log.1", dir);
        f = fopen(path, "r");
        while (f && fgets(buf, sizeof buf, f))
            snprintf(last, sizeof last, "%s", buf);
        if (f)
            fclose(f);
    }
    test_assert(strstr(last, "seq=199") != NULL);
    log_set_rotation(0, 10);
    test_end();
}

static void test_config_log(void)
{
    test_begin("config: [log] max_size and keep, defaults and errors");
    struct config cfg;
    char *errors = NULL;
    test_assert(config_load_string("[listeners]\nsmtp = 127.0.0.1:25\n", "t", &cfg, &errors) == 0);
    test_assert(cfg.log_max_size == 100u * 1024 * 1024 && cfg.log_keep == 10);
    config_free(&cfg);
    test_assert(config_load_string("[listeners]\nsmtp = 127.0.0.1:25\n[log]\nmax_size = 4K\n"
                                   "keep = 3\n", "t", &cfg, &errors) == 0);
    test_assert(cfg.log_max_size == 4096 && cfg.log_keep == 3);
    config_free(&cfg);
    test_assert(config_load_string("[listeners]\nsmtp = 127.0.0.1:25\n[log]\nmax_size = 0\n",
                                   "t", &cfg, &errors) == 0 && cfg.log_max_size == 0);
    config_free(&cfg);
    test_assert(config_load_string("[listeners]\nsmtp = 127.0.0.1:25\n[log]\nkeep = 0\n"
                                   "max_size = big\nsize = 1\n", "t", &cfg, &errors) < 0);
    test_assert(errors && strstr(errors, "t:4: keep") && strstr(errors, "t:5: max_size") &&
                strstr(errors, "t:6: unknown key 'size' in [log]"));
    free(errors);
    config_free(&cfg);
    test_end();
}

static void test_times(void)
{
    test_begin("roost log times: dates, date-times, durations ago; bad ones refused");
    time_t now = 1764745200; /* 2025-12-03T07:00:00Z */
    time_t t;
    char ts[32];
    test_assert(logread_parse_time("2026-12-03", now, &t) == 0);
    logread_ts(t, 0, ts);
    test_assert_streq(ts, "2026-12-03T00:00:00.000Z");
    test_assert(logread_parse_time("2026-12-03T10:05", now, &t) == 0);
    logread_ts(t, 1, ts);
    test_assert_streq(ts, "2026-12-03T10:05:00.999Z");
    test_assert(logread_parse_time("2026-12-03 10:05:30Z", now, &t) == 0);
    test_assert(logread_ts_parse("2026-12-03T10:05:30.123Z") == t);
    test_assert(logread_parse_time("90m", now, &t) == 0 && t == now - 5400);
    test_assert(logread_parse_time("2d", now, &t) == 0 && t == now - 2 * 86400);
    test_assert(logread_parse_time("1w", now, &t) == 0 && t == now - 7 * 86400);
    const char *bad[] = {"", "1", "1y", "h", "-1h", "2026-1-03", "2026-02-30", "2026-12-03T",
                         "2026-12-03T24:00", "2026-12-03T10", "2026-12-03T10:00:00:00",
                         "2026-12-03X10:00", "2026/12/03", "1969-12-31", "2026-12-03T1:00",
                         "2026-12-03T10:00.5", "now"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int r = logread_parse_time(bad[i], now, &t);
        if (r != -1)
            fprintf(stderr, "accepted time: '%s'\n", bad[i]);
        test_assert(r == -1);
    }
    test_end();
}

static void test_json_and_set(void)
{
    test_begin("roost log: JSON strings and the id set");
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    const char s[] = "a\"b\\c\n\x01 caf\xc3\xa9 bad\xff\xc3";
    logread_json_str(f, s, sizeof s - 1);
    fclose(f);
    test_assert_streq(out, "\"a\\\"b\\\\c\\u000a\\u0001 caf\xc3\xa9 bad\\u00ff\\u00c3\"");
    free(out);
    struct logset set = {0};
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "Q%d", i);
        logset_add(&set, id);
        logset_add(&set, id);
    }
    test_assert(set.n == 1000);
    test_assert(logset_has(&set, "Q0") && logset_has(&set, "Q999") && !logset_has(&set, "Q1000"));
    test_assert(!logset_has(&set, NULL));
    logset_add(&set, "");
    test_assert(set.n == 1000);
    logset_free(&set);
    test_assert(!logset_has(&set, "Q0"));
    test_end();
}

int main(void)
{
    log_set_stderr(0);
    return test_run((test_fn[]){test_parse_basic, test_parse_quoted, test_parse_bad,
                                test_rotation_threads, test_rotation_keep, test_config_log,
                                test_times, test_json_and_set, NULL});
}
