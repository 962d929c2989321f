/* smtp_dkim: DKIM-signs mail submitted by accounts, on the worker thread
 * that already finishes the transaction (smtp_message.c, final_work), so the
 * event loop never waits for a signature. The signing domain and the
 * signature come from dkim_served.h; the DKIM-Signature field goes in front
 * of everything, our Received: included; the signature covers the message
 * as the client sent it. A signing failure never loses the message: it is
 * logged and the message is accepted unsigned. Mail arriving on port 25
 * never comes here (only submission sessions are authenticated). */
#include "smtp/smtp_int.h"
#include "dkim/dkim_served.h"

#include <stdlib.h>
#include <string.h>

void smtp_dkim_sign(struct directory *d, const char *data_dir, struct smtp_tx *tx)
{
    const char *msg = tx->data.data + tx->header_len;
    size_t len = tx->data.len - tx->header_len;
    size_t room = tx->data.max > tx->data.len ? tx->data.max - tx->data.len : 0;
    char *field = dkim_sign_served(d, data_dir, tx->from, msg, len, room, tx->queue_id);
    if (!field)
        return;
    if (buf_prepend(&tx->data, field, strlen(field)) == 0)   /* fits: ROOM said so */
        tx->header_len += strlen(field);
    free(field);
}
