/* log-t - the log's levels, formats, rate limits and outage state (log.h has the functions). */
#ifndef SLOTSYNC_LOG_T_H
#define SLOTSYNC_LOG_T_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define LOG_LINE_MAX 2048 /* a message longer than this is cut */
#define LOG_RATE_LINES 50
#define LOG_RATE_WINDOW_S 1.0

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* One field of an event: a key (a plain name from the code, like
 * "service"; other bytes become '_', and ts/level/module/msg get a '_'
 * after them) and its value (untrusted text is fine: it is escaped). A NULL
 * value leaves the field out. */
struct log_field {
    const char *key;
    const char *value;
};

/* The shape of a line. text (the default, for people): "<time> <level>
 * <module>: <message>"; logfmt: ts=<time> level=<level> module=<module>
 * msg="<message>"; json: one object a line, {"ts":..,"level":..,"module":..,
 * "msg":..}, each followed by the fields of log_fields(). In logfmt and json
 * every value is escaped (quotes, backslashes,
 * control characters; json also bytes above 0x7f as \u00XX), so that a line
 * always parses as one record. */
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

/* The rate limit of one key, as pure logic (zeroed = fresh). */
struct log_rate {
    double window_start;
    unsigned lines;           /* printed in this window */
    unsigned long suppressed; /* hidden in this window */
};

/* The buffer for one quoted untrusted text in a log line: longer text is
 * cut (and marked). Short excerpts (one reply among many) use a fraction of
 * it. */
#define LOG_QUOTE_MAX 512

/* "1 endpoint", "2 endpoints": the word for a count n (issue 19). */
#define LOG_PLURAL(n, one, many) ((n) == 1 ? (one) : (many))

/* An outage as the log tells it: one line when it starts, "still ... after
 * N s" lines at a slowing cadence (10 s, 30 s, 60 s, then every 5 minutes),
 * one line when it ends. The caller owns the struct (zeroed = no outage) and
 * passes the loop's clock in seconds; it prints the lines itself. */
struct log_outage {
    double since; /* start of the outage; 0 when there is none */
    double next;  /* when the next "still" line is due */
    unsigned step;
};

#endif
