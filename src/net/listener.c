/* listener: bound sockets, evconnlistener accept loop, and the shared
 * connection-count limits. */
#include "net/listener.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/worker.h"
#include "core/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct bound {
    int fd;
    struct listener_conf conf;
    struct evconnlistener *evl;
    listener_accept_fn accept;
    void *arg;
};

/* A connection on its way to the loop that will serve it. */
struct handoff {
    struct bound *b;
    struct loop *loop;
    int fd;
    char peer[INET6_ADDRSTRLEN + 1];
};

static struct bound bound[CONFIG_MAX_LISTENERS];
static int nbound;
static struct loop **accept_loops;   /* owned by the first loop's thread */
static int naccept_loops;
static unsigned next_loop;
static char listen_err[512];

int listeners_bind(const struct config *cfg, const char **error_r)
{
    for (int i = 0; i < cfg->nlisteners; i++) {
        const struct listener_conf *lc = &cfg->listeners[i];
        struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                                 .ai_socktype = SOCK_STREAM};
        struct addrinfo *ai = NULL;
        char port[16];
        snprintf(port, sizeof port, "%d", lc->port);
        if (getaddrinfo(lc->host, port, &hints, &ai) != 0 || !ai) {
            snprintf(listen_err, sizeof listen_err, "%s: not a numeric address", lc->host);
            *error_r = listen_err;
            return -1;
        }
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (ai->ai_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        }
        if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
            snprintf(listen_err, sizeof listen_err, "%s listener on %s port %d: %s",
                     listener_kind_name(lc->kind), lc->host, lc->port, strerror(errno));
            *error_r = listen_err;
            if (fd >= 0)
                close(fd);
            freeaddrinfo(ai);
            return -1;
        }
        freeaddrinfo(ai);
        bound[nbound].fd = fd;
        bound[nbound].conf = *lc;
        nbound++;
    }
    return 0;
}

static void format_peer(const struct sockaddr *sa, char *out, size_t outsz)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outsz);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outsz);
    else
        snprintf(out, outsz, "unknown");
}

static void handoff_run(void *arg)
{
    struct handoff *h = arg;
    h->b->accept(h->loop, h->fd, h->peer, &h->b->conf, h->b->arg);
    free(h);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct bound *b = arg;
    metrics_connection(b->conf.kind);
    struct handoff *h = xcalloc(1, sizeof *h);
    h->b = b;
    h->fd = fd;
    format_peer(sa, h->peer, sizeof h->peer);
    evutil_make_socket_nonblocking(fd);
    h->loop = accept_loops[next_loop++ % (unsigned)naccept_loops];
    if (h->loop == accept_loops[0])
        handoff_run(h);
    else
        loop_post(h->loop, handoff_run, h);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    log_warn("net", "event=accept-error error=\"%s\"", strerror(errno));
}

int listeners_start(struct loop **loops, int nloops, listener_accept_fn accept, void *arg)
{
    accept_loops = loops;
    naccept_loops = nloops;
    for (int i = 0; i < nbound; i++) {
        struct bound *b = &bound[i];
        b->accept = accept;
        b->arg = arg;
        b->evl = evconnlistener_new(loop_base(loops[0]), on_accept, b, LEV_OPT_CLOSE_ON_FREE, -1, b->fd);
        if (!b->evl)
            return -1;
        evconnlistener_set_error_cb(b->evl, on_accept_error);
        log_info("net", "event=listening kind=%s addr=%s port=%d",
                 listener_kind_name(b->conf.kind), b->conf.host, b->conf.port);
    }
    return 0;
}

void listeners_close(void)
{
    for (int i = 0; i < nbound; i++) {
        if (bound[i].evl)
            evconnlistener_free(bound[i].evl);
        else
            close(bound[i].fd);
        bound[i].evl = NULL;
    }
    nbound = 0;
}

/* ---- connection limits ---- */

struct addr_count {
    struct addr_count *next;
    int count;
    char addr[INET6_ADDRSTRLEN + 1];
};

#define NETLIMIT_BUCKETS 1024
static pthread_mutex_t nl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addr_count *nl_table[NETLIMIT_BUCKETS];
static int nl_total;

static unsigned hash_addr(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NETLIMIT_BUCKETS;
}

static struct addr_count **find_slot(const char *peer)
{
    struct addr_count **pp = &nl_table[hash_addr(peer)];
    while (*pp && strcmp((*pp)->addr, peer) != 0)
        pp = &(*pp)->next;
    return pp;
}

enum netlimit_result netlimit_acquire(const char *peer, int max_total, int max_per_addr)
{
    enum netlimit_result r = NETLIMIT_OK;
    pthread_mutex_lock(&nl_lock);
    struct addr_count **pp = find_slot(peer);
    if (nl_total >= max_total) {
        r = NETLIMIT_TOTAL;
    } else if (*pp && (*pp)->count >= max_per_addr) {
        r = NETLIMIT_PER_ADDR;
    } else {
        if (!*pp) {
            *pp = xcalloc(1, sizeof **pp);
            snprintf((*pp)->addr, sizeof (*pp)->addr, "%s", peer);
        }
        (*pp)->count++;
        nl_total++;
    }
    pthread_mutex_unlock(&nl_lock);
    return r;
}

void netlimit_release(const char *peer)
{
    pthread_mutex_lock(&nl_lock);
    struct addr_count **pp = find_slot(peer);
    if (*pp) {
        nl_total--;
        if (--(*pp)->count == 0) {
            struct addr_count *dead = *pp;
            *pp = dead->next;
            free(dead);
        }
    }
    pthread_mutex_unlock(&nl_lock);
}

int netlimit_total(void)
{
    pthread_mutex_lock(&nl_lock);
    int n = nl_total;
    pthread_mutex_unlock(&nl_lock);
    return n;
}
