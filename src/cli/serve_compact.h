/* serve_compact: the server's periodic pack compaction (serve_compact.c). */
#ifndef ROOST_SERVE_COMPACT_H
#define ROOST_SERVE_COMPACT_H

struct loop;
struct worker_pool;

/* Every INTERVAL seconds (0: never) a pass over the accounts due
 * (store_compact_due_take) runs on POOL, never two at once; retired packs
 * are unlinked GRACE seconds after their rewrite. The timer lives on LOOP. */
void serve_compact_start(const char *data_dir, struct worker_pool *pool, struct loop *loop,
                         unsigned interval, unsigned grace);
/* Stops the timer (a pass already on the pool finishes; its done runs on
 * LOOP like any job's). */
void serve_compact_stop(void);

#endif
