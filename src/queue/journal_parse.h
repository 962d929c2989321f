/* journal_parse: reading the records of a queue journal segment (the
 * format is in journal.h), apart from any file or thread so that it can be
 * fuzzed (tests/fuzz/fuzz_journal.c). */
#ifndef ROOST_JOURNAL_PARSE_H
#define ROOST_JOURNAL_PARSE_H

#include "queue/spool.h"

#include <stddef.h>

#define SEG_MAGIC "ROOSTJ1\n"
#define SEG_MAGIC_LEN 8
#define REC_HDR 5   /* 'J' and a 4-byte little-endian length */

/* Calls CB (which owns MSG) for every intact record of the segment bytes
 * DATA (LEN octets), in order, and stops at the first defect: a bad magic,
 * a torn or malformed record, or a queue-file payload spool_decode refuses.
 * *END_R is where the intact records end; *WHY_R names the defect (NULL
 * when the whole segment was intact): "torn-record" when the bytes end
 * inside a record or stop being records (the tail of an unacknowledged
 * write), else what is wrong with a record written in full. Returns the records handed to CB. */
int journal_parse(const char *data, size_t len, void (*cb)(struct spool_msg *msg, void *arg),
                  void *arg, size_t *end_r, const char **why_r);

#endif
