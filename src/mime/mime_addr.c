/* mime_addr: RFC 5322 3.4 address lists as the IMAP ENVELOPE shows them
 * (RFC 3501 7.4.2): one (name adl mailbox host) per mailbox, and a group
 * as a start marker (NIL NIL "group name" NIL), its members, and an end
 * marker (NIL NIL NIL NIL).
 *
 * The parser is lenient in the ways real mail needs: a missing comma
 * between two addr-specs, a bare word without "@" (mailbox with host
 * MISSING_DOMAIN, as Dovecot fills it), an unterminated group, quote or
 * angle bracket, a comment used as the name of an addr-spec without a
 * display name ("a@b.example (Ann)"). Names and mailboxes are kept as
 * written (RFC 2047 encoded-words stay encoded); display-name quotes are
 * removed, local-part quotes are kept. */
#include "mime/mime_int.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

enum tk { TK_ATOM, TK_QSTR, TK_DLIT, TK_COMMENT, TK_SPECIAL };

struct tok {
    enum tk t;
    size_t off, len;    /* QSTR/DLIT: with delimiters; COMMENT: the text inside */
    int ws;             /* whitespace or a comment came before */
    char ch;            /* TK_SPECIAL */
};

static int is_special(char c)
{
    return c == '<' || c == '>' || c == '@' || c == ',' || c == ';' || c == ':' || c == '.';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Splits V into tokens (at most N + 1). */
static int tokenize(const char *v, size_t n, struct tok *t)
{
    int nt = 0, ws = 0;
    size_t i = 0;
    while (i < n) {
        char c = v[i];
        if (is_space(c)) {
            ws = 1;
            i++;
            continue;
        }
        struct tok *k = &t[nt];
        k->ws = ws;
        k->ch = 0;
        size_t st = i;
        if (c == '(') {
            int depth = 0;
            while (i < n) {
                char ch = v[i++];
                if (ch == '\\' && i < n)
                    i++;
                else if (ch == '(')
                    depth++;
                else if (ch == ')' && --depth == 0)
                    break;
            }
            k->t = TK_COMMENT;
            k->off = st + 1;
            k->len = (i > st + 1 && v[i - 1] == ')' && depth == 0) ? i - st - 2 : i - st - 1;
            nt++;
            ws = 1;
            continue;
        }
        if (c == '"' || c == '[') {
            char close = c == '"' ? '"' : ']';
            i++;
            while (i < n && v[i] != close) {
                if (v[i] == '\\' && i + 1 < n)
                    i++;
                i++;
            }
            if (i < n)
                i++;
            k->t = c == '"' ? TK_QSTR : TK_DLIT;
        } else if (is_special(c)) {
            k->t = TK_SPECIAL;
            k->ch = c;
            i++;
        } else if (c == ')' || c == ']' || c == '\\') {
            i++; /* stray */
            continue;
        } else {
            while (i < n && !is_space(v[i]) && !is_special(v[i]) && v[i] != '(' && v[i] != ')' &&
                   v[i] != '"' && v[i] != '[' && v[i] != ']' && v[i] != '\\')
                i++;
            k->t = TK_ATOM;
        }
        k->off = st;
        k->len = i - st;
        nt++;
        ws = 0;
    }
    return nt;
}

/* A growing string. */
struct sb {
    char *p;
    size_t n, cap;
};

static void sb_add(struct sb *s, const char *p, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->p = xrealloc(s->p, s->cap);
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = '\0';
}

static int is_dot(const struct tok *k) { return k->t == TK_SPECIAL && k->ch == '.'; }
static int is_sp(const struct tok *k, char c) { return k->t == TK_SPECIAL && k->ch == c; }
static int is_word(const struct tok *k)
{
    return k->t == TK_ATOM || k->t == TK_QSTR || k->t == TK_COMMENT || is_dot(k);
}

struct ctx {
    const char *v;
    struct tok *t;
    int nt;
    int utf8;
    struct buf *out;
    int any;            /* an address was written */
};

/* The display name of tokens [a, b): words joined by single spaces,
 * quoted strings unquoted, comments left out. */
static void phrase(const struct ctx *c, int a, int b, struct sb *s)
{
    for (int i = a; i < b; i++) {
        const struct tok *k = &c->t[i];
        if (k->t == TK_COMMENT)
            continue;
        if (s->n && k->ws)
            sb_add(s, " ", 1);
        if (k->t == TK_QSTR) {
            const char *p = c->v + k->off + 1;
            size_t n = k->len >= 2 && c->v[k->off + k->len - 1] == '"' ? k->len - 2 : k->len - 1;
            for (size_t j = 0; j < n; j++) {
                if (p[j] == '\\' && j + 1 < n)
                    j++;
                sb_add(s, p + j, 1);
            }
        } else {
            sb_add(s, c->v + k->off, k->len);
        }
    }
}

/* A local part (or route) of tokens [a, b), concatenated as written. */
static void raw_concat(const struct ctx *c, int a, int b, struct sb *s)
{
    for (int i = a; i < b; i++)
        if (c->t[i].t != TK_COMMENT)
            sb_add(s, c->v + c->t[i].off, c->t[i].len);
}

/* The domain starting at token K; returns the index after it. A word that
 * follows whitespace without a dot between starts the next address. */
static int domain(const struct ctx *c, int k, struct sb *s)
{
    int prev_dot = 1;
    while (k < c->nt) {
        const struct tok *t = &c->t[k];
        if (t->t == TK_COMMENT) {
            k++;
            continue;
        }
        if (is_dot(t)) {
            sb_add(s, ".", 1);
            prev_dot = 1;
        } else if (t->t == TK_ATOM || t->t == TK_DLIT) {
            if (!prev_dot && t->ws)
                break;
            sb_add(s, c->v + t->off, t->len);
            prev_dot = 0;
        } else {
            break;
        }
        k++;
    }
    return k;
}

static int put(struct ctx *c, const struct sb *name, const struct sb *adl, const char *mbox,
               size_t mlen, const char *host, size_t hlen)
{
    struct buf *o = c->out;
    if (buf_append(o, c->any ? "(" : "((", c->any ? 1 : 2) < 0)
        return -1;
    c->any = 1;
    if (mime_put_nstring(o, name && name->n ? name->p : NULL, name ? name->n : 0, c->utf8) < 0 ||
        buf_append(o, " ", 1) < 0 ||
        mime_put_nstring(o, adl && adl->n ? adl->p : NULL, adl ? adl->n : 0, c->utf8) < 0 ||
        buf_append(o, " ", 1) < 0 || mime_put_nstring(o, mbox, mlen, c->utf8) < 0 ||
        buf_append(o, " ", 1) < 0 || mime_put_nstring(o, host, hlen, c->utf8) < 0 ||
        buf_append(o, ")", 1) < 0)
        return -1;
    return 0;
}

static int put_mailbox(struct ctx *c, const struct sb *name, const struct sb *adl,
                       const struct sb *local, const struct sb *host)
{
    static const char mm[] = "MISSING_MAILBOX", md[] = "MISSING_DOMAIN";
    return put(c, name, adl, local->n ? local->p : mm, local->n ? local->n : sizeof mm - 1,
               host->n ? host->p : md, host->n ? host->n : sizeof md - 1);
}

static void sb_reset(struct sb *s)
{
    s->n = 0;
    if (s->p)
        s->p[0] = '\0';
}

/* The first comment in tokens [a, b) as a name, when NAME is empty. */
static void comment_name(const struct ctx *c, int a, int b, struct sb *name)
{
    if (name->n)
        return;
    for (int i = a; i < b && i < c->nt; i++) {
        if (c->t[i].t == TK_COMMENT) {
            sb_add(name, c->v + c->t[i].off, c->t[i].len);
            return;
        }
    }
}

/* One "<[route:]local@domain>" starting at the '<' token K. */
static int angle_addr(struct ctx *c, int k, struct sb *adl, struct sb *local, struct sb *host)
{
    k++;
    if (k < c->nt && is_sp(&c->t[k], '@')) {
        int colon = -1;
        for (int i = k; i < c->nt && !is_sp(&c->t[i], '>'); i++)
            if (is_sp(&c->t[i], ':')) {
                colon = i;
                break;
            }
        if (colon > 0) {
            raw_concat(c, k, colon, adl);
            k = colon + 1;
        }
    }
    int j = k;
    while (j < c->nt && is_word(&c->t[j]))
        j++;
    raw_concat(c, k, j, local);
    k = j;
    if (k < c->nt && is_sp(&c->t[k], '@'))
        k = domain(c, k + 1, host);
    while (k < c->nt && !is_sp(&c->t[k], '>') && !is_sp(&c->t[k], ',') && !is_sp(&c->t[k], ';'))
        k++;
    if (k < c->nt && is_sp(&c->t[k], '>'))
        k++;
    return k;
}

static int parse(struct ctx *c)
{
    struct sb name = {0}, adl = {0}, local = {0}, host = {0};
    int group = 0, i = 0, r = 0;
    while (i < c->nt && r == 0) {
        const struct tok *t = &c->t[i];
        if (t->t == TK_SPECIAL && t->ch != '<' && t->ch != '@' && t->ch != '.') {
            if (t->ch == ';' && group) {
                r = put(c, NULL, NULL, NULL, 0, NULL, 0);
                group = 0;
            }
            i++;
            continue;
        }
        sb_reset(&name);
        sb_reset(&adl);
        sb_reset(&local);
        sb_reset(&host);
        int j = i, words = 0;
        while (j < c->nt && is_word(&c->t[j]))
            words |= c->t[j++].t != TK_COMMENT;
        const struct tok *nx = j < c->nt ? &c->t[j] : NULL;
        if (nx && is_sp(nx, ':') && !group && words) {
            phrase(c, i, j, &name);
            r = put(c, NULL, NULL, name.p, name.n, NULL, 0);
            group = 1;
            i = j + 1;
        } else if (nx && is_sp(nx, '<')) {
            phrase(c, i, j, &name);
            int k = angle_addr(c, j, &adl, &local, &host);
            comment_name(c, k, k + 1, &name);
            r = put_mailbox(c, &name, &adl, &local, &host);
            i = k;
        } else if (nx && is_sp(nx, '@')) {
            raw_concat(c, i, j, &local);
            int k = domain(c, j + 1, &host);
            comment_name(c, i, k + 1, &name);
            r = put_mailbox(c, &name, &adl, &local, &host);
            i = k;
        } else if (words) {
            raw_concat(c, i, j, &local);
            r = put_mailbox(c, &name, &adl, &local, &host);
            i = j;
        } else {
            i = j > i ? j : i + 1;
        }
    }
    if (r == 0 && group)
        r = put(c, NULL, NULL, NULL, 0, NULL, 0);
    free(name.p);
    free(adl.p);
    free(local.p);
    free(host.p);
    return r;
}

int mime_addr_list_write(const char *v, size_t n, int utf8, struct buf *out)
{
    struct tok *t = xmalloc(xmul(n + 1, sizeof *t));
    struct ctx c = {.v = v, .t = t, .utf8 = utf8, .out = out};
    c.nt = tokenize(v, n, t);
    int r = parse(&c);
    free(t);
    if (r < 0)
        return -1;
    if (!c.any)
        return buf_append(out, "NIL", 3);
    return buf_append(out, ")", 1);
}
