/* config_kw - the keyword tables the config file is read from (issue 22),
 * as HAProxy's cfg_kw_list: one row per field, naming its key, its type,
 * where it is stored, its range or validator, its default and what a change
 * of it does on SIGHUP. config.c reads the file with them, config_same.c
 * compares two configs with them, and the man page's field list and the
 * did-you-mean of an unknown key come from them, so none can drift from
 * another.
 *
 * The tables are static data owned by config.c; everything here borrows.
 */
#ifndef SLOTSYNC_CONFIG_KW_H
#define SLOTSYNC_CONFIG_KW_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct json_t;

enum config_kw_type {
    KW_END = 0, /* ends a table */
    KW_BLOCK,   /* a JSON object: the rows of sub; offset moves the base */
    KW_INLINE,  /* the rows of sub, in this same object, at base + offset */
    KW_INT,     /* int, min..max */
    KW_BOOL,    /* bool */
    KW_ENUM,    /* int: parse(string) >= 0, else why */
    KW_STRING,  /* char * (allocated): check passes it */
    KW_CHARS,   /* char[max]: check passes it */
    KW_LISTEN,  /* struct listen_addr; then check_listen, if any */
    KW_CUSTOM,  /* load reads the member (NULL when absent) */
    KW_CHECK,   /* no key: load checks the block at this point (NULL: only the
                 * KW_REQUIRED_LATE rows above are) */
    KW_TYPE,    /* the string member name is type-checked here; its own row,
                 * further down, reads it (the order of the checks is kept) */
};

/* What a changed value does on SIGHUP (controller.c's on_hup). */
enum config_hup {
    HUP_LIVE = 0, /* taken at once */
    HUP_RENDER,   /* taken, and the services file follows (a reload when needed) */
    HUP_KEPT,     /* taken at the next restart; the SIGHUP says so (admin.*) */
    HUP_RESTART,  /* the SIGHUP is refused, naming the field */
};

#define KW_REQUIRED (1u << 0)  /* absent: "<path>: required" */
#define KW_ALWAYS (1u << 1)    /* KW_BLOCK: its defaults apply when it is absent */
#define KW_WITH_PREV (1u << 2) /* top level: read only when the row before was */
#define KW_WHOLE (1u << 3)     /* KW_BLOCK: compared and named as one field */
#define KW_NAMED (1u << 4)     /* KW_CUSTOM: an object of sub blocks named by their keys */
/* required, but checked at the block's next KW_CHECK row (or its end) */
#define KW_REQUIRED_LATE (1u << 5)
#define KW_LOWER (1u << 6) /* KW_STRING: stored lower-cased */

/* Where a row is read: the block's object, its path ("etcd.tls", "" at
 * the top), the base its offsets count from, and the whole config. */
struct config_kw_ctx {
    struct json_t *obj;
    const char *path;
    void *base;
    struct config *cfg;
    struct config_kw_problems *problems; /* NULL: stop at the first error */
};

/* Where config_load_all() sends each problem (borrowed for the call). */
struct config_kw_problems {
    void (*report)(bool error, const char *text, void *arg);
    void *arg;
    unsigned errors;
};

struct config_kw {
    const char *name; /* the key; NULL for KW_INLINE and KW_CHECK */
    enum config_kw_type type;
    size_t offset; /* from the block's base */
    long min, max; /* KW_INT; KW_CHARS: max is the array's size */
    long def;      /* KW_INT, KW_ENUM, KW_BOOL: the default; KW_CUSTOM: an unsigned, if not 0 */
    const char *def_str;            /* KW_STRING, KW_CHARS: the default (NULL: none) */
    int (*parse)(const char *name); /* KW_ENUM */
    const char *why;                /* KW_ENUM: the reason when parse fails */
    /* KW_STRING, KW_CHARS: 0 or -EINVAL with the reason (no field path)
     * in *reason (validate.h's shape) */
    int (*check)(const char *value, char **reason);
    /* KW_CUSTOM (value: the member or NULL), KW_CHECK (value NULL),
     * KW_LISTEN after parsing (value: the member). */
    int (*load)(const struct config_kw_ctx *ctx, const struct config_kw *kw, struct json_t *value,
                char **errmsg);
    bool (*same)(const void *a, const void *b); /* KW_CUSTOM: same value (block bases) */
    void (*release)(void *base);                /* KW_CUSTOM: free what load stored */
    const struct config_kw *sub;                /* KW_BLOCK, KW_INLINE; KW_CUSTOM's members */
    unsigned flags;                             /* KW_REQUIRED, ... */
    enum config_hup hup;                        /* rows of a KW_WHOLE block: the block's */
};

/* Rows, one a line. at: the field's offset from the block's base;
 * d: the default; fl: KW_* flags; h: the SIGHUP class. */
/* clang-format off */
#define ROW_INT(n, at, lo, hi, d, h) \
    {.name = n, .type = KW_INT, .offset = at, .min = lo, .max = hi, .def = d, .hup = h}
#define ROW_STR(n, at, chk, d, fl, h) \
    {.name = n, .type = KW_STRING, .offset = at, .check = chk, .def_str = d, .flags = fl, .hup = h}
#define ROW_CHARS(n, at, size, chk, d, h) \
    {.name = n, .type = KW_CHARS, .offset = at, .max = size, .check = chk, .def_str = d, .hup = h}
#define ROW_ENUM(n, at, fn, reason, d, h) \
    {.name = n, .type = KW_ENUM, .offset = at, .parse = fn, .why = reason, .def = d, .hup = h}
#define ROW_LISTEN(n, at, post, fl, h) \
    {.name = n, .type = KW_LISTEN, .offset = at, .load = post, .flags = fl, .hup = h}
#define ROW_CUSTOM(n, at, fn, eq, d, fl, h) \
    {.name = n, .type = KW_CUSTOM, .offset = at, .load = fn, .same = eq, .def = d, .flags = fl, \
     .hup = h}
#define ROW_BLOCK(n, at, rows, fl, h) \
    {.name = n, .type = KW_BLOCK, .offset = at, .sub = rows, .flags = fl, .hup = h}
#define ROW_INLINE(at, rows) {.type = KW_INLINE, .offset = at, .sub = rows}
#define ROW_CHECK(fn) {.type = KW_CHECK, .load = fn}
#define ROW_TYPE(n, fl) {.name = n, .type = KW_TYPE, .flags = fl}
#define ROW_END {.type = KW_END}
/* clang-format on */

/* The top level's rows; a service's (services.NAME); the backend options
 * both defaults and a service hold (struct service_options); admin's
 * protection (struct admin_conf); http_frontend's (struct config). */
extern const struct config_kw config_kw_root[];
extern const struct config_kw config_kw_service_options[];
extern const struct config_kw config_kw_admin_conf[];
extern const struct config_kw config_kw_http_frontend[];

/* Read the rows of the block ctx describes, in order, each stopping the
 * block at its first error: 0, or a negative errno with "<path>: <reason>"
 * in *errmsg (caller frees). With defaults, an absent member takes its
 * row's default (a service's rows do not: they start from the defaults
 * block). What was stored before an error stays for the caller to free. */
int config_kw_load(const struct config_kw_ctx *ctx, const struct config_kw *rows, bool defaults,
                   char **errmsg);
/* One row of that (a top-level step). */
int config_kw_load_row(const struct config_kw_ctx *ctx, const struct config_kw *kw, bool defaults,
                       char **errmsg);

/* The top level: every row one step, each step's error reported through
 * ctx->problems (when not NULL) and the next step still read. 0, or
 * -EINVAL with "<N> errors" (or the first error, without problems). */
int config_kw_load_steps(const struct config_kw_ctx *ctx, const struct config_kw *rows,
                         char **errmsg);

/* After one step: with problems, an error is reported and counted and the
 * load goes on (0); without, or out of memory, it stops (ret). */
int config_kw_keep_going(struct config_kw_problems *p, int ret, char **errmsg);

/* Set the row key of rows (a block at path, base) from a string, as if
 * the file held it: KW_STRING through its check, KW_ENUM through its
 * parse. value NULL is "required" for a KW_REQUIRED row. */
int config_kw_set(const struct config_kw *rows, void *base, const char *path, const char *key,
                  const char *value, char **errmsg);

/* Free every string the rows stored at base (and what KW_CUSTOM rows'
 * release frees), leaving NULLs. */
void config_kw_release(const struct config_kw *rows, void *base);

/* 0 if every key of obj is a row of rows; else -EINVAL naming the first
 * unknown one ("<path>.<key>: unknown key"), with config_kw_suggest()'s
 * key when there is one, and whether that key is required and not set. */
int config_kw_check_keys(struct json_t *obj, const char *path, const struct config_kw *rows,
                         char **errmsg);

/* Helpers of the readers. config_kw_error: "<path>: <reason>" into
 * *errmsg, returns -EINVAL. config_kw_join: path + "." + key into buf (""
 * path: key alone), returns buf. config_kw_required: "<path>.<key>:
 * required". config_kw_set_string: *dst replaced by a copy of src (0 or
 * -ENOMEM). */
int config_kw_error(char **errmsg, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *config_kw_join(char *buf, size_t size, const char *path, const char *key);
int config_kw_required(char **errmsg, const char *path, const char *key);
/* "<fp>: <reason>" for a validate.h reason (taken; NULL after an
 * allocation failed: "invalid value"). Returns -EINVAL. */
int config_kw_reason_error(char **errmsg, const char *fp, char *reason);
int config_kw_set_string(char **dst, const char *src, char **errmsg);

/* Call fn for every keyed row under table, depth first in table order,
 * with its dotted path ("etcd.tls.ca_file"; a service's "services.NAME.x");
 * path is borrowed for the call. */
void config_kw_walk(const struct config_kw *table, const char *path,
                    void (*fn)(const char *path, const struct config_kw *kw, void *arg), void *arg);

/* The edit distance (insert, delete, substitute, swap of neighbours) of a
 * and b; CONFIG_KW_DISTANCE_MAX + 1 when either is longer than 64 bytes. */
#define CONFIG_KW_DISTANCE_MAX 3
size_t config_kw_distance(const char *a, const char *b);

/* The known key of table an unknown key most likely meant, or NULL: the
 * closest by config_kw_distance(), at most (len + 2) / 3 away, one more
 * for a key of 4 bytes or more, which also counts as 1 away from every
 * longer key it begins; the first row wins a tie. Borrowed from the
 * table. */
const char *config_kw_suggest(const struct config_kw *table, const char *key);

#endif
