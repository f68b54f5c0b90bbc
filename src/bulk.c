/* bulk - the cost model that picks the socket or one reload (bulk.h). */
#include <slotsync/bulk.h>

#include <string.h>

void bulk_choose(const struct bulk_input *in, struct bulk_choice *out)
{
    out->runtime_s = (double)in->commands * in->command_us / 1e6;
    out->reload_s = (BULK_RELOAD_FIXED_US + (double)in->servers * in->server_us) / 1e6;
    out->reload = false;
    if (in->path == BULK_PATH_RUNTIME)
        out->why = "bulk_path is runtime";
    else if (in->commands < BULK_MIN_COMMANDS)
        out->why = "smaller than one batch";
    else if (!in->reload_allowed)
        out->why = "no reload allowed now";
    else if (in->path == BULK_PATH_RELOAD) {
        out->reload = true;
        out->why = "bulk_path is reload";
    } else if (out->reload_s < out->runtime_s) {
        out->reload = true;
        out->why = "a reload is cheaper";
    } else {
        out->why = "the runtime socket is cheaper";
    }
}

enum bulk_listing_step bulk_listing_step(const struct bulk_listing_facts *f)
{
    if (f->path == BULK_PATH_RELOAD)
        return BULK_LISTING_HOLD;
    if (f->path != BULK_PATH_AUTO)
        return BULK_LISTING_SEND;
    if (!f->state_known || !f->etcd_count || !f->valid)
        return BULK_LISTING_SEND; /* nothing to scale by yet */
    return BULK_LISTING_ESTIMATE;
}

void bulk_listing_scale(size_t commands, size_t servers, size_t valid, size_t count,
                        size_t *out_commands, size_t *out_servers)
{
    if (valid && count > valid)
        commands = (size_t)((double)commands * (double)count / (double)valid);
    *out_commands = commands;
    /* the render declares a slot per endpoint at least */
    *out_servers = servers < count ? count : servers;
}

/* Measured on the bench machine, 2026-12-08, 100,000 endpoints in 100
 * backends of 1,024 slots (docs/PERFORMANCE.md, "cost model figures"): the
 * runtime figure is the batches' time per command, the reload figure a
 * bulk reload's time ("haproxy -c" and the reload) less the fixed part, per
 * server. Ordered by version. */
static const struct {
    unsigned major, minor;
    double command_us, server_us;
} version_costs[] = {
    {2, 6, 14, 34},
    {3, 0, 13, 22},
    {3, 2, 9, 18},
    {3, 4, 9, 31},
};
#define N_VERSION_COSTS (sizeof(version_costs) / sizeof(version_costs[0]))

void bulk_version_costs(unsigned major, unsigned minor, double *command_us, double *server_us)
{
    size_t pick = 0;

    for (size_t i = 0; i < N_VERSION_COSTS; i++)
        if (version_costs[i].major < major ||
            (version_costs[i].major == major && version_costs[i].minor <= minor))
            pick = i;
    *command_us = version_costs[pick].command_us;
    *server_us = version_costs[pick].server_us;
}

void bulk_learn(struct bulk_learned *l, double sample_us)
{
    if (!(sample_us > 0))
        return;
    l->us = l->samples ? l->us + BULK_LEARN_WEIGHT * (sample_us - l->us) : sample_us;
    l->samples++;
}

double bulk_batch_sample(unsigned long long commands, double seconds)
{
    if (commands < BULK_SAMPLE_MIN_COMMANDS || !(seconds >= 0))
        return -1;
    return seconds * 1e6 / (double)commands;
}

double bulk_reload_sample(size_t servers, double seconds)
{
    double us;

    if (servers < BULK_SAMPLE_MIN_SERVERS || !(seconds >= 0))
        return -1;
    us = (seconds * 1e6 - BULK_RELOAD_FIXED_US) / (double)servers;
    return us < 1 ? 1 : us;
}

struct bulk_cost bulk_cost(bool command, int cfg_us, const struct bulk_learned *l,
                           bool version_known, unsigned major, unsigned minor)
{
    struct bulk_cost c;
    double cmd, srv;

    if (cfg_us != BULK_COST_MEASURED) {
        c.us = cfg_us;
        c.source = BULK_COST_CONFIG;
        return c;
    }
    if (l && l->samples) {
        c.us = l->us;
        c.source = BULK_COST_LEARNED;
        return c;
    }
    if (version_known) {
        bulk_version_costs(major, minor, &cmd, &srv);
        c.source = BULK_COST_VERSION;
    } else {
        bulk_version_costs(0, 0, &cmd, &srv);
        c.source = BULK_COST_FALLBACK;
    }
    c.us = command ? cmd : srv;
    return c;
}

const char *bulk_cost_source_name(enum bulk_cost_source s)
{
    switch (s) {
    case BULK_COST_CONFIG:
        return "the config";
    case BULK_COST_LEARNED:
        return "measured here";
    case BULK_COST_VERSION:
        return "HAProxy's version";
    case BULK_COST_FALLBACK:
        return "a default";
    }
    return "?";
}

static const char *const names[] = {"auto", "runtime", "reload"};

int bulk_path_parse(const char *name)
{
    for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

const char *bulk_path_name(enum bulk_path p)
{
    return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}
