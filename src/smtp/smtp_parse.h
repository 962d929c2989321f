/* smtp_parse: pure, allocation-free parsers for one SMTP command line (the
 * CRLF already removed by the session) and its arguments: the verb split,
 * MAIL FROM / RCPT TO paths and parameters (RFC 5321 4.1.2, RFC 6531
 * SMTPUTF8, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3030 BINARYMIME/BDAT,
 * RFC 4954 AUTH), BDAT and AUTH arguments, the EHLO/HELO argument and the
 * split of an address into local part and domain.
 *
 * Every function reads only the LEN bytes it is given (no NUL needed, NUL
 * bytes are refused), never allocates and never logs: the session decides
 * what to answer. Limits come from core/limits.h. */
#ifndef ROOST_SMTP_PARSE_H
#define ROOST_SMTP_PARSE_H

#include "core/limits.h"

#include <stddef.h>

enum smtp_verb {
    SMTP_VERB_EHLO, SMTP_VERB_HELO, SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA,
    SMTP_VERB_BDAT, SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT, SMTP_VERB_VRFY,
    SMTP_VERB_EXPN, SMTP_VERB_HELP, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH, SMTP_VERB_UNKNOWN
};

/* "EHLO", "MAIL", ... "UNKNOWN"; never NULL. */
const char *smtp_verb_name(enum smtp_verb v);

struct smtp_cmd {
    enum smtp_verb verb;
    const char *arg; /* points into the line; not NUL-terminated */
    size_t arglen;
};

/* Splits LINE (LEN bytes, no CRLF) into a verb (case-insensitive) and the
 * argument after one or more spaces (arg may be empty, arglen 0; trailing
 * spaces trimmed). Returns 0, or -1 when the line contains a NUL or a control
 * character other than TAB (DEL included), or the verb (the bytes before the
 * first space) is empty or not ASCII letters. An unknown but well-formed verb
 * gives SMTP_VERB_UNKNOWN and 0. "MAIL FROM:" and "RCPT TO:" are verb
 * MAIL/RCPT with arg "FROM:..." / "TO:...". */
int smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd_r);

enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

struct smtp_mail_params {
    int has_size;
    unsigned long long size;
    enum smtp_body body;     /* SMTP_BODY_7BIT when absent */
    int smtputf8;
    char auth[SMTP_MAX_PATH + 3]; /* AUTH= value as sent (still xtext-encoded), "" if none */
};

enum smtp_perr {
    SMTP_PERR_OK = 0,
    SMTP_PERR_SYNTAX,         /* 501 5.5.2 / 5.1.7 */
    SMTP_PERR_PATH_TOO_LONG,  /* 501 5.1.3 or 552 (RFC 5321 4.5.3.1) */
    SMTP_PERR_NEED_UTF8,      /* 553 5.6.7 (RFC 6531 3.5) */
    SMTP_PERR_BAD_PARAM,      /* 501 5.5.4: known parameter, bad or repeated value */
    SMTP_PERR_UNKNOWN_PARAM   /* 555 5.5.4 */
};

/* ARG is what follows "MAIL ": "FROM:<path> [params]" ("FROM:" in any case).
 * Spaces after the colon, between parameters and at the end are tolerated.
 * ADDR_R gets the mailbox without angle brackets ("" for the null path "<>");
 * a source route (<@a,@b:user@dom>) is dropped. Non-ASCII (valid UTF-8) in
 * the path is accepted only with the SMTPUTF8 parameter (else
 * SMTP_PERR_NEED_UTF8); invalid UTF-8 is SMTP_PERR_SYNTAX.
 * Params: SIZE=n (1..20 digits, must fit), BODY=7BIT|8BITMIME|BINARYMIME,
 * SMTPUTF8 (no value), AUTH=xtext (at most SMTP_MAX_PATH + 2 octets);
 * keywords and BODY values are case-insensitive. A known parameter with a bad
 * value, or repeated, is SMTP_PERR_BAD_PARAM; any other well-formed parameter
 * is SMTP_PERR_UNKNOWN_PARAM; an ungrammatical one is SMTP_PERR_SYNTAX.
 * Lengths (RFC 5321 4.5.3.1): local part <= SMTP_MAX_LOCALPART, domain <=
 * SMTP_MAX_DOMAIN, the whole path from '<' to '>' inclusive (source route
 * included) <= SMTP_MAX_PATH, else SMTP_PERR_PATH_TOO_LONG.
 * On any error ADDR_R is "" and P_R is reset. */
enum smtp_perr smtp_parse_mail(const char *arg, size_t len, char addr_r[SMTP_MAX_PATH + 1],
                               struct smtp_mail_params *p_r);

/* ARG is "TO:<path> [params]". "<Postmaster>" (any case, no domain) is
 * accepted and returned as "postmaster". The null path is SMTP_PERR_SYNTAX.
 * Any well-formed param is SMTP_PERR_UNKNOWN_PARAM (no DSN yet).
 * UTF8_ALLOWED is whether the transaction's MAIL had SMTPUTF8. */
enum smtp_perr smtp_parse_rcpt(const char *arg, size_t len, int utf8_allowed,
                               char addr_r[SMTP_MAX_PATH + 1]);

/* "<size> [LAST]" (what follows "BDAT "): size 1..20 digits that fit in
 * unsigned long long, LAST in any case after one or more spaces.
 * Returns 0 or -1. */
int smtp_parse_bdat(const char *arg, size_t len, unsigned long long *size_r, int *last_r);

/* "<mech> [initial-response]" (what follows "AUTH "): mech 1..20 chars of
 * [A-Za-z0-9-_], upper-cased into MECH_R; the initial response ("=" or
 * padded base64: length a multiple of 4, '=' only as 1-2 final pads) is
 * returned as a pointer/len into ARG (NULL/0 if absent). Returns 0 or -1. */
int smtp_parse_auth(const char *arg, size_t len, char mech_r[21], const char **ir_r,
                    size_t *irlen_r);

/* EHLO/HELO argument: a domain (labels of letters, digits, '-' and '_' --
 * lenient, as real clients send bare hostnames and underscores -- and valid
 * UTF-8 U-labels, since we offer SMTPUTF8; may end with one dot), or an
 * address literal [1.2.3.4] / [IPv6:...]. Refuses empty, spaces, control
 * characters, empty labels, invalid UTF-8 and anything over SMTP_MAX_DOMAIN
 * octets. 1 valid, 0 not. */
int smtp_helo_valid(const char *arg, size_t len);

/* Splits a NUL-terminated address "local@domain" (as returned above) at the
 * LAST '@' outside a quoted local part. Returns 0 or -1 (no @, empty part,
 * unterminated quote). Pointers into ADDR. */
int smtp_addr_split(const char *addr, const char **local_r, size_t *llen_r,
                    const char **domain_r, size_t *dlen_r);

#endif
