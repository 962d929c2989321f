/* imap_cmds: the commands valid in any state and the session-wide ones:
 * CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE
 * (RFC 2342), IDLE (RFC 2177) and CHECK; the capability list per state. */
#include "imap/imap_int.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Advertised once logged in (and, before, what a client may need to know
 * to log in). */
static const char caps_common[] = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE";
static const char caps_logged_in[] =
    " NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED"
    " LIST-STATUS ESEARCH SEARCHRES WITHIN CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE"
    " STATUS=SIZE UTF8=ACCEPT BINARY";

void imap_capability_string(struct imap_session *s, struct buf *out)
{
    int ok = buf_append(out, caps_common, strlen(caps_common));
    if (s->state == IMAP_ST_AUTH || s->state == IMAP_ST_SELECTED) {
        ok |= buf_append(out, caps_logged_in, strlen(caps_logged_in));
        ok |= buf_appendf(out, " APPENDLIMIT=%zu", imap_append_limit(s));
        if (!s->compressed)
            ok |= buf_append(out, " COMPRESS=DEFLATE", 17);
    } else if (!imap_is_tls(s)) {
        ok |= buf_append(out, " STARTTLS LOGINDISABLED", 23);
    } else {
        ok |= buf_append(out, " AUTH=PLAIN AUTH=LOGIN", 22);
    }
    (void)ok; /* OUT is sized for the whole list */
}

void imap_cmd_capability(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "CAPABILITY takes no arguments");
        return;
    }
    struct buf b;
    buf_init(&b, 4096);
    imap_capability_string(s, &b);
    imap_untagged(s, "CAPABILITY %s", b.data ? b.data : "");
    buf_deinit(&b);
    imap_ok(s, "CAPABILITY completed");
}

static void noop_synced(struct imap_session *s)
{
    imap_ok(s, "NOOP completed");
}

void imap_cmd_noop(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "NOOP takes no arguments");
        return;
    }
    /* a poll: look at the store even without a notification */
    if (s->sel)
        s->dirty = 1;
    noop_synced(s);
}

void imap_cmd_check(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "CHECK takes no arguments");
        return;
    }
    s->dirty = 1;
    imap_ok(s, "CHECK completed");
}

void imap_cmd_logout(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "LOGOUT takes no arguments");
        return;
    }
    imap_untagged(s, "BYE Logging out");
    imap_ok_nosync(s, "LOGOUT completed");
    imap_close(s, NULL);
}

/* RFC 2971: NIL or a list of at most 30 field/value pairs. */
void imap_cmd_id(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 1 || (c->args[0].type != IMAP_ARG_NIL && c->args[0].type != IMAP_ARG_LIST)) {
        imap_bad(s, "ID takes NIL or a list of field/value pairs");
        return;
    }
    const struct imap_arg *l = &c->args[0];
    if (l->type == IMAP_ARG_LIST) {
        if (l->nlist % 2 != 0 || l->nlist / 2 > IMAP_MAX_ID_FIELDS) {
            imap_bad(s, "Invalid ID field list");
            return;
        }
        char client[128] = "";
        for (int i = 0; i < l->nlist; i += 2) {
            const char *k, *v;
            if (l->list[i].type == IMAP_ARG_LIST || l->list[i + 1].type == IMAP_ARG_LIST ||
                !imap_arg_astring(&l->list[i], &k, NULL)) {
                imap_bad(s, "Invalid ID field list");
                return;
            }
            if (strcasecmp(k, "name") == 0 && imap_arg_astring(&l->list[i + 1], &v, NULL))
                for (size_t n = 0; v[n] && n + 1 < sizeof client; n++)
                    client[n] = (v[n] >= 0x20 && v[n] < 0x7f && v[n] != '"') ? v[n] : '?';
        }
        log_info("imap", "event=id session=%s client=%s name=\"%s\"", s->id, s->peer, client);
    }
    imap_untagged(s, "ID (\"name\" \"Roost\" \"vendor\" \"Roost\" \"support-url\" "
                     "\"https://roost.example/\")");
    imap_ok(s, "ID completed");
}

void imap_cmd_enable(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs < 1) {
        imap_bad(s, "ENABLE needs at least one capability");
        return;
    }
    char enabled[256] = "";
    for (int i = 0; i < c->nargs; i++) {
        const struct imap_arg *a = &c->args[i];
        if (a->type != IMAP_ARG_ATOM) {
            imap_bad(s, "Invalid capability name");
            return;
        }
        unsigned bit = 0;
        const char *name = NULL;
        if (strcasecmp(a->str, "CONDSTORE") == 0) {
            bit = IMAP_EN_CONDSTORE;
            name = "CONDSTORE";
        } else if (strcasecmp(a->str, "QRESYNC") == 0) {
            bit = IMAP_EN_QRESYNC | IMAP_EN_CONDSTORE;
            name = "QRESYNC";
        } else if (strcasecmp(a->str, "IMAP4rev2") == 0) {
            bit = IMAP_EN_REV2;
            name = "IMAP4rev2";
        } else if (strcasecmp(a->str, "UTF8=ACCEPT") == 0) {
            bit = IMAP_EN_UTF8;
            name = "UTF8=ACCEPT";
        }
        if (!name || (s->enabled & bit) == bit)
            continue; /* unknown or already on: not listed (RFC 5161 3.1) */
        s->enabled |= bit;
        size_t len = strlen(enabled);
        snprintf(enabled + len, sizeof enabled - len, " %s", name);
    }
    imap_untagged(s, "ENABLED%s", enabled);
    imap_ok(s, "ENABLE completed");
}

void imap_cmd_namespace(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "NAMESPACE takes no arguments");
        return;
    }
    imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
    imap_ok(s, "NAMESPACE completed");
}

/* ---- IDLE ---- */

void imap_cmd_idle(struct imap_session *s, struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(s, "IDLE takes no arguments");
        return;
    }
    snprintf(s->idle_tag, sizeof s->idle_tag, "%s", c->tag);
    s->mode = IMAP_IN_IDLE;
    s->idle_done = 0;
    imap_continuation(s, "idling");
    /* IDLE may last as long as the autologout timer (RFC 2177 3) */
    imap_session_timeouts(s);
    if (s->sel)
        s->dirty = 1; /* report what happened before IDLE at once */
}

static void idle_synced(struct imap_session *s)
{
    (void)s; /* the untagged responses are written; keep idling */
}

void imap_idle_sync(struct imap_session *s)
{
    imap_sync(s, 0, idle_synced);
}

void imap_idle_line(struct imap_session *s, const char *line, size_t len)
{
    s->mode = IMAP_IN_COMMAND;
    s->idle_tag[0] = '\0';
    if (line && len == 4 && strncasecmp(line, "DONE", 4) == 0) {
        imap_ok(s, "IDLE terminated");
        return;
    }
    imap_bad(s, "Expected DONE to end IDLE");
}
