/* policy - the controller's own choices (policy.h). */
#include <slotsync/policy.h>

void policy_place(const struct policy_place_facts *f, struct policy_place *out)
{
    /* A backend of its own needs the socket, an HAProxy that adds backends
     * and a service that may be one; a spare is bound only while no reload
     * is asked for or under way: that reload's render creates the backend
     * anyway, and a binding made meanwhile would be lost with the old
     * worker. */
    out->dynamic = !f->render_only && f->dynamic_usable && f->dynamic_fits && f->ours;
    out->spare_bind = !f->reload_busy;
}

void policy_empty_registry(size_t filled, bool allow, bool held, struct policy_empty_out *out)
{
    /* A wiped etcd, or the wrong one, must not empty every backend: hold
     * while HAProxy has something to lose, unless told otherwise. */
    if (!filled || allow) {
        out->act = POLICY_EMPTY_APPLY;
        out->log = held;
        out->why = filled ? "allow_empty_registry is set" : "HAProxy has no filled slot left";
        return;
    }
    out->act = POLICY_EMPTY_HOLD;
    out->log = !held;
    out->why = NULL;
}
