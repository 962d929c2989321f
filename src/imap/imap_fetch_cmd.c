/* imap_fetch_cmd: FETCH and UID FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5,
 * RFC 7162 3.1.4 CHANGEDSINCE and 3.2.6 VANISHED, RFC 3516 BINARY).
 *
 * The set is resolved against the view on the loop; then jobs on the
 * worker pool build the untagged responses in batches: each job reads rows
 * IMAP_ROWS_PER_QUERY at a time (one store query per chunk), formats
 * messages until j->out holds IMAP_OUTPUT_BATCH bytes, and stops; the
 * session calls fetch_more once the client has read most of it, so a
 * FETCH 1:* BODY[] of a big mailbox never holds more than about one batch
 * (or one message) in memory. Index items come from the rows alone (the
 * cached ENVELOPE/BODYSTRUCTURE included); files are opened only for body
 * items.
 *
 * Implicit \Seen (RFC 3501 6.4.5): a non-PEEK body item on a read-write
 * mailbox sets \Seen on the messages that lack it, in the first job, before
 * their rows are read; those messages' responses then include FLAGS, and
 * the view is told (imap_view_set_flags) so that the sync step does not
 * announce the change again.
 *
 * Messages in the view that the store no longer has (expunged by another
 * session, EXPUNGE held back) get no response; a FETCH by sequence number
 * then ends "NO [EXPUNGEISSUED]" (RFC 5530). */
#include "imap/imap_fetch_int.h"
#include "imap/imap_msgcmd.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>

/* Computed ENVELOPE/BODYSTRUCTURE written back to the cache per job (each
 * is one index write; the rest waits for a later FETCH). */
#define FETCH_CACHE_WRITES_PER_JOB 16

struct fetch_ctx {
    struct imap_fetch_spec spec;
    struct imap_fetch_opts opts;
    int uid_command;
    uint32_t *uid, *seq;
    uint32_t n;
    struct imap_rowwalk walk;
    int started;                     /* the first job ran (\Seen, VANISHED) */
    /* implicit \Seen */
    uint32_t *unseen;                /* UIDs to set \Seen on (ascending) */
    uint32_t nunseen;
    struct store_flag_result *seen;  /* the store's results (applied in done) */
    uint32_t nseen;
    uint32_t *seen_changed;          /* UIDs whose \Seen this FETCH set, ascending */
    uint32_t nseen_changed;
    int seen_applied;
    /* VANISHED (EARLIER): the raw UID set and '*' */
    int vanished;
    struct imap_seqset rawset;
    uint32_t star_uid;
    /* outcome of the last job */
    int finished;
    int result;                      /* 0, 2 unknown CTE, 3 too big, -1 error */
    const char *error;
};

static void fetch_ctx_free(void *p)
{
    struct fetch_ctx *ctx = p;
    if (!ctx)
        return;
    imap_fetch_spec_free(&ctx->spec);
    imap_seqset_free(&ctx->rawset);
    imap_rowwalk_free(&ctx->walk);
    store_flag_results_free(ctx->seen, ctx->nseen);
    free(ctx->uid);
    free(ctx->seq);
    free(ctx->unseen);
    free(ctx->seen_changed);
    free(ctx);
}

static void fetch_run(struct imap_session *s, struct fetch_ctx *ctx);

/* ---- worker side ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sets \Seen on the messages that lack it (first job). */
static void set_seen(struct imap_job *j, struct fetch_ctx *ctx)
{
    if (ctx->nunseen == 0)
        return;
    const char *err = NULL;
    if (store_set_flags(j->data_dir, j->account, j->mailbox, ctx->unseen, ctx->nunseen,
                        STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, 0, &ctx->seen, &ctx->nseen,
                        &err) != 0) {
        /* not fatal for the FETCH itself: the data is still sent */
        log_warn("imap", "event=implicit-seen-failed account=%s error=\"%s\"", j->account,
                 err ? err : "?");
        ctx->seen = NULL;
        ctx->nseen = 0;
        return;
    }
    ctx->seen_changed = xcalloc(ctx->nseen ? ctx->nseen : 1, sizeof *ctx->seen_changed);
    for (uint32_t i = 0; i < ctx->nseen; i++)
        if (ctx->seen[i].changed)
            ctx->seen_changed[ctx->nseen_changed++] = ctx->seen[i].uid;
    qsort(ctx->seen_changed, ctx->nseen_changed, sizeof *ctx->seen_changed, cmp_u32);
}

/* "* VANISHED (EARLIER) uids" for UIDs of the requested set expunged
 * after CHANGEDSINCE (RFC 7162 3.2.6). */
static void write_vanished(struct imap_job *j, struct fetch_ctx *ctx)
{
    struct store_changes ch;
    const char *err = NULL;
    if (store_changes_since(j->data_dir, j->account, j->mailbox, ctx->spec.changedsince, &ch,
                            &err) != 0)
        return;
    uint32_t *v = xcalloc(ch.nvanished ? ch.nvanished : 1, sizeof *v);
    uint32_t nv = 0;
    for (uint32_t i = 0; i < ch.nvanished; i++)
        if (imap_seqset_contains(&ctx->rawset, ch.vanished[i], ctx->star_uid))
            v[nv++] = ch.vanished[i];
    qsort(v, nv, sizeof *v, cmp_u32);
    if (nv > 0) {
        size_t start = j->out.len;
        if (imap_out_str(&j->out, "* VANISHED (EARLIER) ") < 0 ||
            imap_out_set(&j->out, v, nv) < 0 || buf_append(&j->out, "\r\n", 2) < 0)
            imap_out_truncate(&j->out, start);
    }
    free(v);
    store_changes_free(&ch);
}

/* Writes the computed structures of a message whose row had none. */
static void cache_structure(struct imap_job *j, struct imap_msg_ctx *m, int *budget)
{
    if (*budget <= 0 || !m->mime || (m->row->envelope && m->row->bodystructure))
        return;
    struct buf env, bs;
    buf_init(&env, 1 << 20);
    buf_init(&bs, 1 << 20);
    if (mime_envelope(m->mime, 0, &env) == 0 && mime_bodystructure(m->mime, 1, 0, &bs) == 0 &&
        env.data && bs.data) {
        store_cache_structure(j->data_dir, j->account, j->mailbox, m->row->uid, env.data,
                              bs.data);
        (*budget)--;
    }
    buf_deinit(&env);
    buf_deinit(&bs);
}

static void fetch_work(struct imap_job *j)
{
    struct fetch_ctx *ctx = j->ctx;
    if (!ctx->started) {
        ctx->started = 1;
        set_seen(j, ctx);
        if (ctx->vanished)
            write_vanished(j, ctx);
    }
    int cache_budget = FETCH_CACHE_WRITES_PER_JOB;
    ctx->finished = 0;
    while (j->out.len < IMAP_OUTPUT_BATCH) {
        const struct store_fmsg *row;
        uint32_t seq;
        int r = imap_rowwalk_get(&ctx->walk, j, &row, &seq, &ctx->error);
        if (r < 0) {
            ctx->result = -1;
            break;
        }
        if (r == 0) {
            ctx->finished = 1;
            break;
        }
        if (ctx->spec.changedsince && row->modseq <= ctx->spec.changedsince) {
            imap_rowwalk_next(&ctx->walk);
            continue;
        }
        struct imap_fetch_opts o = ctx->opts;
        o.add_flags = imap_uid_in(ctx->seen_changed, ctx->nseen_changed, row->uid);
        struct imap_msg_ctx m = { .seq = seq, .row = row };
        int rc = imap_fetch_message(&ctx->spec, &o, &m, &j->out);
        if (rc == 0)
            cache_structure(j, &m, &cache_budget);
        imap_msg_release(&m);
        if (rc < 0) {
            if (j->out.len == 0)
                ctx->result = 3;   /* one response larger than a job may hold */
            break;                 /* else: this message starts the next batch */
        }
        if (rc == 2) {
            ctx->result = 2;
            break;
        }
        if (rc == 1)
            ctx->walk.missing++;   /* the file went away with an expunge */
        imap_rowwalk_next(&ctx->walk);
    }
    if (ctx->result != 0)
        ctx->finished = 1;
    else if (!ctx->finished && imap_rowwalk_done(&ctx->walk)) {
        const struct store_fmsg *row;
        uint32_t seq;
        ctx->finished = imap_rowwalk_get(&ctx->walk, j, &row, &seq, &ctx->error) == 0;
    }
}

/* ---- loop side ---- */

static void apply_seen(struct imap_session *s, struct fetch_ctx *ctx)
{
    if (ctx->seen_applied)
        return;
    ctx->seen_applied = 1;
    for (uint32_t i = 0; i < ctx->nseen; i++) {
        const struct store_flag_result *r = &ctx->seen[i];
        if (r->changed)
            imap_view_set_flags(s, r->uid, r->sysflags, r->keywords, r->modseq);
    }
    if (ctx->nseen_changed > 0)
        s->dirty = 1;   /* other sessions' views; ours is up to date */
}

static void fetch_more(struct imap_session *s)
{
    s->more = NULL;
    fetch_run(s, s->cmd_ctx);
}

static void fetch_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct fetch_ctx *ctx = j->ctx;
    apply_seen(s, ctx);
    switch (ctx->result) {
    case 2:
        imap_no(s, "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding");
        return;
    case 3:
        imap_no(s, "[LIMIT] Response too large");
        return;
    case -1:
        imap_no(s, "[SERVERBUG] %s", ctx->error ? ctx->error : "Cannot read the mailbox");
        return;
    default:
        break;
    }
    if (!ctx->finished) {
        s->more = fetch_more;   /* the session calls it once the output drains */
        return;
    }
    if (ctx->walk.missing > 0 && !ctx->uid_command)
        imap_no(s, "[EXPUNGEISSUED] Some of the requested messages no longer exist");
    else
        imap_ok(s, "%sFETCH completed", ctx->uid_command ? "UID " : "");
}

static void fetch_run(struct imap_session *s, struct fetch_ctx *ctx)
{
    struct imap_job *j = imap_job_new(s);
    j->ctx = ctx;
    j->ctx_free = NULL;   /* owned by the command (s->cmd_ctx) */
    imap_job_run(j, fetch_work, fetch_done);
}

/* The messages of MS that lack \Seen in the view. */
static void collect_unseen(struct imap_session *s, struct fetch_ctx *ctx)
{
    ctx->unseen = xcalloc(ctx->n ? ctx->n : 1, sizeof *ctx->unseen);
    for (uint32_t i = 0; i < ctx->n; i++) {
        const struct store_vmsg *v = imap_view_msg(s, ctx->seq[i]);
        if (v && !(v->sysflags & STORE_F_SEEN))
            ctx->unseen[ctx->nunseen++] = ctx->uid[i];
    }
}

void imap_cmd_fetch(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs < 2) {
        imap_bad(s, "FETCH needs a sequence set and data items");
        return;
    }
    struct fetch_ctx *ctx = xcalloc(1, sizeof *ctx);
    const char *err = NULL;
    if (imap_fetch_parse(&c->args[1], c->nargs - 1, &ctx->spec, &err) != 0) {
        fetch_ctx_free(ctx);
        imap_bad(s, "%s", err ? err : "Invalid FETCH items");
        return;
    }
    if (ctx->spec.vanished &&
        (!c->uid || !ctx->spec.changedsince || !(s->enabled & IMAP_EN_QRESYNC))) {
        fetch_ctx_free(ctx);
        imap_bad(s, "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC");
        return;
    }
    struct imap_msgset ms;
    if (imap_msgcmd_set(s, &c->args[0], c->uid, &ctx->rawset, &ms) != 0) {
        fetch_ctx_free(ctx);
        return;
    }
    /* RFC 7162 3.1: MODSEQ and CHANGEDSINCE enable CONDSTORE */
    if ((ctx->spec.items & IMAP_FI_MODSEQ) || ctx->spec.changedsince)
        imap_enable_condstore(s);
    ctx->uid_command = c->uid;
    imap_fetch_opts_init(s, c->uid, &ctx->opts);
    ctx->uid = ms.uid;
    ctx->seq = ms.seq;
    ctx->n = ms.n;
    ms.uid = ms.seq = NULL;
    imap_msgset_free(&ms);
    ctx->vanished = ctx->spec.vanished;
    uint32_t count = imap_view_count(s);
    const struct store_vmsg *last = count ? imap_view_msg(s, count) : NULL;
    ctx->star_uid = last ? last->uid : 0;
    if (ctx->n == 0 && !ctx->vanished) {
        fetch_ctx_free(ctx);
        imap_ok(s, "%sFETCH completed", c->uid ? "UID " : "");
        return;
    }
    if (!s->sel->readonly && imap_fetch_sets_seen(&ctx->spec))
        collect_unseen(s, ctx);
    imap_rowwalk_init(&ctx->walk, ctx->uid, ctx->seq, ctx->n);
    /* the header block is for SEARCH; the structures are always read, or
     * cache_structure would take them for missing */
    ctx->walk.cols = STORE_COL_ENVELOPE | STORE_COL_BODYSTRUCTURE;
    s->cmd_ctx = ctx;
    s->cmd_ctx_free = fetch_ctx_free;
    fetch_run(s, ctx);
}
