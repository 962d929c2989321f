/* check_fix: what `roost check` says about a problem: the protocol of a
 * greeting, the problem a server's refusal means (from its reply, using
 * the codes and texts Roost and Gmail send), and the one sentence on how
 * to fix it, with the right port numbers for the protocol. Pure functions,
 * kept apart from the network code so they are unit-tested. */
#ifndef ROOST_CHECK_FIX_H
#define ROOST_CHECK_FIX_H

#include <stddef.h>

enum check_proto { P_UNKNOWN, P_SMTP, P_IMAP, P_POP3 };

enum check_fix {
    FIX_RESOLVE, FIX_REFUSED, FIX_TIMEOUT, FIX_UNREACHABLE, FIX_TLS_BROKEN, FIX_NO_GREETING,
    FIX_USE_STARTTLS, FIX_USE_IMPLICIT, FIX_WRONG_PROTOCOL, FIX_REFUSED_GREETING,
    FIX_NO_STARTTLS, FIX_NO_AUTH, FIX_CERT_EXPIRED, FIX_CERT_UNTRUSTED, FIX_CERT_NAME,
    FIX_PROTOCOL, FIX_STARTTLS_FIRST, FIX_WRONG_PASSWORD, FIX_APP_PASSWORD, FIX_DAILY_LIMIT,
    FIX_IMAP_DISABLED, FIX_POP_DISABLED, FIX_THROTTLED, FIX_AUTH_REQUIRED,
    FIX_SENDER_NOT_OWNED, FIX_RELAY_DENIED, FIX_TOO_BIG, FIX_POP_IN_USE, FIX_OTHER_REPLY,
    FIX_COUNT
};

/* The protocol a greeting line belongs to ("220 ..." SMTP, "* OK" IMAP,
 * "+OK" POP3, with their refusals "554"/"421", "* BYE", "-ERR"). */
enum check_proto check_proto_of_greeting(const char *greeting);
/* 1 if the greeting refuses the session (554, 421, * BYE, -ERR). */
int check_greeting_refuses(const char *greeting);
/* The protocol usually served on PORT (25/465/587, 143/993, 110/995). */
enum check_proto check_proto_for_port(int port);
const char *check_proto_name(enum check_proto p);

/* The problem behind a refusal. */
enum check_fix check_fix_for_smtp(const char *reply_line);
enum check_fix check_fix_for_imap(const char *tagged_reply);
enum check_fix check_fix_for_pop3(const char *reply_line);

/* The fix, one sentence, into OUT. USER (may be NULL) is put in the
 * commands it names. */
void check_fix_text(enum check_fix fix, enum check_proto proto, const char *user, char *out,
                    size_t outsz);

#endif
