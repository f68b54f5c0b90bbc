/* clock - monotonic durations, wall-clock times of day (clock.h). */
#include <slotsync/clock.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double read_clock(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double clock_mono(void)
{
    return read_clock(CLOCK_MONOTONIC);
}

double clock_wall(void)
{
    return read_clock(CLOCK_REALTIME);
}

double clock_age(double now, double then)
{
    if (!(then > 0))
        return -1;
    return now > then ? now - then : 0;
}

double clock_wall_of(double then, double mono_now, double wall_now)
{
    double age = clock_age(mono_now, then);

    return age < 0 ? 0 : wall_now - age;
}

const char *clock_format_utc(double wall, char *buf, size_t size)
{
    time_t sec;
    long ms;
    long long total;
    struct tm tm;
    char date[32];

    if (size == 0)
        return buf;
    if (!(wall > 0) || wall > 253402300799.0 /* 9999-12-31T23:59:59Z */) {
        snprintf(buf, size, "-");
        return buf;
    }
    /* to the nearest millisecond, as a whole: 0.123 is not 0.12299999 */
    total = llround(wall * 1000.0);
    sec = (time_t)(total / 1000);
    ms = (long)(total % 1000);
    if (!gmtime_r(&sec, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
        snprintf(buf, size, "%s.%03ldZ", date, ms) >= (int)size)
        snprintf(buf, size, "-");
    return buf;
}
