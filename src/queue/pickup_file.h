/* pickup_file: the format of a message dropped into DATA/pickup/ by
 * `roost sendmail`, written by the CLI (any local user) and read by the
 * server (pickup.c), which therefore treats it as untrusted input.
 *
 *   "ROOST-PICKUP 1\n"
 *   "S <address>\n"        at most once: the -f envelope sender
 *   "R <address>\n"        one per recipient, at least one
 *   "\n"
 *   the message, CRLF line ends
 *
 * Addresses are 1..PICKUP_ADDR_MAX bytes of printable ASCII or UTF-8
 * without spaces, '<', '>', control bytes; recipients need one '@'. Who
 * sent it is not in the file: the server takes the file owner's uid. */
#ifndef ROOST_PICKUP_FILE_H
#define ROOST_PICKUP_FILE_H

#include <stddef.h>

#define PICKUP_MAGIC "ROOST-PICKUP 1\n"
#define PICKUP_ADDR_MAX 320
#define PICKUP_MAX_RCPTS 1000
#define PICKUP_MAX_ENVELOPE (PICKUP_MAX_RCPTS * (PICKUP_ADDR_MAX + 3) + 400)

struct pickup_env {
    char *sender;            /* NULL: none given */
    char **rcpts;
    int nrcpt;
    size_t msg_off;          /* where the message starts in the file */
};

/* 1 if ADDR (LEN bytes) is acceptable as an envelope address. */
int pickup_addr_valid(const char *addr, size_t len, int need_at);

/* Parses the envelope of a pickup file (DATA, LEN bytes). 0 ok (ENV
 * filled, free with pickup_env_free), -1 malformed (ERROR_R set). */
int pickup_parse(const char *data, size_t len, struct pickup_env *env, const char **error_r);
void pickup_env_free(struct pickup_env *env);

/* A copy of the message P (LEN bytes) with every line ending (LF, CRLF or
 * a bare CR) turned into CRLF, and a CRLF added at the end if missing:
 * files written by hand must not store bare LF or CR (DESIGN.md). The
 * result is malloc'd, its length in *LEN_R. */
char *pickup_normalize(const char *p, size_t len, size_t *len_r);

/* The envelope as text (what precedes the message), malloc'd, or NULL if
 * an address is not acceptable. */
char *pickup_format(const char *sender, const char *const *rcpts, int nrcpt, size_t *len_r);

#endif
