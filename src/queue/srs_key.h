/* srs_key: the SRS secret, DATA/srs.key: 32 random bytes (RAND_bytes),
 * mode 0600, made at first use and never replaced (replacing it would make
 * every SRS address handed out in the last SRS_MAX_AGE_DAYS bounce as
 * invalid). Loaded once per process and data directory, then served from
 * memory; thread-safe. Blocking (file I/O the first time): worker threads
 * only. */
#ifndef ROOST_SRS_KEY_H
#define ROOST_SRS_KEY_H

#include "queue/srs.h"

/* Copies the secret of DATA_DIR into KEY_R, creating DATA_DIR/srs.key if it
 * does not exist. 0 ok, -1 error (*error_r: static or thread-local text). */
int srs_key_get(const char *data_dir, unsigned char key_r[SRS_KEY_LEN], const char **error_r);

#endif
