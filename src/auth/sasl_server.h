/* sasl_server: the one GNU SASL server context of the process, shared by
 * the SMTP, POP3 and IMAP logins (PLAIN and LOGIN). A mechanism only
 * captures the credentials into the session's struct sasl_creds; checking
 * them is asynchronous (argon2id on a worker), never inside gsasl. */
#ifndef ROOST_SASL_SERVER_H
#define ROOST_SASL_SERVER_H

#include <gsasl.h>

struct sasl_creds {
    char *user;     /* authentication identity */
    char *pass;     /* wiped when cleared */
};

/* Sets the context up (at start-up; sasl_server_begin also does it on
 * first use) and frees it at shutdown. 0 ok, -1 GNU SASL failed. */
int sasl_server_init(void);
void sasl_server_done(void);
/* Starts a server exchange for MECH whose credentials land in CREDS (which
 * must outlive the exchange). 0 ok, -1 when SASL is unavailable. */
int sasl_server_begin(const char *mech, struct sasl_creds *creds, Gsasl_session **sasl_r);
/* Frees and wipes what CREDS holds. */
void sasl_creds_clear(struct sasl_creds *creds);

#endif
