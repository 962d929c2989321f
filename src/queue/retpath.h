/* retpath: the Return-Path: field that final delivery puts at the top of a
 * message (RFC 5321 4.4: the envelope sender, "<>" for a null sender), so
 * that the mailbox keeps where bounces for the message would go. Relays and
 * forwarded copies do not get one; only a store into a mailbox does. */
#ifndef ROOST_RETPATH_H
#define ROOST_RETPATH_H

#include <stddef.h>

/* "Return-Path: <SENDER>\r\n" followed by the LEN bytes of DATA, in a new
 * malloc'd buffer whose length goes to *LEN_R. SENDER NULL or "" is the
 * null reverse-path. */
char *retpath_message(const char *sender, const char *data, size_t len, size_t *len_r);

#endif
