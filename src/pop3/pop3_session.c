/* pop3_session: placeholder until the POP3 server lands: refuses every
 * connection with a clear error. */
#include "pop3/pop3_server.h"

#include <string.h>
#include <unistd.h>

void pop3_accept(struct loop *loop, int fd, const char *peer, const struct listener_conf *lc,
                 void *arg)
{
    static const char msg[] = "-ERR [SYS/TEMP] POP3 is not available yet\r\n";
    if (lc->kind == LK_POP3) {
        ssize_t w = write(fd, msg, sizeof msg - 1);
        (void)w;
    }
    close(fd);
}

void pop3_begin_shutdown(struct pop3_server *srv)
{
    __atomic_store_n(&srv->shutting_down, 1, __ATOMIC_SEQ_CST);
    if (srv->on_idle)
        srv->on_idle();
}

void pop3_loop_shutdown(struct loop *loop) { (void)loop; }
void pop3_loop_free(struct loop *loop) { (void)loop; }
int pop3_session_count(void) { return 0; }
