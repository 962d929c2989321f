/* forward_tests: the tests of tests/unit/forward/ shared with main() in
 * test_srs.c. */
#ifndef ROOST_FORWARD_TESTS_H
#define ROOST_FORWARD_TESTS_H

#include "queue/srs.h"

/* A fixed test key from SEED. */
void srs_tests_key(unsigned char key[SRS_KEY_LEN], unsigned char seed);

/* test_forward.c */
void test_forward_id(void);
void test_forward_loop(void);
void test_srs_key_file(void);
void test_dir_forward(void);
void test_forward_deliver(void);

#endif
