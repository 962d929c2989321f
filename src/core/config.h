/* config: the roost.conf file (INI, parsed with inih) and the built-in
 * defaults. Without a file Roost runs a loopback development instance on
 * unprivileged ports; with one it uses the standard ports and whatever the
 * file says. docs/config.md documents every key. */
#ifndef ROOST_CONFIG_H
#define ROOST_CONFIG_H

#include <stddef.h>

enum listener_kind {
    LK_SMTP,        /* inbound MX: plain, STARTTLS offered, no AUTH needed */
    LK_SUBMISSION,  /* 587: STARTTLS, AUTH required (RFC 6409) */
    LK_SUBMISSIONS, /* 465: implicit TLS, AUTH required (RFC 8314) */
    LK_POP3,        /* 110: POP3, STLS before login (RFC 1939, 2595) */
    LK_POP3S,       /* 995: POP3 over implicit TLS (RFC 8314) */
    LK_IMAP,        /* 143: IMAP, STARTTLS before login (RFC 9051, LOGINDISABLED) */
    LK_IMAPS,       /* 993: IMAP over implicit TLS (RFC 8314) */
    LK_COUNT
};

struct listener_conf {
    enum listener_kind kind;
    char host[256]; /* numeric address */
    int port;
};

#define CONFIG_MAX_LISTENERS 32
#define CONFIG_MAX_HTTP_LISTENERS 8

/* [http]: the HTTP listener (docs/http.md). */
enum mta_sts_mode { MTA_STS_TESTING, MTA_STS_ENFORCE, MTA_STS_NONE };

struct http_conf {
    int nlisten;                       /* 0: no HTTP listener */
    struct { char host[256]; int port; } listen[CONFIG_MAX_HTTP_LISTENERS];
    int tls;                           /* HTTPS with [tls] cert/key */
    int metrics_public;                /* /metrics to any client, not just loopback */
    int max_connections;
    int timeout;                       /* seconds per connection */
    enum mta_sts_mode mta_sts_mode;
    long mta_sts_max_age;              /* seconds */
};

/* [outbound] and [transport]: the outbound transport (docs/outbound.md). */
enum route_kind {
    ROUTE_MX,      /* the domain's MX records (implicit MX: its A/AAAA) */
    ROUTE_RELAY,   /* the [outbound] relay (smarthost) */
    ROUTE_SMTP,    /* smtp:host[:port] (MX of host) or smtp:[host][:port] (no MX) */
};
enum relay_tls_mode { RELAY_TLS_DEFAULT, RELAY_TLS_IMPLICIT, RELAY_TLS_STARTTLS };

struct transport_route {
    char *domain;            /* lower case; "*" is the default route */
    enum route_kind kind;
    char *host;              /* ROUTE_SMTP */
    int port;                /* 0: the outbound smtp_port */
    int no_mx;               /* [host]: its A/AAAA only */
};
#define CONFIG_MAX_TRANSPORT 1024

/* Debian's dns-root-data: the root zone's trust anchor (DNSSEC, DANE). */
#define DNSSEC_DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"

struct outbound_conf {
    int enabled;                 /* 0: remote recipients stay queued */
    char *resolver;              /* "addr@port" forwarder, NULL: /etc/resolv.conf */
    char *tls_required_domains;  /* space-separated, lower case */
    char *tls_ca_file;           /* CA file for verified MX TLS, NULL: system store */
    char *relay_host;
    int relay_port;
    enum relay_tls_mode relay_tls;
    char *relay_auth_file;
    char *relay_ca_file;
    int smtp_port;               /* port of MX hosts (25) */
    int max_connections;
    int max_per_destination;
    int idle_seconds;            /* idle connection kept for reuse */
    int timeout_percent;         /* RFC 5321 4.5.3.2 timeouts scaled (tests) */
    char source4[16];            /* source_address: bind IPv4 connections to it ("": the kernel's choice) */
    char source6[46];            /* the same for IPv6 */
    char *dnssec_trust_anchor;   /* DS/DNSKEY file for DNSSEC (DANE), "none"; NULL: the default */
    int mta_sts;                 /* MTA-STS (RFC 8461) for MX routes: 1 yes (default), 0 no */
    int mta_sts_port;            /* HTTPS port of policy hosts (443; tests use another) */
    int ntransport;
    struct transport_route *transport;
};

struct config {
    int dev;                 /* no config file: loopback dev instance */
    char *path;              /* the file, or NULL */
    char *hostname;
    char *data_dir;
    char *user;              /* drop privileges to this user ("" = stay) */
    char *tls_cert, *tls_key;
    int nlisteners;
    struct listener_conf listeners[CONFIG_MAX_LISTENERS];
    size_t max_message_size;
    int max_recipients;
    int max_connections;
    int max_connections_per_ip;
    int idle_timeout;
    int session_timeout;
    int workers;
    int loops;               /* event loops; 0 = one per CPU */
    char *log_level;
    unsigned argon2_t_cost, argon2_m_cost_kib, argon2_parallelism;
    size_t log_max_size;     /* [log] max_size: rotate roost.log past this (0 = never) */
    int log_keep;            /* [log] keep: rotated files kept (roost.log.1 .. .N) */
    struct http_conf http;
    /* [queue] (docs/queue.md): durations in seconds */
#define CONFIG_MAX_RETRY_STEPS 16
    unsigned queue_retry[CONFIG_MAX_RETRY_STEPS]; /* remote back-off; the last repeats */
    int queue_nretry;
    unsigned queue_max_age;        /* give up (bounce) after this long in the queue */
    unsigned queue_delay_warning;  /* "delayed" DSN once after this long; 0 = never */
    int queue_max_remote;          /* outstanding remote attempts in total */
    int queue_max_per_domain;      /* ... and per destination domain */
    struct outbound_conf outbound;
    unsigned retry_unit_ms;  /* [queue] retry_unit_ms; 0 = the queue's default */
    unsigned compact_interval; /* [store] seconds between compaction passes; 0 = off */
    unsigned compact_grace;    /* [store] seconds a retired pack is kept for readers */
};

const char *listener_kind_name(enum listener_kind k);
int listener_kind_parse(const char *s, enum listener_kind *k_r);

/* Fills CFG with the development defaults (data dir already resolved). */
void config_defaults(struct config *cfg, int dev);

/* The [http] defaults: 127.0.0.1:8080, plain HTTP, /metrics for loopback
 * clients only, MTA-STS mode testing with a max_age of one week. */
void config_http_defaults(struct http_conf *h);

/* Parses PATH into CFG (defaults applied first). On failure returns -1 and
 * ERRORS_R holds one "FILE:LINE: message" per line (caller frees). */
int config_load(const char *path, struct config *cfg, char **errors_r);
/* The same, from a string (used by the fuzzer and tests). */
int config_load_string(const char *text, const char *name, struct config *cfg,
                       char **errors_r);
void config_free(struct config *cfg);

/* Resolves the data directory: explicit (--data) > config file > $ROOST_DATA
 * > ./roost-data. Returns an allocated string. */
char *config_resolve_data_dir(const char *explicit_dir, const struct config *cfg);

/* Parses a duration: a number with an optional unit s, m, h or d (seconds
 * without one), e.g. "30s", "5m", "4h", "5d". 0 on success. */
int config_parse_duration(const char *s, unsigned *seconds_r);

/* Parses "host:port", "[v6]:port" or ":port". 0 on success. */
int config_parse_hostport(const char *s, char *host, size_t hostsz, int *port_r);

/* config_outbound.c: the [outbound], [transport] and [queue] sections.
 * Returns 0, or -1 with a message in ERR (size ERRSZ). */
void config_outbound_defaults(struct config *cfg);
int config_outbound_key(struct config *cfg, const char *section, const char *name,
                        const char *value, char *err, size_t errsz);
void config_outbound_free(struct config *cfg);
/* The route for DOMAIN (lower case): its [transport] entry, else "*", else
 * the relay when one is configured, else MX. Never NULL. */
const struct transport_route *config_route(const struct config *cfg, const char *domain);

#endif
