/* dnshosts-t - the dns file's watcher (dnshosts.h has the functions). */
#ifndef SLOTSYNC_DNSHOSTS_T_H
#define SLOTSYNC_DNSHOSTS_T_H

#include <stdbool.h>
#include <stddef.h>

#define DNSHOSTS_MARKER "# Rendered by slotsync: <service>.<domain> -> HAProxy's address."
#define DNSHOSTS_RETRY_MIN_S 1.0
#define DNSHOSTS_RETRY_MAX_S 60.0

/* What a hosts file writer remembers (zeroed = nothing written yet). */
struct dnshosts {
    char *written;      /* the text of the last successful write; NULL = none */
    char *written_path; /* where it went */
    unsigned long long names_hash;
    double retry_at, retry_delay;
    size_t skipped_noted;
    bool failing;
};

#endif
