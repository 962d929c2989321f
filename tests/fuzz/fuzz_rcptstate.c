/* fuzz_rcptstate: libFuzzer target for the state-log replay of
 * src/queue/rcptstate.c (DATA/queue/<id>.state). The input is replayed into
 * a state for 4 recipients; each record it accepts is encoded again and the
 * re-encoding must replay to the same result. Crashes, leaks and sanitizer
 * reports are the findings. */
#include "queue/rcptstate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rs_msg *s = rs_new(4);
    rs_replay(s, (const char *)data, size);
    if (s->nrcpt != 4)
        abort();
    for (int i = 0; i < 4; i++) {
        const struct rs_rcpt *r = &s->r[i];
        if (r->nhist < 0 || r->nhist > RS_MAX_HISTORY || r->attempts < r->nhist)
            abort();
        /* what was accepted survives an encode/replay round trip */
        if (r->nhist > 0) {
            const struct rs_attempt *a = &r->hist[r->nhist - 1];
            struct rs_record rec = { .type = 'A', .t_ms = a->t_ms, .idx = 0,
                                     .outcome = a->outcome, .code = a->code,
                                     .enhanced = a->enhanced, .host = a->host,
                                     .reply = a->reply, .next_ms = 1 };
            size_t len;
            char *line = rs_encode(&rec, &len);
            if (line) {
                struct rs_msg *t = rs_new(1);
                rs_replay(t, line, len);
                if (t->r[0].attempts != 1 || t->torn != 0 ||
                    (a->reply && (!t->r[0].last.reply ||
                                  strncmp(a->reply, t->r[0].last.reply, 4096) != 0)))
                    abort();
                rs_free(&t);
                free(line);
            }
        }
    }
    rs_free(&s);
    return 0;
}
