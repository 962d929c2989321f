/* remote: the outbound transport behind queue/remote.h.
 *
 * One attempt = route (config [transport]: MX, relay, smtp:host) -> DNS
 * (dns/dns.h) -> a connection (smtp/smtp_client.h: a new one, or an idle
 * one to the same destination, kept idle_seconds after its last message)
 * -> one transaction -> one result per recipient -> DONE.
 *
 * Destinations are keyed "mx:DOMAIN", "relay" or "smtp:HOST:PORT". Each
 * counts its connections (connecting, busy or idle) against
 * max_connections_per_destination, and all of them against
 * max_connections; attempts over a limit wait on their destination's queue
 * and start when a connection is handed back or closed.
 *
 * Everything here runs on the queue's loop; the state is one struct remote
 * created by remote_start and freed by remote_stop (which answers every
 * attempt still in flight with DEFERRED, "shutting down").
 *
 * DANE (RFC 7672): with a DNSSEC trust anchor ([outbound]
 * dnssec_trust_anchor, Debian's root key by default) the resolver
 * validates and looks up TLSA records for MX hosts (dns/dns.h); dns_done
 * turns each host's outcome into its targets' DANE policy for the SMTP
 * client (smtp/smtp_client.h).
 *
 * MTA-STS (RFC 8461, [outbound] mta_sts, on by default): for MX routes
 * the recipient domain's policy is asked for first (queue/mta_sts.h);
 * dns_done applies it: enforce keeps only the MX hosts the policy names
 * (DANE hosts are judged by DANE alone, RFC 8461 2) and requires
 * verified STARTTLS, as tls_required_domains does; testing delivers as
 * without it and logs what enforce would have refused.
 *
 * Log lines (comp=outbound): event=attempt, one per recipient outcome;
 * event=connect-failed / tls-failed / auth-failed come from smtp_client.c. */
#include "queue/remote.h"
#include "core/config.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "dns/dns.h"
#include "queue/mta_sts.h"
#include "smtp/smtp_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

struct dest;

struct attempt {
    struct remote *rm;
    struct dest *d;
    struct attempt *next;          /* the destination's wait queue, or the busy list */
    struct attempt *bprev, *bnext; /* every attempt not yet answered */
    const struct spool_msg *msg;
    char domain[256];
    int nrcpt;
    int *idx;
    const char **addrs;
    struct smtpc_rcpt_result *res;
    struct smtpc_tx tx;
    const struct transport_route *route;
    remote_done_fn done;
    void *arg;
    struct dns_req *dns;
    struct sts_req *sts;           /* the MTA-STS policy lookup */
    int sts_asked;                 /* the policy is known (sts_pol, or none) */
    int sts_have;
    struct sts_policy sts_pol;
    char sts_id[STS_ID_MAX + 1];
    char sts_source[24];
    struct smtpc *conn;            /* while connecting or sending */
    int connecting;
    int fresh_retry;               /* a stale reused connection was replaced */
    char remote_host[400];
    char tls[128];
};

struct idle_conn {
    struct smtpc *c;
    struct dest *d;
    struct event *timer;
    struct idle_conn *next;
};

/* A connection whose transaction is answered, kept from the next message
 * until the scheduler has recorded the results (remote_hold_release). */
struct remote_hold {
    struct remote_hold *prev, *next;   /* rm->holds */
    struct dest *d;                    /* NULL once remote_stop closed it */
    struct smtpc *c;                   /* NULL: the connection had died */
};

struct dest {
    char key[300];
    int conns;                     /* connecting, busy or idle */
    struct idle_conn *idle;
    struct attempt *wait_head, *wait_tail;
    struct dest *next;
};

struct remote {
    const struct config *cfg;
    struct loop *loop;
    struct event_base *base;
    struct dns *dns;
    SSL_CTX *ctx_opportunistic, *ctx_mx_verify, *ctx_relay;
    SSL_CTX *ctx_dane;             /* SSL_CTX_dane_enable'd; NULL without DNSSEC */
    SSL_CTX *ctx_https;            /* MTA-STS policy fetches; NULL: mta_sts = no */
    struct sts *sts;
    char *relay_user, *relay_pass;
    struct stat auth_st;           /* relay_auth_file as last read */
    int conns;
    struct dest *dests;
    struct attempt *busy;          /* every attempt in flight */
    struct remote_hold *holds;     /* answered, results not yet recorded */
    char source4[16], source6[46]; /* outbound source addresses (source_for) */
    struct event *pump_ev;
};

static struct remote *rm_global;   /* the queue loop's thread only */

/* The source address of outbound connections of FAMILY into OUT: [outbound]
 * source_address, else the address the port 25 listener is bound to when
 * that is one specific, non-loopback address of FAMILY (mail then leaves
 * from the address its MX record names, which the receivers' SPF and
 * reverse-DNS checks look at), else "" (the kernel's choice). */
static void source_for(const struct config *cfg, int family, char *out, size_t outsz)
{
    const char *set = family == AF_INET6 ? cfg->outbound.source6 : cfg->outbound.source4;
    out[0] = '\0';
    if (cfg->outbound.source4[0] || cfg->outbound.source6[0]) {
        snprintf(out, outsz, "%s", set);
        return;
    }
    const char *found = NULL;
    for (int i = 0; i < cfg->nlisteners; i++) {
        const struct listener_conf *l = &cfg->listeners[i];
        unsigned char a[16];
        if (l->kind != LK_SMTP || inet_pton(family, l->host, a) != 1)
            continue;
        int wildcard = family == AF_INET6 ? memcmp(a, &in6addr_any, 16) == 0
                                          : memcmp(a, "\0\0\0\0", 4) == 0;
        int loopback = family == AF_INET6 ? memcmp(a, &in6addr_loopback, 16) == 0 : a[0] == 127;
        if (wildcard || loopback || (found && strcmp(found, l->host) != 0))
            return;   /* not one specific public address: leave it to the kernel */
        found = l->host;
    }
    if (found)
        snprintf(out, outsz, "%s", found);
}

static void attempt_start(struct attempt *at);
static void sts_done(void *arg, const struct sts_policy *pol, const char *id,
                     const char *source);
static void attempt_finish(struct attempt *at, struct remote_hold *hold);
static void dns_done(void *arg, const struct dns_answer *ans);
static void conn_ready(void *arg, struct smtpc *c, const struct smtpc_conn_result *res);
static void tx_done(void *arg, struct smtpc *c, int alive);
static void conn_release(struct remote *rm, struct dest *d, struct smtpc *c);
static void pump(struct remote *rm);

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    pump(arg);
}

/* Runs pump at the next loop iteration (never inside remote_deliver). */
static void pump_later(struct remote *rm)
{
    struct timeval now = {0, 0};
    evtimer_add(rm->pump_ev, &now);
}

/* ---- start and stop ---- */

static SSL_CTX *client_ctx(const char *cafile, int verify, const char **error_r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *error_r = "cannot create a TLS client context";
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (verify) {
        int ok = cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
                        : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            *error_r = cafile ? "cannot load the CA file (tls_ca_file / relay_ca_file)"
                              : "cannot load the system CA store";
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    ERR_clear_error();
    return ctx;
}

/* relay_auth_file: "username password" on one line, or the username on the
 * first line and the password on the second. Only Roost's user may read it. */
static int read_auth_file(struct remote *rm, const char *path, const char **error_r)
{
    static char err[600];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, sizeof err, "relay_auth_file %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        *error_r = err;
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid()) {
        snprintf(err, sizeof err, "relay_auth_file %s: must be a file owned by Roost's user"
                 " and readable by it alone (chmod 600)", path);
        close(fd);
        *error_r = err;
        return -1;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || n >= (ssize_t)sizeof buf - 1) {
        snprintf(err, sizeof err, "relay_auth_file %s: empty, unreadable or larger than 4 KiB", path);
        *error_r = err;
        return -1;
    }
    buf[n] = '\0';
    char *line1 = buf, *line2 = strchr(buf, '\n');
    if (line2)
        *line2++ = '\0';
    line1[strcspn(line1, "\r")] = '\0';
    char *user = line1 + strspn(line1, " \t"), *pass = NULL;
    char *sp = strpbrk(user, " \t");
    if (sp) {
        *sp = '\0';
        pass = sp + 1 + strspn(sp + 1, " \t");
    } else if (line2) {
        line2[strcspn(line2, "\r\n")] = '\0';
        pass = line2;
    }
    if (!*user || !pass || !*pass) {
        OPENSSL_cleanse(buf, sizeof buf);
        snprintf(err, sizeof err, "relay_auth_file %s: expected \"username password\" or the"
                 " username and the password on two lines", path);
        *error_r = err;
        return -1;
    }
    size_t pl = strlen(pass);
    while (pl > 0 && (pass[pl - 1] == ' ' || pass[pl - 1] == '\t'))
        pass[--pl] = '\0';
    if (rm->relay_pass)
        OPENSSL_cleanse(rm->relay_pass, strlen(rm->relay_pass));
    free(rm->relay_user);
    free(rm->relay_pass);
    rm->relay_user = xstrdup(user);
    rm->relay_pass = xstrdup(pass);
    rm->auth_st = st;
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

static int same_file_state(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Before a new relay connection: when the administrator has changed
 * relay_auth_file since it was read (a fixed password after a 535), read it
 * again, so `roost queue retry` works without a restart. One stat() of a
 * small local file; a file that became invalid keeps the old credentials. */
static void auth_refresh(struct remote *rm)
{
    const char *path = rm->cfg->outbound.relay_auth_file;
    struct stat st;
    if (!path || stat(path, &st) < 0 || same_file_state(&st, &rm->auth_st))
        return;
    const char *err;
    if (read_auth_file(rm, path, &err) < 0) {
        rm->auth_st = st;          /* say it once per change */
        log_error("outbound", "event=auth-file-error error=\"%s\" hint=\"the previous"
                  " credentials stay in use until the file is fixed\"", err);
        return;
    }
    log_info("outbound", "event=auth-file-reread");
}

/* The DNSSEC trust anchor file to validate with, or NULL (no DNSSEC, so
 * no DANE): "none", or a file that cannot be read (said once, here). */
static const char *trust_anchor(const struct outbound_conf *o)
{
    const char *ta = o->dnssec_trust_anchor ? o->dnssec_trust_anchor : DNSSEC_DEFAULT_TRUST_ANCHOR;
    if (strcmp(ta, "none") == 0) {
        log_info("outbound", "event=dnssec-off reason=\"dnssec_trust_anchor = none\" dane=off");
        return NULL;
    }
    if (access(ta, R_OK) != 0) {
        log_warn("outbound", "event=dnssec-off trust_anchor=%s error=\"%s\" dane=off"
                 " hint=\"without a DNSSEC trust anchor DANE (RFC 7672) is not used: install"
                 " Debian's dns-root-data or set [outbound] dnssec_trust_anchor\"", ta,
                 strerror(errno));
        return NULL;
    }
    log_info("outbound", "event=dnssec-on trust_anchor=%s", ta);   /* dns: event=dnssec-probe */
    return ta;
}

int remote_start(const struct config *cfg, struct loop *loop, const char **error_r)
{
    if (rm_global) {
        *error_r = "outbound transport already started";
        return -1;
    }
    const struct outbound_conf *o = &cfg->outbound;
    struct remote *rm = xcalloc(1, sizeof *rm);
    rm->cfg = cfg;
    source_for(cfg, AF_INET, rm->source4, sizeof rm->source4);
    source_for(cfg, AF_INET6, rm->source6, sizeof rm->source6);
    rm->loop = loop;
    rm->base = loop_base(loop);
    int dns_ms = 60 * 10 * o->timeout_percent;   /* one minute, scaled */
    const char *ta = trust_anchor(o);
    rm->dns = dns_new(rm->base, o->resolver, dns_ms < 2000 ? 2000 : dns_ms, ta, error_r);
    if (!rm->dns)
        goto fail;
    if (ta) {
        rm->ctx_dane = client_ctx(NULL, 0, error_r);
        if (!rm->ctx_dane)
            goto fail;
        if (SSL_CTX_dane_enable(rm->ctx_dane) <= 0) {
            *error_r = "cannot enable DANE in the TLS client context";
            goto fail;
        }
    }
    rm->ctx_opportunistic = client_ctx(NULL, 0, error_r);
    if (!rm->ctx_opportunistic)
        goto fail;
    rm->ctx_mx_verify = client_ctx(o->tls_ca_file, 1, error_r);
    if (!rm->ctx_mx_verify)
        goto fail;
    if (o->mta_sts) {
        rm->ctx_https = client_ctx(o->tls_ca_file, 1, error_r);
        if (!rm->ctx_https)
            goto fail;
        int sts_ms = 60 * 10 * o->timeout_percent;   /* one minute (RFC 8461 3.3), scaled */
        rm->sts = sts_new(rm->base, rm->dns, rm->ctx_https, o->mta_sts_port,
                          sts_ms < 2000 ? 2000 : sts_ms);
    }
    if (o->relay_host) {
        rm->ctx_relay = client_ctx(o->relay_ca_file, 1, error_r);
        if (!rm->ctx_relay)
            goto fail;
        if (o->relay_auth_file && read_auth_file(rm, o->relay_auth_file, error_r) < 0)
            goto fail;
    }
    rm->pump_ev = evtimer_new(rm->base, pump_cb, rm);
    if (!rm->pump_ev) {
        *error_r = "cannot create the outbound timer";
        goto fail;
    }
    rm_global = rm;
    log_info("outbound", "event=started resolver=%s relay=%s max_connections=%d"
             " per_destination=%d source4=%s source6=%s", o->resolver ? o->resolver : "system",
             o->relay_host ? o->relay_host : "none", o->max_connections,
             o->max_per_destination, rm->source4[0] ? rm->source4 : "any",
             rm->source6[0] ? rm->source6 : "any");
    return 0;
fail:
    sts_free(&rm->sts);
    SSL_CTX_free(rm->ctx_https);
    dns_free(&rm->dns);
    SSL_CTX_free(rm->ctx_dane);
    SSL_CTX_free(rm->ctx_opportunistic);
    SSL_CTX_free(rm->ctx_mx_verify);
    SSL_CTX_free(rm->ctx_relay);
    free(rm);
    return -1;
}

void remote_set_store(const char *data_dir, struct worker_pool *pool)
{
    struct remote *rm = rm_global;
    if (!rm || !rm->sts)
        return;
    char *dir = xasprintf("%s/queue/mta-sts", data_dir);
    sts_set_store(rm->sts, dir, pool, rm->loop);
    free(dir);
}

int remote_running(void)
{
    return rm_global != NULL;
}

static void idle_free(struct idle_conn *ic, int quit)
{
    event_free(ic->timer);
    if (quit)
        smtpc_quit(ic->c);
    free(ic);
}

void remote_stop(void)
{
    struct remote *rm = rm_global;
    if (!rm)
        return;
    rm_global = NULL;
    /* answer every attempt still in flight: the queue keeps the mail */
    while (rm->busy) {
        struct attempt *at = rm->busy;
        if (at->dns) {
            dns_cancel(at->dns);
            at->dns = NULL;
        }
        if (at->sts) {
            sts_cancel(at->sts);
            at->sts = NULL;
        }
        for (int i = 0; i < at->nrcpt; i++)
            if (at->res[i].code == 0 || at->res[i].status == SMTPC_OK) {
                free(at->res[i].text);
                at->res[i].status = SMTPC_TEMPFAIL;
                at->res[i].code = 0;
                snprintf(at->res[i].enhanced, sizeof at->res[i].enhanced, "4.3.2");
                at->res[i].text = xstrdup("Roost is shutting down; the message stays queued");
            }
        if (at->conn)
            smtpc_abort(at->conn);   /* connecting or sending: no callbacks */
        at->conn = NULL;
        attempt_finish(at, NULL);
    }
    /* connections kept for results not yet recorded: closed; the holds
     * themselves are freed by remote_hold_release */
    while (rm->holds) {
        struct remote_hold *h = rm->holds;
        rm->holds = h->next;
        if (h->c)
            smtpc_quit(h->c);
        h->prev = h->next = NULL;
        h->d = NULL;
        h->c = NULL;
    }
    while (rm->dests) {
        struct dest *d = rm->dests;
        rm->dests = d->next;
        while (d->idle) {
            struct idle_conn *ic = d->idle;
            d->idle = ic->next;
            idle_free(ic, 1);
        }
        free(d);
    }
    smtpc_shutdown();
    event_free(rm->pump_ev);
    sts_free(&rm->sts);
    SSL_CTX_free(rm->ctx_https);
    dns_free(&rm->dns);
    SSL_CTX_free(rm->ctx_dane);
    SSL_CTX_free(rm->ctx_opportunistic);
    SSL_CTX_free(rm->ctx_mx_verify);
    SSL_CTX_free(rm->ctx_relay);
    if (rm->relay_pass)
        OPENSSL_cleanse(rm->relay_pass, strlen(rm->relay_pass));
    free(rm->relay_user);
    free(rm->relay_pass);
    free(rm);
    log_info("outbound", "event=stopped");
}

/* ---- destinations ---- */

static struct dest *dest_get(struct remote *rm, const char *key)
{
    for (struct dest *d = rm->dests; d; d = d->next)
        if (strcmp(d->key, key) == 0)
            return d;
    struct dest *d = xcalloc(1, sizeof *d);
    snprintf(d->key, sizeof d->key, "%s", key);
    d->next = rm->dests;
    rm->dests = d;
    return d;
}

/* A destination with no connection and nobody waiting goes away (one
 * would otherwise stay for every domain ever written to). */
static void dest_maybe_free(struct remote *rm, struct dest *d)
{
    if (d->conns > 0 || d->idle || d->wait_head)
        return;
    for (struct dest **pp = &rm->dests; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            free(d);
            return;
        }
}

static int domain_listed(const char *list, const char *domain)
{
    if (!list)
        return 0;
    size_t n = strlen(domain);
    for (const char *p = list; *p;) {
        p += strspn(p, " ,\t");
        size_t l = strcspn(p, " ,\t");
        if (l == n && strncmp(p, domain, n) == 0)
            return 1;
        p += l;
    }
    return 0;
}

/* ---- attempts ---- */

void remote_deliver(const struct remote_attempt *a, remote_done_fn done, void *arg)
{
    struct remote *rm = rm_global;
    if (!rm)
        abort();   /* the caller checks remote_running(): no loop to answer on */
    struct attempt *at = xcalloc(1, sizeof *at);
    at->rm = rm;
    at->msg = a->msg;
    at->done = done;
    at->arg = arg;
    at->nrcpt = a->nrcpt;
    snprintf(at->domain, sizeof at->domain, "%s", a->domain);
    at->idx = xcalloc((size_t)a->nrcpt + 1, sizeof *at->idx);
    at->addrs = xcalloc((size_t)a->nrcpt + 1, sizeof *at->addrs);
    at->res = xcalloc((size_t)a->nrcpt + 1, sizeof *at->res);
    for (int i = 0; i < a->nrcpt; i++) {
        at->idx[i] = a->rcpts[i];
        at->addrs[i] = a->msg->rcpts[a->rcpts[i]].address;
    }
    snprintf(at->tls, sizeof at->tls, "none");
    at->bnext = rm->busy;
    if (rm->busy)
        rm->busy->bprev = at;
    rm->busy = at;
    at->route = config_route(rm->cfg, at->domain);
    char key[300];
    const struct transport_route *r = at->route;
    if (r->kind == ROUTE_RELAY)
        snprintf(key, sizeof key, "relay");
    else if (r->kind == ROUTE_SMTP)
        /* several recipient domains may share a transport host; one listed
         * in tls_required_domains must never get a connection opened (and
         * parked idle) for a domain that is not: its own key */
        snprintf(key, sizeof key, "smtp:%s%s:%d%s", r->no_mx ? "[]" : "", r->host, r->port,
                 domain_listed(rm->cfg->outbound.tls_required_domains, at->domain) ? "/tls" : "");
    else
        snprintf(key, sizeof key, "mx:%.280s", at->domain);
    at->d = dest_get(rm, key);
    at->tx.sender = a->msg->sender ? a->msg->sender : "";
    at->tx.rcpts = at->addrs;
    at->tx.nrcpt = at->nrcpt;
    at->tx.data = a->msg->data;
    at->tx.len = a->msg->len;
    at->tx.results = at->res;
    /* start from the loop, never inside this call */
    at->d->wait_tail ? (at->d->wait_tail->next = at) : (at->d->wait_head = at);
    at->d->wait_tail = at;
    pump_later(rm);
}

/* Starts waiting attempts while the limits allow. */
static void pump(struct remote *rm)
{
    const struct outbound_conf *o = &rm->cfg->outbound;
    for (struct dest *d = rm->dests; d; d = d->next) {
        while (d->wait_head) {
            struct attempt *at = d->wait_head;
            if (d->idle) {
                struct idle_conn *ic = d->idle;
                d->idle = ic->next;
                at->conn = ic->c;
                idle_free(ic, 0);
            } else if (d->conns >= o->max_per_destination) {
                break;
            } else if (rm->conns >= o->max_connections) {
                /* make room: close an idle connection elsewhere */
                struct dest *x = rm->dests;
                while (x && !x->idle)
                    x = x->next;
                if (!x)
                    return;
                struct idle_conn *ic = x->idle;
                x->idle = ic->next;
                idle_free(ic, 1);
                x->conns--;
                rm->conns--;
                dest_maybe_free(rm, x);
                continue;
            } else {
                d->conns++;
                rm->conns++;
            }
            d->wait_head = at->next;
            if (!d->wait_head)
                d->wait_tail = NULL;
            at->next = NULL;
            attempt_start(at);
        }
    }
}


static void set_all(struct attempt *at, enum smtpc_status st, int code, const char *enh,
                    const char *text)
{
    for (int i = 0; i < at->nrcpt; i++) {
        struct smtpc_rcpt_result *r = &at->res[i];
        if (r->text && (r->status != SMTPC_OK))
            continue;
        free(r->text);
        r->status = st;
        r->code = code;
        snprintf(r->enhanced, sizeof r->enhanced, "%s", enh ? enh : "");
        r->text = xstrdup(text);
    }
}

static void attempt_start(struct attempt *at)
{
    struct remote *rm = at->rm;
    const struct outbound_conf *o = &rm->cfg->outbound;
    if (at->conn) {
        /* an idle connection to the same destination: RSET, then send */
        const struct smtpc_target *t = smtpc_current(at->conn);
        snprintf(at->remote_host, sizeof at->remote_host, "%s [%s]", t->host, t->addr_str);
        snprintf(at->tls, sizeof at->tls, "%s", smtpc_tls_desc(at->conn));
        smtpc_send(at->conn, &at->tx, tx_done, at);
        return;
    }
    const struct transport_route *r = at->route;
    if (r->kind == ROUTE_MX && rm->sts && !at->sts_asked) {
        /* RFC 8461: the recipient domain's policy first */
        at->sts = sts_get(rm->sts, at->domain, sts_done, at);
        return;
    }
    if (r->kind == ROUTE_RELAY)
        at->dns = dns_lookup_host(rm->dns, o->relay_host, o->relay_port, dns_done, at);
    else if (r->kind == ROUTE_SMTP && r->no_mx)
        at->dns = dns_lookup_host(rm->dns, r->host, r->port ? r->port : o->smtp_port, dns_done, at);
    else if (r->kind == ROUTE_SMTP)
        at->dns = dns_lookup_mx(rm->dns, r->host, r->port ? r->port : o->smtp_port, dns_done, at);
    else
        at->dns = dns_lookup_mx(rm->dns, at->domain, o->smtp_port, dns_done, at);
}

/* The recipient domain's MTA-STS policy is known (POL NULL: none): the
 * MX lookup, with the policy kept for dns_done. */
static void sts_done(void *arg, const struct sts_policy *pol, const char *id,
                     const char *source)
{
    struct attempt *at = arg;
    at->sts = NULL;
    at->sts_asked = 1;
    if (pol && pol->mode != STS_MODE_NONE) {
        at->sts_have = 1;
        at->sts_pol = *pol;
        snprintf(at->sts_id, sizeof at->sts_id, "%s", id);
        snprintf(at->sts_source, sizeof at->sts_source, "%s", source);
        log_debug("outbound", "event=mta-sts domain=%s mode=%s id=%s source=%s outcome=policy",
                  at->domain, sts_mode_name(pol->mode), id, source);
    }
    attempt_start(at);
}

static int sts_enforced(const struct attempt *at)
{
    return at->sts_have && at->sts_pol.mode == STS_MODE_ENFORCE;
}

/* RFC 8461 4.1: the MX hosts the policy names. Enforce: the others are
 * left out (said once per host); testing: kept, and said. Hosts with
 * usable DANE records are DANE's to judge (RFC 8461 2). Returns the
 * targets left. */
static int sts_filter(const struct attempt *at, struct smtpc_target *t, int n)
{
    int enforce = sts_enforced(at), k = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].dane == SMTPC_DANE_VERIFY || sts_mx_match(&at->sts_pol, t[i].host)) {
            t[k++] = t[i];
            continue;
        }
        if (i == 0 || strcmp(t[i - 1].host, t[i].host) != 0) {
            char qh[LOG_QSIZE];
            log_warn("outbound", "event=mta-sts domain=%s mode=%s outcome=%s host=%s"
                     " hint=\"this MX host is not among the mx lines of the domain's MTA-STS"
                     " policy%s\"", at->domain, sts_mode_name(at->sts_pol.mode),
                     enforce ? "mx-skipped" : "would-defer",
                     log_q(qh, sizeof qh, t[i].host, strlen(t[i].host)),
                     enforce ? "; it is not used" : " (testing mode: used all the same)");
        }
        if (!enforce)
            t[k++] = t[i];
    }
    return k;
}

/* The domain whose MX records were looked up (the next-domain). */
static const char *dane_next_domain(const struct attempt *at)
{
    return at->route->kind == ROUTE_SMTP ? at->route->host : at->domain;
}

/* The DANE policy of target T, the I-th address of ANS: its host's TLSA
 * outcome. A host's usable records are appended to TLSA once (FIRST[h]:
 * where, -1 not yet). Only for MX lookups (not the relay, not
 * smtp:[host]) with DANE on. */
static void dane_target(const struct attempt *at, const struct dns_answer *ans, int i,
                        struct smtpc_target *t, struct smtpc_tlsa *tlsa, int *ntlsa,
                        int *first)
{
    const struct transport_route *r = at->route;
    int h = ans->addrs[i].host_idx;
    t->dane = SMTPC_DANE_NONE;
    t->tlsa_first = -1;
    if (!at->rm->ctx_dane || h < 0 || h >= ans->nhosts || r->kind == ROUTE_RELAY ||
        (r->kind == ROUTE_SMTP && r->no_mx))
        return;
    const struct dns_host *dh = &ans->hosts[h];
    if (dh->dane == DNS_DANE_UNUSABLE) {
        t->dane = SMTPC_DANE_TLS_ONLY;   /* RFC 7672 2.2: TLS, not authenticated */
        return;
    }
    if (dh->dane != DNS_DANE_USABLE || dh->ntlsa <= 0)
        return;
    t->dane = SMTPC_DANE_VERIFY;
    t->ntlsa = dh->ntlsa < DNS_MAX_TLSA ? dh->ntlsa : DNS_MAX_TLSA;
    if (first[h] >= 0) {
        t->tlsa_first = first[h];   /* another address of the same host */
        return;
    }
    /* at most DNS_MAX_TLSA per host and DNS_MAX_MX_HOSTS hosts: TLSA has room */
    t->tlsa_first = first[h] = *ntlsa;
    for (int k = 0; k < t->ntlsa; k++) {
        struct smtpc_tlsa *x = &tlsa[(*ntlsa)++];
        x->usage = dh->tlsa[k].usage;
        x->selector = dh->tlsa[k].selector;
        x->mtype = dh->tlsa[k].mtype;
        x->len = dh->tlsa[k].len;
        x->data = dh->tlsa[k].data;
    }
    char qh[LOG_QSIZE];
    log_debug("outbound", "event=dane-policy host=%s tlsa_records=%d",
              log_q(qh, sizeof qh, dh->name, strlen(dh->name)), t->ntlsa);
}

static void dns_done(void *arg, const struct dns_answer *ans)
{
    struct attempt *at = arg;
    struct remote *rm = at->rm;
    const struct outbound_conf *o = &rm->cfg->outbound;
    at->dns = NULL;
    int mx = at->route->kind == ROUTE_MX;
    if (ans->status != DNS_OK) {
        char text[500];
        if (ans->status == DNS_TEMPFAIL || !mx) {
            /* a relay or transport host that does not resolve is the
             * operator's to fix: the mail waits */
            snprintf(text, sizeof text, "451 4.4.3 %s", ans->error);
            set_all(at, SMTPC_TEMPFAIL, 0, "4.4.3", text);
        } else if (ans->status == DNS_NULLMX) {
            snprintf(text, sizeof text, "556 5.1.10 %s", ans->error);
            set_all(at, SMTPC_PERMFAIL, 0, "5.1.10", text);
        } else if (ans->status == DNS_NXDOMAIN) {
            snprintf(text, sizeof text, "550 5.1.2 %s", ans->error);
            set_all(at, SMTPC_PERMFAIL, 0, "5.1.2", text);
        } else {
            snprintf(text, sizeof text, "550 5.4.4 %s", ans->error);
            set_all(at, SMTPC_PERMFAIL, 0, "5.4.4", text);
        }
        conn_release(rm, at->d, NULL);
        attempt_finish(at, NULL);
        return;
    }
    struct smtpc_target targets[DNS_MAX_ADDRS];
    struct smtpc_tlsa tlsa[DNS_MAX_MX_HOSTS * DNS_MAX_TLSA];
    int ntlsa = 0, first[DNS_MAX_MX_HOSTS];
    for (int h = 0; h < DNS_MAX_MX_HOSTS; h++)
        first[h] = -1;
    int n = 0;
    for (int i = 0; i < ans->naddrs && n < DNS_MAX_ADDRS; i++, n++) {
        struct smtpc_target *t = &targets[n];
        memset(t, 0, sizeof *t);
        snprintf(t->host, sizeof t->host, "%s", ans->addrs[i].host);
        t->addr = ans->addrs[i].ss;
        t->addrlen = ans->addrs[i].sslen;
        snprintf(t->addr_str, sizeof t->addr_str, "%s", ans->addrs[i].str);
        dane_target(at, ans, i, t, tlsa, &ntlsa, first);
    }
    if (at->sts_have && mx) {
        n = sts_filter(at, targets, n);
        if (n == 0) {
            char text[500];
            snprintf(text, sizeof text, "451 4.7.5 MTA-STS: none of the MX hosts of %s is named"
                     " by its policy (id %s)", at->domain, at->sts_id);
            log_warn("outbound", "event=mta-sts domain=%s mode=enforce outcome=deferred"
                     " reason=\"no MX host matches the policy\" hint=\"the domain's MX records"
                     " and its MTA-STS policy (https://mta-sts.%s/.well-known/mta-sts.txt)"
                     " disagree; the mail waits until they agree or the policy expires\"",
                     at->domain, at->domain);
            set_all(at, SMTPC_TEMPFAIL, 0, "4.7.5", text);
            conn_release(rm, at->d, NULL);
            attempt_finish(at, NULL);
            return;
        }
    }
    struct smtpc_params p = {.helo = rm->cfg->hostname, .timeout_percent = o->timeout_percent};
    p.sts_domain = at->domain;
    p.dane_ctx = rm->ctx_dane;
    p.tlsa = tlsa;
    p.ntlsa = ntlsa;
    /* RFC 7672 3.2.2: with a secure MX RRset, the next-domain is a
     * reference name for DANE-TA certificates too */
    p.dane_domain = ans->mx_secure && !ans->implicit_mx ? dane_next_domain(at) : NULL;
    memcpy(p.source4, rm->source4, sizeof p.source4);
    memcpy(p.source6, rm->source6, sizeof p.source6);
    if (at->route->kind == ROUTE_RELAY) {
        int implicit = o->relay_tls == RELAY_TLS_IMPLICIT ||
                       (o->relay_tls == RELAY_TLS_DEFAULT && o->relay_port == 465);
        p.tls = implicit ? SMTPC_TLS_IMPLICIT : SMTPC_TLS_REQUIRED;
        p.ssl_ctx = rm->ctx_relay;
        auth_refresh(rm);
        p.auth_user = rm->relay_user;
        p.auth_pass = rm->relay_pass;
    } else if (domain_listed(o->tls_required_domains, at->domain) || sts_enforced(at)) {
        p.tls = SMTPC_TLS_REQUIRED;
        p.ssl_ctx = rm->ctx_mx_verify;
        p.sts_enforce = sts_enforced(at);
    } else if (at->sts_have) {
        /* testing: as without a policy, with the checks logged */
        p.tls = SMTPC_TLS_OPPORTUNISTIC;
        p.ssl_ctx = rm->ctx_mx_verify;
        p.sts_testing = 1;
    } else {
        p.tls = SMTPC_TLS_OPPORTUNISTIC;
        p.ssl_ctx = rm->ctx_opportunistic;
    }
    at->connecting = 1;
    at->conn = smtpc_connect(rm->loop, &p, targets, n, conn_ready, at);
}

static void conn_ready(void *arg, struct smtpc *c, const struct smtpc_conn_result *res)
{
    struct attempt *at = arg;
    at->connecting = 0;
    at->conn = c;
    if (!c) {
        snprintf(at->remote_host, sizeof at->remote_host, "%s", res->remote);
        /* e.g. a refused AUTH happens over TLS: say so in the attempt line */
        snprintf(at->tls, sizeof at->tls, "%s", res->tls[0] ? res->tls : "none");
        enum smtpc_status st = res->status == SMTPC_PERMFAIL ? SMTPC_PERMFAIL : SMTPC_TEMPFAIL;
        char text[700];
        snprintf(text, sizeof text, "%s%s%s", res->text ? res->text : "connection failed",
                 res->hint ? " -- " : "", res->hint ? res->hint : "");
        set_all(at, st, res->code, res->enhanced[0] ? res->enhanced : st == SMTPC_PERMFAIL ? "5.4.0" : "4.4.1",
                text);
        if (sts_enforced(at) && strcmp(res->enhanced, "4.7.5") == 0) {
            char qt[LOG_QSIZE];
            const char *why = res->text ? res->text : "";
            log_warn("outbound", "event=mta-sts domain=%s mode=enforce outcome=deferred"
                     " remote=\"%s\" reason=%s hint=\"the domain's MTA-STS policy requires"
                     " STARTTLS with a certificate valid for the MX host name; the mail waits"
                     " and is retried (roost queue retry ID after the destination fixes it)\"",
                     at->domain, at->remote_host, log_q(qt, sizeof qt, why, strlen(why)));
        }
        conn_release(at->rm, at->d, NULL);
        attempt_finish(at, NULL);
        return;
    }
    const struct smtpc_target *t = smtpc_current(c);
    snprintf(at->remote_host, sizeof at->remote_host, "%s [%s]", t->host, t->addr_str);
    snprintf(at->tls, sizeof at->tls, "%s", smtpc_tls_desc(c));
    smtpc_send(c, &at->tx, tx_done, at);
}

/* An idle connection goes away (its timer fired, or the server closed it):
 * unlinks IC from its destination, frees it (sending QUIT if QUIT) and
 * gives its connection slot back. */
static void idle_drop(struct idle_conn *ic, int quit)
{
    struct dest *d = ic->d;
    struct remote *rm = rm_global;
    for (struct idle_conn **pp = &d->idle; *pp; pp = &(*pp)->next)
        if (*pp == ic) {
            *pp = ic->next;
            break;
        }
    idle_free(ic, quit);
    d->conns--;
    if (rm) {
        rm->conns--;
        dest_maybe_free(rm, d);
        pump_later(rm);
    }
}

static void idle_timeout(evutil_socket_t fd, short what, void *arg)
{
    idle_drop(arg, 1);
}

static void idle_closed(void *arg, struct smtpc *c)
{
    idle_drop(arg, 0);
    smtpc_quit(c);
}

/* A connection (or its slot, C NULL) comes back from an attempt. */
static void conn_release(struct remote *rm, struct dest *d, struct smtpc *c)
{
    int keep = c && rm->cfg->outbound.idle_seconds > 0;
    if (c && d->wait_head) {
        /* someone is waiting for this destination: hand it over */
        struct attempt *next = d->wait_head;
        d->wait_head = next->next;
        if (!d->wait_head)
            d->wait_tail = NULL;
        next->next = NULL;
        next->conn = c;
        attempt_start(next);
        return;
    }
    if (keep) {
        struct idle_conn *ic = xcalloc(1, sizeof *ic);
        ic->c = c;
        ic->d = d;
        ic->timer = evtimer_new(rm->base, idle_timeout, ic);
        struct timeval tv = {rm->cfg->outbound.idle_seconds, 0};
        evtimer_add(ic->timer, &tv);
        ic->next = d->idle;
        d->idle = ic;
        smtpc_park(c, idle_closed, ic);
        return;
    }
    if (c)
        smtpc_quit(c);
    d->conns--;
    rm->conns--;
    dest_maybe_free(rm, d);
    pump_later(rm);
}

/* A relay's "550 5.4.5 Daily user sending limit exceeded" (Gmail) is about
 * the operator's relay account, not the message: it waits (deferred) and
 * the reply says so in plain words. */
static void relay_adjust(struct attempt *at)
{
    if (at->route->kind != ROUTE_RELAY)
        return;
    for (int i = 0; i < at->nrcpt; i++) {
        struct smtpc_rcpt_result *r = &at->res[i];
        if (!r->text || strcmp(r->enhanced, "5.4.5") != 0)
            continue;
        char *t = xasprintf("%s -- the relay account reached its daily sending limit;"
                            " the message stays queued and is retried", r->text);
        free(r->text);
        r->text = t;
        r->status = SMTPC_TEMPFAIL;
        log_warn("outbound", "event=relay-limit remote=\"%s\" hint=\"the relay account's daily"
                 " sending limit is reached (550 5.4.5): mail waits until the relay accepts"
                 " again\"", at->remote_host);
    }
}

static void tx_done(void *arg, struct smtpc *c, int alive)
{
    struct attempt *at = arg;
    at->conn = NULL;
    if (!alive && at->tx.stale && !at->fresh_retry) {
        /* the idle connection had died (RSET got no answer, nothing was
         * sent): the same slot, a new connection */
        at->fresh_retry = 1;
        at->tx.stale = 0;
        for (int i = 0; i < at->nrcpt; i++) {
            free(at->res[i].text);
            memset(&at->res[i], 0, sizeof at->res[i]);
        }
        log_info("outbound", "event=reconnect queue=%s remote=\"%s\" reason=\"the idle"
                 " connection was closed by the server\"", at->msg->id, at->remote_host);
        attempt_start(at);
        return;
    }
    relay_adjust(at);
    /* the connection (or its slot) waits until the scheduler has recorded
     * these results: a crash in between repeats at most this message */
    struct remote *rm = at->rm;
    struct remote_hold *h = xcalloc(1, sizeof *h);
    h->d = at->d;
    h->c = alive ? c : NULL;
    h->next = rm->holds;
    if (rm->holds)
        rm->holds->prev = h;
    rm->holds = h;
    attempt_finish(at, h);
}

void remote_hold_release(struct remote_hold *h)
{
    if (!h)
        return;
    struct remote *rm = rm_global;
    if (rm && h->d) {
        if (h->prev)
            h->prev->next = h->next;
        else
            rm->holds = h->next;
        if (h->next)
            h->next->prev = h->prev;
        conn_release(rm, h->d, h->c);
    }
    free(h);
}

/* ---- results ---- */

static void log_result(const struct attempt *at, int i, const struct remote_result *r)
{
    static const char *const names[] = {"delivered", "deferred", "failed"};
    char qa[LOG_QSIZE], qr[LOG_QSIZE];
    const char *addr = at->addrs[i];
    const char *reply = r->reply ? r->reply : "";
    log_event(r->outcome == RCPT_DELIVERED ? LOG_INFO : LOG_WARN, "outbound",
              "event=attempt queue=%s rcpt=%s outcome=%s remote=\"%s\" tls=%s code=%d reply=%s",
              at->msg->id, log_q(qa, sizeof qa, addr, strlen(addr)), names[r->outcome],
              at->remote_host[0] ? at->remote_host : "none", at->tls, r->code,
              log_q(qr, sizeof qr, reply, strlen(reply)));
}

/* Hands the results (and HOLD, the connection kept for them, or NULL) to
 * the caller and frees the attempt. */
static void attempt_finish(struct attempt *at, struct remote_hold *hold)
{
    struct remote *rm = at->rm;
    if (at->bprev)
        at->bprev->bnext = at->bnext;
    else if (rm->busy == at)
        rm->busy = at->bnext;
    if (at->bnext)
        at->bnext->bprev = at->bprev;
    struct remote_result *res = xcalloc((size_t)at->nrcpt + 1, sizeof *res);
    for (int i = 0; i < at->nrcpt; i++) {
        struct smtpc_rcpt_result *s = &at->res[i];
        struct remote_result *r = &res[i];
        r->idx = at->idx[i];
        r->outcome = !s->text ? RCPT_DEFERRED
                     : s->status == SMTPC_OK ? RCPT_DELIVERED
                     : s->status == SMTPC_PERMFAIL ? RCPT_FAILED : RCPT_DEFERRED;
        r->code = s->code;
        snprintf(r->enhanced, sizeof r->enhanced, "%s", s->enhanced);
        r->reply = xstrdup(s->text ? s->text : "no answer");
        r->remote_host = at->remote_host[0] ? xstrdup(at->remote_host) : NULL;
        log_result(at, i, r);
    }
    at->done(at->arg, res, at->nrcpt, hold);
    for (int i = 0; i < at->nrcpt; i++) {
        free(res[i].reply);
        free(res[i].remote_host);
        free(at->res[i].text);
    }
    free(res);
    free(at->idx);
    free(at->addrs);
    free(at->res);
    free(at);
}
