/* smtp_quota: mail for a local account whose mailbox is full (RFC 9208
 * quota, the directory's accounts.quota_bytes; the store keeps the usage).
 *
 * RCPT TO: the recipient's room (its quota less its usage) is read on the
 * worker that resolves the address (smtp_cmds.c asks smtp_quota_room); a
 * mailbox already at or over its quota gets "552 5.2.2 Mailbox full", any
 * other keeps its room in the transaction (tx->rooms). End of DATA/BDAT: if
 * the message is larger than the room of any local recipient, the whole
 * transaction is refused with the same reply before anything is queued
 * (one SMTP reply covers every recipient; the sending server bounces it, as
 * for any 5xx). That check runs on the loop with the room read at RCPT: no
 * second read of the store per message (mail that arrived for the account
 * in between is not counted: a quota is a bound on what is accepted, and
 * once a message has been answered 250 it is delivered whatever the quota,
 * since the 250 promised it). A failure to read the usage never blocks
 * mail (logged; the store's own checks still hold for IMAP). */
#include "smtp/smtp_int.h"
#include "auth/directory.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/store_imap.h"

#include <stdint.h>
#include <string.h>

int smtp_quota_room(struct directory *d, const char *data_dir, const char *account,
                    uint64_t *room_r)
{
    *room_r = UINT64_MAX;
    struct dir_account a;
    int r = dir_account_get(d, account, &a);
    if (r != 0)
        return r < 0 ? -1 : 0;
    if (a.quota_bytes == 0)
        return 0;
    struct store_usage u;
    const char *err = NULL;
    if (store_usage_get(data_dir, account, &u, &err) < 0) {
        log_warn("smtp", "event=quota-unknown account=%s error=\"%s\"", account,
                 err ? err : "?");
        return 0;
    }
    *room_r = u.bytes >= a.quota_bytes ? 0 : a.quota_bytes - u.bytes;
    return 0;
}

static void refuse_over_quota(struct smtp_session *s, const char *account)
{
    char q[LOG_QSIZE];
    log_info("smtp", "event=reject session=%s queue=%s client=%s to-account=%s"
             " reason=over-quota result=552 command=data", s->id, s->tx->queue_id, s->peer,
             log_q(q, sizeof q, account, strlen(account)));
    metrics_message_rejected(s->lc.kind, MR_QUOTA);
    smtp_reply(s, "552 5.2.2 Mailbox full");
    smtp_tx_reset(s);
}

void smtp_check_quota(struct smtp_session *s, void (*cont)(struct smtp_session *s))
{
    struct smtp_tx *tx = s->tx;
    for (int i = 0; i < tx->nrcpt; i++) {
        if (tx->rcpts[i].account && tx->data.len > tx->rooms[i]) {
            refuse_over_quota(s, tx->rcpts[i].account);
            return;
        }
    }
    cont(s);
}
