/* config - the JSON configuration file, validated field by field.
 *
 * The file is as untrusted as etcd: every field is checked against a narrow
 * character set and range before it is stored, unknown keys are errors, and
 * an error names the field by its path ("services.api.slots"). Path parts are
 * known key names, names that already passed validation, or untrusted names
 * passed through log_quote(); the offending value itself is never echoed raw.
 *
 * Loading goes into the caller's struct directly; on any failure the struct
 * is freed and zeroed, so the caller has nothing to clean up.
 */
#include <slotsync/config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <sys/un.h>

#include <jansson.h>

#include <slotsync/bulk.h>
#include <slotsync/etcd-t.h>
#include <slotsync/log.h>
#include <slotsync/spare.h>
#include <slotsync/timeouts.h>

#define ETCD_ENDPOINTS_MAX 16
/* etcd.watch_check_interval_s: the watch stall detector's period (issue 24) */
#define ETCD_WATCH_CHECK_S 30
#define ETCD_WATCH_CHECK_S_MIN 1
#define ETCD_WATCH_CHECK_S_MAX 3600
#define ETCD_URL_MAX 300 /* "https://" + 253-byte host + ":65535/" fits */
#define PREFIX_MAX 255
#define FILE_PATH_MAX CONFIG_PATH_MAX
#define COMMAND_MAX 4096
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define MIN_RELOAD_INTERVAL_MS_MAX 600000
#define BULK_COST_US_MAX 1000000 /* runtime_command_us, reload_server_us: 1 s at most */
#define RESYNC_INTERVAL_S_MAX 86400
#define FIELD_PATH_SIZE 256
#define QUOTE_SIZE 100 /* an untrusted name quoted into a message */

#define DEFAULT_SLOTS 8
#define DEFAULT_BALANCE "roundrobin"
#define DEFAULT_SERVER_OPTIONS "check inter 2s"
#define DEFAULT_MIN_RELOAD_INTERVAL_MS 1000
#define DEFAULT_SPARE_BACKENDS 16
#define DEFAULT_RESYNC_INTERVAL_S 30
/* Caps on what a writer to the etcd prefix can create (issue 20). Each
 * service etcd alone names costs a backend (a reload past the spares, and
 * a services file and every later reload that grow with it); each endpoint
 * a slot, and past the slots a doubling of them. The defaults sit above
 * every deployment measured (docs/PERFORMANCE.md: 1,000 services, 1,000
 * endpoints in a backend) and stop a runaway writer at about 1,000 backends
 * and 4,096 slots a backend. */
#define DEFAULT_MAX_SERVICES 1000
#define DEFAULT_MAX_ENDPOINTS_PER_SERVICE 4096
#define CAP_MAX 1000000
#define CAP_KEYS "max_services", "max_endpoints_per_service" /* top-level keys */

static const char *const balance_names[] = {"roundrobin", "static-rr", "leastconn",
                                            "first",      "source",    "random"};
static const char *const dynamic_balance_names[] = {"roundrobin", "leastconn", "first", "random"};

/* Server keywords that fight slotsync's management of each slot, refused in
 * server_options:
 *  - enabled, disabled: slotsync drives each slot's admin state;
 *  - weight: comes from each endpoint;
 *  - id: every slot would get the same id;
 *  - init-addr, resolvers: would let HAProxy change slot addresses (DNS)
 *    behind slotsync's back;
 *  - track: would tie every slot's state to another server;
 *  - agent-check: the agent may set weight, drain and maint.
 * "backup" is allowed: it changes how the backend uses its servers, not who
 * manages them. */
static const char *const managed_server_keywords[] = {
    "enabled", "disabled", "weight", "id", "init-addr", "resolvers", "track", "agent-check"};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* Where config_load_all() sends each problem; NULL in config_load(), which
 * stops at the first. */
struct problems {
    config_report_fn report;
    void *arg;
    unsigned errors;
};

/* After one step of the load: with a collector, an error is reported and
 * the load goes on (0); without one, or out of memory, it stops (ret). */
static int keep_going(struct problems *p, int ret, char **errmsg)
{
    if (ret >= 0 || !p || ret == -ENOMEM)
        return ret;
    p->report(p->arg, true, errmsg && *errmsg ? *errmsg : strerror(-ret));
    p->errors++;
    return 0;
}

/* "<path>: <reason>". Always returns -EINVAL. */
static int field_error(char **errmsg, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int field_error(char **errmsg, const char *path, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    memprintf(errmsg, "%s: %s", path, reason);
    return -EINVAL;
}

static int oom(char **errmsg)
{
    memprintf(errmsg, "out of memory");
    return -ENOMEM;
}

/* path + "." + key into buf ("" path: key alone). Returns buf. */
static const char *join(char *buf, size_t size, const char *path, const char *key)
{
    if (path[0])
        snprintf(buf, size, "%s.%s", path, key);
    else
        snprintf(buf, size, "%s", key);
    return buf;
}

static char *quote(const char *s, char *out, size_t size)
{
    return log_quote(s, strlen(s), out, size);
}

/* ---- character-level checks ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Every byte in 0x21..0x7e (or 0x20..0x7e with spaces). */
static bool printable(const char *s, size_t len, bool spaces)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c > 0x7e || c < (spaces ? 0x20 : 0x21))
            return false;
    }
    return true;
}

/* Decimal 1-65535: digits only, no sign, no leading zero. */
static bool parse_port(const char *s, size_t len, unsigned short *port)
{
    return endpoint_parse_port(s, len, port, NULL) == 0;
}

/* RFC 1123 host name of len bytes: labels of [A-Za-z0-9-], 1-63 bytes, not
 * starting or ending with '-', joined by single dots; at most 253 bytes; the
 * last label is not all digits (so "999.1.1.1" is not taken for a name). */
static bool hostname_valid(const char *s, size_t len)
{
    size_t label = 0;
    bool numeric = true;

    if (len < 1 || len > CONFIG_HOSTNAME_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            if (i == len)
                break;
            label = 0;
            numeric = true;
            continue;
        }
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
        if (label == 0 && s[i] == '-')
            return false;
        if (!is_digit(s[i]))
            numeric = false;
        label++;
    }
    return !numeric;
}

/* A host name from the file, lowercased into out (CONFIG_HOSTNAME_MAX + 1). */
static bool hostname_lower(const char *s, char *out)
{
    size_t len = strnlen(s, CONFIG_HOSTNAME_MAX + 1);

    if (!hostname_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[len] = '\0';
    return true;
}

/* "[IPv6]" at s (len bytes, brackets included): an IPv6 literal, no zone. */
static bool bracketed_ipv6(const char *s, size_t len)
{
    char host[ENDPOINT_HOST_MAX], canon[ENDPOINT_HOST_MAX];
    bool v6;

    if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(host))
        return false;
    memcpy(host, s + 1, len - 2);
    host[len - 2] = '\0';
    return endpoint_parse_host(host, canon, &v6) == 0 && v6;
}

static bool ipv4_literal(const char *s, size_t len)
{
    char host[ENDPOINT_HOST_MAX], canon[ENDPOINT_HOST_MAX];
    bool v6;

    if (len >= sizeof(host))
        return false;
    memcpy(host, s, len);
    host[len] = '\0';
    return endpoint_parse_host(host, canon, &v6) == 0 && !v6;
}

/* ---- exported validators (reasons without a field path) ---- */

int config_check_etcd_url(const char *url, char **errmsg)
{
    const char *p, *host, *port;
    size_t len;

    if (!url) {
        memprintf(errmsg, "missing URL");
        return -EINVAL;
    }
    len = strnlen(url, ETCD_URL_MAX + 1);
    if (len > ETCD_URL_MAX) {
        memprintf(errmsg, "URL longer than %d bytes", ETCD_URL_MAX);
        return -EINVAL;
    }
    /* https:// is verified by libcurl against etcd.tls.ca_file or the
     * system's CAs; there is no way to turn verification off. */
    if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    else {
        memprintf(errmsg, "URL must start with http:// or https://");
        return -EINVAL;
    }

    host = p;
    if (*p == '[') {
        const char *close = strchr(p, ']');

        if (!close || !bracketed_ipv6(p, (size_t)(close - p + 1))) {
            memprintf(errmsg, "URL host in brackets must be an IPv6 literal (no zone id)");
            return -EINVAL;
        }
        p = close + 1;
    } else {
        while (*p && *p != ':' && *p != '/')
            p++;
        if (p == host ||
            !(ipv4_literal(host, (size_t)(p - host)) || hostname_valid(host, (size_t)(p - host)))) {
            memprintf(errmsg, "URL host must be an IPv4 literal, [IPv6] literal or host name");
            return -EINVAL;
        }
    }
    if (*p != ':') {
        memprintf(errmsg, "URL needs a port (http://HOST:PORT)");
        return -EINVAL;
    }
    port = ++p;
    while (is_digit(*p))
        p++;
    if (!parse_port(port, (size_t)(p - port), NULL)) {
        memprintf(errmsg, "URL port must be 1-65535 (no leading zeros)");
        return -EINVAL;
    }
    if (*p == '/')
        p++;
    if (*p) {
        memprintf(errmsg, "unexpected text after the URL port (only a trailing '/' is allowed)");
        return -EINVAL;
    }
    return 0;
}

int config_check_socket_addr(const char *addr, char **errmsg)
{
    struct endpoint ep;
    size_t len;

    if (!addr || !addr[0]) {
        memprintf(errmsg, "must not be empty");
        return -EINVAL;
    }
    len = strlen(addr);
    if (strchr(addr, '/')) {
        if (len > UNIX_PATH_MAX) {
            memprintf(errmsg, "unix socket path longer than %zu bytes", UNIX_PATH_MAX);
            return -EINVAL;
        }
        if (!printable(addr, len, false)) {
            memprintf(errmsg, "unix socket path must be printable ASCII without whitespace");
            return -EINVAL;
        }
        return 0;
    }
    if (endpoint_parse_hostport(addr, len, &ep) == 0)
        return 0;
    if (strncmp(addr, "localhost:", 10) == 0 && parse_port(addr + 10, len - 10, NULL))
        return 0;
    memprintf(errmsg, "must be a unix socket path (containing '/') or HOST:PORT with an IPv4 "
                      "literal, [IPv6] literal or localhost and a port 1-65535");
    return -EINVAL;
}

int config_parse_listen(const char *text, struct listen_addr *out, char **errmsg)
{
    struct listen_addr l;
    const char *port = NULL;
    size_t len;

    memset(&l, 0, sizeof(l));
    if (!text || !out)
        goto bad;
    len = strlen(text);
    if (text[0] == '*' && text[1] == ':')
        port = text + 2;
    else if (text[0] == ':')
        port = text + 1;
    if (port) {
        if (!parse_port(port, len - (size_t)(port - text), &l.port))
            goto bad;
    } else {
        struct endpoint ep;

        if (endpoint_parse_hostport(text, len, &ep) < 0)
            goto bad;
        memcpy(l.host, ep.host, sizeof(l.host));
        l.ipv6 = ep.ipv6;
        l.port = ep.port;
    }
    l.set = true;
    *out = l;
    return 0;
bad:
    memprintf(errmsg, "must be IPv4:PORT, [IPv6]:PORT, *:PORT or :PORT (port 1-65535)");
    return -EINVAL;
}

/* ---- field checks (reasons with the field path) ---- */

int config_check_prefix(const char *prefix, char **errmsg)
{
    size_t len = strnlen(prefix, PREFIX_MAX + 1);

    if (len < 1 || len > PREFIX_MAX || !printable(prefix, len, false)) {
        memprintf(errmsg, "must be 1-%d printable ASCII characters, no whitespace", PREFIX_MAX);
        return -EINVAL;
    }
    if (prefix[0] != '/' || prefix[len - 1] != '/') {
        memprintf(errmsg, "must start and end with '/'");
        return -EINVAL;
    }
    return 0;
}

static int check_prefix(const char *fp, const char *prefix, char **errmsg)
{
    char *reason = NULL;

    if (config_check_prefix(prefix, &reason) == 0)
        return 0;
    field_error(errmsg, fp, "%s", reason ? reason : "invalid prefix");
    free(reason);
    return -EINVAL;
}

/* A file path (no whitespace) or a command (spaces allowed). */
static int check_text(const char *fp, const char *s, bool spaces, char **errmsg)
{
    size_t max = spaces ? COMMAND_MAX : FILE_PATH_MAX;
    size_t len = strnlen(s, max + 1);

    if (len < 1 || len > max || !printable(s, len, spaces))
        return field_error(errmsg, fp, "must be 1-%zu printable ASCII characters%s", max,
                           spaces ? "" : ", no whitespace");
    return 0;
}

static bool option_char_ok(char c)
{
    return is_alnum(c) || (c && strchr("._:/@=,+-", c));
}

static int check_server_options(const char *fp, const char *s, char **errmsg)
{
    size_t len = strnlen(s, CONFIG_OPTIONS_MAX);
    size_t start = 0;

    if (len >= CONFIG_OPTIONS_MAX)
        return field_error(errmsg, fp, "longer than %d bytes", CONFIG_OPTIONS_MAX - 1);
    if (len == 0)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        char token[CONFIG_OPTIONS_MAX];

        if (i < len && s[i] != ' ') {
            if (!option_char_ok(s[i]))
                return field_error(errmsg, fp,
                                   "invalid character at byte %zu (allowed: A-Z a-z 0-9 "
                                   ". _ : / @ = , + - and single spaces)",
                                   i + 1);
            continue;
        }
        if (i == start)
            return field_error(errmsg, fp, "tokens must be separated by single spaces");
        memcpy(token, s + start, i - start);
        token[i - start] = '\0';
        /* token holds only option characters: safe to echo */
        if (in_list(token, managed_server_keywords, ARRAY_SIZE(managed_server_keywords)))
            return field_error(errmsg, fp, "token '%s' is managed by slotsync", token);
        start = i + 1;
    }
    return 0;
}

/* ---- typed access to JSON members ---- */

/* Edit distance (insert, delete, substitute, swap of neighbours) between
 * a and b, counted up to CONFIG_KEY_DISTANCE_MAX + 1. */
#define CONFIG_KEY_DISTANCE_MAX 3
static size_t key_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[3][65];

    if (la > 64 || lb > 64)
        return CONFIG_KEY_DISTANCE_MAX + 1;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = d[i % 3], *prev = d[(i - 1) % 3], *prev2 = d[(i + 1) % 3];

        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1], v = prev[j - 1] + cost;

            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
        }
    }
    return d[la % 3][lb];
}

/* The keys a block cannot do without (each also checked where it is read). */
static bool key_required(const char *path, const char *key)
{
    static const char *const req[][2] = {
        {"", "etcd"},
        {"", "haproxy"},
        {"etcd", "endpoints"},
        {"etcd", "prefix"},
        {"haproxy", "runtime_socket"},
        {"haproxy", "services_file"},
        {"http_frontend", "bind"},
        {"admin", "listen"},
        {"dns", "hosts_file"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(req); i++)
        if (strcmp(req[i][0], path) == 0 && strcmp(req[i][1], key) == 0)
            return true;
    return false;
}

/* An unknown key is named with the closest known key of its block (issue
 * 19: "runtime_sock" said only "unknown key"), and when that key is
 * required and not set, so is that. */
static int check_keys(json_t *obj, const char *path, const char *const *allowed, size_t n,
                      char **errmsg)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);

        if (!in_list(key, allowed, n)) {
            char q[QUOTE_SIZE], fp[FIELD_PATH_SIZE], rp[FIELD_PATH_SIZE];
            const char *best = NULL;
            size_t best_d = CONFIG_KEY_DISTANCE_MAX + 1, klen = strlen(key);

            for (size_t i = 0; i < n; i++) {
                size_t d = key_distance(key, allowed[i]);
                size_t al = strlen(allowed[i]);

                /* a prefix of a known key ("runtime_sock") is close too */
                if (klen >= 4 && al > klen && strncmp(key, allowed[i], klen) == 0)
                    d = 1;
                if (d < best_d && d <= (klen + 2) / 3 + (klen >= 4)) {
                    best_d = d;
                    best = allowed[i];
                }
            }
            join(fp, sizeof(fp), path, quote(key, q, sizeof(q)));
            if (best && key_required(path, best) && !json_object_get(obj, best))
                return field_error(errmsg, fp,
                                   "unknown key; did you mean \"%s\"? (%s is required and not "
                                   "set)",
                                   best, join(rp, sizeof(rp), path, best));
            if (best)
                return field_error(errmsg, fp, "unknown key; did you mean \"%s\"?", best);
            return field_error(errmsg, fp, "unknown key");
        }
    }
    return 0;
}

/* *out = obj.key if it is an object, NULL if absent. */
static int get_object(json_t *obj, const char *path, const char *key, json_t **out, char **errmsg)
{
    json_t *j = json_object_get(obj, key);
    char fp[FIELD_PATH_SIZE];

    *out = NULL;
    if (!j)
        return 0;
    if (!json_is_object(j))
        return field_error(errmsg, join(fp, sizeof(fp), path, key), "must be an object");
    *out = j;
    return 0;
}

/* *out = obj.key (borrowed) if it is a string without NUL, NULL if absent. */
static int get_string(json_t *obj, const char *path, const char *key, const char **out,
                      char **errmsg)
{
    json_t *j = json_object_get(obj, key);
    char fp[FIELD_PATH_SIZE];

    *out = NULL;
    if (!j)
        return 0;
    if (!json_is_string(j))
        return field_error(errmsg, join(fp, sizeof(fp), path, key), "must be a string");
    if (json_string_length(j) != strlen(json_string_value(j)))
        return field_error(errmsg, join(fp, sizeof(fp), path, key), "must not contain NUL");
    *out = json_string_value(j);
    return 0;
}

/* obj.key into *out if present: a JSON integer in min..max. */
static int get_int(json_t *obj, const char *path, const char *key, long min, long max, int *out,
                   char **errmsg)
{
    json_t *j = json_object_get(obj, key);
    char fp[FIELD_PATH_SIZE];
    json_int_t v;

    if (!j)
        return 0;
    join(fp, sizeof(fp), path, key);
    if (!json_is_integer(j))
        return field_error(errmsg, fp, "must be an integer");
    v = json_integer_value(j);
    if (v < min || v > max)
        return field_error(errmsg, fp, "must be between %ld and %ld", min, max);
    *out = (int)v;
    return 0;
}

/* obj.key into *out if present: a JSON true or false. */
static int get_bool(json_t *obj, const char *path, const char *key, bool *out, char **errmsg)
{
    json_t *j = json_object_get(obj, key);
    char fp[FIELD_PATH_SIZE];

    if (!j)
        return 0;
    if (!json_is_boolean(j))
        return field_error(errmsg, join(fp, sizeof(fp), path, key), "must be true or false");
    *out = json_is_true(j);
    return 0;
}

static int required(char **errmsg, const char *path, const char *key)
{
    char fp[FIELD_PATH_SIZE];

    return field_error(errmsg, join(fp, sizeof(fp), path, key), "required");
}

/* Replace *dst with a copy of src. */
static int set_string(char **dst, const char *src, char **errmsg)
{
    char *copy = strdup(src);

    if (!copy)
        return oom(errmsg);
    free(*dst);
    *dst = copy;
    return 0;
}

/* ---- blocks ---- */

static void free_string_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Validate url (len bytes) as etcd.endpoints[idx] and append it without its
 * trailing '/' to list. */
static int add_etcd_url(char **list, size_t *n, const char *url, size_t len, size_t idx,
                        char **errmsg)
{
    char fp[FIELD_PATH_SIZE], *copy, *reason = NULL;

    snprintf(fp, sizeof(fp), "etcd.endpoints[%zu]", idx);
    if (len == 0)
        return field_error(errmsg, fp, "empty URL");
    copy = strndup(url, len);
    if (!copy)
        return oom(errmsg);
    if (config_check_etcd_url(copy, &reason) < 0) {
        field_error(errmsg, fp, "%s", reason ? reason : "invalid URL");
        free(reason);
        free(copy);
        return -EINVAL;
    }
    if (len > 0 && copy[len - 1] == '/')
        copy[len - 1] = '\0';
    list[(*n)++] = copy;
    return 0;
}

static int load_etcd_tls(json_t *etcd, struct config *cfg, char **errmsg);
static int load_etcd_user(json_t *etcd, struct config *cfg, char **errmsg);

/* etcd.transport: "grpc" (etcd's native protocol, the default: it is what
 * etcd's grpc-proxy carries) or "json" (the gateway, where HTTP/2 cannot pass). */
static int load_etcd_transport(json_t *etcd, struct config *cfg, char **errmsg)
{
    const char *t = NULL;
    int ret = get_string(etcd, "etcd", "transport", &t, errmsg);

    if (ret < 0)
        return ret;
    if (!t || strcmp(t, "grpc") == 0)
        cfg->etcd_transport = ETCD_TRANSPORT_GRPC;
    else if (strcmp(t, "json") == 0)
        cfg->etcd_transport = ETCD_TRANSPORT_JSON;
    else
        return field_error(errmsg, "etcd.transport", "must be \"grpc\" or \"json\"");
    return 0;
}

static int load_etcd(json_t *root, struct config *cfg, char **errmsg)
{
    static const char *const keys[] = {"endpoints",
                                       "prefix",
                                       "tls",
                                       "username",
                                       "password_file",
                                       "transport",
                                       "watch_check_interval_s"};
    json_t *etcd, *eps, *j;
    const char *prefix;
    size_t i;
    int ret;

    ret = get_object(root, "", "etcd", &etcd, errmsg);
    if (ret < 0)
        return ret;
    if (!etcd)
        return required(errmsg, "", "etcd");
    ret = check_keys(etcd, "etcd", keys, ARRAY_SIZE(keys), errmsg);
    if (ret < 0)
        return ret;

    eps = json_object_get(etcd, "endpoints");
    if (!eps)
        return required(errmsg, "etcd", "endpoints");
    if (!json_is_array(eps))
        return field_error(errmsg, "etcd.endpoints", "must be an array of URLs");
    if (json_array_size(eps) < 1 || json_array_size(eps) > ETCD_ENDPOINTS_MAX)
        return field_error(errmsg, "etcd.endpoints", "must list 1 to %d URLs", ETCD_ENDPOINTS_MAX);
    cfg->etcd_endpoints = calloc(json_array_size(eps), sizeof(char *));
    if (!cfg->etcd_endpoints)
        return oom(errmsg);
    for (i = 0; i < json_array_size(eps); i++) {
        j = json_array_get(eps, i);
        if (!json_is_string(j) || json_string_length(j) != strlen(json_string_value(j))) {
            char fp[FIELD_PATH_SIZE];

            snprintf(fp, sizeof(fp), "etcd.endpoints[%zu]", i);
            return field_error(errmsg, fp, "must be a string");
        }
        ret = add_etcd_url(cfg->etcd_endpoints, &cfg->n_etcd_endpoints, json_string_value(j),
                           json_string_length(j), i, errmsg);
        if (ret < 0)
            return ret;
    }

    ret = get_string(etcd, "etcd", "prefix", &prefix, errmsg);
    if (ret < 0)
        return ret;
    if (!prefix)
        return required(errmsg, "etcd", "prefix");
    ret = check_prefix("etcd.prefix", prefix, errmsg);
    if (ret < 0)
        return ret;
    ret = load_etcd_tls(etcd, cfg, errmsg);
    if (ret < 0)
        return ret;
    ret = load_etcd_user(etcd, cfg, errmsg);
    if (ret < 0)
        return ret;
    ret = load_etcd_transport(etcd, cfg, errmsg);
    if (ret < 0)
        return ret;
    /* the watch stall detector's period (issue 24): two checks ahead make
     * a stall, so a stall is found within two of these */
    ret = get_int(etcd, "etcd", "watch_check_interval_s", ETCD_WATCH_CHECK_S_MIN,
                  ETCD_WATCH_CHECK_S_MAX, &cfg->etcd_watch_check_interval_s, errmsg);
    if (ret < 0)
        return ret;
    return set_string(&cfg->etcd_prefix, prefix, errmsg);
}

/* What a haproxy.* string holds. */
enum text_kind { TEXT_SOCKET, TEXT_PATH, TEXT_COMMAND };

static int load_text(json_t *obj, const char *path, const char *key, enum text_kind kind,
                     char **dst, char **errmsg)
{
    char fp[FIELD_PATH_SIZE];
    const char *s;
    int ret;

    /* Copied into *dst only when present and valid. */
    ret = get_string(obj, path, key, &s, errmsg);
    if (ret < 0 || !s)
        return ret;
    join(fp, sizeof(fp), path, key);
    if (kind == TEXT_SOCKET) {
        char *reason = NULL;

        if (config_check_socket_addr(s, &reason) < 0) {
            field_error(errmsg, fp, "%s", reason ? reason : "invalid address");
            free(reason);
            return -EINVAL;
        }
    } else {
        ret = check_text(fp, s, kind == TEXT_COMMAND, errmsg);
        if (ret < 0)
            return ret;
    }
    return set_string(dst, s, errmsg);
}

/* etcd.username and etcd.password_file, together. The user name is what
 * etcd accepts (printable, no spaces); the password is only ever read from
 * the file (by the etcd client, at start and on SIGHUP). */
static int load_etcd_user(json_t *etcd, struct config *cfg, char **errmsg)
{
    const char *user;
    int ret;

    if ((ret = get_string(etcd, "etcd", "username", &user, errmsg)) < 0 ||
        (ret = load_text(etcd, "etcd", "password_file", TEXT_PATH, &cfg->etcd_password_file,
                         errmsg)) < 0)
        return ret;
    if (!user != !cfg->etcd_password_file)
        return field_error(errmsg, "etcd.username", "goes with etcd.password_file");
    if (!user)
        return 0;
    if (!user[0] || strlen(user) > 255)
        return field_error(errmsg, "etcd.username", "must be 1-255 characters");
    for (const char *p = user; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return field_error(errmsg, "etcd.username",
                               "invalid character at byte %zu (printable ASCII, no spaces)",
                               (size_t)(p - user) + 1);
    return set_string(&cfg->etcd_username, user, errmsg);
}

/* etcd.tls: {"ca_file", "cert_file", "key_file", "server_name"}, all
 * optional; cert_file and key_file together. The files are read by the
 * etcd client (at start and on SIGHUP), not here. */
static int load_etcd_tls(json_t *etcd, struct config *cfg, char **errmsg)
{
    static const char *const keys[] = {"ca_file", "cert_file", "key_file", "server_name"};
    struct tls_conf *t = &cfg->etcd_tls;
    const char *name;
    json_t *tls;
    int ret;

    ret = get_object(etcd, "etcd", "tls", &tls, errmsg);
    if (ret < 0 || !tls)
        return ret;
    if ((ret = check_keys(tls, "etcd.tls", keys, ARRAY_SIZE(keys), errmsg)) < 0 ||
        (ret = load_text(tls, "etcd.tls", "ca_file", TEXT_PATH, &t->ca_file, errmsg)) < 0 ||
        (ret = load_text(tls, "etcd.tls", "cert_file", TEXT_PATH, &t->cert_file, errmsg)) < 0 ||
        (ret = load_text(tls, "etcd.tls", "key_file", TEXT_PATH, &t->key_file, errmsg)) < 0 ||
        (ret = get_string(tls, "etcd.tls", "server_name", &name, errmsg)) < 0)
        return ret;
    if (name && (ret = set_string(&t->server_name, name, errmsg)) < 0)
        return ret;
    return tls_conf_check(t, "etcd.tls", errmsg);
}

static int load_haproxy(json_t *root, struct config *cfg, char **errmsg)
{
    static const char *const keys[] = {
        "runtime_socket", "master_socket",      "base_config",
        "services_file",  "reload_command",     "min_reload_interval_ms",
        "binary",         "hosts_map",          "runtime_timeout_s",
        "bulk_path",      "runtime_command_us", "reload_server_us"};
    const char *bulk = NULL;
    json_t *h;
    int ret;

    ret = get_object(root, "", "haproxy", &h, errmsg);
    if (ret < 0)
        return ret;
    if (!h)
        return required(errmsg, "", "haproxy");
    ret = check_keys(h, "haproxy", keys, ARRAY_SIZE(keys), errmsg);
    if (ret < 0)
        return ret;
    if ((ret = load_text(h, "haproxy", "runtime_socket", TEXT_SOCKET, &cfg->runtime_socket,
                         errmsg)) < 0 ||
        (ret = load_text(h, "haproxy", "master_socket", TEXT_SOCKET, &cfg->master_socket, errmsg)) <
            0 ||
        (ret = load_text(h, "haproxy", "base_config", TEXT_PATH, &cfg->base_config, errmsg)) < 0 ||
        (ret = load_text(h, "haproxy", "services_file", TEXT_PATH, &cfg->services_file, errmsg)) <
            0 ||
        (ret = load_text(h, "haproxy", "reload_command", TEXT_COMMAND, &cfg->reload_command,
                         errmsg)) < 0 ||
        (ret = load_text(h, "haproxy", "binary", TEXT_PATH, &cfg->haproxy_bin, errmsg)) < 0 ||
        (ret = load_text(h, "haproxy", "hosts_map", TEXT_PATH, &cfg->hosts_map, errmsg)) < 0)
        return ret;
    if (!cfg->runtime_socket)
        return required(errmsg, "haproxy", "runtime_socket");
    if (!cfg->services_file)
        return required(errmsg, "haproxy", "services_file");
    /* Writing the services file over the base config would destroy it. */
    if (cfg->base_config && strcmp(cfg->base_config, cfg->services_file) == 0)
        return field_error(errmsg, "haproxy.services_file", "must differ from base_config");
    if (!cfg->haproxy_bin && !(cfg->haproxy_bin = strdup("haproxy")))
        return -ENOMEM;
    /* The map the HTTP frontend routes with sits beside the services file. */
    if (!cfg->hosts_map && !memprintf(&cfg->hosts_map, "%s.map", cfg->services_file))
        return -ENOMEM;
    /* The map path goes into the rendered file (inside map(...)) and into
     * runtime commands: only plain path characters. */
    for (const char *p = cfg->hosts_map; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-' || *p == '/'))
            return field_error(errmsg, "haproxy.hosts_map",
                               "may only use A-Z a-z 0-9 . _ - / (it defaults to "
                               "services_file + \".map\", so check that path too)");
    ret = get_int(h, "haproxy", "min_reload_interval_ms", 0, MIN_RELOAD_INTERVAL_MS_MAX,
                  &cfg->min_reload_interval_ms, errmsg);
    if (ret < 0)
        return ret;
    /* issue 23: the socket or one reload for a large plan (bulk.h) */
    if ((ret = get_string(h, "haproxy", "bulk_path", &bulk, errmsg)) < 0)
        return ret;
    if (bulk && (cfg->bulk_path = bulk_path_parse(bulk)) < 0)
        return field_error(errmsg, "haproxy.bulk_path", "must be one of auto, runtime, reload");
    if ((ret = get_int(h, "haproxy", "runtime_command_us", 1, BULK_COST_US_MAX,
                       &cfg->runtime_command_us, errmsg)) < 0 ||
        (ret = get_int(h, "haproxy", "reload_server_us", 1, BULK_COST_US_MAX,
                       &cfg->reload_server_us, errmsg)) < 0)
        return ret;
    return get_int(h, "haproxy", "runtime_timeout_s", RUNTIME_TIMEOUT_S_MIN, RUNTIME_TIMEOUT_S_MAX,
                   &cfg->runtime_timeout_s, errmsg);
}

/* The backend options present in obj over what *opt already holds. */
static int load_service_options(json_t *obj, const char *path, struct service_options *opt,
                                char **errmsg)
{
    char fp[FIELD_PATH_SIZE];
    const char *s;
    int ret;

    ret = get_int(obj, path, "slots", 1, CONFIG_SLOTS_MAX, &opt->slots, errmsg);
    if (ret < 0)
        return ret;
    ret = get_int(obj, path, "slot_growth", 0, CONFIG_SLOTS_MAX, &opt->slot_growth, errmsg);
    if (ret < 0)
        return ret;

    ret = get_string(obj, path, "mode", &s, errmsg);
    if (ret < 0)
        return ret;
    if (s) {
        if (strcmp(s, "http") == 0)
            opt->mode = MODE_HTTP;
        else if (strcmp(s, "tcp") == 0)
            opt->mode = MODE_TCP;
        else
            return field_error(errmsg, join(fp, sizeof(fp), path, "mode"),
                               "must be \"http\" or \"tcp\"");
    }

    ret = get_string(obj, path, "balance", &s, errmsg);
    if (ret < 0)
        return ret;
    if (s) {
        if (!in_list(s, balance_names, ARRAY_SIZE(balance_names)))
            return field_error(errmsg, join(fp, sizeof(fp), path, "balance"),
                               "must be one of roundrobin, static-rr, leastconn, first, "
                               "source, random");
        snprintf(opt->balance, sizeof(opt->balance), "%s", s);
    }

    ret = get_string(obj, path, "server_options", &s, errmsg);
    if (ret < 0)
        return ret;
    if (s) {
        ret = check_server_options(join(fp, sizeof(fp), path, "server_options"), s, errmsg);
        if (ret < 0)
            return ret;
        snprintf(opt->server_options, sizeof(opt->server_options), "%s", s);
    }
    return 0;
}

static int load_defaults(json_t *root, struct config *cfg, char **errmsg)
{
    static const char *const keys[] = {"slots", "mode", "balance", "server_options", "slot_growth"};
    json_t *d;
    int ret;

    ret = get_object(root, "", "defaults", &d, errmsg);
    if (ret < 0 || !d)
        return ret;
    ret = check_keys(d, "defaults", keys, ARRAY_SIZE(keys), errmsg);
    if (ret < 0)
        return ret;
    return load_service_options(d, "defaults", &cfg->defaults, errmsg);
}

static int load_hosts(json_t *obj, const char *path, struct service_conf *svc, char **errmsg)
{
    char fp[FIELD_PATH_SIZE];
    json_t *arr, *j;
    size_t i;

    arr = json_object_get(obj, "hosts");
    if (!arr)
        return 0;
    join(fp, sizeof(fp), path, "hosts");
    if (!json_is_array(arr))
        return field_error(errmsg, fp, "must be an array of host names");
    if (json_array_size(arr) > CONFIG_HOSTS_MAX)
        return field_error(errmsg, fp, "at most %d host names", CONFIG_HOSTS_MAX);
    if (json_array_size(arr) > 0 && svc->opt.mode != MODE_HTTP)
        return field_error(errmsg, fp, "only allowed with mode http");
    if (json_array_size(arr) == 0)
        return 0;
    svc->hosts = calloc(json_array_size(arr), sizeof(char *));
    if (!svc->hosts)
        return oom(errmsg);
    for (i = 0; i < json_array_size(arr); i++) {
        char name[CONFIG_HOSTNAME_MAX + 1], efp[FIELD_PATH_SIZE + 24];

        j = json_array_get(arr, i);
        snprintf(efp, sizeof(efp), "%s[%zu]", fp, i);
        if (!json_is_string(j) || json_string_length(j) != strlen(json_string_value(j)) ||
            !hostname_lower(json_string_value(j), name))
            return field_error(errmsg, efp,
                               "must be a host name (A-Z a-z 0-9 . -, labels of 1-63 "
                               "characters, at most %d in all)",
                               CONFIG_HOSTNAME_MAX);
        for (size_t k = 0; k < svc->n_hosts; k++)
            if (strcmp(svc->hosts[k], name) == 0)
                return field_error(errmsg, efp, "duplicate host name '%s'", name);
        svc->hosts[svc->n_hosts] = strdup(name);
        if (!svc->hosts[svc->n_hosts])
            return oom(errmsg);
        svc->n_hosts++;
    }
    return 0;
}

static int load_service(json_t *obj, const char *name, struct config *cfg, struct service_conf *svc,
                        char **errmsg)
{
    static const char *const keys[] = {"listen",         "slots",       "mode", "balance",
                                       "server_options", "slot_growth", "hosts"};
    char path[sizeof("services.") + SERVICE_NAME_MAX], fp[FIELD_PATH_SIZE];
    const char *listen;
    int ret;

    /* name already passed endpoint_service_name_valid() */
    snprintf(path, sizeof(path), "services.%s", name);
    snprintf(svc->name, sizeof(svc->name), "%s", name);
    svc->opt = cfg->defaults;
    if (!json_is_object(obj))
        return field_error(errmsg, path, "must be an object");
    ret = check_keys(obj, path, keys, ARRAY_SIZE(keys), errmsg);
    if (ret < 0)
        return ret;
    ret = load_service_options(obj, path, &svc->opt, errmsg);
    if (ret < 0)
        return ret;

    ret = get_string(obj, path, "listen", &listen, errmsg);
    if (ret < 0)
        return ret;
    if (listen) {
        char *reason = NULL;

        if (config_parse_listen(listen, &svc->listen, &reason) < 0) {
            field_error(errmsg, join(fp, sizeof(fp), path, "listen"), "%s",
                        reason ? reason : "invalid address");
            free(reason);
            return -EINVAL;
        }
    }
    return load_hosts(obj, path, svc, errmsg);
}

static int service_cmp(const void *a, const void *b)
{
    return strcmp(((const struct service_conf *)a)->name, ((const struct service_conf *)b)->name);
}

static int load_services(json_t *root, struct config *cfg, struct problems *p, char **errmsg)
{
    json_t *services;
    int ret;

    ret = get_object(root, "", "services", &services, errmsg);
    if (ret < 0 || !services || json_object_size(services) == 0)
        return ret;
    cfg->services = calloc(json_object_size(services), sizeof(*cfg->services));
    if (!cfg->services)
        return oom(errmsg);
    for (void *it = json_object_iter(services); it; it = json_object_iter_next(services, it)) {
        const char *name = json_object_iter_key(it);

        if (!endpoint_service_name_valid(name)) {
            char q[QUOTE_SIZE];

            ret = field_error(errmsg, "services",
                              "invalid service name \"%s\" (allowed: A-Z a-z 0-9 . _ -, "
                              "1-63 chars)",
                              quote(name, q, sizeof(q)));
            if ((ret = keep_going(p, ret, errmsg)) < 0)
                return ret;
            continue;
        }
        /* counted first, so that config_free() sees what a failure left */
        ret = load_service(json_object_iter_value(it), name, cfg, &cfg->services[cfg->n_services++],
                           errmsg);
        if ((ret = keep_going(p, ret, errmsg)) < 0)
            return ret;
    }
    qsort(cfg->services, cfg->n_services, sizeof(*cfg->services), service_cmp);
    return 0;
}

static int load_http_frontend(json_t *root, struct config *cfg, char **errmsg)
{
    static const char *const keys[] = {"bind", "domain", "spare_backends"};
    char name[CONFIG_HOSTNAME_MAX + 1];
    const char *bind, *domain;
    char *reason = NULL;
    json_t *h;
    int ret;

    ret = get_object(root, "", "http_frontend", &h, errmsg);
    if (ret < 0 || !h)
        return ret;
    ret = check_keys(h, "http_frontend", keys, ARRAY_SIZE(keys), errmsg);
    if (ret < 0)
        return ret;
    ret = get_string(h, "http_frontend", "bind", &bind, errmsg);
    if (ret < 0)
        return ret;
    if (!bind)
        return required(errmsg, "http_frontend", "bind");
    cfg->spare_backends = DEFAULT_SPARE_BACKENDS;
    ret = get_int(h, "http_frontend", "spare_backends", 0, SPARE_MAX, &cfg->spare_backends, errmsg);
    if (ret < 0)
        return ret;
    if (config_parse_listen(bind, &cfg->http_bind, &reason) < 0) {
        field_error(errmsg, "http_frontend.bind", "%s", reason ? reason : "invalid address");
        free(reason);
        return -EINVAL;
    }
    ret = get_string(h, "http_frontend", "domain", &domain, errmsg);
    if (ret < 0 || !domain)
        return ret;
    if (!hostname_lower(domain, name))
        return field_error(errmsg, "http_frontend.domain",
                           "must be a host name (A-Z a-z 0-9 . -, labels of 1-63 characters, "
                           "at most %d in all)",
                           CONFIG_HOSTNAME_MAX);
    /* "<service>.<domain>" must be a host name for any service etcd may
     * bring: 63 + 1 + CONFIG_DOMAIN_MAX = 253. */
    if (strlen(name) > CONFIG_DOMAIN_MAX)
        return field_error(errmsg, "http_frontend.domain",
                           "must be at most %d characters, so that <service>.<domain> stays a "
                           "host name (at most %d) for every service name (up to %d)",
                           CONFIG_DOMAIN_MAX, CONFIG_HOSTNAME_MAX, SERVICE_NAME_MAX);
    return set_string(&cfg->http_domain, name, errmsg);
}

/* ---- admin.tls, admin.token_file, admin.protected_paths (issue 20) ---- */

static bool same_str(const char *a, const char *b);

static const struct {
    const char *path;
    unsigned bit;
} admin_paths[] = {
    {"/", ADMIN_PATH_PAGE},           {"/status", ADMIN_PATH_STATUS},
    {"/metrics", ADMIN_PATH_METRICS}, {"/healthz", ADMIN_PATH_HEALTHZ},
    {"/readyz", ADMIN_PATH_READYZ},
};

unsigned config_admin_path_bit(const char *path)
{
    for (size_t i = 0; i < ARRAY_SIZE(admin_paths); i++)
        if (strcmp(path, admin_paths[i].path) == 0)
            return admin_paths[i].bit;
    return 0;
}

bool config_same_admin(const struct admin_conf *a, const struct admin_conf *b)
{
    return same_str(a->tls_cert_file, b->tls_cert_file) &&
           same_str(a->tls_key_file, b->tls_key_file) &&
           same_str(a->tls_client_ca_file, b->tls_client_ca_file) &&
           same_str(a->token_file, b->token_file) && a->protected_paths == b->protected_paths;
}

/* admin.tls: {"cert_file", "key_file", "client_ca_file"}; cert_file and
 * key_file together, client_ca_file only with them (mutual TLS). The files
 * are read by the admin endpoint at start and on SIGHUP. */
static int load_admin_tls(json_t *a, struct config *cfg, char **errmsg)
{
    static const char *const keys[] = {"cert_file", "key_file", "client_ca_file"};
    struct admin_conf *ac = &cfg->admin;
    json_t *tls;
    int ret;

    ret = get_object(a, "admin", "tls", &tls, errmsg);
    if (ret < 0 || !tls)
        return ret;
    if ((ret = check_keys(tls, "admin.tls", keys, ARRAY_SIZE(keys), errmsg)) < 0 ||
        (ret = load_text(tls, "admin.tls", "cert_file", TEXT_PATH, &ac->tls_cert_file, errmsg)) <
            0 ||
        (ret = load_text(tls, "admin.tls", "key_file", TEXT_PATH, &ac->tls_key_file, errmsg)) < 0 ||
        (ret = load_text(tls, "admin.tls", "client_ca_file", TEXT_PATH, &ac->tls_client_ca_file,
                         errmsg)) < 0)
        return ret;
    if (!ac->tls_cert_file)
        return required(errmsg, "admin.tls", "cert_file");
    if (!ac->tls_key_file)
        return required(errmsg, "admin.tls", "key_file");
    return 0;
}

/* admin.protected_paths: a non-empty array of the endpoint's paths, each
 * once. */
static int load_admin_paths(json_t *a, struct config *cfg, char **errmsg)
{
    json_t *arr = json_object_get(a, "protected_paths"), *v;
    char fp[FIELD_PATH_SIZE];
    unsigned bits = 0;
    size_t i;

    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return field_error(errmsg, "admin.protected_paths", "must be an array of paths");
    json_array_foreach(arr, i, v)
    {
        const char *path = json_string_value(v);
        unsigned bit;

        snprintf(fp, sizeof(fp), "admin.protected_paths[%zu]", i);
        if (!json_is_string(v) || json_string_length(v) != strlen(path))
            return field_error(errmsg, fp, "must be a string");
        bit = config_admin_path_bit(path);
        if (!bit)
            return field_error(errmsg, fp,
                               "must be one of /, /status, /metrics, /healthz, /readyz");
        if (bits & bit)
            return field_error(errmsg, fp, "%s is listed twice", path);
        bits |= bit;
    }
    cfg->admin.protected_paths = bits;
    return 0;
}

static int load_admin_protection(json_t *a, struct config *cfg, char **errmsg)
{
    int ret;

    if ((ret = load_admin_tls(a, cfg, errmsg)) < 0 ||
        (ret = load_text(a, "admin", "token_file", TEXT_PATH, &cfg->admin.token_file, errmsg)) <
            0 ||
        (ret = load_admin_paths(a, cfg, errmsg)) < 0)
        return ret;
    /* A list of protected paths with nothing to protect them would read as
     * protection that is not there. */
    if (json_object_get(a, "protected_paths") && cfg->admin.protected_paths &&
        !cfg->admin.token_file && !cfg->admin.tls_client_ca_file)
        return field_error(errmsg, "admin.protected_paths",
                           "needs admin.token_file or admin.tls.client_ca_file");
    return 0;
}

static void admin_conf_free(struct admin_conf *ac)
{
    free(ac->tls_cert_file);
    free(ac->tls_key_file);
    free(ac->tls_client_ca_file);
    free(ac->token_file);
    memset(ac, 0, sizeof(*ac));
}

/* The admin HTTP endpoint: off when absent. ":PORT" means loopback; every
 * other address, 0.0.0.0 included, must be written out (what is served off
 * loopback is open unless admin.tls / admin.token_file protect it). */
static int load_admin(json_t *root, struct config *cfg, char **errmsg)
{
    static const char *const keys[] = {"listen", "tls", "token_file", "protected_paths"};
    const char *listen;
    char *reason = NULL;
    json_t *a;
    int ret;

    cfg->admin.protected_paths = ADMIN_PATHS_PROTECTED_DEFAULT;
    ret = get_object(root, "", "admin", &a, errmsg);
    if (ret < 0 || !a)
        return ret;
    ret = check_keys(a, "admin", keys, ARRAY_SIZE(keys), errmsg);
    if (ret < 0)
        return ret;
    ret = load_admin_protection(a, cfg, errmsg);
    if (ret < 0)
        return ret;
    ret = get_string(a, "admin", "listen", &listen, errmsg);
    if (ret < 0)
        return ret;
    if (!listen)
        return required(errmsg, "admin", "listen");
    if (config_parse_listen(listen, &cfg->admin_listen, &reason) < 0) {
        field_error(errmsg, "admin.listen", "%s", reason ? reason : "invalid address");
        free(reason);
        return -EINVAL;
    }
    if (!cfg->admin_listen.host[0] && listen[0] == ':') {
        /* No address: loopback, not every interface. */
        snprintf(cfg->admin_listen.host, sizeof(cfg->admin_listen.host), "127.0.0.1");
    } else if (!cfg->admin_listen.host[0]) {
        cfg->admin_listen.set = false;
        return field_error(errmsg, "admin.listen",
                           "'*' is not accepted: write 0.0.0.0:PORT to listen on every "
                           "address, or :PORT for loopback");
    }
    return 0;
}

/* Two binds on the same port where one is a wildcard or both are the same
 * address: HAProxy binds with SO_REUSEPORT, so this would not fail at start
 * but silently split connections between two frontends. */
static bool listen_wildcard(const struct listen_addr *l)
{
    return !l->host[0] || strcmp(l->host, "0.0.0.0") == 0 || strcmp(l->host, "::") == 0;
}

static bool listen_overlap(const struct listen_addr *a, const struct listen_addr *b)
{
    if (!a->set || !b->set || a->port != b->port)
        return false;
    return listen_wildcard(a) || listen_wildcard(b) || strcmp(a->host, b->host) == 0;
}

static int check_listen_conflicts(const struct config *cfg, char **errmsg)
{
    char fp[FIELD_PATH_SIZE];

    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct service_conf *a = &cfg->services[i];

        if (!a->listen.set)
            continue;
        snprintf(fp, sizeof(fp), "services.%s.listen", a->name);
        if (listen_overlap(&a->listen, &cfg->http_bind))
            return field_error(errmsg, fp, "port %u is already used by http_frontend.bind",
                               (unsigned)a->listen.port);
        if (listen_overlap(&a->listen, &cfg->admin_listen))
            return field_error(errmsg, fp, "port %u is already used by admin.listen",
                               (unsigned)a->listen.port);
        for (size_t k = 0; k < i; k++)
            if (listen_overlap(&a->listen, &cfg->services[k].listen))
                return field_error(errmsg, fp, "port %u is already used by services.%s.listen",
                                   (unsigned)a->listen.port, cfg->services[k].name);
    }
    return 0;
}

struct host_owner {
    const char *host;
    const char *service;
};

static int host_owner_cmp(const void *a, const void *b)
{
    const struct host_owner *x = a, *y = b;
    int c = strcmp(x->host, y->host);

    return c ? c : strcmp(x->service, y->service);
}

/* A Host routed to two backends would be a configuration error in the
 * rendered frontend; catch it here with a useful message. */
static int check_host_conflicts(const struct config *cfg, char **errmsg)
{
    struct host_owner *all;
    size_t n = 0;
    int ret = 0;

    for (size_t i = 0; i < cfg->n_services; i++)
        n += cfg->services[i].n_hosts;
    if (n < 2)
        return 0;
    all = calloc(n, sizeof(*all));
    if (!all)
        return oom(errmsg);
    n = 0;
    for (size_t i = 0; i < cfg->n_services; i++)
        for (size_t k = 0; k < cfg->services[i].n_hosts; k++) {
            all[n].host = cfg->services[i].hosts[k];
            all[n].service = cfg->services[i].name;
            n++;
        }
    qsort(all, n, sizeof(*all), host_owner_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(all[i].host, all[i - 1].host) == 0) {
            char fp[FIELD_PATH_SIZE];

            snprintf(fp, sizeof(fp), "services.%s.hosts", all[i].service);
            ret = field_error(errmsg, fp, "host name '%s' is already used by services.%s",
                              all[i].host, all[i - 1].service);
            break;
        }
    }
    free(all);
    return ret;
}

/* "log_format": text (default), logfmt or json (log.h). */
static int load_log_format(json_t *root, struct config *cfg, char **errmsg)
{
    const char *name = NULL;
    int ret = get_string(root, "", "log_format", &name, errmsg), f;

    if (ret < 0 || !name)
        return ret;
    if ((f = log_format_parse(name)) < 0)
        return field_error(errmsg, "log_format", "must be one of text, logfmt, json");
    cfg->log_format = f;
    return 0;
}

/* "dns": {"hosts_file", "domain", "address", "reload_pid_file"}. */
static int load_dns(json_t *root, struct config *cfg, char **errmsg)
{
    static const char *const keys[] = {"hosts_file", "domain", "address", "reload_pid_file"};
    char name[CONFIG_HOSTNAME_MAX + 1];
    unsigned char bin[16];
    const char *domain = NULL, *address = NULL;
    json_t *d;
    int ret;

    ret = get_object(root, "", "dns", &d, errmsg);
    if (ret < 0 || !d)
        return ret;
    if ((ret = check_keys(d, "dns", keys, ARRAY_SIZE(keys), errmsg)) < 0 ||
        (ret = load_text(d, "dns", "hosts_file", TEXT_PATH, &cfg->dns.hosts_file, errmsg)) < 0 ||
        (ret = load_text(d, "dns", "reload_pid_file", TEXT_PATH, &cfg->dns.reload_pid_file,
                         errmsg)) < 0 ||
        (ret = get_string(d, "dns", "domain", &domain, errmsg)) < 0 ||
        (ret = get_string(d, "dns", "address", &address, errmsg)) < 0)
        return ret;
    if (!cfg->dns.hosts_file)
        return required(errmsg, "dns", "hosts_file");
    if (!domain)
        domain = "service.local";
    if (!hostname_lower(domain, name) || strlen(name) > CONFIG_DOMAIN_MAX)
        return field_error(errmsg, "dns.domain", "must be a host name of at most %d characters",
                           CONFIG_DOMAIN_MAX);
    if (!address)
        address = "127.0.0.1";
    if (inet_pton(AF_INET, address, bin) != 1 && inet_pton(AF_INET6, address, bin) != 1)
        return field_error(errmsg, "dns.address", "must be an IPv4 or IPv6 address literal");
    if (!(cfg->dns.domain = strdup(name)) || !(cfg->dns.address = strdup(address))) {
        memprintf(errmsg, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* The caps on what etcd can create: max_services, max_endpoints_per_service
 * (0 = no cap). */
static int load_caps(json_t *root, struct config *cfg, char **errmsg)
{
    int r;

    cfg->max_services = DEFAULT_MAX_SERVICES;
    cfg->max_endpoints_per_service = DEFAULT_MAX_ENDPOINTS_PER_SERVICE;
    r = get_int(root, "", "max_services", 0, CAP_MAX, &cfg->max_services, errmsg);
    if (r == 0)
        r = get_int(root, "", "max_endpoints_per_service", 0, CAP_MAX,
                    &cfg->max_endpoints_per_service, errmsg);
    return r;
}

static int load_root(json_t *root, struct config *cfg, struct problems *p, char **errmsg)
{
    static const char *const keys[] = {"etcd",          "haproxy",
                                       "defaults",      "services",
                                       "http_frontend", "resync_interval_s",
                                       "log_level",     "log_format",
                                       "dns",           "allow_empty_registry",
                                       "admin",         CAP_KEYS};
    const char *level = NULL;
    int ret;

    if (!json_is_object(root)) {
        memprintf(errmsg, "the configuration must be a JSON object");
        return -EINVAL;
    }
    cfg->min_reload_interval_ms = DEFAULT_MIN_RELOAD_INTERVAL_MS;
    cfg->runtime_timeout_s = RUNTIME_TIMEOUT_S;
    cfg->etcd_watch_check_interval_s = ETCD_WATCH_CHECK_S;
    cfg->bulk_path = BULK_PATH_AUTO;
    cfg->runtime_command_us = BULK_COMMAND_US_DEFAULT;
    cfg->reload_server_us = BULK_RELOAD_SERVER_US_DEFAULT;
    cfg->defaults.slots = DEFAULT_SLOTS;
    cfg->defaults.mode = MODE_HTTP;
    snprintf(cfg->defaults.balance, sizeof(cfg->defaults.balance), "%s", DEFAULT_BALANCE);
    snprintf(cfg->defaults.server_options, sizeof(cfg->defaults.server_options), "%s",
             DEFAULT_SERVER_OPTIONS);
    cfg->defaults.slot_growth = 0;
    cfg->resync_interval_s = DEFAULT_RESYNC_INTERVAL_S;
    cfg->log_level = LOG_LEVEL_INFO;

    /* Block by block; with a collector (config_load_all) each block's
     * error is reported and the next block is still read. */
    if ((ret = keep_going(p, check_keys(root, "", keys, ARRAY_SIZE(keys), errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, load_etcd(root, cfg, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, load_haproxy(root, cfg, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, load_defaults(root, cfg, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, load_services(root, cfg, p, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, load_http_frontend(root, cfg, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, load_admin(root, cfg, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p,
                          get_int(root, "", "resync_interval_s", 1, RESYNC_INTERVAL_S_MAX,
                                  &cfg->resync_interval_s, errmsg),
                          errmsg)) < 0 ||
        (ret = keep_going(p, get_string(root, "", "log_level", &level, errmsg), errmsg)) < 0 ||
        (ret = keep_going(
             p, get_bool(root, "", "allow_empty_registry", &cfg->allow_empty_registry, errmsg),
             errmsg)) < 0 ||
        (ret = keep_going(p, load_log_format(root, cfg, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, load_dns(root, cfg, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, load_caps(root, cfg, errmsg), errmsg)) < 0)
        return ret;
    if (level && (ret = keep_going(p, config_set_log_level(cfg, level, errmsg), errmsg)) < 0)
        return ret;
    if ((ret = keep_going(p, check_listen_conflicts(cfg, errmsg), errmsg)) < 0 ||
        (ret = keep_going(p, check_host_conflicts(cfg, errmsg), errmsg)) < 0)
        return ret;
    if (p && p->errors) {
        memprintf(errmsg, "%u error%s", p->errors, p->errors == 1 ? "" : "s");
        return -EINVAL;
    }
    return 0;
}

/* jansson's message may quote the offending input: escape it. */
static int json_load_error(const json_error_t *jerr, const char *source, char **errmsg)
{
    char q[LOG_QUOTE_MAX];

    log_quote(jerr->text, strnlen(jerr->text, sizeof(jerr->text)), q, sizeof(q));
    if (source)
        memprintf(errmsg, "%s: line %d column %d: %s", source, jerr->line, jerr->column, q);
    else
        memprintf(errmsg, "line %d column %d: %s", jerr->line, jerr->column, q);
    return -EINVAL;
}

static int load_json(json_t *root, struct config *cfg, struct problems *p, char **errmsg)
{
    int ret = load_root(root, cfg, p, errmsg);

    json_decref(root);
    if (ret < 0)
        config_free(cfg);
    return ret;
}

static int load_file(const char *path, struct config *cfg, struct problems *p, char **errmsg)
{
    char q[QUOTE_SIZE * 2];
    json_error_t jerr;
    json_t *root;
    FILE *fp;
    int err;

    memset(cfg, 0, sizeof(*cfg));
    if (!path) {
        memprintf(errmsg, "no configuration file");
        return -EINVAL;
    }
    quote(path, q, sizeof(q));
    fp = fopen(path, "r");
    if (!fp) {
        err = errno;
        memprintf(errmsg, "cannot open \"%s\": %s", q, strerror(err));
        return -err;
    }
    {
        /* A directory opens for reading on Linux, and reads as EISDIR:
         * say so, not "unable to read" (issue 19). */
        struct stat st;

        if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
            fclose(fp);
            memprintf(errmsg, "cannot read \"%s\": is a directory", q);
            return -EISDIR;
        }
    }
    root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
    fclose(fp);
    if (!root)
        return json_load_error(&jerr, q, errmsg);
    return load_json(root, cfg, p, errmsg);
}

int config_load(const char *path, struct config *cfg, char **errmsg)
{
    return load_file(path, cfg, NULL, errmsg);
}

int config_load_all(const char *path, struct config *cfg, config_report_fn report, void *arg)
{
    struct problems p = {report, arg, 0};
    char *errmsg = NULL;
    int ret = load_file(path, cfg, &p, &errmsg);

    /* What stopped the load before any block was read (the file, its JSON,
     * memory) has not been reported yet. */
    if (ret < 0 && p.errors == 0) {
        report(arg, true, errmsg ? errmsg : strerror(-ret));
        p.errors++;
    }
    free(errmsg);
    return ret < 0 ? -(int)p.errors : 0;
}

int config_load_string(const char *json, struct config *cfg, char **errmsg)
{
    json_error_t jerr;
    json_t *root;

    memset(cfg, 0, sizeof(*cfg));
    if (!json) {
        memprintf(errmsg, "no configuration text");
        return -EINVAL;
    }
    root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return json_load_error(&jerr, NULL, errmsg);
    return load_json(root, cfg, NULL, errmsg);
}

/* ---- command-line overrides ---- */

int config_set_etcd(struct config *cfg, const char *urls, char **errmsg)
{
    char **list;
    size_t n = 0, count = 1;
    const char *p;
    int ret;

    if (!urls || !urls[0])
        return required(errmsg, "etcd", "endpoints");
    for (p = urls; *p; p++)
        if (*p == ',')
            count++;
    if (count > ETCD_ENDPOINTS_MAX)
        return field_error(errmsg, "etcd.endpoints", "must list 1 to %d URLs", ETCD_ENDPOINTS_MAX);
    list = calloc(count, sizeof(char *));
    if (!list)
        return oom(errmsg);
    p = urls;
    for (size_t i = 0; i < count; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        ret = add_etcd_url(list, &n, p, len, i, errmsg);
        if (ret < 0) {
            free_string_list(list, n);
            return ret;
        }
        p += len + 1;
    }
    free_string_list(cfg->etcd_endpoints, cfg->n_etcd_endpoints);
    cfg->etcd_endpoints = list;
    cfg->n_etcd_endpoints = n;
    return 0;
}

int config_set_prefix(struct config *cfg, const char *prefix, char **errmsg)
{
    int ret;

    if (!prefix)
        return required(errmsg, "etcd", "prefix");
    ret = check_prefix("etcd.prefix", prefix, errmsg);
    if (ret < 0)
        return ret;
    return set_string(&cfg->etcd_prefix, prefix, errmsg);
}

int config_set_runtime_socket(struct config *cfg, const char *addr, char **errmsg)
{
    char *reason = NULL;

    if (config_check_socket_addr(addr, &reason) < 0) {
        field_error(errmsg, "haproxy.runtime_socket", "%s", reason ? reason : "invalid address");
        free(reason);
        return -EINVAL;
    }
    return set_string(&cfg->runtime_socket, addr, errmsg);
}

int config_set_log_level(struct config *cfg, const char *level, char **errmsg)
{
    int l = level ? log_level_parse(level) : -1;

    if (l < 0)
        return field_error(errmsg, "log_level", "must be one of error, warn, info, debug");
    cfg->log_level = l;
    return 0;
}

/* ---- queries ---- */

static int service_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct service_conf *)elem)->name);
}

const struct service_conf *config_find_service(const struct config *cfg, const char *name)
{
    if (!cfg || !name || !cfg->services)
        return NULL;
    return bsearch(name, cfg->services, cfg->n_services, sizeof(*cfg->services), service_key_cmp);
}

bool config_balance_is_dynamic(const char *balance)
{
    return balance && in_list(balance, dynamic_balance_names, ARRAY_SIZE(dynamic_balance_names));
}

bool config_balance_is_static(const char *balance)
{
    return balance && (strcmp(balance, "static-rr") == 0 || strcmp(balance, "source") == 0);
}

static const char *weight_problem(const char *balance)
{
    if (config_balance_is_static(balance))
        return "HAProxy cannot change weights at run time with it: etcd weights other than 0 "
               "(drain) are not applied until a reload";
    if (strcmp(balance, "first") == 0)
        return "HAProxy ignores server weights with it: etcd weights have no effect";
    return NULL;
}

unsigned config_weight_warnings(const struct config *cfg, config_report_fn report, void *arg)
{
    const char *why = weight_problem(cfg->defaults.balance);
    bool defaults_warned = why != NULL;
    char *text = NULL;
    unsigned n = 0;

    /* The defaults apply to every service that etcd names and the config
     * does not. */
    if (why) {
        memprintf(&text, "defaults.balance is %s: %s", cfg->defaults.balance, why);
        report(arg, false, text ? text : "out of memory");
        n++;
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct service_conf *sc = &cfg->services[i];

        why = weight_problem(sc->opt.balance);
        if (!why || (defaults_warned && strcmp(sc->opt.balance, cfg->defaults.balance) == 0))
            continue; /* said for the defaults already */
        memprintf(&text, "services.%s.balance is %s: %s", sc->name, sc->opt.balance, why);
        report(arg, false, text ? text : "out of memory");
        n++;
    }
    free(text);
    return n;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free_string_list(cfg->etcd_endpoints, cfg->n_etcd_endpoints);
    free(cfg->etcd_prefix);
    free(cfg->runtime_socket);
    free(cfg->master_socket);
    free(cfg->base_config);
    free(cfg->services_file);
    free(cfg->reload_command);
    free(cfg->haproxy_bin);
    free(cfg->dns.hosts_file);
    free(cfg->dns.domain);
    free(cfg->dns.address);
    free(cfg->dns.reload_pid_file);
    free(cfg->hosts_map);
    for (size_t i = 0; i < cfg->n_services; i++)
        free_string_list(cfg->services[i].hosts, cfg->services[i].n_hosts);
    free(cfg->services);
    free(cfg->http_domain);
    tls_conf_free(&cfg->etcd_tls);
    admin_conf_free(&cfg->admin);
    free(cfg->etcd_username);
    free(cfg->etcd_password_file);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- comparing configs (SIGHUP) ---- */

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool config_same_listen(const struct listen_addr *a, const struct listen_addr *b)
{
    return a->set == b->set && (!a->set || (a->port == b->port && strcmp(a->host, b->host) == 0));
}

/* Options that change the rendered backend; slots is not one of them: a
 * raised count is applied at run time by the controller, a lowered one
 * removes nothing. */
bool config_same_options(const struct service_options *a, const struct service_options *b)
{
    return a->mode == b->mode && strcmp(a->balance, b->balance) == 0 &&
           strcmp(a->server_options, b->server_options) == 0 && a->slot_growth == b->slot_growth;
}

bool config_same_restart_fields(const struct config *nc, const struct config *oc)
{
    bool same_etcd = nc->n_etcd_endpoints == oc->n_etcd_endpoints;

    for (size_t i = 0; same_etcd && i < nc->n_etcd_endpoints; i++)
        same_etcd = strcmp(nc->etcd_endpoints[i], oc->etcd_endpoints[i]) == 0;
    return same_etcd && strcmp(nc->etcd_prefix, oc->etcd_prefix) == 0 &&
           tls_conf_equal(&nc->etcd_tls, &oc->etcd_tls) &&
           same_str(nc->etcd_username, oc->etcd_username) &&
           same_str(nc->etcd_password_file, oc->etcd_password_file) &&
           nc->etcd_transport == oc->etcd_transport &&
           nc->etcd_watch_check_interval_s == oc->etcd_watch_check_interval_s &&
           strcmp(nc->runtime_socket, oc->runtime_socket) == 0 &&
           nc->runtime_timeout_s == oc->runtime_timeout_s &&
           same_str(nc->master_socket, oc->master_socket) &&
           strcmp(nc->services_file, oc->services_file) == 0 &&
           strcmp(nc->hosts_map, oc->hosts_map) == 0 &&
           same_str(nc->base_config, oc->base_config) &&
           strcmp(nc->haproxy_bin, oc->haproxy_bin) == 0 &&
           same_str(nc->reload_command, oc->reload_command);
}

size_t config_restart_fields_changed(const struct config *nc, const struct config *oc, char *buf,
                                     size_t size)
{
    bool same_etcd = nc->n_etcd_endpoints == oc->n_etcd_endpoints;
    const struct {
        const char *name;
        bool same;
    } fields[] = {
        {"etcd.endpoints", true}, /* same_etcd, once compared below */
        {"etcd.prefix", strcmp(nc->etcd_prefix, oc->etcd_prefix) == 0},
        {"etcd.tls", tls_conf_equal(&nc->etcd_tls, &oc->etcd_tls)},
        {"etcd.username", same_str(nc->etcd_username, oc->etcd_username)},
        {"etcd.password_file", same_str(nc->etcd_password_file, oc->etcd_password_file)},
        {"etcd.watch_check_interval_s",
         nc->etcd_watch_check_interval_s == oc->etcd_watch_check_interval_s},
        {"haproxy.runtime_socket", strcmp(nc->runtime_socket, oc->runtime_socket) == 0},
        {"haproxy.runtime_timeout_s", nc->runtime_timeout_s == oc->runtime_timeout_s},
        {"haproxy.master_socket", same_str(nc->master_socket, oc->master_socket)},
        {"haproxy.services_file", strcmp(nc->services_file, oc->services_file) == 0},
        {"haproxy.hosts_map", strcmp(nc->hosts_map, oc->hosts_map) == 0},
        {"haproxy.base_config", same_str(nc->base_config, oc->base_config)},
        {"haproxy.binary", strcmp(nc->haproxy_bin, oc->haproxy_bin) == 0},
        {"haproxy.reload_command", same_str(nc->reload_command, oc->reload_command)},
    };
    size_t n = 0, len = 0;

    for (size_t i = 0; same_etcd && i < nc->n_etcd_endpoints; i++)
        same_etcd = strcmp(nc->etcd_endpoints[i], oc->etcd_endpoints[i]) == 0;
    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        bool same = i == 0 ? same_etcd : fields[i].same;
        int w;

        if (same)
            continue;
        n++;
        if (len < size) {
            w = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", fields[i].name);
            if (w > 0)
                len += (size_t)w < size - len ? (size_t)w : size - len - 1;
        }
    }
    return n;
}

bool config_same_http_frontend(const struct config *a, const struct config *b)
{
    return config_same_listen(&a->http_bind, &b->http_bind) &&
           same_str(a->http_domain, b->http_domain) && a->spare_backends == b->spare_backends;
}
