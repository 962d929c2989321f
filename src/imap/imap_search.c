/* imap_search: evaluates a SEARCH program (RFC 3501 6.4.4, RFC 9051 6.4.4,
 * RFC 7162 MODSEQ, RFC 5032 OLDER/YOUNGER, RFC 5182 "$") against one
 * message.
 *
 * Every AND/OR level first evaluates the keys answered from the index row
 * (flags, sets, sizes, internal dates, MODSEQ) and only then the keys that
 * read the message (headers, body, sent dates), so a message the index
 * already rules out is never opened. There is no \Recent in Roost's store
 * (every session sees the same state): RECENT and NEW never match and OLD
 * always does.
 *
 * Dates: BEFORE/ON/SINCE compare the day of the internal date in UTC;
 * SENT* compare the day of the Date: header in its own zone (RFC 3501
 * 6.4.4), falling back to the internal date when there is no usable Date:
 * header (as SORT does, RFC 5256 2.2). */
#include "imap/imap_search.h"
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY 86400

/* What evaluating a key reads: the index row, the header, the whole message. */
enum key_source { SRC_INDEX = 1, SRC_HEADER = 2, SRC_MESSAGE = 4 };

static int key_compound(enum imap_skey key)
{
    return key == IMAP_SK_AND || key == IMAP_SK_OR || key == IMAP_SK_NOT;
}

static unsigned leaf_source(enum imap_skey key)
{
    switch (key) {
    case IMAP_SK_BCC: case IMAP_SK_CC: case IMAP_SK_FROM: case IMAP_SK_TO:
    case IMAP_SK_SUBJECT: case IMAP_SK_HEADER:
    case IMAP_SK_SENTBEFORE: case IMAP_SK_SENTON: case IMAP_SK_SENTSINCE:
        return SRC_HEADER;
    case IMAP_SK_BODY: case IMAP_SK_TEXT:
        return SRC_MESSAGE;
    default:
        return SRC_INDEX;
    }
}

/* The sources the keys of K's tree read (enum key_source bits). */
static unsigned key_sources(const struct imap_search_key *k)
{
    if (!key_compound(k->key))
        return leaf_source(k->key);
    unsigned src = 0;
    for (int i = 0; i < k->nchild; i++)
        src |= key_sources(&k->child[i]);
    return src;
}

static int key_index_only(const struct imap_search_key *k)
{
    return !(key_sources(k) & (SRC_HEADER | SRC_MESSAGE));
}

int imap_search_index_only(const struct imap_search_prog *p)
{
    return key_index_only(&p->root);
}

int imap_search_reads_header(const struct imap_search_prog *p)
{
    return (key_sources(&p->root) & SRC_HEADER) != 0;
}

static void key_prepare(struct imap_search_key *k, int depth)
{
    if (depth > IMAP_MAX_ARGS)
        return;
    for (int i = 0; i < k->nchild; i++)
        key_prepare(&k->child[i], depth + 1);
    if (!key_compound(k->key) && leaf_source(k->key) == SRC_HEADER && !k->folded)
        k->folded = mime_search_fold(k->str ? k->str : "", &k->folded_len);
}

void imap_search_prepare(struct imap_search_prog *p)
{
    key_prepare(&p->root, 0);
}

/* Header key K: FIELD contains K's string, from the cached header block
 * when the row has one and the message was not parsed anyway. */
static int header_contains(const struct imap_search_key *k, struct imap_msg_ctx *m,
                           const char *field)
{
    const struct store_fmsg *row = m->row;
    if (!m->mime && row->header && k->folded)
        return mime_hdrblock_contains(row->header, 0, row->header_len, field, k->folded,
                                      k->folded_len);
    const struct mime_msg *mm = imap_msg_header(m);
    if (!mm)
        return -1;
    return mime_header_contains(mm, field, k->str ? k->str : "");
}

static time_t day_of(time_t t)
{
    time_t r = t % DAY;
    return t - (r < 0 ? r + DAY : r);
}

static int uid_saved(const struct imap_search_env *env, uint32_t uid)
{
    const uint32_t *a = env->saved;
    uint32_t lo = 0, hi = env->nsaved;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] == uid)
            return 1;
        if (a[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* KEYWORD: the keyword (or a system flag spelled as one) is set. */
static int has_keyword(const struct store_fmsg *row, const char *kw)
{
    static const struct { const char *name; unsigned bit; } sys[] = {
        { "\\Seen", STORE_F_SEEN }, { "\\Answered", STORE_F_ANSWERED },
        { "\\Flagged", STORE_F_FLAGGED }, { "\\Deleted", STORE_F_DELETED },
        { "\\Draft", STORE_F_DRAFT },
    };
    if (!kw || !*kw)
        return 0;
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (strcasecmp(kw, sys[i].name) == 0)
            return (row->sysflags & sys[i].bit) != 0;
    size_t n = strlen(kw);
    for (const char *p = row->keywords ? row->keywords : ""; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && strncasecmp(p, kw, n) == 0)
            return 1;
        p += len;
        p += strspn(p, " ");
    }
    return 0;
}

static int match_index(const struct imap_search_key *k, const struct imap_search_env *env,
                       const struct imap_msg_ctx *m)
{
    const struct store_fmsg *row = m->row;
    unsigned f = row->sysflags;
    switch (k->key) {
    case IMAP_SK_ALL: return 1;
    case IMAP_SK_SEQSET:
        if (k->set.saved)
            return uid_saved(env, row->uid);
        return imap_seqset_contains(&k->set, m->seq, env->count);
    case IMAP_SK_UID:
        if (k->set.saved)
            return uid_saved(env, row->uid);
        return imap_seqset_contains(&k->set, row->uid, env->max_uid);
    case IMAP_SK_ANSWERED: return (f & STORE_F_ANSWERED) != 0;
    case IMAP_SK_DELETED: return (f & STORE_F_DELETED) != 0;
    case IMAP_SK_DRAFT: return (f & STORE_F_DRAFT) != 0;
    case IMAP_SK_FLAGGED: return (f & STORE_F_FLAGGED) != 0;
    case IMAP_SK_SEEN: return (f & STORE_F_SEEN) != 0;
    case IMAP_SK_UNANSWERED: return !(f & STORE_F_ANSWERED);
    case IMAP_SK_UNDELETED: return !(f & STORE_F_DELETED);
    case IMAP_SK_UNDRAFT: return !(f & STORE_F_DRAFT);
    case IMAP_SK_UNFLAGGED: return !(f & STORE_F_FLAGGED);
    case IMAP_SK_UNSEEN: return !(f & STORE_F_SEEN);
    case IMAP_SK_RECENT: case IMAP_SK_NEW: return 0;
    case IMAP_SK_OLD: return 1;
    case IMAP_SK_KEYWORD: return has_keyword(row, k->str);
    case IMAP_SK_UNKEYWORD: return !has_keyword(row, k->str);
    case IMAP_SK_BEFORE: return day_of(row->internaldate) < k->date;
    case IMAP_SK_ON: return day_of(row->internaldate) == k->date;
    case IMAP_SK_SINCE: return day_of(row->internaldate) >= k->date;
    case IMAP_SK_LARGER: return (uint64_t)row->size > k->num;
    case IMAP_SK_SMALLER: return (uint64_t)row->size < k->num;
    case IMAP_SK_MODSEQ: return row->modseq >= k->num;
    case IMAP_SK_OLDER:
        /* RFC 5032: older than the interval / within it */
        return (int64_t)env->now - (int64_t)row->internaldate >= (int64_t)k->num;
    case IMAP_SK_YOUNGER:
        return (int64_t)env->now - (int64_t)row->internaldate < (int64_t)k->num;
    default:
        return 0;
    }
}

/* The day of the Date: header in its own zone, or of the internal date. */
static time_t sent_day(const struct mime_msg *mm, const struct store_fmsg *row)
{
    time_t t;
    int tz = 0;
    if (mime_sent_date(mm, &t, &tz) == 0)
        return day_of(t + (time_t)tz * 60);
    return day_of(row->internaldate);
}

static int match_file(const struct imap_search_key *k, struct imap_msg_ctx *m)
{
    switch (k->key) {
    case IMAP_SK_BCC: return header_contains(k, m, "Bcc");
    case IMAP_SK_CC: return header_contains(k, m, "Cc");
    case IMAP_SK_FROM: return header_contains(k, m, "From");
    case IMAP_SK_TO: return header_contains(k, m, "To");
    case IMAP_SK_SUBJECT: return header_contains(k, m, "Subject");
    case IMAP_SK_HEADER: return header_contains(k, m, k->field ? k->field : "");
    default: break;
    }
    int body = k->key == IMAP_SK_BODY || k->key == IMAP_SK_TEXT;
    const struct mime_msg *mm = body ? imap_msg_mime(m) : imap_msg_header(m);
    if (!mm)
        return -1;
    const char *s = k->str ? k->str : "";
    switch (k->key) {
    case IMAP_SK_BODY: return mime_text_contains(mm, s, 0);
    case IMAP_SK_TEXT: return mime_text_contains(mm, s, 1);
    case IMAP_SK_SENTBEFORE: return sent_day(mm, m->row) < k->date;
    case IMAP_SK_SENTON: return sent_day(mm, m->row) == k->date;
    case IMAP_SK_SENTSINCE: return sent_day(mm, m->row) >= k->date;
    default: return 0;
    }
}

static int match_key(const struct imap_search_key *k, const struct imap_search_env *env,
                     struct imap_msg_ctx *m, int depth);

/* AND (ALL_OF 1) or OR (0) of the children: index-only children first. */
static int match_children(const struct imap_search_key *k, const struct imap_search_env *env,
                          struct imap_msg_ctx *m, int all_of, int depth)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < k->nchild; i++) {
            const struct imap_search_key *c = &k->child[i];
            if (key_index_only(c) != (pass == 0))
                continue;
            int r = match_key(c, env, m, depth + 1);
            if (r < 0)
                return -1;
            if (all_of && !r)
                return 0;
            if (!all_of && r)
                return 1;
        }
    }
    return all_of;
}

static int match_key(const struct imap_search_key *k, const struct imap_search_env *env,
                     struct imap_msg_ctx *m, int depth)
{
    if (depth > IMAP_MAX_ARGS)   /* the parser bounds the keys; belt and braces */
        return 0;
    switch (k->key) {
    case IMAP_SK_AND:
        return match_children(k, env, m, 1, depth);
    case IMAP_SK_OR:
        return match_children(k, env, m, 0, depth);
    case IMAP_SK_NOT: {
        if (k->nchild < 1)
            return 0;
        int r = match_key(&k->child[0], env, m, depth + 1);
        return r < 0 ? -1 : !r;
    }
    default:
        return key_index_only(k) ? match_index(k, env, m) : match_file(k, m);
    }
}

int imap_search_match(const struct imap_search_prog *p, const struct imap_search_env *env,
                      struct imap_msg_ctx *m)
{
    return match_key(&p->root, env, m, 0);
}
