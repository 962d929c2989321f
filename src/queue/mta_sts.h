/* mta_sts: MTA-STS (RFC 8461) for the outbound transport, on the queue's
 * loop: the policy of a recipient domain, from its TXT record
 * "_mta-sts.DOMAIN", an HTTPS fetch (mta_sts_fetch.c) and a cache kept in
 * memory and on disk (DATA/queue/mta-sts/DOMAIN). queue/remote.c asks for
 * the policy before the MX lookup and enforces it (docs/outbound.md,
 * "MTA-STS"). The parsers are in mta_sts_policy.c. */
#ifndef ROOST_MTA_STS_H
#define ROOST_MTA_STS_H

#include "queue/mta_sts_policy.h"

#include <openssl/ssl.h>
#include <stddef.h>

struct event_base;
struct dns;
struct loop;
struct worker_pool;
struct sts;
struct sts_req;

/* A policy for DOMAIN (POLICY NULL: none, deliver as without MTA-STS);
 * SOURCE says where it came from ("fetched", "cache", "cache-after-failure"). */
typedef void (*sts_fn)(void *arg, const struct sts_policy *policy, const char *id,
                       const char *source);

/* HTTPS_CTX: a client context whose store verifies the policy hosts
 * (kept, not owned); PORT: the HTTPS port (443; tests use another);
 * TIMEOUT_MS: the whole of one fetch. */
struct sts *sts_new(struct event_base *base, struct dns *dns, SSL_CTX *https_ctx, int port,
                    int timeout_ms);
/* The cache directory DIR (made if missing; its policies loaded now,
 * expired ones left out) and the pool that writes it. Without it the
 * cache is in memory only. */
void sts_set_store(struct sts *s, const char *dir, struct worker_pool *pool, struct loop *loop);
void sts_free(struct sts **sp);

/* The policy of DOMAIN (lower case). DONE runs once, later, on the loop,
 * unless sts_cancel() is called first. */
struct sts_req *sts_get(struct sts *s, const char *domain, sts_fn done, void *arg);
void sts_cancel(struct sts_req *r);

/* mta_sts_fetch.c: the HTTPS GET of https://mta-sts.DOMAIN/.well-known/
 * mta-sts.txt. DONE: OK 1 with the body, or 0 with ERROR. */
struct sts_fetch;
typedef void (*sts_fetch_fn)(void *arg, int ok, const char *body, size_t len, const char *error);
struct sts_fetch *sts_fetch_start(struct event_base *base, struct dns *dns, SSL_CTX *ctx,
                                  const char *domain, int port, int timeout_ms,
                                  sts_fetch_fn done, void *arg);
void sts_fetch_cancel(struct sts_fetch *f);

#endif
