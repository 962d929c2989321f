/* imap_parse_flags: flag lists (RFC 9051 9 flag-list) and STORE arguments
 * (RFC 9051 6.4.6, RFC 7162 3.1.3 UNCHANGEDSINCE). System flags are
 * normalised to their canonical case; \Recent and unknown \-flags are
 * refused; keywords are atoms of at most IMAP_MAX_FLAG_LEN octets. */
#include "imap/imap_parse.h"
#include "imap/imap_parse_int.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const system_flags[] = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen",
                                           "\\Draft"};

void imap_flags_free(struct imap_flag_list *fl)
{
    for (int i = 0; i < fl->n; i++)
        free(fl->flag[i]);
    memset(fl, 0, sizeof *fl);
}

static int keyword_ok(const char *s, size_t len)
{
    if (len == 0 || len > IMAP_MAX_FLAG_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
            return 0;
    }
    return 1;
}

static int add_flag(const struct imap_arg *a, struct imap_flag_list *fl, const char **error_r)
{
    if (a->type != IMAP_ARG_ATOM) {
        *error_r = "Invalid flag";
        return -1;
    }
    const char *canon = NULL;
    if (a->str[0] == '\\') {
        for (size_t i = 0; i < sizeof system_flags / sizeof system_flags[0]; i++)
            if (strcasecmp(a->str, system_flags[i]) == 0)
                canon = system_flags[i];
        if (!canon) {
            *error_r = strcasecmp(a->str, "\\Recent") == 0 ? "\\Recent cannot be set"
                                                            : "Unknown system flag";
            return -1;
        }
    } else if (!keyword_ok(a->str, a->len)) {
        *error_r = "Invalid keyword";
        return -1;
    }
    const char *name = canon ? canon : a->str;
    for (int i = 0; i < fl->n; i++)
        if (strcasecmp(fl->flag[i], name) == 0)
            return 0; /* given twice */
    if (fl->n >= IMAP_MAX_FLAGS) {
        *error_r = "Too many flags";
        return -1;
    }
    fl->flag[fl->n++] = xstrdup(name);
    return 0;
}

int imap_flags_parse(const struct imap_arg *args, int nargs, struct imap_flag_list *fl,
                     const char **error_r)
{
    memset(fl, 0, sizeof *fl);
    const struct imap_arg *list = args;
    int n = nargs;
    if (nargs == 1 && args[0].type == IMAP_ARG_LIST) {
        list = args[0].list;
        n = args[0].nlist;
    }
    for (int i = 0; i < n; i++) {
        if (add_flag(&list[i], fl, error_r) < 0) {
            imap_flags_free(fl);
            return -1;
        }
    }
    return 0;
}

void imap_store_spec_free(struct imap_store_spec *spec)
{
    imap_flags_free(&spec->flags);
    memset(spec, 0, sizeof *spec);
}

int imap_store_parse(const struct imap_arg *args, int nargs, struct imap_store_spec *spec,
                     const char **error_r)
{
    memset(spec, 0, sizeof *spec);
    *error_r = "Invalid STORE arguments";
    int i = 0;
    if (i < nargs && args[i].type == IMAP_ARG_LIST) {
        const struct imap_arg *m = &args[i];
        if (m->nlist != 2 || m->list[0].type != IMAP_ARG_ATOM ||
            strcasecmp(m->list[0].str, "UNCHANGEDSINCE") != 0 ||
            m->list[1].type != IMAP_ARG_ATOM ||
            imap_parse_number(m->list[1].str, m->list[1].len, INT64_MAX,
                              &spec->unchangedsince) < 0)
            return -1;
        spec->has_unchangedsince = 1;
        i++;
    }
    if (i >= nargs || args[i].type != IMAP_ARG_ATOM)
        return -1;
    const char *item = args[i].str;
    if (*item == '+') {
        spec->op = IMAP_STORE_ADD;
        item++;
    } else if (*item == '-') {
        spec->op = IMAP_STORE_REMOVE;
        item++;
    } else {
        spec->op = IMAP_STORE_REPLACE;
    }
    if (strcasecmp(item, "FLAGS.SILENT") == 0)
        spec->silent = 1;
    else if (strcasecmp(item, "FLAGS") != 0)
        return -1;
    i++;
    if (i >= nargs)
        return -1;
    if (imap_flags_parse(&args[i], nargs - i, &spec->flags, error_r) < 0)
        return -1;
    *error_r = NULL;
    return 0;
}
