/* imap_msgcmd: the sequence-set argument of the message commands (see
 * imap_msgcmd.h). */
#include "imap/imap_msgcmd.h"

#include <string.h>

int imap_msgcmd_set(struct imap_session *s, const struct imap_arg *arg, int uid,
                    struct imap_seqset *set, struct imap_msgset *ms)
{
    memset(set, 0, sizeof *set);
    memset(ms, 0, sizeof *ms);
    if (!arg || arg->type != IMAP_ARG_ATOM || imap_seqset_parse(arg->str, set) != 0) {
        imap_seqset_free(set);
        memset(set, 0, sizeof *set);
        imap_bad(s, "Invalid sequence set");
        return -1;
    }
    const char *err = NULL;
    if (imap_msgset_resolve(s, set, uid, ms, &err) != 0) {
        imap_seqset_free(set);
        memset(set, 0, sizeof *set);
        imap_msgset_free(ms);
        imap_bad(s, "%s", err ? err : "Invalid sequence set");
        return -1;
    }
    return 0;
}
