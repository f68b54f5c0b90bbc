/* bulk - the runtime socket or one reload for a large plan (issue 23).
 *
 * Pure: no I/O, no clock. A plan is what the planner would send to HAProxy
 * now. HAProxy applies runtime commands one by one (it walks a backend's
 * list to find a server) while a reload parses the whole services file
 * twice ("haproxy -c", then the new worker). A cold start with empty slots,
 * a restarted HAProxy or a mass move can cost more commands than one
 * reload; bulk_choose() says which path is cheaper. Its two figures (time
 * per command, reload time per server) are measured: on this HAProxy, from
 * slotsync's own batches and reloads (bulk_learn()), and until then the
 * figure measured for HAProxy's version on the bench machine
 * (bulk_version_costs()); a figure set in the config is used as it is.
 * docs/DESIGN.md has the model and the figures.
 */
#ifndef SLOTSYNC_BULK_H
#define SLOTSYNC_BULK_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/bulk-t.h>

/* A plan smaller than one batch always goes through the socket: a reload
 * for a few changes is what slotsync exists to avoid. */
#define BULK_MIN_COMMANDS 1024
/* haproxy.runtime_command_us and haproxy.reload_server_us: 0 (the
 * default) means measured (bulk_cost()). */
#define BULK_COST_MEASURED 0
/* A batch of fewer commands, or a reload of a file with fewer servers, says
 * more about the round trip or the fixed cost than about the figure: it is
 * not a sample. */
#define BULK_SAMPLE_MIN_COMMANDS 256
#define BULK_SAMPLE_MIN_SERVERS 4096
/* The weight of a new sample in the learned figure (after the first one,
 * which replaces the version's figure). */
#define BULK_LEARN_WEIGHT 0.3
/* Whatever a reload costs besides the servers: the render, forking
 * "haproxy -c", the master's reload, reading the new worker's state. */
#define BULK_RELOAD_FIXED_US 150000

/* Which path in applies; fills *out (every field). */
void bulk_choose(const struct bulk_input *in, struct bulk_choice *out);
/* A first listing's pages (issue 23): asked at each page until it says
 * ESTIMATE, then decided once by the estimate (bulk-t.h). */
enum bulk_listing_step bulk_listing_step(const struct bulk_listing_facts *f);
/* The plan for the pages read so far (commands, servers, for valid keys)
 * scaled to the whole listing of count keys: the commands in proportion,
 * the servers at least one slot per key. */
void bulk_listing_scale(size_t commands, size_t servers, size_t valid, size_t count,
                        size_t *out_commands, size_t *out_servers);

/* The figures measured for HAProxy major.minor on the bench machine
 * (docs/PERFORMANCE.md): the closest version at or below it, the oldest
 * one below them all. */
void bulk_version_costs(unsigned major, unsigned minor, double *command_us, double *server_us);
/* One sample into l: the first replaces nothing learned, later ones move
 * the average by BULK_LEARN_WEIGHT. A sample <= 0 is ignored. */
void bulk_learn(struct bulk_learned *l, double sample_us);
/* The sample a run of batches gives: seconds * 1e6 / commands, or -1 when
 * there are fewer than BULK_SAMPLE_MIN_COMMANDS. */
double bulk_batch_sample(unsigned long long commands, double seconds);
/* The sample a reload gives: its time less BULK_RELOAD_FIXED_US, per server
 * of the file (at least 1 us), or -1 when there are fewer than
 * BULK_SAMPLE_MIN_SERVERS. */
double bulk_reload_sample(size_t servers, double seconds);
/* The figure to use: the config's (cfg_us != BULK_COST_MEASURED), else
 * what was learned, else the version's (version_known), else the fallback;
 * command says which of the two figures. */
struct bulk_cost bulk_cost(bool command, int cfg_us, const struct bulk_learned *l,
                           bool version_known, unsigned major, unsigned minor);
/* "the config", "measured here", "HAProxy's version", "a default": for a log
 * line. */
const char *bulk_cost_source_name(enum bulk_cost_source s);
/* "auto", "runtime", "reload" -> enum bulk_path; -1 for anything else. */
int bulk_path_parse(const char *name);
/* The config spelling of p. */
const char *bulk_path_name(enum bulk_path p);

#endif
