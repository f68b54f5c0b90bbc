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

#endif
