/* cli_sendmail: `roost sendmail`, the sendmail(8)-compatible entry point
 * for cron, PHP mail(), mail(1) and git send-email, also reached through a
 * symlink named "sendmail" (main.c). It needs no password: it reads the
 * message from stdin (sendmail_parse.c), adds From, Date and Message-ID
 * when missing, drops Bcc fields, and drops the message durably into
 * DATA/pickup/ (tmp name, fsync, rename, directory fsync). The server
 * (queue/pickup.c) picks it up, decides who sent it from the file's owner
 * and queues it. docs/sendmail.md has the whole design.
 *
 * The invoking user's identity is kept: this command never switches to the
 * data directory's owner. When it can read the directory (root or the
 * owner), unknown local recipients are refused here, at once.
 *
 * Exit codes (sysexits.h, as sendmail): 0 queued, 64 usage (no recipients,
 * bad flag), 65 bad message (a line over 998 bytes, too large), 67 unknown
 * local user, 69 no pickup directory (the server never ran), 73 cannot
 * create the file, 74 I/O error, 77 no permission to write there. */
#include "cli/cli.h"
#include "cli/sendmail_parse.h"
#include "auth/directory.h"
#include "core/config.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "queue/pickup_file.h"

#include <errno.h>
#include <fcntl.h>
#include <gmime/gmime.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { SX_OK = 0, SX_USAGE = 64, SX_DATAERR = 65, SX_NOUSER = 67, SX_UNAVAILABLE = 69,
       SX_SOFTWARE = 70, SX_CANTCREAT = 73, SX_IOERR = 74, SX_NOPERM = 77 };

#define READ_CHUNK 65536

static int read_message(struct sm_reader *r)
{
    char *chunk = xmalloc(READ_CHUNK);
    enum sm_read e = SM_MORE;
    while (e == SM_MORE) {
        size_t n = fread(chunk, 1, READ_CHUNK, stdin);
        if (n == 0) {
            if (ferror(stdin)) {
                free(chunk);
                fprintf(stderr, "sendmail: cannot read the message: %s\n", strerror(errno));
                return SX_IOERR;
            }
            e = sm_reader_finish(r);
            break;
        }
        e = sm_reader_feed(r, chunk, n);
    }
    free(chunk);
    if (e == SM_ERR_LINE) {
        fprintf(stderr, "sendmail: line %lu is longer than %d bytes (RFC 5322): nothing sent\n",
                r->lineno, SM_LINE_MAX);
        return SX_DATAERR;
    }
    if (e == SM_ERR_SIZE) {
        fprintf(stderr, "sendmail: the message is larger than %zu bytes: nothing sent\n", r->max);
        return SX_DATAERR;
    }
    return SX_OK;
}

/* LOGIN of the real uid (not a variable: $USER can be anything). */
static char *login_name(char **gecos_r)
{
    struct passwd *pw = getpwuid(getuid());
    if (gecos_r) {
        *gecos_r = NULL;
        if (pw && pw->pw_gecos && pw->pw_gecos[0]) {
            size_t n = strcspn(pw->pw_gecos, ",");
            if (n)
                *gecos_r = xstrndup(pw->pw_gecos, n);
        }
    }
    return pw ? xstrdup(pw->pw_name) : xasprintf("uid%u", (unsigned)getuid());
}

/* ADDR qualified with @HOSTNAME when it is a bare local name (root). */
static char *qualify(const char *addr, const char *hostname)
{
    return strchr(addr, '@') ? xstrdup(addr) : xasprintf("%s@%s", addr, hostname);
}

static int add_header_fields(struct buf *out, const struct sm_header *h, const char *from,
                             const char *fullname, const char *hostname)
{
    int bad = 0;
    if (!h->has_from) {
        InternetAddress *ia = internet_address_mailbox_new(fullname ? fullname : "", from);
        char *s = internet_address_to_string(ia, NULL, TRUE);
        bad |= buf_appendf(out, "From: %s\r\n", s);
        g_free(s);
        g_object_unref(ia);
    }
    if (!h->has_date) {
        char date[64];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
        bad |= buf_appendf(out, "Date: %s\r\n", date);
    }
    if (!h->has_msgid) {
        unsigned char rnd[12];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return -1;
        char hex[25];
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        bad |= buf_appendf(out, "Message-ID: <%ld.%s@%s>\r\n", (long)time(NULL), hex, hostname);
    }
    return bad ? -1 : 0;
}

/* Unknown local recipients, checked when this user can read the directory
 * (root, the data directory's owner). 0 fine or not checkable. */
static int precheck_recipients(const struct cli_ctx *ctx, char **rcpts, int n)
{
    char *path = xasprintf("%s/directory.sqlite", ctx->data_dir);
    int readable = access(path, R_OK | W_OK) == 0;
    free(path);
    if (!readable)
        return SX_OK;
    const char *err = NULL;
    struct directory *d = dir_open(ctx->data_dir, &err);
    if (!d)
        return SX_OK;
    int rc = SX_OK;
    for (int i = 0; i < n && rc == SX_OK; i++) {
        char account[320];
        if (dir_resolve_rcpt(d, rcpts[i], account) == DIR_RCPT_NO_SUCH_USER) {
            fprintf(stderr, "sendmail: %s: no such user here: nothing sent\n", rcpts[i]);
            rc = SX_NOUSER;
        }
    }
    dir_close(&d);
    return rc;
}

/* Writes ENV + MSG into DATA/pickup/ durably. */
static int drop_file(const char *data_dir, const char *env, size_t envlen, const char *msg,
                     size_t msglen)
{
    char *dir = xasprintf("%s/pickup", data_dir);
    unsigned char rnd[16];
    char name[33];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        free(dir);
        return SX_SOFTWARE;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(name + 2 * i, 3, "%02x", rnd[i]);
    char *tmp = xasprintf("%s/.tmp-%s", dir, name);
    char *final = xasprintf("%s/%s", dir, name);
    int rc = SX_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            fprintf(stderr, "sendmail: %s does not exist: start roost serve once (it creates"
                            " it)\n", dir);
        else if (e == EACCES || e == EPERM)
            fprintf(stderr, "sendmail: cannot write to %s: %s (see docs/sendmail.md: the data"
                            " directory must be searchable by other users)\n", dir, strerror(e));
        else
            fprintf(stderr, "sendmail: cannot create %s: %s\n", tmp, strerror(e));
        rc = e == ENOENT ? SX_UNAVAILABLE : (e == EACCES || e == EPERM) ? SX_NOPERM : SX_CANTCREAT;
        goto out;
    }
    /* Readable by the server whatever the umask; the directory is not
     * listable by others and the name is random. */
    if (fchmod(fd, 0644) != 0 || fs_write_all(fd, env, envlen) != 0 ||
        fs_write_all(fd, msg, msglen) != 0 || fsync(fd) != 0) {
        fprintf(stderr, "sendmail: cannot write %s: %s\n", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        rc = SX_IOERR;
        goto out;
    }
    if (rename(tmp, final) != 0) {
        fprintf(stderr, "sendmail: cannot move the message into %s: %s\n", dir, strerror(errno));
        unlink(tmp);
        rc = SX_IOERR;
    } else if (fs_fsync_dir_path(dir) != 0 && (errno != EACCES || syncfs(fd) != 0)) {
        /* Other users may not open the directory (1733): syncfs covers the
         * rename instead. */
        fprintf(stderr, "sendmail: cannot sync %s: %s\n", dir, strerror(errno));
        rc = SX_IOERR;
    }
    close(fd);
out:
    free(dir);
    free(tmp);
    free(final);
    return rc;
}

static int sendmail_run(const struct sm_args *a, const struct cli_ctx *ctx)
{
    const char *hostname = ctx->cfg->hostname;
    struct sm_reader r;
    struct sm_header h;
    struct buf out;
    char **rcpts = NULL;
    int nrcpt = 0;
    char *gecos = NULL, *login = login_name(&gecos);
    char *from = a->from && a->from[0] ? qualify(a->from, hostname)
                                       : xasprintf("%s@%s", login, hostname);
    memset(&h, 0, sizeof h);
    sm_reader_init(&r, ctx->cfg->max_message_size, a->ignore_dots);
    buf_init(&out, ctx->cfg->max_message_size + 8192);
    int rc = read_message(&r);
    if (rc != SX_OK)
        goto out;
    struct buf hdr;
    buf_init(&hdr, r.out.len + 1);
    if (sm_scan_header(r.out.data ? r.out.data : "", r.out.len, a->read_t, &h, &hdr) < 0) {
        buf_deinit(&hdr);
        rc = SX_SOFTWARE;
        goto out;
    }
    if (h.too_many || h.nrcpt + a->nrcpt > SM_MAX_RCPTS) {
        fprintf(stderr, "sendmail: more than %d recipients: nothing sent\n", SM_MAX_RCPTS);
        buf_deinit(&hdr);
        rc = SX_USAGE;
        goto out;
    }
    rcpts = xcalloc((size_t)(h.nrcpt + a->nrcpt) + 1, sizeof *rcpts);
    for (int i = 0; i < h.nrcpt; i++)
        rcpts[nrcpt++] = qualify(h.rcpts[i], hostname);
    for (int i = 0; i < a->nrcpt; i++)
        rcpts[nrcpt++] = qualify(a->rcpts[i], hostname);
    if (nrcpt == 0) {
        fprintf(stderr, "sendmail: no recipients: give them as arguments, or -t with To, Cc"
                        " or Bcc in the message: nothing sent\n");
        buf_deinit(&hdr);
        rc = SX_USAGE;
        goto out;
    }
    for (int i = 0; i < nrcpt; i++)
        if (!pickup_addr_valid(rcpts[i], strlen(rcpts[i]), 1)) {
            fprintf(stderr, "sendmail: \"%.320s\" is not an address: nothing sent\n", rcpts[i]);
            buf_deinit(&hdr);
            rc = SX_USAGE;
            goto out;
        }
    if (a->from && a->from[0] && !pickup_addr_valid(from, strlen(from), 1)) {
        fprintf(stderr, "sendmail: -f \"%.320s\" is not an address\n", a->from);
        buf_deinit(&hdr);
        rc = SX_USAGE;
        goto out;
    }
    int bad = add_header_fields(&out, &h, from, a->fullname ? a->fullname : gecos, hostname);
    bad |= buf_append(&out, hdr.data ? hdr.data : "", hdr.len);
    bad |= buf_append(&out, "\r\n", 2);
    bad |= buf_append(&out, r.out.data ? r.out.data + h.body_off : "", r.out.len - h.body_off);
    buf_deinit(&hdr);
    if (bad) {
        fprintf(stderr, "sendmail: the message is larger than %zu bytes: nothing sent\n",
                ctx->cfg->max_message_size);
        rc = SX_DATAERR;
        goto out;
    }
    if ((rc = precheck_recipients(ctx, rcpts, nrcpt)) != SX_OK)
        goto out;
    size_t envlen;
    char *env = pickup_format(a->from && a->from[0] ? from : NULL, (const char *const *)rcpts,
                              nrcpt, &envlen);
    if (!env) {
        rc = SX_USAGE;
        goto out;
    }
    rc = drop_file(ctx->data_dir, env, envlen, out.data, out.len);
    free(env);
out:
    for (int i = 0; i < nrcpt; i++)
        free(rcpts[i]);
    free(rcpts);
    sm_header_free(&h);
    sm_reader_deinit(&r);
    buf_deinit(&out);
    free(from);
    free(login);
    free(gecos);
    return rc;
}

int cli_sendmail_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    struct sm_args a;
    char err[512];
    if (sm_parse_args(argc, argv, &a, err, sizeof err) < 0) {
        fprintf(stderr, "sendmail: %s\nusage: sendmail [-t] [-i] [-f ADDRESS] [-F NAME]"
                        " [RECIPIENT ...] < message\n", err);
        sm_args_free(&a);
        return SX_USAGE;
    }
    g_mime_init();
    int rc = sendmail_run(&a, ctx);
    g_mime_shutdown();
    sm_args_free(&a);
    return rc;
}

int cli_sendmail_entry(int argc, char **argv)
{
    const char *path = getenv("ROOST_CONFIG");
    if (!path && access("/etc/roost/roost.conf", R_OK) == 0)
        path = "/etc/roost/roost.conf";
    struct config cfg;
    if (path) {
        char *errors = NULL;
        if (config_load(path, &cfg, &errors) < 0) {
            fprintf(stderr, "sendmail: %s", errors ? errors : "invalid configuration\n");
            free(errors);
            config_free(&cfg);
            return SX_UNAVAILABLE;
        }
    } else {
        config_defaults(&cfg, 1);
    }
    char *data_dir = config_resolve_data_dir(NULL, &cfg);
    struct cli_ctx ctx = {.data_dir = data_dir, .cfg = &cfg};
    int rc = cli_sendmail_main(argc, argv, &ctx);
    free(data_dir);
    config_free(&cfg);
    return rc;
}
