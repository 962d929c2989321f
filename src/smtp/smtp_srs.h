/* smtp_srs: the RCPT hook for bounces to our SRS addresses (queue/srs.h).
 * A recipient SRS0=...@d or SRS1=...@d in a domain d served here is
 * reversed (its hash checked, an SRS0's age too) and replaced by the
 * original sender, to which the message is then routed like any other
 * recipient: delivered locally or queued for a remote one, which is not
 * relaying (only a hash made with our secret gets there). An SRS address
 * that does not verify is refused: 550 5.1.1. */
#ifndef ROOST_SMTP_SRS_H
#define ROOST_SMTP_SRS_H

#include <stddef.h>

struct directory;

/* Worker thread. ADDR (ADDRSZ bytes) is the recipient. 0: not an SRS
 * address of ours (or a malformed one: an ordinary local part then), ADDR
 * unchanged; 1: reversed, ADDR holds the original
 * address; -1: an SRS address of a served domain that does not verify (or
 * the secret cannot be read): refuse it. Logs event=srs-reversed or
 * event=srs-rejected. */
int smtp_srs_rcpt(struct directory *d, const char *data_dir, char *addr, size_t addrsz);

#endif
