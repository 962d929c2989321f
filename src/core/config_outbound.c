/* config_outbound: the [outbound], [transport] and [queue] sections of
 * roost.conf (see docs/config.md and docs/outbound.md), kept apart from
 * config.c so that the outbound transport's settings live in one file.
 *
 *   [outbound]  enabled, resolver, smtp_port, tls_required_domains, tls_ca_file,
 *               relay, relay_tls, relay_auth_file, relay_ca_file,
 *               max_connections, max_connections_per_destination,
 *               idle_seconds, timeout_percent, source_address,
 *               dnssec_trust_anchor, mta_sts, mta_sts_port
 *   [transport] DOMAIN = relay | mx | smtp:host[:port] | smtp:[host][:port]
 *               ("*" names the default route)
 *   [queue]     retry_unit_ms
 * Values are checked here; the relay_auth_file's permissions are checked
 * when the transport starts (the file may not exist at parse time). */
#include "core/config.h"
#include "core/limits.h"
#include "core/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = xstrdup(v);
}

void config_outbound_defaults(struct config *cfg)
{
    struct outbound_conf *o = &cfg->outbound;
    memset(o, 0, sizeof *o);
    o->enabled = 1;
    o->smtp_port = 25;
    o->max_connections = OUTBOUND_DEFAULT_MAX_CONNECTIONS;
    o->max_per_destination = OUTBOUND_DEFAULT_MAX_PER_DEST;
    o->idle_seconds = OUTBOUND_DEFAULT_IDLE_SECONDS;
    o->timeout_percent = 100;
    o->mta_sts = 1;
    o->mta_sts_port = 443;
    cfg->retry_unit_ms = 0;
}

void config_outbound_free(struct config *cfg)
{
    struct outbound_conf *o = &cfg->outbound;
    free(o->resolver);
    free(o->tls_required_domains);
    free(o->tls_ca_file);
    free(o->relay_host);
    free(o->relay_auth_file);
    free(o->relay_ca_file);
    free(o->dnssec_trust_anchor);
    for (int i = 0; i < o->ntransport; i++) {
        free(o->transport[i].domain);
        free(o->transport[i].host);
    }
    free(o->transport);
    memset(o, 0, sizeof *o);
}

static int num(const char *v, long lo, long hi, long *out)
{
    if (!isdigit((unsigned char)v[0]))
        return -1;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < lo || n > hi)
        return -1;
    *out = n;
    return 0;
}

/* The integer keys of [outbound]: name, allowed range, and the int field
 * of struct outbound_conf that holds the value. */
static const struct int_key {
    const char *name;
    long lo, hi;
    size_t off;
} int_keys[] = {
    {"smtp_port", 1, 65535, offsetof(struct outbound_conf, smtp_port)},
    {"max_connections", 1, 10000, offsetof(struct outbound_conf, max_connections)},
    {"max_connections_per_destination", 1, 1000,
     offsetof(struct outbound_conf, max_per_destination)},
    {"idle_seconds", 0, 300, offsetof(struct outbound_conf, idle_seconds)},
    {"timeout_percent", 1, 1000, offsetof(struct outbound_conf, timeout_percent)},
    {"mta_sts_port", 1, 65535, offsetof(struct outbound_conf, mta_sts_port)},
};

/* The int_keys entry for NAME, or NULL. */
static const struct int_key *find_int_key(const char *name)
{
    for (size_t i = 0; i < sizeof int_keys / sizeof *int_keys; i++)
        if (strcmp(name, int_keys[i].name) == 0)
            return &int_keys[i];
    return NULL;
}

/* A DNS name as we accept it in the config: letters, digits, '-', '.',
 * '_' , at most SMTP_MAX_DOMAIN characters, no empty label. */
static int domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > SMTP_MAX_DOMAIN || d[0] == '.' || strstr(d, ".."))
        return 0;
    for (const char *p = d; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return 0;
    return 1;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* "relay", "mx", "smtp:host", "smtp:host:port", "smtp:[host]", "smtp:[host]:port". */
static int parse_route(const char *v, struct transport_route *r, char *err, size_t errsz)
{
    if (strcmp(v, "relay") == 0) {
        r->kind = ROUTE_RELAY;
        return 0;
    }
    if (strcmp(v, "mx") == 0) {
        r->kind = ROUTE_MX;
        return 0;
    }
    if (strncmp(v, "smtp:", 5) != 0) {
        snprintf(err, errsz, "'%s' is not relay, mx, smtp:HOST[:PORT] or smtp:[HOST][:PORT]", v);
        return -1;
    }
    const char *h = v + 5;
    char host[SMTP_MAX_DOMAIN + 1];
    const char *rest;
    size_t hl;
    if (*h == '[') {
        const char *rb = strchr(h, ']');
        if (!rb) {
            snprintf(err, errsz, "'%s': missing ']'", v);
            return -1;
        }
        hl = (size_t)(rb - h - 1);
        h++;
        rest = rb + 1;
        r->no_mx = 1;
    } else {
        rest = strchr(h, ':');
        hl = rest ? (size_t)(rest - h) : strlen(h);
        if (!rest)
            rest = h + hl;
    }
    if (hl == 0 || hl >= sizeof host) {
        snprintf(err, errsz, "'%s': bad host", v);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    /* IPv6 literals only inside brackets; names must look like names. */
    if (!domain_ok(host) && !(r->no_mx && strspn(host, "0123456789abcdefABCDEF:.") == hl)) {
        snprintf(err, errsz, "'%s': bad host", v);
        return -1;
    }
    long port = 0;
    if (*rest) {
        if (*rest != ':' || num(rest + 1, 1, 65535, &port) < 0) {
            snprintf(err, errsz, "'%s': bad port", v);
            return -1;
        }
    }
    r->kind = ROUTE_SMTP;
    lower(host);
    r->host = xstrdup(host);
    r->port = (int)port;
    return 0;
}

static int transport_key(struct config *cfg, const char *name, const char *value, char *err,
                         size_t errsz)
{
    struct outbound_conf *o = &cfg->outbound;
    if (strcmp(name, "*") != 0 && !domain_ok(name)) {
        snprintf(err, errsz, "[transport]: '%s' is not a domain (or *)", name);
        return -1;
    }
    if (o->ntransport >= CONFIG_MAX_TRANSPORT) {
        snprintf(err, errsz, "[transport]: more than %d entries", CONFIG_MAX_TRANSPORT);
        return -1;
    }
    struct transport_route r = {0};
    if (parse_route(value, &r, err, errsz) < 0)
        return -1;
    r.domain = xstrdup(name);
    lower(r.domain);
    for (int i = 0; i < o->ntransport; i++)
        if (strcmp(o->transport[i].domain, r.domain) == 0) {
            snprintf(err, errsz, "[transport]: '%s' given twice", name);
            free(r.domain);
            free(r.host);
            return -1;
        }
    o->transport = xrealloc(o->transport, xmul((size_t)o->ntransport + 1, sizeof r));
    o->transport[o->ntransport++] = r;
    return 0;
}

static int relay_key(struct outbound_conf *o, const char *value, char *err, size_t errsz)
{
    char host[SMTP_MAX_DOMAIN + 1];
    int port = 587;
    if (strchr(value, ':')) {
        if (config_parse_hostport(value, host, sizeof host, &port) < 0 || !domain_ok(host)) {
            snprintf(err, errsz, "relay: '%s' is not HOST:PORT", value);
            return -1;
        }
    } else if (domain_ok(value)) {
        snprintf(host, sizeof host, "%s", value);
    } else {
        snprintf(err, errsz, "relay: '%s' is not HOST:PORT", value);
        return -1;
    }
    lower(host);
    set_str(&o->relay_host, host);
    o->relay_port = port;
    return 0;
}

static int domains_key(struct outbound_conf *o, const char *value, char *err, size_t errsz)
{
    char *copy = xstrdup(value), *save = NULL;
    int bad = 0;
    for (char *t = strtok_r(copy, " ,\t", &save); t; t = strtok_r(NULL, " ,\t", &save))
        if (!domain_ok(t)) {
            snprintf(err, errsz, "tls_required_domains: '%s' is not a domain", t);
            bad = 1;
            break;
        }
    free(copy);
    if (bad)
        return -1;
    set_str(&o->tls_required_domains, value);
    lower(o->tls_required_domains);
    return 0;
}

/* source_address = ADDR [ADDR]: an IPv4 and/or an IPv6 address (numeric),
 * the source of outbound connections of that family. */
static int source_key(struct outbound_conf *o, const char *value, char *err, size_t errsz)
{
    o->source4[0] = o->source6[0] = '\0';
    char buf[128];
    if (strlen(value) >= sizeof buf)
        goto bad;
    snprintf(buf, sizeof buf, "%s", value);
    int n = 0;
    for (char *save = NULL, *a = strtok_r(buf, " \t", &save); a; a = strtok_r(NULL, " \t", &save)) {
        unsigned char bin[16];
        if (++n > 2)
            goto bad;
        if (inet_pton(AF_INET, a, bin) == 1 && !o->source4[0])
            snprintf(o->source4, sizeof o->source4, "%s", a);
        else if (inet_pton(AF_INET6, a, bin) == 1 && !o->source6[0])
            snprintf(o->source6, sizeof o->source6, "%s", a);
        else
            goto bad;
    }
    if (n > 0)
        return 0;
bad:
    snprintf(err, errsz, "source_address: '%s' is not one IPv4 and/or one IPv6 address", value);
    return -1;
}

static int outbound_key(struct config *cfg, const char *name, const char *value, char *err,
                        size_t errsz)
{
    struct outbound_conf *o = &cfg->outbound;
    long n;
    const struct int_key *ik = find_int_key(name);
    if (ik) {
        if (num(value, ik->lo, ik->hi, &n) < 0)
            goto range;
        *(int *)((char *)o + ik->off) = (int)n;
    } else if (strcmp(name, "enabled") == 0) {
        if (strcmp(value, "yes") == 0)
            o->enabled = 1;
        else if (strcmp(value, "no") == 0)
            o->enabled = 0;
        else {
            snprintf(err, errsz, "enabled: '%s' is not yes or no", value);
            return -1;
        }
    } else if (strcmp(name, "mta_sts") == 0) {
        if (strcmp(value, "yes") == 0)
            o->mta_sts = 1;
        else if (strcmp(value, "no") == 0)
            o->mta_sts = 0;
        else {
            snprintf(err, errsz, "mta_sts: '%s' is not yes or no", value);
            return -1;
        }
    } else if (strcmp(name, "resolver") == 0) {
        /* addr or addr@port, numeric (ub_ctx_set_fwd) */
        if (!*value || strlen(value) > 64 ||
            strspn(value, "0123456789abcdefABCDEF:.@") != strlen(value)) {
            snprintf(err, errsz, "resolver: '%s' is not ADDRESS or ADDRESS@PORT", value);
            return -1;
        }
        set_str(&o->resolver, value);
    } else if (strcmp(name, "tls_required_domains") == 0) {
        return domains_key(o, value, err, errsz);
    } else if (strcmp(name, "tls_ca_file") == 0) {
        set_str(&o->tls_ca_file, value);
    } else if (strcmp(name, "relay") == 0) {
        return relay_key(o, value, err, errsz);
    } else if (strcmp(name, "relay_tls") == 0) {
        if (strcmp(value, "implicit") == 0)
            o->relay_tls = RELAY_TLS_IMPLICIT;
        else if (strcmp(value, "starttls") == 0)
            o->relay_tls = RELAY_TLS_STARTTLS;
        else {
            snprintf(err, errsz, "relay_tls: '%s' is not implicit or starttls", value);
            return -1;
        }
    } else if (strcmp(name, "relay_auth_file") == 0) {
        if (value[0] != '/') {
            snprintf(err, errsz, "relay_auth_file: must be an absolute path");
            return -1;
        }
        set_str(&o->relay_auth_file, value);
    } else if (strcmp(name, "relay_ca_file") == 0) {
        set_str(&o->relay_ca_file, value);
    } else if (strcmp(name, "source_address") == 0) {
        return source_key(o, value, err, errsz);
    } else if (strcmp(name, "dnssec_trust_anchor") == 0) {
        /* a file of DS/DNSKEY records, or "none" (no DNSSEC, no DANE); a
         * missing file is said at start (DANE off), not an error here */
        if (strcmp(value, "none") != 0 && value[0] != '/') {
            snprintf(err, errsz, "dnssec_trust_anchor: must be an absolute path or none");
            return -1;
        }
        set_str(&o->dnssec_trust_anchor, value);
    } else {
        snprintf(err, errsz, "unknown key '%s' in [outbound]", name);
        return -1;
    }
    return 0;
range:
    snprintf(err, errsz, "%s: '%s' is not a number in the allowed range (docs/config.md)", name,
             value);
    return -1;
}

int config_outbound_key(struct config *cfg, const char *section, const char *name,
                        const char *value, char *err, size_t errsz)
{
    if (strcmp(section, "transport") == 0)
        return transport_key(cfg, name, value, err, errsz);
    if (strcmp(section, "outbound") == 0)
        return outbound_key(cfg, name, value, err, errsz);
    if (strcmp(name, "retry_unit_ms") == 0) {
        long n;
        if (num(value, 1, 3600000, &n) < 0) {
            snprintf(err, errsz, "retry_unit_ms: expected a number in 1..3600000");
            return -1;
        }
        cfg->retry_unit_ms = (unsigned)n;
        return 0;
    }
    snprintf(err, errsz, "unknown key '%s' in [%s]", name, section);
    return -1;
}

const struct transport_route *config_route(const struct config *cfg, const char *domain)
{
    static const struct transport_route mx = {.domain = "*", .kind = ROUTE_MX};
    static const struct transport_route relay = {.domain = "*", .kind = ROUTE_RELAY};
    const struct outbound_conf *o = &cfg->outbound;
    const struct transport_route *star = NULL;
    for (int i = 0; i < o->ntransport; i++) {
        if (strcmp(o->transport[i].domain, domain) == 0)
            return &o->transport[i];
        if (strcmp(o->transport[i].domain, "*") == 0)
            star = &o->transport[i];
    }
    if (star)
        return star;
    return o->relay_host ? &relay : &mx;
}
