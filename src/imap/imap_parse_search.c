/* imap_parse_search: SEARCH programs (RFC 9051 6.4.4, RFC 3501 6.4.4):
 * every search key, OR/NOT/lists, RETURN options (ESEARCH RFC 4731,
 * SEARCHRES RFC 5182), CHARSET, MODSEQ (RFC 7162 3.1.5) and OLDER/YOUNGER
 * (RFC 5032). */
#include "imap/imap_parse.h"
#include "imap/imap_parse_int.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Keys in one program (all levels): bounds the work a client can ask. */
#define MAX_SEARCH_KEYS 1000

struct sp {
    const struct imap_arg *a;
    int n, pos;
    int keys;
    struct imap_search_prog *prog;
};

static const struct {
    const char *name;
    enum imap_skey key;
    enum { A_NONE, A_STR, A_FLAG, A_DATE, A_NUM, A_SET, A_HEADER, A_SECS } arg;
} key_table[] = {
    {"ALL", IMAP_SK_ALL, A_NONE},           {"ANSWERED", IMAP_SK_ANSWERED, A_NONE},
    {"DELETED", IMAP_SK_DELETED, A_NONE},   {"DRAFT", IMAP_SK_DRAFT, A_NONE},
    {"FLAGGED", IMAP_SK_FLAGGED, A_NONE},   {"SEEN", IMAP_SK_SEEN, A_NONE},
    {"RECENT", IMAP_SK_RECENT, A_NONE},     {"NEW", IMAP_SK_NEW, A_NONE},
    {"OLD", IMAP_SK_OLD, A_NONE},           {"UNANSWERED", IMAP_SK_UNANSWERED, A_NONE},
    {"UNDELETED", IMAP_SK_UNDELETED, A_NONE}, {"UNDRAFT", IMAP_SK_UNDRAFT, A_NONE},
    {"UNFLAGGED", IMAP_SK_UNFLAGGED, A_NONE}, {"UNSEEN", IMAP_SK_UNSEEN, A_NONE},
    {"KEYWORD", IMAP_SK_KEYWORD, A_FLAG},   {"UNKEYWORD", IMAP_SK_UNKEYWORD, A_FLAG},
    {"BCC", IMAP_SK_BCC, A_STR},            {"CC", IMAP_SK_CC, A_STR},
    {"FROM", IMAP_SK_FROM, A_STR},          {"TO", IMAP_SK_TO, A_STR},
    {"SUBJECT", IMAP_SK_SUBJECT, A_STR},    {"HEADER", IMAP_SK_HEADER, A_HEADER},
    {"BODY", IMAP_SK_BODY, A_STR},          {"TEXT", IMAP_SK_TEXT, A_STR},
    {"BEFORE", IMAP_SK_BEFORE, A_DATE},     {"ON", IMAP_SK_ON, A_DATE},
    {"SINCE", IMAP_SK_SINCE, A_DATE},       {"SENTBEFORE", IMAP_SK_SENTBEFORE, A_DATE},
    {"SENTON", IMAP_SK_SENTON, A_DATE},     {"SENTSINCE", IMAP_SK_SENTSINCE, A_DATE},
    {"LARGER", IMAP_SK_LARGER, A_NUM},      {"SMALLER", IMAP_SK_SMALLER, A_NUM},
    {"UID", IMAP_SK_UID, A_SET},            {"OLDER", IMAP_SK_OLDER, A_SECS},
    {"YOUNGER", IMAP_SK_YOUNGER, A_SECS},
};

static void key_free(struct imap_search_key *k)
{
    for (int i = 0; i < k->nchild; i++)
        key_free(&k->child[i]);
    free(k->child);
    free(k->field);
    free(k->str);
    free(k->folded);
    imap_seqset_free(&k->set);
    memset(k, 0, sizeof *k);
}

void imap_search_prog_free(struct imap_search_prog *prog)
{
    key_free(&prog->root);
    memset(prog, 0, sizeof *prog);
}

static const struct imap_arg *next_arg(struct sp *p)
{
    return p->pos < p->n ? &p->a[p->pos++] : NULL;
}

static struct imap_search_key *add_child(struct imap_search_key *parent)
{
    parent->child =
        xrealloc(parent->child, xmul((size_t)parent->nchild + 1, sizeof *parent->child));
    struct imap_search_key *k = &parent->child[parent->nchild++];
    memset(k, 0, sizeof *k);
    return k;
}

static int take_string(struct sp *p, char **out)
{
    const char *s;
    size_t len;
    const struct imap_arg *a = next_arg(p);
    if (!a || a->type == IMAP_ARG_LIST || !imap_arg_astring(a, &s, &len))
        return -1;
    if (memchr(s, '\0', len))
        return -1;
    *out = xstrndup(s, len);
    return 0;
}

static int take_number(struct sp *p, uint64_t max, uint64_t *out)
{
    const struct imap_arg *a = next_arg(p);
    if (!a || a->type != IMAP_ARG_ATOM)
        return -1;
    return imap_parse_number(a->str, a->len, max, out);
}

/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer */
static int parse_modseq(struct sp *p, struct imap_search_key *k)
{
    const struct imap_arg *a = p->pos < p->n ? &p->a[p->pos] : NULL;
    if (a && (a->type == IMAP_ARG_STRING || a->type == IMAP_ARG_LITERAL)) {
        p->pos++;
        const struct imap_arg *t = next_arg(p);
        if (!t || t->type != IMAP_ARG_ATOM ||
            (strcasecmp(t->str, "priv") != 0 && strcasecmp(t->str, "shared") != 0 &&
             strcasecmp(t->str, "all") != 0))
            return -1;
    }
    k->key = IMAP_SK_MODSEQ;
    p->prog->uses_modseq = 1;
    return take_number(p, INT64_MAX, &k->num);
}

static int parse_key(struct sp *p, struct imap_search_key *k, int depth);

static int parse_table_key(struct sp *p, struct imap_search_key *k, int idx)
{
    k->key = key_table[idx].key;
    const char *s;
    switch (key_table[idx].arg) {
    case A_NONE:
        return 0;
    case A_STR:
        if (k->key == IMAP_SK_BODY || k->key == IMAP_SK_TEXT)
            p->prog->needs_body = 1;
        else
            p->prog->needs_headers = 1;
        return take_string(p, &k->str);
    case A_FLAG: {
        const struct imap_arg *a = next_arg(p);
        if (!a || a->type != IMAP_ARG_ATOM || a->len > IMAP_MAX_FLAG_LEN)
            return -1;
        k->str = xstrdup(a->str);
        return 0;
    }
    case A_HEADER:
        p->prog->needs_headers = 1;
        if (take_string(p, &k->field) < 0)
            return -1;
        return take_string(p, &k->str);
    case A_DATE: {
        const struct imap_arg *a = next_arg(p);
        if (!a || !imap_arg_astring(a, &s, NULL) || imap_date_parse(s, &k->date) < 0)
            return -1;
        if (k->key == IMAP_SK_SENTBEFORE || k->key == IMAP_SK_SENTON ||
            k->key == IMAP_SK_SENTSINCE)
            p->prog->needs_headers = 1;
        return 0;
    }
    case A_NUM:
        return take_number(p, UINT32_MAX, &k->num);
    case A_SECS:
        if (take_number(p, UINT32_MAX, &k->num) < 0 || k->num == 0)
            return -1;
        return 0;
    case A_SET: {
        const struct imap_arg *a = next_arg(p);
        if (!a || a->type != IMAP_ARG_ATOM)
            return -1;
        return imap_seqset_parse(a->str, &k->set);
    }
    }
    return -1;
}

static int parse_key(struct sp *p, struct imap_search_key *k, int depth)
{
    if (++p->keys > MAX_SEARCH_KEYS || depth > IMAP_MAX_DEPTH * 4)
        return -1;
    const struct imap_arg *a = next_arg(p);
    if (!a)
        return -1;
    if (a->type == IMAP_ARG_LIST) {
        if (a->nlist == 0)
            return -1;
        struct sp sub = {.a = a->list, .n = a->nlist, .keys = p->keys, .prog = p->prog};
        k->key = IMAP_SK_AND;
        while (sub.pos < sub.n)
            if (parse_key(&sub, add_child(k), depth + 1) < 0)
                return -1;
        p->keys = sub.keys;
        return 0;
    }
    if (a->type != IMAP_ARG_ATOM)
        return -1;
    if (strcasecmp(a->str, "NOT") == 0) {
        k->key = IMAP_SK_NOT;
        return parse_key(p, add_child(k), depth + 1);
    }
    if (strcasecmp(a->str, "OR") == 0) {
        k->key = IMAP_SK_OR;
        if (parse_key(p, add_child(k), depth + 1) < 0)
            return -1;
        return parse_key(p, add_child(k), depth + 1);
    }
    if (strcasecmp(a->str, "MODSEQ") == 0)
        return parse_modseq(p, k);
    for (size_t i = 0; i < sizeof key_table / sizeof key_table[0]; i++)
        if (strcasecmp(a->str, key_table[i].name) == 0)
            return parse_table_key(p, k, (int)i);
    /* a sequence set */
    k->key = IMAP_SK_SEQSET;
    return imap_seqset_parse(a->str, &k->set);
}

static int parse_return(const struct imap_arg *a, struct imap_search_prog *prog)
{
    static const struct {
        const char *name;
        unsigned bit;
    } opts[] = {{"MIN", IMAP_ESR_MIN}, {"MAX", IMAP_ESR_MAX}, {"ALL", IMAP_ESR_ALL},
                {"COUNT", IMAP_ESR_COUNT}, {"SAVE", IMAP_ESR_SAVE}};
    if (a->type != IMAP_ARG_LIST)
        return -1;
    prog->esearch = 1;
    for (int i = 0; i < a->nlist; i++) {
        const struct imap_arg *o = &a->list[i];
        int found = 0;
        for (size_t k = 0; o->type == IMAP_ARG_ATOM && k < sizeof opts / sizeof opts[0]; k++)
            if (strcasecmp(o->str, opts[k].name) == 0) {
                prog->ret |= opts[k].bit;
                found = 1;
            }
        if (!found)
            return -1;
    }
    return 0;
}

int imap_search_parse(const struct imap_arg *args, int nargs, struct imap_search_prog *prog,
                      const char **error_r)
{
    memset(prog, 0, sizeof *prog);
    prog->root.key = IMAP_SK_AND;
    struct sp p = {.a = args, .n = nargs, .prog = prog};
    *error_r = "Invalid search program";
    if (p.pos < p.n && args[p.pos].type == IMAP_ARG_ATOM &&
        strcasecmp(args[p.pos].str, "RETURN") == 0) {
        p.pos++;
        if (p.pos >= p.n || parse_return(&args[p.pos], prog) < 0) {
            *error_r = "Invalid RETURN options";
            goto bad;
        }
        p.pos++;
    }
    if (p.pos < p.n && args[p.pos].type == IMAP_ARG_ATOM &&
        strcasecmp(args[p.pos].str, "CHARSET") == 0) {
        p.pos++;
        const char *cs;
        if (p.pos >= p.n || !imap_arg_astring(&args[p.pos], &cs, NULL))
            goto bad;
        p.pos++;
        if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
            imap_search_prog_free(prog);
            *error_r = "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset";
            return 1;
        }
    }
    if (p.pos >= p.n)
        goto bad;
    while (p.pos < p.n)
        if (parse_key(&p, add_child(&prog->root), 1) < 0)
            goto bad;
    *error_r = NULL;
    return 0;
bad:
    imap_search_prog_free(prog);
    return -1;
}
