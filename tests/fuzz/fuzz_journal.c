/* fuzz_journal: libFuzzer target for the queue journal's segment reader
 * (src/queue/journal_parse.c, the records of DATA/queue/journal/<seq> that
 * a restart replays) and the queue-file decoder behind it (spool_decode).
 * Every record handed over must be a whole message; the end offset never
 * passes the input. Crashes, leaks and sanitizer reports are the findings. */
#include "queue/journal_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void take(struct spool_msg *m, void *arg)
{
    int *n = arg;
    if (!m || !spool_id_valid(m->id) || !m->sender || (m->len > 0 && !m->data))
        abort();
    for (int i = 0; i < m->nrcpt; i++)
        if (!m->rcpts[i].address)
            abort();
    (*n)++;
    spool_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* half the inputs get a valid magic, so the records are reached */
    char *buf = malloc(size + SEG_MAGIC_LEN + 1);
    if (!buf)
        return 0;
    size_t len = size;
    if (size > 0 && (data[0] & 1)) {
        memcpy(buf, SEG_MAGIC, SEG_MAGIC_LEN);
        memcpy(buf + SEG_MAGIC_LEN, data + 1, size - 1);
        len = size - 1 + SEG_MAGIC_LEN;
    } else if (size > 0) {
        memcpy(buf, data, size);
    }
    int seen = 0;
    size_t end = 0;
    const char *why = NULL;
    int n = journal_parse(buf, len, take, &seen, &end, &why);
    if (n != seen || end > len || (!why && end != len))
        abort();
    free(buf);
    return 0;
}
