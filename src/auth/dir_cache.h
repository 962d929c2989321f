/* dir_cache: one open directory connection per worker thread, opened on
 * first use and closed when the thread exits. Server-side lookups run on
 * worker threads and call dir_for_thread() instead of opening SQLite for
 * every query. */
#ifndef ROOST_DIR_CACHE_H
#define ROOST_DIR_CACHE_H

struct directory;

struct directory *dir_for_thread(const char *data_dir, const char **error_r);

#endif
