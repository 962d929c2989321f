/* imap_parse: turns a framed command into its tag, name and argument tree
 * (RFC 9051 9: tag, atom, quoted, literal, NIL, parenthesised lists).
 *
 * Atoms are taken generously so that handlers see what the client meant:
 * "\Seen", "1:*", "BODY[HEADER.FIELDS (A B)]<0.10>" (a '[' keeps spaces and
 * parentheses inside the atom until its ']') and LIST patterns with '%'
 * and '*'. Depth and count of arguments are bounded. */
#include "imap/imap_parse.h"
#include "imap/imap_parse_int.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct cursor {
    const struct imap_framed *f;
    int piece;        /* current line piece */
    size_t pos;       /* position in it */
    int nargs;        /* all levels */
};

static const struct imap_piece *cur_line(const struct cursor *c)
{
    return c->piece < c->f->n ? &c->f->p[c->piece] : NULL;
}

static int at_end(const struct cursor *c)
{
    const struct imap_piece *p = cur_line(c);
    return !p || c->pos >= p->len;
}

static int peek(const struct cursor *c)
{
    const struct imap_piece *p = cur_line(c);
    return p && c->pos < p->len ? (unsigned char)p->data[c->pos] : -1;
}

/* RFC 9051 atom-specials are "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]";
 * handlers need '%', '*', '\' and ']' inside atoms (patterns, sequence
 * sets, flags, sections), so only these end one. */
static int atom_char(int ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')' && ch != '{' && ch != '"';
}

int imap_parse_number(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static void args_push(struct imap_arg **list, int *n, int *cap, const struct imap_arg *a)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *list = xrealloc(*list, xmul((size_t)*cap, sizeof **list));
    }
    (*list)[(*n)++] = *a;
}

static void arg_free(struct imap_arg *a)
{
    free(a->str);
    for (int i = 0; i < a->nlist; i++)
        arg_free(&a->list[i]);
    free(a->list);
}

static void args_free(struct imap_arg *list, int n)
{
    for (int i = 0; i < n; i++)
        arg_free(&list[i]);
    free(list);
}

/* An atom; '[' ... ']' may hold anything but CR/LF (sections). */
static enum imap_perr parse_atom(struct cursor *c, struct imap_arg *a)
{
    const struct imap_piece *p = cur_line(c);
    size_t start = c->pos;
    int bracket = 0;
    while (c->pos < p->len) {
        int ch = (unsigned char)p->data[c->pos];
        if (bracket) {
            if (ch == ']')
                bracket = 0;
            else if (ch < 0x20 || ch >= 0x7f)
                return IMAP_PERR_SYNTAX;
            c->pos++;
            continue;
        }
        if (ch == '[') {
            bracket = 1;
            c->pos++;
            continue;
        }
        if (ch >= 0x80)
            return IMAP_PERR_SYNTAX;
        if (!atom_char(ch))
            break;
        c->pos++;
    }
    if (bracket)
        return IMAP_PERR_SYNTAX;
    size_t len = c->pos - start;
    if (len == 0)
        return IMAP_PERR_SYNTAX;
    a->len = len;
    a->str = xstrndup(p->data + start, len);
    a->type = len == 3 && strncasecmp(a->str, "NIL", 3) == 0 ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
    return IMAP_PERR_OK;
}

static enum imap_perr parse_quoted(struct cursor *c, struct imap_arg *a)
{
    const struct imap_piece *p = cur_line(c);
    c->pos++; /* the opening quote */
    char *out = xmalloc(p->len - c->pos + 1);
    size_t n = 0;
    while (c->pos < p->len) {
        char ch = p->data[c->pos++];
        if (ch == '"') {
            out[n] = '\0';
            a->type = IMAP_ARG_STRING;
            a->str = out;
            a->len = n;
            return IMAP_PERR_OK;
        }
        if (ch == '\\') {
            if (c->pos >= p->len)
                break;
            ch = p->data[c->pos++];
            if (ch != '"' && ch != '\\')
                break;
        } else if (ch == '\0' || ch == '\r' || ch == '\n') {
            break;
        }
        out[n++] = ch;
    }
    free(out);
    return IMAP_PERR_SYNTAX;
}

/* "{n}" / "{n+}" / "~{n}" at the end of the line: the next piece is it. */
static enum imap_perr parse_literal(struct cursor *c, struct imap_arg *a)
{
    const struct imap_piece *p = cur_line(c);
    const char *close = memchr(p->data + c->pos, '}', p->len - c->pos);
    if (!close || (size_t)(close - p->data) != p->len - 1)
        return IMAP_PERR_SYNTAX;
    if (c->piece + 1 >= c->f->n || !c->f->p[c->piece + 1].is_literal)
        return IMAP_PERR_SYNTAX;
    const struct imap_piece *lit = &c->f->p[c->piece + 1];
    a->type = IMAP_ARG_LITERAL;
    a->is_literal8 = lit->lit8;
    a->str = xmalloc(lit->len + 1);
    memcpy(a->str, lit->data, lit->len);
    a->str[lit->len] = '\0';
    a->len = lit->len;
    /* the command goes on in the piece after the literal */
    c->piece += 2;
    c->pos = 0;
    if (c->piece >= c->f->n)
        return IMAP_PERR_SYNTAX; /* the reader always adds the line after */
    return IMAP_PERR_OK;
}

static enum imap_perr parse_list(struct cursor *c, struct imap_arg **list, int *n, int depth,
                                 int top);

static enum imap_perr parse_one(struct cursor *c, struct imap_arg *a, int depth)
{
    memset(a, 0, sizeof *a);
    if (++c->nargs > IMAP_MAX_ARGS)
        return IMAP_PERR_TOO_MANY_ARGS;
    int ch = peek(c);
    if (ch == '(') {
        if (depth >= IMAP_MAX_DEPTH)
            return IMAP_PERR_TOO_DEEP;
        c->pos++;
        a->type = IMAP_ARG_LIST;
        return parse_list(c, &a->list, &a->nlist, depth + 1, 0);
    }
    if (ch == '"')
        return parse_quoted(c, a);
    if (ch == '{' || ch == '~')
        return parse_literal(c, a);
    return parse_atom(c, a);
}

/* Elements separated by SP until ')' (or the end of the command at top
 * level). */
static enum imap_perr parse_list(struct cursor *c, struct imap_arg **list, int *n, int depth,
                                 int top)
{
    int cap = 0;
    *list = NULL;
    *n = 0;
    for (;;) {
        while (peek(c) == ' ')
            c->pos++;
        if (at_end(c)) {
            if (top && c->piece == c->f->n - 1)
                return IMAP_PERR_OK;
            return IMAP_PERR_SYNTAX;
        }
        if (peek(c) == ')') {
            if (top)
                return IMAP_PERR_SYNTAX;
            c->pos++;
            return IMAP_PERR_OK;
        }
        struct imap_arg a;
        enum imap_perr e = parse_one(c, &a, depth);
        if (e == IMAP_PERR_OK) {
            int next = peek(c);
            if (next != -1 && next != ' ' && next != ')')
                e = IMAP_PERR_SYNTAX;
        }
        if (e != IMAP_PERR_OK) {
            arg_free(&a);
            return e;
        }
        args_push(list, n, &cap, &a);
    }
}

/* A word of the first line: tag or command name. */
static size_t take_word(struct cursor *c, char *out, size_t max)
{
    const struct imap_piece *p = cur_line(c);
    size_t start = c->pos;
    while (c->pos < p->len && atom_char((unsigned char)p->data[c->pos]) &&
           p->data[c->pos] != '[')
        c->pos++;
    size_t len = c->pos - start;
    if (len == 0 || len > max)
        return 0;
    memcpy(out, p->data + start, len);
    out[len] = '\0';
    return len;
}

static int valid_tag(const char *t)
{
    for (; *t; t++)
        if (*t == '+' || *t == '%' || *t == '*' || *t == '\\')
            return 0;
    return 1;
}

static void upper(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

enum imap_perr imap_parse_command(const struct imap_framed *f, struct imap_command *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    struct cursor c = {.f = f};
    if (!f || f->n == 0 || f->p[0].is_literal)
        return IMAP_PERR_NO_TAG;
    char tag[IMAP_MAX_TAG + 1];
    if (take_word(&c, tag, IMAP_MAX_TAG) == 0 || !valid_tag(tag))
        return IMAP_PERR_NO_TAG;
    memcpy(cmd->tag, tag, sizeof tag);
    if (peek(&c) != ' ')
        return IMAP_PERR_NO_COMMAND;
    c.pos++;
    char name[IMAP_MAX_COMMAND_NAME + 1];
    if (take_word(&c, name, IMAP_MAX_COMMAND_NAME) == 0)
        return at_end(&c) ? IMAP_PERR_NO_COMMAND : IMAP_PERR_SYNTAX;
    upper(name);
    if (strcmp(name, "UID") == 0) {
        if (peek(&c) != ' ')
            return IMAP_PERR_NO_COMMAND;
        c.pos++;
        if (take_word(&c, name, IMAP_MAX_COMMAND_NAME) == 0)
            return IMAP_PERR_NO_COMMAND;
        upper(name);
        cmd->uid = 1;
    }
    memcpy(cmd->name, name, sizeof name);
    int next = peek(&c);
    if (next != -1 && next != ' ')
        return IMAP_PERR_SYNTAX;
    enum imap_perr e = parse_list(&c, &cmd->args, &cmd->nargs, 0, 1);
    if (e != IMAP_PERR_OK) {
        args_free(cmd->args, cmd->nargs);
        cmd->args = NULL;
        cmd->nargs = 0;
    }
    return e;
}

void imap_command_free(struct imap_command *cmd)
{
    args_free(cmd->args, cmd->nargs);
    cmd->args = NULL;
    cmd->nargs = 0;
}

const char *imap_perr_text(enum imap_perr e)
{
    switch (e) {
    case IMAP_PERR_OK: return "OK";
    case IMAP_PERR_NO_TAG: return "Missing or invalid tag";
    case IMAP_PERR_NO_COMMAND: return "Missing command";
    case IMAP_PERR_SYNTAX: return "Syntax error in arguments";
    case IMAP_PERR_TOO_DEEP: return "Too many nested parentheses";
    case IMAP_PERR_TOO_MANY_ARGS: return "Too many arguments";
    }
    return "Syntax error";
}

int imap_arg_astring(const struct imap_arg *arg, const char **s, size_t *len)
{
    if (!arg)
        return 0;
    switch (arg->type) {
    case IMAP_ARG_ATOM:
    case IMAP_ARG_STRING:
    case IMAP_ARG_LITERAL:
    case IMAP_ARG_NIL:   /* "NIL" is an atom where an astring is expected */
        *s = arg->str;
        if (len)
            *len = arg->len;
        return 1;
    case IMAP_ARG_LIST:
        break;
    }
    return 0;
}
