/* endpoint - the pure rules for what an etcd key and value may be.
 *
 * Everything here reads untrusted bytes (keys and values written to etcd by
 * any registrar). A value is accepted only when every byte of it has been
 * accounted for, and what is stored is rebuilt from binary form (inet_pton
 * then inet_ntop, integers printed back), never copied from the input. That
 * is what makes an endpoint safe to place in a runtime command.
 *
 * Error reasons are fixed strings: they never echo the value.
 */
#include <slotsync/endpoint.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <slotsync/log.h>

static const char *const state_names[] = {"ready", "drain", "maint"};

const char *endpoint_state_name(enum endpoint_state state)
{
    if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
        return "?";
    return state_names[state];
}

int endpoint_state_parse(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
        if (strcmp(name, state_names[i]) == 0)
            return (int)i;
    return -1;
}

static int set_error(char **errmsg, const char *reason)
{
    memprintf(errmsg, "%s", reason);
    return -EINVAL;
}

int endpoint_parse_host(const char *text, char *out, bool *ipv6)
{
    unsigned char bin[sizeof(struct in6_addr)];
    char canon[ENDPOINT_HOST_MAX];
    bool v6;

    if (!text || !out)
        return -EINVAL;
    /* Longer than any literal inet_pton could accept: don't bother. */
    if (strnlen(text, ENDPOINT_HOST_MAX) >= ENDPOINT_HOST_MAX)
        return -EINVAL;
    /* glibc's inet_pton takes strict dotted-quad IPv4 (no leading zeros, no
     * short forms) and plain IPv6 (no zone id, no brackets). */
    if (inet_pton(AF_INET, text, bin) == 1)
        v6 = false;
    else if (inet_pton(AF_INET6, text, bin) == 1)
        v6 = true;
    else
        return -EINVAL;
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, bin, canon, sizeof(canon)))
        return -EINVAL;
    memcpy(out, canon, sizeof(canon));
    if (ipv6)
        *ipv6 = v6;
    return 0;
}

int endpoint_parse_port(const char *s, size_t len, unsigned short *port, char **errmsg)
{
    unsigned long v = 0;
    size_t i;

    if (len == 0)
        return set_error(errmsg, "port missing");
    if (s[0] == '+' || s[0] == '-')
        return set_error(errmsg, "port must not have a sign");
    for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        if (i < 6) /* stop accumulating before it could overflow */
            v = v * 10 + (unsigned long)(s[i] - '0');
    if (i == 0)
        return set_error(errmsg, "port is not a decimal number");
    if (i < len)
        return set_error(errmsg, "unexpected characters after the port");
    if (s[0] == '0' && len > 1)
        return set_error(errmsg, "port must not have leading zeros");
    if (len > 5 || v < 1 || v > 65535)
        return set_error(errmsg, "port out of range (1-65535)");
    if (port)
        *port = (unsigned short)v;
    return 0;
}

/* endpoint_parse_hostport with a reason. */
static int parse_hostport(const char *text, size_t len, struct endpoint *ep, char **errmsg)
{
    char host[ENDPOINT_HOST_MAX], canon[ENDPOINT_HOST_MAX];
    const char *port_start, *end = text + len;
    unsigned short port;
    size_t hlen;
    bool v6;
    int ret;

    if (len == 0)
        return set_error(errmsg, "empty address");
    if (memchr(text, '\0', len))
        return set_error(errmsg, "address contains a NUL byte");

    if (text[0] == '[') {
        const char *close = memchr(text, ']', len);

        if (!close)
            return set_error(errmsg, "missing ']' after IPv6 address");
        hlen = (size_t)(close - text - 1);
        if (hlen == 0)
            return set_error(errmsg, "host is empty");
        if (memchr(text + 1, '%', hlen))
            return set_error(errmsg, "IPv6 zone ids are not allowed");
        if (hlen >= sizeof(host))
            return set_error(errmsg, "host is not an IPv4 or IPv6 literal");
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        ret = endpoint_parse_host(host, canon, &v6);
        if (ret == 0 && !v6)
            return set_error(errmsg, "IPv4 address must not be in brackets");
        if (ret < 0)
            return set_error(errmsg, "host is not an IPv6 literal");
        if (close + 1 == end)
            return set_error(errmsg, "port missing");
        if (close[1] != ':')
            return set_error(errmsg, "expected ':' after ']'");
        port_start = close + 2;
    } else {
        const char *colon = memchr(text, ':', len);

        if (!colon)
            return set_error(errmsg, "port missing");
        if (memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return set_error(errmsg, "IPv6 address must be in brackets: [addr]:port");
        hlen = (size_t)(colon - text);
        if (hlen == 0)
            return set_error(errmsg, "host is empty");
        if (hlen >= sizeof(host))
            return set_error(errmsg, "host is not an IPv4 or IPv6 literal");
        memcpy(host, text, hlen);
        host[hlen] = '\0';
        if (endpoint_parse_host(host, canon, &v6) < 0 || v6)
            return set_error(errmsg, "host is not an IPv4 or IPv6 literal");
        port_start = colon + 1;
    }

    ret = endpoint_parse_port(port_start, (size_t)(end - port_start), &port, errmsg);
    if (ret < 0)
        return ret;
    memcpy(ep->host, canon, sizeof(ep->host));
    ep->ipv6 = v6;
    ep->port = port;
    return 0;
}

int endpoint_parse_hostport(const char *text, size_t len, struct endpoint *ep)
{
    if (!text || !ep)
        return -EINVAL;
    return parse_hostport(text, len, ep, NULL);
}

/* 0.0.0.0, :: and ::ffff:0.0.0.0 are not addresses a backend can have: an
 * empty slot is parked at 0.0.0.0:0, and HAProxy reads a 0.0.0.0 server as
 * "connect to wherever the client connected". */
static bool host_is_unspecified(const struct endpoint *ep)
{
    return strcmp(ep->host, "0.0.0.0") == 0 || strcmp(ep->host, "::") == 0 ||
           strcmp(ep->host, "::ffff:0.0.0.0") == 0;
}

static const char *json_error_reason(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_duplicate_key:
        return "JSON object has a duplicate key";
    case json_error_invalid_utf8:
        return "JSON is not valid UTF-8";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "JSON contains a NUL character";
    case json_error_numeric_overflow:
        return "JSON number out of range";
    case json_error_end_of_input_expected:
        return "unexpected text after the JSON object";
    default:
        return "invalid JSON";
    }
}

/* The names of root's keys other than the known ones, escaped, joined by
 * ", " into out (size bytes, "" when none; a cut ends with "..."). */
static void note_unknown(json_t *root, char *out, size_t size)
{
    static const char *const known[] = {"host", "port", "weight", "state"};
    size_t o = 0;

    out[0] = '\0';
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        char q[LOG_QUOTE_MAX / 4];
        bool is_known = false;
        int n;

        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            is_known = is_known || strcmp(key, known[i]) == 0;
        if (is_known)
            continue;
        /* jansson keys may hold NUL (json_object_iter_key stops there): the
         * part before it is enough to name the field */
        log_quote(key, strlen(key), q, sizeof(q));
        n = snprintf(out + o, size - o, "%s\"%s\"", o ? ", " : "", q);
        if (n < 0 || (size_t)n >= size - o) {
            if (size >= 4)
                memcpy(out + size - 4, "...", 4);
            return;
        }
        o += (size_t)n;
    }
}

/* The JSON form. Unknown keys are accepted (registrars add metadata, newer
 * versions add fields) and named in unknown when it is not NULL; known keys
 * must have exactly the right JSON type: no numbers in strings, no reals, no
 * booleans, no null. */
static int parse_json_value(const char *val, size_t len, struct endpoint *ep, char *unknown,
                            size_t unknown_size, char **errmsg)
{
    json_error_t jerr;
    json_t *root, *j;
    const char *s;
    json_int_t n;
    int ret = -EINVAL;

    root = json_loadb(val, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return set_error(errmsg, json_error_reason(&jerr));
    if (!json_is_object(root)) {
        set_error(errmsg, "value is not a JSON object");
        goto out;
    }

    j = json_object_get(root, "host");
    if (!j) {
        set_error(errmsg, "host missing");
        goto out;
    }
    if (!json_is_string(j)) {
        set_error(errmsg, "host must be a string");
        goto out;
    }
    s = json_string_value(j);
    /* json_string_length != strlen means an embedded NUL. */
    if (json_string_length(j) != strlen(s) || endpoint_parse_host(s, ep->host, &ep->ipv6) < 0) {
        set_error(errmsg, "host is not an IPv4 or IPv6 literal");
        goto out;
    }

    j = json_object_get(root, "port");
    if (!j) {
        set_error(errmsg, "port missing");
        goto out;
    }
    if (!json_is_integer(j)) {
        set_error(errmsg, "port must be an integer");
        goto out;
    }
    n = json_integer_value(j);
    if (n < 1 || n > 65535) {
        set_error(errmsg, "port out of range (1-65535)");
        goto out;
    }
    ep->port = (unsigned short)n;

    j = json_object_get(root, "weight");
    if (j) {
        if (!json_is_integer(j) || json_integer_value(j) < 0 ||
            json_integer_value(j) > ENDPOINT_WEIGHT_MAX) {
            set_error(errmsg, "weight must be an integer 0-256");
            goto out;
        }
        ep->weight = (unsigned short)json_integer_value(j);
    }

    j = json_object_get(root, "state");
    if (j) {
        int st;

        if (!json_is_string(j)) {
            set_error(errmsg, "state must be a string: ready, drain or maint");
            goto out;
        }
        s = json_string_value(j);
        st = json_string_length(j) == strlen(s) ? endpoint_state_parse(s) : -1;
        if (st < 0) {
            set_error(errmsg, "state must be ready, drain or maint");
            goto out;
        }
        ep->state = (enum endpoint_state)st;
    }
    if (unknown)
        note_unknown(root, unknown, unknown_size);
    ret = 0;
out:
    json_decref(root);
    return ret;
}

int endpoint_parse_value(const char *val, size_t len, struct endpoint *ep, char **errmsg)
{
    return endpoint_parse_value_unknown(val, len, ep, NULL, 0, errmsg);
}

int endpoint_parse_value_unknown(const char *val, size_t len, struct endpoint *ep, char *unknown,
                                 size_t unknown_size, char **errmsg)
{
    struct endpoint tmp;
    int ret;

    if (unknown && unknown_size)
        unknown[0] = '\0';
    else
        unknown = NULL;

    if (!val || !ep)
        return set_error(errmsg, "no value");
    if (len == 0)
        return set_error(errmsg, "empty value");
    if (len > ENDPOINT_VALUE_MAX)
        return set_error(errmsg, "value longer than 1024 bytes");
    if (memchr(val, '\0', len))
        return set_error(errmsg, "value contains a NUL byte");
    /* Control bytes are refused in both forms, so JSON must be written on one
     * line (what every JSON encoder does by default). */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)val[i];

        if (c == '\n' || c == '\r')
            return set_error(errmsg, "value contains a line break");
        if (c < 0x20 || c == 0x7f)
            return set_error(errmsg, "value contains a control character");
    }
    if (val[0] == ' ' || val[len - 1] == ' ')
        return set_error(errmsg, "value has leading or trailing whitespace");

    memset(&tmp, 0, sizeof(tmp));
    tmp.weight = ENDPOINT_DEFAULT_WEIGHT;
    tmp.state = ENDPOINT_READY;
    if (val[0] == '{') {
        if (val[len - 1] != '}')
            return set_error(errmsg, "unexpected text after the JSON object");
        ret = parse_json_value(val, len, &tmp, unknown, unknown_size, errmsg);
    } else {
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)val[i];

            if (c == ' ')
                return set_error(errmsg, "value contains whitespace");
            if (c >= 0x80)
                return set_error(errmsg, "value contains a non-ASCII byte");
        }
        ret = parse_hostport(val, len, &tmp, errmsg);
    }
    if (ret < 0)
        return ret;
    if (host_is_unspecified(&tmp))
        return set_error(errmsg, "host is the unspecified address (0.0.0.0 or ::)");
    *ep = tmp;
    return 0;
}

static bool service_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool service_name_valid_len(const char *name, size_t len)
{
    if (len < 1 || len > SERVICE_NAME_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!service_char_ok((unsigned char)name[i]))
            return false;
    return true;
}

bool endpoint_service_name_valid(const char *name)
{
    if (!name)
        return false;
    return service_name_valid_len(name, strnlen(name, SERVICE_NAME_MAX + 1));
}

int endpoint_parse_key(const char *prefix, const char *key, size_t keylen, char *service,
                       char *instance, char **errmsg)
{
    const char *rest, *slash;
    size_t plen, rlen, slen, ilen;

    if (service)
        service[0] = '\0';
    if (instance)
        instance[0] = '\0';
    if (!prefix || !key || !service || !instance)
        return set_error(errmsg, "no key");
    if (memchr(key, '\0', keylen))
        return set_error(errmsg, "key contains a NUL byte");
    plen = strlen(prefix);
    if (keylen < plen || memcmp(key, prefix, plen) != 0)
        return set_error(errmsg, "key is not under the prefix");
    rest = key + plen;
    rlen = keylen - plen;
    if (rlen == 0)
        return set_error(errmsg, "key has no service name");
    slash = memchr(rest, '/', rlen);
    slen = slash ? (size_t)(slash - rest) : rlen;
    if (!service_name_valid_len(rest, slen))
        return set_error(errmsg, "service name invalid (allowed: A-Z a-z 0-9 . _ -, 1-63 chars)");
    if (!slash)
        return set_error(errmsg, "key has no instance (expected <prefix><service>/<instance>)");
    ilen = rlen - slen - 1;
    if (ilen == 0)
        return set_error(errmsg, "instance name is empty");
    if (ilen > INSTANCE_NAME_MAX)
        return set_error(errmsg, "instance name longer than 255 bytes");
    for (size_t i = 0; i < ilen; i++) {
        unsigned char c = (unsigned char)slash[1 + i];

        if (c < 0x21 || c > 0x7e)
            return set_error(errmsg, "instance name invalid (allowed: printable ASCII, no "
                                     "spaces)");
    }
    memcpy(service, rest, slen);
    service[slen] = '\0';
    memcpy(instance, slash + 1, ilen);
    instance[ilen] = '\0';
    return 0;
}

int endpoint_format(const struct endpoint *ep, char *buf, size_t size)
{
    if (ep->ipv6)
        return snprintf(buf, size, "[%s]:%u", ep->host, (unsigned)ep->port);
    return snprintf(buf, size, "%s:%u", ep->host, (unsigned)ep->port);
}

bool endpoint_equal(const struct endpoint *a, const struct endpoint *b)
{
    return a->ipv6 == b->ipv6 && a->port == b->port && a->weight == b->weight &&
           a->state == b->state && strcmp(a->host, b->host) == 0;
}

int endpoint_sockaddr(const char *host, bool ipv6, unsigned short port, struct sockaddr_storage *sa,
                      socklen_t *len)
{
    memset(sa, 0, sizeof(*sa));
    if (ipv6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -EINVAL;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        *len = sizeof(*s6);
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;

    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -EINVAL;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof(*s4);
    return 0;
}
