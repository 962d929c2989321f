/* forward: automatic forwarding at local delivery (Gmail's "Forward a copy
 * of incoming mail to ..."), called by the queue for each local recipient in
 * place of store_deliver.
 *
 * When the recipient's account forwards (directory: dir_forward_get), one
 * copy goes back into the queue for the target: the message unchanged but
 * for a prepended "Delivered-To: <account>" trace field, its envelope sender
 * rewritten by SRS (queue/srs.h) in the account's domain (the null sender
 * stays null). Then the account's own copy is stored as its keep option
 * says: INBOX (keep), INBOX with \Seen (mark-read), the "Archive" mailbox,
 * made with \Archive if missing (archive), or nowhere (delete).
 *
 * Durable and idempotent: the forwarded copy's queue id is derived from the
 * original's id and the recipient's index, and it is committed to the spool
 * (fsync'd) on the delivery worker before the local copy is stored and
 * before the queue marks the recipient done. A retry or a restart after a
 * crash finds that id already in the spool and does not queue it again; if
 * the copy was already delivered and removed, it is queued once more under
 * the same id: a local target's store drops it as a duplicate (by queue id),
 * a remote target may receive it twice (the only duplicate, and only after a
 * crash in that window).
 *
 * Loops: the copy is not made (event=forward-loop, logged) when the message
 * already carries a Delivered-To: naming this account (it came back) or the
 * target or the account behind it (the target already had it), or more than FORWARD_MAX_DELIVERED_TO
 * Delivered-To: or FORWARD_MAX_RECEIVED Received: fields. The account then
 * gets its copy in the INBOX, whatever its keep option (nothing is lost). */
#ifndef ROOST_FORWARD_H
#define ROOST_FORWARD_H

#include "queue/spool.h"

#include <stddef.h>
#include <stdint.h>

#define FORWARD_MAX_DELIVERED_TO 20
#define FORWARD_MAX_RECEIVED 30     /* hops; Postfix bounces at 50 */
#define FORWARD_HEADER_SCAN (256 * 1024)  /* header bytes looked at for loops */

struct loop;

/* What forward_deliver needs of the queue. SCHEDULE(id, ARG) runs on LOOP
 * (the queue's loop, posted there from the worker) and makes the queue
 * deliver the committed spool file ID, as it does for the files it finds at
 * start-up. */
struct forward_queue {
    const char *data_dir;
    struct spool *spool;
    struct loop *loop;
    void (*schedule)(const char *id, void *arg);
    void *arg;
};

/* Worker thread. Delivers recipient IDX of M (a local account) with
 * forwarding as the account says; without forwarding it is store_deliver
 * into INBOX. *uid_r and *duplicate_r as store_deliver (0 and 0 when no
 * local copy is kept). 0 done, -1 failed (*error_r set; retry later). */
int forward_deliver(const struct forward_queue *fq, const struct spool_msg *m, int idx,
                    uint32_t *uid_r, int *duplicate_r, const char **error_r);

/* Derives the forwarded copy's queue id from ORIG_ID and IDX (a valid
 * spool id that sorts with ORIG_ID's time). */
void forward_id(const char *orig_id, int idx, char id_r[SPOOL_ID_LEN + 1]);

/* Loop check over the header of DATA (LEN bytes): 1 when the message must
 * not be forwarded from ACCOUNT to TARGET, whose local account (an alias or
 * +tag resolved) is TARGET_ACCOUNT (NULL: remote), see above; *why_r says
 * which rule. Else 0. */
int forward_is_loop(const char *data, size_t len, const char *account, const char *target,
                    const char *target_account, const char **why_r);

#endif
