/* schedule: back-off, expiry and the remote-attempt slots (schedule.h). */
#include "queue/schedule.h"
#include "core/config.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

/* The local schedule in units (seconds by default), as before. */
static const unsigned local_delays[] = { 5, 15, 30, 60, 300, 900, 1800 };
#define N_LOCAL_DELAYS (sizeof local_delays / sizeof local_delays[0])

void sched_policy_default(struct sched_policy *p)
{
    struct config cfg;
    config_defaults(&cfg, 0);
    sched_policy_from_config(p, &cfg);
    config_free(&cfg);
}

void sched_policy_from_config(struct sched_policy *p, const struct config *cfg)
{
    memset(p, 0, sizeof *p);
    p->unit_ms = 1000;
    for (int i = 0; i < cfg->queue_nretry && i < SCHED_MAX_STEPS; i++)
        p->retry[p->nretry++] = cfg->queue_retry[i];
    if (p->nretry == 0)
        p->retry[p->nretry++] = 300;
    p->max_age = cfg->queue_max_age;
    p->delay_warning = cfg->queue_delay_warning;
    p->max_remote = cfg->queue_max_remote > 0 ? cfg->queue_max_remote : 1;
    p->max_per_domain = cfg->queue_max_per_domain > 0 ? cfg->queue_max_per_domain : 1;
}

int64_t sched_expiry_ms(const struct sched_policy *p, time_t arrived)
{
    return (int64_t)arrived * 1000 + (int64_t)p->max_age * p->unit_ms;
}

int64_t sched_warning_ms(const struct sched_policy *p, time_t arrived)
{
    if (p->delay_warning == 0)
        return 0;
    return (int64_t)arrived * 1000 + (int64_t)p->delay_warning * p->unit_ms;
}

static int64_t capped(int64_t next, int64_t expiry_ms)
{
    return next > expiry_ms ? expiry_ms : next;
}

int64_t sched_next_remote(const struct sched_policy *p, int attempts, int64_t now_ms,
                          int64_t expiry_ms)
{
    int i = attempts < 1 ? 0 : attempts - 1;
    if (i >= p->nretry)
        i = p->nretry - 1;
    return capped(now_ms + (int64_t)p->retry[i] * p->unit_ms, expiry_ms);
}

int64_t sched_next_local(const struct sched_policy *p, int attempts, int64_t now_ms,
                         int64_t expiry_ms)
{
    size_t i = attempts < 1 ? 0 : (size_t)attempts - 1;
    if (i >= N_LOCAL_DELAYS)
        i = N_LOCAL_DELAYS - 1;
    return capped(now_ms + (int64_t)local_delays[i] * p->unit_ms, expiry_ms);
}

/* ---- slots: a small list of domains with attempts outstanding ---- */

struct slot_domain {
    struct slot_domain *next;
    char *domain;
    int n;
};

struct sched_slots {
    struct slot_domain *domains;
    int total;
};

struct sched_slots *sched_slots_new(void)
{
    return xcalloc(1, sizeof(struct sched_slots));
}

void sched_slots_free(struct sched_slots **sp)
{
    struct sched_slots *s = *sp;
    if (!s)
        return;
    while (s->domains) {
        struct slot_domain *d = s->domains;
        s->domains = d->next;
        free(d->domain);
        free(d);
    }
    free(s);
    *sp = NULL;
}

static struct slot_domain *find(const struct sched_slots *s, const char *domain)
{
    for (struct slot_domain *d = s->domains; d; d = d->next)
        if (strcmp(d->domain, domain) == 0)
            return d;
    return NULL;
}

int sched_slot_take(struct sched_slots *s, const struct sched_policy *p, const char *domain)
{
    if (s->total >= p->max_remote)
        return 0;
    struct slot_domain *d = find(s, domain);
    if (d && d->n >= p->max_per_domain)
        return 0;
    if (!d) {
        d = xcalloc(1, sizeof *d);
        d->domain = xstrdup(domain);
        d->next = s->domains;
        s->domains = d;
    }
    d->n++;
    s->total++;
    return 1;
}

void sched_slot_release(struct sched_slots *s, const char *domain)
{
    struct slot_domain **pp = &s->domains;
    for (; *pp; pp = &(*pp)->next) {
        struct slot_domain *d = *pp;
        if (strcmp(d->domain, domain) != 0)
            continue;
        s->total--;
        if (--d->n == 0) {
            *pp = d->next;
            free(d->domain);
            free(d);
        }
        return;
    }
}

int sched_slots_total(const struct sched_slots *s)
{
    return s->total;
}

int sched_slots_domain(const struct sched_slots *s, const char *domain)
{
    const struct slot_domain *d = find(s, domain);
    return d ? d->n : 0;
}
