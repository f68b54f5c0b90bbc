/* view - HAProxy's side of one server slot, compact (view.h). */
#include <slotsync/view.h>

#include <slotsync/runtime-t.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct server_view) == 24, "struct server_view stays compact");
_Static_assert(VIEW_ADDR_TEXT >= INET6_ADDRSTRLEN, "VIEW_ADDR_TEXT holds any address");

bool view_known(const struct server_view *v)
{
    return v && v->family != VIEW_UNKNOWN;
}

bool view_empty(const struct server_view *v)
{
    static const uint8_t zero[16];

    return view_known(v) && v->port == 0 && memcmp(v->addr, zero, sizeof(zero)) == 0;
}

/* ip in binary into addr (16 bytes, zero-padded): VIEW_IPV4, VIEW_IPV6 or
 * VIEW_UNKNOWN when it is not an IP literal. */
static int parse_addr(const char *ip, uint8_t *addr)
{
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, ip, addr) == 1)
        return VIEW_IPV4;
    if (inet_pton(AF_INET6, ip, addr) == 1)
        return VIEW_IPV6;
    return VIEW_UNKNOWN;
}

int view_set_addr(struct server_view *v, const char *ip)
{
    uint8_t addr[16];
    int family = parse_addr(ip, addr);

    if (family == VIEW_UNKNOWN)
        return -EINVAL;
    memcpy(v->addr, addr, sizeof(addr));
    v->family = (uint8_t)family;
    return 0;
}

bool view_addr_is(const struct server_view *v, const char *ip)
{
    uint8_t addr[16];
    int family;

    if (!view_known(v))
        return false;
    family = parse_addr(ip, addr);
    return family == v->family && memcmp(addr, v->addr, sizeof(addr)) == 0;
}

const char *view_addr(const struct server_view *v, char *buf)
{
    buf[0] = '\0';
    if (view_known(v) &&
        !inet_ntop(v->family == VIEW_IPV6 ? AF_INET6 : AF_INET, v->addr, buf, VIEW_ADDR_TEXT))
        buf[0] = '\0';
    return buf;
}

bool view_same(const struct server_view *a, const struct server_view *b)
{
    if (view_known(a) != view_known(b))
        return false;
    return !view_known(a) ||
           (a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0 &&
            a->port == b->port && a->weight == b->weight && a->admin == b->admin);
}

int view_from_state(struct server_view *v, const struct server_state *st)
{
    struct server_view n;

    memset(&n, 0, sizeof(n));
    if (st->port > 65535 || st->weight < 0 || st->weight > 65535 || st->op_state < 0 ||
        st->op_state > 255 || (unsigned)st->admin > SERVER_MAINT || view_set_addr(&n, st->addr) < 0)
        return -EINVAL;
    n.port = (uint16_t)st->port;
    n.weight = (uint16_t)st->weight;
    n.admin = (uint8_t)st->admin;
    n.op_state = (uint8_t)st->op_state;
    *v = n;
    return 0;
}

void view_set_new_slot(struct server_view *v)
{
    memset(v, 0, sizeof(*v));
    v->family = VIEW_IPV4;
    v->weight = 1;
    v->admin = SERVER_MAINT;
}
