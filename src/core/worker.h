/* worker: a small pool of threads for slow work (disk writes and fsync,
 * SQLite, password hashing) so that no event loop ever blocks.
 *
 * A job's work function runs on a pool thread; its done function then runs
 * on the event loop that submitted it (struct loop), in that loop's thread.
 * The done function must check that whatever it reports to (a session) is
 * still alive: sessions hold a generation-checked handle (see net/conn.h). */
#ifndef ROOST_WORKER_H
#define ROOST_WORKER_H

#include <event2/event.h>

struct loop;
struct worker_pool;

typedef void (*worker_fn)(void *arg);

/* The loop a thread runs, plus its completion queue. */
struct loop *loop_new(void);
void loop_free(struct loop **lp);
struct event_base *loop_base(struct loop *l);

struct worker_pool *worker_pool_new(int nthreads);
/* Waits for queued jobs to finish, then stops the threads. */
void worker_pool_free(struct worker_pool **pp);

/* Runs WORK(arg) on a pool thread, then DONE(arg) on loop L (if L and DONE
 * are non-NULL). */
void worker_submit(struct worker_pool *p, struct loop *l, worker_fn work,
                   worker_fn done, void *arg);

/* Number of jobs submitted but whose done callback has not run yet. */
int loop_pending_jobs(struct loop *l);

/* Runs FN(arg) on loop L's thread at its next iteration. Safe from any
 * thread: this is how loops hand each other work (accepted connections,
 * shutdown requests). */
void loop_post(struct loop *l, worker_fn fn, void *arg);

/* For work done by a thread of its own (not the pool): loop_job_begin
 * counts a job for L (loop_pending_jobs), and that thread ends it with
 * loop_post_job, which runs DONE(arg) on L like a pool job's done. */
void loop_job_begin(struct loop *l);
void loop_post_job(struct loop *l, worker_fn done, void *arg);

/* Per-loop state of the protocol modules, so that connection code keeps
 * no global mutable state. */
enum loop_slot { LOOP_SLOT_SMTP, LOOP_SLOT_POP3, LOOP_SLOT_IMAP, LOOP_SLOT_COUNT };
void loop_set_slot(struct loop *l, enum loop_slot slot, void *p);
void *loop_get_slot(struct loop *l, enum loop_slot slot);

#endif
