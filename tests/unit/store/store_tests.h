/* store_tests: the test groups of unit_store that live outside
 * test_store.c (which holds main). */
#ifndef ROOST_STORE_TESTS_H
#define ROOST_STORE_TESTS_H

/* test_store_pop.c: changes (expunge, flags, move) and the POP3 maildrop */
void test_store_expunge(void);
void test_store_add_flag(void);
void test_store_flag_limits(void);
void test_store_move(void);
void test_store_index_migrated(void);
void test_store_pop_lock(void);
void test_store_pop_since(void);
void test_store_pop_empty_account(void);
void test_store_pop_snapshot_stable(void);

/* test_store_cached.c: store_read_cached */
void test_store_read_cached(void);

/* test_store_pack.c: pack files and batch delivery */
void test_pack_batch_read_back(void);
void test_pack_duplicates(void);
void test_pack_missing_mailbox(void);
void test_pack_uid_modseq(void);
void test_pack_rotation_and_unlink(void);
void test_pack_copy_then_expunge(void);
void test_pack_crash_tail(void);
void test_pack_migrate_v4(void);
void test_pack_concurrent(void);
void test_pack_timing(void);

/* test_store_compact.c: pack compaction */
void test_compact_rewrite_retire_remove(void);
void test_compact_reader_grace(void);
void test_compact_copies_and_orphans(void);
void test_compact_crash_before_commit(void);
void test_compact_races_delivery(void);
void test_compact_no_store(void);
void test_compact_due_set(void);
void test_compact_config(void);

#endif
