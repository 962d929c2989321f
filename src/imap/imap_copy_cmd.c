/* imap_copy_cmd: COPY, UID COPY, MOVE and UID MOVE (RFC 3501 6.4.7,
 * RFC 9051 6.4.7 and 6.4.8, RFC 4315 COPYUID, RFC 6851 MOVE).
 *
 * One job copies (or moves: copy and expunge in the same store
 * transaction) the set into the target mailbox. COPY answers
 * "OK [COPYUID uidvalidity src dst] ..."; MOVE first sends the untagged
 * "* OK [COPYUID ...]", then EXPUNGE (or VANISHED under QRESYNC) for the
 * moved messages through imap_view_expunged, then its tagged OK
 * (RFC 6851 3.3). A missing target is "NO [TRYCREATE]"; a copy past the
 * account's quota "NO [OVERQUOTA]" (RFC 9208); MOVE out of a read-only
 * mailbox is refused. */
#include "imap/imap_fetch_int.h"
#include "imap/imap_msgcmd.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct copy_ctx {
    char target[IMAP_MAILBOX_MAX + 1];
    int move, uid_command;
    uint64_t quota_bytes;
    uint32_t *uid;
    uint32_t n;
    uint32_t *src, *dst;
    uint32_t ncopied, uidvalidity;
    int rc;
    const char *error;
};

static void copy_ctx_free(void *p)
{
    struct copy_ctx *ctx = p;
    if (!ctx)
        return;
    free(ctx->uid);
    free(ctx->src);
    free(ctx->dst);
    free(ctx);
}

static void copy_work(struct imap_job *j)
{
    struct copy_ctx *ctx = j->ctx;
    uint64_t quota = imap_account_quota(j, ctx->quota_bytes);
    ctx->rc = store_copy(j->data_dir, j->account, j->mailbox, ctx->target, ctx->uid, ctx->n,
                         ctx->move, quota, &ctx->src, &ctx->dst, &ctx->ncopied,
                         &ctx->uidvalidity, &ctx->error);
    if (ctx->rc != 0) {
        ctx->src = ctx->dst = NULL;
        ctx->ncopied = 0;
    }
}

/* "[COPYUID v src dst]" into OUT; 0 ok, -1 too long. */
static int copyuid_code(const struct copy_ctx *ctx, struct buf *out)
{
    if (buf_appendf(out, "[COPYUID %u ", ctx->uidvalidity) < 0 ||
        imap_out_set(out, ctx->src, ctx->ncopied) < 0 || buf_append(out, " ", 1) < 0 ||
        imap_out_set(out, ctx->dst, ctx->ncopied) < 0 || buf_append(out, "]", 1) < 0)
        return -1;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void copy_done(struct imap_job *j)
{
    struct imap_session *s = j->s;
    struct copy_ctx *ctx = j->ctx;
    const char *verb = ctx->move ? "MOVE" : "COPY";
    const char *uidp = ctx->uid_command ? "UID " : "";
    switch (ctx->rc) {
    case 0:
        break;
    case 1:
        imap_no(s, "[TRYCREATE] No such mailbox");
        return;
    case 3:
        imap_no(s, "[OVERQUOTA] Quota exceeded");
        return;
    default:
        imap_no(s, "[SERVERBUG] %s", ctx->error ? ctx->error : "Cannot copy the messages");
        return;
    }
    if (s->sel && strcmp(s->sel->name, ctx->target) == 0)
        s->dirty = 1;   /* copied into the selected mailbox: EXISTS */
    /* The whole COPYUID must fit one response line (the session's reply
     * text is bounded); a huge scattered set is sent untagged instead. */
    struct buf code;
    buf_init(&code, (size_t)IMAP_OUTPUT_BATCH);
    int have_code = ctx->ncopied > 0 && copyuid_code(ctx, &code) == 0;
    if (ctx->move) {
        if (have_code) {
            imap_write(s, "* OK ", 5);
            imap_write(s, code.data, code.len);
            imap_write(s, " Moved\r\n", 8);
        }
        uint32_t *gone = xcalloc(ctx->ncopied ? ctx->ncopied : 1, sizeof *gone);
        memcpy(gone, ctx->src, ctx->ncopied * sizeof *gone);
        qsort(gone, ctx->ncopied, sizeof *gone, cmp_u32);
        if (ctx->ncopied > 0)
            imap_view_expunged(s, gone, ctx->ncopied);
        free(gone);
        s->dirty = 1;
        imap_ok(s, "%sMOVE completed", uidp);
    } else if (have_code && code.len < 900) {
        imap_ok(s, "%s %s%s completed", code.data, uidp, verb);
    } else {
        if (have_code) {
            imap_write(s, "* OK ", 5);
            imap_write(s, code.data, code.len);
            imap_write(s, " Copied\r\n", 9);
        }
        imap_ok(s, "%s%s completed", uidp, verb);
    }
    buf_deinit(&code);
}

void imap_cmd_copy(struct imap_session *s, struct imap_command *c)
{
    int move = strcmp(c->name, "MOVE") == 0;
    if (c->nargs != 2) {
        imap_bad(s, "%s needs a sequence set and a mailbox", move ? "MOVE" : "COPY");
        return;
    }
    char target[IMAP_MAILBOX_MAX + 1];
    if (imap_arg_mailbox(s, &c->args[1], target) != 0)
        return;   /* answered */
    struct imap_seqset set;
    struct imap_msgset ms;
    if (imap_msgcmd_set(s, &c->args[0], c->uid, &set, &ms) != 0)
        return;
    imap_seqset_free(&set);
    if (move && s->sel->readonly) {
        imap_msgset_free(&ms);
        imap_no(s, "[READ-ONLY] The mailbox is read-only");
        return;
    }
    if (ms.n == 0) {
        imap_msgset_free(&ms);
        /* RFC 9051 6.4.7: an empty UID set is not an error */
        imap_ok(s, "%s%s completed", c->uid ? "UID " : "", move ? "MOVE" : "COPY");
        return;
    }
    struct copy_ctx *ctx = xcalloc(1, sizeof *ctx);
    snprintf(ctx->target, sizeof ctx->target, "%s", target);
    ctx->move = move;
    ctx->uid_command = c->uid;
    ctx->quota_bytes = s->quota_bytes;
    ctx->uid = ms.uid;
    ctx->n = ms.n;
    ms.uid = NULL;
    imap_msgset_free(&ms);
    struct imap_job *j = imap_job_new(s);
    j->ctx = ctx;
    j->ctx_free = copy_ctx_free;
    imap_job_run(j, copy_work, copy_done);
}
