/* config_same - comparing two configs on SIGHUP (config.h's
 * config_same_*): from the keyword tables' SIGHUP class of each field
 * (config_kw.h), so that the fields a reload refuses are exactly the rows
 * marked HUP_RESTART.
 */
#include <slotsync/config.h>

#include <stdio.h>
#include <string.h>

#include <slotsync/config_kw.h>

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool config_same_listen(const struct listen_addr *a, const struct listen_addr *b)
{
    return a->set == b->set && (!a->set || (a->port == b->port && strcmp(a->host, b->host) == 0));
}

/* The changed fields' names, appended to buf as "a, b" (cut to size). */
struct changed {
    char *buf;
    size_t size, len, n;
};

static void note(struct changed *c, const char *path)
{
    int w;

    c->n++;
    if (!c->buf || c->len >= c->size)
        return;
    w = snprintf(c->buf + c->len, c->size - c->len, "%s%s", c->len ? ", " : "", path);
    if (w > 0)
        c->len += (size_t)w < c->size - c->len ? (size_t)w : c->size - c->len - 1;
}

static bool rows_same(const struct config_kw *rows, const char *a, const char *b);

/* One row's value at a and b (each the row's block base). */
static bool row_same(const struct config_kw *kw, const char *a, const char *b)
{
    const void *x = a + kw->offset, *y = b + kw->offset;

    switch (kw->type) {
    case KW_INT:
    case KW_ENUM:
        return *(const int *)x == *(const int *)y;
    case KW_BOOL:
        return *(const bool *)x == *(const bool *)y;
    case KW_STRING:
        return same_str(*(char *const *)x, *(char *const *)y);
    case KW_CHARS:
        return strcmp(x, y) == 0;
    case KW_LISTEN:
        return config_same_listen(x, y);
    case KW_CUSTOM:
        return !kw->same || kw->same(a, b);
    case KW_BLOCK:
    case KW_INLINE:
        return rows_same(kw->sub, x, y);
    default:
        return true;
    }
}

static bool rows_same(const struct config_kw *rows, const char *a, const char *b)
{
    for (const struct config_kw *kw = rows; kw->type != KW_END; kw++)
        if (!row_same(kw, a, b))
            return false;
    return true;
}

/* Every field of class hup under rows that differs between a and b, into
 * c; a KW_WHOLE block counts as one field. A named block (services) is
 * not compared here: the backend table compares each service. */
static void rows_changed(const struct config_kw *rows, const char *path, const char *a,
                         const char *b, enum config_hup hup, struct changed *c)
{
    for (const struct config_kw *kw = rows; kw->type != KW_END; kw++) {
        char p[256];

        if ((kw->flags & KW_NAMED) || kw->type == KW_TYPE)
            continue;
        if (kw->name)
            snprintf(p, sizeof(p), "%s%s%s", path, path[0] ? "." : "", kw->name);
        if (kw->type == KW_INLINE || (kw->type == KW_BLOCK && !(kw->flags & KW_WHOLE))) {
            rows_changed(kw->sub, kw->name ? p : path, a + kw->offset, b + kw->offset, hup, c);
            continue;
        }
        if (kw->name && kw->hup == hup && !row_same(kw, a, b))
            note(c, p);
    }
}

static size_t changed(const struct config_kw *rows, const void *a, const void *b,
                      enum config_hup hup, char *buf, size_t size)
{
    struct changed c = {buf, size, 0, 0};

    if (buf && size)
        buf[0] = '\0';
    rows_changed(rows, "", a, b, hup, &c);
    return c.n;
}

bool config_same_restart_fields(const struct config *a, const struct config *b)
{
    return changed(config_kw_root, a, b, HUP_RESTART, NULL, 0) == 0;
}

size_t config_restart_fields_changed(const struct config *nc, const struct config *oc, char *buf,
                                     size_t size)
{
    return changed(config_kw_root, nc, oc, HUP_RESTART, buf, size);
}

bool config_same_http_frontend(const struct config *a, const struct config *b)
{
    return changed(config_kw_http_frontend, a, b, HUP_RENDER, NULL, 0) == 0;
}

bool config_same_options(const struct service_options *a, const struct service_options *b)
{
    return changed(config_kw_service_options, a, b, HUP_RENDER, NULL, 0) == 0;
}

bool config_same_admin(const struct admin_conf *a, const struct admin_conf *b)
{
    return changed(config_kw_admin_conf, a, b, HUP_KEPT, NULL, 0) == 0;
}
