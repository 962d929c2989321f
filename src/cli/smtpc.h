/* smtpc: the SMTP client steps shared by `roost send` and `roost check`,
 * on a blocking netc connection: multi-line replies (bounded), EHLO with
 * its keywords, STARTTLS, AUTH PLAIN/LOGIN (the secret masked in the
 * transcript) and DATA with dot-stuffing. */
#ifndef ROOST_SMTPC_H
#define ROOST_SMTPC_H

#include "cli/netc.h"

#define SMTPC_MAX_LINES 64      /* lines kept per reply */
#define SMTPC_TEXT_MAX 4096     /* all lines of a reply, joined by '\n' */

struct smtpc_reply {
    int code;                   /* 0 when no valid reply was read */
    char last[NETC_LINE_MAX + 1];  /* the last line, e.g. "535 5.7.8 Username ..." */
    char text[SMTPC_TEXT_MAX];     /* every line, '\n' between them */
    int nlines;
    char lines[SMTPC_MAX_LINES][128];  /* the text after "250-" of each line */
};

/* Reads one reply. A line that is not "NNN[ -]..." is a protocol error. */
enum netc_err smtpc_reply(struct netc *c, struct smtpc_reply *r);
/* Sends LINE and reads the reply. */
enum netc_err smtpc_cmd(struct netc *c, const char *line, struct smtpc_reply *r);
/* 1 if the EHLO reply R lists KEYWORD (case-insensitive, first word). */
int smtpc_has(const struct smtpc_reply *r, const char *keyword);
/* The AUTH mechanisms of an EHLO reply ("PLAIN LOGIN"), "" if none. */
void smtpc_auth_mechs(const struct smtpc_reply *r, char *out, size_t outsz);
/* AUTH PLAIN if offered (or if MECHS is empty), else AUTH LOGIN. R holds
 * the final reply (235 when accepted). */
enum netc_err smtpc_auth(struct netc *c, const char *mechs, const char *user,
                         const char *password, struct smtpc_reply *r);
/* Sends MSG (LEN bytes, CRLF line ends) dot-stuffed, then ".", and reads
 * the final reply. Call after the 354. */
enum netc_err smtpc_send_data(struct netc *c, const char *msg, size_t len,
                              struct smtpc_reply *r);
/* The message of a netc error or the reply, for "roost: ..." lines. */
const char *smtpc_why(const struct netc *c, enum netc_err e, const struct smtpc_reply *r);

#endif
