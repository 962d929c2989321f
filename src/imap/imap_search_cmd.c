/* imap_search_cmd: SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4,
 * RFC 4731 ESEARCH, RFC 5182 SAVE, RFC 7162 3.1.5 MODSEQ).
 *
 * The candidates are the messages of the view (a copy of its UIDs goes to
 * the job). One job scans their rows in one read of the index
 * (store_scan_rows, no copies), evaluates the program (index keys first;
 * header keys on the index's cached header block; files are opened only
 * for body keys and messages stored without that cache), and formats the
 * reply: SEARCH, or
 * ESEARCH when RETURN was given or IMAP4rev2 is enabled. RETURN (SAVE)
 * keeps the matching UIDs in the session as "$"; a failed SEARCH ... SAVE
 * leaves "$" empty (RFC 5182 2.1). */
#include "imap/imap_msgcmd.h"
#include "imap/imap_search.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct search_ctx {
    struct imap_search_prog prog;
    struct imap_search_env env;
    char tag[IMAP_MAX_TAG + 1];
    int uid_command;
    uint32_t *uid;              /* the view's UIDs; seq = index + 1 */
    uint32_t n;
    uint32_t *saved;            /* copy of "$" for the evaluation */
    uint32_t *match_uid, *match_seq;
    uint32_t nmatch;
    uint64_t highest;           /* the highest MODSEQ of the matches */
    int rc;
    const char *error;
};

static void search_ctx_free(void *p)
{
    struct search_ctx *ctx = p;
    if (!ctx)
        return;
    imap_search_prog_free(&ctx->prog);
    free(ctx->uid);
    free(ctx->saved);
    free(ctx->match_uid);
    free(ctx->match_seq);
    free(ctx);
}

/* One row of the scan (store_scan_rows): evaluated, kept when it matches. */
static int search_row(void *arg, const struct store_fmsg *row, uint32_t index)
{
    struct search_ctx *ctx = arg;
    struct imap_msg_ctx m = { .seq = index + 1, .row = row };
    if (imap_search_match(&ctx->prog, &ctx->env, &m) == 1) {
        ctx->match_uid[ctx->nmatch] = row->uid;
        ctx->match_seq[ctx->nmatch++] = index + 1;
        if (row->modseq > ctx->highest)
            ctx->highest = row->modseq;
    }
    imap_msg_release(&m);
    return 0;
}

static void search_work(struct imap_job *j)
{
    struct search_ctx *ctx = j->ctx;
    ctx->match_uid = xcalloc(ctx->n ? ctx->n : 1, sizeof *ctx->match_uid);
    ctx->match_seq = xcalloc(ctx->n ? ctx->n : 1, sizeof *ctx->match_seq);
    imap_search_prepare(&ctx->prog);
    unsigned cols = imap_search_reads_header(&ctx->prog) ? STORE_COL_HEADER : 0;
    /* a mailbox deleted meanwhile (1) has no messages left to match */
    if (store_scan_rows(j->data_dir, j->account, j->mailbox, ctx->uid, ctx->n, cols,
                        search_row, ctx, &ctx->error) < 0)
        ctx->rc = -1;
    if (ctx->rc != 0) {
        ctx->nmatch = 0;
        return;
    }
    if (imap_search_format(&ctx->prog, ctx->tag, ctx->uid_command,
                           ctx->uid_command ? ctx->match_uid : ctx->match_seq, ctx->nmatch,
                           ctx->highest, &j->out) != 0) {
        ctx->rc = -1;
        ctx->error = "Search result too large";
    }
}

static void save_result(struct imap_session *s, struct search_ctx *ctx)
{
    struct imap_selected *sel = s->sel;
    free(sel->saved);
    sel->saved = NULL;
    sel->nsaved = 0;
    if (ctx->rc == 0 && ctx->nmatch > 0) {
        sel->saved = ctx->match_uid;   /* ascending: the view is in UID order */
        sel->nsaved = ctx->nmatch;
        ctx->match_uid = NULL;
    }
}

static void search_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct search_ctx *ctx = j->ctx;
    if (ctx->prog.esearch && (ctx->prog.ret & IMAP_ESR_SAVE) && s->sel)
        save_result(s, ctx);
    if (ctx->rc != 0)
        imap_no(s, "[SERVERBUG] %s", ctx->error ? ctx->error : "Cannot search the mailbox");
    else
        imap_ok(s, "%sSEARCH completed", ctx->uid_command ? "UID " : "");
}

void imap_cmd_search(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs < 1) {
        imap_bad(s, "SEARCH needs search keys");
        return;
    }
    struct search_ctx *ctx = xcalloc(1, sizeof *ctx);
    const char *err = NULL;
    int prc = imap_search_parse(c->args, c->nargs, &ctx->prog, &err);
    if (prc != 0) {
        int saves = ctx->prog.esearch && (ctx->prog.ret & IMAP_ESR_SAVE);
        search_ctx_free(ctx);
        if (saves && s->sel) {   /* RFC 5182 2.1: a failed SAVE empties "$" */
            free(s->sel->saved);
            s->sel->saved = NULL;
            s->sel->nsaved = 0;
        }
        if (prc == 1)
            imap_no(s, "%s", err ? err : "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset");
        else
            imap_bad(s, "%s", err ? err : "Invalid search keys");
        return;
    }
    if (ctx->prog.uses_modseq)
        imap_enable_condstore(s);   /* RFC 7162 3.1 */
    if (s->enabled & IMAP_EN_REV2)
        ctx->prog.esearch = 1;      /* RFC 9051 7.3.4: ESEARCH only */
    snprintf(ctx->tag, sizeof ctx->tag, "%s", c->tag);
    ctx->uid_command = c->uid;
    ctx->n = imap_view_count(s);
    ctx->uid = xcalloc(ctx->n ? ctx->n : 1, sizeof *ctx->uid);
    for (uint32_t i = 0; i < ctx->n; i++)
        ctx->uid[i] = imap_view_msg(s, i + 1)->uid;
    ctx->env.count = ctx->n;
    ctx->env.max_uid = ctx->n ? ctx->uid[ctx->n - 1] : 0;
    ctx->env.now = time(NULL);
    if (s->sel->nsaved) {
        ctx->saved = xcalloc(s->sel->nsaved, sizeof *ctx->saved);
        memcpy(ctx->saved, s->sel->saved, s->sel->nsaved * sizeof *ctx->saved);
    }
    ctx->env.saved = ctx->saved;
    ctx->env.nsaved = s->sel->nsaved;
    struct imap_job *j = imap_job_new(s);
    j->ctx = ctx;
    j->ctx_free = search_ctx_free;
    imap_job_run(j, search_work, search_done);
}
