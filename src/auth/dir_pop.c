/* dir_pop: Gmail's per-account POP options in the directory (directory.h:
 * dir_account_set_pop, dir_pop_scope_name, dir_pop_after_name; dir_int.h:
 * dir_pop_from_row, which dir_account_get/list use to fill the fields).
 *
 * Stored in the accounts table (schema version 2) as the option names, so
 * the database reads the same as the CLI: pop_scope 'all' | 'from-now',
 * pop_since (unix time; 0 unless from-now), pop_after 'keep' | 'mark-read' |
 * 'archive' | 'delete'. CHECK constraints keep other values out. */
#include "auth/dir_int.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

static const char *const scope_names[] = { [POP_SCOPE_ALL] = "all",
                                           [POP_SCOPE_FROM_NOW] = "from-now" };
static const char *const after_names[] = { [POP_AFTER_KEEP] = "keep",
                                           [POP_AFTER_MARK_READ] = "mark-read",
                                           [POP_AFTER_ARCHIVE] = "archive",
                                           [POP_AFTER_DELETE] = "delete" };
#define N_SCOPES ((int)(sizeof scope_names / sizeof scope_names[0]))
#define N_AFTERS ((int)(sizeof after_names / sizeof after_names[0]))

static int update_scope(struct directory *d, int64_t id, int scope, time_t now);

const char *dir_pop_scope_name(enum dir_pop_scope s)
{
    return (int)s >= 0 && (int)s < N_SCOPES ? scope_names[s] : "?";
}

const char *dir_pop_after_name(enum dir_pop_after a)
{
    return (int)a >= 0 && (int)a < N_AFTERS ? after_names[a] : "?";
}

void dir_pop_from_row(sqlite3_stmt *st, int col, struct dir_account *a)
{
    int scope = dir_name_index(scope_names, N_SCOPES, (const char *)sqlite3_column_text(st, col));
    int after = dir_name_index(after_names, N_AFTERS, (const char *)sqlite3_column_text(st, col + 2));
    a->pop_scope = scope < 0 ? POP_SCOPE_ALL : (enum dir_pop_scope)scope;
    a->pop_since = a->pop_scope == POP_SCOPE_FROM_NOW
                       ? (time_t)sqlite3_column_int64(st, col + 1)
                       : 0;
    a->pop_after = after < 0 ? POP_AFTER_KEEP : (enum dir_pop_after)after;
}

static int update_scope(struct directory *d, int64_t id, int scope, time_t now)
{
    sqlite3_stmt *st = dir_prep(d, "UPDATE accounts SET pop_scope = ?, pop_since = ?"
                                   " WHERE id = ?");
    if (!st)
        return -1;
    int ok = dir_bind_text(st, 1, scope_names[scope]) == 0 &&
             sqlite3_bind_int64(st, 2, scope == POP_SCOPE_FROM_NOW ? (sqlite3_int64)now : 0) ==
                 SQLITE_OK &&
             sqlite3_bind_int64(st, 3, id) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
    if (!ok)
        dir_sql_error(d, "pop scope");
    dir_finish(d, st);
    return ok ? 0 : -1;
}

int dir_account_set_pop(struct directory *d, const char *address, int scope, int after,
                        time_t now, const char **error_r)
{
    if (scope < -1 || scope >= N_SCOPES || after < -1 || after >= N_AFTERS ||
        (scope == POP_SCOPE_FROM_NOW && now <= 0)) {
        dir_set_error(error_r, "bad POP option");
        return -1;
    }
    char addr[DIR_ADDR_MAX];
    if (!address || dir_lower(addr, sizeof addr, address) < 0) {
        dir_set_error(error_r, "no such account");
        return 1;
    }
    int64_t id = dir_begin_account(d, addr, error_r);
    if (id <= 0)
        return id < 0 ? -1 : 1;
    if ((scope >= 0 && update_scope(d, id, scope, now) < 0) ||
        (after >= 0 && dir_update_account_text(d, id,
                                               "UPDATE accounts SET pop_after = ? WHERE id = ?",
                                               after_names[after], "pop after") < 0) ||
        dir_commit(d) < 0) {
        dir_set_error(error_r, d->err);
        dir_rollback(d);
        return -1;
    }
    char qb[LOG_QSIZE];
    log_info("auth", "event=pop_options_changed account=%s pop_scope=%s pop_after=%s",
             log_q(qb, sizeof qb, addr, strlen(addr)), scope >= 0 ? scope_names[scope] : "-",
             after >= 0 ? after_names[after] : "-");
    return 0;
}
