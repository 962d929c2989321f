/* test_smtp_main: runs every smtp unit test (parser and DATA reader). */
#include "test_smtp.h"

int main(void)
{
    test_fn all[128];
    size_t n = 0;
    const test_fn *lists[] = {test_smtp_parse_tests, test_smtp_data_tests};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
        for (const test_fn *t = lists[l]; *t && n + 1 < sizeof all / sizeof all[0]; t++)
            all[n++] = *t;
    all[n] = NULL;
    return test_run(all);
}
