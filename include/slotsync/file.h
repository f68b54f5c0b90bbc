/* file - slotsync's file I/O: atomic writes, `render -o` output, reading a
 * file back, stale temp files. Blocking, but only on local files the
 * operator named (services file, host map), written once per reload. */
#ifndef SLOTSYNC_FILE_H
#define SLOTSYNC_FILE_H

#include <stddef.h>

/* Write data to path atomically: a temp file "<path>.tmp.<pid>" in the same
 * directory, fsync, rename over path, fsync the directory. 0 or a negative
 * errno with *errmsg. */
int file_write_atomic(const char *path, const char *data, size_t len, char **errmsg);

/* `render -o PATH`: "-" writes data to standard output; otherwise PATH is
 * replaced atomically (file_write_atomic) when it does not exist or is a
 * regular file. A symlink to a regular file replaces that file and keeps the
 * link. Anything else that exists (a device, a FIFO, a socket, a directory,
 * /dev/stdout, a dangling link) is refused with -EINVAL, untouched. 0 or a
 * negative errno with *errmsg (caller frees). */
int file_write_output(const char *path, const char *data, size_t len, char **errmsg);

/* Read the file at path whole into a new NUL-terminated buffer (caller
 * frees). 0, -EFBIG past max bytes, or the negative errno of open/read. */
int file_read(const char *path, size_t max, char **out, size_t *outlen);

/* Remove the temp files file_write_atomic() left for path when its writer
 * died (a "<path>.tmp.<pid>" whose pid is no process); removed (may be NULL)
 * is told each one. Returns how many, or a negative errno. */
int file_remove_stale_temps(const char *path, void (*removed)(const char *file, void *arg),
                            void *arg);

#endif
