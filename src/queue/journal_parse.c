/* journal_parse: the records of a queue journal segment (journal_parse.h). */
#include "queue/journal_parse.h"
#include "core/le32.h"

#include <stdint.h>
#include <string.h>

int journal_parse(const char *data, size_t len, void (*cb)(struct spool_msg *msg, void *arg),
                  void *arg, size_t *end_r, const char **why_r)
{
    int count = 0;
    *why_r = NULL;
    if (len < SEG_MAGIC_LEN || memcmp(data, SEG_MAGIC, SEG_MAGIC_LEN) != 0) {
        *end_r = 0;
        *why_r = "bad-magic";
        return 0;
    }
    size_t off = SEG_MAGIC_LEN;
    while (off < len) {
        if (len - off < REC_HDR + SPOOL_ID_LEN || data[off] != 'J') {
            *why_r = "torn-record";
            break;
        }
        uint32_t rl = le32_get((const unsigned char *)data + off + 1);
        if (rl < SPOOL_ID_LEN || rl > len - off - REC_HDR) {
            *why_r = "torn-record";
            break;
        }
        char id[SPOOL_ID_LEN + 1];
        memcpy(id, data + off + REC_HDR, SPOOL_ID_LEN);
        id[SPOOL_ID_LEN] = '\0';
        struct spool_msg *m = NULL;
        const char *mwhy = NULL;
        if (spool_decode(id, data + off + REC_HDR + SPOOL_ID_LEN, rl - SPOOL_ID_LEN, &m,
                         &mwhy) < 0) {
            *why_r = mwhy;
            break;
        }
        cb(m, arg);
        count++;
        off += REC_HDR + (size_t)rl;
    }
    *end_r = off;
    return count;
}
