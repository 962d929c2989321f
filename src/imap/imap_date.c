/* imap_date: IMAP dates (RFC 9051 9: date "1-Feb-1994" for SEARCH,
 * date-time "17-Jul-1996 02:44:25 -0700" for APPEND and INTERNALDATE). */
#include "imap/imap_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int days_in_month(int year, int mon)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mon == 1 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return d[mon];
}

/* "d-Mon-yyyy" or "dd-Mon-yyyy" (a leading space for one digit when
 * SPACE_OK); returns the characters used, or -1. */
static int parse_day(const char *s, int space_ok, int *day, int *mon, int *year)
{
    int i = 0, d = 0;
    if (space_ok && s[0] == ' ')
        i = 1;
    int digits = 0;
    while (isdigit((unsigned char)s[i]) && digits < 2) {
        d = d * 10 + (s[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || (space_ok && s[0] == ' ' && digits != 1) || s[i] != '-')
        return -1;
    i++;
    int m = -1;
    for (int k = 0; k < 12; k++)
        if (strncasecmp(s + i, months[k], 3) == 0)
            m = k;
    if (m < 0 || s[i + 3] != '-')
        return -1;
    i += 4;
    int y = 0;
    for (int k = 0; k < 4; k++) {
        if (!isdigit((unsigned char)s[i + k]))
            return -1;
        y = y * 10 + (s[i + k] - '0');
    }
    i += 4;
    if (y < 1900 || d < 1 || d > days_in_month(y, m))
        return -1;
    *day = d;
    *mon = m;
    *year = y;
    return i;
}

static time_t utc_time(int year, int mon, int day, int h, int mi, int sec)
{
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return timegm(&tm);
}

int imap_date_parse(const char *s, time_t *t)
{
    int d, m, y;
    int n = parse_day(s, 0, &d, &m, &y);
    if (n < 0 || s[n] != '\0')
        return -1;
    *t = utc_time(y, m, d, 0, 0, 0);
    return 0;
}

int imap_datetime_parse(const char *s, time_t *t)
{
    int d, m, y;
    int n = parse_day(s, 1, &d, &m, &y);
    if (n < 0)
        return -1;
    const char *p = s + n;
    int h, mi, sec, zh, zm;
    char sign;
    if (strlen(p) != 15 || p[0] != ' ' || p[3] != ':' || p[6] != ':' || p[9] != ' ' ||
        (p[10] != '+' && p[10] != '-'))
        return -1;
    for (int k = 1; k < 15; k++)
        if (k != 3 && k != 6 && k != 9 && k != 10 && !isdigit((unsigned char)p[k]))
            return -1;
    h = (p[1] - '0') * 10 + (p[2] - '0');
    mi = (p[4] - '0') * 10 + (p[5] - '0');
    sec = (p[7] - '0') * 10 + (p[8] - '0');
    sign = p[10];
    zh = (p[11] - '0') * 10 + (p[12] - '0');
    zm = (p[13] - '0') * 10 + (p[14] - '0');
    if (h > 23 || mi > 59 || sec > 60 || zh > 23 || zm > 59)
        return -1;
    long zone = (long)zh * 3600 + (long)zm * 60;
    *t = utc_time(y, m, d, h, mi, sec) - (sign == '+' ? zone : -zone);
    return 0;
}

void imap_datetime_format(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday, months[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
