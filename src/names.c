/* names - the proxy and section names slotsync writes, and their rules. */
#include <slotsync/names.h>

#include <slotsync/endpoint.h>

#include <stdio.h>
#include <string.h>

void names_frontend(const char *service, char *out)
{
    snprintf(out, RENDER_FRONTEND_NAME_SIZE, RENDER_FRONTEND_PREFIX "%s", service);
}

bool names_frontend_valid(const char *name)
{
    size_t pl = strlen(RENDER_FRONTEND_PREFIX);

    if (strcmp(name, RENDER_HTTP_FRONTEND) == 0)
        return true;
    return strncmp(name, RENDER_FRONTEND_PREFIX, pl) == 0 && endpoint_service_name_valid(name + pl);
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

bool names_defaults_declared(const char *text, size_t len, const char *name)
{
    static const char kw[] = "defaults";
    size_t nl_len = strlen(name);
    const char *p = text, *end = text + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *q = p;

        if ((size_t)(le - q) > sizeof(kw) && memcmp(q, kw, sizeof(kw) - 1) == 0 &&
            blank(q[sizeof(kw) - 1])) {
            q += sizeof(kw) - 1;
            while (q < le && blank(*q))
                q++;
            if ((size_t)(le - q) >= nl_len && memcmp(q, name, nl_len) == 0 &&
                (q + nl_len == le || blank(q[nl_len]) || q[nl_len] == '\r'))
                return true;
        }
        p = nl ? nl + 1 : end;
    }
    return false;
}
