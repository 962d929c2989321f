/* sendmail_parse: sendmail's command line, its stdin message reader and
 * the -t header scan (see sendmail_parse.h). */
#include "cli/sendmail_parse.h"
#include "core/xalloc.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Flags that take a value (as the next argument when not attached) and are
 * ignored: DSN notify/ret/envid, body type, -o options, -L, -X, -C, -h. */
static int ignored_with_value(char c)
{
    return c == 'N' || c == 'R' || c == 'V' || c == 'B' || c == 'L' || c == 'X' || c == 'C' ||
           c == 'h';
}

int sm_parse_args(int argc, char **argv, struct sm_args *a, char *err, size_t errsz)
{
    memset(a, 0, sizeof *a);
    a->rcpts = xcalloc((size_t)(argc > 0 ? argc : 1), sizeof *a->rcpts);
    int i = 1;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--") == 0) {
            i++;
            break;
        }
        if (s[0] != '-' || s[1] == '\0')
            break;
        char c = s[1];
        const char *val = s[2] ? s + 2 : NULL;
        switch (c) {
        case 't':
        case 'i':
        case 'v':
        case 'm':
        case 'n':
        case 'U':
            if (s[2]) {
                /* combined flags such as -ti */
                for (const char *p = s + 1; *p; p++) {
                    if (*p == 't')
                        a->read_t = 1;
                    else if (*p == 'i')
                        a->ignore_dots = 1;
                    else if (!strchr("vmnU", *p)) {
                        snprintf(err, errsz, "unknown flag -%c in %s", *p, s);
                        return -1;
                    }
                }
            } else if (c == 't') {
                a->read_t = 1;
            } else if (c == 'i') {
                a->ignore_dots = 1;
            }
            break;
        case 'f':
        case 'r':
        case 'F':
            if (!val) {
                if (i + 1 >= argc) {
                    snprintf(err, errsz, "-%c needs a value", c);
                    return -1;
                }
                val = argv[++i];
            }
            if (c == 'F')
                a->fullname = val;
            else
                a->from = val;
            break;
        case 'o':
            /* -oi (ignore dots), -oem, -oee, -odi, -odb, -oXvalue: ignored */
            if (s[2] == 'i' && s[3] == '\0')
                a->ignore_dots = 1;
            else if (!s[2] && i + 1 < argc)
                i++;
            break;
        case 'b':
            if (strcmp(s, "-bm") != 0) {
                snprintf(err, errsz, "%s: only sending (-bm) is supported; the queue is"
                                     " roost queue list", s);
                return -1;
            }
            break;
        case 'd':
            break;   /* -d debug levels: ignored */
        case 'q':
            snprintf(err, errsz, "%s: the queue is run by roost serve", s);
            return -1;
        default:
            if (ignored_with_value(c)) {
                if (!val && i + 1 < argc)
                    i++;
                break;
            }
            snprintf(err, errsz, "unknown option %s", s);
            return -1;
        }
    }
    for (; i < argc; i++) {
        if (a->nrcpt >= SM_MAX_RCPTS) {
            snprintf(err, errsz, "more than %d recipients", SM_MAX_RCPTS);
            return -1;
        }
        a->rcpts[a->nrcpt++] = argv[i];
    }
    if (a->from && a->from[0] && strlen(a->from) > 320) {
        snprintf(err, errsz, "-f: the address is longer than 320 bytes");
        return -1;
    }
    return 0;
}

void sm_args_free(struct sm_args *a)
{
    free(a->rcpts);
    a->rcpts = NULL;
}

/* ------------------------------------------------------------ reader */

void sm_reader_init(struct sm_reader *r, size_t max, int ignore_dots)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->out, max);
    r->max = max;
    r->ignore_dots = ignore_dots;
    r->lineno = 1;
}

void sm_reader_deinit(struct sm_reader *r)
{
    buf_deinit(&r->out);
}

/* The current line is complete. */
static enum sm_read end_line(struct sm_reader *r)
{
    if (!r->ignore_dots && r->linelen == 1 && r->out.data[r->line_start] == '.') {
        r->out.len = r->line_start;
        r->out.data[r->out.len] = '\0';
        r->done = 1;
        return SM_DONE;
    }
    if (r->out.len + 2 > r->max || buf_append(&r->out, "\r\n", 2) < 0)
        return SM_ERR_SIZE;
    r->linelen = 0;
    r->line_start = r->out.len;
    r->lineno++;
    return SM_MORE;
}

enum sm_read sm_reader_feed(struct sm_reader *r, const char *p, size_t n)
{
    if (r->done)
        return SM_DONE;
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        if (r->pending_cr) {
            r->pending_cr = 0;
            if (c == '\n') {   /* CRLF: the line already ended at the CR */
                i++;
                continue;
            }
        }
        if (c == '\r' || c == '\n') {
            r->pending_cr = c == '\r';
            enum sm_read e = end_line(r);
            if (e != SM_MORE)
                return e;
            i++;
            continue;
        }
        /* a run of ordinary bytes */
        size_t j = i;
        while (j < n && p[j] != '\r' && p[j] != '\n')
            j++;
        if (r->linelen + (j - i) > SM_LINE_MAX)
            return SM_ERR_LINE;
        if (r->out.len + (j - i) > r->max || buf_append(&r->out, p + i, j - i) < 0)
            return SM_ERR_SIZE;
        r->linelen += j - i;
        i = j;
    }
    return SM_MORE;
}

enum sm_read sm_reader_finish(struct sm_reader *r)
{
    if (r->done)
        return SM_DONE;
    if (r->linelen > 0) {
        enum sm_read e = end_line(r);
        if (e == SM_ERR_SIZE)
            return e;
    }
    r->done = 1;
    return SM_DONE;
}

/* ------------------------------------------------------------ header scan */

static void add_rcpt(struct sm_header *h, const char *addr)
{
    if (h->nrcpt >= SM_MAX_RCPTS) {
        h->too_many = 1;
        return;
    }
    h->rcpts = xrealloc(h->rcpts, xmul((size_t)h->nrcpt + 1, sizeof *h->rcpts));
    h->rcpts[h->nrcpt++] = xstrdup(addr);
}

static void collect_list(struct sm_header *h, InternetAddressList *l, int depth)
{
    int n = internet_address_list_length(l);
    for (int i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(l, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            if (a && a[0])
                add_rcpt(h, a);
        } else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < 4) {
            collect_list(h, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
                         depth + 1);
        }
    }
}

static void collect_field(struct sm_header *h, const char *value, size_t len)
{
    if (len > SM_MAX_FIELD)
        len = SM_MAX_FIELD;
    char *v = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++)
        if (value[i] != '\r' && value[i] != '\n' && value[i] != '\0')
            v[o++] = value[i];
    v[o] = '\0';
    InternetAddressList *l = internet_address_list_parse(NULL, v);
    if (l) {
        collect_list(h, l, 0);
        g_object_unref(l);
    }
    free(v);
}

/* 1 if the line (LEN bytes) starts a header field: "name:" with a name of
 * printable ASCII other than ':' (RFC 5322 ftext). */
static size_t field_name_len(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ':')
            return i;
        if (c <= ' ' || c > '~')
            return 0;
    }
    return 0;
}

static int name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

int sm_scan_header(const char *msg, size_t len, int collect, struct sm_header *h, struct buf *out)
{
    memset(h, 0, sizeof *h);
    size_t pos = 0;
    while (pos < len) {
        const char *eol = memchr(msg + pos, '\n', len - pos);
        size_t next = eol ? (size_t)(eol - msg) + 1 : len;
        size_t ll = next - pos;
        if (ll <= 2 && (ll == 0 || msg[pos] == '\r' || msg[pos] == '\n')) {
            h->body_off = next;   /* the blank line */
            return 0;
        }
        size_t nl = field_name_len(msg + pos, ll);
        if (nl == 0) {
            h->body_off = pos;    /* not a field: the body starts here */
            return 0;
        }
        /* the field with its continuation lines */
        size_t end = next;
        while (end < len && (msg[end] == ' ' || msg[end] == '\t')) {
            const char *e2 = memchr(msg + end, '\n', len - end);
            end = e2 ? (size_t)(e2 - msg) + 1 : len;
        }
        const char *name = msg + pos;
        int bcc = name_is(name, nl, "Bcc");
        if (name_is(name, nl, "From"))
            h->has_from = 1;
        else if (name_is(name, nl, "Date"))
            h->has_date = 1;
        else if (name_is(name, nl, "Message-ID"))
            h->has_msgid = 1;
        if (collect && (bcc || name_is(name, nl, "To") || name_is(name, nl, "Cc")))
            collect_field(h, msg + pos + nl + 1, end - pos - nl - 1);
        if (!bcc && buf_append(out, msg + pos, end - pos) < 0)
            return -1;
        pos = end;
    }
    h->body_off = len;
    return 0;
}

void sm_header_free(struct sm_header *h)
{
    for (int i = 0; i < h->nrcpt; i++)
        free(h->rcpts[i]);
    free(h->rcpts);
    h->rcpts = NULL;
    h->nrcpt = 0;
}
