/* fuzz_endpoint - the key/value parser (endpoint.c) and the catalog.
 *
 * The input is tried as a value, as a key after the prefix, and as a host
 * literal. Oracles: a parsed value formats and parses back to itself, in the
 * plain and the JSON form; the runtime commands for it are clean, and once
 * applied, planning again gives nothing; a parsed key rebuilds to itself; the
 * catalog refuses exactly what the parser refuses, and counts it. */
#include <stdbool.h>

#include <slotsync/catalog.h>
#include <slotsync/endpoint.h>
#include <slotsync/plan.h>
#include <slotsync/runtime-t.h>
#include <slotsync/slots-t.h>
#include <slotsync/view.h>

#include "fuzz.h"

#define PREFIX "/services/"

static void check_endpoint(const struct endpoint *ep)
{
    char canon[ENDPOINT_HOST_MAX];
    bool v6;

    FUZZ_ASSERT(endpoint_parse_host(ep->host, canon, &v6) == 0, "host '%s' does not parse",
                ep->host);
    FUZZ_ASSERT(strcmp(canon, ep->host) == 0 && v6 == ep->ipv6, "host '%s' is not canonical",
                ep->host);
    FUZZ_ASSERT(ep->port >= 1, "port 0");
    FUZZ_ASSERT(ep->weight <= ENDPOINT_WEIGHT_MAX, "weight %u", ep->weight);
    FUZZ_ASSERT(ep->state <= ENDPOINT_MAINT, "state %d", (int)ep->state);
}

static void roundtrip(const struct endpoint *ep)
{
    struct endpoint back;
    char buf[256];
    int n;

    /* plain: host and port only */
    n = endpoint_format(ep, buf, sizeof(buf));
    FUZZ_ASSERT(n > 0 && (size_t)n < sizeof(buf), "format");
    FUZZ_ASSERT(endpoint_parse_value(buf, (size_t)n, &back, NULL) == 0, "'%s' does not parse", buf);
    FUZZ_ASSERT(strcmp(back.host, ep->host) == 0 && back.port == ep->port &&
                    back.ipv6 == ep->ipv6 && back.weight == ENDPOINT_DEFAULT_WEIGHT &&
                    back.state == ENDPOINT_READY,
                "'%s' parses to something else", buf);

    /* JSON: everything */
    n = snprintf(buf, sizeof(buf), "{\"host\":\"%s\",\"port\":%u,\"weight\":%u,\"state\":\"%s\"}",
                 ep->host, (unsigned)ep->port, (unsigned)ep->weight,
                 endpoint_state_name(ep->state));
    FUZZ_ASSERT(n > 0 && (size_t)n < sizeof(buf), "format json");
    FUZZ_ASSERT(endpoint_parse_value(buf, (size_t)n, &back, NULL) == 0, "'%s' does not parse", buf);
    FUZZ_ASSERT(endpoint_equal(&back, ep), "'%s' parses to something else", buf);
}

/* Plan the endpoint into an empty slot, "apply" (plan_slot updates have),
 * plan again: nothing. Then empty the slot the same way. */
static void plan_apply_replan(const struct endpoint *ep)
{
    static char instance[] = "i1";
    struct server_view have;
    struct slot want = {.instance = instance, .ep = *ep};
    struct slot empty = {0};
    struct plan p;
    int r;

    view_set_new_slot(&have);
    plan_init(&p);
    r = plan_slot(&p, "web", 2, &want, &have);
    FUZZ_ASSERT(r > 0, "no commands to fill a slot (%d)", r);
    fuzz_check_plan(&p);
    plan_reset(&p);
    r = plan_slot(&p, "web", 2, &want, &have);
    FUZZ_ASSERT(r == 0, "replan after apply gave %d commands, first '%s'", r, p.n ? p.cmds[0] : "");
    r = plan_slot(&p, "web", 2, &empty, &have);
    FUZZ_ASSERT(r > 0, "no commands to empty a slot (%d)", r);
    fuzz_check_plan(&p);
    plan_reset(&p);
    r = plan_slot(&p, "web", 2, &empty, &have);
    FUZZ_ASSERT(r == 0, "replan after emptying gave %d commands", r);
    /* unknown HAProxy state: every command, all clean */
    r = plan_slot(&p, "web", 2, &want, NULL);
    FUZZ_ASSERT(r > 0, "no commands for an unknown slot");
    fuzz_check_plan(&p);
    plan_free(&p);
}

static void as_value(const uint8_t *data, size_t size)
{
    static const char key[] = PREFIX "web/i1";
    struct endpoint ep;
    struct catalog *cat;
    char *err = NULL;
    int r, c;

    memset(&ep, 0xa5, sizeof(ep));
    r = endpoint_parse_value((const char *)data, size, &ep, &err);
    if (r == 0) {
        FUZZ_ASSERT(err == NULL, "error text on success");
        check_endpoint(&ep);
        roundtrip(&ep);
        plan_apply_replan(&ep);
    } else {
        FUZZ_ASSERT(r == -EINVAL && err != NULL, "refused without a reason (%d)", r);
        free(err);
        err = NULL;
    }

    cat = catalog_new(PREFIX);
    FUZZ_ASSERT(cat, "ENOMEM");
    c = catalog_put(cat, key, strlen(key), (const char *)data, size, 7, &err);
    if (r == 0) {
        struct catalog_service *svc = catalog_find(cat, "web");

        FUZZ_ASSERT(c == CATALOG_ADDED, "catalog refused what the parser took (%d)", c);
        FUZZ_ASSERT(svc && svc->n_endpoints == 1 && endpoint_equal(&svc->endpoints[0]->ep, &ep),
                    "catalog holds something else");
        FUZZ_ASSERT(cat->rejected == 0, "counted");
    } else {
        FUZZ_ASSERT(c == CATALOG_REJECTED, "catalog took what the parser refused (%d)", c);
        FUZZ_ASSERT(cat->rejected == 1 && catalog_count(cat) == 0, "not counted or kept");
    }
    free(err);
    catalog_free(cat);
}

static void as_key(const uint8_t *data, size_t size)
{
    char service[SERVICE_NAME_MAX + 1], instance[INSTANCE_NAME_MAX + 1];
    size_t plen = strlen(PREFIX), klen = plen + size;
    char *key = malloc(klen + 1), *err = NULL;
    int r;

    FUZZ_ASSERT(key, "ENOMEM");
    memcpy(key, PREFIX, plen);
    memcpy(key + plen, data, size);
    key[klen] = '\0';
    r = endpoint_parse_key(PREFIX, key, klen, service, instance, &err);
    if (r == 0) {
        size_t sl = strlen(service), il = strlen(instance);

        FUZZ_ASSERT(endpoint_service_name_valid(service), "service '%s' invalid", service);
        for (size_t i = 0; i < il; i++)
            FUZZ_ASSERT(instance[i] > 0x20 && instance[i] < 0x7f, "instance byte 0x%02x",
                        (unsigned char)instance[i]);
        FUZZ_ASSERT(sl + 1 + il == size && memcmp(data, service, sl) == 0 && data[sl] == '/' &&
                        memcmp(data + sl + 1, instance, il) == 0,
                    "key does not rebuild from its parts");
    } else {
        FUZZ_ASSERT(err != NULL, "refused without a reason");
        free(err);
    }
    free(key);
}

static void as_host(const uint8_t *data, size_t size)
{
    char *text = fuzz_strdup(data, size);
    char canon[ENDPOINT_HOST_MAX], again[ENDPOINT_HOST_MAX];
    bool v6, v6b;

    if (endpoint_parse_host(text, canon, &v6) == 0) {
        FUZZ_ASSERT(endpoint_parse_host(canon, again, &v6b) == 0, "canonical form refused");
        FUZZ_ASSERT(strcmp(canon, again) == 0 && v6 == v6b, "canonical form not stable");
        for (const char *c = canon; *c; c++)
            FUZZ_ASSERT((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || *c == '.' ||
                            *c == ':',
                        "byte 0x%02x in a host", (unsigned char)*c);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_value(data, size);
    as_key(data, size);
    as_host(data, size);
    return 0;
}
