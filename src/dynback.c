/* dynback - new backends created at run time (dynback.h). */
#include <slotsync/dynback.h>

#include <errno.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/config.h>
#include <slotsync/endpoint.h>

/* The decimal at *p (at most 4 digits), into *out; the byte after it. */
static const char *read_num(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;
    int digits = 0;

    while (p < end && *p >= '0' && *p <= '9' && digits < 5) {
        v = v * 10 + (unsigned)(*p++ - '0');
        digits++;
    }
    if (!digits || digits > 4)
        return NULL;
    *out = v;
    return p;
}

int dynback_parse_version(const char *text, size_t len, struct haproxy_version *out)
{
    static const char key[] = "Version: ";
    const char *p = text, *end = text + len;

    memset(out, 0, sizeof(*out));
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *q;

        if ((size_t)(le - p) > sizeof(key) - 1 && memcmp(p, key, sizeof(key) - 1) == 0) {
            q = read_num(p + sizeof(key) - 1, le, &out->major);
            if (!q || q == le || *q != '.' || !(q = read_num(q + 1, le, &out->minor)))
                break;
            if (q < le && *q == '.' && !(q = read_num(q + 1, le, &out->patch)))
                break;
            if (q < le && *q != '-' && *q != '+' && *q != '~')
                break;
            return 0;
        }
        p = nl ? nl + 1 : end;
    }
    memset(out, 0, sizeof(*out));
    return -EPROTO;
}

bool dynback_version_ok(const struct haproxy_version *v)
{
    return v->major > DYNBACK_MIN_MAJOR ||
           (v->major == DYNBACK_MIN_MAJOR && v->minor >= DYNBACK_MIN_MINOR);
}

bool dynback_config_ok(const struct config *cfg)
{
    return cfg->http_bind.set && cfg->http_domain && cfg->defaults.mode == MODE_HTTP &&
           config_balance_is_dynamic(cfg->defaults.balance);
}

bool dynback_usable(const struct dynback_state *s, const struct config *cfg)
{
    return s->version_known && dynback_version_ok(&s->version) && s->base_declares &&
           s->running_has_defaults && dynback_config_ok(cfg);
}

bool dynback_fits(const struct backend *b)
{
    return !b->configured && b->conf.opt.mode == MODE_HTTP && !b->conf.listen.set &&
           !backend_is_spare(b) && endpoint_service_name_valid(b->conf.name);
}

bool dynback_removable(const struct backend *b, size_t endpoints)
{
    return endpoints == 0 && dynback_fits(b) && backend_ours(b) && b->present;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

enum dynback_reply dynback_add_reply(const char *reply)
{
    /* HAProxy 3.4's src/proxy.c, cli_parse_add_backend(). */
    if (strcmp(reply, "New backend registered.") == 0)
        return DYNBACK_CREATED;
    if (starts_with(reply, "New backend registered (no support for dynamic servers: ") &&
        !strchr(reply, '\n'))
        return DYNBACK_NO_DYNAMIC_SRV;
    if (starts_with(reply, "Error during backend creation : name is already used by other "
                           "proxy 'backend ") &&
        !strchr(reply, '\n'))
        return DYNBACK_EXISTS;
    if (strcmp(reply, "Cannot find default proxy '" DYNBACK_DEFAULTS "'.") == 0)
        return DYNBACK_NO_DEFAULTS;
    return DYNBACK_REFUSED;
}

bool dynback_deleted_reply(const char *reply)
{
    static const char ok[] = "Backend deleted.";
    size_t n = strlen(reply), k = sizeof(ok) - 1;

    return n >= k && memcmp(reply + n - k, ok, k) == 0 && (n == k || reply[n - k - 1] == '\n');
}
