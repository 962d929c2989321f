/* mailbench: Roost's load generator for `make bench` (bench/run). One
 * process, blocking sockets, OpenSSL; it measures what a mail client waits
 * for, against any server (Roost or a peer) on loopback.
 *
 *   mailbench fill HOST PORT RCPT N SIZE
 *       delivers N messages of about SIZE octets to RCPT over plain SMTP,
 *       16 clients at once, 100 messages per connection (set-up, not
 *       measured)
 *   mailbench pop3 HOST PORT USER PASS
 *       implicit TLS; RETR of every message (8 commands in flight); prints
 *       "messages N bytes B seconds S"
 *   mailbench imap HOST PORT USER PASS
 *       implicit TLS; prints the seconds of SELECT INBOX, FETCH 1:* (FLAGS
 *       ENVELOPE), UID SEARCH HEADER Subject, FETCH 1:* BODY.PEEK[]
 *   mailbench idle HOST PORT USER PASS N [plain]
 *       opens N TLS sessions, each logged in, INBOX selected and in IDLE;
 *       USER may hold "%d": sessions are spread over users 1..100;
 *       prints "ready" and holds them until stdin closes
 *   mailbench null N
 *       the generator alone: parses N synthetic POP3 responses from memory
 *       (shows that it is not the bottleneck)
 */
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct io {
    int fd;
    SSL *ssl;
    char buf[65536];
    size_t len, pos;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mailbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        die("cannot resolve %s", host);
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0)
        die("cannot connect to %s:%s: %s", host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static SSL_CTX *ctx;

static void io_open(struct io *io, const char *host, const char *port, int tls)
{
    memset(io, 0, sizeof *io);
    io->fd = tcp_connect(host, port);
    if (!tls)
        return;
    if (!ctx) {
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* loopback, self-signed */
    }
    io->ssl = SSL_new(ctx);
    SSL_set_fd(io->ssl, io->fd);
    if (SSL_connect(io->ssl) != 1)
        die("TLS handshake failed");
}

static void io_close(struct io *io)
{
    if (io->ssl)
        SSL_free(io->ssl);
    close(io->fd);
}

static void io_write(struct io *io, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        int w = io->ssl ? SSL_write(io->ssl, c, (int)n) : (int)write(io->fd, c, n);
        if (w <= 0)
            die("write failed");
        c += w;
        n -= (size_t)w;
    }
}

static void io_printf(struct io *io, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    io_write(io, line, (size_t)n);
}

static int io_fill(struct io *io)
{
    if (io->pos > 0) {
        memmove(io->buf, io->buf + io->pos, io->len - io->pos);
        io->len -= io->pos;
        io->pos = 0;
    }
    if (io->len == sizeof io->buf)
        die("line too long");
    int r = io->ssl ? SSL_read(io->ssl, io->buf + io->len, (int)(sizeof io->buf - io->len))
                    : (int)read(io->fd, io->buf + io->len, sizeof io->buf - io->len);
    if (r <= 0)
        die("connection closed");
    io->len += (size_t)r;
    return r;
}

/* One line (without CRLF) into LINE; returns its length. */
static size_t io_line(struct io *io, char *line, size_t max)
{
    for (;;) {
        char *lf = memchr(io->buf + io->pos, '\n', io->len - io->pos);
        if (lf) {
            size_t n = (size_t)(lf - (io->buf + io->pos));
            size_t copy = n < max - 1 ? n : max - 1;
            memcpy(line, io->buf + io->pos, copy);
            if (copy > 0 && line[copy - 1] == '\r')
                copy--;
            line[copy] = '\0';
            io->pos += n + 1;
            return copy;
        }
        io_fill(io);
    }
}

/* Skips N octets (a literal). */
static void io_skip(struct io *io, size_t n)
{
    while (n > 0) {
        if (io->pos == io->len)
            io_fill(io);
        size_t take = io->len - io->pos < n ? io->len - io->pos : n;
        io->pos += take;
        n -= take;
    }
}

/* ---- SMTP fill ---- */

static void smtp_expect(struct io *io, int code)
{
    char line[1024];
    do {
        io_line(io, line, sizeof line);
        if (atoi(line) != code)
            die("SMTP: expected %d, got: %s", code, line);
    } while (line[3] == '-');
}

/* Messages [FIRST, FIRST + N) over one connection at a time. */
static void fill_range(const char *host, const char *port, const char *rcpt, long first,
                       long n, long size);

/* FILL_PROCS processes in parallel, as many clients would deliver. */
#define FILL_PROCS 16

static int cmd_fill(char **av)
{
    long n = atol(av[3]), size = atol(av[4]);
    long per = (n + FILL_PROCS - 1) / FILL_PROCS;
    for (int p = 0; p < FILL_PROCS; p++) {
        long first = p * per, count = n - first < per ? n - first : per;
        if (count <= 0)
            break;
        if (fork() == 0) {
            fill_range(av[0], av[1], av[2], first, count, size);
            _exit(0);
        }
    }
    int st, failed = 0;
    while (wait(&st) > 0)
        failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    return failed;
}

static void fill_range(const char *host, const char *port, const char *rcpt, long first,
                       long n, long size)
{
    char *body = malloc((size_t)size + 1024);
    size_t blen = 0;
    while ((long)blen < size) {
        memcpy(body + blen, "Lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusm\r\n", 70);
        blen += 70;
    }
    n += first;
    for (long i = first; i < n;) {
        struct io io;
        io_open(&io, host, port, 0);
        smtp_expect(&io, 220);
        io_printf(&io, "EHLO bench.example\r\n");
        smtp_expect(&io, 250);
        for (int k = 0; k < 100 && i < n; k++, i++) {
            io_printf(&io, "MAIL FROM:<bench@remote.test>\r\nRCPT TO:<%s>\r\nDATA\r\n", rcpt);
            smtp_expect(&io, 250);
            smtp_expect(&io, 250);
            smtp_expect(&io, 354);
            io_printf(&io, "From: bench@remote.test\r\nTo: %s\r\nSubject: bench message %ld\r\n"
                           "Message-ID: <bench.%ld@remote.test>\r\n"
                           "Date: Mon, 05 Feb 2024 10:00:00 +0000\r\n\r\n", rcpt, i, i);
            io_write(&io, body, blen);
            io_printf(&io, ".\r\n");
            smtp_expect(&io, 250);
        }
        io_printf(&io, "QUIT\r\n");
        io_close(&io);
    }
    free(body);
}

/* ---- POP3 ---- */

static void pop_ok(struct io *io, char *line, size_t max)
{
    io_line(io, line, max);
    if (strncmp(line, "+OK", 3) != 0)
        die("POP3: %s", line);
}

/* Reads a multi-line response body up to ".", returns its octets. */
static size_t pop_multiline(struct io *io)
{
    size_t total = 0;
    char line[8192];
    for (;;) {
        size_t n = io_line(io, line, sizeof line);
        if (n == 1 && line[0] == '.')
            return total;
        total += n + 2;
    }
}

static int cmd_pop3(char **av)
{
    struct io io;
    char line[8192];
    io_open(&io, av[0], av[1], 1);
    pop_ok(&io, line, sizeof line);
    io_printf(&io, "USER %s\r\n", av[2]);
    pop_ok(&io, line, sizeof line);
    io_printf(&io, "PASS %s\r\n", av[3]);
    pop_ok(&io, line, sizeof line);
    io_printf(&io, "STAT\r\n");
    pop_ok(&io, line, sizeof line);
    long n = atol(line + 4);
    double t0 = now();
    size_t bytes = 0;
    long sent = 0, got = 0;
    const long window = 8;
    while (got < n) {
        while (sent < n && sent - got < window)
            io_printf(&io, "RETR %ld\r\n", ++sent);
        pop_ok(&io, line, sizeof line);
        bytes += pop_multiline(&io);
        got++;
    }
    double secs = now() - t0;
    io_printf(&io, "QUIT\r\n");
    io_close(&io);
    printf("messages %ld bytes %zu seconds %.4f\n", n, bytes, secs);
    return 0;
}

/* ---- IMAP ---- */

/* Reads responses until the tagged one; literals skipped. Returns the
 * number of untagged responses. */
static long imap_wait(struct io *io, const char *tag)
{
    char line[65536];
    long untagged = 0;
    size_t tlen = strlen(tag);
    for (;;) {
        size_t n = io_line(io, line, sizeof line);
        while (n > 2 && line[n - 1] == '}') {   /* a literal follows */
            char *open = strrchr(line, '{');
            size_t lit = open ? strtoul(open + 1, NULL, 10) : 0;
            io_skip(io, lit);
            n = io_line(io, line, sizeof line);
        }
        if (strncmp(line, tag, tlen) == 0 && line[tlen] == ' ') {
            if (strncmp(line + tlen + 1, "OK", 2) != 0)
                die("IMAP %s: %s", tag, line);
            return untagged;
        }
        untagged++;
    }
}

static int imap_tls = 1;

static void imap_login(struct io *io, const char *host, const char *port, const char *user,
                       const char *pass)
{
    char line[4096];
    io_open(io, host, port, imap_tls);
    io_line(io, line, sizeof line);
    io_printf(io, "l LOGIN \"%s\" \"%s\"\r\n", user, pass);
    imap_wait(io, "l");
}

static int cmd_imap(char **av)
{
    struct io io;
    imap_login(&io, av[0], av[1], av[2], av[3]);
    double t0 = now();
    io_printf(&io, "s SELECT INBOX\r\n");
    imap_wait(&io, "s");
    double t1 = now();
    io_printf(&io, "f FETCH 1:* (FLAGS ENVELOPE)\r\n");
    long nf = imap_wait(&io, "f");
    double t2 = now();
    io_printf(&io, "u UID SEARCH HEADER Subject \"bench message 1999\"\r\n");
    imap_wait(&io, "u");
    double t3 = now();
    io_printf(&io, "b FETCH 1:* BODY.PEEK[]\r\n");
    imap_wait(&io, "b");
    double t4 = now();
    io_printf(&io, "o LOGOUT\r\n");
    io_close(&io);
    printf("select %.4f fetch_envelope %.4f search_header %.4f fetch_bodies %.4f messages %ld\n",
           t1 - t0, t2 - t1, t3 - t2, t4 - t3, nf);
    return 0;
}

static int cmd_idle(char **av, int argc)
{
    long n = atol(av[4]);
    if (argc > 5 && strcmp(av[5], "plain") == 0)
        imap_tls = 0;
    struct rlimit rl = {.rlim_cur = (rlim_t)n + 64, .rlim_max = (rlim_t)n + 64};
    setrlimit(RLIMIT_NOFILE, &rl);
    struct io *conns = calloc((size_t)n, sizeof *conns);
    char line[4096];
    for (long i = 0; i < n; i++) {
        char user[256];
        /* "u%d@bench.test": spread over u1..u100 (servers limit the
         * sessions of one user from one address) */
        snprintf(user, sizeof user, av[2], (int)(i % 100) + 1);
        imap_login(&conns[i], av[0], av[1], user, av[3]);
        io_printf(&conns[i], "s SELECT INBOX\r\ni IDLE\r\n");
        imap_wait(&conns[i], "s");
        io_line(&conns[i], line, sizeof line);
        if (line[0] != '+')
            die("IDLE refused: %s", line);
    }
    printf("ready\n");
    fflush(stdout);
    while (read(0, line, sizeof line) > 0)
        ;
    for (long i = 0; i < n; i++)
        io_close(&conns[i]);
    return 0;
}

/* The generator alone: parsing cost of N POP3 responses of 4 KiB. */
static int cmd_null(char **av)
{
    long n = atol(av[0]);
    static char msg[4200];
    size_t len = 0;
    len += (size_t)sprintf(msg, "+OK 4096 octets\r\n");
    while (len < 4096)
        len += (size_t)sprintf(msg + len, "Lorem ipsum dolor sit amet, consectetur adipisci\r\n");
    len += (size_t)sprintf(msg + len, ".\r\n");
    struct io io = {.fd = -1};
    double t0 = now();
    size_t bytes = 0;
    char line[8192];
    for (long i = 0; i < n; i++) {
        memcpy(io.buf, msg, len);
        io.len = len;
        io.pos = 0;
        io_line(&io, line, sizeof line);
        bytes += pop_multiline(&io);
    }
    double secs = now() - t0;
    printf("messages %ld bytes %zu seconds %.4f\n", n, bytes, secs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 7 && strcmp(argv[1], "fill") == 0)
        return cmd_fill(argv + 2);
    if (argc >= 6 && strcmp(argv[1], "pop3") == 0)
        return cmd_pop3(argv + 2);
    if (argc >= 6 && strcmp(argv[1], "imap") == 0)
        return cmd_imap(argv + 2);
    if (argc >= 7 && strcmp(argv[1], "idle") == 0)
        return cmd_idle(argv + 2, argc - 2);
    if (argc >= 3 && strcmp(argv[1], "null") == 0)
        return cmd_null(argv + 2);
    fprintf(stderr, "usage: mailbench fill|pop3|imap|idle|null ... (see the top of mailbench.c)\n");
    return 2;
}
