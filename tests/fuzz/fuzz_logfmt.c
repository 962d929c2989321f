/* fuzz_logfmt: the logfmt line parser (src/core/logfmt.c) on arbitrary
 * bytes. Checks the invariants `roost log` relies on: a refused line is
 * empty; an accepted one has valid keys and NUL-terminated values of the
 * stated length inside the line's buffer; re-encoding every value the way
 * log_q does parses back to the same fields. */
#include "core/logfmt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct logfmt_line a, b;

static size_t encode(char *out, const struct logfmt_line *l)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < l->n; i++) {
        o += (size_t)sprintf(out + o, "%s%s=\"", i ? " " : "", l->f[i].key);
        for (size_t j = 0; j < l->f[i].vlen; j++) {
            unsigned char c = (unsigned char)l->f[i].val[j];
            if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 15];
            } else {
                out[o++] = (char)c;
            }
        }
        out[o++] = '"';
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (logfmt_parse(&a, (const char *)data, size) < 0) {
        if (a.n != 0)
            abort();
        return 0;
    }
    for (int i = 0; i < a.n; i++) {
        const struct logfmt_field *f = &a.f[i];
        size_t kl = strlen(f->key);
        if (kl == 0 || kl > LOGFMT_MAX_KEY || strlen(f->val) != f->vlen)
            abort();
        if (f->val < a.buf || f->val + f->vlen >= a.buf + sizeof a.buf)
            abort();
    }
    char *enc = malloc(sizeof a.buf * 4 + 16);
    size_t n = encode(enc, &a);
    /* the encoding may pass the line limit; only compare when it fits */
    if (n <= LOGFMT_MAX_LINE) {
        if (logfmt_parse(&b, enc, n) < 0 || b.n != a.n)
            abort();
        for (int i = 0; i < a.n; i++)
            if (strcmp(a.f[i].key, b.f[i].key) || a.f[i].vlen != b.f[i].vlen ||
                memcmp(a.f[i].val, b.f[i].val, a.f[i].vlen))
                abort();
    }
    free(enc);
    return 0;
}
