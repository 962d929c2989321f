/* test_loop: helpers for unit tests that run the queue on a real event
 * loop (tests/unit/queue, tests/unit/queue_sched): running a loop until a
 * condition holds or a deadline passes, and looking at what the run left
 * behind in a data directory (log lines, queue files, INBOX messages, values
 * in its SQLite databases). */
#ifndef ROOST_TEST_LOOP_H
#define ROOST_TEST_LOOP_H

#include <stddef.h>

struct loop;

/* Runs LOOP until COND(ARG) holds (checked every 5 ms) or TIMEOUT_MS pass.
 * 1 when it held. */
int test_run_until(struct loop *loop, int (*cond)(void *), void *arg, int timeout_ms);

/* Number of lines in DIR/log/roost.log containing NEEDLE and (if not NULL)
 * ID; -1 if there is no log. */
int test_log_count(const char *dir, const char *needle, const char *id);

/* 1 if DIR/queue/ID exists. */
int test_queue_file_exists(const char *dir, const char *id);

/* One integer that SQL selects from the SQLite database PATH, or -1. */
long long test_db_int(const char *path, const char *sql);
/* The same from ACCOUNT's index under data directory DIR. */
long long test_index_int(const char *dir, const char *account, const char *sql);
/* Runs SQL on ACCOUNT's index under DIR; 1 ok, 0 not. */
int test_index_exec(const char *dir, const char *account, const char *sql);

/* ACCOUNT's pack file number SEQ under DIR (malloc'd). */
char *test_pack_path(const char *dir, const char *account, int seq);
/* 1 if PATH exists. */
int test_path_exists(const char *path);
/* 1 when store_read of UID in ACCOUNT's MAILBOX under DIR gives exactly the
 * WLEN bytes at WANT. */
int test_store_read_is(const char *dir, const char *account, const char *mailbox,
                       unsigned uid, const char *want, size_t wlen);

/* Messages in ACCOUNT's INBOX under data directory DIR (0 if none). */
int test_inbox_count(const char *dir, const char *account);

#endif
