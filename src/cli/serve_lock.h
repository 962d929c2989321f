/* serve_lock: one `roost serve` per data directory. */
#ifndef ROOST_SERVE_LOCK_H
#define ROOST_SERVE_LOCK_H

/* Takes the exclusive lock on DATA_DIR/serve.lock for the life of the
 * process and writes the pid into it. 0, or -1 with *error_r naming the
 * server that holds it. */
int serve_lock_data_dir(const char *data_dir, const char **error_r);

#endif
