/* Tests for reply: each supported HAProxy version's answers to every command
 * slotsync sends, success and refusal. Rows name the version whose source
 * (or, where marked, whose running binary) prints the reply. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

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
    {"any", SETMAP, "entry not found.", UNK},
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
