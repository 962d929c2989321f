/* imap_search_format: the untagged reply of SEARCH / UID SEARCH:
 *   "* SEARCH 2 5 7 (MODSEQ 917)"          (RFC 3501 7.2.5, RFC 7162 3.1.5)
 *   "* ESEARCH (TAG "a1") UID MIN 2 MAX 7 COUNT 3 ALL 2,5:7 MODSEQ 917"
 *                                          (RFC 4731 3.1, RFC 7162 3.1.5)
 * MIN, MAX and ALL are left out when nothing matched (COUNT 0 stays); the
 * MODSEQ of a search with a MODSEQ key is given only when something
 * matched. RETURN (SAVE) alone produces no ESEARCH reply (RFC 5182 2.1). */
#include "imap/imap_fetch_int.h"
#include "imap/imap_search.h"
#include "core/buf.h"

#include <string.h>

/* Appends " <number>" for each match. */
static int format_list(const uint32_t *matches, uint32_t n, struct buf *out)
{
    for (uint32_t i = 0; i < n; i++)
        if (buf_append(out, " ", 1) < 0 || imap_out_u64(out, matches[i]) < 0)
            return -1;
    return 0;
}

int imap_out_set(struct buf *out, const uint32_t *v, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        uint32_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        if ((i > 0 && buf_append(out, ",", 1) < 0) || imap_out_u64(out, v[i]) < 0)
            return -1;
        if (j > i && (buf_append(out, ":", 1) < 0 || imap_out_u64(out, v[j]) < 0))
            return -1;
        i = j + 1;
    }
    return 0;
}

/* The tag as a quoted string (tags are atoms, but quote what must be). */
static int format_tag(const char *tag, struct buf *out)
{
    if (buf_append(out, " (TAG \"", 7) < 0)
        return -1;
    for (const char *p = tag; *p; p++) {
        if ((*p == '"' || *p == '\\') && buf_append(out, "\\", 1) < 0)
            return -1;
        if (buf_append(out, p, 1) < 0)
            return -1;
    }
    return buf_append(out, "\")", 2);
}

static int format_esearch(const struct imap_search_prog *p, const char *tag, int uid_command,
                          const uint32_t *matches, uint32_t n, uint64_t highest_modseq,
                          struct buf *out)
{
    unsigned ret = p->ret ? p->ret : IMAP_ESR_ALL;
    if (imap_out_str(out, "* ESEARCH") < 0)
        return -1;
    if (tag && *tag && format_tag(tag, out) < 0)
        return -1;
    if (uid_command && imap_out_str(out, " UID") < 0)
        return -1;
    if (n > 0 && (ret & IMAP_ESR_MIN) &&
        (imap_out_str(out, " MIN ") < 0 || imap_out_u64(out, matches[0]) < 0))
        return -1;
    if (n > 0 && (ret & IMAP_ESR_MAX) &&
        (imap_out_str(out, " MAX ") < 0 || imap_out_u64(out, matches[n - 1]) < 0))
        return -1;
    if ((ret & IMAP_ESR_COUNT) && (imap_out_str(out, " COUNT ") < 0 || imap_out_u64(out, n) < 0))
        return -1;
    if (n > 0 && (ret & IMAP_ESR_ALL) &&
        (imap_out_str(out, " ALL ") < 0 || imap_out_set(out, matches, n) < 0))
        return -1;
    if (n > 0 && p->uses_modseq &&
        (imap_out_str(out, " MODSEQ ") < 0 || imap_out_u64(out, highest_modseq) < 0))
        return -1;
    return buf_append(out, "\r\n", 2);
}

int imap_search_format(const struct imap_search_prog *p, const char *tag, int uid_command,
                       const uint32_t *matches, uint32_t n, uint64_t highest_modseq,
                       struct buf *out)
{
    size_t start = out->len;
    int rc;
    if (p->esearch) {
        if (p->ret == IMAP_ESR_SAVE)
            return 0;
        rc = format_esearch(p, tag, uid_command, matches, n, highest_modseq, out);
    } else {
        rc = imap_out_str(out, "* SEARCH");
        if (rc == 0)
            rc = format_list(matches, n, out);
        if (rc == 0 && n > 0 && p->uses_modseq)
            rc = (imap_out_str(out, " (MODSEQ ") < 0 || imap_out_u64(out, highest_modseq) < 0 ||
                  buf_append(out, ")", 1) < 0) ? -1 : 0;
        if (rc == 0)
            rc = buf_append(out, "\r\n", 2);
    }
    if (rc != 0)
        imap_out_truncate(out, start);
    return rc;
}
