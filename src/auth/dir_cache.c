/* dir_cache: per-thread cached directory handles (see dir_cache.h). */
#include "auth/dir_cache.h"
#include "auth/directory.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_key_t dir_key;
static pthread_once_t dir_key_once = PTHREAD_ONCE_INIT;

static void close_thread_dir(void *p)
{
    struct directory *d = p;
    dir_close(&d);
}

static void make_key(void)
{
    pthread_key_create(&dir_key, close_thread_dir);
}

struct directory *dir_for_thread(const char *data_dir, const char **error_r)
{
    pthread_once(&dir_key_once, make_key);
    struct directory *d = pthread_getspecific(dir_key);
    if (d)
        return d;
    d = dir_open(data_dir, error_r);
    if (d)
        pthread_setspecific(dir_key, d);
    return d;
}
