/* imap_parse_fetch: FETCH data items (RFC 9051 6.4.5, RFC 3501 6.4.5),
 * body sections and partials, BINARY (RFC 3516) and the CHANGEDSINCE /
 * VANISHED modifiers (RFC 7162 3.1.4, 3.2.6). */
#include "imap/imap_parse.h"
#include "imap/imap_parse_int.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SECTIONS 256

static const struct {
    const char *name;
    unsigned items;
} simple_items[] = {
    {"UID", IMAP_FI_UID},
    {"FLAGS", IMAP_FI_FLAGS},
    {"INTERNALDATE", IMAP_FI_INTERNALDATE},
    {"RFC822.SIZE", IMAP_FI_RFC822_SIZE},
    {"ENVELOPE", IMAP_FI_ENVELOPE},
    {"BODY", IMAP_FI_BODY},
    {"BODYSTRUCTURE", IMAP_FI_BODYSTRUCTURE},
    {"RFC822", IMAP_FI_RFC822},
    {"RFC822.HEADER", IMAP_FI_RFC822_HEADER},
    {"RFC822.TEXT", IMAP_FI_RFC822_TEXT},
    {"MODSEQ", IMAP_FI_MODSEQ},
    {"ALL", IMAP_FI_FLAGS | IMAP_FI_INTERNALDATE | IMAP_FI_RFC822_SIZE | IMAP_FI_ENVELOPE},
    {"FAST", IMAP_FI_FLAGS | IMAP_FI_INTERNALDATE | IMAP_FI_RFC822_SIZE},
    {"FULL", IMAP_FI_FLAGS | IMAP_FI_INTERNALDATE | IMAP_FI_RFC822_SIZE | IMAP_FI_ENVELOPE |
                 IMAP_FI_BODY},
};

static void section_free(struct imap_section *s)
{
    for (int i = 0; i < s->nfields; i++)
        free(s->fields[i]);
    free(s->fields);
    free(s->spec);
    memset(s, 0, sizeof *s);
}

void imap_fetch_spec_free(struct imap_fetch_spec *spec)
{
    for (int i = 0; i < spec->nsections; i++)
        section_free(&spec->sections[i]);
    free(spec->sections);
    memset(spec, 0, sizeof *spec);
}

/* "(A B C)" after HEADER.FIELDS: header names, upper-cased. */
static int parse_fields(const char *p, const char *end, struct imap_section *sec)
{
    while (p < end && *p == ' ')
        p++;
    if (p >= end || *p != '(' || end[-1] != ')')
        return -1;
    p++;
    end--;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *start = p;
        while (p < end && *p != ' ')
            p++;
        if (p == start)
            break;
        for (const char *q = start; q < p; q++)
            if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == ':' ||
                *q == '"')
                return -1;
        if (sec->nfields >= 1000)
            return -1;
        sec->fields = xrealloc(sec->fields, xmul((size_t)sec->nfields + 1, sizeof *sec->fields));
        char *f = xstrndup(start, (size_t)(p - start));
        for (char *q = f; *q; q++)
            *q = (char)toupper((unsigned char)*q);
        sec->fields[sec->nfields++] = f;
    }
    return sec->nfields > 0 ? 0 : -1;
}

/* The text between '[' and ']'. */
static int parse_section_text(const char *p, const char *end, struct imap_section *sec)
{
    /* section-part: nz-number *("." nz-number) */
    while (p < end && isdigit((unsigned char)*p)) {
        const char *start = p;
        while (p < end && isdigit((unsigned char)*p))
            p++;
        uint64_t v;
        if (*start == '0' || imap_parse_number(start, (size_t)(p - start), UINT32_MAX, &v) < 0)
            return -1;
        if (sec->nparts >= IMAP_MAX_PART_DEPTH)
            return -1;
        sec->part[sec->nparts++] = (uint32_t)v;
        if (p < end && *p == '.')
            p++;
        else
            break;
    }
    if (p == end) {
        if (sec->nparts > 0 && p[-1] == '.')
            return -1;
        sec->kind = IMAP_SEC_ALL;
        return 0;
    }
    if (sec->binary || sec->binary_size)
        return -1; /* section-binary is parts only */
    size_t len = (size_t)(end - p);
    if (len == 6 && strncasecmp(p, "HEADER", 6) == 0) {
        sec->kind = IMAP_SEC_HEADER;
        return 0;
    }
    if (len == 4 && strncasecmp(p, "TEXT", 4) == 0) {
        sec->kind = IMAP_SEC_TEXT;
        return 0;
    }
    if (len == 4 && strncasecmp(p, "MIME", 4) == 0) {
        if (sec->nparts == 0)
            return -1;
        sec->kind = IMAP_SEC_MIME;
        return 0;
    }
    if (len > 17 && strncasecmp(p, "HEADER.FIELDS.NOT", 17) == 0) {
        sec->kind = IMAP_SEC_HEADER_FIELDS_NOT;
        return parse_fields(p + 17, end, sec);
    }
    if (len > 13 && strncasecmp(p, "HEADER.FIELDS", 13) == 0) {
        sec->kind = IMAP_SEC_HEADER_FIELDS;
        return parse_fields(p + 13, end, sec);
    }
    return -1;
}

/* "<offset.count>" */
static int parse_partial(const char *p, const char *end, struct imap_section *sec)
{
    if (end - p < 5 || *p != '<' || end[-1] != '>')
        return -1;
    const char *dot = memchr(p, '.', (size_t)(end - p));
    if (!dot)
        return -1;
    uint64_t off, cnt;
    if (imap_parse_number(p + 1, (size_t)(dot - p - 1), UINT32_MAX, &off) < 0 ||
        imap_parse_number(dot + 1, (size_t)(end - dot - 2), UINT32_MAX, &cnt) < 0 || cnt == 0)
        return -1;
    sec->partial = 1;
    sec->offset = (uint32_t)off;
    sec->count = (uint32_t)cnt;
    return 0;
}

/* BODY[...]<..>, BODY.PEEK[...], BINARY[.PEEK][...], BINARY.SIZE[...]. 1
 * when S is a section item (parsed into SEC), 0 when it is not one, -1 bad. */
static int parse_section_item(const char *s, struct imap_section *sec)
{
    static const struct {
        const char *prefix;
        int peek, binary, binary_size;
    } kinds[] = {
        {"BODY[", 0, 0, 0},        {"BODY.PEEK[", 1, 0, 0},   {"BINARY[", 0, 1, 0},
        {"BINARY.PEEK[", 1, 1, 0}, {"BINARY.SIZE[", 1, 0, 1},
    };
    const char *open = strchr(s, '[');
    if (!open)
        return 0;
    size_t plen = (size_t)(open - s) + 1;
    int k = -1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strlen(kinds[i].prefix) == plen && strncasecmp(s, kinds[i].prefix, plen) == 0)
            k = (int)i;
    if (k < 0)
        return -1;
    memset(sec, 0, sizeof *sec);
    sec->peek = kinds[k].peek;
    sec->binary = kinds[k].binary;
    sec->binary_size = kinds[k].binary_size;
    const char *close = strchr(open, ']');
    if (!close)
        return -1;
    if (parse_section_text(open + 1, close, sec) < 0)
        goto bad;
    sec->spec = xstrndup(open + 1, (size_t)(close - open - 1));
    const char *rest = close + 1;
    if (*rest) {
        if (sec->binary_size || parse_partial(rest, rest + strlen(rest), sec) < 0)
            goto bad;
    }
    return 1;
bad:
    section_free(sec);
    return -1;
}

static int parse_item(const struct imap_arg *a, struct imap_fetch_spec *spec, int allow_macro)
{
    if (a->type != IMAP_ARG_ATOM)
        return -1;
    for (size_t i = 0; i < sizeof simple_items / sizeof simple_items[0]; i++) {
        if (strcasecmp(a->str, simple_items[i].name) == 0) {
            int macro = i >= 11;
            if (macro && !allow_macro)
                return -1;
            spec->items |= simple_items[i].items;
            return 0;
        }
    }
    struct imap_section sec;
    int r = parse_section_item(a->str, &sec);
    if (r <= 0)
        return -1;
    if (spec->nsections >= MAX_SECTIONS) {
        section_free(&sec);
        return -1;
    }
    spec->sections =
        xrealloc(spec->sections, xmul((size_t)spec->nsections + 1, sizeof *spec->sections));
    spec->sections[spec->nsections++] = sec;
    return 0;
}

/* "(CHANGEDSINCE n [VANISHED])" in any order. */
static int parse_modifiers(const struct imap_arg *a, struct imap_fetch_spec *spec)
{
    if (a->type != IMAP_ARG_LIST || a->nlist == 0)
        return -1;
    for (int i = 0; i < a->nlist; i++) {
        const struct imap_arg *m = &a->list[i];
        if (m->type != IMAP_ARG_ATOM)
            return -1;
        if (strcasecmp(m->str, "CHANGEDSINCE") == 0 && i + 1 < a->nlist &&
            a->list[i + 1].type == IMAP_ARG_ATOM) {
            uint64_t v;
            if (imap_parse_number(a->list[i + 1].str, a->list[i + 1].len, INT64_MAX, &v) < 0 ||
                v == 0)
                return -1;
            spec->changedsince = v;
            i++;
        } else if (strcasecmp(m->str, "VANISHED") == 0) {
            spec->vanished = 1;
        } else {
            return -1;
        }
    }
    return 0;
}

int imap_fetch_parse(const struct imap_arg *args, int nargs, struct imap_fetch_spec *spec,
                     const char **error_r)
{
    memset(spec, 0, sizeof *spec);
    *error_r = "Invalid FETCH items";
    if (nargs < 1 || nargs > 2)
        return -1;
    int rc = 0;
    if (args[0].type == IMAP_ARG_LIST) {
        if (args[0].nlist == 0)
            rc = -1;
        for (int i = 0; rc == 0 && i < args[0].nlist; i++)
            rc = parse_item(&args[0].list[i], spec, 0);
    } else {
        rc = parse_item(&args[0], spec, 1);
    }
    if (rc == 0 && nargs == 2 && parse_modifiers(&args[1], spec) < 0) {
        *error_r = "Invalid FETCH modifiers";
        rc = -1;
    }
    if (rc == 0 && spec->vanished && !spec->changedsince) {
        *error_r = "VANISHED needs CHANGEDSINCE";
        rc = -1;
    }
    if (rc < 0) {
        imap_fetch_spec_free(spec);
        return -1;
    }
    if (spec->changedsince)
        spec->items |= IMAP_FI_MODSEQ;
    *error_r = NULL;
    return 0;
}
