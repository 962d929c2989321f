/* store_compact_due: which accounts the server's periodic compaction pass
 * (cli/serve_compact.c) should look at: those where a change left a pack
 * partly live since the last pass (store_pack_filter: an expunge, a POP3
 * DELE, a mailbox delete that removed rows from a pack that stays), where
 * a delivery rotated away from a pack that still holds mail
 * (store_pack_begin), or whose retired packs still wait for their grace
 * period. Off until store_compact_due_enable (the CLI and the unit tests
 * record nothing). A set of at most STORE_COMPACT_DUE_MAX names under one
 * mutex; past that it only remembers "every account". Called from worker
 * threads inside write transactions: a lookup and a copy, no I/O. */
#include "store/store.h"
#include "store/store_int.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define STORE_COMPACT_DUE_MAX 4096

static pthread_mutex_t due_lock = PTHREAD_MUTEX_INITIALIZER;
static int due_on;           /* atomic */
static char **due;           /* under due_lock */
static size_t ndue, capdue;
static int due_all;          /* the set overflowed */

void store_compact_due_enable(int on)
{
    __atomic_store_n(&due_on, on, __ATOMIC_RELAXED);
}

void store_compact_due_add(const char *account)
{
    if (!__atomic_load_n(&due_on, __ATOMIC_RELAXED) || !account || !*account)
        return;
    pthread_mutex_lock(&due_lock);
    int seen = due_all;
    for (size_t i = 0; i < ndue && !seen; i++)
        seen = strcmp(due[i], account) == 0;
    if (!seen) {
        if (ndue == STORE_COMPACT_DUE_MAX) {
            due_all = 1;
        } else {
            if (ndue == capdue) {
                capdue = capdue ? capdue * 2 : 16;
                due = xrealloc(due, capdue * sizeof *due);
            }
            due[ndue++] = xstrdup(account);
        }
    }
    pthread_mutex_unlock(&due_lock);
}

void store_compact_note(sqlite3 *db)
{
    if (!__atomic_load_n(&due_on, __ATOMIC_RELAXED))
        return;
    /* .../mail/<account>/index.sqlite: the account is the directory name */
    const char *path = sqlite3_db_filename(db, "main");
    const char *end = path ? strrchr(path, '/') : NULL;
    if (!end || end == path)
        return;
    const char *start = end;
    while (start > path && start[-1] != '/')
        start--;
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= 320)
        return;
    char account[320];
    memcpy(account, start, len);
    account[len] = '\0';
    store_compact_due_add(account);
}

char **store_compact_due_take(size_t *n_r, int *all_r)
{
    pthread_mutex_lock(&due_lock);
    char **out = due;
    *n_r = ndue;
    *all_r = due_all;
    due = NULL;
    ndue = capdue = 0;
    due_all = 0;
    pthread_mutex_unlock(&due_lock);
    return out;
}

int store_compact_all_accounts(const char *data_dir, char ***names_r, size_t *n_r)
{
    *names_r = NULL;
    *n_r = 0;
    char *path = xasprintf("%s/mail", data_dir);
    DIR *d = opendir(path);
    free(path);
    if (!d)
        return errno == ENOENT ? 1 : -1;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (*n_r == cap) {
            cap = cap ? cap * 2 : 64;
            *names_r = xrealloc(*names_r, cap * sizeof **names_r);
        }
        (*names_r)[(*n_r)++] = xstrdup(de->d_name);
    }
    closedir(d);
    return 0;
}
