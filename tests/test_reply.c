/* Tests for reply: each supported HAProxy version's answers to every command
 * slotsync sends, success and refusal. Rows name the version whose source
 * (or, where marked, whose running binary) prints the reply. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/routes-t.h>
#include <slotsync/reply.h>
#include <slotsync/runtime.h>

#define ADDR "set server web/s3 addr 127.0.0.1 port 46605"
#define EMPTY_ADDR "set server web/s3 addr 0.0.0.0 port 0"
#define WEIGHT "set server web/s3 weight 7"
#define STATE "set server web/s3 state maint"
#define ADD "add server web/s17 0.0.0.0:0 check"
#define DEL "del server web/s17"
#define HEALTH "enable health web/s17"
#define NOHEALTH "disable health web/s17"
#define ADDMAP "add map /etc/haproxy/hosts.map a.test web"
#define SETMAP "set map /etc/haproxy/hosts.map a.test web"
#define DELMAP "del map /etc/haproxy/hosts.map a.test"
#define SHOWMAP "show map /etc/haproxy/hosts.map"
#define BY " by 'stats socket command'"
#define ADDBE "add backend web from slotsync:dynamic mode http"
#define PUBBE "publish backend web"
#define UNPUBBE "unpublish backend web"
#define DELBE "del backend web"

struct sample {
    const char *version; /* "2.6", "3.0", "3.2", "3.4" */
    const char *cmd, *reply;
    enum reply_verdict verdict;
};

#define OK_ REPLY_OK
#define NO_ REPLY_REFUSED
#define UNK REPLY_UNKNOWN

static const struct sample samples[] = {
    /* set server addr: the table (2.6.12 vs 3.0.11, seen running),
     * and the forms of each version's srv_update_addr_port() */
    {"2.6", ADDR, "no need to change the addr, port changed from '42723' to '46605'" BY, OK_},
    {"3.0", ADDR, "port changed from '42723' to '46605'" BY, OK_},
    {"3.2", ADDR, "port changed from '42723' to '46605'" BY, OK_},
    {"3.4", ADDR, "port changed from '42723' to '46605'" BY, OK_},
    {"2.6", ADDR, "no need to change the addr, no need to change the port" BY, OK_},
    {"3.0", ADDR, "nothing changed", OK_},
    {"3.2", ADDR, "nothing changed", OK_},
    {"3.4", ADDR, "nothing changed", OK_},
    {"2.6", EMPTY_ADDR, "no need to change the addr, no need to change the port" BY, OK_},
    {"3.0", EMPTY_ADDR, "port changed from '+0' to '0'" BY, OK_},
    {"3.4", EMPTY_ADDR, "port changed from '+0' to '0'" BY, OK_},
    {"2.6", ADDR, "IP changed from '127.0.0.2' to '127.0.0.1', no need to change the port" BY, OK_},
    {"3.0", ADDR, "IP changed from '127.0.0.2' to '127.0.0.1'" BY, OK_},
    {"3.2", ADDR, "IP changed from '127.0.0.2' to '127.0.0.1'" BY, OK_},
    {"3.4", ADDR, "IP changed from '127.0.0.2' to '127.0.0.1'" BY, OK_},
    {"2.6", ADDR, "IP changed from '0.0.0.0' to '127.0.0.1', port changed from '+0' to '46605'" BY,
     OK_},
    {"3.0", ADDR, "IP changed from '0.0.0.0' to '127.0.0.1', port changed from '+0' to '46605'" BY,
     OK_},
    {"3.4", ADDR, "IP changed from '::1' to '127.0.0.1', port changed from '80' to '46605'" BY,
     OK_},
    {"2.6", ADDR, "Invalid addr '1.2.3.999'" BY, NO_},
    {"3.0", ADDR, "Invalid addr '1.2.3.999'", NO_},
    {"3.4", ADDR, "Invalid addr '1.2.3.999'", NO_},
    {"2.6", ADDR,
     "Update to families other than AF_INET and AF_INET6 supported only through configuration "
     "file" BY,
     NO_},
    {"3.2", ADDR,
     "Update to families other than AF_INET and AF_INET6 supported only through configuration "
     "file",
     NO_},
    {"2.6", ADDR,
     "Update for the current server address family is only supported through configuration "
     "file" BY,
     NO_},
    {"3.0", ADDR,
     "Update for the current server address family is only supported through configuration "
     "file.",
     NO_},
    {"2.6", ADDR, "no need to change the addr, problem converting port 'x' to an int" BY, NO_},
    {"2.6", ADDR,
     "IP changed from '127.0.0.2' to '127.0.0.1', problem converting port 'x' to an int" BY, NO_},
    {"3.4", ADDR, "problem converting port 'x' to an int", NO_},
    {"2.6", ADDR, "set server <b>/<s> addr requires an address and optionally a port.", NO_},
    {"3.4", ADDR, "set server <b>/<s> addr requires an address and optionally a port.", NO_},
    {"2.6", ADDR, "No such server.", NO_},
    {"3.0", ADDR, "No such backend.", NO_},
    {"3.4", ADDR, "Proxy is disabled.", NO_},
    {"3.2", ADDR, "Require 'backend/server'.", NO_},
    {"2.6", ADDR, "Permission denied", NO_},
    {"3.4", ADDR, "Permission denied", NO_},

    /* set server weight / state */
    {"2.6", WEIGHT, "", OK_},
    {"3.0", WEIGHT, "", OK_},
    {"3.2", WEIGHT, "", OK_},
    {"3.4", WEIGHT, "", OK_},
    {"2.6", WEIGHT, "Absolute weight can only be between 0 and 256 inclusive.", NO_},
    {"3.4", WEIGHT, "Require <weight> or <weight%>.", NO_},
    {"2.6", WEIGHT, "Trailing garbage in weight string", NO_},
    {"3.0", WEIGHT, "Empty weight string empty or preceded by garbage", NO_},
    {"3.2", WEIGHT, "Relative weight must be positive.", NO_},
    {"3.4", WEIGHT,
     "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.", NO_},
    {"2.6", STATE, "", OK_},
    {"3.0", STATE, "", OK_},
    {"3.2", STATE, "", OK_},
    {"3.4", STATE, "", OK_},
    {"3.0", STATE, "'set server <srv> state' expects 'ready', 'drain' and 'maint'.", NO_},
    {"2.6", STATE, "No such server.", NO_},

    /* add server */
    {"2.6", ADD, "New server registered.", OK_},
    {"3.0", ADD, "New server registered.", OK_},
    {"3.2", ADD, "New server registered.", OK_},
    {"3.4", ADD, "New server registered.", OK_},
    {"3.4", ADD, "Ignoring cookie as HTTP mode is disabled.\nNew server registered.", OK_},
    {"2.6", ADD, "Already exists a server with the same name in backend.", NO_},
    {"3.4", ADD, "Already exists a server with the same name in backend.", NO_},
    {"2.6", ADD, "Backend must use a dynamic load balancing to support dynamic servers.", NO_},
    {"3.2", ADD, "Backend must use a dynamic load balancing to support dynamic servers.", NO_},
    {"3.0", ADD, " Dynamic servers cannot be used with log backends.", NO_},
    {"3.4", ADD,
     "Backend does not support dynamic servers : backend 'st' uses a non dynamic load "
     "balancing method.",
     NO_},
    {"3.4", ADD,
     "Backend does not support dynamic servers : proxy 'st' uses a non dynamic load balancing "
     "method.",
     NO_},
    /* 3.0 took "enabled" off the dynamic server keywords */
    {"3.0", ADD, "'enabled' option is not accepted for dynamic server", NO_},
    {"3.4", ADD, "'enabled' option is not accepted for dynamic server", NO_},
    {"2.6", ADD, "'track' option is not accepted for dynamic server", NO_},
    {"3.2", ADD, "Cannot attach server : no id left in proxy", NO_},
    {"2.6", ADD, "No such backend.", NO_},

    /* del server (3.3+: idle connections hold it until purged) */
    {"2.6", DEL, "Server deleted.", OK_},
    {"3.0", DEL, "Server deleted.", OK_},
    {"3.2", DEL, "Server deleted.", OK_},
    {"3.4", DEL, "Server deleted.", OK_},
    {"2.6", DEL, "Only servers in maintenance mode can be deleted.", NO_},
    {"3.4", DEL, "Server still has connections attached to it, cannot remove it.", NO_},
    {"3.0", DEL,
     "This server cannot be removed at runtime due to other configuration elements pointing to "
     "it.",
     NO_},
    {"3.4", DEL, "No such server.", NO_},

    /* enable / disable health */
    {"2.6", HEALTH, "", OK_},
    {"3.0", HEALTH, "", OK_},
    {"3.2", HEALTH, "", OK_},
    {"3.4", HEALTH, "", OK_},
    {"2.6", HEALTH, "Health check was not configured on this server, cannot enable.", NO_},
    {"3.4", HEALTH, "Health check was not configured on this server, cannot enable.", NO_},
    {"2.6", NOHEALTH, "", OK_},
    {"3.4", NOHEALTH, "", OK_},
    {"3.4", NOHEALTH, "No such server.", NO_},

    /* maps (src/map.c: the same words in every supported version) */
    {"2.6", ADDMAP, "", OK_},
    {"3.0", ADDMAP, "", OK_},
    {"3.2", SETMAP, "", OK_},
    {"3.4", DELMAP, "", OK_},
    {"2.6", ADDMAP, "Failed to add a key.", NO_},
    {"3.4", ADDMAP, "Unknown map identifier. Please use #<id> or <file>.", NO_},
    {"3.0", SETMAP, "Failed to update an entry.", NO_},
    {"2.6", SETMAP, "'set map' expects three parameters: map identifier, key and value.", NO_},
    {"3.2", DELMAP, "Key not found.", NO_},
    {"2.6", DELMAP, "This command expects two parameters: map identifier and key.", NO_},
    {"3.4", DELMAP, "Malformed identifier. Please use #<id> or <file>.", NO_},
    {"3.0", DELMAP, "Missing map identifier and/or key.", NO_},
    {"2.6", SETMAP, "Out of memory error.", NO_},
    {"2.6", SHOWMAP, "0x55f8f2f168b0 web.local web", OK_},
    {"3.4", SHOWMAP, "0x55f8f2f168b0 web.local web\n0x55f8f2f16900 api.local api", OK_},
    {"3.0", SHOWMAP, "", OK_},
    {"2.6", SHOWMAP, "Unknown map identifier. Please use #<id> or <file>.", NO_},
    {"3.4", SHOWMAP, "Missing map identifier.", NO_},

    /* the reads: shapes, not words */
    {"2.6", "show servers state", "1\n# be_id be_name", OK_},
    {"3.4", "show servers state", "1", OK_},
    {"3.4", "show backend", "# name\nweb\nweb:spare", OK_},
    {"2.6", "show backend", "# name", OK_},
    {"3.0", "show cli level", "admin", OK_},
    {"2.6", "show cli level", "operator", OK_},
    {"3.0", "show cli level", "", UNK},

    /* a command HAProxy does not know, or not at this level */
    {"2.6", ADD,
     "Unknown command. Please enter one of the following commands only:\n  help           : "
     "full commands list",
     NO_},
    {"2.6", ADD,
     "Unknown command, but maybe one of the following ones is a better match:\n  add acl", NO_},
    {"3.0", ADD, "Unknown command: 'add'. Please enter one of the following commands only:\n  help",
     NO_},
    {"3.4", ADD,
     "Unknown command: 'add', but maybe one of the following ones is a better match:\n  add "
     "acl",
     NO_},
    {"3.2", DEL, "The following commands are valid at this level:\n  help", NO_},

    /* run-time backends, 3.4 only (src/proxy.c; seen running on 3.4.7) */
    {"3.4", ADDBE, "New backend registered.", OK_},
    {"3.4", ADDBE,
     "Error during backend creation : name is already used by other proxy 'backend web'.", OK_},
    {"3.4", ADDBE,
     "Error during backend creation : name is already used by other proxy 'frontend web'.", NO_},
    {"3.4", ADDBE,
     "Error during backend creation : name is already used by other proxy 'listen web'.", NO_},
    {"3.4", ADDBE, "Cannot find default proxy 'slotsync:dynamic'.", NO_},
    {"3.4", ADDBE,
     "New backend registered (no support for dynamic servers: backend 'web' uses a non dynamic "
     "load balancing method).",
     NO_},
    {"3.4", ADDBE, "Error during backend creation.", NO_},
    {"3.4", ADDBE, "Error during backend creation : out of memory.", NO_},
    {"3.4", PUBBE, "Backend published.", OK_},
    {"3.4", PUBBE, "No such backend.", NO_},
    {"3.4", UNPUBBE, "Backend unpublished.", OK_},
    {"3.4", DELBE, "Backend deleted.", OK_},
    {"3.4", DELBE, "Server deleted.\nBackend deleted.", OK_},
    {"3.4", DELBE, "Backend must be unpublished prior to its deletion.", NO_},
    {"3.4", DELBE, "Cannot delete a listen section.", NO_},
    {"3.4", DELBE, "Usage: del backend <name>.", NO_},
    {"3.0", ADDBE,
     "Unknown command: 'add backend', but maybe one of the following ones is a better match:\n"
     "  add server",
     NO_},
    {"2.6", ADDBE,
     "Unknown command, but maybe one of the following ones is a better match:\n  add server", NO_},

    /* what no version says: neither success nor a known refusal */
    /* never a success: HAProxy's own creation errors, whatever follows */
    {"any", ADDBE,
     "Error during backend creation : name is already used by other proxy "
     "'backend web' or so.",
     NO_},
    {"any", ADDBE,
     "Error during backend creation : name is already used by other proxy "
     "'backend '.",
     NO_},
    {"any", ADDBE, "New backend registered", UNK},
    {"any", DELBE, "Backend deleted.\nBut then", UNK},
    {"any", ADDR, "", UNK},
    {"any", ADDR, "port changed from '1' to '2'", UNK},              /* no updater */
    {"any", ADDR, "nothing changed by 'stats socket command'", UNK}, /* no such form */
    {"any", ADDR, "port changed from '1' to '2'" BY "\nNo such server.", UNK},
    {"any", ADDR, "IP changed from 'x'\nNo such server.", UNK},
    {"any", ADDR, "IP changed from '127.0.0.2' to '127.0.0.1' by 'stats socket command' and more",
     UNK},
    {"any", ADDR, "no need to change the addr", UNK}, /* a prefix of 2.6's reply */
    {"any", WEIGHT, "ok", UNK},
    {"any", ADD, "New server registered", UNK},
    {"any", ADD, "New server registered.\nbut then something", UNK},
    {"2.6", SETMAP, "entry not found.", NO_},
    {"3.4", SETMAP, "entry not found.", NO_},
    {"any", SETMAP, "entry not found", UNK},
    {"any", HEALTH, "No such server.\n", UNK},
    {"any", "show servers state", "Can't find backend.", UNK},
    {"any", SHOWMAP, "Permission denied", NO_},
};

#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

static const char *verdict_name(enum reply_verdict v)
{
    return v == REPLY_OK ? "ok" : v == REPLY_REFUSED ? "refused" : "unknown";
}

static unsigned version_bit(const char *v)
{
    if (strcmp(v, "2.6") == 0)
        return REPLY_V2_6;
    if (strcmp(v, "3.0") == 0)
        return REPLY_V3_0;
    if (strcmp(v, "3.2") == 0)
        return REPLY_V3_2;
    if (strcmp(v, "3.4") == 0)
        return REPLY_V3_4;
    return 0;
}

Test(reply, each_version_each_command)
{
    for (size_t k = 0; k < N_SAMPLES; k++) {
        const struct sample *s = &samples[k];
        const struct reply_form *f;
        enum reply_verdict v = reply_judge(s->cmd, s->reply, &f);

        cr_expect_eq(v, s->verdict, "HAProxy %s: \"%s\" -> \"%s\": %s, want %s", s->version, s->cmd,
                     s->reply, verdict_name(v), verdict_name(s->verdict));
        /* A reply judged by a form is one the table says this version prints. */
        if (f && version_bit(s->version))
            cr_expect(f->versions & version_bit(s->version),
                      "HAProxy %s: \"%s\" matched a form of other versions: \"%s\"", s->version,
                      s->reply, f->text);
        cr_expect_eq(runtime_reply_ok(s->cmd, s->reply), s->verdict == REPLY_OK,
                     "runtime_reply_ok(\"%s\", \"%s\")", s->cmd, s->reply);
    }
}

/* Every form of the table is some sample's answer: no row nobody tested. */
Test(reply, every_form_is_sampled)
{
    size_t n;
    const struct reply_form *forms = reply_forms(&n);

    for (size_t i = 0; i < n; i++) {
        bool seen = false;

        for (size_t k = 0; k < N_SAMPLES && !seen; k++) {
            const struct reply_form *f;

            reply_judge(samples[k].cmd, samples[k].reply, &f);
            seen = f == &forms[i];
        }
        cr_expect(seen, "form %zu (\"%s\") has no sample", i, forms[i].text);
    }
}

/* Each version has a success sample for every command slotsync sends. */
Test(reply, every_version_has_every_success)
{
    static const char *const versions[] = {"2.6", "3.0", "3.2", "3.4"};
    static const char *const cmds[] = {ADDR, WEIGHT, STATE, ADD, HEALTH};

    for (size_t v = 0; v < 4; v++)
        for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
            bool seen = false;

            for (size_t k = 0; k < N_SAMPLES; k++)
                seen |= strcmp(samples[k].version, versions[v]) == 0 &&
                        strcmp(samples[k].cmd, cmds[c]) == 0 && samples[k].verdict == REPLY_OK;
            cr_expect(seen, "HAProxy %s has no success sample for \"%s\"", versions[v], cmds[c]);
        }
}

/* No form's text, cut short or run on, is still a success. */
Test(reply, no_prefix_no_suffix)
{
    size_t n;
    const struct reply_form *forms = reply_forms(&n);
    static const char *const cmd_of[] = {
        [REPLY_CMD_SET_ADDR] = ADDR,
        [REPLY_CMD_SET_WEIGHT] = WEIGHT,
        [REPLY_CMD_SET_STATE] = STATE,
        [REPLY_CMD_ADD_SERVER] = ADD,
        [REPLY_CMD_DEL_SERVER] = DEL,
        [REPLY_CMD_ENABLE_HEALTH] = HEALTH,
        [REPLY_CMD_DISABLE_HEALTH] = NOHEALTH,
        [REPLY_CMD_ADD_MAP] = ADDMAP,
        [REPLY_CMD_SET_MAP] = SETMAP,
        [REPLY_CMD_DEL_MAP] = DELMAP,
        [REPLY_CMD_ADD_BACKEND] = ADDBE,
        [REPLY_CMD_PUBLISH_BACKEND] = PUBBE,
        [REPLY_CMD_UNPUBLISH_BACKEND] = UNPUBBE,
        [REPLY_CMD_DEL_BACKEND] = DELBE,
    };

    for (size_t i = 0; i < n; i++) {
        char text[512], cut[512], longer[520];
        size_t len = 0;
        const char *cmd;

        if (forms[i].verdict != REPLY_OK || forms[i].cmd >= sizeof(cmd_of) / sizeof(cmd_of[0]) ||
            !(cmd = cmd_of[forms[i].cmd]) || !forms[i].text[0])
            continue;
        /* the form with each %q filled in */
        for (const char *t = forms[i].text; *t && len < sizeof(text) - 8; t++) {
            if (t[0] == '%' && t[1] == 'q') {
                memcpy(text + len, "'7'", 3);
                len += 3;
                t++;
            } else if (t[0] == '%' && t[1] == 'w') {
                text[len++] = '7';
                t++;
            } else {
                text[len++] = *t;
            }
        }
        text[len] = '\0';
        cr_assert_eq(reply_judge(cmd, text, NULL), REPLY_OK, "\"%s\"", text);
        memcpy(cut, text, len - 1);
        cut[len - 1] = '\0';
        cr_expect_neq(reply_judge(cmd, cut, NULL), REPLY_OK, "cut: \"%s\"", cut);
        snprintf(longer, sizeof(longer), "%s.", text);
        cr_expect_neq(reply_judge(cmd, longer, NULL), REPLY_OK, "longer: \"%s\"", longer);
    }
}

Test(reply, quoted_field)
{
    cr_expect(reply_form_match("a %q b", "a '' b", 6));
    cr_expect(reply_form_match("a %q b", "a 'x y' b", 9));
    cr_expect_not(reply_form_match("a %q b", "a 'x' y' b", 10));
    cr_expect_not(reply_form_match("a %q b", "a 'x b", 6));
    cr_expect_not(reply_form_match("a %q", "a x", 3));
    cr_expect_not(reply_form_match("%q", "'a\nb'", 5));
    /* a word: at least one byte, no quote, space or newline */
    cr_expect(reply_form_match("'b %w'.", "'b web'.", 8));
    cr_expect_not(reply_form_match("'b %w'.", "'b '.", 5));
    cr_expect_not(reply_form_match("'b %w'.", "'b w b'.", 8));
    cr_expect_not(reply_form_match("'b %w'.", "'b w'b'.", 8));
    /* the rest of the line */
    cr_expect(reply_form_match("E : %r", "E : anything at all.", 20));
    cr_expect(reply_form_match("E : %r", "E : ", 4));
    cr_expect_not(reply_form_match("E : %r", "E :", 3));
}

Test(reply, command_kinds)
{
    cr_expect_eq(reply_cmd_kind(ADDR), REPLY_CMD_SET_ADDR);
    cr_expect_eq(reply_cmd_kind(WEIGHT), REPLY_CMD_SET_WEIGHT);
    cr_expect_eq(reply_cmd_kind(STATE), REPLY_CMD_SET_STATE);
    cr_expect_eq(reply_cmd_kind("set server web/s1 addrx 1"), REPLY_CMD_OTHER);
    cr_expect_eq(reply_cmd_kind("set server web/s1 health up"), REPLY_CMD_OTHER);
    cr_expect_eq(reply_cmd_kind(ADD), REPLY_CMD_ADD_SERVER);
    cr_expect_eq(reply_cmd_kind(DEL), REPLY_CMD_DEL_SERVER);
    cr_expect_eq(reply_cmd_kind(SHOWMAP), REPLY_CMD_SHOW_MAP);
    cr_expect_eq(reply_cmd_kind("show servers state"), REPLY_CMD_SHOW_STATE);
    cr_expect_eq(reply_cmd_kind("show info"), REPLY_CMD_OTHER);
    cr_expect_eq(reply_cmd_kind(ADDBE), REPLY_CMD_ADD_BACKEND);
    cr_expect_eq(reply_cmd_kind(PUBBE), REPLY_CMD_PUBLISH_BACKEND);
    cr_expect_eq(reply_cmd_kind(UNPUBBE), REPLY_CMD_UNPUBLISH_BACKEND);
    cr_expect_eq(reply_cmd_kind(DELBE), REPLY_CMD_DEL_BACKEND);
    cr_expect_eq(reply_judge("show info", "Name: HAProxy", NULL), REPLY_UNKNOWN);
}

/* ---- the framing and the listings (HAProxy 2.6's own answers) ---- */

#define HEADER                                                                                     \
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "           \
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "   \
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "  \
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

struct split_case {
    const char *name;
    const char *text;
    size_t n;
    int ret;
    const char *replies[4];
};

static const struct split_case split_cases[] = {
    {"one empty reply", "\n", 1, 0, {""}},
    {"three empty replies", "\n\n\n", 3, 0, {"", "", ""}},
    {"text then empty",
     "IP changed from '0.0.0.0' to '127.0.0.2', port changed from '+0' to '9002' by 'stats "
     "socket command'\n\n\n",
     2,
     0,
     {"IP changed from '0.0.0.0' to '127.0.0.2', port changed from '+0' to '9002' by 'stats "
      "socket command'",
      ""}},
    {"multi-line reply",
     "1\n# h\n2 a 1 s1\n\nNo such server.\n\n",
     2,
     0,
     {"1\n# h\n2 a 1 s1", "No such server."}},
    {"error without the empty line shifts the count",
     "Empty weight string empty or preceded by garbage\n\n",
     2,
     -EPROTO,
     {NULL}},
    {"too many replies", "\n\n\n", 2, -EPROTO, {NULL}},
    {"too few replies", "\n", 2, -EPROTO, {NULL}},
    {"truncated: no final newline", "No such server.", 1, -EPROTO, {NULL}},
    {"truncated: reply without its empty line", "No such server.\n", 1, -EPROTO, {NULL}},
    {"nothing at all", "", 1, -EPROTO, {NULL}},
};

Test(reply, split_replies_table)
{
    for (size_t k = 0; k < sizeof(split_cases) / sizeof(split_cases[0]); k++) {
        const struct split_case *tc = &split_cases[k];
        char **r = NULL;
        char *buf = strdup(tc->text);
        int ret;

        cr_assert_not_null(buf);
        ret = runtime_split_replies(buf, strlen(tc->text), tc->n, &r);
        cr_assert_eq(ret, tc->ret, "%s: ret %d, want %d", tc->name, ret, tc->ret);
        if (ret < 0) {
            cr_assert_null(r, "%s", tc->name);
            cr_assert_str_eq(buf, tc->text, "%s: the text is left as it was", tc->name);
            free(buf);
            continue;
        }
        for (size_t i = 0; i < tc->n; i++) {
            cr_assert_str_eq(r[i], tc->replies[i], "%s: reply %zu", tc->name, i);
            cr_assert(r[i] >= buf && r[i] <= buf + strlen(tc->text), "%s: in place", tc->name);
        }
        runtime_replies_free(r, tc->n);
        free(buf);
    }
}

struct ok_case {
    const char *cmd, *reply;
    bool ok;
};

static const struct ok_case ok_cases[] = {
    {"set server a/s1 addr 127.0.0.1 port 80",
     "IP changed from '0.0.0.0' to '127.0.0.1', port changed from '+0' to '80' by 'stats socket "
     "command'",
     true},
    {"set server a/s1 addr 127.0.0.1 port 80",
     "no need to change the addr, no need to change the port by 'stats socket command'", true},
    {"set server a/s1 addr 127.0.0.1 port 80", "No such server.", false},
    {"set server a/s1 addr 127.0.0.1 port 80", "Invalid addr '1.2.3.999' by 'stats socket command'",
     false},
    {"set server a/s1 addr 127.0.0.1 port 80", "", false},
    {"set server a/s1 addr 127.0.0.1 port 80", "IP changed from 'x'\nNo such server.", false},
    {"set server a/s1 weight 3", "", true},
    {"set server a/s1 weight 3", "Absolute weight can only be between 0 and 256 inclusive.", false},
    {"set server a/s1 state ready", "", true},
    {"set server a/s1 state ready", "No such server.", false},
    {"set server a/s1 state maint", "Require 'backend/server'.", false},
    {"show servers state", "1\n" HEADER "2 a 1 s1 0.0.0.0 0 5 1 1 1 1 0 0 8 0 0 0 - 0 - 0 0 - - 0",
     true},
    {"show servers state", "Can't find backend.", false},
    {"add server web/s17 0.0.0.0:0 check", "New server registered.", true},
    {"add server web/s17 0.0.0.0:0", "Already exists a server with the same name in backend.",
     false},
    {"add server st/s2 0.0.0.0:0",
     "Backend must use a dynamic load balancing to support dynamic "
     "servers.",
     false},
    {"enable health web/s17", "", true},
    {"enable health web/s17", "No such server.", false},
    {"add map /m a.test web", "", true},
    {"set map /m a.test web", "entry not found.", false},
    {"del map /m a.test", "Key not found.", false},
    {"del map /m a.test", "", true},
    {"show map /m", "0x55f8f2f168b0 web.local web", true},
    {"show map /m", "Unknown map identifier. Please use #<id> or <file>.", false},
};

Test(reply, reply_ok_table)
{
    for (size_t k = 0; k < sizeof(ok_cases) / sizeof(ok_cases[0]); k++)
        cr_assert_eq(runtime_reply_ok(ok_cases[k].cmd, ok_cases[k].reply), ok_cases[k].ok,
                     "case %zu: %s -> %s", k, ok_cases[k].cmd, ok_cases[k].reply);
}

struct rows {
    struct server_state st[16];
    size_t n;
    int stop_after; /* return non-zero after this many rows; 0 = never */
};

static int collect(const struct server_state *st, void *arg)
{
    struct rows *r = arg;

    if (r->n < 16)
        r->st[r->n++] = *st;
    return r->stop_after && (int)r->n >= r->stop_after ? 42 : 0;
}

Test(reply, servers_state_parses_haproxy_26_output)
{
    const char *text =
        "1\n" HEADER "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n"
        "2 api 2 s2 0.0.0.0 0 5 1 1 1 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n"
        "2 api 3 s3 ::1 2 12 0 1 0 6 3 2 6 0 0 0 - 8080 - 0 0 - - 0\n"
        "3 db 1 s1 127.0.0.2 2 4 5 1 0 1 0 2 6 0 0 0 - 5432 - 0 0 - - 0\n";
    struct rows r = {0};
    size_t bad = 99;

    cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, &bad), 0);
    cr_assert_eq(bad, 0);
    cr_assert_eq(r.n, 4);
    cr_assert_str_eq(r.st[0].backend, "api");
    cr_assert_str_eq(r.st[0].server, "s1");
    cr_assert_str_eq(r.st[0].addr, "127.0.0.1");
    cr_assert_eq(r.st[0].port, 9001);
    cr_assert_eq(r.st[0].weight, 10);
    cr_assert_eq(r.st[0].admin, SERVER_READY);
    cr_assert_eq(r.st[0].op_state, 2);
    cr_assert_str_eq(r.st[1].addr, "0.0.0.0");
    cr_assert_eq(r.st[1].admin, SERVER_MAINT, "admin 5 = FMAINT|CMAINT");
    cr_assert_str_eq(r.st[2].addr, "::1");
    cr_assert_eq(r.st[2].admin, SERVER_DRAIN, "admin 12 = FDRAIN|CMAINT");
    cr_assert_eq(r.st[2].weight, 0);
    cr_assert_eq(r.st[3].admin, SERVER_READY, "CMAINT alone is not maint");
    cr_assert_eq(r.st[3].backend_id, 3);
    cr_assert_eq(r.st[3].server_id, 1);
}

struct bad_row_case {
    const char *name, *row;
};

/* Each row is HAProxy's format with one field made hostile. */
static const struct bad_row_case bad_rows[] = {
    {"address not an IP", "2 api 1 s1 evil;host 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"address out of range", "2 api 1 s1 999.1.1.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"port too big", "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 70000 - 0 0 - - 0"},
    {"port not a number", "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 90x1 - 0 0 - - 0"},
    {"weight too big", "2 api 1 s1 127.0.0.1 2 0 257 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"negative weight", "2 api 1 s1 127.0.0.1 2 0 -1 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"op state too big", "2 api 1 s1 127.0.0.1 7 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"backend name with a slash",
     "2 a/b 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"server name with a control byte",
     "2 api 1 s\x01 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"too few fields", "2 api 1 s1 127.0.0.1 2 0"},
    {"leading zero", "2 api 1 s1 127.0.0.1 2 0 010 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
};

Test(reply, servers_state_skips_hostile_rows)
{
    for (size_t k = 0; k < sizeof(bad_rows) / sizeof(bad_rows[0]); k++) {
        char text[2048];
        struct rows r = {0};
        size_t bad = 0;

        snprintf(text, sizeof(text),
                 "1\n" HEADER "%s\n2 api 2 s2 0.0.0.0 0 5 1 1 1 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n",
                 bad_rows[k].row);
        cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, &bad), 0, "%s",
                     bad_rows[k].name);
        cr_assert_eq(bad, 1, "%s: bad %zu", bad_rows[k].name, bad);
        cr_assert_eq(r.n, 1, "%s: the good row still counts", bad_rows[k].name);
        cr_assert_str_eq(r.st[0].server, "s2");
    }
}

Test(reply, servers_state_rejects_other_formats)
{
    const char *texts[] = {
        "",
        "2\n" HEADER,
        "Can't find backend.",
        "1\n2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n", /* no header */
        "1\n# be_id be_name srv_id\n2 api 1\n", /* header without the columns we need */
    };
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
        struct rows r = {0};

        cr_assert_eq(runtime_parse_servers_state(texts[k], strlen(texts[k]), collect, &r, NULL),
                     -EPROTO, "text %zu", k);
        cr_assert_eq(r.n, 0);
    }
}

Test(reply, servers_state_columns_found_by_name)
{
    /* A future HAProxy may reorder or add columns: we locate them by name. */
    const char *text = "1\n# srv_port extra be_name srv_name srv_addr srv_op_state srv_admin_state "
                       "srv_uweight be_id srv_id\n"
                       "8080 x web s4 127.0.0.9 2 0 7 5 4\n";
    struct rows r = {0};

    cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, NULL), 0);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.st[0].backend, "web");
    cr_assert_str_eq(r.st[0].server, "s4");
    cr_assert_eq(r.st[0].port, 8080);
    cr_assert_eq(r.st[0].weight, 7);
}

Test(reply, servers_state_callback_stops_the_walk)
{
    const char *text =
        "1\n" HEADER "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n"
        "2 api 2 s2 0.0.0.0 0 5 1 1 1 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n";
    struct rows r = {.stop_after = 1};

    cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, NULL), 42);
    cr_assert_eq(r.n, 1);
}

/* ---- show map, show backend ---- */

struct map_rows {
    char text[8][300];
    size_t n;
};

static int collect_map(const char *key, const char *value, void *arg)
{
    struct map_rows *m = arg;

    if (m->n < 8)
        snprintf(m->text[m->n], sizeof(m->text[0]), "%s=%s", key, value);
    m->n++;
    return 0;
}

struct map_case {
    const char *name;
    const char *text; /* NULL: built by the test (long fields) */
    size_t n, bad;
    const char *rows[3]; /* "key=value" */
};

static const struct map_case map_cases[] = {
    {"two lines",
     "0x55f8f2f168b0 a.test web\n0x55f8f2f168c0 b.test api",
     2,
     0,
     {"a.test=web", "b.test=api"}},
    {"trailing newline and blank line", "0x1 a.test web\n\n", 1, 0, {"a.test=web"}},
    {"empty", "", 0, 0, {NULL}},
    /* sscanf skipped the newline and made one entry of two lines */
    {"newline inside an entry", "0x1 a.test\nweb", 0, 2, {NULL}},
    {"value on the next line after id", "0x1\na.test web", 0, 2, {NULL}},
    {"four fields", "0x1 a.test web extra", 0, 1, {NULL}},
    {"double space", "0x1  a.test web", 0, 1, {NULL}},
    {"tab separator", "0x1\ta.test web", 0, 1, {NULL}},
    {"carriage return", "0x1 a.test web\r\n0x2 b.test api", 1, 1, {"b.test=api"}},
    {"id not hex", "0xg a.test web\n1 b.test web\n0x c.test web", 0, 3, {NULL}},
    {"control byte in the key", "0x1 a\x1b[2J.test web", 0, 1, {NULL}},
    {"non-ASCII in the value", "0x1 a.test w\xc3\xa9", 0, 1, {NULL}},
};

Test(reply, parse_map_table)
{
    for (size_t i = 0; i < sizeof(map_cases) / sizeof(map_cases[0]); i++) {
        const struct map_case *mc = &map_cases[i];
        struct map_rows m = {0};
        size_t bad = 99;

        cr_assert_eq(runtime_parse_map(mc->text, strlen(mc->text), collect_map, &m, &bad), 0, "%s",
                     mc->name);
        cr_expect_eq(m.n, mc->n, "%s: %zu entries, wanted %zu", mc->name, m.n, mc->n);
        cr_expect_eq(bad, mc->bad, "%s: %zu bad lines, wanted %zu", mc->name, bad, mc->bad);
        for (size_t k = 0; k < mc->n && k < m.n; k++)
            cr_expect_str_eq(m.text[k], mc->rows[k], "%s: entry %zu", mc->name, k);
    }
}

/* A field longer than the limit is rejected whole, never split into two
 * entries (sscanf's "%254s" cut a long key and read its tail as the next
 * field). */
Test(reply, parse_map_long_fields)
{
    char text[1200], key[RUNTIME_MAP_KEY_MAX + 2], value[RUNTIME_MAP_VALUE_MAX + 2];
    struct map_rows m = {0};
    size_t bad = 0;

    memset(key, 'k', sizeof(key));
    key[RUNTIME_MAP_KEY_MAX] = '\0';
    memset(value, 'v', sizeof(value));
    value[RUNTIME_MAP_VALUE_MAX] = '\0';
    /* at the limits: kept */
    snprintf(text, sizeof(text), "0x1 %s %s", key, value);
    cr_assert_eq(runtime_parse_map(text, strlen(text), collect_map, &m, &bad), 0);
    cr_expect_eq(m.n, 1);
    cr_expect_eq(bad, 0);
    /* one byte over, in the key or in the value: rejected */
    key[RUNTIME_MAP_KEY_MAX] = 'k';
    key[RUNTIME_MAP_KEY_MAX + 1] = '\0';
    snprintf(text, sizeof(text), "0x1 %s web\n0x2 a.test %sv", key, value);
    m.n = 0;
    cr_assert_eq(runtime_parse_map(text, strlen(text), collect_map, &m, &bad), 0);
    cr_expect_eq(m.n, 0, "%zu entries", m.n);
    cr_expect_eq(bad, 2);
    /* a 300-byte key whose tail looks like "key value" */
    memset(text, 'x', sizeof(text));
    memcpy(text, "0x1 ", 4);
    snprintf(text + 4 + 254, sizeof(text) - 4 - 254, " evil.test web");
    m.n = 0;
    cr_assert_eq(runtime_parse_map(text, strlen(text), collect_map, &m, &bad), 0);
    cr_expect_eq(m.n, 0);
}

static int collect_name(const char *name, void *arg)
{
    struct map_rows *m = arg;

    if (m->n < 8)
        snprintf(m->text[m->n], sizeof(m->text[0]), "%s", name);
    m->n++;
    return 0;
}

Test(reply, parse_backends)
{
    struct map_rows m = {0};
    size_t bad = 0;
    const char *ok = "# name\nstats\napp\nweb.v2\n";
    const char *hostile = "# name\nstats\nbad name\nx\x1b[0m\n";

    cr_assert_eq(runtime_parse_backends(ok, strlen(ok), collect_name, &m, &bad), 0);
    cr_assert_eq(m.n, 3);
    cr_expect_str_eq(m.text[0], "stats");
    cr_expect_str_eq(m.text[1], "app");
    cr_expect_str_eq(m.text[2], "web.v2");
    cr_expect_eq(bad, 0);
    m.n = 0;
    cr_assert_eq(runtime_parse_backends(hostile, strlen(hostile), collect_name, &m, &bad), 0);
    cr_expect_eq(m.n, 1);
    cr_expect_eq(bad, 2);
    cr_expect_eq(runtime_parse_backends("stats\n", 6, collect_name, &m, &bad), -EPROTO);
    cr_expect_eq(runtime_parse_backends("", 0, collect_name, &m, &bad), -EPROTO);
    cr_expect(runtime_reply_ok("show backend", "# name\nstats"));
    cr_expect(!runtime_reply_ok("show backend", "Unknown command"));
}

Test(reply, cli_level)
{
    cr_assert_eq(runtime_cli_level("admin"), RUNTIME_LEVEL_ADMIN);
    cr_assert_eq(runtime_cli_level("operator"), RUNTIME_LEVEL_OPERATOR);
    cr_assert_eq(runtime_cli_level("user"), RUNTIME_LEVEL_USER);
    cr_assert_eq(runtime_cli_level(""), -EPROTO);
    cr_assert_eq(runtime_cli_level("admin\nadmin"), -EPROTO);
    cr_assert_eq(runtime_cli_level("Unknown command"), -EPROTO);
    cr_assert(runtime_reply_ok("show cli level", "operator"));
    cr_assert_not(runtime_reply_ok("show cli level", ""));
    cr_assert_str_eq(runtime_level_name(RUNTIME_LEVEL_OPERATOR), "operator");
}

/* srv_admin_state bits folded into ready/drain/maint, every bit alone and a
 * few mixes, with HAProxy's values written out. */
Test(reply, admin_bits_table)
{
    static const struct {
        unsigned bits;
        enum server_admin want;
    } cases[] = {
        {0x00, SERVER_READY},
        {0x01, SERVER_MAINT}, /* FMAINT */
        {0x02, SERVER_MAINT}, /* IMAINT */
        {0x04, SERVER_READY}, /* CMAINT alone */
        {0x08, SERVER_DRAIN}, /* FDRAIN */
        {0x10, SERVER_DRAIN}, /* IDRAIN */
        {0x20, SERVER_MAINT}, /* RMAINT */
        {0x40, SERVER_READY}, /* HMAINT */
        {0x09, SERVER_MAINT}, /* maint wins over drain */
        {0x0c, SERVER_DRAIN},
        {0x7f, SERVER_MAINT},
        {SRV_ADMF_DRAIN | SRV_ADMF_HMAINT, SERVER_DRAIN},
    };

    cr_assert_eq(SRV_ADMF_MAINT, 0x23);
    cr_assert_eq(SRV_ADMF_DRAIN, 0x18);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];
        struct rows r = {0};
        size_t bad = 0;

        snprintf(text, sizeof(text),
                 "1\n" HEADER
                 "2 api 1 s1 127.0.0.1 2 %u 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n",
                 cases[i].bits);
        cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, &bad), 0);
        cr_assert_eq(r.n, 1, "case %zu", i);
        cr_expect_eq(r.st[0].admin, cases[i].want, "case %zu (0x%02x)", i, cases[i].bits);
        cr_expect_eq(r.st[0].admin_bits, cases[i].bits, "case %zu", i);
    }
}

/* "show map" lines into routes: only what slotsync could have written. */
Test(reply, parse_routes_table)
{
    const char *text = "0x55d1 web.example.com web\n"
                       "0x55d2 api.example.com api\n"
                       "0x55d3 UPPER.example.com web\n"    /* not lower case */
                       "0x55d4 api.example.com bad/name\n" /* not a service name */
                       "0x55d5 a.example.com db\n"
                       "not a map line\n"
                       "0x55d6 api.example.com api2\n"; /* listed twice: kept twice */
    static const char *const want[][2] = {{"a.example.com", "db"},
                                          {"api.example.com", "api"},
                                          {"api.example.com", "api2"},
                                          {"web.example.com", "web"}};
    struct host_route *routes = NULL;
    size_t n = 0, bad = 0;

    cr_assert_eq(runtime_parse_routes(text, strlen(text), &routes, &n, &bad), 0);
    cr_assert_eq(n, 4);
    cr_expect_eq(bad, 3);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(routes[i].host, want[i][0], "route %zu", i);
        /* same host: qsort order between the two is not fixed */
        if (strcmp(want[i][0], "api.example.com") != 0)
            cr_expect_str_eq(routes[i].backend, want[i][1], "route %zu", i);
    }
    free(routes);
    cr_assert_eq(runtime_parse_routes("", 0, &routes, &n, NULL), 0);
    cr_expect_eq(n, 0);
    cr_expect_null(routes);
}

/* ---- show stat ---- */

/* "show stat" CSV (HAProxy 2.6's columns, cut short): rows by pxname and
 * svname, sessions as numbers or -1, status text made printable. */
Test(reply, parse_stat_table)
{
    const char *text = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,check_status\n"
                       "api,FRONTEND,,,0,1,,5,OPEN,\n"
                       "api,s1,0,0,2,3,,17,UP,L4OK\n"
                       "api,s2,0,0,,,,,MAINT,\n"
                       "\n"
                       "api,s3,0,0,1,1,,1,U\"P\\x,L7\x01OK\n"
                       "short\n";
    struct reply_stat_row *rows = NULL;
    size_t n = 0;
    const struct reply_stat_row *r;

    cr_assert_eq(reply_parse_stat(text, &rows, &n), 0);
    cr_assert_eq(n, 4);
    r = reply_find_stat(rows, n, "api", "s1");
    cr_assert_not_null(r);
    cr_expect_eq(r->scur, 2);
    cr_expect_eq(r->stot, 17);
    cr_expect_str_eq(r->status, "UP");
    cr_expect_str_eq(r->check, "L4OK");
    r = reply_find_stat(rows, n, "api", "s2");
    cr_assert_not_null(r);
    cr_expect_eq(r->scur, -1);
    cr_expect_eq(r->stot, -1);
    cr_expect_str_eq(r->status, "MAINT");
    r = reply_find_stat(rows, n, "api", "s3");
    cr_assert_not_null(r);
    cr_expect_str_eq(r->status, "U?P?x");
    cr_expect_str_eq(r->check, "L7?OK");
    cr_expect_not_null(reply_find_stat(rows, n, "api", "FRONTEND"));
    cr_expect_null(reply_find_stat(rows, n, "api", "s4"));
    cr_expect_null(reply_find_stat(rows, n, "short", ""));
    free(rows);

    /* not CSV, or no pxname/svname: no rows */
    cr_assert_eq(reply_parse_stat("Unknown command.", &rows, &n), 0);
    cr_expect_eq(n, 0);
    cr_expect_null(rows);
    cr_assert_eq(reply_parse_stat("# qcur,scur\n0,1\n", &rows, &n), 0);
    cr_expect_eq(n, 0);
    cr_expect_null(rows);
}
