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
