/* fuzz_imap_command: libFuzzer target for the IMAP command reader and
 * parser (src/imap/imap_reader.c, imap_parse*.c, imap_seqset.c,
 * imap_date.c, imap_mutf7.c, imap_quote.c). The first byte picks the chunk
 * size the input is fed in (framing must not depend on it); every framed
 * command is parsed, and every argument goes through each typed parser. */
#include "imap/imap_parse.h"
#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void typed_parsers(const struct imap_command *cmd)
{
    for (int i = 0; i < cmd->nargs; i++) {
        const struct imap_arg *rest = &cmd->args[i];
        int nrest = cmd->nargs - i;
        const char *err;
        struct imap_fetch_spec fs;
        if (imap_fetch_parse(rest, nrest > 2 ? 2 : nrest, &fs, &err) == 0)
            imap_fetch_spec_free(&fs);
        struct imap_search_prog sp;
        if (imap_search_parse(rest, nrest, &sp, &err) == 0)
            imap_search_prog_free(&sp);
        struct imap_store_spec ss;
        if (imap_store_parse(rest, nrest, &ss, &err) == 0)
            imap_store_spec_free(&ss);
        struct imap_flag_list fl;
        if (imap_flags_parse(rest, 1, &fl, &err) == 0)
            imap_flags_free(&fl);
        const char *s;
        size_t len;
        if (!imap_arg_astring(rest, &s, &len) || memchr(s, '\0', len))
            continue;
        struct imap_seqset set;
        if (imap_seqset_parse(s, &set) == 0) {
            imap_seqset_contains(&set, 7, 100);
            imap_seqset_free(&set);
        }
        time_t t;
        imap_date_parse(s, &t);
        if (imap_datetime_parse(s, &t) == 0) {
            char out[32];
            imap_datetime_format(t, out);
        }
        char *u = imap_mutf7_to_utf8(s);
        if (u) {
            imap_mailbox_name_check(u);
            char *back = imap_utf8_to_mutf7(u);
            /* a strict decoder means the round trip gives the input back */
            if (!back || strcmp(back, s) != 0)
                abort();
            free(back);
            free(u);
        }
        char *m = imap_utf8_to_mutf7(s);
        free(m);
        struct buf b;
        buf_init(&b, 2 * len + 64);
        if (imap_quote_string(&b, s, len, len % 2) < 0)
            abort();
        buf_deinit(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    struct imap_reader *r = imap_reader_new(4096);
    size_t pos = 0;
    int commands = 0;
    while (pos < size && commands < 64) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        size_t used = 0;
        enum imap_read res = imap_reader_feed(r, (const char *)data + pos, n, &used);
        if (used > n)
            abort();
        pos += used;
        if (res == IMAP_READ_COMMAND) {
            struct imap_framed *f = imap_reader_take(r);
            struct imap_command cmd;
            if (imap_parse_command(f, &cmd) == IMAP_PERR_OK)
                typed_parsers(&cmd);
            imap_command_free(&cmd);
            imap_framed_free(&f);
            commands++;
        } else if (res == IMAP_READ_MORE && used == 0) {
            abort(); /* no progress on available input */
        }
    }
    imap_reader_free(&r);
    return 0;
}
