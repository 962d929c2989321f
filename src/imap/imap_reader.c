/* imap_reader: frames one IMAP command out of the byte stream (RFC 9051
 * 2.2, 4.3; RFC 7888 LITERAL+; RFC 3516 literal8).
 *
 * A command is one or more lines; a line that ends with a literal
 * announcement "{n}", "{n+}" or "~{n}" is followed by n octets and then the
 * command goes on. The reader keeps the pieces (line texts without CRLF,
 * literal octets) for the parser and decides every limit from what is
 * announced, before a byte of it is stored: a line longer than
 * IMAP_MAX_LINE, a literal over the command's budget (APPEND: the append
 * limit; anything else: IMAP_MAX_COMMAND_LITERALS in all). Pure: no I/O. */
#include "imap/imap_parse.h"
#include "imap/imap_parse_int.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum reader_mode {
    RD_LINE,          /* reading a line */
    RD_LITERAL,       /* reading a literal's octets */
    RD_SKIP_LINE,     /* discarding up to the next LF (refused line) */
    RD_SKIP_LITERAL,  /* discarding a refused non-synchronizing literal */
};

struct imap_reader {
    size_t append_limit;
    enum reader_mode mode;
    struct buf line;               /* the line being read */
    struct imap_framed *f;         /* pieces of the command being read */
    char *lit;                     /* the literal being read */
    size_t lit_len, lit_need;
    int lit8;
    uint64_t skip_left;            /* RD_SKIP_LITERAL */
    size_t literal_total;          /* octets of literals so far */
    int is_append;                 /* decided from the first line */
    char tag[IMAP_MAX_TAG + 1];
};

struct imap_reader *imap_reader_new(size_t append_limit)
{
    struct imap_reader *r = xcalloc(1, sizeof *r);
    r->append_limit = append_limit;
    buf_init(&r->line, IMAP_MAX_LINE + 2);
    return r;
}

void imap_framed_free(struct imap_framed **fp)
{
    struct imap_framed *f = *fp;
    if (!f)
        return;
    *fp = NULL;
    for (int i = 0; i < f->n; i++)
        free(f->p[i].data);
    free(f->p);
    free(f);
}

static void reader_clear(struct imap_reader *r)
{
    imap_framed_free(&r->f);
    free(r->lit);
    r->lit = NULL;
    r->lit_len = r->lit_need = 0;
    r->literal_total = 0;
    r->is_append = 0;
    buf_reset(&r->line);
}

void imap_reader_free(struct imap_reader **rp)
{
    struct imap_reader *r = *rp;
    if (!r)
        return;
    *rp = NULL;
    reader_clear(r);
    buf_deinit(&r->line);
    free(r);
}

const char *imap_reader_tag(const struct imap_reader *r)
{
    return r ? r->tag : "";
}

static void add_piece(struct imap_reader *r, int is_literal, int lit8, char *data, size_t len)
{
    if (!r->f)
        r->f = xcalloc(1, sizeof *r->f);
    struct imap_framed *f = r->f;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->p = xrealloc(f->p, xmul((size_t)f->cap, sizeof *f->p));
    }
    f->p[f->n].is_literal = is_literal;
    f->p[f->n].lit8 = lit8;
    f->p[f->n].data = data;
    f->p[f->n].len = len;
    f->n++;
}

/* The tag and whether the command is APPEND, from the first line. */
static void note_first_line(struct imap_reader *r, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && i < IMAP_MAX_TAG && s[i] != ' ' && (unsigned char)s[i] > 0x20 &&
           (unsigned char)s[i] < 0x7f)
        i++;
    if (i > 0 && (i == len || s[i] == ' ')) {
        memcpy(r->tag, s, i);
        r->tag[i] = '\0';
    } else {
        r->tag[0] = '\0';
    }
    if (i < len && s[i] == ' ' && len - i - 1 >= 6 && strncasecmp(s + i + 1, "APPEND", 6) == 0 &&
        (len - i - 1 == 6 || s[i + 7] == ' '))
        r->is_append = 1;
}

/* A literal announcement at the end of LINE: 1 with the size and kind,
 * 0 when there is none, -1 for a malformed or overflowing number. */
static int literal_at_end(const char *s, size_t len, uint64_t *n_r, int *nonsync_r,
                          int *lit8_r, size_t *start_r)
{
    if (len < 3 || s[len - 1] != '}')
        return 0;
    size_t end = len - 1;
    int nonsync = 0;
    if (s[end - 1] == '+') {
        nonsync = 1;
        end--;
    }
    size_t i = end;
    while (i > 0 && isdigit((unsigned char)s[i - 1]))
        i--;
    if (i == end || i == 0 || s[i - 1] != '{')
        return 0;
    if (end - i > 19)
        return -1;
    uint64_t n = 0;
    for (size_t k = i; k < end; k++)
        n = n * 10 + (uint64_t)(s[k] - '0');
    size_t start = i - 1;
    int lit8 = 0;
    if (start > 0 && s[start - 1] == '~') {
        lit8 = 1;
        start--;
    }
    *n_r = n;
    *nonsync_r = nonsync;
    *lit8_r = lit8;
    *start_r = start;
    return 1;
}

static size_t literal_budget(const struct imap_reader *r)
{
    if (r->is_append) {
        size_t max = r->append_limit + IMAP_MAX_COMMAND_LITERALS;
        return r->literal_total >= max ? 0 : max - r->literal_total;
    }
    return r->literal_total >= IMAP_MAX_COMMAND_LITERALS
               ? 0
               : IMAP_MAX_COMMAND_LITERALS - r->literal_total;
}

/* A whole line is in r->line (without CRLF). */
static enum imap_read line_done(struct imap_reader *r)
{
    size_t len = r->line.len;
    if (len > 0 && r->line.data[len - 1] == '\r')
        len--;
    const char *s = r->line.data ? r->line.data : "";
    if (!r->f)
        note_first_line(r, s, len);
    uint64_t n = 0;
    int nonsync = 0, lit8 = 0;
    size_t start = 0;
    int lit = literal_at_end(s, len, &n, &nonsync, &lit8, &start);
    char *copy = xmalloc(len + 1); /* not xstrndup: the line may hold NULs */
    memcpy(copy, s, len);
    copy[len] = '\0';
    buf_reset(&r->line);
    add_piece(r, 0, 0, copy, len);
    if (lit == 0)
        return IMAP_READ_COMMAND;
    size_t per_literal = r->is_append ? r->append_limit : IMAP_MAX_COMMAND_LITERALS;
    if (lit < 0 || n > per_literal || n > literal_budget(r)) {
        if (nonsync) {
            r->mode = RD_SKIP_LITERAL;
            r->skip_left = lit < 0 ? UINT64_MAX : n;
        } else {
            r->mode = RD_LINE;
        }
        imap_framed_free(&r->f);
        r->literal_total = 0;
        return IMAP_READ_LITERAL_TOO_BIG;
    }
    r->lit_need = (size_t)n;
    r->lit_len = 0;
    r->lit8 = lit8;
    r->lit = xmalloc(r->lit_need + 1);
    r->literal_total += r->lit_need;
    r->mode = RD_LITERAL;
    return nonsync ? IMAP_READ_MORE : IMAP_READ_CONTINUE;
}

static void literal_done(struct imap_reader *r)
{
    r->lit[r->lit_len] = '\0';
    add_piece(r, 1, r->lit8, r->lit, r->lit_len);
    r->lit = NULL;
    r->lit_len = r->lit_need = 0;
    r->mode = RD_LINE;
}

enum imap_read imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
                                size_t *used)
{
    size_t i = 0;
    enum imap_read res = IMAP_READ_MORE;
    while (i < len) {
        if (r->mode == RD_SKIP_LITERAL) {
            size_t take = len - i;
            if ((uint64_t)take > r->skip_left)
                take = (size_t)r->skip_left;
            i += take;
            r->skip_left -= take;
            if (r->skip_left == 0)
                r->mode = RD_SKIP_LINE;
            continue;
        }
        if (r->mode == RD_LITERAL) {
            size_t take = len - i;
            if (take > r->lit_need - r->lit_len)
                take = r->lit_need - r->lit_len;
            memcpy(r->lit + r->lit_len, data + i, take);
            r->lit_len += take;
            i += take;
            if (r->lit_len == r->lit_need)
                literal_done(r);
            continue;
        }
        const char *lf = memchr(data + i, '\n', len - i);
        size_t chunk = lf ? (size_t)(lf - (data + i)) : len - i;
        if (r->mode == RD_SKIP_LINE) {
            i += chunk;
            if (lf) {
                i++;
                r->mode = RD_LINE;
            }
            continue;
        }
        if (r->line.len + chunk > IMAP_MAX_LINE + 1 || buf_append(&r->line, data + i, chunk) < 0) {
            /* remember the tag for the reply if this was the first line */
            if (!r->f)
                note_first_line(r, r->line.data ? r->line.data : "", r->line.len);
            reader_clear(r);
            i += chunk;
            if (lf)
                i++;
            else
                r->mode = RD_SKIP_LINE;
            res = IMAP_READ_LINE_TOO_LONG;
            break;
        }
        i += chunk;
        if (!lf)
            continue;
        i++;
        res = line_done(r);
        if (res != IMAP_READ_MORE)
            break;
    }
    *used = i;
    return res;
}

struct imap_framed *imap_reader_take(struct imap_reader *r)
{
    struct imap_framed *f = r->f;
    r->f = NULL;
    if (!f)
        f = xcalloc(1, sizeof *f);
    r->literal_total = 0;
    r->is_append = 0;
    r->mode = RD_LINE;
    return f;
}
