/* imap_dispatch: the command table (RFC 9051 6, RFC 3501 6 and the
 * extensions of docs/imap.md): which states a command is valid in, whether
 * it has a UID form, and whether it counts as progress. */
#include "imap/imap_int.h"

#include <stddef.h>
#include <string.h>

#define NP IMAP_CF_NOPROGRESS

static const struct imap_cmd_def commands[] = {
    /* any state (RFC 9051 6.1) */
    {"CAPABILITY", IMAP_CF_ANY | NP, imap_cmd_capability},
    {"NOOP", IMAP_CF_ANY | NP, imap_cmd_noop},
    {"LOGOUT", IMAP_CF_ANY, imap_cmd_logout},
    {"ID", IMAP_CF_ANY | NP, imap_cmd_id},                 /* RFC 2971 */
    /* not authenticated (6.2) */
    {"STARTTLS", IMAP_CF_NOT_AUTH, imap_cmd_starttls},
    {"AUTHENTICATE", IMAP_CF_NOT_AUTH, imap_cmd_authenticate},
    {"LOGIN", IMAP_CF_NOT_AUTH, imap_cmd_login},
    /* authenticated (6.3) */
    {"ENABLE", IMAP_CF_AUTH, imap_cmd_enable},             /* RFC 5161 3.1 */
    {"SELECT", IMAP_CF_LOGGED_IN, imap_cmd_select},
    {"EXAMINE", IMAP_CF_LOGGED_IN, imap_cmd_select},
    {"CREATE", IMAP_CF_LOGGED_IN, imap_cmd_create},
    {"DELETE", IMAP_CF_LOGGED_IN, imap_cmd_delete},
    {"RENAME", IMAP_CF_LOGGED_IN, imap_cmd_rename},
    {"SUBSCRIBE", IMAP_CF_LOGGED_IN, imap_cmd_subscribe},
    {"UNSUBSCRIBE", IMAP_CF_LOGGED_IN, imap_cmd_subscribe},
    {"LIST", IMAP_CF_LOGGED_IN, imap_cmd_list},
    {"LSUB", IMAP_CF_LOGGED_IN, imap_cmd_list},
    {"NAMESPACE", IMAP_CF_LOGGED_IN | NP, imap_cmd_namespace}, /* RFC 2342 */
    {"STATUS", IMAP_CF_LOGGED_IN, imap_cmd_status},
    {"APPEND", IMAP_CF_LOGGED_IN, imap_cmd_append},
    {"IDLE", IMAP_CF_LOGGED_IN, imap_cmd_idle},            /* RFC 2177 */
    {"GETQUOTA", IMAP_CF_LOGGED_IN, imap_cmd_getquota},    /* RFC 9208 */
    {"GETQUOTAROOT", IMAP_CF_LOGGED_IN, imap_cmd_getquota},
    {"SETQUOTA", IMAP_CF_LOGGED_IN, imap_cmd_getquota},
    {"COMPRESS", IMAP_CF_LOGGED_IN, imap_cmd_compress},    /* RFC 4978 */
    /* selected (6.4) */
    {"CHECK", IMAP_CF_SELECTED | NP, imap_cmd_check},
    {"CLOSE", IMAP_CF_SELECTED, imap_cmd_close},
    {"UNSELECT", IMAP_CF_SELECTED, imap_cmd_unselect},     /* RFC 3691 */
    {"EXPUNGE", IMAP_CF_SELECTED | IMAP_CF_UID_OK, imap_cmd_expunge},
    {"SEARCH", IMAP_CF_SELECTED | IMAP_CF_UID_OK, imap_cmd_search},
    {"FETCH", IMAP_CF_SELECTED | IMAP_CF_UID_OK, imap_cmd_fetch},
    {"STORE", IMAP_CF_SELECTED | IMAP_CF_UID_OK, imap_cmd_store},
    {"COPY", IMAP_CF_SELECTED | IMAP_CF_UID_OK, imap_cmd_copy},
    {"MOVE", IMAP_CF_SELECTED | IMAP_CF_UID_OK, imap_cmd_copy}, /* RFC 6851 */
};

const struct imap_cmd_def *imap_cmd_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}
