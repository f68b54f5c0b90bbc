/* announce_key-t - what a read-back of the key means (announce_key.h has the functions). */
#ifndef SLOTSYNC_ANNOUNCE_KEY_T_H
#define SLOTSYNC_ANNOUNCE_KEY_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a periodic read of the key found, against what announce last put. */
enum announce_key_verdict {
    ANNOUNCE_KEY_OURS = 0,    /* our value under our lease */
    ANNOUNCE_KEY_GONE,        /* deleted by someone else */
    ANNOUNCE_KEY_DETACHED,    /* our value, but under no lease (a put without --lease) */
    ANNOUNCE_KEY_OVERWRITTEN, /* another value, under no lease or under ours */
    ANNOUNCE_KEY_TAKEN,       /* under another live lease: another writer owns it */
};

#endif
