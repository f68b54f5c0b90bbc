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
 * -EPROTO); 3.0+ always ends a message with one (cli_output_msg()). */
#include <slotsync/reply.h>

#include <string.h>

#include <slotsync/plan.h>

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
