/* fetch_tests: shared fixtures of the imap_fetch unit tests (one binary:
 * test_main.c runs the cases of test_fetch.c and test_search.c). */
#ifndef ROOST_FETCH_TESTS_H
#define ROOST_FETCH_TESTS_H

#include "imap/imap_fetch.h"
#include "imap/imap_search.h"
#include "store/store_imap.h"

#include <stddef.h>
#include <stdint.h>

/* A multipart/mixed message: 1 text/plain, 2 a base64 attachment whose
 * content holds NULs, 3 message/rfc822 with its own text, 4 a part with an
 * unknown transfer encoding. */
extern const char fx_multipart[];
/* A one-part message with "Date: Thu, 01 Feb 2024 23:30:00 -0500" (2 Feb
 * in UTC). */
extern const char fx_simple[];

/* Writes DATA into NAME in the test's tmpdir; returns the malloc'd path. */
char *fx_write(const char *name, const char *data);
/* A row; PATH NULL means a file that does not exist (proves that an item
 * never opens the file). Free with fx_row_free. */
struct store_fmsg fx_row(uint32_t uid, unsigned sysflags, const char *keywords,
                         const char *path, size_t size);
void fx_row_free(struct store_fmsg *r);

/* test_fetch.c */
void test_fetch_index_items(void);
void test_fetch_structures(void);
void test_fetch_body_from_bodystructure(void);
void test_fetch_sections(void);
void test_fetch_partial(void);
void test_fetch_binary(void);
void test_fetch_rfc822(void);
void test_fetch_out_full_and_gone(void);
void test_fetch_spec_predicates(void);
/* test_search.c */
void test_search_index_keys(void);
void test_search_sets(void);
void test_search_dates(void);
void test_search_file_keys(void);
void test_search_cached_header(void);
void test_search_nesting(void);
void test_search_format_plain(void);
void test_search_format_esearch(void);
/* test_batch.c */
void test_batch_rowwalk(void);
void test_batch_fetch_20000(void);

#endif
