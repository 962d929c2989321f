/* smtp_parse: the SMTP command-line parsers (see smtp_parse.h).
 *
 * Everything here reads through a bounded cursor (struct cur) that cannot run
 * past the LEN bytes it was given; there is no pointer arithmetic on protocol
 * data outside the cursor helpers. The path grammar is RFC 5321 4.1.2 with the
 * RFC 6531 extensions (UTF8-non-ascii in atext, qtextSMTP, sub-domain and
 * esmtp-value); UTF-8 is validated strictly (no overlongs, no surrogates,
 * nothing above U+10FFFF). Parsing is strict on paths (a missing bracket, a
 * trailing dot, "a..b" are refused) and lenient on EHLO, where refusing real
 * clients gains nothing.
 *
 * Order of errors for MAIL/RCPT: path syntax, path lengths, parameters (in
 * order), then NEED_UTF8 (because the SMTPUTF8 parameter follows the path). */
#include "smtp/smtp_parse.h"

#include <arpa/inet.h>
#include <string.h>

struct cur {
    const unsigned char *p;
    size_t len;
    size_t pos;
};

static int cur_peek(const struct cur *c);
static int cur_eat(struct cur *c, int ch);
static int cur_eat_ci(struct cur *c, const char *s);
static size_t cur_spaces(struct cur *c);
static int is_alpha(int c);
static int is_digit(int c);
static int is_alnum(int c);
static int to_upper(int c);
static int is_atext(int c);
static int eq_ci(const unsigned char *p, size_t n, const char *s);
static size_t utf8_seq(const unsigned char *p, size_t n);
static int cur_utf8(struct cur *c, int *nonascii);
static int parse_domain(struct cur *c, int *nonascii);
static int ipv4_valid(const unsigned char *p, size_t n);
static int addr_literal_valid(const unsigned char *p, size_t n);
static int parse_addr_literal(struct cur *c);
static int parse_local(struct cur *c, int *nonascii);
static enum smtp_perr parse_path(struct cur *c, int null_ok, int postmaster_ok, int *nonascii,
                                 size_t *mb_start, size_t *mb_len, int *postmaster_r);
static int next_param(struct cur *c, size_t *key, size_t *keylen, size_t *val, size_t *vallen,
                      int *has_val);
static int parse_ull(const unsigned char *p, size_t n, unsigned long long *v_r);
static int xtext_valid(const unsigned char *p, size_t n);
static enum smtp_perr mail_param(const struct cur *c, size_t key, size_t keylen, size_t val,
                                 size_t vallen, int has_val, struct smtp_mail_params *p,
                                 int *seen);

/* ---- cursor and character classes ---- */

static int cur_peek(const struct cur *c)
{
    return c->pos < c->len ? c->p[c->pos] : -1;
}

static int cur_eat(struct cur *c, int ch)
{
    if (cur_peek(c) != ch)
        return 0;
    c->pos++;
    return 1;
}

/* Consumes S (ASCII, matched case-insensitively) if it comes next. */
static int cur_eat_ci(struct cur *c, const char *s)
{
    size_t n = strlen(s);
    if (c->len - c->pos < n || !eq_ci(c->p + c->pos, n, s))
        return 0;
    c->pos += n;
    return 1;
}

static size_t cur_spaces(struct cur *c)
{
    size_t n = 0;
    while (cur_eat(c, ' '))
        n++;
    return n;
}

static int is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int to_upper(int c)
{
    return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
}

/* RFC 5322 atext, ASCII part. */
static int is_atext(int c)
{
    if (is_alnum(c))
        return 1;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
        return 1;
    default:
        return 0;
    }
}

/* P (N bytes) equals the ASCII string S, ignoring ASCII case. */
static int eq_ci(const unsigned char *p, size_t n, const char *s)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (to_upper(p[i]) != to_upper((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Length (2..4) of the valid non-ASCII UTF-8 sequence at P, or 0 (RFC 3629). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned b0 = p[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        if (b0 == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b0 == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        if (b0 == 0xF0)
            lo = 0x90; /* overlong */
        else if (b0 == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need;
}

/* 1: consumed one valid UTF-8 character (sets *NONASCII); 0: next byte is not
 * non-ASCII; -1: invalid UTF-8. */
static int cur_utf8(struct cur *c, int *nonascii)
{
    if (cur_peek(c) < 0x80)
        return 0;
    size_t k = utf8_seq(c->p + c->pos, c->len - c->pos);
    if (k == 0)
        return -1;
    c->pos += k;
    *nonascii = 1;
    return 1;
}

/* ---- RFC 5321 4.1.2 / 4.1.3 ---- */

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str],
 * or (RFC 6531) a U-label, flagged in *NONASCII. 0 or -1. */
static int parse_domain(struct cur *c, int *nonascii)
{
    for (;;) {
        size_t start = c->pos;
        int hyphen = 0;
        for (;;) {
            int ch = cur_peek(c);
            if (is_alnum(ch)) {
                c->pos++;
                hyphen = 0;
            } else if (ch == '-' && c->pos != start) {
                c->pos++;
                hyphen = 1;
            } else {
                int u = cur_utf8(c, nonascii);
                if (u < 0)
                    return -1;
                if (u == 0)
                    break;
                hyphen = 0;
            }
        }
        if (c->pos == start || hyphen)
            return -1;
        if (!cur_eat(c, '.'))
            return 0;
    }
}

/* IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT, 0..255. */
static int ipv4_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || p[i] != '.')
                return 0;
            i++;
        }
        unsigned v = 0;
        size_t digits = 0;
        while (i < n && is_digit(p[i]) && digits < 3) {
            v = v * 10 + (unsigned)(p[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || v > 255)
            return 0;
    }
    return i == n;
}

/* The inside of "[...]": IPv4, or "IPv6:" IPv6-addr. General-address-literal
 * tags would need an IANA registration; none exists, so they are refused. */
static int addr_literal_valid(const unsigned char *p, size_t n)
{
    if (ipv4_valid(p, n))
        return 1;
    if (n <= 5 || !eq_ci(p, 5, "IPv6:"))
        return 0;
    char tmp[INET6_ADDRSTRLEN + 1];
    size_t an = n - 5;
    if (an >= sizeof tmp)
        return 0;
    for (size_t i = 0; i < an; i++) {
        unsigned char ch = p[5 + i];
        if (!(is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
              ch == ':' || ch == '.'))
            return 0;
        tmp[i] = (char)ch;
    }
    tmp[an] = '\0';
    unsigned char addr[16];
    return inet_pton(AF_INET6, tmp, addr) == 1;
}

/* address-literal = "[" ... "]". 0 or -1. */
static int parse_addr_literal(struct cur *c)
{
    if (!cur_eat(c, '['))
        return -1;
    size_t start = c->pos;
    for (;;) {
        int ch = cur_peek(c);
        if (ch < 0 || ch == '[')
            return -1;
        if (ch == ']')
            break;
        c->pos++;
    }
    size_t end = c->pos;
    c->pos++;
    return addr_literal_valid(c->p + start, end - start) ? 0 : -1;
}

/* Local-part = Dot-string / Quoted-string (quotes kept by the caller's span).
 * QcontentSMTP = qtextSMTP / quoted-pairSMTP; quoted-pairSMTP = "\" %d32-126. */
static int parse_local(struct cur *c, int *nonascii)
{
    if (cur_eat(c, '"')) {
        for (;;) {
            int ch = cur_peek(c);
            if (ch == '"') {
                c->pos++;
                return 0;
            }
            if (ch == '\\') {
                c->pos++;
                ch = cur_peek(c);
                if (ch < 32 || ch > 126)
                    return -1;
                c->pos++;
            } else if (ch >= 32 && ch <= 126) {
                c->pos++;
            } else if (cur_utf8(c, nonascii) <= 0) {
                return -1; /* end of input, control character, invalid UTF-8 */
            }
        }
    }
    for (;;) {
        size_t start = c->pos;
        for (;;) {
            if (is_atext(cur_peek(c))) {
                c->pos++;
                continue;
            }
            int u = cur_utf8(c, nonascii);
            if (u < 0)
                return -1;
            if (u == 0)
                break;
        }
        if (c->pos == start)
            return -1;
        if (!cur_eat(c, '.'))
            return 0;
    }
}

/* Path = "<" [ A-d-l ":" ] Mailbox ">", or "<>" when NULL_OK, or
 * "<Postmaster>" when POSTMASTER_OK. The mailbox span (source route
 * dropped) goes to MB_START/MB_LEN. */
static enum smtp_perr parse_path(struct cur *c, int null_ok, int postmaster_ok, int *nonascii,
                                 size_t *mb_start, size_t *mb_len, int *postmaster_r)
{
    size_t path_start = c->pos;
    *mb_start = *mb_len = 0;
    *postmaster_r = 0;
    if (!cur_eat(c, '<'))
        return SMTP_PERR_SYNTAX;
    if (cur_eat(c, '>'))
        return null_ok ? SMTP_PERR_OK : SMTP_PERR_SYNTAX;
    if (postmaster_ok && cur_eat_ci(c, "postmaster>")) {
        *postmaster_r = 1;
        return SMTP_PERR_OK;
    }
    if (cur_peek(c) == '@') {
        /* A-d-l = At-domain *( "," At-domain ): accepted and ignored */
        do {
            if (!cur_eat(c, '@') || parse_domain(c, nonascii) < 0)
                return SMTP_PERR_SYNTAX;
        } while (cur_eat(c, ','));
        if (!cur_eat(c, ':'))
            return SMTP_PERR_SYNTAX;
    }
    size_t lstart = c->pos;
    if (parse_local(c, nonascii) < 0)
        return SMTP_PERR_SYNTAX;
    size_t llen = c->pos - lstart;
    if (!cur_eat(c, '@'))
        return SMTP_PERR_SYNTAX;
    size_t dstart = c->pos;
    if (cur_peek(c) == '[') {
        if (parse_addr_literal(c) < 0)
            return SMTP_PERR_SYNTAX;
    } else if (parse_domain(c, nonascii) < 0) {
        return SMTP_PERR_SYNTAX;
    }
    size_t dlen = c->pos - dstart;
    if (!cur_eat(c, '>'))
        return SMTP_PERR_SYNTAX;
    if (llen > SMTP_MAX_LOCALPART || dlen > SMTP_MAX_DOMAIN ||
        c->pos - path_start > SMTP_MAX_PATH)
        return SMTP_PERR_PATH_TOO_LONG;
    *mb_start = lstart;
    *mb_len = c->pos - 1 - lstart;
    return SMTP_PERR_OK;
}

/* ---- parameters ---- */

/* esmtp-param = esmtp-keyword ["=" esmtp-value], preceded by one or more
 * spaces. esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-");
 * esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii).
 * Returns 1 (a param; offsets into C), 0 (end, trailing spaces allowed) or
 * -1 (syntax). */
static int next_param(struct cur *c, size_t *key, size_t *keylen, size_t *val, size_t *vallen,
                      int *has_val)
{
    size_t sp = cur_spaces(c);
    if (cur_peek(c) < 0)
        return 0;
    if (sp == 0 || !is_alnum(cur_peek(c)))
        return -1;
    *key = c->pos;
    while (is_alnum(cur_peek(c)) || cur_peek(c) == '-')
        c->pos++;
    *keylen = c->pos - *key;
    *has_val = 0;
    *val = *vallen = 0;
    if (cur_eat(c, '=')) {
        int dummy = 0;
        *has_val = 1;
        *val = c->pos;
        for (;;) {
            int ch = cur_peek(c);
            if (ch >= 33 && ch <= 126 && ch != '=') {
                c->pos++;
                continue;
            }
            int u = cur_utf8(c, &dummy);
            if (u < 0)
                return -1;
            if (u == 0)
                break;
        }
        *vallen = c->pos - *val;
        if (*vallen == 0)
            return -1;
    }
    int ch = cur_peek(c);
    return (ch < 0 || ch == ' ') ? 1 : -1;
}

/* 1..20 digits. A value past unsigned long long is -1, or with SATURATE
 * the largest value. 0 or -1. */
static int parse_ull_sat(const unsigned char *p, size_t n, int saturate, unsigned long long *v_r)
{
    if (n == 0 || n > 20)
        return -1;
    unsigned long long v = 0;
    int over = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (over || v > (~0ULL - d) / 10)
            over = 1;
        else
            v = v * 10 + d;
    }
    if (over && !saturate)
        return -1;
    *v_r = over ? ~0ULL : v;
    return 0;
}

/* 1..20 digits fitting an unsigned long long. 0 or -1. */
static int parse_ull(const unsigned char *p, size_t n, unsigned long long *v_r)
{
    return parse_ull_sat(p, n, 0, v_r);
}

/* RFC 3461 4: xtext = *( xchar / hexchar ); xchar = %d33-42 / %d44-60 /
 * %d62-126; hexchar = "+" 2(%x30-39 / %x41-46). */
static int xtext_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (ch == '+') {
            for (int k = 1; k <= 2; k++) {
                if (i + (size_t)k >= n)
                    return 0;
                unsigned char h = p[i + (size_t)k];
                if (!is_digit(h) && !(h >= 'A' && h <= 'F'))
                    return 0;
            }
            i += 2;
        } else if (ch < 33 || ch > 126 || ch == '=') {
            return 0;
        }
    }
    return 1;
}

enum { SEEN_SIZE = 1, SEEN_BODY = 2, SEEN_UTF8 = 4, SEEN_AUTH = 8 };

static enum smtp_perr mail_param(const struct cur *c, size_t key, size_t keylen, size_t val,
                                 size_t vallen, int has_val, struct smtp_mail_params *p,
                                 int *seen)
{
    const unsigned char *k = c->p + key, *v = c->p + val;
    if (eq_ci(k, keylen, "SIZE")) {
        /* RFC 1870: size-value = 1*20DIGIT; one too large for us is still
         * valid syntax, just over any limit (552, not 501). */
        if ((*seen & SEEN_SIZE) || !has_val || parse_ull_sat(v, vallen, 1, &p->size) < 0)
            return SMTP_PERR_BAD_PARAM;
        *seen |= SEEN_SIZE;
        p->has_size = 1;
    } else if (eq_ci(k, keylen, "BODY")) {
        if ((*seen & SEEN_BODY) || !has_val)
            return SMTP_PERR_BAD_PARAM;
        if (eq_ci(v, vallen, "7BIT"))
            p->body = SMTP_BODY_7BIT;
        else if (eq_ci(v, vallen, "8BITMIME"))
            p->body = SMTP_BODY_8BITMIME;
        else if (eq_ci(v, vallen, "BINARYMIME"))
            p->body = SMTP_BODY_BINARYMIME;
        else
            return SMTP_PERR_BAD_PARAM;
        *seen |= SEEN_BODY;
    } else if (eq_ci(k, keylen, "SMTPUTF8")) {
        if ((*seen & SEEN_UTF8) || has_val)
            return SMTP_PERR_BAD_PARAM;
        *seen |= SEEN_UTF8;
        p->smtputf8 = 1;
    } else if (eq_ci(k, keylen, "AUTH")) {
        if ((*seen & SEEN_AUTH) || !has_val || vallen > sizeof p->auth - 1 ||
            !xtext_valid(v, vallen))
            return SMTP_PERR_BAD_PARAM;
        *seen |= SEEN_AUTH;
        memcpy(p->auth, v, vallen);
        p->auth[vallen] = '\0';
    } else {
        return SMTP_PERR_UNKNOWN_PARAM;
    }
    return SMTP_PERR_OK;
}

/* ---- public ---- */

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    {"EHLO", SMTP_VERB_EHLO}, {"HELO", SMTP_VERB_HELO}, {"MAIL", SMTP_VERB_MAIL},
    {"RCPT", SMTP_VERB_RCPT}, {"DATA", SMTP_VERB_DATA}, {"BDAT", SMTP_VERB_BDAT},
    {"RSET", SMTP_VERB_RSET}, {"NOOP", SMTP_VERB_NOOP}, {"QUIT", SMTP_VERB_QUIT},
    {"VRFY", SMTP_VERB_VRFY}, {"EXPN", SMTP_VERB_EXPN}, {"HELP", SMTP_VERB_HELP},
    {"STARTTLS", SMTP_VERB_STARTTLS}, {"AUTH", SMTP_VERB_AUTH},
};

const char *smtp_verb_name(enum smtp_verb v)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verbs[i].verb == v)
            return verbs[i].name;
    return "UNKNOWN";
}

int smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd_r)
{
    struct cur c = {(const unsigned char *)line, len, 0};
    cmd_r->verb = SMTP_VERB_UNKNOWN;
    cmd_r->arg = line;
    cmd_r->arglen = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = c.p[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return -1;
    }
    while (is_alpha(cur_peek(&c)))
        c.pos++;
    size_t vlen = c.pos;
    if (vlen == 0 || (cur_peek(&c) >= 0 && cur_peek(&c) != ' '))
        return -1;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (eq_ci(c.p, vlen, verbs[i].name)) {
            cmd_r->verb = verbs[i].verb;
            break;
        }
    cur_spaces(&c);
    size_t end = len;
    while (end > c.pos && c.p[end - 1] == ' ')
        end--;
    cmd_r->arg = line + c.pos;
    cmd_r->arglen = end - c.pos;
    return 0;
}

enum smtp_perr smtp_parse_mail(const char *arg, size_t len, char addr_r[SMTP_MAX_PATH + 1],
                               struct smtp_mail_params *p_r)
{
    struct cur c = {(const unsigned char *)arg, len, 0};
    size_t mb, mblen, key, keylen, val, vallen;
    int nonascii = 0, postmaster, has_val, seen = 0, r;
    enum smtp_perr e;

    memset(p_r, 0, sizeof *p_r);
    p_r->body = SMTP_BODY_7BIT;
    addr_r[0] = '\0';
    if (!cur_eat_ci(&c, "FROM:"))
        return SMTP_PERR_SYNTAX;
    cur_spaces(&c);
    e = parse_path(&c, 1, 0, &nonascii, &mb, &mblen, &postmaster);
    while (e == SMTP_PERR_OK && (r = next_param(&c, &key, &keylen, &val, &vallen, &has_val)) != 0)
        e = r < 0 ? SMTP_PERR_SYNTAX : mail_param(&c, key, keylen, val, vallen, has_val, p_r, &seen);
    if (e == SMTP_PERR_OK && nonascii && !p_r->smtputf8)
        e = SMTP_PERR_NEED_UTF8;
    if (e != SMTP_PERR_OK) {
        memset(p_r, 0, sizeof *p_r);
        p_r->body = SMTP_BODY_7BIT;
        return e;
    }
    memcpy(addr_r, c.p + mb, mblen); /* mblen < SMTP_MAX_PATH: checked by parse_path */
    addr_r[mblen] = '\0';
    return SMTP_PERR_OK;
}

enum smtp_perr smtp_parse_rcpt(const char *arg, size_t len, int utf8_allowed,
                               char addr_r[SMTP_MAX_PATH + 1])
{
    struct cur c = {(const unsigned char *)arg, len, 0};
    size_t mb, mblen, key, keylen, val, vallen;
    int nonascii = 0, postmaster, has_val, r;
    enum smtp_perr e;

    addr_r[0] = '\0';
    if (!cur_eat_ci(&c, "TO:"))
        return SMTP_PERR_SYNTAX;
    cur_spaces(&c);
    e = parse_path(&c, 0, 1, &nonascii, &mb, &mblen, &postmaster);
    if (e == SMTP_PERR_OK && (r = next_param(&c, &key, &keylen, &val, &vallen, &has_val)) != 0)
        e = r < 0 ? SMTP_PERR_SYNTAX : SMTP_PERR_UNKNOWN_PARAM;
    if (e == SMTP_PERR_OK && nonascii && !utf8_allowed)
        e = SMTP_PERR_NEED_UTF8;
    if (e != SMTP_PERR_OK)
        return e;
    if (postmaster) {
        memcpy(addr_r, "postmaster", sizeof "postmaster");
        return SMTP_PERR_OK;
    }
    memcpy(addr_r, c.p + mb, mblen);
    addr_r[mblen] = '\0';
    return SMTP_PERR_OK;
}

int smtp_parse_bdat(const char *arg, size_t len, unsigned long long *size_r, int *last_r)
{
    struct cur c = {(const unsigned char *)arg, len, 0};
    *size_r = 0;
    *last_r = 0;
    while (is_digit(cur_peek(&c)))
        c.pos++;
    unsigned long long size;
    if (parse_ull(c.p, c.pos, &size) < 0)
        return -1;
    int last = 0;
    if (cur_spaces(&c) > 0 && cur_eat_ci(&c, "LAST")) {
        last = 1;
        cur_spaces(&c);
    }
    if (c.pos != len)
        return -1;
    *size_r = size;
    *last_r = last;
    return 0;
}

int smtp_parse_auth(const char *arg, size_t len, char mech_r[21], const char **ir_r,
                    size_t *irlen_r)
{
    struct cur c = {(const unsigned char *)arg, len, 0};
    size_t n = 0;
    mech_r[0] = '\0';
    *ir_r = NULL;
    *irlen_r = 0;
    for (int ch; (ch = cur_peek(&c)) >= 0 && ch != ' '; c.pos++) {
        if (n == 20 || !(is_alnum(ch) || ch == '-' || ch == '_')) {
            mech_r[0] = '\0';
            return -1;
        }
        mech_r[n++] = (char)to_upper(ch);
    }
    mech_r[n] = '\0';
    if (n == 0)
        return -1;
    cur_spaces(&c);
    if (cur_peek(&c) < 0)
        return 0;
    size_t start = c.pos, pad = 0;
    for (int ch; (ch = cur_peek(&c)) >= 0 && ch != ' '; c.pos++) {
        if (ch == '=')
            pad++;
        else if (pad || !(is_alnum(ch) || ch == '+' || ch == '/'))
            goto bad;
    }
    size_t irlen = c.pos - start;
    if (!(irlen == 1 && pad == 1) && (pad > 2 || irlen % 4 != 0))
        goto bad;
    cur_spaces(&c);
    if (c.pos != len)
        goto bad;
    *ir_r = arg + start;
    *irlen_r = irlen;
    return 0;
bad:
    mech_r[0] = '\0';
    return -1;
}

int smtp_helo_valid(const char *arg, size_t len)
{
    struct cur c = {(const unsigned char *)arg, len, 0};
    int nonascii = 0;
    if (len == 0 || len > SMTP_MAX_DOMAIN)
        return 0;
    if (cur_peek(&c) == '[')
        return parse_addr_literal(&c) == 0 && c.pos == len;
    for (;;) {
        size_t start = c.pos;
        for (;;) {
            int ch = cur_peek(&c);
            if (is_alnum(ch) || ch == '-' || ch == '_') {
                c.pos++;
                continue;
            }
            int u = cur_utf8(&c, &nonascii);
            if (u < 0)
                return 0;
            if (u == 0)
                break;
        }
        if (c.pos == start)
            return 0; /* empty label (also: any other character) */
        if (!cur_eat(&c, '.'))
            return c.pos == len;
        if (c.pos == len)
            return 1; /* one trailing dot */
    }
}

int smtp_addr_split(const char *addr, const char **local_r, size_t *llen_r,
                    const char **domain_r, size_t *dlen_r)
{
    size_t n = strlen(addr), i = 0, at = 0;
    int found = 0;
    *local_r = *domain_r = NULL;
    *llen_r = *dlen_r = 0;
    if (n > 0 && addr[0] == '"') {
        for (i = 1; i < n && addr[i] != '"'; i++)
            if (addr[i] == '\\' && i + 1 < n)
                i++;
        if (i >= n)
            return -1;
        i++;
    }
    for (; i < n; i++)
        if (addr[i] == '@') {
            at = i;
            found = 1;
        }
    if (!found || at == 0 || at + 1 == n)
        return -1;
    *local_r = addr;
    *llen_r = at;
    *domain_r = addr + at + 1;
    *dlen_r = n - at - 1;
    return 0;
}
