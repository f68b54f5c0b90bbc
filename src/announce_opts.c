/* announce_opts - the command line of "slotsync announce" (pure). */
#include <slotsync/announce_opts.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/announce_value.h>
#include <slotsync/config.h>
#include <slotsync/endpoint.h>
#include <slotsync/etcd-t.h>
#include <slotsync/log.h>
#include <slotsync/tls.h>
#include <slotsync/validate.h>

static const char usage_text[] =
    "usage: slotsync announce --etcd URL[,URL...] --key KEY --addr HOST:PORT [options]\n"
    "                         [-- COMMAND ARGS...]\n"
    "Registers HOST:PORT under KEY in etcd with a lease, keeps the lease alive while the\n"
    "endpoint is healthy (and COMMAND runs), and revokes it on the way out.\n"
    "  --etcd URL[,URL...]   etcd endpoints, tried in turn\n"
    "  --key KEY             PREFIX + SERVICE/INSTANCE, e.g. /services/web/host1-8080\n"
    "  --addr HOST:PORT      the endpoint: IPv4:PORT or [IPv6]:PORT (IP literals)\n"
    "  --etcd-transport grpc|json\n"
    "                        etcd's native gRPC (HTTP/2; works through etcd grpc-proxy)\n"
    "                        (the default) or its JSON gateway (json)\n"
    "  --cacert FILE         CA bundle that signs etcd's certificate (https:// URLs;\n"
    "                        default: the system's CAs)\n"
    "  --cert FILE           client certificate for etcd (with --key-file)\n"
    "  --key-file FILE       its private key (--key names the etcd key)\n"
    "  --user NAME           etcd user (with --password-file; needs readwrite on the key)\n"
    "  --password-file FILE  the password: the file's first line\n"
    "  --prefix PREFIX       the prefix the daemon watches (default /services/)\n"
    "  --ttl SECONDS         lease TTL, 2-3600 (default 10); renewed every TTL/3\n"
    "  --weight N            server weight 0-256 (JSON format only; default: not sent)\n"
    "  --format json|plain   the value: {\"host\":..,\"port\":..} (default) or HOST:PORT\n"
    "  --check tcp|URL       health check: TCP connect to --addr, or GET of\n"
    "                        http://IP:PORT/PATH (2xx or 3xx is healthy). Without a\n"
    "                        check the endpoint counts as healthy.\n"
    "  --check-interval S    seconds between checks, 0.1-3600 (default 2)\n"
    "  --rise N              successes to register again after a withdrawal (default 2;\n"
    "                        the very first success registers)\n"
    "  --fall N              consecutive failures that withdraw the key (default 3)\n"
    "  --drain-seconds S     on SIGTERM/SIGINT, first put the key with state drain and\n"
    "                        wait S seconds (0-3600, default 0: withdraw at once), less\n"
    "                        if COMMAND exits or a second signal comes. JSON format\n"
    "                        only (a plain HOST:PORT value has no state).\n"
    "  --log-level LEVEL     error, warn, info (default) or debug\n"
    "  --options-file FILE   read options from FILE, one \"NAME VALUE\" a line (NAME\n"
    "                        without its --; '#' starts a comment line), in place\n"
    "  -- COMMAND ARGS...    run COMMAND as a child; when it exits the key is withdrawn\n"
    "                        and announce exits with its status.\n"
    "Withdrawing revokes the lease and deletes the key if it still names HOST:PORT\n"
    "under no lease (someone's put detached it); a key another writer took over is\n"
    "left alone. The key is read every TTL/3 (1-10 s): a change by someone else is\n"
    "logged once as a warning and not undone (SIGUSR1/SIGUSR2 put ours back).\n"
    "Signals:\n"
    "  SIGTERM, SIGINT       drain (--drain-seconds), withdraw, then pass the signal to\n"
    "                        COMMAND and exit when it does\n"
    "  SIGUSR1               drain: put the key with state drain, keep it so (with\n"
    "                        --format plain: withdraw the key instead)\n"
    "  SIGUSR2               ready again: put the key with the ready value\n"
    "  SIGHUP                read --cacert/--cert/--key-file and --password-file again\n"
    "                        (rotation without a restart; the lease goes on). A file\n"
    "                        that cannot be read keeps the old one, with an error line.\n"
    "Exit status: 2 bad arguments, 1 fatal error, else 0 or the child's status\n"
    "(128 + signal number if it was killed).\n";

const char *announce_usage(void)
{
    return usage_text;
}

enum opt_id {
    O_ETCD,
    O_KEY,
    O_ADDR,
    O_PREFIX,
    O_TTL,
    O_WEIGHT,
    O_FORMAT,
    O_CHECK,
    O_INTERVAL,
    O_RISE,
    O_FALL,
    O_LOG_LEVEL,
    O_DRAIN,
    O_CACERT,
    O_CERT,
    O_KEY_FILE,
    O_USER,
    O_PASSWORD_FILE,
    O_TRANSPORT,
    O_COUNT
};

static const char *const opt_names[O_COUNT] = {
    [O_ETCD] = "etcd",           [O_KEY] = "key",       [O_ADDR] = "addr",
    [O_PREFIX] = "prefix",       [O_TTL] = "ttl",       [O_WEIGHT] = "weight",
    [O_FORMAT] = "format",       [O_CHECK] = "check",   [O_INTERVAL] = "check-interval",
    [O_RISE] = "rise",           [O_FALL] = "fall",     [O_LOG_LEVEL] = "log-level",
    [O_DRAIN] = "drain-seconds", [O_CACERT] = "cacert", [O_CERT] = "cert",
    [O_KEY_FILE] = "key-file",   [O_USER] = "user",     [O_PASSWORD_FILE] = "password-file",
    [O_TRANSPORT] = "etcd-transport",
};

static int opt_error(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int opt_error(char **errmsg, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    memprintf(errmsg, "%s", text);
    return -EINVAL;
}

/* A decimal integer in [min, max]: digits only, no sign, no spaces. */
static int parse_int(const char *s, long min, long max, int *out)
{
    char *end;
    long v;

    if (!isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* Seconds as a decimal number ("2", "0.5", "1e-1") in [min, max]. */
static int parse_seconds(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    if (!isdigit((unsigned char)s[0]) && s[0] != '.')
        return -EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !(v >= min && v <= max))
        return -EINVAL;
    *out = v;
    return 0;
}

/* Split "URL[,URL...]" into o->etcd_endpoints, each checked like the
 * daemon's etcd.endpoints. */
static int parse_etcd(const char *list, struct announce_opts *o, char **errmsg)
{
    char *copy, *p, *comma, *reason = NULL;
    int ret = 0;

    copy = strdup(list);
    o->etcd_endpoints = calloc(ANNOUNCE_ETCD_MAX, sizeof(*o->etcd_endpoints));
    if (!copy || !o->etcd_endpoints) {
        ret = -ENOMEM;
        goto out;
    }
    for (p = copy;; p = comma + 1) {
        comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!*p) {
            ret = opt_error(errmsg, "--etcd: empty URL in the list");
            goto out;
        }
        if (validate_etcd_url(p, &reason) < 0) {
            ret = opt_error(errmsg, "--etcd: %s", reason ? reason : "invalid URL");
            goto out;
        }
        if (o->n_etcd_endpoints == ANNOUNCE_ETCD_MAX) {
            ret = opt_error(errmsg, "--etcd: at most %d endpoints", ANNOUNCE_ETCD_MAX);
            goto out;
        }
        o->etcd_endpoints[o->n_etcd_endpoints] = strdup(p);
        if (!o->etcd_endpoints[o->n_etcd_endpoints]) {
            ret = -ENOMEM;
            goto out;
        }
        o->n_etcd_endpoints++;
        if (!comma)
            break;
    }
out:
    free(reason);
    free(copy);
    return ret;
}

/* The prefix, with the daemon's rules for etcd.prefix. */
static int parse_prefix(const char *prefix, struct announce_opts *o, char **errmsg)
{
    char *reason = NULL;
    int ret = validate_prefix(prefix, &reason);

    if (ret < 0)
        ret = opt_error(errmsg, "--prefix: %s", reason ? reason : "invalid prefix");
    else if (!(o->prefix = strdup(prefix)))
        ret = -ENOMEM;
    free(reason);
    return ret;
}

/* "tcp", or http://IP:PORT[/PATH] rebuilt from canonical parts. The host must
 * be an IP literal: a name would need a resolver on the loop, and the check
 * is about one endpoint anyway. */
static int parse_check(const char *text, struct announce_opts *o, char **errmsg)
{
    const char *auth, *path;
    struct endpoint ep;
    char hostport[ENDPOINT_HOST_MAX + 8];
    size_t alen, plen;

    if (strcmp(text, "tcp") == 0) {
        o->check = ANNOUNCE_CHECK_TCP;
        return 0;
    }
    if (strncmp(text, "http://", 7) != 0)
        return opt_error(errmsg, "--check: must be tcp or http://IP:PORT/PATH");
    auth = text + 7;
    path = strchr(auth, '/');
    alen = path ? (size_t)(path - auth) : strlen(auth);
    memset(&ep, 0, sizeof(ep));
    if (endpoint_parse_hostport(auth, alen, &ep) < 0)
        return opt_error(errmsg, "--check: the URL must be http://IP:PORT/PATH with an IPv4 or "
                                 "[IPv6] literal and a port 1-65535");
    if (!path)
        path = "/";
    plen = strlen(path);
    if (plen > ANNOUNCE_CHECK_URL_MAX)
        return opt_error(errmsg, "--check: the URL path is longer than %d bytes",
                         ANNOUNCE_CHECK_URL_MAX);
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)path[i];

        if (c < 0x21 || c > 0x7e || c == '#')
            return opt_error(errmsg, "--check: the URL path must be printable ASCII without "
                                     "spaces or '#'");
    }
    endpoint_format(&ep, hostport, sizeof(hostport));
    o->check = ANNOUNCE_CHECK_HTTP;
    if (!memprintf(&o->check_url, "http://%s%s", hostport, path))
        return -ENOMEM;
    return 0;
}

void announce_opts_free(struct announce_opts *opts)
{
    if (!opts)
        return;
    for (size_t i = 0; i < opts->n_etcd_endpoints; i++)
        free(opts->etcd_endpoints[i]);
    free(opts->etcd_endpoints);
    free(opts->prefix);
    free(opts->check_url);
    tls_conf_free(&opts->tls);
    memset(opts, 0, sizeof(*opts));
}

/* --cacert, --cert, --key-file: checked like etcd.tls; the files are read
 * when the client starts. */
static int parse_tls(const char *const *val, struct announce_opts *o, char **errmsg)
{
    const struct tls_conf given = {.ca_file = (char *)val[O_CACERT],
                                   .cert_file = (char *)val[O_CERT],
                                   .key_file = (char *)val[O_KEY_FILE]};
    int ret;

    if (val[O_CERT] && !val[O_KEY_FILE])
        return opt_error(errmsg, "--cert needs --key-file");
    if (val[O_KEY_FILE] && !val[O_CERT])
        return opt_error(errmsg, "--key-file needs --cert");
    for (int id = O_CACERT; id <= O_KEY_FILE; id++)
        if (val[id] && !val[id][0])
            return opt_error(errmsg, "--%s: empty path", opt_names[id]);
    ret = tls_conf_check(&given, "--cacert/--cert/--key-file", errmsg);
    if (ret < 0)
        return ret;
    return tls_conf_copy(&o->tls, &given);
}

/* Checks the values in val[] (NULL = not given) into o. */
static int validate(const char *const *val, struct announce_opts *o, char **errmsg)
{
    char service[SERVICE_NAME_MAX + 1], instance[INSTANCE_NAME_MAX + 1];
    char value[ENDPOINT_VALUE_MAX + 1];
    struct endpoint parsed;
    char *reason = NULL;
    int ret, n;

    if (!val[O_ETCD])
        return opt_error(errmsg, "--etcd is required");
    if (!val[O_KEY])
        return opt_error(errmsg, "--key is required");
    if (!val[O_ADDR])
        return opt_error(errmsg, "--addr is required");

    ret = parse_etcd(val[O_ETCD], o, errmsg);
    if (ret < 0)
        return ret;
    ret = parse_tls(val, o, errmsg);
    if (ret < 0)
        return ret;
    if (val[O_TRANSPORT]) {
        if (strcmp(val[O_TRANSPORT], "grpc") == 0)
            o->etcd_transport = ETCD_TRANSPORT_GRPC;
        else if (strcmp(val[O_TRANSPORT], "json") == 0)
            o->etcd_transport = ETCD_TRANSPORT_JSON;
        else
            return opt_error(errmsg, "--etcd-transport: must be grpc or json");
    }
    if (!val[O_USER] != !val[O_PASSWORD_FILE])
        return opt_error(errmsg, "--user and --password-file go together");
    if (val[O_USER]) {
        for (const char *p = val[O_USER]; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                return opt_error(errmsg, "--user: printable ASCII without spaces");
        if (!val[O_USER][0] || !val[O_PASSWORD_FILE][0])
            return opt_error(errmsg, "--user/--password-file: empty");
        o->user = val[O_USER];
        o->password_file = val[O_PASSWORD_FILE];
    }
    ret = parse_prefix(val[O_PREFIX] ? val[O_PREFIX] : ANNOUNCE_DEFAULT_PREFIX, o, errmsg);
    if (ret < 0)
        return ret;

    if (endpoint_parse_key(o->prefix, val[O_KEY], strlen(val[O_KEY]), service, instance, &reason) <
        0) {
        ret = opt_error(errmsg, "--key: %s; expected %s<service>/<instance>",
                        reason ? reason : "invalid key", o->prefix);
        free(reason);
        return ret;
    }
    o->key = val[O_KEY];

    o->addr.weight = ENDPOINT_DEFAULT_WEIGHT;
    if (endpoint_parse_hostport(val[O_ADDR], strlen(val[O_ADDR]), &o->addr) < 0)
        return opt_error(errmsg, "--addr: must be IPv4:PORT or [IPv6]:PORT with an IP literal "
                                 "and a port 1-65535");

    if (val[O_FORMAT]) {
        if (strcmp(val[O_FORMAT], "json") == 0)
            o->format = ANNOUNCE_FORMAT_JSON;
        else if (strcmp(val[O_FORMAT], "plain") == 0)
            o->format = ANNOUNCE_FORMAT_PLAIN;
        else
            return opt_error(errmsg, "--format: must be json or plain");
    }
    if (val[O_WEIGHT]) {
        if (parse_int(val[O_WEIGHT], 0, ENDPOINT_WEIGHT_MAX, &n) < 0)
            return opt_error(errmsg, "--weight: must be an integer 0-%d", ENDPOINT_WEIGHT_MAX);
        if (o->format == ANNOUNCE_FORMAT_PLAIN)
            return opt_error(errmsg, "--weight: a plain HOST:PORT value cannot carry a weight "
                                     "(use --format json)");
        o->addr.weight = (unsigned short)n;
        o->weight_set = true;
    }
    if (val[O_DRAIN]) {
        if (parse_seconds(val[O_DRAIN], 0, ANNOUNCE_DRAIN_MAX, &o->drain_s) < 0)
            return opt_error(errmsg, "--drain-seconds: must be a number of seconds 0-%.0f",
                             ANNOUNCE_DRAIN_MAX);
        /* Drain is a state in the value; HOST:PORT has none, and a drain
         * that is really a withdrawal would promise what it cannot do. */
        if (o->format == ANNOUNCE_FORMAT_PLAIN && o->drain_s > 0)
            return opt_error(errmsg, "--drain-seconds: a plain HOST:PORT value cannot carry "
                                     "the drain state (use --format json)");
    }
    if (val[O_TTL] && parse_int(val[O_TTL], ANNOUNCE_TTL_MIN, ANNOUNCE_TTL_MAX, &o->ttl_s) < 0)
        return opt_error(errmsg, "--ttl: must be an integer number of seconds %d-%d",
                         ANNOUNCE_TTL_MIN, ANNOUNCE_TTL_MAX);

    if (val[O_CHECK]) {
        ret = parse_check(val[O_CHECK], o, errmsg);
        if (ret < 0)
            return ret;
    } else {
        /* Tuning a check that does not exist is a mistake worth a word. */
        for (int id = O_INTERVAL; id <= O_FALL; id++)
            if (val[id])
                return opt_error(errmsg, "--%s: needs --check", opt_names[id]);
    }
    if (val[O_INTERVAL] && parse_seconds(val[O_INTERVAL], ANNOUNCE_INTERVAL_MIN,
                                         ANNOUNCE_INTERVAL_MAX, &o->check_interval_s) < 0)
        return opt_error(errmsg, "--check-interval: must be a number of seconds 0.1-3600");
    if (val[O_RISE] && parse_int(val[O_RISE], 1, ANNOUNCE_RISE_FALL_MAX, &o->rise) < 0)
        return opt_error(errmsg, "--rise: must be an integer 1-%d", ANNOUNCE_RISE_FALL_MAX);
    if (val[O_FALL] && parse_int(val[O_FALL], 1, ANNOUNCE_RISE_FALL_MAX, &o->fall) < 0)
        return opt_error(errmsg, "--fall: must be an integer 1-%d", ANNOUNCE_RISE_FALL_MAX);

    if (val[O_LOG_LEVEL]) {
        n = log_level_parse(val[O_LOG_LEVEL]);
        if (n < 0)
            return opt_error(errmsg, "--log-level: must be error, warn, info or debug");
        o->log_level = n;
    }

    /* What is published must be what the daemon accepts (it refuses, for
     * one, the unspecified address 0.0.0.0 that the host:port syntax
     * allows). */
    n = announce_format_value(&o->addr, o->weight_set, o->format, value, sizeof(value));
    if (n < 0)
        return opt_error(errmsg, "--addr: cannot format the value");
    if (endpoint_parse_value(value, (size_t)n, &parsed, &reason) < 0) {
        ret = opt_error(errmsg, "--addr: %s", reason ? reason : "not a valid endpoint");
        free(reason);
        return ret;
    }
    return 0;
}

int announce_parse_args(int argc, char **argv, struct announce_opts *out, char **errmsg)
{
    const char *val[O_COUNT] = {0};
    int ret, i;

    memset(out, 0, sizeof(*out));
    out->ttl_s = ANNOUNCE_DEFAULT_TTL;
    out->format = ANNOUNCE_FORMAT_JSON;
    out->etcd_transport = ETCD_TRANSPORT_GRPC;
    out->check = ANNOUNCE_CHECK_NONE;
    out->check_interval_s = ANNOUNCE_DEFAULT_INTERVAL;
    out->rise = ANNOUNCE_DEFAULT_RISE;
    out->fall = ANNOUNCE_DEFAULT_FALL;
    out->log_level = LOG_LEVEL_INFO;

    /* By hand rather than getopt: no global state (the tests parse many
     * command lines), no permutation (everything after "--" is the child's),
     * and errors that name the option. */
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *name, *eq, *value;
        size_t nlen;
        int id;

        if (strcmp(arg, "--") == 0) {
            if (i + 1 >= argc)
                return opt_error(errmsg, "--: a command must follow");
            out->command = argv + i + 1;
            break;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            announce_opts_free(out);
            out->help = true;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (arg[0] == '-')
                return opt_error(errmsg, "unknown option '%s'", arg);
            return opt_error(errmsg, "unexpected argument '%s' (a command goes after --)", arg);
        }
        name = arg + 2;
        eq = strchr(name, '=');
        nlen = eq ? (size_t)(eq - name) : strlen(name);
        for (id = 0; id < O_COUNT; id++)
            if (strlen(opt_names[id]) == nlen && strncmp(opt_names[id], name, nlen) == 0)
                break;
        if (id == O_COUNT)
            return opt_error(errmsg, "unknown option '--%.*s'", (int)nlen, name);
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return opt_error(errmsg, "--%s needs a value", opt_names[id]);
            value = argv[++i];
        }
        if (val[id])
            return opt_error(errmsg, "--%s given twice", opt_names[id]);
        val[id] = value;
    }

    ret = validate(val, out, errmsg);
    if (ret < 0) {
        announce_opts_free(out);
        if (ret == -ENOMEM)
            memprintf(errmsg, "out of memory");
    }
    return ret;
}
