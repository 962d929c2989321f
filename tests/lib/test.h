/* test: the tiny in-tree unit-test runner.
 *
 *   static void test_foo(void) { test_begin("foo"); test_assert(x == 1); test_end(); }
 *   int main(void) { return test_run((test_fn[]){ test_foo, NULL }); }
 *
 * Each test_begin/test_end pair is one test case; it passes when none of its
 * assertions failed. test_run prints "unit-<prog>: N passed, N failed" and
 * returns non-zero if anything failed. */
#ifndef ROOST_TEST_H
#define ROOST_TEST_H

#include <stddef.h>
#include <string.h>

typedef void (*test_fn)(void);

void test_begin(const char *name);
void test_end(void);
void test_fail_at(const char *file, int line, const char *expr);
int test_run(const test_fn *tests);
/* A fresh empty directory under $TMPDIR for this test; removed by test_end. */
const char *test_tmpdir(void);

#define test_assert(expr) \
    do { if (!(expr)) test_fail_at(__FILE__, __LINE__, #expr); } while (0)
#define test_assert_streq(a, b) \
    do { const char *a_ = (a), *b_ = (b); \
         if (!a_ || !b_ || strcmp(a_, b_) != 0) test_fail_at(__FILE__, __LINE__, #a " == " #b); } while (0)
#define test_assert_memeq(a, alen, b, blen) \
    do { if ((size_t)(alen) != (size_t)(blen) || memcmp((a), (b), (size_t)(alen)) != 0) \
         test_fail_at(__FILE__, __LINE__, #a " == " #b); } while (0)

#endif
