/* dir_addr: the address rules of the directory. An account or alias address
 * is local@domain: the local part a dot-atom of RFC 5322 atext (3.2.3)
 * without '+' (reserved for plus-addressing), at most 64 octets (RFC 5321
 * 4.5.3.1.1); the domain LDH labels (RFC 1035 2.3.1, RFC 1123 2.1) of 1-63
 * octets, at least two of them, at most 253 octets, with a non-numeric top
 * label. Everything is stored lower-cased; non-ASCII is refused. */
#include "auth/dir_int.h"

#include <string.h>

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int is_atext_no_plus(int c)
{
    if (is_alpha(c) || is_digit(c))
        return 1;
    return c != 0 && strchr("!#$%&'*-/=?^_`{|}~", c) != NULL;
}

static int label_valid(const char *s, size_t len)
{
    if (len == 0 || len > DIR_LABEL_MAX)
        return 0;
    if (s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '-')
            return 0;
    }
    return 1;
}

static int all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_digit((unsigned char)s[i]))
            return 0;
    return 1;
}

int dir_domain_valid(const char *domain)
{
    if (!domain)
        return 0;
    size_t len = strlen(domain);
    if (len == 0 || len > DIR_DOMAIN_MAX)
        return 0;
    int labels = 0;
    const char *p = domain, *end = domain + len;
    const char *last = p;
    size_t last_len = 0;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t l = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (!label_valid(p, l))
            return 0;
        labels++;
        last = p;
        last_len = l;
        if (!dot)
            break;
        p = dot + 1;
    }
    return labels >= 2 && !all_digits(last, last_len);
}

int dir_local_valid(const char *local, size_t len)
{
    if (len == 0 || len > DIR_LOCAL_MAX)
        return 0;
    if (local[0] == '.' || local[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)local[i];
        if (c == '.') {
            if (local[i + 1] == '.')
                return 0;
            continue;
        }
        if (!is_atext_no_plus(c))
            return 0;
    }
    return 1;
}

int dir_address_valid(const char *address)
{
    if (!address)
        return 0;
    const char *at = strrchr(address, '@');
    if (!at)
        return 0;
    size_t local_len = (size_t)(at - address);
    if (memchr(address, '@', local_len))
        return 0;
    return dir_local_valid(address, local_len) && dir_domain_valid(at + 1);
}

int dir_lower(char *out, size_t outsz, const char *s)
{
    size_t len = strlen(s);
    if (len >= outsz)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[len] = '\0';
    return 0;
}

int dir_normalize_address(const char *address, char out[DIR_ADDR_MAX])
{
    if (!dir_address_valid(address))
        return -1;
    return dir_lower(out, DIR_ADDR_MAX, address);
}

int dir_strip_plus(char *address)
{
    char *at = strrchr(address, '@');
    if (!at)
        return 0;
    char *plus = memchr(address, '+', (size_t)(at - address));
    if (!plus || plus == address)
        return 0;
    memmove(plus, at, strlen(at) + 1);
    return 1;
}
