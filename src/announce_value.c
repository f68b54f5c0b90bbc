/* announce_value - the value announce publishes (announce_value.h). */
#include <slotsync/announce_value.h>

#include <slotsync/endpoint.h>

#include <errno.h>
#include <stdio.h>

int announce_format_value(const struct endpoint *ep, bool with_weight, enum announce_format format,
                          char *buf, size_t size)
{
    const char *state;
    int n;

    if (!ep || !buf)
        return -EINVAL;
    switch (format) {
    case ANNOUNCE_FORMAT_PLAIN:
        if (with_weight || ep->state != ENDPOINT_READY)
            return -EINVAL;
        n = endpoint_format(ep, buf, size);
        break;
    case ANNOUNCE_FORMAT_JSON:
        /* ep->host is canonical inet_ntop text and the state a fixed name:
         * nothing to escape. Ready is the default, so it is left out and
         * the ready value stays what it always was. */
        if ((unsigned)ep->state > ENDPOINT_MAINT)
            return -EINVAL;
        state = ep->state == ENDPOINT_READY ? NULL : endpoint_state_name(ep->state);
        n = snprintf(buf, size, "{\"host\":\"%s\",\"port\":%u", ep->host, (unsigned)ep->port);
        if (n >= 0 && (size_t)n < size && with_weight)
            n += snprintf(buf + n, size - (size_t)n, ",\"weight\":%u", (unsigned)ep->weight);
        if (n >= 0 && (size_t)n < size && state)
            n += snprintf(buf + n, size - (size_t)n, ",\"state\":\"%s\"", state);
        if (n >= 0 && (size_t)n < size)
            n += snprintf(buf + n, size - (size_t)n, "}");
        break;
    default:
        return -EINVAL;
    }
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= size)
        return -ENOSPC;
    return n;
}
