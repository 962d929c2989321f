/* test_main: the imap_fetch unit-test binary (FETCH items and SEARCH keys
 * over hand-made index rows and small message files) and its fixtures. */
#include "fetch_tests.h"
#include "core/xalloc.h"
#include "mime/mime.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRLF "\r\n"

const char fx_multipart[] =
    "From: \"Alice Example\" <alice@example.test>" CRLF
    "To: bob@example.test" CRLF
    "Cc: carol@example.test" CRLF
    "Subject: Quarterly report" CRLF
    "Date: Mon, 05 Feb 2024 10:00:00 +0000" CRLF
    "Message-ID: <m1@example.test>" CRLF
    "X-Tag: alpha" CRLF
    "  continued" CRLF
    "MIME-Version: 1.0" CRLF
    "Content-Type: multipart/mixed; boundary=\"BOUND\"" CRLF
    CRLF
    "This is a MIME message." CRLF
    "--BOUND" CRLF
    "Content-Type: text/plain; charset=utf-8" CRLF
    CRLF
    "Hello Bob, the numbers are attached." CRLF
    "--BOUND" CRLF
    "Content-Type: application/octet-stream; name=\"data.bin\"" CRLF
    "Content-Transfer-Encoding: base64" CRLF
    "Content-Disposition: attachment; filename=\"data.bin\"" CRLF
    CRLF
    "AGFiYwBkZWY=" CRLF
    "--BOUND" CRLF
    "Content-Type: message/rfc822" CRLF
    CRLF
    "From: dave@example.test" CRLF
    "Subject: inner note" CRLF
    CRLF
    "Inner body text." CRLF
    "--BOUND" CRLF
    "Content-Type: application/x-thing" CRLF
    "Content-Transfer-Encoding: x-weird" CRLF
    CRLF
    "zzz" CRLF
    "--BOUND--" CRLF;

const char fx_simple[] =
    "From: Zed <zed@example.test>" CRLF
    "To: alice@example.test" CRLF
    "Subject: lunch =?utf-8?q?caf=C3=A9?=" CRLF
    "Date: Thu, 01 Feb 2024 23:30:00 -0500" CRLF
    CRLF
    "Meet at noon." CRLF;

char *fx_write(const char *name, const char *data)
{
    char *path = xasprintf("%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data, 1, strlen(data), f);
    fclose(f);
    return path;
}

struct store_fmsg fx_row(uint32_t uid, unsigned sysflags, const char *keywords,
                         const char *path, size_t size)
{
    struct store_fmsg r;
    memset(&r, 0, sizeof r);
    r.uid = uid;
    r.sysflags = sysflags;
    r.keywords = keywords ? xstrdup(keywords) : NULL;
    r.path = path ? xstrdup(path) : xasprintf("%s/no-such-file", test_tmpdir());
    r.size = size;
    r.offset = STORE_WHOLE_FILE;
    r.internaldate = 1707127200;   /* 2024-02-05 10:00:00 UTC */
    r.modseq = 7;
    return r;
}

void fx_row_free(struct store_fmsg *r)
{
    free(r->keywords);
    free(r->envelope);
    free(r->bodystructure);
    free(r->path);
    memset(r, 0, sizeof *r);
}

int main(void)
{
    mime_init();
    return test_run((test_fn[]){
        test_fetch_index_items,
        test_fetch_structures,
        test_fetch_body_from_bodystructure,
        test_fetch_sections,
        test_fetch_partial,
        test_fetch_binary,
        test_fetch_rfc822,
        test_fetch_out_full_and_gone,
        test_fetch_spec_predicates,
        test_search_index_keys,
        test_search_sets,
        test_search_dates,
        test_search_file_keys,
        test_search_cached_header,
        test_search_nesting,
        test_search_format_plain,
        test_search_format_esearch,
        test_batch_rowwalk,
        test_batch_fetch_20000,
        NULL,
    });
}
