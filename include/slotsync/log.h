/* log - leveled, one-line-per-event logging to stderr, rate-limited per call
 * site, and memprintf-style error strings.
 *
 * Every line is "<RFC 3339 time> <level> <module>: <message>", the time in
 * UTC ("2026-12-01T05:15:00.123Z") unless local time was asked for (then
 * with its offset, "...00.123-05:00"). Messages built from untrusted text
 * must pass it through log_quote() or an equivalent, so that a value cannot
 * forge extra log lines.
 *
 * Rate limit: each log_msg() call site (identified by its format string) may
 * print LOG_RATE_LINES lines per LOG_RATE_WINDOW_S; what is over is counted
 * and summarised once the window is over, as one line at the same level:
 * "+N similar lines in the last second (last: <the last hidden message>)".
 * Debug lines and log_msg_all() are never limited. A site's summary is
 * printed by its next line, by any later line, or by log_flush(), which a
 * daemon calls about once a second.
 */
#ifndef SLOTSYNC_LOG_H
#define SLOTSYNC_LOG_H

#include <slotsync/log-t.h>

/* Set the threshold; messages above it are dropped. Default LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parse "error", "warn", "info" or "debug". Returns the level, or -1. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

/* Log one line, rate-limited per call site: fmt must be a string literal
 * (or at least outlive the process's logging), its address is the key. */
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same, never rate-limited and printed whatever the level threshold:
 * for output that was asked for (the SIGUSR1 state dump). */
void log_msg_all(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_msg() with the event's fields: text format prints the message alone
 * (it should already say what the fields say, for people); logfmt adds
 * key=value (quoted and escaped unless a plain token) and json adds
 * "key":"value" after msg. Rate-limited as log_msg(), keyed by fmt; a
 * summary line carries no fields. fields is borrowed. */
void log_fields(enum log_level level, const char *module, const struct log_field *fields,
                size_t n_fields, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Print the summaries of windows that are over (all: of every window, at
 * exit). Cheap when there are none. */
void log_flush(bool all);

void log_set_format(enum log_format format);
/* "text", "logfmt" or "json": the format, or -1. */
int log_format_parse(const char *name);

/* Timestamps in local time with its offset (true) or in UTC (false, the
 * default). */
void log_set_local_time(bool local);

/* No rate limit at all (true): for benchmarks that read every line. */
void log_set_unlimited(bool unlimited);

/* For tests: where lines go (NULL: stderr), and the clocks: clock gives
 * monotonic seconds for the rate limit, wall the epoch seconds (and
 * microseconds in *usec) for the timestamp; NULL restores the system's. */
void log_set_output(FILE *out);
void log_set_clock(double (*clock)(void), long (*wall)(long *usec));

/* sec.usec since the epoch as RFC 3339 with milliseconds into out: UTC with
 * "Z", or local time with its "+hh:mm" offset. Returns the length. */
size_t log_format_time(long sec, long usec, bool local, char *out, size_t size);

/* A line for this key at now (seconds, monotonic): true to print it, false
 * to hide it. When the previous window hid lines, *summary is their count
 * (print that summary first), else 0. */
bool log_rate_allow(struct log_rate *r, double now, unsigned long *summary);

/* At now, with no new line: true with *summary = the hidden count when a
 * window that hid lines is over (then the count restarts), false otherwise. */
bool log_rate_flush(struct log_rate *r, double now, unsigned long *summary);

#define log_error(mod, ...) log_msg(LOG_LEVEL_ERROR, (mod), __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_LEVEL_WARN, (mod), __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_LEVEL_INFO, (mod), __VA_ARGS__)
#define log_debug(mod, ...) log_msg(LOG_LEVEL_DEBUG, (mod), __VA_ARGS__)

/* Copy up to len bytes of untrusted text into out (size outsz, always
 * NUL-terminated) with control characters, quotes and backslashes escaped
 * C-style and non-ASCII bytes as \xNN; a cut is marked with "...".
 * Returns out, so it can be used inline in log_msg arguments. */
char *log_quote(const char *text, size_t len, char *out, size_t outsz);

/* log_quote() of a NUL-terminated string s (borrowed): the whole string.
 * Returns out. */
char *log_quote_str(const char *s, char *out, size_t outsz);

/* The length of text[0..len) without the line ends ('\n', '\r') it ends
 * with: a library's message ("...\n") logged as one line, its newline not
 * quoted as a literal "\n" (issue 19). */
size_t log_chomp(const char *text, size_t len);

/* Format into a newly allocated string stored in *out, freeing its previous
 * value (HAProxy's memprintf). out may be NULL: then nothing happens. On
 * allocation failure *out becomes NULL. Returns *out. The caller frees. */
char *memprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Note a failure at now. Returns true when it starts a new outage (log the
 * first line), false when one was already going. */
bool log_outage_begin(struct log_outage *o, double now);

/* Returns true when a "still unreachable" line is due at now, with the
 * outage's length so far in *elapsed; false otherwise (or with no outage). */
bool log_outage_due(struct log_outage *o, double now, double *elapsed);

/* End the outage. Returns its length in seconds, or -1 if there was none. */
double log_outage_end(struct log_outage *o, double now);

#endif
