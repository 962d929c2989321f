/* imap_util: small helpers the command handlers share: mailbox name
 * arguments (modified UTF-7 or UTF-8, INBOX in any case, the name checks)
 * and writing a mailbox name back the way the client reads it. */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int imap_arg_is(const struct imap_arg *a, const char *word)
{
    return a && a->type == IMAP_ARG_ATOM && strcasecmp(a->str, word) == 0;
}

int imap_arg_mailbox(struct imap_session *s, const struct imap_arg *a, char *out)
{
    const char *raw;
    size_t len;
    if (!imap_arg_astring(a, &raw, &len) || a->type == IMAP_ARG_LIST || memchr(raw, '\0', len)) {
        imap_bad(s, "Invalid mailbox name");
        return -1;
    }
    char *name = NULL;
    if (s->enabled & IMAP_EN_UTF8) {
        name = strdup(raw);
    } else {
        name = imap_mutf7_to_utf8(raw);
        if (!name) {
            imap_no(s, "[CANNOT] Mailbox name is not valid modified UTF-7");
            return -1;
        }
    }
    if (!name) {
        imap_no(s, "[SERVERBUG] Out of memory");
        return -1;
    }
    /* INBOX is case-insensitive, also as a parent ("inbox/x") */
    if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
        memcpy(name, "INBOX", 5);
    /* a trailing delimiter names the same mailbox (RFC 9051 6.3.4) */
    size_t nlen = strlen(name);
    if (nlen > 1 && name[nlen - 1] == '/')
        name[nlen - 1] = '\0';
    const char *why = imap_mailbox_name_check(name);
    if (!why && strlen(name) > IMAP_MAILBOX_MAX)
        why = "Mailbox name too long";
    if (why) {
        imap_no(s, "[CANNOT] %s", why);
        free(name);
        return -1;
    }
    memcpy(out, name, strlen(name) + 1);
    free(name);
    return 0;
}

int imap_mailbox_quote(const struct imap_session *s, const char *name, struct buf *out)
{
    if (s->enabled & IMAP_EN_UTF8)
        return imap_quote_string(out, name, strlen(name), 1);
    char *m = imap_utf8_to_mutf7(name);
    if (!m)
        return -1;
    int rc = imap_quote_string(out, m, strlen(m), 0);
    free(m);
    return rc;
}
