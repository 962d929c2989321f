/* pop3_parse: pure, allocation-free helpers of the POP3 server: the split
 * of one command line (CRLF already removed by the session) into keyword
 * and arguments, strict number parsing, the UIDL value, and the streaming
 * converter that turns stored message bytes into a POP3 multi-line body
 * (byte-stuffing, CRLF line ends, TOP's header + N body lines cut, the
 * terminating ".").
 *
 * Every function reads only the LEN bytes it is given (no NUL needed; NUL
 * and other control bytes in a command line are refused), never allocates
 * and never logs: the session decides what to answer. The POP3 limits live
 * here, named, with their source. */
#ifndef ROOST_POP3_PARSE_H
#define ROOST_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* RFC 2449 4: a command line is at most 255 octets including CRLF; we
 * accept up to 1024 octets (without CRLF) to be lenient with clients. */
#define POP3_MAX_LINE 1024
/* RFC 5034 4 / RFC 4954 4: an AUTH command with its initial response and
 * each SASL response line may be up to 12288 octets (base64). */
#define POP3_MAX_AUTH_LINE 12288
/* "AUTH " mechanism " " initial-response: the longest line we read. */
#define POP3_MAX_AUTH_CMD_LINE (5 + POP3_MAX_MECH + 1 + POP3_MAX_AUTH_LINE)
/* RFC 1939 3: keywords are 3 or 4 characters (CAPA, STLS, AUTH are 4 too). */
#define POP3_MAX_KEYWORD 4
/* RFC 1939 3: each argument may be up to 40 characters. */
#define POP3_MAX_ARG 40
/* RFC 1939 3 allows 40, but an account name is a full address: USER takes
 * up to RFC 2449's 255-octet line (keyword and space included). */
#define POP3_MAX_USER 250
/* RFC 4422 3.1: SASL mechanism names are 1 to 20 characters. */
#define POP3_MAX_MECH 20
/* Bad commands before "-ERR Too many errors" and close (Dovecot's
 * CLIENT_MAX_BAD_COMMANDS, Postfix' hard error limit). */
#define POP3_MAX_BAD_COMMANDS 20
/* RFC 1939 3: an inactivity autologout timer of at least 10 minutes. */
#define POP3_MIN_IDLE_TIMEOUT 600
/* Message bytes read per worker job while streaming RETR/TOP. */
#define POP3_RETR_CHUNK (64 * 1024)
/* Read the next chunk only while the output holds less than this. */
#define POP3_OUTPUT_LOW_WATER (256 * 1024)
/* Largest message number or TOP line count we parse. */
#define POP3_MAX_NUMBER 4294967295UL
/* The UIDL value: 8 hex digits of UIDVALIDITY, 8 of UID, NUL. */
#define POP3_UIDL_SIZE 17

enum pop3_verb {
    POP3_VERB_CAPA, POP3_VERB_STLS, POP3_VERB_AUTH, POP3_VERB_USER, POP3_VERB_PASS,
    POP3_VERB_STAT, POP3_VERB_LIST, POP3_VERB_UIDL, POP3_VERB_RETR, POP3_VERB_TOP,
    POP3_VERB_DELE, POP3_VERB_NOOP, POP3_VERB_RSET, POP3_VERB_QUIT, POP3_VERB_APOP,
    POP3_VERB_UNKNOWN
};

/* "CAPA", ... "UNKNOWN"; never NULL. */
const char *pop3_verb_name(enum pop3_verb v);

enum pop3_perr {
    POP3_PERR_OK,
    POP3_PERR_EMPTY,        /* empty line */
    POP3_PERR_KEYWORD,      /* keyword not 1..4 ASCII letters */
    POP3_PERR_CONTROL,      /* NUL, other control byte or DEL in the line */
    POP3_PERR_SYNTAX,       /* bad spacing, too many arguments */
    POP3_PERR_ARG_TOO_LONG  /* an argument over its limit */
};

struct pop3_cmd {
    enum pop3_verb verb;
    int nargs;              /* 0..2 */
    const char *arg[2];     /* point into the line; not NUL-terminated */
    size_t arglen[2];
};

/* Splits LINE (LEN bytes, no CRLF) into a keyword (case-insensitive, 1 to 4
 * ASCII letters) and arguments separated by single spaces:
 *   - PASS: one argument, the rest of the line after "PASS " verbatim (may
 *     contain spaces; may be empty only if the line is "PASS ").
 *   - AUTH: mechanism (1..20 octets), optional initial response (the rest,
 *     up to POP3_MAX_AUTH_LINE).
 *   - USER: one argument of up to POP3_MAX_USER octets.
 *   - all others: at most 2 arguments of up to POP3_MAX_ARG octets.
 * Octets >= 0x80 are allowed in arguments (UTF-8 names and passwords); NUL,
 * control bytes and DEL are not, anywhere. A well-formed unknown keyword
 * gives POP3_VERB_UNKNOWN and POP3_PERR_OK. On error *CMD_R is zeroed
 * (verb UNKNOWN, nargs 0). */
enum pop3_perr pop3_parse_command(const char *line, size_t len, struct pop3_cmd *cmd_r);

/* Parses a decimal number: 1 or more ASCII digits only (no sign, no space),
 * at most POP3_MAX_NUMBER. Returns 0 with *N_R set, or -1 (*N_R = 0). */
int pop3_parse_number(const char *s, size_t len, unsigned long *n_r);

/* Writes the UIDL value of a message ("%08x%08x": UIDVALIDITY then UID, in
 * lower-case hex) into OUT (POP3_UIDL_SIZE bytes). Stable for a message for
 * as long as its mailbox keeps its UIDVALIDITY. */
void pop3_uidl(uint32_t uidvalidity, uint32_t uid, char out[POP3_UIDL_SIZE]);

/* The multi-line body writer for RETR and TOP (RFC 1939 3): a state
 * machine fed the stored message in chunks of any size. It adds a "." to
 * each line that starts with ".", turns a bare LF into CRLF, and for TOP
 * stops after the header, the blank line and BODY_LINES body lines. */
struct pop3_stuffer {
    int at_bol;             /* the next input byte starts a line */
    int prev_cr;            /* the last byte written was a CR */
    int line_has_text;      /* current line has bytes other than a final CR */
    int in_body;            /* the blank line after the header was passed */
    int top;                /* TOP: limit the body lines */
    unsigned long body_left;/* TOP: body lines still to send */
    int done;               /* TOP: the cut is reached; the rest is ignored */
};

void pop3_stuffer_init(struct pop3_stuffer *st, int top, unsigned long body_lines);
/* Converts IN (LEN bytes) into OUT, which must hold 2 * LEN bytes. Returns
 * the bytes written. After st->done, input is ignored. */
size_t pop3_stuffer_feed(struct pop3_stuffer *st, const char *in, size_t len, char *out);
/* Ends the body: CRLF if the last line had no line end, then ".\r\n".
 * OUT must hold POP3_STUFFER_FINISH_MAX bytes. Returns the bytes written. */
#define POP3_STUFFER_FINISH_MAX 5
size_t pop3_stuffer_finish(struct pop3_stuffer *st, char *out);

#endif
