/* pop3_parse: the POP3 command split, numbers, UIDL values and the RETR/TOP
 * body writer (see pop3_parse.h). Pure functions: no allocation, no I/O,
 * no logging; each reads only the bytes it is given. */
#include "pop3/pop3_parse.h"

#include <stdio.h>
#include <string.h>

static const char *const verb_names[] = {
    [POP3_VERB_CAPA] = "CAPA", [POP3_VERB_STLS] = "STLS", [POP3_VERB_AUTH] = "AUTH",
    [POP3_VERB_USER] = "USER", [POP3_VERB_PASS] = "PASS", [POP3_VERB_STAT] = "STAT",
    [POP3_VERB_LIST] = "LIST", [POP3_VERB_UIDL] = "UIDL", [POP3_VERB_RETR] = "RETR",
    [POP3_VERB_TOP] = "TOP",   [POP3_VERB_DELE] = "DELE", [POP3_VERB_NOOP] = "NOOP",
    [POP3_VERB_RSET] = "RSET", [POP3_VERB_QUIT] = "QUIT", [POP3_VERB_APOP] = "APOP",
    [POP3_VERB_UNKNOWN] = "UNKNOWN",
};

const char *pop3_verb_name(enum pop3_verb v)
{
    if ((unsigned)v > POP3_VERB_UNKNOWN)
        return "UNKNOWN";
    return verb_names[v];
}

static int is_letter(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
}

static int has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

/* KW is 1..4 letters: the verb it names, or UNKNOWN. */
static enum pop3_verb lookup_verb(const char *kw, size_t n)
{
    char up[POP3_MAX_KEYWORD + 1];
    for (size_t i = 0; i < n; i++)
        up[i] = upper(kw[i]);
    up[n] = '\0';
    for (int v = 0; v < POP3_VERB_UNKNOWN; v++)
        if (strcmp(up, verb_names[v]) == 0)
            return (enum pop3_verb)v;
    return POP3_VERB_UNKNOWN;
}

static enum pop3_perr fail(struct pop3_cmd *c, enum pop3_perr e)
{
    memset(c, 0, sizeof *c);
    c->verb = POP3_VERB_UNKNOWN;
    return e;
}

static void set_arg(struct pop3_cmd *c, const char *p, size_t n)
{
    c->arg[c->nargs] = p;
    c->arglen[c->nargs] = n;
    c->nargs++;
}

/* AUTH mechanism [initial-response]: no spaces inside either. */
static enum pop3_perr split_auth(const char *rest, size_t n, struct pop3_cmd *c)
{
    const char *sp = memchr(rest, ' ', n);
    size_t mlen = sp ? (size_t)(sp - rest) : n;
    if (mlen == 0)
        return fail(c, POP3_PERR_SYNTAX);
    if (mlen > POP3_MAX_MECH)
        return fail(c, POP3_PERR_ARG_TOO_LONG);
    set_arg(c, rest, mlen);
    if (!sp)
        return POP3_PERR_OK;
    const char *ir = sp + 1;
    size_t irlen = n - mlen - 1;
    if (irlen == 0 || memchr(ir, ' ', irlen))
        return fail(c, POP3_PERR_SYNTAX);
    if (irlen > POP3_MAX_AUTH_LINE)
        return fail(c, POP3_PERR_ARG_TOO_LONG);
    set_arg(c, ir, irlen);
    return POP3_PERR_OK;
}

/* Arguments separated by single spaces (trailing spaces tolerated). */
static enum pop3_perr split_args(const char *rest, size_t n, size_t maxarg, int maxargs,
                                 struct pop3_cmd *c)
{
    while (n > 0 && rest[n - 1] == ' ')
        n--;
    size_t i = 0;
    while (i < n) {
        const char *sp = memchr(rest + i, ' ', n - i);
        size_t tlen = sp ? (size_t)(sp - (rest + i)) : n - i;
        if (tlen == 0 || c->nargs == maxargs)
            return fail(c, POP3_PERR_SYNTAX);
        if (tlen > maxarg)
            return fail(c, POP3_PERR_ARG_TOO_LONG);
        set_arg(c, rest + i, tlen);
        i += tlen + (sp ? 1 : 0);
    }
    return POP3_PERR_OK;
}

enum pop3_perr pop3_parse_command(const char *line, size_t len, struct pop3_cmd *cmd_r)
{
    struct pop3_cmd *c = cmd_r;
    fail(c, POP3_PERR_OK);
    if (len == 0)
        return fail(c, POP3_PERR_EMPTY);
    if (has_control(line, len))
        return fail(c, POP3_PERR_CONTROL);
    size_t k = 0;
    while (k < len && line[k] != ' ')
        k++;
    if (k == 0 || k > POP3_MAX_KEYWORD)
        return fail(c, POP3_PERR_KEYWORD);
    for (size_t i = 0; i < k; i++)
        if (!is_letter((unsigned char)line[i]))
            return fail(c, POP3_PERR_KEYWORD);
    c->verb = lookup_verb(line, k);
    if (k == len)
        return POP3_PERR_OK;
    const char *rest = line + k + 1;
    size_t n = len - k - 1;
    switch (c->verb) {
    case POP3_VERB_PASS:
        set_arg(c, rest, n);
        return POP3_PERR_OK;
    case POP3_VERB_AUTH:
        return split_auth(rest, n, c);
    case POP3_VERB_USER:
        return split_args(rest, n, POP3_MAX_USER, 1, c);
    default:
        return split_args(rest, n, POP3_MAX_ARG, 2, c);
    }
}

int pop3_parse_number(const char *s, size_t len, unsigned long *n_r)
{
    *n_r = 0;
    if (len == 0)
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > POP3_MAX_NUMBER)
            return -1;
    }
    *n_r = (unsigned long)v;
    return 0;
}

void pop3_uidl(uint32_t uidvalidity, uint32_t uid, char out[POP3_UIDL_SIZE])
{
    snprintf(out, POP3_UIDL_SIZE, "%08x%08x", (unsigned)uidvalidity, (unsigned)uid);
}

/* ---------------------------------------------------------------- stuffer */

void pop3_stuffer_init(struct pop3_stuffer *st, int top, unsigned long body_lines)
{
    memset(st, 0, sizeof *st);
    st->at_bol = 1;
    st->top = top;
    st->body_left = body_lines;
}

/* A line ended (its LF was written): header/body boundary and TOP's count. */
static void end_line(struct pop3_stuffer *st)
{
    if (st->in_body) {
        if (st->top && st->body_left > 0)
            st->body_left--;
    } else if (!st->line_has_text) {
        st->in_body = 1;
    }
    st->at_bol = 1;
    st->line_has_text = 0;
    if (st->top && st->in_body && st->body_left == 0)
        st->done = 1;
}

/* The bytes of one line before its LF (or the end of the input): SEG of
 * LEN > 0 bytes. A CR counts as text unless it is the line's last byte
 * before its LF, so any two bytes, or one that is not a CR, are text; a
 * CR left over from the previous piece is text once something follows. */
static size_t put_segment(struct pop3_stuffer *st, const char *seg, size_t len, char *out)
{
    size_t o = 0;
    if (st->at_bol && seg[0] == '.')
        out[o++] = '.';
    memcpy(out + o, seg, len);
    o += len;
    if (st->prev_cr || len >= 2 || seg[0] != '\r')
        st->line_has_text = 1;
    st->at_bol = 0;
    st->prev_cr = seg[len - 1] == '\r';
    return o;
}

/* Line by line: memchr finds each LF and the bytes before it are copied
 * whole, so the cost per byte is that of memchr and memcpy. */
size_t pop3_stuffer_feed(struct pop3_stuffer *st, const char *in, size_t len, char *out)
{
    size_t o = 0;
    const char *p = in, *end = in + len;
    while (p < end && !st->done) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *stop = lf ? lf : end;
        if (stop > p)
            o += put_segment(st, p, (size_t)(stop - p), out + o);
        if (!lf)
            break;
        if (!st->prev_cr)
            out[o++] = '\r';
        out[o++] = '\n';
        st->prev_cr = 0;
        end_line(st);
        p = lf + 1;
    }
    return o;
}

size_t pop3_stuffer_finish(struct pop3_stuffer *st, char *out)
{
    size_t o = 0;
    if (!st->done && !st->at_bol) {
        if (!st->prev_cr)
            out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    return o + 3;
}
