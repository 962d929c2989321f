/* mta_sts: policy discovery and the policy cache (RFC 8461 3, 5.1) for
 * the outbound transport (see mta_sts.h).
 *
 * sts_get: TXT "_mta-sts.DOMAIN" -> exactly one "v=STSv1" record gives
 * the policy id (none, several or a malformed one: no id). Then:
 *  - an id, and no unexpired cached policy with that id: fetch (one fetch
 *    per domain at a time; other requests wait for it). A good policy
 *    replaces the cached one (memory, then the file, written by a worker);
 *    a failed fetch keeps an unexpired cached policy in use (5.1), else
 *    no policy;
 *  - otherwise the unexpired cached policy, or no policy. (No TXT record,
 *    or a DNS failure, does not drop a cached policy before its max_age.)
 * Expiry: fetched-at + max_age. Entries in memory are bounded
 * (STS_MAX_ENTRIES); the files live in DATA/queue/mta-sts/DOMAIN, read
 * once at start (sts_set_store). Only plain LDH domain names get a
 * policy (they are also the file names). Log lines: comp=outbound
 * event=mta-sts-fetched / event=mta-sts outcome=fetch-failed. */
#include "queue/mta_sts.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "dns/dns.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STS_MAX_ENTRIES 10000
#define STS_FILE_MAX (STS_MAX_BODY + 256)

struct sts_entry {
    char domain[256];
    int have;                       /* a policy (text, max_age, id, fetched) */
    char *text;                     /* the policy as served (parsed again when used:
                                     * a parsed policy is large, the text small) */
    size_t tlen;
    long max_age;
    char id[STS_ID_MAX + 1];
    long long fetched;
    struct sts_fetch *fetch;        /* in flight, for fetch_id */
    char fetch_id[STS_ID_MAX + 1];
    struct sts_req *waiters;
    struct sts *s;
    struct sts_entry *next;
};

struct sts_req {
    struct sts *s;
    char domain[256];
    struct dns_txt_req *txt;
    struct sts_entry *wait_on;      /* waiting for its fetch */
    struct sts_req *wnext;
    struct event *ev;               /* immediate answers */
    sts_fn done;
    void *arg;
};

struct sts {
    struct event_base *base;
    struct dns *dns;
    SSL_CTX *ctx;
    int port, timeout_ms;
    char *dir;
    struct worker_pool *pool;
    struct loop *loop;
    struct sts_entry *entries;
    int nentries;
};

/* Only LDH names, as they are also file names. */
static int domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 253 || d[0] == '.' || d[0] == '-' || strstr(d, ".."))
        return 0;
    for (const char *p = d; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

static long long now_s(void)
{
    return (long long)time(NULL);
}

static int entry_valid(const struct sts_entry *e)
{
    return e && e->have && now_s() < e->fetched + e->max_age;
}

static struct sts_entry *entry_find(struct sts *s, const char *domain)
{
    for (struct sts_entry *e = s->entries; e; e = e->next)
        if (strcmp(e->domain, domain) == 0)
            return e;
    return NULL;
}

static void entry_set_text(struct sts_entry *e, const char *text, size_t len)
{
    free(e->text);
    e->text = xmalloc(len + 1);
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    e->tlen = len;
}

/* Room for one more entry: drops an idle one (expired first). */
static void entry_make_room(struct sts *s)
{
    if (s->nentries < STS_MAX_ENTRIES)
        return;
    struct sts_entry **victim = NULL;
    for (struct sts_entry **pp = &s->entries; *pp; pp = &(*pp)->next) {
        struct sts_entry *e = *pp;
        if (e->fetch || e->waiters)
            continue;
        victim = pp;
        if (!entry_valid(e))
            break;
    }
    if (!victim)
        return;
    struct sts_entry *e = *victim;
    *victim = e->next;
    free(e->text);
    free(e);
    s->nentries--;
}

static struct sts_entry *entry_get(struct sts *s, const char *domain)
{
    struct sts_entry *e = entry_find(s, domain);
    if (e)
        return e;
    entry_make_room(s);
    e = xcalloc(1, sizeof *e);
    snprintf(e->domain, sizeof e->domain, "%s", domain);
    e->s = s;
    e->next = s->entries;
    s->entries = e;
    s->nentries++;
    return e;
}

/* ---- the cache files ---- */

struct save_job {
    char *dir, *path, *tmp;
    char *data;
    size_t len;
    char domain[256];
    int err;
};

static void save_work(void *arg)
{
    struct save_job *j = arg;
    int fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fs_write_all(fd, j->data, j->len) < 0 || fsync(fd) < 0) {
        j->err = errno;
        if (fd >= 0)
            close(fd);
        unlink(j->tmp);
        return;
    }
    close(fd);
    if (rename(j->tmp, j->path) < 0 || fs_fsync_dir_path(j->dir) < 0) {
        j->err = errno;
        unlink(j->tmp);
    }
}

static void save_done(void *arg)
{
    struct save_job *j = arg;
    if (j->err)
        log_warn("outbound", "event=mta-sts-cache-error domain=%s error=\"%s\" hint=\"the"
                 " policy is used from memory; check the permissions of DATA/queue/mta-sts\"",
                 j->domain, strerror(j->err));
    free(j->dir);
    free(j->path);
    free(j->tmp);
    free(j->data);
    free(j);
}

static void save_entry(struct sts *s, const struct sts_entry *e, const char *body, size_t len)
{
    if (!s->dir || !s->pool)
        return;
    static unsigned seq;
    struct save_job *j = xcalloc(1, sizeof *j);
    j->dir = xstrdup(s->dir);
    j->path = xasprintf("%s/%s", s->dir, e->domain);
    j->tmp = xasprintf("%s/.tmp.%s.%d.%u", s->dir, e->domain, (int)getpid(), seq++);
    j->data = sts_cache_format(e->id, e->fetched, body, len, &j->len);
    snprintf(j->domain, sizeof j->domain, "%s", e->domain);
    worker_submit(s->pool, s->loop, save_work, save_done, j);
}

/* One cache file at start; expired or malformed ones are left out. */
static void load_file(struct sts *s, int dfd, const char *name)
{
    if (!domain_ok(name) || entry_find(s, name))
        return;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    char *data;
    size_t len;
    int rc = fs_read_regular(fd, STS_FILE_MAX, &data, &len);
    close(fd);
    if (rc < 0)
        return;
    struct sts_entry tmp;
    struct sts_policy pol;
    memset(&tmp, 0, sizeof tmp);
    const char *body = strstr(data, "\n\n");   /* the end of the header */
    if (sts_cache_parse(data, len, tmp.id, &tmp.fetched, &pol) == 0 && body) {
        tmp.have = 1;
        tmp.max_age = pol.max_age;
        if (entry_valid(&tmp)) {
            struct sts_entry *e = entry_get(s, name);
            e->have = 1;
            e->max_age = tmp.max_age;
            e->fetched = tmp.fetched;
            memcpy(e->id, tmp.id, sizeof e->id);
            entry_set_text(e, body + 2, len - (size_t)(body + 2 - data));
        }
    }
    free(data);
}

void sts_set_store(struct sts *s, const char *dir, struct worker_pool *pool, struct loop *loop)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_warn("outbound", "event=mta-sts-cache-error dir=%s error=\"%s\" hint=\"MTA-STS"
                 " policies are cached in memory only\"", dir, strerror(errno));
        return;
    }
    free(s->dir);
    s->dir = xstrdup(dir);
    s->pool = pool;
    s->loop = loop;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) && n < STS_MAX_ENTRIES) {
        if (de->d_name[0] == '.')
            continue;
        load_file(s, dirfd(d), de->d_name);
        n++;
    }
    closedir(d);
    log_debug("outbound", "event=mta-sts-cache-loaded policies=%d", s->nentries);
}

/* ---- requests ---- */

struct sts *sts_new(struct event_base *base, struct dns *dns, SSL_CTX *https_ctx, int port,
                    int timeout_ms)
{
    struct sts *s = xcalloc(1, sizeof *s);
    s->base = base;
    s->dns = dns;
    s->ctx = https_ctx;
    s->port = port;
    s->timeout_ms = timeout_ms;
    return s;
}

static void req_free(struct sts_req *r)
{
    if (r->txt)
        dns_txt_cancel(r->txt);
    if (r->wait_on) {
        for (struct sts_req **pp = &r->wait_on->waiters; *pp; pp = &(*pp)->wnext)
            if (*pp == r) {
                *pp = r->wnext;
                break;
            }
    }
    if (r->ev)
        event_free(r->ev);
    free(r);
}

void sts_cancel(struct sts_req *r)
{
    if (r)
        req_free(r);
}

void sts_free(struct sts **sp)
{
    struct sts *s = *sp;
    if (!s)
        return;
    *sp = NULL;
    while (s->entries) {
        struct sts_entry *e = s->entries;
        s->entries = e->next;
        while (e->waiters)
            req_free(e->waiters);   /* unlinks itself */
        sts_fetch_cancel(e->fetch);
        free(e->text);
        free(e);
    }
    free(s->dir);
    free(s);
}

static void answer(struct sts_req *r, const struct sts_entry *e, const char *source)
{
    r->wait_on = NULL;
    sts_fn done = r->done;
    void *arg = r->arg;
    int use = e && e->have;
    struct sts_policy pol;
    char id[STS_ID_MAX + 1] = "";
    const char *err;
    if (use && sts_parse_policy(e->text, e->tlen, &pol, &err) < 0)
        use = 0;   /* cannot happen: the text was parsed before it was kept */
    if (use)
        memcpy(id, e->id, sizeof id);
    req_free(r);
    done(arg, use ? &pol : NULL, id, source);
}

static void fetch_done(void *arg, int ok, const char *body, size_t len, const char *error)
{
    struct sts_entry *e = arg;
    e->fetch = NULL;
    const char *source = "fetched";
    struct sts_policy pol;
    const char *perr = NULL;
    if (ok && sts_parse_policy(body, len, &pol, &perr) == 0) {
        e->have = 1;
        e->max_age = pol.max_age;
        entry_set_text(e, body, len);
        memcpy(e->id, e->fetch_id, sizeof e->id);
        e->fetched = now_s();
        log_info("outbound", "event=mta-sts-fetched domain=%s id=%s mode=%s max_age=%ld mx=%d",
                 e->domain, e->id, sts_mode_name(pol.mode), pol.max_age, pol.nmx);
        save_entry(e->s, e, body, len);
    } else {
        char qe[LOG_QSIZE];
        char msg[400];
        if (ok)
            snprintf(msg, sizeof msg, "the policy of %s is malformed: %s", e->domain, perr);
        else
            snprintf(msg, sizeof msg, "%s", error);
        int keep = entry_valid(e);
        log_warn("outbound", "event=mta-sts domain=%s outcome=fetch-failed error=%s policy=%s"
                 " hint=\"%s\"", e->domain, log_q(qe, sizeof qe, msg, strlen(msg)),
                 keep ? "cached" : "none",
                 keep ? "the cached policy stays in use until its max_age ends (RFC 8461 5.1)"
                      : "no MTA-STS policy is applied to this domain until a fetch succeeds");
        source = keep ? "cache-after-failure" : "none";
        if (!keep)
            e->have = 0;
    }
    while (e->waiters) {
        struct sts_req *r = e->waiters;
        e->waiters = r->wnext;
        answer(r, e, source);
    }
}

static void txt_done(void *arg, const struct dns_txt_answer *ans)
{
    struct sts_req *r = arg;
    struct sts *s = r->s;
    r->txt = NULL;
    char id[STS_ID_MAX + 1] = "";
    int nsts = 0, bad = 0;
    for (int i = 0; ans->status == DNS_OK && i < ans->n; i++) {
        char one[STS_ID_MAX + 1];
        int rc = sts_parse_txt(ans->txt[i], ans->len[i], one);
        if (rc == 0)
            continue;
        nsts++;
        if (rc < 0)
            bad = 1;
        else
            memcpy(id, one, sizeof id);
    }
    if (nsts != 1 || bad)
        id[0] = '\0';   /* several or malformed: no policy id (RFC 8461 3.1) */
    struct sts_entry *e = entry_find(s, r->domain);
    if (id[0] && !(entry_valid(e) && strcmp(e->id, id) == 0)) {
        e = entry_get(s, r->domain);
        if (!e->fetch) {
            memcpy(e->fetch_id, id, sizeof e->fetch_id);
            e->fetch = sts_fetch_start(s->base, s->dns, s->ctx, r->domain, s->port,
                                       s->timeout_ms, fetch_done, e);
        }
        r->wait_on = e;
        r->wnext = e->waiters;
        e->waiters = r;
        return;
    }
    answer(r, entry_valid(e) ? e : NULL, "cache");
}

static void immediate_cb(evutil_socket_t fd, short what, void *arg)
{
    answer(arg, NULL, "none");
}

struct sts_req *sts_get(struct sts *s, const char *domain, sts_fn done, void *arg)
{
    struct sts_req *r = xcalloc(1, sizeof *r);
    r->s = s;
    r->done = done;
    r->arg = arg;
    snprintf(r->domain, sizeof r->domain, "%s", domain);
    if (!domain_ok(domain)) {
        struct timeval now = {0, 0};
        r->ev = evtimer_new(s->base, immediate_cb, r);
        if (!r->ev || evtimer_add(r->ev, &now) < 0)
            abort();
        return r;
    }
    char name[300];
    snprintf(name, sizeof name, "_mta-sts.%s", domain);
    r->txt = dns_lookup_txt(s->dns, name, txt_done, r);
    return r;
}
