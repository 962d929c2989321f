/* smtp_srs: reversing SRS recipients at RCPT (see smtp_srs.h).
 *
 * An SRS1 reverses to the SRS0 address at the first forwarder; when that
 * forwarder is also served here (two of our accounts forwarded in a row),
 * the SRS0 is reversed too, so at most SRS_REVERSE_MAX rounds. */
#include "smtp/smtp_srs.h"
#include "auth/directory.h"
#include "core/log.h"
#include "queue/srs.h"
#include "queue/srs_key.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#define SRS_REVERSE_MAX 3

int smtp_srs_rcpt(struct directory *d, const char *data_dir, char *addr, size_t addrsz)
{
    int changed = 0;
    char q1[LOG_QSIZE], q2[LOG_QSIZE];
    for (int round = 0; round < SRS_REVERSE_MAX; round++) {
        struct srs_parts p;
        enum srs_result r = srs_parse(addr, strlen(addr), &p);
        if (r == SRS_NOT_SRS || r == SRS_SYNTAX)
            return changed;   /* malformed: an ordinary local part (srs0-team@) */
        const char *at = strrchr(addr, '@');
        if (!at || dir_domain_exists(d, at + 1) != 1)
            return changed;   /* not ours: the usual rules (relaying denied) */
        unsigned char key[SRS_KEY_LEN];
        const char *err = NULL;
        char out[SRS_ADDR_MAX + 1];
        if (r == SRS_OK && srs_key_get(data_dir, key, &err) < 0) {
            log_error("smtp", "event=srs-rejected to=%s reason=no-key error=\"%s\"",
                      log_q(q1, sizeof q1, addr, strlen(addr)), err ? err : "?");
            return -1;
        }
        if (r == SRS_OK) {
            r = srs_reverse(key, addr, time(NULL), out, sizeof out);
            OPENSSL_cleanse(key, sizeof key);
        }
        if (r != SRS_OK || out[0] == '\0' || strlen(out) >= addrsz) {
            log_info("smtp", "event=srs-rejected to=%s reason=%s",
                     log_q(q1, sizeof q1, addr, strlen(addr)),
                     r != SRS_OK ? srs_result_name(r) : "too-long");
            return -1;
        }
        log_info("smtp", "event=srs-reversed srs=%s to=%s",
                 log_q(q1, sizeof q1, addr, strlen(addr)), log_q(q2, sizeof q2, out, strlen(out)));
        snprintf(addr, addrsz, "%s", out);
        changed = 1;
    }
    return changed;
}
