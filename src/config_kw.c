/* config_kw - reading a JSON object with the config's keyword tables
 * (config_kw.h): each row's member type-checked, validated, defaulted and
 * stored at its offset; unknown keys refused with the known key they most
 * likely meant; every field's dotted path for the man page. Pure: the
 * tables themselves (what each field is) live in config.c.
 */
#include <slotsync/config_kw.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <slotsync/config-t.h>
#include <slotsync/log.h>
#include <slotsync/validate.h>

#define PATH_SIZE 256
#define QUOTE_SIZE 100 /* an untrusted key quoted into a message */

int config_kw_error(char **errmsg, const char *path, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    memprintf(errmsg, "%s: %s", path, reason);
    return -EINVAL;
}

const char *config_kw_join(char *buf, size_t size, const char *path, const char *key)
{
    if (path[0])
        snprintf(buf, size, "%s.%s", path, key);
    else
        snprintf(buf, size, "%s", key);
    return buf;
}

int config_kw_required(char **errmsg, const char *path, const char *key)
{
    char fp[PATH_SIZE];

    return config_kw_error(errmsg, config_kw_join(fp, sizeof(fp), path, key), "required");
}

int config_kw_set_string(char **dst, const char *src, char **errmsg)
{
    char *copy = strdup(src);

    if (!copy) {
        memprintf(errmsg, "out of memory");
        return -ENOMEM;
    }
    free(*dst);
    *dst = copy;
    return 0;
}

void config_kw_walk(const struct config_kw *table, const char *path,
                    void (*fn)(const char *path, const struct config_kw *kw, void *arg), void *arg)
{
    for (const struct config_kw *kw = table; kw->type != KW_END; kw++) {
        char p[PATH_SIZE];

        if (kw->type == KW_INLINE) {
            config_kw_walk(kw->sub, path, fn, arg);
            continue;
        }
        if (!kw->name || kw->type == KW_TYPE)
            continue;
        snprintf(p, sizeof(p), "%s%s%s", path, path[0] ? "." : "", kw->name);
        fn(p, kw, arg);
        if (kw->sub && (kw->flags & KW_NAMED)) {
            char named[PATH_SIZE + 8];

            snprintf(named, sizeof(named), "%s.NAME", p);
            config_kw_walk(kw->sub, named, fn, arg);
        } else if (kw->sub) {
            config_kw_walk(kw->sub, p, fn, arg);
        }
    }
}

size_t config_kw_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[3][65];

    if (la > 64 || lb > 64)
        return CONFIG_KW_DISTANCE_MAX + 1;
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

struct suggestion {
    const char *key, *best;
    size_t klen, best_d;
};

static void consider(struct suggestion *s, const struct config_kw *table)
{
    for (const struct config_kw *kw = table; kw->type != KW_END; kw++) {
        size_t d, al;

        if (kw->type == KW_INLINE)
            consider(s, kw->sub);
        if (!kw->name)
            continue;
        d = config_kw_distance(s->key, kw->name);
        al = strlen(kw->name);
        /* a prefix of a known key ("runtime_sock") is close too */
        if (s->klen >= 4 && al > s->klen && strncmp(s->key, kw->name, s->klen) == 0)
            d = 1;
        if (d < s->best_d && d <= (s->klen + 2) / 3 + (s->klen >= 4)) {
            s->best_d = d;
            s->best = kw->name;
        }
    }
}

const char *config_kw_suggest(const struct config_kw *table, const char *key)
{
    struct suggestion s = {key, NULL, strlen(key), CONFIG_KW_DISTANCE_MAX + 1};

    consider(&s, table);
    return s.best;
}

/* ---- the reader ---- */

static const struct config_kw *kw_find(const struct config_kw *rows, const char *key)
{
    for (const struct config_kw *kw = rows; kw->type != KW_END; kw++) {
        const struct config_kw *found;

        if (kw->type == KW_INLINE && (found = kw_find(kw->sub, key)))
            return found;
        if (kw->name && kw->type != KW_TYPE && strcmp(kw->name, key) == 0)
            return kw;
    }
    return NULL;
}

/* An unknown key is named with the closest known key of its block (issue
 * 19: "runtime_sock" said only "unknown key"), and when that key is
 * required and not set, so is that. */
int config_kw_check_keys(json_t *obj, const char *path, const struct config_kw *rows, char **errmsg)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it), *best;
        char q[QUOTE_SIZE], fp[PATH_SIZE], rp[PATH_SIZE];

        if (kw_find(rows, key))
            continue;
        best = config_kw_suggest(rows, key);
        config_kw_join(fp, sizeof(fp), path, log_quote(key, strlen(key), q, sizeof(q)));
        if (best && (kw_find(rows, best)->flags & (KW_REQUIRED | KW_REQUIRED_LATE)) &&
            !json_object_get(obj, best))
            return config_kw_error(errmsg, fp,
                                   "unknown key; did you mean \"%s\"? (%s is required and not "
                                   "set)",
                                   best, config_kw_join(rp, sizeof(rp), path, best));
        if (best)
            return config_kw_error(errmsg, fp, "unknown key; did you mean \"%s\"?", best);
        return config_kw_error(errmsg, fp, "unknown key");
    }
    return 0;
}
static int set_defaults(const struct config_kw *rows, char *base, char **errmsg);

/* The default of one row, into field; a block's, when it is KW_ALWAYS. */
static int set_default(const struct config_kw *kw, void *field, char **errmsg)
{
    switch (kw->type) {
    case KW_INT:
    case KW_ENUM:
        *(int *)field = (int)kw->def;
        return 0;
    case KW_BOOL:
        *(bool *)field = kw->def != 0;
        return 0;
    case KW_CUSTOM:
        if (kw->def)
            *(unsigned *)field = (unsigned)kw->def;
        return 0;
    case KW_CHARS:
        if (kw->def_str)
            snprintf(field, (size_t)kw->max, "%s", kw->def_str);
        return 0;
    case KW_STRING:
        return kw->def_str ? config_kw_set_string(field, kw->def_str, errmsg) : 0;
    case KW_INLINE:
        return set_defaults(kw->sub, field, errmsg);
    case KW_BLOCK:
        return (kw->flags & KW_ALWAYS) ? set_defaults(kw->sub, field, errmsg) : 0;
    default:
        return 0;
    }
}

/* The defaults of rows at base, for a block that is absent. */
static int set_defaults(const struct config_kw *rows, char *base, char **errmsg)
{
    for (const struct config_kw *kw = rows; kw->type != KW_END; kw++) {
        int ret = set_default(kw, base + kw->offset, errmsg);

        if (ret < 0)
            return ret;
    }
    return 0;
}

int config_kw_reason_error(char **errmsg, const char *fp, char *reason)
{
    config_kw_error(errmsg, fp, "%s", reason ? reason : "invalid value");
    free(reason);
    return -EINVAL;
}

/* obj.key as a string without NUL into *s, borrowed. */
static int get_string(json_t *j, const char *fp, const char **s, char **errmsg)
{
    if (!json_is_string(j))
        return config_kw_error(errmsg, fp, "must be a string");
    if (json_string_length(j) != strlen(json_string_value(j)))
        return config_kw_error(errmsg, fp, "must not contain NUL");
    *s = json_string_value(j);
    return 0;
}

static int load_block(const struct config_kw_ctx *ctx, const struct config_kw *kw, json_t *j,
                      const char *fp, char **errmsg)
{
    struct config_kw_ctx sub = {j, fp, (char *)ctx->base + kw->offset, ctx->cfg, ctx->problems};
    int ret;

    if (!json_is_object(j))
        return config_kw_error(errmsg, fp, "must be an object");
    ret = config_kw_check_keys(j, fp, kw->sub, errmsg);
    if (ret < 0)
        return ret;
    return config_kw_load(&sub, kw->sub, true, errmsg);
}

/* One row of the block ctx reads: with defaults, an absent member takes
 * the row's default. */
int config_kw_load_row(const struct config_kw_ctx *ctx, const struct config_kw *kw, bool defaults,
                       char **errmsg)
{
    char fp[PATH_SIZE], *reason = NULL;
    void *field = (char *)ctx->base + kw->offset;
    json_t *j = kw->name ? json_object_get(ctx->obj, kw->name) : NULL;
    const char *s = NULL;
    json_int_t v;
    int ret;

    if (kw->type == KW_CHECK)
        return kw->load ? kw->load(ctx, kw, NULL, errmsg) : 0;
    if (kw->type == KW_INLINE) {
        struct config_kw_ctx sub = *ctx;

        sub.base = field;
        return config_kw_load(&sub, kw->sub, defaults, errmsg);
    }
    if (!j) {
        if (kw->flags & KW_REQUIRED)
            return config_kw_required(errmsg, ctx->path, kw->name);
        return defaults ? set_default(kw, field, errmsg) : 0;
    }
    config_kw_join(fp, sizeof(fp), ctx->path, kw->name);
    switch (kw->type) {
    case KW_BLOCK:
        return load_block(ctx, kw, j, fp, errmsg);
    case KW_CUSTOM:
        return kw->load(ctx, kw, j, errmsg);
    case KW_INT:
        if (!json_is_integer(j))
            return config_kw_error(errmsg, fp, "must be an integer");
        v = json_integer_value(j);
        if (v < kw->min || v > kw->max)
            return config_kw_error(errmsg, fp, "must be between %ld and %ld", kw->min, kw->max);
        *(int *)field = (int)v;
        return 0;
    case KW_BOOL:
        if (!json_is_boolean(j))
            return config_kw_error(errmsg, fp, "must be true or false");
        *(bool *)field = json_is_true(j);
        return 0;
    default:
        break;
    }
    if ((ret = get_string(j, fp, &s, errmsg)) < 0 || kw->type == KW_TYPE)
        return ret;
    switch (kw->type) {
    case KW_ENUM:
        if ((ret = kw->parse(s)) < 0)
            return config_kw_error(errmsg, fp, "%s", kw->why);
        *(int *)field = ret;
        return 0;
    case KW_LISTEN:
        if (validate_listen(s, field, &reason) < 0)
            return config_kw_reason_error(errmsg, fp, reason);
        return kw->load ? kw->load(ctx, kw, j, errmsg) : 0;
    default:
        break;
    }
    /* KW_STRING, KW_CHARS: stored only when valid */
    if (kw->check && kw->check(s, &reason) < 0)
        return config_kw_reason_error(errmsg, fp, reason);
    if (kw->type == KW_CHARS) {
        snprintf(field, (size_t)kw->max, "%s", s);
        return 0;
    }
    if ((ret = config_kw_set_string(field, s, errmsg)) < 0)
        return ret;
    for (char *p = *(char **)field; (kw->flags & KW_LOWER) && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

/* The rows flagged KW_REQUIRED_LATE in [from, to) that are absent. */
static int required_late(const struct config_kw_ctx *ctx, const struct config_kw *from,
                         const struct config_kw *to, char **errmsg)
{
    for (const struct config_kw *kw = from; kw < to; kw++)
        if ((kw->flags & KW_REQUIRED_LATE) && !json_object_get(ctx->obj, kw->name))
            return config_kw_required(errmsg, ctx->path, kw->name);
    return 0;
}

int config_kw_load(const struct config_kw_ctx *ctx, const struct config_kw *rows, bool defaults,
                   char **errmsg)
{
    const struct config_kw *from = rows, *kw;
    int ret;

    for (kw = rows; kw->type != KW_END; kw++) {
        if (kw->type == KW_CHECK) {
            if ((ret = required_late(ctx, from, kw, errmsg)) < 0)
                return ret;
            from = kw;
        }
        if ((ret = config_kw_load_row(ctx, kw, defaults, errmsg)) < 0)
            return ret;
    }
    return required_late(ctx, from, kw, errmsg);
}

int config_kw_keep_going(struct config_kw_problems *p, int ret, char **errmsg)
{
    if (ret >= 0 || !p || ret == -ENOMEM)
        return ret;
    p->report(true, errmsg && *errmsg ? *errmsg : strerror(-ret), p->arg);
    p->errors++;
    return 0;
}

int config_kw_load_steps(const struct config_kw_ctx *ctx, const struct config_kw *rows,
                         char **errmsg)
{
    struct config_kw_problems *p = ctx->problems;
    const char *type_failed = NULL; /* a KW_TYPE step's name, said once */
    bool failed = false;
    int ret = config_kw_check_keys(ctx->obj, ctx->path, rows, errmsg);

    if ((ret = config_kw_keep_going(p, ret, errmsg)) < 0)
        return ret;
    for (const struct config_kw *kw = rows; kw->type != KW_END; kw++) {
        if (((kw->flags & KW_WITH_PREV) && failed) ||
            (type_failed && kw->name && strcmp(kw->name, type_failed) == 0))
            continue;
        ret = config_kw_load_row(ctx, kw, true, errmsg);
        failed = ret < 0;
        if (failed && kw->type == KW_TYPE)
            type_failed = kw->name;
        if ((ret = config_kw_keep_going(p, ret, errmsg)) < 0)
            return ret;
    }
    if (p && p->errors) {
        memprintf(errmsg, "%u error%s", p->errors, p->errors == 1 ? "" : "s");
        return -EINVAL;
    }
    return 0;
}

int config_kw_set(const struct config_kw *rows, void *base, const char *path, const char *key,
                  const char *value, char **errmsg)
{
    const struct config_kw *kw = kw_find(rows, key);
    void *field = (char *)base + (kw ? kw->offset : 0);
    char fp[PATH_SIZE], *reason = NULL;
    int v;

    if (!kw || (kw->type != KW_STRING && kw->type != KW_ENUM))
        return -EINVAL;
    config_kw_join(fp, sizeof(fp), path, key);
    if (kw->type == KW_ENUM) {
        if ((v = value ? kw->parse(value) : -1) < 0)
            return config_kw_error(errmsg, fp, "%s", kw->why);
        *(int *)field = v;
        return 0;
    }
    if (!value && (kw->flags & KW_REQUIRED))
        return config_kw_required(errmsg, path, key);
    if (kw->check && kw->check(value, &reason) < 0)
        return config_kw_reason_error(errmsg, fp, reason);
    return config_kw_set_string(field, value, errmsg);
}

void config_kw_release(const struct config_kw *rows, void *base)
{
    for (const struct config_kw *kw = rows; kw->type != KW_END; kw++) {
        char *field = (char *)base + kw->offset;

        if (kw->type == KW_STRING) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (kw->type == KW_BLOCK || kw->type == KW_INLINE) {
            config_kw_release(kw->sub, field);
        } else if (kw->type == KW_CUSTOM && kw->release) {
            kw->release(base);
        }
    }
}
