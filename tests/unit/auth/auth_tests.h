/* auth_tests: the test groups of unit_auth, one function list per file. */
#ifndef ROOST_AUTH_TESTS_H
#define ROOST_AUTH_TESTS_H

void test_throttle_limits_account(void);
void test_throttle_limits_addr(void);
void test_throttle_success_clears_account(void);
void test_throttle_bounded(void);
void test_cli_domain_account(void);
void test_cli_alias_apppass(void);
/* test_pop_options.c */
void test_pop_options_migration(void);
void test_pop_options_set_get(void);
void test_pop_option_names(void);
void test_pop_options_cli(void);
/* test_quota.c */
void test_quota_parse_format(void);
void test_quota_set_get_migration(void);
void test_quota_cli(void);

#endif
