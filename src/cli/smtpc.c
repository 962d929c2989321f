/* smtpc: blocking SMTP client steps for the CLI tools (see smtpc.h). */
#include "cli/smtpc.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A reply of more lines than this is refused (RFC 5321 sets no bound; a
 * sane EHLO has fewer than 30). */
#define SMTPC_MAX_REPLY_LINES 200

enum netc_err smtpc_reply(struct netc *c, struct smtpc_reply *r)
{
    char line[NETC_LINE_MAX + 1];
    size_t used = 0;
    memset(r, 0, sizeof *r);
    for (int n = 0; n < SMTPC_MAX_REPLY_LINES; n++) {
        size_t len;
        enum netc_err e = netc_read_line(c, line, &len);
        if (e != NETC_OK)
            return e;
        if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
            !isdigit((unsigned char)line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-')) {
            snprintf(c->err, sizeof c->err, "not an SMTP reply: \"%.100s\"", line);
            r->code = 0;
            return NETC_ERR_IO;
        }
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (r->nlines > 0 && code != r->code) {
            snprintf(c->err, sizeof c->err, "the reply code changed inside a reply");
            return NETC_ERR_IO;
        }
        r->code = code;
        if (r->nlines < SMTPC_MAX_LINES)
            snprintf(r->lines[r->nlines], sizeof r->lines[0], "%.127s", len > 4 ? line + 4 : "");
        r->nlines++;
        int w = snprintf(r->text + used, sizeof r->text - used, "%s%s", used ? "\n" : "", line);
        if (w > 0)
            used = used + (size_t)w < sizeof r->text ? used + (size_t)w : sizeof r->text - 1;
        if (len == 3 || line[3] == ' ') {
            snprintf(r->last, sizeof r->last, "%s", line);
            return NETC_OK;
        }
    }
    snprintf(c->err, sizeof c->err, "a reply of more than %d lines", SMTPC_MAX_REPLY_LINES);
    return NETC_ERR_TOOLONG;
}

enum netc_err smtpc_cmd(struct netc *c, const char *line, struct smtpc_reply *r)
{
    enum netc_err e = netc_send_line(c, line);
    return e != NETC_OK ? e : smtpc_reply(c, r);
}

int smtpc_has(const struct smtpc_reply *r, const char *keyword)
{
    size_t k = strlen(keyword);
    int n = r->nlines < SMTPC_MAX_LINES ? r->nlines : SMTPC_MAX_LINES;
    for (int i = 1; i < n; i++)
        if (strncasecmp(r->lines[i], keyword, k) == 0 &&
            (r->lines[i][k] == '\0' || r->lines[i][k] == ' ' || r->lines[i][k] == '='))
            return 1;
    return 0;
}

void smtpc_auth_mechs(const struct smtpc_reply *r, char *out, size_t outsz)
{
    out[0] = '\0';
    int n = r->nlines < SMTPC_MAX_LINES ? r->nlines : SMTPC_MAX_LINES;
    for (int i = 1; i < n; i++)
        if (strncasecmp(r->lines[i], "AUTH", 4) == 0 &&
            (r->lines[i][4] == ' ' || r->lines[i][4] == '=')) {
            snprintf(out, outsz, "%s", r->lines[i] + 5);
            return;
        }
}

static int mech_listed(const char *mechs, const char *m)
{
    size_t k = strlen(m);
    for (const char *p = mechs; *p;) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == k && strncasecmp(p, m, k) == 0)
            return 1;
        p += w;
    }
    return 0;
}

enum netc_err smtpc_auth(struct netc *c, const char *mechs, const char *user,
                         const char *password, struct smtpc_reply *r)
{
    size_t ul = strlen(user), pl = strlen(password);
    enum netc_err e;
    if (!mechs[0] || mech_listed(mechs, "PLAIN") || !mech_listed(mechs, "LOGIN")) {
        size_t n = ul + pl + 2;
        char *raw = xmalloc(n);
        raw[0] = '\0';
        memcpy(raw + 1, user, ul);
        raw[ul + 1] = '\0';
        memcpy(raw + ul + 2, password, pl);
        char *b64 = netc_base64(raw, n);
        char *line = xasprintf("AUTH PLAIN %s", b64);
        e = netc_send_masked(c, line, "AUTH PLAIN ********");
        OPENSSL_cleanse(raw, n);
        OPENSSL_cleanse(b64, strlen(b64));
        OPENSSL_cleanse(line, strlen(line));
        free(raw);
        free(b64);
        free(line);
        return e != NETC_OK ? e : smtpc_reply(c, r);
    }
    e = smtpc_cmd(c, "AUTH LOGIN", r);
    if (e != NETC_OK || r->code != 334)
        return e;
    char *u = netc_base64(user, ul);
    e = netc_send_masked(c, u, u);
    free(u);
    if (e == NETC_OK)
        e = smtpc_reply(c, r);
    if (e != NETC_OK || r->code != 334)
        return e;
    char *p = netc_base64(password, pl);
    e = netc_send_masked(c, p, "********");
    OPENSSL_cleanse(p, strlen(p));
    free(p);
    return e != NETC_OK ? e : smtpc_reply(c, r);
}

enum netc_err smtpc_send_data(struct netc *c, const char *msg, size_t len, struct smtpc_reply *r)
{
    struct buf out;
    buf_init(&out, xmul(len, 2) + 16);
    int bol = 1, bad = 0;
    for (size_t i = 0; i < len && !bad; i++) {
        if (bol && msg[i] == '.')
            bad |= buf_append(&out, ".", 1);
        bad |= buf_append(&out, msg + i, 1);
        bol = msg[i] == '\n';
    }
    if (!bol)
        bad |= buf_append(&out, "\r\n", 2);
    bad |= buf_append(&out, ".\r\n", 3);
    if (bad) {
        buf_deinit(&out);
        snprintf(c->err, sizeof c->err, "out of buffer space for the message");
        return NETC_ERR_IO;
    }
    if (c->verbose)
        fprintf(stderr, "C: <message, %zu bytes>\nC: .\n", len);
    int v = c->verbose;
    c->verbose = 0;
    enum netc_err e = netc_write(c, out.data, out.len);
    c->verbose = v;
    buf_deinit(&out);
    return e != NETC_OK ? e : smtpc_reply(c, r);
}

const char *smtpc_why(const struct netc *c, enum netc_err e, const struct smtpc_reply *r)
{
    if (e != NETC_OK)
        return c->err;
    return r->text;
}
