/* smtp_data: the DATA reader state machine and the BDAT bare CR/LF scan
 * (see smtp_data.h for the policy).
 *
 * States, and what each byte does:
 *   LINE_START  "."  -> DOT (the dot is dropped: either stuffing or the end)
 *               CR   -> CR          LF -> MID, bare     other -> MID
 *   MID         CR   -> CR          LF -> MID, bare     other -> MID
 *   CR          LF   -> LINE_START  other -> the CR was bare; reprocess in MID
 *   DOT         CR   -> DOT_CR (the CR is held back)
 *               LF   -> MID, bare   other -> MID
 *   DOT_CR      LF   -> DONE (".\r\n" is not content)
 *               other -> emit the held CR (bare); reprocess in MID
 * Every byte is emitted unchanged except the dot after a line start and the
 * CR held in DOT_CR, so emitting works on runs of input ("run" .. "i") that
 * are flushed before a dropped or held byte. The only state carried between
 * calls is the enum, so any split gives the same result. */
#include "smtp/smtp_data.h"

enum data_state { DS_LINE_START, DS_MID, DS_CR, DS_DOT, DS_DOT_CR, DS_DONE };

static void emit(struct smtp_data_reader *r, struct buf *out, const char *p, size_t n);

/* Appends what fits of P (within MAX and OUT's own max), counts all of it. */
static void emit(struct smtp_data_reader *r, struct buf *out, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (!r->oversize) {
        size_t room = r->size < r->max ? r->max - r->size : 0;
        size_t oroom = out->max > out->len ? out->max - out->len : 0;
        if (oroom < room)
            room = oroom;
        if (room > n)
            room = n;
        if (room > 0 && buf_append(out, p, room) < 0)
            room = 0;
        if (room < n)
            r->oversize = 1;
    }
    r->size = r->size > (size_t)-1 - n ? (size_t)-1 : r->size + n;
}

void smtp_data_init(struct smtp_data_reader *r, size_t max)
{
    r->state = DS_LINE_START;
    r->max = max;
    r->size = 0;
    r->oversize = 0;
    r->bare_eol = 0;
    r->done = 0;
}

size_t smtp_data_feed(struct smtp_data_reader *r, const char *in, size_t len, struct buf *out)
{
    size_t i = 0, run = 0;
    if (r->done)
        return 0;
    while (i < len) {
        char c = in[i];
        switch ((enum data_state)r->state) {
        case DS_LINE_START:
            if (c == '.') {
                emit(r, out, in + run, i - run);
                run = ++i;
                r->state = DS_DOT;
                continue;
            }
            r->state = DS_MID;
            continue; /* same byte, mid-line */
        case DS_MID:
            while (i < len && in[i] != '\r' && in[i] != '\n')
                i++;
            if (i == len)
                break;
            if (in[i] == '\r') {
                r->state = DS_CR;
            } else {
                r->bare_eol = 1;
            }
            i++;
            continue;
        case DS_CR:
            if (c == '\n') {
                r->state = DS_LINE_START;
                i++;
                continue;
            }
            r->bare_eol = 1;
            r->state = DS_MID;
            continue;
        case DS_DOT:
            if (c == '\r') {
                run = ++i; /* held back */
                r->state = DS_DOT_CR;
                continue;
            }
            if (c == '\n')
                r->bare_eol = 1;
            r->state = DS_MID;
            i++;
            continue;
        case DS_DOT_CR:
            if (c == '\n') {
                i++;
                r->state = DS_DONE;
                r->done = 1;
                return i;
            }
            emit(r, out, "\r", 1);
            r->bare_eol = 1;
            r->state = DS_MID;
            continue;
        case DS_DONE:
            return i;
        }
    }
    emit(r, out, in + run, i - run);
    return i;
}

enum { BARE_PENDING_CR = 1, BARE_SEEN = 2 };

int smtp_bare_eol_scan(const char *p, size_t len, int *state)
{
    int st = *state;
    if (p == NULL) {
        if (st & BARE_PENDING_CR)
            st = BARE_SEEN;
        *state = st;
        return (st & BARE_SEEN) != 0;
    }
    for (size_t i = 0; i < len && !(st & BARE_SEEN); i++) {
        if (st & BARE_PENDING_CR) {
            st &= ~BARE_PENDING_CR;
            if (p[i] != '\n')
                st |= BARE_SEEN;
        } else if (p[i] == '\n') {
            st |= BARE_SEEN;
        } else if (p[i] == '\r') {
            st |= BARE_PENDING_CR;
        }
    }
    *state = st;
    return (st & BARE_SEEN) != 0;
}
