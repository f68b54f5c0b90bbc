/* fuzz.h - what every fuzz target checks beyond "no crash".
 *
 * Each target is a libFuzzer entry point (LLVMFuzzerTestOneInput). The same
 * file links either with libFuzzer (make fuzz, clang) or with replay.c's
 * main, which runs it over corpus files with any compiler (make test). An
 * oracle failure prints what broke and aborts, which both count as a
 * finding.
 */
#ifndef SLOTSYNC_FUZZ_H
#define SLOTSYNC_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/plan.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz oracle failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A runtime command: not empty, no ';', no line break, no control byte. */
static inline void fuzz_check_command(const char *cmd)
{
    FUZZ_ASSERT(cmd && cmd[0], "empty command");
    for (const unsigned char *c = (const unsigned char *)cmd; *c; c++)
        FUZZ_ASSERT(*c >= 0x20 && *c != 0x7f && *c != ';', "byte 0x%02x in command '%s'", *c, cmd);
}

static inline void fuzz_check_plan(const struct plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        fuzz_check_command(p->cmds[i]);
}

/* A rendered text: lines ending in '\n', none holding ';' or a control
 * byte. */
static inline void fuzz_check_lines(const char *text, size_t len)
{
    FUZZ_ASSERT(len == 0 || text[len - 1] == '\n', "rendered text does not end with a newline");
    FUZZ_ASSERT(strlen(text) == len, "NUL byte in rendered text");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c == '\n')
            continue;
        FUZZ_ASSERT(c >= 0x20 && c != 0x7f && c != ';', "byte 0x%02x at %zu of rendered text", c,
                    i);
    }
}

/* A NUL-terminated copy of the input (caller frees). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
