/* version - slotsync's version, as `slotsync --version`, /metrics
 * (slotsync_build_info), /status and the live page show it. */
#ifndef SLOTSYNC_VERSION_H
#define SLOTSYNC_VERSION_H

#define SLOTSYNC_VERSION "0.1.0"

#endif
