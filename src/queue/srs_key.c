/* srs_key: making and loading DATA/srs.key (see srs_key.h).
 *
 * Creation is crash-safe and race-free between processes (the server and a
 * CLI, or two servers started on one directory): the bytes go to a private
 * temporary file that is fsync'd and then link()ed to srs.key, which refuses
 * to replace an existing key; the loser of a race reads the winner's key.
 * The directory is fsync'd before the key is used, so no SRS address is
 * handed out under a key that a crash could lose. */
#include "queue/srs_key.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static char *cached_dir;                     /* under key_lock */
static unsigned char cached_key[SRS_KEY_LEN];

static int key_read(const char *path, unsigned char key_r[SRS_KEY_LEN], const char **error_r);
static int key_create(const char *data_dir, const char *path, const char **error_r);

/* 0 read, 1 no such file, -1 error. */
static int key_read(const char *path, unsigned char key_r[SRS_KEY_LEN], const char **error_r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        *error_r = "cannot open the SRS key";
        return -1;
    }
    struct stat st;
    unsigned char buf[SRS_KEY_LEN + 1];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == SRS_KEY_LEN)
        n = read(fd, buf, sizeof buf);
    close(fd);
    if (n != SRS_KEY_LEN) {
        *error_r = "the SRS key is not 32 bytes";
        OPENSSL_cleanse(buf, sizeof buf);
        return -1;
    }
    memcpy(key_r, buf, SRS_KEY_LEN);
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

/* Writes a new key to a temporary file and links it to PATH (never
 * replacing one). 0 created or found (someone else won), -1 error. */
static int key_create(const char *data_dir, const char *path, const char **error_r)
{
    unsigned char key[SRS_KEY_LEN];
    if (RAND_bytes(key, sizeof key) != 1) {
        *error_r = "RAND_bytes failed";
        return -1;
    }
    char *tmp = xasprintf("%s/.srs.key.%ld.%lx", data_dir, (long)getpid(),
                          (unsigned long)pthread_self());
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error_r = "cannot create the SRS key";
        goto out;
    }
    int ok = fs_write_all(fd, key, sizeof key) == 0 && fsync(fd) == 0;
    if (close(fd) < 0)
        ok = 0;
    if (!ok) {
        *error_r = "cannot write the SRS key";
        unlink(tmp);
        goto out;
    }
    int linked = link(tmp, path);
    int link_errno = errno;
    unlink(tmp);
    if (linked < 0 && link_errno != EEXIST) {
        *error_r = "cannot link the SRS key";
        goto out;
    }
    if (fs_fsync_dir_path(data_dir) < 0) {
        *error_r = "cannot fsync the data directory";
        goto out;
    }
    if (linked == 0)
        log_info("queue", "event=srs-key-created file=srs.key");
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof key);
    free(tmp);
    return rc;
}

int srs_key_get(const char *data_dir, unsigned char key_r[SRS_KEY_LEN], const char **error_r)
{
    pthread_mutex_lock(&key_lock);
    if (cached_dir && strcmp(cached_dir, data_dir) == 0) {
        memcpy(key_r, cached_key, SRS_KEY_LEN);
        pthread_mutex_unlock(&key_lock);
        return 0;
    }
    char *path = xasprintf("%s/srs.key", data_dir);
    int r = key_read(path, cached_key, error_r);
    if (r == 1 && key_create(data_dir, path, error_r) == 0)
        r = key_read(path, cached_key, error_r);
    if (r == 0) {
        free(cached_dir);
        cached_dir = xstrdup(data_dir);
        memcpy(key_r, cached_key, SRS_KEY_LEN);
    } else {
        if (r > 0)
            *error_r = "the SRS key vanished";
        free(cached_dir);
        cached_dir = NULL;
        OPENSSL_cleanse(cached_key, sizeof cached_key);
    }
    pthread_mutex_unlock(&key_lock);
    free(path);
    return r == 0 ? 0 : -1;
}
