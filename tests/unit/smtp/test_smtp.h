/* test_smtp: the test lists of the smtp unit-test files, run by
 * test_smtp_main.c. */
#ifndef ROOST_TEST_SMTP_H
#define ROOST_TEST_SMTP_H

#include "test.h"

extern const test_fn test_smtp_parse_tests[];
extern const test_fn test_smtp_data_tests[];

#endif
