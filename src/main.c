/* main - the command line: parse it, load the config, hand over to a module.
 *
 * Every message of a command starts with "slotsync <command>: "; each
 * command has its own --help with its options, exit codes and signals. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slotsync/announce.h>
#include <slotsync/check.h>
#include <slotsync/config.h>
#include <slotsync/controller.h>
#include <slotsync/inspect.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/optfile.h>
#include <slotsync/render.h>
#include <slotsync/probe.h>

#include <slotsync/version.h> /* SLOTSYNC_VERSION */

static void usage(FILE *out)
{
    fprintf(out, "usage: slotsync COMMAND [options]\n"
                 "\n"
                 "commands:\n"
                 "  run       watch etcd, keep HAProxy's slots in sync (the daemon)\n"
                 "  render    render the services file from etcd once, then exit\n"
                 "  check     validate a config file: every problem, one per line\n"
                 "  status    what etcd says, what HAProxy does, and where they differ\n"
                 "  announce  register an endpoint in etcd under a lease (the sidekick)\n"
                 "  version   print the version\n"
                 "\n"
                 "'slotsync COMMAND --help' lists that command's options, exit codes and\n"
                 "signals.\n");
}

#define OVERRIDES_HELP                                                                             \
    "  -c, --config FILE         the JSON config file (required)\n"                                \
    "  --etcd URL[,URL...]       instead of etcd.endpoints (http:// or https://)\n"                \
    "  --prefix PREFIX           instead of etcd.prefix\n"                                         \
    "  --runtime-socket ADDR     instead of haproxy.runtime_socket\n"                              \
    "  --log-level LEVEL         instead of log_level: error, warn, info or debug\n"

static void usage_run(FILE *out)
{
    fprintf(out, "usage: slotsync run -c FILE [options]\n"
                 "\n"
                 "Watch etcd and keep HAProxy's server slots in sync through its runtime\n"
                 "socket; render and reload only when a backend must be added or changed.\n"
                 "\n"
                 "options:\n" OVERRIDES_HELP
                 "  --log-time utc|local      log timestamps in UTC (default, 'Z') or in\n"
                 "                            local time with its offset\n"
                 "  --log-format FMT          text (default: for people), logfmt or json (one\n"
                 "                            object a line); instead of log_format\n"
                 "  --log-unlimited           no rate limit on log lines (by default each\n"
                 "                            place that logs prints 50 lines a second, then\n"
                 "                            a '+N similar lines' summary): for benchmarks\n"
                 "  -h, --help                this text\n"
                 "\n"
                 "signals:\n"
                 "  SIGTERM, SIGINT  stop (HAProxy is left as it is), exit 0\n"
                 "  SIGHUP           read the config file again (with the same options)\n"
                 "  SIGUSR1          write a state dump to the log: per backend slots used\n"
                 "                   and free, the etcd revision, the last resync and reload\n"
                 "  SIGPIPE          ignored\n"
                 "\n"
                 "exit codes:\n"
                 "  0  stopped by SIGTERM or SIGINT\n"
                 "  1  could not start (config, sockets, memory); the reason is printed\n"
                 "  2  bad command line\n");
}

static void usage_render(FILE *out)
{
    fprintf(out, "usage: slotsync render -c FILE [-o PATH] [--timeout S] [options]\n"
                 "\n"
                 "List etcd once and write the services file (and, with an HTTP frontend,\n"
                 "its Host map) as 'slotsync run' would render it, then exit.\n"
                 "\n"
                 "options:\n" OVERRIDES_HELP
                 "  -o, --output PATH         write the services file there (not the map)\n"
                 "                            instead of haproxy.services_file; '-' writes\n"
                 "                            to standard output. An existing PATH must be a\n"
                 "                            regular file (or a symlink to one: the file it\n"
                 "                            points to is replaced, the link is kept); it is\n"
                 "                            replaced atomically\n"
                 "  --timeout S               how long etcd may take to answer (default 10)\n"
                 "  --offline-ok              when etcd does not answer within --timeout,\n"
                 "                            keep an existing services file or write one\n"
                 "                            with every configured backend's slots empty,\n"
                 "                            warn and exit 0 (so HAProxy can start at boot;\n"
                 "                            'slotsync run' fills the slots later)\n"
                 "  --log-time utc|local      log timestamps in UTC (default) or local time\n"
                 "  --log-format FMT          text (default), logfmt or json\n"
                 "  --log-unlimited           no rate limit on log lines\n"
                 "  -h, --help                this text\n"
                 "\n"
                 "signals:\n"
                 "  SIGTERM, SIGINT  stop without writing anything, exit 1\n"
                 "  SIGPIPE          ignored (a closed standard output is an error, exit 1)\n"
                 "\n"
                 "exit codes:\n"
                 "  0  written\n"
                 "  0  etcd did not answer but --offline-ok kept or wrote the file\n"
                 "  1  not written: config, etcd not answering in time, refused PATH, I/O\n"
                 "  2  bad command line\n");
}

static void usage_check(FILE *out)
{
    fprintf(out, "usage: slotsync check -c FILE [options]\n"
                 "\n"
                 "Validate a config file and print every problem, one per line on standard\n"
                 "error: 'slotsync check: error: FIELD: REASON' for what makes the config\n"
                 "unusable, 'slotsync check: warning: ...' for what may fail on this\n"
                 "machine (a base_config or a directory for the services file that does not\n"
                 "exist). Then one summary line on standard output.\n"
                 "\n"
                 "options:\n" OVERRIDES_HELP
                 "  --connect                 also read from every etcd endpoint once (with\n"
                 "                            the config's TLS files and credentials) and\n"
                 "                            print 'URL: ok (revision N)' or what failed,\n"
                 "                            one line per endpoint on standard output; a\n"
                 "                            failure is an error\n"
                 "  --timeout S               how long each endpoint may take (default 10)\n"
                 "  -h, --help                this text\n"
                 "\n"
                 "signals: none handled (SIGPIPE is ignored)\n"
                 "\n"
                 "exit codes:\n"
                 "  0  valid (warnings may have been printed)\n"
                 "  1  at least one error\n"
                 "  2  bad command line\n");
}

static void usage_status(FILE *out)
{
    fprintf(out, "usage: slotsync status -c FILE [--service NAME] [--json] [--all] [options]\n"
                 "       slotsync status --admin HOST:PORT [--service NAME] [--json] [--all]\n"
                 "\n"
                 "Read etcd (a range of the prefix) and HAProxy ('show servers state', 'show\n"
                 "stat') directly and print one table per backend: slot, instance, address,\n"
                 "weight, admin and operational state, check, sessions, and a DRIFT column\n"
                 "where the two disagree. Works whether or not 'slotsync run' is running.\n"
                 "With --admin, asks a running daemon's admin endpoint (its /status) instead.\n"
                 "Log lines (standard error) are warnings and errors only, unless\n"
                 "--log-level asks for more.\n"
                 "\n"
                 "options:\n" OVERRIDES_HELP "  --service NAME            only that backend\n"
                 "  --json                    one JSON document (the admin endpoint's /status)\n"
                 "  --all                     list free slots too, not only their number\n"
                 "  --admin HOST:PORT         read a daemon's admin endpoint (-c not needed)\n"
                 "  --timeout S               how long etcd and HAProxy may take (default 10)\n"
                 "  -h, --help                this text\n"
                 "\n"
                 "signals: none handled (SIGPIPE is ignored)\n"
                 "\n"
                 "exit codes:\n"
                 "  0  etcd and HAProxy agree\n"
                 "  1  drift found (the DRIFT column says where)\n"
                 "  2  etcd, HAProxy or the admin endpoint could not be read, a bad config\n"
                 "     or a bad command line\n"
                 "  3  with --admin: the daemon cannot read etcd (it serves the last known\n"
                 "     state; the last line says since when and why)\n");
}

enum {
    OPT_ETCD = 256,
    OPT_PREFIX,
    OPT_RUNTIME,
    OPT_LOGLEVEL,
    OPT_TIMEOUT,
    OPT_LOGTIME,
    OPT_LOGUNLIMITED,
    OPT_SERVICE,
    OPT_JSON,
    OPT_ALL,
    OPT_ADMIN,
    OPT_OFFLINE_OK,
    OPT_LOGFORMAT,
    OPT_CONNECT,
};

#define COMMON_OPTS                                                                                \
    {"config", required_argument, NULL, 'c'}, {"etcd", required_argument, NULL, OPT_ETCD},         \
        {"prefix", required_argument, NULL, OPT_PREFIX},                                           \
        {"runtime-socket", required_argument, NULL, OPT_RUNTIME},                                  \
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},                                      \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

static const struct option run_opts[] = {
    COMMON_OPTS,
    {"log-time", required_argument, NULL, OPT_LOGTIME},
    {"log-unlimited", no_argument, NULL, OPT_LOGUNLIMITED},
    {"log-format", required_argument, NULL, OPT_LOGFORMAT},
    {NULL, 0, NULL, 0},
};

static const struct option render_opts[] = {
    COMMON_OPTS,
    {"log-time", required_argument, NULL, OPT_LOGTIME},
    {"log-unlimited", no_argument, NULL, OPT_LOGUNLIMITED},
    {"output", required_argument, NULL, 'o'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"offline-ok", no_argument, NULL, OPT_OFFLINE_OK},
    {"log-format", required_argument, NULL, OPT_LOGFORMAT},
    {NULL, 0, NULL, 0},
};

static const struct option check_opts[] = {
    COMMON_OPTS,
    {"connect", no_argument, NULL, OPT_CONNECT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {NULL, 0, NULL, 0},
};

static const struct option status_opts[] = {
    COMMON_OPTS,
    {"service", required_argument, NULL, OPT_SERVICE},
    {"json", no_argument, NULL, OPT_JSON},
    {"all", no_argument, NULL, OPT_ALL},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {NULL, 0, NULL, 0},
};

struct cmd_args;

/* A command: its options, its usage and the function that runs it. */
struct command {
    const char *name;
    const struct option *opts;
    const char *short_opts; /* leading ':' for our own messages */
    void (*usage)(FILE *out);
    int (*run)(const struct command *c, const struct cmd_args *a); /* the exit code */
};

static int cmd_run(const struct command *c, const struct cmd_args *a);
static int cmd_render(const struct command *c, const struct cmd_args *a);
static int cmd_check(const struct command *c, const struct cmd_args *a);
static int cmd_status(const struct command *c, const struct cmd_args *a);

static const struct command commands[] = {
    {"run", run_opts, ":c:h", usage_run, cmd_run},
    {"render", render_opts, ":c:o:h", usage_render, cmd_render},
    {"check", check_opts, ":c:h", usage_check, cmd_check},
    {"status", status_opts, ":c:h", usage_status, cmd_status},
};

struct overrides {
    const char *etcd, *prefix, *runtime, *log_level;
};

/* config.c's reasons start with the config field ("etcd.endpoints[0]: ");
 * on the command line the option is what the user typed: drop the field. */
static const char *reason_only(const char *msg)
{
    const char *colon;

    if (!msg)
        return "invalid value";
    colon = strstr(msg, ": ");
    if (colon && (strncmp(msg, "etcd.", 5) == 0 || strncmp(msg, "haproxy.", 8) == 0 ||
                  strncmp(msg, "log_level", 9) == 0))
        return colon + 2;
    return msg;
}

/* Apply the overrides to cfg; an error names the option. */
static int apply_overrides(struct config *cfg, const struct overrides *o, char **errmsg)
{
    char *why = NULL;
    const char *opt = NULL;
    int r = 0;

    if (o->etcd && config_set_etcd(cfg, o->etcd, &why) < 0)
        opt = "--etcd";
    else if (o->prefix && config_set_prefix(cfg, o->prefix, &why) < 0)
        opt = "--prefix";
    else if (o->runtime && config_set_runtime_socket(cfg, o->runtime, &why) < 0)
        opt = "--runtime-socket";
    else if (o->log_level && config_set_log_level(cfg, o->log_level, &why) < 0)
        opt = "--log-level";
    if (opt) {
        memprintf(errmsg, "%s: %s", opt, reason_only(why));
        r = -EINVAL;
    }
    free(why);
    return r;
}

/* The overrides alone, checked before the config file is read, so that a
 * bad option is named as such even when the file has problems too. */
static int check_overrides(const char *cmd, const struct overrides *o)
{
    struct config scratch;
    char *errmsg = NULL;
    int r;

    memset(&scratch, 0, sizeof(scratch));
    r = apply_overrides(&scratch, o, &errmsg);
    if (r < 0)
        fprintf(stderr, "slotsync %s: %s\n", cmd, errmsg ? errmsg : strerror(-r));
    free(errmsg);
    config_free(&scratch);
    return r;
}

struct reload_args {
    const char *path;
    const struct overrides *ov;
};

/* SIGHUP: the same file and the same command-line overrides as at start. */
static int reload_config(struct config *out, char **errmsg, void *arg)
{
    const struct reload_args *ra = arg;
    int r = config_load(ra->path, out, errmsg);

    if (r == 0)
        r = apply_overrides(out, ra->ov, errmsg);
    if (r < 0)
        config_free(out);
    return r;
}

struct check_counts {
    unsigned errors, warnings;
};

static void print_problem(bool error, const char *text, void *arg)
{
    struct check_counts *n = arg;

    fprintf(stderr, "slotsync check: %s: %s\n", error ? "error" : "warning", text);
    if (error)
        n->errors++;
    else
        n->warnings++;
}

/* run, render, status: each problem of the config file on its line. */
static void print_config_error(bool error, const char *text, void *arg)
{
    fprintf(stderr, "slotsync %s: %s%s\n", (const char *)arg, error ? "" : "warning: ", text);
}

/* The warning sources that run on a config without errors. */
static unsigned (*const warning_sources[])(const struct config *, config_report_fn, void *) = {
    check_paths,
    check_spares,
    check_fds,
    config_weight_warnings,
    check_haproxy,
};

/* check --connect: one line per endpoint on stdout; failures are errors. */
static void check_connect(const struct config *cfg, double timeout_s, struct check_counts *n)
{
    char *errmsg = NULL;
    int r = probe_etcd(cfg, timeout_s, stdout, &errmsg);

    fflush(stdout);
    if (r < 0) {
        print_problem(true, errmsg ? errmsg : "cannot try the etcd endpoints", n);
    } else if (r > 0) {
        free(errmsg);
        errmsg = NULL;
        memprintf(&errmsg, "%d of %zu etcd endpoints failed", r, cfg->n_etcd_endpoints);
        print_problem(true, errmsg ? errmsg : "etcd endpoints failed", n);
    }
    free(errmsg);
    errmsg = NULL;
    /* and HAProxy's runtime socket, with its level (issue 19) */
    r = probe_runtime(cfg, timeout_s, stdout, &errmsg);
    fflush(stdout);
    if (r != 0)
        print_problem(true,
                      r < 0 && errmsg ? errmsg
                                      : "haproxy.runtime_socket: not usable (see the line above)",
                      n);
    free(errmsg);
}

/* check: every problem of the file, the warnings, --connect's probes. */
static int check_config(const char *config_path, const struct overrides *ov, bool connect,
                        double timeout_s)
{
    struct check_counts n = {0, 0};
    struct config cfg;
    char *errmsg = NULL;
    char q[LOG_QUOTE_MAX];
    bool loaded = config_load_all(config_path, &cfg, print_problem, &n) == 0;
    size_t n_services = loaded ? cfg.n_services : 0;

    if (loaded) {
        if (apply_overrides(&cfg, ov, &errmsg) < 0) {
            print_problem(true, errmsg ? errmsg : "invalid option", &n);
        } else {
            for (size_t i = 0; i < sizeof(warning_sources) / sizeof(warning_sources[0]); i++)
                warning_sources[i](&cfg, print_problem, &n);
            if (connect)
                check_connect(&cfg, timeout_s, &n);
        }
        free(errmsg);
    }
    log_quote(config_path, strlen(config_path), q, sizeof(q));
    if (n.errors)
        printf("%s: %u error%s, %u warning%s\n", q, n.errors, n.errors == 1 ? "" : "s", n.warnings,
               n.warnings == 1 ? "" : "s");
    else
        printf("%s: ok (%zu service%s, %u warning%s)\n", q, n_services, n_services == 1 ? "" : "s",
               n.warnings, n.warnings == 1 ? "" : "s");
    if (loaded)
        config_free(&cfg);
    return n.errors ? 1 : 0;
}

/* render --offline-ok after etcd's silence (why): keep or write the file. */
static int render_offline(const struct config *cfg, const char *output, const char *why,
                          char **errmsg)
{
    const char *path = output ? output : cfg->services_file;
    char q[512], *reason = NULL;
    bool kept = false;
    int r;

    log_quote(path, strlen(path), q, sizeof(q));
    r = render_write_offline(cfg, output, &kept, &reason);
    if (r < 0) {
        memprintf(errmsg, "%s; --offline-ok: %s", why ? why : "etcd did not answer",
                  reason ? reason : strerror(-r));
    } else {
        log_warn("render",
                 "%s; --offline-ok: %s %s (%zu backends, slots empty until "
                 "'slotsync run' reaches etcd)",
                 why ? why : "etcd did not answer", kept ? "kept the existing" : "wrote",
                 strcmp(path, "-") ? q : "standard output", cfg->n_services);
    }
    free(reason);
    return r;
}

static int bad_option(const struct command *c, int opt, char **argv)
{
    const char *arg = argv[optind - 1];

    if (opt == ':')
        fprintf(stderr, "slotsync %s: option '%s' needs a value\n", c->name, arg);
    else if (optopt && optopt < 256 && strncmp(arg, "--", 2) != 0)
        fprintf(stderr, "slotsync %s: unknown option '-%c'\n", c->name, optopt);
    else
        fprintf(stderr, "slotsync %s: unknown option '%s'\n", c->name, arg);
    fprintf(stderr, "'slotsync %s --help' lists the options.\n", c->name);
    return 2;
}

/* What the command line of run, render, check and status says. */
struct cmd_args {
    struct overrides ov;
    const char *config_path, *output;
    double timeout_s;
    bool offline_ok, connect;
    int log_format; /* --log-format; -1: the config's log_format */
    struct inspect_opts so;
};

/* Parse c's options into *a. Returns -1 to go on, else the exit code (the
 * message printed, or --help's usage). */
static int parse_args(const struct command *c, int argc, char **argv, struct cmd_args *a)
{
    const char *cmd = c->name;
    bool status = c->run == cmd_status;
    char *end;
    int opt;

    memset(a, 0, sizeof(*a));
    a->timeout_s = 10;
    a->log_format = -1;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, c->short_opts, c->opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            a->config_path = optarg;
            break;
        case 'o':
            a->output = optarg;
            break;
        case OPT_ETCD:
            a->ov.etcd = optarg;
            break;
        case OPT_PREFIX:
            a->ov.prefix = optarg;
            break;
        case OPT_RUNTIME:
            a->ov.runtime = optarg;
            break;
        case OPT_LOGLEVEL:
            a->ov.log_level = optarg;
            break;
        case OPT_LOGTIME:
            if (strcmp(optarg, "utc") != 0 && strcmp(optarg, "local") != 0) {
                fprintf(stderr, "slotsync %s: --log-time: must be utc or local\n", cmd);
                return 2;
            }
            log_set_local_time(strcmp(optarg, "local") == 0);
            break;
        case OPT_LOGUNLIMITED:
            log_set_unlimited(true);
            break;
        case OPT_SERVICE:
            a->so.service = optarg;
            break;
        case OPT_JSON:
            a->so.json = true;
            break;
        case OPT_ALL:
            a->so.all = true;
            break;
        case OPT_ADMIN:
            a->so.admin = optarg;
            break;
        case OPT_OFFLINE_OK:
            a->offline_ok = true;
            break;
        case OPT_LOGFORMAT:
            if ((a->log_format = log_format_parse(optarg)) < 0) {
                fprintf(stderr, "slotsync %s: --log-format: must be text, logfmt or json\n", cmd);
                return 2;
            }
            break;
        case OPT_CONNECT:
            a->connect = true;
            break;
        case OPT_TIMEOUT:
            errno = 0;
            a->timeout_s = strtod(optarg, &end);
            if (errno || *end || !(a->timeout_s > 0 && a->timeout_s <= 3600)) {
                fprintf(stderr,
                        "slotsync %s: --timeout: must be a number of seconds in (0, 3600]\n", cmd);
                return 2;
            }
            break;
        case 'h':
            c->usage(stdout);
            return 0;
        default:
            return bad_option(c, opt, argv);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "slotsync %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    if (!a->config_path && !(status && a->so.admin)) {
        fprintf(stderr, "slotsync %s: -c FILE (--config FILE) is required\n", cmd);
        return 2;
    }
    if (check_overrides(cmd, &a->ov) < 0)
        return 2;
    return -1;
}

/* run, render, status: the config file with the overrides, every error of
 * the file printed as check prints them (issue 19), and the log set up from
 * it. 0, or -1 with *cfg freed. */
static int load_for(const char *cmd, const struct cmd_args *a, struct config *cfg)
{
    char *errmsg = NULL;
    int r;

    if (config_load_all(a->config_path, cfg, print_config_error, (void *)cmd) < 0) {
        config_free(cfg);
        return -1;
    }
    r = apply_overrides(cfg, &a->ov, &errmsg);
    if (r < 0) {
        /* The message names the file (escaped) where it matters. */
        fprintf(stderr, "slotsync %s: %s\n", cmd, errmsg ? errmsg : strerror(-r));
        free(errmsg);
        config_free(cfg);
        return -1;
    }
    log_set_level((enum log_level)cfg->log_level);
    log_set_format((enum log_format)(a->log_format >= 0 ? a->log_format : cfg->log_format));
    return 0;
}

/* The end of run and render: the log flushed, the error said. */
static int daemon_exit(const char *cmd, int r, char *errmsg, struct config *cfg)
{
    log_flush(true);
    if (r < 0)
        fprintf(stderr, "slotsync %s: %s\n", cmd, errmsg ? errmsg : strerror(-r));
    free(errmsg);
    config_free(cfg);
    return r < 0 ? 1 : 0;
}

static int cmd_run(const struct command *c, const struct cmd_args *a)
{
    struct reload_args ra = {a->config_path, &a->ov};
    struct config cfg;
    char *errmsg = NULL;
    int r;

    if (load_for(c->name, a, &cfg) < 0)
        return 1;
    r = controller_run(&cfg, reload_config, &ra, &errmsg);
    return daemon_exit(c->name, r, errmsg, &cfg);
}

static int cmd_render(const struct command *c, const struct cmd_args *a)
{
    struct config cfg;
    char *errmsg = NULL;
    int r;

    if (load_for(c->name, a, &cfg) < 0)
        return 1;
    r = controller_render(&cfg, a->output, a->timeout_s, &errmsg);
    if (r == -ETIMEDOUT && a->offline_ok)
        r = render_offline(&cfg, a->output, errmsg, &errmsg);
    return daemon_exit(c->name, r, errmsg, &cfg);
}

static int cmd_check(const struct command *c, const struct cmd_args *a)
{
    return check_config(a->config_path, &a->ov, a->connect, a->timeout_s);
}

static int cmd_status(const struct command *c, const struct cmd_args *a)
{
    struct inspect_opts so = a->so;
    struct config cfg;
    char *errmsg = NULL;
    int r;

    so.timeout_s = a->timeout_s;
    if (!a->config_path) {
        memset(&cfg, 0, sizeof(cfg));
    } else {
        if (load_for(c->name, a, &cfg) < 0)
            return 2;
        /* The daemon's info lines (etcd watch, HAProxy reads) are noise
         * here: warnings and errors only, unless --log-level says more. */
        if (!a->ov.log_level && cfg.log_level > LOG_LEVEL_WARN)
            log_set_level(LOG_LEVEL_WARN);
    }
    r = inspect_status(&cfg, &so, stdout, &errmsg);
    log_flush(true);
    if (r < 0)
        fprintf(stderr, "slotsync status: %s\n", errmsg ? errmsg : strerror(-r));
    free(errmsg);
    config_free(&cfg);
    return r < 0 ? INSPECT_UNREACHABLE : r;
}

/* announce, with each --options-file FILE replaced by the options FILE
 * holds (optfile.h): how slotsync-announce@.service reads
 * /etc/slotsync/announce/%i.conf. */
static int cmd_announce(int argc, char **argv)
{
    char **args = NULL, **owned = NULL, *errmsg = NULL;
    int n = 0, r = optfile_expand(argc, argv, &args, &n, &owned, &errmsg);

    if (r < 0) {
        fprintf(stderr, "slotsync announce: %s\n", errmsg ? errmsg : strerror(-r));
        free(errmsg);
        return 2;
    }
    r = announce_main(n, args);
    free(args);
    optfile_free(owned);
    return r;
}

int main(int argc, char **argv)
{
    const char *cmd;

    /* Writes to a closed socket or pipe must return EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    jitter_seed(((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid());
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    cmd = argv[1];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            struct cmd_args a;
            int r = parse_args(&commands[i], argc - 1, argv + 1, &a);

            return r >= 0 ? r : commands[i].run(&commands[i], &a);
        }
    if (strcmp(cmd, "announce") == 0)
        return cmd_announce(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("slotsync %s\n", SLOTSYNC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "slotsync: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
