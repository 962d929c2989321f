/* sendmail_parse: the parsers of `roost sendmail`, kept apart from the I/O
 * so that they are unit-tested and fuzzed (tests/fuzz/fuzz_sendmail.c):
 *
 *  - the command line of sendmail(8) as cron, PHP mail(), mail(1) and git
 *    send-email use it: -t, -i/-oi, -f ADDR/-fADDR (-r the same), -F NAME,
 *    recipients as arguments, and the harmless flags ignored (-oem, -odi,
 *    -v, -bm, -N..., -R..., -V..., -B..., -o..., -L..., -X...; -- ends the
 *    options). Other modes (-bp, -bs, -bd, -bi, -q...) are refused.
 *  - the message on stdin, read incrementally: LF, CRLF and a bare CR all
 *    end a line and come out as CRLF; a lone "." line ends the input unless
 *    -i; lines longer than 998 bytes (RFC 5322 2.1.1) and messages over the
 *    size limit are refused.
 *  - the header scan for -t: the addresses in To, Cc and Bcc (parsed with
 *    GMime, groups included) and the header without its Bcc fields, and
 *    whether From, Date and Message-ID are present. */
#ifndef ROOST_SENDMAIL_PARSE_H
#define ROOST_SENDMAIL_PARSE_H

#include "core/buf.h"

#include <stddef.h>

#define SM_LINE_MAX 998
#define SM_MAX_RCPTS 1000
#define SM_MAX_FIELD (64 * 1024)   /* one unfolded To/Cc/Bcc field */

struct sm_args {
    int read_t, ignore_dots;
    const char *from;           /* -f / -r */
    const char *fullname;       /* -F */
    const char **rcpts;         /* into argv */
    int nrcpt;
};

/* ARGV[0] is the program ("sendmail"). 0 ok, -1 usage error (ERR set). */
int sm_parse_args(int argc, char **argv, struct sm_args *a, char *err, size_t errsz);
void sm_args_free(struct sm_args *a);

enum sm_read { SM_MORE, SM_DONE, SM_ERR_LINE, SM_ERR_SIZE };

struct sm_reader {
    struct buf out;             /* the message so far, CRLF line ends */
    size_t max;
    int ignore_dots;
    int done;
    int pending_cr;             /* the last byte fed was a CR */
    size_t linelen;
    size_t line_start;          /* offset in out of the current line */
    unsigned long lineno;
};

void sm_reader_init(struct sm_reader *r, size_t max, int ignore_dots);
void sm_reader_deinit(struct sm_reader *r);
/* Feeds N bytes; SM_DONE once a lone "." line was seen (the rest is
 * ignored). */
enum sm_read sm_reader_feed(struct sm_reader *r, const char *p, size_t n);
/* End of input: a last line without a newline is completed. */
enum sm_read sm_reader_finish(struct sm_reader *r);

struct sm_header {
    size_t body_off;            /* where the body starts (after the blank line) */
    int has_from, has_date, has_msgid;
    char **rcpts;               /* To, Cc, Bcc addresses (with COLLECT) */
    int nrcpt;
    int too_many;
};

/* Scans the header of MSG (CRLF lines). Appends the header without Bcc
 * fields (and without the blank line) to OUT. 0 ok, -1 OUT full. */
int sm_scan_header(const char *msg, size_t len, int collect, struct sm_header *h,
                   struct buf *out);
void sm_header_free(struct sm_header *h);

#endif
