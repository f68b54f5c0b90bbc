/* table - the backend table, and who owns which proxy name.
 *
 * The one owner of every struct backend and of the name sets that decide
 * whose a proxy name is (docs/DESIGN.md, "Which proxies slotsync owns").
 * The controller embeds it and lends it to apply, pool and rollout, which
 * find, add and drop backends here directly instead of calling back up.
 * Pure but for its log lines (a backend nothing routes to, a service
 * refused or free again), which stay the controller's ("sync").
 */
#ifndef SLOTSYNC_TABLE_H
#define SLOTSYNC_TABLE_H

#include <slotsync/table-t.h>

struct config;

/* An empty table for cfg (borrowed). need_proxies: false in render mode,
 * which does not wait for HAProxy's proxies. */
void table_init(struct table *t, const struct config *cfg, bool need_proxies);
/* Free every backend and name set. A zeroed t is fine. */
void table_free(struct table *t);

/* The backend named name (borrowed), or NULL. */
struct backend *table_find(const struct table *t, const char *name);
/* The backend for conf: the existing one of its name, or a new one
 * (backend_insert(): conf copied, conf->hosts borrowed). Either way its
 * routing is noted (table_note_routing()). Owned by t; NULL on ENOMEM. */
struct backend *table_add(struct table *t, const struct service_conf *conf, bool configured);
/* table_add() of an etcd-only service: a backend from t->cfg's defaults,
 * not configured (and not claimed: table_settle() decides). */
struct backend *table_add_service(struct table *t, const char *service);
/* Every backend is planned again (dirty). */
void table_mark_dirty(struct table *t);
/* The slots HAProxy has filled in the backends it runs (present), as last
 * read or set; a slot whose state is unknown counts as filled. *backends:
 * how many backends hold them. Whether an empty etcd listing may empty
 * HAProxy hangs on it. */
size_t table_filled_slots(const struct table *t, size_t *backends);
/* Take b out of t (order kept) and free it. b must be in t. */
void table_drop(struct table *t, struct backend *b);

/* A backend no frontend reaches gets one warning naming it when it
 * becomes so (issue 19); status, the page and /metrics show b->unrouted. */
void table_note_routing(const struct table *t, struct backend *b);

/* The name sets that decide who owns a proxy name (borrowed from t). */
struct backend_owners table_owners(const struct table *t);
/* Who holds b's name if slotsync does not (backend_name_taken()). */
const char *table_name_taken(const struct table *t, const struct backend *b);
/* Decide whether b is ours (backend_settle()), and say so; a refusal is
 * counted in refused_services. Returns true if b was claimed now. */
bool table_settle(struct table *t, struct backend *b);

/* After a new config or base config (SIGHUP): every backend's routing is
 * noted again, a claimed name another proxy holds now is given up, and each
 * is settled again; one refused before whose name is free now and that
 * HAProxy does not run asks want_reload ("name free again for", its name);
 * a foreign one is not present. */
void table_settle_again(struct table *t,
                        void (*want_reload)(const char *why, const char *name, void *arg),
                        void *arg);
/* The services file at path that slotsync rendered (its text, len bytes
 * and NUL-terminated; borrowed) names the backends that are ours: each goes into owned, and a
 * service it names that t does not have gets a backend from the defaults
 * (table_add_service()); one rendered with other options than the defaults
 * now asks want_reload ("defaults changed for", its name). Logs how many
 * were added, and once that its frontends have an older slotsync's names.
 * 0 or -ENOMEM (t keeps what was added). */
int table_take_rendered(struct table *t, const char *path, const char *text, size_t len,
                        void (*want_reload)(const char *why, const char *name, void *arg),
                        void *arg);
/* name is ours from now on (a backend created at run time). 0 or -ENOMEM. */
int table_own(struct table *t, const char *name);
/* The backends the services file HAProxy runs declares (sorted): t takes
 * them and clears *rendered. */
void table_set_owned(struct table *t, struct names *rendered);
/* "show backend" listed these proxies (sorted): t takes them and clears
 * *listed; proxies_known from now on. */
void table_set_proxies(struct table *t, struct names *listed);
/* base_config's proxy names (sorted): t takes them and clears both. */
void table_set_base_names(struct table *t, struct names *be, struct names *fe);

#endif
