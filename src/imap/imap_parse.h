/* imap_parse: the IMAP command reader and parser (RFC 3501 9, RFC 9051 9,
 * RFC 7888 LITERAL+/LITERAL-, RFC 3516 literal8).
 *
 * Two layers, both pure (no I/O, no logging, no libevent), so that the
 * libFuzzer target drives them directly:
 *
 * 1. The reader frames one command out of the byte stream: its line(s) and
 *    literals. It tells the session when to send "+ " for a synchronizing
 *    literal and refuses oversize lines and literals from the announced
 *    size alone, before anything is allocated for them.
 * 2. The parser turns a framed command into a tag, a command name and a tree
 *    of arguments (atoms, strings, NIL, lists), bounded in count and depth.
 *    Command handlers then interpret the tree with the typed parsers below:
 *    sequence sets, FETCH attributes, SEARCH programs, STORE arguments,
 *    dates, flags and mailbox names (modified UTF-7).
 *
 * All strings handed out are NUL-terminated copies owned by the command
 * (freed by imap_command_free). Literals may contain NUL: len is the truth. */
#ifndef ROOST_IMAP_PARSE_H
#define ROOST_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- limits (named, with their source) ---- */
/* One command line between literals; RFC 7162 4 asks servers to accept at
 * least 8192 octets. */
#define IMAP_MAX_LINE 65536
/* All literals of one command except APPEND's message literals. */
#define IMAP_MAX_COMMAND_LITERALS (64 * 1024)
/* LITERAL- (RFC 7888 5): a non-synchronizing literal is at most 4096. */
#define IMAP_MAX_NONSYNC_LITERAL_MINUS 4096
/* Nesting of parenthesised lists. */
#define IMAP_MAX_DEPTH 16
/* Arguments (all levels) in one command. */
#define IMAP_MAX_ARGS 10000
#define IMAP_MAX_TAG 64
/* Command names are at most "UID EXPUNGE"-sized; longer is unknown. */
#define IMAP_MAX_COMMAND_NAME 32
/* Bad commands before "* BYE Too many invalid commands" and close. */
#define IMAP_MAX_BAD_COMMANDS 20
/* RFC 3501 5.4 / 9051 5.4: the autologout timer is at least 30 minutes. */
#define IMAP_IDLE_TIMEOUT (30 * 60)
/* Default APPENDLIMIT (RFC 7889), Gmail's SIZE. */
#define IMAP_DEFAULT_APPEND_LIMIT 35882577

/* ---- 1. the reader ---- */

enum imap_read {
    IMAP_READ_MORE,        /* consumed everything given; need more bytes */
    IMAP_READ_CONTINUE,    /* send "+ OK\r\n" now (synchronizing literal) */
    IMAP_READ_COMMAND,     /* a whole command is framed: imap_reader_command */
    IMAP_READ_LINE_TOO_LONG,   /* line over the limit: "BAD Line too long";
                                * the reader skips to the end of that line */
    IMAP_READ_LITERAL_TOO_BIG, /* literal over its limit: for a synchronizing
                                * literal answer "NO [TOOBIG]"/"BAD" and the
                                * command is dropped (no "+" was sent); for a
                                * non-synchronizing one the reader skips its
                                * octets, then answers as for a bad command */
};

struct imap_reader;

/* APPEND_LIMIT bounds each literal of an APPEND (or of a command the session
 * marks with imap_reader_allow_big_literals); everything else is bounded by
 * IMAP_MAX_COMMAND_LITERALS. */
struct imap_reader *imap_reader_new(size_t append_limit);
void imap_reader_free(struct imap_reader **rp);
/* Feeds bytes. Consumes up to LEN and sets *used to how many; call again
 * with the rest after handling the result. Never consumes past the end of a
 * framed command (pipelined commands stay for the next call). */
enum imap_read imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
                                size_t *used);
/* The framed command's raw text after IMAP_READ_COMMAND: the lines without
 * their CRLF, each literal's octets in place of its "{n}\r\n" announcement
 * marked so that the parser knows them (opaque; pass to imap_parse_command).
 * Resets the reader for the next command. */
struct imap_framed;
struct imap_framed *imap_reader_take(struct imap_reader *r);
void imap_framed_free(struct imap_framed **fp);
/* The tag of the command being read or just refused, "" if unknown; for the
 * tagged reply to IMAP_READ_*_TOO_* results. */
const char *imap_reader_tag(const struct imap_reader *r);

/* ---- 2. the command tree ---- */

enum imap_arg_type {
    IMAP_ARG_ATOM,     /* includes \Flags, sequence sets, "BODY[...]<..>" */
    IMAP_ARG_STRING,   /* quoted string (unescaped) */
    IMAP_ARG_LITERAL,  /* {n} / {n+} / ~{n} (literal8 sets is_literal8) */
    IMAP_ARG_NIL,
    IMAP_ARG_LIST,
};

struct imap_arg {
    enum imap_arg_type type;
    char *str;               /* ATOM, STRING, LITERAL: NUL-terminated */
    size_t len;
    int is_literal8;
    struct imap_arg *list;   /* LIST: its elements */
    int nlist;
};

struct imap_command {
    char tag[IMAP_MAX_TAG + 1];
    char name[IMAP_MAX_COMMAND_NAME + 1]; /* upper case; "FETCH" for "UID FETCH" */
    int uid;                              /* "UID" prefix given */
    struct imap_arg *args;                /* top-level arguments */
    int nargs;
};

/* An atom may contain "[...]" with spaces and parenthesised lists inside
 * (BODY[HEADER.FIELDS (A B)]<0.10>): the tokenizer keeps it one atom. '%'
 * and '*' are atom characters (LIST patterns, sequence sets). */
enum imap_perr {
    IMAP_PERR_OK,
    IMAP_PERR_NO_TAG,          /* empty line or bad tag: "* BAD" */
    IMAP_PERR_NO_COMMAND,
    IMAP_PERR_SYNTAX,          /* unbalanced parens/brackets, bad quoting, 8-bit in atom, ... */
    IMAP_PERR_TOO_DEEP,
    IMAP_PERR_TOO_MANY_ARGS,
};
/* Parses a framed command. On error the tag (if any was read) is still in
 * CMD->tag so the session can answer "<tag> BAD ...". */
enum imap_perr imap_parse_command(const struct imap_framed *f, struct imap_command *cmd);
void imap_command_free(struct imap_command *cmd);
const char *imap_perr_text(enum imap_perr e);

/* astring / string / nstring helpers: 1 when ARG is an atom, string or
 * literal (astring), and sets *s. */
int imap_arg_astring(const struct imap_arg *arg, const char **s, size_t *len);
/* A decimal number of LEN digits (no sign); 0 ok, -1 bad or above MAX. */
int imap_parse_number(const char *s, size_t len, uint64_t max, uint64_t *out);

/* ---- typed parsers over the tree ---- */

/* Sequence sets (RFC 3501 9 sequence-set; RFC 5182 "$" is the saved result).
 * '*' is IMAP_SEQ_STAR and is resolved by the session against the mailbox. */
#define IMAP_SEQ_STAR UINT32_MAX
struct imap_seq_range { uint32_t lo, hi; };  /* lo <= hi after parsing */
struct imap_seqset {
    struct imap_seq_range *r;
    int n;
    int saved;   /* "$" */
};
/* 0 ok, -1 syntax (zero, overflow, empty element). */
int imap_seqset_parse(const char *s, struct imap_seqset *set);
void imap_seqset_free(struct imap_seqset *set);
/* 1 when N is in SET, STAR_VALUE standing for '*'. */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star_value);
/* Writes SET (sorted, merged) as "1:3,5" into OUT (size OUTSZ); for UIDPLUS
 * COPYUID/APPENDUID and ESEARCH ALL. Returns length, or -1 if too small. */
int imap_uids_format(const uint32_t *uids, int n, char *out, size_t outsz);

/* FETCH attributes (RFC 3501 6.4.5, 9051 6.4.5, 7162 CHANGEDSINCE/VANISHED,
 * 3516 BINARY). */
enum imap_fetch_item {
    IMAP_FI_UID = 1 << 0, IMAP_FI_FLAGS = 1 << 1, IMAP_FI_INTERNALDATE = 1 << 2,
    IMAP_FI_RFC822_SIZE = 1 << 3, IMAP_FI_ENVELOPE = 1 << 4, IMAP_FI_BODY = 1 << 5,
    IMAP_FI_BODYSTRUCTURE = 1 << 6, IMAP_FI_RFC822 = 1 << 7,
    IMAP_FI_RFC822_HEADER = 1 << 8, IMAP_FI_RFC822_TEXT = 1 << 9,
    IMAP_FI_MODSEQ = 1 << 10,
};
enum imap_section_kind {
    IMAP_SEC_ALL,        /* BODY[] or BODY[1.2] */
    IMAP_SEC_HEADER, IMAP_SEC_HEADER_FIELDS, IMAP_SEC_HEADER_FIELDS_NOT,
    IMAP_SEC_TEXT, IMAP_SEC_MIME,
};
#define IMAP_MAX_PART_DEPTH 32
struct imap_section {
    int peek;                     /* BODY.PEEK / BINARY.PEEK */
    int binary;                   /* BINARY[...] (decoded) */
    int binary_size;              /* BINARY.SIZE[...] */
    uint32_t part[IMAP_MAX_PART_DEPTH];  /* 1.2.3 */
    int nparts;
    enum imap_section_kind kind;
    char **fields;                /* HEADER.FIELDS (...): upper case */
    int nfields;
    int partial;                  /* <offset.count> given */
    uint32_t offset, count;
    char *spec;                   /* the section text as to echo back,
                                   * e.g. "1.HEADER.FIELDS (SUBJECT)" */
};
struct imap_fetch_spec {
    unsigned items;               /* enum imap_fetch_item bits */
    struct imap_section *sections;
    int nsections;
    uint64_t changedsince;        /* 0 when not given */
    int vanished;                 /* VANISHED modifier (UID FETCH only) */
};
/* ARGS are the arguments after the sequence set: a macro (ALL, FAST, FULL),
 * one attribute, or a list, then optional modifiers "(CHANGEDSINCE n
 * [VANISHED])". 0 ok, -1 with *error_r a short reason for the BAD reply. */
int imap_fetch_parse(const struct imap_arg *args, int nargs, struct imap_fetch_spec *spec,
                     const char **error_r);
void imap_fetch_spec_free(struct imap_fetch_spec *spec);

/* SEARCH programs (RFC 3501 6.4.4, 9051 6.4.4, ESEARCH RFC 4731, CONDSTORE
 * MODSEQ, RFC 5182 SAVE). A tree: AND of children at the top and in lists. */
enum imap_skey {
    IMAP_SK_AND,         /* children */
    IMAP_SK_OR,          /* exactly two children */
    IMAP_SK_NOT,         /* one child */
    IMAP_SK_ALL, IMAP_SK_SEQSET, IMAP_SK_UID,
    IMAP_SK_ANSWERED, IMAP_SK_DELETED, IMAP_SK_DRAFT, IMAP_SK_FLAGGED, IMAP_SK_SEEN,
    IMAP_SK_RECENT, IMAP_SK_NEW, IMAP_SK_OLD,
    IMAP_SK_UNANSWERED, IMAP_SK_UNDELETED, IMAP_SK_UNDRAFT, IMAP_SK_UNFLAGGED, IMAP_SK_UNSEEN,
    IMAP_SK_KEYWORD, IMAP_SK_UNKEYWORD,                      /* str */
    IMAP_SK_BCC, IMAP_SK_CC, IMAP_SK_FROM, IMAP_SK_TO, IMAP_SK_SUBJECT, /* str */
    IMAP_SK_HEADER,                                          /* field, str */
    IMAP_SK_BODY, IMAP_SK_TEXT,                              /* str */
    IMAP_SK_BEFORE, IMAP_SK_ON, IMAP_SK_SINCE,               /* date (internal) */
    IMAP_SK_SENTBEFORE, IMAP_SK_SENTON, IMAP_SK_SENTSINCE,   /* date (Date:) */
    IMAP_SK_LARGER, IMAP_SK_SMALLER,                         /* number */
    IMAP_SK_MODSEQ,                                          /* number */
    IMAP_SK_OLDER, IMAP_SK_YOUNGER,                          /* seconds (RFC 5032) */
};
struct imap_search_key {
    enum imap_skey key;
    struct imap_search_key *child;  /* AND/OR/NOT: array of nchild */
    int nchild;
    char *field;                    /* HEADER field name */
    char *str;                      /* UTF-8 (charset already converted) */
    char *folded;                   /* STR case-folded (imap_search_prepare), or NULL */
    size_t folded_len;
    uint64_t num;
    time_t date;                    /* the day, 00:00 UTC */
    struct imap_seqset set;         /* SEQSET, UID */
};
enum imap_esearch_ret {
    IMAP_ESR_MIN = 1 << 0, IMAP_ESR_MAX = 1 << 1, IMAP_ESR_ALL = 1 << 2,
    IMAP_ESR_COUNT = 1 << 3, IMAP_ESR_SAVE = 1 << 4,
};
struct imap_search_prog {
    struct imap_search_key root;    /* IMAP_SK_AND */
    int esearch;                    /* RETURN (...) given */
    unsigned ret;                   /* enum imap_esearch_ret; 0 with esearch = ALL */
    int uses_modseq;                /* a MODSEQ key: reply with (MODSEQ n) */
    int needs_headers, needs_body;  /* what the evaluation must read */
};
/* ARGS are everything after SEARCH: [RETURN (...)] [CHARSET x] keys.
 * Charsets: US-ASCII and UTF-8 (others: 1 with *error_r "[BADCHARSET
 * (US-ASCII UTF-8)]"). 0 ok, 1 bad charset, -1 syntax. */
int imap_search_parse(const struct imap_arg *args, int nargs, struct imap_search_prog *prog,
                      const char **error_r);
void imap_search_prog_free(struct imap_search_prog *prog);

/* Flags and STORE (RFC 3501 6.4.6, 7162 UNCHANGEDSINCE). */
#define IMAP_MAX_FLAG_LEN 64
#define IMAP_MAX_FLAGS 64
struct imap_flag_list {
    char *flag[IMAP_MAX_FLAGS];     /* "\Seen" case-normalised, or keyword */
    int n;
};
/* A flag list ("(\Seen foo)" or, for STORE, single flags as separate
 * atoms). Refuses \Recent and unknown \-flags (-1, *error_r). */
int imap_flags_parse(const struct imap_arg *args, int nargs, struct imap_flag_list *fl,
                     const char **error_r);
void imap_flags_free(struct imap_flag_list *fl);
enum imap_store_op { IMAP_STORE_REPLACE, IMAP_STORE_ADD, IMAP_STORE_REMOVE };
struct imap_store_spec {
    enum imap_store_op op;
    int silent;
    uint64_t unchangedsince;       /* 0: not given */
    int has_unchangedsince;
    struct imap_flag_list flags;
};
/* ARGS after the sequence set: ["(UNCHANGEDSINCE n)"] item flags. */
int imap_store_parse(const struct imap_arg *args, int nargs, struct imap_store_spec *spec,
                     const char **error_r);
void imap_store_spec_free(struct imap_store_spec *spec);

/* Dates: "1-Feb-1994" (search) -> 00:00 UTC of that day; date-time
 * "17-Jul-1996 02:44:25 -0700" (APPEND) -> Unix time. 0 ok, -1 bad. */
int imap_date_parse(const char *s, time_t *t);
int imap_datetime_parse(const char *s, time_t *t);
/* Formats T as an IMAP date-time "dd-Mon-yyyy hh:mm:ss +0000" (27+NUL). */
void imap_datetime_format(time_t t, char out[32]);

/* Mailbox names: modified UTF-7 (RFC 3501 5.1.3) <-> UTF-8. Decoding
 * refuses malformed input. Both return malloc'd strings or NULL. */
char *imap_mutf7_to_utf8(const char *s);
char *imap_utf8_to_mutf7(const char *s);
/* Checks a mailbox name (UTF-8, "/" delimiter): not empty, no leading "/",
 * no empty/"."/".." component, no control characters, at most 1000 octets,
 * no "*" or "%". Returns NULL if fine, else the reason. */
const char *imap_mailbox_name_check(const char *name);

/* Appends S to OUT as an IMAP string: a quoted string when it can be one,
 * a literal when it holds CR, LF, NUL or (unless UTF8 is set) 8-bit bytes.
 * 0 ok, -1 when OUT is full. */
struct buf;
int imap_quote_string(struct buf *out, const char *s, size_t len, int utf8);

#endif
