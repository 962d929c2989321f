/* compose: builds the message `roost send` sends, with GMime 3: From, To,
 * Cc, Subject (RFC 2047 when not ASCII), Date, Message-ID, MIME-Version,
 * a text/plain UTF-8 body (7bit when it is short-lined ASCII, else
 * quoted-printable) and attachments in a multipart/mixed.
 *
 * Attachment types are guessed from the file name's extension (a table of
 * the common ones, else application/octet-stream). Encodings keep the
 * file's exact bytes: base64 for anything but text; text files (text/...) that are
 * valid UTF-8 in MIME's canonical form (every line ending CRLF, no NUL)
 * are quoted-printable (7bit when short-lined ASCII); other text files
 * (LF line ends, bare CR, invalid UTF-8) are base64, since turning LF into
 * CRLF would change their bytes. The result has CRLF line ends. */
#ifndef ROOST_COMPOSE_H
#define ROOST_COMPOSE_H

#include <stddef.h>

/* Limits: the body and the attachments together (Gmail's 25 MB), and the
 * number of attachments. */
#define COMPOSE_MAX_TOTAL (25u * 1024 * 1024)
#define COMPOSE_MAX_ATTACH 100

struct compose {
    const char *from;            /* "Name <a@b>" or "a@b" */
    const char *const *to;
    int nto;
    const char *const *cc;
    int ncc;
    const char *subject;         /* may be NULL */
    const char *body;            /* UTF-8 text, LF or CRLF line ends */
    size_t body_len;
    const char *const *attach;   /* file paths */
    int nattach;
};

/* 0 and a malloc'd message in *OUT_R (length *LEN_R), or -1 with ERR set. */
int compose_message(const struct compose *m, char **out_r, size_t *len_r, char *err,
                    size_t errsz);

/* The MIME type for a file name ("image/png"), application/octet-stream
 * when the extension is unknown. */
const char *compose_guess_type(const char *filename);

/* 1 if the LEN bytes are valid UTF-8 without NUL, else 0. */
int compose_utf8_valid(const char *p, size_t len);

#endif
