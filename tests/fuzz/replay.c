/* replay - run a fuzz target over files, without libFuzzer.
 *
 * Usage: replay_<target> PATH... where each PATH is a file or a directory
 * (its regular files, in name order, not recursive). Used by make test to
 * replay the corpus through every target with the ordinary compiler. Exits
 * 1 when a path cannot be read; an oracle failure aborts. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, r;

    if (!f) {
        perror(path);
        return -1;
    }
    do {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap ? cap * 2 : 4096);

            if (!nb) {
                fclose(f);
                free(buf);
                return -1;
            }
            buf = nb;
            cap = cap ? cap * 2 : 4096;
        }
        r = fread(buf + len, 1, cap - len, f);
        len += r;
    } while (r > 0);
    fclose(f);
    /* a copy of exactly len bytes, so ASan sees any read past the input */
    {
        uint8_t *exact = malloc(len ? len : 1);

        if (!exact) {
            free(buf);
            return -1;
        }
        memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    size_t files = 0;
    int ret = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        struct dirent **ents;
        int n;

        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) < 0)
                ret = 1;
            files++;
            continue;
        }
        n = scandir(argv[i], &ents, NULL, by_name);
        if (n < 0) {
            perror(argv[i]);
            return 1;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            struct stat fst;

            snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
            if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
                if (run_file(path) < 0)
                    ret = 1;
                files++;
            }
            free(ents[j]);
        }
        free(ents);
    }
    printf("%s: %zu inputs replayed\n", argv[0], files);
    return ret;
}
