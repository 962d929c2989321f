/* cli_serve: `roost serve`. Loads the config (or the development
 * defaults), prepares the data directory, TLS, the directory database and
 * (in development) the demo account, binds the listeners, drops privileges,
 * then runs the event loop until SIGTERM/SIGINT. SIGHUP reloads the TLS
 * certificate. On SIGTERM it stops accepting, lets transactions in flight
 * finish (bounded), and exits 0. */
#include "cli/cli.h"
#include "cli/cli_serve.h"
#include "cli/serve_compact.h"
#include "cli/serve_lock.h"
#include "auth/directory.h"
#include "core/config.h"
#include "core/log.h"
#include "core/worker.h"
#include "core/xalloc.h"
#include "mime/mime.h"
#include "net/listener.h"
#include "net/tls.h"
#include "queue/queue.h"
#include "queue/pickup.h"
#include "smtp/smtp_int.h"
#include "smtp/smtp_server.h"
#include "pop3/pop3_server.h"
#include "imap/imap_server.h"
#include "auth/sasl_server.h"
#include "core/notify.h"
#include "http/http_server.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <malloc.h>
#include <ftw.h>
#include <gmime/gmime.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_SECONDS 60
#define DEMO_DOMAIN "example.test"
#define DEMO_ACCOUNT "demo@example.test"

#define MAX_LOOPS 64

/* loops[0] runs in the main thread: listeners, signals, the queue. The
 * others run in their own threads and serve connections only. */
static struct loop *loops[MAX_LOOPS];
static pthread_t loop_threads[MAX_LOOPS];
static int nloops;
static struct smtp_server smtp_srv;
static struct pop3_server pop3_srv;
static struct imap_server imap_srv;

static void mkdir_or_die(const char *path, mode_t mode)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        fatal("cannot create %s: %s", path, strerror(errno));
}

static void prepare_data_dir(const char *dir)
{
    mkdir_or_die(dir, 0750);
    const char *subs[] = {"tls", "log", "queue", "mail"};
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        char *p = xasprintf("%s/%s", dir, subs[i]);
        mkdir_or_die(p, strcmp(subs[i], "tls") == 0 ? 0700 : 0750);
        free(p);
    }
}

static void setup_tls(struct config *cfg, const char *data_dir)
{
    const char *err = NULL;
    if (!cfg->tls_cert) {
        cfg->tls_cert = xasprintf("%s/" TLS_SELF_SIGNED_CERT, data_dir);
        cfg->tls_key = xasprintf("%s/" TLS_SELF_SIGNED_KEY, data_dir);
        if (tls_ensure_self_signed(cfg->tls_cert, cfg->tls_key, cfg->hostname, &err) < 0)
            fatal("TLS: %s", err);
        if (!cfg->dev)
            log_warn("tls", "event=self-signed cert=%s hint=\"set [tls] cert and key for a real certificate\"",
                     cfg->tls_cert);
    }
    if (tls_load(cfg->tls_cert, cfg->tls_key, &err) < 0)
        fatal("TLS: %s", err);
}

/* Development instance: the domain example.test and demo@example.test with
 * a generated password kept in DATA/demo-password (0600). */
static char *ensure_demo_account(struct directory *d, const char *data_dir)
{
    char *pwfile = xasprintf("%s/demo-password", data_dir);
    char pw[64] = "";
    FILE *f = fopen(pwfile, "r");
    if (f) {
        if (!fgets(pw, sizeof pw, f))
            pw[0] = '\0';
        fclose(f);
        pw[strcspn(pw, "\r\n")] = '\0';
    }
    const char *err = NULL;
    if (dir_domain_add(d, DEMO_DOMAIN, &err) < 0)
        fatal("demo domain: %s", err ? err : "?");
    struct dir_account a;
    int exists = dir_account_get(d, DEMO_ACCOUNT, &a) == 0;
    if (!exists || !pw[0]) {
        cli_random_password(pw, 16);
        int r = exists ? dir_account_set_password(d, DEMO_ACCOUNT, pw, &err)
                       : dir_account_add(d, DEMO_ACCOUNT, pw, PLAN_FREE, &err);
        if (r != 0)
            fatal("demo account: %s", err ? err : "?");
        int fd = open(pwfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || dprintf(fd, "%s\n", pw) < 0 || fsync(fd) != 0)
            fatal("cannot write %s: %s", pwfile, strerror(errno));
        close(fd);
    }
    free(pwfile);
    return xstrdup(pw);
}

static int listener_port(const struct config *cfg, enum listener_kind k)
{
    for (int i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].kind == k)
            return cfg->listeners[i].port;
    return 0;
}

static void print_settings(const struct config *cfg, const char *data_dir, const char *demo_pw)
{
    const char *host = cfg->dev ? "127.0.0.1" : cfg->hostname;
    printf("\nRoost is running. Mail client settings:\n\n");
    printf("  Outgoing (SMTP)   server %s  port %d  SSL/TLS    (implicit TLS)\n", host,
           listener_port(cfg, LK_SUBMISSIONS));
    printf("                    server %s  port %d  STARTTLS\n", host,
           listener_port(cfg, LK_SUBMISSION));
    printf("  Incoming (IMAP)   server %s  port %d  SSL/TLS    (implicit TLS)\n", host,
           listener_port(cfg, LK_IMAPS));
    printf("                    server %s  port %d  STARTTLS\n", host,
           listener_port(cfg, LK_IMAP));
    printf("  Incoming (POP3)   server %s  port %d  SSL/TLS    (implicit TLS)\n", host,
           listener_port(cfg, LK_POP3S));
    printf("                    server %s  port %d  STARTTLS (STLS)\n", host,
           listener_port(cfg, LK_POP3));
    printf("  Inbound MX (SMTP) server %s  port %d  plain / STARTTLS, no login\n", host,
           listener_port(cfg, LK_SMTP));
    if (demo_pw) {
        printf("  Username          %s (the full address)\n", DEMO_ACCOUNT);
        printf("  Password          %s\n", demo_pw);
    } else {
        printf("  Username          the full address of the account\n");
        printf("  Password          its password, or an app password (roost app-password create)\n");
    }
    printf("  Certificate       %s%s\n", cfg->tls_cert, cfg->dev ? " (self-signed: accept it once)" : "");
    printf("  Data directory    %s\n", data_dir);
    if (cfg->http.nlisten > 0) {
        const char *scheme = cfg->http.tls ? "https" : "http";
        printf("  HTTP              %s://%s:%d/  (/metrics, /healthz, client autoconfig)\n",
               scheme, cfg->http.listen[0].host, cfg->http.listen[0].port);
        printf("  Thunderbird       %s://%s:%d/mail/config-v1.1.xml?emailaddress=%s\n", scheme,
               cfg->http.listen[0].host, cfg->http.listen[0].port,
               demo_pw ? DEMO_ACCOUNT : "ADDRESS");
    }
    printf("\n");
    printf("Try: swaks --server 127.0.0.1:%d --tlsc --auth-user %s --auth-password '%s' --from %s --to %s\n\n",
           listener_port(cfg, LK_SUBMISSIONS), demo_pw ? DEMO_ACCOUNT : "ADDRESS",
           demo_pw ? demo_pw : "PASSWORD", demo_pw ? DEMO_ACCOUNT : "ADDRESS",
           demo_pw ? DEMO_ACCOUNT : "ADDRESS");
    fflush(stdout);
}

static const char *chown_uid_name;
static uid_t chown_uid;
static gid_t chown_gid;

static int chown_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (lchown(path, chown_uid, chown_gid) != 0)
        log_warn("main", "event=chown-failed path=%s user=%s error=\"%s\"", path, chown_uid_name,
                 strerror(errno));
    /* Files in DATA/pickup keep their owner: it says who sent them (pickup.h). */
    if (flag == FTW_D && ftw->level == 1 && strcmp(path + ftw->base, "pickup") == 0)
        return FTW_SKIP_SUBTREE;
    return 0;
}

static void drop_privileges(const struct config *cfg, const char *data_dir)
{
    if (getuid() != 0 && geteuid() != 0)
        return;
    if (!cfg->user || !cfg->user[0]) {
        log_warn("main", "event=running-as-root hint=\"set [server] user to drop privileges\"");
        return;
    }
    struct passwd *pw = getpwnam(cfg->user);
    if (!pw)
        fatal("user '%s' does not exist: create it (useradd --system %s) or set [server] user",
              cfg->user, cfg->user);
    chown_uid_name = cfg->user;
    chown_uid = pw->pw_uid;
    chown_gid = pw->pw_gid;
    nftw(data_dir, chown_entry, 32, FTW_PHYS | FTW_ACTIONRETVAL);
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        fatal("cannot drop privileges to %s: %s", cfg->user, strerror(errno));
    if (setuid(0) == 0)
        fatal("privileges were not dropped");
    log_info("main", "event=privileges-dropped user=%s uid=%d", cfg->user, (int)pw->pw_uid);
}

static void stop_all_loops(void)
{
    for (int i = 0; i < nloops; i++)
        event_base_loopexit(loop_base(loops[i]), NULL);
}

/* Called by a protocol when its last session ended during shutdown. */
static void on_protocol_idle(void)
{
    if (smtp_session_count() == 0 && pop3_session_count() == 0 && imap_session_count() == 0)
        stop_all_loops();
}

static void loop_shutdown_job(void *arg)
{
    smtp_loop_shutdown(arg);
    pop3_loop_shutdown(arg);
    imap_loop_shutdown(arg);
}

/* The listener callback: each kind to its protocol. */
static void serve_accept(struct loop *loop, int fd, const char *peer,
                         const struct listener_conf *lc, void *arg)
{
    switch (lc->kind) {
    case LK_POP3:
    case LK_POP3S:
        pop3_accept(loop, fd, peer, lc, &pop3_srv);
        break;
    case LK_IMAP:
    case LK_IMAPS:
        imap_accept(loop, fd, peer, lc, &imap_srv);
        break;
    default:
        smtp_accept(loop, fd, peer, lc, &smtp_srv);
    }
}

static void *loop_thread_main(void *arg)
{
    struct loop *l = arg;
    event_base_loop(loop_base(l), EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int default_loop_count(const struct config *cfg)
{
    long n = cfg->loops > 0 ? cfg->loops : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_LOOPS ? MAX_LOOPS : (int)n;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    if (sig == SIGHUP) {
        const char *err = NULL;
        if (tls_reload(&err) == 0)
            log_info("main", "event=tls-reloaded");
        else
            log_error("main", "event=tls-reload-failed error=\"%s\"", err);
        return;
    }
    if (__atomic_load_n(&smtp_srv.shutting_down, __ATOMIC_SEQ_CST)) {
        log_info("main", "event=shutdown-forced");
        stop_all_loops();
        return;
    }
    log_info("main", "event=shutdown signal=%d sessions=%d", (int)sig, smtp_session_count());
    listeners_close();
    struct timeval grace = {.tv_sec = SHUTDOWN_GRACE_SECONDS};
    for (int i = 0; i < nloops; i++)
        event_base_loopexit(loop_base(loops[i]), &grace);
    smtp_begin_shutdown(&smtp_srv);
    pop3_begin_shutdown(&pop3_srv);
    imap_begin_shutdown(&imap_srv);
    for (int i = 0; i < nloops; i++)
        loop_post(loops[i], loop_shutdown_job, loops[i]);
}

int cli_serve_main(int argc, char **argv, const struct cli_ctx *ctx)
{
    struct config *cfg = (struct config *)ctx->cfg;
    const char *data_dir = ctx->data_dir;
    if (argc > 1) {
        fprintf(stderr, "usage: roost serve [--config FILE] [--data DIR]\n");
        return 2;
    }
    enum log_level lvl = LOG_INFO;
    if (strcmp(cfg->log_level, "debug") == 0) lvl = LOG_DEBUG;
    else if (strcmp(cfg->log_level, "warn") == 0) lvl = LOG_WARN;
    else if (strcmp(cfg->log_level, "error") == 0) lvl = LOG_ERROR;
    log_set_level(lvl);
    prepare_data_dir(data_dir);
    const char *lock_err = NULL;
    if (serve_lock_data_dir(data_dir, &lock_err) < 0)
        fatal("%s", lock_err);
    char *logdir = xasprintf("%s/log", data_dir);
    if (log_open_dir(logdir) < 0)
        fatal("cannot open the log in %s: %s", logdir, strerror(errno));
    log_set_rotation(cfg->log_max_size, cfg->log_keep);
    free(logdir);
    log_info("main", "event=starting data=%s config=%s dev=%d", data_dir,
             cfg->path ? cfg->path : "(none)", cfg->dev);
    dir_set_argon2_params(cfg->argon2_t_cost, cfg->argon2_m_cost_kib, cfg->argon2_parallelism);
    setup_tls(cfg, data_dir);

    const char *err = NULL;
    struct directory *d = dir_open(data_dir, &err);
    if (!d)
        fatal("directory: %s", err ? err : "cannot open");
    char *demo_pw = cfg->dev ? ensure_demo_account(d, data_dir) : NULL;
    dir_close(&d);

    if (listeners_bind(cfg, &err) < 0)
        fatal("%s", err);
    if (http_bind(cfg, &err) < 0)
        fatal("%s", err);
    drop_privileges(cfg, data_dir);

    signal(SIGPIPE, SIG_IGN);
    mime_init();
    if (sasl_server_init() < 0)
        fatal("cannot initialise GNU SASL");
    nloops = default_loop_count(cfg);
    for (int i = 0; i < nloops; i++) {
        loops[i] = loop_new();
        notify_register_loop(loops[i], imap_notify_changed);
    }
    /* Big blocks (argon2id's 19 MiB per hash, large messages) straight
     * from mmap and back to the system when freed. A fixed threshold also
     * stops glibc raising it after the first such free, which would leave
     * every worker's arena holding 20 MiB for good. */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    struct worker_pool *pool = worker_pool_new(cfg->workers);
    if (cfg->retry_unit_ms)
        queue_set_retry_unit_ms(cfg->retry_unit_ms);
    queue_set_config(cfg);   /* DSN hostname, [queue] policy; starts the transport too */
    if (queue_start(data_dir, pool, loops[0], &err) < 0)
        fatal("queue: %s", err ? err : "cannot start");
    if (pickup_start(data_dir, cfg->hostname, cfg->max_message_size, pool, loops[0], &err) < 0)
        fatal("pickup: %s", err ? err : "cannot start");
    serve_compact_start(data_dir, pool, loops[0], cfg->compact_interval, cfg->compact_grace);
    smtp_srv = (struct smtp_server){.cfg = cfg, .data_dir = data_dir, .pool = pool,
                                    .on_idle = on_protocol_idle};
    pop3_srv = (struct pop3_server){.cfg = cfg, .data_dir = data_dir, .pool = pool,
                                    .on_idle = on_protocol_idle};
    imap_srv = (struct imap_server){.cfg = cfg, .data_dir = data_dir, .pool = pool,
                                    .on_idle = on_protocol_idle};
    if (listeners_start(loops, nloops, serve_accept, NULL) < 0)
        fatal("cannot start listeners");
    if (http_start(cfg, data_dir, &err) < 0)
        fatal("%s", err);
    struct event *sigs[3];
    int signums[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(loop_base(loops[0]), signums[i], on_signal, NULL);
        event_add(sigs[i], NULL);
    }
    for (int i = 1; i < nloops; i++)
        if (pthread_create(&loop_threads[i], NULL, loop_thread_main, loops[i]) != 0)
            fatal("cannot start loop thread %d", i);
    print_settings(cfg, data_dir, demo_pw);
    free(demo_pw);
    log_info("main", "event=ready loops=%d workers=%d", nloops, cfg->workers);

    event_base_loop(loop_base(loops[0]), EVLOOP_NO_EXIT_ON_EMPTY);

    log_info("main", "event=stopping sessions=%d", smtp_session_count());
    listeners_close();
    stop_all_loops();
    for (int i = 1; i < nloops; i++)
        pthread_join(loop_threads[i], NULL);
    pickup_stop();
    http_stop();
    queue_stop();
    serve_compact_stop();
    /* Let in-flight jobs report back while the pool still exists. */
    for (int i = 0; i < nloops; i++)
        while (loop_pending_jobs(loops[i]) > 0)
            event_base_loop(loop_base(loops[i]), EVLOOP_ONCE);
    worker_pool_free(&pool);
    for (int i = 0; i < 3; i++)
        event_free(sigs[i]);
    notify_reset();
    for (int i = 0; i < nloops; i++) {
        smtp_loop_free(loops[i]);
        pop3_loop_free(loops[i]);
        imap_loop_free(loops[i]);
        loop_free(&loops[i]);
    }
    sasl_server_done();
    g_mime_shutdown();
    tls_shutdown();
    log_info("main", "event=stopped");
    return 0;
}
