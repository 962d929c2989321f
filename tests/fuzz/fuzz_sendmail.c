/* fuzz_sendmail: libFuzzer target for the parsers of `roost sendmail`
 * (src/cli/sendmail_parse.c) and the pickup file envelope
 * (src/queue/pickup_file.c). The input is used four ways:
 *   - split at NUL bytes into an argv for sm_parse_args; on success every
 *     recipient must point into that argv and -f must be bounded;
 *   - fed to the stdin reader whole, byte by byte and in random-sized
 *     chunks (sizes from the input): all three must give the same result
 *     and the same message, which has only CRLF line ends, no line over
 *     998 bytes and no lone "." line (without -i);
 *   - the header scan (-t) of that message: body_off inside it, no Bcc in
 *     the header copy, which is never longer than the message;
 *   - pickup_parse: on success the message offset is inside the input and
 *     every address passes pickup_addr_valid; pickup_format of what was
 *     parsed parses back to the same envelope; pickup_normalize of the
 *     message leaves only CRLF line ends.
 * Any violation aborts. */
#include "cli/sendmail_parse.h"
#include "queue/pickup_file.h"

#include <gmime/gmime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64
#define MAX_MSG (256 * 1024)

static void check_args(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = "sendmail";
    for (size_t i = 0; i < size && argc < MAX_ARGS;) {
        argv[argc++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    argv[argc] = NULL;
    struct sm_args a;
    char err[256];
    if (sm_parse_args(argc, argv, &a, err, sizeof err) == 0) {
        for (int i = 0; i < a.nrcpt; i++) {
            int found = 0;
            for (int k = 1; k < argc; k++)
                found |= a.rcpts[i] == argv[k];
            if (!found)
                abort();
        }
        if (a.from && a.from[0] && strlen(a.from) > 320)
            abort();
    } else if (!err[0]) {
        abort();
    }
    sm_args_free(&a);
    free(copy);
}

static void check_message(const char *m, size_t len, int ignore_dots)
{
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
            abort();
        if (m[i] == '\r' && (i + 1 >= len || m[i + 1] != '\n'))
            abort();
        if (m[i] == '\r' || m[i] == '\n') {
            if (!ignore_dots && m[i] == '\r' && col == 1 && m[i - 1] == '.')
                abort();
            col = 0;
            continue;
        }
        if (++col > SM_LINE_MAX)
            abort();
    }
    if (len > 0 && (len < 2 || m[len - 1] != '\n'))
        abort();
}

static enum sm_read read_chunks(const uint8_t *data, size_t size, size_t step, int ignore_dots,
                                int rnd, struct sm_reader *r)
{
    sm_reader_init(r, MAX_MSG, ignore_dots);
    enum sm_read e = SM_MORE;
    size_t i = 0;
    while (i < size && e == SM_MORE) {
        size_t n = rnd ? (size_t)(data[i] % 17) + 1 : step;
        if (n > size - i)
            n = size - i;
        e = sm_reader_feed(r, (const char *)data + i, n);
        i += n;
    }
    if (e == SM_MORE)
        e = sm_reader_finish(r);
    return e;
}

static void check_reader_and_header(const uint8_t *data, size_t size)
{
    int ignore_dots = size > 0 && (data[0] & 1);
    struct sm_reader whole, bytes, chunks;
    enum sm_read e1 = read_chunks(data, size, size ? size : 1, ignore_dots, 0, &whole);
    enum sm_read e2 = read_chunks(data, size, 1, ignore_dots, 0, &bytes);
    enum sm_read e3 = read_chunks(data, size, 0, ignore_dots, 1, &chunks);
    if (e1 != e2 || e1 != e3)
        abort();
    if (e1 == SM_DONE) {
        if (whole.out.len != bytes.out.len || whole.out.len != chunks.out.len ||
            memcmp(whole.out.data ? whole.out.data : "", bytes.out.data ? bytes.out.data : "",
                   whole.out.len) != 0 ||
            memcmp(whole.out.data ? whole.out.data : "", chunks.out.data ? chunks.out.data : "",
                   whole.out.len) != 0)
            abort();
        const char *m = whole.out.data ? whole.out.data : "";
        check_message(m, whole.out.len, ignore_dots);
        struct sm_header h;
        struct buf hdr;
        buf_init(&hdr, whole.out.len + 1);
        if (sm_scan_header(m, whole.out.len, 1, &h, &hdr) < 0)
            abort();
        if (h.body_off > whole.out.len || hdr.len > whole.out.len || h.nrcpt > SM_MAX_RCPTS)
            abort();
        for (size_t i = 0; i + 4 <= hdr.len; i++)
            if ((i == 0 || hdr.data[i - 1] == '\n') && strncasecmp(hdr.data + i, "Bcc:", 4) == 0)
                abort();
        for (int i = 0; i < h.nrcpt; i++)
            if (!h.rcpts[i] || !h.rcpts[i][0])
                abort();
        sm_header_free(&h);
        buf_deinit(&hdr);
    }
    sm_reader_deinit(&whole);
    sm_reader_deinit(&bytes);
    sm_reader_deinit(&chunks);
}

static void check_pickup(const uint8_t *data, size_t size)
{
    struct pickup_env env;
    const char *err = NULL;
    if (pickup_parse((const char *)data, size, &env, &err) != 0) {
        if (!err)
            abort();
        return;
    }
    if (env.msg_off > size || env.nrcpt < 1 || env.nrcpt > PICKUP_MAX_RCPTS)
        abort();
    if (env.sender && !pickup_addr_valid(env.sender, strlen(env.sender), 1))
        abort();
    for (int i = 0; i < env.nrcpt; i++)
        if (!pickup_addr_valid(env.rcpts[i], strlen(env.rcpts[i]), 1))
            abort();
    size_t flen;
    char *f = pickup_format(env.sender, (const char *const *)env.rcpts, env.nrcpt, &flen);
    if (!f)
        abort();
    struct pickup_env again;
    if (pickup_parse(f, flen, &again, &err) != 0 || again.nrcpt != env.nrcpt ||
        again.msg_off != flen || (!env.sender) != (!again.sender) ||
        (env.sender && strcmp(env.sender, again.sender) != 0))
        abort();
    for (int i = 0; i < env.nrcpt; i++)
        if (strcmp(env.rcpts[i], again.rcpts[i]) != 0)
            abort();
    pickup_env_free(&again);
    free(f);
    size_t nlen;
    char *norm = pickup_normalize((const char *)data + env.msg_off, size - env.msg_off, &nlen);
    for (size_t i = 0; i < nlen; i++)
        if ((norm[i] == '\n' && (i == 0 || norm[i - 1] != '\r')) ||
            (norm[i] == '\r' && (i + 1 >= nlen || norm[i + 1] != '\n')))
            abort();
    free(norm);
    pickup_env_free(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        g_mime_init();
        init = 1;
    }
    check_args(data, size);
    check_reader_and_header(data, size);
    check_pickup(data, size);
    return 0;
}
