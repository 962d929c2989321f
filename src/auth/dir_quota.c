/* dir_quota: the mailbox quota of an account in the directory (directory.h:
 * dir_account_set_quota, dir_quota_parse, dir_quota_format).
 *
 * Stored as accounts.quota_bytes (schema version 3; 0: no limit; default
 * DIR_QUOTA_DEFAULT, 15 GiB like Gmail's free plan). The store enforces it
 * (store_append / store_copy refuse with OVERQUOTA) and SMTP refuses mail
 * for a full mailbox with 552 5.2.2 (smtp_cmds.c / queue delivery). */
#include "auth/dir_int.h"
#include "core/log.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 2^53: sizes stay exact in SQLite and in doubles. */
#define DIR_QUOTA_MAX (UINT64_C(1) << 53)

int dir_quota_parse(const char *s, uint64_t *bytes_r)
{
    if (!s || !*s)
        return -1;
    if (strcasecmp(s, "unlimited") == 0 || strcasecmp(s, "none") == 0) {
        *bytes_r = 0;
        return 0;
    }
    uint64_t whole = 0, frac = 0, frac_div = 1;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > DIR_QUOTA_MAX)
            return -1;
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        for (; isdigit((unsigned char)*p); p++) {
            if (frac_div < 1000000) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_div *= 10;
            }
        }
    }
    uint64_t unit = 1;
    switch (tolower((unsigned char)*p)) {
    case 'k': unit = UINT64_C(1) << 10; p++; break;
    case 'm': unit = UINT64_C(1) << 20; p++; break;
    case 'g': unit = UINT64_C(1) << 30; p++; break;
    case 't': unit = UINT64_C(1) << 40; p++; break;
    default: break;
    }
    if (unit > 1 && tolower((unsigned char)*p) == 'i')
        p++;
    if (tolower((unsigned char)*p) == 'b')
        p++;
    if (*p || (frac_div > 1 && unit == 1) || whole > DIR_QUOTA_MAX / unit)
        return -1;
    uint64_t bytes = whole * unit + frac * unit / frac_div;
    if (bytes > DIR_QUOTA_MAX)
        return -1;
    *bytes_r = bytes;
    return 0;
}

void dir_quota_format(uint64_t bytes, char *out, size_t outsz)
{
    static const char *const units[] = { "TiB", "GiB", "MiB", "KiB" };
    static const int shifts[] = { 40, 30, 20, 10 };
    if (bytes == 0) {
        snprintf(out, outsz, "unlimited");
        return;
    }
    for (int i = 0; i < 4; i++) {
        uint64_t u = UINT64_C(1) << shifts[i];
        if (bytes < u)
            continue;
        if (bytes % u == 0)
            snprintf(out, outsz, "%" PRIu64 " %s", bytes / u, units[i]);
        else
            snprintf(out, outsz, "%.2f %s", (double)bytes / (double)u, units[i]);
        return;
    }
    snprintf(out, outsz, "%" PRIu64 " bytes", bytes);
}

int dir_account_set_quota(struct directory *d, const char *address, uint64_t bytes,
                          const char **error_r)
{
    if (bytes > DIR_QUOTA_MAX) {
        dir_set_error(error_r, "quota too large");
        return -1;
    }
    char addr[DIR_ADDR_MAX];
    if (!address || dir_lower(addr, sizeof addr, address) < 0) {
        dir_set_error(error_r, "no such account");
        return 1;
    }
    sqlite3_stmt *st = dir_prep(d, "UPDATE accounts SET quota_bytes = ? WHERE address = ?");
    if (!st) {
        dir_set_error(error_r, d->err);
        return -1;
    }
    int ok = sqlite3_bind_int64(st, 1, (sqlite3_int64)bytes) == SQLITE_OK &&
             dir_bind_text(st, 2, addr) == 0 && sqlite3_step(st) == SQLITE_DONE;
    if (!ok) {
        dir_set_error(error_r, dir_sql_error(d, "quota"));
        dir_finish(d, st);
        return -1;
    }
    int changed = sqlite3_changes(sqlite3_db_handle(st));
    dir_finish(d, st);
    if (changed == 0) {
        dir_set_error(error_r, "no such account");
        return 1;
    }
    char qb[LOG_QSIZE];
    log_info("auth", "event=quota_changed account=%s quota_bytes=%" PRIu64,
             log_q(qb, sizeof qb, addr, strlen(addr)), bytes);
    return 0;
}
