/* mailbench: Roost's load generator for `make bench` (bench/run). One
 * process, OpenSSL; blocking sockets, except submit (an epoll loop per
 * thread); it measures what a mail client waits for, against any server
 * (Roost or a peer) on loopback.
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
 *   mailbench smtp HOST PORT RCPT N SIZE CONC
 *       SMTP ingest: N messages of about SIZE octets to RCPT over plain SMTP,
 *       CONC connections at once (one thread each), every connection kept
 *       for the whole run and pipelined (RFC 2920): the end of one message's
 *       content, then MAIL, RCPT and DATA of the next go in one write. Prints
 *       "messages N seconds S p50_ms A p99_ms B cpu_s C": A and B are the
 *       latencies of the reply to the end of DATA (from the write of the
 *       final "." to the 250), C the generator's own CPU time
 *   mailbench submit HOST PORT USER PASS RCPT N SIZE CONC
 *       submission: one new implicit-TLS connection per message (no session
 *       resumption), EHLO, AUTH PLAIN, MAIL/RCPT/DATA pipelined, content,
 *       QUIT; CONC at once. Prints like smtp; the latencies are of a whole
 *       message (connect to the 250 after DATA). Event-driven, so that the
 *       generator's own CPU stays small beside the server's on a shared
 *       machine: MAILBENCH_THREADS threads (default: the online CPUs, at
 *       most CONC), each an epoll loop over its share of the CONC
 *       connections, non-blocking sockets and TLS; one SSL_write per
 *       command group, as a blocking client sends
 *   mailbench smtpnull N SIZE CONC
 *       the SMTP generator alone: the smtp workload against a sink in this
 *       process (threads on 127.0.0.1, no disk); the rate includes the sink's
 *       own work, so the generator alone is faster still
 *   mailbench fsync DIR SECONDS
 *       the disk: one writer for SECONDS each, (a) append 512 octets to a
 *       file + fsync, (b) create a 4 KiB file + fsync + rename; prints
 *       "append_fsync_per_s A create_fsync_rename_per_s B"
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* The first thread to fail reports and ends the process; others that fail
 * at the same moment wait here. _exit: no atexit cleanup (OpenSSL's) under
 * threads still in a TLS call. */
static void die(const char *fmt, ...)
{
    static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&once);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mailbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stdout);
    _exit(1);
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

/* LIB: the library context (NULL: the process's default one). */
static SSL_CTX *tls_ctx_new(OSSL_LIB_CTX *lib)
{
    SSL_CTX *c = SSL_CTX_new_ex(lib, NULL, TLS_client_method());
    if (!c)
        die("cannot make a TLS context");
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL); /* loopback, self-signed */
    /* every connection pays a full handshake, as a client without a cache */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    return c;
}

/* Made once in main, before any thread starts. */
static void tls_init(void)
{
    ctx = tls_ctx_new(NULL);
}

static void io_open(struct io *io, const char *host, const char *port, int tls)
{
    memset(io, 0, sizeof *io);
    io->fd = tcp_connect(host, port);
    if (!tls)
        return;
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

/* ---- SMTP ingest and submission (threads, one connection each) ---- */

/* What the client threads share; everything but the two counters and the
 * latency slots is read-only once the threads run. */
struct run {
    const char *host, *port, *rcpt, *from;
    long n;
    int conc;
    char *body;            /* about SIZE octets of CRLF lines, no dots */
    size_t blen;
    char auth[600];        /* "AUTH PLAIN <base64>\r\n" (submit) */
    long next;             /* atomic: next message number */
    long done;             /* atomic: latencies recorded */
    double *lat;           /* n slots, milliseconds */
    int threads;           /* client threads */
    int started;           /* atomic: threads that took their index */
    struct sockaddr_storage addr;   /* submit: HOST:PORT, resolved once */
    socklen_t addrlen;
};

static char *make_body(long size, size_t *len_r)
{
    static const char line[] =
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusm\r\n";
    size_t cap = (size_t)size + sizeof line, len = 0;
    char *b = malloc(cap);
    while ((long)len < size) {
        memcpy(b + len, line, sizeof line - 1);
        len += sizeof line - 1;
    }
    *len_r = len;
    return b;
}

/* Next message number, or -1 when all are taken. */
static long run_take(struct run *r)
{
    long i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
    return i < r->n ? i : -1;
}

static void run_latency(struct run *r, double secs)
{
    long k = __atomic_fetch_add(&r->done, 1, __ATOMIC_RELAXED);
    if (k < r->n)
        r->lat[k] = secs * 1000.0;
}

/* Size of the buffer put_message and put_envelope write into. */
static size_t out_size(const struct run *r) { return r->blen + 4096; }

static size_t put_envelope(char *out, const struct run *r)
{
    return (size_t)sprintf(out, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", r->from, r->rcpt);
}

/* Message I's content and the terminating ".". */
static size_t put_message(char *out, const struct run *r, long i)
{
    size_t n = (size_t)sprintf(out, "From: %s\r\nTo: %s\r\nSubject: bench message %ld\r\n"
                                    "Message-ID: <bench.%ld.%ld@remote.test>\r\n"
                                    "Date: Mon, 05 Feb 2024 10:00:00 +0000\r\n\r\n",
                               r->from, r->rcpt, i, (long)getpid(), i);
    memcpy(out + n, r->body, r->blen);
    n += r->blen;
    memcpy(out + n, ".\r\n", 3);
    return n + 3;
}

/* One connection for the whole run, pipelined: after the first envelope,
 * each write carries a message's content plus the next envelope (RFC 2920
 * 3.1: the content may open a group, DATA must close it). */
static void *smtp_client(void *arg)
{
    struct run *r = arg;
    long i = run_take(r);
    if (i < 0)
        return NULL;
    struct io *io = malloc(sizeof *io);
    char *out = malloc(out_size(r));
    io_open(io, r->host, r->port, 0);
    smtp_expect(io, 220);
    io_printf(io, "EHLO bench.example\r\n");
    smtp_expect(io, 250);
    io_write(io, out, put_envelope(out, r));
    for (;;) {
        smtp_expect(io, 250);
        smtp_expect(io, 250);
        smtp_expect(io, 354);
        size_t len = put_message(out, r, i);
        long next = run_take(r);
        if (next >= 0)
            len += put_envelope(out + len, r);
        double t0 = now();
        io_write(io, out, len);
        smtp_expect(io, 250);
        run_latency(r, now() - t0);
        if (next < 0)
            break;
        i = next;
    }
    io_printf(io, "QUIT\r\n");
    smtp_expect(io, 221);
    io_close(io);
    free(out);
    free(io);
    return NULL;
}

/* ---- submission: event-driven, a few threads ---- */

/* One new TLS connection per message, as a mail client sends. Each of the
 * r->threads threads runs an epoll loop over its share of the CONC
 * connection slots; a slot is a state machine (connect, handshake, then the
 * steps below, then close_notify) that starts the next message as soon as
 * its connection is closed. Sockets and OpenSSL are non-blocking and
 * registered edge-triggered for both directions once per connection, so
 * every pass runs until a call would block. The bytes on the wire are those
 * of a blocking client: one SSL_write per command group, as below. */

/* What each step writes (nothing for the greeting and the 221) and the
 * reply codes it then waits for, in order. */
enum { SUB_GREETING, SUB_EHLO, SUB_AUTH, SUB_ENVELOPE, SUB_MESSAGE, SUB_QUIT, SUB_STEPS };
static const int sub_codes[SUB_STEPS][4] = {
    [SUB_GREETING] = {220}, [SUB_EHLO] = {250}, [SUB_AUTH] = {235},
    [SUB_ENVELOPE] = {250, 250, 354}, [SUB_MESSAGE] = {250}, [SUB_QUIT] = {221},
};

enum sub_phase { SUB_CONNECTING, SUB_HANDSHAKE, SUB_WRITING, SUB_READING, SUB_CLOSING };

struct sub_slot {
    struct sub_loop *loop;
    int fd;
    SSL *ssl;
    enum sub_phase phase;
    int step, got;          /* the step, and how many of its codes arrived */
    long i;                 /* message number */
    double t0;              /* connect start */
    const char *wp;         /* the pending SSL_write (retried unchanged) */
    size_t wn;
    char *out;              /* out_size(r): envelope, or message + QUIT */
    size_t ilen, ipos;
    char in[16384];         /* replies; a line must fit */
};

struct sub_loop {
    struct run *r;
    /* the thread's own library context and TLS context: OpenSSL 3's
     * algorithm and decoder stores (and their locks) are per library
     * context, so threads share no lock and no cache line there */
    OSSL_LIB_CTX *lib;
    SSL_CTX *ctx;
    int ep;
    int active;             /* slots with a connection */
};

/* The SSL error of a failed call, for die(). */
static const char *sub_err(SSL *ssl, int rc)
{
    static __thread char msg[300];
    int e = SSL_get_error(ssl, rc);
    unsigned long q = ERR_get_error();
    if (e == SSL_ERROR_SYSCALL && q == 0)
        snprintf(msg, sizeof msg, "%s", rc == 0 || errno == 0 ? "connection closed by the server"
                                                              : strerror(errno));
    else if (e == SSL_ERROR_ZERO_RETURN)
        snprintf(msg, sizeof msg, "connection closed by the server (close_notify)");
    else
        ERR_error_string_n(q, msg, sizeof msg);
    return msg;
}

/* 1 when the call would block (wait for the next edge), 0 otherwise. */
static int sub_would_block(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Takes the next message and opens its connection; a slot with nothing left
 * to send goes idle. */
static void sub_start(struct sub_slot *s)
{
    struct run *r = s->loop->r;
    s->i = run_take(r);
    if (s->i < 0) {
        s->loop->active--;
        return;
    }
    s->t0 = now();
    s->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(s->fd, (struct sockaddr *)&r->addr, r->addrlen) != 0 && errno != EINPROGRESS)
        die("cannot connect to %s:%s: %s", r->host, r->port, strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = s};
    if (epoll_ctl(s->loop->ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    s->ssl = NULL;
    s->ilen = s->ipos = 0;
    s->phase = SUB_CONNECTING;
}

/* Sets up STEP: its write, if any, then its replies. */
static void sub_begin(struct sub_slot *s, int step)
{
    struct run *r = s->loop->r;
    s->step = step;
    s->got = 0;
    s->wn = 0;
    switch (step) {
    case SUB_EHLO:
        s->wp = "EHLO bench.example\r\n";
        s->wn = strlen(s->wp);
        break;
    case SUB_AUTH:
        s->wp = r->auth;
        s->wn = strlen(r->auth);
        break;
    case SUB_ENVELOPE:
        s->wp = s->out;
        s->wn = put_envelope(s->out, r);
        break;
    case SUB_MESSAGE:
        s->wp = s->out;
        s->wn = put_message(s->out, r, s->i);
        memcpy(s->out + s->wn, "QUIT\r\n", 6);
        s->wn += 6;
        break;
    }
    s->phase = s->wn > 0 ? SUB_WRITING : SUB_READING;
}

/* Consumes the complete reply lines in the buffer; 1 once the step has all
 * its codes (lines after them stay for the next step). */
static int sub_replies(struct sub_slot *s)
{
    const int *codes = sub_codes[s->step];
    for (;;) {
        char *line = s->in + s->ipos;
        char *lf = memchr(line, '\n', s->ilen - s->ipos);
        if (!lf)
            return 0;
        size_t n = (size_t)(lf - line);
        s->ipos += n + 1;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        line[n] = '\0';
        if (atoi(line) != codes[s->got])
            die("SMTP: expected %d, got: %.200s", codes[s->got], line);
        if (n >= 4 && line[3] == '-')
            continue;       /* a continuation line: same reply */
        if (codes[++s->got] == 0)
            return 1;
    }
}

/* One SSL_read into the buffer; 0 if it would block. */
static int sub_read(struct sub_slot *s)
{
    if (s->ipos > 0) {
        memmove(s->in, s->in + s->ipos, s->ilen - s->ipos);
        s->ilen -= s->ipos;
        s->ipos = 0;
    }
    if (s->ilen == sizeof s->in - 1)
        die("SMTP: reply line too long");
    int rc = SSL_read(s->ssl, s->in + s->ilen, (int)(sizeof s->in - 1 - s->ilen));
    if (rc > 0) {
        s->ilen += (size_t)rc;
        return 1;
    }
    if (sub_would_block(s->ssl, rc))
        return 0;
    die("SMTP: message %ld, waiting for %d: %s", s->i, sub_codes[s->step][s->got],
        sub_err(s->ssl, rc));
    return 0;
}

/* Moves the slot on until a call would block or its connection is done. */
static void sub_run(struct sub_slot *s, uint32_t events)
{
    struct run *r = s->loop->r;
    for (;;) {
        int rc;
        switch (s->phase) {
        case SUB_CONNECTING:
            if (events & (EPOLLERR | EPOLLHUP)) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                die("cannot connect to %s:%s: %s", r->host, r->port,
                    strerror(err ? err : ECONNRESET));
            }
            if (!(events & EPOLLOUT))
                return;
            s->ssl = SSL_new(s->loop->ctx);
            if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1)
                die("cannot make a TLS session");
            SSL_set_connect_state(s->ssl);
            s->phase = SUB_HANDSHAKE;
            break;
        case SUB_HANDSHAKE:
            rc = SSL_connect(s->ssl);
            if (rc == 1) {
                sub_begin(s, SUB_GREETING);
                break;
            }
            if (sub_would_block(s->ssl, rc))
                return;
            die("TLS handshake failed: %s", sub_err(s->ssl, rc));
            break;
        case SUB_WRITING:
            /* no partial writes: all of it, or retry with the same buffer */
            rc = SSL_write(s->ssl, s->wp, (int)s->wn);
            if (rc > 0) {
                s->phase = SUB_READING;
                break;
            }
            if (sub_would_block(s->ssl, rc))
                return;
            die("write failed: %s", sub_err(s->ssl, rc));
            break;
        case SUB_READING:
            if (sub_replies(s)) {
                if (s->step == SUB_MESSAGE)
                    run_latency(r, now() - s->t0);
                if (s->step == SUB_QUIT)
                    s->phase = SUB_CLOSING;
                else
                    sub_begin(s, s->step + 1);
            } else if (!sub_read(s)) {
                return;
            }
            break;
        case SUB_CLOSING:
            /* close_notify, as the blocking client did; no wait for the
             * server's */
            rc = SSL_shutdown(s->ssl);
            if (rc < 0 && SSL_get_error(s->ssl, rc) == SSL_ERROR_WANT_WRITE)
                return;
            ERR_clear_error();
            SSL_free(s->ssl);
            close(s->fd);   /* leaves the epoll set */
            sub_start(s);
            return;
        }
    }
}

/* Stop when no connection of a thread moves for this long. */
#define SUB_STALL_MS 60000

/* One thread: its share of the r->conc slots, until no message is left. */
static void *submit_loop(void *arg)
{
    struct run *r = arg;
    int k = __atomic_fetch_add(&r->started, 1, __ATOMIC_RELAXED);
    int nslots = r->conc / r->threads + (k < r->conc % r->threads);
    struct sub_loop loop = {.r = r, .ep = epoll_create1(EPOLL_CLOEXEC), .lib = OSSL_LIB_CTX_new()};
    if (loop.ep < 0)
        die("epoll_create1: %s", strerror(errno));
    if (!loop.lib)
        die("cannot make an OpenSSL library context");
    loop.ctx = tls_ctx_new(loop.lib);
    /* records are read as many at a time as have arrived, not a header
     * and a body per read(2); what goes on the wire does not change */
    SSL_CTX_set_read_ahead(loop.ctx, 1);
    struct sub_slot *slots = calloc((size_t)nslots, sizeof *slots);
    if (!slots)
        die("out of memory");
    for (int j = 0; j < nslots; j++) {
        slots[j].loop = &loop;
        slots[j].out = malloc(out_size(r));
        if (!slots[j].out)
            die("out of memory");
        loop.active++;
        sub_start(&slots[j]);
    }
    struct epoll_event evs[64];
    while (loop.active > 0) {
        int n = epoll_wait(loop.ep, evs, 64, SUB_STALL_MS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait: %s", strerror(errno));
        if (n == 0)
            die("submit: no progress for %d s (%d connections open)", SUB_STALL_MS / 1000,
                loop.active);
        for (int e = 0; e < n; e++)
            sub_run(evs[e].data.ptr, evs[e].events);
    }
    for (int j = 0; j < nslots; j++)
        free(slots[j].out);
    free(slots);
    SSL_CTX_free(loop.ctx);
    OSSL_LIB_CTX_free(loop.lib);
    close(loop.ep);
    return NULL;
}

/* Threads for submit: MAILBENCH_THREADS, or the online CPUs; at most CONC. */
static int submit_threads(int conc)
{
    const char *env = getenv("MAILBENCH_THREADS");
    long t = env && *env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (env && *env && (t < 1 || t > 1024))
        die("MAILBENCH_THREADS must be 1..1024");
    if (t < 1)
        t = 1;
    return t > conc ? conc : (int)t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Runs r->threads threads of FN over R (CONC if unset, one connection
 * each) and prints the line described at the top. */
static int run_clients(struct run *r, void *(*fn)(void *))
{
    if (r->n <= 0 || r->conc <= 0 || r->conc > 1024)
        die("bad message count or concurrency");
    if (r->threads <= 0)
        r->threads = r->conc;
    r->lat = calloc((size_t)r->n, sizeof *r->lat);
    pthread_t *t = calloc((size_t)r->threads, sizeof *t);
    double c0 = cpu_seconds(), t0 = now();
    for (int k = 0; k < r->threads; k++)
        if (pthread_create(&t[k], NULL, fn, r) != 0)
            die("cannot start a thread");
    for (int k = 0; k < r->threads; k++)
        pthread_join(t[k], NULL);
    double secs = now() - t0, cpu = cpu_seconds() - c0;
    long n = r->done < r->n ? r->done : r->n;
    if (n != r->n)
        die("only %ld of %ld messages accepted", n, r->n);
    qsort(r->lat, (size_t)n, sizeof *r->lat, cmp_double);
    printf("messages %ld seconds %.4f p50_ms %.3f p99_ms %.3f cpu_s %.3f\n", n, secs,
           r->lat[(n - 1) / 2], r->lat[(long)((n - 1) * 0.99)], cpu);
    free(t);
    free(r->lat);
    return 0;
}

static int cmd_smtp(char **av)
{
    struct run r = {.host = av[0], .port = av[1], .rcpt = av[2], .from = "bench@remote.test",
                    .n = atol(av[3]), .conc = atoi(av[5])};
    r.body = make_body(atol(av[4]), &r.blen);
    return run_clients(&r, smtp_client);
}

static int cmd_submit(char **av)
{
    struct run r = {.host = av[0], .port = av[1], .from = av[2], .rcpt = av[4],
                    .n = atol(av[5]), .conc = atoi(av[7])};
    r.body = make_body(atol(av[6]), &r.blen);
    unsigned char plain[300];
    size_t ul = strlen(av[2]), pl = strlen(av[3]);
    if (ul + pl + 2 > sizeof plain)
        die("user or password too long");
    plain[0] = '\0';
    memcpy(plain + 1, av[2], ul);
    plain[1 + ul] = '\0';
    memcpy(plain + 2 + ul, av[3], pl);
    int n = snprintf(r.auth, sizeof r.auth, "AUTH PLAIN ");
    n += EVP_EncodeBlock((unsigned char *)r.auth + n, plain, (int)(ul + pl + 2));
    memcpy(r.auth + n, "\r\n", 3);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(r.host, r.port, &hints, &res) != 0)
        die("cannot resolve %s", r.host);
    memcpy(&r.addr, res->ai_addr, res->ai_addrlen);
    r.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    if (r.conc > 0)
        r.threads = submit_threads(r.conc);
    signal(SIGPIPE, SIG_IGN);   /* a closed connection is an error, reported */
    int rc = run_clients(&r, submit_loop);
    free(r.body);
    return rc;
}

/* ---- the in-process sink (smtpnull) ---- */

static void sink_send(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* A minimal SMTP server for one connection: replies to each command line,
 * swallows content up to ".", batches its replies per read (as servers that
 * support pipelining do). Nothing is stored. */
static void *sink_conn(void *arg)
{
    int fd = (int)(long)arg;
    char in[65536], out[4096];
    size_t len = 0, olen = 0;
    int data = 0;
    sink_send(fd, "220 sink ESMTP\r\n", 16);
    for (;;) {
        ssize_t got = read(fd, in + len, sizeof in - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        size_t pos = 0;
        char *lf;
        while ((lf = memchr(in + pos, '\n', len - pos)) != NULL) {
            const char *line = in + pos, *rep = NULL;
            size_t n = (size_t)(lf - line) + 1;
            pos += n;
            if (data) {
                if (n == 3 && line[0] == '.') {
                    data = 0;
                    rep = "250 2.0.0 OK\r\n";
                }
            } else if (strncasecmp(line, "EHLO", 4) == 0) {
                rep = "250-sink\r\n250 PIPELINING\r\n";
            } else if (strncasecmp(line, "DATA", 4) == 0) {
                data = 1;
                rep = "354 go ahead\r\n";
            } else if (strncasecmp(line, "QUIT", 4) == 0) {
                rep = "221 bye\r\n";
            } else {
                rep = "250 2.1.0 OK\r\n";
            }
            if (rep) {
                size_t rl = strlen(rep);
                if (olen + rl > sizeof out) {
                    sink_send(fd, out, olen);
                    olen = 0;
                }
                memcpy(out + olen, rep, rl);
                olen += rl;
            }
        }
        memmove(in, in + pos, len - pos);
        len -= pos;
        if (len == sizeof in)
            break;   /* a line longer than the buffer: give up on it */
        if (olen > 0) {
            sink_send(fd, out, olen);
            olen = 0;
        }
    }
    close(fd);
    return NULL;
}

static void *sink_accept(void *arg)
{
    int lfd = (int)(long)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        if (pthread_create(&t, NULL, sink_conn, (void *)(long)fd) != 0)
            die("cannot start a sink thread");
        pthread_detach(t);
    }
    return NULL;
}

static int cmd_smtpnull(char **av)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 1024) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
        die("sink: cannot listen on 127.0.0.1: %s", strerror(errno));
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(sa.sin_port));
    pthread_t t;
    if (pthread_create(&t, NULL, sink_accept, (void *)(long)lfd) != 0)
        die("cannot start the sink");
    pthread_detach(t);
    struct run r = {.host = "127.0.0.1", .port = port, .rcpt = "u1@bench.test",
                    .from = "bench@remote.test", .n = atol(av[0]), .conc = atoi(av[2])};
    r.body = make_body(atol(av[1]), &r.blen);
    return run_clients(&r, smtp_client);
}

/* ---- the disk's fsync rate ---- */

static int cmd_fsync(char **av)
{
    const char *dir = av[0];
    double secs = atof(av[1]);
    if (secs <= 0 || secs > 60)
        die("fsync: SECONDS must be in (0, 60]");
    const long max_ops = 1000000;
    char path[3072], tmp[4096], block[4096];
    if (strlen(dir) > 2048)
        die("fsync: directory name too long");
    memset(block, 'x', sizeof block);

    snprintf(path, sizeof path, "%s/mailbench-fsync.append", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        die("fsync: cannot create %s: %s", path, strerror(errno));
    long appends = 0;
    double t0 = now(), t;
    while ((t = now()) - t0 < secs && appends < max_ops) {
        if (write(fd, block, 512) != 512 || fsync(fd) != 0)
            die("fsync: append failed: %s", strerror(errno));
        appends++;
    }
    double append_rate = appends / (t - t0);
    close(fd);
    unlink(path);

    snprintf(path, sizeof path, "%s/mailbench-fsync.d", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        die("fsync: cannot create %s: %s", path, strerror(errno));
    long files = 0;
    t0 = now();
    while ((t = now()) - t0 < secs && files < max_ops) {
        char final[4096];
        snprintf(tmp, sizeof tmp, "%s/tmp.%ld", path, files);
        snprintf(final, sizeof final, "%s/f.%ld", path, files);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, block, sizeof block) != (ssize_t)sizeof block || fsync(fd) != 0 ||
            close(fd) != 0 || rename(tmp, final) != 0)
            die("fsync: create+fsync+rename failed: %s", strerror(errno));
        files++;
    }
    double create_rate = files / (t - t0);
    for (long i = 0; i < files; i++) {
        snprintf(tmp, sizeof tmp, "%s/f.%ld", path, i);
        unlink(tmp);
    }
    rmdir(path);
    printf("append_fsync_per_s %.1f create_fsync_rename_per_s %.1f\n", append_rate, create_rate);
    return 0;
}

int main(int argc, char **argv)
{
    tls_init();
    if (argc >= 8 && strcmp(argv[1], "smtp") == 0)
        return cmd_smtp(argv + 2);
    if (argc >= 10 && strcmp(argv[1], "submit") == 0)
        return cmd_submit(argv + 2);
    if (argc >= 5 && strcmp(argv[1], "smtpnull") == 0)
        return cmd_smtpnull(argv + 2);
    if (argc >= 4 && strcmp(argv[1], "fsync") == 0)
        return cmd_fsync(argv + 2);
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
    fprintf(stderr, "usage: mailbench fill|pop3|imap|idle|null|smtp|submit|smtpnull|fsync ... (see the top of mailbench.c)\n");
    return 2;
}
