/* mime_int: the parsed structure shared by the files of src/mime/ (parse
 * and sections in mime.c, header helpers in mime_hdr.c, addresses in
 * mime_addr.c, ENVELOPE/BODYSTRUCTURE in mime_imap.c, SEARCH in
 * mime_search.c).
 *
 * A message is a tree of nodes kept in one array. Every node has a header
 * range (including the blank line that ends it, when there is one) and a
 * body range, both offsets into the message bytes. Node 0 is the message.
 * A multipart node's children are its parts; a message/rfc822 node has one
 * child: the embedded message (is_message set), whose own children follow
 * the same rules. */
#ifndef ROOST_MIME_INT_H
#define ROOST_MIME_INT_H

#include "mime/mime.h"

#include <stddef.h>

struct buf;

/* RFC 2046 5.1 sets no nesting limit; Dovecot stops at 100 levels
 * (message_max_nested_parts). Deeper multiparts and embedded messages are
 * opaque parts (application/octet-stream). */
#define MIME_MAX_DEPTH 50
/* Parts per message (Dovecot: message_max_mime_parts 10000); parts after
 * this are part of the last part's content. */
#define MIME_MAX_PARTS 10000
/* RFC 2046 5.1.1: a boundary is 1 to 70 characters; we accept up to 200. */
#define MIME_MAX_BOUNDARY 200

/* The header fields a node remembers (first occurrence). */
enum mime_field {
    MF_CONTENT_TYPE, MF_CONTENT_TRANSFER_ENCODING, MF_CONTENT_ID, MF_CONTENT_DESCRIPTION,
    MF_CONTENT_DISPOSITION, MF_CONTENT_LANGUAGE, MF_CONTENT_LOCATION, MF_CONTENT_MD5,
    MF_DATE, MF_SUBJECT, MF_FROM, MF_SENDER, MF_REPLY_TO, MF_TO, MF_CC, MF_BCC,
    MF_IN_REPLY_TO, MF_MESSAGE_ID,
    MF_COUNT
};

enum mime_kind {
    MIME_LEAF,          /* a single part */
    MIME_MULTIPART,     /* children are the parts */
    MIME_MESSAGE,       /* message/rfc822 or message/global: one child, the embedded message */
};

/* Why a node's type is not the one its Content-Type names. */
enum mime_ctype_src {
    MIME_CT_HEADER,     /* the Content-Type field, as parsed */
    MIME_CT_DEFAULT,    /* none or invalid: text/plain; charset=us-ascii (RFC 2045 5.2) */
    MIME_CT_DIGEST,     /* none, inside multipart/digest: message/rfc822 (RFC 2046 5.1.5) */
    MIME_CT_OPAQUE,     /* too deep or too many parts: application/octet-stream */
};

#define MIME_NONE ((size_t)-1)

struct mime_node {
    size_t hdr_off, hdr_len;
    size_t body_off, body_len;
    size_t field_off[MF_COUNT];     /* value start, MIME_NONE when absent */
    size_t field_len[MF_COUNT];     /* value length (folding included, final EOL not) */
    enum mime_kind kind;
    enum mime_ctype_src ct_src;
    const char *type, *subtype;     /* into the message (MIME_CT_HEADER) or static */
    size_t type_len, subtype_len;
    int is_message;                 /* the top message or an embedded one */
    int first_child, next_sibling;  /* node indexes, -1 when none */
    int nchildren;
};

struct mime_msg {
    const char *data;
    size_t len;
    struct mime_node *nodes;
    int nnodes, cap;
};

/* ---- mime_hdr.c: header fields and structured values ---- */

/* One header field of a header range: the name and the value (after the
 * colon, folding included, final EOL excluded), and the whole field
 * [line_off, line_off + line_len) including its final line end. */
struct mime_hfield {
    size_t name_off, name_len;
    size_t value_off, value_len;
    size_t line_off, line_len;
};
/* Iterates the fields of DATA[off, off+len): returns 1 and fills F for the
 * next one (lines without a colon are skipped), 0 at the end. *POS starts
 * at OFF. */
int mime_hdr_next(const char *data, size_t off, size_t len, size_t *pos, struct mime_hfield *f);
/* The field's value unfolded (line ends before whitespace removed), NULs
 * dropped, leading and trailing whitespace trimmed; malloc'd, *N its length. */
char *mime_unfold(const char *v, size_t len, size_t *n);
/* ASCII case-insensitive compare of a length-counted string with a C string. */
int mime_name_eq(const char *s, size_t n, const char *name);

struct mime_param {
    char *name, *value;
};
struct mime_params {
    struct mime_param *v;
    int n, cap;
};
void mime_params_free(struct mime_params *p);
/* Value of NAME (case-insensitive), or NULL. */
const char *mime_params_get(const struct mime_params *p, const char *name);
/* Content-Type: "type/subtype *(; param)". 0 and the type and subtype
 * (pointers into S) when valid, -1 when not. PARAMS may be NULL; else
 * filled (RFC 2231 continuations joined). */
int mime_ctype_parse(const char *s, size_t n, const char **type, size_t *type_len,
                     const char **sub, size_t *sub_len, struct mime_params *params);
/* Content-Disposition: "token *(; param)". 0 when valid, -1 when not. */
int mime_disp_parse(const char *s, size_t n, const char **tok, size_t *tok_len,
                    struct mime_params *params);
/* The first token of S (for Content-Transfer-Encoding), or NULL. */
const char *mime_token(const char *s, size_t n, size_t *tok_len);

/* ---- mime.c ---- */

/* The node a part path names (RFC 3501 6.4.5), or -1. */
int mime_resolve(const struct mime_msg *m, const uint32_t *part, int nparts);
/* The embedded message of a message/rfc822 node, or -1. */
int mime_embedded(const struct mime_msg *m, int idx);
/* 1 when the node's type is text (case-insensitive). */
int mime_is_text(const struct mime_node *n);
/* Lines of the node's body: LF count, plus one for a last line without LF. */
size_t mime_body_lines(const struct mime_msg *m, const struct mime_node *n);
/* The node's Content-Transfer-Encoding decoded into OUT (a fresh malloc'd
 * block, *OUTLEN bytes). 0 ok, 2 unknown encoding (OUT untouched). */
int mime_decode_body(const struct mime_msg *m, const struct mime_node *n, char **out,
                     size_t *outlen);

/* ---- mime_addr.c: RFC 5322 address lists for ENVELOPE ---- */

/* Appends the ENVELOPE address list of a header value (unfolded, NUL-free)
 * to OUT: "((name adl mailbox host)...)" or NIL when no address. */
int mime_addr_list_write(const char *v, size_t n, int utf8, struct buf *out);

/* ---- mime_imap.c ---- */

/* An IMAP string for S[0..n): quoted when it can be, else a literal; NIL
 * when S is NULL. */
int mime_put_nstring(struct buf *out, const char *s, size_t n, int utf8);

#endif
