/* pickup_file: writing and strictly parsing the envelope of a pickup file
 * (format in pickup_file.h). The parser walks the bytes with explicit
 * bounds: the envelope is at most PICKUP_MAX_ENVELOPE bytes, lines must be
 * LF-terminated, and anything unexpected fails the whole file. */
#include "queue/pickup_file.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

int pickup_addr_valid(const char *a, size_t len, int need_at)
{
    if (len == 0 || len > PICKUP_ADDR_MAX)
        return 0;
    int ats = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '\\')
            return 0;
        ats += c == '@';
    }
    if (!need_at)
        return 1;
    return ats >= 1 && a[0] != '@' && a[len - 1] != '@';
}

void pickup_env_free(struct pickup_env *env)
{
    free(env->sender);
    for (int i = 0; i < env->nrcpt; i++)
        free(env->rcpts[i]);
    free(env->rcpts);
    memset(env, 0, sizeof *env);
}

int pickup_parse(const char *data, size_t len, struct pickup_env *env, const char **error_r)
{
    size_t ml = strlen(PICKUP_MAGIC);
    memset(env, 0, sizeof *env);
    if (len < ml || memcmp(data, PICKUP_MAGIC, ml) != 0) {
        *error_r = "not a pickup file (bad magic)";
        return -1;
    }
    size_t pos = ml;
    size_t limit = len < PICKUP_MAX_ENVELOPE ? len : PICKUP_MAX_ENVELOPE;
    for (;;) {
        const char *nl = pos < limit ? memchr(data + pos, '\n', limit - pos) : NULL;
        if (!nl) {
            *error_r = "envelope not terminated";
            goto bad;
        }
        size_t ll = (size_t)(nl - (data + pos));
        if (ll == 0) {
            pos++;
            break;
        }
        if (ll < 3 || data[pos + 1] != ' ' || (data[pos] != 'S' && data[pos] != 'R')) {
            *error_r = "bad envelope line";
            goto bad;
        }
        const char *a = data + pos + 2;
        size_t al = ll - 2;
        if (data[pos] == 'S') {
            if (env->sender || !pickup_addr_valid(a, al, 1)) {
                *error_r = "bad or repeated sender";
                goto bad;
            }
            env->sender = xstrndup(a, al);
        } else {
            if (env->nrcpt >= PICKUP_MAX_RCPTS || !pickup_addr_valid(a, al, 1)) {
                *error_r = "bad recipient or too many recipients";
                goto bad;
            }
            env->rcpts = xrealloc(env->rcpts, xmul((size_t)env->nrcpt + 1, sizeof *env->rcpts));
            env->rcpts[env->nrcpt++] = xstrndup(a, al);
        }
        pos += ll + 1;
    }
    if (env->nrcpt == 0) {
        *error_r = "no recipients";
        goto bad;
    }
    env->msg_off = pos;
    return 0;
bad:
    pickup_env_free(env);
    return -1;
}

char *pickup_format(const char *sender, const char *const *rcpts, int nrcpt, size_t *len_r)
{
    if (nrcpt < 1 || nrcpt > PICKUP_MAX_RCPTS ||
        (sender && !pickup_addr_valid(sender, strlen(sender), 1)))
        return NULL;
    struct buf b;
    buf_init(&b, PICKUP_MAX_ENVELOPE);
    int bad = buf_append(&b, PICKUP_MAGIC, strlen(PICKUP_MAGIC));
    if (sender)
        bad |= buf_appendf(&b, "S %s\n", sender);
    for (int i = 0; i < nrcpt && !bad; i++) {
        if (!pickup_addr_valid(rcpts[i], strlen(rcpts[i]), 1))
            bad = -1;
        else
            bad |= buf_appendf(&b, "R %s\n", rcpts[i]);
    }
    bad |= buf_append(&b, "\n", 1);
    if (bad) {
        buf_deinit(&b);
        return NULL;
    }
    return buf_steal(&b, len_r);
}

char *pickup_normalize(const char *p, size_t len, size_t *len_r)
{
    char *out = xmalloc(xmul(len, 2) + 3);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r' || p[i] == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
            if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
                i++;
        } else {
            out[o++] = p[i];
        }
    }
    if (o > 0 && out[o - 1] != '\n') {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    out[o] = '\0';
    *len_r = o;
    return out;
}
