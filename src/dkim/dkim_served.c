/* dkim_served: the signing domain of a message and its signature (see
 * dkim_served.h). */
#include "dkim/dkim_served.h"
#include "auth/directory.h"
#include "core/log.h"
#include "dkim/dkimkey.h"
#include "dkim/dkimsign.h"
#include "mime/mime.h"

#include <gmime/gmime.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies the lower-cased domain part of ADDR into OUT; "" if it has none or
 * it is not a plain DNS name we could hold a key for. */
static void domain_of(const char *addr, char out[DKIMKEY_DOMAIN_MAX + 1])
{
    out[0] = '\0';
    const char *at = addr ? strrchr(addr, '@') : NULL;
    if (!at || strlen(at + 1) > DKIMKEY_DOMAIN_MAX)
        return;
    size_t i = 0;
    for (const char *p = at + 1; *p; p++)
        out[i++] = (char)tolower((unsigned char)*p);
    out[i] = '\0';
    if (!dkimkey_domain_valid(out))
        out[0] = '\0';
}

/* The domain of the first mailbox of the first From: field in the header
 * block [HDR, HDR+LEN). */
static void from_domain(const char *hdr, size_t len, char out[DKIMKEY_DOMAIN_MAX + 1])
{
    out[0] = '\0';
    size_t pos = 0;
    char *value = mime_next_from_field(hdr, len, &pos);
    if (!value)
        return;
    InternetAddressList *list = internet_address_list_parse(NULL, value);
    free(value);
    if (!list)
        return;
    if (internet_address_list_length(list) > 0) {
        InternetAddress *ia = internet_address_list_get_address(list, 0);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia))
            domain_of(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)), out);
    }
    g_object_unref(list);
}

/* Loads the active key of DOMAIN if it is served here: 0 loaded, 1 none,
 * -1 error (logged). */
static int key_for(struct directory *d, const char *data_dir, const char *domain,
                   const char *qid, struct dkimkey *k)
{
    if (!domain[0] || dir_domain_exists(d, domain) != 1)
        return 1;
    const char *err = NULL;
    int r = dkimkey_load(data_dir, domain, NULL, k, &err);
    if (r < 0)
        log_error("dkim", "event=key-error queue=%s domain=%s error=\"%s\" result=unsigned", qid,
                  domain, err ? err : "?");
    return r;
}

char *dkim_sign_served(struct directory *d, const char *data_dir, const char *sender,
                       const char *msg, size_t len, size_t room, const char *qid)
{
    char from_dom[DKIMKEY_DOMAIN_MAX + 1], env_dom[DKIMKEY_DOMAIN_MAX + 1];
    from_domain(msg, len, from_dom);
    domain_of(sender, env_dom);
    struct dkimkey k;
    int r = key_for(d, data_dir, from_dom, qid, &k);
    if (r == 1 && strcmp(env_dom, from_dom) != 0)
        r = key_for(d, data_dir, env_dom, qid, &k);
    if (r == 1)
        log_debug("dkim", "event=unsigned queue=%s from-domain=%s sender-domain=%s reason=no-key",
                  qid, from_dom[0] ? from_dom : "-", env_dom[0] ? env_dom : "-");
    if (r != 0)
        return NULL;
    const char *err = NULL;
    char *field = dkimsign_message(&k, msg, len, qid, &err);
    if (!field) {
        log_error("dkim", "event=sign-failed queue=%s domain=%s selector=%s error=\"%s\" "
                  "result=unsigned", qid, k.domain, k.selector, err ? err : "?");
    } else if (strlen(field) > room) {
        log_warn("dkim", "event=sign-failed queue=%s domain=%s reason=size result=unsigned",
                 qid, k.domain);
        free(field);
        field = NULL;
    } else {
        log_info("dkim", "event=signed queue=%s domain=%s selector=%s a=%s", qid, k.domain,
                 k.selector, k.alg == DKIMKEY_ED25519 ? "ed25519-sha256" : "rsa-sha256");
    }
    dkimkey_clear(&k);
    return field;
}
