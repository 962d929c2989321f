/* retpath: the Return-Path: field of final delivery (see retpath.h). */
#include "queue/retpath.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <string.h>

char *retpath_message(const char *sender, const char *data, size_t len, size_t *len_r)
{
    if (!sender)
        sender = "";
    static const char head[] = "Return-Path: <", tail[] = ">\r\n";
    size_t sl = strlen(sender);
    size_t hl = sizeof head - 1 + sl + sizeof tail - 1;
    char *out = xmalloc(hl + len + 1);   /* LEN is a message: bounded */
    memcpy(out, head, sizeof head - 1);
    memcpy(out + sizeof head - 1, sender, sl);
    memcpy(out + sizeof head - 1 + sl, tail, sizeof tail - 1);
    if (len)
        memcpy(out + hl, data, len);
    out[hl + len] = '\0';
    *len_r = hl + len;
    return out;
}
