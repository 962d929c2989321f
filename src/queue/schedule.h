/* schedule: the queue's timing policy and its limits on concurrent remote
 * attempts, kept apart from the mechanics in queue.c so that both are pure
 * and testable.
 *
 * Durations are counted in units of unit_ms milliseconds (1000 in
 * production: the config's seconds; tests shrink the unit). A recipient's
 * next attempt after its Nth failure is retry[N-1] units later (the last
 * step repeats), never later than the message's expiry (arrival + max_age);
 * a deferral at or after the expiry gives up. Local deliveries keep their
 * own short schedule (5 s, 15 s, 30 s, 1 min, 5 min, 15 min, then 30 min).
 *
 * The slot table counts outstanding remote attempts in total and per
 * destination domain; only the queue loop touches it. */
#ifndef ROOST_SCHEDULE_H
#define ROOST_SCHEDULE_H

#include <stdint.h>
#include <time.h>

#define SCHED_MAX_STEPS 16

struct config;

struct sched_policy {
    unsigned unit_ms;
    unsigned retry[SCHED_MAX_STEPS];   /* remote back-off steps, in units */
    int nretry;
    unsigned max_age;                  /* units */
    unsigned delay_warning;            /* units; 0 = never */
    int max_remote;                    /* outstanding remote attempts in total */
    int max_per_domain;
};

/* The built-in defaults (as config_defaults). */
void sched_policy_default(struct sched_policy *p);
/* From the config's [queue] section. */
void sched_policy_from_config(struct sched_policy *p, const struct config *cfg);

/* ms since the epoch when a message that arrived at ARRIVED gives up. */
int64_t sched_expiry_ms(const struct sched_policy *p, time_t arrived);
/* When the "delayed" notice is due; 0 when disabled. */
int64_t sched_warning_ms(const struct sched_policy *p, time_t arrived);
/* The next attempt of a remote recipient after ATTEMPTS failed attempts
 * (>= 1), at NOW, capped at the expiry. */
int64_t sched_next_remote(const struct sched_policy *p, int attempts, int64_t now_ms,
                          int64_t expiry_ms);
/* The same for a local recipient (the short local schedule). */
int64_t sched_next_local(const struct sched_policy *p, int attempts, int64_t now_ms,
                         int64_t expiry_ms);

/* ---- concurrency slots (queue loop only) ---- */
struct sched_slots;
struct sched_slots *sched_slots_new(void);
void sched_slots_free(struct sched_slots **sp);
/* Takes a slot for DOMAIN if both limits allow: 1 taken, 0 not now. */
int sched_slot_take(struct sched_slots *s, const struct sched_policy *p, const char *domain);
void sched_slot_release(struct sched_slots *s, const char *domain);
int sched_slots_total(const struct sched_slots *s);
int sched_slots_domain(const struct sched_slots *s, const char *domain);

#endif
