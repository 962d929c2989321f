/* forward: forwarding at local delivery (see forward.h).
 *
 * Runs on the queue's delivery worker, one recipient at a time, in this
 * order, so that every crash point is safe:
 *   1. read the account's forwarding settings (directory);
 *   2. the loop check on the message's header;
 *   3. the forwarded copy: derived id; if that spool file exists it is
 *      already queued (skip); else build it (Delivered-To: + the message,
 *      SRS sender), spool_commit it (durable), and post its id to the
 *      queue's loop, which schedules it like a file found at start-up;
 *   4. the account's copy as its keep option says (store_deliver is
 *      idempotent by the original's queue id; the \Seen flag of mark-read
 *      is set again on a retry, which is harmless).
 * Only then does the queue mark the recipient done. A failure at any step
 * returns -1 and the queue retries the recipient from step 1. */
#include "queue/forward.h"
#include "queue/retpath.h"
#include "auth/dir_cache.h"
#include "auth/directory.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "queue/srs.h"
#include "queue/srs_key.h"
#include "store/store.h"
#include "store/store_imap.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* The spool's sortable base32 alphabet (spool.c); spool_id_valid checks. */
static const char id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
#define ID_TIME_CHARS 11

struct schedule_post {
    void (*schedule)(const char *id, void *arg);
    void *arg;
    char id[SPOOL_ID_LEN + 1];
};

static int field_is(const char *line, size_t len, const char *name, const char **value_r);
static int value_names(const char *v, const char *end, const char *address);
static int queue_copy(const struct forward_queue *fq, const struct spool_msg *m, int idx,
                      const char *account, const char *to, const char *target,
                      const char **error_r);
static void schedule_run(void *arg);
static int keep_copy(const struct forward_queue *fq, const struct spool_msg *m,
                     const char *account, enum dir_forward_keep keep, uint32_t *uid_r,
                     int *duplicate_r, const char **error_r);
static int ensure_archive(const char *data_dir, const char *account, const char **error_r);

/* ---------------------------------------------------------------- ids */

void forward_id(const char *orig_id, int idx, char id_r[SPOOL_ID_LEN + 1])
{
    char in[SPOOL_ID_LEN + 32];
    int n = snprintf(in, sizeof in, "%.*s/%d/forward", SPOOL_ID_LEN, orig_id, idx);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)in, (size_t)(n > 0 ? n : 0), md);
    size_t i = 0;
    for (; i < ID_TIME_CHARS && orig_id[i]; i++)
        id_r[i] = strchr(id_alphabet, orig_id[i]) ? orig_id[i] : '0';
    for (; i < ID_TIME_CHARS; i++)
        id_r[i] = '0';
    /* 45 bits of the digest, five at a time. */
    for (int k = 0; i < SPOOL_ID_LEN; i++, k++)
        id_r[i] = id_alphabet[md[k] & 31];
    id_r[SPOOL_ID_LEN] = '\0';
}

/* ---------------------------------------------------------------- loops */

/* 1 if the header line LINE (LEN bytes, no line end) is field NAME; then
 * *value_r points after its colon. */
static int field_is(const char *line, size_t len, const char *name, const char **value_r)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0)
        return 0;
    size_t i = n;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i >= len || line[i] != ':')
        return 0;
    *value_r = line + i + 1;
    return 1;
}

/* 1 if the field value [V, END) is ADDRESS (case-insensitive; blanks and
 * angle brackets around it ignored). */
static int value_names(const char *v, const char *end, const char *address)
{
    while (v < end && (*v == ' ' || *v == '\t' || *v == '<'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '>'))
        end--;
    size_t n = strlen(address);
    return (size_t)(end - v) == n && strncasecmp(v, address, n) == 0;
}

int forward_is_loop(const char *data, size_t len, const char *account, const char *target,
                    const char *target_account, const char **why_r)
{
    size_t max = len < FORWARD_HEADER_SCAN ? len : FORWARD_HEADER_SCAN;
    const char *p = data, *end = data + max;
    int delivered = 0, received = 0;
    *why_r = NULL;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *ve = le > p && le[-1] == '\r' ? le - 1 : le;
        if (ve == p)
            break;   /* the empty line: end of the header */
        const char *v;
        if (field_is(p, (size_t)(ve - p), "Delivered-To", &v)) {
            delivered++;
            if (value_names(v, ve, account)) {
                *why_r = "delivered-to-self";
                return 1;
            }
            if (value_names(v, ve, target) ||
                (target_account && value_names(v, ve, target_account))) {
                *why_r = "delivered-to-target";
                return 1;
            }
        } else if (field_is(p, (size_t)(ve - p), "Received", &v)) {
            received++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (delivered > FORWARD_MAX_DELIVERED_TO) {
        *why_r = "too-many-delivered-to";
        return 1;
    }
    if (received > FORWARD_MAX_RECEIVED) {
        *why_r = "too-many-hops";
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the copy */

static void schedule_run(void *arg)
{
    struct schedule_post *sp = arg;
    sp->schedule(sp->id, sp->arg);
    free(sp);
}

/* Queues the forwarded copy of M to TO, whose local account is TARGET
 * (NULL: remote). 0 queued (now or before), -1 error. */
static int queue_copy(const struct forward_queue *fq, const struct spool_msg *m, int idx,
                      const char *account, const char *to, const char *target,
                      const char **error_r)
{
    char id[SPOOL_ID_LEN + 1];
    forward_id(m->id, idx, id);
    char qa[LOG_QSIZE], qt[LOG_QSIZE], qs[LOG_QSIZE];
    log_q(qa, sizeof qa, account, strlen(account));
    log_q(qt, sizeof qt, to, strlen(to));
    char *path = xasprintf("%s/%s", spool_dir(fq->spool), id);
    struct stat st;
    int exists = stat(path, &st) == 0;
    free(path);
    if (exists) {
        log_info("queue", "event=forward-already-queued queue=%s fwd=%s account=%s to=%s", m->id,
                 id, qa, qt);
        return 0;
    }
    unsigned char key[SRS_KEY_LEN];
    if (srs_key_get(fq->data_dir, key, error_r) < 0)
        return -1;
    char sender[SRS_ADDR_MAX + 1];
    const char *at = strrchr(account, '@');
    const char *orig = m->sender ? m->sender : "";
    int s = srs_forward(key, orig, at ? at + 1 : "", time(NULL), sender, sizeof sender);
    OPENSSL_cleanse(key, sizeof key);
    if (s < 0)
        log_warn("queue", "event=srs-not-rewritten queue=%s from=%s", m->id,
                 log_q(qs, sizeof qs, orig, strlen(orig)));

    struct spool_rcpt rcpt = { .address = (char *)to, .account = (char *)target };
    char *data = xasprintf("Delivered-To: %s\r\n", account);
    size_t hlen = strlen(data);
    data = xrealloc(data, hlen + m->len + 1);
    if (m->len)
        memcpy(data + hlen, m->data, m->len);
    data[hlen + m->len] = '\0';
    struct spool_msg fm = { .sender = s < 0 ? (char *)orig : sender,
                            .arrived = time(NULL),
                            .protocol = (char *)"FORWARD",
                            .nrcpt = 1,
                            .rcpts = &rcpt,
                            .data = data,
                            .len = hlen + m->len };
    memcpy(fm.id, id, sizeof fm.id);
    int rc = spool_commit(fq->spool, &fm, error_r);
    free(data);
    if (rc < 0) {
        log_error("queue", "event=forward-failed queue=%s fwd=%s account=%s to=%s error=\"%s\"",
                  m->id, id, qa, qt, *error_r);
        return -1;
    }
    log_info("queue", "event=forwarded queue=%s fwd=%s account=%s to=%s srs=%s", m->id, id, qa,
             qt, s > 0 ? log_q(qs, sizeof qs, sender, strlen(sender)) : "-");
    struct schedule_post *sp = xcalloc(1, sizeof *sp);
    sp->schedule = fq->schedule;
    sp->arg = fq->arg;
    memcpy(sp->id, id, sizeof sp->id);
    loop_post(fq->loop, schedule_run, sp);
    return 0;
}

/* ---------------------------------------------------------------- the account's copy */

static int ensure_archive(const char *data_dir, const char *account, const char **error_r)
{
    uint32_t uidvalidity, uidnext, count;
    if (store_mailbox_status(data_dir, account, "Archive", &uidvalidity, &uidnext, &count) == 0)
        return 0;
    int r = store_mailbox_create(data_dir, account, "Archive", "\\Archive", error_r);
    if (r == 0) {
        char qa[LOG_QSIZE];
        log_info("queue", "event=archive-created account=%s",
                 log_q(qa, sizeof qa, account, strlen(account)));
    }
    return r < 0 ? -1 : 0;
}

static int keep_copy(const struct forward_queue *fq, const struct spool_msg *m,
                     const char *account, enum dir_forward_keep keep, uint32_t *uid_r,
                     int *duplicate_r, const char **error_r)
{
    char qa[LOG_QSIZE];
    log_q(qa, sizeof qa, account, strlen(account));
    if (keep == FORWARD_DELETE) {
        log_info("queue", "event=forward-kept queue=%s account=%s keep=delete mailbox=-", m->id,
                 qa);
        return 0;
    }
    const char *mailbox = keep == FORWARD_ARCHIVE ? "Archive" : "INBOX";
    if (keep == FORWARD_ARCHIVE && ensure_archive(fq->data_dir, account, error_r) < 0)
        return -1;
    size_t len;
    char *stored = retpath_message(m->sender, m->data, m->len, &len);
    int rc = store_deliver(fq->data_dir, account, mailbox, m->id, stored, len, m->arrived, uid_r,
                           duplicate_r, error_r);
    free(stored);
    if (rc < 0)
        return -1;
    if (keep == FORWARD_MARK_READ &&
        store_add_flag(fq->data_dir, account, "INBOX", uid_r, 1, "\\Seen", error_r) < 0)
        return -1;
    if (keep != FORWARD_KEEP)
        log_info("queue", "event=forward-kept queue=%s account=%s keep=%s mailbox=%s uid=%u",
                 m->id, qa, dir_forward_keep_name(keep), mailbox, *uid_r);
    return 0;
}

/* ---------------------------------------------------------------- entry */

int forward_deliver(const struct forward_queue *fq, const struct spool_msg *m, int idx,
                    uint32_t *uid_r, int *duplicate_r, const char **error_r)
{
    const char *account = m->rcpts[idx].account;
    *uid_r = 0;
    *duplicate_r = 0;
    struct directory *d = dir_for_thread(fq->data_dir, error_r);
    if (!d)
        return -1;
    struct dir_forward f;
    int g = dir_forward_get(d, account, &f);
    if (g < 0) {
        *error_r = "cannot read the forwarding settings";
        return -1;
    }
    if (g == 1 || !f.to[0])
        return keep_copy(fq, m, account, FORWARD_KEEP, uid_r, duplicate_r, error_r);
    char target[320];
    enum dir_rcpt rr = dir_resolve_rcpt(d, f.to, target);
    if (rr == DIR_RCPT_ERROR) {
        *error_r = "cannot resolve the forwarding address";
        return -1;
    }
    if (rr == DIR_RCPT_NO_SUCH_USER) {
        /* the target account was deleted after forwarding was set */
        char qa[LOG_QSIZE], qt[LOG_QSIZE];
        log_warn("queue", "event=forward-target-unknown queue=%s account=%s to=%s kept=INBOX",
                 m->id, log_q(qa, sizeof qa, account, strlen(account)),
                 log_q(qt, sizeof qt, f.to, strlen(f.to)));
        return keep_copy(fq, m, account, FORWARD_KEEP, uid_r, duplicate_r, error_r);
    }
    const char *tacct = rr == DIR_RCPT_LOCAL ? target : NULL;
    const char *why = NULL;
    if (forward_is_loop(m->data, m->len, account, f.to, tacct, &why)) {
        char qa[LOG_QSIZE], qt[LOG_QSIZE];
        log_info("queue", "event=forward-loop queue=%s account=%s to=%s rule=%s kept=INBOX",
                 m->id, log_q(qa, sizeof qa, account, strlen(account)),
                 log_q(qt, sizeof qt, f.to, strlen(f.to)), why);
        return keep_copy(fq, m, account, FORWARD_KEEP, uid_r, duplicate_r, error_r);
    }
    if (queue_copy(fq, m, idx, account, f.to, tacct, error_r) < 0)
        return -1;
    return keep_copy(fq, m, account, f.keep, uid_r, duplicate_r, error_r);
}
