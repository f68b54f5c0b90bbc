/* validate - etcd URLs, HAProxy sockets, listen addresses, key prefixes and
 * host names, checked before they are used (validate.h). Shared by the
 * config file's loader, the command line and announce's options.
 */
#include <slotsync/validate.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <slotsync/config-t.h>
#include <slotsync/endpoint.h>
#include <slotsync/log.h>

#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

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

_Static_assert(VALIDATE_PATH_MAX == CONFIG_PATH_MAX, "a path the config accepts");

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

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
bool validate_printable(const char *s, size_t len, bool spaces)
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
bool validate_hostname(const char *s, size_t len)
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
bool validate_hostname_lower(const char *s, char *out)
{
    size_t len = strnlen(s, CONFIG_HOSTNAME_MAX + 1);

    if (!validate_hostname(s, len))
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

int validate_etcd_url(const char *url, char **errmsg)
{
    const char *p, *host, *port;
    size_t len;

    if (!url) {
        memprintf(errmsg, "missing URL");
        return -EINVAL;
    }
    len = strnlen(url, VALIDATE_URL_MAX + 1);
    if (len > VALIDATE_URL_MAX) {
        memprintf(errmsg, "URL longer than %d bytes", VALIDATE_URL_MAX);
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
        if (p == host || !(ipv4_literal(host, (size_t)(p - host)) ||
                           validate_hostname(host, (size_t)(p - host)))) {
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

int validate_socket_addr(const char *addr, char **errmsg)
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
        if (!validate_printable(addr, len, false)) {
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

int validate_listen(const char *text, struct listen_addr *out, char **errmsg)
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

/* Two binds on the same port where one is a wildcard or both are the same
 * address: HAProxy binds with SO_REUSEPORT, so this would not fail at start
 * but silently split connections between two frontends. */
static bool listen_wildcard(const struct listen_addr *l)
{
    return !l->host[0] || strcmp(l->host, "0.0.0.0") == 0 || strcmp(l->host, "::") == 0;
}

bool validate_listen_overlap(const struct listen_addr *a, const struct listen_addr *b)
{
    if (!a->set || !b->set || a->port != b->port)
        return false;
    return listen_wildcard(a) || listen_wildcard(b) || strcmp(a->host, b->host) == 0;
}

int validate_prefix(const char *prefix, char **errmsg)
{
    size_t len = strnlen(prefix, VALIDATE_PREFIX_MAX + 1);

    if (len < 1 || len > VALIDATE_PREFIX_MAX || !validate_printable(prefix, len, false)) {
        memprintf(errmsg, "must be 1-%d printable ASCII characters, no whitespace",
                  VALIDATE_PREFIX_MAX);
        return -EINVAL;
    }
    if (prefix[0] != '/' || prefix[len - 1] != '/') {
        memprintf(errmsg, "must start and end with '/'");
        return -EINVAL;
    }
    return 0;
}

/* A file path (no whitespace) or a command (spaces allowed). */
static int text_valid(const char *s, size_t max, bool spaces, char **errmsg)
{
    size_t len = strnlen(s, max + 1);

    if (len >= 1 && len <= max && validate_printable(s, len, spaces))
        return 0;
    memprintf(errmsg, "must be 1-%zu printable ASCII characters%s", max,
              spaces ? "" : ", no whitespace");
    return -EINVAL;
}

int validate_file_path(const char *path, char **errmsg)
{
    return text_valid(path, VALIDATE_PATH_MAX, false, errmsg);
}

int validate_command(const char *command, char **errmsg)
{
    return text_valid(command, VALIDATE_COMMAND_MAX, true, errmsg);
}

static bool option_char_ok(char c)
{
    return is_alnum(c) || (c && strchr("._:/@=,+-", c));
}

int validate_server_options(const char *s, char **errmsg)
{
    size_t len = strnlen(s, CONFIG_OPTIONS_MAX);
    size_t start = 0;

    if (len >= CONFIG_OPTIONS_MAX) {
        memprintf(errmsg, "longer than %d bytes", CONFIG_OPTIONS_MAX - 1);
        return -EINVAL;
    }
    for (size_t i = 0; len && i <= len; i++) {
        char token[CONFIG_OPTIONS_MAX];

        if (i < len && s[i] != ' ') {
            if (option_char_ok(s[i]))
                continue;
            memprintf(errmsg,
                      "invalid character at byte %zu (allowed: A-Z a-z 0-9 . _ : / @ = , + - "
                      "and single spaces)",
                      i + 1);
            return -EINVAL;
        }
        if (i == start) {
            memprintf(errmsg, "tokens must be separated by single spaces");
            return -EINVAL;
        }
        memcpy(token, s + start, i - start);
        token[i - start] = '\0';
        for (size_t k = 0; k < ARRAY_SIZE(managed_server_keywords); k++) {
            /* token holds only option characters: safe to echo */
            if (strcmp(token, managed_server_keywords[k]) == 0) {
                memprintf(errmsg, "token '%s' is managed by slotsync", token);
                return -EINVAL;
            }
        }
        start = i + 1;
    }
    return 0;
}

int validate_ip_literal(const char *s, char **errmsg)
{
    unsigned char bin[16];

    if (inet_pton(AF_INET, s, bin) == 1 || inet_pton(AF_INET6, s, bin) == 1)
        return 0;
    memprintf(errmsg, "must be an IPv4 or IPv6 address literal");
    return -EINVAL;
}
