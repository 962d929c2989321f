/* sasl_server: the shared GNU SASL server context (see sasl_server.h). */
#include "auth/sasl_server.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static Gsasl *sasl_ctx;
static int sasl_ready;
static pthread_once_t sasl_once = PTHREAD_ONCE_INIT;

static void wipe_free(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

void sasl_creds_clear(struct sasl_creds *creds)
{
    free(creds->user);
    creds->user = NULL;
    wipe_free(&creds->pass);
}

/* gsasl calls this when a mechanism has the simple credentials: capture. */
static int sasl_callback(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
    (void)ctx;
    struct sasl_creds *creds = gsasl_session_hook_get(sctx);
    if (prop != GSASL_VALIDATE_SIMPLE || !creds)
        return GSASL_NO_CALLBACK;
    const char *authid = gsasl_property_fast(sctx, GSASL_AUTHID);
    const char *authzid = gsasl_property_fast(sctx, GSASL_AUTHZID);
    const char *pw = gsasl_property_fast(sctx, GSASL_PASSWORD);
    if (!authid || !pw)
        return GSASL_AUTHENTICATION_ERROR;
    if (authzid && *authzid && strcasecmp(authzid, authid) != 0)
        return GSASL_AUTHENTICATION_ERROR; /* no acting as someone else */
    sasl_creds_clear(creds);
    creds->user = xstrdup(authid);
    creds->pass = xstrdup(pw);
    return GSASL_OK;
}

static void sasl_init_once(void)
{
    if (gsasl_init(&sasl_ctx) != GSASL_OK) {
        sasl_ctx = NULL;
        return;
    }
    gsasl_callback_set(sasl_ctx, sasl_callback);
    sasl_ready = 1;
}

int sasl_server_init(void)
{
    return pthread_once(&sasl_once, sasl_init_once) == 0 && sasl_ready ? 0 : -1;
}

void sasl_server_done(void)
{
    if (sasl_ctx)
        gsasl_done(sasl_ctx);
    sasl_ctx = NULL;
    sasl_ready = 0;
}

int sasl_server_begin(const char *mech, struct sasl_creds *creds, Gsasl_session **sasl_r)
{
    *sasl_r = NULL;
    if (pthread_once(&sasl_once, sasl_init_once) != 0 || !sasl_ready)
        return -1;
    if (gsasl_server_start(sasl_ctx, mech, sasl_r) != GSASL_OK) {
        *sasl_r = NULL;
        return -1;
    }
    gsasl_session_hook_set(*sasl_r, creds);
    return 0;
}
