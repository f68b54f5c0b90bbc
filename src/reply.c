/* reply - HAProxy's answers to slotsync's runtime commands, version by
 * version, read from HAProxy's own sources:
 *   2.6.0: src/server.c srv_update_addr_port(), cli_parse_set_server(),
 *          cli_parse_add_server(), cli_parse_delete_server(), cli_find_server();
 *          src/cli.c cli_has_level(), cli_gen_usage_msg(); src/map.c.
 *   3.0.0, 3.2.0, 3.4.0: the same functions, plus server_set_inetaddr()
 *          (3.0 moved the address change there and its wording with it) and
 *          srv_check_for_deletion().
 * Each row is a whole message. 2.6 prints a few refusals without their
 * newline (the reply then does not frame: runtime_split_replies() says
 * -EPROTO); 3.0+ always ends a message with one (cli_output_msg()).
 * Below the table: the framing of a batch's response, and the listings
 * ("show servers state", "show map", "show backend", "show cli level",
 * "show stat"), every field validated before anything else sees it. */
#include <slotsync/reply.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/endpoint.h>
#include <slotsync/plan.h>
#include <slotsync/routes-t.h>
#include <slotsync/spare.h>
#include <slotsync/vec.h>

#define V26 REPLY_V2_6
#define V30 REPLY_V3_0
#define V32 REPLY_V3_2
#define V34 REPLY_V3_4
#define V3X REPLY_V3_X
#define VALL REPLY_V_ALL

#define OK(c, v, t)                                                                                \
    {                                                                                              \
        REPLY_CMD_##c, REPLY_OK, REPLY_WHOLE, v, t                                                 \
    }
#define NO(c, v, t)                                                                                \
    {                                                                                              \
        REPLY_CMD_##c, REPLY_REFUSED, REPLY_WHOLE, v, t                                            \
    }

static const struct reply_form forms[] = {
    /* ---- set server B/S addr A port P ----
     * 2.6 reports the address, then the port, then " by 'stats socket
     * command'", on every path (a no-op too). 3.0+ reports only what
     * changed, "nothing changed" when nothing did, and names the updater
     * only when something changed. */
    OK(SET_ADDR, V26, "no need to change the addr, no need to change the port by %q"),
    OK(SET_ADDR, V26, "no need to change the addr, port changed from %q to %q by %q"),
    OK(SET_ADDR, V26, "IP changed from %q to %q, no need to change the port by %q"),
    OK(SET_ADDR, VALL, "IP changed from %q to %q, port changed from %q to %q by %q"),
    OK(SET_ADDR, V3X, "IP changed from %q to %q by %q"),
    OK(SET_ADDR, V3X, "port changed from %q to %q by %q"),
    OK(SET_ADDR, V3X, "nothing changed"),
    NO(SET_ADDR, VALL, "set server <b>/<s> addr requires an address and optionally a port."),
    NO(SET_ADDR, V26, "Invalid addr %q by %q"),
    NO(SET_ADDR, V3X, "Invalid addr %q"),
    NO(SET_ADDR, V26,
       "Update to families other than AF_INET and AF_INET6 supported only through configuration "
       "file by %q"),
    NO(SET_ADDR, V3X,
       "Update to families other than AF_INET and AF_INET6 supported only through configuration "
       "file"),
    NO(SET_ADDR, V26,
       "Update for the current server address family is only supported through configuration "
       "file by %q"),
    NO(SET_ADDR, V3X,
       "Update for the current server address family is only supported through configuration "
       "file."),
    /* 2.6 may have changed the address before the port fails to parse: the
     * command as a whole still did not do what was asked. */
    NO(SET_ADDR, V26, "no need to change the addr, problem converting port %q to an int by %q"),
    NO(SET_ADDR, V26, "IP changed from %q to %q, problem converting port %q to an int by %q"),
    NO(SET_ADDR, V3X, "problem converting port %q to an int"),

    /* ---- set server B/S weight W ---- */
    OK(SET_WEIGHT, VALL, ""),
    NO(SET_WEIGHT, VALL, "Require <weight> or <weight%>."),
    NO(SET_WEIGHT, VALL, "Empty weight string empty or preceded by garbage"),
    NO(SET_WEIGHT, VALL, "Relative weight must be positive."),
    NO(SET_WEIGHT, VALL, "Absolute weight can only be between 0 and 256 inclusive."),
    NO(SET_WEIGHT, VALL, "Trailing garbage in weight string"),
    NO(SET_WEIGHT, VALL,
       "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'."),

    /* ---- set server B/S state ready|drain|maint ---- */
    OK(SET_STATE, VALL, ""),
    NO(SET_STATE, VALL, "'set server <srv> state' expects 'ready', 'drain' and 'maint'."),

    /* ---- add server B/S ADDR OPTIONS ----
     * Success is HAProxy's notice, after any warning the parse printed
     * (3.4: "Ignoring cookie as HTTP mode is disabled."). */
    {REPLY_CMD_ADD_SERVER, REPLY_OK, REPLY_LAST, VALL, "New server registered."},
    NO(ADD_SERVER, V26 | V30 | V32,
       "Backend must use a dynamic load balancing to support dynamic servers."),
    NO(ADD_SERVER, V30 | V32, " Dynamic servers cannot be used with log backends."),
    NO(ADD_SERVER, V34,
       "Backend does not support dynamic servers : backend %q uses a non dynamic load balancing "
       "method."),
    NO(ADD_SERVER, V34,
       "Backend does not support dynamic servers : proxy %q uses a non dynamic load balancing "
       "method."),
    NO(ADD_SERVER, VALL, "Already exists a server with the same name in backend."),
    NO(ADD_SERVER, VALL, "%q option is not accepted for dynamic server"),
    NO(ADD_SERVER, VALL, "Cannot attach server : no id left in proxy"),

    /* ---- del server B/S ----
     * 3.3+ refuses while idle connections remain (purged asynchronously
     * after "set server ... state maint"): the same words as for live ones. */
    OK(DEL_SERVER, VALL, "Server deleted."),
    NO(DEL_SERVER, VALL,
       "This server cannot be removed at runtime due to other configuration elements pointing to "
       "it."),
    NO(DEL_SERVER, VALL, "Only servers in maintenance mode can be deleted."),
    NO(DEL_SERVER, VALL, "Server still has connections attached to it, cannot remove it."),

    /* ---- add|publish|unpublish|del backend B (3.4+: src/proxy.c; what
     * dynback.h uses on HAProxy 3.4+) ----
     * A backend of that name already there is what was wanted: it runs
     * (a creation that raced a resync, or a removal that stopped half-way)
     * and its slots are added to it. A frontend of that name is not. */
    OK(ADD_BACKEND, V34, "New backend registered."),
    OK(ADD_BACKEND, V34,
       "Error during backend creation : name is already used by other proxy 'backend %w'."),
    NO(ADD_BACKEND, V34,
       "Error during backend creation : name is already used by other proxy 'frontend %w'."),
    NO(ADD_BACKEND, V34,
       "Error during backend creation : name is already used by other proxy 'listen %w'."),
    NO(ADD_BACKEND, V34, "Cannot find default proxy %q."),
    NO(ADD_BACKEND, V34, "New backend registered (no support for dynamic servers: %r"),
    NO(ADD_BACKEND, V34, "Error during backend creation."),
    {REPLY_CMD_ADD_BACKEND, REPLY_REFUSED, REPLY_FIRST, V34, "Error during backend creation : %r"},
    OK(PUBLISH_BACKEND, V34, "Backend published."),
    OK(UNPUBLISH_BACKEND, V34, "Backend unpublished."),
    /* 3.4 prints the notices queued before it first */
    {REPLY_CMD_DEL_BACKEND, REPLY_OK, REPLY_LAST, V34, "Backend deleted."},
    NO(DEL_BACKEND, V34, "Backend must be unpublished prior to its deletion."),
    NO(DEL_BACKEND, V34, "Cannot delete a listen section."),
    NO(DEL_BACKEND, V34, "Usage: del backend <name>."),

    /* ---- enable|disable health B/S ---- */
    OK(ENABLE_HEALTH, VALL, ""),
    NO(ENABLE_HEALTH, VALL, "Health check was not configured on this server, cannot enable."),
    OK(DISABLE_HEALTH, VALL, ""),

    /* ---- add|set|del map FILE KEY [VALUE] ---- */
    OK(ADD_MAP, VALL, ""),
    OK(SET_MAP, VALL, ""),
    OK(DEL_MAP, VALL, ""),
    NO(ADD_MAP, VALL, "Failed to add a key."),
    NO(SET_MAP, VALL, "'set map' expects three parameters: map identifier, key and value."),
    NO(SET_MAP, VALL, "Failed to update an entry."),
    /* src/pattern.c's "entry not found", with map.c's "%s.": a missing key */
    NO(SET_MAP, VALL, "entry not found."),
    NO(DEL_MAP, VALL, "This command expects two parameters: map identifier and key."),
    NO(DEL_MAP, VALL, "Key not found."),
    NO(ANY, VALL, "Unknown map identifier. Please use #<id> or <file>."),
    NO(ANY, VALL, "Malformed identifier. Please use #<id> or <file>."),
    NO(ANY, VALL, "Missing map identifier and/or key."),
    NO(ANY, VALL, "Missing map identifier."),
    NO(ANY, VALL, "Out of memory error."),

    /* ---- what any command may get (cli_find_server(), cli_has_level(),
     * the CLI's parser) ---- */
    NO(ANY, VALL, "Require 'backend/server'."),
    NO(ANY, VALL, "No such backend."),
    NO(ANY, VALL, "No such server."),
    NO(ANY, VALL, "Proxy is disabled."),
    NO(ANY, VALL, "Permission denied"),
    {REPLY_CMD_ANY, REPLY_REFUSED, REPLY_FIRST, V26,
     "Unknown command. Please enter one of the following commands only:"},
    {REPLY_CMD_ANY, REPLY_REFUSED, REPLY_FIRST, V26,
     "Unknown command, but maybe one of the following ones is a better match:"},
    {REPLY_CMD_ANY, REPLY_REFUSED, REPLY_FIRST, V3X,
     "Unknown command: %q. Please enter one of the following commands only:"},
    {REPLY_CMD_ANY, REPLY_REFUSED, REPLY_FIRST, V3X,
     "Unknown command: %q, but maybe one of the following ones is a better match:"},
    {REPLY_CMD_ANY, REPLY_REFUSED, REPLY_FIRST, VALL,
     "The following commands are valid at this level:"},
};

const struct reply_form *reply_forms(size_t *n)
{
    *n = sizeof(forms) / sizeof(forms[0]);
    return forms;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The n-th space-separated word of cmd is w (n from 0). */
static bool word_is(const char *cmd, int n, const char *w)
{
    size_t wl = strlen(w);

    for (; n > 0 && cmd; n--) {
        cmd = strchr(cmd, ' ');
        if (cmd)
            cmd++;
    }
    return cmd && strncmp(cmd, w, wl) == 0 && (cmd[wl] == ' ' || cmd[wl] == '\0');
}

enum reply_cmd reply_cmd_kind(const char *cmd)
{
    if (starts_with(cmd, PLAN_SET_SERVER)) {
        if (word_is(cmd, 3, "addr"))
            return REPLY_CMD_SET_ADDR;
        if (word_is(cmd, 3, "weight"))
            return REPLY_CMD_SET_WEIGHT;
        if (word_is(cmd, 3, "state"))
            return REPLY_CMD_SET_STATE;
        return REPLY_CMD_OTHER;
    }
    if (starts_with(cmd, PLAN_ADD_SERVER))
        return REPLY_CMD_ADD_SERVER;
    if (starts_with(cmd, "del server "))
        return REPLY_CMD_DEL_SERVER;
    if (starts_with(cmd, PLAN_ADD_BACKEND))
        return REPLY_CMD_ADD_BACKEND;
    if (starts_with(cmd, PLAN_PUBLISH_BACKEND))
        return REPLY_CMD_PUBLISH_BACKEND;
    if (starts_with(cmd, PLAN_UNPUBLISH_BACKEND))
        return REPLY_CMD_UNPUBLISH_BACKEND;
    if (starts_with(cmd, PLAN_DEL_BACKEND))
        return REPLY_CMD_DEL_BACKEND;
    if (starts_with(cmd, "enable health "))
        return REPLY_CMD_ENABLE_HEALTH;
    if (starts_with(cmd, "disable health "))
        return REPLY_CMD_DISABLE_HEALTH;
    if (starts_with(cmd, "add map "))
        return REPLY_CMD_ADD_MAP;
    if (starts_with(cmd, "set map "))
        return REPLY_CMD_SET_MAP;
    if (starts_with(cmd, "del map "))
        return REPLY_CMD_DEL_MAP;
    if (starts_with(cmd, PLAN_SHOW_MAP))
        return REPLY_CMD_SHOW_MAP;
    if (strcmp(cmd, PLAN_SHOW_STATE) == 0)
        return REPLY_CMD_SHOW_STATE;
    if (strcmp(cmd, PLAN_SHOW_BACKENDS) == 0)
        return REPLY_CMD_SHOW_BACKEND;
    if (strcmp(cmd, PLAN_SHOW_LEVEL) == 0)
        return REPLY_CMD_SHOW_LEVEL;
    return REPLY_CMD_OTHER;
}

bool reply_form_match(const char *text, const char *line, size_t len)
{
    size_t i = 0;

    while (*text) {
        if (text[0] == '%' && text[1] == 'q') {
            if (i >= len || line[i] != '\'')
                return false;
            i++;
            while (i < len && line[i] != '\'' && line[i] != '\n')
                i++;
            if (i >= len || line[i] != '\'')
                return false;
            i++;
            text += 2;
            continue;
        }
        if (text[0] == '%' && text[1] == 'w') {
            size_t from = i;

            while (i < len && line[i] != '\'' && line[i] != ' ' && line[i] != '\n')
                i++;
            if (i == from)
                return false;
            text += 2;
            continue;
        }
        if (text[0] == '%' && text[1] == 'r') {
            while (i < len && line[i] != '\n')
                i++;
            text += 2;
            continue;
        }
        if (i >= len || line[i] != *text)
            return false;
        i++;
        text++;
    }
    return i == len;
}

static bool form_matches(const struct reply_form *f, const char *reply)
{
    const char *nl = strchr(reply, '\n');
    size_t len = strlen(reply);

    switch (f->where) {
    case REPLY_WHOLE:
        return !nl && reply_form_match(f->text, reply, len);
    case REPLY_FIRST:
        return reply_form_match(f->text, reply, nl ? (size_t)(nl - reply) : len);
    case REPLY_LAST: {
        const char *last = strrchr(reply, '\n');

        last = last ? last + 1 : reply;
        return reply_form_match(f->text, last, len - (size_t)(last - reply));
    }
    }
    return false;
}

/* The listings' shapes: a format version, a header, a level name, map rows. */
static bool listing_ok(enum reply_cmd kind, const char *reply)
{
    switch (kind) {
    case REPLY_CMD_SHOW_STATE:
        return starts_with(reply, "1\n") || strcmp(reply, "1") == 0;
    case REPLY_CMD_SHOW_BACKEND:
        return starts_with(reply, "# name\n") || strcmp(reply, "# name") == 0;
    case REPLY_CMD_SHOW_LEVEL:
        return strcmp(reply, "user") == 0 || strcmp(reply, "operator") == 0 ||
               strcmp(reply, "admin") == 0;
    case REPLY_CMD_SHOW_MAP:
        /* an empty map, or rows "<0x id> <key> <value>" (runtime_parse_map()
         * checks each) */
        return reply[0] == '\0' || (reply[0] == '0' && reply[1] == 'x');
    default:
        return false;
    }
}

enum reply_verdict reply_judge(const char *cmd, const char *reply, const struct reply_form **form)
{
    enum reply_cmd kind = reply_cmd_kind(cmd);

    if (form)
        *form = NULL;
    if (kind == REPLY_CMD_OTHER)
        return REPLY_UNKNOWN;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const struct reply_form *f = &forms[i];

        if ((f->cmd == kind || f->cmd == REPLY_CMD_ANY) && form_matches(f, reply)) {
            if (form)
                *form = f;
            return f->verdict;
        }
    }
    if (listing_ok(kind, reply))
        return REPLY_OK;
    return REPLY_UNKNOWN;
}

/* ---- pure: replies ---- */

void runtime_replies_free(char **replies, size_t n)
{
    (void)n; /* the replies live in the response buffer */
    free(replies);
}

int runtime_split_replies(char *buf, size_t len, size_t n, char ***replies)
{
    char **r;
    size_t *end; /* where each reply's NUL goes, once all of them frame */
    size_t got = 0, start = 0, i = 0;

    *replies = NULL;
    r = calloc(n ? n : 1, sizeof(*r));
    end = calloc(n ? n : 1, sizeof(*end));
    if (!r || !end) {
        free(r);
        free(end);
        return -ENOMEM;
    }
    /* A reply is every line up to the next empty line. The first line of a
     * reply may itself be the empty line (an empty reply). */
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t line_end = nl ? (size_t)(nl - buf) : len;

        if (!nl)
            goto proto;      /* every reply ends with "\n\n" or is "\n" */
        if (line_end == i) { /* empty line closes the reply */
            if (got == n)
                goto proto;
            /* without its last '\n': the NUL goes there (for an empty
             * reply, on the empty line's own '\n') */
            r[got] = buf + start;
            end[got] = i > start ? i - 1 : i;
            got++;
            start = line_end + 1;
        }
        i = line_end + 1;
    }
    if (got != n || start != len)
        goto proto;
    for (size_t k = 0; k < n; k++)
        buf[end[k]] = '\0';
    free(end);
    *replies = r;
    return 0;
proto:
    free(r);
    free(end);
    return -EPROTO;
}

bool runtime_reply_ok(const char *cmd, const char *reply)
{
    return reply_judge(cmd, reply, NULL) == REPLY_OK;
}

static const char *const level_names[] = {"user", "operator", "admin"};

int runtime_cli_level(const char *reply)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(reply, level_names[i]) == 0)
            return i;
    return -EPROTO;
}

const char *runtime_level_name(enum runtime_level level)
{
    return (unsigned)level < 3 ? level_names[level] : "?";
}

/* ---- pure: show servers state ---- */

enum col {
    C_BE_ID,
    C_BE_NAME,
    C_SRV_ID,
    C_SRV_NAME,
    C_ADDR,
    C_OP,
    C_ADMIN,
    C_UWEIGHT,
    C_PORT,
    C_N
};

static const char *const col_names[C_N] = {
    "be_id",        "be_name",         "srv_id",      "srv_name", "srv_addr",
    "srv_op_state", "srv_admin_state", "srv_uweight", "srv_port",
};

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > HAPROXY_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-' || *s == ':'))
            return false;
    return true;
}

/* Decimal, no sign, no leading zeros beyond "0", at most max. */
static bool uint_ok(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (!*s || (s[0] == '0' && s[1]))
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* Split line in place on spaces into at most max fields. */
static size_t split_fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *save = NULL;

    for (char *t = strtok_r(line, " ", &save); t && n < max; t = strtok_r(NULL, " ", &save))
        f[n++] = t;
    return n;
}

static int parse_row(char **f, size_t nf, const int *idx, struct server_state *st)
{
    unsigned long v;
    bool ipv6;

    memset(st, 0, sizeof(*st));
    for (int c = 0; c < C_N; c++)
        if ((size_t)idx[c] >= nf)
            return -1;
    if (!name_ok(f[idx[C_BE_NAME]]) || !name_ok(f[idx[C_SRV_NAME]]))
        return -1;
    strcpy(st->backend, f[idx[C_BE_NAME]]);
    strcpy(st->server, f[idx[C_SRV_NAME]]);
    if (!uint_ok(f[idx[C_BE_ID]], 0x7fffffff, &v))
        return -1;
    st->backend_id = (int)v;
    if (!uint_ok(f[idx[C_SRV_ID]], 0x7fffffff, &v))
        return -1;
    st->server_id = (int)v;
    if (endpoint_parse_host(f[idx[C_ADDR]], st->addr, &ipv6) < 0)
        return -1;
    if (!uint_ok(f[idx[C_PORT]], 65535, &v))
        return -1;
    st->port = (unsigned)v;
    if (!uint_ok(f[idx[C_OP]], 3, &v))
        return -1;
    st->op_state = (int)v;
    if (!uint_ok(f[idx[C_ADMIN]], 0xffff, &v))
        return -1;
    st->admin_bits = (unsigned)v;
    if (v & SRV_ADMF_MAINT)
        st->admin = SERVER_MAINT;
    else if (v & SRV_ADMF_DRAIN)
        st->admin = SERVER_DRAIN;
    else
        st->admin = SERVER_READY;
    if (!uint_ok(f[idx[C_UWEIGHT]], 256, &v))
        return -1;
    st->weight = (int)v;
    return 0;
}

int runtime_parse_servers_state(const char *text, size_t len,
                                int (*row)(const struct server_state *st, void *arg), void *arg,
                                size_t *bad_rows)
{
    int idx[C_N];
    bool have_header = false;
    size_t bad = 0, pos;
    char *copy;
    int ret = 0;

    if (bad_rows)
        *bad_rows = 0;
    if (len < 1 || text[0] != '1' || (len > 1 && text[1] != '\n'))
        return -EPROTO;
    copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    pos = 2;
    while (pos < len && ret == 0) {
        char *line = copy + pos, *nl = strchr(line, '\n');
        char *f[64];
        size_t nf;

        if (nl)
            *nl = '\0';
        pos = nl ? (size_t)(nl - copy) + 1 : len;
        if (!*line)
            continue;
        if (line[0] == '#') {
            nf = split_fields(line + 1, f, 64);
            for (int c = 0; c < C_N; c++) {
                idx[c] = -1;
                for (size_t k = 0; k < nf; k++)
                    if (strcmp(f[k], col_names[c]) == 0)
                        idx[c] = (int)k;
                if (idx[c] < 0) {
                    ret = -EPROTO;
                    break;
                }
            }
            have_header = ret == 0;
            continue;
        }
        if (!have_header) {
            ret = -EPROTO;
            break;
        }
        struct server_state st;

        nf = split_fields(line, f, 64);
        if (parse_row(f, nf, idx, &st) < 0) {
            bad++;
            continue;
        }
        ret = row(&st, arg);
    }
    free(copy);
    if (bad_rows)
        *bad_rows = bad;
    return ret;
}

/* ---- pure: show map, show backend ---- */

/* Calls fn(line, line_len, arg) for every line of text (split on '\n' only,
 * so no line can run into the next), the last one with or without its
 * '\n'; stops at the first non-zero return. */
static int each_line(const char *text, size_t len, int (*fn)(const char *, size_t, void *),
                     void *arg)
{
    size_t pos = 0;
    int ret = 0;

    while (pos < len && ret == 0) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;

        ret = fn(text + pos, end - pos, arg);
        pos = end + 1;
    }
    return ret;
}

/* A field of a line: 1..max bytes of printable ASCII other than space. */
static bool field_ok(const char *s, size_t n, size_t max)
{
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

struct map_parse {
    int (*row)(const char *key, const char *value, void *arg);
    void *arg;
    size_t bad;
};

static int map_line(const char *line, size_t len, void *arg)
{
    struct map_parse *mp = arg;
    const char *sp1, *sp2, *end = line + len;
    char key[RUNTIME_MAP_KEY_MAX + 1], value[RUNTIME_MAP_VALUE_MAX + 1];
    size_t idn, kn, vn;

    if (len == 0)
        return 0;
    /* "<id> <key> <value>": exactly two single spaces. */
    sp1 = memchr(line, ' ', len);
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (!sp2 || memchr(sp2 + 1, ' ', (size_t)(end - sp2 - 1))) {
        mp->bad++;
        return 0;
    }
    idn = (size_t)(sp1 - line);
    kn = (size_t)(sp2 - sp1 - 1);
    vn = (size_t)(end - sp2 - 1);
    if (idn < 3 || idn > 18 || line[0] != '0' || line[1] != 'x' ||
        strspn(line + 2, "0123456789abcdefABCDEF") < idn - 2 ||
        !field_ok(sp1 + 1, kn, RUNTIME_MAP_KEY_MAX) ||
        !field_ok(sp2 + 1, vn, RUNTIME_MAP_VALUE_MAX)) {
        mp->bad++;
        return 0;
    }
    memcpy(key, sp1 + 1, kn);
    key[kn] = '\0';
    memcpy(value, sp2 + 1, vn);
    value[vn] = '\0';
    return mp->row(key, value, mp->arg);
}

int runtime_parse_map(const char *text, size_t len,
                      int (*row)(const char *key, const char *value, void *arg), void *arg,
                      size_t *bad_lines)
{
    struct map_parse mp = {row, arg, 0};
    int ret = each_line(text, len, map_line, &mp);

    if (bad_lines)
        *bad_lines = mp.bad;
    return ret;
}

struct backend_parse {
    int (*row)(const char *name, void *arg);
    void *arg;
    size_t bad;
    bool header;
};

static int backend_line(const char *line, size_t len, void *arg)
{
    struct backend_parse *bp = arg;
    char name[HAPROXY_NAME_MAX + 1];

    if (!bp->header) {
        if (len != 6 || memcmp(line, "# name", 6) != 0)
            return -EPROTO;
        bp->header = true;
        return 0;
    }
    if (len == 0)
        return 0;
    if (len > HAPROXY_NAME_MAX) {
        bp->bad++;
        return 0;
    }
    memcpy(name, line, len);
    name[len] = '\0';
    if (!name_ok(name)) {
        bp->bad++;
        return 0;
    }
    return bp->row(name, bp->arg);
}

int runtime_parse_backends(const char *text, size_t len, int (*row)(const char *name, void *arg),
                           void *arg, size_t *bad_lines)
{
    struct backend_parse bp = {row, arg, 0, false};
    int ret = each_line(text, len, backend_line, &bp);

    if (ret == 0 && !bp.header)
        ret = -EPROTO;
    if (bad_lines)
        *bad_lines = bp.bad;
    return ret;
}

/* ---- routes of the HTTP frontend's map ---- */

/* A map key as render_host_routes() writes it: a lower-cased host name. */
static bool map_host_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CONFIG_HOSTNAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
              *s == '-'))
            return false;
    return true;
}

static int cmp_route_host(const void *a, const void *b)
{
    return strcmp(((const struct host_route *)a)->host, ((const struct host_route *)b)->host);
}

struct map_read {
    struct host_route *r;
    size_t n, cap, bad;
};

/* One "show map" entry: kept only when it looks like a route we could have
 * written; its text never goes back into a command otherwise (the map only
 * ever holds what we rendered or added). */
static int map_row(const char *key, const char *value, void *arg)
{
    struct map_read *m = arg;

    if (!map_host_ok(key) || !spare_proxy_name_valid(value)) {
        m->bad++;
        return 0;
    }
    if (vec_reserve(&m->r, &m->cap, m->n + 1, sizeof(*m->r), 16) < 0)
        return -ENOMEM;
    /* lengths checked above */
    memcpy(m->r[m->n].host, key, strlen(key) + 1);
    memcpy(m->r[m->n].backend, value, strlen(value) + 1);
    m->n++;
    return 0;
}

int runtime_parse_routes(const char *text, size_t len, struct host_route **out, size_t *n,
                         size_t *bad)
{
    struct map_read m = {0};
    size_t bad_lines = 0;
    int r = runtime_parse_map(text, len, map_row, &m, &bad_lines);

    *out = NULL;
    *n = 0;
    if (r < 0) {
        free(m.r);
        return r;
    }
    if (bad)
        *bad = bad_lines + m.bad;
    /* A host listed twice: plan_map() deletes it and adds it once. */
    if (m.n)
        qsort(m.r, m.n, sizeof(*m.r), cmp_route_host);
    *out = m.r;
    *n = m.n;
    return 0;
}

/* ---- pure: show stat ---- */

/* Field i of a CSV line (no quoting in HAProxy's stat CSV) into out. */
static bool csv_field(const char *line, size_t len, int i, char *out, size_t size)
{
    const char *s = line, *end = line + len;

    for (; i > 0; i--) {
        const char *c = memchr(s, ',', (size_t)(end - s));

        if (!c)
            return false;
        s = c + 1;
    }
    const char *c = memchr(s, ',', (size_t)(end - s));
    size_t n = (size_t)((c ? c : end) - s);

    if (n >= size)
        n = size - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static int column(const char *header, size_t len, const char *name)
{
    char f[64];

    for (int i = 0; csv_field(header, len, i, f, sizeof(f)); i++)
        if (strcmp(f, name) == 0)
            return i;
    return -1;
}

/* Printable text only: HAProxy's reply is untrusted. */
static void clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            *s = '?';
}

int reply_parse_stat(const char *text, struct reply_stat_row **rows, size_t *n)
{
    struct reply_stat_row *stats;
    size_t n_stats = 0;
    const char *nl = strchr(text, '\n');
    size_t hlen;
    int c_px, c_sv, c_scur, c_stot, c_status, c_check;
    size_t lines = 0;

    *rows = NULL;
    *n = 0;
    if (strncmp(text, "# ", 2) != 0 || !nl)
        return 0; /* not CSV: no session columns */
    text += 2;
    hlen = (size_t)(nl - text);
    c_px = column(text, hlen, "pxname");
    c_sv = column(text, hlen, "svname");
    c_scur = column(text, hlen, "scur");
    c_stot = column(text, hlen, "stot");
    c_status = column(text, hlen, "status");
    c_check = column(text, hlen, "check_status");
    if (c_px < 0 || c_sv < 0)
        return 0;
    for (const char *s = nl + 1; *s; s++)
        lines += *s == '\n';
    stats = calloc(lines + 1, sizeof(*stats));
    if (!stats)
        return -ENOMEM;
    for (const char *s = nl + 1; *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        struct reply_stat_row *r = &stats[n_stats];
        char num[32];

        memset(r, 0, sizeof(*r));
        if (len && csv_field(s, len, c_px, r->px, sizeof(r->px)) &&
            csv_field(s, len, c_sv, r->sv, sizeof(r->sv))) {
            r->scur = r->stot = -1;
            if (c_scur >= 0 && csv_field(s, len, c_scur, num, sizeof(num)) && num[0])
                r->scur = strtoll(num, NULL, 10);
            if (c_stot >= 0 && csv_field(s, len, c_stot, num, sizeof(num)) && num[0])
                r->stot = strtoll(num, NULL, 10);
            if (c_status >= 0)
                csv_field(s, len, c_status, r->status, sizeof(r->status));
            if (c_check >= 0)
                csv_field(s, len, c_check, r->check, sizeof(r->check));
            clean(r->status);
            clean(r->check);
            if (n_stats < lines)
                n_stats++;
        }
        if (!e)
            break;
        s = e + 1;
    }
    *rows = stats;
    *n = n_stats;
    return 0;
}

const struct reply_stat_row *reply_find_stat(const struct reply_stat_row *rows, size_t n,
                                             const char *px, const char *sv)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].px, px) == 0 && strcmp(rows[i].sv, sv) == 0)
            return &rows[i];
    return NULL;
}
