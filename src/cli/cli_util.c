/* cli_util: helpers shared by the CLI subcommands (cli.h): reading a
 * password from stdin (echo off when stdin is a terminal), generating a
 * random password with an unbiased draw from RAND_bytes and opening the
 * directory with the usual error message. */
#include "auth/directory.h"
#include "cli/cli.h"
#include "core/xalloc.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Longest password line accepted on stdin (directory limit). */
#define CLI_PASSWORD_MAX 1024

static const char password_alphabet[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

void cli_random_password(char *out, int len)
{
    const unsigned n = (unsigned)(sizeof password_alphabet - 1); /* 62 */
    const unsigned reject = 256 - 256 % n;                       /* 248 */
    int have = 0;
    while (have < len) {
        unsigned char rnd[64];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            fprintf(stderr, "roost: the random number generator failed\n");
            abort();
        }
        for (size_t i = 0; i < sizeof rnd && have < len; i++) {
            if (rnd[i] >= reject)
                continue;
            out[have++] = password_alphabet[rnd[i] % n];
        }
        OPENSSL_cleanse(rnd, sizeof rnd);
    }
    out[len > 0 ? len : 0] = '\0';
}

/* Turns terminal echo off on stdin; returns 1 if it did (restore later). */
static int echo_off(struct termios *saved)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) != 0)
        return 0;
    struct termios t = *saved;
    t.c_lflag &= ~(tcflag_t)ECHO;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0)
        return 0;
    fputs("Password: ", stderr);
    fflush(stderr);
    return 1;
}

static void echo_restore(const struct termios *saved)
{
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, saved);
    fputs("\n", stderr);
}

char *cli_read_password_stdin(void)
{
    struct termios saved;
    int restored = echo_off(&saved);
    char *pw = xmalloc(CLI_PASSWORD_MAX + 2);
    size_t n = 0;
    int c, too_long = 0, got_any = 0;
    while ((c = getchar()) != EOF) {
        got_any = 1;
        if (c == '\n')
            break;
        if (n < CLI_PASSWORD_MAX + 1)
            pw[n++] = (char)c;
        else
            too_long = 1;
    }
    if (restored)
        echo_restore(&saved);
    if (n > 0 && pw[n - 1] == '\r')
        n--;
    pw[n] = '\0';
    if (!got_any || too_long || n > CLI_PASSWORD_MAX) {
        OPENSSL_cleanse(pw, CLI_PASSWORD_MAX + 2);
        free(pw);
        return NULL;
    }
    return pw;
}

struct directory *cli_open_directory(const struct cli_ctx *ctx)
{
    const char *err = NULL;
    struct directory *d = dir_open(ctx->data_dir, &err);
    if (!d)
        fprintf(stderr, "roost: cannot open the directory: %s\n", err ? err : "unknown error");
    return d;
}
