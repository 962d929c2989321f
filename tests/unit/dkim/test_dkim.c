/* Unit tests for src/dkim: key names and selectors, key generation and
 * storage (modes, rotation, the active selector), the TXT record, and
 * signatures made by dkimsign_message verified by libopendkim's verifier
 * reading the record from a file instead of DNS (DKIM_QUERY_FILE), with a
 * one-byte body change and an added From: that must both fail. */
#include "dkim/dkimkey.h"
#include "dkim/dkimsign.h"
#include "test.h"

#include <sys/types.h>
#include <opendkim/dkim.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char message[] =
    "From: Alice <alice@example.test>\r\n"
    "To: bob@example.net\r\n"
    "Subject: DKIM unit test\r\n"
    "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
    "Message-ID: <unit@example.test>\r\n"
    "X-Unsigned: not in the list\r\n"
    "\r\n"
    "Hello,\r\n"
    "this body is signed.\r\n";

static void test_names(void)
{
    test_begin("domain and selector names");
    test_assert(dkimkey_domain_valid("example.test"));
    test_assert(dkimkey_domain_valid("a-b.c0.example"));
    test_assert(!dkimkey_domain_valid(""));
    test_assert(!dkimkey_domain_valid("Example.test"));
    test_assert(!dkimkey_domain_valid("../etc"));
    test_assert(!dkimkey_domain_valid("a..b"));
    test_assert(!dkimkey_domain_valid(".a"));
    test_assert(!dkimkey_domain_valid("a/b"));
    test_assert(!dkimkey_domain_valid("-a.b"));
    test_assert(dkimkey_selector_valid("202601"));
    test_assert(dkimkey_selector_valid("s1-rsa"));
    test_assert(!dkimkey_selector_valid(""));
    test_assert(!dkimkey_selector_valid("a.b"));
    test_assert(!dkimkey_selector_valid("a/b"));
    test_assert(!dkimkey_selector_valid("-a"));
    test_assert(!dkimkey_selector_valid("UPPER"));
    char l63[64], l64[65];
    memset(l63, 'a', 63);
    l63[63] = '\0';
    memset(l64, 'a', 64);
    l64[64] = '\0';
    test_assert(dkimkey_selector_valid(l63));
    test_assert(!dkimkey_selector_valid(l64));
    test_end();
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void test_generate_rotate(void)
{
    test_begin("generate, store 0600, rotate the active selector");
    const char *dir = test_tmpdir(), *err = NULL;
    char sel[DKIMKEY_SELECTOR_MAX + 1], path[512];
    test_assert(dkimkey_active(dir, "example.test", sel, &err) == 1);
    time_t jan = 1704110400; /* 2024-01-01 12:00 UTC */
    test_assert(dkimkey_default_selector(dir, "example.test", jan, sel, &err) == 0);
    test_assert_streq(sel, "202401");
    test_assert(dkimkey_generate(dir, "example.test", sel, DKIMKEY_RSA, &err) == 0);
    test_assert(dkimkey_generate(dir, "example.test", sel, DKIMKEY_RSA, &err) == 1);
    snprintf(path, sizeof path, "%s/dkim/example.test/202401.key", dir);
    test_assert(file_mode(path) == 0600);
    snprintf(path, sizeof path, "%s/dkim/example.test", dir);
    test_assert(file_mode(path) == 0700);
    char active[DKIMKEY_SELECTOR_MAX + 1];
    test_assert(dkimkey_active(dir, "example.test", active, &err) == 0);
    test_assert_streq(active, "202401");

    test_assert(dkimkey_default_selector(dir, "example.test", jan, sel, &err) == 0);
    test_assert_streq(sel, "202401-2");
    test_assert(dkimkey_generate(dir, "example.test", sel, DKIMKEY_ED25519, &err) == 0);
    test_assert(dkimkey_active(dir, "example.test", active, &err) == 0);
    test_assert_streq(active, "202401-2");

    struct dkimkey k;
    test_assert(dkimkey_load(dir, "example.test", NULL, &k, &err) == 0);
    test_assert(k.alg == DKIMKEY_ED25519);
    test_assert_streq(k.selector, "202401-2");
    dkimkey_clear(&k);
    test_assert(dkimkey_load(dir, "example.test", "202401", &k, &err) == 0);
    test_assert(k.alg == DKIMKEY_RSA);
    dkimkey_clear(&k);
    test_assert(dkimkey_load(dir, "example.test", "nosuch", &k, &err) == 1);
    test_assert(dkimkey_load(dir, "other.test", NULL, &k, &err) == 1);
    test_assert(dkimkey_generate(dir, "bad/domain", "s", DKIMKEY_RSA, &err) == -1);
    test_end();
}

static void test_damaged_files(void)
{
    test_begin("damaged active file and key file are errors, not crashes");
    const char *dir = test_tmpdir(), *err = NULL;
    test_assert(dkimkey_generate(dir, "example.test", "s1", DKIMKEY_ED25519, &err) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/dkim/example.test/active", dir);
    FILE *f = fopen(path, "w");
    fputs("../../x\n", f);
    fclose(f);
    char sel[DKIMKEY_SELECTOR_MAX + 1];
    test_assert(dkimkey_active(dir, "example.test", sel, &err) == -1);
    test_assert(err != NULL);
    snprintf(path, sizeof path, "%s/dkim/example.test/s1.key", dir);
    f = fopen(path, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    struct dkimkey k;
    test_assert(dkimkey_load(dir, "example.test", "s1", &k, &err) == -1);
    test_assert(k.pem == NULL);
    test_end();
}

/* The p= value of a record, base64-decoded; returns its length. */
static int record_p_len(const char *rec)
{
    const char *p = strstr(rec, "p=");
    if (!p)
        return -1;
    unsigned char out[1024];
    int n = EVP_DecodeBlock(out, (const unsigned char *)p + 2, (int)strlen(p + 2));
    size_t plen = strlen(p + 2);
    if (n < 0)
        return -1;
    return n - (plen > 0 && p[2 + plen - 1] == '=') - (plen > 1 && p[2 + plen - 2] == '=');
}

static void test_records(void)
{
    test_begin("TXT records: rsa SubjectPublicKeyInfo, ed25519 raw 32 bytes");
    const char *dir = test_tmpdir(), *err = NULL;
    test_assert(dkimkey_generate(dir, "example.test", "r", DKIMKEY_RSA, &err) == 0);
    test_assert(dkimkey_generate(dir, "example.test", "e", DKIMKEY_ED25519, &err) == 0);
    struct dkimkey k;
    test_assert(dkimkey_load(dir, "example.test", "r", &k, &err) == 0);
    char *rec = dkimkey_txt_value(&k, &err);
    test_assert(rec && strncmp(rec, "v=DKIM1; k=rsa; p=MIIBIjAN", 26) == 0);
    test_assert(record_p_len(rec) == 294); /* DER SPKI of a 2048-bit key */
    free(rec);
    dkimkey_clear(&k);
    test_assert(dkimkey_load(dir, "example.test", "e", &k, &err) == 0);
    rec = dkimkey_txt_value(&k, &err);
    test_assert(rec && strncmp(rec, "v=DKIM1; k=ed25519; p=", 22) == 0);
    test_assert(record_p_len(rec) == 32);
    free(rec);
    dkimkey_clear(&k);
    test_end();
}

/* Verifies MSG with libopendkim, the key record read from KEYFILE. */
static DKIM_STAT verify(const char *keyfile, const char *msg, size_t len)
{
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    dkim_query_t q = DKIM_QUERY_FILE;
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &q, sizeof q);
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, (void *)keyfile, strlen(keyfile));
    DKIM_STAT st;
    DKIM *d = dkim_verify(lib, (const unsigned char *)"test", NULL, &st);
    st = dkim_chunk(d, (unsigned char *)msg, len);
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(d, NULL, 0);
    if (st == DKIM_STAT_OK)
        st = dkim_eom(d, NULL);
    dkim_free(d);
    dkim_close(lib);
    return st;
}

static void sign_and_verify(enum dkimkey_alg alg, const char *algname)
{
    const char *dir = test_tmpdir(), *err = NULL;
    test_assert(dkimkey_generate(dir, "example.test", "sel", alg, &err) == 0);
    struct dkimkey k;
    test_assert(dkimkey_load(dir, "example.test", NULL, &k, &err) == 0);
    char *rec = dkimkey_txt_value(&k, &err);
    char keyfile[512];
    snprintf(keyfile, sizeof keyfile, "%s/keys.txt", dir);
    FILE *f = fopen(keyfile, "w");
    fprintf(f, "sel._domainkey.example.test %s\n", rec);
    fclose(f);
    free(rec);

    char *field = dkimsign_message(&k, message, sizeof message - 1, "Q1", &err);
    test_assert(field != NULL);
    if (!field) {
        fprintf(stderr, "sign error: %s\n", err);
        dkimkey_clear(&k);
        return;
    }
    test_assert(strncmp(field, "DKIM-Signature: v=1; a=", 23) == 0);
    test_assert(strstr(field, algname) != NULL);
    test_assert(strstr(field, "c=relaxed/relaxed") != NULL);
    test_assert(strstr(field, "d=example.test") != NULL);
    test_assert(strstr(field, "s=sel") != NULL);
    test_assert(strstr(field, "X-Unsigned") == NULL && strstr(field, "x-unsigned") == NULL);
    size_t flen = strlen(field);
    test_assert(flen > 2 && field[flen - 2] == '\r' && field[flen - 1] == '\n');
    for (size_t i = 0; i < flen; i++)
        if (field[i] == '\n')
            test_assert(i > 0 && field[i - 1] == '\r');

    size_t mlen = flen + sizeof message - 1;
    char *signed_msg = malloc(mlen + 64);
    memcpy(signed_msg, field, flen);
    memcpy(signed_msg + flen, message, sizeof message - 1);
    test_assert(verify(keyfile, signed_msg, mlen) == DKIM_STAT_OK);

    /* One byte of the body changed: bad signature. */
    char *b = strstr(signed_msg, "signed.");
    *b = 'S';
    test_assert(verify(keyfile, signed_msg, mlen) == DKIM_STAT_BADSIG);
    *b = 's';

    /* A second From: added above the first: over-signing makes it fail. */
    static const char extra[] = "From: mallory@evil.example\r\n";
    memmove(signed_msg + sizeof extra - 1, signed_msg, mlen);
    memcpy(signed_msg, extra, sizeof extra - 1);
    test_assert(verify(keyfile, signed_msg, mlen + sizeof extra - 1) != DKIM_STAT_OK);

    free(signed_msg);
    free(field);
    dkimkey_clear(&k);
}

static void test_sign_rsa(void)
{
    test_begin("rsa-sha256 signature verifies; altered body and added From: fail");
    sign_and_verify(DKIMKEY_RSA, "a=rsa-sha256");
    test_end();
}

static void test_sign_ed25519(void)
{
    test_begin("ed25519-sha256 signature verifies; altered body and added From: fail");
    sign_and_verify(DKIMKEY_ED25519, "a=ed25519-sha256");
    test_end();
}

static void test_sign_no_body(void)
{
    test_begin("a message with a header and no body is signed");
    const char *dir = test_tmpdir(), *err = NULL;
    test_assert(dkimkey_generate(dir, "example.test", "s", DKIMKEY_ED25519, &err) == 0);
    struct dkimkey k;
    test_assert(dkimkey_load(dir, "example.test", NULL, &k, &err) == 0);
    static const char hdr_only[] = "From: a@example.test\r\nSubject: x\r\n";
    char *field = dkimsign_message(&k, hdr_only, sizeof hdr_only - 1, "Q2", &err);
    test_assert(field != NULL);
    free(field);
    dkimkey_clear(&k);
    test_end();
}

int main(void)
{
    return test_run((test_fn[]){test_names, test_generate_rotate, test_damaged_files,
                                test_records, test_sign_rsa, test_sign_ed25519,
                                test_sign_no_body, NULL});
}
