/* view - HAProxy's side of one server slot, compact.
 *
 * Pure logic. A backend keeps one struct server_view per slot for what
 * slotsync last set there, and HAProxy's "show servers state" rows are
 * folded into the same form at each resync. Only what differs from slot to
 * slot is kept: the address in binary, port, weight and state; the backend
 * and server names are implied by the backend holding the array and the
 * slot's index. 24 bytes instead of a 208-byte struct server_state.
 */
#ifndef SLOTSYNC_VIEW_H
#define SLOTSYNC_VIEW_H

#include <slotsync/view-t.h>

struct server_state;

/* HAProxy's side of the slot is known (read or set by slotsync). */
bool view_known(const struct server_view *v);
/* Known, and HAProxy has no address for it (0.0.0.0 or :: and port 0). */
bool view_empty(const struct server_view *v);
/* Set v's address from an IP literal (IPv4 or IPv6): 0, or -EINVAL when ip
 * is not one (v untouched). v becomes known. */
int view_set_addr(struct server_view *v, const char *ip);
/* Whether v's address is the IP literal ip (compared in binary, so any
 * spelling of the same address matches; false when v is unknown or ip is
 * not an IP literal). */
bool view_addr_is(const struct server_view *v, const char *ip);
/* v's address as canonical text (inet_ntop) in buf (VIEW_ADDR_TEXT bytes);
 * "" when v is unknown. Returns buf. */
const char *view_addr(const struct server_view *v, char *buf);
/* The fields planning compares (address, port, weight, admin state) are
 * equal; two unknown views are equal, a known and an unknown one are not. */
bool view_same(const struct server_view *a, const struct server_view *b);
/* v from a validated "show servers state" row. 0, or -EINVAL when its
 * address is not an IP literal or a field is out of range (v untouched). */
int view_from_state(struct server_view *v, const struct server_state *st);
/* What HAProxy has in a slot it just created with "add server ...
 * 0.0.0.0:0": no address, weight 1, maintenance. */
void view_set_new_slot(struct server_view *v);

#endif
