/* backend - a service's backend as slotsync sees it, and the table of them.
 *
 * Pure (no I/O): the controller owns the table and drives it. A backend
 * holds a copy of its service's options, its slot table sized to what
 * HAProxy has, HAProxy's view of each slot, the commands HAProxy refused,
 * and the ownership state of its name (docs/DESIGN.md, "Which proxies
 * slotsync owns").
 */
#ifndef SLOTSYNC_BACKEND_H
#define SLOTSYNC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slotsync/backend-t.h>

struct config;
struct host_route;
struct plan_opts;
struct plan_origin;
struct plan_refusal;
struct server_view;
struct service_conf;
struct service_options;
struct slot;

/* ---- the table: an array of pointers sorted by name ---- */

/* Index of the backend named name in v[0..n), or where it would go (*found
 * false). */
size_t backend_pos(struct backend *const *v, size_t n, const char *name, bool *found);
/* The backend named name, borrowed, or NULL. */
struct backend *backend_lookup(struct backend *const *v, size_t n, const char *name);
/* The backend named conf->name: the existing one, or a new one for conf
 * (copied; conf->hosts stays borrowed) inserted in order, marked dirty.
 * *v may move. Owned by the table; NULL on ENOMEM (table unchanged). */
struct backend *backend_insert(struct backend ***v, size_t *n, const struct service_conf *conf,
                               bool configured);
/* Frees b and all it owns (not conf.hosts). */
void backend_free(struct backend *b);

/* A backend slotsync may touch (and render): claimed and not foreign. */
bool backend_ours(const struct backend *b);

/* ---- slots ---- */

/* Size b's slot table (and HAProxy view, drift flags) to n slots; new ones
 * are empty and unknown, dropped ones are freed. 0 or -ENOMEM. */
int backend_resize(struct backend *b, size_t n);
/* Grow b to n slots added at run time (plan_add_slots()): HAProxy's view
 * of each new slot is a dynamic server's, in maintenance with no address;
 * added_to = n. 0 or -ENOMEM. */
int backend_add_slots(struct backend *b, size_t n);
/* The next slot count after n by b's growth rule (slot_growth 0 = double). */
size_t backend_grow_step(const struct backend *b, size_t n);
/* The slot count for endpoints endpoints, growing from n (0 = the
 * configured slots) by the growth rule. */
size_t backend_fit_slots(const struct backend *b, size_t n, size_t endpoints);

/* ---- adopting HAProxy's state ---- */

/* Note a row of "show servers state" for slot slot of b (into b->seen,
 * which grows by doubling). 0 or -ENOMEM. */
int backend_seen_add(struct backend *b, size_t slot, const struct server_view *v);

/* Adopt the rows of "show servers state" collected in b->seen (n_seen
 * entries, sorted here by slot; seen_backend set when HAProxy listed b at
 * all): b's slot table is sized to HAProxy's contiguous slots and its view
 * (have) becomes HAProxy's. A backend absent from HAProxy that was not
 * present before keeps the table a pending render was built on. trusted:
 * nothing failed, reloaded or restarted since the last adoption, so a slot
 * HAProxy has other than we set is drift (b->drift). endpoints: the
 * catalog's count for b (a missing etcd-only backend without endpoints asks
 * no reload). Marks b dirty and frees b->seen. A backend not ours is left
 * alone. 0 or -ENOMEM (then b may be half-adopted: the caller resyncs). *out
 * is always set. */
int backend_adopt(struct backend *b, bool trusted, size_t endpoints, struct backend_adoption *out);

/* ---- converging ---- */

/* How b, present in HAProxy, gets the slots it needs: *n is its configured
 * slot count, or HAProxy's if higher (a slot is never taken away), fitted by
 * the growth rule to endpoints. Run-time growth needs a dynamic algorithm
 * and no earlier loss of run-time slots (grow_by_reload). */
enum backend_grow backend_growth(struct backend *b, size_t endpoints, size_t *n);

/* backend_growth() while a first listing is only partly read (additions
 * only): BACKEND_GROW_RUNTIME as backend_growth() would say it, else
 * BACKEND_GROW_NONE and b untouched: growth by reload is decided once the
 * listing is whole (the endpoint count is not final before). */
enum backend_grow backend_growth_additions(struct backend *b, size_t endpoints, size_t *n);

/* Fill o with b's planning options: no weights for a static algorithm, and
 * b's refused commands (borrowed: valid while b's refusals do not change).
 * Returns o. */
const struct plan_opts *backend_plan_opts(const struct backend *b, struct plan_opts *o);

/* For a static algorithm: call warn once for each filled slot whose weight
 * HAProxy cannot apply (not 0, not the default) and whose instance was not
 * warned about at the last call; b then remembers exactly the instances of
 * such slots now (an instance that leaves and comes back is told again). */
void backend_static_weights(struct backend *b,
                            void (*warn)(const struct backend *b, const struct slot *s, void *arg),
                            void *arg);

/* ---- a config read again (SIGHUP) ---- */

/* What backend_reconfigure() would return for these arguments, with b
 * left as it is (SIGHUP's decision, hup.h). */
enum backend_reconf backend_reconf_of(const struct backend *b, const struct service_conf *sc,
                                      const struct service_options *defaults);
/* Take b's part of a new config: sc is b's service in it (borrowed; NULL:
 * the config does not name it), defaults the new defaults. b's hosts are
 * borrowed from sc. *old_slots gets b's slot count before. Calling it again
 * with the same arguments returns BACKEND_RECONF_SAME. */
enum backend_reconf backend_reconfigure(struct backend *b, const struct service_conf *sc,
                                        const struct service_options *defaults, int *old_slots);

/* ---- ownership name sets ---- */

/* Copy name in (call backend_names_sort() once all are in). 0 or -ENOMEM. */
int backend_names_add(struct names *s, const char *name);
void backend_names_sort(struct names *s);
bool backend_names_has(const struct names *s, const char *name);
void backend_names_clear(struct names *s);

/* The proxy names a HAProxy config text (len bytes) declares: "backend
 * NAME" and "listen NAME" into be, "frontend NAME" and "listen NAME" into fe
 * (either may be NULL), sorted. Only names that could be service names or
 * spares' (spare.h) are kept: no other can collide with one. 0 or -ENOMEM. */
int backend_proxy_names(const char *text, size_t len, struct names *be, struct names *fe);

/* Who holds the name of b's proxies if slotsync does not: a static text for
 * the log, or NULL when the name is free or ours. */
const char *backend_name_taken(const struct backend *b, const struct backend_owners *o);

/* Decide whether b is ours. A name another proxy holds makes b foreign
 * (and not claimed); a free name is claimed, except for an etcd-only
 * service while HAProxy's proxies are not known yet and need_proxies (the
 * daemon; render mode does not wait). Returns true if b was claimed now.
 * *out is always set. */
bool backend_settle(struct backend *b, const struct backend_owners *o, bool need_proxies,
                    struct backend_settling *out);

/* ---- refused commands ---- */

/* The refusal of b's slot for a command of cmd's kind (its first four
 * words), borrowed, or NULL. */
struct plan_refusal *backend_refusal_find(struct backend *b, size_t slot, const char *cmd);
/* Forget that refusal, if any. */
void backend_refusal_forget(struct backend *b, size_t slot, const char *cmd);
/* Remember a refused slot command (o->slot of b) so that it is not planned
 * again until the slot's endpoint or HAProxy's side of it changes. Returns
 * whether its (slot, reason) was noted less than warn_every seconds before
 * now (then the caller does not warn again). */
bool backend_refusal_note(struct backend *b, const struct plan_origin *o, const char *cmd,
                          const char *reason, double now, double warn_every);

/* ---- spare backends (spare.h) ---- */

/* The HAProxy proxy b lives in: its spare's while bound, else its name. */
const char *backend_proxy(const struct backend *b);

/* The Host routes of the backends HAProxy runs (present), each to the
 * proxy it lives in (render_host_routes()); ours_only: only the backends
 * slotsync owns. *out (caller frees) and *n_out; 0 or -ENOMEM. */
int backend_host_routes(const struct config *cfg, struct backend *const *be, size_t n,
                        bool ours_only, struct host_route **out, size_t *n_out);
bool backend_is_spare(const struct backend *b);
/* b's name for people: "web (spare:3)" while bound, else "web". */
const char *backend_label(const struct backend *b);
/* b lives in proxy now (NULL or its own name: its own backend). */
void backend_set_proxy(struct backend *b, const char *proxy);

#endif
