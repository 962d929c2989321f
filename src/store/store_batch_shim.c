/* TEMPORARY shim until the pack-file store lands: store_deliver one by one. */
#include "store/store.h"

int store_deliver_batch(const char *data_dir, const char *account,
                        struct store_batch_item *items, int n, const char **error_r)
{
    for (int i = 0; i < n; i++) {
        const char *err = NULL;
        items[i].result = store_deliver(data_dir, account, items[i].mailbox, items[i].queue_id,
                                        items[i].data, items[i].len, items[i].internaldate,
                                        &items[i].uid, &items[i].duplicate, &err) < 0 ? -1 : 0;
    }
    (void)error_r;
    return 0;
}
