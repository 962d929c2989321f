/* config: roost.conf parsing on inih, validation with line numbers, and the
 * defaults for the development and production instances.
 *
 * inih calls our reader once per physical line, so the reader counts lines
 * and every error can name its line (inih itself only reports the first).
 * Lines longer than inih's buffer are refused by the reader itself. */
#include "core/config.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const kind_names[LK_COUNT] = {"smtp", "submission", "submissions", "pop3",
                                                 "pop3s", "imap", "imaps"};

const char *listener_kind_name(enum listener_kind k)
{
    return (k >= 0 && k < LK_COUNT) ? kind_names[k] : "?";
}

int listener_kind_parse(const char *s, enum listener_kind *k_r)
{
    for (int i = 0; i < LK_COUNT; i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *k_r = (enum listener_kind)i;
            return 0;
        }
    return -1;
}

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = xstrdup(v);
}

static void add_listener(struct config *cfg, enum listener_kind k, const char *host, int port)
{
    struct listener_conf *l = &cfg->listeners[cfg->nlisteners++];
    l->kind = k;
    snprintf(l->host, sizeof l->host, "%s", host);
    l->port = port;
}

void config_defaults(struct config *cfg, int dev)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dev = dev;
    char host[256] = "localhost";
    if (!dev && gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    cfg->hostname = xstrdup(dev ? "localhost" : host);
    cfg->user = xstrdup(dev ? "" : "roost");
    cfg->max_message_size = SMTP_DEFAULT_MAX_MESSAGE;
    cfg->max_recipients = SMTP_DEFAULT_MAX_RCPT;
    cfg->max_connections = NET_DEFAULT_MAX_CONNECTIONS;
    cfg->max_connections_per_ip = NET_DEFAULT_MAX_PER_IP;
    cfg->idle_timeout = SMTP_DEFAULT_IDLE_TIMEOUT;
    cfg->session_timeout = SMTP_DEFAULT_SESSION_TIMEOUT;
    cfg->workers = 4;
    cfg->log_level = xstrdup("info");
    cfg->log_max_size = 100ULL * 1024 * 1024;
    cfg->log_keep = 10;
    cfg->compact_interval = 3600;   /* [store]: docs/storage.md, "Compaction" */
    cfg->compact_grace = 3600;
    /* argon2id: 19 MiB, 2 passes, 1 lane (OWASP's first recommendation);
     * measured in docs/security.md. */
    cfg->argon2_t_cost = 2;
    cfg->argon2_m_cost_kib = 19456;
    cfg->argon2_parallelism = 1;
    config_http_defaults(&cfg->http);
    static const unsigned retry[] = { 300, 600, 1200, 2400, 3600, 7200, 14400 };
    for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++)
        cfg->queue_retry[cfg->queue_nretry++] = retry[i];
    cfg->queue_max_age = 5 * 86400;
    cfg->queue_delay_warning = 4 * 3600;
    cfg->queue_max_remote = 100;
    cfg->queue_max_per_domain = 20;
    config_outbound_defaults(cfg);
    if (dev) {
        add_listener(cfg, LK_SMTP, "127.0.0.1", 2525);
        add_listener(cfg, LK_SUBMISSION, "127.0.0.1", 2587);
        add_listener(cfg, LK_SUBMISSIONS, "127.0.0.1", 2465);
        add_listener(cfg, LK_POP3, "127.0.0.1", 2110);
        add_listener(cfg, LK_POP3S, "127.0.0.1", 2995);
        add_listener(cfg, LK_IMAP, "127.0.0.1", 2143);
        add_listener(cfg, LK_IMAPS, "127.0.0.1", 2993);
    }
}

void config_http_defaults(struct http_conf *h)
{
    memset(h, 0, sizeof *h);
    h->nlisten = 1;
    snprintf(h->listen[0].host, sizeof h->listen[0].host, "127.0.0.1");
    h->listen[0].port = 8080;
    h->max_connections = 100;
    h->timeout = 30;
    h->mta_sts_mode = MTA_STS_TESTING;
    h->mta_sts_max_age = 604800;
}

void config_free(struct config *cfg)
{
    free(cfg->path);
    free(cfg->hostname);
    free(cfg->data_dir);
    free(cfg->user);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->log_level);
    config_outbound_free(cfg);
    memset(cfg, 0, sizeof *cfg);
}

int config_parse_hostport(const char *s, char *host, size_t hostsz, int *port_r)
{
    const char *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        hlen = (size_t)(rb - s - 1);
        s++;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen >= hostsz)
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (hlen == 0)
        snprintf(host, hostsz, "0.0.0.0");
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
        return -1;
    *port_r = (int)port;
    return 0;
}

/* ---- parsing ---- */

struct parse_ctx {
    struct config *cfg;
    const char *name;
    const char *text;
    size_t pos, len;
    int line;
    int listeners_given;
    struct buf errors;
    int nerrors;
};

static void perr(struct parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(struct parse_ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (buf_appendf(&c->errors, "%s:%d: %s\n", c->name, c->line, msg) < 0) {
        /* error text is bounded; drop further messages */
    }
    c->nerrors++;
}

/* inih reader: one physical line per call, counting lines. */
static char *reader(char *str, int num, void *stream)
{
    struct parse_ctx *c = stream;
    if (c->pos >= c->len)
        return NULL;
    const char *start = c->text + c->pos;
    const char *nl = memchr(start, '\n', c->len - c->pos);
    size_t linelen = nl ? (size_t)(nl - start) + 1 : c->len - c->pos;
    c->pos += linelen;
    c->line++;
    if (memchr(start, '\0', linelen)) {
        perr(c, "NUL byte in line");
        snprintf(str, (size_t)num, ";\n");
        return str;
    }
    if (linelen + 1 > (size_t)num) {
        perr(c, "line too long (at most %d characters)", num - 2);
        snprintf(str, (size_t)num, ";\n");
        return str;
    }
    memcpy(str, start, linelen);
    str[linelen] = '\0';
    return str;
}

static int parse_uint(const char *v, unsigned long long max, unsigned long long *out)
{
    if (!isdigit((unsigned char)v[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || n > max)
        return -1;
    /* optional K/M/G suffix for sizes */
    unsigned long long mult = 1;
    if (*end == 'K' || *end == 'k') mult = 1024ULL, end++;
    else if (*end == 'M' || *end == 'm') mult = 1024ULL * 1024, end++;
    else if (*end == 'G' || *end == 'g') mult = 1024ULL * 1024 * 1024, end++;
    if (*end)
        return -1;
    if (n > max / mult)
        return -1;
    *out = n * mult;
    return 0;
}

static int set_int(struct parse_ctx *c, const char *key, const char *v, unsigned long long lo,
                   unsigned long long hi, unsigned long long *out)
{
    if (parse_uint(v, hi, out) < 0 || *out < lo) {
        char range[64];
        snprintf(range, sizeof range, "%llu..%llu", lo, hi);
        perr(c, "%s: expected a number in %s", key, range);
        return -1;
    }
    return 0;
}

int config_parse_duration(const char *s, unsigned *seconds_r)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    unsigned long long mult = 1;
    if (*end == 's') mult = 1, end++;
    else if (*end == 'm') mult = 60, end++;
    else if (*end == 'h') mult = 3600, end++;
    else if (*end == 'd') mult = 86400, end++;
    if (errno || *end || n > 366ULL * 86400 / mult)
        return -1;
    *seconds_r = (unsigned)(n * mult);
    return 0;
}

/* [queue] retry_schedule = 5m 10m 20m ... */
static void handle_retry_schedule(struct parse_ctx *c, const char *value)
{
    struct config *cfg = c->cfg;
    unsigned steps[CONFIG_MAX_RETRY_STEPS];
    int n = 0;
    char *copy = xstrdup(value);
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
        unsigned d;
        if (n >= CONFIG_MAX_RETRY_STEPS) {
            perr(c, "retry_schedule: at most %d steps", CONFIG_MAX_RETRY_STEPS);
            free(copy);
            return;
        }
        if (config_parse_duration(tok, &d) < 0 || d == 0) {
            perr(c, "retry_schedule: '%s' is not a duration (e.g. 30s, 5m, 1h)", tok);
            free(copy);
            return;
        }
        steps[n++] = d;
    }
    free(copy);
    if (n == 0) {
        perr(c, "retry_schedule: expected durations such as '5m 10m 20m 40m 1h 2h 4h'");
        return;
    }
    memcpy(cfg->queue_retry, steps, sizeof steps[0] * (size_t)n);
    cfg->queue_nretry = n;
}

static void handle_queue(struct parse_ctx *c, const char *name, const char *value)
{
    struct config *cfg = c->cfg;
    unsigned d;
    unsigned long long n;
    if (strcmp(name, "retry_schedule") == 0) {
        handle_retry_schedule(c, value);
    } else if (strcmp(name, "max_age") == 0 || strcmp(name, "delay_warning") == 0) {
        int is_age = name[0] == 'm';
        if (config_parse_duration(value, &d) < 0 || (is_age && d == 0))
            perr(c, "%s: '%s' is not a duration (e.g. 30s, 4h, 5d)", name, value);
        else if (is_age)
            cfg->queue_max_age = d;
        else
            cfg->queue_delay_warning = d;
    } else if (strcmp(name, "max_remote_attempts") == 0) {
        if (set_int(c, name, value, 1, 100000, &n) == 0)
            cfg->queue_max_remote = (int)n;
    } else if (strcmp(name, "max_attempts_per_domain") == 0) {
        if (set_int(c, name, value, 1, 100000, &n) == 0)
            cfg->queue_max_per_domain = (int)n;
    } else {
        perr(c, "unknown key '%s' in [queue]", name);
    }
}

static void handle_listeners(struct parse_ctx *c, const char *name, const char *value)
{
    enum listener_kind k;
    if (listener_kind_parse(name, &k) < 0) {
        perr(c, "unknown listener kind '%s' (smtp, submission, submissions, pop3, pop3s, imap, imaps)", name);
        return;
    }
    if (!c->listeners_given) {
        c->cfg->nlisteners = 0;
        c->listeners_given = 1;
    }
    char *copy = xstrdup(value);
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
        char host[256];
        int port;
        if (config_parse_hostport(tok, host, sizeof host, &port) < 0) {
            perr(c, "%s: '%s' is not ADDRESS:PORT", name, tok);
            continue;
        }
        if (c->cfg->nlisteners >= CONFIG_MAX_LISTENERS) {
            perr(c, "too many listeners");
            break;
        }
        add_listener(c->cfg, k, host, port);
    }
    free(copy);
}

static void handle_http_listen(struct parse_ctx *c, const char *value)
{
    struct http_conf *h = &c->cfg->http;
    h->nlisten = 0;
    char *copy = xstrdup(value);
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
        if (h->nlisten >= CONFIG_MAX_HTTP_LISTENERS) {
            perr(c, "listen: at most %d addresses", CONFIG_MAX_HTTP_LISTENERS);
            break;
        }
        if (config_parse_hostport(tok, h->listen[h->nlisten].host,
                                  sizeof h->listen[h->nlisten].host,
                                  &h->listen[h->nlisten].port) < 0) {
            perr(c, "listen: '%s' is not ADDRESS:PORT", tok);
            continue;
        }
        h->nlisten++;
    }
    free(copy);
}

static int parse_onoff(const char *v)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
        return 1;
    if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
        return 0;
    return -1;
}

static void handle_http(struct parse_ctx *c, const char *name, const char *value)
{
    struct http_conf *h = &c->cfg->http;
    unsigned long long n;
    if (strcmp(name, "listen") == 0) {
        handle_http_listen(c, value);
    } else if (strcmp(name, "tls") == 0) {
        int v = parse_onoff(value);
        if (v < 0)
            perr(c, "tls: '%s' is not on or off", value);
        else
            h->tls = v;
    } else if (strcmp(name, "metrics") == 0) {
        if (strcmp(value, "local") == 0)
            h->metrics_public = 0;
        else if (strcmp(value, "public") == 0)
            h->metrics_public = 1;
        else
            perr(c, "metrics: '%s' is not local or public", value);
    } else if (strcmp(name, "max_connections") == 0) {
        if (set_int(c, name, value, 1, 100000, &n) == 0)
            h->max_connections = (int)n;
    } else if (strcmp(name, "timeout") == 0) {
        if (set_int(c, name, value, 1, 3600, &n) == 0)
            h->timeout = (int)n;
    } else if (strcmp(name, "mta_sts_mode") == 0) {
        if (strcmp(value, "testing") == 0)
            h->mta_sts_mode = MTA_STS_TESTING;
        else if (strcmp(value, "enforce") == 0)
            h->mta_sts_mode = MTA_STS_ENFORCE;
        else if (strcmp(value, "none") == 0)
            h->mta_sts_mode = MTA_STS_NONE;
        else
            perr(c, "mta_sts_mode: '%s' is not testing, enforce or none", value);
    } else if (strcmp(name, "mta_sts_max_age") == 0) {
        /* RFC 8461 §3.2: at most 31557600 (about one year) */
        if (set_int(c, name, value, 1, 31557600, &n) == 0)
            h->mta_sts_max_age = (long)n;
    } else {
        perr(c, "unknown key '%s' in [http]", name);
    }
}

/* [store]: pack compaction (docs/storage.md, "Compaction"). */
static void handle_store(struct parse_ctx *c, const char *name, const char *value)
{
    unsigned d;
    int interval = strcmp(name, "compact_interval") == 0;
    if (!interval && strcmp(name, "compact_grace") != 0) {
        perr(c, "unknown key '%s' in [store]", name);
    } else if (config_parse_duration(value, &d) < 0 || d > 30u * 86400) {
        perr(c, "%s: '%s' is not a duration of at most 30d (e.g. 0, 30m, 1h)", name, value);
    } else if (interval) {
        c->cfg->compact_interval = d;
    } else {
        c->cfg->compact_grace = d;
    }
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    struct config *cfg = c->cfg;
    unsigned long long n;
    if (strcmp(section, "server") == 0) {
        if (strcmp(name, "hostname") == 0) {
            if (!*value || strlen(value) > SMTP_MAX_DOMAIN || strpbrk(value, " \t<>@"))
                perr(c, "hostname: '%s' is not a host name", value);
            else
                set_str(&cfg->hostname, value);
        } else if (strcmp(name, "data_dir") == 0) {
            if (value[0] != '/')
                perr(c, "data_dir: must be an absolute path");
            else
                set_str(&cfg->data_dir, value);
        } else if (strcmp(name, "user") == 0) {
            set_str(&cfg->user, value);
        } else if (strcmp(name, "workers") == 0) {
            if (set_int(c, name, value, 1, 256, &n) == 0)
                cfg->workers = (int)n;
        } else if (strcmp(name, "loops") == 0) {
            if (set_int(c, name, value, 0, 64, &n) == 0)
                cfg->loops = (int)n;
        } else if (strcmp(name, "log_level") == 0) {
            if (strcmp(value, "debug") && strcmp(value, "info") && strcmp(value, "warn") &&
                strcmp(value, "error"))
                perr(c, "log_level: '%s' is not debug, info, warn or error", value);
            else
                set_str(&cfg->log_level, value);
        } else {
            perr(c, "unknown key '%s' in [%s]", name, section);
        }
    } else if (strcmp(section, "listeners") == 0) {
        handle_listeners(c, name, value);
    } else if (strcmp(section, "tls") == 0) {
        if (strcmp(name, "cert") == 0)
            set_str(&cfg->tls_cert, value);
        else if (strcmp(name, "key") == 0)
            set_str(&cfg->tls_key, value);
        else
            perr(c, "unknown key '%s' in [%s]", name, section);
    } else if (strcmp(section, "limits") == 0) {
        if (strcmp(name, "max_message_size") == 0) {
            if (set_int(c, name, value, 1024, 1ULL << 31, &n) == 0)
                cfg->max_message_size = (size_t)n;
        } else if (strcmp(name, "max_recipients") == 0) {
            if (set_int(c, name, value, 1, 100000, &n) == 0)
                cfg->max_recipients = (int)n;
        } else if (strcmp(name, "max_connections") == 0) {
            if (set_int(c, name, value, 1, 1000000, &n) == 0)
                cfg->max_connections = (int)n;
        } else if (strcmp(name, "max_connections_per_ip") == 0) {
            if (set_int(c, name, value, 1, 1000000, &n) == 0)
                cfg->max_connections_per_ip = (int)n;
        } else if (strcmp(name, "idle_timeout") == 0) {
            if (set_int(c, name, value, 1, 86400, &n) == 0)
                cfg->idle_timeout = (int)n;
        } else if (strcmp(name, "session_timeout") == 0) {
            if (set_int(c, name, value, 1, 7 * 86400, &n) == 0)
                cfg->session_timeout = (int)n;
        } else {
            perr(c, "unknown key '%s' in [%s]", name, section);
        }
    } else if (strcmp(section, "auth") == 0) {
        if (strcmp(name, "argon2_t_cost") == 0) {
            if (set_int(c, name, value, 1, 100, &n) == 0)
                cfg->argon2_t_cost = (unsigned)n;
        } else if (strcmp(name, "argon2_memory_kib") == 0) {
            if (set_int(c, name, value, 8, 4 * 1024 * 1024, &n) == 0)
                cfg->argon2_m_cost_kib = (unsigned)n;
        } else if (strcmp(name, "argon2_parallelism") == 0) {
            if (set_int(c, name, value, 1, 64, &n) == 0)
                cfg->argon2_parallelism = (unsigned)n;
        } else {
            perr(c, "unknown key '%s' in [%s]", name, section);
        }
    } else if (strcmp(section, "log") == 0) {
        if (strcmp(name, "max_size") == 0) {
            if (set_int(c, name, value, 0, 1ULL << 40, &n) == 0)
                cfg->log_max_size = (size_t)n;
        } else if (strcmp(name, "keep") == 0) {
            if (set_int(c, name, value, 1, 1000, &n) == 0)
                cfg->log_keep = (int)n;
        } else {
            perr(c, "unknown key '%s' in [%s]", name, section);
        }
    } else if (strcmp(section, "store") == 0) {
        handle_store(c, name, value);
    } else if (strcmp(section, "http") == 0) {
        handle_http(c, name, value);
    } else if (strcmp(section, "queue") == 0 && strcmp(name, "retry_unit_ms") != 0) {
        handle_queue(c, name, value);
    } else if (strcmp(section, "outbound") == 0 || strcmp(section, "transport") == 0 ||
               strcmp(section, "queue") == 0) {
        char err[512];
        if (config_outbound_key(cfg, section, name, value, err, sizeof err) < 0)
            perr(c, "%s", err);
    } else if (!section[0]) {
        perr(c, "'%s' is outside any [section]", name);
    } else {
        perr(c, "unknown section [%s]", section);
    }
    return 1; /* keep going: report every error */
}

static void validate(struct parse_ctx *c)
{
    struct config *cfg = c->cfg;
    c->line = 0; /* whole-file checks */
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        perr(c, "[tls] needs both cert and key");
    if (cfg->nlisteners == 0)
        perr(c, "no listeners configured");
    for (int i = 0; i < cfg->nlisteners; i++)
        for (int j = i + 1; j < cfg->nlisteners; j++)
            if (cfg->listeners[i].port == cfg->listeners[j].port &&
                strcmp(cfg->listeners[i].host, cfg->listeners[j].host) == 0)
                perr(c, "two listeners on %s port %d", cfg->listeners[i].host, cfg->listeners[i].port);
    for (int i = 0; i < cfg->http.nlisten; i++)
        for (int j = 0; j < cfg->nlisteners; j++)
            if (cfg->http.listen[i].port == cfg->listeners[j].port &&
                strcmp(cfg->http.listen[i].host, cfg->listeners[j].host) == 0)
                perr(c, "[http] listen %s port %d is also a mail listener",
                     cfg->http.listen[i].host, cfg->http.listen[i].port);
    for (int i = 0; i < cfg->outbound.ntransport; i++)
        if (cfg->outbound.transport[i].kind == ROUTE_RELAY && !cfg->outbound.relay_host) {
            perr(c, "[transport] %s = relay, but [outbound] has no relay", cfg->outbound.transport[i].domain);
            break;
        }
}

int config_load_string(const char *text, const char *name, struct config *cfg, char **errors_r)
{
    struct parse_ctx c = {.cfg = cfg, .name = name, .text = text, .len = strlen(text)};
    buf_init(&c.errors, 64 * 1024);
    config_defaults(cfg, 0);
    add_listener(cfg, LK_SMTP, "0.0.0.0", 25);
    add_listener(cfg, LK_SUBMISSION, "0.0.0.0", 587);
    add_listener(cfg, LK_SUBMISSIONS, "0.0.0.0", 465);
    add_listener(cfg, LK_POP3, "0.0.0.0", 110);
    add_listener(cfg, LK_POP3S, "0.0.0.0", 995);
    add_listener(cfg, LK_IMAP, "0.0.0.0", 143);
    add_listener(cfg, LK_IMAPS, "0.0.0.0", 993);
    int r = ini_parse_stream(reader, &c, handler, &c);
    if (r > 0) {
        c.line = r;
        perr(&c, "syntax error (expected [section] or key = value)");
    } else if (r < 0) {
        perr(&c, "cannot parse");
    }
    if (c.nerrors == 0)
        validate(&c);
    if (c.nerrors) {
        if (errors_r)
            *errors_r = buf_steal(&c.errors, NULL);
        else
            buf_deinit(&c.errors);
        return -1;
    }
    buf_deinit(&c.errors);
    if (errors_r)
        *errors_r = NULL;
    return 0;
}

int config_load(const char *path, struct config *cfg, char **errors_r)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        config_defaults(cfg, 0);
        if (errors_r)
            *errors_r = xasprintf("%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    struct buf text;
    buf_init(&text, 1024 * 1024);
    char chunk[4096];
    size_t n;
    int toobig = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&text, chunk, n) < 0) {
            toobig = 1;
            break;
        }
    fclose(f);
    if (toobig) {
        buf_deinit(&text);
        config_defaults(cfg, 0);
        if (errors_r)
            *errors_r = xasprintf("%s: file larger than 1 MiB\n", path);
        return -1;
    }
    if (memchr(text.data ? text.data : "", '\0', text.len)) {
        buf_deinit(&text);
        config_defaults(cfg, 0);
        if (errors_r)
            *errors_r = xasprintf("%s: contains a NUL byte\n", path);
        return -1;
    }
    int r = config_load_string(text.data ? text.data : "", path, cfg, errors_r);
    buf_deinit(&text);
    if (r == 0)
        cfg->path = xstrdup(path);
    return r;
}

char *config_resolve_data_dir(const char *explicit_dir, const struct config *cfg)
{
    if (explicit_dir && *explicit_dir)
        return xstrdup(explicit_dir);
    if (cfg && cfg->data_dir)
        return xstrdup(cfg->data_dir);
    const char *env = getenv("ROOST_DATA");
    if (env && *env)
        return xstrdup(env);
    return xstrdup("./roost-data");
}
