/* optfile - options from a file, one "NAME VALUE" a line. */
#include <slotsync/optfile.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/log.h>
#include <slotsync/vec.h>

#define OPTFILE_FLAG "--options-file"

void optfile_free(char **args)
{
    for (size_t i = 0; args && args[i]; i++)
        free(args[i]);
    free(args);
}

static int push(char ***args, size_t *n, size_t *cap, char *s)
{
    if (!s)
        return -ENOMEM;
    if (vec_reserve(args, cap, *n + 2, sizeof(**args), 16) < 0) {
        free(s);
        return -ENOMEM;
    }
    (*args)[(*n)++] = s;
    (*args)[*n] = NULL;
    return 0;
}

static char *dup_range(const char *p, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);
    char *s = malloc(plen + len + 1);

    if (s) {
        memcpy(s, prefix, plen);
        memcpy(s + plen, p, len);
        s[plen + len] = '\0';
    }
    return s;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int optfile_parse(const char *text, size_t len, char ***args, size_t *n_args, char **errmsg)
{
    size_t n = 0, cap = 0, lineno = 0;
    const char *p = text, *end = text + len;
    char **out = NULL;
    int r = 0;

    *args = NULL;
    *n_args = 0;
    if (!(out = calloc(1, sizeof(*out))))
        return -ENOMEM;
    while (p < end && r == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end, *name, *name_end, *val, *val_end;

        lineno++;
        for (const char *q = p; q < eol; q++) {
            unsigned char c = (unsigned char)*q;

            if ((c < 0x20 && c != '\t' && !(c == '\r' && q + 1 == eol)) || c == 0x7f) {
                memprintf(errmsg, "line %zu: control character 0x%02x", lineno, c);
                r = -EINVAL;
                goto out;
            }
        }
        if (eol > p && eol[-1] == '\r')
            eol--;
        name = p;
        while (name < eol && is_blank(*name))
            name++;
        p = nl ? nl + 1 : end;
        if (name == eol || *name == '#')
            continue;
        name_end = name;
        while (name_end < eol && !is_blank(*name_end))
            name_end++;
        for (const char *q = name; q < name_end; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-')) {
                char qn[80];

                log_quote(name, (size_t)(name_end - name), qn, sizeof(qn));
                memprintf(errmsg,
                          "line %zu: \"%s\" is not an option name (a long option without "
                          "its --, e.g. \"addr 10.0.0.5:8080\")",
                          lineno, qn);
                r = -EINVAL;
                goto out;
            }
        if (name[0] == '-') {
            memprintf(errmsg, "line %zu: write the option's name without its --", lineno);
            r = -EINVAL;
            goto out;
        }
        val = name_end;
        while (val < eol && is_blank(*val))
            val++;
        val_end = eol;
        while (val_end > val && is_blank(val_end[-1]))
            val_end--;
        r = push(&out, &n, &cap, dup_range(name, (size_t)(name_end - name), "--"));
        if (r == 0 && val_end > val)
            r = push(&out, &n, &cap, dup_range(val, (size_t)(val_end - val), ""));
    }
out:
    if (r < 0) {
        optfile_free(out);
        if (r == -ENOMEM)
            memprintf(errmsg, "out of memory");
        return r;
    }
    *args = out;
    *n_args = n;
    return 0;
}

/* Read path (at most OPTFILE_MAX bytes) and parse it. */
static int load(const char *path, char ***args, size_t *n, char **errmsg)
{
    char *text = malloc(OPTFILE_MAX + 1), q[512], *why = NULL;
    FILE *f = NULL;
    size_t len;
    int r;

    log_quote(path, strlen(path), q, sizeof(q));
    if (!text)
        return -ENOMEM;
    if (!(f = fopen(path, "r"))) {
        r = -errno;
        memprintf(errmsg, "--options-file %s: %s", q, strerror(errno));
        goto out;
    }
    len = fread(text, 1, OPTFILE_MAX + 1, f);
    if (ferror(f)) {
        r = -EIO;
        memprintf(errmsg, "--options-file %s: read error", q);
        goto out;
    }
    if (len > OPTFILE_MAX) {
        r = -EFBIG;
        memprintf(errmsg, "--options-file %s: larger than %d bytes", q, OPTFILE_MAX);
        goto out;
    }
    r = optfile_parse(text, len, args, n, &why);
    if (r < 0)
        memprintf(errmsg, "--options-file %s: %s", q, why ? why : strerror(-r));
out:
    if (f)
        fclose(f);
    free(text);
    free(why);
    return r;
}

int optfile_expand(int argc, char **argv, char ***out, int *n_out, char ***owned, char **errmsg)
{
    size_t n = 0, cap = (size_t)argc + 1, n_owned = 0;
    char **res = calloc(cap, sizeof(*res)), **keep = calloc(1, sizeof(*keep));
    bool after_dashes = false;
    int r = 0;

    *out = NULL;
    *owned = NULL;
    if (!res || !keep) {
        r = -ENOMEM;
        goto fail;
    }
    for (int i = 0; i < argc; i++) {
        const char *path = NULL;
        char **file_args = NULL, **bigger;
        size_t n_file = 0;

        if (i > 0 && !after_dashes && strcmp(argv[i], OPTFILE_FLAG) == 0) {
            if (i + 1 >= argc) {
                memprintf(errmsg, "option '" OPTFILE_FLAG "' needs a value");
                r = -EINVAL;
                goto fail;
            }
            path = argv[++i];
        } else if (i > 0 && !after_dashes &&
                   strncmp(argv[i], OPTFILE_FLAG "=", strlen(OPTFILE_FLAG) + 1) == 0) {
            path = argv[i] + strlen(OPTFILE_FLAG) + 1;
        }
        if (!path) {
            if (strcmp(argv[i], "--") == 0)
                after_dashes = true;
            res[n++] = argv[i];
            continue;
        }
        if ((r = load(path, &file_args, &n_file, errmsg)) < 0)
            goto fail;
        bigger = realloc(res, (cap + n_file) * sizeof(*res));
        if (bigger)
            res = bigger;
        if (!bigger || !(bigger = realloc(keep, (n_owned + n_file + 1) * sizeof(*keep)))) {
            optfile_free(file_args);
            r = -ENOMEM;
            goto fail;
        }
        keep = bigger;
        cap += n_file;
        for (size_t k = 0; k < n_file; k++)
            res[n++] = keep[n_owned++] = file_args[k];
        keep[n_owned] = NULL;
        free(file_args); /* the strings now belong to keep */
    }
    res[n] = NULL;
    *out = res;
    *n_out = (int)n;
    *owned = keep;
    return 0;
fail:
    if (r == -ENOMEM)
        memprintf(errmsg, "out of memory");
    free(res);
    optfile_free(keep);
    return r;
}
