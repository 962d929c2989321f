/* imap_msgcmds_todo: placeholders for the message commands (FETCH, STORE,
 * SEARCH, COPY/MOVE and their UID forms) until helper "fetch" replaces this
 * file with the real ones (imap_int.h: "How a message command works"). */
#include "imap/imap_int.h"

void imap_cmd_fetch(struct imap_session *s, struct imap_command *c)
{
    imap_no(s, "[UNAVAILABLE] not yet");
}

void imap_cmd_store(struct imap_session *s, struct imap_command *c)
{
    imap_no(s, "[UNAVAILABLE] not yet");
}

void imap_cmd_search(struct imap_session *s, struct imap_command *c)
{
    imap_no(s, "[UNAVAILABLE] not yet");
}

void imap_cmd_copy(struct imap_session *s, struct imap_command *c)
{
    imap_no(s, "[UNAVAILABLE] not yet");
}
