/* throttle: failed-login throttling per account and per client address, in
 * memory, shared by every loop through one mutex (a documented channel).
 * After AUTH_FAIL_LIMIT_* failures within AUTH_FAIL_WINDOW seconds, further
 * attempts for that key are refused (454 4.7.0) until the window passes. */
#ifndef ROOST_THROTTLE_H
#define ROOST_THROTTLE_H

#include <stddef.h>
#include <time.h>

/* 1 if a login for ACCOUNT (may be NULL) from ADDR may be attempted now. */
int throttle_allowed(const char *account, const char *addr, time_t now);
void throttle_failed(const char *account, const char *addr, time_t now);
void throttle_succeeded(const char *account, const char *addr);
/* For tests. */
void throttle_reset(void);
/* The table keeps at most this many keys; the least recently failed goes. */
#define THROTTLE_MAX_KEYS 100000
/* For tests: how many keys the table holds. */
size_t throttle_key_count(void);

#endif
