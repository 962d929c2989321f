/* test_throttle: failed-login throttling per account and per client
 * address: at the limit, at limit+1, after the window, and the table bound. */
#include "auth/throttle.h"
#include "auth_tests.h"
#include "core/limits.h"
#include "test.h"

#include <stdio.h>

void test_throttle_limits_account(void)
{
    test_begin("throttle per account: limit, limit+1, window");
    throttle_reset();
    time_t t0 = 1000000;
    /* Different client addresses, so only the account key counts. */
    char addr[32];
    for (int i = 0; i < AUTH_FAIL_LIMIT_ACCOUNT - 1; i++) {
        snprintf(addr, sizeof addr, "192.0.2.%d", i);
        test_assert(throttle_allowed("bob@example.com", addr, t0 + i));
        throttle_failed("bob@example.com", addr, t0 + i);
    }
    /* limit - 1 failures: still allowed */
    test_assert(throttle_allowed("bob@example.com", "198.51.100.1", t0 + 20));
    throttle_failed("bob@example.com", "198.51.100.2", t0 + 20);
    /* limit failures: refused, case-insensitively, from any address */
    test_assert(!throttle_allowed("bob@example.com", "198.51.100.3", t0 + 21));
    test_assert(!throttle_allowed("BOB@Example.COM", "198.51.100.3", t0 + 21));
    /* limit + 1 */
    throttle_failed("bob@example.com", "198.51.100.4", t0 + 22);
    test_assert(!throttle_allowed("bob@example.com", "198.51.100.5", t0 + 22));
    /* other accounts unaffected */
    test_assert(throttle_allowed("alice@example.com", "198.51.100.5", t0 + 22));
    /* sliding window: the first failure (t0) expires at t0 + WINDOW, but
     * limit+1 were recorded, so two must expire before a new attempt */
    test_assert(!throttle_allowed("bob@example.com", "198.51.100.6", t0 + AUTH_FAIL_WINDOW));
    test_assert(throttle_allowed("bob@example.com", "198.51.100.6", t0 + AUTH_FAIL_WINDOW + 1));
    /* everything expired: allowed, and the key is dropped */
    test_assert(throttle_allowed("bob@example.com", "198.51.100.6",
                                 t0 + 22 + AUTH_FAIL_WINDOW));
    test_end();
}

void test_throttle_limits_addr(void)
{
    test_begin("throttle per client address: limit, limit+1, window");
    throttle_reset();
    time_t t0 = 5000000;
    char user[64];
    for (int i = 0; i < AUTH_FAIL_LIMIT_ADDR - 1; i++) {
        snprintf(user, sizeof user, "user%d@example.com", i);
        throttle_failed(user, "203.0.113.9", t0);
    }
    test_assert(throttle_allowed("new@example.com", "203.0.113.9", t0));
    test_assert(throttle_allowed(NULL, "203.0.113.9", t0));
    throttle_failed(NULL, "203.0.113.9", t0);          /* limit */
    test_assert(!throttle_allowed("new@example.com", "203.0.113.9", t0));
    test_assert(!throttle_allowed(NULL, "203.0.113.9", t0 + 1));
    throttle_failed("x@example.com", "203.0.113.9", t0 + 1); /* limit + 1 */
    test_assert(!throttle_allowed(NULL, "203.0.113.9", t0 + 1));
    test_assert(throttle_allowed(NULL, "203.0.113.10", t0 + 1));
    test_assert(!throttle_allowed(NULL, "203.0.113.9", t0 + AUTH_FAIL_WINDOW - 1));
    test_assert(throttle_allowed(NULL, "203.0.113.9", t0 + AUTH_FAIL_WINDOW + 1));
    test_end();
}

void test_throttle_success_clears_account(void)
{
    test_begin("throttle: success clears the account key, not the address key");
    throttle_reset();
    time_t t0 = 9000000;
    for (int i = 0; i < AUTH_FAIL_LIMIT_ACCOUNT; i++)
        throttle_failed("carol@example.com", "2001:db8::1", t0);
    test_assert(!throttle_allowed("carol@example.com", "2001:db8::2", t0));
    throttle_succeeded("Carol@example.com", "2001:db8::2");
    test_assert(throttle_allowed("carol@example.com", "2001:db8::2", t0));
    for (int i = 0; i < AUTH_FAIL_LIMIT_ADDR; i++)
        throttle_failed(NULL, "2001:db8::1", t0);
    throttle_succeeded("carol@example.com", "2001:db8::1");
    test_assert(!throttle_allowed("carol@example.com", "2001:db8::1", t0));
    test_end();
}

void test_throttle_bounded(void)
{
    test_begin("throttle: table bounded, oldest evicted");
    throttle_reset();
    char addr[64];
    time_t t0 = 20000000;
    for (int i = 0; i < AUTH_FAIL_LIMIT_ADDR; i++)
        throttle_failed(NULL, "192.0.2.200", t0);
    test_assert(!throttle_allowed(NULL, "192.0.2.200", t0));
    test_assert(throttle_key_count() == 1);
    for (int i = 0; i < THROTTLE_MAX_KEYS - 1; i++) {
        snprintf(addr, sizeof addr, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        throttle_failed(NULL, addr, t0 + 1);
    }
    test_assert(throttle_key_count() == THROTTLE_MAX_KEYS);
    test_assert(!throttle_allowed(NULL, "192.0.2.200", t0 + 1)); /* still there at the limit */
    throttle_failed(NULL, "10.255.255.255", t0 + 2);             /* limit + 1 keys */
    test_assert(throttle_key_count() == THROTTLE_MAX_KEYS);
    test_assert(throttle_allowed(NULL, "192.0.2.200", t0 + 2)); /* the oldest went */
    /* a very long key is cut, not overflowed */
    char longkey[1000];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    throttle_failed(longkey, NULL, t0 + 3);
    test_assert(throttle_allowed(longkey, NULL, t0 + 3));
    throttle_reset();
    test_assert(throttle_key_count() == 0);
    test_end();
}
