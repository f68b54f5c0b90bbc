/* main - the command line: parse it, load the config, hand over to a module. */
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
#include <slotsync/config.h>
#include <slotsync/controller.h>
#include <slotsync/log.h>
#include <slotsync/probe.h>

#define SLOTSYNC_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: slotsync run    -c FILE [overrides]   watch etcd, keep HAProxy's slots in sync\n"
        "       slotsync render -c FILE [-o PATH] [--timeout S] [overrides]\n"
        "                                             render the services file once and exit\n"
        "       slotsync check  -c FILE [--connect]   validate the config file; with --connect,\n"
        "                                             also read from every etcd endpoint once\n"
        "       slotsync announce --etcd URLS --key KEY --addr HOST:PORT [options] [-- CMD...]\n"
        "                                             register an endpoint under an etcd lease\n"
        "       slotsync version\n"
        "overrides: --etcd URL[,URL...]  --prefix PREFIX  --runtime-socket ADDR\n"
        "           --log-level error|warn|info|debug\n"
        "'slotsync announce --help' lists the sidekick's options.\n");
}

enum { OPT_ETCD = 256, OPT_PREFIX, OPT_RUNTIME, OPT_LOGLEVEL, OPT_TIMEOUT, OPT_CONNECT };

static const struct option daemon_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"output", required_argument, NULL, 'o'},
    {"etcd", required_argument, NULL, OPT_ETCD},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"runtime-socket", required_argument, NULL, OPT_RUNTIME},
    {"log-level", required_argument, NULL, OPT_LOGLEVEL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"connect", no_argument, NULL, OPT_CONNECT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct overrides {
    const char *etcd, *prefix, *runtime, *log_level;
};

static int apply_overrides(struct config *cfg, const struct overrides *o, char **errmsg)
{
    if (o->etcd && config_set_etcd(cfg, o->etcd, errmsg) < 0)
        return -EINVAL;
    if (o->prefix && config_set_prefix(cfg, o->prefix, errmsg) < 0)
        return -EINVAL;
    if (o->runtime && config_set_runtime_socket(cfg, o->runtime, errmsg) < 0)
        return -EINVAL;
    if (o->log_level && config_set_log_level(cfg, o->log_level, errmsg) < 0)
        return -EINVAL;
    return 0;
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

static int cmd_daemon(const char *cmd, int argc, char **argv)
{
    struct overrides ov = {0};
    const char *config_path = NULL, *output = NULL;
    double timeout_s = 10;
    struct config cfg;
    char *errmsg = NULL, *end;
    bool connect = false;
    int opt, r;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:o:h", daemon_opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_ETCD:
            ov.etcd = optarg;
            break;
        case OPT_PREFIX:
            ov.prefix = optarg;
            break;
        case OPT_RUNTIME:
            ov.runtime = optarg;
            break;
        case OPT_LOGLEVEL:
            ov.log_level = optarg;
            break;
        case OPT_TIMEOUT:
            errno = 0;
            timeout_s = strtod(optarg, &end);
            if (errno || *end || !(timeout_s > 0 && timeout_s <= 3600)) {
                fprintf(stderr,
                        "slotsync %s: --timeout: must be a number of seconds in (0, 3600]\n", cmd);
                return 2;
            }
            break;
        case OPT_CONNECT:
            connect = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "slotsync %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    if (!config_path) {
        fprintf(stderr, "slotsync %s: -c FILE is required\n", cmd);
        return 2;
    }
    if (connect && strcmp(cmd, "check") != 0) {
        fprintf(stderr, "slotsync %s: --connect is only for check\n", cmd);
        return 2;
    }
    if (output && strcmp(cmd, "render") != 0) {
        fprintf(stderr, "slotsync %s: -o is only for render\n", cmd);
        return 2;
    }
    r = config_load(config_path, &cfg, &errmsg);
    if (r == 0)
        r = apply_overrides(&cfg, &ov, &errmsg);
    if (r < 0) {
        /* The message names the file (escaped) where it matters. */
        fprintf(stderr, "slotsync: %s\n", errmsg ? errmsg : strerror(-r));
        free(errmsg);
        config_free(&cfg);
        return 1;
    }
    log_set_level((enum log_level)cfg.log_level);
    if (strcmp(cmd, "check") == 0) {
        printf("%s: ok (%zu services)\n", config_path, cfg.n_services);
        r = 0;
        if (connect) {
            /* etcd reports TLS and connection failures on stdout, one
             * line per endpoint; any failure makes the exit status 1 */
            r = probe_etcd(&cfg, timeout_s, stdout, &errmsg);
            if (r > 0) {
                memprintf(&errmsg, "%d of %zu etcd endpoints failed", r, cfg.n_etcd_endpoints);
                r = -EIO;
            }
        }
    } else if (strcmp(cmd, "render") == 0) {
        r = controller_render(&cfg, output, timeout_s, &errmsg);
    } else {
        struct reload_args ra = {config_path, &ov};

        r = controller_run(&cfg, reload_config, &ra, &errmsg);
    }
    if (r < 0)
        fprintf(stderr, "slotsync %s: %s\n", cmd, errmsg ? errmsg : strerror(-r));
    free(errmsg);
    config_free(&cfg);
    return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *cmd;

    /* Writes to a closed socket must return EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    cmd = argv[1];
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "render") == 0 || strcmp(cmd, "check") == 0)
        return cmd_daemon(cmd, argc - 1, argv + 1);
    if (strcmp(cmd, "announce") == 0)
        return announce_main(argc - 1, argv + 1);
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
