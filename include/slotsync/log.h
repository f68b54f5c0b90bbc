/* log - leveled, one-line-per-event logging to stderr, and memprintf-style
 * error strings.
 *
 * Every line is "<ISO time> <level> <module>: <message>". Messages built from
 * untrusted text must pass it through log_quote() or an equivalent, so that a
 * value cannot forge extra log lines.
 */
#ifndef SLOTSYNC_LOG_H
#define SLOTSYNC_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set the threshold; messages above it are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parse "error", "warn", "info" or "debug". Returns the level, or -1. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) log_msg(LOG_ERROR, (mod), __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, (mod), __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, (mod), __VA_ARGS__)
#define log_debug(mod, ...) log_msg(LOG_DEBUG, (mod), __VA_ARGS__)

/* Copy up to len bytes of untrusted text into out (size outsz, always
 * NUL-terminated) with control characters, quotes and backslashes escaped
 * C-style and non-ASCII bytes as \xNN; a cut is marked with "...".
 * Returns out, so it can be used inline in log_msg arguments. */
char *log_quote(const char *text, size_t len, char *out, size_t outsz);

/* Format into a newly allocated string stored in *out, freeing its previous
 * value (HAProxy's memprintf). out may be NULL: then nothing happens. On
 * allocation failure *out becomes NULL. Returns *out. The caller frees. */
char *memprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An outage as the log tells it: one line when it starts, "still ... after
 * N s" lines at a slowing cadence (10 s, 30 s, 60 s, then every 5 minutes),
 * one line when it ends. The caller owns the struct (zeroed = no outage) and
 * passes the loop's clock in seconds; it prints the lines itself. */
struct log_outage {
    double since; /* start of the outage; 0 when there is none */
    double next;  /* when the next "still" line is due */
    unsigned step;
};

/* Note a failure at now. Returns true when it starts a new outage (log the
 * first line), false when one was already going. */
bool log_outage_begin(struct log_outage *o, double now);

/* Returns true when a "still unreachable" line is due at now, with the
 * outage's length so far in *elapsed; false otherwise (or with no outage). */
bool log_outage_due(struct log_outage *o, double now, double *elapsed);

/* End the outage. Returns its length in seconds, or -1 if there was none. */
double log_outage_end(struct log_outage *o, double now);

#endif
