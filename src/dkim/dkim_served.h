/* dkim_served: which of our domains signs a message, and the signature
 * (worker threads: directory lookups, key loading, RSA/Ed25519).
 *
 * The signing domain is the domain of the first address in the first From:
 * field when it is served here and has an active key (dkimkey.h), else the
 * envelope sender's domain under the same conditions; with neither the
 * message goes unsigned (logged at debug). Used for mail submitted with a
 * login (smtp_dkim.c) and for mail from trusted local users (pickup.c). */
#ifndef ROOST_DKIM_SERVED_H
#define ROOST_DKIM_SERVED_H

#include <stddef.h>

struct directory;

/* The DKIM-Signature field (ending in CRLF, malloc'd) for the message
 * [MSG, MSG+LEN) whose envelope sender is SENDER (may be NULL), or NULL
 * when it goes unsigned (no key; an error; a field longer than ROOM, the
 * octets the caller can still add: logged with QID). */
char *dkim_sign_served(struct directory *d, const char *data_dir, const char *sender,
                       const char *msg, size_t len, size_t room, const char *qid);

#endif
