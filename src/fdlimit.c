/* fdlimit - RLIMIT_NOFILE raised at start, the admin endpoint's budget, and
 * EMFILE/ENFILE named. */
#include <slotsync/fdlimit.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int fdlimit_raise(struct fdlimit *out)
{
    struct rlimit rl;

    memset(out, 0, sizeof(*out));
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        out->err = -errno;
        return out->err;
    }
    out->soft_before = out->soft = (unsigned long)rl.rlim_cur;
    out->hard = (unsigned long)rl.rlim_max;
    if (rl.rlim_cur == rl.rlim_max)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        out->err = -errno;
        return out->err;
    }
    out->soft = (unsigned long)rl.rlim_cur;
    out->raised = true;
    return 0;
}

unsigned long fdlimit_soft(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    return rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 : (unsigned long)rl.rlim_cur;
}

int fdlimit_in_use(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d)
        return -errno;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the directory's own descriptor */
}

unsigned fdlimit_admin_budget(unsigned long nofile, unsigned long in_use)
{
    unsigned long need = in_use + FDLIMIT_RESERVE;

    if (nofile <= need)
        return 0;
    return nofile - need > FDLIMIT_ADMIN_MAX ? FDLIMIT_ADMIN_MAX : (unsigned)(nofile - need);
}

unsigned fdlimit_per_client(unsigned limit)
{
    /* A quarter: a probe, a scraper and an operator from three addresses
     * always find room, and one address cannot hold them all. */
    unsigned n = limit / 4;

    return n ? n : 1;
}

bool fdlimit_is_exhausted(int err)
{
    return err == EMFILE || err == -EMFILE || err == ENFILE || err == -ENFILE;
}

const char *fdlimit_strerror(int err)
{
    static _Thread_local char text[160];

    if (err < 0)
        err = -err;
    if (err == EMFILE)
        snprintf(text, sizeof(text),
                 "out of file descriptors (EMFILE: the process's limit, nofile %lu)",
                 fdlimit_soft());
    else if (err == ENFILE)
        snprintf(text, sizeof(text), "out of file descriptors (ENFILE: the system's limit)");
    else
        return strerror(err);
    return text;
}
