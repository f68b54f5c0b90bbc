/* announce_value-t - how the value is written (announce_value.h has the functions). */
#ifndef SLOTSYNC_ANNOUNCE_VALUE_T_H
#define SLOTSYNC_ANNOUNCE_VALUE_T_H

#include <stdbool.h>
#include <stddef.h>

/* --format: JSON (the default) or HOST:PORT. */
enum announce_format { ANNOUNCE_FORMAT_JSON = 0, ANNOUNCE_FORMAT_PLAIN };

#endif
