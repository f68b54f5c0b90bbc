/* reply - what HAProxy answers to each runtime command slotsync sends, by
 * version: the one place that tells a success from a refusal.
 *
 * HAProxy's CLI has no status code: success and refusal are both text, and
 * the text changed between versions (2.6's "no need to change the addr, port
 * changed from ..." is 3.0's "port changed from ..."). Every form is written
 * out whole in one table (src/reply.c), each row naming the versions whose
 * sources (src/server.c, src/cli.c, src/map.c) print it; a reply matches a
 * form only when the whole line matches, never by a prefix. The listings
 * ("show servers state", "show map", "show backend", "show cli level",
 * "show stat") are read here too, every field validated: what HAProxy says
 * reaches the rest of slotsync only through this file. No I/O:
 * tests/test_reply.c table-tests each version's replies and each listing.
 */
#ifndef SLOTSYNC_REPLY_H
#define SLOTSYNC_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/runtime-t.h>

struct host_route;

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

/* ---- the listings and the framing ---- */

/* Split a complete response into n replies (each without its terminating
 * empty line), in place: on success returns 0, buf has a NUL where each
 * reply ends and *replies is an array of n pointers into buf (free the array
 * with runtime_replies_free(); buf stays the caller's). A reply of
 * "show servers state" can be megabytes: it is not copied. Returns -EPROTO
 * when the text does not frame into exactly n replies, -ENOMEM on allocation
 * failure; buf is then untouched. */
int runtime_split_replies(char *buf, size_t len, size_t n, char ***replies);
void runtime_replies_free(char **replies, size_t n);

/* Whether reply is HAProxy's success answer to cmd: reply_judge() says
 * REPLY_OK (src/reply.c holds every version's wording). */
bool runtime_reply_ok(const char *cmd, const char *reply);

/* The level of a CLI connection, from the reply to "show cli level". */
enum runtime_level { RUNTIME_LEVEL_USER = 0, RUNTIME_LEVEL_OPERATOR, RUNTIME_LEVEL_ADMIN };

/* RUNTIME_LEVEL_* for reply, or -EPROTO when it is none of them. */
int runtime_cli_level(const char *reply);
const char *runtime_level_name(enum runtime_level level);

/* Parse "show servers state" output (format version 1). Each valid row is
 * passed to row(); rows with a field that fails validation are skipped and
 * counted in *bad_rows (optional). Returns 0, -EPROTO if the text is not
 * version 1 output, or the first non-zero value row() returned. */
int runtime_parse_servers_state(const char *text, size_t len,
                                int (*row)(const struct server_state *st, void *arg), void *arg,
                                size_t *bad_rows);

/* Parse "show map <file>" output: lines "<id> <key> <value>" (id 0x + hex,
 * fields separated by exactly one space, key 1..RUNTIME_MAP_KEY_MAX and value
 * 1..RUNTIME_MAP_VALUE_MAX printable non-space bytes). Lines are split on
 * '\n' only, so two lines never combine into one entry. row() gets each
 * valid entry (NUL-terminated copies, borrowed for the call); other lines
 * are skipped and counted in *bad_lines (optional). Returns 0 or the first
 * non-zero value row() returned. The caller validates what key and value may
 * hold. */
int runtime_parse_map(const char *text, size_t len,
                      int (*row)(const char *key, const char *value, void *arg), void *arg,
                      size_t *bad_lines);

/* The HTTP frontend's routes in a "show map <file>" reply: the entries that
 * look like a route slotsync could have written (a lower-case host name of
 * [a-z0-9._-], a valid service name), sorted by host; the text of any other
 * never goes back into a command. *out is new (caller frees; NULL when *n is
 * 0); *bad (optional) counts the lines left out. 0 or -ENOMEM. */
int runtime_parse_routes(const char *text, size_t len, struct host_route **out, size_t *n,
                         size_t *bad);

/* Parse "show backend" output: "# name", then one proxy name per line.
 * row() gets each name that is a valid HAProxy name (at most
 * HAPROXY_NAME_MAX bytes of [A-Za-z0-9._:-]); others are counted in
 * *bad_lines. 0, -EPROTO without the header, or row()'s first non-zero. */
int runtime_parse_backends(const char *text, size_t len, int (*row)(const char *name, void *arg),
                           void *arg, size_t *bad_lines);

/* One row of a "show stat" reply (CSV): what status shows beside a
 * server. status and check are printable, with '"' and '\\' replaced by
 * '?' (HAProxy's reply is untrusted); scur and stot are -1 when absent. */
struct reply_stat_row {
    char px[HAPROXY_NAME_MAX + 1], sv[HAPROXY_NAME_MAX + 1];
    long long scur, stot;
    char check[32], status[32];
};

/* Parse a "show stat" reply (text NUL-terminated): "# " and a header of
 * column names, then one CSV line per proxy or server. A reply that is not
 * CSV or lacks pxname/svname has no rows. *rows is new (caller frees; NULL
 * when there are none), *n its length. 0 or -ENOMEM. */
int reply_parse_stat(const char *text, struct reply_stat_row **rows, size_t *n);

/* The row of rows (n of them) for proxy px and server sv, or NULL. */
const struct reply_stat_row *reply_find_stat(const struct reply_stat_row *rows, size_t n,
                                             const char *px, const char *sv);

#endif
