/* dsn: RFC 3464 delivery status notifications (see dsn.h). Written by hand
 * rather than with GMime: the layout is fixed, every part is 7-bit text we
 * produce ourselves, and a pure function is easy to test byte for byte. */
#include "queue/dsn.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <string.h>

#define DSN_MAX (1024 * 1024)   /* 64 KiB of header + about 50 recipients, with room */
#define DSN_MAX_HEADER (64 * 1024)   /* of the original message, quoted */
#define DSN_MAX_VALUE 900            /* one field value, before folding */

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void dsn_format_date(time_t t, char *out, size_t outsz)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, outsz, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d +0000", wdays[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

/* S made safe for one header line: controls and line breaks become spaces,
 * runs of spaces collapse, non-ASCII bytes become '?', at most MAX bytes. */
static void clean(char *out, size_t outsz, const char *s, size_t max)
{
    size_t o = 0;
    int space = 0;
    if (outsz == 0)
        return;
    for (size_t i = 0; s && s[i] && o + 1 < outsz && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < ' ' || c == 0x7f) {
            if (!space && o > 0)
                out[o++] = ' ';
            space = 1;
            continue;
        }
        if (c == ' ') {
            if (space)
                continue;
            space = 1;
        } else {
            space = 0;
        }
        out[o++] = c >= 0x80 ? '?' : (char)c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* Appends "Name: value" folded at spaces to lines of about 78 characters. */
static int put_field(struct buf *b, const char *name, const char *value)
{
    size_t col = strlen(name) + 2;
    if (buf_appendf(b, "%s: ", name) < 0)
        return -1;
    const char *p = value;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t wl = sp ? (size_t)(sp - p) : strlen(p);
        if (col + wl > 78 && col > strlen(name) + 2) {
            if (buf_append(b, "\r\n ", 3) < 0)
                return -1;
            col = 1;
        }
        if (buf_append(b, p, wl) < 0)
            return -1;
        col += wl;
        p += wl;
        if (*p == ' ') {
            p++;
            if (*p) {
                if (buf_append(b, " ", 1) < 0)
                    return -1;
                col++;
            }
        }
    }
    return buf_append(b, "\r\n", 2);
}

/* The host name part of "mx.example.com [192.0.2.1]". */
static void host_name(char *out, size_t outsz, const char *remote)
{
    clean(out, outsz, remote, 300);
    char *br = strstr(out, " [");
    if (br && br != out)
        *br = '\0';
}

static int human_part(struct buf *b, const struct dsn_input *in)
{
    char until[64], host[256];
    clean(host, sizeof host, in->hostname, 255);
    int rc = buf_appendf(b, "This is the mail system at host %s.\r\n\r\n", host);
    if (in->kind == DSN_FAILED) {
        rc |= buf_appendf(b, "Your message could not be delivered to %s. "
                             "It will not be tried again. Its header is attached below.\r\n",
                          in->nrcpt == 1 ? "one recipient" : "some recipients");
    } else {
        dsn_format_date(in->retry_until, until, sizeof until);
        rc |= buf_appendf(b, "Your message has not been delivered yet to %s. This is only "
                             "a warning: you do not need to send it again. The mail system "
                             "will keep trying until %s; if it still cannot deliver it by "
                             "then, you will get another notice.\r\n",
                          in->nrcpt == 1 ? "one recipient" : "some recipients", until);
    }
    for (int i = 0; i < in->nrcpt && rc == 0; i++) {
        const struct dsn_rcpt *r = &in->rcpts[i];
        char addr[600], reply[DSN_MAX_VALUE + 1], rhost[320];
        clean(addr, sizeof addr, r->address, 512);
        clean(reply, sizeof reply, r->reply, DSN_MAX_VALUE);
        rc |= buf_appendf(b, "\r\n<%s>\r\n", addr);
        if (r->expired)
            rc |= buf_appendf(b, "    The message stayed in the queue too long without being "
                                 "delivered; the mail system gave up.\r\n");
        if (r->by_admin)
            rc |= buf_appendf(b, "    The mail administrator returned the message before it "
                                 "could be delivered.\r\n");
        if (r->remote_host && reply[0]) {
            clean(rhost, sizeof rhost, r->remote_host, 300);
            rc |= buf_appendf(b, "    The receiving server %s answered:\r\n    %s\r\n", rhost,
                              reply);
        } else if (reply[0]) {
            rc |= buf_appendf(b, "    %s %s\r\n",
                              r->expired || r->by_admin || in->kind == DSN_DELAYED
                                  ? "The last problem was:"
                                                                    : "Reason:", reply);
        }
    }
    if (in->kind == DSN_FAILED)
        rc |= buf_appendf(b, "\r\nWhat to do: check the address for typing mistakes and "
                             "send the message again. If the address is right, the problem "
                             "is on the receiving side: reach the recipient another way, or "
                             "forward this notice to your mail administrator.\r\n");
    else
        rc |= buf_appendf(b, "\r\nWhat to do: nothing yet. If the message is urgent, reach "
                             "the recipient another way.\r\n");
    return rc;
}

static int status_part(struct buf *b, const struct dsn_input *in)
{
    char date[64], host[256];
    clean(host, sizeof host, in->hostname, 255);
    dsn_format_date(in->arrived, date, sizeof date);
    int rc = buf_appendf(b, "Reporting-MTA: dns; %s\r\nX-Roost-Queue-ID: %s\r\n"
                            "Arrival-Date: %s\r\n", host, in->queue_id, date);
    for (int i = 0; i < in->nrcpt && rc == 0; i++) {
        const struct dsn_rcpt *r = &in->rcpts[i];
        char addr[600], status[16], value[DSN_MAX_VALUE + 64], reply[DSN_MAX_VALUE + 1];
        clean(addr, sizeof addr, r->address, 512);
        clean(status, sizeof status, r->status, 15);
        if (!status[0] || strspn(status, "0123456789.") != strlen(status))
            snprintf(status, sizeof status, "%s", in->kind == DSN_FAILED ? "5.0.0" : "4.0.0");
        rc |= buf_appendf(b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n",
                          addr, in->kind == DSN_FAILED ? "failed" : "delayed", status);
        if (r->remote_host) {
            char rh[320];
            host_name(rh, sizeof rh, r->remote_host);
            if (rh[0])
                rc |= buf_appendf(b, "Remote-MTA: dns; %s\r\n", rh);
        }
        clean(reply, sizeof reply, r->reply, DSN_MAX_VALUE);
        if (reply[0]) {
            char code[16];
            snprintf(code, sizeof code, "%d", r->code);
            if (r->code > 0 && strncmp(reply, code, strlen(code)) == 0)
                snprintf(value, sizeof value, "smtp; %s", reply);
            else if (r->code > 0)
                snprintf(value, sizeof value, "smtp; %s %s %s", code, status, reply);
            else
                snprintf(value, sizeof value, "X-Roost; %s", reply);
            rc |= put_field(b, "Diagnostic-Code", value);
        }
        if (r->last_attempt_ms > 0) {
            dsn_format_date((time_t)(r->last_attempt_ms / 1000), date, sizeof date);
            rc |= buf_appendf(b, "Last-Attempt-Date: %s\r\n", date);
        }
        if (in->kind == DSN_DELAYED) {
            dsn_format_date(in->retry_until, date, sizeof date);
            rc |= buf_appendf(b, "Will-Retry-Until: %s\r\n", date);
        }
    }
    return rc;
}

/* The original header (up to the empty line), CRLF line ends, bounded at a
 * line end; bytes that are not 7-bit become '?'. */
static int headers_part(struct buf *b, const char *msg, size_t len)
{
    size_t off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        const char *nl = memchr(msg + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (msg + off)) : len - off;
        size_t vis = n > 0 && msg[off + n - 1] == '\r' ? n - 1 : n;
        if (vis == 0)
            break;   /* the end of the header */
        if (off + n > DSN_MAX_HEADER)
            break;
        for (size_t i = 0; i < vis && rc == 0; i++) {
            unsigned char c = (unsigned char)msg[off + i];
            char ch = c >= 0x80 || (c < ' ' && c != '\t') ? '?' : (char)c;
            rc = buf_append(b, &ch, 1);
        }
        rc |= buf_append(b, "\r\n", 2);
        off += n + 1;
    }
    return rc;
}

char *dsn_compose(const struct dsn_input *in, size_t *len_r)
{
    struct buf b;
    buf_init(&b, DSN_MAX);
    char date[64], host[256], sender[600], boundary[96];
    clean(host, sizeof host, in->hostname, 255);
    clean(sender, sizeof sender, in->sender, 512);
    dsn_format_date(in->now, date, sizeof date);
    snprintf(boundary, sizeof boundary, "=_roost/%s/%lld/%s", in->queue_id, (long long)in->now,
             in->kind == DSN_FAILED ? "failed" : "delayed");
    int rc = buf_appendf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host);
    rc |= buf_appendf(&b, "To: <%s>\r\n", sender);
    rc |= buf_appendf(&b, "Subject: %s\r\n", in->kind == DSN_FAILED
                                                 ? "Undelivered Mail Returned to Sender"
                                                 : "Delayed Mail (still being retried)");
    rc |= buf_appendf(&b, "Date: %s\r\nMessage-ID: <%s.%lld.%s@%s>\r\n", date, in->queue_id,
                      (long long)in->now, in->kind == DSN_FAILED ? "failed" : "delayed", host);
    rc |= buf_appendf(&b, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                          "\tboundary=\"%s\"\r\n\r\n"
                          "This is a MIME-encapsulated message.\r\n\r\n", boundary);
    rc |= buf_appendf(&b, "--%s\r\nContent-Description: Notification\r\n"
                          "Content-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
    rc |= human_part(&b, in);
    rc |= buf_appendf(&b, "\r\n--%s\r\nContent-Description: Delivery report\r\n"
                          "Content-Type: message/delivery-status\r\n\r\n", boundary);
    rc |= status_part(&b, in);
    rc |= buf_appendf(&b, "\r\n--%s\r\nContent-Description: Undelivered Message Headers\r\n"
                          "Content-Type: text/rfc822-headers\r\n\r\n", boundary);
    rc |= headers_part(&b, in->message ? in->message : "", in->message ? in->message_len : 0);
    rc |= buf_appendf(&b, "\r\n--%s--\r\n", boundary);
    if (rc != 0) {
        buf_deinit(&b);
        return NULL;
    }
    return buf_steal(&b, len_r);
}
