/* imap_store_cmd: STORE and UID STORE (RFC 3501 6.4.6, RFC 9051 6.4.6,
 * RFC 7162 3.1.3 UNCHANGEDSINCE).
 *
 * One job applies the change in one store transaction (store_set_flags)
 * and formats the untagged responses: "* n FETCH (FLAGS (...))" for every
 * message of the set, with UID for UID STORE and MODSEQ under CONDSTORE;
 * with .SILENT nothing, except that under CONDSTORE the messages whose
 * flags changed still get "* n FETCH (MODSEQ (m))" (RFC 7162 3.1.3).
 * Messages that fail UNCHANGEDSINCE are left alone and listed in the tagged
 * "OK [MODIFIED set]" (sequence numbers, or UIDs for UID STORE). The
 * session's view learns the new flags (imap_view_set_flags), so the sync
 * step does not announce them a second time. A read-only (EXAMINEd)
 * mailbox refuses STORE. */
#include "imap/imap_fetch_int.h"
#include "imap/imap_msgcmd.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct store_ctx {
    uint32_t *uid, *seq;
    uint32_t n;
    enum store_flag_op op;
    unsigned sysflags;
    char *keywords;                 /* space-separated, NULL when none */
    int silent;
    int has_ucs;
    uint64_t ucs;
    int uid_command, condstore;
    struct store_flag_result *res;
    uint32_t nres;
    uint32_t *modified;             /* UIDs or seqs for [MODIFIED] */
    uint32_t nmodified;
    int rc;
    const char *error;
};

static void store_ctx_free(void *p)
{
    struct store_ctx *ctx = p;
    if (!ctx)
        return;
    free(ctx->uid);
    free(ctx->seq);
    free(ctx->keywords);
    store_flag_results_free(ctx->res, ctx->nres);
    free(ctx->modified);
    free(ctx);
}

/* The sequence number of UID in the command's set (0 if not there). */
static uint32_t seq_of(const struct store_ctx *ctx, uint32_t uid)
{
    uint32_t lo = 0, hi = ctx->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ctx->uid[mid] == uid)
            return ctx->seq[mid];
        if (ctx->uid[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int write_fetch(struct buf *out, const struct store_ctx *ctx,
                       const struct store_flag_result *r, uint32_t seq)
{
    size_t start = out->len;
    int rc = buf_appendf(out, "* %u FETCH (", seq);
    int first = 1;
    if (rc == 0 && !ctx->silent) {
        rc = imap_out_str(out, "FLAGS ");
        if (rc == 0)
            rc = imap_flags_format(r->sysflags, r->keywords, out);
        first = 0;
    }
    if (rc == 0 && ctx->uid_command) {
        rc = imap_out_str(out, first ? "UID " : " UID ");
        if (rc == 0)
            rc = imap_out_u64(out, r->uid);
        first = 0;
    }
    if (rc == 0 && ctx->condstore) {
        rc = imap_out_str(out, first ? "MODSEQ (" : " MODSEQ (");
        if (rc == 0)
            rc = imap_out_u64(out, r->modseq);
        if (rc == 0)
            rc = buf_append(out, ")", 1);
    }
    if (rc == 0)
        rc = buf_append(out, ")\r\n", 3);
    if (rc != 0)
        imap_out_truncate(out, start);
    return rc;
}

static void store_work(struct imap_job *j)
{
    struct store_ctx *ctx = j->ctx;
    ctx->rc = store_set_flags(j->data_dir, j->account, j->mailbox, ctx->uid, ctx->n, ctx->op,
                              ctx->sysflags, ctx->keywords, ctx->has_ucs, ctx->ucs, &ctx->res,
                              &ctx->nres, &ctx->error);
    if (ctx->rc != 0) {
        ctx->res = NULL;
        ctx->nres = 0;
        return;
    }
    ctx->modified = xcalloc(ctx->nres ? ctx->nres : 1, sizeof *ctx->modified);
    for (uint32_t i = 0; i < ctx->nres; i++) {
        const struct store_flag_result *r = &ctx->res[i];
        uint32_t seq = seq_of(ctx, r->uid);
        if (seq == 0)
            continue;
        if (r->modified) {
            ctx->modified[ctx->nmodified++] = ctx->uid_command ? r->uid : seq;
            continue;
        }
        if (ctx->silent && !(ctx->condstore && r->changed))
            continue;
        if (write_fetch(&j->out, ctx, r, seq) < 0)
            break;   /* bounded by IMAP_JOB_OUTPUT_MAX; the view still learns */
    }
}

static void store_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct store_ctx *ctx = j->ctx;
    if (ctx->rc == 1) {
        imap_no(s, "[NONEXISTENT] The mailbox no longer exists");
        return;
    }
    if (ctx->rc != 0) {
        imap_no(s, "[SERVERBUG] %s", ctx->error ? ctx->error : "Cannot change the flags");
        return;
    }
    int changed = 0;
    for (uint32_t i = 0; i < ctx->nres; i++) {
        const struct store_flag_result *r = &ctx->res[i];
        if (r->modified)
            continue;
        imap_view_set_flags(s, r->uid, r->sysflags, r->keywords, r->modseq);
        changed |= r->changed;
    }
    if (changed)
        s->dirty = 1;
    const char *name = ctx->uid_command ? "UID STORE" : "STORE";
    if (ctx->nmodified > 0) {
        struct buf set;
        buf_init(&set, 900);
        if (imap_out_set(&set, ctx->modified, ctx->nmodified) == 0) {
            imap_ok(s, "[MODIFIED %s] Conditional %s failed", set.data, name);
        } else {
            /* too long for one reply line: RFC 7162 allows failing them all */
            imap_no(s, "Conditional %s failed for too many messages", name);
        }
        buf_deinit(&set);
        return;
    }
    imap_ok(s, "%s completed", name);
}

/* System flags as bits, keywords joined with spaces. */
void imap_flags_split(const struct imap_flag_list *fl, unsigned *sys, char **kw)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        { "\\Seen", STORE_F_SEEN }, { "\\Answered", STORE_F_ANSWERED },
        { "\\Flagged", STORE_F_FLAGGED }, { "\\Deleted", STORE_F_DELETED },
        { "\\Draft", STORE_F_DRAFT },
    };
    struct buf b;
    buf_init(&b, (size_t)IMAP_MAX_FLAGS * (IMAP_MAX_FLAG_LEN + 1) + 1);
    *sys = 0;
    for (int i = 0; i < fl->n; i++) {
        const char *f = fl->flag[i];
        int is_sys = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (strcasecmp(f, names[k].name) == 0) {
                *sys |= names[k].bit;
                is_sys = 1;
            }
        if (is_sys || f[0] == '\\')
            continue;
        if ((b.len && buf_append(&b, " ", 1) < 0) || imap_out_str(&b, f) < 0)
            break;   /* cannot happen: sized for IMAP_MAX_FLAGS flags */
    }
    *kw = b.len ? buf_steal(&b, NULL) : NULL;
    buf_deinit(&b);
}

void imap_cmd_store(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs < 3) {
        imap_bad(s, "STORE needs a sequence set, an item and flags");
        return;
    }
    struct imap_store_spec spec;
    memset(&spec, 0, sizeof spec);
    const char *err = NULL;
    if (imap_store_parse(&c->args[1], c->nargs - 1, &spec, &err) != 0) {
        imap_store_spec_free(&spec);
        imap_bad(s, "%s", err ? err : "Invalid STORE arguments");
        return;
    }
    struct imap_seqset set;
    struct imap_msgset ms;
    if (imap_msgcmd_set(s, &c->args[0], c->uid, &set, &ms) != 0) {
        imap_store_spec_free(&spec);
        return;
    }
    imap_seqset_free(&set);
    if (s->sel->readonly) {
        imap_store_spec_free(&spec);
        imap_msgset_free(&ms);
        imap_no(s, "[READ-ONLY] The mailbox is read-only");
        return;
    }
    if (spec.has_unchangedsince)
        imap_enable_condstore(s);   /* RFC 7162 3.1 */
    struct store_ctx *ctx = xcalloc(1, sizeof *ctx);
    ctx->op = spec.op == IMAP_STORE_ADD ? STORE_FLAGS_ADD
            : spec.op == IMAP_STORE_REMOVE ? STORE_FLAGS_REMOVE : STORE_FLAGS_REPLACE;
    imap_flags_split(&spec.flags, &ctx->sysflags, &ctx->keywords);
    ctx->silent = spec.silent;
    ctx->has_ucs = spec.has_unchangedsince;
    ctx->ucs = spec.unchangedsince;
    ctx->uid_command = c->uid;
    ctx->condstore = (s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC)) != 0;
    imap_store_spec_free(&spec);
    ctx->uid = ms.uid;
    ctx->seq = ms.seq;
    ctx->n = ms.n;
    ms.uid = ms.seq = NULL;
    imap_msgset_free(&ms);
    if (ctx->n == 0) {
        store_ctx_free(ctx);
        imap_ok(s, "%s completed", c->uid ? "UID STORE" : "STORE");
        return;
    }
    struct imap_job *j = imap_job_new(s);
    j->ctx = ctx;
    j->ctx_free = store_ctx_free;
    imap_job_run(j, store_work, store_done);
}
