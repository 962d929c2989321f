/* test: implementation of the in-tree unit-test runner (see test.h). */
#include "test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *cur_name;
static int cur_failed;
static int n_passed, n_failed;
static char tmpdir[4096];

void test_begin(const char *name)
{
    cur_name = name;
    cur_failed = 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

void test_end(void)
{
    if (cur_failed) {
        n_failed++;
        printf("FAIL %s\n", cur_name);
    } else {
        n_passed++;
        printf("ok   %s\n", cur_name);
    }
    if (tmpdir[0]) {
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = '\0';
    }
    fflush(stdout);
}

void test_fail_at(const char *file, int line, const char *expr)
{
    cur_failed = 1;
    printf("     %s:%d: assertion failed: %s\n", file, line, expr);
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/roost-unit-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return tmpdir;
}

int test_run(const test_fn *tests)
{
    for (const test_fn *t = tests; *t; t++)
        (*t)();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
