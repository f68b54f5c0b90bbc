/* config_kw - walking the config's keyword tables (config_kw.h): every
 * field's dotted path, and the known key an unknown one most likely meant.
 * Pure: the tables themselves live in config.c.
 */
#include <slotsync/config_kw.h>

#include <stdio.h>
#include <string.h>

#define PATH_SIZE 256

void config_kw_walk(const struct config_kw *table, const char *path,
                    void (*fn)(void *arg, const char *path, const struct config_kw *kw), void *arg)
{
    for (const struct config_kw *kw = table; kw->type != KW_END; kw++) {
        char p[PATH_SIZE];

        if (kw->type == KW_INLINE) {
            config_kw_walk(kw->sub, path, fn, arg);
            continue;
        }
        if (!kw->name)
            continue;
        snprintf(p, sizeof(p), "%s%s%s", path, path[0] ? "." : "", kw->name);
        fn(arg, p, kw);
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
