/* compose: the message of `roost send`, built with GMime 3 (see compose.h).
 * Content is handed to GMime with LF line ends; GMime writes the message
 * with CRLF (GMIME_NEWLINE_FORMAT_DOS), so quoted-printable text comes
 * back exactly as CRLF lines and base64 carries every byte unchanged. */
#include "cli/compose.h"
#include "core/xalloc.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest line that may go out as 7bit (RFC 5322 2.1.1: 998). */
#define LINE_7BIT_MAX 998

static const struct {
    const char *ext, *type;
} types[] = {
    {"txt", "text/plain"}, {"text", "text/plain"}, {"log", "text/plain"},
    {"md", "text/markdown"}, {"csv", "text/csv"}, {"html", "text/html"},
    {"htm", "text/html"}, {"css", "text/css"}, {"xml", "text/xml"},
    {"ics", "text/calendar"}, {"vcf", "text/vcard"}, {"patch", "text/x-diff"},
    {"diff", "text/x-diff"}, {"c", "text/x-c"}, {"h", "text/x-c"},
    {"py", "text/x-python"}, {"sh", "text/x-shellscript"}, {"js", "text/javascript"},
    {"json", "application/json"}, {"pdf", "application/pdf"}, {"zip", "application/zip"},
    {"gz", "application/gzip"}, {"tgz", "application/gzip"}, {"tar", "application/x-tar"},
    {"xz", "application/x-xz"}, {"7z", "application/x-7z-compressed"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"rtf", "application/rtf"}, {"eml", "message/rfc822"},
    {"png", "image/png"}, {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"},
    {"gif", "image/gif"}, {"webp", "image/webp"}, {"svg", "image/svg+xml"},
    {"bmp", "image/bmp"}, {"tif", "image/tiff"}, {"tiff", "image/tiff"},
    {"ico", "image/vnd.microsoft.icon"}, {"heic", "image/heic"},
    {"mp3", "audio/mpeg"}, {"wav", "audio/wav"}, {"ogg", "audio/ogg"},
    {"flac", "audio/flac"}, {"m4a", "audio/mp4"}, {"mp4", "video/mp4"},
    {"webm", "video/webm"}, {"mov", "video/quicktime"}, {"avi", "video/x-msvideo"},
};

const char *compose_guess_type(const char *filename)
{
    const char *base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        for (size_t i = 0; i < sizeof types / sizeof *types; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

int compose_utf8_valid(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;           /* continuation bytes */
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* 1 if every line of the LEN bytes ends CRLF (ALLOW_LF: or LF), 0 if
 * there is a bare CR or (without ALLOW_LF) a bare LF. */
static int line_ends_canonical(const char *p, size_t len, int allow_lf)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n'))
            return 0;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r') && !allow_lf)
            return 0;
    }
    return 1;
}

/* 1 if the text is ASCII with lines of at most LINE_7BIT_MAX bytes. */
static int is_7bit(const char *p, size_t len)
{
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)p[i] >= 0x80)
            return 0;
        col = p[i] == '\n' ? 0 : col + 1;
        if (col > LINE_7BIT_MAX)
            return 0;
    }
    return 1;
}

/* A copy of P with every CRLF turned into LF (GMime writes CRLF back). */
static char *crlf_to_lf(const char *p, size_t len, size_t *len_r)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++)
        if (!(p[i] == '\r' && i + 1 < len && p[i + 1] == '\n'))
            out[o++] = p[i];
    out[o] = '\0';
    *len_r = o;
    return out;
}

static void set_content(GMimePart *part, const char *p, size_t len)
{
    GMimeStream *s = g_mime_stream_mem_new_with_buffer(p, len);
    GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(s, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(part, w);
    g_object_unref(w);
    g_object_unref(s);
}

static GMimeObject *body_part(const struct compose *m, char *err, size_t errsz)
{
    if (!compose_utf8_valid(m->body, m->body_len)) {
        snprintf(err, errsz, "the message text is not valid UTF-8");
        return NULL;
    }
    size_t len;
    char *lf = crlf_to_lf(m->body, m->body_len, &len);
    GMimeTextPart *tp = g_mime_text_part_new_with_subtype("plain");
    set_content(GMIME_PART(tp), lf, len);
    g_mime_text_part_set_charset(tp, is_7bit(lf, len) ? "us-ascii" : "utf-8");
    g_mime_part_set_content_encoding(GMIME_PART(tp), is_7bit(lf, len)
                                                         ? GMIME_CONTENT_ENCODING_7BIT
                                                         : GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    free(lf);
    return GMIME_OBJECT(tp);
}

/* Reads a whole regular file (at most MAX bytes). */
static char *read_file(const char *path, size_t max, size_t *len_r, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "cannot attach %s: %s", path, f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    if ((unsigned long long)st.st_size > max) {
        snprintf(err, errsz, "cannot attach %s: the attachments are larger than %u MB", path,
                 COMPOSE_MAX_TOTAL / (1024 * 1024));
        fclose(f);
        return NULL;
    }
    char *p = xmalloc((size_t)st.st_size + 1);
    size_t n = fread(p, 1, (size_t)st.st_size, f);
    int bad = ferror(f) || n != (size_t)st.st_size;
    fclose(f);
    if (bad) {
        snprintf(err, errsz, "cannot read %s", path);
        free(p);
        return NULL;
    }
    *len_r = n;
    return p;
}

static GMimeObject *attachment_part(const char *path, size_t *budget, char *err, size_t errsz)
{
    size_t len;
    char *data = read_file(path, *budget, &len, err, errsz);
    if (!data)
        return NULL;
    *budget -= len;
    const char *type = compose_guess_type(path);
    char major[64];
    size_t sl = strcspn(type, "/");
    snprintf(major, sizeof major, "%.*s", (int)sl, type);
    GMimePart *part = g_mime_part_new_with_type(major, type + sl + 1);
    const char *base = strrchr(path, '/');
    g_mime_part_set_filename(part, base ? base + 1 : path);
    int text = strcmp(major, "text") == 0 && compose_utf8_valid(data, len) &&
               line_ends_canonical(data, len, 0);
    if (text) {
        size_t lflen;
        char *lf = crlf_to_lf(data, len, &lflen);
        set_content(part, lf, lflen);
        g_mime_object_set_content_type_parameter(GMIME_OBJECT(part), "charset",
                                                 is_7bit(lf, lflen) ? "us-ascii" : "utf-8");
        g_mime_part_set_content_encoding(part, is_7bit(lf, lflen)
                                                   ? GMIME_CONTENT_ENCODING_7BIT
                                                   : GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
        free(lf);
    } else {
        set_content(part, data, len);
        g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
    }
    free(data);
    return GMIME_OBJECT(part);
}

static int add_addresses(GMimeMessage *msg, GMimeAddressType type, const char *const *list,
                         int n, char *err, size_t errsz)
{
    InternetAddressList *dst = g_mime_message_get_addresses(msg, type);
    for (int i = 0; i < n; i++) {
        InternetAddressList *l = internet_address_list_parse(NULL, list[i]);
        if (!l || internet_address_list_length(l) == 0) {
            snprintf(err, errsz, "not an address: \"%.200s\"", list[i]);
            if (l)
                g_object_unref(l);
            return -1;
        }
        internet_address_list_append(dst, l);
        g_object_unref(l);
    }
    return 0;
}

/* The domain of the From: address, for the Message-ID. */
static char *from_domain(const char *from)
{
    const char *at = strrchr(from, '@');
    if (!at)
        return xstrdup("localhost");
    size_t n = strcspn(at + 1, "> \t");
    return n ? xstrndup(at + 1, n) : xstrdup("localhost");
}

int compose_message(const struct compose *m, char **out_r, size_t *len_r, char *err, size_t errsz)
{
    if (m->nattach > COMPOSE_MAX_ATTACH) {
        snprintf(err, errsz, "more than %d attachments", COMPOSE_MAX_ATTACH);
        return -1;
    }
    if (m->body_len > COMPOSE_MAX_TOTAL) {
        snprintf(err, errsz, "the message text is larger than %u MB",
                 COMPOSE_MAX_TOTAL / (1024 * 1024));
        return -1;
    }
    GMimeMessage *msg = g_mime_message_new(TRUE);
    GMimeObject *body = NULL;
    GMimeMultipart *mixed = NULL;
    int rc = -1;
    if (add_addresses(msg, GMIME_ADDRESS_TYPE_FROM, &m->from, 1, err, errsz) < 0 ||
        add_addresses(msg, GMIME_ADDRESS_TYPE_TO, m->to, m->nto, err, errsz) < 0 ||
        add_addresses(msg, GMIME_ADDRESS_TYPE_CC, m->cc, m->ncc, err, errsz) < 0)
        goto out;
    g_mime_message_set_subject(msg, m->subject ? m->subject : "", "utf-8");
    GDateTime *now = g_date_time_new_now_local();
    g_mime_message_set_date(msg, now);
    g_date_time_unref(now);
    char *domain = from_domain(m->from);
    char *mid = g_mime_utils_generate_message_id(domain);
    g_mime_message_set_message_id(msg, mid);
    g_free(mid);
    free(domain);
    body = body_part(m, err, errsz);
    if (!body)
        goto out;
    if (m->nattach > 0) {
        mixed = g_mime_multipart_new_with_subtype("mixed");
        g_mime_multipart_add(mixed, body);
        size_t budget = COMPOSE_MAX_TOTAL - m->body_len;
        for (int i = 0; i < m->nattach; i++) {
            GMimeObject *a = attachment_part(m->attach[i], &budget, err, errsz);
            if (!a)
                goto out;
            g_mime_multipart_add(mixed, a);
            g_object_unref(a);
        }
        g_mime_message_set_mime_part(msg, GMIME_OBJECT(mixed));
    } else {
        g_mime_message_set_mime_part(msg, body);
    }
    GMimeFormatOptions *fo = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
    GMimeStream *ms = g_mime_stream_mem_new();
    g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, ms);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
    *out_r = xmalloc(ba->len + 1);
    memcpy(*out_r, ba->data, ba->len);
    (*out_r)[ba->len] = '\0';
    *len_r = ba->len;
    g_object_unref(ms);
    g_mime_format_options_free(fo);
    rc = 0;
out:
    if (mixed)
        g_object_unref(mixed);
    if (body)
        g_object_unref(body);
    g_object_unref(msg);
    return rc;
}
