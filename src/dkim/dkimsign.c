/* dkimsign: signing one message with libopendkim (see dkimsign.h).
 *
 * The message goes to dkim_chunk() as it is stored (CRLF lines), which
 * splits header fields and body itself; dkim_getsighdr_d() then gives the
 * field's value, folded by the library. Its line breaks are normalised to
 * CRLF here, since the queue stores messages with CRLF only.
 *
 * Known library leak: libopendkim 2.11.0~beta2 (Debian 12) frees the key
 * objects of an RSA signature in dkim_free() but not those of an Ed25519
 * one (the EVP_PKEY and a 64-byte buffer made in dkim_privkey_load, about
 * 1.5 KB per Ed25519-signed message). RSA, the default, does not leak. The
 * leak is inside the library, out of our reach through its API. In
 * sanitizer builds LeakSanitizer is told to ignore the allocations made
 * while libopendkim finishes an Ed25519 signature (and only those), so the
 * tests stay strict for everything else; docs/dkim.md says so. */
#include "dkim/dkimsign.h"
#include "dkim/dkimkey.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <sys/types.h>
#include <opendkim/dkim.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sign_headers[] = {
    "from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type",
    "reply-to", "in-reply-to", "references", NULL,
};
static const char *const oversign_headers[] = {"from", NULL};

static DKIM_LIB *lib;
static const char *lib_error;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static __thread char errbuf[256];

/* LeakSanitizer's per-thread switch: present in sanitizer builds only
 * (weak references, NULL otherwise). */
extern void __lsan_disable(void) __attribute__((weak));
extern void __lsan_enable(void) __attribute__((weak));

static void lib_init(void)
{
    DKIM_LIB *l = dkim_init(NULL, NULL);
    if (!l) {
        lib_error = "libopendkim could not start";
        return;
    }
    /* Lists are passed as the array itself with the size of a pointer. */
    if (dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, (void *)sign_headers,
                     sizeof(char **)) != DKIM_STAT_OK ||
        dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, (void *)oversign_headers,
                     sizeof(char **)) != DKIM_STAT_OK) {
        lib_error = "libopendkim refused the header lists";
        dkim_close(l);
        return;
    }
    lib = l;
}

static const char *dkim_failure(DKIM *d, const char *step, DKIM_STAT st)
{
    const char *detail = d ? dkim_geterror(d) : NULL;
    snprintf(errbuf, sizeof errbuf, "%s: %s%s%s", step, dkim_getresultstr(st),
             detail && *detail ? ": " : "", detail && *detail ? detail : "");
    return errbuf;
}

/* "DKIM-Signature: " + VALUE + CRLF, with every line break in VALUE made
 * CRLF. NULL if the value holds anything but printable text and folds. */
static char *build_field(const unsigned char *value, size_t len)
{
    struct buf b;
    buf_init(&b, 2 * len + 64);
    int r = buf_append(&b, DKIM_SIGNHEADER ": ", sizeof DKIM_SIGNHEADER + 1);
    for (size_t i = 0; r == 0 && i < len; i++) {
        unsigned char c = value[i];
        if (c == '\r')
            continue;
        if (c == '\n')
            r = buf_append(&b, "\r\n", 2);
        else if (c == '\t' || (c >= 0x20 && c < 0x7f))
            r = buf_append(&b, &c, 1);
        else
            r = -1;
    }
    if (r == 0)
        r = buf_append(&b, "\r\n", 2);
    if (r < 0) {
        buf_deinit(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

/* Feeds MSG to D and finishes the signature. */
static DKIM_STAT run(DKIM *d, int ed25519, const char *msg, size_t len, const char **step_r)
{
    *step_r = "dkim_chunk";
    DKIM_STAT st = dkim_chunk(d, (unsigned char *)msg, len);
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(d, NULL, 0);
    if (st != DKIM_STAT_OK)
        return st;
    *step_r = "dkim_eom";
    int ignore_leaks = ed25519 && __lsan_disable && __lsan_enable;
    if (ignore_leaks)
        __lsan_disable();
    st = dkim_eom(d, NULL);
    if (ignore_leaks)
        __lsan_enable();
    return st;
}

char *dkimsign_message(const struct dkimkey *key, const char *msg, size_t len, const char *id,
                       const char **error_r)
{
    *error_r = NULL;
    pthread_once(&lib_once, lib_init);
    if (!lib) {
        *error_r = lib_error;
        return NULL;
    }
    dkim_alg_t alg = key->alg == DKIMKEY_ED25519 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256;
    DKIM_STAT st;
    DKIM *d = dkim_sign(lib, (const unsigned char *)(id && *id ? id : "roost"), NULL,
                        (dkim_sigkey_t)key->pem, (const unsigned char *)key->selector,
                        (const unsigned char *)key->domain, DKIM_CANON_RELAXED,
                        DKIM_CANON_RELAXED, alg, -1, &st);
    if (!d) {
        *error_r = dkim_failure(NULL, "dkim_sign", st);
        return NULL;
    }
    const char *step;
    st = run(d, key->alg == DKIMKEY_ED25519, msg, len, &step);
    unsigned char *value = NULL;
    size_t vlen = 0;
    if (st == DKIM_STAT_OK) {
        step = "dkim_getsighdr_d";
        st = dkim_getsighdr_d(d, sizeof DKIM_SIGNHEADER + 1, &value, &vlen);
    }
    char *field = NULL;
    if (st != DKIM_STAT_OK)
        *error_r = dkim_failure(d, step, st);
    else if (!(field = build_field(value, vlen)))
        *error_r = "libopendkim made an unexpected signature field";
    dkim_free(d);
    return field;
}
