/* reply - what HAProxy answers to each runtime command slotsync sends, by
 * version: the one place that tells a success from a refusal.
 *
 * HAProxy's CLI has no status code: success and refusal are both text, and
 * the text changed between versions (2.6's "no need to change the addr, port
 * changed from ..." is 3.0's "port changed from ..."). Every form is written
 * out whole in one table (src/reply.c), each row naming the versions whose
 * sources (src/server.c, src/cli.c, src/map.c) print it; a reply matches a
 * form only when the whole line matches, never by a prefix. No I/O:
 * tests/test_reply.c table-tests each version's replies.
 */
#ifndef SLOTSYNC_REPLY_H
#define SLOTSYNC_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* The versions whose wording a form was read from. */
#define REPLY_V2_6 0x1u
#define REPLY_V3_0 0x2u
#define REPLY_V3_2 0x4u
#define REPLY_V3_4 0x8u
#define REPLY_V3_X (REPLY_V3_0 | REPLY_V3_2 | REPLY_V3_4)
#define REPLY_V_ALL (REPLY_V2_6 | REPLY_V3_X)

/* The kind of a command, from its text (reply_cmd_kind()). */
enum reply_cmd {
    REPLY_CMD_OTHER = 0, /* not a command slotsync sends */
    REPLY_CMD_ANY,       /* table only: a refusal any command may get */
    REPLY_CMD_SET_ADDR,  /* set server B/S addr A port P */
    REPLY_CMD_SET_WEIGHT,
    REPLY_CMD_SET_STATE,
    REPLY_CMD_ADD_SERVER,
    REPLY_CMD_DEL_SERVER,
    REPLY_CMD_ENABLE_HEALTH,
    REPLY_CMD_DISABLE_HEALTH,
    REPLY_CMD_ADD_MAP,
    REPLY_CMD_SET_MAP,
    REPLY_CMD_DEL_MAP,
    REPLY_CMD_SHOW_MAP,
    REPLY_CMD_SHOW_STATE,
    REPLY_CMD_SHOW_BACKEND,
    REPLY_CMD_SHOW_LEVEL,
    REPLY_CMD_ADD_BACKEND, /* 3.4+, dynback.h */
    REPLY_CMD_PUBLISH_BACKEND,
    REPLY_CMD_UNPUBLISH_BACKEND,
    REPLY_CMD_DEL_BACKEND,
};

enum reply_verdict {
    REPLY_UNKNOWN = 0, /* no form matches: treated as a refusal, logged as unknown */
    REPLY_OK,
    REPLY_REFUSED, /* one of HAProxy's own refusals */
};

/* Where in the reply a form must match. */
enum reply_where {
    REPLY_WHOLE = 0, /* the whole reply is this one line */
    REPLY_LAST,      /* its last line; lines before it are HAProxy's warnings */
    REPLY_FIRST,     /* its first line; a listing follows (the CLI's usage) */
};

/* One form. In text, "%q" stands for one single-quoted field ('...' with
 * no quote or newline inside), as HAProxy quotes addresses, ports, names
 * and the updater; "%w" for one word (at least one byte, no quote, space
 * or newline: a name inside a quoted field); "%r" for the rest of the line
 * (HAProxy's own reason); every other byte matches itself. */
struct reply_form {
    enum reply_cmd cmd;
    enum reply_verdict verdict;
    enum reply_where where;
    unsigned versions; /* REPLY_V* */
    const char *text;
};

/* The table (borrowed, static); *n gets its length. */
const struct reply_form *reply_forms(size_t *n);

enum reply_cmd reply_cmd_kind(const char *cmd);

/* Whether line (len bytes, no newline) matches form text (see above). */
bool reply_form_match(const char *text, const char *line, size_t len);

/* The verdict on reply (a NUL-terminated reply without its framing empty
 * line) to cmd. *form (optional) gets the matching row of the table, or
 * NULL for the listings judged by their shape ("show servers state",
 * "show backend", "show cli level", "show map") and for REPLY_UNKNOWN. */
enum reply_verdict reply_judge(const char *cmd, const char *reply, const struct reply_form **form);

#endif
