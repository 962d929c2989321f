/* imap_list: LIST and LSUB (RFC 9051 6.3.9, RFC 3501 6.3.8/6.3.9) with
 * LIST-EXTENDED (RFC 5258: selection SUBSCRIBED, REMOTE, RECURSIVEMATCH,
 * SPECIAL-USE; return SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS = RFC
 * 5819), several patterns, "/" as the delimiter, CHILDREN attributes
 * (RFC 3348) and the special-use attributes (RFC 6154). */
#include "imap/imap_int.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PATTERNS 32

enum { SEL_SUBSCRIBED = 1, SEL_SPECIAL_USE = 2, SEL_RECURSIVE = 4 };
enum { RET_SUBSCRIBED = 1, RET_CHILDREN = 2, RET_SPECIAL_USE = 4, RET_STATUS = 8 };

struct list_ctx {
    int lsub;
    unsigned sel, ret, status_items;
    int extended;                  /* selection or return options given */
    char *patterns[MAX_PATTERNS];  /* reference + pattern, UTF-8 */
    int npatterns;
    struct store_mailbox *boxes;
    int nboxes;
    struct store_status *status;   /* per box, when RET_STATUS */
    int *status_rc;
};

static void list_ctx_free(void *p)
{
    struct list_ctx *l = p;
    for (int i = 0; i < l->npatterns; i++)
        free(l->patterns[i]);
    free(l->boxes);
    free(l->status);
    free(l->status_rc);
    free(l);
}

/* '*' matches anything, '%' anything but the delimiter. */
static int pattern_match(const char *p, const char *name)
{
    for (; *p; p++) {
        if (*p == '*' || *p == '%') {
            int any = *p == '*';
            for (const char *n = name;; n++) {
                if (pattern_match(p + 1, n))
                    return 1;
                if (!*n || (!any && *n == '/'))
                    return 0;
            }
        }
        if (*p != *name)
            return 0;
        name++;
    }
    return *name == '\0';
}

static int matches_any(const struct list_ctx *l, const char *name)
{
    for (int i = 0; i < l->npatterns; i++) {
        const char *p = l->patterns[i];
        /* INBOX is case-insensitive in patterns too */
        if (strncasecmp(p, "INBOX", 5) == 0 && strncmp(name, "INBOX", 5) == 0) {
            char tmp[8] = "INBOX";
            char *q = xasprintf("%s%s", tmp, p + 5);
            int m = pattern_match(q, name);
            free(q);
            if (m)
                return 1;
            continue;
        }
        if (pattern_match(p, name))
            return 1;
    }
    return 0;
}

static void list_work(struct imap_job *j)
{
    struct list_ctx *l = j->ctx;
    j->result = store_mailboxes(j->data_dir, j->account, &l->boxes, &l->nboxes, &j->error);
    if (j->result != 0 || !(l->ret & RET_STATUS))
        return;
    l->status = xcalloc((size_t)l->nboxes + 1, sizeof *l->status);
    l->status_rc = xcalloc((size_t)l->nboxes + 1, sizeof *l->status_rc);
    for (int i = 0; i < l->nboxes; i++) {
        const struct store_mailbox *b = &l->boxes[i];
        l->status_rc[i] = -1;
        if ((b->attrs & (STORE_MB_NOSELECT | STORE_MB_NONEXISTENT)) || !matches_any(l, b->name))
            continue;
        const char *err;
        l->status_rc[i] =
            store_mailbox_status_full(j->data_dir, j->account, b->name, &l->status[i], &err);
    }
}

static int appendf(struct buf *b, int *first, const char *attr)
{
    int rc = buf_appendf(b, "%s%s", *first ? "" : " ", attr);
    *first = 0;
    return rc;
}

/* The attributes of box I for this command. */
static int write_attrs(const struct list_ctx *l, const struct store_mailbox *b, struct buf *out)
{
    int first = 1, rc = buf_append(out, "(", 1);
    if (b->attrs & STORE_MB_NONEXISTENT)
        rc |= appendf(out, &first, "\\NonExistent");
    if (b->attrs & STORE_MB_NOSELECT)
        rc |= appendf(out, &first, "\\Noselect");
    if (!(b->attrs & STORE_MB_NONEXISTENT))
        rc |= appendf(out, &first,
                      (b->attrs & STORE_MB_HASCHILDREN) ? "\\HasChildren" : "\\HasNoChildren");
    if ((b->attrs & STORE_MB_SUBSCRIBED) &&
        ((l->ret & RET_SUBSCRIBED) || (l->sel & SEL_SUBSCRIBED)))
        rc |= appendf(out, &first, "\\Subscribed");
    if (b->special_use[0] && (!l->extended || (l->ret & RET_SPECIAL_USE) ||
                              (l->sel & SEL_SPECIAL_USE)))
        rc |= appendf(out, &first, b->special_use);
    rc |= buf_append(out, ")", 1);
    return rc;
}

static void write_box(struct imap_session *s, const struct list_ctx *l, int i)
{
    const struct store_mailbox *b = &l->boxes[i];
    struct buf out;
    buf_init(&out, 8192);
    int rc = buf_appendf(&out, "* %s ", l->lsub ? "LSUB" : "LIST");
    if (l->lsub) {
        /* LSUB shows \Noselect for a subscribed parent that is not one */
        rc |= buf_append(&out, (b->attrs & STORE_MB_NONEXISTENT) ? "(\\Noselect)" : "()",
                         (b->attrs & STORE_MB_NONEXISTENT) ? 11 : 2);
    } else {
        rc |= write_attrs(l, b, &out);
    }
    rc |= buf_append(&out, " \"/\" ", 5);
    rc |= imap_mailbox_quote(s, b->name, &out);
    rc |= buf_append(&out, "\r\n", 2);
    if (rc == 0)
        imap_write(s, out.data, out.len);
    buf_deinit(&out);
    if ((l->ret & RET_STATUS) && l->status_rc && l->status_rc[i] == 0)
        imap_status_write(s, b->name, l->status_items, &l->status[i]);
}

static void list_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct list_ctx *l = j->ctx;
    if (j->result != 0) {
        log_error("imap", "event=list-failed session=%s error=\"%s\"", s->id,
                  j->error ? j->error : "store");
        imap_no(s, "[SERVERBUG] Cannot list mailboxes");
        return;
    }
    for (int i = 0; i < l->nboxes; i++) {
        const struct store_mailbox *b = &l->boxes[i];
        int subscribed = (b->attrs & STORE_MB_SUBSCRIBED) != 0;
        if ((l->lsub || (l->sel & SEL_SUBSCRIBED)) && !subscribed)
            continue;
        if (!l->lsub && !(l->sel & SEL_SUBSCRIBED) && (b->attrs & STORE_MB_NONEXISTENT))
            continue;
        if ((l->sel & SEL_SPECIAL_USE) && !b->special_use[0])
            continue;
        if (!matches_any(l, b->name))
            continue;
        write_box(s, l, i);
    }
    imap_ok(s, "%s completed", l->lsub ? "LSUB" : "LIST");
}

static int parse_selection(const struct imap_arg *a, struct list_ctx *l)
{
    for (int i = 0; i < a->nlist; i++) {
        const struct imap_arg *o = &a->list[i];
        if (imap_arg_is(o, "SUBSCRIBED"))
            l->sel |= SEL_SUBSCRIBED;
        else if (imap_arg_is(o, "SPECIAL-USE"))
            l->sel |= SEL_SPECIAL_USE;
        else if (imap_arg_is(o, "RECURSIVEMATCH"))
            l->sel |= SEL_RECURSIVE;
        else if (!imap_arg_is(o, "REMOTE"))
            return -1;
    }
    if ((l->sel & SEL_RECURSIVE) && !(l->sel & SEL_SUBSCRIBED))
        return -1; /* RFC 5258 3.1: RECURSIVEMATCH alone is an error */
    return 0;
}

static int parse_return(const struct imap_arg *a, struct list_ctx *l)
{
    if (a->type != IMAP_ARG_LIST)
        return -1;
    for (int i = 0; i < a->nlist; i++) {
        const struct imap_arg *o = &a->list[i];
        if (imap_arg_is(o, "SUBSCRIBED")) {
            l->ret |= RET_SUBSCRIBED;
        } else if (imap_arg_is(o, "CHILDREN")) {
            l->ret |= RET_CHILDREN;
        } else if (imap_arg_is(o, "SPECIAL-USE")) {
            l->ret |= RET_SPECIAL_USE;
        } else if (imap_arg_is(o, "STATUS") && i + 1 < a->nlist) {
            if (imap_status_items(&a->list[++i], &l->status_items) < 0)
                return -1;
            l->ret |= RET_STATUS;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reference + pattern in UTF-8 (patterns are mailbox names with
 * wildcards: modified UTF-7 unless UTF8=ACCEPT). */
static int add_pattern(struct imap_session *s, struct list_ctx *l, const char *ref,
                       const struct imap_arg *a)
{
    const char *p;
    if (a->type == IMAP_ARG_LIST || !imap_arg_astring(a, &p, NULL) || l->npatterns >= MAX_PATTERNS)
        return -1;
    char *joined = xasprintf("%s%s", ref, p);
    char *utf8 = (s->enabled & IMAP_EN_UTF8) ? NULL : imap_mutf7_to_utf8(joined);
    l->patterns[l->npatterns++] = utf8 ? utf8 : xstrdup(joined);
    free(joined);
    return 0;
}

void imap_cmd_list(struct imap_session *s, struct imap_command *c)
{
    struct list_ctx *l = xcalloc(1, sizeof *l);
    l->lsub = strcmp(c->name, "LSUB") == 0;
    int i = 0;
    const char *ref;
    if (!l->lsub && i < c->nargs && c->args[i].type == IMAP_ARG_LIST) {
        l->extended = 1;
        if (parse_selection(&c->args[i], l) < 0)
            goto bad;
        i++;
    }
    if (i + 2 > c->nargs || c->args[i].type == IMAP_ARG_LIST ||
        !imap_arg_astring(&c->args[i], &ref, NULL))
        goto bad;
    i++;
    const struct imap_arg *pat = &c->args[i++];
    if (pat->type == IMAP_ARG_LIST && !l->lsub) {
        l->extended = 1;
        for (int k = 0; k < pat->nlist; k++)
            if (add_pattern(s, l, ref, &pat->list[k]) < 0)
                goto bad;
    } else if (add_pattern(s, l, ref, pat) < 0) {
        goto bad;
    }
    if (i < c->nargs) {
        if (l->lsub || !imap_arg_is(&c->args[i], "RETURN") || i + 2 != c->nargs ||
            parse_return(&c->args[i + 1], l) < 0)
            goto bad;
        l->extended = 1;
    }
    /* LIST "" "": the hierarchy delimiter (RFC 9051 6.3.9) */
    if (!l->lsub && l->npatterns == 1 && l->patterns[0][0] == '\0') {
        imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
        list_ctx_free(l);
        imap_ok(s, "LIST completed");
        return;
    }
    struct imap_job *j = imap_job_new(s);
    j->ctx = l;
    j->ctx_free = list_ctx_free;
    imap_job_run(j, list_work, list_done);
    return;
bad:
    list_ctx_free(l);
    imap_bad(s, "Invalid %s arguments", c->name);
}
