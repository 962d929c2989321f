/* dir_forward: automatic forwarding per account in the directory
 * (directory.h: dir_forward_get, dir_forward_set, dir_forward_keep_name,
 * dir_forward_keep_parse, dir_forward_address_valid), Gmail's "Forward a
 * copy of incoming mail to OTHER and keep / mark as read / archive / delete
 * Roost's copy". The queue reads it at local delivery (queue/forward.c).
 *
 * Stored in the accounts table (schema version 4) as text, so the database
 * reads the same as the CLI: forward_to '' (off) or an address, lower-cased;
 * forward_keep 'keep' | 'mark-read' | 'archive' | 'delete' (a CHECK
 * constraint keeps other values out). The target is refused when malformed,
 * when it is the account itself (directly, by plus-addressing or through an
 * alias), or when it is in a domain served here but reaches no account. */
#include "auth/dir_int.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

static const char *const keep_names[] = { [FORWARD_KEEP] = "keep",
                                          [FORWARD_MARK_READ] = "mark-read",
                                          [FORWARD_ARCHIVE] = "archive",
                                          [FORWARD_DELETE] = "delete" };
#define N_KEEPS ((int)(sizeof keep_names / sizeof keep_names[0]))

static int local_ok(const char *local, size_t len);
static int check_target(struct directory *d, const char *account, const char *to,
                        const char **error_r);

const char *dir_forward_keep_name(enum dir_forward_keep k)
{
    return (int)k >= 0 && (int)k < N_KEEPS ? keep_names[k] : "?";
}

int dir_forward_keep_parse(const char *s)
{
    return dir_name_index(keep_names, N_KEEPS, s);
}

/* A dot-atom of RFC 5322 atext ('+' allowed: the target may be anyone's
 * address), at most 64 octets. */
static int local_ok(const char *local, size_t len)
{
    if (len == 0 || len > DIR_LOCAL_MAX || local[0] == '.' || local[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)local[i];
        if (c == '.') {
            if (local[i + 1] == '.')
                return 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c))))
            return 0;
    }
    return 1;
}

int dir_forward_address_valid(const char *address)
{
    if (!address || strlen(address) >= DIR_ADDR_MAX)
        return 0;
    const char *at = strrchr(address, '@');
    if (!at)
        return 0;
    size_t local_len = (size_t)(at - address);
    return !memchr(address, '@', local_len) && local_ok(address, local_len) &&
           dir_domain_valid(at + 1);
}

int dir_forward_get(struct directory *d, const char *address, struct dir_forward *f_r)
{
    memset(f_r, 0, sizeof *f_r);
    char addr[DIR_ADDR_MAX];
    if (!address || dir_lower(addr, sizeof addr, address) < 0)
        return 1;
    sqlite3_stmt *st;
    int r = dir_lookup_row(d, "SELECT forward_to, forward_keep FROM accounts WHERE address = ?",
                           addr, "forward get", &st);
    if (r != 1)
        return r == 0 ? 1 : -1;
    const char *to = (const char *)sqlite3_column_text(st, 0);
    snprintf(f_r->to, sizeof f_r->to, "%s", to ? to : "");
    int keep = dir_forward_keep_parse((const char *)sqlite3_column_text(st, 1));
    f_r->keep = keep < 0 ? FORWARD_KEEP : (enum dir_forward_keep)keep;
    dir_finish(d, st);
    return 0;
}

/* 0 acceptable, 2 refused (*error_r says why), -1 lookup error. TO is
 * lower-cased; ACCOUNT is the account's own address. */
static int check_target(struct directory *d, const char *account, const char *to,
                        const char **error_r)
{
    if (!dir_forward_address_valid(to)) {
        dir_set_error(error_r, "not a valid address (local@domain.example)");
        return 2;
    }
    char target[DIR_ADDR_MAX];
    enum dir_rcpt r = dir_resolve_rcpt(d, to, target);
    switch (r) {
    case DIR_RCPT_LOCAL:
        if (strcmp(target, account) == 0) {
            dir_set_error(error_r, strcmp(to, account) == 0
                                       ? "an account cannot forward to itself"
                                       : "that address delivers to this account itself");
            return 2;
        }
        return 0;
    case DIR_RCPT_NO_SUCH_USER:
        dir_set_error(error_r, "no such account in a domain served here");
        return 2;
    case DIR_RCPT_NOT_LOCAL:
        return 0;
    case DIR_RCPT_ERROR:
        break;
    }
    dir_set_error(error_r, d->err[0] ? d->err : "cannot resolve the forwarding address");
    return -1;
}

int dir_forward_set(struct directory *d, const char *address, const char *to, int keep,
                    const char **error_r)
{
    if (keep < -1 || keep >= N_KEEPS) {
        dir_set_error(error_r, "bad forwarding option");
        return -1;
    }
    char addr[DIR_ADDR_MAX], target[DIR_ADDR_MAX] = "";
    if (!address || dir_lower(addr, sizeof addr, address) < 0) {
        dir_set_error(error_r, "no such account");
        return 1;
    }
    if (to && *to && dir_lower(target, sizeof target, to) < 0) {
        dir_set_error(error_r, "not a valid address (local@domain.example)");
        return 2;
    }
    int64_t id = dir_begin_account(d, addr, error_r);
    if (id <= 0)
        return id < 0 ? -1 : 1;
    int c = target[0] ? check_target(d, addr, target, error_r) : 0;
    if (c != 0) {
        dir_rollback(d);
        return c;
    }
    if ((to && dir_update_account_text(d, id, "UPDATE accounts SET forward_to = ? WHERE id = ?",
                                       target, "forward") < 0) ||
        (keep >= 0 &&
         dir_update_account_text(d, id, "UPDATE accounts SET forward_keep = ? WHERE id = ?",
                                 keep_names[keep], "forward") < 0) ||
        dir_commit(d) < 0) {
        dir_set_error(error_r, d->err);
        dir_rollback(d);
        return -1;
    }
    char qa[LOG_QSIZE], qt[LOG_QSIZE];
    log_info("auth", "event=forward_changed account=%s forward_to=%s forward_keep=%s",
             log_q(qa, sizeof qa, addr, strlen(addr)),
             to ? (target[0] ? log_q(qt, sizeof qt, target, strlen(target)) : "off") : "-",
             keep >= 0 ? keep_names[keep] : "-");
    return 0;
}
