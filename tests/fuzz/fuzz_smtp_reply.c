/* fuzz_smtp_reply: libFuzzer target for src/smtp/smtp_client_parse.c, what
 * the outbound client reads from servers. The input is split into lines at
 * LF (a CR before it dropped), each line copied into an exact-size block
 * and fed to smtpc_reply_feed; every complete reply goes through
 * smtpc_parse_ehlo and smtpc_reply_string, a bad line resets the parser.
 * Invariants checked: codes stay in 200..599, a complete reply has at least
 * one line and its text within the bound. */
#include "core/limits.h"
#include "smtp/smtp_client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtpc_reply r;
    smtpc_reply_init(&r);
    size_t i = 0;
    while (i < size) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t len = end - i;
        if (len > 0 && data[i + len - 1] == '\r')
            len--;
        char *line = malloc(len ? len : 1);
        if (!line)
            abort();
        memcpy(line, data + i, len);
        const char *err = NULL;
        int rc = smtpc_reply_feed(&r, line, len, &err);
        free(line);
        if (rc == SMTPC_BAD) {
            if (!err)
                abort();
            smtpc_reply_reset(&r);
        } else if (rc == SMTPC_DONE) {
            if (r.code < 200 || r.code > 599 || r.nlines < 1)
                abort();
            if (r.nlines > SMTPC_MAX_REPLY_LINES)
                abort();
            struct smtpc_caps caps;
            smtpc_parse_ehlo(&r, &caps);
            char *s = smtpc_reply_string(&r);
            free(s);
            char enh[16];
            if (r.text.data)
                smtpc_parse_enhanced(r.text.data, r.text.len, r.code / 100, enh);
        }
        i = nl ? end + 1 : size;
    }
    smtpc_reply_deinit(&r);
    return 0;
}
