/* smtp_client_parse: what the outbound client reads from a server — reply
 * lines (RFC 5321 4.2: "NNN-text" continuations, "NNN text" or "NNN" last),
 * enhanced status codes (RFC 3463 "class.subject.detail" at the start of
 * the text), and the EHLO keywords we act on. Pure functions, no I/O; every
 * input bounded (SMTPC_MAX_REPLY_LINE, SMTPC_MAX_REPLY_LINES). */
#include "smtp/smtp_client.h"
#include "core/limits.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* All lines of one reply, at most this many bytes of text. */
#define SMTPC_MAX_REPLY_TEXT (SMTPC_MAX_REPLY_LINE * 8)

void smtpc_reply_init(struct smtpc_reply *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->text, SMTPC_MAX_REPLY_TEXT);
}

void smtpc_reply_reset(struct smtpc_reply *r)
{
    r->code = 0;
    r->enhanced[0] = '\0';
    r->nlines = 0;
    r->done = 0;
    buf_reset(&r->text);
}

void smtpc_reply_deinit(struct smtpc_reply *r)
{
    buf_deinit(&r->text);
}

size_t smtpc_parse_enhanced(const char *text, size_t len, int cls, char out[16])
{
    /* class "." 1*3digit "." 1*3digit, followed by a space or the end */
    size_t i = 0;
    out[0] = '\0';
    if (len < 5 || text[0] != (char)('0' + cls) || text[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < len && i - start < 3 && isdigit((unsigned char)text[i]))
            i++;
        if (i == start)
            return 0;
        if (part == 0) {
            if (i >= len || text[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && text[i] != ' ')
        return 0;
    memcpy(out, text, i);
    out[i] = '\0';
    return i;
}

int smtpc_reply_feed(struct smtpc_reply *r, const char *line, size_t len, const char **error_r)
{
    if (r->done)
        smtpc_reply_reset(r);
    if (len > SMTPC_MAX_REPLY_LINE) {
        *error_r = "reply line too long";
        return SMTPC_BAD;
    }
    if (len < 3 || line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
        !isdigit((unsigned char)line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-')) {
        *error_r = "not an SMTP reply";
        return SMTPC_BAD;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->nlines > 0 && code != r->code) {
        *error_r = "reply code changed between lines";
        return SMTPC_BAD;
    }
    if (r->nlines >= SMTPC_MAX_REPLY_LINES) {
        *error_r = "too many reply lines";
        return SMTPC_BAD;
    }
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;
    if (memchr(text, '\0', tlen)) {
        *error_r = "NUL byte in reply";
        return SMTPC_BAD;
    }
    if (r->nlines == 0) {
        r->code = code;
        smtpc_parse_enhanced(text, tlen, code / 100, r->enhanced);
    }
    if ((r->nlines > 0 && buf_append(&r->text, "\n", 1) < 0) ||
        buf_append(&r->text, text, tlen) < 0) {
        *error_r = "reply too long";
        return SMTPC_BAD;
    }
    r->nlines++;
    if (len > 3 && line[3] == '-')
        return SMTPC_MORE;
    r->done = 1;
    return SMTPC_DONE;
}

char *smtpc_reply_string(const struct smtpc_reply *r)
{
    return xasprintf("%03d %s", r->code, r->text.data ? r->text.data : "");
}

static int keyword_is(const char *s, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(s, kw, n) == 0;
}

static void parse_auth(const char *p, const char *end, struct smtpc_caps *caps)
{
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *w = p;
        while (p < end && *p != ' ')
            p++;
        if (keyword_is(w, (size_t)(p - w), "PLAIN"))
            caps->auth_plain = 1;
        else if (keyword_is(w, (size_t)(p - w), "LOGIN"))
            caps->auth_login = 1;
    }
}

static void parse_size(const char *p, const char *end, struct smtpc_caps *caps)
{
    caps->size_given = 1;
    caps->size = 0;
    while (p < end && *p == ' ')
        p++;
    unsigned long long n = 0;
    int digits = 0;
    for (; p < end && isdigit((unsigned char)*p) && digits < 19; p++, digits++)
        n = n * 10 + (unsigned)(*p - '0');
    if (digits > 0 && (p == end || *p == ' '))
        caps->size = n;
}

static void parse_keyword_line(const char *line, size_t len, struct smtpc_caps *caps)
{
    const char *end = line + len;
    const char *sp = memchr(line, ' ', len);
    const char *kwend = sp ? sp : end;
    size_t kl = (size_t)(kwend - line);
    const char *args = sp ? sp + 1 : end;
    if (keyword_is(line, kl, "PIPELINING"))
        caps->pipelining = 1;
    else if (keyword_is(line, kl, "STARTTLS"))
        caps->starttls = 1;
    else if (keyword_is(line, kl, "8BITMIME"))
        caps->eightbitmime = 1;
    else if (keyword_is(line, kl, "SMTPUTF8"))
        caps->smtputf8 = 1;
    else if (keyword_is(line, kl, "CHUNKING"))
        caps->chunking = 1;
    else if (keyword_is(line, kl, "SIZE"))
        parse_size(args, end, caps);
    else if (keyword_is(line, kl, "AUTH"))
        parse_auth(args, end, caps);
}

void smtpc_parse_ehlo(const struct smtpc_reply *r, struct smtpc_caps *caps)
{
    memset(caps, 0, sizeof *caps);
    if (r->code != 250 || !r->text.data)
        return;
    const char *p = r->text.data, *end = p + r->text.len;
    /* the first line is the server's name and greeting */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return;
    p = nl + 1;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        parse_keyword_line(p, (size_t)(le - p), caps);
        p = nl ? nl + 1 : end;
    }
}

int smtpc_has_8bit(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] >= 0x80)
            return 1;
    return 0;
}
